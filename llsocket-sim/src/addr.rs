//! The address plan (which host has which address, which hosts share a segment) and
//! the address helpers built on it: canonical forms, broadcast addresses.
//!
//! Host `n` (0-based, in creation order) is host `r = n % 254 + 1` of segment
//! `q = n / 254`. A segment is one IPv4 `/24` and one IPv6 `/64`:
//!
//! | | segment `q` | host `n` |
//! |---|---|---|
//! | IPv4 | `10.(q >> 8).(q & 255).0/24`, broadcast `.255` | `10.(q >> 8).(q & 255).r` |
//! | IPv6 | `fd00:0:0:q::/64` | `fd00:0:0:q::r` |
//!
//! So hosts 0 to 253 are `10.0.0.1` to `10.0.0.254` and `fd00::1` to `fd00::fe`, as
//! they always were, and there are 65 536 segments of 254 hosts: [`MAX_HOSTS`].
//! Every address maps back to its host by arithmetic, with no table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use llsocket_api::{Family, SockAddr};

/// Hosts per segment: `.1` to `.254` of a `/24`.
pub(crate) const SEGMENT_HOSTS: usize = 254;

/// Segments of the plan: every `/24` of `10.0.0.0/8`.
const SEGMENTS: usize = 1 << 16;

/// The most hosts one world can have: 65 536 segments of 254 hosts (16 646 144).
pub const MAX_HOSTS: usize = SEGMENTS * SEGMENT_HOSTS;

/// The segment of host `n`.
pub(crate) fn segment(n: usize) -> usize {
    n / SEGMENT_HOSTS
}

/// The hosts of segment `q` among the first `len` hosts (creation order).
pub(crate) fn segment_hosts(q: usize, len: usize) -> std::ops::Range<usize> {
    let start = (q * SEGMENT_HOSTS).min(len);
    start..((q + 1) * SEGMENT_HOSTS).min(len)
}

/// `(q, r)` of host `n`: its segment and its number in it (1..=254).
fn place(n: usize) -> (usize, usize) {
    (n / SEGMENT_HOSTS, n % SEGMENT_HOSTS + 1)
}

/// The IPv4 address of host `n`: `10.(q >> 8).(q & 255).r`.
pub(crate) fn host_v4(n: usize) -> Ipv4Addr {
    let (q, r) = place(n);
    Ipv4Addr::new(10, (q >> 8) as u8, q as u8, r as u8)
}

/// The IPv6 address of host `n`: `fd00:0:0:q::r`.
pub(crate) fn host_v6(n: usize) -> Ipv6Addr {
    let (q, r) = place(n);
    Ipv6Addr::new(0xfd00, 0, 0, q as u16, 0, 0, 0, r as u16)
}

/// The broadcast address of host `n`'s segment: `10.(q >> 8).(q & 255).255`.
pub(crate) fn segment_broadcast(n: usize) -> Ipv4Addr {
    let o = host_v4(n).octets();
    Ipv4Addr::new(10, o[1], o[2], 255)
}

/// The host index an address of the plan names, whether or not that host exists
/// (`None`: not a host address of the plan). IPv4-mapped addresses count as IPv4.
pub(crate) fn host_index(ip: IpAddr) -> Option<usize> {
    let (q, r) = match canon_ip(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if o[0] != 10 {
                return None;
            }
            (
                (usize::from(o[1]) << 8) | usize::from(o[2]),
                usize::from(o[3]),
            )
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if s[0] != 0xfd00 || s[1] != 0 || s[2] != 0 || s[4..7] != [0, 0, 0] {
                return None;
            }
            (usize::from(s[3]), usize::from(s[7]))
        }
    };
    (1..=SEGMENT_HOSTS)
        .contains(&r)
        .then(|| q * SEGMENT_HOSTS + r - 1)
}

/// Whether `ip` lies in the simulated networks (`10.0.0.0/8`, `fd00::/16`): a
/// destination there with no host behind it drops packets; outside, `ENETUNREACH`.
pub(crate) fn in_sim_net(ip: IpAddr) -> bool {
    match canon_ip(ip) {
        IpAddr::V4(v4) => v4.octets()[0] == 10,
        IpAddr::V6(v6) => v6.segments()[0] == 0xfd00,
    }
}

/// Whether `ip` is a broadcast address for host `n`: the limited broadcast address
/// or its segment's. (Another segment's `.255` is an ordinary remote address, as a
/// router that forwards no directed broadcasts makes it.)
pub(crate) fn is_broadcast(n: usize, ip: IpAddr) -> bool {
    match canon_ip(ip) {
        IpAddr::V4(v4) => v4 == Ipv4Addr::BROADCAST || v4 == segment_broadcast(n),
        IpAddr::V6(_) => false,
    }
}

/// An IPv4-mapped IPv6 address as plain IPv4; anything else unchanged.
pub(crate) fn canon_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// An IP socket address in canonical form (v4-mapped → v4).
pub(crate) fn canon(a: &SockAddr) -> SockAddr {
    match a {
        SockAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SockAddr::v4(v4, v6.port()),
            None => a.clone(),
        },
        _ => a.clone(),
    }
}

/// A canonical address as a socket of `family` sees it (v4 → v4-mapped for INET6).
pub(crate) fn as_family(a: &SockAddr, family: Family) -> SockAddr {
    match a {
        SockAddr::V4(v4) if family == Family::INET6 => {
            SockAddr::v6(v4.ip().to_ipv6_mapped(), v4.port())
        }
        _ => a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_254_hosts_keep_their_addresses() {
        for n in 0..254 {
            assert_eq!(host_v4(n), Ipv4Addr::new(10, 0, 0, n as u8 + 1));
            assert_eq!(
                host_v6(n),
                Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, n as u16 + 1)
            );
            assert_eq!(segment_broadcast(n), Ipv4Addr::new(10, 0, 0, 255));
        }
    }

    #[test]
    fn every_address_maps_back_to_its_host() {
        for n in [
            0,
            253,
            254,
            255,
            507,
            508,
            9_999,
            65_535,
            65_536,
            MAX_HOSTS - 1,
        ] {
            assert_eq!(host_index(IpAddr::V4(host_v4(n))), Some(n), "{n}");
            assert_eq!(host_index(IpAddr::V6(host_v6(n))), Some(n), "{n}");
            let mapped = IpAddr::V6(host_v4(n).to_ipv6_mapped());
            assert_eq!(host_index(mapped), Some(n), "{n}");
            assert!(segment_hosts(segment(n), MAX_HOSTS).contains(&n));
        }
        assert_eq!(host_v4(254), Ipv4Addr::new(10, 0, 1, 1));
        assert_eq!(host_v6(254), "fd00:0:0:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(host_v4(MAX_HOSTS - 1), Ipv4Addr::new(10, 255, 255, 254));
        assert_eq!(segment_broadcast(9_999), Ipv4Addr::new(10, 0, 39, 255));
    }

    #[test]
    fn network_broadcast_and_foreign_addresses_name_no_host() {
        for ip in [
            "10.0.0.0",
            "10.0.0.255",
            "10.7.1.255",
            "11.0.0.1",
            "fd00::",
            "fd00::ff",
        ] {
            assert_eq!(host_index(ip.parse().unwrap()), None, "{ip}");
        }
        assert_eq!(host_index("fd00:1::1".parse().unwrap()), None);
        assert!(is_broadcast(0, "10.0.0.255".parse().unwrap()));
        assert!(!is_broadcast(0, "10.0.1.255".parse().unwrap()));
        assert!(is_broadcast(254, "10.0.1.255".parse().unwrap()));
        assert!(is_broadcast(254, "255.255.255.255".parse().unwrap()));
    }
}
