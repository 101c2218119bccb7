//! OPI backend for Diego's BBS (protobuf over mTLS)
//!
//! Filled in by its own issue; see ARCHITECTURE.md.
