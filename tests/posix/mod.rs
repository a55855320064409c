//! Tests of the `posix` topic (see main.rs): the POSIX backend against the real kernel.

mod addr;
mod data;
mod errors;
mod mcast;
mod netdb;
mod opts;
mod stream;

use llsocket_api::{Fd, SockAddr, SocketOps};
use llsocket_posix::Posix;

/// Closes its descriptors on drop, so a failing assertion leaks nothing.
struct Guard(Vec<Fd>);

impl Drop for Guard {
    fn drop(&mut self) {
        for fd in &self.0 {
            let _ = Posix.close(*fd);
        }
    }
}

/// A listening TCP socket on `addr` (port 0) and its bound address.
fn listener(addr: SockAddr) -> (Fd, SockAddr) {
    let p = Posix;
    let fd = p
        .socket(
            addr.family(),
            llsocket_api::SockType::STREAM,
            Default::default(),
            false,
        )
        .unwrap();
    p.bind(fd, &addr).unwrap();
    p.listen(fd, 8).unwrap();
    let bound = p.getsockname(fd).unwrap();
    (fd, bound)
}
