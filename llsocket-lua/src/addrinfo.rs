//! `llsocket.addrinfo`: `inet`, `inet6`, `unix`, `getaddrinfo` and the address-info object.
//!
//! The object is plain data: the address in a fixed-size [`RawAddr`] and the canonical
//! name (if any) as payload bytes after it in the same userdata, so it owns nothing a
//! raise or a revived object could leak, and `recvmsg` can overwrite the address in place.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use llsocket_api::addr::Ntop6;
use llsocket_api::{AddrInfo, AddrInfoHints, Errno, Family, Protocol, SockType};
use mlua::ffi::*;

use crate::lua::*;
use crate::types::{
    check_ai_at, push_ai, push_ai_canon, Ai, RawAddr, UnixKind, NO_CANON, UNIX_NAME_CAP,
};

unsafe fn check_ai(l: *mut lua_State) -> &'static Ai {
    &*check_ai_at(l, 1)
}

/// `addrinfo.inet` / `addrinfo.inet6`
unsafe fn inet_common(l: *mut lua_State, v6: bool) -> c_int {
    let text = opt_str(l, 1);
    let port = opt_int(l, 2, 0);
    if !(0..=65535).contains(&port) {
        arg_error(l, 2, c"uint16_t expected, got an out of range value");
    }
    let socktype = opt_cint(l, 3, 0);
    let protocol = opt_cint(l, 4, 0);
    let flags = check_flags(l, 5);
    let text = text.filter(|t| !t.is_empty());
    let port = port as u16;
    let addr = match text {
        None if v6 => Some(RawAddr::V6(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            port,
            0,
            0,
        ))),
        None => Some(RawAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))),
        Some(t) => std::str::from_utf8(t).ok().and_then(|t| {
            if v6 {
                t.parse::<Ipv6Addr>()
                    .ok()
                    .map(|ip| RawAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
            } else {
                t.parse::<Ipv4Addr>()
                    .ok()
                    .map(|ip| RawAddr::V4(SocketAddrV4::new(ip, port)))
            }
        }),
    };
    let family = if v6 { Family::INET6.0 } else { Family::INET.0 };
    match addr {
        Some(addr) => {
            push_ai(
                l,
                Ai::new(cell_ptr(l), family, socktype, protocol, flags, addr),
            );
            1
        }
        None => ret_nil_err(l, Errno::EAFNOSUPPORT, c"inet_pton"),
    }
}

/// `addrinfo.inet([addr [, port [, socktype [, protocol [, flag ...]]]]])`
pub(crate) unsafe extern "C-unwind" fn inet(l: *mut lua_State) -> c_int {
    inet_common(l, false)
}

/// `addrinfo.inet6([addr [, port [, socktype [, protocol [, flag ...]]]]])`
pub(crate) unsafe extern "C-unwind" fn inet6(l: *mut lua_State) -> c_int {
    inet_common(l, true)
}

/// `addrinfo.unix(pathname [, socktype [, protocol [, flag ...]]])`
///
/// Full-size `sockaddr_un` semantics: a name starting with NUL is an abstract
/// name padded with zeros to `unixpath_max - 1` bytes; otherwise the path up to
/// its first NUL. Names are bytes: nothing is decoded or re-encoded.
pub(crate) unsafe extern "C-unwind" fn unix(l: *mut lua_State) -> c_int {
    let path = check_str(l, 1);
    let socktype = opt_cint(l, 2, 0);
    let protocol = opt_cint(l, 3, 0);
    let flags = check_flags(l, 4);
    let b = backend(l);
    let max = guard(l, || b.platform().unix_path_max).min(UNIX_NAME_CAP);
    if path.len() >= max {
        return ret_nil_err(l, Errno::ENAMETOOLONG, c"unix");
    }
    let mut bytes = [0u8; UNIX_NAME_CAP];
    let addr = match path.first() {
        Some(0) => {
            // abstract: the bytes after the NUL, zero-padded to max - 1
            bytes[..path.len() - 1].copy_from_slice(&path[1..]);
            RawAddr::Unix {
                kind: UnixKind::Abstract,
                len: (max - 1) as u8,
                bytes,
            }
        }
        _ => {
            let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
            bytes[..end].copy_from_slice(&path[..end]);
            RawAddr::Unix {
                kind: UnixKind::Path,
                len: end as u8,
                bytes,
            }
        }
    };
    push_ai(
        l,
        Ai::new(cell_ptr(l), Family::UNIX.0, socktype, protocol, flags, addr),
    );
    1
}

/// `addrinfo.getaddrinfo([node [, service [, family [, socktype [, protocol [, flag ...]]]]]])`
pub(crate) unsafe extern "C-unwind" fn getaddrinfo(l: *mut lua_State) -> c_int {
    let node = opt_str(l, 1).filter(|s| !s.is_empty());
    let service = opt_str(l, 2).filter(|s| !s.is_empty());
    let family = opt_cint(l, 3, Family::UNSPEC.0);
    let socktype = opt_cint(l, 4, 0);
    let protocol = opt_cint(l, 5, 0);
    let flags = check_flags(l, 6);
    let hints = AddrInfoHints {
        family: Family(family),
        socktype: SockType(socktype),
        protocol: Protocol(protocol),
        flags,
    };
    let b = backend(l);
    let holder = new_holder(l);
    let r = guard(l, || b.getaddrinfo(node, service, &hints));
    match r {
        Ok(list) => {
            let list: &mut Vec<AddrInfo> = holder.put(list);
            lua_createtable(l, list.len().min(c_int::MAX as usize) as c_int, 0);
            for (i, a) in list.iter().enumerate() {
                let ai = Ai::new(
                    cell_ptr(l),
                    a.family.0,
                    a.socktype.0,
                    a.protocol.0,
                    a.flags,
                    RawAddr::from_sockaddr(&a.addr),
                );
                push_ai_canon(l, ai, a.canonname.as_deref());
                lua_rawseti(l, -2, i as lua_Integer + 1);
            }
            holder.clear();
            1
        }
        Err(e) => {
            lua_pushnil(l);
            push_error(l, ErrKind::Eai, e.code, c"getaddrinfo", None);
            2
        }
    }
}

/// `ai:family()`
pub(crate) unsafe extern "C-unwind" fn m_family(l: *mut lua_State) -> c_int {
    push_int(l, check_ai(l).family as i64);
    1
}

/// `ai:socktype()`
pub(crate) unsafe extern "C-unwind" fn m_socktype(l: *mut lua_State) -> c_int {
    push_int(l, check_ai(l).socktype as i64);
    1
}

/// `ai:protocol()`
pub(crate) unsafe extern "C-unwind" fn m_protocol(l: *mut lua_State) -> c_int {
    push_int(l, check_ai(l).protocol as i64);
    1
}

/// `ai:canonname()`: the name, or no value.
pub(crate) unsafe extern "C-unwind" fn m_canonname(l: *mut lua_State) -> c_int {
    let ai = check_ai(l);
    if ai.canon == NO_CANON {
        return 0;
    }
    let extra = ud_extra::<Ai>(l, 1);
    let n = (ai.canon as usize).min(extra.len());
    push_bytes(l, &extra[..n]);
    1
}

/// `ai:port()`
pub(crate) unsafe extern "C-unwind" fn m_port(l: *mut lua_State) -> c_int {
    let ai = check_ai(l);
    match ai.addr.port() {
        Some(p) if ai.family == Family::INET.0 || ai.family == Family::INET6.0 => {
            push_int(l, p as i64)
        }
        _ => lua_pushnil(l),
    }
    1
}

/// `ai:addr()`: `inet_ntop` text for IP (IPv6 by [`Ntop6`]), the path bytes for unix.
pub(crate) unsafe extern "C-unwind" fn m_addr(l: *mut lua_State) -> c_int {
    let ai = check_ai(l);
    let known = [Family::INET.0, Family::INET6.0, Family::UNIX.0].contains(&ai.family);
    if !known {
        lua_pushnil(l);
        return 1;
    }
    let mut text = [0u8; 64];
    let n = {
        let mut w = &mut text[..];
        let ok = match ai.addr {
            RawAddr::V4(v) => write!(w, "{}", v.ip()).is_ok(),
            RawAddr::V6(v) => write!(w, "{}", Ntop6(*v.ip())).is_ok(),
            RawAddr::Unix {
                kind: UnixKind::Path,
                len,
                bytes,
            } => {
                let name = &bytes[..len as usize];
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                push_bytes(l, &name[..end]);
                return 1;
            }
            RawAddr::Unix { .. } => true,
            RawAddr::Other(_) => false,
        };
        if !ok {
            lua_pushnil(l);
            return 1;
        }
        64 - w.len()
    };
    push_bytes(l, &text[..n]);
    1
}

/// `ai:getnameinfo([flag ...])`
pub(crate) unsafe extern "C-unwind" fn m_getnameinfo(l: *mut lua_State) -> c_int {
    let ai = *check_ai(l);
    let flags = check_flags(l, 2);
    let b = backend_of(l, ai.cell);
    let holder = new_holder(l);
    match guard(l, || b.getnameinfo(&ai.addr.to_sockaddr(), flags)) {
        Ok(info) => {
            let info = holder.put(info);
            lua_createtable(l, 0, 2);
            push_bytes(l, info.host.as_ref());
            lua_setfield(l, -2, c"host".as_ptr());
            push_bytes(l, info.service.as_ref());
            lua_setfield(l, -2, c"service".as_ptr());
            holder.clear();
            1
        }
        Err(e) => {
            lua_pushnil(l);
            push_error(l, ErrKind::Eai, e.code, c"getnameinfo", None);
            2
        }
    }
}

/// `__tostring`
pub(crate) unsafe extern "C-unwind" fn m_tostring(l: *mut lua_State) -> c_int {
    push_tostring(l, c"llsocket.addrinfo")
}

/// The module functions.
pub(crate) const FUNCS: &[(&CStr, lua_CFunction)] = &[
    (c"inet", inet),
    (c"inet6", inet6),
    (c"unix", unix),
    (c"getaddrinfo", getaddrinfo),
];

/// The methods.
pub(crate) const METHODS: &[(&CStr, lua_CFunction)] = &[
    (c"family", m_family),
    (c"socktype", m_socktype),
    (c"protocol", m_protocol),
    (c"canonname", m_canonname),
    (c"port", m_port),
    (c"addr", m_addr),
    (c"getnameinfo", m_getnameinfo),
];

/// Metamethods besides `__index`. No `__gc`: the object is plain data in Lua's memory.
pub(crate) const META: &[(&CStr, lua_CFunction)] = &[(c"__tostring", m_tostring)];
