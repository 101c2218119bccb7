//! OPI backend running instances as local processes
//!
//! Filled in by its own issue; see ARCHITECTURE.md.
