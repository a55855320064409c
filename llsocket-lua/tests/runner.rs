//! The `llsocket-lua` runner as a command: the standard interpreter's options, `arg`,
//! `--help`/`--version`, `--sim [--seed N]` with its replay line, and C modules loading
//! into it (the binary exports the Lua C API).
//!
//! (An integration test of this package: only here does cargo give the binary's path.)

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn runner(args: &[&str]) -> Output {
    runner_with(args, None, &[])
}

fn runner_with(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llsocket-lua"));
    cmd.args(args)
        .env_remove("LUA_INIT")
        .env_remove("LUA_INIT_5_4")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("llsocket-lua runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("runner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn help_and_version() {
    let o = runner(&["--help"]);
    assert!(o.status.success());
    assert!(out(&o).starts_with("usage: llsocket-lua [options] [script [args]]"));
    assert!(out(&o).contains("--sim"));
    let o = runner(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        out(&o).trim(),
        format!("llsocket-lua {} (Lua 5.4)", env!("CARGO_PKG_VERSION"))
    );
    let o = runner(&["-v", "-e", "print('after')"]);
    assert_eq!(
        out(&o),
        format!(
            "llsocket-lua {} (Lua 5.4)\nafter\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn bad_options_fail_with_the_usage() {
    for args in [
        &["-x"][..],
        &["-e"],
        &["-i"],
        &["--seed", "1", "-e", ""],
        &["--sim", "--seed", "x"],
    ] {
        let o = runner(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            err(&o).starts_with("llsocket-lua: "),
            "{args:?}: {}",
            err(&o)
        );
        assert!(err(&o).contains("usage: "), "{args:?}");
    }
    assert!(err(&runner(&["-i"])).contains("interactive mode (-i) is not supported"));
    assert!(err(&runner(&["--seed", "1"])).contains("--seed needs --sim"));
}

#[test]
fn e_and_l_run_in_order_and_arg_is_the_standard_table() {
    let o = runner(&[
        "-e",
        "x = 1",
        "-l",
        "s=string",
        "-l",
        "table",
        "-e",
        "print(x, s.rep('a', 2), table == _G.table)",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "1\taa\ttrue\n");
    let script = tmp("args.lua");
    std::fs::write(&script, "#!/usr/bin/env lua\nprint(arg[-3], arg[-2], arg[-1], arg[0], arg[1], arg[2], select('#', ...), ...)\n").unwrap();
    let s = script.to_str().unwrap();
    let o = runner(&["-e", "y = 2", s, "a", "-e"]);
    assert!(o.status.success(), "{}", err(&o));
    let bin = env!("CARGO_BIN_EXE_llsocket-lua");
    assert_eq!(out(&o), format!("{bin}\t-e\ty = 2\t{s}\ta\t-e\t2\ta\t-e\n"));
    // `--` ends the options; `-` runs stdin with the rest as arguments
    let o = runner_with(&["--", "-", "x"], Some("print('stdin', arg[0], ...)"), &[]);
    assert_eq!(out(&o), "stdin\t-\tx\n", "{}", err(&o));
    // no script: arg[0] is the interpreter
    let o = runner(&["-e", "print(arg[0] == arg[-0], #arg, arg[1], arg[2])"]);
    assert_eq!(
        out(&o),
        "true\t2\t-e\tprint(arg[0] == arg[-0], #arg, arg[1], arg[2])\n"
    );
    // LUA_INIT runs first unless -E
    let o = runner_with(&["-e", "print(z)"], None, &[("LUA_INIT", "z = 'init'")]);
    assert_eq!(out(&o), "init\n");
    let o = runner_with(
        &["-E", "-e", "print(z)"],
        None,
        &[("LUA_INIT", "z = 'init'")],
    );
    assert_eq!(out(&o), "nil\n");
}

#[test]
fn errors_exit_1_with_a_traceback() {
    let o = runner(&["-e", "local function f() error('boom') end f()"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("boom") && err(&o).contains("stack traceback"),
        "{}",
        err(&o)
    );
    let o = runner(&["/nonexistent/script.lua"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("cannot open /nonexistent/script.lua"),
        "{}",
        err(&o)
    );
}

const SIM_SCRIPT: &str = "\
local ll = require('llsocket')
local s = assert(ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM, 0, true))
assert(s:bind(ll.addrinfo.inet('10.0.0.1', 5)))     -- only the simulated host has 10.0.0.1
local c = assert(require('llsocket.socket').new(ll.AF_INET, ll.SOCK_DGRAM, 0, true))
assert(c:sendto('x', ll.addrinfo.inet('10.0.0.1', 5)) == 1)
local _, _, _, from = s:recvfrom(10)
print(from:port())                                  -- an ephemeral port: drawn from the seed
if arg[1] == 'fail' then error('scenario failed') end
";

#[test]
fn sim_runs_the_program_on_a_simulated_host_and_prints_the_replay_on_error() {
    let script = tmp("sim.lua");
    std::fs::write(&script, SIM_SCRIPT).unwrap();
    let s = script.to_str().unwrap();
    let a = runner(&["--sim", "--seed", "7", s]);
    assert!(a.status.success(), "{}", err(&a));
    let b = runner(&["--sim", "--seed", "7", s]);
    assert_eq!(out(&a), out(&b), "one seed, one run");
    let c = runner(&["--sim", "--seed=8", s]);
    assert!(c.status.success(), "{}", err(&c));
    assert_ne!(out(&a), out(&c), "another seed, another port");
    // without --sim the kernel has no 10.0.0.1
    assert_eq!(runner(&[s]).status.code(), Some(1));
    let f = runner(&["--sim", "--seed", "7", s, "fail", "it now"]);
    assert_eq!(f.status.code(), Some(1));
    let e = err(&f);
    assert!(e.contains("scenario failed"), "{e}");
    assert!(e.contains("simulated run failed with seed 7"), "{e}");
    assert!(
        e.contains(&format!("llsocket-lua --sim --seed 7 {s} fail 'it now'")),
        "{e}"
    );
}

/// A `--sim` script running tasks on the installed world: a server on the main host, a
/// client on a second host; `deadlock` as argument adds a task that waits forever.
const SIM_TASKS_SCRIPT: &str = "\
local sim = require('llsocket.sim')
local ll = require('llsocket')                      -- the installed host ('main')
local w = sim.installed()
local peer = w:host('peer')
w:link(ll, peer, { latency = { 1, 10 } })
local l = assert(ll.socket.new(ll.AF_INET, ll.SOCK_STREAM))
assert(l:bind(ll.addrinfo.inet(ll.ipv4, 7)))
assert(l:listen())
w:spawn(ll, 'server', function()
    local c = assert(l:accept())
    local m = c:recv()
    c:send(m:upper())
    c:close()
    l:close()
end)
w:spawn(peer, 'client', function()
    local c = assert(peer.socket.new(peer.AF_INET, peer.SOCK_STREAM))
    assert(c:connect(peer.addrinfo.inet(ll.ipv4, 7)))
    c:send('hello')
    local r = c:recv()
    c:close()
    return r
end)
if arg[1] == 'deadlock' then
    w:spawn(peer, 'stuck', function() return peer.socket.pair(peer.SOCK_STREAM)[1]:recv() end)
end
assert(w:run())
print(w:tasks()[2].results[1], w:now(), w:digest())
";

#[test]
fn sim_scripts_run_tasks_on_the_installed_world() {
    let script = tmp("sim_tasks.lua");
    std::fs::write(&script, SIM_TASKS_SCRIPT).unwrap();
    let s = script.to_str().unwrap();
    let a = runner(&["--sim", "--seed", "3", s]);
    assert!(a.status.success(), "{}", err(&a));
    assert!(out(&a).starts_with("HELLO\t"), "{}", out(&a));
    assert_eq!(out(&a), out(&runner(&["--sim", "--seed", "3", s])));
    let d = runner(&["--sim", "--seed", "3", s, "deadlock"]);
    assert_eq!(d.status.code(), Some(1));
    let e = err(&d);
    assert!(e.contains("deadlock: every task waits"), "{e}");
    assert!(
        e.contains("task \"stuck\" on host peer waits in recv(fd="),
        "{e}"
    );
    assert!(
        e.contains(&format!("llsocket-lua --sim --seed 3 {s} deadlock")),
        "{e}"
    );
}

#[test]
fn c_modules_load_into_the_runner() {
    // A C module using the Lua C API, built against the system's Lua 5.4 headers.
    let src = tmp("cmod.c");
    std::fs::write(
        &src,
        "#include <lua.h>\n#include <lauxlib.h>\n\
         static int twice(lua_State *L) { luaL_checkstack(L, 2, \"x\"); lua_Integer n = luaL_checkinteger(L, 1);\n\
         lua_pushinteger(L, 2 * n); return 1; }\n\
         int luaopen_cmod(lua_State *L) { lua_checkstack(L, 4); lua_newtable(L);\n\
         lua_pushcfunction(L, twice); lua_setfield(L, -2, \"twice\"); return 1; }\n",
    )
    .unwrap();
    let so = src.with_file_name("cmod.so");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-I/usr/include/lua5.4", "-o"])
        .arg(&so)
        .arg(&src)
        .status()
        .expect("cc runs (apt-get install build-essential liblua5.4-dev)");
    assert!(
        built.success(),
        "building the C module (needs liblua5.4-dev)"
    );
    let cpath = format!("{}/?.so;;", so.parent().unwrap().display());
    let o = runner_with(
        &["-e", "print(require('cmod').twice(21))"],
        None,
        &[("LUA_CPATH", &cpath)],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "42\n");
}

#[test]
fn seeds_sweeps_a_scenario_and_lists_the_failing_seeds_with_their_replay() {
    // The scenario fails whenever the simulated host picks an ephemeral port divisible by
    // 3: which seeds do is the simulator's business, but it is the same every run.
    let script = tmp("sweep.lua");
    std::fs::write(
        &script,
        "local ll = require('llsocket')\n\
         local s = assert(ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM))\n\
         assert(s:bind(ll.addrinfo.inet('127.0.0.1', 0)))\n\
         local port = s:getsockname():port()\n\
         s:close()\n\
         if port % 3 == 0 then error('unlucky port ' .. port) end\n",
    )
    .unwrap();
    let path = script.to_str().unwrap();
    let o = runner(&["--seeds", "1..30", path]);
    let e = err(&o);
    assert!(!o.status.success(), "some seed should fail: {e}");
    let failing: Vec<i64> = e
        .lines()
        .filter_map(|l| l.trim().strip_prefix("seed "))
        .filter_map(|l| l.split(':').next()?.parse().ok())
        .collect();
    assert!(!failing.is_empty() && failing.len() < 30, "{e}");
    assert!(
        e.contains(&format!("{} of 30 seeds (1..30) failed", failing.len())),
        "{e}"
    );
    assert!(e.contains("unlucky port"), "{e}");
    // the same sweep again lists the same seeds
    let again = err(&runner(&["--seeds", "1..30", path]));
    assert_eq!(e, again);
    // each replay command reproduces its failure, and a passing seed passes alone
    let seed = failing[0].to_string();
    assert!(
        e.contains(&format!("replay: llsocket-lua --sim --seed {seed} {path}")),
        "{e}"
    );
    let o = runner(&["--sim", "--seed", &seed, path]);
    assert!(!o.status.success() && err(&o).contains("unlucky port"));
    let good = (1..=30).find(|s| !failing.contains(s)).unwrap().to_string();
    assert!(runner(&["--sim", "--seed", &good, path]).status.success());
    // a sweep where every seed passes exits 0
    let single = runner(&["--seeds", &format!("{good}..{good}"), path]);
    assert!(single.status.success(), "{}", err(&single));
    assert!(err(&single).contains("1 seeds"), "{}", err(&single));
    // usage errors
    for bad in [
        &["--seeds", "5..1", path][..],
        &["--seeds", "x", path],
        &["--seeds", "1..2"],
        &["--seed", "1", "--seeds", "1..2", path],
    ] {
        let o = runner(bad);
        assert!(!o.status.success(), "{bad:?}");
        assert!(err(&o).contains("usage:"), "{bad:?}: {}", err(&o));
    }
}
