-- llsocket-lua/test/fresh_states.lua: each sub-module required *first* in a new Lua state,
-- alone and in several orders, then objects made through different entry points used
-- together. Every case runs in a new interpreter process (the same interpreter as this
-- script, `arg[-1]`, with the same LUA_CPATH), because only a new state has never seen the
-- module. Prints `N passed, M failed`; exit status 1 on any failure.
--
--     LUA_CPATH='<dir of llsocket.so>/?.so;;' lua5.4 llsocket-lua/test/fresh_states.lua
local interp = arg and arg[-1]
if not interp or not io.popen then
    print('fresh_states.lua needs arg[-1] and io.popen (a standalone interpreter)')
    os.exit(1)
end

-- The program each case runs after its requires: objects of several entry points together.
local exercise = [[
local S = require('llsocket.socket')
local M = require('llsocket.msghdr')
local CS = require('llsocket.cmsghdrs')
local C = require('llsocket.cmsghdr')
local A = require('llsocket.addrinfo')
local ll = require('llsocket')
local p = assert(S.pair(ll.SOCK_DGRAM))
local mh = M.new()
local iov = ll.iovec.new()
iov:add('hello')
mh:iov(iov)
local cs = CS.new()
cs:push(C.new(ll.SOL_SOCKET, ll.SCM_RIGHTS, ''))
assert(p[1]:sendmsg(mh) == 5, 'sendmsg')
assert(p[2]:recv() == 'hello', 'recv')
local u = assert(S.new(ll.AF_INET, ll.SOCK_DGRAM))
assert(u:bind(A.inet('127.0.0.1', 0)), 'bind')
assert(require('llsocket.env').os == ll.env.os, 'env')
assert(type(require('llsocket.device').getifaddrs()) == 'table', 'device')
io.write('ok')
]]

local orders = {
    { 'llsocket.socket' }, { 'llsocket.addrinfo' }, { 'llsocket.msghdr' }, { 'llsocket.cmsghdr' },
    { 'llsocket.cmsghdrs' }, { 'llsocket.device' }, { 'llsocket.env' },
    { 'llsocket.msghdr', 'llsocket.socket', 'llsocket' },
    { 'llsocket.env', 'llsocket.device', 'llsocket.cmsghdrs' },
    { 'llsocket.cmsghdrs', 'llsocket.cmsghdr', 'llsocket.msghdr', 'llsocket.addrinfo', 'llsocket.socket' },
    { 'llsocket', 'llsocket.msghdr' },
    { 'llsocket.socket', 'llsocket.env', 'llsocket.addrinfo', 'llsocket' },
}

local passed, failed = 0, 0
for _, order in ipairs(orders) do
    local pre = {}
    for _, name in ipairs(order) do
        pre[#pre + 1] = string.format("assert(type(require(%q)) == 'table');", name)
    end
    local prog = table.concat(pre, ' ') .. '\n' .. exercise
    local f = io.popen(string.format('%s -e %q 2>&1', interp, prog))
    local out = f:read('*a')
    f:close()
    local what = table.concat(order, ', ')
    if out == 'ok' then
        passed = passed + 1
        print('ok   ' .. what)
    else
        failed = failed + 1
        print('FAIL ' .. what .. ': ' .. out)
    end
end
print(string.format('%d passed, %d failed', passed, failed))
os.exit(failed == 0 and 0 or 1)
