//! Tests of the `sim` topic (see main.rs): simulator-only behaviour — determinism,
//! virtual time, fault injection, descriptor passing between tables, sendfile.
//!
//! | module | what it checks |
//! |---|---|
//! | `world` | seeds and traces, virtual time, `EDEADLK`, descriptor numbering |
//! | `tcp` | connections between hosts: handshake, refusal, backlog, buffers, shutdown, resets, OOB |
//! | `udp` | datagrams: boundaries, truncation, broadcast, multicast, buffer drops |
//! | `unix` | socketpairs, per-host namespaces, `SCM_RIGHTS`, `sendfile` |
//! | `faults` | every fault kind observably changing a workload |
//! | `chaos` | random programs under random faults: no panic, no leak, exact replay |
//! | `netdb` | the simulated hosts/services tables and interfaces |
//! | `netstat` | socket tables (`Host::sockets`, `ss -a`): every column, TCP's states, the rendered table |
//! | `scale` | 10 000-host worlds, the address plan, a full world, link rules and partitions between groups |
//! | `trace` | the trace sees what the program sees; readable lines; the determinism check; pinned cross-architecture digests |
//! | `tasks` | task mode: a call that would wait parks, untraced, and goes on when made again; one program gives the same trace with and without it |
//!
//! Every failing assertion prints `sim.replay_hint()`.

mod capture;
mod chaos;
mod faults;
mod netdb;
mod netstat;
mod rules;
mod scale;
mod tasks;
mod tcp;
mod trace;
mod udp;
mod unix;
mod world;

use llsocket_api::{Family, Fd, MsgFlags, Protocol, SockAddr, SockType, SocketOps};
use llsocket_sim::{Host, Sim};

/// A world with two hosts, "a" (10.0.0.1) and "b" (10.0.0.2).
pub(crate) fn two_hosts(seed: u64) -> (Sim, Host, Host) {
    let sim = Sim::new(seed);
    let a = sim.host("a");
    let b = sim.host("b");
    (sim, a, b)
}

/// A TCP socket of `h`.
pub(crate) fn tcp(h: &Host) -> Fd {
    h.socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .expect("socket")
}

/// A UDP socket of `h`.
pub(crate) fn udp(h: &Host) -> Fd {
    h.socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .expect("socket")
}

/// A listener on `srv` at 10.0.0.x:`port` with `backlog`.
pub(crate) fn listener(srv: &Host, port: u16, backlog: i32) -> Fd {
    let l = tcp(srv);
    srv.bind(l, &SockAddr::v4(srv.ipv4(), port)).expect("bind");
    srv.listen(l, backlog).expect("listen");
    l
}

/// A connected TCP pair: (client fd on `cli`, accepted fd on `srv`, listener on `srv`).
pub(crate) fn tcp_pair(sim: &Sim, cli: &Host, srv: &Host, port: u16) -> (Fd, Fd, Fd) {
    let l = listener(srv, port, 16);
    let c = tcp(cli);
    cli.connect(c, &SockAddr::v4(srv.ipv4(), port))
        .unwrap_or_else(|e| panic!("connect: {e:?}; {}", sim.replay_hint()));
    let s = srv
        .accept(l, false)
        .unwrap_or_else(|e| panic!("accept: {e:?}; {}", sim.replay_hint()))
        .fd;
    (c, s, l)
}

/// Receives exactly `n` bytes (blocking, bounded by `n` calls).
pub(crate) fn recv_exact(sim: &Sim, h: &Host, fd: Fd, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; n];
    for _ in 0..=n {
        if out.len() == n {
            break;
        }
        let k = h
            .recv(fd, &mut buf[..n - out.len()], MsgFlags::NONE)
            .unwrap_or_else(|e| panic!("recv: {e:?}; {}", sim.replay_hint()));
        assert!(
            k > 0,
            "early EOF after {} bytes; {}",
            out.len(),
            sim.replay_hint()
        );
        out.extend_from_slice(&buf[..k]);
    }
    out
}
