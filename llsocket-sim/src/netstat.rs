//! Inspection, like `ss -a`: every socket of a host as a [`SocketInfo`] (descriptors,
//! state, addresses, queues, backlog, options that differ from the defaults) and a
//! [`SocketTable`] that prints them in aligned columns for a failing test's message.
//!
//! Reading a table changes nothing: no trace event, no timer, no random draw.

use std::collections::BTreeMap;
use std::fmt;

use llsocket_api::opt::{Linger, Timeval};
use llsocket_api::{Family, Fd, SockAddr, SockType, UnixAddr};

use crate::types::ObjId;
use crate::world::{Opts, Sock, St, World};

/// One socket of a host, as `ss -a` would show it (plain data).
///
/// `state` is one of `ss`'s names, derived from what the simulator models:
///
/// | state | when |
/// |---|---|
/// | `UNCONN` | not connected: fresh, bound, a UDP or unix datagram socket without a peer, or a TCP connection that is over (Linux's `TCP_CLOSE`, which `ss` shows so) |
/// | `LISTEN` | listening |
/// | `SYN-SENT` | connecting |
/// | `SYN-RECV` | a child in an accept queue whose client has not had the SYN-ACK yet |
/// | `ESTAB` | connected (TCP, connected UDP and unix sockets) |
/// | `FIN-WAIT-1` | TCP: shut down for writing (or closed), the FIN queued or on its way |
/// | `FIN-WAIT-2` | TCP: the FIN arrived, the peer's not yet |
/// | `CLOSE-WAIT` | TCP: the peer's FIN arrived, ours not sent |
/// | `LAST-ACK` | TCP: the peer closed first, our FIN queued or on its way |
/// | `CLOSING` | TCP: both FINs out, ours first, data still on its way |
/// | `TIME-WAIT` | what is left of an actively closed TCP connection for 60 s (no socket, no descriptor, no options; addresses in canonical form, so an IPv4 connection of an `AF_INET6` socket shows as `AF_INET`) |
///
/// A socket whose descriptors are all closed still shows while it flushes its data
/// or waits in an accept queue (`fds` empty).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SocketInfo {
    /// Every descriptor of this host's table that names the socket, ascending.
    pub fds: Vec<Fd>,
    /// `AF_INET`, `AF_INET6` or `AF_UNIX`.
    pub family: Family,
    /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_SEQPACKET`.
    pub ty: SockType,
    /// The connection state (see the table above).
    pub state: String,
    /// The bound address (`None`: not bound; a TCP connection that is over still
    /// shows its old port, as `getsockname` does).
    pub local: Option<SockAddr>,
    /// The peer's address, for connected and connecting sockets (`getpeername`'s
    /// answer; a unix peer's current name, unnamed if it has none).
    pub peer: Option<SockAddr>,
    /// Bytes received and not yet read (payload bytes, not kernel `truesize`).
    pub recv_q: usize,
    /// TCP: bytes sent and not yet arrived at the peer (queued or in flight). Other
    /// sockets queue nothing on the sending side (unix data goes straight to the
    /// peer's receive queue, datagrams to the wire): 0.
    pub send_q: usize,
    /// A listener's accept queue: `(connections waiting, backlog)`; `None` otherwise.
    pub backlog: Option<(usize, usize)>,
    /// The options whose value differs from a new socket's of the same family and
    /// type, by their C names (`SO_REUSEADDR`, `SO_RCVBUF`, ...), values as text:
    /// booleans `1`, numbers in decimal, timeouts in seconds (`1.500000`), `SO_LINGER`
    /// as `on,5`, addresses as text. Multicast options of TCP sockets (which do
    /// nothing there, and which an accepted socket takes from the SYN) are left out.
    pub options: Vec<(String, String)>,
}

impl SocketInfo {
    /// `ss`'s protocol column: `tcp`, `udp`, `u_str`, `u_dgr`, `u_seq`.
    pub fn netid(&self) -> &'static str {
        match (self.family == Family::UNIX, self.ty) {
            (false, SockType::STREAM) => "tcp",
            (false, SockType::DGRAM) => "udp",
            (true, SockType::STREAM) => "u_str",
            (true, SockType::DGRAM) => "u_dgr",
            (true, SockType::SEQPACKET) => "u_seq",
            _ => "???",
        }
    }
}

/// The sockets of one host ([`crate::Host::socket_table`]); its `Display` is an
/// aligned table with a header line, like `ss -a`:
///
/// ```text
/// Fd  Netid State      Recv-Q Send-Q Backlog Local       Peer           Options
/// 3   tcp   LISTEN          0      0 1/16    10.0.0.2:80 *              SO_REUSEADDR=1
/// 4   tcp   ESTAB           5      0         10.0.0.2:80 10.0.0.1:46013 SO_REUSEADDR=1
/// 5   udp   UNCONN          0      0         [::]:53     *              SO_BROADCAST=1
/// 6,8 u_str ESTAB           0      0         *           *
/// 7   u_str ESTAB           0      0         *           *
/// -   tcp   CLOSE-WAIT      0      0         10.0.0.2:80 10.0.0.1:59082 SO_REUSEADDR=1
/// ```
///
/// (`6,8`: a socketpair end and its `dup`; the last row, a connection closed by its
/// client before the server accepted it.)
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SocketTable {
    /// The host's name.
    pub host: String,
    /// Its sockets: those with descriptors by their lowest one, then those without
    /// in creation order, then `TIME-WAIT` entries by port.
    pub rows: Vec<SocketInfo>,
}

/// Columns of the table: header, right-aligned.
const COLUMNS: [(&str, bool); 9] = [
    ("Fd", false),
    ("Netid", false),
    ("State", false),
    ("Recv-Q", true),
    ("Send-Q", true),
    ("Backlog", false),
    ("Local", false),
    ("Peer", false),
    ("Options", false),
];

/// An address as the table shows it: `*` for none (or a unix socket without a name).
fn addr_text(a: Option<&SockAddr>) -> String {
    match a {
        None | Some(SockAddr::Unix(UnixAddr::Unnamed)) => "*".to_owned(),
        Some(a) => a.to_string(),
    }
}

impl fmt::Display for SocketTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<[String; 9]> = self
            .rows
            .iter()
            .map(|r| {
                let fds: Vec<String> = r.fds.iter().map(|fd| fd.0.to_string()).collect();
                let opts: Vec<String> = r.options.iter().map(|(n, v)| format!("{n}={v}")).collect();
                [
                    if fds.is_empty() {
                        "-".to_owned()
                    } else {
                        fds.join(",")
                    },
                    r.netid().to_owned(),
                    r.state.clone(),
                    r.recv_q.to_string(),
                    r.send_q.to_string(),
                    r.backlog
                        .map_or_else(String::new, |(n, max)| format!("{n}/{max}")),
                    addr_text(r.local.as_ref()),
                    addr_text(r.peer.as_ref()),
                    opts.join(" "),
                ]
            })
            .collect();
        let mut width = COLUMNS.map(|(h, _)| h.len());
        for row in &cells {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.len());
            }
        }
        let mut line = |texts: [&str; 9]| -> fmt::Result {
            let mut out = String::new();
            for (i, t) in texts.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let w = width[i];
                if COLUMNS[i].1 {
                    out.push_str(&format!("{t:>w$}"));
                } else {
                    out.push_str(&format!("{t:<w$}"));
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(COLUMNS.map(|(h, _)| h))?;
        for row in &cells {
            line(std::array::from_fn(|i| row[i].as_str()))?;
        }
        Ok(())
    }
}

fn on(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

fn secs(t: Timeval) -> String {
    format!("{}.{:06}", t.sec, t.usec)
}

fn linger(l: Linger) -> String {
    format!("{},{}", if l.enabled { "on" } else { "off" }, l.secs)
}

/// `(name, value)` of every option in `o` that differs from `d`.
fn changed(o: &Opts, d: &Opts, tcp: bool) -> Vec<(String, String)> {
    let mut v: Vec<(&str, String, String)> = vec![
        ("SO_REUSEADDR", on(o.reuseaddr), on(d.reuseaddr)),
        ("SO_REUSEPORT", on(o.reuseport), on(d.reuseport)),
        ("SO_BROADCAST", on(o.broadcast), on(d.broadcast)),
        ("SO_DEBUG", on(o.debug), on(d.debug)),
        ("SO_KEEPALIVE", on(o.keepalive), on(d.keepalive)),
        ("SO_OOBINLINE", on(o.oobinline), on(d.oobinline)),
        ("SO_DONTROUTE", on(o.dontroute), on(d.dontroute)),
        ("SO_TIMESTAMP", on(o.timestamp), on(d.timestamp)),
        ("SO_RCVBUF", o.rcvbuf.to_string(), d.rcvbuf.to_string()),
        ("SO_SNDBUF", o.sndbuf.to_string(), d.sndbuf.to_string()),
        (
            "SO_RCVLOWAT",
            o.rcvlowat.to_string(),
            d.rcvlowat.to_string(),
        ),
        ("SO_RCVTIMEO", secs(o.rcvtimeo), secs(d.rcvtimeo)),
        ("SO_SNDTIMEO", secs(o.sndtimeo), secs(d.sndtimeo)),
        ("SO_LINGER", linger(o.linger), linger(d.linger)),
        ("TCP_NODELAY", on(o.nodelay), on(d.nodelay)),
        ("TCP_CORK", on(o.cork), on(d.cork)),
        (
            "TCP_KEEPIDLE",
            o.keepidle.to_string(),
            d.keepidle.to_string(),
        ),
        (
            "TCP_KEEPINTVL",
            o.keepintvl.to_string(),
            d.keepintvl.to_string(),
        ),
        ("TCP_KEEPCNT", o.keepcnt.to_string(), d.keepcnt.to_string()),
    ];
    if !tcp {
        v.extend([
            ("IP_MULTICAST_LOOP", on(o.mloop4), on(d.mloop4)),
            ("IP_MULTICAST_TTL", o.mttl4.to_string(), d.mttl4.to_string()),
            ("IP_MULTICAST_IF", o.mif4.to_string(), d.mif4.to_string()),
            ("IPV6_MULTICAST_LOOP", on(o.mloop6), on(d.mloop6)),
            (
                "IPV6_MULTICAST_HOPS",
                o.mhops6.to_string(),
                d.mhops6.to_string(),
            ),
            ("IPV6_MULTICAST_IF", o.mif6.to_string(), d.mif6.to_string()),
        ]);
    }
    v.into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(n, a, _)| (n.to_owned(), a))
        .collect()
}

impl World {
    /// The state name of socket `s` (see [`SocketInfo`]).
    fn state_name(&self, s: &Sock) -> &'static str {
        match s.st {
            St::Idle | St::Closed => "UNCONN",
            St::Listen => "LISTEN",
            St::SynSent => "SYN-SENT",
            St::Connected if !s.is_tcp() => "ESTAB",
            St::Connected => {
                let peer = s.peer_id.filter(|&p| self.exists(p)).map(|p| self.sr(p));
                let fin_out = s.fin_pending || s.fin_sent;
                match (fin_out, s.rd_eof) {
                    (false, false) => {
                        let handshaking =
                            s.listener.is_some() && peer.is_some_and(|c| c.st == St::SynSent);
                        if handshaking {
                            "SYN-RECV"
                        } else {
                            "ESTAB"
                        }
                    }
                    (false, true) => "CLOSE-WAIT",
                    (true, false) => {
                        let arrived = s.fin_sent
                            && s.sq.is_empty()
                            && s.inflight == 0
                            && peer.is_some_and(|p| p.rd_eof);
                        if arrived {
                            "FIN-WAIT-2"
                        } else {
                            "FIN-WAIT-1"
                        }
                    }
                    (true, true) if s.fin_first => "CLOSING",
                    (true, true) => "LAST-ACK",
                }
            }
        }
    }

    /// The peer column of socket `s`: `getpeername`'s answer when connected (or the
    /// destination while connecting).
    fn peer_of(&self, s: &Sock) -> Option<SockAddr> {
        match s.st {
            St::Connected if s.is_unix() => match s.peer_id {
                Some(p) if self.exists(p) => self.sr(p).local.clone(),
                Some(p) => self.dead_names.get(&p).cloned(),
                None => None,
            }
            .or_else(|| s.peer.clone())
            .or(Some(SockAddr::Unix(UnixAddr::Unnamed))),
            St::Connected | St::SynSent => s.peer.clone(),
            _ => None,
        }
    }

    /// Every socket of host `h` and its `TIME_WAIT` entries (see [`SocketTable`]).
    pub(crate) fn socket_infos(&self, h: usize) -> Vec<SocketInfo> {
        let hs = &self.hosts[h];
        let mut fds: BTreeMap<ObjId, Vec<Fd>> = BTreeMap::new();
        for (n, slot) in hs.fds.iter() {
            fds.entry(slot.obj).or_default().push(Fd(n));
        }
        let mut rows: Vec<(i32, ObjId, SocketInfo)> = Vec::new();
        for &id in &hs.objs {
            if !self.exists(id) {
                continue;
            }
            let s = self.sr(id);
            let fds = fds.remove(&id).unwrap_or_default();
            let listening = s.st == St::Listen;
            let defaults = self.default_opts(s.family, s.ty);
            rows.push((
                fds.first().map_or(i32::MAX, |fd| fd.0),
                id,
                SocketInfo {
                    fds,
                    family: s.family,
                    ty: s.ty,
                    state: self.state_name(s).to_owned(),
                    local: s.local.clone(),
                    peer: self.peer_of(s),
                    recv_q: s.rq_bytes,
                    send_q: if s.is_tcp() {
                        s.sq.len() + s.inflight
                    } else {
                        0
                    },
                    backlog: listening.then_some((s.acceptq.len(), s.backlog)),
                    options: changed(&s.opts, &defaults, s.is_tcp()),
                },
            ));
        }
        rows.sort_by_key(|(fd, id, _)| (*fd, *id));
        let mut out: Vec<SocketInfo> = rows.into_iter().map(|(_, _, r)| r).collect();
        for tw in hs.time_wait.values().flatten() {
            if tw.until <= self.now {
                continue;
            }
            out.push(SocketInfo {
                fds: Vec::new(),
                family: tw.local.family(),
                ty: SockType::STREAM,
                state: "TIME-WAIT".to_owned(),
                local: Some(tw.local.clone()),
                peer: tw.peer.clone(),
                recv_q: 0,
                send_q: 0,
                backlog: None,
                options: Vec::new(),
            });
        }
        out
    }
}
