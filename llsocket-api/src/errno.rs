//! [`Errno`], the error of every socket operation, and [`GaiError`], the resolver's error.
//!
//! Constants come from `libc` for the target, so the simulator and the kernel
//! produce directly comparable values, and the host may report errors we do
//! not name (an `Errno` is any `i32`).

use std::fmt;

/// A C `errno` value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Errno = Errno(libc::$name);
            )*

            /// Every errno name this crate knows with its value, in declaration order.
            ///
            /// When two names share a value (EAGAIN/EWOULDBLOCK, EOPNOTSUPP/ENOTSUP on
            /// Linux), the first one listed is the canonical one, as lua-errno's map has it.
            pub const ALL: &'static [(&'static str, Errno)] = &[
                $((stringify!($name), Errno(libc::$name)),)*
            ];
        }
    };
}

// POSIX names available on every platform we build for. Order matters for
// aliases: the first name listed for a value is the canonical one.
errnos! {
    EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD,
    EAGAIN, ENOMEM, EACCES, EFAULT, ENOTBLK, EBUSY, EEXIST, EXDEV, ENODEV,
    ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE, ENOTTY, ETXTBSY, EFBIG, ENOSPC,
    ESPIPE, EROFS, EMLINK, EPIPE, EDOM, ERANGE, EDEADLK, ENAMETOOLONG, ENOLCK,
    ENOSYS, ENOTEMPTY, ELOOP, EWOULDBLOCK, ENOMSG, EIDRM, EREMOTE,
    EPROTO, EBADMSG, EOVERFLOW, EILSEQ, EUSERS, ENOTSOCK,
    EDESTADDRREQ, EMSGSIZE, EPROTOTYPE, ENOPROTOOPT, EPROTONOSUPPORT,
    ESOCKTNOSUPPORT, EOPNOTSUPP, ENOTSUP, EPFNOSUPPORT, EAFNOSUPPORT,
    EADDRINUSE, EADDRNOTAVAIL, ENETDOWN, ENETUNREACH, ENETRESET,
    ECONNABORTED, ECONNRESET, ENOBUFS, EISCONN, ENOTCONN, ESHUTDOWN,
    ETOOMANYREFS, ETIMEDOUT, ECONNREFUSED, EHOSTDOWN, EHOSTUNREACH,
    EALREADY, EINPROGRESS, ESTALE, EDQUOT, ECANCELED, EOWNERDEAD,
    ENOTRECOVERABLE,
}

impl Errno {
    /// The raw value.
    pub const fn code(self) -> i32 {
        self.0
    }

    /// The canonical symbolic name (`"EPIPE"`), or `None` for a value this crate does not name.
    pub fn name(self) -> Option<&'static str> {
        Self::ALL.iter().find(|(_, e)| *e == self).map(|(n, _)| *n)
    }

    /// Looks a name up (`"EPIPE"` → `Errno::EPIPE`).
    pub fn from_name(name: &str) -> Option<Errno> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }

    /// The C library's `strerror()` text ("Broken pipe").
    pub fn message(self) -> String {
        let text = std::io::Error::from_raw_os_error(self.0).to_string();
        // std renders "<strerror> (os error N)"; keep only the C text.
        match text.rfind(" (os error ") {
            Some(cut) => text[..cut].to_owned(),
            None => text,
        }
    }

    /// Whether a non-blocking caller should simply try again later
    /// (EAGAIN, EWOULDBLOCK or EINTR), as the Lua API's `again` value reports.
    pub fn is_again(self) -> bool {
        self == Errno::EAGAIN || self == Errno::EWOULDBLOCK || self == Errno::EINTR
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self, self.message())
    }
}

impl std::error::Error for Errno {}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// An `EAI_*` code returned by `getaddrinfo(3)` / `getnameinfo(3)`.
///
/// `EAI_SYSTEM` carries the errno that caused it in `system`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GaiError {
    /// The `EAI_*` code (negative on glibc).
    pub code: i32,
    /// For `EAI_SYSTEM`, the errno behind it.
    pub system: Option<Errno>,
}

macro_rules! gai_errors {
    ($($name:ident => $text:literal),* $(,)?) => {
        impl GaiError {
            $(
                #[doc = concat!("`", stringify!($name), "`: ", $text)]
                pub const $name: GaiError = GaiError { code: libc::$name, system: None };
            )*

            /// Every EAI name this crate knows, with its value and the usual `gai_strerror` text.
            pub const ALL: &'static [(&'static str, i32, &'static str)] = &[
                $((stringify!($name), libc::$name, $text),)*
            ];
        }
    };
}

gai_errors! {
    EAI_AGAIN => "Temporary failure in name resolution",
    EAI_BADFLAGS => "Bad value for ai_flags",
    EAI_FAIL => "Non-recoverable failure in name resolution",
    EAI_FAMILY => "ai_family not supported",
    EAI_MEMORY => "Memory allocation failure",
    EAI_NONAME => "Name or service not known",
    EAI_SERVICE => "Servname not supported for ai_socktype",
    EAI_SOCKTYPE => "ai_socktype not supported",
    EAI_SYSTEM => "System error",
    EAI_OVERFLOW => "Argument buffer overflow",
}

impl GaiError {
    /// A plain `EAI_*` code.
    pub const fn new(code: i32) -> GaiError {
        GaiError { code, system: None }
    }

    /// The symbolic name (`"EAI_NONAME"`).
    pub fn name(self) -> Option<&'static str> {
        Self::ALL
            .iter()
            .find(|(_, c, _)| *c == self.code)
            .map(|(n, _, _)| *n)
    }

    /// A `gai_strerror`-style text. Backends with the real resolver may prefer the C library's.
    pub fn message(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c, _)| *c == self.code)
            .map(|(_, _, t)| *t)
            .unwrap_or("Unknown error")
    }
}

impl fmt::Debug for GaiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.system) {
            (Some(n), Some(e)) => write!(f, "{n}({e:?})"),
            (Some(n), None) => write!(f, "{n}"),
            (None, _) => write!(f, "GaiError({})", self.code),
        }
    }
}

impl fmt::Display for GaiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self, self.message())
    }
}

impl std::error::Error for GaiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_follow_lua_errno() {
        assert_eq!(Errno(libc::EAGAIN).name(), Some("EAGAIN"));
        assert_eq!(Errno(libc::EOPNOTSUPP).name(), Some("EOPNOTSUPP"));
        assert_eq!(Errno::from_name("EPIPE"), Some(Errno::EPIPE));
        assert_eq!(Errno(99999).name(), None);
    }

    #[test]
    fn message_is_strerror_text() {
        assert_eq!(Errno::EPIPE.message(), "Broken pipe");
        assert!(Errno::EAGAIN.is_again() && Errno::EINTR.is_again());
        assert!(!Errno::EPIPE.is_again());
    }
}
