//! UDP over loopback: addresses, truncation, empty datagrams, connected sockets,
//! port-unreachable errors, multicast membership.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{conformance, lo4, lo6, recv_vec, udp, Backend, AGAIN};
use llsocket_api::{
    Errno, Family, Interest, McastOp, McastRequest, MsgFlags, OptName, Protocol, SockAddr, SockOpt,
    SockType,
};

fn sendto_recvfrom(b: &dyn Backend, any: SockAddr) {
    let o = b.ops();
    let (x, xa) = udp(b, any.clone(), true);
    let (y, ya) = udp(b, any, true);
    assert_eq!(
        o.getsockopt(x, OptName::Protocol).unwrap(),
        SockOpt::Protocol(libc::IPPROTO_UDP)
    );
    assert!(!o.poll(y, Interest::READ, 0).unwrap());
    assert_eq!(o.sendto(x, b"datagram", &ya, MsgFlags::NONE).unwrap(), 8);
    assert!(o.poll(y, Interest::READ, 0).unwrap());
    let mut buf = [0u8; 64];
    let (n, from) = o.recvfrom(y, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(&buf[..n], b"datagram");
    assert_eq!(from, Some(xa.clone()));
    // Boundaries are kept; an empty datagram is a datagram.
    o.sendto(x, b"one", &ya, MsgFlags::NONE).unwrap();
    assert_eq!(o.sendto(x, b"", &ya, MsgFlags::NONE).unwrap(), 0);
    o.sendto(x, b"three", &ya, MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, y, 64, MsgFlags::NONE).unwrap(), b"one");
    let (n, from) = o.recvfrom(y, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!((n, from), (0, Some(xa.clone())));
    // MSG_TRUNC: the real length, only the buffer's worth written.
    let mut small = [0u8; 2];
    let (n, from) = o.recvfrom(y, &mut small, MsgFlags::TRUNC).unwrap();
    assert_eq!((n, &small), (5, b"th"));
    assert_eq!(from, Some(xa.clone()));
    assert_eq!(recv_vec(b, y, 64, MsgFlags::NONE).unwrap_err(), AGAIN);
    // recvmsg reports truncation in the flags, and the sender.
    o.sendto(x, b"longer than four", &ya, MsgFlags::NONE)
        .unwrap();
    let mut d = [0u8; 4];
    let out = o
        .recvmsg(y, &mut [&mut d[..]], &mut [], MsgFlags::NONE)
        .unwrap();
    assert_eq!(out.bytes, 4);
    assert!(out.flags.contains(MsgFlags::TRUNC), "{:?}", out.flags);
    assert_eq!(out.addr, Some(xa.clone()));
    assert_eq!(&d, b"long");
    // Peeking leaves the datagram queued.
    o.sendto(x, b"peek", &ya, MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, y, 64, MsgFlags::PEEK).unwrap(), b"peek");
    assert_eq!(recv_vec(b, y, 64, MsgFlags::NONE).unwrap(), b"peek");
    // Unconnected: a plain send has no destination.
    assert_eq!(
        o.send(x, b"x", MsgFlags::NONE).unwrap_err(),
        Errno::EDESTADDRREQ
    );
    assert_eq!(o.getpeername(x).unwrap_err(), Errno::ENOTCONN);
}

conformance!(udp_sendto_recvfrom_v4, |b: &dyn Backend| {
    sendto_recvfrom(b, lo4(0));
});

conformance!(udp_sendto_recvfrom_v6, |b: &dyn Backend| {
    sendto_recvfrom(b, lo6(0));
});

conformance!(udp_connected, |b: &dyn Backend| {
    let o = b.ops();
    let (x, xa) = udp(b, lo4(0), true);
    let (y, ya) = udp(b, lo4(0), true);
    let (z, _) = udp(b, lo4(0), true);
    o.connect(x, &ya).unwrap();
    assert_eq!(o.getpeername(x).unwrap(), ya);
    o.send(x, b"to y", MsgFlags::NONE).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = o.recvfrom(y, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!((&buf[..n], from), (&b"to y"[..], Some(xa.clone())));
    // A connected socket only takes datagrams from its peer.
    o.sendto(z, b"from z", &xa, MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
    o.sendto(y, b"from y", &xa, MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap(), b"from y");
    // An unconnected socket binds itself on connect.
    let w = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    o.connect(w, &ya).unwrap();
    let wa = o.getsockname(w).unwrap();
    assert_eq!(wa.as_socket_addr().unwrap().ip().to_string(), "127.0.0.1");
    assert_ne!(wa.port(), Some(0));
    o.send(w, b"w", MsgFlags::NONE).unwrap();
    let (_, from) = o.recvfrom(y, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(from, Some(wa));
});

conformance!(udp_connected_port_unreachable, |b: &dyn Backend| {
    let o = b.ops();
    // A port nobody uses: bind, read the number, close.
    let (gone, ga) = udp(b, lo4(0), true);
    o.close(gone).unwrap();
    let (x, _) = udp(b, lo4(0), true);
    // Unconnected: the ICMP error is not reported.
    o.sendto(x, b"lost", &ga, MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
    // Connected: the next receive reports it, once.
    o.connect(x, &ga).unwrap();
    o.send(x, b"lost", MsgFlags::NONE).unwrap();
    assert_eq!(
        recv_vec(b, x, 16, MsgFlags::NONE).unwrap_err(),
        Errno::ECONNREFUSED
    );
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
    o.send(x, b"lost", MsgFlags::NONE).unwrap();
    assert_eq!(
        o.getsockopt(x, OptName::Error).unwrap(),
        SockOpt::Error(libc::ECONNREFUSED)
    );
    assert_eq!(o.getsockopt(x, OptName::Error).unwrap(), SockOpt::Error(0));
});

conformance!(udp_multicast_membership_v4, |b: &dyn Backend| {
    let o = b.ops();
    let (s, _) = udp(b, SockAddr::v4(Ipv4Addr::UNSPECIFIED, 0), true);
    let group = Ipv4Addr::new(239, 1, 2, 3);
    let req = McastRequest::V4 {
        group,
        interface: Ipv4Addr::LOCALHOST,
    };
    o.multicast(s, McastOp::Join, &req).unwrap();
    assert_eq!(
        o.multicast(s, McastOp::Join, &req).unwrap_err(),
        Errno::EADDRINUSE
    );
    // Any-source memberships cannot block sources.
    assert_eq!(
        o.multicast(s, McastOp::Block, &req).unwrap_err(),
        Errno::EINVAL
    );
    o.multicast(s, McastOp::Leave, &req).unwrap();
    assert_eq!(
        o.multicast(s, McastOp::Leave, &req).unwrap_err(),
        Errno::EADDRNOTAVAIL
    );
    // Not a multicast group.
    let bad = McastRequest::V4 {
        group: Ipv4Addr::new(10, 1, 2, 3),
        interface: Ipv4Addr::LOCALHOST,
    };
    assert_eq!(
        o.multicast(s, McastOp::Join, &bad).unwrap_err(),
        Errno::EINVAL
    );
    // Source-specific membership on loopback.
    let ssm = McastRequest::SourceV4 {
        group: Ipv4Addr::new(232, 1, 2, 3),
        source: Ipv4Addr::LOCALHOST,
        interface: Ipv4Addr::LOCALHOST,
    };
    o.multicast(s, McastOp::Join, &ssm).unwrap();
    o.multicast(s, McastOp::Leave, &ssm).unwrap();
});

conformance!(udp_multicast_loopback_delivery_v4, |b: &dyn Backend| {
    let o = b.ops();
    let group = Ipv4Addr::new(239, 7, 7, 7);
    let (r, ra) = udp(b, SockAddr::v4(Ipv4Addr::UNSPECIFIED, 0), true);
    o.multicast(
        r,
        McastOp::Join,
        &McastRequest::V4 {
            group,
            interface: Ipv4Addr::LOCALHOST,
        },
    )
    .unwrap();
    let (s, _) = udp(b, lo4(0), true);
    o.setsockopt(s, SockOpt::MulticastIfV4(Ipv4Addr::LOCALHOST))
        .unwrap();
    assert_eq!(
        o.getsockopt(s, OptName::MulticastLoopV4).unwrap(),
        SockOpt::MulticastLoopV4(true)
    );
    let to = SockAddr::v4(group, ra.port().unwrap());
    o.sendto(s, b"to the group", &to, MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, r, 64, MsgFlags::NONE).unwrap(), b"to the group");
});

conformance!(udp_multicast_membership_v6, |b: &dyn Backend| {
    let o = b.ops();
    let lo = o.if_nametoindex(b"lo").unwrap();
    let (s, _) = udp(b, SockAddr::v6(Ipv6Addr::UNSPECIFIED, 0), true);
    let req = McastRequest::V6 {
        group: "ff02::1:3".parse().unwrap(),
        interface: lo,
    };
    o.multicast(s, McastOp::Join, &req).unwrap();
    assert_eq!(
        o.multicast(s, McastOp::Join, &req).unwrap_err(),
        Errno::EADDRINUSE
    );
    o.multicast(s, McastOp::Leave, &req).unwrap();
    assert_eq!(
        o.multicast(s, McastOp::Leave, &req).unwrap_err(),
        Errno::EADDRNOTAVAIL
    );
    let bad = McastRequest::V6 {
        group: Ipv6Addr::LOCALHOST,
        interface: lo,
    };
    assert_eq!(
        o.multicast(s, McastOp::Join, &bad).unwrap_err(),
        Errno::EINVAL
    );
});
