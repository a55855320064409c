//! `llsocket.addrinfo`: `inet`, `inet6`, `unix`, `getaddrinfo` and the address-info object.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};
use std::mem::ManuallyDrop;
use std::net::{Ipv4Addr, Ipv6Addr};

use llsocket_api::{AddrInfoHints, Errno, Family, Protocol, SockAddr, SockType, UnixAddr};
use mlua::ffi::*;

use crate::lua::*;
use crate::socket::Sock;

/// The addrinfo userdata.
#[derive(Clone, Debug)]
#[allow(dead_code)] // `flags` is stored like the C object, not readable from Lua
pub(crate) struct Ai {
    pub family: i32,
    pub socktype: i32,
    pub protocol: i32,
    pub flags: i32,
    pub addr: SockAddr,
    pub canonname: Option<String>,
}

impl Default for Ai {
    fn default() -> Ai {
        Ai {
            family: 0,
            socktype: 0,
            protocol: 0,
            flags: 0,
            addr: SockAddr::Unix(UnixAddr::Unnamed),
            canonname: None,
        }
    }
}

impl Ai {
    /// An address stamped with a socket's stored family/socktype/protocol.
    pub(crate) fn from_sock(s: &Sock, addr: SockAddr) -> Ai {
        Ai {
            family: s.family,
            socktype: s.socktype,
            protocol: s.protocol,
            flags: 0,
            addr,
            canonname: None,
        }
    }
}

/// Pushes a new addrinfo object.
pub(crate) unsafe fn push_ai(l: *mut lua_State, ai: Ai) {
    push_ud(l, ai, Up::AddrInfo);
}

unsafe fn check_ai(l: *mut lua_State) -> &'static Ai {
    &*check_ud::<Ai>(l, 1, Up::AddrInfo, c"llsocket.addrinfo")
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
        None if v6 => Some(SockAddr::v6(Ipv6Addr::UNSPECIFIED, port)),
        None => Some(SockAddr::v4(Ipv4Addr::UNSPECIFIED, port)),
        Some(t) => std::str::from_utf8(t).ok().and_then(|t| {
            if v6 {
                t.parse::<Ipv6Addr>().ok().map(|ip| SockAddr::v6(ip, port))
            } else {
                t.parse::<Ipv4Addr>().ok().map(|ip| SockAddr::v4(ip, port))
            }
        }),
    };
    match addr {
        Some(addr) => {
            push_ai(
                l,
                Ai {
                    family: if v6 { Family::INET6.0 } else { Family::INET.0 },
                    socktype,
                    protocol,
                    flags,
                    addr,
                    canonname: None,
                },
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
/// its first NUL.
pub(crate) unsafe extern "C-unwind" fn unix(l: *mut lua_State) -> c_int {
    let path = check_str(l, 1);
    let socktype = opt_cint(l, 2, 0);
    let protocol = opt_cint(l, 3, 0);
    let flags = check_flags(l, 4);
    let b = backend(l);
    let max = guard(l, || b.platform().unix_path_max);
    if path.len() >= max {
        return ret_nil_err(l, Errno::ENAMETOOLONG, c"unix");
    }
    let addr = guard(l, || match path.first() {
        Some(0) => {
            let mut name = path[1..].to_vec();
            name.resize(max - 1, 0);
            SockAddr::Unix(UnixAddr::Abstract(name))
        }
        _ => {
            let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
            SockAddr::unix_path(&path[..end])
        }
    });
    push_ai(
        l,
        Ai {
            family: Family::UNIX.0,
            socktype,
            protocol,
            flags,
            addr,
            canonname: None,
        },
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
    let r = guard(l, || {
        let node = node.map(|n| String::from_utf8_lossy(n).into_owned());
        let service = service.map(|n| String::from_utf8_lossy(n).into_owned());
        b.getaddrinfo(node.as_deref(), service.as_deref(), &hints)
    });
    match r {
        Ok(list) => {
            let list = ManuallyDrop::new(list);
            lua_createtable(l, list.len() as c_int, 0);
            for (i, a) in list.iter().enumerate() {
                push_ai(
                    l,
                    Ai {
                        family: a.family.0,
                        socktype: a.socktype.0,
                        protocol: a.protocol.0,
                        flags: a.flags,
                        addr: a.addr.clone(),
                        canonname: a.canonname.clone(),
                    },
                );
                lua_rawseti(l, -2, i as lua_Integer + 1);
            }
            drop(ManuallyDrop::into_inner(list));
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
    match &check_ai(l).canonname {
        Some(n) => {
            push_bytes(l, n.as_bytes());
            1
        }
        None => 0,
    }
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

/// `ai:addr()`
pub(crate) unsafe extern "C-unwind" fn m_addr(l: *mut lua_State) -> c_int {
    let ai = check_ai(l);
    let known = [Family::INET.0, Family::INET6.0, Family::UNIX.0].contains(&ai.family);
    let text = if known {
        guard(l, || ai.addr.host_text())
    } else {
        None
    };
    match text {
        Some(t) => push_string(l, t),
        None => lua_pushnil(l),
    }
    1
}

/// `ai:getnameinfo([flag ...])`
pub(crate) unsafe extern "C-unwind" fn m_getnameinfo(l: *mut lua_State) -> c_int {
    let ai = check_ai(l);
    let flags = check_flags(l, 2);
    let b = backend(l);
    match guard(l, || b.getnameinfo(&ai.addr, flags)) {
        Ok(info) => {
            let info = ManuallyDrop::new(info);
            lua_createtable(l, 0, 2);
            push_bytes(l, info.host.as_bytes());
            lua_setfield(l, -2, c"host".as_ptr());
            push_bytes(l, info.service.as_bytes());
            lua_setfield(l, -2, c"service".as_ptr());
            drop(ManuallyDrop::into_inner(info));
            1
        }
        Err(e) => {
            lua_pushnil(l);
            push_error(l, ErrKind::Eai, e.code, c"getnameinfo", None);
            2
        }
    }
}

/// `__gc`
pub(crate) unsafe extern "C-unwind" fn m_gc(l: *mut lua_State) -> c_int {
    gc_reset::<Ai>(l);
    0
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

/// Metamethods besides `__index`.
pub(crate) const META: &[(&CStr, lua_CFunction)] = &[(c"__gc", m_gc), (c"__tostring", m_tostring)];
