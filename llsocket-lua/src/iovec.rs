//! Our iovec (`llsocket.iovec`, the lua-iovec 0.6 API with exact element lengths)
//! and read/write access to the C lua-iovec rock's objects (iovec.md §3).
//!
//! `writev`/`readv` go through the backend's `sendmsg`/`recvmsg` (the binding has
//! no platform code), so they work on sockets only; other descriptors give the
//! backend's error (e.g. `ENOTSOCK`).
//!
//! Our metatable has `__name = "iovec"` but is deliberately **not** stored in the
//! registry under `iovec`: the C rock's `luaL_newmetatable("iovec")` would then
//! reuse our table and install its methods on our objects. `msghdr:iov()` tells
//! the two apart by metatable identity.
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};

use llsocket_api::{Errno, Fd, MsgFlags};
use mlua::ffi::*;

use crate::lua::*;

/// `IOV_MAX` (the lua-iovec fallback value, also Linux's).
pub(crate) const IOV_MAX: usize = 1024;

/// Our iovec userdata.
#[derive(Default, Debug)]
pub(crate) struct Iovec {
    pub elems: Vec<Vec<u8>>,
    pub bytes: usize,
}

/// The layout of a C lua-iovec rock object.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct CRockIovec {
    pub bytes: usize,
    pub th: *mut lua_State,
    pub r#ref: c_int,
}

/// Element buffers of either kind of iovec, borrowed for one call.
pub(crate) enum IovRef {
    /// Ours.
    Ours(*mut Iovec),
    /// The C rock's.
    CRock(*mut CRockIovec),
}

impl IovRef {
    /// Total bytes held.
    pub(crate) unsafe fn bytes(&self) -> usize {
        match self {
            IovRef::Ours(p) => (**p).bytes,
            IovRef::CRock(p) => (**p).bytes,
        }
    }

    /// The element buffers (at most `IOV_MAX`), as raw parts.
    pub(crate) unsafe fn parts(&self) -> Vec<(*mut u8, usize)> {
        match self {
            IovRef::Ours(p) => (**p)
                .elems
                .iter_mut()
                .take(IOV_MAX)
                .map(|e| (e.as_mut_ptr(), e.len()))
                .collect(),
            IovRef::CRock(p) => {
                let th = (**p).th;
                if th.is_null() {
                    return Vec::new();
                }
                let n = (lua_gettop(th).max(0) as usize).min(IOV_MAX);
                (1..=n)
                    .filter_map(|i| {
                        let b = lua_touserdata(th, i as c_int) as *mut u8;
                        (!b.is_null()).then(|| (b, libc::strlen(b as *const libc::c_char)))
                    })
                    .collect()
            }
        }
    }
}

/// The iovec at `arg` if it is one of ours or the C rock's, else `None`.
pub(crate) unsafe fn to_iov(l: *mut lua_State, arg: c_int) -> Option<IovRef> {
    if lua_type(l, arg) != LUA_TUSERDATA {
        return None;
    }
    if has_mt(l, arg, Up::Iovec) {
        return Some(IovRef::Ours(lua_touserdata(l, arg) as *mut Iovec));
    }
    if lua_getmetatable(l, arg) == 0 {
        return None;
    }
    lua_getfield(l, LUA_REGISTRYINDEX, c"iovec".as_ptr());
    let same = lua_type(l, -1) == LUA_TTABLE && lua_rawequal(l, -1, -2) != 0;
    lua_pop(l, 2);
    same.then(|| IovRef::CRock(lua_touserdata(l, arg) as *mut CRockIovec))
}

unsafe fn check_iov(l: *mut lua_State) -> &'static mut Iovec {
    &mut *check_ud::<Iovec>(l, 1, Up::Iovec, c"iovec")
}

/// `iovec.new()`
pub(crate) unsafe extern "C-unwind" fn new(l: *mut lua_State) -> c_int {
    push_ud(l, Iovec::default(), Up::Iovec);
    1
}

/// `iov:bytes()`
pub(crate) unsafe extern "C-unwind" fn m_bytes(l: *mut lua_State) -> c_int {
    push_int(l, check_iov(l).bytes as i64);
    1
}

/// `#iov`
pub(crate) unsafe extern "C-unwind" fn m_len(l: *mut lua_State) -> c_int {
    push_int(l, check_iov(l).elems.len() as i64);
    1
}

unsafe fn ret_idx_err(l: *mut lua_State, idx: i64, e: Errno, op: &CStr) -> c_int {
    push_int(l, idx);
    push_errno(l, e, op);
    2
}

/// `iov:add(str)`
pub(crate) unsafe extern "C-unwind" fn m_add(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let s = check_str(l, 2);
    if s.is_empty() {
        return ret_idx_err(l, -3, Errno::EINVAL, c"add");
    }
    if iov.elems.len() >= IOV_MAX {
        return ret_idx_err(l, -1, Errno::ENOBUFS, c"add");
    }
    guard(l, || {
        iov.elems.push(s.to_vec());
        iov.bytes += s.len();
    });
    push_int(l, iov.elems.len() as i64);
    1
}

/// `iov:addn(n)`: an element of `n` spaces.
pub(crate) unsafe extern "C-unwind" fn m_addn(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let n = check_int(l, 2);
    if n < 1 {
        arg_error(l, 2, c"1 or more integer expected, got less than 1");
    }
    if iov.elems.len() >= IOV_MAX {
        return ret_idx_err(l, -1, Errno::ENOBUFS, c"concat");
    }
    let mut v = Vec::new();
    if v.try_reserve_exact(n as usize).is_err() {
        return ret_idx_err(l, -2, Errno::ENOMEM, c"addn");
    }
    guard(l, || {
        v.resize(n as usize, b' ');
        iov.elems.push(v);
        iov.bytes += n as usize;
    });
    push_int(l, iov.elems.len() as i64);
    1
}

unsafe fn index_of(l: *mut lua_State, iov: &Iovec, arg: c_int) -> Option<usize> {
    let idx = check_int(l, arg);
    (idx >= 1 && idx as usize <= iov.elems.len()).then(|| idx as usize - 1)
}

/// `iov:set(str, idx)`
pub(crate) unsafe extern "C-unwind" fn m_set(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let s = check_str(l, 2);
    match index_of(l, iov, 3) {
        Some(i) => {
            guard(l, || {
                iov.bytes = iov.bytes - iov.elems[i].len() + s.len();
                iov.elems[i] = s.to_vec();
            });
            push_bool(l, true);
        }
        None => push_bool(l, false),
    }
    1
}

/// `iov:get(idx)`
pub(crate) unsafe extern "C-unwind" fn m_get(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    match index_of(l, iov, 2) {
        Some(i) => push_bytes(l, &iov.elems[i]),
        None => lua_pushnil(l),
    }
    1
}

/// `iov:del(idx)`
pub(crate) unsafe extern "C-unwind" fn m_del(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    match index_of(l, iov, 2) {
        Some(i) => {
            let v = guard(l, || iov.elems.remove(i));
            iov.bytes -= v.len();
            push_vec(l, v);
        }
        None => lua_pushnil(l),
    }
    1
}

/// The bytes `[offset, offset + nbyte)` of the concatenation (clipped).
fn concat_range(iov: &Iovec, offset: usize, nbyte: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nbyte.min(iov.bytes));
    let mut skip = offset;
    for e in &iov.elems {
        if out.len() >= nbyte {
            break;
        }
        if skip >= e.len() {
            skip -= e.len();
            continue;
        }
        let take = (e.len() - skip).min(nbyte - out.len());
        out.extend_from_slice(&e[skip..skip + take]);
        skip = 0;
    }
    out
}

/// `iov:concat([offset [, nbyte]])`
pub(crate) unsafe extern "C-unwind" fn m_concat(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let offset = opt_int(l, 2, 0).max(0) as usize;
    let nbyte = if is_none_or_nil(l, 3) {
        iov.bytes
    } else {
        check_int(l, 3).max(0) as usize
    };
    let v = guard(l, || concat_range(iov, offset, nbyte));
    push_vec(l, v);
    1
}

/// `iov:consume(nbyte)`
pub(crate) unsafe extern "C-unwind" fn m_consume(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let n = check_int(l, 2);
    if n >= 0 {
        guard(l, || {
            let mut n = n as usize;
            if n >= iov.bytes {
                iov.elems.clear();
                iov.bytes = 0;
                return;
            }
            iov.bytes -= n;
            while n > 0 {
                let first = &mut iov.elems[0];
                if n >= first.len() {
                    n -= first.len();
                    iov.elems.remove(0);
                } else {
                    first.drain(..n);
                    n = 0;
                }
            }
        });
    }
    push_int(l, iov.bytes as i64);
    1
}

/// Offset/nbyte arguments of writev/readv (negative raises).
unsafe fn range_args(l: *mut lua_State) -> (usize, usize) {
    let offset = opt_int(l, 3, 0);
    let nbyte = opt_int(l, 4, 0);
    if offset < 0 {
        arg_error(l, 3, c"uint64_t expected, got an out of range value");
    }
    if nbyte < 0 {
        arg_error(l, 4, c"uint64_t expected, got an out of range value");
    }
    (offset as usize, nbyte as usize)
}

/// The selected `(ptr, len)` parts for `[offset, offset + nbyte)` (nbyte 0 = to the end).
fn select(iov: &mut Iovec, offset: usize, nbyte: usize) -> Vec<(*mut u8, usize)> {
    let mut want = if nbyte == 0 { usize::MAX } else { nbyte };
    let mut skip = offset;
    let mut out = Vec::new();
    for e in iov.elems.iter_mut() {
        if want == 0 || out.len() >= IOV_MAX {
            break;
        }
        if skip >= e.len() {
            skip -= e.len();
            continue;
        }
        let take = (e.len() - skip).min(want);
        // SAFETY: skip < e.len(), so the pointer stays inside the element.
        out.push((unsafe { e.as_mut_ptr().add(skip) }, take));
        want -= take;
        skip = 0;
    }
    out
}

/// `iov:writev(fd [, offset [, nbyte]])` (through the backend's `sendmsg`).
pub(crate) unsafe extern "C-unwind" fn m_writev(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let fd = check_cint(l, 2);
    let (offset, nbyte) = range_args(l);
    let b = backend(l);
    let r = guard(l, || {
        let parts = select(iov, offset, nbyte);
        let total: usize = parts.iter().map(|p| p.1).sum();
        // SAFETY: the parts point into the iovec's elements, alive for this call.
        let slices: Vec<&[u8]> = parts
            .iter()
            .map(|&(p, n)| unsafe { std::slice::from_raw_parts(p as *const u8, n) })
            .collect();
        b.sendmsg(Fd(fd), &slices, &[], None, MsgFlags::NONE)
            .map(|n| (n, total))
    });
    match r {
        Ok((n, total)) => {
            push_int(l, n as i64);
            lua_pushnil(l);
            push_bool(l, n != total);
            3
        }
        Err(e) if e.is_again() => ret_again_zero(l),
        Err(e) if e == Errno::EPIPE => 0,
        Err(e) => ret_nil_err(l, e, c"writev"),
    }
}

/// `iov:readv(fd [, offset [, nbyte]])` (through the backend's `recvmsg`).
pub(crate) unsafe extern "C-unwind" fn m_readv(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let fd = check_cint(l, 2);
    let (offset, nbyte) = range_args(l);
    let b = backend(l);
    let r = guard(l, || {
        let parts = select(iov, offset, nbyte);
        // SAFETY: the parts are disjoint ranges of the iovec's elements, alive for this call.
        let mut slices: Vec<&mut [u8]> = parts
            .iter()
            .map(|&(p, n)| unsafe { std::slice::from_raw_parts_mut(p, n) })
            .collect();
        b.recvmsg(Fd(fd), &mut slices, &mut [], MsgFlags::NONE)
            .map(|o| o.bytes)
    });
    match r {
        Ok(0) => 0,
        Ok(n) => {
            push_int(l, n as i64);
            1
        }
        Err(e) if e.is_again() => ret_again_nil(l),
        Err(e) => ret_nil_err(l, e, c"readv"),
    }
}

/// `__gc`
pub(crate) unsafe extern "C-unwind" fn m_gc(l: *mut lua_State) -> c_int {
    gc_reset::<Iovec>(l);
    0
}

/// `__tostring`
pub(crate) unsafe extern "C-unwind" fn m_tostring(l: *mut lua_State) -> c_int {
    push_tostring(l, c"iovec")
}

/// The module functions.
pub(crate) const FUNCS: &[(&CStr, lua_CFunction)] = &[(c"new", new)];

/// The methods.
pub(crate) const METHODS: &[(&CStr, lua_CFunction)] = &[
    (c"bytes", m_bytes),
    (c"add", m_add),
    (c"addn", m_addn),
    (c"set", m_set),
    (c"get", m_get),
    (c"del", m_del),
    (c"concat", m_concat),
    (c"consume", m_consume),
    (c"writev", m_writev),
    (c"readv", m_readv),
];

/// Metamethods besides `__index`.
pub(crate) const META: &[(&CStr, lua_CFunction)] = &[
    (c"__gc", m_gc),
    (c"__tostring", m_tostring),
    (c"__len", m_len),
];
