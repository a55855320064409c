-- Error objects (errors.md, DECISIONS.md): llsocket.errno, type singletons, fields,
-- tostring with the "in <kind> '<name>': " prefix, EAI errors, raised vs returned errors.
local t = ...
local llsocket = t.llsocket()
local errno = llsocket.errno
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local linux = llsocket.env.os == 'linux'

t.case('llsocket.errno exposes type singletons by name and by code', function()
    t.not_nil(errno)
    for _, name in ipairs({ 'EBADF', 'EPIPE', 'EAGAIN', 'EINVAL', 'ECONNREFUSED', 'EINPROGRESS',
        'ENOTCONN', 'EAFNOSUPPORT', 'ENAMETOOLONG', 'EOPNOTSUPP', 'ESOCKTNOSUPPORT', 'ENOBUFS' }) do
        local ty = errno[name]
        t.not_nil(ty, name)
        t.eq(ty.name, name)
        t.is_int(ty.code, name)
        t.is_type(ty.message, 'string', name)
        t.eq(errno[ty.code], ty, name .. ' by code')
    end
    t.eq(errno.EWOULDBLOCK, errno.EAGAIN, 'two names, one type')
    if linux then
        t.eq(errno.EBADF.code, 9)
        t.eq(errno.EBADF.message, 'Bad file descriptor')
        t.eq(errno[11], errno.EAGAIN)
        t.eq(errno[11].name, 'EAGAIN')
        t.eq(errno[95], errno.EOPNOTSUPP)
        t.eq(errno[35], errno.EDEADLK)
    end
end)

t.case('llsocket.errno.eai exposes EAI type singletons', function()
    local eai = errno.eai
    t.not_nil(eai)
    local ty = eai.EAI_NONAME
    t.not_nil(ty)
    t.eq(ty.name, 'EAI_NONAME')
    t.is_int(ty.code)
    t.is_type(ty.message, 'string')
    if linux then
        t.eq(ty.code, -2)
    end
end)

t.case('returned error objects have type, code, op, message', function()
    local s = t.closing(socket.new(llsocket.AF_INET, llsocket.SOCK_STREAM))
    local _, err = s:send('')
    t.eq(err.type, errno.EINVAL)
    t.eq(err.code, errno.EINVAL.code)
    t.eq(err.op, 'send_lua')
    t.not_nil(err.message)
    t.eq(err.message.op, 'send_lua')
    t.is_nil(err.message.message)
end)

t.case("tostring: in method 'x': [NAME:code][op] strerror", function()
    local s = t.closing(socket.new(llsocket.AF_INET, llsocket.SOCK_STREAM))
    local _, err = s:send('')
    t.eq(tostring(err), "in method 'send': [EINVAL:" .. errno.EINVAL.code .. '][send_lua] ' ..
        errno.EINVAL.message)
    local ok, e2 = s:shutdown()
    t.is_false(ok)
    t.eq(tostring(e2), "in method 'shutdown': [ENOTCONN:" .. errno.ENOTCONN.code .. '][shutdown] ' ..
        errno.ENOTCONN.message)
    local _, e3 = s:getpeername()
    t.match(tostring(e3), "^in method 'getpeername': %[ENOTCONN:%d+%]%[getpeername%] ")
end)

t.case("tostring: in field 'x': for module functions; ?: through pcall", function()
    local _, err = socket.close(-1)
    t.eq(tostring(err), "in field 'close': [EBADF:" .. errno.EBADF.code .. '][close] ' ..
        errno.EBADF.message)
    local _, e2 = addrinfo.inet('nope')
    t.eq(tostring(e2), "in field 'inet': [EAFNOSUPPORT:" .. errno.EAFNOSUPPORT.code .. '][inet_pton] ' ..
        errno.EAFNOSUPPORT.message)
    local r = t.pack(pcall(socket.close, -1))
    t.is_true(r[1])
    t.is_false(r[2])
    t.match(tostring(r[3]), '^%?: %[EBADF:')
end)

t.case('EAI errors print like errno errors', function()
    local _, err = addrinfo.getaddrinfo()
    local ty = errno.eai.EAI_NONAME
    t.eq(err.type, ty)
    t.eq(err.code, ty.code)
    t.eq(err.op, 'getaddrinfo')
    t.eq(tostring(err), "in field 'getaddrinfo': [EAI_NONAME:" .. ty.code .. '][getaddrinfo] ' .. ty.message)
end)

t.case('sock:error() returns the pending error in first position (op error)', function()
    local b = t.closing(socket.new(llsocket.AF_INET, llsocket.SOCK_STREAM))
    t.is_true(b:bind(addrinfo.inet('127.0.0.1', 0)))
    local c = t.closing(socket.new(llsocket.AF_INET, llsocket.SOCK_STREAM, 0, true))
    local ok, err = c:connect(b:getsockname())
    if ok and err then
        t.is_true(c:sendable(2000))
        local e = t.nres(1, c:error())[1]
        t.eq(e.type, errno.ECONNREFUSED)
        t.eq(e.op, 'error')
        t.match(tostring(e), "^in method 'error': %[ECONNREFUSED:")
    end
end)

t.case('argument errors are raised, operating-system errors returned', function()
    local s = t.closing(socket.new(llsocket.AF_INET, llsocket.SOCK_STREAM))
    t.raises(function() s:listen('x') end, "^[^\n]-bad argument #1 to 'listen' %(integer expected, got string%)$")
    local r = t.pack(pcall(function()
        local a, b = s:listen()
        return a, b
    end))
    t.is_true(r[1], 'listen on an unbound socket does not raise')
    t.raises(function() socket.new('x') end, "bad argument #1 to 'new' %(integer expected, got string%)")
    t.raises(function() llsocket.cmsghdrs.new():push({}) end,
        "bad argument #1 to 'push' %(llsocket%.cmsghdr expected, got table%)")
end)

t.case('bad self in method syntax: calling on bad self', function()
    local s = t.closing(socket.new(llsocket.AF_INET, llsocket.SOCK_STREAM))
    local fake = { send = s.send }
    t.raises(function() fake:send('x') end, "calling 'send' on bad self %(llsocket%.socket expected, got table%)")
end)

t.case('errno.new builds the same kind of objects', function()
    local e = errno.new(errno.EPIPE.code, nil, 'myop')
    t.eq(e.type, errno.EPIPE)
    t.eq(e.op, 'myop')
    t.has(tostring(e), '[EPIPE:' .. errno.EPIPE.code .. '][myop] ' .. errno.EPIPE.message)
end)

t.case('require returns the same module table', function()
    t.eq(require('llsocket'), llsocket)
    t.eq(require('llsocket').errno, errno)
end)

t.case('got <type>: __name for string/boolean/userdata checks (>= 5.3), plain type for integers', function()
    local s = t.closing(socket.new(llsocket.AF_INET, llsocket.SOCK_STREAM))
    local named = math.type and 'llsocket.socket' or 'userdata'
    t.argerr(function() s:send(s) end, 1, 'string expected, got ' .. named)
    t.argerr(function() s:nonblock(s) end, 1, 'boolean expected, got ' .. named)
    t.argerr(function() s:bind(s) end, 1, 'llsocket.addrinfo expected, got ' .. named)
    t.argerr(function() s:listen(s) end, 1, 'integer expected, got userdata')
    t.argerr(function() socket.new(s) end, 1, 'integer expected, got userdata')
    t.argerr(function() s:send(nil) end, 1, 'string expected, got nil')
    t.argerr(function() s:listen(function() end) end, 1, 'integer expected, got function')
end)
