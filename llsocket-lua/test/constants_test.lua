-- Constants on the module table (constants.md): presence rule and Linux values.
local t = ...
local llsocket = t.llsocket()
local linux = llsocket.env.os == 'linux'

-- Linux x86-64 glibc: every present name and its value (constants.md table).
local LINUX = {
    SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2,
    AF_APPLETALK = 5, AF_DECnet = 12, AF_INET = 2, AF_INET6 = 10, AF_IPX = 4, AF_ISDN = 34,
    AF_LOCAL = 1, AF_PACKET = 17, AF_ROUTE = 16, AF_SNA = 22, AF_UNIX = 1, AF_UNSPEC = 0,
    SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3, SOCK_RDM = 4, SOCK_SEQPACKET = 5,
    IPPROTO_AH = 51, IPPROTO_DSTOPTS = 60, IPPROTO_EGP = 8, IPPROTO_ENCAP = 98, IPPROTO_ESP = 50,
    IPPROTO_FRAGMENT = 44, IPPROTO_GRE = 47, IPPROTO_HOPOPTS = 0, IPPROTO_ICMP = 1,
    IPPROTO_ICMPV6 = 58, IPPROTO_IDP = 22, IPPROTO_IGMP = 2, IPPROTO_IP = 0, IPPROTO_IPIP = 4,
    IPPROTO_IPV6 = 41, IPPROTO_MTP = 92, IPPROTO_NONE = 59, IPPROTO_PIM = 103, IPPROTO_PUP = 12,
    IPPROTO_RAW = 255, IPPROTO_ROUTING = 43, IPPROTO_RSVP = 46, IPPROTO_SCTP = 132,
    IPPROTO_TCP = 6, IPPROTO_TP = 29, IPPROTO_UDP = 17,
    AI_PASSIVE = 1, AI_CANONNAME = 2, AI_NUMERICHOST = 4, AI_V4MAPPED = 8, AI_ALL = 16,
    AI_ADDRCONFIG = 32, AI_NUMERICSERV = 1024,
    NI_NUMERICHOST = 1, NI_NUMERICSERV = 2, NI_NOFQDN = 4, NI_NAMEREQD = 8, NI_DGRAM = 16,
    MSG_OOB = 1, MSG_PEEK = 2, MSG_DONTROUTE = 4, MSG_TRYHARD = 4, MSG_CTRUNC = 8, MSG_TRUNC = 32,
    MSG_DONTWAIT = 64, MSG_EOR = 128, MSG_WAITALL = 256, MSG_CONFIRM = 2048, MSG_ERRQUEUE = 8192,
    MSG_NOSIGNAL = 16384, MSG_MORE = 32768, MSG_WAITFORONE = 65536, MSG_BATCH = 262144,
    MSG_FASTOPEN = 536870912, MSG_CMSG_CLOEXEC = 1073741824,
    SOL_SOCKET = 1,
    SCM_RIGHTS = 1, SCM_TIMESTAMP = 29, SCM_CREDS = 2,
}

-- The union of every name the module may export (constants.md lists).
local ALL = {
    'SHUT_RD', 'SHUT_WR', 'SHUT_RDWR',
    'AF_APPLETALK', 'AF_CCITT', 'AF_CHAOS', 'AF_CNT', 'AF_COIP', 'AF_DATAKIT', 'AF_DECnet',
    'AF_DLI', 'AF_E164', 'AF_ECMA', 'AF_HYLINK', 'AF_IEEE80211', 'AF_IMPLINK', 'AF_INET',
    'AF_INET6', 'AF_IPX', 'AF_ISDN', 'AF_ISO', 'AF_LAT', 'AF_LINK', 'AF_LOCAL', 'AF_NATM',
    'AF_NDRV', 'AF_NETBIOS', 'AF_NS', 'AF_OSI', 'AF_PACKET', 'AF_PPP', 'AF_PUP', 'AF_RESERVED_36',
    'AF_ROUTE', 'AF_SIP', 'AF_SNA', 'AF_SYSTEM', 'AF_UNIX', 'AF_UNSPEC', 'AF_UTUN',
    'SOCK_DGRAM', 'SOCK_RAW', 'SOCK_RDM', 'SOCK_SEQPACKET', 'SOCK_STREAM',
    'IPPROTO_3PC', 'IPPROTO_ADFS', 'IPPROTO_AH', 'IPPROTO_AHIP', 'IPPROTO_APES', 'IPPROTO_ARGUS',
    'IPPROTO_AX25', 'IPPROTO_BHA', 'IPPROTO_BLT', 'IPPROTO_BRSATMON', 'IPPROTO_CFTP',
    'IPPROTO_CHAOS', 'IPPROTO_CMTP', 'IPPROTO_CPHB', 'IPPROTO_CPNX', 'IPPROTO_DDP', 'IPPROTO_DGP',
    'IPPROTO_DIVERT', 'IPPROTO_DSTOPTS', 'IPPROTO_EGP', 'IPPROTO_EMCON', 'IPPROTO_ENCAP',
    'IPPROTO_EON', 'IPPROTO_ESP', 'IPPROTO_ETHERIP', 'IPPROTO_FRAGMENT', 'IPPROTO_GGP',
    'IPPROTO_GMTP', 'IPPROTO_GRE', 'IPPROTO_HELLO', 'IPPROTO_HMP', 'IPPROTO_HOPOPTS',
    'IPPROTO_ICMP', 'IPPROTO_ICMPV6', 'IPPROTO_IDP', 'IPPROTO_IDPR', 'IPPROTO_IDRP',
    'IPPROTO_IGMP', 'IPPROTO_IGP', 'IPPROTO_IGRP', 'IPPROTO_IL', 'IPPROTO_INLSP', 'IPPROTO_INP',
    'IPPROTO_IP', 'IPPROTO_IPCOMP', 'IPPROTO_IPCV', 'IPPROTO_IPEIP', 'IPPROTO_IPIP',
    'IPPROTO_IPPC', 'IPPROTO_IPV4', 'IPPROTO_IPV6', 'IPPROTO_IRTP', 'IPPROTO_KRYPTOLAN',
    'IPPROTO_LARP', 'IPPROTO_LEAF1', 'IPPROTO_LEAF2', 'IPPROTO_MEAS', 'IPPROTO_MHRP',
    'IPPROTO_MICP', 'IPPROTO_MTP', 'IPPROTO_MUX', 'IPPROTO_ND', 'IPPROTO_NHRP', 'IPPROTO_NONE',
    'IPPROTO_NSP', 'IPPROTO_NVPII', 'IPPROTO_OSPFIGP', 'IPPROTO_PGM', 'IPPROTO_PIGP',
    'IPPROTO_PIM', 'IPPROTO_PRM', 'IPPROTO_PUP', 'IPPROTO_PVP', 'IPPROTO_RAW', 'IPPROTO_RCCMON',
    'IPPROTO_RDP', 'IPPROTO_ROUTING', 'IPPROTO_RSVP', 'IPPROTO_RVD', 'IPPROTO_SATEXPAK',
    'IPPROTO_SATMON', 'IPPROTO_SCCSP', 'IPPROTO_SCTP', 'IPPROTO_SDRP', 'IPPROTO_SEP',
    'IPPROTO_SRPC', 'IPPROTO_ST', 'IPPROTO_SVMTP', 'IPPROTO_SWIPE', 'IPPROTO_TCF', 'IPPROTO_TCP',
    'IPPROTO_TP', 'IPPROTO_TPXX', 'IPPROTO_TRUNK1', 'IPPROTO_TRUNK2', 'IPPROTO_TTP',
    'IPPROTO_UDP', 'IPPROTO_VINES', 'IPPROTO_VISA', 'IPPROTO_VMTP', 'IPPROTO_WBEXPAK',
    'IPPROTO_WBMON', 'IPPROTO_WSN', 'IPPROTO_XNET', 'IPPROTO_XTP',
    'AI_ADDRCONFIG', 'AI_ALL', 'AI_CANONNAME', 'AI_DEFAULT', 'AI_NUMERICHOST', 'AI_NUMERICSERV',
    'AI_PASSIVE', 'AI_V4MAPPED', 'AI_V4MAPPED_CFG',
    'NI_DGRAM', 'NI_NAMEREQD', 'NI_NOFQDN', 'NI_NUMERICHOST', 'NI_NUMERICSERV', 'NI_WITHSCOPEID',
    'MSG_BATCH', 'MSG_CMSG_CLOEXEC', 'MSG_CONFIRM', 'MSG_CTRUNC', 'MSG_DONTROUTE', 'MSG_DONTWAIT',
    'MSG_EOF', 'MSG_EOR', 'MSG_ERRQUEUE', 'MSG_FASTOPEN', 'MSG_FLUSH', 'MSG_HAVEMORE', 'MSG_HOLD',
    'MSG_MORE', 'MSG_NEEDSA', 'MSG_NOSIGNAL', 'MSG_OOB', 'MSG_PEEK', 'MSG_PROBE', 'MSG_RCVMORE',
    'MSG_SEND', 'MSG_TRUNC', 'MSG_TRYHARD', 'MSG_WAITALL', 'MSG_WAITFORONE', 'MSG_WAITSTREAM',
    'SOL_SOCKET',
    'SCM_RIGHTS', 'SCM_SECURITY', 'SCM_TIMESTAMP', 'SCM_TIMESTAMP_MONOTONIC', 'SCM_CREDS',
}

t.case('SHUT_* are always present', function()
    t.eq(llsocket.SHUT_RD, 0)
    t.eq(llsocket.SHUT_WR, 1)
    t.eq(llsocket.SHUT_RDWR, 2)
end)

t.case('every exported constant is an integer of the known name set', function()
    local allowed = {}
    for _, n in ipairs(ALL) do
        allowed[n] = true
    end
    local subs = { socket = 1, addrinfo = 1, msghdr = 1, cmsghdr = 1, cmsghdrs = 1, device = 1,
        env = 1, errno = 1, iovec = 1 }
    local count = 0
    for k, v in pairs(llsocket) do
        t.is_type(k, 'string')
        if not subs[k] then
            t.ok(allowed[k], 'unexpected key llsocket.' .. k)
            t.is_int(v, k)
            count = count + 1
        end
    end
    t.ok(count > 30, 'only ' .. count .. ' constants')
end)

t.case('names that must never be exported', function()
    for _, n in ipairs({ 'SOCK_NONBLOCK', 'SOCK_CLOEXEC', 'SO_REUSEADDR', 'SO_ERROR', 'IP_TTL',
        'TCP_NODELAY', 'IFF_UP', 'EAI_NONAME', 'IPPROTO_MAX', 'IPPROTO_DONE', 'SCM_CREDENTIALS',
        'SOMAXCONN' }) do
        t.is_nil(llsocket[n], n)
    end
end)

t.case('constants are not on the sub-module tables', function()
    t.is_nil(llsocket.socket.AF_INET)
    t.is_nil(llsocket.addrinfo.AF_INET)
    t.is_nil(llsocket.socket.SHUT_RD)
end)

t.case('portable core names are present', function()
    for _, n in ipairs({ 'AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_UNSPEC', 'SOCK_STREAM', 'SOCK_DGRAM',
        'SOCK_RAW', 'SOCK_SEQPACKET', 'IPPROTO_TCP', 'IPPROTO_UDP', 'IPPROTO_IP', 'IPPROTO_IPV6',
        'AI_PASSIVE', 'AI_CANONNAME', 'AI_NUMERICHOST', 'NI_NUMERICHOST', 'NI_NUMERICSERV',
        'MSG_OOB', 'MSG_PEEK', 'MSG_DONTWAIT', 'MSG_WAITALL', 'SOL_SOCKET', 'SCM_RIGHTS' }) do
        t.is_int(llsocket[n], n)
    end
end)

if linux then
    t.case('linux: exactly the glibc set with the header values', function()
        for n, v in pairs(LINUX) do
            t.eq(llsocket[n], v, n)
        end
        for _, n in ipairs(ALL) do
            if LINUX[n] == nil then
                t.is_nil(llsocket[n], n .. ' must be absent on Linux')
            end
        end
    end)
end
