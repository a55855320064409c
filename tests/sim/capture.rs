//! The packet capture: `Sim::write_pcap` files that `tcpdump -r` reads, showing
//! the TCP segments, UDP datagrams and unix-domain messages of a run with
//! virtual-clock timestamps and correct checksums.

use std::process::Command;
use std::time::Duration;

use llsocket_api::{Family, MsgFlags, Protocol, SockAddr, SockType, SocketOps};
use llsocket_sim::{Latency, LinkConfig, Sim};

/// A run with TCP over IPv4 (5 ms each way), UDP, TCP over IPv6 and a unix pair.
fn scenario(capture: bool) -> Sim {
    let sim = Sim::builder(11).capture(capture).build();
    let (a, b) = (sim.host("a"), sim.host("b"));
    let slow = LinkConfig {
        latency: Latency::Fixed(Duration::from_millis(5)),
        ..LinkConfig::default()
    };
    sim.set_link_both(&a, &b, slow);
    let stream = |fam| {
        let l = b
            .socket(fam, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        let (addr, to) = if fam == Family::INET {
            (SockAddr::v4(b.ipv4(), 8080), SockAddr::v4(b.ipv4(), 8080))
        } else {
            (SockAddr::v6(b.ipv6(), 8080), SockAddr::v6(b.ipv6(), 8080))
        };
        b.bind(l, &addr).unwrap();
        b.listen(l, 4).unwrap();
        let c = a
            .socket(fam, SockType::STREAM, Protocol::DEFAULT, false)
            .unwrap();
        a.connect(c, &to).unwrap();
        let s = b.accept(l, false).unwrap().fd;
        a.send(c, b"hello", MsgFlags::NONE).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 5);
        a.close(c).unwrap();
        assert_eq!(b.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 0);
        b.close(s).unwrap();
        b.close(l).unwrap();
    };
    stream(Family::INET);
    let u = b
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    b.bind(u, &SockAddr::v4(b.ipv4(), 53)).unwrap();
    let c = a
        .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    a.sendto(c, b"query", &SockAddr::v4(b.ipv4(), 53), MsgFlags::NONE)
        .unwrap();
    sim.advance(Duration::from_millis(10));
    stream(Family::INET6);
    let (x, y) = a
        .socketpair(SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    a.send(x, b"over unix", MsgFlags::NONE).unwrap();
    for fd in [x, y, c] {
        a.close(fd).unwrap();
    }
    b.close(u).unwrap();
    sim
}

/// The pcap bytes of a run.
fn pcap(sim: &Sim) -> Vec<u8> {
    let mut out = Vec::new();
    sim.write_pcap(&mut out).unwrap();
    out
}

#[test]
fn capture_holds_every_packet_and_changes_nothing() {
    let sim = scenario(true);
    let plain = scenario(false);
    assert_eq!(
        sim.trace_digest(),
        plain.trace_digest(),
        "{}",
        sim.replay_hint()
    );
    assert_eq!(plain.captured(), 0);
    assert_eq!(pcap(&plain).len(), 24, "a header and no records");
    // Per TCP connection: SYN, SYN-ACK, data, FIN (client), FIN (server) = 5; UDP 1; unix 1.
    assert_eq!(sim.captured(), 5 + 1 + 5 + 1, "{}", sim.replay_hint());
    let bytes = pcap(&sim);
    assert_eq!(
        &bytes[..4],
        &0xa1b2_3c4du32.to_le_bytes(),
        "nanosecond pcap magic"
    );
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        101,
        "LINKTYPE_RAW"
    );
    // Walk the records: lengths add up, each is an IP packet whose length field agrees.
    let (mut at, mut n, mut last) = (24, 0, 0u64);
    while at < bytes.len() {
        let word = |i: usize| u32::from_le_bytes(bytes[at + i..at + i + 4].try_into().unwrap());
        let t = u64::from(word(0)) * 1_000_000_000 + u64::from(word(4));
        let (incl, orig) = (word(8) as usize, word(12) as usize);
        assert_eq!(incl, orig);
        assert!(t >= last, "timestamps never go back");
        last = t;
        let ip = &bytes[at + 16..at + 16 + incl];
        let len = match ip[0] >> 4 {
            4 => usize::from(u16::from_be_bytes([ip[2], ip[3]])),
            6 => 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]])),
            v => panic!("IP version {v}"),
        };
        assert_eq!(len, incl);
        at += 16 + incl;
        n += 1;
    }
    assert_eq!(n, sim.captured());
    assert!(
        last >= 20_000_000,
        "the virtual clock dates the packets: {last}"
    );
}

#[test]
fn tcpdump_reads_the_capture() {
    let sim = scenario(true);
    let path =
        std::env::temp_dir().join(format!("llsocket-sim-capture-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap(&sim)).unwrap();
    let out = Command::new("tcpdump")
        .args(["-r"])
        .arg(&path)
        .args(["-nn", "-tt", "-vv"])
        .output();
    std::fs::remove_file(&path).unwrap();
    let out = out.expect("tcpdump runs (installed by .ci/run; `apt-get install tcpdump`)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    let has = |pat: &[&str]| {
        assert!(
            text.lines().any(|l| pat.iter().all(|p| l.contains(p))),
            "no line with {pat:?} in:\n{text}"
        )
    };
    assert!(
        !text.contains("incorrect") && !text.contains("bad "),
        "checksums:\n{text}"
    );
    assert!(lines[0].starts_with("0.000000 IP "), "{text}");
    has(&["> 10.0.0.2.8080: Flags [S]"]);
    has(&["10.0.0.2.8080 > 10.0.0.1.", "Flags [S.]"]);
    has(&["> 10.0.0.2.8080: Flags [P.]", "length 5"]);
    has(&["> 10.0.0.2.8080: Flags [F.]", "seq 6, ack 1,"]);
    has(&["10.0.0.2.8080 > 10.0.0.1.", "Flags [F.]", "seq 1, ack 7,"]);
    has(&["> 10.0.0.2.53: ", "[udp sum ok]"]);
    has(&["IP6 ", "> fd00::2.8080: Flags [S]"]);
    has(&["fd75:6e69:7800::", ".1 > fd75:6e69:7800::", "length 9"]);
    // The SYN leaves at 0; the SYN-ACK 5 ms later (the link's latency).
    let i = text.lines().position(|l| l.contains("Flags [S.]")).unwrap();
    let head = text
        .lines()
        .take(i + 1)
        .filter(|l| !l.starts_with(' '))
        .last()
        .unwrap();
    assert!(head.starts_with("0.005000 IP "), "{head}\n{text}");
}
