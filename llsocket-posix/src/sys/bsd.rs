//! macOS/iOS, FreeBSD, DragonFly, NetBSD and OpenBSD: `sa_len`, `AF_LINK`,
//! `SO_NOSIGPIPE` on Apple (which lacks `MSG_NOSIGNAL` and `SOCK_CLOEXEC`),
//! a `pread` + `send` `sendfile`.

use std::mem::size_of;

use libc::{c_int, c_uint, sockaddr};
use llsocket_api::{Errno, IfFlags, Result, SockAddr};
use socket2::Socket;

use crate::addr::{self, Raw};
use crate::{os_errno, syscall};

/// The `env` os name.
#[cfg(apple)]
pub(crate) const OS: &str = "apple";
/// The `env` os name.
#[cfg(target_os = "freebsd")]
pub(crate) const OS: &str = "freebsd";
/// The `env` os name.
#[cfg(target_os = "dragonfly")]
pub(crate) const OS: &str = "dragonfly";
/// The `env` os name.
#[cfg(target_os = "netbsd")]
pub(crate) const OS: &str = "netbsd";
/// The `env` os name.
#[cfg(target_os = "openbsd")]
pub(crate) const OS: &str = "openbsd";

/// Flags OR-ed into every send: Apple suppresses `SIGPIPE` per socket instead.
#[cfg(apple)]
pub(crate) const SEND_FLAGS: c_int = 0;
/// Flags OR-ed into every send: no `SIGPIPE`.
#[cfg(not(apple))]
pub(crate) const SEND_FLAGS: c_int = libc::MSG_NOSIGNAL;

/// `SO_REUSEPORT`.
pub(crate) const SO_REUSEPORT: Option<c_int> = Some(libc::SO_REUSEPORT);
/// `SO_LINGER_SEC` on Apple (seconds, like everywhere else), `SO_LINGER` elsewhere.
#[cfg(apple)]
pub(crate) const SO_LINGER: c_int = libc::SO_LINGER_SEC;
/// `SO_LINGER`.
#[cfg(not(apple))]
pub(crate) const SO_LINGER: c_int = libc::SO_LINGER;

/// `TCP_KEEPALIVE` (Apple's name for the idle time).
#[cfg(apple)]
pub(crate) const TCP_KEEPIDLE: Option<c_int> = Some(libc::TCP_KEEPALIVE);
/// `TCP_KEEPIDLE`.
#[cfg(any(target_os = "freebsd", target_os = "dragonfly", target_os = "netbsd"))]
pub(crate) const TCP_KEEPIDLE: Option<c_int> = Some(libc::TCP_KEEPIDLE);
/// OpenBSD has no per-socket keepalive tuning.
#[cfg(target_os = "openbsd")]
pub(crate) const TCP_KEEPIDLE: Option<c_int> = None;
/// `TCP_KEEPINTVL`.
#[cfg(not(target_os = "openbsd"))]
pub(crate) const TCP_KEEPINTVL: Option<c_int> = Some(libc::TCP_KEEPINTVL);
/// OpenBSD has no per-socket keepalive tuning.
#[cfg(target_os = "openbsd")]
pub(crate) const TCP_KEEPINTVL: Option<c_int> = None;
/// `TCP_KEEPCNT`.
#[cfg(not(target_os = "openbsd"))]
pub(crate) const TCP_KEEPCNT: Option<c_int> = Some(libc::TCP_KEEPCNT);
/// OpenBSD has no per-socket keepalive tuning.
#[cfg(target_os = "openbsd")]
pub(crate) const TCP_KEEPCNT: Option<c_int> = None;
/// `TCP_NOPUSH`.
#[cfg(not(target_os = "netbsd"))]
pub(crate) const TCP_CORK: Option<c_int> = Some(libc::TCP_NOPUSH);
/// NetBSD has no `TCP_NOPUSH`.
#[cfg(target_os = "netbsd")]
pub(crate) const TCP_CORK: Option<c_int> = None;
/// `SO_PROTOCOL`.
#[cfg(any(target_os = "freebsd", target_os = "openbsd"))]
pub(crate) const SO_PROTOCOL: Option<c_int> = Some(libc::SO_PROTOCOL);
/// No `SO_PROTOCOL` here.
#[cfg(not(any(target_os = "freebsd", target_os = "openbsd")))]
pub(crate) const SO_PROTOCOL: Option<c_int> = None;

/// `SIOCGIFADDR` (`_IOWR('i', 33, struct ifreq)`).
pub(crate) const SIOCGIFADDR: u64 = 0xc020_6921;
/// `SIOCGIFMTU` (`_IOWR('i', 51, struct ifreq)`).
#[cfg(any(apple, freebsdlike))]
pub(crate) const SIOCGIFMTU: u64 = 0xc020_6933;
/// `SIOCGIFMTU` (`_IOWR('i', 126, struct ifreq)`).
#[cfg(netbsdlike)]
pub(crate) const SIOCGIFMTU: u64 = 0xc020_697e;
/// `SIOCATMARK` (`_IOR('s', 7, int)`).
pub(crate) const SIOCATMARK: u64 = 0x4004_7307;

/// No creation flags on Apple (it lacks `SOCK_CLOEXEC`): [`finish`] sets everything.
#[cfg(apple)]
pub(crate) fn type_flags(_nonblock: bool) -> c_int {
    0
}

/// `SOCK_CLOEXEC`, plus `SOCK_NONBLOCK` when asked: creation sets both atomically.
#[cfg(not(apple))]
pub(crate) fn type_flags(nonblock: bool) -> c_int {
    libc::SOCK_CLOEXEC | if nonblock { libc::SOCK_NONBLOCK } else { 0 }
}

/// Apple: close-on-exec and non-blocking via `fcntl`, then `SO_NOSIGPIPE` (the socket has no
/// `MSG_NOSIGNAL`). The caller drops (closes) `s` on failure.
#[cfg(apple)]
pub(crate) fn finish(s: &Socket, nonblock: bool) -> Result<()> {
    s.set_cloexec(true).map_err(os_errno)?;
    s.set_nonblocking(nonblock).map_err(os_errno)?;
    s.set_nosigpipe(true).map_err(os_errno)
}

/// Nothing left to set after creation (`MSG_NOSIGNAL` covers `SIGPIPE`).
#[cfg(not(apple))]
pub(crate) fn finish(_s: &Socket, _nonblock: bool) -> Result<()> {
    Ok(())
}

/// `accept(2)` + [`finish`] on Apple, `accept4(2)` elsewhere.
pub(crate) fn accept(listener: &Socket, nonblock: bool) -> Result<(Socket, Raw)> {
    // Apple: socket2's `accept` would not set SO_NOSIGPIPE on the new socket; we always have.
    #[cfg(apple)]
    let r = listener.accept_raw().map_err(os_errno).and_then(|(s, a)| {
        finish(&s, nonblock)?;
        Ok((s, a))
    });
    #[cfg(not(apple))]
    let r = listener.accept4(type_flags(nonblock)).map_err(os_errno);
    r
}

/// macOS `sendfile(2)`: `len` in, bytes sent out (also when it fails part way); libc, as every
/// `sendfile` here: socket2 has none.
#[cfg(apple)]
pub(crate) fn sendfile(sock: c_int, file: c_int, offset: i64, len: usize) -> Result<usize> {
    let off = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
    let mut sent = libc::off_t::try_from(len).unwrap_or(libc::off_t::MAX);
    super::without_sigpipe(|| {
        // SAFETY: `sent` is a live off_t; no header/trailer vector.
        let r = unsafe { libc::sendfile(file, sock, off, &mut sent, std::ptr::null_mut(), 0) };
        partial(syscall!(r), sent)
    })
}

/// FreeBSD/DragonFly `sendfile(2)`: bytes sent are reported through `sbytes`.
#[cfg(freebsdlike)]
pub(crate) fn sendfile(sock: c_int, file: c_int, offset: i64, len: usize) -> Result<usize> {
    let off = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
    let mut sent: libc::off_t = 0;
    super::without_sigpipe(|| {
        // SAFETY: `sent` is a live off_t; no header/trailer vector.
        let r = unsafe { libc::sendfile(file, sock, off, len, std::ptr::null_mut(), &mut sent, 0) };
        partial(syscall!(r), sent)
    })
}

/// A BSD `sendfile` that fails after sending some bytes (`EAGAIN`, `EBUSY`, `EINTR`) reports
/// them, like Linux's partial count.
#[cfg(any(apple, freebsdlike))]
fn partial(r: Result<c_int>, sent: libc::off_t) -> Result<usize> {
    match r {
        Ok(_) => Ok(sent as usize),
        Err(e) if sent > 0 && (e.is_again() || e == Errno::EBUSY || e == Errno::EINTR) => {
            Ok(sent as usize)
        }
        Err(e) => Err(e),
    }
}

/// NetBSD/OpenBSD have no `sendfile`: one `pread` + `send` step.
#[cfg(netbsdlike)]
pub(crate) fn sendfile(sock: c_int, file: c_int, offset: i64, len: usize) -> Result<usize> {
    let off = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
    let mut buf = vec![0u8; len.min(64 * 1024)];
    // SAFETY: `buf` is valid for writes of its length.
    let got = syscall!(unsafe { libc::pread(file, buf.as_mut_ptr().cast(), buf.len(), off) })?;
    if got == 0 {
        return Ok(0);
    }
    // SAFETY: the first `got` bytes of `buf` were filled by pread.
    let r = unsafe { libc::send(sock, buf.as_ptr().cast(), got as usize, SEND_FLAGS) };
    let sent = syscall!(r)?;
    Ok(sent as usize)
}

/// Fills `sa_len` (socket2 leaves it 0 in unix addresses; the kernel ignores it in system
/// calls, but `getnameinfo` and the source-specific multicast requests read it).
pub(crate) fn with_sa_len(raw: Raw) -> Raw {
    let mut b = [0u8; size_of::<libc::sockaddr_storage>()];
    let len = addr::bytes(&raw).len();
    b[..len].copy_from_slice(addr::bytes(&raw));
    if len > 0 {
        b[0] = len as u8;
    }
    addr::from_bytes(&b[..len])
}

/// The BSD `struct ip_mreq_source` (source before interface, unlike Linux).
#[cfg(any(apple, target_os = "freebsd"))]
#[repr(C)]
pub(crate) struct IpMreqSource {
    imr_multiaddr: libc::in_addr,
    imr_sourceaddr: libc::in_addr,
    imr_interface: libc::in_addr,
}

/// `struct ip_mreq_source` in the BSD field order.
#[cfg(any(apple, target_os = "freebsd"))]
pub(crate) fn ip_mreq_source(
    group: libc::in_addr,
    source: libc::in_addr,
    interface: libc::in_addr,
) -> IpMreqSource {
    IpMreqSource {
        imr_multiaddr: group,
        imr_sourceaddr: source,
        imr_interface: interface,
    }
}

/// FreeBSD's `struct group_source_req` (natural alignment).
#[cfg(target_os = "freebsd")]
#[repr(C)]
pub(crate) struct GroupSourceReq {
    pub(crate) gsr_interface: u32,
    pub(crate) gsr_group: socket2::SockAddrStorage,
    pub(crate) gsr_source: socket2::SockAddrStorage,
}

/// Apple's `struct group_source_req` (`#pragma pack(4)`).
#[cfg(apple)]
#[repr(C, packed(4))]
pub(crate) struct GroupSourceReq {
    pub(crate) gsr_interface: u32,
    pub(crate) gsr_group: socket2::SockAddrStorage,
    pub(crate) gsr_source: socket2::SockAddrStorage,
}

/// `IFF_*` bits as [`IfFlags`] (the Linux-only flags are always false here).
pub(crate) fn if_flags(f: c_uint) -> IfFlags {
    let f = f as c_int;
    let on = |bit: c_int| f & bit != 0;
    IfFlags {
        up: on(libc::IFF_UP),
        broadcast: on(libc::IFF_BROADCAST),
        debug: on(libc::IFF_DEBUG),
        loopback: on(libc::IFF_LOOPBACK),
        pointtopoint: on(libc::IFF_POINTOPOINT),
        #[cfg(apple)]
        notrailers: on(libc::IFF_NOTRAILERS),
        #[cfg(not(apple))]
        notrailers: false,
        running: on(libc::IFF_RUNNING),
        noarp: on(libc::IFF_NOARP),
        promisc: on(libc::IFF_PROMISC),
        allmulti: on(libc::IFF_ALLMULTI),
        multicast: on(libc::IFF_MULTICAST),
        // IFF_OACTIVE / IFF_SIMPLEX: 0x400 / 0x800 in every BSD's <net/if.h>.
        oactive: on(0x400),
        simplex: on(0x800),
        master: false,
        slave: false,
        portsel: false,
        automedia: false,
        dynamic: false,
        lower_up: false,
        dormant: false,
        echo: false,
    }
}

/// The broadcast / point-to-point address of an entry.
pub(crate) fn ifa_dstaddr(ifa: &libc::ifaddrs) -> *mut sockaddr {
    ifa.ifa_dstaddr
}

/// Decodes a `getifaddrs` address (NULL → `None`) within its `sa_len`; a
/// netmask without a family (BSD routing-socket style) takes `family`.
///
/// # Safety
/// `p` is NULL or points to `sa_len` readable bytes.
pub(crate) unsafe fn decode_ifaddr(p: *mut sockaddr, family: c_int) -> Option<SockAddr> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per the function contract, the header is readable.
    let len = usize::from(unsafe { (*p).sa_len });
    let mut b = [0u8; size_of::<libc::sockaddr_storage>()];
    let n = len.min(b.len());
    // SAFETY: `n` bytes are readable at `p`.
    b[..n].copy_from_slice(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) });
    let fam = std::mem::offset_of!(sockaddr, sa_family);
    if b[fam] == 0 {
        b[fam] = family as libc::sa_family_t;
    }
    // Short netmasks are zero-extended to the family's full size.
    let n = match family {
        libc::AF_INET => n.max(size_of::<libc::sockaddr_in>()),
        libc::AF_INET6 => n.max(size_of::<libc::sockaddr_in6>()),
        _ => n,
    };
    Some(addr::decode(&addr::from_bytes(&b[..n])))
}

/// The link-level address of an `AF_LINK` entry (`sockaddr_dl`), when it has one.
///
/// # Safety
/// `p` points to `sa_len` readable bytes.
pub(crate) unsafe fn hwaddr(p: *const sockaddr) -> Option<Vec<u8>> {
    // SAFETY: per the function contract, the header is readable.
    let (len, family) = unsafe { (usize::from((*p).sa_len), i32::from((*p).sa_family)) };
    if family != libc::AF_LINK || len < 8 {
        return None;
    }
    // SAFETY: `len` bytes are readable at `p`.
    let b = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
    // sockaddr_dl: len, family, index(2), type, nlen, alen, slen, data[nlen + alen ...].
    let (nlen, alen) = (usize::from(b[5]), usize::from(b[6]));
    let start = 8 + nlen;
    (alen > 0 && start + alen <= len).then(|| b[start..start + alen].to_vec())
}

macro_rules! consts {
    ($($name:ident),* $(,)?) => { &[$((stringify!($name), libc::$name as i64),)*] };
}

/// The constants the Lua module table exports on the BSDs (names every one of them defines).
pub fn lua_constants() -> &'static [(&'static str, i64)] {
    const BSD: &[(&str, i64)] = consts![
        SHUT_RD,
        SHUT_WR,
        SHUT_RDWR,
        AF_APPLETALK,
        AF_INET,
        AF_INET6,
        AF_IPX,
        AF_ISDN,
        AF_LINK,
        AF_LOCAL,
        AF_SNA,
        AF_UNIX,
        AF_UNSPEC,
        SOCK_STREAM,
        SOCK_DGRAM,
        SOCK_RAW,
        SOCK_RDM,
        SOCK_SEQPACKET,
        IPPROTO_ICMP,
        IPPROTO_ICMPV6,
        IPPROTO_IP,
        IPPROTO_IPV6,
        IPPROTO_RAW,
        IPPROTO_TCP,
        IPPROTO_UDP,
        AI_PASSIVE,
        AI_CANONNAME,
        AI_NUMERICHOST,
        AI_NUMERICSERV,
        AI_ADDRCONFIG,
        NI_NUMERICHOST,
        NI_NUMERICSERV,
        NI_NOFQDN,
        NI_NAMEREQD,
        NI_DGRAM,
        MSG_OOB,
        MSG_PEEK,
        MSG_DONTROUTE,
        MSG_CTRUNC,
        MSG_TRUNC,
        MSG_DONTWAIT,
        MSG_EOR,
        MSG_WAITALL,
        SOL_SOCKET,
        SCM_RIGHTS,
        SCM_TIMESTAMP,
    ];
    BSD
}
