//! Less obvious kernel behaviours the differential test found, pinned one by one.

use super::{conformance, listener, lo4, recv_vec, tcp_pair, udp, AGAIN};
use llsocket_api::cmsg::{self, Cmsg};
use llsocket_api::{
    Errno, Family, Interest, MsgFlags, OptName, Protocol, Shutdown, SockAddr, SockOpt, SockType,
    UnixAddr,
};

conformance!(
    udp_send_binds_a_port_even_when_it_fails,
    |b: &dyn Backend| {
        let o = b.ops();
        let s = o
            .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, true)
            .unwrap();
        assert_eq!(o.getsockname(s).unwrap().port(), Some(0));
        // inet_sendmsg picks a local port before UDP looks at the destination.
        assert_eq!(
            o.send(s, b"x", MsgFlags::NONE).unwrap_err(),
            Errno::EDESTADDRREQ
        );
        assert_ne!(o.getsockname(s).unwrap().port(), Some(0));
        // So it cannot be bound any more.
        assert_eq!(o.bind(s, &lo4(0)).unwrap_err(), Errno::EINVAL);
    }
);

conformance!(tcp_self_connect, |b: &dyn Backend| {
    let o = b.ops();
    let s = o
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    o.bind(s, &lo4(0)).unwrap();
    let me = o.getsockname(s).unwrap();
    // Simultaneous open with itself: the socket connects to itself.
    assert_eq!(o.connect(s, &me).unwrap_err(), Errno::EINPROGRESS);
    assert_eq!(o.getsockopt(s, OptName::Error).unwrap(), SockOpt::Error(0));
    assert_eq!(o.getpeername(s).unwrap(), me);
    o.connect(s, &me).unwrap();
    assert_eq!(o.send(s, b"echo", MsgFlags::NONE).unwrap(), 4);
    assert_eq!(recv_vec(b, s, 8, MsgFlags::NONE).unwrap(), b"echo");
    assert_eq!(o.listen(s, 1).unwrap_err(), Errno::EINVAL);
});

conformance!(
    shutdown_of_an_unconnected_socket_still_shuts,
    |b: &dyn Backend| {
        let o = b.ops();
        let s = o
            .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
            .unwrap();
        assert_eq!(o.shutdown(s, Shutdown::READ).unwrap_err(), Errno::ENOTCONN);
        // ENOTCONN, yet the receive side is marked shut: end of stream, not ENOTCONN.
        assert_eq!(recv_vec(b, s, 8, MsgFlags::NONE).unwrap(), b"");
        let l = o
            .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
            .unwrap();
        assert_eq!(o.shutdown(l, Shutdown::BOTH).unwrap_err(), Errno::ENOTCONN);
        // A listener ignores those flags when polled.
        o.listen(l, 3).unwrap();
        let both = Interest {
            read: true,
            write: true,
            except: false,
        };
        assert!(!o.poll(l, both, 0).unwrap());
    }
);

conformance!(tcp_data_after_shutdown_both_resets, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    o.shutdown(s, Shutdown::BOTH).unwrap();
    // The peer does not know yet that s stopped reading: its data is accepted...
    assert_eq!(o.send(c, b"too late", MsgFlags::NONE).unwrap(), 8);
    // ...and answered with a reset.
    assert_eq!(
        recv_vec(b, s, 16, MsgFlags::NONE).unwrap_err(),
        Errno::ECONNRESET
    );
    assert_eq!(o.send(c, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
});

conformance!(unix_peer_name_is_read_live, |b: &dyn Backend| {
    let o = b.ops();
    let (x, y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(o.getpeername(y).unwrap(), SockAddr::Unix(UnixAddr::Unnamed));
    o.send(x, b"before", MsgFlags::NONE).unwrap();
    // A connected unix socket may still be bound, and its peer sees the name at once,
    // also as the source of data sent before the bind.
    let name = b.unix_abstract("live");
    o.bind(x, &name).unwrap();
    assert_eq!(o.getpeername(y).unwrap(), name);
    let mut buf = [0u8; 16];
    let (n, from) = o.recvfrom(y, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!((&buf[..n], from), (&b"before"[..], Some(name)));
});

conformance!(
    unix_abstract_names_are_per_socket_type,
    |b: &dyn Backend| {
        let o = b.ops();
        let name = b.unix_abstract("typed");
        let d = o
            .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, true)
            .unwrap();
        o.bind(d, &name).unwrap();
        let s = o
            .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, true)
            .unwrap();
        o.bind(s, &name).unwrap();
        o.listen(s, 1).unwrap();
        // A datagram socket finds only datagram sockets under an abstract name.
        let c = o
            .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, true)
            .unwrap();
        o.sendto(c, b"to the dgram one", &name, MsgFlags::NONE)
            .unwrap();
        assert_eq!(
            recv_vec(b, d, 32, MsgFlags::NONE).unwrap(),
            b"to the dgram one"
        );
        let t = o
            .socket(Family::UNIX, SockType::SEQPACKET, Protocol::DEFAULT, true)
            .unwrap();
        assert_eq!(o.connect(t, &name).unwrap_err(), Errno::ECONNREFUSED);
    }
);

conformance!(
    unix_dgram_connected_elsewhere_is_eperm,
    |b: &dyn Backend| {
        let o = b.ops();
        let (x, _y) = o
            .socketpair(SockType::DGRAM, Protocol::DEFAULT, true)
            .unwrap();
        let name = b.unix_abstract("taken");
        o.bind(x, &name).unwrap();
        // x is connected to y: nobody else may send to it.
        let z = o
            .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, true)
            .unwrap();
        assert_eq!(
            o.sendto(z, b"x", &name, MsgFlags::NONE).unwrap_err(),
            Errno::EPERM
        );
        assert_eq!(o.connect(z, &name).unwrap_err(), Errno::EPERM);
    }
);

conformance!(unix_dgram_peer_gone, |b: &dyn Backend| {
    let o = b.ops();
    let (x, y) = o
        .socketpair(SockType::DGRAM, Protocol::DEFAULT, true)
        .unwrap();
    o.send(y, b"queued", MsgFlags::NONE).unwrap();
    o.close(y).unwrap();
    // Still "connected" until a send notices; queued datagrams are readable.
    assert_eq!(o.getpeername(x).unwrap(), SockAddr::Unix(UnixAddr::Unnamed));
    assert!(o.poll(x, Interest::READ, 0).unwrap());
    // The send that notices drops the connection and the queue.
    assert_eq!(
        o.send(x, b"x", MsgFlags::NONE).unwrap_err(),
        Errno::ECONNREFUSED
    );
    assert!(!o.poll(x, Interest::READ, 0).unwrap());
    assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
    assert_eq!(o.getpeername(x).unwrap_err(), Errno::ENOTCONN);
});

conformance!(
    unix_close_with_unread_data_resets_peer,
    |b: &dyn Backend| {
        let o = b.ops();
        for ty in [SockType::STREAM, SockType::SEQPACKET] {
            let (x, y) = o.socketpair(ty, Protocol::DEFAULT, true).unwrap();
            o.send(x, b"unread", MsgFlags::NONE).unwrap();
            o.close(y).unwrap();
            assert_eq!(
                recv_vec(b, x, 16, MsgFlags::NONE).unwrap_err(),
                Errno::ECONNRESET,
                "{ty:?}"
            );
            assert_eq!(recv_vec(b, x, 16, MsgFlags::NONE).unwrap(), b"", "{ty:?}");
            assert_eq!(
                o.send(x, b"x", MsgFlags::NONE).unwrap_err(),
                Errno::EPIPE,
                "{ty:?}"
            );
        }
    }
);

conformance!(scm_rights_is_ignored_on_inet_sockets, |b: &dyn Backend| {
    let o = b.ops();
    let (c, s) = tcp_pair(b, lo4(0), true);
    let (x, _y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    let control = cmsg::encode(&[Cmsg::rights(&[x])]);
    assert_eq!(
        o.sendmsg(c, &[b"data"], &control, None, MsgFlags::NONE)
            .unwrap(),
        4
    );
    let mut buf = [0u8; 8];
    let mut cbuf = vec![0u8; cmsg::cmsg_space(16)];
    let out = o
        .recvmsg(s, &mut [&mut buf[..]], &mut cbuf, MsgFlags::NONE)
        .unwrap();
    assert_eq!((out.bytes, out.control_len), (4, 0));
    let (u, _) = udp(b, lo4(0), true);
    let (v, va) = udp(b, lo4(0), true);
    assert_eq!(
        o.sendmsg(u, &[b"dgram"], &control, Some(&va), MsgFlags::NONE)
            .unwrap(),
        5
    );
    assert_eq!(recv_vec(b, v, 8, MsgFlags::NONE).unwrap(), b"dgram");
});

conformance!(
    zero_length_stream_sendmsg_passes_no_descriptors,
    |b: &dyn Backend| {
        let o = b.ops();
        let (x, y) = o
            .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
            .unwrap();
        let (p, _q) = o
            .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
            .unwrap();
        let control = cmsg::encode(&[Cmsg::rights(&[p])]);
        // A stream send of no bytes sends nothing at all, descriptors included...
        assert_eq!(
            o.sendmsg(x, &[], &control, None, MsgFlags::NONE).unwrap(),
            0
        );
        let mut buf = [0u8; 8];
        let mut cbuf = vec![0u8; cmsg::cmsg_space(16)];
        assert_eq!(
            o.recvmsg(y, &mut [&mut buf[..]], &mut cbuf, MsgFlags::NONE)
                .unwrap_err(),
            AGAIN
        );
        // ...while a datagram or seqpacket send of no bytes is a message carrying them.
        for ty in [SockType::DGRAM, SockType::SEQPACKET] {
            let (d, e) = o.socketpair(ty, Protocol::DEFAULT, true).unwrap();
            assert_eq!(
                o.sendmsg(d, &[], &control, None, MsgFlags::NONE).unwrap(),
                0
            );
            let out = o
                .recvmsg(e, &mut [&mut buf[..]], &mut cbuf, MsgFlags::NONE)
                .unwrap();
            assert_eq!(out.bytes, 0, "{ty:?}");
            let msgs = cmsg::decode(&cbuf[..out.control_len]);
            assert_eq!(msgs.len(), 1, "{ty:?}");
            assert_eq!(msgs[0].fds().unwrap().len(), 1, "{ty:?}");
        }
        // Sending y's own descriptor to y with no bytes leaves no reference in flight:
        // closing y ends the pair.
        let control = cmsg::encode(&[Cmsg::rights(&[y])]);
        assert_eq!(
            o.sendmsg(x, &[], &control, None, MsgFlags::NONE).unwrap(),
            0
        );
        o.close(y).unwrap();
        assert_eq!(o.send(x, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    }
);

conformance!(listener_shutdown_stops_listening, |b: &dyn Backend| {
    let o = b.ops();
    let (l, bound) = listener(b, lo4(0), true);
    // SHUT_RD on a listener disconnects it: no longer listening, the port given back.
    o.shutdown(l, Shutdown::READ).unwrap();
    assert_eq!(
        o.getsockopt(l, OptName::AcceptConn).unwrap(),
        SockOpt::AcceptConn(false)
    );
    // (Connecting to the old port is not tried: another test may hold it by now.)
    // Listening again keeps the bound address (127.0.0.1) with a new port.
    o.listen(l, 1).unwrap();
    let again = o.getsockname(l).unwrap();
    assert_eq!(
        again.as_socket_addr().unwrap().ip(),
        bound.as_socket_addr().unwrap().ip()
    );
    assert_ne!(again.port(), Some(0));
});
