//! Builds the module table: backend holder, metatables, sub-tables, constants.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};
use std::mem::ManuallyDrop;
use std::rc::Rc;

use llsocket_api::SocketOps;
use mlua::ffi::*;

use crate::lua::{set_funcs, BackendCell, Up, NUP};
use crate::{addrinfo, device, errors, iovec, msg, socket};

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
        let taken = c.backend.take();
        c.last_sock.set(std::ptr::null());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(taken)));
    }
    0
}

/// Pushes a userdata holding the backend (dropped by its `__gc`) and returns it.
///
/// The userdata and its metatable are made before the backend is moved in, and nothing
/// after the move can raise. (If making them raises, the `Rc` held here is never
/// released: one reference, once, at module load.)
pub(crate) unsafe fn push_backend_cell(
    l: *mut lua_State,
    backend: Rc<dyn SocketOps>,
) -> *mut BackendCell {
    let backend = ManuallyDrop::new(backend);
    let p = lua_newuserdata(l, std::mem::size_of::<BackendCell>()) as *mut BackendCell;
    std::ptr::write(p, BackendCell::default());
    lua_createtable(l, 0, 1);
    lua_pushvalue(l, -1);
    lua_pushcclosure(l, backend_gc, 1);
    lua_setfield(l, -2, c"__gc".as_ptr());
    lua_setmetatable(l, -2);
    (*p).backend = Some(ManuallyDrop::into_inner(backend));
    p
}

/// Creates a metatable; registered under `name` in the registry when `register`.
unsafe fn new_mt(l: *mut lua_State, name: &CStr, register: bool) {
    lua_createtable(l, 0, 6);
    #[cfg(any(feature = "lua53", feature = "lua54"))]
    {
        lua_pushstring(l, name.as_ptr());
        lua_setfield(l, -2, c"__name".as_ptr());
    }
    if register {
        lua_pushvalue(l, -1);
        lua_setfield(l, LUA_REGISTRYINDEX, name.as_ptr());
    }
}

type Funcs = &'static [(&'static CStr, lua_CFunction)];

/// Fills a class metatable (at absolute `mt`) and pushes its module sub-table.
unsafe fn class(
    l: *mut lua_State,
    ups: c_int,
    mt: c_int,
    methods: Funcs,
    meta: Funcs,
    funcs: Funcs,
) {
    lua_createtable(l, 0, methods.len() as c_int);
    let idx = lua_gettop(l);
    set_funcs(l, idx, ups, methods);
    lua_setfield(l, mt, c"__index".as_ptr());
    set_funcs(l, mt, ups, meta);
    lua_createtable(l, 0, funcs.len() as c_int);
    let t = lua_gettop(l);
    set_funcs(l, t, ups, funcs);
}

/// The module's constants: the backend crate's platform set.
fn constants() -> &'static [(&'static str, i64)] {
    crate::backend::constants()
}

/// Builds the module table over `backend` and leaves it on top (returns 1).
pub(crate) unsafe fn build(l: *mut lua_State, backend: Rc<dyn SocketOps>) -> c_int {
    let base = lua_gettop(l);
    let cell = push_backend_cell(l, backend); // base+1
    luaL_checkstack(l, 40, c"llsocket: stack".as_ptr());
    lua_createtable(l, 2, 0); // base+2: state (slots: see lua::STATE_*)
    new_mt(l, c"llsocket.socket", true); // base+3
    new_mt(l, c"llsocket.addrinfo", true);
    new_mt(l, c"llsocket.msghdr", true);
    new_mt(l, c"llsocket.cmsghdr", true);
    new_mt(l, c"llsocket.cmsghdrs", true);
    new_mt(l, c"iovec", false); // base+8
    let ups = base + 1;
    debug_assert_eq!(lua_gettop(l), base + NUP);
    let up = |u: Up| ups + u as c_int - 1;

    // the holder metatable (private: never handed to Lua code)
    lua_createtable(l, 0, 1);
    lua_pushvalue(l, -1);
    lua_pushcclosure(l, crate::lua::holder_gc, 1);
    lua_setfield(l, -2, c"__gc".as_ptr());
    lua_rawseti(l, up(Up::State), crate::lua::STATE_HOLDER_MT);

    errors::setup(l, up(Up::State)); // base+9: errno module
    let errno_mod = lua_gettop(l);

    lua_createtable(l, 0, 200); // base+10: module
    let m = lua_gettop(l);

    // socket (metatable locked)
    class(
        l,
        ups,
        up(Up::Socket),
        socket::METHODS,
        socket::META,
        socket::FUNCS,
    );
    lua_setfield(l, m, c"socket".as_ptr());
    lua_pushinteger(l, 1);
    lua_setfield(l, up(Up::Socket), c"__metatable".as_ptr());

    class(
        l,
        ups,
        up(Up::AddrInfo),
        addrinfo::METHODS,
        addrinfo::META,
        addrinfo::FUNCS,
    );
    lua_setfield(l, m, c"addrinfo".as_ptr());
    class(
        l,
        ups,
        up(Up::MsgHdr),
        msg::MH_METHODS,
        msg::MH_META,
        msg::MH_FUNCS,
    );
    lua_setfield(l, m, c"msghdr".as_ptr());
    class(
        l,
        ups,
        up(Up::CmsgHdr),
        msg::CM_METHODS,
        msg::CM_META,
        msg::CM_FUNCS,
    );
    lua_setfield(l, m, c"cmsghdr".as_ptr());
    class(
        l,
        ups,
        up(Up::CmsgHdrs),
        msg::CMS_METHODS,
        msg::CMS_META,
        msg::CMS_FUNCS,
    );
    lua_setfield(l, m, c"cmsghdrs".as_ptr());
    class(
        l,
        ups,
        up(Up::Iovec),
        iovec::METHODS,
        iovec::META,
        iovec::FUNCS,
    );
    lua_pushinteger(l, iovec::IOV_MAX as lua_Integer);
    lua_setfield(l, -2, c"IOV_MAX".as_ptr());
    lua_setfield(l, m, c"iovec".as_ptr());

    lua_createtable(l, 0, 1);
    let t = lua_gettop(l);
    set_funcs(l, t, ups, device::FUNCS);
    lua_setfield(l, m, c"device".as_ptr());

    // SAFETY: the cell is anchored at base+1 for the whole build and holds the backend.
    let bref: &dyn SocketOps = match (*cell).backend.as_ref() {
        Some(b) => &**b,
        None => crate::lua::raise_str(l, c"llsocket: backend is gone"),
    };
    device::push_env(l, bref);
    lua_setfield(l, m, c"env".as_ptr());

    lua_pushvalue(l, errno_mod);
    lua_setfield(l, m, c"errno".as_ptr());

    device::set_constants(l, m, constants());

    lua_replace(l, base + 1);
    lua_settop(l, base + 1);
    1
}
