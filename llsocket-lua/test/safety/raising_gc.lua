-- llsocket-lua/test/safety/raising_gc.lua: nothing the binding owns is lost when a Lua API
-- call raises in the middle of a function. Before Lua 5.4 an allocation may run a GC step,
-- the step runs pending finalizers, and an error raised in a Lua `__gc` propagates out of
-- that allocation, i.e. out of whatever module function was allocating. Here finalizers
-- raise only while armed around one call, the collector runs continuously so that they
-- fire inside it, and after each storm the process must hold no more descriptors, bytes or
-- borrowed buffers than before. (5.4 turns errors in `__gc` into warnings: there the storms
-- run the same code and must simply change nothing.)
--
--     LUA_CPATH='<dir of llsocket.so>/?.so;;' lua5.3 llsocket-lua/test/safety/raising_gc.lua [ROUNDS]
local dir = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local C = dofile(dir .. '/common.lua')
local ll = require('llsocket')
local ROUNDS = tonumber(arg and arg[1]) or 3000
local propagates = _VERSION ~= 'Lua 5.4'
-- LuaJIT 2.1.0-beta3 (Debian's) itself crashes when a finalizer raises while JIT-compiled
-- code runs (no llsocket needed: a loop of `os.time()` and `'m' .. i` with raising
-- finalizers segfaults every run), so the armed finalizers run with the JIT off there.
if jit then jit.off() end
if warn then warn('@off') end -- 5.4: the armed finalizers' warnings are expected noise

local armed, hits = false, 0
local function bombs(n)
    for _ = 1, n do
        C.on_gc(function()
            if armed then
                hits = hits + 1
                error('armed finalizer')
            end
        end)
    end
end

-- Runs `op` ROUNDS times with armed finalizers pending; returns how many calls they broke.
local function storm(op, rounds)
    local broken = 0
    collectgarbage('setpause', 0) -- a new cycle as soon as one ends: steps in every call
    collectgarbage('setstepmul', 1000)
    for i = 1, rounds or ROUNDS do
        bombs(3)
        armed = true
        local ok, err = pcall(op, i)
        armed = false
        if not ok then
            if not tostring(err):find('armed finalizer') then error(err, 0) end
            broken = broken + 1
        end
    end
    collectgarbage('setpause', 200)
    collectgarbage('setstepmul', 200)
    armed = false
    C.full_gc()
    return broken
end

local function measure(what, op, rounds)
    C.full_gc()
    local fds0, rss0 = C.open_fds(ll), C.status('VmRSS') or 0
    hits = 0
    local broken = storm(op, rounds)
    local fds1, rss1 = C.open_fds(ll), C.status('VmRSS') or 0
    local grew = rss1 - rss0
    C.check(fds1 == fds0 and grew < 32 * 1024, string.format(
        '%-40s %5d calls broken by a finalizer: descriptors %d -> %d, RSS %+d kB',
        what, broken, fds0, fds1, grew))
    return broken
end

local total = 0
local iov = ll.iovec.new()
iov:addn(256 * 1024)
total = total + measure('iov:concat() of 256 kB', function() return iov:concat() end)
total = total + measure('socket.new', function()
    local s = ll.socket.new(ll.AF_INET, ll.SOCK_STREAM)
    return s
end)
total = total + measure('socket.pair', function() return ll.socket.pair(ll.SOCK_STREAM) end)
local base = ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM)
total = total + measure('sock:dup', function() return base:dup() end)
local l = assert(ll.socket.new(ll.AF_INET, ll.SOCK_STREAM, 0, true))
l:reuseaddr(true)
assert(l:bind(ll.addrinfo.inet('127.0.0.1', 0)))
assert(l:listen(4096))
local addr = l:getsockname()
total = total + measure('sock:accept(true)', function()
    local c = ll.socket.new(ll.AF_INET, ll.SOCK_STREAM)
    c:connect(addr)
    local a = l:accept(true)
    c:close()
    return a
end, math.min(ROUNDS, 1000))
total = total + measure('addrinfo.getaddrinfo', function()
    return ll.addrinfo.getaddrinfo('127.0.0.1', '80', nil, nil, nil, ll.AI_NUMERICHOST)
end)
total = total + measure('device.getifaddrs', function() return ll.device.getifaddrs() end,
    math.min(ROUNDS, 500))
local p = ll.socket.pair(ll.SOCK_DGRAM, 0, true)
total = total + measure('sock:recv (scratch buffer)', function(i)
    p[2]:send('m' .. i)
    return p[1]:recv()
end)
total = total + measure('sock:recvfrom of 1 MB (large area)', function(i)
    p[2]:send('big' .. i)
    return p[1]:recvfrom(1024 * 1024)
end, math.min(ROUNDS, 1000))
total = total + measure('cmsghdrs:shift', function()
    local cs = ll.cmsghdrs.new()
    cs:push(ll.cmsghdr.new(1, 2, string.rep('c', 1000)))
    return cs:shift()
end)

-- packet rules of llsocket.sim (a chunk of its own: this one's size and allocations pace
-- the storms above)
total = total + dofile(dir .. '/raising_gc_sim.lua')(C, measure)

-- the receive buffers still work after all of that (drain what broken calls left queued)
while p[1]:recv(2 * 1024 * 1024) do end
assert(p[2]:send('after'))
C.check(p[1]:recv() == 'after', 'recv (scratch) works after the storms')
-- ... and the scratch buffer is reused again: after one receive has put a buffer back, the
-- next ones take and return that same one (no allocation per call)
if debug and debug.getregistry then
    local st = debug.getregistry()['llsocket.state']
    assert(p[2]:send('refill'))
    p[1]:recv()
    local scratch = st and st[1]
    local same = scratch ~= nil
    for i = 1, 100 do
        assert(p[2]:send('r' .. i))
        assert(p[1]:recv() == 'r' .. i)
        same = same and rawequal(st[1], scratch)
    end
    C.check(same, 'the scratch buffer is reused after the storms')
end
assert(p[2]:send('after, large'))
C.check(p[1]:recv(1024 * 1024) == 'after, large', 'recv (large area) works after the storms')
if propagates then
    C.check(total > 0, string.format('finalizers broke %d calls (the path is exercised)', total))
end
C.finish()
