-- Hostile plain Lua (no `debug`): metamethods called by hand with foreign objects, objects
-- revived by finalizers, names that are not UTF-8, the errno twin fed garbage. Nothing
-- may crash, corrupt or pin memory; every misuse is a clear Lua error.
--
-- The memory-size checks (RSS soaks, memory limits, finalizers that raise) need a process
-- of their own and live in llsocket-lua/test/safety/ (run by `cargo xtask ci --step safety`).
local t = ...
local ll = t.llsocket()
local socket, addrinfo = ll.socket, ll.addrinfo
local msghdr, cmsghdr, cmsghdrs, iovec = ll.msghdr, ll.cmsghdr, ll.cmsghdrs, ll.iovec
local AF_INET, AF_UNIX, SOCK_STREAM, SOCK_DGRAM = ll.AF_INET, ll.AF_UNIX, ll.SOCK_STREAM, ll.SOCK_DGRAM
local linux = ll.env.os == 'linux'

local on_gc = t.on_gc

-- Makes `make()` and a finalizer that hands it to `sink`, in a frame of their own (so no
-- dead register of the caller keeps them alive): after a collection the object has been
-- finalized and revived by `sink`.
local function revive_later(make, sink)
    local obj = make()
    local hook = on_gc(function() sink(obj) end)
    return hook == nil
end

-- Asserts `bad argument #1 to '...' (<tname> expected, ...)`.
local function badarg(fn, tname, msg)
    return t.raises(fn, 'bad argument #1 to .-%(' .. t.esc(tname) .. ' expected', msg)
end

local function full_gc()
    collectgarbage('collect')
    collectgarbage('collect')
end

-- One object of each type, plus foreign values.
local function specimens()
    local p = t.pair()
    local objs = {
        socket = p,
        addrinfo = addrinfo.inet('127.0.0.1', 80),
        msghdr = msghdr.new(),
        cmsghdr = cmsghdr.new(1, 2, 'data'),
        cmsghdrs = cmsghdrs.new(),
        iovec = iovec.new(),
    }
    local foreign = { io.stdout, 'str', 42, 1.5, true, {}, print, coroutine.create(function() end) }
    return objs, foreign
end

t.case('no finalizer can be called with another type: only sockets have one, locked', function()
    local objs, foreign = specimens()
    for _, kind in ipairs({ 'addrinfo', 'msghdr', 'cmsghdr', 'cmsghdrs', 'iovec' }) do
        -- plain data in Lua's memory: nothing to release by hand, so no __gc to misuse
        t.is_nil(getmetatable(objs[kind]).__gc, kind .. ' has no __gc')
    end
    t.eq(getmetatable(objs.socket), 1, 'the socket metatable is locked')
    -- the issue's reproduction is a plain Lua error, and the socket survives it
    local s = t.socket(AF_INET, SOCK_STREAM)
    t.raises(function() getmetatable(addrinfo.inet('127.0.0.1')).__gc(s) end, 'attempt to call')
    t.raises(function() getmetatable(cmsghdrs.new()).__gc(io.stdout) end, 'attempt to call')
    full_gc()
    t.ok(s:fd() >= 0)
    t.eq(s:family(), AF_INET)
    t.is_true(s:close())
    for _, f in ipairs(foreign) do t.ok(f ~= nil) end
end)

t.case('every metamethod and method accepts only its own type', function()
    local objs, foreign = specimens()
    local count = 0
    for kind, o in pairs(objs) do
        local mt = getmetatable(o)
        if type(mt) == 'table' then -- the socket's is locked (getmetatable gives 1)
            local fns = {}
            for k, v in pairs(mt) do
                if type(v) == 'function' then fns[k] = v end
            end
            if type(mt.__index) == 'table' then
                for k, v in pairs(mt.__index) do fns[k] = v end
            end
            for name, fn in pairs(fns) do
                if name ~= '__tostring' then
                    for other, x in pairs(objs) do
                        if other ~= kind then
                            local ok = pcall(fn, x)
                            t.is_false(ok, kind .. '.' .. name .. '(' .. other .. ') was accepted')
                            count = count + 1
                        end
                    end
                    for _, f in ipairs(foreign) do
                        t.is_false(pcall(fn, f), kind .. '.' .. name .. '(' .. type(f) .. ') was accepted')
                    end
                end
            end
        end
    end
    t.ok(count > 50, 'checked ' .. count .. ' combinations')
    full_gc()
end)

t.case('socket methods refuse every other object', function()
    local objs, foreign = specimens()
    local methods = 0
    -- socket methods are reachable through a live socket's __index
    local s = objs.socket
    for _, name in ipairs({ 'fd', 'close', 'send', 'recv', 'sendmsg', 'recvmsg', 'unwrap', 'dup',
        'bind', 'getsockname', 'reuseaddr', 'recvable', 'mcastif' }) do
        local fn = s[name]
        for other, x in pairs(objs) do
            if other ~= 'socket' then
                badarg(function() fn(x) end, 'llsocket.socket')
                methods = methods + 1
            end
        end
        for _, f in ipairs(foreign) do
            t.is_false(pcall(fn, f))
        end
    end
    t.ok(methods > 0)
end)

t.case('a socket revived by a finalizer and freed again is never mistaken for a live one', function()
    local fdm = socket.new(AF_UNIX, SOCK_STREAM)
    t.closing(fdm)
    local fd_method = fdm.fd
    for round = 1, 5 do
        local keep
        revive_later(function() return socket.new(AF_INET, SOCK_STREAM) end,
            function(o) keep = o end)
        full_gc()
        t.not_nil(keep, 'the finalizer revived the socket')
        -- the revived socket was finalized: its descriptor is closed, it still answers
        t.eq(keep:fd(), -1)
        t.eq(keep:family(), AF_INET)
        t.is_true(keep:close())
        local n, err = keep:send('x')
        t.is_nil(n)
        t.err(err, 'EBADF')
        keep = nil
        full_gc()
        -- allocations reuse the freed blocks; none of them may pass as a socket
        for i = 1, 3000 do
            local m = msghdr.new()
            local ok = pcall(fd_method, m)
            if ok then
                t.fail('msghdr accepted as a socket in round ' .. round .. ' after ' .. i)
            end
        end
    end
end)

t.case('objects kept alive by another finalizer stay valid and usable', function()
    local kept = {}
    for _, kind in ipairs({ 'msghdr', 'cmsghdrs', 'iovec' }) do
        revive_later(function() return ll[kind].new() end, function(o) kept[kind] = o end)
    end
    revive_later(function() return cmsghdr.new(1, 2, 'x') end, function(o) kept.cmsghdr = o end)
    revive_later(function() return addrinfo.inet('127.0.0.1', 7) end, function(o) kept.ai = o end)
    full_gc()
    t.not_nil(kept.iovec)
    t.eq(kept.iovec:add('payload'), 1)
    t.eq(kept.iovec:concat(), 'payload')
    t.is_nil(kept.msghdr:iov(kept.iovec))
    kept.cmsghdrs:push(kept.cmsghdr)
    t.eq(kept.cmsghdrs:shift():data(), 'x')
    t.eq(kept.ai:port(), 7)
    local a, b = t.pair(SOCK_DGRAM)
    t.eq(a:sendmsg(kept.msghdr), 7)
    t.eq(b:recv(), 'payload')
    kept = nil
    full_gc()
end)

t.case('the errno twin keeps nothing it is given and refuses unknown codes like lua-errno', function()
    if package.loaded.errno then
        return t.skip('lua-errno is installed: the twin is not in use')
    end
    local errno = ll.errno
    t.raises(function() errno.new(987654) end, '"987654" is not defined')
    t.raises(function() errno.eai.new(987654) end, '"987654" is not defined')
    local weak = setmetatable({}, { __mode = 'v' })
    local function give(i)
        local s = socket.new(AF_INET, SOCK_STREAM)
        weak[i] = s
        t.raises(function() errno.new(s) end, 'is not defined')
        s:close()
    end
    -- (three: LuaJIT now and then keeps one of them alive for a while, through a stack slot
    -- or a trace of its own, about 1 run in 30; sockets the module pinned would stay, all;
    -- on PUC Lua none may stay)
    give(1)
    give(2)
    give(3)
    full_gc()
    local kept = (weak[1] and 1 or 0) + (weak[2] and 1 or 0) + (weak[3] and 1 or 0)
    t.ok(kept <= (jit and 1 or 0), 'the sockets passed to errno.new were pinned: ' .. kept .. ' of 3 kept')
    local before = collectgarbage('count')
    for i = 1, 20000 do
        pcall(errno.new, 100000 + i)
    end
    full_gc()
    t.ok(collectgarbage('count') - before < 256, 'unknown codes were kept')
    t.eq(errno.new(errno.EPIPE.code, nil, 'op').type, errno.EPIPE)
end)

t.case('cmsghdr.rights checks every argument before it allocates', function()
    for _ = 1, 200 do
        t.argerr(function() cmsghdr.rights(1, 2, 3, 'x') end, 4, 'integer expected, got string')
    end
    local c = cmsghdr.rights(3, 4, 5)
    t.deq({ c:data() }, { 3, 4, 5 })
end)

t.case('cmsghdr:data with more descriptors than a stack holds is an error, not an overrun', function()
    local n = 4 * 2000000
    local c = cmsghdr.new(ll.SOL_SOCKET, ll.SCM_RIGHTS, string.rep('\0', n))
    t.eq(#c, n)
    t.raises(function() c:data() end, 'too many descriptors')
end)

t.case('unix names are bytes end to end', function()
    t.eq(addrinfo.unix('caf\233.sock'):addr(), 'caf\233.sock')
    t.eq(addrinfo.unix('\255\254\0tail'):addr(), '\255\254')
    local path = t.tmppath('\255\254\233')
    local s = t.socket(AF_UNIX, SOCK_STREAM)
    t.is_true(s:bind(addrinfo.unix(path)))
    t.eq(s:getsockname():addr(), path)
    t.eq(#s:getsockname():addr(), #path)
    if linux then
        -- an abstract name with non-UTF-8 bytes round-trips through bind/connect
        local name = '\0llsocket-\255\254-' .. tostring(os.time())
        local l = t.socket(AF_UNIX, SOCK_STREAM)
        t.is_true(l:bind(addrinfo.unix(name)))
        t.is_true(l:listen())
        local c = t.socket(AF_UNIX, SOCK_STREAM)
        t.is_true(c:connect(addrinfo.unix(name)))
        t.eq(c:getpeername():addr(), '') -- abstract names show as '' (ai:addr)
        -- the lossy UTF-8 spelling of the same name is another name
        local c2 = t.socket(AF_UNIX, SOCK_STREAM)
        local ok = c2:connect(addrinfo.unix((name:gsub('\255\254', '\239\191\189'))))
        t.is_false(ok)
    end
end)

t.case('names that are not UTF-8 reach the resolver and interfaces as bytes', function()
    local ai, err = addrinfo.getaddrinfo('\255\254', nil, nil, nil, nil, ll.AI_NUMERICHOST)
    t.is_nil(ai)
    t.not_nil(err)
    local s = t.socket(AF_INET, SOCK_DGRAM)
    local ok, e = s:mcastif('\255\254')
    t.is_nil(ok)
    t.not_nil(e)
end)

t.case('IPv6 text follows inet_ntop: IPv4-compatible and mapped forms', function()
    t.eq(addrinfo.inet6('::1.2.3.4'):addr(), '::1.2.3.4')
    t.eq(addrinfo.inet6('::ffff:1.2.3.4'):addr(), '::ffff:1.2.3.4')
    t.eq(addrinfo.inet6('::1'):addr(), '::1')
    t.eq(addrinfo.inet6('::'):addr(), '::')
    t.eq(addrinfo.inet6('1:0:0:2:0:0:0:3'):addr(), '1:0:0:2::3')
end)

t.case('objects of the other types survive a full collection after the misuse', function()
    local objs = specimens()
    for _, o in pairs(objs) do
        for _ = 1, 3 do
            pcall(getmetatable(objs.iovec).__len, o)
            pcall(getmetatable(objs.cmsghdr).__len, o)
            pcall(getmetatable(objs.msghdr).__tostring, o)
        end
    end
    full_gc()
    t.ok(objs.socket:fd() >= 0)
    t.eq(objs.addrinfo:port(), 80)
    t.eq(objs.cmsghdr:data(), 'data')
    objs.cmsghdrs:push(objs.cmsghdr)
    t.eq(objs.cmsghdrs:shift():data(), 'data')
end)
