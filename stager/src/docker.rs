//! Docker staging: no task runs. St8ge reads the image's config with
//! `oci-client` and reports what CC's Docker staging completion handler reads:
//! `lifecycle_metadata.docker_image`, `process_types: {web: ""}` (CC then uses
//! the image's own command) and `execution_metadata`, the JSON text Diego's
//! Docker lifecycle writes: `{cmd, entrypoint, workdir, ports:[{Port,Protocol}], user}`.

use std::collections::BTreeMap;

use cc::model::{LifecycleMetadata, StagingError, StagingResult};
use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use serde::{Deserialize, Serialize};

use crate::lifecycle::{failure, ids};

/// The part of an OCI/Docker image config staging reads.
#[derive(Debug, Default, Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    working_dir: Option<String>,
}

/// Diego's Docker `ExecutionMetadata`, serialised as CC stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionMetadata {
    /// The image's `Cmd`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// The image's `Entrypoint`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// The image's `WorkingDir`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workdir: String,
    /// The image's exposed ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// The image's `User`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
}

/// One exposed port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// Port number.
    #[serde(rename = "Port")]
    pub port: u16,
    /// `tcp` or `udp`.
    #[serde(rename = "Protocol")]
    pub protocol: String,
}

/// Execution metadata from an image config's JSON (pure). Ports are sorted by
/// number; `8080/tcp` and `8080` (tcp implied) are both understood.
pub fn execution_metadata(config_json: &str) -> Result<ExecutionMetadata, String> {
    let image: ImageConfig =
        serde_json::from_str(config_json).map_err(|e| format!("bad image config: {e}"))?;
    let run = image.config.unwrap_or_default();
    let mut ports = Vec::new();
    for spec in run.exposed_ports.unwrap_or_default().keys() {
        let (number, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let port = number
            .parse::<u16>()
            .map_err(|_| format!("bad exposed port {spec:?} in the image config"))?;
        ports.push(Port {
            port,
            protocol: protocol.to_ascii_lowercase(),
        });
    }
    ports.sort_by(|a, b| (a.port, &a.protocol).cmp(&(b.port, &b.protocol)));
    Ok(ExecutionMetadata {
        cmd: run.cmd.unwrap_or_default(),
        entrypoint: run.entrypoint.unwrap_or_default(),
        workdir: run.working_dir.unwrap_or_default(),
        ports,
        user: run.user.unwrap_or_default(),
    })
}

/// The staging result for `image` with `metadata` (pure).
pub fn staging_result(image: &str, metadata: &ExecutionMetadata) -> StagingResult {
    StagingResult {
        lifecycle_type: "docker".into(),
        lifecycle_metadata: LifecycleMetadata {
            docker_image: Some(image.to_owned()),
            ..LifecycleMetadata::default()
        },
        process_types: BTreeMap::from([("web".to_owned(), String::new())]),
        execution_metadata: serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into()),
        extra: BTreeMap::new(),
    }
}

/// Whether a registry host is this machine (plain HTTP is allowed there only).
fn is_local(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(host, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            host
        } else {
            registry
        }
    });
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Reads `image`'s config from its registry (anonymously, or with the given
/// credentials) and makes the staging result.
pub async fn stage(
    image: &str,
    username: &str,
    password: &str,
) -> Result<StagingResult, StagingError> {
    let fail = |message: String| failure(ids::STAGING, message);
    let reference: Reference = image
        .parse()
        .map_err(|e| fail(format!("invalid docker image {image:?}: {e}")))?;
    let registry = reference.resolve_registry().to_owned();
    let protocol = if is_local(&registry) {
        ClientProtocol::HttpsExcept(vec![registry.clone()])
    } else {
        ClientProtocol::Https
    };
    cube_runtime::install_crypto_provider();
    let client = oci_client::Client::new(ClientConfig {
        protocol,
        ..ClientConfig::default()
    });
    let auth = if username.is_empty() {
        RegistryAuth::Anonymous
    } else {
        RegistryAuth::Basic(username.to_owned(), password.to_owned())
    };
    let (_, _, config) = client
        .pull_manifest_and_config(&reference, &auth)
        .await
        .map_err(|e| {
            fail(format!(
                "cannot read the config of docker image {image}: {e}"
            ))
        })?;
    let metadata = execution_metadata(&config).map_err(|e| fail(format!("{image}: {e}")))?;
    Ok(staging_result(image, &metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_metadata_from_an_image_config() {
        let config = r#"{"architecture":"amd64","os":"linux","config":{
            "Cmd":["nginx","-g","daemon off;"],"Entrypoint":["/docker-entrypoint.sh"],
            "ExposedPorts":{"8080/tcp":{},"80/tcp":{},"53/udp":{}},"User":"101","WorkingDir":"/srv"}}"#;
        let metadata = execution_metadata(config).unwrap();
        assert_eq!(metadata.cmd, ["nginx", "-g", "daemon off;"]);
        assert_eq!(metadata.entrypoint, ["/docker-entrypoint.sh"]);
        assert_eq!(metadata.user, "101");
        assert_eq!(
            metadata.ports,
            [
                Port {
                    port: 53,
                    protocol: "udp".into()
                },
                Port {
                    port: 80,
                    protocol: "tcp".into()
                },
                Port {
                    port: 8080,
                    protocol: "tcp".into()
                },
            ]
        );
        let result = staging_result("docker.io/library/nginx:1.27", &metadata);
        let json = serde_json::to_value(cc::model::StagingCompletion::Succeeded(result)).unwrap();
        assert_eq!(json["result"]["lifecycle_type"], "docker");
        assert_eq!(
            json["result"]["lifecycle_metadata"]["docker_image"],
            "docker.io/library/nginx:1.27"
        );
        assert_eq!(json["result"]["process_types"]["web"], "");
        let text = json["result"]["execution_metadata"].as_str().unwrap();
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            back["ports"][1],
            serde_json::json!({"Port": 80, "Protocol": "tcp"})
        );
        assert_eq!(back["workdir"], "/srv");
    }

    #[test]
    fn empty_config_and_bad_ports() {
        let metadata = execution_metadata(r#"{"config":null}"#).unwrap();
        assert_eq!(metadata, ExecutionMetadata::default());
        assert_eq!(serde_json::to_string(&metadata).unwrap(), "{}");
        let error =
            execution_metadata(r#"{"config":{"ExposedPorts":{"http/tcp":{}}}}"#).unwrap_err();
        assert!(error.contains("http/tcp"), "{error}");
        assert!(execution_metadata("\"nope\"").is_err());
    }

    #[test]
    fn plain_http_only_for_this_machine() {
        assert!(is_local("127.0.0.1:5000"));
        assert!(is_local("localhost"));
        assert!(!is_local("docker.io"));
        assert!(!is_local("registry.example.com:5000"));
    }
}
