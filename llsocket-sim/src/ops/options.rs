//! Socket options: `getsockopt` and `setsockopt`, with Linux's level checks (which
//! option is simulated and which only stored: the crate docs).

use std::net::Ipv4Addr;

use llsocket_api::opt::Timeval;
use llsocket_api::{Errno, Family, Fd, OptName, Result, SockOpt};

use crate::addr::host_v4;
use crate::types::ObjId;
use crate::world::{St, World};

impl World {
    /// The level checks every option goes through (see the crate docs).
    fn opt_level_ok(&self, id: ObjId, name: OptName, get: bool) -> Result<()> {
        let s = self.sr(id);
        use OptName as O;
        let tcp_level = matches!(
            name,
            O::TcpNoDelay | O::TcpKeepIntvl | O::TcpKeepCnt | O::TcpKeepAlive | O::TcpCork
        );
        let ip_level = matches!(
            name,
            O::MulticastLoopV4 | O::MulticastTtlV4 | O::MulticastIfV4
        );
        let ip6_level = matches!(
            name,
            O::MulticastLoopV6 | O::MulticastHopsV6 | O::MulticastIfV6
        );
        if s.is_unix() && (tcp_level || ip_level || ip6_level) {
            return Err(Errno::EOPNOTSUPP);
        }
        // Linux: the IP layer answers a level it does not know with ENOPROTOOPT
        // on set and EOPNOTSUPP on get.
        let wrong = if get && s.family == Family::INET {
            Errno::EOPNOTSUPP
        } else {
            Errno::ENOPROTOOPT
        };
        if tcp_level && !s.is_tcp() {
            return Err(wrong);
        }
        if ip6_level && s.family != Family::INET6 {
            return Err(wrong);
        }
        Ok(())
    }

    pub(crate) fn op_getsockopt(&mut self, h: usize, fd: Fd, name: OptName) -> Result<SockOpt> {
        let id = self.sock_of(h, fd)?;
        self.opt_level_ok(id, name, true)?;
        if name == OptName::Error {
            let e = self.s(id).err;
            self.s(id).err = 0;
            return Ok(SockOpt::Error(e));
        }
        let s = self.sr(id);
        let o = &s.opts;
        use OptName as N;
        Ok(match name {
            N::ReuseAddr => SockOpt::ReuseAddr(o.reuseaddr),
            N::ReusePort => SockOpt::ReusePort(o.reuseport),
            N::Broadcast => SockOpt::Broadcast(o.broadcast),
            N::Debug => SockOpt::Debug(o.debug),
            N::KeepAlive => SockOpt::KeepAlive(o.keepalive),
            N::OobInline => SockOpt::OobInline(o.oobinline),
            N::DontRoute => SockOpt::DontRoute(o.dontroute),
            N::Timestamp => SockOpt::Timestamp(o.timestamp),
            N::RcvBuf => SockOpt::RcvBuf(o.rcvbuf),
            N::RcvLowat => SockOpt::RcvLowat(o.rcvlowat),
            N::SndBuf => SockOpt::SndBuf(o.sndbuf),
            N::SndLowat => SockOpt::SndLowat(1),
            N::RcvTimeo => SockOpt::RcvTimeo(o.rcvtimeo),
            N::SndTimeo => SockOpt::SndTimeo(o.sndtimeo),
            N::Linger => SockOpt::Linger(o.linger),
            N::TcpNoDelay => SockOpt::TcpNoDelay(o.nodelay),
            N::TcpKeepIntvl => SockOpt::TcpKeepIntvl(o.keepintvl),
            N::TcpKeepCnt => SockOpt::TcpKeepCnt(o.keepcnt),
            N::TcpKeepAlive => SockOpt::TcpKeepAlive(o.keepidle),
            N::TcpCork => SockOpt::TcpCork(o.cork),
            N::AcceptConn => SockOpt::AcceptConn(s.st == St::Listen),
            N::Error => unreachable!("handled above"),
            N::Type => SockOpt::Type(s.ty.0),
            N::Protocol => SockOpt::Protocol(s.proto),
            N::MulticastLoopV4 => SockOpt::MulticastLoopV4(o.mloop4),
            N::MulticastLoopV6 => SockOpt::MulticastLoopV6(o.mloop6),
            N::MulticastTtlV4 => SockOpt::MulticastTtlV4(o.mttl4),
            N::MulticastHopsV6 => SockOpt::MulticastHopsV6(o.mhops6),
            N::MulticastIfV4 => SockOpt::MulticastIfV4(o.mif4),
            N::MulticastIfV6 => SockOpt::MulticastIfV6(o.mif6),
        })
    }

    pub(crate) fn op_setsockopt(&mut self, h: usize, fd: Fd, opt: SockOpt) -> Result<()> {
        let id = self.sock_of(h, fd)?;
        self.opt_level_ok(id, opt.name(), false)?;
        let is_tcp = self.sr(id).is_tcp();
        let is_unix = self.sr(id).is_unix();
        // ip_setsockopt / do_ipv6_setsockopt refuse these on stream sockets.
        match opt {
            // sk_setsockopt: SO_REUSEPORT can only be turned on for inet sockets.
            SockOpt::ReusePort(true) if is_unix => return Err(Errno::EOPNOTSUPP),
            SockOpt::MulticastTtlV4(_) | SockOpt::MulticastIfV4(_) if is_tcp => {
                return Err(Errno::EINVAL)
            }
            SockOpt::MulticastHopsV6(_) | SockOpt::MulticastIfV6(_) if is_tcp => {
                return Err(Errno::ENOPROTOOPT)
            }
            _ => {}
        }
        let local4 = |ip: Ipv4Addr| ip.is_unspecified() || ip.is_loopback() || ip == host_v4(h);
        let o = &mut self.s(id).opts;
        let bufsize = |v: i32, min: i32| -> i32 {
            let v = (v as u32).min(212_992) as i32;
            (v * 2).max(min)
        };
        match opt {
            SockOpt::ReuseAddr(b) => o.reuseaddr = b,
            SockOpt::ReusePort(b) => o.reuseport = b,
            SockOpt::Broadcast(b) => o.broadcast = b,
            SockOpt::Debug(b) => o.debug = b,
            SockOpt::KeepAlive(b) => o.keepalive = b,
            SockOpt::OobInline(b) => o.oobinline = b,
            SockOpt::DontRoute(b) => o.dontroute = b,
            SockOpt::Timestamp(b) => o.timestamp = b,
            SockOpt::RcvBuf(v) => o.rcvbuf = bufsize(v, 2304),
            SockOpt::SndBuf(v) => o.sndbuf = bufsize(v, 4608),
            SockOpt::RcvLowat(v) => o.rcvlowat = if v < 0 { i32::MAX } else { v.max(1) },
            SockOpt::SndLowat(_) => return Err(Errno::ENOPROTOOPT),
            SockOpt::RcvTimeo(tv) | SockOpt::SndTimeo(tv) => {
                if !(0..1_000_000).contains(&tv.usec) {
                    return Err(Errno::EDOM);
                }
                let tv = if tv.sec < 0 { Timeval::default() } else { tv };
                if matches!(opt, SockOpt::RcvTimeo(_)) {
                    o.rcvtimeo = tv;
                } else {
                    o.sndtimeo = tv;
                }
            }
            SockOpt::Linger(l) => {
                o.linger.enabled = l.enabled;
                if l.enabled {
                    o.linger.secs = l.secs;
                }
            }
            SockOpt::TcpNoDelay(b) => o.nodelay = b,
            SockOpt::TcpCork(b) => o.cork = b,
            SockOpt::TcpKeepIntvl(v) => {
                if !(1..=32767).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.keepintvl = v;
            }
            SockOpt::TcpKeepCnt(v) => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.keepcnt = v;
            }
            SockOpt::TcpKeepAlive(v) => {
                if !(1..=32767).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.keepidle = v;
            }
            SockOpt::AcceptConn(_)
            | SockOpt::Error(_)
            | SockOpt::Type(_)
            | SockOpt::Protocol(_) => return Err(Errno::ENOPROTOOPT),
            SockOpt::MulticastLoopV4(b) => o.mloop4 = b,
            SockOpt::MulticastLoopV6(b) => o.mloop6 = b,
            SockOpt::MulticastTtlV4(v) | SockOpt::MulticastHopsV6(v) => {
                let v = match v {
                    -1 => 1,
                    0..=255 => v,
                    _ => return Err(Errno::EINVAL),
                };
                if matches!(opt, SockOpt::MulticastTtlV4(_)) {
                    o.mttl4 = v;
                } else {
                    o.mhops6 = v;
                }
            }
            SockOpt::MulticastIfV4(ip) => {
                if !local4(ip) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
                o.mif4 = ip;
            }
            SockOpt::MulticastIfV6(idx) => {
                if idx > 2 {
                    return Err(Errno::ENODEV);
                }
                o.mif6 = idx;
            }
        }
        Ok(())
    }
}
