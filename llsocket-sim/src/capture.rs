//! Packet capture: every packet the simulated wire carries, as it leaves its host,
//! with synthesized IPv4/IPv6, TCP and UDP headers, written as a pcap file that
//! `tcpdump -r` and Wireshark open ([`crate::Sim::write_pcap`]).
//!
//! # What a capture holds
//!
//! * Link type `LINKTYPE_RAW` (101): each record is one IP packet, IPv4 or IPv6 by
//!   its version nibble; nanosecond timestamps (magic `0xa1b23c4d`) from the virtual
//!   clock (the world starts at the Unix epoch).
//! * The capture point is the sender's interface: one record per transmission,
//!   retransmissions included, before the link's faults act (a lost packet is in the
//!   capture; a duplicated one once). Loopback traffic is captured too.
//! * TCP: the simulator moves segments, not acknowledgements, so the records are the
//!   `SYN`, `SYN|ACK`, data (`PSH|ACK`, `URG` with its pointer for urgent data),
//!   `FIN|ACK` and `RST` segments it sends. Sequence numbers start at 0 for the `SYN`
//!   (data from 1); the acknowledgement number is what the sender had received when
//!   it sent. Window 65535, no options. Checksums are correct (IPv4 header, TCP and
//!   UDP with their pseudo-headers), so `tcpdump -vv` reports none bad.
//! * UDP: one record per datagram and destination host (a multicast or broadcast
//!   datagram once per host it is sent to).
//! * Segments longer than an IP packet can hold (loopback moves 64 KiB) are split
//!   into several records at the same time, with consecutive sequence numbers.
//! * Unix-domain traffic is shown as UDP over IPv6 between synthetic addresses in
//!   `fd75:6e69:7800::/48` ("unix"): `fd75:6e69:7800:0:HHHH:HHHH:OOOO:OOOO`, where H is
//!   the host's index (0 = the first host made) and O the socket's object number in
//!   the world (stable for a seed; each end of a pair has its own), both 32 bits; the
//!   UDP ports are the socket type (1 stream, 2 datagram, 5 seqpacket), source and
//!   destination alike. The payload is the bytes sent (each `send` to a stream is one
//!   record); passed descriptors are not shown, and an empty message is a record with
//!   no payload.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr};

use crate::types::Nanos;

/// Largest transport payload put in one record (fits an IPv4 or IPv6 packet).
pub(crate) const MAX_CHUNK: usize = 65_000;

/// The captured records, in order: (virtual time, IP packet).
#[derive(Debug, Default)]
pub(crate) struct Capture {
    records: Vec<(Nanos, Vec<u8>)>,
    ip_id: u16,
}

pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_RST: u8 = 0x04;
pub(crate) const TCP_PSH: u8 = 0x08;
pub(crate) const TCP_ACK: u8 = 0x10;
pub(crate) const TCP_URG: u8 = 0x20;

/// One transport segment to synthesize.
pub(crate) struct Seg<'a> {
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    /// TCP: (sequence, acknowledgement, flags, urgent pointer); `None`: UDP.
    pub tcp: Option<(u32, u32, u8, u16)>,
    pub payload: &'a [u8],
}

impl Capture {
    /// Appends one record: `seg` with synthesized IP and transport headers.
    pub(crate) fn push(&mut self, now: Nanos, seg: &Seg<'_>) {
        let proto: u8 = if seg.tcp.is_some() { 6 } else { 17 };
        let mut l4 = Vec::with_capacity(20 + seg.payload.len());
        l4.extend_from_slice(&seg.src.1.to_be_bytes());
        l4.extend_from_slice(&seg.dst.1.to_be_bytes());
        match seg.tcp {
            Some((seq, ack, flags, urg)) => {
                l4.extend_from_slice(&seq.to_be_bytes());
                l4.extend_from_slice(&ack.to_be_bytes());
                l4.push(5 << 4);
                l4.push(flags);
                l4.extend_from_slice(&65_535u16.to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
                l4.extend_from_slice(&urg.to_be_bytes());
            }
            None => {
                let len = (8 + seg.payload.len()) as u16;
                l4.extend_from_slice(&len.to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
            }
        }
        l4.extend_from_slice(seg.payload);
        let at = if seg.tcp.is_some() { 16 } else { 6 };
        let (src, dst) = match (seg.src.0, seg.dst.0) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (IpAddr::V4(s), IpAddr::V4(d)),
            (s, d) => (IpAddr::V6(v6(s)), IpAddr::V6(v6(d))),
        };
        let mut sum = Checksum::default();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum.add(&s.octets());
                sum.add(&d.octets());
                sum.add(&[0, proto]);
                sum.add(&(l4.len() as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                sum.add(&s.octets());
                sum.add(&d.octets());
                sum.add(&(l4.len() as u32).to_be_bytes());
                sum.add(&[0, 0, 0, proto]);
            }
            _ => unreachable!("both mapped to one family above"),
        }
        sum.add(&l4);
        let mut c = sum.finish();
        if c == 0 && proto == 17 {
            c = 0xffff;
        }
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        let mut ip = Vec::with_capacity(40 + l4.len());
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.ip_id = self.ip_id.wrapping_add(1);
                ip.extend_from_slice(&[0x45, 0]);
                ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                ip.extend_from_slice(&self.ip_id.to_be_bytes());
                ip.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                let mut h = Checksum::default();
                h.add(&ip);
                let c = h.finish();
                ip[10..12].copy_from_slice(&c.to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                ip.extend_from_slice(&[0x60, 0, 0, 0]);
                ip.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                ip.extend_from_slice(&[proto, 64]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
            }
            _ => unreachable!("both mapped to one family above"),
        }
        ip.extend_from_slice(&l4);
        self.records.push((now, ip));
    }

    /// The number of records.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Writes the pcap file.
    pub(crate) fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut head = Vec::with_capacity(24);
        head.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        head.extend_from_slice(&2u16.to_le_bytes());
        head.extend_from_slice(&4u16.to_le_bytes());
        head.extend_from_slice(&0i32.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&262_144u32.to_le_bytes());
        head.extend_from_slice(&101u32.to_le_bytes());
        out.write_all(&head)?;
        for (t, ip) in &self.records {
            let mut rec = Vec::with_capacity(16);
            rec.extend_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
            rec.extend_from_slice(&((t % 1_000_000_000) as u32).to_le_bytes());
            rec.extend_from_slice(&(ip.len() as u32).to_le_bytes());
            rec.extend_from_slice(&(ip.len() as u32).to_le_bytes());
            out.write_all(&rec)?;
            out.write_all(ip)?;
        }
        Ok(())
    }
}

/// An IPv4 address as IPv4-mapped IPv6 (a record has one family).
fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v) => v.to_ipv6_mapped(),
        IpAddr::V6(v) => v,
    }
}

/// The Internet checksum (RFC 1071), fed in pieces of even length but the last.
#[derive(Default)]
struct Checksum {
    sum: u64,
    odd: Option<u8>,
}

impl Checksum {
    fn add(&mut self, mut bytes: &[u8]) {
        if let Some(hi) = self.odd.take() {
            if let Some((&lo, rest)) = bytes.split_first() {
                self.sum += u64::from(u16::from_be_bytes([hi, lo]));
                bytes = rest;
            } else {
                self.odd = Some(hi);
                return;
            }
        }
        let mut it = bytes.chunks_exact(2);
        for w in &mut it {
            self.sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [b] = it.remainder() {
            self.odd = Some(*b);
        }
    }

    fn finish(mut self) -> u16 {
        if let Some(hi) = self.odd.take() {
            self.sum += u64::from(u16::from_be_bytes([hi, 0]));
        }
        while self.sum >> 16 != 0 {
            self.sum = (self.sum & 0xffff) + (self.sum >> 16);
        }
        !(self.sum as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::Checksum;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
        let mut c = Checksum::default();
        c.add(&[0x00, 0x01, 0xf2]);
        c.add(&[0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(c.finish(), 0x220d);
    }
}
