//! Tests of the `conformance` topic (see main.rs): one body per behaviour, run on the
//! POSIX backend (the real kernel) and on the simulator.
//!
//! [`conformance!`] turns `conformance!(name, |b: &dyn Backend| { ... })` into
//! `mod name { #[test] fn posix() {..} #[test] fn sim() {..} }`. The body talks
//! to a [`Backend`]: the operations (`b.ops()`, a tracking wrapper that closes
//! every descriptor the body left open), a regular file with given contents
//! (for `sendfile`), unique unix paths (removed afterwards) and a way to park a
//! descriptor where no concurrently running test will reuse its number.
//!
//! Bodies are single-threaded and rely on loopback being synchronous, as it is
//! on Linux: after `send` returns, the peer's receive queue holds the data, and
//! a connect to a listening socket completes without `accept`. On the simulator
//! every body runs on one host (`Sim::new(seed).host("a")`) over its loopback,
//! twice (`llsocket_sim::check_determinism`: the traces must match event by event);
//! a failing sim variant prints the replay hint (`LLSOCKET_SIM_SEED=<seed>`).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use llsocket_api::cmsg;
use llsocket_api::{
    Accepted, AddrInfo, AddrInfoHints, Errno, Family, Fd, GaiError, Interest, Interface, McastOp,
    McastRequest, MsgFlags, NameInfo, OptName, Platform, Protocol, RecvMsgOut, Result, Shutdown,
    SockAddr, SockOpt, SockType, SocketOps,
};

mod errors;
mod files;
mod misc;
mod msg;
mod netdb;
mod opts;
mod pairs;
mod quirks;
mod tcp;
mod udp;
mod unix;

/// What a conformance body works with.
pub trait Backend {
    /// The operations. Every descriptor they hand out is closed after the body.
    fn ops(&self) -> &dyn SocketOps;
    /// A regular file holding `data`, opened read-only (closed after the body).
    fn file(&self, data: &[u8]) -> Fd;
    /// A unique unix path address (posix: under the temp dir, removed after the body).
    fn unix_path(&self, tag: &str) -> SockAddr;
    /// A unique abstract unix address.
    fn unix_abstract(&self, tag: &str) -> SockAddr;
    /// Moves `fd` to a number no other test of this process will be handed while
    /// this body runs (posix: a unique high number; sim: the same number, the
    /// simulated host is private to the body). Use it before closing a descriptor
    /// whose number is used afterwards.
    fn park(&self, fd: Fd) -> Fd;
}

/// `127.0.0.1:port`.
pub fn lo4(port: u16) -> SockAddr {
    SockAddr::v4(Ipv4Addr::LOCALHOST, port)
}

/// `[::1]:port`.
pub fn lo6(port: u16) -> SockAddr {
    SockAddr::v6(Ipv6Addr::LOCALHOST, port)
}

/// Generates `mod $name { fn posix(); fn sim(); }` from one body.
///
/// `conformance!(name, |b: &dyn Backend| { ... });` runs the body on both backends;
/// `conformance!(#[ignore = "sim: ..."] name, ...)` marks only the sim variant ignored.
macro_rules! conformance {
    ($(#[$sim_attr:meta])* $name:ident, |$b:ident : &dyn Backend| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($b: &dyn $crate::conformance::Backend) $body

            #[test]
            fn posix() {
                $crate::conformance::run_posix(body);
            }

            #[test]
            $(#[$sim_attr])*
            fn sim() {
                $crate::conformance::run_sim(body);
            }
        }
    };
}
pub(crate) use conformance;

// ---- the tracking wrapper -----------------------------------------------------------

/// Delegates to a backend and remembers every descriptor it hands out, so the
/// harness can close what a body left open (also when it panicked).
pub struct Tracked<O: SocketOps> {
    inner: O,
    open: RefCell<BTreeSet<Fd>>,
    /// Yield the CPU after each call that may send packets (kernel only): under
    /// load the kernel may defer loopback processing to `ksoftirqd`, and the
    /// bodies rely on loopback delivery being done when a call returns.
    settle: bool,
}

impl<O: SocketOps> Tracked<O> {
    fn new(inner: O, settle: bool) -> Self {
        Tracked {
            inner,
            open: RefCell::new(BTreeSet::new()),
            settle,
        }
    }

    /// Returns `r` after letting pending packet processing run (see `settle`).
    fn settled<T>(&self, r: T) -> T {
        if self.settle {
            std::thread::yield_now();
        }
        r
    }

    fn add(&self, fd: Fd) {
        self.open.borrow_mut().insert(fd);
    }

    fn forget(&self, fd: Fd) {
        self.open.borrow_mut().remove(&fd);
    }

    /// Closes every descriptor still open.
    fn close_all(&self) {
        let fds = std::mem::take(&mut *self.open.borrow_mut());
        for fd in fds {
            let _ = self.inner.close(fd);
        }
    }

    fn track<T>(&self, r: Result<T>, f: impl Fn(&T) -> Vec<Fd>) -> Result<T> {
        if let Ok(v) = &r {
            for fd in f(v) {
                self.add(fd);
            }
        }
        r
    }
}

impl<O: SocketOps> SocketOps for Tracked<O> {
    fn platform(&self) -> Platform {
        self.inner.platform()
    }
    fn socket(&self, family: Family, ty: SockType, protocol: Protocol, nb: bool) -> Result<Fd> {
        self.track(self.inner.socket(family, ty, protocol, nb), |fd| vec![*fd])
    }
    fn socketpair(&self, ty: SockType, protocol: Protocol, nb: bool) -> Result<(Fd, Fd)> {
        self.track(self.inner.socketpair(ty, protocol, nb), |p| vec![p.0, p.1])
    }
    fn dup(&self, fd: Fd) -> Result<Fd> {
        self.track(self.inner.dup(fd), |fd| vec![*fd])
    }
    fn close(&self, fd: Fd) -> Result<()> {
        // The number is free after close(2) whatever it returns.
        self.forget(fd);
        self.settled(self.inner.close(fd))
    }
    fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<()> {
        self.settled(self.inner.shutdown(fd, how))
    }
    fn bind(&self, fd: Fd, addr: &SockAddr) -> Result<()> {
        self.inner.bind(fd, addr)
    }
    fn connect(&self, fd: Fd, addr: &SockAddr) -> Result<()> {
        self.settled(self.inner.connect(fd, addr))
    }
    fn listen(&self, fd: Fd, backlog: i32) -> Result<()> {
        self.inner.listen(fd, backlog)
    }
    fn accept(&self, fd: Fd, want_addr: bool) -> Result<Accepted> {
        self.track(self.inner.accept(fd, want_addr), |a| vec![a.fd])
    }
    fn send(&self, fd: Fd, buf: &[u8], flags: MsgFlags) -> Result<usize> {
        self.settled(self.inner.send(fd, buf, flags))
    }
    fn sendto(&self, fd: Fd, buf: &[u8], to: &SockAddr, flags: MsgFlags) -> Result<usize> {
        self.settled(self.inner.sendto(fd, buf, to, flags))
    }
    fn recv(&self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize> {
        self.inner.recv(fd, buf, flags)
    }
    fn recvfrom(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<(usize, Option<SockAddr>)> {
        self.inner.recvfrom(fd, buf, flags)
    }
    fn sendmsg<'a>(
        &self,
        fd: Fd,
        iov: &[&'a [u8]],
        control: &[u8],
        to: Option<&'a SockAddr>,
        flags: MsgFlags,
    ) -> Result<usize> {
        self.settled(self.inner.sendmsg(fd, iov, control, to, flags))
    }
    #[allow(clippy::needless_lifetimes)] // the trait's signature
    fn recvmsg<'a>(
        &self,
        fd: Fd,
        iov: &mut [&'a mut [u8]],
        control: &mut [u8],
        flags: MsgFlags,
    ) -> Result<RecvMsgOut> {
        let r = self.inner.recvmsg(fd, iov, control, flags);
        if let Ok(out) = &r {
            let len = out.control_len.min(control.len());
            for m in cmsg::decode(&control[..len]) {
                for fd in m.fds().unwrap_or_default() {
                    self.add(fd);
                }
            }
        }
        r
    }
    fn sendfile(&self, sock: Fd, file: Fd, offset: i64, len: usize) -> Result<usize> {
        self.settled(self.inner.sendfile(sock, file, offset, len))
    }
    fn poll(&self, fd: Fd, interest: Interest, timeout_ms: i32) -> Result<bool> {
        self.inner.poll(fd, interest, timeout_ms)
    }
    fn atmark(&self, fd: Fd) -> Result<bool> {
        self.inner.atmark(fd)
    }
    fn getsockname(&self, fd: Fd) -> Result<SockAddr> {
        self.inner.getsockname(fd)
    }
    fn getpeername(&self, fd: Fd) -> Result<SockAddr> {
        self.inner.getpeername(fd)
    }
    fn nonblock(&self, fd: Fd) -> Result<bool> {
        self.inner.nonblock(fd)
    }
    fn set_nonblock(&self, fd: Fd, on: bool) -> Result<()> {
        self.inner.set_nonblock(fd, on)
    }
    fn cloexec(&self, fd: Fd) -> Result<bool> {
        self.inner.cloexec(fd)
    }
    fn set_cloexec(&self, fd: Fd, on: bool) -> Result<()> {
        self.inner.set_cloexec(fd, on)
    }
    fn getsockopt(&self, fd: Fd, name: OptName) -> Result<SockOpt> {
        self.inner.getsockopt(fd, name)
    }
    fn setsockopt(&self, fd: Fd, opt: SockOpt) -> Result<()> {
        self.inner.setsockopt(fd, opt)
    }
    fn multicast(&self, fd: Fd, op: McastOp, req: &McastRequest) -> Result<()> {
        self.inner.multicast(fd, op, req)
    }
    fn interface_ipv4(&self, fd: Fd, name: &[u8]) -> Result<Ipv4Addr> {
        self.inner.interface_ipv4(fd, name)
    }
    fn if_nametoindex(&self, name: &[u8]) -> Result<u32> {
        self.inner.if_nametoindex(name)
    }
    fn if_indextoname(&self, index: u32) -> Result<Vec<u8>> {
        self.inner.if_indextoname(index)
    }
    fn getaddrinfo<'a>(
        &self,
        node: Option<&'a [u8]>,
        service: Option<&'a [u8]>,
        hints: &AddrInfoHints,
    ) -> std::result::Result<Vec<AddrInfo>, GaiError> {
        self.inner.getaddrinfo(node, service, hints)
    }
    fn getnameinfo(&self, addr: &SockAddr, flags: i32) -> std::result::Result<NameInfo, GaiError> {
        self.inner.getnameinfo(addr, flags)
    }
    fn interfaces(&self) -> Result<Vec<Interface>> {
        self.inner.interfaces()
    }
}

// ---- the two backends -----------------------------------------------------------------

/// A process-wide counter for unique names and parked descriptor numbers.
static UNIQUE: AtomicU32 = AtomicU32::new(0);

fn unique() -> u32 {
    UNIQUE.fetch_add(1, Ordering::Relaxed)
}

/// The kernel.
struct PosixBackend {
    ops: Tracked<llsocket_posix::Posix>,
    paths: RefCell<Vec<std::path::PathBuf>>,
}

impl Backend for PosixBackend {
    fn ops(&self) -> &dyn SocketOps {
        &self.ops
    }

    fn file(&self, data: &[u8]) -> Fd {
        let path = std::env::temp_dir().join(format!(
            "llsocket-conform-file-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::write(&path, data).expect("write temp file");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path; open takes no other pointers.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        std::fs::remove_file(&path).expect("remove temp file");
        assert!(
            fd >= 0,
            "open {path:?}: {}",
            std::io::Error::last_os_error()
        );
        self.ops.add(Fd(fd));
        Fd(fd)
    }

    fn unix_path(&self, tag: &str) -> SockAddr {
        let path =
            std::env::temp_dir().join(format!("llsc-{}-{}-{tag}", std::process::id(), unique()));
        let _ = std::fs::remove_file(&path);
        self.paths.borrow_mut().push(path.clone());
        SockAddr::unix_path(path.as_os_str().as_encoded_bytes())
    }

    fn unix_abstract(&self, tag: &str) -> SockAddr {
        SockAddr::unix_abstract(format!(
            "llsocket-conform-{}-{}-{tag}",
            std::process::id(),
            unique()
        ))
    }

    fn park(&self, fd: Fd) -> Fd {
        // Numbers 15000.. are handed out once per process (the limit here is far above).
        let want = 15_000 + unique() as i32;
        // SAFETY: F_DUPFD_CLOEXEC takes an int argument.
        let high = unsafe { libc::fcntl(fd.0, libc::F_DUPFD_CLOEXEC, want) };
        assert!(
            high >= want,
            "park {fd}: {}",
            std::io::Error::last_os_error()
        );
        self.ops.close(fd).expect("close the parked original");
        self.ops.add(Fd(high));
        Fd(high)
    }
}

impl Drop for PosixBackend {
    fn drop(&mut self) {
        self.ops.close_all();
        for p in self.paths.borrow().iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The simulator: one host, its loopback.
struct SimBackend {
    sim: llsocket_sim::Sim,
    host: Tracked<llsocket_sim::Host>,
    /// Numbers unix names within this world (the host is private to the body, and a
    /// process-wide counter would make two runs of one body differ).
    names: std::cell::Cell<u32>,
}

impl SimBackend {
    fn unique(&self) -> u32 {
        let n = self.names.get();
        self.names.set(n + 1);
        n
    }
}

impl Backend for SimBackend {
    fn ops(&self) -> &dyn SocketOps {
        &self.host
    }

    fn file(&self, data: &[u8]) -> Fd {
        let fd = self
            .host
            .inner
            .create_file(data)
            .unwrap_or_else(|e| panic!("create_file: {e}"));
        self.host.add(fd);
        fd
    }

    fn unix_path(&self, tag: &str) -> SockAddr {
        SockAddr::unix_path(format!("/tmp/llsc-sim-{}-{tag}", self.unique()))
    }

    fn unix_abstract(&self, tag: &str) -> SockAddr {
        SockAddr::unix_abstract(format!("llsocket-conform-sim-{}-{tag}", self.unique()))
    }

    fn park(&self, fd: Fd) -> Fd {
        fd
    }
}

impl Drop for SimBackend {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.sim.replay_hint());
        }
        self.host.close_all();
    }
}

/// The seed of a sim run: `LLSOCKET_SIM_SEED` when set, else a fixed one.
pub fn sim_seed() -> u64 {
    std::env::var("LLSOCKET_SIM_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0x5eed_c0de)
}

/// Runs a body on the kernel.
pub fn run_posix(body: fn(&dyn Backend)) {
    let b = PosixBackend {
        ops: Tracked::new(llsocket_posix::Posix, true),
        paths: RefCell::new(Vec::new()),
    };
    body(&b);
}

/// Runs a body on a fresh simulated host, twice: the two traces must be the same
/// event by event (`check_determinism` names the first divergent event otherwise).
pub fn run_sim(body: fn(&dyn Backend)) {
    llsocket_sim::check_determinism(sim_seed(), |sim| {
        let b = SimBackend {
            sim: sim.clone(),
            host: Tracked::new(sim.host("a"), false),
            names: std::cell::Cell::new(0),
        };
        body(&b);
        // (`b` drops here: what the body left open is closed inside the traced run.)
    })
    .unwrap_or_else(|d| panic!("{d}"));
}

// ---- small helpers for bodies ------------------------------------------------------

/// A TCP listener on `addr` (port 0 for an ephemeral one) and its bound address.
pub fn listener(b: &dyn Backend, addr: SockAddr, nonblock: bool) -> (Fd, SockAddr) {
    let o = b.ops();
    let fd = o
        .socket(addr.family(), SockType::STREAM, Protocol::DEFAULT, nonblock)
        .unwrap();
    o.bind(fd, &addr).unwrap();
    o.listen(fd, 8).unwrap();
    let bound = o.getsockname(fd).unwrap();
    (fd, bound)
}

/// A connected TCP pair over loopback: `(client, server side)`, both blocking
/// unless `nonblock`; the listener is closed.
pub fn tcp_pair(b: &dyn Backend, addr: SockAddr, nonblock: bool) -> (Fd, Fd) {
    let o = b.ops();
    let (l, bound) = listener(b, addr, false);
    let c = o
        .socket(bound.family(), SockType::STREAM, Protocol::DEFAULT, false)
        .unwrap();
    o.connect(c, &bound).unwrap();
    let s = o.accept(l, false).unwrap().fd;
    o.close(l).unwrap();
    if nonblock {
        o.set_nonblock(c, true).unwrap();
        o.set_nonblock(s, true).unwrap();
    }
    (c, s)
}

/// A UDP socket bound to `addr`, and its bound address.
pub fn udp(b: &dyn Backend, addr: SockAddr, nonblock: bool) -> (Fd, SockAddr) {
    let o = b.ops();
    let fd = o
        .socket(addr.family(), SockType::DGRAM, Protocol::DEFAULT, nonblock)
        .unwrap();
    o.bind(fd, &addr).unwrap();
    let bound = o.getsockname(fd).unwrap();
    (fd, bound)
}

/// Receives into a `cap`-byte buffer, returning the bytes.
pub fn recv_vec(b: &dyn Backend, fd: Fd, cap: usize, flags: MsgFlags) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; cap];
    let n = b.ops().recv(fd, &mut buf, flags)?;
    buf.truncate(n.min(cap));
    Ok(buf)
}

/// Sends all of `data` with blocking sends (bounded number of calls).
pub fn send_all(b: &dyn Backend, fd: Fd, data: &[u8]) {
    let mut off = 0;
    for _ in 0..10_000 {
        if off == data.len() {
            return;
        }
        off += b.ops().send(fd, &data[off..], MsgFlags::NONE).unwrap();
    }
    panic!("send_all: {off} of {} bytes after 10000 sends", data.len());
}

/// Reads a stream socket until `n` bytes arrived (data must already be queued).
pub fn recv_exact(b: &dyn Backend, fd: Fd, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        if out.len() >= n {
            break;
        }
        let got = recv_vec(b, fd, n - out.len(), MsgFlags::DONTWAIT).unwrap();
        assert!(
            !got.is_empty(),
            "early EOF after {} of {n} bytes",
            out.len()
        );
        out.extend(got);
    }
    assert_eq!(out.len(), n);
    out
}

/// The `EAGAIN` a non-blocking caller sees.
pub const AGAIN: Errno = Errno::EAGAIN;
