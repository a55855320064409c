//! The long differential campaign (`cargo xtask ci --step differential`): random
//! sequences from a chosen seed for a number of cases or seconds, each compared
//! kernel vs simulator and kernel vs kernel; every divergence is shrunk and printed
//! as a corpus entry (see `corpus.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use llsocket_api::OptName;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::{difference, kernel_disagreement, run_kernel, sequence, Op, SetChoice};

/// The step kinds the generator gained for issue 14 that `ops` contains (each once),
/// for the campaign's per-kind count of clean cases.
fn widened_kinds(ops: &[Op]) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    let mut joins = 0;
    for op in ops {
        let k = match op {
            Op::SetOpt(_, SetChoice::ReusePort(_)) => "SetOpt(ReusePort)",
            Op::SetOpt(_, SetChoice::McastLoop(_)) => "SetOpt(McastLoop)",
            Op::SetOpt(_, SetChoice::McastTtl(_)) => "SetOpt(McastTtl)",
            Op::GetOpt(_, OptName::ReusePort) => "GetOpt(ReusePort)",
            Op::GetOpt(_, OptName::MulticastLoopV4) => "GetOpt(McastLoop)",
            Op::GetOpt(_, OptName::MulticastTtlV4) => "GetOpt(McastTtl)",
            Op::McastSource(..) => "McastSource",
            Op::SendFds(..) => "SendFds",
            Op::PairShut(..) => "PairShut",
            Op::Mcast(_, true, _) => {
                joins += 1;
                if joins < 2 {
                    continue;
                }
                "Mcast with several joins"
            }
            Op::RecvMsg(_, _, _, bits) | Op::RecvFrom(_, _, bits) => {
                let what = if matches!(op, Op::RecvMsg(..)) {
                    [
                        "RecvMsg+PEEK",
                        "RecvMsg+OOB",
                        "RecvMsg+WAITALL",
                        "RecvMsg+TRUNC",
                    ]
                } else {
                    [
                        "RecvFrom+PEEK",
                        "RecvFrom+OOB",
                        "RecvFrom+WAITALL",
                        "RecvFrom+TRUNC",
                    ]
                };
                for (i, name) in what.iter().enumerate() {
                    if bits & (1 << i) != 0 && !kinds.contains(name) {
                        kinds.push(*name);
                    }
                }
                continue;
            }
            _ => continue,
        };
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
}

/// A number from the environment.
fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.trim().parse().ok())
}

/// `ops` as Rust source for `corpus.rs` (which imports every variant name).
pub(super) fn as_rust(ops: &[Op]) -> String {
    let steps: Vec<String> = ops
        .iter()
        .map(|op| match op {
            Op::GetOpt(i, n) => format!("GetOpt({i:?}, OptName::{n:?})"),
            other => format!("{other:?}"),
        })
        .collect();
    format!("&[{}]", steps.join(", "))
}

/// Shrinks a failing sequence with proptest's own shrinker (at most `iters` tries).
fn shrink(mut tree: impl ValueTree<Value = Vec<Op>>, iters: usize) -> Vec<Op> {
    let mut best = tree.current();
    if !tree.simplify() {
        return best;
    }
    for _ in 0..iters {
        let cur = tree.current();
        if difference(&cur).is_some() {
            best = cur;
            if !tree.simplify() {
                break;
            }
        } else if !tree.complicate() {
            break;
        }
    }
    best
}

/// Runs `LLSOCKET_CAMPAIGN_CASES` sequences (default 10 000), or as many as fit in
/// `LLSOCKET_CAMPAIGN_SECONDS`, from `LLSOCKET_CAMPAIGN_SEED` (default 0); prints
/// progress, each minimal divergence and a final `campaign:` line, and fails if
/// anything diverged.
#[test]
#[ignore = "long campaign: `cargo xtask ci --step differential --cases N --seconds S`"]
fn campaign() {
    let seed = env_u64("LLSOCKET_CAMPAIGN_SEED").unwrap_or(0);
    let seconds = env_u64("LLSOCKET_CAMPAIGN_SECONDS");
    let cases = env_u64("LLSOCKET_CAMPAIGN_CASES").unwrap_or(if seconds.is_some() {
        u64::MAX
    } else {
        10_000
    });
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = sequence();
    let start = Instant::now();
    let (mut run, mut diverged, mut unstable) = (0u64, Vec::new(), 0u64);
    let mut per_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    while run < cases && deadline.is_none_or(|d| Instant::now() < d) {
        let tree = strategy.new_tree(&mut runner).expect("generate a sequence");
        let ops = tree.current();
        run += 1;
        if let Some(msg) = difference(&ops) {
            let min = shrink(tree, 2000);
            let detail = difference(&min).unwrap_or(msg);
            println!(
                "campaign: divergence at case {run} (seed {seed}), minimal sequence:\n  {}\n{detail}",
                as_rust(&min)
            );
            diverged.push(min);
        } else if let Some(runs) = kernel_disagreement(run_kernel(&ops), &ops) {
            // Not shrunk: a kernel that disagrees with itself rarely does so twice.
            unstable += 1;
            println!(
                "campaign: kernel runs disagree at case {run} (seed {seed}):\n  {}\n{runs:?}",
                as_rust(&ops)
            );
        } else {
            for k in widened_kinds(&ops) {
                *per_kind.entry(k).or_default() += 1;
            }
        }
        if run % 10_000 == 0 {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "campaign: {run} cases, {} divergences, {unstable} kernel disagreements, {secs:.0}s ({:.0} cases/s)",
                diverged.len(),
                run as f64 / secs
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    for (k, n) in &per_kind {
        println!("campaign: clean cases with {k}: {n}");
    }
    println!(
        "campaign: seed {seed}: {run} cases in {secs:.1}s ({:.0} cases/s), {} divergences, {unstable} kernel disagreements",
        run as f64 / secs.max(1e-9),
        diverged.len()
    );
    assert!(
        diverged.is_empty() && unstable == 0,
        "{} divergences, {unstable} kernel disagreements",
        diverged.len()
    );
}
