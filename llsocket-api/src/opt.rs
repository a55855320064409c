//! Socket options: one typed enum, [`SockOpt`], whose variants carry their value,
//! and [`OptName`], the same list without values (what a getter asks for).
//!
//! Values are the kernel's, unmodified: `RcvBuf` read back on Linux is twice
//! what was set, `Linger` and the timeouts keep whatever the caller passed
//! (negative timeouts reach the kernel, which rejects them).

use std::net::Ipv4Addr;

/// A `struct timeval`, passed through as given (negative values included).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Timeval {
    /// Whole seconds.
    pub sec: i64,
    /// Microseconds.
    pub usec: i64,
}

impl Timeval {
    /// Seconds as a float, `sec + usec / 1e6` (what `sock:rcvtimeo()` returns).
    pub fn as_secs_f64(self) -> f64 {
        self.sec as f64 + self.usec as f64 / 1e6
    }

    /// Splits seconds into whole seconds and microseconds, truncating (the Lua setter's rule).
    pub fn from_secs_f64(secs: f64) -> Timeval {
        let sec = secs.trunc();
        Timeval {
            sec: sec as i64,
            usec: ((secs - sec) * 1e6) as i64,
        }
    }

    /// The timeout in milliseconds, `None` for zero (no timeout).
    pub fn as_millis(self) -> Option<u64> {
        let ms = self.sec.max(0) as u64 * 1000 + self.usec.max(0) as u64 / 1000;
        (self.sec > 0 || self.usec > 0).then_some(ms)
    }
}

/// A `struct linger`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Linger {
    /// `l_onoff`.
    pub enabled: bool,
    /// `l_linger` in seconds (stored as given, even when negative).
    pub secs: i32,
}

macro_rules! sockopts {
    ($($(#[$doc:meta])* $name:ident($ty:ty)),* $(,)?) => {
        /// A socket option with its value: the argument of `setsockopt`, the result of `getsockopt`.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum SockOpt {
            $($(#[$doc])* $name($ty),)*
        }

        /// A socket option's name, without a value: what `getsockopt` is asked for.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum OptName {
            $($(#[$doc])* $name,)*
        }

        impl SockOpt {
            /// The option's name.
            pub fn name(&self) -> OptName {
                match self {
                    $(SockOpt::$name(_) => OptName::$name,)*
                }
            }
        }

        impl OptName {
            /// Every option, in declaration order.
            pub const ALL: &'static [OptName] = &[$(OptName::$name,)*];
        }
    };
}

sockopts! {
    /// `SO_REUSEADDR`
    #[doc(alias = "SO_REUSEADDR")]
    ReuseAddr(bool),
    /// `SO_REUSEPORT` (absent on some platforms: `EOPNOTSUPP`)
    #[doc(alias = "SO_REUSEPORT")]
    ReusePort(bool),
    /// `SO_BROADCAST`
    #[doc(alias = "SO_BROADCAST")]
    Broadcast(bool),
    /// `SO_DEBUG` (setting usually needs privileges)
    #[doc(alias = "SO_DEBUG")]
    Debug(bool),
    /// `SO_KEEPALIVE`
    #[doc(alias = "SO_KEEPALIVE")]
    KeepAlive(bool),
    /// `SO_OOBINLINE`
    #[doc(alias = "SO_OOBINLINE")]
    OobInline(bool),
    /// `SO_DONTROUTE`
    #[doc(alias = "SO_DONTROUTE")]
    DontRoute(bool),
    /// `SO_TIMESTAMP`
    #[doc(alias = "SO_TIMESTAMP")]
    Timestamp(bool),
    /// `SO_RCVBUF` in bytes
    #[doc(alias = "SO_RCVBUF")]
    RcvBuf(i32),
    /// `SO_RCVLOWAT` in bytes
    #[doc(alias = "SO_RCVLOWAT")]
    RcvLowat(i32),
    /// `SO_SNDBUF` in bytes
    #[doc(alias = "SO_SNDBUF")]
    SndBuf(i32),
    /// `SO_SNDLOWAT` in bytes
    #[doc(alias = "SO_SNDLOWAT")]
    SndLowat(i32),
    /// `SO_RCVTIMEO`
    #[doc(alias = "SO_RCVTIMEO")]
    RcvTimeo(Timeval),
    /// `SO_SNDTIMEO`
    #[doc(alias = "SO_SNDTIMEO")]
    SndTimeo(Timeval),
    /// `SO_LINGER` (`SO_LINGER_SEC` on macOS: seconds everywhere)
    #[doc(alias = "SO_LINGER")]
    Linger(Linger),
    /// `TCP_NODELAY`
    #[doc(alias = "TCP_NODELAY")]
    TcpNoDelay(bool),
    /// `TCP_KEEPINTVL` in seconds
    #[doc(alias = "TCP_KEEPINTVL")]
    TcpKeepIntvl(i32),
    /// `TCP_KEEPCNT`
    #[doc(alias = "TCP_KEEPCNT")]
    TcpKeepCnt(i32),
    /// `TCP_KEEPIDLE` (Linux, BSD) or `TCP_KEEPALIVE` (macOS), in seconds
    #[doc(alias = "TCP_KEEPIDLE")]
    TcpKeepAlive(i32),
    /// `TCP_CORK` (Linux) or `TCP_NOPUSH` (BSD, macOS)
    #[doc(alias = "TCP_CORK")]
    TcpCork(bool),
    /// `SO_ACCEPTCONN` (read-only)
    #[doc(alias = "SO_ACCEPTCONN")]
    AcceptConn(bool),
    /// `SO_ERROR`: the pending error, 0 for none; reading clears it (read-only)
    #[doc(alias = "SO_ERROR")]
    Error(i32),
    /// `SO_TYPE` (read-only)
    #[doc(alias = "SO_TYPE")]
    Type(i32),
    /// `SO_PROTOCOL` where the platform has it (read-only)
    #[doc(alias = "SO_PROTOCOL")]
    Protocol(i32),
    /// `IP_MULTICAST_LOOP`
    #[doc(alias = "IP_MULTICAST_LOOP")]
    MulticastLoopV4(bool),
    /// `IPV6_MULTICAST_LOOP`
    #[doc(alias = "IPV6_MULTICAST_LOOP")]
    MulticastLoopV6(bool),
    /// `IP_MULTICAST_TTL`
    #[doc(alias = "IP_MULTICAST_TTL")]
    MulticastTtlV4(i32),
    /// `IPV6_MULTICAST_HOPS`
    #[doc(alias = "IPV6_MULTICAST_HOPS")]
    MulticastHopsV6(i32),
    /// `IP_MULTICAST_IF`: the outgoing interface's IPv4 address (0.0.0.0 for the default)
    #[doc(alias = "IP_MULTICAST_IF")]
    MulticastIfV4(Ipv4Addr),
    /// `IPV6_MULTICAST_IF`: the outgoing interface's index (0 for the default)
    #[doc(alias = "IPV6_MULTICAST_IF")]
    MulticastIfV6(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeval_round_trip_truncates() {
        let tv = Timeval::from_secs_f64(0.12);
        assert_eq!(tv.sec, 0);
        assert!((119_999..=120_000).contains(&tv.usec));
        assert_eq!(
            Timeval {
                sec: 1,
                usec: 500_000
            }
            .as_secs_f64(),
            1.5
        );
        assert_eq!(Timeval::default().as_millis(), None);
        assert_eq!(
            Timeval {
                sec: 0,
                usec: 150_000
            }
            .as_millis(),
            Some(150)
        );
    }

    #[test]
    fn names_match_values() {
        assert_eq!(SockOpt::ReuseAddr(true).name(), OptName::ReuseAddr);
        assert_eq!(OptName::ALL.len(), 30);
    }
}
