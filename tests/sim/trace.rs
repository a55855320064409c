//! The trace and its digest: they see what the program sees (ports, peers, bytes, option
//! values, readiness, passed descriptors), the kept trace reads as one line per event, the
//! determinism check names the first divergent event, and pinned digests compare
//! architectures (the aarch64 CI row runs this binary under qemu).

use std::time::Duration;

use llsocket_api::cmsg::{self, Cmsg};
use llsocket_api::{
    AddrInfoHints, Family, Interest, MsgFlags, OptName, Protocol, SockAddr, SockOpt, SockType,
    SocketOps,
};
use llsocket_sim::{check_determinism, Latency, LinkConfig, Sim, SimBuilder};

use super::{recv_exact, tcp, tcp_pair, two_hosts, udp};

/// The scenario: a fault-free world of two hosts, one TCP connection, one `send`
/// (the program never asks for its port). Returns the digest and the client's port.
fn one_connection(b: SimBuilder, payload: &[u8]) -> (u64, u16) {
    let sim = b.build();
    let (srv, cli) = (sim.host("server"), sim.host("client"));
    let l = tcp(&srv);
    srv.bind(l, &SockAddr::v4(srv.ipv4(), 8080)).unwrap();
    srv.listen(l, 16).unwrap();
    let c = tcp(&cli);
    cli.connect(c, &SockAddr::v4(srv.ipv4(), 8080)).unwrap();
    let a = srv.accept(l, false).unwrap().fd;
    cli.send(c, payload, MsgFlags::NONE).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(srv.recv(a, &mut buf, MsgFlags::NONE), Ok(payload.len()));
    let digest = sim.trace_digest();
    let port = cli.getsockname(c).unwrap().port().unwrap();
    (digest, port)
}

#[test]
fn another_seed_that_picks_another_port_has_another_digest() {
    let runs: Vec<(u64, u16)> = [1u64, 2, 3, 8, 9]
        .iter()
        .map(|&s| one_connection(Sim::builder(s), b"ping"))
        .collect();
    let mut ports: Vec<u16> = runs.iter().map(|r| r.1).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 5, "the seeds picked five ports: {runs:?}");
    let mut digests: Vec<u64> = runs.iter().map(|r| r.0).collect();
    digests.sort_unstable();
    digests.dedup();
    assert_eq!(digests.len(), 5, "five ports, five digests: {runs:?}");
}

#[test]
fn a_one_byte_payload_change_changes_the_digest() {
    let (a, _) = one_connection(Sim::builder(1), b"hello");
    let (b, _) = one_connection(Sim::builder(1), b"hellp");
    assert_ne!(a, b);
    // Also with the trace off, where the digest is all there is.
    let (c, _) = one_connection(Sim::builder(1).keep_trace(false), b"hello");
    let (d, _) = one_connection(Sim::builder(1).keep_trace(false), b"hellp");
    assert_ne!(c, d);
}

#[test]
fn the_digest_does_not_depend_on_what_the_trace_keeps() {
    let on = one_connection(Sim::builder(5), b"same bytes");
    let off = one_connection(Sim::builder(5).keep_trace(false), b"same bytes");
    let payloads = one_connection(Sim::builder(5).trace_payloads(true), b"same bytes");
    assert_eq!(on, off);
    assert_eq!(on, payloads);
    let sim = Sim::builder(5).keep_trace(false).build();
    sim.host("a");
    assert!(sim.trace().is_empty() && sim.trace_len() == 1);
}

/// A program that observes a bit of everything (the test reads its trace).
fn observer(sim: &Sim) {
    let (a, b) = (sim.host("a"), sim.host("b"));
    // TCP: addresses of both ends, readiness, an option value.
    let (c, s, l) = tcp_pair(sim, &a, &b, 7000);
    a.getsockname(c).unwrap();
    b.getpeername(s).unwrap();
    assert_eq!(b.poll(s, Interest::READ, 0), Ok(false));
    a.send(c, b"hello", MsgFlags::NONE).unwrap();
    assert_eq!(b.poll(s, Interest::READ, 0), Ok(true));
    assert_eq!(recv_exact(sim, &b, s, 5), b"hello");
    b.getsockopt(s, OptName::RcvBuf).unwrap();
    b.setsockopt(s, SockOpt::TcpNoDelay(true)).unwrap();
    // UDP: the sender's address as recvfrom reports it.
    let (ua, ub) = (udp(&a), udp(&b));
    b.bind(ub, &SockAddr::v4(b.ipv4(), 9000)).unwrap();
    a.sendto(ua, b"dgram", &SockAddr::v4(b.ipv4(), 9000), MsgFlags::NONE)
        .unwrap();
    let mut buf = [0u8; 16];
    b.recvfrom(ub, &mut buf, MsgFlags::NONE).unwrap();
    // Unix: a descriptor passed, the number it gets on arrival.
    let (x, y) = a
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let ctl = cmsg::encode(&[Cmsg::rights(&[ua])]);
    a.sendmsg(x, &[b"fd"], &ctl, None, MsgFlags::NONE).unwrap();
    let mut control = vec![0u8; cmsg::cmsg_space(4)];
    let mut data = [0u8; 2];
    a.recvmsg(y, &mut [&mut data], &mut control, MsgFlags::NONE)
        .unwrap();
    // Name service.
    a.getaddrinfo(
        Some(b"b".as_slice()),
        Some(b"80".as_slice()),
        &AddrInfoHints::default(),
    )
    .unwrap();
    a.getnameinfo(&SockAddr::v4(b.ipv4(), 80), 0).unwrap();
    b.set_nonblock(l, true).unwrap();
    assert!(b.accept(l, true).is_err());
}

#[test]
fn the_kept_trace_reads_one_line_per_event() {
    let sim = Sim::new(3);
    observer(&sim);
    let t = sim.trace().join("\n");
    for want in [
        // time, host, operation, arguments, result; addresses as addresses
        "0.000000000 a connect fd=3 to=10.0.0.2:7000 -> ok local=10.0.0.1:",
        "0.000000000 a syn sock=",
        "b accept fd=3 -> 4",
        "a getsockname fd=3 -> 10.0.0.1:",
        "b getpeername fd=4 -> 10.0.0.1:",
        "b poll fd=4 r-- timeout_ms=0 -> false",
        "b poll fd=4 r-- timeout_ms=0 -> true",
        "a send fd=3 len=5 -> 5 data=5B#",
        "b recv fd=4 len=5 -> 5 data=5B#",
        "b getsockopt fd=4 RcvBuf -> RcvBuf(",
        "b setsockopt fd=4 TcpNoDelay(true) -> ok",
        "a sendto fd=4 len=5 to=10.0.0.2:9000 -> 5 data=5B#",
        "b recvfrom fd=5 len=16 -> 5 data=5B#",
        "from=10.0.0.1:",
        "a sendmsg fd=5 len=2 rights=[4] -> 2 data=2B#",
        "a recvmsg fd=6 len=2 -> 2 data=2B#",
        "from=- rights=[7]",
        "a getaddrinfo node=\"b\" service=\"80\"",
        "a getnameinfo addr=10.0.0.2:80 flags=0 -> ok host=",
        "b accept fd=3 -> EAGAIN",
    ] {
        assert!(t.contains(want), "no {want:?} in the trace:\n{t}");
    }
    // The same sends and receives show their bytes when payloads are kept.
    let sim = Sim::builder(3).trace_payloads(true).build();
    observer(&sim);
    let t = sim.trace().join("\n");
    assert!(t.contains("-> 5 data=5B\"hello\""), "{t}");
    // Structured access: the operation and virtual time of each event.
    let ev = sim.events();
    assert!(ev.iter().any(|e| e.op() == "recvmsg" && e.host() == "a"));
    assert!(ev.iter().all(|e| e.time() == Duration::ZERO));
}

#[test]
fn virtual_time_is_part_of_each_event() {
    let digest = |wait: u64| {
        let (sim, a, _) = two_hosts(1);
        let u = udp(&a);
        sim.advance(Duration::from_millis(wait));
        a.close(u).unwrap();
        (sim.trace_digest(), sim.trace().last().cloned().unwrap())
    };
    let (d1, l1) = digest(10);
    let (d2, l2) = digest(11);
    assert_ne!(d1, d2);
    assert_eq!(l1, "0.010000000 a close fd=3 -> ok");
    assert_eq!(l2, "0.011000000 a close fd=3 -> ok");
}

/// Sends a message whose content the scenario chooses from its own (outside) state.
fn chatty(sim: &Sim, second: &[u8], extra: bool) {
    let (a, b) = (sim.host("a"), sim.host("b"));
    let (c, s, _) = tcp_pair(sim, &a, &b, 80);
    a.send(c, b"first", MsgFlags::NONE).unwrap();
    recv_exact(sim, &b, s, 5);
    a.send(c, second, MsgFlags::NONE).unwrap();
    recv_exact(sim, &b, s, second.len());
    if extra {
        a.close(c).unwrap();
    }
}

#[test]
fn check_determinism_names_the_first_divergent_event() {
    let mut run = 0;
    let d = check_determinism(11, |sim| {
        run += 1;
        chatty(sim, if run == 1 { b"second" } else { b"sEcond" }, false);
    })
    .unwrap_err();
    assert_eq!(d.seed(), 11);
    assert!(d.first().contains("a send fd=3 len=6 -> 6 data=6B#"), "{d}");
    assert!(
        d.second().contains("a send fd=3 len=6 -> 6 data=6B#"),
        "{d}"
    );
    assert_ne!(d.first(), d.second());
    assert_eq!(d.before().len(), 5, "{d}");
    assert!(
        d.before()
            .iter()
            .any(|l| l.contains("b recv fd=4 len=5 -> 5")),
        "{d}"
    );
    let text = d.to_string();
    assert!(text.contains("seed=11 diverge at event #"), "{text}");
    assert!(text.contains(&format!("run 1 #{}: ", d.index())), "{text}");
    assert!(text.contains(&format!("run 2 #{}: ", d.index())), "{text}");
    assert!(text.contains("LLSOCKET_SIM_SEED=11"), "{text}");
}

#[test]
fn check_determinism_reports_a_run_that_stops_early() {
    let mut run = 0;
    let d = Sim::builder(4)
        .keep_trace(false) // the check keeps the trace anyway
        .check_determinism(|sim| {
            run += 1;
            chatty(sim, b"x", run == 1);
        })
        .unwrap_err();
    // Run 1 goes on (the close releases the socket), run 2's trace ends there.
    assert!(d.first().contains("a release"), "{d}");
    assert!(d.second().contains("end of run: 17 events"), "{d}");
    assert!(d.before()[4].contains("b recv fd=4 len=1 -> 1"), "{d}");
}

#[test]
fn check_determinism_returns_the_first_runs_value() {
    let digest = check_determinism(9, |sim| {
        chatty(sim, b"same", true);
        sim.trace_digest()
    })
    .unwrap_or_else(|d| panic!("{d}"));
    let sim = Sim::new(9);
    chatty(&sim, b"same", true);
    assert_eq!(digest, sim.trace_digest());
}

// ---- pinned digests ------------------------------------------------------------------

/// TCP echo between two hosts over a lossy, reordering, latency link (seeded choices: ports,
/// losses, latencies), with the addresses of both ends read.
fn pinned_tcp_faults(sim: &Sim) {
    let (a, b) = (sim.host("a"), sim.host("b"));
    sim.set_link_both(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Uniform(Duration::from_millis(1), Duration::from_millis(30)),
            loss: 0.2,
            duplicate: 0.1,
            reorder: 0.2,
        },
    );
    let (c, s, l) = tcp_pair(sim, &a, &b, 7000);
    a.getsockname(c).unwrap();
    b.getpeername(s).unwrap();
    for i in 0..10u8 {
        let msg = vec![i; 700 + usize::from(i) * 300];
        a.send(c, &msg, MsgFlags::NONE).unwrap();
        let got = recv_exact(sim, &b, s, msg.len());
        b.send(s, &got, MsgFlags::NONE).unwrap();
        assert_eq!(recv_exact(sim, &a, c, msg.len()), msg);
    }
    for (h, fd) in [(&a, c), (&b, s), (&b, l)] {
        h.close(fd).unwrap();
    }
    sim.advance(Duration::from_secs(120));
}

/// UDP between three hosts with a lossy link; receivers read the senders' addresses.
fn pinned_udp(sim: &Sim) {
    let hs = [sim.host("a"), sim.host("b"), sim.host("c")];
    sim.set_link(
        &hs[0],
        &hs[2],
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(5)),
            loss: 0.3,
            ..LinkConfig::default()
        },
    );
    let socks: Vec<_> = hs.iter().map(udp).collect();
    hs[2]
        .bind(socks[2], &SockAddr::v4(hs[2].ipv4(), 5353))
        .unwrap();
    for i in 0..40u8 {
        let from = usize::from(i % 2);
        let to = SockAddr::v4(hs[2].ipv4(), 5353);
        hs[from]
            .sendto(socks[from], &[i; 3], &to, MsgFlags::NONE)
            .unwrap();
    }
    sim.advance(Duration::from_secs(1));
    let mut buf = [0u8; 8];
    while hs[2]
        .recvfrom(socks[2], &mut buf, MsgFlags::DONTWAIT)
        .is_ok()
    {}
}

/// Unix sockets, descriptor passing, timestamps, options, readiness and name service.
fn pinned_unix_netdb(sim: &Sim) {
    let a = sim.host("a");
    let (x, y) = a
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    a.setsockopt(y, SockOpt::Timestamp(true)).unwrap();
    let u = a
        .socket(Family::INET6, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    sim.advance(Duration::from_millis(1234));
    let ctl = cmsg::encode(&[Cmsg::rights(&[u, x])]);
    a.sendmsg(x, &[b"two ", b"fds"], &ctl, None, MsgFlags::NONE)
        .unwrap();
    let mut control = vec![0u8; 256];
    let mut data = [0u8; 16];
    a.recvmsg(y, &mut [&mut data], &mut control, MsgFlags::NONE)
        .unwrap();
    for o in OptName::ALL {
        let _ = a.getsockopt(y, *o);
    }
    let _ = a.poll(x, Interest::READ, 50);
    let _ = a.getaddrinfo(
        Some(b"localhost".as_slice()),
        Some(b"http".as_slice()),
        &AddrInfoHints::default(),
    );
    let _ = a.getaddrinfo(
        Some(b"nowhere.invalid".as_slice()),
        None,
        &AddrInfoHints::default(),
    );
    let _ = a.getnameinfo(&SockAddr::v6(a.ipv6(), 443), 0);
    let _ = a.interfaces();
}

/// The chaos test's random program (`chaos.rs`), seed 5, 300 steps.
fn pinned_chaos(sim: &Sim) {
    super::chaos::program(sim, 5, 300);
}

/// Digests of fixed scenarios, pinned. The same constants hold on x86_64 and on aarch64
/// (`cargo xtask ci --step aarch64` runs this test under qemu), in debug and release
/// builds: the digest hashes fixed-width little-endian encodings only.
///
/// A change to the simulator that alters what these programs observe changes the
/// digests; then check that the change was meant and update the constants from the
/// message (it lists every scenario's actual digest).
#[test]
fn pinned_digests_are_the_same_on_every_architecture() {
    type Scenario = fn(&Sim);
    let pinned: [(&str, u64, Scenario); 4] = [
        ("tcp_faults", 0x542ca37de7fc7ff7, pinned_tcp_faults),
        ("udp", 0x6f855dc3e39c9876, pinned_udp),
        ("unix_netdb", 0x06dd5e2532a9946e, pinned_unix_netdb),
        ("chaos", 0x10413320d1417430, pinned_chaos),
    ];
    let mut report = String::new();
    let mut ok = true;
    for (name, want, scenario) in pinned {
        let got = check_determinism(2024, |sim| {
            scenario(sim);
            sim.trace_digest()
        })
        .unwrap_or_else(|d| panic!("{name}: {d}"));
        let sim = Sim::builder(2024).keep_trace(false).build();
        scenario(&sim);
        assert_eq!(
            sim.trace_digest(),
            got,
            "{name}: the kept trace changed the digest"
        );
        ok &= got == want;
        report += &format!("        (\"{name}\", {got:#018x}, pinned_{name}),\n");
    }
    assert!(
        ok,
        "pinned digests changed (arch {}); actual values:\n{report}",
        std::env::consts::ARCH
    );
}
