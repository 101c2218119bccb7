//! One module per scenario.

pub mod access;
pub mod bbs_desire;
pub mod droplet_import;
pub mod fake_cluster;
pub mod opi_desire;
pub mod registry_pull;
pub mod sink_converge;
pub mod watch_memory;
