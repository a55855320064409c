-- llsocket.addrinfo: inet, inet6, unix, getaddrinfo and the object's methods (addrinfo.md).
local t = ...
local llsocket = t.llsocket()
local addrinfo = llsocket.addrinfo
local AF_INET, AF_INET6, AF_UNIX = llsocket.AF_INET, llsocket.AF_INET6, llsocket.AF_UNIX
local SOCK_STREAM, SOCK_DGRAM = llsocket.SOCK_STREAM, llsocket.SOCK_DGRAM
local IPPROTO_TCP, IPPROTO_UDP = llsocket.IPPROTO_TCP, llsocket.IPPROTO_UDP
local AI_PASSIVE, AI_NUMERICHOST = llsocket.AI_PASSIVE, llsocket.AI_NUMERICHOST
local NI_NUMERICHOST, NI_NUMERICSERV = llsocket.NI_NUMERICHOST, llsocket.NI_NUMERICSERV

-- Whether a text file contains a line matching `pattern`.
local function file_has(path, pattern)
    local f = io.open(path, 'r')
    if not f then
        return false
    end
    local found = false
    for line in f:lines() do
        if line:match(pattern) then
            found = true
        end
    end
    f:close()
    return found
end

-- ---------------------------------------------------------------------------
-- inet / inet6

t.case('inet argument errors', function()
    t.argerr(function() addrinfo.inet(1) end, 1, 'string expected, got number')
    t.argerr(function() addrinfo.inet(true) end, 1, 'string expected, got boolean')
    t.argerr(function() addrinfo.inet(nil, '80') end, 2, 'integer expected, got string')
    t.argerr(function() addrinfo.inet(nil, 80.5) end, 2, 'integer expected, got number')
    t.argerr(function() addrinfo.inet(nil, 70000) end, 2, 'uint16_t expected, got an out of range value')
    t.argerr(function() addrinfo.inet(nil, 65536) end, 2, 'uint16_t expected, got an out of range value')
    t.argerr(function() addrinfo.inet(nil, -1) end, 2, 'uint16_t expected, got an out of range value')
    t.argerr(function() addrinfo.inet(nil, 0, 'x') end, 3, 'integer expected, got string')
    t.argerr(function() addrinfo.inet(nil, 0, 0, 'x') end, 4, 'integer expected, got string')
    t.argerr(function() addrinfo.inet(nil, 0, 0, 0, 'x') end, 5, 'integer expected, got string')
    t.argerr(function() addrinfo.inet(nil, 0, 0, 0, nil, {}) end, 6, 'integer expected, got table')
    t.argerr(function() addrinfo.inet6(1) end, 1, 'string expected, got number')
    t.argerr(function() addrinfo.inet6('::1', 65536) end, 2, 'uint16_t expected, got an out of range value')
    t.argerr(function() addrinfo.inet6('::1', 0, 0, true) end, 4, 'integer expected, got boolean')
end)

t.case('inet: the documented example', function()
    local ai = t.nres(1, addrinfo.inet('127.0.0.1', 8080, SOCK_STREAM, IPPROTO_TCP, AI_PASSIVE))[1]
    t.match(tostring(ai), '^llsocket%.addrinfo: ')
    t.eq(ai:family(), AF_INET)
    t.eq(ai:socktype(), SOCK_STREAM)
    t.eq(ai:protocol(), IPPROTO_TCP)
    t.eq(ai:addr(), '127.0.0.1')
    t.eq(ai:port(), 8080)
    t.nres(0, ai:canonname())
end)

t.case('inet: defaults, wildcard for nil and empty string, port bounds', function()
    for _, ai in ipairs({ addrinfo.inet(), addrinfo.inet(nil), addrinfo.inet(''), addrinfo.inet(nil, nil, nil, nil, nil) }) do
        t.eq(ai:family(), AF_INET)
        t.eq(ai:addr(), '0.0.0.0')
        t.eq(ai:port(), 0)
        t.eq(ai:socktype(), 0)
        t.eq(ai:protocol(), 0)
    end
    t.eq(addrinfo.inet('10.1.2.3', 65535):port(), 65535)
    t.eq(addrinfo.inet('255.255.255.255', 0, SOCK_DGRAM, IPPROTO_UDP, AI_PASSIVE, nil, AI_NUMERICHOST):addr(),
        '255.255.255.255')
end)

t.case('inet/inet6 parse numerically only: nil, EAFNOSUPPORT (inet_pton)', function()
    for _, text in ipairs({ '127.0.0.1.1', 'localhost', '::1', '1.2.3', ' 127.0.0.1' }) do
        local r = t.nres(2, addrinfo.inet(text))
        t.is_nil(r[1])
        t.err(r[2], 'EAFNOSUPPORT', 'inet_pton')
    end
    for _, text in ipairs({ 'fe80::1%lo', '127.0.0.1', 'localhost', ':::' }) do
        local r = t.nres(2, addrinfo.inet6(text, 80))
        t.is_nil(r[1])
        t.err(r[2], 'EAFNOSUPPORT', 'inet_pton')
    end
end)

t.case('inet6: defaults and the documented example', function()
    local any = addrinfo.inet6()
    t.eq(any:family(), AF_INET6)
    t.eq(any:addr(), '::')
    t.eq(any:port(), 0)
    t.eq(addrinfo.inet6(''):addr(), '::')
    local ai = addrinfo.inet6('::1', 8080, SOCK_STREAM, IPPROTO_TCP, AI_PASSIVE)
    t.eq(ai:family(), AF_INET6)
    t.eq(ai:addr(), '::1')
    t.eq(ai:port(), 8080)
    t.eq(ai:socktype(), SOCK_STREAM)
    t.eq(ai:protocol(), IPPROTO_TCP)
    t.eq(addrinfo.inet6('2001:0db8:0000:0000:0000:0000:0000:0001'):addr(), '2001:db8::1', 'compressed form')
    t.eq(addrinfo.inet6('::ffff:127.0.0.1'):addr(), '::ffff:127.0.0.1')
end)

-- ---------------------------------------------------------------------------
-- unix

t.case('unix argument errors', function()
    t.argerr(function() addrinfo.unix() end, 1, 'string expected, got no value')
    t.argerr(function() addrinfo.unix(nil) end, 1, 'string expected, got nil')
    t.argerr(function() addrinfo.unix(1) end, 1, 'string expected, got number')
    t.argerr(function() addrinfo.unix('p', 'x') end, 2, 'integer expected, got string')
    t.argerr(function() addrinfo.unix('p', 1, 'x') end, 3, 'integer expected, got string')
    t.argerr(function() addrinfo.unix('p', 1, 0, 'x') end, 4, 'integer expected, got string')
end)

t.case('unix: the documented example and the empty path', function()
    local ai = addrinfo.unix('./test.sock', SOCK_STREAM, IPPROTO_TCP, AI_PASSIVE)
    t.eq(ai:family(), AF_UNIX)
    t.eq(ai:socktype(), SOCK_STREAM)
    t.eq(ai:protocol(), IPPROTO_TCP)
    t.eq(ai:addr(), './test.sock')
    t.deq(t.pack(ai:port()), { n = 1, nil })
    t.nres(0, ai:canonname())
    local e = addrinfo.unix('')
    t.eq(e:addr(), '')
    t.eq(e:socktype(), 0)
end)

t.case('unix: path length limit (ENAMETOOLONG, op unix)', function()
    local max = llsocket.env.unixpath_max
    t.eq(addrinfo.unix(string.rep('p', max - 1)):addr(), string.rep('p', max - 1))
    for _, len in ipairs({ max, max + 1, 1000 }) do
        local r = t.nres(2, addrinfo.unix(string.rep('p', len)))
        t.is_nil(r[1])
        t.err(r[2], 'ENAMETOOLONG', 'unix')
    end
end)

t.case('unix: a name starting with NUL (abstract) reads back as ""', function()
    local ai = addrinfo.unix('\0llsocket-test-abstract')
    t.eq(ai:family(), AF_UNIX)
    t.eq(ai:addr(), '')
end)

-- ---------------------------------------------------------------------------
-- getaddrinfo

t.case('getaddrinfo argument errors', function()
    local g = addrinfo.getaddrinfo
    t.argerr(function() g(1) end, 1, 'string expected, got number')
    t.argerr(function() g(nil, 80) end, 2, 'string expected, got number')
    t.argerr(function() g(nil, '80', 'x') end, 3, 'integer expected, got string')
    t.argerr(function() g(nil, '80', AF_INET, 'x') end, 4, 'integer expected, got string')
    t.argerr(function() g(nil, '80', AF_INET, 0, 'x') end, 5, 'integer expected, got string')
    t.argerr(function() g(nil, '80', AF_INET, 0, 0, 'x') end, 6, 'integer expected, got string')
    t.argerr(function() g(nil, '80', AF_INET, 0, 0, AI_PASSIVE, nil, 1.5) end, 8, 'integer expected, got number')
end)

t.case('getaddrinfo: numeric host and service', function()
    local list = t.nres(1, addrinfo.getaddrinfo('127.0.0.1', '8080', llsocket.AF_UNSPEC, SOCK_STREAM,
        IPPROTO_TCP, AI_PASSIVE))[1]
    t.is_type(list, 'table')
    t.ok(#list >= 1)
    for i = 1, #list do
        local ai = list[i]
        t.match(tostring(ai), '^llsocket%.addrinfo: ')
        t.eq(ai:family(), AF_INET)
        t.eq(ai:socktype(), SOCK_STREAM)
        t.eq(ai:protocol(), IPPROTO_TCP)
        t.eq(ai:addr(), '127.0.0.1')
        t.eq(ai:port(), 8080)
    end
    local v6 = addrinfo.getaddrinfo('::1', '53', AF_INET6, SOCK_DGRAM, 0, AI_NUMERICHOST)
    t.ok(#v6 >= 1)
    t.eq(v6[1]:family(), AF_INET6)
    t.eq(v6[1]:addr(), '::1')
    t.eq(v6[1]:port(), 53)
    t.eq(v6[1]:socktype(), SOCK_DGRAM)
end)

t.case('getaddrinfo: nil or empty service/node', function()
    for _, svc in ipairs({ false, '' }) do
        local list = addrinfo.getaddrinfo('127.0.0.1', svc or nil, llsocket.AF_UNSPEC, SOCK_STREAM,
            IPPROTO_TCP, AI_PASSIVE)
        t.ok(list and #list >= 1)
        t.eq(list[1]:port(), 0)
    end
    for _, node in ipairs({ false, '' }) do
        local list = addrinfo.getaddrinfo(node or nil, '8080', llsocket.AF_UNSPEC, SOCK_STREAM,
            IPPROTO_TCP, AI_PASSIVE)
        t.ok(list and #list >= 1)
        for i = 1, #list do
            local a = list[i]:addr()
            t.ok(a == '0.0.0.0' or a == '::', 'wildcard, got ' .. tostring(a))
            t.eq(list[i]:port(), 8080)
        end
    end
end)

t.case('getaddrinfo failures are EAI error objects (op getaddrinfo)', function()
    local r = t.nres(2, addrinfo.getaddrinfo())
    t.is_nil(r[1])
    t.err(r[2], 'EAI_NONAME', 'getaddrinfo')
    t.eq(r[2].type, llsocket.errno.eai.EAI_NONAME)
    r = t.nres(2, addrinfo.getaddrinfo('', ''))
    t.err(r[2], 'EAI_NONAME', 'getaddrinfo')
    r = t.nres(2, addrinfo.getaddrinfo('not-an-address', nil, AF_INET, 0, 0, AI_NUMERICHOST))
    t.err(r[2], 'EAI_NONAME', 'getaddrinfo')
    r = t.nres(2, addrinfo.getaddrinfo('127.0.0.1', 'no-such-service-llsocket', AF_INET, SOCK_STREAM))
    t.is_nil(r[1])
    t.eq(r[2].op, 'getaddrinfo')
    t.not_nil(r[2].type)
end)

t.case('getaddrinfo: canonname is a string or no value', function()
    local list = addrinfo.getaddrinfo('127.0.0.1', nil, AF_INET, SOCK_STREAM, 0, llsocket.AI_CANONNAME)
    t.ok(#list >= 1)
    local r = t.pack(list[1]:canonname())
    t.ok(r.n == 0 or (r.n == 1 and type(r[1]) == 'string'), 'shape')
    if #list > 1 then
        t.nres(0, list[2]:canonname())
    end
    local plain = addrinfo.getaddrinfo('127.0.0.1', nil, AF_INET, SOCK_STREAM)
    t.nres(0, plain[1]:canonname())
end)

t.case('getaddrinfo results are usable with bind', function()
    local list = addrinfo.getaddrinfo('127.0.0.1', '0', AF_INET, SOCK_STREAM, 0, AI_PASSIVE)
    local s = t.closing(llsocket.socket.new(list[1]:family(), list[1]:socktype()))
    t.is_true(s:bind(list[1]))
    t.ok(s:getsockname():port() > 0)
end)

-- ---------------------------------------------------------------------------
-- methods

t.case('methods check self; metatable is visible (not locked)', function()
    local ai = addrinfo.inet()
    t.argerr(function() ai.family({}) end, 1, 'llsocket.addrinfo expected, got table')
    t.argerr(function() ai.addr() end, 1, 'llsocket.addrinfo expected, got no value')
    local mt = getmetatable(ai)
    t.is_type(mt, 'table')
    t.is_type(mt.__index, 'table')
    t.is_type(mt.__index.getnameinfo, 'function')
    if math.type then
        t.eq(mt.__name, 'llsocket.addrinfo')
    end
    t.ne(tostring(addrinfo.inet()), tostring(ai))
end)

t.case('getnameinfo: numeric flags give the numbers; key is service', function()
    local info = t.nres(1, addrinfo.inet('127.0.0.1', 8080):getnameinfo(NI_NUMERICHOST, NI_NUMERICSERV))[1]
    t.deq(info, { host = '127.0.0.1', service = '8080' })
    local info6 = addrinfo.inet6('::1', 8080):getnameinfo(NI_NUMERICHOST, nil, NI_NUMERICSERV)
    t.deq(info6, { host = '::1', service = '8080' })
    t.argerr(function() addrinfo.inet():getnameinfo('x') end, 1, 'integer expected, got string')
    t.argerr(function() addrinfo.inet():getnameinfo(nil, 1.5) end, 2, 'integer expected, got number')
end)

t.case('getnameinfo: names from /etc/hosts and /etc/services', function()
    local a = addrinfo.inet('127.0.0.1', 8080):getnameinfo()
    local b = addrinfo.inet('127.0.0.1', 8080, SOCK_STREAM):getnameinfo()
    t.deq(a, b, 'same address, equal tables')
    t.is_type(a.host, 'string')
    t.is_type(a.service, 'string')
    if file_has('/etc/hosts', '^%s*127%.0%.0%.1%s+localhost') then
        t.eq(a.host, 'localhost')
    end
    if file_has('/etc/services', '^http%-alt%s+8080/tcp') then
        t.eq(a.service, 'http-alt')
    end
end)

t.case('getnameinfo of a unix address: a table or nil, EAI error', function()
    local r = t.pack(addrinfo.unix('/tmp/x.sock'):getnameinfo())
    if r[1] == nil then
        t.eq(r.n, 2)
        t.eq(r[2].op, 'getnameinfo')
        t.not_nil(r[2].type)
    else
        t.is_type(r[1], 'table')
    end
end)

t.case('getaddrinfo: flags from position 6 on are OR-ed (nil counts as 0)', function()
    local passive = addrinfo.getaddrinfo(nil, '80', AF_INET, SOCK_STREAM, 0, nil, AI_PASSIVE)
    t.eq(passive[1]:addr(), '0.0.0.0', 'AI_PASSIVE in 7th position is used')
    local active = addrinfo.getaddrinfo(nil, '80', AF_INET, SOCK_STREAM, 0)
    t.eq(active[1]:addr(), '127.0.0.1', 'no AI_PASSIVE: loopback')
    local both = addrinfo.getaddrinfo('127.0.0.1', '80', AF_INET, SOCK_STREAM, 0, AI_NUMERICHOST, nil,
        llsocket.AI_NUMERICSERV)
    t.eq(both[1]:port(), 80)
    local r = t.nres(2, addrinfo.getaddrinfo('127.0.0.1', 'http', AF_INET, SOCK_STREAM, 0, nil,
        llsocket.AI_NUMERICSERV))
    t.is_nil(r[1], 'AI_NUMERICSERV in 7th position refuses a service name')
    t.eq(r[2].op, 'getaddrinfo')
end)

if llsocket.env.os == 'linux' then
    t.case('linux: abstract unix names bind and connect', function()
        local name = '\0' .. t.tmppath('abstract')
        local l = t.closing(llsocket.socket.new(AF_UNIX, SOCK_STREAM))
        t.is_true(l:bind(addrinfo.unix(name)))
        t.is_true(l:listen())
        t.eq(l:getsockname():addr(), '', 'abstract names read back as ""')
        local again = t.closing(llsocket.socket.new(AF_UNIX, SOCK_STREAM))
        local r = t.nres(2, again:bind(addrinfo.unix(name)))
        t.err(r[2], 'EADDRINUSE', 'bind')
        local c = t.closing(llsocket.socket.new(AF_UNIX, SOCK_STREAM))
        t.is_true(c:connect(addrinfo.unix(name)))
        local s = t.closing(l:accept())
        t.eq(c:send('abs'), 3)
        t.eq(s:recv(), 'abs')
    end)
end
