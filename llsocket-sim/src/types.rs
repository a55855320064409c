//! Plain types shared by the world core (`world`), the wire (`net`), the operations
//! (`ops`) and the trace: object ids, virtual time, and the packets on the wire.
//!
//! They live apart so those modules depend on this one and never on each other's
//! types in a circle.

use llsocket_api::SockAddr;

/// An object id (socket or file): the "open file description".
pub(crate) type ObjId = u64;

/// Nanoseconds of virtual time.
pub(crate) type Nanos = u64;

/// A packet between two hosts.
#[derive(Clone, Debug)]
pub(crate) struct Packet {
    pub src_h: usize,
    pub dst_h: usize,
    pub body: Body,
}

/// What a packet carries.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    Syn {
        client: ObjId,
        gen: u32,
        src: SockAddr,
        dst: SockAddr,
    },
    SynAck {
        client: ObjId,
        gen: u32,
        child: ObjId,
    },
    Data {
        from: ObjId,
        to: ObjId,
        seq: u64,
        data: Vec<u8>,
        urg: Option<usize>,
    },
    Fin {
        from: ObjId,
        to: ObjId,
        seq: u64,
    },
    Rst {
        to: ObjId,
    },
    Dgram {
        from: ObjId,
        src: SockAddr,
        dst: SockAddr,
        data: Vec<u8>,
    },
}

impl Packet {
    pub(crate) fn rst(src_h: usize, dst_h: usize, to: ObjId) -> Packet {
        Packet {
            src_h,
            dst_h,
            body: Body::Rst { to },
        }
    }

    pub(crate) fn reliable(&self) -> bool {
        matches!(
            self.body,
            Body::Data { .. } | Body::Fin { .. } | Body::SynAck { .. }
        )
    }

    pub(crate) fn kind(&self) -> i64 {
        match self.body {
            Body::Syn { .. } => 1,
            Body::SynAck { .. } => 2,
            Body::Data { .. } => 3,
            Body::Fin { .. } => 4,
            Body::Rst { .. } => 5,
            Body::Dgram { .. } => 6,
        }
    }
}
