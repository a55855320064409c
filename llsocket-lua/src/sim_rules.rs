//! `world:rule([a, b,] fn)` and `world:remove_rule(id)`: packet rules written in Lua, over
//! [`llsocket_sim::Sim::add_rule`] / [`llsocket_sim::Sim::add_link_rule`].
//!
//! # What a rule sees and returns
//!
//! `fn(packet, rng)` is called for every packet between two hosts (or, with `a, b`, for
//! every packet from `a` to `b`: one way), after the link's own faults and after the rules
//! installed before it (`llsocket_sim`'s `rules` module: how verdicts stack). `packet` is a
//! new table for each call, a copy (changing it changes nothing): `time` (virtual
//! milliseconds, as `world:now()`), `src_host`, `dst_host` (names), `src`, `dst`
//! (`"10.0.0.1:46013"`, `"[fd00::2]:53"`, as `world:sockets` shows addresses), `src_ip`,
//! `dst_ip` (text), `src_port`, `dst_port`, `proto` (`"tcp"` or `"udp"`), `flags` (the TCP
//! flags set, as letters in the order `FSRPAU`: `"S"`, `"SA"`, `"PA"`, `"FA"`, `"R"`,
//! `"PAU"`; `""` for UDP), `len`, `payload` (a string) and `attempt` (0, or n for the nth
//! retransmission of a TCP segment). `rng` draws from the world's seeded generator:
//! `rng:chance(p)` (a boolean), `rng:range(lo, hi)` (an integer, both included),
//! `rng:duration(lo_ms, hi_ms)` (milliseconds, nanosecond resolution); it works only
//! during the call that received it (kept and called later it raises).
//!
//! The rule returns its verdict: `nil` or `"pass"`, `"drop"`, `"delay", ms` or
//! `{delay = ms}`, `"duplicate"`, `"hold"` (held back until the next packet of the link
//! has been delivered). Anything else is a failure.
//!
//! # Failures and the calls a rule may make
//!
//! A rule that raises an error, yields, returns a bad verdict, or nests too deep (a rule
//! that calls into another world whose rules call into another world ..., [`MAX_DEPTH`])
//! fails: the packet passes as if the rule had said `"pass"`, the rule is removed, and the
//! failure report (`llsocket.sim: packet rule 2 (t.lua:12) failed and is removed (virtual
//! time 0.150000000 s, seed 42):`, the error with the rule's traceback, the packet, the
//! replay hint) is raised by the next call into the world: `world:advance` and `world:run`
//! raise it before they return (a run that was going on stops with it), and every other
//! call — a world method but `seed`, `replay_hint`, `closed` and `tostring`, a function of
//! one of its hosts' module tables, a method of one of their sockets — raises it before it
//! does anything (in a task, that fails the task). `world:close()` raises it after the
//! world is dropped. Reports of several failures are raised together. (Before Lua 5.4,
//! and on LuaJIT, an error raised by a finalizer that the collector runs during the rule's
//! call propagates out of the allocation that ran it: inside the rule's protected call it
//! counts as the rule's error.)
//!
//! A rule runs inside the simulator, while the world is busy with the call that sent the
//! packet. Inside it, the world's own methods (but `remove_rule`, and the harmless
//! `seed`, `replay_hint`, `closed`, `tostring`), its hosts' functions and their sockets'
//! methods raise `llsocket.sim: a packet rule cannot call into its own world ...` (inside
//! the rule: a rule that does not catch it fails). `world:remove_rule(id)` works inside a
//! rule (also on the running rule itself): the rule is not called again, and the
//! simulator forgets it at the next call into the world. Other worlds may be used.
//!
//! # How a rule is run (the safety design)
//!
//! * **Its own thread.** Each world with rules has one Lua thread (`lua_newthread`; Lua
//!   5.1 and LuaJIT have no `LUA_RIDX_MAINTHREAD`, and the calling coroutine is not known
//!   inside the simulator), anchored in a registry table (light-userdata keys, the world's
//!   [`TaskShared`] address) from creation until the world is closed or collected. Its
//!   stack is empty between calls, so the anchor keeps no Lua object of the world alive:
//!   the rule functions live in the world's user value (slot 4), reachable from the
//!   registry only through a weak-valued table, so a world with rules is collected as any
//!   other (no cycle through the registry). An empty, idle thread cannot be resumed by a
//!   program that got it from `coroutine.running()` (it is "dead" to `coroutine`).
//! * **Everything under `lua_pcall`.** The simulator calls the Rust closure of the rule;
//!   it makes one protected call on the thread (`lua_cpcall` on 5.1 and LuaJIT, whose
//!   `lua_pushcfunction` allocates; a light C function and `lua_pcall` on 5.2-5.4) of a
//!   trampoline that gets a light userdata pointing at the call's data (the packet, the
//!   verdict slot). The trampoline builds the packet table and the rng, calls the rule
//!   with a nested `lua_pcall` whose message handler adds the traceback, and reads the
//!   verdict — so an error (also a memory error, or an error of a finalizer run by an
//!   allocation) never unwinds through the simulator's frames. Between the closure's
//!   entry and the protected call nothing allocates; after it only `lua_settop` and
//!   registry sets of `nil` (which never allocate) are made.
//! * **A re-entrancy guard.** While a rule runs, the world's [`RuleShared`] is `busy`;
//!   every way into the world checks it first, before touching the world (which the
//!   running call holds): world methods ([`crate::sim::live`], from a copy of the shared
//!   state kept in the world userdata outside the boxed state), host functions and socket
//!   methods (`lua::cell_backend`), the task wrappers (`SimHost::task_mode` and friends
//!   answer "no"), and a socket finalizer's close (deferred to the next call into the
//!   world: [`RuleShared::defer_close`]). `busy` is per world, so a rule of world A may use
//!   world B, whose rules then run on B's thread; the nesting depth is bounded (the C
//!   stack). One `attention` flag per world (busy, or something pending) keeps the check
//!   to one test on the hot path.
//! * **Nothing is lost, nothing dangles.** Removals and failures during a rule are
//!   recorded in the shared state and applied by the next call into the world (it
//!   removes the rules from the simulator and raises the reports; the report text is moved
//!   into a holder userdata before it is pushed, so a memory error while pushing it frees
//!   it, and that error is what the call raises). The
//!   rng userdata holds only a serial number: a thread-local list maps the serials of the
//!   running calls to their generator, so an rng kept past its call finds nothing and
//!   raises. When the world goes (`close`, or the collector) its thread is released — by
//!   `__gc`/`close` themselves, or, when that happens inside one of its rules (the
//!   collector may finalize a world whose host's socket call is running the rule), by the
//!   rule's closure right after its call returns; from then on the world's rules pass
//!   without running. The closures hold only an `Rc` of the shared state (no Lua
//!   reference, no host), so dropping the simulator never calls into Lua.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ffi::{c_int, c_void, CStr};
use std::fmt::Write as _;
use std::ptr;

use llsocket_api::Fd;
use llsocket_sim::{Host, PacketInfo, Proto, RuleId, RuleRng, Sim, TcpFlags, Verdict};
use mlua::ffi::*;

use crate::lua::{
    arg_error, check_int, guard, new_holder_with, push_bool, push_bytes, push_int, raise_str,
    to_bytes, type_error,
};
use crate::sim::{
    check_host, check_world, live, ms_duration, push_fmt, shared_of, sim_of, state_of, Hint,
    SimHost, TaskShared, WorldUd, HOLDER_MT,
};

/// How deep rules may nest (a rule of one world calling into another whose rule calls
/// into a third ...): each level is a protected call on another thread, with its own
/// budget of C calls, on the one C stack.
pub(crate) const MAX_DEPTH: usize = 8;

/// The longest error text kept from one failure, in bytes.
const MAX_TEXT: usize = 8 * 1024;

/// The most report text kept while none is raised, in bytes (later failures are counted).
const MAX_PENDING: usize = 64 * 1024;

/// Registry keys (light userdata: the addresses of these bytes). Unlike the types'
/// metatables (shared by every loading of the module, by name), these belong to this copy
/// of the code, like the thread-local list of running calls the rng methods look in: a
/// world's rules are always run by the code of the `world:rule` that installed them (the
/// world metatable's, made by the state's first loading).
static KEYS: [u8; 3] = [0; 3];
/// Registry table: world key -> the world's rule thread (strong).
const THREADS: usize = 0;
/// Registry table: world key -> the world's table of rule functions (weak values).
const FUNCS: usize = 1;
/// Registry entry: the metatable of rng objects.
const RNG_MT: usize = 2;

fn reg_key(which: usize) -> *mut c_void {
    ptr::addr_of!(KEYS[which]) as *mut c_void
}

// (Every initializer is `const`; nightly clippy still asks for it on targets whose
// thread-locals are not native, e.g. OpenBSD with `-Zbuild-std`.)
#[allow(clippy::missing_const_for_thread_local)]
mod running {
    use std::cell::{Cell, RefCell};
    use std::ffi::c_void;

    thread_local! {
        /// Rule calls under way on this thread (nested through other worlds).
        pub(super) static DEPTH: Cell<usize> = const { Cell::new(0) };
        /// The serial number of the last rule call.
        pub(super) static SERIAL: Cell<u64> = const { Cell::new(0) };
        /// The running rule calls: serial number -> their generator (a `*mut RuleRng`).
        pub(super) static ACTIVE: RefCell<Vec<(u64, *mut c_void)>> = const { RefCell::new(Vec::new()) };
    }
}
use running::{ACTIVE, DEPTH, SERIAL};

// ---- the shared state -------------------------------------------------------------------

/// One installed rule.
struct Entry {
    /// Its name in the simulator.
    sim: RuleId,
    /// Removed (by `remove_rule` inside a rule, or failed): not called again; the
    /// simulator forgets it at the next call into the world.
    removed: bool,
    /// Where its function was defined (`t.lua:12`), for reports.
    place: String,
}

/// A world's packet rules as the binding sees them (part of [`TaskShared`]: shared by the
/// world, its hosts' backends and the rules' closures).
pub(crate) struct RuleShared {
    /// The world's seed, for reports.
    pub(crate) seed: Cell<i64>,
    /// One of the world's rules is running (the world is busy with the call that sent
    /// the packet).
    busy: Cell<bool>,
    /// `busy`, or something left for the next call into the world (a removal, a failure
    /// report, a deferred close).
    attention: Cell<bool>,
    /// The world is gone: its rules pass without running.
    dead: Cell<bool>,
    /// The thread rules run on: null before the first rule and once released. Valid while
    /// non-null (anchored in the registry's [`THREADS`] table).
    thread: Cell<*mut lua_State>,
    /// The last rule id given.
    next: Cell<u64>,
    /// Installed rules by id.
    entries: RefCell<BTreeMap<u64, Entry>>,
    /// How many entries are marked removed.
    removals: Cell<usize>,
    /// Failure reports not raised yet.
    errors: RefCell<String>,
    /// Failures beyond [`MAX_PENDING`].
    dropped: Cell<usize>,
    /// Descriptors a finalizer closed while a rule ran.
    closes: RefCell<Vec<(Host, Fd)>>,
}

impl Default for RuleShared {
    fn default() -> RuleShared {
        RuleShared {
            seed: Cell::new(0),
            busy: Cell::new(false),
            attention: Cell::new(false),
            dead: Cell::new(false),
            thread: Cell::new(ptr::null_mut()),
            next: Cell::new(0),
            entries: RefCell::default(),
            removals: Cell::new(0),
            errors: RefCell::default(),
            dropped: Cell::new(0),
            closes: RefCell::default(),
        }
    }
}

impl RuleShared {
    /// Whether one of the world's rules is running.
    #[inline(always)]
    pub(crate) fn busy(&self) -> bool {
        self.busy.get()
    }

    /// Whether a call into the world must look first (see [`attend_world`], [`attend_host`]).
    #[inline(always)]
    pub(crate) fn attention(&self) -> bool {
        self.attention.get()
    }

    fn refresh(&self) {
        let on = self.busy.get()
            || self.removals.get() > 0
            || !self.errors.borrow().is_empty()
            || self.dropped.get() > 0
            || !self.closes.borrow().is_empty();
        self.attention.set(on);
    }

    /// The world is gone (its state dropped).
    pub(crate) fn world_gone(&self) {
        self.dead.set(true);
        let closes = self.closes.take();
        drop(closes);
        self.refresh();
    }

    /// Closes `fd` of `h` at the next call into the world (a finalizer ran while a rule did).
    pub(crate) fn defer_close(&self, h: Host, fd: Fd) {
        if !self.dead.get() {
            self.closes.borrow_mut().push((h, fd));
            self.attention.set(true);
        }
    }

    fn is_live(&self, id: u64) -> bool {
        self.entries.borrow().get(&id).is_some_and(|e| !e.removed)
    }

    /// Marks a rule removed; `false` if it is not installed (or removed already).
    fn mark_removed(&self, id: u64) -> bool {
        let found = match self.entries.borrow_mut().get_mut(&id) {
            Some(e) if !e.removed => {
                e.removed = true;
                true
            }
            _ => false,
        };
        if found {
            self.removals.set(self.removals.get() + 1);
            self.attention.set(true);
        }
        found
    }

    /// Removes a rule now (the world is not busy).
    fn remove_now(&self, sim: &Sim, id: u64) -> bool {
        let e = self.entries.borrow_mut().remove(&id);
        match e {
            Some(e) if !e.removed => {
                sim.remove_rule(e.sim);
                true
            }
            Some(e) => {
                // (marked, not yet forgotten by the simulator)
                self.removals.set(self.removals.get() - 1);
                sim.remove_rule(e.sim);
                self.refresh();
                false
            }
            None => false,
        }
    }

    /// Records a failure: the rule is removed, the report waits for the next call.
    fn fail(&self, id: u64, report: String) {
        self.mark_removed(id);
        {
            let mut errors = self.errors.borrow_mut();
            if errors.len() + report.len() > MAX_PENDING {
                self.dropped.set(self.dropped.get() + 1);
            } else {
                if !errors.is_empty() {
                    errors.push_str("\n\n");
                }
                errors.push_str(&report);
            }
        }
        self.attention.set(true);
    }

    fn place(&self, id: u64) -> String {
        self.entries
            .borrow()
            .get(&id)
            .map_or_else(|| "?".to_owned(), |e| e.place.clone())
    }

    /// Whether removals or closes wait for the world.
    fn has_work(&self) -> bool {
        self.removals.get() > 0 || !self.closes.borrow().is_empty()
    }

    /// Does what rules left for the world: deferred closes, then removals (`sim`: the
    /// world, when it still exists). A close may send a packet, so rules may run (and
    /// fail) meanwhile; what they leave waits for the next call.
    fn flush(&self, sim: Option<&Sim>) {
        let closes = self.closes.take();
        for (h, fd) in closes {
            let _ = llsocket_api::SocketOps::close(&h, fd);
        }
        if self.removals.get() > 0 {
            let ids: Vec<RuleId> = {
                let mut entries = self.entries.borrow_mut();
                let ids = entries
                    .values()
                    .filter(|e| e.removed)
                    .map(|e| e.sim)
                    .collect();
                entries.retain(|_, e| !e.removed);
                ids
            };
            self.removals.set(0);
            if let Some(sim) = sim {
                for id in ids {
                    sim.remove_rule(id);
                }
            }
        }
        self.refresh();
    }

    /// The pending reports, taken.
    fn take_errors(&self) -> String {
        let mut text = self.errors.take();
        let dropped = self.dropped.replace(0);
        if dropped > 0 {
            let _ = write!(
                text,
                "\n\nllsocket.sim: and {dropped} more packet rule failure(s), not shown"
            );
        }
        text
    }
}

// ---- the entry checks --------------------------------------------------------------------

/// Raises the error of a call into a world from inside one of its rules.
pub(crate) unsafe fn raise_busy(l: *mut lua_State) -> ! {
    raise_str(
        l,
        c"llsocket.sim: a packet rule cannot call into its own world (its methods but \
          remove_rule, its hosts' functions, their sockets' methods): the world is busy with \
          the call that sent the packet",
    )
}

/// What a world method does first when the world needs attention: raises inside one of
/// its rules, does what rules left, and (with `report`) raises pending failure reports.
pub(crate) unsafe fn attend_world(
    l: *mut lua_State,
    w: *mut WorldUd,
    sh: &TaskShared,
    report: bool,
) {
    let r = &sh.rules;
    if r.busy() {
        raise_busy(l);
    }
    if r.has_work() {
        // (not busy: no call of this world is under way that holds its state)
        let sim = sim_of(w);
        guard(l, move || r.flush(sim.as_ref()));
    }
    if report {
        raise_pending(l, sh);
    }
}

/// What a host function or socket method does first when its world needs attention (see
/// [`attend_world`]; the host's world may be gone).
pub(crate) unsafe fn attend_host(l: *mut lua_State, s: &SimHost) {
    let sh = s.shared();
    if sh.rules.busy() {
        raise_busy(l);
    }
    if sh.rules.has_work() {
        let host = s.host();
        guard(l, move || sh.rules.flush(host.map(|h| h.sim()).as_ref()));
    }
    raise_pending(l, sh);
}

/// Raises the pending failure reports, if any (the text is moved into a holder first: a
/// raise while pushing it frees it).
pub(crate) unsafe fn raise_pending(l: *mut lua_State, sh: &TaskShared) {
    let r = &sh.rules;
    if r.errors.borrow().is_empty() && r.dropped.get() == 0 {
        return;
    }
    lua_getfield(l, LUA_REGISTRYINDEX, HOLDER_MT.as_ptr());
    if lua_type(l, -1) != LUA_TTABLE {
        raise_str(l, c"llsocket.sim: the holder metatable is missing");
    }
    let h = new_holder_with(l, -1);
    let text: &'static mut String = h.put(r.take_errors());
    r.refresh();
    push_bytes(l, text.as_bytes());
    h.clear();
    lua_error(l)
}

/// Marks the world gone for its rules and releases its rule thread (`world_idx`, if not
/// 0: the world userdata, whose rule functions are dropped too). Inside one of its rules
/// (a finalizer of the world run while the rule ran) the thread is released by the rule's
/// closure when the call returns.
pub(crate) unsafe fn release(l: *mut lua_State, world_idx: c_int, sh: &TaskShared) {
    let r = &sh.rules;
    r.dead.set(true);
    if world_idx != 0 {
        crate::lua::uservalue(l, world_idx);
        lua_pushnil(l);
        lua_rawseti(l, -2, 4);
        lua_pop(l, 1);
    }
    if r.busy() {
        return;
    }
    let t = r.thread.replace(ptr::null_mut());
    if !t.is_null() {
        unanchor(l, world_key(sh));
    }
}

/// `THREADS[key] = nil` (never allocates: the key exists or nothing is set).
unsafe fn unanchor(l: *mut lua_State, key: *mut c_void) {
    if lua_rawgetp(l, LUA_REGISTRYINDEX, reg_key(THREADS)) == LUA_TTABLE {
        lua_pushlightuserdata(l, key);
        lua_pushnil(l);
        lua_rawset(l, -3);
    }
    lua_pop(l, 1);
}

/// The key of a world in the registry tables.
fn world_key(sh: &TaskShared) -> *mut c_void {
    sh as *const TaskShared as *mut c_void
}

/// Pushes the registry table at `which`, made on first use (weak values with `weak`).
unsafe fn push_reg_table(l: *mut lua_State, which: usize, weak: bool) {
    if lua_rawgetp(l, LUA_REGISTRYINDEX, reg_key(which)) == LUA_TTABLE {
        return;
    }
    lua_pop(l, 1);
    lua_createtable(l, 0, 4);
    if weak {
        lua_createtable(l, 0, 1);
        lua_pushstring(l, c"v".as_ptr());
        lua_setfield(l, -2, c"__mode".as_ptr());
        lua_setmetatable(l, -2);
    }
    lua_pushvalue(l, -1);
    lua_rawsetp(l, LUA_REGISTRYINDEX, reg_key(which));
}

// ---- world:rule, world:remove_rule -----------------------------------------------------

/// `world:rule(fn)` / `world:rule(a, b, fn)`: installs a packet rule for every packet
/// between any two hosts, or for the packets from host `a` to host `b` (names or host
/// tables, as `world:link`; one way). Returns its id (an integer).
pub(crate) unsafe extern "C-unwind" fn w_rule(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let (link, f) = match lua_type(l, 2) {
        LUA_TFUNCTION => (None, 2),
        LUA_TSTRING | LUA_TTABLE => {
            let a = check_host(l, 2);
            let b = check_host(l, 3);
            if lua_type(l, 4) != LUA_TFUNCTION {
                type_error(l, 4, c"function", false);
            }
            (Some((a, b)), 4)
        }
        _ => type_error(l, 2, c"function", false),
    };
    live(l, wp);
    let Some(sh) = shared_of(wp) else {
        raise_str(l, c"llsocket.sim: this world is gone (closed or collected)")
    };
    let key = world_key(sh);
    lua_settop(l, 4);
    luaL_checkstack(l, 8, c"llsocket.sim: stack".as_ptr());
    // the world's rule functions: its user value's slot 4, and weakly from the registry
    crate::lua::uservalue(l, 1); // 5
    if lua_rawgeti(l, 5, 4) != LUA_TTABLE {
        lua_pop(l, 1);
        lua_createtable(l, 0, 2);
        lua_pushvalue(l, -1);
        lua_rawseti(l, 5, 4);
    }
    let funcs = lua_gettop(l); // 6
    push_reg_table(l, FUNCS, true);
    lua_pushlightuserdata(l, key);
    lua_pushvalue(l, funcs);
    lua_rawset(l, -3);
    lua_pop(l, 1);
    if sh.rules.thread.get().is_null() {
        push_reg_table(l, THREADS, false);
        lua_pushlightuserdata(l, key);
        let t = lua_newthread(l);
        lua_rawset(l, -3);
        lua_pop(l, 1);
        // (anchored: from here until `release`)
        sh.rules.thread.set(t);
    }
    let id = sh.rules.next.get() + 1;
    sh.rules.next.set(id);
    push_int(l, id as i64);
    lua_pushvalue(l, f);
    lua_rawset(l, funcs);
    // where the function was defined, for reports (copied to the stack: no Rust heap yet)
    let mut place = [0u8; 96];
    let place_len = {
        // SAFETY: lua_Debug is plain C data; lua_getinfo fills it for the function it pops.
        let mut ar: lua_Debug = std::mem::zeroed();
        lua_pushvalue(l, f);
        let mut c = std::io::Cursor::new(&mut place[..]);
        if lua_getinfo(l, c">S".as_ptr(), &mut ar) != 0 {
            let src = CStr::from_ptr(ar.short_src.as_ptr()).to_string_lossy();
            let _ = if ar.linedefined > 0 {
                std::io::Write::write_fmt(&mut c, format_args!("{src}:{}", ar.linedefined))
            } else {
                std::io::Write::write_fmt(&mut c, format_args!("{src}"))
            };
        }
        c.position() as usize
    };
    // no Lua call from here to the push of the id
    let w = state_of(l, wp);
    guard(l, || {
        let shared = w.shared.clone();
        let rule = move |p: &PacketInfo<'_>, rng: &mut RuleRng<'_>| run(&shared, id, p, rng);
        let rid = match link {
            None => w.sim.add_rule(rule),
            Some((a, b)) => w
                .sim
                .add_link_rule(&w.hosts[a].host, &w.hosts[b].host, rule),
        };
        w.shared.rules.entries.borrow_mut().insert(
            id,
            Entry {
                sim: rid,
                removed: false,
                place: String::from_utf8_lossy(&place[..place_len]).into_owned(),
            },
        );
    });
    lua_settop(l, 0);
    push_int(l, id as i64);
    1
}

/// `world:remove_rule(id)`: removes a rule; `true` if it was installed, `false` if not
/// (an unknown id, removed already, or removed after a failure). Inside a rule of the same
/// world (also the running one) the rule is not called again from then on, and the
/// simulator forgets it at the next call into the world.
pub(crate) unsafe extern "C-unwind" fn w_remove_rule(l: *mut lua_State) -> c_int {
    let wp = check_world(l, 1);
    let id = check_int(l, 2);
    let Some(sh) = shared_of(wp) else {
        raise_str(l, c"llsocket.sim: this world is gone (closed or collected)")
    };
    let found = if sh.rules.busy() {
        id > 0 && sh.rules.mark_removed(id as u64)
    } else {
        let w = live(l, wp);
        id > 0 && guard(l, || sh.rules.remove_now(&w.sim, id as u64))
    };
    if found {
        // drop the function (F[id] = nil)
        lua_settop(l, 2);
        crate::lua::uservalue(l, 1);
        if lua_rawgeti(l, -1, 4) == LUA_TTABLE {
            lua_pushvalue(l, 2);
            lua_pushnil(l);
            lua_rawset(l, -3);
        }
        lua_settop(l, 2);
    }
    push_bool(l, found);
    1
}

// ---- running a rule ----------------------------------------------------------------------

/// What became of one call of a rule.
#[derive(Clone, Copy)]
enum Outcome {
    /// Not called: its function is gone (removed meanwhile, or the world is being collected).
    Gone,
    /// It returned this verdict.
    Verdict(Verdict),
    /// It raised (or the call could not be made): `text` says why.
    Failed,
    /// It returned something that is no verdict: `text` says what.
    Bad,
}

/// The data of one call, shared with the trampoline through a light userdata.
struct Call<'a, 'b> {
    info: &'a PacketInfo<'b>,
    key: *mut c_void,
    id: u64,
    serial: u64,
    outcome: Outcome,
    text: Vec<u8>,
}

impl Call<'_, '_> {
    fn set_text(&mut self, b: &[u8]) {
        let n = b.len().min(MAX_TEXT);
        self.text.clear();
        self.text.extend_from_slice(&b[..n]);
        if n < b.len() {
            self.text.extend_from_slice(b"\n\t...(cut)");
        }
    }
}

/// While a rule runs: the world is busy, the call's rng is active. Undone on drop.
struct Running<'a> {
    r: &'a RuleShared,
    serial: u64,
}

impl<'a> Running<'a> {
    fn enter(r: &'a RuleShared, serial: u64, rng: *mut c_void) -> Running<'a> {
        r.busy.set(true);
        r.attention.set(true);
        DEPTH.with(|d| d.set(d.get() + 1));
        ACTIVE.with(|a| a.borrow_mut().push((serial, rng)));
        Running { r, serial }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let serial = self.serial;
        ACTIVE.with(|a| a.borrow_mut().retain(|e| e.0 != serial));
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        self.r.busy.set(false);
        self.r.refresh();
    }
}

/// The body of every rule's closure: calls the rule's Lua function on the world's rule
/// thread, under `lua_pcall`, and turns what it returns into a verdict.
fn run(sh: &TaskShared, id: u64, p: &PacketInfo<'_>, rng: &mut RuleRng<'_>) -> Verdict {
    let r = &sh.rules;
    let t = r.thread.get();
    if r.dead.get() || r.busy.get() || t.is_null() || !r.is_live(id) {
        return Verdict::Pass;
    }
    if DEPTH.with(Cell::get) >= MAX_DEPTH {
        let why = format!(
            "packet rules nested too deep: a rule's call into another world ran that world's \
             rules, {MAX_DEPTH} deep"
        );
        r.fail(id, report(r, id, p, why.as_bytes()));
        return Verdict::Pass;
    }
    let serial = SERIAL.with(|s| {
        let n = s.get() + 1;
        s.set(n);
        n
    });
    let mut call = Call {
        info: p,
        key: world_key(sh),
        id,
        serial,
        outcome: Outcome::Gone,
        text: Vec::new(),
    };
    {
        let _running = Running::enter(r, serial, rng as *mut RuleRng<'_> as *mut c_void);
        // SAFETY: `t` is non-null, so it is the world's rule thread, anchored in the
        // registry (it stays so until this call returns: `release` leaves a busy world's
        // thread to us), idle with an empty stack (it runs only this world's rules, one at
        // a time: `busy`), and no Lua program can run anything on it: one that got it from
        // `coroutine.running()` can resume it neither idle (empty, it is a dead coroutine)
        // nor running, and closing it (5.4) works only while it is idle and leaves it idle
        // and empty. `protected` makes no allocation before the protected call, so
        // no error can escape it; `call` outlives the call, and the trampoline only reads
        // and writes it through the pointer while `run` waits.
        let status = unsafe { protected(t, ptr::addr_of_mut!(call) as *mut c_void) };
        if status != 0 {
            call.outcome = Outcome::Failed;
            // SAFETY: the protected call left its error value on top of `t`; a string is
            // read in place (no conversion, no allocation).
            let text = unsafe {
                if lua_type(t, -1) == LUA_TSTRING {
                    to_bytes(t, -1)
                } else {
                    &b"(an error object that is not a string)"[..]
                }
            };
            call.set_text(text);
        }
        // SAFETY: only plain values are on `t` (its results or error value; no
        // to-be-closed slot), so this frees nothing and runs nothing.
        unsafe { lua_settop(t, 0) };
    }
    if r.dead.get() {
        // The world was collected while the rule ran: release its thread now.
        if !r.thread.replace(ptr::null_mut()).is_null() {
            // SAFETY: `t` is still anchored (nobody released it: `release` saw the world
            // busy) and idle; clearing a registry key allocates nothing.
            unsafe { unanchor(t, world_key(sh)) };
        }
        return Verdict::Pass;
    }
    match call.outcome {
        Outcome::Gone => Verdict::Pass,
        Outcome::Verdict(v) => v,
        Outcome::Failed | Outcome::Bad => {
            r.fail(id, report(r, id, p, &call.text));
            Verdict::Pass
        }
    }
}

/// The failure report of rule `id` on packet `p` (`why`: the error and its traceback).
fn report(r: &RuleShared, id: u64, p: &PacketInfo<'_>, why: &[u8]) -> String {
    let ns = p.time.as_nanos();
    let seed = r.seed.get();
    let mut s = format!(
        "llsocket.sim: packet rule {id} ({}) failed and is removed (virtual time {}.{:09} s, \
         seed {seed}):\n",
        r.place(id),
        ns / 1_000_000_000,
        ns % 1_000_000_000
    );
    s.push_str(&String::from_utf8_lossy(why));
    let (flags, n) = flags_text(p.flags);
    let _ = write!(
        s,
        "\n  the packet: {} {} -> {} [{}] {} bytes, attempt {}, host {} -> {}\n{}",
        proto_name(p.proto),
        p.src,
        p.dst,
        String::from_utf8_lossy(&flags[..n]),
        p.len(),
        p.attempt,
        p.src_host,
        p.dst_host,
        Hint(seed)
    );
    s
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// The TCP flags as letters, in the order `FSRPAU`.
fn flags_text(f: TcpFlags) -> ([u8; 6], usize) {
    let mut out = [0u8; 6];
    let mut n = 0;
    for (flag, ch) in [
        (TcpFlags::FIN, b'F'),
        (TcpFlags::SYN, b'S'),
        (TcpFlags::RST, b'R'),
        (TcpFlags::PSH, b'P'),
        (TcpFlags::ACK, b'A'),
        (TcpFlags::URG, b'U'),
    ] {
        if f.contains(flag) {
            out[n] = ch;
            n += 1;
        }
    }
    (out, n)
}

/// Calls the trampoline on `t` in protected mode with the light userdata `call`.
#[cfg(any(feature = "lua51", feature = "luajit"))]
unsafe fn protected(t: *mut lua_State, call: *mut c_void) -> c_int {
    // (5.1 and LuaJIT: pushing a C function allocates; lua_cpcall does it protected)
    lua_cpcall(t, trampoline, call)
}

/// Calls the trampoline on `t` in protected mode with the light userdata `call`.
#[cfg(not(any(feature = "lua51", feature = "luajit")))]
unsafe fn protected(t: *mut lua_State, call: *mut c_void) -> c_int {
    // (5.2+: a C function without upvalues is a light value, pushed without allocating;
    // the idle thread has its LUA_MINSTACK free slots)
    lua_pushcfunction(t, trampoline);
    lua_pushlightuserdata(t, call);
    lua_pcall(t, 1, 0, 0)
}

/// The protected part of a rule call, on the rule thread: fetches the function, builds
/// the packet table and the rng, calls the rule under a message handler that adds the
/// traceback, and reads the verdict into the [`Call`] (argument 1, a light userdata).
///
/// Never given to Lua code (only `debug` could reach it on the rule thread's stack).
unsafe extern "C-unwind" fn trampoline(t: *mut lua_State) -> c_int {
    let call = lua_touserdata(t, 1) as *mut Call<'static, 'static>;
    if call.is_null() {
        return 0;
    }
    // SAFETY (of every access through `call`): `run` passed a pointer to its `Call`, which
    // lives until `protected` returns; no reference into it is held across a Lua call.
    let (key, id, serial) = ((*call).key, (*call).id, (*call).serial);
    lua_settop(t, 0);
    luaL_checkstack(t, 12, c"llsocket.sim: stack".as_ptr());
    lua_pushcfunction(t, msgh); // 1
    if lua_rawgetp(t, LUA_REGISTRYINDEX, reg_key(FUNCS)) != LUA_TTABLE
        || lua_rawgetp(t, 2, key) != LUA_TTABLE
    {
        return 0; // (Gone: the world is being collected)
    }
    lua_remove(t, 2); // 2: the world's functions
    push_int(t, id as i64);
    if lua_rawget(t, 2) != LUA_TFUNCTION {
        return 0; // (Gone: removed)
    }
    push_packet(t, (*call).info); // 4
    push_rng(t, serial); // 5
    if lua_pcall(t, 2, 2, 1) != 0 {
        // forget the function; the error (a string from `msgh`, or Lua's own message) is
        // at 3
        push_int(t, id as i64);
        lua_pushnil(t);
        lua_rawset(t, 2);
        let text = if lua_type(t, 3) == LUA_TSTRING {
            without_trampoline(to_bytes(t, 3))
        } else {
            &b"(an error object that is not a string)"[..]
        };
        (*call).outcome = Outcome::Failed;
        (*call).set_text(text);
        return 0;
    }
    match verdict(t, 3, 4) {
        Some(v) => (*call).outcome = Outcome::Verdict(v),
        None => {
            push_int(t, id as i64);
            lua_pushnil(t);
            lua_rawset(t, 2);
            let mut buf = [0u8; 200];
            let n = describe_verdict(t, 3, 4, &mut buf);
            (*call).outcome = Outcome::Bad;
            (*call).set_text(&buf[..n]);
        }
    }
    0
}

/// A traceback without its last line when that is the trampoline's frame (`[C]: in ?`,
/// `[C]: ?`): the rule's own frames are what a reader needs.
fn without_trampoline(text: &[u8]) -> &[u8] {
    for tail in [&b"\n\t[C]: in ?"[..], &b"\n\t[C]: ?"[..]] {
        if let Some(t) = text.strip_suffix(tail) {
            return t;
        }
    }
    text
}

/// The message handler of rule calls: the error as text (numbers converted, other values
/// named by type; no metamethod is called) with the traceback of the rule.
unsafe extern "C-unwind" fn msgh(t: *mut lua_State) -> c_int {
    let msg = match lua_type(t, 1) {
        LUA_TSTRING | LUA_TNUMBER => lua_tostring(t, 1),
        _ => lua_pushfstring(
            t,
            c"(error object is a %s value)".as_ptr(),
            luaL_typename(t, 1),
        ),
    };
    luaL_traceback(t, t, msg, 1);
    1
}

/// The verdict at `v` (and `extra`, the milliseconds of `"delay"`), or `None` if it is none.
unsafe fn verdict(t: *mut lua_State, v: c_int, extra: c_int) -> Option<Verdict> {
    match lua_type(t, v) {
        LUA_TNIL => Some(Verdict::Pass),
        LUA_TSTRING => match to_bytes(t, v) {
            b"pass" => Some(Verdict::Pass),
            b"drop" => Some(Verdict::Drop),
            b"duplicate" => Some(Verdict::Duplicate),
            b"hold" => Some(Verdict::HoldBack),
            b"delay" => delay(t, extra),
            _ => None,
        },
        LUA_TTABLE => {
            lua_pushstring(t, c"delay".as_ptr());
            lua_rawget(t, v);
            let d = delay(t, -1);
            lua_pop(t, 1);
            d
        }
        _ => None,
    }
}

/// `Delay` for the milliseconds at `idx`, if they are valid.
unsafe fn delay(t: *mut lua_State, idx: c_int) -> Option<Verdict> {
    if lua_type(t, idx) != LUA_TNUMBER {
        return None;
    }
    ms_duration(lua_tonumber(t, idx) as f64).map(Verdict::Delay)
}

/// Writes what a bad verdict was into `buf` (no allocation); returns the length.
unsafe fn describe_verdict(t: *mut lua_State, v: c_int, extra: c_int, buf: &mut [u8]) -> usize {
    let mut c = std::io::Cursor::new(buf);
    let typename = |i: c_int| CStr::from_ptr(luaL_typename(t, i)).to_string_lossy();
    let _ = match lua_type(t, v) {
        LUA_TSTRING if to_bytes(t, v) == b"delay" => match lua_type(t, extra) {
            LUA_TNUMBER => std::io::Write::write_fmt(
                &mut c,
                format_args!("'delay', {}", lua_tonumber(t, extra) as f64),
            ),
            _ => std::io::Write::write_fmt(&mut c, format_args!("'delay', {}", typename(extra))),
        },
        LUA_TSTRING => {
            let s = to_bytes(t, v);
            let cut = &s[..s.len().min(40)];
            std::io::Write::write_fmt(&mut c, format_args!("\"{}\"", cut.escape_ascii()))
        }
        LUA_TTABLE => {
            std::io::Write::write_fmt(&mut c, format_args!("a table without a valid delay field"))
        }
        _ => std::io::Write::write_fmt(&mut c, format_args!("a {} value", typename(v))),
    };
    let _ = std::io::Write::write_fmt(
        &mut c,
        format_args!(
            ": bad verdict (nil, 'pass', 'drop', 'delay' and milliseconds from 0 to 9.2e12, \
             {{delay = ms}}, 'duplicate' or 'hold' expected)"
        ),
    );
    c.position() as usize
}

/// Pushes the packet table of `p`.
unsafe fn push_packet(t: *mut lua_State, p: &PacketInfo<'_>) {
    lua_createtable(t, 0, 15);
    let tb = lua_gettop(t);
    lua_pushnumber(t, (p.time.as_nanos() as f64 / 1e6) as lua_Number);
    lua_setfield(t, tb, c"time".as_ptr());
    push_bytes(t, p.src_host.as_bytes());
    lua_setfield(t, tb, c"src_host".as_ptr());
    push_bytes(t, p.dst_host.as_bytes());
    lua_setfield(t, tb, c"dst_host".as_ptr());
    for (a, full, ip, port) in [
        (&p.src, c"src", c"src_ip", c"src_port"),
        (&p.dst, c"dst", c"dst_ip", c"dst_port"),
    ] {
        push_fmt(t, format_args!("{a}"));
        lua_setfield(t, tb, full.as_ptr());
        push_fmt(t, format_args!("{}", a.ip()));
        lua_setfield(t, tb, ip.as_ptr());
        push_int(t, i64::from(a.port()));
        lua_setfield(t, tb, port.as_ptr());
    }
    lua_pushstring(
        t,
        match p.proto {
            Proto::Tcp => c"tcp",
            Proto::Udp => c"udp",
        }
        .as_ptr(),
    );
    lua_setfield(t, tb, c"proto".as_ptr());
    let (flags, n) = flags_text(p.flags);
    push_bytes(t, &flags[..n]);
    lua_setfield(t, tb, c"flags".as_ptr());
    push_int(t, p.len() as i64);
    lua_setfield(t, tb, c"len".as_ptr());
    push_bytes(t, p.payload);
    lua_setfield(t, tb, c"payload".as_ptr());
    push_int(t, i64::from(p.attempt));
    lua_setfield(t, tb, c"attempt".as_ptr());
}

// ---- the rng object -------------------------------------------------------------------------

/// An rng userdata: the serial number of the rule call it belongs to (plain data).
#[derive(Clone, Copy)]
struct RngUd {
    serial: u64,
}

/// Pushes the rng object of the call `serial`.
unsafe fn push_rng(l: *mut lua_State, serial: u64) {
    let p = lua_newuserdata(l, std::mem::size_of::<RngUd>()) as *mut RngUd;
    ptr::write(p, RngUd { serial });
    push_rng_mt(l);
    lua_setmetatable(l, -2);
}

/// Pushes the rng metatable (made on first use in the state).
unsafe fn push_rng_mt(l: *mut lua_State) {
    if lua_rawgetp(l, LUA_REGISTRYINDEX, reg_key(RNG_MT)) == LUA_TTABLE {
        return;
    }
    lua_pop(l, 1);
    lua_createtable(l, 0, 4);
    lua_createtable(l, 0, 3);
    for (name, f) in [
        (c"chance", rng_chance as lua_CFunction),
        (c"range", rng_range),
        (c"duration", rng_duration),
    ] {
        lua_pushcfunction(l, f);
        lua_setfield(l, -2, name.as_ptr());
    }
    lua_setfield(l, -2, c"__index".as_ptr());
    lua_pushboolean(l, 0);
    lua_setfield(l, -2, c"__metatable".as_ptr());
    lua_pushstring(l, c"llsocket.sim.rng".as_ptr());
    lua_setfield(l, -2, c"__name".as_ptr());
    lua_pushcfunction(l, rng_tostring);
    lua_setfield(l, -2, c"__tostring".as_ptr());
    lua_pushvalue(l, -1);
    lua_rawsetp(l, LUA_REGISTRYINDEX, reg_key(RNG_MT));
}

/// The generator of the rng object at 1, while its call runs; raises otherwise.
unsafe fn check_rng(l: *mut lua_State) -> *mut RuleRng<'static> {
    let p = lua_touserdata(l, 1) as *const RngUd;
    let mut ours = false;
    if !p.is_null() && lua_type(l, 1) == LUA_TUSERDATA && lua_getmetatable(l, 1) != 0 {
        lua_rawgetp(l, LUA_REGISTRYINDEX, reg_key(RNG_MT));
        ours = lua_rawequal(l, -1, -2) != 0;
        lua_pop(l, 2);
    }
    if !ours {
        type_error(l, 1, c"llsocket.sim.rng", true);
    }
    let serial = (*p).serial;
    let found = ACTIVE.with(|a| a.borrow().iter().find(|e| e.0 == serial).map(|e| e.1));
    match found {
        // SAFETY: an active entry points at the `RuleRng` of a `run` that is still
        // waiting for its rule to return (entries are removed before `run` returns); the
        // pointer is used only during this C function.
        Some(r) => r as *mut RuleRng<'static>,
        None => raise_str(
            l,
            c"llsocket.sim: this rng belongs to a packet rule call that has returned: a rule \
              draws only from the rng it was called with, during that call",
        ),
    }
}

/// `rng:chance(p)`: `true` with probability `p` (0 to 1).
unsafe extern "C-unwind" fn rng_chance(l: *mut lua_State) -> c_int {
    let r = check_rng(l);
    if lua_type(l, 2) != LUA_TNUMBER {
        type_error(l, 2, c"number", false);
    }
    let p = lua_tonumber(l, 2) as f64;
    if !(0.0..=1.0).contains(&p) {
        arg_error(l, 2, c"a probability from 0 to 1 expected");
    }
    // SAFETY: see `check_rng`; nothing here calls Lua.
    let v = guard(l, || unsafe { (*r).chance(p) });
    push_bool(l, v);
    1
}

/// `rng:range(lo, hi)`: an integer from `lo` to `hi` (both included, `0 <= lo <= hi`).
unsafe extern "C-unwind" fn rng_range(l: *mut lua_State) -> c_int {
    let r = check_rng(l);
    let lo = check_int(l, 2);
    let hi = check_int(l, 3);
    if lo < 0 {
        arg_error(l, 2, c"must not be negative");
    }
    if hi < lo {
        arg_error(l, 3, c"must not be less than the first");
    }
    // SAFETY: see `check_rng`; nothing here calls Lua.
    let v = guard(l, || unsafe { (*r).range(lo as u64, hi as u64) });
    push_int(l, v as i64);
    1
}

/// `rng:duration(lo, hi)`: milliseconds from `lo` to `hi` (nanosecond resolution).
unsafe extern "C-unwind" fn rng_duration(l: *mut lua_State) -> c_int {
    let r = check_rng(l);
    let mut d = [std::time::Duration::ZERO; 2];
    for (i, arg) in [2, 3].into_iter().enumerate() {
        if lua_type(l, arg) != LUA_TNUMBER {
            type_error(l, arg, c"number", false);
        }
        match ms_duration(lua_tonumber(l, arg) as f64) {
            Some(v) => d[i] = v,
            None => arg_error(l, arg, c"milliseconds from 0 to 9.2e12 expected"),
        }
    }
    if d[1] < d[0] {
        arg_error(l, 3, c"must not be less than the first");
    }
    // SAFETY: see `check_rng`; nothing here calls Lua.
    let v = guard(l, || unsafe { (*r).duration(d[0], d[1]) });
    lua_pushnumber(l, (v.as_nanos() as f64 / 1e6) as lua_Number);
    1
}

/// `__tostring` of rng objects.
unsafe extern "C-unwind" fn rng_tostring(l: *mut lua_State) -> c_int {
    lua_pushstring(l, c"llsocket.sim.rng".as_ptr());
    1
}
