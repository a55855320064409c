-- llsocket.sim's task scheduler: world:spawn, world:run, world:tasks and sim.pcall.
-- Loaded by sim.rs with (TOKEN, threads, H): the marker a parked call yields first, the
-- registry's weak table of coroutines that may wait (thread -> {task name, world key}),
-- and the private helpers H (retry_begin, retry_end, changes, may_read, now, step, turn,
-- progress, state, key). Works unchanged on Lua 5.1 to 5.4 and LuaJIT. See task.rs for how
-- a call parks, and sim.rs (the module docs) for what a program sees. `world:run` (sim.rs)
-- calls `M.run` protected, with the world in task mode, and ends task mode (and the run)
-- itself whatever happens.
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
-- (the helpers used at every task switch, as locals)
local h_changes, h_may_read, h_now, h_turn = H.changes, H.may_read, H.now, H.turn
local h_retry_begin, h_retry_end = H.retry_begin, H.retry_end

local function pack(...)
    return { n = select('#', ...), ... }
end

local NOTHING = { n = 0 }

local M = {}

-- ---------------------------------------------------------------------------------
-- per-world state (kept in the world's user value, so a world and its tasks are
-- collected together on every interpreter)
--
-- An error may be raised at any allocation, and on Lua 5.2 at any function call (a call
-- runs a collector step): the memory error, and before Lua 5.4 the error of a finalizer
-- that step runs. The scheduler must survive it with its records consistent, so that a
-- later run goes on. Hence:
--   * what a task's step returns is kept by the step itself: a task's coroutine records
--     its own results, a parked call yields its park as one table (task.rs), a parked
--     call made again packs what it returns inside a protected call; an error there is
--     that task's error, as it would be in the call without tasks;
--   * the outcome of a step is stored in the record (`out`) before anything else is
--     called, and what it leads to is done by `settle`, again after an interruption;
--   * the changes that publish an outcome are made last, without a call or an
--     allocation: every field of the state and of a record exists from the start (false
--     when unset; setting an existing field does not allocate) and the queue's next slot
--     is made (`reserve`) before the step.

local function state(w)
    local st = H.state(w)
    if st.live == nil then
        -- (`live` last: an initialisation cut short by an error is done again)
        st.tasks = {} -- records, in spawn order
        st.q, st.qh, st.qt = {}, 1, 0 -- runnable records, FIFO
        st.current = false -- the record whose task runs
        st.live = 0 -- tasks not done nor failed
    end
    return st
end

-- Makes the queue's next slot (the allocation), which a requeue then fills without one.
local function reserve(st)
    local slot = st.qt + 1
    if st.q[slot] == nil then
        st.q[slot] = false
    end
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

-- A task's status as its view shows it (the running task's record says it is queued).
-- `st[1]` is true while a run is under way (set and cleared by world:run, in sim.rs).
local function status_of(rec)
    local st = rec.st
    if st[1] and st.current == rec then
        return 'running'
    end
    return rec.status
end

local function view(rec)
    return setmetatable({}, {
        __index = function(_, k)
            if k == 'name' then
                return rec.name
            elseif k == 'host' then
                return rec.host
            elseif k == 'status' then
                return status_of(rec)
            elseif k == 'results' then
                return copy(rec.results)
            elseif k == 'error' then
                if rec.status == 'failed' then
                    return rec.err
                end
                return nil
            elseif k == 'waits' then
                return rec.status == 'waiting' and waits_text(rec) or nil
            end
        end,
        __newindex = function()
            error('llsocket.sim: a task object is read-only', 2)
        end,
        __tostring = function()
            return format('llsocket.sim.task: "%s" on host %s, %s', rec.name, rec.host, status_of(rec))
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
        st = st,
        status = 'ready', -- ready (queued), waiting, done or failed; its view says running
        rw = pack(...), -- the values it is resumed with: rw[rw0], ..., rw[rw.n]
        rw0 = 1,
        co = false,
        view = false,
        -- the outcome of its last step, until `settle` has done what it leads to
        out = false,
        oa = false,
        ob = false,
        oc = false,
        -- a park (see `settle`): a parked call, made again until it completes
        deadline = false,
        what = false,
        fd = false,
        whost = false,
        base = false, -- what the parked call moved before it waited (bytes or a count)
        fn = false,
        args = false, -- the park table (task.rs): its values from 7 on are the arguments
        epoch = false,
        -- the end
        finished = false,
        results = false,
        err = false,
    }
    -- (a Lua function first: 5.1 cannot make a coroutine of a C function; the task keeps
    -- its own results: see above)
    rec.co = create(function(...)
        local results = pack(fn(...))
        rec.results = results
        rec.finished = true
    end)
    threads[rec.co] = { rec.name, H.key(w) }
    rec.view = view(rec)
    reserve(st)
    st.tasks[n] = rec
    -- (from here on nothing allocates and nothing is called)
    local slot = st.qt + 1
    st.q[slot] = rec
    st.qt = slot
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
-- the seed, with the task's traceback. (The record says failed already.)
local function failed(w, rec)
    local text = tostring(rec.err)
    if text:find('attempt to yield across', 1, true) then
        text = text .. ' (a task waits by yielding its coroutine: never across a C function that cannot'
            .. ' yield, such as a table.sort or string.gsub callback; on Lua 5.1 neither across pcall'
            .. ' (use sim.pcall), a metamethod nor the iterator of a for loop)'
    end
    local tb = traceback and traceback(rec.co, text) or text
    error(report(w, format('task "%s" on host %s failed', rec.name, rec.host), tb), 0)
end

-- What a completed call returns (r = pack(results...)), with the part `base` it moved
-- before it waited added: a table and the index of the first value.
local function merged(base, r)
    if not base then
        return r, 1
    end
    local first = r[1]
    if type(base) == 'number' then
        if r.n >= 1 and type(first) == 'number' then
            local res = { n = r.n, unpack(r, 1, r.n) }
            res[1] = base + first
            return res, 1
        end
        -- the rest failed or timed out: what was sent, as a partial send
        return { n = 3, base, nil, true }, 1
    end
    if r.n >= 1 and type(first) == 'string' then
        local res = { n = r.n, unpack(r, 1, r.n) }
        res[1] = base .. first
        return res, 1
    end
    -- end of stream, an error or a timeout after some bytes: those bytes
    return { n = 1, base }, 1
end

-- What the park table `p` (deadline, what, fd, host, moved, fn, args...) makes of what the
-- call moved so far.
local function moved_so_far(base, p)
    local moved = p[5]
    if moved == nil then
        return base
    elseif not base then
        return moved
    elseif type(base) == 'number' then
        return base + moved
    end
    return base .. moved
end

-- A parked call made again: 'parked' and the new park table and moved part, or 'done'
-- and what the task is resumed with. Run protected: an error is the task's.
local function again(w, rec)
    local p = rec.args
    h_retry_begin(w, rec.deadline or false)
    local r = pack(rec.fn(unpack(p, 7, p.n)))
    h_retry_end(w)
    if r[1] == TOKEN then
        return 'parked', r[2], moved_so_far(rec.base, r[2])
    end
    return 'done', merged(rec.base, r)
end

-- Does what the outcome of the record's last step leads to; records it last, without a
-- call or an allocation. Returns whether the task did more than yield of its own accord
-- (for a step) or whether its parked call completed (for a call made again).
-- Outcomes: of a step of its coroutine (the record first in the queue): 'error' (oa the
-- error), 'done', 'parked' (oa the park), 'yielded'; of a parked call made again (the
-- record waiting): 'error', 'parked' (oa the park, ob the moved part), 'woke' (oa, ob what
-- it is resumed with).
local function settle(w, st, rec)
    local out, queued = rec.out, rec.status ~= 'waiting'
    local epoch
    if out == 'parked' then
        epoch = h_changes(w, rec.oa[4])
    elseif out == 'yielded' or out == 'woke' then
        reserve(st)
    end
    -- (from here on, until the report of a failed task, nothing allocates and nothing is
    -- called)
    if queued then
        st.q[st.qh] = nil
        st.qh = st.qh + 1
        rec.rw, rec.rw0 = false, false
    end
    local oa, ob = rec.oa, rec.ob
    rec.out, rec.oa, rec.ob = false, false, false
    if out == 'error' then
        rec.err = oa
        rec.status = 'failed'
        rec.fn, rec.args = false, false
        st.live = st.live - 1
        threads[rec.co] = nil
        failed(w, rec)
    elseif out == 'done' then
        rec.status = 'done'
        st.live = st.live - 1
        threads[rec.co] = nil
        return true
    elseif out == 'parked' then
        local p = oa
        rec.deadline = p[1] or false
        rec.what, rec.fd, rec.whost = p[2], p[3], p[4]
        if queued then
            rec.base = p[5] or false
        else
            rec.base = ob
        end
        rec.fn = p[6]
        rec.args = p
        rec.epoch = epoch
        rec.status = 'waiting'
        -- (a step that waits did something; a parked call that waits again did not)
        return queued
    elseif out == 'woke' then
        rec.fn, rec.args, rec.base = false, false, false
        rec.rw, rec.rw0 = oa, ob
    end
    -- yielded, or woke: queued again
    local slot = st.qt + 1
    st.q[slot] = rec
    st.qt = slot
    rec.status = 'ready'
    return out == 'woke'
end

-- Resumes every task queued when the round starts. Returns whether any of them did more
-- than yield of its own accord (a task that does is queued again, after the others).
local function round(w, st)
    local progressed = false
    local last = st.qt
    while st.qh <= last do
        local rec = st.q[st.qh]
        if not rec.out then
            h_turn(w)
            local rw, rw0 = rec.rw or NOTHING, rec.rw0 or 1
            st.current = rec
            local ok, a, b = resume(rec.co, unpack(rw, rw0, rw.n))
            -- (recorded before anything else is called)
            st.current = false
            if not ok then
                rec.out, rec.oa = 'error', a
            elseif rec.finished then
                rec.out = 'done'
            elseif a == TOKEN then
                rec.out, rec.oa = 'parked', b
            else
                rec.out = 'yielded'
            end
        end
        if settle(w, st, rec) then
            progressed = true
        end
    end
    return progressed
end

-- Calls a waiting task's parked call again; true when it completed (the task is queued
-- with its results).
local function retry(w, st, rec)
    if not rec.out then
        local ok, what, a, b = pcall(again, w, rec)
        -- (recorded before anything else is called)
        if not ok then
            rec.out, rec.oa = 'error', what
        elseif what == 'parked' then
            rec.out, rec.oa, rec.ob = 'parked', a, b
        else
            rec.out, rec.oa, rec.ob = 'woke', a, b
        end
    end
    return settle(w, st, rec)
end

-- The calls whose wait ends only when their socket has something to read (or an error,
-- an end, a pending connection): `H.may_read` tells when one would surely park again.
local READS = {
    recv = true, recvfrom = true, read = true, recvmsg = true, recvfd = true, readv = true,
    accept = true, acceptfd = true,
}

-- Looks at the waiting tasks in spawn order: each whose wait may have ended (something
-- changed on the host of its call, or its deadline passed) calls again. A receive whose
-- socket has still nothing to read is not made again: it takes the host's new change
-- count and is looked at again at the host's next change (a parked call made again
-- that parks again is not traced, so this changes no trace).
local function wake(w, st)
    local woke = false
    local now = h_now(w)
    local tasks = st.tasks
    for i = 1, #tasks do
        local rec = tasks[i]
        if rec.status == 'waiting' then
            local d = rec.deadline
            local again = rec.out or (d and d <= now)
            if not again then
                local epoch = h_changes(w, rec.whost)
                if epoch ~= rec.epoch then
                    if READS[rec.what] and not h_may_read(w, rec.whost, rec.fd) then
                        rec.epoch = epoch
                    else
                        again = true
                    end
                end
            end
            if again and retry(w, st, rec) then
                woke = true
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

-- (called by world:run, protected, in task mode, with st[1] set; see the top)
function M.run(w, limit)
    return loop(w, state(w), limit)
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
