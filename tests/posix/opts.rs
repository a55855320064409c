//! Socket options round trip through the kernel.

use llsocket_api::opt::{Linger, Timeval};
use llsocket_api::{Errno, Family, OptName, Protocol, SockOpt, SockType, SocketOps};
use llsocket_posix::Posix;

use super::Guard;

#[test]
fn options_round_trip_on_tcp() {
    let p = Posix;
    let fd = p
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![fd]);
    for on in [true, false] {
        p.setsockopt(fd, SockOpt::ReuseAddr(on)).unwrap();
        assert_eq!(
            p.getsockopt(fd, OptName::ReuseAddr).unwrap(),
            SockOpt::ReuseAddr(on)
        );
        p.setsockopt(fd, SockOpt::TcpNoDelay(on)).unwrap();
        assert_eq!(
            p.getsockopt(fd, OptName::TcpNoDelay).unwrap(),
            SockOpt::TcpNoDelay(on)
        );
    }
    p.setsockopt(fd, SockOpt::RcvBuf(8192)).unwrap();
    match p.getsockopt(fd, OptName::RcvBuf).unwrap() {
        // Linux doubles the value; others keep it.
        SockOpt::RcvBuf(v) => assert!(v >= 8192, "{v}"),
        other => panic!("{other:?}"),
    }
    let l = Linger {
        enabled: true,
        secs: 3,
    };
    p.setsockopt(fd, SockOpt::Linger(l)).unwrap();
    assert_eq!(
        p.getsockopt(fd, OptName::Linger).unwrap(),
        SockOpt::Linger(l)
    );
    let tv = Timeval {
        sec: 1,
        usec: 500_000,
    };
    p.setsockopt(fd, SockOpt::RcvTimeo(tv)).unwrap();
    assert_eq!(
        p.getsockopt(fd, OptName::RcvTimeo).unwrap(),
        SockOpt::RcvTimeo(tv)
    );
    assert_eq!(
        p.getsockopt(fd, OptName::Type).unwrap(),
        SockOpt::Type(SockType::STREAM.raw())
    );
    assert_eq!(
        p.getsockopt(fd, OptName::AcceptConn).unwrap(),
        SockOpt::AcceptConn(false)
    );
}

#[test]
fn tcp_option_on_udp_fails() {
    let p = Posix;
    let fd = p
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![fd]);
    let e = p.setsockopt(fd, SockOpt::TcpNoDelay(true)).unwrap_err();
    assert!(
        [Errno::EOPNOTSUPP, Errno::ENOPROTOOPT, Errno::EINVAL].contains(&e),
        "{e:?}"
    );
}

#[test]
fn every_option_reads_back_as_its_own_variant() {
    let p = Posix;
    for (family, ty) in [
        (Family::INET, SockType::STREAM),
        (Family::INET6, SockType::DGRAM),
    ] {
        let fd = p.socket(family, ty, Protocol::DEFAULT, false).unwrap();
        let _g = Guard(vec![fd]);
        let mut ok = 0;
        for &name in OptName::ALL {
            if let Ok(v) = p.getsockopt(fd, name) {
                assert_eq!(v.name(), name);
                ok += 1;
            }
        }
        assert!(ok >= 15, "only {ok} options readable on {family:?}/{ty:?}");
        assert_eq!(
            p.getsockopt(fd, OptName::Type).unwrap(),
            SockOpt::Type(ty.raw())
        );
        assert_eq!(p.getsockopt(fd, OptName::Error).unwrap(), SockOpt::Error(0));
    }
}

#[test]
fn any_source_block_is_einval() {
    use llsocket_api::{McastOp, McastRequest};
    use std::net::Ipv4Addr;
    let p = Posix;
    let fd = p
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![fd]);
    let req = McastRequest::V4 {
        group: Ipv4Addr::new(239, 1, 2, 3),
        interface: Ipv4Addr::UNSPECIFIED,
    };
    assert_eq!(
        p.multicast(fd, McastOp::Block, &req).unwrap_err(),
        Errno::EINVAL
    );
    // Leaving a group never joined is refused by the kernel.
    assert!(p.multicast(fd, McastOp::Leave, &req).is_err());
}
