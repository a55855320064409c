-- sendmsg.lua: scatter/gather I/O with sendmsg/recvmsg, an iovec and a msghdr.
--
-- 1. gather: three iovec elements go out in one sendmsg, the peer reads them
--    as one byte stream;
-- 2. scatter: recvmsg fills the elements of a pre-sized iovec in place;
-- 3. UDP: the destination is the msghdr's name for sendmsg, and recvmsg stores
--    the sender's address into the attached name;
-- 4. ancillary data: two descriptors travel in one SCM_RIGHTS control message
--    (cmsghdr.rights / cmsghdrs) next to the payload.
local llsocket = require('llsocket')
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local msghdr, cmsghdr, cmsghdrs, iovec = llsocket.msghdr, llsocket.cmsghdr, llsocket.cmsghdrs, llsocket.iovec
local SOCK_STREAM, SOCK_DGRAM, AF_INET = llsocket.SOCK_STREAM, llsocket.SOCK_DGRAM, llsocket.AF_INET

local function check(cond, msg, err)
    if not cond then
        error('sendmsg: ' .. msg .. (err ~= nil and (': ' .. tostring(err)) or ''), 2)
    end
    return cond
end

local pair = check(socket.pair(SOCK_STREAM))
local a, b = pair[1], pair[2]

-- 1. gather ------------------------------------------------------------------
local out = iovec.new()
local parts = { 'head|', 'body with \0 byte|', 'tail' }
for i, p in ipairs(parts) do
    check(out:add(p) == i, 'iov:add returns the element index')
end
local total = #table.concat(parts)
check(#out == 3 and out:bytes() == total, 'iovec holds 3 elements, ' .. total .. ' bytes')
local mh = msghdr.new()
check(mh:iov(out) == nil, 'no iovec was attached before')
local n, err, partial = a:sendmsg(mh)
check(n == total and err == nil and partial == false, 'sendmsg sent ' .. tostring(n), err)
check(b:recvable(1000), 'nothing arrived')
local stream = check(b:recv())
check(stream == table.concat(parts), 'the peer read the elements as one stream')
print(string.format('sendmsg: gathered %d elements into one %d-byte sendmsg', #out, n))

-- 2. scatter -----------------------------------------------------------------
check(b:send('0123456789abcdefghij') == 20, 'send')
local inp = iovec.new()
inp:addn(4)
inp:addn(6)
inp:addn(32)
local rmh = msghdr.new()
rmh:iov(inp)
check(a:recvable(1000), 'nothing arrived')
local got, rerr = a:recvmsg(rmh)
check(got == 20, 'recvmsg received ' .. tostring(got), rerr)
check(inp:get(1) == '0123' and inp:get(2) == '456789', 'first elements filled in order')
check(inp:get(3):sub(1, 10) == 'abcdefghij', 'third element holds the rest')
check(#inp == 3 and inp:bytes() == 42, 'element count and sizes unchanged')
check(inp:concat(0, got) == '0123456789abcdefghij', 'concat(0, n) is the received data')
print(string.format('sendmsg: recvmsg scattered %d bytes over elements of 4, 6 and 32 bytes', got))

-- a partial send is resumed with iov:consume(n)
check(out:consume(5) == total - 5, 'consume drops the first element')
check(a:sendmsg(mh) == total - 5, 'sendmsg of the consumed iovec')
check(b:recvable(1000), 'nothing arrived')
check(b:recv() == table.concat(parts, '', 2), 'after consume(5) only body and tail are sent')

-- 3. UDP with a destination name and the sender's address ---------------------
local u1 = check(socket.new(AF_INET, SOCK_DGRAM))
local u2 = check(socket.new(AF_INET, SOCK_DGRAM))
check(u1:bind(check(addrinfo.inet('127.0.0.1', 0, SOCK_DGRAM))), 'bind')
check(u2:bind(check(addrinfo.inet('127.0.0.1', 0, SOCK_DGRAM))), 'bind')
local dst = check(u2:getsockname())
local src_port = check(u1:getsockname()):port()

local dmh = msghdr.new()
local div = iovec.new()
div:add('udp ')
div:add('gathered')
dmh:iov(div)
dmh:name(dst)
check(u1:sendmsg(dmh) == 12, 'sendmsg to the name')

local from = check(addrinfo.inet('0.0.0.0', 0, SOCK_DGRAM)) -- overwritten by recvmsg
local rmh2 = msghdr.new()
local riov = iovec.new()
riov:addn(64)
rmh2:iov(riov)
rmh2:name(from)
check(u2:recvable(1000), 'datagram did not arrive')
check(u2:recvmsg(rmh2) == 12, 'recvmsg of the datagram')
check(riov:concat(0, 12) == 'udp gathered', 'datagram content')
check(from:addr() == '127.0.0.1' and from:port() == src_port, 'recvmsg stored the sender address')
print(string.format('sendmsg: UDP datagram to port %d via msghdr name; recvmsg reported sender port %d',
    dst:port(), from:port()))

-- 4. two descriptors in one SCM_RIGHTS message --------------------------------
local x = check(socket.pair(SOCK_STREAM))
local y = check(socket.pair(SOCK_STREAM))
local rights = check(cmsghdr.rights(x[2]:fd(), y[2]:fd()))
check(#rights == 8, 'two C ints of data')
local cm = cmsghdrs.new()
cm:push(rights)
local fmh = msghdr.new()
local fiov = iovec.new()
fiov:add('F')
fmh:iov(fiov)
fmh:control(cm)
check(a:sendmsg(fmh) == 1, 'sendmsg with SCM_RIGHTS')
x[2]:close()
y[2]:close()

local rcm = cmsghdrs.new()
rcm:push(cmsghdr.rights(-1, -1)) -- reserves room for two descriptors
local rfmh = msghdr.new()
local rfiov = iovec.new()
rfiov:addn(1)
rfmh:iov(rfiov)
rfmh:control(rcm)
check(b:recvable(1000), 'descriptors did not arrive')
check(b:recvmsg(rfmh) == 1 and rfiov:get(1) == 'F', 'payload byte next to the descriptors')
local msg = check(rcm:shift(), 'a control message arrived')
check(msg:level() == llsocket.SOL_SOCKET and msg:type() == llsocket.SCM_RIGHTS, 'it is SCM_RIGHTS')
local fd1, fd2 = msg:data()
check(type(fd1) == 'number' and type(fd2) == 'number' and fd1 ~= fd2, 'two descriptors received')
check(rcm:shift() == nil, 'only one control message')
local s1, s2 = check(socket.wrap(fd1)), check(socket.wrap(fd2))
check(x[1]:send('via first') == 9 and y[1]:send('via second') == 10, 'send on the kept ends')
check(s1:recvable(1000) and s1:recv() == 'via first', 'first received descriptor works')
check(s2:recvable(1000) and s2:recv() == 'via second', 'second received descriptor works')
print(string.format('sendmsg: passed two descriptors in one SCM_RIGHTS message, received as fds %d and %d',
    fd1, fd2))

for _, s in ipairs({ a, b, u1, u2, x[1], y[1], s1, s2 }) do
    check(s:close(), 'close')
end
print('sendmsg: ok')
