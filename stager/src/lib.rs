//! St8ge: staging as one-off scheduler tasks
//!
//! Filled in by its own issue; see ARCHITECTURE.md.
