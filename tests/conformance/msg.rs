//! sendmsg/recvmsg: gather and scatter, addresses, flags.

use super::{conformance, lo4, recv_vec, tcp_pair, udp, AGAIN};
use llsocket_api::{Errno, MsgFlags, Protocol, SockType};

conformance!(sendmsg_gathers_recvmsg_scatters, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    let n = o
        .sendmsg(c, &[b"ab", b"", b"cdef", b"g"], &[], None, MsgFlags::NONE)
        .unwrap();
    assert_eq!(n, 7);
    let (mut x, mut y, mut z) = ([0u8; 3], [0u8; 0], [0u8; 10]);
    let out = o
        .recvmsg(
            s,
            &mut [&mut x[..], &mut y[..], &mut z[..]],
            &mut [],
            MsgFlags::NONE,
        )
        .unwrap();
    assert_eq!(out.bytes, 7);
    assert_eq!((&x, &z[..4]), (b"abc", &b"defg"[..]));
    assert_eq!(out.control_len, 0);
    assert_eq!(out.flags, MsgFlags::NONE);
    // A stream reports no address.
    assert_eq!(out.addr, None);
    // Nothing more.
    assert_eq!(
        o.recvmsg(s, &mut [&mut z[..]], &mut [], MsgFlags::NONE)
            .unwrap_err(),
        AGAIN
    );
    // No buffers at all: zero bytes sent.
    assert_eq!(o.sendmsg(c, &[], &[], None, MsgFlags::NONE).unwrap(), 0);
});

conformance!(sendmsg_to_and_recvmsg_from_on_udp, |b: &dyn Backend| {
    let o = b.ops();
    let (x, xa) = udp(b, lo4(0), true);
    let (y, ya) = udp(b, lo4(0), true);
    assert_eq!(
        o.sendmsg(x, &[b"one ", b"datagram"], &[], Some(&ya), MsgFlags::NONE)
            .unwrap(),
        12
    );
    let (mut p, mut q) = ([0u8; 4], [0u8; 4]);
    let out = o
        .recvmsg(y, &mut [&mut p[..], &mut q[..]], &mut [], MsgFlags::NONE)
        .unwrap();
    assert_eq!(out.bytes, 8);
    assert!(out.flags.contains(MsgFlags::TRUNC), "{:?}", out.flags);
    assert_eq!((&p, &q), (b"one ", b"data"));
    assert_eq!(out.addr, Some(xa));
    // Without an address on an unconnected socket.
    assert_eq!(
        o.sendmsg(x, &[b"x"], &[], None, MsgFlags::NONE)
            .unwrap_err(),
        Errno::EDESTADDRREQ
    );
    // An empty datagram through sendmsg.
    assert_eq!(
        o.sendmsg(x, &[], &[], Some(&ya), MsgFlags::NONE).unwrap(),
        0
    );
    assert_eq!(recv_vec(b, y, 8, MsgFlags::NONE).unwrap(), b"");
});

conformance!(recvmsg_peek_and_dgram_pair, |b: &dyn Backend| {
    let o = b.ops();
    let (a, r) = o
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    o.sendmsg(a, &[b"hello"], &[], None, MsgFlags::NONE)
        .unwrap();
    let mut buf = [0u8; 8];
    let out = o
        .recvmsg(r, &mut [&mut buf[..]], &mut [], MsgFlags::PEEK)
        .unwrap();
    assert_eq!(out.bytes, 5);
    let out = o
        .recvmsg(r, &mut [&mut buf[..2]], &mut [], MsgFlags::TRUNC)
        .unwrap();
    // With MSG_TRUNC passed in, the real length comes back.
    assert_eq!(out.bytes, 5);
    assert!(out.flags.contains(MsgFlags::TRUNC));
    assert_eq!(&buf[..2], b"he");
    assert_eq!(recv_vec(b, r, 8, MsgFlags::NONE).unwrap_err(), AGAIN);
});
