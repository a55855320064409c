//! `llsocket-sim`: a deterministic, seeded, virtual-time simulated network implementing
//! [`SocketOps`].
//!
//! (Work in progress: the crate map and the list of differences from Linux follow.)

use std::cell::RefCell;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::rc::Rc;
use std::time::Duration;

use llsocket_api::{
    Accepted, AddrInfo, AddrInfoHints, Errno, Family, Fd, GaiError, Interest, Interface, McastOp,
    McastRequest, MsgFlags, NameInfo, OptName, Platform, Protocol, RecvMsgOut, Result, Shutdown,
    SockAddr, SockOpt, SockType, SocketOps,
};

/// The latency of a link.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Uniformly distributed between the two bounds (inclusive), drawn from the world's seed.
    Uniform(Duration, Duration),
}

/// Faults on a one-way link between two hosts.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct LinkConfig {
    /// Delay of every packet.
    pub latency: Latency,
    /// Probability (0..1) that a packet is lost.
    pub loss: f64,
    /// Probability (0..1) that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability (0..1) that a packet is held back (delivered after later ones).
    pub reorder: f64,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            latency: Latency::Fixed(Duration::ZERO),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }
}

/// Per-host fault switches (probabilities 0..1).
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct HostFaults {
    /// A stream send or receive moves fewer bytes than it could (at least one).
    pub short_io: f64,
    /// A call in blocking mode fails with `EINTR` before doing anything.
    pub eintr: f64,
    /// A stream send resets its connection (both ends see `ECONNRESET`).
    pub reset: f64,
}

/// Configuration of a new [`Sim`].
#[derive(Clone, Debug)]
pub struct SimBuilder {
    seed: u64,
}

impl SimBuilder {
    /// `SOMAXCONN`: the largest `listen` backlog (default 4096, as Linux 5.4+).
    pub fn somaxconn(self, n: i32) -> SimBuilder {
        let _ = n;
        self
    }

    /// The default `SO_RCVBUF` of new sockets, in bytes.
    pub fn rcvbuf(self, n: usize) -> SimBuilder {
        let _ = n;
        self
    }

    /// The default `SO_SNDBUF` of new sockets, in bytes.
    pub fn sndbuf(self, n: usize) -> SimBuilder {
        let _ = n;
        self
    }

    /// Builds the world.
    pub fn build(self) -> Sim {
        Sim {
            w: Rc::new(RefCell::new(World { seed: self.seed })),
        }
    }
}

struct World {
    seed: u64,
}

/// One simulated world. Cheap to clone (`Rc` inside); single-threaded (not `Send`).
#[derive(Clone)]
pub struct Sim {
    w: Rc<RefCell<World>>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sim(seed={})", self.seed())
    }
}

impl Sim {
    /// A world with the default configuration.
    pub fn new(seed: u64) -> Sim {
        Sim::builder(seed).build()
    }

    /// A builder for a world with a custom configuration.
    pub fn builder(seed: u64) -> SimBuilder {
        SimBuilder { seed }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.w.borrow().seed
    }

    /// A new host named `name`.
    pub fn host(&self, name: &str) -> Host {
        let _ = name;
        Host {
            w: self.w.clone(),
            id: 0,
        }
    }

    /// The virtual clock since the start.
    pub fn now(&self) -> Duration {
        Duration::ZERO
    }

    /// Runs the world forward by `d`.
    pub fn advance(&self, d: Duration) {
        let _ = d;
    }

    /// The event trace.
    pub fn trace(&self) -> Vec<String> {
        Vec::new()
    }

    /// A stable hash of the trace.
    pub fn trace_digest(&self) -> u64 {
        0
    }

    /// Faults on the link `a -> b`.
    pub fn set_link(&self, a: &Host, b: &Host, cfg: LinkConfig) {
        let _ = (a, b, cfg);
    }

    /// Faults on both directions between `a` and `b`.
    pub fn set_link_both(&self, a: &Host, b: &Host, cfg: LinkConfig) {
        self.set_link(a, b, cfg);
        self.set_link(b, a, cfg);
    }

    /// Cuts both directions between `a` and `b`.
    pub fn partition(&self, a: &Host, b: &Host) {
        let _ = (a, b);
    }

    /// Restores both directions between `a` and `b`.
    pub fn heal(&self, a: &Host, b: &Host) {
        let _ = (a, b);
    }

    /// How to replay this run.
    pub fn replay_hint(&self) -> String {
        let s = self.seed();
        format!("llsocket-sim: seed={s}; replay with LLSOCKET_SIM_SEED={s}")
    }
}

/// A host's view of the world; implements [`SocketOps`]. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    w: Rc<RefCell<World>>,
    id: usize,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Host({})", self.id)
    }
}

impl Host {
    /// The host's name.
    pub fn name(&self) -> String {
        String::new()
    }

    /// `10.0.0.n`.
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, self.id as u8 + 1)
    }

    /// `fd00::n`.
    pub fn ipv6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, self.id as u16 + 1)
    }

    /// A simulated regular file holding `data`.
    pub fn create_file(&self, data: &[u8]) -> Result<Fd> {
        let _ = (data, &self.w);
        Err(Errno::ENOSYS)
    }

    /// All sockets vanish.
    pub fn crash(&self) {}

    /// Brings a crashed host back.
    pub fn restart(&self) {}

    /// Sets the host's fault switches.
    pub fn set_faults(&self, f: HostFaults) {
        let _ = f;
    }
}

impl SocketOps for Host {
    fn platform(&self) -> Platform {
        Platform {
            os: "linux",
            unix_path_max: 108,
            somaxconn: 4096,
        }
    }
    fn socket(&self, _: Family, _: SockType, _: Protocol, _: bool) -> Result<Fd> {
        Err(Errno::ENOSYS)
    }
    fn socketpair(&self, _: SockType, _: Protocol, _: bool) -> Result<(Fd, Fd)> {
        Err(Errno::ENOSYS)
    }
    fn dup(&self, _: Fd) -> Result<Fd> {
        Err(Errno::ENOSYS)
    }
    fn close(&self, _: Fd) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn shutdown(&self, _: Fd, _: Shutdown) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn bind(&self, _: Fd, _: &SockAddr) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn connect(&self, _: Fd, _: &SockAddr) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn listen(&self, _: Fd, _: i32) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn accept(&self, _: Fd, _: bool) -> Result<Accepted> {
        Err(Errno::ENOSYS)
    }
    fn send(&self, _: Fd, _: &[u8], _: MsgFlags) -> Result<usize> {
        Err(Errno::ENOSYS)
    }
    fn sendto(&self, _: Fd, _: &[u8], _: &SockAddr, _: MsgFlags) -> Result<usize> {
        Err(Errno::ENOSYS)
    }
    fn recv(&self, _: Fd, _: &mut [u8], _: MsgFlags) -> Result<usize> {
        Err(Errno::ENOSYS)
    }
    fn recvfrom(&self, _: Fd, _: &mut [u8], _: MsgFlags) -> Result<(usize, Option<SockAddr>)> {
        Err(Errno::ENOSYS)
    }
    fn sendmsg<'a>(
        &self,
        _: Fd,
        _: &[&'a [u8]],
        _: &[u8],
        _: Option<&'a SockAddr>,
        _: MsgFlags,
    ) -> Result<usize> {
        Err(Errno::ENOSYS)
    }
    #[allow(clippy::needless_lifetimes)] // matches the trait declaration
    fn recvmsg<'a>(
        &self,
        _: Fd,
        _: &mut [&'a mut [u8]],
        _: &mut [u8],
        _: MsgFlags,
    ) -> Result<RecvMsgOut> {
        Err(Errno::ENOSYS)
    }
    fn sendfile(&self, _: Fd, _: Fd, _: i64, _: usize) -> Result<usize> {
        Err(Errno::ENOSYS)
    }
    fn poll(&self, _: Fd, _: Interest, _: i32) -> Result<bool> {
        Err(Errno::ENOSYS)
    }
    fn atmark(&self, _: Fd) -> Result<bool> {
        Err(Errno::ENOSYS)
    }
    fn getsockname(&self, _: Fd) -> Result<SockAddr> {
        Err(Errno::ENOSYS)
    }
    fn getpeername(&self, _: Fd) -> Result<SockAddr> {
        Err(Errno::ENOSYS)
    }
    fn nonblock(&self, _: Fd) -> Result<bool> {
        Err(Errno::ENOSYS)
    }
    fn set_nonblock(&self, _: Fd, _: bool) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn cloexec(&self, _: Fd) -> Result<bool> {
        Err(Errno::ENOSYS)
    }
    fn set_cloexec(&self, _: Fd, _: bool) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn getsockopt(&self, _: Fd, _: OptName) -> Result<SockOpt> {
        Err(Errno::ENOSYS)
    }
    fn setsockopt(&self, _: Fd, _: SockOpt) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn multicast(&self, _: Fd, _: McastOp, _: &McastRequest) -> Result<()> {
        Err(Errno::ENOSYS)
    }
    fn interface_ipv4(&self, _: Fd, _: &str) -> Result<Ipv4Addr> {
        Err(Errno::ENOSYS)
    }
    fn if_nametoindex(&self, _: &str) -> Result<u32> {
        Err(Errno::ENOSYS)
    }
    fn if_indextoname(&self, _: u32) -> Result<String> {
        Err(Errno::ENOSYS)
    }
    fn getaddrinfo<'a>(
        &self,
        _: Option<&'a str>,
        _: Option<&'a str>,
        _: &AddrInfoHints,
    ) -> std::result::Result<Vec<AddrInfo>, GaiError> {
        Err(GaiError::EAI_FAIL)
    }
    fn getnameinfo(&self, _: &SockAddr, _: i32) -> std::result::Result<NameInfo, GaiError> {
        Err(GaiError::EAI_FAIL)
    }
    fn interfaces(&self) -> Result<Vec<Interface>> {
        Err(Errno::ENOSYS)
    }
}
