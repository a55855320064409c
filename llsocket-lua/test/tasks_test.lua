-- llsocket.sim tasks: world:spawn, world:run, world:tasks, sim.pcall. Several programs
-- run at once on one world, each written as ordinary blocking or non-blocking llsocket
-- code; a call that would wait suspends only its task.
local t = ...
local sim = require('llsocket.sim')

local unpack = table.unpack or unpack
local lua51 = _VERSION == 'Lua 5.1' and not rawget(_G, 'jit')

local function world(seed, opts)
    opts = opts or {}
    opts.seed = seed
    return sim.new(opts)
end

-- A listening TCP socket of host `h` on its own address.
local function listener(h, port)
    local l = assert(h.socket.new(h.AF_INET, h.SOCK_STREAM))
    l:reuseaddr(true)
    assert(l:bind(h.addrinfo.inet(h.ipv4, port)))
    assert(l:listen())
    return l
end

-- Blocking echo: a server task that accepts `n` clients and serves each in a task of
-- its own, and `n` client tasks, each on a host of its own, that send `rounds` messages
-- and check every reply. Returns the world, the server host and the client hosts.
local function echo_world(seed, n, rounds, link)
    local w = world(seed)
    local s = w:host('server')
    local clients = {}
    for i = 1, n do
        clients[i] = w:host('c' .. i)
        if link then
            w:link(clients[i], s, link)
        end
    end
    w:spawn(s, 'server', function()
        local l = listener(s, 7)
        for i = 1, n do
            local c = assert(l:accept())
            w:spawn(s, 'handler-' .. i, function()
                local served = 0
                while true do
                    local m = c:recv()
                    if not m then
                        break
                    end
                    assert(c:send(m) == #m)
                    served = served + #m
                end
                c:close()
                return served
            end)
        end
        l:close()
        return 'accepted ' .. n
    end)
    for i, h in ipairs(clients) do
        w:spawn(h, 'client-' .. i, function()
            local c = assert(h.socket.new(h.AF_INET, h.SOCK_STREAM))
            assert(c:connect(h.addrinfo.inet(s.ipv4, 7)))
            for k = 1, rounds do
                local msg = ('message %d of client %d'):format(k, i)
                assert(c:send(msg) == #msg)
                local got = ''
                while #got < #msg do
                    got = got .. assert(c:recv())
                end
                assert(got == msg, got)
            end
            c:close()
            return i, w:now()
        end, i)
    end
    return w, s, clients
end

t.case('echo: a server task and clients on other hosts, written as blocking code', function()
    local w, s, clients = echo_world(1, 5, 20)
    t.is_true(w:run())
    local tasks = w:tasks()
    t.eq(#tasks, 11)
    t.eq(tasks[1].name, 'server')
    t.eq(tasks[1].host, 'server')
    t.deq(tasks[1].results, { n = 1, 'accepted 5' })
    for i = 1, 5 do
        local c = tasks[1 + i]
        t.eq(c.name, 'client-' .. i)
        t.eq(c.host, 'c' .. i)
        t.eq(c.status, 'done')
        t.eq(c.results[1], i)
        t.eq(c.results[2], 0, 'fault-free default links deliver at once')
    end
    for i = 7, 11 do
        t.eq(tasks[i].status, 'done')
        t.ok(tasks[i].results[1] > 0)
    end
    -- everything closed: no descriptor left on any host
    t.deq(w:open_fds(s), {})
    for _, h in ipairs(clients) do
        t.deq(w:open_fds(h), {})
    end
end)

t.case('echo over links with latency, loss, duplication and reordering', function()
    local link = { latency = { 1, 30 }, loss = 0.2, duplicate = 0.1, reorder = 0.1 }
    local w = echo_world(2, 4, 10, link)
    t.is_true(w:run())
    local last = 0
    for _, task in ipairs(w:tasks()) do
        t.eq(task.status, 'done', task.name)
        if task.name:find('^client') then
            last = math.max(last, task.results[2])
        end
    end
    -- every round trip takes virtual time: at least 10 of at least 2 ms, with retransmissions
    t.ok(last >= 20, 'virtual time used: ' .. last)
    t.ok(w:now() >= last)
    t.has(table.concat(w:trace(), '\n'), ' lost ')
end)

t.case('determinism: the same seed gives the same digest; pinned on every interpreter', function()
    local link = { latency = { 1, 30 }, loss = 0.2, duplicate = 0.1, reorder = 0.1 }
    local function run(seed)
        local w = echo_world(seed, 3, 5, link)
        assert(w:run())
        return w:digest(), w:now()
    end
    local d1, n1 = run(3)
    local d2, n2 = run(3)
    t.eq(d1, d2)
    t.eq(n1, n2)
    t.ne(run(4), d1)
    -- the scheduler's order does not depend on the interpreter: Lua 5.1 to 5.4 and LuaJIT
    -- all give this digest
    t.eq(d1, '484c71472f44598e')
    -- check_determinism runs task scenarios too
    local r, digest = sim.check_determinism({ seed = 3 }, function(w2)
        local a, b = w2:host('a'), w2:host('b')
        w2:link(a, b, link)
        local l = listener(b, 9)
        w2:spawn(b, 'server', function()
            local c = assert(l:accept())
            local m = c:recv()
            c:close()
            l:close()
            return m
        end)
        w2:spawn(a, 'client', function()
            local c = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM))
            assert(c:connect(a.addrinfo.inet(b.ipv4, 9)))
            c:send('hi')
            c:close()
        end)
        assert(w2:run())
        return w2:tasks()[1].results[1]
    end)
    t.eq(r, 'hi')
    t.match(digest, '^%x+$')
end)

t.case('one task gives the same trace as the same program without tasks (faults and timeouts too)', function()
    local function program(w, a, b)
        w:link(a, b, { latency = { 1, 20 }, loss = 0.3, duplicate = 0.1, reorder = 0.1 })
        w:faults(b, { eintr = 0.2, short_io = 0.3 })
        w:faults(a, { short_io = 0.3, reset = 0.002 })
        local l = listener(b, 80)
        local c = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM))
        assert(c:connect(a.addrinfo.inet(b.ipv4, 80)))
        local s
        repeat
            s = l:accept()
        until s
        local out = {}
        for i = 1, 15 do
            local n, err = c:send(('x'):rep(3000 + i))
            if not n then
                out[#out + 1] = tostring(err)
                break
            end
            local got = 0
            while got < n do
                local m, e, again = s:recv(100000)
                if m then
                    got = got + #m
                elseif not again then
                    error(tostring(e))
                end
            end
            out[#out + 1] = got
            s:rcvtimeo(0.05)
            local _, _, again = s:recv()
            out[#out + 1] = tostring(again)
            out[#out + 1] = tostring(s:recvable(30))
        end
        c:close()
        s:close()
        l:close()
        return table.concat(out, ',')
    end
    for seed = 1, 4 do
        local w1 = world(seed)
        local r1 = program(w1, w1:host('a'), w1:host('b'))
        local w2 = world(seed)
        local a, b = w2:host('a'), w2:host('b')
        local task = w2:spawn(a, 'only', program, w2, a, b)
        t.is_true(w2:run())
        t.eq(task.results[1], r1)
        t.eq(w2:now(), w1:now())
        t.eq(w2:digest(), w1:digest(), 'seed ' .. seed)
    end
end)

t.case('timeouts run on the virtual clock as without tasks, while the others run', function()
    local w = world(5)
    local a = w:host('a')
    local log = {}
    local p = assert(a.socket.pair(a.SOCK_STREAM))
    local function note(what, r)
        log[#log + 1] = { what, w:now(), r }
    end
    w:spawn(a, 'poller', function()
        note('recvable', t.pack(p[1]:recvable(150)))
        assert(p[1]:rcvtimeo(0.25))
        note('recv', t.pack(p[1]:recv()))
        note('data', t.pack(p[1]:recv()))
    end)
    w:spawn(a, 'ticker', function()
        local q = assert(a.socket.pair(a.SOCK_DGRAM))
        for _ = 1, 5 do
            q[1]:recvable(100)
            note('tick')
        end
        p[2]:send('late')
        q[1]:close()
        q[2]:close()
    end)
    t.is_true(w:run())
    local seq = {}
    for i, e in ipairs(log) do
        seq[i] = e[1] .. '@' .. string.format('%g', e[2])
    end
    t.eq(table.concat(seq, ' '), 'tick@100 recvable@150 tick@200 tick@300 recv@400 tick@400 tick@500 data@500')
    t.deq(log[2][3], { n = 3, false, nil, true })
    t.deq(log[5][3], { n = 3, nil, nil, true })
    t.deq(log[8][3], { n = 1, 'late' })
    p[1]:close()
    p[2]:close()
    -- SO_SNDTIMEO: a send that fills the peer's buffer and waits returns what it sent when
    -- the timeout passes, as without tasks
    local w2 = world(5)
    local h = w2:host('h')
    local q = assert(h.socket.pair(h.SOCK_STREAM))
    local task = w2:spawn(h, 'writer', function()
        assert(q[1]:sndtimeo(0.12))
        local t0 = w2:now()
        local r = t.pack(q[1]:send(('z'):rep(1000000)))
        return r, w2:now() - t0
    end)
    t.is_true(w2:run())
    local r, took = task.results[1], task.results[2]
    t.eq(took, 120)
    t.eq(r.n, 3)
    t.ok(r[1] > 0 and r[1] < 1000000, 'a partial send: ' .. tostring(r[1]))
    t.is_nil(r[2])
    t.is_true(r[3])
    q[1]:close()
    q[2]:close()
end)

t.case('non-blocking code: a poll-loop server and clients waiting with recvable/sendable', function()
    local w = world(6)
    local s = w:host('s')
    local hosts = { w:host('x'), w:host('y'), w:host('z') }
    for _, h in ipairs(hosts) do
        w:link(h, s, { latency = { 2, 9 }, loss = 0.1 })
    end
    w:spawn(s, 'server', function()
        local l = assert(s.socket.new(s.AF_INET, s.SOCK_STREAM, 0, true))
        assert(l:bind(s.addrinfo.inet(s.ipv4, 8)))
        assert(l:listen())
        local conns, done, waits = {}, 0, 0
        while done < #hosts do
            local c = l:accept()
            if c then
                conns[#conns + 1] = c
            end
            local idle = true
            for i, c in pairs(conns) do
                local m, err, again = c:recv()
                if m then
                    idle = false
                    assert(c:send(m:upper()))
                elseif not again then
                    assert(not err, tostring(err))
                    c:close()
                    conns[i] = nil
                    done = done + 1
                end
            end
            if idle then
                -- nothing to do: wait a little on the listener (a new client) ...
                l:recvable(5)
                waits = waits + 1
            end
        end
        l:close()
        return waits
    end)
    for i, h in ipairs(hosts) do
        w:spawn(h, 'client-' .. i, function()
            local c = assert(h.socket.new(h.AF_INET, h.SOCK_STREAM, 0, true))
            local ok, err = c:connect(h.addrinfo.inet(s.ipv4, 8))
            assert(ok, tostring(err))
            assert(c:sendable(1000), 'connected within a second')
            assert(c:error() == nil)
            local replies = {}
            for k = 1, 4 do
                assert(c:send('hello ' .. k) > 0)
                local got
                repeat
                    got = c:recv()
                    if not got then
                        assert(c:recvable(1000), 'a reply within a second')
                    end
                until got
                replies[k] = got
            end
            c:close()
            return table.concat(replies, ',')
        end)
    end
    t.is_true(w:run())
    local tasks = w:tasks()
    t.ok(tasks[1].results[1] > 0, 'the server waited')
    for i = 2, 4 do
        t.eq(tasks[i].results[1], 'HELLO 1,HELLO 2,HELLO 3,HELLO 4')
    end
end)

t.case('large sends and MSG_WAITALL receives move everything, as without tasks', function()
    local w = world(7, { sndbuf = 4096, rcvbuf = 4096 })
    local a, b = w:host('a'), w:host('b')
    w:link(a, b, { latency = 1 })
    local big = ('0123456789'):rep(10000)
    local l = listener(b, 80)
    w:spawn(b, 'receiver', function()
        local c = assert(l:accept())
        local head = c:recv(20, b.MSG_WAITALL)
        local parts, n = { head }, #head
        while true do
            local m = c:recv(65536)
            if not m then
                break
            end
            parts[#parts + 1] = m
            n = n + #m
        end
        c:close()
        l:close()
        return table.concat(parts) == big, n, head
    end)
    w:spawn(a, 'sender', function()
        local c = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM))
        assert(c:connect(a.addrinfo.inet(b.ipv4, 80)))
        for i = 1, 4 do
            -- the receiver's MSG_WAITALL waits for all four pieces
            assert(c:send(big:sub(5 * i - 4, 5 * i)) == 5)
            c:recvable(10)
        end
        local r = t.pack(c:send(big:sub(21)))
        c:close()
        return r
    end)
    t.is_true(w:run())
    local recv, send = w:tasks()[1], w:tasks()[2]
    t.deq(recv.results, { n = 3, true, 100000, '01234567890123456789' })
    t.deq(send.results[1], { n = 3, 99980, nil, false })
end)

t.case('a waiting receive wakes on its own socket: data under SO_RCVLOWAT, end of stream, reset, a connection', function()
    -- (the scheduler makes a parked receive or accept again only when its socket may have
    -- something: each of these ends such a wait one link latency, 1 ms, after its cause;
    -- the client then waits 50 ms, so a wake that came only with a later change is seen)
    local w = world(9)
    local a, b = w:host('a'), w:host('b')
    w:link(a, b, { latency = 1 })
    local l = listener(b, 80)
    local woke, caused = {}, {}
    w:spawn(b, 'server', function()
        local conns = {}
        for i = 1, 3 do
            conns[i] = assert(l:accept())
            woke[#woke + 1] = { 'accept ' .. i, w:now() }
        end
        -- a recv of 10 bytes returns once 10 are there, whatever SO_RCVLOWAT (100) says
        conns[1]:rcvlowat(100)
        woke[#woke + 1] = { 'small ' .. tostring(conns[1]:recv(10)), w:now() }
        woke[#woke + 1] = { 'eof ' .. t.pack(conns[2]:recv()).n, w:now() }
        local r, err = conns[3]:recv()
        woke[#woke + 1] = { 'reset ' .. tostring(r) .. ' ' .. tostring(err and err.type and err.type.name), w:now() }
        return true
    end)
    w:spawn(a, 'client', function()
        local function pause()
            local u = assert(a.socket.new(a.AF_INET, a.SOCK_DGRAM))
            u:recvable(50)
            u:close()
        end
        local c = {}
        for i = 1, 3 do
            pause()
            c[i] = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM, 0, true))
            c[i]:connect(a.addrinfo.inet(b.ipv4, 80))
            caused[#caused + 1] = w:now()
        end
        pause()
        assert(c[1]:send('0123456789abcdefghij') == 20) -- 20 bytes: under SO_RCVLOWAT
        caused[#caused + 1] = w:now()
        pause()
        c[2]:close()
        caused[#caused + 1] = w:now()
        pause()
        c[3]:linger(0)
        c[3]:close() -- with SO_LINGER 0: a reset
        caused[#caused + 1] = w:now()
        pause()
        c[1]:close()
        return true
    end)
    t.is_true(w:run())
    local names = {}
    for i, x in ipairs(woke) do
        names[i] = x[1]
        local late = x[2] - caused[i]
        t.ok(late >= 0 and late <= 2, x[1] .. ' returned ' .. late .. ' ms after its cause')
    end
    t.deq(names, { 'accept 1', 'accept 2', 'accept 3', 'small 0123456789', 'eof 0', 'reset nil ECONNRESET' })
end)

t.case("an iovec's writev and readv of a blocking socket wait in a task", function()
    local w = world(8, { sndbuf = 4096, rcvbuf = 4096 })
    local a, b = w:host('a'), w:host('b')
    w:link(a, b, { latency = 1 })
    local l = listener(b, 80)
    local chunk = ('abcdefgh'):rep(1250) -- 10 000 bytes, 3 elements: 30 000
    w:spawn(b, 'reader', function()
        local c = assert(l:accept())
        local iov = b.iovec.new()
        assert(iov:addn(40000))
        -- nothing is sent before virtual time 20: the first readv waits for it
        local got, first_at = 0, nil
        while true do
            local n, err, again = iov:readv(c:fd(), got)
            assert(not err and not again, 'a blocking readv in a task returned again')
            if not n then
                break -- the end of the stream
            end
            first_at = first_at or w:now()
            got = got + n
        end
        c:close()
        l:close()
        return got, first_at, iov:concat():sub(1, got) == chunk:rep(3)
    end)
    w:spawn(a, 'writer', function()
        local c = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM))
        assert(c:connect(a.addrinfo.inet(b.ipv4, 80)))
        c:recvable(20) -- (waits 20 ms: nothing comes)
        local iov = a.iovec.new()
        for _ = 1, 3 do
            iov:add(chunk)
        end
        -- 30 000 bytes through 4 KiB buffers: writev waits for room, then returns what it
        -- wrote (again = true when that is not everything); no call returns 0
        local sent, calls = 0, 0
        while sent < 30000 do
            local n, err, again = iov:writev(c:fd(), sent)
            calls = calls + 1
            assert(n and n > 0 and not err, 'writev wrote nothing')
            sent = sent + n
            assert(again == (sent < 30000))
        end
        c:close()
        return sent, calls
    end)
    t.is_true(w:run())
    local reader, writer = w:tasks()[1], w:tasks()[2]
    t.eq(reader.status, 'done')
    t.eq(reader.results[1], 30000)
    t.ok(reader.results[2] >= 20, 'the first readv returned at ' .. tostring(reader.results[2]))
    t.is_true(reader.results[3], 'the bytes read are those written')
    t.eq(writer.results[1], 30000)
    t.ok(writer.results[2] > 1, 'one writev took 30 000 bytes through 4 KiB buffers')
end)

t.case('a task that fails ends the run with the seed, task, host, virtual time and traceback', function()
    local w = world(42)
    local a, b = w:host('alpha'), w:host('beta')
    w:link(a, b, { latency = 25 })
    local l = listener(b, 80)
    local other = w:spawn(b, 'server', function()
        local c = l:accept()
        return c:recv()
    end)
    local function check_reply(c)
        local m = c:recv()
        error('unexpected reply: ' .. tostring(m))
    end
    local bad = w:spawn(a, 'client-3', function()
        local c = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM))
        assert(c:connect(a.addrinfo.inet(b.ipv4, 80)))
        c:rcvtimeo(0.1)
        check_reply(c)
    end)
    local err = t.raises(function() w:run() end, 'task "client%-3" on host alpha failed')
    t.has(err, 'virtual time 0.150000000 s') -- 50 ms to connect, 100 ms receive timeout
    t.has(err, 'seed 42')
    t.has(err, 'unexpected reply: nil')
    t.has(err, 'stack traceback:')
    t.has(err, 'check_reply')
    t.has(err, 'sim.new{seed = 42}')
    t.eq(bad.status, 'failed')
    t.has(tostring(bad.error), 'unexpected reply')
    t.eq(other.status, 'waiting')
    t.eq(other.waits, 'recv(fd=4)')
    l:close()
end)

t.case('a deadlock is reported naming every task and what it waits on, never a hang', function()
    local w = world(9)
    local srv, c1, c2 = w:host('srv'), w:host('c1'), w:host('c2')
    local l = listener(srv, 80)
    w:spawn(srv, 'acceptor', function()
        local conns = { assert(l:accept()), assert(l:accept()) }
        return l:accept() -- a third client never comes
    end)
    for i, h in ipairs({ c1, c2 }) do
        w:spawn(h, 'client-' .. i, function()
            local c = assert(h.socket.new(h.AF_INET, h.SOCK_STREAM))
            assert(c:connect(h.addrinfo.inet(srv.ipv4, 80)))
            return c:recv() -- nobody sends
        end)
    end
    local err = t.raises(function() w:run() end, 'deadlock')
    t.has(err, 'every task waits and nothing is pending')
    t.has(err, 'task "acceptor" on host srv waits in accept(fd=3)')
    t.has(err, 'task "client-1" on host c1 waits in recv(fd=3)')
    t.has(err, 'task "client-2" on host c2 waits in recv(fd=3)')
    t.has(err, 'seed 9')
    -- a task that only yields of its own accord, with nothing pending, too
    local w2 = world(10)
    local h = w2:host('h')
    w2:spawn(h, 'yielder', function()
        while true do
            coroutine.yield()
        end
    end)
    t.raises(function() w2:run() end, 'task "yielder" on host h yields, but nothing it could wait for is pending')
    l:close()
end)

t.case('a task that spins on non-blocking calls is stopped with a report, not a hang', function()
    local w = world(11)
    local h = w:host('h')
    local p = assert(h.socket.pair(h.SOCK_STREAM, 0, true))
    w:spawn(h, 'spinner', function()
        while true do
            local m = p[1]:recv()
            if m then
                return m
            end
        end
    end)
    local err = t.raises(function() w:run() end, 'task "spinner" spins')
    t.has(err, 'the last: recv(fd=3)')
    -- spinning while another task runs in between is fine: coroutine.yield lets it
    local w2 = world(12)
    local h2 = w2:host('h')
    local q = assert(h2.socket.pair(h2.SOCK_STREAM, 0, true))
    w2:spawn(h2, 'poller', function()
        local tries = 0
        while true do
            tries = tries + 1
            local m = q[1]:recv()
            if m then
                return m, tries
            end
            coroutine.yield()
        end
    end)
    w2:spawn(h2, 'sender', function()
        for _ = 1, 3 do
            coroutine.yield()
        end
        q[2]:send('finally')
    end)
    t.is_true(w2:run())
    -- (the sender yields three times, then sends: the poller's fifth try gets it)
    t.deq(w2:tasks()[1].results, { n = 2, 'finally', 5 })
end)

t.case('a virtual deadline ends the run; the next run goes on', function()
    local w = world(13)
    local h = w:host('h')
    local q = assert(h.socket.pair(h.SOCK_DGRAM))
    local task = w:spawn(h, 'sleeper', function()
        for _ = 1, 10 do
            q[1]:recvable(1000)
        end
        return 'woke'
    end)
    t.deq(t.pack(w:run({ deadline = 3500 })), { n = 2, false, 'deadline' })
    t.eq(w:now(), 3500)
    t.eq(task.status, 'waiting')
    t.eq(task.waits, 'recvable(fd=3) until 4.000000000 s')
    -- between runs the world is as without tasks: a plain blocking call runs it
    t.deq(t.pack(q[2]:recvable(100)), { n = 3, false, nil, true })
    t.eq(w:now(), 3600)
    t.is_true(w:run())
    t.eq(w:now(), 10000)
    t.deq(task.results, { n = 1, 'woke' })
    -- a world with no tasks left returns at once
    t.is_true(w:run())
    q[1]:close()
    q[2]:close()
end)

t.case('sim.pcall lets a task wait inside it on every interpreter; pcall on Lua 5.1 says so', function()
    local w = world(14)
    local h = w:host('h')
    local p = assert(h.socket.pair(h.SOCK_STREAM))
    local q = assert(h.socket.pair(h.SOCK_STREAM))
    local r = assert(h.socket.pair(h.SOCK_STREAM))
    w:spawn(h, 'sim.pcall', function()
        return sim.pcall(function(x)
            return q[1]:recv(), x
        end, 'arg')
    end)
    w:spawn(h, 'sim.pcall error', function()
        return sim.pcall(function()
            r[1]:recv()
            error({ code = 7 })
        end)
    end)
    w:spawn(h, 'pcall', function()
        return pcall(p[1].recv, p[1])
    end)
    w:spawn(h, 'sender', function()
        q[2]:send('q')
        r[2]:send('r')
        p[2]:send('p')
    end)
    t.is_true(w:run())
    local tasks = w:tasks()
    t.deq(tasks[1].results, { n = 3, true, 'q', 'arg' })
    t.is_false(tasks[2].results[1])
    t.eq(tasks[2].results[2].code, 7)
    if lua51 then
        -- Lua 5.1 cannot yield across pcall: the call raises (inside the pcall) a message
        -- that says so, and does not wait
        t.is_false(tasks[3].results[1])
        t.has(tasks[3].results[2], 'recv(fd=3) would wait in task "pcall", but Lua 5.1 cannot suspend a task')
        t.has(tasks[3].results[2], 'use sim.pcall instead of pcall')
        t.eq(p[1]:recv(), 'p', 'the data is still there')
    else
        -- Lua 5.2+ and LuaJIT yield across pcall: pcall works as sim.pcall
        t.deq(tasks[3].results, { n = 2, true, 'p' })
    end
    -- outside tasks sim.pcall is pcall
    t.deq(t.pack(sim.pcall(function(a, b) return a + b end, 1, 2)), { n = 2, true, 3 })
    local ok, e = sim.pcall(error, 'x', 0)
    t.is_false(ok)
    t.eq(e, 'x')
    for _, s in ipairs({ p[1], p[2], q[1], q[2], r[1], r[2] }) do
        s:close()
    end
end)

t.case('what an interpreter cannot suspend across raises a clear error (C callbacks; on Lua 5.1 iterators, metamethods)', function()
    local w = world(15)
    local h = w:host('h')
    local p = assert(h.socket.pair(h.SOCK_STREAM))
    local q = assert(h.socket.pair(h.SOCK_STREAM))
    w:spawn(h, 'iterator', function()
        for m in function() return p[1]:recv() end do
            return m
        end
    end)
    w:spawn(h, 'metamethod', function()
        local lazy = setmetatable({}, { __index = function(_, k) return q[1]:recv() .. k end })
        return lazy.x
    end)
    w:spawn(h, 'sender', function()
        p[2]:send('p')
        q[2]:send('q')
    end)
    -- no interpreter suspends a task across a C callback: a clear error on every one
    local w2 = world(15)
    local h2 = w2:host('h')
    local r = assert(h2.socket.pair(h2.SOCK_STREAM))
    w2:spawn(h2, 'sort', function()
        table.sort({ 2, 1 }, function(x, y)
            r[1]:recv()
            return x < y
        end)
    end)
    local err = t.raises(function() w2:run() end, 'task "sort" on host h failed')
    t.ok(err:find('cannot be suspended here', 1, true) -- Lua 5.3, 5.4
        or err:find('Lua 5.1 cannot suspend a task across pcall, xpcall or another C function', 1, true)
        or err:find('never across a C function that cannot yield', 1, true), err) -- 5.2, LuaJIT
    r[1]:close()
    r[2]:close()
    if lua51 then
        -- the first task to fail ends the run; the interpreter's own message, with a hint
        local err = t.raises(function() w:run() end, 'task "iterator" on host h failed')
        t.has(err, 'attempt to yield across metamethod/C-call boundary')
        t.has(err, 'on Lua 5.1 neither across pcall (use sim.pcall), a metamethod nor the iterator of a for loop')
    else
        t.is_true(w:run())
        t.deq(w:tasks()[1].results, { n = 1, 'p' })
        t.deq(w:tasks()[2].results, { n = 1, 'qx' })
    end
    for _, s in ipairs({ p[1], p[2], q[1], q[2] }) do
        s:close()
    end
end)

t.case('only a task can wait: a coroutine a task made itself raises clearly', function()
    local w = world(16)
    local h = w:host('h')
    local p = assert(h.socket.pair(h.SOCK_STREAM))
    w:spawn(h, 'coroutines', function()
        local co = coroutine.wrap(function()
            return p[1]:recv()
        end)
        return co()
    end)
    local err = t.raises(function() w:run() end, 'task "coroutines" on host h failed')
    t.has(err, 'recv(fd=3) would wait, but not in a task of this world\'s run')
    p[1]:close()
    p[2]:close()
end)

t.case('close with SO_LINGER waits in a task for the data to go, or for the linger time', function()
    local w = world(17, { sndbuf = 16384, rcvbuf = 2048 })
    local a, b = w:host('a'), w:host('b')
    w:link(a, b, { latency = 10 })
    local l = listener(b, 80)
    local reader
    w:spawn(b, 'reader', function()
        reader = assert(l:accept())
        -- read nothing for a while: the writer's close lingers
        local timer = assert(b.socket.pair(b.SOCK_DGRAM))
        timer[1]:recvable(300)
        timer[1]:close()
        timer[2]:close()
        local n = 0
        while true do
            local m = reader:recv(65536)
            if not m then
                break
            end
            n = n + #m
        end
        reader:close()
        l:close()
        return n, w:now()
    end)
    w:spawn(a, 'writer', function()
        local c = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM))
        assert(c:connect(a.addrinfo.inet(b.ipv4, 80)))
        assert(c:linger(5))
        local n = 0
        for _ = 1, 3 do
            local sent = c:send(('x'):rep(4000), a.MSG_DONTWAIT)
            n = n + (sent or 0)
        end
        local t0 = w:now()
        assert(c:close())
        return n, w:now() - t0
    end)
    t.is_true(w:run())
    local r, wr = w:tasks()[1].results, w:tasks()[2].results
    t.eq(r[1], wr[1], 'the reader got everything the writer sent')
    t.ok(wr[2] > 200, 'the close lingered until the data went: ' .. wr[2])
    t.ok(wr[2] < 5000)
end)

t.case('task objects are read-only; tasks can spawn tasks; run is not re-entrant', function()
    local w = world(18)
    local h = w:host('h')
    local inner
    local task = w:spawn('h', nil, function(x, y)
        inner = w:spawn(h, 'inner', function() return 'in' end)
        t.raises(function() w:run() end, 'already running its tasks')
        return x + y
    end, 1, 2)
    t.eq(task.name, 'task-1')
    t.eq(task.status, 'ready')
    t.is_nil(task.results)
    t.match(tostring(task), '^llsocket.sim.task: "task%-1" on host h, ready$')
    t.raises(function() task.status = 'done' end, 'read%-only')
    t.is_true(w:run())
    t.eq(task.status, 'done')
    t.deq(task.results, { n = 1, 3 })
    t.eq(inner.status, 'done')
    t.deq(inner.results, { n = 1, 'in' })
    local list = w:tasks()
    t.eq(#list, 2)
    t.eq(list[1], task)
    t.eq(list[2], inner)
    -- results are copies
    task.results[1] = 99
    t.eq(task.results[1], 3)
end)

t.case('bad arguments to spawn and run raise the standard errors; a gone world raises', function()
    local w = world(19)
    local h = w:host('h')
    local f = function() end
    t.argerr(function() w:spawn(3, 'x', f) end, 1, 'host name or host table expected, got number')
    t.argerr(function() w:spawn('nope', 'x', f) end, 1, 'no host "nope" in this world')
    t.argerr(function() w:spawn(world(20):host('h'), 'x', f) end, 1, 'not a host of this world')
    t.argerr(function() w:spawn(h, 5, f) end, 2, 'string expected, got number')
    t.argerr(function() w:spawn(h, 'x') end, 3, 'function expected, got no value')
    t.argerr(function() w:spawn(h, 'x', 'f') end, 3, 'function expected, got string')
    t.argerr(function() w:run(5) end, 1, 'table expected, got number')
    t.argerr(function() w:run({ dead = 1 }) end, 1, 'unknown option "dead"')
    t.argerr(function() w:run({ deadline = 'x' }) end, 1, "field 'deadline': number expected, got string")
    t.argerr(function() w:run({ deadline = -1 }) end, 1, "field 'deadline': milliseconds from 0 to 9.2e12 expected")
    for _, m in ipairs({ 'spawn', 'run', 'tasks' }) do
        t.argerr(function() w[m]('x') end, 1, 'llsocket.sim.world expected, got string', m)
    end
    t.eq(#w:tasks(), 0, 'no task was made by the failed calls')
    -- a gone world
    local task = w:spawn(h, 'late', f)
    w:close()
    t.raises(function() w:spawn(h, 'x', f) end, 'this world is gone')
    t.raises(function() w:run() end, 'this world is gone')
    t.raises(function() w:tasks() end, 'this world is gone')
    t.eq(task.status, 'ready')
    -- a world closed by one of its tasks: the run ends with a clear error
    local w2 = world(21)
    local h2 = w2:host('h')
    local p = assert(h2.socket.pair(h2.SOCK_STREAM))
    w2:spawn(h2, 'waiter', function() return p[1]:recv() end)
    w2:spawn(h2, 'closer', function() w2:close() end)
    t.raises(function() w2:run() end, 'world.* is gone')
end)

t.case('a finalizer may run a world whose tasks wait (LuaJIT refuses it with a clear error)', function()
    -- (found by fuzz_sim.lua: on LuaJIT, a task that waited in a world run from a finalizer
    -- crashed the process -- LuaJIT runs finalizers with its hook flag set, and lua_yield
    -- from a C function then takes its yield-from-a-hook path)
    local results = {}
    for round = 1, 20 do
        local w = world(round)
        local a, b = w:host('a'), w:host('b')
        local l = assert(b.socket.new(b.AF_INET, b.SOCK_DGRAM))
        assert(l:bind(b.addrinfo.inet(b.ipv4, 9)))
        local x = assert(a.socket.new(a.AF_INET, a.SOCK_DGRAM))
        w:spawn(b, 'rx', function() return l:recv() end)
        w:spawn(a, 'tx', function()
            coroutine.yield()
            return x:sendto('x', a.addrinfo.inet(b.ipv4, 9))
        end)
        ;(function()
            t.on_gc(function()
                results[#results + 1] = { pcall(w.run, w) }
            end)
        end)()
        collectgarbage()
        collectgarbage()
    end
    t.eq(#results, 20, 'every finalizer ran')
    for _, r in ipairs(results) do
        if rawget(_G, 'jit') then
            t.is_false(r[1])
            t.has(r[2], 'cannot run tasks inside a finalizer or a debug hook on LuaJIT')
        else
            t.deq(r, { true, true })
        end
    end
end)
