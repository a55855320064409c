//! Error paths: closed descriptors, refused connections, busy addresses, non-sockets.

use std::net::Ipv4Addr;

use llsocket_api::{Errno, Family, Fd, MsgFlags, OptName, Protocol, SockAddr, SockType, SocketOps};
use llsocket_posix::Posix;

use super::{listener, Guard};

#[test]
fn closed_descriptors_are_ebadf() {
    let p = Posix;
    let mut buf = [0u8; 4];
    assert_eq!(
        p.recv(Fd::CLOSED, &mut buf, MsgFlags::NONE).unwrap_err(),
        Errno::EBADF
    );
    assert_eq!(p.close(Fd::CLOSED).unwrap_err(), Errno::EBADF);
    assert_eq!(
        p.poll(Fd::CLOSED, Default::default(), 0).unwrap_err(),
        Errno::EBADF
    );
    let s = p
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    // A high number, so no concurrently running test reuses it after the close.
    // SAFETY: F_DUPFD_CLOEXEC takes an int argument.
    let fd = Fd(unsafe { libc::fcntl(s.0, libc::F_DUPFD_CLOEXEC, 900) });
    assert!(fd.0 >= 900);
    p.close(s).unwrap();
    p.close(fd).unwrap();
    assert_eq!(p.getsockopt(fd, OptName::Type).unwrap_err(), Errno::EBADF);
    assert_eq!(p.send(fd, b"x", MsgFlags::NONE).unwrap_err(), Errno::EBADF);
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    let p = Posix;
    let (l, bound) = listener(SockAddr::v4(Ipv4Addr::LOCALHOST, 0));
    p.close(l).unwrap();
    let c = p
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![c]);
    assert_eq!(p.connect(c, &bound).unwrap_err(), Errno::ECONNREFUSED);
}

#[test]
fn binding_a_busy_address_is_eaddrinuse() {
    let p = Posix;
    let (l, bound) = listener(SockAddr::v4(Ipv4Addr::LOCALHOST, 0));
    let s = p
        .socket(Family::INET, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![l, s]);
    assert_eq!(p.bind(s, &bound).unwrap_err(), Errno::EADDRINUSE);
}

#[test]
fn a_pipe_is_not_a_socket() {
    let p = Posix;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let _g = Guard(vec![Fd(fds[0]), Fd(fds[1])]);
    assert_eq!(p.getsockname(Fd(fds[0])).unwrap_err(), Errno::ENOTSOCK);
    assert_eq!(p.listen(Fd(fds[0]), 1).unwrap_err(), Errno::ENOTSOCK);
}
