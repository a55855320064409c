//! The socket operations of a simulated host: argument checks, state changes and the
//! blocking rules, written against [`World`].
//!
//! Each function takes the world and the calling host's index; `lib.rs` wraps
//! them into the [`llsocket_api::SocketOps`] implementation of [`crate::Host`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use llsocket_api::cmsg;
use llsocket_api::opt::Timeval;
use llsocket_api::{
    Accepted, Errno, Family, Fd, Interest, McastOp, McastRequest, MsgFlags, OptName, Protocol,
    Result, Shutdown, SockAddr, SockOpt, SockType, UnixAddr,
};

use crate::world::{
    as_family, canon, canon_ip, host_v4, host_v6, Ev, Kind, Membership, Nanos, ObjId, Seg, St,
    World,
};

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
        Got {
            data: Vec::new(),
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

impl World {
    // ---- life cycle ----------------------------------------------------------------

    pub(crate) fn op_socket(
        &mut self,
        h: usize,
        family: Family,
        ty: SockType,
        protocol: Protocol,
        nonblock: bool,
    ) -> Result<Fd> {
        let nonblock = nonblock || ty.0 & SOCK_NONBLOCK != 0;
        let base = SockType(ty.0 & !(SOCK_NONBLOCK | SOCK_CLOEXEC));
        let proto = protocol.0;
        // __sock_create: a type outside 0..SOCK_MAX (11) is EINVAL before anything else.
        if !(0..11).contains(&base.0) {
            return Err(Errno::EINVAL);
        }
        let (ty, proto) = match family {
            Family::UNIX => {
                if proto != 0 && proto != libc::PF_UNIX {
                    return Err(Errno::EPROTONOSUPPORT);
                }
                match base {
                    SockType::STREAM | SockType::DGRAM | SockType::SEQPACKET => (base, 0),
                    SockType::RAW => (SockType::DGRAM, 0),
                    _ => return Err(Errno::ESOCKTNOSUPPORT),
                }
            }
            Family::INET | Family::INET6 => match base {
                SockType::STREAM if proto == 0 || proto == libc::IPPROTO_TCP => {
                    (base, libc::IPPROTO_TCP)
                }
                SockType::DGRAM if proto == 0 || proto == libc::IPPROTO_UDP => {
                    (base, libc::IPPROTO_UDP)
                }
                SockType::STREAM | SockType::DGRAM => return Err(Errno::EPROTONOSUPPORT),
                SockType::RAW => return Err(Errno::EPERM),
                _ => return Err(Errno::ESOCKTNOSUPPORT),
            },
            _ => return Err(Errno::EAFNOSUPPORT),
        };
        let id = self.new_sock(h, family, ty, proto, nonblock);
        match self.install(h, id, true) {
            Ok(fd) => Ok(fd),
            Err(e) => {
                self.destroy(id);
                Err(e)
            }
        }
    }

    pub(crate) fn op_socketpair(
        &mut self,
        h: usize,
        ty: SockType,
        protocol: Protocol,
        nonblock: bool,
    ) -> Result<(Fd, Fd)> {
        let a = self.op_socket(h, Family::UNIX, ty, protocol, nonblock)?;
        let b = match self.op_socket(h, Family::UNIX, ty, protocol, nonblock) {
            Ok(b) => b,
            Err(e) => {
                let _ = self.op_close(h, a);
                return Err(e);
            }
        };
        let (ia, ib) = (self.obj_of(h, a)?, self.obj_of(h, b)?);
        for (x, y) in [(ia, ib), (ib, ia)] {
            let s = self.s(x);
            s.st = St::Connected;
            s.peer_id = Some(y);
            s.peer = Some(SockAddr::Unix(UnixAddr::Unnamed));
        }
        Ok((a, b))
    }

    pub(crate) fn op_dup(&mut self, h: usize, fd: Fd) -> Result<Fd> {
        let obj = self.obj_of(h, fd)?;
        self.install(h, obj, true)
    }

    pub(crate) fn op_close(&mut self, h: usize, fd: Fd) -> Result<()> {
        let obj = self.obj_of(h, fd)?;
        // SO_LINGER with a timeout: a blocking close waits for the send queue to drain.
        let lingers = self.exists(obj)
            && {
                let s = self.sr(obj);
                s.is_tcp()
                    && s.st == St::Connected
                    && s.opts.linger.enabled
                    && s.opts.linger.secs > 0
                    && !s.sq.is_empty()
            }
            && !self.nonblock_of(obj);
        if lingers {
            let secs = self.sr(obj).opts.linger.secs as Nanos;
            let _ = self.wait(false, Some(secs * 1000 * MS), Errno::EAGAIN, |w| {
                let done = !w.exists(obj) || {
                    let s = w.sr(obj);
                    s.sq.is_empty() || s.st != St::Connected
                };
                done.then_some(Ok(()))
            });
        }
        self.uninstall(h, fd);
        self.unref(obj);
        if self.exists(obj) && self.sr(obj).is_unix() && !self.gc_scheduled {
            // Still referenced: maybe only by descriptors in flight. Linux runs its
            // unix garbage collector from a work queue, a moment later: so here.
            self.gc_scheduled = true;
            let at = self.now + MS;
            self.schedule(at, Ev::UnixGc);
        }
        Ok(())
    }

    /// Linux's unix garbage collector: unix sockets referenced only by `SCM_RIGHTS`
    /// descriptors queued in other such sockets (or their own queue), and not
    /// reachable from any other queue, are closed.
    pub(crate) fn unix_gc(&mut self) {
        self.gc_scheduled = false;
        let mut queued: std::collections::BTreeMap<ObjId, u32> = Default::default();
        let unix: Vec<ObjId> = self
            .hosts
            .iter()
            .flat_map(|hs| hs.objs.iter().copied())
            .filter(|&o| self.exists(o) && self.sr(o).is_unix())
            .collect();
        for &u in &unix {
            for seg in &self.sr(u).rq {
                for &r in &seg.rights {
                    *queued.entry(r).or_default() += 1;
                }
            }
        }
        let refs = |w: &World, o: ObjId| w.objs.get(&o).map_or(0, |x| x.refs);
        let candidates: std::collections::BTreeSet<ObjId> = unix
            .iter()
            .copied()
            .filter(|&u| refs(self, u) > 0 && queued.get(&u) == Some(&refs(self, u)))
            .collect();
        if candidates.is_empty() {
            return;
        }
        // References from the candidates' own queues.
        let mut internal: std::collections::BTreeMap<ObjId, u32> = Default::default();
        for &c in &candidates {
            for seg in &self.sr(c).rq {
                for &r in &seg.rights {
                    if candidates.contains(&r) {
                        *internal.entry(r).or_default() += 1;
                    }
                }
            }
        }
        let mut alive: Vec<ObjId> = candidates
            .iter()
            .copied()
            .filter(|c| refs(self, *c) > internal.get(c).copied().unwrap_or(0))
            .collect();
        let mut reached: std::collections::BTreeSet<ObjId> = alive.iter().copied().collect();
        while let Some(a) = alive.pop() {
            let inside: Vec<ObjId> = self
                .sr(a)
                .rq
                .iter()
                .flat_map(|s| s.rights.iter().copied())
                .collect();
            for r in inside {
                if candidates.contains(&r) && reached.insert(r) {
                    alive.push(r);
                }
            }
        }
        let garbage: Vec<ObjId> = candidates.difference(&reached).copied().collect();
        if garbage.is_empty() {
            return;
        }
        // The segments carrying descriptors leave the garbage queues first (so the
        // release that follows sees only the remaining data).
        let mut held = Vec::new();
        for &g in &garbage {
            let s = self.s(g);
            let mut keep = std::collections::VecDeque::new();
            for mut seg in s.rq.drain(..) {
                if seg.rights.is_empty() {
                    keep.push_back(seg);
                } else {
                    held.append(&mut seg.rights);
                }
            }
            s.rq_bytes = keep.iter().map(|x| x.data.len() - x.off).sum();
            s.rq = keep;
            if let Some(o) = self.objs.get_mut(&g) {
                o.refs = 0;
            }
        }
        for &g in &garbage {
            self.tr(self.sr(g).host, "unix-gc", g as i64, 0);
        }
        for &g in &garbage {
            if self.exists(g) {
                self.release_now(g);
            }
        }
        for r in held {
            if !garbage.contains(&r) {
                self.unref(r);
            }
        }
    }

    pub(crate) fn op_shutdown(&mut self, h: usize, fd: Fd, how: Shutdown) -> Result<()> {
        let id = self.sock_of(h, fd)?;
        if !(0..=2).contains(&how.0) {
            return Err(Errno::EINVAL);
        }
        let rd = how == Shutdown::READ || how == Shutdown::BOTH;
        let wr = how == Shutdown::WRITE || how == Shutdown::BOTH;
        let s = self.sr(id);
        if s.is_unix() {
            let peer = s.peer_id.filter(|_| s.is_conn() && s.st == St::Connected);
            let s = self.s(id);
            s.rd_shut |= rd;
            s.wr_shut |= wr;
            if let Some(p) = peer.filter(|p| self.exists(*p)) {
                let ps = self.s(p);
                ps.rd_eof |= wr;
                ps.wr_shut |= rd;
            }
            return Ok(());
        }
        match s.st {
            St::Listen => {
                if rd {
                    // Linux: tcp_disconnect stops listening and frees an automatic port.
                    let q: Vec<ObjId> = self.s(id).acceptq.drain(..).collect();
                    for c in q {
                        self.abort(c);
                    }
                    self.unlisten(id);
                    let s = self.s(id);
                    s.st = St::Idle;
                    s.unlistened = true;
                    // tcp_disconnect clears the shutdown flags.
                    s.rd_shut = false;
                    s.wr_shut = false;
                    self.release_port(id);
                    self.reset_saddr(id);
                }
                Ok(())
            }
            St::Connected => {
                let tcp = s.is_tcp();
                let s = self.s(id);
                // Linux's inet_shutdown marks a finished connect as connected.
                s.connect_pending = false;
                s.rd_shut |= rd;
                if wr {
                    s.wr_shut = true;
                    // tcp_shutdown sends the FIN whenever none went out yet, even if the
                    // flag was set before the connection (a shutdown that was ENOTCONN).
                    if tcp && !s.fin_pending && !s.fin_sent {
                        s.fin_pending = true;
                        self.pump(id);
                    }
                }
                Ok(())
            }
            St::SynSent => {
                // Linux: shutting down a connecting socket disconnects it.
                let s = self.s(id);
                s.connect_pending = false;
                s.rd_shut = false;
                s.wr_shut = false;
                s.st = St::Idle;
                s.peer_id = None;
                s.conn_gen += 1;
                let t = s.syn_timer.take();
                self.cancel(t);
                Ok(())
            }
            St::Idle | St::Closed => {
                let s = self.s(id);
                s.rd_shut |= rd;
                s.wr_shut |= wr;
                s.disconnecting |= s.connect_pending;
                s.connect_pending = false;
                Err(Errno::ENOTCONN)
            }
        }
    }

    // ---- naming --------------------------------------------------------------------

    /// Whether a new binding of socket `id` to `addr` collides with `other`.
    fn collides(&self, id: ObjId, addr: &SockAddr, other: ObjId) -> bool {
        if other == id {
            return false;
        }
        let (me, o) = (self.sr(id), self.sr(other));
        let Some(olocal) = &o.local else { return false };
        let (a, b) = (canon(addr), canon(olocal));
        let (Some(a), Some(b)) = (a.as_socket_addr(), b.as_socket_addr()) else {
            return false;
        };
        let overlap = {
            let (ai, bi) = (canon_ip(a.ip()), canon_ip(b.ip()));
            let a_wild = ai.is_unspecified();
            let b_wild = bi.is_unspecified();
            let a6 = me.family == Family::INET6;
            let b6 = o.family == Family::INET6;
            if a_wild && b_wild {
                true
            } else if a_wild {
                a6 || bi.is_ipv4()
            } else if b_wild {
                b6 || ai.is_ipv4()
            } else {
                ai == bi
            }
        };
        if !overlap {
            return false;
        }
        let reuseaddr = me.opts.reuseaddr
            && o.opts.reuseaddr
            && (me.is_udp() || (o.st != St::Listen && me.st != St::Listen));
        let reuseport = me.opts.reuseport && o.opts.reuseport;
        !(reuseaddr || reuseport)
    }

    /// Binds an IP socket (port 0: an ephemeral port).
    fn bind_ip(&mut self, h: usize, id: ObjId, addr: &SockAddr) -> Result<()> {
        let s = self.sr(id);
        let udp = s.is_udp();
        let ip = addr.as_socket_addr().map(|a| a.ip()).ok_or(Errno::EINVAL)?;
        if !self.is_local(h, ip) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let mut port = addr.port().unwrap_or(0);
        self.s(id).port_locked = port != 0;
        if port == 0 {
            port = self.ephemeral(h, udp)?;
        } else {
            let live = self.hosts[h]
                .ports
                .get(&(udp, port))
                .is_some_and(|set| set.iter().any(|&o| self.collides(id, addr, o)));
            let reuse = self.sr(id).opts.reuseaddr;
            if live || (!udp && self.time_wait_blocks(h, addr, reuse)) {
                // Linux's __inet_bind has already cleared the address when the
                // port check fails (a socket with a released port shows 0.0.0.0).
                let fam = self.sr(id).family;
                if let Some(p) = self.sr(id).local.as_ref().and_then(|a| a.port()) {
                    self.s(id).local = Some(if fam == Family::INET6 {
                        SockAddr::v6(Ipv6Addr::UNSPECIFIED, p)
                    } else {
                        SockAddr::v4(Ipv4Addr::UNSPECIFIED, p)
                    });
                }
                return Err(Errno::EADDRINUSE);
            }
        }
        let local = addr.with_port(port);
        let s = self.s(id);
        s.local = Some(local);
        s.unhashed = false;
        self.hosts[h]
            .ports
            .entry((udp, port))
            .or_default()
            .insert(id);
        Ok(())
    }

    /// Binds an unbound IP socket to the wildcard address and an ephemeral port.
    fn autobind(&mut self, h: usize, id: ObjId) -> Result<()> {
        let s = self.sr(id);
        if s.local.is_some() && !s.unhashed {
            return Ok(());
        }
        if let Some(l) = s.local.clone() {
            // A released port: a new one on the address the socket still has.
            return self.bind_ip(h, id, &l.with_port(0));
        }
        let any = if s.family == Family::INET6 {
            SockAddr::v6(Ipv6Addr::UNSPECIFIED, 0)
        } else {
            SockAddr::v4(Ipv4Addr::UNSPECIFIED, 0)
        };
        self.bind_ip(h, id, &any)
    }

    pub(crate) fn op_bind(&mut self, h: usize, fd: Fd, addr: &SockAddr) -> Result<()> {
        let id = self.sock_of(h, fd)?;
        check_unix_len(addr)?;
        let s = self.sr(id);
        let (family, ty) = (s.family, s.ty.0);
        match (family, addr) {
            (Family::UNIX, SockAddr::Unix(u)) => {
                if s.local.is_some() {
                    // Linux: an unnamed address asks for autobind, a no-op once bound.
                    return if *u == UnixAddr::Unnamed {
                        Ok(())
                    } else {
                        Err(Errno::EINVAL)
                    };
                }
                let u = match u {
                    UnixAddr::Unnamed => {
                        // Autobind: an abstract name of five hex digits.
                        let mut n = self.rng.range(0, 0xfffff);
                        loop {
                            let name = format!("{n:05x}").into_bytes();
                            if !self.hosts[h]
                                .unix_abstract
                                .contains_key(&(ty, name.clone()))
                            {
                                break UnixAddr::Abstract(name);
                            }
                            n = (n + 1) & 0xfffff;
                        }
                    }
                    UnixAddr::Path(p) if p.is_empty() => return Err(Errno::EINVAL),
                    other => other.clone(),
                };
                match &u {
                    UnixAddr::Path(p) => {
                        if self.hosts[h].unix_paths.contains_key(p) {
                            return Err(Errno::EADDRINUSE);
                        }
                        self.hosts[h].unix_paths.insert(p.clone(), Some(id));
                    }
                    UnixAddr::Abstract(p) => {
                        if self.hosts[h].unix_abstract.contains_key(&(ty, p.clone())) {
                            return Err(Errno::EADDRINUSE);
                        }
                        self.hosts[h].unix_abstract.insert((ty, p.clone()), id);
                    }
                    UnixAddr::Unnamed => unreachable!("autobind picked a name"),
                }
                self.s(id).local = Some(SockAddr::Unix(u));
                Ok(())
            }
            (Family::UNIX, _) => Err(Errno::EINVAL),
            (Family::INET, SockAddr::V4(_)) | (Family::INET6, SockAddr::V6(_)) => {
                if (s.local.is_some() && !s.unhashed) || s.listen_port {
                    return Err(Errno::EINVAL);
                }
                self.bind_ip(h, id, addr)?;
                self.s(id).addr_locked = !addr.is_unspecified_ip();
                Ok(())
            }
            _ => Err(wrong_family(family, addr)),
        }
    }

    /// The socket bound at a unix address on host `h`, for a socket of type `ty`
    /// (Linux hashes abstract names with the socket type: each type has its own).
    fn unix_lookup(&self, h: usize, addr: &SockAddr, ty: SockType) -> Result<ObjId> {
        match addr {
            SockAddr::Unix(UnixAddr::Path(p)) => match self.hosts[h].unix_paths.get(p) {
                None => Err(Errno::ENOENT),
                Some(None) => Err(Errno::ECONNREFUSED),
                Some(Some(id)) => Ok(*id),
            },
            SockAddr::Unix(UnixAddr::Abstract(p)) => self.hosts[h]
                .unix_abstract
                .get(&(ty.0, p.clone()))
                .copied()
                .ok_or(Errno::ECONNREFUSED),
            SockAddr::Unix(UnixAddr::Unnamed) => Err(Errno::EINVAL),
            _ => Err(Errno::EINVAL),
        }
    }

    pub(crate) fn op_connect(&mut self, h: usize, fd: Fd, addr: &SockAddr) -> Result<()> {
        let id = self.sock_of(h, fd)?;
        check_unix_len(addr)?;
        let nonblock = self.nonblock_of(id);
        let s = self.sr(id);
        if s.is_unix() {
            return self.connect_unix(h, id, addr, nonblock);
        }
        if s.is_udp() {
            if addr.family() == Family::UNSPEC {
                let s = self.s(id);
                s.peer = None;
                s.st = St::Idle;
                return Ok(());
            }
            // Linux's inet_dgram_connect binds before it looks at the address.
            self.autobind(h, id)?;
            let dst = self.check_ip_dest(id, addr, false)?;
            self.check_bound_family(id, &dst)?;
            self.fix_source(h, id, &dst);
            let fam = self.sr(id).family;
            let s = self.s(id);
            s.peer = Some(as_family(&dst, fam));
            s.st = St::Connected;
            return Ok(());
        }
        // TCP.
        if s.disconnecting {
            return Err(Errno::EINVAL);
        }
        match s.st {
            St::Listen => return Err(Errno::EISCONN),
            St::Connected if s.connect_pending => {
                // The non-blocking connect finished: reported once as success.
                self.s(id).connect_pending = false;
                return Ok(());
            }
            St::Connected => return Err(Errno::EISCONN),
            St::SynSent if nonblock => return Err(Errno::EALREADY),
            St::Closed | St::Idle if s.connect_pending => {
                // Linux's sock_error path: the connection failed or was reset; report
                // the error (ECONNABORTED without one) and disconnect.
                let e = take_err(self, id).unwrap_or(Errno::ECONNABORTED);
                let s = self.s(id);
                s.connect_pending = false;
                s.st = St::Idle;
                s.rd_shut = false;
                s.wr_shut = false;
                s.rd_eof = false;
                s.fin_pending = false;
                s.fin_sent = false;
                s.fin_first = false;
                // tcp_disconnect also purges both queues: a new connection starts clean.
                let rights: Vec<ObjId> = s.rq.drain(..).flat_map(|x| x.rights).collect();
                s.rq_bytes = 0;
                s.sq.clear();
                s.inflight = 0;
                s.ooo.clear();
                s.snd_nxt = 0;
                s.rcv_nxt = 0;
                s.snd_urg = None;
                s.oob = None;
                s.mark = None;
                s.rq_total = 0;
                s.rd_total = 0;
                for r in rights {
                    self.unref(r);
                }
                self.reset_saddr(id);
                self.s(id).no_listen = true;
                return Err(e);
            }
            _ => {}
        }
        if self.sr(id).st != St::SynSent {
            if self.sr(id).st == St::Closed {
                return Err(Errno::EISCONN);
            }
            let dst = self.check_ip_dest(id, addr, false)?;
            self.check_bound_family(id, &dst)?;
            let dip = dst.as_socket_addr().map(|a| a.ip()).ok_or(Errno::EINVAL)?;
            if dip.is_multicast() || crate::net::is_broadcast(dip) {
                return Err(Errno::ENETUNREACH);
            }
            if self.route(h, dip).is_none()
                && !matches!(canon_ip(dip), IpAddr::V4(v) if v.octets()[..3] == [10, 0, 0])
                && !matches!(canon_ip(dip), IpAddr::V6(v) if v.segments()[0] == 0xfd00)
            {
                return Err(Errno::ENETUNREACH);
            }
            if self.sr(id).unlistened {
                // Linux fails this inside tcp_v4_connect, after the address checks and
                // the route: an automatic port is given back, and the source address
                // the route chose stays (getsockname shows it; campaign seed 6002).
                // (Only a socket that holds a port keeps it: campaign seed 9001.)
                let holds_port = self.sr(id).local.is_some() && !self.sr(id).unhashed;
                self.release_port(id);
                if holds_port {
                    self.fix_source(h, id, &dst);
                }
                return Err(Errno::EINVAL);
            }
            self.autobind(h, id)?;
            self.fix_source(h, id, &dst);
            let fam = self.sr(id).family;
            let s = self.s(id);
            s.peer = Some(as_family(&dst, fam));
            s.st = St::SynSent;
            s.err = 0;
            s.conn_gen += 1;
            s.peer_id = None;
            let gen = s.conn_gen;
            let at = self.now + 1000 * MS;
            let key = self.schedule(
                at,
                Ev::SynTimer {
                    sock: id,
                    gen,
                    attempt: 0,
                },
            );
            self.s(id).syn_timer = Some(key);
            self.send_syn(id, &dst);
            if nonblock {
                self.s(id).connect_pending = true;
                return Err(Errno::EINPROGRESS);
            }
        }
        self.eintr(h, true)?;
        let timeout = timeout_of(self.sr(id).opts.sndtimeo);
        self.wait(false, timeout, Errno::EINPROGRESS, |w| {
            if !w.exists(id) {
                return Some(Err(Errno::EBADF));
            }
            match w.sr(id).st {
                St::SynSent => None,
                St::Connected => Some(Ok(())),
                _ => Some(Err(take_err(w, id).unwrap_or(Errno::ECONNREFUSED))),
            }
        })
    }

    /// The destination of an IP connect/sendto, canonical (`EAFNOSUPPORT`, `EINVAL`).
    fn check_ip_dest(&self, id: ObjId, addr: &SockAddr, sendto: bool) -> Result<SockAddr> {
        let s = self.sr(id);
        match (s.family, addr) {
            // udpv6_sendmsg: a family it does not handle is EINVAL whatever the length.
            (Family::INET6, SockAddr::Unix(_) | SockAddr::Other { .. }) if sendto => {
                Err(Errno::EINVAL)
            }
            (Family::INET, SockAddr::V4(_)) => Ok(addr.clone()),
            (Family::INET6, SockAddr::V6(_)) => Ok(canon(addr)),
            // UDP over IPv6 takes IPv4 destinations; TCP checks the length first.
            (Family::INET6, SockAddr::V4(_)) if s.is_udp() => Ok(addr.clone()),
            (fam, _) => Err(wrong_family(fam, addr)),
        }
    }

    /// An IPv6 socket bound to a real IPv6 address cannot reach IPv4 destinations (its
    /// IPv4 source is Linux's placeholder), nor one bound to a v4-mapped address IPv6
    /// destinations: `ENETUNREACH`.
    fn check_bound_family(&self, id: ObjId, dst: &SockAddr) -> Result<()> {
        let s = self.sr(id);
        if s.family != Family::INET6 || s.unhashed || !s.addr_locked {
            return Ok(());
        }
        let Some(SockAddr::V6(l)) = &s.local else {
            return Ok(());
        };
        if l.ip().is_unspecified() {
            return Ok(());
        }
        let local_v4 = l.ip().to_ipv4_mapped().is_some();
        let dst_v4 = canon(dst).family() == Family::INET;
        if local_v4 != dst_v4 {
            return Err(Errno::ENETUNREACH);
        }
        Ok(())
    }

    /// tcp_disconnect: an address `bind` did not choose goes back to the wildcard
    /// (the port keeps showing).
    fn reset_saddr(&mut self, id: ObjId) {
        let s = self.sr(id);
        if s.addr_locked {
            return;
        }
        let fam = s.family;
        if let Some(p) = s.local.as_ref().and_then(|a| a.port()) {
            self.s(id).local = Some(if fam == Family::INET6 {
                SockAddr::v6(Ipv6Addr::UNSPECIFIED, p)
            } else {
                SockAddr::v4(Ipv4Addr::UNSPECIFIED, p)
            });
        }
    }

    /// After connecting a wildcard-bound socket, its local address is the route's source.
    fn fix_source(&mut self, h: usize, id: ObjId, dst: &SockAddr) {
        let s = self.sr(id);
        let local = s.local.clone().expect("bound");
        let (Some(l), Some(d)) = (local.as_socket_addr(), dst.as_socket_addr()) else {
            return;
        };
        if !canon_ip(l.ip()).is_unspecified() {
            return;
        }
        let src = self.source_ip(h, l.ip(), d.ip());
        let fam = s.family;
        let a = as_family(
            &SockAddr::from(std::net::SocketAddr::new(src, l.port())),
            fam,
        );
        self.s(id).local = Some(a);
    }

    /// Linux's `unix_dgram_disconnected`: a unix datagram socket that connects away
    /// from `old` loses every datagram queued for it, and if any was there and `old`
    /// (alive) is connected to it, `old` gets `ECONNRESET` (found by the campaign).
    fn unix_dgram_disconnected(&mut self, id: ObjId, old: ObjId) {
        let s = self.s(id);
        if s.rq.is_empty() {
            return;
        }
        s.rq_bytes = 0;
        let dropped: Vec<Seg> = s.rq.drain(..).collect();
        for seg in dropped {
            for r in seg.rights {
                self.unref(r);
            }
        }
        if self.exists(old) && self.sr(old).peer_id == Some(id) {
            self.s(old).err = libc::ECONNRESET;
        }
    }

    fn connect_unix(&mut self, h: usize, id: ObjId, addr: &SockAddr, nonblock: bool) -> Result<()> {
        if !matches!(addr, SockAddr::Unix(_)) {
            return Err(Errno::EINVAL);
        }
        // Linux order: validate the address, find the target, then look at our state.
        let target = self.unix_lookup(h, addr, self.sr(id).ty)?;
        let (tty, tst) = {
            let t = self.sr(target);
            (t.ty, t.st)
        };
        let ty = self.sr(id).ty;
        if tty != ty {
            return Err(Errno::EPROTOTYPE);
        }
        if ty == SockType::DGRAM {
            if self.sr(target).peer_id.is_some_and(|p| p != id) {
                return Err(Errno::EPERM);
            }
            let old = self.sr(id).peer_id.filter(|&p| p != target);
            let taddr = self.sr(target).local.clone();
            let s = self.s(id);
            s.peer_id = Some(target);
            s.peer = taddr;
            s.st = St::Connected;
            // (After the new peer is set, as Linux does: a socket that was connected
            // to itself does not reset itself.)
            if let Some(old) = old {
                self.unix_dgram_disconnected(id, old);
            }
            return Ok(());
        }
        if tst != St::Listen || self.sr(target).rd_shut {
            return Err(Errno::ECONNREFUSED);
        }
        // unix_stream_connect looks at the listener's backlog before our own state.
        let full = {
            let t = self.sr(target);
            t.acceptq.len() > t.backlog
        };
        if full && nonblock {
            return Err(Errno::EAGAIN);
        }
        match self.sr(id).st {
            St::Connected => return Err(Errno::EISCONN),
            St::Idle => {}
            _ => return Err(Errno::EINVAL),
        }
        self.eintr(h, !nonblock)?;
        let timeout = timeout_of(self.sr(id).opts.sndtimeo);
        self.wait(nonblock, timeout, Errno::EAGAIN, |w| {
            if !w.exists(target) || w.sr(target).st != St::Listen {
                return Some(Err(Errno::ECONNREFUSED));
            }
            let t = w.sr(target);
            (t.acceptq.len() <= t.backlog).then_some(Ok(()))
        })?;
        let (fam, opts, taddr) = {
            let t = self.sr(target);
            (t.family, t.opts.clone(), t.local.clone())
        };
        let tnb = self.nonblock_of(target);
        let child = self.new_sock(h, fam, ty, 0, tnb);
        let my_local = self.sr(id).local.clone();
        {
            let c = self.s(child);
            c.st = St::Connected;
            c.local = taddr.clone();
            c.peer = Some(my_local.unwrap_or(SockAddr::Unix(UnixAddr::Unnamed)));
            c.peer_id = Some(id);
            c.listener = Some(target);
            c.opts = opts;
        }
        self.s(target).acceptq.push_back(child);
        let s = self.s(id);
        s.st = St::Connected;
        s.peer_id = Some(child);
        s.peer = taddr;
        self.tr(h, "unix-connect", id as i64, child as i64);
        Ok(())
    }

    pub(crate) fn op_listen(&mut self, h: usize, fd: Fd, backlog: i32) -> Result<()> {
        let id = self.sock_of(h, fd)?;
        let s = self.sr(id);
        if !s.is_conn() {
            return Err(Errno::EOPNOTSUPP);
        }
        // (A non-blocking connect not yet reported leaves Linux's sock->state
        // SS_CONNECTING: listen is EINVAL then too.)
        if s.no_listen && s.st == St::Idle && s.is_tcp() && !s.connect_pending && !s.disconnecting {
            // This listen takes a port (inet_csk_get_port: bind is EINVAL from now
            // on, getsockname still shows the old one) before it fails.
            self.s(id).listen_port = true;
            return Err(Errno::EINVAL);
        }
        if (s.st != St::Idle && s.st != St::Listen)
            || s.connect_pending
            || s.disconnecting
            || s.no_listen
        {
            return Err(Errno::EINVAL);
        }
        if s.is_unix() && s.local.is_none() {
            return Err(Errno::EINVAL);
        }
        if !s.is_unix() {
            self.autobind(h, id)?;
        }
        let max = self.cfg.somaxconn.max(0) as u32;
        let b = if backlog as u32 > max {
            max
        } else {
            backlog as u32
        };
        let s = self.s(id);
        s.backlog = b as usize;
        s.st = St::Listen;
        s.unlistened = false;
        if s.is_tcp() {
            if let Some(p) = s.local.as_ref().and_then(|a| a.port()) {
                self.hosts[h].listeners.entry(p).or_default().insert(id);
            }
        }
        Ok(())
    }

    pub(crate) fn op_accept(&mut self, h: usize, fd: Fd, want_addr: bool) -> Result<Accepted> {
        let id = self.sock_of(h, fd)?;
        let s = self.sr(id);
        if !s.is_conn() {
            return Err(Errno::EOPNOTSUPP);
        }
        if s.st != St::Listen {
            return Err(Errno::EINVAL);
        }
        let nonblock = self.nonblock_of(id);
        self.eintr(h, !nonblock)?;
        let timeout = timeout_of(self.sr(id).opts.rcvtimeo);
        self.wait(nonblock, timeout, Errno::EAGAIN, |w| {
            let Ok(cur) = w.sock_of(h, fd) else {
                return Some(Err(Errno::EBADF));
            };
            if cur != id || w.sr(id).st != St::Listen {
                return Some(Err(Errno::EINVAL));
            }
            let s = w.sr(id);
            if s.acceptq.is_empty() && s.is_unix() && s.rd_shut {
                // unix_accept: a shut-down listener has nothing to wait for.
                return if nonblock {
                    None
                } else {
                    Some(Err(Errno::EINVAL))
                };
            }
            let child = *w.sr(id).acceptq.front()?;
            if w.hosts[h].fds.len() >= w.cfg.fd_limit {
                return Some(Err(Errno::EMFILE));
            }
            w.s(id).acceptq.pop_front();
            let nb = w.nonblock_of(id);
            if let Some(o) = w.objs.get_mut(&child) {
                o.nonblock = nb;
            }
            w.s(child).listener = None;
            let fd = match w.install(h, child, true) {
                Ok(fd) => fd,
                Err(e) => return Some(Err(e)),
            };
            let addr = if want_addr {
                let c = w.sr(child);
                match c.peer_id.filter(|&p| c.is_unix() && w.exists(p)) {
                    // unix_getname(peer): the client's name as it is now (it may
                    // have bound since it connected).
                    Some(p) => Some(
                        w.sr(p)
                            .local
                            .clone()
                            .unwrap_or(SockAddr::Unix(UnixAddr::Unnamed)),
                    ),
                    None => c.peer.clone(),
                }
            } else {
                None
            };
            Some(Ok(Accepted { fd, addr }))
        })
    }

    // ---- data ----------------------------------------------------------------------

    /// Parses outgoing control data: the objects of `SCM_RIGHTS` (referenced, in flight).
    fn parse_control(&mut self, h: usize, id: ObjId, control: &[u8]) -> Result<Vec<ObjId>> {
        let mut rights = Vec::new();
        let mut rest = control;
        let unix = self.sr(id).is_unix();
        while rest.len() >= cmsg::cmsg_len(0) {
            let Some((m, used)) = cmsg::decode_first(rest) else {
                return Err(Errno::EINVAL);
            };
            rest = &rest[used..];
            if m.level != libc::SOL_SOCKET {
                continue;
            }
            if !m.is_rights() {
                return Err(Errno::EINVAL);
            }
            if !unix {
                // __sock_cmsg_send accepts (and ignores) SCM_RIGHTS on IP sockets.
                continue;
            }
            for fd in cmsg::decode_fds(&m.data) {
                rights.push(self.obj_of(h, fd)?);
            }
        }
        if rights.len() > SCM_MAX_FD {
            return Err(Errno::EINVAL);
        }
        for &r in &rights {
            if let Some(o) = self.objs.get_mut(&r) {
                o.refs += 1;
            }
        }
        Ok(rights)
    }

    pub(crate) fn op_sendmsg(
        &mut self,
        h: usize,
        fd: Fd,
        data: &[u8],
        control: &[u8],
        to: Option<&SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        let id = self.sock_of(h, fd)?;
        if let Some(a) = to {
            check_unix_len(a)?;
        }
        let nonblock = self.nonblock_of(id) || flags.contains(MsgFlags::DONTWAIT);
        // Unix sockets parse control data first (scm_send); TCP and UDP only after
        // their own state and address checks, so the verdict waits in `ctl_err`.
        if self.sr(id).ty == SockType::SEQPACKET {
            // unix_seqpacket_sendmsg looks at the error and the state before scm_send.
            if let Some(e) = take_err(self, id) {
                return Err(e);
            }
            if self.sr(id).st != St::Connected {
                return Err(Errno::ENOTCONN);
            }
        }
        let (rights, ctl_err) = if self.sr(id).is_unix() {
            (self.parse_control(h, id, control)?, None)
        } else {
            (Vec::new(), self.parse_control(h, id, control).err())
        };
        self.ctl_err = ctl_err;
        let r = self.sendmsg_inner(h, id, data, &rights, to, flags, nonblock);
        self.ctl_err = None;
        if r.is_err() {
            for o in rights {
                self.unref(o);
            }
        }
        r
    }

    #[allow(clippy::too_many_arguments)] // one private dispatcher; the arguments are the call's
    fn sendmsg_inner(
        &mut self,
        h: usize,
        id: ObjId,
        data: &[u8],
        rights: &[ObjId],
        to: Option<&SockAddr>,
        flags: MsgFlags,
        nonblock: bool,
    ) -> Result<usize> {
        let s = self.sr(id);
        let oob = flags.contains(MsgFlags::OOB);
        if s.ty == SockType::STREAM {
            if s.is_unix() && oob && data.is_empty() {
                return Err(Errno::EOPNOTSUPP);
            }
            if s.is_unix() && to.is_some() {
                return Err(if s.st == St::Connected {
                    Errno::EISCONN
                } else {
                    Errno::EOPNOTSUPP
                });
            }
            self.eintr(h, !nonblock)?;
            return self.stream_send(h, id, data, rights.to_vec(), oob, nonblock);
        }
        if s.is_udp() {
            // Linux (inet_send_prepare): any send binds an unbound UDP socket first.
            let v4 = s.family == Family::INET;
            self.autobind(h, id)?;
            // udp_sendmsg (IPv4) rejects MSG_OOB first; udpv6_sendmsg never looks at
            // it, except for an IPv4 destination (which it hands to udp_sendmsg).
            if oob && v4 {
                return Err(Errno::EOPNOTSUPP);
            }
            return self.udp_send(h, id, data, to, oob);
        }
        let ty = s.ty;
        if oob && ty == SockType::SEQPACKET {
            if let Some(e) = take_err(self, id) {
                return Err(e);
            }
        }
        if oob {
            return Err(Errno::EOPNOTSUPP);
        }
        let s = self.sr(id);
        // Unix datagram or seqpacket (Linux's order: seqpacket looks at a pending
        // error and the connection first; then a shut-down sender is EPIPE).
        if s.ty == SockType::SEQPACKET {
            if let Some(e) = take_err(self, id) {
                return Err(e);
            }
            if self.sr(id).st != St::Connected {
                return Err(Errno::ENOTCONN);
            }
        }
        let s = self.sr(id);
        if let Some(a) = to.filter(|_| s.ty == SockType::DGRAM) {
            if !matches!(a, SockAddr::Unix(UnixAddr::Path(_) | UnixAddr::Abstract(_))) {
                return Err(Errno::EINVAL);
            }
        }
        if s.wr_shut {
            return Err(Errno::EPIPE);
        }
        let target = if s.ty == SockType::SEQPACKET {
            match s.peer_id {
                Some(p) if self.exists(p) => p,
                _ => return Err(Errno::EPIPE),
            }
        } else if let Some(a) = to {
            if !matches!(a, SockAddr::Unix(_)) {
                return Err(Errno::EINVAL);
            }
            let t = self.unix_lookup(h, a, s.ty)?;
            if self.sr(t).ty != s.ty {
                return Err(Errno::EPROTOTYPE);
            }
            // Linux's unix_may_send: a socket connected elsewhere takes nothing from us.
            // (A dead peer still counts until a send notices it.)
            if self.sr(t).peer_id.is_some_and(|p| p != id) {
                return Err(Errno::EPERM);
            }
            t
        } else {
            if let Some(e) = take_err(self, id) {
                return Err(e);
            }
            match self.sr(id).peer_id {
                Some(p) if self.exists(p) => {
                    // unix_may_send: our peer may have connected elsewhere since.
                    if self.sr(p).peer_id.is_some_and(|q| q != id) {
                        return Err(Errno::EPERM);
                    }
                    p
                }
                Some(_) => {
                    // Linux: the peer died; this send reports it, disconnects, and
                    // drops what the dead peer had sent us (unix_dgram_disconnected).
                    let s = self.s(id);
                    s.peer_id = None;
                    s.peer = None;
                    s.st = St::Idle;
                    s.rq_bytes = 0;
                    let dropped: Vec<Seg> = s.rq.drain(..).collect();
                    for seg in dropped {
                        for r in seg.rights {
                            self.unref(r);
                        }
                    }
                    return Err(Errno::ECONNREFUSED);
                }
                None => return Err(Errno::ENOTCONN),
            }
        };
        let s = self.sr(id);
        if s.wr_shut {
            return Err(Errno::EPIPE);
        }
        let sndbuf = s.opts.sndbuf.max(0) as usize;
        if data.len() + 32 > sndbuf {
            return Err(Errno::EMSGSIZE);
        }
        // An unbound sender has no address at all (recvfrom reports none).
        let from = s.local.clone();
        let timeout = timeout_of(s.opts.sndtimeo);
        self.eintr(h, !nonblock)?;
        let mut rights = Some(rights.to_vec());
        self.wait(nonblock, timeout, Errno::EAGAIN, |w| {
            if !w.exists(target) {
                return Some(Err(Errno::ECONNREFUSED));
            }
            let t = w.sr(target);
            if t.rd_shut {
                return Some(Err(Errno::EPIPE));
            }
            if !t.rq.is_empty() && t.rq_bytes + data.len() > sndbuf {
                return None;
            }
            let now = w.now;
            let t = w.s(target);
            t.rq_bytes += data.len();
            t.rq.push_back(Seg {
                data: data.to_vec(),
                off: 0,
                from: from.clone(),
                src: Some(id),
                rights: rights.take().unwrap_or_default(),
                ts: now,
            });
            w.capture_unix(id, target, data);
            Some(Ok(data.len()))
        })
    }

    fn udp_send(
        &mut self,
        h: usize,
        id: ObjId,
        data: &[u8],
        to: Option<&SockAddr>,
        oob: bool,
    ) -> Result<usize> {
        let dst = match to {
            Some(a) => self.check_ip_dest(id, a, true)?,
            None => match &self.sr(id).peer {
                Some(p) => canon(p),
                None => return Err(Errno::EDESTADDRREQ),
            },
        };
        if oob && dst.family() == Family::INET {
            return Err(Errno::EOPNOTSUPP);
        }
        self.check_bound_family(id, &dst)?;
        if let Some(e) = self.ctl_err.take() {
            return Err(e);
        }
        if let Some(e) = take_err(self, id) {
            return Err(e);
        }
        if self.sr(id).wr_shut {
            return Err(Errno::EPIPE);
        }
        if dst.port() == Some(0) {
            return Err(Errno::EINVAL);
        }
        let max = if dst.family() == Family::INET6 {
            65_527
        } else {
            65_507
        };
        if data.len() > max {
            return Err(Errno::EMSGSIZE);
        }
        self.autobind(h, id)?;
        self.send_dgram(id, &dst, data)?;
        Ok(data.len())
    }

    /// Free send space of a connected stream socket.
    fn stream_space(&self, id: ObjId) -> usize {
        let s = self.sr(id);
        let sndbuf = s.opts.sndbuf.max(0) as usize;
        if s.is_unix() {
            match s.peer_id.filter(|p| self.exists(*p)) {
                Some(p) => sndbuf.saturating_sub(self.sr(p).rq_bytes),
                None => 0,
            }
        } else {
            sndbuf.saturating_sub(s.sq.len() + s.inflight)
        }
    }

    /// Writes into a connected stream: partial writes, blocking, EPIPE, resets.
    pub(crate) fn stream_send(
        &mut self,
        h: usize,
        id: ObjId,
        data: &[u8],
        rights: Vec<ObjId>,
        oob: bool,
        nonblock: bool,
    ) -> Result<usize> {
        if self.sr(id).is_tcp() && self.sr(id).st == St::Connected && self.fault(h, |f| f.reset) {
            self.tr(h, "fault-reset", id as i64, 0);
            self.abort_keep(id);
            return Err(Errno::ECONNRESET);
        }
        let timeout = timeout_of(self.sr(id).opts.sndtimeo);
        let mut sent = 0usize;
        let mut rights = Some(rights);
        let r = self.wait(nonblock, timeout, Errno::EAGAIN, |w| {
            if !w.exists(id) {
                return Some(Err(Errno::EBADF));
            }
            let s = w.sr(id);
            if s.is_unix() {
                // Linux's unix_stream_sendmsg: no peer, then shutdown, then a dead peer.
                if s.st == St::Idle || s.st == St::Listen {
                    return Some(Err(Errno::ENOTCONN));
                }
                if s.wr_shut || s.st == St::Closed || s.peer_id.is_none_or(|p| !w.exists(p)) {
                    return Some(if sent > 0 {
                        Ok(sent)
                    } else {
                        Err(Errno::EPIPE)
                    });
                }
            }
            if let Some(e) = take_err(w, id) {
                return Some(if sent > 0 { Ok(sent) } else { Err(e) });
            }
            let s = w.sr(id);
            if s.wr_shut || s.st == St::Closed {
                return Some(if sent > 0 {
                    Ok(sent)
                } else {
                    Err(Errno::EPIPE)
                });
            }
            match s.st {
                St::Connected => {}
                St::SynSent => return None,
                _ => return Some(Err(Errno::EPIPE)),
            }
            if let Some(e) = w.ctl_err.take() {
                return Some(Err(e));
            }
            if data.is_empty() {
                // A zero-length stream write sends nothing, descriptors included.
                for r in rights.take().unwrap_or_default() {
                    w.unref(r);
                }
                return Some(Ok(0));
            }
            loop {
                let free = w.stream_space(id);
                if free == 0 {
                    return if sent > 0 && nonblock {
                        Some(Ok(sent))
                    } else {
                        None
                    };
                }
                let mut n = free.min(data.len() - sent);
                let mut short = false;
                if n > 1 && w.fault(h, |f| f.short_io) {
                    n = w.rng.range(1, n as u64 - 1) as usize;
                    short = true;
                    w.tr(h, "fault-short-write", id as i64, n as i64);
                }
                let chunk = &data[sent..sent + n];
                let last = sent + n == data.len();
                w.stream_put(id, chunk, oob && last, &mut rights);
                sent += n;
                if sent == data.len() || short {
                    return Some(Ok(sent));
                }
                if w.sr(id).st != St::Connected {
                    return Some(Ok(sent));
                }
            }
        });
        match r {
            Err(e) if sent > 0 && (e == Errno::EAGAIN || e == Errno::EDEADLK) => Ok(sent),
            r => r,
        }
    }

    /// Queues one chunk of a stream write: into the unix peer's queue, or the TCP send queue.
    fn stream_put(
        &mut self,
        id: ObjId,
        chunk: &[u8],
        urgent: bool,
        rights: &mut Option<Vec<ObjId>>,
    ) {
        if self.sr(id).is_unix() {
            let peer = self.sr(id).peer_id.expect("checked by the caller");
            let from = self.sr(id).local.clone();
            self.capture_unix(id, peer, chunk);
            let now = self.now;
            let p = self.s(peer);
            let bytes = chunk.to_vec();
            let urg = (urgent && !bytes.is_empty())
                .then(|| (p.rq_total + bytes.len() as u64 - 1, bytes[bytes.len() - 1]));
            p.rq_total += bytes.len() as u64;
            p.rq_bytes += bytes.len();
            let rights = rights.take().unwrap_or_default();
            if !bytes.is_empty() || !rights.is_empty() {
                p.rq.push_back(Seg {
                    data: bytes,
                    off: 0,
                    from,
                    src: Some(id),
                    rights,
                    ts: now,
                });
            }
            if let Some((at, b)) = urg {
                self.urgent_arrives(peer, at, b);
            }
        } else {
            let s = self.s(id);
            s.sq.extend(chunk);
            if urgent {
                s.snd_urg = Some(s.snd_nxt + s.sq.len() as u64 - 1);
            }
            self.pump(id);
        }
    }

    /// A reset from this end that keeps the socket (fault injection): both ends see ECONNRESET.
    fn abort_keep(&mut self, id: ObjId) {
        let (host, peer) = {
            let s = self.sr(id);
            (s.host, s.peer_id)
        };
        if let Some(p) = peer {
            if self.exists(p) {
                let ph = self.sr(p).host;
                self.transmit(crate::net::Packet::rst(host, ph, p));
            }
        }
        self.fail(id, 0);
    }

    pub(crate) fn op_recvmsg(
        &mut self,
        h: usize,
        fd: Fd,
        cap: usize,
        flags: MsgFlags,
    ) -> Result<Got> {
        let id = self.sock_of(h, fd)?;
        let nonblock = self.nonblock_of(id) || flags.contains(MsgFlags::DONTWAIT);
        let mut r = self.recv_inner(h, id, cap, flags, nonblock);
        if let Ok(g) = &mut r {
            // The sender's name as it is now (or as it was when it closed).
            if let Some(sid) = g.src {
                if self.exists(sid) {
                    g.addr = self.sr(sid).local.clone();
                } else if let Some(n) = self.dead_names.get(&sid) {
                    g.addr = Some(n.clone());
                }
            }
        }
        r
    }

    fn recv_inner(
        &mut self,
        h: usize,
        id: ObjId,
        cap: usize,
        flags: MsgFlags,
        nonblock: bool,
    ) -> Result<Got> {
        let peek = flags.contains(MsgFlags::PEEK);
        let s = self.sr(id);
        if s.is_tcp() && s.st == St::Listen {
            return Err(Errno::ENOTCONN);
        }
        if flags.contains(MsgFlags::OOB) && !s.is_udp() {
            // (udp_recvmsg ignores MSG_OOB; unix datagram sockets refuse it.)
            if s.ty != SockType::STREAM {
                return Err(Errno::EOPNOTSUPP);
            }
            if s.opts.oobinline {
                return Err(Errno::EINVAL);
            }
            let Some(b) = s.oob else {
                return Err(Errno::EINVAL);
            };
            let tcp = s.is_tcp();
            // tcp_recv_urg: a connection that ended without a FIN (reset) is ENOTCONN.
            if tcp && matches!(s.st, St::Closed | St::Idle) && !s.rd_eof {
                return Err(Errno::ENOTCONN);
            }
            if !peek {
                self.s(id).oob = None;
            }
            let mut g = Got::empty();
            // tcp_recv_urg / unix_stream_recv_urg: the message is flagged MSG_OOB.
            g.flags |= MsgFlags::OOB;
            if cap > 0 {
                // tcp_recv_urg: MSG_TRUNC counts the byte without copying it (unix copies).
                g.discard = flags.contains(MsgFlags::TRUNC) && tcp;
                g.data.push(b);
                g.ret = 1;
            } else if tcp {
                // tcp_recv_urg: no room for the byte is MSG_TRUNC and 0.
                g.flags |= MsgFlags::TRUNC;
            } else {
                // unix_stream_recv_urg returns the byte's length even when the
                // buffer had no room for it (nothing copied, no MSG_TRUNC).
                g.ret = 1;
            }
            return Ok(g);
        }
        if s.st == St::Listen {
            return Err(if s.is_unix() {
                Errno::EINVAL
            } else {
                Errno::ENOTCONN
            });
        }
        if s.ty == SockType::STREAM {
            if s.is_unix() && (s.st == St::Idle || s.st == St::SynSent) && s.rq.is_empty() {
                return Err(Errno::EINVAL);
            }
            if s.is_tcp() && s.st == St::Idle && s.rq.is_empty() && s.err == 0 && !s.rd_shut {
                return Err(Errno::ENOTCONN);
            }
            self.eintr(h, !nonblock)?;
            return self.stream_recv(h, id, cap, flags, nonblock);
        }
        if s.ty == SockType::SEQPACKET && s.st != St::Connected {
            return Err(Errno::ENOTCONN);
        }
        let timeout = timeout_of(s.opts.rcvtimeo);
        let seqpacket = s.ty == SockType::SEQPACKET;
        let unix = s.is_unix();
        self.eintr(h, !nonblock)?;
        self.wait(nonblock, timeout, Errno::EAGAIN, |w| {
            if !w.exists(id) {
                return Some(Err(Errno::EBADF));
            }
            // Linux's __skb_try_recv_datagram reports a pending error before data.
            if let Some(e) = take_err(w, id) {
                return Some(Err(e));
            }
            let s = w.s(id);
            if let Some(seg) = s.rq.front_mut() {
                let real = seg.data.len() - seg.off;
                let n = real.min(cap);
                let mut g = Got::empty();
                g.data = seg.data[seg.off..seg.off + n].to_vec();
                g.ret = if flags.contains(MsgFlags::TRUNC) {
                    real
                } else {
                    n
                };
                if real > cap {
                    g.flags |= MsgFlags::TRUNC;
                }
                g.src = seg.src;
                g.addr = if seqpacket && !unix {
                    None
                } else {
                    seg.from.clone()
                };
                g.ts = Some(seg.ts);
                if peek {
                    g.rights.clone_from(&seg.rights);
                    for &r in &g.rights.clone() {
                        if let Some(o) = w.objs.get_mut(&r) {
                            o.refs += 1;
                        }
                    }
                } else {
                    let seg = s.rq.pop_front().expect("front exists");
                    s.rq_bytes -= real;
                    g.rights = seg.rights;
                }
                return Some(Ok(g));
            }
            if let Some(e) = take_err(w, id) {
                return Some(Err(e));
            }
            let s = w.sr(id);
            // Linux: a shut-down datagram socket returns 0 only to a blocking reader
            // (a non-blocking one gets EAGAIN); seqpacket signals EOF either way.
            if (seqpacket && (s.rd_eof || s.rd_shut)) || (s.rd_shut && !nonblock) {
                return Some(Ok(Got::empty()));
            }
            None
        })
    }

    fn stream_recv(
        &mut self,
        h: usize,
        id: ObjId,
        cap: usize,
        flags: MsgFlags,
        nonblock: bool,
    ) -> Result<Got> {
        let peek = flags.contains(MsgFlags::PEEK);
        let waitall = flags.contains(MsgFlags::WAITALL) && !peek;
        let s = self.sr(id);
        // Linux's sock_rcvlowat: at least one byte, even for a zero-length read
        // (which then waits for data and returns 0 once some is there).
        let target = if waitall {
            cap
        } else {
            (s.opts.rcvlowat.max(1) as usize).min(cap)
        }
        .max(1);
        let timeout = timeout_of(s.opts.rcvtimeo);
        let mut g = Got::empty();
        // TCP discards with MSG_TRUNC; unix streams ignore the flag and copy.
        g.discard = flags.contains(MsgFlags::TRUNC) && s.is_tcp();
        let mut got = 0usize;
        let mut skipped = 0usize;
        let r = self.wait(nonblock, timeout, Errno::EAGAIN, |w| {
            if !w.exists(id) {
                return Some(Err(Errno::EBADF));
            }
            // A zero-length read returns 0 once data is queued. TCP counts any byte,
            // the urgent one included; a unix stream not its skipped OOB byte, and a
            // unix peek walks the whole queue, so an OOB byte at its end makes it wait.
            let zero_ready = {
                let s = w.sr(id);
                if s.is_tcp() {
                    s.rq_bytes > 0
                } else {
                    let last_is_oob = !s.opts.oobinline
                        && s.rq_bytes > 0
                        && s.mark == Some(s.rd_total + s.rq_bytes as u64 - 1);
                    s.stream_avail() > 0 && !(peek && last_is_oob)
                }
            };
            // A unix stream (Linux's manage_oob): a read, even of zero bytes, that
            // meets the urgent byte (or its placeholder once MSG_OOB read it) at the
            // head of the queue drops it, unless SO_OOBINLINE or MSG_PEEK.
            let zero_ready = if cap == 0 && !peek {
                let s = w.sr(id);
                if s.is_unix() && !s.opts.oobinline && s.mark == Some(s.rd_total) && s.rq_bytes > 0
                {
                    w.stream_skip_urgent(id);
                    w.sr(id).stream_avail() > 0
                } else {
                    zero_ready
                }
            } else {
                zero_ready
            };
            if cap == 0 && zero_ready {
                let s = w.s(id);
                if let Some(seg) = s.rq.front_mut() {
                    g.addr.clone_from(&seg.from);
                    g.src = seg.src;
                    // Linux detaches a segment's descriptors even on a zero-length read.
                    if !peek && seg.off == 0 {
                        g.rights = std::mem::take(&mut seg.rights);
                    }
                }
                if peek && s.is_unix() {
                    // A zero-length unix peek walks the queue to the first descriptors
                    // and reports them (unix_stream_read_generic).
                    if let Some(r) = Self::peek_rights_after(s, 0, false) {
                        for &x in &r {
                            if let Some(o) = w.objs.get_mut(&x) {
                                o.refs += 1;
                            }
                        }
                        g.rights = r;
                    }
                }
                return Some(Ok(()));
            }
            let mut stop = false;
            // Copy what is there, up to the urgent mark and a rights boundary
            // (Linux's tcp_recvmsg: stop at the mark once something was copied;
            // at the mark, skip the urgent byte unless SO_OOBINLINE).
            loop {
                if got >= cap {
                    break;
                }
                let s = w.sr(id);
                let off = if peek { got + skipped } else { 0 };
                let pos = s.rd_total + off as u64;
                let remaining = s.rq_bytes.saturating_sub(off);
                if remaining == 0 {
                    break;
                }
                if s.mark == Some(pos) {
                    if got > 0 {
                        stop = true;
                        break;
                    }
                    if !s.opts.oobinline {
                        if peek {
                            skipped += 1;
                        } else {
                            w.stream_skip_urgent(id);
                        }
                        continue;
                    }
                }
                let mut want = (cap - got).min(remaining);
                if let Some(m) = s.mark.filter(|&m| m > pos) {
                    want = want.min((m - pos) as usize);
                }
                if want > 1 && w.fault(h, |f| f.short_io) {
                    want = w.rng.range(1, want as u64 - 1) as usize;
                    w.tr(h, "fault-short-read", id as i64, want as i64);
                    stop = true;
                }
                let n = w.stream_take(id, want, off, peek, &mut g);
                got += n;
                if n == 0 || stop || !g.rights.is_empty() {
                    stop = true;
                    break;
                }
            }
            let s = w.sr(id);
            if s.is_unix() && !peek && got > 0 && got < target && !stop && s.rq_bytes == 0 {
                // unix_stream_read_generic: the queue ran dry short of the target
                // (MSG_WAITALL, SO_RCVLOWAT), so it calls sock_error, which clears a
                // pending error; the bytes read are returned and the error is gone.
                let _ = take_err(w, id);
            }
            let s = w.sr(id);
            if got >= target || (got > 0 && (stop || nonblock)) {
                return Some(Ok(()));
            }
            if got > 0 && (s.rd_eof || s.rd_shut || s.err != 0 || s.st == St::Closed) {
                return Some(Ok(()));
            }
            if got == 0 {
                // Unix reports a pending error before EOF; TCP reports a received FIN
                // first, then the error, then its own shutdown.
                if s.is_unix() || !s.rd_eof {
                    if let Some(e) = take_err(w, id) {
                        return Some(Err(e));
                    }
                }
                let s = w.sr(id);
                if s.rd_eof || s.rd_shut {
                    return Some(Ok(()));
                }
                let s = w.sr(id);
                if s.st == St::Closed {
                    return Some(Ok(()));
                }
                if s.is_tcp() && s.st == St::Idle {
                    return Some(Err(Errno::ENOTCONN));
                }
            }
            None
        });
        let r = match r {
            Err(e) if got > 0 && (e == Errno::EAGAIN || e == Errno::EDEADLK) => Ok(()),
            r => r,
        };
        // Reading opened the window: let the peer send what it has queued.
        if self.exists(id) && !peek {
            if let Some(p) = self.sr(id).peer_id {
                self.pump(p);
            }
        }
        r?;
        g.ret = got;
        Ok(g)
    }

    /// Takes up to `want` bytes from a stream's queue (from offset `skip` when peeking).
    fn stream_take(
        &mut self,
        id: ObjId,
        want: usize,
        skip: usize,
        peek: bool,
        g: &mut Got,
    ) -> usize {
        let s = self.s(id);
        let mut n = 0;
        if peek {
            let skip_from = skip;
            let mut skip = skip;
            let mut bumped = Vec::new();
            for seg in &s.rq {
                let len = seg.data.len() - seg.off;
                if skip >= len {
                    skip -= len;
                    continue;
                }
                // Unix streams never glue a segment carrying descriptors to others;
                // a peek reports (duplicates) the descriptors it reaches.
                if skip == 0 && seg.off == 0 && !seg.rights.is_empty() {
                    if n > 0 {
                        break;
                    }
                    g.rights.clone_from(&seg.rights);
                    bumped.clone_from(&seg.rights);
                }
                let take = (len - skip).min(want - n);
                if !g.discard {
                    g.data
                        .extend_from_slice(&seg.data[seg.off + skip..seg.off + skip + take]);
                }
                if g.addr.is_none() && g.src.is_none() {
                    g.addr.clone_from(&seg.from);
                    g.src = seg.src;
                }
                n += take;
                skip = 0;
                if n == want || !g.rights.is_empty() {
                    break;
                }
            }
            if n == want && n > 0 && g.rights.is_empty() && s.is_unix() {
                // unix_stream_read_generic: a peek goes on to the next segments
                // once the buffer is full, and reports the first descriptors it meets
                // (it stops at the urgent mark).
                if let Some(r) = Self::peek_rights_after(s, skip_from + n, true) {
                    g.rights.clone_from(&r);
                    bumped = r;
                }
            }
            for r in bumped {
                if let Some(o) = self.objs.get_mut(&r) {
                    o.refs += 1;
                }
            }
            return n;
        }
        while n < want {
            let Some(seg) = s.rq.front_mut() else { break };
            if seg.off == 0 && !seg.rights.is_empty() {
                if n > 0 {
                    break;
                }
                g.rights = std::mem::take(&mut seg.rights);
            }
            if g.addr.is_none() && g.src.is_none() {
                g.addr.clone_from(&seg.from);
                g.src = seg.src;
            }
            if g.ts.is_none() {
                g.ts = Some(seg.ts);
            }
            let len = seg.data.len() - seg.off;
            let take = len.min(want - n);
            if !g.discard {
                g.data.extend_from_slice(&seg.data[seg.off..seg.off + take]);
            }
            seg.off += take;
            n += take;
            if seg.off == seg.data.len() {
                s.rq.pop_front();
            }
            if !g.rights.is_empty() {
                break;
            }
        }
        s.rq_bytes -= n;
        s.rd_total += n as u64;
        if s.mark.is_some_and(|m| s.rd_total > m) {
            // Read past the mark: the urgent data is gone (Linux clears urg_data).
            s.mark = None;
            s.oob = None;
        }
        n
    }

    /// Removes the unix stream byte at stream offset `at` from the receive queue
    /// (a consumed urgent byte), renumbering the bytes after it; whether it was there.
    fn stream_remove_byte(&mut self, id: ObjId, at: u64) -> bool {
        let s = self.s(id);
        if at < s.rd_total {
            return false;
        }
        let mut skip = (at - s.rd_total) as usize;
        let mut found = None;
        for (i, seg) in s.rq.iter().enumerate() {
            let len = seg.data.len() - seg.off;
            if skip < len {
                found = Some((i, seg.off + skip));
                break;
            }
            skip -= len;
        }
        let Some((i, k)) = found else { return false };
        let seg = &mut s.rq[i];
        seg.data.remove(k);
        if seg.data.len() == seg.off && seg.rights.is_empty() {
            s.rq.remove(i);
        }
        s.rq_bytes -= 1;
        s.rq_total -= 1;
        true
    }

    /// The descriptors of the first segment that starts `from` bytes or more past the
    /// read position of a unix stream (before the urgent mark when `stop_at_mark`).
    fn peek_rights_after(
        s: &crate::world::Sock,
        from: usize,
        stop_at_mark: bool,
    ) -> Option<Vec<ObjId>> {
        let mut start = 0usize;
        for seg in &s.rq {
            let len = seg.data.len() - seg.off;
            if start >= from {
                let at = s.rd_total + start as u64;
                // (The urgent byte may lie between `from` and this segment.)
                let lo = s.rd_total + from as u64;
                if stop_at_mark && s.mark.is_some_and(|m| m >= lo && m < at + len as u64) {
                    return None;
                }
                if seg.off == 0 && !seg.rights.is_empty() {
                    return Some(seg.rights.clone());
                }
            }
            start += len;
        }
        None
    }

    /// Consumes the urgent byte at the read position without copying it.
    fn stream_skip_urgent(&mut self, id: ObjId) {
        let mut g = Got::empty();
        g.discard = true;
        self.stream_take(id, 1, 0, false, &mut g);
    }

    /// Urgent data arrived: `offset` is the urgent byte's position in the stream.
    /// A previous urgent byte becomes ordinary data, unless the reader sits on it
    /// (then it is dropped, as Linux's `tcp_check_urg` does).
    ///
    /// A unix stream differs (Linux's `queue_oob`): the previous urgent byte becomes
    /// ordinary data wherever it is, unless `MSG_OOB` already read it; then it was
    /// only a zero-length placeholder in the queue, and it goes.
    pub(crate) fn urgent_arrives(&mut self, id: ObjId, mut offset: u64, byte: u8) {
        let s = self.sr(id);
        if let Some(old) = s.mark {
            if s.is_unix() {
                if s.oob.is_none()
                    && old < offset
                    && !s.opts.oobinline
                    && self.stream_remove_byte(id, old)
                {
                    offset -= 1;
                }
            } else if old < offset && old == s.rd_total && !s.opts.oobinline && s.rq_bytes > 0 {
                self.stream_skip_urgent(id);
            }
        }
        let s = self.s(id);
        s.mark = Some(offset);
        s.oob = Some(byte);
    }

    /// Builds the control data of a receive; installs received descriptors.
    pub(crate) fn recv_control(
        &mut self,
        h: usize,
        id: Option<ObjId>,
        g: &mut Got,
        clen: usize,
        flags: MsgFlags,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let want_ts = id.is_some_and(|i| self.exists(i) && self.sr(i).opts.timestamp);
        if want_ts {
            if let Some(ts) = g.ts {
                let mut d = Vec::with_capacity(16);
                d.extend_from_slice(&((ts / 1_000_000_000) as i64).to_ne_bytes());
                d.extend_from_slice(&(((ts % 1_000_000_000) / 1000) as i64).to_ne_bytes());
                let m = cmsg::Cmsg {
                    level: libc::SOL_SOCKET,
                    ty: libc::SCM_TIMESTAMP,
                    data: d,
                };
                if out.len() + cmsg::cmsg_space(16) <= clen {
                    cmsg::encode_into(&mut out, &m);
                    g.ctl_ts = Some(ts);
                } else {
                    g.flags |= MsgFlags::CTRUNC;
                }
            }
        }
        let rights = std::mem::take(&mut g.rights);
        if !rights.is_empty() {
            let room = clen.saturating_sub(out.len());
            let fdmax = if room >= cmsg::cmsg_len(0) {
                (room - cmsg::cmsg_len(0)) / 4
            } else {
                0
            };
            let cloexec = flags.0 & MSG_CMSG_CLOEXEC != 0;
            let mut fds = Vec::new();
            for (i, &r) in rights.iter().enumerate() {
                if i < fdmax {
                    match self.install(h, r, cloexec) {
                        Ok(fd) => {
                            fds.push(fd);
                            // The in-flight reference became the descriptor's.
                            if let Some(o) = self.objs.get_mut(&r) {
                                o.refs -= 1;
                            }
                            continue;
                        }
                        Err(_) => g.flags |= MsgFlags::CTRUNC,
                    }
                } else {
                    g.flags |= MsgFlags::CTRUNC;
                }
                self.unref(r);
            }
            if !fds.is_empty() {
                let start = out.len();
                cmsg::encode_into(&mut out, &cmsg::Cmsg::rights(&fds));
                out.truncate((start + cmsg::cmsg_space(fds.len() * 4)).min(clen));
                g.ctl_fds = fds;
            }
        }
        out
    }

    pub(crate) fn op_sendfile(
        &mut self,
        h: usize,
        sock: Fd,
        file: Fd,
        offset: i64,
        len: usize,
    ) -> Result<usize> {
        let fobj = self.obj_of(h, file)?;
        let id = self.sock_of(h, sock)?;
        let data = match self.objs.get(&fobj).map(|o| &o.kind) {
            Some(Kind::File(d)) => d.clone(),
            _ => return Err(Errno::EINVAL),
        };
        if offset < 0 {
            return Err(Errno::EINVAL);
        }
        let start = (offset as usize).min(data.len());
        let end = start.saturating_add(len).min(data.len());
        let chunk = &data[start..end];
        let nonblock = self.nonblock_of(id);
        if chunk.is_empty() {
            Ok(0)
        } else if self.sr(id).ty == SockType::STREAM {
            self.eintr(h, !nonblock)?;
            self.stream_send(h, id, chunk, Vec::new(), false, nonblock)
        } else {
            self.sendmsg_inner(h, id, chunk, &[], None, MsgFlags::NONE, nonblock)
        }
    }

    // ---- readiness and state ---------------------------------------------------------

    /// poll(2) bits of one object: (in, out, pri, hup, err).
    fn readiness(&self, id: ObjId) -> (bool, bool, bool, bool, bool) {
        let s = match self.objs.get(&id).map(|o| &o.kind) {
            Some(Kind::Sock(s)) => s,
            _ => return (true, true, false, false, false),
        };
        let err = s.err != 0;
        let lowat = s.opts.rcvlowat.max(1) as usize;
        let mut hup = s.wr_shut && (s.rd_shut || s.rd_eof);
        let mut inb = s.rd_eof || s.rd_shut;
        let mut out = false;
        if s.ty == SockType::STREAM || s.ty == SockType::SEQPACKET {
            match s.st {
                St::Listen => inb |= !s.acceptq.is_empty(),
                St::Idle | St::Closed => hup = true,
                St::SynSent => {}
                St::Connected => {
                    // (A unix stream stays readable with only its OOB byte queued.)
                    let avail = if s.ty == SockType::STREAM && !s.is_unix() {
                        s.stream_avail()
                    } else {
                        s.rq_bytes
                    };
                    inb |= avail >= lowat || (!s.rq.is_empty() && s.ty == SockType::SEQPACKET);
                    out = s.wr_shut || self.stream_space(id) > 0;
                }
            }
            if s.is_unix() && s.st == St::Connected && s.peer_id.is_none_or(|p| !self.exists(p)) {
                hup = true;
            }
        } else {
            inb |= !s.rq.is_empty();
            out = true;
            if s.is_unix() {
                if let Some(p) = s.peer_id.filter(|p| self.exists(*p)) {
                    let t = self.sr(p);
                    out = t.rq.is_empty() || t.rq_bytes < s.opts.sndbuf.max(0) as usize;
                }
            }
        }
        if s.st == St::Listen {
            // inet_csk_listen_poll / unix_poll: only pending connections count.
            // (unix_poll still reports its shutdown flags on a listener.)
            let hup = s.is_unix() && s.rd_shut && s.wr_shut;
            let rd = s.is_unix() && s.rd_shut;
            return (!s.acceptq.is_empty() || rd || hup, false, false, hup, err);
        }
        if hup {
            inb = true;
        }
        (inb, out, s.oob.is_some(), hup, err)
    }

    pub(crate) fn op_poll(
        &mut self,
        h: usize,
        fd: Fd,
        interest: Interest,
        timeout_ms: i32,
    ) -> Result<bool> {
        let id = self.obj_of(h, fd)?;
        let check = |w: &World| {
            let (i, o, p, hup, err) = w.readiness(id);
            (interest.read && (i || hup || err))
                || (interest.write && (o || hup || err))
                || (interest.except && p)
        };
        if timeout_ms <= 0 {
            Ok(check(self))
        } else {
            self.eintr(h, true)?;
            let t = timeout_ms as Nanos * MS;
            match self.wait(false, Some(t), Errno::ETIMEDOUT, |w| {
                if w.obj_of(h, fd) != Ok(id) {
                    return Some(Err(Errno::EBADF));
                }
                check(w).then_some(Ok(true))
            }) {
                Err(Errno::ETIMEDOUT) => Ok(false),
                r => r,
            }
        }
    }

    pub(crate) fn op_atmark(&mut self, h: usize, fd: Fd) -> Result<bool> {
        let id = self.sock_of(h, fd)?;
        let s = self.sr(id);
        if s.is_unix() && s.st == St::Listen {
            // unix_ioctl: a queue headed by an empty (embryo) skb and no OOB skb is "at the mark".
            return Ok(!s.acceptq.is_empty());
        }
        if s.ty != SockType::STREAM {
            // udp_ioctl does not know SIOCATMARK; unix_ioctl refuses it off streams.
            return Err(if s.is_unix() {
                Errno::EOPNOTSUPP
            } else {
                Errno::ENOTTY
            });
        }
        Ok(s.mark == Some(s.rd_total))
    }

    pub(crate) fn op_getsockname(&mut self, h: usize, fd: Fd) -> Result<SockAddr> {
        let id = self.sock_of(h, fd)?;
        let s = self.sr(id);
        Ok(match (&s.local, s.family) {
            (Some(a), _) => a.clone(),
            (None, Family::INET) => SockAddr::v4(Ipv4Addr::UNSPECIFIED, 0),
            (None, Family::INET6) => SockAddr::v6(Ipv6Addr::UNSPECIFIED, 0),
            (None, _) => SockAddr::Unix(UnixAddr::Unnamed),
        })
    }

    pub(crate) fn op_getpeername(&mut self, h: usize, fd: Fd) -> Result<SockAddr> {
        let id = self.sock_of(h, fd)?;
        let s = self.sr(id);
        if s.st != St::Connected {
            return Err(Errno::ENOTCONN);
        }
        if s.is_unix() {
            // The peer's name now (it may have bound after connecting), else the last known.
            if let Some(p) = s.peer_id {
                let name = if self.exists(p) {
                    self.sr(p).local.clone()
                } else {
                    self.dead_names.get(&p).cloned()
                };
                return Ok(name.unwrap_or(SockAddr::Unix(UnixAddr::Unnamed)));
            }
        }
        s.peer.clone().ok_or(Errno::ENOTCONN)
    }

    // ---- options -------------------------------------------------------------------

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

    pub(crate) fn op_multicast(
        &mut self,
        h: usize,
        fd: Fd,
        op: McastOp,
        req: &McastRequest,
    ) -> Result<()> {
        let id = self.sock_of(h, fd)?;
        let s = self.sr(id);
        if s.is_unix() {
            return Err(Errno::EOPNOTSUPP);
        }
        let v4_iface = |ip: Ipv4Addr| -> Result<u32> {
            if ip.is_unspecified() {
                Ok(0)
            } else if ip.is_loopback() {
                Ok(1)
            } else if ip == host_v4(h) {
                Ok(2)
            } else {
                Err(Errno::ENODEV)
            }
        };
        let ip_of = |a: &SockAddr| a.as_socket_addr().map(|x| canon_ip(x.ip()));
        let (group, ifindex, source): (IpAddr, u32, Option<IpAddr>) = match req {
            McastRequest::V4 { group, interface } => {
                if matches!(op, McastOp::Block | McastOp::Unblock) {
                    return Err(Errno::EINVAL);
                }
                (IpAddr::V4(*group), v4_iface(*interface)?, None)
            }
            McastRequest::V6 { group, interface } => {
                if matches!(op, McastOp::Block | McastOp::Unblock) {
                    return Err(Errno::EINVAL);
                }
                if s.family != Family::INET6 {
                    return Err(Errno::ENOPROTOOPT);
                }
                if *interface > 2 {
                    return Err(Errno::ENODEV);
                }
                (IpAddr::V6(*group), *interface, None)
            }
            McastRequest::SourceV4 {
                group,
                source,
                interface,
            } => (
                IpAddr::V4(*group),
                v4_iface(*interface)?,
                Some(IpAddr::V4(*source)),
            ),
            McastRequest::Source {
                group,
                source,
                interface,
            } => {
                let (Some(g), Some(sr)) = (ip_of(group), ip_of(source)) else {
                    return Err(Errno::EINVAL);
                };
                if g.is_ipv6() && s.family != Family::INET6 {
                    return Err(Errno::EINVAL);
                }
                if *interface > 2 {
                    return Err(Errno::ENODEV);
                }
                (g, *interface, Some(sr))
            }
        };
        // Only the any-source requests (IP_ADD_MEMBERSHIP, MCAST_JOIN_GROUP and
        // their IPv6 forms) are EPROTO on TCP; source-specific ones are accepted.
        if s.is_tcp() && source.is_none() {
            return Err(Errno::EPROTO);
        }
        if !group.is_multicast() {
            return Err(Errno::EINVAL);
        }
        let s = self.s(id);
        let pos = s.mcast.iter().position(|m| m.group == group);
        match (op, source, pos) {
            (McastOp::Join, None, Some(_)) => return Err(Errno::EADDRINUSE),
            (McastOp::Join, None, None) => s.mcast.push(Membership {
                group,
                ifindex,
                include: Default::default(),
                exclude: Default::default(),
                empty_include: false,
            }),
            (McastOp::Join, Some(src), Some(p)) => {
                // ip_mc_source: an any-source membership that blocks nothing may
                // switch to include mode; one that blocks sources may not.
                if s.mcast[p].include.is_empty() && !s.mcast[p].exclude.is_empty() {
                    return Err(Errno::EINVAL);
                }
                s.mcast[p].empty_include = false;
                // (A source already in the list is EADDRNOTAVAIL.)
                if !s.mcast[p].include.insert(src) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
            }
            (McastOp::Join, Some(src), None) => s.mcast.push(Membership {
                group,
                ifindex,
                include: [src].into_iter().collect(),
                exclude: Default::default(),
                empty_include: false,
            }),
            // ip_mc_source / ip6_mc_source: a source request needs a prior join.
            (McastOp::Leave | McastOp::Block | McastOp::Unblock, Some(_), None) => {
                return Err(Errno::EINVAL)
            }
            (McastOp::Leave, _, None) => return Err(Errno::EADDRNOTAVAIL),
            (McastOp::Leave, None, Some(p)) => {
                s.mcast.remove(p);
            }
            (McastOp::Leave, Some(src), Some(p)) => {
                if !s.mcast[p].exclude.is_empty() {
                    return Err(Errno::EINVAL);
                }
                if s.mcast[p].include.is_empty() {
                    // ip_mc_source: an empty any-source membership switches to include
                    // mode (hearing nothing) before the missing source fails the call
                    // (campaign seed 8002).
                    s.mcast[p].empty_include = true;
                    return Err(Errno::EADDRNOTAVAIL);
                }
                if !s.mcast[p].include.remove(&src) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
                if s.mcast[p].include.is_empty() {
                    s.mcast.remove(p);
                }
            }
            (McastOp::Block | McastOp::Unblock, _, None) => return Err(Errno::EADDRNOTAVAIL),
            (McastOp::Block | McastOp::Unblock, None, Some(_)) => return Err(Errno::EINVAL),
            (McastOp::Block, Some(src), Some(p)) => {
                if !s.mcast[p].include.is_empty() {
                    return Err(Errno::EINVAL);
                }
                // (An empty include mode switches back to exclude mode.)
                s.mcast[p].empty_include = false;
                if !s.mcast[p].exclude.insert(src) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
            }
            (McastOp::Unblock, Some(src), Some(p)) => {
                // ip_mc_source: a request of the other filter mode is EINVAL.
                if !s.mcast[p].include.is_empty() {
                    return Err(Errno::EINVAL);
                }
                s.mcast[p].empty_include = false;
                if !s.mcast[p].exclude.remove(&src) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
            }
        }
        Ok(())
    }

    /// `SIOCGIFADDR` on the simulated interfaces.
    pub(crate) fn op_interface_ipv4(&mut self, h: usize, fd: Fd, name: &[u8]) -> Result<Ipv4Addr> {
        self.sock_of(h, fd)?;
        if name.len() >= 16 || name.contains(&0) {
            return Err(Errno::ENXIO);
        }
        match name {
            b"lo" => Ok(Ipv4Addr::LOCALHOST),
            b"eth0" => Ok(host_v4(h)),
            _ => Err(Errno::ENODEV),
        }
    }

    /// Crash: every socket and descriptor of the host vanishes without a packet.
    pub(crate) fn crash(&mut self, h: usize) {
        self.tr(h, "crash", 0, 0);
        self.hosts[h].up = false;
        let objs: Vec<ObjId> = self.hosts[h].objs.iter().copied().collect();
        for id in objs {
            self.objs.remove(&id);
            self.dead_host.insert(id, h);
        }
        let fds: Vec<ObjId> = self.hosts[h].fds.values().map(|s| s.obj).collect();
        for id in fds {
            // Files (and sockets of other hosts received by SCM_RIGHTS) lose this reference.
            if self.objs.contains_key(&id) {
                self.unref(id);
            }
        }
        let host = &mut self.hosts[h];
        host.objs.clear();
        host.fds.clear();
        host.free_fds.clear();
        host.fd_top = 3;
        host.listeners.clear();
        host.time_wait.clear();
        host.unix_paths.clear();
        host.unix_abstract.clear();
        host.ports.clear();
    }

    pub(crate) fn restart(&mut self, h: usize) {
        self.tr(h, "restart", 0, 0);
        self.hosts[h].up = true;
    }

    pub(crate) fn host_v6(&self, h: usize) -> Ipv6Addr {
        host_v6(h)
    }
}
