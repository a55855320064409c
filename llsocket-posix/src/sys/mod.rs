//! Platform files: everything that differs between Linux and the BSDs.
//!
//! Exactly one file is compiled as this module's `imp`: `linux.rs` (`linuxlike`: Linux,
//! Android) or `bsd.rs` (`apple`; `freebsdlike`: FreeBSD, DragonFly; `netbsdlike`: NetBSD,
//! OpenBSD). The aliases come from `build.rs`.
//! Each provides the same items:
//!
//! | item | what it is |
//! |---|---|
//! | `OS` | the `env` os name (`"linux"`, `"apple"`, `"freebsd"`, ...) |
//! | `type_flags`, `finish` | descriptor creation: close-on-exec (atomically where the platform can), non-blocking on request, `SIGPIPE` suppressed per socket where needed |
//! | `accept` | `accept4(2)` or `accept(2)` + `finish` |
//! | `SEND_FLAGS` | flags OR-ed into every send (`MSG_NOSIGNAL` where it exists) |
//! | `sendfile` | `sendfile(2)` or a `pread` + `send` step |
//! | `SO_REUSEPORT`, `SO_LINGER`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`, `TCP_CORK`, `SO_PROTOCOL` | option numbers (`None`: the platform lacks it) |
//! | `ip_mreq_source`, `GroupSourceReq` | the platform's source-specific request layouts (where it has SSM) |
//! | `SIOCGIFADDR`, `SIOCGIFMTU`, `SIOCATMARK` | ioctls |
//! | `with_sa_len` | fills `sa_len` where the platform has it (socket2 does for IP addresses only) |
//! | `if_flags`, `ifa_dstaddr`, `decode_ifaddr`, `hwaddr` | `getifaddrs` entry decoding |
//! | `lua_constants` | the constants the Lua module table exports on this platform |
//!
//! This file builds on them: `socket`, `socketpair` (socket2 makes the descriptors), the
//! `SIGPIPE` guard for `sendfile` (libc: signal masks are outside socket2), and the
//! source-specific multicast requests (libc: socket2 has no block/unblock and no `MCAST_*`).

#[cfg_attr(linuxlike, path = "linux.rs")]
#[cfg_attr(any(apple, freebsdlike, netbsdlike), path = "bsd.rs")]
mod imp;

pub use imp::lua_constants;
pub(crate) use imp::*;

use libc::{c_int, in_addr};
use llsocket_api::{McastOp, Result};
use socket2::{Domain, Protocol, Socket, Type};

use crate::addr::Raw;
use crate::os_errno;

/// `socket(2)`: close-on-exec, non-blocking on request, no `SIGPIPE` (the platform's rules).
pub(crate) fn socket(domain: c_int, ty: c_int, proto: c_int, nonblock: bool) -> Result<Socket> {
    let ty = Type::from(ty | type_flags(nonblock));
    let s = Socket::new_raw(Domain::from(domain), ty, Some(Protocol::from(proto)));
    let s = s.map_err(os_errno)?;
    // On failure `s` is dropped, which closes it.
    finish(&s, nonblock)?;
    Ok(s)
}

/// `socketpair(AF_UNIX, ...)`: close-on-exec, non-blocking on request, no `SIGPIPE`.
pub(crate) fn socketpair(ty: c_int, proto: c_int, nonblock: bool) -> Result<(Socket, Socket)> {
    let ty = Type::from(ty | type_flags(nonblock));
    let pair = Socket::pair_raw(Domain::UNIX, ty, Some(Protocol::from(proto)));
    let (a, b) = pair.map_err(os_errno)?;
    finish(&a, nonblock)?;
    finish(&b, nonblock)?;
    Ok((a, b))
}

/// Runs `f` with `SIGPIPE` blocked for this thread; a `SIGPIPE` that `f` raised (it failed
/// with `EPIPE`) is consumed before the mask is restored, so the process never sees it.
/// For calls that cannot take `MSG_NOSIGNAL` (`sendfile`). libc: signal masks are not socket2's.
#[allow(dead_code)] // unused where every sendfile path can take MSG_NOSIGNAL
pub(crate) fn without_sigpipe<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    use std::mem::zeroed;
    // SAFETY: sigset_t is plain old data; each set is initialised by sigemptyset before use.
    let (mut set, mut old, mut pending): (libc::sigset_t, libc::sigset_t, libc::sigset_t) =
        unsafe { (zeroed(), zeroed(), zeroed()) };
    // SAFETY: all sets are live; the calls only read and write them.
    let was_pending = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        libc::sigemptyset(&mut pending);
        libc::sigpending(&mut pending);
        libc::sigismember(&pending, libc::SIGPIPE) == 1
    };
    let r = f();
    if matches!(r, Err(e) if e == llsocket_api::Errno::EPIPE) && !was_pending {
        consume_sigpipe(&set);
    }
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
}

/// Takes a pending `SIGPIPE` off this thread without waiting.
#[allow(dead_code)]
fn consume_sigpipe(set: &libc::sigset_t) {
    // SAFETY: `pending` is initialised by sigpending before it is read.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `pending` and `set` are live sigsets; sigwait only returns once a signal of
    // `set` is pending, which sigismember has just confirmed.
    unsafe {
        libc::sigpending(&mut pending);
        if libc::sigismember(&pending, libc::SIGPIPE) == 1 {
            let mut sig = 0;
            libc::sigwait(set, &mut sig);
        }
    }
}

/// IPv4 source-specific membership (`IP_ADD_SOURCE_MEMBERSHIP`, ...).
#[cfg(any(linuxlike, apple, target_os = "freebsd"))]
pub(crate) fn mcast_source_v4(
    fd: c_int,
    op: McastOp,
    group: in_addr,
    source: in_addr,
    interface: in_addr,
) -> Result<()> {
    let name = match op {
        McastOp::Join => libc::IP_ADD_SOURCE_MEMBERSHIP,
        McastOp::Leave => libc::IP_DROP_SOURCE_MEMBERSHIP,
        McastOp::Block => libc::IP_BLOCK_SOURCE,
        McastOp::Unblock => libc::IP_UNBLOCK_SOURCE,
    };
    let m = imp::ip_mreq_source(group, source, interface);
    // libc: socket2 has join/leave_ssm_v4 but no block/unblock; one path serves all four.
    crate::setopt(fd, libc::IPPROTO_IP, name, &m)
}

/// Protocol-independent source-specific membership at `IPPROTO_IPV6`.
#[cfg(any(linuxlike, apple, target_os = "freebsd"))]
pub(crate) fn mcast_source(
    fd: c_int,
    op: McastOp,
    group: &Raw,
    source: &Raw,
    interface: u32,
) -> Result<()> {
    let name = match op {
        McastOp::Join => libc::MCAST_JOIN_SOURCE_GROUP,
        McastOp::Leave => libc::MCAST_LEAVE_SOURCE_GROUP,
        McastOp::Block => libc::MCAST_BLOCK_SOURCE,
        McastOp::Unblock => libc::MCAST_UNBLOCK_SOURCE,
    };
    let r = imp::GroupSourceReq {
        gsr_interface: interface,
        gsr_group: group.clone().as_storage(),
        gsr_source: source.clone().as_storage(),
    };
    // libc: socket2 has no protocol-independent (MCAST_*) group requests.
    crate::setopt(fd, libc::IPPROTO_IPV6, name, &r)
}

/// Source-specific multicast: not in the DragonFly, NetBSD and OpenBSD kernels.
#[cfg(not(any(linuxlike, apple, target_os = "freebsd")))]
pub(crate) fn mcast_source_v4(
    _fd: c_int,
    _op: McastOp,
    _group: in_addr,
    _source: in_addr,
    _interface: in_addr,
) -> Result<()> {
    Err(llsocket_api::Errno::EOPNOTSUPP)
}

/// Source-specific multicast: not in the DragonFly, NetBSD and OpenBSD kernels.
#[cfg(not(any(linuxlike, apple, target_os = "freebsd")))]
pub(crate) fn mcast_source(
    _fd: c_int,
    _op: McastOp,
    _group: &Raw,
    _source: &Raw,
    _interface: u32,
) -> Result<()> {
    Err(llsocket_api::Errno::EOPNOTSUPP)
}
