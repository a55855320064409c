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

/// `Ntop6` (every textual IPv6 address: `ai:addr()`, interface records, the simulator)
/// prints like the C library's `inet_ntop`. Compared with glibc's; musl prints
/// IPv4-compatible addresses in hex, so the comparison runs on glibc only.
#[cfg(target_env = "gnu")]
mod ntop_matches_glibc {
    use llsocket_api::addr::Ntop6;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    extern "C" {
        fn inet_ntop(
            af: libc::c_int,
            src: *const libc::c_void,
            dst: *mut libc::c_char,
            size: libc::socklen_t,
        ) -> *const libc::c_char;
    }

    fn glibc(ip: &Ipv6Addr) -> String {
        let mut buf = [0 as libc::c_char; 64];
        let octets = ip.octets();
        // SAFETY: `octets` is a 16-byte in6_addr image and `buf` has 64 bytes (>= 46).
        let p = unsafe {
            inet_ntop(
                libc::AF_INET6,
                octets.as_ptr().cast(),
                buf.as_mut_ptr(),
                buf.len() as libc::socklen_t,
            )
        };
        assert!(!p.is_null());
        // SAFETY: on success `buf` holds a NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn every_address_prints_like_glibc(groups in proptest::collection::vec(
            prop_oneof![3 => Just(0u16), 1 => Just(0xffffu16), 2 => any::<u16>()], 8)) {
            let mut w = [0u16; 8];
            w.copy_from_slice(&groups);
            let ip = Ipv6Addr::from(w);
            prop_assert_eq!(Ntop6(ip).to_string(), glibc(&ip));
        }
    }
}
