//! Tests of the `lua` topic (see main.rs).
