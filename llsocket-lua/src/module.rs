//! Builds the module table: backend holder, metatables, sub-tables, constants.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};
use std::rc::Rc;

use llsocket_api::SocketOps;
use mlua::ffi::*;

use crate::lua::{set_funcs, BackendCell, Up, NUP};
use crate::{addrinfo, device, errors, iovec, msg, socket, types};

/// `__gc` of the backend holder (upvalue 1: its metatable): drops the backend.
unsafe extern "C-unwind" fn backend_gc(l: *mut lua_State) -> c_int {
    if lua_type(l, 1) != LUA_TUSERDATA || lua_getmetatable(l, 1) == 0 {
        return 0;
    }
    let same = lua_rawequal(l, -1, lua_upvalueindex(1)) != 0;
    lua_pop(l, 1);
    if !same {
        return 0;
    }
    let cell = lua_touserdata(l, 1) as *mut BackendCell;
    if let Some(c) = cell.as_mut() {
        let taken = (c.backend.take(), c.sim.take());
        c.last_sock.set(std::ptr::null());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(taken)));
    }
    0
}

/// Pushes an empty backend cell (a userdata whose `__gc` drops the backend it will hold)
/// and returns it. Everything that can raise happens here: the caller then makes the
/// backend and moves it in with no Lua call in between, so an error (a memory error, a
/// finalizer raising at an allocation) never leaves a backend that nothing owns.
pub(crate) unsafe fn push_empty_cell(l: *mut lua_State) -> *mut BackendCell {
    let p = lua_newuserdata(l, std::mem::size_of::<BackendCell>()) as *mut BackendCell;
    std::ptr::write(p, BackendCell::default());
    lua_createtable(l, 0, 2);
    types::mark(l, -1);
    lua_pushvalue(l, -1);
    lua_pushcclosure(l, backend_gc, 1);
    lua_setfield(l, -2, c"__gc".as_ptr());
    lua_setmetatable(l, -2);
    p
}

/// Anchors the cell on top of the stack for the life of the state (objects point at their
/// cell): a registry reference that is never released.
pub(crate) unsafe fn anchor_cell(l: *mut lua_State) {
    lua_pushvalue(l, -1);
    luaL_ref(l, LUA_REGISTRYINDEX);
}

type Funcs = &'static [(&'static CStr, lua_CFunction)];

/// Fills a class metatable (at absolute `mt`): methods as `__index`, metamethods.
unsafe fn fill_class(l: *mut lua_State, ups: c_int, mt: c_int, methods: Funcs, meta: Funcs) {
    lua_createtable(l, 0, methods.len() as c_int);
    let idx = lua_gettop(l);
    set_funcs(l, idx, ups, methods);
    lua_setfield(l, mt, c"__index".as_ptr());
    set_funcs(l, mt, ups, meta);
}

/// Pushes a module sub-table of functions.
unsafe fn funcs_table(l: *mut lua_State, ups: c_int, funcs: Funcs) {
    lua_createtable(l, 0, funcs.len() as c_int);
    let t = lua_gettop(l);
    set_funcs(l, t, ups, funcs);
}

/// The module's constants: the backend crate's platform set.
fn constants() -> &'static [(&'static str, i64)] {
    crate::backend::constants()
}

/// The classes in upvalue order: methods and metamethods.
const CLASSES: [(Funcs, Funcs); 6] = [
    (socket::METHODS, socket::META),
    (addrinfo::METHODS, addrinfo::META),
    (msg::MH_METHODS, msg::MH_META),
    (msg::CM_METHODS, msg::CM_META),
    (msg::CMS_METHODS, msg::CMS_META),
    (iovec::METHODS, iovec::META),
];

/// Pushes a new backend cell holding what `make` returns, anchored for the life of the
/// state (see [`anchor_cell`]). `make` runs once the cell exists (see [`push_empty_cell`]).
pub(crate) unsafe fn push_anchored_cell(
    l: *mut lua_State,
    make: impl FnOnce() -> Rc<dyn SocketOps>,
) {
    let p = push_empty_cell(l);
    anchor_cell(l);
    (*p).backend = Some(make());
}

/// Pushes the state's one cell over the POSIX backend (made and anchored on first use, so
/// any number of loadings and sub-module entry points share it).
pub(crate) unsafe fn push_posix_cell(l: *mut lua_State) {
    lua_getfield(l, LUA_REGISTRYINDEX, POSIX_CELL_KEY.as_ptr());
    if lua_type(l, -1) == LUA_TUSERDATA && is_cell(l, -1) {
        return;
    }
    lua_pop(l, 1);
    push_anchored_cell(l, crate::backend::default_backend);
    lua_pushvalue(l, -1);
    lua_setfield(l, LUA_REGISTRYINDEX, POSIX_CELL_KEY.as_ptr());
}

/// Registry key of the state's POSIX backend cell.
const POSIX_CELL_KEY: &CStr = c"llsocket.posix";

/// Whether the userdata at `idx` is a backend cell of this library (marked metatable).
unsafe fn is_cell(l: *mut lua_State, idx: c_int) -> bool {
    if lua_getmetatable(l, idx) == 0 {
        return false;
    }
    let ours = types::is_ours(l, -1);
    lua_pop(l, 1);
    ours
}

/// Builds the module table over the backend cell on top of the stack (an anchored one:
/// see [`push_anchored_cell`], [`push_posix_cell`]), replacing it with the table (returns 1).
///
/// The per-state part (metatables with their methods, the error module, the holder
/// metatable, the scratch slot) is made by the first loading in a state and reused by
/// every later one (see `types`); each loading makes its own module functions, bound to
/// its cell's backend.
pub(crate) unsafe fn build(l: *mut lua_State) -> c_int {
    let base = lua_gettop(l) - 1;
    let cell = lua_touserdata(l, base + 1) as *const BackendCell; // base+1
    luaL_checkstack(l, 40, c"llsocket: stack".as_ptr());
    let (_, made) = types::push_state_and_types(l); // base+2: state, base+3..=base+8
    let ups = base + 1;
    debug_assert_eq!(lua_gettop(l), base + NUP);
    let up = |u: Up| ups + u as c_int - 1;
    let state = up(Up::State);

    if lua_rawgeti(l, state, crate::lua::STATE_HOLDER_MT) == LUA_TNIL {
        lua_pop(l, 1);
        // the holder metatable (private: never handed to Lua code)
        lua_createtable(l, 0, 1);
        lua_pushvalue(l, -1);
        lua_pushcclosure(l, crate::lua::holder_gc, 1);
        lua_setfield(l, -2, c"__gc".as_ptr());
        lua_rawseti(l, state, crate::lua::STATE_HOLDER_MT);
        errors::setup(l, state); // the one errno module (or twin) of the state
        lua_setfield(l, state, c"module".as_ptr());
    } else {
        lua_pop(l, 1);
    }

    for (i, (methods, meta)) in CLASSES.iter().enumerate() {
        if made[i] {
            fill_class(l, ups, up(Up::Socket) + i as c_int, methods, meta);
        }
    }
    if made[0] {
        lua_pushinteger(l, 1);
        lua_setfield(l, up(Up::Socket), c"__metatable".as_ptr());
    }

    lua_createtable(l, 0, 200); // base+9: module
    let m = lua_gettop(l);
    for (name, funcs) in [
        (c"socket", socket::FUNCS),
        (c"addrinfo", addrinfo::FUNCS),
        (c"msghdr", msg::MH_FUNCS),
        (c"cmsghdr", msg::CM_FUNCS),
        (c"cmsghdrs", msg::CMS_FUNCS),
        (c"iovec", iovec::FUNCS),
        (c"device", device::FUNCS),
    ] {
        funcs_table(l, ups, funcs);
        lua_setfield(l, m, name.as_ptr());
    }
    lua_getfield(l, m, c"iovec".as_ptr());
    lua_pushinteger(l, iovec::IOV_MAX as lua_Integer);
    lua_setfield(l, -2, c"IOV_MAX".as_ptr());
    lua_pop(l, 1);

    // SAFETY: the cell is anchored at base+1 (and by a registry reference).
    let bref: &dyn SocketOps = match (*cell).backend.as_ref() {
        Some(b) => &**b,
        None => crate::lua::raise_str(l, c"llsocket: backend is gone"),
    };
    device::push_env(l, bref);
    lua_setfield(l, m, c"env".as_ptr());

    lua_getfield(l, state, c"module".as_ptr());
    lua_setfield(l, m, c"errno".as_ptr());

    device::set_constants(l, m, constants());

    lua_replace(l, base + 1);
    lua_settop(l, base + 1);
    1
}
