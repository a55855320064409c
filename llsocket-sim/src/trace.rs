//! The trace and its digest: one event per operation (with its arguments and everything the
//! call let the program observe) and per thing the wire did, folded into a 64-bit digest.
//!
//! An event is built field by field ([`Event`]) and each field is folded into the event's hash
//! as it is added, from a fixed-width little-endian encoding of its value: integers as `u64`,
//! addresses as their octets, port, flow info and scope id, byte strings as 8-byte
//! little-endian words plus their length, text (option values, resolver answers) as its
//! UTF-8 bytes. Nothing is hashed through `usize`, pointers, `std`'s `DefaultHasher` or
//! `RandomState`, so the digest is the same on every architecture and build profile. When the
//! trace is kept the field values are stored too (in one shared vector, not one allocation
//! per event); when it is not, only the hashing runs. Payload bytes are stored only when
//! asked for ([`crate::SimBuilder::trace_payloads`]); the digest covers them either way.

use std::fmt::{self, Write as _};
use std::time::Duration;

use llsocket_api::{Errno, Family, Fd, Interest, MsgFlags, SockAddr, SockType, UnixAddr};

use crate::world::Nanos;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Folds one 64-bit word into a hash (FNV-1a style, a word at a time, with a xor-shift so
/// high bits reach the low ones). For a fixed state, different words give different states,
/// and for a fixed word it is a bijection of the state: a changed word always changes the
/// final digest when everything after it is the same.
#[inline]
fn mix(h: u64, x: u64) -> u64 {
    let h = (h ^ x).wrapping_mul(FNV_PRIME);
    h ^ (h >> 32)
}

/// Folds bytes into a hash: 8-byte little-endian words, the zero-padded rest, then the length.
#[inline]
fn fold_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(last));
    }
    mix(h, bytes.len() as u64)
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
        if self.n > 0 {
            self.word[self.n..].fill(0);
            self.h = mix(self.h, u64::from_le_bytes(self.word));
        }
        (mix(self.h, self.len), self.keep)
    }
}

/// Folds an address: a variant tag, then fixed-width fields.
fn fold_addr(h: u64, a: &SockAddr) -> u64 {
    match a {
        SockAddr::V4(a) => mix(
            mix(h, 4),
            (u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port()),
        ),
        SockAddr::V6(a) => {
            let ip = u128::from(*a.ip());
            let h = mix(mix(mix(h, 6), (ip >> 64) as u64), ip as u64);
            let h = mix(h, u64::from(a.port()));
            mix(h, (u64::from(a.flowinfo()) << 32) | u64::from(a.scope_id()))
        }
        SockAddr::Unix(UnixAddr::Unnamed) => mix(h, 0x100),
        SockAddr::Unix(UnixAddr::Path(p)) => fold_bytes(mix(h, 0x200), p),
        SockAddr::Unix(UnixAddr::Abstract(p)) => fold_bytes(mix(h, 0x300), p),
        SockAddr::Other { family, data } => {
            fold_bytes(mix(mix(h, 0x400), family.0 as u32 as u64), data)
        }
    }
}

// Tags that start each field's encoding (so optional fields cannot be confused).
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
/// Separates the arguments from the result.
const T_ARROW: u64 = 0xa770;

/// One field value of a kept event.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Val {
    Int(i64),
    Fd(i32),
    Bool(bool),
    Errno(i32),
    Flags(i32),
    Addr(SockAddr),
    /// A payload: its length and hash, and the bytes when payloads are kept.
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

/// A named field of a kept event (an empty name shows the value alone).
#[derive(Clone, PartialEq, Eq, Debug)]
struct Field {
    name: &'static str,
    val: Val,
}

/// `Rec::res` of an event without a result part.
const NO_RES: u32 = u32::MAX;

/// A kept event; its fields are `fields[start..end]` of the trace, the result from `res`.
#[derive(Clone, Copy, Debug)]
struct Rec {
    t: Nanos,
    host: u32,
    op: &'static str,
    hash: u64,
    start: u32,
    res: u32,
    end: u32,
}

/// The world's trace: the digest always, the events when kept.
#[derive(Debug)]
pub(crate) struct Trace {
    pub keep: bool,
    pub payloads: bool,
    pub digest: u64,
    /// Events recorded (kept or not).
    pub count: u64,
    recs: Vec<Rec>,
    fields: Vec<Field>,
    /// Host names, by host index.
    pub names: Vec<String>,
}

impl Trace {
    pub(crate) fn new(keep: bool, payloads: bool) -> Trace {
        Trace {
            keep,
            payloads,
            digest: FNV_OFFSET,
            count: 0,
            recs: Vec::new(),
            fields: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Starts an event at virtual time `t` on `host`.
    #[inline]
    pub(crate) fn ev(&mut self, t: Nanos, host: usize, op: &'static str) -> Event<'_> {
        let h = fold_bytes(mix(mix(FNV_OFFSET, t), host as u64), op.as_bytes());
        let start = self.fields.len();
        Event {
            tr: self,
            t,
            host,
            op,
            h,
            start,
            res: None,
        }
    }

    /// The kept events, materialised.
    pub(crate) fn events(&self) -> Vec<TraceEvent> {
        self.recs
            .iter()
            .map(|r| TraceEvent {
                t: r.t,
                host: self
                    .names
                    .get(r.host as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("h{}", r.host)),
                op: r.op,
                hash: r.hash,
                fields: self.fields[r.start as usize..r.end as usize].to_vec(),
                res: (r.res != NO_RES).then(|| (r.res - r.start) as usize),
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
    start: usize,
    res: Option<usize>,
}

impl Event<'_> {
    #[inline]
    fn put(mut self, tag: u64, word: u64, name: &'static str, val: impl FnOnce() -> Val) -> Self {
        self.h = mix(mix(self.h, tag), word);
        if self.tr.keep {
            self.tr.fields.push(Field { name, val: val() });
        }
        self
    }

    /// An integer.
    #[inline]
    pub(crate) fn int(self, name: &'static str, v: i64) -> Self {
        self.put(T_INT, v as u64, name, || Val::Int(v))
    }

    /// A descriptor number.
    #[inline]
    pub(crate) fn fd(self, name: &'static str, fd: Fd) -> Self {
        self.put(T_FD, fd.0 as u32 as u64, name, || Val::Fd(fd.0))
    }

    /// A flag.
    #[inline]
    pub(crate) fn bool(self, name: &'static str, v: bool) -> Self {
        self.put(T_BOOL, u64::from(v), name, || Val::Bool(v))
    }

    /// `MSG_*` flags, only when some are set.
    #[inline]
    pub(crate) fn flags(self, name: &'static str, f: MsgFlags) -> Self {
        if f.0 == 0 {
            return self;
        }
        self.put(T_FLAGS, f.0 as u32 as u64, name, || Val::Flags(f.0))
    }

    pub(crate) fn family(self, name: &'static str, v: Family) -> Self {
        self.put(T_FAMILY, v.0 as u32 as u64, name, || Val::Family(v.0))
    }

    pub(crate) fn ty(self, name: &'static str, v: SockType) -> Self {
        self.put(T_TYPE, v.0 as u32 as u64, name, || Val::Type(v.0))
    }

    pub(crate) fn interest(self, name: &'static str, i: Interest) -> Self {
        let b = u8::from(i.read) | (u8::from(i.write) << 1) | (u8::from(i.except) << 2);
        self.put(T_INTEREST, u64::from(b), name, || Val::Interest(b))
    }

    /// An address.
    #[inline]
    pub(crate) fn addr(mut self, name: &'static str, a: &SockAddr) -> Self {
        self.h = fold_addr(mix(self.h, T_ADDR), a);
        if self.tr.keep {
            self.tr.fields.push(Field {
                name,
                val: Val::Addr(a.clone()),
            });
        }
        self
    }

    /// An optional address (`-` when absent).
    pub(crate) fn addr_opt(self, name: &'static str, a: Option<&SockAddr>) -> Self {
        match a {
            Some(a) => self.addr(name, a),
            None => self.put(T_NONE, 0, name, || Val::None),
        }
    }

    /// Payload bytes: hashed always, stored only when the trace keeps payloads.
    #[inline]
    pub(crate) fn bytes(mut self, name: &'static str, data: &[u8]) -> Self {
        let hash = fold_bytes(FNV_OFFSET, data);
        self.h = mix(mix(self.h, T_BYTES), hash);
        if self.tr.keep {
            self.tr.fields.push(Field {
                name,
                val: Val::Bytes {
                    len: data.len() as u64,
                    hash,
                    data: self.tr.payloads.then(|| data.to_vec()),
                },
            });
        }
        self
    }

    /// Descriptor numbers (passed or received as `SCM_RIGHTS`).
    pub(crate) fn fds(mut self, name: &'static str, fds: &[Fd]) -> Self {
        self.h = mix(mix(self.h, T_FDS), fds.len() as u64);
        for fd in fds {
            self.h = mix(self.h, fd.0 as u32 as u64);
        }
        if self.tr.keep {
            self.tr.fields.push(Field {
                name,
                val: Val::Fds(fds.iter().map(|f| f.0).collect()),
            });
        }
        self
    }

    /// Text (an option value, a resolver answer), hashed as it is formatted.
    pub(crate) fn text(mut self, name: &'static str, args: fmt::Arguments<'_>) -> Self {
        let mut t = TextFold {
            h: mix(self.h, T_TEXT),
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
            self.tr.fields.push(Field {
                name,
                val: Val::Text(s),
            });
        }
        self
    }

    /// Starts the result part.
    #[inline]
    pub(crate) fn arrow(mut self) -> Self {
        self.h = mix(self.h, T_ARROW);
        self.res = Some(self.tr.fields.len());
        self
    }

    /// The result: `ok` (with what `f` adds) or the errno.
    #[inline]
    pub(crate) fn res<T>(
        self,
        r: &llsocket_api::Result<T>,
        f: impl FnOnce(Self, &T) -> Self,
    ) -> Self {
        let e = self.arrow();
        match r {
            Ok(v) => f(e, v),
            Err(err) => e.put(T_ERRNO, err.0 as u32 as u64, "", || Val::Errno(err.0)),
        }
    }

    /// Folds the event into the digest (and keeps it).
    #[inline]
    pub(crate) fn end(self) {
        let tr = self.tr;
        tr.digest = mix(tr.digest, self.h);
        tr.count += 1;
        if tr.keep {
            let end = tr.fields.len() as u32;
            tr.recs.push(Rec {
                t: self.t,
                host: self.host as u32,
                op: self.op,
                hash: self.h,
                start: self.start as u32,
                res: self.res.map_or(NO_RES, |r| r as u32),
                end,
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
    hash: u64,
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

    /// The event's hash (what it contributes to [`crate::Sim::trace_digest`]).
    pub fn hash(&self) -> u64 {
        self.hash
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
