//! Name resolution and interfaces.

use std::net::Ipv4Addr;

use llsocket_api::{AddrInfoHints, Errno, Family, GaiError, SockAddr, SocketOps};
use llsocket_posix::Posix;

#[test]
fn numeric_getaddrinfo() {
    let hints = AddrInfoHints {
        family: Family::INET,
        flags: libc::AI_NUMERICHOST | libc::AI_NUMERICSERV,
        ..Default::default()
    };
    let res = Posix
        .getaddrinfo(
            Some(b"127.0.0.1".as_slice()),
            Some(b"8080".as_slice()),
            &hints,
        )
        .unwrap();
    assert!(!res.is_empty());
    assert!(res
        .iter()
        .all(|ai| ai.addr == SockAddr::v4(Ipv4Addr::LOCALHOST, 8080)));
}

#[test]
fn getaddrinfo_without_node_and_service_is_eai_noname() {
    let e = Posix
        .getaddrinfo(None, None, &AddrInfoHints::default())
        .unwrap_err();
    assert_eq!(e.code, GaiError::EAI_NONAME.code);
}

#[test]
fn numeric_getnameinfo() {
    let ni = Posix
        .getnameinfo(
            &SockAddr::v4(Ipv4Addr::LOCALHOST, 8080),
            libc::NI_NUMERICHOST | libc::NI_NUMERICSERV,
        )
        .unwrap();
    assert_eq!(
        (
            std::str::from_utf8(&ni.host).unwrap(),
            std::str::from_utf8(&ni.service).unwrap()
        ),
        ("127.0.0.1", "8080")
    );
}

#[test]
fn interfaces_include_loopback_with_127_0_0_1() {
    let p = Posix;
    let all = p.interfaces().unwrap();
    let lo = all
        .iter()
        .find(|i| {
            i.flags.loopback
                && i.inet
                    .iter()
                    .any(|a| a.address == Some(SockAddr::v4(Ipv4Addr::LOCALHOST, 0)))
        })
        .unwrap_or_else(|| panic!("no loopback with 127.0.0.1 in {all:?}"));
    let idx = lo.index.unwrap();
    assert_eq!(p.if_nametoindex(&lo.name).unwrap(), idx);
    assert_eq!(p.if_indextoname(idx).unwrap(), lo.name);
    assert!(lo.mtu.is_some_and(|m| m > 0));
    let fd = p
        .socket(
            Family::INET,
            llsocket_api::SockType::DGRAM,
            Default::default(),
            false,
        )
        .unwrap();
    let ip = p.interface_ipv4(fd, &lo.name);
    let unknown = p.interface_ipv4(fd, b"no-such-if0");
    p.close(fd).unwrap();
    assert_eq!(ip.unwrap(), Ipv4Addr::LOCALHOST);
    assert!(unknown.is_err());
    let e = p.if_nametoindex(b"no-such-if0").unwrap_err();
    assert!([Errno::ENODEV, Errno::ENXIO].contains(&e), "{e:?}");
    assert_eq!(p.if_indextoname(u32::MAX).unwrap_err(), Errno::ENXIO);
}
