//! The `llsocket` Lua module (lua-llsocket 0.15 API) over any [`SocketOps`] backend.
//!
//! Map of the crate:
//!
//! | module | what lives there |
//! |---|---|
//! | `lua` | upvalue layout, strict argument checks, error-object creation, panic guard |
//! | `errors` | lua-errno detection and the built-in errno twin |
//! | `socket` | `llsocket.socket` functions and methods |
//! | `addrinfo` | `llsocket.addrinfo` |
//! | `msg` | `msghdr`, `cmsghdr`, `cmsghdrs`, `sendmsg`/`recvmsg` bodies |
//! | `iovec` | `llsocket.iovec` and access to the C lua-iovec rock's objects |
//! | `device` | `device.getifaddrs`, `env`, constants |
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
//! Build variants: `--features lua51|lua52|lua53|lua54|luajit` plus `module` for a
//! loadable `libllsocket.so` (`luaopen_llsocket`), or `vendored` (default, Lua 5.4)
//! for in-process use and the `llsocket-lua` runner.

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
mod socket;

#[cfg(test)]
mod tests;

pub use backend::default_backend;

/// Pushes the `llsocket` module table built over the POSIX backend (`luaopen_llsocket`'s body).
///
/// # Safety
/// `l` must be a valid Lua state of the Lua version this crate was built for,
/// called as a Lua C function or with a protected caller (errors are raised with `lua_error`).
pub unsafe fn open(l: *mut lua_State) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { open_with(l, default_backend()) }
}

/// Pushes the `llsocket` module table built over `backend`; returns 1 (the table).
///
/// Every function of the table keeps the backend alive; it is dropped when the
/// last of them is collected (or the state closes).
///
/// # Safety
/// As for [`open`].
pub unsafe fn open_with(l: *mut lua_State, backend: Rc<dyn SocketOps>) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { module::build(l, backend) }
}

/// The `lua_CFunction` registered as `package.preload.llsocket` by [`preload_with`]:
/// clones the backend from its upvalue and opens the module.
unsafe extern "C-unwind" fn preload_loader(l: *mut lua_State) -> c_int {
    // SAFETY: upvalue 1 is the BackendCell userdata created by `preload_with`.
    unsafe {
        let cell = ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const lua::BackendCell;
        match cell.as_ref().and_then(|c| c.backend.clone()) {
            Some(b) => open_with(l, b),
            None => lua::raise_str(l, c"llsocket: backend is gone"),
        }
    }
}

/// Registers `package.preload.llsocket` in `lua` so that `require('llsocket')`
/// builds the module over `backend` (the simulator uses this).
pub fn preload_with(lua: &mlua::Lua, backend: Rc<dyn SocketOps>) -> mlua::Result<()> {
    let backend = std::mem::ManuallyDrop::new(backend);
    // SAFETY: the closure only pushes a userdata and a C closure on the given state.
    let loader: mlua::Function = unsafe {
        lua.exec_raw((), |l| {
            let b = std::mem::ManuallyDrop::into_inner(backend);
            module::push_backend_cell(l, b);
            ffi::lua_pushcclosure(l, preload_loader, 1);
        })?
    };
    let package: mlua::Table = lua.globals().get("package")?;
    let preload: mlua::Table = package.get("preload")?;
    preload.set("llsocket", loader)
}

/// Registers `package.preload.llsocket` over the POSIX backend.
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
