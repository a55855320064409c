//! The trace and its digest: one event per operation (with its arguments and everything the
//! call let the program observe) and per thing the wire did, folded into a 64-bit digest.
//!
//! An event is built field by field ([`Event`]) and each field is folded into the event's hash
//! as it is added (FNV-1a over 64-bit words; one word per field, its kind tag added in), from a
//! fixed-width little-endian encoding of its value: integers as `u64`, addresses as their
//! octets, port, flow info and scope id, byte strings as 8-byte little-endian words with their
//! length, text (option values, resolver answers) as its UTF-8 bytes. A payload is hashed on a
//! chain of its own and enters the event as one word. Each finished event goes through a
//! bijective finaliser (murmur3's) and is folded into the world's digest. Nothing is hashed
//! through `usize`, pointers, native byte order, `std`'s `DefaultHasher` or `RandomState`,
//! and the arithmetic is wrapping, so the digest is the same on every architecture and build
//! profile. Every step is a bijection of the state for a fixed input and injective in the
//! input for a fixed state, so one changed word (a port, a payload byte) always changes the
//! digest when the rest of the run is the same.
//!
//! When the trace is kept the fields are stored too, in one byte arena (a name byte, a kind
//! byte, a compact value: a descriptor is one byte, a payload hash eight; IPv6 and unix
//! addresses, texts, descriptor lists and payloads in side tables); when it is not, only
//! the hashing runs. Payload bytes are stored only when asked for
//! ([`crate::SimBuilder::trace_payloads`]); the digest covers them either way.

use std::fmt::{self, Write as _};
use std::time::Duration;

use llsocket_api::{Errno, Family, Fd, Interest, MsgFlags, SockAddr, SockType, UnixAddr};

use crate::types::Nanos;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Folds one 64-bit word into a hash (FNV-1a, a word at a time). For a fixed state,
/// different words give different states, and for a fixed word it is a bijection of the
/// state: a changed word always changes the final digest when everything after it is the
/// same. A multiplication only carries changes upwards; [`fin`] spreads them at the end of
/// each event (and of each payload hash).
#[inline(always)]
fn mix(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(FNV_PRIME)
}

/// Finalises a hash: a bijection that lets every bit reach every other (the murmur3 mixer).
#[inline(always)]
fn fin(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Folds bytes into a hash: 8-byte little-endian words, then the rest (0 to 7 bytes)
/// zero-padded with the length (mod 256) in the top byte.
#[inline]
fn fold_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    // (Byte by byte: a short variable-length copy would be a `memcpy` call.)
    let mut last = (bytes.len() as u64) << 56;
    for (i, &b) in chunks.remainder().iter().enumerate() {
        last ^= u64::from(b) << (8 * i);
    }
    mix(h, last)
}

/// A streaming version of [`fold_bytes`] for text written through `fmt` (same result as
/// folding the whole string at once), so text is hashed without being allocated.
struct TextFold {
    h: u64,
    word: [u8; 8],
    n: usize,
    len: u64,
    /// The text itself, when the trace keeps it.
    keep: Option<String>,
}

impl fmt::Write for TextFold {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(k) = &mut self.keep {
            k.push_str(s);
        }
        self.len += s.len() as u64;
        for &b in s.as_bytes() {
            self.word[self.n] = b;
            self.n += 1;
            if self.n == 8 {
                self.h = mix(self.h, u64::from_le_bytes(self.word));
                self.n = 0;
            }
        }
        Ok(())
    }
}

impl TextFold {
    fn finish(mut self) -> (u64, Option<String>) {
        self.word[self.n..].fill(0);
        self.word[7] ^= self.len as u8;
        (mix(self.h, u64::from_le_bytes(self.word)), self.keep)
    }
}

/// Folds an address: a variant tag, then fixed-width fields.
fn fold_addr(h: u64, a: &SockAddr) -> u64 {
    match a {
        SockAddr::V4(a) => mix(
            h,
            tagged(
                T_ADDR,
                (u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port()),
            ),
        ),
        SockAddr::V6(a) => {
            let ip = u128::from(*a.ip());
            let h = mix(
                mix(mix(h, tagged(T_ADDR, 6 << 48)), (ip >> 64) as u64),
                ip as u64,
            );
            let h = mix(h, u64::from(a.port()));
            mix(h, (u64::from(a.flowinfo()) << 32) | u64::from(a.scope_id()))
        }
        SockAddr::Unix(UnixAddr::Unnamed) => mix(h, tagged(T_ADDR, 1 << 48)),
        SockAddr::Unix(UnixAddr::Path(p)) => fold_bytes(mix(h, tagged(T_ADDR, 2 << 48)), p),
        SockAddr::Unix(UnixAddr::Abstract(p)) => fold_bytes(mix(h, tagged(T_ADDR, 3 << 48)), p),
        SockAddr::Other { family, data } => fold_bytes(
            mix(h, tagged(T_ADDR, (4 << 48) | u64::from(family.0 as u32))),
            data,
        ),
    }
}

// Tags added to each field's value (so optional fields cannot be confused); one word per
// field: `value + tag * TAG_K` is still a bijection of the value for a given tag.
const TAG_K: u64 = 0x9e37_79b9_7f4a_7c15;
const T_INT: u64 = 1;
const T_FD: u64 = 2;
const T_BOOL: u64 = 3;
const T_ERRNO: u64 = 4;
const T_FLAGS: u64 = 5;
const T_ADDR: u64 = 6;
const T_BYTES: u64 = 7;
const T_FDS: u64 = 8;
const T_TEXT: u64 = 9;
const T_FAMILY: u64 = 10;
const T_TYPE: u64 = 11;
const T_INTEREST: u64 = 12;
const T_NONE: u64 = 13;

/// One word for a tagged field value.
#[inline]
fn tagged(tag: u64, v: u64) -> u64 {
    v.wrapping_add(tag.wrapping_mul(TAG_K))
}

/// One field value of a materialised event ([`TraceEvent`]).
#[derive(Clone, PartialEq, Eq, Debug)]
enum Val {
    Int(i64),
    Fd(i32),
    Bool(bool),
    Errno(i32),
    Flags(i32),
    Addr(SockAddr),
    /// A payload: its length, its hash, and the bytes when payloads are kept.
    Bytes {
        len: u64,
        hash: u64,
        data: Option<Vec<u8>>,
    },
    Fds(Vec<i32>),
    Text(String),
    Family(i32),
    Type(i32),
    Interest(u8),
    /// An optional value that was absent (`from=-`).
    None,
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Int(v) => write!(f, "{v}"),
            Val::Fd(v) => write!(f, "{v}"),
            Val::Bool(v) => write!(f, "{v}"),
            Val::Errno(e) => write!(f, "{:?}", Errno(*e)),
            Val::Flags(v) => write!(f, "{v:#x}"),
            Val::Addr(a) => write!(f, "{a}"),
            Val::Bytes { len, hash, data } => match data {
                None => write!(f, "{len}B#{:08x}", hash >> 32),
                Some(d) => {
                    const SHOW: usize = 64;
                    let shown = &d[..d.len().min(SHOW)];
                    write!(f, "{len}B\"{}\"", shown.escape_ascii())?;
                    if d.len() > SHOW {
                        f.write_str("...")?;
                    }
                    Ok(())
                }
            },
            Val::Fds(v) => {
                f.write_char('[')?;
                for (i, fd) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{fd}")?;
                }
                f.write_char(']')
            }
            Val::Text(t) => f.write_str(t),
            Val::Family(v) => match Family(*v).name() {
                Some(n) => f.write_str(n),
                None => write!(f, "{v}"),
            },
            Val::Type(v) => match SockType(*v).name() {
                Some(n) => f.write_str(n),
                None => write!(f, "{v}"),
            },
            Val::Interest(b) => {
                for (bit, c) in [(1, 'r'), (2, 'w'), (4, 'x')] {
                    f.write_char(if b & bit != 0 { c } else { '-' })?;
                }
                Ok(())
            }
            Val::None => f.write_char('-'),
        }
    }
}

/// A named field of a materialised event (an empty name shows the value alone).
#[derive(Clone, PartialEq, Eq, Debug)]
struct Field {
    name: &'static str,
    val: Val,
}

/// A field's name: an index into [`NAMES`], so a kept name is one byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Name(u8);

/// Declares the field names: `NAMES` and a `Name` constant for each, numbered in order.
macro_rules! names {
    ($($c:ident = $s:literal,)*) => {
        /// Every field name; `""` shows the value alone.
        const NAMES: &[&str] = &[$($s),*];

        /// The numbering of `NAMES`.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)] // the constants' names
        #[repr(u8)]
        enum Numbered {
            $($c,)*
        }

        impl Name {
            $(pub(crate) const $c: Name = Name(Numbered::$c as u8);)*
        }
    };
}

names! {
    BARE = "",
    ADDR = "addr",
    BACKLOG = "backlog",
    CANON = "canon",
    DATA = "data",
    FAMILY = "family",
    FD = "fd",
    FILE = "file",
    FLAGS = "flags",
    FROM = "from",
    HOST = "host",
    HOW = "how",
    INDEX = "index",
    LEN = "len",
    LOCAL = "local",
    MSG_FLAGS = "msg_flags",
    N = "n",
    NAME = "name",
    NODE = "node",
    NONBLOCK = "nonblock",
    OFFSET = "offset",
    ON = "on",
    PROTO = "proto",
    RIGHTS = "rights",
    SERVICE = "service",
    SOCK = "sock",
    TIMEOUT_MS = "timeout_ms",
    TIMESTAMP_NS = "timestamp_ns",
    TO = "to",
    TYPE = "type",
}

/// What a stored field holds, and how its value is encoded after the kind byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Kind {
    /// zigzag varint
    Int,
    /// zigzag varint (also `Errno` .. `Type`)
    Fd,
    Errno,
    Flags,
    Family,
    Type,
    /// one byte
    Bool,
    /// one byte (`rwx` bits)
    Interest,
    /// nothing
    None,
    /// 4 address bytes, 2 port bytes (little-endian)
    AddrV4,
    /// varint index into `Trace::addrs`
    Addr,
    /// varint length, 8 hash bytes (little-endian), varint 1 + index into `Trace::blobs`
    /// (0: not kept)
    Bytes,
    /// varint index into `Trace::fdlists`
    Fds,
    /// varint index into `Trace::texts`
    Text,
}

const KINDS: [Kind; 14] = [
    Kind::Int,
    Kind::Fd,
    Kind::Errno,
    Kind::Flags,
    Kind::Family,
    Kind::Type,
    Kind::Bool,
    Kind::Interest,
    Kind::None,
    Kind::AddrV4,
    Kind::Addr,
    Kind::Bytes,
    Kind::Fds,
    Kind::Text,
];

/// `Rec::res` of an event without a result part.
const NO_RES: u16 = u16::MAX;

/// A kept event: `n` fields encoded at `start` in `Trace::arena`; the result from field `res`.
#[derive(Clone, Copy, Debug)]
struct Rec {
    t: Nanos,
    op: &'static str,
    start: u64,
    host: u32,
    res: u16,
    n: u16,
}

/// The world's trace: the digest always, the events when kept.
///
/// Kept fields are a name byte, a kind byte and a compact value in one byte arena (a
/// descriptor or a small length is one byte, a payload hash eight), with addresses other
/// than IPv4, texts, descriptor lists and payloads in side tables: a long run keeps
/// little more than the numbers it observed.
#[derive(Debug)]
pub(crate) struct Trace {
    pub keep: bool,
    pub payloads: bool,
    pub digest: u64,
    /// Events recorded (kept or not).
    pub count: u64,
    recs: Vec<Rec>,
    arena: Vec<u8>,
    addrs: Vec<SockAddr>,
    blobs: Vec<Vec<u8>>,
    fdlists: Vec<Vec<i32>>,
    texts: Vec<String>,
    /// Host names, by host index.
    pub names: Vec<String>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Reads the arena back.
struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let v = self.b[self.i];
        self.i += 1;
        v
    }

    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte();
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    fn signed(&mut self) -> i64 {
        let z = self.varint();
        ((z >> 1) as i64) ^ -((z & 1) as i64)
    }

    fn fixed<const N: usize>(&mut self) -> [u8; N] {
        let v = self.b[self.i..self.i + N].try_into().expect("N bytes");
        self.i += N;
        v
    }

    fn index(&mut self) -> usize {
        self.varint() as usize
    }
}

impl Trace {
    pub(crate) fn new(keep: bool, payloads: bool) -> Trace {
        Trace {
            keep,
            payloads,
            digest: FNV_OFFSET,
            count: 0,
            recs: Vec::new(),
            arena: Vec::new(),
            addrs: Vec::new(),
            blobs: Vec::new(),
            fdlists: Vec::new(),
            texts: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Starts an event at virtual time `t` on `host`.
    #[inline(always)]
    pub(crate) fn ev(&mut self, t: Nanos, host: usize, op: &'static str) -> Event<'_> {
        let h = fold_bytes(mix(mix(FNV_OFFSET, t), host as u64), op.as_bytes());
        let start = self.arena.len() as u64;
        Event {
            tr: self,
            t,
            host,
            op,
            h,
            start,
            n: 0,
            res: None,
        }
    }

    /// Decodes one field.
    fn field(&self, r: &mut Reader<'_>) -> Field {
        let name = NAMES[usize::from(r.byte())];
        let kind = KINDS[usize::from(r.byte())];
        let as_i32 = |v: i64| v as i32;
        let val = match kind {
            Kind::Int => Val::Int(r.signed()),
            Kind::Fd => Val::Fd(as_i32(r.signed())),
            Kind::Errno => Val::Errno(as_i32(r.signed())),
            Kind::Flags => Val::Flags(as_i32(r.signed())),
            Kind::Family => Val::Family(as_i32(r.signed())),
            Kind::Type => Val::Type(as_i32(r.signed())),
            Kind::Bool => Val::Bool(r.byte() != 0),
            Kind::Interest => Val::Interest(r.byte()),
            Kind::None => Val::None,
            Kind::AddrV4 => {
                let ip: [u8; 4] = r.fixed();
                let port = u16::from_le_bytes(r.fixed());
                Val::Addr(SockAddr::v4(ip.into(), port))
            }
            Kind::Addr => Val::Addr(self.addrs[r.index()].clone()),
            Kind::Bytes => {
                let len = r.varint();
                let hash = u64::from_le_bytes(r.fixed());
                let data = r.index();
                Val::Bytes {
                    len,
                    hash,
                    data: (data > 0).then(|| self.blobs[data - 1].clone()),
                }
            }
            Kind::Fds => Val::Fds(self.fdlists[r.index()].clone()),
            Kind::Text => Val::Text(self.texts[r.index()].clone()),
        };
        Field { name, val }
    }

    /// The kept events, materialised.
    pub(crate) fn events(&self) -> Vec<TraceEvent> {
        self.recs
            .iter()
            .map(|rec| {
                let mut r = Reader {
                    b: &self.arena,
                    i: rec.start as usize,
                };
                TraceEvent {
                    t: rec.t,
                    host: self
                        .names
                        .get(rec.host as usize)
                        .cloned()
                        .unwrap_or_else(|| format!("h{}", rec.host)),
                    op: rec.op,
                    fields: (0..rec.n).map(|_| self.field(&mut r)).collect(),
                    res: (rec.res != NO_RES).then_some(usize::from(rec.res)),
                }
            })
            .collect()
    }
}

/// An event under construction; [`Event::end`] folds it into the digest (and keeps it).
pub(crate) struct Event<'a> {
    tr: &'a mut Trace,
    t: Nanos,
    host: usize,
    op: &'static str,
    h: u64,
    /// Where the event's fields start in the arena, and how many were kept.
    start: u64,
    n: u16,
    res: Option<u16>,
}

impl Event<'_> {
    /// Starts a kept field: its name and kind bytes.
    #[inline(always)]
    fn head(&mut self, name: Name, kind: Kind) -> &mut Vec<u8> {
        self.n = self.n.saturating_add(1);
        let a = &mut self.tr.arena;
        a.push(name.0);
        a.push(kind as u8);
        a
    }

    /// Folds one tagged word; keeps the field (a zigzag varint of `v`) if asked.
    #[inline(always)]
    fn put(mut self, tag: u64, word: u64, name: Name, kind: Kind, v: i64) -> Self {
        self.h = mix(self.h, tagged(tag, word));
        if self.tr.keep {
            put_varint(self.head(name, kind), zigzag(v));
        }
        self
    }

    /// Folds one tagged word; keeps the field as one byte if asked.
    #[inline(always)]
    fn put_byte(mut self, tag: u64, v: u8, name: Name, kind: Kind) -> Self {
        self.h = mix(self.h, tagged(tag, u64::from(v)));
        if self.tr.keep {
            self.head(name, kind).push(v);
        }
        self
    }

    /// An integer.
    #[inline(always)]
    pub(crate) fn int(self, name: Name, v: i64) -> Self {
        self.put(T_INT, v as u64, name, Kind::Int, v)
    }

    /// A descriptor number.
    #[inline(always)]
    pub(crate) fn fd(self, name: Name, fd: Fd) -> Self {
        self.put(T_FD, u64::from(fd.0 as u32), name, Kind::Fd, fd.0.into())
    }

    /// A flag.
    #[inline(always)]
    pub(crate) fn bool(self, name: Name, v: bool) -> Self {
        self.put_byte(T_BOOL, u8::from(v), name, Kind::Bool)
    }

    /// `MSG_*` flags, only when some are set.
    #[inline(always)]
    pub(crate) fn flags(self, name: Name, f: MsgFlags) -> Self {
        if f.0 == 0 {
            return self;
        }
        self.put(
            T_FLAGS,
            u64::from(f.0 as u32),
            name,
            Kind::Flags,
            f.0.into(),
        )
    }

    /// An address family.
    pub(crate) fn family(self, name: Name, v: Family) -> Self {
        self.put(
            T_FAMILY,
            u64::from(v.0 as u32),
            name,
            Kind::Family,
            v.0.into(),
        )
    }

    /// A socket type.
    pub(crate) fn ty(self, name: Name, v: SockType) -> Self {
        self.put(T_TYPE, u64::from(v.0 as u32), name, Kind::Type, v.0.into())
    }

    /// A readiness interest (`rwx`).
    pub(crate) fn interest(self, name: Name, i: Interest) -> Self {
        let b = u8::from(i.read) | (u8::from(i.write) << 1) | (u8::from(i.except) << 2);
        self.put_byte(T_INTEREST, b, name, Kind::Interest)
    }

    /// An address.
    #[inline(always)]
    pub(crate) fn addr(mut self, name: Name, a: &SockAddr) -> Self {
        self.h = fold_addr(self.h, a);
        if self.tr.keep {
            if let SockAddr::V4(v4) = a {
                let out = self.head(name, Kind::AddrV4);
                out.extend_from_slice(&v4.ip().octets());
                out.extend_from_slice(&v4.port().to_le_bytes());
            } else {
                let i = self.tr.addrs.len() as u64;
                self.tr.addrs.push(a.clone());
                put_varint(self.head(name, Kind::Addr), i);
            }
        }
        self
    }

    /// An optional address (`-` when absent).
    pub(crate) fn addr_opt(self, name: Name, a: Option<&SockAddr>) -> Self {
        match a {
            Some(a) => self.addr(name, a),
            None => {
                let mut e = self;
                e.h = mix(e.h, tagged(T_NONE, 0));
                if e.tr.keep {
                    e.head(name, Kind::None);
                }
                e
            }
        }
    }

    /// Payload bytes: hashed always (on a chain of their own, folded in as one word),
    /// stored only when the trace keeps payloads.
    #[inline(always)]
    pub(crate) fn bytes(mut self, name: Name, data: &[u8]) -> Self {
        let hash = fin(fold_bytes(FNV_OFFSET, data));
        self.h = mix(self.h, tagged(T_BYTES, hash));
        if self.tr.keep {
            let blob = if self.tr.payloads {
                self.tr.blobs.push(data.to_vec());
                self.tr.blobs.len() as u64
            } else {
                0
            };
            let out = self.head(name, Kind::Bytes);
            put_varint(out, data.len() as u64);
            out.extend_from_slice(&hash.to_le_bytes());
            put_varint(out, blob);
        }
        self
    }

    /// Descriptor numbers (passed or received as `SCM_RIGHTS`).
    pub(crate) fn fds(mut self, name: Name, fds: &[Fd]) -> Self {
        self.h = mix(self.h, tagged(T_FDS, fds.len() as u64));
        for fd in fds {
            self.h = mix(self.h, u64::from(fd.0 as u32));
        }
        if self.tr.keep {
            let i = self.tr.fdlists.len() as u64;
            self.tr.fdlists.push(fds.iter().map(|f| f.0).collect());
            put_varint(self.head(name, Kind::Fds), i);
        }
        self
    }

    /// Text (an option value, a resolver answer), hashed as it is formatted.
    pub(crate) fn text(mut self, name: Name, args: fmt::Arguments<'_>) -> Self {
        let mut t = TextFold {
            h: mix(self.h, tagged(T_TEXT, 0)),
            word: [0; 8],
            n: 0,
            len: 0,
            keep: self.tr.keep.then(String::new),
        };
        t.write_fmt(args)
            .expect("formatting into a hash cannot fail");
        let (h, kept) = t.finish();
        self.h = h;
        if let Some(s) = kept {
            let i = self.tr.texts.len() as u64;
            self.tr.texts.push(s);
            put_varint(self.head(name, Kind::Text), i);
        }
        self
    }

    /// Starts the result part. (Not hashed: each operation's fields come in a fixed
    /// order, and the tags tell an error from a value.)
    #[inline(always)]
    pub(crate) fn arrow(mut self) -> Self {
        self.res = Some(self.n);
        self
    }

    /// The result: `ok` (with what `f` adds) or the errno.
    #[inline(always)]
    pub(crate) fn res<T>(
        self,
        r: &llsocket_api::Result<T>,
        f: impl FnOnce(Self, &T) -> Self,
    ) -> Self {
        let e = self.arrow();
        match r {
            Ok(v) => f(e, v),
            Err(err) => e.put(
                T_ERRNO,
                u64::from(err.0 as u32),
                Name::BARE,
                Kind::Errno,
                err.0.into(),
            ),
        }
    }

    /// Folds the event into the digest (and keeps it).
    #[inline(always)]
    pub(crate) fn end(self) {
        let tr = self.tr;
        tr.digest = mix(tr.digest, fin(self.h));
        tr.count += 1;
        if tr.keep {
            tr.recs.push(Rec {
                t: self.t,
                op: self.op,
                start: self.start,
                host: self.host as u32,
                res: self.res.unwrap_or(NO_RES),
                n: self.n,
            });
        }
    }
}

/// One event of a kept trace ([`crate::Sim::events`]): an operation a program called, with
/// its arguments and what it observed, or something the simulated wire or kernel did.
///
/// Displays as one line: `<virtual seconds> <host> <operation> <arguments> -> <result>`, for
/// example `0.000000000 client connect fd=3 to=10.0.0.2:80 -> ok local=10.0.0.1:46013`.
/// Payloads show as `<length>B#<hash>` (or the bytes, escaped, with
/// [`crate::SimBuilder::trace_payloads`]). Two events are equal when their time, host,
/// operation and every field are.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TraceEvent {
    t: Nanos,
    host: String,
    op: &'static str,
    fields: Vec<Field>,
    /// Where the result starts in `fields` (`None`: an event without one).
    res: Option<usize>,
}

impl TraceEvent {
    /// The virtual time of the event (when the operation returned).
    pub fn time(&self) -> Duration {
        Duration::from_nanos(self.t)
    }

    /// The host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The operation (`connect`, `recvfrom`, ...) or the wire event (`syn`, `data`, `lost`, ...).
    pub fn op(&self) -> &str {
        self.op
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09} {} {}",
            self.t / 1_000_000_000,
            self.t % 1_000_000_000,
            self.host,
            self.op
        )?;
        for (i, fl) in self.fields.iter().enumerate() {
            if Some(i) == self.res {
                // A result that starts with a named field succeeded: `-> ok local=...`.
                f.write_str(if fl.name.is_empty() { " ->" } else { " -> ok" })?;
            }
            if fl.name.is_empty() {
                write!(f, " {}", fl.val)?;
            } else {
                write!(f, " {}={}", fl.name, fl.val)?;
            }
        }
        if self.res == Some(self.fields.len()) {
            f.write_str(" -> ok")?;
        }
        Ok(())
    }
}
