-- With a lua-errno module installed, error objects come from it (errors.md §1.1,
-- DECISIONS.md): `errno.new(code, nil, op [, wrap])` / `errno.eai.new(code, nil, op)`,
-- called directly by the failing function, and `llsocket.errno` is that module.
-- lua-errno is not installed here, so a recording double stands in for it; a second
-- instance of the module is loaded with it and the first one is restored afterwards.
local t = ...
local llsocket = t.llsocket()
local twin = llsocket.errno

-- Loads a fresh llsocket instance that sees `errno_mod` / `eai_mod` as the installed modules.
-- The error module is chosen once per Lua state (with the metatables, under the registry's
-- `llsocket.*` entries), so those entries are cleared for the load and restored after it:
-- the second instance then starts as the first loading in a new state would.
local function load_with(errno_mod, eai_mod)
    local saved = {}
    local reg = debug and debug.getregistry and debug.getregistry()
    local names = { 'llsocket.socket', 'llsocket.addrinfo', 'llsocket.msghdr', 'llsocket.cmsghdr',
        'llsocket.cmsghdrs', 'llsocket.iovec', 'llsocket.state' }
    if reg then
        for _, n in ipairs(names) do
            saved[n] = reg[n]
        end
    end
    local keep = { package.loaded.llsocket, package.loaded.errno, package.loaded['errno.eai'],
        package.preload.errno, package.preload['errno.eai'] }
    t.cleanup(function()
        package.loaded.llsocket, package.loaded.errno, package.loaded['errno.eai'] = keep[1], keep[2], keep[3]
        package.preload.errno, package.preload['errno.eai'] = keep[4], keep[5]
        if reg then
            for _, n in ipairs(names) do
                reg[n] = saved[n]
            end
        end
    end)
    package.loaded.llsocket, package.loaded.errno, package.loaded['errno.eai'] = nil, nil, nil
    if reg then
        for _, n in ipairs(names) do
            reg[n] = nil
        end
    end
    package.preload.errno = function()
        return errno_mod
    end
    package.preload['errno.eai'] = function()
        return eai_mod
    end
    local second = require('llsocket')
    t.ne(second, llsocket, 'a second instance')
    return second
end

-- A lua-errno double: every type known by name and by code, `new` records its arguments.
local function double(types, calls, tag)
    local M = {}
    for name, code in pairs(types) do
        local ty = { name = name, code = code, message = 'double ' .. name }
        M[name], M[code] = ty, ty
    end
    function M.new(code, msg, op, wrap, extra)
        calls[#calls + 1] = { tag = tag, code = code, msg = msg, op = op, wrap = wrap, extra = extra,
            n = select('#', code, msg, op, wrap, extra) }
        return { type = M[code], code = code, op = op, wrap = wrap, from = tag }
    end
    return M
end

t.case('error objects are created by the installed errno module', function()
    local calls = {}
    local errno = double({ EINVAL = twin.EINVAL.code, EBADF = twin.EBADF.code,
        EAFNOSUPPORT = twin.EAFNOSUPPORT.code }, calls, 'errno')
    local eai = double({ EAI_NONAME = twin.eai.EAI_NONAME.code }, calls, 'eai')
    local ll = load_with(errno, eai)
    t.eq(ll.errno, errno, 'llsocket.errno is the installed module')

    local _, e1 = ll.addrinfo.inet('bad')
    t.eq(e1.from, 'errno')
    t.eq(e1.type, errno.EAFNOSUPPORT, 'identity with the installed type')
    t.eq(calls[#calls].code, twin.EAFNOSUPPORT.code)
    t.is_nil(calls[#calls].msg)
    t.eq(calls[#calls].op, 'inet_pton')
    t.is_nil(calls[#calls].extra, 'no fifth argument for lua-errno')

    local s = t.closing(ll.socket.new(ll.AF_INET, ll.SOCK_STREAM))
    local _, e2 = s:send('')
    t.eq(e2.type, errno.EINVAL)
    t.eq(e2.op, 'send_lua')

    local _, e3 = ll.addrinfo.getaddrinfo()
    t.eq(e3.from, 'eai')
    t.eq(e3.type, eai.EAI_NONAME)
    t.eq(calls[#calls].tag, 'eai')
    t.eq(calls[#calls].op, 'getaddrinfo')

    local _, e4 = ll.socket.close(-1, ll.SHUT_RDWR)
    t.eq(e4.type, errno.EBADF)
    t.eq(e4.op, 'close')
    t.not_nil(e4.wrap, 'close error wraps the shutdown error')
    t.eq(e4.wrap.op, 'shutdown')
    t.eq(e4.wrap.type, errno.EBADF)
    t.eq(calls[#calls].wrap, e4.wrap, 'passed as the fourth argument')
end)

t.case('without errno.eai the built-in twin is used for both', function()
    local calls = {}
    local errno = double({ EINVAL = twin.EINVAL.code }, calls, 'errno')
    local ll = load_with(errno, nil)
    t.ne(ll.errno, errno)
    t.not_nil(ll.errno.EINVAL)
    t.not_nil(ll.errno.eai.EAI_NONAME)
    local s = t.closing(ll.socket.new(ll.AF_INET, ll.SOCK_STREAM))
    local _, e = s:send('')
    t.eq(e.type, ll.errno.EINVAL)
    t.eq(#calls, 0)
    t.match(tostring(e), "^in method 'send': %[EINVAL:")
end)

t.case('the first instance is untouched', function()
    t.eq(require('llsocket'), llsocket)
    local _, e = llsocket.socket.close(-1)
    t.eq(e.type, twin.EBADF)
end)
