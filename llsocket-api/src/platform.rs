//! [`Platform`]: the facts about the host that the Lua `env` table reports.

/// Facts about the (real or simulated) platform.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Platform {
    /// `"apple"`, `"dragonfly"`, `"freebsd"`, `"netbsd"`, `"openbsd"`, `"linux"` or `"unknown"`.
    pub os: &'static str,
    /// The capacity of `sockaddr_un.sun_path` (108 on Linux, 104 on BSD/macOS).
    pub unix_path_max: usize,
    /// `SOMAXCONN`, the default `listen` backlog.
    pub somaxconn: i32,
}
