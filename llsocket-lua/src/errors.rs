//! Error objects: lua-errno (`errno`, `errno.eai`) when installed, else the built-in twin.
//!
//! The twin has the same observable surface (DECISIONS.md): type singletons with
//! `name`, `code`, `message` reachable as `errno.EPIPE` / `errno[32]` /
//! `errno.eai.EAI_NONAME`; error objects with `type`, `code`, `op`, `message`
//! and `tostring` = `<where>[<NAME>:<code>][<op>] <strerror text>` (a wrapped
//! error follows on a second line). `<where>` is computed by the calling C
//! function (see `lua::push_error`) and passed as a fifth argument.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};

use llsocket_api::{Errno, GaiError};
use mlua::ffi::*;

use crate::lua::{push_int, set_field};

/// The twin, as Lua code: `(errnos, eais) -> errno_module` with `errno_module.eai`.
const TWIN: &str = r#"
local errnos, eais = ...
local setmetatable, tostring, type, rawget, error = setmetatable, tostring, type, rawget, error
local format = string.format

local function module(list)
    local M, bycode = {}, {}
    for _, e in ipairs(list) do
        local name, code, message = e[1], e[2], e[3]
        local t = bycode[code]
        if not t then
            t = { name = name, code = code, message = message }
            bycode[code] = t
            M[code] = t
        end
        M[name] = t
    end
    local errmt = {}
    local msgmt = {}
    errmt.__tostring = function(err)
        local s = (err.where or '') .. '[' .. tostring(err.type.name) .. ':' ..
            tostring(err.code) .. '][' .. tostring(err.op) .. '] ' .. tostring(err.type.message)
        if err.wrap ~= nil then
            s = s .. '\n' .. tostring(err.wrap)
        end
        return s
    end
    function M.new(code, msg, op, wrap, where)
        -- like lua-errno: only the codes of the table; nothing is added or kept
        local t = rawget(bycode, code)
        if not t then
            error(format('"%s" is not defined', tostring(code)), 0)
        end
        return setmetatable({
            type = t, code = t.code, op = op,
            message = setmetatable({ op = op, message = msg }, msgmt),
            wrap = wrap, where = where,
        }, errmt)
    end
    function M.unwrap(err)
        return type(err) == 'table' and err.wrap or nil
    end
    return M
end

local errno = module(errnos)
errno.eai = module(eais)
return errno
"#;

unsafe fn push_list(l: *mut lua_State, list: &[(&str, i32, String)]) {
    lua_createtable(l, list.len() as c_int, 0);
    for (i, (name, code, msg)) in list.iter().enumerate() {
        lua_createtable(l, 3, 0);
        crate::lua::push_bytes(l, name.as_bytes());
        lua_rawseti(l, -2, 1);
        push_int(l, *code as i64);
        lua_rawseti(l, -2, 2);
        crate::lua::push_bytes(l, msg.as_bytes());
        lua_rawseti(l, -2, 3);
        lua_rawseti(l, -2, i as lua_Integer + 1);
    }
}

/// The `gai_strerror` text for an EAI code.
fn gai_text(code: i32) -> String {
    // SAFETY: gai_strerror returns a pointer to a static string (or NULL).
    let p = unsafe { libc::gai_strerror(code) };
    if p.is_null() {
        return GaiError::new(code).message().to_owned();
    }
    // SAFETY: non-null, NUL-terminated static string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Pushes the twin errno module (with `.eai`).
unsafe fn push_twin(l: *mut lua_State) {
    let errnos = std::mem::ManuallyDrop::new(
        Errno::ALL
            .iter()
            .map(|(n, e)| (*n, e.0, e.message()))
            .collect::<Vec<_>>(),
    );
    let eais = std::mem::ManuallyDrop::new(
        GaiError::ALL
            .iter()
            .map(|(n, c, _)| (*n, *c, gai_text(*c)))
            .collect::<Vec<_>>(),
    );
    if luaL_loadbuffer(
        l,
        TWIN.as_ptr() as *const _,
        TWIN.len(),
        c"=llsocket.errno".as_ptr(),
    ) != 0
    {
        lua_error(l);
    }
    push_list(l, &errnos);
    push_list(l, &eais);
    drop(std::mem::ManuallyDrop::into_inner(errnos));
    drop(std::mem::ManuallyDrop::into_inner(eais));
    lua_call(l, 2, 1);
}

/// `pcall(require, name)`: pushes the module or nothing; returns whether it loaded.
unsafe fn try_require(l: *mut lua_State, name: &CStr) -> bool {
    lua_getglobal(l, c"require".as_ptr());
    if lua_type(l, -1) != LUA_TFUNCTION {
        lua_pop(l, 1);
        return false;
    }
    lua_pushstring(l, name.as_ptr());
    if lua_pcall(l, 1, 1, 0) != 0 || lua_type(l, -1) != LUA_TTABLE {
        lua_pop(l, 1);
        return false;
    }
    true
}

/// Fills the state table at absolute index `state` with `errno`, `eai` and `twin`,
/// and pushes the module to expose as `llsocket.errno`.
pub(crate) unsafe fn setup(l: *mut lua_State, state: c_int) {
    if try_require(l, c"errno") {
        if try_require(l, c"errno.eai") {
            set_field(l, state, c"eai");
            lua_pushvalue(l, -1);
            set_field(l, state, c"errno");
            lua_pushboolean(l, 0);
            set_field(l, state, c"twin");
            return;
        }
        lua_pop(l, 1);
    }
    push_twin(l);
    lua_pushvalue(l, -1);
    set_field(l, state, c"errno");
    lua_getfield(l, -1, c"eai".as_ptr());
    set_field(l, state, c"eai");
    lua_pushboolean(l, 1);
    set_field(l, state, c"twin");
}
