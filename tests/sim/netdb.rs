//! The simulated name service and interfaces.

use std::net::{Ipv4Addr, Ipv6Addr};

use llsocket_api::{
    AddrInfoHints, Errno, Family, GaiError, Protocol, SockAddr, SockType, SocketOps,
};

use super::{two_hosts, udp};

#[test]
fn host_names_services_and_localhost() {
    let (_sim, a, b) = two_hosts(70);
    let hints = AddrInfoHints {
        socktype: SockType::STREAM,
        ..AddrInfoHints::default()
    };
    let r = a
        .getaddrinfo(Some(b"b".as_slice()), Some(b"http".as_slice()), &hints)
        .unwrap();
    let addrs: Vec<SockAddr> = r.iter().map(|x| x.addr.clone()).collect();
    assert_eq!(
        addrs,
        vec![SockAddr::v4(b.ipv4(), 80), SockAddr::v6(b.ipv6(), 80)]
    );
    assert!(r.iter().all(|x| x.protocol == Protocol::TCP));
    let r = a
        .getaddrinfo(
            Some(b"localhost".as_slice()),
            Some(b"7".as_slice()),
            &AddrInfoHints::default(),
        )
        .unwrap();
    assert_eq!(r.len(), 3, "STREAM, DGRAM and RAW for a numeric service");
    assert_eq!(r[0].addr, SockAddr::v4(Ipv4Addr::LOCALHOST, 7));
    assert_eq!(
        a.getaddrinfo(Some(b"nosuch".as_slice()), None, &hints),
        Err(GaiError::EAI_NONAME)
    );
    assert_eq!(
        a.getaddrinfo(Some(b"b".as_slice()), Some(b"nosuch".as_slice()), &hints),
        Err(GaiError::EAI_SERVICE)
    );
    let ni = a.getnameinfo(&SockAddr::v4(b.ipv4(), 443), 0).unwrap();
    assert_eq!(
        (
            std::str::from_utf8(&ni.host).unwrap(),
            std::str::from_utf8(&ni.service).unwrap()
        ),
        ("b", "https")
    );
    let ni = a
        .getnameinfo(
            &SockAddr::v4(b.ipv4(), 443),
            libc::NI_NUMERICHOST | libc::NI_NUMERICSERV,
        )
        .unwrap();
    assert_eq!(
        (
            std::str::from_utf8(&ni.host).unwrap(),
            std::str::from_utf8(&ni.service).unwrap()
        ),
        ("10.0.0.2", "443")
    );
    let passive = AddrInfoHints {
        family: Family::INET6,
        socktype: SockType::DGRAM,
        flags: libc::AI_PASSIVE,
        ..AddrInfoHints::default()
    };
    let r = a
        .getaddrinfo(None, Some(b"53".as_slice()), &passive)
        .unwrap();
    assert_eq!(r[0].addr, SockAddr::v6(Ipv6Addr::UNSPECIFIED, 53));
}

#[test]
fn interfaces_lo_and_eth0() {
    let (_sim, a, b) = two_hosts(71);
    let ifs = b.interfaces().unwrap();
    let names: Vec<&str> = ifs
        .iter()
        .map(|i| std::str::from_utf8(&i.name).unwrap())
        .collect();
    assert_eq!(names, ["lo", "eth0"]);
    assert!(ifs[0].flags.loopback && ifs[1].flags.multicast);
    assert_eq!(ifs[1].inet[0].address, Some(SockAddr::v4(b.ipv4(), 0)));
    assert_eq!(a.if_nametoindex(b"lo"), Ok(1));
    assert_eq!(a.if_nametoindex(b"eth0"), Ok(2));
    assert_eq!(a.if_indextoname(2).as_deref(), Ok(b"eth0".as_slice()));
    assert_eq!(a.if_indextoname(9), Err(Errno::ENXIO));
    let u = udp(&a);
    assert_eq!(a.interface_ipv4(u, b"eth0"), Ok(a.ipv4()));
    assert_eq!(a.interface_ipv4(u, b"lo"), Ok(Ipv4Addr::LOCALHOST));
    assert_eq!(a.interface_ipv4(u, b"wlan9"), Err(Errno::ENODEV));
}

/// Names are bytes on the simulator too: a name that is not UTF-8 is a name the world
/// does not know (never a lossy spelling of one it knows), and unix names of any bytes
/// round-trip through bind and getsockname.
#[test]
fn names_that_are_not_utf8_are_bytes() {
    let (_sim, a, _b) = two_hosts(72);
    let hints = AddrInfoHints::default();
    assert_eq!(
        a.getaddrinfo(Some(b"b\xff".as_slice()), None, &hints),
        Err(GaiError::EAI_NONAME)
    );
    assert_eq!(
        a.getaddrinfo(Some(b"b".as_slice()), Some(b"\xfehttp".as_slice()), &hints),
        Err(GaiError::EAI_SERVICE)
    );
    assert_eq!(a.if_nametoindex(b"lo\xff"), Err(Errno::ENODEV));
    for name in [
        SockAddr::unix_path(b"/tmp/caf\xe9-\xff\xfe.sock".to_vec()),
        SockAddr::unix_abstract(b"\xff\x00\xfeabstract".to_vec()),
    ] {
        let s = a
            .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, false)
            .unwrap();
        a.bind(s, &name).unwrap();
        assert_eq!(a.getsockname(s).unwrap(), name);
        a.close(s).unwrap();
    }
}

#[test]
fn the_trace_cuts_huge_names_but_tells_them_apart() {
    // A program's node, service and interface names reach the trace; past 255 bytes the
    // trace keeps the first 255, the length and a hash of the whole (the trace's memory
    // cannot fail cleanly, so a 1 MB name must not become a 1 MB trace entry).
    let trace_of = |node: &[u8]| {
        let (sim, a, _b) = two_hosts(71);
        let hints = AddrInfoHints::default();
        assert!(a.getaddrinfo(Some(node), Some(node), &hints).is_err());
        assert!(a.if_nametoindex(node).is_err());
        let u = udp(&a);
        assert!(a.interface_ipv4(u, node).is_err());
        (sim.trace().join("\n"), sim.trace_digest())
    };
    let mut huge = vec![b'n'; 1 << 20];
    let (text, digest) = trace_of(&huge);
    assert!(text.len() < 4096, "{} bytes of trace", text.len());
    let cut = format!("\"{}\"... (1048576 bytes, fnv1a ", "n".repeat(255));
    assert_eq!(
        text.matches(&cut).count(),
        4,
        "node, service, two interface names:\n{text}"
    );
    *huge.last_mut().unwrap() = b'm';
    let (other, other_digest) = trace_of(&huge);
    assert_ne!(
        text, other,
        "names differing after the cut trace differently"
    );
    assert_ne!(digest, other_digest);
    // up to 255 bytes a name is shown whole, as before
    let (text, _) = trace_of(&[b'n'; 255]);
    assert!(text.contains(&format!("\"{}\"", "n".repeat(255))) && !text.contains("fnv1a"));
}
