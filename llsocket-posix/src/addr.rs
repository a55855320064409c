//! [`SockAddr`] <-> [`socket2::SockAddr`]: socket2 builds and carries the C `sockaddr`; this file
//! keeps the byte rules of our type on top of it.
//!
//! Encoding gives the exact length the kernel expects (a unix path with its terminating NUL, an
//! abstract name with its leading one, the unnamed address as the family alone) and fills
//! `sa_len` where the platform has it. Decoding reads only the length the kernel (or
//! `getifaddrs`) reported; socket2 zero-fills its storage first, so nothing past it is stale.

use std::ffi::OsStr;
use std::mem::{offset_of, size_of};
use std::net::SocketAddrV6;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::{sa_family_t, sockaddr, sockaddr_storage, sockaddr_un, socklen_t};
use llsocket_api::{Errno, Family, Result, SockAddr, UnixAddr};

use crate::sys;

/// socket2's address type: the C `sockaddr_storage` with its length.
pub(crate) type Raw = socket2::SockAddr;

/// Offset of `sun_path` in `sockaddr_un`.
pub(crate) const SUN_PATH_OFFSET: usize = offset_of!(sockaddr_un, sun_path);

/// The capacity of `sun_path` (the last field, a byte array: no tail padding follows it).
pub(crate) const fn sun_path_len() -> usize {
    size_of::<sockaddr_un>() - SUN_PATH_OFFSET
}

/// Offset of the family field of a `sockaddr` (after `sa_len` where there is one).
const FAMILY_START: usize = offset_of!(sockaddr, sa_family);

/// Offset of the first byte after the family field of a `sockaddr`.
const FAMILY_END: usize = FAMILY_START + size_of::<sa_family_t>();

/// The largest address: a `sockaddr_storage`.
const STORAGE: usize = size_of::<sockaddr_storage>();

/// Encodes `addr` for the kernel.
pub(crate) fn encode(addr: &SockAddr) -> Result<Raw> {
    Ok(match addr {
        SockAddr::V4(a) => Raw::from(*a),
        // Our flowinfo is in host order and travels in network order; socket2 copies it as is.
        SockAddr::V6(a) => Raw::from(SocketAddrV6::new(
            *a.ip(),
            a.port(),
            a.flowinfo().to_be(),
            a.scope_id(),
        )),
        SockAddr::Unix(u) => sys::with_sa_len(unix(u)?),
        SockAddr::Other { family, data } => sys::with_sa_len(other(*family, data)?),
    })
}

/// A unix address through `socket2::SockAddr::unix`, which reads an empty path as the unnamed
/// address and a leading NUL as an abstract name (whose length then counts no trailing NUL).
fn unix(u: &UnixAddr) -> Result<Raw> {
    let owned: Vec<u8>;
    let bytes: &[u8] = match u {
        UnixAddr::Unnamed => &[],
        UnixAddr::Path(p) if p.first().is_some_and(|&b| b != 0) => p,
        // An empty path or one starting with NUL keeps its terminating NUL, as in C.
        UnixAddr::Path(p) => {
            owned = [p.as_slice(), &[0]].concat();
            &owned
        }
        UnixAddr::Abstract(n) => {
            owned = [&[0], n.as_slice()].concat();
            &owned
        }
    };
    // A path needs room for its terminating NUL, an abstract name for its leading one: EINVAL.
    Raw::unix(Path::new(OsStr::from_bytes(bytes))).map_err(|_| Errno::EINVAL)
}

/// An address of a family socket2 has no constructor for: the family, then `data` verbatim.
fn other(family: Family, data: &[u8]) -> Result<Raw> {
    let len = FAMILY_END + data.len();
    if len > STORAGE {
        return Err(Errno::EINVAL);
    }
    let mut bytes = [0u8; STORAGE];
    bytes[FAMILY_START..FAMILY_END].copy_from_slice(&(family.raw() as sa_family_t).to_ne_bytes());
    bytes[FAMILY_END..len].copy_from_slice(data);
    Ok(from_bytes(&bytes[..len]))
}

/// A `socket2::SockAddr` holding a copy of `bytes`, a C `sockaddr` of that length (at most a
/// `sockaddr_storage`: longer input is cut).
pub(crate) fn from_bytes(bytes: &[u8]) -> Raw {
    let len = bytes.len().min(STORAGE);
    // SAFETY: `init` writes `len` bytes into the zeroed storage, which holds STORAGE >= len
    // bytes, and reports exactly that length as initialised.
    let made = unsafe {
        Raw::try_init(|storage, socklen| {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), storage.cast::<u8>(), len);
            *socklen = len as socklen_t;
            Ok(())
        })
    };
    match made {
        Ok(((), raw)) => raw,
        Err(_) => unreachable!("the initialiser above cannot fail"),
    }
}

/// The bytes of `raw` up to its length.
pub(crate) fn bytes(raw: &Raw) -> &[u8] {
    let len = (raw.len() as usize).min(STORAGE);
    // SAFETY: the storage is a live sockaddr_storage of STORAGE >= len bytes, all initialised
    // (socket2 zero-fills it before anything writes an address).
    unsafe { std::slice::from_raw_parts(raw.as_ptr().cast::<u8>(), len) }
}

/// Decodes what the kernel reported.
pub(crate) fn decode(raw: &Raw) -> SockAddr {
    let bytes = bytes(raw);
    if bytes.len() < FAMILY_END {
        // Only an unbound unix socket reports (almost) nothing.
        return SockAddr::Unix(UnixAddr::Unnamed);
    }
    if let Some(a) = raw.as_socket_ipv4() {
        return SockAddr::V4(a);
    }
    if let Some(a) = raw.as_socket_ipv6() {
        // socket2 gives sin6_flowinfo as stored, in network order.
        return SockAddr::V6(SocketAddrV6::new(
            *a.ip(),
            a.port(),
            u32::from_be(a.flowinfo()),
            a.scope_id(),
        ));
    }
    let family = i32::from(raw.family());
    if family != libc::AF_UNIX {
        return SockAddr::Other {
            family: Family(family),
            data: bytes[FAMILY_END..].to_vec(),
        };
    }
    // Our own reading of sun_path: socket2's counts a terminating NUL in the reported length,
    // which the BSDs (reporting the whole zero-padded field) do not.
    let path = &bytes[SUN_PATH_OFFSET.min(bytes.len())..];
    SockAddr::Unix(match path {
        [] | [0] => UnixAddr::Unnamed,
        [0, name @ ..] => UnixAddr::Abstract(name.to_vec()),
        _ => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            UnixAddr::Path(path[..end].to_vec())
        }
    })
}

/// Decodes a C socket address of `len` reported bytes.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes (or of a `sockaddr_storage`, if that is less).
pub(crate) unsafe fn decode_ptr(ptr: *const sockaddr, len: usize) -> SockAddr {
    // SAFETY: per the function contract.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len.min(STORAGE)) };
    decode(&from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn round_trip(a: &SockAddr) -> (SockAddr, usize) {
        let raw = encode(a).unwrap();
        (decode(&raw), raw.len() as usize)
    }

    #[test]
    fn ip_addresses_round_trip() {
        let v4 = SockAddr::v4(Ipv4Addr::new(10, 1, 2, 3), 8080);
        assert_eq!(round_trip(&v4), (v4, size_of::<libc::sockaddr_in>()));
        let v6 = SockAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 7, 3));
        assert_eq!(round_trip(&v6), (v6, size_of::<libc::sockaddr_in6>()));
    }

    #[test]
    fn ipv6_flowinfo_is_in_network_order_and_scope_in_host_order() {
        let v6 = SockAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0x0102_0304, 5));
        let raw = encode(&v6).unwrap();
        let b = bytes(&raw);
        let flow = offset_of!(libc::sockaddr_in6, sin6_flowinfo);
        let scope = offset_of!(libc::sockaddr_in6, sin6_scope_id);
        assert_eq!(b[flow..flow + 4], [1, 2, 3, 4]);
        assert_eq!(b[scope..scope + 4], 5u32.to_ne_bytes());
    }

    #[test]
    fn unix_lengths_follow_the_kernel() {
        let p = SockAddr::unix_path("/tmp/x");
        assert_eq!(round_trip(&p), (p, SUN_PATH_OFFSET + 6 + 1));
        let a = SockAddr::unix_abstract(&b"ab\0c"[..]);
        assert_eq!(round_trip(&a), (a, SUN_PATH_OFFSET + 1 + 4));
        let u = SockAddr::Unix(UnixAddr::Unnamed);
        assert_eq!(round_trip(&u), (u, SUN_PATH_OFFSET));
        let cap = sun_path_len();
        assert!(encode(&SockAddr::unix_path(vec![b'a'; cap - 1])).is_ok());
        assert_eq!(
            encode(&SockAddr::unix_path(vec![b'a'; cap])).err(),
            Some(Errno::EINVAL)
        );
        assert!(encode(&SockAddr::unix_abstract(vec![b'a'; cap - 1])).is_ok());
        assert_eq!(
            encode(&SockAddr::unix_abstract(vec![b'a'; cap])).err(),
            Some(Errno::EINVAL)
        );
    }

    #[test]
    fn unix_bytes_are_exact() {
        let raw = encode(&SockAddr::unix_abstract(&b"x\0y"[..])).unwrap();
        assert_eq!(bytes(&raw)[SUN_PATH_OFFSET..], *b"\0x\0y");
        // An empty path and a path starting with NUL keep their terminating NUL.
        let empty = encode(&SockAddr::Unix(UnixAddr::Path(Vec::new()))).unwrap();
        assert_eq!(bytes(&empty)[SUN_PATH_OFFSET..], *b"\0");
        let nul = encode(&SockAddr::Unix(UnixAddr::Path(b"\0ab".to_vec()))).unwrap();
        assert_eq!(bytes(&nul)[SUN_PATH_OFFSET..], *b"\0ab\0");
        let cap = sun_path_len();
        assert_eq!(
            encode(&SockAddr::Unix(UnixAddr::Path(vec![0; cap]))).err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(sun_path_len(), zeroed_sun().sun_path.len());
    }

    /// A zeroed `sockaddr_un` (its bytes through a socket2 address).
    fn zeroed_sun() -> sockaddr_un {
        let raw = from_bytes(&[0u8; size_of::<sockaddr_un>()]);
        let mut st = raw.as_storage();
        // SAFETY: sockaddr_un is one of this platform's sockaddr types (view_as's contract).
        *unsafe { st.view_as::<sockaddr_un>() }
    }

    #[test]
    fn other_families_carry_their_bytes() {
        let o = SockAddr::Other {
            family: Family(1234),
            data: vec![9, 8, 7],
        };
        assert_eq!(round_trip(&o), (o, FAMILY_END + 3));
        let too_long = SockAddr::Other {
            family: Family(1234),
            data: vec![0; STORAGE],
        };
        assert_eq!(encode(&too_long).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn decoding_never_reads_past_the_reported_length() {
        let raw = encode(&SockAddr::unix_path("/tmp/abc")).unwrap();
        let b = bytes(&raw);
        // A length cut inside the path keeps only the reported bytes.
        let cut = decode(&from_bytes(&b[..SUN_PATH_OFFSET + 3]));
        assert_eq!(cut, SockAddr::unix_path("/tm"));
        let none = decode(&from_bytes(&b[..SUN_PATH_OFFSET]));
        assert_eq!(none, SockAddr::Unix(UnixAddr::Unnamed));
        // SAFETY: `b` is valid for its whole length, more than the one used.
        let one = unsafe { decode_ptr(b.as_ptr().cast(), SUN_PATH_OFFSET + 1) };
        assert_eq!(one, SockAddr::unix_path("/"));
    }

    mod fuzz {
        //! Property tests of the conversion of socket addresses, the bytes the kernel
        //! hands back included: decoding any byte string never panics and never reads
        //! past the reported length; every address we can encode decodes back exactly.
        use super::super::*;
        use proptest::prelude::*;
        use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

        fn name(max: usize) -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(any::<u8>(), 1..max)
        }

        fn addr() -> impl Strategy<Value = SockAddr> {
            let max = sun_path_len(); // bytes of sun_path, NUL included
            prop_oneof![
                (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SockAddr::V4(
                    SocketAddrV4::new(Ipv4Addr::from(ip), port)
                )),
                (any::<u128>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(
                    |(ip, port, flow, scope)| SockAddr::V6(SocketAddrV6::new(
                        Ipv6Addr::from(ip),
                        port,
                        flow & 0x000f_ffff,
                        scope
                    ))
                ),
                name(max - 1).prop_map(|mut p| {
                    p.retain(|&b| b != 0);
                    if p.is_empty() {
                        p.push(b'x');
                    }
                    SockAddr::unix_path(p)
                }),
                Just(SockAddr::Unix(UnixAddr::Unnamed)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn decoding_any_bytes_is_in_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let raw = from_bytes(&bytes);
                prop_assert!(super::super::bytes(&raw).len() <= bytes.len());
                let _ = decode(&raw);
                // SAFETY: `bytes` is valid for its whole length.
                let _ = unsafe { decode_ptr(bytes.as_ptr().cast(), bytes.len()) };
            }

            #[test]
            fn every_encodable_address_decodes_back(a in addr()) {
                let raw = encode(&a).unwrap();
                prop_assert_eq!(decode(&raw), a);
            }
        }

        #[cfg(linuxlike)]
        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn abstract_names_are_bytes_end_to_end(n in name(sun_path_len() - 1)) {
                let a = SockAddr::unix_abstract(n);
                let raw = encode(&a).unwrap();
                prop_assert_eq!(decode(&raw), a);
            }
        }
    }
}
