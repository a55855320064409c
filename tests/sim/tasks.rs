//! Task mode (`Sim::set_task_mode`): a blocking call that would wait parks instead of
//! running the world, and the same call made again after `resume_wait` goes on as if it
//! had waited: a program run this way has the very trace it has without task mode.

use std::time::Duration;

use llsocket_api::opt::{Linger, Timeval};
use llsocket_api::{
    Errno, Fd, Interest, MsgFlags, Protocol, Result, SockAddr, SockOpt, SockType, SocketOps,
};
use llsocket_sim::{Host, HostFaults, Latency, LinkConfig, Sim, TaskStep};

use super::{listener, tcp};

/// Makes the call `op` as the one task of a scheduler would: while it parks, runs the
/// world (one event at a time, never past the park's deadline) until the host of the
/// call changed or the deadline came, then makes it again with the deadline armed.
fn in_task<T>(sim: &Sim, mut op: impl FnMut() -> Result<T>) -> Result<T> {
    if !sim.task_mode() {
        return op();
    }
    let mut r = op();
    while let Some(p) = sim.take_park() {
        let seen = sim.changes(p.host);
        loop {
            let step = sim.task_step(p.deadline);
            let due = p.deadline.is_some_and(|d| sim.now() >= d);
            if sim.changes(p.host) != seen || (due && step != TaskStep::Event) {
                break;
            }
            assert!(
                step != TaskStep::Idle,
                "nothing can end the wait of {p:?}; {}",
                sim.replay_hint()
            );
        }
        sim.resume_wait(p.deadline);
        r = op();
        sim.end_resume();
    }
    r
}

/// A client and a server over a slow, lossy link with host faults: a handshake, echoes of
/// growing messages, receive timeouts and polls. Returns what the program saw.
fn program(sim: &Sim, a: &Host, b: &Host) -> Vec<String> {
    let link = LinkConfig {
        latency: Latency::Uniform(Duration::from_millis(1), Duration::from_millis(20)),
        loss: 0.3,
        duplicate: 0.1,
        reorder: 0.1,
    };
    sim.set_link_both(a, b, link);
    b.set_faults(HostFaults {
        eintr: 0.2,
        short_io: 0.3,
        reset: 0.0,
    });
    a.set_faults(HostFaults {
        eintr: 0.0,
        short_io: 0.3,
        reset: 0.002,
    });
    let l = listener(b, 80, 4);
    let c = tcp(a);
    let mut seen = Vec::new();
    let to = SockAddr::v4(b.ipv4(), 80);
    seen.push(format!("{:?}", in_task(sim, || a.connect(c, &to))));
    let s = loop {
        match in_task(sim, || b.accept(l, false)) {
            Ok(acc) => break acc.fd,
            Err(e) => seen.push(format!("accept {e:?}")),
        }
    };
    let mut buf = vec![0u8; 100_000];
    for i in 0..12 {
        let msg = vec![b'x'; 3000 + i];
        match in_task(sim, || a.send(c, &msg, MsgFlags::NONE)) {
            Ok(n) => {
                let mut got = 0;
                while got < n {
                    match in_task(sim, || b.recv(s, &mut buf, MsgFlags::NONE)) {
                        Ok(k) => got += k,
                        Err(e) => seen.push(format!("recv {e:?}")),
                    }
                }
                seen.push(format!("{got}"));
            }
            Err(e) => {
                seen.push(format!("send {e:?}"));
                break;
            }
        }
        let tv = Timeval {
            sec: 0,
            usec: 50_000,
        };
        b.setsockopt(s, SockOpt::RcvTimeo(tv)).unwrap();
        seen.push(format!(
            "{:?}",
            in_task(sim, || b.recv(s, &mut buf, MsgFlags::NONE))
        ));
        seen.push(format!(
            "{:?}",
            in_task(sim, || b.poll(s, Interest::READ, 30))
        ));
    }
    a.close(c).unwrap();
    for fd in [s, l] {
        b.close(fd).unwrap();
    }
    seen
}

#[test]
fn one_program_in_task_mode_has_the_trace_it_has_without() {
    for seed in 1..=4 {
        let plain = Sim::new(seed);
        let seen = program(&plain, &plain.host("a"), &plain.host("b"));
        let tasked = Sim::new(seed);
        let (a, b) = (tasked.host("a"), tasked.host("b"));
        tasked.set_task_mode(true);
        let seen2 = program(&tasked, &a, &b);
        tasked.set_task_mode(false);
        assert_eq!(seen2, seen, "{}", tasked.replay_hint());
        assert_eq!(tasked.now(), plain.now(), "{}", tasked.replay_hint());
        assert_eq!(tasked.trace(), plain.trace(), "{}", tasked.replay_hint());
        assert_eq!(tasked.trace_digest(), plain.trace_digest());
    }
}

/// An echo on an instant, fault-free link: every `send` and `recv` is the common case a
/// plain call records in `Host::send` / `Host::recv` themselves, and task mode records
/// through the general paths (`traced_send`, `traced_recv`).
fn echo(a: &Host, b: &Host) -> Vec<u8> {
    let l = listener(b, 80, 4);
    let c = tcp(a);
    a.connect(c, &SockAddr::v4(b.ipv4(), 80)).unwrap();
    let s = b.accept(l, false).unwrap().fd;
    let mut back = Vec::new();
    for i in 0..40u8 {
        let flags = if i % 3 == 0 {
            MsgFlags::DONTWAIT
        } else {
            MsgFlags::NONE
        };
        let msg = vec![i; 1 + usize::from(i) * 7];
        assert_eq!(a.send(c, &msg, flags), Ok(msg.len()));
        let mut buf = vec![0u8; msg.len() + 5];
        let n = b.recv(s, &mut buf, flags).unwrap();
        assert_eq!(b.send(s, &buf[..n], flags), Ok(n));
        let n = a.recv(c, &mut buf, MsgFlags::NONE).unwrap();
        back.extend_from_slice(&buf[..n]);
    }
    for (h, fd) in [(a, c), (b, s), (b, l)] {
        h.close(fd).unwrap();
    }
    back
}

#[test]
fn the_common_tcp_send_and_recv_record_what_the_general_paths_record() {
    let plain = Sim::builder(3).trace_payloads(true).build();
    let back = echo(&plain.host("a"), &plain.host("b"));
    let tasked = Sim::builder(3).trace_payloads(true).build();
    let (a, b) = (tasked.host("a"), tasked.host("b"));
    tasked.set_task_mode(true);
    assert_eq!(echo(&a, &b), back);
    tasked.set_task_mode(false);
    let trace = plain.trace();
    assert!(
        trace
            .iter()
            .any(|l| l.contains(" a send fd=3 len=15 -> 15 ")),
        "{trace:#?}"
    );
    assert_eq!(tasked.trace(), plain.trace());
    assert_eq!(tasked.trace_digest(), plain.trace_digest());
}

#[test]
fn a_call_that_would_wait_parks_untraced_with_its_deadline() {
    let sim = Sim::new(7);
    let h = sim.host("h");
    let (x, y) = h
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    h.setsockopt(
        x,
        SockOpt::RcvTimeo(Timeval {
            sec: 0,
            usec: 250_000,
        }),
    )
    .unwrap();
    sim.set_task_mode(true);
    let events = sim.trace_len();
    let mut buf = [0u8; 8];
    assert_eq!(h.recv(x, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
    assert_eq!(sim.trace_len(), events, "a parked call is not traced");
    let p = sim.take_park().expect("parked");
    assert_eq!((p.host, p.op, p.fd), (0, "recv", x));
    assert_eq!(p.deadline, Some(Duration::from_millis(250)));
    assert_eq!(sim.take_park(), None, "taken");
    // a non-blocking call does not park: it fails as usual and counts as "could not go on"
    h.set_nonblock(y, true).unwrap();
    assert_eq!(h.recv(y, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
    assert_eq!(sim.take_park(), None);
    assert_eq!(sim.again_streak(), 1);
    // continued at its deadline with nothing to read: the timeout, at exactly 250 ms
    assert_eq!(
        sim.task_step(p.deadline),
        TaskStep::Advanced,
        "nothing else to run"
    );
    sim.resume_wait(p.deadline);
    assert_eq!(h.recv(x, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
    sim.end_resume();
    assert_eq!(sim.take_park(), None, "timed out, not parked");
    assert_eq!(sim.now(), Duration::from_millis(250));
    assert_eq!(
        sim.again_streak(),
        0,
        "a timeout after a wait is not spinning"
    );
    // (set_nonblock, the non-blocking recv, the timed-out recv: once each)
    assert_eq!(sim.trace_len(), events + 3);
    // data makes the call complete when it is made again
    h.setsockopt(x, SockOpt::RcvTimeo(Timeval::default()))
        .unwrap();
    assert_eq!(h.recv(x, &mut buf, MsgFlags::NONE), Err(Errno::EAGAIN));
    let p = sim.take_park().expect("parked");
    assert_eq!(p.deadline, None);
    let before = sim.changes(0);
    h.send(y, b"hi", MsgFlags::NONE).unwrap();
    assert!(sim.changes(0) > before, "the send changed the host");
    sim.resume_wait(None);
    assert_eq!(h.recv(x, &mut buf, MsgFlags::NONE), Ok(2));
    sim.end_resume();
    assert_eq!(&buf[..2], b"hi");
}

#[test]
fn a_lingering_close_waits_in_close_wait_and_close_itself_never_parks() {
    let sim = Sim::builder(9).sndbuf(16_384).rcvbuf(2048).build();
    let (a, b) = (sim.host("a"), sim.host("b"));
    sim.set_link_both(
        &a,
        &b,
        LinkConfig {
            latency: Latency::Fixed(Duration::from_millis(10)),
            ..Default::default()
        },
    );
    let l = listener(&b, 80, 4);
    let c = tcp(&a);
    a.connect(c, &SockAddr::v4(b.ipv4(), 80)).unwrap();
    let s: Fd = b.accept(l, false).unwrap().fd;
    a.setsockopt(
        c,
        SockOpt::Linger(Linger {
            enabled: true,
            secs: 2,
        }),
    )
    .unwrap();
    a.send(c, &[7u8; 12_000], MsgFlags::DONTWAIT).unwrap();
    sim.set_task_mode(true);
    assert_eq!(a.close_wait(c), Err(Errno::EAGAIN));
    let p = sim.take_park().expect("parked");
    assert_eq!((p.op, p.fd), ("close", c));
    assert_eq!(p.deadline, Some(sim.now() + Duration::from_secs(2)));
    // nobody reads: at the deadline the wait is over, and close goes on without waiting
    while sim.task_step(p.deadline) == TaskStep::Event {}
    sim.resume_wait(p.deadline);
    assert_eq!(a.close_wait(c), Ok(()));
    sim.end_resume();
    assert_eq!(a.close(c), Ok(()));
    assert_eq!(sim.take_park(), None);
    assert_eq!(sim.now(), p.deadline.unwrap());
    sim.set_task_mode(false);
    let _ = (s, l);
}

#[test]
fn may_read_is_true_whenever_a_parked_receive_or_accept_could_complete() {
    // `Sim::may_read` lets a scheduler skip a parked receive that would park again; it
    // must never say no where the call could complete (hosts by index: a = 0, b = 1).
    let sim = Sim::new(12);
    let (a, b) = (sim.host("a"), sim.host("b"));
    let l = listener(&b, 80, 4);
    assert!(!sim.may_read(1, l), "no pending connection");
    let c = tcp(&a);
    a.connect(c, &SockAddr::v4(b.ipv4(), 80)).unwrap();
    assert!(sim.may_read(1, l), "a pending connection");
    let s = b.accept(l, false).unwrap().fd;
    assert!(!sim.may_read(1, l) && !sim.may_read(1, s) && !sim.may_read(0, c));
    // one byte under a high SO_RCVLOWAT: a recv of one byte completes, so yes
    b.setsockopt(s, SockOpt::RcvLowat(100)).unwrap();
    a.send(c, b"x", MsgFlags::NONE).unwrap();
    assert!(sim.may_read(1, s));
    let mut buf = [0u8; 1];
    assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE), Ok(1));
    assert!(!sim.may_read(1, s));
    // end of stream, then a descriptor that is gone
    a.shutdown(c, llsocket_api::Shutdown::WRITE).unwrap();
    assert!(sim.may_read(1, s));
    b.close(s).unwrap();
    assert!(
        sim.may_read(1, s),
        "a closed descriptor: the call reports EBADF"
    );
    assert!(sim.may_read(7, Fd(3)), "no such host");
    // a reset
    let c2 = tcp(&a);
    a.connect(c2, &SockAddr::v4(b.ipv4(), 80)).unwrap();
    let s2 = b.accept(l, false).unwrap().fd;
    assert!(!sim.may_read(1, s2));
    a.setsockopt(
        c2,
        SockOpt::Linger(Linger {
            enabled: true,
            secs: 0,
        }),
    )
    .unwrap();
    a.close(c2).unwrap();
    assert!(sim.may_read(1, s2));
    // datagrams: anything queued, an empty one too
    let (u, v) = (super::udp(&a), super::udp(&b));
    b.bind(v, &SockAddr::v4(b.ipv4(), 53)).unwrap();
    assert!(!sim.may_read(1, v));
    a.sendto(u, b"", &SockAddr::v4(b.ipv4(), 53), MsgFlags::NONE)
        .unwrap();
    assert!(sim.may_read(1, v));
    // and it records nothing
    let before = (sim.trace_len(), sim.changes(0), sim.changes(1));
    for fd in 0..8 {
        sim.may_read(0, Fd(fd));
        sim.may_read(1, Fd(fd));
    }
    assert_eq!(before, (sim.trace_len(), sim.changes(0), sim.changes(1)));
}
