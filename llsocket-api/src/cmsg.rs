//! Control messages (ancillary data) and the platform's native packed layout.
//!
//! [`CmsgBuf`] is a byte buffer in exactly the layout the kernel reads and
//! writes (`struct cmsghdr` headers, data, padding to `CMSG_SPACE`), so the
//! Lua `cmsghdrs` object can hand it to `sendmsg` verbatim. Parsing never
//! trusts `cmsg_len`: a header shorter than `CMSG_LEN(0)` or longer than the
//! bytes that remain ends the walk.
//!
//! The layout is computed, not taken from `libc::CMSG_*` (which are `unsafe fn`):
//! the header is `size_of::<libc::cmsghdr>()` bytes whose first field,
//! `cmsg_len`, fills what `cmsg_level` and `cmsg_type` leave, and data are
//! aligned to 4 bytes on Apple platforms and to the pointer size elsewhere.
//! `llsocket-posix` checks these numbers against the C macros in its tests.

use std::mem::size_of;

use crate::types::Fd;

/// One control message: level, type and data bytes.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Cmsg {
    /// `cmsg_level` (`SOL_SOCKET` for descriptors).
    pub level: i32,
    /// `cmsg_type` (`SCM_RIGHTS` for descriptors).
    pub ty: i32,
    /// The data bytes.
    pub data: Vec<u8>,
}

impl Cmsg {
    /// An `SCM_RIGHTS` message carrying descriptors as native C `int`s.
    pub fn rights(fds: &[Fd]) -> Cmsg {
        let data = fds.iter().flat_map(|fd| fd.0.to_ne_bytes()).collect();
        Cmsg {
            level: libc::SOL_SOCKET,
            ty: libc::SCM_RIGHTS,
            data,
        }
    }

    /// Whether this is an `SCM_RIGHTS` message.
    pub fn is_rights(&self) -> bool {
        self.level == libc::SOL_SOCKET && self.ty == libc::SCM_RIGHTS
    }

    /// The descriptors of an `SCM_RIGHTS` message (`floor(len / 4)` of them;
    /// trailing bytes ignored), `None` for other messages.
    pub fn fds(&self) -> Option<Vec<Fd>> {
        self.is_rights().then(|| decode_fds(&self.data))
    }
}

/// Decodes native C `int`s (trailing bytes ignored).
pub fn decode_fds(data: &[u8]) -> Vec<Fd> {
    data.chunks_exact(4)
        .map(|c| Fd(i32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

const HDR_SIZE: usize = size_of::<libc::cmsghdr>();
const LEN_WIDTH: usize = HDR_SIZE - 2 * size_of::<libc::c_int>();
#[cfg(target_vendor = "apple")]
const ALIGN: usize = 4;
#[cfg(not(target_vendor = "apple"))]
const ALIGN: usize = size_of::<usize>();

/// `CMSG_ALIGN(n)`.
pub const fn align(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

/// `CMSG_LEN(data_len)`: header plus data, no trailing padding.
pub const fn cmsg_len(data_len: usize) -> usize {
    align(HDR_SIZE) + data_len
}

/// `CMSG_SPACE(data_len)`: header plus data plus padding.
pub const fn cmsg_space(data_len: usize) -> usize {
    align(HDR_SIZE) + align(data_len)
}

/// Writes one message in native layout into `out`, which must be exactly
/// `cmsg_space(data.len())` bytes (padding zeroed). Returns `false` (writing
/// nothing) when `out` has another length or the length does not fit `cmsg_len`.
pub fn encode_at(out: &mut [u8], level: i32, ty: i32, data: &[u8]) -> bool {
    let len = cmsg_len(data.len());
    if out.len() != cmsg_space(data.len()) || (LEN_WIDTH == 4 && len > u32::MAX as usize) {
        return false;
    }
    out.fill(0);
    match LEN_WIDTH {
        8 => out[..8].copy_from_slice(&(len as u64).to_ne_bytes()),
        _ => out[..4].copy_from_slice(&(len as u32).to_ne_bytes()),
    }
    out[LEN_WIDTH..LEN_WIDTH + 4].copy_from_slice(&level.to_ne_bytes());
    out[LEN_WIDTH + 4..LEN_WIDTH + 8].copy_from_slice(&ty.to_ne_bytes());
    let data_at = align(HDR_SIZE);
    out[data_at..data_at + data.len()].copy_from_slice(data);
    true
}

/// `CMSG_SPACE(data_len)` if it fits a `usize`.
pub const fn checked_space(data_len: usize) -> Option<usize> {
    match data_len.checked_add(align(HDR_SIZE) + ALIGN - 1) {
        Some(_) => Some(cmsg_space(data_len)),
        None => None,
    }
}

/// Appends one message in native layout (padding zeroed).
pub fn encode_into(out: &mut Vec<u8>, msg: &Cmsg) {
    let start = out.len();
    out.resize(start + cmsg_space(msg.data.len()), 0);
    encode_at(&mut out[start..], msg.level, msg.ty, &msg.data);
}

/// Encodes a list of messages.
pub fn encode(msgs: &[Cmsg]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode_into(&mut out, m);
    }
    out
}

/// One message borrowed from a buffer: level, type, data, and the bytes it occupies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CmsgRef<'a> {
    /// `cmsg_level`.
    pub level: i32,
    /// `cmsg_type`.
    pub ty: i32,
    /// The data bytes (`cmsg_len - CMSG_LEN(0)` of them).
    pub data: &'a [u8],
    /// Bytes the message occupies: its `CMSG_SPACE`, clamped to what remains.
    pub used: usize,
}

/// Reads the first message of `buf` without copying, bounds-checked: `None` when no
/// complete, valid header is there (`cmsg_len` shorter than a header or longer than
/// the bytes that remain).
pub fn decode_first_ref(buf: &[u8]) -> Option<CmsgRef<'_>> {
    if buf.len() < cmsg_len(0) {
        return None;
    }
    let len = match LEN_WIDTH {
        8 => u64::from_ne_bytes(buf[..8].try_into().ok()?),
        _ => u64::from(u32::from_ne_bytes(buf[..4].try_into().ok()?)),
    };
    let len = usize::try_from(len).ok()?;
    if len < cmsg_len(0) || len > buf.len() {
        return None;
    }
    let level = i32::from_ne_bytes(buf[LEN_WIDTH..LEN_WIDTH + 4].try_into().ok()?);
    let ty = i32::from_ne_bytes(buf[LEN_WIDTH + 4..LEN_WIDTH + 8].try_into().ok()?);
    let data = &buf[cmsg_len(0)..len];
    let used = cmsg_space(data.len()).min(buf.len());
    Some(CmsgRef {
        level,
        ty,
        data,
        used,
    })
}

/// Reads the first message of `buf`, bounds-checked. Returns the message and
/// how many bytes it occupies (its `CMSG_SPACE`, clamped to what remains), or
/// `None` when no complete, valid header is there.
pub fn decode_first(buf: &[u8]) -> Option<(Cmsg, usize)> {
    decode_first_ref(buf).map(|m| {
        (
            Cmsg {
                level: m.level,
                ty: m.ty,
                data: m.data.to_vec(),
            },
            m.used,
        )
    })
}

/// Decodes every valid message of `buf`, stopping at the first invalid header.
pub fn decode(buf: &[u8]) -> Vec<Cmsg> {
    let mut out = Vec::new();
    let mut rest = buf;
    while let Some((m, used)) = decode_first(rest) {
        out.push(m);
        rest = &rest[used..];
    }
    out
}

/// A packed control-message buffer with a used length (the Lua `cmsghdrs`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CmsgBuf {
    bytes: Vec<u8>,
}

impl CmsgBuf {
    /// An empty buffer.
    pub fn new() -> CmsgBuf {
        CmsgBuf::default()
    }

    /// Wraps bytes received from the kernel.
    pub fn from_bytes(bytes: Vec<u8>) -> CmsgBuf {
        CmsgBuf { bytes }
    }

    /// Appends one message (`cmsgs:push`).
    pub fn push(&mut self, msg: &Cmsg) {
        encode_into(&mut self.bytes, msg);
    }

    /// Removes and returns the first message (`cmsgs:shift`); `None` when the
    /// buffer holds no valid header. An invalid header empties the buffer.
    pub fn shift(&mut self) -> Option<Cmsg> {
        match decode_first(&self.bytes) {
            Some((m, used)) => {
                self.bytes.drain(..used);
                Some(m)
            }
            None => {
                self.bytes.clear();
                None
            }
        }
    }

    /// The used bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The used bytes, mutable (a receive area).
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Sets the used length (after a receive); never grows past the allocation's content.
    pub fn truncate(&mut self, len: usize) {
        self.bytes.truncate(len);
    }

    /// The used length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether no bytes are used.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_several_messages() {
        let a = Cmsg {
            level: 1,
            ty: 2,
            data: b"foo".to_vec(),
        };
        let b = Cmsg::rights(&[Fd(3), Fd(4)]);
        let mut buf = CmsgBuf::new();
        buf.push(&a);
        buf.push(&b);
        assert_eq!(buf.len(), cmsg_space(3) + cmsg_space(8));
        assert_eq!(buf.shift(), Some(a));
        let got = buf.shift().unwrap();
        assert_eq!(got.fds(), Some(vec![Fd(3), Fd(4)]));
        assert_eq!(buf.shift(), None);
    }

    #[test]
    fn lying_cmsg_len_is_not_trusted() {
        let mut bytes = encode(&[Cmsg {
            level: 1,
            ty: 2,
            data: vec![7; 4],
        }]);
        bytes[0] = 0xff; // cmsg_len beyond the buffer
        assert_eq!(decode(&bytes), vec![]);
        let mut short = encode(&[Cmsg {
            level: 1,
            ty: 2,
            data: vec![],
        }]);
        short[0] = 1; // shorter than a header
        assert!(decode_first(&short).is_none());
        assert!(decode_first(&[0u8; 3]).is_none());
    }

    #[test]
    fn unpadded_last_message_is_accepted() {
        let mut bytes = encode(&[Cmsg {
            level: 1,
            ty: 2,
            data: vec![9],
        }]);
        bytes.truncate(cmsg_len(1));
        let mut buf = CmsgBuf::from_bytes(bytes);
        assert_eq!(buf.shift().unwrap().data, vec![9]);
        assert!(buf.is_empty());
    }

    mod fuzz {
        //! Property tests of the codec on untrusted bytes: whatever a kernel, a peer or a
        //! Lua program puts in a control buffer, decoding never reads past it, never
        //! panics, and what encoding writes decodes back exactly.
        use super::super::*;
        use proptest::prelude::*;

        fn msg() -> impl Strategy<Value = Cmsg> {
            (
                any::<i32>(),
                any::<i32>(),
                proptest::collection::vec(any::<u8>(), 0..64),
            )
                .prop_map(|(level, ty, data)| Cmsg { level, ty, data })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn decoding_arbitrary_bytes_stays_in_bounds(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
                let mut rest = &buf[..];
                let mut walked = 0;
                while let Some(m) = decode_first_ref(rest) {
                    prop_assert!(m.used > 0 && m.used <= rest.len());
                    prop_assert!(cmsg_len(m.data.len()) <= rest.len());
                    walked += m.used;
                    rest = &rest[m.used..];
                }
                prop_assert!(walked <= buf.len());
                let mut b = CmsgBuf::from_bytes(buf.clone());
                let mut n = 0;
                while b.shift().is_some() {
                    n += 1;
                }
                prop_assert!(b.is_empty());
                prop_assert_eq!(n, decode(&buf).len());
            }

            #[test]
            fn what_is_encoded_decodes_back(msgs in proptest::collection::vec(msg(), 0..8)) {
                let bytes = encode(&msgs);
                prop_assert_eq!(bytes.len(), msgs.iter().map(|m| cmsg_space(m.data.len())).sum::<usize>());
                prop_assert_eq!(decode(&bytes), msgs.clone());
                let mut b = CmsgBuf::new();
                for m in &msgs {
                    b.push(m);
                }
                prop_assert_eq!(b.as_bytes(), &bytes[..]);
                for m in &msgs {
                    let got = b.shift();
                    prop_assert_eq!(got.as_ref(), Some(m));
                }
                prop_assert!(b.shift().is_none());
            }

            #[test]
            fn a_truncated_or_corrupted_buffer_never_yields_foreign_bytes(
                msgs in proptest::collection::vec(msg(), 1..4),
                cut in any::<prop::sample::Index>(),
                flip in any::<prop::sample::Index>(),
                byte in any::<u8>(),
            ) {
                let mut bytes = encode(&msgs);
                let at = flip.index(bytes.len());
                bytes[at] = byte;
                let len = cut.index(bytes.len() + 1);
                for m in decode(&bytes[..len]) {
                    prop_assert!(cmsg_len(m.data.len()) <= len);
                }
            }

            #[test]
            fn encode_at_writes_exactly_its_space(level in any::<i32>(), ty in any::<i32>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
                let mut out = vec![0xAAu8; cmsg_space(data.len())];
                prop_assert!(encode_at(&mut out, level, ty, &data));
                let m = decode_first_ref(&out).unwrap();
                prop_assert_eq!((m.level, m.ty, m.data, m.used), (level, ty, &data[..], out.len()));
                let mut wrong = vec![0u8; cmsg_space(data.len()) + 1];
                prop_assert!(!encode_at(&mut wrong, level, ty, &data));
                prop_assert_eq!(checked_space(data.len()), Some(cmsg_space(data.len())));
            }
        }

        #[test]
        fn checked_space_refuses_what_overflows() {
            assert_eq!(checked_space(usize::MAX), None);
            assert_eq!(checked_space(usize::MAX - 3), None);
        }
    }
}
