//! Names and connections: `bind` (conflicts, `SO_REUSEADDR`/`SO_REUSEPORT`, `TIME_WAIT`),
//! automatic binding (ephemeral ports, unix autobind), `connect` (TCP, UDP, unix),
//! `listen`, `accept`, `getsockname` and `getpeername`.

use std::net::{Ipv4Addr, Ipv6Addr};

use llsocket_api::{Accepted, Errno, Family, Fd, Result, SockAddr, SockType, UnixAddr};

use super::{check_unix_len, take_err, timeout_of, wrong_family, MS};
use crate::addr::{as_family, canon, canon_ip};
use crate::types::ObjId;
use crate::world::{Ev, Seg, St, World};

impl World {
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
    pub(super) fn autobind(&mut self, h: usize, id: ObjId) -> Result<()> {
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
    pub(super) fn unix_lookup(&self, h: usize, addr: &SockAddr, ty: SockType) -> Result<ObjId> {
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
                let rights: Vec<ObjId> = s.rq.drain().flat_map(Seg::into_rights).collect();
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
            if dip.is_multicast() || crate::addr::is_broadcast(h, dip) {
                return Err(Errno::ENETUNREACH);
            }
            if self.route(h, dip).is_none() && !crate::addr::in_sim_net(dip) {
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
    pub(super) fn check_ip_dest(
        &self,
        id: ObjId,
        addr: &SockAddr,
        sendto: bool,
    ) -> Result<SockAddr> {
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
    pub(super) fn check_bound_family(&self, id: ObjId, dst: &SockAddr) -> Result<()> {
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
    pub(super) fn reset_saddr(&mut self, id: ObjId) {
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
        let dropped: Vec<Seg> = s.rq.drain().collect();
        for seg in dropped {
            for r in seg.into_rights() {
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
}
