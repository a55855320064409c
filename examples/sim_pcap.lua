-- sim_pcap.lua: record a simulated run's traffic and open it in Wireshark or tcpdump.
--
--   lua sim_pcap.lua [file.pcap] [seed]      (default file: a temporary one, removed)
--   tcpdump -nn -tt -r file.pcap              (or: wireshark file.pcap)
--
-- A world made with `capture = true` keeps every packet its wire carries; `world:pcap`
-- writes them as a pcap file: IPv4/IPv6 TCP and UDP with synthesized headers and
-- correct checksums, timestamps from the virtual clock (the run starts at 1970-01-01),
-- and unix-domain messages as UDP over IPv6 in fd75:6e69:7800::/48 (see the
-- llsocket-sim docs for the exact representation). Here: an HTTP-like exchange over
-- a 10 ms link that loses a third of its packets (the retransmissions are in the
-- capture), a DNS-like datagram, and a message over a unix socket pair.
local sim = require('llsocket.sim')

local function check(cond, msg, err)
    if not cond then
        error('sim_pcap: ' .. msg .. (err ~= nil and (': ' .. tostring(err)) or ''), 2)
    end
    return cond
end

local path = arg and arg[1]
local seed = tonumber(arg and arg[2]) or 7
local keep = path ~= nil
path = path or os.tmpname()

local world = sim.new({ seed = seed, capture = true })
local client, server = world:host('client'), world:host('server')
world:link(client, server, { latency = 10, loss = 0.3 })

local l = check(server.socket.new(server.AF_INET, server.SOCK_STREAM))
check(l:bind(server.addrinfo.inet(server.ipv4, 80)), 'bind')
check(l:listen(), 'listen')
local c = check(client.socket.new(client.AF_INET, client.SOCK_STREAM))
check(c:connect(client.addrinfo.inet(server.ipv4, 80)), 'connect')
local s = check(l:accept())
local request = 'GET / HTTP/1.0\r\nHost: server\r\n\r\n'
check(c:send(request) == #request, 'send request')
check(s:recv(#request) == request, 'request')
local response = 'HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello'
check(s:send(response) == #response, 'send response')
check(c:recv(#response) == response, 'response')
c:close()
s:close()
l:close()

local rx = check(server.socket.new(server.AF_INET, server.SOCK_DGRAM, 0, true))
check(rx:bind(server.addrinfo.inet(server.ipv4, 53)), 'bind udp')
local tx = check(client.socket.new(client.AF_INET, client.SOCK_DGRAM, 0, true))
tx:sendto('query', client.addrinfo.inet(server.ipv4, 53))
world:advance(50)
rx:close()
tx:close()

local pair = check(client.socket.pair(client.SOCK_STREAM))
local a, b = pair[1], pair[2]
check(a:send('over a unix socket') == 18, 'unix send')
check(b:recv() == 'over a unix socket', 'unix recv')
a:close()
b:close()

local n = world:captured()
check(world:pcap(path), 'pcap')
local f = check(io.open(path, 'rb'), 'open ' .. path)
local size = #f:read('*a')
f:close()
-- 24-byte file header, then a 16-byte record header per packet
check(n >= 9 and size > 24 + 16 * n, 'a capture of ' .. n .. ' packets in ' .. size .. ' bytes')
print(string.format('seed %d: %d packets captured (%.1f virtual ms, %d bytes of pcap), digest %s',
    seed, n, world:now(), size, world:digest()))
if keep then
    print('written to ' .. path .. ': open it with `tcpdump -nn -tt -r ' .. path .. '` or Wireshark')
else
    os.remove(path)
end
