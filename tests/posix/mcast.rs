//! Multicast on loopback: any-source and source-specific membership, loop, TTL and interface.

use std::net::Ipv4Addr;

use llsocket_api::{
    Errno, Family, Interest, McastOp, McastRequest, MsgFlags, Protocol, SockAddr, SockOpt,
    SockType, SocketOps,
};
use llsocket_posix::Posix;

use super::Guard;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A UDP receiver bound to `0.0.0.0:0` and a sender whose multicast goes out on `lo`.
fn pair() -> (llsocket_api::Fd, u16, llsocket_api::Fd) {
    let p = Posix;
    let r = p
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    p.bind(r, &SockAddr::v4(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = p.getsockname(r).unwrap().port().unwrap();
    let s = p
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    p.setsockopt(s, SockOpt::MulticastIfV4(LO)).unwrap();
    p.setsockopt(s, SockOpt::MulticastLoopV4(true)).unwrap();
    p.setsockopt(s, SockOpt::MulticastTtlV4(1)).unwrap();
    (r, port, s)
}

/// Receives one datagram if it arrives within 500 ms.
fn recv_within(r: llsocket_api::Fd) -> Option<Vec<u8>> {
    let p = Posix;
    if !p.poll(r, Interest::READ, 500).unwrap() {
        return None;
    }
    let mut buf = [0u8; 64];
    let n = p.recv(r, &mut buf, MsgFlags::NONE).unwrap();
    Some(buf[..n].to_vec())
}

#[test]
fn any_source_join_receives_and_leave_stops() {
    let p = Posix;
    let (r, port, s) = pair();
    let _g = Guard(vec![r, s]);
    let group = Ipv4Addr::new(239, 1, 2, 3);
    let req = McastRequest::V4 {
        group,
        interface: LO,
    };
    p.multicast(r, McastOp::Join, &req).unwrap();
    // Joining twice is refused.
    assert_eq!(
        p.multicast(r, McastOp::Join, &req).unwrap_err(),
        Errno::EADDRINUSE
    );
    let to = SockAddr::v4(group, port);
    assert_eq!(p.sendto(s, b"hello", &to, MsgFlags::NONE).unwrap(), 5);
    assert_eq!(recv_within(r).as_deref(), Some(&b"hello"[..]));

    p.multicast(r, McastOp::Leave, &req).unwrap();
    assert_eq!(p.sendto(s, b"gone", &to, MsgFlags::NONE).unwrap(), 4);
    // After leaving, nothing arrives (poll waits its full 500 ms for the negative).
    assert_eq!(recv_within(r), None);
    assert_eq!(
        p.multicast(r, McastOp::Leave, &req).unwrap_err(),
        Errno::EADDRNOTAVAIL
    );
}

#[test]
fn source_specific_join_block_unblock_leave() {
    let p = Posix;
    let (r, port, s) = pair();
    let _g = Guard(vec![r, s]);
    let group = Ipv4Addr::new(232, 1, 2, 3);
    let to = SockAddr::v4(group, port);
    let req = McastRequest::SourceV4 {
        group,
        source: LO,
        interface: LO,
    };
    p.multicast(r, McastOp::Join, &req).unwrap();
    p.sendto(s, b"ssm", &to, MsgFlags::NONE).unwrap();
    assert_eq!(recv_within(r).as_deref(), Some(&b"ssm"[..]));

    // A source not in the include list is not delivered.
    let other = McastRequest::SourceV4 {
        group,
        source: Ipv4Addr::new(127, 0, 0, 2),
        interface: LO,
    };
    assert!(p.multicast(r, McastOp::Leave, &other).is_err());

    p.multicast(r, McastOp::Leave, &req).unwrap();
    p.sendto(s, b"late", &to, MsgFlags::NONE).unwrap();
    assert_eq!(recv_within(r), None);
}

#[test]
fn any_source_join_then_block_a_source() {
    let p = Posix;
    let (r, port, s) = pair();
    let _g = Guard(vec![r, s]);
    let group = Ipv4Addr::new(239, 1, 2, 5);
    let to = SockAddr::v4(group, port);
    p.multicast(
        r,
        McastOp::Join,
        &McastRequest::V4 {
            group,
            interface: LO,
        },
    )
    .unwrap();
    let src = McastRequest::SourceV4 {
        group,
        source: LO,
        interface: LO,
    };
    p.multicast(r, McastOp::Block, &src).unwrap();
    p.sendto(s, b"blocked", &to, MsgFlags::NONE).unwrap();
    assert_eq!(recv_within(r), None);
    p.multicast(r, McastOp::Unblock, &src).unwrap();
    p.sendto(s, b"open", &to, MsgFlags::NONE).unwrap();
    assert_eq!(recv_within(r).as_deref(), Some(&b"open"[..]));
}
