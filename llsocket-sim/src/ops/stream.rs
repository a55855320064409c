//! The stream data path of TCP and unix stream sockets: send (send buffer, window,
//! `MSG_OOB`), receive (`MSG_PEEK`, `MSG_WAITALL`, `MSG_TRUNC`, `SO_RCVLOWAT`, the
//! urgent mark and byte, descriptors riding on unix stream data) and `sendfile`.

use llsocket_api::{Errno, Fd, MsgFlags, Result, SockType};

use super::{take_err, timeout_of, Got};
use crate::types::{Nanos, ObjId};
use crate::world::{Kind, Seg, St, World};

impl World {
    /// Free send space of a connected stream socket.
    pub(super) fn stream_space(&self, id: ObjId) -> usize {
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

    /// The common case of a TCP `send` done at once, or `None` (nothing done) when
    /// [`World::stream_send`] must decide: a connected socket with nothing queued, all
    /// of `data` fitting its send buffer, the peer's window and one segment, a packet
    /// that would go straight through ([`World::straight_through`]) to a peer that takes
    /// it in order, no fault switch that could fire, not the continuation of a wait
    /// parked in task mode (that one waits as it had begun to). The
    /// outcome is then the same as `stream_send`'s (and `pump`'s): every byte delivered.
    #[inline]
    pub(crate) fn tcp_send_now(&mut self, h: usize, id: ObjId, data: &[u8]) -> Option<usize> {
        // (`id` may be any object: the caller need not have checked it is a socket.)
        let si = self.objs.sock_slot(id)?;
        let s = self.objs.sock_at(si);
        if !s.is_tcp()
            || s.st != St::Connected
            || s.err != 0
            || s.wr_shut
            || s.fin_pending
            || s.fin_sent
            || s.orphan
            || s.snd_urg.is_some()
            || !s.sq.is_empty()
            || data.is_empty()
            || self.ctl_err.is_some()
            || self.tasks.resume.is_some()
            || !self.fault_free(h)
        {
            return None;
        }
        let n = data.len();
        let peer = s.peer_id?;
        let sndbuf = s.opts.sndbuf.max(0) as usize;
        let pi = self.objs.sock_slot(peer)?;
        let p = self.objs.sock_at(pi);
        let window = (p.opts.rcvbuf.max(1) as usize)
            .saturating_sub(p.rq_bytes)
            .saturating_sub(s.inflight);
        let mss = if p.host == s.host { 65_536 } else { 1460 };
        // (`World::in_order_now`, with the peer at hand.)
        let in_order = (p.st == St::Connected || p.st == St::SynSent)
            && p.peer_id == Some(id)
            && !((p.rd_shut && p.fin_sent) || p.orphan)
            && s.snd_nxt == p.rcv_nxt
            && p.ooo.is_empty();
        let (src_h, dst_h) = (s.host, p.host);
        if sndbuf.saturating_sub(s.inflight) < n
            || window < n
            || mss < n
            || !in_order
            || !self.straight_through(src_h, dst_h)
        {
            return None;
        }
        // What `pump` and `deliver_data` do then: the in-flight count goes up by `n` and
        // down again, the peer queues the bytes, the wire records `data`; `maybe_done`
        // and `reap` have nothing to do for a sender without a FIN sent that is no orphan.
        // (`arrive` counts a change on both hosts.)
        self.tasks.touch(src_h);
        self.tasks.touch(dst_h);
        let mut b = self.buffer();
        b.extend_from_slice(data);
        let now = self.now;
        // (The slots found above: nothing was inserted or removed since. The peer may be
        // the socket itself: connected to its own address.)
        self.objs.sock_at_mut(si).snd_nxt += n as u64;
        let p = self.objs.sock_at_mut(pi);
        p.rcv_nxt += n as u64;
        p.rq_total += n as u64;
        p.rq_bytes += n;
        p.rq.push_back(Seg::plain(b, now));
        let host = p.host;
        self.tr(host, "data", peer as i64, n as i64);
        Some(n)
    }

    /// Whether no fault switch of host `h` can fire (none draws from the generator).
    #[inline]
    fn fault_free(&self, h: usize) -> bool {
        self.hosts[h].fault_free
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
            let rights = rights.take().unwrap_or_default();
            let n = chunk.len();
            let seg = (n > 0 || !rights.is_empty()).then(|| {
                let mut b = self.buffer();
                b.extend_from_slice(chunk);
                self.seg_with(b, now, from, Some(id), rights)
            });
            let p = self.s(peer);
            let urg = (urgent && n > 0).then(|| (p.rq_total + n as u64 - 1, chunk[n - 1]));
            p.rq_total += n as u64;
            p.rq_bytes += n;
            if let Some(seg) = seg {
                p.rq.push_back(seg);
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
                self.transmit(crate::types::Packet::rst(host, ph, p));
            }
        }
        self.fail(id, 0);
    }

    pub(super) fn stream_recv(
        &mut self,
        h: usize,
        id: ObjId,
        cap: usize,
        flags: MsgFlags,
        nonblock: bool,
        g: &mut Got,
    ) -> Result<()> {
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
                    g.addr = seg.from().cloned();
                    g.src = seg.src();
                    // Linux detaches a segment's descriptors even on a zero-length read.
                    if !peek && seg.off == 0 {
                        g.rights = seg.take_rights();
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
                let n = w.stream_take(id, want, off, peek, g);
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
                self.pump_pending(p);
            }
        }
        r?;
        g.ret = got;
        Ok(())
    }

    /// The common case of a TCP receive done at once, or `None` (nothing done) when
    /// [`World::stream_recv`] must decide: no flags but `MSG_DONTWAIT`, a connected
    /// socket without urgent data holding at least its `SO_RCVLOWAT` (or `cap`) bytes,
    /// no fault switch that could fire, not a parked wait continued (task mode). The
    /// outcome is then the same as `stream_recv`'s:
    /// the bytes go to `put` in order (with each segment's arrival time), and the
    /// count is returned.
    #[inline]
    pub(crate) fn tcp_recv_now(
        &mut self,
        h: usize,
        id: ObjId,
        cap: usize,
        flags: MsgFlags,
        mut put: impl FnMut(&[u8], Nanos),
    ) -> Option<usize> {
        // (`id` may be any object: the caller need not have checked it is a socket.)
        let si = self.objs.sock_slot(id)?;
        let s = self.objs.sock_at(si);
        let target = (s.opts.rcvlowat.max(1) as usize).min(cap).max(1);
        if flags.0 & !MsgFlags::DONTWAIT.0 != 0
            || cap == 0
            || !s.is_tcp()
            || s.st != St::Connected
            || s.mark.is_some()
            || s.rq_bytes < target
            || self.tasks.resume.is_some()
            || !self.fault_free(h)
        {
            return None;
        }
        let want = cap.min(s.rq_bytes);
        // What `stream_take` does with TCP segments (no sender, no descriptors) and no
        // urgent mark: copy `want` bytes from the front.
        let World { objs, spare, .. } = self;
        let s = objs.sock_at_mut(si);
        let mut n = 0;
        while n < want {
            let Some(seg) = s.rq.front_mut() else { break };
            debug_assert!(seg.from().is_none() && seg.src().is_none() && seg.rights().is_empty());
            let take = (seg.data.len() - seg.off).min(want - n);
            put(&seg.data[seg.off..seg.off + take], seg.ts);
            seg.off += take;
            n += take;
            if seg.off == seg.data.len() {
                if let Some(seg) = s.rq.pop_front() {
                    World::recycle(spare, seg.data);
                }
            }
        }
        debug_assert_eq!(n, want, "the queue holds rq_bytes");
        s.rq_bytes -= n;
        s.rd_total += n as u64;
        // Reading opened the window: let the peer send what it has queued.
        if let Some(p) = s.peer_id {
            self.pump_pending(p);
        }
        Some(n)
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
        let World {
            objs,
            spare,
            spare_meta,
            ..
        } = self;
        let s = objs.sock_mut(id);
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
                if skip == 0 && seg.off == 0 && !seg.rights().is_empty() {
                    if n > 0 {
                        break;
                    }
                    g.rights = seg.rights().to_vec();
                    bumped = seg.rights().to_vec();
                }
                let take = (len - skip).min(want - n);
                if !g.discard {
                    g.data
                        .extend_from_slice(&seg.data[seg.off + skip..seg.off + skip + take]);
                }
                if g.addr.is_none() && g.src.is_none() {
                    g.addr = seg.from().cloned();
                    g.src = seg.src();
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
                if let Some(o) = objs.get_mut(&r) {
                    o.refs += 1;
                }
            }
            return n;
        }
        while n < want {
            let Some(seg) = s.rq.front_mut() else { break };
            if seg.off == 0 && !seg.rights().is_empty() {
                if n > 0 {
                    break;
                }
                g.rights = seg.take_rights();
            }
            if g.addr.is_none() && g.src.is_none() {
                g.addr = seg.from().cloned();
                g.src = seg.src();
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
                if let Some(seg) = s.rq.pop_front() {
                    let rights = World::retire_into(spare, spare_meta, seg);
                    debug_assert!(rights.is_empty(), "taken when the segment was reached");
                }
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
        let seg = s.rq.get_mut(i).expect("found above");
        seg.data.remove(k);
        if seg.data.len() == seg.off && seg.rights().is_empty() {
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
                if seg.off == 0 && !seg.rights().is_empty() {
                    return Some(seg.rights().to_vec());
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
}

#[cfg(test)]
mod tests {
    use llsocket_api::{Family, MsgFlags, Protocol, SockAddr, SockOpt, SockType, SocketOps};

    use crate::{HostFaults, Latency, LinkConfig, Sim};

    /// A mixed stream workload on a connection between two hosts, one on loopback and one
    /// over a link with latency (its receives wait for data in flight): sends that fit
    /// and sends that fill the window, urgent data, receives of every size with and
    /// without flags, `SO_RCVLOWAT`, and closes with data unread. With
    /// `faults` the hosts have fault switches that never fire but must be drawn, which
    /// keeps every call off the TCP fast paths (`tcp_send_now`, `tcp_recv_now`).
    fn workload(faults: bool) -> (Vec<String>, u64) {
        let sim = Sim::builder(3).rcvbuf(4096).build();
        let (a, b, c) = (sim.host("a"), sim.host("b"), sim.host("c"));
        let slow = LinkConfig {
            latency: Latency::Fixed(std::time::Duration::from_millis(1)),
            ..LinkConfig::default()
        };
        sim.set_link_both(&b, &c, slow);
        let tcp = |h: &crate::Host| {
            h.socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
                .unwrap()
        };
        let mut pairs = Vec::new();
        for (cli, port) in [(&a, 80), (&b, 81), (&c, 82)] {
            let l = tcp(&b);
            b.bind(l, &SockAddr::v4(b.ipv4(), port)).unwrap();
            b.listen(l, 4).unwrap();
            let cfd = tcp(cli);
            cli.connect(cfd, &SockAddr::v4(b.ipv4(), port)).unwrap();
            let sfd = b.accept(l, false).unwrap().fd;
            pairs.push((cli.clone(), cfd, sfd));
        }
        // (No draw from the generator after this point but the fault switches'.)
        let never = HostFaults {
            short_io: 1e-300,
            eintr: 1e-300,
            reset: 1e-300,
        };
        if faults {
            for h in [&a, &b, &c] {
                h.set_faults(never);
            }
        }
        let mut buf = vec![0u8; 20_000];
        // A send one byte larger than the window (the rest waits), a receive below
        // SO_RCVLOWAT with more data in flight (it waits for it).
        let (_, cfd, sfd) = pairs[0];
        assert_eq!(a.send(cfd, &[1; 4000], MsgFlags::NONE), Ok(4000));
        assert_eq!(a.send(cfd, &[2; 97], MsgFlags::NONE), Ok(97));
        assert_eq!(b.recv(sfd, &mut buf, MsgFlags::NONE), Ok(4096));
        let (_, cfd, sfd) = pairs[2];
        b.setsockopt(sfd, SockOpt::RcvLowat(100)).unwrap();
        c.send(cfd, &[3; 10], MsgFlags::NONE).unwrap();
        sim.advance(std::time::Duration::from_millis(2));
        c.send(cfd, &[4; 200], MsgFlags::NONE).unwrap();
        assert_eq!(b.recv(sfd, &mut buf, MsgFlags::NONE), Ok(210));
        b.setsockopt(sfd, SockOpt::RcvLowat(1)).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for i in 0..3000u32 {
            let (cli, cfd, sfd) = &pairs[next(3) as usize];
            let ((from, fd_from), (to_host, fd_to)) = if next(2) == 0 {
                ((cli, *cfd), (&b, *sfd))
            } else {
                ((&b, *sfd), (cli, *cfd))
            };
            match next(10) {
                0..=3 => {
                    let len = [1, 32, 500, 3000, 9000][next(5) as usize];
                    let flags = match next(8) {
                        0 => MsgFlags::OOB,
                        1 => MsgFlags::DONTWAIT,
                        _ => MsgFlags::NONE,
                    };
                    let msg = vec![i as u8; len];
                    let _ = from.send(fd_from, &msg, flags);
                }
                4..=7 => {
                    let cap = [0, 1, 7, 32, 4096, 20_000][next(6) as usize];
                    let flags = match next(10) {
                        0 => MsgFlags::PEEK,
                        1 => MsgFlags::OOB,
                        2 => MsgFlags::WAITALL | MsgFlags::DONTWAIT,
                        3 => MsgFlags::TRUNC,
                        4 | 5 => MsgFlags::NONE,
                        _ => MsgFlags::DONTWAIT,
                    };
                    let _ = to_host.recv(fd_to, &mut buf[..cap], flags);
                }
                8 => {
                    let lowat = [1, 16, 100][next(3) as usize];
                    let _ = to_host.setsockopt(fd_to, SockOpt::RcvLowat(lowat));
                }
                _ => {
                    let _ = to_host.recv(fd_to, &mut buf[..64], MsgFlags::DONTWAIT);
                }
            }
        }
        for (cli, cfd, sfd) in &pairs {
            cli.close(*cfd).unwrap();
            b.close(*sfd).unwrap();
        }
        (sim.trace(), sim.trace_digest())
    }

    /// Task mode: a receive that parked and is continued once data came takes the
    /// general way, which uses the continuation up (the fast path must not leave it for
    /// the next call, whose wait would then end at the old deadline).
    #[test]
    fn a_continued_receive_uses_up_its_continuation() {
        use std::time::Duration;

        use llsocket_api::opt::Timeval;
        use llsocket_api::Errno;

        let sim = Sim::new(1);
        let (a, b) = (sim.host("a"), sim.host("b"));
        let (c, s) = crate::tcp_connection(&a, &b, false);
        let second = Timeval { sec: 1, usec: 0 };
        b.setsockopt(s, SockOpt::RcvTimeo(second)).unwrap();
        sim.set_task_mode(true);
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
        let park = sim.take_park().expect("the receive parked");
        assert_eq!(park.deadline, Some(Duration::from_secs(1)));
        a.send(c, b"hi", MsgFlags::NONE).unwrap();
        sim.resume_wait(park.deadline);
        assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(2));
        sim.advance(Duration::from_secs(5));
        // A new wait, with a deadline of its own.
        assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
        let park = sim.take_park().expect("the receive parked");
        assert_eq!(park.deadline, Some(Duration::from_secs(6)));
    }

    /// The same for a send that parked on a full window and is continued once the
    /// receiver read: it goes the general way (a later wait has its own deadline).
    #[test]
    fn a_continued_send_uses_up_its_continuation() {
        use std::time::Duration;

        use llsocket_api::opt::Timeval;
        use llsocket_api::Errno;

        let sim = Sim::builder(1).rcvbuf(64).sndbuf(64).build();
        let (a, b) = (sim.host("a"), sim.host("b"));
        let (c, s) = crate::tcp_connection(&a, &b, false);
        let second = Timeval { sec: 1, usec: 0 };
        a.setsockopt(c, SockOpt::SndTimeo(second)).unwrap();
        b.setsockopt(s, SockOpt::RcvTimeo(second)).unwrap();
        sim.set_task_mode(true);
        // The peer's window, then the send buffer, fill up; the third send parks.
        assert_eq!(a.send(c, &[1; 64], MsgFlags::NONE), Ok(64));
        assert_eq!(a.send(c, &[2; 64], MsgFlags::NONE), Ok(64));
        assert_eq!(a.send(c, &[3; 8], MsgFlags::NONE), Err(Errno::EAGAIN));
        let park = sim.take_park().expect("the send parked");
        assert_eq!(park.deadline, Some(Duration::from_secs(1)));
        let mut buf = [0u8; 64];
        assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(64));
        assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(64));
        sim.resume_wait(park.deadline);
        assert_eq!(a.send(c, &[3; 8], MsgFlags::NONE), Ok(8));
        sim.advance(Duration::from_secs(5));
        // A new wait, with a deadline of its own (none: no SO_RCVTIMEO on this end).
        assert_eq!(a.recv(c, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
        let park = sim.take_park().expect("the receive parked");
        assert_eq!(park.deadline, None);
    }

    #[test]
    fn the_tcp_fast_paths_do_what_the_general_path_does() {
        let (fast, fast_digest) = workload(false);
        let (slow, slow_digest) = workload(true);
        assert!(fast.len() > 3000, "{}", fast.len());
        assert_eq!(fast.len(), slow.len());
        let diff = fast.iter().zip(&slow).position(|(x, y)| x != y);
        assert_eq!(diff, None, "first difference at {diff:?}");
        assert_eq!(fast_digest, slow_digest);
    }
}
