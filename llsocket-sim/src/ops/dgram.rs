//! The `sendmsg`/`recvmsg` entry points (every send and receive starts here and
//! streams go on in `stream.rs`), the datagram paths (UDP, unix datagram and
//! seqpacket queues) and control data (`SCM_RIGHTS` out and in, `SCM_TIMESTAMP`).

use llsocket_api::cmsg;
use llsocket_api::{Errno, Family, Fd, MsgFlags, Result, SockAddr, SockType, UnixAddr};

use super::{check_unix_len, take_err, timeout_of, Got, MSG_CMSG_CLOEXEC, SCM_MAX_FD};
use crate::addr::canon;
use crate::types::ObjId;
use crate::world::{Seg, St, World};

impl World {
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
        if to.is_none() && control.is_empty() && flags.0 & !MsgFlags::DONTWAIT.0 == 0 {
            if let Some(n) = self.tcp_send_now(h, id, data) {
                return Ok(n);
            }
        }
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
        let (rights, ctl_err) = if control.is_empty() {
            (Vec::new(), None)
        } else if self.sr(id).is_unix() {
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
    pub(super) fn sendmsg_inner(
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
                    let dropped: Vec<Seg> = s.rq.drain().collect();
                    for seg in dropped {
                        for r in seg.into_rights() {
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
            let mut b = w.buffer();
            b.extend_from_slice(data);
            let seg = w.seg_with(
                b,
                now,
                from.clone(),
                Some(id),
                rights.take().unwrap_or_default(),
            );
            let t = w.s(target);
            t.rq_bytes += data.len();
            t.rq.push_back(seg);
            w.capture_unix(id, target, data);
            Some(Ok(data.len()))
        })
    }

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

    /// A receive of any kind into `g` (an empty [`Got`]; filled in place, as it is
    /// large); returns the socket.
    pub(crate) fn op_recvmsg(
        &mut self,
        h: usize,
        fd: Fd,
        cap: usize,
        flags: MsgFlags,
        g: &mut Got,
    ) -> Result<ObjId> {
        let id = self.sock_of(h, fd)?;
        let put = |b: &[u8], ts| {
            g.ts.get_or_insert(ts);
            g.data.extend_from_slice(b);
        };
        if let Some(n) = self.tcp_recv_now(h, id, cap, flags, put) {
            g.ret = n;
            return Ok(id);
        }
        let nonblock = self.nonblock_of(id) || flags.contains(MsgFlags::DONTWAIT);
        self.recv_inner(h, id, cap, flags, nonblock, g)?;
        // The sender's name as it is now (or as it was when it closed).
        if let Some(sid) = g.src {
            if self.exists(sid) {
                g.addr = self.sr(sid).local.clone();
            } else if let Some(n) = self.dead_names.get(&sid) {
                g.addr = Some(n.clone());
            }
        }
        Ok(id)
    }

    fn recv_inner(
        &mut self,
        h: usize,
        id: ObjId,
        cap: usize,
        flags: MsgFlags,
        nonblock: bool,
        g: &mut Got,
    ) -> Result<()> {
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
            return Ok(());
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
            return self.stream_recv(h, id, cap, flags, nonblock, g);
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
                g.data.extend_from_slice(&seg.data[seg.off..seg.off + n]);
                g.ret = if flags.contains(MsgFlags::TRUNC) {
                    real
                } else {
                    n
                };
                if real > cap {
                    g.flags |= MsgFlags::TRUNC;
                }
                g.src = seg.src();
                g.addr = if seqpacket && !unix {
                    None
                } else {
                    seg.from().cloned()
                };
                g.ts = Some(seg.ts);
                if peek {
                    g.rights = seg.rights().to_vec();
                    for &r in &g.rights.clone() {
                        if let Some(o) = w.objs.get_mut(&r) {
                            o.refs += 1;
                        }
                    }
                } else {
                    let seg = s.rq.pop_front().expect("front exists");
                    s.rq_bytes -= real;
                    g.rights = w.retire(seg);
                }
                return Some(Ok(()));
            }
            if let Some(e) = take_err(w, id) {
                return Some(Err(e));
            }
            let s = w.sr(id);
            // Linux: a shut-down datagram socket returns 0 only to a blocking reader
            // (a non-blocking one gets EAGAIN); seqpacket signals EOF either way.
            if (seqpacket && (s.rd_eof || s.rd_shut)) || (s.rd_shut && !nonblock) {
                return Some(Ok(()));
            }
            None
        })
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
}
