-- llsocket.socket module functions and the socket object's identity and life cycle
-- (socket.md §1-§3).
local t = ...
local llsocket = t.llsocket()
local socket = llsocket.socket
local errno = llsocket.errno
local AF_INET, AF_INET6, AF_UNIX = llsocket.AF_INET, llsocket.AF_INET6, llsocket.AF_UNIX
local SOCK_STREAM, SOCK_DGRAM = llsocket.SOCK_STREAM, llsocket.SOCK_DGRAM
local SHUT_RD, SHUT_WR, SHUT_RDWR = llsocket.SHUT_RD, llsocket.SHUT_WR, llsocket.SHUT_RDWR
local linux = llsocket.env.os == 'linux'
local has_int_subtype = math.type ~= nil

-- A connected stream pair, closed after the test.
local function pair(nonblock)
    local p = assert(socket.pair(SOCK_STREAM, 0, nonblock))
    t.closing(p[1], p[2])
    return p[1], p[2]
end

local new = t.socket

-- ---------------------------------------------------------------------------
-- socket.new

t.case('socket.new argument errors', function()
    t.argerr(function() socket.new('foo') end, 1, 'integer expected, got string')
    t.argerr(function() socket.new() end, 1, 'integer expected, got no value')
    t.argerr(function() socket.new(AF_INET) end, 2, 'integer expected, got no value')
    t.argerr(function() socket.new(AF_INET, '1') end, 2, 'integer expected, got string')
    t.argerr(function() socket.new(AF_INET, SOCK_STREAM, 'x') end, 3, 'integer expected, got string')
    t.argerr(function() socket.new(AF_INET, SOCK_STREAM, 0, 1) end, 4, 'boolean expected, got number')
    t.argerr(function() socket.new(AF_INET, SOCK_STREAM, 0, 'yes') end, 4, 'boolean expected, got string')
    t.argerr(function() socket.new(2.5, SOCK_STREAM) end, 1, 'integer expected, got number')
    t.argerr(function() socket.new(AF_INET, SOCK_STREAM, 0.5) end, 3, 'integer expected, got number')
end)

t.case('socket.new: integral floats are integers only before Lua 5.3', function()
    if has_int_subtype then
        t.argerr(function() socket.new(2.0, SOCK_STREAM) end, 1, 'integer expected, got number')
    else
        local s = new(2.0, SOCK_STREAM)
        t.eq(s:family(), AF_INET)
    end
end)

t.case('socket.new stores family, socktype and protocol as given', function()
    local s = new(AF_INET, SOCK_STREAM)
    t.eq(s:family(), AF_INET)
    t.eq(s:socktype(), SOCK_STREAM)
    t.eq(s:protocol(), 0)
    t.is_int(s:fd())
    t.ok(s:fd() >= 0)
    t.is_false(s:nonblock())
    t.is_true(s:cloexec())
    local u = new(AF_INET, SOCK_DGRAM, llsocket.IPPROTO_UDP, true)
    t.eq(u:socktype(), SOCK_DGRAM)
    t.eq(u:protocol(), llsocket.IPPROTO_UDP)
    t.is_true(u:nonblock())
    local x = new(AF_UNIX, SOCK_STREAM, nil, false)
    t.eq(x:family(), AF_UNIX)
    t.is_false(x:nonblock())
    local v6 = new(AF_INET6, SOCK_DGRAM)
    t.eq(v6:family(), AF_INET6)
end)

t.case('socket.new returns nil, err on failure (op socket)', function()
    local r = t.nres(2, socket.new(-1, SOCK_STREAM))
    t.is_nil(r[1])
    t.err(r[2], 'EAFNOSUPPORT', 'socket')
    r = t.nres(2, socket.new(AF_INET, 999))
    t.is_nil(r[1])
    t.err(r[2], 'EINVAL', 'socket')
end)

-- ---------------------------------------------------------------------------
-- socket.wrap

t.case('socket.wrap argument errors', function()
    t.argerr(function() socket.wrap('3') end, 1, 'integer expected, got string')
    t.argerr(function() socket.wrap() end, 1, 'integer expected, got no value')
    t.argerr(function() socket.wrap(-1, 1) end, 2, 'boolean expected, got number')
end)

t.case('socket.wrap of a bad descriptor: nil, err (getsockname)', function()
    local r = t.nres(2, socket.wrap(-1))
    t.is_nil(r[1])
    t.err(r[2], 'EBADF', 'getsockname')
end)

t.case('socket.wrap discovers family, type and protocol of an unwrapped socket', function()
    local s = socket.new(AF_INET, SOCK_STREAM)
    local fd = s:unwrap()
    local w = socket.wrap(fd)
    t.not_nil(w)
    t.closing(w)
    t.eq(w:fd(), fd)
    t.eq(w:family(), AF_INET)
    t.eq(w:socktype(), SOCK_STREAM)
    if linux then
        t.eq(w:protocol(), llsocket.IPPROTO_TCP, 'SO_PROTOCOL')
    end
    t.is_false(w:nonblock())
    t.is_true(w:cloexec(), 'wrap does not touch close-on-exec')
end)

t.case('socket.wrap(fd, true) sets O_NONBLOCK; false keeps an existing one', function()
    local a, b = pair()
    local w = socket.wrap(a:unwrap(), true)
    t.closing(w)
    t.eq(w:family(), AF_UNIX)
    t.is_true(w:nonblock())
    local u = socket.wrap(w:unwrap(), false)
    t.closing(u)
    t.is_true(u:nonblock(), 'nonblock=false does not clear O_NONBLOCK')
    -- still the connected socket
    t.eq(u:send('hi'), 2)
    t.eq(b:recv(), 'hi')
end)

-- ---------------------------------------------------------------------------
-- socket.pair

t.case('socket.pair argument errors', function()
    t.argerr(function() socket.pair() end, 1, 'integer expected, got no value')
    t.argerr(function() socket.pair('x') end, 1, 'integer expected, got string')
    t.argerr(function() socket.pair(SOCK_STREAM, 'x') end, 2, 'integer expected, got string')
    t.argerr(function() socket.pair(1, 0, 1) end, 3, 'boolean expected, got number')
end)

t.case('socket.pair returns two connected AF_UNIX sockets', function()
    for _, ty in ipairs({ SOCK_STREAM, SOCK_DGRAM, llsocket.SOCK_SEQPACKET }) do
        local p = t.nres(1, socket.pair(ty))[1]
        t.is_type(p, 'table')
        t.eq(#p, 2)
        t.closing(p[1], p[2])
        for i = 1, 2 do
            t.eq(p[i]:family(), AF_UNIX)
            t.eq(p[i]:socktype(), ty)
            t.eq(p[i]:protocol(), 0)
            t.is_false(p[i]:nonblock())
            t.is_true(p[i]:cloexec())
        end
        t.eq(p[1]:send('ping'), 4)
        t.eq(p[2]:recv(), 'ping')
        t.eq(p[2]:send('pong'), 4)
        t.eq(p[1]:recv(), 'pong')
    end
end)

t.case('socket.pair(type, proto, true) makes both non-blocking', function()
    local a, b = pair(true)
    t.is_true(a:nonblock())
    t.is_true(b:nonblock())
    t.deq(t.pack(a:recv()), { n = 3, nil, nil, true })
end)

t.case('socket.pair failure: nil, err (socketpair)', function()
    local r = t.nres(2, socket.pair(999))
    t.is_nil(r[1])
    t.err(r[2], 'EINVAL', 'socketpair')
    r = t.nres(2, socket.pair(SOCK_STREAM, llsocket.IPPROTO_TCP))
    t.is_nil(r[1])
    t.not_nil(r[2].type)
    t.eq(r[2].op, 'socketpair')
end)

-- ---------------------------------------------------------------------------
-- socket.shutdown / socket.close

t.case('socket.shutdown argument errors', function()
    t.argerr(function() socket.shutdown('1') end, 1, 'integer expected, got string')
    t.argerr(function() socket.shutdown(-1, 'x') end, 2, 'integer expected, got string')
end)

t.case('socket.shutdown results', function()
    local r = t.nres(2, socket.shutdown(-1))
    t.is_false(r[1])
    t.err(r[2], 'EBADF', 'shutdown')
    local a, b = pair()
    r = t.nres(2, socket.shutdown(a:fd(), 99))
    t.is_false(r[1])
    t.err(r[2], 'EINVAL', 'shutdown')
    t.deq(t.pack(socket.shutdown(a:fd(), SHUT_WR)), { n = 1, true })
    t.nres(0, b:recv())
    local u = new(AF_INET, SOCK_STREAM)
    r = t.nres(2, socket.shutdown(u:fd()))
    t.is_false(r[1])
    t.err(r[2], 'ENOTCONN', 'shutdown')
end)

t.case('socket.close argument errors', function()
    t.argerr(function() socket.close('1') end, 1, 'integer expected, got string')
    t.argerr(function() socket.close(-1, 'x') end, 2, 'integer expected, got string')
    t.argerr(function() socket.close(-1, 1.5) end, 2, 'integer expected, got number')
end)

t.case('socket.close of a bad descriptor: false, err (close)', function()
    local r = t.nres(2, socket.close(-1))
    t.is_false(r[1])
    t.err(r[2], 'EBADF', 'close')
    t.is_nil(string.find(tostring(r[2]), '\n'), 'no wrapped error')
end)

t.case('socket.close: both shutdown and close fail -> close error wrapping shutdown error', function()
    local r = t.nres(2, socket.close(-1, SHUT_RDWR))
    t.is_false(r[1])
    t.err(r[2], 'EBADF', 'close')
    local text = tostring(r[2])
    local first, second = text:match('^([^\n]*)\n(.*)$')
    t.not_nil(first, 'two lines expected: ' .. t.repr(text))
    t.has(first, '[EBADF:' .. errno.EBADF.code .. '][close]')
    t.has(second, '[EBADF:' .. errno.EBADF.code .. '][shutdown]')
end)

t.case('socket.close closes an unwrapped descriptor; with how it shuts down first', function()
    local a, b = pair()
    t.deq(t.pack(socket.close(a:unwrap())), { n = 1, true })
    t.nres(0, b:recv())
    local c, d = pair()
    t.deq(t.pack(socket.close(c:unwrap(), SHUT_WR)), { n = 1, true })
    t.nres(0, d:recv())
end)

t.case('socket.close: shutdown fails, close succeeds -> false, err (shutdown)', function()
    local s = socket.new(AF_INET, SOCK_STREAM)
    local r = t.nres(2, socket.close(s:unwrap(), SHUT_RDWR))
    t.is_false(r[1])
    t.err(r[2], 'ENOTCONN', 'shutdown')
end)

-- ---------------------------------------------------------------------------
-- identity

t.case('tostring, locked metatable and methods through an __index table', function()
    local s = new(AF_INET, SOCK_STREAM)
    local text = tostring(s)
    t.match(text, '^llsocket%.socket: ')
    t.eq(getmetatable(s), 1)
    t.is_type(s.fd, 'function')
    local other = new(AF_INET, SOCK_STREAM)
    t.eq(s.fd, other.fd, 'methods are shared functions')
    t.ne(tostring(other), text)
    t.is_nil(s.nosuchmethod)
    t.raises(function() s.fd = 1 end, 'index')
end)

t.case('methods check self', function()
    local s = new(AF_INET, SOCK_STREAM)
    local fd = s.fd
    t.argerr(function() fd({}) end, 1, 'llsocket.socket expected, got table')
    t.argerr(function() fd() end, 1, 'llsocket.socket expected, got no value')
    local obj = { fd = s.fd }
    t.raises(function() obj:fd() end, "calling 'fd' on bad self")
    local ai = llsocket.addrinfo.inet()
    t.raises(function() s.listen(ai) end, 'llsocket%.socket expected, got')
end)

t.case('fd, family, socktype, protocol', function()
    local s = new(AF_INET6, SOCK_DGRAM, llsocket.IPPROTO_UDP)
    t.eq(s:family(), AF_INET6)
    t.eq(s:socktype(), SOCK_DGRAM)
    t.eq(s:protocol(), llsocket.IPPROTO_UDP)
    local fd = s:fd()
    t.eq(s:fd(), fd)
    s:close()
    t.eq(s:fd(), -1)
    t.eq(s:family(), AF_INET6, 'stored values survive close')
end)

t.case('unwrap: returns the fd, removes the metatable, keeps the pointer text', function()
    local s = socket.new(AF_INET, SOCK_STREAM)
    local before = tostring(s)
    local ptr = before:match('^llsocket%.socket: (.*)$')
    local r = t.nres(1, s:unwrap())
    local fd = r[1]
    t.is_int(fd)
    t.ok(fd >= 0)
    t.is_nil(getmetatable(s))
    t.eq(tostring(s), 'userdata: ' .. ptr)
    t.raises(function() local _ = s.fd end, 'index')
    -- the descriptor is ours now and still open
    local w = socket.wrap(fd)
    t.not_nil(w)
    t.closing(w)
    t.eq(w:family(), AF_INET)
end)

t.case('unwrap of a closed socket returns -1', function()
    local s = socket.new(AF_INET, SOCK_STREAM)
    s:close()
    t.eq(s:unwrap(), -1)
end)

t.case('dup: independent object sharing the open file description', function()
    local a, b = pair()
    local r = t.nres(1, a:dup())
    local d = r[1]
    t.closing(d)
    t.match(tostring(d), '^llsocket%.socket: ')
    t.ne(d:fd(), a:fd())
    t.eq(d:family(), a:family())
    t.eq(d:socktype(), a:socktype())
    t.eq(d:protocol(), a:protocol())
    t.is_true(d:cloexec())
    -- O_NONBLOCK is a file-status flag: shared
    t.is_false(a:nonblock(true))
    t.is_true(d:nonblock())
    -- data read through one is gone for the other
    t.eq(b:send('xy'), 2)
    t.eq(d:recv(), 'xy')
    t.deq(t.pack(a:recv()), { n = 3, nil, nil, true })
    -- closing one keeps the other usable
    a:close()
    t.eq(d:send('z'), 1)
    t.eq(b:recv(), 'z')
end)

t.case('dup of a closed socket: nil, err (dup)', function()
    local s = socket.new(AF_INET, SOCK_STREAM)
    s:close()
    local r = t.nres(2, s:dup())
    t.is_nil(r[1])
    t.err(r[2], 'EBADF', 'dup')
end)

-- ---------------------------------------------------------------------------
-- close / shutdown methods

t.case('sock:close: true, fd -1, closing twice is not an error', function()
    local a, b = pair()
    t.deq(t.pack(a:close()), { n = 1, true })
    t.eq(a:fd(), -1)
    t.deq(t.pack(a:close()), { n = 1, true })
    t.deq(t.pack(a:close(SHUT_RDWR)), { n = 1, true })
    t.nres(0, b:recv())
end)

t.case('sock:close argument is validated even when closed', function()
    local s = socket.new(AF_INET, SOCK_STREAM)
    t.argerr(function() s:close('x') end, 1, 'integer expected, got string')
    s:close()
    t.argerr(function() s:close('x') end, 1, 'integer expected, got string')
    t.argerr(function() s:close(true) end, 1, 'integer expected, got boolean')
end)

t.case('sock:close(-1): false, EINVAL (shutdown) but the descriptor is closed', function()
    local a, b = pair()
    local r = t.nres(2, a:close(-1))
    t.is_false(r[1])
    t.err(r[2], 'EINVAL', 'shutdown')
    t.eq(a:fd(), -1)
    t.nres(0, b:recv())
end)

t.case('sock:close(SHUT_WR) shuts down then closes', function()
    local a, b = pair()
    t.deq(t.pack(a:close(SHUT_WR)), { n = 1, true })
    t.nres(0, b:recv())
end)

t.case('sock:shutdown argument errors and EBADF after close', function()
    local a = pair()
    t.argerr(function() a:shutdown('x') end, 1, 'integer expected, got string')
    t.argerr(function() a:shutdown(false) end, 1, 'integer expected, got boolean')
    local s = socket.new(AF_INET, SOCK_STREAM)
    s:close()
    local r = t.nres(2, s:shutdown())
    t.is_false(r[1])
    t.err(r[2], 'EBADF', 'shutdown')
end)

t.case('sock:shutdown(SHUT_WR): send EPIPE here, EOF at the peer', function()
    local a, b = pair()
    t.deq(t.pack(a:shutdown(SHUT_WR)), { n = 1, true })
    local r = t.nres(2, a:send('x'))
    t.is_nil(r[1])
    t.err(r[2], 'EPIPE', 'send')
    t.nres(0, b:recv())
    -- the other direction still works
    t.eq(b:send('back'), 4)
    t.eq(a:recv(), 'back')
end)

t.case('sock:shutdown() defaults to SHUT_RDWR; SHUT_RD gives EOF on recv', function()
    local a, b = pair()
    t.is_true(a:shutdown())
    local r = t.nres(2, a:send('x'))
    t.err(r[2], 'EPIPE', 'send')
    t.nres(0, a:recv())
    t.nres(0, b:recv())
    local c = pair()
    t.is_true(c:shutdown(SHUT_RD))
    t.nres(0, c:recv())
    r = t.nres(2, c:shutdown(99))
    t.err(r[2], 'EINVAL', 'shutdown')
end)

t.case('shutdown on an unconnected socket: ENOTCONN', function()
    local s = new(AF_INET, SOCK_STREAM)
    local r = t.nres(2, s:shutdown(SHUT_RD))
    t.is_false(r[1])
    t.err(r[2], 'ENOTCONN', 'shutdown')
end)

-- ---------------------------------------------------------------------------
-- closed sockets report EBADF

t.case('methods on a closed socket return EBADF', function()
    local s = socket.new(AF_INET, SOCK_STREAM)
    s:close()
    local ai = llsocket.addrinfo.inet('127.0.0.1', 0)
    local function check(r, op, failure)
        t.eq(r[1], failure)
        t.err(r[2], 'EBADF', op)
    end
    check(t.pack(s:send('x')), 'send', nil)
    check(t.pack(s:write('x')), 'write', nil)
    check(t.pack(s:sendto('x', ai)), 'sendto', nil)
    check(t.pack(s:recv()), 'recv', nil)
    check(t.pack(s:read()), 'read', nil)
    check(t.pack(s:recvfrom()), 'recvfrom', nil)
    check(t.pack(s:bind(ai)), 'bind', false)
    check(t.pack(s:listen()), 'listen', false)
    check(t.pack(s:connect(ai)), 'connect', false)
    check(t.pack(s:accept()), 'acceptfd', nil)
    check(t.pack(s:acceptfd()), 'acceptfd', nil)
    check(t.pack(s:getsockname()), 'getsockname', nil)
    check(t.pack(s:getpeername()), 'getpeername', nil)
    check(t.pack(s:atmark()), 'sockatmark', nil)
    check(t.pack(s:nonblock()), 'fcntl', nil)
    check(t.pack(s:cloexec()), 'fcntl', nil)
    check(t.pack(s:reuseaddr()), 'getsockopt', nil)
    check(t.pack(s:rcvbuf(1)), 'getsockopt', nil)
    check(t.pack(s:error()), 'getsockopt', nil)
    check(t.pack(s:sendfd(0)), 'sendmsg', nil)
    check(t.pack(s:recvfd()), 'recvmsg', nil)
    check(t.pack(s:recvable()), 'select', false)
    check(t.pack(s:sendable()), 'select', false)
    local mh = llsocket.msghdr.new()
    check(t.pack(s:sendmsg(mh)), 'sendmsg', nil)
    check(t.pack(s:recvmsg(mh)), 'recvmsg', nil)
end)

-- ---------------------------------------------------------------------------
-- __gc

t.case('__gc closes the descriptor of an unreferenced socket', function()
    local p = socket.pair(SOCK_STREAM, 0, true)
    local b = p[2]
    t.closing(b)
    p[1] = nil
    p = nil
    for _ = 1, 3 do
        collectgarbage('collect')
    end
    t.nres(0, b:recv())
end)

t.case('__gc does not close an unwrapped or closed descriptor', function()
    local p = socket.pair(SOCK_STREAM, 0, true)
    local b = p[2]
    t.closing(b)
    local fd = p[1]:unwrap()
    p = nil
    for _ = 1, 3 do
        collectgarbage('collect')
    end
    t.deq(t.pack(b:recv()), { n = 3, nil, nil, true }, 'peer still open')
    local w = socket.wrap(fd)
    t.closing(w)
    t.eq(w:send('alive'), 5)
    t.eq(b:recv(), 'alive')
end)

-- ---------------------------------------------------------------------------
-- completeness

t.case('every documented method exists on socket objects', function()
    local s = new(AF_INET, SOCK_DGRAM)
    for _, m in ipairs({ 'fd', 'family', 'socktype', 'protocol', 'unwrap', 'dup', 'close', 'shutdown',
        'bind', 'listen', 'connect', 'accept', 'acceptfd', 'recvable', 'sendable', 'send', 'sendto',
        'write', 'sendmsg', 'sendfd', 'sendfile', 'recv', 'recvfrom', 'read', 'recvfd', 'recvmsg',
        'atmark', 'getsockname', 'getpeername', 'cloexec', 'nonblock', 'error', 'acceptconn',
        'reuseaddr', 'reuseport', 'broadcast', 'debug', 'keepalive', 'oobinline', 'dontroute',
        'timestamp', 'rcvbuf', 'rcvlowat', 'sndbuf', 'sndlowat', 'tcpnodelay', 'tcpkeepintvl',
        'tcpkeepcnt', 'tcpkeepalive', 'tcpcork', 'rcvtimeo', 'sndtimeo', 'linger', 'mcastloop',
        'mcastttl', 'mcastif', 'mcastjoin', 'mcastleave', 'mcastjoinsrc', 'mcastleavesrc',
        'mcastblocksrc', 'mcastunblocksrc' }) do
        t.is_type(s[m], 'function', m)
    end
    local names = {}
    for k, v in pairs(socket) do
        t.is_type(v, 'function', k)
        names[#names + 1] = k
    end
    table.sort(names)
    t.deq(names, { 'close', 'new', 'pair', 'shutdown', 'wrap' })
end)

t.case('the module table has the documented sub-tables', function()
    for _, k in ipairs({ 'socket', 'addrinfo', 'msghdr', 'cmsghdr', 'cmsghdrs', 'device', 'env' }) do
        t.is_type(llsocket[k], 'table', k)
    end
    t.is_type(llsocket.device.getifaddrs, 'function')
    t.is_type(llsocket.msghdr.new, 'function')
    t.is_type(llsocket.cmsghdr.new, 'function')
    t.is_type(llsocket.cmsghdr.rights, 'function')
    t.is_type(llsocket.cmsghdrs.new, 'function')
    t.is_type(llsocket.iovec.new, 'function')
end)

t.case('socket.wrap of a datagram socket', function()
    local p = socket.pair(SOCK_DGRAM)
    t.closing(p[2])
    local w = t.closing(socket.wrap(p[1]:unwrap()))
    t.eq(w:family(), AF_UNIX)
    t.eq(w:socktype(), SOCK_DGRAM)
    t.eq(w:send('d'), 1)
    t.eq(p[2]:recv(), 'd')
end)

t.case('recv of an impossible buffer size raises the memory error', function()
    local a = pair()
    local huge = math.tointeger and math.tointeger(2 ^ 62) or 2 ^ 62
    t.raises(function() a:recv(huge) end, 'not enough memory')
    t.raises(function() a:read(huge) end, 'not enough memory')
    t.raises(function() a:recvfrom(huge) end, 'not enough memory')
end)

t.case('metatables are registered in the registry under their type names', function()
    t.ok(debug and debug.getregistry and debug.getmetatable, 'the suite needs the debug library')
    local reg = debug.getregistry()
    local s = new(AF_INET, SOCK_STREAM)
    t.eq(debug.getmetatable(s), reg['llsocket.socket'])
    t.eq(reg['llsocket.socket'].__metatable, 1)
    t.eq(getmetatable(llsocket.addrinfo.inet()), reg['llsocket.addrinfo'])
    t.eq(getmetatable(llsocket.msghdr.new()), reg['llsocket.msghdr'])
    t.eq(getmetatable(llsocket.cmsghdr.new(1, 1, 'x')), reg['llsocket.cmsghdr'])
    t.eq(getmetatable(llsocket.cmsghdrs.new()), reg['llsocket.cmsghdrs'])
    for _, name in ipairs({ 'llsocket.socket', 'llsocket.addrinfo', 'llsocket.msghdr',
        'llsocket.cmsghdr', 'llsocket.cmsghdrs' }) do
        local mt = reg[name]
        t.is_type(mt, 'table', name)
        t.is_type(mt.__index, 'table', name)
        -- only sockets own something to release; the other types are Lua memory only
        t.is_type(mt.__gc, name == 'llsocket.socket' and 'function' or 'nil', name)
        t.is_type(mt.__tostring, 'function', name)
        if math.type then
            t.eq(mt.__name, name)
        end
    end
end)

t.case('a socket that passed the self check is refused after unwrap', function()
    local s = socket.new(AF_INET, SOCK_STREAM)
    local fdf, fam = s.fd, s.family
    t.is_int(s:fd())
    t.is_int(fdf(s))
    local raw = s:unwrap()
    t.closing(socket.wrap(raw))
    t.argerr(function() fdf(s) end, 1, 'llsocket.socket expected, got userdata')
    t.argerr(function() fam(s) end, 1, 'llsocket.socket expected, got userdata')
end)

t.case('the self check tells sockets apart from other objects, alternating', function()
    local a, b = pair()
    local fdf = a.fd
    local ai = llsocket.addrinfo.inet()
    for _ = 1, 3 do
        t.eq(fdf(a), a:fd())
        t.eq(fdf(b), b:fd())
        t.raises(function() fdf(ai) end, 'bad argument #1 .-%(llsocket%.socket expected, got ')
        t.raises(function() fdf(llsocket.iovec.new()) end, 'bad argument #1 .-%(llsocket%.socket expected, got ')
    end
end)

t.case('collected sockets do not confuse later self checks', function()
    local fdf
    for i = 1, 50 do
        local s = socket.new(AF_INET, SOCK_DGRAM)
        fdf = fdf or s.fd
        t.is_int(fdf(s))
        s = nil
        collectgarbage('collect')
        local others = { llsocket.addrinfo.inet(), llsocket.msghdr.new(), llsocket.cmsghdrs.new(),
            llsocket.iovec.new(), llsocket.cmsghdr.new(1, 1, 'x') }
        for _, o in ipairs(others) do
            t.raises(function() fdf(o) end, 'bad argument #1 .-%(llsocket%.socket expected, got ', 'round ' .. i)
        end
    end
end)
