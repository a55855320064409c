//! `cargo xtask`: the project's check matrix (lint, tests, every target, every Lua) with std only.
//!
//! * `cargo xtask ci [--quick] [--step NAME]...` runs the matrix and ends with a summary table.
//! * `cargo xtask ci --step differential [--cases N] [--seconds S] [--seed X] [--release]` runs the
//!   kernel-vs-simulator campaign (`tests/proptest/campaign.rs`) as long as asked.
//! * `cargo xtask lua-module --lua <5.1|5.2|5.3|5.4|luajit>` builds `llsocket.so` for a system Lua
//!   and prints its path as the last line.
//!
//! The xtask installs nothing: a missing tool fails its step with the command that installs it.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The differential campaign of the full matrix: a fixed seed and case count, so
/// every push replays the same 12 000 sequences (35-60 s on the 2-core machine),
/// which ran clean at the last campaign, and an unrelated push cannot meet a rare
/// divergence nobody has shrunk yet; long clock-seeded runs are for looking.
const CI_CAMPAIGN: (u64, u64) = (2, 12_000);

/// The Lua versions the module is built for: (CLI name, cargo feature, Debian interpreter).
const LUAS: &[(&str, &str, &str)] = &[
    ("5.1", "lua51", "lua5.1"),
    ("5.2", "lua52", "lua5.2"),
    ("5.3", "lua53", "lua5.3"),
    ("5.4", "lua54", "lua5.4"),
    ("luajit", "luajit", "luajit"),
];

/// Foreign targets checked with stable rustup targets.
const CROSS_STABLE: &[&str] = &[
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-unknown-freebsd",
    "x86_64-unknown-netbsd",
];

/// Foreign targets without a rustup std: nightly with `-Zbuild-std`.
const CROSS_BUILD_STD: &[&str] = &["x86_64-unknown-openbsd", "x86_64-unknown-dragonfly"];

/// Crates checked for foreign targets (the Lua binding as a module: no vendored C build).
const CROSS_PACKAGES: &[&str] = &["llsocket-api", "llsocket-posix", "llsocket-lua"];

/// The workspace members (top-level directories).
const MEMBERS: &[&str] = &[
    "llsocket-api",
    "llsocket-posix",
    "llsocket-sim",
    "llsocket-lua",
    "tests",
    "xtask",
];

const MUSL: &str = "x86_64-unknown-linux-musl";

/// The safety step's scripts (`llsocket-lua/test/safety/`).
const SAFETY_DIR: &str = "llsocket-lua/test/safety";
/// Fuzzer seeds per interpreter and run, and calls per seed.
const FUZZ_SEEDS: u64 = 8;
const FUZZ_CALLS: &str = "20000";
/// The same for the simulator's fuzzer (`fuzz_sim.lua`), and the calls of its valgrind run.
const SIM_FUZZ_SEEDS: u64 = 4;
const SIM_FUZZ_CALLS: &str = "40000";
const SIM_FUZZ_VALGRIND_CALLS: &str = "4000";
/// Time limit of one safety script (a hang fails the row) and the address-space limits (KiB):
/// generous for the fuzzer, tight for `memlimit.lua`, which must hit it.
const SAFETY_TIMEOUT_SECS: u64 = 240;
const FUZZ_AS_KIB: u64 = 4 * 1024 * 1024;
const MEMLIMIT_AS_KIB: u64 = 1_000_000;

/// Second architecture: the test suite cross-linked and run under Debian's qemu-user.
const AARCH64: &str = "aarch64-unknown-linux-gnu";

struct Row {
    step: String,
    target: String,
    ok: bool,
    secs: f64,
    note: String,
}

struct Ci {
    root: PathBuf,
    rows: Vec<Row>,
}

/// Tests the aarch64 row leaves out, because qemu-user (not the code under test) differs from
/// a real kernel there; each with the emulator's gap. The summary row lists the count.
const QEMU_SKIPS: &[(&str, &str)] = &[
    (
        "posix::mcast::",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "conformance::udp::udp_multicast_loopback_delivery_v4",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "conformance::opts::multicast_options_round_trip",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "conformance::opts::every_option_reads_back_as_its_own_variant",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "proptest_diff::kernel_and_sim_agree",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "lua::lua_suite_passes_in_process_on_bundled_lua",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "proptest_diff::corpus::group_datagram_reaches_a_socket_that_did_not_join",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "proptest_diff::corpus::failed_source_leave_switches_an_empty_any_source_membership",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "proptest_diff::corpus::ipv6_socket_does_not_hear_an_ipv4_group_it_did_not_join",
        "no IP_MULTICAST_IF emulation (ENOPROTOOPT)",
    ),
    (
        "lua::iovec_model::iovec_layout_follows_the_model",
        "sendmsg with no iovecs sends nothing",
    ),
    // the runner's own tests (llsocket-lua/tests/runner.rs) spawn the aarch64 runner binary,
    // which the x86_64 host cannot execute (qemu-user runs the test binary, not its children)
    (
        "help_and_version",
        "spawned aarch64 binaries need binfmt_misc",
    ),
    (
        "bad_options_fail_with_the_usage",
        "spawned aarch64 binaries need binfmt_misc",
    ),
    (
        "e_and_l_run_in_order_and_arg_is_the_standard_table",
        "spawned aarch64 binaries need binfmt_misc",
    ),
    (
        "errors_exit_1_with_a_traceback",
        "spawned aarch64 binaries need binfmt_misc",
    ),
    (
        "sim_runs_the_program_on_a_simulated_host",
        "spawned aarch64 binaries need binfmt_misc",
    ),
    (
        "c_modules_load_into_the_runner",
        "spawned aarch64 binaries need binfmt_misc",
    ),
    (
        "seeds_sweeps_a_scenario",
        "spawned aarch64 binaries need binfmt_misc",
    ),
    (
        "sim_scripts_run_tasks_on_the_installed_world",
        "spawned aarch64 binaries need binfmt_misc",
    ),
    (
        "posix::stream::scm_rights_with_a_short_control_buffer_is_ctrunc",
        "MSG_CTRUNC not passed back",
    ),
    (
        "conformance::unix::scm_rights_truncated_control",
        "MSG_CTRUNC not passed back",
    ),
    (
        "conformance::msg::sendmsg_to_and_recvmsg_from_on_udp",
        "sendmsg with no iovecs sends nothing",
    ),
    (
        "conformance::quirks::zero_length_stream_sendmsg_passes_no_descriptors",
        "sendmsg with no iovecs sends nothing",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("ci") => ci(root, &args[1..]),
        Some("lua-module") => {
            let lua = args
                .iter()
                .position(|a| a == "--lua")
                .and_then(|i| args.get(i + 1));
            match lua.and_then(|v| LUAS.iter().find(|l| l.0 == v)) {
                Some(l) => match build_lua_module(&root, l) {
                    Ok(path) => {
                        println!("{}", path.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("lua-module: {e}");
                        ExitCode::FAILURE
                    }
                },
                None => {
                    eprintln!("usage: cargo xtask lua-module --lua <5.1|5.2|5.3|5.4|luajit>");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!(
                "usage:\n  cargo xtask ci [--quick] [--step tidy|deps|fmt|clippy|doc|test|differential|cross|musl|aarch64|lua|safety|bench]...\n                 [--cases N] [--seconds S] [--seed X] [--release]   (the differential campaign)\n  cargo xtask lua-module --lua <5.1|5.2|5.3|5.4|luajit>"
            );
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn ci(root: PathBuf, args: &[String]) -> ExitCode {
    const STEPS: &[&str] = &[
        "tidy",
        "deps",
        "fmt",
        "clippy",
        "doc",
        "test",
        "differential",
        "cross",
        "musl",
        "aarch64",
        "lua",
        "safety",
        "bench",
    ];
    let mut quick = false;
    let mut chosen: Vec<&str> = Vec::new();
    let mut campaign = Campaign::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--release" => campaign.release = true,
            "--cases" | "--seconds" | "--seed" => {
                let Some(n) = it.next().and_then(|v| v.parse::<u64>().ok()) else {
                    eprintln!("{arg} needs a number");
                    return ExitCode::FAILURE;
                };
                match arg.as_str() {
                    "--cases" => campaign.cases = Some(n),
                    "--seconds" => campaign.seconds = Some(n),
                    _ => campaign.seed = Some(n),
                }
            }
            "--step" => match it.next() {
                Some(step) if STEPS.contains(&step.as_str()) => chosen.push(step),
                other => {
                    eprintln!("--step needs one of: {} (got {other:?})", STEPS.join(", "));
                    return ExitCode::FAILURE;
                }
            },
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: cargo xtask ci [--quick] [--step NAME]... [--cases N] [--seconds S] [--seed X]"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let wants = |s: &str| {
        if !chosen.is_empty() {
            chosen.contains(&s)
        } else {
            !quick || matches!(s, "fmt" | "clippy" | "test")
        }
    };
    let mut ci = Ci {
        root,
        rows: Vec::new(),
    };
    if wants("tidy") {
        ci.tidy();
    }
    if wants("deps") {
        ci.deps();
    }
    if wants("fmt") {
        ci.cargo("fmt", "host", &["fmt", "--all", "--check"], &[]);
    }
    if wants("clippy") {
        ci.cargo(
            "clippy",
            "host",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        );
        for (v, feature, _) in LUAS {
            let features = format!("{feature},module");
            ci.cargo(
                "clippy",
                &format!("lua {v}"),
                &[
                    "clippy",
                    "-p",
                    "llsocket-lua",
                    "--lib",
                    "--no-default-features",
                    "--features",
                    &features,
                    "--",
                    "-D",
                    "warnings",
                ],
                &[],
            );
        }
    }
    if wants("doc") {
        ci.cargo(
            "doc",
            "host",
            &["doc", "--no-deps", "--workspace"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        );
    }
    if wants("test") {
        ci.cargo("test", "host", &["test", "--workspace"], &[]);
    }
    if wants("differential") {
        ci.differential(&campaign);
    }
    if wants("cross") {
        ci.cross();
    }
    if wants("musl") {
        ci.musl();
    }
    if wants("aarch64") {
        ci.aarch64();
    }
    if wants("lua") {
        ci.lua_matrix();
    }
    if wants("safety") {
        ci.safety();
    }
    if wants("bench") {
        ci.bench_smoke();
    }
    ci.summary()
}

/// How long the differential campaign runs, and from which seed.
#[derive(Default)]
struct Campaign {
    cases: Option<u64>,
    seconds: Option<u64>,
    seed: Option<u64>,
    /// Build the campaign optimised (several times the cases per second; a build of its own).
    release: bool,
}

impl Ci {
    /// The kernel-vs-simulator campaign: `tests/proptest/campaign.rs` for the asked
    /// number of cases and/or seconds from the given seed (default: the clock,
    /// printed so a failure can be replayed); with none of them, [`CI_CAMPAIGN`].
    /// Built like the `test` step (`--workspace`), so nothing is compiled again.
    fn differential(&mut self, c: &Campaign) {
        let fixed = c.cases.is_none() && c.seconds.is_none() && c.seed.is_none();
        let seed = c.seed.unwrap_or_else(|| {
            if fixed {
                return CI_CAMPAIGN.0;
            }
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let cases = if fixed { Some(CI_CAMPAIGN.1) } else { c.cases };
        let seconds = c.seconds;
        let mut cmd = Command::new(cargo());
        cmd.args(["test", "--workspace", "--tests"]);
        if c.release {
            cmd.arg("--release");
        }
        cmd.arg("--");
        cmd.args([
            "proptest_diff::campaign::campaign",
            "--exact",
            "--ignored",
            "--nocapture",
        ]);
        cmd.env("LLSOCKET_CAMPAIGN_SEED", seed.to_string());
        if let Some(n) = cases {
            cmd.env("LLSOCKET_CAMPAIGN_CASES", n.to_string());
        }
        if let Some(s) = seconds {
            cmd.env("LLSOCKET_CAMPAIGN_SECONDS", s.to_string());
        }
        let target = format!("seed {seed}");
        println!("\n=== xtask: differential [{target}]: {cmd:?}");
        let start = Instant::now();
        let child = cmd.current_dir(&self.root).stdout(Stdio::piped()).spawn();
        let mut child = match child {
            Ok(ch) => ch,
            Err(e) => {
                let note = format!("cannot start cargo: {e}");
                self.record("differential", &target, false, start, note);
                return;
            }
        };
        // Echo the output; the campaign's last `campaign: seed` line is the row's note.
        let mut last = String::new();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("{line}");
                if let Some(rest) = line.strip_prefix("campaign: seed ") {
                    last = rest.split_once(": ").map_or(rest, |x| x.1).to_string();
                }
            }
        }
        let ok = matches!(child.wait(), Ok(s) if s.success());
        let note = if last.is_empty() {
            "no campaign summary (did the build fail?)".to_string()
        } else {
            last
        };
        self.record("differential", &target, ok, start, note);
    }

    fn record(&mut self, step: &str, target: &str, ok: bool, start: Instant, note: String) {
        let secs = start.elapsed().as_secs_f64();
        println!(
            "xtask: {step} [{target}] {} in {secs:.1}s {note}",
            if ok { "ok" } else { "FAILED" }
        );
        self.rows.push(Row {
            step: step.into(),
            target: target.into(),
            ok,
            secs,
            note,
        });
    }

    /// Runs a command in the workspace root, streaming its output.
    fn run(&mut self, step: &str, target: &str, mut cmd: Command) -> bool {
        println!("\n=== xtask: {step} [{target}]: {cmd:?}");
        let start = Instant::now();
        let status = cmd.current_dir(&self.root).status();
        let (ok, note) = match status {
            Ok(s) if s.success() => (true, String::new()),
            Ok(s) => (false, format!("exit {}", s.code().unwrap_or(-1))),
            Err(e) => (false, format!("cannot start {:?}: {e}", cmd.get_program())),
        };
        self.record(step, target, ok, start, note);
        ok
    }

    fn cargo(&mut self, step: &str, target: &str, args: &[&str], envs: &[(&str, &str)]) -> bool {
        let mut cmd = Command::new(cargo());
        cmd.args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        self.run(step, target, cmd)
    }

    /// A step that cannot run because something is missing: a failure that says how to fix it.
    fn missing(&mut self, step: &str, target: &str, what: &str) {
        println!("\n=== xtask: {step} [{target}]: missing: {what}");
        self.record(
            step,
            target,
            false,
            Instant::now(),
            format!("missing: {what}"),
        );
    }

    fn cross(&mut self) {
        let installed = capture("rustup", &["target", "list", "--installed"]).unwrap_or_default();
        for target in CROSS_STABLE {
            if !installed.lines().any(|l| l.trim() == *target) {
                self.missing("cross", target, &format!("rustup target add {target}"));
                continue;
            }
            let mut args = vec!["clippy", "--target", target];
            args.extend(cross_packages());
            args.extend([
                "--no-default-features",
                "--features",
                "llsocket-lua/lua54,llsocket-lua/module",
            ]);
            args.extend(["--", "-D", "warnings"]);
            self.cargo("cross", target, &args, &[]);
        }
        // Nightly with rust-src (for -Zbuild-std) and clippy; `None` when all are there.
        let nightly_missing =
            match capture("rustup", &["+nightly", "component", "list", "--installed"]) {
                None => {
                    Some("rustup toolchain install nightly --component rust-src,clippy".to_string())
                }
                Some(list) => {
                    let lacking: Vec<&str> = ["rust-src", "clippy"]
                        .into_iter()
                        .filter(|c| !list.lines().any(|l| l.starts_with(c)))
                        .collect();
                    (!lacking.is_empty()).then(|| {
                        format!(
                            "rustup component add {} --toolchain nightly",
                            lacking.join(" ")
                        )
                    })
                }
            };
        for target in CROSS_BUILD_STD {
            if let Some(fix) = &nightly_missing {
                self.missing("cross", target, fix);
                continue;
            }
            // `rustup run nightly cargo`, not `$CARGO +nightly`: under `cargo xtask`, `$CARGO` is
            // the stable toolchain's own cargo, which does not understand `+toolchain`.
            let mut cmd = Command::new("rustup");
            cmd.args([
                "run",
                "nightly",
                "cargo",
                "clippy",
                "-Zbuild-std=std,panic_abort",
            ]);
            cmd.args(["--target", target]);
            cmd.args(cross_packages());
            cmd.args([
                "--no-default-features",
                "--features",
                "llsocket-lua/lua54,llsocket-lua/module",
            ]);
            cmd.args(["--", "-D", "warnings"]);
            // Separate target dir: build-std artifacts must not invalidate the host's.
            cmd.env("CARGO_TARGET_DIR", target_dir(&self.root).join("build-std"));
            for var in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "CARGO"] {
                cmd.env_remove(var);
            }
            self.run("cross", target, cmd);
        }
    }

    fn musl(&mut self) {
        let installed = capture("rustup", &["target", "list", "--installed"]).unwrap_or_default();
        if !installed.lines().any(|l| l.trim() == MUSL) {
            self.missing("musl", MUSL, &format!("rustup target add {MUSL}"));
            return;
        }
        if capture("musl-gcc", &["--version"]).is_none() && which("musl-gcc").is_none() {
            self.missing("musl", MUSL, "apt-get install musl-tools");
            return;
        }
        // A static musl runner cannot dlopen: C rocks load only into the glibc (and other
        // dynamically linked) builds, where `test` runs this test natively.
        self.cargo(
            "musl",
            MUSL,
            &[
                "test",
                "--workspace",
                "--target",
                MUSL,
                "--",
                "--skip",
                "c_modules_load_into_the_runner",
            ],
            &[("CC_x86_64_unknown_linux_musl", "musl-gcc")],
        );
        if let Some(row) = self.rows.last_mut() {
            let note = "c_modules_load_into_the_runner skipped (a static musl executable cannot dlopen C modules; it runs in `test`)";
            row.note = if row.note.is_empty() {
                note.to_string()
            } else {
                format!("{}; {note}", row.note)
            };
        }
    }

    /// `cargo test --workspace` for aarch64 Linux: cross gcc links, `qemu-aarch64` runs the tests.
    fn aarch64(&mut self) {
        let installed = capture("rustup", &["target", "list", "--installed"]).unwrap_or_default();
        if !installed.lines().any(|l| l.trim() == AARCH64) {
            self.missing("aarch64", AARCH64, &format!("rustup target add {AARCH64}"));
            return;
        }
        for (tool, package) in [
            (
                "aarch64-linux-gnu-gcc",
                "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
            ),
            ("qemu-aarch64", "qemu-user"),
        ] {
            if which(tool).is_none() {
                self.missing("aarch64", AARCH64, &format!("apt-get install {package}"));
                return;
            }
        }
        let mut args = vec!["test", "--workspace", "--target", AARCH64, "--"];
        for (test, _) in QEMU_SKIPS {
            args.extend(["--skip", test]);
        }
        let ok = self.cargo(
            "aarch64",
            AARCH64,
            &args,
            &[
                (
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
                    "aarch64-linux-gnu-gcc",
                ),
                (
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER",
                    "qemu-aarch64 -L /usr/aarch64-linux-gnu",
                ),
                ("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc"),
                ("AR_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-ar"),
            ],
        );
        let mut reasons: Vec<&str> = QEMU_SKIPS.iter().map(|(_, why)| *why).collect();
        reasons.sort_unstable();
        reasons.dedup();
        if let Some(row) = self.rows.last_mut() {
            let skipped = format!(
                "tests matching {} names skipped (qemu-user: {}; they run natively in `test` and `musl`)",
                QEMU_SKIPS.len(),
                reasons.join("; ")
            );
            row.note = if ok {
                skipped
            } else {
                format!("{}; {skipped}", row.note)
            };
        }
    }

    fn lua_matrix(&mut self) {
        let examples = list_files(&self.root.join("examples"), "lua");
        let runner = self.root.join("llsocket-lua/test/runner.lua");
        // each sub-module required first in new states (spawns the same interpreter)
        let fresh = self.root.join("llsocket-lua/test/fresh_states.lua");
        // a clean clone of the committed tree for `luarocks make` (as a user would get it)
        let clone = clean_clone(&self.root);
        for l in LUAS {
            let (v, _, interp) = *l;
            if which(interp).is_none() {
                self.missing(
                    "lua",
                    v,
                    &format!("apt-get install {}", debian_package(interp)),
                );
                continue;
            }
            let start = Instant::now();
            println!("\n=== xtask: lua [{v}]: build llsocket.so");
            let module = match build_lua_module(&self.root, l) {
                Ok(p) => p,
                Err(e) => {
                    self.record("lua", v, false, start, format!("module build: {e}"));
                    continue;
                }
            };
            let cpath = lua_cpath(&module);
            let mut ok = true;
            let mut failed = Vec::new();
            if examples.is_empty() {
                ok = false;
                failed.push("examples/*.lua missing".to_string());
            }
            let mut scripts = vec![runner.clone(), fresh.clone()];
            scripts.extend(examples.iter().cloned());
            for script in &scripts {
                if !script.exists() {
                    let rel = script.strip_prefix(&self.root).unwrap_or(script);
                    failed.push(format!("{} missing", rel.display()));
                    ok = false;
                    continue;
                }
                println!("--- {interp} {}", script.display());
                let status = Command::new(interp)
                    .arg(script)
                    .env("LUA_CPATH", &cpath)
                    .current_dir(&self.root)
                    .status();
                if !matches!(status, Ok(s) if s.success()) {
                    ok = false;
                    failed.push(file_name(script));
                }
            }
            // the rock: `luarocks make` from a clean clone, the suite on the installed module
            let rock = match &clone {
                Ok(dir) => rock_check(&self.root, dir, v, interp),
                Err(e) => Err(e.clone()),
            };
            if let Err(e) = &rock {
                ok = false;
                failed.push(format!("luarocks make: {e}"));
            }
            let note = if failed.is_empty() {
                format!(
                    "{} scripts; luarocks make + suite on the installed rock",
                    scripts.len()
                )
            } else {
                format!("failed: {}", failed.join(", "))
            };
            self.record("lua", v, ok, start, note);
        }
    }

    /// Hostile Lua, per interpreter: the RSS soaks, finalizers that raise, the memory limit,
    /// the fuzzer over many seeds and the simulator's fuzzer (`llsocket.sim`) over a few
    /// (each process time- and memory-limited: a crash, an abort or a hang fails the row);
    /// then a few fuzzer seeds, a simulator fuzzer seed and the raising-finalizer storms
    /// under valgrind. Seeds start at `LLSOCKET_FUZZ_SEED` or at one derived from the clock
    /// (printed, with the command that replays a failing one).
    fn safety(&mut self) {
        let dir = self.root.join(SAFETY_DIR);
        let base: u64 = env::var("LLSOCKET_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs() % 1_000_000)
            });
        println!(
            "\n=== xtask: safety: fuzzer seeds {base}..{}",
            base + FUZZ_SEEDS - 1
        );
        let script = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let scratch = scratch_dir(&self.root);
        for l in LUAS {
            let (v, _, interp) = *l;
            if which(interp).is_none() {
                self.missing(
                    "safety",
                    v,
                    &format!("apt-get install {}", debian_package(interp)),
                );
                continue;
            }
            let start = Instant::now();
            let module = match build_lua_module(&self.root, l) {
                Ok(p) => p,
                Err(e) => {
                    self.record("safety", v, false, start, format!("module build: {e}"));
                    continue;
                }
            };
            let cpath = lua_cpath(&module);
            let mut failed: Vec<String> = Vec::new();
            let mut run = |what: String, limit_kib: Option<u64>, args: Vec<String>| {
                println!("--- {interp} {what}");
                if let Err(why) = run_limited(&scratch, &cpath, interp, &args, limit_kib) {
                    println!("xtask: safety [{v}] {what}: {why}");
                    failed.push(format!("{what} ({why})"));
                }
            };
            run("soak.lua".into(), None, vec![script("soak.lua")]);
            run(
                "raising_gc.lua".into(),
                None,
                vec![script("raising_gc.lua")],
            );
            run(
                "memlimit.lua".into(),
                Some(MEMLIMIT_AS_KIB),
                vec![script("memlimit.lua")],
            );
            for seed in base..base + FUZZ_SEEDS {
                run(
                    format!("fuzz.lua {seed}"),
                    Some(FUZZ_AS_KIB),
                    vec![script("fuzz.lua"), seed.to_string(), FUZZ_CALLS.into()],
                );
            }
            for seed in base..base + SIM_FUZZ_SEEDS {
                run(
                    format!("fuzz_sim.lua {seed}"),
                    Some(FUZZ_AS_KIB),
                    vec![
                        script("fuzz_sim.lua"),
                        seed.to_string(),
                        SIM_FUZZ_CALLS.into(),
                    ],
                );
            }
            let note = if failed.is_empty() {
                format!(
                    "soak, raising_gc, memlimit, {FUZZ_SEEDS} fuzz seeds x {FUZZ_CALLS} calls, \
                     {SIM_FUZZ_SEEDS} fuzz_sim seeds x {SIM_FUZZ_CALLS} calls"
                )
            } else {
                format!(
                    "failed: {} (replay: LUA_CPATH='{cpath}' {interp} {SAFETY_DIR}/<script> [seed])",
                    failed.join(", ")
                )
            };
            self.record("safety", v, failed.is_empty(), start, note);
        }
        self.safety_valgrind(base);
    }

    /// Two fuzzer seeds (memory errors) on Lua 5.4, a simulator fuzzer seed and the
    /// raising-finalizer storms (memory errors and definitely lost blocks) on Lua 5.3, where
    /// finalizer errors propagate.
    fn safety_valgrind(&mut self, base: u64) {
        if which("valgrind").is_none() {
            self.missing("safety", "valgrind", "apt-get install valgrind");
            return;
        }
        let start = Instant::now();
        let dir = self.root.join(SAFETY_DIR);
        let scratch = scratch_dir(&self.root);
        let mut failed = Vec::new();
        let runs: [(&str, &str, Vec<String>); 4] = [
            (
                "5.4",
                "lua5.4",
                vec![
                    dir.join("fuzz.lua").display().to_string(),
                    base.to_string(),
                    "3000".into(),
                ],
            ),
            (
                "5.4",
                "lua5.4",
                vec![
                    dir.join("fuzz.lua").display().to_string(),
                    (base + 1).to_string(),
                    "3000".into(),
                ],
            ),
            (
                "5.3",
                "lua5.3",
                vec![
                    dir.join("fuzz_sim.lua").display().to_string(),
                    base.to_string(),
                    SIM_FUZZ_VALGRIND_CALLS.into(),
                ],
            ),
            (
                "5.3",
                "lua5.3",
                vec![
                    dir.join("raising_gc.lua").display().to_string(),
                    "300".into(),
                ],
            ),
        ];
        for (v, interp, args) in runs {
            let Some(l) = LUAS.iter().find(|l| l.0 == v) else {
                continue;
            };
            if which(interp).is_none() {
                failed.push(format!("{interp} missing"));
                continue;
            }
            let module = match build_lua_module(&self.root, l) {
                Ok(p) => p,
                Err(e) => {
                    failed.push(e);
                    continue;
                }
            };
            let mut vg = vec![
                "-q".to_string(),
                "--error-exitcode=99".into(),
                "--leak-check=full".into(),
                // (symbols of the module in the reports, though Lua unloads it at exit)
                "--keep-debuginfo=yes".into(),
                "--errors-for-leak-kinds=definite".into(),
                interp.into(),
            ];
            vg.extend(args.iter().cloned());
            println!("--- valgrind {interp} {}", args.join(" "));
            if let Err(why) = run_limited(&scratch, &lua_cpath(&module), "valgrind", &vg, None) {
                failed.push(format!("{interp} {} ({why})", args.join(" ")));
            }
        }
        let note = if failed.is_empty() {
            format!(
                "fuzz seeds {base}, {} (5.4), fuzz_sim seed {base} and raising_gc (5.3): no errors, \
                 nothing lost",
                base + 1
            )
        } else {
            format!("failed: {}", failed.join(", "))
        };
        self.record("safety", "valgrind", failed.is_empty(), start, note);
    }

    /// Every `cargo bench` target with the smoke switch, then every `bench/*.lua` with `--smoke`
    /// under Lua 5.4 against the freshly built module.
    fn bench_smoke(&mut self) {
        // Only `[[bench]]` targets (`--bench '*'`), not every library in bench mode; cargo
        // rejects the pattern when there is none, so look first.
        let has_benches = MEMBERS
            .iter()
            .any(|m| !list_files(&self.root.join(m).join("benches"), "rs").is_empty());
        if has_benches {
            // The switch goes by environment: a `--smoke` argument would be rejected by any
            // bench target that uses libtest's or criterion's argument parser.
            self.cargo(
                "bench",
                "cargo bench",
                &["bench", "--workspace", "--bench", "*"],
                &[("BENCH_SMOKE", "1")],
            );
        } else {
            self.missing(
                "bench",
                "cargo bench",
                "no <crate>/benches/*.rs yet (llsocket-sim/benches/echo.rs not landed)",
            );
        }
        let scripts = list_files(&self.root.join("bench"), "lua");
        if scripts.is_empty() {
            self.missing("bench", "lua scripts", "bench/*.lua (not landed yet)");
            return;
        }
        let l = LUAS
            .iter()
            .find(|l| l.0 == "5.4")
            .copied()
            .unwrap_or(LUAS[0]);
        if which(l.2).is_none() {
            self.missing(
                "bench",
                "lua scripts",
                &format!("apt-get install {}", debian_package(l.2)),
            );
            return;
        }
        let start = Instant::now();
        let module = match build_lua_module(&self.root, &l) {
            Ok(p) => p,
            Err(e) => {
                self.record(
                    "bench",
                    "lua scripts",
                    false,
                    start,
                    format!("module build: {e}"),
                );
                return;
            }
        };
        let cpath = lua_cpath(&module);
        let mut failed = Vec::new();
        for script in &scripts {
            println!("--- {} {} --smoke", l.2, script.display());
            let status = Command::new(l.2)
                .arg(script)
                .arg("--smoke")
                .env("LUA_CPATH", &cpath)
                .current_dir(&self.root)
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                failed.push(file_name(script));
            }
        }
        let note = if failed.is_empty() {
            format!("{} scripts under {}", scripts.len(), l.2)
        } else {
            format!("failed: {}", failed.join(", "))
        };
        self.record("bench", "lua scripts", failed.is_empty(), start, note);
    }

    /// Every Rust source opens with a `//!` line; `target_os` stays in the POSIX backend's `sys/`.
    fn tidy(&mut self) {
        let start = Instant::now();
        let mut problems = Vec::new();
        for dir in MEMBERS {
            for file in walk(&self.root.join(dir), "rs") {
                let rel = file.strip_prefix(&self.root).unwrap_or(&file).to_path_buf();
                let text = fs::read_to_string(&file).unwrap_or_default();
                let is_main_or_lib = text.lines().next().is_some_and(|l| l.starts_with("//!"));
                if !is_main_or_lib {
                    problems.push(format!(
                        "{}: does not open with a `//!` line",
                        rel.display()
                    ));
                }
                let rel_s = rel.to_string_lossy().replace('\\', "/");
                let allowed = rel_s.starts_with("llsocket-posix/src/sys/")
                    || rel_s == "llsocket-posix/build.rs"
                    || rel_s.starts_with("xtask/");
                let needle = concat!("target", "_os");
                if !allowed && text.contains(needle) {
                    problems.push(format!(
                        "{}: uses {needle} outside llsocket-posix/src/sys/",
                        rel.display()
                    ));
                }
            }
        }
        for p in &problems {
            println!("tidy: {p}");
        }
        let note = format!("{} problems", problems.len());
        self.record("tidy", "sources", problems.is_empty(), start, note);
    }

    /// Every dependency a member's `Cargo.toml` lists is used by its sources (see
    /// [`unused_dependencies`]).
    fn deps(&mut self) {
        let start = Instant::now();
        let mut problems = Vec::new();
        // A member's `[lib] name` is what its dependents write in code (llsocket-lua: llsocket).
        let lib_names: Vec<(String, String)> = MEMBERS
            .iter()
            .filter_map(|dir| fs::read_to_string(self.root.join(dir).join("Cargo.toml")).ok())
            .filter_map(|m| {
                Some((
                    toml_value(&m, "package", "name")?,
                    toml_value(&m, "lib", "name")?,
                ))
            })
            .collect();
        for dir in MEMBERS {
            let crate_dir = self.root.join(dir);
            let manifest = match fs::read_to_string(crate_dir.join("Cargo.toml")) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!("{dir}/Cargo.toml: {e}"));
                    continue;
                }
            };
            let sources: Vec<(String, String)> = walk(&crate_dir, "rs")
                .into_iter()
                .map(|f| {
                    let rel = f.strip_prefix(&crate_dir).unwrap_or(&f);
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    (rel, fs::read_to_string(&f).unwrap_or_default())
                })
                .collect();
            for (section, name) in unused_dependencies(&manifest, &sources, &lib_names) {
                problems.push(format!(
                    "{dir}/Cargo.toml: [{section}] {name} is not used by the crate's sources"
                ));
            }
        }
        for p in &problems {
            println!("deps: {p}");
        }
        let note = format!("{} unused", problems.len());
        self.record("deps", "manifests", problems.is_empty(), start, note);
    }

    fn summary(&self) -> ExitCode {
        println!(
            "\n{:<12} {:<28} {:<7} {:>8}  note",
            "step", "target", "result", "seconds"
        );
        println!("{}", "-".repeat(76));
        for r in &self.rows {
            println!(
                "{:<12} {:<28} {:<7} {:>8.1}  {}",
                r.step,
                r.target,
                if r.ok { "ok" } else { "FAILED" },
                r.secs,
                r.note
            );
        }
        let failed = self.rows.iter().filter(|r| !r.ok).count();
        let total: f64 = self.rows.iter().map(|r| r.secs).sum();
        println!("{}", "-".repeat(76));
        println!(
            "{} steps, {} failed, {:.1}s",
            self.rows.len(),
            failed,
            total
        );
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// The dependencies of one manifest that no source uses, as (section, name).
///
/// A dependency is used when a source file of the right kind names its crate in code (comments
/// do not count) as `name::`, `use name`, `extern crate name` or `name as`: `[dependencies]` in
/// any file but `build.rs` and those under `tests/`, `benches/`, `examples/`;
/// `[dev-dependencies]` in any file; `[build-dependencies]` in `build.rs`. Target-specific
/// tables (`[target.'cfg(..)'.dependencies]`) count as their plain kind. `sources` holds
/// (path relative to the crate directory, contents); `lib_names` maps a package to the library
/// name its code is reached by, where that is not the package name.
fn unused_dependencies(
    manifest: &str,
    sources: &[(String, String)],
    lib_names: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section: Option<&str> = None;
    for line in manifest.lines() {
        let line = line.trim();
        let kinds = ["dependencies", "dev-dependencies", "build-dependencies"];
        let (kind, key) = if line.starts_with('[') {
            let table = line.trim_matches(|c| c == '[' || c == ']');
            let last = table.rsplit('.').next().unwrap_or(table);
            section = kinds
                .into_iter()
                .find(|k| *k == last && (table == last || table.starts_with("target.")));
            // `[dependencies.name]`: one dependency as a table.
            match table.split_once('.') {
                Some((k, name)) if kinds.contains(&k) => (k, name.trim_matches('"')),
                _ => continue,
            }
        } else {
            let Some(kind) = section else { continue };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // `name = ...`, `name.workspace = true`, `name = { ... }`
            let key = line.split(['=', '.']).next().unwrap_or("");
            (kind, key.trim().trim_matches('"'))
        };
        if key.is_empty() {
            continue;
        }
        let ident = lib_names
            .iter()
            .find(|(package, _)| package == key)
            .map_or(key, |(_, lib)| lib.as_str())
            .replace('-', "_");
        let in_scope = |path: &str| match kind {
            "build-dependencies" => path == "build.rs",
            "dev-dependencies" => true,
            _ => {
                path != "build.rs"
                    && !["tests/", "benches/", "examples/"]
                        .iter()
                        .any(|d| path.starts_with(d))
            }
        };
        let used = sources
            .iter()
            .filter(|(path, _)| in_scope(path))
            .any(|(_, text)| names_crate(text, &ident));
        if !used {
            out.push((kind.to_string(), key.to_string()));
        }
    }
    out
}

/// The string value of `key` in table `[table]` of a manifest (`None` when absent).
fn toml_value(manifest: &str, table: &str, key: &str) -> Option<String> {
    let header = format!("[{table}]");
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
        } else if let Some((k, v)) = line.split_once('=') {
            if inside && k.trim() == key {
                return Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    None
}

/// Whether `text` names crate `ident` outside comments.
fn names_crate(text: &str, ident: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.lines().any(|line| {
        let code = line.split("//").next().unwrap_or("");
        code.match_indices(ident).any(|(i, _)| {
            let before = code[..i].chars().next_back();
            let after = &code[i + ident.len()..];
            let starts = !before.is_some_and(is_ident);
            let head = code[..i].trim_end();
            starts
                && (after.starts_with("::")
                    || (after.starts_with([' ', ';', ',', '}'])
                        && (head.ends_with("use")
                            || head.ends_with("crate")
                            || head.ends_with('{')
                            || head.ends_with(','))))
        })
    })
}

fn cross_packages() -> Vec<&'static str> {
    CROSS_PACKAGES.iter().flat_map(|p| ["-p", p]).collect()
}

/// Builds the module for one Lua version and copies it to `target/lua/<v>/llsocket.so`.
fn build_lua_module(root: &Path, lua: &(&str, &str, &str)) -> Result<PathBuf, String> {
    let (v, feature, _) = *lua;
    // The workspace's target dir: dependencies are shared between the five builds and cargo keeps
    // each feature set's artifacts apart, so only the binding itself is rebuilt per version.
    let dir = target_dir(root);
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "-p",
            "llsocket-lua",
            "--lib",
            "--no-default-features",
        ])
        .args(["--features", &format!("{feature},module")])
        .env("CARGO_TARGET_DIR", &dir)
        .current_dir(root)
        // cargo's progress goes to stderr; stdout stays free for the path printed last.
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed for Lua {v}"));
    }
    let built = dir
        .join("release")
        .join(format!("libllsocket.{}", dylib_ext()));
    let out_dir = dir.join("lua").join(v);
    fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let out = out_dir.join("llsocket.so");
    fs::copy(&built, &out).map_err(|e| format!("copy {}: {e}", built.display()))?;
    Ok(out)
}

/// `git clone` of the repository's committed state into `target/rock-clone`.
fn clean_clone(root: &Path) -> Result<PathBuf, String> {
    let dir = target_dir(root).join("rock-clone");
    let _ = fs::remove_dir_all(&dir);
    let status = Command::new("git")
        .args(["clone", "--quiet", "--local"])
        .arg(root)
        .arg(&dir)
        .status()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if status.success() {
        Ok(dir)
    } else {
        Err("git clone of the repository failed".into())
    }
}

/// `luarocks make` in `clone` for one Lua into a fresh tree under `target/rocks/`, then the
/// Lua suite of the clone under that interpreter with only the installed rock on `LUA_CPATH`.
fn rock_check(root: &Path, clone: &Path, v: &str, interp: &str) -> Result<(), String> {
    if which("luarocks").is_none() {
        return Err("luarocks not installed (apt-get install luarocks)".into());
    }
    let tree = target_dir(root).join("rocks").join(v);
    let _ = fs::remove_dir_all(&tree);
    let lua_version = if v == "luajit" { "5.1" } else { v };
    let mut cmd = Command::new("luarocks");
    cmd.args(["--lua-version", lua_version, "make", "--tree"])
        .arg(&tree)
        .arg("llsocket-scm-1.rockspec");
    if v == "luajit" {
        // Debian's luarocks knows LuaJIT as a 5.1: name the interpreter and its headers
        let luajit = which(interp).ok_or("luajit not found")?;
        cmd.arg(format!("LUA={}", luajit.display()))
            .arg("LUA_INCDIR=/usr/include/luajit-2.1");
    }
    println!(
        "--- luarocks --lua-version {lua_version} make --tree {}",
        tree.display()
    );
    let status = cmd
        // A target dir of its own: cargo names a path package's artifacts by its path
        // relative to the workspace, so builds of the clone in the workspace's target dir
        // would take the place of the workspace's own (and later builds of the workspace
        // would find the clone's sources "fresh").
        .env("CARGO_TARGET_DIR", target_dir(root).join("rock-target"))
        .current_dir(clone)
        .status()
        .map_err(|e| format!("cannot run luarocks: {e}"))?;
    if !status.success() {
        return Err("luarocks make failed".into());
    }
    let installed = tree.join("lib/lua").join(lua_version);
    if !installed.join("llsocket.so").is_file() {
        return Err(format!("no llsocket.so in {}", installed.display()));
    }
    let cpath = format!("{}/?.so;;", installed.display());
    println!("--- {interp} llsocket-lua/test/runner.lua (installed rock)");
    let status = Command::new(interp)
        .arg("llsocket-lua/test/runner.lua")
        .env("LUA_CPATH", &cpath)
        .current_dir(clone)
        .status()
        .map_err(|e| format!("cannot run {interp}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("the suite failed on the installed rock".into())
    }
}

/// A fresh, empty directory for the safety scripts to run in: the fuzzers bind unix
/// sockets to whatever names they draw (`http`, `::1`, ...), relative to the working
/// directory, and must not leave them in the checkout.
fn scratch_dir(root: &Path) -> PathBuf {
    let dir = target_dir(root).join("safety-scratch");
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::create_dir_all(&dir);
    dir
}

/// Runs `program args` in `cwd` with `LUA_CPATH`, an optional address-space limit (KiB,
/// through the shell's `ulimit -v`) and a deadline; `Err` says how it failed (status,
/// signal, time-out).
fn run_limited(
    cwd: &Path,
    cpath: &str,
    program: &str,
    args: &[String],
    limit_kib: Option<u64>,
) -> Result<(), String> {
    let mut cmd = match limit_kib {
        Some(kib) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
                .arg(program);
            c
        }
        None => Command::new(program),
    };
    let mut child = cmd
        .args(args)
        .env("LUA_CPATH", cpath)
        .current_dir(cwd)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(SAFETY_TIMEOUT_SECS);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                use std::os::unix::process::ExitStatusExt;
                return Err(match status.signal() {
                    Some(sig) => format!("killed by signal {sig}"),
                    None => format!("exit status {}", status.code().unwrap_or(-1)),
                });
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no result after {SAFETY_TIMEOUT_SECS} s (hang)"));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// `LUA_CPATH` that finds exactly the freshly built module (and the system's C modules after it).
fn lua_cpath(module: &Path) -> String {
    format!(
        "{}/?.so;;",
        module.parent().unwrap_or(Path::new(".")).display()
    )
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// `$CARGO_TARGET_DIR`, or the workspace's `target/`.
fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn dylib_ext() -> &'static str {
    if cfg!(target_vendor = "apple") {
        "dylib"
    } else {
        "so"
    }
}

fn debian_package(interp: &str) -> String {
    match interp {
        "luajit" => "luajit libluajit-5.1-dev".into(),
        i => format!("{i} lib{i}-dev"),
    }
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn capture(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn which(program: &str) -> Option<PathBuf> {
    env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

fn list_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn walk(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name()
                    .is_some_and(|n| n != "target" && !n.to_string_lossy().starts_with("target-"))
                {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(path: &str, text: &str) -> (String, String) {
        (path.to_string(), text.to_string())
    }

    const MANIFEST: &str = "[package]\nname = \"x\"\n\n[dependencies]\nlibc.workspace = true\n\
        socket2 = { workspace = true }\nllsocket-api.workspace = true\n\n\
        [dev-dependencies]\nproptest = \"1\"\n\n[build-dependencies]\ncc = \"1\"\n\n[lints]\n\
        workspace = true\n";

    #[test]
    fn every_kind_of_use_counts() {
        let sources = [
            src(
                "src/lib.rs",
                "use libc::c_int;\nfn f() { socket2::SockRef::from(&x); }",
            ),
            src("src/a.rs", "use llsocket_api as api;"),
            src("tests/t.rs", "use proptest::prelude::*;"),
            src("build.rs", "fn main() { cc::Build::new(); }"),
        ];
        assert!(unused_dependencies(MANIFEST, &sources, &[]).is_empty());
    }

    #[test]
    fn comments_docs_and_the_wrong_kind_of_file_do_not_count() {
        let sources = [
            src(
                "src/lib.rs",
                "//! Built on socket2::SockRef.\nuse libc::c_int; // cc::x",
            ),
            src("tests/t.rs", "use llsocket_api::Fd;"),
            src(
                "src/b.rs",
                "let proptest_like = mysocket2::x; let y = libc_api::z;",
            ),
        ];
        let unused = unused_dependencies(MANIFEST, &sources, &[]);
        let names: Vec<&str> = unused.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["socket2", "llsocket-api", "proptest", "cc"]);
        assert_eq!(unused[2].0, "dev-dependencies");
    }

    #[test]
    fn a_library_is_reached_by_its_lib_name() {
        let m = "[dev-dependencies]\nllsocket-lua.workspace = true\n";
        let lib = [("llsocket-lua".to_string(), "llsocket".to_string())];
        let sources = [src("main.rs", "llsocket::preload(&lua);")];
        assert!(unused_dependencies(m, &sources, &lib).is_empty());
        assert_eq!(unused_dependencies(m, &sources, &[]).len(), 1);
        let lua = "[package]\nname = \"llsocket-lua\"\n[lib]\nname = \"llsocket\"\n";
        assert_eq!(toml_value(lua, "lib", "name").as_deref(), Some("llsocket"));
        assert_eq!(toml_value(lua, "package", "version"), None);
    }

    #[test]
    fn target_tables_and_braced_uses() {
        let m = "[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n[target.x.dev-dependencies]\n\
            mockall = \"0.13\"\n[dependencies.socket2]\nversion = \"0.6\"\n";
        let used = [src(
            "src/lib.rs",
            "use {libc, std::io};\n#[cfg_attr(test, mockall::automock)]\nuse socket2 as s2;",
        )];
        assert!(unused_dependencies(m, &used, &[]).is_empty());
        assert_eq!(unused_dependencies(m, &[], &[]).len(), 3);
    }
}
