-- multicast.lua: IPv4 multicast on the loopback interface.
--
-- A receiver bound to a group address in 239.255.0.0/16 (port chosen by the
-- kernel) joins the group on the loopback interface; a sender sets
-- IP_MULTICAST_IF to the loopback interface, IP_MULTICAST_LOOP on and TTL 1,
-- and sends to the group. Checked: nothing is delivered before the join, the
-- datagrams arrive after it with the sender's address, and nothing after
-- leaving the group.
--
-- Traffic stays on this machine: nothing is sent unless the outgoing multicast
-- interface was set to loopback. If the kernel refuses the join (some
-- sandboxes), the example prints the error, still checks the option
-- getters/setters, and says plainly that delivery was NOT tested.
local llsocket = require('llsocket')
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local AF_INET, SOCK_DGRAM = llsocket.AF_INET, llsocket.SOCK_DGRAM

local LO = llsocket.env.os == 'linux' and 'lo' or 'lo0'
-- a group in the organisation-local range 239.255.0.0/16, varied per run so that
-- concurrent runs (or other programs on the machine) do not share it
math.randomseed(os.time() + (tonumber(tostring({}):match('0x(%x+)') or '0', 16) or 0) % 100000)
local GROUP = string.format('239.255.%d.%d', math.random(1, 254), math.random(1, 254))

local function check(cond, msg, err)
    if not cond then
        error('multicast: ' .. msg .. (err ~= nil and (': ' .. tostring(err)) or ''), 2)
    end
    return cond
end

-- sender options: interface, loop, ttl (getter/setter pairs return the old value)
local sender = check(socket.new(AF_INET, SOCK_DGRAM))
local prev_if, iferr = sender:mcastif(LO)
check(iferr == nil, 'mcastif(' .. LO .. ')', iferr)
check(prev_if == nil, 'a fresh socket has no multicast interface')
check(sender:mcastif() == LO, 'mcastif() reads back ' .. LO)
local prev_loop = sender:mcastloop(true)
check(type(prev_loop) == 'boolean' and sender:mcastloop() == true, 'mcastloop(true)')
local prev_ttl = check(sender:mcastttl(1))
check(sender:mcastttl() == 1, 'mcastttl(1) reads back 1 (was ' .. prev_ttl .. ')')
print(string.format('multicast: sender interface %s, loop on (was %s), ttl 1 (was %d)', LO,
    tostring(prev_loop), prev_ttl))

-- the options belong to datagram sockets only
local tcp = check(socket.new(AF_INET, llsocket.SOCK_STREAM))
local v, terr = tcp:mcastttl()
check(v == nil and terr and terr.type == llsocket.errno.ESOCKTNOSUPPORT, 'mcastttl on TCP must fail', terr)
tcp:close()

-- receiver bound to the group address
local receiver = check(socket.new(AF_INET, SOCK_DGRAM, 0, true))
check(receiver:reuseaddr(true) ~= nil, 'reuseaddr')
check(receiver:bind(check(addrinfo.inet(GROUP, 0, SOCK_DGRAM))), 'bind to the group address')
local port = check(receiver:getsockname()):port()
local group = check(addrinfo.inet(GROUP, port, SOCK_DGRAM))
local src_port = 0

local function send(msg)
    -- safety: only ever send with the loopback interface selected
    check(sender:mcastif() == LO, 'refusing to send: the multicast interface is not ' .. LO)
    local n, err = sender:sendto(msg, group)
    check(n == #msg, 'sendto the group', err)
end

local function drain()
    local got = {}
    while receiver:recvable(200) do
        local msg, err, again, from = receiver:recvfrom(1500)
        check(msg or again, 'recvfrom', err)
        if msg then
            got[#got + 1] = msg
            check(from and from:addr() == '127.0.0.1', 'sender address is 127.0.0.1')
            src_port = from:port()
        end
    end
    return got
end

-- not a member yet: nothing arrives
send('before join')
check(#drain() == 0, 'a datagram arrived before joining the group')
print(string.format('multicast: %s:%d not joined yet, a datagram sent to it was not delivered', GROUP, port))

local ok, jerr = receiver:mcastjoin(group, LO)
if not ok then
    print(string.format('multicast: the kernel refused to join %s on %s: %s', GROUP, LO, tostring(jerr)))
    print('multicast: options checked; multicast DELIVERY WAS NOT TESTED in this environment')
    receiver:close()
    sender:close()
    return
end
print(string.format('multicast: joined %s on %s', GROUP, LO))

for i = 1, 3 do
    send('multicast datagram ' .. i)
end
local got = drain()
check(#got == 3, 'expected 3 datagrams, got ' .. #got)
for i = 1, 3 do
    check(got[i] == 'multicast datagram ' .. i, 'datagram ' .. i .. ' is ' .. tostring(got[i]))
end
check(src_port == check(sender:getsockname()):port(), 'source port is the sender\'s')
print(string.format('multicast: received 3 datagrams sent to the group from 127.0.0.1:%d', src_port))

check(receiver:mcastleave(group, LO), 'mcastleave')
send('after leave')
check(#drain() == 0, 'a datagram arrived after leaving the group')
local again_ok, lerr = receiver:mcastleave(group, LO)
check(again_ok == false and lerr, 'leaving twice must fail with an error')
print(string.format('multicast: left the group; nothing delivered after that; leaving again: %s', tostring(lerr)))

-- the reset form: an explicit nil clears the interface
check(sender:mcastif(nil) == LO and sender:mcastif() == nil, 'mcastif(nil) resets the interface')

check(receiver:close() and sender:close(), 'close')
print('multicast: ok')
