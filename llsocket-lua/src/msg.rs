//! `llsocket.msghdr`, `llsocket.cmsghdr`, `llsocket.cmsghdrs` and the bodies of
//! `sock:sendmsg` / `sock:recvmsg` (msghdr.md, socket.md §6/§7).
//!
//! Every object here is plain data plus Lua-owned parts, so the collector sees all of
//! it and nothing is left to free by hand:
//! - a msghdr keeps its attached objects (name, iov, control) in its user-value table;
//! - a cmsghdr carries its data bytes right after its header in the same userdata;
//! - a cmsghdrs keeps its packed control buffer (native `cmsghdr` layout, see
//!   [`llsocket_api::cmsg`]) in a blob in its user-value table, with spare capacity.
//!
//! None of them has a finalizer: there is nothing to release by hand, so an object kept
//! alive (or revived) by another object's finalizer stays a valid object, and whatever it
//! holds is freed with it.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};

use llsocket_api::{cmsg, Errno, Fd, MsgFlags, SockType};
use mlua::ffi::*;

use crate::iovec::iov_parts;
use crate::lua::*;
use crate::types::{
    Ai, CmsgHdr, CmsgHdrs, MsgHdr, RawAddr, Sock, CMS_BUF, MH_CONTROL, MH_IOV, MH_NAME,
};

/// `msghdr.new()`
pub(crate) unsafe extern "C-unwind" fn mh_new(l: *mut lua_State) -> c_int {
    push_ud(l, MsgHdr { flags: 0 }, Up::MsgHdr);
    new_uservalue(l, -1, 3);
    lua_pop(l, 1);
    1
}

/// The msghdr at `arg`.
unsafe fn check_mh(l: *mut lua_State, arg: c_int) -> &'static mut MsgHdr {
    &mut *check_ud::<MsgHdr>(l, arg, Up::MsgHdr, c"llsocket.msghdr")
}

/// The shared accessor: returns the current object, sets when an argument is passed.
unsafe fn accessor(
    l: *mut lua_State,
    slot: lua_Integer,
    ok: unsafe fn(*mut lua_State) -> bool,
    tname: &CStr,
) -> c_int {
    check_mh(l, 1);
    let set = lua_gettop(l) >= 2;
    if set && !is_none_or_nil(l, 2) && !ok(l) {
        type_error(l, 2, tname, true);
    }
    lua_settop(l, 2);
    uservalue(l, 1); // 3
    lua_rawgeti(l, 3, slot); // 4: the previous object (or nil)
    if set {
        lua_pushvalue(l, 2);
        lua_rawseti(l, 3, slot);
    }
    1
}

unsafe fn is_ai(l: *mut lua_State) -> bool {
    lua_type(l, 2) == LUA_TUSERDATA && has_mt(l, 2, Up::AddrInfo)
}

unsafe fn is_iov(l: *mut lua_State) -> bool {
    crate::iovec::is_iov(l, 2)
}

unsafe fn is_cmsgs(l: *mut lua_State) -> bool {
    lua_type(l, 2) == LUA_TUSERDATA && has_mt(l, 2, Up::CmsgHdrs)
}

/// `mh:name([ai])`
pub(crate) unsafe extern "C-unwind" fn mh_name(l: *mut lua_State) -> c_int {
    accessor(l, MH_NAME, is_ai, c"llsocket.addrinfo")
}

/// `mh:iov([iov])`
pub(crate) unsafe extern "C-unwind" fn mh_iov(l: *mut lua_State) -> c_int {
    accessor(l, MH_IOV, is_iov, c"iovec")
}

/// `mh:control([cmsgs])`
pub(crate) unsafe extern "C-unwind" fn mh_control(l: *mut lua_State) -> c_int {
    accessor(l, MH_CONTROL, is_cmsgs, c"llsocket.cmsghdrs")
}

/// `mh:flags()`
pub(crate) unsafe extern "C-unwind" fn mh_flags(l: *mut lua_State) -> c_int {
    push_int(l, check_mh(l, 1).flags as i64);
    1
}

/// `__tostring`
pub(crate) unsafe extern "C-unwind" fn mh_tostring(l: *mut lua_State) -> c_int {
    push_tostring(l, c"llsocket.msghdr")
}

/// A msghdr's attachments resolved for one call. The objects stay on the Lua stack
/// (anchored) for the whole call; the pointers are valid while they are there.
struct Parts {
    name: Option<*mut Ai>,
    /// `(ptr, len)` of each iovec element (at most `IOV_MAX`) and the total bytes.
    iov: Option<(Vec<(*mut u8, usize)>, usize)>,
    /// The cmsghdrs and its buffer blob.
    control: Option<(*mut CmsgHdrs, &'static mut [u8])>,
}

/// Resolves the attachments of the msghdr at `mh_idx`, pushing each object (re-checked)
/// onto the stack. Makes no allocating Lua call after the iovec list is gathered.
unsafe fn parts(l: *mut lua_State, mh_idx: c_int) -> Parts {
    lua_checkstack(l, 8);
    uservalue(l, mh_idx);
    let t = lua_gettop(l);
    let mut p = Parts {
        name: None,
        iov: None,
        control: None,
    };
    lua_rawgeti(l, t, MH_NAME);
    if lua_type(l, -1) == LUA_TUSERDATA && has_mt(l, -1, Up::AddrInfo) {
        p.name = Some(lua_touserdata(l, -1) as *mut Ai);
    }
    lua_rawgeti(l, t, MH_CONTROL);
    if lua_type(l, -1) == LUA_TUSERDATA && has_mt(l, -1, Up::CmsgHdrs) {
        let c = lua_touserdata(l, -1) as *mut CmsgHdrs;
        let ci = lua_gettop(l);
        uservalue(l, ci);
        lua_rawgeti(l, -1, CMS_BUF);
        let buf = blob(l, -1);
        let len = (*c).len.min(buf.len());
        p.control = Some((c, &mut buf[..len]));
    }
    lua_rawgeti(l, t, MH_IOV);
    let iov_idx = lua_gettop(l);
    p.iov = iov_parts(l, iov_idx, 0, 0);
    p
}

/// `sock:sendmsg(mh [, flag ...])` after the self check.
pub(crate) unsafe fn sendmsg(l: *mut lua_State, s: Sock) -> c_int {
    let mh = check_mh(l, 2);
    let flags = check_flags(l, 3);
    let b = s.backend(l);
    let p = parts(l, 2); // owns a Vec from here: no raising call until the guard has run
    let r = guard(l, move || {
        let (slices, len): (Vec<&[u8]>, usize) = match &p.iov {
            Some((parts, total)) if *total > 0 => {
                // SAFETY: the element buffers belong to the attached iovec, anchored on
                // the stack for this call; no Lua code runs inside the guard.
                let s: Vec<&[u8]> = parts
                    .iter()
                    .map(|&(ptr, n)| unsafe { std::slice::from_raw_parts(ptr as *const u8, n) })
                    .collect();
                (s, *total)
            }
            _ => (vec![&[][..]], 0),
        };
        let control: &[u8] = match &p.control {
            Some((_, buf)) => buf,
            None => &[],
        };
        let to = p.name.map(|a| (*a).addr.to_sockaddr());
        b.sendmsg(Fd(s.fd), &slices, control, to.as_ref(), MsgFlags(flags))
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
    let b = s.backend(l);
    let p = parts(l, 2); // owns a Vec from here: no raising call until the guard has run
    let r = guard(l, move || {
        let with_iov = p.iov.as_ref().is_some_and(|(_, total)| *total > 0);
        let mut empty = [0u8; 0];
        let mut slices: Vec<&mut [u8]> = match &p.iov {
            // SAFETY: the element buffers are disjoint blobs of the attached iovec,
            // anchored on the stack for this call.
            Some((parts, _)) if with_iov => parts
                .iter()
                .map(|&(ptr, n)| unsafe { std::slice::from_raw_parts_mut(ptr, n) })
                .collect(),
            _ => vec![&mut empty[..]],
        };
        let mut scratch = [0u8; cmsg::cmsg_space(0)];
        let (user_control, control): (Option<*mut CmsgHdrs>, &mut [u8]) = match p.control {
            Some((c, buf)) if !buf.is_empty() => (Some(c), buf),
            _ => (None, &mut scratch),
        };
        let out = b.recvmsg(Fd(s.fd), &mut slices, control, MsgFlags(flags))?;
        if let Some(c) = user_control {
            (*c).len = out.control_len.min((*c).len);
        }
        if let (Some(a), Some(addr)) = (p.name, out.addr.as_ref()) {
            (*a).addr = RawAddr::from_sockaddr(addr);
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

/// Pushes a new cmsghdr with a copy of `data`.
unsafe fn push_cmsg(l: *mut lua_State, level: i32, ty: i32, data: &[u8]) {
    let hdr = CmsgHdr { level, ty };
    push_ud_extra(l, hdr, data.len(), Up::CmsgHdr);
    ud_extra::<CmsgHdr>(l, -1)[..data.len()].copy_from_slice(data);
}

/// `cmsghdr.new(level, type, data)`
pub(crate) unsafe extern "C-unwind" fn cm_new(l: *mut lua_State) -> c_int {
    // level and type are checked as passed ("got no value" when missing); only then is the
    // stack padded to three slots, so a missing data argument reports "got nil" (msghdr.md §2)
    let level = check_cint(l, 1);
    let ty = check_cint(l, 2);
    lua_settop(l, 3);
    let data = check_str(l, 3);
    push_cmsg(l, level, ty, data);
    1
}

/// `cmsghdr.rights(fd [, fd ...])`: every argument is checked before anything is allocated.
pub(crate) unsafe extern "C-unwind" fn cm_rights(l: *mut lua_State) -> c_int {
    let top = lua_gettop(l);
    if top == 0 {
        lua_pushnil(l);
        return 1;
    }
    for i in 1..=top {
        check_cint(l, i);
    }
    let n = top as usize * 4;
    let hdr = CmsgHdr {
        level: libc::SOL_SOCKET,
        ty: libc::SCM_RIGHTS,
    };
    push_ud_extra(l, hdr, n, Up::CmsgHdr);
    let data = ud_extra::<CmsgHdr>(l, -1);
    for i in 1..=top {
        let fd = lua_tointeger(l, i) as i32;
        let at = (i as usize - 1) * 4;
        data[at..at + 4].copy_from_slice(&fd.to_ne_bytes());
    }
    1
}

/// `self` of a cmsghdr method: header and data.
unsafe fn check_cm(l: *mut lua_State) -> (CmsgHdr, &'static [u8]) {
    let p = *check_ud::<CmsgHdr>(l, 1, Up::CmsgHdr, c"llsocket.cmsghdr");
    (p, ud_extra::<CmsgHdr>(l, 1))
}

/// `cmsg:level()`
pub(crate) unsafe extern "C-unwind" fn cm_level(l: *mut lua_State) -> c_int {
    push_int(l, check_cm(l).0.level as i64);
    1
}

/// `cmsg:type()`
pub(crate) unsafe extern "C-unwind" fn cm_type(l: *mut lua_State) -> c_int {
    push_int(l, check_cm(l).0.ty as i64);
    1
}

/// `cmsg:data()`: descriptors as multiple integers for SCM_RIGHTS, else the string.
pub(crate) unsafe extern "C-unwind" fn cm_data(l: *mut lua_State) -> c_int {
    let (h, data) = check_cm(l);
    if h.level == libc::SOL_SOCKET && h.ty == libc::SCM_RIGHTS {
        let n = data.len() / 4;
        // more results than a C function can return (and than any stack can hold)
        let Ok(count) = c_int::try_from(n) else {
            raise_str(l, c"llsocket: too many descriptors");
        };
        if count >= c_int::MAX - 64 {
            raise_str(l, c"llsocket: too many descriptors");
        }
        luaL_checkstack(l, count, c"too many descriptors".as_ptr());
        for c in data.chunks_exact(4) {
            push_int(l, i32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as i64);
        }
        count
    } else {
        push_bytes(l, data);
        1
    }
}

/// `#cmsg`
pub(crate) unsafe extern "C-unwind" fn cm_len(l: *mut lua_State) -> c_int {
    push_int(l, check_cm(l).1.len() as i64);
    1
}

/// `__tostring`
pub(crate) unsafe extern "C-unwind" fn cm_tostring(l: *mut lua_State) -> c_int {
    push_tostring(l, c"llsocket.cmsghdr")
}

// ---- cmsghdrs --------------------------------------------------------------------------

/// `cmsghdrs.new()`
pub(crate) unsafe extern "C-unwind" fn cms_new(l: *mut lua_State) -> c_int {
    push_ud(l, CmsgHdrs { len: 0 }, Up::CmsgHdrs);
    new_uservalue(l, -1, 1);
    lua_pop(l, 1);
    1
}

/// `self` of a cmsghdrs method; pushes its user-value table and its buffer blob, in
/// that order.
unsafe fn check_cms(l: *mut lua_State) -> (&'static mut CmsgHdrs, &'static mut [u8]) {
    let c = &mut *check_ud::<CmsgHdrs>(l, 1, Up::CmsgHdrs, c"llsocket.cmsghdrs");
    uservalue(l, 1);
    lua_rawgeti(l, -1, CMS_BUF);
    let buf = blob(l, -1);
    c.len = c.len.min(buf.len());
    (c, buf)
}

/// `cmsgs:push(cmsg)`: returns nothing.
pub(crate) unsafe extern "C-unwind" fn cms_push(l: *mut lua_State) -> c_int {
    let _ = check_ud::<CmsgHdrs>(l, 1, Up::CmsgHdrs, c"llsocket.cmsghdrs");
    let m = *check_ud::<CmsgHdr>(l, 2, Up::CmsgHdr, c"llsocket.cmsghdr");
    lua_settop(l, 2);
    let data = ud_extra::<CmsgHdr>(l, 2);
    let (c, buf) = check_cms(l); // 3: user values, 4: buffer
    let Some(need) = cmsg::checked_space(data.len()).and_then(|n| n.checked_add(c.len)) else {
        raise_memory(l);
    };
    let buf = if need > buf.len() {
        // grow geometrically; the new blob replaces the old one only once it is filled
        let cap = need.max(buf.len().saturating_mul(2)).max(64);
        let grown = new_blob(l, cap);
        grown[..c.len].copy_from_slice(&buf[..c.len]);
        lua_pushvalue(l, -1);
        lua_rawseti(l, 3, CMS_BUF);
        grown
    } else {
        buf
    };
    cmsg::encode_at(&mut buf[c.len..need], m.level, m.ty, data);
    c.len = need;
    0
}

/// `cmsgs:shift()`
pub(crate) unsafe extern "C-unwind" fn cms_shift(l: *mut lua_State) -> c_int {
    let (c, buf) = check_cms(l);
    match cmsg::decode_first_ref(&buf[..c.len]) {
        Some(m) => {
            // the new object first: if it cannot be made, the buffer is unchanged
            push_cmsg(l, m.level, m.ty, m.data);
            let used = m.used;
            buf.copy_within(used..c.len, 0);
            c.len -= used;
        }
        None => {
            c.len = 0;
            lua_pushnil(l);
        }
    }
    1
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
/// `msghdr` metamethods (no `__gc`: see the module docs).
pub(crate) const MH_META: &[(&CStr, lua_CFunction)] = &[(c"__tostring", mh_tostring)];

/// `cmsghdr` module functions.
pub(crate) const CM_FUNCS: &[(&CStr, lua_CFunction)] = &[(c"new", cm_new), (c"rights", cm_rights)];
/// `cmsghdr` methods.
pub(crate) const CM_METHODS: &[(&CStr, lua_CFunction)] =
    &[(c"level", cm_level), (c"type", cm_type), (c"data", cm_data)];
/// `cmsghdr` metamethods.
pub(crate) const CM_META: &[(&CStr, lua_CFunction)] =
    &[(c"__tostring", cm_tostring), (c"__len", cm_len)];

/// `cmsghdrs` module functions.
pub(crate) const CMS_FUNCS: &[(&CStr, lua_CFunction)] = &[(c"new", cms_new)];
/// `cmsghdrs` methods.
pub(crate) const CMS_METHODS: &[(&CStr, lua_CFunction)] =
    &[(c"push", cms_push), (c"shift", cms_shift)];
/// `cmsghdrs` metamethods.
pub(crate) const CMS_META: &[(&CStr, lua_CFunction)] = &[(c"__tostring", cms_tostring)];
