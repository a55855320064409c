-- udp.lua: UDP datagrams between two sockets on 127.0.0.1.
--
-- a and b are bound to port 0 (the kernel picks the ports). a sends to b with
-- sendto(); b reads with recvfrom() and checks the sender address; b answers
-- to the address it got. Then a connects to b and uses plain send()/recv().
-- Datagram boundaries are kept (two sends are two receives), an empty datagram
-- is received as "" (not end-of-stream), and a receive with nothing queued says
-- "again" instead of blocking.
local llsocket = require('llsocket')
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local AF_INET, SOCK_DGRAM = llsocket.AF_INET, llsocket.SOCK_DGRAM

local function check(cond, msg, err)
    if not cond then
        error('udp: ' .. msg .. (err ~= nil and (': ' .. tostring(err)) or ''), 2)
    end
    return cond
end

local function udp_socket()
    local s = check(socket.new(AF_INET, SOCK_DGRAM, 0, true))
    check(s:bind(check(addrinfo.inet('127.0.0.1', 0, SOCK_DGRAM))), 'bind')
    return s, check(s:getsockname())
end

-- receive one datagram, waiting at most 1 s
local function recv_from(s)
    check(s:recvable(1000), 'no datagram within 1 s')
    local msg, err, again, ai = s:recvfrom(2048)
    check(msg, 'recvfrom', err)
    check(not again, 'recvfrom said again after recvable')
    return msg, ai
end

local a, a_addr = udp_socket()
local b, b_addr = udp_socket()
print(string.format('udp: a on 127.0.0.1:%d, b on 127.0.0.1:%d', a_addr:port(), b_addr:port()))

-- nothing queued yet
local none, err, again = b:recvfrom()
check(none == nil and err == nil and again == true, 'empty queue must give nil, nil, true', err)

-- a -> b with sendto, two datagrams keep their boundaries
for _, m in ipairs({ 'ping #1', 'ping #2 (a longer one)' }) do
    local n, serr, partial = a:sendto(m, b_addr)
    check(n == #m and serr == nil and partial == false, 'sendto returned ' .. tostring(n), serr)
end
local m1, from1 = recv_from(b)
local m2, from2 = recv_from(b)
check(m1 == 'ping #1' and m2 == 'ping #2 (a longer one)', 'datagrams arrived as ' .. m1 .. ' / ' .. m2)
check(from1:addr() == '127.0.0.1' and from1:port() == a_addr:port(), 'sender address of datagram 1')
check(from2:port() == a_addr:port(), 'sender address of datagram 2')
print(string.format('udp: b got %q and %q from %s:%d', m1, m2, from1:addr(), from1:port()))

-- b answers to the address recvfrom reported
local reply = 'pong to ' .. from1:port()
check(b:sendto(reply, from1) == #reply, 'reply sendto')
local r, rfrom = recv_from(a)
check(r == reply and rfrom:port() == b_addr:port(), 'a got the reply ' .. r)
print(string.format('udp: a got %q from port %d', r, rfrom:port()))

-- binary payload with NUL bytes is kept exactly
local bin = '\0\1\2\255 udp \0'
check(a:sendto(bin, b_addr) == #bin, 'binary sendto')
check(recv_from(b) == bin, 'binary datagram changed')

-- connected UDP: send()/recv() without addresses
check(a:connect(b_addr), 'connect a to b')
check(b:connect(a_addr), 'connect b to a')
local peer = check(a:getpeername())
check(peer:port() == b_addr:port(), 'getpeername after connect')
for i = 1, 5 do
    local msg = 'connected datagram ' .. i
    local n, serr = a:send(msg)
    check(n == #msg, 'send', serr)
    check(b:recvable(1000), 'recvable')
    local got, rerr = b:recv(2048)
    check(got == msg, 'recv got ' .. tostring(got), rerr)
end
print('udp: 5 datagrams over connected sockets with send/recv')

-- an empty datagram: zero bytes on a datagram socket is "", not end-of-stream
-- (send refuses an empty string, so build it with sendmsg and an empty msghdr)
local mh = llsocket.msghdr.new()
local n0, e0 = b:sendmsg(mh)
check(n0 == 0, 'empty sendmsg', e0)
check(a:recvable(1000), 'empty datagram did not arrive')
local empty, eerr = a:recv()
check(empty == '', 'empty datagram must be received as ""', eerr)
print('udp: empty datagram received as ""')

-- a datagram larger than the receive buffer is truncated to bufsize
local long = string.rep('x', 1000)
check(a:send(long) == 1000, 'long send')
check(b:recvable(1000), 'long datagram did not arrive')
local cut = b:recv(10)
check(cut == string.rep('x', 10), 'truncated datagram must be the first 10 bytes')
local rest, _, ragain = b:recv()
check(rest == nil and ragain == true, 'the rest of a truncated datagram is dropped')
print('udp: a 1000-byte datagram read with bufsize 10 gives 10 bytes, the rest is dropped')

check(a:close() and b:close(), 'close')
print('udp: ok')
