//! Unit tests of the binding, in-process on the vendored Lua (the big Lua-written
//! suite lives in `llsocket-lua/test/`).

use mlua::{Lua, LuaOptions, StdLib};

/// A state with every standard library and `llsocket` preloaded over the default backend.
fn state() -> Lua {
    // SAFETY: the debug library is wanted (as in the standalone interpreter).
    let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::new()) };
    crate::preload(&lua).unwrap();
    lua
}

/// Runs `code` (which may `return` values) and returns its results as strings.
fn run(lua: &Lua, code: &str) -> Vec<String> {
    let vals: mlua::MultiValue = lua
        .load(code)
        .eval()
        .unwrap_or_else(|e| panic!("{code}: {e}"));
    vals.iter()
        .map(|v| match v {
            mlua::Value::String(s) => s.to_string_lossy(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn argument_errors_have_the_argerror_shape() {
    let lua = state();
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local s = ll.socket
        local function msg(...) return select(2, pcall(...)) end
        local ai = ll.addrinfo.inet()
        return msg(s.new, 'foo'), msg(s.new, 1, 2, 3, 1), msg(s.new),
               msg(function() return ll.cmsghdrs.new():push({}) end),
               msg(ll.cmsghdr.new, 1, 2), msg(ll.addrinfo.inet, nil, 70000),
               msg(function() return ai:getnameinfo(1.5) end),
               msg(function() local m = ll.msghdr.new(); return m:iov(true) end)
        "#,
    );
    assert_eq!(
        out[0],
        "bad argument #1 to '?' (integer expected, got string)"
    );
    assert_eq!(
        out[1],
        "bad argument #4 to '?' (boolean expected, got number)"
    );
    assert_eq!(
        out[2],
        "bad argument #1 to '?' (integer expected, got no value)"
    );
    assert!(
        out[3].ends_with("bad argument #1 to 'push' (llsocket.cmsghdr expected, got table)"),
        "{}",
        out[3]
    );
    assert!(out[4].ends_with("(string expected, got nil)"), "{}", out[4]);
    assert!(out[5].ends_with("#2 to '?' (uint16_t expected, got an out of range value)"));
    // a method call shifts the number; 1.5 is not an integer on 5.4
    assert!(
        out[6].ends_with("#1 to 'getnameinfo' (integer expected, got number)"),
        "{}",
        out[6]
    );
    assert!(
        out[7].ends_with("#1 to 'iov' (iovec expected, got boolean)"),
        "{}",
        out[7]
    );
}

#[test]
fn twin_error_objects_print_where_and_compare_by_type() {
    let lua = state();
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local errno = ll.errno
        local ai, err = ll.addrinfo.inet('127.0.0.1.1')
        local err2 = select(3, pcall(ll.addrinfo.unix, ('x'):rep(ll.env.unixpath_max)))
        local _, perr = pcall(ll.addrinfo.inet, 'nope')
        return tostring(ai), tostring(err), tostring(err.type == errno.EAFNOSUPPORT),
               err.op, tostring(err.code == errno.EAFNOSUPPORT.code), err.message.op,
               tostring(err.message.message), tostring(err2), tostring(perr == nil),
               tostring(errno[errno.EAGAIN.code] == errno.EAGAIN),
               tostring(errno.eai.EAI_NONAME.name)
        "#,
    );
    assert_eq!(out[0], "nil");
    assert_eq!(
        out[1],
        format!(
            "in field 'inet': [EAFNOSUPPORT:{}][inet_pton] {}",
            libc::EAFNOSUPPORT,
            llsocket_api::Errno::EAFNOSUPPORT.message()
        )
    );
    assert_eq!(&out[2..6], ["true", "inet_pton", "true", "inet_pton"]);
    assert_eq!(out[6], "nil");
    // pcall(f, ...) gives no name
    assert!(out[7].starts_with("?: [ENAMETOOLONG:"), "{}", out[7]);
    assert_eq!(out[8], "true"); // returned, not raised
    assert_eq!(out[9], "true");
    assert_eq!(out[10], "EAI_NONAME");
}

#[test]
fn lua_errno_is_used_by_identity_when_installed() {
    let lua = state();
    let out = run(
        &lua,
        r#"
        local calls = {}
        local function double(prefix)
            local M = { EAFNOSUPPORT = { name = 'EAFNOSUPPORT' }, EAI_NONAME = { name = 'EAI_NONAME' } }
            function M.new(code, msg, op, wrap)
                calls[#calls + 1] = prefix .. ':' .. tostring(code) .. ':' .. tostring(msg) .. ':' .. op ..
                    ':' .. tostring(wrap)
                return { type = M.EAFNOSUPPORT, code = code, op = op }
            end
            return M
        end
        local errno, eai = double('errno'), double('eai')
        package.preload['errno'] = function() return errno end
        package.preload['errno.eai'] = function() return eai end
        local ll = require('llsocket')
        local _, err = ll.addrinfo.inet('bad')
        return tostring(ll.errno == errno), tostring(err.type == errno.EAFNOSUPPORT),
               calls[1], tostring(#calls)
        "#,
    );
    assert_eq!(out[0], "true");
    assert_eq!(out[1], "true");
    assert_eq!(
        out[2],
        format!("errno:{}:nil:inet_pton:nil", libc::EAFNOSUPPORT)
    );
    assert_eq!(out[3], "1");
}

#[test]
fn objects_print_name_and_host_pointer_and_unwrap_keeps_it() {
    let lua = state();
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local ai = ll.addrinfo.inet6('::1', 8080, ll.SOCK_STREAM)
        local iov = ll.iovec.new()
        return tostring(ai), tostring(iov), tostring(ll.msghdr.new()), tostring(ll.cmsghdrs.new()),
               ai:addr(), tostring(ai:port()), tostring(ai:socktype() == ll.SOCK_STREAM),
               tostring(select('#', ai:canonname())), tostring(getmetatable(ai).__name)
        "#,
    );
    assert!(out[0].starts_with("llsocket.addrinfo: 0x"), "{}", out[0]);
    assert!(out[1].starts_with("iovec: 0x"));
    assert!(out[2].starts_with("llsocket.msghdr: "));
    assert!(out[3].starts_with("llsocket.cmsghdrs: "));
    assert_eq!(
        &out[4..9],
        ["::1", "8080", "true", "0", "llsocket.addrinfo"]
    );
}

#[test]
fn unix_addrinfo_keeps_full_length_semantics() {
    let lua = state();
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local a = ll.addrinfo.unix('./test.sock', ll.SOCK_STREAM)
        local b = ll.addrinfo.unix('\0abstract')
        return a:addr(), tostring(a:port()), tostring(a:family() == ll.AF_UNIX), b:addr(),
               tostring(select('#', ll.addrinfo.unix(('x'):rep(ll.env.unixpath_max - 1))))
        "#,
    );
    assert_eq!(out, ["./test.sock", "nil", "true", "", "1"]);
}

#[test]
fn iovec_api_is_binary_safe() {
    let lua = state();
    let out = run(
        &lua,
        r#"
        local iov = require('llsocket').iovec.new()
        local a = iov:add('a\0b')
        local n = iov:addn(2)
        local bad, err = iov:add('')
        local got = iov:concat()
        local part = iov:concat(1, 3)
        local left = iov:consume(2)
        return tostring(a), tostring(n), tostring(bad), err.op, got, part, tostring(left),
               iov:concat(), tostring(#iov), tostring(iov:set('xyz', 2)), iov:get(2), iov:del(1),
               tostring(iov:bytes()), tostring(iov:get(5))
        "#,
    );
    assert_eq!(
        out,
        [
            "1", "2", "-3", "add", "a\0b  ", "\0b ", "3", "b  ", "2", "true", "xyz", "b", "3",
            "nil"
        ]
    );
}

#[test]
fn cmsghdrs_push_shift_and_rights() {
    let lua = state();
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local cs = ll.cmsghdrs.new()
        local pushed = select('#', cs:push(ll.cmsghdr.new(1, 2, 'foo')))
        cs:push(ll.cmsghdr.rights(7, 8))
        local a, b, c = cs:shift(), cs:shift(), cs:shift()
        return tostring(pushed), tostring(a:level()), tostring(a:type()), a:data(), tostring(#a),
               table.concat({b:data()}, ','), tostring(c), tostring(ll.cmsghdr.rights()),
               tostring(#ll.cmsghdr.rights(1, 2, 3))
        "#,
    );
    assert_eq!(out, ["0", "1", "2", "foo", "3", "7,8", "nil", "nil", "12"]);
}

#[test]
fn msghdr_accessors_return_previous_and_nil_detaches() {
    let lua = state();
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local mh = ll.msghdr.new()
        local ai, iov = ll.addrinfo.inet(), ll.iovec.new()
        local p1 = mh:name(ai)
        local p2 = mh:iov(iov)
        local n1 = mh:name()
        local p3 = mh:iov(nil)
        return tostring(p1), tostring(p2), tostring(n1 == ai), tostring(p3 == iov), tostring(mh:iov()),
               tostring(mh:name() == ai), tostring(mh:flags())
        "#,
    );
    assert_eq!(out, ["nil", "nil", "true", "true", "nil", "true", "0"]);
}

// ---- with a mocked backend ---------------------------------------------------------------

use std::rc::Rc;
use std::sync::{Arc, Mutex};

use llsocket_api::{Errno, Fd, MockSocketOps, Platform, RecvMsgOut};

fn mock() -> MockSocketOps {
    let mut m = MockSocketOps::new();
    m.expect_platform().returning(|| Platform {
        os: "linux",
        unix_path_max: 108,
        somaxconn: 4096,
    });
    m.expect_socket().returning(|_, _, _, _| Ok(Fd(5)));
    m.expect_close().returning(|_| Ok(()));
    m
}

fn state_with(m: MockSocketOps) -> Lua {
    // SAFETY: all standard libraries, as the runner has them.
    let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::new()) };
    crate::preload_with(&lua, Rc::new(m)).unwrap();
    lua
}

#[test]
fn return_shapes_of_send_recv_connect() {
    let mut m = mock();
    m.expect_send().returning(|_, buf, _| match buf {
        b"full" => Ok(4),
        b"part" => Ok(2),
        b"again" => Err(Errno::EAGAIN),
        _ => Err(Errno::EPIPE),
    });
    let mut n = 0;
    m.expect_recv().returning(move |_, buf, _| {
        n += 1;
        match n {
            1 => {
                buf[..2].copy_from_slice(b"hi");
                Ok(2)
            }
            2 => Ok(0),
            _ => Err(Errno::EINTR),
        }
    });
    m.expect_connect().returning(|_, _| Err(Errno::EINPROGRESS));
    let lua = state_with(m);
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local s = ll.socket.new(ll.AF_INET, ll.SOCK_STREAM)
        local function shape(...) local t = table.pack(...) for i = 1, t.n do t[i] = tostring(t[i]) end
            return t.n .. ':' .. table.concat(t, ',') end
        local ok, err = s:connect(ll.addrinfo.inet('127.0.0.1', 1))
        return shape(s:send('full')), shape(s:send('part')), shape(s:send('again')),
               select(2, s:send('x')).op, shape(s:recv()), shape(s:recv()), shape(s:recv()),
               shape(ok, err.op, err.type == ll.errno.EINPROGRESS), shape(s:send('')):sub(1, 6)
        "#,
    );
    assert_eq!(
        out,
        [
            "3:4,nil,false",
            "3:2,nil,true",
            "3:0,nil,true",
            "send",
            "1:hi",
            "0:",
            "3:nil,nil,true",
            "3:true,connect,true",
            "2:nil,"
        ]
    );
}

#[test]
fn close_wraps_shutdown_error_when_both_fail() {
    let mut m = mock();
    m.checkpoint();
    m.expect_platform().returning(|| Platform {
        os: "linux",
        unix_path_max: 108,
        somaxconn: 4096,
    });
    m.expect_shutdown().returning(|_, _| Err(Errno::EBADF));
    m.expect_close().returning(|_| Err(Errno::EBADF));
    let lua = state_with(m);
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local ok, err = ll.socket.close(99, ll.SHUT_RDWR)
        return tostring(ok), err.op, err.wrap.op, tostring(err)
        "#,
    );
    assert_eq!(&out[..3], ["false", "close", "shutdown"]);
    assert!(
        out[3].contains("[close]")
            && out[3].contains("\n")
            && out[3].ends_with(&Errno::EBADF.message())
    );
}

/// Makes `m.sendmsg` send everything it is given and record the bytes of each call.
fn record_sendmsg(m: &mut MockSocketOps) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&sent);
    m.expect_sendmsg().returning(move |_, iov, _, _, _| {
        let all: Vec<u8> = iov.iter().flat_map(|p| p.iter().copied()).collect();
        let n = all.len();
        s2.lock().unwrap().push(all);
        Ok(n)
    });
    sent
}

/// A C lua-iovec rock object (iovec.md §3): `{size_t bytes; lua_State *th; int ref}`
/// with NUL-terminated element blocks on the element thread.
unsafe extern "C-unwind" fn crock_new(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi::*;
    // SAFETY: test double called as a Lua C function with string arguments.
    unsafe {
        let n = lua_gettop(l);
        let p = lua_newuserdata(l, std::mem::size_of::<crate::types::CRockIovec>())
            as *mut crate::types::CRockIovec;
        let th = lua_newthread(l);
        let r = luaL_ref(l, LUA_REGISTRYINDEX);
        let mut bytes = 0;
        for i in 1..=n {
            let s = crate::lua::to_bytes(l, i);
            let b = lua_newuserdata(th, s.len() + 1) as *mut u8;
            std::ptr::copy_nonoverlapping(s.as_ptr(), b, s.len());
            *b.add(s.len()) = 0;
            bytes += s.len();
        }
        std::ptr::write(
            p,
            crate::types::CRockIovec {
                bytes,
                th,
                r#ref: r,
            },
        );
        luaL_newmetatable(l, c"iovec".as_ptr());
        lua_setmetatable(l, -2);
        1
    }
}

#[test]
fn msghdr_uses_c_rock_iovec_objects_for_sendmsg_and_recvmsg() {
    let mut m = mock();
    let sent = record_sendmsg(&mut m);
    m.expect_recvmsg().returning(|_, iov, _, _| {
        let src = b"WXYZ";
        let mut k = 0;
        for part in iov.iter_mut() {
            for b in part.iter_mut() {
                if k < src.len() {
                    *b = src[k];
                    k += 1;
                }
            }
        }
        Ok(RecvMsgOut {
            bytes: k,
            ..Default::default()
        })
    });
    let lua = state_with(m);
    // SAFETY: pushes a C function value on the state.
    let f: mlua::Function = unsafe {
        lua.exec_raw((), |l| mlua::ffi::lua_pushcclosure(l, crock_new, 0))
            .unwrap()
    };
    lua.globals().set("crock_new", f).unwrap();
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local s = ll.socket.new(ll.AF_UNIX, ll.SOCK_STREAM)
        local mh = ll.msghdr.new()
        local iov = crock_new('ab', 'cde')
        mh:iov(iov)
        local n, err, again = s:sendmsg(mh)
        local rmh = ll.msghdr.new()
        local riov = crock_new('12', '345')
        rmh:iov(riov)
        local r = s:recvmsg(rmh)
        local n2 = s:sendmsg(rmh) -- the rock's blocks were written in place
        return tostring(n), tostring(again), tostring(r), tostring(mh:iov() == iov), tostring(n2)
        "#,
    );
    assert_eq!(out, ["5", "false", "4", "true", "5"]);
    assert_eq!(
        sent.lock().unwrap().as_slice(),
        [b"abcde".to_vec(), b"WXYZ5".to_vec()]
    );
}

#[test]
fn our_iovec_receives_in_place_and_name_is_filled() {
    let mut m = mock();
    m.expect_recvmsg().returning(|_, iov, _, _| {
        iov[0][..3].copy_from_slice(b"a\0c");
        Ok(RecvMsgOut {
            bytes: 3,
            addr: Some(llsocket_api::SockAddr::v4(
                std::net::Ipv4Addr::new(10, 1, 2, 3),
                99,
            )),
            flags: llsocket_api::MsgFlags(libc::MSG_TRUNC),
            ..Default::default()
        })
    });
    let lua = state_with(m);
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local s = ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM)
        local mh, iov, ai = ll.msghdr.new(), ll.iovec.new(), ll.addrinfo.inet()
        iov:addn(8)
        mh:iov(iov); mh:name(ai)
        local n = s:recvmsg(mh)
        return tostring(n), iov:concat(0, n), tostring(iov:bytes()), ai:addr(), tostring(ai:port()),
               tostring(mh:flags())
        "#,
    );
    assert_eq!(
        out,
        [
            "3",
            "a\0c",
            "8",
            "10.1.2.3",
            "99",
            libc::MSG_TRUNC.to_string().as_str()
        ]
    );
}

#[test]
fn sendfile_takes_file_handles_and_closed_sockets_are_handled() {
    let files = Arc::new(Mutex::new(Vec::new()));
    let f2 = Arc::clone(&files);
    let mut m = mock();
    m.expect_sendfile().returning(move |_, file, off, len| {
        f2.lock().unwrap().push((file.0, off));
        Ok(len.min(3))
    });
    let lua = state_with(m);
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local s = ll.socket.new(ll.AF_INET, ll.SOCK_STREAM)
        local f = io.tmpfile()
        local a = table.pack(s:sendfile(f, 3, 7))
        local b = table.pack(s:sendfile(f, 10))
        f:close()
        local _, closed = s:sendfile(f, 1)
        local bad = select(2, pcall(s.sendfile, s, {}, 1))
        local t = tostring(s)
        local fd = s:unwrap()
        local ok, err = pcall(function() return s:fd() end)
        return tostring(a.n) .. ':' .. tostring(a[1]), tostring(b.n) .. ':' .. tostring(b[3]),
               tostring(closed.type == ll.errno.EBADF), bad, t:match('^llsocket.socket: (.*)$'),
               tostring(s):match('^userdata: (.*)$'), tostring(fd), tostring(ok)
        "#,
    );
    assert_eq!(out[0], "1:3");
    assert_eq!(out[1], "3:true");
    assert_eq!(out[2], "true");
    assert!(
        out[3].ends_with("(FILE* expected, got table)"),
        "{}",
        out[3]
    );
    assert_eq!(out[4], out[5]);
    assert_eq!(&out[6..], ["5", "false"]);
    let calls = files.lock().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].0 > 2 && calls[0].1 == 7 && calls[1].1 == 0);
}

#[test]
fn options_and_multicast_checks() {
    use llsocket_api::{OptName, SockOpt};
    let mut m = mock();
    m.expect_getsockopt().returning(|_, name| match name {
        OptName::Linger => Ok(SockOpt::Linger(llsocket_api::Linger {
            enabled: false,
            secs: 0,
        })),
        OptName::RcvTimeo => Ok(SockOpt::RcvTimeo(llsocket_api::Timeval {
            sec: 0,
            usec: 120_000,
        })),
        OptName::Error => Ok(SockOpt::Error(libc::ECONNREFUSED)),
        OptName::MulticastTtlV4 => Ok(SockOpt::MulticastTtlV4(1)),
        _ => Err(Errno::ENOPROTOOPT),
    });
    let set = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&set);
    m.expect_setsockopt().returning(move |_, o| {
        s2.lock().unwrap().push(o);
        Ok(())
    });
    let lua = state_with(m);
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local tcp = ll.socket.new(ll.AF_INET, ll.SOCK_STREAM)
        local udp = ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM)
        local unix = ll.socket.new(ll.AF_UNIX, ll.SOCK_DGRAM)
        local function op(a, b) return tostring(a) .. ':' .. (b and b.op or '-') end
        local soerr = tcp:error()
        local _, e1 = tcp:mcastttl()
        local _, e2 = unix:mcastjoin('not even checked')
        local _, e3 = udp:mcastjoin(ll.addrinfo.inet6('ff02::1'))
        local bad = select(2, pcall(function() return udp:mcastjoin(1) end))
        return tostring(tcp:linger()), tostring(tcp:linger(5)), tostring(tcp:rcvtimeo()),
               soerr.op .. ':' .. tostring(soerr.type == ll.errno.ECONNREFUSED),
               op(tcp:reuseaddr()), op(e1 and nil, e1), tostring(e1.type == ll.errno.ESOCKTNOSUPPORT),
               op(false, e2), tostring(e2.type == ll.errno.EAFNOSUPPORT), op(false, e3),
               tostring(udp:mcastttl(10)), bad
        "#,
    );
    assert_eq!(
        &out[..11],
        [
            "-1",
            "-1",
            "0.12",
            "error:true",
            "nil:getsockopt",
            "nil:mcastttl_lua",
            "true",
            "false:mcastjoin_lua",
            "true",
            "false:mcastif_lua",
            "1"
        ]
    );
    assert!(
        out[11].ends_with("#1 to 'mcastjoin' (llsocket.addrinfo expected, got number)"),
        "{}",
        out[11]
    );
    let set = set.lock().unwrap();
    assert_eq!(
        set.as_slice(),
        [
            SockOpt::Linger(llsocket_api::Linger {
                enabled: true,
                secs: 5
            }),
            SockOpt::MulticastTtlV4(10)
        ]
    );
}

#[test]
fn accept_recvfrom_and_fd_passing_shapes() {
    use llsocket_api::{cmsg, Accepted, Cmsg, SockAddr};
    let mut m = mock();
    let mut k = 0;
    m.expect_accept().returning(move |_, want| {
        k += 1;
        match k {
            1 => Ok(Accepted {
                fd: Fd(6),
                addr: want.then(|| SockAddr::v4(std::net::Ipv4Addr::LOCALHOST, 4242)),
            }),
            2 => Err(Errno::ECONNABORTED),
            _ => Err(Errno::EMFILE),
        }
    });
    m.expect_recvfrom().returning(|_, buf, _| {
        buf[0] = b'x';
        Ok((1, Some(SockAddr::v4(std::net::Ipv4Addr::LOCALHOST, 7))))
    });
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&sent);
    m.expect_sendmsg().returning(move |_, iov, control, _, _| {
        s2.lock()
            .unwrap()
            .push((iov.concat(), cmsg::decode(control)));
        Ok(1)
    });
    m.expect_recvmsg().returning(|_, iov, control, _| {
        iov[0][0] = 1;
        let c = cmsg::encode(&[Cmsg::rights(&[Fd(9)])]);
        control[..c.len()].copy_from_slice(&c);
        Ok(RecvMsgOut {
            bytes: 1,
            control_len: c.len(),
            ..Default::default()
        })
    });
    let lua = state_with(m);
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local s = ll.socket.new(ll.AF_INET, ll.SOCK_STREAM)
        local c, e, again, ai = s:accept(true)
        local a2 = table.pack(s:accept())
        local _, e3 = s:accept()
        local m, _, _, from = s:recvfrom()
        return tostring(c):sub(1, 17), tostring(c:fd()), ai:addr(), tostring(ai:port()),
               tostring(a2.n) .. tostring(a2[3]), e3.op, m, tostring(from:port()),
               tostring(s:sendfd(3)), tostring(s:recvfd())
        "#,
    );
    assert_eq!(
        out,
        [
            "llsocket.socket: ",
            "6",
            "127.0.0.1",
            "4242",
            "3true",
            "acceptfd",
            "x",
            "7",
            "0",
            "9"
        ]
    );
    let sent = sent.lock().unwrap();
    assert_eq!(sent[0].0, [1u8]);
    assert_eq!(sent[0].1, [Cmsg::rights(&[Fd(3)])]);
}

/// The C rock's `__gc` (lua-iovec 0.6): releases the element thread and sets
/// `ref = LUA_NOREF`; its metatable is not locked, so a program can call it by hand.
unsafe extern "C-unwind" fn crock_gc(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi::*;
    // SAFETY: test double called with a crock_new object.
    unsafe {
        let p = lua_touserdata(l, 1) as *mut crate::types::CRockIovec;
        luaL_unref(l, LUA_REGISTRYINDEX, (*p).r#ref);
        (*p).r#ref = LUA_NOREF;
        0
    }
}

#[test]
fn a_c_rock_iovec_after_its_gc_is_empty_not_freed_memory() {
    let mut m = mock();
    let sent = record_sendmsg(&mut m);
    let lua = state_with(m);
    // SAFETY: pushes C function values on the state.
    let (f, g): (mlua::Function, mlua::Function) = unsafe {
        (
            lua.exec_raw((), |l| mlua::ffi::lua_pushcclosure(l, crock_new, 0))
                .unwrap(),
            lua.exec_raw((), |l| mlua::ffi::lua_pushcclosure(l, crock_gc, 0))
                .unwrap(),
        )
    };
    lua.globals().set("crock_new", f).unwrap();
    lua.globals().set("crock_gc", g).unwrap();
    let out = run(
        &lua,
        r#"
        local ll = require('llsocket')
        local s = ll.socket.new(ll.AF_UNIX, ll.SOCK_STREAM)
        local mh = ll.msghdr.new()
        local iov = crock_new('still', 'here')
        mh:iov(iov)
        local before = s:sendmsg(mh)
        crock_gc(iov)                      -- by hand, as a program can
        for _ = 1, 3 do collectgarbage() end -- the element thread is gone
        local after = s:sendmsg(mh)
        return tostring(before), tostring(after)
        "#,
    );
    assert_eq!(out, ["9", "0"]);
    assert_eq!(
        sent.lock().unwrap().as_slice(),
        [b"stillhere".to_vec(), Vec::new()]
    );
}
