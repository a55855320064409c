//! The default backend (POSIX) and the platform's constant set.

use std::rc::Rc;

use llsocket_api::SocketOps;

/// The backend `require('llsocket')` uses.
pub fn default_backend() -> Rc<dyn SocketOps> {
    Rc::new(llsocket_posix::Posix)
}

/// The constants exported on the module table (constants.md presence rule).
pub(crate) fn constants() -> &'static [(&'static str, i64)] {
    llsocket_posix::lua_constants()
}
