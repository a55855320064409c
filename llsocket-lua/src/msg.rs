//! `llsocket.msghdr`, `llsocket.cmsghdr`, `llsocket.cmsghdrs` and the bodies of
//! `sock:sendmsg` / `sock:recvmsg` (msghdr.md, socket.md §6/§7).
//!
//! A msghdr keeps its attached objects alive with registry references; the
//! control buffer is an [`llsocket_api::CmsgBuf`] (bounds-checked codec).
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};

use llsocket_api::{cmsg, Cmsg, CmsgBuf, Errno, Fd, MsgFlags, SockType};
use mlua::ffi::*;

use crate::addrinfo::Ai;
use crate::iovec::{to_iov, IovRef};
use crate::lua::*;
use crate::socket::Sock;

/// The msghdr userdata: registry references of the attached objects.
#[derive(Debug)]
pub(crate) struct MsgHdr {
    name: c_int,
    iov: c_int,
    control: c_int,
    flags: i32,
}

/// The cmsghdr userdata.
#[derive(Default, Debug)]
pub(crate) struct CmsgHdr {
    msg: Option<Cmsg>,
}

/// The cmsghdrs userdata.
#[derive(Default, Debug)]
pub(crate) struct CmsgHdrs {
    buf: CmsgBuf,
}

/// `msghdr.new()`
pub(crate) unsafe extern "C-unwind" fn mh_new(l: *mut lua_State) -> c_int {
    push_ud(
        l,
        MsgHdr {
            name: LUA_NOREF,
            iov: LUA_NOREF,
            control: LUA_NOREF,
            flags: 0,
        },
        Up::MsgHdr,
    );
    1
}

unsafe fn check_mh(l: *mut lua_State, arg: c_int) -> &'static mut MsgHdr {
    &mut *check_ud::<MsgHdr>(l, arg, Up::MsgHdr, c"llsocket.msghdr")
}

/// Pushes the object behind a reference (nil for none).
unsafe fn push_ref(l: *mut lua_State, r: c_int) {
    if r == LUA_NOREF || r == LUA_REFNIL {
        lua_pushnil(l);
    } else {
        lua_rawgeti(l, LUA_REGISTRYINDEX, r as lua_Integer);
    }
}

/// The shared accessor: returns the current object, sets when an argument is passed.
unsafe fn accessor(
    l: *mut lua_State,
    which: fn(&mut MsgHdr) -> &mut c_int,
    ok: unsafe fn(*mut lua_State) -> bool,
    tname: &CStr,
) -> c_int {
    let mh = check_mh(l, 1);
    let set = lua_gettop(l) >= 2;
    if set && !is_none_or_nil(l, 2) && !ok(l) {
        type_error(l, 2, tname, true);
    }
    let slot = which(mh);
    push_ref(l, *slot);
    if set {
        let new = if is_none_or_nil(l, 2) {
            LUA_NOREF
        } else {
            lua_pushvalue(l, 2);
            luaL_ref(l, LUA_REGISTRYINDEX)
        };
        let old = std::mem::replace(slot, new);
        if old != LUA_NOREF {
            luaL_unref(l, LUA_REGISTRYINDEX, old);
        }
    }
    1
}

unsafe fn is_ai(l: *mut lua_State) -> bool {
    lua_type(l, 2) == LUA_TUSERDATA && has_mt(l, 2, Up::AddrInfo)
}

unsafe fn is_iov(l: *mut lua_State) -> bool {
    to_iov(l, 2).is_some()
}

unsafe fn is_cmsgs(l: *mut lua_State) -> bool {
    lua_type(l, 2) == LUA_TUSERDATA && has_mt(l, 2, Up::CmsgHdrs)
}

/// `mh:name([ai])`
pub(crate) unsafe extern "C-unwind" fn mh_name(l: *mut lua_State) -> c_int {
    accessor(l, |m| &mut m.name, is_ai, c"llsocket.addrinfo")
}

/// `mh:iov([iov])`
pub(crate) unsafe extern "C-unwind" fn mh_iov(l: *mut lua_State) -> c_int {
    accessor(l, |m| &mut m.iov, is_iov, c"iovec")
}

/// `mh:control([cmsgs])`
pub(crate) unsafe extern "C-unwind" fn mh_control(l: *mut lua_State) -> c_int {
    accessor(l, |m| &mut m.control, is_cmsgs, c"llsocket.cmsghdrs")
}

/// `mh:flags()`
pub(crate) unsafe extern "C-unwind" fn mh_flags(l: *mut lua_State) -> c_int {
    push_int(l, check_mh(l, 1).flags as i64);
    1
}

/// `__gc`: drops the references.
pub(crate) unsafe extern "C-unwind" fn mh_gc(l: *mut lua_State) -> c_int {
    let p = lua_touserdata(l, 1) as *mut MsgHdr;
    if let Some(mh) = p.as_mut() {
        for r in [&mut mh.name, &mut mh.iov, &mut mh.control] {
            let old = std::mem::replace(r, LUA_NOREF);
            if old != LUA_NOREF {
                luaL_unref(l, LUA_REGISTRYINDEX, old);
            }
        }
    }
    0
}

/// `__tostring`
pub(crate) unsafe extern "C-unwind" fn mh_tostring(l: *mut lua_State) -> c_int {
    push_tostring(l, c"llsocket.msghdr")
}

/// Borrowed views of a msghdr's attachments for one call.
struct Parts {
    name: Option<*mut Ai>,
    iov: Option<IovRef>,
    control: Option<*mut CmsgHdrs>,
}

/// Resolves the attachments (objects kept alive by the registry references).
unsafe fn parts(l: *mut lua_State, mh: &MsgHdr) -> Parts {
    let mut p = Parts {
        name: None,
        iov: None,
        control: None,
    };
    if mh.name != LUA_NOREF {
        push_ref(l, mh.name);
        p.name = Some(lua_touserdata(l, -1) as *mut Ai);
        lua_pop(l, 1);
    }
    if mh.iov != LUA_NOREF {
        push_ref(l, mh.iov);
        p.iov = to_iov(l, lua_gettop(l));
        lua_pop(l, 1);
    }
    if mh.control != LUA_NOREF {
        push_ref(l, mh.control);
        p.control = Some(lua_touserdata(l, -1) as *mut CmsgHdrs);
        lua_pop(l, 1);
    }
    p
}

/// `sock:sendmsg(mh [, flag ...])` after the self check.
pub(crate) unsafe fn sendmsg(l: *mut lua_State, s: Sock) -> c_int {
    let mh = check_mh(l, 2);
    let flags = check_flags(l, 3);
    let p = parts(l, mh);
    let b = backend(l);
    let r = guard(l, || {
        let (slices, len): (Vec<&[u8]>, usize) = match &p.iov {
            Some(iov) if iov.bytes() > 0 => {
                let parts = iov.parts();
                // SAFETY: the element buffers belong to the attached iovec, alive for this call.
                let s: Vec<&[u8]> = parts
                    .iter()
                    .map(|&(ptr, n)| unsafe { std::slice::from_raw_parts(ptr as *const u8, n) })
                    .collect();
                (s, iov.bytes())
            }
            _ => (vec![&[][..]], 0),
        };
        let control: &[u8] = match p.control {
            Some(c) => (*c).buf.as_bytes(),
            None => &[],
        };
        let to = p.name.map(|a| &(*a).addr);
        b.sendmsg(Fd(s.fd), &slices, control, to, MsgFlags(flags))
            .map(|n| (n, len))
    });
    match r {
        Ok((n, len)) => {
            mh.flags = 0;
            push_int(l, n as i64);
            lua_pushnil(l);
            push_bool(l, n != len);
            3
        }
        Err(e) if e.is_again() => ret_again_zero(l),
        Err(e) => ret_nil_err(l, e, c"sendmsg"),
    }
}

/// `sock:recvmsg(mh [, flag ...])` after the self check.
pub(crate) unsafe fn recvmsg(l: *mut lua_State, s: Sock) -> c_int {
    let mh = check_mh(l, 2);
    let flags = check_flags(l, 3);
    let p = parts(l, mh);
    let b = backend(l);
    let r = guard(l, || {
        let with_iov = p.iov.as_ref().is_some_and(|i| i.bytes() > 0);
        let mut empty = [0u8; 0];
        let mut slices: Vec<&mut [u8]> = match &p.iov {
            // SAFETY: the element buffers are disjoint and belong to the attached iovec.
            Some(iov) if with_iov => iov
                .parts()
                .into_iter()
                .map(|(ptr, n)| unsafe { std::slice::from_raw_parts_mut(ptr, n) })
                .collect(),
            _ => vec![&mut empty[..]],
        };
        let mut scratch = vec![0u8; cmsg::cmsg_space(0)];
        let user_control = p.control.filter(|c| !(**c).buf.is_empty());
        let control: &mut [u8] = match user_control {
            Some(c) => (*c).buf.as_mut_bytes(),
            None => &mut scratch,
        };
        let out = b.recvmsg(Fd(s.fd), &mut slices, control, MsgFlags(flags))?;
        if let Some(c) = user_control {
            (*c).buf.truncate(out.control_len);
        }
        if let (Some(a), Some(addr)) = (p.name, out.addr) {
            (*a).addr = addr;
        }
        Ok::<_, Errno>((
            out.bytes,
            out.flags.0,
            out.control_len,
            user_control.is_some(),
            with_iov,
        ))
    });
    match r {
        Ok((n, fl, clen, had_control, with_iov)) => {
            mh.flags = fl;
            if !(had_control && clen > 0)
                && with_iov
                && n == 0
                && !SockType(s.socktype).is_datagram()
            {
                return 0;
            }
            push_int(l, n as i64);
            1
        }
        Err(e) if e.is_again() => ret_again_nil(l),
        Err(e) => ret_nil_err(l, e, c"recvmsg"),
    }
}

// ---- cmsghdr ---------------------------------------------------------------------------

unsafe fn push_cmsg(l: *mut lua_State, m: Cmsg) {
    push_ud(l, CmsgHdr { msg: Some(m) }, Up::CmsgHdr);
}

/// `cmsghdr.new(level, type, data)`
pub(crate) unsafe extern "C-unwind" fn cm_new(l: *mut lua_State) -> c_int {
    // level and type are checked as passed ("got no value" when missing); only then is the
    // stack padded to three slots, so a missing data argument reports "got nil" (msghdr.md §2)
    let level = check_cint(l, 1);
    let ty = check_cint(l, 2);
    lua_settop(l, 3);
    let data = check_str(l, 3);
    let m = guard(l, || Cmsg {
        level,
        ty,
        data: data.to_vec(),
    });
    push_cmsg(l, m);
    1
}

/// `cmsghdr.rights(fd [, fd ...])`
pub(crate) unsafe extern "C-unwind" fn cm_rights(l: *mut lua_State) -> c_int {
    let top = lua_gettop(l);
    if top == 0 {
        lua_pushnil(l);
        return 1;
    }
    let mut data = Vec::new();
    if data.try_reserve_exact(top as usize * 4).is_err() {
        raise_memory(l);
    }
    let mut data = std::mem::ManuallyDrop::new(data);
    for i in 1..=top {
        let fd = check_cint(l, i);
        data.extend_from_slice(&fd.to_ne_bytes());
    }
    let data = std::mem::ManuallyDrop::into_inner(data);
    let m = Cmsg {
        level: libc::SOL_SOCKET,
        ty: libc::SCM_RIGHTS,
        data,
    };
    push_cmsg(l, m);
    1
}

unsafe fn check_cm(l: *mut lua_State) -> &'static Cmsg {
    let p = &*check_ud::<CmsgHdr>(l, 1, Up::CmsgHdr, c"llsocket.cmsghdr");
    match &p.msg {
        Some(m) => m,
        None => raise_str(l, c"llsocket: finalized cmsghdr"),
    }
}

/// `cmsg:level()`
pub(crate) unsafe extern "C-unwind" fn cm_level(l: *mut lua_State) -> c_int {
    push_int(l, check_cm(l).level as i64);
    1
}

/// `cmsg:type()`
pub(crate) unsafe extern "C-unwind" fn cm_type(l: *mut lua_State) -> c_int {
    push_int(l, check_cm(l).ty as i64);
    1
}

/// `cmsg:data()`: descriptors as multiple integers for SCM_RIGHTS, else the string.
pub(crate) unsafe extern "C-unwind" fn cm_data(l: *mut lua_State) -> c_int {
    let m = check_cm(l);
    if m.is_rights() {
        let n = m.data.len() / 4;
        luaL_checkstack(l, n as c_int, c"too many descriptors".as_ptr());
        for fd in cmsg::decode_fds(&m.data).iter() {
            push_int(l, fd.0 as i64);
        }
        n as c_int
    } else {
        push_bytes(l, &m.data);
        1
    }
}

/// `#cmsg`
pub(crate) unsafe extern "C-unwind" fn cm_len(l: *mut lua_State) -> c_int {
    push_int(l, check_cm(l).data.len() as i64);
    1
}

/// `__gc`
pub(crate) unsafe extern "C-unwind" fn cm_gc(l: *mut lua_State) -> c_int {
    gc_reset::<CmsgHdr>(l);
    0
}

/// `__tostring`
pub(crate) unsafe extern "C-unwind" fn cm_tostring(l: *mut lua_State) -> c_int {
    push_tostring(l, c"llsocket.cmsghdr")
}

// ---- cmsghdrs --------------------------------------------------------------------------

/// `cmsghdrs.new()`
pub(crate) unsafe extern "C-unwind" fn cms_new(l: *mut lua_State) -> c_int {
    push_ud(l, CmsgHdrs::default(), Up::CmsgHdrs);
    1
}

/// `cmsgs:push(cmsg)`: returns nothing.
pub(crate) unsafe extern "C-unwind" fn cms_push(l: *mut lua_State) -> c_int {
    let c = &mut *check_ud::<CmsgHdrs>(l, 1, Up::CmsgHdrs, c"llsocket.cmsghdrs");
    let m = &*check_ud::<CmsgHdr>(l, 2, Up::CmsgHdr, c"llsocket.cmsghdr");
    if let Some(m) = &m.msg {
        guard(l, || c.buf.push(m));
    }
    0
}

/// `cmsgs:shift()`
pub(crate) unsafe extern "C-unwind" fn cms_shift(l: *mut lua_State) -> c_int {
    let c = &mut *check_ud::<CmsgHdrs>(l, 1, Up::CmsgHdrs, c"llsocket.cmsghdrs");
    match guard(l, || c.buf.shift()) {
        Some(m) => push_cmsg(l, m),
        None => lua_pushnil(l),
    }
    1
}

/// `__gc`
pub(crate) unsafe extern "C-unwind" fn cms_gc(l: *mut lua_State) -> c_int {
    gc_reset::<CmsgHdrs>(l);
    0
}

/// `__tostring`
pub(crate) unsafe extern "C-unwind" fn cms_tostring(l: *mut lua_State) -> c_int {
    push_tostring(l, c"llsocket.cmsghdrs")
}

/// `msghdr` module functions, methods, metamethods.
pub(crate) const MH_FUNCS: &[(&CStr, lua_CFunction)] = &[(c"new", mh_new)];
/// `msghdr` methods.
pub(crate) const MH_METHODS: &[(&CStr, lua_CFunction)] = &[
    (c"name", mh_name),
    (c"iov", mh_iov),
    (c"control", mh_control),
    (c"flags", mh_flags),
];
/// `msghdr` metamethods.
pub(crate) const MH_META: &[(&CStr, lua_CFunction)] =
    &[(c"__gc", mh_gc), (c"__tostring", mh_tostring)];

/// `cmsghdr` module functions.
pub(crate) const CM_FUNCS: &[(&CStr, lua_CFunction)] = &[(c"new", cm_new), (c"rights", cm_rights)];
/// `cmsghdr` methods.
pub(crate) const CM_METHODS: &[(&CStr, lua_CFunction)] =
    &[(c"level", cm_level), (c"type", cm_type), (c"data", cm_data)];
/// `cmsghdr` metamethods.
pub(crate) const CM_META: &[(&CStr, lua_CFunction)] = &[
    (c"__gc", cm_gc),
    (c"__tostring", cm_tostring),
    (c"__len", cm_len),
];

/// `cmsghdrs` module functions.
pub(crate) const CMS_FUNCS: &[(&CStr, lua_CFunction)] = &[(c"new", cms_new)];
/// `cmsghdrs` methods.
pub(crate) const CMS_METHODS: &[(&CStr, lua_CFunction)] =
    &[(c"push", cms_push), (c"shift", cms_shift)];
/// `cmsghdrs` metamethods.
pub(crate) const CMS_META: &[(&CStr, lua_CFunction)] =
    &[(c"__gc", cms_gc), (c"__tostring", cms_tostring)];
