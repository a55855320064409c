-- sim_naive_client.lua: a seed sweep on the simulator finds a real bug in a deliberately
-- naive client (one that assumes `send` sends everything), and replays it.
--
--   lua5.4 examples/sim_naive_client.lua        (any interpreter with llsocket.so on its path)
--
-- The client host has short writes injected (`short_io`), as a busy kernel may do. The
-- naive client calls `send` once; the careful one loops until every byte went out. Each
-- seed is one run of the scenario; the same seed always takes the same path.
local sim = require('llsocket.sim')

local MESSAGE = string.rep('0123456789', 100) -- 1000 bytes

-- One run: returns what the server received.
local function scenario(seed, careful)
    local w = sim.new{seed = seed}
    local client, server = w:host('client'), w:host('server')
    w:faults(client, {short_io = 0.3})
    local l = assert(server.socket.new(server.AF_INET, server.SOCK_STREAM))
    assert(l:bind(server.addrinfo.inet(server.ipv4, 7000)))
    assert(l:listen())
    local c = assert(client.socket.new(client.AF_INET, client.SOCK_STREAM))
    assert(c:connect(client.addrinfo.inet(server.ipv4, 7000)))
    if careful then
        local sent = 0
        while sent < #MESSAGE do
            local n = c:send(MESSAGE:sub(sent + 1))
            sent = sent + (n or 0)
        end
    else
        c:send(MESSAGE) -- the bug: a short write loses the rest
    end
    c:close()
    local s = assert(l:accept())
    local got = {}
    while true do
        local data = s:recv()
        if not data then break end -- end of stream
        got[#got + 1] = data
    end
    s:close()
    l:close()
    w:close()
    return table.concat(got)
end

-- The sweep: which seeds break each client?
local function sweep(careful)
    local failing = {}
    for seed = 1, 40 do
        if scenario(seed, careful) ~= MESSAGE then failing[#failing + 1] = seed end
    end
    return failing
end

local naive = sweep(false)
print(string.format('sim_naive_client: the naive client loses data with %d of 40 seeds: %s',
    #naive, table.concat(naive, ' ')))
assert(#naive > 0, 'the sweep should find the bug')
local careful = sweep(true)
print(string.format('sim_naive_client: the careful client fails with %d of 40 seeds', #careful))
assert(#careful == 0, 'the careful client should pass every seed')

-- Replay the first failing seed: the same loss, every time, and the same trace twice.
local seed = naive[1]
local first = scenario(seed, false)
assert(first ~= MESSAGE and scenario(seed, false) == first, 'a replay takes the same path')
local got, digest = sim.check_determinism({seed = seed}, function(w)
    -- the same program on the world check_determinism provides
    local client, server = w:host('client'), w:host('server')
    w:faults(client, {short_io = 0.3})
    local l = assert(server.socket.new(server.AF_INET, server.SOCK_STREAM))
    assert(l:bind(server.addrinfo.inet(server.ipv4, 7000)))
    assert(l:listen())
    local c = assert(client.socket.new(client.AF_INET, client.SOCK_STREAM))
    assert(c:connect(client.addrinfo.inet(server.ipv4, 7000)))
    local n = c:send(MESSAGE)
    c:close()
    local s = assert(l:accept())
    s:close()
    l:close()
    return n
end)
assert(got, digest)
print(string.format('sim_naive_client: seed %d replays: %d of %d bytes arrive, sent %d in one call (digest %s)',
    seed, #first, #MESSAGE, got, digest))
print('sim_naive_client: ok')
