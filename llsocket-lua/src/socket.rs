//! `llsocket.socket`: module functions (`new`, `wrap`, `pair`, `close`, `shutdown`)
//! and every socket method (socket.md), as thin conversions around [`SocketOps`].
#![allow(unsafe_op_in_unsafe_fn)] // FFI bodies on a live lua_State

use std::ffi::{c_int, CStr};

use llsocket_api::{
    cmsg, Cmsg, Errno, Family, Fd, Interest, Linger, McastOp, McastRequest, MsgFlags, OptName,
    Protocol, Shutdown, SockAddr, SockOpt, SockType, SocketOps, Timeval,
};
use mlua::ffi::*;

use crate::lua::*;
use crate::msg;
use crate::types::{check_ai_at, check_sock, forget_sock, push_ai, push_sock, Ai, RawAddr, Sock};

fn bad_fd_again(e: Errno) -> bool {
    e.is_again()
}

// ---- module functions ----------------------------------------------------------------

/// `socket.new(family, socktype [, protocol [, nonblock]])`
pub(crate) unsafe extern "C-unwind" fn new(l: *mut lua_State) -> c_int {
    let family = check_cint(l, 1);
    let ty = check_cint(l, 2);
    let proto = opt_cint(l, 3, 0);
    let nb = opt_bool(l, 4, false);
    let b = backend(l);
    let shell = push_sock(l, cell_ptr(l), Fd(-1), family, ty, proto);
    match guard(l, || {
        b.socket(Family(family), SockType(ty), Protocol(proto), nb)
    }) {
        Ok(fd) => {
            (*shell).fd = fd.0;
            1
        }
        Err(e) => ret_nil_err(l, e, c"socket"),
    }
}

/// `socket.wrap(fd [, nonblock])`
pub(crate) unsafe extern "C-unwind" fn wrap(l: *mut lua_State) -> c_int {
    let fd = Fd(check_cint(l, 1));
    let nb = opt_bool(l, 2, false);
    let b = backend(l);
    let r = guard(l, || -> Result<(i32, i32, i32), (Errno, &'static CStr)> {
        let family = b
            .getsockname(fd)
            .map_err(|e| (e, c"getsockname"))?
            .family()
            .0;
        let protocol = match b.getsockopt(fd, OptName::Protocol) {
            Ok(SockOpt::Protocol(p)) => p,
            Ok(_) => 0,
            Err(e) if e == Errno::EOPNOTSUPP || e == Errno::ENOPROTOOPT => 0,
            Err(e) => return Err((e, c"getsockopt")),
        };
        let ty = match b
            .getsockopt(fd, OptName::Type)
            .map_err(|e| (e, c"getsockopt"))?
        {
            SockOpt::Type(t) => t,
            _ => 0,
        };
        if nb {
            b.set_nonblock(fd, true).map_err(|e| (e, c"fcntl"))?;
        }
        Ok((family, ty, protocol))
    });
    match r {
        Ok((f, t, p)) => {
            push_sock(l, cell_ptr(l), fd, f, t, p);
            1
        }
        Err((e, op)) => ret_nil_err(l, e, op),
    }
}

/// `socket.pair(socktype [, protocol [, nonblock]])`
pub(crate) unsafe extern "C-unwind" fn pair(l: *mut lua_State) -> c_int {
    let ty = check_cint(l, 1);
    let proto = opt_cint(l, 2, 0);
    let nb = opt_bool(l, 3, false);
    let b = backend(l);
    lua_createtable(l, 2, 0);
    let first = push_sock(l, cell_ptr(l), Fd(-1), Family::UNIX.0, ty, proto);
    lua_rawseti(l, -2, 1);
    let second = push_sock(l, cell_ptr(l), Fd(-1), Family::UNIX.0, ty, proto);
    lua_rawseti(l, -2, 2);
    match guard(l, || b.socketpair(SockType(ty), Protocol(proto), nb)) {
        Ok((a, c)) => {
            (*first).fd = a.0;
            (*second).fd = c.0;
            1
        }
        Err(e) => ret_nil_err(l, e, c"socketpair"),
    }
}

/// `socket.shutdown(fd [, how])`
pub(crate) unsafe extern "C-unwind" fn shutdown_fd(l: *mut lua_State) -> c_int {
    let fd = Fd(check_cint(l, 1));
    let how = opt_cint(l, 2, Shutdown::BOTH.0);
    do_shutdown(l, backend(l), fd, how)
}

unsafe fn do_shutdown(l: *mut lua_State, b: &dyn SocketOps, fd: Fd, how: i32) -> c_int {
    match guard(l, || b.shutdown(fd, Shutdown(how))) {
        Ok(()) => {
            push_bool(l, true);
            1
        }
        Err(e) => ret_false_err(l, e, c"shutdown"),
    }
}

/// The "closefd" algorithm shared by `socket.close` and `sock:close`.
unsafe fn closefd(l: *mut lua_State, b: &dyn SocketOps, fd: Fd, how: Option<i32>) -> c_int {
    let (sh, cl) = guard(l, || {
        let sh = how.and_then(|h| b.shutdown(fd, Shutdown(h)).err());
        (sh, b.close(fd).err())
    });
    match (sh, cl) {
        (None, None) => {
            push_bool(l, true);
            1
        }
        (Some(s), None) => ret_false_err(l, s, c"shutdown"),
        (None, Some(c)) => ret_false_err(l, c, c"close"),
        (Some(s), Some(c)) => {
            lua_pushboolean(l, 0);
            push_errno(l, s, c"shutdown");
            let inner = lua_gettop(l);
            push_error(l, ErrKind::Errno, c.0, c"close", Some(inner));
            lua_remove(l, inner);
            2
        }
    }
}

/// `socket.close(fd [, how])`
pub(crate) unsafe extern "C-unwind" fn close_fd(l: *mut lua_State) -> c_int {
    let fd = Fd(check_cint(l, 1));
    let how = if is_none_or_nil(l, 2) {
        None
    } else {
        Some(check_cint(l, 2))
    };
    closefd(l, backend(l), fd, how)
}

// ---- identity and life cycle ----------------------------------------------------------

/// `sock:fd()`
pub(crate) unsafe extern "C-unwind" fn m_fd(l: *mut lua_State) -> c_int {
    let s = check_sock(l);
    lua_pushinteger(l, s.fd as lua_Integer);
    1
}

/// `sock:family()`
pub(crate) unsafe extern "C-unwind" fn m_family(l: *mut lua_State) -> c_int {
    let s = check_sock(l);
    lua_pushinteger(l, s.family as lua_Integer);
    1
}

/// `sock:socktype()`
pub(crate) unsafe extern "C-unwind" fn m_socktype(l: *mut lua_State) -> c_int {
    let s = check_sock(l);
    lua_pushinteger(l, s.socktype as lua_Integer);
    1
}

/// `sock:protocol()`
pub(crate) unsafe extern "C-unwind" fn m_protocol(l: *mut lua_State) -> c_int {
    let s = check_sock(l);
    lua_pushinteger(l, s.protocol as lua_Integer);
    1
}

/// `sock:unwrap()`: the descriptor; the object loses its metatable (raw removal).
pub(crate) unsafe extern "C-unwind" fn m_unwrap(l: *mut lua_State) -> c_int {
    let s = check_sock(l);
    let fd = s.fd;
    s.fd = -1;
    forget_sock(l);
    lua_pushnil(l);
    lua_setmetatable(l, 1);
    lua_pushinteger(l, fd as lua_Integer);
    1
}

/// `sock:dup()`
pub(crate) unsafe extern "C-unwind" fn m_dup(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let b = s.backend(l);
    let shell = push_sock(l, s.cell, Fd(-1), s.family, s.socktype, s.protocol);
    match guard(l, || b.dup(Fd(s.fd))) {
        Ok(fd) => {
            (*shell).fd = fd.0;
            1
        }
        Err(e) => ret_nil_err(l, e, c"dup"),
    }
}

/// `sock:close([how])`
pub(crate) unsafe extern "C-unwind" fn m_close(l: *mut lua_State) -> c_int {
    let s = check_sock(l);
    let how = if is_none_or_nil(l, 2) {
        None
    } else {
        Some(check_cint(l, 2))
    };
    if s.fd == -1 {
        push_bool(l, true);
        return 1;
    }
    let b = s.backend(l);
    let fd = Fd(s.fd);
    s.fd = -1;
    closefd(l, b, fd, how)
}

/// `sock:shutdown([how])`
pub(crate) unsafe extern "C-unwind" fn m_shutdown(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let how = opt_cint(l, 2, Shutdown::BOTH.0);
    do_shutdown(l, s.backend(l), Fd(s.fd), how)
}

/// `__gc`: closes a descriptor still owned and marks the block finalized.
pub(crate) unsafe extern "C-unwind" fn m_gc(l: *mut lua_State) -> c_int {
    let s = &mut *check_ud::<Sock>(l, 1, Up::Socket, c"llsocket.socket");
    forget_sock(l);
    s.finalized = true;
    if s.fd != -1 {
        let fd = Fd(s.fd);
        s.fd = -1;
        if let Some(b) = backend_of_opt(s.cell) {
            let _ = guard(l, || b.close(fd));
        }
    }
    0
}

/// `__tostring`
pub(crate) unsafe extern "C-unwind" fn m_tostring(l: *mut lua_State) -> c_int {
    push_tostring(l, c"llsocket.socket")
}

// ---- connection set-up --------------------------------------------------------------

unsafe fn ret_bool(l: *mut lua_State, r: Result<(), Errno>, op: &CStr) -> c_int {
    match r {
        Ok(()) => {
            push_bool(l, true);
            1
        }
        Err(e) => ret_false_err(l, e, op),
    }
}

/// `sock:bind(ai)`
pub(crate) unsafe extern "C-unwind" fn m_bind(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let ai = *check_ai_at(l, 2);
    let b = s.backend(l);
    let r = guard(l, || b.bind(Fd(s.fd), &ai.addr.to_sockaddr()));
    ret_bool(l, r, c"bind")
}

/// `sock:listen([backlog])`
pub(crate) unsafe extern "C-unwind" fn m_listen(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let b = s.backend(l);
    let backlog = if is_none_or_nil(l, 2) {
        guard(l, || b.platform().somaxconn)
    } else {
        check_int(l, 2).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    };
    let r = guard(l, || b.listen(Fd(s.fd), backlog));
    ret_bool(l, r, c"listen")
}

/// `sock:connect(ai)`
pub(crate) unsafe extern "C-unwind" fn m_connect(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let ai = *check_ai_at(l, 2);
    let b = s.backend(l);
    match guard(l, || b.connect(Fd(s.fd), &ai.addr.to_sockaddr())) {
        Ok(()) => {
            push_bool(l, true);
            1
        }
        Err(e) if e == Errno::EINPROGRESS || e == Errno::EALREADY => {
            push_bool(l, true);
            push_errno(l, e, c"connect");
            2
        }
        Err(e) if e == Errno::EAGAIN || e == Errno::EWOULDBLOCK || e == Errno::ETIMEDOUT => {
            push_bool(l, false);
            push_errno(l, e, c"connect");
            push_bool(l, true);
            3
        }
        Err(e) => ret_false_err(l, e, c"connect"),
    }
}

fn accept_again(e: Errno) -> bool {
    e.is_again() || e == Errno::ECONNABORTED
}

/// `sock:accept([with_ai])`
pub(crate) unsafe extern "C-unwind" fn m_accept(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let with_ai = opt_bool(l, 2, false);
    let b = s.backend(l);
    let shell = push_sock(l, s.cell, Fd(-1), s.family, s.socktype, s.protocol);
    let r = guard(l, || {
        b.accept(Fd(s.fd), with_ai).map(|acc| {
            let addr = acc
                .addr
                .as_ref()
                .map_or(RawAddr::UNNAMED, RawAddr::from_sockaddr);
            (acc.fd, addr)
        })
    });
    match r {
        Ok((fd, addr)) => {
            (*shell).fd = fd.0;
            if !with_ai {
                return 1;
            }
            lua_pushnil(l);
            lua_pushnil(l);
            push_ai(l, Ai::from_sock(&s, addr));
            4
        }
        Err(e) if accept_again(e) => ret_again_nil(l),
        Err(e) => ret_nil_err(l, e, c"acceptfd"),
    }
}

/// `sock:acceptfd()`
pub(crate) unsafe extern "C-unwind" fn m_acceptfd(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let b = s.backend(l);
    match guard(l, || b.accept(Fd(s.fd), false).map(|a| a.fd)) {
        Ok(fd) => {
            push_int(l, fd.0 as i64);
            1
        }
        Err(e) if accept_again(e) => ret_again_nil(l),
        Err(e) => ret_nil_err(l, e, c"acceptfd"),
    }
}

// ---- readiness ---------------------------------------------------------------------------

unsafe fn wait(l: *mut lua_State, interest: Interest) -> c_int {
    let s = *check_sock(l);
    let msec = luaL_optinteger(l, 2, 0) as i64;
    let except = opt_bool(l, 3, false);
    if s.fd == -1 {
        return ret_false_err(l, Errno::EBADF, c"select");
    }
    let b = s.backend(l);
    let ms = msec.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    match guard(l, || b.poll(Fd(s.fd), interest.with_except(except), ms)) {
        Ok(true) => {
            push_bool(l, true);
            1
        }
        Ok(false) => {
            push_bool(l, false);
            lua_pushnil(l);
            push_bool(l, true);
            3
        }
        Err(e) => ret_false_err(l, e, c"select"),
    }
}

/// `sock:recvable([msec [, except]])`
pub(crate) unsafe extern "C-unwind" fn m_recvable(l: *mut lua_State) -> c_int {
    wait(l, Interest::READ)
}

/// `sock:sendable([msec [, except]])`
pub(crate) unsafe extern "C-unwind" fn m_sendable(l: *mut lua_State) -> c_int {
    wait(l, Interest::WRITE)
}

// ---- sending ---------------------------------------------------------------------------

/// Pushes the result of a send of `len` bytes.
pub(crate) unsafe fn ret_sent(
    l: *mut lua_State,
    r: Result<usize, Errno>,
    len: usize,
    op: &CStr,
) -> c_int {
    match r {
        Ok(n) => {
            push_int(l, n as i64);
            lua_pushnil(l);
            push_bool(l, n < len);
            3
        }
        Err(e) if bad_fd_again(e) => ret_again_zero(l),
        Err(e) => ret_nil_err(l, e, op),
    }
}

/// `sock:send(msg [, flag ...])`
pub(crate) unsafe extern "C-unwind" fn m_send(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let msg = check_str(l, 2);
    let flags = check_flags(l, 3);
    if msg.is_empty() {
        return ret_nil_err(l, Errno::EINVAL, c"send_lua");
    }
    let b = s.backend(l);
    let r = guard(l, || b.send(Fd(s.fd), msg, MsgFlags(flags)));
    ret_sent(l, r, msg.len(), c"send")
}

/// `sock:sendto(msg, ai [, flag ...])`
pub(crate) unsafe extern "C-unwind" fn m_sendto(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let msg = check_str(l, 2);
    let ai = *check_ai_at(l, 3);
    let flags = check_flags(l, 4);
    if msg.is_empty() {
        return ret_nil_err(l, Errno::EINVAL, c"sendto_lua");
    }
    let b = s.backend(l);
    let r = guard(l, || {
        b.sendto(Fd(s.fd), msg, &ai.addr.to_sockaddr(), MsgFlags(flags))
    });
    ret_sent(l, r, msg.len(), c"sendto")
}

/// `sock:write(msg)`: goes through `send` (no SIGPIPE).
pub(crate) unsafe extern "C-unwind" fn m_write(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let msg = check_str(l, 2);
    if msg.is_empty() {
        return ret_nil_err(l, Errno::EINVAL, c"write_lua");
    }
    let b = s.backend(l);
    let r = guard(l, || b.send(Fd(s.fd), msg, MsgFlags::NONE));
    ret_sent(l, r, msg.len(), c"write")
}

/// `sock:sendfd(fd [, ai [, flag ...]])`
pub(crate) unsafe extern "C-unwind" fn m_sendfd(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let fd = check_cint(l, 2);
    let ai = opt_ud::<Ai>(l, 3, Up::AddrInfo, c"llsocket.addrinfo").map(|p| *p);
    let flags = check_flags(l, 4);
    let b = s.backend(l);
    let r = guard(l, || {
        let control = cmsg::encode(&[Cmsg::rights(&[Fd(fd)])]);
        let data: &[u8] = &[1u8];
        let to = ai.map(|a| a.addr.to_sockaddr());
        b.sendmsg(Fd(s.fd), &[data], &control, to.as_ref(), MsgFlags(flags))
    });
    match r {
        Ok(_) => {
            push_int(l, 0);
            1
        }
        Err(e) if e.is_again() => ret_again_zero(l),
        Err(e) => ret_nil_err(l, e, c"sendmsg"),
    }
}

/// The descriptor of a Lua `FILE*` handle, `None` when it is closed.
unsafe fn file_fd(l: *mut lua_State, arg: c_int) -> Option<i32> {
    let ud = luaL_checkudata(l, arg, c"FILE*".as_ptr());
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    let f: *mut libc::FILE = *(ud as *mut *mut libc::FILE);
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
    let f: *mut libc::FILE = {
        #[repr(C)]
        struct LuaLStream {
            f: *mut libc::FILE,
            closef: Option<lua_CFunction>,
        }
        let st = &*(ud as *mut LuaLStream);
        if st.closef.is_none() {
            std::ptr::null_mut()
        } else {
            st.f
        }
    };
    if f.is_null() {
        None
    } else {
        Some(libc::fileno(f))
    }
}

/// `sock:sendfile(file, bytes [, offset])`
pub(crate) unsafe extern "C-unwind" fn m_sendfile(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let file = if lua_type(l, 2) == LUA_TNUMBER {
        Some(check_cint(l, 2))
    } else {
        file_fd(l, 2)
    };
    let bytes = check_int(l, 3);
    let offset = opt_int(l, 4, 0);
    if bytes <= 0 {
        return ret_nil_err(l, Errno::EINVAL, c"sendfile_lua");
    }
    let Some(file) = file else {
        return ret_nil_err(l, Errno::EBADF, c"sendfile");
    };
    let b = s.backend(l);
    let len = bytes as usize;
    match guard(l, || b.sendfile(Fd(s.fd), Fd(file), offset, len)) {
        Ok(n) if n >= len => {
            push_int(l, n as i64);
            1
        }
        Ok(n) => {
            push_int(l, n as i64);
            lua_pushnil(l);
            push_bool(l, true);
            3
        }
        Err(e) if e.is_again() => ret_again_zero(l),
        Err(e) => ret_nil_err(l, e, c"sendfile"),
    }
}

// ---- receiving -------------------------------------------------------------------------

/// Pushes the owner of a receive area of at least `len` bytes and returns the area.
///
/// Up to [`SCRATCH_MAX`] the area is the instance's scratch blob (a Lua userdata), *taken*
/// out of its slot in the state table for the call (a call re-entered from a finalizer
/// finds the slot empty and makes its own); [`give_back_area`] puts it back. A raise loses
/// nothing: a scratch taken and never given back is collected like any object, and the
/// next call makes a new one.
///
/// Larger requests get a zeroed allocation of their own, owned by a [`Holder`] for the
/// call: `calloc` maps fresh zero pages, so the resident memory follows what the kernel
/// writes, not what was asked for, and the collector's pacing is not skewed by a buffer
/// that lives for one call (a Lua userdata of 1 GiB would make Lua 5.4 wait for ~2 GiB
/// of garbage before its next cycle). A failed allocation is Lua's memory error.
unsafe fn take_area(l: *mut lua_State, len: usize) -> &'static mut [u8] {
    if len <= SCRATCH_MAX {
        lua_rawgeti(l, up(Up::State), STATE_SCRATCH);
        if lua_type(l, -1) == LUA_TUSERDATA && lua_rawlen(l, -1) >= len {
            lua_pushnil(l);
            lua_rawseti(l, up(Up::State), STATE_SCRATCH);
            return &mut blob(l, -1)[..len];
        }
        lua_pop(l, 1);
        let size = len.max(16 * 1024).next_power_of_two().min(SCRATCH_MAX);
        return &mut new_blob(l, size)[..len];
    }
    let holder = new_holder(l);
    let Ok(layout) = std::alloc::Layout::array::<u8>(len) else {
        raise_memory(l)
    };
    // SAFETY: `layout` has a non-zero size (len > SCRATCH_MAX).
    let p = std::alloc::alloc_zeroed(layout);
    if p.is_null() {
        raise_memory(l);
    }
    // SAFETY: `p` is a fresh zeroed allocation of exactly `len` bytes with the layout of
    // `[u8; len]`, which is what `Box<[u8]>` frees with.
    let area: Box<[u8]> = Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len));
    &mut holder.put(area)[..]
}

/// Gives the area owned by the value at `idx` back: the scratch blob to its slot, a large
/// area to the allocator.
unsafe fn give_back_area(l: *mut lua_State, idx: c_int) {
    if lua_getmetatable(l, idx) != 0 {
        // a holder (the only area owner with a metatable)
        lua_pop(l, 1);
        (*(lua_touserdata(l, idx) as *mut Holder)).clear();
    } else {
        lua_pushvalue(l, idx);
        lua_rawseti(l, up(Up::State), STATE_SCRATCH);
    }
}

/// Shared body of `recv`, `recvfrom`, `read`.
unsafe fn recv_common(
    l: *mut lua_State,
    from: bool,
    flags_at: Option<c_int>,
    ops: [&CStr; 2],
) -> c_int {
    let s = *check_sock(l);
    let bufsize = opt_int(l, 2, 4096);
    let flags = flags_at.map_or(0, |i| check_flags(l, i));
    if bufsize <= 0 {
        return ret_nil_err(l, Errno::EINVAL, ops[0]);
    }
    let Ok(len) = usize::try_from(bufsize) else {
        raise_memory(l)
    };
    let b = s.backend(l);
    if len <= SMALL_RECV {
        let mut small = [0; SMALL_RECV];
        return recv_into(l, &s, b, &mut small[..len], None, from, flags, ops);
    }
    let area = take_area(l, len);
    // One receive never returns more than INT_MAX bytes (Linux caps every read at
    // MAX_RW_COUNT, the BSDs at INT_MAX), so no more is offered to the kernel (valgrind
    // reads larger lengths as negative). An area the allocator refuses is still the
    // memory error, as in C.
    let buf = &mut area[..len.min(i32::MAX as usize)];
    let owner = lua_gettop(l);
    recv_into(l, &s, b, buf, Some(owner), from, flags, ops)
}

/// Receives of at most this many bytes use a zeroed buffer on the C stack (cheaper than
/// taking the scratch blob out of its slot and putting it back); it owns nothing, so a
/// raise while the result is pushed (the memory error) loses nothing.
const SMALL_RECV: usize = 256;

/// The receive itself, into `buf`, and its results; `owner` is the stack index of the
/// area's owner ([`take_area`]), given back once the bytes are a Lua string.
#[allow(clippy::too_many_arguments)] // recv_common's state, handed on
unsafe fn recv_into(
    l: *mut lua_State,
    s: &Sock,
    b: &dyn SocketOps,
    buf: &mut [u8],
    owner: Option<c_int>,
    from: bool,
    flags: c_int,
    ops: [&CStr; 2],
) -> c_int {
    let r = guard(l, || {
        if from {
            b.recvfrom(Fd(s.fd), buf, MsgFlags(flags))
                .map(|(n, a)| (n, a.as_ref().map(RawAddr::from_sockaddr)))
        } else {
            b.recv(Fd(s.fd), buf, MsgFlags(flags)).map(|n| (n, None))
        }
    });
    let give_back = |l| {
        if let Some(i) = owner {
            give_back_area(l, i);
        }
    };
    match r {
        Ok((0, _)) if !s.is_dgram() => {
            give_back(l);
            0
        }
        Ok((n, addr)) => {
            push_bytes(l, &buf[..n.min(buf.len())]);
            give_back(l);
            match addr {
                Some(a) if from => {
                    lua_pushnil(l);
                    lua_pushnil(l);
                    push_ai(l, Ai::from_sock(s, a));
                    4
                }
                _ => 1,
            }
        }
        Err(e) => {
            give_back(l);
            if e.is_again() {
                ret_again_nil(l)
            } else {
                ret_nil_err(l, e, ops[1])
            }
        }
    }
}

/// `sock:recv([bufsize [, flag ...]])`
pub(crate) unsafe extern "C-unwind" fn m_recv(l: *mut lua_State) -> c_int {
    recv_common(l, false, Some(3), [c"recv_lua", c"recv"])
}

/// `sock:recvfrom([bufsize [, flag ...]])`
pub(crate) unsafe extern "C-unwind" fn m_recvfrom(l: *mut lua_State) -> c_int {
    recv_common(l, true, Some(3), [c"recvfrom_lua", c"recvfrom"])
}

/// `sock:read([bufsize])`
pub(crate) unsafe extern "C-unwind" fn m_read(l: *mut lua_State) -> c_int {
    recv_common(l, false, None, [c"read_lua", c"read"])
}

/// `sock:recvfd([flag ...])`
pub(crate) unsafe extern "C-unwind" fn m_recvfd(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let flags = check_flags(l, 2);
    let b = s.backend(l);
    let r = guard(l, || {
        let mut data = [0u8; 1];
        let mut control = vec![0u8; cmsg::cmsg_space(4)];
        let mut iov: [&mut [u8]; 1] = [&mut data];
        let out = b.recvmsg(Fd(s.fd), &mut iov, &mut control, MsgFlags(flags))?;
        // The control space is sized for one descriptor, but its padding can hold a second
        // one: deliver the first and close every other descriptor received (no leak).
        let mut fds = cmsg::decode(&control[..out.control_len.min(control.len())])
            .into_iter()
            .filter_map(|m| m.fds())
            .flatten();
        let got = fds.next();
        for extra in fds {
            let _ = b.close(extra);
        }
        Ok::<_, Errno>((out.bytes, got))
    });
    match r {
        Ok((_, Some(fd))) => {
            push_int(l, fd.0 as i64);
            1
        }
        Ok((0, None)) if !s.is_dgram() => 0,
        Ok(_) => ret_again_nil(l),
        Err(e) if e.is_again() => ret_again_nil(l),
        Err(e) => ret_nil_err(l, e, c"recvmsg"),
    }
}

/// `sock:sendmsg(mh [, flag ...])`
pub(crate) unsafe extern "C-unwind" fn m_sendmsg(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    msg::sendmsg(l, s)
}

/// `sock:recvmsg(mh [, flag ...])`
pub(crate) unsafe extern "C-unwind" fn m_recvmsg(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    msg::recvmsg(l, s)
}

// ---- state and addresses ------------------------------------------------------------------

/// `sock:atmark()`
pub(crate) unsafe extern "C-unwind" fn m_atmark(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let b = s.backend(l);
    match guard(l, || b.atmark(Fd(s.fd))) {
        Ok(v) => {
            push_bool(l, v);
            1
        }
        Err(e) => ret_nil_err(l, e, c"sockatmark"),
    }
}

unsafe fn name_common(l: *mut lua_State, peer: bool) -> c_int {
    let s = *check_sock(l);
    let b = s.backend(l);
    let r = guard(l, || {
        if peer {
            b.getpeername(Fd(s.fd))
        } else {
            b.getsockname(Fd(s.fd))
        }
        .map(|a| RawAddr::from_sockaddr(&a))
    });
    match r {
        Ok(a) => {
            push_ai(l, Ai::from_sock(&s, a));
            1
        }
        Err(e) => ret_nil_err(l, e, if peer { c"getpeername" } else { c"getsockname" }),
    }
}

/// `sock:getsockname()`
pub(crate) unsafe extern "C-unwind" fn m_getsockname(l: *mut lua_State) -> c_int {
    name_common(l, false)
}

/// `sock:getpeername()`
pub(crate) unsafe extern "C-unwind" fn m_getpeername(l: *mut lua_State) -> c_int {
    name_common(l, true)
}

unsafe fn fdflag(l: *mut lua_State, cloexec: bool) -> c_int {
    let s = *check_sock(l);
    let fd = Fd(s.fd);
    let b = s.backend(l);
    let cur = guard(l, || {
        if cloexec {
            b.cloexec(fd)
        } else {
            b.nonblock(fd)
        }
    });
    let cur = match cur {
        Ok(v) => v,
        Err(e) => return ret_nil_err(l, e, c"fcntl"),
    };
    if !is_none_or_nil(l, 2) {
        let on = check_bool(l, 2);
        let r = guard(l, || {
            if cloexec {
                b.set_cloexec(fd, on)
            } else {
                b.set_nonblock(fd, on)
            }
        });
        if let Err(e) = r {
            return ret_nil_err(l, e, c"fcntl");
        }
    }
    push_bool(l, cur);
    1
}

/// `sock:cloexec([enable])`
pub(crate) unsafe extern "C-unwind" fn m_cloexec(l: *mut lua_State) -> c_int {
    fdflag(l, true)
}

/// `sock:nonblock([enable])`
pub(crate) unsafe extern "C-unwind" fn m_nonblock(l: *mut lua_State) -> c_int {
    fdflag(l, false)
}

// ---- socket options -------------------------------------------------------------------------

/// The value kinds of option getters/setters.
#[derive(Clone, Copy)]
enum Val {
    Bool(bool),
    Int(i64),
    Num(f64),
}

/// Pushes a Lua value for an option value.
unsafe fn push_opt(l: *mut lua_State, v: SockOpt) {
    use SockOpt::*;
    match v {
        ReuseAddr(b) | ReusePort(b) | Broadcast(b) | Debug(b) | KeepAlive(b) | OobInline(b)
        | DontRoute(b) | Timestamp(b) | TcpNoDelay(b) | TcpCork(b) | AcceptConn(b)
        | MulticastLoopV4(b) | MulticastLoopV6(b) => push_bool(l, b),
        RcvBuf(i) | RcvLowat(i) | SndBuf(i) | SndLowat(i) | TcpKeepIntvl(i) | TcpKeepCnt(i)
        | TcpKeepAlive(i) | Error(i) | Type(i) | Protocol(i) | MulticastTtlV4(i)
        | MulticastHopsV6(i) => push_int(l, i as i64),
        RcvTimeo(t) | SndTimeo(t) => lua_pushnumber(l, t.as_secs_f64()),
        Linger(g) => push_int(l, if g.enabled { g.secs as i64 } else { -1 }),
        MulticastIfV4(_) | MulticastIfV6(_) => lua_pushnil(l),
    }
}

/// Builds the value to set for option `name` from a Lua value.
fn make_opt(name: OptName, v: Val) -> SockOpt {
    let b = match v {
        Val::Bool(b) => b,
        _ => false,
    };
    let i = match v {
        Val::Int(i) => i as i32,
        _ => 0,
    };
    let t = match v {
        Val::Num(n) => Timeval::from_secs_f64(n),
        _ => Timeval::default(),
    };
    match name {
        OptName::ReuseAddr => SockOpt::ReuseAddr(b),
        OptName::ReusePort => SockOpt::ReusePort(b),
        OptName::Broadcast => SockOpt::Broadcast(b),
        OptName::Debug => SockOpt::Debug(b),
        OptName::KeepAlive => SockOpt::KeepAlive(b),
        OptName::OobInline => SockOpt::OobInline(b),
        OptName::DontRoute => SockOpt::DontRoute(b),
        OptName::Timestamp => SockOpt::Timestamp(b),
        OptName::TcpNoDelay => SockOpt::TcpNoDelay(b),
        OptName::TcpCork => SockOpt::TcpCork(b),
        OptName::AcceptConn => SockOpt::AcceptConn(b),
        OptName::MulticastLoopV4 => SockOpt::MulticastLoopV4(b),
        OptName::MulticastLoopV6 => SockOpt::MulticastLoopV6(b),
        OptName::RcvBuf => SockOpt::RcvBuf(i),
        OptName::RcvLowat => SockOpt::RcvLowat(i),
        OptName::SndBuf => SockOpt::SndBuf(i),
        OptName::SndLowat => SockOpt::SndLowat(i),
        OptName::TcpKeepIntvl => SockOpt::TcpKeepIntvl(i),
        OptName::TcpKeepCnt => SockOpt::TcpKeepCnt(i),
        OptName::TcpKeepAlive => SockOpt::TcpKeepAlive(i),
        OptName::Error => SockOpt::Error(i),
        OptName::Type => SockOpt::Type(i),
        OptName::Protocol => SockOpt::Protocol(i),
        OptName::MulticastTtlV4 => SockOpt::MulticastTtlV4(i),
        OptName::MulticastHopsV6 => SockOpt::MulticastHopsV6(i),
        OptName::RcvTimeo => SockOpt::RcvTimeo(t),
        OptName::SndTimeo => SockOpt::SndTimeo(t),
        OptName::Linger => SockOpt::Linger(Linger {
            enabled: i >= 0,
            secs: i,
        }),
        OptName::MulticastIfV4 => SockOpt::MulticastIfV4(std::net::Ipv4Addr::UNSPECIFIED),
        OptName::MulticastIfV6 => SockOpt::MulticastIfV6(0),
    }
}

/// What Lua type an option's setter takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Num,
}

fn kind_of(name: OptName) -> Kind {
    match name {
        OptName::RcvTimeo | OptName::SndTimeo => Kind::Num,
        OptName::RcvBuf
        | OptName::RcvLowat
        | OptName::SndBuf
        | OptName::SndLowat
        | OptName::TcpKeepIntvl
        | OptName::TcpKeepCnt
        | OptName::TcpKeepAlive
        | OptName::Error
        | OptName::Type
        | OptName::Protocol
        | OptName::MulticastTtlV4
        | OptName::MulticastHopsV6
        | OptName::Linger => Kind::Int,
        _ => Kind::Bool,
    }
}

/// The generic option getter/setter (socket.md §10) on an already checked socket.
unsafe fn sockopt_on(l: *mut lua_State, s: Sock, name: OptName) -> c_int {
    let fd = Fd(s.fd);
    let b = s.backend(l);
    let cur = match guard(l, || b.getsockopt(fd, name)) {
        Ok(v) => v,
        Err(e) => return ret_nil_err(l, e, c"getsockopt"),
    };
    if !is_none_or_nil(l, 2) {
        let v = match kind_of(name) {
            Kind::Bool => Val::Bool(check_bool(l, 2)),
            Kind::Int => Val::Int(check_int(l, 2)),
            Kind::Num => Val::Num(luaL_checknumber(l, 2)),
        };
        if let Err(e) = guard(l, || b.setsockopt(fd, make_opt(name, v))) {
            return ret_nil_err(l, e, c"setsockopt");
        }
    }
    if name == OptName::Error {
        return match cur {
            SockOpt::Error(0) => {
                lua_pushnil(l);
                1
            }
            SockOpt::Error(code) => {
                push_errno(l, Errno(code), c"error");
                1
            }
            _ => 0,
        };
    }
    push_opt(l, cur);
    1
}

macro_rules! option_methods {
    ($($fname:ident => $opt:ident),* $(,)?) => {
        $(
            #[doc = concat!("Option method for `", stringify!($opt), "`.")]
            pub(crate) unsafe extern "C-unwind" fn $fname(l: *mut lua_State) -> c_int {
                let s = *check_sock(l);
                sockopt_on(l, s, OptName::$opt)
            }
        )*
    };
}

option_methods! {
    m_acceptconn => AcceptConn,
    m_reuseaddr => ReuseAddr,
    m_reuseport => ReusePort,
    m_broadcast => Broadcast,
    m_debug => Debug,
    m_keepalive => KeepAlive,
    m_oobinline => OobInline,
    m_dontroute => DontRoute,
    m_timestamp => Timestamp,
    m_rcvbuf => RcvBuf,
    m_rcvlowat => RcvLowat,
    m_sndbuf => SndBuf,
    m_sndlowat => SndLowat,
    m_tcpnodelay => TcpNoDelay,
    m_tcpkeepintvl => TcpKeepIntvl,
    m_tcpkeepcnt => TcpKeepCnt,
    m_tcpkeepalive => TcpKeepAlive,
    m_tcpcork => TcpCork,
    m_rcvtimeo => RcvTimeo,
    m_sndtimeo => SndTimeo,
    m_linger => Linger,
    m_error => Error,
}

// ---- multicast ------------------------------------------------------------------------------

/// The stored-socktype/family check of every multicast method: `Some(is_v6)` or an error pushed.
unsafe fn mcast_check(l: *mut lua_State, s: &Sock, op: &CStr, nil: bool) -> Result<bool, c_int> {
    let e = if !SockType(s.socktype).is_datagram() {
        Errno::ESOCKTNOSUPPORT
    } else if s.family == Family::INET.0 {
        return Ok(false);
    } else if s.family == Family::INET6.0 {
        return Ok(true);
    } else {
        Errno::EAFNOSUPPORT
    };
    Err(if nil {
        ret_nil_err(l, e, op)
    } else {
        ret_false_err(l, e, op)
    })
}

/// `sock:mcastloop([enable])`
pub(crate) unsafe extern "C-unwind" fn m_mcastloop(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    match mcast_check(l, &s, c"mcastloop_lua", true) {
        Ok(v6) => sockopt_on(
            l,
            s,
            if v6 {
                OptName::MulticastLoopV6
            } else {
                OptName::MulticastLoopV4
            },
        ),
        Err(n) => n,
    }
}

/// `sock:mcastttl([ttl])`
pub(crate) unsafe extern "C-unwind" fn m_mcastttl(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    match mcast_check(l, &s, c"mcastttl_lua", true) {
        Ok(v6) => sockopt_on(
            l,
            s,
            if v6 {
                OptName::MulticastHopsV6
            } else {
                OptName::MulticastTtlV4
            },
        ),
        Err(n) => n,
    }
}

/// The current multicast interface name (read step of `mcastif`).
fn mcastif_read(
    b: &dyn SocketOps,
    fd: Fd,
    v6: bool,
) -> Result<Option<Vec<u8>>, (Errno, &'static CStr)> {
    if v6 {
        let idx = match b
            .getsockopt(fd, OptName::MulticastIfV6)
            .map_err(|e| (e, c"getsockopt"))?
        {
            SockOpt::MulticastIfV6(i) => i,
            _ => 0,
        };
        if idx == 0 {
            return Ok(None);
        }
        match b.if_indextoname(idx) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e == Errno::ENXIO => Ok(None),
            Err(e) => Err((e, c"if_indextoname")),
        }
    } else {
        let addr = match b
            .getsockopt(fd, OptName::MulticastIfV4)
            .map_err(|e| (e, c"getsockopt"))?
        {
            SockOpt::MulticastIfV4(a) => a,
            _ => std::net::Ipv4Addr::UNSPECIFIED,
        };
        let ifs = b.interfaces().map_err(|e| (e, c"getifaddrs"))?;
        let want = SockAddr::v4(addr, 0);
        Ok(ifs
            .into_iter()
            .find(|i| {
                i.inet
                    .iter()
                    .any(|a| a.address.as_ref().map(|x| x.with_port(0)) == Some(want.clone()))
            })
            .map(|i| i.name))
    }
}

/// `sock:mcastif([ifname])`: an explicit nil resets.
pub(crate) unsafe extern "C-unwind" fn m_mcastif(l: *mut lua_State) -> c_int {
    let s = *check_sock(l);
    let v6 = match mcast_check(l, &s, c"mcastif_lua", true) {
        Ok(v) => v,
        Err(n) => return n,
    };
    let set = lua_gettop(l) >= 2;
    let arg_type = lua_type(l, 2);
    let name = if arg_type == LUA_TSTRING {
        Some(to_bytes(l, 2))
    } else {
        None
    };
    let fd = Fd(s.fd);
    let b = s.backend(l);
    let holder = new_holder(l);
    let prev = match guard(l, || mcastif_read(b, fd, v6)) {
        Ok(p) => holder.put(p),
        Err((e, op)) => return ret_nil_err(l, e, op),
    };
    if set && arg_type != LUA_TNIL && arg_type != LUA_TSTRING {
        type_error(l, 2, c"string", true);
    }
    if set {
        let r = guard(l, || -> Result<(), (Errno, &'static CStr)> {
            let opt = match (v6, name) {
                (true, None) => SockOpt::MulticastIfV6(0),
                (true, Some(n)) => {
                    SockOpt::MulticastIfV6(b.if_nametoindex(n).map_err(|e| (e, c"if_nametoindex"))?)
                }
                (false, None) => SockOpt::MulticastIfV4(std::net::Ipv4Addr::UNSPECIFIED),
                (false, Some(n)) => {
                    SockOpt::MulticastIfV4(b.interface_ipv4(fd, n).map_err(|e| (e, c"ioctl"))?)
                }
            };
            b.setsockopt(fd, opt).map_err(|e| (e, c"setsockopt"))
        });
        if let Err((e, op)) = r {
            holder.clear();
            return ret_nil_err(l, e, op);
        }
    }
    match prev {
        Some(n) => push_bytes(l, n),
        None => lua_pushnil(l),
    }
    holder.clear();
    1
}

/// Shared body of the join/leave/block family.
unsafe fn mcast_member(
    l: *mut lua_State,
    op: McastOp,
    with_source: bool,
    check_op: &CStr,
) -> c_int {
    let s = *check_sock(l);
    let v6 = match mcast_check(l, &s, check_op, false) {
        Ok(v) => v,
        Err(n) => return n,
    };
    let group = *check_ai_at(l, 2);
    let source = if with_source {
        Some(*check_ai_at(l, 3))
    } else {
        None
    };
    let ifname = opt_str(l, if with_source { 4 } else { 3 });
    let fd = Fd(s.fd);
    let b = s.backend(l);
    let fam_op: &'static CStr = match (v6, with_source) {
        (false, false) => c"mcastif_lua",
        (true, false) => c"mcast6group_lua",
        (false, true) => c"mcast4srcgroup_lua",
        (true, true) => c"mcastsrcgroup_lua",
    };
    let r = guard(l, || -> Result<(), (Errno, &'static CStr)> {
        let want = if v6 { Family::INET6.0 } else { Family::INET.0 };
        let fam_ok = group.family == want && source.is_none_or(|s| s.family == want);
        let bad = (Errno::EAFNOSUPPORT, fam_op);
        if !fam_ok {
            return Err(bad);
        }
        let req = if v6 {
            let interface = match ifname {
                Some(n) => b.if_nametoindex(n).map_err(|e| (e, c"if_nametoindex"))?,
                None => 0,
            };
            match (group.addr, source) {
                (RawAddr::V6(g), None) => McastRequest::V6 {
                    group: *g.ip(),
                    interface,
                },
                (_, Some(src)) => McastRequest::Source {
                    group: group.addr.to_sockaddr(),
                    source: src.addr.to_sockaddr(),
                    interface,
                },
                _ => return Err(bad),
            }
        } else {
            let interface = match ifname {
                Some(n) => b.interface_ipv4(fd, n).map_err(|e| (e, c"ioctl"))?,
                None => std::net::Ipv4Addr::UNSPECIFIED,
            };
            match (group.addr, source.map(|s| s.addr)) {
                (RawAddr::V4(g), None) => McastRequest::V4 {
                    group: *g.ip(),
                    interface,
                },
                (RawAddr::V4(g), Some(RawAddr::V4(src))) => McastRequest::SourceV4 {
                    group: *g.ip(),
                    source: *src.ip(),
                    interface,
                },
                _ => return Err(bad),
            }
        };
        b.multicast(fd, op, &req).map_err(|e| (e, c"setsockopt"))
    });
    match r {
        Ok(()) => {
            push_bool(l, true);
            1
        }
        Err((e, op)) => ret_false_err(l, e, op),
    }
}

/// `sock:mcastjoin(group [, ifname])`
pub(crate) unsafe extern "C-unwind" fn m_mcastjoin(l: *mut lua_State) -> c_int {
    mcast_member(l, McastOp::Join, false, c"mcastjoin_lua")
}

/// `sock:mcastleave(group [, ifname])`
pub(crate) unsafe extern "C-unwind" fn m_mcastleave(l: *mut lua_State) -> c_int {
    mcast_member(l, McastOp::Leave, false, c"mcastleave_lua")
}

/// `sock:mcastjoinsrc(group, source [, ifname])`
pub(crate) unsafe extern "C-unwind" fn m_mcastjoinsrc(l: *mut lua_State) -> c_int {
    mcast_member(l, McastOp::Join, true, c"mcastjoinsrc_lua")
}

/// `sock:mcastleavesrc(group, source [, ifname])`
pub(crate) unsafe extern "C-unwind" fn m_mcastleavesrc(l: *mut lua_State) -> c_int {
    mcast_member(l, McastOp::Leave, true, c"mcastleavesrc_lua")
}

/// `sock:mcastblocksrc(group, source [, ifname])`
pub(crate) unsafe extern "C-unwind" fn m_mcastblocksrc(l: *mut lua_State) -> c_int {
    mcast_member(l, McastOp::Block, true, c"mcastblocksrc_lua")
}

/// `sock:mcastunblocksrc(group, source [, ifname])`
pub(crate) unsafe extern "C-unwind" fn m_mcastunblocksrc(l: *mut lua_State) -> c_int {
    mcast_member(l, McastOp::Unblock, true, c"mcastunblocksrc_lua")
}

/// The module functions.
pub(crate) const FUNCS: &[(&CStr, lua_CFunction)] = &[
    (c"new", new),
    (c"wrap", wrap),
    (c"pair", pair),
    (c"close", crate::task::close_fd),
    (c"shutdown", shutdown_fd),
];

/// The methods (`__index` table).
pub(crate) const METHODS: &[(&CStr, lua_CFunction)] = &[
    (c"fd", m_fd),
    (c"family", m_family),
    (c"socktype", m_socktype),
    (c"protocol", m_protocol),
    (c"unwrap", m_unwrap),
    (c"dup", m_dup),
    (c"close", crate::task::close),
    (c"shutdown", m_shutdown),
    (c"bind", m_bind),
    (c"listen", m_listen),
    (c"connect", crate::task::connect),
    (c"accept", crate::task::accept),
    (c"acceptfd", crate::task::acceptfd),
    (c"recvable", crate::task::recvable),
    (c"sendable", crate::task::sendable),
    (c"send", crate::task::send),
    (c"sendto", crate::task::sendto),
    (c"write", crate::task::write),
    (c"sendmsg", crate::task::sendmsg),
    (c"sendfd", crate::task::sendfd),
    (c"sendfile", crate::task::sendfile),
    (c"recv", crate::task::recv),
    (c"recvfrom", crate::task::recvfrom),
    (c"read", crate::task::read),
    (c"recvfd", crate::task::recvfd),
    (c"recvmsg", crate::task::recvmsg),
    (c"atmark", m_atmark),
    (c"getsockname", m_getsockname),
    (c"getpeername", m_getpeername),
    (c"cloexec", m_cloexec),
    (c"nonblock", m_nonblock),
    (c"error", m_error),
    (c"acceptconn", m_acceptconn),
    (c"reuseaddr", m_reuseaddr),
    (c"reuseport", m_reuseport),
    (c"broadcast", m_broadcast),
    (c"debug", m_debug),
    (c"keepalive", m_keepalive),
    (c"oobinline", m_oobinline),
    (c"dontroute", m_dontroute),
    (c"timestamp", m_timestamp),
    (c"rcvbuf", m_rcvbuf),
    (c"rcvlowat", m_rcvlowat),
    (c"sndbuf", m_sndbuf),
    (c"sndlowat", m_sndlowat),
    (c"tcpnodelay", m_tcpnodelay),
    (c"tcpkeepintvl", m_tcpkeepintvl),
    (c"tcpkeepcnt", m_tcpkeepcnt),
    (c"tcpkeepalive", m_tcpkeepalive),
    (c"tcpcork", m_tcpcork),
    (c"rcvtimeo", m_rcvtimeo),
    (c"sndtimeo", m_sndtimeo),
    (c"linger", m_linger),
    (c"mcastloop", m_mcastloop),
    (c"mcastttl", m_mcastttl),
    (c"mcastif", m_mcastif),
    (c"mcastjoin", m_mcastjoin),
    (c"mcastleave", m_mcastleave),
    (c"mcastjoinsrc", m_mcastjoinsrc),
    (c"mcastleavesrc", m_mcastleavesrc),
    (c"mcastblocksrc", m_mcastblocksrc),
    (c"mcastunblocksrc", m_mcastunblocksrc),
];

/// Metamethods besides `__index`.
pub(crate) const META: &[(&CStr, lua_CFunction)] = &[(c"__gc", m_gc), (c"__tostring", m_tostring)];
