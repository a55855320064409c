//! Tests of the `posix` topic (see main.rs): the POSIX backend against the real kernel.

mod addr;
mod data;
mod errors;
mod mcast;
mod netdb;
mod opts;
mod stream;

use llsocket_api::cmsg::{self, Cmsg};
use llsocket_api::{Fd, MsgFlags, Protocol, RecvMsgOut, SockAddr, SockType, SocketOps};
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

/// A blocking unix socketpair of `ty`.
fn pair(ty: SockType) -> (Fd, Fd) {
    Posix.socketpair(ty, Protocol::DEFAULT, false).unwrap()
}

/// Sends `data` over `a` with `fds` in one `SCM_RIGHTS` message.
fn send_fds(a: Fd, data: &[u8], fds: &[Fd]) {
    let control = cmsg::encode(&[Cmsg::rights(fds)]);
    assert_eq!(
        Posix
            .sendmsg(a, &[data], &control, None, MsgFlags::NONE)
            .unwrap(),
        data.len()
    );
}

/// Receives one message on `b` into 8 bytes of data and `control_cap` bytes of control
/// buffer: what recvmsg reported, the data, and every descriptor that arrived.
fn recv_fds(b: Fd, control_cap: usize, flags: MsgFlags) -> (RecvMsgOut, Vec<u8>, Vec<Fd>) {
    let mut data = [0u8; 8];
    let mut cbuf = vec![0u8; control_cap];
    let out = Posix
        .recvmsg(b, &mut [&mut data[..]], &mut cbuf, flags)
        .unwrap();
    let fds = cmsg::decode(&cbuf[..out.control_len])
        .iter()
        .flat_map(|m| m.fds().unwrap_or_default())
        .collect();
    let n = out.bytes.min(data.len());
    (out, data[..n].to_vec(), fds)
}
