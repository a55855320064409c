//! The regression corpus: every minimal sequence on which the kernel and the
//! simulator were ever found to differ, replayed by every `cargo test`. A new
//! divergence from a campaign (`cargo xtask ci --step differential`) is printed
//! in this form; add it here, named after what it shows, with the issue or
//! campaign that found it.

use llsocket_api::SockType;

use super::BindTo::*;
use super::Kind::*;
use super::Op::*;
use super::{check, Index, Op};

/// Replays one corpus sequence on both backends.
fn replay(ops: &[Op]) {
    if let Err(e) = check(ops) {
        panic!("{e}");
    }
}

/// Issue 14 (40 000-case run): a UDP socket that never joined the group still
/// hears it once another socket on the host did (`IP_MULTICAST_ALL`, on by
/// default); here the joiner sends to the port the other socket autobound on
/// its failed `sendmsg`.
#[test]
fn group_datagram_reaches_a_socket_that_did_not_join() {
    replay(&[
        Socket(Udp4),
        Mcast(Index(0), true, 0),
        Socket(Udp4),
        SendFd(Index(11), Index(0), 0),
        SendGroup(Index(0), Index(13), 0),
        Recv(Index(31), 0, 0),
    ]);
}

/// Found by the CI-sized run while working on issue 14: connect on a TCP listener
/// that `shutdown(SHUT_RD)` stopped (it has accepted a connection).
#[test]
fn connect_on_a_listener_stopped_by_shutdown() {
    replay(&[
        Socket(Tcp4),
        Conn(Tcp4),
        Shutdown(Index(33), 0),
        Connect(Index(41), Index(2)),
    ]);
}

/// Campaign seed 0, case 741: that failed connect gives an automatic port back
/// (Linux fails it inside `tcp_v4_connect`), so the socket may be bound again.
#[test]
fn failed_connect_on_a_stopped_listener_releases_its_port() {
    replay(&[
        Conn(Tcp4),
        Shutdown(Index(3), 2),
        Bind(Index(3), Loopback),
        Connect(Index(15), Index(1)),
        Pair(SockType::STREAM),
        Bind(Index(5), Loopback),
    ]);
}
