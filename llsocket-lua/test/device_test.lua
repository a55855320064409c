-- llsocket.device.getifaddrs() result shape (device.md).
local t = ...
local llsocket = t.llsocket()
local device = llsocket.device
local linux = llsocket.env.os == 'linux'

local FLAG_KEYS = {
    up = true, broadcast = true, debug = true, loopback = true, pointtopoint = true,
    notrailers = true, running = true, noarp = true, promisc = true, allmulti = true,
    multicast = true, oactive = true, simplex = true, master = true, slave = true,
    portsel = true, automedia = true, dynamic = true, lower_up = true, dormant = true, echo = true,
}
local RECORD_KEYS = { address = true, netmask = true, broadcast = true, point2point = true }

local function loopback(ifs)
    for name, info in pairs(ifs) do
        if info.loopback then
            return name, info
        end
    end
end

t.case('getifaddrs: a non-empty table of name -> info tables; arguments ignored', function()
    local ifs = t.nres(1, device.getifaddrs('ignored', 1))[1]
    t.is_type(ifs, 'table')
    t.ok(next(ifs) ~= nil, 'no interfaces')
    for name, info in pairs(ifs) do
        t.is_type(name, 'string')
        t.is_type(info, 'table')
    end
end)

t.case('getifaddrs: every key has the documented type', function()
    for name, info in pairs(device.getifaddrs()) do
        for k, v in pairs(info) do
            t.is_type(k, 'string', name)
            if FLAG_KEYS[k] then
                t.is_true(v, name .. '.' .. k .. ' (flags are true or absent)')
            elseif k == 'index' or k == 'mtu' then
                t.is_int(v, name .. '.' .. k)
                t.ok(v > 0, name .. '.' .. k)
            elseif k == 'ether' then
                t.match(v, '^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$', name .. '.ether')
                t.eq(v, v:lower(), 'lowercase hex')
            elseif k == 'inet' or k == 'inet6' then
                t.is_type(v, 'table')
                t.ok(#v >= 1, name .. '.' .. k .. ' is a non-empty array')
                for _, rec in ipairs(v) do
                    for rk, rv in pairs(rec) do
                        t.ok(RECORD_KEYS[rk], 'unexpected record key ' .. tostring(rk))
                        t.is_type(rv, 'string')
                    end
                end
            else
                t.fail('unexpected key ' .. name .. '.' .. k)
            end
        end
    end
end)

t.case('getifaddrs lists the loopback device with 127.0.0.1', function()
    local name, lo = loopback(device.getifaddrs())
    t.not_nil(name, 'no interface with loopback = true')
    if linux then
        t.eq(name, 'lo')
        t.eq(lo.ether, '00:00:00:00:00:00')
    end
    t.is_true(lo.up)
    t.is_int(lo.index)
    t.is_int(lo.mtu)
    t.is_type(lo.inet, 'table')
    local found
    for _, rec in ipairs(lo.inet) do
        if rec.address == '127.0.0.1' then
            found = rec
        end
    end
    t.not_nil(found, '127.0.0.1 not among ' .. t.dump(lo.inet))
    t.eq(found.netmask, '255.0.0.0')
    if lo.inet6 then
        local six
        for _, rec in ipairs(lo.inet6) do
            if rec.address == '::1' then
                six = rec
            end
        end
        t.not_nil(six, '::1 not among ' .. t.dump(lo.inet6))
        t.eq(six.netmask, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')
    end
end)

if linux then
    t.case('linux: the loopback name works with mcastif', function()
        local name = loopback(device.getifaddrs())
        local s = t.closing(llsocket.socket.new(llsocket.AF_INET, llsocket.SOCK_DGRAM))
        t.is_nil(s:mcastif(name))
        t.eq(s:mcastif(), name)
    end)
end
