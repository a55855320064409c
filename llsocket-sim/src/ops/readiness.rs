//! Readiness: `poll` on the virtual clock, and `sockatmark`.

use llsocket_api::{Errno, Fd, Interest, Result, SockType};

use super::MS;
use crate::types::{Nanos, ObjId};
use crate::world::{Kind, St, World};

impl World {
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
                    // tcp_poll counts SO_RCVLOWAT; unix_poll only asks whether the
                    // queue holds anything (a unix stream stays readable with only its
                    // OOB byte queued, and whatever its SO_RCVLOWAT says).
                    inb |= if s.is_unix() {
                        !s.rq.is_empty() || s.rq_bytes > 0
                    } else {
                        s.ty == SockType::STREAM && s.stream_avail() >= lowat
                    };
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

    /// Whether a receive or accept parked on `fd` of host `h` may complete now: a
    /// superset of what ends such a wait (anything queued, whatever `SO_RCVLOWAT` says;
    /// an error, end of stream or shutdown; a pending connection; a state other than
    /// connected or listening; a descriptor or host that is gone, a descriptor not a
    /// socket). `false` means the call would surely park again. Looks only, records
    /// nothing.
    pub(crate) fn may_read(&self, h: usize, fd: Fd) -> bool {
        if h >= self.hosts.len() {
            return true;
        }
        let Ok(id) = self.obj_of(h, fd) else {
            return true;
        };
        let s = match self.objs.get(&id).map(|o| &o.kind) {
            Some(Kind::Sock(s)) => s,
            _ => return true,
        };
        if s.err != 0 || s.rd_eof || s.rd_shut || s.oob.is_some() {
            return true;
        }
        let queued = !s.rq.is_empty() || s.rq_bytes > 0;
        if s.ty == SockType::STREAM || s.ty == SockType::SEQPACKET {
            match s.st {
                St::Listen => !s.acceptq.is_empty(),
                St::Connected => {
                    queued || (s.is_unix() && s.peer_id.is_none_or(|p| !self.exists(p)))
                }
                St::Idle | St::SynSent | St::Closed => true,
            }
        } else {
            queued
        }
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
}
