-- llsocket-lua/test/leakcheck.lua: runs every *_test.lua file through the runner (library
-- mode) and checks that no descriptor stays open afterwards. Exit status 1 on a leak or a
-- failed test. Run like runner.lua: `LUA_CPATH=... lua5.4 llsocket-lua/test/leakcheck.lua`.
local dir = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
-- Open descriptors among 0..4095 (safety/common.lua: probed with socket.wrap, nothing closed).
local C = dofile(dir .. '/safety/common.lua')
local function open_fds()
  return C.open_fds(require('llsocket'), 4095)
end
local M = assert(loadfile(dir .. '/runner.lua'))('--lib')
require('llsocket')
collectgarbage('collect')
local before = open_fds()
local failed = 0
for _, name in ipairs(M.list(dir)) do
  local _, failures = M.run_file(dir .. '/' .. name, name)
  failed = failed + #failures
end
collectgarbage('collect'); collectgarbage('collect')
local after = open_fds()
print(string.format('descriptors before %d after %d, %d failures', before, after, failed))
os.exit(before == after and failed == 0 and 0 or 1)
