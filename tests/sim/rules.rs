//! Programmable packet rules: what a rule sees, each verdict changing a workload
//! observably, stacking, link scope, removal, seeded randomness and exact replay.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use llsocket_api::{
    Errno, Family, Fd, Interest, MsgFlags, Protocol, SockAddr, SockType, SocketOps,
};
use llsocket_sim::{Host, Latency, LinkConfig, Proto, Sim, TcpFlags, Verdict, HOLD_LIMIT};

use super::two_hosts;

/// A non-blocking UDP socket of `h` bound to its own address and `port`.
fn udp(h: &Host, port: u16) -> Fd {
    let s = h
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    h.bind(s, &SockAddr::v4(h.ipv4(), port)).unwrap();
    s
}

/// Every datagram waiting on `s`, in order.
fn drain(h: &Host, s: Fd) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok(n) = h.recv(s, &mut buf, MsgFlags::NONE) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Sends `msgs` from a:5000 to b:6000, runs 1 s, returns what b got.
fn datagrams(sim: &Sim, a: &Host, b: &Host, msgs: &[&str]) -> Vec<String> {
    let (x, y) = (udp(a, 5000), udp(b, 6000));
    for m in msgs {
        a.sendto(
            x,
            m.as_bytes(),
            &SockAddr::v4(b.ipv4(), 6000),
            MsgFlags::NONE,
        )
        .unwrap();
    }
    sim.advance(Duration::from_secs(1));
    let got = drain(b, y)
        .into_iter()
        .map(|v| String::from_utf8(v).unwrap())
        .collect();
    a.close(x).unwrap();
    b.close(y).unwrap();
    got
}

/// A TCP connection a -> b:port: (client, server side).
fn tcp(a: &Host, b: &Host, port: u16) -> (Fd, Fd) {
    let l = b
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    b.bind(l, &SockAddr::v4(b.ipv4(), port)).unwrap();
    b.listen(l, 4).unwrap();
    let c = a
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    a.connect(c, &SockAddr::v4(b.ipv4(), port)).unwrap();
    let s = b.accept(l, false).unwrap().fd;
    b.close(l).unwrap();
    (c, s)
}

/// The virtual time one echo round trip over `c`/`s` takes.
fn round_trip(sim: &Sim, a: &Host, b: &Host, c: Fd, s: Fd) -> Duration {
    let t0 = sim.now();
    let mut buf = [0u8; 16];
    a.send(c, b"ping", MsgFlags::NONE).unwrap();
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 4);
    b.send(s, b"pong", MsgFlags::NONE).unwrap();
    assert_eq!(a.recv(c, &mut buf, MsgFlags::NONE).unwrap(), 4);
    sim.now() - t0
}

#[test]
fn a_rule_sees_every_packet_with_its_fields() {
    let (sim, a, b) = two_hosts(1);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    sim.add_rule(move |p, _| {
        log.borrow_mut().push((
            p.time,
            p.src_host.to_string(),
            p.dst_host.to_string(),
            p.src,
            p.dst,
            p.proto,
            p.flags,
            p.payload.to_vec(),
            p.attempt,
        ));
        Verdict::Pass
    });
    sim.advance(Duration::from_millis(3));
    let (c, s) = tcp(&a, &b, 80);
    a.send(c, b"hello", MsgFlags::NONE).unwrap();
    let x = udp(&a, 7);
    a.sendto(x, b"dgram", &SockAddr::v4(b.ipv4(), 9), MsgFlags::NONE)
        .unwrap();
    a.close(c).unwrap();
    let seen = seen.borrow();
    let kinds: Vec<_> = seen
        .iter()
        .map(|e| (e.1.as_str(), e.6, e.7.len()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a", TcpFlags::SYN, 0),
            ("b", TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0), 0),
            ("a", TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0), 5),
            ("a", TcpFlags(0), 5),
            ("a", TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0), 0),
        ],
        "{}",
        sim.replay_hint()
    );
    let syn = &seen[0];
    assert_eq!(syn.0, Duration::from_millis(3));
    assert_eq!((syn.1.as_str(), syn.2.as_str()), ("a", "b"));
    assert_eq!(syn.4, "10.0.0.2:80".parse().unwrap());
    assert_eq!(syn.3.ip(), a.ipv4());
    assert_eq!(syn.5, Proto::Tcp);
    assert_eq!(seen[2].7, b"hello");
    assert_eq!(
        seen[2].3, syn.3,
        "the data segment leaves from the connecting port"
    );
    assert_eq!(seen[3].5, Proto::Udp);
    assert_eq!(seen[3].4, "10.0.0.2:9".parse().unwrap());
    assert_eq!(seen[3].3.port(), 7);
    assert!(seen.iter().all(|e| e.8 == 0));
    let _ = s;
}

#[test]
fn drop_loses_datagrams_and_tcp_retransmits() {
    let (sim, a, b) = two_hosts(2);
    let rule = sim.add_rule(|p, _| {
        if p.payload == b"two" {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    assert_eq!(
        datagrams(&sim, &a, &b, &["one", "two", "three"]),
        ["one", "three"]
    );
    // TCP: the first transmission of a segment is dropped, the retransmission (200 ms
    // later) passes.
    sim.remove_rule(rule);
    let attempts = Rc::new(RefCell::new(Vec::new()));
    let log = attempts.clone();
    sim.add_rule(move |p, _| {
        if p.payload.is_empty() {
            return Verdict::Pass;
        }
        log.borrow_mut().push(p.attempt);
        if p.attempt == 0 {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    let (c, s) = tcp(&a, &b, 81);
    let t0 = sim.now();
    a.send(c, b"data", MsgFlags::NONE).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 4);
    assert_eq!(sim.now() - t0, Duration::from_millis(200));
    assert_eq!(*attempts.borrow(), [0, 1]);
    let trace = sim.trace().join("\n");
    assert!(trace.contains("rule-drop"), "{trace}");
}

#[test]
fn delay_adds_up_across_stacked_rules_and_link_rules_are_one_way() {
    let (sim, a, b) = two_hosts(3);
    let (c, s) = tcp(&a, &b, 80);
    assert_eq!(round_trip(&sim, &a, &b, c, s), Duration::ZERO);
    let r1 = sim.add_link_rule(&a, &b, |_, _| Verdict::Delay(Duration::from_millis(10)));
    assert_eq!(round_trip(&sim, &a, &b, c, s), Duration::from_millis(10));
    let r2 = sim.add_rule(|_, _| Verdict::Delay(Duration::from_millis(20)));
    // a -> b: 10 + 20; b -> a: 20 (the link rule is one way)
    assert_eq!(round_trip(&sim, &a, &b, c, s), Duration::from_millis(50));
    assert!(sim.remove_rule(r1));
    assert!(!sim.remove_rule(r1), "removed already");
    assert_eq!(round_trip(&sim, &a, &b, c, s), Duration::from_millis(40));
    // a drop stops the stack: the rules after it do not see the packet
    let after = Rc::new(RefCell::new(0));
    sim.add_rule(|p, _| {
        if p.proto == Proto::Udp {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    });
    let count = after.clone();
    sim.add_rule(move |_, _| {
        *count.borrow_mut() += 1;
        Verdict::Pass
    });
    assert!(datagrams(&sim, &a, &b, &["x"]).is_empty());
    assert_eq!(*after.borrow(), 0);
    sim.remove_rule(r2);
    // rules also apply on top of a link's own latency (the built-in rule comes first)
    let slow = LinkConfig {
        latency: Latency::Fixed(Duration::from_millis(5)),
        ..LinkConfig::default()
    };
    sim.set_link_both(&a, &b, slow);
    let r3 = sim.add_link_rule(&b, &a, |_, _| Verdict::Delay(Duration::from_millis(1)));
    assert_eq!(round_trip(&sim, &a, &b, c, s), Duration::from_millis(11));
    sim.remove_rule(r3);
    assert_eq!(
        *after.borrow(),
        2,
        "the counting rule saw the ping and the pong"
    );
}

#[test]
fn duplicate_delivers_a_second_datagram_and_tcp_ignores_the_copy() {
    let (sim, a, b) = two_hosts(4);
    sim.add_rule(|p, _| {
        if p.payload.starts_with(b"d") {
            Verdict::Duplicate
        } else {
            Verdict::Pass
        }
    });
    assert_eq!(
        datagrams(&sim, &a, &b, &["d1", "x", "d2"]),
        ["d1", "d1", "x", "d2", "d2"]
    );
    let (c, s) = tcp(&a, &b, 80);
    a.send(c, b"data", MsgFlags::NONE).unwrap();
    sim.advance(Duration::from_millis(10));
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(s, &mut buf, MsgFlags::DONTWAIT).unwrap(), 4);
    assert_eq!(b.recv(s, &mut buf, MsgFlags::DONTWAIT), Err(Errno::EAGAIN));
}

#[test]
fn hold_back_reorders_behind_the_next_packet_or_waits_out_its_limit() {
    let (sim, a, b) = two_hosts(5);
    sim.add_rule(|p, _| {
        if p.payload == b"first" {
            Verdict::HoldBack
        } else {
            Verdict::Pass
        }
    });
    assert_eq!(
        datagrams(&sim, &a, &b, &["first", "second", "third"]),
        ["second", "first", "third"]
    );
    // alone, it waits out the limit
    let (x, y) = (udp(&a, 5001), udp(&b, 6001));
    let t0 = sim.now();
    a.sendto(x, b"first", &SockAddr::v4(b.ipv4(), 6001), MsgFlags::NONE)
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(y, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
    assert_eq!(b.poll(y, Interest::READ, 1000), Ok(true));
    assert_eq!(sim.now() - t0, HOLD_LIMIT);
    assert_eq!(b.recv(y, &mut buf, MsgFlags::NONE).unwrap(), 5);
    // a held TCP segment still arrives, in order, once the limit passes
    let (c, s) = tcp(&a, &b, 80);
    a.send(c, b"first", MsgFlags::NONE).unwrap();
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 5);
    assert_eq!(&buf[..5], b"first");
}

#[test]
fn rules_drawing_from_the_seed_replay_exactly() {
    let run = |seed| {
        let (sim, a, b) = two_hosts(seed);
        sim.add_rule(|p, rng| {
            if p.proto != Proto::Udp {
                Verdict::Pass
            } else if rng.chance(0.3) {
                Verdict::Drop
            } else if rng.chance(0.2) {
                Verdict::Delay(rng.duration(Duration::from_millis(1), Duration::from_millis(50)))
            } else if rng.chance(0.1) {
                Verdict::HoldBack
            } else {
                Verdict::Pass
            }
        });
        let msgs: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = msgs.iter().map(String::as_str).collect();
        let got = datagrams(&sim, &a, &b, &refs);
        (got, sim.trace_digest())
    };
    let (got, digest) = run(7);
    assert_eq!(run(7), (got.clone(), digest), "same seed, same run");
    assert!(
        got.len() > 50 && got.len() < 90,
        "about 30 % dropped: {}",
        got.len()
    );
    let mut sorted = got.clone();
    sorted.sort_by_key(|m| m[1..].parse::<u32>().unwrap());
    assert_ne!(got, sorted, "delays and holds reorder");
    assert_ne!(run(8).1, digest, "another seed, another run");
}

#[test]
fn a_rule_on_loopback_takes_the_packet_out_of_the_sending_call() {
    let sim = Sim::new(6);
    let a = sim.host("a");
    let rule = sim.add_link_rule(&a, &a, |_, _| Verdict::Delay(Duration::from_millis(7)));
    let s = a
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    a.bind(s, &SockAddr::v4("127.0.0.1".parse().unwrap(), 9))
        .unwrap();
    a.sendto(
        s,
        b"x",
        &SockAddr::v4("127.0.0.1".parse().unwrap(), 9),
        MsgFlags::NONE,
    )
    .unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(a.recv(s, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
    sim.advance(Duration::from_millis(7));
    assert_eq!(a.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 1);
    // a passing rule keeps loopback delivery inside the call
    sim.remove_rule(rule);
    sim.add_rule(|_, _| Verdict::Pass);
    a.sendto(
        s,
        b"y",
        &SockAddr::v4("127.0.0.1".parse().unwrap(), 9),
        MsgFlags::NONE,
    )
    .unwrap();
    assert_eq!(a.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 1);
}

#[test]
fn rules_run_in_installation_order_across_world_and_link_scopes() {
    let (sim, a, b) = two_hosts(5);
    let others: Vec<Host> = (0..50).map(|i| sim.host(&format!("o{i}"))).collect();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = |tag: &'static str| {
        let seen = seen.clone();
        move |p: &llsocket_sim::PacketInfo<'_>, _: &mut llsocket_sim::RuleRng<'_>| {
            if p.proto == Proto::Udp {
                seen.borrow_mut().push(tag);
            }
            Verdict::Pass
        }
    };
    // Interleaved: link a->b, world, link a->b, many other links, world, link b->a.
    let first = sim.add_link_rule(&a, &b, log("link-1"));
    sim.add_rule(log("world-1"));
    sim.add_link_rule(&a, &b, log("link-2"));
    for o in &others {
        sim.add_link_rule(o, &b, log("other"));
        sim.add_link_rule(&a, o, log("other"));
    }
    sim.add_rule(log("world-2"));
    sim.add_link_rule(&b, &a, log("reverse"));
    assert_eq!(datagrams(&sim, &a, &b, &["x"]), ["x"]);
    assert_eq!(*seen.borrow(), ["link-1", "world-1", "link-2", "world-2"]);
    // Removing one keeps the order of the rest.
    seen.borrow_mut().clear();
    assert!(sim.remove_rule(first));
    assert_eq!(datagrams(&sim, &a, &b, &["y"]), ["y"]);
    assert_eq!(*seen.borrow(), ["world-1", "link-2", "world-2"]);
    // The other direction sees the world rules and its own.
    seen.borrow_mut().clear();
    assert_eq!(datagrams(&sim, &b, &a, &["z"]), ["z"]);
    assert_eq!(*seen.borrow(), ["world-1", "world-2", "reverse"]);
}
