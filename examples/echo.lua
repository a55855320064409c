-- echo.lua: a non-blocking TCP echo server and its clients in one process.
--
-- The server listens on 127.0.0.1 (port 0: the kernel picks one, read back with
-- getsockname). Several non-blocking clients connect, each sends a few messages
-- (one of them large enough to fill the socket buffers, so partial sends and
-- would-block returns really happen), shuts down its write side and checks that
-- every byte came back in order. The loop waits with sock:recvable()/sendable()
-- (timeouts in milliseconds) and is bounded in iterations and wall time.
--
-- Run: cargo run --release -p llsocket-lua -- examples/echo.lua
--  or: LUA_CPATH="<dir>/?.so;;" lua5.4 examples/echo.lua
local llsocket = require('llsocket')
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local AF_INET, SOCK_STREAM = llsocket.AF_INET, llsocket.SOCK_STREAM

local NCLIENTS = 4
local MAX_ITER = 200000
local DEADLINE = os.time() + 20

local function check(cond, msg, err)
    if not cond then
        error('echo: ' .. msg .. (err ~= nil and (': ' .. tostring(err)) or ''), 2)
    end
    return cond
end

-- the messages of client i (deterministic content, different sizes)
local function messages(i)
    local big = {}
    for k = 1, 4096 do
        big[k] = string.format('%02d:%05d|', i, k) -- 9 bytes each
    end
    local list = {
        'hello from client ' .. i .. '\n',
        string.rep(string.char(65 + i), 1000 + i),
        '\0binary\255\1\2 bytes\0',
    }
    if i == 1 or i == NCLIENTS then
        -- 4096 * 9 * 8 = 294912 bytes: more than the loopback socket buffers hold at once
        list[#list + 1] = string.rep(table.concat(big), 8)
    end
    return list
end

-- server ------------------------------------------------------------------
local server = check(socket.new(AF_INET, SOCK_STREAM, 0, true))
check(server:reuseaddr(true) ~= nil, 'reuseaddr')
-- small kernel buffers (inherited by accepted sockets) so that the large messages
-- cannot be sent in one go: partial sends and would-block returns do happen
check(server:sndbuf(8192), 'sndbuf')
check(server:rcvbuf(8192), 'rcvbuf')
check(server:bind(check(addrinfo.inet('127.0.0.1', 0, SOCK_STREAM))), 'bind')
check(server:listen(), 'listen')
local bound = check(server:getsockname())
local port = bound:port()
check(port > 0 and bound:addr() == '127.0.0.1', 'getsockname gave ' .. tostring(bound:addr()))
print(string.format('echo: server listening on 127.0.0.1:%d (fd %d)', port, server:fd()))

-- nothing is pending yet: a 50 ms readiness wait must time out
local ready, err, timeout = server:recvable(50)
check(ready == false and err == nil and timeout == true, 'idle recvable(50) should time out', err)

local stats = { again_send = 0, again_recv = 0, partial = 0, accepted = 0 }
local conns = {} -- server side: { sock = , out = pending bytes, eof = bool }

local function server_step()
    local progress = false
    -- accept everything that is queued
    while true do
        local c, aerr, again = server:accept()
        if c then
            check(c:nonblock() == true, 'accepted socket inherits O_NONBLOCK')
            conns[#conns + 1] = { sock = c, out = {}, eof = false }
            stats.accepted = stats.accepted + 1
            progress = true
        elseif again then
            break
        else
            check(false, 'accept', aerr)
        end
    end
    for _, cn in ipairs(conns) do
        if cn.sock then
            if not cn.eof and cn.sock:recvable(0) then
                local data, rerr, again = cn.sock:recv(65536)
                if data then
                    cn.out[#cn.out + 1] = data
                    progress = true
                elseif again then
                    stats.again_recv = stats.again_recv + 1
                elseif rerr then
                    check(false, 'server recv', rerr)
                else
                    cn.eof = true -- no values: the client shut down its side
                    progress = true
                end
            end
            if #cn.out > 0 then
                local pending = table.concat(cn.out)
                local n, serr, again = cn.sock:send(pending)
                check(n, 'server send', serr)
                if again then
                    if n == 0 then
                        stats.again_send = stats.again_send + 1
                    else
                        stats.partial = stats.partial + 1
                    end
                end
                cn.out = n < #pending and { pending:sub(n + 1) } or {}
                progress = progress or n > 0
            end
            if cn.eof and #cn.out == 0 then
                check(cn.sock:close(), 'server close')
                cn.sock = nil
            end
        end
    end
    return progress
end

-- clients -----------------------------------------------------------------
local target = check(addrinfo.inet('127.0.0.1', port, SOCK_STREAM))
local clients = {}
for i = 1, NCLIENTS do
    local c = check(socket.new(AF_INET, SOCK_STREAM, 0, true))
    check(c:sndbuf(8192), 'sndbuf')
    check(c:rcvbuf(8192), 'rcvbuf')
    local ok, cerr, again = c:connect(target)
    local tries = 0
    while not ok and again and tries < 100 do
        tries = tries + 1
        c:sendable(10)
        ok, cerr, again = c:connect(target)
    end
    check(ok, 'connect', cerr)
    if cerr then
        -- EINPROGRESS: wait until writable, then read the outcome with sock:error()
        check(c:sendable(2000), 'connect did not complete within 2 s')
        local soerr = c:error()
        check(soerr == nil, 'connect failed', soerr)
    end
    -- nothing has been echoed yet: a receive now would block
    local none, rerr, ragain = c:recv()
    check(none == nil and rerr == nil and ragain == true, 'recv on an idle socket must say again', rerr)
    stats.again_recv = stats.again_recv + 1
    local msgs = messages(i)
    local all = table.concat(msgs)
    clients[i] = {
        id = i,
        sock = c,
        tosend = all,
        sent = 0,
        got = {},
        nget = 0,
        expect = all,
        shut = false,
        done = false,
    }
    print(string.format('echo: client %d connected from port %d, will send %d messages, %d bytes',
        i, check(c:getsockname()):port(), #msgs, #all))
end

local function client_step(cl)
    local progress = false
    local c = cl.sock
    if cl.sent < #cl.tosend then
        if c:sendable(0) then
            -- offer everything that is left; the kernel takes what fits
            local n, serr, again = c:send(cl.tosend:sub(cl.sent + 1))
            check(n, 'client send', serr)
            if again then
                if n == 0 then
                    stats.again_send = stats.again_send + 1
                else
                    stats.partial = stats.partial + 1
                end
            end
            cl.sent = cl.sent + n
            progress = n > 0
        end
    elseif not cl.shut then
        check(c:shutdown(llsocket.SHUT_WR), 'shutdown')
        cl.shut = true
        progress = true
    end
    if c:recvable(0) then
        local data, rerr, again = c:recv(65536)
        if data then
            cl.got[#cl.got + 1] = data
            cl.nget = cl.nget + #data
            check(cl.nget <= #cl.expect, 'client ' .. cl.id .. ' got more bytes than it sent')
            progress = true
        elseif again then
            stats.again_recv = stats.again_recv + 1
        elseif rerr then
            check(false, 'client recv', rerr)
        else
            -- EOF from the server: everything must have come back
            local echoed = table.concat(cl.got)
            check(echoed == cl.expect, string.format('client %d: echoed %d bytes differ from the %d sent',
                cl.id, #echoed, #cl.expect))
            check(c:close(), 'client close')
            cl.done = true
            print(string.format('echo: client %d got its %d bytes back intact', cl.id, #echoed))
            progress = true
        end
    end
    return progress
end

-- event loop --------------------------------------------------------------
local iter, remaining = 0, NCLIENTS
while remaining > 0 do
    iter = iter + 1
    check(iter <= MAX_ITER, 'too many loop iterations')
    check(os.time() <= DEADLINE, 'did not finish within 20 s')
    local progress = server_step()
    remaining = 0
    local waiting
    for _, cl in ipairs(clients) do
        if not cl.done then
            if client_step(cl) then
                progress = true
            end
            if not cl.done then
                remaining = remaining + 1
                waiting = waiting or cl
            end
        end
    end
    if not progress and waiting then
        -- nothing moved: block (briefly) until the first unfinished client can read
        waiting.sock:recvable(5)
    end
end

check(stats.accepted == NCLIENTS, 'accepted ' .. stats.accepted .. ' connections')
for _, cn in ipairs(conns) do
    check(cn.sock == nil, 'server connection left open')
end
check(server:close(), 'server close')
check(server:fd() == -1, 'fd() is -1 after close')
print(string.format('echo: ok: %d clients, %d loop iterations, %d would-block sends, %d partial sends, '
    .. '%d would-block receives', NCLIENTS, iter, stats.again_send, stats.partial, stats.again_recv))
