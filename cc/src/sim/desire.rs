//! Turns a simulated app into the `DesireAppRequestFromCC` CC would send
//! (`Diego::Protocol#desire_app_message` with the lifecycle's part merged in).

use std::collections::BTreeMap;

use url::Url;

use super::state::{App, Lifecycle, ORG_NAME, SPACE_NAME};
use crate::model::{DesireAppRequestFromCC, EnvironmentVariable, HttpRoute, RoutingInfo};

/// The port CC assumes for buildpack apps (`ProcessModel::DEFAULT_HTTP_PORT`).
pub const DEFAULT_PORT: u32 = 8080;

/// The record for `app`; droplet URIs point at `public_url`.
pub fn desire_message(app: &App, public_url: &Url) -> DesireAppRequestFromCC {
    let droplet = app.droplet.as_ref();
    let (droplet_uri, droplet_hash, docker_image) = match &app.lifecycle {
        Lifecycle::Docker { image } => (
            None,
            None,
            Some(
                droplet
                    .and_then(|d| d.docker_image.clone())
                    .unwrap_or_else(|| image.clone()),
            ),
        ),
        Lifecycle::Buildpack { .. } => {
            let hash = droplet.and_then(|d| d.hash.clone());
            let uri = hash.as_ref().map(|hash| {
                let mut url = public_url.clone();
                url.set_path(&format!(
                    "/internal/v2/droplets/{}/{hash}/download",
                    app.guid
                ));
                url.to_string()
            });
            (uri, hash, None)
        }
    };
    let start_command = app
        .command
        .clone()
        .or_else(|| droplet.and_then(|d| d.process_types.get("web").cloned()))
        .unwrap_or_default();
    let stack = match &app.lifecycle {
        Lifecycle::Buildpack { stack, .. } => stack.clone(),
        Lifecycle::Docker { .. } => "cflinuxfs4".into(),
    };
    DesireAppRequestFromCC {
        process_guid: app.process_guid(),
        droplet_uri,
        droplet_hash,
        docker_image,
        docker_user: None,
        docker_password: None,
        start_command,
        environment: environment(app),
        memory_mb: app.memory_mb,
        disk_mb: app.disk_mb,
        file_descriptors: 16384,
        num_instances: app.instances,
        routing_info: RoutingInfo {
            http_routes: app
                .routes
                .iter()
                .map(|hostname| HttpRoute {
                    hostname: hostname.clone(),
                    port: Some(DEFAULT_PORT),
                    route_service_url: None,
                    router_group_guid: None,
                    protocol: Some("http1".into()),
                })
                .collect(),
            tcp_routes: Vec::new(),
            internal_routes: Vec::new(),
        },
        routes: Some(app.routes.clone()),
        health_check_type: app.health_check_type.clone(),
        health_check_http_endpoint: app.health_check_http_endpoint.clone(),
        health_check_timeout_in_seconds: 60,
        ports: vec![DEFAULT_PORT],
        log_guid: app.guid.clone(),
        log_source: Some("APP/PROC/WEB".into()),
        stack,
        etag: app.etag(),
        allow_ssh: true,
        execution_metadata: droplet
            .map(|d| d.execution_metadata.clone())
            .unwrap_or_default(),
        volume_mounts: Vec::new(),
        egress_rules: Vec::new(),
        network: None,
        isolation_segment: None,
        extra: BTreeMap::new(),
    }
}

/// The running environment: CC's system variables, then the user's.
pub fn environment(app: &App) -> Vec<EnvironmentVariable> {
    let vcap_application = serde_json::json!({
        "application_id": app.guid,
        "application_name": app.name,
        "application_uris": app.routes,
        "application_version": app.version,
        "version": app.version,
        "name": app.name,
        "uris": app.routes,
        "space_name": SPACE_NAME,
        "organization_name": ORG_NAME,
        "limits": {"mem": app.memory_mb, "disk": app.disk_mb, "fds": 16384},
    });
    let mut env = vec![
        EnvironmentVariable {
            name: "VCAP_APPLICATION".into(),
            value: vcap_application.to_string(),
        },
        EnvironmentVariable {
            name: "MEMORY_LIMIT".into(),
            value: format!("{}m", app.memory_mb),
        },
        EnvironmentVariable {
            name: "VCAP_SERVICES".into(),
            value: "{}".into(),
        },
    ];
    env.extend(
        app.environment
            .iter()
            .map(|(name, value)| EnvironmentVariable {
                name: name.clone(),
                value: value.clone(),
            }),
    );
    env
}
