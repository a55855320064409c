//! The world core: virtual clock, event queue, trace, hosts, descriptor tables and objects.
//!
//! Everything lives in one [`World`] behind `Rc<RefCell<..>>`. Iteration order
//! never depends on hashing: every map is a `BTreeMap`, every random choice
//! comes from the one seeded [`Rng`], and events run in `(time, sequence)` order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use llsocket_api::opt::{Linger, Timeval};
use llsocket_api::{Errno, Family, Fd, Result, SockAddr, SockType};

use crate::addr::{canon, canon_ip, host_index, host_v4, host_v6, segment_broadcast};
use crate::capture::Capture;
use crate::faults::{HostFaults, Latency, LinkConfig, Links};
use crate::rng::Rng;
use crate::rules::Rules;
use crate::trace::{Event, Name, Trace};
use crate::types::{Nanos, ObjId, Packet};

/// Knobs fixed when the world is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub somaxconn: i32,
    pub rcvbuf: Option<i32>,
    pub sndbuf: Option<i32>,
    pub fd_limit: usize,
    pub keep_trace: bool,
    pub trace_payloads: bool,
    pub capture: bool,
    /// The most hosts (at most `addr::MAX_HOSTS`).
    pub max_hosts: usize,
}

/// A scheduled event.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A packet reaches its destination host.
    Arrive(Packet),
    /// A reliable packet's retransmission attempt `attempt`.
    Retx(Packet, u32),
    /// The SYN retransmission timer of a connecting socket.
    SynTimer { sock: ObjId, gen: u32, attempt: u32 },
    /// The unix garbage collector's run.
    UnixGc,
    /// A closed TCP socket still waiting for its peer's FIN gives up.
    OrphanTimeout(ObjId),
    /// Packets held back by a rule on the link a -> b are delivered anyway.
    Release(usize, usize),
}

/// One descriptor-table slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FdSlot {
    pub obj: ObjId,
    pub cloexec: bool,
}

/// A host's descriptor table: slots indexed by descriptor number (one memory access
/// per lookup, however many descriptors are open), and the free numbers below the
/// highest one in use, so the lowest free number is found in logarithmic time.
#[derive(Debug, Default)]
pub(crate) struct FdTable {
    /// Slot `n` is descriptor `n` (0 to 2 are never used).
    slots: Vec<Option<FdSlot>>,
    /// Free numbers from 3 below `slots.len()`.
    free: BTreeSet<i32>,
    open: usize,
}

impl FdTable {
    /// How many descriptors are open.
    pub(crate) fn len(&self) -> usize {
        self.open
    }

    #[inline]
    pub(crate) fn get(&self, fd: &i32) -> Option<&FdSlot> {
        self.slots.get(usize::try_from(*fd).ok()?)?.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, fd: &i32) -> Option<&mut FdSlot> {
        self.slots.get_mut(usize::try_from(*fd).ok()?)?.as_mut()
    }

    /// Puts `slot` at the lowest free number (from 3) and returns it.
    pub(crate) fn insert_lowest(&mut self, slot: FdSlot) -> i32 {
        let n = match self.free.pop_first() {
            Some(n) => n,
            None => {
                self.slots.resize(self.slots.len().max(3), None);
                self.slots.push(None);
                (self.slots.len() - 1) as i32
            }
        };
        self.slots[n as usize] = Some(slot);
        self.open += 1;
        n
    }

    /// Frees a number; `None` if it was not open.
    pub(crate) fn remove(&mut self, fd: &i32) -> Option<FdSlot> {
        let slot = self.slots.get_mut(usize::try_from(*fd).ok()?)?.take()?;
        self.open -= 1;
        self.free.insert(*fd);
        // Trailing free numbers leave the table, so it shrinks back when emptied.
        while self.slots.len() > 3 && self.slots.last().is_some_and(Option::is_none) {
            let top = (self.slots.len() - 1) as i32;
            self.free.remove(&top);
            self.slots.pop();
        }
        Some(slot)
    }

    /// The open descriptors, ascending, with their slots.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i32, &FdSlot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(n, s)| s.as_ref().map(|s| (n as i32, s)))
    }

    /// The open descriptor numbers, ascending.
    pub(crate) fn keys(&self) -> impl Iterator<Item = i32> + '_ {
        self.iter().map(|(n, _)| n)
    }

    /// The slots of the open descriptors, by ascending number.
    pub(crate) fn values(&self) -> impl Iterator<Item = &FdSlot> {
        self.iter().map(|(_, s)| s)
    }

    pub(crate) fn clear(&mut self) {
        *self = FdTable::default();
    }
}

/// A simulated host.
#[derive(Debug)]
pub(crate) struct HostState {
    pub name: String,
    pub up: bool,
    pub fds: FdTable,
    /// Listening TCP sockets by port (the subset of `ports` a SYN looks at).
    pub listeners: BTreeMap<u16, BTreeSet<ObjId>>,
    /// TCP `TIME_WAIT` entries by port.
    pub time_wait: BTreeMap<u16, Vec<TimeWait>>,
    /// Unix path names: `Some(socket)` while bound, `None` once the socket is
    /// gone (the socket file stays, as on Linux, until `Host::unlink`).
    pub unix_paths: BTreeMap<Vec<u8>, Option<ObjId>>,
    /// Abstract names by (socket type, name).
    pub unix_abstract: BTreeMap<(i32, Vec<u8>), ObjId>,
    /// Bound IP sockets by (is_udp, port).
    pub ports: BTreeMap<(bool, u16), BTreeSet<ObjId>>,
    /// Its fault switches: set with [`HostState::set_faults`], which keeps `fault_free`.
    faults: HostFaults,
    /// Whether no fault switch can fire (none draws from the generator): a data path's
    /// first check, kept by [`HostState::set_faults`].
    pub fault_free: bool,
    /// Every socket object of the host (for crash).
    pub objs: BTreeSet<ObjId>,
}

impl HostState {
    pub(crate) fn faults(&self) -> &HostFaults {
        &self.faults
    }

    pub(crate) fn set_faults(&mut self, f: HostFaults) {
        self.fault_free = [f.short_io, f.eintr, f.reset]
            .iter()
            .all(|&p| p <= 0.0 || p.is_nan());
        self.faults = f;
    }
}

/// A `TIME_WAIT` entry: what is left of an actively closed TCP connection.
#[derive(Clone, Debug)]
pub(crate) struct TimeWait {
    /// The local address, canonical.
    pub local: SockAddr,
    /// The peer's address (for the socket table).
    pub peer: Option<SockAddr>,
    /// The closed socket's `SO_REUSEADDR`.
    pub reuse: bool,
    pub until: Nanos,
}

/// An open file description.
#[derive(Debug)]
pub(crate) struct Obj {
    /// Descriptors (in any table) and in-flight `SCM_RIGHTS` referring to it.
    pub refs: u32,
    pub nonblock: bool,
    pub kind: Kind,
}

/// What an object is.
#[derive(Debug)]
pub(crate) enum Kind {
    Sock(Box<Sock>),
    File(Vec<u8>),
}

/// Socket state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum St {
    /// Fresh or bound, not connected.
    Idle,
    Listen,
    SynSent,
    Connected,
    /// Connection over (reset, timed out, refused): no traffic any more.
    Closed,
}

/// One queued unit of received data: a datagram, or a piece of a stream. What only
/// datagrams and unix messages carry is boxed ([`SegMeta`], `None` for TCP data), so a
/// segment is 48 bytes: the one a connection's queue keeps inside its socket takes one
/// cache line, not two.
#[derive(Debug)]
pub(crate) struct Seg {
    pub data: Vec<u8>,
    pub off: usize,
    pub ts: Nanos,
    meta: Option<Box<SegMeta>>,
}

/// The sender's address, the sending unix socket and the passed descriptors of a [`Seg`].
#[derive(Debug, Default)]
pub(crate) struct SegMeta {
    pub from: Option<SockAddr>,
    /// The sending unix socket: its name is read when the data is received (Linux).
    pub src: Option<ObjId>,
    pub rights: Vec<ObjId>,
}

impl Seg {
    /// A segment of plain data: no address, no sending socket, no descriptors (TCP).
    #[inline]
    pub(crate) fn plain(data: Vec<u8>, ts: Nanos) -> Seg {
        Seg {
            data,
            off: 0,
            ts,
            meta: None,
        }
    }
    /// A segment with what `meta` says (see [`World::seg_with`]: the box from a pool, and
    /// only when it says anything).
    fn with_meta(data: Vec<u8>, ts: Nanos, meta: Option<Box<SegMeta>>) -> Seg {
        Seg {
            data,
            off: 0,
            ts,
            meta,
        }
    }
    #[inline]
    pub(crate) fn from(&self) -> Option<&SockAddr> {
        self.meta.as_ref().and_then(|m| m.from.as_ref())
    }
    #[inline]
    pub(crate) fn src(&self) -> Option<ObjId> {
        self.meta.as_ref().and_then(|m| m.src)
    }
    #[inline]
    pub(crate) fn rights(&self) -> &[ObjId] {
        self.meta.as_ref().map_or(&[], |m| &m.rights)
    }
    /// The passed descriptors, taken (the segment keeps none).
    pub(crate) fn take_rights(&mut self) -> Vec<ObjId> {
        self.meta
            .as_mut()
            .map(|m| std::mem::take(&mut m.rights))
            .unwrap_or_default()
    }
    /// The passed descriptors (the segment consumed).
    pub(crate) fn into_rights(self) -> Vec<ObjId> {
        self.meta.map(|m| m.rights).unwrap_or_default()
    }
}

/// A receive queue of [`Seg`]s: the first one inside the socket, the rest in a ring
/// allocated on first use (a pointer in the socket). A connection's queue mostly holds one
/// segment at a time, which then lives in the lines of the socket that every call reads
/// anyway (no buffer of its own to miss in the cache when the world holds many
/// connections). Invariant: `head` is `None` only when the queue is empty.
#[derive(Debug, Default)]
pub(crate) struct SegQueue {
    head: Option<Seg>,
    #[allow(clippy::box_collection)] // (a thin pointer: the ring is rarely needed)
    rest: Option<Box<VecDeque<Seg>>>,
}

type RestIter<'a> = std::iter::Flatten<std::option::IntoIter<&'a VecDeque<Seg>>>;

impl SegQueue {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }
    #[inline]
    pub(crate) fn push_back(&mut self, seg: Seg) {
        if self.head.is_none() {
            self.head = Some(seg);
        } else {
            self.rest.get_or_insert_with(Box::default).push_back(seg);
        }
    }
    #[inline]
    pub(crate) fn front_mut(&mut self) -> Option<&mut Seg> {
        self.head.as_mut()
    }
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Seg> {
        let head = self.head.take();
        if let Some(rest) = self.rest.as_mut() {
            self.head = rest.pop_front();
        }
        head
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Seg> {
        self.into_iter()
    }
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Seg> {
        match i {
            0 => self.head.as_mut(),
            _ => self.rest.as_mut()?.get_mut(i - 1),
        }
    }
    pub(crate) fn remove(&mut self, i: usize) -> Option<Seg> {
        match i {
            0 => self.pop_front(),
            _ => self.rest.as_mut()?.remove(i - 1),
        }
    }
    /// Takes every segment out, in order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Seg> + '_ {
        let rest = self.rest.take().map(|r| *r).unwrap_or_default();
        self.head.take().into_iter().chain(rest)
    }
}

impl<'a> IntoIterator for &'a SegQueue {
    type Item = &'a Seg;
    type IntoIter = std::iter::Chain<std::option::Iter<'a, Seg>, RestIter<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.head
            .iter()
            .chain(self.rest.as_deref().into_iter().flatten())
    }
}

impl IntoIterator for SegQueue {
    type Item = Seg;
    type IntoIter =
        std::iter::Chain<std::option::IntoIter<Seg>, std::collections::vec_deque::IntoIter<Seg>>;
    fn into_iter(self) -> Self::IntoIter {
        let rest = self.rest.map(|r| *r).unwrap_or_default();
        self.head.into_iter().chain(rest)
    }
}

/// A TCP receiver's out-of-order segments by sequence number, the map allocated on first
/// use (a pointer in the socket: in order is the rule).
#[derive(Debug, Default)]
#[allow(clippy::box_collection)] // (a thin pointer: the map is rarely needed)
pub(crate) struct OooQueue(Option<Box<BTreeMap<u64, Packet>>>);

impl OooQueue {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }
    pub(crate) fn insert(&mut self, seq: u64, p: Packet) {
        self.0.get_or_insert_with(Box::default).insert(seq, p);
    }
    pub(crate) fn remove(&mut self, seq: &u64) -> Option<Packet> {
        self.0.as_mut()?.remove(seq)
    }
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

/// A multicast membership.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Membership {
    pub group: IpAddr,
    pub ifindex: u32,
    /// Source-specific: the accepted sources (empty: any-source).
    pub include: BTreeSet<IpAddr>,
    /// Any-source: the blocked sources.
    pub exclude: BTreeSet<IpAddr>,
    /// Include mode with no source: a failed source leave switched an empty
    /// any-source membership (Linux's `ip_mc_source` "allow mode switches for
    /// empty-set filters"); it hears nothing.
    pub empty_include: bool,
}

impl Membership {
    /// Whether this membership's source filter lets a datagram from `src` in.
    pub(crate) fn accepts(&self, src: IpAddr) -> bool {
        if self.empty_include {
            false
        } else if self.include.is_empty() {
            !self.exclude.contains(&src)
        } else {
            self.include.contains(&src)
        }
    }
}

/// Every option value; see the crate docs for which are simulated. (`repr(C)`: the
/// buffer sizes and the low-water mark, read on every send and receive, first.)
#[derive(Clone, Debug)]
#[repr(C)]
pub(crate) struct Opts {
    pub rcvbuf: i32,
    pub sndbuf: i32,
    pub rcvlowat: i32,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub broadcast: bool,
    pub debug: bool,
    pub keepalive: bool,
    pub oobinline: bool,
    pub dontroute: bool,
    pub timestamp: bool,
    pub rcvtimeo: Timeval,
    pub sndtimeo: Timeval,
    pub linger: Linger,
    pub nodelay: bool,
    pub cork: bool,
    pub keepintvl: i32,
    pub keepcnt: i32,
    pub keepidle: i32,
    pub mloop4: bool,
    pub mloop6: bool,
    pub mttl4: i32,
    pub mhops6: i32,
    pub mif4: Ipv4Addr,
    pub mif6: u32,
}

/// A socket. (`repr(C)`, the fields the data paths read on every call first — kind,
/// state, counters, the send queue's head, the receive queue with its first segment
/// inline, the out-of-order queue and the urgent marks, then the options with the buffer
/// sizes first: a call on a socket whose memory is cold touches its first four cache
/// lines; see the scale benchmark.)
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Sock {
    pub host: usize,
    /// The other end of a stream connection (or a connected unix datagram peer).
    pub peer_id: Option<ObjId>,
    pub family: Family,
    pub ty: SockType,
    pub proto: i32,
    pub err: i32,
    pub st: St,
    pub rd_eof: bool,
    pub rd_shut: bool,
    pub wr_shut: bool,
    /// FIN queued after the send queue drains / already sent.
    pub fin_pending: bool,
    pub fin_sent: bool,
    /// The descriptor was closed; the object lives on only to flush its send queue.
    pub orphan: bool,
    /// Received urgent byte (not inline) and the stream offset of the mark.
    pub oob: Option<u8>,
    pub rq_bytes: usize,
    pub inflight: usize,
    pub snd_nxt: u64,
    pub rcv_nxt: u64,
    /// Stream bytes ever queued / read (offsets for the urgent mark).
    pub rq_total: u64,
    pub rd_total: u64,
    /// Stream send side: bytes not yet transmitted (then `inflight`, the sequence numbers).
    pub sq: VecDeque<u8>,
    pub rq: SegQueue,
    /// Out-of-order stream packets held until contiguous.
    pub ooo: OooQueue,
    /// The send sequence number of a pending urgent byte.
    pub snd_urg: Option<u64>,
    pub mark: Option<u64>,
    pub opts: Opts,
    pub local: Option<SockAddr>,
    pub peer: Option<SockAddr>,
    pub backlog: usize,
    pub acceptq: VecDeque<ObjId>,
    /// Children not yet accepted point at their listener.
    pub listener: Option<ObjId>,
    /// Our FIN went out before the peer's arrived: we are the active closer.
    pub fin_first: bool,
    /// A non-blocking connect's outcome not yet reported by a second `connect`.
    pub connect_pending: bool,
    /// shutdown() hit a connect that failed or was under way (Linux's
    /// SS_DISCONNECTING): connect and listen are EINVAL from then on.
    pub disconnecting: bool,
    /// shutdown(SHUT_RD) stopped this listener: connect is EINVAL until it
    /// listens again (as Linux 6.x does; found by the differential campaign).
    pub unlistened: bool,
    /// connect reported a failed connection (its sock_error path): Linux refuses
    /// listen with EINVAL from then on, while connect and bind still work
    /// (observed on Linux 6.x by the differential campaign).
    pub no_listen: bool,
    /// A `listen` refused for `no_listen` took a port first (observed on Linux 6.x
    /// by the differential campaign): `bind` is EINVAL from then on.
    pub listen_port: bool,
    pub conn_gen: u32,
    /// `bind` chose the port (Linux's `SOCK_BINDPORT_LOCK`): it is kept when the connection ends.
    pub port_locked: bool,
    /// `bind` chose the address (Linux's `SOCK_BINDADDR_LOCK`).
    pub addr_locked: bool,
    /// The port was released (`inet_put_port`): `local` still shows it, but the
    /// socket counts as unbound.
    pub unhashed: bool,
    /// The pending SYN retransmission timer.
    pub syn_timer: Option<(Nanos, u64)>,
    pub mcast: Vec<Membership>,
}

impl Sock {
    #[inline]
    pub(crate) fn is_unix(&self) -> bool {
        self.family == Family::UNIX
    }
    #[inline]
    pub(crate) fn is_tcp(&self) -> bool {
        !self.is_unix() && self.ty == SockType::STREAM
    }
    pub(crate) fn is_udp(&self) -> bool {
        !self.is_unix() && self.ty == SockType::DGRAM
    }
    /// Connection-oriented (stream or seqpacket).
    pub(crate) fn is_conn(&self) -> bool {
        self.ty == SockType::STREAM || self.ty == SockType::SEQPACKET
    }
    /// Bytes readable now in a stream: up to the urgent mark when one is ahead;
    /// at the mark, everything but the urgent byte (skipped unless inline).
    pub(crate) fn stream_avail(&self) -> usize {
        let n = self.rq_bytes;
        match self.mark {
            Some(m) if m > self.rd_total => n.min((m - self.rd_total) as usize),
            Some(m) if m == self.rd_total && !self.opts.oobinline => n.saturating_sub(1),
            _ => n,
        }
    }
}

/// The panic of a broken invariant: socket `id` was expected to exist (out of line, so
/// the accessors that check it stay small enough to inline).
#[cold]
#[inline(never)]
fn vanished(id: ObjId) -> ! {
    panic!("llsocket-sim: socket {id} vanished (internal invariant)")
}

/// The panic of a broken invariant: slot `i` of the object table was expected to hold a
/// socket (a slot used after an insert or remove moved the objects).
#[cold]
#[inline(never)]
fn no_socket_at(i: usize) -> ! {
    panic!("llsocket-sim: no socket in slot {i} of the object table (internal invariant)")
}

/// Objects by id (handed out in order, never reused), in an open-addressing table:
/// linear probing from the id's Fibonacci hash, deletion by backward shift, the table
/// grown when 7/8 full and shrunk when 1/16 full. A look-up is one probe in the common
/// case, whatever the number of objects, and the memory is in proportion to the objects
/// that exist: a world with sockets coming and going keeps nothing of those gone.
/// (Deterministic: nothing iterates the table.)
#[derive(Debug, Default)]
pub(crate) struct Slab {
    /// A power of two of slots (or none yet).
    slots: Vec<Option<(ObjId, Obj)>>,
    pub(crate) len: usize,
    /// `64 - log2(slots.len())`: the hash's shift.
    shift: u32,
}

/// The fewest slots of a [`Slab`] that has any.
const SLAB_MIN: usize = 16;

impl Slab {
    /// The first slot to try for `k`: eight consecutive ids (a connection's two ends are
    /// usually neighbours) have eight consecutive homes, where their group's Fibonacci
    /// hash puts them.
    #[inline(always)]
    fn home(&self, k: ObjId) -> usize {
        let group = (k >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (self.shift + 3);
        ((group << 3) | (k & 7)) as usize
    }

    /// The slot of `k`, if it is in the table. (An empty table's `shift` is 0: the
    /// first probe is out of range.)
    #[inline(always)]
    fn find(&self, k: ObjId) -> Option<usize> {
        let mut i = self.home(k);
        loop {
            match self.slots.get(i)? {
                Some((key, _)) if *key == k => return Some(i),
                Some(_) => i = (i + 1) & (self.slots.len() - 1),
                None => return None,
            }
        }
    }

    #[inline(always)]
    pub(crate) fn get(&self, k: &ObjId) -> Option<&Obj> {
        let mut i = self.home(*k);
        loop {
            match self.slots.get(i)? {
                Some((key, o)) if key == k => return Some(o),
                Some(_) => i = (i + 1) & (self.slots.len() - 1),
                None => return None,
            }
        }
    }
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, k: &ObjId) -> Option<&mut Obj> {
        let i = self.find(*k)?;
        match self.slots.get_mut(i) {
            Some(Some((_, o))) => Some(o),
            _ => None,
        }
    }
    pub(crate) fn insert(&mut self, k: ObjId, o: Obj) {
        if let Some(i) = self.find(k) {
            self.slots[i] = Some((k, o));
            return;
        }
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.resize((self.slots.len() * 2).max(SLAB_MIN));
        }
        self.place(k, o);
        self.len += 1;
    }
    /// Puts `k` (not in the table; a free slot exists) in the first free slot from its home.
    fn place(&mut self, k: ObjId, o: Obj) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(k);
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Some((k, o));
    }
    /// Moves every object into a table of `n` slots (a power of two, more than `len`).
    fn resize(&mut self, n: usize) {
        let old = std::mem::replace(&mut self.slots, (0..n).map(|_| None).collect());
        self.shift = 64 - n.trailing_zeros();
        for (k, o) in old.into_iter().flatten() {
            self.place(k, o);
        }
    }
    /// The slot of socket `id`, if it is one: for [`Slab::sock_at`] and its kin, until
    /// the next insert or remove (which move objects).
    #[inline(always)]
    pub(crate) fn sock_slot(&self, id: ObjId) -> Option<usize> {
        let i = self.find(id)?;
        matches!(
            &self.slots[i],
            Some((
                _,
                Obj {
                    kind: Kind::Sock(_),
                    ..
                }
            ))
        )
        .then_some(i)
    }
    /// The socket in slot `i` (from [`Slab::sock_slot`], no insert or remove since).
    #[inline(always)]
    pub(crate) fn sock_at(&self, i: usize) -> &Sock {
        match &self.slots[i] {
            Some((
                _,
                Obj {
                    kind: Kind::Sock(s),
                    ..
                },
            )) => s,
            _ => no_socket_at(i),
        }
    }
    /// The socket in slot `i`, mutable (as [`Slab::sock_at`]).
    #[inline(always)]
    pub(crate) fn sock_at_mut(&mut self, i: usize) -> &mut Sock {
        match &mut self.slots[i] {
            Some((
                _,
                Obj {
                    kind: Kind::Sock(s),
                    ..
                },
            )) => s,
            _ => no_socket_at(i),
        }
    }
    /// The socket `id` (an internal invariant: it exists), borrowing only the slab.
    #[inline(always)]
    pub(crate) fn sock_mut(&mut self, id: ObjId) -> &mut Sock {
        match self.get_mut(&id).map(|o| &mut o.kind) {
            Some(Kind::Sock(s)) => s,
            _ => vanished(id),
        }
    }
    pub(crate) fn remove(&mut self, k: &ObjId) -> Option<Obj> {
        let mut hole = self.find(*k)?;
        let (_, o) = self.slots[hole].take()?;
        self.len -= 1;
        // Backward shift: each object after the hole in its run moves into it if the hole
        // lies between the object's home and its slot (so every object stays reachable
        // from its home without crossing an empty slot).
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some((key, _)) = &self.slots[j] else {
                break;
            };
            let home = self.home(*key);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
        }
        if self.slots.len() > SLAB_MIN && self.len * 16 < self.slots.len() {
            self.resize(self.slots.len() / 2);
        }
        Some(o)
    }
    pub(crate) fn contains_key(&self, k: &ObjId) -> bool {
        self.find(*k).is_some()
    }
    /// The table's slots (for tests of what a world keeps).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }
}

/// The world.
#[derive(Debug)]
pub(crate) struct World {
    pub seed: u64,
    pub rng: Rng,
    pub now: Nanos,
    seq: u64,
    events: BTreeMap<(Nanos, u64), Ev>,
    /// Spare byte buffers: the receive result's (`Got::data`), and stream segments'
    /// once read, so the data path allocates nothing in a steady state.
    pub rx_buf: Vec<u8>,
    pub spare: Vec<Vec<u8>>,
    /// Spare [`SegMeta`] boxes (datagrams carry one each: no allocation per datagram).
    #[allow(clippy::vec_box)] // (the boxes are what is reused)
    pub spare_meta: Vec<Box<SegMeta>>,
    pub trace: Trace,
    pub hosts: Vec<HostState>,
    pub objs: Slab,
    next_obj: ObjId,
    /// Link configurations and partitions: per pair, per group, default.
    pub links: Links,
    /// Host indices by name, ASCII-lowercased (the first host of a name keeps it).
    pub names: BTreeMap<String, usize>,
    /// Every unix socket of the world (what the unix garbage collector looks at).
    pub unix_socks: BTreeSet<ObjId>,
    pub cfg: Config,
    /// The host of destroyed sockets, so late packets for one find its host: those a
    /// live socket may still ask for (see [`World::sweep_dead`]).
    pub dead_host: BTreeMap<ObjId, usize>,
    /// `dead_host`'s size at which [`World::sweep_dead`] runs next.
    dead_sweep_at: usize,
    /// A control-data error of the send under way, reported where the protocol
    /// would look at control data (see `op_sendmsg`).
    pub ctl_err: Option<Errno>,
    /// A garbage-collector run is scheduled.
    pub gc_scheduled: bool,
    /// The names of destroyed unix sockets (a surviving peer's getpeername shows them).
    pub dead_names: BTreeMap<ObjId, SockAddr>,
    /// Every `TIME_WAIT` entry's end, host and port, in the order they began (so in the
    /// order they end: each lasts 60 s): what [`World::prune_time_wait`] removes.
    tw_ends: VecDeque<(Nanos, usize, u16)>,
    /// The packet capture, when [`Config::capture`] asked for one.
    pub capture: Option<Capture>,
    /// The packet rules, and the packets they hold back per link.
    pub rules: Rules,
    pub held: BTreeMap<(usize, usize), Vec<Packet>>,
    /// Cooperative tasks: how blocking calls behave in task mode (see [`Tasks`]).
    pub tasks: Tasks,
}

/// The simulator's side of cooperative tasks ([`crate::Sim::set_task_mode`]).
///
/// In task mode a blocking call that would wait does not run the world: it *parks*
/// (returns `EAGAIN` and records its deadline here), so a scheduler can suspend the
/// caller, run others and the world, and call it again with [`Tasks::resume`] set
/// (the same deadline; no second `EINTR` draw). A parked call is not traced: the call
/// that completes is, once. Change counters tell the scheduler which waits may have
/// ended: every call on a host, and every packet or timer that touches it, counts,
/// except a continued wait that parks again (which changed nothing).
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    /// Task mode.
    pub on: bool,
    /// Set by the scheduler: the next wait continues a parked one, with this deadline.
    pub resume: Option<Option<Nanos>>,
    /// Set by a wait that parked (its deadline); cleared when the next call starts.
    pub parked: Option<Option<Nanos>>,
    /// The park continued an earlier one.
    pub parked_again: bool,
    /// The parked call: host, operation, descriptor.
    pub park_at: (usize, &'static str, i32),
    /// Changes of the whole world (links, faults, partitions, crashes).
    pub changes: u64,
    /// Changes per host.
    pub host_changes: Vec<u64>,
    /// Calls in a row (on any host) that could not go on without waiting and did not wait
    /// (non-blocking `EAGAIN`, a connect in progress, a poll with no timeout that found
    /// nothing); any other outcome of a call that can wait resets it.
    pub streak: u64,
    /// The call under way was one of those.
    pub last_again: bool,
    /// The call under way continues a parked wait (it has waited: a timeout it returns
    /// is not one of those).
    pub continued: bool,
    /// Calls that completed and were not one of those (see [`crate::Sim::progress`]).
    pub progress: u64,
}

impl Tasks {
    /// Counts a change on `host`.
    pub(crate) fn touch(&mut self, host: usize) {
        if self.on {
            if let Some(c) = self.host_changes.get_mut(host) {
                *c += 1;
            }
        }
    }
}

/// The fewest records of destroyed sockets [`World::sweep_dead`] looks at.
pub(crate) const DEAD_SWEEP_MIN: usize = 1024;

/// The largest buffer kept for reuse (a loopback segment).
const SPARE_MAX: usize = 1 << 16;

/// Linux defaults for buffer sizes (`net.core.{r,w}mem_default`, `tcp_{r,w}mem[1]`).
const UNIX_BUF: i32 = 212_992;

impl World {
    pub(crate) fn new(seed: u64, cfg: Config) -> World {
        World {
            seed,
            rng: Rng::new(seed),
            now: 0,
            seq: 0,
            events: BTreeMap::new(),
            rx_buf: Vec::new(),
            spare: Vec::new(),
            spare_meta: Vec::new(),
            trace: Trace::new(cfg.keep_trace, cfg.trace_payloads),
            hosts: Vec::new(),
            objs: Slab::default(),
            next_obj: 1,
            capture: cfg.capture.then(Capture::default),
            rules: Rules::default(),
            held: BTreeMap::new(),
            links: Links::default(),
            names: BTreeMap::new(),
            unix_socks: BTreeSet::new(),
            cfg,
            dead_host: BTreeMap::new(),
            dead_sweep_at: DEAD_SWEEP_MIN,
            dead_names: BTreeMap::new(),
            tw_ends: VecDeque::new(),
            ctl_err: None,
            gc_scheduled: false,
            tasks: Tasks::default(),
        }
    }

    // ---- trace -------------------------------------------------------------------

    /// Starts a trace event on `host` at the current virtual time (see [`Trace`]).
    #[inline]
    pub(crate) fn ev(&mut self, host: usize, op: &'static str) -> Event<'_> {
        self.trace.ev(self.now, host, op)
    }

    /// Records an event of the simulated kernel or wire with two numbers (object ids,
    /// lengths, ports: see the call site).
    #[inline]
    pub(crate) fn tr(&mut self, host: usize, what: &'static str, a: i64, b: i64) {
        self.ev(host, what)
            .int(Name::BARE, a)
            .int(Name::BARE, b)
            .end();
    }

    // ---- buffers -----------------------------------------------------------------

    /// Gives the receive buffer back (unless it grew large).
    #[inline]
    pub(crate) fn give_rx_buf(&mut self, b: Vec<u8>) {
        if b.capacity() <= SPARE_MAX {
            self.rx_buf = b;
        }
    }

    /// An empty byte buffer, a spare one if there is one.
    #[inline]
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Keeps a buffer no longer needed for [`World::buffer`] (a few, not large ones).
    #[inline(always)]
    pub(crate) fn recycle(spare: &mut Vec<Vec<u8>>, mut b: Vec<u8>) {
        if spare.len() < 16 && b.capacity() <= SPARE_MAX && b.capacity() > 0 {
            b.clear();
            spare.push(b);
        }
    }

    /// A received segment with its sender's address, sending socket and descriptors; what
    /// carries none of them is plain data (no box), the box otherwise comes from a pool.
    pub(crate) fn seg_with(
        &mut self,
        data: Vec<u8>,
        ts: Nanos,
        from: Option<SockAddr>,
        src: Option<ObjId>,
        rights: Vec<ObjId>,
    ) -> Seg {
        if from.is_none() && src.is_none() && rights.is_empty() {
            return Seg::plain(data, ts);
        }
        let mut m = self.spare_meta.pop().unwrap_or_default();
        m.from = from;
        m.src = src;
        m.rights = rights;
        Seg::with_meta(data, ts, Some(m))
    }

    /// A segment read to its end: its descriptors, its buffer and box kept for reuse.
    pub(crate) fn retire(&mut self, seg: Seg) -> Vec<ObjId> {
        World::retire_into(&mut self.spare, &mut self.spare_meta, seg)
    }

    /// [`World::retire`] with the two pools at hand (for a caller that borrows the slab).
    #[allow(clippy::vec_box)] // (the boxes are what is reused)
    pub(crate) fn retire_into(
        spare: &mut Vec<Vec<u8>>,
        spare_meta: &mut Vec<Box<SegMeta>>,
        seg: Seg,
    ) -> Vec<ObjId> {
        World::recycle(spare, seg.data);
        let Some(mut m) = seg.meta else {
            return Vec::new();
        };
        let rights = std::mem::take(&mut m.rights);
        m.from = None;
        m.src = None;
        if spare_meta.len() < 16 {
            spare_meta.push(m);
        }
        rights
    }

    // ---- events ------------------------------------------------------------------

    /// Schedules an event; the key cancels it.
    pub(crate) fn schedule(&mut self, at: Nanos, ev: Ev) -> (Nanos, u64) {
        self.seq += 1;
        let key = (at.max(self.now), self.seq);
        self.events.insert(key, ev);
        key
    }

    /// Cancels a scheduled event (a timer that no longer matters), so a wait
    /// does not run the clock to it.
    pub(crate) fn cancel(&mut self, key: Option<(Nanos, u64)>) {
        if let Some(k) = key {
            self.events.remove(&k);
        }
    }

    /// Runs the next event if it is due by `deadline` (`None`: any). Without one,
    /// moves the clock to the deadline and returns `false`.
    pub(crate) fn step(&mut self, deadline: Option<Nanos>) -> bool {
        let due = match self.events.first_key_value() {
            Some((&(t, _), _)) => deadline.is_none_or(|d| t <= d),
            None => false,
        };
        if !due {
            if let Some(d) = deadline {
                self.now = self.now.max(d);
            }
            return false;
        }
        let ((t, _), ev) = self.events.pop_first().expect("checked above");
        self.now = self.now.max(t);
        self.handle(ev);
        true
    }

    /// Runs every event due by `until`, then sets the clock to `until`.
    pub(crate) fn run_until(&mut self, until: Nanos) {
        while self.step(Some(until)) {}
        self.now = self.now.max(until);
    }

    fn handle(&mut self, ev: Ev) {
        // (Arrivals count for both hosts in `arrive`.)
        match &ev {
            Ev::Arrive(_) | Ev::Release(..) => {}
            Ev::Retx(p, _) => self.tasks.touch(p.src_h),
            Ev::SynTimer { sock: id, .. } | Ev::OrphanTimeout(id) => {
                if self.exists(*id) {
                    let h = self.sr(*id).host;
                    self.tasks.touch(h);
                }
            }
            Ev::UnixGc => self.tasks.changes += 1,
        }
        match ev {
            Ev::Arrive(p) => self.arrive(p),
            Ev::Retx(p, attempt) => self.send_attempt(p, attempt),
            Ev::SynTimer { sock, gen, attempt } => self.syn_timer(sock, gen, attempt),
            Ev::UnixGc => self.unix_gc(),
            Ev::Release(a, b) => self.release_held(a, b),
            Ev::OrphanTimeout(id) => {
                if self.exists(id) && self.sr(id).orphan {
                    let host = self.sr(id).host;
                    self.tr(host, "orphan-timeout", id as i64, 0);
                    self.destroy(id);
                }
            }
        }
    }

    /// Waits (running the world) until `f` has an answer. `f` returning `None`
    /// means "would block". Non-blocking callers get `EAGAIN`; a timeout gives
    /// `on_timeout`; a wait nothing can ever end gives `EDEADLK`.
    ///
    /// In task mode the wait does not run the world: it parks (see [`Tasks`]).
    pub(crate) fn wait<T>(
        &mut self,
        nonblock: bool,
        timeout: Option<Nanos>,
        on_timeout: Errno,
        mut f: impl FnMut(&mut World) -> Option<Result<T>>,
    ) -> Result<T> {
        let resumed = self.tasks.resume.take();
        let deadline = match resumed {
            Some(d) => d,
            None => timeout.map(|t| self.now.saturating_add(t)),
        };
        loop {
            if let Some(r) = f(self) {
                return r;
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            if self.tasks.on {
                if deadline.is_some_and(|d| self.wait_over(d)) {
                    return Err(on_timeout);
                }
                self.tasks.parked = Some(deadline);
                self.tasks.parked_again = resumed.is_some();
                return Err(Errno::EAGAIN);
            }
            if !self.step(deadline) {
                if let Some(r) = f(self) {
                    return r;
                }
                return Err(if deadline.is_some() {
                    on_timeout
                } else {
                    Errno::EDEADLK
                });
            }
        }
    }

    /// Whether a wait with this deadline is over: the clock reached it and no event due
    /// by then is left (a wait that runs the world runs those first).
    pub(crate) fn wait_over(&self, deadline: Nanos) -> bool {
        self.now >= deadline
            && self
                .events
                .first_key_value()
                .is_none_or(|(&(t, _), _)| t > deadline)
    }

    /// One step of a task scheduler: runs the next event if it is due by `limit`
    /// (`None`: any), else moves the clock forward to `limit`.
    pub(crate) fn task_step(&mut self, limit: Option<Nanos>) -> crate::TaskStep {
        let due = self
            .events
            .first_key_value()
            .is_some_and(|(&(t, _), _)| limit.is_none_or(|d| t <= d));
        if due {
            self.step(limit);
            crate::TaskStep::Event
        } else {
            match limit {
                Some(d) if d > self.now => {
                    self.now = d;
                    crate::TaskStep::Advanced
                }
                _ => crate::TaskStep::Idle,
            }
        }
    }

    /// The timeout of a `close` that would linger on `fd` now (a blocking close of a
    /// connected TCP socket with `SO_LINGER {on, n > 0}` and unsent data, see `op_close`).
    pub(crate) fn linger_timeout(&self, host: usize, fd: Fd) -> Option<Nanos> {
        let obj = self.obj_of(host, fd).ok()?;
        if !self.exists(obj) || self.nonblock_of(obj) {
            return None;
        }
        let s = self.sr(obj);
        let lingers = s.is_tcp()
            && s.st == St::Connected
            && s.opts.linger.enabled
            && s.opts.linger.secs > 0
            && !s.sq.is_empty();
        lingers.then(|| (s.opts.linger.secs as Nanos).saturating_mul(1_000_000_000))
    }

    /// A blocking TCP connect in task mode that parked, continued: waits for the
    /// outcome of the handshake under way as `op_connect` does (calling `connect` again
    /// would report `EISCONN` or start over).
    pub(crate) fn connect_continue(&mut self, host: usize, fd: Fd) -> Result<()> {
        let id = self.sock_of(host, fd)?;
        self.wait(false, None, Errno::EINPROGRESS, |w| {
            if !w.exists(id) {
                return Some(Err(Errno::EBADF));
            }
            match w.sr(id).st {
                St::SynSent => None,
                St::Connected => Some(Ok(())),
                _ => {
                    let s = w.s(id);
                    let e = std::mem::take(&mut s.err);
                    Some(Err(if e != 0 {
                        Errno(e)
                    } else {
                        Errno::ECONNREFUSED
                    }))
                }
            }
        })
    }

    // ---- hosts, links --------------------------------------------------------------

    /// Adds a host; `None` when the world is full (`Config::max_hosts`).
    pub(crate) fn add_host(&mut self, name: &str) -> Option<usize> {
        if self.hosts.len() >= self.cfg.max_hosts {
            return None;
        }
        self.hosts.push(HostState {
            name: name.to_owned(),
            up: true,
            fds: FdTable::default(),
            listeners: BTreeMap::new(),
            time_wait: BTreeMap::new(),
            unix_paths: BTreeMap::new(),
            unix_abstract: BTreeMap::new(),
            ports: BTreeMap::new(),
            faults: HostFaults::default(),
            fault_free: true,
            objs: BTreeSet::new(),
        });
        let id = self.hosts.len() - 1;
        self.names.entry(name.to_ascii_lowercase()).or_insert(id);
        self.tasks.host_changes.push(0);
        self.trace.names.push(name.to_owned());
        self.ev(id, "host")
            .text(Name::NAME, format_args!("{name}"))
            .end();
        Some(id)
    }

    /// The first host named `name` (ASCII case ignored, as the resolver does).
    pub(crate) fn host_by_name(&self, name: &str) -> Option<usize> {
        self.names.get(&name.to_ascii_lowercase()).copied()
    }

    pub(crate) fn link(&self, a: usize, b: usize) -> LinkConfig {
        self.links.config(a, b)
    }

    /// Whether packets a -> b arrive at once, in the sender's call (loopback,
    /// or a fault-free zero-latency link between live hosts).
    #[inline]
    pub(crate) fn instant(&self, a: usize, b: usize) -> bool {
        a == b
            || (self.hosts[b].up
                && (self.links.all_default()
                    || (!self.links.is_cut(a, b) && self.link(a, b) == LinkConfig::default())))
    }

    pub(crate) fn sample_latency(&mut self, l: Latency) -> Nanos {
        match l {
            Latency::Fixed(d) => d.as_nanos() as Nanos,
            Latency::Uniform(lo, hi) => self
                .rng
                .range(lo.as_nanos() as Nanos, hi.as_nanos() as Nanos),
        }
    }

    /// Draws a host fault. A call that continues a parked wait (task mode) draws none
    /// before its wait: it drew them when it started, as a call that waits does once.
    pub(crate) fn fault(&mut self, host: usize, pick: fn(&HostFaults) -> f64) -> bool {
        if self.tasks.resume.is_some() {
            return false;
        }
        let p = pick(self.hosts[host].faults());
        self.rng.chance(p)
    }

    /// `EINTR` injection for a call about to run in blocking mode.
    pub(crate) fn eintr(&mut self, host: usize, blocking: bool) -> Result<()> {
        if blocking && self.fault(host, |f| f.eintr) {
            self.tr(host, "fault-eintr", 0, 0);
            return Err(Errno::EINTR);
        }
        Ok(())
    }

    // ---- objects and descriptors -----------------------------------------------------

    pub(crate) fn new_obj(&mut self, host: usize, kind: Kind, nonblock: bool) -> ObjId {
        let id = self.next_obj;
        self.next_obj += 1;
        if let Kind::Sock(s) = &kind {
            self.hosts[host].objs.insert(id);
            if s.is_unix() {
                self.unix_socks.insert(id);
            }
        }
        self.objs.insert(
            id,
            Obj {
                refs: 0,
                nonblock,
                kind,
            },
        );
        id
    }

    pub(crate) fn default_opts(&self, family: Family, ty: SockType) -> Opts {
        let (r, s) = if family == Family::UNIX || ty == SockType::DGRAM {
            (UNIX_BUF, UNIX_BUF)
        } else {
            (131_072, 16_384)
        };
        Opts {
            reuseaddr: false,
            reuseport: false,
            broadcast: false,
            debug: false,
            keepalive: false,
            oobinline: false,
            dontroute: false,
            timestamp: false,
            rcvbuf: self.cfg.rcvbuf.unwrap_or(r),
            sndbuf: self.cfg.sndbuf.unwrap_or(s),
            rcvlowat: 1,
            rcvtimeo: Timeval::default(),
            sndtimeo: Timeval::default(),
            linger: Linger::default(),
            nodelay: false,
            cork: false,
            keepintvl: 75,
            keepcnt: 9,
            keepidle: 7200,
            mloop4: true,
            mloop6: true,
            mttl4: 1,
            mhops6: 1,
            mif4: Ipv4Addr::UNSPECIFIED,
            mif6: 0,
        }
    }

    pub(crate) fn new_sock(
        &mut self,
        host: usize,
        family: Family,
        ty: SockType,
        proto: i32,
        nonblock: bool,
    ) -> ObjId {
        let opts = self.default_opts(family, ty);
        let s = Sock {
            host,
            family,
            ty,
            proto,
            st: St::Idle,
            local: None,
            peer: None,
            peer_id: None,
            backlog: 0,
            acceptq: VecDeque::new(),
            listener: None,
            rq: SegQueue::default(),
            rq_bytes: 0,
            sq: VecDeque::new(),
            inflight: 0,
            snd_nxt: 0,
            rcv_nxt: 0,
            ooo: OooQueue::default(),
            snd_urg: None,
            oob: None,
            mark: None,
            rq_total: 0,
            rd_total: 0,
            rd_eof: false,
            rd_shut: false,
            wr_shut: false,
            fin_pending: false,
            fin_sent: false,
            fin_first: false,
            err: 0,
            connect_pending: false,
            disconnecting: false,
            unlistened: false,
            no_listen: false,
            listen_port: false,
            conn_gen: 0,
            port_locked: false,
            addr_locked: false,
            unhashed: false,
            syn_timer: None,
            orphan: false,
            opts,
            mcast: Vec::new(),
        };
        self.new_obj(host, Kind::Sock(Box::new(s)), nonblock)
    }

    /// Installs `obj` at the lowest free descriptor of `host` (from 3).
    pub(crate) fn install(&mut self, host: usize, obj: ObjId, cloexec: bool) -> Result<Fd> {
        let hs = &mut self.hosts[host];
        if hs.fds.len() >= self.cfg.fd_limit {
            return Err(Errno::EMFILE);
        }
        let n = hs.fds.insert_lowest(FdSlot { obj, cloexec });
        if let Some(o) = self.objs.get_mut(&obj) {
            o.refs += 1;
        }
        Ok(Fd(n))
    }

    /// Frees a descriptor number (the slot must exist).
    pub(crate) fn uninstall(&mut self, host: usize, fd: Fd) {
        self.hosts[host].fds.remove(&fd.0);
    }

    /// Stops indexing a socket as a listener.
    pub(crate) fn unlisten(&mut self, id: ObjId) {
        let s = self.sr(id);
        let (host, port) = (s.host, s.local.as_ref().and_then(|a| a.port()));
        if let Some(p) = port {
            if let Some(set) = self.hosts[host].listeners.get_mut(&p) {
                set.remove(&id);
                if set.is_empty() {
                    self.hosts[host].listeners.remove(&p);
                }
            }
        }
    }

    #[inline]
    pub(crate) fn slot(&self, host: usize, fd: Fd) -> Result<FdSlot> {
        self.hosts[host].fds.get(&fd.0).copied().ok_or(Errno::EBADF)
    }

    #[inline]
    pub(crate) fn obj_of(&self, host: usize, fd: Fd) -> Result<ObjId> {
        self.slot(host, fd).map(|s| s.obj)
    }

    /// The socket behind `fd` (`EBADF`, `ENOTSOCK`).
    #[inline]
    pub(crate) fn sock_of(&self, host: usize, fd: Fd) -> Result<ObjId> {
        let id = self.obj_of(host, fd)?;
        match self.objs.get(&id).map(|o| &o.kind) {
            Some(Kind::Sock(_)) => Ok(id),
            Some(Kind::File(_)) => Err(Errno::ENOTSOCK),
            None => Err(Errno::EBADF),
        }
    }

    #[inline(always)]
    pub(crate) fn exists(&self, id: ObjId) -> bool {
        matches!(self.objs.get(&id).map(|o| &o.kind), Some(Kind::Sock(_)))
    }

    /// The socket `id` (an internal invariant: it exists).
    #[inline(always)]
    pub(crate) fn s(&mut self, id: ObjId) -> &mut Sock {
        match self.objs.get_mut(&id).map(|o| &mut o.kind) {
            Some(Kind::Sock(s)) => s,
            _ => vanished(id),
        }
    }

    #[inline(always)]
    pub(crate) fn sr(&self, id: ObjId) -> &Sock {
        match self.objs.get(&id).map(|o| &o.kind) {
            Some(Kind::Sock(s)) => s,
            _ => vanished(id),
        }
    }

    #[inline]
    pub(crate) fn nonblock_of(&self, id: ObjId) -> bool {
        self.objs.get(&id).is_some_and(|o| o.nonblock)
    }

    /// Drops one reference; the last one closes the object.
    pub(crate) fn unref(&mut self, id: ObjId) {
        let last = match self.objs.get_mut(&id) {
            Some(o) => {
                o.refs = o.refs.saturating_sub(1);
                o.refs == 0
            }
            None => false,
        };
        if last {
            let is_sock = matches!(self.objs.get(&id).map(|o| &o.kind), Some(Kind::Sock(_)));
            if is_sock {
                self.sock_release(id);
            } else {
                self.objs.remove(&id);
            }
        }
    }

    /// Removes a socket object for good, with its names and queued rights.
    pub(crate) fn destroy(&mut self, id: ObjId) {
        if self.exists(id) && self.sr(id).st == St::Listen {
            self.unlisten(id);
        }
        let Some(obj) = self.objs.remove(&id) else {
            return;
        };
        let Kind::Sock(s) = obj.kind else { return };
        let host = s.host;
        self.hosts[host].objs.remove(&id);
        self.unix_socks.remove(&id);
        self.dead_host.insert(id, host);
        if let (true, Some(name)) = (s.is_unix(), &s.local) {
            self.dead_names.insert(id, name.clone());
        }
        if self.dead_host.len() >= self.dead_sweep_at {
            self.sweep_dead();
        }
        if let Some(addr) = &s.local {
            match addr {
                SockAddr::Unix(llsocket_api::UnixAddr::Path(p)) => {
                    if let Some(slot) = self.hosts[host].unix_paths.get_mut(p) {
                        if *slot == Some(id) {
                            *slot = None;
                        }
                    }
                }
                SockAddr::Unix(llsocket_api::UnixAddr::Abstract(p)) => {
                    let key = (s.ty.0, p.clone());
                    if self.hosts[host].unix_abstract.get(&key) == Some(&id) {
                        self.hosts[host].unix_abstract.remove(&key);
                    }
                }
                _ => {
                    if let Some(port) = addr.port() {
                        let key = (s.is_udp(), port);
                        if let Some(set) = self.hosts[host].ports.get_mut(&key) {
                            set.remove(&id);
                            if set.is_empty() {
                                self.hosts[host].ports.remove(&key);
                            }
                        }
                    }
                }
            }
        }
        for seg in s.rq {
            for r in seg.into_rights() {
                self.unref(r);
            }
        }
        for child in s.acceptq {
            self.abort(child);
        }
    }

    /// Resets a connection from this end (RST to the peer) and removes the socket.
    pub(crate) fn abort(&mut self, id: ObjId) {
        if !self.exists(id) {
            return;
        }
        let (host, peer, st) = {
            let s = self.sr(id);
            (s.host, s.peer_id, s.st)
        };
        if self.sr(id).is_unix() {
            if let Some(p) = peer.filter(|&p| p != id && self.exists(p)) {
                let name = self.sr(id).local.clone();
                self.unix_peer_gone(p, true, name);
            }
            self.destroy(id);
            return;
        }
        if let (Some(p), St::Connected) = (peer, st) {
            let to_host = self.objs.get(&p).map(|_| self.sr(p).host);
            if let Some(th) = to_host {
                self.transmit(Packet::rst(host, th, p));
            }
        }
        self.destroy(id);
    }

    /// Releases a socket whose last reference is gone (as its last `close` does).
    pub(crate) fn release_now(&mut self, id: ObjId) {
        self.sock_release(id);
    }

    /// A closed descriptor table entry's object: release a socket as `close` does.
    fn sock_release(&mut self, id: ObjId) {
        let (host, unix, conn, st, unread, linger0) = {
            let s = self.sr(id);
            (
                s.host,
                s.is_unix(),
                s.is_conn(),
                s.st,
                // (Zero-length seqpacket messages left unread, even with descriptors,
                // do not count: Linux reports EPIPE, not ECONNRESET, to the survivor.)
                s.rq.iter().any(|g| g.data.len() > g.off) || s.oob.is_some(),
                s.is_tcp() && s.opts.linger.enabled && s.opts.linger.secs == 0,
            )
        };
        self.tr(host, "release", id as i64, i64::from(unread));
        if conn && st == St::Connected {
            if unread || linger0 {
                // Linux: unread data (or SO_LINGER 0) turns the close into a reset.
                self.abort(id);
                return;
            }
            if unix {
                let peer = self.sr(id).peer_id;
                if let Some(p) = peer.filter(|&p| p != id && self.exists(p)) {
                    let name = self.sr(id).local.clone();
                    self.unix_peer_gone(p, false, name);
                }
                self.destroy(id);
                return;
            }
            // TCP: FIN after the send queue drains; the orphan flushes it, waits for
            // the peer's FIN (FIN_WAIT2, at most 60 s: tcp_fin_timeout) and goes.
            let s = self.s(id);
            s.orphan = true;
            s.wr_shut = true;
            s.rd_shut = true;
            s.fin_pending = true;
            self.pump(id);
            self.reap(id);
            if self.exists(id) {
                let at = self.now + 60_000_000_000;
                self.schedule(at, Ev::OrphanTimeout(id));
            }
            return;
        }
        // Unix datagram peers connected to us keep pointing at the dead socket:
        // their next send is ECONNREFUSED (see `sendmsg_inner`).
        self.destroy(id);
    }

    /// The other end of a unix stream/seqpacket connection went away: Linux sets
    /// `SHUTDOWN_MASK` on the survivor (EOF, EPIPE) and `ECONNRESET` when data was
    /// left unread (or the connection was never accepted). The state stays connected.
    pub(crate) fn unix_peer_gone(&mut self, p: ObjId, reset: bool, name: Option<SockAddr>) {
        let ps = self.s(p);
        // getpeername keeps answering with the dead peer's name.
        if let Some(n) = name {
            ps.peer = Some(n);
        }
        ps.rd_eof = true;
        ps.wr_shut = true;
        ps.peer_id = None;
        if reset {
            ps.err = libc::ECONNRESET;
        }
    }

    /// Forgets the destroyed sockets no live socket can ask about: what is left of a
    /// socket once it is gone (its host, its unix name) is looked up only through a live
    /// socket's peer (`pump`'s packets, `getpeername`, the socket table) or the sender of
    /// a message queued on one (`recvfrom`'s address). Runs when the records double (at
    /// least [`DEAD_SWEEP_MIN`], at least one per live socket), so a world with sockets
    /// coming and going keeps records in proportion to what is live, at a constant cost
    /// per socket destroyed.
    pub(crate) fn sweep_dead(&mut self) {
        let mut asked = BTreeSet::new();
        let mut live = 0;
        for h in &self.hosts {
            for id in &h.objs {
                let Some(Kind::Sock(s)) = self.objs.get(id).map(|o| &o.kind) else {
                    continue;
                };
                live += 1;
                asked.extend(s.peer_id);
                asked.extend(s.rq.iter().filter_map(Seg::src));
            }
        }
        self.dead_host.retain(|id, _| asked.contains(id));
        self.dead_names.retain(|id, _| asked.contains(id));
        self.dead_sweep_at = (2 * self.dead_host.len()).max(live).max(DEAD_SWEEP_MIN);
    }

    /// Removes an orphan once it has nothing left to send.
    pub(crate) fn reap(&mut self, id: ObjId) {
        if !self.exists(id) {
            return;
        }
        let s = self.sr(id);
        let closed_both = s.fin_sent && s.rd_eof;
        if s.orphan && (closed_both || s.st != St::Connected) && s.inflight == 0 && s.sq.is_empty()
        {
            if closed_both && s.st == St::Connected {
                self.enter_time_wait(id);
            }
            self.destroy(id);
        }
    }

    /// The active closer of a TCP connection keeps its address in `TIME_WAIT` for
    /// 60 s (Linux's `TCP_TIMEWAIT_LEN`): binding it again needs `SO_REUSEADDR` on
    /// both sockets until then.
    pub(crate) fn enter_time_wait(&mut self, id: ObjId) {
        let s = self.sr(id);
        if !s.is_tcp() || !s.fin_first {
            return;
        }
        let Some(local) = s.local.clone() else { return };
        let Some(port) = local.port() else { return };
        let (host, reuse, peer) = (s.host, s.opts.reuseaddr, s.peer.as_ref().map(canon));
        let until = self.now + 60_000_000_000;
        self.tr(host, "time-wait", i64::from(port), 0);
        self.prune_time_wait();
        self.tw_ends.push_back((until, host, port));
        self.hosts[host]
            .time_wait
            .entry(port)
            .or_default()
            .push(TimeWait {
                local: canon(&local),
                peer,
                reuse,
                until,
            });
    }

    /// Removes the `TIME_WAIT` entries that have ended (in the order they end: a world
    /// with connections coming and going keeps only the last 60 s of them).
    pub(crate) fn prune_time_wait(&mut self) {
        while let Some(&(until, host, port)) = self.tw_ends.front() {
            if until > self.now {
                break;
            }
            self.tw_ends.pop_front();
            let now = self.now;
            let tw = &mut self.hosts[host].time_wait;
            if let Some(v) = tw.get_mut(&port) {
                v.retain(|e| e.until > now);
                if v.is_empty() {
                    tw.remove(&port);
                }
            }
        }
    }

    /// Whether a `TIME_WAIT` entry blocks binding `addr` (with SO_REUSEADDR `reuse`).
    pub(crate) fn time_wait_blocks(&mut self, host: usize, addr: &SockAddr, reuse: bool) -> bool {
        let Some(port) = addr.port() else {
            return false;
        };
        let now = self.now;
        let Some(v) = self.hosts[host].time_wait.get_mut(&port) else {
            return false;
        };
        v.retain(|e| e.until > now);
        let a = canon(addr).as_socket_addr().map(|x| x.ip());
        let blocked = v.iter().any(|tw| {
            let t = tw.local.as_socket_addr().map(|x| x.ip());
            let overlap = match (a, t) {
                (Some(a), Some(t)) => a.is_unspecified() || t.is_unspecified() || a == t,
                _ => false,
            };
            overlap && !(reuse && tw.reuse)
        });
        if v.is_empty() {
            self.hosts[host].time_wait.remove(&port);
        }
        blocked
    }

    // ---- addresses -------------------------------------------------------------------

    /// The host an IP address routes to from `from` (`None`: nobody answers), by the
    /// address plan (`addr`): arithmetic, no table.
    pub(crate) fn route(&self, from: usize, ip: IpAddr) -> Option<usize> {
        let ip = canon_ip(ip);
        let local = match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
            IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified(),
        };
        if local {
            return Some(from);
        }
        host_index(ip).filter(|&n| n < self.hosts.len())
    }

    /// Whether `ip` is an address of `host` (for `bind`).
    pub(crate) fn is_local(&self, host: usize, ip: IpAddr) -> bool {
        let ip = canon_ip(ip);
        match ip {
            IpAddr::V4(v4) => {
                v4.is_unspecified()
                    || v4.is_loopback()
                    || v4 == host_v4(host)
                    || v4.is_multicast()
                    || v4 == Ipv4Addr::BROADCAST
                    || v4 == segment_broadcast(host)
            }
            IpAddr::V6(v6) => {
                v6.is_unspecified() || v6.is_loopback() || v6 == host_v6(host) || v6.is_multicast()
            }
        }
    }

    /// The source address a socket bound to `local` uses towards `dst`.
    pub(crate) fn source_ip(&self, host: usize, local: IpAddr, dst: IpAddr) -> IpAddr {
        let lc = canon_ip(local);
        if !lc.is_unspecified() && !lc.is_multicast() {
            return lc;
        }
        match canon_ip(dst) {
            IpAddr::V4(d) if d.is_loopback() || d.is_unspecified() => {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
            IpAddr::V4(_) => IpAddr::V4(host_v4(host)),
            IpAddr::V6(d) if d.is_loopback() || d.is_unspecified() => {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            }
            IpAddr::V6(_) => IpAddr::V6(host_v6(host)),
        }
    }

    /// Picks a free ephemeral port (32768..=60999, drawn from the seed).
    pub(crate) fn ephemeral(&mut self, host: usize, udp: bool) -> Result<u16> {
        // (A port whose `TIME_WAIT` ended is free again.)
        self.prune_time_wait();
        for _ in 0..64 {
            let p = self.rng.range(32768, 60999) as u16;
            let tw = !udp && self.hosts[host].time_wait.contains_key(&p);
            if !self.hosts[host].ports.contains_key(&(udp, p)) && !tw {
                return Ok(p);
            }
        }
        (32768..=60999u16)
            .find(|p| !self.hosts[host].ports.contains_key(&(udp, *p)))
            .ok_or(Errno::EADDRINUSE)
    }
}

#[cfg(test)]
mod tests {
    use super::{Seg, SegQueue};

    /// The object table against an ordered map, over inserts and removes in every
    /// pattern a world makes (in order, at random, runs of the same home, growing and
    /// shrinking), with a look-up of every id ever used after each step.
    #[test]
    fn the_object_table_finds_what_an_ordered_map_finds() {
        use super::{Kind, Obj, Slab};
        use std::collections::BTreeMap;
        let obj = |k: u64| Obj {
            refs: k as u32,
            nonblock: false,
            kind: Kind::File(k.to_le_bytes().to_vec()),
        };
        let mut rng = crate::rng::Rng::new(11);
        let (mut slab, mut model) = (Slab::default(), BTreeMap::new());
        let mut next = 0u64;
        for round in 0..4_000u64 {
            // Phases: grow, churn, shrink to nothing, grow again.
            let grow = match round / 1_000 {
                0 => 0.9,
                1 => 0.5,
                2 => 0.1,
                _ => 0.7,
            };
            if model.is_empty() || rng.chance(grow) {
                slab.insert(next, obj(next));
                model.insert(next, next);
                next += 1;
            } else {
                let keys: Vec<u64> = model.keys().copied().collect();
                let k = keys[rng.range(0, keys.len() as u64 - 1) as usize];
                let o = slab.remove(&k).expect("present");
                assert_eq!(u64::from(o.refs), model.remove(&k).unwrap());
                assert!(slab.remove(&k).is_none());
            }
            if round % 97 == 0 || round % 1_000 > 990 {
                for k in 0..next + 3 {
                    assert_eq!(
                        slab.get(&k).map(|o| u64::from(o.refs)),
                        model.get(&k).copied(),
                        "round {round}, id {k}"
                    );
                }
            }
            assert_eq!(slab.len, model.len());
            assert!(slab.capacity() == 0 || slab.len * 8 <= slab.capacity() * 7);
            // (Shrunk as objects go: memory in proportion to what exists.)
            assert!(slab.capacity() <= (32 * slab.len).max(16), "round {round}");
        }
    }

    fn seg(b: u8) -> Seg {
        Seg::plain(vec![b], 0)
    }

    #[test]
    fn a_segment_boxes_only_what_datagrams_and_unix_messages_carry() {
        use super::SegMeta;
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<Seg>(), 48);
        let empty = Seg::plain(vec![1], 0);
        assert!(empty.from().is_none() && empty.src().is_none() && empty.rights().is_empty());
        let mut s = Seg::with_meta(
            vec![2],
            5,
            Some(Box::new(SegMeta {
                from: None,
                src: Some(7),
                rights: vec![8, 9],
            })),
        );
        assert_eq!((s.src(), s.rights(), s.ts), (Some(7), &[8, 9][..], 5));
        assert_eq!(s.take_rights(), vec![8, 9]);
        assert!(
            s.rights().is_empty() && s.src() == Some(7),
            "taken: only the rights"
        );
        let s = Seg::with_meta(
            vec![3],
            0,
            Some(Box::new(SegMeta {
                rights: vec![4],
                ..SegMeta::default()
            })),
        );
        assert_eq!(s.into_rights(), vec![4]);
        assert!(Seg::plain(vec![], 0).into_rights().is_empty());
    }

    fn bytes(q: &SegQueue) -> Vec<u8> {
        q.iter().map(|s| s.data[0]).collect()
    }

    #[test]
    fn a_seg_queue_keeps_order_whatever_is_inline() {
        let mut q = SegQueue::default();
        assert!(q.is_empty() && q.pop_front().is_none() && q.front_mut().is_none());
        for b in 1..=4 {
            q.push_back(seg(b));
        }
        assert_eq!(bytes(&q), [1, 2, 3, 4]);
        assert_eq!(q.pop_front().map(|s| s.data[0]), Some(1));
        q.get_mut(1).unwrap().data[0] = 33;
        assert_eq!(q.remove(1).map(|s| s.data[0]), Some(33));
        assert_eq!(bytes(&q), [2, 4]);
        assert_eq!(q.remove(0).map(|s| s.data[0]), Some(2));
        assert_eq!(q.front_mut().map(|s| s.data[0]), Some(4));
        q.push_back(seg(5));
        assert_eq!((&q).into_iter().count(), 2);
        assert_eq!(q.drain().map(|s| s.data[0]).collect::<Vec<_>>(), [4, 5]);
        assert!(q.is_empty() && q.get_mut(0).is_none() && q.remove(0).is_none());
        q.push_back(seg(6));
        assert_eq!(q.into_iter().map(|s| s.data[0]).collect::<Vec<_>>(), [6]);
    }
}
