//! Error paths: closed descriptors, invalid arguments, mismatched families.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{conformance, lo4, lo6, recv_vec};
use llsocket_api::{
    Errno, Family, Fd, Interest, MsgFlags, OptName, Protocol, Shutdown, SockAddr, SockOpt, SockType,
};

conformance!(ebadf_after_close, |b: &dyn Backend| {
    let o = b.ops();
    let s = b.park(
        o.socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap(),
    );
    o.close(s).unwrap();
    assert_eq!(o.close(s).unwrap_err(), Errno::EBADF);
    assert_eq!(o.send(s, b"x", MsgFlags::NONE).unwrap_err(), Errno::EBADF);
    assert_eq!(recv_vec(b, s, 4, MsgFlags::NONE).unwrap_err(), Errno::EBADF);
    assert_eq!(o.bind(s, &lo4(0)).unwrap_err(), Errno::EBADF);
    assert_eq!(o.connect(s, &lo4(1)).unwrap_err(), Errno::EBADF);
    assert_eq!(o.listen(s, 1).unwrap_err(), Errno::EBADF);
    assert_eq!(o.accept(s, false).unwrap_err(), Errno::EBADF);
    assert_eq!(o.shutdown(s, Shutdown::BOTH).unwrap_err(), Errno::EBADF);
    assert_eq!(o.getsockname(s).unwrap_err(), Errno::EBADF);
    assert_eq!(o.getpeername(s).unwrap_err(), Errno::EBADF);
    assert_eq!(o.getsockopt(s, OptName::Type).unwrap_err(), Errno::EBADF);
    assert_eq!(
        o.setsockopt(s, SockOpt::ReuseAddr(true)).unwrap_err(),
        Errno::EBADF
    );
    assert_eq!(o.nonblock(s).unwrap_err(), Errno::EBADF);
    assert_eq!(o.set_nonblock(s, true).unwrap_err(), Errno::EBADF);
    assert_eq!(o.cloexec(s).unwrap_err(), Errno::EBADF);
    assert_eq!(o.dup(s).unwrap_err(), Errno::EBADF);
    assert_eq!(o.atmark(s).unwrap_err(), Errno::EBADF);
    assert_eq!(o.poll(s, Interest::READ, 0).unwrap_err(), Errno::EBADF);
    // The closed-object marker behaves the same everywhere.
    assert_eq!(o.close(Fd::CLOSED).unwrap_err(), Errno::EBADF);
    assert_eq!(
        o.send(Fd::CLOSED, b"x", MsgFlags::NONE).unwrap_err(),
        Errno::EBADF
    );
    assert_eq!(
        o.poll(Fd::CLOSED, Interest::READ, 0).unwrap_err(),
        Errno::EBADF
    );
});

conformance!(socket_argument_errors, |b: &dyn Backend| {
    let o = b.ops();
    // An unknown family.
    assert_eq!(
        o.socket(Family(9999), SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap_err(),
        Errno::EAFNOSUPPORT
    );
    // A protocol that does not fit the type.
    assert_eq!(
        o.socket(Family::INET, SockType::STREAM, Protocol::UDP, false)
            .unwrap_err(),
        Errno::EPROTONOSUPPORT
    );
    assert_eq!(
        o.socket(Family::INET, SockType::DGRAM, Protocol::TCP, false)
            .unwrap_err(),
        Errno::EPROTONOSUPPORT
    );
    // Unix sockets with a protocol.
    assert_eq!(
        o.socket(Family::UNIX, SockType::STREAM, Protocol::TCP, false)
            .unwrap_err(),
        Errno::EPROTONOSUPPORT
    );
    // Explicit protocols that do fit.
    let t = o
        .socket(Family::INET, SockType::STREAM, Protocol::TCP, false)
        .unwrap();
    let u = o
        .socket(Family::INET6, SockType::DGRAM, Protocol::UDP, false)
        .unwrap();
    assert_eq!(
        o.getsockopt(t, OptName::Protocol).unwrap(),
        SockOpt::Protocol(libc::IPPROTO_TCP)
    );
    assert_eq!(
        o.getsockopt(u, OptName::Protocol).unwrap(),
        SockOpt::Protocol(libc::IPPROTO_UDP)
    );
});

conformance!(address_family_mismatch, |b: &dyn Backend| {
    let o = b.ops();
    let s4 = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let s6 = o
        .socket(Family::INET6, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(o.bind(s4, &lo6(0)).unwrap_err(), Errno::EAFNOSUPPORT);
    assert_eq!(o.connect(s4, &lo6(9)).unwrap_err(), Errno::EAFNOSUPPORT);
    assert_eq!(o.bind(s6, &lo4(0)).unwrap_err(), Errno::EINVAL);
    assert_eq!(
        o.bind(s4, &SockAddr::unix_path("/tmp/x")).unwrap_err(),
        Errno::EINVAL
    );
    // An address this host does not have.
    assert_eq!(
        o.bind(s4, &SockAddr::v4(Ipv4Addr::new(192, 0, 2, 200), 0))
            .unwrap_err(),
        Errno::EADDRNOTAVAIL
    );
    assert_eq!(
        o.bind(
            s6,
            &SockAddr::v6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 99), 0)
        )
        .unwrap_err(),
        Errno::EADDRNOTAVAIL
    );
});

conformance!(einval_cases, |b: &dyn Backend| {
    let o = b.ops();
    let (x, _y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(o.shutdown(x, Shutdown(3)).unwrap_err(), Errno::EINVAL);
    assert_eq!(o.shutdown(x, Shutdown(-1)).unwrap_err(), Errno::EINVAL);
    // A connected socketpair end cannot listen or bind.
    assert_eq!(o.listen(x, 1).unwrap_err(), Errno::EINVAL);
    assert_eq!(o.accept(x, false).unwrap_err(), Errno::EINVAL);
    // TCP: accept without listen, bind twice.
    let t = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(o.accept(t, false).unwrap_err(), Errno::EINVAL);
    o.bind(t, &lo4(0)).unwrap();
    assert_eq!(o.bind(t, &lo4(0)).unwrap_err(), Errno::EINVAL);
    // Option values out of range.
    assert_eq!(
        o.setsockopt(t, SockOpt::TcpKeepCnt(0)).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        o.setsockopt(t, SockOpt::TcpKeepIntvl(0)).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        o.setsockopt(t, SockOpt::TcpKeepAlive(0)).unwrap_err(),
        Errno::EINVAL
    );
    let u = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(
        o.setsockopt(u, SockOpt::MulticastTtlV4(256)).unwrap_err(),
        Errno::EINVAL
    );
    // Read-only options cannot be set.
    assert_eq!(
        o.setsockopt(u, SockOpt::Type(1)).unwrap_err(),
        Errno::ENOPROTOOPT
    );
    assert_eq!(
        o.setsockopt(u, SockOpt::Error(0)).unwrap_err(),
        Errno::ENOPROTOOPT
    );
});
