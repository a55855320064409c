//! The socket operations of a simulated host: argument checks, state changes and the
//! blocking rules, written against [`World`]; this file holds what they share.
//!
//! Each `op_*` function takes the world and the calling host's index; `lib.rs` wraps
//! them into the [`llsocket_api::SocketOps`] implementation of [`crate::Host`].
//!
//! | file | operations |
//! |---|---|
//! | `lifecycle.rs` | `socket`, `socketpair`, `dup`, `close`, `shutdown`, the unix garbage collector, crash and restart |
//! | `naming.rs` | `bind`, automatic binding, `connect`, `listen`, `accept`, `getsockname`, `getpeername` |
//! | `stream.rs` | TCP and unix stream send and receive, urgent data, `sendfile` |
//! | `dgram.rs` | the `sendmsg`/`recvmsg` entry points, UDP and unix datagram/seqpacket data, control data |
//! | `readiness.rs` | `poll`, `sockatmark` |
//! | `options.rs` | `getsockopt`, `setsockopt` |
//! | `multicast.rs` | multicast memberships, `IP_MULTICAST_IF` interface lookup |

mod dgram;
mod lifecycle;
mod multicast;
mod naming;
mod options;
mod readiness;
mod stream;

use llsocket_api::opt::Timeval;
use llsocket_api::{Errno, Family, Fd, MsgFlags, Result, SockAddr, UnixAddr};

use crate::types::{Nanos, ObjId};
use crate::world::World;

const MS: Nanos = 1_000_000;
/// `MSG_CMSG_CLOEXEC` (Linux's value: the simulator is a Linux).
const MSG_CMSG_CLOEXEC: i32 = 0x4000_0000;
/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC` as type flags (Linux's values, so the crate
/// builds where libc lacks them).
const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o2_000_000;
/// `SCM_MAX_FD`.
const SCM_MAX_FD: usize = 253;

/// The length of `addr` in its C `sockaddr` form (Linux checks lengths before families).
fn c_len(addr: &SockAddr) -> usize {
    match addr {
        SockAddr::V4(_) => 16,
        SockAddr::V6(_) => 28,
        SockAddr::Unix(UnixAddr::Unnamed) => 2,
        SockAddr::Unix(UnixAddr::Path(p)) => 2 + p.len() + 1,
        SockAddr::Unix(UnixAddr::Abstract(n)) => 3 + n.len(),
        SockAddr::Other { data, .. } => 2 + data.len(),
    }
}

/// `EINVAL` when `addr` is shorter than the family's `sockaddr`, else `EAFNOSUPPORT`.
fn wrong_family(fam: Family, addr: &SockAddr) -> Errno {
    let need = if fam == Family::INET6 { 24 } else { 16 };
    if c_len(addr) < need {
        Errno::EINVAL
    } else {
        Errno::EAFNOSUPPORT
    }
}

/// `sun_path` capacity (Linux).
const SUN_PATH: usize = 108;

/// A unix name too long for `sockaddr_un` is `EINVAL` before anything else (the C
/// address cannot even be built: a path needs its NUL, an abstract name its leading NUL).
fn check_unix_len(addr: &SockAddr) -> Result<()> {
    match addr {
        SockAddr::Unix(UnixAddr::Path(p)) if p.len() >= SUN_PATH => Err(Errno::EINVAL),
        SockAddr::Unix(UnixAddr::Abstract(n)) if 1 + n.len() > SUN_PATH => Err(Errno::EINVAL),
        _ => Ok(()),
    }
}

fn timeout_of(tv: Timeval) -> Option<Nanos> {
    tv.as_millis().map(|ms| ms.saturating_mul(MS))
}

/// What a receive produced, before it is scattered into the caller's buffers.
pub(crate) struct Got {
    pub data: Vec<u8>,
    /// The return value (may exceed `data.len()` with `MSG_TRUNC`).
    pub ret: usize,
    pub flags: MsgFlags,
    pub addr: Option<SockAddr>,
    pub rights: Vec<ObjId>,
    pub ts: Option<Nanos>,
    /// Stream `MSG_TRUNC`: bytes were discarded, nothing is copied.
    pub discard: bool,
    /// The unix socket that sent the data (its current name is the address).
    pub src: Option<ObjId>,
    /// The descriptors `recv_control` installed, and the `SCM_TIMESTAMP` it delivered (for the trace).
    pub ctl_fds: Vec<Fd>,
    pub ctl_ts: Option<Nanos>,
}

impl Got {
    fn empty() -> Got {
        Got::with_buffer(Vec::new())
    }

    /// An empty result whose bytes go into `data` (a reused buffer: it is cleared).
    pub(crate) fn with_buffer(mut data: Vec<u8>) -> Got {
        data.clear();
        Got {
            data,
            ret: 0,
            flags: MsgFlags::NONE,
            addr: None,
            rights: Vec::new(),
            ts: None,
            discard: false,
            src: None,
            ctl_fds: Vec::new(),
            ctl_ts: None,
        }
    }
}

/// Takes a socket's pending error (`SO_ERROR` semantics).
fn take_err(w: &mut World, id: ObjId) -> Option<Errno> {
    let s = w.s(id);
    if s.err != 0 {
        let e = s.err;
        s.err = 0;
        Some(Errno(e))
    } else {
        None
    }
}
