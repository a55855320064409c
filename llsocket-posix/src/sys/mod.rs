//! Platform files: everything that differs between Linux and the BSDs.
//!
//! Exactly one file is compiled as this module's `imp`: `linux.rs` (Linux,
//! Android) or `bsd.rs` (macOS/iOS, FreeBSD, DragonFly, NetBSD, OpenBSD).
//! Each provides the same items:
//!
//! | item | what it is |
//! |---|---|
//! | `OS` | the `env` os name (`"linux"`, `"apple"`, `"freebsd"`, ...) |
//! | `socket`, `socketpair`, `accept` | descriptor creation: close-on-exec (atomically where the platform can), non-blocking on request, `SIGPIPE` suppressed per socket where needed |
//! | `SEND_FLAGS`, `RECVMSG_FLAGS` | flags OR-ed into every send (`MSG_NOSIGNAL` where it exists) and every recvmsg (`MSG_CMSG_CLOEXEC` where it exists) |
//! | `sendfile` | `sendfile(2)` or a `pread` + `send` step |
//! | `SO_REUSEPORT`, `SO_LINGER`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`, `TCP_CORK`, `SO_PROTOCOL` | option numbers (`None`: the platform lacks it) |
//! | `IPV6_JOIN_GROUP`, `IPV6_LEAVE_GROUP`, `mcast_source_v4`, `mcast_source` | multicast membership |
//! | `SIOCGIFADDR`, `SIOCGIFMTU`, `SIOCATMARK` | ioctls |
//! | `set_sa_len` | fills `sa_len` where the platform has it |
//! | `if_flags`, `ifa_dstaddr`, `decode_ifaddr`, `hwaddr` | `getifaddrs` entry decoding |
//! | `lua_constants` | the constants the Lua module table exports on this platform |

#[cfg_attr(any(target_os = "linux", target_os = "android"), path = "linux.rs")]
#[cfg_attr(
    any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    ),
    path = "bsd.rs"
)]
mod imp;

pub use imp::lua_constants;
pub(crate) use imp::*;

use libc::c_int;
use llsocket_api::Result;

use crate::{close_quietly, set_flag};

/// Makes a freshly created descriptor close-on-exec (and non-blocking if asked),
/// closing it on failure: the fallback where the platform lacks `SOCK_CLOEXEC`.
#[allow(dead_code)] // unused where creation is atomic
pub(crate) fn finish_fd(fd: c_int, nonblock: bool) -> Result<c_int> {
    let r = set_flag(fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC, true)
        .and_then(|()| set_flag(fd, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK, nonblock));
    match r {
        Ok(()) => Ok(fd),
        Err(e) => {
            close_quietly(fd);
            Err(e)
        }
    }
}
