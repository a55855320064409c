//! Stream details: non-blocking connect, full send buffers, each shutdown direction,
//! out-of-band data, several descriptors in one SCM_RIGHTS, sendfile offsets, EINVAL cases.

use std::io::Write;
use std::net::Ipv4Addr;

use llsocket_api::cmsg;
use llsocket_api::{
    Errno, Family, Fd, Interest, MsgFlags, OptName, Protocol, Shutdown, SockAddr, SockOpt,
    SockType, SocketOps,
};
use llsocket_posix::Posix;

use super::{listener, pair, recv_fds, send_fds, Guard};

fn tcp(nonblock: bool) -> Fd {
    Posix
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, nonblock)
        .unwrap()
}

/// A connected TCP pair over 127.0.0.1: (client, accepted server side).
fn tcp_pair() -> (Fd, Fd) {
    let p = Posix;
    let (l, bound) = listener(SockAddr::v4(Ipv4Addr::LOCALHOST, 0));
    let c = tcp(false);
    p.connect(c, &bound).unwrap();
    let s = p.accept(l, false).unwrap().fd;
    p.close(l).unwrap();
    (c, s)
}

#[test]
fn nonblocking_connect_completes_and_so_error_is_zero() {
    let p = Posix;
    let (l, bound) = listener(SockAddr::v4(Ipv4Addr::LOCALHOST, 0));
    let c = tcp(true);
    let _g = Guard(vec![l, c]);
    match p.connect(c, &bound) {
        Ok(()) => {}
        Err(e) => assert_eq!(e, Errno::EINPROGRESS),
    }
    assert!(p.poll(c, Interest::WRITE, 2000).unwrap());
    assert_eq!(p.getsockopt(c, OptName::Error).unwrap(), SockOpt::Error(0));
    assert_eq!(p.getpeername(c).unwrap(), bound);
}

#[test]
fn nonblocking_connect_to_a_closed_port_reports_econnrefused() {
    let p = Posix;
    let (l, bound) = listener(SockAddr::v4(Ipv4Addr::LOCALHOST, 0));
    p.close(l).unwrap();
    let c = tcp(true);
    let _g = Guard(vec![c]);
    match p.connect(c, &bound) {
        // Linux reports the refusal of a loopback connect at once or through SO_ERROR.
        Err(Errno::ECONNREFUSED) => {}
        Err(Errno::EINPROGRESS) => {
            assert!(p.poll(c, Interest::WRITE, 2000).unwrap());
            assert_eq!(
                p.getsockopt(c, OptName::Error).unwrap(),
                SockOpt::Error(Errno::ECONNREFUSED.0)
            );
            // SO_ERROR is cleared by reading it.
            assert_eq!(p.getsockopt(c, OptName::Error).unwrap(), SockOpt::Error(0));
        }
        other => panic!("connect: {other:?}"),
    }
}

#[test]
fn full_send_buffer_gives_partial_writes_then_eagain() {
    let p = Posix;
    let (a, b) = p
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    let _g = Guard(vec![a, b]);
    p.setsockopt(a, SockOpt::SndBuf(4096)).unwrap();
    let chunk = vec![7u8; 100_000];
    let mut sent = 0usize;
    let mut saw_eagain = false;
    for _ in 0..1000 {
        match p.send(a, &chunk, MsgFlags::NONE) {
            Ok(n) => {
                assert!(n > 0 && n < chunk.len(), "a 4 KiB buffer took {n} bytes");
                sent += n;
            }
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                saw_eagain = true;
                break;
            }
        }
    }
    assert!(saw_eagain && sent > 0);
    assert!(!p.poll(a, Interest::WRITE, 0).unwrap());
    // Everything accepted arrives, intact.
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    for _ in 0..10_000 {
        match p.recv(b, &mut buf, MsgFlags::NONE) {
            Ok(n) => {
                assert!(buf[..n].iter().all(|&x| x == 7));
                got += n;
            }
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN);
                break;
            }
        }
    }
    assert_eq!(got, sent);
}

#[test]
fn shutdown_read_and_both() {
    let p = Posix;
    let (c, s) = tcp_pair();
    let _g = Guard(vec![c, s]);
    let mut buf = [0u8; 8];
    // SHUT_RD: reads see end of stream; writing still works.
    p.shutdown(s, Shutdown::READ).unwrap();
    assert_eq!(p.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 0);
    assert_eq!(p.send(s, b"still", MsgFlags::NONE).unwrap(), 5);
    assert_eq!(p.recv(c, &mut buf, MsgFlags::NONE).unwrap(), 5);
    // SHUT_RDWR: end of stream for the peer, EPIPE (no signal) for us.
    p.shutdown(c, Shutdown::BOTH).unwrap();
    assert_eq!(p.recv(s, &mut buf, MsgFlags::NONE).unwrap(), 0);
    assert_eq!(p.recv(c, &mut buf, MsgFlags::NONE).unwrap(), 0);
    assert_eq!(p.send(c, b"x", MsgFlags::NONE).unwrap_err(), Errno::EPIPE);
    // An invalid direction is EINVAL.
    assert_eq!(p.shutdown(c, Shutdown(99)).unwrap_err(), Errno::EINVAL);
}

#[test]
fn out_of_band_byte_and_atmark() {
    let p = Posix;
    let (c, s) = tcp_pair();
    let _g = Guard(vec![c, s]);
    assert!(!p.atmark(s).unwrap());
    assert_eq!(p.send(c, b"ab", MsgFlags::NONE).unwrap(), 2);
    assert_eq!(p.send(c, b"!", MsgFlags::OOB).unwrap(), 1);
    // The urgent byte makes the socket exceptional.
    assert!(p
        .poll(s, Interest::default().with_except(true), 2000)
        .unwrap());
    let mut buf = [0u8; 8];
    // A read stops at the mark.
    let n = p.recv(s, &mut buf, MsgFlags::NONE).unwrap();
    assert_eq!(&buf[..n], b"ab");
    assert!(p.atmark(s).unwrap());
    let n = p.recv(s, &mut buf, MsgFlags::OOB).unwrap();
    assert_eq!(&buf[..n], b"!");
    // With the urgent byte taken there is nothing left in line.
    assert_eq!(
        p.recv(s, &mut buf, MsgFlags::DONTWAIT).unwrap_err(),
        Errno::EAGAIN
    );
}

#[test]
fn scm_rights_passes_several_descriptors() {
    let p = Posix;
    let (a, b) = pair(SockType::DGRAM);
    let mut g = Guard(vec![a, b]);
    let mut pairs = Vec::new();
    for _ in 0..3 {
        let (x, y) = pair(SockType::STREAM);
        g.0.extend([x, y]);
        pairs.push((x, y));
    }
    let sent: Vec<Fd> = pairs.iter().map(|pair| pair.0).collect();
    send_fds(a, b"3", &sent);
    let (out, _, got) = recv_fds(b, cmsg::cmsg_space(3 * 4), MsgFlags::NONE);
    assert!(!out.flags.contains(MsgFlags::CTRUNC));
    assert_eq!(got.len(), 3);
    g.0.extend(got.iter().copied());
    // Each received descriptor is the matching socket: what it sends reaches the partner.
    for (i, (fd, (_, y))) in got.iter().zip(&pairs).enumerate() {
        let msg = [b'0' + i as u8];
        assert_eq!(p.send(*fd, &msg, MsgFlags::NONE).unwrap(), 1);
        let mut buf = [0u8; 4];
        assert_eq!(p.recv(*y, &mut buf, MsgFlags::NONE).unwrap(), 1);
        assert_eq!(buf[0], msg[0]);
        // Without MSG_CMSG_CLOEXEC the received descriptors are not close-on-exec.
        assert!(!p.cloexec(*fd).unwrap());
    }
}

#[test]
fn scm_rights_with_a_short_control_buffer_is_ctrunc() {
    let (a, b) = pair(SockType::STREAM);
    let (x, y) = pair(SockType::STREAM);
    let mut g = Guard(vec![a, b, x, y]);
    send_fds(a, b"t", &[x, y]);
    // Room for the header and one descriptor only (two were sent).
    let (out, _, got) = recv_fds(b, cmsg::cmsg_len(4), MsgFlags::NONE);
    assert_eq!(out.bytes, 1);
    assert!(out.flags.contains(MsgFlags::CTRUNC));
    // Whatever did fit decodes without reading past the buffer; close what arrived.
    g.0.extend(got);
}

#[test]
fn sendfile_from_an_offset_larger_than_the_socket_buffer() {
    let p = Posix;
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let path = std::env::temp_dir().join(format!(
        "llsocket-posix-sendfile-off-{}",
        std::process::id()
    ));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&content)
        .unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let ffd = Fd(std::os::fd::AsRawFd::as_raw_fd(&file));
    let (a, b) = p
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    let _g = Guard(vec![a, b]);
    p.setsockopt(a, SockOpt::SndBuf(8192)).unwrap();
    let (start, len) = (1234usize, 250_000usize);
    let mut sent = 0usize;
    let mut partial = false;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..20_000 {
        if got.len() == len {
            break;
        }
        if sent < len {
            match p.sendfile(a, ffd, (start + sent) as i64, len - sent) {
                Ok(n) => {
                    partial |= n < len - sent;
                    sent += n;
                }
                Err(e) => assert_eq!(e, Errno::EAGAIN),
            }
        }
        match p.recv(b, &mut buf, MsgFlags::NONE) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => assert_eq!(e, Errno::EAGAIN),
        }
    }
    assert!(
        partial,
        "a 250 kB sendfile fit an 8 KiB socket buffer at once"
    );
    assert_eq!(got.len(), len);
    assert!(got == content[start..start + len]);
    // The file's own position is untouched.
    // SAFETY: lseek on a descriptor we own.
    assert_eq!(unsafe { libc::lseek(ffd.0, 0, libc::SEEK_CUR) }, 0);
    // Past the end there is nothing to send.
    assert_eq!(p.sendfile(a, ffd, content.len() as i64, 10).unwrap(), 0);
}

#[test]
fn einval_cases() {
    let p = Posix;
    let (l, bound) = listener(SockAddr::v4(Ipv4Addr::LOCALHOST, 0));
    let s = tcp(false);
    let _g = Guard(vec![l, s]);
    // Binding a bound socket again.
    assert_eq!(
        p.bind(l, &SockAddr::v4(Ipv4Addr::LOCALHOST, 0))
            .unwrap_err(),
        Errno::EINVAL
    );
    // Accepting on a socket that is not listening.
    assert_eq!(p.accept(s, true).unwrap_err(), Errno::EINVAL);
    // A negative timeout value.
    assert_eq!(
        p.setsockopt(
            s,
            SockOpt::RcvTimeo(llsocket_api::Timeval {
                sec: 0,
                usec: 2_000_000
            })
        )
        .unwrap_err(),
        Errno::EDOM
    );
    // Listening twice on different backlogs is fine; connecting a listener is not.
    p.listen(l, 4).unwrap();
    assert_eq!(p.connect(l, &bound).unwrap_err(), Errno::EISCONN);
    // An address of the wrong family.
    assert_eq!(
        p.connect(s, &SockAddr::unix_path("/nonexistent-llsocket"))
            .unwrap_err(),
        Errno::EAFNOSUPPORT
    );
}

#[test]
fn msg_cmsg_cloexec_makes_received_descriptors_close_on_exec() {
    let (a, b) = pair(SockType::STREAM);
    let (x, y) = pair(SockType::STREAM);
    let mut g = Guard(vec![a, b, x, y]);
    send_fds(a, b"c", &[x]);
    let (_, _, got) = recv_fds(b, cmsg::cmsg_space(4), MsgFlags(libc::MSG_CMSG_CLOEXEC));
    g.0.extend(got.iter().copied());
    assert!(Posix.cloexec(got[0]).unwrap());
}
