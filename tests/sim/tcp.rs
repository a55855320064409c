//! TCP between simulated hosts: handshake, refusal, backlog, buffers, shutdown, resets, OOB.

use std::net::Ipv4Addr;
use std::time::Duration;

use llsocket_api::opt::Linger;
use llsocket_api::{
    Errno, Family, Interest, MsgFlags, OptName, Protocol, Shutdown, SockAddr, SockOpt, SockType,
    SocketOps,
};
use llsocket_sim::{Latency, LinkConfig, Sim};

use super::{listener, recv_exact, tcp, tcp_pair, two_hosts};

#[test]
fn echo_between_hosts_with_addresses() {
    let (sim, a, b) = two_hosts(10);
    let (c, s, l) = tcp_pair(&sim, &a, &b, 8080);
    let cname = a.getsockname(c).unwrap();
    let SockAddr::V4(cv4) = cname else {
        panic!("{cname:?}")
    };
    assert_eq!(*cv4.ip(), a.ipv4(), "the source is the route's address");
    assert!(
        (32768..=60999).contains(&cv4.port()),
        "ephemeral port {}",
        cv4.port()
    );
    assert_eq!(a.getpeername(c), Ok(SockAddr::v4(b.ipv4(), 8080)));
    assert_eq!(b.getpeername(s), Ok(cname));
    assert_eq!(b.getsockname(s), Ok(SockAddr::v4(b.ipv4(), 8080)));
    assert_eq!(a.send(c, b"hello", MsgFlags::NONE), Ok(5));
    assert_eq!(recv_exact(&sim, &b, s, 5), b"hello");
    assert_eq!(
        b.getsockopt(l, OptName::AcceptConn),
        Ok(SockOpt::AcceptConn(true))
    );
    assert_eq!(
        b.getsockopt(s, OptName::AcceptConn),
        Ok(SockOpt::AcceptConn(false))
    );
    assert_eq!(
        b.getsockopt(s, OptName::Protocol),
        Ok(SockOpt::Protocol(libc::IPPROTO_TCP))
    );
    assert_eq!(
        b.getsockopt(s, OptName::Type),
        Ok(SockOpt::Type(libc::SOCK_STREAM))
    );
}

#[test]
fn loopback_and_ipv6_dual_stack() {
    let sim = Sim::new(11);
    let h = sim.host("solo");
    let l = h
        .socket(Family::INET6, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    h.bind(l, &SockAddr::v6(std::net::Ipv6Addr::UNSPECIFIED, 9000))
        .unwrap();
    h.listen(l, 4).unwrap();
    let c = tcp(&h);
    h.connect(c, &SockAddr::v4(Ipv4Addr::LOCALHOST, 9000))
        .unwrap();
    let acc = h.accept(l, true).unwrap();
    let SockAddr::V6(peer) = acc.addr.clone().unwrap() else {
        panic!("{:?}", acc.addr)
    };
    assert_eq!(
        peer.ip().to_ipv4_mapped(),
        Some(Ipv4Addr::LOCALHOST),
        "v4-mapped peer"
    );
    assert_eq!(h.getsockname(c).unwrap().port(), Some(peer.port()));
}

#[test]
fn refused_blocking_and_nonblocking() {
    let (sim, a, b) = two_hosts(12);
    let c = tcp(&a);
    assert_eq!(
        a.connect(c, &SockAddr::v4(b.ipv4(), 1)),
        Err(Errno::ECONNREFUSED),
        "{}",
        sim.replay_hint()
    );
    let n = a
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 1)),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(a.poll(n, Interest::WRITE, 100), Ok(true));
    assert_eq!(
        a.getsockopt(n, OptName::Error),
        Ok(SockOpt::Error(libc::ECONNREFUSED))
    );
    assert_eq!(
        a.getsockopt(n, OptName::Error),
        Ok(SockOpt::Error(0)),
        "SO_ERROR clears"
    );
}

#[test]
fn nonblocking_connect_then_so_error_zero() {
    let (sim, a, b) = two_hosts(13);
    sim.set_link_both(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(5)),
            ..LinkConfig::default()
        },
    );
    let l = listener(&b, 443, 8);
    let n = a
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 443)),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 443)),
        Err(Errno::EALREADY)
    );
    assert_eq!(
        a.poll(n, Interest::WRITE, 0),
        Ok(false),
        "not yet: 10 ms RTT"
    );
    assert_eq!(a.poll(n, Interest::WRITE, 1000), Ok(true));
    assert_eq!(
        sim.now(),
        Duration::from_millis(10),
        "one round trip; {}",
        sim.replay_hint()
    );
    assert_eq!(a.getsockopt(n, OptName::Error), Ok(SockOpt::Error(0)));
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 443)),
        Ok(()),
        "completion reported once"
    );
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 443)),
        Err(Errno::EISCONN)
    );
    assert!(b.accept(l, false).is_ok());
}

#[test]
fn backlog_overflow_drops_syn_then_retries() {
    let (sim, a, b) = two_hosts(14);
    let l = listener(&b, 5000, 0); // Linux accepts backlog + 1 = 1 connection
    let c1 = tcp(&a);
    a.connect(c1, &SockAddr::v4(b.ipv4(), 5000)).unwrap();
    let c2 = a
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(
        a.connect(c2, &SockAddr::v4(b.ipv4(), 5000)),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(
        a.poll(c2, Interest::WRITE, 0),
        Ok(false),
        "SYN dropped: still connecting"
    );
    // Accepting frees room; the SYN retransmitted at 1 s gets in.
    b.accept(l, false).unwrap();
    assert_eq!(
        a.poll(c2, Interest::WRITE, 5000),
        Ok(true),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(sim.now(), Duration::from_secs(1));
    assert_eq!(a.getsockopt(c2, OptName::Error), Ok(SockOpt::Error(0)));
    // A third, blocking connect against a full queue times out after 127 s.
    let c3 = tcp(&a);
    let t0 = sim.now();
    assert_eq!(
        a.connect(c3, &SockAddr::v4(b.ipv4(), 5000)),
        Err(Errno::ETIMEDOUT),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(sim.now() - t0, Duration::from_secs(127));
}

#[test]
fn send_buffer_bounds_partial_writes_and_eagain() {
    let sim = Sim::builder(15).rcvbuf(4096).sndbuf(4096).build();
    let a = sim.host("a");
    let b = sim.host("b");
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6000);
    a.set_nonblock(c, true).unwrap();
    let big = vec![7u8; 20_000];
    let n = a.send(c, &big, MsgFlags::NONE).unwrap();
    assert_eq!(
        n,
        8192,
        "receiver's 4096 + sender's 4096; {}",
        sim.replay_hint()
    );
    assert_eq!(a.send(c, &big, MsgFlags::NONE), Err(Errno::EAGAIN));
    assert_eq!(a.poll(c, Interest::WRITE, 0), Ok(false));
    // Reading opens the window; the queued bytes move and the sender is writable.
    let got = recv_exact(&sim, &b, s, 8192);
    assert!(got.iter().all(|&x| x == 7));
    assert_eq!(a.poll(c, Interest::WRITE, 0), Ok(true));
    // setsockopt doubles, as Linux.
    a.setsockopt(c, SockOpt::SndBuf(10_000)).unwrap();
    assert_eq!(
        a.getsockopt(c, OptName::SndBuf),
        Ok(SockOpt::SndBuf(20_000))
    );
}

#[test]
fn peek_waitall_lowat_and_trunc() {
    let (sim, a, b) = two_hosts(16);
    sim.set_link(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(3)),
            ..LinkConfig::default()
        },
    );
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6001);
    a.send(c, b"abc", MsgFlags::NONE).unwrap();
    a.send(c, b"def", MsgFlags::NONE).unwrap();
    let mut buf = [0u8; 6];
    assert_eq!(b.recv(s, &mut buf[..2], MsgFlags::PEEK), Ok(2));
    assert_eq!(&buf[..2], b"ab");
    // WAITALL waits for both segments.
    assert_eq!(
        b.recv(s, &mut buf, MsgFlags::WAITALL),
        Ok(6),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(&buf, b"abcdef");
    // SO_RCVLOWAT: a blocking receive waits for 4 bytes.
    b.setsockopt(s, SockOpt::RcvLowat(4)).unwrap();
    a.send(c, b"12", MsgFlags::NONE).unwrap();
    a.send(c, b"34", MsgFlags::NONE).unwrap();
    sim.advance(Duration::from_millis(3));
    assert_eq!(b.poll(s, Interest::READ, 0), Ok(true));
    assert_eq!(
        b.recv(s, &mut buf, MsgFlags::TRUNC),
        Ok(4),
        "stream MSG_TRUNC discards"
    );
    assert_eq!(b.recv(s, &mut buf, MsgFlags::DONTWAIT), Err(Errno::EAGAIN));
}

#[test]
fn shutdown_eof_and_epipe_without_signal() {
    let (sim, a, b) = two_hosts(17);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6002);
    a.send(c, b"bye", MsgFlags::NONE).unwrap();
    a.shutdown(c, Shutdown::WRITE).unwrap();
    assert_eq!(a.send(c, b"x", MsgFlags::NONE), Err(Errno::EPIPE));
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(3));
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(0), "EOF after FIN");
    assert_eq!(b.poll(s, Interest::READ, 0), Ok(true));
    // The other direction still works.
    b.send(s, b"ok", MsgFlags::NONE).unwrap();
    assert_eq!(a.recv(c, &mut buf, MsgFlags::NONE), Ok(2));
    assert_eq!(a.shutdown(tcp(&a), Shutdown::READ), Err(Errno::ENOTCONN));
    assert_eq!(a.shutdown(c, Shutdown(7)), Err(Errno::EINVAL));
    let _ = sim;
}

#[test]
fn close_with_unread_data_resets_peer() {
    let (sim, a, b) = two_hosts(18);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6003);
    b.send(s, b"unread", MsgFlags::NONE).unwrap();
    a.close(c).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        b.recv(s, &mut buf, MsgFlags::NONE),
        Err(Errno::ECONNRESET),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(b.send(s, b"x", MsgFlags::NONE), Err(Errno::EPIPE));
}

#[test]
fn send_to_closed_peer_gets_reset_then_epipe() {
    let (sim, a, b) = two_hosts(19);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6004);
    b.close(s).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(a.recv(c, &mut buf, MsgFlags::NONE), Ok(0));
    assert_eq!(
        a.send(c, b"1", MsgFlags::NONE),
        Ok(1),
        "the first write is accepted"
    );
    assert_eq!(
        a.send(c, b"2", MsgFlags::NONE),
        Err(Errno::EPIPE),
        "{}",
        sim.replay_hint()
    );
}

#[test]
fn linger_zero_resets() {
    let (sim, a, b) = two_hosts(20);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6005);
    a.setsockopt(
        c,
        SockOpt::Linger(Linger {
            enabled: true,
            secs: 0,
        }),
    )
    .unwrap();
    a.close(c).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        b.recv(s, &mut buf, MsgFlags::NONE),
        Err(Errno::ECONNRESET),
        "{}",
        sim.replay_hint()
    );
}

#[test]
fn out_of_band_byte_mark_and_poll() {
    let (sim, a, b) = two_hosts(21);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6006);
    a.send(c, b"ab", MsgFlags::NONE).unwrap();
    a.send(c, b"!", MsgFlags::OOB).unwrap();
    a.send(c, b"cd", MsgFlags::NONE).unwrap();
    let pri = Interest::default().with_except(true);
    assert_eq!(b.poll(s, pri, 0), Ok(true));
    assert_eq!(b.atmark(s), Ok(false));
    let mut buf = [0u8; 8];
    assert_eq!(
        b.recv(s, &mut buf, MsgFlags::NONE),
        Ok(2),
        "a read stops at the mark"
    );
    assert_eq!(b.atmark(s), Ok(true));
    assert_eq!(b.recv(s, &mut buf, MsgFlags::OOB), Ok(1));
    assert_eq!(buf[0], b'!');
    assert_eq!(b.recv(s, &mut buf, MsgFlags::OOB), Err(Errno::EINVAL));
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(2));
    assert_eq!(&buf[..2], b"cd");
    let _ = sim;
}

#[test]
fn bind_conflicts_and_reuse() {
    let (_sim, a, _b) = two_hosts(22);
    let x = tcp(&a);
    a.bind(x, &SockAddr::v4(Ipv4Addr::UNSPECIFIED, 7777))
        .unwrap();
    a.listen(x, 1).unwrap();
    let y = tcp(&a);
    assert_eq!(
        a.bind(y, &SockAddr::v4(Ipv4Addr::LOCALHOST, 7777)),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(
        a.bind(y, &SockAddr::v4(Ipv4Addr::new(10, 9, 9, 9), 1)),
        Err(Errno::EADDRNOTAVAIL)
    );
    assert_eq!(
        a.bind(y, &SockAddr::v6(std::net::Ipv6Addr::LOCALHOST, 1)),
        Err(Errno::EAFNOSUPPORT)
    );
    a.close(x).unwrap();
    a.bind(y, &SockAddr::v4(Ipv4Addr::LOCALHOST, 7777)).unwrap();
    assert_eq!(
        a.bind(y, &SockAddr::v4(Ipv4Addr::LOCALHOST, 7778)),
        Err(Errno::EINVAL)
    );
    // SO_REUSEPORT on both: two listeners share a port.
    let (p, q) = (tcp(&a), tcp(&a));
    for fd in [p, q] {
        a.setsockopt(fd, SockOpt::ReusePort(true)).unwrap();
        a.bind(fd, &SockAddr::v4(Ipv4Addr::LOCALHOST, 7800))
            .unwrap();
        a.listen(fd, 8).unwrap();
    }
    // SO_REUSEADDR on UDP sockets.
    let (u, v) = (super::udp(&a), super::udp(&a));
    for fd in [u, v] {
        a.setsockopt(fd, SockOpt::ReuseAddr(true)).unwrap();
        a.bind(fd, &SockAddr::v4(Ipv4Addr::LOCALHOST, 7900))
            .unwrap();
    }
}

#[test]
fn unreachable_and_unknown_networks() {
    let (sim, a, _b) = two_hosts(23);
    let c = tcp(&a);
    assert_eq!(
        a.connect(c, &SockAddr::v4(Ipv4Addr::new(8, 8, 8, 8), 53)),
        Err(Errno::ENETUNREACH)
    );
    // 10.0.0.77: nobody there; the SYN goes unanswered.
    let t0 = sim.now();
    assert_eq!(
        a.connect(c, &SockAddr::v4(Ipv4Addr::new(10, 0, 0, 77), 53)),
        Err(Errno::ETIMEDOUT)
    );
    assert_eq!(sim.now() - t0, Duration::from_secs(127));
}

#[test]
fn listener_close_resets_unaccepted_connections() {
    let (sim, a, b) = two_hosts(24);
    let l = listener(&b, 6100, 4);
    let c = tcp(&a);
    a.connect(c, &SockAddr::v4(b.ipv4(), 6100)).unwrap();
    b.close(l).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        a.recv(c, &mut buf, MsgFlags::NONE),
        Err(Errno::ECONNRESET),
        "{}",
        sim.replay_hint()
    );
}

#[test]
fn self_connect_is_a_connection_to_itself() {
    let sim = Sim::new(25);
    let h = sim.host("solo");
    let s = h
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    h.bind(s, &SockAddr::v4(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let me = h.getsockname(s).unwrap();
    assert_eq!(h.connect(s, &me), Err(Errno::EINPROGRESS));
    assert_eq!(h.getpeername(s), Ok(me.clone()));
    assert_eq!(h.getsockopt(s, OptName::Error), Ok(SockOpt::Error(0)));
    assert_eq!(h.connect(s, &me), Ok(()));
    assert_eq!(h.send(s, b"echo", MsgFlags::NONE), Ok(4));
    let mut buf = [0u8; 8];
    assert_eq!(
        h.recv(s, &mut buf, MsgFlags::NONE),
        Ok(4),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(h.listen(s, 1), Err(Errno::EINVAL));
}

#[test]
fn refused_connect_then_shutdown_flags_and_reconnect() {
    let (sim, a, b) = two_hosts(26);
    let n = a
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 9)),
        Err(Errno::EINPROGRESS)
    );
    // The refusal is reported once by connect, then the socket can try again.
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 9)),
        Err(Errno::ECONNREFUSED)
    );
    let l = listener(&b, 9, 1);
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 9)),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(
        a.connect(n, &SockAddr::v4(b.ipv4(), 9)),
        Ok(()),
        "{}",
        sim.replay_hint()
    );
    assert!(b.accept(l, false).is_ok());
}

#[test]
fn ipv6_between_hosts_and_reuseport_spreads_connections() {
    let (sim, a, b) = two_hosts(27);
    let mut ls = Vec::new();
    for _ in 0..2 {
        let l = b
            .socket(Family::INET6, SockType::STREAM, Protocol::DEFAULT, true)
            .unwrap();
        b.setsockopt(l, SockOpt::ReusePort(true)).unwrap();
        b.bind(l, &SockAddr::v6(b.ipv6(), 8443)).unwrap();
        b.listen(l, 64).unwrap();
        ls.push(l);
    }
    let mut cs = Vec::new();
    for _ in 0..20 {
        let c = a
            .socket(Family::INET6, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        a.connect(c, &SockAddr::v6(b.ipv6(), 8443)).unwrap();
        let SockAddr::V6(me) = a.getsockname(c).unwrap() else {
            panic!("not IPv6")
        };
        assert_eq!(*me.ip(), a.ipv6());
        cs.push(c);
    }
    let counts: Vec<usize> = ls
        .iter()
        .map(|&l| (0..20).take_while(|_| b.accept(l, false).is_ok()).count())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 20);
    assert!(
        counts.iter().all(|&n| n > 0),
        "both listeners got connections: {counts:?}; {}",
        sim.replay_hint()
    );
}

#[test]
fn partition_on_an_open_connection_delays_then_heal_delivers() {
    let (sim, a, b) = two_hosts(28);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6200);
    sim.partition(&a, &b);
    assert_eq!(a.send(c, b"later", MsgFlags::NONE), Ok(5));
    let mut buf = [0u8; 8];
    assert_eq!(
        b.poll(s, Interest::READ, 1000),
        Ok(false),
        "{}",
        sim.replay_hint()
    );
    sim.heal(&a, &b);
    // The next retransmission (200 ms doubling) gets through.
    assert_eq!(
        b.poll(s, Interest::READ, 10_000),
        Ok(true),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(5));
    assert_eq!(&buf[..5], b"later");
}

#[test]
fn time_wait_holds_the_active_closers_port_for_60_seconds() {
    let (sim, a, b) = two_hosts(29);
    let port = 6300;
    let (c, s, l) = tcp_pair(&sim, &a, &b, port);
    // The server closes first: its side of the connection (port 6300) enters TIME_WAIT.
    b.close(s).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(a.recv(c, &mut buf, MsgFlags::NONE), Ok(0));
    a.close(c).unwrap();
    b.close(l).unwrap();
    let again = tcp(&b);
    assert_eq!(
        b.bind(again, &SockAddr::v4(b.ipv4(), port)),
        Err(Errno::EADDRINUSE),
        "{}",
        sim.replay_hint()
    );
    sim.advance(Duration::from_secs(60));
    assert_eq!(b.bind(again, &SockAddr::v4(b.ipv4(), port)), Ok(()));
    b.close(again).unwrap();
    // With SO_REUSEADDR on the listener (inherited by accepted sockets) and on the
    // new socket, the port can be bound again at once.
    let l = tcp(&b);
    b.setsockopt(l, SockOpt::ReuseAddr(true)).unwrap();
    b.bind(l, &SockAddr::v4(b.ipv4(), port)).unwrap();
    b.listen(l, 4).unwrap();
    let c = tcp(&a);
    a.connect(c, &SockAddr::v4(b.ipv4(), port)).unwrap();
    let s = b.accept(l, false).unwrap().fd;
    b.close(s).unwrap();
    a.close(c).unwrap();
    b.close(l).unwrap();
    let l2 = tcp(&b);
    b.setsockopt(l2, SockOpt::ReuseAddr(true)).unwrap();
    assert_eq!(
        b.bind(l2, &SockAddr::v4(b.ipv4(), port)),
        Ok(()),
        "{}",
        sim.replay_hint()
    );
    assert!(sim.trace().iter().any(|t| t.contains("time-wait")));
}

#[test]
fn half_close_then_close_is_clean_for_the_side_still_open() {
    let (sim, a, b) = two_hosts(30);
    sim.set_link_both(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(2)),
            ..LinkConfig::default()
        },
    );
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6301);
    a.send(c, b"last words", MsgFlags::NONE).unwrap();
    a.close(c).unwrap(); // an orphan flushing its data, then FIN
    assert_eq!(recv_exact(&sim, &b, s, 10), b"last words");
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(0));
    b.shutdown(s, Shutdown::WRITE).unwrap();
    sim.advance(Duration::from_millis(10));
    // The closed side answered our FIN normally (no reset): EOF, no error.
    assert_eq!(
        b.getsockopt(s, OptName::Error),
        Ok(SockOpt::Error(0)),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(0));
    assert_eq!(
        sim.live_sockets(),
        2,
        "the orphan is gone (listener and s remain): {:#?}",
        sim.trace()
    );
}

#[test]
fn reporting_a_reset_through_connect_disconnects_and_purges() {
    let (sim, a, b) = two_hosts(31);
    let l = listener(&b, 6400, 4);
    let c = a
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    let addr = SockAddr::v4(b.ipv4(), 6400);
    assert_eq!(a.connect(c, &addr), Err(Errno::EINPROGRESS));
    let s = b.accept(l, false).unwrap().fd;
    b.send(s, &[1u8; 18], MsgFlags::NONE).unwrap();
    a.send(c, &[2u8; 99], MsgFlags::NONE).unwrap();
    b.close(s).unwrap(); // unread data: RST
    assert_eq!(
        a.connect(c, &addr),
        Err(Errno::ECONNRESET),
        "{}",
        sim.replay_hint()
    );
    let mut buf = [0u8; 64];
    assert_eq!(
        a.recv(c, &mut buf, MsgFlags::NONE),
        Err(Errno::ENOTCONN),
        "queue purged"
    );
    assert_eq!(
        a.connect(c, &addr),
        Err(Errno::EINPROGRESS),
        "a new connection"
    );
    assert!(b.accept(l, false).is_ok());
}

#[test]
fn urgent_byte_after_a_reset_is_enotconn() {
    let (sim, a, b) = two_hosts(32);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 6500);
    b.send(s, &[5u8; 51], MsgFlags::OOB).unwrap();
    a.send(c, &[6u8; 149], MsgFlags::NONE).unwrap();
    b.close(s).unwrap(); // unread data: RST
    let mut buf = [0u8; 8];
    assert_eq!(
        a.recv(c, &mut buf, MsgFlags::OOB | MsgFlags::DONTWAIT),
        Err(Errno::ENOTCONN),
        "{}",
        sim.replay_hint()
    );
}

#[test]
fn accepted_sockets_inherit_the_listeners_shutdown_flags() {
    let (sim, a, b) = two_hosts(33);
    let l = tcp(&b);
    assert_eq!(b.shutdown(l, Shutdown::BOTH), Err(Errno::ENOTCONN));
    b.bind(l, &SockAddr::v4(b.ipv4(), 6700)).unwrap();
    b.listen(l, 3).unwrap();
    let c = tcp(&a);
    a.connect(c, &SockAddr::v4(b.ipv4(), 6700)).unwrap();
    let s = b.accept(l, false).unwrap().fd;
    // As a real kernel: the child is born shut down both ways.
    assert_eq!(
        b.send(s, &[0u8; 39], MsgFlags::NONE),
        Err(Errno::EPIPE),
        "{}",
        sim.replay_hint()
    );
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, MsgFlags::DONTWAIT), Ok(0));
}
