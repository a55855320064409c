-- llsocket.sim: worlds, hosts as module tables, faults, the virtual clock, the trace,
-- determinism, install, argument errors, and use after the world is gone.
local t = ...
local sim = require('llsocket.sim')

local function world(seed, opts)
    opts = opts or {}
    opts.seed = seed
    return sim.new(opts)
end

-- A UDP socket bound to the host's own address and `port`.
local function udp(h, port)
    local s = assert(h.socket.new(h.AF_INET, h.SOCK_DGRAM, 0, true))
    assert(s:bind(h.addrinfo.inet(h.ipv4, port)))
    return s
end

-- A connected TCP pair between hosts `a` (client) and `b` (server).
local function tcp(a, b, port)
    local l = assert(b.socket.new(b.AF_INET, b.SOCK_STREAM))
    assert(l:bind(b.addrinfo.inet(b.ipv4, port)))
    assert(l:listen())
    local c = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM))
    assert(c:connect(a.addrinfo.inet(b.ipv4, port)))
    local s = assert(l:accept())
    return c, s, l
end

local on_gc = t.on_gc

t.case('the module: new and install; a world prints its seed', function()
    t.is_type(sim.new, 'function')
    t.is_type(sim.install, 'function')
    local w = sim.new()
    t.is_type(w, 'userdata')
    t.eq(w:seed(), 0)
    t.eq(tostring(world(42)), 'llsocket.sim.world: seed=42')
    t.eq(world(-7):seed(), -7)
    t.is_false(w:closed())
end)

t.case('a host is a complete llsocket module table, the same for the same name', function()
    local w = world(1)
    local a, b = w:host('alpha'), w:host('beta')
    local ll = t.llsocket()
    for k, v in pairs(ll) do
        t.eq(type(a[k]), type(v), k)
    end
    for _, sub in ipairs({ 'socket', 'addrinfo', 'msghdr', 'cmsghdr', 'cmsghdrs', 'device', 'env', 'iovec' }) do
        t.is_type(a[sub], 'table', sub)
    end
    t.eq(w:host('alpha'), a)
    t.ne(a, b)
    t.eq(a.name, 'alpha')
    t.eq(a.ipv4, '10.0.0.1')
    t.eq(b.ipv4, '10.0.0.2')
    t.eq(a.ipv6, 'fd00::1')
    t.eq(a.env.os, 'linux')
    -- host arguments by name or by table
    w:partition(a, 'beta')
    w:heal('alpha', b)
end)

t.case('two hosts talk TCP; the trace, digest, live sockets and descriptors show it', function()
    local w = world(42)
    local a, b = w:host('client'), w:host('server')
    local c, s = tcp(a, b, 8080)
    t.eq(c:send('hello'), 5)
    t.eq(s:recv(), 'hello')
    t.eq(s:getpeername():addr(), '10.0.0.1')
    t.eq(w:live_sockets(), 3)
    t.deq(w:open_fds('server'), { 3, 4 })
    t.deq(w:open_fds(a), { 3 })
    local trace = w:trace()
    t.ok(#trace > 5)
    local text = table.concat(trace, '\n')
    t.has(text, 'client connect fd=3 to=10.0.0.2:8080 -> ok')
    t.has(text, 'server recv fd=4')
    t.match(w:digest(), '^%x+$')
    t.eq(#w:digest(), 16)
    c:close()
    s:close()
    t.deq(w:open_fds('client'), {})
    t.has(w:replay_hint(), 'seed=42')
    t.has(w:replay_hint(), 'sim.new{seed = 42}')
end)

t.case('trace = false keeps no events but the same digest', function()
    local function run(opts)
        local w = world(5, opts)
        local a, b = w:host('a'), w:host('b')
        local x, y = udp(a, 1000), udp(b, 2000)
        x:sendto('ping', b.addrinfo.inet(b.ipv4, 2000))
        t.eq(y:recv(), 'ping')
        return w
    end
    local on, off = run({}), run({ trace = false })
    t.ok(#on:trace() > 0)
    t.eq(#off:trace(), 0)
    t.eq(off:digest(), on:digest())
end)

-- A scenario whose result depends on the seed: ephemeral ports and lossy datagrams.
local function scenario(seed)
    local w = world(seed)
    local a, b, d = w:host('a'), w:host('b'), w:host('d')
    w:link(a, b, { latency = { 1, 20 }, loss = 0.3 })
    w:link(a, d, { latency = { 1, 20 }, loss = 0.3, duplicate = 0.2, reorder = 0.2 })
    local c, s, l = tcp(a, b, 7000)
    local rx = udp(d, 9000)
    local tx = assert(a.socket.new(a.AF_INET, a.SOCK_DGRAM, 0, true))
    for i = 1, 20 do
        tx:sendto('d' .. i, d.addrinfo.inet(d.ipv4, 9000))
    end
    w:advance(100)
    local got = {}
    while true do
        local m = rx:recv()
        if not m then break end
        got[#got + 1] = m
    end
    c:send('over tcp')
    t.eq(s:recv(), 'over tcp')
    -- (every socket is still referenced: one left to the collector would be closed, and
    -- traced, whenever the collector gets to it)
    local digest = w:digest()
    local _ = { c, s, l, rx, tx }
    return digest, table.concat(got, ','), w:now()
end

t.case('determinism: the same seed gives the same digest and results; another seed differs', function()
    local d1, g1, n1 = scenario(11)
    local d2, g2, n2 = scenario(11)
    t.eq(d1, d2)
    t.eq(g1, g2)
    t.eq(n1, n2)
    local d3, g3 = scenario(12)
    t.ne(d3, d1)
    t.ne(g3 .. d3, g1 .. d1)
end)

t.case('link latency holds datagrams until the clock reaches them; now and advance', function()
    local w = world(3)
    local a, b = w:host('a'), w:host('b')
    w:link(a, b, { latency = 10 })
    local x, y = udp(a, 1), udp(b, 2)
    t.eq(w:now(), 0)
    t.eq(x:sendto('late', b.addrinfo.inet(b.ipv4, 2)), 4)
    local m, err, again = y:recv()
    t.is_nil(m)
    t.is_true(again)
    w:advance(9.5)
    t.eq(w:now(), 9.5)
    t.is_nil((y:recv()))
    w:advance(0.5)
    t.eq(y:recv(), 'late')
    -- one way only: b -> a is instant
    w:link_oneway(b, a, {})
    y:sendto('fast', a.addrinfo.inet(a.ipv4, 1))
    t.eq(x:recv(), 'fast')
    -- a blocking recv waits on the virtual clock
    x:sendto('wait', b.addrinfo.inet(b.ipv4, 2))
    y:nonblock(false)
    t.eq(y:recv(), 'wait')
    t.eq(w:now(), 20)
end)

t.case('loss, duplication, partitions and heal change what arrives', function()
    local w = world(4)
    local a, b = w:host('a'), w:host('b')
    local x, y = udp(a, 1), udp(b, 2)
    local to = b.addrinfo.inet(b.ipv4, 2)
    w:link(a, b, { loss = 1 })
    x:sendto('lost', to)
    w:advance(1)
    t.is_nil((y:recv()))
    w:link(a, b, { duplicate = 1 })
    x:sendto('twice', to)
    w:advance(1)
    t.eq(y:recv(), 'twice')
    t.eq(y:recv(), 'twice')
    w:link(a, b)
    w:partition(a, b)
    x:sendto('cut', to)
    w:advance(1)
    t.is_nil((y:recv()))
    w:heal(a, b)
    x:sendto('healed', to)
    t.eq(y:recv(), 'healed')
    w:partition_oneway(b, a)
    x:sendto('a to b still works', to)
    t.eq(y:recv(), 'a to b still works')
    y:sendto('b to a is cut', a.addrinfo.inet(a.ipv4, 1))
    w:advance(1)
    t.is_nil((x:recv()))
    t.has(table.concat(w:trace(), '\n'), 'partition')
end)

t.case('host faults: EINTR, short I/O, resets', function()
    local w = world(6)
    local a, b = w:host('a'), w:host('b')
    local c, s = tcp(a, b, 80)
    w:faults(b, { eintr = 1 })
    -- (EINTR is "try again" in the llsocket API: nil, nil, true)
    local r = t.nres(3, s:recv())
    t.is_nil(r[1])
    t.is_nil(r[2])
    t.is_true(r[3])
    t.has(table.concat(w:trace(), '\n'), 'fault-eintr')
    w:faults(b)
    w:faults(a, { short_io = 1 })
    local n = c:send(string.rep('x', 1000))
    t.ok(n >= 1 and n < 1000, 'short send: ' .. tostring(n))
    w:faults(a, { reset = 1 })
    local r, e2 = c:send('boom')
    t.is_nil(r)
    t.err(e2, 'ECONNRESET')
end)

t.case('crash and restart: descriptors vanish, the host comes back empty', function()
    local w = world(8)
    local a, b = w:host('a'), w:host('b')
    local c, s, l = tcp(a, b, 80)
    t.eq(#w:open_fds(b), 2)
    w:crash(b)
    t.deq(w:open_fds(b), {})
    local m, err = s:recv()
    t.is_nil(m)
    t.err(err, 'EBADF')
    w:restart(b)
    local l2 = assert(b.socket.new(b.AF_INET, b.SOCK_STREAM))
    t.is_true(l2:bind(b.addrinfo.inet(b.ipv4, 80)))
    t.is_true(l2:listen())
    t.has(table.concat(w:trace(), '\n'), 'crash')
    local _ = { c, l }
end)

t.case('world options: somaxconn, fd_limit, buffer sizes', function()
    local w = world(1, { somaxconn = 7, fd_limit = 2, rcvbuf = 3000, sndbuf = 5000 })
    local h = w:host('h')
    t.eq(h.env.somaxconn, 7)
    local s = assert(h.socket.new(h.AF_INET, h.SOCK_DGRAM))
    t.eq(s:rcvbuf(), 3000)
    t.eq(s:sndbuf(), 5000)
    local s2 = assert(h.socket.new(h.AF_INET, h.SOCK_DGRAM))
    local x, err = h.socket.new(h.AF_INET, h.SOCK_DGRAM)
    t.is_nil(x)
    t.err(err, 'EMFILE')
    local _ = s2
end)

-- The little-endian unsigned integer of `n` bytes at `at` (1-based) of `s`.
local function le(s, at, n)
    local v = 0
    for i = at + n - 1, at, -1 do
        v = v * 256 + s:byte(i)
    end
    return v
end

t.case('capture = true: world:pcap writes the packets as a pcap file', function()
    local function run(capture)
        local w = world(3, { capture = capture })
        local a, b = w:host('a'), w:host('b')
        w:link(a, b, { latency = 2 })
        local c, s = tcp(a, b, 8080)
        t.eq(c:send('hello'), 5)
        t.eq(s:recv(), 'hello')
        local x, y = udp(a, 1000), udp(b, 2000)
        x:sendto('ping', b.addrinfo.inet(b.ipv4, 2000))
        w:advance(5)
        t.eq(y:recv(), 'ping')
        return w
    end
    local w, plain = run(true), run(false)
    t.eq(w:digest(), plain:digest())
    t.eq(plain:captured(), 0)
    -- SYN, SYN-ACK, one data segment, one datagram
    t.eq(w:captured(), 4)
    local path = os.tmpname()
    t.is_true(w:pcap(path))
    local f = assert(io.open(path, 'rb'))
    local bytes = f:read('*a')
    f:close()
    os.remove(path)
    t.eq(le(bytes, 1, 4), 0xa1b23c4d)
    t.eq(le(bytes, 21, 4), 101)
    -- records: 16-byte header + IPv4 (20) + TCP (20) or UDP (8) + payload
    t.eq(#bytes, 24 + 4 * 16 + 3 * 40 + 5 + 28 + 4)
    -- the SYN-ACK left 2 ms after the SYN (virtual time, nanoseconds)
    t.eq(le(bytes, 25 + 16 + 40 + 4, 4), 2000000)
    local ok, err = w:pcap('/nonexistent-dir/x.pcap')
    t.is_nil(ok)
    t.has(err, 'llsocket.sim: pcap: ')
end)

t.case('a full world refuses another host with a clear error', function()
    local w = world(1, { max_hosts = 2 })
    w:host('a')
    local b = w:host('b')
    t.eq(w:host('b'), b) -- an existing name is no new host
    local ok, err = pcall(w.host, w, 'c')
    t.is_false(ok)
    t.has(err, 'llsocket.sim: this world is full (at most 2 hosts)')
    t.argerr(function() sim.new({ max_hosts = -1 }) end, 1, "field 'max_hosts': must not be negative")
end)

t.case('world:sockets and world:socket_table list a host\'s sockets like ss -a', function()
    local w = world(4)
    local a, b = w:host('a'), w:host('b')
    local c, s, l = tcp(a, b, 8080)
    t.eq(c:send('hello'), 5)
    local u = udp(b, 53)
    u:broadcast(true)
    local list = w:sockets(b)
    t.eq(#list, 3)
    local by = {}
    for _, e in ipairs(list) do by[e.state .. ':' .. e.netid] = e end
    local lis = by['LISTEN:tcp']
    t.deq(lis.fds, { l:fd() })
    t.eq(lis.laddr, '10.0.0.2:8080')
    t.is_nil(lis.paddr)
    t.eq(lis.backlog, 0)
    t.ok(lis.max_backlog > 0)
    local est = by['ESTAB:tcp']
    t.deq(est.fds, { s:fd() })
    t.eq(est.recv_q, 5)
    t.eq(est.paddr, c:getsockname():addr() .. ':' .. c:getsockname():port())
    t.eq(est.family, b.AF_INET)
    t.eq(est.type, b.SOCK_STREAM)
    local dg = by['UNCONN:udp']
    t.eq(dg.options.SO_BROADCAST, '1')
    local text = w:socket_table(b)
    t.has(text, 'LISTEN')
    t.has(text, '10.0.0.2:8080')
    t.has(w:socket_table(), 'host a ')
    t.deq(w:sockets(w:host('empty')), {})
    c:close(); s:close(); l:close(); u:close()
end)

t.case('host groups: one link rule and one partition for many hosts', function()
    local w = world(5)
    local dc1, dc2 = {}, {}
    for i = 1, 4 do
        dc1[i] = w:host('x' .. i)
        dc2[i] = w:host('y' .. i)
    end
    w:group('dc1', dc1[1], dc1[2], 'x3', dc1[4])
    local unpack = table.unpack or unpack
    w:group('dc2', unpack(dc2))
    w:link_groups('dc1', 'dc2', { latency = 25 })
    local rx = udp(dc2[3], 9)
    local tx = udp(dc1[2], 9)
    local t0 = w:now()
    tx:sendto('over the wan', dc1[2].addrinfo.inet(dc2[3].ipv4, 9))
    t.is_true(rx:recvable(1000))
    t.eq(w:now() - t0, 25)
    t.eq(rx:recv(), 'over the wan')
    w:partition_groups('dc1', 'dc2')
    tx:sendto('cut', dc1[2].addrinfo.inet(dc2[3].ipv4, 9))
    t.is_false(rx:recvable(100))
    w:heal_groups('dc1', 'dc2')
    tx:sendto('healed', dc1[2].addrinfo.inet(dc2[3].ipv4, 9))
    t.is_true(rx:recvable(1000))
    t.eq(rx:recv(), 'healed')
    rx:close(); tx:close()
    t.argerr(function() w:group(1) end, 1, 'string expected, got number')
    t.argerr(function() w:group('g', 'nobody') end, 2, 'no host "nobody" in this world')
    t.argerr(function() w:link_groups('a', 2) end, 2, 'string expected, got number')
    t.argerr(function() w:partition_groups('a') end, 2, 'string expected, got no value')
    t.argerr(function() w:sockets(5) end, 1, 'host name or host table expected, got number')
end)

t.case('bad arguments raise the standard errors', function()
    local w = world(1)
    w:host('a')
    local other = world(2):host('x')
    t.argerr(function() sim.new('x') end, 1, 'table expected, got string')
    t.argerr(function() sim.new({ seed = 'x' }) end, 1, "field 'seed': integer expected, got string")
    t.argerr(function() sim.new({ seed = 1.5 }) end, 1, "field 'seed': integer expected, got number")
    t.argerr(function() sim.new({ sed = 1 }) end, 1, 'unknown option "sed"')
    t.argerr(function() sim.new({ host = 'a' }) end, 1, 'unknown option "host"')
    t.argerr(function() sim.new({ [1] = 1 }) end, 1, 'option names must be strings')
    t.argerr(function() sim.new({ trace = 1 }) end, 1, "field 'trace': boolean expected, got number")
    t.argerr(function() sim.new({ fd_limit = -1 }) end, 1, "field 'fd_limit': must not be negative")
    t.argerr(function() sim.install('x') end, 1, 'table expected, got string')
    t.argerr(function() sim.install({ host = 1 }) end, 1, "field 'host': string expected, got number")
    t.argerr(function() w.host(1, 'a') end, 1, 'llsocket.sim.world expected, got number')
    t.argerr(function() w.now({}) end, 1, 'llsocket.sim.world expected, got table')
    t.argerr(function() w:host(1) end, 1, 'string expected, got number')
    t.argerr(function() w:host('\255') end, 1, 'host name must be UTF-8')
    t.argerr(function() w:link('a', 1) end, 2, 'host name or host table expected, got number')
    t.argerr(function() w:link('a', 'zz') end, 2, 'no host "zz" in this world')
    t.argerr(function() w:link('a', other) end, 2, 'not a host of this world')
    t.argerr(function() w:link('a', 'a', 5) end, 3, 'table expected, got number')
    t.argerr(function() w:link('a', 'a', { loss = 2 }) end, 3, "field 'loss': a probability from 0 to 1 expected")
    t.argerr(function() w:link('a', 'a', { loss = 'x' }) end, 3, "field 'loss': number expected, got string")
    t.argerr(function() w:link('a', 'a', { latency = { 5, 1 } }) end, 3, "field 'latency': {min, max} with min <= max expected")
    t.argerr(function() w:link('a', 'a', { latency = -1 }) end, 3, "field 'latency': milliseconds from 0 to 9.2e12 expected")
    t.argerr(function() w:link('a', 'a', { latency = 'x' }) end, 3, "field 'latency': number or {min, max} expected, got string")
    t.argerr(function() w:link('a', 'a', { jitter = 1 }) end, 3, 'unknown option "jitter"')
    t.argerr(function() w:link_oneway(nil, 'a') end, 1, 'host name or host table expected, got nil')
    t.argerr(function() w:partition('a') end, 2, 'host name or host table expected, got no value')
    t.argerr(function() w:partition_oneway('a', true) end, 2, 'host name or host table expected, got boolean')
    t.argerr(function() w:heal('q', 'a') end, 1, 'no host "q" in this world')
    t.argerr(function() w:crash() end, 1, 'host name or host table expected, got no value')
    t.argerr(function() w:restart({}) end, 1, 'not a host of this world')
    t.argerr(function() w:faults('a', 1) end, 2, 'table expected, got number')
    t.argerr(function() w:faults('a', { eintr = 'x' }) end, 2, "field 'eintr': number expected, got string")
    t.argerr(function() w:faults('a', { drop = 1 }) end, 2, 'unknown option "drop"')
    t.argerr(function() w:advance('x') end, 1, 'number expected, got string')
    t.argerr(function() w:advance(-1) end, 1, 'milliseconds from 0 to 9.2e12 expected')
    t.argerr(function() w:advance(1 / 0) end, 1, 'milliseconds from 0 to 9.2e12 expected')
    t.argerr(function() w:open_fds(3) end, 1, 'host name or host table expected, got number')
    t.argerr(function() w:pcap() end, 1, 'string expected, got no value')
    t.argerr(function() w:pcap({}) end, 1, 'string expected, got table')
    t.argerr(function() sim.new({ capture = 1 }) end, 1, "field 'capture': boolean expected, got number")
    for _, m in ipairs({ 'seed', 'trace', 'digest', 'replay_hint', 'live_sockets', 'closed', 'close', 'pcap', 'captured' }) do
        t.argerr(function() w[m]('x') end, 1, 'llsocket.sim.world expected, got string', m)
    end
end)

t.case('a closed world raises clearly; so do its hosts and their sockets', function()
    local w = world(1)
    local h = w:host('h')
    local s = assert(h.socket.new(h.AF_INET, h.SOCK_DGRAM))
    w:close()
    w:close() -- idempotent
    t.is_true(w:closed())
    t.eq(tostring(w), 'llsocket.sim.world: closed')
    for _, m in ipairs({ 'seed', 'trace', 'digest', 'replay_hint', 'live_sockets', 'now', 'captured' }) do
        t.raises(function() w[m](w) end, 'this world is gone', m)
    end
    t.raises(function() w:pcap('/nonexistent/x.pcap') end, 'this world is gone')
    t.raises(function() w:host('h') end, 'this world is gone')
    t.raises(function() w:advance(1) end, 'this world is gone')
    t.raises(function() w:crash('h') end, 'this world is gone')
    t.raises(function() w:link(h, h) end, 'this world is gone')
    t.raises(function() h.socket.new(h.AF_INET, h.SOCK_DGRAM) end, 'the world of this host is gone')
    t.raises(function() s:sendto('x', h.addrinfo.inet('10.0.0.1', 1)) end, 'the world of this host is gone')
    t.raises(function() h.addrinfo.getaddrinfo('localhost') end, 'the world of this host is gone')
    t.raises(function() s:close() end, 'the world of this host is gone')
end)

t.case('a collected world: its hosts raise; a world revived by a finalizer raises', function()
    local h = (function() return world(1):host('h') end)()
    collectgarbage()
    collectgarbage()
    t.raises(function() h.socket.new(h.AF_INET, h.SOCK_DGRAM) end, 'the world of this host is gone')
    local revived
    ;(function()
        local w = world(2)
        w:host('x')
        on_gc(function() revived = w end)
    end)()
    collectgarbage()
    collectgarbage()
    t.not_nil(revived, 'the finalizer ran')
    t.is_true(revived:closed())
    t.raises(function() revived:host('x') end, 'this world is gone')
    t.raises(function() revived:digest() end, 'this world is gone')
end)

t.case('install: require("llsocket") and its sub-modules become the simulated host', function()
    local names = { 'llsocket', 'llsocket.socket', 'llsocket.addrinfo', 'llsocket.msghdr', 'llsocket.cmsghdr',
        'llsocket.cmsghdrs', 'llsocket.device', 'llsocket.env' }
    local saved, saved_pre = {}, {}
    for _, n in ipairs(names) do
        saved[n], saved_pre[n] = package.loaded[n], package.preload[n]
    end
    t.cleanup(function()
        for _, n in ipairs(names) do
            package.loaded[n], package.preload[n] = saved[n], saved_pre[n]
        end
    end)
    local w, h = sim.install({ seed = 9, host = 'me' })
    t.eq(w:seed(), 9)
    t.eq(h.name, 'me')
    t.eq(h, w:host('me'))
    t.eq(require('llsocket'), h)
    t.eq(require('llsocket.socket'), h.socket)
    t.eq(require('llsocket.env'), h.env)
    t.eq(package.preload['llsocket.addrinfo'](), h.addrinfo)
    w = nil
    collectgarbage()
    collectgarbage()
    -- the installed world is anchored: the simulated host still works
    local ll = require('llsocket')
    local s = assert(ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM, 0, true))
    t.is_true(s:bind(ll.addrinfo.inet('10.0.0.1', 5)))
    t.eq(s:sendto('me', ll.addrinfo.inet('10.0.0.1', 5)), 2)
    t.eq(s:recv(), 'me')
    local _, h2 = sim.install()
    t.eq(h2.name, 'main')
    t.eq(require('llsocket'), h2)
end)

t.case('check_determinism runs a scenario twice and names the first divergent event', function()
    local sim = require('llsocket.sim')
    local function scenario(w)
        local a, b = w:host('a'), w:host('b')
        local l = assert(b.socket.new(b.AF_INET, b.SOCK_STREAM))
        assert(l:bind(b.addrinfo.inet(b.ipv4, 7100)))
        assert(l:listen())
        local c = assert(a.socket.new(a.AF_INET, a.SOCK_STREAM))
        assert(c:connect(a.addrinfo.inet(b.ipv4, 7100)))
        local s = assert(l:accept())
        assert(c:send('same every time') == 15)
        local got = s:recv()
        c:close(); s:close(); l:close()
        return got
    end
    local got, digest = sim.check_determinism({ seed = 5 }, scenario)
    t.eq(got, 'same every time')
    t.match(digest, '^%x+$')
    -- a program that is not the same twice: the report names the event where it differs
    local runs = 0
    local r, report = sim.check_determinism({ seed = 5 }, function(w)
        runs = runs + 1
        local a = w:host('a')
        for _ = 1, runs do a.socket.new(a.AF_INET, a.SOCK_DGRAM):close() end
    end)
    t.is_nil(r)
    t.match(report, 'two runs of seed 5 diverge at event #%d+')
    t.has(report, 'run 1: ')
    t.has(report, 'run 2: ')
    -- an error in the scenario is raised again after the comparison
    t.raises(function() sim.check_determinism({ seed = 1 }, function() error('scenario failed', 0) end) end,
        'scenario failed')
    t.argerr(function() sim.check_determinism(1, scenario) end, 1, 'table expected, got number')
    t.argerr(function() sim.check_determinism({ seed = 1 }) end, 2, 'function expected, got nil')
end)

-- ---------------------------------------------------------------------------------
-- packet rules: world:rule, world:remove_rule

-- Every datagram `y` (non-blocking) has now, in order.
local function drain(y)
    local got = {}
    while true do
        local m = y:recv()
        if not m then break end
        got[#got + 1] = m
    end
    return got
end

-- A world with hosts a and b and a UDP socket on each: x on a (port 1), y on b (port 2).
local function udp_world(seed)
    local w = world(seed)
    local a, b = w:host('a'), w:host('b')
    local x, y = udp(a, 1), udp(b, 2)
    return w, a, b, x, y, b.addrinfo.inet(b.ipv4, 2)
end

t.case('rules: the packet a rule sees', function()
    local w, a, b, x, y, to = udp_world(1)
    local seen = {}
    w:rule(function(p, rng)
        seen[#seen + 1] = p
        t.eq(tostring(rng), 'llsocket.sim.rng')
    end)
    w:advance(2.5)
    t.eq(x:sendto('hello', to), 5)
    t.eq(y:recv(), 'hello')
    t.eq(#seen, 1)
    local p = seen[1]
    t.eq(p.time, 2.5)
    t.eq(p.src_host, 'a')
    t.eq(p.dst_host, 'b')
    t.eq(p.src, '10.0.0.1:1')
    t.eq(p.dst, '10.0.0.2:2')
    t.eq(p.src_ip, '10.0.0.1')
    t.eq(p.dst_ip, '10.0.0.2')
    t.eq(p.src_port, 1)
    t.eq(p.dst_port, 2)
    t.eq(p.proto, 'udp')
    t.eq(p.flags, '')
    t.eq(p.len, 5)
    t.eq(p.payload, 'hello')
    t.eq(p.attempt, 0)
    -- TCP: a handshake, data, a FIN, each with its flags; IPv6 addresses in brackets
    seen = {}
    local l = assert(b.socket.new(b.AF_INET6, b.SOCK_STREAM))
    assert(l:bind(b.addrinfo.inet6(b.ipv6, 80)))
    assert(l:listen())
    local c = assert(a.socket.new(a.AF_INET6, a.SOCK_STREAM))
    assert(c:connect(a.addrinfo.inet6(b.ipv6, 80)))
    local s = assert(l:accept())
    t.eq(c:send('data'), 4)
    t.eq(s:recv(), 'data')
    c:close()
    w:advance(1)
    local flags = {}
    for i, q in ipairs(seen) do
        t.eq(q.proto, 'tcp')
        flags[i] = q.flags
    end
    t.deq(flags, { 'S', 'SA', 'PA', 'FA' })
    t.eq(seen[1].dst, '[fd00::2]:80')
    t.eq(seen[1].dst_ip, 'fd00::2')
    t.eq(seen[2].src, '[fd00::2]:80')
    t.eq(seen[3].payload, 'data')
    t.eq(seen[3].src_host, 'a')
    s:close(); l:close()
end)

t.case('rules: every verdict changes what arrives', function()
    local w, a, b, x, y, to = udp_world(2)
    w:rule(function(p)
        local m = p.payload
        if m == 'drop' then return 'drop'
        elseif m == 'pass' then return 'pass'
        elseif m == 'twice' then return 'duplicate'
        elseif m == 'late' then return 'delay', 30
        elseif m == 'later' then return { delay = 12.5 }
        elseif m == 'held' then return 'hold'
        end
    end)
    x:sendto('drop', to)
    x:sendto('pass', to)
    x:sendto('nil', to)
    t.deq(drain(y), { 'pass', 'nil' })
    x:sendto('twice', to)
    t.deq(drain(y), { 'twice', 'twice' })
    -- delay: the datagram arrives on the virtual clock
    x:sendto('late', to)
    t.deq(drain(y), {})
    t.is_true(y:recvable(1000))
    t.eq(w:now(), 30)
    t.deq(drain(y), { 'late' })
    x:sendto('later', to)
    t.is_true(y:recvable(1000))
    t.eq(w:now(), 42.5)
    t.deq(drain(y), { 'later' })
    -- hold: delivered after the next datagram of the link (reordered)
    x:sendto('held', to)
    t.deq(drain(y), {})
    x:sendto('next', to)
    t.deq(drain(y), { 'next', 'held' })
    -- alone, a held datagram goes after the hold limit (100 ms)
    x:sendto('held', to)
    w:advance(100)
    t.deq(drain(y), { 'held' })
    local trace = table.concat(w:trace(), '\n')
    for _, ev in ipairs({ 'rule-drop', 'rule-dup', 'rule-delay', 'rule-hold' }) do
        t.has(trace, ev)
    end
end)

t.case('rules: a dropped TCP segment is retransmitted (the rule sees attempt 1)', function()
    local w = world(3)
    local a, b = w:host('a'), w:host('b')
    local c, s = tcp(a, b, 80)
    local attempts = {}
    w:rule(a, b, function(p)
        if p.payload == 'hello' then
            attempts[#attempts + 1] = p.attempt
            if p.attempt == 0 then return 'drop' end
        end
    end)
    local t0 = w:now()
    t.eq(c:send('hello'), 5)
    s:nonblock(false)
    t.eq(s:recv(), 'hello')
    t.deq(attempts, { 0, 1 })
    t.ok(w:now() - t0 >= 200, 'retransmitted after 200 ms: ' .. (w:now() - t0))
    c:close(); s:close()
end)

-- `__gc` called by hand (every metamethod can be) inside one of the world's own rules,
-- while `world:advance` runs that world: with no host or socket of the world left, the
-- world's state held its last reference, and dropping it then freed the world under the
-- running call (found by fuzz_sim.lua: a later rule lookup read freed memory; here a
-- segfault). The call holds its own reference now: it finishes, and the world is gone.
t.case('rules: the world collected by hand inside its own rule, during world:advance', function()
    local w = world(4)
    local gc, armed, seen = debug.getmetatable(w).__gc, false, 0
    w:rule(function(p)
        if p.flags:find('S') then return end -- (the handshake goes through)
        if armed then
            seen = seen + 1
            if seen == 1 then
                gc(w)
                -- (reuse the freed memory, as the fuzzer's calls did)
                for i = 1, 20 do
                    local o = sim.new({ seed = i })
                    for j = 1, 5 do o:host('h' .. j) end
                    o:close()
                end
            end
        end
        return 'drop' -- (retransmitted by the closed sockets until they give up)
    end)
    do
        local a, b = w:host('a'), w:host('b')
        local c, s, l = tcp(a, b, 80)
        t.eq(c:send('x'), 1)
        c:close(); s:close(); l:close()
    end
    collectgarbage(); collectgarbage() -- (no host table, no socket: the world's state holds it)
    armed = true
    w:advance(60000)
    t.eq(seen, 1) -- (the rules of a world that is gone do not run: its packets pass)
    t.is_true(w:closed())
    t.raises(function() w:advance(1) end, 'this world is gone')
end)

-- The same inside a close left for later: sockets collected while a rule runs are closed
-- at the next call into their world, whose reset a rule sees; that rule removes itself and
-- collects the world by hand, so the call that ran the closes finds the world gone (and
-- two removals pending: the rules' closures go, the shared state stays with the hosts).
t.case('rules: the world collected by hand inside a rule run by a deferred close', function()
    local w = world(5)
    local gc, phase, r1 = debug.getmetatable(w).__gc, 0, nil
    local a, b = w:host('a'), w:host('b')
    local c, s, l = tcp(a, b, 80)
    local r2 = w:rule(function() end)
    r1 = w:rule(function(p)
        if phase == 0 and p.payload == 'x' then
            return 'drop' -- (sent again by world:advance, with no socket on the stack)
        elseif phase == 1 and p.payload == 'x' then
            phase = 2
            t.is_true(w:remove_rule(r2)) -- (pending: the world is busy)
            a, b, c, s, l = nil, nil, nil, nil, nil
            collectgarbage(); collectgarbage() -- (their closes wait for the next call)
        elseif phase == 3 and p.flags:find('[FR]') then
            phase = 4
            t.is_true(w:remove_rule(r1))
            gc(w)
            for i = 1, 20 do -- (reuse freed memory)
                local o = sim.new({ seed = i })
                for j = 1, 5 do o:host('h' .. j) end
                o:close()
            end
        end
    end)
    t.eq(c:send('x'), 1)
    phase = 1
    w:advance(1000)
    t.eq(phase, 2)
    phase = 3
    t.raises(function() w:now() end, 'this world is gone') -- (the closes run first: a reset)
    t.eq(phase, 4)
    t.is_true(w:closed())
end)

t.case('rules: a link rule sees one direction only; remove_rule', function()
    local w, a, b, x, y, to = udp_world(4)
    local back = a.addrinfo.inet(a.ipv4, 1)
    local n = 0
    local id = w:rule('a', b, function()
        n = n + 1
        return 'drop'
    end)
    t.is_int(id)
    x:sendto('a to b', to)
    y:sendto('b to a', back)
    t.deq(drain(y), {})
    t.deq(drain(x), { 'b to a' })
    t.eq(n, 1)
    t.is_true(w:remove_rule(id))
    t.is_false(w:remove_rule(id))
    t.is_false(w:remove_rule(12345))
    x:sendto('again', to)
    t.deq(drain(y), { 'again' })
    t.eq(n, 1)
    -- rules run in the order they were installed; a drop ends the packet
    local order = {}
    local r1 = w:rule(function() order[#order + 1] = 1 end)
    local r2 = w:rule(function() order[#order + 1] = 2; return 'drop' end)
    local r3 = w:rule(function() order[#order + 1] = 3 end)
    t.ne(r1, r2)
    x:sendto('x', to)
    t.deq(order, { 1, 2 })
    t.has(table.concat(w:trace(), '\n'), 'rule-remove')
    w:remove_rule(r1); w:remove_rule(r2); w:remove_rule(r3)
end)

-- A lossy scenario decided by a rule that draws from the world's generator.
local function rng_scenario(seed)
    local w, a, b, x, y, to = udp_world(seed)
    local draws = {}
    w:rule(function(p, rng)
        draws[#draws + 1] = rng:range(1, 1000) .. '/' .. rng:duration(0, 5)
        if rng:chance(0.5) then return 'drop' end
        return 'delay', rng:duration(1, 20)
    end)
    for i = 1, 30 do
        x:sendto('m' .. i, to)
    end
    w:advance(50)
    local got = table.concat(drain(y), ',')
    return w:digest(), got, table.concat(draws, ' ')
end

t.case('rules: draws from rng replay with the seed; another seed differs', function()
    local d1, g1, r1 = rng_scenario(21)
    local d2, g2, r2 = rng_scenario(21)
    t.eq(d1, d2)
    t.eq(g1, g2)
    t.eq(r1, r2)
    local d3, g3, r3 = rng_scenario(22)
    t.ne(d3, d1)
    t.ne(g3, g1)
    t.ne(r3, r1)
    t.ok(#g1 > 0, 'some datagrams arrive')
end)

t.case('rules: a failing rule passes its packet, is removed, and is reported with its traceback', function()
    local w, a, b, x, y, to = udp_world(5)
    local calls = 0
    local function broken(p)
        calls = calls + 1
        error('broken rule on ' .. p.payload)
    end
    w:rule(broken)
    w:advance(7)
    x:sendto('first', to)
    -- the next call into the world raises the report (here a socket method)
    local err = t.raises(function() y:recv() end, 'llsocket.sim: packet rule 1 %(.-sim_test.lua:%d+%) failed and is removed')
    t.has(err, '(virtual time 0.007000000 s, seed 5)')
    t.has(err, 'broken rule on first')
    t.has(err, 'stack traceback:')
    t.match(err, "sim_test.lua:%d+: in function")
    t.has(err, 'udp 10.0.0.1:1 -> 10.0.0.2:2 [] 5 bytes, attempt 0, host a -> b')
    t.has(err, 'sim.new{seed = 5}')
    -- reported once; the packet passed; the rule is gone
    t.deq(drain(y), { 'first' })
    x:sendto('second', to)
    t.deq(drain(y), { 'second' })
    t.eq(calls, 1)
    t.is_false(w:remove_rule(1))
    -- world methods raise it too, and advance raises it before it returns
    w:rule(broken)
    x:sendto('third', to)
    t.raises(function() w:digest() end, 'broken rule on third')
    local delayed = w:rule(function() return 'delay', 5 end)
    w:rule(broken)
    x:sendto('fourth', to)
    t.raises(function() w:live_sockets() end, 'broken rule on fourth')
    w:remove_rule(delayed)
    w:rule(a, b, function(p) if p.payload == 'boom' then error('boom in advance') end end)
    w:rule(function(p) if p.payload == 'late' then return 'delay', 10 end end)
    local late = assert(a.socket.new(a.AF_INET, a.SOCK_DGRAM, 0, true))
    late:sendto('late', to)
    x:sendto('boom', to)
    t.raises(function() w:now() end, 'boom in advance')
    -- two failures are reported together; seed and replay_hint never raise them
    w:rule(function() error('one') end)
    w:rule(function() error('two') end)
    x:sendto('x', to)
    t.eq(w:seed(), 5)
    t.has(w:replay_hint(), 'seed=5')
    local both = t.raises(function() w:trace() end, 'one')
    t.has(both, 'two')
    -- close drops the world, then raises what was not reported yet
    late:close()
    w:rule(function() error('reported by close') end)
    x:sendto('last', to)
    t.raises(function() w:close() end, 'reported by close')
    t.is_true(w:closed())
    w:close()
end)

t.case('rules: the thread a rule runs on, kept past its call, cannot be resumed', function()
    local w, a, b, x, y, to = udp_world(13)
    local co, n = nil, 0
    w:rule(function()
        co = coroutine.running()
        n = n + 1
        if coroutine.close then
            t.is_false((pcall(coroutine.close, co)))
        end
    end)
    x:sendto('1', to)
    t.eq(n, 1)
    t.is_type(co, 'thread')
    t.eq(coroutine.status(co), 'dead')
    t.deq(t.pack(coroutine.resume(co)), { n = 2, false, 'cannot resume dead coroutine' })
    t.deq(t.pack(coroutine.resume(co, print, 1)), { n = 2, false, 'cannot resume dead coroutine' })
    if coroutine.close then
        t.is_true(coroutine.close(co))
    end
    x:sendto('2', to)
    t.eq(n, 2)
    t.deq(drain(y), { '1', '2' })
end)

t.case('rules: yields, bad verdicts and raising error objects are failures too', function()
    local w, a, b, x, y, to = udp_world(6)
    local cases = {
        { function() coroutine.yield() end, 'yield' },
        { function() return 'sideways' end, '"sideways": bad verdict' },
        { function() return 42 end, 'a number value: bad verdict' },
        { function() return 'delay' end, "'delay', nil: bad verdict" },
        { function() return 'delay', -1 end, "'delay', %-1: bad verdict" },
        { function() return { delay = 'x' } end, 'a table without a valid delay field: bad verdict' },
        { function() return true end, 'a boolean value: bad verdict' },
        { function() error(setmetatable({}, { __tostring = error })) end, '%(error object is a table value%)' },
        { function() error() end, '%(error object is a nil value%)' },
        { function() error(12) end, '12' },
        { function() local function f() return f() + 1 end return f() end, 'stack overflow' },
    }
    for i, c in ipairs(cases) do
        w:rule(c[1])
        x:sendto('m' .. i, to)
        t.raises(function() w:now() end, c[2], 'case ' .. i)
        t.deq(drain(y), { 'm' .. i }, 'case ' .. i)
    end
end)

t.case('rules: a rule cannot call into its own world (clear errors), but may remove rules', function()
    local w, a, b, x, y, to = udp_world(7)
    local other = world(8)
    local o1, o2 = other:host('o1'), other:host('o2')
    local ox, oy = udp(o1, 1), udp(o2, 2)
    local errors, worked = {}, {}
    local function try(name, f)
        local ok, err = pcall(f)
        if ok then
            worked[#worked + 1] = name
        else
            errors[name] = tostring(err)
        end
    end
    local victim = w:rule(function() end)
    local self_id
    self_id = w:rule(function(p, rng)
        try('now', function() return w:now() end)
        try('host', function() return w:host('a') end)
        try('new host', function() return w:host('zzz') end)
        try('link', function() w:link(a, b, { latency = 1 }) end)
        try('advance', function() w:advance(1) end)
        try('run', function() w:run() end)
        try('rule', function() w:rule(function() end) end)
        try('close', function() w:close() end)
        try('trace', function() return w:trace() end)
        try('socket.new', function() return a.socket.new(a.AF_INET, a.SOCK_DGRAM) end)
        try('sendto', function() return x:sendto('again', to) end)
        try('recv', function() return y:recv() end)
        try('close socket', function() return x:close() end)
        try('socket.close', function() return a.socket.close(x:fd()) end)
        try('getaddrinfo', function() return a.addrinfo.getaddrinfo('localhost') end)
        try('getsockname', function() return x:getsockname() end)
        -- allowed: the other world, remove_rule, and the harmless seed/tostring/closed
        try('other world', function() assert(ox:sendto('via the other world', o2.addrinfo.inet(o2.ipv4, 2)) == 19) end)
        try('remove_rule', function() assert(w:remove_rule(victim)) end)
        try('remove self', function() assert(w:remove_rule(self_id)) end)
        try('seed', function() assert(w:seed() == 7) end)
        try('tostring', function() assert(tostring(w) == 'llsocket.sim.world: seed=7') end)
        try('closed', function() assert(w:closed() == false) end)
        try('fd', function() return x:fd() end)
        return 'drop'
    end)
    x:sendto('q', to)
    for _, name in ipairs({ 'now', 'host', 'new host', 'link', 'advance', 'run', 'rule', 'close', 'trace', 'socket.new',
        'sendto', 'recv', 'close socket', 'socket.close', 'getaddrinfo', 'getsockname' }) do
        t.has(errors[name] or 'no error', 'a packet rule cannot call into its own world', name)
    end
    t.deq(worked, { 'other world', 'remove_rule', 'remove self', 'seed', 'tostring', 'closed', 'fd' })
    t.eq(oy:recv(), 'via the other world')
    -- the rule's verdict held; it removed itself and the other rule; the world works
    t.deq(drain(y), {})
    x:sendto('after', to)
    t.deq(drain(y), { 'after' })
    t.is_false(w:remove_rule(self_id))
    t.is_false(w:remove_rule(victim))
    t.is_false(w:closed())
    ox:close(); oy:close()
end)

t.case('rules: the other world\'s rule refuses a call into its own world', function()
    local A, B = world(1), world(2)
    local a1, a2, b1, b2 = A:host('a1'), A:host('a2'), B:host('b1'), B:host('b2')
    local ax, ay, bx, by = udp(a1, 1), udp(a2, 2), udp(b1, 1), udp(b2, 2)
    A:rule(function() bx:sendto('from A', b2.addrinfo.inet(b2.ipv4, 2)) end)
    B:rule(function(p) if p.payload == 'from A' then ay:recv() end end)
    ax:sendto('x', a2.addrinfo.inet(a2.ipv4, 2))
    t.eq(ay:recv(), 'x')
    t.raises(function() by:recv() end, 'packet rule 1 .-a packet rule cannot call into its own world')
    t.eq(by:recv(), 'from A')
end)

t.case('rules: nesting through other worlds is bounded', function()
    local worlds, socks = {}, {}
    for i = 1, 12 do
        local w = world(i)
        local a, b = w:host('a'), w:host('b')
        worlds[i] = w
        socks[i] = { udp(a, 1), udp(b, 2), b.addrinfo.inet(b.ipv4, 2) }
    end
    for i = 1, 11 do
        worlds[i]:rule(function() local s = socks[i + 1]; s[1]:sendto('n', s[3]) end)
    end
    socks[1][1]:sendto('n', socks[1][3])
    local failed = {}
    for i = 1, 12 do
        local ok, err = pcall(worlds[i].now, worlds[i])
        if not ok then
            failed[#failed + 1] = i
            t.has(err, 'packet rules nested too deep')
        end
    end
    t.deq(failed, { 9 })
end)

t.case('rules: an rng kept past its call raises; rng arguments are checked', function()
    local w, a, b, x, y, to = udp_world(9)
    local kept, errs = nil, {}
    w:rule(function(p, rng)
        kept = rng
        local function e(f) local ok, err = pcall(f); errs[#errs + 1] = ok and 'no error' or tostring(err) end
        e(function() rng:chance('x') end)
        e(function() rng:chance(2) end)
        e(function() rng:range(1.5, 2) end)
        e(function() rng:range(-1, 2) end)
        e(function() rng:range(5, 1) end)
        e(function() rng:duration(-1, 1) end)
        e(function() rng:duration(5, 1) end)
        e(function() rng.chance({}, 0.5) end)
        e(function() rng.range(p, 1, 2) end)
        t.is_type(rng:chance(0.5), 'boolean')
        local n = rng:range(3, 3)
        t.eq(n, 3)
        local d = rng:duration(1, 2)
        t.ok(d >= 1 and d <= 2)
        t.is_false(rng:chance(0))
        t.is_true(rng:chance(1))
    end)
    x:sendto('q', to)
    t.deq(drain(y), { 'q' })
    local want = {
        "bad argument #1 to 'chance' (number expected, got string)",
        "bad argument #1 to 'chance' (a probability from 0 to 1 expected)",
        "bad argument #1 to 'range' (integer expected, got number)",
        "bad argument #1 to 'range' (must not be negative)",
        "bad argument #2 to 'range' (must not be less than the first)",
        "bad argument #1 to 'duration' (milliseconds from 0 to 9.2e12 expected)",
        "bad argument #2 to 'duration' (must not be less than the first)",
        'llsocket.sim.rng expected, got table',
        'llsocket.sim.rng expected, got table',
    }
    for i, wnt in ipairs(want) do
        t.has(errs[i], wnt, 'check ' .. i)
    end
    t.raises(function() kept:chance(0.5) end, 'this rng belongs to a packet rule call that has returned')
    t.raises(function() kept:range(1, 2) end, 'has returned')
    -- kept and used inside a later call: still not the running call's
    w:rule(function() kept:duration(1, 2) end)
    x:sendto('r', to)
    t.raises(function() w:now() end, 'this rng belongs to a packet rule call that has returned')
end)

t.case('rules: bad arguments raise the standard errors', function()
    local w = world(1)
    w:host('a'); w:host('b')
    local other = world(2):host('x')
    local f = function() end
    t.raises(function() w:rule() end, "bad argument #1 to 'rule' %(function expected, got no value%)")
    t.raises(function() w:remove_rule('x') end, "bad argument #1 to 'remove_rule'")
    t.argerr(function() w:rule(5) end, 1, 'function expected, got number')
    t.argerr(function() w:rule(true, f) end, 1, 'function expected, got boolean')
    t.argerr(function() w:rule('zz', 'a', f) end, 1, 'no host "zz" in this world')
    t.argerr(function() w:rule('a', 'zz', f) end, 2, 'no host "zz" in this world')
    t.argerr(function() w:rule('a', other, f) end, 2, 'not a host of this world')
    t.argerr(function() w:rule('a', 5, f) end, 2, 'host name or host table expected, got number')
    t.argerr(function() w:rule('a', 'b') end, 3, 'function expected, got no value')
    t.argerr(function() w:rule('a', 'b', 'f') end, 3, 'function expected, got string')
    t.argerr(function() w:rule({}, 'b', f) end, 1, 'not a host of this world')
    t.argerr(function() w.rule(1, f) end, 1, 'llsocket.sim.world expected, got number')
    t.argerr(function() w:remove_rule() end, 1, 'integer expected, got no value')
    t.argerr(function() w:remove_rule('1') end, 1, 'integer expected, got string')
    t.argerr(function() w:remove_rule(1.5) end, 1, 'integer expected, got number')
    t.argerr(function() w.remove_rule({}, 1) end, 1, 'llsocket.sim.world expected, got table')
    t.is_false(w:remove_rule(0))
    t.is_false(w:remove_rule(-1))
    w:close()
    t.raises(function() w:rule(f) end, 'this world is gone')
    t.raises(function() w:remove_rule(1) end, 'this world is gone')
end)

t.case('rules: a failing rule fails world:run like a task, with the seed and the virtual time', function()
    local w = world(31)
    local s, c = w:host('server'), w:host('client')
    w:link(c, s, { latency = 5 })
    w:spawn(s, 'server', function()
        local l = assert(s.socket.new(s.AF_INET, s.SOCK_STREAM))
        assert(l:bind(s.addrinfo.inet(s.ipv4, 7)))
        assert(l:listen())
        local k = assert(l:accept())
        k:send(k:recv())
        k:close(); l:close()
    end)
    w:spawn(c, 'client', function()
        local k = assert(c.socket.new(c.AF_INET, c.SOCK_STREAM))
        assert(k:connect(c.addrinfo.inet(s.ipv4, 7)))
        k:send('ping')
        local r = k:recv()
        k:close()
        return r
    end)
    w:rule(s, c, function(p)
        if p.payload == 'ping' then error('the reply is cursed') end
    end)
    local err = t.raises(function() w:run() end, 'packet rule 1')
    t.has(err, 'the reply is cursed')
    t.has(err, 'seed 31')
    t.match(err, 'virtual time 0%.0%d+ s')
    t.has(err, 'tcp 10.0.0.1:7 -> 10.0.0.2:')
    -- the rest of the run goes on
    t.is_true(w:run())
    t.eq(w:tasks()[2].results[1], 'ping')
end)

t.case('rules: a rule that fails in the last step of a run fails that run, not the next call', function()
    -- (found while fuzzing world:rule: the run's last task step sent the packet, the run
    -- returned true, and the report was raised by whatever call came next)
    local w = world(32)
    local a, b = w:host('a'), w:host('b')
    local x = assert(a.socket.new(a.AF_INET, a.SOCK_DGRAM, 0, true))
    local y = assert(b.socket.new(b.AF_INET, b.SOCK_DGRAM, 0, true))
    assert(y:bind(b.addrinfo.inet(b.ipv4, 2)))
    w:rule(function() error('the rule fails') end)
    w:spawn(a, 'sender', function()
        x:sendto('q', a.addrinfo.inet(b.ipv4, 2))
        return 'sent'
    end)
    local err = t.raises(function() w:run() end, 'packet rule 1')
    t.has(err, 'the rule fails')
    t.eq(w:tasks()[1].results[1], 'sent')
    t.eq(y:recv(), 'q', 'the packet passed')
    t.is_type(w:now(), 'number', 'reported once')
    x:close(); y:close()
end)

t.case('rules: the collector may close the world\'s sockets and the world itself inside a rule', function()
    -- sockets left to the collector: closed at the next call into the world
    local w, a, b, x, y, to = udp_world(10)
    for i = 1, 5 do udp(a, 100 + i) end
    local gcs = 0
    w:rule(function()
        collectgarbage()
        collectgarbage()
        gcs = gcs + 1
    end)
    x:sendto('q', to)
    t.eq(gcs, 1)
    t.deq(drain(y), { 'q' })
    t.deq(w:open_fds(a), { x:fd() })
    -- the world collected while its rule runs (a host's socket call runs it): the rule
    -- finishes, the call returns, the host's next call says the world is gone
    local h, hx, hto
    ;(function()
        local w2 = world(11)
        h = w2:host('h')
        local g = w2:host('g')
        hx = udp(h, 1)
        udp(g, 2)
        hto = g.addrinfo.inet(g.ipv4, 2)
        w2:rule(function()
            collectgarbage()
            collectgarbage()
            return 'drop'
        end)
    end)()
    t.eq(hx:sendto('q', hto), 1)
    t.raises(function() hx:sendto('q', hto) end, 'the world of this host is gone')
    collectgarbage()
    collectgarbage()
end)

-- The rule threads anchored in the registry (nil without the debug library).
local function rule_threads()
    if not (debug and debug.getregistry) then return nil end
    local n = 0
    for k, v in pairs(debug.getregistry()) do
        if type(k) == 'userdata' and type(v) == 'table' then
            for _, x in pairs(v) do
                if type(x) == 'thread' then n = n + 1 end
            end
        end
    end
    return n
end

t.case('rules: a closed or collected world drops its rules (no leak)', function()
    local threads0 = rule_threads()
    local freed = 0
    local function counted()
        return t.on_gc(function() freed = freed + 1 end)
    end
    -- closed: the functions go even while the world object lives on
    local w = world(1)
    w:host('a')
    do
        local token = counted()
        w:rule(function() return token end)
        local token2 = counted()
        w:rule('a', 'a', function() return token2 end)
    end
    if threads0 then t.eq(rule_threads(), threads0 + 1, 'one thread for the world\'s rules') end
    w:close()
    collectgarbage()
    collectgarbage()
    t.eq(freed, 2)
    if threads0 then t.eq(rule_threads(), threads0, 'released by close') end
    -- collected: rules whose functions keep their world (a cycle) go with it
    collectgarbage()
    local before = collectgarbage('count')
    freed = 0
    local function make(i, rule)
        local w2 = world(i)
        local a, b = w2:host('a'), w2:host('b')
        local big = string.rep('x', 20000) .. i
        if rule then
            local token = counted()
            w2:rule(function(p) return #big > 0 and token and w2 and nil end)
        end
        local x, y = udp(a, 1), udp(b, 2)
        x:sendto('q', b.addrinfo.inet(b.ipv4, 2))
        t.eq(y:recv(), 'q')
        x:close(); y:close()
    end
    for i = 1, 50 do
        make(i, true)
    end
    -- (one more, without a rule: LuaJIT may keep the last world in a dead stack slot,
    -- which this call overwrites; worlds the module kept would stay whatever the slots hold.
    -- LuaJIT still keeps one of the 50 now and then, about 1 run in 50: it may miss one.)
    make(51, false)
    collectgarbage()
    collectgarbage()
    collectgarbage()
    local slack = jit and 1 or 0
    t.ok(freed >= 50 - slack, 'the worlds with rules were collected: ' .. freed .. ' of 50')
    if threads0 then
        t.ok(rule_threads() <= threads0 + slack, 'released with the collected worlds')
    end
    local grown = collectgarbage('count') - before
    t.ok(grown < 500, 'memory after 50 worlds with rules: +' .. grown .. ' KiB')
end)

t.case('rules: hostile rules cannot break the world', function()
    local w, a, b, x, y, to = udp_world(12)
    local c, s = tcp(a, b, 80)
    local hostile = {
        function() error('plain') end,
        function() error(setmetatable({}, { __tostring = error })) end,
        function() error(setmetatable({}, { __index = error, __tostring = function() return {} end })) end,
        function() coroutine.yield('x') end,
        function() return setmetatable({}, { __index = function() error('index') end }) end,
        function() return 'delay', 0 / 0 end,
        function() return 'delay', 1 / 0 end,
        function() return string.rep('d', 100000) end,
        function() w:close() end,
        function() w:advance(1) end,
        function() collectgarbage() end,
        function(p, rng) coroutine.wrap(function() rng:chance(0.5); w:now() end)() end,
        function(p) p.payload = nil; p.len = -1 end,
        function() local co = coroutine.running(); return co and coroutine.resume(co) and nil end,
        function(p, rng) return rng:chance(0.3) and 'drop' or rng:chance(0.3) and 'hold' or 'duplicate' end,
    }
    local benign = { [11] = true, [13] = true, [15] = true }
    local failing, kept, reported = {}, {}, {}
    -- every call goes through pcall: a call that raises a report is counted, and
    -- each failing rule is reported exactly once
    local function call(f, ...)
        local ok, err = pcall(f, ...)
        if not ok then
            local text = tostring(err)
            t.has(text, 'llsocket.sim: packet rule ')
            for id in text:gmatch('llsocket%.sim: packet rule (%d+) ') do
                id = tonumber(id)
                t.is_nil(reported[id], 'rule ' .. id .. ' reported once')
                reported[id] = true
            end
        end
        return ok, err
    end
    for round = 1, 3 do
        for i, f in ipairs(hostile) do
            local ids = { w:rule(f) }
            if i % 3 == 0 then ids[2] = w:rule(a, b, f) end
            for _, id in ipairs(ids) do
                if benign[i] then kept[#kept + 1] = id else failing[#failing + 1] = id end
            end
        end
        for i = 1, 20 do
            call(x.sendto, x, ('r%d-%d'):format(round, i), to)
            call(c.send, c, 'stream ')
        end
        call(w.advance, w, 300)
        call(drain, y)
    end
    -- more traffic until every failing rule has seen a packet
    for i = 1, 200 do
        local all = true
        for _, id in ipairs(failing) do all = all and reported[id] end
        if all then break end
        call(x.sendto, x, 'more ' .. i, to)
        call(w.advance, w, 10)
    end
    for _, id in ipairs(failing) do
        t.is_true(reported[id], 'rule ' .. id .. ' failed and was reported')
        t.is_false(w:remove_rule(id))
    end
    -- the world is clean and works; the benign rules are still installed
    t.is_type(w:now(), 'number')
    for _, id in ipairs(kept) do
        t.is_nil(reported[id])
        t.is_true(w:remove_rule(id))
    end
    drain(y)
    x:sendto('clean', to)
    t.deq(drain(y), { 'clean' })
    s:nonblock(true)
    local got = ''
    while true do
        local m = s:recv()
        if not m then break end
        got = got .. m
    end
    t.ok(#got > 0)
    c:close(); s:close()
    t.is_false(w:closed())
end)

-- Runs `op(i)` for i = 1..rounds while the collector runs continuously and finalizers
-- made before each call raise if they run during it (before Lua 5.4 an error in a
-- finalizer propagates out of the allocation that ran it: see test/safety/raising_gc.lua).
-- Returns how many calls such an error cut short; `after(i)` runs unarmed after each.
local function finalizer_storm(rounds, op, after)
    if jit then
        -- (LuaJIT 2.1.0-beta3 itself crashes when a finalizer raises in compiled code: see
        -- test/safety/fuzz.lua. Off is not enough: the traces compiled before, by earlier
        -- tests and the runner, would still run, and a collection at one's exit raised there
        -- crashed about one run of this file in 30; flushed, nothing compiled is left.)
        jit.off()
        jit.flush()
        t.cleanup(function() jit.on() end)
    end
    local armed, cut = false, 0
    local function raising()
        local function fire()
            if armed then error('armed finalizer', 0) end
        end
        if newproxy then
            getmetatable(newproxy(true)).__gc = fire
        else
            setmetatable({}, { __gc = fire })
        end
    end
    local function armed_call(i)
        armed = true
        op(i)
        armed = false
    end
    -- (the settings in force, read by setting them: 5.1 has no other way)
    local pause, stepmul = collectgarbage('setpause', 0), collectgarbage('setstepmul', 1000)
    collectgarbage('setpause', pause)
    collectgarbage('setstepmul', stepmul)
    local ok, err = pcall(function()
        for i = 1, rounds do
            collectgarbage('setpause', 0)
            collectgarbage('setstepmul', 1000)
            for _ = 1, 10 do raising() end
            local done, e = pcall(armed_call, i)
            armed = false
            collectgarbage('setpause', pause)
            collectgarbage('setstepmul', stepmul)
            if not done then
                if not tostring(e):find('armed finalizer', 1, true) then error(e, 0) end
                cut = cut + 1
            end
            if after then after(i, not done) end
        end
    end)
    armed = false
    collectgarbage('setpause', pause)
    collectgarbage('setstepmul', stepmul)
    if not ok then error(err, 0) end
    return cut
end

t.case('a finalizer raising in the first spawn of a world leaves it able to spawn and run', function()
    -- (found by fuzz_sim.lua: an error raised while the scheduler set up a world's state
    -- left it half made, and every later spawn or run of that world failed)
    if _VERSION == 'Lua 5.4' then
        -- 5.4 turns errors in finalizers into warnings: no spawn is cut, every one counts
        local w = sim.new()
        local h = w:host('h')
        local cut = finalizer_storm(200, function(i)
            w:spawn(h, 'task-' .. i, function() return i end)
        end, function() end)
        t.eq(cut, 0, 'a finalizer error cut a spawn on 5.4')
        w:run()
        local tasks = w:tasks()
        t.eq(#tasks, 200)
        for i, task in ipairs(tasks) do
            t.deq(task.results, { n = 1, i }, task.name)
        end
        return
    end
    local w = sim.new()
    local h = w:host('h')
    local cut = finalizer_storm(10000, function()
        w:spawn(h, 'first', function() return 1 end)
    end, function(i, was_cut)
        if was_cut then
            local ok, err = pcall(w.spawn, w, h, 'second', function() return 'ran' end)
            t.is_true(ok, 'spawn after a cut spawn: ' .. tostring(err))
            local ran, e2 = pcall(w.run, w)
            t.is_true(ran, 'run after a cut spawn: ' .. tostring(e2))
            local seen = false
            for _, task in ipairs(w:tasks()) do
                if task.name == 'second' then
                    seen = true
                    t.deq(task.results, { n = 1, 'ran' })
                end
            end
            t.is_true(seen, 'the second task is listed')
        end
        w = sim.new({ seed = i })
        h = w:host('h')
    end)
    t.ok(cut > 0, 'no spawn was cut by a finalizer')
end)

t.case('a finalizer raising while world:run schedules leaves every task consistent; the next run goes on', function()
    -- (found by fuzz_sim.lua: an error raised in the scheduler between a task's step and
    -- the record of it, or at a call there on Lua 5.2, lost the step: a task stayed
    -- "running", neither queued nor waiting, or waited for a datagram its lost retry had
    -- taken, and the next run reported a deadlock; on Lua 5.4 nothing is cut)
    local w, rx, tx
    local function setup(seed)
        w = sim.new({ seed = seed })
        local h = w:host('h')
        local l = assert(h.socket.new(h.AF_INET, h.SOCK_DGRAM))
        assert(l:bind(h.addrinfo.inet(h.ipv4, 9)))
        local out = assert(h.socket.new(h.AF_INET, h.SOCK_DGRAM))
        rx = w:spawn(h, 'rx', function()
            local m = l:recv()
            coroutine.yield()
            return m
        end)
        tx = w:spawn(h, 'tx', function()
            coroutine.yield(1, 2)
            assert(out:sendto('x', h.addrinfo.inet(h.ipv4, 9)) == 1)
            return 'sent'
        end)
    end
    setup(0)
    local cut = finalizer_storm(3000, function() w:run() end, function(i, was_cut)
        if was_cut then
            local some_failed = false
            for _, task in ipairs(w:tasks()) do
                t.ne(task.status, 'running', 'a task left running')
                if task.status == 'waiting' then t.is_type(task.waits, 'string') end
                if task.status == 'failed' then some_failed = true end
            end
            local ok, err = pcall(w.run, w)
            if ok then
                if rx.status == 'done' then t.deq(rx.results, { n = 1, 'x' }) end
                if tx.status == 'done' then t.deq(tx.results, { n = 1, 'sent' }) end
            else
                -- a task whose own step the finalizer cut failed (its error is the
                -- finalizer's); then the other may wait for it in vain
                t.ok(some_failed or tostring(err):find('failed', 1, true), 'the next run: ' .. tostring(err))
            end
            if not some_failed and ok then
                t.eq(rx.status, 'done')
                t.eq(tx.status, 'done')
            end
        else
            t.deq(rx.results, { n = 1, 'x' })
            t.deq(tx.results, { n = 1, 'sent' })
        end
        setup(i)
    end)
    if _VERSION == 'Lua 5.4' then
        -- (5.4 turns errors in finalizers into warnings: no run is cut, every one completes)
        t.eq(cut, 0, 'a finalizer error cut a run on 5.4')
    else
        t.ok(cut > 0, 'no run was cut by a finalizer')
    end
end)

t.case('names are bounded: a host or group name over 255 bytes is refused, a pcap path over PATH_MAX fails', function()
    -- (under a memory limit a huge name's copies aborted the process: see
    -- test/safety/memlimit.lua, which checks these calls there)
    local w = world(1)
    local ok_name = string.rep('h', 255)
    t.eq(w:host(ok_name).name, ok_name)
    local long = string.rep('h', 256)
    t.argerr(function() w:host(long) end, 1, 'host name longer than 255 bytes')
    t.argerr(function() sim.install({ host = long }) end, 1, "field 'host': host name longer than 255 bytes")
    local a = w:host('a')
    w:group(string.rep('g', 255), a)
    t.argerr(function() w:group(long, a) end, 1, 'group name longer than 255 bytes')
    t.argerr(function() w:link_groups('g', long) end, 2, 'group name longer than 255 bytes')
    t.argerr(function() w:partition_groups(long, 'g') end, 1, 'group name longer than 255 bytes')
    local ok, err = w:pcap('/' .. string.rep('p', 5000))
    t.is_nil(ok)
    t.has(err, 'llsocket.sim: pcap: ')
    t.has(err, 'os error 36')
end)
