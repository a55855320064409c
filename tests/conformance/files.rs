//! Regular files next to sockets: sendfile with offsets, and ENOTSOCK.

use super::{conformance, lo4, recv_exact, recv_vec, tcp_pair, AGAIN};
use llsocket_api::{Errno, Interest, MsgFlags, OptName, Protocol, Shutdown, SockOpt, SockType};

fn content() -> Vec<u8> {
    (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect()
}

conformance!(sendfile_offsets_on_socketpair, |b: &dyn Backend| {
    let o = b.ops();
    let data = content();
    let f = b.file(&data);
    let (x, y) = o
        .socketpair(SockType::STREAM, Protocol::DEFAULT, true)
        .unwrap();
    assert_eq!(o.sendfile(x, f, 10, 20).unwrap(), 20);
    assert_eq!(recv_exact(b, y, 20), &data[10..30]);
    // The file's own position is not used: offset 0 is the start again.
    assert_eq!(o.sendfile(x, f, 0, 5).unwrap(), 5);
    assert_eq!(recv_exact(b, y, 5), &data[..5]);
    // Past the end: a short count, then nothing.
    assert_eq!(o.sendfile(x, f, 9_990, 100).unwrap(), 10);
    assert_eq!(recv_exact(b, y, 10), &data[9_990..]);
    assert_eq!(o.sendfile(x, f, 10_000, 100).unwrap(), 0);
    assert_eq!(o.sendfile(x, f, 20_000, 100).unwrap(), 0);
    assert_eq!(o.sendfile(x, f, 0, 0).unwrap(), 0);
    assert_eq!(recv_vec(b, y, 16, MsgFlags::NONE).unwrap_err(), AGAIN);
    // A negative offset is EINVAL.
    assert_eq!(o.sendfile(x, f, -1, 10).unwrap_err(), Errno::EINVAL);
    // The whole file in one call fits a fresh socket buffer here.
    let mut sent = 0;
    let mut got = Vec::new();
    for _ in 0..1000 {
        if got.len() == data.len() {
            break;
        }
        if sent < data.len() {
            match o.sendfile(x, f, sent as i64, data.len() - sent) {
                Ok(n) => sent += n,
                Err(e) => assert_eq!(e, AGAIN),
            }
        }
        if let Ok(v) = recv_vec(b, y, 65536, MsgFlags::NONE) {
            got.extend(v);
        }
    }
    assert!(
        got == data,
        "sendfile delivered {} of {} bytes",
        got.len(),
        data.len()
    );
});

conformance!(sendfile_over_tcp_and_errors, |b: &dyn Backend| {
    let o = b.ops();
    let data = content();
    let f = b.file(&data);
    let (c, s) = tcp_pair(b, lo4(0), true);
    assert_eq!(o.sendfile(c, f, 100, 1000).unwrap(), 1000);
    assert_eq!(recv_exact(b, s, 1000), &data[100..1100]);
    // The arguments the wrong way round: the "socket" is a file.
    assert!(o.sendfile(f, c, 0, 10).is_err());
    // A shut-down socket: EPIPE, process alive.
    o.shutdown(c, Shutdown::WRITE).unwrap();
    assert_eq!(o.sendfile(c, f, 0, 10).unwrap_err(), Errno::EPIPE);
});

conformance!(file_descriptor_is_not_a_socket, |b: &dyn Backend| {
    let o = b.ops();
    let f = b.file(b"plain file");
    assert_eq!(o.getsockname(f).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(o.getpeername(f).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(o.listen(f, 1).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(o.accept(f, false).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(o.bind(f, &lo4(0)).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(o.connect(f, &lo4(1)).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(o.shutdown(f, Shutdown::BOTH).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(
        o.send(f, b"x", MsgFlags::NONE).unwrap_err(),
        Errno::ENOTSOCK
    );
    assert_eq!(
        recv_vec(b, f, 4, MsgFlags::NONE).unwrap_err(),
        Errno::ENOTSOCK
    );
    assert_eq!(o.getsockopt(f, OptName::Type).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(
        o.setsockopt(f, SockOpt::ReuseAddr(true)).unwrap_err(),
        Errno::ENOTSOCK
    );
    // What works on any descriptor works on a file.
    assert!(o.cloexec(f).unwrap());
    assert!(!o.nonblock(f).unwrap());
    o.set_nonblock(f, true).unwrap();
    assert!(o.nonblock(f).unwrap());
    // A regular file is always ready.
    assert!(o.poll(f, Interest::READ, 0).unwrap());
    let d = o.dup(f).unwrap();
    assert!(o.nonblock(d).unwrap());
    o.close(d).unwrap();
    o.close(f).unwrap();
});
