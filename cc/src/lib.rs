//! Cloud Controller internal-API types, client and simulator
//!
//! Filled in by its own issue; see ARCHITECTURE.md.
