-- sim_rules.lua: packet rules with llsocket.sim — a Lua function sees every packet and
-- decides its fate: pass, drop, delay, duplicate, or hold it back behind the next one.
--
-- Three rules on a client and a server: the first SYN|ACK is lost (TCP retransmits it, so
-- the connect takes 200 virtual ms longer), every third datagram from the client is held
-- back behind the next one (the server sees them out of order), and the rest are dropped
-- or delayed by draws from the world's generator, so the same seed replays the same run.
local sim = require('llsocket.sim')

local function check(cond, msg)
    if not cond then
        error('sim_rules: ' .. msg, 2)
    end
    return cond
end

local function run(seed)
    local world = sim.new({ seed = seed })
    local client, server = world:host('client'), world:host('server')

    -- lose the first SYN|ACK (a retransmission is attempt 1)
    world:rule(function(p)
        if p.proto == 'tcp' and p.flags == 'SA' and p.attempt == 0 then
            return 'drop'
        end
    end)
    local l = check(server.socket.new(server.AF_INET, server.SOCK_STREAM))
    check(l:bind(server.addrinfo.inet(server.ipv4, 7)), 'bind')
    check(l:listen(), 'listen')
    local c = check(client.socket.new(client.AF_INET, client.SOCK_STREAM))
    check(c:connect(client.addrinfo.inet(server.ipv4, 7)), 'connect')
    local s = check(l:accept())
    local connected = world:now()
    check(connected >= 200, 'the lost SYN|ACK costs a retransmission')

    -- datagrams client -> server: every third one held back, the rest dropped or
    -- delayed at random (one way: the rule does not see server -> client)
    local n = 0
    world:rule(client, server, function(p, rng)
        if p.proto ~= 'udp' then return end
        n = n + 1
        if n % 3 == 0 then return 'hold' end
        if rng:chance(0.2) then return 'drop' end
        return 'delay', rng:duration(1, 5)
    end)
    local rx = check(server.socket.new(server.AF_INET, server.SOCK_DGRAM, 0, true))
    check(rx:bind(server.addrinfo.inet(server.ipv4, 9)), 'bind udp')
    local tx = check(client.socket.new(client.AF_INET, client.SOCK_DGRAM, 0, true))
    local to = client.addrinfo.inet(server.ipv4, 9)
    for i = 1, 12 do
        tx:sendto(tostring(i), to)
        world:advance(10)
    end
    world:advance(200)
    local got = {}
    while true do
        local m = rx:recv()
        if not m then break end
        got[#got + 1] = m
    end
    local inversions = 0
    for i = 2, #got do
        if tonumber(got[i]) < tonumber(got[i - 1]) then inversions = inversions + 1 end
    end
    check(inversions > 0, 'held datagrams arrive after the next one: ' .. table.concat(got, ' '))
    c:close(); s:close(); l:close(); rx:close(); tx:close()
    return connected, table.concat(got, ' '), world:digest(), world
end

local seed = tonumber(arg and arg[1]) or 42
local t1, got1, d1, w1 = run(seed)
local t2, got2, d2 = run(seed)
check(t1 == t2 and got1 == got2 and d1 == d2, 'the same seed replays the same run')
print(string.format('seed %d: connected after %.3f virtual ms (a lost SYN|ACK); '
    .. 'datagrams 1-12 in arrival order: %s; digest %s', seed, t1, got1, d1))
print(w1:replay_hint())
