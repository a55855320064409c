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
//! An operation's name is folded as its bytes are; the words are computed once per name
//! (names are interned in order of first use; a cache keyed by the literal's address only
//! finds the index faster and never reaches the digest).
//!
//! When the trace is kept the events are stored too, in two byte streams: per event its
//! shape (the operation and which fields it has, numbered), host and time step, and its
//! field values, compact (a descriptor is one byte, a payload hash eight; IPv6 and unix
//! addresses, texts, descriptor lists and payloads in side tables); when it is not, only
//! the hashing runs. Payload bytes are stored only when asked for
//! ([`crate::SimBuilder::trace_payloads`]); the digest covers them either way.

use std::collections::BTreeMap;
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
    /// varint length, 8 hash bytes (little-endian)
    Bytes,
    /// as `Bytes`, then a varint index into `Trace::blobs` (the payload kept)
    Blob,
    /// nothing: the length and hash of the previous `Bytes` field (an echo's payload)
    BytesAgain,
    /// varint index into `Trace::fdlists`
    Fds,
    /// varint index into `Trace::texts`
    Text,
}

const KINDS: [Kind; 16] = [
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
    Kind::Blob,
    Kind::BytesAgain,
    Kind::Fds,
    Kind::Text,
];

/// The code before a kept event's first result field.
const ARROW: u8 = 0xfe;
/// The code of a field whose (name, kind) pair got no code of its own (more than
/// [`MAX_CODE`] pairs): its values start with a name byte and a kind byte.
const PAIR: u8 = 0;
/// The largest field code.
const MAX_CODE: usize = 0xfd;

/// Operation names of kept events, interned: an index per name, in order of first use.
/// (The digest folds the name itself: [`Trace::ev`].)
#[derive(Debug)]
struct Ops {
    names: Vec<&'static str>,
    by_name: BTreeMap<&'static str, u32>,
    /// A cache by the name's address and length (a string literal is one address):
    /// `(address, length, index)`. It only saves the `by_name` look-up; which index a
    /// name gets depends on the order of first use only.
    cache: Vec<(usize, usize, u32)>,
}

const OP_CACHE: usize = 128;

impl Ops {
    fn new() -> Ops {
        Ops {
            names: Vec::new(),
            by_name: BTreeMap::new(),
            cache: vec![(0, 0, 0); OP_CACHE],
        }
    }

    /// The index of `op`.
    #[inline(always)]
    fn intern(&mut self, op: &'static str) -> u32 {
        let addr = op.as_ptr() as usize;
        let slot = ((addr as u64).wrapping_mul(TAG_K) >> 57) as usize % OP_CACHE;
        let (a, l, i) = self.cache[slot];
        if a == addr && l == op.len() {
            return i;
        }
        self.intern_slow(op, slot)
    }

    #[cold]
    fn intern_slow(&mut self, op: &'static str, slot: usize) -> u32 {
        let i = match self.by_name.get(op) {
            Some(&i) => i,
            None => {
                let i = self.names.len() as u32;
                self.names.push(op);
                self.by_name.insert(op, i);
                i
            }
        };
        self.cache[slot] = (op.as_ptr() as usize, op.len(), i);
        i
    }
}

/// The shape of a kept event: its operation, how its head is written (its class: bits
/// 0-1 say whether its host is the last event's (1), the host before that (2) or written
/// out (0), bit 2 that its time is the last event's), and the codes of its fields in
/// order ([`ARROW`] before the result); numbered in order of first use.
#[derive(Debug)]
struct Shapes {
    /// `(operation, class, codes)` by shape number.
    list: Vec<(u32, u8, Vec<u8>)>,
    /// Shape numbers by the operation's four little-endian bytes, the class and the codes.
    ids: BTreeMap<Vec<u8>, u32>,
    /// A cache of `ids` for shapes of up to 15 codes: `(operation, key, number)`, the
    /// key holding the number of codes in the low four bits of its low byte, the class
    /// in the high ones, and the codes above it. Which number a shape gets does not
    /// depend on it.
    cache: Vec<(u32, u128, u32)>,
    /// The look-up key of `ids` (reused).
    scratch: Vec<u8>,
}

const SHAPE_CACHE: usize = 256;

impl Shapes {
    fn new() -> Shapes {
        Shapes {
            list: Vec::new(),
            ids: BTreeMap::new(),
            cache: vec![(u32::MAX, 0, 0); SHAPE_CACHE],
            scratch: Vec::new(),
        }
    }

    /// The number of the shape `op` + `key` (at most 15 codes).
    #[inline(always)]
    fn short(&mut self, op: u32, key: u128) -> u32 {
        let h = (u64::from(op) ^ (key as u64) ^ ((key >> 64) as u64).wrapping_mul(FNV_PRIME))
            .wrapping_mul(TAG_K);
        let slot = (h >> 56) as usize % SHAPE_CACHE;
        let (o, k, id) = self.cache[slot];
        if o == op && k == key {
            return id;
        }
        let bytes = key.to_le_bytes();
        let id = self.id(op, bytes[0] >> 4, &bytes[1..=usize::from(bytes[0] & 15)]);
        self.cache[slot] = (op, key, id);
        id
    }

    /// The number of the shape `op` + `class` + `codes`, made on first use.
    #[cold]
    fn id(&mut self, op: u32, class: u8, codes: &[u8]) -> u32 {
        self.scratch.clear();
        self.scratch.extend_from_slice(&op.to_le_bytes());
        self.scratch.push(class);
        self.scratch.extend_from_slice(codes);
        if let Some(&id) = self.ids.get(self.scratch.as_slice()) {
            return id;
        }
        let id = self.list.len() as u32;
        self.list.push((op, class, codes.to_vec()));
        self.ids.insert(self.scratch.clone(), id);
        id
    }
}

/// The world's trace: the digest always, the events when kept.
///
/// Kept events are two byte streams. Per event `heads` has its shape ([`Shapes`]: the
/// operation, its fields' codes, and whether its host and time are written out), then
/// its host and the time since the previous kept event unless the shape says they are
/// one of the last two hosts and the same time, as varints. `vals` has the fields'
/// values, compact (a descriptor or a small length is one byte, a payload hash eight). A
/// field's code stands for its name and kind, numbered in order of first use. Addresses
/// other than IPv4, texts, descriptor lists and payloads go in side tables: a long run
/// keeps little more than the numbers it observed (a 32-byte echo round trip, six
/// events, takes 31 bytes: a payload hash seen again, as an echo's is, is not stored
/// again).
#[derive(Debug)]
pub(crate) struct Trace {
    pub keep: bool,
    pub payloads: bool,
    pub digest: u64,
    /// Events recorded (kept or not).
    pub count: u64,
    heads: Vec<u8>,
    vals: Vec<u8>,
    shapes: Shapes,
    /// The event being kept: its operation, host and time, and its codes so far
    /// (`cur_n` of them; up to 15 in `cur_key` from byte 1, all of them in `long_codes`
    /// beyond).
    cur_op: u32,
    cur_host: u64,
    cur_t: Nanos,
    cur_key: [u8; 16],
    cur_n: usize,
    long_codes: Vec<u8>,
    /// The hosts of the last kept event and of the one before it (if another), and the
    /// time of the last one.
    last_host: u64,
    prev_host: u64,
    last_t: Nanos,
    /// The length and hash of the last `Kind::Bytes` field kept.
    last_bytes: (u64, u64),
    ops: Ops,
    /// The field codes: by name and kind (0: none yet), and the pair of each code.
    codes: [[u8; KINDS.len()]; NAMES.len()],
    pairs: Vec<(u8, u8)>,
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

/// Reads a byte stream back.
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
            heads: Vec::new(),
            vals: Vec::new(),
            shapes: Shapes::new(),
            cur_op: 0,
            cur_host: 0,
            cur_t: 0,
            cur_key: [0; 16],
            cur_n: 0,
            long_codes: Vec::new(),
            last_host: 0,
            prev_host: 0,
            last_t: 0,
            last_bytes: (u64::MAX, 0),
            ops: Ops::new(),
            codes: [[0; KINDS.len()]; NAMES.len()],
            // (Code 0 is `PAIR`.)
            pairs: vec![(0, 0)],
            addrs: Vec::new(),
            blobs: Vec::new(),
            fdlists: Vec::new(),
            texts: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Starts an event at virtual time `t` on `host` (every event is ended: [`Event::end`]).
    #[inline(always)]
    pub(crate) fn ev(&mut self, t: Nanos, host: usize, op: &'static str) -> Event<'_> {
        // (What `Ops::fold` folds for the interned name; folded from the name itself, a
        // constant where the call is inlined, so only a kept event interns it.)
        let h = fold_bytes(mix(mix(FNV_OFFSET, t), host as u64), op.as_bytes());
        if self.keep {
            self.cur_op = self.ops.intern(op);
            self.cur_host = host as u64;
            self.cur_t = t;
            self.cur_key = [0; 16];
            self.cur_n = 0;
        }
        Event { tr: self, h }
    }

    /// Adds a code to the kept event's shape.
    #[inline(always)]
    fn push_code(&mut self, c: u8) {
        let n = self.cur_n;
        if n < 15 {
            self.cur_key[1 + n] = c;
        } else {
            self.push_long_code(c);
        }
        self.cur_n = n + 1;
    }

    /// The 16th code of a kept event and those after it.
    #[cold]
    fn push_long_code(&mut self, c: u8) {
        if self.cur_n == 15 {
            self.long_codes.clear();
            self.long_codes.extend_from_slice(&self.cur_key[1..]);
        }
        self.long_codes.push(c);
    }

    /// Ends the kept event: its shape, host and time step.
    #[inline(always)]
    fn finish(&mut self) {
        let host = self.cur_host;
        let by_host = if host == self.last_host {
            1
        } else {
            let before = host == self.prev_host;
            self.prev_host = self.last_host;
            self.last_host = host;
            if before {
                2
            } else {
                0
            }
        };
        let dt = self.cur_t.wrapping_sub(self.last_t);
        self.last_t = self.cur_t;
        let class = by_host | (u8::from(dt == 0) << 2);
        let shape = if self.cur_n < 16 {
            let mut key = self.cur_key;
            key[0] = self.cur_n as u8 | (class << 4);
            self.shapes.short(self.cur_op, u128::from_le_bytes(key))
        } else {
            self.shapes.id(self.cur_op, class, &self.long_codes)
        };
        let a = &mut self.heads;
        put_varint(a, u64::from(shape));
        if by_host == 0 {
            put_varint(a, host);
        }
        if dt != 0 {
            put_varint(a, dt);
        }
    }

    /// The code byte of a field (name, kind) pair, [`PAIR`] if there are too many.
    #[inline(always)]
    fn code(&mut self, name: Name, kind: Kind) -> u8 {
        let c = self.codes[usize::from(name.0)][kind as usize];
        if c != 0 {
            return c;
        }
        self.new_code(name, kind)
    }

    #[cold]
    fn new_code(&mut self, name: Name, kind: Kind) -> u8 {
        if self.pairs.len() > MAX_CODE {
            return PAIR;
        }
        let c = self.pairs.len() as u8;
        self.pairs.push((name.0, kind as u8));
        self.codes[usize::from(name.0)][kind as usize] = c;
        c
    }

    /// Decodes one field of code `code` (`last`: the previous `Bytes` field's length and
    /// hash).
    fn field(&self, code: u8, r: &mut Reader<'_>, last: &mut (u64, u64)) -> Field {
        let (name, kind) = match code {
            PAIR => (r.byte(), r.byte()),
            c => self.pairs[usize::from(c)],
        };
        let name = NAMES[usize::from(name)];
        let kind = KINDS[usize::from(kind)];
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
                *last = (len, hash);
                Val::Bytes {
                    len,
                    hash,
                    data: None,
                }
            }
            Kind::BytesAgain => Val::Bytes {
                len: last.0,
                hash: last.1,
                data: None,
            },
            Kind::Blob => {
                let len = r.varint();
                let hash = u64::from_le_bytes(r.fixed());
                let data = Some(self.blobs[r.index()].clone());
                Val::Bytes { len, hash, data }
            }
            Kind::Fds => Val::Fds(self.fdlists[r.index()].clone()),
            Kind::Text => Val::Text(self.texts[r.index()].clone()),
        };
        Field { name, val }
    }

    /// The kept events, materialised.
    pub(crate) fn events(&self) -> Vec<TraceEvent> {
        let mut out = Vec::new();
        self.decode(|t, host, op, fields, res| {
            out.push(TraceEvent {
                t,
                host: self
                    .names
                    .get(host)
                    .cloned()
                    .unwrap_or_else(|| format!("h{host}")),
                op,
                fields,
                res,
            });
        });
        out
    }

    /// Decodes the kept events in order: time, host index, operation, fields, and where
    /// the result starts.
    fn decode(&self, mut f: impl FnMut(Nanos, usize, &'static str, Vec<Field>, Option<usize>)) {
        let mut heads = Reader {
            b: &self.heads,
            i: 0,
        };
        let mut vals = Reader {
            b: &self.vals,
            i: 0,
        };
        let mut t: Nanos = 0;
        let (mut host, mut before) = (0, 0);
        let mut last = (u64::MAX, 0);
        while heads.i < self.heads.len() {
            let (op, class, codes) = &self.shapes.list[heads.index()];
            match class & 3 {
                1 => {}
                2 => std::mem::swap(&mut host, &mut before),
                _ => {
                    before = host;
                    host = heads.index();
                }
            }
            if class & 4 == 0 {
                t = t.wrapping_add(heads.varint());
            }
            let mut fields = Vec::new();
            let mut res = None;
            for &code in codes {
                match code {
                    ARROW => res = Some(fields.len()),
                    code => fields.push(self.field(code, &mut vals, &mut last)),
                }
            }
            f(t, host, self.ops.names[*op as usize], fields, res);
        }
    }
}

/// An event under construction; [`Event::end`] folds it into the digest (and ends the
/// kept event).
pub(crate) struct Event<'a> {
    tr: &'a mut Trace,
    h: u64,
}

impl Event<'_> {
    /// Starts a kept field: its code in the shape; the values to write to.
    #[inline(always)]
    fn head(&mut self, name: Name, kind: Kind) -> &mut Vec<u8> {
        let code = self.tr.code(name, kind);
        self.tr.push_code(code);
        let a = &mut self.tr.vals;
        if code == PAIR {
            a.push(name.0);
            a.push(kind as u8);
        }
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
            let len = data.len() as u64;
            if self.tr.payloads {
                self.tr.blobs.push(data.to_vec());
                let i = self.tr.blobs.len() as u64 - 1;
                let out = self.head(name, Kind::Blob);
                put_varint(out, len);
                out.extend_from_slice(&hash.to_le_bytes());
                put_varint(out, i);
            } else if self.tr.last_bytes == (len, hash) {
                // (An echo: what was sent is received and sent back.)
                self.head(name, Kind::BytesAgain);
            } else {
                self.tr.last_bytes = (len, hash);
                let out = self.head(name, Kind::Bytes);
                put_varint(out, len);
                out.extend_from_slice(&hash.to_le_bytes());
            }
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
    pub(crate) fn arrow(self) -> Self {
        if self.tr.keep {
            self.tr.push_code(ARROW);
        }
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
            tr.finish();
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use llsocket_api::cmsg::{self, Cmsg};
    use llsocket_api::{
        AddrInfoHints, Family, Interest, MsgFlags, OptName, Protocol, SockAddr, SockOpt, SockType,
        SocketOps,
    };

    use super::*;
    use crate::{Latency, LinkConfig, Sim};

    /// The digest folded again from the kept events alone.
    fn rehash(tr: &Trace) -> u64 {
        let mut digest = FNV_OFFSET;
        tr.decode(|t, host, op, fields, _| {
            let mut h = fold_bytes(mix(mix(FNV_OFFSET, t), host as u64), op.as_bytes());
            for f in &fields {
                let word = |tag, v: u64| mix(h, tagged(tag, v));
                h = match &f.val {
                    Val::Int(v) => word(T_INT, *v as u64),
                    Val::Fd(v) => word(T_FD, u64::from(*v as u32)),
                    Val::Bool(v) => word(T_BOOL, u64::from(*v)),
                    Val::Errno(v) => word(T_ERRNO, u64::from(*v as u32)),
                    Val::Flags(v) => word(T_FLAGS, u64::from(*v as u32)),
                    Val::Addr(a) => fold_addr(h, a),
                    Val::Bytes { hash, .. } => word(T_BYTES, *hash),
                    Val::Fds(v) => v.iter().fold(word(T_FDS, v.len() as u64), |h, fd| {
                        mix(h, u64::from(*fd as u32))
                    }),
                    Val::Text(s) => {
                        let mut t = TextFold {
                            h: word(T_TEXT, 0),
                            word: [0; 8],
                            n: 0,
                            len: 0,
                            keep: None,
                        };
                        t.write_str(s).expect("hashing");
                        t.finish().0
                    }
                    Val::Family(v) => word(T_FAMILY, u64::from(*v as u32)),
                    Val::Type(v) => word(T_TYPE, u64::from(*v as u32)),
                    Val::Interest(v) => word(T_INTEREST, u64::from(*v)),
                    Val::None => word(T_NONE, 0),
                };
            }
            digest = mix(digest, fin(h));
        });
        digest
    }

    /// A bit of everything: TCP echo (the same payload back), time passing, a lossy link,
    /// UDP with addresses, unix descriptor passing with timestamps, options, readiness,
    /// the resolver.
    fn scenario(sim: &Sim) {
        let (a, b) = (sim.host("a"), sim.host("b"));
        let (c, s) = crate::tcp_connection(&a, &b, true);
        let mut buf = [0u8; 300];
        for i in 0..50u8 {
            let msg = vec![i; 1 + usize::from(i) * 5];
            a.send(c, &msg, MsgFlags::NONE).unwrap();
            let n = b.recv(s, &mut buf, MsgFlags::NONE).unwrap();
            b.send(s, &buf[..n], MsgFlags::NONE).unwrap();
            a.recv(c, &mut buf, MsgFlags::NONE).unwrap();
            sim.advance(Duration::from_micros(u64::from(i) * 977));
        }
        let _ = a.recv(c, &mut buf, MsgFlags::DONTWAIT);
        sim.set_link_both(
            &a,
            &b,
            LinkConfig {
                latency: Latency::Uniform(Duration::from_millis(1), Duration::from_millis(9)),
                loss: 0.2,
                duplicate: 0.1,
                reorder: 0.2,
            },
        );
        a.send(c, &[7; 5000], MsgFlags::NONE).unwrap();
        let mut got = 0;
        while got < 5000 {
            got += b.recv(s, &mut buf, MsgFlags::NONE).unwrap();
        }
        let u = b
            .socket(Family::INET6, SockType::DGRAM, Protocol::DEFAULT, false)
            .unwrap();
        b.bind(u, &SockAddr::v6(std::net::Ipv6Addr::UNSPECIFIED, 53))
            .unwrap();
        let v = a
            .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
            .unwrap();
        for i in 0..10u8 {
            a.sendto(v, &[i; 3], &SockAddr::v4(b.ipv4(), 53), MsgFlags::NONE)
                .unwrap();
        }
        sim.advance(Duration::from_secs(1));
        while b.recvfrom(u, &mut buf, MsgFlags::DONTWAIT).is_ok() {}
        // Three hosts in turn (the heads name a host the last two events did not have).
        let c3 = sim.host("c");
        let w = c3
            .socket(Family::INET, SockType::DGRAM, Protocol::DEFAULT, false)
            .unwrap();
        for i in 0..6u8 {
            c3.sendto(w, &[i], &SockAddr::v4(b.ipv4(), 53), MsgFlags::NONE)
                .unwrap();
            let _ = b.recvfrom(u, &mut buf, MsgFlags::DONTWAIT);
            let _ = a.poll(v, Interest::READ, 0);
        }
        let (x, y) = a
            .socketpair(SockType::DGRAM, Protocol::DEFAULT, false)
            .unwrap();
        a.setsockopt(y, SockOpt::Timestamp(true)).unwrap();
        let ctl = cmsg::encode(&[Cmsg::rights(&[v, x])]);
        a.sendmsg(x, &[b"two ", b"fds"], &ctl, None, MsgFlags::NONE)
            .unwrap();
        let mut control = vec![0u8; 256];
        a.recvmsg(y, &mut [&mut buf[..16]], &mut control, MsgFlags::NONE)
            .unwrap();
        for o in OptName::ALL {
            let _ = a.getsockopt(y, *o);
        }
        let _ = a.poll(x, Interest::READ, 50);
        let _ = a.getaddrinfo(Some(b"b".as_slice()), None, &AddrInfoHints::default());
        let _ = a.getaddrinfo(
            Some(b"localhost".as_slice()),
            Some(b"http".as_slice()),
            &AddrInfoHints::default(),
        );
        let _ = a.getnameinfo(&SockAddr::v6(a.ipv6(), 443), 0);
        let _ = a.interfaces();
        for fd in [c, v, x, y] {
            a.close(fd).unwrap();
        }
        sim.advance(Duration::from_secs(100));
    }

    #[test]
    fn the_kept_trace_holds_exactly_what_the_digest_folded() {
        for payloads in [false, true] {
            let sim = Sim::builder(9).trace_payloads(payloads).build();
            scenario(&sim);
            let w = sim.w.borrow();
            assert!(w.trace.count > 400, "{}", w.trace.count);
            assert_eq!(rehash(&w.trace), w.trace.digest, "payloads: {payloads}");
            // (Some events have more than 15 fields: their shapes are not cached.)
            let events = w.trace.events();
            assert!(events.iter().any(|e| e.fields.len() > 15));
            assert_eq!(events.len() as u64, w.trace.count);
        }
    }
}
