//! Unix sockets in the simulator: socketpairs, per-host namespaces, SCM_RIGHTS, sendfile.

use llsocket_api::cmsg::{self, Cmsg};
use llsocket_api::{
    Errno, Family, Fd, MsgFlags, Protocol, SockAddr, SockType, SocketOps, UnixAddr,
};

use super::{recv_exact, tcp_pair, two_hosts};

#[test]
fn socketpair_kinds() {
    let (sim, a, _b) = two_hosts(40);
    let (x, y) = a
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    a.send(x, b"ab", MsgFlags::NONE).unwrap();
    a.send(x, b"cd", MsgFlags::NONE).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        a.recv(y, &mut buf, MsgFlags::NONE),
        Ok(4),
        "a stream merges"
    );
    let (p, q) = a
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    a.send(p, b"ab", MsgFlags::NONE).unwrap();
    a.send(p, b"cd", MsgFlags::NONE).unwrap();
    assert_eq!(
        a.recv(q, &mut buf, MsgFlags::NONE),
        Ok(2),
        "datagrams keep boundaries"
    );
    let (r, t) = a
        .socketpair(SockType::SEQPACKET, Protocol::DEFAULT, false)
        .unwrap();
    a.send(r, b"abc", MsgFlags::NONE).unwrap();
    a.close(r).unwrap();
    assert_eq!(a.recv(t, &mut buf[..1], MsgFlags::NONE), Ok(1));
    assert_eq!(
        a.recv(t, &mut buf, MsgFlags::NONE),
        Ok(0),
        "the rest was discarded; then EOF"
    );
    a.close(x).unwrap();
    assert_eq!(a.recv(y, &mut buf, MsgFlags::NONE), Ok(0));
    assert_eq!(
        a.send(y, b"x", MsgFlags::NONE),
        Err(Errno::EPIPE),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(a.getpeername(p), Ok(SockAddr::Unix(UnixAddr::Unnamed)));
}

#[test]
fn unread_data_on_close_resets_unix_peer() {
    let (sim, a, _b) = two_hosts(41);
    let (x, y) = a
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    a.send(y, b"unread", MsgFlags::NONE).unwrap();
    a.close(x).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        a.recv(y, &mut buf, MsgFlags::NONE),
        Err(Errno::ECONNRESET),
        "{}",
        sim.replay_hint()
    );
}

#[test]
fn path_and_abstract_namespaces_are_per_host() {
    let (_sim, a, b) = two_hosts(42);
    let path = SockAddr::unix_path("/tmp/sim.sock");
    for h in [&a, &b] {
        let l = h
            .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        h.bind(l, &path).unwrap();
        h.listen(l, 4).unwrap();
        let c = h
            .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        h.connect(c, &path).unwrap();
        let acc = h.accept(l, true).unwrap();
        assert_eq!(acc.addr, Some(SockAddr::Unix(UnixAddr::Unnamed)));
        assert_eq!(h.getpeername(c), Ok(path.clone()));
        h.close(l).unwrap();
        // The socket file stays: connecting is refused, binding is EADDRINUSE, until unlink.
        let d = h
            .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        assert_eq!(h.connect(d, &path), Err(Errno::ECONNREFUSED));
        assert_eq!(h.bind(d, &path), Err(Errno::EADDRINUSE));
        h.unlink(b"/tmp/sim.sock").unwrap();
        assert_eq!(h.connect(d, &path), Err(Errno::ENOENT));
    }
    let abs = SockAddr::unix_abstract("svc");
    let u = a
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    a.bind(u, &abs).unwrap();
    let v = b
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(
        b.sendto(v, b"x", &abs, MsgFlags::NONE),
        Err(Errno::ECONNREFUSED),
        "not on host b"
    );
    let w = a
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(a.sendto(w, b"x", &abs, MsgFlags::NONE), Ok(1));
    let mut buf = [0u8; 4];
    assert_eq!(
        a.recvfrom(u, &mut buf, MsgFlags::NONE),
        Ok((1, None)),
        "an unbound sender has no address"
    );
}

#[test]
fn scm_rights_moves_descriptors_between_tables() {
    let (sim, a, b) = two_hosts(43);
    // A TCP connection between hosts; host b's end travels over a unix socketpair on b.
    let (c, s, l) = tcp_pair(&sim, &a, &b, 7100);
    let (x, y) = b
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let ctl = cmsg::encode(&[Cmsg::rights(&[s])]);
    assert_eq!(b.sendmsg(x, &[b"fd"], &ctl, None, MsgFlags::NONE), Ok(2));
    b.close(s).unwrap();
    let mut data = [0u8; 4];
    let mut control = vec![0u8; cmsg::cmsg_space(4)];
    let out = b
        .recvmsg(y, &mut [&mut data[..]], &mut control, MsgFlags::NONE)
        .unwrap();
    assert_eq!(out.bytes, 2);
    let got = cmsg::decode(&control[..out.control_len]);
    let fds = got[0].fds().unwrap();
    assert_eq!(fds, vec![s], "lowest free number: the one just closed");
    // The received descriptor is the same connection.
    a.send(c, b"through", MsgFlags::NONE).unwrap();
    assert_eq!(recv_exact(&sim, &b, fds[0], 7), b"through");
    // Too small a control buffer: MSG_CTRUNC and the extra descriptors are closed.
    let before = b.open_fds();
    let f1 = b.create_file(b"1").unwrap();
    let f2 = b.create_file(b"2").unwrap();
    let ctl = cmsg::encode(&[Cmsg::rights(&[f1, f2])]);
    b.sendmsg(x, &[b"2"], &ctl, None, MsgFlags::NONE).unwrap();
    b.close(f1).unwrap();
    b.close(f2).unwrap();
    let mut control = vec![0u8; cmsg::cmsg_len(4)];
    let out = b
        .recvmsg(y, &mut [&mut data[..]], &mut control, MsgFlags::NONE)
        .unwrap();
    assert!(
        out.flags.contains(MsgFlags::CTRUNC),
        "{}",
        sim.replay_hint()
    );
    let got = cmsg::decode(&control[..out.control_len]);
    let one = got[0].fds().unwrap();
    assert_eq!(one.len(), 1);
    let mut after = before.clone();
    after.push(one[0]);
    after.sort();
    assert_eq!(
        b.open_fds(),
        after,
        "the descriptor that did not fit was closed"
    );
    // Rights on a TCP socket are accepted and ignored (as Linux); a bad descriptor on a
    // unix socket is EBADF.
    let rights = cmsg::encode(&[Cmsg::rights(&[c])]);
    assert_eq!(a.sendmsg(c, &[b"x"], &rights, None, MsgFlags::NONE), Ok(1));
    assert_eq!(recv_exact(&sim, &b, fds[0], 1), b"x");
    let bad = cmsg::encode(&[Cmsg::rights(&[Fd(99)])]);
    assert_eq!(
        b.sendmsg(x, &[b"x"], &bad, None, MsgFlags::NONE),
        Err(Errno::EBADF)
    );
    let _ = l;
}

#[test]
fn sendfile_from_a_simulated_file() {
    let (sim, a, b) = two_hosts(44);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 7200);
    let body: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let f = a.create_file(&body).unwrap();
    assert_eq!(a.sendfile(c, f, 100, 5000), Ok(5000));
    assert_eq!(recv_exact(&sim, &b, s, 5000), &body[100..5100]);
    assert_eq!(
        a.sendfile(c, f, 9_990, 100),
        Ok(10),
        "to the end of the file"
    );
    assert_eq!(recv_exact(&sim, &b, s, 10), &body[9_990..]);
    assert_eq!(a.sendfile(c, f, 20_000, 10), Ok(0));
    assert_eq!(a.sendfile(c, f, -1, 10), Err(Errno::EINVAL));
    assert_eq!(
        a.sendfile(c, c, 0, 10),
        Err(Errno::EINVAL),
        "the source must be a file"
    );
    // A non-blocking socket with a small buffer takes part of it.
    let sim2 = llsocket_sim::Sim::builder(45)
        .rcvbuf(2048)
        .sndbuf(2048)
        .build();
    let (x, y) = (sim2.host("x"), sim2.host("y"));
    let (c2, _s2, _l2) = tcp_pair(&sim2, &x, &y, 7201);
    x.set_nonblock(c2, true).unwrap();
    let f2 = x.create_file(&body).unwrap();
    assert_eq!(
        x.sendfile(c2, f2, 0, 10_000),
        Ok(4096),
        "{}",
        sim2.replay_hint()
    );
    assert_eq!(x.sendfile(c2, f2, 0, 10_000), Err(Errno::EAGAIN));
}

#[test]
fn dgram_peer_death_is_reported_by_the_next_send() {
    let (sim, a, _b) = two_hosts(46);
    let (x, y) = a
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    a.send(y, b"queued", MsgFlags::NONE).unwrap();
    a.close(y).unwrap();
    assert_eq!(
        a.getpeername(x),
        Ok(SockAddr::Unix(UnixAddr::Unnamed)),
        "still connected"
    );
    assert_eq!(
        a.send(x, b"?", MsgFlags::NONE),
        Err(Errno::ECONNREFUSED),
        "{}",
        sim.replay_hint()
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        a.recv(x, &mut buf, MsgFlags::NONE),
        Err(Errno::EAGAIN),
        "the dead peer's datagrams are dropped"
    );
    assert_eq!(a.send(x, b"?", MsgFlags::NONE), Err(Errno::ENOTCONN));
    assert_eq!(a.getpeername(x), Err(Errno::ENOTCONN));
}

#[test]
fn sender_names_are_read_when_the_data_is() {
    let (sim, a, _b) = two_hosts(47);
    let (x, y) = a
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    a.send(y, b"hello", MsgFlags::NONE).unwrap();
    a.bind(y, &SockAddr::unix_abstract("later")).unwrap();
    a.close(y).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        a.recvfrom(x, &mut buf, MsgFlags::NONE),
        Ok((5, Some(SockAddr::unix_abstract("later")))),
        "{}",
        sim.replay_hint()
    );
    // A dead datagram peer, once reported, leaves nothing readable.
    let (p, q) = a
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    a.send(q, b"x", MsgFlags::NONE).unwrap();
    a.close(q).unwrap();
    assert_eq!(a.send(p, b"y", MsgFlags::NONE), Err(Errno::ECONNREFUSED));
    assert_eq!(a.poll(p, llsocket_api::Interest::READ, 0), Ok(false));
}

#[test]
fn shut_down_unix_listener_and_oob_readability() {
    let (sim, a, _b) = two_hosts(48);
    let path = SockAddr::unix_abstract("shut");
    let l = a
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    a.bind(l, &path).unwrap();
    a.listen(l, 3).unwrap();
    a.shutdown(l, llsocket_api::Shutdown::READ).unwrap();
    assert_eq!(a.poll(l, llsocket_api::Interest::READ, 0), Ok(true));
    assert_eq!(
        a.accept(l, false).map(|x| x.fd),
        Err(Errno::EINVAL),
        "{}",
        sim.replay_hint()
    );
    // A unix stream with only its urgent byte left stays readable.
    let (x, y) = a
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    a.send(y, &[7u8; 18], MsgFlags::OOB).unwrap();
    let mut buf = [0u8; 93];
    assert_eq!(
        a.recv(x, &mut buf, MsgFlags::NONE),
        Ok(17),
        "stops at the mark"
    );
    assert_eq!(a.poll(x, llsocket_api::Interest::READ, 0), Ok(true));
}

#[test]
fn zero_length_reads_around_an_urgent_byte() {
    let (sim, a, b) = two_hosts(49);
    let (x, y) = a
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    a.send(x, b"n!", MsgFlags::OOB).unwrap();
    assert_eq!(
        a.recv(y, &mut [], MsgFlags::PEEK),
        Err(Errno::EAGAIN),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(a.recv(y, &mut [], MsgFlags::NONE), Ok(0));
    // TCP: a zero-length read sees the urgent byte as data.
    let (c, s, _l) = super::tcp_pair(&sim, &a, &b, 6600);
    a.send(c, b"!", MsgFlags::OOB).unwrap();
    b.set_nonblock(s, true).unwrap();
    assert_eq!(
        b.recv(s, &mut [], MsgFlags::NONE),
        Ok(0),
        "{}",
        sim.replay_hint()
    );
}
