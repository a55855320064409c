//! TCP over loopback: connect/accept/echo, refused and non-blocking connects, full
//! buffers, peek/waitall, shutdown, resets, listen, out-of-band data, low-water mark.

use super::{
    conformance, listener, lo4, lo6, recv_exact, recv_vec, send_all, tcp_pair, Backend, AGAIN,
};
use llsocket_api::{
    Errno, Family, Interest, MsgFlags, OptName, Protocol, Shutdown, SockAddr, SockOpt, SockType,
};

fn echo(b: &dyn Backend, addr: SockAddr) {
    let o = b.ops();
    let (l, bound) = listener(b, addr.clone(), false);
    assert_eq!(bound.family(), addr.family());
    assert_eq!(
        bound.as_socket_addr().unwrap().ip(),
        addr.as_socket_addr().unwrap().ip()
    );
    assert_ne!(bound.port(), Some(0));
    assert_eq!(
        o.getsockopt(l, OptName::AcceptConn).unwrap(),
        SockOpt::AcceptConn(true)
    );
    let c = o
        .socket(addr.family(), SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(
        o.getsockopt(c, OptName::Protocol).unwrap(),
        SockOpt::Protocol(libc::IPPROTO_TCP)
    );
    // Loopback: the connect completes before anyone accepts.
    o.connect(c, &bound).unwrap();
    assert!(o.poll(l, Interest::READ, 0).unwrap());
    let acc = o.accept(l, true).unwrap();
    let s = acc.fd;
    let caddr = o.getsockname(c).unwrap();
    assert_eq!(acc.addr, Some(caddr.clone()));
    assert_eq!(o.getpeername(s).unwrap(), caddr);
    assert_eq!(o.getpeername(c).unwrap(), bound);
    assert_eq!(o.getsockname(s).unwrap(), bound);
    assert!(o.cloexec(s).unwrap());
    assert!(!o.nonblock(s).unwrap());
    assert_eq!(
        o.getsockopt(s, OptName::AcceptConn).unwrap(),
        SockOpt::AcceptConn(false)
    );
    assert!(!o.poll(l, Interest::READ, 0).unwrap());
    // Echo both ways; loopback delivers before send returns.
    assert_eq!(o.send(c, b"ping", MsgFlags::NONE).unwrap(), 4);
    assert!(o.poll(s, Interest::READ, 0).unwrap());
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap(), b"ping");
    assert_eq!(o.send(s, b"pong!", MsgFlags::NONE).unwrap(), 5);
    assert_eq!(recv_vec(b, c, 16, MsgFlags::NONE).unwrap(), b"pong!");
    // A larger transfer arrives complete and in order.
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    send_all(b, c, &data);
    assert_eq!(recv_exact(b, s, data.len()), data);
    // Connecting again: EISCONN.
    assert_eq!(o.connect(c, &bound).unwrap_err(), Errno::EISCONN);
    // Orderly close: end of stream.
    o.close(c).unwrap();
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap(), b"");
}

conformance!(tcp_echo_v4, |b: &dyn Backend| {
    echo(b, lo4(0));
});

conformance!(tcp_echo_v6, |b: &dyn Backend| {
    echo(b, lo6(0));
});

conformance!(tcp_connect_refused, |b: &dyn Backend| {
    let o = b.ops();
    for addr in [lo4(0), lo6(0)] {
        // A bound socket that does not listen keeps the port ours and refuses connections.
        let holder = o
            .socket(addr.family(), SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        o.bind(holder, &addr).unwrap();
        let target = o.getsockname(holder).unwrap();
        let c = o
            .socket(addr.family(), SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        assert_eq!(o.connect(c, &target).unwrap_err(), Errno::ECONNREFUSED);
        // The error was reported by connect, so nothing is pending.
        assert_eq!(o.getsockopt(c, OptName::Error).unwrap(), SockOpt::Error(0));
        assert_eq!(o.getpeername(c).unwrap_err(), Errno::ENOTCONN);
    }
});

conformance!(tcp_nonblocking_connect_completes, |b: &dyn Backend| {
    let o = b.ops();
    let (l, bound) = listener(b, lo4(0), false);
    let c = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(o.connect(c, &bound).unwrap_err(), Errno::EINPROGRESS);
    // Loopback finished the handshake during the call.
    assert!(o.poll(c, Interest::WRITE, 0).unwrap());
    assert_eq!(o.getsockopt(c, OptName::Error).unwrap(), SockOpt::Error(0));
    assert_eq!(o.getpeername(c).unwrap(), bound);
    // Connecting again reports the completed connect once, then EISCONN.
    o.connect(c, &bound).unwrap();
    assert_eq!(o.connect(c, &bound).unwrap_err(), Errno::EISCONN);
    let s = o.accept(l, false).unwrap().fd;
    o.send(c, b"hi", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, s, 8, MsgFlags::NONE).unwrap(), b"hi");
});

conformance!(
    tcp_nonblocking_connect_refused_via_so_error,
    |b: &dyn Backend| {
        let o = b.ops();
        let holder = o
            .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        o.bind(holder, &lo4(0)).unwrap();
        let target = o.getsockname(holder).unwrap();
        let c = o
            .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
            .unwrap();
        assert_eq!(o.connect(c, &target).unwrap_err(), Errno::EINPROGRESS);
        // The refusal arrived during the call: the socket is ready and holds the error.
        assert!(o.poll(c, Interest::WRITE, 0).unwrap());
        assert!(o.poll(c, Interest::READ, 0).unwrap());
        assert_eq!(
            o.getsockopt(c, OptName::Error).unwrap(),
            SockOpt::Error(libc::ECONNREFUSED)
        );
        // Reading SO_ERROR cleared it.
        assert_eq!(o.getsockopt(c, OptName::Error).unwrap(), SockOpt::Error(0));
        assert_eq!(o.getpeername(c).unwrap_err(), Errno::ENOTCONN);
    }
);

conformance!(tcp_nonblocking_empty_reads_are_eagain, |b: &dyn Backend| {
    let o = b.ops();
    let (l, bound) = listener(b, lo4(0), true);
    assert!(o.nonblock(l).unwrap());
    assert_eq!(o.accept(l, false).unwrap_err(), AGAIN);
    let c = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    o.connect(c, &bound).unwrap();
    // The accepted socket inherits O_NONBLOCK from the listener.
    let s = o.accept(l, false).unwrap();
    assert_eq!(s.addr, None);
    assert!(o.nonblock(s.fd).unwrap());
    assert_eq!(recv_vec(b, s.fd, 8, MsgFlags::NONE).unwrap_err(), AGAIN);
    // MSG_DONTWAIT makes one call non-blocking on a blocking socket.
    assert_eq!(recv_vec(b, c, 8, MsgFlags::DONTWAIT).unwrap_err(), AGAIN);
    assert!(!o.poll(c, Interest::READ, 0).unwrap());
    assert!(o.poll(c, Interest::WRITE, 0).unwrap());
});

conformance!(tcp_full_send_buffer_is_eagain, |b: &dyn Backend| {
    // Exact byte counts depend on the kernel's buffer accounting (skb overhead,
    // autotuning, window scaling), so only the deterministic properties are
    // compared: a large first send is partial, the sender eventually gets EAGAIN
    // and the receiver then gets exactly the bytes that were accepted, in order.
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    o.setsockopt(c, SockOpt::SndBuf(4096)).unwrap();
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let first = o.send(c, &data, MsgFlags::NONE).unwrap();
    assert!(first > 0 && first < data.len(), "first send {first}");
    let mut sent = first;
    let mut saw_again = false;
    for _ in 0..1000 {
        match o.send(c, &data[sent..sent + 16384], MsgFlags::NONE) {
            Ok(n) => sent += n,
            Err(e) => {
                assert_eq!(e, AGAIN);
                saw_again = true;
                break;
            }
        }
    }
    assert!(saw_again, "no EAGAIN after {sent} bytes");
    assert!(!o.poll(c, Interest::WRITE, 0).unwrap());
    let got = recv_exact(b, s, sent);
    assert!(
        got == data[..sent],
        "received bytes differ from the sent ones"
    );
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
});

conformance!(unix_stream_full_send_buffer_is_eagain, |b: &dyn Backend| {
    // As for TCP: the point where EAGAIN comes is kernel accounting; only the
    // properties are compared.
    let o = b.ops();
    let (c, s) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    o.setsockopt(c, SockOpt::SndBuf(4096)).unwrap();
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 249) as u8).collect();
    let first = o.send(c, &data, MsgFlags::NONE).unwrap();
    assert!(first > 0 && first < data.len(), "first send {first}");
    let mut sent = first;
    let mut saw_again = false;
    for _ in 0..1000 {
        match o.send(c, &data[sent..sent + 1024], MsgFlags::NONE) {
            Ok(n) => sent += n,
            Err(e) => {
                assert_eq!(e, AGAIN);
                saw_again = true;
                break;
            }
        }
    }
    assert!(saw_again, "no EAGAIN after {sent} bytes");
    let got = recv_exact(b, s, sent);
    assert!(
        got == data[..sent],
        "received bytes differ from the sent ones"
    );
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
    // Draining made room again.
    assert!(o.poll(c, Interest::WRITE, 0).unwrap());
});

conformance!(tcp_peek_and_waitall, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), false);
    o.send(c, b"hello world", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, s, 5, MsgFlags::PEEK).unwrap(), b"hello");
    assert_eq!(recv_vec(b, s, 64, MsgFlags::PEEK).unwrap(), b"hello world");
    // MSG_WAITALL with the data already there returns it all at once.
    assert_eq!(recv_vec(b, s, 6, MsgFlags::WAITALL).unwrap(), b"hello ");
    assert_eq!(recv_vec(b, s, 64, MsgFlags::NONE).unwrap(), b"world");
    // Peek on a socketpair too.
    let (x, y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    o.send(x, b"abc", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, y, 2, MsgFlags::PEEK).unwrap(), b"ab");
    assert_eq!(
        recv_vec(b, y, 8, MsgFlags::WAITALL | MsgFlags::DONTWAIT).unwrap(),
        b"abc"
    );
});

conformance!(tcp_shutdown_write, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    o.send(c, b"bye", MsgFlags::NONE).unwrap();
    o.shutdown(c, Shutdown::WRITE).unwrap();
    assert_eq!(recv_vec(b, s, 8, MsgFlags::NONE).unwrap(), b"bye");
    assert_eq!(recv_vec(b, s, 8, MsgFlags::NONE).unwrap(), b"");
    assert!(o.poll(s, Interest::READ, 0).unwrap());
    // Writing after SHUT_WR: EPIPE returned, the process lives.
    assert_eq!(o.send(c, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    // The other direction is open.
    o.send(s, b"reply", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, c, 8, MsgFlags::NONE).unwrap(), b"reply");
    o.shutdown(s, Shutdown::WRITE).unwrap();
    assert_eq!(recv_vec(b, c, 8, MsgFlags::NONE).unwrap(), b"");
});

conformance!(tcp_shutdown_read_and_both, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    // SHUT_RD with nothing queued: receives are end of stream at once.
    o.shutdown(s, Shutdown::READ).unwrap();
    assert_eq!(recv_vec(b, s, 8, MsgFlags::NONE).unwrap(), b"");
    assert!(o.poll(s, Interest::READ, 0).unwrap());
    // The shut-down side can still send.
    o.send(s, b"out", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, c, 8, MsgFlags::NONE).unwrap(), b"out");
    // SHUT_RDWR: our sends fail, the peer sees end of stream.
    o.shutdown(c, Shutdown::BOTH).unwrap();
    assert_eq!(o.send(c, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    assert_eq!(recv_vec(b, c, 8, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(recv_vec(b, s, 8, MsgFlags::NONE).unwrap(), b"");
    // Shutting down an unconnected socket: ENOTCONN.
    let u = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(o.shutdown(u, Shutdown::BOTH).unwrap_err(), Errno::ENOTCONN);
    assert_eq!(o.shutdown(c, Shutdown(9)).unwrap_err(), Errno::EINVAL);
});

conformance!(tcp_close_with_unread_data_resets_peer, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    o.send(c, b"never read", MsgFlags::NONE).unwrap();
    // Closing with unread data sends a reset instead of a FIN.
    o.close(s).unwrap();
    assert!(o.poll(c, Interest::READ, 0).unwrap());
    assert_eq!(
        recv_vec(b, c, 8, MsgFlags::NONE).unwrap_err(),
        Errno::ECONNRESET
    );
    // The error is reported once; then the stream is simply over.
    assert_eq!(recv_vec(b, c, 8, MsgFlags::NONE).unwrap(), b"");
    assert_eq!(o.send(c, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
});

conformance!(
    tcp_reset_reported_to_send_and_so_error,
    |b: &dyn Backend| {
        let o = b.ops();
        let (c, s) = tcp_pair(b, lo4(0), true);
        o.send(c, b"unread", MsgFlags::NONE).unwrap();
        o.close(s).unwrap();
        // A pending reset is what SO_ERROR reports (and clears).
        assert_eq!(
            o.getsockopt(c, OptName::Error).unwrap(),
            SockOpt::Error(libc::ECONNRESET)
        );
        assert_eq!(o.getsockopt(c, OptName::Error).unwrap(), SockOpt::Error(0));
        assert_eq!(o.send(c, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    }
);

conformance!(tcp_listen_basics, |b: &dyn Backend| {
    let o = b.ops();
    let l = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    // accept before listen: EINVAL.
    assert_eq!(o.accept(l, false).unwrap_err(), Errno::EINVAL);
    // listen without bind picks an ephemeral port.
    o.listen(l, 2).unwrap();
    let bound = o.getsockname(l).unwrap();
    assert_ne!(bound.port(), Some(0));
    // listen again just changes the backlog.
    o.listen(l, 4).unwrap();
    let target = lo4(bound.port().unwrap());
    let mut clients = Vec::new();
    for _ in 0..3 {
        let c = o
            .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        o.connect(c, &target).unwrap();
        clients.push(c);
    }
    // Connections are accepted in arrival order.
    for &c in &clients {
        let a = o.accept(l, true).unwrap();
        assert_eq!(a.addr, Some(o.getsockname(c).unwrap()));
    }
    assert_eq!(o.accept(l, false).unwrap_err(), AGAIN);
    // A connected socket cannot listen; a listener cannot connect.
    assert_eq!(o.listen(clients[0], 1).unwrap_err(), Errno::EINVAL);
    assert_eq!(o.connect(l, &target).unwrap_err(), Errno::EISCONN);
    // UDP cannot listen.
    let u = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(o.listen(u, 1).unwrap_err(), Errno::EOPNOTSUPP);
    assert_eq!(o.accept(u, false).unwrap_err(), Errno::EOPNOTSUPP);
});

conformance!(tcp_out_of_band_and_atmark, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    assert!(!o.atmark(s).unwrap());
    assert_eq!(recv_vec(b, s, 1, MsgFlags::OOB).unwrap_err(), Errno::EINVAL);
    o.send(c, b"ab", MsgFlags::NONE).unwrap();
    o.send(c, b"c", MsgFlags::OOB).unwrap();
    o.send(c, b"de", MsgFlags::NONE).unwrap();
    assert!(o.poll(s, Interest::default().with_except(true), 0).unwrap());
    assert!(!o.atmark(s).unwrap());
    // A normal read stops at the mark.
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap(), b"ab");
    assert!(o.atmark(s).unwrap());
    assert_eq!(recv_vec(b, s, 16, MsgFlags::OOB).unwrap(), b"c");
    assert_eq!(
        recv_vec(b, s, 16, MsgFlags::OOB).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap(), b"de");
    assert!(!o.atmark(s).unwrap());
});

conformance!(tcp_out_of_band_inline, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    o.setsockopt(s, SockOpt::OobInline(true)).unwrap();
    o.send(c, b"ab", MsgFlags::NONE).unwrap();
    o.send(c, b"c", MsgFlags::OOB).unwrap();
    o.send(c, b"d", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap(), b"ab");
    assert!(o.atmark(s).unwrap());
    // Inline: MSG_OOB is refused, the byte comes with the stream.
    assert_eq!(
        recv_vec(b, s, 16, MsgFlags::OOB).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap(), b"cd");
});

conformance!(tcp_rcvlowat_gates_readability, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    assert_eq!(
        o.getsockopt(s, OptName::RcvLowat).unwrap(),
        SockOpt::RcvLowat(1)
    );
    o.setsockopt(s, SockOpt::RcvLowat(5)).unwrap();
    assert_eq!(
        o.getsockopt(s, OptName::RcvLowat).unwrap(),
        SockOpt::RcvLowat(5)
    );
    o.send(c, b"abc", MsgFlags::NONE).unwrap();
    assert!(!o.poll(s, Interest::READ, 0).unwrap());
    o.send(c, b"de", MsgFlags::NONE).unwrap();
    assert!(o.poll(s, Interest::READ, 0).unwrap());
    assert_eq!(recv_vec(b, s, 16, MsgFlags::NONE).unwrap(), b"abcde");
});

conformance!(tcp_names, |b: &dyn Backend| {
    let o = b.ops();
    let s4 = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let s6 = o
        .socket(Family::INET6, SockType::STREAM, Protocol::TCP, false)
        .unwrap();
    assert_eq!(
        o.getsockname(s4).unwrap(),
        SockAddr::v4(std::net::Ipv4Addr::UNSPECIFIED, 0)
    );
    assert_eq!(
        o.getsockname(s6).unwrap(),
        SockAddr::v6(std::net::Ipv6Addr::UNSPECIFIED, 0)
    );
    assert_eq!(o.getpeername(s4).unwrap_err(), Errno::ENOTCONN);
    o.bind(s4, &lo4(0)).unwrap();
    let a = o.getsockname(s4).unwrap();
    assert_eq!(a.as_socket_addr().unwrap().ip().to_string(), "127.0.0.1");
    assert_ne!(a.port(), Some(0));
    // Binding twice: EINVAL.
    assert_eq!(o.bind(s4, &lo4(0)).unwrap_err(), Errno::EINVAL);
    // The wildcard address.
    o.bind(s6, &SockAddr::v6(std::net::Ipv6Addr::UNSPECIFIED, 0))
        .unwrap();
    let a6 = o.getsockname(s6).unwrap();
    assert!(a6.is_unspecified_ip());
    assert_ne!(a6.port(), Some(0));
});

conformance!(tcp_bind_in_use, |b: &dyn Backend| {
    let o = b.ops();
    let (_l, bound) = listener(b, lo4(0), false);
    let s = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(o.bind(s, &bound).unwrap_err(), Errno::EADDRINUSE);
    // SO_REUSEADDR does not allow sharing with a listener.
    o.setsockopt(s, SockOpt::ReuseAddr(true)).unwrap();
    assert_eq!(o.bind(s, &bound).unwrap_err(), Errno::EADDRINUSE);
    // The wildcard address on the same port conflicts too.
    let w = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(
        o.bind(
            w,
            &SockAddr::v4(std::net::Ipv4Addr::UNSPECIFIED, bound.port().unwrap())
        )
        .unwrap_err(),
        Errno::EADDRINUSE
    );
    // A failed bind leaves the socket usable.
    o.bind(s, &lo4(0)).unwrap();
    // The same for UDP.
    let u = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    o.bind(u, &lo4(0)).unwrap();
    let ubound = o.getsockname(u).unwrap();
    let u2 = o
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    assert_eq!(o.bind(u2, &ubound).unwrap_err(), Errno::EADDRINUSE);
});

conformance!(
    tcp_closing_a_listener_resets_pending_connections,
    |b: &dyn Backend| {
        let o = b.ops();
        let (l, bound) = listener(b, lo4(0), true);
        let c = o
            .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
            .unwrap();
        assert_eq!(o.connect(c, &bound).unwrap_err(), Errno::EINPROGRESS);
        o.send(c, b"queued", MsgFlags::NONE).unwrap();
        // Never accepted: closing the listener resets the queued connection.
        o.close(l).unwrap();
        assert_eq!(
            recv_vec(b, c, 8, MsgFlags::NONE).unwrap_err(),
            Errno::ECONNRESET
        );
        // And the port is free again: connecting is refused.
        let c2 = o
            .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        assert_eq!(o.connect(c2, &bound).unwrap_err(), Errno::ECONNREFUSED);
    }
);

conformance!(tcp_linger_zero_close_is_a_reset, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    o.setsockopt(
        s,
        SockOpt::Linger(llsocket_api::Linger {
            enabled: true,
            secs: 0,
        }),
    )
    .unwrap();
    // No unread data, but linger {on, 0} makes close abortive.
    o.close(s).unwrap();
    assert_eq!(
        recv_vec(b, c, 8, MsgFlags::NONE).unwrap_err(),
        Errno::ECONNRESET
    );
    assert_eq!(recv_vec(b, c, 8, MsgFlags::NONE).unwrap(), b"");
});

conformance!(tcp_unconnected_data_errors, |b: &dyn Backend| {
    let o = b.ops();
    let s = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    // Sending on a never-connected stream is EPIPE on Linux, receiving ENOTCONN.
    assert_eq!(o.send(s, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    assert_eq!(
        recv_vec(b, s, 8, MsgFlags::NONE).unwrap_err(),
        Errno::ENOTCONN
    );
    // A listener has no data either.
    let (l, _) = listener(b, lo4(0), true);
    assert_eq!(
        recv_vec(b, l, 8, MsgFlags::NONE).unwrap_err(),
        Errno::ENOTCONN
    );
    assert_eq!(o.send(l, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
});

conformance!(blocking_calls_time_out_with_eagain, |b: &dyn Backend| {
    use llsocket_api::opt::Timeval;
    let o = b.ops();
    let short = Timeval {
        sec: 0,
        usec: 20_000,
    };
    // recv on an empty blocking socket with SO_RCVTIMEO: EAGAIN once the time is up.
    let (c, s) = tcp_pair(b, lo4(0), false);
    o.setsockopt(s, SockOpt::RcvTimeo(short)).unwrap();
    assert_eq!(recv_vec(b, s, 8, MsgFlags::NONE).unwrap_err(), AGAIN);
    // MSG_WAITALL with part of the data there: the part, after the timeout.
    o.send(c, b"abc", MsgFlags::NONE).unwrap();
    assert_eq!(recv_vec(b, s, 10, MsgFlags::WAITALL).unwrap(), b"abc");
    // accept on a blocking listener with SO_RCVTIMEO: EAGAIN.
    let (l, _) = listener(b, lo4(0), false);
    o.setsockopt(l, SockOpt::RcvTimeo(short)).unwrap();
    assert_eq!(o.accept(l, false).unwrap_err(), AGAIN);
    // send on a full blocking socket with SO_SNDTIMEO: EAGAIN when nothing fitted.
    let (x, _y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    let chunk = vec![7u8; 4096];
    let mut full = false;
    for _ in 0..10_000 {
        if o.send(x, &chunk, MsgFlags::NONE).is_err() {
            full = true;
            break;
        }
    }
    assert!(full, "the socketpair never filled up");
    o.set_nonblock(x, false).unwrap();
    o.setsockopt(x, SockOpt::SndTimeo(short)).unwrap();
    assert_eq!(o.send(x, &chunk, MsgFlags::NONE).unwrap_err(), AGAIN);
});
