//! Multicast membership requests: any-source and source-specific, IPv4 and IPv6.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::addr::SockAddr;

/// What to do with a membership.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum McastOp {
    /// `IP_ADD_MEMBERSHIP` / `IPV6_JOIN_GROUP` (any-source), or
    /// `IP_ADD_SOURCE_MEMBERSHIP` / `MCAST_JOIN_SOURCE_GROUP` (source-specific).
    #[doc(alias = "IP_ADD_MEMBERSHIP")]
    Join,
    /// `IP_DROP_MEMBERSHIP` / `IPV6_LEAVE_GROUP`, or
    /// `IP_DROP_SOURCE_MEMBERSHIP` / `MCAST_LEAVE_SOURCE_GROUP`.
    #[doc(alias = "IP_DROP_MEMBERSHIP")]
    Leave,
    /// `IP_BLOCK_SOURCE` / `MCAST_BLOCK_SOURCE` (source-specific requests only).
    #[doc(alias = "IP_BLOCK_SOURCE")]
    Block,
    /// `IP_UNBLOCK_SOURCE` / `MCAST_UNBLOCK_SOURCE` (source-specific requests only).
    #[doc(alias = "IP_UNBLOCK_SOURCE")]
    Unblock,
}

/// A membership request.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum McastRequest {
    /// IPv4 any-source: group and local interface address (0.0.0.0 for the default).
    V4 {
        /// The group.
        group: Ipv4Addr,
        /// The interface's address.
        interface: Ipv4Addr,
    },
    /// IPv6 any-source: group and interface index (0 for the default).
    V6 {
        /// The group.
        group: Ipv6Addr,
        /// The interface index.
        interface: u32,
    },
    /// IPv4 source-specific (`struct ip_mreq_source`).
    SourceV4 {
        /// The group.
        group: Ipv4Addr,
        /// The source.
        source: Ipv4Addr,
        /// The interface's address.
        interface: Ipv4Addr,
    },
    /// Protocol-independent source-specific (`struct group_source_req`), used for IPv6;
    /// the addresses are passed verbatim.
    Source {
        /// The group.
        group: SockAddr,
        /// The source.
        source: SockAddr,
        /// The interface index.
        interface: u32,
    },
}

impl McastRequest {
    /// Whether the request names a source (the block/unblock operations need one).
    pub fn has_source(&self) -> bool {
        matches!(
            self,
            McastRequest::SourceV4 { .. } | McastRequest::Source { .. }
        )
    }
}
