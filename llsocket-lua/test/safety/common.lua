-- llsocket-lua/test/safety/common.lua: helpers of the standalone safety scripts (loaded
-- with dofile by each of them; they run in a process of their own because they measure
-- the process: resident memory, open descriptors, memory limits).
local M = {}

-- A value of /proc/self/status in kB (Linux), or nil.
function M.status(key)
    local f = io.open('/proc/self/status', 'r')
    if not f then return nil end
    local s = f:read('*a')
    f:close()
    return tonumber(s:match(key .. ':%s*(%d+)'))
end

-- Resets the peak resident size (VmHWM) to the current one; false where unsupported.
function M.reset_peak()
    local f = io.open('/proc/self/clear_refs', 'w')
    if not f then return false end
    local ok = f:write('5')
    f:close()
    return ok ~= nil
end

-- Open descriptors among 0..`last` (default 1023), probed with socket.wrap (EBADF = not
-- open); sockets that wrap are unwrapped again, so nothing is closed or changed.
function M.open_fds(ll, last)
    local n = 0
    for fd = 0, last or 1023 do
        local s, err = ll.socket.wrap(fd)
        if s then
            s:unwrap()
            n = n + 1
        elseif err.type ~= ll.errno.EBADF then
            n = n + 1
        end
    end
    return n
end

-- A userdata (5.1/LuaJIT: newproxy) or table (5.2+) whose finalizer calls `fn`.
function M.on_gc(fn)
    if newproxy then
        local p = newproxy(true)
        getmetatable(p).__gc = fn
        return p
    end
    return setmetatable({}, { __gc = fn })
end

-- Raising finalizers for the fuzzers: `b.plant(n)` leaves `n` objects to the collector
-- whose finalizers raise 'fuzz: armed finalizer' when they run while `b.armed`;
-- `b.call(arm, fn, ...)` calls `fn(...)` armed (or not) and returns its results packed
-- (the first ten; `n` counts up to the last that is not nil); `b.hits` counts the
-- finalizers that raised. Disarming is an assignment, never a call or an allocation: on
-- Lua 5.2 a call runs a collector step, and any allocation may elsewhere, whose armed
-- finalizer would raise outside the call under test. So `b.call` disarms as soon as
-- `fn` returns, before it packs the results (a raise there lost them: a descriptor that
-- `unwrap` or `acceptfd` returned leaked), and after a protected `b.call` that raised,
-- the caller disarms with `b.armed = false`. Between the two a collector step may still
-- run (LuaJIT, about 1 run in 30 of fuzz_sim, seed 310114), outside the call: so a
-- finalizer raises only when `b.call` is on the stack it runs on (the call under test,
-- not the statement after it, nor another coroutine while a task waits).
function M.bombs()
    local b = { hits = 0, armed = false }
    local getinfo = debug and debug.getinfo
    local function under_test()
        if not getinfo then
            return true
        end
        for level = 2, 400 do
            local info = getinfo(level, 'f')
            if not info then
                return false
            end
            if info.func == b.call then
                return true
            end
        end
        return false
    end
    function b.plant(n)
        for _ = 1, n do
            M.on_gc(function()
                if b.armed and under_test() then
                    b.hits = b.hits + 1
                    error('fuzz: armed finalizer')
                end
            end)
        end
    end
    function b.call(arm, fn, ...)
        b.armed = arm
        local r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 = fn(...)
        b.armed = false
        local r = { r1, r2, r3, r4, r5, r6, r7, r8, r9, r10 }
        local n = 10
        while n > 0 and r[n] == nil do
            n = n - 1
        end
        r.n = n
        return r
    end
    return b
end

function M.full_gc()
    collectgarbage('collect')
    collectgarbage('collect')
end

-- Result bookkeeping: `check(ok, what)`, then `finish()` exits 0 or 1.
local failures, checks = 0, 0
function M.check(ok, what)
    checks = checks + 1
    if ok then
        print('ok   ' .. what)
    else
        failures = failures + 1
        print('FAIL ' .. what)
    end
end
function M.finish()
    print(string.format('%d passed, %d failed', checks - failures, failures))
    os.exit(failures == 0 and checks > 0 and 0 or 1, true) -- close the state (5.2+): valgrind sees every free
end

return M
