-- llsocket-lua/test/safety/fuzz_sim.lua: a seeded random-argument fuzzer of `llsocket.sim`.
--
--     LUA_CPATH='<dir of llsocket.so>/?.so;;' lua5.4 llsocket-lua/test/safety/fuzz_sim.lua SEED [CALLS]
--
-- Calls, in random order and with arguments drawn from a hostile pool (every Lua type,
-- boundary numbers, huge strings, objects of every type, kernel objects, objects of other
-- worlds) or made plausible (real hosts, sockets bound and connected between hosts, links
-- and host faults on, so that calls get past the argument checks and reach the simulator):
--   * every `llsocket.sim` function (`new`, `install`, `installed`, `pcall`,
--     `check_determinism`, and any other the module has);
--   * every world method and metamethod (`__gc`, `__tostring` called by hand too, with
--     foreign values as self);
--   * every function of every host module (socket, addrinfo, msghdr, cmsghdr, cmsghdrs,
--     iovec, device, errno), every socket method and metamethod on simulated (and some
--     kernel) sockets, the methods of the plain types made by hosts (iovec writev/readv
--     and addrinfo getnameinfo run on the host that made them), and the kernel module's
--     functions given the simulator's objects;
--   * the task API: `world:spawn` with functions that run all of the above, yield odd
--     values, raise, call `coroutine.wrap`, spawn more tasks, close worlds (their own too)
--     and run worlds (their own: not re-entrant; others: nested), `world:run` with and
--     without deadlines, `world:tasks` and the task objects;
-- on live worlds, closed worlds, collected worlds (every reference dropped, the collector
-- run, hosts and sockets kept), worlds revived by finalizers, with finalizers that raise
-- while armed around a call and finalizers that close worlds or call into them at any
-- allocation (also in the middle of a call).
--
-- Exit status 0 when the run is clean; 1 on
--   * an escaped error (the fuzzer's own loop), or an error of the wrong kind: every call
--     may only raise `bad argument #N ...` (wrong arguments), the memory error, the errors
--     of the fuzzer's own finalizers and functions, `llsocket.sim: this world is gone` /
--     `the world of this host is gone` (and only when a world the call involves is gone),
--     or one of the scheduler's documented reports (a task failed, deadlock, spin, a call
--     that cannot wait here, run not re-entrant, task objects read-only);
--   * an internal error (a Rust panic turned into a Lua error: `internal error`,
--     `panicked`, `already borrowed`) anywhere in an error or a returned string;
--   * a call on a host whose world is gone that returned instead of raising (the backend's
--     `ENETDOWN` reached Lua), unless a finalizer closed the world during that call;
--   * a task left "running" (or waiting without saying on what) after a run, or a task
--     object that raises when read;
--   * a top-level call that runs Lua code for more than LLSOCKET_FUZZ_WATCH seconds of CPU
--     (default 60: a loop that never ends, reported by name);
--   * a kernel descriptor leak.
-- A crash, an abort or a hang in Rust code shows as a signal or a time-out to the caller
-- (`cargo xtask ci --step safety` runs several seeds with a time and memory limit, and one
-- under valgrind): LLSOCKET_FUZZ_TRACE=1 names every call on stderr before it is made, so
-- the last line names the call that crashed. LLSOCKET_FUZZ_STATS=1 prints, per target, how
-- many calls raised (and with what) and how many returned a value: what tuning the
-- generators looks at.
--
-- A seed replays the same run on PUC Lua. On LuaJIT the addresses of objects differ
-- between runs (its allocator probes random addresses), so the collector's pace, and with
-- it when finalizers run, can differ a little: run a failing seed a few times.
--
-- Everything stays in the process: the simulated network is in memory, and the kernel
-- sockets of the pool only ever see loopback addresses of the fuzzer's own sockets and are
-- non-blocking.
local dir = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local C = dofile(dir .. '/common.lua')
local unpack = table.unpack or unpack
local seed = tonumber(arg and arg[1]) or 1
local CALLS = tonumber(arg and arg[2]) or 40000
-- (see fuzz.lua: LuaJIT 2.1.0-beta3 itself crashes on raising finalizers in JIT code)
if jit then jit.off() end

-- Park-Miller minimal standard generator: exact in doubles, so the same on every Lua. The
-- finalizers draw from a stream of their own, so that when the collector runs them does
-- not change the main sequence.
local function generator(s)
    local state = (s % 2147483646) + 1
    return function(n) -- 1..n
        state = (state * 16807) % 2147483647
        return (state % n) + 1
    end
end
local rnd = generator(seed)
local rnd_gc = generator(seed * 7 + 3)
local function chance(p) return rnd(1000) <= p * 1000 end
local function pick(list) return list[rnd(#list)] end

-- Odd seeds load the simulator (and make a host: the first module built in the state)
-- before the kernel module, even seeds after it: the shared socket methods carry the
-- first loading's instance.
local sim, ll, first_world
if seed % 2 == 1 then
    sim = require('llsocket.sim')
    first_world = sim.new({ seed = seed })
    first_world:host('first')
    ll = require('llsocket')
else
    ll = require('llsocket')
    sim = require('llsocket.sim')
end
local spcall = sim.pcall

-- ---------------------------------------------------------------------------
-- descriptors (kernel ones: the simulated ones live in their worlds)

collectgarbage('collect')
local fds_before = C.open_fds(ll)
local handed = {} -- kernel descriptors returned as integers (unwrap, acceptfd)

-- ---------------------------------------------------------------------------
-- what is known about the objects of the run

local live_pools = true -- false once the run is over (finalizers stop adding)
local W, H, SS, KS, AI, OBJ, TK, FDS, ANY = {}, {}, {}, {}, {}, {}, {}, {}, {}
local owner = setmetatable({}, { __mode = 'k' }) -- host / simulated object -> world id
-- simulated sockets by what they are (listening, connected, datagram): the methods that
-- need one get one most of the time
local ROLE = { listen = {}, conn = {}, dgram = {} }
local function role(s, r)
    if s ~= nil and ROLE[r] then
        local list = ROLE[r]
        if not live_pools then return end
        if #list < 40 then list[#list + 1] = s else list[rnd(#list)] = s end
    end
end
local hostset = setmetatable({}, { __mode = 'k' }) -- host tables
local viewset = setmetatable({}, { __mode = 'k' }) -- task objects
local ksocks = setmetatable({}, { __mode = 'k' }) -- every kernel socket (closed at the end)
local wref = setmetatable({}, { __mode = 'v' }) -- world id -> world (while it exists)
local wid_of = setmetatable({}, { __mode = 'k' })
local next_wid = 0

local function put(list, v, max)
    if not live_pools or v == nil then return end
    if #list < (max or 200) then
        list[#list + 1] = v
    else
        list[rnd(#list)] = v
    end
end

local probe = first_world or sim.new()
local world_closed, world_host = probe.closed, probe.host
local function is_world(v)
    return type(v) == 'userdata' and (pcall(world_closed, v))
end
local function wid(w)
    local id = wid_of[w]
    if not id then
        next_wid = next_wid + 1
        id = next_wid
        wid_of[w] = id
        wref[id] = w
    end
    return id
end
-- Whether the world `id` is gone (closed, collected, or being finalized).
local function world_gone(id)
    local w = wref[id]
    if w == nil then return true end
    local ok, c = pcall(world_closed, w)
    return not ok or c
end

local probe_sock = ll.socket.new(ll.AF_UNIX, ll.SOCK_DGRAM)
local sock_fd, sock_close = probe_sock.fd, probe_sock.close
probe_sock:close()
local function is_sock(v)
    return type(v) == 'userdata' and (pcall(sock_fd, v))
end
local MT = {
    addrinfo = getmetatable(ll.addrinfo.inet('127.0.0.1', 0)),
    msghdr = getmetatable(ll.msghdr.new()),
    cmsghdr = getmetatable(ll.cmsghdr.new(1, 2, 'x')),
    cmsghdrs = getmetatable(ll.cmsghdrs.new()),
    iovec = getmetatable(ll.iovec.new()),
}

local function adopt(v, id)
    if not live_pools then return end
    local tv = type(v)
    if tv == 'userdata' then
        if is_world(v) then
            wid(v)
            put(W, v, 12)
        elseif is_sock(v) then
            if id or owner[v] then
                owner[v] = owner[v] or id
                put(SS, v, 120)
            else
                pcall(v.nonblock, v, true)
                ksocks[v] = true
                put(KS, v, 24)
            end
        else
            local mt = getmetatable(v)
            if id and mt and not owner[v] then owner[v] = id end
            if mt == MT.addrinfo then
                put(AI, v, 120)
            elseif mt then
                put(OBJ, v, 120)
            end
        end
        put(ANY, v, 400)
    elseif tv == 'table' then
        if hostset[v] then
            put(H, v, 60)
            put(ANY, v, 400)
        elseif viewset[v] then
            put(TK, v, 60)
            put(ANY, v, 400)
        end
    end
end

local function adopt_host(h, w)
    if type(h) ~= 'table' then return end
    hostset[h] = true
    owner[h] = wid(w)
    adopt(h)
end

-- ---------------------------------------------------------------------------
-- the hostile pool

local inf = 1 / 0
local hostile = {
    true, false, 0, 1, -1, 2, 3, 4, 5, 7, 64, 255, 65535, 65536, 2147483647, 2147483648,
    -2147483648, 4294967296, 2 ^ 53, -(2 ^ 53), 0.5, -0.0, inf, -inf, 0 / 0,
    math.maxinteger or 2 ^ 63, math.mininteger or -(2 ^ 63),
    '', 'x', '\0', 'a', 'b', 'srv', string.rep('a', 4096), string.rep('\255', 70000), '10.0.0.1',
    '10.0.0.2', 'fd00::1', '127.0.0.1', '::1', 'localhost', 'lo', '80', '/sim.sock', '\255\254',
    {}, { 1, 2 }, { seed = 1 }, { latency = 5 }, { deadline = 10 }, { short_io = 0.5 },
    setmetatable({}, { __index = function() error('fuzz: trap') end }), tostring, type,
    coroutine.create(function() end), io.stdout,
}
local closed_file = io.tmpfile()
closed_file:close()
hostile[#hostile + 1] = closed_file
for _, v in ipairs(hostile) do put(ANY, v, 400) end

local function any()
    if chance(0.05) then return nil end
    return ANY[rnd(#ANY)]
end
-- `v` most of the time, a hostile value sometimes
local function maybe(v, p)
    if chance(p or 0.08) then return any() end
    return v
end

-- ---------------------------------------------------------------------------
-- finalizers: raising ones (armed around a call), reviving ones, and meddlers that close
-- worlds or call into them whenever the collector runs them

local bombs = C.bombs()

local meddle_hits = 0
local run_depth = 0
local MAX_DEPTH = 2
local bad = {} -- failures
local classify -- (below)
local function meddlers(n)
    for _ = 1, n do
        C.on_gc(function()
            if not live_pools or #W == 0 then return end
            meddle_hits = meddle_hits + 1
            local w = W[rnd_gc(#W)]
            local k = rnd_gc(6)
            local ok, err = pcall(function()
                if k == 1 then
                    w:close()
                elseif k == 2 then
                    w:advance(rnd_gc(20))
                elseif k == 3 then
                    w:host('m' .. rnd_gc(3))
                elseif k == 4 and #SS > 0 then
                    sock_close(SS[rnd_gc(#SS)])
                elseif k == 5 then
                    w:digest()
                    w:socket_table()
                elseif run_depth < MAX_DEPTH then
                    run_depth = run_depth + 1
                    local ok2, e2 = pcall(w.run, w, { deadline = w:now() + 5 })
                    run_depth = run_depth - 1
                    if not ok2 then error(e2, 0) end
                end
            end)
            if not ok then classify('meddler', err, { w }, true) end
        end)
    end
end

local function revive_later(make)
    local obj = make()
    local hook = C.on_gc(function() adopt(obj, owner[obj]) end)
    return hook == nil
end

-- ---------------------------------------------------------------------------
-- checking what calls do

local INTERNAL = { 'internal error', 'panicked', 'already borrowed', 'already mutably borrowed', 'RefCell' }
local function internal_in(s)
    for _, p in ipairs(INTERNAL) do
        if s:find(p, 1, true) then return p end
    end
end

-- What a call may raise (matched against the first line of the message).
local ALLOWED = {
    'bad argument #%d+', "calling '.-' on bad self", 'not enough memory', 'fuzz:',
    'llsocket%.sim: this world is gone', 'llsocket%.sim: the world of this host is gone',
    'llsocket%.sim: this world is full', 'llsocket%.sim: task ".-" on host .- failed',
    'llsocket%.sim: deadlock', 'llsocket%.sim: %w+%(fd=%-?%d+%) would wait',
    'llsocket%.sim: task ".-" spins', 'llsocket%.sim: this world is already running its tasks',
    'llsocket%.sim: a task object is read%-only', 'too many descriptors',
    -- packet rules (world:rule): a call into the rule's own world from inside it, the
    -- report of a rule that failed (raised by the next call into its world), a rule's rng
    -- used after its call
    'llsocket%.sim: a packet rule cannot call into its own world', 'llsocket%.sim: packet rule %d+ .-failed',
    'llsocket%.sim: this rng belongs to a packet rule call that has returned',
    -- LuaJIT: a world's tasks cannot run inside a finalizer (the meddlers try)
    'llsocket%.sim: world:run cannot run tasks inside a finalizer or a debug hook on LuaJIT',
    '" is not defined$', -- errno.new of an unknown code (lua-errno and the twin)
    -- the interpreter's own, when the fuzzer's functions yield where they cannot
    'attempt to yield', 'cannot resume dead coroutine', 'cannot resume non%-suspended coroutine',
}
local GONE = { 'this world is gone', 'the world of this host is gone' }

local function any_gone(involved)
    for i = 1, involved.n or #involved do
        local v = involved[i]
        if is_world(v) then
            if world_gone(wid(v)) then return true end
        elseif (type(v) == 'table' or type(v) == 'userdata') and owner[v] then
            if world_gone(owner[v]) then return true end
        end
    end
    return false
end

local calls, raised = 0, 0
local current_call = 0 -- the number of the call whose outcome is being checked
local function fail(kind, name, msg)
    if #bad < 50 then
        -- (the number of the call, as LLSOCKET_FUZZ_TRACE=1 names it)
        bad[#bad + 1] = kind .. ': ' .. name .. ' (call ' .. current_call .. '): ' .. msg
    elseif #bad == 50 then
        bad[#bad + 1] = '... (more)'
    end
end

-- `container`: the call runs other calls (tasks, scenarios), whose errors are checked
-- where they happen; only its own kind of error is checked.
function classify(name, err, involved, container, lenient, allowed)
    local ok, msg = pcall(tostring, err)
    if not ok then msg = '(error object whose __tostring raises)' end
    if type(msg) ~= 'string' then msg = '(error object whose __tostring returns ' .. type(msg) .. ')' end
    local marker = internal_in(msg)
    if marker then
        fail('internal error', name, msg)
        return
    end
    local head = msg:match('^[^\n]*')
    if lenient then return end
    for _, p in ipairs(allowed or ALLOWED) do
        if head:find(p) then
            if not container then
                for _, g in ipairs(GONE) do
                    if head:find(g, 1, true) and not any_gone(involved) then
                        fail('"gone" raised, but every world the call involves is live', name, head)
                    end
                end
            end
            return
        end
    end
    fail('unexpected error', name, head)
end

local ENETDOWN = ll.errno.ENETDOWN and ll.errno.ENETDOWN.code
local function is_enetdown(v)
    if type(v) ~= 'table' then return false end
    local ok, code = pcall(function() return v.code end)
    if not ok or type(code) ~= 'number' then return false end
    if code == ENETDOWN then return true end
    -- an EAI_SYSTEM wrapping it
    local ok2, inner = pcall(function() return v.wrap end)
    return ok2 and type(inner) == 'table' and rawget(inner, 'code') == ENETDOWN
end

-- The watchdog: a top-level call still running after WATCH seconds of CPU (a loop in Lua
-- code, such as the scheduler's, that never ends) is stopped and reported by name. (A loop
-- in the module's Rust code shows as the caller's time-out instead.)
local WATCH = tonumber(os.getenv('LLSOCKET_FUZZ_WATCH') or '') or 60
local watched, watched_since, hung = nil, nil, {}
if debug and debug.sethook then
    debug.sethook(function()
        if watched_since and os.clock() - watched_since > WATCH then
            hung[#hung + 1] = watched
            watched_since = nil
            error('fuzz: watchdog', 0)
        end
    end, '', 100000)
end
-- LLSOCKET_FUZZ_STATS=1: per target, calls and how many raised (to tune the generators)
local stats = os.getenv('LLSOCKET_FUZZ_STATS') and {}
-- LLSOCKET_FUZZ_TRACE=1: every call's number and name on stderr before it is made (the
-- last line names the call a crash happened in)
local trace = os.getenv('LLSOCKET_FUZZ_TRACE') and io.stderr
-- Storms: runs of calls during which the collector works continuously (a new cycle as soon
-- as one ends, big steps), so that finalizers run at the allocations of the calls
-- themselves: armed ones (made before each call) raise there, meddlers close worlds there.
-- A storm also ends after STORM_RULES packet-rule calls: one blocking call can make tens
-- of thousands of them (a 70 000-byte send through a world made with 1-byte buffers is a
-- packet per byte), and with the collector running a whole cycle at each allocation every
-- rule call costs milliseconds (a run took minutes).
local STORM_RULES = 100
local storm, storm_rules, pause, stepmul = 0, 0, nil, nil
local function storm_start(n)
    if storm > 0 then return end
    storm, storm_rules = n, STORM_RULES
    pause = collectgarbage('setpause', 0)
    stepmul = collectgarbage('setstepmul', 1000)
end
local function storm_end()
    storm = 0
    collectgarbage('setpause', pause)
    collectgarbage('setstepmul', stepmul)
end
local function storm_tick()
    if storm > 0 then
        storm = storm - 1
        if storm == 0 then storm_end() end
    end
end
local function storm_rule()
    if storm > 0 then
        storm_rules = storm_rules - 1
        if storm_rules < 0 then storm_end() end
    end
end

-- Calls `fn(args...)` protected with `pc` (pcall, or sim.pcall inside tasks); checks the
-- outcome; adopts the results (as objects of world `id` when not nil).
-- opts: involved (values whose worlds may be gone), id, container, sim (a call on a host:
-- ENETDOWN must not come back, unless its world `id` went away during the call), on_result
-- (sees the results).
local function exec(name, fn, args, n, pc, opts)
    local arm = storm > 0 and chance(0.7) or chance(0.02)
    if arm or chance(0.01) then bombs.plant(rnd(3)) end
    local meddled = meddle_hits
    local my = calls + 1
    local gone_before = opts.sim and opts.id ~= nil and world_gone(opts.id)
    local top = watched_since == nil
    if top then watched, watched_since = name, os.clock() end
    if trace then
        trace:write(calls + 1, ' ', name, '\n')
        trace:flush()
    end
    local ok, r = pc(bombs.call, arm, fn, unpack(args, 1, n))
    bombs.armed = false -- (first: after a call that raised, the bombs are still armed)
    if top then watched_since = nil end
    storm_tick()
    calls = calls + 1
    current_call = my
    if stats then
        local st = stats[name] or { 0, 0, {}, 0 }
        stats[name] = st
        st[1] = st[1] + 1
        if ok and r[1] ~= nil and r[1] ~= false then st[4] = st[4] + 1 end
        if not ok then
            st[2] = st[2] + 1
            local m = tostring(r):match('^[^\n]*'):gsub('0x%x+', ''):sub(1, 90)
            st[3][m] = (st[3][m] or 0) + 1
        end
    end
    local involved = opts.involved or args
    if not ok then
        raised = raised + 1
        classify(name, r, involved, opts.container, opts.lenient, opts.allowed)
        return
    end
    for i = 1, r.n do
        local v = r[i]
        if type(v) == 'string' then
            local marker = internal_in(v)
            if marker and not opts.container then fail('internal error in a result', name, v) end
        elseif opts.sim and is_enetdown(v) and meddle_hits == meddled
            -- (a world that went away during the call, a packet rule of its having collected
            -- it by hand, say: what the call did after that is ENETDOWN)
            and not (opts.id ~= nil and not gone_before and world_gone(opts.id)) then
            fail('a call on a gone world returned instead of raising', name, tostring(v))
        elseif type(v) == 'userdata' then
            adopt(v, opts.id)
        elseif type(v) == 'table' and not hostset[v] and not viewset[v] then
            for j = 1, 4 do
                local x = rawget(v, j)
                if type(x) == 'userdata' then adopt(x, opts.id) end
                if x ~= nil and viewset[x] then adopt(x) end
            end
        else
            adopt(v, opts.id)
        end
    end
    if opts.on_result then opts.on_result(r) end
end

-- ---------------------------------------------------------------------------
-- plausible arguments

local NAMES = { 'a', 'b', 'c', 'srv', 'cli', 'x1', 'x2', 'n\255' }
local GROUPS = { 'g1', 'g2', 'dc', 'g1', 'g2', 'dc', 'g1', 'g2', 'dc', '\255' }
local PORTS = { 0, 7, 80, 7000, 7001, 9999, 65535 }
local pcap_path = os.tmpname()

-- An element of `list`, most often one whose world is live (`id_of` gives its world id).
local function a_live(list, id_of)
    local n = #list
    if n == 0 then return nil end
    local v = list[rnd(n)]
    if chance(0.15) then return v end
    for _ = 1, 6 do
        local id = id_of(v)
        if id and not world_gone(id) then return v end
        v = list[rnd(n)]
    end
    return v
end
local function world_id(w) return wid_of[w] end
local function owner_id(v) return owner[v] end
local function a_world()
    if #W > 0 and chance(0.97) then return a_live(W, world_id) end
    return any()
end
local function hosts_of(w)
    local id = wid_of[w]
    local list = {}
    if not id then return list end
    for i = 1, #H do
        if owner[H[i]] == id then list[#list + 1] = H[i] end
    end
    return list
end
-- a host argument for world `w`: one of its host tables, a name, another world's host, junk
local function a_host_arg(w)
    local r = rnd(100)
    if r <= 70 then
        local hs = hosts_of(w)
        if #hs == 0 and is_world(w) and not world_gone(wid(w)) then
            local ok, h = pcall(world_host, w, pick(NAMES))
            if ok then adopt_host(h, w); hs[1] = h end
        end
        if #hs > 0 then return hs[rnd(#hs)] end
    end
    if r <= 80 then return pick(NAMES) end
    if r <= 90 and #H > 0 then return H[rnd(#H)] end
    return any()
end
local function a_host()
    if #H > 0 and chance(0.95) then return a_live(H, owner_id) end
    return nil
end
local function ms()
    return pick({ 0, 0.5, 1, 2, 10, 100, 1000, 60000, 9.1e12, -1, 0 / 0 })
end
local function prob()
    return pick({ 0, 0, 0.01, 0.1, 0.5, 1, 1.5, -0.1, 0 / 0 })
end
local function link_opts()
    if chance(0.1) then return any() end
    local o = {}
    if chance(0.6) then
        o.latency = chance(0.5) and pick({ 0, 1, 5, 50 }) or { pick({ 0, 1, 2 }), pick({ 2, 10, 40 }) }
    end
    if chance(0.4) then o.loss = pick({ 0, 0.05, 0.2, 0.5, 1 }) end
    if chance(0.3) then o.duplicate = pick({ 0, 0.1, 0.5, 1 }) end
    if chance(0.3) then o.reorder = pick({ 0, 0.1, 0.5, 1 }) end
    if chance(0.05) then o.latency = maybe(ms(), 0.5) end
    if chance(0.05) then o.loss = prob() end
    if chance(0.03) then o[pick({ 'jitter', 1, true })] = 1 end
    return o
end
local function fault_opts()
    if chance(0.1) then return any() end
    local o = {}
    if chance(0.5) then o.short_io = pick({ 0, 0.1, 0.5, 1 }) end
    if chance(0.3) then o.eintr = pick({ 0, 0.05, 0.3, 1 }) end
    if chance(0.2) then o.reset = pick({ 0, 0.01, 0.2, 1 }) end
    if chance(0.05) then o.eintr = prob() end
    if chance(0.03) then o.drop = 1 end
    return o
end
local function world_opts(install)
    if chance(0.05) then return any() end
    local o = { seed = rnd(1000000) }
    if chance(0.3) then o.trace = chance(0.5) end
    if chance(0.1) then o.trace_payloads = true end
    if chance(0.2) then o.capture = true end
    if chance(0.1) then o.fd_limit = pick({ 0, 1, 2, 3, 5, 64, 2147483648 }) end
    if chance(0.1) then o.rcvbuf = pick({ 0, 1, 100, 4096, 1048576, 2147483648 }) end
    if chance(0.1) then o.sndbuf = pick({ 0, 1, 100, 4096, 1048576, 2147483648 }) end
    if chance(0.1) then o.somaxconn = pick({ 0, 1, 5, -1, 2147483647, 2147483648 }) end
    if chance(0.1) then o.max_hosts = pick({ 0, 1, 2, 3, 16646144, 16646145 }) end
    if install and chance(0.7) then o.host = pick(NAMES) end
    if chance(0.05) then o.seed = pick({ -1, math.maxinteger or 2 ^ 53, 0.5, 'x' }) end
    if chance(0.03) then o[pick({ 'bogus', 1, true })] = 1 end
    return o
end

-- an address, most often one a host of the run has (or could have)
local function an_addr(h)
    local r = rnd(100)
    if r <= 45 and #AI > 0 then return AI[rnd(#AI)] end
    h = h or a_host()
    if type(h) ~= 'table' then return any() end
    local peer = a_host() or h
    local ok, ai = pcall(function()
        if r <= 80 then
            return h.addrinfo.inet(pick({ peer.ipv4, peer.ipv4, h.ipv4, '0.0.0.0', '127.0.0.1', '10.0.0.250' }), pick(PORTS))
        elseif r <= 92 then
            return h.addrinfo.inet6(pick({ peer.ipv6, '::', '::1' }), pick(PORTS))
        else
            return h.addrinfo.unix(pick({ '/sim.sock', '/tmp/x', '\0abstract' }))
        end
    end)
    if ok and ai then
        owner[ai] = owner[h]
        put(AI, ai, 120)
        return ai
    end
    return any()
end
local DATA = { '', 'x', 'hello world', string.rep('d', 1500), string.rep('e', 70000) }
local function a_flag()
    return pick({ 0, ll.MSG_PEEK, ll.MSG_DONTWAIT, ll.MSG_WAITALL, ll.MSG_OOB, ll.MSG_DONTWAIT, 0 })
end
local function an_obj(mt)
    for _ = 1, 8 do
        local v = OBJ[rnd(#OBJ)]
        if v ~= nil and getmetatable(v) == mt then return v end
    end
    return any()
end
local function a_fd()
    if #FDS > 0 and chance(0.7) then return FDS[rnd(#FDS)] end
    return pick({ -1, 3, 4, 5, 6, 1023, 2147483647 })
end
-- an argument of a kind
local GEN = {
    addr = function(h) return an_addr(h) end,
    data = function() return pick(DATA) end,
    flag = a_flag,
    how = function() return pick({ ll.SHUT_RD, ll.SHUT_WR, ll.SHUT_RDWR, 7 }) end,
    ms = function() return pick({ 0, 1, 10, 100, 2000, 0.5, -1 }) end,
    size = function() return pick({ 1, 10, 100, 4096, 70000, 0 }) end,
    backlog = function() return pick({ 0, 1, 5, 128, -1, 2147483648 }) end,
    bool = function() return chance(0.5) end,
    msghdr = function() return an_obj(MT.msghdr) end,
    fd = a_fd,
    count = function() return pick({ 1, 10, 1000, 70000, 1099511627776, 0 }) end,
    int = function() return pick({ 0, 1, 2, 100, 4096, 65536, -1, 2147483648 }) end,
    mcast = function() return pick({ '224.0.0.1', '239.1.2.3', 'ff02::1', '10.0.0.1', 'x' }) end,
    iface = function() return pick({ '10.0.0.1', 'eth0', 'lo', '' }) end,
}
-- socket methods: their arguments (after self); '?' marks an optional one
local SOCK_ARGS = {
    close = { 'how?' }, shutdown = { 'how?' }, bind = { 'addr' }, listen = { 'backlog?' },
    connect = { 'addr' }, accept = { 'bool?' }, recvable = { 'ms?', 'bool?' },
    sendable = { 'ms?', 'bool?' }, send = { 'data', 'flag?' }, sendto = { 'data', 'addr', 'flag?' },
    write = { 'data' }, sendmsg = { 'msghdr', 'flag?' }, sendfd = { 'fd', 'addr?', 'flag?' },
    sendfile = { 'fd', 'count', 'count?' }, recv = { 'size?', 'flag?' },
    recvfrom = { 'size?', 'flag?' }, read = { 'size?' }, recvfd = { 'flag?' },
    recvmsg = { 'msghdr', 'flag?' }, cloexec = { 'bool?' }, nonblock = { 'bool?' },
    linger = { 'int?' }, rcvtimeo = { 'ms?' }, sndtimeo = { 'ms?' }, mcastloop = { 'bool?' },
    mcastttl = { 'int?' }, mcastif = { 'iface?' }, mcastjoin = { 'mcast', 'iface?' },
    mcastleave = { 'mcast', 'iface?' }, mcastjoinsrc = { 'mcast', 'mcast', 'iface?' },
    mcastleavesrc = { 'mcast', 'mcast', 'iface?' }, mcastblocksrc = { 'mcast', 'mcast', 'iface?' },
    mcastunblocksrc = { 'mcast', 'mcast', 'iface?' },
}
local OPT_ARGS = { 'bool?' } -- the other option methods: a boolean or an integer
local function gen_args(spec, args, from, h)
    local n = from - 1
    for _, kind in ipairs(spec) do
        local opt = kind:sub(-1) == '?'
        if opt then kind = kind:sub(1, -2) end
        if opt and chance(0.4) then break end
        n = n + 1
        args[n] = maybe(GEN[kind](h))
    end
    if chance(0.05) then
        n = n + 1
        args[n] = any()
    end
    return n
end

-- ---------------------------------------------------------------------------
-- the kernel side: a few non-blocking loopback sockets (props: their methods get simulated
-- objects as arguments, never an address off the loopback)

local klisten = ll.socket.new(ll.AF_INET, ll.SOCK_STREAM, 0, true)
klisten:reuseaddr(true)
klisten:bind(ll.addrinfo.inet('127.0.0.1', 0))
klisten:listen()
local KADDRS = { klisten:getsockname(), ll.addrinfo.inet('127.0.0.1', 0), ll.addrinfo.inet6('::1', 0) }
adopt(klisten)
do
    local c = ll.socket.new(ll.AF_INET, ll.SOCK_STREAM, 0, true)
    c:connect(KADDRS[1])
    adopt(c)
    adopt(ll.socket.new(ll.AF_INET, ll.SOCK_DGRAM, 0, true))
    local p = ll.socket.pair(ll.SOCK_STREAM, 0, true)
    adopt(p[1]); adopt(p[2])
    for _, ai in ipairs(KADDRS) do adopt(ai) end
    adopt(ll.msghdr.new()); adopt(ll.iovec.new()); adopt(ll.cmsghdrs.new())
end
-- methods a kernel socket of the pool may be given (no descriptor passing, no multicast:
-- fuzz.lua covers those)
local KERNEL_OK = {
    fd = true, family = true, socktype = true, protocol = true, dup = true, close = true,
    shutdown = true, bind = true, listen = true, connect = true, accept = true, recvable = true,
    sendable = true, send = true, sendto = true, write = true, recv = true, recvfrom = true,
    read = true, getsockname = true, getpeername = true, error = true, acceptconn = true,
    rcvbuf = true, sndbuf = true, reuseaddr = true, tcpnodelay = true, atmark = true,
}
-- Tames the arguments of a call with a kernel socket as self.
local function tame_kernel(name, args, n)
    for i = 2, n do
        local v = args[i]
        if type(v) == 'userdata' and getmetatable(v) == MT.addrinfo then
            args[i] = pick(KADDRS)
        end
    end
    if name == 'recvable' or name == 'sendable' then
        if type(args[2]) == 'number' and not (args[2] >= 0 and args[2] <= 5) then args[2] = 1 end
    elseif name == 'nonblock' then
        n = 1
    end
    return args, n
end

-- ---------------------------------------------------------------------------
-- targets

local one -- one random call (below)
local check_tasks -- (below)

-- a function for spawn / sim.pcall / check_determinism: a few random calls and odd acts
local task_fn
local function act(pc, depth, wid_own)
    local r = rnd(100)
    if r <= 10 then
        local vals = pick({ {}, { nil }, { 1, 2, 3 }, { 'x' }, { tostring }, { {} } })
        coroutine.yield(unpack(vals))
    elseif r <= 13 then
        error('fuzz: a task raises')
    elseif r <= 14 then
        error(setmetatable({}, { __tostring = function() error('fuzz: __tostring of an error raises') end }))
    elseif r <= 15 then
        error(nil)
    elseif r <= 20 then
        local w = (chance(0.6) and wref[wid_own]) or a_world()
        local hs = is_world(w) and hosts_of(w) or {}
        exec('task:spawn', probe.spawn, { w, hs[1] or a_host_arg(w), chance(0.5) and 'sub' or nil, task_fn(depth + 1) }, 4, pc,
            { container = true })
    elseif r <= 22 then
        local w = (chance(0.5) and wref[wid_own]) or a_world()
        exec('task:close', probe.close, { w }, 1, pc, {})
    elseif r <= 26 then
        if run_depth < MAX_DEPTH then
            local w = (chance(0.4) and wref[wid_own]) or a_world()
            run_depth = run_depth + 1
            exec('task:run', probe.run, { w, chance(0.7) and { deadline = 50 } or nil }, 2, pc, { container = true })
            run_depth = run_depth - 1
            check_tasks('task:run', w)
        end
    elseif r <= 30 then
        -- a coroutine the task makes itself cannot wait: its calls raise saying so
        local co = coroutine.wrap(function(...)
            one(pcall, depth + 1)
            coroutine.yield(...)
            one(pcall, depth + 1)
        end)
        exec('task:coroutine.wrap', co, { 1, 2 }, 2, pc, { container = true })
    else
        one(pc, depth + 1)
    end
end
function task_fn(depth, wid_own)
    local steps = rnd(6) - 1
    local pcs = chance(0.8) and spcall or pcall
    return function(...)
        for _ = 1, steps do
            if depth <= MAX_DEPTH then act(pcs, depth, wid_own) end
        end
        return ...
    end
end

-- a packet rule for world:rule: reads the packet, draws from the rng (hostile arguments
-- too), keeps the rng for later, raises, yields, calls anything (its own world raises: the
-- world is busy), removes rules, returns any verdict
local RULE_IDS, RNGS = {}, {}
local VERDICTS = { { nil }, { 'pass' }, { 'drop' }, { 'duplicate' }, { 'hold' }, { 'delay', 5 },
    { 'delay', 0.5 }, { { delay = 20 } }, { 'delay', -1 }, { 'delay' }, { 'bogus' }, { 7 }, { {} }, { true },
    { 'drop', 'extra' } }
local function rule_fn(depth, wid_own)
    local kind = rnd(16)
    local verdict = pick(VERDICTS)
    local arg1, arg2 = any(), any()
    return function(pkt, rng)
        storm_rule()
        if type(pkt) == 'table' then
            local _ = { pkt.time, pkt.src, pkt.dst, pkt.payload, pkt.flags, pkt.attempt, pkt.len }
        end
        if kind == 1 then
            error('fuzz: a rule raises')
        elseif kind == 2 then
            coroutine.yield(1)
        elseif kind == 3 and depth < MAX_DEPTH then
            one(pcall, depth + 1)
        elseif kind == 4 then
            local w = wref[wid_own]
            if w then probe.close(w) end
        elseif kind == 5 then
            put(RNGS, rng, 20)
        elseif kind == 6 then
            local ok = pcall(rng.chance, rng, arg1)
            local ok2 = pcall(rng.range, rng, arg1, arg2)
            local ok3 = pcall(rng.duration, rng, arg1, arg2)
            return ok and ok2 and ok3 and 'pass' or 'drop'
        elseif kind == 7 and #RULE_IDS > 0 then
            local w = wref[wid_own]
            if w then pcall(probe.remove_rule, w, RULE_IDS[rnd(#RULE_IDS)]) end
        elseif kind == 8 then
            return rng:chance(0.5) and 'drop' or 'delay', rng:duration(0, 10)
        elseif kind == 9 then
            collectgarbage('step')
        end
        return unpack(verdict, 1, table.maxn and table.maxn(verdict) or #verdict)
    end
end

local TARGETS = {}
local function target(name, weight, fn)
    TARGETS[#TARGETS + 1] = { name, weight, fn }
end

-- `llsocket.sim` functions
local sim_names = {}
for k, v in pairs(sim) do
    if type(v) == 'function' then sim_names[#sim_names + 1] = k end
end
table.sort(sim_names)
for _, name in ipairs(sim_names) do
    target('sim.' .. name, name == 'pcall' and 1 or 0.3, function(pc, depth)
        local fn = sim[name]
        local args, n = {}, 0
        local opts = {}
        if name == 'new' then
            args[1], n = world_opts(), 1
            opts.on_result = function(r) if is_world(r[1]) then adopt(r[1]) end end
        elseif name == 'install' then
            args[1], n = world_opts(true), 1
            opts.on_result = function(r)
                if is_world(r[1]) then adopt(r[1]); adopt_host(r[2], r[1]) end
            end
        elseif name == 'pcall' then
            args[1], args[2], n = task_fn(depth), any(), 2
            opts.container = true
        elseif name == 'check_determinism' then
            local steps = rnd(4)
            args[1] = world_opts()
            args[2] = function(w)
                adopt(w)
                local hs = {}
                for i = 1, 2 do
                    hs[i] = w:host(NAMES[i])
                    adopt_host(hs[i], w)
                end
                for _ = 1, steps do one(pcall, depth + 1) end
                return w:digest()
            end
            n = 2
            if chance(0.1) then args[2] = any() end
            opts.container = true
        else
            n = rnd(4) - 1
            for i = 1, n do args[i] = any() end
        end
        exec('sim.' .. name, fn, args, n, pc, opts)
    end)
end

-- world methods (every name the method table has: a method added later is fuzzed with
-- pool arguments at least)
local world_methods = {}
local wmt = debug and debug.getmetatable and debug.getmetatable(probe)
if type(wmt) == 'table' and type(wmt.__index) == 'table' then
    for k, v in pairs(wmt.__index) do
        if type(v) == 'function' then world_methods[#world_methods + 1] = k end
    end
else
    world_methods = { 'host', 'link', 'link_oneway', 'partition', 'partition_oneway', 'heal', 'group',
        'link_groups', 'partition_groups', 'heal_groups', 'crash', 'restart', 'faults', 'now', 'advance',
        'seed', 'trace', 'digest', 'pcap', 'captured', 'replay_hint', 'live_sockets', 'open_fds', 'sockets',
        'socket_table', 'closed', 'close', 'spawn', 'run', 'tasks' }
end
table.sort(world_methods)
local WORLD_WEIGHT = { host = 6, close = 0.5, run = 4, spawn = 5, advance = 3, link = 3, faults = 3, rule = 3,
    remove_rule = 1 }
for _, name in ipairs(world_methods) do
    target('world:' .. name, WORLD_WEIGHT[name] or 2, function(pc, depth)
        local w = a_world()
        local fn = probe[name]
        local args, n = { w }, 1
        local opts = {}
        local function host() n = n + 1; args[n] = a_host_arg(w) end
        if name == 'host' then
            n = 2
            args[2] = maybe(pick(NAMES))
            opts.on_result = function(r) if is_world(args[1]) then adopt_host(r[1], args[1]) end end
        elseif name == 'link' or name == 'link_oneway' then
            host(); host()
            n = n + 1; args[n] = link_opts()
        elseif name == 'partition' or name == 'partition_oneway' or name == 'heal' then
            host(); host()
        elseif name == 'group' then
            n = 2
            args[2] = maybe(pick(GROUPS))
            for _ = 1, rnd(4) - 1 do host() end
        elseif name == 'link_groups' then
            args[2], args[3], args[4], n = maybe(pick(GROUPS)), maybe(pick(GROUPS)), link_opts(), 4
        elseif name == 'partition_groups' or name == 'heal_groups' then
            args[2], args[3], n = maybe(pick(GROUPS)), maybe(pick(GROUPS)), 3
        elseif name == 'crash' or name == 'restart' or name == 'open_fds' or name == 'sockets' then
            host()
        elseif name == 'socket_table' then
            if chance(0.6) then host() end
        elseif name == 'faults' then
            host()
            n = n + 1; args[n] = fault_opts()
        elseif name == 'advance' then
            n = 2
            args[2] = maybe(pick({ 0, 1, 5, 50, 1000, 0.25, 1, 5, 50, 1000, 0.25, 1e6 }), 0.2)
            if chance(0.02) then args[2] = pick({ 9.1e12, 4.6e12, 9.2e12 - 1 }) end
        elseif name == 'pcap' then
            n = 2
            args[2] = pick({ pcap_path, pcap_path, '/nonexistent-llsocket-fuzz/x.pcap', 'bad\0path', 5, nil })
        elseif name == 'spawn' then
            host()
            args[3] = maybe(chance(0.5) and 'task' or nil, 0.1)
            args[4] = chance(0.9) and task_fn(depth + 1, is_world(w) and wid(w) or nil) or any()
            n = 4 + rnd(3) - 1
            for i = 5, n do args[i] = any() end
            opts.container = true
            opts.on_result = function(r) if type(r[1]) == 'table' then viewset[r[1]] = true; adopt(r[1]) end end
        elseif name == 'run' then
            if run_depth >= MAX_DEPTH then return end
            local r = rnd(10)
            if r <= 5 then
                local ok, now = pcall(probe.now, w)
                args[2] = { deadline = (ok and now or 0) + pick({ 0, 1, 10, 100, 1000 }) }
            elseif r <= 8 then
                args[2] = nil
            else
                args[2] = any()
            end
            n = 2
            opts.container = true
            run_depth = run_depth + 1
            exec('world:run', fn, args, n, pc, opts)
            run_depth = run_depth - 1
            check_tasks('world:run', w)
            return
        elseif name == 'rule' then
            local id = is_world(w) and wid(w) or nil
            if chance(0.5) then host(); host() end
            n = n + 1
            args[n] = chance(0.9) and rule_fn(depth + 1, id) or any()
            opts.on_result = function(r) if type(r[1]) == 'number' then put(RULE_IDS, r[1], 40) end end
        elseif name == 'remove_rule' then
            n = 2
            args[2] = (#RULE_IDS > 0 and chance(0.7)) and RULE_IDS[rnd(#RULE_IDS)] or maybe(pick({ 0, 1, 2, -1, 2 ^ 53 }), 0.3)
        elseif name == 'tasks' then
            opts.on_result = function(r)
                if type(r[1]) == 'table' then
                    for i = 1, #r[1] do viewset[r[1][i]] = true; adopt(r[1][i]) end
                end
            end
        elseif WORLD_WEIGHT[name] == nil and not ({ now = 1, seed = 1, trace = 1, digest = 1, captured = 1,
                replay_hint = 1, live_sockets = 1, closed = 1, close = 1 })[name] then
            -- a method this fuzzer does not know (yet): pool arguments, some of them hosts
            n = rnd(5)
            for i = 2, n do args[i] = chance(0.4) and a_host_arg(w) or any() end
        end
        if chance(0.04) then args[1] = any() end
        local id = is_world(w) and wid(w) or nil
        opts.id = opts.id or id
        exec('world:' .. name, fn, args, n, pc, opts)
    end)
end

-- world metamethods, by hand
if type(wmt) == 'table' then
    local metas = {}
    for k, v in pairs(wmt) do
        if type(v) == 'function' then metas[#metas + 1] = k end
    end
    table.sort(metas)
    for _, name in ipairs(metas) do
        target('world.' .. name, name == '__gc' and 0.3 or 1, function(pc)
            local self = chance(0.7) and a_world() or any()
            exec('world.' .. name, wmt[name], { self, any() }, rnd(2), pc, {})
        end)
    end
end

-- the worlds' __index (a table: indexing by hand, with any key, on worlds and foreign values)
target('world[key]', 0.5, function(pc)
    local self = chance(0.8) and a_world() or any()
    local key = chance(0.5) and pick(world_methods) or any()
    exec('world[key]', function(w, k) return w[k] end, { self, key }, 2, pc, {
        lenient = not is_world(self), allowed = { 'fuzz:', 'not enough memory' },
    })
end)

-- host module functions: enumerated on a host (every sub-table's functions)
local host_funcs = {}
do
    local h = probe:host('probe')
    for _, sub in ipairs({ 'socket', 'addrinfo', 'msghdr', 'cmsghdr', 'cmsghdrs', 'iovec', 'device', 'errno' }) do
        if type(h[sub]) == 'table' then
            for name, fn in pairs(h[sub]) do
                if type(fn) == 'function' then host_funcs[#host_funcs + 1] = { sub, name } end
            end
        end
    end
    table.sort(host_funcs, function(a, b) return a[1] .. '.' .. a[2] < b[1] .. '.' .. b[2] end)
end
local HOST_WEIGHT = { ['socket.new'] = 8, ['socket.pair'] = 3, ['addrinfo.inet'] = 3 }
for _, sf in ipairs(host_funcs) do
    local sub, name = sf[1], sf[2]
    local full = sub .. '.' .. name
    target('host.' .. full, HOST_WEIGHT[full] or 1, function(pc)
        local h = a_host()
        if h == nil then return end
        local fn = h[sub] and h[sub][name]
        if type(fn) ~= 'function' then return end
        local args, n = {}, 0
        if full == 'socket.new' then
            args[1] = maybe(pick({ h.AF_INET, h.AF_INET, h.AF_INET6, h.AF_UNIX }))
            args[2] = maybe(pick({ h.SOCK_STREAM, h.SOCK_STREAM, h.SOCK_DGRAM, h.SOCK_SEQPACKET }))
            args[3] = maybe(0, 0.05)
            args[4] = chance(0.5)
            n = 4
        elseif full == 'socket.pair' then
            args[1], args[2], args[3], n = maybe(pick({ h.SOCK_STREAM, h.SOCK_DGRAM, h.SOCK_SEQPACKET })), 0, chance(0.5), 3
        elseif full == 'socket.wrap' then
            args[1], n = a_fd(), 1
        elseif full == 'socket.close' or full == 'socket.shutdown' then
            args[1], args[2], n = a_fd(), chance(0.5) and GEN.how() or nil, 2
        elseif full == 'addrinfo.inet' or full == 'addrinfo.inet6' then
            local peer = a_host() or h
            args[1] = maybe(full == 'addrinfo.inet' and pick({ peer.ipv4, '0.0.0.0', '127.0.0.1' }) or pick({ peer.ipv6, '::' }))
            args[2] = maybe(pick(PORTS))
            n = 2
            if chance(0.3) then args[3], n = pick({ h.SOCK_STREAM, h.SOCK_DGRAM }), 3 end
        elseif full == 'addrinfo.unix' then
            args[1], n = maybe(pick({ '/sim.sock', '\0abs', string.rep('p', 200) })), 1
        elseif full == 'addrinfo.getaddrinfo' then
            args[1] = maybe(pick({ 'a', 'b', 'srv', 'localhost', '10.0.0.1', 'fd00::2', 'nowhere' }))
            args[2] = maybe(pick({ '80', 'http', nil, '0' }))
            n = 2
        elseif full == 'cmsghdr.new' then
            args[1], args[2], args[3], n = pick({ h.SOL_SOCKET, 0, 41 }), pick({ h.SCM_RIGHTS, 1, 2 }), pick(DATA), 3
        elseif full == 'cmsghdr.rights' then
            n = rnd(3)
            for i = 1, n do args[i] = a_fd() end
        else
            n = rnd(4) - 1
            for i = 1, n do args[i] = any() end
        end
        exec('host.' .. full, fn, args, n, pc, { involved = { h, n = 1 }, id = owner[h], sim = true })
    end)
end

-- the kernel module's functions, given objects of the simulated hosts (and the pool); the
-- descriptor numbers stay off the standard ones, lookups numeric (see fuzz.lua)
local kernel_funcs = {}
for _, sub in ipairs({ 'socket', 'addrinfo', 'msghdr', 'cmsghdr', 'cmsghdrs', 'iovec' }) do
    for name, fn in pairs(ll[sub]) do
        if type(fn) == 'function' then kernel_funcs[#kernel_funcs + 1] = { sub .. '.' .. name, fn } end
    end
end
table.sort(kernel_funcs, function(a, b) return a[1] < b[1] end)
for _, kf in ipairs(kernel_funcs) do
    local full, fn = kf[1], kf[2]
    target('kernel.' .. full, 0.3, function(pc)
        local n = rnd(4) - 1
        local args = {}
        for i = 1, n do
            local r = rnd(10)
            if r <= 4 and #SS > 0 then
                args[i] = SS[rnd(#SS)]
            elseif r <= 6 and #OBJ > 0 then
                args[i] = OBJ[rnd(#OBJ)]
            elseif r <= 7 and #AI > 0 then
                args[i] = AI[rnd(#AI)]
            else
                args[i] = any()
            end
        end
        for i = 1, n do
            if type(args[i]) == 'number' and args[i] >= 0 and args[i] <= 2 then args[i] = -1 end
        end
        if full == 'addrinfo.getaddrinfo' then
            args[6], n = ll.AI_NUMERICHOST, 6
        elseif full == 'socket.wrap' or full == 'socket.close' or full == 'socket.shutdown' then
            -- (never a descriptor of the process: the simulated ones are small numbers too)
            args[1] = -1
        end
        exec('kernel.' .. full, fn, args, n, pc, {})
    end)
end

-- socket methods (shared by every module instance) and metamethods, on simulated sockets
-- mostly
local sock_methods = {}
local smt
do
    local w = sim.new()
    local h = w:host('s')
    local s = h.socket.new(h.AF_INET, h.SOCK_DGRAM)
    smt = debug and debug.getmetatable and debug.getmetatable(s)
    local methods = type(smt) == 'table' and type(smt.__index) == 'table' and smt.__index
    if methods then
        for k, v in pairs(methods) do
            if type(v) == 'function' then sock_methods[#sock_methods + 1] = { k, v } end
        end
    else
        for _, k in ipairs({ 'fd', 'close', 'bind', 'listen', 'connect', 'accept', 'send', 'recv', 'sendto',
            'recvfrom', 'recvable', 'sendable', 'shutdown', 'getsockname', 'getpeername', 'nonblock' }) do
            sock_methods[#sock_methods + 1] = { k, s[k] }
        end
    end
    s:close()
    w:close()
end
table.sort(sock_methods, function(a, b) return a[1] < b[1] end)
local WANTS = {
    accept = 'listen', acceptfd = 'listen', acceptconn = 'listen', recv = 'conn', send = 'conn',
    read = 'conn', write = 'conn', recvmsg = 'conn', sendmsg = 'conn', sendfile = 'conn',
    recvfd = 'conn', sendfd = 'conn', shutdown = 'conn', getpeername = 'conn', atmark = 'conn',
    recvable = 'conn', sendable = 'conn', tcpnodelay = 'conn', linger = 'conn', close = 'conn',
    sendto = 'dgram', recvfrom = 'dgram', mcastjoin = 'dgram', mcastif = 'dgram',
}
local SOCK_WEIGHT = { connect = 3, accept = 3, send = 4, recv = 4, sendto = 3, recvfrom = 2, bind = 3,
    listen = 2, close = 2, recvable = 2, sendable = 2, sendmsg = 2, recvmsg = 2, nonblock = 2 }
for _, nm in ipairs(sock_methods) do
    local name, fn = nm[1], nm[2]
    target('sock:' .. name, SOCK_WEIGHT[name] or 1, function(pc)
        local r = rnd(100)
        local self
        local wants = WANTS[name] and ROLE[WANTS[name]]
        if wants and #wants > 0 and r <= 55 then
            self = a_live(wants, owner_id)
        elseif r <= 90 and #SS > 0 then
            self = a_live(SS, owner_id)
        elseif r <= 96 and #KS > 0 and KERNEL_OK[name] then
            self = KS[rnd(#KS)]
        elseif r <= 98 then
            self = any()
        end
        if ksocks[self] and not KERNEL_OK[name] then return end
        if self == nil and #SS > 0 then self = a_live(SS, owner_id) end
        local args = { self }
        local spec = SOCK_ARGS[name] or (({ fd = 1, family = 1, socktype = 1, protocol = 1, unwrap = 1, dup = 1,
            acceptfd = 1, atmark = 1, getsockname = 1, getpeername = 1, error = 1, acceptconn = 1 })[name] and {}
            or OPT_ARGS)
        local h
        if owner[self] then
            for i = 1, #H do
                if owner[H[i]] == owner[self] then h = H[i]; break end
            end
        end
        local n = gen_args(spec, args, 2, h)
        if spec == OPT_ARGS and n >= 2 and chance(0.5) then args[2] = GEN.int() end
        if ksocks[self] then
            if chance(0.9) then
                args, n = tame_kernel(name, args, n)
            else
                return
            end
        end
        local kernel_self = ksocks[self]
        exec('sock:' .. name, fn, args, n, pc, {
            id = owner[self], sim = owner[self] ~= nil,
            on_result = function(res)
                if (name == 'accept' or name == 'dup') and res[1] then role(res[1], 'conn') end
                if res[1] == true and not kernel_self then
                    if name == 'listen' then role(self, 'listen') elseif name == 'connect' then role(self, 'conn') end
                end
                if name == 'unwrap' or name == 'acceptfd' or name == 'recvfd' or name == 'fd' then
                    if type(res[1]) == 'number' then
                        if kernel_self then
                            if name ~= 'fd' then handed[#handed + 1] = res[1] end
                        else
                            put(FDS, res[1], 40)
                        end
                    end
                end
            end,
        })
    end)
end
if type(smt) == 'table' then
    local metas = {}
    for k, v in pairs(smt) do
        if type(v) == 'function' then metas[#metas + 1] = k end
    end
    table.sort(metas)
    for _, name in ipairs(metas) do
        target('sock.' .. name, 1, function(pc)
            local self = (#SS > 0 and chance(0.7)) and SS[rnd(#SS)] or any()
            if ksocks[self] then return end
            exec('sock.' .. name, smt[name], { self }, 1, pc, { sim = owner[self] ~= nil })
        end)
    end
end

-- methods of the plain types on objects hosts made (iovec writev/readv and getnameinfo run
-- on their host)
local kinds = {}
for kind in pairs(MT) do kinds[#kinds + 1] = kind end
table.sort(kinds)
for _, kind in ipairs(kinds) do
    local mt = MT[kind]
    local names = {}
    for k, v in pairs(mt) do
        if type(v) == 'function' then names[#names + 1] = { k, v } end
    end
    for k, v in pairs(mt.__index) do
        names[#names + 1] = { k, v }
    end
    table.sort(names, function(a, b) return a[1] < b[1] end)
    for _, nm in ipairs(names) do
        local name, fn = nm[1], nm[2]
        target(kind .. ':' .. name, (name == 'writev' or name == 'readv' or name == 'getnameinfo') and 2 or 0.3,
            function(pc)
                local self
                if kind == 'addrinfo' then self = (#AI > 0 and chance(0.9)) and AI[rnd(#AI)] or any() else self = an_obj(mt) end
                local args, n = { self }, 1
                if name == 'writev' or name == 'readv' then
                    args[2], n = a_fd(), 2
                    if not owner[self] and type(args[2]) == 'number' then
                        return -- a kernel iovec: fuzz.lua's business
                    end
                elseif name == 'getnameinfo' then
                    n = 1
                    if not owner[self] then return end -- (the kernel's: no lookups from here)
                elseif name == 'iov' or name == 'name' or name == 'control' or name == 'push' then
                    args[2], n = pick({ an_obj(MT.iovec), an_addr(), an_obj(MT.cmsghdrs), an_obj(MT.cmsghdr) }), 2
                elseif name == 'add' then
                    args[2], n = pick(DATA), 2
                elseif name == 'addn' then
                    args[2], n = pick({ 1, 100, 4096 }), 2
                else
                    n = rnd(3)
                    for i = 2, n do args[i] = any() end
                end
                exec(kind .. ':' .. name, fn, args, n, pc, { id = owner[self], sim = owner[self] ~= nil })
            end)
    end
end

-- an rng kept past its rule's call (it raises), with any arguments
target('rng', 0.5, function(pc)
    local g = (#RNGS > 0 and chance(0.9)) and RNGS[rnd(#RNGS)] or any()
    local m = pick({ 'chance', 'range', 'duration' })
    local fn = type(g) == 'userdata' and (pcall(function() return g[m] end)) and g[m] or nil
    if type(fn) ~= 'function' then return end
    exec('rng:' .. m, fn, { g, any(), any() }, rnd(3), pc, {})
end)

-- task objects
target('task.view', 2, function(pc)
    local v = (#TK > 0 and chance(0.9)) and TK[rnd(#TK)] or any()
    local r = rnd(4)
    local fn, args
    if r == 1 then
        fn, args = function(t, k) return t[k] end, { v, pick({ 'name', 'host', 'status', 'waits', 'results', 'error', 1, {} }) }
    elseif r == 2 then
        fn, args = function(t, k, x) t[k] = x end, { v, pick({ 'status', 'name', 'x' }), 'done' }
    elseif r == 3 then
        fn, args = tostring, { v }
    else
        fn, args = function(t) return getmetatable(t), next(t) end, { v }
    end
    -- (a task object: reading never raises, writing raises that it is read-only)
    exec('task.view', fn, args, #args, pc, {
        container = true, lenient = not viewset[v],
        allowed = { 'read%-only', 'bad argument #1 to .-next', 'fuzz:', 'not enough memory' },
    })
end)

-- scenarios: worlds with hosts, links, faults and connected sockets; worlds dropped and
-- collected, revived; tasks spawned and run
local function need(v, e)
    if not v then error('fuzz: setup: ' .. tostring(e), 0) end
    return v
end
local function setup_world(pc)
    local made = {}
    local ok, err = pc(function()
        local w = sim.new(world_opts())
        made[1] = w
        adopt(w)
        local id = wid(w)
        local hs = {}
        for i = 1, 2 + rnd(3) do
            hs[i] = w:host(NAMES[i])
            adopt_host(hs[i], w)
        end
        local a, b = hs[1], hs[2]
        if chance(0.5) then w:link(a, b, link_opts()) end
        if chance(0.3) then w:faults(hs[rnd(#hs)], fault_opts()) end
        if chance(0.2) then w:group('g1', a); w:group('g2', b, hs[3] or b) end
        local port = 1000 + rnd(50000)
        local l = need(b.socket.new(b.AF_INET, b.SOCK_STREAM))
        l:reuseaddr(true)
        adopt(l, id)
        adopt(b.addrinfo.inet(b.ipv4, port), id)
        if l:bind(b.addrinfo.inet(b.ipv4, port)) and l:listen() then
            role(l, 'listen')
            for _ = 1, rnd(3) do
                local c = need(a.socket.new(a.AF_INET, a.SOCK_STREAM))
                adopt(c, id)
                if chance(0.3) then c:nonblock(true) end
                if c:connect(a.addrinfo.inet(b.ipv4, port)) then
                    role(c, 'conn')
                    if chance(0.3) then l:nonblock(true) end
                    local s = chance(0.8) and l:accept()
                    if s then
                        adopt(s, id)
                        role(s, 'conn')
                        if chance(0.5) then c:send('hello') end
                        if chance(0.3) then s:send(string.rep('s', 3000)) end
                    end
                end
            end
        end
        local u1 = need(a.socket.new(a.AF_INET, a.SOCK_DGRAM, 0, chance(0.5)))
        local u2 = need(b.socket.new(b.AF_INET, b.SOCK_DGRAM, 0, chance(0.5)))
        u1:bind(a.addrinfo.inet(a.ipv4, 53))
        u2:bind(b.addrinfo.inet(b.ipv4, 53))
        adopt(u1, id); adopt(u2, id)
        role(u1, 'dgram'); role(u2, 'dgram')
        adopt(b.addrinfo.inet(b.ipv4, 53), id)
        adopt(a.addrinfo.inet(a.ipv4, 53), id)
        if chance(0.5) then u1:sendto('ping', b.addrinfo.inet(b.ipv4, 53)) end
        local p = a.socket.pair(pick({ a.SOCK_STREAM, a.SOCK_DGRAM }))
        if p then adopt(p[1], id); adopt(p[2], id); role(p[1], 'conn'); role(p[2], 'conn') end
        local mh = a.msghdr.new()
        local iov = a.iovec.new()
        iov:add('payload'); iov:addn(64)
        mh:iov(iov)
        adopt(mh, id); adopt(iov, id)
        adopt(a.cmsghdrs.new(), id)
        adopt(a.cmsghdr.rights(3, 4), id)
    end)
    if not ok then classify('scenario:setup_world', err, made, false) end
end

local function remove_from(list, v)
    for i = #list, 1, -1 do
        if list[i] == v then
            list[i] = list[#list]
            list[#list] = nil
        end
    end
end
local function drop_world(w)
    remove_from(W, w)
    remove_from(ANY, w)
end

local function scenario(pc, depth)
    local r = rnd(100)
    if r <= 35 then
        setup_world(pc)
    elseif r <= 50 then
        -- a collected world: every reference dropped, the collector run; its hosts and
        -- sockets stay in the pools
        if #W > 0 then
            drop_world(W[rnd(#W)])
            C.full_gc()
        end
    elseif r <= 60 then
        -- a world revived by a finalizer (closed by its own __gc first)
        revive_later(function()
            local w = sim.new({ seed = rnd(100) })
            local h = w:host('r')
            adopt_host(h, w)
            local s = h.socket.new(h.AF_INET, h.SOCK_STREAM)
            adopt(s, wid(w))
            return w
        end)
        C.full_gc()
    elseif r <= 65 then
        -- a simulated socket revived by a finalizer
        local h = a_host()
        if h then
            pcall(revive_later, function()
                local s = h.socket.new(h.AF_INET, h.SOCK_DGRAM)
                owner[s] = owner[h]
                return s
            end)
        end
    elseif r <= 72 then
        meddlers(rnd(3))
    elseif r <= 90 then
        -- tasks on a world, then a run
        local w = a_world()
        if is_world(w) and run_depth < MAX_DEPTH then
            local hs = hosts_of(w)
            for _ = 1, rnd(4) do
                local h = #hs > 0 and hs[rnd(#hs)] or a_host_arg(w)
                exec('scenario:spawn', probe.spawn, { w, h, nil, task_fn(depth + 1, wid(w)) }, 4, pc, {
                    container = true,
                    on_result = function(res) if type(res[1]) == 'table' then viewset[res[1]] = true; adopt(res[1]) end end,
                })
            end
            run_depth = run_depth + 1
            exec('scenario:run', probe.run, { w, chance(0.7) and { deadline = 100 } or nil }, 2, pc, { container = true })
            run_depth = run_depth - 1
            check_tasks('scenario:run', w)
        end
    else
        C.full_gc()
    end
end

-- After a run, outside every run: the world's tasks are consistent.
local STATUS = { ready = true, waiting = true, done = true, failed = true }
function check_tasks(name, w)
    if run_depth > 0 or not is_world(w) then return end
    local ok, list = pcall(probe.tasks, w)
    if not ok or type(list) ~= 'table' then return end
    for i = 1, #list do
        local v = list[i]
        local ok2, st, waits, nm = pcall(function() return v.status, v.waits, v.name, v.results, v.error, v.host end)
        if not ok2 then
            fail('a task object raises when read', name, tostring(st))
        elseif not STATUS[st] then
            fail('a task is ' .. tostring(st) .. ' after the run', name, tostring(nm))
        elseif st == 'waiting' and type(waits) ~= 'string' then
            fail('a waiting task does not say what it waits on', name, tostring(nm))
        end
    end
end

-- the weighted choice of a target
local total = 0
for _, t in ipairs(TARGETS) do total = total + t[2] end
local SCENARIO_SHARE = 0.025
function one(pc, depth)
    depth = depth or 0
    if calls >= CALLS then return end
    if depth == 0 and chance(0.003) then storm_start(30 + rnd(30)) end
    if chance(SCENARIO_SHARE) or #W == 0 or #H == 0 then
        scenario(pc, depth)
        return
    end
    local x = rnd(1000000) / 1000000 * total
    for _, t in ipairs(TARGETS) do
        x = x - t[2]
        if x <= 0 then
            t[3](pc, depth)
            return
        end
    end
end

local started = os.clock()
setup_world(pcall)
setup_world(pcall)
local ok, err = xpcall(function()
    local guard = 0
    while calls < CALLS and guard < CALLS * 20 do
        guard = guard + 1
        one(pcall, 0)
    end
end, debug and debug.traceback or tostring)
local elapsed = os.clock() - started
if debug and debug.sethook then debug.sethook() end

-- ---------------------------------------------------------------------------
-- clean up and account for every kernel descriptor

bombs.armed = false
while storm > 0 do storm_tick() end
live_pools = false
ROLE, RULE_IDS, RNGS = nil, nil, nil
for s in pairs(ksocks) do pcall(function() s:close() end) end
for _, fd in ipairs(handed) do
    if fd > 2 then ll.socket.close(fd) end
end
local worlds_seen = next_wid
W, H, SS, KS, AI, OBJ, TK, FDS, ANY, ksocks = {}, {}, {}, {}, {}, {}, {}, {}, {}, {}
probe, first_world, klisten, KADDRS = nil, nil, nil, nil
C.full_gc()
os.remove(pcap_path)
local fds_after = C.open_fds(ll)

print(string.format('fuzz_sim seed %d: %d calls (%.1f s), %d raised, %d worlds, %d armed finalizers fired, '
    .. '%d meddling finalizers ran, kernel descriptors %d -> %d',
    seed, calls, elapsed, raised, worlds_seen, bombs.hits, meddle_hits, fds_before, fds_after))
if stats then
    local names = {}
    for k in pairs(stats) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
        local st = stats[k]
        print(string.format('%-28s %6d calls %5.0f%% raised %5.0f%% returned a value', k, st[1],
            100 * st[2] / st[1], 100 * st[4] / st[1]))
        local ms = {}
        for m, c in pairs(st[3]) do ms[#ms + 1] = { m, c } end
        table.sort(ms, function(a, b) return a[2] > b[2] end)
        for i = 1, math.min(3, #ms) do print(string.format('      %5d %s', ms[i][2], ms[i][1])) end
    end
end
local failed = false
if not ok then
    print('FAIL escaped error: ' .. tostring(err))
    failed = true
end
for _, m in ipairs(bad) do
    print('FAIL ' .. m)
    failed = true
end
for _, name in ipairs(hung) do
    print('FAIL hang: ' .. name .. ' ran for more than ' .. WATCH .. ' s')
    failed = true
end
if fds_after > fds_before then
    print('FAIL descriptor leak: ' .. (fds_after - fds_before))
    failed = true
end
os.exit(failed and 1 or 0, true) -- close the state: valgrind then sees every free
