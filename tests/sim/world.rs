//! The world itself: determinism of traces, virtual time, `EDEADLK`, descriptor numbers.

use std::time::Duration;

use llsocket_api::opt::Timeval;
use llsocket_api::{Errno, Fd, Interest, MsgFlags, SockAddr, SockOpt, SocketOps};
use llsocket_sim::{Latency, LinkConfig, Sim};

use super::{recv_exact, tcp, tcp_pair, two_hosts, udp};

/// A small program: TCP echo and UDP datagrams over a faulty link. Returns the digest.
fn program(seed: u64, faulty: bool) -> (u64, Vec<String>) {
    let (sim, a, b) = two_hosts(seed);
    if faulty {
        sim.set_link_both(
            &a,
            &b,
            LinkConfig {
                latency: Latency::Uniform(Duration::from_millis(1), Duration::from_millis(20)),
                loss: 0.2,
                duplicate: 0.1,
                reorder: 0.2,
            },
        );
    }
    let (c, s, l) = tcp_pair(&sim, &a, &b, 7000);
    for i in 0..20u8 {
        let msg = [i; 100];
        assert_eq!(
            a.send(c, &msg, MsgFlags::NONE),
            Ok(100),
            "{}",
            sim.replay_hint()
        );
        let got = recv_exact(&sim, &b, s, 100);
        assert_eq!(got, msg, "{}", sim.replay_hint());
        b.send(s, &got, MsgFlags::NONE).unwrap();
        assert_eq!(recv_exact(&sim, &a, c, 100), msg, "{}", sim.replay_hint());
    }
    let (ua, ub) = (udp(&a), udp(&b));
    b.bind(ub, &SockAddr::v4(b.ipv4(), 9000)).unwrap();
    for i in 0..30u8 {
        a.sendto(ua, &[i], &SockAddr::v4(b.ipv4(), 9000), MsgFlags::NONE)
            .unwrap();
    }
    sim.advance(Duration::from_secs(1));
    let mut buf = [0u8; 4];
    while b.recv(ub, &mut buf, MsgFlags::DONTWAIT).is_ok() {}
    for fd in [c, ua] {
        a.close(fd).unwrap();
    }
    for fd in [s, l, ub] {
        b.close(fd).unwrap();
    }
    (sim.trace_digest(), sim.trace())
}

#[test]
fn same_seed_same_trace_twice() {
    let (d1, t1) = program(1234, true);
    let (d2, t2) = program(1234, true);
    assert_eq!(t1, t2, "llsocket-sim: seed=1234");
    assert_eq!(d1, d2, "llsocket-sim: seed=1234");
    assert!(t1.len() > 50, "the trace records the run");
}

#[test]
fn different_seed_with_faults_different_trace() {
    let (d1, _) = program(1, true);
    let (d2, _) = program(2, true);
    assert_ne!(d1, d2, "seeds 1 and 2 drew the same faults");
}

#[test]
fn poll_advances_virtual_time_only() {
    let (sim, a, _) = two_hosts(3);
    let u = udp(&a);
    let t0 = sim.now();
    assert_eq!(
        a.poll(u, Interest::READ, 150),
        Ok(false),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(
        sim.now() - t0,
        Duration::from_millis(150),
        "{}",
        sim.replay_hint()
    );
    // Zero timeout: no time passes.
    assert_eq!(a.poll(u, Interest::READ, 0), Ok(false));
    assert_eq!(sim.now() - t0, Duration::from_millis(150));
    // A fresh UDP socket is writable at once.
    assert_eq!(a.poll(u, Interest::WRITE, 1000), Ok(true));
    assert_eq!(sim.now() - t0, Duration::from_millis(150));
    a.close(u).unwrap();
}

#[test]
fn rcvtimeo_runs_on_the_virtual_clock() {
    let (sim, a, b) = two_hosts(4);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 80);
    b.setsockopt(
        s,
        SockOpt::RcvTimeo(Timeval {
            sec: 2,
            usec: 500_000,
        }),
    )
    .unwrap();
    let t0 = sim.now();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
    assert_eq!(
        sim.now() - t0,
        Duration::from_millis(2500),
        "{}",
        sim.replay_hint()
    );
    // Data sent from a timer-driven peer arrives during a wait: with latency.
    sim.set_link(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(40)),
            ..LinkConfig::default()
        },
    );
    a.send(c, b"late", MsgFlags::NONE).unwrap();
    let t1 = sim.now();
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(4));
    assert_eq!(
        sim.now() - t1,
        Duration::from_millis(40),
        "{}",
        sim.replay_hint()
    );
}

#[test]
fn a_wait_nothing_can_end_is_edeadlk() {
    let (sim, a, b) = two_hosts(5);
    let (_c, s, _l) = tcp_pair(&sim, &a, &b, 81);
    let mut buf = [0u8; 8];
    assert_eq!(
        b.recv(s, &mut buf, MsgFlags::NONE),
        Err(Errno::EDEADLK),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(sim.now(), Duration::ZERO, "no time passes on a deadlock");
}

#[test]
fn descriptors_are_lowest_free_from_three_per_host() {
    let (_sim, a, b) = two_hosts(6);
    let x = tcp(&a);
    let y = udp(&a);
    let z = tcp(&b);
    assert_eq!((x, y, z), (Fd(3), Fd(4), Fd(3)));
    a.close(x).unwrap();
    assert_eq!(a.dup(y), Ok(Fd(3)));
    assert_eq!(a.close(Fd(9)), Err(Errno::EBADF));
    assert_eq!(a.open_fds(), vec![Fd(3), Fd(4)]);
    assert!(a.cloexec(Fd(3)).unwrap());
    a.set_cloexec(Fd(3), false).unwrap();
    assert!(!a.cloexec(Fd(3)).unwrap());
    // dup shares the open file description: O_NONBLOCK is shared.
    a.set_nonblock(y, true).unwrap();
    assert!(a.nonblock(Fd(3)).unwrap());
    for fd in a.open_fds() {
        a.close(fd).unwrap();
    }
    b.close(z).unwrap();
}

#[test]
fn advance_runs_due_events() {
    let sim = Sim::new(7);
    let a = sim.host("a");
    let b = sim.host("b");
    sim.set_link(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(100)),
            ..LinkConfig::default()
        },
    );
    let (ua, ub) = (udp(&a), udp(&b));
    b.bind(ub, &SockAddr::v4(b.ipv4(), 5353)).unwrap();
    a.sendto(ua, b"x", &SockAddr::v4(b.ipv4(), 5353), MsgFlags::NONE)
        .unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(b.recv(ub, &mut buf, MsgFlags::DONTWAIT), Err(Errno::EAGAIN));
    sim.advance(Duration::from_millis(99));
    assert_eq!(b.recv(ub, &mut buf, MsgFlags::DONTWAIT), Err(Errno::EAGAIN));
    sim.advance(Duration::from_millis(1));
    assert_eq!(
        b.recv(ub, &mut buf, MsgFlags::DONTWAIT),
        Ok(1),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(sim.now(), Duration::from_millis(100));
    let _ = tcp;
}

#[test]
fn descriptor_limit_is_emfile() {
    let sim = Sim::builder(8).fd_limit(5).build();
    let h = sim.host("small");
    let fds: Vec<Fd> = (0..5).map(|_| udp(&h)).collect();
    assert_eq!(fds.last(), Some(&Fd(7)));
    assert_eq!(
        h.socket(
            llsocket_api::Family::INET,
            llsocket_api::SockType::DGRAM,
            llsocket_api::Protocol::DEFAULT,
            false
        ),
        Err(Errno::EMFILE)
    );
    assert_eq!(h.dup(fds[0]), Err(Errno::EMFILE));
    h.close(fds[0]).unwrap();
    assert_eq!(h.dup(fds[1]), Ok(Fd(3)));
}

#[test]
fn sndtimeo_bounds_a_blocked_write_on_the_virtual_clock() {
    let sim = Sim::builder(9).rcvbuf(2048).sndbuf(2048).build();
    let (a, b) = (sim.host("a"), sim.host("b"));
    let (c, _s, _l) = tcp_pair(&sim, &a, &b, 90);
    a.setsockopt(c, SockOpt::SndTimeo(Timeval { sec: 1, usec: 0 }))
        .unwrap();
    let t0 = sim.now();
    // 4096 bytes fit (2048 at the receiver, 2048 queued); the rest waits 1 s.
    assert_eq!(
        a.send(c, &[0u8; 10_000], MsgFlags::NONE),
        Ok(4096),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(sim.now() - t0, Duration::from_secs(1));
    assert_eq!(a.send(c, b"x", MsgFlags::NONE), Err(Errno::EAGAIN));
    assert_eq!(sim.now() - t0, Duration::from_secs(2));
}

#[test]
fn timestamps_carry_virtual_arrival_time() {
    let (sim, a, b) = two_hosts(10);
    sim.set_link(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(1500)),
            ..LinkConfig::default()
        },
    );
    let (ua, ub) = (udp(&a), udp(&b));
    b.bind(ub, &SockAddr::v4(b.ipv4(), 1234)).unwrap();
    b.setsockopt(ub, SockOpt::Timestamp(true)).unwrap();
    a.sendto(ua, b"t", &SockAddr::v4(b.ipv4(), 1234), MsgFlags::NONE)
        .unwrap();
    let mut data = [0u8; 4];
    let mut control = vec![0u8; llsocket_api::cmsg::cmsg_space(16)];
    let out = b
        .recvmsg(ub, &mut [&mut data[..]], &mut control, MsgFlags::NONE)
        .unwrap();
    let msgs = llsocket_api::cmsg::decode(&control[..out.control_len]);
    assert_eq!(
        (msgs[0].level, msgs[0].ty),
        (libc::SOL_SOCKET, libc::SCM_TIMESTAMP)
    );
    let sec = i64::from_ne_bytes(msgs[0].data[..8].try_into().unwrap());
    let usec = i64::from_ne_bytes(msgs[0].data[8..16].try_into().unwrap());
    assert_eq!((sec, usec), (1, 500_000), "{}", sim.replay_hint());
}

/// Opens and closes `n` UDP sockets on `h`: enough destroyed sockets for the world to
/// sweep its records of them (more than 1 024) more than once.
fn churn(h: &llsocket_sim::Host, n: usize) {
    for _ in 0..n {
        let u = udp(h);
        h.close(u).unwrap();
    }
}

#[test]
fn what_a_destroyed_unix_socket_leaves_survives_a_world_with_churn() {
    use llsocket_api::{Family, Protocol, SockType, UnixAddr};
    let (_sim, h, _) = two_hosts(8);
    let unix = |ty| {
        h.socket(Family::UNIX, ty, Protocol::DEFAULT, false)
            .unwrap()
    };
    // A message from a datagram socket that is gone by the time it is read: the
    // receiver sees the name the sender had last (bound after it sent, as on Linux).
    let (from, to) = (unix(SockType::DGRAM), unix(SockType::DGRAM));
    h.bind(to, &SockAddr::unix_path("/tmp/to")).unwrap();
    let msg = b"last words";
    assert_eq!(
        h.sendto(from, msg, &SockAddr::unix_path("/tmp/to"), MsgFlags::NONE),
        Ok(msg.len())
    );
    h.bind(from, &SockAddr::unix_path("/tmp/from")).unwrap();
    h.close(from).unwrap();
    // A stream whose peer named itself after connecting, and is gone.
    let l = unix(SockType::STREAM);
    h.bind(l, &SockAddr::unix_path("/tmp/l")).unwrap();
    h.listen(l, 4).unwrap();
    let c = unix(SockType::STREAM);
    h.connect(c, &SockAddr::unix_path("/tmp/l")).unwrap();
    let s = h.accept(l, false).unwrap().fd;
    h.bind(c, &SockAddr::unix_path("/tmp/c")).unwrap();
    h.close(c).unwrap();
    churn(&h, 3_000);
    let mut buf = [0u8; 32];
    let (n, addr) = h.recvfrom(to, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(
        (&buf[..n], addr),
        (&msg[..], Some(SockAddr::unix_path("/tmp/from")))
    );
    assert_eq!(h.getpeername(s), Ok(SockAddr::unix_path("/tmp/c")));
    let row = h.sockets().into_iter().find(|r| r.fds == [s]).unwrap();
    assert_eq!(row.peer, Some(SockAddr::unix_path("/tmp/c")));
    assert_ne!(row.peer, Some(SockAddr::Unix(UnixAddr::Unnamed)));
}

/// The client's view of a server whose host crashed: its packets go on to the crashed
/// host (and are lost there) until it gives up.
fn after_the_crash(seed: u64, churned: bool) -> Vec<String> {
    let (sim, a, b) = two_hosts(seed);
    sim.set_link_both(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(5)),
            ..LinkConfig::default()
        },
    );
    let (c, _s, _l) = tcp_pair(&sim, &a, &b, 7000);
    b.crash();
    if churned {
        churn(&a, 3_000);
    }
    let mut seen = Vec::new();
    a.set_nonblock(c, true).unwrap();
    for _ in 0..12 {
        seen.push(format!("{:?}", a.send(c, b"are you there", MsgFlags::NONE)));
        sim.advance(Duration::from_secs(20));
        let mut buf = [0u8; 16];
        seen.push(format!("{:?}", a.recv(c, &mut buf, MsgFlags::NONE)));
    }
    seen
}

#[test]
fn a_crashed_peer_is_still_where_it_was_in_a_world_with_churn() {
    let plain = after_the_crash(9, false);
    assert!(plain.iter().any(|s| s.contains("ETIMEDOUT")), "{plain:?}");
    assert_eq!(after_the_crash(9, true), plain);
}
