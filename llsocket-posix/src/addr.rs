//! [`SockAddr`] <-> C `sockaddr_storage` translation.
//!
//! Encoding zero-fills the storage and returns the exact length the kernel
//! expects; decoding copies at most the reported length into a zeroed storage
//! first, so it never reads past what the kernel (or `getifaddrs`) reported.

use std::mem::{offset_of, size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use libc::{
    sa_family_t, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_storage, sockaddr_un, socklen_t,
};
use llsocket_api::{Errno, Family, Result, SockAddr, UnixAddr};

use crate::sys;

/// A C socket address with its length, ready for `bind`, `connect`, `sendto`, ...
pub(crate) struct RawAddr {
    /// The zero-filled storage.
    pub(crate) storage: sockaddr_storage,
    /// The meaningful length.
    pub(crate) len: socklen_t,
}

impl RawAddr {
    /// An all-zero storage with the full capacity as length (for the kernel to fill).
    pub(crate) fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            storage: unsafe { zeroed() },
            len: size_of::<sockaddr_storage>() as socklen_t,
        }
    }

    /// The storage as a `sockaddr` pointer.
    pub(crate) fn as_ptr(&self) -> *const sockaddr {
        (&self.storage as *const sockaddr_storage).cast()
    }

    /// The storage as a mutable `sockaddr` pointer.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut sockaddr {
        (&mut self.storage as *mut sockaddr_storage).cast()
    }

    /// Decodes what the kernel wrote (`len` as it reported it).
    pub(crate) fn decode(&self) -> SockAddr {
        let len = (self.len as usize).min(size_of::<sockaddr_storage>());
        // SAFETY: the storage is a live sockaddr_storage of at least `len` bytes.
        unsafe { decode(self.as_ptr(), len) }
    }
}

/// Offset of `sun_path` in `sockaddr_un`.
pub(crate) const SUN_PATH_OFFSET: usize = offset_of!(sockaddr_un, sun_path);

/// The capacity of `sun_path`.
pub(crate) fn sun_path_len() -> usize {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let un: sockaddr_un = unsafe { zeroed() };
    un.sun_path.len()
}

/// Offset of the first byte after the family field of a `sockaddr`.
const FAMILY_END: usize = offset_of!(sockaddr, sa_family) + size_of::<sa_family_t>();

/// Encodes `addr` into a zero-filled storage.
pub(crate) fn encode(addr: &SockAddr) -> Result<RawAddr> {
    let mut raw = RawAddr::empty();
    let len = match addr {
        SockAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *(raw.as_mut_ptr().cast::<sockaddr_in>()) };
            sin.sin_family = libc::AF_INET as sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            size_of::<sockaddr_in>()
        }
        SockAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(raw.as_mut_ptr().cast::<sockaddr_in6>()) };
            sin6.sin6_family = libc::AF_INET6 as sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<sockaddr_in6>()
        }
        SockAddr::Unix(u) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_un.
            let sun = unsafe { &mut *(raw.as_mut_ptr().cast::<sockaddr_un>()) };
            sun.sun_family = libc::AF_UNIX as sa_family_t;
            let (bytes, skip): (&[u8], usize) = match u {
                UnixAddr::Unnamed => (&[], 0),
                UnixAddr::Path(p) => (p, 0),
                UnixAddr::Abstract(n) => (n, 1),
            };
            // A path needs room for its terminating NUL, an abstract name for its leading one.
            let cap = sun.sun_path.len();
            let too_long = match u {
                UnixAddr::Unnamed => false,
                UnixAddr::Path(p) => p.len() >= cap,
                UnixAddr::Abstract(n) => 1 + n.len() > cap,
            };
            if too_long {
                return Err(Errno::EINVAL);
            }
            for (dst, src) in sun.sun_path[skip..].iter_mut().zip(bytes) {
                *dst = *src as libc::c_char;
            }
            match u {
                UnixAddr::Unnamed => SUN_PATH_OFFSET,
                UnixAddr::Path(p) => SUN_PATH_OFFSET + p.len() + 1,
                UnixAddr::Abstract(n) => SUN_PATH_OFFSET + 1 + n.len(),
            }
        }
        SockAddr::Other { family, data } => {
            if FAMILY_END + data.len() > size_of::<sockaddr_storage>() {
                return Err(Errno::EINVAL);
            }
            // SAFETY: the storage is a live sockaddr_storage; the bound was checked above.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(
                    raw.as_mut_ptr().cast::<u8>(),
                    size_of::<sockaddr_storage>(),
                )
            };
            bytes[FAMILY_END..FAMILY_END + data.len()].copy_from_slice(data);
            raw.storage.ss_family = family.raw() as sa_family_t;
            FAMILY_END + data.len()
        }
    };
    raw.len = len as socklen_t;
    sys::set_sa_len(&mut raw);
    Ok(raw)
}

/// Decodes a C socket address of `len` reported bytes.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes.
pub(crate) unsafe fn decode(ptr: *const sockaddr, len: usize) -> SockAddr {
    let len = len.min(size_of::<sockaddr_storage>());
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: sockaddr_storage = unsafe { zeroed() };
    // SAFETY: the caller guarantees `len` readable bytes; the storage holds at least `len`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            ptr.cast::<u8>(),
            (&mut storage as *mut sockaddr_storage).cast::<u8>(),
            len,
        );
    }
    if len < FAMILY_END {
        // Only an unbound unix socket reports (almost) nothing.
        return SockAddr::Unix(UnixAddr::Unnamed);
    }
    let family = i32::from(storage.ss_family);
    let base = (&storage as *const sockaddr_storage).cast::<u8>();
    match family {
        libc::AF_INET => {
            // SAFETY: the storage is aligned and large enough for sockaddr_in (zero-filled beyond len).
            let sin = unsafe { &*(base.cast::<sockaddr_in>()) };
            SockAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the storage is aligned and large enough for sockaddr_in6 (zero-filled beyond len).
            let sin6 = unsafe { &*(base.cast::<sockaddr_in6>()) };
            SockAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            ))
        }
        libc::AF_UNIX => {
            if len <= SUN_PATH_OFFSET {
                return SockAddr::Unix(UnixAddr::Unnamed);
            }
            // SAFETY: the storage holds sockaddr_storage bytes, of which `len` are meaningful.
            let bytes = unsafe { std::slice::from_raw_parts(base, len) };
            let path = &bytes[SUN_PATH_OFFSET..len];
            if path[0] == 0 {
                if path.len() > 1 {
                    return SockAddr::Unix(UnixAddr::Abstract(path[1..].to_vec()));
                }
                return SockAddr::Unix(UnixAddr::Unnamed);
            }
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            SockAddr::Unix(UnixAddr::Path(path[..end].to_vec()))
        }
        _ => {
            // SAFETY: as above; `len` bytes are meaningful.
            let bytes = unsafe { std::slice::from_raw_parts(base, len) };
            SockAddr::Other {
                family: Family(family),
                data: bytes[FAMILY_END..].to_vec(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(a: &SockAddr) -> (SockAddr, usize) {
        let raw = encode(a).unwrap();
        (raw.decode(), raw.len as usize)
    }

    #[test]
    fn ip_addresses_round_trip() {
        let v4 = SockAddr::v4(Ipv4Addr::new(10, 1, 2, 3), 8080);
        assert_eq!(round_trip(&v4), (v4, size_of::<sockaddr_in>()));
        let v6 = SockAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 7, 3));
        assert_eq!(round_trip(&v6), (v6, size_of::<sockaddr_in6>()));
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
    fn decoding_never_reads_past_the_reported_length() {
        let raw = encode(&SockAddr::unix_path("/tmp/abc")).unwrap();
        // A length cut inside the path keeps only the reported bytes.
        // SAFETY: the storage is larger than every length used.
        let cut = unsafe { decode(raw.as_ptr(), SUN_PATH_OFFSET + 3) };
        assert_eq!(cut, SockAddr::unix_path("/tm"));
        // SAFETY: as above.
        let none = unsafe { decode(raw.as_ptr(), SUN_PATH_OFFSET) };
        assert_eq!(none, SockAddr::Unix(UnixAddr::Unnamed));
    }
}
