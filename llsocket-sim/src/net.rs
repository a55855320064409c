//! The wire: packets, links with faults, TCP's handshake, ordered reliable delivery with
//! retransmission, resets, and UDP delivery (unicast, broadcast, multicast).
//!
//! TCP is modelled at the level a socket API can observe: a SYN/SYN-ACK handshake
//! (SYN retransmitted at 1, 3, 7, 15, 31, 63 s, `ETIMEDOUT` at 127 s as Linux's
//! `tcp_syn_retries = 6`), data segments with sequence numbers reassembled in
//! order at the receiver (so loss, duplication and reordering are invisible to
//! the byte stream and show only as delay), a window equal to the receiver's free
//! `SO_RCVBUF`, FIN and RST. A reliable packet that keeps getting lost is
//! retransmitted after 200 ms, doubling, 8 times; then the connection fails with
//! `ETIMEDOUT` (Linux's `tcp_retries2` takes ~15 minutes instead).

use std::net::{IpAddr, Ipv6Addr};

use llsocket_api::{Errno, Family, SockAddr, SockType};

use crate::addr::{as_family, canon, canon_ip, in_sim_net, is_broadcast, segment, segment_hosts};
use crate::capture::{self, MAX_CHUNK, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG};
use crate::faults::LinkConfig;
use crate::rules::{Fate, PacketInfo, Proto, TcpFlags};
use crate::types::{Body, Nanos, ObjId, Packet};
use crate::world::{Ev, Seg, St, World};

const MS: Nanos = 1_000_000;
const SEC: Nanos = 1_000_000_000;
/// Retransmission attempts of a reliable packet before the connection times out.
const MAX_RETX: u32 = 8;
/// SYN retransmissions before `connect` gives up (`tcp_syn_retries`).
pub(crate) const SYN_RETRIES: u32 = 6;

impl World {
    /// Sends a packet: at once over an instant link, else through the link's faults.
    pub(crate) fn transmit(&mut self, p: Packet) {
        if self.instant(p.src_h, p.dst_h) {
            self.capture_packet(&p);
            let fate = self.judge(&p, 0);
            if fate.pass() && self.held.is_empty() {
                self.arrive(p);
            } else {
                self.deliver_fated(p, 0, 0, Vec::new(), fate, true);
            }
        } else {
            self.send_attempt(p, 0);
        }
    }

    /// One transmission attempt over a faulty (or slow) link.
    pub(crate) fn send_attempt(&mut self, p: Packet, attempt: u32) {
        let (a, b) = (p.src_h, p.dst_h);
        if !self.hosts[a].up {
            return;
        }
        if let Body::Data { from, .. } | Body::Fin { from, .. } = p.body {
            // (A FIN may be the last word of a connection already closed both ways.)
            let fin = matches!(p.body, Body::Fin { .. });
            if !self.exists(from) || (self.sr(from).st != St::Connected && !fin) {
                return;
            }
        }
        self.capture_packet(&p);
        let cfg = self.link(a, b);
        let lost = self.links.is_cut(a, b) || !self.hosts[b].up || self.rng.chance(cfg.loss);
        if lost {
            self.tr(a, "lost", p.kind(), i64::from(attempt));
            self.lost(p, attempt);
            return;
        }
        let mut d = self.sample_latency(cfg.latency);
        if self.rng.chance(cfg.reorder) {
            let extra = self.rng.range(1, (2 * d).max(MS));
            self.tr(a, "reorder", p.kind(), extra as i64);
            d += extra;
        }
        let mut dups = Vec::new();
        if self.rng.chance(cfg.duplicate) {
            let extra = self.rng.range(0, MS);
            self.tr(a, "dup", p.kind(), extra as i64);
            dups.push(extra);
        }
        let fate = self.judge(&p, attempt);
        self.deliver_fated(p, attempt, d, dups, fate, false);
    }

    /// Delivers `p` after `d` (and its duplicates `extra` later), as the rules' `fate`
    /// says. `inline`: the link is instant, so what is not delayed arrives now, inside
    /// the sending call.
    fn deliver_fated(
        &mut self,
        p: Packet,
        attempt: u32,
        d: Nanos,
        dups: Vec<Nanos>,
        fate: Fate,
        inline: bool,
    ) {
        let (a, b) = (p.src_h, p.dst_h);
        if fate.drop {
            self.lost(p, attempt);
            return;
        }
        let at = self.now + d + fate.delay.as_nanos() as Nanos;
        for extra in dups {
            self.schedule(at + extra, Ev::Arrive(p.clone()));
        }
        let mut batch = vec![p];
        for _ in 0..fate.copies {
            batch.push(batch[0].clone());
        }
        if fate.hold {
            let held = self.held.entry((a, b)).or_default();
            let first = held.is_empty();
            held.extend(batch);
            if first {
                let limit = self.now + crate::rules::HOLD_LIMIT.as_nanos() as Nanos;
                self.schedule(limit.max(at), Ev::Release(a, b));
            }
            return;
        }
        // Packets held back on this link go right behind this one.
        if let Some(held) = self.held.remove(&(a, b)) {
            for h in held {
                self.tr(a, "rule-release", h.kind(), 0);
                batch.push(h);
            }
        }
        let now = inline && at == self.now;
        for q in batch {
            if now {
                self.arrive(q);
            } else {
                self.schedule(at, Ev::Arrive(q));
            }
        }
    }

    /// Delivers what is still held back on the link `a` → `b` (its time limit passed).
    pub(crate) fn release_held(&mut self, a: usize, b: usize) {
        if let Some(held) = self.held.remove(&(a, b)) {
            for h in held {
                self.tr(a, "rule-release", h.kind(), 1);
                self.arrive(h);
            }
        }
    }

    /// A packet was lost: a reliable one is sent again later, or its connection
    /// times out.
    fn lost(&mut self, p: Packet, attempt: u32) {
        if p.reliable() {
            if attempt >= MAX_RETX {
                self.give_up(&p);
            } else {
                let at = self.now + ((200 * MS) << attempt);
                self.schedule(at, Ev::Retx(p, attempt + 1));
            }
        }
    }

    /// A reliable packet was lost too often: its connection times out.
    fn give_up(&mut self, p: &Packet) {
        if let Body::Data { from, .. } | Body::Fin { from, .. } = p.body {
            if self.exists(from) {
                let host = self.sr(from).host;
                self.tr(host, "timeout", from as i64, 0);
                self.fail(from, libc::ETIMEDOUT);
            }
        }
    }

    /// A TCP connection closed both ways (our FIN sent, theirs received) is over:
    /// the socket is `TCP_CLOSE` and an automatically chosen port is released, as
    /// Linux's `tcp_done` does (no `TIME_WAIT` here).
    pub(crate) fn maybe_done(&mut self, id: ObjId) {
        let s = self.sr(id);
        if s.is_tcp()
            && s.st == St::Connected
            && s.fin_sent
            && s.rd_eof
            && s.sq.is_empty()
            && s.inflight == 0
            && !s.orphan
        {
            self.enter_time_wait(id);
            self.s(id).st = St::Closed;
            self.release_port(id);
        }
    }

    /// Unbinds a TCP socket whose port was picked automatically (not by `bind`).
    pub(crate) fn release_port(&mut self, id: ObjId) {
        let s = self.sr(id);
        if !s.is_tcp() || s.port_locked || s.listener.is_some() || s.unhashed {
            return;
        }
        let host = s.host;
        if let Some(port) = s.local.as_ref().and_then(|a| a.port()) {
            if let Some(set) = self.hosts[host].ports.get_mut(&(false, port)) {
                set.remove(&id);
                if set.is_empty() {
                    self.hosts[host].ports.remove(&(false, port));
                }
            }
            // getsockname keeps showing the old port (Linux's inet_sport), but the
            // socket may be bound again.
            let s = self.s(id);
            s.unhashed = true;
            s.listen_port = false;
        }
    }

    /// Ends a connection with an error.
    pub(crate) fn fail(&mut self, id: ObjId, err: i32) {
        let s = self.s(id);
        s.err = err;
        s.st = St::Closed;
        s.sq.clear();
        s.inflight = 0;
        s.peer_id = None;
        s.ooo.clear();
        self.release_port(id);
        self.reap(id);
        if self.exists(id) && self.sr(id).orphan {
            self.destroy(id);
        }
    }

    /// A packet reaches its destination host.
    pub(crate) fn arrive(&mut self, p: Packet) {
        let b = p.dst_h;
        // (Both ends may change: an ICMP refusal reaches the sender at once.)
        self.tasks.touch(p.src_h);
        self.tasks.touch(b);
        if !self.hosts[b].up {
            self.tr(b, "lost-down", p.kind(), 0);
            if p.reliable() {
                let at = self.now + 200 * MS;
                self.schedule(at, Ev::Retx(p, 1));
            }
            return;
        }
        match p.body {
            Body::Syn {
                client,
                gen,
                src,
                dst,
            } => self.on_syn(p.src_h, b, client, gen, src, dst),
            Body::SynAck { client, gen, child } => {
                let ok = self.exists(client) && {
                    let c = self.sr(client);
                    c.st == St::SynSent && c.conn_gen == gen
                };
                // A duplicate of the SYN-ACK that already established this connection (a
                // link that duplicates packets) is an old segment: Linux answers it with an
                // ACK and changes nothing; it must not reset the connection.
                let dup = !ok && self.exists(client) && {
                    let c = self.sr(client);
                    c.conn_gen == gen && c.peer_id == Some(child)
                };
                if ok {
                    let c = self.s(client);
                    c.st = St::Connected;
                    c.peer_id = Some(child);
                    let t = c.syn_timer.take();
                    self.cancel(t);
                    self.tr(b, "established", client as i64, child as i64);
                    // The client's ACK completes the child's handshake. Only the
                    // passive side sends a FIN for a shutdown(SHUT_WR) made before
                    // (Linux's TCP_SYN_RECV step; tcp_finish_connect does not).
                    self.established(child);
                } else if dup {
                    self.tr(b, "dup-synack", client as i64, child as i64);
                } else {
                    self.transmit(Packet::rst(b, p.src_h, child));
                }
            }
            Body::Data { from, to, seq, .. } | Body::Fin { from, to, seq } => {
                let alive = self.exists(to) && {
                    let s = self.sr(to);
                    (s.st == St::Connected || s.st == St::SynSent) && s.peer_id == Some(from)
                };
                if !alive {
                    // Linux: a segment for a closed socket is answered with a reset.
                    self.tr(b, "rst-closed", to as i64, from as i64);
                    self.transmit(Packet::rst(b, p.src_h, from));
                    // The sender's in-flight count no longer matters: it gets the reset.
                    return;
                }
                let cur = self.sr(to).rcv_nxt;
                let (rd_shut, fin_sent, orphan) = {
                    let s = self.sr(to);
                    (s.rd_shut, s.fin_sent, s.orphan)
                };
                if ((rd_shut && fin_sent) || orphan)
                    && matches!(&p.body, Body::Data { data, .. } if !data.is_empty())
                {
                    // RFC 1122 (and Linux in FIN_WAIT): new data for a socket that shut
                    // down both ways resets the connection. tcp_urg has already taken
                    // the segment's urgent byte (MSG_OOB is then ENOTCONN, not EINVAL).
                    if let Body::Data {
                        data, urg: Some(i), ..
                    } = &p.body
                    {
                        let at = self.sr(to).rq_total + *i as u64;
                        self.urgent_arrives(to, at, data[*i]);
                    }
                    self.tr(b, "rst-shutdown", to as i64, from as i64);
                    self.fail(to, libc::ECONNRESET);
                    self.transmit(Packet::rst(b, p.src_h, from));
                    return;
                }
                if seq < cur {
                    self.tr(b, "dup-drop", to as i64, seq as i64);
                    return;
                }
                if seq > cur {
                    self.s(to).ooo.insert(seq, p);
                    return;
                }
                self.deliver_stream(p);
                loop {
                    if !self.exists(to) {
                        break;
                    }
                    let next = {
                        let s = self.s(to);
                        let k = s.rcv_nxt;
                        s.ooo.remove(&k)
                    };
                    match next {
                        Some(q) => self.deliver_stream(q),
                        None => break,
                    }
                }
            }
            Body::Rst { to } => {
                if self.exists(to) {
                    self.on_rst(to);
                }
            }
            Body::Dgram {
                from,
                src,
                dst,
                data,
            } => self.deliver_dgram(p.src_h, b, from, src, dst, data),
        }
    }

    /// Whether a packet from host `a` to host `b` would arrive the moment it is sent
    /// with nothing else to do on the way: an instant link to a live host, no capture,
    /// no packet rule for the link, nothing held back by one (see [`World::transmit`]).
    #[inline]
    pub(crate) fn straight_through(&self, a: usize, b: usize) -> bool {
        // (`World::instant` with `b` known to be up.)
        self.capture.is_none()
            && self.held.is_empty()
            && self.hosts[b].up
            && (a == b
                || self.links.all_default()
                || (!self.links.is_cut(a, b) && self.link(a, b) == LinkConfig::default()))
            && !self.rules.applies(a, b)
    }

    /// Whether a data packet from `from` (host `a`) with sequence number `seq` would
    /// be delivered in order the moment it is sent: [`World::straight_through`], a
    /// receiver that takes it (the checks of [`World::arrive`]), nothing held out of
    /// order. The sender then calls [`World::deliver_data`] without building a packet
    /// (after counting the change on both hosts, as `arrive` does).
    #[inline]
    pub(crate) fn in_order_now(
        &self,
        a: usize,
        b: usize,
        from: ObjId,
        to: ObjId,
        seq: u64,
    ) -> bool {
        if !self.straight_through(a, b) {
            return false;
        }
        match self.objs.get(&to).map(|o| &o.kind) {
            Some(crate::world::Kind::Sock(s)) => {
                (s.st == St::Connected || s.st == St::SynSent)
                    && s.peer_id == Some(from)
                    && !((s.rd_shut && s.fin_sent) || s.orphan)
                    && seq == s.rcv_nxt
                    && s.ooo.is_empty()
            }
            _ => false,
        }
    }

    /// In-order stream data or FIN at its receiver.
    fn deliver_stream(&mut self, p: Packet) {
        match p.body {
            Body::Data {
                from,
                to,
                data,
                urg,
                ..
            } => self.deliver_data(from, to, data, urg),
            Body::Fin { from, to, .. } => {
                let s = self.s(to);
                s.rd_eof = true;
                let host = s.host;
                self.tr(host, "fin", to as i64, from as i64);
                self.maybe_done(to);
                self.reap(to);
                if self.exists(from) {
                    self.maybe_done(from);
                    self.reap(from);
                }
            }
            _ => {}
        }
    }

    /// In-order stream data at its receiver `to` (urgent byte at index `urg`).
    pub(crate) fn deliver_data(
        &mut self,
        from: ObjId,
        to: ObjId,
        data: Vec<u8>,
        urg: Option<usize>,
    ) {
        let len = data.len();
        if self.exists(from) {
            let f = self.s(from);
            f.inflight = f.inflight.saturating_sub(len);
        }
        let now = self.now;
        let s = self.s(to);
        s.rcv_nxt += len as u64;
        let urg = urg.map(|i| (s.rq_total + i as u64, data[i]));
        let n = data.len();
        if n > 0 {
            s.rq_total += n as u64;
            s.rq_bytes += n;
            s.rq.push_back(Seg::plain(data, now));
        }
        let host = s.host;
        if let Some((at, b)) = urg {
            self.urgent_arrives(to, at, b);
        }
        self.tr(host, "data", to as i64, len as i64);
        if self.exists(from) {
            self.maybe_done(from);
            self.reap(from);
        }
    }

    fn on_rst(&mut self, id: ObjId) {
        let (host, st, orphan, rd_eof) = {
            let s = self.sr(id);
            (s.host, s.st, s.orphan, s.rd_eof)
        };
        self.tr(host, "rst", id as i64, 0);
        match st {
            St::SynSent => {
                let s = self.s(id);
                s.err = libc::ECONNREFUSED;
                s.st = St::Idle;
                s.peer_id = None;
                // tcp_done: SHUTDOWN_MASK (recv then returns 0, send EPIPE).
                s.rd_shut = true;
                s.wr_shut = true;
                let t = s.syn_timer.take();
                self.cancel(t);
                self.release_port(id);
            }
            St::Connected => {
                if orphan {
                    self.destroy(id);
                    return;
                }
                let e = if rd_eof {
                    libc::EPIPE
                } else {
                    libc::ECONNRESET
                };
                self.fail(id, e);
            }
            _ => {}
        }
    }

    /// [`World::pump`] for a socket that has something to send — queued bytes or a FIN
    /// not yet sent — and nothing for one that has not (a receive's window update: most
    /// often the peer has sent everything already).
    #[inline]
    pub(crate) fn pump_pending(&mut self, id: ObjId) {
        if matches!(self.objs.get(&id).map(|o| &o.kind),
            Some(crate::world::Kind::Sock(s)) if !s.sq.is_empty() || (s.fin_pending && !s.fin_sent))
        {
            self.pump(id);
        }
    }

    /// Moves a TCP sender's queued bytes onto the wire, as far as the peer's window allows.
    pub(crate) fn pump(&mut self, id: ObjId) {
        loop {
            if !self.exists(id) {
                return;
            }
            let s = self.sr(id);
            if s.st != St::Connected || !s.is_tcp() {
                return;
            }
            let Some(peer) = s.peer_id else { return };
            let (src_h, from_seq) = (s.host, s.snd_nxt);
            if s.sq.is_empty() {
                if s.fin_pending && !s.fin_sent {
                    let dst_h = self.peer_host(peer, src_h);
                    let s = self.s(id);
                    s.fin_sent = true;
                    s.fin_first = !s.rd_eof;
                    self.tr(src_h, "send-fin", id as i64, 0);
                    self.maybe_done(id);
                    self.transmit(Packet {
                        src_h,
                        dst_h,
                        body: Body::Fin {
                            from: id,
                            to: peer,
                            seq: from_seq,
                        },
                    });
                    self.reap(id);
                }
                return;
            }
            let window = if self.exists(peer) {
                let p = self.sr(peer);
                (p.opts.rcvbuf.max(1) as usize)
                    .saturating_sub(p.rq_bytes)
                    .saturating_sub(s.inflight)
            } else {
                1460
            };
            // Loopback moves 64 KiB segments; a link between hosts an Ethernet MSS.
            let dst_h = self.peer_host(peer, src_h);
            let mss = if dst_h == src_h { 65_536 } else { 1460 };
            let n = window.min(s.sq.len()).min(mss);
            if n == 0 {
                return;
            }
            let mut data = self.buffer();
            let s = self.s(id);
            take_front(&mut s.sq, n, &mut data);
            let seq = s.snd_nxt;
            let urg = match s.snd_urg {
                Some(u) if u >= seq && u < seq + n as u64 => {
                    s.snd_urg = None;
                    Some((u - seq) as usize)
                }
                _ => None,
            };
            s.snd_nxt += n as u64;
            s.inflight += n;
            if urg.is_none() && self.in_order_now(src_h, dst_h, id, peer, seq) {
                // What `transmit` and `arrive` would do, without building the packet.
                self.tasks.touch(src_h);
                self.tasks.touch(dst_h);
                self.deliver_data(id, peer, data, None);
                continue;
            }
            self.transmit(Packet {
                src_h,
                dst_h,
                body: Body::Data {
                    from: id,
                    to: peer,
                    seq,
                    data,
                    urg,
                },
            });
        }
    }

    /// The host of a peer socket (its last known host when it is gone: the
    /// packet then meets a missing socket and draws a reset).
    fn peer_host(&self, peer: ObjId, fallback: usize) -> usize {
        match self.objs.get(&peer).map(|o| &o.kind) {
            Some(crate::world::Kind::Sock(s)) => s.host,
            _ => self.dead_host.get(&peer).copied().unwrap_or(fallback),
        }
    }

    /// A connection just became established through `SYN_RECV` (an accepted child,
    /// or a socket connected to itself): a shutdown(SHUT_WR) made before (on the
    /// listener, whose flags the child inherits, or on the socket itself; it set the
    /// flag and failed with ENOTCONN) now sends its FIN, as Linux's
    /// `tcp_rcv_state_process` does. An active open does not (`tcp_finish_connect`).
    fn established(&mut self, id: ObjId) {
        if !self.exists(id) {
            return;
        }
        let s = self.sr(id);
        if s.st == St::Connected && s.wr_shut && !s.fin_pending && !s.fin_sent {
            self.s(id).fin_pending = true;
            self.pump(id);
        }
    }

    /// Sends (or re-sends) a SYN.
    pub(crate) fn send_syn(&mut self, client: ObjId, dst: &SockAddr) {
        let s = self.sr(client);
        let (h, gen) = (s.host, s.conn_gen);
        let src = canon(s.local.as_ref().expect("bound before SYN"));
        let dst = canon(dst);
        let ip = dst.as_socket_addr().map(|a| a.ip()).expect("IP address");
        self.ev(h, "syn")
            .int(crate::trace::Name::SOCK, client as i64)
            .addr(crate::trace::Name::FROM, &src)
            .addr(crate::trace::Name::TO, &dst)
            .end();
        if src == dst && self.route(h, ip) == Some(h) {
            // A socket connecting to its own address: TCP simultaneous open with itself.
            let s = self.s(client);
            s.st = St::Connected;
            s.peer_id = Some(client);
            let t = s.syn_timer.take();
            self.cancel(t);
            self.tr(h, "self-connect", client as i64, 0);
            self.established(client);
            return;
        }
        match self.route(h, ip) {
            Some(b) => self.transmit(Packet {
                src_h: h,
                dst_h: b,
                body: Body::Syn {
                    client,
                    gen,
                    src,
                    dst,
                },
            }),
            None => self.tr(h, "no-route", client as i64, 0),
        }
    }

    pub(crate) fn syn_timer(&mut self, sock: ObjId, gen: u32, attempt: u32) {
        if !self.exists(sock) {
            return;
        }
        let s = self.sr(sock);
        if s.st != St::SynSent || s.conn_gen != gen || s.peer_id.is_some() {
            return;
        }
        let host = s.host;
        self.s(sock).syn_timer = None;
        if attempt >= SYN_RETRIES {
            self.tr(host, "syn-timeout", sock as i64, 0);
            let s = self.s(sock);
            s.err = libc::ETIMEDOUT;
            s.st = St::Idle;
            s.rd_shut = true;
            s.wr_shut = true;
            self.release_port(sock);
            return;
        }
        let dst = self
            .sr(sock)
            .peer
            .clone()
            .expect("connecting socket has a peer");
        self.send_syn(sock, &dst);
        let at = self.now + (SEC << (attempt + 1));
        let key = self.schedule(
            at,
            Ev::SynTimer {
                sock,
                gen,
                attempt: attempt + 1,
            },
        );
        if self.exists(sock) && self.sr(sock).st == St::SynSent {
            self.s(sock).syn_timer = Some(key);
        } else {
            self.cancel(Some(key));
        }
    }

    /// A SYN at host `b`: a new child in the listener's queue, a reset, or nothing (full backlog).
    fn on_syn(
        &mut self,
        a: usize,
        b: usize,
        client: ObjId,
        gen: u32,
        src: SockAddr,
        dst: SockAddr,
    ) {
        let fresh = self.exists(client) && {
            let c = self.sr(client);
            c.st == St::SynSent && c.conn_gen == gen && c.peer_id.is_none()
        };
        if !fresh {
            return;
        }
        let Some(l) = self.find_listener(b, &dst) else {
            self.tr(b, "refuse", client as i64, 0);
            self.transmit(Packet::rst(b, a, client));
            return;
        };
        let ls = self.sr(l);
        if ls.acceptq.len() > ls.backlog {
            self.tr(b, "syn-drop-backlog", l as i64, ls.acceptq.len() as i64);
            return;
        }
        let (fam, proto, opts, locked) = (ls.family, ls.proto, ls.opts.clone(), ls.port_locked);
        // sk_clone_lock copies the listener's shutdown flags into the child (set by a
        // shutdown() that failed with ENOTCONN before listen()).
        let (rd_shut, wr_shut) = (ls.rd_shut, ls.wr_shut);
        let nonblock = self.nonblock_of(l);
        let child = self.new_sock(b, fam, llsocket_api::SockType::STREAM, proto, nonblock);
        {
            let c = self.s(child);
            c.st = St::Connected;
            c.local = Some(as_family(&dst, fam));
            c.peer = Some(as_family(&src, fam));
            c.peer_id = Some(client);
            c.listener = Some(l);
            c.opts = opts;
            // tcp_v4_syn_recv_sock / tcp_v6_syn_recv_sock: the multicast TTL (hops)
            // of the child is the SYN's TTL (hop limit), 64 by default.
            match canon(&dst) {
                SockAddr::V4(_) => {
                    c.opts.mttl4 = 64;
                    if fam == Family::INET6 {
                        c.opts.mhops6 = 64;
                    }
                }
                _ => c.opts.mhops6 = 64,
            }
            c.port_locked = locked;
            c.rd_shut = rd_shut;
            c.wr_shut = wr_shut;
        }
        if let Some(port) = dst.port() {
            self.hosts[b]
                .ports
                .entry((false, port))
                .or_default()
                .insert(child);
        }
        self.s(l).acceptq.push_back(child);
        self.s(client).peer_id = Some(child);
        self.tr(b, "syn-accept", l as i64, child as i64);
        self.transmit(Packet {
            src_h: b,
            dst_h: a,
            body: Body::SynAck { client, gen, child },
        });
    }

    /// Whether a bound local address accepts packets for canonical destination `dst`.
    fn addr_accepts(local: &SockAddr, family: Family, dst: &SockAddr) -> bool {
        let (Some(l), Some(d)) = (canon(local).as_socket_addr(), dst.as_socket_addr()) else {
            return false;
        };
        if l.port() != d.port() {
            return false;
        }
        if family == Family::INET && d.is_ipv6() {
            return false;
        }
        let lip = canon_ip(l.ip());
        if lip.is_unspecified() {
            // An INET6 wildcard is dual-stack; an INET wildcard takes only IPv4.
            return family == Family::INET6 || lip.is_ipv4() == d.is_ipv4();
        }
        lip == d.ip()
    }

    fn find_listener(&mut self, b: usize, dst: &SockAddr) -> Option<ObjId> {
        let port = dst.port()?;
        let set = self.hosts[b].listeners.get(&port)?;
        let mut exact = Vec::new();
        let mut wild = Vec::new();
        for &id in set {
            let s = self.sr(id);
            if s.st != St::Listen {
                continue;
            }
            let Some(local) = &s.local else { continue };
            if !Self::addr_accepts(local, s.family, dst) {
                continue;
            }
            if local.is_unspecified_ip() {
                wild.push(id);
            } else {
                exact.push(id);
            }
        }
        let pool = if exact.is_empty() { wild } else { exact };
        match pool.len() {
            0 => None,
            1 => Some(pool[0]),
            n => Some(pool[self.rng.range(0, n as u64 - 1) as usize]),
        }
    }

    /// A datagram at host `b`.
    fn deliver_dgram(
        &mut self,
        a: usize,
        b: usize,
        from: ObjId,
        src: SockAddr,
        dst: SockAddr,
        data: Vec<u8>,
    ) {
        let Some(port) = dst.port() else { return };
        let dip = dst.as_socket_addr().map(|x| x.ip());
        let group = dip.filter(|ip| ip.is_multicast());
        let bcast = dip.is_some_and(|ip| is_broadcast(b, ip));
        let sip = src.as_socket_addr().map(|x| x.ip());
        let mut exact = Vec::new();
        let mut wild = Vec::new();
        let mut connected = Vec::new();
        if let Some(set) = self.hosts[b].ports.get(&(true, port)) {
            for &id in set {
                let s = self.sr(id);
                let Some(local) = &s.local else { continue };
                let lc = canon(local);
                let lip = lc.as_socket_addr().map(|x| canon_ip(x.ip()));
                let family_ok = !(s.family == Family::INET && dst.family() == Family::INET6);
                if !family_ok {
                    continue;
                }
                if let Some(g) = group {
                    // __udp_is_mcast_sock: the local address is the wildcard or the
                    // group, a connected socket only hears its peer, and
                    // ip_mc_sf_allow applies the socket's own filter for the group;
                    // a socket that did not join it hears it too (IP_MULTICAST_ALL,
                    // on by default) once the host has joined (checked below).
                    let addr_ok = lip.is_some_and(|l| l.is_unspecified() || Some(l) == Some(g));
                    let peer_ok = s.peer.as_ref().is_none_or(|p| canon(p) == src);
                    // IP_MULTICAST_ALL is on by default for AF_INET sockets only
                    // (inet_create; inet6_create leaves it off), so an AF_INET6 socket
                    // hears an IPv4 group only if it joined it (found by the campaign).
                    let allowed = match s.mcast.iter().find(|m| m.group == g) {
                        Some(m) => sip.is_some_and(|si| m.accepts(si)),
                        None => !(g.is_ipv4() && s.family == Family::INET6),
                    };
                    if addr_ok && peer_ok && allowed {
                        exact.push(id);
                    }
                    continue;
                }
                if bcast {
                    if lip.is_some_and(|l| l.is_unspecified() || Some(l) == dip) {
                        exact.push(id);
                    }
                    continue;
                }
                if !Self::addr_accepts(local, s.family, &dst) {
                    continue;
                }
                match &s.peer {
                    Some(p) if canon(p) == src => connected.push(id),
                    Some(_) => {}
                    None if local.is_unspecified_ip() => wild.push(id),
                    None => exact.push(id),
                }
            }
        }
        let targets: Vec<ObjId> = if let Some(g) = group {
            // The interface takes the datagram only if some socket on the host
            // joined the group with a filter that accepts the source
            // (ip_check_mc_rcu: the union of the members' filters).
            let joined = sip.is_some_and(|si| {
                self.hosts[b].objs.iter().any(|&o| {
                    self.exists(o)
                        && self
                            .sr(o)
                            .mcast
                            .iter()
                            .any(|m| m.group == g && m.accepts(si))
                })
            });
            if joined {
                exact
            } else {
                Vec::new()
            }
        } else if bcast {
            exact
        } else {
            let pool = [connected, exact, wild]
                .into_iter()
                .find(|v| !v.is_empty())
                .unwrap_or_default();
            match pool.len() {
                0 => Vec::new(),
                1 => pool,
                n => vec![pool[self.rng.range(0, n as u64 - 1) as usize]],
            }
        };
        if targets.is_empty() {
            self.tr(b, "port-unreach", i64::from(port), 0);
            // (Linux matches the ICMP error to a socket connected to this very destination.)
            let to_peer =
                self.exists(from) && self.sr(from).peer.as_ref().is_some_and(|p| canon(p) == dst);
            if group.is_none() && !bcast && to_peer {
                // ICMP port unreachable reaches a connected sender.
                if self.instant(b, a) {
                    self.s(from).err = libc::ECONNREFUSED;
                }
            }
            return;
        }
        let now = self.now;
        for id in targets {
            let s = self.s(id);
            let len = data.len();
            if s.rq_bytes + len > s.opts.rcvbuf.max(0) as usize && !s.rq.is_empty() {
                let host = s.host;
                self.tr(host, "rcvbuf-drop", id as i64, len as i64);
                continue;
            }
            let (fam, host) = (s.family, s.host);
            let mut b = self.buffer();
            b.extend_from_slice(&data);
            let seg = self.seg_with(b, now, Some(as_family(&src, fam)), None, Vec::new());
            let s = self.s(id);
            s.rq_bytes += len;
            s.rq.push_back(seg);
            self.tr(host, "dgram", id as i64, len as i64);
        }
    }

    /// Sends a UDP datagram from socket `id` (already bound) to canonical `dst`.
    pub(crate) fn send_dgram(
        &mut self,
        id: ObjId,
        dst: &SockAddr,
        data: &[u8],
    ) -> Result<(), Errno> {
        let s = self.sr(id);
        let h = s.host;
        let local = s.local.clone().expect("bound before sending");
        let dip = dst.as_socket_addr().map(|x| x.ip()).ok_or(Errno::EINVAL)?;
        let lip = local
            .as_socket_addr()
            .map(|x| x.ip())
            .ok_or(Errno::EINVAL)?;
        let mut src_ip = self.source_ip(h, lip, dip);
        // A multicast send leaves by IP_MULTICAST_IF (its address is the source);
        // through `lo` it stays on this host.
        let mut local_only = false;
        if dip.is_multicast() && canon_ip(lip).is_unspecified() {
            match dip {
                IpAddr::V4(_) if !s.opts.mif4.is_unspecified() => {
                    src_ip = IpAddr::V4(s.opts.mif4);
                    local_only = s.opts.mif4.is_loopback();
                }
                IpAddr::V6(_) if s.opts.mif6 == 1 => {
                    src_ip = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
                    local_only = true;
                }
                _ => {}
            }
        }
        let src = canon(&SockAddr::from(std::net::SocketAddr::new(
            src_ip,
            local.port().unwrap_or(0),
        )));
        let mk = |b: usize| Packet {
            src_h: h,
            dst_h: b,
            body: Body::Dgram {
                from: id,
                src: src.clone(),
                dst: dst.clone(),
                data: data.to_vec(),
            },
        };
        if dip.is_multicast() {
            let (lp, ttl) = match dip {
                IpAddr::V4(_) => (s.opts.mloop4, s.opts.mttl4),
                IpAddr::V6(_) => (s.opts.mloop6, s.opts.mhops6),
            };
            // Through `lo` the datagram comes back by the device itself, whatever
            // IP_MULTICAST_LOOP and the TTL say (only other devices loop a copy).
            // (No multicast routing: the datagram stays on the sender's segment.)
            for b in segment_hosts(segment(h), self.hosts.len()) {
                if (b == h && (lp || local_only)) || (b != h && ttl >= 1 && !local_only) {
                    self.transmit(mk(b));
                }
            }
            return Ok(());
        }
        if is_broadcast(h, dip) {
            if !s.opts.broadcast {
                return Err(Errno::EACCES);
            }
            for b in segment_hosts(segment(h), self.hosts.len()) {
                self.transmit(mk(b));
            }
            return Ok(());
        }
        match self.route(h, dip) {
            Some(b) => self.transmit(mk(b)),
            None => {
                if !in_sim_net(dip) {
                    return Err(Errno::ENETUNREACH);
                }
                self.tr(h, "no-host", id as i64, 0);
            }
        }
        Ok(())
    }
}

/// Moves the first `n` bytes of a queue to `out` (copied slice-wise, not byte by byte).
fn take_front(q: &mut std::collections::VecDeque<u8>, n: usize, out: &mut Vec<u8>) {
    out.reserve(n);
    let (a, b) = q.as_slices();
    let from_a = n.min(a.len());
    out.extend_from_slice(&a[..from_a]);
    out.extend_from_slice(&b[..n - from_a]);
    q.drain(..n);
}

// ---- the packet as on a wire: capture and rules --------------------------------

/// An address as (IP, port), if it is an IP one.
fn ip_port(a: Option<&SockAddr>) -> Option<(IpAddr, u16)> {
    a.and_then(|a| a.as_socket_addr())
        .map(|s| (s.ip(), s.port()))
}

/// A packet as it would be on a wire: addresses, TCP header fields, payload.
struct Wire<'a> {
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    /// TCP: sequence number, acknowledgement number, flags, and the offset of the
    /// urgent byte in the payload; `None`: UDP.
    tcp: Option<(u32, u32, u8, Option<usize>)>,
    payload: &'a [u8],
}

impl World {
    /// `p` as on a wire (`None` for a datagram with a non-IP address, which cannot be).
    fn wire<'p>(&self, p: &'p Packet) -> Option<Wire<'p>> {
        let host_ip = |h: usize| IpAddr::V4(crate::addr::host_v4(h));
        let (src_h, dst_h) = (p.src_h, p.dst_h);
        // The two ends of a stream packet: the sender's names, else the host's.
        let ends = |from: Option<ObjId>, to: Option<ObjId>| {
            let sock = from.filter(|&id| self.exists(id)).map(|id| self.sr(id));
            let recv = to.filter(|&id| self.exists(id)).map(|id| self.sr(id));
            let src = sock
                .and_then(|s| ip_port(s.local.as_ref()))
                .or_else(|| recv.and_then(|s| ip_port(s.peer.as_ref())))
                .unwrap_or((host_ip(src_h), 0));
            let dst = sock
                .and_then(|s| ip_port(s.peer.as_ref()))
                .or_else(|| recv.and_then(|s| ip_port(s.local.as_ref())))
                .unwrap_or((host_ip(dst_h), 0));
            // (The peer's SYN, and its FIN once received, take a sequence number.)
            let ack = sock.map_or(0, |s| {
                (s.rcv_nxt as u32).wrapping_add(1 + u32::from(s.rd_eof))
            });
            (src, dst, ack)
        };
        let none: &'p [u8] = &[];
        Some(match &p.body {
            Body::Syn { src, dst, .. } => Wire {
                src: ip_port(Some(src))?,
                dst: ip_port(Some(dst))?,
                tcp: Some((0, 0, TCP_SYN, None)),
                payload: none,
            },
            Body::SynAck { client, child, .. } => {
                let (src, dst, _) = ends(Some(*child), Some(*client));
                Wire {
                    src,
                    dst,
                    tcp: Some((0, 1, TCP_SYN | TCP_ACK, None)),
                    payload: none,
                }
            }
            Body::Data {
                from,
                to,
                seq,
                data,
                urg,
            } => {
                let (src, dst, ack) = ends(Some(*from), Some(*to));
                let s = (*seq as u32).wrapping_add(1);
                let flags = TCP_PSH | TCP_ACK | if urg.is_some() { TCP_URG } else { 0 };
                Wire {
                    src,
                    dst,
                    tcp: Some((s, ack, flags, *urg)),
                    payload: data,
                }
            }
            Body::Fin { from, to, seq } => {
                let (src, dst, ack) = ends(Some(*from), Some(*to));
                let s = (*seq as u32).wrapping_add(1);
                Wire {
                    src,
                    dst,
                    tcp: Some((s, ack, TCP_FIN | TCP_ACK, None)),
                    payload: none,
                }
            }
            Body::Rst { to } => {
                let (dst, src, _) = ends(Some(*to), None);
                Wire {
                    src,
                    dst,
                    tcp: Some((0, 0, TCP_RST, None)),
                    payload: none,
                }
            }
            Body::Dgram { src, dst, data, .. } => Wire {
                src: ip_port(Some(src))?,
                dst: ip_port(Some(dst))?,
                tcp: None,
                payload: data,
            },
        })
    }

    /// Records `p` as it leaves its host, if capturing.
    pub(crate) fn capture_packet(&mut self, p: &Packet) {
        if self.capture.is_none() {
            return;
        }
        let Some(wire) = self.wire(p) else { return };
        let now = self.now;
        let cap = self.capture.as_mut().expect("checked above");
        // Split what one IP packet cannot hold; the urgent pointer goes with its byte.
        let data = wire.payload;
        let mut off = 0;
        loop {
            let n = (data.len() - off).min(MAX_CHUNK);
            let tcp = wire.tcp.map(|(seq, ack, flags, urg)| {
                let seq = seq.wrapping_add(off as u32);
                match urg {
                    Some(u) if (off..off + n).contains(&u) => {
                        (seq, ack, flags, (u - off + 1) as u16)
                    }
                    _ => (seq, ack, flags & !TCP_URG, 0),
                }
            });
            cap.push(
                now,
                &capture::Seg {
                    src: wire.src,
                    dst: wire.dst,
                    tcp,
                    payload: &data[off..off + n],
                },
            );
            off += n;
            if off >= data.len() {
                break;
            }
        }
    }

    /// The rules' verdict on `p` (its `attempt`th retransmission), as a trace event
    /// when it is not a plain pass.
    pub(crate) fn judge(&mut self, p: &Packet, attempt: u32) -> Fate {
        let (a, b) = (p.src_h, p.dst_h);
        if !self.rules.applies(a, b) {
            return Fate::default();
        }
        let Some(wire) = self.wire(p) else {
            return Fate::default();
        };
        let info = PacketInfo {
            time: std::time::Duration::from_nanos(self.now),
            src_host: &self.hosts[a].name,
            dst_host: &self.hosts[b].name,
            src: std::net::SocketAddr::new(wire.src.0, wire.src.1),
            dst: std::net::SocketAddr::new(wire.dst.0, wire.dst.1),
            proto: if wire.tcp.is_some() {
                Proto::Tcp
            } else {
                Proto::Udp
            },
            flags: TcpFlags(wire.tcp.map_or(0, |t| t.2)),
            payload: wire.payload,
            attempt,
        };
        // The rules and the generator are fields apart from what `info` borrows.
        let fate = self.rules.judge(a, b, &info, &mut self.rng);
        let kind = p.kind();
        if fate.drop {
            self.tr(a, "rule-drop", kind, i64::from(attempt));
        } else {
            if !fate.delay.is_zero() {
                self.tr(a, "rule-delay", kind, fate.delay.as_nanos() as i64);
            }
            if fate.copies > 0 {
                self.tr(a, "rule-dup", kind, i64::from(fate.copies));
            }
            if fate.hold {
                self.tr(a, "rule-hold", kind, 0);
            }
        }
        fate
    }

    /// Records a unix-domain message from socket `from` to socket `to`, if capturing
    /// (see the module docs for the representation).
    pub(crate) fn capture_unix(&mut self, from: ObjId, to: ObjId, data: &[u8]) {
        if self.capture.is_none() {
            return;
        }
        let addr = |w: &World, id: ObjId| {
            let h = if w.exists(id) {
                w.sr(id).host
            } else {
                w.dead_host.get(&id).copied().unwrap_or(0)
            } as u32;
            let o = id as u32;
            IpAddr::V6(Ipv6Addr::new(
                0xfd75,
                0x6e69,
                0x7800,
                0,
                (h >> 16) as u16,
                h as u16,
                (o >> 16) as u16,
                o as u16,
            ))
        };
        let ty = if self.exists(from) {
            self.sr(from).ty
        } else {
            SockType::STREAM
        };
        let port = ty.raw() as u16;
        let (src, dst) = (addr(self, from), addr(self, to));
        let now = self.now;
        let cap = self.capture.as_mut().expect("checked above");
        let mut off = 0;
        loop {
            let n = (data.len() - off).min(MAX_CHUNK);
            cap.push(
                now,
                &capture::Seg {
                    src: (src, port),
                    dst: (dst, port),
                    tcp: None,
                    payload: &data[off..off + n],
                },
            );
            off += n;
            if off >= data.len() {
                break;
            }
        }
    }
}
