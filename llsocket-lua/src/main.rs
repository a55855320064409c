//! `llsocket-lua`: a Lua 5.4 interpreter (the bundled Lua) with `llsocket` and
//! `llsocket.sim` requirable, the standard `lua` command's options, and `--sim`.
//!
//! ```text
//! llsocket-lua [options] [script [args]]
//!   -e stat   execute string 'stat'          -l mod    require 'mod' into global 'mod'
//!   -l g=mod  require 'mod' into global 'g'  -v        show version information
//!   -E        ignore LUA_INIT                -W        turn warnings on
//!   --        stop handling options          -         execute stdin and stop handling options
//!   --sim     run on one simulated host (llsocket.sim.install), --seed N picks the seed (default 0)
//!   --seeds A..B  run the script once per seed A to B (each in a new state), then list the
//!             failing seeds with the command that replays each (exit status 1 if any failed)
//!   --help, --version
//! ```
//!
//! The binary exports the Lua C API (linked with `--export-dynamic`, see `build.rs`), so
//! C modules built for Lua 5.4 (LuaRocks rocks) load with `require` as under `lua5.4`.
//! `arg` is set like the standard interpreter's (`arg[0]` the script, options at
//! negative indices). An error prints its message and traceback to stderr and exits
//! with status 1; under `--sim` it also prints the seed and the command that replays it.
//! Interactive mode (`-i`) is not provided.

use std::ffi::OsString;
use std::io::Read as _;
use std::process::ExitCode;

use mlua::{Lua, LuaOptions, MultiValue, StdLib, Value};

const USAGE: &str = "\
usage: llsocket-lua [options] [script [args]]
Available options are:
  -e stat   execute string 'stat'
  -l mod    require library 'mod' into global 'mod'
  -l g=mod  require library 'mod' into global 'g'
  -v        show version information
  -E        ignore environment variables (LUA_INIT)
  -W        turn warnings on
  --        stop handling options
  -         stop handling options and execute stdin
  --sim     run on one simulated host: require('llsocket') is llsocket.sim's
  --seed N  the simulation's seed (with --sim; default 0)
  --seeds A..B  run the script once per seed from A to B on the simulator, each in a
            new state; ends with the failing seeds and the command that replays each
  --help    show this help
  --version show the version";

/// One `-e` or `-l` action, in command-line order.
#[derive(Debug)]
enum Action {
    Exec(String),
    Require(String),
}

/// What the command line asks for.
#[derive(Debug, Default)]
struct Cmd {
    actions: Vec<Action>,
    version: bool,
    no_env: bool,
    warnings: bool,
    /// `--version`: print it and stop.
    only_version: bool,
    sim: bool,
    seed: i64,
    /// `--seeds A..B`: a sweep over A..=B.
    seeds: Option<(i64, i64)>,
    /// The script (`-` for stdin) and its arguments.
    script: Option<String>,
    args: Vec<String>,
    /// Index in argv of the script (0 when there is none).
    script_at: usize,
}

fn text(v: OsString) -> Result<String, String> {
    v.into_string()
        .map_err(|v| format!("argument is not UTF-8: {v:?}"))
}

fn parse(argv: &[String]) -> Result<Option<Cmd>, String> {
    use lexopt::prelude::*;
    let mut cmd = Cmd::default();
    let mut p = lexopt::Parser::from_args(argv.iter().skip(1));
    let mut seed_given = false;
    while let Some(a) = p.next().map_err(|e| e.to_string())? {
        match a {
            Short('e') => cmd
                .actions
                .push(Action::Exec(text(p.value().map_err(|e| e.to_string())?)?)),
            Short('l') => cmd.actions.push(Action::Require(text(
                p.value().map_err(|e| e.to_string())?,
            )?)),
            Short('v') => cmd.version = true,
            Short('E') => cmd.no_env = true,
            Short('W') => cmd.warnings = true,
            Short('i') => return Err("interactive mode (-i) is not supported".into()),
            Long("sim") => cmd.sim = true,
            Long("seed") => {
                let v = text(p.value().map_err(|e| e.to_string())?)?;
                cmd.seed = v
                    .parse()
                    .map_err(|_| format!("--seed: not an integer: {v:?}"))?;
                seed_given = true;
            }
            Long("seeds") => {
                let v = text(p.value().map_err(|e| e.to_string())?)?;
                let (a, b) = v
                    .split_once("..")
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .filter(|(a, b): &(i64, i64)| a <= b)
                    .ok_or_else(|| format!("--seeds: expected A..B with A <= B, got {v:?}"))?;
                cmd.seeds = Some((a, b));
                cmd.sim = true;
            }
            Long("help") => return Ok(None),
            Long("version") => {
                cmd.only_version = true;
                return Ok(Some(cmd));
            }
            Value(v) => {
                cmd.script = Some(text(v)?);
                cmd.args = p
                    .raw_args()
                    .map_err(|e| e.to_string())?
                    .map(text)
                    .collect::<Result<_, _>>()?;
                cmd.script_at = argv.len() - cmd.args.len() - 1;
                break;
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    if seed_given && !cmd.sim {
        return Err("--seed needs --sim".into());
    }
    if seed_given && cmd.seeds.is_some() {
        return Err("--seed and --seeds exclude each other".into());
    }
    if cmd.seeds.is_some() && cmd.script.as_deref().is_none_or(|s| s == "-") {
        return Err("--seeds needs a script file (it runs it once per seed)".into());
    }
    Ok(Some(cmd))
}

/// Loads and runs a chunk.
fn exec(lua: &Lua, code: &[u8], name: &str, args: MultiValue) -> mlua::Result<()> {
    lua.load(code).set_name(name).call::<()>(args)
}

/// The script's bytes without a first `#` line.
fn script_source(path: &str) -> mlua::Result<Vec<u8>> {
    let mut src = if path == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(mlua::Error::external)?;
        b
    } else {
        std::fs::read(path).map_err(|e| mlua::Error::runtime(format!("cannot open {path}: {e}")))?
    };
    if src.first() == Some(&b'#') {
        let end = src.iter().position(|&c| c == b'\n').unwrap_or(src.len());
        src.drain(..end);
    }
    Ok(src)
}

fn run(lua: &Lua, argv: &[String], cmd: &Cmd) -> mlua::Result<()> {
    llsocket::preload(lua)?;
    let globals = lua.globals();
    // arg: the script at 0, what comes before it at negative indices
    let argt = lua.create_table()?;
    for (i, a) in argv.iter().enumerate() {
        argt.set(i as i64 - cmd.script_at as i64, a.as_str())?;
    }
    globals.set("arg", argt)?;
    if cmd.sim {
        let sim: mlua::Table = lua.load("return require('llsocket.sim')").eval()?;
        let install: mlua::Function = sim.get("install")?;
        let opts = lua.create_table()?;
        opts.set("seed", cmd.seed)?;
        install.call::<()>(opts)?;
    }
    if cmd.warnings {
        lua.load("warn('@on')").exec()?;
    }
    if !cmd.no_env {
        if let Some(init) =
            std::env::var_os("LUA_INIT_5_4").or_else(|| std::env::var_os("LUA_INIT"))
        {
            let init = init.to_string_lossy().into_owned();
            match init.strip_prefix('@') {
                Some(path) => exec(
                    lua,
                    &script_source(path)?,
                    &format!("@{path}"),
                    MultiValue::new(),
                )?,
                None => exec(lua, init.as_bytes(), "=LUA_INIT", MultiValue::new())?,
            }
        }
    }
    for a in &cmd.actions {
        match a {
            Action::Exec(code) => exec(lua, code.as_bytes(), "=(command line)", MultiValue::new())?,
            Action::Require(spec) => {
                let (global, module) = spec.split_once('=').unwrap_or((spec, spec));
                let require: mlua::Function = globals.get("require")?;
                let v: Value = require.call(module)?;
                globals.set(global, v)?;
            }
        }
    }
    if let Some(script) = &cmd.script {
        let name = if script == "-" {
            "=stdin".to_owned()
        } else {
            format!("@{script}")
        };
        let rest = cmd
            .args
            .iter()
            .map(|a| lua.create_string(a).map(Value::String))
            .collect::<mlua::Result<MultiValue>>()?;
        exec(lua, &script_source(script)?, &name, rest)?;
    } else if cmd.actions.is_empty() && !cmd.version {
        // no script and nothing to do: run stdin, as `lua -` (there is no interactive mode)
        exec(lua, &script_source("-")?, "=stdin", MultiValue::new())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cmd = match parse(&argv) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("llsocket-lua: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((first, last)) = cmd.seeds {
        return sweep(&argv, cmd, first, last);
    }
    // SAFETY: the standalone interpreter loads every standard library, including debug.
    let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::new()) };
    if cmd.version || cmd.only_version {
        let v: String = lua.globals().get("_VERSION").unwrap_or_default();
        println!("llsocket-lua {} ({v})", env!("CARGO_PKG_VERSION"));
        if cmd.only_version {
            return ExitCode::SUCCESS;
        }
    }
    match run(&lua, &argv, &cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llsocket-lua: {e}");
            if cmd.sim {
                eprintln!(
                    "llsocket-lua: simulated run failed with seed {}; replay with:\n  {}",
                    cmd.seed,
                    replay_command(&argv, &cmd, cmd.seed)
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// The command line that replays one seed: the options without `--sim`, `--seed` and
/// `--seeds` (and their values), then `--sim --seed N`, the script and its arguments.
fn replay_command(argv: &[String], cmd: &Cmd, seed: i64) -> String {
    let mut replay = format!("llsocket-lua --sim --seed {seed}");
    let options_end = if cmd.script_at == 0 {
        argv.len()
    } else {
        cmd.script_at
    };
    let mut skip_next = false;
    for (i, a) in argv.iter().enumerate().skip(1) {
        if i < options_end {
            if std::mem::take(&mut skip_next)
                || a == "--sim"
                || a.starts_with("--seed=")
                || a.starts_with("--seeds=")
            {
                continue;
            }
            if a == "--seed" || a == "--seeds" {
                skip_next = true;
                continue;
            }
        }
        replay.push(' ');
        replay.push_str(&shell_quote(a));
    }
    replay
}

/// `--seeds A..B`: the script once per seed, each in a new Lua state over a new world; a
/// progress line on a terminal; then the failing seeds, each with its first error line and
/// the command that replays it. Exit status 1 if any seed failed.
fn sweep(argv: &[String], mut cmd: Cmd, first: i64, last: i64) -> ExitCode {
    use std::io::IsTerminal as _;
    let tty = std::io::stderr().is_terminal();
    let total = (last - first + 1) as u64;
    let mut failed: Vec<(i64, String)> = Vec::new();
    for (k, seed) in (first..=last).enumerate() {
        cmd.seed = seed;
        // SAFETY: the standalone interpreter loads every standard library, including debug.
        let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::new()) };
        if let Err(e) = run(&lua, argv, &cmd) {
            let first_line = e.to_string().lines().next().unwrap_or("").to_owned();
            failed.push((seed, first_line));
        }
        drop(lua);
        if tty {
            eprint!(
                "\rllsocket-lua: seed {seed} ({}/{total}), {} failed",
                k + 1,
                failed.len()
            );
        }
    }
    if tty {
        eprintln!();
    }
    if failed.is_empty() {
        eprintln!("llsocket-lua: {total} seeds ({first}..{last}), all passed");
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "llsocket-lua: {} of {total} seeds ({first}..{last}) failed:",
        failed.len()
    );
    for (seed, msg) in &failed {
        eprintln!("  seed {seed}: {msg}");
        eprintln!("    replay: {}", replay_command(argv, &cmd, *seed));
    }
    ExitCode::FAILURE
}

/// `a` quoted for a POSIX shell when it needs it.
fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&c))
    {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}
