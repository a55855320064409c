//! [`SockAddr`]: an owned socket address, the value every address-taking operation uses.
//!
//! Backends translate it to and from the C `sockaddr` layouts; nothing here is
//! uninitialised or platform-sized, so an address can be compared, hashed and
//! sent across the simulator freely.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::types::Family;

/// A unix-domain address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnixAddr {
    /// An unbound (unnamed) unix socket: the kernel reports only the family.
    Unnamed,
    /// A filesystem path (the bytes of `sun_path` before the first NUL).
    Path(Vec<u8>),
    /// A Linux abstract-namespace name (the bytes after the leading NUL, exactly as long as given).
    Abstract(Vec<u8>),
}

/// An owned socket address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SockAddr {
    /// IPv4 address and port.
    V4(SocketAddrV4),
    /// IPv6 address, port, flow info and scope id.
    V6(SocketAddrV6),
    /// A unix-domain address.
    Unix(UnixAddr),
    /// Any other family, kept as the raw bytes that follow the family field
    /// (for example `AF_PACKET` link addresses from `getifaddrs`).
    Other {
        /// The address family.
        family: Family,
        /// The bytes after the family field.
        data: Vec<u8>,
    },
}

impl SockAddr {
    /// An IPv4 address.
    pub fn v4(ip: Ipv4Addr, port: u16) -> SockAddr {
        SockAddr::V4(SocketAddrV4::new(ip, port))
    }

    /// An IPv6 address with flow info and scope id 0.
    pub fn v6(ip: Ipv6Addr, port: u16) -> SockAddr {
        SockAddr::V6(SocketAddrV6::new(ip, port, 0, 0))
    }

    /// A unix filesystem path.
    pub fn unix_path(path: impl Into<Vec<u8>>) -> SockAddr {
        SockAddr::Unix(UnixAddr::Path(path.into()))
    }

    /// A Linux abstract-namespace name (without the leading NUL).
    pub fn unix_abstract(name: impl Into<Vec<u8>>) -> SockAddr {
        SockAddr::Unix(UnixAddr::Abstract(name.into()))
    }

    /// The address family.
    pub fn family(&self) -> Family {
        match self {
            SockAddr::V4(_) => Family::INET,
            SockAddr::V6(_) => Family::INET6,
            SockAddr::Unix(_) => Family::UNIX,
            SockAddr::Other { family, .. } => *family,
        }
    }

    /// The port of an IP address, `None` for other families.
    pub fn port(&self) -> Option<u16> {
        match self {
            SockAddr::V4(a) => Some(a.port()),
            SockAddr::V6(a) => Some(a.port()),
            _ => None,
        }
    }

    /// The IP address and port, for IP families.
    pub fn as_socket_addr(&self) -> Option<SocketAddr> {
        match self {
            SockAddr::V4(a) => Some(SocketAddr::V4(*a)),
            SockAddr::V6(a) => Some(SocketAddr::V6(*a)),
            _ => None,
        }
    }

    /// The same address with another port (IP families only; others are returned unchanged).
    pub fn with_port(&self, port: u16) -> SockAddr {
        match self {
            SockAddr::V4(a) => SockAddr::V4(SocketAddrV4::new(*a.ip(), port)),
            SockAddr::V6(a) => {
                SockAddr::V6(SocketAddrV6::new(*a.ip(), port, a.flowinfo(), a.scope_id()))
            }
            other => other.clone(),
        }
    }

    /// The address as text, the way `ai:addr()` shows it: `inet_ntop` for IP
    /// (no port, no scope; IPv6 by the rules of [`Ntop6`]), the path bytes up to
    /// their first NUL for unix (empty for unnamed and abstract addresses), `None`
    /// for other families. Bytes, not UTF-8: unix paths are arbitrary bytes.
    pub fn host_text(&self) -> Option<Vec<u8>> {
        match self {
            SockAddr::V4(a) => Some(a.ip().to_string().into_bytes()),
            SockAddr::V6(a) => Some(Ntop6(*a.ip()).to_string().into_bytes()),
            SockAddr::Unix(UnixAddr::Path(p)) => {
                let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
                Some(p[..end].to_vec())
            }
            SockAddr::Unix(_) => Some(Vec::new()),
            SockAddr::Other { .. } => None,
        }
    }

    /// Whether this is an IP multicast address.
    pub fn is_multicast(&self) -> bool {
        match self {
            SockAddr::V4(a) => a.ip().is_multicast(),
            SockAddr::V6(a) => a.ip().is_multicast(),
            _ => false,
        }
    }

    /// Whether this is an IP wildcard (any) address.
    pub fn is_unspecified_ip(&self) -> bool {
        match self {
            SockAddr::V4(a) => a.ip().is_unspecified(),
            SockAddr::V6(a) => a.ip().is_unspecified(),
            _ => false,
        }
    }
}

/// An IPv6 address shown the way `inet_ntop(AF_INET6)` shows it in glibc, the BSDs
/// and macOS (the ISC algorithm): the longest run of two or more zero groups becomes
/// `::` (the first such run on a tie), groups in lowercase hex without leading zeros,
/// and the last 32 bits in dotted decimal for IPv4-compatible (`::1.2.3.4`, not `::`
/// or `::1`) and IPv4-mapped (`::ffff:1.2.3.4`) addresses.
///
/// Rust's own `Display` differs for IPv4-compatible addresses (`::102:304`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ntop6(pub Ipv6Addr);

impl fmt::Display for Ntop6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.0.segments();
        // the longest run of zero groups (length >= 2), first one on a tie
        let (mut best, mut best_len) = (usize::MAX, 0);
        let mut i = 0;
        while i < 8 {
            if w[i] == 0 {
                let start = i;
                while i < 8 && w[i] == 0 {
                    i += 1;
                }
                if i - start > best_len {
                    best = start;
                    best_len = i - start;
                }
            } else {
                i += 1;
            }
        }
        if best_len < 2 {
            best = usize::MAX;
        }
        let mut i = 0;
        while i < 8 {
            if i == best {
                if i == 0 {
                    f.write_str(":")?;
                }
                f.write_str(":")?;
                i += best_len;
                continue;
            }
            // embedded IPv4: compatible (6 zero groups) or mapped (5 zero groups, then ffff)
            if i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
                let o = self.0.octets();
                return write!(f, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            }
            write!(f, "{:x}", w[i])?;
            if i < 7 {
                f.write_str(":")?;
            }
            i += 1;
        }
        Ok(())
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(a: SocketAddr) -> SockAddr {
        match a {
            SocketAddr::V4(a) => SockAddr::V4(a),
            SocketAddr::V6(a) => SockAddr::V6(a),
        }
    }
}

impl From<SocketAddrV4> for SockAddr {
    fn from(a: SocketAddrV4) -> SockAddr {
        SockAddr::V4(a)
    }
}

impl From<SocketAddrV6> for SockAddr {
    fn from(a: SocketAddrV6) -> SockAddr {
        SockAddr::V6(a)
    }
}

impl fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::V4(a) => write!(f, "{a}"),
            SockAddr::V6(a) => write!(f, "{a}"),
            SockAddr::Unix(UnixAddr::Unnamed) => write!(f, "unix:(unnamed)"),
            SockAddr::Unix(UnixAddr::Path(p)) => {
                write!(f, "unix:{}", String::from_utf8_lossy(p).escape_debug())
            }
            SockAddr::Unix(UnixAddr::Abstract(p)) => {
                write!(f, "unix:@{}", String::from_utf8_lossy(p).escape_debug())
            }
            SockAddr::Other { family, data } => write!(f, "{family:?}:{data:02x?}"),
        }
    }
}

/// The address as text: `10.0.0.1:80`, `[fd00::1]:80`, `unix:/path`, `unix:@name`,
/// `unix:(unnamed)` (the same text as `Debug`).
impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&SockAddr::Unix(self.clone()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_text_matches_ai_addr() {
        assert_eq!(
            SockAddr::v4(Ipv4Addr::LOCALHOST, 80).host_text().unwrap(),
            b"127.0.0.1"
        );
        assert_eq!(
            SockAddr::v6(Ipv6Addr::UNSPECIFIED, 0).host_text().unwrap(),
            b"::"
        );
        assert_eq!(
            SockAddr::unix_path(&b"./a\0b"[..]).host_text().unwrap(),
            b"./a"
        );
        assert!(SockAddr::unix_abstract("x").host_text().unwrap().is_empty());
        assert!(SockAddr::Unix(UnixAddr::Unnamed)
            .host_text()
            .unwrap()
            .is_empty());
        assert_eq!(
            SockAddr::unix_path(&b"caf\xe9\xff.sock"[..])
                .host_text()
                .unwrap(),
            b"caf\xe9\xff.sock"
        );
    }

    #[test]
    fn ipv6_text_follows_inet_ntop() {
        let t = |s: &str| Ntop6(s.parse().unwrap()).to_string();
        assert_eq!(t("::"), "::");
        assert_eq!(t("::1"), "::1");
        assert_eq!(t("::2"), "::2");
        assert_eq!(t("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(t("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(t("::ffff:0:1.2.3.4"), "::ffff:0:102:304");
        assert_eq!(t("1::"), "1::");
        assert_eq!(t("fe80::1:2"), "fe80::1:2");
        assert_eq!(t("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(t("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
        assert_eq!(t("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(t("2001:db8::ff00:42:8329"), "2001:db8::ff00:42:8329");
        assert_eq!(t("0:0:1::"), "0:0:1::");
        assert_eq!(
            SockAddr::v6("::1.2.3.4".parse().unwrap(), 0)
                .host_text()
                .unwrap(),
            b"::1.2.3.4"
        );
    }

    #[test]
    fn ports_and_families() {
        let a = SockAddr::v6(Ipv6Addr::LOCALHOST, 1).with_port(8080);
        assert_eq!(a.port(), Some(8080));
        assert_eq!(a.family(), Family::INET6);
        assert_eq!(SockAddr::unix_path("p").port(), None);
        assert!(SockAddr::v4(Ipv4Addr::new(224, 0, 0, 251), 0).is_multicast());
    }
}
