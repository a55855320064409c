//! Simulated name service and interfaces: a hosts table (the names given to
//! `Sim::host`, plus `localhost`), a services table, and `lo`/`eth0` per host.
//!
//! Names resolve through the world's name index (`O(log n)`), addresses back to
//! names through the address plan (`addr`, arithmetic): neither scans the hosts.
//!
//! Resolver order follows glibc on Linux: a passive wildcard lists IPv4 first, a
//! non-passive null node lists `::1` first; a name lists IPv4 then IPv6. One
//! difference: `localhost` resolves to `::1` for `AF_INET6` (many real hosts
//! files lack that line).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use llsocket_api::netdb::IfAddress;
use llsocket_api::{
    AddrInfo, AddrInfoHints, Errno, Family, GaiError, IfFlags, Interface, NameInfo, Protocol,
    Result, SockAddr, SockType,
};

use crate::addr::{host_index, host_v4, host_v6, segment_broadcast};
use crate::world::World;

/// `(name, port, tcp, udp)` of the simulated services table.
const SERVICES: &[(&str, u16, bool, bool)] = &[
    ("echo", 7, true, true),
    ("discard", 9, true, true),
    ("daytime", 13, true, true),
    ("ftp", 21, true, false),
    ("ssh", 22, true, false),
    ("telnet", 23, true, false),
    ("smtp", 25, true, false),
    ("domain", 53, true, true),
    ("http", 80, true, false),
    ("pop3", 110, true, false),
    ("ntp", 123, false, true),
    ("imap", 143, true, false),
    ("snmp", 161, false, true),
    ("https", 443, true, false),
    ("syslog", 514, false, true),
];

/// `EAI_ADDRFAMILY` (glibc's -9; not in every libc binding).
const EAI_ADDRFAMILY: i32 = -9;
/// `AI_V4MAPPED` and `AI_ALL` (Linux's values: the simulator models Linux, and NetBSD's and
/// OpenBSD's libc bindings have neither, so the crate builds everywhere).
const AI_V4MAPPED: i32 = 0x0008;
const AI_ALL: i32 = 0x0010;
const KNOWN_AI_FLAGS: i32 = libc::AI_PASSIVE
    | libc::AI_CANONNAME
    | libc::AI_NUMERICHOST
    | AI_V4MAPPED
    | AI_ALL
    | libc::AI_ADDRCONFIG
    | libc::AI_NUMERICSERV;

fn service_port(
    name: &str,
    st: SockType,
    numeric_only: bool,
) -> std::result::Result<u16, GaiError> {
    if let Ok(p) = name.parse::<u16>() {
        return Ok(p);
    }
    if numeric_only {
        return Err(GaiError::EAI_NONAME);
    }
    SERVICES
        .iter()
        .find(|(n, _, tcp, udp)| {
            *n == name
                && match st {
                    SockType::STREAM => *tcp,
                    SockType::DGRAM => *udp,
                    _ => true,
                }
        })
        .map(|s| s.1)
        .ok_or(GaiError::EAI_SERVICE)
}

impl World {
    /// The addresses a name stands for, in resolver order.
    fn resolve(&self, name: &str, family: Family) -> Option<Vec<IpAddr>> {
        let lname = name.to_ascii_lowercase();
        if lname == "localhost" || lname == "localhost.localdomain" {
            return Some(if family == Family::INET6 {
                vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
            } else {
                vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
            });
        }
        let i = self.host_by_name(name)?;
        Some(vec![IpAddr::V4(host_v4(i)), IpAddr::V6(host_v6(i))])
    }

    pub(crate) fn getaddrinfo(
        &self,
        node: Option<&str>,
        service: Option<&str>,
        hints: &AddrInfoHints,
    ) -> std::result::Result<Vec<AddrInfo>, GaiError> {
        let flags = hints.flags;
        if flags & !KNOWN_AI_FLAGS != 0 || (flags & libc::AI_CANONNAME != 0 && node.is_none()) {
            return Err(GaiError::EAI_BADFLAGS);
        }
        if node.is_none() && service.is_none() {
            return Err(GaiError::EAI_NONAME);
        }
        let family = hints.family;
        if ![Family::UNSPEC, Family::INET, Family::INET6].contains(&family) {
            return Err(GaiError::EAI_FAMILY);
        }
        let kinds: Vec<(SockType, Protocol)> = match hints.socktype {
            SockType(0) => {
                let mut k = vec![
                    (SockType::STREAM, Protocol::TCP),
                    (SockType::DGRAM, Protocol::UDP),
                ];
                // glibc lists raw sockets unless a named service restricts the types.
                if service.is_none_or(|s| s.parse::<u16>().is_ok()) {
                    k.push((SockType::RAW, Protocol::DEFAULT));
                }
                k
            }
            SockType::STREAM => vec![(SockType::STREAM, Protocol::TCP)],
            SockType::DGRAM => vec![(SockType::DGRAM, Protocol::UDP)],
            SockType::RAW if service.is_none_or(|s| s.parse::<u16>().is_ok()) => {
                vec![(SockType::RAW, hints.protocol)]
            }
            SockType::RAW => return Err(GaiError::EAI_SERVICE),
            _ => return Err(GaiError::EAI_SOCKTYPE),
        };
        let kinds: Vec<(SockType, Protocol)> = kinds
            .into_iter()
            .filter(|(_, p)| hints.protocol.0 == 0 || *p == hints.protocol)
            .collect();
        if kinds.is_empty() {
            return Err(GaiError::EAI_SERVICE);
        }
        // Ports per kind (a named service may exist for TCP only).
        let numeric_serv = flags & libc::AI_NUMERICSERV != 0;
        let mut ports = Vec::new();
        let mut last_err = None;
        for (st, p) in &kinds {
            match service {
                None => ports.push((*st, *p, 0)),
                Some(s) => match service_port(s, *st, numeric_serv) {
                    Ok(port) => ports.push((*st, *p, port)),
                    Err(e) => last_err = Some(e),
                },
            }
        }
        if ports.is_empty() {
            return Err(last_err.unwrap_or(GaiError::EAI_SERVICE));
        }
        let want = |ip: &IpAddr| match family {
            Family::INET => ip.is_ipv4(),
            Family::INET6 => ip.is_ipv6(),
            _ => true,
        };
        let (ips, canon): (Vec<IpAddr>, Option<String>) = match node {
            None => {
                let passive = flags & libc::AI_PASSIVE != 0;
                let v = if passive {
                    vec![
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    ]
                } else {
                    vec![
                        IpAddr::V6(Ipv6Addr::LOCALHOST),
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                    ]
                };
                (v.into_iter().filter(want).collect(), None)
            }
            Some(n) => {
                if let Ok(ip) = n.parse::<IpAddr>() {
                    let ip = match (ip, family) {
                        (IpAddr::V4(v4), Family::INET6) => {
                            if flags & AI_V4MAPPED != 0 {
                                IpAddr::V6(v4.to_ipv6_mapped())
                            } else {
                                return Err(GaiError::new(EAI_ADDRFAMILY));
                            }
                        }
                        (IpAddr::V6(_), Family::INET) => return Err(GaiError::new(EAI_ADDRFAMILY)),
                        (ip, _) => ip,
                    };
                    (vec![ip], Some(n.to_owned()))
                } else if flags & libc::AI_NUMERICHOST != 0 {
                    return Err(GaiError::EAI_NONAME);
                } else {
                    let ips = self.resolve(n, family).ok_or(GaiError::EAI_NONAME)?;
                    let ips: Vec<IpAddr> = ips.into_iter().filter(want).collect();
                    if ips.is_empty() {
                        return Err(GaiError::new(EAI_ADDRFAMILY));
                    }
                    (ips, Some(n.to_owned()))
                }
            }
        };
        let mut out = Vec::new();
        for ip in ips {
            for (st, p, port) in &ports {
                let addr = match ip {
                    IpAddr::V4(v4) => SockAddr::v4(v4, *port),
                    IpAddr::V6(v6) => SockAddr::v6(v6, *port),
                };
                out.push(AddrInfo {
                    family: addr.family(),
                    socktype: *st,
                    protocol: *p,
                    flags,
                    addr,
                    canonname: None,
                });
            }
        }
        if flags & libc::AI_CANONNAME != 0 {
            if let Some(first) = out.first_mut() {
                first.canonname = canon.map(String::into_bytes);
            }
        }
        Ok(out)
    }

    pub(crate) fn getnameinfo(
        &self,
        addr: &SockAddr,
        flags: i32,
    ) -> std::result::Result<NameInfo, GaiError> {
        let Some(sa) = addr.as_socket_addr() else {
            return Err(GaiError::EAI_FAMILY);
        };
        let ip = sa.ip();
        // numeric text as inet_ntop writes it (IPv4-compatible IPv6 in dotted form)
        let numeric = || match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => llsocket_api::addr::Ntop6(v6).to_string(),
        };
        let host = if flags & libc::NI_NUMERICHOST != 0 {
            numeric()
        } else {
            let name = match crate::addr::canon_ip(ip) {
                IpAddr::V4(v4) if v4 == Ipv4Addr::LOCALHOST => Some("localhost".to_owned()),
                IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => Some("localhost".to_owned()),
                other => host_index(other)
                    .and_then(|i| self.hosts.get(i))
                    .map(|h| h.name.clone()),
            };
            match name {
                Some(n) => n,
                None if flags & libc::NI_NAMEREQD != 0 => return Err(GaiError::EAI_NONAME),
                None => numeric(),
            }
        };
        let port = sa.port();
        let service = if flags & libc::NI_NUMERICSERV != 0 {
            port.to_string()
        } else {
            let udp = flags & libc::NI_DGRAM != 0;
            SERVICES
                .iter()
                .find(|(_, p, tcp, u)| *p == port && if udp { *u } else { *tcp })
                .map_or_else(|| port.to_string(), |s| s.0.to_owned())
        };
        Ok(NameInfo {
            host: host.into_bytes(),
            service: service.into_bytes(),
        })
    }

    /// `lo` (index 1) and `eth0` (index 2) of host `h`.
    pub(crate) fn interfaces(&self, h: usize) -> Vec<Interface> {
        let v4 = |a: Ipv4Addr| Some(SockAddr::v4(a, 0));
        let v6 = |a: Ipv6Addr| Some(SockAddr::v6(a, 0));
        let lo = Interface {
            name: b"lo".to_vec(),
            flags: IfFlags {
                up: true,
                loopback: true,
                running: true,
                lower_up: true,
                ..IfFlags::default()
            },
            index: Some(1),
            mtu: Some(65536),
            hwaddr: Some(vec![0; 6]),
            inet: vec![IfAddress {
                address: v4(Ipv4Addr::LOCALHOST),
                netmask: v4(Ipv4Addr::new(255, 0, 0, 0)),
                broadcast: None,
                point2point: None,
            }],
            inet6: vec![IfAddress {
                address: v6(Ipv6Addr::LOCALHOST),
                netmask: v6(Ipv6Addr::from(u128::MAX)),
                broadcast: None,
                point2point: None,
            }],
        };
        let eth0 = Interface {
            name: b"eth0".to_vec(),
            flags: IfFlags {
                up: true,
                broadcast: true,
                running: true,
                multicast: true,
                lower_up: true,
                ..IfFlags::default()
            },
            index: Some(2),
            mtu: Some(1500),
            // 02:00 (locally administered) and the host's number from 1, big-endian.
            hwaddr: Some([[0x02, 0].as_slice(), &(h as u32 + 1).to_be_bytes()].concat()),
            inet: vec![IfAddress {
                address: v4(host_v4(h)),
                netmask: v4(Ipv4Addr::new(255, 255, 255, 0)),
                broadcast: v4(segment_broadcast(h)),
                point2point: None,
            }],
            inet6: vec![IfAddress {
                address: v6(host_v6(h)),
                netmask: v6(Ipv6Addr::from(u128::MAX << 64)),
                broadcast: None,
                point2point: None,
            }],
        };
        vec![lo, eth0]
    }

    pub(crate) fn if_nametoindex(name: &[u8]) -> Result<u32> {
        match name {
            b"lo" => Ok(1),
            b"eth0" => Ok(2),
            _ => Err(Errno::ENODEV),
        }
    }

    pub(crate) fn if_indextoname(index: u32) -> Result<Vec<u8>> {
        match index {
            1 => Ok(b"lo".to_vec()),
            2 => Ok(b"eth0".to_vec()),
            _ => Err(Errno::ENXIO),
        }
    }
}
