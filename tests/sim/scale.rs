//! Worlds at cluster scale: 10 000 hosts boot, route, resolve, list their interfaces
//! and tear down; a full world says so; link rules and partitions between groups of
//! hosts change what thousands of links do with a few calls.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use llsocket_api::{
    AddrInfoHints, Errno, Fd, GaiError, MsgFlags, SockAddr, SockOpt, SockType, SocketOps,
};
use llsocket_sim::{Host, Latency, LinkConfig, Sim, SimError, MAX_HOSTS};

use super::{listener, recv_exact, tcp, udp};

/// A world of `n` hosts named `node0`, `node1`, ...
fn world(seed: u64, n: usize) -> (Sim, Vec<Host>) {
    let sim = Sim::new(seed);
    let hosts = (0..n).map(|i| sim.host(&format!("node{i}"))).collect();
    (sim, hosts)
}

/// A TCP connection `cli` -> `srv`:`port`, a message each way, and the virtual time it took.
fn echo(sim: &Sim, cli: &Host, srv: &Host, port: u16) -> (Fd, Fd, Fd, Duration) {
    let t0 = sim.now();
    let l = listener(srv, port, 16);
    let c = tcp(cli);
    cli.connect(c, &SockAddr::v4(srv.ipv4(), port))
        .unwrap_or_else(|e| panic!("connect: {e:?}; {}", sim.replay_hint()));
    let s = srv.accept(l, false).unwrap().fd;
    cli.send(c, b"ping", MsgFlags::NONE).unwrap();
    assert_eq!(recv_exact(sim, srv, s, 4), b"ping", "{}", sim.replay_hint());
    srv.send(s, b"pong", MsgFlags::NONE).unwrap();
    assert_eq!(recv_exact(sim, cli, c, 4), b"pong", "{}", sim.replay_hint());
    (c, s, l, sim.now() - t0)
}

fn close_all(h: &Host) {
    for fd in h.open_fds() {
        h.close(fd).unwrap();
    }
}

#[test]
fn ten_thousand_hosts_boot_route_resolve_and_tear_down() {
    let (sim, hosts) = world(11, 10_000);
    assert_eq!(sim.host_count(), 10_000);
    let (first, last) = (&hosts[0], &hosts[9_999]);
    // The plan: 254 hosts per /24 (and /64) segment, the first as they always were.
    assert_eq!(first.ipv4(), Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(hosts[253].ipv4(), Ipv4Addr::new(10, 0, 0, 254));
    assert_eq!(hosts[254].ipv4(), Ipv4Addr::new(10, 0, 1, 1));
    assert_eq!(
        hosts[254].ipv6(),
        "fd00:0:0:1::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(last.ipv4(), Ipv4Addr::new(10, 0, 39, 94));
    assert_eq!(last.ipv6(), "fd00:0:0:27::5e".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        sim.find_host("NODE9999").map(|h| h.ipv4()),
        Some(last.ipv4())
    );
    assert!(sim.find_host("node10000").is_none());

    // Routing: TCP between the far ends and across a segment boundary, UDP both ways.
    let (c1, s1, l1, _) = echo(&sim, first, last, 7000);
    let (c2, s2, l2, _) = echo(&sim, &hosts[5_000], &hosts[253], 7001);
    assert_eq!(
        first.getpeername(c1).unwrap(),
        SockAddr::v4(last.ipv4(), 7000)
    );
    assert_eq!(
        last.getpeername(s1).unwrap().as_socket_addr().unwrap().ip(),
        first.ipv4()
    );
    let (u0, u9) = (udp(first), udp(last));
    last.bind(u9, &SockAddr::v4(last.ipv4(), 5353)).unwrap();
    first
        .sendto(
            u0,
            b"query",
            &SockAddr::v4(last.ipv4(), 5353),
            MsgFlags::NONE,
        )
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = last.recvfrom(u9, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(&buf[..n], b"query");
    let from = from.unwrap();
    last.sendto(u9, b"answer", &from, MsgFlags::NONE).unwrap();
    let (n, back) = first.recvfrom(u0, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(
        (&buf[..n], back),
        (b"answer".as_slice(), Some(SockAddr::v4(last.ipv4(), 5353)))
    );
    // Nobody at the next address of the plan: the datagram is dropped, no error.
    let empty = SockAddr::v4(Ipv4Addr::new(10, 0, 39, 95), 5353);
    assert_eq!(first.sendto(u0, b"x", &empty, MsgFlags::NONE), Ok(1));

    // Names: getaddrinfo of a high-numbered host, getnameinfo of its addresses.
    let hints = AddrInfoHints {
        socktype: SockType::STREAM,
        ..AddrInfoHints::default()
    };
    let r = first
        .getaddrinfo(Some(b"node9999".as_slice()), Some(b"80".as_slice()), &hints)
        .unwrap();
    let addrs: Vec<SockAddr> = r.into_iter().map(|a| a.addr).collect();
    assert_eq!(
        addrs,
        vec![SockAddr::v4(last.ipv4(), 80), SockAddr::v6(last.ipv6(), 80)]
    );
    for addr in [SockAddr::v4(last.ipv4(), 22), SockAddr::v6(last.ipv6(), 22)] {
        let ni = first.getnameinfo(&addr, 0).unwrap();
        assert_eq!(
            (ni.host, ni.service),
            (b"node9999".to_vec(), b"ssh".to_vec())
        );
    }
    let ni = first.getnameinfo(&empty, 0).unwrap();
    assert_eq!(ni.host, b"10.0.39.95".to_vec());
    assert_eq!(
        first.getnameinfo(&empty, libc::NI_NAMEREQD),
        Err(GaiError::EAI_NONAME)
    );

    // Interfaces: eth0 carries the plan's address, its /24 and /64, its segment's broadcast.
    let ifs = last.interfaces().unwrap();
    let eth0 = ifs.iter().find(|i| i.name == b"eth0").unwrap();
    let inet = &eth0.inet[0];
    assert_eq!(inet.address, Some(SockAddr::v4(last.ipv4(), 0)));
    assert_eq!(
        inet.netmask,
        Some(SockAddr::v4(Ipv4Addr::new(255, 255, 255, 0), 0))
    );
    assert_eq!(
        inet.broadcast,
        Some(SockAddr::v4(Ipv4Addr::new(10, 0, 39, 255), 0))
    );
    let inet6 = &eth0.inet6[0];
    assert_eq!(inet6.address, Some(SockAddr::v6(last.ipv6(), 0)));
    assert_eq!(
        inet6.netmask,
        Some(SockAddr::v6(Ipv6Addr::from(u128::MAX << 64), 0))
    );
    assert_eq!(eth0.hwaddr, Some(vec![0x02, 0, 0, 0, 0x27, 0x10]));
    assert_eq!(
        last.interface_ipv4(u9, b"eth0"),
        Ok(last.ipv4()),
        "{}",
        sim.replay_hint()
    );

    // The broadcast domain is the segment: node9998 (10.0.39.93) hears it, node0 not.
    let neighbour = &hosts[9_998];
    let (un, u0b) = (udp(neighbour), udp(first));
    let any = |p| SockAddr::v4(Ipv4Addr::UNSPECIFIED, p);
    neighbour.bind(un, &any(6000)).unwrap();
    first.bind(u0b, &any(6000)).unwrap();
    last.setsockopt(u9, SockOpt::Broadcast(true)).unwrap();
    for to in [Ipv4Addr::new(10, 0, 39, 255), Ipv4Addr::BROADCAST] {
        last.sendto(u9, b"hello", &SockAddr::v4(to, 6000), MsgFlags::NONE)
            .unwrap();
        assert_eq!(neighbour.recv(un, &mut buf, MsgFlags::DONTWAIT), Ok(5));
        assert_eq!(
            first.recv(u0b, &mut buf, MsgFlags::DONTWAIT),
            Err(Errno::EAGAIN)
        );
    }
    // Another segment's .255 is an ordinary (empty) remote address: no EACCES there.
    first
        .sendto(
            u0b,
            b"x",
            &SockAddr::v4(Ipv4Addr::new(10, 0, 39, 255), 6000),
            MsgFlags::NONE,
        )
        .unwrap();
    assert_eq!(
        neighbour.recv(un, &mut buf, MsgFlags::DONTWAIT),
        Err(Errno::EAGAIN)
    );

    // Tear down: every socket goes (TIME_WAIT holds no socket).
    let _ = (c1, s1, l1, c2, s2, l2);
    for h in [first, last, &hosts[5_000], &hosts[253], neighbour] {
        close_all(h);
    }
    sim.advance(Duration::from_secs(120));
    assert_eq!(sim.live_sockets(), 0, "{}", sim.replay_hint());
}

#[test]
fn a_full_world_refuses_another_host() {
    let sim = Sim::builder(3).max_hosts(2).build();
    let a = sim.host("a");
    sim.host("b");
    let digest = sim.trace_digest();
    let err = sim.try_host("c").unwrap_err();
    assert_eq!(err, SimError::WorldFull { max: 2 });
    assert_eq!(
        err.to_string(),
        "llsocket-sim: this world is full (at most 2 hosts)"
    );
    // Nothing changed: no host, no name, no event.
    assert_eq!(sim.host_count(), 2);
    assert!(sim.find_host("c").is_none());
    assert_eq!(sim.trace_digest(), digest);
    let r = a.getaddrinfo(Some(b"c".as_slice()), None, &AddrInfoHints::default());
    assert_eq!(r, Err(GaiError::EAI_NONAME));
    // The default limit is the address plan's: 65 536 segments of 254 hosts.
    assert_eq!(MAX_HOSTS, 65_536 * 254);
    let big = Sim::builder(3).max_hosts(usize::MAX).build();
    assert!(big.try_host("x").is_ok());
}

fn fixed(ms: u64) -> LinkConfig {
    LinkConfig {
        latency: Latency::Fixed(Duration::from_millis(ms)),
        ..LinkConfig::default()
    }
}

#[test]
fn link_rules_between_groups_set_thousands_of_links() {
    let (sim, hosts) = world(12, 1_000);
    sim.group("dc1", &hosts[..500]);
    sim.group("dc2", &hosts[500..]);
    sim.set_link_groups_both("dc1", "dc2", fixed(40));
    assert_eq!(sim.group_members("dc2").len(), 500);
    assert_eq!(sim.group_members("dc2")[0].ipv4(), hosts[500].ipv4());
    assert!(sim.group_members("nosuch").is_empty());
    // Across the groups: 40 ms each way (a round trip for the handshake, then the
    // message and the answer one way each); inside a group: instant.
    let (_, _, _, t) = echo(&sim, &hosts[10], &hosts[900], 7000);
    assert_eq!(t, Duration::from_millis(160), "{}", sim.replay_hint());
    let (_, _, _, t) = echo(&sim, &hosts[10], &hosts[20], 7000);
    assert_eq!(t, Duration::ZERO, "{}", sim.replay_hint());
    // A pair's own configuration wins over the rule (here: the way back is instant).
    sim.set_link(&hosts[901], &hosts[11], LinkConfig::default());
    let (_, _, _, t) = echo(&sim, &hosts[11], &hosts[901], 7000);
    assert_eq!(t, Duration::from_millis(80), "{}", sim.replay_hint());
    // Of two rules for one link, the one set last: host 902 is also "slow".
    sim.group("slow", &hosts[902..903]);
    sim.set_link_groups_both("dc1", "slow", fixed(100));
    let (_, _, _, t) = echo(&sim, &hosts[12], &hosts[902], 7000);
    assert_eq!(t, Duration::from_millis(400), "{}", sim.replay_hint());
    let (_, _, _, t) = echo(&sim, &hosts[12], &hosts[903], 7000);
    assert_eq!(t, Duration::from_millis(160), "{}", sim.replay_hint());
}

#[test]
fn partitions_between_groups_cut_every_link_across() {
    let (sim, hosts) = world(13, 1_000);
    sim.group("dc1", &hosts[..500]);
    sim.group("dc2", &hosts[500..]);
    sim.partition_groups("dc1", "dc2");
    let (a, b, c) = (&hosts[3], &hosts[700], &hosts[300]);
    let (ua, ub, uc) = (udp(a), udp(b), udp(c));
    let port = |h: &Host| SockAddr::v4(h.ipv4(), 9000);
    b.bind(ub, &port(b)).unwrap();
    c.bind(uc, &port(c)).unwrap();
    let mut buf = [0u8; 8];
    a.sendto(ua, b"lost", &port(b), MsgFlags::NONE).unwrap();
    a.sendto(ua, b"inside", &port(c), MsgFlags::NONE).unwrap();
    sim.advance(Duration::from_secs(1));
    assert_eq!(b.recv(ub, &mut buf, MsgFlags::DONTWAIT), Err(Errno::EAGAIN));
    assert_eq!(c.recv(uc, &mut buf, MsgFlags::DONTWAIT), Ok(6));
    // TCP across the cut: the SYNs go unanswered until connect gives up.
    let l = listener(b, 7000, 4);
    let t = tcp(a);
    assert_eq!(
        a.connect(t, &SockAddr::v4(b.ipv4(), 7000)),
        Err(Errno::ETIMEDOUT),
        "{}",
        sim.replay_hint()
    );
    // Healing one pair does not lift the groups' cut; healing the groups does.
    sim.heal(a, b);
    a.sendto(ua, b"still", &port(b), MsgFlags::NONE).unwrap();
    assert_eq!(b.recv(ub, &mut buf, MsgFlags::DONTWAIT), Err(Errno::EAGAIN));
    sim.heal_groups("dc1", "dc2");
    a.sendto(ua, b"healed", &port(b), MsgFlags::NONE).unwrap();
    assert_eq!(b.recv(ub, &mut buf, MsgFlags::DONTWAIT), Ok(6));
    let _ = l;
    assert!(sim.trace().iter().any(|l| l.contains("partition-groups")));
}
