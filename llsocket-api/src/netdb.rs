//! Name resolution and interface records: [`AddrInfo`], [`AddrInfoHints`], [`NameInfo`],
//! [`Interface`].

use crate::addr::SockAddr;
use crate::types::{Family, Protocol, SockType};

/// The hints (and result fields) of `getaddrinfo(3)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct AddrInfoHints {
    /// `ai_family` (`AF_UNSPEC` for any).
    pub family: Family,
    /// `ai_socktype` (0 for any).
    pub socktype: SockType,
    /// `ai_protocol` (0 for any).
    pub protocol: Protocol,
    /// `ai_flags` (`AI_*`).
    pub flags: i32,
}

/// One `getaddrinfo(3)` result.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AddrInfo {
    /// `ai_family`.
    pub family: Family,
    /// `ai_socktype`.
    pub socktype: SockType,
    /// `ai_protocol`.
    pub protocol: Protocol,
    /// `ai_flags`.
    pub flags: i32,
    /// `ai_addr`.
    pub addr: SockAddr,
    /// `ai_canonname` (normally only the first result of an `AI_CANONNAME` query has one);
    /// bytes as the resolver gave them.
    pub canonname: Option<Vec<u8>>,
}

/// The result of `getnameinfo(3)`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct NameInfo {
    /// The host name (or numeric text), bytes as the resolver gave them.
    pub host: Vec<u8>,
    /// The service name (or port text).
    pub service: Vec<u8>,
}

/// Interface flags (`IFF_*`), one field per flag the Lua API reports. Flags a
/// platform does not define are always false there.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[allow(clippy::struct_excessive_bools)] // one bool per IFF_* flag is the honest shape
pub struct IfFlags {
    /// `IFF_UP`
    pub up: bool,
    /// `IFF_BROADCAST`
    pub broadcast: bool,
    /// `IFF_DEBUG`
    pub debug: bool,
    /// `IFF_LOOPBACK`
    pub loopback: bool,
    /// `IFF_POINTOPOINT`
    pub pointtopoint: bool,
    /// `IFF_NOTRAILERS`
    pub notrailers: bool,
    /// `IFF_RUNNING`
    pub running: bool,
    /// `IFF_NOARP`
    pub noarp: bool,
    /// `IFF_PROMISC`
    pub promisc: bool,
    /// `IFF_ALLMULTI`
    pub allmulti: bool,
    /// `IFF_MULTICAST`
    pub multicast: bool,
    /// `IFF_OACTIVE` (BSD, macOS)
    pub oactive: bool,
    /// `IFF_SIMPLEX` (BSD, macOS)
    pub simplex: bool,
    /// `IFF_MASTER` (Linux)
    pub master: bool,
    /// `IFF_SLAVE` (Linux)
    pub slave: bool,
    /// `IFF_PORTSEL` (Linux)
    pub portsel: bool,
    /// `IFF_AUTOMEDIA` (Linux)
    pub automedia: bool,
    /// `IFF_DYNAMIC` (Linux)
    pub dynamic: bool,
    /// `IFF_LOWER_UP` (Linux)
    pub lower_up: bool,
    /// `IFF_DORMANT` (Linux)
    pub dormant: bool,
    /// `IFF_ECHO` (Linux)
    pub echo: bool,
}

impl IfFlags {
    /// The set flags by their Lua key names (`"up"`, `"loopback"`, ...), in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        let all = [
            (self.up, "up"),
            (self.broadcast, "broadcast"),
            (self.debug, "debug"),
            (self.loopback, "loopback"),
            (self.pointtopoint, "pointtopoint"),
            (self.notrailers, "notrailers"),
            (self.running, "running"),
            (self.noarp, "noarp"),
            (self.promisc, "promisc"),
            (self.allmulti, "allmulti"),
            (self.multicast, "multicast"),
            (self.oactive, "oactive"),
            (self.simplex, "simplex"),
            (self.master, "master"),
            (self.slave, "slave"),
            (self.portsel, "portsel"),
            (self.automedia, "automedia"),
            (self.dynamic, "dynamic"),
            (self.lower_up, "lower_up"),
            (self.dormant, "dormant"),
            (self.echo, "echo"),
        ];
        all.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect()
    }
}

/// One address of an interface. Each field is present only when the entry has it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct IfAddress {
    /// The address.
    pub address: Option<SockAddr>,
    /// The netmask.
    pub netmask: Option<SockAddr>,
    /// The broadcast address (only on entries flagged `IFF_BROADCAST`).
    pub broadcast: Option<SockAddr>,
    /// The point-to-point destination (only on entries flagged `IFF_POINTOPOINT`).
    pub point2point: Option<SockAddr>,
}

/// An interface as `device.getifaddrs()` reports it: the flags of its first
/// entry, index, MTU, hardware address and its IPv4 and IPv6 addresses in list order.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Interface {
    /// The interface name (`b"lo"`): bytes, as the kernel names it.
    pub name: Vec<u8>,
    /// Flags of the interface's first entry.
    pub flags: IfFlags,
    /// `if_nametoindex(name)`, when non-zero.
    pub index: Option<u32>,
    /// The MTU (`SIOCGIFMTU`), when it could be read.
    pub mtu: Option<u32>,
    /// The hardware address (`AF_PACKET`/`AF_LINK`), when the entry has a non-empty one.
    pub hwaddr: Option<Vec<u8>>,
    /// IPv4 addresses.
    pub inet: Vec<IfAddress>,
    /// IPv6 addresses.
    pub inet6: Vec<IfAddress>,
}
