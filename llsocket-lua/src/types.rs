//! The module's userdata types, in one place below the feature files: their layouts
//! (all plain `Copy` data, see the raised-error model in `lua`), their constructors and
//! self checks, and their metatables, which exist **once per Lua state**.
//!
//! # One type identity per state
//!
//! Like `luaL_newmetatable`, the first loading of the module in a state creates each
//! metatable and stores it in the registry under its type name (`llsocket.socket`, ...);
//! every later loading (another entry point such as `require('llsocket.msghdr')`, a hot
//! reload after `package.loaded.llsocket = nil`, a module over another backend) finds and
//! reuses it, and so do the methods, which are made once with it. Type checks compare
//! against that one metatable, so objects from any loading work with every other, and
//! `__gc` and `unwrap` are the same whichever loading made an object.
//!
//! A metatable we made carries a private marker (a light userdata of this library's own
//! address); a registry entry of the same name without it (another C module that chose
//! the name, or another copy of this library) is refused with a clear error instead of
//! being trusted with our layouts.
//!
//! # Objects remember their backend
//!
//! Sockets, addresses and iovecs record the module instance (the [`BackendCell`]) that
//! made them and always run on its backend, whichever loading's function is called: a
//! socket of a module over the simulator stays on the simulator even when a method is
//! reached through a module over the kernel in the same state. Cells are anchored by a
//! registry reference that is never released, so the pointer stays valid for the life of
//! the state.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, c_void, CStr};
use std::net::{SocketAddrV4, SocketAddrV6};

use llsocket_api::{Family, Fd, SockAddr, SockType, SocketOps, UnixAddr};
use mlua::ffi::*;

use crate::lua::*;

/// A module instance, as recorded in its objects.
pub(crate) type CellPtr = *const BackendCell;

// ---- per-state metatables -----------------------------------------------------------------

/// The registry names of the types, in upvalue order ([`Up::Socket`] ..= [`Up::Iovec`]).
/// Our iovec is not registered as `iovec` (the C rock's `luaL_newmetatable("iovec")`
/// would adopt it), but under a name of ours.
pub(crate) const TYPE_NAMES: [&CStr; 6] = [
    c"llsocket.socket",
    c"llsocket.addrinfo",
    c"llsocket.msghdr",
    c"llsocket.cmsghdr",
    c"llsocket.cmsghdrs",
    c"llsocket.iovec",
];

/// The `__name` each metatable shows (5.3+), in the same order.
const SHOWN_NAMES: [&CStr; 6] = [
    c"llsocket.socket",
    c"llsocket.addrinfo",
    c"llsocket.msghdr",
    c"llsocket.cmsghdr",
    c"llsocket.cmsghdrs",
    c"iovec",
];

/// Registry key of the per-state table (see `lua::STATE_*` for its slots).
pub(crate) const STATE_KEY: &CStr = c"llsocket.state";

/// The marker field of our metatables and state table.
const MARK_FIELD: &CStr = c"__llsocket_rs";
/// Its value is the address of this static: unique to this copy of the library.
static MARK: u8 = 0;

unsafe fn push_mark(l: *mut lua_State) {
    lua_pushlightuserdata(l, std::ptr::addr_of!(MARK) as *mut c_void);
}

/// Marks the table at `idx` as this library's.
pub(crate) unsafe fn mark(l: *mut lua_State, idx: c_int) {
    let idx = lua_absindex(l, idx);
    push_mark(l);
    lua_setfield(l, idx, MARK_FIELD.as_ptr());
}

/// Whether the table at `idx` carries our marker.
pub(crate) unsafe fn is_ours(l: *mut lua_State, idx: c_int) -> bool {
    let idx = lua_absindex(l, idx);
    lua_pushstring(l, MARK_FIELD.as_ptr());
    lua_rawget(l, idx);
    push_mark(l);
    let ours = lua_rawequal(l, -1, -2) != 0;
    lua_pop(l, 2);
    ours
}

/// Pushes the registry entry `name` if it is ours, a new marked table stored there if
/// there is none (`true`), and raises if another module owns the name.
pub(crate) unsafe fn get_or_make(l: *mut lua_State, name: &CStr) -> bool {
    lua_getfield(l, LUA_REGISTRYINDEX, name.as_ptr());
    match lua_type(l, -1) {
        LUA_TNIL => {
            lua_pop(l, 1);
            lua_createtable(l, 0, 8);
            push_mark(l);
            lua_setfield(l, -2, MARK_FIELD.as_ptr());
            lua_pushvalue(l, -1);
            lua_setfield(l, LUA_REGISTRYINDEX, name.as_ptr());
            true
        }
        LUA_TTABLE if is_ours(l, -1) => false,
        _ => {
            lua_pushfstring(
                l,
                c"llsocket: the registry entry '%s' belongs to another module".as_ptr(),
                name.as_ptr(),
            );
            lua_error(l)
        }
    }
}

/// Pushes the per-state table (made on first use: `fresh` is then true) and the six
/// metatables in [`TYPE_NAMES`] order; returns which of those were made now.
pub(crate) unsafe fn push_state_and_types(l: *mut lua_State) -> (bool, [bool; 6]) {
    lua_checkstack(l, 10);
    let fresh = get_or_make(l, STATE_KEY);
    let mut made = [false; 6];
    for (i, name) in TYPE_NAMES.iter().enumerate() {
        made[i] = get_or_make(l, name);
        if made[i] {
            #[cfg(any(feature = "lua53", feature = "lua54"))]
            {
                lua_pushstring(l, SHOWN_NAMES[i].as_ptr());
                lua_setfield(l, -2, c"__name".as_ptr());
            }
            #[cfg(not(any(feature = "lua53", feature = "lua54")))]
            let _ = SHOWN_NAMES[i];
        }
    }
    (fresh, made)
}

// ---- addresses ------------------------------------------------------------------------------

/// Capacity of a unix name in a [`RawAddr`] (`sun_path` is 104–108 bytes everywhere).
pub(crate) const UNIX_NAME_CAP: usize = 128;

/// What a unix [`RawAddr`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnixKind {
    Unnamed,
    Path,
    Abstract,
}

/// A socket address as plain, fixed-size data.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawAddr {
    V4(SocketAddrV4),
    V6(SocketAddrV6),
    Unix {
        kind: UnixKind,
        len: u8,
        bytes: [u8; UNIX_NAME_CAP],
    },
    /// A family we do not model (only the family number is kept).
    Other(i32),
}

impl RawAddr {
    /// The unnamed unix address.
    pub(crate) const UNNAMED: RawAddr = RawAddr::Unix {
        kind: UnixKind::Unnamed,
        len: 0,
        bytes: [0; UNIX_NAME_CAP],
    };

    /// Converts an owned address (a unix name longer than [`UNIX_NAME_CAP`], which no
    /// kernel produces, is cut there).
    pub(crate) fn from_sockaddr(a: &SockAddr) -> RawAddr {
        let unix = |kind, name: &[u8]| {
            let n = name.len().min(UNIX_NAME_CAP);
            let mut bytes = [0u8; UNIX_NAME_CAP];
            bytes[..n].copy_from_slice(&name[..n]);
            RawAddr::Unix {
                kind,
                len: n as u8,
                bytes,
            }
        };
        match a {
            SockAddr::V4(v) => RawAddr::V4(*v),
            SockAddr::V6(v) => RawAddr::V6(*v),
            SockAddr::Unix(UnixAddr::Unnamed) => RawAddr::UNNAMED,
            SockAddr::Unix(UnixAddr::Path(p)) => unix(UnixKind::Path, p),
            SockAddr::Unix(UnixAddr::Abstract(p)) => unix(UnixKind::Abstract, p),
            SockAddr::Other { family, .. } => RawAddr::Other(family.0),
        }
    }

    /// The owned address for a backend call.
    pub(crate) fn to_sockaddr(self) -> SockAddr {
        match self {
            RawAddr::V4(v) => SockAddr::V4(v),
            RawAddr::V6(v) => SockAddr::V6(v),
            RawAddr::Unix { kind, len, bytes } => {
                let name = bytes[..len as usize].to_vec();
                SockAddr::Unix(match kind {
                    UnixKind::Unnamed => UnixAddr::Unnamed,
                    UnixKind::Path => UnixAddr::Path(name),
                    UnixKind::Abstract => UnixAddr::Abstract(name),
                })
            }
            RawAddr::Other(f) => SockAddr::Other {
                family: Family(f),
                data: Vec::new(),
            },
        }
    }

    /// The port of an IP address.
    pub(crate) fn port(&self) -> Option<u16> {
        match self {
            RawAddr::V4(v) => Some(v.port()),
            RawAddr::V6(v) => Some(v.port()),
            _ => None,
        }
    }
}

/// `Ai::canon` when there is no canonical name.
pub(crate) const NO_CANON: u32 = u32::MAX;

/// The addrinfo userdata (plain data; a canonical name follows it as payload bytes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ai {
    pub family: i32,
    pub socktype: i32,
    pub protocol: i32,
    /// Stored like the C object, not readable from Lua.
    #[allow(dead_code)] // kept for parity with the C object's ai_flags
    pub flags: i32,
    pub addr: RawAddr,
    /// Length of the canonical name after the struct, or [`NO_CANON`].
    pub canon: u32,
    /// The module instance (backend) that made it: `getnameinfo` asks that backend.
    pub cell: CellPtr,
}

impl Ai {
    /// An address with the given family/socktype/protocol/flags and no canonical name,
    /// made by the module instance `cell`.
    pub(crate) fn new(
        cell: CellPtr,
        family: i32,
        socktype: i32,
        protocol: i32,
        flags: i32,
        addr: RawAddr,
    ) -> Ai {
        Ai {
            family,
            socktype,
            protocol,
            flags,
            addr,
            canon: NO_CANON,
            cell,
        }
    }

    /// An address stamped with a socket's stored family/socktype/protocol and backend.
    pub(crate) fn from_sock(s: &Sock, addr: RawAddr) -> Ai {
        Ai::new(s.cell, s.family, s.socktype, s.protocol, 0, addr)
    }
}

/// Pushes a new addrinfo object.
pub(crate) unsafe fn push_ai(l: *mut lua_State, ai: Ai) {
    push_ud(l, ai, Up::AddrInfo);
}

/// Pushes a new addrinfo object with a canonical name.
pub(crate) unsafe fn push_ai_canon(l: *mut lua_State, mut ai: Ai, canon: Option<&[u8]>) {
    let name = canon.unwrap_or_default();
    ai.canon = match canon {
        Some(n) => n.len().min(u32::MAX as usize - 1) as u32,
        None => NO_CANON,
    };
    let len = name.len().min(ai.canon as usize);
    push_ud_extra(l, ai, len, Up::AddrInfo);
    ud_extra::<Ai>(l, -1)[..len].copy_from_slice(&name[..len]);
}

/// The addrinfo at `arg`, else a raised type error.
pub(crate) unsafe fn check_ai_at(l: *mut lua_State, arg: c_int) -> *mut Ai {
    check_ud::<Ai>(l, arg, Up::AddrInfo, c"llsocket.addrinfo")
}

// ---- sockets ------------------------------------------------------------------------------

/// The socket userdata: plain data only.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Sock {
    pub fd: i32,
    pub family: i32,
    pub socktype: i32,
    pub protocol: i32,
    /// Set by `__gc`: a finalizer has run on this block (it may still be revived).
    pub finalized: bool,
    /// The module instance (backend) that made it; every method runs on that backend,
    /// whichever loading of the module the method table came from.
    pub cell: CellPtr,
}

impl Sock {
    /// Whether the stored type is a datagram type.
    pub(crate) fn is_dgram(&self) -> bool {
        SockType(self.socktype).is_datagram()
    }

    /// The backend this socket belongs to (raises once the state is closing).
    pub(crate) unsafe fn backend(&self, l: *mut lua_State) -> &'static dyn SocketOps {
        backend_of(l, self.cell)
    }
}

/// `self` of a socket method (metatable compared with the upvalue).
///
/// The block that passed last is remembered in the [`BackendCell`] of the method's own
/// upvalue (the `last_sock` cache; methods are made once per Lua state, so there is one
/// cache per state): the same block again is accepted with two API calls instead of four.
///
/// Why a hit always reads a live `Sock`: only a block that passed the full check *and
/// whose `__gc` has not run* is cached. Such a block cannot be freed before its finalizer
/// runs (sockets get their metatable, which has `__gc`, at creation, and plain Lua cannot
/// change a userdata's metatable), and every way it stops being a live socket clears the
/// entry: `__gc` (which also marks it `finalized`, so a revived socket is checked in full
/// on every call and never cached again: its second death frees it without a finalizer)
/// and `unwrap` (which removes the metatable, so it never passes again). Only the `debug`
/// library (`debug.setmetatable`) could break this, as it can for any C module.
#[inline(always)]
pub(crate) unsafe fn check_sock(l: *mut lua_State) -> &'static mut Sock {
    let p = lua_touserdata(l, 1);
    let cell = cell(l);
    if let Some(c) = cell {
        if !p.is_null() && std::ptr::eq(c.last_sock.get(), p) {
            return &mut *(p as *mut Sock);
        }
    }
    let s = check_ud::<Sock>(l, 1, Up::Socket, c"llsocket.socket");
    if let Some(c) = cell {
        if !(*s).finalized {
            c.last_sock.set(s as *const c_void);
        }
    }
    &mut *s
}

/// Forgets the block at index 1 in the self-check cache (it stops being a live socket).
pub(crate) unsafe fn forget_sock(l: *mut lua_State) {
    if let Some(c) = cell(l) {
        if std::ptr::eq(c.last_sock.get(), lua_touserdata(l, 1)) {
            c.last_sock.set(std::ptr::null());
        }
    }
}

/// Pushes a new socket object owning `fd` (`Fd(-1)`: a shell that owns nothing yet).
///
/// Descriptor-creating calls push the shell *first* and store the descriptor in it as
/// soon as the backend returns, so no later raise can lose it: from then on the object
/// owns it and its `__gc` closes it.
pub(crate) unsafe fn push_sock(
    l: *mut lua_State,
    cell: CellPtr,
    fd: Fd,
    family: i32,
    socktype: i32,
    protocol: i32,
) -> *mut Sock {
    push_ud(
        l,
        Sock {
            fd: fd.0,
            family,
            socktype,
            protocol,
            finalized: false,
            cell,
        },
        Up::Socket,
    )
}

// ---- messages -------------------------------------------------------------------------------

/// The msghdr userdata; the attachments live in its user-value table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MsgHdr {
    pub flags: i32,
}

/// User-value slots of a msghdr.
pub(crate) const MH_NAME: lua_Integer = 1;
pub(crate) const MH_IOV: lua_Integer = 2;
pub(crate) const MH_CONTROL: lua_Integer = 3;

/// The cmsghdr userdata header; the data bytes follow it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CmsgHdr {
    pub level: i32,
    pub ty: i32,
}

/// The cmsghdrs userdata: used length of the buffer blob (user-value slot 1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CmsgHdrs {
    pub len: usize,
}

/// User-value slot of a cmsghdrs' buffer blob.
pub(crate) const CMS_BUF: lua_Integer = 1;

// ---- iovecs ---------------------------------------------------------------------------------

/// Our iovec userdata header; element `i` (1-based) is blob `i` of the user-value table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Iovec {
    pub count: usize,
    pub bytes: usize,
    /// The module instance (backend) that made it: `writev`/`readv` use that backend.
    pub cell: CellPtr,
}

/// The layout of a C lua-iovec rock object.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct CRockIovec {
    pub bytes: usize,
    pub th: *mut lua_State,
    pub r#ref: c_int,
}
