//! Tests of the `conformance` topic (see main.rs).
