//! The `llsocket` Lua module (lua-llsocket 0.15 API) over any [`SocketOps`] backend.
//!
//! Map of the crate:
//!
//! | module | what lives there |
//! |---|---|
//! | `lua` | upvalue layout, strict argument checks, error-object creation, panic guard, blobs and holders (the raised-error model) |
//! | `types` | every userdata layout, constructor and self check; the per-state metatables |
//! | `errors` | lua-errno detection and the built-in errno twin |
//! | `socket` | `llsocket.socket` functions and methods |
//! | `addrinfo` | `llsocket.addrinfo` |
//! | `msg` | `msghdr`, `cmsghdr`, `cmsghdrs`, `sendmsg`/`recvmsg` bodies |
//! | `iovec` | `llsocket.iovec` and access to the C lua-iovec rock's objects |
//! | `device` | `device.getifaddrs`, `env`, constants |
//! | `sim` | `llsocket.sim`: worlds, hosts as module tables, faults, clock, trace, `install`, tasks (`spawn`, `run`; the scheduler is `sched.lua`) |
//! | `sim_rules` | `world:rule` and `world:remove_rule`: packet rules written in Lua, run on a thread of their own under `lua_pcall` inside the simulator (re-entrancy guard, deferred removals, failure reports) |
//! | `task` | the socket methods that can wait, as registered: in a task on the simulator a call that would wait suspends the task |
//!
//! Every Lua-visible function is a raw `extern "C-unwind"` C function (exact
//! `luaL_argerror` messages, no mlua callback overhead). The backend lives in a
//! userdata that is upvalue 1 of every function, so one Lua API serves the POSIX
//! backend ([`open`], [`preload`], `require('llsocket')` of the built `.so`) and
//! any other backend ([`open_with`], [`preload_with`]), e.g. the simulator.
//!
//! Running the Lua API on another backend (e.g. the simulator) from Rust:
//!
//! ```no_run
//! # fn sim() -> std::rc::Rc<dyn llsocket_api::SocketOps> { llsocket::default_backend() }
//! let lua = mlua::Lua::new();
//! llsocket::preload_with(&lua, sim()).unwrap(); // package.preload.llsocket
//! lua.load("local s = require('llsocket').socket").exec().unwrap();
//! ```
//!
//! # Entry points and loadings
//!
//! `llsocket.so` exports `luaopen_llsocket` and one `luaopen_llsocket_<sub>` per
//! [`SUBMODULES`] entry; [`preload_with`] registers the same names in `package.preload`.
//! Every loading in a Lua state (any entry point, a reload after clearing
//! `package.loaded`, modules over different backends) shares one metatable per type and
//! one error module, made by the first loading (see the `types` module), so objects
//! cross loadings freely. Each object runs on the backend of the loading that made it:
//! with a module over the simulator and one over the kernel in the same state, a
//! simulated socket's methods stay on the simulator whichever table they are reached
//! through, address, msghdr, cmsghdr(s) and iovec objects are plain data usable with
//! either, and descriptor numbers belong to their backend (`sim.socket.wrap(n)` looks
//! `n` up in the simulated host: a number it does not have is `EBADF`).
//!
//! Build variants: `--features lua51|lua52|lua53|lua54|luajit` plus `module` for a
//! loadable `libllsocket.so` (`luaopen_llsocket`), or `vendored` (default, Lua 5.4)
//! for in-process use and the `llsocket-lua` runner.
//!
//! # Safety contract
//!
//! What a Lua program can never do to the process through this module, with plain Lua
//! (any code that does not use the `debug` library), and how each promise is tested:
//!
//! | promise | why it holds | tested by |
//! |---|---|---|
//! | no crash, no read or write of freed memory | every method checks `self` and every object argument against the one metatable of its type; only sockets have a finalizer (their metatable is locked, their `__gc` checks its argument too); the socket self-check cache holds only never-finalized sockets (`socket::check_sock`) | `test/safety_test.lua` (foreign objects to every method and metamethod, revived sockets), `test/safety/fuzz.lua` (hostile arguments, revived objects, raising finalizers; 8 seeds per interpreter per CI run, 2 under valgrind), `test/safety/fuzz_sim.lua` (the same for `llsocket.sim`; 2 seeds per interpreter per CI run, 1 under valgrind) |
//! | no abort on a failed allocation | every allocation sized by Lua input is Lua memory (raises `not enough memory`, catchable) or a fallible Rust allocation turned into that error; `llsocket.sim` bounds what it copies into Rust memory itself (host and group names: 255 bytes; `pcap` paths: `PATH_MAX`) | `test/safety/memlimit.lua` under `ulimit -v`, every interpreter |
//! | memory follows what the program keeps | payloads are Lua objects the collector accounts for and frees in one cycle; receive buffers are not zero-filled (resident size follows what arrives; only receives of at most 256 bytes use a zeroed buffer on the C stack) | `test/safety/soak.lua` (peak RSS against a plain-Lua twin loop) |
//! | nothing is lost when a Lua call raises mid-function | the raised-error model of the `lua` module | `test/safety/raising_gc.lua` (+ valgrind, definitely-lost), `test/safety/fuzz_sim.lua` under valgrind (the simulator's functions, with finalizers raising and closing worlds mid-call) |
//! | no descriptor leak | descriptors belong to a socket object from the moment they exist; its `__gc` closes them | the fuzzer's and `raising_gc.lua`'s descriptor counts, `test/leakcheck.lua` |
//! | no death by `SIGPIPE` | the POSIX backend sends with `MSG_NOSIGNAL` / `SO_NOSIGPIPE` | the suite's writes to closed peers |
//! | no Lua error unwinds through the simulator | packet rules written in Lua (`world:rule`) run under `lua_pcall` on a thread of their own, their packet table built inside the protected call; inside a rule, calls into its own world raise before touching it (`sim_rules`) | `test/sim_test.lua` (hostile rules, re-entrant calls, the collector inside a rule), `test/safety/raising_gc.lua` (finalizers raising inside rules), `test/safety/memlimit.lua` (a rule out of memory) |
//! | no panic crosses into Lua | every backend call runs in `guard` (a panic becomes `llsocket: internal error: ...`) | both fuzzers fail on any internal error |
//! | `llsocket.sim` fails clearly, and its scheduler survives errors raised inside it | wrong arguments raise `bad argument #N ...`; calls through a host (or a socket, address, iovec of one) whose world is gone raise `llsocket.sim: the world of this host is gone`, and world methods `this world is gone`; `sched.lua` records a task's step before anything that may raise and publishes it without a call or an allocation, and `world:run` ends the run (task mode, running) however it ends | `test/sim_test.lua`, `test/tasks_test.lua`, `test/safety/fuzz_sim.lua`: every `llsocket.sim` function, world method and metamethod (by hand too), host function, simulated socket method and the task API (tasks that raise, yield odd values, make coroutines, spawn, close and run worlds), on live, closed, collected and revived worlds, objects of one world given to another and kernel objects to hosts; it fails on an error other than those above (or the memory error, or the fuzzer's own), an internal error, a "gone" error while every world involved lives, a call on a gone world that returns, a task left running after a run, a hang (watchdog, then the step's time limit) or a kernel descriptor leak |
//!
//! What needs `debug`: `debug.setmetatable` can give a userdata of another type a module
//! metatable (or strip a socket's while it is cached) and `debug.getuservalue` exposes
//! the payload blobs; as with any C module, code with the debug library is trusted.
//! Revived objects (kept alive by another object's finalizer) are valid objects: a
//! revived socket has had its descriptor closed (its methods report `EBADF`), the other
//! types have no finalizer and simply stay usable.

use std::ffi::c_int;
use std::rc::Rc;

use llsocket_api::SocketOps;
use mlua::ffi::{self, lua_State};

mod addrinfo;
mod backend;
mod device;
mod errors;
mod iovec;
mod lua;
mod module;
mod msg;
mod sim;
mod sim_rules;
mod socket;
mod task;
mod types;

#[cfg(test)]
mod tests;

pub use backend::default_backend;

/// Pushes the `llsocket` module table built over the POSIX backend (`luaopen_llsocket`'s body).
///
/// # Safety
/// `l` must be a valid Lua state of the Lua version this crate was built for,
/// called as a Lua C function or with a protected caller (errors are raised with `lua_error`).
pub unsafe fn open(l: *mut lua_State) -> c_int {
    // SAFETY: forwarded contract; every POSIX loading of a state shares one backend cell.
    unsafe {
        module::push_posix_cell(l);
        module::build(l)
    }
}

/// Pushes the `llsocket` module table built over `backend`; returns 1 (the table).
///
/// Each call makes a new module instance (a backend cell, kept until the state closes:
/// the objects it makes point at it); loadings through [`open`] and [`preload_with`]
/// share one cell per backend instead.
///
/// # Safety
/// As for [`open`].
pub unsafe fn open_with(l: *mut lua_State, backend: Rc<dyn SocketOps>) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        // (If making the cell raises, the reference held here is never released: one, once,
        // at a load from Rust.)
        module::push_anchored_cell(l, move || backend);
        module::build(l)
    }
}

/// The sub-modules a program may require on their own (`require('llsocket.msghdr')`):
/// each is the field of that name of a module built over the same backend.
pub const SUBMODULES: [&str; 7] = [
    "socket", "addrinfo", "msghdr", "cmsghdr", "cmsghdrs", "device", "env",
];

/// Pushes the sub-module `field` (a C string) of a module over the POSIX backend.
///
/// # Safety
/// As for [`open`].
unsafe fn open_sub(l: *mut lua_State, field: &std::ffi::CStr) -> c_int {
    // SAFETY: forwarded contract; the module table is on top after `open`.
    unsafe {
        open(l);
        ffi::lua_getfield(l, -1, field.as_ptr());
        ffi::lua_remove(l, -2);
    }
    1
}

/// The `lua_CFunction` registered in `package.preload` by [`preload_with`]: opens the
/// module over the backend of upvalue 1, or the sub-module named by upvalue 2.
unsafe extern "C-unwind" fn preload_loader(l: *mut lua_State) -> c_int {
    // SAFETY: upvalue 1 is the anchored BackendCell userdata created by `preload_with`,
    // upvalue 2 nil or the sub-module's name.
    unsafe {
        // the registration's one cell (anchored by `preload_with`): every loading through
        // it shares it
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        module::build(l);
        if ffi::lua_type(l, ffi::lua_upvalueindex(2)) == ffi::LUA_TSTRING {
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
            ffi::lua_gettable(l, -2);
            ffi::lua_remove(l, -2);
        }
        1
    }
}

/// Registers `package.preload.llsocket`, `package.preload['llsocket.<sub>']` (every
/// [`SUBMODULES`] entry) and `package.preload['llsocket.sim']` in `lua`, so that `require('llsocket')` and each sub-module
/// build over `backend` (the simulator uses this).
pub fn preload_with(lua: &mlua::Lua, backend: Rc<dyn SocketOps>) -> mlua::Result<()> {
    let backend = std::mem::ManuallyDrop::new(backend);
    // SAFETY: the closure only pushes a userdata, strings and C closures on the given state.
    let loaders: mlua::Table = unsafe {
        lua.exec_raw((), |l| {
            let b = std::mem::ManuallyDrop::into_inner(backend);
            module::push_anchored_cell(l, move || b);
            let cell = ffi::lua_gettop(l);
            ffi::lua_createtable(l, 0, 8);
            ffi::lua_pushvalue(l, cell);
            ffi::lua_pushnil(l);
            ffi::lua_pushcclosure(l, preload_loader, 2);
            ffi::lua_setfield(l, -2, c"llsocket".as_ptr());
            for sub in SUBMODULES {
                ffi::lua_pushvalue(l, cell);
                ffi::lua_pushlstring(l, sub.as_ptr().cast(), sub.len());
                ffi::lua_pushcclosure(l, preload_loader, 2);
                let key = format!("llsocket.{sub}");
                ffi::lua_pushlstring(l, key.as_ptr().cast(), key.len());
                ffi::lua_insert(l, -2);
                ffi::lua_settable(l, -3);
            }
            ffi::lua_pushcfunction(l, luaopen_llsocket_sim);
            ffi::lua_setfield(l, -2, c"llsocket.sim".as_ptr());
            ffi::lua_remove(l, cell);
        })?
    };
    let package: mlua::Table = lua.globals().get("package")?;
    let preload: mlua::Table = package.get("preload")?;
    for pair in loaders.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair?;
        preload.set(k, v)?;
    }
    Ok(())
}

/// Registers `package.preload.llsocket` (and the sub-modules) over the POSIX backend.
pub fn preload(lua: &mlua::Lua) -> mlua::Result<()> {
    preload_with(lua, default_backend())
}

/// The module entry point for `require('llsocket')`.
///
/// # Safety
/// Called by the Lua host with a valid state.
#[no_mangle]
pub unsafe extern "C-unwind" fn luaopen_llsocket(l: *mut lua_State) -> c_int {
    // SAFETY: the host calls this as a Lua C function.
    unsafe { open(l) }
}

/// The entry point for `require('llsocket.sim')`: the simulator for Lua programs (worlds
/// of simulated hosts, each a complete `llsocket` module table; see the README section
/// "Testing Lua network code on the simulator").
///
/// # Safety
/// Called by the Lua host with a valid state.
#[no_mangle]
pub unsafe extern "C-unwind" fn luaopen_llsocket_sim(l: *mut lua_State) -> c_int {
    // SAFETY: the host calls this as a Lua C function.
    unsafe { sim::open(l) }
}

/// Entry points of the sub-modules, found by Lua's all-in-one C loader in `llsocket.so`
/// (`require('llsocket.msghdr')` looks for `luaopen_llsocket_msghdr`).
macro_rules! submodule_entry {
    ($($fname:ident => $field:literal),* $(,)?) => {
        $(
            #[doc = concat!("`require('llsocket.", $field, "')`: the `", $field, "` field of a module over the POSIX backend.")]
            ///
            /// # Safety
            /// Called by the Lua host with a valid state.
            #[no_mangle]
            pub unsafe extern "C-unwind" fn $fname(l: *mut lua_State) -> c_int {
                let field = concat!($field, "\0");
                // SAFETY: `field` is NUL-terminated without an inner NUL.
                let field = unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(field.as_bytes()) };
                // SAFETY: the host calls this as a Lua C function.
                unsafe { open_sub(l, field) }
            }
        )*
    };
}

submodule_entry! {
    luaopen_llsocket_socket => "socket",
    luaopen_llsocket_addrinfo => "addrinfo",
    luaopen_llsocket_msghdr => "msghdr",
    luaopen_llsocket_cmsghdr => "cmsghdr",
    luaopen_llsocket_cmsghdrs => "cmsghdrs",
    luaopen_llsocket_device => "device",
    luaopen_llsocket_env => "env",
}
