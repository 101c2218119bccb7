//! One module per scenario.

pub mod droplet_import;
pub mod registry_pull;
pub mod sink_converge;
