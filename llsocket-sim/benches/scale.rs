//! Scale benchmark: worlds of 10, 1 000 and 10 000 hosts holding 1 000, 10 000 and
//! 100 000 concurrent TCP connections, each connection exchanging messages.
//!
//! For every (hosts, connections) pair, in a child process of its own (so its peak memory
//! is its own): build the world (trace off, descriptor limit and `SOMAXCONN` raised), make
//! every host listen on port 80, open the connections (connection `k` from host `k % H` to
//! host `(k + 1 + (k / H) % (H - 1)) % H`, accepted at once) with one echo on each, run
//! 200 000 echo round trips of 32 bytes on connections picked by a seeded generator among
//! 1 000 of them spread over all, 200 000 on the first 1 000 opened (neighbours in
//! memory), then 200 000 more on all connections at random, then close everything and
//! check that no socket is left.
//!
//! Reported: connections opened per second; round trips per second and nanoseconds per
//! round trip on the 1 000 active connections (the others open and idle: how the cost of
//! an operation grows with the world); the same on the first 1 000 opened (the same
//! work on memory that stays in the caches: what is left is the algorithms'
//! growth); nanoseconds per round trip on all connections at
//! random (each touches a cold connection: bounded by memory latency, not by the
//! simulator's algorithms); simulator events per second; peak resident memory (`VmHWM`);
//! resident bytes per idle connection (growth of `VmRSS` while opening them, divided by
//! their number).
//!
//! Then churn, for each number of hosts (a process each): 400 000 times a connection
//! between two random hosts opens, echoes once and closes (the client first: its port
//! stays in `TIME_WAIT` 60 s), 10 s of virtual time every 1 000; reported: microseconds
//! per cycle and the bytes the world keeps per closed connection (`VmRSS` growth over
//! the second half, once 60 s of `TIME_WAIT` are in).
//!
//! `cargo bench -p llsocket-sim --bench scale` (release profile); `BENCH_SMOKE=1` runs
//! small sizes. `-- --one H C` runs one pair in this process, `-- --churn H N` one churn.

use std::process::Command;
use std::time::{Duration, Instant};

use llsocket_api::{Family, Fd, MsgFlags, Protocol, SockAddr, SockType, SocketOps};
use llsocket_sim::{Host, Sim};

const MSG: usize = 32;

/// Connections in use at once in the first round-trip phase.
const ACTIVE: usize = 1_000;

/// A value of `/proc/self/status` in kB (`VmRSS`, `VmHWM`), if the system has one.
fn status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// xorshift64*: the benchmark's own seeded choice of connections.
struct Pick(u64);

impl Pick {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn recv_exact(h: &Host, fd: Fd, buf: &mut [u8]) {
    let mut got = 0;
    while got < buf.len() {
        let n = h.recv(fd, &mut buf[got..], MsgFlags::NONE).expect("recv");
        assert!(n > 0, "unexpected end of stream");
        got += n;
    }
}

/// One echo round trip on the connection `c` (client side on `ch`, server side `s` on `sh`).
fn round_trip(ch: &Host, c: Fd, sh: &Host, s: Fd, msg: &[u8; MSG]) {
    let mut buf = [0u8; MSG];
    assert_eq!(ch.send(c, msg, MsgFlags::NONE).expect("send"), MSG);
    recv_exact(sh, s, &mut buf);
    assert_eq!(sh.send(s, &buf, MsgFlags::NONE).expect("echo"), MSG);
    recv_exact(ch, c, &mut buf);
    assert_eq!(&buf, msg, "the echo differs");
}

/// A listener on port 80 of every host (with `backlog`).
fn listen_all(hs: &[Host], backlog: i32) -> Vec<Fd> {
    hs.iter()
        .map(|h| {
            let l = h
                .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
                .expect("socket");
            h.bind(l, &SockAddr::v4(h.ipv4(), 80)).expect("bind");
            h.listen(l, backlog).expect("listen");
            l
        })
        .collect()
}

/// Connection number `k` from `ch` to the listener `l` of `sh`, accepted, with one echo:
/// (the client's descriptor, the server's).
fn open_echo(ch: &Host, sh: &Host, l: Fd, k: usize, msg: &mut [u8; MSG]) -> (Fd, Fd) {
    let c = ch
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .expect("socket");
    ch.connect(c, &SockAddr::v4(sh.ipv4(), 80))
        .expect("connect");
    let s = sh.accept(l, false).expect("accept").fd;
    msg[..8].copy_from_slice(&(k as u64).to_le_bytes());
    round_trip(ch, c, sh, s, msg);
    (c, s)
}

/// Runs one (hosts, connections) pair and prints its row.
fn one(hosts: usize, conns: usize, rounds: usize) {
    let sim = Sim::builder(1)
        .keep_trace(false)
        .fd_limit(1 << 20)
        .somaxconn(1 << 16)
        .build();
    let t0 = Instant::now();
    let hs: Vec<Host> = (0..hosts).map(|i| sim.host(&format!("h{i}"))).collect();
    let boot = t0.elapsed();
    let listeners = listen_all(&hs, 1 << 16);
    let rss0 = status_kb("VmRSS");
    let t0 = Instant::now();
    // (client host, client fd, server host, server fd)
    let mut pairs: Vec<(usize, Fd, usize, Fd)> = Vec::with_capacity(conns);
    let mut msg = [0u8; MSG];
    for k in 0..conns {
        let a = k % hosts;
        let b = (a + 1 + (k / hosts) % (hosts - 1)) % hosts;
        let (c, s) = open_echo(&hs[a], &hs[b], listeners[b], k, &mut msg);
        pairs.push((a, c, b, s));
    }
    let open = t0.elapsed();
    let rss1 = status_kb("VmRSS");
    // Round trips on 1 000 connections spread over all of them (the others stay open and
    // idle: what an operation costs as the world grows), then on all of them at random
    // (what touching a cold connection costs: memory-bound).
    let active: Vec<usize> = if conns <= ACTIVE {
        (0..conns).collect()
    } else {
        (0..ACTIVE).map(|i| i * conns / ACTIVE).collect()
    };
    let mut pick = Pick(0x9e37_79b9_7f4a_7c15);
    let mut timed = |set: &dyn Fn(usize) -> usize, n: usize| {
        let events0 = sim.trace_len();
        let t0 = Instant::now();
        for r in 0..rounds {
            let (a, c, b, s) = pairs[set(pick.next(n))];
            msg[..8].copy_from_slice(&(r as u64).to_le_bytes());
            round_trip(&hs[a], c, &hs[b], s, &msg);
        }
        (t0.elapsed(), sim.trace_len() - events0)
    };
    let (run, events) = timed(&|i| active[i], active.len());
    let (first, _) = timed(&|i| i, active.len());
    let (cold, _) = timed(&|i| i, conns);
    let peak = status_kb("VmHWM");
    for &(a, c, b, s) in &pairs {
        hs[a].close(c).expect("close");
        hs[b].close(s).expect("close");
    }
    for (h, l) in hs.iter().zip(&listeners) {
        h.close(*l).expect("close");
    }
    sim.advance(Duration::from_secs(120));
    assert_eq!(sim.live_sockets(), 0, "sockets left behind");
    let per_conn = match (rss0, rss1) {
        (Some(a), Some(b)) => format!("{}", (b.saturating_sub(a) * 1024) / conns as u64),
        _ => "n/a".into(),
    };
    let secs = run.as_secs_f64();
    println!(
        "| {hosts} | {conns} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {} | {per_conn} |",
        conns as f64 / open.as_secs_f64(),
        rounds as f64 / secs,
        secs * 1e9 / rounds as f64,
        first.as_secs_f64() * 1e9 / rounds as f64,
        cold.as_secs_f64() * 1e9 / rounds as f64,
        events as f64 / secs,
        boot.as_secs_f64() * 1e3,
        peak.map_or("n/a".into(), |kb| format!("{:.0}", kb as f64 / 1024.0)),
    );
}

/// Churn on `hosts` hosts (a listener each): `cycles` times a client on one host
/// connects to another, echoes once, and both close, the client first (its port stays
/// in `TIME_WAIT` for 60 s); 10 s of virtual time pass every 1 000 cycles. Prints the
/// cost of a cycle and what the world keeps per closed connection: the growth of
/// `VmRSS` over the second half of the cycles (the first half reaches the steady state:
/// 60 s of `TIME_WAIT`), divided by their number.
fn churn(hosts: usize, cycles: usize) {
    let sim = Sim::builder(1).keep_trace(false).build();
    let hs: Vec<Host> = (0..hosts).map(|i| sim.host(&format!("h{i}"))).collect();
    let listeners = listen_all(&hs, 16);
    let mut pick = Pick(0x2545_f491_4f6c_dd1d);
    let mut msg = [0u8; MSG];
    let (mut rss_half, mut t_half) = (None, Instant::now());
    let t0 = Instant::now();
    for k in 0..cycles {
        if k == cycles / 2 {
            (rss_half, t_half) = (status_kb("VmRSS"), Instant::now());
        }
        let a = pick.next(hosts);
        let b = (a + 1 + pick.next(hosts - 1)) % hosts;
        let (ch, sh) = (&hs[a], &hs[b]);
        let (c, s) = open_echo(ch, sh, listeners[b], k, &mut msg);
        ch.close(c).expect("close");
        sh.close(s).expect("close");
        if k % 1_000 == 999 {
            sim.advance(Duration::from_secs(10));
        }
    }
    let second = t_half.elapsed();
    let kept = match (rss_half, status_kb("VmRSS")) {
        (Some(a), Some(b)) => format!(
            "{:.1}",
            (b.saturating_sub(a) * 1024) as f64 / (cycles - cycles / 2) as f64
        ),
        _ => "n/a".into(),
    };
    sim.advance(Duration::from_secs(61));
    for (h, l) in hs.iter().zip(&listeners) {
        h.close(*l).expect("close");
    }
    assert_eq!(sim.live_sockets(), 0, "sockets left behind");
    println!(
        "| {hosts} | {cycles} | {:.2} | {:.2} | {kept} |",
        t0.elapsed().as_secs_f64() * 1e6 / cycles as f64,
        second.as_secs_f64() * 1e6 / (cycles - cycles / 2) as f64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = std::env::var_os("BENCH_SMOKE").is_some();
    let rounds = if smoke { 2_000 } else { 200_000 };
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let num = |j: usize| -> usize {
            args.get(j)
                .and_then(|s| s.parse().ok())
                .expect("--one HOSTS CONNECTIONS")
        };
        one(num(i + 1), num(i + 2), rounds);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--churn") {
        let num = |j: usize| -> usize {
            args.get(j)
                .and_then(|s| s.parse().ok())
                .expect("--churn HOSTS CYCLES")
        };
        churn(num(i + 1), num(i + 2));
        return;
    }
    let (hosts, conns): (&[usize], &[usize]) = if smoke {
        (&[10, 300], &[1_000, 3_000])
    } else {
        (&[10, 1_000, 10_000], &[1_000, 10_000, 100_000])
    };
    println!(
        "| hosts | connections | opened/s | round trips/s (1 000 active) | ns per round trip (1 000 active) | ns per round trip (the first 1 000 active) | ns per round trip (all active, random) | events/s | boot ms | peak RSS MiB | bytes per idle connection |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let me = std::env::current_exe().expect("the benchmark's own path");
    for &h in hosts {
        for &c in conns {
            // A process per pair: its peak resident memory is its own.
            let status = Command::new(&me)
                .args(["--one", &h.to_string(), &c.to_string()])
                .status()
                .expect("run the benchmark child");
            assert!(status.success(), "hosts {h}, connections {c}: {status}");
        }
    }
    println!();
    println!(
        "| hosts | connect-echo-close cycles | µs per cycle | µs per cycle (second half) | bytes kept per closed connection |"
    );
    println!("|---|---|---|---|---|");
    let cycles = if smoke { 20_000 } else { 400_000 };
    for &h in hosts {
        let status = Command::new(&me)
            .args(["--churn", &h.to_string(), &cycles.to_string()])
            .status()
            .expect("run the benchmark child");
        assert!(status.success(), "churn, hosts {h}: {status}");
    }
}
