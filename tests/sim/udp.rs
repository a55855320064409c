//! UDP: message boundaries, truncation, empty datagrams, connected sockets,
//! broadcast, multicast (any-source and source-specific), receive-buffer drops.

use std::net::Ipv4Addr;

use llsocket_api::{Errno, McastOp, McastRequest, MsgFlags, OptName, SockAddr, SockOpt, SocketOps};
use llsocket_sim::Sim;

use super::{two_hosts, udp};

#[test]
fn boundaries_truncation_and_empty_datagrams() {
    let (sim, a, b) = two_hosts(30);
    let (ua, ub) = (udp(&a), udp(&b));
    let dst = SockAddr::v4(b.ipv4(), 4000);
    b.bind(ub, &dst).unwrap();
    a.sendto(ua, b"first", &dst, MsgFlags::NONE).unwrap();
    a.sendto(ua, b"", &dst, MsgFlags::NONE).unwrap();
    a.sendto(ua, b"third!", &dst, MsgFlags::NONE).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = b.recvfrom(ub, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!((n, &buf[..n]), (5, &b"first"[..]));
    let port = a.getsockname(ua).unwrap().port().unwrap();
    assert_eq!(
        from,
        Some(SockAddr::v4(a.ipv4(), port)),
        "the route's source address"
    );
    assert_eq!(
        b.recv(ub, &mut buf, MsgFlags::NONE),
        Ok(0),
        "an empty datagram"
    );
    let mut small = [0u8; 3];
    assert_eq!(
        b.recv(ub, &mut small, MsgFlags::TRUNC),
        Ok(6),
        "MSG_TRUNC: the real length"
    );
    assert_eq!(&small, b"thi");
    assert_eq!(
        b.recv(ub, &mut buf, MsgFlags::DONTWAIT),
        Err(Errno::EAGAIN),
        "the rest was discarded"
    );
    let mut iov0 = [0u8; 2];
    let mut iov1 = [0u8; 2];
    a.sendto(ua, b"wxyz!", &dst, MsgFlags::NONE).unwrap();
    let out = b
        .recvmsg(
            ub,
            &mut [&mut iov0[..], &mut iov1[..]],
            &mut [],
            MsgFlags::NONE,
        )
        .unwrap();
    assert_eq!(out.bytes, 4);
    assert!(out.flags.contains(MsgFlags::TRUNC));
    assert_eq!((&iov0, &iov1), (b"wx", b"yz"));
    let _ = sim;
}

#[test]
fn connected_udp_and_icmp_refusal() {
    let (sim, a, b) = two_hosts(31);
    let u = udp(&a);
    assert_eq!(a.send(u, b"x", MsgFlags::NONE), Err(Errno::EDESTADDRREQ));
    a.connect(u, &SockAddr::v4(b.ipv4(), 4001)).unwrap();
    assert_eq!(a.getpeername(u), Ok(SockAddr::v4(b.ipv4(), 4001)));
    assert_eq!(a.send(u, b"x", MsgFlags::NONE), Ok(1), "nobody listens yet");
    assert_eq!(
        a.send(u, b"x", MsgFlags::NONE),
        Err(Errno::ECONNREFUSED),
        "{}",
        sim.replay_hint()
    );
    // A connected socket only hears its peer.
    let (p, q) = (udp(&b), udp(&b));
    b.bind(p, &SockAddr::v4(b.ipv4(), 4002)).unwrap();
    b.connect(p, &SockAddr::v4(a.ipv4(), 4003)).unwrap();
    b.sendto(
        q,
        b"stranger",
        &SockAddr::v4(b.ipv4(), 4002),
        MsgFlags::NONE,
    )
    .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(p, &mut buf, MsgFlags::DONTWAIT), Err(Errno::EAGAIN));
}

#[test]
fn broadcast_needs_so_broadcast_and_reaches_every_host() {
    let sim = Sim::new(32);
    let hosts: Vec<_> = (0..3).map(|i| sim.host(&format!("h{i}"))).collect();
    let rx: Vec<_> = hosts
        .iter()
        .map(|h| {
            let u = udp(h);
            h.bind(u, &SockAddr::v4(Ipv4Addr::UNSPECIFIED, 6767))
                .unwrap();
            u
        })
        .collect();
    let tx = udp(&hosts[0]);
    let bc = SockAddr::v4(Ipv4Addr::BROADCAST, 6767);
    assert_eq!(
        hosts[0].sendto(tx, b"hi", &bc, MsgFlags::NONE),
        Err(Errno::EACCES)
    );
    hosts[0].setsockopt(tx, SockOpt::Broadcast(true)).unwrap();
    assert_eq!(hosts[0].sendto(tx, b"hi", &bc, MsgFlags::NONE), Ok(2));
    let mut buf = [0u8; 4];
    for (h, u) in hosts.iter().zip(&rx) {
        assert_eq!(
            h.recv(*u, &mut buf, MsgFlags::DONTWAIT),
            Ok(2),
            "{}: {}",
            h.name(),
            sim.replay_hint()
        );
    }
}

#[test]
fn multicast_any_source_source_specific_and_loop() {
    let (sim, a, b) = two_hosts(33);
    let c = sim.host("c");
    let group = Ipv4Addr::new(239, 1, 2, 3);
    let dst = SockAddr::v4(group, 5000);
    let join = |h: &llsocket_sim::Host, req: McastRequest| {
        let u = udp(h);
        h.bind(u, &SockAddr::v4(Ipv4Addr::UNSPECIFIED, 5000))
            .unwrap();
        h.multicast(u, McastOp::Join, &req).unwrap();
        u
    };
    let rb = join(
        &b,
        McastRequest::V4 {
            group,
            interface: Ipv4Addr::UNSPECIFIED,
        },
    );
    // c only accepts the group from b (source-specific).
    let rc = join(
        &c,
        McastRequest::SourceV4 {
            group,
            source: b.ipv4(),
            interface: Ipv4Addr::UNSPECIFIED,
        },
    );
    let ra = join(
        &a,
        McastRequest::V4 {
            group,
            interface: Ipv4Addr::UNSPECIFIED,
        },
    );
    assert_eq!(
        a.multicast(
            ra,
            McastOp::Join,
            &McastRequest::V4 {
                group,
                interface: Ipv4Addr::UNSPECIFIED
            }
        ),
        Err(Errno::EADDRINUSE)
    );
    let tx = udp(&a);
    a.setsockopt(tx, SockOpt::MulticastLoopV4(false)).unwrap();
    a.sendto(tx, b"from-a", &dst, MsgFlags::NONE).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        b.recv(rb, &mut buf, MsgFlags::DONTWAIT),
        Ok(6),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(
        c.recv(rc, &mut buf, MsgFlags::DONTWAIT),
        Err(Errno::EAGAIN),
        "source filter"
    );
    assert_eq!(
        a.recv(ra, &mut buf, MsgFlags::DONTWAIT),
        Err(Errno::EAGAIN),
        "loop off"
    );
    let txb = udp(&b);
    b.sendto(txb, b"from-b", &dst, MsgFlags::NONE).unwrap();
    assert_eq!(c.recv(rc, &mut buf, MsgFlags::DONTWAIT), Ok(6));
    assert_eq!(
        b.recv(rb, &mut buf, MsgFlags::DONTWAIT),
        Ok(6),
        "loop on by default"
    );
    // TTL 0 stays on the host.
    b.setsockopt(txb, SockOpt::MulticastTtlV4(0)).unwrap();
    b.sendto(txb, b"local", &dst, MsgFlags::NONE).unwrap();
    assert_eq!(
        a.recv(ra, &mut buf, MsgFlags::DONTWAIT),
        Ok(6),
        "the from-b datagram"
    );
    assert_eq!(
        a.recv(ra, &mut buf, MsgFlags::DONTWAIT),
        Err(Errno::EAGAIN),
        "TTL 0"
    );
    // Leave: no more datagrams.
    b.multicast(
        rb,
        McastOp::Leave,
        &McastRequest::V4 {
            group,
            interface: Ipv4Addr::UNSPECIFIED,
        },
    )
    .unwrap();
    while b.recv(rb, &mut buf, MsgFlags::DONTWAIT).is_ok() {}
    a.sendto(tx, b"again", &dst, MsgFlags::NONE).unwrap();
    assert_eq!(b.recv(rb, &mut buf, MsgFlags::DONTWAIT), Err(Errno::EAGAIN));
    assert_eq!(
        a.getsockopt(tx, OptName::MulticastLoopV4),
        Ok(SockOpt::MulticastLoopV4(false))
    );
}

#[test]
fn full_receive_buffer_drops_datagrams() {
    let (sim, a, b) = two_hosts(34);
    let (ua, ub) = (udp(&a), udp(&b));
    let dst = SockAddr::v4(b.ipv4(), 4100);
    b.bind(ub, &dst).unwrap();
    b.setsockopt(ub, SockOpt::RcvBuf(1000)).unwrap(); // 2000 bytes
    for _ in 0..10 {
        a.sendto(ua, &[1u8; 500], &dst, MsgFlags::NONE).unwrap();
    }
    let mut n = 0;
    let mut buf = [0u8; 600];
    while b.recv(ub, &mut buf, MsgFlags::DONTWAIT).is_ok() {
        n += 1;
    }
    assert_eq!(
        n,
        4,
        "2000 bytes of 500-byte datagrams; {}",
        sim.replay_hint()
    );
}
