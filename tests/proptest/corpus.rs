//! The regression corpus: every minimal sequence on which the kernel and the
//! simulator were ever found to differ, replayed by every `cargo test`. A new
//! divergence from a campaign (`cargo xtask ci --step differential`) is printed
//! in this form; add it here, named after what it shows, with the issue or
//! campaign that found it.

use llsocket_api::{OptName, SockType};

use super::BindTo::*;
use super::Kind::*;
use super::Op::*;
use super::SetChoice::*;
use super::{check, difference, Index, Op};

/// Replays one corpus sequence on both backends.
fn replay(ops: &[Op]) {
    if let Err(e) = check(ops) {
        panic!("{e}");
    }
}

/// Replays a sequence that shows a divergence not fixed yet (listed under
/// "Differences from Linux" in the crate docs): it must still differ, at `step`.
/// Once the simulator is fixed this fails; move the case to [`replay`] then.
fn known(ops: &[Op], step: usize) {
    match difference(ops) {
        Some(msg) => assert!(
            msg.starts_with(&format!("step {step} ")),
            "the known divergence moved:\n{msg}"
        ),
        None => panic!("the known divergence is gone: make this a `replay` case"),
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

/// Campaign seed 101, case 2609: that connect checks the address family first
/// (`EAFNOSUPPORT` for a unix target), before failing with `EINVAL`.
#[test]
fn stopped_listener_connect_checks_the_address_first() {
    replay(&[
        Conn(Tcp4),
        Socket(Tcp4),
        Socket(Tcp4),
        Socket(Tcp4),
        Listen(Index(57), 0),
        Shutdown(Index(57), 0),
        Conn(UnixStream),
        Connect(Index(39), Index(6)),
    ]);
}

/// Campaign seed 101, case 3836: once connect has reported a reset (its
/// `sock_error` path), Linux refuses `listen` on that socket with `EINVAL`.
#[test]
fn no_listen_after_connect_reported_a_reset() {
    replay(&[
        Conn(Tcp4),
        Shutdown(Index(20), 2),
        Pair(SockType::STREAM),
        SendTo(Index(26), Index(0), 1),
        Connect(Index(36), Index(18)),
        Listen(Index(51), 0),
    ]);
}

/// Campaign seed 101, case 6401: the same after the peer closed and our data
/// drew its reset.
#[test]
fn no_listen_after_connect_reported_a_reset_to_data_sent_to_a_closed_peer() {
    replay(&[
        Socket(Tcp4),
        Socket(Tcp4),
        Conn(Tcp4),
        Close(Index(14)),
        Send(Index(48), 1, false),
        Connect(Index(33), Index(17)),
        Listen(Index(18), 0),
    ]);
}

/// Campaign seed 7, case 1981.
#[test]
fn stopped_listener_connect_to_a_unix_name_is_eafnosupport() {
    replay(&[
        Conn(Tcp4),
        Conn(UnixStream),
        Shutdown(Index(0), 0),
        Conn(Tcp4),
        Socket(Tcp4),
        Connect(Index(10), Index(53)),
    ]);
}

/// Campaign seed 101 (and P40 before it): a zero-length seqpacket
/// message left unread does not turn the receiver's close into a reset.
#[test]
fn unread_zero_length_seqpacket_message_is_no_reset() {
    replay(&[
        Pair(SockType::SEQPACKET),
        Send(Index(14), 0, false),
        Close(Index(43)),
        Send(Index(20), 0, false),
    ]);
}

/// Campaign seed 101: the same when the message carries a descriptor.
#[test]
fn unread_zero_length_seqpacket_message_with_a_closed_peer_tcp_sendto() {
    replay(&[
        Socket(Tcp4),
        Socket(Tcp4),
        Socket(Tcp4),
        Pair(SockType::SEQPACKET),
        Socket(Tcp4),
        SendFd(Index(45), Index(0), 0),
        Close(Index(34)),
        SendTo(Index(57), Index(33), 0),
    ]);
}

/// Campaign seed 900 (widened generator): source-specific membership is accepted
/// on a TCP socket (only any-source requests are `EPROTO`).
#[test]
fn source_specific_membership_on_tcp_is_accepted() {
    replay(&[Conn(Tcp4), McastSource(Index(0), 0, 0, false)]);
}

/// Campaign seed 900 (widened generator): `SO_REUSEPORT` cannot be turned on for
/// a unix socket.
#[test]
fn reuseport_on_a_unix_socket_is_eopnotsupp() {
    replay(&[Pair(SockType::STREAM), SetOpt(Index(0), ReusePort(true))]);
}

/// Campaign seed 901 (widened generator): a source request without a prior join
/// is `EINVAL` (`ip_mc_source`), not `EADDRNOTAVAIL`.
#[test]
fn source_leave_without_a_join_is_einval() {
    replay(&[Conn(Tcp4), McastSource(Index(0), 1, 0, false)]);
}

/// Campaign seed 901 (widened generator): an accepted TCP socket's
/// `IP_MULTICAST_TTL` is the TTL of the SYN (64), not the default 1.
#[test]
fn accepted_socket_multicast_ttl_is_the_syn_ttl() {
    replay(&[Conn(Tcp4), GetOpt(Index(11), OptName::MulticastTtlV4)]);
}

/// Campaign seed 902 (widened generator): a source join on an any-source
/// membership that blocks nothing switches it to include mode.
#[test]
fn source_join_switches_an_empty_any_source_membership() {
    replay(&[
        Bind(Index(0), Loopback),
        Socket(Udp4),
        Mcast(Index(0), true, 0),
        Socket(Tcp4),
        McastSource(Index(20), 0, 0, false),
    ]);
}

/// Campaign seed 902 (widened generator): recvmsg of the urgent byte flags the
/// message `MSG_OOB` (here with `MSG_TRUNC`, the buffer being empty).
#[test]
fn urgent_byte_recvmsg_is_flagged_oob() {
    replay(&[
        Conn(Tcp4),
        Send(Index(28), 1, true),
        Socket(Tcp4),
        Dup(Index(0)),
        Conn(Tcp4),
        RecvMsg(Index(18), 0, 0, 2),
    ]);
}

/// Campaign seed 903 (widened generator): joining a source already joined is
/// `EADDRNOTAVAIL`.
#[test]
fn source_join_twice_is_eaddrnotavail() {
    replay(&[
        Socket(Tcp4),
        Socket(Tcp4),
        Conn(Tcp4),
        McastSource(Index(2), 0, 0, true),
        McastSource(Index(7), 0, 0, true),
    ]);
}

/// Known (P39): a client of a TCP listener that was `shutdown(SHUT_WR)` before
/// `listen` sees end of stream at once on Linux (the child inherits the flag).
/// Campaign seed 201.
#[test]
fn known_listener_shut_down_before_listen() {
    known(
        &[
            Socket(Tcp4),
            Shutdown(Index(0), 1),
            Listen(Index(0), 0),
            Socket(Tcp4),
            Connect(Index(13), Index(20)),
            Recv(Index(19), 0, 0),
        ],
        5,
    );
}

/// Campaign seeds 201 and 401: `accept` reports the unix client's name as it is
/// at accept time (the client bound after connecting).
#[test]
fn unix_accept_reports_the_clients_later_name() {
    replay(&[
        Conn(UnixStream),
        Socket(UnixStream),
        Connect(Index(59), Index(6)),
        Bind(Index(31), Loopback),
        Accept(Index(4)),
    ]);
}

/// Known: a zero-byte recvmsg on a unix stream whose only data are urgent bytes
/// already passed returns an empty message on Linux (the simulator: `EAGAIN`).
/// Campaign seed 201.
#[test]
fn known_unix_zero_byte_read_after_urgent_bytes() {
    known(
        &[
            Socket(Tcp4),
            Socket(Tcp4),
            Socket(Tcp4),
            Pair(SockType::STREAM),
            Send(Index(33), 1, true),
            Socket(Tcp4),
            Send(Index(45), 1, true),
            Dup(Index(10)),
            RecvMsg(Index(48), 0, 0, 0),
        ],
        8,
    );
}

/// Campaign seed 301: unblocking a source of an include-mode membership is
/// `EINVAL` (the other filter mode).
#[test]
fn unblock_on_an_include_mode_membership_is_einval() {
    replay(&[
        Socket(Tcp4),
        McastSource(Index(0), 0, 1, false),
        McastSource(Index(0), 3, 1, false),
    ]);
}

/// Known (P39 family): an accepted TCP socket of a listener shut down before
/// `listen`. Campaign seed 501.
#[test]
fn known_listener_shut_down_before_listen_zero_byte_read() {
    known(
        &[
            Socket(Tcp4),
            Shutdown(Index(0), 1),
            Conn(Tcp4),
            Socket(Tcp4),
            Connect(Index(25), Index(21)),
            Accept(Index(51)),
            Recv(Index(47), 0, 0),
        ],
        6,
    );
}

/// Known: a zero-byte read of a unix stream whose peer closed with unread data
/// (a reset) after the data was read: Linux returns 0, the simulator reports
/// `ECONNRESET`. Campaign seed 501.
#[test]
fn known_unix_zero_byte_read_after_a_reset() {
    known(
        &[
            Pair(SockType::STREAM),
            Send(Index(43), 1, false),
            Send(Index(8), 1, false),
            Close(Index(13)),
            Recv(Index(8), 2, 4),
            Recv(Index(12), 0, 4),
        ],
        5,
    );
}
