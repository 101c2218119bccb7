//! OPI backend for Kubernetes (kube + k8s-openapi)
//!
//! Filled in by its own issue; see ARCHITECTURE.md.
