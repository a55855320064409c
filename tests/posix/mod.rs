//! Tests of the `posix` topic (see main.rs).
