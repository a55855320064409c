//! Small newtypes over C integers: descriptors, families, socket types, protocols and flags.
//!
//! Each is a transparent wrapper around the C value with named constants taken
//! from `libc` for the target (as socket2 does), so any value the host knows can
//! be carried even when it has no name here.

use std::fmt;

/// A descriptor number, as the process (or a simulated host) numbers them.
///
/// Lua code sees these numbers, so backends allocate the lowest free one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Fd(pub i32);

impl Fd {
    /// The descriptor of a closed socket object (`sock:fd() == -1`).
    pub const CLOSED: Fd = Fd(-1);

    /// The raw number.
    pub const fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! int_newtype {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $cname:ident = $value:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub i32);

        impl $name {
            $($(#[$cdoc])* pub const $cname: $name = $name($value);)*

            /// The raw C value.
            pub const fn raw(self) -> i32 {
                self.0
            }

            /// The constant's name, where this value has one here.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $(v if v == $value => Some(stringify!($cname)),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}::{}", stringify!($name), n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl From<i32> for $name {
            fn from(v: i32) -> Self {
                $name(v)
            }
        }
    };
}

int_newtype! {
    /// An address family (`AF_*`).
    Family {
        /// `AF_UNSPEC`
        UNSPEC = libc::AF_UNSPEC,
        /// `AF_UNIX` (also `AF_LOCAL`)
        UNIX = libc::AF_UNIX,
        /// `AF_INET`
        INET = libc::AF_INET,
        /// `AF_INET6`
        INET6 = libc::AF_INET6,
    }
}

int_newtype! {
    /// A socket type (`SOCK_*`).
    SockType {
        /// `SOCK_STREAM`
        STREAM = libc::SOCK_STREAM,
        /// `SOCK_DGRAM`
        DGRAM = libc::SOCK_DGRAM,
        /// `SOCK_RAW`
        RAW = libc::SOCK_RAW,
        /// `SOCK_SEQPACKET`
        SEQPACKET = libc::SOCK_SEQPACKET,
    }
}

impl SockType {
    /// Whether a zero-byte receive is an empty message rather than end of stream
    /// (the Lua API's rule: only `SOCK_DGRAM` and `SOCK_RAW`).
    pub fn is_datagram(self) -> bool {
        self == SockType::DGRAM || self == SockType::RAW
    }
}

int_newtype! {
    /// A protocol number (`IPPROTO_*`), `0` for the default.
    Protocol {
        /// `0`: the family's default protocol.
        DEFAULT = 0,
        /// `IPPROTO_TCP`
        TCP = libc::IPPROTO_TCP,
        /// `IPPROTO_UDP`
        UDP = libc::IPPROTO_UDP,
    }
}

int_newtype! {
    /// The direction of a `shutdown(2)` (`SHUT_*`). Any other value reaches the
    /// backend unchanged and fails with `EINVAL` there, as in C.
    Shutdown {
        /// `SHUT_RD`
        READ = libc::SHUT_RD,
        /// `SHUT_WR`
        WRITE = libc::SHUT_WR,
        /// `SHUT_RDWR`
        BOTH = libc::SHUT_RDWR,
    }
}

int_newtype! {
    /// Flags of send/recv calls (`MSG_*`), in and out.
    MsgFlags {
        /// No flags.
        NONE = 0,
        /// `MSG_OOB`
        OOB = libc::MSG_OOB,
        /// `MSG_PEEK`
        PEEK = libc::MSG_PEEK,
        /// `MSG_DONTROUTE`
        DONTROUTE = libc::MSG_DONTROUTE,
        /// `MSG_WAITALL`
        WAITALL = libc::MSG_WAITALL,
        /// `MSG_DONTWAIT`
        DONTWAIT = libc::MSG_DONTWAIT,
        /// `MSG_TRUNC` (out: a datagram was longer than the buffer)
        TRUNC = libc::MSG_TRUNC,
        /// `MSG_CTRUNC` (out: control data did not fit)
        CTRUNC = libc::MSG_CTRUNC,
        /// `MSG_EOR`
        EOR = libc::MSG_EOR,
    }
}

impl MsgFlags {
    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: MsgFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for MsgFlags {
    type Output = MsgFlags;
    fn bitor(self, rhs: MsgFlags) -> MsgFlags {
        MsgFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for MsgFlags {
    fn bitor_assign(&mut self, rhs: MsgFlags) {
        self.0 |= rhs.0;
    }
}

/// What a readiness wait watches for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Interest {
    /// Readable: data, end of stream, a pending connection or an error (`POLLIN|POLLHUP|POLLERR`).
    pub read: bool,
    /// Writable: buffer space, or an error/hang-up (`POLLOUT|POLLERR|POLLHUP`).
    pub write: bool,
    /// Exceptional: out-of-band data (`POLLPRI`).
    pub except: bool,
}

impl Interest {
    /// Wait for readability (`sock:recvable()`).
    pub const READ: Interest = Interest {
        read: true,
        write: false,
        except: false,
    };
    /// Wait for writability (`sock:sendable()`).
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
        except: false,
    };

    /// The same interest, also watching exceptional conditions.
    pub const fn with_except(self, except: bool) -> Interest {
        Interest { except, ..self }
    }
}
