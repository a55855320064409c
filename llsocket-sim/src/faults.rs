//! Fault configuration: the latency and faults of a one-way link ([`LinkConfig`],
//! [`Latency`]) and a host's fault switches ([`HostFaults`]).

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
