-- Socket options and multicast methods (socket.md §10-§11). Loopback only.
local t = ...
local llsocket = t.llsocket()
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local AF_INET, AF_INET6, AF_UNIX = llsocket.AF_INET, llsocket.AF_INET6, llsocket.AF_UNIX
local SOCK_STREAM, SOCK_DGRAM = llsocket.SOCK_STREAM, llsocket.SOCK_DGRAM
local linux = llsocket.env.os == 'linux'
local has_int_subtype = math.type ~= nil

local new = t.socket

local pair = t.pair

local function close_to(a, b, eps)
    return math.abs(a - b) <= eps
end

-- ---------------------------------------------------------------------------
-- boolean options

local BOOL_OPTS = { 'reuseaddr', 'broadcast', 'keepalive', 'oobinline', 'dontroute', 'timestamp' }
if llsocket.env.os ~= 'unknown' then
    BOOL_OPTS[#BOOL_OPTS + 1] = 'reuseport'
end

t.case('boolean options: get false, set returns the old value, strict booleans', function()
    for _, s in ipairs({ new(AF_INET, SOCK_STREAM), new(AF_INET, SOCK_DGRAM), (pair()) }) do
        for _, name in ipairs(BOOL_OPTS) do
            local m = s[name]
            t.deq(t.pack(m(s)), { n = 1, false }, name .. '()')
            local r = t.pack(m(s, true))
            if r[1] == nil and name == 'reuseport' and s:family() == AF_UNIX then
                -- Linux >= 6.10 refuses SO_REUSEPORT on AF_UNIX (the spec predates that)
                t.err(r[2], 'EOPNOTSUPP', 'setsockopt')
            else
                t.deq(r, { n = 1, false }, name .. '(true)')
                t.deq(t.pack(m(s)), { n = 1, true }, name .. '() after set')
                t.deq(t.pack(m(s, nil)), { n = 1, true }, name .. '(nil) only reads')
                t.deq(t.pack(m(s, false)), { n = 1, true }, name .. '(false)')
                t.eq(m(s), false, name)
            end
            t.argerr(function() m(s, 'x') end, 2, 'boolean expected, got string')
            t.argerr(function() s[name](s, 1) end, 2, 'boolean expected, got number', 'plain call: not shifted')
        end
        t.argerr(function() s:reuseaddr(1) end, 1, 'boolean expected, got number')
        t.argerr(function() s:keepalive('yes') end, 1, 'boolean expected, got string')
    end
end)

t.case('debug: getter works; setter returns the old value or a setsockopt error', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.deq(t.pack(s:debug()), { n = 1, false })
    local r = t.pack(s:debug(true))
    if r[1] == nil then
        t.eq(r.n, 2)
        t.eq(r[2].op, 'setsockopt')
    else
        t.deq(r, { n = 1, false })
        t.is_true(s:debug())
    end
    t.argerr(function() s:debug('on') end, 1, 'boolean expected, got string')
end)

t.case('acceptconn: false, true after listen; setting fails with setsockopt', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.deq(t.pack(s:acceptconn()), { n = 1, false })
    t.is_true(s:bind(addrinfo.inet('127.0.0.1', 0)))
    t.is_true(s:listen())
    t.deq(t.pack(s:acceptconn()), { n = 1, true })
    local r = t.nres(2, s:acceptconn(false))
    t.is_nil(r[1])
    t.eq(r[2].op, 'setsockopt')
end)

-- ---------------------------------------------------------------------------
-- integer options

t.case('rcvbuf/sndbuf: integers, old value returned, kernel doubling on Linux', function()
    local s = new(AF_INET, SOCK_STREAM)
    for _, name in ipairs({ 'rcvbuf', 'sndbuf' }) do
        local m = s[name]
        local cur = t.is_int(m(s))
        t.ok(cur > 0)
        t.deq(t.pack(m(s, 8192)), { n = 1, cur })
        local now = t.is_int(m(s))
        if linux then
            t.eq(now, 16384, name .. ' doubled by the kernel')
        end
        t.eq(m(s, cur), now)
        t.argerr(function() m(s, 'x') end, 2, 'integer expected, got string')
        t.argerr(function() s[name](s, 1.5) end, 2, 'integer expected, got number')
        t.argerr(function() s[name](s, true) end, 2, 'integer expected, got boolean')
    end
end)

t.case('rcvlowat: 1 by default, settable', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.deq(t.pack(s:rcvlowat()), { n = 1, 1 })
    t.deq(t.pack(s:rcvlowat(10)), { n = 1, 1 })
    t.eq(s:rcvlowat(), 10)
    t.argerr(function() s:rcvlowat('10') end, 1, 'integer expected, got string')
end)

t.case('sndlowat: readable; setting returns old value or setsockopt error', function()
    local s = new(AF_INET, SOCK_STREAM)
    local cur = t.is_int(s:sndlowat())
    local r = t.pack(s:sndlowat(cur))
    if r[1] == nil then
        t.eq(r[2].op, 'setsockopt')
        if linux then
            t.err(r[2], 'ENOPROTOOPT', 'setsockopt')
        end
    else
        t.eq(r[1], cur)
    end
    t.argerr(function() s:sndlowat({}) end, 1, 'integer expected, got table')
end)

-- ---------------------------------------------------------------------------
-- TCP options

t.case('tcp options on a TCP socket', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.deq(t.pack(s:tcpnodelay()), { n = 1, false })
    t.deq(t.pack(s:tcpnodelay(true)), { n = 1, false })
    t.is_true(s:tcpnodelay())
    t.argerr(function() s:tcpnodelay(1) end, 1, 'boolean expected, got number')
    for _, name in ipairs({ 'tcpkeepintvl', 'tcpkeepcnt', 'tcpkeepalive' }) do
        local m = s[name]
        local cur = t.is_int(m(s))
        t.ok(cur > 0, name)
        t.deq(t.pack(m(s, 5)), { n = 1, cur }, name)
        t.eq(m(s), 5, name)
        t.argerr(function() m(s, 'x') end, 2, 'integer expected, got string')
    end
    if linux then
        t.eq(new(AF_INET, SOCK_STREAM):tcpkeepintvl(), 75)
        t.eq(new(AF_INET, SOCK_STREAM):tcpkeepcnt(), 9)
        t.eq(new(AF_INET, SOCK_STREAM):tcpkeepalive(), 7200)
    end
    t.deq(t.pack(s:tcpcork()), { n = 1, false })
    t.deq(t.pack(s:tcpcork(true)), { n = 1, false })
    t.is_true(s:tcpcork())
    t.argerr(function() s:tcpcork('x') end, 1, 'boolean expected, got string')
end)

t.case('tcp options on non-TCP sockets fail at getsockopt, before the value is checked', function()
    local u = new(AF_INET, SOCK_DGRAM)
    local a = pair()
    for _, s in ipairs({ u, a }) do
        for _, name in ipairs({ 'tcpnodelay', 'tcpkeepintvl', 'tcpkeepcnt', 'tcpkeepalive', 'tcpcork' }) do
            local r = t.nres(2, s[name](s))
            t.is_nil(r[1])
            t.eq(r[2].op, 'getsockopt', name)
            r = t.nres(2, s[name](s, 'not checked'))
            t.eq(r[2].op, 'getsockopt', name)
        end
    end
end)

-- ---------------------------------------------------------------------------
-- timeouts

t.case('rcvtimeo/sndtimeo: float seconds, old value, coercing number check', function()
    local s = new(AF_INET, SOCK_STREAM)
    for _, name in ipairs({ 'rcvtimeo', 'sndtimeo' }) do
        local m = s[name]
        local r = t.nres(1, m(s))
        t.eq(r[1], 0)
        if has_int_subtype then
            t.eq(math.type(r[1]), 'float', name .. ' returns a float')
        end
        t.deq(t.pack(m(s, 0.5)), { n = 1, 0 })
        t.eq(m(s), 0.5)
        t.eq(m(s, 0.12), 0.5)
        t.ok(close_to(m(s), 0.12, 0.011), name .. ' ~0.12: ' .. tostring(m(s)))
        t.ok(close_to(m(s, '1.5'), 0.12, 0.011), 'numeric string accepted')
        t.eq(m(s), 1.5)
        t.eq(m(s, 2), 1.5)
        t.eq(m(s), 2)
        t.eq(m(s, 0), 2)
        t.argerr(function() m(s, true) end, 2, 'number expected, got boolean')
        t.argerr(function() s[name](s, 'abc') end, 2, 'number expected, got string')
    end
end)

t.case('rcvtimeo makes a blocking recv return nil, nil, true', function()
    local a = pair()
    t.eq(a:rcvtimeo(0.05), 0)
    t.deq(t.pack(a:recv()), { n = 3, nil, nil, true })
    t.deq(t.pack(a:read()), { n = 3, nil, nil, true })
end)

t.case('sndtimeo makes a blocking send into a full buffer return 0, nil, true', function()
    local a = pair()
    t.eq(a:sndtimeo(0.05), 0)
    local chunk = string.rep('z', 65536)
    local last
    for _ = 1, 1000 do
        last = t.pack(a:send(chunk))
        t.is_nil(last[2])
        if last[1] == 0 then
            break
        end
    end
    t.deq(last, { n = 3, 0, nil, true })
end)

-- ---------------------------------------------------------------------------
-- linger, error

t.case('linger: -1 when off, seconds when on', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.deq(t.pack(s:linger()), { n = 1, -1 })
    t.deq(t.pack(s:linger(123)), { n = 1, -1 })
    t.deq(t.pack(s:linger()), { n = 1, 123 })
    t.deq(t.pack(s:linger(-1)), { n = 1, 123 })
    t.deq(t.pack(s:linger()), { n = 1, -1 })
    t.eq(s:linger(0), -1)
    t.eq(s:linger(), 0)
    t.argerr(function() s:linger('x') end, 1, 'integer expected, got string')
    t.argerr(function() s:linger(true) end, 1, 'integer expected, got boolean')
end)

t.case('error: nil without a pending error; setting fails; strict integer', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.deq(t.pack(s:error()), { n = 1, nil })
    local r = t.nres(2, s:error(1))
    t.is_nil(r[1])
    t.eq(r[2].op, 'setsockopt')
    t.argerr(function() s:error('x') end, 1, 'integer expected, got string')
end)

-- ---------------------------------------------------------------------------
-- multicast: type and family checks come first

local MCAST_NIL = { mcastloop = 'mcastloop_lua', mcastttl = 'mcastttl_lua', mcastif = 'mcastif_lua' }
local MCAST_FALSE = {
    mcastjoin = 'mcastjoin_lua', mcastleave = 'mcastleave_lua',
    mcastjoinsrc = 'mcastjoinsrc_lua', mcastleavesrc = 'mcastleavesrc_lua',
    mcastblocksrc = 'mcastblocksrc_lua', mcastunblocksrc = 'mcastunblocksrc_lua',
}

t.case('multicast on a stream socket: ESOCKTNOSUPPORT before any argument check', function()
    local s = new(AF_INET, SOCK_STREAM)
    for name, op in pairs(MCAST_NIL) do
        local r = t.nres(2, s[name](s, {}))
        t.is_nil(r[1])
        t.err(r[2], 'ESOCKTNOSUPPORT', op)
    end
    for name, op in pairs(MCAST_FALSE) do
        local r = t.nres(2, s[name](s, 1, 2, 3))
        t.is_false(r[1])
        t.err(r[2], 'ESOCKTNOSUPPORT', op)
    end
end)

t.case('multicast on a unix datagram socket: EAFNOSUPPORT', function()
    local a = pair(SOCK_DGRAM)
    for name, op in pairs(MCAST_NIL) do
        local r = t.nres(2, a[name](a))
        t.is_nil(r[1])
        t.err(r[2], 'EAFNOSUPPORT', op)
    end
    for name, op in pairs(MCAST_FALSE) do
        local r = t.nres(2, a[name](a))
        t.is_false(r[1])
        t.err(r[2], 'EAFNOSUPPORT', op)
    end
end)

t.case('mcastloop and mcastttl on UDP v4 and v6', function()
    local socks = { new(AF_INET, SOCK_DGRAM) }
    socks[2] = new(AF_INET6, SOCK_DGRAM)
    for _, u in ipairs(socks) do
        t.deq(t.pack(u:mcastloop()), { n = 1, true })
        t.deq(t.pack(u:mcastloop(false)), { n = 1, true })
        t.deq(t.pack(u:mcastloop()), { n = 1, false })
        t.argerr(function() u:mcastloop('foo') end, 1, 'boolean expected, got string')
        local d = t.is_int(u:mcastttl())
        t.deq(t.pack(u:mcastttl(10)), { n = 1, d })
        t.eq(u:mcastttl(), 10)
        t.eq(u:mcastttl(d), 10)
        t.eq(u:mcastttl(), d)
        t.argerr(function() u:mcastttl('foo') end, 1, 'integer expected, got string')
    end
end)

t.case('mcastif argument type is checked', function()
    local u = new(AF_INET, SOCK_DGRAM)
    t.argerr(function() u:mcastif(1) end, 1, 'string expected, got number')
    t.argerr(function() u:mcastif(true) end, 1, 'string expected, got boolean')
end)

t.case('multicast argument errors on a UDP socket', function()
    local u = new(AF_INET, SOCK_DGRAM)
    local g = addrinfo.inet('224.0.0.251')
    t.argerr(function() u:mcastjoin(1) end, 1, 'llsocket.addrinfo expected, got number')
    t.argerr(function() u:mcastleave() end, 1, 'llsocket.addrinfo expected, got no value')
    t.argerr(function() u:mcastjoin(g, true) end, 2, 'string expected, got boolean')
    -- method syntax shifts the number down by one
    t.argerr(function() u:mcastjoinsrc(true) end, 1, 'llsocket.addrinfo expected, got boolean')
    t.argerr(function() u:mcastleavesrc(g, false) end, 2, 'llsocket.addrinfo expected, got boolean')
    t.argerr(function() u:mcastblocksrc(g, g, {}) end, 3, 'string expected, got table')
    t.argerr(function() u:mcastunblocksrc(g, g, 1) end, 3, 'string expected, got number')
    -- plain calls (no method syntax) report the C position
    for name in pairs({ mcastjoinsrc = 1, mcastleavesrc = 1, mcastblocksrc = 1, mcastunblocksrc = 1 }) do
        t.argerr(function() u[name](u, true) end, 2, 'llsocket.addrinfo expected, got boolean')
        t.argerr(function() u[name](u, g, false) end, 3, 'llsocket.addrinfo expected, got boolean')
        t.argerr(function() u[name](u, g, g, {}) end, 4, 'string expected, got table')
    end
end)

t.case('multicast family mismatches: false, EAFNOSUPPORT with the documented ops', function()
    local u4 = new(AF_INET, SOCK_DGRAM)
    local g4, g6 = addrinfo.inet('224.0.0.251'), addrinfo.inet6('ff02::fb')
    local r = t.nres(2, u4:mcastjoin(g6))
    t.is_false(r[1])
    t.err(r[2], 'EAFNOSUPPORT', 'mcastif_lua')
    r = t.nres(2, u4:mcastleave(g6))
    t.err(r[2], 'EAFNOSUPPORT', 'mcastif_lua')
    r = t.nres(2, u4:mcastjoinsrc(g4, g6))
    t.err(r[2], 'EAFNOSUPPORT', 'mcast4srcgroup_lua')
    local u6 = new(AF_INET6, SOCK_DGRAM)
    do
        r = t.nres(2, u6:mcastjoin(g4))
        t.is_false(r[1])
        t.err(r[2], 'EAFNOSUPPORT', 'mcast6group_lua')
        r = t.nres(2, u6:mcastblocksrc(g6, g4))
        t.err(r[2], 'EAFNOSUPPORT', 'mcastsrcgroup_lua')
    end
end)

t.case('joining a non-multicast address or an unknown interface: false, err', function()
    local u = new(AF_INET, SOCK_DGRAM)
    local r = t.nres(2, u:mcastjoin(addrinfo.inet('127.0.0.1')))
    t.is_false(r[1])
    t.err(r[2], 'EINVAL', 'setsockopt')
    r = t.nres(2, u:mcastjoin(addrinfo.inet('224.0.0.251'), 'foo.bar.baz.qux'))
    t.is_false(r[1])
    t.eq(r[2].op, 'ioctl')
    r = t.nres(2, u:mcastjoinsrc(addrinfo.inet('232.1.1.1'), addrinfo.inet('127.0.0.1'), 'foo.bar.baz.qux'))
    t.eq(r[2].op, 'ioctl')
    -- group and source swapped: the "group" is not multicast
    r = t.nres(2, u:mcastjoinsrc(addrinfo.inet('127.0.0.1'), addrinfo.inet('232.1.1.1')))
    t.is_false(r[1])
    t.eq(r[2].op, 'setsockopt')
    r = t.nres(2, u:mcastleave(addrinfo.inet('224.0.0.251')))
    t.is_false(r[1], 'leaving a group never joined fails')
    t.eq(r[2].op, 'setsockopt')
    local u6 = new(AF_INET6, SOCK_DGRAM)
    do
        r = t.nres(2, u6:mcastjoin(addrinfo.inet6('ff02::fb'), 'foo.bar.baz.qux'))
        t.is_false(r[1])
        t.eq(r[2].op, 'if_nametoindex')
        local r2 = t.nres(2, u6:mcastif('foo.bar.baz.qux'))
        t.is_nil(r2[1])
        t.eq(r2[2].op, 'if_nametoindex')
    end
    local r3 = t.nres(2, u:mcastif('foo.bar.baz.qux'))
    t.is_nil(r3[1])
    t.eq(r3[2].op, 'ioctl')
end)

if linux then
    t.case('linux: mcastif get/set/reset with lo (v4 and v6)', function()
        local socks = { new(AF_INET, SOCK_DGRAM) }
        socks[2] = new(AF_INET6, SOCK_DGRAM)
        for _, u in ipairs(socks) do
            t.deq(t.pack(u:mcastif()), { n = 1, nil })
            t.deq(t.pack(u:mcastif('lo')), { n = 1, nil })
            t.deq(t.pack(u:mcastif()), { n = 1, 'lo' })
            t.deq(t.pack(u:mcastif(nil)), { n = 1, 'lo' }, 'explicit nil resets')
            t.deq(t.pack(u:mcastif()), { n = 1, nil })
        end
    end)

    t.case('linux: join/leave, source-specific join/leave, block/unblock on lo', function()
        local u = new(AF_INET, SOCK_DGRAM)
        local g = addrinfo.inet('224.0.0.251')
        t.deq(t.pack(u:mcastjoin(g, 'lo')), { n = 1, true })
        t.deq(t.pack(u:mcastblocksrc(g, addrinfo.inet('127.0.0.2'), 'lo')), { n = 1, true })
        t.deq(t.pack(u:mcastunblocksrc(g, addrinfo.inet('127.0.0.2'), 'lo')), { n = 1, true })
        t.deq(t.pack(u:mcastleave(g, 'lo')), { n = 1, true })
        local r = t.nres(2, u:mcastleave(g, 'lo'))
        t.is_false(r[1])
        t.eq(r[2].op, 'setsockopt')
        local ssm = addrinfo.inet('232.1.1.1')
        t.deq(t.pack(u:mcastjoinsrc(ssm, addrinfo.inet('127.0.0.1'), 'lo')), { n = 1, true })
        t.deq(t.pack(u:mcastleavesrc(ssm, addrinfo.inet('127.0.0.1'), 'lo')), { n = 1, true })
        local u2 = new(AF_INET, SOCK_DGRAM)
        t.deq(t.pack(u2:mcastjoin(g)), { n = 1, true }, 'default interface')
        t.is_true(u2:mcastleave(g))
    end)

    t.case('linux: a multicast datagram over lo reaches a member', function()
        local group = '224.0.0.251'
        local rx = new(AF_INET, SOCK_DGRAM)
        t.is_true(rx:reuseaddr(true) ~= nil)
        t.is_true(rx:bind(addrinfo.inet(group, 0)))
        local port = rx:getsockname():port()
        t.is_true(rx:mcastjoin(addrinfo.inet(group), 'lo'))
        local tx = new(AF_INET, SOCK_DGRAM)
        t.eq(tx:mcastif('lo'), nil)
        t.is_true(tx:mcastloop())
        t.deq(t.pack(tx:sendto('to the group', addrinfo.inet(group, port))), { n = 3, 12, nil, false })
        t.is_true(rx:recvable(2000), 'datagram did not arrive')
        t.eq(rx:recv(), 'to the group')
    end)
end

if linux then
    t.case('linux: timeouts the kernel refuses give nil, err (setsockopt)', function()
        local s = new(AF_INET, SOCK_STREAM)
        local r = t.nres(2, s:rcvtimeo(-1.5))
        t.is_nil(r[1])
        t.err(r[2], 'EDOM', 'setsockopt')
        r = t.nres(2, s:sndtimeo(-0.25))
        t.err(r[2], 'EDOM', 'setsockopt')
        t.eq(s:rcvtimeo(), 0, 'unchanged')
    end)
end
