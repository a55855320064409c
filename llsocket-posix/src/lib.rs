//! `llsocket-posix`: [`SocketOps`] over the real kernel, with `libc`.
//!
//! Map of the crate:
//!
//! | module | what lives there |
//! |---|---|
//! | this file | [`Posix`], the backend, and the [`SocketOps`] implementation |
//! | `addr` | `SockAddr` <-> `sockaddr_storage` |
//! | `sys` | one file per platform group (`sys/linux.rs`, `sys/bsd.rs`): the facts and calls that differ |
//!
//! Everything platform-specific (flags, option numbers, struct layouts, the
//! `sendfile` strategy, `SIGPIPE` suppression) lives in `sys/`; this file is
//! written once against the interface `sys/mod.rs` documents.

use std::ffi::{CStr, CString};
use std::mem::{size_of, zeroed};
use std::net::Ipv4Addr;

use libc::{c_int, c_void, socklen_t};
use llsocket_api::netdb::IfAddress;
use llsocket_api::opt::{Linger, Timeval};
use llsocket_api::{
    Accepted, AddrInfo, AddrInfoHints, Errno, Family, Fd, GaiError, Interest, Interface, McastOp,
    McastRequest, MsgFlags, NameInfo, OptName, Platform, Protocol, RecvMsgOut, Result, Shutdown,
    SockAddr, SockOpt, SockType, SocketOps,
};

mod addr;
mod sys;

pub use sys::lua_constants;

use addr::RawAddr;

/// The calling thread's `errno` as an [`Errno`].
pub(crate) fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
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

/// Rejects the closed descriptor before it reaches the kernel.
fn check(fd: Fd) -> Result<c_int> {
    if fd.0 < 0 {
        Err(Errno::EBADF)
    } else {
        Ok(fd.0)
    }
}

/// Closes a descriptor we created, ignoring errors (cleanup paths).
pub(crate) fn close_quietly(fd: c_int) {
    // SAFETY: closing a descriptor this crate owns; no memory is involved.
    unsafe { libc::close(fd) };
}

/// Sets or clears one `fcntl` flag bit.
pub(crate) fn set_flag(fd: c_int, get: c_int, set: c_int, bit: c_int, on: bool) -> Result<()> {
    // SAFETY: F_GETFL / F_GETFD take no pointer argument.
    let cur = syscall!(unsafe { libc::fcntl(fd, get) })?;
    let new = if on { cur | bit } else { cur & !bit };
    if new != cur {
        // SAFETY: F_SETFL / F_SETFD take an int argument.
        syscall!(unsafe { libc::fcntl(fd, set, new) })?;
    }
    Ok(())
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

/// `setsockopt` with a plain value.
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

/// `getsockopt` into a zeroed T; returns it with the length the kernel reported.
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

/// `ioctl(fd, req, &ifreq)` for interface `name`.
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

/// A heap buffer of `len` bytes aligned for `cmsghdr`.
fn aligned_buf(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8)]
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
        sys::socket(family.raw(), ty.raw(), protocol.raw(), nonblock).map(Fd)
    }

    fn socketpair(&self, ty: SockType, protocol: Protocol, nonblock: bool) -> Result<(Fd, Fd)> {
        let (a, b) = sys::socketpair(ty.raw(), protocol.raw(), nonblock)?;
        Ok((Fd(a), Fd(b)))
    }

    fn dup(&self, fd: Fd) -> Result<Fd> {
        let fd = check(fd)?;
        // SAFETY: F_DUPFD_CLOEXEC takes an int argument.
        syscall!(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }).map(Fd)
    }

    fn close(&self, fd: Fd) -> Result<()> {
        let fd = check(fd)?;
        // SAFETY: closing a descriptor number; no memory is involved.
        syscall!(unsafe { libc::close(fd) }).map(drop)
    }

    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()> {
        let fd = check(fd)?;
        // SAFETY: plain integer arguments.
        syscall!(unsafe { libc::shutdown(fd, how.raw()) }).map(drop)
    }

    fn bind(&self, fd: Fd, addr: &SockAddr) -> Result<()> {
        let fd = check(fd)?;
        let raw = addr::encode(addr)?;
        // SAFETY: `raw` holds `raw.len` initialised bytes of a sockaddr.
        syscall!(unsafe { libc::bind(fd, raw.as_ptr(), raw.len) }).map(drop)
    }

    fn connect(&self, fd: Fd, addr: &SockAddr) -> Result<()> {
        let fd = check(fd)?;
        let raw = addr::encode(addr)?;
        // SAFETY: `raw` holds `raw.len` initialised bytes of a sockaddr.
        syscall!(unsafe { libc::connect(fd, raw.as_ptr(), raw.len) }).map(drop)
    }

    fn listen(&self, fd: Fd, backlog: i32) -> Result<()> {
        let fd = check(fd)?;
        // SAFETY: plain integer arguments.
        syscall!(unsafe { libc::listen(fd, backlog) }).map(drop)
    }

    fn accept(&self, fd: Fd, want_addr: bool) -> Result<Accepted> {
        let fd = check(fd)?;
        // SAFETY: F_GETFL takes no argument.
        let fl = syscall!(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
        let nonblock = fl & libc::O_NONBLOCK != 0;
        let mut raw = RawAddr::empty();
        let new = sys::accept(fd, &mut raw, nonblock)?;
        let addr = want_addr.then(|| raw.decode());
        Ok(Accepted { fd: Fd(new), addr })
    }

    fn send(&self, fd: Fd, buf: &[u8], flags: MsgFlags) -> Result<usize> {
        let fd = check(fd)?;
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = syscall!(unsafe {
            libc::send(
                fd,
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
        // SAFETY: `buf` is valid for its length; `raw` holds `raw.len` bytes of a sockaddr.
        let n = syscall!(unsafe {
            libc::sendto(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                flags.raw() | sys::SEND_FLAGS,
                raw.as_ptr(),
                raw.len,
            )
        })?;
        Ok(n as usize)
    }

    fn recv(&self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize> {
        let fd = check(fd)?;
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags.raw()) };
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
        let mut raw = RawAddr::empty();
        // SAFETY: `buf` is valid for writes of its length; `raw` is a full sockaddr_storage.
        let n = syscall!(unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags.raw(),
                raw.as_mut_ptr(),
                &mut raw.len,
            )
        })?;
        let addr = (raw.len > 0).then(|| raw.decode());
        Ok((n as usize, addr))
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
        let mut iovecs: Vec<libc::iovec> = iov
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut c_void,
                iov_len: b.len(),
            })
            .collect();
        let mut raw = match to {
            Some(a) => Some(addr::encode(a)?),
            None => None,
        };
        let mut cbuf = aligned_buf(control.len());
        // SAFETY: `cbuf` holds at least `control.len()` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                control.as_ptr(),
                cbuf.as_mut_ptr().cast::<u8>(),
                control.len(),
            );
        }
        // SAFETY: msghdr is plain old data; all-zero is valid (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { zeroed() };
        if let Some(r) = raw.as_mut() {
            msg.msg_name = r.as_mut_ptr().cast();
            msg.msg_namelen = r.len;
        }
        msg.msg_iov = iovecs.as_mut_ptr();
        msg.msg_iovlen = iovecs.len() as _;
        if !control.is_empty() {
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = control.len() as _;
        }
        // SAFETY: every pointer in `msg` refers to a live buffer of the stated length.
        let n = syscall!(unsafe { libc::sendmsg(fd, &msg, flags.raw() | sys::SEND_FLAGS) })?;
        Ok(n as usize)
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
        let mut iovecs: Vec<libc::iovec> = iov
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let mut raw = RawAddr::empty();
        let mut cbuf = aligned_buf(control.len());
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = raw.as_mut_ptr().cast();
        msg.msg_namelen = raw.len;
        msg.msg_iov = iovecs.as_mut_ptr();
        msg.msg_iovlen = iovecs.len() as _;
        if !control.is_empty() {
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = control.len() as _;
        }
        // SAFETY: every pointer in `msg` refers to a live buffer of the stated length.
        let n = syscall!(unsafe { libc::recvmsg(fd, &mut msg, flags.raw()) })?;
        let control_len = if control.is_empty() {
            0
        } else {
            (msg.msg_controllen as usize).min(control.len())
        };
        // SAFETY: `cbuf` holds at least `control.len()` >= `control_len` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                cbuf.as_ptr().cast::<u8>(),
                control.as_mut_ptr(),
                control_len,
            );
        }
        raw.len = msg.msg_namelen;
        Ok(RecvMsgOut {
            bytes: n as usize,
            control_len,
            flags: MsgFlags(msg.msg_flags),
            addr: (raw.len > 0).then(|| raw.decode()),
        })
    }

    fn sendfile(&self, sock: Fd, file: Fd, offset: i64, len: usize) -> Result<usize> {
        sys::sendfile(check(sock)?, check(file)?, offset, len)
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
            fd,
            events,
            revents: 0,
        };
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
        // sockatmark(3) is ioctl(SIOCATMARK) (libc does not bind the wrapper).
        let mut mark: c_int = 0;
        // SAFETY: SIOCATMARK writes one int into `mark`.
        syscall!(unsafe { libc::ioctl(fd, sys::SIOCATMARK as _, &mut mark as *mut c_int) })?;
        Ok(mark != 0)
    }

    fn getsockname(&self, fd: Fd) -> Result<SockAddr> {
        let fd = check(fd)?;
        let mut raw = RawAddr::empty();
        // SAFETY: `raw` is a full sockaddr_storage with its length.
        syscall!(unsafe { libc::getsockname(fd, raw.as_mut_ptr(), &mut raw.len) })?;
        Ok(raw.decode())
    }

    fn getpeername(&self, fd: Fd) -> Result<SockAddr> {
        let fd = check(fd)?;
        let mut raw = RawAddr::empty();
        // SAFETY: `raw` is a full sockaddr_storage with its length.
        syscall!(unsafe { libc::getpeername(fd, raw.as_mut_ptr(), &mut raw.len) })?;
        Ok(raw.decode())
    }

    fn nonblock(&self, fd: Fd) -> Result<bool> {
        let fd = check(fd)?;
        // SAFETY: F_GETFL takes no argument.
        let fl = syscall!(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
        Ok(fl & libc::O_NONBLOCK != 0)
    }

    fn set_nonblock(&self, fd: Fd, on: bool) -> Result<()> {
        set_flag(
            check(fd)?,
            libc::F_GETFL,
            libc::F_SETFL,
            libc::O_NONBLOCK,
            on,
        )
    }

    fn cloexec(&self, fd: Fd) -> Result<bool> {
        let fd = check(fd)?;
        // SAFETY: F_GETFD takes no argument.
        let fl = syscall!(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
        Ok(fl & libc::FD_CLOEXEC != 0)
    }

    fn set_cloexec(&self, fd: Fd, on: bool) -> Result<()> {
        set_flag(
            check(fd)?,
            libc::F_GETFD,
            libc::F_SETFD,
            libc::FD_CLOEXEC,
            on,
        )
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
        Ok(match kind {
            Kind::Bool | Kind::Int => int(getopt_int(fd, level, opt)?),
            Kind::Uint => {
                let (v, _): (libc::c_uint, usize) = getopt(fd, level, opt)?;
                int(v as i32)
            }
            Kind::Timeval => {
                let (tv, _): (libc::timeval, usize) = getopt(fd, level, opt)?;
                #[allow(clippy::useless_conversion)]
                // time_t / suseconds_t are narrower on some targets
                let tv = Timeval {
                    sec: i64::from(tv.tv_sec),
                    usec: i64::from(tv.tv_usec),
                };
                if name == OptName::RcvTimeo {
                    SockOpt::RcvTimeo(tv)
                } else {
                    SockOpt::SndTimeo(tv)
                }
            }
            Kind::Linger => {
                let (l, _): (libc::linger, usize) = getopt(fd, level, opt)?;
                SockOpt::Linger(Linger {
                    enabled: l.l_onoff != 0,
                    secs: l.l_linger,
                })
            }
            Kind::InAddr => {
                let (a, _): (libc::in_addr, usize) = getopt(fd, level, opt)?;
                SockOpt::MulticastIfV4(Ipv4Addr::from(a.s_addr.to_ne_bytes()))
            }
        })
    }

    fn setsockopt(&self, fd: Fd, opt: SockOpt) -> Result<()> {
        let fd = check(fd)?;
        let (level, name, _) = opt_info(opt.name())?;
        let int = |v: i32| setopt::<c_int>(fd, level, name, &v);
        match opt {
            SockOpt::ReuseAddr(b)
            | SockOpt::ReusePort(b)
            | SockOpt::Broadcast(b)
            | SockOpt::Debug(b)
            | SockOpt::KeepAlive(b)
            | SockOpt::OobInline(b)
            | SockOpt::DontRoute(b)
            | SockOpt::Timestamp(b)
            | SockOpt::TcpNoDelay(b)
            | SockOpt::TcpCork(b)
            | SockOpt::AcceptConn(b)
            | SockOpt::MulticastLoopV4(b)
            | SockOpt::MulticastLoopV6(b) => int(i32::from(b)),
            SockOpt::RcvBuf(v)
            | SockOpt::RcvLowat(v)
            | SockOpt::SndBuf(v)
            | SockOpt::SndLowat(v)
            | SockOpt::TcpKeepIntvl(v)
            | SockOpt::TcpKeepCnt(v)
            | SockOpt::TcpKeepAlive(v)
            | SockOpt::Error(v)
            | SockOpt::Type(v)
            | SockOpt::Protocol(v)
            | SockOpt::MulticastTtlV4(v)
            | SockOpt::MulticastHopsV6(v) => int(v),
            SockOpt::RcvTimeo(tv) | SockOpt::SndTimeo(tv) => {
                let t = libc::timeval {
                    tv_sec: tv.sec as _,
                    tv_usec: tv.usec as _,
                };
                setopt(fd, level, name, &t)
            }
            SockOpt::Linger(l) => {
                let v = libc::linger {
                    l_onoff: c_int::from(l.enabled),
                    l_linger: l.secs,
                };
                setopt(fd, level, name, &v)
            }
            SockOpt::MulticastIfV4(ip) => {
                let a = libc::in_addr {
                    s_addr: u32::from_ne_bytes(ip.octets()),
                };
                setopt(fd, level, name, &a)
            }
            SockOpt::MulticastIfV6(idx) => setopt::<libc::c_uint>(fd, level, name, &idx),
        }
    }

    fn multicast(&self, fd: Fd, op: McastOp, req: &McastRequest) -> Result<()> {
        let fd = check(fd)?;
        let in_addr = |ip: &Ipv4Addr| libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        };
        match req {
            McastRequest::V4 { group, interface } => {
                let name = match op {
                    McastOp::Join => libc::IP_ADD_MEMBERSHIP,
                    McastOp::Leave => libc::IP_DROP_MEMBERSHIP,
                    McastOp::Block | McastOp::Unblock => return Err(Errno::EINVAL),
                };
                let m = libc::ip_mreq {
                    imr_multiaddr: in_addr(group),
                    imr_interface: in_addr(interface),
                };
                setopt(fd, libc::IPPROTO_IP, name, &m)
            }
            McastRequest::V6 { group, interface } => {
                let name = match op {
                    McastOp::Join => sys::IPV6_JOIN_GROUP,
                    McastOp::Leave => sys::IPV6_LEAVE_GROUP,
                    McastOp::Block | McastOp::Unblock => return Err(Errno::EINVAL),
                };
                let m = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: group.octets(),
                    },
                    ipv6mr_interface: *interface as _,
                };
                setopt(fd, libc::IPPROTO_IPV6, name, &m)
            }
            McastRequest::SourceV4 {
                group,
                source,
                interface,
            } => sys::mcast_source_v4(fd, op, in_addr(group), in_addr(source), in_addr(interface)),
            McastRequest::Source {
                group,
                source,
                interface,
            } => {
                let g = addr::encode(group)?;
                let s = addr::encode(source)?;
                sys::mcast_source(fd, op, &g, &s, *interface)
            }
        }
    }

    fn interface_ipv4(&self, fd: Fd, name: &[u8]) -> Result<Ipv4Addr> {
        let fd = check(fd)?;
        let ifr = ifreq_ioctl(fd, sys::SIOCGIFADDR, name)?;
        // SAFETY: `data` is 32 bytes of initialised memory, aligned for sockaddr_in (16 bytes).
        match unsafe { addr::decode(ifr.data.as_ptr().cast(), size_of::<libc::sockaddr_in>()) } {
            SockAddr::V4(a) => Ok(*a.ip()),
            _ => Err(Errno::EADDRNOTAVAIL),
        }
    }

    fn if_nametoindex(&self, name: &[u8]) -> Result<u32> {
        // no interface name is IFNAMSIZ bytes or longer: such a name is copied nowhere
        let c = ifname(name)?;
        // SAFETY: `c` is NUL-terminated (ifname leaves at least one trailing NUL).
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if idx == 0 {
            Err(errno_or_enxio())
        } else {
            Ok(idx)
        }
    }

    fn if_indextoname(&self, index: u32) -> Result<Vec<u8>> {
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
                    addr: unsafe { addr::decode(ai.ai_addr, ai.ai_addrlen as usize) },
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
        let mut host = [0 as libc::c_char; 1025];
        let mut serv = [0 as libc::c_char; 32];
        // SAFETY: `raw` holds `raw.len` bytes; the buffers are live with the lengths passed.
        let rc = unsafe {
            libc::getnameinfo(
                raw.as_ptr(),
                raw.len,
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
                    let mtu = probe.and_then(|s| {
                        let ifr = ifreq_ioctl(s, sys::SIOCGIFMTU, &name).ok()?;
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
        if let Some(s) = probe {
            close_quietly(s);
        }
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
