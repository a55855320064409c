-- llsocket-lua/test/safety/memlimit.lua: under a memory limit every operation either
-- succeeds or raises Lua's memory error, which a program can catch; nothing aborts the
-- process. Meant to run under an address-space limit, e.g.
--
--     sh -c 'ulimit -v 1000000; LUA_CPATH=... exec lua5.4 llsocket-lua/test/safety/memlimit.lua'
--
-- (`cargo xtask ci --step safety` does that for every interpreter). For each allocation
-- whose size comes from Lua input, the heap is first filled with plain Lua strings until
-- the limit refuses more, a little headroom is given back, and the operation is asked for
-- more than that headroom.
local dir = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local C = dofile(dir .. '/common.lua')
local ll = require('llsocket')
local MB = 1024 * 1024
local int = math.tointeger or function(x) return x end

local filler = {}
-- Fills memory with 4 MB strings until an allocation fails, then frees `headroom` MB.
local function fill(headroom)
    local i = 0
    while true do
        i = i + 1
        local ok = pcall(function() filler[#filler + 1] = string.rep('f', 4 * MB - 64) .. i end)
        if not ok then break end
        if i > 100000 then error('memlimit.lua needs an address-space limit (ulimit -v)') end
    end
    for _ = 1, headroom / 4 do filler[#filler] = nil end
    C.full_gc()
end
local function release()
    filler = {}
    C.full_gc()
end

local function is_memory_error(err)
    local e = tostring(err)
    return e:find('not enough memory', 1, true) ~= nil or e:find('block too big', 1, true) ~= nil
        or e:find('length overflow', 1, true) ~= nil
end

-- `op` must either work or raise the memory error; `want_error`: it must raise it.
local function under_limit(what, op, want_error)
    fill(16)
    local ok, err = pcall(op)
    release()
    if ok then
        C.check(not want_error, what .. ': succeeded')
    else
        C.check(is_memory_error(err), what .. ': ' .. tostring(err))
    end
end

local p = ll.socket.pair(ll.SOCK_STREAM, 0, true)
local d = ll.socket.pair(ll.SOCK_DGRAM, 0, true)
local big_iov = ll.iovec.new()
for _ = 1, 8 do big_iov:add(string.rep('i', 4 * MB)) end
local s32 = string.rep('s', 32 * MB)
local big_cmsg = ll.cmsghdr.new(1, 2, string.rep('c', 24 * MB))

under_limit('recv(256 MB), nothing to read', function() return p[1]:recv(int(256 * MB)) end, true)
under_limit('read(2^40)', function() return p[1]:read(int(2 ^ 40)) end, true)
under_limit('recvfrom(2^62)', function() return d[1]:recvfrom(int(2 ^ 62)) end, true)
under_limit('iov:addn(256 MB)', function() return ll.iovec.new():addn(int(256 * MB)) end, true)
under_limit('iov:addn(2^62)', function() return ll.iovec.new():addn(int(2 ^ 62)) end, true)
under_limit('iov:add(32 MB) x4', function()
    local v = ll.iovec.new()
    for _ = 1, 4 do v:add(s32) end
end, true)
under_limit('iov:set(32 MB) x4', function()
    local v = ll.iovec.new()
    for _ = 1, 4 do v:add('x') end
    for k = 1, 4 do v:set(s32, k) end
end, true)
under_limit('iov:concat() of 32 MB', function() return big_iov:concat() end, true)
under_limit('iov:consume() copying 28 MB', function()
    local v = ll.iovec.new()
    v:add(string.rep('v', 28 * MB))
    return v:consume(1)
end)
under_limit('cmsghdr.new(1, 2, <32 MB>) x2', function()
    return ll.cmsghdr.new(1, 2, s32), ll.cmsghdr.new(1, 2, s32)
end, true)
under_limit('cmsghdrs:push(<24 MB>) x2', function()
    local cs = ll.cmsghdrs.new()
    cs:push(big_cmsg)
    cs:push(big_cmsg)
end, true)
under_limit('cmsghdr:data() of 24 MB', function() return big_cmsg:data() end)
-- names are copied for C: the copy fails cleanly (EAI_MEMORY) or the name is refused
under_limit('getaddrinfo(<32 MB name>)', function()
    local ai, err = ll.addrinfo.getaddrinfo(s32, nil, nil, nil, nil, ll.AI_NUMERICHOST)
    assert(ai == nil and err ~= nil)
end)
under_limit('mcastif(<32 MB name>)', function()
    local u = ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM)
    local ok, err = u:mcastif(s32)
    u:close()
    assert(ok == nil and err ~= nil)
end)
under_limit('socket.new, pair, dup, accept', function()
    local s = assert(ll.socket.new(ll.AF_INET, ll.SOCK_STREAM))
    local q = assert(ll.socket.pair(ll.SOCK_STREAM))
    local t = assert(s:dup())
    s:close(); q[1]:close(); q[2]:close(); t:close()
end)

-- a packet rule (llsocket.sim) that runs out of memory fails like any rule: the memory
-- error stays inside the rule's protected call, the packet passes, and the next call into
-- the world raises the rule's report
do
    local sim = require('llsocket.sim')
    local w = sim.new({ seed = 1 })
    local a, b = w:host('a'), w:host('b')
    local x = assert(a.socket.new(a.AF_INET, a.SOCK_DGRAM, 0, true))
    local y = assert(b.socket.new(b.AF_INET, b.SOCK_DGRAM, 0, true))
    assert(y:bind(b.addrinfo.inet(b.ipv4, 2)))
    local to = a.addrinfo.inet(b.ipv4, 2)
    w:rule(function()
        local big = string.rep('r', 64 * MB)
        return #big < 0 and 'drop' or nil
    end)
    fill(16)
    local sent, serr = pcall(x.sendto, x, 'q', to)
    release()
    C.check(sent, 'a send whose packet rule runs out of memory: ' .. tostring(serr))
    local ok, err = pcall(w.now, w)
    C.check(not ok and tostring(err):find('packet rule 1', 1, true) ~= nil and is_memory_error(err),
        'the rule\'s memory error is reported: ' .. tostring(err))
    C.check(y:recv() == 'q', 'the packet passed')
    x:close(); y:close(); w:close()
end
-- llsocket.sim keeps copies of host and group names in Rust memory, whose allocation
-- cannot fail cleanly: names are bounded (a bad argument, not an abort), and so is the
-- path world:pcap hands to the system
do
    local sim = require('llsocket.sim')
    local w = sim.new()
    local h = w:host('a')
    local function refused(what, op)
        fill(16)
        local ok, err = pcall(op)
        release()
        C.check(not ok and tostring(err):find('longer than 255 bytes', 1, true) ~= nil, what .. ': ' .. tostring(err))
    end
    refused('world:host(<32 MB name>)', function() return w:host(s32) end)
    refused('world:group(<32 MB name>)', function() return w:group(s32, h) end)
    refused('world:link_groups(<32 MB name>)', function() return w:link_groups('g', s32) end)
    -- the names a program passes to a simulated host's resolver and interface look-ups
    -- reach the trace (kept by default) cut at 255 bytes
    under_limit('simulated getaddrinfo(<32 MB node and service>)', function()
        local ai, err = h.addrinfo.getaddrinfo(s32, s32)
        assert(ai == nil and err ~= nil)
    end)
    for _, family in ipairs({ 'AF_INET', 'AF_INET6' }) do
        under_limit('simulated ' .. family .. ' mcastif(<32 MB name>)', function()
            local u = assert(h.socket.new(h[family], h.SOCK_DGRAM))
            local ok, err = u:mcastif(s32)
            u:close()
            assert(ok == nil and err ~= nil)
        end)
    end
    under_limit('world:pcap(<32 MB path>)', function()
        local ok, err = w:pcap(s32)
        assert(ok == nil and err ~= nil)
    end)
end

-- and the module works normally once memory is back
local v = ll.iovec.new()
v:add('back')
C.check(v:concat() == 'back', 'the module works after the limit was hit')
assert(p[2]:send('ok'))
C.check(p[1]:recv() == 'ok', 'recv works after the limit was hit')
C.finish()
