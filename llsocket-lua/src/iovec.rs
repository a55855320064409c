//! Our iovec (`llsocket.iovec`, the lua-iovec 0.6 API with exact element lengths)
//! and read/write access to the C lua-iovec rock's objects (iovec.md §3).
//!
//! An iovec is a small header (element count, byte count) whose elements are blobs
//! (plain userdata of exactly the element's length) in its user-value table, so the
//! bytes are Lua memory: the collector sees them, a failed allocation is Lua's memory
//! error, and `recvmsg`/`readv` write into them in place. It has no finalizer: nothing
//! needs releasing by hand, and objects without one are freed in a single cycle.
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
use crate::types::{CRockIovec, Iovec};

/// `IOV_MAX` (the lua-iovec fallback value, also Linux's).
pub(crate) const IOV_MAX: usize = 1024;

/// Whether the value at `arg` is one of our iovecs.
unsafe fn is_ours(l: *mut lua_State, arg: c_int) -> bool {
    lua_type(l, arg) == LUA_TUSERDATA && has_mt(l, arg, Up::Iovec)
}

/// Whether the value at `arg` is a C rock iovec (metatable registered as `iovec`).
unsafe fn is_crock(l: *mut lua_State, arg: c_int) -> bool {
    if lua_type(l, arg) != LUA_TUSERDATA || lua_getmetatable(l, arg) == 0 {
        return false;
    }
    lua_getfield(l, LUA_REGISTRYINDEX, c"iovec".as_ptr());
    let same = lua_type(l, -1) == LUA_TTABLE && lua_rawequal(l, -1, -2) != 0;
    lua_pop(l, 2);
    same && lua_rawlen(l, arg) >= std::mem::size_of::<CRockIovec>()
}

/// Whether the value at `arg` is an iovec of either kind (`msghdr:iov` accepts both).
pub(crate) unsafe fn is_iov(l: *mut lua_State, arg: c_int) -> bool {
    is_ours(l, arg) || is_crock(l, arg)
}

/// The element buffers of the iovec (either kind) at `arg` for `[offset, offset + nbyte)`
/// (`nbyte` 0 = to the end), at most `IOV_MAX` of them, with the total byte count of the
/// iovec; `None` when `arg` is no iovec.
///
/// The pointers stay valid while the iovec is anchored and no Lua code runs. The returned
/// `Vec` is Rust memory: callers make no raising Lua call while they hold it.
pub(crate) unsafe fn iov_parts(
    l: *mut lua_State,
    arg: c_int,
    offset: usize,
    nbyte: usize,
) -> Option<(Vec<(*mut u8, usize)>, usize)> {
    let arg = lua_absindex(l, arg);
    if is_ours(l, arg) {
        let iov = *(lua_touserdata(l, arg) as *const Iovec);
        lua_checkstack(l, 2);
        uservalue(l, arg);
        let t = lua_gettop(l);
        let mut out = Vec::with_capacity(iov.count.min(IOV_MAX));
        let (mut skip, mut want) = (offset, if nbyte == 0 { usize::MAX } else { nbyte });
        for i in 1..=iov.count {
            if want == 0 || out.len() >= IOV_MAX {
                break;
            }
            lua_rawgeti(l, t, i as lua_Integer);
            let e = blob(l, -1);
            lua_pop(l, 1);
            if skip >= e.len() {
                skip -= e.len();
                continue;
            }
            let take = (e.len() - skip).min(want);
            out.push((e.as_mut_ptr().add(skip), take));
            want -= take;
            skip = 0;
        }
        lua_pop(l, 1);
        return Some((out, iov.bytes));
    }
    if !is_crock(l, arg) {
        return None;
    }
    let p = lua_touserdata(l, arg) as *const CRockIovec;
    let (bytes, th, r) = ((*p).bytes, (*p).th, (*p).r#ref);
    // The rock's `__gc` sets `ref = LUA_NOREF`: a finalized (possibly revived) object is
    // empty. Otherwise trust the thread pointer only if the registry reference still
    // holds exactly that thread (it keeps it alive).
    if r <= 0 || th.is_null() {
        return Some((Vec::new(), 0));
    }
    lua_rawgeti(l, LUA_REGISTRYINDEX, r as lua_Integer);
    let live = lua_type(l, -1) == LUA_TTHREAD && lua_tothread(l, -1) == th;
    lua_pop(l, 1);
    if !live {
        return Some((Vec::new(), 0));
    }
    let n = (lua_gettop(th).max(0) as usize).min(IOV_MAX);
    let out = (1..=n)
        .filter_map(|i| {
            let b = lua_touserdata(th, i as c_int) as *mut u8;
            (!b.is_null()).then(|| (b, libc::strlen(b as *const libc::c_char)))
        })
        .collect();
    Some((out, bytes))
}

/// `self` of an iovec method.
unsafe fn check_iov(l: *mut lua_State) -> &'static mut Iovec {
    &mut *check_ud::<Iovec>(l, 1, Up::Iovec, c"iovec")
}

/// Pushes the element table of the iovec at 1 and returns its index. Called once every
/// argument has been checked (the checks read absent arguments by position).
unsafe fn elems(l: *mut lua_State) -> c_int {
    uservalue(l, 1);
    lua_gettop(l)
}

/// `iovec.new()`
pub(crate) unsafe extern "C-unwind" fn new(l: *mut lua_State) -> c_int {
    let iov = Iovec {
        count: 0,
        bytes: 0,
        cell: cell_ptr(l),
    };
    push_ud(l, iov, Up::Iovec);
    new_uservalue(l, -1, 0);
    lua_pop(l, 1);
    1
}

/// `iov:bytes()`
pub(crate) unsafe extern "C-unwind" fn m_bytes(l: *mut lua_State) -> c_int {
    push_int(l, check_iov(l).bytes as i64);
    1
}

/// `#iov`
pub(crate) unsafe extern "C-unwind" fn m_len(l: *mut lua_State) -> c_int {
    push_int(l, check_iov(l).count as i64);
    1
}

unsafe fn ret_idx_err(l: *mut lua_State, idx: i64, e: Errno, op: &CStr) -> c_int {
    push_int(l, idx);
    push_errno(l, e, op);
    2
}

/// Appends the blob on top of the stack as a new element of the iovec (table at `t`).
unsafe fn append(l: *mut lua_State, iov: &mut Iovec, t: c_int) -> c_int {
    let len = lua_rawlen(l, -1);
    lua_rawseti(l, t, iov.count as lua_Integer + 1);
    iov.count += 1;
    iov.bytes += len;
    push_int(l, iov.count as i64);
    1
}

/// `iov:add(str)`
pub(crate) unsafe extern "C-unwind" fn m_add(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let s = check_str(l, 2);
    if s.is_empty() {
        return ret_idx_err(l, -3, Errno::EINVAL, c"add");
    }
    if iov.count >= IOV_MAX {
        return ret_idx_err(l, -1, Errno::ENOBUFS, c"add");
    }
    let t = elems(l);
    new_blob_from(l, s);
    append(l, iov, t)
}

/// `iov:addn(n)`: an element of `n` spaces.
pub(crate) unsafe extern "C-unwind" fn m_addn(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let n = check_int(l, 2);
    if n < 1 {
        arg_error(l, 2, c"1 or more integer expected, got less than 1");
    }
    if iov.count >= IOV_MAX {
        return ret_idx_err(l, -1, Errno::ENOBUFS, c"concat");
    }
    let Ok(n) = usize::try_from(n) else {
        raise_memory(l)
    };
    let t = elems(l);
    new_blob(l, n).fill(b' ');
    append(l, iov, t)
}

unsafe fn index_of(l: *mut lua_State, iov: &Iovec, arg: c_int) -> Option<usize> {
    let idx = check_int(l, arg);
    (idx >= 1 && idx as u64 <= iov.count as u64).then_some(idx as usize)
}

/// `iov:set(str, idx)`
pub(crate) unsafe extern "C-unwind" fn m_set(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let s = check_str(l, 2);
    match index_of(l, iov, 3) {
        Some(i) => {
            let t = elems(l);
            new_blob_from(l, s);
            lua_rawgeti(l, t, i as lua_Integer);
            let old = lua_rawlen(l, -1);
            lua_pop(l, 1);
            lua_rawseti(l, t, i as lua_Integer);
            iov.bytes = iov.bytes - old + s.len();
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
        Some(i) => {
            let t = elems(l);
            lua_rawgeti(l, t, i as lua_Integer);
            push_bytes(l, blob(l, -1));
        }
        None => lua_pushnil(l),
    }
    1
}

/// Removes the first `k` elements of the table at `t` (later ones shift down).
unsafe fn drop_front(l: *mut lua_State, iov: &mut Iovec, t: c_int, from: usize, k: usize) {
    if k == 0 {
        return;
    }
    for i in from..=iov.count {
        if i + k <= iov.count {
            lua_rawgeti(l, t, (i + k) as lua_Integer);
        } else {
            lua_pushnil(l);
        }
        lua_rawseti(l, t, i as lua_Integer);
    }
    iov.count -= k;
}

/// `iov:del(idx)`
pub(crate) unsafe extern "C-unwind" fn m_del(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    match index_of(l, iov, 2) {
        Some(i) => {
            let t = elems(l);
            lua_rawgeti(l, t, i as lua_Integer);
            let e = blob(l, -1);
            let len = e.len();
            push_bytes(l, e); // the result first: if it raises, nothing changed
            drop_front(l, iov, t, i, 1);
            iov.bytes -= len;
        }
        None => lua_pushnil(l),
    }
    1
}

/// `iov:concat([offset [, nbyte]])`
pub(crate) unsafe extern "C-unwind" fn m_concat(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let offset = opt_int(l, 2, 0).max(0) as u64;
    let nbyte = if is_none_or_nil(l, 3) {
        iov.bytes as u64
    } else {
        check_int(l, 3).max(0) as u64
    };
    let t = elems(l);
    let total = (iov.bytes as u64).saturating_sub(offset).min(nbyte) as usize;
    let count = iov.count;
    let out = new_blob(l, total); // may raise: nothing is held yet
    let (mut skip, mut at) = (offset as usize, 0usize);
    for i in 1..=count {
        if at >= total {
            break;
        }
        lua_rawgeti(l, t, i as lua_Integer);
        let e = blob(l, -1);
        lua_pop(l, 1);
        if skip >= e.len() {
            skip -= e.len();
            continue;
        }
        let take = (e.len() - skip).min(total - at);
        out[at..at + take].copy_from_slice(&e[skip..skip + take]);
        at += take;
        skip = 0;
    }
    push_bytes(l, &out[..at]);
    1
}

/// `iov:consume(nbyte)`
pub(crate) unsafe extern "C-unwind" fn m_consume(l: *mut lua_State) -> c_int {
    let iov = check_iov(l);
    let n = check_int(l, 2);
    let t = elems(l);
    if n >= 0 {
        let n = n as u64;
        if n >= iov.bytes as u64 {
            drop_front(l, iov, t, 1, iov.count);
            iov.bytes = 0;
        } else {
            let mut n = n as usize;
            // whole elements first, then the front of a partly consumed one
            let mut whole = 0;
            let mut freed = 0;
            for i in 1..=iov.count {
                lua_rawgeti(l, t, i as lua_Integer);
                let len = lua_rawlen(l, -1);
                if n >= len {
                    n -= len;
                    freed += len;
                    whole += 1;
                    lua_pop(l, 1);
                    continue;
                }
                if n > 0 {
                    // the replacement is made before anything changes (it may raise)
                    let e = blob(l, -1);
                    new_blob_from(l, &e[n..]);
                    lua_rawseti(l, t, i as lua_Integer);
                    freed += n;
                }
                lua_pop(l, 1);
                break;
            }
            drop_front(l, iov, t, 1, whole);
            iov.bytes -= freed;
        }
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

/// `iov:writev(fd [, offset [, nbyte]])` (through the backend's `sendmsg`).
pub(crate) unsafe extern "C-unwind" fn m_writev(l: *mut lua_State) -> c_int {
    let cell = check_iov(l).cell;
    let fd = check_cint(l, 2);
    let (offset, nbyte) = range_args(l);
    let b = backend_of(l, cell);
    let (parts, _) = iov_parts(l, 1, offset, nbyte).unwrap_or_default();
    // no raising Lua call while `parts` is alive: it is consumed by the guard
    let r = guard(l, move || {
        let total: usize = parts.iter().map(|p| p.1).sum();
        // SAFETY: the parts point into the iovec's blobs, anchored for this call.
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
    let cell = check_iov(l).cell;
    let fd = check_cint(l, 2);
    let (offset, nbyte) = range_args(l);
    let b = backend_of(l, cell);
    let (parts, _) = iov_parts(l, 1, offset, nbyte).unwrap_or_default();
    let r = guard(l, move || {
        // SAFETY: the parts are disjoint ranges of the iovec's blobs, anchored for this call.
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
    (c"writev", crate::task::writev),
    (c"readv", crate::task::readv),
];

/// Metamethods besides `__index` (no `__gc`: the elements are the object's user values).
pub(crate) const META: &[(&CStr, lua_CFunction)] =
    &[(c"__tostring", m_tostring), (c"__len", m_len)];
