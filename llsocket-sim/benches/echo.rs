//! Echo benchmark: the same program, generic over `SocketOps`, on the simulator and on the
//! kernel (`llsocket_posix::Posix` over 127.0.0.1).
//!
//! Workloads: a small-message TCP echo on one connection (32-byte messages, one round trip =
//! send + recv + send + recv), and a 1,000-connection fan-in (connect 1,000 clients to one
//! listener, accept them, echo one message on each, close everything).
//!
//! `cargo bench -p llsocket-sim --bench echo` (release profile). `BENCH_SMOKE=1` runs tiny sizes
//! and still checks every echoed byte.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use llsocket_api::{Family, Fd, MsgFlags, Protocol, SockAddr, SockType, SocketOps};
use llsocket_posix::Posix;
use llsocket_sim::Sim;

const MSG: usize = 32;

fn tcp(o: &dyn SocketOps) -> Fd {
    o.socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .expect("socket")
}

/// A listener of `srv` bound to `at` (port 0), and the address clients use.
fn listen(srv: &dyn SocketOps, at: &SockAddr, backlog: i32) -> (Fd, SockAddr) {
    let l = tcp(srv);
    srv.bind(l, at).expect("bind");
    srv.listen(l, backlog).expect("listen");
    (l, srv.getsockname(l).expect("getsockname"))
}

/// Receives exactly `buf.len()` bytes.
fn recv_all(o: &dyn SocketOps, fd: Fd, buf: &mut [u8]) {
    let mut got = 0;
    while got < buf.len() {
        let n = o.recv(fd, &mut buf[got..], MsgFlags::NONE).expect("recv");
        assert!(n > 0, "unexpected EOF");
        got += n;
    }
}

/// Sends all of `buf`.
fn send_all(o: &dyn SocketOps, fd: Fd, buf: &[u8]) {
    let mut sent = 0;
    while sent < buf.len() {
        sent += o.send(fd, &buf[sent..], MsgFlags::NONE).expect("send");
    }
}

/// `rounds` round trips of a 32-byte message on one connection; returns the elapsed time.
fn echo(cli: &dyn SocketOps, srv: &dyn SocketOps, at: &SockAddr, rounds: usize) -> Duration {
    let (l, addr) = listen(srv, at, 16);
    let c = tcp(cli);
    cli.connect(c, &addr).expect("connect");
    let s = srv.accept(l, false).expect("accept").fd;
    let mut msg = [0u8; MSG];
    let mut buf = [0u8; MSG];
    let mut back = [0u8; MSG];
    let t0 = Instant::now();
    for i in 0..rounds {
        msg[..8].copy_from_slice(&(i as u64).to_le_bytes());
        send_all(cli, c, &msg);
        recv_all(srv, s, &mut buf);
        send_all(srv, s, &buf);
        recv_all(cli, c, &mut back);
        assert_eq!(back, msg, "echo {i} came back wrong");
    }
    let dt = t0.elapsed();
    for (o, fd) in [(cli, c), (srv, s), (srv, l)] {
        o.close(fd).expect("close");
    }
    dt
}

/// `conns` clients connect to one listener, each echoes one message; everything is closed.
fn fan_in(cli: &dyn SocketOps, srv: &dyn SocketOps, at: &SockAddr, conns: usize) -> Duration {
    let t0 = Instant::now();
    let (l, addr) = listen(srv, at, conns as i32 + 16);
    let clients: Vec<Fd> = (0..conns)
        .map(|_| {
            let c = tcp(cli);
            cli.connect(c, &addr).expect("connect");
            c
        })
        .collect();
    let servers: Vec<Fd> = (0..conns)
        .map(|_| srv.accept(l, false).expect("accept").fd)
        .collect();
    for (i, &c) in clients.iter().enumerate() {
        send_all(cli, c, &(i as u32).to_le_bytes());
    }
    let mut buf = [0u8; 4];
    for &s in &servers {
        recv_all(srv, s, &mut buf);
        send_all(srv, s, &buf);
    }
    for (i, &c) in clients.iter().enumerate() {
        recv_all(cli, c, &mut buf);
        assert_eq!(u32::from_le_bytes(buf), i as u32, "fan-in reply {i}");
    }
    for &c in &clients {
        cli.close(c).expect("close");
    }
    for &s in &servers {
        srv.close(s).expect("close");
    }
    srv.close(l).expect("close");
    t0.elapsed()
}

struct Row {
    backend: &'static str,
    workload: String,
    ops: usize,
    time: Duration,
}

impl Row {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.time.as_secs_f64()
    }
}

fn main() {
    let smoke = std::env::var_os("BENCH_SMOKE").is_some_and(|v| v == "1");
    let (rounds, conns, reps) = if smoke {
        (1_000, 50, 1)
    } else {
        (200_000, 1_000, 5)
    };
    let lo = SockAddr::v4(Ipv4Addr::LOCALHOST, 0);
    let mut rows = Vec::new();

    // Simulator: two hosts, a fault-free zero-latency link (the default).
    for (label, keep) in [("sim", true), ("sim (trace off)", false)] {
        let sim = Sim::builder(1).keep_trace(keep).build();
        let (client, server) = (sim.host("client"), sim.host("server"));
        let at = SockAddr::v4(server.ipv4(), 0);
        rows.push(Row {
            backend: label,
            workload: format!("echo {MSG} B, round trips"),
            ops: rounds,
            time: echo(&client, &server, &at, rounds),
        });
        let mut t = Duration::ZERO;
        for _ in 0..reps {
            t += fan_in(&client, &server, &at, conns);
        }
        rows.push(Row {
            backend: label,
            workload: format!("fan-in {conns} conns, connections"),
            ops: conns * reps,
            time: t,
        });
        assert!(
            client.open_fds().is_empty() && server.open_fds().is_empty(),
            "leak"
        );
    }

    // Kernel: the same program over 127.0.0.1.
    rows.push(Row {
        backend: "kernel",
        workload: format!("echo {MSG} B, round trips"),
        ops: rounds,
        time: echo(&Posix, &Posix, &lo, rounds),
    });
    let mut t = Duration::ZERO;
    for _ in 0..reps {
        t += fan_in(&Posix, &Posix, &lo, conns);
    }
    rows.push(Row {
        backend: "kernel",
        workload: format!("fan-in {conns} conns, connections"),
        ops: conns * reps,
        time: t,
    });

    println!(
        "{:<16} {:<32} {:>9} {:>10} {:>12} {:>10}",
        "backend", "workload", "count", "time ms", "per second", "vs kernel"
    );
    for r in &rows {
        let kernel = rows
            .iter()
            .find(|k| k.backend == "kernel" && k.workload == r.workload)
            .map(Row::per_sec)
            .unwrap_or(f64::NAN);
        println!(
            "{:<16} {:<32} {:>9} {:>10.1} {:>12.0} {:>9.1}x",
            r.backend,
            r.workload,
            r.ops,
            r.time.as_secs_f64() * 1e3,
            r.per_sec(),
            r.per_sec() / kernel
        );
    }
    if smoke {
        println!("(BENCH_SMOKE=1: tiny sizes; results were checked, figures are not meaningful)");
    }
}
