//! `llsocket-posix`: [`SocketOps`] over the real kernel, with `socket2` and `libc`.
//!
//! Map of the crate:
//!
//! | module | what lives there |
//! |---|---|
//! | this file | [`Posix`], the backend, and the [`SocketOps`] implementation |
//! | `addr` | `SockAddr` <-> `socket2::SockAddr` |
//! | `sys` | one file per platform group (`sys/linux.rs`, `sys/bsd.rs`): the facts and calls that differ |
//!
//! Everything platform-specific (flags, option numbers, struct layouts, the
//! `sendfile` strategy, `SIGPIPE` suppression) lives in `sys/`; this file is
//! written once against the interface `sys/mod.rs` documents.
//!
//! socket2 makes the descriptors and carries the calls and options it has with the same
//! behaviour, on a [`SockRef`] that borrows the caller's descriptor and never closes it. Each
//! remaining `libc` call says why on a `// libc:` line: socket2 lacks it, or would change an
//! observable result (an errno, a flag, a length, a value).

use std::ffi::{CStr, CString};
use std::io::IoSlice;
use std::mem::{size_of, zeroed};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd};
use std::time::Duration;

use libc::{c_int, c_void, socklen_t};
use llsocket_api::netdb::IfAddress;
use llsocket_api::opt::{Linger, Timeval};
use llsocket_api::{
    Accepted, AddrInfo, AddrInfoHints, Errno, Family, Fd, GaiError, Interest, Interface, McastOp,
    McastRequest, MsgFlags, NameInfo, OptName, Platform, Protocol, RecvMsgOut, Result, Shutdown,
    SockAddr, SockOpt, SockType, SocketOps,
};
use socket2::{MsgHdr, SockRef};

mod addr;
mod sys;

pub use sys::lua_constants;

use addr::Raw;

/// An OS error from socket2 (or `std`) as its [`Errno`].
pub(crate) fn os_errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The calling thread's `errno` as an [`Errno`].
pub(crate) fn last_errno() -> Errno {
    os_errno(std::io::Error::last_os_error())
}

/// Turns a C return value of `-1` into `Err(errno)`, anything else into `Ok(value)`.
macro_rules! syscall {
    ($e:expr) => {{
        let r = $e;
        if r == -1 {
            Err($crate::last_errno())
        } else {
            Ok(r)
        }
    }};
}
pub(crate) use syscall;

/// The POSIX backend: every operation is the matching system call.
#[derive(Debug, Default, Clone, Copy)]
pub struct Posix;

/// A descriptor number that passed [`check`]: owned by our caller (the Lua object), which
/// keeps it open for the duration of the call.
#[derive(Clone, Copy)]
struct Desc(c_int);

impl AsFd for Desc {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the number is not -1 (`check` rejects negatives) and its owner keeps it open
        // while we borrow it. A number that is not open only makes the kernel answer EBADF, as
        // the raw call would; nothing borrowed this way is ever closed (see `sock`).
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

/// socket2's view of the caller's descriptor: a [`SockRef`] never closes what it borrows.
fn sock(fd: &Desc) -> SockRef<'_> {
    SockRef::from(fd)
}

/// Rejects the closed descriptor before it reaches the kernel.
fn check(fd: Fd) -> Result<Desc> {
    if fd.0 < 0 {
        Err(Errno::EBADF)
    } else {
        Ok(Desc(fd.0))
    }
}

/// How an option's value is carried.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Timeval,
    Linger,
    InAddr,
    Uint,
}

/// Level, name and value kind of an option on this platform (`None`: the platform lacks it).
fn opt_info(name: OptName) -> Result<(c_int, c_int, Kind)> {
    use libc::{IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, SOL_SOCKET};
    let missing = Errno::EOPNOTSUPP;
    Ok(match name {
        OptName::ReuseAddr => (SOL_SOCKET, libc::SO_REUSEADDR, Kind::Bool),
        OptName::ReusePort => (SOL_SOCKET, sys::SO_REUSEPORT.ok_or(missing)?, Kind::Bool),
        OptName::Broadcast => (SOL_SOCKET, libc::SO_BROADCAST, Kind::Bool),
        OptName::Debug => (SOL_SOCKET, libc::SO_DEBUG, Kind::Bool),
        OptName::KeepAlive => (SOL_SOCKET, libc::SO_KEEPALIVE, Kind::Bool),
        OptName::OobInline => (SOL_SOCKET, libc::SO_OOBINLINE, Kind::Bool),
        OptName::DontRoute => (SOL_SOCKET, libc::SO_DONTROUTE, Kind::Bool),
        OptName::Timestamp => (SOL_SOCKET, libc::SO_TIMESTAMP, Kind::Bool),
        OptName::RcvBuf => (SOL_SOCKET, libc::SO_RCVBUF, Kind::Int),
        OptName::RcvLowat => (SOL_SOCKET, libc::SO_RCVLOWAT, Kind::Int),
        OptName::SndBuf => (SOL_SOCKET, libc::SO_SNDBUF, Kind::Int),
        OptName::SndLowat => (SOL_SOCKET, libc::SO_SNDLOWAT, Kind::Int),
        OptName::RcvTimeo => (SOL_SOCKET, libc::SO_RCVTIMEO, Kind::Timeval),
        OptName::SndTimeo => (SOL_SOCKET, libc::SO_SNDTIMEO, Kind::Timeval),
        OptName::Linger => (SOL_SOCKET, sys::SO_LINGER, Kind::Linger),
        OptName::TcpNoDelay => (IPPROTO_TCP, libc::TCP_NODELAY, Kind::Bool),
        OptName::TcpKeepIntvl => (IPPROTO_TCP, sys::TCP_KEEPINTVL.ok_or(missing)?, Kind::Int),
        OptName::TcpKeepCnt => (IPPROTO_TCP, sys::TCP_KEEPCNT.ok_or(missing)?, Kind::Int),
        OptName::TcpKeepAlive => (IPPROTO_TCP, sys::TCP_KEEPIDLE.ok_or(missing)?, Kind::Int),
        OptName::TcpCork => (IPPROTO_TCP, sys::TCP_CORK.ok_or(missing)?, Kind::Bool),
        OptName::AcceptConn => (SOL_SOCKET, libc::SO_ACCEPTCONN, Kind::Bool),
        OptName::Error => (SOL_SOCKET, libc::SO_ERROR, Kind::Int),
        OptName::Type => (SOL_SOCKET, libc::SO_TYPE, Kind::Int),
        OptName::Protocol => (
            SOL_SOCKET,
            sys::SO_PROTOCOL.ok_or(Errno::ENOPROTOOPT)?,
            Kind::Int,
        ),
        OptName::MulticastLoopV4 => (IPPROTO_IP, libc::IP_MULTICAST_LOOP, Kind::Bool),
        OptName::MulticastLoopV6 => (IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, Kind::Bool),
        OptName::MulticastTtlV4 => (IPPROTO_IP, libc::IP_MULTICAST_TTL, Kind::Int),
        OptName::MulticastHopsV6 => (IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, Kind::Int),
        OptName::MulticastIfV4 => (IPPROTO_IP, libc::IP_MULTICAST_IF, Kind::InAddr),
        OptName::MulticastIfV6 => (IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, Kind::Uint),
    })
}

/// `setsockopt` with a plain value, for what socket2 has no setter for (see `setsockopt`).
fn setopt<T>(fd: c_int, level: c_int, name: c_int, value: &T) -> Result<()> {
    // SAFETY: `value` is a live T of exactly the length passed.
    syscall!(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast::<c_void>(),
            size_of::<T>() as socklen_t,
        )
    })?;
    Ok(())
}

/// `getsockopt` into a zeroed T; returns it with the length the kernel reported (socket2
/// neither reports the length nor takes a one-byte answer).
fn getopt<T>(fd: c_int, level: c_int, name: c_int) -> Result<(T, usize)> {
    // SAFETY: only used with plain-old-data C types, for which all-zero is valid.
    let mut value: T = unsafe { zeroed() };
    let mut len = size_of::<T>() as socklen_t;
    // SAFETY: `value` is a live T and `len` its size; the kernel writes at most `len` bytes.
    syscall!(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut T).cast::<c_void>(),
            &mut len,
        )
    })?;
    Ok((value, len as usize))
}

/// An `int` option; a one-byte answer (BSD `u_char` options) is read as that byte.
fn getopt_int(fd: c_int, level: c_int, name: c_int) -> Result<i32> {
    let (v, len): (c_int, usize) = getopt(fd, level, name)?;
    Ok(if len == 1 {
        i32::from(v.to_ne_bytes()[0])
    } else {
        v
    })
}

/// Reads `errno`-less failures of `if_*` calls as `ENXIO`.
fn errno_or_enxio() -> Errno {
    match last_errno() {
        Errno(0) => Errno::ENXIO,
        e => e,
    }
}

/// Copies an interface name into a fixed C buffer (`ENXIO` when it cannot be one).
fn ifname(name: &[u8]) -> Result<[libc::c_char; libc::IFNAMSIZ]> {
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    if name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(Errno::ENXIO);
    }
    for (d, s) in out.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    Ok(out)
}

/// An `ifreq`-shaped buffer, oversized for every supported platform's union.
#[repr(C)]
pub(crate) struct IfReq {
    /// `ifr_name`.
    pub(crate) name: [libc::c_char; libc::IFNAMSIZ],
    /// The union (`ifr_addr`, `ifr_mtu`, ...).
    pub(crate) data: [u64; 4],
}

/// `ioctl(fd, req, &ifreq)` for interface `name` (libc: socket2 has no interface ioctls).
fn ifreq_ioctl(fd: c_int, req: u64, name: &[u8]) -> Result<IfReq> {
    let mut ifr = IfReq {
        name: ifname(name)?,
        data: [0; 4],
    };
    // SAFETY: `ifr` is a live ifreq-compatible buffer at least as large as the kernel's ifreq.
    syscall!(unsafe { libc::ioctl(fd, req as _, &mut ifr as *mut IfReq) })?;
    Ok(ifr)
}

/// Maps a resolver return code to a [`GaiError`] (`EAI_SYSTEM` carries errno).
fn gai_error(code: c_int) -> GaiError {
    if code == libc::EAI_SYSTEM {
        GaiError {
            code,
            system: Some(last_errno()),
        }
    } else {
        GaiError::new(code)
    }
}

/// Copies a C string pointer (NULL → `None`): the bytes exactly, no UTF-8 decoding.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
unsafe fn c_string(p: *const libc::c_char) -> Option<Vec<u8>> {
    // SAFETY: per the function contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes().to_vec())
}

/// Why a name cannot be passed to C.
enum CNameError {
    /// It contains a NUL byte.
    Nul,
    /// Its copy could not be allocated (the name is sized by the caller).
    NoMemory,
}

/// A NUL-terminated copy of a caller-given name, allocated fallibly.
fn c_name(bytes: &[u8]) -> std::result::Result<CString, CNameError> {
    if bytes.contains(&0) {
        return Err(CNameError::Nul);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len() + 1)
        .map_err(|_| CNameError::NoMemory)?;
    v.extend_from_slice(bytes);
    CString::new(v).map_err(|_| CNameError::Nul)
}

/// A zeroed heap area of `len` bytes whose start is aligned for `cmsghdr` (8 bytes is enough
/// on every platform).
struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let buf = vec![0u8; len + 7];
        let start = (buf.as_ptr() as usize).wrapping_neg() & 7;
        Aligned { buf, start, len }
    }

    /// The aligned bytes (the vector never grows, so they never move).
    fn bytes(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl SocketOps for Posix {
    fn platform(&self) -> Platform {
        Platform {
            os: sys::OS,
            unix_path_max: addr::sun_path_len(),
            somaxconn: libc::SOMAXCONN,
        }
    }

    fn socket(
        &self,
        family: Family,
        ty: SockType,
        protocol: Protocol,
        nonblock: bool,
    ) -> Result<Fd> {
        let s = sys::socket(family.raw(), ty.raw(), protocol.raw(), nonblock)?;
        Ok(Fd(s.into_raw_fd()))
    }

    fn socketpair(&self, ty: SockType, protocol: Protocol, nonblock: bool) -> Result<(Fd, Fd)> {
        let (a, b) = sys::socketpair(ty.raw(), protocol.raw(), nonblock)?;
        Ok((Fd(a.into_raw_fd()), Fd(b.into_raw_fd())))
    }

    fn dup(&self, fd: Fd) -> Result<Fd> {
        let fd = check(fd)?;
        // fcntl(F_DUPFD_CLOEXEC, 0), as before.
        let new = sock(&fd).try_clone().map_err(os_errno)?;
        Ok(Fd(new.into_raw_fd()))
    }

    fn close(&self, fd: Fd) -> Result<()> {
        let fd = check(fd)?;
        // libc: socket2 closes only on drop, and drops close's errno.
        // SAFETY: closing a descriptor number; no memory is involved.
        syscall!(unsafe { libc::close(fd.0) }).map(drop)
    }

    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()> {
        let fd = check(fd)?;
        // libc: any `how` must reach the kernel (EINVAL); socket2 takes only the three valid ones.
        // SAFETY: plain integer arguments.
        syscall!(unsafe { libc::shutdown(fd.0, how.raw()) }).map(drop)
    }

    fn bind(&self, fd: Fd, addr: &SockAddr) -> Result<()> {
        let fd = check(fd)?;
        let raw = addr::encode(addr)?;
        sock(&fd).bind(&raw).map_err(os_errno)
    }

    fn connect(&self, fd: Fd, addr: &SockAddr) -> Result<()> {
        let fd = check(fd)?;
        let raw = addr::encode(addr)?;
        sock(&fd).connect(&raw).map_err(os_errno)
    }

    fn listen(&self, fd: Fd, backlog: i32) -> Result<()> {
        let fd = check(fd)?;
        sock(&fd).listen(backlog).map_err(os_errno)
    }

    fn accept(&self, fd: Fd, want_addr: bool) -> Result<Accepted> {
        let fd = check(fd)?;
        let nonblock = sock(&fd).nonblocking().map_err(os_errno)?;
        let (new, raw) = sys::accept(&sock(&fd), nonblock)?;
        let addr = want_addr.then(|| addr::decode(&raw));
        Ok(Accepted {
            fd: Fd(new.into_raw_fd()),
            addr,
        })
    }

    fn send(&self, fd: Fd, buf: &[u8], flags: MsgFlags) -> Result<usize> {
        let fd = check(fd)?;
        // libc: socket2 cuts buffers at INT_MAX - 1 on Apple (a short count where the kernel
        // says EINVAL); send, sendto, recv and recvfrom keep the plain call.
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = syscall!(unsafe {
            libc::send(
                fd.0,
                buf.as_ptr().cast(),
                buf.len(),
                flags.raw() | sys::SEND_FLAGS,
            )
        })?;
        Ok(n as usize)
    }

    fn sendto(&self, fd: Fd, buf: &[u8], to: &SockAddr, flags: MsgFlags) -> Result<usize> {
        let fd = check(fd)?;
        let raw = addr::encode(to)?;
        // libc: as for `send`.
        // SAFETY: `buf` is valid for its length; `raw` holds `raw.len()` bytes of a sockaddr.
        let n = syscall!(unsafe {
            libc::sendto(
                fd.0,
                buf.as_ptr().cast(),
                buf.len(),
                flags.raw() | sys::SEND_FLAGS,
                raw.as_ptr().cast(),
                raw.len(),
            )
        })?;
        Ok(n as usize)
    }

    fn recv(&self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize> {
        let fd = check(fd)?;
        // libc: as for `send`.
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let r = unsafe { libc::recv(fd.0, buf.as_mut_ptr().cast(), buf.len(), flags.raw()) };
        let n = syscall!(r)?;
        Ok(n as usize)
    }

    fn recvfrom(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<(usize, Option<SockAddr>)> {
        let fd = check(fd)?;
        // libc: as for `send`; socket2 still provides the zeroed address storage.
        // SAFETY: `buf` is valid for writes of its length; `storage` and `len` are socket2's
        // zeroed sockaddr_storage and its size, which recvfrom fills.
        let (n, raw) = unsafe {
            Raw::try_init(|storage, len| {
                let r = libc::recvfrom(
                    fd.0,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags.raw(),
                    storage.cast(),
                    len,
                );
                if r == -1 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(r as usize)
                }
            })
        }
        .map_err(os_errno)?;
        let addr = (raw.len() > 0).then(|| addr::decode(&raw));
        Ok((n, addr))
    }

    fn sendmsg<'a>(
        &self,
        fd: Fd,
        iov: &[&'a [u8]],
        control: &[u8],
        to: Option<&'a SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        let fd = check(fd)?;
        let bufs: Vec<IoSlice<'_>> = iov.iter().map(|b| IoSlice::new(b)).collect();
        let to = to.map(addr::encode).transpose()?;
        let mut cbuf = Aligned::new(control.len());
        cbuf.bytes().copy_from_slice(control);
        let mut msg = MsgHdr::new().with_buffers(&bufs);
        if let Some(a) = &to {
            msg = msg.with_addr(a);
        }
        if !control.is_empty() {
            msg = msg.with_control(cbuf.bytes());
        }
        let flags = flags.raw() | sys::SEND_FLAGS;
        sock(&fd).sendmsg(&msg, flags).map_err(os_errno)
    }

    #[allow(clippy::needless_lifetimes)] // matches the trait declaration
    fn recvmsg<'a>(
        &self,
        fd: Fd,
        iov: &mut [&'a mut [u8]],
        control: &mut [u8],
        flags: MsgFlags,
    ) -> Result<RecvMsgOut> {
        let fd = check(fd)?;
        // libc: socket2's MsgHdrMut gives back neither the raw msg_flags (MSG_CTRUNC, ...) nor
        // the address length the kernel wrote; socket2 still provides the address storage.
        let mut iovecs: Vec<libc::iovec> = iov
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let mut cbuf = Aligned::new(control.len());
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_iov = iovecs.as_mut_ptr();
        msg.msg_iovlen = iovecs.len() as _;
        if !control.is_empty() {
            msg.msg_control = cbuf.bytes().as_mut_ptr().cast();
            msg.msg_controllen = control.len() as _;
        }
        // SAFETY: `storage`/`len` are socket2's zeroed sockaddr_storage and its size; every
        // other pointer in `msg` refers to a live buffer of the stated length.
        let (n, raw) = unsafe {
            Raw::try_init(|storage, len| {
                msg.msg_name = storage.cast();
                msg.msg_namelen = *len;
                let r = libc::recvmsg(fd.0, &mut msg, flags.raw());
                *len = msg.msg_namelen;
                if r == -1 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(r as usize)
                }
            })
        }
        .map_err(os_errno)?;
        let control_len = if control.is_empty() {
            0
        } else {
            (msg.msg_controllen as usize).min(control.len())
        };
        control[..control_len].copy_from_slice(&cbuf.bytes()[..control_len]);
        Ok(RecvMsgOut {
            bytes: n,
            control_len,
            flags: MsgFlags(msg.msg_flags),
            addr: (raw.len() > 0).then(|| addr::decode(&raw)),
        })
    }

    fn sendfile(&self, sock: Fd, file: Fd, offset: i64, len: usize) -> Result<usize> {
        // libc (in sys/): socket2 has no sendfile.
        sys::sendfile(check(sock)?.0, check(file)?.0, offset, len)
    }

    fn poll(&self, fd: Fd, interest: Interest, timeout_ms: i32) -> Result<bool> {
        let fd = check(fd)?;
        let mut events = 0;
        if interest.read {
            events |= libc::POLLIN;
        }
        if interest.write {
            events |= libc::POLLOUT;
        }
        if interest.except {
            events |= libc::POLLPRI;
        }
        let mut pfd = libc::pollfd {
            fd: fd.0,
            events,
            revents: 0,
        };
        // libc: socket2 has no poll.
        // SAFETY: `pfd` is one live pollfd.
        let n = syscall!(unsafe { libc::poll(&mut pfd, 1, timeout_ms.max(0)) })?;
        if n == 0 {
            return Ok(false);
        }
        let r = pfd.revents;
        if r & libc::POLLNVAL != 0 {
            return Err(Errno::EBADF);
        }
        let hup_err = libc::POLLHUP | libc::POLLERR;
        Ok((interest.read && r & (libc::POLLIN | hup_err) != 0)
            || (interest.write && r & (libc::POLLOUT | hup_err) != 0)
            || (interest.except && r & libc::POLLPRI != 0))
    }

    fn atmark(&self, fd: Fd) -> Result<bool> {
        let fd = check(fd)?;
        // libc: socket2 has no sockatmark(3), which is ioctl(SIOCATMARK) (libc does not bind
        // the wrapper).
        let mut mark: c_int = 0;
        // SAFETY: SIOCATMARK writes one int into `mark`.
        syscall!(unsafe { libc::ioctl(fd.0, sys::SIOCATMARK as _, &mut mark as *mut c_int) })?;
        Ok(mark != 0)
    }

    fn getsockname(&self, fd: Fd) -> Result<SockAddr> {
        let fd = check(fd)?;
        let raw = sock(&fd).local_addr().map_err(os_errno)?;
        Ok(addr::decode(&raw))
    }

    fn getpeername(&self, fd: Fd) -> Result<SockAddr> {
        let fd = check(fd)?;
        let raw = sock(&fd).peer_addr().map_err(os_errno)?;
        Ok(addr::decode(&raw))
    }

    fn nonblock(&self, fd: Fd) -> Result<bool> {
        let fd = check(fd)?;
        sock(&fd).nonblocking().map_err(os_errno)
    }

    fn set_nonblock(&self, fd: Fd, on: bool) -> Result<()> {
        // F_GETFL, then F_SETFL only if the bit changes, as before.
        let fd = check(fd)?;
        sock(&fd).set_nonblocking(on).map_err(os_errno)
    }

    fn cloexec(&self, fd: Fd) -> Result<bool> {
        let fd = check(fd)?;
        // libc: socket2 can set FD_CLOEXEC but not read it.
        // SAFETY: F_GETFD takes no argument.
        let fl = syscall!(unsafe { libc::fcntl(fd.0, libc::F_GETFD) })?;
        Ok(fl & libc::FD_CLOEXEC != 0)
    }

    fn set_cloexec(&self, fd: Fd, on: bool) -> Result<()> {
        // F_GETFD, then F_SETFD only if the bit changes, as before.
        let fd = check(fd)?;
        sock(&fd).set_cloexec(on).map_err(os_errno)
    }

    fn getsockopt(&self, fd: Fd, name: OptName) -> Result<SockOpt> {
        let fd = check(fd)?;
        let (level, opt, kind) = opt_info(name)?;
        let int = |v: i32| -> SockOpt {
            match name {
                OptName::ReuseAddr => SockOpt::ReuseAddr(v != 0),
                OptName::ReusePort => SockOpt::ReusePort(v != 0),
                OptName::Broadcast => SockOpt::Broadcast(v != 0),
                OptName::Debug => SockOpt::Debug(v != 0),
                OptName::KeepAlive => SockOpt::KeepAlive(v != 0),
                OptName::OobInline => SockOpt::OobInline(v != 0),
                OptName::DontRoute => SockOpt::DontRoute(v != 0),
                OptName::Timestamp => SockOpt::Timestamp(v != 0),
                OptName::RcvBuf => SockOpt::RcvBuf(v),
                OptName::RcvLowat => SockOpt::RcvLowat(v),
                OptName::SndBuf => SockOpt::SndBuf(v),
                OptName::SndLowat => SockOpt::SndLowat(v),
                OptName::TcpNoDelay => SockOpt::TcpNoDelay(v != 0),
                OptName::TcpKeepIntvl => SockOpt::TcpKeepIntvl(v),
                OptName::TcpKeepCnt => SockOpt::TcpKeepCnt(v),
                OptName::TcpKeepAlive => SockOpt::TcpKeepAlive(v),
                OptName::TcpCork => SockOpt::TcpCork(v != 0),
                OptName::AcceptConn => SockOpt::AcceptConn(v != 0),
                OptName::Error => SockOpt::Error(v),
                OptName::Type => SockOpt::Type(v),
                OptName::Protocol => SockOpt::Protocol(v),
                OptName::MulticastLoopV4 => SockOpt::MulticastLoopV4(v != 0),
                OptName::MulticastLoopV6 => SockOpt::MulticastLoopV6(v != 0),
                OptName::MulticastTtlV4 => SockOpt::MulticastTtlV4(v),
                OptName::MulticastHopsV6 => SockOpt::MulticastHopsV6(v),
                OptName::MulticastIfV6 => SockOpt::MulticastIfV6(v as u32),
                // Not integer-valued; handled by their own kinds below.
                OptName::RcvTimeo
                | OptName::SndTimeo
                | OptName::Linger
                | OptName::MulticastIfV4 => unreachable!("non-integer option"),
            }
        };
        let s = sock(&fd);
        let e = os_errno;
        // socket2 where it reads the same option into the same C type.
        let read = match name {
            OptName::ReuseAddr => s.reuse_address().map(i32::from),
            OptName::ReusePort => s.reuse_port().map(i32::from),
            OptName::Broadcast => s.broadcast().map(i32::from),
            OptName::KeepAlive => s.keepalive().map(i32::from),
            OptName::OobInline => s.out_of_band_inline().map(i32::from),
            OptName::TcpNoDelay => s.tcp_nodelay().map(i32::from),
            OptName::MulticastLoopV6 => s.multicast_loop_v6().map(i32::from),
            OptName::RcvBuf => s.recv_buffer_size().map(|v| v as i32),
            OptName::SndBuf => s.send_buffer_size().map(|v| v as i32),
            OptName::MulticastHopsV6 => s.multicast_hops_v6().map(|v| v as i32),
            OptName::MulticastIfV6 => s.multicast_if_v6().map(|v| v as i32),
            OptName::Error => s
                .take_error()
                .map(|err| err.and_then(|x| x.raw_os_error()).unwrap_or(0)),
            OptName::Type => s.r#type().map(c_int::from),
            OptName::MulticastIfV4 => {
                let ip = s.multicast_if_v4().map_err(e)?;
                return Ok(SockOpt::MulticastIfV4(ip));
            }
            OptName::RcvTimeo | OptName::SndTimeo => {
                let t = if name == OptName::RcvTimeo {
                    s.read_timeout()
                } else {
                    s.write_timeout()
                };
                // `None` is the zero timeval; the kernel's usec is below 1e6, so this is exact.
                let d = t.map_err(e)?.unwrap_or(Duration::ZERO);
                let tv = Timeval {
                    sec: d.as_secs() as i64,
                    usec: i64::from(d.subsec_micros()),
                };
                return Ok(if name == OptName::RcvTimeo {
                    SockOpt::RcvTimeo(tv)
                } else {
                    SockOpt::SndTimeo(tv)
                });
            }
            // libc for the rest: socket2 has no call for SO_DEBUG, SO_DONTROUTE, SO_TIMESTAMP,
            // the low-water marks, TCP_KEEP* (only as a set that also turns SO_KEEPALIVE on),
            // TCP_NOPUSH, or SO_ACCEPTCONN / SO_PROTOCOL on every platform; it reads
            // IP_MULTICAST_LOOP/TTL as an int where the BSDs may answer one byte, and SO_LINGER
            // as an Option that drops l_linger when l_onoff is 0.
            _ => {
                return Ok(match kind {
                    Kind::Bool | Kind::Int => int(getopt_int(fd.0, level, opt)?),
                    Kind::Uint => {
                        let (v, _): (libc::c_uint, usize) = getopt(fd.0, level, opt)?;
                        int(v as i32)
                    }
                    Kind::Linger => {
                        let (l, _): (libc::linger, usize) = getopt(fd.0, level, opt)?;
                        SockOpt::Linger(Linger {
                            enabled: l.l_onoff != 0,
                            secs: l.l_linger,
                        })
                    }
                    Kind::Timeval | Kind::InAddr => unreachable!("read through socket2 above"),
                })
            }
        };
        Ok(int(read.map_err(e)?))
    }

    fn setsockopt(&self, fd: Fd, opt: SockOpt) -> Result<()> {
        let fd = check(fd)?;
        let (level, name, _) = opt_info(opt.name())?;
        let s = sock(&fd);
        // socket2 where it writes the same option as the same C value (a c_int, an in_addr).
        let done = match opt {
            SockOpt::ReuseAddr(b) => s.set_reuse_address(b),
            SockOpt::ReusePort(b) => s.set_reuse_port(b),
            SockOpt::Broadcast(b) => s.set_broadcast(b),
            SockOpt::KeepAlive(b) => s.set_keepalive(b),
            SockOpt::OobInline(b) => s.set_out_of_band_inline(b),
            SockOpt::TcpNoDelay(b) => s.set_tcp_nodelay(b),
            SockOpt::MulticastLoopV4(b) => s.set_multicast_loop_v4(b),
            SockOpt::MulticastLoopV6(b) => s.set_multicast_loop_v6(b),
            // These casts give back the same c_int inside socket2 (negative values included).
            SockOpt::RcvBuf(v) => s.set_recv_buffer_size(v as usize),
            SockOpt::SndBuf(v) => s.set_send_buffer_size(v as usize),
            SockOpt::MulticastTtlV4(v) => s.set_multicast_ttl_v4(v as u32),
            SockOpt::MulticastHopsV6(v) => s.set_multicast_hops_v6(v as u32),
            SockOpt::MulticastIfV4(ip) => s.set_multicast_if_v4(&ip),
            SockOpt::MulticastIfV6(idx) => s.set_multicast_if_v6(idx),
            // libc for the rest: socket2 has no setter for these options (or none on every
            // platform, or TCP_KEEP* only together with SO_KEEPALIVE on)...
            SockOpt::Debug(b)
            | SockOpt::DontRoute(b)
            | SockOpt::Timestamp(b)
            | SockOpt::TcpCork(b)
            | SockOpt::AcceptConn(b) => return setopt::<c_int>(fd.0, level, name, &b.into()),
            SockOpt::RcvLowat(v)
            | SockOpt::SndLowat(v)
            | SockOpt::TcpKeepIntvl(v)
            | SockOpt::TcpKeepCnt(v)
            | SockOpt::TcpKeepAlive(v)
            | SockOpt::Error(v)
            | SockOpt::Type(v)
            | SockOpt::Protocol(v) => return setopt::<c_int>(fd.0, level, name, &v),
            // ...and its Duration cannot carry a negative or >= 1e6 usec timeval, which the
            // kernel answers itself (EDOM, EINVAL, or a zero timeout)...
            SockOpt::RcvTimeo(tv) | SockOpt::SndTimeo(tv) => {
                let t = libc::timeval {
                    tv_sec: tv.sec as _,
                    tv_usec: tv.usec as _,
                };
                return setopt(fd.0, level, name, &t);
            }
            // ...nor a negative l_linger, or an l_linger with l_onoff 0.
            SockOpt::Linger(l) => {
                let v = libc::linger {
                    l_onoff: c_int::from(l.enabled),
                    l_linger: l.secs,
                };
                return setopt(fd.0, level, name, &v);
            }
        };
        done.map_err(os_errno)
    }

    fn multicast(&self, fd: Fd, op: McastOp, req: &McastRequest) -> Result<()> {
        let fd = check(fd)?;
        let in_addr = |ip: &Ipv4Addr| libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        };
        let s = sock(&fd);
        match req {
            McastRequest::V4 { group, interface } => match op {
                McastOp::Join => s.join_multicast_v4(group, interface).map_err(os_errno),
                McastOp::Leave => s.leave_multicast_v4(group, interface).map_err(os_errno),
                McastOp::Block | McastOp::Unblock => Err(Errno::EINVAL),
            },
            McastRequest::V6 { group, interface } => match op {
                McastOp::Join => s.join_multicast_v6(group, *interface).map_err(os_errno),
                McastOp::Leave => s.leave_multicast_v6(group, *interface).map_err(os_errno),
                McastOp::Block | McastOp::Unblock => Err(Errno::EINVAL),
            },
            // libc (in sys/): source-specific requests, see sys/mod.rs.
            McastRequest::SourceV4 {
                group,
                source,
                interface,
            } => sys::mcast_source_v4(
                fd.0,
                op,
                in_addr(group),
                in_addr(source),
                in_addr(interface),
            ),
            McastRequest::Source {
                group,
                source,
                interface,
            } => {
                let g = addr::encode(group)?;
                let s = addr::encode(source)?;
                sys::mcast_source(fd.0, op, &g, &s, *interface)
            }
        }
    }

    fn interface_ipv4(&self, fd: Fd, name: &[u8]) -> Result<Ipv4Addr> {
        let fd = check(fd)?;
        let ifr = ifreq_ioctl(fd.0, sys::SIOCGIFADDR, name)?;
        let bytes: Vec<u8> = ifr.data.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let sin = addr::from_bytes(&bytes[..size_of::<libc::sockaddr_in>()]);
        match addr::decode(&sin) {
            SockAddr::V4(a) => Ok(*a.ip()),
            _ => Err(Errno::EADDRNOTAVAIL),
        }
    }

    fn if_nametoindex(&self, name: &[u8]) -> Result<u32> {
        // no interface name is IFNAMSIZ bytes or longer: such a name is copied nowhere
        let c = ifname(name)?;
        // libc: socket2 has no interface-name calls.
        // SAFETY: `c` is NUL-terminated (ifname leaves at least one trailing NUL).
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if idx == 0 {
            Err(errno_or_enxio())
        } else {
            Ok(idx)
        }
    }

    fn if_indextoname(&self, index: u32) -> Result<Vec<u8>> {
        // libc: socket2 has no interface-name calls.
        let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: `buf` has IF_NAMESIZE bytes as the call requires.
        let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
        if p.is_null() {
            return Err(errno_or_enxio());
        }
        // SAFETY: on success `buf` holds a NUL-terminated name.
        Ok(unsafe { c_string(buf.as_ptr()) }.unwrap_or_default())
    }

    fn getaddrinfo<'a>(
        &self,
        node: Option<&'a [u8]>,
        service: Option<&'a [u8]>,
        hints: &AddrInfoHints,
    ) -> std::result::Result<Vec<AddrInfo>, GaiError> {
        let name = |b: &[u8], nul: GaiError| {
            c_name(b).map_err(|e| match e {
                CNameError::Nul => nul,
                CNameError::NoMemory => GaiError::EAI_MEMORY,
            })
        };
        let node = node.map(|n| name(n, GaiError::EAI_NONAME)).transpose()?;
        let service = service
            .map(|s| name(s, GaiError::EAI_SERVICE))
            .transpose()?;
        // SAFETY: addrinfo is plain old data; all-zero is valid (null pointers).
        let mut h: libc::addrinfo = unsafe { zeroed() };
        h.ai_family = hints.family.raw();
        h.ai_socktype = hints.socktype.raw();
        h.ai_protocol = hints.protocol.raw();
        h.ai_flags = hints.flags;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        // libc: socket2 has no resolver (getaddrinfo, getnameinfo).
        // SAFETY: the strings are NUL-terminated or null; `h` and `res` are live.
        let rc = unsafe {
            libc::getaddrinfo(
                node.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                service.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                &h,
                &mut res,
            )
        };
        if rc != 0 {
            return Err(gai_error(rc));
        }
        let mut out = Vec::new();
        let mut cur = res;
        while !cur.is_null() {
            // SAFETY: `cur` is a node of the list getaddrinfo returned, not yet freed.
            let ai = unsafe { &*cur };
            if !ai.ai_addr.is_null() {
                out.push(AddrInfo {
                    family: Family(ai.ai_family),
                    socktype: SockType(ai.ai_socktype),
                    protocol: Protocol(ai.ai_protocol),
                    flags: ai.ai_flags,
                    // SAFETY: ai_addr points to ai_addrlen bytes.
                    addr: unsafe { addr::decode_ptr(ai.ai_addr, ai.ai_addrlen as usize) },
                    // POSIX gives the canonical name on the first entry and only for
                    // AI_CANONNAME; glibc does exactly that, musl fills it in everywhere.
                    // Keep the POSIX shape so results don't depend on the libc.
                    canonname: if out.is_empty() && hints.flags & libc::AI_CANONNAME != 0 {
                        // SAFETY: ai_canonname is NULL or a NUL-terminated string.
                        unsafe { c_string(ai.ai_canonname) }
                    } else {
                        None
                    },
                });
            }
            cur = ai.ai_next;
        }
        // SAFETY: `res` came from a successful getaddrinfo and is freed once.
        unsafe { libc::freeaddrinfo(res) };
        Ok(out)
    }

    fn getnameinfo(&self, addr: &SockAddr, flags: i32) -> std::result::Result<NameInfo, GaiError> {
        let raw = addr::encode(addr).map_err(|_| GaiError::EAI_FAMILY)?;
        // libc: socket2 has no resolver.
        let mut host = [0 as libc::c_char; 1025];
        let mut serv = [0 as libc::c_char; 32];
        // SAFETY: `raw` holds `raw.len()` bytes; the buffers are live with the lengths passed.
        let rc = unsafe {
            libc::getnameinfo(
                raw.as_ptr().cast(),
                raw.len(),
                host.as_mut_ptr(),
                host.len() as _,
                serv.as_mut_ptr(),
                serv.len() as _,
                flags,
            )
        };
        if rc != 0 {
            return Err(gai_error(rc));
        }
        Ok(NameInfo {
            // SAFETY: on success both buffers hold NUL-terminated strings.
            host: unsafe { c_string(host.as_ptr()) }.unwrap_or_default(),
            // SAFETY: as above.
            service: unsafe { c_string(serv.as_ptr()) }.unwrap_or_default(),
        })
    }

    fn interfaces(&self) -> Result<Vec<Interface>> {
        // libc: socket2 has no getifaddrs.
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: `head` is a live out-pointer.
        syscall!(unsafe { libc::getifaddrs(&mut head) })?;
        // A throwaway socket for SIOCGIFMTU.
        let probe = sys::socket(libc::AF_INET, libc::SOCK_DGRAM, 0, false).ok();
        let mut out: Vec<Interface> = Vec::new();
        let mut cur = head;
        while !cur.is_null() {
            // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
            let ifa = unsafe { &*cur };
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
                continue;
            }
            // SAFETY: ifa_name is a NUL-terminated string.
            let name = unsafe { c_string(ifa.ifa_name) }.unwrap_or_default();
            let pos = match out.iter().position(|i| i.name == name) {
                Some(p) => p,
                None => {
                    let index = self.if_nametoindex(&name).ok().filter(|&i| i != 0);
                    let mtu = probe.as_ref().and_then(|s| {
                        let ifr = ifreq_ioctl(s.as_raw_fd(), sys::SIOCGIFMTU, &name).ok()?;
                        let b = ifr.data[0].to_ne_bytes();
                        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    });
                    out.push(Interface {
                        name,
                        flags: sys::if_flags(ifa.ifa_flags),
                        index,
                        mtu,
                        ..Interface::default()
                    });
                    out.len() - 1
                }
            };
            let iface = &mut out[pos];
            // SAFETY: ifa_addr is non-null and points to a sockaddr.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET || family == libc::AF_INET6 {
                // SAFETY: each pointer is NULL or a sockaddr of its family's length.
                let dec = |p: *mut libc::sockaddr| unsafe { sys::decode_ifaddr(p, family) };
                let flags = ifa.ifa_flags as c_int;
                let dst = sys::ifa_dstaddr(ifa);
                let rec = IfAddress {
                    address: dec(ifa.ifa_addr),
                    netmask: dec(ifa.ifa_netmask),
                    broadcast: if flags & libc::IFF_BROADCAST != 0 {
                        dec(dst)
                    } else {
                        None
                    },
                    point2point: if flags & libc::IFF_POINTOPOINT != 0 {
                        dec(dst)
                    } else {
                        None
                    },
                };
                if family == libc::AF_INET {
                    iface.inet.push(rec);
                } else {
                    iface.inet6.push(rec);
                }
            } else if iface.hwaddr.is_none() {
                // SAFETY: ifa_addr is non-null and points to a sockaddr of its family.
                iface.hwaddr = unsafe { sys::hwaddr(ifa.ifa_addr) };
            }
        }
        drop(probe);
        // SAFETY: `head` came from a successful getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(head) };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llsocket_api::cmsg;

    #[test]
    fn cmsg_layout_matches_the_c_macros() {
        for n in [0u32, 1, 4, 8, 12, 16, 100] {
            // SAFETY: CMSG_LEN / CMSG_SPACE are pure arithmetic.
            let (len, space) = unsafe { (libc::CMSG_LEN(n), libc::CMSG_SPACE(n)) };
            assert_eq!(cmsg::cmsg_len(n as usize), len as usize, "CMSG_LEN({n})");
            assert_eq!(
                cmsg::cmsg_space(n as usize),
                space as usize,
                "CMSG_SPACE({n})"
            );
        }
    }

    #[test]
    fn lua_constants_are_unique_and_named() {
        let c = lua_constants();
        let mut names: Vec<_> = c.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), c.len());
        let get = |n: &str| c.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert_eq!(get("SOCK_STREAM"), Some(i64::from(libc::SOCK_STREAM)));
        assert_eq!(get("SOL_SOCKET"), Some(i64::from(libc::SOL_SOCKET)));
        if Posix.platform().os == "linux" {
            assert_eq!(get("AF_DECnet"), Some(12));
            assert_eq!(get("MSG_BATCH"), Some(262_144));
            assert_eq!(get("SCM_CREDS"), Some(2));
            assert_eq!(get("SCM_TIMESTAMP"), Some(29));
            assert_eq!(c.len(), 79);
        }
    }

    #[test]
    fn platform_facts() {
        let p = Posix.platform();
        assert_eq!(p.unix_path_max, addr::sun_path_len());
        assert_eq!(p.somaxconn, libc::SOMAXCONN);
        assert_ne!(p.os, "");
    }
}
