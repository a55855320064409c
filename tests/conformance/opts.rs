//! Socket options: defaults, set-then-get round trips, the kernel's adjustments.

use std::net::Ipv4Addr;

use super::conformance;
use llsocket_api::opt::{Linger, Timeval};
use llsocket_api::{Errno, Family, Fd, OptName, Protocol, SockOpt, SockType, SocketOps};

/// Sets `opt` and reads it back.
fn round_trip(o: &dyn SocketOps, fd: Fd, opt: SockOpt) -> SockOpt {
    o.setsockopt(fd, opt)
        .unwrap_or_else(|e| panic!("set {opt:?}: {e:?}"));
    o.getsockopt(fd, opt.name())
        .unwrap_or_else(|e| panic!("get {:?}: {e:?}", opt.name()))
}

/// Sets `opt` and checks it reads back unchanged.
fn same(o: &dyn SocketOps, fd: Fd, opt: SockOpt) {
    assert_eq!(round_trip(o, fd, opt), opt);
}

conformance!(boolean_options_round_trip, |b: &dyn Backend| {
    let o = b.ops();
    let t = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let bools: [fn(bool) -> SockOpt; 9] = [
        SockOpt::ReuseAddr,
        SockOpt::ReusePort,
        SockOpt::Broadcast,
        SockOpt::KeepAlive,
        SockOpt::OobInline,
        SockOpt::DontRoute,
        SockOpt::Timestamp,
        SockOpt::TcpNoDelay,
        SockOpt::TcpCork,
    ];
    for f in bools {
        // All of these are off on a fresh TCP socket.
        assert_eq!(o.getsockopt(t, f(false).name()).unwrap(), f(false));
        same(o, t, f(true));
        same(o, t, f(false));
    }
    let u = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    same(o, u, SockOpt::Broadcast(true));
    same(o, u, SockOpt::ReuseAddr(true));
    // The unix family takes the generic socket-level ones.
    let (x, _y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    same(o, x, SockOpt::KeepAlive(true));
    same(o, x, SockOpt::ReuseAddr(true));
});

conformance!(integer_options_round_trip, |b: &dyn Backend| {
    let o = b.ops();
    let t = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    same(o, t, SockOpt::TcpKeepIntvl(17));
    same(o, t, SockOpt::TcpKeepCnt(5));
    same(o, t, SockOpt::TcpKeepAlive(300));
    same(o, t, SockOpt::RcvLowat(64));
    // SO_SNDLOWAT is fixed at 1 on Linux and cannot be set.
    assert_eq!(
        o.getsockopt(t, OptName::SndLowat).unwrap(),
        SockOpt::SndLowat(1)
    );
    assert_eq!(
        o.setsockopt(t, SockOpt::SndLowat(10)).unwrap_err(),
        Errno::ENOPROTOOPT
    );
    // Read-only state.
    assert_eq!(o.getsockopt(t, OptName::Error).unwrap(), SockOpt::Error(0));
    assert_eq!(
        o.getsockopt(t, OptName::AcceptConn).unwrap(),
        SockOpt::AcceptConn(false)
    );
    assert_eq!(
        o.getsockopt(t, OptName::Type).unwrap(),
        SockOpt::Type(SockType::STREAM.raw())
    );
});

conformance!(buffer_sizes_are_doubled, |b: &dyn Backend| {
    let o = b.ops();
    for (family, ty) in [
        (Family::INET, SockType::STREAM),
        (Family::INET6, SockType::DGRAM),
        (Family::UNIX, SockType::STREAM),
    ] {
        let fd = o.socket(family, ty, Protocol::DEFAULT, false).unwrap();
        // Linux stores twice the requested size (bookkeeping overhead) and reports that.
        for v in [8192, 65536, 100_000] {
            assert_eq!(
                round_trip(o, fd, SockOpt::RcvBuf(v)),
                SockOpt::RcvBuf(2 * v),
                "{family:?}/{ty:?}"
            );
            assert_eq!(
                round_trip(o, fd, SockOpt::SndBuf(v)),
                SockOpt::SndBuf(2 * v),
                "{family:?}/{ty:?}"
            );
        }
        // Defaults are positive.
        o.close(fd).unwrap();
        let fd = o.socket(family, ty, Protocol::DEFAULT, false).unwrap();
        for name in [OptName::RcvBuf, OptName::SndBuf] {
            match o.getsockopt(fd, name).unwrap() {
                SockOpt::RcvBuf(v) | SockOpt::SndBuf(v) => assert!(v > 0, "{name:?} {v}"),
                other => panic!("{other:?}"),
            }
        }
    }
});

conformance!(timeouts_and_linger_round_trip, |b: &dyn Backend| {
    let o = b.ops();
    let t = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    // Zero (no timeout) by default.
    assert_eq!(
        o.getsockopt(t, OptName::RcvTimeo).unwrap(),
        SockOpt::RcvTimeo(Timeval::default())
    );
    // Values that are whole jiffies for every HZ (100, 250, 300, 1000).
    for tv in [
        Timeval {
            sec: 1,
            usec: 500_000,
        },
        Timeval {
            sec: 0,
            usec: 200_000,
        },
        Timeval { sec: 7, usec: 0 },
        Timeval::default(),
    ] {
        same(o, t, SockOpt::RcvTimeo(tv));
        same(o, t, SockOpt::SndTimeo(tv));
    }
    // A microsecond count out of range is EDOM.
    assert_eq!(
        o.setsockopt(
            t,
            SockOpt::RcvTimeo(Timeval {
                sec: 0,
                usec: 1_000_000
            })
        )
        .unwrap_err(),
        Errno::EDOM
    );
    assert_eq!(
        o.getsockopt(t, OptName::Linger).unwrap(),
        SockOpt::Linger(Linger::default())
    );
    let on = Linger {
        enabled: true,
        secs: 3,
    };
    same(o, t, SockOpt::Linger(on));
    same(
        o,
        t,
        SockOpt::Linger(Linger {
            enabled: true,
            secs: 0,
        }),
    );
    same(o, t, SockOpt::Linger(on));
    // Turning linger off keeps the stored time: the kernel ignores l_linger then.
    assert_eq!(
        round_trip(
            o,
            t,
            SockOpt::Linger(Linger {
                enabled: false,
                secs: 9
            })
        ),
        SockOpt::Linger(Linger {
            enabled: false,
            secs: 3
        })
    );
});

conformance!(multicast_options_round_trip, |b: &dyn Backend| {
    let o = b.ops();
    let u4 = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(
        o.getsockopt(u4, OptName::MulticastLoopV4).unwrap(),
        SockOpt::MulticastLoopV4(true)
    );
    assert_eq!(
        o.getsockopt(u4, OptName::MulticastTtlV4).unwrap(),
        SockOpt::MulticastTtlV4(1)
    );
    assert_eq!(
        o.getsockopt(u4, OptName::MulticastIfV4).unwrap(),
        SockOpt::MulticastIfV4(Ipv4Addr::UNSPECIFIED)
    );
    same(o, u4, SockOpt::MulticastLoopV4(false));
    same(o, u4, SockOpt::MulticastLoopV4(true));
    same(o, u4, SockOpt::MulticastTtlV4(5));
    same(o, u4, SockOpt::MulticastTtlV4(255));
    same(o, u4, SockOpt::MulticastTtlV4(0));
    // -1 means "the default", which is 1.
    assert_eq!(
        round_trip(o, u4, SockOpt::MulticastTtlV4(-1)),
        SockOpt::MulticastTtlV4(1)
    );
    same(o, u4, SockOpt::MulticastIfV4(Ipv4Addr::LOCALHOST));
    same(o, u4, SockOpt::MulticastIfV4(Ipv4Addr::UNSPECIFIED));
    let u6 = o
        .socket(Family::INET6, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(
        o.getsockopt(u6, OptName::MulticastLoopV6).unwrap(),
        SockOpt::MulticastLoopV6(true)
    );
    assert_eq!(
        o.getsockopt(u6, OptName::MulticastHopsV6).unwrap(),
        SockOpt::MulticastHopsV6(1)
    );
    assert_eq!(
        o.getsockopt(u6, OptName::MulticastIfV6).unwrap(),
        SockOpt::MulticastIfV6(0)
    );
    same(o, u6, SockOpt::MulticastLoopV6(false));
    same(o, u6, SockOpt::MulticastHopsV6(9));
    assert_eq!(
        round_trip(o, u6, SockOpt::MulticastHopsV6(-1)),
        SockOpt::MulticastHopsV6(1)
    );
    assert_eq!(
        o.setsockopt(u6, SockOpt::MulticastHopsV6(256)).unwrap_err(),
        Errno::EINVAL
    );
    let lo = o.if_nametoindex(b"lo").unwrap();
    same(o, u6, SockOpt::MulticastIfV6(lo));
    same(o, u6, SockOpt::MulticastIfV6(0));
    // An interface that does not exist.
    assert_eq!(
        o.setsockopt(u6, SockOpt::MulticastIfV6(999_999))
            .unwrap_err(),
        Errno::ENODEV
    );
});

conformance!(options_on_the_wrong_socket, |b: &dyn Backend| {
    let o = b.ops();
    let u = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    // TCP options on UDP.
    assert_eq!(
        o.setsockopt(u, SockOpt::TcpNoDelay(true)).unwrap_err(),
        Errno::ENOPROTOOPT
    );
    // (Linux answers the read with EOPNOTSUPP.)
    assert_eq!(
        o.getsockopt(u, OptName::TcpNoDelay).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    // IPv6 options on an IPv4 socket.
    assert_eq!(
        o.setsockopt(u, SockOpt::MulticastHopsV6(3)).unwrap_err(),
        Errno::ENOPROTOOPT
    );
    // IP and TCP options on a unix socket.
    let (x, _y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(
        o.setsockopt(x, SockOpt::TcpNoDelay(true)).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    assert_eq!(
        o.getsockopt(x, OptName::TcpNoDelay).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    assert_eq!(
        o.setsockopt(x, SockOpt::MulticastTtlV4(3)).unwrap_err(),
        Errno::EOPNOTSUPP
    );
});

conformance!(
    every_option_reads_back_as_its_own_variant,
    |b: &dyn Backend| {
        let o = b.ops();
        for (family, ty) in [
            (Family::INET, SockType::STREAM),
            (Family::INET, SockType::DGRAM),
            (Family::INET6, SockType::STREAM),
            (Family::INET6, SockType::DGRAM),
        ] {
            let fd = o.socket(family, ty, Protocol::DEFAULT, false).unwrap();
            let mut readable = Vec::new();
            for &name in OptName::ALL {
                if let Ok(v) = o.getsockopt(fd, name) {
                    assert_eq!(v.name(), name);
                    readable.push(name);
                }
            }
            // Which options a socket answers depends only on its family and type.
            let tcp = ty == SockType::STREAM;
            let v4 = family == Family::INET;
            for &name in OptName::ALL {
                let expect = match name {
                    OptName::TcpNoDelay
                    | OptName::TcpKeepIntvl
                    | OptName::TcpKeepCnt
                    | OptName::TcpKeepAlive
                    | OptName::TcpCork => tcp,
                    OptName::MulticastLoopV4 | OptName::MulticastTtlV4 | OptName::MulticastIfV4 => {
                        // IPv6 sockets answer the IPv4 multicast options too (dual stack).
                        true
                    }
                    OptName::MulticastLoopV6
                    | OptName::MulticastHopsV6
                    | OptName::MulticastIfV6 => !v4,
                    _ => true,
                };
                assert_eq!(
                    readable.contains(&name),
                    expect,
                    "{name:?} on {family:?}/{ty:?}"
                );
            }
            o.close(fd).unwrap();
        }
    }
);
