//! Sink: convergence loop from Cloud Controller to OPI
//!
//! Filled in by its own issue; see ARCHITECTURE.md.
