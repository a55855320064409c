//! Programmable packet rules: a test's function sees every packet on a link (or in the
//! whole world) and returns a [`Verdict`] — pass, drop, delay, duplicate, or hold back
//! behind later packets ([`crate::Sim::add_rule`], [`crate::Sim::add_link_rule`]).
//!
//! # How rules stack
//!
//! A packet leaving host A for host B meets, in order:
//!
//! 1. the built-in rule of the link A → B: the [`crate::LinkConfig`] knobs (a partition
//!    or a down host drops; `loss` drops; `latency` delays; `reorder` delays by a random
//!    extra; `duplicate` sends a second copy up to 1 ms later). It draws from the world's
//!    generator exactly as before rules existed, so worlds without rules replay as they
//!    always did;
//! 2. every installed rule that applies to A → B (world-wide ones and those of that
//!    link), in the order they were installed. A rule's [`Verdict`] adds to the packet's
//!    fate: `Drop` ends it (the rules after it do not see the packet), `Delay` adds to
//!    its delay, `Duplicate` adds one copy (delivered at the same time, just after the
//!    packet), `HoldBack` holds it until the next packet over the same link has been
//!    delivered, then delivers it right after that one (so it arrives out of order) —
//!    or, if no packet follows within [`HOLD_LIMIT`], at that time.
//!
//! A dropped TCP segment (data, `FIN`, `SYN|ACK`) is retransmitted after 200 ms, 400 ms,
//! ... as for link loss; the rule sees each retransmission again
//! ([`PacketInfo::attempt`]). A `SYN` or a UDP datagram is simply gone.
//!
//! Packets between two hosts joined by an instant link (loopback; a fault-free link with
//! no latency) are delivered inside the sending call, and stay so under `Pass`,
//! `Duplicate` (the copy arrives right after, in the same call) and `HoldBack` (the
//! held packet arrives inside the call that sends the next one). A `Delay` takes the
//! packet out of the call: it arrives when the world runs to its time, like a packet
//! of a slow link.
//!
//! # Determinism
//!
//! A rule must be a function of what it is given: the packet, and the [`RuleRng`] (the
//! world's one generator; drawing from it changes later choices in the world, the same
//! way in every run). Rules run inside the world: they must not call back into the
//! [`crate::Sim`] or its hosts (that panics with "already borrowed"). Every verdict but
//! `Pass` is a trace event (`rule-drop`, `rule-delay`, `rule-dup`, `rule-hold`), so it
//! is in the digest.
//!
//! Unix-domain traffic does not cross links and meets no rule.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::rng::Rng;

/// How long a held-back packet waits for a later one before it is delivered anyway.
pub const HOLD_LIMIT: Duration = Duration::from_millis(100);

/// What a rule decides for one packet (see the module docs for how verdicts stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver as the rules before decided.
    Pass,
    /// Lose the packet (TCP retransmits data, `FIN` and `SYN|ACK`).
    Drop,
    /// Deliver it this much later.
    Delay(Duration),
    /// Deliver one more copy.
    Duplicate,
    /// Deliver it after the next packet of the same link.
    HoldBack,
}

/// The transport protocol of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// TCP flags of a segment, as on the wire (the simulator's segments: `SYN`, `SYN|ACK`,
/// data `PSH|ACK` (`URG` too with urgent data), `FIN|ACK`, `RST`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One packet as a rule sees it.
#[derive(Debug)]
pub struct PacketInfo<'a> {
    /// The virtual time it leaves its host.
    pub time: Duration,
    /// The names of the sending and the receiving host.
    pub src_host: &'a str,
    pub dst_host: &'a str,
    /// Source and destination address and port.
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub proto: Proto,
    /// TCP flags (empty for UDP).
    pub flags: TcpFlags,
    /// The payload (read-only) and its length.
    pub payload: &'a [u8],
    /// 0 for the first transmission; n for the nth retransmission of a TCP segment.
    pub attempt: u32,
}

impl PacketInfo<'_> {
    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty (a `SYN`, `FIN`, `RST` or an empty datagram).
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
}

/// The world's generator, lent to a rule: its draws are part of the seeded run.
#[derive(Debug)]
pub struct RuleRng<'a>(pub(crate) &'a mut Rng);

impl RuleRng<'_> {
    /// `true` with probability `p` (0 draws nothing and is `false`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.0.chance(p)
    }

    /// A number from `lo` to `hi`, both included.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.range(lo, hi)
    }

    /// A duration from `lo` to `hi` (nanosecond resolution).
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_nanos() as u64, hi.as_nanos() as u64);
        Duration::from_nanos(self.0.range(lo, hi.max(lo)))
    }
}

/// Names an installed rule, for [`crate::Sim::remove_rule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub(crate) u64);

/// A rule: a function of the packet and the world's generator.
pub type Rule = Box<dyn FnMut(&PacketInfo<'_>, &mut RuleRng<'_>) -> Verdict>;

/// The installed rules: each by id (ids grow with installation, so id order is
/// installation order), and the ids that apply to a packet, by scope — the world-wide
/// ones and those of each link — so a packet looks at its own link's rules only, and a
/// link without rules costs one map look-up.
#[derive(Default)]
pub(crate) struct Rules {
    next: u64,
    rules: BTreeMap<RuleId, Rule>,
    global: Vec<RuleId>,
    by_link: BTreeMap<(usize, usize), Vec<RuleId>>,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("global", &self.global)
            .field("by_link", &self.by_link)
            .finish()
    }
}

impl Rules {
    pub(crate) fn add(&mut self, link: Option<(usize, usize)>, rule: Rule) -> RuleId {
        self.next += 1;
        let id = RuleId(self.next);
        self.rules.insert(id, rule);
        match link {
            None => self.global.push(id),
            Some(l) => self.by_link.entry(l).or_default().push(id),
        }
        id
    }

    pub(crate) fn remove(&mut self, id: RuleId) -> bool {
        if self.rules.remove(&id).is_none() {
            return false;
        }
        self.global.retain(|&r| r != id);
        self.by_link.retain(|_, ids| {
            ids.retain(|&r| r != id);
            !ids.is_empty()
        });
        true
    }

    /// Whether any rule sees packets from host `a` to host `b`.
    #[inline]
    pub(crate) fn applies(&self, a: usize, b: usize) -> bool {
        !self.rules.is_empty() && (!self.global.is_empty() || self.by_link.contains_key(&(a, b)))
    }
}

/// The fate the rules gave a packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Fate {
    pub drop: bool,
    pub delay: Duration,
    pub copies: u32,
    pub hold: bool,
}

impl Fate {
    /// Whether nothing changed: the packet goes as it would without rules.
    pub(crate) fn pass(&self) -> bool {
        *self == Fate::default()
    }
}

impl Rules {
    /// Runs every rule of `a` → `b` on `info`, in installation order, until one drops.
    pub(crate) fn judge(
        &mut self,
        a: usize,
        b: usize,
        info: &PacketInfo<'_>,
        rng: &mut Rng,
    ) -> Fate {
        let mut fate = Fate::default();
        let link = self.by_link.get(&(a, b)).map_or(&[][..], Vec::as_slice);
        // The two id lists are each in installation order: merge them.
        let (mut g, mut k) = (0, 0);
        loop {
            let id = match (self.global.get(g), link.get(k)) {
                (Some(&x), Some(&y)) if x < y => {
                    g += 1;
                    x
                }
                (_, Some(&y)) => {
                    k += 1;
                    y
                }
                (Some(&x), None) => {
                    g += 1;
                    x
                }
                (None, None) => break,
            };
            let rule = self
                .rules
                .get_mut(&id)
                .expect("an indexed rule is installed");
            match rule(info, &mut RuleRng(rng)) {
                Verdict::Pass => {}
                Verdict::Drop => {
                    fate.drop = true;
                    break;
                }
                Verdict::Delay(d) => fate.delay = fate.delay.saturating_add(d),
                Verdict::Duplicate => fate.copies += 1,
                Verdict::HoldBack => fate.hold = true,
            }
        }
        fate
    }
}
