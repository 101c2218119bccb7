//! Fake Kubernetes apiserver, fake BBS and fixtures for tests
//!
//! Filled in by its own issue; see ARCHITECTURE.md.
