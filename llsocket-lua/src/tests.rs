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
