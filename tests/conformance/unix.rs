//! Unix-domain sockets: filesystem paths, abstract names, datagrams, SCM_RIGHTS.

use super::{conformance, recv_vec, Backend, AGAIN};
use llsocket_api::cmsg::{self, Cmsg};
use llsocket_api::{Errno, Family, Fd, MsgFlags, Protocol, SockAddr, SockType, UnixAddr};

fn stream_server(b: &dyn Backend, addr: &SockAddr) {
    let o = b.ops();
    let l = o
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    o.bind(l, addr).unwrap();
    assert_eq!(&o.getsockname(l).unwrap(), addr);
    o.listen(l, 4).unwrap();
    let c = o
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    o.connect(c, addr).unwrap();
    assert_eq!(&o.getpeername(c).unwrap(), addr);
    // The client never bound: it has no name.
    assert_eq!(o.getsockname(c).unwrap(), SockAddr::Unix(UnixAddr::Unnamed));
    let a = o.accept(l, true).unwrap();
    assert_eq!(a.addr, Some(SockAddr::Unix(UnixAddr::Unnamed)));
    assert_eq!(&o.getsockname(a.fd).unwrap(), addr);
    o.send(c, b"over unix", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, a.fd, 32, MsgFlags::NONE).unwrap(), b"over unix");
    // The name is taken while the socket lives (and, for a path, until unlinked).
    let again = o
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(o.bind(again, addr).unwrap_err(), Errno::EADDRINUSE);
    // A connected socket cannot connect again.
    assert_eq!(o.connect(c, addr).unwrap_err(), Errno::EISCONN);
}

conformance!(unix_path_stream, |b: &dyn Backend| {
    let addr = b.unix_path("stream");
    stream_server(b, &addr);
});

conformance!(unix_abstract_stream, |b: &dyn Backend| {
    let o = b.ops();
    let addr = b.unix_abstract("stream");
    stream_server(b, &addr);
    // An abstract name is free again as soon as its socket is closed.
    let name2 = b.unix_abstract("reuse");
    let s = o
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    o.bind(s, &name2).unwrap();
    o.close(s).unwrap();
    let s2 = o
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    o.bind(s2, &name2).unwrap();
});

conformance!(unix_connect_errors, |b: &dyn Backend| {
    let o = b.ops();
    let c = o
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    // Nothing at that path.
    assert_eq!(
        o.connect(c, &b.unix_path("missing")).unwrap_err(),
        Errno::ENOENT
    );
    // Nothing with that abstract name.
    assert_eq!(
        o.connect(c, &b.unix_abstract("missing")).unwrap_err(),
        Errno::ECONNREFUSED
    );
    // Bound but not listening.
    let path = b.unix_path("notlistening");
    let s = o
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    o.bind(s, &path).unwrap();
    assert_eq!(o.connect(c, &path).unwrap_err(), Errno::ECONNREFUSED);
    // A stream socket cannot connect to a datagram socket.
    let dpath = b.unix_path("dgram");
    let d = o
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    o.bind(d, &dpath).unwrap();
    assert_eq!(o.connect(c, &dpath).unwrap_err(), Errno::EPROTOTYPE);
    // Not connected yet.
    assert_eq!(o.getpeername(c).unwrap_err(), Errno::ENOTCONN);
    assert_eq!(
        o.send(c, b"x", MsgFlags::NONE).unwrap_err(),
        Errno::ENOTCONN
    );
});

conformance!(unix_dgram_addresses, |b: &dyn Backend| {
    let o = b.ops();
    let ypath = b.unix_path("y");
    let y = o
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    o.bind(y, &ypath).unwrap();
    // An unbound sender has no address at all (the kernel reports length 0).
    let x = o
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    o.sendto(x, b"anon", &ypath, MsgFlags::NONE).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = o.recvfrom(y, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(&buf[..n], b"anon");
    assert_eq!(from, None);
    // A bound sender shows up with its name.
    let xname = b.unix_abstract("x");
    let x2 = o
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    o.bind(x2, &xname).unwrap();
    o.sendto(x2, b"named", &ypath, MsgFlags::NONE).unwrap();
    let (n, from) = o.recvfrom(y, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(&buf[..n], b"named");
    assert_eq!(from, Some(xname.clone()));
    // Replying to that name.
    o.sendto(y, b"reply", &xname, MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, x2, 16, MsgFlags::NONE).unwrap(), b"reply");
    // Unconnected without an address: ENOTCONN on unix datagram sockets.
    assert_eq!(
        o.send(x, b"x", MsgFlags::NONE).unwrap_err(),
        Errno::ENOTCONN
    );
    // Connected.
    o.connect(x, &ypath).unwrap();
    o.send(x, b"conn", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"conn");
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
    // Sending to a missing path.
    assert_eq!(
        o.sendto(x2, b"x", &b.unix_path("missing"), MsgFlags::NONE)
            .unwrap_err(),
        Errno::ENOENT
    );
});

/// Sends `fds` over `a` with a two-byte payload.
fn send_fds(b: &dyn Backend, a: Fd, fds: &[Fd]) {
    let control = cmsg::encode(&[Cmsg::rights(fds)]);
    assert_eq!(
        b.ops()
            .sendmsg(a, &[b"fd"], &control, None, MsgFlags::NONE)
            .unwrap(),
        2
    );
}

/// Checks that `got` is the same socket as the peer of `other_end`: what is
/// written to `got` arrives there.
fn same_socket(b: &dyn Backend, got: Fd, other_end: Fd) {
    let o = b.ops();
    assert_eq!(o.send(got, b"via", MsgFlags::NONE).unwrap(), 3);
    assert_eq!(
        recv_vec(b, other_end, 8, MsgFlags::DONTWAIT).unwrap(),
        b"via"
    );
}

conformance!(scm_rights_one_and_several, |b: &dyn Backend| {
    let o = b.ops();
    let (a, r) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let mut pairs = Vec::new();
    for _ in 0..3 {
        pairs.push(
            o.socketpair(SockType::DGRAM, Protocol::DEFAULT, false)
                .unwrap(),
        );
    }
    // One descriptor.
    send_fds(b, a, &[pairs[0].0]);
    let mut data = [0u8; 8];
    let mut cbuf = vec![0u8; cmsg::cmsg_space(4 * 8)];
    let out = o
        .recvmsg(r, &mut [&mut data[..]], &mut cbuf, MsgFlags::NONE)
        .unwrap();
    assert_eq!((out.bytes, &data[..2]), (2, &b"fd"[..]));
    assert!(!out.flags.contains(MsgFlags::CTRUNC));
    assert_eq!(out.control_len, cmsg::cmsg_space(4));
    let msgs = cmsg::decode(&cbuf[..out.control_len]);
    assert_eq!(msgs.len(), 1);
    let got = msgs[0].fds().unwrap();
    assert_eq!(got.len(), 1);
    assert_ne!(got[0], pairs[0].0);
    assert!(o.cloexec(got[0]).is_ok());
    same_socket(b, got[0], pairs[0].1);
    // The original and the received descriptor are independent numbers.
    o.close(pairs[0].0).unwrap();
    same_socket(b, got[0], pairs[0].1);
    // Several descriptors in one message, in order.
    let several = [pairs[1].0, pairs[2].0, pairs[1].0];
    send_fds(b, a, &several);
    let out = o
        .recvmsg(r, &mut [&mut data[..]], &mut cbuf, MsgFlags::NONE)
        .unwrap();
    assert_eq!(out.bytes, 2);
    assert_eq!(out.control_len, cmsg::cmsg_space(4 * 3));
    let msgs = cmsg::decode(&cbuf[..out.control_len]);
    let got = msgs[0].fds().unwrap();
    assert_eq!(got.len(), 3);
    same_socket(b, got[0], pairs[1].1);
    same_socket(b, got[1], pairs[2].1);
    same_socket(b, got[2], pairs[1].1);
    // The received descriptors are distinct numbers even for the same socket.
    assert_ne!(got[0], got[2]);
});

conformance!(scm_rights_truncated_control, |b: &dyn Backend| {
    let o = b.ops();
    let (a, r) = o
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    let (x, y) = o
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    // Room for exactly one descriptor (CMSG_LEN(4)): one arrives, the rest are
    // closed, and MSG_CTRUNC says so.
    send_fds(b, a, &[x, x, x]);
    let mut data = [0u8; 8];
    let mut cbuf = vec![0u8; cmsg::cmsg_len(4)];
    let out = o
        .recvmsg(r, &mut [&mut data[..]], &mut cbuf, MsgFlags::NONE)
        .unwrap();
    assert_eq!(out.bytes, 2);
    assert!(out.flags.contains(MsgFlags::CTRUNC), "{:?}", out.flags);
    let msgs = cmsg::decode(&cbuf[..out.control_len]);
    assert_eq!(msgs.len(), 1);
    let got = msgs[0].fds().unwrap();
    assert_eq!(got.len(), 1);
    same_socket(b, got[0], y);
    // No control buffer at all: the descriptors are dropped, CTRUNC set.
    send_fds(b, a, &[x]);
    let out = o
        .recvmsg(r, &mut [&mut data[..]], &mut [], MsgFlags::NONE)
        .unwrap();
    assert_eq!((out.bytes, out.control_len), (2, 0));
    assert!(out.flags.contains(MsgFlags::CTRUNC), "{:?}", out.flags);
    // Data without descriptors: no control data, no flags.
    o.send(a, b"plain", MsgFlags::NONE).unwrap();
    let mut cbuf = vec![0u8; cmsg::cmsg_space(16)];
    let out = o
        .recvmsg(r, &mut [&mut data[..]], &mut cbuf, MsgFlags::NONE)
        .unwrap();
    assert_eq!((out.bytes, out.control_len), (5, 0));
    assert!(!out.flags.contains(MsgFlags::CTRUNC));
});

conformance!(scm_rights_invalid_descriptor, |b: &dyn Backend| {
    let o = b.ops();
    let (a, _r) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let closed = b.park(
        o.socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap(),
    );
    o.close(closed).unwrap();
    let control = cmsg::encode(&[Cmsg::rights(&[closed])]);
    assert_eq!(
        o.sendmsg(a, &[b"fd"], &control, None, MsgFlags::NONE)
            .unwrap_err(),
        Errno::EBADF
    );
});

conformance!(unix_name_length_limits, |b: &dyn Backend| {
    let o = b.ops();
    let s = o
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    let cap = o.platform().unix_path_max;
    // An abstract name uses sun_path after its leading NUL: cap - 1 bytes at most.
    let mut name = match b.unix_abstract("long") {
        SockAddr::Unix(UnixAddr::Abstract(n)) => n,
        other => panic!("{other:?}"),
    };
    name.resize(cap, b'x');
    assert_eq!(
        o.bind(s, &SockAddr::unix_abstract(name.clone()))
            .unwrap_err(),
        Errno::EINVAL
    );
    name.truncate(cap - 1);
    let longest = SockAddr::unix_abstract(name);
    o.bind(s, &longest).unwrap();
    assert_eq!(o.getsockname(s).unwrap(), longest);
    // A path needs room for its NUL.
    let t = o
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(
        o.bind(t, &SockAddr::unix_path(vec![b'p'; cap]))
            .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        o.connect(t, &SockAddr::unix_path(vec![b'p'; cap + 10]))
            .unwrap_err(),
        Errno::EINVAL
    );
});
