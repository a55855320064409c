-- llsocket-lua/test/safety/raising_gc_sim.lua: the llsocket.sim part of raising_gc.lua,
-- loaded by it with `dofile` and called with its check helpers and `measure`; returns how
-- many calls the finalizers broke.
return function(C, measure)
    -- a packet rule of llsocket.sim, whose packet table and rng are built (and the rule run)
    -- on the rule's own thread under lua_pcall: a finalizer raising there fails the rule,
    -- whose report the next call into the world raises (it carries the finalizer's error)
    local sim = require('llsocket.sim')
    local world = sim.new({ seed = 1 })
    local ha, hb = world:host('a'), world:host('b')
    local sx = assert(ha.socket.new(ha.AF_INET, ha.SOCK_DGRAM, 0, true))
    local sy = assert(hb.socket.new(hb.AF_INET, hb.SOCK_DGRAM, 0, true))
    assert(sy:bind(hb.addrinfo.inet(hb.ipv4, 2)))
    local sto = ha.addrinfo.inet(hb.ipv4, 2)
    local rule_ids = {}
    local broken = measure('a packet rule (llsocket.sim)', function(i)
        for k, id in pairs(rule_ids) do
            world:remove_rule(id)
            rule_ids[k] = nil
        end
        rule_ids[i] = world:rule(function(pk, rng)
            return { pk.payload, pk.src, rng:chance(0.5) } and nil
        end)
        sx:sendto('m' .. i, sto)
        return sy:recv()
    end)
    while true do
        local ok, m = pcall(sy.recv, sy)
        if ok and not m then break end
    end
    sx:sendto('after', sto)
    C.check(sy:recv() == 'after' and world:live_sockets() == 2, 'the world works after the storm')
    sx:close(); sy:close()

    -- world:host: a finalizer raising while the host's module table is made must leave
    -- nothing behind (a raise at the first allocations lost the host's backend once: found
    -- by valgrind under fuzz_sim.lua; the valgrind run of this script may see such a loss,
    -- when a finalizer happens to raise at exactly those allocations)
    -- (names made beforehand: the call's first allocation is then its own, the cell's)
    local names = setmetatable({}, { __index = function(t, i)
        for k = i, i + 999 do t[k] = 'h' .. k end
        return t[i]
    end })
    -- (300 rounds at most: every host's module table stays until the state closes)
    broken = broken + measure('world:host (llsocket.sim)', function(i)
        return world:host(names[i])
    end, 300)
    C.check(world:host('last').name == 'last', 'hosts are made after the storm')
    world:close()
    return broken
end
