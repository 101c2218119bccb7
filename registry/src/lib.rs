//! OCI distribution registry serving CF droplets as images
//!
//! Filled in by its own issue; see ARCHITECTURE.md.
