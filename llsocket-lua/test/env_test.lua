-- llsocket.env (env.md): a plain table with exactly os, unixpath_max, somaxconn.
local t = ...
local llsocket = t.llsocket()
local env = llsocket.env

t.case('env is a plain table with exactly three fields', function()
    t.is_type(env, 'table')
    t.is_nil(getmetatable(env))
    local keys = {}
    for k in pairs(env) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    t.deq(keys, { 'os', 'somaxconn', 'unixpath_max' })
end)

t.case('env.os names the build target', function()
    local known = { apple = true, dragonfly = true, freebsd = true, netbsd = true,
        openbsd = true, linux = true, unknown = true }
    t.is_type(env.os, 'string')
    t.ok(known[env.os], 'unexpected os ' .. t.repr(env.os))
    -- /proc/self exists only on Linux among the supported targets
    local f = io.open('/proc/self/stat', 'r')
    if f then
        f:close()
        t.eq(env.os, 'linux')
    end
end)

t.case('env.unixpath_max is the sun_path capacity', function()
    t.is_int(env.unixpath_max)
    if env.os == 'linux' then
        t.eq(env.unixpath_max, 108)
    elseif env.os ~= 'unknown' then
        t.eq(env.unixpath_max, 104)
    end
end)

t.case('env.unixpath_max bounds addrinfo.unix', function()
    local ai = llsocket.addrinfo.unix(string.rep('a', env.unixpath_max - 1))
    t.not_nil(ai)
    local r = t.nres(2, llsocket.addrinfo.unix(string.rep('a', env.unixpath_max)))
    t.is_nil(r[1])
    t.err(r[2], 'ENAMETOOLONG', 'unix')
end)

t.case('env.somaxconn is the SOMAXCONN header constant', function()
    t.is_int(env.somaxconn)
    t.ok(env.somaxconn == 4096 or env.somaxconn == 128, 'somaxconn ' .. env.somaxconn)
end)
