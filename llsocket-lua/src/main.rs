//! `llsocket-lua`: runs a Lua script on the bundled Lua 5.4 with `llsocket` requirable.
//!
//! Usage: `llsocket-lua script.lua [args...]` or `llsocket-lua -e 'code' [args...]`.
//! `arg` is set like the standalone interpreter's; an error prints its message and
//! traceback to stderr and exits with status 1.

use std::process::ExitCode;

use mlua::{Lua, LuaOptions, StdLib, Value};

fn run(args: &[String]) -> mlua::Result<()> {
    // SAFETY: the standalone interpreter loads every standard library, including debug.
    let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::new()) };
    llsocket::preload(&lua)?;
    let (chunk, name, script_at) = match args.get(1).map(String::as_str) {
        Some("-e") => {
            let code = args.get(2).cloned().unwrap_or_default();
            (code.into_bytes(), "=(command line)".to_owned(), 2)
        }
        Some(path) => {
            let mut src = std::fs::read(path).map_err(mlua::Error::external)?;
            if src.first() == Some(&b'#') {
                let end = src.iter().position(|&c| c == b'\n').unwrap_or(src.len());
                src.drain(..end);
            }
            (src, format!("@{path}"), 1)
        }
        None => {
            return Err(mlua::Error::runtime(
                "usage: llsocket-lua script.lua [args...] | llsocket-lua -e 'code' [args...]",
            ))
        }
    };
    let argt = lua.create_table()?;
    argt.set(-(script_at as i64), args[0].as_str())?;
    for (i, a) in args.iter().enumerate().skip(1) {
        argt.set(i as i64 - script_at as i64, a.as_str())?;
    }
    lua.globals().set("arg", argt)?;
    let rest: Vec<Value> = args
        .iter()
        .skip(script_at + 1)
        .map(|a| lua.create_string(a).map(Value::String))
        .collect::<mlua::Result<_>>()?;
    lua.load(chunk)
        .set_name(name)
        .call::<()>(mlua::MultiValue::from_iter(rest))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llsocket-lua: {e}");
            ExitCode::FAILURE
        }
    }
}
