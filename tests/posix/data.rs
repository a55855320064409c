//! Data transfer: socketpairs, TCP (v4/v6), UDP, non-blocking, shutdown, SCM_RIGHTS, sendfile.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use llsocket_api::cmsg;
use llsocket_api::{
    Errno, Family, Interest, MsgFlags, Protocol, Shutdown, SockAddr, SockType, SocketOps,
};
use llsocket_posix::Posix;

use super::{listener, pair, recv_fds, send_fds, Guard};

#[test]
fn socketpair_round_trip_every_type() {
    let p = Posix;
    for ty in [SockType::STREAM, SockType::DGRAM, SockType::SEQPACKET] {
        let (a, b) = p.socketpair(ty, Protocol::DEFAULT, false).unwrap();
        let _g = Guard(vec![a, b]);
        assert!(p.cloexec(a).unwrap() && p.cloexec(b).unwrap());
        assert!(!p.nonblock(a).unwrap());
        assert_eq!(p.send(a, b"hello", MsgFlags::NONE).unwrap(), 5);
        let mut buf = [0u8; 16];
        let n = p.recv(b, &mut buf, MsgFlags::NONE).unwrap();
        assert_eq!(&buf[..n], b"hello", "{ty:?}");
    }
}

fn tcp_round_trip(addr: SockAddr) {
    let p = Posix;
    let (l, bound) = listener(addr);
    let c = p
        .socket(bound.family(), SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![l, c]);
    p.connect(c, &bound).unwrap();
    let acc = p.accept(l, true).unwrap();
    let _g2 = Guard(vec![acc.fd]);
    assert_eq!(acc.addr, Some(p.getsockname(c).unwrap()));
    assert_eq!(p.getpeername(c).unwrap(), bound);
    assert!(p.cloexec(acc.fd).unwrap());
    assert!(!p.nonblock(acc.fd).unwrap());
    assert_eq!(p.send(c, b"ping", MsgFlags::NONE).unwrap(), 4);
    let mut buf = [0u8; 8];
    assert!(p.poll(acc.fd, Interest::READ, 1000).unwrap());
    let n = p.recv(acc.fd, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(&buf[..n], b"ping");
}

#[test]
fn tcp_over_loopback_v4() {
    tcp_round_trip(SockAddr::v4(Ipv4Addr::LOCALHOST, 0));
}

#[test]
fn tcp_over_loopback_v6() {
    tcp_round_trip(SockAddr::v6(Ipv6Addr::LOCALHOST, 0));
}

#[test]
fn accept_inherits_nonblocking_from_listener() {
    let p = Posix;
    let (l, bound) = listener(SockAddr::v4(Ipv4Addr::LOCALHOST, 0));
    let c = p
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![l, c]);
    p.set_nonblock(l, true).unwrap();
    assert_eq!(p.accept(l, false).unwrap_err(), Errno::EAGAIN);
    p.connect(c, &bound).unwrap();
    assert!(p.poll(l, Interest::READ, 1000).unwrap());
    let acc = p.accept(l, false).unwrap();
    let _g2 = Guard(vec![acc.fd]);
    assert_eq!(acc.addr, None);
    assert!(p.nonblock(acc.fd).unwrap());
}

#[test]
fn udp_sendto_recvfrom() {
    let p = Posix;
    let a = p
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    let b = p
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![a, b]);
    p.bind(a, &SockAddr::v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    p.bind(b, &SockAddr::v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to = p.getsockname(b).unwrap();
    assert_eq!(p.sendto(a, b"datagram", &to, MsgFlags::NONE).unwrap(), 8);
    let mut buf = [0u8; 4];
    // MSG_TRUNC reports the datagram's real length.
    let (n, from) = p.recvfrom(b, &mut buf, MsgFlags::TRUNC).unwrap();
    assert_eq!(n, 8);
    assert_eq!(&buf, b"data");
    assert_eq!(from, Some(p.getsockname(a).unwrap()));
}

#[test]
fn nonblocking_recv_is_eagain() {
    let p = Posix;
    let (a, b) = p
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    let _g = Guard(vec![a, b]);
    assert!(p.nonblock(a).unwrap());
    let mut buf = [0u8; 4];
    assert_eq!(
        p.recv(a, &mut buf, MsgFlags::NONE).unwrap_err(),
        Errno::EAGAIN
    );
    assert!(!p.poll(a, Interest::READ, 0).unwrap());
    assert!(p.poll(a, Interest::WRITE, 0).unwrap());
}

#[test]
fn shutdown_write_gives_eof_and_epipe_without_sigpipe() {
    let p = Posix;
    let (a, b) = p
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![a, b]);
    p.shutdown(a, Shutdown::WRITE).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(p.recv(b, &mut buf, MsgFlags::NONE).unwrap(), 0);
    // SIGPIPE is not ignored in this process: surviving this send is the proof.
    assert_eq!(p.send(a, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    assert_eq!(
        p.sendmsg(a, &[b"x"], &[], None, MsgFlags::NONE)
            .unwrap_err(),
        Errno::EPIPE
    );
}

#[test]
fn scm_rights_passes_a_usable_descriptor() {
    let p = Posix;
    let (a, b) = pair(SockType::STREAM);
    let (x, y) = pair(SockType::STREAM);
    let _g = Guard(vec![a, b, x, y]);
    send_fds(a, b"fd", &[x]);
    let (out, data, fds) = recv_fds(b, cmsg::cmsg_space(4 * 4), MsgFlags::NONE);
    assert_eq!(out.bytes, 2);
    assert_eq!(data, b"fd");
    assert_eq!(fds.len(), 1);
    let got = fds[0];
    let _g2 = Guard(vec![got]);
    assert_ne!(got, x);
    // The received descriptor is the same socket as `x`: writing to it reaches `y`.
    assert_eq!(p.send(got, b"via", MsgFlags::NONE).unwrap(), 3);
    let mut buf = [0u8; 8];
    let n = p.recv(y, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(&buf[..n], b"via");
}

#[test]
fn sendfile_sends_a_whole_file() {
    let p = Posix;
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let path = std::env::temp_dir().join(format!("llsocket-posix-sendfile-{}", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&content)
        .unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let ffd = llsocket_api::Fd(std::os::fd::AsRawFd::as_raw_fd(&file));
    let (a, b) = p
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    let _g = Guard(vec![a, b]);
    let mut sent = 0usize;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..10_000 {
        if got.len() == content.len() {
            break;
        }
        if sent < content.len() {
            match p.sendfile(a, ffd, sent as i64, content.len() - sent) {
                Ok(n) => sent += n,
                Err(e) => assert_eq!(e, Errno::EAGAIN),
            }
        }
        match p.recv(b, &mut buf, MsgFlags::NONE) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => assert_eq!(e, Errno::EAGAIN),
        }
    }
    assert_eq!(sent, content.len());
    assert!(
        got == content,
        "received {} of {} bytes",
        got.len(),
        content.len()
    );
}

#[test]
fn udp_sendmsg_recvmsg_gather_scatter_and_trunc() {
    let p = Posix;
    let a = p
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    let b = p
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![a, b]);
    p.bind(b, &SockAddr::v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let to = p.getsockname(b).unwrap();
    let n = p
        .sendmsg(a, &[b"abc", b"defgh"], &[], Some(&to), MsgFlags::NONE)
        .unwrap();
    assert_eq!(n, 8);
    let (mut x, mut y) = ([0u8; 2], [0u8; 3]);
    let out = p
        .recvmsg(b, &mut [&mut x[..], &mut y[..]], &mut [], MsgFlags::NONE)
        .unwrap();
    assert_eq!((&x, &y), (b"ab", b"cde"));
    assert_eq!(out.bytes, 5);
    assert!(out.flags.contains(MsgFlags::TRUNC));
    assert_eq!(out.control_len, 0);
    // The sender was auto-bound to the wildcard; the kernel reports its loopback source.
    let port = p.getsockname(a).unwrap().port().unwrap();
    assert_eq!(out.addr, Some(SockAddr::v4(Ipv4Addr::LOCALHOST, port)));
}
