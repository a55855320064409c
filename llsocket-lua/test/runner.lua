-- llsocket-lua/test/runner.lua: runs every sibling `*_test.lua` file.
--
-- Usage (from anywhere; the files are found relative to this script's path):
--
--     LUA_CPATH='<dir of llsocket.so>/?.so;;' lua5.4 llsocket-lua/test/runner.lua [filter ...]
--
-- Each filter is a plain substring; a file runs when its name contains any of them.
-- Prints every failure as `FAIL <file>: <test>: <message>`, then `N passed, M failed`,
-- and exits with status 1 when anything failed (also when no test ran at all).
-- With LLSOCKET_TEST_VERBOSE=1 in the environment each test is named on stderr before it
-- runs (what finds the test of a crash).
--
-- Works unchanged on Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT; needs no external module.
-- Loaded with the single argument '--lib' it returns its functions instead of running
-- (the Rust test harness does that to run the suite in-process).
--
-- A test file is a chunk called with the helper table `t`; it registers its tests with
-- `t.case(name, fn)`. Tests run in registration order, each under pcall; functions
-- registered with `t.cleanup(fn)` during a test run after it, whatever its outcome.
-- `t.skip(reason)` ends a test as skipped: printed as `SKIP ...` and never counted as passed.
--
-- Note for test writers: call the function under test in a statement, not in a
-- `return f(...)` tail call, when a test depends on the callee's name in a message
-- (tail calls lose the caller information the messages are built from).

local M = {}

local unpack = table.unpack or unpack
local select, type, tostring, pcall, error = select, type, tostring, pcall, error
local format, find = string.format, string.find
local verbose = os.getenv('LLSOCKET_TEST_VERBOSE') == '1'

-- ---------------------------------------------------------------------------
-- helpers given to test files

local t = {}
M.t = t

local cleanups -- list of the running test's cleanup functions
local registered -- list of {name, fn} of the file being loaded

-- A readable rendering of a value for messages.
local function repr(v)
    if type(v) == 'string' then
        return format('%q', v)
    end
    return tostring(v)
end
t.repr = repr

-- The failure marker: a table so that the runner can tell assertion failures from
-- other errors (both are reported; the marker just carries a clean message).
local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f)
    return f.msg
end

function t.fail(msg)
    error(setmetatable({ msg = tostring(msg) }, Failure), 0)
end
local fail = t.fail

-- Stops the running test as skipped (reported apart; never counted as passed).
local Skip = {}
Skip.__tostring = function(x)
    return 'skipped: ' .. x.msg
end
function t.skip(reason)
    error(setmetatable({ msg = tostring(reason) }, Skip), 0)
end

local function with(msg, text)
    if msg ~= nil then
        return tostring(msg) .. ': ' .. text
    end
    return text
end

function t.case(name, fn)
    if type(name) ~= 'string' or type(fn) ~= 'function' then
        error('t.case(name, fn): bad arguments', 2)
    end
    registered[#registered + 1] = { name, fn }
end

function t.cleanup(fn)
    cleanups[#cleanups + 1] = fn
end

function t.pack(...)
    return { n = select('#', ...), ... }
end
local pack = t.pack

t.unpack = unpack

function t.ok(v, msg)
    if not v then
        fail(with(msg, 'expected a true value, got ' .. repr(v)))
    end
    return v
end

function t.eq(actual, expected, msg)
    if actual ~= expected then
        fail(with(msg, 'expected ' .. repr(expected) .. ', got ' .. repr(actual)))
    end
    return actual
end

function t.ne(actual, unexpected, msg)
    if actual == unexpected then
        fail(with(msg, 'expected anything but ' .. repr(unexpected)))
    end
    return actual
end

local function deep_equal(a, b, seen)
    if a == b then
        return true
    end
    if type(a) ~= 'table' or type(b) ~= 'table' then
        return false
    end
    seen = seen or {}
    if seen[a] == b then
        return true
    end
    seen[a] = b
    for k, v in pairs(a) do
        if not deep_equal(v, b[k], seen) then
            return false
        end
    end
    for k in pairs(b) do
        if a[k] == nil then
            return false
        end
    end
    return true
end

local function dump(v, depth)
    depth = depth or 0
    if type(v) ~= 'table' or depth > 3 then
        return repr(v)
    end
    local keys = {}
    for k in pairs(v) do
        keys[#keys + 1] = k
    end
    table.sort(keys, function(x, y)
        return tostring(x) < tostring(y)
    end)
    local parts = {}
    for _, k in ipairs(keys) do
        parts[#parts + 1] = '[' .. repr(k) .. ']=' .. dump(v[k], depth + 1)
    end
    return '{' .. table.concat(parts, ', ') .. '}'
end
t.dump = dump

function t.deq(actual, expected, msg)
    if not deep_equal(actual, expected) then
        fail(with(msg, 'expected ' .. dump(expected) .. ', got ' .. dump(actual)))
    end
    return actual
end

function t.is_nil(v, msg)
    if v ~= nil then
        fail(with(msg, 'expected nil, got ' .. repr(v)))
    end
end

function t.not_nil(v, msg)
    if v == nil then
        fail(with(msg, 'expected a non-nil value'))
    end
    return v
end

function t.is_true(v, msg)
    if v ~= true then
        fail(with(msg, 'expected true, got ' .. repr(v)))
    end
end

function t.is_false(v, msg)
    if v ~= false then
        fail(with(msg, 'expected false, got ' .. repr(v)))
    end
end

function t.is_type(v, tname, msg)
    if type(v) ~= tname then
        fail(with(msg, 'expected a ' .. tname .. ', got ' .. type(v) .. ' ' .. repr(v)))
    end
    return v
end

-- Lua >= 5.3 tells integers from floats; before, every number passes.
function t.is_int(v, msg)
    if type(v) ~= 'number' or v ~= math.floor(v) then
        fail(with(msg, 'expected an integer, got ' .. repr(v)))
    end
    if math.type and math.type(v) ~= 'integer' then
        fail(with(msg, 'expected the integer subtype, got ' .. repr(v)))
    end
    return v
end

function t.match(s, pattern, msg)
    if type(s) ~= 'string' or not find(s, pattern) then
        fail(with(msg, 'expected a string matching ' .. repr(pattern) .. ', got ' .. repr(s)))
    end
    return s
end

function t.has(s, plain, msg)
    if type(s) ~= 'string' or not find(s, plain, 1, true) then
        fail(with(msg, 'expected a string containing ' .. repr(plain) .. ', got ' .. repr(s)))
    end
    return s
end

-- Asserts that the call returns exactly `n` values; returns them packed.
function t.nres(n, ...)
    local r = pack(...)
    if r.n ~= n then
        local shown = {}
        for i = 1, r.n do
            shown[i] = repr(r[i])
        end
        fail(format('expected %d return values, got %d: (%s)', n, r.n, table.concat(shown, ', ')))
    end
    return r
end

-- Asserts that `fn()` raises an error whose message matches the Lua pattern; returns it.
function t.raises(fn, pattern, msg)
    local ok, err = pcall(fn)
    if ok then
        fail(with(msg, 'expected an error matching ' .. repr(pattern) .. ', but none was raised'))
    end
    if getmetatable(err) == Failure or getmetatable(err) == Skip then
        error(err, 0)
    end
    err = tostring(err)
    if pattern ~= nil and not find(err, pattern) then
        fail(with(msg, 'expected an error matching ' .. repr(pattern) .. ', got ' .. repr(err)))
    end
    return err
end

-- Escapes the magic characters of a Lua pattern.
local function esc(s)
    return (s:gsub('[%^%$%(%)%%%.%[%]%*%+%-%?]', '%%%0'))
end
t.esc = esc

-- Asserts a luaL_argerror-shaped error: `bad argument #n to '...' (detail)`.
-- `detail` is plain text; `n` as seen by the caller (method syntax already shifted).
function t.argerr(fn, n, detail, msg)
    return t.raises(fn, 'bad argument #' .. n .. ' .-%(' .. esc(detail) .. '%)', msg)
end

-- The llsocket module under test and its errno implementation.
local llsocket_mod
function t.llsocket()
    if not llsocket_mod then
        llsocket_mod = require('llsocket')
    end
    return llsocket_mod
end

-- A connected socketpair (SOCK_STREAM unless `ty` is given), closed after the test.
function t.pair(ty, nonblock)
    local ll = t.llsocket()
    local p = assert(ll.socket.pair(ty or ll.SOCK_STREAM, 0, nonblock))
    t.closing(p[1], p[2])
    return p[1], p[2]
end

-- `socket.new(...)`, asserted to succeed, closed after the test.
function t.socket(...)
    local s, err = t.llsocket().socket.new(...)
    t.not_nil(s, err and tostring(err))
    t.closing(s)
    return s
end

-- Asserts that `e` is an error object of errno `name` (e.g. 'EBADF') with op `op`.
function t.err(e, name, op, msg)
    local ll = t.llsocket()
    if type(e) ~= 'table' and type(e) ~= 'userdata' then
        fail(with(msg, 'expected an error object ' .. tostring(name) .. ', got ' .. repr(e)))
    end
    local want = ll.errno[name] or (ll.errno.eai and ll.errno.eai[name])
    if want == nil then
        fail(with(msg, 'no error type named ' .. tostring(name)))
    end
    if e.type ~= want then
        local got = e.type and e.type.name
        fail(with(msg, 'expected error type ' .. name .. ', got ' .. repr(got) .. ' (' .. tostring(e) .. ')'))
    end
    if op ~= nil and e.op ~= op then
        fail(with(msg, 'expected op ' .. repr(op) .. ', got ' .. repr(e.op)))
    end
    return e
end

-- The process id (Linux /proc), or nil.
local function pid()
    local f = io.open('/proc/self/stat', 'r')
    if not f then
        return nil
    end
    local line = f:read('*l')
    f:close()
    return line and line:match('^(%d+)')
end

local counter = 0
local seeded = false
-- A fresh unique path under /tmp (pid + random + counter); removed after the test.
function t.tmppath(tag)
    if not seeded then
        local addr = tostring({}):match('0x(%x+)') or tostring({}):match('(%x+)$') or '0'
        math.randomseed(os.time() + (tonumber(addr:sub(-7), 16) or 0) + math.floor(os.clock() * 1e6))
        seeded = true
    end
    counter = counter + 1
    local p = format('/tmp/llsocket-test-%s-%d-%d-%s.sock', pid() or 'x', math.random(1, 999999), counter, tag or 't')
    os.remove(p)
    t.cleanup(function()
        os.remove(p)
    end)
    return p
end

-- An object whose finalizer calls `fn`: a userdata from newproxy on Lua 5.1/LuaJIT (their
-- tables have no __gc), a table on 5.2+.
function t.on_gc(fn)
    if newproxy then
        local p = newproxy(true)
        getmetatable(p).__gc = fn
        return p
    end
    return setmetatable({}, { __gc = fn })
end

-- Closes the given objects after the test (sockets; anything with :close()).
function t.closing(...)
    local objs = pack(...)
    t.cleanup(function()
        for i = 1, objs.n do
            local o = objs[i]
            if o ~= nil and getmetatable(o) ~= nil then
                pcall(function()
                    o:close()
                end)
            end
        end
    end)
    return ...
end

-- ---------------------------------------------------------------------------
-- running

local function where_from_traceback()
    if not (debug and debug.traceback) then
        return nil
    end
    local tb = debug.traceback('', 3)
    for line in tb:gmatch('[^\n]+') do
        local loc = line:match('([^%s]*_test%.lua:%d+)')
        if loc then
            return loc
        end
    end
    return nil
end

local function handler(e)
    if getmetatable(e) == Skip then
        return e
    end
    local where = where_from_traceback()
    local msg
    if getmetatable(e) == Failure then
        msg = e.msg
    else
        msg = tostring(e)
    end
    if where and not find(msg, where, 1, true) then
        msg = msg .. ' [at ' .. where .. ']'
    end
    return msg
end

-- Runs one test file; returns the passed count, a list of {test, message} failures and a
-- list of {test, reason} skips.
function M.run_file(path, display)
    display = display or path
    local failures = {}
    local skipped = {}
    local passed = 0
    registered = {}
    local chunk, lerr = loadfile(path)
    if not chunk then
        failures[1] = { '(load)', tostring(lerr) }
        return 0, failures, skipped
    end
    local ok, err = xpcall(function()
        chunk(t)
    end, handler)
    if not ok then
        failures[1] = { '(file)', tostring(err) }
        return 0, failures, skipped
    end
    local list = registered
    registered = nil
    if #list == 0 then
        failures[1] = { '(file)', 'no tests registered' }
    end
    for i = 1, #list do
        local name, fn = list[i][1], list[i][2]
        cleanups = {}
        if verbose then
            io.stderr:write(format('--- %s: %s\n', display, name))
        end
        local tok, terr = xpcall(fn, handler)
        for k = #cleanups, 1, -1 do
            local cok, cerr = pcall(cleanups[k])
            if tok and not cok then
                tok, terr = false, 'cleanup: ' .. tostring(cerr)
            end
        end
        cleanups = nil
        collectgarbage('collect')
        if tok then
            passed = passed + 1
        elseif getmetatable(terr) == Skip then
            skipped[#skipped + 1] = { name, terr.msg }
        else
            failures[#failures + 1] = { name, tostring(terr) }
        end
    end
    collectgarbage('collect')
    return passed, failures, skipped
end

-- The directory of this script ('.' when run from its own directory).
local function own_dir()
    local path = arg and arg[0]
    if type(path) ~= 'string' then
        return '.'
    end
    return path:match('^(.*)[/\\][^/\\]*$') or '.'
end

-- The sibling `*_test.lua` files, sorted.
function M.list(dir)
    local files = {}
    local p = io.popen('ls -1 "' .. dir .. '"')
    if not p then
        error('runner: cannot list ' .. dir .. ' (io.popen unavailable)')
    end
    for name in p:lines() do
        if name:match('_test%.lua$') then
            files[#files + 1] = name
        end
    end
    p:close()
    table.sort(files)
    return files
end

local function main(...)
    local filters = pack(...)
    local dir = own_dir()
    local files = M.list(dir)
    local total_passed, total_failed, total_skipped = 0, 0, 0
    local ran = 0
    for _, name in ipairs(files) do
        local wanted = filters.n == 0
        for i = 1, filters.n do
            if find(name, filters[i], 1, true) then
                wanted = true
            end
        end
        if wanted then
            ran = ran + 1
            local passed, failures, skipped = M.run_file(dir .. '/' .. name, name)
            total_passed = total_passed + passed
            total_failed = total_failed + #failures
            total_skipped = total_skipped + #skipped
            for _, f in ipairs(failures) do
                io.write(format('FAIL %s: %s: %s\n', name, f[1], f[2]))
            end
            for _, f in ipairs(skipped) do
                io.write(format('SKIP %s: %s: %s\n', name, f[1], f[2]))
            end
            io.write(format('%-24s %d passed, %d failed, %d skipped\n', name, passed, #failures, #skipped))
        end
    end
    if ran == 0 then
        io.write('no *_test.lua file found in ' .. dir .. '\n')
        total_failed = total_failed + 1
    end
    if total_skipped > 0 then
        io.write(format('%d skipped (not counted as passed)\n', total_skipped))
    end
    io.write(format('%d passed, %d failed\n', total_passed, total_failed))
    io.stdout:flush()
    if total_failed > 0 then
        os.exit(1)
    end
    os.exit(0)
end

if select('#', ...) == 1 and (...) == '--lib' then
    return M
end
main(...)
