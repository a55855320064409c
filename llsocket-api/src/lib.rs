//! The llsocket contract: the [`SocketOps`] trait and the plain data every backend shares.
//!
//! This crate makes no system calls. It is the meeting point of
//!
//! * `llsocket-posix`, which implements [`SocketOps`] with the real kernel,
//! * `llsocket-sim`, which implements it with a deterministic simulated network,
//! * `llsocket-lua`, which exposes it to Lua with the exact llsocket 0.15 API,
//! * and the tests, which run one body against both backends.
//!
//! Map of the crate:
//!
//! | module | what lives there |
//! |---|---|
//! | [`errno`] | [`Errno`] (a newtype over the C errno, constants from `libc`) and [`GaiError`] |
//! | [`types`] | [`Fd`], [`Family`], [`SockType`], [`Protocol`], [`MsgFlags`], [`Shutdown`], [`Interest`] |
//! | [`addr`] | the owned socket address [`SockAddr`] (IPv4, IPv6, unix path, abstract, unnamed) |
//! | [`opt`] | the typed socket option enum [`SockOpt`] and its name [`OptName`] |
//! | [`mcast`] | multicast membership requests ([`McastRequest`], [`McastOp`]) |
//! | [`cmsg`] | control messages ([`Cmsg`]) and the native ancillary-data layout codec |
//! | [`netdb`] | address info ([`AddrInfo`], [`AddrInfoHints`]) and interfaces ([`Interface`]) |
//! | [`platform`] | platform facts ([`Platform`]) |
//! | [`ops`] | the [`SocketOps`] trait itself (mockable with the `mock` feature) |
#![forbid(unsafe_code)]

pub mod addr;
pub mod cmsg;
pub mod errno;
pub mod mcast;
pub mod netdb;
pub mod ops;
pub mod opt;
pub mod platform;
pub mod types;

pub use addr::{SockAddr, UnixAddr};
pub use cmsg::{Cmsg, CmsgBuf};
pub use errno::{Errno, GaiError};
pub use mcast::{McastOp, McastRequest};
pub use netdb::{AddrInfo, AddrInfoHints, IfAddress, IfFlags, Interface, NameInfo};
#[cfg(feature = "mock")]
pub use ops::MockSocketOps;
pub use ops::{Accepted, RecvMsgOut, SocketOps};
pub use opt::{Linger, OptName, SockOpt, Timeval};
pub use platform::Platform;
pub use types::{Family, Fd, Interest, MsgFlags, Protocol, Shutdown, SockType};

/// The result of every fallible socket operation.
pub type Result<T> = std::result::Result<T, Errno>;
