-- llsocket-lua/test/safety/soak.lua: memory held by the module follows what the program
-- keeps (issue F3/F4/N1/N3). Each soak drops everything it makes; the peak resident size
-- during the soak, relative to a baseline measured in the same process just before, must
-- stay small: payloads are Lua memory the collector sees, receive buffers are not zero-
-- filled to the requested size, failing calls allocate nothing.
--
--     LUA_CPATH='<dir of llsocket.so>/?.so;;' lua5.4 llsocket-lua/test/safety/soak.lua
local dir = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local C = dofile(dir .. '/common.lua')
local ll = require('llsocket')
local unpack = table.unpack or unpack

if not C.status('VmRSS') or not C.reset_peak() then
    print('SKIP soak.lua: needs /proc/self/status and /proc/self/clear_refs (Linux)')
    print('0 passed, 0 failed, 1 skipped')
    os.exit(0)
end

-- The check: the module's peak stays within what plain Lua needs for the same bytes as
-- strings (its `twin` loop, measured in the same process just before: the collector paces
-- both alike, so on every interpreter the module may lag no more than Lua itself), plus a
-- small allowance; soaks without a twin use the allowance alone. The C module stays under
-- 5 MB in these loops; the bug this guards against made them grow by gigabytes.
local ALLOW_KB = 48 * 1024

local function peak_of(fn)
    C.full_gc()
    local base = C.status('VmRSS')
    C.reset_peak()
    fn()
    local peak = C.status('VmHWM')
    C.full_gc()
    return peak - base
end

local function soak(what, fn, twin)
    local lua_kb = twin and peak_of(twin) or 0
    local grew = peak_of(fn)
    local limit = 2 * lua_kb + ALLOW_KB
    C.check(grew <= limit, string.format('%-52s peak +%7d kB (plain Lua +%7d kB)', what, grew, lua_kb))
end

local p = ll.socket.pair(ll.SOCK_STREAM, 0, true)
local d = ll.socket.pair(ll.SOCK_DGRAM, 0, true)
local huge = math.tointeger and math.tointeger(2 ^ 30) or 2 ^ 30
local huger = math.tointeger and math.tointeger(2 ^ 31) or 2 ^ 31

soak('recv/read/recvfrom(2^30), nothing to read, x20', function()
    for _ = 1, 20 do
        assert(p[1]:recv(huge) == nil)
        assert(p[1]:read(huge) == nil)
        assert(d[1]:recvfrom(huge) == nil)
    end
end)
soak('recv(2^31) with 10 bytes to read, x20', function()
    for _ = 1, 20 do
        p[2]:send('0123456789')
        assert(#p[1]:recv(huger) == 10)
    end
end)
local payload = string.rep('p', 100 * 1024)
-- plain-Lua twins: the same number of fresh strings of the same sizes
local function strings(n, per, size)
    local piece = string.rep('q', size - 8)
    return function()
        for i = 1, n do
            local t = {}
            for k = 1, per do t[k] = piece .. string.format('%8d', i * per + k) end
        end
    end
end
soak('20,000 cmsghdr.new(1, 2, <100 kB>) dropped', function()
    for _ = 1, 20000 do
        ll.cmsghdr.new(1, 2, payload)
    end
end, strings(20000, 1, 100 * 1024))
soak('2,000 iovecs of 10 x 100 kB dropped', function()
    for _ = 1, 2000 do
        local iov = ll.iovec.new()
        for _ = 1, 10 do iov:add(payload) end
    end
end, strings(2000, 10, 100 * 1024))
soak('2,000 cmsghdrs holding 5 x 100 kB dropped', function()
    local c = ll.cmsghdr.new(1, 2, payload)
    for _ = 1, 2000 do
        local cs = ll.cmsghdrs.new()
        for _ = 1, 5 do cs:push(c) end
    end
end, strings(2000, 5, 100 * 1024))
soak('2,000 iov:concat() of 1 MB dropped', function()
    local iov = ll.iovec.new()
    for _ = 1, 10 do iov:add(payload) end
    for _ = 1, 2000 do iov:concat() end
end, strings(2000, 1, 1024 * 1024))
local fds = {}
for i = 1, 4000 do fds[i] = i end
fds[#fds + 1] = 'x'
soak('2,000 failing cmsghdr.rights(<4000 fds>, \'x\')', function()
    for _ = 1, 2000 do
        assert(not pcall(ll.cmsghdr.rights, unpack(fds)))
    end
end)
soak('200 iovecs revived by a finalizer, given 1 MB, dropped', function()
    local big = string.rep('r', 1024 * 1024)
    for _ = 1, 200 do
        local kept
        local function make()
            local iov = ll.iovec.new()
            local hook = C.on_gc(function() kept = iov end)
            return hook == nil
        end
        make()
        C.full_gc()
        kept:add(big)
        kept = nil
    end
end, strings(200, 1, 1024 * 1024))
soak('200 msghdr with 1 MB iovec attached, dropped', function()
    for _ = 1, 200 do
        local mh = ll.msghdr.new()
        local iov = ll.iovec.new()
        iov:addn(1024 * 1024)
        mh:iov(iov)
    end
end, strings(200, 1, 1024 * 1024))
-- llsocket.sim: a call that raises because its world is gone frees what it allocated
-- (world:group with host tables, which pass their check on a gone world, collected their
-- indices and then raised, losing them: +4.7 MB per 100 000 calls)
do
    local sim = require('llsocket.sim')
    local w = sim.new()
    local a, b = w:host('a'), w:host('b')
    w:close()
    local function batch()
        for _ = 1, 100000 do
            local ok, err = pcall(w.group, w, 'g', a, b, a, b)
            assert(not ok and err:find('this world is gone', 1, true), err)
        end
        C.full_gc()
        return C.status('VmRSS')
    end
    batch() -- (Lua's memory for the error messages, warmed up)
    local before = batch()
    local grew = batch() - before
    C.check(grew < 2048, string.format('%-52s RSS %+7d kB', '100,000 world:group on a closed world, raising', grew))
end
C.finish()
