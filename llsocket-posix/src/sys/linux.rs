//! Linux and Android: atomic `SOCK_CLOEXEC`/`accept4`, `MSG_NOSIGNAL`, `sendfile(2)`, `AF_PACKET`.

use std::mem::size_of;

use libc::{c_int, c_uint, in_addr, sockaddr};
use llsocket_api::{Errno, IfFlags, Result, SockAddr};
use socket2::{SockAddrStorage, Socket};

use crate::addr::{self, Raw};
use crate::{os_errno, syscall};

/// The `env` os name.
pub(crate) const OS: &str = "linux";

/// Flags OR-ed into every send: no `SIGPIPE`.
pub(crate) const SEND_FLAGS: c_int = libc::MSG_NOSIGNAL;

/// `SO_REUSEPORT`.
pub(crate) const SO_REUSEPORT: Option<c_int> = Some(libc::SO_REUSEPORT);
/// `SO_LINGER` (seconds).
pub(crate) const SO_LINGER: c_int = libc::SO_LINGER;
/// `TCP_KEEPIDLE`.
pub(crate) const TCP_KEEPIDLE: Option<c_int> = Some(libc::TCP_KEEPIDLE);
/// `TCP_KEEPINTVL`.
pub(crate) const TCP_KEEPINTVL: Option<c_int> = Some(libc::TCP_KEEPINTVL);
/// `TCP_KEEPCNT`.
pub(crate) const TCP_KEEPCNT: Option<c_int> = Some(libc::TCP_KEEPCNT);
/// `TCP_CORK`.
pub(crate) const TCP_CORK: Option<c_int> = Some(libc::TCP_CORK);
/// `SO_PROTOCOL`.
pub(crate) const SO_PROTOCOL: Option<c_int> = Some(libc::SO_PROTOCOL);
/// `SIOCGIFADDR`.
#[allow(clippy::unnecessary_cast)] // c_ulong on glibc, c_int on musl
pub(crate) const SIOCGIFADDR: u64 = libc::SIOCGIFADDR as u64;
/// `SIOCATMARK` (`<linux/sockios.h>`).
pub(crate) const SIOCATMARK: u64 = 0x8905;
/// `SIOCGIFMTU`.
#[allow(clippy::unnecessary_cast)] // c_ulong on glibc, c_int on musl
pub(crate) const SIOCGIFMTU: u64 = libc::SIOCGIFMTU as u64;

/// `SOCK_CLOEXEC`, plus `SOCK_NONBLOCK` when asked: creation sets both atomically.
pub(crate) fn type_flags(nonblock: bool) -> c_int {
    libc::SOCK_CLOEXEC | if nonblock { libc::SOCK_NONBLOCK } else { 0 }
}

/// Nothing left to set after creation (`MSG_NOSIGNAL` covers `SIGPIPE`).
pub(crate) fn finish(_s: &Socket, _nonblock: bool) -> Result<()> {
    Ok(())
}

/// `accept4(2)`: close-on-exec, non-blocking when `nonblock`.
pub(crate) fn accept(listener: &Socket, nonblock: bool) -> Result<(Socket, Raw)> {
    listener.accept4(type_flags(nonblock)).map_err(os_errno)
}

/// `sendfile(2)`, with `SIGPIPE` held off (it takes no `MSG_NOSIGNAL`); libc: socket2 has none.
pub(crate) fn sendfile(sock: c_int, file: c_int, offset: i64, len: usize) -> Result<usize> {
    let mut off = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
    super::without_sigpipe(|| {
        // SAFETY: `off` is a live off_t; the descriptors are plain integers.
        syscall!(unsafe { libc::sendfile(sock, file, &mut off, len) }).map(|n| n as usize)
    })
}

/// Linux has no `sa_len`.
pub(crate) fn with_sa_len(raw: Raw) -> Raw {
    raw
}

/// Linux's `struct ip_mreq_source` (field order differs from the BSDs).
#[repr(C)]
pub(crate) struct IpMreqSource {
    imr_multiaddr: in_addr,
    imr_interface: in_addr,
    imr_sourceaddr: in_addr,
}

/// Linux's `struct group_source_req`.
#[repr(C)]
pub(crate) struct GroupSourceReq {
    pub(crate) gsr_interface: u32,
    pub(crate) gsr_group: SockAddrStorage,
    pub(crate) gsr_source: SockAddrStorage,
}

/// `struct ip_mreq_source` in Linux's field order.
pub(crate) fn ip_mreq_source(group: in_addr, source: in_addr, interface: in_addr) -> IpMreqSource {
    IpMreqSource {
        imr_multiaddr: group,
        imr_interface: interface,
        imr_sourceaddr: source,
    }
}

/// `IFF_*` bits as [`IfFlags`].
pub(crate) fn if_flags(f: c_uint) -> IfFlags {
    let f = f as c_int;
    let on = |bit: c_int| f & bit != 0;
    IfFlags {
        up: on(libc::IFF_UP),
        broadcast: on(libc::IFF_BROADCAST),
        debug: on(libc::IFF_DEBUG),
        loopback: on(libc::IFF_LOOPBACK),
        pointtopoint: on(libc::IFF_POINTOPOINT),
        notrailers: on(libc::IFF_NOTRAILERS),
        running: on(libc::IFF_RUNNING),
        noarp: on(libc::IFF_NOARP),
        promisc: on(libc::IFF_PROMISC),
        allmulti: on(libc::IFF_ALLMULTI),
        multicast: on(libc::IFF_MULTICAST),
        oactive: false,
        simplex: false,
        master: on(libc::IFF_MASTER),
        slave: on(libc::IFF_SLAVE),
        portsel: on(libc::IFF_PORTSEL),
        automedia: on(libc::IFF_AUTOMEDIA),
        dynamic: on(libc::IFF_DYNAMIC),
        lower_up: on(libc::IFF_LOWER_UP),
        dormant: on(libc::IFF_DORMANT),
        echo: on(libc::IFF_ECHO),
    }
}

/// The broadcast / point-to-point address of an entry (`ifa_ifu`).
pub(crate) fn ifa_dstaddr(ifa: &libc::ifaddrs) -> *mut sockaddr {
    ifa.ifa_ifu
}

/// The length of a `getifaddrs` address, from its family (Linux has no `sa_len`).
///
/// # Safety
/// `p` points to a readable `sockaddr`.
unsafe fn family_len(p: *const sockaddr) -> usize {
    // SAFETY: per the function contract.
    match i32::from(unsafe { (*p).sa_family }) {
        libc::AF_INET => size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => size_of::<libc::sockaddr_in6>(),
        libc::AF_PACKET => size_of::<libc::sockaddr_ll>(),
        _ => size_of::<sockaddr>(),
    }
}

/// Decodes a `getifaddrs` address (NULL → `None`); Linux always fills the family.
///
/// # Safety
/// `p` is NULL or points to a `sockaddr` of its family's full size.
pub(crate) unsafe fn decode_ifaddr(p: *mut sockaddr, _family: c_int) -> Option<SockAddr> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per the function contract.
    Some(unsafe { addr::decode_ptr(p, family_len(p)) })
}

/// The hardware address of an `AF_PACKET` entry (its first 6 bytes), when it has one.
///
/// # Safety
/// `p` points to a `sockaddr` of its family's full size.
pub(crate) unsafe fn hwaddr(p: *const sockaddr) -> Option<Vec<u8>> {
    // SAFETY: per the function contract.
    if i32::from(unsafe { (*p).sa_family }) != libc::AF_PACKET {
        return None;
    }
    // SAFETY: an AF_PACKET entry is a full sockaddr_ll.
    let ll = unsafe { &*p.cast::<libc::sockaddr_ll>() };
    (ll.sll_halen > 0).then(|| ll.sll_addr[..6].to_vec())
}

macro_rules! consts {
    ($($name:ident $(= $value:expr)?),* $(,)?) => {
        &[$((stringify!($name), consts!(@v $name $(= $value)?)),)*]
    };
    (@v $name:ident) => { libc::$name as i64 };
    (@v $name:ident = $value:expr) => { $value as i64 };
}

/// The constants the Lua module table exports on Linux (glibc's names and values).
pub fn lua_constants() -> &'static [(&'static str, i64)] {
    const LINUX: &[(&str, i64)] = consts![
        SHUT_RD,
        SHUT_WR,
        SHUT_RDWR,
        AF_APPLETALK,
        AF_DECnet = 12,
        AF_INET,
        AF_INET6,
        AF_IPX,
        AF_ISDN,
        AF_LOCAL,
        AF_PACKET,
        AF_ROUTE,
        AF_SNA,
        AF_UNIX,
        AF_UNSPEC,
        SOCK_STREAM,
        SOCK_DGRAM,
        SOCK_RAW,
        SOCK_RDM,
        SOCK_SEQPACKET,
        IPPROTO_AH,
        IPPROTO_DSTOPTS,
        IPPROTO_EGP,
        IPPROTO_ENCAP,
        IPPROTO_ESP,
        IPPROTO_FRAGMENT,
        IPPROTO_GRE,
        IPPROTO_HOPOPTS,
        IPPROTO_ICMP,
        IPPROTO_ICMPV6,
        IPPROTO_IDP,
        IPPROTO_IGMP,
        IPPROTO_IP,
        IPPROTO_IPIP,
        IPPROTO_IPV6,
        IPPROTO_MTP,
        IPPROTO_NONE,
        IPPROTO_PIM,
        IPPROTO_PUP,
        IPPROTO_RAW,
        IPPROTO_ROUTING,
        IPPROTO_RSVP,
        IPPROTO_SCTP,
        IPPROTO_TCP,
        IPPROTO_TP,
        IPPROTO_UDP,
        AI_PASSIVE,
        AI_CANONNAME,
        AI_NUMERICHOST,
        AI_V4MAPPED,
        AI_ALL,
        AI_ADDRCONFIG,
        AI_NUMERICSERV,
        NI_NUMERICHOST,
        NI_NUMERICSERV,
        NI_NOFQDN,
        NI_NAMEREQD,
        NI_DGRAM,
        MSG_OOB,
        MSG_PEEK,
        MSG_DONTROUTE,
        MSG_TRYHARD = 4,
        MSG_CTRUNC,
        MSG_TRUNC,
        MSG_DONTWAIT,
        MSG_EOR,
        MSG_WAITALL,
        MSG_CONFIRM,
        MSG_ERRQUEUE,
        MSG_NOSIGNAL,
        MSG_MORE,
        MSG_WAITFORONE,
        MSG_BATCH = 262_144,
        MSG_FASTOPEN,
        MSG_CMSG_CLOEXEC,
        SOL_SOCKET,
        SCM_RIGHTS,
        SCM_TIMESTAMP = 29,
        SCM_CREDS = libc::SCM_CREDENTIALS,
    ];
    LINUX
}
