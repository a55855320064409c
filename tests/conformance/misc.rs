//! Descriptor flags, dup, poll readiness.

use super::{conformance, listener, lo4, recv_vec, tcp_pair};
use llsocket_api::{Errno, Family, Interest, MsgFlags, Protocol, SockType};

conformance!(nonblock_and_cloexec_flags, |b: &dyn Backend| {
    let o = b.ops();
    let s = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert!(o.nonblock(s).unwrap());
    assert!(o.cloexec(s).unwrap());
    o.set_nonblock(s, false).unwrap();
    assert!(!o.nonblock(s).unwrap());
    o.set_nonblock(s, false).unwrap();
    assert!(!o.nonblock(s).unwrap());
    o.set_nonblock(s, true).unwrap();
    assert!(o.nonblock(s).unwrap());
    o.set_cloexec(s, false).unwrap();
    assert!(!o.cloexec(s).unwrap());
    o.set_cloexec(s, true).unwrap();
    assert!(o.cloexec(s).unwrap());
    let u = o
        .socket(Family::INET6, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    assert!(!o.nonblock(u).unwrap());
    assert!(o.cloexec(u).unwrap());
});

conformance!(dup_shares_the_socket, |b: &dyn Backend| {
    let o = b.ops();
    let (x, y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    o.set_cloexec(x, false).unwrap();
    let d = o.dup(x).unwrap();
    assert_ne!(d, x);
    // The duplicate is close-on-exec whatever the original says.
    assert!(o.cloexec(d).unwrap());
    assert!(!o.cloexec(x).unwrap());
    // O_NONBLOCK lives in the shared open file description.
    o.set_nonblock(d, true).unwrap();
    assert!(o.nonblock(x).unwrap());
    // Both numbers are the same socket.
    o.send(d, b"via dup", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"via dup");
    // Closing one number keeps the socket open: no end of stream for the peer.
    o.close(x).unwrap();
    assert_eq!(
        recv_vec(b, y, 16, MsgFlags::DONTWAIT).unwrap_err(),
        Errno::EAGAIN
    );
    o.send(y, b"back", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, d, 16, MsgFlags::NONE).unwrap(), b"back");
    // Shutdown acts on the socket, so it is visible through every number.
    let (c, s) = tcp_pair(b, lo4(0), true);
    let c2 = o.dup(c).unwrap();
    o.shutdown(c2, llsocket_api::Shutdown::WRITE).unwrap();
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(o.send(c, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    // The last close ends the stream.
    o.close(d).unwrap();
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap(), b"");
});

conformance!(poll_readiness, |b: &dyn Backend| {
    let o = b.ops();
    let (x, y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    let both = Interest {
        read: true,
        write: true,
        except: false,
    };
    assert!(!o.poll(x, Interest::READ, 0).unwrap());
    assert!(o.poll(x, Interest::WRITE, 0).unwrap());
    assert!(o.poll(x, both, 0).unwrap());
    // Nothing asked, nothing reported (even with a negative "no wait" timeout).
    assert!(!o.poll(x, Interest::default(), 0).unwrap());
    assert!(!o.poll(x, Interest::READ, -5).unwrap());
    o.send(y, b"data", MsgFlags::NONE).unwrap();
    assert!(o.poll(x, Interest::READ, 0).unwrap());
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap(), b"data");
    assert!(!o.poll(x, Interest::READ, 0).unwrap());
    // A listener is readable when a connection waits.
    let (l, bound) = listener(b, lo4(0), true);
    assert!(!o.poll(l, Interest::READ, 0).unwrap());
    assert!(!o.poll(l, Interest::WRITE, 0).unwrap());
    let c = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    // An unconnected TCP socket reports a hang-up, which counts as readable and writable.
    assert!(o.poll(c, Interest::WRITE, 0).unwrap());
    assert!(o.poll(c, Interest::READ, 0).unwrap());
    o.connect(c, &bound).unwrap();
    assert!(o.poll(l, Interest::READ, 0).unwrap());
    // A peer that went away: readable (end of stream) and writable (error).
    o.close(y).unwrap();
    assert!(o.poll(x, Interest::READ, 0).unwrap());
    assert!(o.poll(x, Interest::WRITE, 0).unwrap());
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap(), b"");
    // A UDP socket with nothing queued is writable only.
    let u = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    assert!(!o.poll(u, Interest::READ, 0).unwrap());
    assert!(o.poll(u, Interest::WRITE, 0).unwrap());
});
