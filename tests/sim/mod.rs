//! Tests of the `sim` topic (see main.rs).
