//! The default backend (POSIX) and the platform's constant set.
//!
//! Until `llsocket_posix::Posix` lands this file provides a placeholder backend
//! whose operations fail with `ENOSYS`, and a small portable constant set.

use std::net::Ipv4Addr;
use std::rc::Rc;

use llsocket_api::{
    Accepted, AddrInfo, AddrInfoHints, Errno, Family, Fd, GaiError, Interest, Interface, McastOp,
    McastRequest, MsgFlags, NameInfo, OptName, Platform, Protocol, RecvMsgOut, Result, Shutdown,
    SockAddr, SockOpt, SockType, SocketOps,
};

/// The backend `require('llsocket')` uses.
pub fn default_backend() -> Rc<dyn SocketOps> {
    Rc::new(Placeholder)
}

/// The constants exported on the module table (constants.md presence rule).
pub(crate) fn constants() -> &'static [(&'static str, i64)] {
    PORTABLE
}

macro_rules! consts {
    ($($name:ident),* $(,)?) => { &[$((stringify!($name), libc::$name as i64),)*] };
}

const PORTABLE: &[(&str, i64)] = consts![
    SHUT_RD,
    SHUT_WR,
    SHUT_RDWR,
    AF_UNSPEC,
    AF_UNIX,
    AF_LOCAL,
    AF_INET,
    AF_INET6,
    SOCK_STREAM,
    SOCK_DGRAM,
    SOCK_RAW,
    SOCK_RDM,
    SOCK_SEQPACKET,
    IPPROTO_IP,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPPROTO_ICMP,
    IPPROTO_RAW,
    AI_PASSIVE,
    AI_CANONNAME,
    AI_NUMERICHOST,
    AI_NUMERICSERV,
    AI_ADDRCONFIG,
    AI_ALL,
    AI_V4MAPPED,
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
];

/// A backend whose every operation fails with `ENOSYS` (stands in for the POSIX one).
#[derive(Debug)]
struct Placeholder;

const NOSYS: Errno = Errno::ENOSYS;

impl SocketOps for Placeholder {
    fn platform(&self) -> Platform {
        Platform {
            os: "unknown",
            unix_path_max: 108,
            somaxconn: libc::SOMAXCONN,
        }
    }
    fn socket(&self, _: Family, _: SockType, _: Protocol, _: bool) -> Result<Fd> {
        Err(NOSYS)
    }
    fn socketpair(&self, _: SockType, _: Protocol, _: bool) -> Result<(Fd, Fd)> {
        Err(NOSYS)
    }
    fn dup(&self, _: Fd) -> Result<Fd> {
        Err(NOSYS)
    }
    fn close(&self, _: Fd) -> Result<()> {
        Err(NOSYS)
    }
    fn shutdown(&self, _: Fd, _: Shutdown) -> Result<()> {
        Err(NOSYS)
    }
    fn bind(&self, _: Fd, _: &SockAddr) -> Result<()> {
        Err(NOSYS)
    }
    fn connect(&self, _: Fd, _: &SockAddr) -> Result<()> {
        Err(NOSYS)
    }
    fn listen(&self, _: Fd, _: i32) -> Result<()> {
        Err(NOSYS)
    }
    fn accept(&self, _: Fd, _: bool) -> Result<Accepted> {
        Err(NOSYS)
    }
    fn send(&self, _: Fd, _: &[u8], _: MsgFlags) -> Result<usize> {
        Err(NOSYS)
    }
    fn sendto(&self, _: Fd, _: &[u8], _: &SockAddr, _: MsgFlags) -> Result<usize> {
        Err(NOSYS)
    }
    fn recv(&self, _: Fd, _: &mut [u8], _: MsgFlags) -> Result<usize> {
        Err(NOSYS)
    }
    fn recvfrom(&self, _: Fd, _: &mut [u8], _: MsgFlags) -> Result<(usize, Option<SockAddr>)> {
        Err(NOSYS)
    }
    fn sendmsg<'a>(
        &self,
        _: Fd,
        _: &[&'a [u8]],
        _: &[u8],
        _: Option<&'a SockAddr>,
        _: MsgFlags,
    ) -> Result<usize> {
        Err(NOSYS)
    }
    #[allow(clippy::needless_lifetimes)] // matches the trait declaration
    fn recvmsg<'a>(
        &self,
        _: Fd,
        _: &mut [&'a mut [u8]],
        _: &mut [u8],
        _: MsgFlags,
    ) -> Result<RecvMsgOut> {
        Err(NOSYS)
    }
    fn sendfile(&self, _: Fd, _: Fd, _: i64, _: usize) -> Result<usize> {
        Err(NOSYS)
    }
    fn poll(&self, _: Fd, _: Interest, _: i32) -> Result<bool> {
        Err(NOSYS)
    }
    fn atmark(&self, _: Fd) -> Result<bool> {
        Err(NOSYS)
    }
    fn getsockname(&self, _: Fd) -> Result<SockAddr> {
        Err(NOSYS)
    }
    fn getpeername(&self, _: Fd) -> Result<SockAddr> {
        Err(NOSYS)
    }
    fn nonblock(&self, _: Fd) -> Result<bool> {
        Err(NOSYS)
    }
    fn set_nonblock(&self, _: Fd, _: bool) -> Result<()> {
        Err(NOSYS)
    }
    fn cloexec(&self, _: Fd) -> Result<bool> {
        Err(NOSYS)
    }
    fn set_cloexec(&self, _: Fd, _: bool) -> Result<()> {
        Err(NOSYS)
    }
    fn getsockopt(&self, _: Fd, _: OptName) -> Result<SockOpt> {
        Err(NOSYS)
    }
    fn setsockopt(&self, _: Fd, _: SockOpt) -> Result<()> {
        Err(NOSYS)
    }
    fn multicast(&self, _: Fd, _: McastOp, _: &McastRequest) -> Result<()> {
        Err(NOSYS)
    }
    fn interface_ipv4(&self, _: Fd, _: &str) -> Result<Ipv4Addr> {
        Err(NOSYS)
    }
    fn if_nametoindex(&self, _: &str) -> Result<u32> {
        Err(NOSYS)
    }
    fn if_indextoname(&self, _: u32) -> Result<String> {
        Err(NOSYS)
    }
    fn getaddrinfo<'a>(
        &self,
        _: Option<&'a str>,
        _: Option<&'a str>,
        _: &AddrInfoHints,
    ) -> std::result::Result<Vec<AddrInfo>, GaiError> {
        Err(GaiError::EAI_SYSTEM)
    }
    fn getnameinfo(&self, _: &SockAddr, _: i32) -> std::result::Result<NameInfo, GaiError> {
        Err(GaiError::EAI_SYSTEM)
    }
    fn interfaces(&self) -> Result<Vec<Interface>> {
        Err(NOSYS)
    }
}
