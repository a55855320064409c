-- sendfile.lua: send a temporary file over sockets with sock:sendfile.
--
-- 1. the whole file over a blocking unix socketpair, in one call;
-- 2. a range from the middle of the file (offset + byte count): the file's own
--    read position is neither used nor moved;
-- 3. the whole file over a non-blocking TCP connection on 127.0.0.1 with small
--    socket buffers: sendfile returns partial counts with again = true and the
--    loop resumes at the new offset, reading the peer in between.
-- The received bytes are compared with the file each time.
local llsocket = require('llsocket')
local socket, addrinfo = llsocket.socket, llsocket.addrinfo
local AF_INET, SOCK_STREAM = llsocket.AF_INET, llsocket.SOCK_STREAM

local function check(cond, msg, err)
    if not cond then
        error('sendfile: ' .. msg .. (err ~= nil and (': ' .. tostring(err)) or ''), 2)
    end
    return cond
end

-- read exactly n bytes from a socket (gives up after about 3 s)
local function read_n(s, n)
    local parts, have, deadline = {}, 0, os.time() + 3
    while have < n do
        check(os.time() <= deadline, 'timed out after ' .. have .. ' of ' .. n .. ' bytes')
        if s:recvable(100) then
            local data, err, again = s:recv(65536)
            check(data or again, 'recv', err)
            if data then
                parts[#parts + 1] = data
                have = have + #data
            end
        end
    end
    return table.concat(parts)
end

local function main(path)
    -- deterministic content, not a multiple of any buffer size
    local chunks = {}
    for i = 1, 20000 do
        chunks[i] = string.format('line %05d %s\n', i, string.rep(string.char(97 + i % 26), i % 7))
    end
    local content = table.concat(chunks)
    local size = #content
    local f = check(io.open(path, 'wb'))
    check(f:write(content))
    check(f:close())
    print(string.format('sendfile: temporary file %s, %d bytes', path, size))

    local file = check(io.open(path, 'rb'))

    -- 1. whole file, blocking socketpair (read by the peer concurrently is not
    --    possible in one process, so enlarge the buffers to hold it)
    local pair = check(socket.pair(SOCK_STREAM))
    local a, b = pair[1], pair[2]
    a:sndbuf(size * 2)
    b:rcvbuf(size * 2)
    a:sndtimeo(2.0) -- never hang: a blocking send that cannot proceed gives up after 2 s
    local first = math.min(size, 65536)
    local n, err, again = a:sendfile(file, first)
    check(n == first and err == nil and again == nil, 'sendfile of ' .. first .. ' bytes returned ' .. tostring(n), err)
    check(read_n(b, first) == content:sub(1, first), 'the first ' .. first .. ' bytes arrived intact')
    print(string.format('sendfile: sent the first %d bytes over a socketpair in one call', n))

    -- 2. a range from the middle; the file position stays at 0
    local off, len = 12345, 30000
    n = check(a:sendfile(file, len, off))
    check(n == len, 'range sendfile sent ' .. n)
    check(read_n(b, len) == content:sub(off + 1, off + len), 'the range arrived intact')
    check(file:seek() == 0, 'the file position is unchanged')
    print(string.format('sendfile: sent bytes %d..%d (offset + count), file position still 0', off, off + len - 1))

    -- past the end: zero bytes, again = true
    local z, zerr, zagain = a:sendfile(file, 10, size)
    check(z == 0 and zerr == nil and zagain == true, 'sendfile at EOF gives 0, nil, true', zerr)
    -- zero bytes requested is an error, not a system call
    local e, eerr = a:sendfile(file, 0)
    check(e == nil and eerr.type == llsocket.errno.EINVAL, 'sendfile of 0 bytes is EINVAL')
    a:close()
    b:close()

    -- 3. non-blocking TCP with small buffers: partial sends, resume at the offset
    local server = check(socket.new(AF_INET, SOCK_STREAM))
    check(server:bind(check(addrinfo.inet('127.0.0.1', 0, SOCK_STREAM))), 'bind')
    check(server:listen(), 'listen')
    local client = check(socket.new(AF_INET, SOCK_STREAM, 0, true))
    client:sndbuf(16384)
    local ok, cerr = client:connect(check(server:getsockname()))
    check(ok, 'connect', cerr)
    check(server:recvable(2000), 'no connection within 2 s')
    local peer = check(server:accept())
    peer:rcvbuf(16384)
    check(client:sendable(2000) and client:error() == nil, 'connect completed')

    local sent, calls, partials, parts = 0, 0, 0, {}
    local deadline = os.time() + 10
    while sent < size do
        check(os.time() <= deadline, 'TCP transfer did not finish within 10 s')
        calls = calls + 1
        if client:sendable(100) then
            local k, serr, more = client:sendfile(file, size - sent, sent)
            check(k, 'sendfile', serr)
            sent = sent + k
            if more then
                partials = partials + 1
            end
        end
        while peer:recvable(0) do
            local data, rerr, ragain = peer:recv(65536)
            check(data or ragain, 'recv', rerr)
            if not data then
                break
            end
            parts[#parts + 1] = data
        end
    end
    check(client:shutdown(llsocket.SHUT_WR), 'shutdown')
    local received = table.concat(parts)
    received = received .. read_n(peer, size - #received)
    check(received == content, 'the TCP copy differs from the file')
    check(select('#', peer:recv()) == 0, 'end-of-stream after the file')
    print(string.format('sendfile: %d bytes over non-blocking TCP in %d calls (%d partial), received intact',
        size, calls, partials))

    file:close()
    for _, s in ipairs({ client, peer, server }) do
        s:close()
    end
end

local path = os.tmpname()
local ok, err = pcall(main, path)
os.remove(path)
if not ok then
    error(err, 0)
end
print('sendfile: ok')
