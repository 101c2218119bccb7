//! The NATS messages gorouter reads: `router.register` / `router.unregister`
//! bodies and the `router.start` greeting.

use std::collections::BTreeMap;

use opi::routing::Endpoint;
use serde::{Deserialize, Serialize};

/// Subject gorouter adds routes from.
pub const REGISTER: &str = "router.register";
/// Subject gorouter removes routes from.
pub const UNREGISTER: &str = "router.unregister";
/// Subject gorouter announces itself on when it starts.
pub const ROUTER_START: &str = "router.start";
/// Subject a registrar asks running routers to announce themselves on.
pub const ROUTER_GREET: &str = "router.greet";

/// The body of `router.register` / `router.unregister`, with the field names
/// of gorouter's `mbus.RegistryMessage` and CF route-emitter's messages:
/// requests for any of `uris` go to `host:port`; `private_instance_id` (the
/// instance guid) is also the SAN gorouter expects on the backend's
/// certificate when it dials TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryMessage {
    /// IP gorouter dials.
    pub host: String,
    /// Port gorouter dials.
    pub port: u16,
    /// Route hostnames (with optional path) this endpoint serves.
    pub uris: Vec<String>,
    /// The app guid (CC's log guid).
    pub app: String,
    /// The instance guid.
    pub private_instance_id: String,
    /// The instance index, as a decimal string.
    pub private_instance_index: String,
    /// The name gorouter verifies on the instance's TLS certificate.
    pub server_cert_domain_san: String,
    /// Metric tags; `component` is always `route-emitter`.
    pub tags: BTreeMap<String, String>,
}

impl RegistryMessage {
    /// The message for `endpoint` carrying `uris`.
    pub fn new(endpoint: &Endpoint, uris: Vec<String>) -> Self {
        Self {
            host: endpoint.host.clone(),
            port: endpoint.port,
            uris,
            app: endpoint.app_guid.clone(),
            private_instance_id: endpoint.instance_guid.clone(),
            private_instance_index: endpoint.index.to_string(),
            server_cert_domain_san: endpoint.instance_guid.clone(),
            tags: BTreeMap::from([("component".to_owned(), "route-emitter".to_owned())]),
        }
    }
}

/// What gorouter publishes on `router.start` and answers to `router.greet`
/// (its `common.RouterStart`); only the interval matters to an emitter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RouterGreeting {
    /// How often registrations must be repeated at least (0: not said).
    #[serde(rename = "minimumRegisterIntervalInSeconds", default)]
    pub minimum_register_interval_in_seconds: u64,
    /// After how long without a repeat gorouter prunes a route.
    #[serde(rename = "pruneThresholdInSeconds", default)]
    pub prune_threshold_in_seconds: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn register_message_has_gorouters_field_names() {
        let endpoint = Endpoint {
            process_guid: "app-guid-v1".into(),
            app_guid: "app-guid".into(),
            instance_guid: "instance-guid".into(),
            index: 3,
            host: "10.0.0.7".into(),
            port: 8080,
            container_port: 8080,
            hostnames: vec!["a.example.com".into()],
        };
        let json =
            serde_json::to_value(RegistryMessage::new(&endpoint, endpoint.hostnames.clone()))
                .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "host": "10.0.0.7",
                "port": 8080,
                "uris": ["a.example.com"],
                "app": "app-guid",
                "private_instance_id": "instance-guid",
                "private_instance_index": "3",
                "server_cert_domain_san": "instance-guid",
                "tags": {"component": "route-emitter"},
            })
        );
    }

    #[test]
    fn greeting_parses_gorouters_router_start() {
        let greeting: RouterGreeting = serde_json::from_str(
            r#"{"id":"4321-abc","hosts":["10.0.0.1"],"minimumRegisterIntervalInSeconds":5,"pruneThresholdInSeconds":120}"#,
        )
        .unwrap();
        assert_eq!(greeting.minimum_register_interval_in_seconds, 5);
        assert_eq!(greeting.prune_threshold_in_seconds, 120);
    }
}
