-- Socket methods: connection set-up, readiness, sending, receiving, descriptor passing,
-- sendfile, addresses and descriptor flags (socket.md §4-§9). Loopback and unix only.
local t = ...
local llsocket = t.llsocket()
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local AF_INET, AF_INET6, AF_UNIX = llsocket.AF_INET, llsocket.AF_INET6, llsocket.AF_UNIX
local SOCK_STREAM, SOCK_DGRAM = llsocket.SOCK_STREAM, llsocket.SOCK_DGRAM
local SOCK_SEQPACKET = llsocket.SOCK_SEQPACKET
local MSG_PEEK, MSG_OOB, MSG_DONTWAIT = llsocket.MSG_PEEK, llsocket.MSG_OOB, llsocket.MSG_DONTWAIT
local linux = llsocket.env.os == 'linux'
local has_int_subtype = math.type ~= nil

local pair = t.pair

local new = t.socket

-- A listening TCP socket on 127.0.0.1 (ephemeral port) and its address.
local function listener(nonblock)
    local l = new(AF_INET, SOCK_STREAM, 0, nonblock)
    t.is_true(l:reuseaddr(true) ~= nil)
    t.is_true(l:bind(addrinfo.inet('127.0.0.1', 0)))
    t.is_true(l:listen())
    local ai = l:getsockname()
    return l, ai
end

-- A connected TCP pair over loopback: client, server, listener.
local function tcp()
    local l, ai = listener()
    local c = new(AF_INET, SOCK_STREAM)
    t.is_true(c:connect(ai))
    local s = t.closing(l:accept())
    t.not_nil(s)
    return c, s, l
end

-- Waits (bounded) until `s` is readable.
local function readable(s)
    t.is_true(s:recvable(2000), 'socket did not become readable')
end

-- ---------------------------------------------------------------------------
-- bind / listen

t.case('bind argument errors', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.argerr(function() s:bind() end, 1, 'llsocket.addrinfo expected, got no value')
    t.argerr(function() s:bind('127.0.0.1') end, 1, 'llsocket.addrinfo expected, got string')
    t.argerr(function() s:bind({}) end, 1, 'llsocket.addrinfo expected, got table')
    local other = has_int_subtype and 'llsocket.socket' or 'userdata'
    t.argerr(function() s:bind(s) end, 1, 'llsocket.addrinfo expected, got ' .. other)
end)

t.case('bind: true, then false, EINVAL when bound twice', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.deq(t.pack(s:bind(addrinfo.inet('127.0.0.1', 0))), { n = 1, true })
    local ai = s:getsockname()
    t.eq(ai:addr(), '127.0.0.1')
    t.ok(ai:port() > 0)
    local r = t.nres(2, s:bind(addrinfo.inet('127.0.0.1', 0)))
    t.is_false(r[1])
    t.err(r[2], 'EINVAL', 'bind')
end)

t.case('bind to an address in use: EADDRINUSE', function()
    local l, ai = listener()
    local s = new(AF_INET, SOCK_STREAM)
    local r = t.nres(2, s:bind(ai))
    t.is_false(r[1])
    t.err(r[2], 'EADDRINUSE', 'bind')
end)

t.case('bind a unix socket to a path', function()
    local path = t.tmppath('bind')
    local s = new(AF_UNIX, SOCK_STREAM)
    t.is_true(s:bind(addrinfo.unix(path)))
    local f = io.open(path, 'r')
    t.ok(f == nil or f:close(), 'socket file exists')
    t.eq(s:getsockname():addr(), path)
    local s2 = new(AF_UNIX, SOCK_STREAM)
    local r = t.nres(2, s2:bind(addrinfo.unix(path)))
    t.err(r[2], 'EADDRINUSE', 'bind')
end)

t.case('listen argument errors and results', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.argerr(function() s:listen('foo') end, 1, 'integer expected, got string')
    t.argerr(function() s:listen(true) end, 1, 'integer expected, got boolean')
    t.is_false(s:acceptconn())
    t.is_true(s:bind(addrinfo.inet('127.0.0.1', 0)))
    t.deq(t.pack(s:listen(5)), { n = 1, true })
    t.is_true(s:acceptconn())
    local d = new(AF_INET, SOCK_DGRAM)
    local r = t.nres(2, d:listen())
    t.is_false(r[1])
    t.err(r[2], 'EOPNOTSUPP', 'listen')
end)

-- ---------------------------------------------------------------------------
-- connect / accept

t.case('connect argument errors', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.argerr(function() s:connect() end, 1, 'llsocket.addrinfo expected, got no value')
    t.argerr(function() s:connect(1) end, 1, 'llsocket.addrinfo expected, got number')
end)

t.case('blocking connect and accept over loopback', function()
    local l, ai = listener()
    local c = new(AF_INET, SOCK_STREAM)
    t.deq(t.pack(c:connect(ai)), { n = 1, true })
    local r = t.nres(1, l:accept())
    local s = t.closing(r[1])
    t.match(tostring(s), '^llsocket%.socket: ')
    t.eq(s:family(), AF_INET)
    t.eq(s:socktype(), SOCK_STREAM)
    t.eq(s:protocol(), 0, 'copied from the listener')
    t.is_true(s:cloexec())
    t.is_false(s:nonblock())
    t.eq(c:send('hello'), 5)
    t.eq(s:recv(), 'hello')
    -- connecting again: EISCONN
    r = t.nres(2, c:connect(ai))
    t.is_false(r[1])
    t.err(r[2], 'EISCONN', 'connect')
end)

t.case('accept(true) returns sock, nil, nil, ai with the peer address', function()
    local l, ai = listener()
    local c = new(AF_INET, SOCK_STREAM)
    t.is_true(c:connect(ai))
    local r = t.nres(4, l:accept(true))
    t.closing(r[1])
    t.is_nil(r[2])
    t.is_nil(r[3])
    local pai = r[4]
    t.match(tostring(pai), '^llsocket%.addrinfo: ')
    t.eq(pai:family(), AF_INET)
    t.eq(pai:socktype(), SOCK_STREAM)
    t.eq(pai:addr(), '127.0.0.1')
    t.eq(pai:port(), c:getsockname():port())
    t.argerr(function() l:accept('yes') end, 1, 'boolean expected, got string')
    t.argerr(function() l:accept(1) end, 1, 'boolean expected, got number')
end)

t.case('accept(true) from an unbound unix client: addr is empty', function()
    local path = t.tmppath('acc')
    local l = new(AF_UNIX, SOCK_STREAM)
    t.is_true(l:bind(addrinfo.unix(path)))
    t.is_true(l:listen())
    local c = new(AF_UNIX, SOCK_STREAM)
    t.is_true(c:connect(addrinfo.unix(path)))
    local r = t.nres(4, l:accept(true))
    t.closing(r[1])
    t.eq(r[4]:family(), AF_UNIX)
    t.eq(r[4]:addr(), '')
    t.is_nil(r[4]:port())
end)

t.case('accept on a non-blocking listener: nil, nil, true; accepted socket inherits O_NONBLOCK', function()
    local l, ai = listener(true)
    t.deq(t.pack(l:accept()), { n = 3, nil, nil, true })
    t.deq(t.pack(l:acceptfd()), { n = 3, nil, nil, true })
    local c = new(AF_INET, SOCK_STREAM)
    t.is_true(c:connect(ai))
    t.is_true(l:recvable(2000))
    local s = t.closing(l:accept())
    t.not_nil(s)
    t.is_true(s:nonblock())
end)

t.case('accept errors: nil, err (acceptfd)', function()
    local s = new(AF_INET, SOCK_STREAM)
    local r = t.nres(2, s:accept())
    t.is_nil(r[1])
    t.err(r[2], 'EINVAL', 'acceptfd')
    r = t.nres(2, s:acceptfd())
    t.err(r[2], 'EINVAL', 'acceptfd')
end)

t.case('acceptfd returns a descriptor integer the caller owns', function()
    local l, ai = listener()
    local c = new(AF_INET, SOCK_STREAM)
    t.is_true(c:connect(ai))
    local r = t.nres(1, l:acceptfd())
    t.is_int(r[1])
    local s = t.closing(socket.wrap(r[1]))
    t.eq(s:family(), AF_INET)
    t.is_true(s:cloexec())
    t.eq(c:send('x'), 1)
    t.eq(s:recv(), 'x')
end)

t.case('non-blocking connect: true, EINPROGRESS, then sendable and error() nil', function()
    local l, ai = listener()
    local c = new(AF_INET, SOCK_STREAM, 0, true)
    local r = t.pack(c:connect(ai))
    t.is_true(r[1])
    if r.n == 2 then
        t.err(r[2], 'EINPROGRESS', 'connect')
        t.has(tostring(r[2]), "in method 'connect': [EINPROGRESS:")
    else
        t.eq(r.n, 1)
    end
    t.is_true(c:sendable(2000))
    t.deq(t.pack(c:error()), { n = 1, nil })
    local s = t.closing(l:accept())
    t.eq(c:send('ok'), 2)
    readable(s)
    t.eq(s:recv(), 'ok')
end)

t.case('connect refused: blocking false, ECONNREFUSED; non-blocking via error()', function()
    local b = new(AF_INET, SOCK_STREAM)
    t.is_true(b:bind(addrinfo.inet('127.0.0.1', 0)))
    local ai = b:getsockname() -- bound, not listening: connections are refused
    local c = new(AF_INET, SOCK_STREAM)
    local r = t.nres(2, c:connect(ai))
    t.is_false(r[1])
    t.err(r[2], 'ECONNREFUSED', 'connect')
    local n = new(AF_INET, SOCK_STREAM, 0, true)
    r = t.pack(n:connect(ai))
    if r[1] == true then
        t.eq(r.n, 2)
        t.err(r[2], 'EINPROGRESS', 'connect')
        t.is_true(n:sendable(2000))
        local e = t.nres(1, n:error())[1]
        t.err(e, 'ECONNREFUSED', 'error')
        t.deq(t.pack(n:error()), { n = 1, nil }, 'reading clears it')
    else
        t.is_false(r[1])
        t.err(r[2], 'ECONNREFUSED', 'connect')
    end
end)

t.case('unix connect to a missing path: false, ENOENT', function()
    local c = new(AF_UNIX, SOCK_STREAM)
    local r = t.nres(2, c:connect(addrinfo.unix(t.tmppath('none'))))
    t.is_false(r[1])
    t.err(r[2], 'ENOENT', 'connect')
end)

if linux then
    t.case('non-blocking unix connect to a full backlog: false, EAGAIN, true', function()
        local path = t.tmppath('full')
        local l = new(AF_UNIX, SOCK_STREAM)
        t.is_true(l:bind(addrinfo.unix(path)))
        t.is_true(l:listen(0))
        local ai = addrinfo.unix(path)
        local got
        for _ = 1, 64 do
            local c = new(AF_UNIX, SOCK_STREAM, 0, true)
            local r = t.pack(c:connect(ai))
            if r[1] == false then
                got = r
                break
            end
        end
        t.not_nil(got, 'backlog never filled')
        t.eq(got.n, 3)
        t.err(got[2], 'EAGAIN', 'connect')
        t.is_true(got[3])
    end)
end

-- ---------------------------------------------------------------------------
-- recvable / sendable

t.case('recvable/sendable argument errors', function()
    local a = pair()
    t.argerr(function() a:recvable(true) end, 1, 'number expected, got boolean')
    t.argerr(function() a:recvable({}) end, 1, 'number expected, got table')
    t.argerr(function() a:sendable('abc') end, 1, 'number expected, got string')
    t.argerr(function() a:recvable(100, 'foo') end, 2, 'boolean expected, got string')
    t.argerr(function() a:sendable(0, 1) end, 2, 'boolean expected, got number')
    if has_int_subtype then
        t.raises(function() a:recvable(1.5) end, 'number has no integer representation')
    end
end)

t.case('recvable: timeout false, nil, true; ready true', function()
    local a, b = pair()
    t.deq(t.pack(a:recvable()), { n = 3, false, nil, true })
    t.deq(t.pack(a:recvable(0)), { n = 3, false, nil, true })
    t.deq(t.pack(a:recvable(-5)), { n = 3, false, nil, true })
    t.deq(t.pack(a:recvable(20)), { n = 3, false, nil, true })
    t.deq(t.pack(a:recvable('10')), { n = 3, false, nil, true }, 'numeric string accepted')
    t.deq(t.pack(a:recvable(nil, false)), { n = 3, false, nil, true })
    t.eq(b:send('x'), 1)
    t.deq(t.pack(a:recvable(1000)), { n = 1, true })
    t.deq(t.pack(a:sendable()), { n = 1, true })
    t.deq(t.pack(a:sendable(100, true)), { n = 1, true })
end)

t.case('recvable after the peer closed (EOF is readable)', function()
    local a, b = pair()
    b:close()
    t.is_true(a:recvable(1000))
end)

t.case('sendable times out on a full buffer', function()
    local a = pair(SOCK_STREAM, true)
    local chunk = string.rep('x', 65536)
    local full = false
    for _ = 1, 1000 do
        local n, err, again = a:send(chunk)
        t.is_nil(err)
        if again and n == 0 then
            full = true
            break
        end
    end
    t.ok(full, 'buffer never filled')
    t.deq(t.pack(a:sendable(10)), { n = 3, false, nil, true })
end)

t.case('recvable(msec, true) sees out-of-band data', function()
    local c, s = tcp()
    t.eq(c:send('!', MSG_OOB), 1)
    t.is_true(s:recvable(2000, true))
end)

-- ---------------------------------------------------------------------------
-- send / write / sendto

t.case('send argument errors', function()
    local a = pair()
    t.argerr(function() a:send() end, 1, 'string expected, got no value')
    t.argerr(function() a:send(1) end, 1, 'string expected, got number')
    t.argerr(function() a:send('x', 'y') end, 2, 'integer expected, got string')
    t.argerr(function() a:send('x', nil, 1.5) end, 3, 'integer expected, got number')
    t.argerr(function() a:send('x', 0, nil, true) end, 4, 'integer expected, got boolean')
end)

t.case('send: n, nil, false; empty message EINVAL (send_lua)', function()
    local a, b = pair()
    t.deq(t.pack(a:send('hello')), { n = 3, 5, nil, false })
    t.deq(t.pack(a:send('x', nil, MSG_DONTWAIT, nil)), { n = 3, 1, nil, false })
    t.eq(b:recv(), 'hellox')
    local r = t.nres(2, a:send(''))
    t.is_nil(r[1])
    t.err(r[2], 'EINVAL', 'send_lua')
end)

t.case('send binary data with NUL bytes', function()
    local a, b = pair()
    local data = 'a\0b\0\0c\255'
    t.eq(a:send(data), #data)
    t.eq(b:recv(), data)
end)

t.case('send to a full non-blocking socket: partial then 0, nil, true', function()
    local a, b = pair(SOCK_STREAM, true)
    local chunk = string.rep('y', 65536)
    local again_shape
    local sent = 0
    for _ = 1, 1000 do
        local r = t.pack(a:send(chunk))
        t.eq(r.n, 3)
        t.is_nil(r[2])
        if r[1] == 0 then
            again_shape = r
            break
        end
        t.eq(r[3], r[1] < #chunk, 'partial flag')
        sent = sent + r[1]
    end
    t.not_nil(again_shape, 'never blocked')
    t.is_true(again_shape[3])
    t.ok(sent > 0)
    -- drain and count (bounded)
    local got = 0
    for _ = 1, 100000 do
        local m = b:recv(65536)
        if not m then
            break
        end
        got = got + #m
    end
    t.eq(got, sent)
end)

t.case('send after the peer closed: nil, EPIPE (no SIGPIPE)', function()
    local a, b = pair()
    b:close()
    local r = t.nres(2, a:send('x'))
    t.is_nil(r[1])
    t.ok(r[2].type == llsocket.errno.EPIPE or r[2].type == llsocket.errno.ECONNRESET, tostring(r[2]))
    r = t.nres(2, a:write('x'))
    t.is_nil(r[1])
    t.eq(r[2].op, 'write')
end)

t.case('write: n, nil, false; argument errors; empty EINVAL (write_lua)', function()
    local a, b = pair()
    t.argerr(function() a:write() end, 1, 'string expected, got no value')
    t.argerr(function() a:write(42) end, 1, 'string expected, got number')
    t.deq(t.pack(a:write('abc')), { n = 3, 3, nil, false })
    t.eq(b:read(), 'abc')
    local r = t.nres(2, a:write(''))
    t.err(r[2], 'EINVAL', 'write_lua')
end)

t.case('sendto argument errors', function()
    local u = new(AF_INET, SOCK_DGRAM)
    local ai = addrinfo.inet('127.0.0.1', 9)
    t.argerr(function() u:sendto(1, ai) end, 1, 'string expected, got number')
    t.argerr(function() u:sendto('x') end, 2, 'llsocket.addrinfo expected, got no value')
    t.argerr(function() u:sendto('x', 'y') end, 2, 'llsocket.addrinfo expected, got string')
    t.argerr(function() u:sendto('x', ai, 'f') end, 3, 'integer expected, got string')
    local r = t.nres(2, u:sendto('', ai))
    t.err(r[2], 'EINVAL', 'sendto_lua')
end)

t.case('UDP sendto / recvfrom over loopback', function()
    local rx = new(AF_INET, SOCK_DGRAM)
    t.is_true(rx:bind(addrinfo.inet('127.0.0.1', 0)))
    local rai = rx:getsockname()
    local tx = new(AF_INET, SOCK_DGRAM)
    t.is_true(tx:bind(addrinfo.inet('127.0.0.1', 0)))
    t.deq(t.pack(tx:sendto('hello', rai)), { n = 3, 5, nil, false })
    readable(rx)
    local r = t.nres(4, rx:recvfrom())
    t.eq(r[1], 'hello')
    t.is_nil(r[2])
    t.is_nil(r[3])
    local from = r[4]
    t.eq(from:family(), AF_INET)
    t.eq(from:socktype(), SOCK_DGRAM)
    t.eq(from:addr(), '127.0.0.1')
    t.eq(from:port(), tx:getsockname():port())
    -- reply to the reported address
    t.eq(rx:sendto('back', from), 4)
    readable(tx)
    t.eq(tx:recv(), 'back')
end)

t.case('UDP over IPv6 loopback', function()
    local rx = socket.new(AF_INET6, SOCK_DGRAM)
    if not rx then
        t.skip('no IPv6 sockets on this host')
    end
    t.closing(rx)
    local ok = rx:bind(addrinfo.inet6('::1', 0))
    if not ok then
        t.skip('::1 is not configured')
    end
    local tx = new(AF_INET6, SOCK_DGRAM)
    t.eq(tx:sendto('six', rx:getsockname()), 3)
    readable(rx)
    local r = t.nres(4, rx:recvfrom())
    t.eq(r[1], 'six')
    t.eq(r[4]:family(), AF_INET6)
    t.eq(r[4]:addr(), '::1')
end)

-- ---------------------------------------------------------------------------
-- recv / read / recvfrom

t.case('recv argument errors and bufsize <= 0', function()
    local a = pair()
    t.argerr(function() a:recv('x') end, 1, 'integer expected, got string')
    t.argerr(function() a:recv(1.5) end, 1, 'integer expected, got number')
    t.argerr(function() a:recv(10, 'x') end, 2, 'integer expected, got string')
    t.argerr(function() a:recv(10, nil, {}) end, 3, 'integer expected, got table')
    local r = t.nres(2, a:recv(0))
    t.is_nil(r[1])
    t.err(r[2], 'EINVAL', 'recv_lua')
    r = t.nres(2, a:recv(-1))
    t.err(r[2], 'EINVAL', 'recv_lua')
end)

t.case('recv: bufsize limits, MSG_PEEK, would-block and EOF', function()
    local a, b = pair(SOCK_STREAM, true)
    t.deq(t.pack(b:recv()), { n = 3, nil, nil, true })
    t.eq(a:send('hello'), 5)
    t.deq(t.pack(b:recv(3, MSG_PEEK)), { n = 1, 'hel' })
    t.deq(t.pack(b:recv(3)), { n = 1, 'hel' })
    t.deq(t.pack(b:recv(nil)), { n = 1, 'lo' })
    a:close()
    t.nres(0, b:recv())
    t.nres(0, b:recv(10, MSG_PEEK))
end)

t.case('recv on datagram sockets: empty datagram is "", MSG_TRUNC stays within bufsize', function()
    local a, b = pair(SOCK_DGRAM, true)
    t.eq(a:sendmsg(llsocket.msghdr.new()), 0, 'an empty datagram')
    t.deq(t.pack(b:recv()), { n = 1, '' })
    t.eq(a:send('hello'), 5)
    t.deq(t.pack(b:recv(2, llsocket.MSG_TRUNC)), { n = 1, 'he' })
    t.deq(t.pack(b:recv()), { n = 3, nil, nil, true })
end)

t.case('EOF on SOCK_SEQPACKET is no values too', function()
    local a, b = pair(SOCK_SEQPACKET)
    a:close()
    t.nres(0, b:recv())
    t.nres(0, b:read())
end)

t.case('read: argument errors, EINVAL (read_lua), data, again, EOF', function()
    local a, b = pair(SOCK_STREAM, true)
    t.argerr(function() b:read('x') end, 1, 'integer expected, got string')
    local r = t.nres(2, b:read(0))
    t.err(r[2], 'EINVAL', 'read_lua')
    t.deq(t.pack(b:read()), { n = 3, nil, nil, true })
    t.eq(a:write('data'), 4)
    t.deq(t.pack(b:read(2)), { n = 1, 'da' })
    t.deq(t.pack(b:read()), { n = 1, 'ta' })
    a:close()
    t.nres(0, b:read())
end)

t.case('recvfrom: argument errors, EINVAL (recvfrom_lua), unnamed peer gives msg only', function()
    local a, b = pair(SOCK_STREAM, true)
    t.argerr(function() b:recvfrom('x') end, 1, 'integer expected, got string')
    t.argerr(function() b:recvfrom(10, 'x') end, 2, 'integer expected, got string')
    local r = t.nres(2, b:recvfrom(-3))
    t.err(r[2], 'EINVAL', 'recvfrom_lua')
    t.deq(t.pack(b:recvfrom()), { n = 3, nil, nil, true })
    t.eq(a:send('abc'), 3)
    t.deq(t.pack(b:recvfrom(2)), { n = 1, 'ab' })
    t.deq(t.pack(b:recvfrom(nil, MSG_PEEK)), { n = 1, 'c' })
    a:close()
    t.eq(b:recvfrom(), 'c')
    t.nres(0, b:recvfrom())
end)

t.case('recvfrom on a bound unix datagram socket reports the sender path', function()
    local p1, p2 = t.tmppath('d1'), t.tmppath('d2')
    local rx = new(AF_UNIX, SOCK_DGRAM)
    t.is_true(rx:bind(addrinfo.unix(p1)))
    local tx = new(AF_UNIX, SOCK_DGRAM)
    t.is_true(tx:bind(addrinfo.unix(p2)))
    t.eq(tx:sendto('u', addrinfo.unix(p1)), 1)
    local r = t.nres(4, rx:recvfrom())
    t.eq(r[1], 'u')
    t.eq(r[4]:family(), AF_UNIX)
    t.eq(r[4]:addr(), p2)
end)

-- ---------------------------------------------------------------------------
-- sendfd / recvfd

t.case('sendfd/recvfd argument errors', function()
    local a = pair()
    t.argerr(function() a:sendfd() end, 1, 'integer expected, got no value')
    t.argerr(function() a:sendfd('0') end, 1, 'integer expected, got string')
    t.argerr(function() a:sendfd(0, 'x') end, 2, 'llsocket.addrinfo expected, got string')
    t.argerr(function() a:sendfd(0, nil, 'x') end, 3, 'integer expected, got string')
    t.argerr(function() a:recvfd('x') end, 1, 'integer expected, got string')
    t.argerr(function() a:recvfd(nil, 2.5) end, 2, 'integer expected, got number')
end)

t.case('sendfd returns 0; recvfd returns a duplicate descriptor', function()
    local a, b = pair()
    local x, y = pair()
    t.deq(t.pack(a:sendfd(x:fd())), { n = 1, 0 })
    local r = t.nres(1, b:recvfd())
    t.is_int(r[1])
    t.ne(r[1], x:fd())
    local w = t.closing(socket.wrap(r[1]))
    t.eq(w:family(), AF_UNIX)
    t.eq(w:send('via passed fd'), 13)
    t.eq(y:recv(), 'via passed fd')
    -- the sender keeps its own descriptor
    t.eq(x:send('orig'), 4)
    t.eq(y:recv(), 'orig')
end)

t.case('recvfd: descriptor is not close-on-exec unless MSG_CMSG_CLOEXEC', function()
    local a, b = pair()
    local x = pair()
    t.eq(a:sendfd(x:fd()), 0)
    local w = t.closing(socket.wrap(b:recvfd()))
    t.is_false(w:cloexec())
    if llsocket.MSG_CMSG_CLOEXEC then
        t.eq(a:sendfd(x:fd()), 0)
        local w2 = t.closing(socket.wrap(b:recvfd(llsocket.MSG_CMSG_CLOEXEC)))
        t.is_true(w2:cloexec())
    end
end)

t.case('sendfd of a bad descriptor: nil, EBADF (sendmsg)', function()
    local a = pair()
    local r = t.nres(2, a:sendfd(-1))
    t.is_nil(r[1])
    t.err(r[2], 'EBADF', 'sendmsg')
end)

t.case('recvfd without a descriptor: byte discarded, nil, nil, true; EOF no values', function()
    local a, b = pair(SOCK_STREAM, true)
    t.deq(t.pack(b:recvfd()), { n = 3, nil, nil, true })
    t.eq(a:send('ab'), 2)
    t.deq(t.pack(b:recvfd()), { n = 3, nil, nil, true })
    t.eq(b:recv(), 'b', 'one byte was consumed')
    a:close()
    t.nres(0, b:recvfd())
end)

t.case('sendfd to an address on an unbound unix datagram socket', function()
    local path = t.tmppath('fd')
    local rx = new(AF_UNIX, SOCK_DGRAM)
    t.is_true(rx:bind(addrinfo.unix(path)))
    local tx = new(AF_UNIX, SOCK_DGRAM)
    local x, y = pair()
    t.deq(t.pack(tx:sendfd(x:fd(), addrinfo.unix(path))), { n = 1, 0 })
    local w = t.closing(socket.wrap(t.nres(1, rx:recvfd())[1]))
    t.eq(w:send('q'), 1)
    t.eq(y:recv(), 'q')
end)

-- ---------------------------------------------------------------------------
-- sendfile

local function tmpfile(content)
    local f = assert(io.tmpfile())
    f:write(content)
    f:flush()
    t.cleanup(function()
        pcall(f.close, f)
    end)
    return f
end

t.case('sendfile argument errors', function()
    local a = pair()
    local f = tmpfile('abc')
    t.argerr(function() a:sendfile('x', 1) end, 1, 'FILE* expected, got string')
    t.argerr(function() a:sendfile({}, 1) end, 1, 'FILE* expected, got table')
    t.argerr(function() a:sendfile(f) end, 2, 'integer expected, got no value')
    t.argerr(function() a:sendfile(f, '1') end, 2, 'integer expected, got string')
    t.argerr(function() a:sendfile(f, 1, 'x') end, 3, 'integer expected, got string')
    local r = t.nres(2, a:sendfile(f, 0))
    t.is_nil(r[1])
    t.err(r[2], 'EINVAL', 'sendfile_lua')
end)

t.case('sendfile from a FILE* handle: whole, offset, short, at EOF', function()
    local a, b = pair()
    local f = tmpfile('hello world')
    local pos = f:seek('cur')
    t.deq(t.pack(a:sendfile(f, 11)), { n = 1, 11 })
    t.eq(b:recv(), 'hello world')
    t.deq(t.pack(a:sendfile(f, 5, 6)), { n = 1, 5 })
    t.eq(b:recv(), 'world')
    t.deq(t.pack(a:sendfile(f, 100, 6)), { n = 3, 5, nil, true })
    t.eq(b:recv(), 'world')
    t.deq(t.pack(a:sendfile(f, 10, 11)), { n = 3, 0, nil, true })
    t.eq(f:seek('cur'), pos, 'the file position is not used or changed')
end)

t.case('sendfile of a bad descriptor or a closed handle: EBADF', function()
    local a = pair()
    local r = t.nres(2, a:sendfile(-1, 10))
    t.is_nil(r[1])
    t.err(r[2], 'EBADF', 'sendfile')
    local f = assert(io.tmpfile())
    f:close()
    local ok, x, e = pcall(function()
        local n, err = a:sendfile(f, 1)
        return n, err
    end)
    if ok then
        t.is_nil(x)
        t.err(e, 'EBADF')
    else
        t.match(x, 'bad argument #1')
    end
end)

t.case('sendfile on a non-blocking socket: loop until complete', function()
    local a, b = pair(SOCK_STREAM, true)
    local parts = {}
    for i = 1, 4096 do
        parts[i] = string.format('%063d\n', i)
    end
    local content = table.concat(parts)
    local f = tmpfile(content)
    local size, offset = #content, 0
    local received = {}
    for _ = 1, 100000 do
        if offset >= size then
            break
        end
        local n, err, again = a:sendfile(f, size - offset, offset)
        t.is_nil(err)
        offset = offset + n
        if again then
            for _ = 1, 1000 do
                local m = b:recv(65536)
                if not m then
                    break
                end
                received[#received + 1] = m
            end
        end
    end
    t.eq(offset, size)
    for _ = 1, 1000 do
        local m = b:recv(65536)
        if not m then
            break
        end
        received[#received + 1] = m
    end
    t.eq(table.concat(received), content)
end)

-- ---------------------------------------------------------------------------
-- atmark, getsockname, getpeername

t.case('atmark: false on a fresh connection, true at the out-of-band mark', function()
    local c, s = tcp()
    t.deq(t.pack(s:atmark()), { n = 1, false })
    t.eq(c:send('ab'), 2)
    t.eq(c:send('!', MSG_OOB), 1)
    t.is_true(s:recvable(2000, true))
    t.eq(s:recv(), 'ab', 'recv stops at the mark')
    t.deq(t.pack(s:atmark()), { n = 1, true })
    t.eq(s:recv(1, MSG_OOB), '!')
end)

t.case('atmark on a unix socket: nil, err (sockatmark)', function()
    local a = pair()
    local r = t.pack(a:atmark())
    if r[1] == nil then
        t.eq(r.n, 2)
        t.eq(r[2].op, 'sockatmark')
    else
        t.is_false(r[1])
    end
end)

t.case('getsockname/getpeername are stamped with the stored socket values', function()
    local c, s = tcp()
    local me = t.nres(1, c:getsockname())[1]
    local peer = t.nres(1, c:getpeername())[1]
    t.match(tostring(me), '^llsocket%.addrinfo: ')
    t.eq(me:family(), AF_INET)
    t.eq(me:socktype(), SOCK_STREAM)
    t.eq(me:protocol(), 0)
    t.eq(me:addr(), '127.0.0.1')
    t.eq(peer:port(), s:getsockname():port())
    t.eq(s:getpeername():port(), me:port())
    local u = new(AF_INET, SOCK_STREAM)
    local r = t.nres(2, u:getpeername())
    t.is_nil(r[1])
    t.err(r[2], 'ENOTCONN', 'getpeername')
    local a = pair()
    t.eq(a:getsockname():family(), AF_UNIX)
    t.eq(a:getsockname():addr(), '')
    t.eq(a:getpeername():addr(), '')
end)

-- ---------------------------------------------------------------------------
-- cloexec / nonblock

t.case('cloexec and nonblock: getters, setters return the old state, strict booleans', function()
    local a = pair()
    for _, m in ipairs({ 'cloexec', 'nonblock' }) do
        local initial = a[m](a)
        t.is_type(initial, 'boolean')
        t.deq(t.pack(a[m](a, not initial)), { n = 1, initial })
        t.deq(t.pack(a[m](a)), { n = 1, not initial })
        t.deq(t.pack(a[m](a, nil)), { n = 1, not initial })
        t.eq(a[m](a, initial), not initial)
        t.eq(a[m](a), initial)
    end
    t.argerr(function() a:cloexec('x') end, 1, 'boolean expected, got string')
    t.argerr(function() a:nonblock(1) end, 1, 'boolean expected, got number')
end)

t.case('recvfrom of an empty UDP datagram: "", nil, nil, ai', function()
    local rx = new(AF_INET, SOCK_DGRAM)
    t.is_true(rx:bind(addrinfo.inet('127.0.0.1', 0)))
    local tx = new(AF_INET, SOCK_DGRAM)
    t.is_true(tx:bind(addrinfo.inet('127.0.0.1', 0)))
    local mh = llsocket.msghdr.new()
    mh:name(rx:getsockname())
    t.deq(t.pack(tx:sendmsg(mh)), { n = 3, 0, nil, false })
    t.is_true(rx:recvable(2000))
    local r = t.nres(4, rx:recvfrom())
    t.eq(r[1], '')
    t.eq(r[4]:port(), tx:getsockname():port())
end)

t.case('accept(true) over IPv6 loopback', function()
    local l = socket.new(AF_INET6, SOCK_STREAM)
    if not l then
        t.skip('no IPv6 sockets on this host')
    end
    t.closing(l)
    if not l:bind(addrinfo.inet6('::1', 0)) then
        t.skip('::1 is not configured')
    end
    t.is_true(l:listen())
    local c = new(AF_INET6, SOCK_STREAM)
    t.is_true(c:connect(l:getsockname()))
    local r = t.nres(4, l:accept(true))
    t.closing(r[1])
    t.eq(r[1]:family(), AF_INET6)
    t.eq(r[4]:family(), AF_INET6)
    t.eq(r[4]:addr(), '::1')
    t.eq(r[4]:port(), c:getsockname():port())
end)

t.case('recvfrom on a connected TCP socket returns the message only', function()
    local c, s = tcp()
    t.eq(c:send('abc'), 3)
    readable(s)
    t.deq(t.pack(s:recvfrom()), { n = 1, 'abc' })
end)

t.case('UDP: errors of the kernel are returned with the right op', function()
    local u = new(AF_INET, SOCK_DGRAM)
    local r = t.nres(2, u:sendto('x', addrinfo.inet6('::1', 9)))
    t.is_nil(r[1])
    t.err(r[2], 'EAFNOSUPPORT', 'sendto')
    -- a port nobody listens on: bind one, note it, close it
    local tmp = new(AF_INET, SOCK_DGRAM)
    t.is_true(tmp:bind(addrinfo.inet('127.0.0.1', 0)))
    local dead = tmp:getsockname()
    tmp:close()
    t.is_true(u:connect(dead))
    t.deq(t.pack(u:send('x')), { n = 3, 1, nil, false })
    t.is_true(u:recvable(2000), 'the ICMP error makes the socket readable')
    r = t.nres(2, u:recv())
    t.is_nil(r[1])
    t.err(r[2], 'ECONNREFUSED', 'recv')
end)

t.case('recvfd on datagram sockets: data without a descriptor is nil, nil, true (not EOF)', function()
    local a, b = pair(SOCK_DGRAM, true)
    t.eq(a:send('no fd here'), 10)
    t.deq(t.pack(b:recvfd()), { n = 3, nil, nil, true })
    t.eq(a:sendmsg(llsocket.msghdr.new()), 0)
    t.deq(t.pack(b:recvfd()), { n = 3, nil, nil, true }, 'an empty datagram is not EOF')
    t.deq(t.pack(b:recvfd()), { n = 3, nil, nil, true }, 'nothing left: would block')
    local x, y = pair()
    t.eq(a:sendfd(x:fd()), 0)
    local w = t.closing(socket.wrap(t.nres(1, b:recvfd())[1]))
    t.eq(w:send('d'), 1)
    t.eq(y:recv(), 'd')
end)

t.case('receive buffers: sizes up and down give exact data; large buffers work', function()
    local a, b = pair(SOCK_STREAM, true)
    t.eq(a:send(string.rep('x', 1000)), 1000)
    t.eq(b:recv(2000), string.rep('x', 1000))
    t.eq(a:send('yz'), 2)
    t.deq(t.pack(b:recv(2000)), { n = 1, 'yz' }, 'no stale bytes from the previous receive')
    t.eq(a:send('q'), 1)
    t.deq(t.pack(b:recv(300 * 1024)), { n = 1, 'q' })
    t.eq(a:send('r\0s'), 3)
    t.deq(t.pack(b:read(1024 * 1024)), { n = 1, 'r\0s' })
    local u, v = pair(SOCK_DGRAM, true)
    t.eq(u:send(string.rep('d', 500)), 500)
    t.eq(v:recvfrom(600), string.rep('d', 500))
    t.eq(u:send('e'), 1)
    t.deq(t.pack(v:recvfrom(600)), { n = 1, 'e' })
end)
