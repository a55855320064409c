//! `llsocket.device.getifaddrs()` (device.md), the `env` table (env.md) and the constants.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};

use llsocket_api::addr::Ntop6;
use llsocket_api::{IfAddress, Interface, SockAddr, SocketOps};
use mlua::ffi::*;

use crate::lua::*;

/// `getnameinfo(NI_NUMERICHOST)`-style text: IPv6 (inet_ntop rules, [`Ntop6`]) with
/// `%ifname` when it has a scope id. Bytes: interface names are bytes.
fn render(b: &dyn SocketOps, a: &SockAddr) -> Option<Vec<u8>> {
    match a {
        SockAddr::V4(v) => Some(v.ip().to_string().into_bytes()),
        SockAddr::V6(v) if v.scope_id() != 0 => {
            let scope = b
                .if_indextoname(v.scope_id())
                .unwrap_or_else(|_| v.scope_id().to_string().into_bytes());
            let mut t = Ntop6(*v.ip()).to_string().into_bytes();
            t.push(b'%');
            t.extend_from_slice(&scope);
            Some(t)
        }
        SockAddr::V6(v) => Some(Ntop6(*v.ip()).to_string().into_bytes()),
        _ => None,
    }
}

/// One interface rendered to plain data first (no Lua calls while computing).
struct Rendered {
    name: Vec<u8>,
    flags: Vec<&'static str>,
    index: Option<u32>,
    mtu: Option<u32>,
    ether: Option<String>,
    inet: Vec<[Option<Vec<u8>>; 4]>,
    inet6: Vec<[Option<Vec<u8>>; 4]>,
}

fn render_addrs(b: &dyn SocketOps, list: &[IfAddress]) -> Vec<[Option<Vec<u8>>; 4]> {
    list.iter()
        .map(|a| {
            let r = |x: &Option<SockAddr>| x.as_ref().and_then(|x| render(b, x));
            [
                r(&a.address),
                r(&a.netmask),
                r(&a.broadcast),
                r(&a.point2point),
            ]
        })
        .collect()
}

fn render_iface(b: &dyn SocketOps, i: &Interface) -> Rendered {
    Rendered {
        name: i.name.clone(),
        flags: i.flags.names(),
        index: i.index,
        mtu: i.mtu,
        ether: i.hwaddr.as_ref().filter(|h| !h.is_empty()).map(|h| {
            (0..6)
                .map(|k| format!("{:02x}", h.get(k).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(":")
        }),
        inet: render_addrs(b, &i.inet),
        inet6: render_addrs(b, &i.inet6),
    }
}

unsafe fn push_records(l: *mut lua_State, recs: &[[Option<Vec<u8>>; 4]], key: &CStr) {
    if recs.is_empty() {
        return;
    }
    lua_createtable(l, recs.len() as c_int, 0);
    for (i, r) in recs.iter().enumerate() {
        lua_createtable(l, 0, 4);
        for (v, k) in r
            .iter()
            .zip([c"address", c"netmask", c"broadcast", c"point2point"])
        {
            if let Some(v) = v {
                push_bytes(l, v);
                lua_setfield(l, -2, k.as_ptr());
            }
        }
        lua_rawseti(l, -2, i as lua_Integer + 1);
    }
    lua_setfield(l, -2, key.as_ptr());
}

/// `device.getifaddrs()`
pub(crate) unsafe extern "C-unwind" fn getifaddrs(l: *mut lua_State) -> c_int {
    let b = backend(l);
    let holder = new_holder(l);
    let r = guard(l, || {
        b.interfaces()
            .map(|v| v.iter().map(|i| render_iface(b, i)).collect::<Vec<_>>())
    });
    let list = match r {
        Ok(v) => holder.put(v),
        Err(e) => return ret_nil_err(l, e, c"getifaddrs"),
    };
    lua_createtable(l, 0, list.len() as c_int);
    for it in list.iter() {
        push_bytes(l, &it.name);
        lua_createtable(l, 0, 8);
        for f in &it.flags {
            push_bool(l, true);
            lua_pushlstring(l, f.as_ptr() as *const _, f.len());
            lua_insert(l, -2);
            lua_rawset(l, -3);
        }
        if let Some(i) = it.index {
            push_int(l, i as i64);
            lua_setfield(l, -2, c"index".as_ptr());
        }
        if let Some(m) = it.mtu {
            push_int(l, m as i64);
            lua_setfield(l, -2, c"mtu".as_ptr());
        }
        if let Some(e) = &it.ether {
            push_bytes(l, e.as_bytes());
            lua_setfield(l, -2, c"ether".as_ptr());
        }
        push_records(l, &it.inet, c"inet");
        push_records(l, &it.inet6, c"inet6");
        lua_rawset(l, -3);
    }
    holder.clear();
    1
}

/// Pushes the `env` table.
pub(crate) unsafe fn push_env(l: *mut lua_State, b: &dyn SocketOps) {
    let p = guard(l, || b.platform());
    lua_createtable(l, 0, 3);
    push_bytes(l, p.os.as_bytes());
    lua_setfield(l, -2, c"os".as_ptr());
    push_int(l, p.unix_path_max as i64);
    lua_setfield(l, -2, c"unixpath_max".as_ptr());
    push_int(l, p.somaxconn as i64);
    lua_setfield(l, -2, c"somaxconn".as_ptr());
}

/// Sets the constants (presence rule of constants.md) on the table at index `t`.
pub(crate) unsafe fn set_constants(l: *mut lua_State, t: c_int, list: &[(&str, i64)]) {
    for (name, v) in list {
        push_bytes(l, name.as_bytes());
        push_int(l, *v);
        lua_rawset(l, t);
    }
}

/// The module functions.
pub(crate) const FUNCS: &[(&CStr, lua_CFunction)] = &[(c"getifaddrs", getifaddrs)];
