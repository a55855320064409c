//! Unix-domain addresses through the kernel: paths, abstract names, unnamed sockets.

use llsocket_api::{Errno, Family, Protocol, SockAddr, SockType, SocketOps, UnixAddr};
use llsocket_posix::Posix;

use super::Guard;

#[test]
fn unix_path_bind_and_unnamed_peer() {
    let p = Posix;
    let dir = std::env::temp_dir();
    let path = dir.join(format!("llsocket-posix-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let addr = SockAddr::unix_path(path.as_os_str().as_encoded_bytes());
    let s = p
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let c = p
        .socket(Family::UNIX, SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![s, c]);
    p.bind(s, &addr).unwrap();
    p.listen(s, 1).unwrap();
    assert_eq!(p.getsockname(s).unwrap(), addr);
    assert_eq!(p.getsockname(c).unwrap(), SockAddr::Unix(UnixAddr::Unnamed));
    p.connect(c, &addr).unwrap();
    let acc = p.accept(s, true).unwrap();
    let _g2 = Guard(vec![acc.fd]);
    assert_eq!(acc.addr, Some(SockAddr::Unix(UnixAddr::Unnamed)));
    assert_eq!(p.getpeername(c).unwrap(), addr);
    std::fs::remove_file(&path).unwrap();
    let too_long = SockAddr::unix_path(vec![b'a'; p.platform().unix_path_max]);
    assert_eq!(p.bind(c, &too_long).unwrap_err(), Errno::EINVAL);
}

#[test]
fn abstract_names_keep_their_bytes() {
    let p = Posix;
    if p.platform().os != "linux" {
        return; // abstract names are a Linux feature
    }
    let name = format!("llsocket-posix-{}\0tail", std::process::id()).into_bytes();
    let addr = SockAddr::unix_abstract(name);
    let s = p
        .socket(Family::UNIX, SockType::DGRAM, Protocol::DEFAULT, false)
        .unwrap();
    let _g = Guard(vec![s]);
    p.bind(s, &addr).unwrap();
    assert_eq!(p.getsockname(s).unwrap(), addr);
}
