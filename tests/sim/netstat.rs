//! Socket tables, like `ss -a`: every column of `Host::sockets` for listeners,
//! connections with queued bytes, UDP sockets with options set, unix socketpairs and
//! duplicated descriptors; TCP's closing states; the rendered table.

use std::net::Ipv4Addr;
use std::time::Duration;

use llsocket_api::opt::Timeval;
use llsocket_api::{
    Family, Fd, MsgFlags, Protocol, Shutdown, SockAddr, SockOpt, SockType, SocketOps, UnixAddr,
};
use llsocket_sim::{Host, Latency, LinkConfig, SocketInfo};

use super::{listener, tcp, tcp_pair, two_hosts, udp};

/// The row of `h`'s table whose descriptors include `fd`.
fn row(h: &Host, fd: Fd) -> SocketInfo {
    h.sockets()
        .into_iter()
        .find(|r| r.fds.contains(&fd))
        .unwrap_or_else(|| panic!("no row for {fd:?}:\n{}", h.socket_table()))
}

fn opts(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_listener_shows_its_backlog_and_options_and_its_unaccepted_child() {
    let (sim, a, b) = two_hosts(80);
    let l = tcp(&b);
    b.setsockopt(l, SockOpt::ReuseAddr(true)).unwrap();
    b.bind(l, &SockAddr::v4(b.ipv4(), 80)).unwrap();
    b.listen(l, 16).unwrap();
    let c = tcp(&a);
    a.connect(c, &SockAddr::v4(b.ipv4(), 80)).unwrap();
    let client = a.getsockname(c).unwrap();
    let digest = sim.trace_digest();
    let rows = b.sockets();
    assert_eq!(
        sim.trace_digest(),
        digest,
        "reading the table records nothing"
    );
    assert_eq!(rows.len(), 2, "{}", b.socket_table());
    let lr = &rows[0];
    assert_eq!(lr.fds, vec![l]);
    assert_eq!(
        (lr.family, lr.ty, lr.netid()),
        (Family::INET, SockType::STREAM, "tcp")
    );
    assert_eq!(lr.state, "LISTEN");
    assert_eq!(lr.local, Some(SockAddr::v4(b.ipv4(), 80)));
    assert_eq!(lr.peer, None);
    assert_eq!((lr.recv_q, lr.send_q), (0, 0));
    assert_eq!(lr.backlog, Some((1, 16)));
    assert_eq!(lr.options, opts(&[("SO_REUSEADDR", "1")]));
    // The child waits in the accept queue: no descriptor yet, the listener's options.
    let child = &rows[1];
    assert!(child.fds.is_empty());
    assert_eq!(child.state, "ESTAB");
    assert_eq!(child.local, Some(SockAddr::v4(b.ipv4(), 80)));
    assert_eq!(child.peer, Some(client.clone()));
    assert_eq!(child.backlog, None);
    assert_eq!(child.options, opts(&[("SO_REUSEADDR", "1")]));
    let s = b.accept(l, false).unwrap().fd;
    assert_eq!(row(&b, s).peer, Some(client));
    assert_eq!(row(&b, l).backlog, Some((0, 16)));
    let cr = row(&a, c);
    assert_eq!((cr.state.as_str(), cr.options.clone()), ("ESTAB", vec![]));
}

#[test]
fn an_established_pair_shows_bytes_in_flight_and_unread() {
    let (sim, a, b) = two_hosts(81);
    let slow = LinkConfig {
        latency: Latency::Fixed(Duration::from_millis(10)),
        ..LinkConfig::default()
    };
    sim.set_link_both(&a, &b, slow);
    // Connecting: SYN-SENT at the client, SYN-RECV at the server's child.
    let l = listener(&b, 7000, 8);
    let c = a
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert!(a.connect(c, &SockAddr::v4(b.ipv4(), 7000)).is_err());
    let cr = row(&a, c);
    assert_eq!(cr.state, "SYN-SENT");
    assert_eq!(cr.peer, Some(SockAddr::v4(b.ipv4(), 7000)));
    sim.advance(Duration::from_millis(10));
    let child = b.sockets().into_iter().find(|r| r.fds.is_empty()).unwrap();
    assert_eq!(child.state, "SYN-RECV", "{}", b.socket_table());
    sim.advance(Duration::from_millis(10));
    assert_eq!(row(&a, c).state, "ESTAB");
    let s = b.accept(l, false).unwrap().fd;
    // 5 bytes on their way: in the sender's Send-Q, then in the receiver's Recv-Q.
    a.send(c, b"hello", MsgFlags::NONE).unwrap();
    assert_eq!((row(&a, c).send_q, row(&b, s).recv_q), (5, 0));
    sim.advance(Duration::from_millis(10));
    assert_eq!((row(&a, c).send_q, row(&b, s).recv_q), (0, 5));
    let sr = row(&b, s);
    assert_eq!(sr.local, Some(SockAddr::v4(b.ipv4(), 7000)));
    assert_eq!(sr.peer, Some(a.getsockname(c).unwrap()));
    assert_eq!(sr.state, "ESTAB");
}

#[test]
fn closing_states_and_time_wait() {
    let (sim, a, b) = two_hosts(82);
    let (c, s, _l) = tcp_pair(&sim, &a, &b, 7100);
    a.shutdown(c, Shutdown::WRITE).unwrap();
    assert_eq!(row(&a, c).state, "FIN-WAIT-2");
    assert_eq!(row(&b, s).state, "CLOSE-WAIT");
    b.close(s).unwrap();
    // Both FINs crossed: the client's socket is over, its address in TIME-WAIT.
    let cr = row(&a, c);
    assert_eq!(cr.state, "UNCONN");
    let local = a.getsockname(c).unwrap();
    let tw: Vec<SocketInfo> = a
        .sockets()
        .into_iter()
        .filter(|r| r.state == "TIME-WAIT")
        .collect();
    assert_eq!(tw.len(), 1, "{}", a.socket_table());
    assert!(tw[0].fds.is_empty());
    assert_eq!(tw[0].local, Some(local));
    assert_eq!(tw[0].peer, Some(SockAddr::v4(b.ipv4(), 7100)));
    sim.advance(Duration::from_secs(61));
    assert!(a.sockets().iter().all(|r| r.state != "TIME-WAIT"));
}

#[test]
fn a_udp_socket_shows_the_options_it_changed() {
    let (_sim, a, b) = two_hosts(83);
    let u = udp(&b);
    b.setsockopt(u, SockOpt::Broadcast(true)).unwrap();
    b.setsockopt(u, SockOpt::RcvBuf(10_000)).unwrap();
    b.setsockopt(
        u,
        SockOpt::RcvTimeo(Timeval {
            sec: 1,
            usec: 500_000,
        }),
    )
    .unwrap();
    b.bind(u, &SockAddr::v4(Ipv4Addr::UNSPECIFIED, 5000))
        .unwrap();
    let v = udp(&a);
    a.sendto(v, b"abc", &SockAddr::v4(b.ipv4(), 5000), MsgFlags::NONE)
        .unwrap();
    let r = row(&b, u);
    assert_eq!((r.netid(), r.state.as_str()), ("udp", "UNCONN"));
    assert_eq!(r.local, Some(SockAddr::v4(Ipv4Addr::UNSPECIFIED, 5000)));
    assert_eq!(
        (r.peer.clone(), r.recv_q, r.send_q, r.backlog),
        (None, 3, 0, None)
    );
    assert_eq!(
        r.options,
        opts(&[
            ("SO_BROADCAST", "1"),
            ("SO_RCVBUF", "20000"),
            ("SO_RCVTIMEO", "1.500000"),
        ])
    );
    // Connected UDP is ESTAB, with its peer; an unbound socket has no address.
    let w = udp(&b);
    assert_eq!(row(&b, w).local, None);
    b.connect(w, &SockAddr::v4(a.ipv4(), 9)).unwrap();
    let r = row(&b, w);
    assert_eq!(r.state, "ESTAB");
    assert_eq!(r.peer, Some(SockAddr::v4(a.ipv4(), 9)));
    assert!(r.options.is_empty());
}

#[test]
fn a_unix_socketpair_and_a_duplicated_descriptor() {
    let (_sim, a, _b) = two_hosts(84);
    let (x, y) = a
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let x2 = a.dup(x).unwrap();
    a.send(x, b"abc", MsgFlags::NONE).unwrap();
    let rows = a.sockets();
    assert_eq!(rows.len(), 2, "{}", a.socket_table());
    assert_eq!(rows[0].fds, vec![x, x2], "both descriptors on one row");
    assert_eq!(rows[1].fds, vec![y]);
    for r in &rows {
        assert_eq!(
            (r.family, r.netid(), r.state.as_str()),
            (Family::UNIX, "u_str", "ESTAB")
        );
        assert_eq!(r.local, None);
        assert_eq!(r.peer, Some(SockAddr::Unix(UnixAddr::Unnamed)));
        assert_eq!((r.send_q, r.backlog), (0, None));
    }
    assert_eq!((rows[0].recv_q, rows[1].recv_q), (0, 3));
    // A seqpacket listener on a path, and its named peer.
    let l = a
        .socket(Family::UNIX, SockType::SEQPACKET, Protocol::DEFAULT, false)
        .unwrap();
    let path = SockAddr::unix_path(&b"/run/ctl"[..]);
    a.bind(l, &path).unwrap();
    a.listen(l, 4).unwrap();
    let lr = row(&a, l);
    assert_eq!(
        (lr.netid(), lr.state.as_str(), lr.backlog),
        ("u_seq", "LISTEN", Some((0, 4)))
    );
    assert_eq!(lr.local, Some(path));
    a.close(x).unwrap();
    assert_eq!(row(&a, x2).fds, vec![x2]);
}

#[test]
fn the_table_is_aligned_under_a_header() {
    let (sim, a, b) = two_hosts(85);
    let (c, s, l) = tcp_pair(&sim, &a, &b, 80);
    b.setsockopt(l, SockOpt::ReuseAddr(true)).unwrap();
    a.send(c, b"hello", MsgFlags::NONE).unwrap();
    let u = udp(&b);
    let text = b.socket_table();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("Fd"), "{text}");
    for col in [
        "Netid", "State", "Recv-Q", "Send-Q", "Backlog", "Local", "Peer", "Options",
    ] {
        assert!(lines[0].contains(col), "{col} in {text}");
    }
    let at = |line: &str, what: &str| line.find(what).unwrap_or_else(|| panic!("{what}: {text}"));
    let local = at(lines[0], "Local");
    assert_eq!(at(lines[1], "10.0.0.2:80"), local, "{text}");
    assert_eq!(at(lines[2], "10.0.0.2:80"), local, "{text}");
    assert!(lines[1].starts_with(&format!("{} ", l.0)), "{text}");
    assert!(
        lines[1].contains("LISTEN") && lines[1].ends_with("SO_REUSEADDR=1"),
        "{text}"
    );
    assert!(
        lines[2].contains("ESTAB") && lines[2].contains(" 5 "),
        "{text}"
    );
    assert!(lines[3].starts_with(&format!("{} ", u.0)) && lines[3].contains("UNCONN"));
    assert!(lines.iter().all(|l| !l.ends_with(' ')));
    let _ = s;
    // The world's table: every host with a socket, under its name and address.
    let all = sim.socket_table();
    assert!(all.starts_with("host a 10.0.0.1\nFd"), "{all}");
    assert!(all.contains("\nhost b 10.0.0.2\nFd"), "{all}");
    let _ = sim.host("idle");
    assert!(!sim.socket_table().contains("idle"));
}
