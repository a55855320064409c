-- llsocket-lua/test/safety/fuzz.lua: a seeded random-argument fuzzer of the whole module.
--
--     LUA_CPATH='<dir of llsocket.so>/?.so;;' lua5.4 llsocket-lua/test/safety/fuzz.lua SEED [CALLS]
--
-- Calls every module function, every socket method and every metamethod of every type
-- with arguments drawn from a hostile pool: every Lua type, boundary integers, NaN and
-- infinities, huge strings, objects of the other types, closed and unwrapped sockets,
-- objects revived by finalizers, foreign userdata (io.stdout), and finalizers that raise
-- while armed around a call (Lua 5.1-5.3 and LuaJIT propagate such errors out of the
-- allocating call they interrupt). Results that are objects join the pool.
--
-- Exit status 0 when the run is clean; 1 on an escaped error, an internal error (a Rust
-- panic turned into a Lua error) or a descriptor leak. A crash, an abort or a hang shows
-- as a signal or a time-out to the caller (`cargo xtask ci --step safety` runs many seeds
-- with a time and memory limit, and a few under valgrind).
--
-- Everything stays on this machine: addresses are loopback or wildcard only, name lookups
-- are numeric-only, and every socket in the pool is non-blocking, so no call can wait.
local dir = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local C = dofile(dir .. '/common.lua')
local ll = require('llsocket')
local unpack = table.unpack or unpack
local seed = tonumber(arg and arg[1]) or 1
local CALLS = tonumber(arg and arg[2]) or 20000
-- LuaJIT 2.1.0-beta3 (Debian's) itself crashes when a finalizer raises while JIT-compiled
-- code runs (no llsocket needed: a loop of `os.time()` and `'m' .. i` with raising
-- finalizers segfaults every run), so the armed finalizers run with the JIT off there.
if jit then jit.off() end

-- Park-Miller minimal standard generator: exact in doubles, so the same on every Lua.
local state = (seed % 2147483646) + 1
local function rnd(n) -- 1..n
    state = (state * 16807) % 2147483647
    return (state % n) + 1
end
local function chance(p) return rnd(1000) <= p * 1000 end

-- ---------------------------------------------------------------------------
-- descriptors: what was open before, and every integer descriptor the run was handed

collectgarbage('collect')
local fds_before = C.open_fds(ll)
local handed = {} -- integer descriptors returned by acceptfd/recvfd/unwrap/cmsghdr:data

-- ---------------------------------------------------------------------------
-- the pool

local pool = {}
local cmsgs_all = {} -- every cmsghdrs ever made (received descriptors may sit in them)
local sockets_all = setmetatable({}, { __mode = 'k' })
local function add(v)
    if pool == nil then return end -- a finalizer reviving an object after the run
    if #pool < 600 then
        pool[#pool + 1] = v
    else
        pool[rnd(#pool)] = v
    end
end

-- a socket becomes part of the pool only once non-blocking (no call may wait)
local probe_fd
do
    local s = ll.socket.new(ll.AF_UNIX, ll.SOCK_DGRAM)
    probe_fd = s.fd
    s:close()
end
local function sock_of(v)
    return type(v) == 'userdata' and pcall(probe_fd, v)
end
local function adopt(v)
    if pool == nil then return end
    if sock_of(v) then
        v:nonblock(true)
        sockets_all[v] = true
    elseif type(v) == 'userdata' and getmetatable(v) == getmetatable(ll.cmsghdrs.new()) then
        cmsgs_all[#cmsgs_all + 1] = v
    end
    add(v)
end

local tmpdir = os.tmpname()
os.remove(tmpdir)
local unix_path = tmpdir .. '.sock'

local inf = 1 / 0
local big = string.rep('\255', 70000)
local hostile = {
    true, false, 0, 1, -1, 2, 3, 7, 64, 255, 256, 65535, 65536, 2147483647, 2147483648,
    -2147483648, -2147483649, 4294967296, 2 ^ 53, -(2 ^ 53), 0.5, -0.0, inf, -inf, 0 / 0,
    math.maxinteger or 2 ^ 63, math.mininteger or -(2 ^ 63),
    '', 'x', '\0', '\0abstract-llsocket-fuzz', string.rep('a', 4096), big, '127.0.0.1', '::1',
    'lo', 'http', '80', unix_path, 'caf\233', '\255\254',
    {}, setmetatable({}, { __index = function() error('trap') end }), print,
    coroutine.create(function() end), io.stdout, io.stderr,
}
-- the integer constants of the module (families, types, flags, options)
local consts = {}
for k, v in pairs(ll) do
    if type(v) == 'number' then consts[#consts + 1] = v end
end
table.sort(consts) -- pairs() order varies between runs (string hash seeds): sort for replay
for _, v in ipairs(hostile) do add(v) end
local closed_file = io.tmpfile()
closed_file:close()
add(closed_file)

-- objects of every type
local function seed_objects()
    local S = ll.socket
    for _, mk in ipairs({
        function() return S.new(ll.AF_INET, ll.SOCK_STREAM, 0, true) end,
        function() return S.new(ll.AF_INET, ll.SOCK_DGRAM, 0, true) end,
        function() return S.new(ll.AF_INET6, ll.SOCK_STREAM, 0, true) end,
        function() return S.new(ll.AF_UNIX, ll.SOCK_DGRAM, 0, true) end,
    }) do
        local s = mk()
        if s then adopt(s) end
    end
    local p = S.pair(ll.SOCK_STREAM, 0, true)
    adopt(p[1]); adopt(p[2])
    p = S.pair(ll.SOCK_DGRAM, 0, true)
    adopt(p[1]); adopt(p[2])
    -- a listener with a pending connection
    local l = S.new(ll.AF_INET, ll.SOCK_STREAM, 0, true)
    l:reuseaddr(true)
    l:bind(ll.addrinfo.inet('127.0.0.1', 0))
    l:listen()
    local c = S.new(ll.AF_INET, ll.SOCK_STREAM, 0, true)
    c:connect(l:getsockname())
    adopt(l); adopt(c)
    local closed = S.new(ll.AF_INET, ll.SOCK_STREAM, 0, true)
    closed:close()
    adopt(closed)
    for _, ai in ipairs({
        ll.addrinfo.inet('127.0.0.1', 0), ll.addrinfo.inet('127.0.0.1', 9), ll.addrinfo.inet6('::1', 0),
        ll.addrinfo.unix(unix_path), ll.addrinfo.unix('\0llsocket-fuzz'), l:getsockname(),
    }) do adopt(ai) end
    local iov = ll.iovec.new()
    iov:add('hello'); iov:addn(100); iov:add('\0\0')
    adopt(iov)
    adopt(ll.iovec.new())
    local mh = ll.msghdr.new()
    mh:iov(iov)
    adopt(mh)
    adopt(ll.msghdr.new())
    local cs = ll.cmsghdrs.new()
    cs:push(ll.cmsghdr.new(1, 2, 'abc'))
    adopt(cs)
    adopt(ll.cmsghdrs.new())
    adopt(ll.cmsghdr.new(ll.SOL_SOCKET, ll.SCM_RIGHTS, 'abcdefgh'))
    adopt(ll.cmsghdr.rights(0, 1))
    adopt(ll.errno.new(ll.errno.EPIPE.code, nil, 'fuzz'))
end
seed_objects()

-- ---------------------------------------------------------------------------
-- revived objects and raising finalizers

local function revive_later(make)
    local obj = make()
    local hook = C.on_gc(function() adopt(obj) end)
    return hook == nil
end
local bombs = C.bombs()

-- ---------------------------------------------------------------------------
-- targets

local socket_methods = {
    'fd', 'family', 'socktype', 'protocol', 'unwrap', 'dup', 'close', 'shutdown', 'bind',
    'listen', 'connect', 'accept', 'acceptfd', 'recvable', 'sendable', 'send', 'sendto',
    'write', 'sendmsg', 'sendfd', 'sendfile', 'recv', 'recvfrom', 'read', 'recvfd', 'recvmsg',
    'atmark', 'getsockname', 'getpeername', 'cloexec', 'nonblock', 'error', 'acceptconn',
    'reuseaddr', 'reuseport', 'broadcast', 'debug', 'keepalive', 'oobinline', 'dontroute',
    'timestamp', 'rcvbuf', 'rcvlowat', 'sndbuf', 'sndlowat', 'tcpnodelay', 'tcpkeepintvl',
    'tcpkeepcnt', 'tcpkeepalive', 'tcpcork', 'rcvtimeo', 'sndtimeo', 'linger', 'mcastloop',
    'mcastttl', 'mcastif', 'mcastjoin', 'mcastleave', 'mcastjoinsrc', 'mcastleavesrc',
    'mcastblocksrc', 'mcastunblocksrc',
}
local template = ll.socket.new(ll.AF_UNIX, ll.SOCK_DGRAM)
local targets = {}
for _, name in ipairs(socket_methods) do
    targets[#targets + 1] = { 'sock:' .. name, template[name], 'socket' }
end
template:close()
for _, sub in ipairs({ 'socket', 'addrinfo', 'msghdr', 'cmsghdr', 'cmsghdrs', 'iovec', 'device' }) do
    for name, fn in pairs(ll[sub]) do
        if type(fn) == 'function' then
            targets[#targets + 1] = { sub .. '.' .. name, fn, nil }
        end
    end
end
targets[#targets + 1] = { 'errno.new', ll.errno.new, nil }
for kind, mk in pairs({
    addrinfo = function() return ll.addrinfo.inet('127.0.0.1') end, msghdr = ll.msghdr.new,
    cmsghdrs = ll.cmsghdrs.new, iovec = ll.iovec.new,
    cmsghdr = function() return ll.cmsghdr.new(1, 2, 'x') end,
}) do
    local mt = getmetatable(mk())
    for name, fn in pairs(mt) do
        if type(fn) == 'function' then
            targets[#targets + 1] = { kind .. '.' .. name, fn, mt }
        end
    end
    for name, fn in pairs(mt.__index) do
        targets[#targets + 1] = { kind .. ':' .. name, fn, mt }
    end
end

-- the same order in every run of a seed (pairs() order is not)
table.sort(targets, function(a, b) return a[1] < b[1] end)

-- Arguments that would make a legitimate call wait or leave this machine are tamed:
-- bounded waits, numeric-only lookups, no lingering close, no blocking mode.
local function tame(name, args, n)
    if name:find('recvable') or name:find('sendable') then
        if type(args[2]) == 'number' and args[2] ~= args[2] or (tonumber(args[2]) or 0) > 5 then args[2] = 1 end
    elseif name:find(':nonblock$') then
        args[2] = nil
    elseif name:find(':linger$') then
        args[2] = nil
    elseif name == 'socket.close' or name == 'socket.shutdown' or name == 'socket.wrap'
        or name:find(':sendfd$') or name:find(':writev$') or name:find(':readv$') then
        -- never the process's standard descriptors
        local fdarg = (name:sub(1, 7) == 'socket.') and 1 or 2
        if type(args[fdarg]) == 'number' and args[fdarg] >= 0 and args[fdarg] <= 2 then args[fdarg] = -1 end
    elseif name == 'addrinfo.getaddrinfo' then
        args[6] = ll.AI_NUMERICHOST
        n = 6
    elseif name:find(':getnameinfo$') then
        args[2] = ll.NI_NUMERICHOST
        args[3] = ll.NI_NUMERICSERV
        n = 3
    elseif name:find(':sendfile$') then
        if type(args[2]) == 'number' and args[2] >= 0 and args[2] <= 2 then args[2] = -1 end
    end
    return args, n
end

local function pick()
    if chance(0.05) then return nil end
    if chance(0.2) then return consts[rnd(#consts)] end
    return pool[rnd(#pool)]
end

-- a pool value of the target's own type, when one is found quickly
local function self_of(kind)
    for _ = 1, 16 do
        local v = pool[rnd(#pool)]
        if kind == 'socket' then
            if sock_of(v) then return v end
        elseif type(v) == 'userdata' and getmetatable(v) == kind then
            return v
        end
    end
end

-- results that are descriptors we now own, or objects for the pool
local function collect_results(name, r)
    -- r[1] is pcall's status
    if name:find(':acceptfd$') or name:find(':recvfd$') or name:find(':unwrap$') then
        if type(r[2]) == 'number' then handed[#handed + 1] = r[2] end
        return
    end
    if name:find(':data$') then
        for i = 2, r.n do
            if type(r[i]) == 'number' then handed[#handed + 1] = r[i] end
        end
        return
    end
    for i = 2, r.n do
        local v = r[i]
        if type(v) == 'userdata' then
            adopt(v)
        elseif type(v) == 'table' and name == 'socket.pair' then
            if v[1] then adopt(v[1]) end
            if v[2] then adopt(v[2]) end
        elseif type(v) == 'table' and name == 'addrinfo.getaddrinfo' then
            for _, ai in ipairs(v) do adopt(ai) end
        end
    end
end

local calls, errors, internal = 0, 0, {}
-- the finalizers are armed only inside the protected call, around the target itself
local function one()
    local tgt = targets[rnd(#targets)]
    local name, fn, kind = tgt[1], tgt[2], tgt[3]
    local nargs = rnd(6) - 1
    local args = {}
    for i = 1, nargs do args[i] = pick() end
    if kind and chance(0.75) then
        -- the right self most of the time, so the bodies run
        args[1] = self_of(kind)
        if nargs == 0 then nargs = 1 end
    end
    args, nargs = tame(name, args, nargs)
    if chance(0.05) then bombs.plant(rnd(4)) end
    local arm = chance(0.05)
    local ok, r = pcall(bombs.call, arm, fn, unpack(args, 1, nargs))
    bombs.armed = false
    calls = calls + 1
    if ok then
        table.insert(r, 1, true)
        r.n = r.n + 1
        collect_results(name, r)
    else
        errors = errors + 1
        local msg = tostring(r)
        if msg:find('internal error') then
            internal[#internal + 1] = name .. ': ' .. msg
        end
    end
    if chance(0.01) then
        local kinds = { ll.iovec.new, ll.msghdr.new, ll.cmsghdrs.new,
            function() return ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM, 0, true) end }
        revive_later(kinds[rnd(#kinds)])
    end
    if chance(0.002) then collectgarbage('collect') end
end

local ok, err = xpcall(function()
    for _ = 1, CALLS do one() end
end, debug and debug.traceback or tostring)

-- ---------------------------------------------------------------------------
-- clean up and account for every descriptor

bombs.armed = false
for s in pairs(sockets_all) do pcall(function() s:close() end) end
for _, c in ipairs(cmsgs_all) do
    for _ = 1, 10000 do
        local okc, m = pcall(function() return c:shift() end)
        if not okc or m == nil then break end
        if m:level() == ll.SOL_SOCKET and m:type() == ll.SCM_RIGHTS then
            for _, fd in ipairs({ pcall(function() return m:data() end) }) do
                if type(fd) == 'number' then handed[#handed + 1] = fd end
            end
        end
    end
end
for _, fd in ipairs(handed) do
    if fd > 2 then ll.socket.close(fd) end
end
pool, sockets_all, cmsgs_all = nil, nil, nil
collectgarbage('collect')
collectgarbage('collect')
os.remove(unix_path)
local fds_after = C.open_fds(ll)

print(string.format('fuzz seed %d: %d calls, %d raised, %d armed finalizers fired, descriptors %d -> %d',
    seed, calls, errors, bombs.hits, fds_before, fds_after))
local failed = false
if not ok then
    print('FAIL escaped error: ' .. tostring(err))
    failed = true
end
for _, m in ipairs(internal) do
    print('FAIL internal error: ' .. m)
    failed = true
end
if fds_after > fds_before then
    print('FAIL descriptor leak: ' .. (fds_after - fds_before))
    failed = true
end
os.exit(failed and 1 or 0, true) -- close the state: valgrind then sees every free
