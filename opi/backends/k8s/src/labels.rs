//! The label and annotation keys Cube puts on Kubernetes objects.
//!
//! Labels are for selecting (values ≤ 63 characters, so long CF guids go
//! through [`crate::names::label_value`]); annotations carry the full values
//! and everything a restarted backend needs to rebuild its view.

/// Label: the app guid.
pub const APP_GUID: &str = "cloudfoundry.org/app-guid";
/// Label (label-safe form) and annotation (full value): the CC process guid.
pub const PROCESS_GUID: &str = "cloudfoundry.org/process-guid";
/// Label (label-safe form) and annotation (full value): the process version.
pub const VERSION: &str = "cloudfoundry.org/version";
/// Label: `web`, `worker`, ….
pub const PROCESS_TYPE: &str = "cloudfoundry.org/process-type";
/// Label: [`SOURCE_APP`] or [`SOURCE_TASK`].
pub const SOURCE_TYPE: &str = "cloudfoundry.org/source-type";
/// Label on namespaces (and annotation elsewhere): the space guid.
pub const SPACE_GUID: &str = "cloudfoundry.org/space-guid";
/// Label (label-safe form) and annotation (full value): the task guid.
pub const TASK_GUID: &str = "cloudfoundry.org/task-guid";

/// Source type of LRP objects.
pub const SOURCE_APP: &str = "APP";
/// Source type of task objects.
pub const SOURCE_TASK: &str = "TASK";

/// Annotation: the app name.
pub const APP_NAME: &str = "cloudfoundry.org/application-name";
/// Annotation: the space name.
pub const SPACE_NAME: &str = "cloudfoundry.org/space-name";
/// Annotation: the organization name.
pub const ORG_NAME: &str = "cloudfoundry.org/org-name";
/// Annotation: the organization guid.
pub const ORG_GUID: &str = "cloudfoundry.org/org-guid";
/// Annotation: the routes, as CC's JSON (`{"cf-router":[…]}`).
pub const ROUTES: &str = "cloudfoundry.org/routes";
/// Annotation: CC's `last_updated` (the LRP's annotation in OPI terms).
pub const LAST_UPDATED: &str = "cloudfoundry.org/last-updated";
/// Annotation: the rest of the desired LRP (no secrets), as JSON.
pub const LRP_SPEC: &str = "cloudfoundry.org/lrp";
/// Annotation: versions of this process that a newer one replaced but that
/// were not stopped yet (JSON list), so stopping them answers `Ok` once.
pub const SUPERSEDED_VERSIONS: &str = "cloudfoundry.org/superseded-versions";
/// Pod template annotation: a hash of the environment, so a changed
/// environment rolls the pods (the Secret alone would not).
pub const ENV_HASH: &str = "cloudfoundry.org/env-hash";
/// Annotation: the task name.
pub const TASK_NAME: &str = "cloudfoundry.org/task-name";
/// Annotation: where a task's completion is reported.
pub const COMPLETION_CALLBACK: &str = "cloudfoundry.org/completion-callback";
/// Annotation on a finished Job: its completion was reported, so a restarted
/// backend does not report it again.
pub const COMPLETION_REPORTED: &str = "cloudfoundry.org/completion-reported";

/// Label the StatefulSet controller sets on each pod: its ordinal.
pub const POD_INDEX: &str = "apps.kubernetes.io/pod-index";
