//! Unit tests of the binding, in-process on the vendored Lua.
