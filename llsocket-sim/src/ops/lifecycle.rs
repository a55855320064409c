//! Socket life cycle: `socket`, `socketpair`, `dup`, `close` (with `SO_LINGER`),
//! `shutdown`, the unix garbage collector for sockets referenced only from in-flight
//! `SCM_RIGHTS`, and a host's crash and restart.

use llsocket_api::{Errno, Family, Fd, Protocol, Result, Shutdown, SockAddr, SockType, UnixAddr};

use super::{MS, SOCK_CLOEXEC, SOCK_NONBLOCK};
use crate::types::{Nanos, ObjId};
use crate::world::{Ev, St, World};

impl World {
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

    /// Linux's unix garbage collector: unix sockets referenced only by `SCM_RIGHTS`
    /// descriptors queued in other such sockets (or their own queue), and not
    /// reachable from any other queue, are closed.
    pub(crate) fn unix_gc(&mut self) {
        self.gc_scheduled = false;
        let mut queued: std::collections::BTreeMap<ObjId, u32> = Default::default();
        let unix: Vec<ObjId> = self
            .unix_socks
            .iter()
            .copied()
            .filter(|&o| self.exists(o))
            .collect();
        for &u in &unix {
            for seg in &self.sr(u).rq {
                for &r in seg.rights() {
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
                for &r in seg.rights() {
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
                .flat_map(|s| s.rights().iter().copied())
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
            let mut keep = crate::world::SegQueue::default();
            for mut seg in s.rq.drain() {
                if seg.rights().is_empty() {
                    keep.push_back(seg);
                } else {
                    held.append(&mut seg.take_rights());
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

    /// Crash: every socket and descriptor of the host vanishes without a packet.
    pub(crate) fn crash(&mut self, h: usize) {
        self.tr(h, "crash", 0, 0);
        self.hosts[h].up = false;
        let objs: Vec<ObjId> = self.hosts[h].objs.iter().copied().collect();
        for id in objs {
            self.objs.remove(&id);
            self.unix_socks.remove(&id);
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
}
