-- fdpass.lua: pass socket descriptors over a unix socket with sendfd/recvfd.
--
-- A control socketpair carries descriptors (SCM_RIGHTS). First one end of a
-- second socketpair is passed: the sender closes its copy, the receiver wraps
-- the received descriptor with socket.wrap and talks over it, and closing it
-- gives the other end end-of-stream — so the received descriptor really was
-- that socket. Then a bound UDP socket is passed and receives a datagram sent
-- to its port through the new descriptor.
local llsocket = require('llsocket')
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local AF_UNIX, AF_INET = llsocket.AF_UNIX, llsocket.AF_INET
local SOCK_STREAM, SOCK_DGRAM = llsocket.SOCK_STREAM, llsocket.SOCK_DGRAM

local function check(cond, msg, err)
    if not cond then
        error('fdpass: ' .. msg .. (err ~= nil and (': ' .. tostring(err)) or ''), 2)
    end
    return cond
end

local function recv_wait(s, want)
    check(s:recvable(1000), 'nothing to read within 1 s')
    local data, err = s:recv(want)
    check(data, 'recv', err)
    return data
end

local ctl = check(socket.pair(SOCK_STREAM))
local sender, receiver = ctl[1], ctl[2]

-- 1. pass one end of another socketpair ------------------------------------
local data = check(socket.pair(SOCK_STREAM))
local keep, give = data[1], data[2]
local given_fd = give:fd()
local zero, err = sender:sendfd(given_fd)
check(zero == 0, 'sendfd must return 0', err)
check(receiver:recvable(1000), 'descriptor did not arrive')
local fd, rerr = receiver:recvfd()
check(type(fd) == 'number', 'recvfd', rerr)
check(fd ~= given_fd, 'the received descriptor is a new number')
print(string.format('fdpass: sent fd %d, received it as fd %d', given_fd, fd))

-- the sender's copy can go now: the receiver's descriptor keeps the socket open
check(give:close(), 'close the sent copy')
local got = check(socket.wrap(fd))
check(got:family() == AF_UNIX and got:socktype() == SOCK_STREAM, 'wrapped socket is an AF_UNIX stream')
check(got:nonblock() == false, 'wrap without nonblock keeps the blocking mode')

check(keep:send('hello through the passed descriptor') == 35, 'send to the passed socket')
check(recv_wait(got) == 'hello through the passed descriptor', 'data read through the received fd')
check(got:send('and back') == 8, 'reply')
check(recv_wait(keep) == 'and back', 'reply read on the other end')
print('fdpass: talked both ways over the received descriptor')

-- closing the received descriptor closes the last reference: keep sees end-of-stream
check(got:close(), 'close the received socket')
check(keep:recvable(1000), 'no end-of-stream within 1 s')
check(select('#', keep:recv()) == 0, 'recv after the peer closed must return no values')
check(keep:close(), 'close')
print('fdpass: closing the received descriptor gave the peer end-of-stream')

-- 2. pass a bound UDP socket --------------------------------------------------
local udp = check(socket.new(AF_INET, SOCK_DGRAM))
check(udp:bind(check(addrinfo.inet('127.0.0.1', 0, SOCK_DGRAM))), 'bind udp')
local port = check(udp:getsockname()):port()
check(sender:sendfd(udp:fd()) == 0, 'sendfd udp')
check(udp:close(), 'close the sent udp socket')

check(receiver:recvable(1000), 'udp descriptor did not arrive')
local flags = llsocket.MSG_CMSG_CLOEXEC -- Linux: the received descriptor is close-on-exec
local ufd = check(receiver:recvfd(flags))
local u = check(socket.wrap(ufd, true))
check(u:family() == AF_INET and u:socktype() == SOCK_DGRAM, 'wrapped socket is AF_INET/SOCK_DGRAM')
check(check(u:getsockname()):port() == port, 'the received socket is still bound to port ' .. port)
if flags then
    check(u:cloexec() == true, 'MSG_CMSG_CLOEXEC sets close-on-exec')
end

local client = check(socket.new(AF_INET, SOCK_DGRAM))
check(client:sendto('datagram for the passed socket', check(addrinfo.inet('127.0.0.1', port, SOCK_DGRAM))),
    'sendto')
check(recv_wait(u, 100) == 'datagram for the passed socket', 'datagram received through the passed fd')
print(string.format('fdpass: passed a UDP socket bound to port %d; it received a datagram as fd %d', port, ufd))

-- 3. recvfd with nothing to receive on a non-blocking socket says again -----
check(receiver:nonblock(true) == false, 'nonblock')
local none, nerr, again = receiver:recvfd()
check(none == nil and nerr == nil and again == true, 'recvfd on an empty socket must say again', nerr)

for _, s in ipairs({ u, client, sender, receiver }) do
    check(s:close(), 'close')
end
print('fdpass: ok')
