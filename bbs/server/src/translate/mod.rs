//! Pure translation between the BBS models Cloud Controller speaks
//! (`bbs_models`) and Cube's validated OPI domain (`opi::model`). No I/O.
//!
//! - [`lrp`]: a `DesiredLRP` CC desires → [`opi::model::DesiredLrp`] (or a
//!   [`Refusal`] naming the BBS field Cube cannot honour), and back: the LRP as
//!   CC desired it, its scheduling info, and `DesiredLRPUpdate` →
//!   [`opi::model::LrpUpdate`].
//! - [`actual`]: a backend's instances and endpoints → `ActualLRP`s.
//! - [`fixtures`]: CC-shaped `DesiredLRP`s for tests.
//!
//! # Field by field
//!
//! Every field CC sets (bbs-spec §2) is either carried by the OPI model,
//! kept in the stored copy (metadata Cube does not act on, returned on reads),
//! or refused. Nothing is silently dropped except where noted as *ignored*,
//! each with its reason:
//!
//! | BBS field | Cube |
//! |---|---|
//! | `process_guid` | [`lrp_id`] |
//! | `domain`, `log_source`, `log_guid`, `metrics_guid`, `legacy_download_user`, `metric_tags` | stored; names and guids of app, space, org and the process type are read from `metric_tags` (else `network.properties`, `log_guid`) |
//! | `instances`, `memory_mb`, `disk_mb`, `cpu_weight`, `ports`, `start_timeout_ms`, `annotation`, `PlacementTags` | OPI fields (ranges checked by `opi::model::validate::desire`) |
//! | `max_pids`, the app run's `user`, `resource_limits.nofile` and `log_source`, `trusted_system_certificates_path`, `certificate_properties`, `network` | stored, **not honoured**: limits and users are the backend's (Kubernetes runs every app as the `vcap` uid); Cube mounts no system certificates, issues no instance identity certificates and applies no container-to-container policies. CC sends all of them for every app, so refusing them would refuse every app |
//! | `environment_variables`, the app run's `env` | OPI `environment` (the run's values win over `environment_variables`, as in a Diego container) |
//! | `action` | Codependent (or bare) of the launcher run: start command; the `diego-sshd` run is *ignored* (see [`lrp`]); sidecar runs, other actions: refused |
//! | `root_fs`, `setup`, `image_layers`, `cached_dependencies`, `image_username`, `image_password` | OPI lifecycle (+ the droplet to import); lifecycle bundles for `/tmp/lifecycle` are *ignored* (Cube's backends start and check processes themselves); cloud native buildpacks, unknown stacks: refused |
//! | `check_definition`, `monitor` | OPI health check (one check, on the first port); intervals, readiness checks, several ports: refused |
//! | `routes` | `cf-router` → OPI routes; other routers (`tcp-router`, `internal-router`, `diego-ssh`) verbatim in `Routes::other`, so they round-trip — only a Diego backend routes them, Cube's route emitter serves `cf-router`; route services, `http2`, route options: refused |
//! | `egress_rules` | OPI `egress_rules` (JSON) |
//! | `volume_mounts` | OPI volume mounts (shared, `rw`); driver and mount config stored; dedicated devices, read-only: refused |
//! | `privileged: true`, `sidecars`, `volume_mounted_files`, `update_strategy` ≠ ROLLING, `log_rate_limit` ≠ −1 | refused |
//!
//! The BBS message itself, environment values and registry credentials
//! removed, is kept in the OPI LRP's user annotation
//! [`STORED_LRP_ANNOTATION`], so reads answer what CC desired.

pub mod actual;
pub mod fixtures;
pub mod lrp;

use std::collections::BTreeMap;

use opi::model::LrpId;

/// The user annotation of an OPI LRP that holds the BBS `DesiredLRP` CC
/// desired (protobuf, standard base64), its environment values and registry
/// credentials removed: the backends keep `environment` and credentials
/// secret, annotations they do not.
pub const STORED_LRP_ANNOTATION: &str = "cube.cloudfoundry.org/bbs-desired-lrp";

/// The BBS domain of CC's apps.
pub const APPS_DOMAIN: &str = "cf-apps";

/// What the operator configures for translation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The stacks Cube runs droplets on: the name in `preloaded:<stack>`
    /// (e.g. `cflinuxfs4`) → the base image reference for that stack
    /// (e.g. `registry.example/cube/stack-cflinuxfs4:latest`).
    pub stacks: BTreeMap<String, String>,
}

/// A request Cube will not carry out, naming the BBS field and why. The
/// server answers it as BBS error `InvalidRequest` with its [`Display`]
/// text, `<field>: <problem>`.
///
/// [`Display`]: std::fmt::Display
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Refusal {
    /// The BBS field, as a path (`action.codependent_action.actions[1]`,
    /// `routes.cf-router[0].route_service_url`).
    pub field: String,
    /// What is wrong, or what Cube cannot do.
    pub problem: String,
}

impl Refusal {
    /// A refusal of `field` because of `problem`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The length of a guid in CC's process guids.
const GUID_LEN: usize = 36;

/// The OPI id of a BBS process guid.
///
/// CC's process guids are `<36-character process guid>-<version guid>`, and
/// CC itself splits them at those positions (chars `0..36` and `37..`), so a
/// process guid whose first 36 characters are a UUID followed by `-` is split
/// there. Any other shape is split at its **last** `-` (`my-app-v2` →
/// `my-app` / `v2`), which `LrpId::process_guid` joins back to the same text.
/// Refused: empty, characters outside the BBS's `[a-zA-Z0-9_-]`, no `-`, or
/// parts OPI does not accept (`opi::model::validate::lrp_id`).
pub fn lrp_id(process_guid: &str) -> Result<LrpId, Refusal> {
    const FIELD: &str = "process_guid";
    if process_guid.is_empty() {
        return Err(Refusal::new(FIELD, "must not be empty"));
    }
    if let Some(bad) = process_guid
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
    {
        return Err(Refusal::new(
            FIELD,
            format!("{bad:?} is not allowed (only letters, digits, '-' and '_')"),
        ));
    }
    let (guid, version) = split_process_guid(process_guid)
        .ok_or_else(|| Refusal::new(FIELD, format!("{process_guid:?} is not <guid>-<version>")))?;
    opi::model::validate::lrp_id(guid, version)
        .map_err(|invalid| Refusal::new(FIELD, format!("its {invalid}")))
}

/// `(guid, version)`: at CC's position when the process guid starts with a
/// UUID and a dash, else at the last dash; `None` when a part would be empty.
fn split_process_guid(process_guid: &str) -> Option<(&str, &str)> {
    let cc_shaped = process_guid.as_bytes().get(GUID_LEN) == Some(&b'-')
        && process_guid.get(..GUID_LEN).is_some_and(is_uuid);
    let (guid, version) = if cc_shaped {
        (&process_guid[..GUID_LEN], &process_guid[GUID_LEN + 1..])
    } else {
        process_guid.rsplit_once('-')?
    };
    (!guid.is_empty() && !version.is_empty()).then_some((guid, version))
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const APP: &str = "a1b2c3d4-0000-4000-8000-000000000001";
    const VERSION: &str = "9f8e7d6c-0000-4000-8000-000000000002";

    #[test]
    fn cc_process_guids_split_after_the_first_uuid() {
        let id = lrp_id(&format!("{APP}-{VERSION}")).unwrap();
        assert_eq!((id.guid.as_str(), id.version.as_str()), (APP, VERSION));
    }

    #[test]
    fn other_shapes_split_at_the_last_dash() {
        let id = lrp_id("my-app-v2").unwrap();
        assert_eq!((id.guid.as_str(), id.version.as_str()), ("my-app", "v2"));
        // A UUID without a version after it is not CC-shaped either.
        let id = lrp_id(&format!("{APP}-x")).unwrap();
        assert_eq!((id.guid.as_str(), id.version.as_str()), (APP, "x"));
    }

    #[test]
    fn unsplittable_or_foreign_process_guids_are_refused() {
        for bad in ["", "nodash", "-v1", "app-", "app.1-v2", "a b-c", "a/b-c"] {
            let refusal = lrp_id(bad).unwrap_err();
            assert_eq!(refusal.field, "process_guid", "{bad:?}: {refusal}");
        }
        let long = format!("{}-v", "a".repeat(200));
        assert_eq!(lrp_id(&long).unwrap_err().field, "process_guid");
    }

    #[test]
    fn refusals_display_field_then_problem() {
        let refusal = Refusal::new("privileged", "Cube runs no privileged containers");
        assert_eq!(
            refusal.to_string(),
            "privileged: Cube runs no privileged containers"
        );
    }

    proptest! {
        #[test]
        fn process_guids_round_trip(
            guid in "[a-zA-Z0-9_][a-zA-Z0-9_-]{0,40}",
            version in "[a-zA-Z0-9_]{1,40}",
        ) {
            let process_guid = format!("{guid}-{version}");
            let id = lrp_id(&process_guid).unwrap();
            prop_assert_eq!(id.process_guid(), process_guid);
        }

        #[test]
        fn cc_versions_with_dashes_stay_whole(version in "[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,4}") {
            let id = lrp_id(&format!("{APP}-{version}")).unwrap();
            prop_assert_eq!(id.guid, APP);
            prop_assert_eq!(id.version, version);
        }
    }
}
