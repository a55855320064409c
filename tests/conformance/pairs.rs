//! Socketpairs: stream, datagram and seqpacket; flags, boundaries, truncation, EOF.

use super::{conformance, recv_vec, AGAIN};
use llsocket_api::{Errno, MsgFlags, OptName, Protocol, SockAddr, SockOpt, SockType, UnixAddr};

conformance!(socketpair_stream_round_trip, |b: &dyn Backend| {
    let o = b.ops();
    let (x, y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    assert!(o.cloexec(x).unwrap() && o.cloexec(y).unwrap());
    assert!(!o.nonblock(x).unwrap() && !o.nonblock(y).unwrap());
    assert_eq!(
        o.getsockopt(x, OptName::Type).unwrap(),
        SockOpt::Type(SockType::STREAM.raw())
    );
    assert_eq!(o.send(x, b"ab", MsgFlags::NONE).unwrap(), 2);
    assert_eq!(o.send(x, b"cd", MsgFlags::NONE).unwrap(), 2);
    // A stream has no boundaries: one receive sees both sends.
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"abcd");
    // Both directions work.
    assert_eq!(o.send(y, b"back", MsgFlags::NONE).unwrap(), 4);
    assert_eq!(recv_vec(b, x, 2, MsgFlags::NONE).unwrap(), b"ba");
    assert_eq!(recv_vec(b, x, 2, MsgFlags::NONE).unwrap(), b"ck");
    assert_eq!(recv_vec(b, x, 2, MsgFlags::DONTWAIT).unwrap_err(), AGAIN);
    // Closing one end is end-of-stream for the other, repeatedly.
    o.close(x).unwrap();
    assert_eq!(recv_vec(b, y, 4, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(recv_vec(b, y, 4, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(o.send(y, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
});

conformance!(socketpair_dgram_keeps_boundaries, |b: &dyn Backend| {
    let o = b.ops();
    let (x, y) = o
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    assert!(o.nonblock(x).unwrap() && o.nonblock(y).unwrap());
    assert_eq!(
        o.getsockopt(y, OptName::Type).unwrap(),
        SockOpt::Type(SockType::DGRAM.raw())
    );
    o.send(x, b"ab", MsgFlags::NONE).unwrap();
    o.send(x, b"cd", MsgFlags::NONE).unwrap();
    o.send(x, b"", MsgFlags::NONE).unwrap();
    o.send(x, b"truncated", MsgFlags::NONE).unwrap();
    o.send(x, b"real-length", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"ab");
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"cd");
    // An empty datagram is a message of length 0, not end of stream.
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"");
    // A short buffer truncates; the rest of the datagram is gone.
    assert_eq!(recv_vec(b, y, 3, MsgFlags::NONE).unwrap(), b"tru");
    // MSG_TRUNC reports the real length.
    let mut buf = [0u8; 4];
    assert_eq!(o.recv(y, &mut buf, MsgFlags::TRUNC).unwrap(), 11);
    assert_eq!(&buf, b"real");
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
    // The other direction.
    o.send(y, b"back", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap(), b"back");
});

conformance!(socketpair_seqpacket_keeps_boundaries, |b: &dyn Backend| {
    let o = b.ops();
    let (x, y) = o
        .socketpair(SockType::SEQPACKET, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(
        o.getsockopt(x, OptName::Type).unwrap(),
        SockOpt::Type(SockType::SEQPACKET.raw())
    );
    o.send(x, b"one", MsgFlags::NONE).unwrap();
    o.send(x, b"two", MsgFlags::NONE).unwrap();
    o.send(x, b"three", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"one");
    assert_eq!(recv_vec(b, y, 2, MsgFlags::NONE).unwrap(), b"tw");
    let mut data = [0u8; 2];
    let out = o
        .recvmsg(y, &mut [&mut data[..]], &mut [], MsgFlags::NONE)
        .unwrap();
    assert_eq!(out.bytes, 2);
    assert!(out.flags.contains(MsgFlags::TRUNC), "{:?}", out.flags);
    assert_eq!(&data, b"th");
    assert_eq!(recv_vec(b, y, 16, MsgFlags::DONTWAIT).unwrap_err(), AGAIN);
    o.close(x).unwrap();
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"");
});

conformance!(socketpair_nonblocking_and_names, |b: &dyn Backend| {
    let o = b.ops();
    for ty in [SockType::STREAM, SockType::DGRAM, SockType::SEQPACKET] {
        let (x, y) = o.socketpair(ty, Protocol::DEFAULT, true).unwrap();
        assert!(o.nonblock(x).unwrap() && o.nonblock(y).unwrap(), "{ty:?}");
        assert!(o.cloexec(x).unwrap() && o.cloexec(y).unwrap(), "{ty:?}");
        assert_eq!(recv_vec(b, x, 4, MsgFlags::NONE).unwrap_err(), AGAIN);
        let unnamed = SockAddr::Unix(UnixAddr::Unnamed);
        assert_eq!(o.getsockname(x).unwrap(), unnamed, "{ty:?}");
        assert_eq!(o.getpeername(y).unwrap(), unnamed, "{ty:?}");
        assert_eq!(
            o.getsockopt(x, OptName::Protocol).unwrap(),
            SockOpt::Protocol(0)
        );
        o.close(x).unwrap();
        o.close(y).unwrap();
    }
});

conformance!(socketpair_shutdown_directions, |b: &dyn Backend| {
    let o = b.ops();
    let (x, y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    // SHUT_WR: the peer sees end of stream, our sends fail with EPIPE (no SIGPIPE).
    o.send(x, b"last", MsgFlags::NONE).unwrap();
    o.shutdown(x, llsocket_api::Shutdown::WRITE).unwrap();
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"last");
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(o.send(x, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    // The other direction still works.
    o.send(y, b"reply", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap(), b"reply");
    // SHUT_RD on a unix stream: our receives are end of stream, and the peer's
    // sends fail with EPIPE.
    o.shutdown(x, llsocket_api::Shutdown::READ).unwrap();
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(o.send(y, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    // SHUT_RDWR on a fresh pair: both ways shut.
    let (p, q) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    o.shutdown(p, llsocket_api::Shutdown::BOTH).unwrap();
    assert_eq!(recv_vec(b, p, 16, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(recv_vec(b, q, 16, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(o.send(p, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    assert_eq!(o.send(q, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    // A direction that is not SHUT_* is EINVAL.
    assert_eq!(
        o.shutdown(p, llsocket_api::Shutdown(7)).unwrap_err(),
        Errno::EINVAL
    );
});
