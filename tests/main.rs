//! The one integration test binary: every topic is a module, so the suite links once.
//!
//! | module | what it checks |
//! |---|---|
//! | `posix` | the POSIX backend against the real kernel (loopback, socketpairs, unix sockets) |
//! | `conformance` | one body per behaviour, run on the POSIX backend and on the simulator |
//! | `proptest_diff` | random operation sequences on the kernel and the simulator, outcomes compared (tests/proptest/) |
//! | `sim` | simulator-only behaviour: determinism, virtual time, fault injection |
//! | `lua` | the Lua API: the Lua-written suite on the bundled Lua, and a real `require` of the built module |

mod conformance;
mod lua;
mod posix;
#[path = "proptest/mod.rs"]
mod proptest_diff;
mod sim;
