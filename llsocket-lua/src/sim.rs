//! `llsocket.sim`: the simulator for Lua programs — worlds from a seed, hosts that are
//! complete `llsocket` module tables, link and host faults, the virtual clock, the trace,
//! `install` (which makes a later `require('llsocket')` the simulated host's), and tasks
//! (several programs at once on one world).
//!
//! # Tasks
//!
//! `world:spawn(host, name, fn, ...)` makes a task: `fn(...)` run as a coroutine, named
//! `name` (default `task-<n>`) on `host` in reports. `world:run([{deadline = ms}])` runs
//! the tasks: in the order they became runnable (spawn order first), each until it
//! returns or waits. A call that would wait — a blocking `accept`, `acceptfd`,
//! `connect`, `send`, `sendto`, `write`, `sendmsg`, `sendfd`, `sendfile`, `recv`,
//! `recvfrom`, `read`, `recvfd`, `recvmsg`, `recvable`/`sendable` with a timeout, a
//! lingering `close` — suspends only its task (see `task`); when no task can run, the
//! world runs its next event, or its clock moves to the earliest timeout, and each
//! suspended call whose host changed (or whose timeout came) is made again, in spawn
//! order. Timeouts (`SO_RCVTIMEO`, `SO_SNDTIMEO`, `recvable(ms)`, linger) fall at the
//! virtual time they would without tasks: one task gives the same trace as the same
//! program run without tasks. A task that calls `coroutine.yield()` lets the others run
//! first (and the world's next event, if none has anything to do; one that only yields,
//! with nothing pending, counts as waiting in a deadlock). Tasks may spawn tasks.
//!
//! `run` returns `true` once every task has returned, or `false, 'deadline'` when the
//! virtual clock would pass `deadline` (milliseconds, as `world:now()`; the tasks stay
//! suspended, a later `run` goes on; in between, plain blocking calls run the world as
//! without tasks). It raises, leaving the other tasks suspended, at the first task error
//! (`llsocket.sim: task "client-3" on host c3 failed (virtual time 0.250000000 s, seed
//! 42):`, the error, the task's traceback, the replay hint), at a deadlock (every task
//! waits, nothing is pending: one line per task, `task "client-3" on host c3 waits in
//! recv(fd=4)`), and when a task spins (100 000 calls in a row that could not go on, such
//! as non-blocking receives that find nothing, without waiting or yielding: nothing else
//! runs meanwhile, so it would spin forever). An error raised in the scheduler itself (the
//! memory error, or before Lua 5.4 a finalizer's) ends the run too: every task stays
//! where it was, and a later run goes on. `world:tasks()` lists the task objects
//! (read-only: `name`, `host`, `status`, `waits`, `results`, `error`).
//!
//! The scheduler is `sched.lua`; the order it runs things in is the same on every
//! interpreter, so a task scenario has one digest on Lua 5.1 to 5.4 and LuaJIT. A task
//! waits by yielding its coroutine from inside the C method, which Lua 5.1 cannot do
//! across `pcall`/`xpcall` (the call raises `... Lua 5.1 cannot suspend a task across
//! pcall ...: use sim.pcall`), a metamethod (but `__call`) or a `for` iterator (Lua's own
//! "attempt to yield across metamethod/C-call boundary"), and no interpreter can across
//! a C callback (`table.sort`, `string.gsub`, `require`). `sim.pcall` is `pcall` where
//! `pcall` can yield (Lua 5.2+, LuaJIT) and a coroutine-based `pcall` on Lua 5.1 (as
//! coxpcall). A coroutine a task makes itself cannot wait (the call raises saying so). On
//! LuaJIT `world:run` raises inside a finalizer or a debug hook: LuaJIT's `lua_yield` from
//! a C function, how a task waits, is broken there (see `task::tasks_can_run_here`).
//! `sim.installed()` is the world of `install` (and of `llsocket-lua --sim`), so a
//! script run on the simulator can spawn tasks too.
//!
//! # Packet rules
//!
//! `world:rule(fn)` installs a rule that sees every packet between two hosts;
//! `world:rule(a, b, fn)` one that sees the packets from host `a` to host `b` only (names
//! or host tables, as `world:link`); both return the rule's id (an integer), and
//! `world:remove_rule(id)` removes it (`true`, or `false` when it was not installed). The
//! names and the semantics are [`Sim::add_rule`], [`Sim::add_link_rule`] and
//! [`Sim::remove_rule`]: rules run in installation order after the link's own faults.
//! `fn(packet, rng)` gets a fresh table (`time` in virtual milliseconds, `src_host`,
//! `dst_host`, `src`, `dst` as `"10.0.0.1:46013"`, `src_ip`, `dst_ip`, `src_port`,
//! `dst_port`, `proto` `"tcp"`/`"udp"`, `flags` such as `"SA"` or `"PA"`, `len`, `payload`,
//! `attempt`) and the world's generator (`rng:chance(p)`, `rng:range(lo, hi)`,
//! `rng:duration(lo_ms, hi_ms)`, valid during the call only), and returns `nil`/`"pass"`,
//! `"drop"`, `"delay", ms` (or `{delay = ms}`), `"duplicate"` or `"hold"`. A rule that
//! raises, yields or returns anything else passes the packet, is removed, and its report
//! (with the rule's traceback, the virtual time and the seed) is raised by the next call
//! into the world — `advance` and `run` raise it before they return. Inside a rule its own
//! world is busy: its methods (but `remove_rule`, `seed`, `replay_hint`, `closed`), its
//! hosts' functions and their sockets' methods raise. How a rule is run, and why that is
//! sound against any Lua program, is in `sim_rules`.
//!
//! # Ownership
//!
//! A world is a userdata owning a `Box<WorldState>` (the [`Sim`] and its hosts): the one
//! userdata of the module that owns Rust memory, like a [`crate::lua::Holder`]. Its `__gc`
//! (or `world:close()`) drops the state; after that every method raises
//! `llsocket.sim: this world is gone`. Functions follow the raised-error model of the
//! `lua` module: references into the state are taken after the last Lua call that could
//! run a finalizer (a finalizer may close the world) and dropped before the next one.
//!
//! Each host's module table runs on a [`SimHost`]: a backend that forwards to the
//! simulated [`Host`] while the world lives. When the world goes, the forwarder is
//! emptied (so the world's memory is freed even though module functions may live on)
//! and the host's module instance is marked gone (`BackendCell::gone`): every later call
//! through it raises `llsocket.sim: the world of this host is gone`.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void, CStr};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use llsocket_api::{
    Accepted, AddrInfo, AddrInfoHints, Errno, Family, Fd, GaiError, Interest, Interface, McastOp,
    McastRequest, MsgFlags, NameInfo, OptName, Platform, Protocol, RecvMsgOut, Result, Shutdown,
    SockAddr, SockOpt, SockType, SocketOps,
};
use llsocket_sim::{Host, HostFaults, Latency, LinkConfig, Park, Sim, SimError, TaskStep};
use mlua::ffi::*;

use crate::lua::{
    arg_error, check_str, guard, holder_gc, is_none_or_nil, new_holder_with, push_bool, push_bytes,
    push_int, raise_str, type_error, BackendCell,
};
use crate::sim_rules::RuleShared;

// ---- the backend of a host's module table ---------------------------------------------

/// A simulated host as long as its world lives; afterwards every call is `ENETDOWN`
/// (the binding raises before calling it, see `BackendCell::gone`; only a call already
/// under way when a finalizer closes the world can see that error).
pub(crate) struct SimHost {
    host: RefCell<Option<Host>>,
    platform: Platform,
    /// Shared by the world and all its hosts (see [`TaskShared`]).
    shared: Rc<TaskShared>,
}

/// What a world shares with its hosts' backends (and its packet rules): the task
/// wrappers' flag for the scheduler, and the state of the world's Lua packet rules.
#[derive(Default)]
pub(crate) struct TaskShared {
    /// The scheduler is calling a parked call again (the call returns, not yields, when it
    /// parks again).
    retrying: Cell<bool>,
    /// The world's packet rules written in Lua (see `sim_rules`).
    pub(crate) rules: RuleShared,
}

impl SimHost {
    fn new(host: Host, shared: Rc<TaskShared>) -> SimHost {
        let platform = host.platform();
        SimHost {
            host: RefCell::new(Some(host)),
            platform,
            shared,
        }
    }

    /// Whether the world runs its tasks (never while one of its packet rules runs: the
    /// world is borrowed then, and every way in raises first, see `sim_rules`).
    pub(crate) fn task_mode(&self) -> bool {
        !self.shared.rules.busy()
            && self
                .host
                .borrow()
                .as_ref()
                .is_some_and(|h| h.sim().task_mode())
    }

    /// The park the last call left (task mode), taken.
    pub(crate) fn take_park(&self) -> Option<Park> {
        if self.shared.rules.busy() {
            return None;
        }
        self.host.borrow().as_ref()?.sim().take_park()
    }

    /// `Host::task_poll`: the park the last call left (taken) and the calls in a row that
    /// could not go on; `None` outside task mode.
    pub(crate) fn task_poll(&self) -> Option<(Option<Park>, u64)> {
        if self.shared.rules.busy() {
            return None;
        }
        self.host.borrow().as_ref()?.task_poll()
    }

    /// Whether a call through this host must stop at `sim_rules::attend_host` first (one
    /// of the world's rules runs, or something it left is pending).
    #[inline(always)]
    pub(crate) fn attention(&self) -> bool {
        self.shared.rules.attention()
    }

    /// The world's shared state.
    pub(crate) fn shared(&self) -> &TaskShared {
        &self.shared
    }

    /// The host, while its world lives.
    pub(crate) fn host(&self) -> Option<Host> {
        self.host.borrow().clone()
    }

    /// `Host::close_wait`.
    pub(crate) fn close_wait(&self, fd: Fd) -> Result<()> {
        self.h()?.close_wait(fd)
    }

    /// Whether the scheduler is calling a parked call again.
    pub(crate) fn retrying(&self) -> bool {
        self.shared.retrying.get()
    }

    /// The identity of the world (a light userdata value recorded with its tasks).
    pub(crate) fn world_key(&self) -> *mut c_void {
        Rc::as_ptr(&self.shared) as *mut c_void
    }

    /// The host (a cheap clone: a world closed during the call stays alive until it returns).
    /// While one of the world's packet rules runs the world is borrowed: every call through
    /// the binding raises before it gets here (`sim_rules::attend_host`), so only a
    /// finalizer's close can come (deferred, see `close`); anything else is `EDEADLK`.
    fn h(&self) -> Result<Host> {
        if self.shared.rules.busy() {
            return Err(Errno::EDEADLK);
        }
        self.host.borrow().clone().ok_or(Errno::ENETDOWN)
    }

    fn gai(&self) -> std::result::Result<Host, GaiError> {
        self.h().map_err(|e| GaiError {
            code: libc::EAI_SYSTEM,
            system: Some(e),
        })
    }
}

impl SocketOps for SimHost {
    fn platform(&self) -> Platform {
        self.platform
    }
    fn socket(&self, f: Family, t: SockType, p: Protocol, nonblock: bool) -> Result<Fd> {
        self.h()?.socket(f, t, p, nonblock)
    }
    fn socketpair(&self, t: SockType, p: Protocol, nonblock: bool) -> Result<(Fd, Fd)> {
        self.h()?.socketpair(t, p, nonblock)
    }
    fn dup(&self, fd: Fd) -> Result<Fd> {
        self.h()?.dup(fd)
    }
    fn close(&self, fd: Fd) -> Result<()> {
        if self.shared.rules.busy() {
            // A socket's finalizer, run by the collector while one of the world's rules
            // runs: the close happens at the next call into the world.
            if let Some(h) = self.host() {
                self.shared.rules.defer_close(h, fd);
            }
            return Ok(());
        }
        self.h()?.close(fd)
    }
    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()> {
        self.h()?.shutdown(fd, how)
    }
    fn bind(&self, fd: Fd, addr: &SockAddr) -> Result<()> {
        self.h()?.bind(fd, addr)
    }
    fn connect(&self, fd: Fd, addr: &SockAddr) -> Result<()> {
        self.h()?.connect(fd, addr)
    }
    fn listen(&self, fd: Fd, backlog: i32) -> Result<()> {
        self.h()?.listen(fd, backlog)
    }
    fn accept(&self, fd: Fd, want_addr: bool) -> Result<Accepted> {
        self.h()?.accept(fd, want_addr)
    }
    fn send(&self, fd: Fd, buf: &[u8], flags: MsgFlags) -> Result<usize> {
        self.h()?.send(fd, buf, flags)
    }
    fn sendto(&self, fd: Fd, buf: &[u8], to: &SockAddr, flags: MsgFlags) -> Result<usize> {
        self.h()?.sendto(fd, buf, to, flags)
    }
    fn recv(&self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize> {
        self.h()?.recv(fd, buf, flags)
    }
    fn recvfrom(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<(usize, Option<SockAddr>)> {
        self.h()?.recvfrom(fd, buf, flags)
    }
    fn sendmsg<'a>(
        &self,
        fd: Fd,
        iov: &[&'a [u8]],
        control: &[u8],
        to: Option<&'a SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        self.h()?.sendmsg(fd, iov, control, to, flags)
    }
    #[allow(clippy::needless_lifetimes)] // matches the trait declaration
    fn recvmsg<'a>(
        &self,
        fd: Fd,
        iov: &mut [&'a mut [u8]],
        control: &mut [u8],
        flags: MsgFlags,
    ) -> Result<RecvMsgOut> {
        self.h()?.recvmsg(fd, iov, control, flags)
    }
    fn sendfile(&self, sock: Fd, file: Fd, offset: i64, len: usize) -> Result<usize> {
        self.h()?.sendfile(sock, file, offset, len)
    }
    fn poll(&self, fd: Fd, interest: Interest, timeout_ms: i32) -> Result<bool> {
        self.h()?.poll(fd, interest, timeout_ms)
    }
    fn atmark(&self, fd: Fd) -> Result<bool> {
        self.h()?.atmark(fd)
    }
    fn getsockname(&self, fd: Fd) -> Result<SockAddr> {
        self.h()?.getsockname(fd)
    }
    fn getpeername(&self, fd: Fd) -> Result<SockAddr> {
        self.h()?.getpeername(fd)
    }
    fn nonblock(&self, fd: Fd) -> Result<bool> {
        self.h()?.nonblock(fd)
    }
    fn set_nonblock(&self, fd: Fd, on: bool) -> Result<()> {
        self.h()?.set_nonblock(fd, on)
    }
    fn cloexec(&self, fd: Fd) -> Result<bool> {
        self.h()?.cloexec(fd)
    }
    fn set_cloexec(&self, fd: Fd, on: bool) -> Result<()> {
        self.h()?.set_cloexec(fd, on)
    }
    fn getsockopt(&self, fd: Fd, name: OptName) -> Result<SockOpt> {
        self.h()?.getsockopt(fd, name)
    }
    fn setsockopt(&self, fd: Fd, opt: SockOpt) -> Result<()> {
        self.h()?.setsockopt(fd, opt)
    }
    fn multicast(&self, fd: Fd, op: McastOp, req: &McastRequest) -> Result<()> {
        self.h()?.multicast(fd, op, req)
    }
    fn interface_ipv4(&self, fd: Fd, name: &[u8]) -> Result<Ipv4Addr> {
        self.h()?.interface_ipv4(fd, name)
    }
    fn if_nametoindex(&self, name: &[u8]) -> Result<u32> {
        self.h()?.if_nametoindex(name)
    }
    fn if_indextoname(&self, index: u32) -> Result<Vec<u8>> {
        self.h()?.if_indextoname(index)
    }
    fn getaddrinfo<'a>(
        &self,
        node: Option<&'a [u8]>,
        service: Option<&'a [u8]>,
        hints: &AddrInfoHints,
    ) -> std::result::Result<Vec<AddrInfo>, GaiError> {
        self.gai()?.getaddrinfo(node, service, hints)
    }
    fn getnameinfo(&self, addr: &SockAddr, flags: i32) -> std::result::Result<NameInfo, GaiError> {
        self.gai()?.getnameinfo(addr, flags)
    }
    fn interfaces(&self) -> Result<Vec<Interface>> {
        self.h()?.interfaces()
    }
}

// ---- the world --------------------------------------------------------------------------

/// One host of a world.
pub(crate) struct HostEntry {
    name: String,
    pub(crate) host: Host,
    gate: Rc<SimHost>,
    /// The module instance of the host's table (null until it is built).
    cell: *const BackendCell,
}

/// What a world userdata owns.
pub(crate) struct WorldState {
    pub(crate) sim: Sim,
    pub(crate) hosts: Vec<HostEntry>,
    /// Shared with the hosts' backends and the world's packet rules.
    pub(crate) shared: Rc<TaskShared>,
}

impl Drop for WorldState {
    fn drop(&mut self) {
        // Rules of a gone world pass without running; closes deferred by a rule are moot
        // (and their hosts would keep the world alive).
        self.shared.rules.world_gone();
        for e in &self.hosts {
            if let Ok(mut h) = e.gate.host.try_borrow_mut() {
                *h = None;
            }
            // SAFETY: a host's cell is anchored by a registry reference until the state
            // closes, and a world state is dropped only by `close` or `__gc`, which run
            // while the state is open (at `lua_close` every finalizer runs before any
            // object is freed).
            if let Some(c) = unsafe { e.cell.as_ref() } {
                c.gone.set(true);
            }
        }
    }
}

/// The world userdata.
pub(crate) struct WorldUd {
    state: Option<Box<WorldState>>,
    /// The state's [`TaskShared`], outside the box: a method called inside one of the
    /// world's packet rules reads it (and raises) without touching the state, which the
    /// call running the rule holds. Dropped by `__gc`.
    shared: Option<Rc<TaskShared>>,
}

/// Registry names of the world metatable and of the module's private holder metatable.
const WORLD_MT: &CStr = c"llsocket.sim.world";
pub(crate) const HOLDER_MT: &CStr = c"llsocket.sim.holder";

/// Upvalue 1 of every function: the world metatable; upvalue 2: the holder metatable.
fn up_world() -> c_int {
    lua_upvalueindex(1)
}
fn up_holder() -> c_int {
    lua_upvalueindex(2)
}

/// The world userdata at `arg`, else a raised type error.
pub(crate) unsafe fn check_world(l: *mut lua_State, arg: c_int) -> *mut WorldUd {
    let p = lua_touserdata(l, arg);
    if !p.is_null() && lua_getmetatable(l, arg) != 0 {
        let same = lua_rawequal(l, -1, up_world()) != 0;
        lua_pop(l, 1);
        if same {
            return p as *mut WorldUd;
        }
    }
    type_error(l, arg, WORLD_MT, true)
}

/// The state of a live world; raises once it is gone, inside one of its packet rules, and
/// with the report of a rule that failed since the last call (`sim_rules::attend_world`).
/// The reference must not be kept across a Lua call that can run a finalizer.
pub(crate) unsafe fn live(l: *mut lua_State, w: *mut WorldUd) -> &'static mut WorldState {
    if let Some(sh) = (*w).shared.as_deref() {
        if sh.rules.attention() {
            crate::sim_rules::attend_world(l, w, sh, true);
        }
    }
    state_of(l, w)
}

/// [`live`] without raising a rule's pending report (for the scheduler's clock, which its
/// reports read under `pcall`: a report must not be swallowed).
unsafe fn live_quiet(l: *mut lua_State, w: *mut WorldUd) -> &'static mut WorldState {
    if let Some(sh) = (*w).shared.as_deref() {
        if sh.rules.attention() {
            crate::sim_rules::attend_world(l, w, sh, false);
        }
    }
    state_of(l, w)
}

/// The world's shared state (`None` once collected).
pub(crate) unsafe fn shared_of(w: *mut WorldUd) -> Option<&'static TaskShared> {
    // SAFETY: the Rc lives in the userdata until `__gc`, which cannot run during a call
    // that has the world on its stack.
    (*w).shared.as_deref().map(|s| &*(s as *const TaskShared))
}

/// The world's simulator, cloned (`None` once it is gone).
pub(crate) unsafe fn sim_of(w: *mut WorldUd) -> Option<Sim> {
    (*w).state.as_deref().map(|s| s.sim.clone())
}

/// The state, or a raised error once the world is gone.
pub(crate) unsafe fn state_of(l: *mut lua_State, w: *mut WorldUd) -> &'static mut WorldState {
    match (*w).state.as_deref_mut() {
        // SAFETY (of the 'static): the box lives until `close`/`__gc`, which the caller
        // cannot reach before its next Lua call.
        Some(s) => &mut *(s as *mut WorldState),
        None => raise_str(l, c"llsocket.sim: this world is gone (closed or collected)"),
    }
}

/// Text formatted into a stack buffer (cut at 512 bytes): a message about a Rust value that
/// owns memory, made before the push that may raise, so that the value is dropped first.
struct StackText {
    buf: [u8; 512],
    len: usize,
}

impl StackText {
    fn new(args: std::fmt::Arguments<'_>) -> StackText {
        let mut buf = [0u8; 512];
        let mut c = std::io::Cursor::new(&mut buf[..]);
        let _ = c.write_fmt(args);
        let len = c.position() as usize;
        StackText { buf, len }
    }

    unsafe fn push(&self, l: *mut lua_State) {
        push_bytes(l, &self.buf[..self.len]);
    }
}

/// Pushes text formatted into a stack buffer (no Rust heap across the push; cut at 512 bytes).
pub(crate) unsafe fn push_fmt(l: *mut lua_State, args: std::fmt::Arguments<'_>) {
    StackText::new(args).push(l);
}

/// Raises `bad argument #arg to 'f' (<text>)` with formatted text.
pub(crate) unsafe fn arg_error_fmt(
    l: *mut lua_State,
    arg: c_int,
    args: std::fmt::Arguments<'_>,
) -> ! {
    push_fmt(l, args);
    luaL_argerror(l, arg, lua_tostring(l, -1));
    unreachable!("luaL_argerror returned")
}

/// The index of the host named or given at `arg` (a name, or a table from `world:host`).
pub(crate) unsafe fn check_host(l: *mut lua_State, arg: c_int) -> usize {
    match lua_type(l, arg) {
        LUA_TSTRING => {
            let name = check_str(l, arg);
            let w = live(l, check_world(l, 1));
            match w.hosts.iter().position(|e| e.name.as_bytes() == name) {
                Some(i) => i,
                None => arg_error_fmt(
                    l,
                    arg,
                    format_args!("no host \"{}\" in this world", name.escape_ascii()),
                ),
            }
        }
        LUA_TTABLE => {
            crate::lua::uservalue(l, 1);
            lua_rawgeti(l, -1, 2);
            lua_pushvalue(l, arg);
            lua_rawget(l, -2);
            let i = if lua_isinteger(l, -1) != 0 {
                lua_tointeger(l, -1) as i64
            } else {
                -1
            };
            lua_pop(l, 3);
            if i < 0 {
                arg_error(l, arg, c"not a host of this world");
            }
            i as usize
        }
        _ => type_error(l, arg, c"host name or host table", false),
    }
}

// ---- options tables ------------------------------------------------------------------------

/// Checks that the table at `t` (argument `arg`) has only string keys among `allowed`.
unsafe fn check_keys(l: *mut lua_State, t: c_int, arg: c_int, allowed: &[&str]) {
    lua_pushnil(l);
    while lua_next(l, t) != 0 {
        lua_pop(l, 1);
        if lua_type(l, -1) != LUA_TSTRING {
            arg_error(l, arg, c"option names must be strings");
        }
        let k = crate::lua::to_bytes(l, -1);
        if !allowed.iter().any(|a| a.as_bytes() == k) {
            arg_error_fmt(
                l,
                arg,
                format_args!("unknown option \"{}\"", k.escape_ascii()),
            );
        }
    }
}

/// Pushes `t[name]` (raw) and returns its type.
unsafe fn field(l: *mut lua_State, t: c_int, name: &CStr) -> c_int {
    lua_pushstring(l, name.as_ptr());
    lua_rawget(l, t)
}

/// Raises `bad argument #arg (field 'name': <expected> expected, got <type>)` for the value on top.
unsafe fn field_type_error(l: *mut lua_State, arg: c_int, name: &CStr, expected: &str) -> ! {
    let got = CStr::from_ptr(luaL_typename(l, -1)).to_bytes();
    arg_error_fmt(
        l,
        arg,
        format_args!(
            "field '{}': {expected} expected, got {}",
            name.to_string_lossy(),
            String::from_utf8_lossy(got)
        ),
    )
}

/// Optional integer field.
unsafe fn int_field(l: *mut lua_State, t: c_int, arg: c_int, name: &CStr) -> Option<i64> {
    field(l, t, name);
    let v = if is_none_or_nil(l, -1) {
        None
    } else if lua_isinteger(l, -1) != 0 {
        Some(lua_tointeger(l, -1) as i64)
    } else {
        field_type_error(l, arg, name, "integer")
    };
    lua_pop(l, 1);
    v
}

/// Optional non-negative integer field.
unsafe fn count_field(l: *mut lua_State, t: c_int, arg: c_int, name: &CStr) -> Option<usize> {
    let v = int_field(l, t, arg, name)?;
    if v < 0 {
        arg_error_fmt(
            l,
            arg,
            format_args!("field '{}': must not be negative", name.to_string_lossy()),
        );
    }
    Some(v as usize)
}

/// Optional boolean field.
unsafe fn bool_field(l: *mut lua_State, t: c_int, arg: c_int, name: &CStr) -> Option<bool> {
    let ty = field(l, t, name);
    let v = match ty {
        LUA_TNIL => None,
        LUA_TBOOLEAN => Some(lua_toboolean(l, -1) != 0),
        _ => field_type_error(l, arg, name, "boolean"),
    };
    lua_pop(l, 1);
    v
}

/// Optional probability field (a number in 0..=1).
unsafe fn prob_field(l: *mut lua_State, t: c_int, arg: c_int, name: &CStr) -> f64 {
    let ty = field(l, t, name);
    let v = match ty {
        LUA_TNIL => 0.0,
        LUA_TNUMBER => lua_tonumber(l, -1) as f64,
        _ => field_type_error(l, arg, name, "number"),
    };
    lua_pop(l, 1);
    if !(0.0..=1.0).contains(&v) {
        arg_error_fmt(
            l,
            arg,
            format_args!(
                "field '{}': a probability from 0 to 1 expected",
                name.to_string_lossy()
            ),
        );
    }
    v
}

/// Milliseconds (a finite number ≥ 0) as a duration, or `None` when out of range.
pub(crate) fn ms_duration(ms: f64) -> Option<Duration> {
    // (below 2^63 ns: about 292 years)
    if ms.is_finite() && (0.0..9.2e12).contains(&ms) {
        Some(Duration::from_nanos((ms * 1e6).round() as u64))
    } else {
        None
    }
}

/// A duration in milliseconds at `idx` (number), raising for other values.
unsafe fn check_ms(l: *mut lua_State, idx: c_int, arg: c_int, what: &str) -> Duration {
    if lua_type(l, idx) != LUA_TNUMBER {
        if what.is_empty() {
            type_error(l, arg, c"number", false);
        }
        field_type_error(l, arg, c"latency", "number or {min, max}");
    }
    match ms_duration(lua_tonumber(l, idx) as f64) {
        Some(d) => d,
        None => arg_error_fmt(
            l,
            arg,
            format_args!("{what}milliseconds from 0 to 9.2e12 expected"),
        ),
    }
}

/// The link options table at `arg` (or none): `{latency = ms | {min, max}, loss =,
/// duplicate =, reorder =}`.
unsafe fn check_link(l: *mut lua_State, arg: c_int) -> LinkConfig {
    let mut cfg = LinkConfig::default();
    if is_none_or_nil(l, arg) {
        return cfg;
    }
    if lua_type(l, arg) != LUA_TTABLE {
        type_error(l, arg, c"table", false);
    }
    let t = lua_absindex(l, arg);
    check_keys(l, t, arg, &["latency", "loss", "duplicate", "reorder"]);
    match field(l, t, c"latency") {
        LUA_TNIL => {}
        LUA_TTABLE => {
            let lt = lua_gettop(l);
            lua_rawgeti(l, lt, 1);
            lua_rawgeti(l, lt, 2);
            let lo = check_ms(l, -2, arg, "field 'latency': ");
            let hi = check_ms(l, -1, arg, "field 'latency': ");
            if lo > hi {
                arg_error(
                    l,
                    arg,
                    c"field 'latency': {min, max} with min <= max expected",
                );
            }
            cfg.latency = Latency::Uniform(lo, hi);
            lua_pop(l, 2);
        }
        _ => cfg.latency = Latency::Fixed(check_ms(l, -1, arg, "field 'latency': ")),
    }
    lua_pop(l, 1);
    cfg.loss = prob_field(l, t, arg, c"loss");
    cfg.duplicate = prob_field(l, t, arg, c"duplicate");
    cfg.reorder = prob_field(l, t, arg, c"reorder");
    cfg
}

/// The options of `new`/`install`, checked.
#[derive(Clone, Copy)]
struct WorldOpts {
    seed: i64,
    somaxconn: Option<i64>,
    fd_limit: Option<usize>,
    rcvbuf: Option<usize>,
    sndbuf: Option<usize>,
    trace: bool,
    payloads: bool,
    capture: bool,
    max_hosts: Option<usize>,
}

/// Checks the options table at `arg` (or none); `install` also allows `host`.
unsafe fn check_world_opts(l: *mut lua_State, arg: c_int, install: bool) -> WorldOpts {
    let mut o = WorldOpts {
        seed: 0,
        somaxconn: None,
        fd_limit: None,
        rcvbuf: None,
        sndbuf: None,
        trace: true,
        payloads: false,
        capture: false,
        max_hosts: None,
    };
    if is_none_or_nil(l, arg) {
        return o;
    }
    if lua_type(l, arg) != LUA_TTABLE {
        type_error(l, arg, c"table", false);
    }
    let t = lua_absindex(l, arg);
    const KEYS: [&str; 10] = [
        "seed",
        "somaxconn",
        "fd_limit",
        "rcvbuf",
        "sndbuf",
        "trace",
        "trace_payloads",
        "capture",
        "max_hosts",
        "host",
    ];
    check_keys(l, t, arg, &KEYS[..if install { 10 } else { 9 }]);
    o.seed = int_field(l, t, arg, c"seed").unwrap_or(0);
    o.somaxconn = int_field(l, t, arg, c"somaxconn");
    if o.somaxconn.is_some_and(|n| i32::try_from(n).is_err()) {
        arg_error(l, arg, c"field 'somaxconn': out of range");
    }
    o.fd_limit = count_field(l, t, arg, c"fd_limit");
    o.rcvbuf = count_field(l, t, arg, c"rcvbuf");
    o.sndbuf = count_field(l, t, arg, c"sndbuf");
    o.trace = bool_field(l, t, arg, c"trace").unwrap_or(true);
    o.payloads = bool_field(l, t, arg, c"trace_payloads").unwrap_or(false);
    o.capture = bool_field(l, t, arg, c"capture").unwrap_or(false);
    o.max_hosts = count_field(l, t, arg, c"max_hosts");
    if install {
        match field(l, t, c"host") {
            LUA_TNIL | LUA_TSTRING => {}
            _ => field_type_error(l, arg, c"host", "string"),
        }
        lua_pop(l, 1);
    }
    o
}

/// Pushes a new world with the checked options.
unsafe fn push_world(l: *mut lua_State, o: WorldOpts) -> *mut WorldUd {
    let p = lua_newuserdata(l, std::mem::size_of::<WorldUd>()) as *mut WorldUd;
    std::ptr::write(
        p,
        WorldUd {
            state: None,
            shared: None,
        },
    );
    lua_pushvalue(l, up_world());
    lua_setmetatable(l, -2);
    // user value: [1] host tables by name, [2] host indices by table, [3] the scheduler's
    // state (made by it), [4] the packet rules' functions by id (made by `world:rule`)
    crate::lua::new_uservalue(l, -1, 2);
    lua_createtable(l, 0, 4);
    lua_rawseti(l, -2, 1);
    lua_createtable(l, 0, 4);
    lua_rawseti(l, -2, 2);
    lua_pop(l, 1);
    // nothing below calls Lua
    let state = guard(l, || {
        let mut b = Sim::builder(o.seed as u64)
            .keep_trace(o.trace)
            .trace_payloads(o.payloads)
            .capture(o.capture);
        if let Some(n) = o.somaxconn {
            b = b.somaxconn(n as i32);
        }
        if let Some(n) = o.fd_limit {
            b = b.fd_limit(n);
        }
        if let Some(n) = o.rcvbuf {
            b = b.rcvbuf(n);
        }
        if let Some(n) = o.sndbuf {
            b = b.sndbuf(n);
        }
        if let Some(n) = o.max_hosts {
            b = b.max_hosts(n);
        }
        // (the seed as Lua gave it, what a replay passes back, is kept in the shared state)
        let shared: Rc<TaskShared> = Rc::default();
        shared.rules.seed.set(o.seed);
        Box::new(WorldState {
            sim: b.build(),
            hosts: Vec::new(),
            shared,
        })
    });
    (*p).shared = Some(state.shared.clone());
    (*p).state = Some(state);
    p
}

/// `sim.new([opts])`: a world. Options: `seed` (integer, default 0), `somaxconn`,
/// `fd_limit`, `rcvbuf`, `sndbuf` (bytes), `trace` (keep the events, default true),
/// `trace_payloads` (keep the bytes, default false), `capture` (keep every packet for
/// `world:pcap`, default false), `max_hosts` (default and at most the simulator's
/// `MAX_HOSTS`, 16 646 144).
unsafe extern "C-unwind" fn sim_new(l: *mut lua_State) -> c_int {
    let o = check_world_opts(l, 1, false);
    push_world(l, o);
    1
}

/// The longest host or group name, in bytes: a DNS name's (host names are what the
/// simulated resolver answers for). The simulator keeps copies of names in Rust memory,
/// which cannot fail cleanly: a bounded name keeps a failed allocation from aborting.
const MAX_NAME: usize = 255;

/// The host named by the string at `name_idx` of the world at index `w_idx`: its module
/// table (made on first use) is pushed.
unsafe fn push_host(l: *mut lua_State, w_idx: c_int, name_idx: c_int) {
    let wp = check_world(l, w_idx);
    let name_b = check_str(l, name_idx);
    let Ok(name) = std::str::from_utf8(name_b) else {
        arg_error(l, name_idx, c"host name must be UTF-8");
    };
    if name.len() > MAX_NAME {
        arg_error(l, name_idx, c"host name longer than 255 bytes");
    }
    live(l, wp);
    crate::lua::uservalue(l, w_idx);
    let uv = lua_gettop(l);
    lua_rawgeti(l, uv, 1);
    lua_pushvalue(l, name_idx);
    if lua_rawget(l, -2) == LUA_TTABLE {
        lua_replace(l, uv);
        lua_settop(l, uv);
        return;
    }
    lua_pop(l, 2);
    // The host's cell first, empty: making it may raise, and nothing is owned yet (a
    // backend made before it would be lost, never dropped, if it raised).
    let cell = crate::module::push_empty_cell(l);
    // make the host (no Lua call from here until the cell owns it)
    let (gate, idx): (Rc<dyn SocketOps>, usize) = {
        let w = live(l, wp);
        let made = guard(l, || {
            let host = w.sim.try_host(name)?;
            let gate = Rc::new(SimHost::new(host.clone(), w.shared.clone()));
            w.hosts.push(HostEntry {
                name: name.to_owned(),
                host,
                gate: gate.clone(),
                cell: std::ptr::null(),
            });
            Ok::<_, SimError>((gate as Rc<dyn SocketOps>, w.hosts.len() - 1))
        });
        match made {
            Ok(m) => m,
            Err(e) => {
                // (the message in a stack buffer, the error dropped: the push may raise)
                let msg = match e {
                    SimError::WorldFull { max } => StackText::new(format_args!(
                        "llsocket.sim: this world is full (at most {max} hosts)"
                    )),
                    other => StackText::new(format_args!("llsocket.sim: {other}")),
                };
                msg.push(l);
                lua_error(l)
            }
        }
    };
    (*cell).backend = Some(gate);
    crate::module::anchor_cell(l);
    crate::module::build(l);
    let t = lua_gettop(l);
    match (*wp).state.as_deref_mut() {
        Some(w) => {
            w.hosts[idx].cell = cell;
            // SAFETY: the cell was just made and anchored above (a registry reference
            // held until the state closes). Its `sim` is the same host as its
            // backend, for the task wrappers; the new reference is the cell's from here
            // (its `__gc` drops it with the backend).
            let _ = (*cell).sim.set(w.hosts[idx].gate.clone());
        }
        None => {
            // closed by a finalizer while the table was built
            (*cell).gone.set(true);
            raise_str(l, c"llsocket.sim: this world is gone (closed or collected)");
        }
    }
    let (v4, v6) = {
        let w = live(l, wp);
        (w.hosts[idx].host.ipv4(), w.hosts[idx].host.ipv6())
    };
    lua_pushvalue(l, name_idx);
    lua_setfield(l, t, c"name".as_ptr());
    push_fmt(l, format_args!("{v4}"));
    lua_setfield(l, t, c"ipv4".as_ptr());
    push_fmt(l, format_args!("{v6}"));
    lua_setfield(l, t, c"ipv6".as_ptr());
    lua_rawgeti(l, uv, 1);
    lua_pushvalue(l, name_idx);
    lua_pushvalue(l, t);
    lua_rawset(l, -3);
    lua_pop(l, 1);
    lua_rawgeti(l, uv, 2);
    lua_pushvalue(l, t);
    push_int(l, idx as i64);
    lua_rawset(l, -3);
    lua_pop(l, 1);
    lua_replace(l, uv);
    lua_settop(l, uv);
}

/// `world:host(name)`: the module table of the host `name` (UTF-8, at most 255 bytes; made
/// on first use, the same table afterwards), with `name`, `ipv4` and `ipv6` fields.
unsafe extern "C-unwind" fn w_host(l: *mut lua_State) -> c_int {
    push_host(l, 1, 2);
    1
}

/// `sim.install([opts])`: a world (the options of `new`, plus `host`, the host's name,
/// default `"main"`) whose host becomes `package.loaded.llsocket` and every
/// `llsocket.<sub>`; the world is anchored in the registry. Returns the world and the host.
unsafe extern "C-unwind" fn sim_install(l: *mut lua_State) -> c_int {
    let o = check_world_opts(l, 1, true);
    lua_settop(l, 1);
    if lua_type(l, 1) == LUA_TTABLE {
        field(l, 1, c"host");
    } else {
        lua_pushnil(l);
    }
    if lua_type(l, 2) != LUA_TSTRING {
        lua_pop(l, 1);
        lua_pushstring(l, c"main".as_ptr());
    }
    if std::str::from_utf8(crate::lua::to_bytes(l, 2)).is_err() {
        arg_error(l, 1, c"field 'host': host name must be UTF-8");
    }
    if crate::lua::to_bytes(l, 2).len() > MAX_NAME {
        arg_error(l, 1, c"field 'host': host name longer than 255 bytes");
    }
    push_world(l, o); // 3
    lua_pushvalue(l, 3);
    lua_setfield(l, LUA_REGISTRYINDEX, c"llsocket.sim.installed".as_ptr());
    push_host(l, 3, 2); // 4
    lua_getfield(l, LUA_REGISTRYINDEX, c"_LOADED".as_ptr()); // 5
    let loaded = lua_gettop(l);
    lua_getfield(l, loaded, c"package".as_ptr());
    let preload = if lua_type(l, -1) == LUA_TTABLE {
        lua_getfield(l, -1, c"preload".as_ptr());
        lua_remove(l, -2);
        (lua_type(l, -1) == LUA_TTABLE).then(|| lua_gettop(l))
    } else {
        None
    };
    if preload.is_none() {
        lua_pop(l, 1);
    }
    for sub in std::iter::once(None).chain(crate::SUBMODULES.iter().map(|s| Some(*s))) {
        push_bytes(l, b"llsocket");
        match sub {
            Some(s) => {
                push_bytes(l, b".");
                push_bytes(l, s.as_bytes());
                lua_concat(l, 3);
                lua_pushlstring(l, s.as_ptr().cast(), s.len());
                lua_rawget(l, 4);
            }
            None => lua_pushvalue(l, 4),
        }
        // key, value
        lua_pushvalue(l, -2);
        lua_pushvalue(l, -2);
        lua_settable(l, loaded);
        if let Some(p) = preload {
            lua_pushvalue(l, -2);
            lua_pushvalue(l, -2);
            lua_pushcclosure(l, return_upvalue, 1);
            lua_settable(l, p);
        }
        lua_pop(l, 2);
    }
    lua_settop(l, 4);
    lua_pushvalue(l, 3);
    lua_pushvalue(l, 4);
    2
}

/// A `package.preload` loader that returns its upvalue.
unsafe extern "C-unwind" fn return_upvalue(l: *mut lua_State) -> c_int {
    lua_pushvalue(l, lua_upvalueindex(1));
    1
}

/// `world:link(a, b [, opts])`: faults on both directions between two hosts (names or
/// host tables). Options: `latency` (milliseconds, or `{min, max}` drawn uniformly),
/// `loss`, `duplicate`, `reorder` (probabilities). Missing options are fault-free.
unsafe extern "C-unwind" fn w_link(l: *mut lua_State) -> c_int {
    link(l, true)
}

/// `world:link_oneway(a, b [, opts])`: faults on the direction `a -> b` only.
unsafe extern "C-unwind" fn w_link_oneway(l: *mut lua_State) -> c_int {
    link(l, false)
}

unsafe fn link(l: *mut lua_State, both: bool) -> c_int {
    let wp = check_world(l, 1);
    let a = check_host(l, 2);
    let b = check_host(l, 3);
    let cfg = check_link(l, 4);
    let w = live(l, wp);
    guard(l, || {
        let (ha, hb) = (&w.hosts[a].host, &w.hosts[b].host);
        if both {
            w.sim.set_link_both(ha, hb, cfg);
        } else {
            w.sim.set_link(ha, hb, cfg);
        }
    });
    0
}

/// `world:group(name, h...)`: adds hosts (names or host tables) to the group `name` (UTF-8,
/// at most 255 bytes), made on first use; a host may be in several groups.
unsafe extern "C-unwind" fn w_group(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let name = check_group_name(l, 2);
    let top = lua_gettop(l);
    // Every argument is checked (which may raise) before anything is allocated, and so is
    // the world: a host table passes its check even once its world is gone.
    for arg in 3..=top {
        check_host(l, arg);
    }
    live(l, wp);
    // (checked above: these calls no longer raise, and none runs a finalizer)
    let idx: Vec<usize> = (3..=top).map(|arg| check_host(l, arg)).collect();
    let w = live(l, wp);
    guard(l, move || {
        let hosts: Vec<llsocket_sim::Host> = idx.iter().map(|&i| w.hosts[i].host.clone()).collect();
        w.sim.group(name, &hosts);
    });
    0
}

/// A group name argument (UTF-8 text, at most [`MAX_NAME`] bytes).
unsafe fn check_group_name(l: *mut lua_State, arg: c_int) -> &'static str {
    match std::str::from_utf8(check_str(l, arg)) {
        Ok(s) if s.len() > MAX_NAME => arg_error(l, arg, c"group name longer than 255 bytes"),
        Ok(s) => s,
        Err(_) => arg_error(l, arg, c"group name must be UTF-8"),
    }
}

/// `world:link_groups(g1, g2 [, opts])`: the faults of every link between a host of group
/// `g1` and one of `g2`, both ways (a pair's own `link` wins; the group rule set last
/// among those covering a pair applies).
unsafe extern "C-unwind" fn w_link_groups(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let a = check_group_name(l, 2);
    let b = check_group_name(l, 3);
    let cfg = check_link(l, 4);
    let w = live(l, wp);
    guard(l, || w.sim.set_link_groups_both(a, b, cfg));
    0
}

/// `world:partition_groups(g1, g2)` / `world:heal_groups(g1, g2)`: cuts or restores
/// every link between the two groups, both ways.
unsafe extern "C-unwind" fn w_partition_groups(l: *mut lua_State) -> c_int {
    groups(l, true)
}

unsafe extern "C-unwind" fn w_heal_groups(l: *mut lua_State) -> c_int {
    groups(l, false)
}

unsafe fn groups(l: *mut lua_State, cut: bool) -> c_int {
    let wp = check_world(l, 1);
    let a = check_group_name(l, 2);
    let b = check_group_name(l, 3);
    let w = live(l, wp);
    guard(l, || {
        if cut {
            w.sim.partition_groups(a, b);
        } else {
            w.sim.heal_groups(a, b);
        }
    });
    0
}

/// The two-host operations.
#[derive(Clone, Copy)]
enum Pair {
    Partition,
    PartitionOneway,
    Heal,
}

unsafe fn pair(l: *mut lua_State, op: Pair) -> c_int {
    let wp = check_world(l, 1);
    let a = check_host(l, 2);
    let b = check_host(l, 3);
    let w = live(l, wp);
    guard(l, || {
        let (ha, hb) = (&w.hosts[a].host, &w.hosts[b].host);
        match op {
            Pair::Partition => w.sim.partition(ha, hb),
            Pair::PartitionOneway => w.sim.partition_oneway(ha, hb),
            Pair::Heal => w.sim.heal(ha, hb),
        }
    });
    0
}

/// `world:partition(a, b)`: every packet between the two hosts is lost until `heal`.
unsafe extern "C-unwind" fn w_partition(l: *mut lua_State) -> c_int {
    pair(l, Pair::Partition)
}

/// `world:partition_oneway(a, b)`: every packet from `a` to `b` is lost until `heal`.
unsafe extern "C-unwind" fn w_partition_oneway(l: *mut lua_State) -> c_int {
    pair(l, Pair::PartitionOneway)
}

/// `world:heal(a, b)`: restores both directions.
unsafe extern "C-unwind" fn w_heal(l: *mut lua_State) -> c_int {
    pair(l, Pair::Heal)
}

/// The one-host operations.
#[derive(Clone, Copy)]
enum One {
    Crash,
    Restart,
}

unsafe fn one(l: *mut lua_State, op: One) -> c_int {
    let wp = check_world(l, 1);
    let h = check_host(l, 2);
    let w = live(l, wp);
    guard(l, || match op {
        One::Crash => w.hosts[h].host.crash(),
        One::Restart => w.hosts[h].host.restart(),
    });
    0
}

/// `world:crash(h)`: every socket of the host vanishes without a packet; the host is
/// down until `restart`.
unsafe extern "C-unwind" fn w_crash(l: *mut lua_State) -> c_int {
    one(l, One::Crash)
}

/// `world:restart(h)`: brings a crashed host back, with empty tables.
unsafe extern "C-unwind" fn w_restart(l: *mut lua_State) -> c_int {
    one(l, One::Restart)
}

/// `world:faults(h [, opts])`: the host's fault switches, probabilities: `short_io`
/// (stream sends/receives move fewer bytes), `eintr` (blocking calls fail with `EINTR`),
/// `reset` (a TCP send resets its connection). Missing switches are off.
unsafe extern "C-unwind" fn w_faults(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let h = check_host(l, 2);
    let mut f = HostFaults::default();
    if !is_none_or_nil(l, 3) {
        if lua_type(l, 3) != LUA_TTABLE {
            type_error(l, 3, c"table", false);
        }
        check_keys(l, 3, 3, &["short_io", "eintr", "reset"]);
        f.short_io = prob_field(l, 3, 3, c"short_io");
        f.eintr = prob_field(l, 3, 3, c"eintr");
        f.reset = prob_field(l, 3, 3, c"reset");
    }
    let w = live(l, wp);
    guard(l, || w.hosts[h].host.set_faults(f));
    0
}

/// `world:now()`: the virtual clock, in milliseconds since the start (a number).
unsafe extern "C-unwind" fn w_now(l: *mut lua_State) -> c_int {
    let w = live(l, check_world(l, 1));
    let ns = guard(l, || w.sim.now().as_nanos() as f64);
    lua_pushnumber(l, (ns / 1e6) as lua_Number);
    1
}

/// `world:advance(ms)`: runs the world forward (every event due in that time runs).
unsafe extern "C-unwind" fn w_advance(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let d = check_ms(l, 2, 2, "");
    // (its own reference: a rule run on the way may drop the state, see `w_gc`)
    let sim = live(l, wp).sim.clone();
    guard(l, move || sim.advance(d));
    // (a rule that failed on the way is reported now)
    if let Some(sh) = shared_of(wp) {
        crate::sim_rules::raise_pending(l, sh);
    }
    0
}

/// `world:seed()`: the seed, as given.
unsafe extern "C-unwind" fn w_seed(l: *mut lua_State) -> c_int {
    let s = seed_of(l, check_world(l, 1));
    push_int(l, s);
    1
}

/// The seed of a live world, raising once it is gone. Never raises a rule's report (reports
/// read it under `pcall`) and works inside the world's rules: it reads the shared state,
/// not the world's.
unsafe fn seed_of(l: *mut lua_State, w: *mut WorldUd) -> i64 {
    match shared_of(w) {
        Some(sh) if (*w).state.is_some() => sh.rules.seed.get(),
        _ => raise_str(l, c"llsocket.sim: this world is gone (closed or collected)"),
    }
}

/// `world:trace()`: the kept trace, one string per event
/// (`<virtual seconds> <host> <operation> <arguments> -> <result>`).
unsafe extern "C-unwind" fn w_trace(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    live(l, wp);
    let h = new_holder_with(l, up_holder());
    let lines: &'static mut Vec<String> = {
        let w = live(l, wp);
        guard(l, || h.put(w.sim.trace()))
    };
    lua_createtable(l, lines.len().min(1 << 24) as c_int, 0);
    for (i, line) in lines.iter().enumerate() {
        push_bytes(l, line.as_bytes());
        lua_rawseti(l, -2, i as lua_Integer + 1);
    }
    h.clear();
    1
}

/// `world:digest()`: the trace digest as 16 hex digits (same seed, program and
/// configuration: same digest, on every architecture).
unsafe extern "C-unwind" fn w_digest(l: *mut lua_State) -> c_int {
    let w = live(l, check_world(l, 1));
    let d = guard(l, || w.sim.trace_digest());
    push_fmt(l, format_args!("{d:016x}"));
    1
}

/// `world:pcap(path)`: writes the packets captured so far (the world was made with
/// `capture = true`) to the file `path` as a pcap file for `tcpdump -r` or Wireshark.
/// Returns `true`, or `nil` and a message when the file cannot be written.
unsafe extern "C-unwind" fn w_pcap(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let path = check_str(l, 2);
    let w = live(l, wp);
    let res = guard(l, || {
        use std::os::unix::ffi::OsStrExt;
        // (as the system would refuse it, before the standard library copies it: that
        // copy's allocation cannot fail cleanly)
        if path.len() >= libc::PATH_MAX as usize {
            return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        w.sim.write_pcap(&mut out)?;
        std::io::Write::flush(&mut out)
    });
    match res {
        Ok(()) => {
            push_bool(l, true);
            1
        }
        Err(e) => {
            // (the error may own memory: made text before the pushes, which may raise)
            let text = StackText::new(format_args!("llsocket.sim: pcap: {e}"));
            drop(e);
            lua_pushnil(l);
            text.push(l);
            2
        }
    }
}

/// `world:captured()`: the number of packets captured so far.
unsafe extern "C-unwind" fn w_captured(l: *mut lua_State) -> c_int {
    let w = live(l, check_world(l, 1));
    let n = guard(l, || w.sim.captured());
    push_int(l, n as i64);
    1
}

/// `world:replay_hint()`: how to replay this run.
unsafe extern "C-unwind" fn w_replay_hint(l: *mut lua_State) -> c_int {
    let s = seed_of(l, check_world(l, 1));
    push_fmt(l, format_args!("{}", Hint(s)));
    1
}

/// How to replay the run of a seed (`world:replay_hint()`).
pub(crate) struct Hint(pub i64);

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        write!(
            f,
            "llsocket.sim: seed={s}; replay with the same seed: sim.new{{seed = {s}}}, \
             sim.install{{seed = {s}}} or llsocket-lua --sim --seed {s}"
        )
    }
}

/// `world:live_sockets()`: sockets that still exist anywhere in the world (for leak checks).
unsafe extern "C-unwind" fn w_live_sockets(l: *mut lua_State) -> c_int {
    let w = live(l, check_world(l, 1));
    let n = guard(l, || w.sim.live_sockets());
    push_int(l, n as i64);
    1
}

/// `world:open_fds(h)`: the descriptors open on a host, ascending.
unsafe extern "C-unwind" fn w_open_fds(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let h = check_host(l, 2);
    let holder = new_holder_with(l, up_holder());
    let fds: &'static mut Vec<Fd> = {
        let w = live(l, wp);
        guard(l, || holder.put(w.hosts[h].host.open_fds()))
    };
    lua_createtable(l, fds.len().min(1 << 24) as c_int, 0);
    for (i, fd) in fds.iter().enumerate() {
        push_int(l, i64::from(fd.0));
        lua_rawseti(l, -2, i as lua_Integer + 1);
    }
    holder.clear();
    1
}

/// `world:sockets(h)`: the sockets of a host, like `ss -a`: an array of tables with
/// `fds` (array of descriptor numbers), `netid` (`tcp`, `udp`, `u_str`, `u_dgr`,
/// `u_seq`), `family` and `type` (the `AF_*`/`SOCK_*` numbers), `state` (`LISTEN`,
/// `ESTAB`, `SYN-SENT`, ..., `UNCONN`), `laddr` and `paddr` (text, or nil), `recv_q`,
/// `send_q` (bytes), `backlog` and `max_backlog` (listeners only), and `options` (a table
/// of the options that differ from a new socket's: C name -> value as text).
unsafe extern "C-unwind" fn w_sockets(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let h = check_host(l, 2);
    let holder = new_holder_with(l, up_holder());
    let socks: &'static mut Vec<llsocket_sim::SocketInfo> = {
        let w = live(l, wp);
        guard(l, || holder.put(w.hosts[h].host.sockets()))
    };
    lua_createtable(l, socks.len().min(1 << 24) as c_int, 0);
    for (i, s) in socks.iter().enumerate() {
        lua_createtable(l, 0, 12);
        lua_createtable(l, s.fds.len().min(1 << 24) as c_int, 0);
        for (j, fd) in s.fds.iter().enumerate() {
            push_int(l, i64::from(fd.0));
            lua_rawseti(l, -2, j as lua_Integer + 1);
        }
        lua_setfield(l, -2, c"fds".as_ptr());
        push_bytes(l, s.netid().as_bytes());
        lua_setfield(l, -2, c"netid".as_ptr());
        push_int(l, i64::from(s.family.raw()));
        lua_setfield(l, -2, c"family".as_ptr());
        push_int(l, i64::from(s.ty.raw()));
        lua_setfield(l, -2, c"type".as_ptr());
        push_bytes(l, s.state.as_bytes());
        lua_setfield(l, -2, c"state".as_ptr());
        for (addr, key) in [(&s.local, c"laddr"), (&s.peer, c"paddr")] {
            if let Some(a) = addr {
                push_fmt(l, format_args!("{a}"));
                lua_setfield(l, -2, key.as_ptr());
            }
        }
        push_int(l, s.recv_q as i64);
        lua_setfield(l, -2, c"recv_q".as_ptr());
        push_int(l, s.send_q as i64);
        lua_setfield(l, -2, c"send_q".as_ptr());
        if let Some((n, max)) = s.backlog {
            push_int(l, n as i64);
            lua_setfield(l, -2, c"backlog".as_ptr());
            push_int(l, max as i64);
            lua_setfield(l, -2, c"max_backlog".as_ptr());
        }
        lua_createtable(l, 0, s.options.len().min(64) as c_int);
        for (k, v) in &s.options {
            push_bytes(l, k.as_bytes());
            push_bytes(l, v.as_bytes());
            lua_rawset(l, -3);
        }
        lua_setfield(l, -2, c"options".as_ptr());
        lua_rawseti(l, -2, i as lua_Integer + 1);
    }
    holder.clear();
    1
}

/// `world:socket_table([h])`: the sockets of one host, or of every host, as text with
/// aligned columns (for a failing test's message).
unsafe extern "C-unwind" fn w_socket_table(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let h = if lua_isnoneornil(l, 2) != 0 {
        None
    } else {
        Some(check_host(l, 2))
    };
    let holder = new_holder_with(l, up_holder());
    let text: &'static mut String = {
        let w = live(l, wp);
        guard(l, || {
            holder.put(match h {
                Some(h) => w.hosts[h].host.socket_table(),
                None => w.sim.socket_table(),
            })
        })
    };
    push_bytes(l, text.as_bytes());
    holder.clear();
    1
}

/// `world:closed()`: whether the world is gone.
unsafe extern "C-unwind" fn w_closed(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    push_bool(l, (*wp).state.is_none());
    1
}

/// `world:close()`: drops the world now (idempotent); its hosts' module tables raise from
/// then on. Raises inside one of the world's packet rules (the call running the rule holds
/// the world); after the world is dropped, raises the report of a rule that failed and was
/// not reported yet.
unsafe extern "C-unwind" fn w_close(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let Some(sh) = shared_of(wp) else { return 0 };
    if sh.rules.busy() {
        crate::sim_rules::raise_busy(l);
    }
    if (*wp).state.is_some() {
        crate::sim_rules::release(l, 1, sh);
    }
    let taken = (*wp).state.take();
    guard(l, move || drop(taken));
    crate::sim_rules::raise_pending(l, sh);
    0
}

/// `__gc`: drops the world (any other value, as when called by hand, is ignored).
unsafe extern "C-unwind" fn w_gc(l: *mut lua_State) -> c_int {
    let p = lua_touserdata(l, 1) as *mut WorldUd;
    if p.is_null() || lua_getmetatable(l, 1) == 0 {
        return 0;
    }
    let same = lua_rawequal(l, -1, up_world()) != 0;
    lua_pop(l, 1);
    if same {
        if let Some(sh) = shared_of(p) {
            // A rule of this world may be running (the collector cannot run this then, but
            // a program can call it by hand): every call that can run the world's rules
            // holds a reference to the world of its own — a socket call its host's, the
            // world's `advance` and the scheduler's step a clone of the `Sim` — so the
            // world outlives the call, and the rule releases its thread itself.
            crate::sim_rules::release(l, 0, sh);
        }
        let taken = ((*p).state.take(), (*p).shared.take());
        let _ = catch_unwind(AssertUnwindSafe(move || drop(taken)));
    }
    0
}

/// `__tostring`: `llsocket.sim.world: seed=<seed>` (or `closed`).
unsafe extern "C-unwind" fn w_tostring(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    // (the seed from the shared state: this may run inside one of the world's rules)
    match shared_of(wp) {
        Some(sh) if (*wp).state.is_some() => push_fmt(
            l,
            format_args!("llsocket.sim.world: seed={}", sh.rules.seed.get()),
        ),
        _ => push_fmt(l, format_args!("llsocket.sim.world: closed")),
    }
    1
}

// ---- tasks ----------------------------------------------------------------------------

/// Registry key of the scheduler (the table `sched.lua` returns), one per state.
const SCHED: &CStr = c"llsocket.sim.sched";

/// Pushes the scheduler's function `name`.
unsafe fn push_sched(l: *mut lua_State, name: &CStr) {
    lua_getfield(l, LUA_REGISTRYINDEX, SCHED.as_ptr());
    if lua_type(l, -1) != LUA_TTABLE {
        raise_str(l, c"llsocket.sim: the scheduler is missing");
    }
    lua_getfield(l, -1, name.as_ptr());
    lua_remove(l, -2);
}

/// `world:spawn(host, name, fn, ...)`: a task — `fn(...)` run as a coroutine on `host`
/// (a name or host table) by `world:run`. `name` (a string, or nil for `task-<n>`) names it
/// in reports. Returns the task, a read-only table: `name`, `host`, `status` (`ready`,
/// `running`, `waiting`, `done`, `failed`), `waits` (what a waiting task waits in),
/// `results` (a table with `n`, once done), `error` (once failed).
unsafe extern "C-unwind" fn w_spawn(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let h = check_host(l, 2);
    match lua_type(l, 3) {
        LUA_TNIL | LUA_TNONE | LUA_TSTRING => {}
        _ => type_error(l, 3, c"string", false),
    }
    if lua_type(l, 4) != LUA_TFUNCTION {
        type_error(l, 4, c"function", false);
    }
    let top = lua_gettop(l);
    luaL_checkstack(l, top + 4, c"llsocket.sim: stack".as_ptr());
    push_sched(l, c"spawn");
    lua_pushvalue(l, 1);
    push_int(l, h as i64);
    {
        let w = live(l, wp);
        let name = w.hosts[h].name.as_bytes();
        // (a copy on the stack: the world may go during the next Lua call)
        lua_pushlstring(l, name.as_ptr().cast(), name.len());
    }
    if lua_type(l, 3) == LUA_TSTRING {
        lua_pushvalue(l, 3);
    } else {
        lua_pushnil(l);
    }
    for i in 4..=top {
        lua_pushvalue(l, i);
    }
    lua_call(l, top + 1, 1);
    1
}

/// Key of the scheduler's state table (see `push_sched_state`) that is true while a run is
/// under way: set and cleared here, read by `sched.lua`.
const RUNNING: lua_Integer = 1;

/// Pushes the scheduler's state table of the world at `w` (its user value's slot 3, made
/// on first use).
unsafe fn push_sched_state(l: *mut lua_State, w: c_int) {
    let w = lua_absindex(l, w);
    crate::lua::uservalue(l, w);
    if lua_rawgeti(l, -1, 3) != LUA_TTABLE {
        lua_pop(l, 1);
        lua_createtable(l, 0, 8);
        lua_pushvalue(l, -1);
        lua_rawseti(l, -3, 3);
    }
    lua_remove(l, -2);
}

/// `world:run([opts])`: runs the world's tasks until every one has returned (`true`), the
/// virtual clock reaches `opts.deadline` (milliseconds, as `world:now()`; returns
/// `false, 'deadline'` and the tasks stay suspended for a later run), or a task fails or
/// every task waits with nothing pending (both raise a report with the seed).
///
/// The scheduler (`sched.lua`) runs protected, in task mode; whatever ends it (a report,
/// a task's error, an error raised in the scheduler itself by a finalizer or the memory
/// error), the run is over afterwards: task mode off, no retry armed, not running.
unsafe extern "C-unwind" fn w_run(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let mut limit: Option<i64> = None;
    if !is_none_or_nil(l, 2) {
        if lua_type(l, 2) != LUA_TTABLE {
            type_error(l, 2, c"table", false);
        }
        check_keys(l, 2, 2, &["deadline"]);
        match field(l, 2, c"deadline") {
            LUA_TNIL => {}
            LUA_TNUMBER => match ms_duration(lua_tonumber(l, -1) as f64) {
                Some(d) => limit = Some(d.as_nanos().min(i64::MAX as u128) as i64),
                None => arg_error(
                    l,
                    2,
                    c"field 'deadline': milliseconds from 0 to 9.2e12 expected",
                ),
            },
            _ => field_type_error(l, 2, c"deadline", "number"),
        }
        lua_pop(l, 1);
    }
    live(l, wp);
    #[cfg(feature = "luajit")]
    if !crate::task::tasks_can_run_here(l) {
        raise_str(
            l,
            c"llsocket.sim: world:run cannot run tasks inside a finalizer or a debug hook on \
              LuaJIT (a task that waits there would break LuaJIT's stack: its lua_yield takes \
              the path of a yield from a hook)",
        );
    }
    lua_settop(l, 1);
    push_sched_state(l, 1); // 2
    lua_rawgeti(l, 2, RUNNING);
    let running = lua_toboolean(l, -1) != 0;
    lua_pop(l, 1);
    if running {
        raise_str(l, c"llsocket.sim: this world is already running its tasks");
    }
    push_sched(l, c"run");
    lua_pushvalue(l, 1);
    match limit {
        Some(ns) => push_int(l, ns),
        None => lua_pushnil(l),
    }
    // (the key first: setting it again below allocates nothing, so cannot raise)
    lua_pushboolean(l, 0);
    lua_rawseti(l, 2, RUNNING);
    {
        let w = live(l, wp);
        guard(l, || {
            w.sim.set_task_mode(true);
            w.shared.retrying.set(false);
        });
    }
    lua_pushboolean(l, 1);
    lua_rawseti(l, 2, RUNNING);
    let status = lua_pcall(l, 2, LUA_MULTRET, 0);
    // the run is over, however it ended (the world may be gone by now)
    lua_pushboolean(l, 0);
    lua_rawseti(l, 2, RUNNING);
    if let Some(w) = (*wp).state.as_deref() {
        guard(l, || {
            w.sim.set_task_mode(false);
            w.shared.retrying.set(false);
        });
    }
    if status != LUA_OK {
        lua_error(l);
    }
    // (a packet rule that failed in the run's last step is reported by the run itself)
    if let Some(sh) = shared_of(wp) {
        crate::sim_rules::raise_pending(l, sh);
    }
    lua_gettop(l) - 2
}

/// `world:tasks()`: the world's tasks, in spawn order.
unsafe extern "C-unwind" fn w_tasks(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    live(l, wp);
    lua_settop(l, 1);
    push_sched(l, c"tasks");
    lua_pushvalue(l, 1);
    lua_call(l, 1, 1);
    1
}

/// `sim.installed()`: the world `install` (or `llsocket-lua --sim`) made, or nil.
unsafe extern "C-unwind" fn sim_installed(l: *mut lua_State) -> c_int {
    lua_getfield(l, LUA_REGISTRYINDEX, c"llsocket.sim.installed".as_ptr());
    1
}

/// The scheduler's private helpers (`sched.lua`'s `H`). Arms the continuation of a parked call (deadline in ns, or false).
unsafe extern "C-unwind" fn h_retry_begin(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let d = (lua_type(l, 2) == LUA_TNUMBER).then(|| lua_tointeger(l, 2).max(0) as u64);
    let w = live(l, wp);
    guard(l, || {
        w.sim.resume_wait(d.map(Duration::from_nanos));
        w.shared.retrying.set(true);
    });
    0
}

/// Disarms it (a world gone meanwhile is fine).
unsafe extern "C-unwind" fn h_retry_end(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    if let Some(w) = (*wp).state.as_deref() {
        guard(l, || {
            w.sim.end_resume();
            w.shared.retrying.set(false);
        });
    }
    0
}

/// The change counter of a host (by index).
unsafe extern "C-unwind" fn h_changes(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let h = lua_tointeger(l, 2).max(0) as usize;
    let w = live(l, wp);
    let n = guard(l, || w.sim.changes(h));
    push_int(l, n.min(i64::MAX as u64) as i64);
    1
}

/// Whether a receive or accept parked on a descriptor of a host (by index) may complete
/// now (see `Sim::may_read`).
unsafe extern "C-unwind" fn h_may_read(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let h = lua_tointeger(l, 2).max(0) as usize;
    let fd = (lua_tointeger(l, 3) as i64).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    let w = live(l, wp);
    let may = guard(l, || w.sim.may_read(h, Fd(fd)));
    lua_pushboolean(l, c_int::from(may));
    1
}

/// The virtual clock in nanoseconds.
unsafe extern "C-unwind" fn h_now(l: *mut lua_State) -> c_int {
    let w = live_quiet(l, check_world(l, 1));
    let ns = guard(l, || w.sim.now().as_nanos().min(i64::MAX as u128) as i64);
    push_int(l, ns);
    1
}

/// One step of the world (limit in ns, or nil): `event`, `advanced` or `idle`.
unsafe extern "C-unwind" fn h_step(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let lim = (lua_type(l, 2) == LUA_TNUMBER).then(|| lua_tointeger(l, 2).max(0) as u64);
    // (its own reference: a rule run on the way may drop the state, see `w_gc`)
    let sim = live(l, wp).sim.clone();
    let r = guard(l, move || sim.task_step(lim.map(Duration::from_nanos)));
    // (a rule that failed on the way is reported now: the run raises it)
    if let Some(sh) = shared_of(wp) {
        crate::sim_rules::raise_pending(l, sh);
    }
    lua_pushstring(
        l,
        match r {
            TaskStep::Event => c"event",
            TaskStep::Advanced => c"advanced",
            TaskStep::Idle => c"idle",
        }
        .as_ptr(),
    );
    1
}

/// The count of calls that completed and could go on.
unsafe extern "C-unwind" fn h_progress(l: *mut lua_State) -> c_int {
    let w = live(l, check_world(l, 1));
    let n = guard(l, || w.sim.progress());
    push_int(l, n.min(i64::MAX as u64) as i64);
    1
}

/// Another task's turn: a new count of calls that could not go on, and no retry armed
/// (one an error cut short before `retry_end` must not reach the task's calls).
unsafe extern "C-unwind" fn h_turn(l: *mut lua_State) -> c_int {
    let w = live(l, check_world(l, 1));
    guard(l, || {
        w.sim.reset_streak();
        w.sim.end_resume();
        w.shared.retrying.set(false);
    });
    0
}

/// The scheduler's state table of a world (its user value's slot 3).
unsafe extern "C-unwind" fn h_state(l: *mut lua_State) -> c_int {
    check_world(l, 1);
    push_sched_state(l, 1);
    1
}

/// The world's identity for its tasks (see `SimHost::world_key`).
unsafe extern "C-unwind" fn h_key(l: *mut lua_State) -> c_int {
    let w = live(l, check_world(l, 1));
    lua_pushlightuserdata(l, Rc::as_ptr(&w.shared) as *mut c_void);
    1
}

const HELPERS: Funcs = &[
    (c"retry_begin", h_retry_begin),
    (c"retry_end", h_retry_end),
    (c"changes", h_changes),
    (c"may_read", h_may_read),
    (c"now", h_now),
    (c"step", h_step),
    (c"turn", h_turn),
    (c"progress", h_progress),
    (c"state", h_state),
    (c"key", h_key),
];

/// The scheduler (Lua, run in the state).
const SCHED_LUA: &str = include_str!("sched.lua");

/// Pushes the state's scheduler table (loaded on first use, with the registry's table of
/// task coroutines and the helpers, closures over the metatables at `wmt`, `wmt + 1`).
unsafe fn push_scheduler(l: *mut lua_State, wmt: c_int) {
    lua_getfield(l, LUA_REGISTRYINDEX, SCHED.as_ptr());
    if lua_type(l, -1) == LUA_TTABLE {
        return;
    }
    lua_pop(l, 1);
    if luaL_loadbuffer(
        l,
        SCHED_LUA.as_ptr().cast(),
        SCHED_LUA.len(),
        c"=llsocket.sim.sched".as_ptr(),
    ) != 0
    {
        lua_error(l);
    }
    crate::task::push_token(l);
    // the coroutines that may wait: weak keys
    lua_getfield(l, LUA_REGISTRYINDEX, crate::task::THREADS.as_ptr());
    if lua_type(l, -1) != LUA_TTABLE {
        lua_pop(l, 1);
        lua_createtable(l, 0, 0);
        lua_createtable(l, 0, 1);
        lua_pushstring(l, c"k".as_ptr());
        lua_setfield(l, -2, c"__mode".as_ptr());
        lua_setmetatable(l, -2);
        lua_pushvalue(l, -1);
        lua_setfield(l, LUA_REGISTRYINDEX, crate::task::THREADS.as_ptr());
    }
    lua_createtable(l, 0, HELPERS.len() as c_int);
    let h = lua_gettop(l);
    set_funcs2(l, h, wmt, HELPERS);
    lua_call(l, 3, 1);
    lua_pushvalue(l, -1);
    lua_setfield(l, LUA_REGISTRYINDEX, SCHED.as_ptr());
}

type Funcs = &'static [(&'static CStr, lua_CFunction)];

const METHODS: Funcs = &[
    (c"host", w_host),
    (c"link", w_link),
    (c"link_oneway", w_link_oneway),
    (c"partition", w_partition),
    (c"partition_oneway", w_partition_oneway),
    (c"heal", w_heal),
    (c"group", w_group),
    (c"link_groups", w_link_groups),
    (c"partition_groups", w_partition_groups),
    (c"heal_groups", w_heal_groups),
    (c"crash", w_crash),
    (c"restart", w_restart),
    (c"faults", w_faults),
    (c"now", w_now),
    (c"advance", w_advance),
    (c"seed", w_seed),
    (c"trace", w_trace),
    (c"digest", w_digest),
    (c"pcap", w_pcap),
    (c"captured", w_captured),
    (c"replay_hint", w_replay_hint),
    (c"live_sockets", w_live_sockets),
    (c"open_fds", w_open_fds),
    (c"sockets", w_sockets),
    (c"socket_table", w_socket_table),
    (c"closed", w_closed),
    (c"close", w_close),
    (c"spawn", w_spawn),
    (c"run", w_run),
    (c"tasks", w_tasks),
    (c"rule", crate::sim_rules::w_rule),
    (c"remove_rule", crate::sim_rules::w_remove_rule),
];

const FUNCS: Funcs = &[
    (c"new", sim_new),
    (c"install", sim_install),
    (c"installed", sim_installed),
];

/// `sim.check_determinism(opts, fn)`: runs `fn(world)` on two worlds made by
/// `sim.new(opts)` (same seed) and compares their traces event by event. Returns `fn`'s
/// first result and the digest when they match; `nil` and a report naming the first
/// divergent event of each run, with the five events before it, when they do not. An
/// error raised by `fn` in the first run is raised again after the comparison.
const CHECK_DETERMINISM: &str = r#"
local new = ...
local max, concat, tostring, pcall, error, type = math.max, table.concat, tostring, pcall, error, type
return function(opts, fn)
    if type(opts) ~= 'table' then
        error("bad argument #1 to 'check_determinism' (table expected, got " .. type(opts) .. ")", 0)
    end
    if type(fn) ~= 'function' then
        error("bad argument #2 to 'check_determinism' (function expected, got " .. type(fn) .. ")", 0)
    end
    local function run()
        local w = new(opts)
        local ok, res = pcall(fn, w)
        local trace, digest = w:trace(), w:digest()
        w:close()
        return ok, res, trace, digest
    end
    local ok1, r1, t1, d1 = run()
    local _, _, t2 = run()
    for i = 1, max(#t1, #t2) do
        if t1[i] ~= t2[i] then
            local lines = { 'llsocket.sim: two runs of seed ' .. tostring(opts.seed)
                .. ' diverge at event #' .. i .. ' (events before it:)' }
            for k = max(1, i - 5), i - 1 do lines[#lines + 1] = '    ' .. t1[k] end
            lines[#lines + 1] = '  run 1: ' .. tostring(t1[i] or '(none: the run ended)')
            lines[#lines + 1] = '  run 2: ' .. tostring(t2[i] or '(none: the run ended)')
            return nil, concat(lines, '\n')
        end
    end
    if not ok1 then error(r1, 0) end
    return r1, d1
end
"#;

/// Sets `funcs` into the table at absolute `t`, each with the two upvalues at `ups`, `ups + 1`.
unsafe fn set_funcs2(l: *mut lua_State, t: c_int, ups: c_int, funcs: Funcs) {
    for (name, f) in funcs {
        lua_pushvalue(l, ups);
        lua_pushvalue(l, ups + 1);
        lua_pushcclosure(l, *f, 2);
        lua_setfield(l, t, name.as_ptr());
    }
}

/// Pushes the `llsocket.sim` module table. The world and holder metatables (and the
/// methods) exist once per Lua state, like the other types (see `types`).
pub(crate) unsafe fn open(l: *mut lua_State) -> c_int {
    luaL_checkstack(l, 20, c"llsocket.sim: stack".as_ptr());
    let fresh_world = crate::types::get_or_make(l, WORLD_MT);
    let wmt = lua_gettop(l);
    let fresh_holder = crate::types::get_or_make(l, HOLDER_MT);
    let hmt = lua_gettop(l);
    if fresh_holder {
        lua_pushvalue(l, hmt);
        lua_pushcclosure(l, holder_gc, 1);
        lua_setfield(l, hmt, c"__gc".as_ptr());
        lua_pushboolean(l, 0);
        lua_setfield(l, hmt, c"__metatable".as_ptr());
    }
    if fresh_world {
        lua_createtable(l, 0, METHODS.len() as c_int);
        let idx = lua_gettop(l);
        set_funcs2(l, idx, wmt, METHODS);
        lua_setfield(l, wmt, c"__index".as_ptr());
        set_funcs2(l, wmt, wmt, &[(c"__gc", w_gc), (c"__tostring", w_tostring)]);
        lua_pushstring(l, WORLD_MT.as_ptr());
        lua_setfield(l, wmt, c"__name".as_ptr());
        lua_pushstring(l, WORLD_MT.as_ptr());
        lua_setfield(l, wmt, c"__metatable".as_ptr());
    }
    lua_createtable(l, 0, FUNCS.len() as c_int + 2);
    let m = lua_gettop(l);
    set_funcs2(l, m, wmt, FUNCS);
    // sim.pcall, from the scheduler
    push_scheduler(l, wmt);
    lua_getfield(l, -1, c"pcall".as_ptr());
    lua_setfield(l, m, c"pcall".as_ptr());
    lua_pop(l, 1);
    // sim.check_determinism, in Lua over sim.new (no raw state of its own)
    if luaL_loadbuffer(
        l,
        CHECK_DETERMINISM.as_ptr().cast(),
        CHECK_DETERMINISM.len(),
        c"=llsocket.sim".as_ptr(),
    ) != 0
    {
        lua_error(l);
    }
    lua_getfield(l, m, c"new".as_ptr());
    lua_call(l, 1, 1);
    lua_setfield(l, m, c"check_determinism".as_ptr());
    lua_replace(l, wmt);
    lua_settop(l, wmt);
    1
}
