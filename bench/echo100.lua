-- echo100.lua: a TCP echo with 100 clients, on the kernel and on the simulator.
--
--   lua5.4 bench/echo100.lua [--smoke] [--reps N] [--clients N] [--rounds N] [--only ROW]
--   (LUA_CPATH pointing at a release llsocket.so, see BENCHMARKS.md)
--
-- The program (`echo` below) is written once, as an ordinary llsocket program over a
-- module table: one non-blocking listener on 127.0.0.1, 100 non-blocking clients that
-- connect to it, and rounds in lockstep: every client sends a 32-byte message, the
-- server side reads each connection and sends the bytes back, every client reads its
-- reply and checks it. A call that finds nothing waits with recvable/sendable(1000). It
-- runs, in this process and interpreter, on:
--
--   kernel          require('llsocket'): the real loopback
--   sim             a simulated host (llsocket.sim), trace kept (the default)
--   sim, trace off  the same with sim.new{trace = false} (digest only)
--   sim, one task   the same program as the one task of world:run (trace kept)
--
-- and, for the cost of tasks, one program that only the simulator can run in one
-- process (`tasks` below): a server task that accepts the 100 clients and serves each in
-- a task of its own, and 100 client tasks on 100 hosts, all blocking code.
--
-- Figures: connections per second (the set-up: connect, accept, both ends ready) and
-- round trips per second (one round trip = send, recv, send, recv of 32 bytes). Time is
-- process CPU time (os.clock): everything runs in this process and nothing waits (the
-- loopback delivers inside the send), and CPU time is steadier than wall time on a
-- shared machine. Each figure is the median of --reps repetitions (default 5); every
-- echoed message is compared with what was sent, and a wrong byte stops the script.
local SMOKE, REPS, N, ROUNDS, ONLY = false, 5, 100, 200, nil
do
    local i = 1
    while arg and arg[i] do
        local a = arg[i]
        if a == '--smoke' then
            SMOKE, REPS, N, ROUNDS = true, 1, 10, 3
        elseif a == '--only' then
            i = i + 1
            ONLY = tonumber(arg[i])
        elseif a == '--reps' or a == '--clients' or a == '--rounds' then
            i = i + 1
            local v = math.floor(assert(tonumber(arg[i]), a .. ' needs a number'))
            if a == '--reps' then
                REPS = v
            elseif a == '--clients' then
                N = v
            else
                ROUNDS = v
            end
        else
            error('unknown argument ' .. a .. ' (use --smoke, --reps N, --clients N, --rounds N, --only ROW)')
        end
        i = i + 1
    end
end
local MSG = 32

local llsocket = require('llsocket')
local sim = require('llsocket.sim')

local function check(cond, msg)
    if not cond then
        error('echo100: ' .. tostring(msg), 2)
    end
    return cond
end

-- Client i's message (the same every round: the rounds are in lockstep).
local function message(i)
    return ('%-32s'):format(('message of client %d'):format(i)):sub(1, MSG)
end

-- ---------------------------------------------------------------------------------
-- the program, written once

-- Sends all of `msg` (waiting with sendable when the buffer is full).
local function send_all(s, msg)
    local n, err, again = s:send(msg)
    local off = 0
    while true do
        check(n, err)
        off = off + n
        if off >= #msg then
            return
        end
        if again then
            check(s:sendable(1000), 'send: no progress for a second')
        end
        n, err, again = s:send(msg:sub(off + 1))
    end
end

-- Receives exactly `len` bytes (waiting with recvable when nothing is there).
local function recv_n(s, len)
    local m = s:recv(len)
    if m and #m == len then
        return m
    end
    local got = ''
    while #got < len do
        local m, err, again = s:recv(len - #got)
        if m then
            got = got .. m
        elseif again then
            check(s:recvable(1000), 'recv: nothing for a second')
        else
            check(false, err or 'unexpected end of stream')
        end
    end
    return got
end

-- The echo over the module table `ll`: returns the CPU seconds of the set-up and of the
-- rounds.
local function echo(ll, n, rounds)
    local S, A = ll.socket, ll.addrinfo
    local l = check(S.new(ll.AF_INET, ll.SOCK_STREAM, 0, true))
    l:reuseaddr(true)
    check(l:bind(A.inet('127.0.0.1', 0)))
    check(l:listen(n + 16))
    local addr = l:getsockname()
    local t0 = os.clock()
    local clients, servers = {}, {}
    for i = 1, n do
        local c = check(S.new(ll.AF_INET, ll.SOCK_STREAM, 0, true))
        local ok, err = c:connect(addr)
        check(ok, err)
        clients[i] = c
    end
    for i = 1, n do
        local s = l:accept()
        while not s do
            check(l:recvable(1000), 'accept: nothing for a second')
            s = l:accept()
        end
        servers[i] = s
    end
    for i = 1, n do
        check(clients[i]:sendable(1000), 'connect: not connected after a second')
    end
    local msgs = {}
    for i = 1, n do
        msgs[i] = message(i)
    end
    local t1 = os.clock()
    for _ = 1, rounds do
        for i = 1, n do
            send_all(clients[i], msgs[i])
        end
        for i = 1, n do
            local s = servers[i]
            send_all(s, recv_n(s, MSG))
        end
        for i = 1, n do
            check(recv_n(clients[i], MSG) == msgs[i], 'wrong echo')
        end
    end
    local t2 = os.clock()
    for i = 1, n do
        clients[i]:close()
        servers[i]:close()
    end
    l:close()
    return t1 - t0, t2 - t1
end

-- ---------------------------------------------------------------------------------
-- the task version (simulator only): blocking code, one task per client and per session

local function tasks(seed, n, rounds)
    local w = sim.new({ seed = seed })
    local srv = w:host('server')
    local hosts = {}
    for i = 1, n do
        hosts[i] = w:host('c' .. i)
    end
    local t0 = os.clock()
    w:spawn(srv, 'server', function()
        local l = check(srv.socket.new(srv.AF_INET, srv.SOCK_STREAM))
        check(l:bind(srv.addrinfo.inet(srv.ipv4, 7)))
        check(l:listen(n + 16))
        for i = 1, n do
            local c = check(l:accept())
            w:spawn(srv, 'session-' .. i, function()
                for _ = 1, rounds do
                    local m = ''
                    while #m < MSG do
                        m = m .. check(c:recv(MSG - #m), 'session: end of stream')
                    end
                    check(c:send(m) == MSG, 'session send')
                end
                c:close()
            end)
        end
        l:close()
    end)
    for i, h in ipairs(hosts) do
        w:spawn(h, 'client-' .. i, function()
            local c = check(h.socket.new(h.AF_INET, h.SOCK_STREAM))
            check(c:connect(h.addrinfo.inet(srv.ipv4, 7)))
            local msg = message(i)
            for _ = 1, rounds do
                check(c:send(msg) == MSG, 'client send')
                local m = ''
                while #m < MSG do
                    m = m .. check(c:recv(MSG - #m), 'client: end of stream')
                end
                check(m == msg, 'wrong echo')
            end
            c:close()
        end)
    end
    check(w:run(), 'every task returned')
    local secs = os.clock() - t0
    w:close()
    return secs
end

-- ---------------------------------------------------------------------------------

local function median(t)
    local s = {}
    for i = 1, #t do
        s[i] = t[i]
    end
    table.sort(s)
    local k = #s
    if k == 0 then
        return 0 / 0
    end
    if k % 2 == 1 then
        return s[(k + 1) / 2]
    end
    return (s[k / 2] + s[k / 2 + 1]) / 2
end

local rows = { 'kernel', 'sim', 'sim, trace off', 'sim, one task', 'sim, 201 tasks (blocking)' }
local setup, rtt = {}, {}
for _, r in ipairs(rows) do
    setup[r], rtt[r] = {}, {}
end

local function world(seed, trace)
    local w = sim.new({ seed = seed, trace = trace })
    return w, w:host('bench')
end

for rep = 1, REPS do
    -- the implementations take turns, in a rotating order
    local runs = {
        function()
            local a, b = echo(llsocket, N, ROUNDS)
            setup.kernel[rep], rtt.kernel[rep] = a, b
        end,
        function()
            local w, h = world(rep, true)
            local a, b = echo(h, N, ROUNDS)
            setup.sim[rep], rtt.sim[rep] = a, b
            w:close()
        end,
        function()
            local w, h = world(rep, false)
            local a, b = echo(h, N, ROUNDS)
            setup['sim, trace off'][rep], rtt['sim, trace off'][rep] = a, b
            w:close()
        end,
        function()
            local w, h = world(rep, true)
            local task = w:spawn(h, 'echo', echo, h, N, ROUNDS)
            check(w:run(), 'the task returned')
            setup['sim, one task'][rep], rtt['sim, one task'][rep] = task.results[1], task.results[2]
            w:close()
        end,
        function()
            -- set-up alone, then set-up and rounds: the rounds are the difference
            local a = tasks(rep, N, 0)
            local b = tasks(rep, N, ROUNDS)
            setup['sim, 201 tasks (blocking)'][rep], rtt['sim, 201 tasks (blocking)'][rep] = a, b - a
        end,
    }
    for k = 0, #runs - 1 do
        local which = (rep + k - 1) % #runs + 1
        if not ONLY or ONLY == which then
            runs[which]()
            collectgarbage()
        end
    end
end

local interp = (rawget(_G, 'jit') and jit.version) or _VERSION
print(('echo100: %s, %d clients, %d rounds of %d-byte messages, median of %d'):format(interp, N, ROUNDS, MSG,
    REPS))
print('')
print('| program | connections/s | round trips/s | round trip | kernel / this |')
print('|---|---|---|---|---|')
local kernel_rtt = median(rtt.kernel) / (N * ROUNDS)
for k, r in ipairs(rows) do
    local s, e = median(setup[r]), median(rtt[r])
    local per = e / (N * ROUNDS)
    print(('| %s | %.0f | %.0f | %.2f us | %s |'):format(r, N / s, N * ROUNDS / e, per * 1e6,
        r == 'kernel' and '1' or ('%.1fx'):format(kernel_rtt / per)))
end
if SMOKE then
    print('(smoke run: tiny counts, timing not meaningful)')
end
