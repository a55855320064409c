-- sim_tasks.lua: a server and two clients as tasks on three simulated hosts, over lossy
-- links, with llsocket.sim (no kernel sockets, no real time).
--
-- Each task is ordinary blocking llsocket code: the server accepts and serves each
-- client in a task of its own, each client sends lines and reads the replies. A call that
-- would wait suspends only its task; world:run moves the others and the virtual clock.
-- The run ends when every task has returned; a task error, or a deadlock, would end it
-- with a report naming the seed, the task, its host and the virtual time. The same seed
-- replays the same run, event for event.
--
--   lua5.4 examples/sim_tasks.lua [seed]      (or any of Lua 5.1-5.4, LuaJIT; llsocket-lua)
local sim = require('llsocket.sim')

local function check(cond, msg, err)
    if not cond then
        error('sim_tasks: ' .. msg .. (err ~= nil and (': ' .. tostring(err)) or ''), 2)
    end
    return cond
end

local LINES = 10

local function run(seed)
    local world = sim.new({ seed = seed })
    local server = world:host('server')
    local clients = { world:host('alice'), world:host('bob') }
    for _, h in ipairs(clients) do
        world:link(h, server, { latency = { 5, 40 }, loss = 0.1, reorder = 0.05 })
    end

    -- the server: accept each client, serve it in a task of its own (upper-case echo)
    world:spawn(server, 'server', function()
        local l = check(server.socket.new(server.AF_INET, server.SOCK_STREAM))
        check(l:bind(server.addrinfo.inet(server.ipv4, 7)), 'bind')
        check(l:listen(), 'listen')
        for i = 1, #clients do
            local c, err = l:accept()
            check(c, 'accept', err)
            world:spawn(server, 'session-' .. i, function()
                local served = 0
                while true do
                    local line = c:recv()
                    if not line then
                        break -- the client closed
                    end
                    check(c:send(line:upper()) == #line, 'reply')
                    served = served + 1
                end
                c:close()
                return served
            end)
        end
        l:close()
    end)

    -- the clients: connect, send lines, check each reply
    for _, h in ipairs(clients) do
        world:spawn(h, 'client ' .. h.name, function()
            local c = check(h.socket.new(h.AF_INET, h.SOCK_STREAM))
            check(c:connect(h.addrinfo.inet(server.ipv4, 7)), 'connect')
            for i = 1, LINES do
                local line = ('line %d from %s'):format(i, h.name)
                check(c:send(line) == #line, 'send')
                local reply = ''
                while #reply < #line do
                    reply = reply .. check(c:recv(), 'reply')
                end
                check(reply == line:upper(), 'reply ' .. i, reply)
            end
            c:close()
            return world:now()
        end)
    end

    check(world:run(), 'every task returned')
    local finished = {}
    for _, task in ipairs(world:tasks()) do
        check(task.status == 'done', task.name)
        if task.name:find('^client') then
            finished[#finished + 1] = ('%s at %.3f ms'):format(task.name, task.results[1])
        end
    end
    return world, table.concat(finished, ', '), world:digest()
end

local seed = tonumber(arg and arg[1]) or 42
local w1, f1, d1 = run(seed)
local _, f2, d2 = run(seed)
check(d1 == d2 and f1 == f2, 'the same seed replays the same run')
print(('seed %d: %d lines each; %s; virtual time %.3f ms, %d trace events, digest %s'):format(seed, LINES, f1,
    w1:now(), #w1:trace(), d1))
print(w1:replay_hint())
