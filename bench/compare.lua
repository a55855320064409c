-- compare.lua: llsocket-rs against luasocket, luaposix and C, on one interpreter.
--
--   lua5.4 bench/compare.lua [--smoke] [--reps N] [--only calls|pingpong|bulk]
--
-- Rows:
--   calls     a call that makes no system call: llsocket sock:fd(), luasocket
--             tcp:getfd() (luaposix has no socket object: n/a), against the
--             baseline str:len() — the standard library's string.len reached as a
--             method through the string metatable's __index table: the same call
--             shape as sock:fd() (method lookup, one checked argument, one integer
--             returned). The empty loop's time is subtracted from every figure.
--             On LuaJIT the JIT compiles str:len() away, so that comparison is n/a.
--   pingpong  1-byte round trips (send a, recv b, send b, recv a; both ends in this
--             process, blocking sockets) over a unix stream socketpair and over TCP
--             on 127.0.0.1 with TCP_NODELAY. luasocket has no socketpair: its unix
--             row uses socket.unix with a listening path (same kernel path: AF_UNIX
--             stream). C: bench/pingpong.c, built here with `cc -O2`.
--   bulk      64 KiB transfers over the same two transports, non-blocking, the
--             sender offering the rest and the receiver draining until would-block.
-- Time is process CPU time (os.clock; C: CLOCK_PROCESS_CPUTIME_ID): both ends
-- run in this process and never wait, and CPU time is robust against other load
-- on a shared machine. Each figure is the median of --reps repetitions (default
-- 11; the Lua implementations take turns within each repetition, in rotating
-- order; the C runs come first; --smoke: one repetition of tiny counts). Every
-- transfer is checked (byte values, lengths); a wrong result raises an error.
-- Timing is reported, not judged.
local SMOKE, REPS, ONLY = false, 11, nil
do
    local i = 1
    while arg and arg[i] do
        local a = arg[i]
        if a == '--smoke' then
            SMOKE, REPS = true, 1
        elseif a == '--reps' then
            i = i + 1
            REPS = math.floor(assert(tonumber(arg[i]), '--reps needs a number'))
        elseif a == '--only' then
            i = i + 1
            ONLY = arg[i]
        else
            error('unknown argument ' .. a .. ' (use --smoke, --reps N, --only calls|pingpong|bulk)')
        end
        i = i + 1
    end
end

local N_CALLS = SMOKE and 2000 or 5000000
local N_PAIR = SMOKE and 50 or 50000
local N_TCP = SMOKE and 50 or 20000
local N_BULK = SMOKE and 5 or 5000
local BULK = 64 * 1024

local llsocket = require('llsocket')
local have_luasocket, luasocket = pcall(require, 'socket')
local have_unix, lsunix = pcall(require, 'socket.unix')
local have_posix, psock = pcall(require, 'posix.sys.socket')
local pfcntl, punistd
if have_posix then
    have_posix, pfcntl = pcall(require, 'posix.fcntl')
end
if have_posix then
    have_posix, punistd = pcall(require, 'posix.unistd')
end
if not have_luasocket then
    have_unix = false
end

local interp = (jit and jit.version) or _VERSION
local unpack = table.unpack or unpack

local function check(cond, msg)
    if not cond then
        error('compare: ' .. msg, 2)
    end
    return cond
end

local function median(t)
    local s = {}
    for i = 1, #t do
        s[i] = t[i]
    end
    table.sort(s)
    local n = #s
    if n % 2 == 1 then
        return s[(n + 1) / 2]
    end
    return (s[n / 2] + s[n / 2 + 1]) / 2
end

local tmpfiles = {}
local function tmpname()
    local p = os.tmpname()
    tmpfiles[#tmpfiles + 1] = p
    return p
end

-- results[row][impl] = list of seconds per operation
local results, order = {}, {}
local function record(row, impl, secs_per_op)
    if not results[row] then
        results[row] = {}
        order[#order + 1] = row
    end
    local r = results[row]
    r[impl] = r[impl] or {}
    local l = r[impl]
    l[#l + 1] = secs_per_op
end
local function na(row, impl, why)
    if not results[row] then
        results[row] = {}
        order[#order + 1] = row
    end
    results[row][impl] = why
end

local function timed(f, n)
    local t0 = os.clock()
    f(n)
    return (os.clock() - t0) / n
end

-- C baseline -------------------------------------------------------------------
local cbin
do
    local dir = (arg and arg[0] and arg[0]:match('^(.*)[/\\]')) or '.'
    local src = dir .. '/pingpong.c'
    local f = io.open(src, 'rb')
    if f then
        f:close()
        local out = tmpname()
        local ok = os.execute('cc -O2 -o ' .. out .. ' ' .. src .. ' 2>/dev/null')
        if ok == true or ok == 0 then
            cbin = out
        end
    end
end
local function run_c(mode, n)
    local p = check(io.popen(cbin .. ' ' .. mode .. ' ' .. n))
    local line = p:read('*l') or ''
    local ok = p:close()
    local m, cnt, secs = line:match('^(%S+) (%d+) ([%d.]+)$')
    check(m == mode and tonumber(cnt) == n and ok ~= false and ok ~= nil,
        'C pingpong ' .. mode .. ' failed: ' .. line)
    return tonumber(secs) / n
end

-- 1. calls without a system call ----------------------------------------------------
local function bench_calls()
    local sock = check(llsocket.socket.new(llsocket.AF_INET, llsocket.SOCK_STREAM))
    local fdv = sock:fd()
    local str = 'abc'
    local ls = have_luasocket and check(luasocket.tcp())
    local lsfd = ls and ls:getfd()
    for _ = 1, REPS do
        local empty = timed(function(n)
            for _ = 1, n do
            end
        end, N_CALLS)
        record('calls', 'baseline', timed(function(n)
            local s = str
            for _ = 1, n do
                s:len()
            end
            check(s:len() == 3, 'len')
        end, N_CALLS) - empty)
        record('calls', 'llsocket', timed(function(n)
            local s = sock
            for _ = 1, n do
                s:fd()
            end
            check(s:fd() == fdv, 'sock:fd()')
        end, N_CALLS) - empty)
        if ls then
            record('calls', 'luasocket', timed(function(n)
                local s = ls
                for _ = 1, n do
                    s:getfd()
                end
                check(s:getfd() == lsfd, 'getfd')
            end, N_CALLS) - empty)
        end
    end
    if not ls then
        na('calls', 'luasocket', 'not installed')
    end
    na('calls', 'luaposix', 'n/a (no socket object)')
    sock:close()
    if ls then
        ls:close()
    end
end

-- transports per implementation -------------------------------------------------
-- Each maker returns an object with a, b (the two ends) and send/recv functions
-- specialised for that library, plus close().

local L = llsocket
local function ll_pair(nonblock)
    local p = check(L.socket.pair(L.SOCK_STREAM, 0, nonblock))
    return p[1], p[2]
end
local function ll_tcp(nonblock)
    local srv = check(L.socket.new(L.AF_INET, L.SOCK_STREAM))
    check(srv:bind(check(L.addrinfo.inet('127.0.0.1', 0, L.SOCK_STREAM))), 'bind')
    check(srv:listen(), 'listen')
    local a = check(L.socket.new(L.AF_INET, L.SOCK_STREAM))
    check(a:connect(check(srv:getsockname())), 'connect')
    local b = check(srv:accept())
    srv:close()
    a:tcpnodelay(true)
    b:tcpnodelay(true)
    if nonblock then
        a:nonblock(true)
        b:nonblock(true)
    end
    return a, b
end

local function ls_tcp(nonblock)
    local srv = check(luasocket.tcp())
    check(srv:bind('127.0.0.1', 0))
    check(srv:listen(1))
    local _, port = srv:getsockname()
    local a = check(luasocket.tcp())
    check(a:connect('127.0.0.1', port))
    local b = check(srv:accept())
    srv:close()
    a:setoption('tcp-nodelay', true)
    b:setoption('tcp-nodelay', true)
    if nonblock then
        a:settimeout(0)
        b:settimeout(0)
    end
    return a, b
end
local function ls_unix(nonblock)
    local path = tmpname()
    os.remove(path)
    local mk = lsunix.stream or lsunix
    local srv = check(mk())
    check(srv:bind(path))
    check(srv:listen(1))
    local a = check(mk())
    check(a:connect(path))
    local b = check(srv:accept())
    srv:close()
    os.remove(path)
    if nonblock then
        a:settimeout(0)
        b:settimeout(0)
    end
    return a, b
end

local function px_nonblock(fd)
    local fl = check(pfcntl.fcntl(fd, pfcntl.F_GETFL))
    check(pfcntl.fcntl(fd, pfcntl.F_SETFL, fl + (math.floor(fl / pfcntl.O_NONBLOCK) % 2 == 0 and pfcntl.O_NONBLOCK or 0)))
end
local function px_pair(nonblock)
    local a, b = psock.socketpair(psock.AF_UNIX, psock.SOCK_STREAM, 0)
    check(a and b, 'posix socketpair')
    if nonblock then
        px_nonblock(a)
        px_nonblock(b)
    end
    return a, b
end
local function px_tcp(nonblock)
    local S = psock
    local srv = check(S.socket(S.AF_INET, S.SOCK_STREAM, 0))
    check(S.bind(srv, { family = S.AF_INET, addr = '127.0.0.1', port = 0 }) == 0, 'posix bind')
    check(S.listen(srv, 1) == 0, 'posix listen')
    -- luaposix 33.4 under LuaJIT sometimes returns a garbage family (and no port) from
    -- getsockname, seen about once in a thousand calls, sometimes for every retry in a row.
    -- Setup only: if it keeps failing, read the port through llsocket (wrap, then unwrap so
    -- that llsocket does not close luaposix's descriptor).
    local port
    for _ = 1, 3 do
        port = check(S.getsockname(srv)).port
        if port then
            break
        end
    end
    if not port then
        local w = check(L.socket.wrap(srv))
        port = check(w:getsockname()):port()
        check(w:unwrap() == srv, 'unwrap')
    end
    local sa = { port = port }
    local a = check(S.socket(S.AF_INET, S.SOCK_STREAM, 0))
    check(S.connect(a, { family = S.AF_INET, addr = '127.0.0.1', port = sa.port }) == 0, 'posix connect')
    local b = check(S.accept(srv))
    punistd.close(srv)
    check(S.setsockopt(a, S.IPPROTO_TCP, S.TCP_NODELAY, 1) == 0, 'nodelay')
    check(S.setsockopt(b, S.IPPROTO_TCP, S.TCP_NODELAY, 1) == 0, 'nodelay')
    if nonblock then
        px_nonblock(a)
        px_nonblock(b)
    end
    return a, b
end

-- 2. ping-pong ------------------------------------------------------------------------
local function pp_llsocket(a, b)
    return function(n)
        for _ = 1, n do
            a:send('x')
            if b:recv(1) ~= 'x' then
                error('llsocket ping-pong: wrong byte')
            end
            b:send('y')
            if a:recv(1) ~= 'y' then
                error('llsocket ping-pong: wrong byte')
            end
        end
    end
end
local function pp_luasocket(a, b)
    return function(n)
        for _ = 1, n do
            a:send('x')
            if b:receive(1) ~= 'x' then
                error('luasocket ping-pong: wrong byte')
            end
            b:send('y')
            if a:receive(1) ~= 'y' then
                error('luasocket ping-pong: wrong byte')
            end
        end
    end
end
local function pp_posix(a, b)
    local send, recv = psock.send, psock.recv
    return function(n)
        for _ = 1, n do
            send(a, 'x')
            if recv(b, 1) ~= 'x' then
                error('luaposix ping-pong: wrong byte')
            end
            send(b, 'y')
            if recv(a, 1) ~= 'y' then
                error('luaposix ping-pong: wrong byte')
            end
        end
    end
end

-- 3. bulk ------------------------------------------------------------------------------
local DATA
do
    local t = {}
    for i = 1, BULK / 64 do
        t[i] = string.format('%063d\n', i)
    end
    DATA = table.concat(t)
    assert(#DATA == BULK)
end

-- each returns function(n) doing n transfers of DATA from a to b, checking the
-- received length each time and the content of the first transfer
local function bulk_llsocket(a, b)
    return function(n)
        for it = 1, n do
            local sent, got, parts = 0, 0, it == 1 and {} or nil
            while got < BULK do
                if sent < BULK then
                    local k, err = a:send(sent == 0 and DATA or DATA:sub(sent + 1))
                    if not k then
                        error('llsocket bulk send: ' .. tostring(err))
                    end
                    sent = sent + k
                end
                while true do
                    local s, err, again = b:recv(65536)
                    if s then
                        got = got + #s
                        if parts then
                            parts[#parts + 1] = s
                        end
                    elseif again then
                        break
                    else
                        error('llsocket bulk recv: ' .. tostring(err))
                    end
                end
            end
            check(got == BULK and (not parts or table.concat(parts) == DATA), 'llsocket bulk data')
        end
    end
end
local function bulk_luasocket(a, b)
    return function(n)
        for it = 1, n do
            local sent, got, parts = 0, 0, it == 1 and {} or nil
            while got < BULK do
                if sent < BULK then
                    local last, err, partial = a:send(DATA, sent + 1)
                    if last then
                        sent = last
                    elseif err == 'timeout' then
                        sent = partial
                    else
                        error('luasocket bulk send: ' .. tostring(err))
                    end
                end
                local s, err, partial = b:receive(BULK - got)
                s = s or partial
                if err and err ~= 'timeout' then
                    error('luasocket bulk receive: ' .. tostring(err))
                end
                got = got + #s
                if parts then
                    parts[#parts + 1] = s
                end
            end
            check(got == BULK and (not parts or table.concat(parts) == DATA), 'luasocket bulk data')
        end
    end
end
local function bulk_posix(a, b)
    local send, recv = psock.send, psock.recv
    return function(n)
        for it = 1, n do
            local sent, got, parts = 0, 0, it == 1 and {} or nil
            while got < BULK do
                if sent < BULK then
                    local k, err, en = send(a, sent == 0 and DATA or DATA:sub(sent + 1))
                    if k then
                        sent = sent + k
                    elseif en ~= 11 and en ~= 4 then -- EAGAIN, EINTR
                        error('luaposix bulk send: ' .. tostring(err))
                    end
                end
                while true do
                    local s, err, en = recv(b, 65536)
                    if s and #s > 0 then
                        got = got + #s
                        if parts then
                            parts[#parts + 1] = s
                        end
                    elseif en == 11 or en == 4 then
                        break
                    else
                        error('luaposix bulk recv: ' .. tostring(err or 'end of stream'))
                    end
                end
            end
            check(got == BULK and (not parts or table.concat(parts) == DATA), 'luaposix bulk data')
        end
    end
end

-- implementations: name -> { available, why, pair, tcp, pp, bulk, close }
local impls = {
    {
        name = 'llsocket',
        ok = true,
        pair = ll_pair,
        tcp = ll_tcp,
        pp = pp_llsocket,
        bulk = bulk_llsocket,
        close = function(a, b)
            a:close()
            b:close()
        end,
    },
    {
        name = 'luasocket',
        ok = have_luasocket,
        why = 'not installed',
        pair = have_unix and ls_unix or nil,
        pair_why = 'n/a (no unix sockets)',
        tcp = ls_tcp,
        pp = pp_luasocket,
        bulk = bulk_luasocket,
        close = function(a, b)
            a:close()
            b:close()
        end,
    },
    {
        name = 'luaposix',
        ok = have_posix,
        why = 'not installed for ' .. _VERSION,
        pair = px_pair,
        tcp = px_tcp,
        pp = pp_posix,
        bulk = bulk_posix,
        close = function(a, b)
            punistd.close(a)
            punistd.close(b)
        end,
    },
}

local function bench_transfers(kind)
    local rows = kind == 'pingpong'
        and { { 'ping-pong unix', 'pair', N_PAIR, 'pair' }, { 'ping-pong TCP', 'tcp', N_TCP, 'tcp' } }
        or { { 'bulk 64 KiB unix', 'pair', N_BULK, 'bulk-pair' }, { 'bulk 64 KiB TCP', 'tcp', N_BULK, 'bulk-tcp' } }
    local nonblock = kind == 'bulk'
    for _, row in ipairs(rows) do
        local label, transport, n, cmode = unpack(row)
        -- the C runs first: io.popen forks this process, and right after a fork every heap
        -- page written takes a copy-on-write fault, a cost that would land on whichever
        -- implementation is timed next
        if cbin then
            for _ = 1, REPS do
                record(label, 'C', run_c(cmode, n))
            end
            collectgarbage()
        end
        for rep = 1, REPS do
            -- the implementations take turns, starting with a different one each repetition
            for k = 0, #impls - 1 do
                local im = impls[(rep + k - 1) % #impls + 1]
                local make = im[transport]
                if im.ok and make then
                    local a, b = make(nonblock)
                    local f = (kind == 'pingpong' and im.pp or im.bulk)(a, b)
                    f(1) -- warm up (and a first result check)
                    record(label, im.name, timed(f, n))
                    im.close(a, b)
                end
            end
        end
        if not cbin then
            na(label, 'C', 'no cc')
        end
        for _, im in ipairs(impls) do
            if not im.ok then
                na(label, im.name, im.why)
            elseif not im[transport] then
                na(label, im.name, im[transport .. '_why'] or 'n/a')
            end
        end
    end
end

-- run ------------------------------------------------------------------------------------
local ok, err = pcall(function()
    if not ONLY or ONLY == 'calls' then
        bench_calls()
    end
    if not ONLY or ONLY == 'pingpong' then
        bench_transfers('pingpong')
    end
    if not ONLY or ONLY == 'bulk' then
        bench_transfers('bulk')
    end
end)
for _, p in ipairs(tmpfiles) do
    os.remove(p)
end
if not ok then
    error(err, 0)
end

-- report -----------------------------------------------------------------------------------
local cols = { 'C', 'baseline', 'llsocket', 'luasocket', 'luaposix' }
local function cell(row, impl)
    local v = results[row][impl]
    if v == nil then
        return nil, '-'
    elseif type(v) == 'string' then
        return nil, v
    end
    local m = median(v)
    if row:match('^bulk') then
        local mibs = BULK / m / 1048576
        return mibs, string.format('%.0f MiB/s', mibs)
    elseif row == 'calls' then
        return m * 1e9, string.format('%.1f ns', m * 1e9)
    end
    return m * 1e6, string.format('%.2f us', m * 1e6)
end

print(string.format('# compare.lua on %s, %s, %d repetition(s), medians%s', interp,
    llsocket.env.os, REPS, SMOKE and ' (SMOKE: tiny counts, figures meaningless)' or ''))
print('')
print('| row | ' .. table.concat(cols, ' | ') .. ' | llsocket vs reference |')
print('|---|' .. string.rep('---|', #cols + 1))
local verdicts = {}
for _, row in ipairs(order) do
    local line, vals = { row }, {}
    for _, c in ipairs(cols) do
        local v, txt = cell(row, c)
        vals[c] = v
        line[#line + 1] = txt
    end
    local higher_better = row:match('^bulk') ~= nil
    local ref = row == 'calls' and 'baseline' or 'C'
    local cmp = '-'
    if row == 'calls' and jit then
        -- LuaJIT compiles str:len() into the trace (the baseline measures ~0 ns), while a
        -- call into a C module through the Lua C API leaves the trace: no fair baseline
        vals.baseline = nil
        cmp = 'n/a on LuaJIT'
        verdicts[#verdicts + 1] = 'calls: within 5% of a C-function call: n/a on LuaJIT (builtins are compiled)'
    end
    if vals.llsocket and vals[ref] then
        -- r > 1 means llsocket is slower than the reference
        local r = higher_better and (vals[ref] / vals.llsocket) or (vals.llsocket / vals[ref])
        if higher_better then
            cmp = string.format('%+.0f%% throughput vs C', (vals.llsocket / vals[ref] - 1) * 100)
        else
            cmp = string.format('%+.0f%% time vs %s', (r - 1) * 100, ref == 'C' and 'C' or 'str:len()')
        end
        local limit = row == 'calls' and 1.05 or (row:match('^ping') and 1.10 or nil)
        if limit then
            verdicts[#verdicts + 1] = string.format('%s: llsocket within %d%% of %s: %s', row,
                math.floor((limit - 1) * 100 + 0.5), ref == 'C' and 'C' or 'str:len()', r <= limit and 'MET' or 'NOT MET')
        end
    end
    for _, peer in ipairs({ 'luasocket', 'luaposix' }) do
        if vals.llsocket and vals[peer] then
            local faster = higher_better and vals.llsocket > vals[peer] or (not higher_better and vals.llsocket < vals[peer])
            verdicts[#verdicts + 1] = string.format('%s: llsocket faster than %s: %s', row, peer,
                faster and 'MET' or 'NOT MET')
        end
    end
    line[#line + 1] = cmp
    print('| ' .. table.concat(line, ' | ') .. ' |')
end
print('')
print('Targets (' .. interp .. (SMOKE and ', smoke run: not meaningful' or '') .. '):')
for _, v in ipairs(verdicts) do
    print('- ' .. v)
end
