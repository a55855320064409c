//! The raw Lua C API layer: upvalue layout, strict argument checks, error objects, panic guard.
//!
//! Every Lua-visible function of the module is an `extern "C-unwind" fn(*mut lua_State)`
//! with the same eight upvalues (see [`Up`]). Functions follow one shape:
//! (a) check arguments into plain `Copy` data or borrowed pointers (checks may raise),
//! (b) run the work in [`guard`] (a panic becomes a Lua error raised after the catch),
//! (c) push results, with owned Rust values held in `ManuallyDrop` across any push
//! that could raise a memory error.
#![allow(unsafe_op_in_unsafe_fn)] // every fn here is an FFI body on a live lua_State; the contract is the module's

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::ManuallyDrop;
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

/// Receive buffers up to this size come from the instance's scratch buffer ([`BackendCell`]);
/// larger ones are allocated per call (so a huge `recv` does not pin its memory).
pub(crate) const SCRATCH_MAX: usize = 256 * 1024;

/// Per module instance state held in the userdata that is upvalue 1 of every function.
#[derive(Default)]
pub(crate) struct BackendCell {
    /// The backend, dropped by the holder's `__gc` (then every call reports an error).
    pub backend: Option<Rc<dyn SocketOps>>,
    /// Identity cache of the socket self check: the last userdata block that passed it.
    /// Cleared when that block stops being a live socket (`__gc`, `unwrap`).
    pub last_sock: Cell<*const c_void>,
    /// Grow-only receive buffer (zeroed only when it grows) for `recv`/`recvfrom`/`read`.
    pub scratch: RefCell<Vec<u8>>,
}

impl BackendCell {
    /// A cell holding `backend`.
    pub(crate) fn new(backend: Rc<dyn SocketOps>) -> BackendCell {
        BackendCell {
            backend: Some(backend),
            last_sock: Cell::new(std::ptr::null()),
            scratch: RefCell::new(Vec::new()),
        }
    }
}

/// The running function's [`BackendCell`] (upvalue 1), if it is one.
#[inline(always)]
pub(crate) unsafe fn cell(l: *mut lua_State) -> Option<&'static BackendCell> {
    // SAFETY: upvalue 1 of every module function is the BackendCell userdata; it is kept
    // alive by that upvalue for the whole call.
    (lua_touserdata(l, up(Up::Backend)) as *const BackendCell).as_ref()
}

/// The backend of the running function, or a raised error once the state is closing.
pub(crate) unsafe fn backend(l: *mut lua_State) -> &'static dyn SocketOps {
    match cell(l).and_then(|c| c.backend.as_ref()) {
        // SAFETY: the cell lives in a userdata referenced by this function's upvalue,
        // so it outlives the call; the reference is used only during the call.
        Some(rc) => unsafe { &*Rc::as_ptr(rc) },
        None => raise_str(l, c"llsocket: backend is gone (state closing)"),
    }
}

/// The backend if it is still there (for `__gc`).
pub(crate) unsafe fn backend_opt(l: *mut lua_State) -> Option<&'static dyn SocketOps> {
    cell(l)
        .and_then(|c| c.backend.as_ref())
        // SAFETY: as in `backend`.
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

/// Pushes an owned byte vector and frees it afterwards (kept leak-safe across the push).
pub(crate) unsafe fn push_vec(l: *mut lua_State, v: Vec<u8>) {
    let v = ManuallyDrop::new(v);
    push_bytes(l, &v);
    drop(ManuallyDrop::into_inner(v));
}

/// Pushes an owned string and frees it afterwards.
pub(crate) unsafe fn push_string(l: *mut lua_State, s: String) {
    push_vec(l, s.into_bytes());
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
/// The value is leak-safe if the allocation raises.
pub(crate) unsafe fn push_ud<T>(l: *mut lua_State, value: T, mt: Up) -> *mut T {
    let value = ManuallyDrop::new(value);
    let p = lua_newuserdata(l, std::mem::size_of::<T>()) as *mut T;
    std::ptr::write(p, ManuallyDrop::into_inner(value));
    lua_pushvalue(l, up(mt));
    lua_setmetatable(l, -2);
    p
}

/// `__gc` body for a userdata holding a `T: Default`: drops the content and leaves
/// an empty value behind, so a resurrected object stays harmless.
pub(crate) unsafe fn gc_reset<T: Default>(l: *mut lua_State) {
    let p = lua_touserdata(l, 1) as *mut T;
    if let Some(v) = p.as_mut() {
        drop(std::mem::take(v));
    }
}

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
