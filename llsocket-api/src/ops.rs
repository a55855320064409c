//! [`SocketOps`]: every operation the Lua API needs, as one object-safe, mockable trait.
//!
//! Methods take `&self` and plain data and return [`crate::Result`]; there are
//! no generic methods, so the trait works behind `dyn` and `mockall` can mock
//! it (`MockSocketOps`, with the `mock` feature). Semantics follow Linux; a
//! backend documents where it differs.
//!
//! Conventions every backend keeps:
//! * New descriptors are the lowest free number and close-on-exec.
//! * No operation raises `SIGPIPE`: a write to a shut-down or reset stream is
//!   `Err(EPIPE)` (or `ECONNRESET`).
//! * A closed descriptor (`Fd::CLOSED`) gives `EBADF`, never undefined behaviour.

use std::net::Ipv4Addr;

use crate::addr::SockAddr;
use crate::errno::GaiError;
use crate::mcast::{McastOp, McastRequest};
use crate::netdb::{AddrInfo, AddrInfoHints, Interface, NameInfo};
use crate::opt::{OptName, SockOpt};
use crate::platform::Platform;
use crate::types::{Family, Fd, Interest, MsgFlags, Protocol, Shutdown, SockType};
use crate::Result;

/// An accepted connection.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Accepted {
    /// The new descriptor (close-on-exec; non-blocking exactly when the listener is).
    pub fd: Fd,
    /// The peer's address, when it was asked for.
    pub addr: Option<SockAddr>,
}

/// What `recvmsg` reports besides the data written into the buffers.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RecvMsgOut {
    /// Bytes received (with `MSG_TRUNC` in the flags, the datagram's real length may be larger).
    pub bytes: usize,
    /// Bytes of control data written at the start of the control buffer.
    pub control_len: usize,
    /// `msg_flags` (`MSG_TRUNC`, `MSG_CTRUNC`, ...).
    pub flags: MsgFlags,
    /// The sender's address, when the kernel reported one.
    pub addr: Option<SockAddr>,
}

/// Every socket operation of the llsocket API, implemented by the real kernel
/// (`llsocket-posix`) and by the simulator (`llsocket-sim`).
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait SocketOps {
    // ---- platform -------------------------------------------------------------

    /// Facts for the Lua `env` table.
    fn platform(&self) -> Platform;

    // ---- life cycle -----------------------------------------------------------

    /// `socket(2)`: a close-on-exec socket, non-blocking if asked.
    fn socket(
        &self,
        family: Family,
        ty: SockType,
        protocol: Protocol,
        nonblock: bool,
    ) -> Result<Fd>;

    /// `socketpair(AF_UNIX, ...)`: two connected close-on-exec sockets.
    fn socketpair(&self, ty: SockType, protocol: Protocol, nonblock: bool) -> Result<(Fd, Fd)>;

    /// `dup(2)` (`F_DUPFD_CLOEXEC`): a close-on-exec duplicate sharing the open file description.
    fn dup(&self, fd: Fd) -> Result<Fd>;

    /// `close(2)`.
    fn close(&self, fd: Fd) -> Result<()>;

    /// `shutdown(2)`.
    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()>;

    /// `bind(2)`.
    fn bind(&self, fd: Fd, addr: &SockAddr) -> Result<()>;

    /// `connect(2)`. A non-blocking connect under way is `Err(EINPROGRESS)`.
    fn connect(&self, fd: Fd, addr: &SockAddr) -> Result<()>;

    /// `listen(2)`.
    fn listen(&self, fd: Fd, backlog: i32) -> Result<()>;

    /// `accept4(2)` (or `accept` + `fcntl`): the new socket is close-on-exec and
    /// non-blocking exactly when the listener is. The peer address only if `want_addr`.
    #[doc(alias = "accept4")]
    fn accept(&self, fd: Fd, want_addr: bool) -> Result<Accepted>;

    // ---- data -----------------------------------------------------------------

    /// `send(2)`.
    fn send(&self, fd: Fd, buf: &[u8], flags: MsgFlags) -> Result<usize>;

    /// `sendto(2)`.
    fn sendto(&self, fd: Fd, buf: &[u8], to: &SockAddr, flags: MsgFlags) -> Result<usize>;

    /// `recv(2)`. The count may exceed `buf.len()` when `MSG_TRUNC` was passed
    /// (the datagram's real length); only `buf.len()` bytes are written.
    fn recv(&self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize>;

    /// `recvfrom(2)`: the count (as for [`SocketOps::recv`]) and the source
    /// address, `None` when the kernel reported an empty one.
    fn recvfrom(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<(usize, Option<SockAddr>)>;

    /// `sendmsg(2)`: gather `iov`, pass `control` (native layout, see [`crate::cmsg`])
    /// verbatim, to `to` if given.
    fn sendmsg<'a>(
        &self,
        fd: Fd,
        iov: &[&'a [u8]],
        control: &[u8],
        to: Option<&'a SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize>;

    /// `recvmsg(2)`: scatter into `iov`, control data into `control` (native layout).
    /// Descriptors received with `SCM_RIGHTS` belong to the caller; they are close-on-exec
    /// only when `flags` has `MSG_CMSG_CLOEXEC` (where the platform has it), as in C.
    #[allow(clippy::needless_lifetimes)] // mockall cannot mock the elided form
    fn recvmsg<'a>(
        &self,
        fd: Fd,
        iov: &mut [&'a mut [u8]],
        control: &mut [u8],
        flags: MsgFlags,
    ) -> Result<RecvMsgOut>;

    /// `sendfile(2)`: up to `len` bytes of `file` from `offset` (the file's own
    /// position is untouched). Bytes sent before the socket would block are
    /// reported as `Ok(n)` with `n < len`; `Err(EAGAIN)` only when none were.
    fn sendfile(&self, sock: Fd, file: Fd, offset: i64, len: usize) -> Result<usize>;

    // ---- readiness and state ---------------------------------------------------

    /// `poll(2)` on one descriptor: `Ok(true)` when ready, `Ok(false)` on timeout.
    /// `timeout_ms <= 0` does not wait. A closed descriptor (or `POLLNVAL`) is `EBADF`.
    fn poll(&self, fd: Fd, interest: Interest, timeout_ms: i32) -> Result<bool>;

    /// `sockatmark(3)`.
    #[doc(alias = "sockatmark")]
    fn atmark(&self, fd: Fd) -> Result<bool>;

    /// `getsockname(2)`.
    fn getsockname(&self, fd: Fd) -> Result<SockAddr>;

    /// `getpeername(2)`.
    fn getpeername(&self, fd: Fd) -> Result<SockAddr>;

    /// `fcntl(F_GETFL) & O_NONBLOCK`.
    #[doc(alias = "O_NONBLOCK")]
    fn nonblock(&self, fd: Fd) -> Result<bool>;

    /// Sets or clears `O_NONBLOCK`, keeping the other status flags.
    fn set_nonblock(&self, fd: Fd, on: bool) -> Result<()>;

    /// `fcntl(F_GETFD) & FD_CLOEXEC`.
    #[doc(alias = "FD_CLOEXEC")]
    fn cloexec(&self, fd: Fd) -> Result<bool>;

    /// Sets or clears `FD_CLOEXEC`.
    fn set_cloexec(&self, fd: Fd, on: bool) -> Result<()>;

    // ---- options ----------------------------------------------------------------

    /// `getsockopt(2)`. An option the platform lacks is `Err(EOPNOTSUPP)`.
    fn getsockopt(&self, fd: Fd, name: OptName) -> Result<SockOpt>;

    /// `setsockopt(2)`. An option the platform lacks is `Err(EOPNOTSUPP)`.
    fn setsockopt(&self, fd: Fd, opt: SockOpt) -> Result<()>;

    /// Multicast membership (`IP_ADD_MEMBERSHIP`, `MCAST_JOIN_SOURCE_GROUP`, ...).
    fn multicast(&self, fd: Fd, op: McastOp, req: &McastRequest) -> Result<()>;

    /// The IPv4 address of the interface `name` (`ioctl(SIOCGIFADDR)` on `fd`).
    #[doc(alias = "SIOCGIFADDR")]
    fn interface_ipv4(&self, fd: Fd, name: &[u8]) -> Result<Ipv4Addr>;

    /// `if_nametoindex(3)`; an unknown name is `Err(ENXIO)` (or the C errno).
    fn if_nametoindex(&self, name: &[u8]) -> Result<u32>;

    /// `if_indextoname(3)`; an unknown index is `Err(ENXIO)`.
    fn if_indextoname(&self, index: u32) -> Result<Vec<u8>>;

    // ---- names and interfaces -----------------------------------------------------

    /// `getaddrinfo(3)`, results in resolver order.
    fn getaddrinfo<'a>(
        &self,
        node: Option<&'a [u8]>,
        service: Option<&'a [u8]>,
        hints: &AddrInfoHints,
    ) -> std::result::Result<Vec<AddrInfo>, GaiError>;

    /// `getnameinfo(3)` with `NI_*` flags.
    fn getnameinfo(&self, addr: &SockAddr, flags: i32) -> std::result::Result<NameInfo, GaiError>;

    /// `getifaddrs(3)`, grouped per interface in list order.
    #[doc(alias = "getifaddrs")]
    fn interfaces(&self) -> Result<Vec<Interface>>;
}
