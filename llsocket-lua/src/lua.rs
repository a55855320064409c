//! The raw Lua C API layer: upvalue layout, strict argument checks, error objects, panic guard.
//!
//! Every Lua-visible function of the module is an `extern "C-unwind" fn(*mut lua_State)`
//! with the same eight upvalues (see [`Up`]). Functions follow one shape:
//! (a) check every argument into plain `Copy` data or borrowed pointers (checks may raise),
//! (b) run the work in [`guard`] (no Lua call inside; a panic becomes a Lua error raised
//! after the catch), (c) push results.
//!
//! # The raised-error model
//!
//! Any Lua API call that allocates may raise, and a raise unwinds by `longjmp` (a C++
//! exception on LuaJIT) over our frames without running Rust destructors. It is not only
//! the memory error: before Lua 5.4 an allocation may run a GC step, the step runs pending
//! finalizers, and an error raised in a Lua `__gc` propagates out of that allocation (5.1
//! unprotected, 5.2/5.3 as "error in __gc metamethod", LuaJIT rethrown). So, on every
//! version, the module keeps one rule: **between the first and the last Lua call of a
//! function, no Rust value that owns memory or a descriptor is alive.** Concretely:
//! 1. Every userdata of the module is plain `Copy` data ([`push_ud`] requires it): a
//!    userdata never owns Rust heap, so a raise, a missing finalizer or a revived object
//!    cannot leak or double-free anything.
//! 2. Payload bytes live in Lua's heap: iovec elements, cmsghdrs buffers and cmsghdr data
//!    are blobs ([`new_blob`]) or trailing bytes of their object ([`push_ud_extra`]); the
//!    receive scratch buffer is a blob *taken* out of the state table for the call.
//! 3. Descriptors are stored in their socket object as soon as the backend returns them:
//!    the object is pushed first, as a shell with `fd = -1` (`socket::push_sock`).
//! 4. What the backend returns as owned Rust data (address lists, interface records, a
//!    large receive area) is moved into a [`Holder`] userdata pushed *before* the backend
//!    call; if a push raises, the holder's `__gc` drops it, otherwise the function drops it
//!    with [`Holder::clear`].
//! 5. Every argument is checked before anything is allocated (a bad later argument raises
//!    with nothing made yet).
//!
//! `llsocket-lua/test/safety/raising_gc.lua` tests this on every version with finalizers
//! that raise while armed around one call (descriptors, resident memory, buffers reused),
//! and `cargo xtask ci --step safety` runs it (and the fuzzer) under valgrind as well.
#![allow(unsafe_op_in_unsafe_fn)] // every fn here is an FFI body on a live lua_State; the contract is the module's

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use llsocket_api::{Errno, SocketOps};
use mlua::ffi::*;

/// The upvalues every module function carries, in this order.
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub(crate) enum Up {
    /// Userdata holding the [`BackendCell`].
    Backend = 1,
    /// Private state table: `errno`/`eai` modules or the twin, `twin` flag.
    State = 2,
    /// Metatable of `llsocket.socket` (hot path: self checks compare against it).
    Socket = 3,
    /// Metatable of `llsocket.addrinfo`.
    AddrInfo = 4,
    /// Metatable of `llsocket.msghdr`.
    MsgHdr = 5,
    /// Metatable of `llsocket.cmsghdr`.
    CmsgHdr = 6,
    /// Metatable of `llsocket.cmsghdrs`.
    CmsgHdrs = 7,
    /// Metatable of our own iovec type.
    Iovec = 8,
}

/// How many upvalues each module function has.
pub(crate) const NUP: c_int = 8;

/// The pseudo-index of an upvalue.
pub(crate) fn up(u: Up) -> c_int {
    lua_upvalueindex(u as c_int)
}

/// Receive buffers up to this size use the instance's reusable scratch buffer (a Lua
/// userdata kept in the state table); larger ones get a userdata of their own for the call.
pub(crate) const SCRATCH_MAX: usize = 256 * 1024;

/// Per module instance state held in the userdata that is upvalue 1 of every function.
///
/// It owns no memory sized by Lua input: receive buffers and payloads live in Lua userdata.
#[derive(Default)]
pub(crate) struct BackendCell {
    /// The backend, dropped by the holder's `__gc` (then every call reports an error).
    pub backend: Option<Rc<dyn SocketOps>>,
    /// Identity cache of the socket self check: the last userdata block that passed it
    /// while it was a live (never finalized) socket. See `socket::check_sock`.
    pub last_sock: Cell<*const c_void>,
    /// Set when the simulated world this instance's host belongs to is gone (closed or
    /// collected, see `sim`): every call through the instance then raises.
    pub gone: Cell<bool>,
    /// The simulated host `backend` is, when it is one: the methods that can wait ask it
    /// whether a call parked in a task (see `task`). Dropped with `backend`.
    pub sim: std::cell::OnceCell<Rc<crate::sim::SimHost>>,
}

/// The backend of a cell, or a raised error when it is gone.
#[inline(always)]
unsafe fn cell_backend(l: *mut lua_State, c: Option<&BackendCell>) -> &'static dyn SocketOps {
    // A simulated host's world may need attention first: one of its packet rules is
    // running (the call raises: the world is busy), or a rule left something to do or
    // report (see `sim_rules`).
    if let Some(s) = c.and_then(|c| c.sim.get()) {
        if s.attention() {
            crate::sim_rules::attend_host(l, s);
        }
    }
    match c {
        Some(c) if c.gone.get() => raise_str(l, c"llsocket.sim: the world of this host is gone"),
        Some(BackendCell {
            backend: Some(rc), ..
        }) => {
            // SAFETY: the cell lives in a userdata anchored by a registry reference (and, for
            // the running function's own cell, by its upvalue) until the state closes, so it
            // outlives the call; the reference is used only during the call. A world closed
            // during the call only empties the host the backend forwards to (see
            // `sim::SimHost`); the backend itself stays alive in the cell.
            unsafe { &*Rc::as_ptr(rc) }
        }
        _ => raise_str(l, c"llsocket: backend is gone (state closing)"),
    }
}

/// The running function's [`BackendCell`] (upvalue 1), if it is one.
#[inline(always)]
pub(crate) unsafe fn cell(l: *mut lua_State) -> Option<&'static BackendCell> {
    // SAFETY: upvalue 1 of every module function is the BackendCell userdata; it is kept
    // alive by that upvalue for the whole call.
    (lua_touserdata(l, up(Up::Backend)) as *const BackendCell).as_ref()
}

/// The running function's module instance, as recorded in the objects it makes.
#[inline(always)]
pub(crate) unsafe fn cell_ptr(l: *mut lua_State) -> *const BackendCell {
    lua_touserdata(l, up(Up::Backend)) as *const BackendCell
}

/// The backend of the running function, or a raised error once the state is closing.
pub(crate) unsafe fn backend(l: *mut lua_State) -> &'static dyn SocketOps {
    cell_backend(l, cell(l))
}

/// The backend of the module instance `cell` (an object's creator), or a raised error
/// once the state is closing.
pub(crate) unsafe fn backend_of(
    l: *mut lua_State,
    cell: *const BackendCell,
) -> &'static dyn SocketOps {
    // every cell is anchored by a registry reference that is never released, and at
    // `lua_close` no object is freed before every finalizer has run: an object's cell
    // outlives the object
    cell_backend(l, cell.as_ref())
}

/// The backend of `cell` if it is still there (for `__gc`).
pub(crate) unsafe fn backend_of_opt(cell: *const BackendCell) -> Option<&'static dyn SocketOps> {
    cell.as_ref()
        .and_then(|c| c.backend.as_ref())
        // SAFETY: as in `backend_of`.
        .map(|rc| unsafe { &*Rc::as_ptr(rc) })
}

/// Raises a plain string error.
pub(crate) unsafe fn raise_str(l: *mut lua_State, msg: &CStr) -> ! {
    lua_pushstring(l, msg.as_ptr());
    lua_error(l)
}

/// Raises the host's memory error message.
pub(crate) unsafe fn raise_memory(l: *mut lua_State) -> ! {
    raise_str(l, c"not enough memory")
}

/// Runs `f`, turning a panic into a raised Lua error `llsocket: internal error: ...`.
pub(crate) unsafe fn guard<R>(l: *mut lua_State, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let mut buf = [0u8; 200];
            let text = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("panic");
            let n = text.len().min(buf.len());
            buf[..n].copy_from_slice(&text.as_bytes()[..n]);
            drop(payload);
            lua_pushstring(l, c"llsocket: internal error: ".as_ptr());
            lua_pushlstring(l, buf.as_ptr() as *const c_char, n);
            lua_concat(l, 2);
            lua_error(l)
        }
    }
}

// ---- argument checks ---------------------------------------------------------------

/// The "got <type>" text; with `use_name` (≥ 5.3) a metatable `__name` wins like luaL_typeerror.
unsafe fn push_got(l: *mut lua_State, arg: c_int, use_name: bool) {
    #[cfg(any(feature = "lua53", feature = "lua54"))]
    if use_name {
        let t = luaL_getmetafield(l, arg, c"__name".as_ptr());
        if t == LUA_TSTRING {
            return;
        }
        if t != LUA_TNIL {
            lua_pop(l, 1);
        }
    }
    let _ = use_name;
    if lua_type(l, arg) == LUA_TLIGHTUSERDATA {
        lua_pushstring(l, c"light userdata".as_ptr());
    } else {
        lua_pushstring(l, luaL_typename(l, arg));
    }
}

/// Raises `bad argument #arg to 'f' (<expected> expected, got <type>)`.
pub(crate) unsafe fn type_error(
    l: *mut lua_State,
    arg: c_int,
    expected: &CStr,
    use_name: bool,
) -> ! {
    push_got(l, arg, use_name);
    let got = lua_tostring(l, -1);
    let msg = lua_pushfstring(l, c"%s expected, got %s".as_ptr(), expected.as_ptr(), got);
    luaL_argerror(l, arg, msg);
    unreachable!("luaL_argerror returned")
}

/// Raises `bad argument #arg to 'f' (<detail>)`.
pub(crate) unsafe fn arg_error(l: *mut lua_State, arg: c_int, detail: &CStr) -> ! {
    luaL_argerror(l, arg, detail.as_ptr());
    unreachable!("luaL_argerror returned")
}

/// Whether the argument is absent or nil.
pub(crate) unsafe fn is_none_or_nil(l: *mut lua_State, arg: c_int) -> bool {
    lua_type(l, arg) <= LUA_TNIL
}

/// Strict integer (integer subtype on ≥ 5.3, integral number before).
#[inline]
pub(crate) unsafe fn check_int(l: *mut lua_State, arg: c_int) -> i64 {
    // `lua_isinteger` is false for every non-number (also in the 5.1/5.2 compat version)
    if lua_isinteger(l, arg) != 0 {
        lua_tointeger(l, arg) as i64
    } else {
        type_error(l, arg, c"integer", false)
    }
}

/// Optional strict integer.
#[inline]
pub(crate) unsafe fn opt_int(l: *mut lua_State, arg: c_int, def: i64) -> i64 {
    if lua_isinteger(l, arg) != 0 {
        lua_tointeger(l, arg) as i64
    } else if is_none_or_nil(l, arg) {
        def
    } else {
        type_error(l, arg, c"integer", false)
    }
}

/// Strict integer truncated to a C `int` (as the C casts do).
pub(crate) unsafe fn check_cint(l: *mut lua_State, arg: c_int) -> i32 {
    check_int(l, arg) as i32
}

/// Optional strict integer as a C `int`.
pub(crate) unsafe fn opt_cint(l: *mut lua_State, arg: c_int, def: i32) -> i32 {
    opt_int(l, arg, def as i64) as i32
}

/// Strict string, borrowed from the stack slot (valid while the slot holds it).
pub(crate) unsafe fn check_str(l: *mut lua_State, arg: c_int) -> &'static [u8] {
    if lua_type(l, arg) != LUA_TSTRING {
        type_error(l, arg, c"string", true);
    }
    to_bytes(l, arg)
}

/// The bytes of a string value at `idx` (must be a string).
pub(crate) unsafe fn to_bytes(l: *mut lua_State, idx: c_int) -> &'static [u8] {
    let mut len = 0usize;
    let p = lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        return &[];
    }
    std::slice::from_raw_parts(p as *const u8, len)
}

/// Optional strict string.
pub(crate) unsafe fn opt_str(l: *mut lua_State, arg: c_int) -> Option<&'static [u8]> {
    if is_none_or_nil(l, arg) {
        None
    } else {
        Some(check_str(l, arg))
    }
}

/// Strict boolean.
pub(crate) unsafe fn check_bool(l: *mut lua_State, arg: c_int) -> bool {
    if lua_type(l, arg) != LUA_TBOOLEAN {
        type_error(l, arg, c"boolean", true);
    }
    lua_toboolean(l, arg) != 0
}

/// Optional strict boolean.
pub(crate) unsafe fn opt_bool(l: *mut lua_State, arg: c_int, def: bool) -> bool {
    if is_none_or_nil(l, arg) {
        def
    } else {
        check_bool(l, arg)
    }
}

/// The OR of every flag argument from `from` to the top (integers or nil).
pub(crate) unsafe fn check_flags(l: *mut lua_State, from: c_int) -> i32 {
    let top = lua_gettop(l);
    let mut flags = 0i32;
    for i in from..=top {
        if !is_none_or_nil(l, i) {
            flags |= check_int(l, i) as i32;
        }
    }
    flags
}

/// Whether the value at `arg` has exactly the metatable at upvalue `mt`.
#[inline(always)]
pub(crate) unsafe fn has_mt(l: *mut lua_State, arg: c_int, mt: Up) -> bool {
    if lua_getmetatable(l, arg) == 0 {
        return false;
    }
    let same = lua_rawequal(l, -1, up(mt)) != 0;
    lua_pop(l, 1);
    same
}

/// A userdata of the type whose metatable is upvalue `mt`, else a raised type error.
#[inline(always)]
pub(crate) unsafe fn check_ud<T>(l: *mut lua_State, arg: c_int, mt: Up, tname: &CStr) -> *mut T {
    let p = lua_touserdata(l, arg);
    // a light userdata has no metatable of ours, so the identity check covers it
    if !p.is_null() && has_mt(l, arg, mt) {
        p as *mut T
    } else {
        type_error(l, arg, tname, true)
    }
}

/// Optional userdata of a type.
pub(crate) unsafe fn opt_ud<T>(
    l: *mut lua_State,
    arg: c_int,
    mt: Up,
    tname: &CStr,
) -> Option<*mut T> {
    if is_none_or_nil(l, arg) {
        None
    } else {
        Some(check_ud(l, arg, mt, tname))
    }
}

// ---- pushing ------------------------------------------------------------------------

/// Pushes a byte string.
pub(crate) unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    lua_pushlstring(l, b.as_ptr() as *const c_char, b.len());
}

/// Pushes an integer.
pub(crate) unsafe fn push_int(l: *mut lua_State, v: i64) {
    lua_pushinteger(l, v as lua_Integer);
}

/// Pushes a boolean.
pub(crate) unsafe fn push_bool(l: *mut lua_State, v: bool) {
    lua_pushboolean(l, v as c_int);
}

/// Sets `t[k] = v` where `v` is on top of the stack and `t` at absolute index `t`.
pub(crate) unsafe fn set_field(l: *mut lua_State, t: c_int, k: &CStr) {
    lua_setfield(l, t, k.as_ptr());
}

/// Creates a userdata holding `value` and gives it the metatable at upvalue `mt`.
///
/// `T: Copy`: a userdata of the module never owns Rust heap memory or anything that needs
/// dropping, so a raise anywhere (or a finalizer that never runs) cannot leak it, and a
/// `__gc` has nothing to free twice.
pub(crate) unsafe fn push_ud<T: Copy>(l: *mut lua_State, value: T, mt: Up) -> *mut T {
    push_ud_extra(l, value, 0, mt)
}

/// Like [`push_ud`], with `extra` bytes of payload right after the value (uninitialised
/// until the caller writes them; see [`ud_extra`]).
pub(crate) unsafe fn push_ud_extra<T: Copy>(
    l: *mut lua_State,
    value: T,
    extra: usize,
    mt: Up,
) -> *mut T {
    let size = match std::mem::size_of::<T>().checked_add(extra) {
        Some(n) if n <= MAX_USERDATA => n,
        _ => raise_memory(l),
    };
    let p = lua_newuserdata(l, size) as *mut T;
    std::ptr::write(p, value);
    lua_pushvalue(l, up(mt));
    lua_setmetatable(l, -2);
    p
}

/// The payload bytes after the `T` at the start of the userdata at `idx` (see [`push_ud_extra`]).
pub(crate) unsafe fn ud_extra<T>(l: *mut lua_State, idx: c_int) -> &'static mut [u8] {
    let p = lua_touserdata(l, idx) as *mut u8;
    let len = lua_rawlen(l, idx).saturating_sub(std::mem::size_of::<T>());
    if p.is_null() || len == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(p.add(std::mem::size_of::<T>()), len)
}

// ---- blobs: payload bytes in Lua's heap ------------------------------------------------

/// The largest userdata the interpreter can make; above it a request is Lua's memory
/// error (LuaJIT would say "userdata length overflow", PUC Lua "block too big").
#[cfg(feature = "luajit")]
const MAX_USERDATA: usize = 0x7fff_ff00;
#[cfg(not(feature = "luajit"))]
const MAX_USERDATA: usize = isize::MAX as usize / 2;

/// Pushes a new blob: a plain userdata (no metatable) of `len` bytes, counted by Lua's
/// collector like any other object. A failed allocation raises Lua's memory error.
pub(crate) unsafe fn new_blob(l: *mut lua_State, len: usize) -> &'static mut [u8] {
    if len > MAX_USERDATA {
        raise_memory(l);
    }
    let p = lua_newuserdata(l, len) as *mut u8;
    if len == 0 || p.is_null() {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(p, len)
}

/// Pushes a blob holding a copy of `bytes`.
pub(crate) unsafe fn new_blob_from(l: *mut lua_State, bytes: &[u8]) -> &'static mut [u8] {
    let b = new_blob(l, bytes.len());
    b.copy_from_slice(bytes);
    b
}

/// The bytes of the blob at `idx` (empty when it is not a full userdata).
pub(crate) unsafe fn blob(l: *mut lua_State, idx: c_int) -> &'static mut [u8] {
    if lua_type(l, idx) != LUA_TUSERDATA {
        return &mut [];
    }
    let p = lua_touserdata(l, idx) as *mut u8;
    let len = lua_rawlen(l, idx);
    if p.is_null() || len == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(p, len)
}

/// Pushes a new table as the user value of the userdata at `idx` (and leaves it on top).
pub(crate) unsafe fn new_uservalue(l: *mut lua_State, idx: c_int, narr: c_int) {
    let idx = lua_absindex(l, idx);
    lua_createtable(l, narr, 0);
    lua_pushvalue(l, -1);
    lua_setuservalue(l, idx);
}

/// Pushes the user-value table of the userdata at `idx` (a fresh table is set when the
/// object has none: Lua 5.1 gives new userdata the running function's environment).
pub(crate) unsafe fn uservalue(l: *mut lua_State, idx: c_int) {
    let idx = lua_absindex(l, idx);
    lua_getuservalue(l, idx);
    if lua_type(l, -1) != LUA_TTABLE {
        lua_pop(l, 1);
        new_uservalue(l, idx, 0);
    }
}

// ---- holders: Rust values that must survive a raise -------------------------------------

/// A userdata that owns one Rust value while a function pushes its contents.
///
/// Lists the backend returns (addresses, interfaces) are moved into a holder before the
/// first push; if a push raises, the holder's `__gc` drops the value, otherwise the
/// function drops it itself with [`Holder::clear`]. The holder's metatable is private to
/// the module instance (never handed to Lua code).
pub(crate) struct Holder(Option<Box<dyn std::any::Any>>);

impl Holder {
    /// Moves `value` in and returns it, borrowed for the rest of the call.
    pub(crate) fn put<T: 'static>(&mut self, value: T) -> &'static mut T {
        let b: &mut Box<dyn std::any::Any> = self.0.insert(Box::new(value));
        let t = b
            .downcast_mut::<T>()
            .expect("holder holds the value just put");
        // SAFETY: the box lives in a userdata anchored on the Lua stack for the rest of the
        // call; it is dropped only by `clear` (after the last use) or by the holder's `__gc`
        // (after the call has unwound).
        unsafe { &mut *(t as *mut T) }
    }

    /// Drops the value now.
    pub(crate) fn clear(&mut self) {
        drop(self.0.take());
    }
}

/// Pushes an empty holder (see [`Holder`]).
pub(crate) unsafe fn new_holder(l: *mut lua_State) -> &'static mut Holder {
    let p = lua_newuserdata(l, std::mem::size_of::<Holder>()) as *mut Holder;
    std::ptr::write(p, Holder(None));
    lua_rawgeti(l, up(Up::State), STATE_HOLDER_MT);
    lua_setmetatable(l, -2);
    &mut *p
}

/// Pushes an empty holder whose metatable is at `mt` (a metatable with [`holder_gc`] as
/// `__gc`, private to its module).
pub(crate) unsafe fn new_holder_with(l: *mut lua_State, mt: c_int) -> &'static mut Holder {
    let mt = lua_absindex(l, mt);
    let p = lua_newuserdata(l, std::mem::size_of::<Holder>()) as *mut Holder;
    std::ptr::write(p, Holder(None));
    lua_pushvalue(l, mt);
    lua_setmetatable(l, -2);
    &mut *p
}

/// `__gc` of holders (upvalue 1: the holder metatable).
pub(crate) unsafe extern "C-unwind" fn holder_gc(l: *mut lua_State) -> c_int {
    if lua_type(l, 1) == LUA_TUSERDATA && lua_getmetatable(l, 1) != 0 {
        let same = lua_rawequal(l, -1, lua_upvalueindex(1)) != 0;
        lua_pop(l, 1);
        if same {
            let h = &mut *(lua_touserdata(l, 1) as *mut Holder);
            let _ = catch_unwind(AssertUnwindSafe(|| h.clear()));
        }
    }
    0
}

/// Slot of the state table (upvalue [`Up::State`]) holding the recv scratch blob.
pub(crate) const STATE_SCRATCH: lua_Integer = 1;
/// Slot of the state table holding the holder metatable.
pub(crate) const STATE_HOLDER_MT: lua_Integer = 2;

/// `__tostring`: `<name>: <ptr>` with the host's `%p` rendering.
pub(crate) unsafe fn push_tostring(l: *mut lua_State, name: &CStr) -> c_int {
    lua_pushfstring(l, c"%s: %p".as_ptr(), name.as_ptr(), lua_topointer(l, 1));
    1
}

// ---- error objects ---------------------------------------------------------------------

/// Which error module creates the object.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ErrKind {
    /// `errno.new`
    Errno,
    /// `errno.eai.new`
    Eai,
}

/// Pushes the `<where>` text of the running C function: `in method 'connect': ` etc.
unsafe fn push_where(l: *mut lua_State) {
    // SAFETY: lua_Debug is plain data (ints, pointers, char arrays); all-zero is valid.
    let mut ar: lua_Debug = unsafe { std::mem::MaybeUninit::zeroed().assume_init() };
    if lua_getstack(l, 0, &mut ar) != 0
        && lua_getinfo(l, c"n".as_ptr(), &mut ar) != 0
        && !ar.name.is_null()
    {
        let what = if ar.namewhat.is_null() {
            c""
        } else {
            CStr::from_ptr(ar.namewhat)
        };
        let kind: &CStr = match what.to_bytes() {
            b"global" | b"local" | b"upvalue" => c"function",
            b"" => c"function",
            _ => what,
        };
        lua_pushfstring(l, c"in %s '%s': ".as_ptr(), kind.as_ptr(), ar.name);
    } else {
        lua_pushstring(l, c"?: ".as_ptr());
    }
}

/// Pushes an error object for `code` with op `op`, created by the errno module in use
/// (lua-errno's `new(code, nil, op [, wrap])`, or the twin). `wrap` is an absolute
/// stack index of an inner error object.
pub(crate) unsafe fn push_error(
    l: *mut lua_State,
    kind: ErrKind,
    code: i32,
    op: &CStr,
    wrap: Option<c_int>,
) {
    lua_getfield(l, up(Up::State), c"twin".as_ptr());
    let twin = lua_toboolean(l, -1) != 0;
    lua_pop(l, 1);
    let module = match kind {
        ErrKind::Errno => c"errno",
        ErrKind::Eai => c"eai",
    };
    lua_getfield(l, up(Up::State), module.as_ptr());
    lua_getfield(l, -1, c"new".as_ptr());
    lua_remove(l, -2);
    push_int(l, code as i64);
    lua_pushnil(l);
    lua_pushstring(l, op.as_ptr());
    let mut n = 3;
    if let Some(w) = wrap {
        lua_pushvalue(l, w);
        n += 1;
    }
    if twin {
        if wrap.is_none() {
            lua_pushnil(l);
            n += 1;
        }
        push_where(l);
        n += 1;
    }
    lua_call(l, n, 1);
}

/// Pushes `err(e, op)`.
pub(crate) unsafe fn push_errno(l: *mut lua_State, e: Errno, op: &CStr) {
    push_error(l, ErrKind::Errno, e.0, op, None);
}

/// Returns `nil, err(e, op)`.
pub(crate) unsafe fn ret_nil_err(l: *mut lua_State, e: Errno, op: &CStr) -> c_int {
    lua_pushnil(l);
    push_errno(l, e, op);
    2
}

/// Returns `false, err(e, op)`.
pub(crate) unsafe fn ret_false_err(l: *mut lua_State, e: Errno, op: &CStr) -> c_int {
    lua_pushboolean(l, 0);
    push_errno(l, e, op);
    2
}

/// Returns `nil, nil, true`.
pub(crate) unsafe fn ret_again_nil(l: *mut lua_State) -> c_int {
    lua_pushnil(l);
    lua_pushnil(l);
    lua_pushboolean(l, 1);
    3
}

/// Returns `0, nil, true`.
pub(crate) unsafe fn ret_again_zero(l: *mut lua_State) -> c_int {
    lua_pushinteger(l, 0);
    lua_pushnil(l);
    lua_pushboolean(l, 1);
    3
}

/// Registers functions into the table at absolute index `t`, each with the eight
/// upvalues found at absolute indices `ups..ups+8`.
pub(crate) unsafe fn set_funcs(
    l: *mut lua_State,
    t: c_int,
    ups: c_int,
    funcs: &[(&CStr, lua_CFunction)],
) {
    for (name, f) in funcs {
        for i in 0..NUP {
            lua_pushvalue(l, ups + i);
        }
        lua_pushcclosure(l, *f, NUP);
        lua_setfield(l, t, name.as_ptr());
    }
}
