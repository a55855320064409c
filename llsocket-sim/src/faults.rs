//! Fault configuration: the latency and faults of a one-way link ([`LinkConfig`],
//! [`Latency`]), the table that resolves them per link (pair, group rule, default)
//! with partitions ([`Links`]), and a host's fault switches ([`HostFaults`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The latency of a link.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Uniformly distributed between the two bounds (inclusive), drawn from the world's seed.
    Uniform(Duration, Duration),
}

/// Faults on a one-way link between two hosts ([`Sim::set_link`](crate::Sim::set_link)).
///
/// TCP hides loss, duplication and reordering from the byte stream (they show as
/// delay: a lost segment is retransmitted after 200 ms, doubling); UDP shows them.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct LinkConfig {
    /// Delay of every packet.
    pub latency: Latency,
    /// Probability (0..1) that a packet is lost.
    pub loss: f64,
    /// Probability (0..1) that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability (0..1) that a packet is held back (delivered after later ones).
    pub reorder: f64,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            latency: Latency::Fixed(Duration::ZERO),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }
}

/// Per-host fault switches (probabilities 0..1), drawn from the world's seed.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct HostFaults {
    /// A stream send or receive moves fewer bytes than it could (at least one).
    pub short_io: f64,
    /// A call in blocking mode (a blocking socket without `MSG_DONTWAIT`, or a
    /// `poll` with a timeout) fails with `EINTR` before doing anything.
    pub eintr: f64,
    /// A TCP send resets its connection instead (both ends see `ECONNRESET`).
    pub reset: f64,
}

/// A named group of hosts ([`crate::Sim::group`]): its index in [`Links`].
pub(crate) type GroupId = u32;

/// Link configurations and partitions, looked up per one-way link `a -> b` in this
/// order: the pair's own ([`crate::Sim::set_link`]), else a rule between groups of
/// `a` and `b` ([`crate::Sim::set_link_groups`]; when several apply, the one set
/// last), else the default (instant, fault-free). A link is cut when the pair is cut
/// or any group rule cuts it; healing a pair does not lift a group cut.
///
/// So 10 000 hosts in two groups need two rules, not 10 000² entries. Every map is
/// ordered, and a lookup costs a few `O(log n)` steps (groups per host are few).
#[derive(Debug, Default)]
pub(crate) struct Links {
    pairs: BTreeMap<(usize, usize), LinkConfig>,
    cut: BTreeSet<(usize, usize)>,
    groups: BTreeMap<String, GroupId>,
    /// The groups of each host, ascending (hosts past the end are in none).
    member_of: Vec<Vec<GroupId>>,
    /// Group rules: the order they were set in (the last set wins), the config.
    rules: BTreeMap<(GroupId, GroupId), (u64, LinkConfig)>,
    group_cut: BTreeSet<(GroupId, GroupId)>,
    seq: u64,
}

impl Links {
    /// The configuration of the one-way link `a -> b`.
    pub(crate) fn config(&self, a: usize, b: usize) -> LinkConfig {
        if let Some(c) = self.pairs.get(&(a, b)) {
            return *c;
        }
        if self.rules.is_empty() {
            return LinkConfig::default();
        }
        let mut best: Option<(u64, LinkConfig)> = None;
        for &ga in self.groups_of(a) {
            for &gb in self.groups_of(b) {
                if let Some(&(seq, c)) = self.rules.get(&(ga, gb)) {
                    if best.is_none_or(|(s, _)| seq > s) {
                        best = Some((seq, c));
                    }
                }
            }
        }
        best.map(|(_, c)| c).unwrap_or_default()
    }

    /// Whether no link has a configuration or a cut (pair or group): every link is then
    /// the default, instant and fault-free, with no look-up.
    #[inline]
    pub(crate) fn all_default(&self) -> bool {
        self.pairs.is_empty()
            && self.cut.is_empty()
            && self.rules.is_empty()
            && self.group_cut.is_empty()
    }

    /// Whether the one-way link `a -> b` is cut.
    pub(crate) fn is_cut(&self, a: usize, b: usize) -> bool {
        if self.cut.contains(&(a, b)) {
            return true;
        }
        if self.group_cut.is_empty() {
            return false;
        }
        let gb = self.groups_of(b);
        self.groups_of(a)
            .iter()
            .any(|ga| gb.iter().any(|gb| self.group_cut.contains(&(*ga, *gb))))
    }

    fn groups_of(&self, h: usize) -> &[GroupId] {
        self.member_of.get(h).map_or(&[], Vec::as_slice)
    }

    /// The group named `name`, made (empty) on first use.
    pub(crate) fn group(&mut self, name: &str) -> GroupId {
        let next = self.groups.len() as GroupId;
        *self.groups.entry(name.to_owned()).or_insert(next)
    }

    /// Adds host `h` to group `g` (no effect if it is in already).
    pub(crate) fn join(&mut self, g: GroupId, h: usize) {
        if self.member_of.len() <= h {
            self.member_of.resize_with(h + 1, Vec::new);
        }
        let v = &mut self.member_of[h];
        if let Err(i) = v.binary_search(&g) {
            v.insert(i, g);
        }
    }

    /// The hosts of group `name`, ascending (empty for an unknown name).
    pub(crate) fn members(&self, name: &str) -> Vec<usize> {
        let Some(g) = self.groups.get(name) else {
            return Vec::new();
        };
        (0..self.member_of.len())
            .filter(|&h| self.member_of[h].binary_search(g).is_ok())
            .collect()
    }

    pub(crate) fn set_pair(&mut self, a: usize, b: usize, cfg: LinkConfig) {
        self.pairs.insert((a, b), cfg);
    }

    pub(crate) fn set_rule(&mut self, ga: GroupId, gb: GroupId, cfg: LinkConfig) {
        self.seq += 1;
        self.rules.insert((ga, gb), (self.seq, cfg));
    }

    pub(crate) fn cut_pair(&mut self, a: usize, b: usize, on: bool) {
        if on {
            self.cut.insert((a, b));
        } else {
            self.cut.remove(&(a, b));
        }
    }

    pub(crate) fn cut_groups(&mut self, ga: GroupId, gb: GroupId, on: bool) {
        if on {
            self.group_cut.insert((ga, gb));
        } else {
            self.group_cut.remove(&(ga, gb));
        }
    }
}
