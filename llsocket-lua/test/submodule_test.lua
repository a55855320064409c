-- Sub-modules as entry points of their own (README.md "Module layout"): every sub-table is
-- also `require('llsocket.<name>')`, and objects made through any entry point, or any
-- loading of the module (hot reload), are accepted by the functions of every other.
-- (Requiring each sub-module *first*, in a fresh state and in several orders, is
-- llsocket-lua/test/fresh_states.lua: it needs new interpreter processes.)
local t = ...
local ll = t.llsocket()
local AF_INET, AF_UNIX = ll.AF_INET, ll.AF_UNIX
local SOCK_STREAM, SOCK_DGRAM = ll.SOCK_STREAM, ll.SOCK_DGRAM

local subs = { 'socket', 'addrinfo', 'msghdr', 'cmsghdr', 'cmsghdrs', 'device', 'env' }

local function keys(tbl)
    local out = {}
    for k in pairs(tbl) do out[#out + 1] = tostring(k) end
    table.sort(out)
    return table.concat(out, ',')
end

t.case('every sub-module is requirable and has the contents of the main module\'s field', function()
    for _, name in ipairs(subs) do
        local m = require('llsocket.' .. name)
        t.is_type(m, 'table', name)
        t.eq(keys(m), keys(ll[name]), name)
    end
    t.eq(require('llsocket.env').os, ll.env.os)
    t.eq(require('llsocket.env').unixpath_max, ll.env.unixpath_max)
    t.is_type(require('llsocket.device').getifaddrs(), 'table')
end)

t.case('objects cross entry points in every method that takes an object', function()
    local S, A = require('llsocket.socket'), require('llsocket.addrinfo')
    local M, C, CS = require('llsocket.msghdr'), require('llsocket.cmsghdr'), require('llsocket.cmsghdrs')
    -- sockets of one entry point, addresses of another: bind, connect, sendto, getsockname
    local srv = t.closing(S.new(AF_INET, SOCK_DGRAM, 0, true))
    t.is_true(srv:bind(A.inet('127.0.0.1', 0)))
    local cli = t.closing(ll.socket.new(AF_INET, SOCK_DGRAM, 0, true))
    local to = srv:getsockname()
    t.eq(cli:sendto('via sub-module address', to), 22)
    t.eq(srv:recv(), 'via sub-module address')
    t.is_true(cli:connect(A.inet('127.0.0.1', to:port())))
    -- sendmsg/recvmsg with a msghdr, iovec and cmsghdrs of other entry points; SCM_RIGHTS
    local a, b = t.pair(SOCK_DGRAM)
    local mh = M.new()
    local iov = ll.iovec.new()
    iov:add('payload')
    t.is_nil(mh:iov(iov))
    local cs = CS.new()
    cs:push(C.rights(cli:fd()))
    t.is_nil(mh:control(cs))
    t.eq(a:sendmsg(mh), 7)
    local rmh = ll.msghdr.new()
    local riov = ll.iovec.new()
    riov:addn(7)
    rmh:iov(riov)
    local rcs = CS.new()
    rcs:push(C.new(0, 0, string.rep('\0', 64)))
    rmh:control(rcs)
    rmh:name(A.unix('/nonexistent'))
    t.eq(b:recvmsg(rmh), 7)
    t.eq(riov:concat(), 'payload')
    local got = rcs:shift()
    t.not_nil(got)
    local fd = got:data()
    t.is_int(fd)
    t.is_true(ll.socket.close(fd))
    -- sendfd with an address of another entry point
    local u = t.closing(S.new(AF_UNIX, SOCK_DGRAM))
    local path = t.tmppath('sub')
    local r = t.closing(ll.socket.new(AF_UNIX, SOCK_DGRAM))
    t.is_true(r:bind(A.unix(path)))
    t.eq(u:sendfd(cli:fd(), ll.addrinfo.unix(path)), 0)
    local rfd = r:recvfd()
    t.is_int(rfd)
    t.is_true(S.close(rfd))
end)

t.case('a second loading after clearing package.loaded shares types, errors and old sockets', function()
    local saved = package.loaded.llsocket
    t.cleanup(function() package.loaded.llsocket = saved end)
    package.loaded.llsocket = nil
    local ll2 = require('llsocket')
    t.ne(ll2, ll, 'a new module table')
    t.ne(ll2.socket.new, ll.socket.new, 'new module functions')
    t.eq(ll2.errno, ll.errno, 'one error module per state')
    local old = t.closing(ll.socket.new(AF_INET, SOCK_DGRAM, 0, true))
    local new = t.closing(ll2.socket.new(AF_INET, SOCK_DGRAM, 0, true))
    t.eq(getmetatable(old), getmetatable(new))
    -- objects of either loading in the functions of the other
    t.is_true(old:bind(ll2.addrinfo.inet('127.0.0.1', 0)))
    t.is_true(new:bind(ll.addrinfo.inet('127.0.0.1', 0)))
    local mh = ll2.msghdr.new()
    local iov = ll.iovec.new()
    iov:add('cross')
    mh:iov(iov)
    mh:name(old:getsockname())
    t.eq(new:sendmsg(mh), 5)
    t.eq(old:recv(), 'cross')
    local _, err = new:recv()
    t.eq(err and err.type, nil)
    local _, e = ll2.socket.new(-1, -1)
    t.eq(e.type, ll.errno[e.code], 'error types of one loading are the other\'s')
    -- an old socket is still closed by __gc
    local p = ll.socket.pair(SOCK_STREAM, 0, true)
    local peer = t.closing(p[2])
    p[1] = nil
    p = nil
    for _ = 1, 3 do collectgarbage('collect') end
    t.nres(0, peer:recv())
end)

t.case('one metatable per type per state, marked as this library\'s', function()
    t.ok(debug and debug.getregistry, 'the suite needs the debug library')
    local reg = debug.getregistry()
    local s = t.socket(AF_INET, SOCK_STREAM)
    t.eq(debug.getmetatable(s), reg['llsocket.socket'])
    t.eq(debug.getmetatable(require('llsocket.msghdr').new()), reg['llsocket.msghdr'])
    t.eq(debug.getmetatable(ll.iovec.new()), reg['llsocket.iovec'])
    t.is_type(rawget(reg['llsocket.socket'], '__llsocket_rs'), 'userdata')
    t.is_nil(reg.iovec == reg['llsocket.iovec'] and true or nil, 'our iovec is not registered as "iovec"')
end)

t.case('a registry name owned by another module is refused, not trusted', function()
    t.ok(debug and debug.getregistry, 'the suite needs the debug library')
    local reg = debug.getregistry()
    local saved_mt, saved_loaded = reg['llsocket.cmsghdr'], package.loaded.llsocket
    t.cleanup(function()
        reg['llsocket.cmsghdr'] = saved_mt
        package.loaded.llsocket = saved_loaded
    end)
    reg['llsocket.cmsghdr'] = { __name = 'llsocket.cmsghdr' } -- e.g. another C module's
    package.loaded.llsocket = nil
    t.raises(function() require('llsocket') end, "registry entry 'llsocket.cmsghdr' belongs to another module")
end)

t.case('multicast memberships take addresses of another entry point', function()
    local A = require('llsocket.addrinfo')
    local u = t.closing(require('llsocket.socket').new(AF_INET, SOCK_DGRAM))
    -- a join works with the sub-module's group; join, block, unblock, leave of a source
    -- group with both addresses from the sub-module and the main module mixed
    local g = A.inet('239.255.77.1')
    t.is_true(u:mcastjoin(g, 'lo'))
    t.is_true(u:mcastblocksrc(ll.addrinfo.inet('239.255.77.1'), A.inet('127.0.0.9'), 'lo'))
    t.is_true(u:mcastunblocksrc(g, ll.addrinfo.inet('127.0.0.9'), 'lo'))
    t.is_true(u:mcastleave(ll.addrinfo.inet('239.255.77.1'), 'lo'))
    t.is_true(u:mcastjoinsrc(A.inet('232.1.77.1'), A.inet('127.0.0.1'), 'lo'))
    t.is_true(u:mcastleavesrc(ll.addrinfo.inet('232.1.77.1'), A.inet('127.0.0.1'), 'lo'))
end)

t.case('reloading the module over and over keeps nothing per loading', function()
    local saved = package.loaded.llsocket
    t.cleanup(function() package.loaded.llsocket = saved end)
    local function reload(n)
        for _ = 1, n do
            package.loaded.llsocket = nil
            require('llsocket')
            package.loaded['llsocket.msghdr'] = nil
            require('llsocket.msghdr')
        end
    end
    reload(50) -- warm up (string interning, registry growth)
    for _ = 1, 3 do collectgarbage('collect') end
    local before = collectgarbage('count')
    reload(2000)
    for _ = 1, 3 do collectgarbage('collect') end
    local grew = collectgarbage('count') - before
    t.ok(grew < 64, string.format('%.1f kB kept after 2000 reloads', grew))
end)
