-- llsocket.sim's task scheduler: world:spawn, world:run, world:tasks and sim.pcall.
-- Loaded by sim.rs with (TOKEN, threads, H): the marker a parked call yields first, the
-- registry's weak table of coroutines that may wait (thread -> {task name, world key}),
-- and the private helpers H (mode, retry_begin, retry_end, changes, now, step, turn,
-- state, key). Works unchanged on Lua 5.1 to 5.4 and LuaJIT. See task.rs for how a call
-- parks, and sim.rs (the module docs) for what a program sees.
--
-- Order is deterministic: tasks run in the order they became runnable (spawn order
-- first); waiting tasks are looked at in spawn order; the world moves one event at a
-- time, never past the earliest deadline of a waiting task (so a timeout happens at the
-- virtual time it would without tasks) nor past the run's deadline.
local TOKEN, threads, H = ...

local select, type, tostring, error, pcall, setmetatable = select, type, tostring, error, pcall, setmetatable
local format, concat, floor = string.format, table.concat, math.floor
local unpack = table.unpack or unpack
local create, resume, status, yield, running =
    coroutine.create, coroutine.resume, coroutine.status, coroutine.yield, coroutine.running
local traceback = debug and debug.traceback

local function pack(...)
    return { n = select('#', ...), ... }
end

local NOTHING = { n = 0 }

local M = {}

-- ---------------------------------------------------------------------------------
-- per-world state (kept in the world's user value, so a world and its tasks are
-- collected together on every interpreter)
--
-- Any allocation may raise: the memory error, and before Lua 5.4 the error of a finalizer
-- the allocation's collector step runs. So the state is changed in an order that such an
-- error cannot leave half done: what allocates comes first, the changes that make it
-- visible (which do not allocate) last.

local function state(w)
    local st = H.state(w)
    if st.live == nil then
        -- (`live` last: an initialisation cut short by an error is done again)
        st.tasks = {} -- records, in spawn order
        st.q, st.qh, st.qt = {}, 1, 0 -- runnable records, FIFO
        st.running = false
        st.live = 0 -- tasks not done nor failed
    end
    return st
end

-- Makes the queue's next slot (the allocation); `push` then fills it without allocating.
local function reserve(st)
    local slot = st.qt + 1
    if st.q[slot] == nil then
        st.q[slot] = false
    end
end

local function push(st, rec)
    local slot = st.qt + 1
    st.q[slot] = rec -- (may allocate unless reserved: the queue is unchanged until qt moves)
    st.qt = slot
end

local function pop(st)
    local rec = st.q[st.qh]
    st.q[st.qh] = nil
    st.qh = st.qh + 1
    return rec
end

local function vtime(w)
    local ok, ns = pcall(H.now, w)
    if not ok then
        return '?'
    end
    return format('%d.%09d s', floor(ns / 1e9), ns % 1000000000)
end

-- what a waiting task waits on, e.g. 'recv(fd=4)' or 'recvable(fd=4) until 1.500000000 s'
local function waits_text(rec)
    local t = format('%s(fd=%d)', rec.what, rec.fd)
    if rec.deadline then
        t = t .. format(' until %d.%09d s', floor(rec.deadline / 1e9), rec.deadline % 1000000000)
    end
    return t
end

-- ---------------------------------------------------------------------------------
-- task objects: read-only views of the scheduler's records

local function copy(t)
    if not t then
        return nil
    end
    return { n = t.n, unpack(t, 1, t.n) }
end

local function view(rec)
    return setmetatable({}, {
        __index = function(_, k)
            if k == 'name' then
                return rec.name
            elseif k == 'host' then
                return rec.host
            elseif k == 'status' then
                return rec.status
            elseif k == 'results' then
                return copy(rec.results)
            elseif k == 'error' then
                return rec.err
            elseif k == 'waits' then
                return rec.status == 'waiting' and waits_text(rec) or nil
            end
        end,
        __newindex = function()
            error('llsocket.sim: a task object is read-only', 2)
        end,
        __tostring = function()
            return format('llsocket.sim.task: "%s" on host %s, %s', rec.name, rec.host, rec.status)
        end,
        __metatable = false,
    })
end

-- ---------------------------------------------------------------------------------
-- spawn

function M.spawn(w, hidx, hname, name, fn, ...)
    local st = state(w)
    local n = #st.tasks + 1
    local rec = {
        name = name or ('task-' .. n),
        host = hname,
        hidx = hidx,
        status = 'ready',
        rw = pack(...), -- the values it is resumed with: rw[rw0], ..., rw[rw.n]
        rw0 = 1,
    }
    -- (a Lua function first: 5.1 cannot make a coroutine of a C function)
    rec.co = create(function(...)
        return fn(...)
    end)
    threads[rec.co] = { rec.name, H.key(w) }
    rec.view = view(rec)
    reserve(st)
    st.tasks[n] = rec
    -- (from here on nothing allocates)
    push(st, rec)
    st.live = st.live + 1
    return rec.view
end

function M.tasks(w)
    local st = state(w)
    local list = {}
    for i = 1, #st.tasks do
        list[i] = st.tasks[i].view
    end
    return list
end

-- ---------------------------------------------------------------------------------
-- running

local function report(w, head, detail)
    local ok, seed = pcall(w.seed, w)
    local ok2, hint = pcall(w.replay_hint, w)
    return format('llsocket.sim: %s (virtual time %s, seed %s):\n%s%s', head, vtime(w), ok and tostring(seed) or '?',
        detail, ok2 and '\n' .. hint or '')
end

-- A task's error ends the run: the report names the task, its host, the virtual time and
-- the seed, with the task's traceback.
local function fail(w, st, rec, err)
    rec.status, rec.err = 'failed', err
    st.live = st.live - 1
    local text = tostring(err)
    if text:find('attempt to yield across', 1, true) then
        text = text .. ' (a task waits by yielding its coroutine: never across a C function that cannot'
            .. ' yield, such as a table.sort or string.gsub callback; on Lua 5.1 neither across pcall'
            .. ' (use sim.pcall), a metamethod nor the iterator of a for loop)'
    end
    local tb = traceback and traceback(rec.co, text) or text
    threads[rec.co] = nil
    error(report(w, format('task "%s" on host %s failed', rec.name, rec.host), tb), 0)
end

-- What a completed call returns (r = pack(true, results...)), with the part it moved
-- before it waited added: a table and the index of the first value.
local function merged(rec, r)
    local base = rec.base
    if base == nil then
        return r, 2
    end
    rec.base = nil
    local res = { n = r.n - 1, unpack(r, 2, r.n) }
    local first = res[1]
    if type(base) == 'number' then
        if res.n >= 1 and type(first) == 'number' then
            res[1] = base + first
            return res, 1
        end
        -- the rest failed or timed out: what was sent, as a partial send
        return { n = 3, base, nil, true }, 1
    end
    if res.n >= 1 and type(first) == 'string' then
        res[1] = base .. first
        return res, 1
    end
    -- end of stream, an error or a timeout after some bytes: those bytes
    return { n = 1, base }, 1
end

-- Records a park from the values r[i], r[i+1], ...: deadline, what, fd, host, moved, fn, args.
local function park(w, rec, r, i)
    local d = r[i]
    rec.status = 'waiting'
    rec.deadline = d or nil
    rec.what, rec.fd, rec.whost = r[i + 1], r[i + 2], r[i + 3]
    local moved = r[i + 4]
    if moved ~= nil then
        local base = rec.base
        if base == nil then
            rec.base = moved
        elseif type(base) == 'number' then
            rec.base = base + moved
        else
            rec.base = base .. moved
        end
    end
    rec.fn = r[i + 5]
    rec.args, rec.a0 = r, i + 6 -- the arguments: r[i + 6], ..., r[r.n]
    rec.epoch = H.changes(w, rec.whost)
end

-- Resumes every task queued when the round starts. Returns whether any of them did more
-- than yield of its own accord (a task that does is queued again, after the others).
local function round(w, st)
    local progressed = false
    local last = st.qt
    while st.qh <= last do
        local rec = pop(st)
        local rw, rw0 = rec.rw or NOTHING, rec.rw0 or 1
        rec.rw, rec.rw0 = nil, nil
        rec.status = 'running'
        H.turn(w)
        local r = pack(resume(rec.co, unpack(rw, rw0, rw.n)))
        if not r[1] then
            fail(w, st, rec, r[2])
        end
        if status(rec.co) == 'dead' then
            rec.status = 'done'
            rec.results = { n = r.n - 1, unpack(r, 2, r.n) }
            st.live = st.live - 1
            threads[rec.co] = nil
            progressed = true
        elseif r[2] == TOKEN then
            park(w, rec, r, 3)
            progressed = true
        else
            rec.status = 'ready'
            push(st, rec)
        end
    end
    return progressed
end

-- Calls a waiting task's parked call again; true when it completed (the task is queued
-- with its results).
local function retry(w, st, rec)
    H.retry_begin(w, rec.deadline or false)
    local args = rec.args
    local r = pack(pcall(rec.fn, unpack(args, rec.a0, args.n)))
    H.retry_end(w)
    if not r[1] then
        fail(w, st, rec, r[2])
    end
    if r[2] == TOKEN then
        park(w, rec, r, 3)
        return false
    end
    rec.fn, rec.args = nil, nil
    rec.status = 'ready'
    rec.rw, rec.rw0 = merged(rec, r)
    push(st, rec)
    return true
end

-- Looks at the waiting tasks in spawn order: each whose wait may have ended (something
-- changed on the host of its call, or its deadline passed) calls again.
local function wake(w, st)
    local woke = false
    local now = H.now(w)
    local tasks = st.tasks
    for i = 1, #tasks do
        local rec = tasks[i]
        if rec.status == 'waiting' then
            local d = rec.deadline
            if (d and d <= now) or H.changes(w, rec.whost) ~= rec.epoch then
                if retry(w, st, rec) then
                    woke = true
                end
            end
        end
    end
    return woke
end

local function earliest(st, limit)
    local lim = limit
    local tasks = st.tasks
    for i = 1, #tasks do
        local rec = tasks[i]
        local d = rec.status == 'waiting' and rec.deadline
        if d and (not lim or d < lim) then
            lim = d
        end
    end
    return lim
end

-- Nothing can run and nothing is pending: the report names every task still there.
local function deadlock(w, st)
    local lines = {}
    local tasks = st.tasks
    for i = 1, #tasks do
        local rec = tasks[i]
        if rec.status == 'waiting' then
            lines[#lines + 1] = format('  task "%s" on host %s waits in %s', rec.name, rec.host, waits_text(rec))
        elseif rec.status == 'ready' then
            lines[#lines + 1] = format('  task "%s" on host %s yields, but nothing it could wait for is pending',
                rec.name, rec.host)
        end
    end
    error(report(w, 'deadlock: every task waits and nothing is pending', concat(lines, '\n')), 0)
end

-- Rounds in a row in which every runnable task only yielded of its own accord, no call
-- did anything and the world had nothing to run, before that counts as a deadlock.
local IDLE_ROUNDS = 1000

local function loop(w, st, limit)
    local idle = 0
    while true do
        local progressed = false
        if st.qh <= st.qt then
            local before = H.progress(w)
            progressed = round(w, st) or H.progress(w) ~= before
        end
        if st.live == 0 then
            return true
        end
        if wake(w, st) or progressed then
            idle = 0
        else
            -- nothing runs without the world (or only tasks that yield and do nothing):
            -- its next event, or the clock to the earliest deadline
            local r = H.step(w, earliest(st, limit))
            if r ~= 'idle' then
                idle = 0
            elseif limit and H.now(w) >= limit then
                return false, 'deadline'
            elseif st.qh > st.qt or idle >= IDLE_ROUNDS then
                deadlock(w, st)
            else
                idle = idle + 1
            end
        end
    end
end

function M.run(w, limit)
    local st = state(w)
    if st.running then
        error('llsocket.sim: this world is already running its tasks', 0)
    end
    st.running = true
    H.mode(w, true)
    local ok, a, b = pcall(loop, w, st, limit)
    st.running = false
    pcall(H.mode, w, false)
    if not ok then
        error(a, 0)
    end
    return a, b
end

-- ---------------------------------------------------------------------------------
-- sim.pcall: pcall that lets a task wait inside it. Where pcall can yield (Lua 5.2+,
-- LuaJIT) it is pcall; on Lua 5.1 it runs the function in a coroutine of its own that
-- may wait for the task, and passes every yield on (like coxpcall).

local native = coroutine.wrap(function()
    return pcall(yield, 'probe')
end)() == 'probe'

local function copcall(f, ...)
    local co = create(function(...)
        return f(...)
    end)
    local cur = running()
    if cur then
        threads[co] = threads[cur]
    end
    local r = pack(resume(co, ...))
    while true do
        if not r[1] then
            threads[co] = nil
            return false, r[2]
        end
        if status(co) == 'dead' then
            threads[co] = nil
            return true, unpack(r, 2, r.n)
        end
        r = pack(resume(co, yield(unpack(r, 2, r.n))))
    end
end

M.pcall = native and pcall or copcall
M.pcall_native = native

return M
