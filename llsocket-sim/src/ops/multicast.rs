//! Multicast memberships (any-source and source-specific joins, leaves, blocks) and
//! the interface address lookup behind `IP_MULTICAST_IF`.

use std::net::{IpAddr, Ipv4Addr};

use llsocket_api::{Errno, Family, Fd, McastOp, McastRequest, Result, SockAddr};

use crate::addr::{canon_ip, host_v4};
use crate::world::{Membership, World};

impl World {
    pub(crate) fn op_multicast(
        &mut self,
        h: usize,
        fd: Fd,
        op: McastOp,
        req: &McastRequest,
    ) -> Result<()> {
        let id = self.sock_of(h, fd)?;
        let s = self.sr(id);
        if s.is_unix() {
            return Err(Errno::EOPNOTSUPP);
        }
        let v4_iface = |ip: Ipv4Addr| -> Result<u32> {
            if ip.is_unspecified() {
                Ok(0)
            } else if ip.is_loopback() {
                Ok(1)
            } else if ip == host_v4(h) {
                Ok(2)
            } else {
                Err(Errno::ENODEV)
            }
        };
        let ip_of = |a: &SockAddr| a.as_socket_addr().map(|x| canon_ip(x.ip()));
        let (group, ifindex, source): (IpAddr, u32, Option<IpAddr>) = match req {
            McastRequest::V4 { group, interface } => {
                if matches!(op, McastOp::Block | McastOp::Unblock) {
                    return Err(Errno::EINVAL);
                }
                (IpAddr::V4(*group), v4_iface(*interface)?, None)
            }
            McastRequest::V6 { group, interface } => {
                if matches!(op, McastOp::Block | McastOp::Unblock) {
                    return Err(Errno::EINVAL);
                }
                if s.family != Family::INET6 {
                    return Err(Errno::ENOPROTOOPT);
                }
                if *interface > 2 {
                    return Err(Errno::ENODEV);
                }
                (IpAddr::V6(*group), *interface, None)
            }
            McastRequest::SourceV4 {
                group,
                source,
                interface,
            } => (
                IpAddr::V4(*group),
                v4_iface(*interface)?,
                Some(IpAddr::V4(*source)),
            ),
            McastRequest::Source {
                group,
                source,
                interface,
            } => {
                let (Some(g), Some(sr)) = (ip_of(group), ip_of(source)) else {
                    return Err(Errno::EINVAL);
                };
                if g.is_ipv6() && s.family != Family::INET6 {
                    return Err(Errno::EINVAL);
                }
                if *interface > 2 {
                    return Err(Errno::ENODEV);
                }
                (g, *interface, Some(sr))
            }
        };
        // Only the any-source requests (IP_ADD_MEMBERSHIP, MCAST_JOIN_GROUP and
        // their IPv6 forms) are EPROTO on TCP; source-specific ones are accepted.
        if s.is_tcp() && source.is_none() {
            return Err(Errno::EPROTO);
        }
        if !group.is_multicast() {
            return Err(Errno::EINVAL);
        }
        let s = self.s(id);
        let pos = s.mcast.iter().position(|m| m.group == group);
        match (op, source, pos) {
            (McastOp::Join, None, Some(_)) => return Err(Errno::EADDRINUSE),
            (McastOp::Join, None, None) => s.mcast.push(Membership {
                group,
                ifindex,
                include: Default::default(),
                exclude: Default::default(),
                empty_include: false,
            }),
            (McastOp::Join, Some(src), Some(p)) => {
                // ip_mc_source: an any-source membership that blocks nothing may
                // switch to include mode; one that blocks sources may not.
                if s.mcast[p].include.is_empty() && !s.mcast[p].exclude.is_empty() {
                    return Err(Errno::EINVAL);
                }
                s.mcast[p].empty_include = false;
                // (A source already in the list is EADDRNOTAVAIL.)
                if !s.mcast[p].include.insert(src) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
            }
            (McastOp::Join, Some(src), None) => s.mcast.push(Membership {
                group,
                ifindex,
                include: [src].into_iter().collect(),
                exclude: Default::default(),
                empty_include: false,
            }),
            // ip_mc_source / ip6_mc_source: a source request needs a prior join.
            (McastOp::Leave | McastOp::Block | McastOp::Unblock, Some(_), None) => {
                return Err(Errno::EINVAL)
            }
            (McastOp::Leave, _, None) => return Err(Errno::EADDRNOTAVAIL),
            (McastOp::Leave, None, Some(p)) => {
                s.mcast.remove(p);
            }
            (McastOp::Leave, Some(src), Some(p)) => {
                if !s.mcast[p].exclude.is_empty() {
                    return Err(Errno::EINVAL);
                }
                if s.mcast[p].include.is_empty() {
                    // ip_mc_source: an empty any-source membership switches to include
                    // mode (hearing nothing) before the missing source fails the call
                    // (campaign seed 8002).
                    s.mcast[p].empty_include = true;
                    return Err(Errno::EADDRNOTAVAIL);
                }
                if !s.mcast[p].include.remove(&src) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
                if s.mcast[p].include.is_empty() {
                    s.mcast.remove(p);
                }
            }
            (McastOp::Block | McastOp::Unblock, _, None) => return Err(Errno::EADDRNOTAVAIL),
            (McastOp::Block | McastOp::Unblock, None, Some(_)) => return Err(Errno::EINVAL),
            (McastOp::Block, Some(src), Some(p)) => {
                if !s.mcast[p].include.is_empty() {
                    return Err(Errno::EINVAL);
                }
                // (An empty include mode switches back to exclude mode.)
                s.mcast[p].empty_include = false;
                if !s.mcast[p].exclude.insert(src) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
            }
            (McastOp::Unblock, Some(src), Some(p)) => {
                // ip_mc_source: a request of the other filter mode is EINVAL.
                if !s.mcast[p].include.is_empty() {
                    return Err(Errno::EINVAL);
                }
                s.mcast[p].empty_include = false;
                if !s.mcast[p].exclude.remove(&src) {
                    return Err(Errno::EADDRNOTAVAIL);
                }
            }
        }
        Ok(())
    }

    /// `SIOCGIFADDR` on the simulated interfaces.
    pub(crate) fn op_interface_ipv4(&mut self, h: usize, fd: Fd, name: &[u8]) -> Result<Ipv4Addr> {
        self.sock_of(h, fd)?;
        if name.len() >= 16 || name.contains(&0) {
            return Err(Errno::ENXIO);
        }
        match name {
            b"lo" => Ok(Ipv4Addr::LOCALHOST),
            b"eth0" => Ok(host_v4(h)),
            _ => Err(Errno::ENODEV),
        }
    }
}
