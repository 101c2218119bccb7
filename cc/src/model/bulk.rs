//! The bulk API: `GET /internal/bulk/apps` (fingerprints or full records, paged by
//! token) and `POST /internal/bulk/apps` (full records for chosen process guids).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Etag, ProcessGuid};

/// The paging token: the database id of the last app of the previous page.
/// CC answers `{"id": null}` on an empty page and reads a missing or null id as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkToken {
    /// Last id seen; `None` before the first page and after the last.
    pub id: Option<u64>,
}

impl BulkToken {
    /// The token that starts a walk: `{"id":0}`.
    pub fn start() -> Self {
        BulkToken { id: Some(0) }
    }

    /// The token as the JSON text CC expects in the `token` query parameter
    /// (before percent-encoding).
    pub fn to_query_value(&self) -> String {
        match self.id {
            Some(id) => format!("{{\"id\":{id}}}"),
            None => "{\"id\":null}".to_owned(),
        }
    }
}

/// One app's fingerprint: enough to decide whether the full record changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `<app_guid>-<version>`.
    pub process_guid: ProcessGuid,
    /// Changes whenever anything about the desired app changes.
    pub etag: Etag,
}

/// A page of `GET /internal/bulk/apps?format=fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintsPage {
    /// This page's fingerprints; empty means the walk is over.
    pub fingerprints: Vec<Fingerprint>,
    /// The token for the next page.
    pub token: BulkToken,
}

/// A walk of fingerprint pages, refusing what would make the list it builds
/// wrong — and a wrong list makes the Sink stop apps CC still desires: a
/// token that does not move forward (CC's token is the id of the page's last
/// app, so it only grows; going back re-reads pages and skips others), the
/// same process guid twice, or a page larger than asked for.
#[derive(Debug, Clone)]
pub struct FingerprintWalk {
    batch_size: u32,
    token: BulkToken,
    seen: std::collections::HashSet<String>,
    fingerprints: Vec<Fingerprint>,
}

impl FingerprintWalk {
    /// A walk asking for `batch_size` fingerprints per page.
    pub fn new(batch_size: u32) -> Self {
        Self {
            batch_size,
            token: BulkToken::start(),
            seen: std::collections::HashSet::new(),
            fingerprints: Vec::new(),
        }
    }

    /// The token to ask the next page with.
    pub fn token(&self) -> BulkToken {
        self.token
    }

    /// Takes the next page: `Ok(true)` when the walk is over (an empty page),
    /// `Err(problem)` when the page cannot be trusted.
    pub fn add(&mut self, page: FingerprintsPage) -> Result<bool, String> {
        if page.fingerprints.is_empty() {
            return Ok(true);
        }
        let advanced =
            matches!((page.token.id, self.token.id), (Some(next), Some(now)) if next > now);
        if !advanced {
            return Err(format!(
                "a non-empty page must advance the token past {}, got {}",
                self.token.to_query_value(),
                page.token.to_query_value()
            ));
        }
        if page.fingerprints.len() > self.batch_size as usize {
            return Err(format!(
                "a page of {} fingerprints, more than batch_size {}",
                page.fingerprints.len(),
                self.batch_size
            ));
        }
        for fingerprint in &page.fingerprints {
            if !self.seen.insert(fingerprint.process_guid.0.clone()) {
                return Err(format!(
                    "process guid {} listed twice",
                    fingerprint.process_guid.0
                ));
            }
        }
        self.fingerprints.extend(page.fingerprints);
        self.token = page.token;
        Ok(false)
    }

    /// Every fingerprint of the walk.
    pub fn into_fingerprints(self) -> Vec<Fingerprint> {
        self.fingerprints
    }
}

/// A page of `GET /internal/bulk/apps` without `format=fingerprint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredAppsPage {
    /// This page's full records; empty means the walk is over.
    pub apps: Vec<DesireAppRequestFromCC>,
    /// The token for the next page.
    pub token: BulkToken,
}

/// One environment variable, as CC sends them: a list of name/value pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    /// Variable name.
    pub name: String,
    /// Variable value.
    pub value: String,
}

/// An HTTP route of `routing_info.http_routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// `host.domain[/path]`.
    pub hostname: String,
    /// The app port the route maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Route service, if bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_service_url: Option<String>,
    /// Router group of a shared domain, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_group_guid: Option<String>,
    /// `http1` or `http2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A TCP route of `routing_info.tcp_routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpRoute {
    /// The TCP router group.
    pub router_group_guid: String,
    /// Port on the router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_port: Option<u32>,
    /// Port in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u32>,
}

/// `routing_info` of a desired app (`Diego::Protocol::RoutingInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingInfo {
    /// External HTTP routes; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_routes: Vec<HttpRoute>,
    /// TCP routes; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_routes: Vec<TcpRoute>,
    /// Internal (container-to-container) routes; always present, maybe empty.
    #[serde(default)]
    pub internal_routes: Vec<serde_json::Value>,
}

/// One desired app as CC describes it to a scheduler bridge
/// (`Diego::Protocol#desire_app_message`, decoded by `cc_messages.DesireAppRequestFromCC`).
///
/// Buildpack apps carry `droplet_uri`/`droplet_hash`; Docker apps carry `docker_image`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesireAppRequestFromCC {
    /// `<app_guid>-<version>`.
    pub process_guid: ProcessGuid,
    /// Where to download the droplet (buildpack apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub droplet_uri: Option<String>,
    /// The droplet's checksum (buildpack apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub droplet_hash: Option<String>,
    /// The image (Docker apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image: Option<String>,
    /// Registry user for a private image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_user: Option<String>,
    /// Registry password for a private image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_password: Option<String>,
    /// The start command (user-given or detected); may be empty for Docker apps.
    #[serde(default)]
    pub start_command: String,
    /// Running environment.
    #[serde(default)]
    pub environment: Vec<EnvironmentVariable>,
    /// Memory limit in MB.
    pub memory_mb: u64,
    /// Disk limit in MB.
    pub disk_mb: u64,
    /// File descriptor limit.
    #[serde(default)]
    pub file_descriptors: u64,
    /// Desired instance count.
    pub num_instances: u32,
    /// Routes.
    #[serde(default)]
    pub routing_info: RoutingInfo,
    /// Hostnames of the app's routes (older field, kept by CC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    /// `port`, `http`, `process` (or legacy `none`/empty).
    #[serde(default)]
    pub health_check_type: String,
    /// Path probed by an `http` health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_http_endpoint: Option<String>,
    /// Start timeout in seconds.
    #[serde(default)]
    pub health_check_timeout_in_seconds: u64,
    /// Ports the app listens on.
    #[serde(default)]
    pub ports: Vec<u32>,
    /// Log guid (the app guid for v3 apps).
    #[serde(default)]
    pub log_guid: String,
    /// Log source (`APP/PROC/WEB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_source: Option<String>,
    /// Stack name (`cflinuxfs4`).
    #[serde(default)]
    pub stack: String,
    /// The etag, also in the fingerprint.
    pub etag: Etag,
    /// Whether `cf ssh` is allowed.
    #[serde(default)]
    pub allow_ssh: bool,
    /// Staging's execution metadata (a JSON string for Docker apps).
    #[serde(default)]
    pub execution_metadata: String,
    /// Volume mounts, passed through untouched.
    #[serde(default)]
    pub volume_mounts: Vec<serde_json::Value>,
    /// Egress rules, passed through untouched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_rules: Vec<serde_json::Value>,
    /// Container network info, passed through untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<serde_json::Value>,
    /// Isolation segment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation_segment: Option<String>,
    /// Fields this type does not model, kept so nothing CC sends is lost.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_query_values() {
        assert_eq!(BulkToken::start().to_query_value(), r#"{"id":0}"#);
        assert_eq!(BulkToken { id: Some(42) }.to_query_value(), r#"{"id":42}"#);
        assert_eq!(BulkToken { id: None }.to_query_value(), r#"{"id":null}"#);
        let parsed: BulkToken = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed.id, None);
    }

    fn page(guids: &[&str], id: Option<u64>) -> FingerprintsPage {
        FingerprintsPage {
            fingerprints: guids
                .iter()
                .map(|g| Fingerprint {
                    process_guid: ProcessGuid((*g).to_owned()),
                    etag: Etag("1.0".into()),
                })
                .collect(),
            token: BulkToken { id },
        }
    }

    #[test]
    fn a_walk_refuses_pages_that_would_make_its_list_wrong() {
        let mut walk = FingerprintWalk::new(2);
        assert_eq!(walk.add(page(&["a-1", "b-1"], Some(5))), Ok(false));
        assert_eq!(walk.token(), BulkToken { id: Some(5) });
        for (bad, problem) in [
            (page(&["c-1"], Some(5)), "must advance"),
            (page(&["c-1"], Some(3)), "must advance"),
            (page(&["c-1"], None), "must advance"),
            (
                page(&["c-1", "d-1", "e-1"], Some(9)),
                "more than batch_size 2",
            ),
            (page(&["a-1"], Some(9)), "a-1 listed twice"),
            (page(&["c-1", "c-1"], Some(9)), "c-1 listed twice"),
        ] {
            let error = walk.clone().add(bad).unwrap_err();
            assert!(error.contains(problem), "{error}");
        }
        assert_eq!(walk.add(page(&["c-1"], Some(7))), Ok(false));
        assert_eq!(walk.add(page(&[], None)), Ok(true));
        let guids: Vec<String> = walk
            .into_fingerprints()
            .into_iter()
            .map(|f| f.process_guid.0)
            .collect();
        assert_eq!(guids, ["a-1", "b-1", "c-1"]);
    }
}
