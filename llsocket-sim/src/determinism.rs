//! The determinism check: run a scenario twice from the same seed and configuration, compare
//! the two traces event by event, and name the first event where they part.

use std::fmt;
use std::time::Duration;

use crate::{Sim, SimBuilder, TraceEvent};

/// Events shown before the first divergent one.
const CONTEXT: usize = 5;

/// Two runs of one scenario that did not produce the same trace ([`check_determinism`]).
///
/// `Display` (and `Debug`, so `unwrap` prints it) shows the seed, the index of the first
/// event that differs, up to five events before it (the same in both runs), and that
/// event as each run recorded it.
///
/// [`check_determinism`]: crate::check_determinism
#[derive(Clone, PartialEq, Eq)]
pub struct Divergence {
    seed: u64,
    index: usize,
    before: Vec<String>,
    first: String,
    second: String,
}

impl Divergence {
    /// The seed both runs used.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The index (from 0) of the first event that differs.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Up to five events before it, oldest first (the same in both runs).
    pub fn before(&self) -> &[String] {
        &self.before
    }

    /// The first run's event at [`Divergence::index`] (or where its trace ended).
    pub fn first(&self) -> &str {
        &self.first
    }

    /// The second run's event at [`Divergence::index`] (or where its trace ended).
    pub fn second(&self) -> &str {
        &self.second
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, i) = (self.seed, self.index);
        writeln!(
            f,
            "llsocket-sim: two runs of seed={s} diverge at event #{i} \
             (replay with LLSOCKET_SIM_SEED={s})"
        )?;
        if self.before.is_empty() {
            writeln!(f, "  (no events before it)")?;
        } else {
            writeln!(f, "  events before it, the same in both runs:")?;
            let first = i - self.before.len();
            for (k, line) in self.before.iter().enumerate() {
                writeln!(f, "    #{} {line}", first + k)?;
            }
        }
        writeln!(f, "  run 1 #{i}: {}", self.first)?;
        write!(f, "  run 2 #{i}: {}", self.second)
    }
}

impl fmt::Debug for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Divergence {}

/// What a run left: its events and the clock at the end.
struct Run<T> {
    value: T,
    events: Vec<TraceEvent>,
    end: Duration,
    digest: u64,
}

fn run<T>(b: &SimBuilder, scenario: &mut impl FnMut(&Sim) -> T) -> Run<T> {
    let sim = b.clone().keep_trace(true).build();
    let value = scenario(&sim);
    Run {
        value,
        events: sim.events(),
        end: sim.now(),
        digest: sim.trace_digest(),
    }
}

fn end_line(r: &Run<impl Sized>) -> String {
    format!(
        "(end of run: {} events, clock at {:?})",
        r.events.len(),
        r.end
    )
}

pub(crate) fn check<T>(
    b: SimBuilder,
    mut scenario: impl FnMut(&Sim) -> T,
) -> Result<T, Divergence> {
    let one = run(&b, &mut scenario);
    let two = run(&b, &mut scenario);
    let common = one.events.len().min(two.events.len());
    let at = (0..common)
        .find(|&i| one.events[i] != two.events[i])
        .or_else(|| {
            // A trace that stops early, or the same events but the clock moved on differently.
            (one.events.len() != two.events.len() || one.end != two.end || one.digest != two.digest)
                .then_some(common)
        });
    let Some(i) = at else {
        return Ok(one.value);
    };
    let show = |r: &Run<T>| {
        r.events
            .get(i)
            .map_or_else(|| end_line(r), ToString::to_string)
    };
    Err(Divergence {
        seed: b.seed,
        index: i,
        before: one.events[i.saturating_sub(CONTEXT)..i]
            .iter()
            .map(ToString::to_string)
            .collect(),
        first: show(&one),
        second: show(&two),
    })
}
