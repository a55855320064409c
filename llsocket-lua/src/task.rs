//! Tasks on the simulator: the socket methods that can wait, wrapped so that a call that
//! would wait inside a running task (`world:run`) suspends that task instead of running
//! the world. The scheduler itself is Lua (`sched.lua`, loaded by `sim`).
//!
//! # How a call waits in a task
//!
//! While a world runs its tasks, the simulator is in task mode
//! ([`llsocket_sim::Sim::set_task_mode`]): a blocking call that would wait *parks* — it
//! returns `EAGAIN` at once and leaves a [`Park`] (host, call, descriptor, deadline). The
//! wrapper of the method (every function here wraps the plain one of `socket`) sees the
//! park after the plain body returned and, instead of the body's results, yields from the
//! task's coroutine `TOKEN, park`, the table `{deadline, what, fd, host, moved, fn,
//! args..., n = count}`: `fn` is the
//! same wrapper and `args` its arguments, which the scheduler calls again (with the
//! park's deadline armed, [`llsocket_sim::Sim::resume_wait`]) whenever the wait may have
//! ended; what that call returns is what the task's call returns when it is resumed.
//! Called by the scheduler (the world's `retrying` flag), a wrapper that parks again
//! *returns* those values instead of yielding.
//!
//! A C function cannot portably continue after a yield (Lua 5.1 and LuaJIT have no
//! continuations), which is why the scheduler repeats the call rather than the call
//! resuming itself: the same code runs on every interpreter, and a task's calls, events
//! and digest are the same on all of them.
//!
//! A send (`send`, `sendto`, `write`, `sendfile`) or a receive (`recv`, `recvfrom`,
//! `read` with `MSG_WAITALL` or `SO_RCVLOWAT`) that moved some bytes before it would
//! wait yields them as `moved` with arguments for the rest (the rest of the message, the
//! rest of the file range, the rest of the buffer size); the scheduler adds the two parts
//! up, so the task sees one call that moved everything, as without tasks. `sendmsg`,
//! `recvmsg`, `sendfd`, `recvfd` and an iovec's `writev`/`readv` (wrapped here too: their
//! descriptor is argument 2) return what they moved (as after an interrupted call).
//! Small differences from waiting without tasks: a receive that got fewer bytes than its
//! `SO_RCVLOWAT` before it would wait continues with a receive of the rest of the buffer,
//! which waits for up to `SO_RCVLOWAT` more bytes (not for the difference); `close(how)`
//! that lingers waits before its `shutdown` rather than after; a socket the collector
//! closes during a run does not linger.
//!
//! Checked before a task yields: the running coroutine must be a task of this world (or
//! a `sim.pcall` inside one; registry table [`THREADS`]), and it must be able to yield
//! (Lua 5.3/5.4: `lua_isyieldable`; Lua 5.1: no C function such as `pcall` on its
//! stack). Otherwise the call raises a message that says so. A task that makes
//! [`SPIN_LIMIT`] calls in a row that could not go on without waiting, without waiting,
//! raises too: while it runs nothing else does, so it would spin forever.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, c_void, CStr};

use llsocket_api::Fd;
use llsocket_sim::Park;
use mlua::ffi::*;

use crate::lua::{cell_ptr, check_cint, guard, is_none_or_nil, push_int, NUP};
use crate::sim::SimHost;
use crate::types::{check_sock, CellPtr, Iovec, Sock};
use crate::{iovec, socket};

/// The marker a parked call yields (returns) first: the address of this static, as a
/// light userdata (unique in the process).
static TOKEN: u8 = 0;

/// Pushes the marker of a parked call.
pub(crate) unsafe fn push_token(l: *mut lua_State) {
    lua_pushlightuserdata(l, std::ptr::addr_of!(TOKEN) as *mut c_void);
}

/// Registry key of the weak-keyed table of the coroutines that may wait: each task's, and
/// each `sim.pcall`'s inside a task, mapped to `{task name, world key}`.
pub(crate) const THREADS: &CStr = c"llsocket.sim.threads";

/// How many calls in a row that could not go on without waiting (a non-blocking
/// `EAGAIN`, a connect in progress, `recvable(0)` finding nothing) a task may make while
/// no other task runs before it is stopped as spinning.
pub(crate) const SPIN_LIMIT: u64 = 100_000;

/// What a call that moved some bytes before it would wait continues with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing: a partial result is returned as it is.
    Plain,
    /// The rest of the message at argument 2.
    Send,
    /// The rest of the range: argument 3 (bytes) less, argument 4 (offset) more.
    Sendfile,
    /// The rest of the buffer size at argument 2 (default 4096).
    Recv,
}

/// The simulated host of a module instance, when its backend is one.
unsafe fn sim_host(cell: CellPtr) -> Option<&'static SimHost> {
    // SAFETY: every cell is anchored by a registry reference until the state closes (an
    // object's cell outlives the object), and its `sim` is only taken by the cell's
    // `__gc`, which runs when the state closes, after every call.
    cell.as_ref()?.sim.get().map(|rc| &**rc)
}

macro_rules! waiting {
    ($($(#[$doc:meta])* $name:ident => $body:path, $kind:ident, $what:literal;)*) => {$(
        $(#[$doc])*
        pub(crate) unsafe extern "C-unwind" fn $name(l: *mut lua_State) -> c_int {
            let nargs = lua_gettop(l);
            let n = $body(l);
            // SAFETY: the body returned, so its self check passed: index 1 is a socket
            // userdata, kept alive by the stack.
            let sock = lua_touserdata(l, 1) as *const Sock;
            match sim_host((*sock).cell) {
                None => n,
                Some(host) => after(l, host, (*sock).fd, nargs, n, Kind::$kind, $what, $name),
            }
        }
    )*};
}

waiting! {
    /// `sock:connect(ai)` ([`socket::m_connect`]); in a task a blocking connect waits for the handshake.
    connect => socket::m_connect, Plain, c"connect";
    /// `sock:accept([with_ai])` ([`socket::m_accept`]), waiting in a task.
    accept => socket::m_accept, Plain, c"accept";
    /// `sock:acceptfd()` ([`socket::m_acceptfd`]), waiting in a task.
    acceptfd => socket::m_acceptfd, Plain, c"acceptfd";
    /// `sock:recvable([msec [, except]])` ([`socket::m_recvable`]), waiting in a task.
    recvable => socket::m_recvable, Plain, c"recvable";
    /// `sock:sendable([msec [, except]])` ([`socket::m_sendable`]), waiting in a task.
    sendable => socket::m_sendable, Plain, c"sendable";
    /// `sock:send(msg [, flag ...])` ([`socket::m_send`]), waiting in a task.
    send => socket::m_send, Send, c"send";
    /// `sock:sendto(msg, ai [, flag ...])` ([`socket::m_sendto`]), waiting in a task.
    sendto => socket::m_sendto, Send, c"sendto";
    /// `sock:write(msg)` ([`socket::m_write`]), waiting in a task.
    write => socket::m_write, Send, c"write";
    /// `sock:sendmsg(mh [, flag ...])` ([`socket::m_sendmsg`]), waiting in a task.
    sendmsg => socket::m_sendmsg, Plain, c"sendmsg";
    /// `sock:sendfd(fd [, ai [, flag ...]])` ([`socket::m_sendfd`]), waiting in a task.
    sendfd => socket::m_sendfd, Plain, c"sendfd";
    /// `sock:sendfile(file, bytes [, offset])` ([`socket::m_sendfile`]), waiting in a task.
    sendfile => socket::m_sendfile, Sendfile, c"sendfile";
    /// `sock:recv([bufsize [, flag ...]])` ([`socket::m_recv`]), waiting in a task.
    recv => socket::m_recv, Recv, c"recv";
    /// `sock:recvfrom([bufsize [, flag ...]])` ([`socket::m_recvfrom`]), waiting in a task.
    recvfrom => socket::m_recvfrom, Recv, c"recvfrom";
    /// `sock:read([bufsize])` ([`socket::m_read`]), waiting in a task.
    read => socket::m_read, Recv, c"read";
    /// `sock:recvfd([flag ...])` ([`socket::m_recvfd`]), waiting in a task.
    recvfd => socket::m_recvfd, Plain, c"recvfd";
    /// `sock:recvmsg(mh [, flag ...])` ([`socket::m_recvmsg`]), waiting in a task.
    recvmsg => socket::m_recvmsg, Plain, c"recvmsg";
}

macro_rules! waiting_iovec {
    ($($(#[$doc:meta])* $name:ident => $body:path, $what:literal;)*) => {$(
        $(#[$doc])*
        pub(crate) unsafe extern "C-unwind" fn $name(l: *mut lua_State) -> c_int {
            let nargs = lua_gettop(l);
            let n = $body(l);
            // SAFETY: the body returned, so its argument checks passed: index 1 is an
            // iovec userdata, kept alive by the stack, and index 2 an integer descriptor.
            let iov = lua_touserdata(l, 1) as *const Iovec;
            match sim_host((*iov).cell) {
                None => n,
                Some(host) => {
                    let fd = lua_tointeger(l, 2) as c_int;
                    after(l, host, fd, nargs, n, Kind::Plain, $what, $name)
                }
            }
        }
    )*};
}

waiting_iovec! {
    /// `iov:writev(fd [, offset [, nbyte]])` ([`iovec::m_writev`]); in a task, a write
    /// to a blocking socket that would wait for room waits (one that wrote some bytes
    /// returns them, as `sendmsg` does).
    writev => iovec::m_writev, c"writev";
    /// `iov:readv(fd [, offset [, nbyte]])` ([`iovec::m_readv`]); in a task, a read of a
    /// blocking socket with nothing to read waits.
    readv => iovec::m_readv, c"readv";
}

/// `sock:close([how])` ([`socket::m_close`]); in a task, a close that would linger
/// (`SO_LINGER` with a timeout, unsent data) waits first.
pub(crate) unsafe extern "C-unwind" fn close(l: *mut lua_State) -> c_int {
    let nargs = lua_gettop(l);
    let s = *check_sock(l);
    if !is_none_or_nil(l, 2) {
        check_cint(l, 2);
    }
    if s.fd != -1 {
        if let Some(host) = sim_host(s.cell) {
            if let Some(n) = linger(l, host, nargs, Fd(s.fd), close) {
                return n;
            }
        }
    }
    socket::m_close(l)
}

/// `socket.close(fd [, how])` ([`socket::close_fd`]); in a task, a close that would
/// linger waits first.
pub(crate) unsafe extern "C-unwind" fn close_fd(l: *mut lua_State) -> c_int {
    let nargs = lua_gettop(l);
    let fd = check_cint(l, 1);
    if !is_none_or_nil(l, 2) {
        check_cint(l, 2);
    }
    if let Some(host) = sim_host(cell_ptr(l)) {
        if let Some(n) = linger(l, host, nargs, Fd(fd), close_fd) {
            return n;
        }
    }
    socket::close_fd(l)
}

/// The lingering of a close in task mode: `Some` when it parked (the values to return).
unsafe fn linger(
    l: *mut lua_State,
    host: &SimHost,
    nargs: c_int,
    fd: Fd,
    this: lua_CFunction,
) -> Option<c_int> {
    if !guard(l, || host.task_mode()) {
        return None;
    }
    let park = guard(l, || {
        let _ = host.close_wait(fd);
        host.take_park()
    })?;
    Some(suspend(l, host, nargs, &park, c"close", this, None))
}

/// After the plain body of a method that can wait: its results, or the suspension of
/// the task when the call parked.
#[allow(clippy::too_many_arguments)] // one call site per wrapper macro
unsafe fn after(
    l: *mut lua_State,
    host: &SimHost,
    fd: c_int,
    nargs: c_int,
    nres: c_int,
    kind: Kind,
    what: &CStr,
    this: lua_CFunction,
) -> c_int {
    let Some((park, streak)) = guard(l, || host.task_poll()) else {
        return nres;
    };
    let Some(park) = park else {
        if streak >= SPIN_LIMIT {
            spinning(l, host, streak, what, fd);
        }
        return nres;
    };
    let first = lua_gettop(l) - nres + 1;
    let moved = nres > 0
        && match lua_type(l, first) {
            LUA_TNUMBER => lua_tonumber(l, first) > 0.0,
            LUA_TSTRING => true,
            _ => false,
        };
    if moved && kind == Kind::Plain {
        return nres;
    }
    let moved = moved.then_some((kind, first));
    suspend(l, host, nargs, &park, what, this, moved)
}

/// Yields (or, called by the scheduler, returns) `TOKEN, park` for a parked call, where
/// `park` is the table `{deadline, what, fd, host, moved, fn, args..., n = count}`.
///
/// The park is one table made here, in the task's call: an error its allocation raises
/// (the memory error, or a finalizer's before Lua 5.4) is that call's error, and what the
/// scheduler gets back is two values it keeps without allocating (see `sched.lua`).
unsafe fn suspend(
    l: *mut lua_State,
    host: &SimHost,
    nargs: c_int,
    park: &Park,
    what: &CStr,
    this: lua_CFunction,
    moved: Option<(Kind, c_int)>,
) -> c_int {
    let retrying = host.retrying();
    if !retrying {
        check_suspendable(l, host, what, park.fd.0);
    }
    luaL_checkstack(l, nargs + 12, c"llsocket.sim: stack".as_ptr());
    let top = lua_gettop(l);
    push_token(l);
    match park.deadline {
        Some(d) => push_int(l, d.as_nanos().min(i64::MAX as u128) as i64),
        None => lua_pushboolean(l, 0),
    }
    lua_pushstring(l, what.as_ptr());
    push_int(l, i64::from(park.fd.0));
    push_int(l, park.host as i64);
    match moved {
        Some((_, at)) => lua_pushvalue(l, at),
        None => lua_pushnil(l),
    }
    push_running(l, this);
    let args = lua_gettop(l); // arguments from args + 1
    for i in 1..=nargs {
        lua_pushvalue(l, i);
    }
    if let Some((kind, at)) = moved {
        rest_args(l, kind, args, nargs, at);
    }
    // the values after TOKEN, into the park table
    let n = lua_gettop(l) - top - 1;
    lua_createtable(l, n, 1);
    let park_t = lua_gettop(l);
    for i in 1..=n {
        lua_pushvalue(l, top + 1 + i);
        lua_rawseti(l, park_t, i as lua_Integer);
    }
    push_int(l, i64::from(n));
    lua_setfield(l, park_t, c"n".as_ptr());
    lua_replace(l, top + 2);
    lua_settop(l, top + 2);
    if retrying {
        2
    } else {
        lua_yield(l, 2)
    }
}

/// Pushes the running C function (`this`, with the module's upvalues): the function
/// itself where the interpreter gives it (no new closure), else a new closure of `this`.
unsafe fn push_running(l: *mut lua_State, this: lua_CFunction) {
    let top = lua_gettop(l);
    // SAFETY: lua_Debug is plain C data, filled by lua_getstack and read back by
    // lua_getinfo for the same level of the running coroutine.
    let mut ar: lua_Debug = std::mem::zeroed();
    if lua_getstack(l, 0, &mut ar) != 0 {
        lua_getinfo(l, c"f".as_ptr(), &mut ar);
        if lua_gettop(l) == top + 1 && lua_iscfunction(l, -1) != 0 {
            return;
        }
    }
    lua_settop(l, top);
    for i in 1..=NUP {
        lua_pushvalue(l, lua_upvalueindex(i));
    }
    lua_pushcclosure(l, this, NUP);
}

/// Turns the copied arguments (from `args + 1`, `nargs` of them) into those of the rest
/// of a call that moved the value at `at` (a count or the bytes received).
unsafe fn rest_args(l: *mut lua_State, kind: Kind, args: c_int, nargs: c_int, at: c_int) {
    let arg = |i: c_int| args + i;
    // (make sure arguments 1..=want exist)
    let fill = |want: c_int| {
        for _ in nargs..want {
            lua_pushnil(l);
        }
    };
    match kind {
        Kind::Plain => {}
        Kind::Send => {
            let n = lua_tointeger(l, at).max(0) as usize;
            let mut len = 0usize;
            let p = lua_tolstring(l, arg(2), &mut len);
            if !p.is_null() {
                let n = n.min(len);
                lua_pushlstring(l, p.add(n), len - n);
                lua_replace(l, arg(2));
            }
        }
        Kind::Sendfile => {
            let n = lua_tointeger(l, at) as i64;
            fill(4);
            let bytes = lua_tointeger(l, arg(3)) as i64;
            push_int(l, bytes.saturating_sub(n));
            lua_replace(l, arg(3));
            let offset = lua_tointeger(l, arg(4)) as i64; // (nil: 0)
            push_int(l, offset.saturating_add(n));
            lua_replace(l, arg(4));
        }
        Kind::Recv => {
            let got = lua_rawlen(l, at) as i64;
            fill(2);
            let size = if lua_type(l, arg(2)) == LUA_TNUMBER {
                lua_tointeger(l, arg(2)) as i64
            } else {
                4096
            };
            push_int(l, (size - got).max(1));
            lua_replace(l, arg(2));
        }
    }
}

/// Pushes the name of the task of this world the running coroutine belongs to, or
/// returns false (nothing pushed).
unsafe fn push_task_name(l: *mut lua_State, host: &SimHost) -> bool {
    lua_getfield(l, LUA_REGISTRYINDEX, THREADS.as_ptr());
    if lua_type(l, -1) != LUA_TTABLE {
        lua_pop(l, 1);
        return false;
    }
    lua_pushthread(l);
    lua_rawget(l, -2);
    if lua_type(l, -1) == LUA_TTABLE {
        lua_rawgeti(l, -1, 2);
        let ours = lua_touserdata(l, -1) == host.world_key();
        lua_pop(l, 1);
        if ours {
            lua_rawgeti(l, -1, 1);
            if lua_type(l, -1) == LUA_TSTRING {
                lua_replace(l, -3);
                lua_pop(l, 1);
                return true;
            }
            lua_pop(l, 1);
        }
    }
    lua_pop(l, 2);
    false
}

/// Raises unless the running coroutine is a task of this world that can yield here.
unsafe fn check_suspendable(l: *mut lua_State, host: &SimHost, what: &CStr, fd: i32) {
    if !push_task_name(l, host) {
        lua_pushfstring(
            l,
            c"llsocket.sim: %s(fd=%d) would wait, but not in a task of this world's run: only \
              a task's own coroutine (and sim.pcall inside it) can wait, not a coroutine the \
              task made itself, nor a finalizer"
                .as_ptr(),
            what.as_ptr(),
            fd as c_int,
        );
        lua_error(l);
    }
    #[cfg(any(feature = "lua53", feature = "lua54"))]
    if lua_isyieldable(l) == 0 {
        let name = lua_tostring(l, -1);
        lua_pushfstring(
            l,
            c"llsocket.sim: %s(fd=%d) would wait in task \"%s\", but the task cannot be \
              suspended here: a C function that cannot yield (a callback of table.sort or \
              string.gsub, require, a finalizer, ...) is between the task and this call"
                .as_ptr(),
            what.as_ptr(),
            fd as c_int,
            name,
        );
        lua_error(l);
    }
    #[cfg(feature = "lua51")]
    if c_function_on_stack(l) {
        let name = lua_tostring(l, -1);
        lua_pushfstring(
            l,
            c"llsocket.sim: %s(fd=%d) would wait in task \"%s\", but Lua 5.1 cannot suspend \
              a task across pcall, xpcall or another C function: use sim.pcall instead of \
              pcall"
                .as_ptr(),
            what.as_ptr(),
            fd as c_int,
            name,
        );
        lua_error(l);
    }
    lua_pop(l, 1);
}

/// Whether the tasks of a world can be run here (`world:run` asks). LuaJIT runs finalizers
/// and debug hooks with its hook flag set, and its `lua_yield` from a C function then takes
/// the path of a yield from a hook: it leaves a continuation frame that the coroutine's
/// next resume runs as garbage, a crash. A task that waits yields from its C method
/// (`suspend`), so on LuaJIT a world's tasks must not run inside a finalizer or a hook.
/// The flag is not visible through the API, but it is what keeps hooks from running: a
/// count hook is set and one Lua function run, and the hook runs unless the flag is set.
/// (PUC Lua yields from C correctly there.)
#[cfg(feature = "luajit")]
pub(crate) unsafe fn tasks_can_run_here(l: *mut lua_State) -> bool {
    use std::cell::Cell;
    thread_local! {
        static FIRED: Cell<bool> = const { Cell::new(false) };
    }
    unsafe extern "C-unwind" fn probe(_l: *mut lua_State, _ar: *mut lua_Debug) {
        FIRED.with(|f| f.set(true));
    }
    const CHUNK: &str = "local a = 1 return a + 1";
    if luaL_loadbuffer(
        l,
        CHUNK.as_ptr().cast(),
        CHUNK.len(),
        c"=llsocket.sim.probe".as_ptr(),
    ) != 0
    {
        lua_error(l);
    }
    let (hook, mask, count) = (lua_gethook(l), lua_gethookmask(l), lua_gethookcount(l));
    FIRED.with(|f| f.set(false));
    lua_sethook(l, Some(probe), LUA_MASKCOUNT, 1);
    let status = lua_pcall(l, 0, 0, 0);
    lua_sethook(l, hook, mask, count);
    if status != 0 {
        lua_pop(l, 1);
    }
    FIRED.with(|f| f.get())
}

/// Whether a C function (other than the running one) is on the running coroutine's
/// stack: Lua 5.1 cannot yield across it.
#[cfg(feature = "lua51")]
unsafe fn c_function_on_stack(l: *mut lua_State) -> bool {
    // SAFETY: lua_Debug is plain C data; lua_getstack fills its private part, which
    // lua_getinfo reads back.
    let mut ar: lua_Debug = std::mem::zeroed();
    let mut level = 1;
    while lua_getstack(l, level, &mut ar) != 0 {
        if lua_getinfo(l, c"S".as_ptr(), &mut ar) != 0
            && !ar.what.is_null()
            && CStr::from_ptr(ar.what).to_bytes() == b"C"
        {
            return true;
        }
        level += 1;
    }
    false
}

/// Raises the report of a task that spins.
unsafe fn spinning(l: *mut lua_State, host: &SimHost, streak: u64, what: &CStr, fd: i32) -> ! {
    if !push_task_name(l, host) {
        lua_pushstring(l, c"?".as_ptr());
    }
    let name = lua_tostring(l, -1);
    let streak = streak.min(i32::MAX as u64) as c_int;
    lua_pushfstring(
        l,
        c"llsocket.sim: task \"%s\" spins: %d calls in a row (the last: %s(fd=%d)) could not \
          go on without waiting, and no other task runs until this one waits: wait with a \
          blocking call, recvable/sendable with a timeout, or coroutine.yield()"
            .as_ptr(),
        name,
        streak,
        what.as_ptr(),
        fd as c_int,
    );
    lua_error(l)
}
