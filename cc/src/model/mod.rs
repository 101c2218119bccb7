//! Serde types for the Cloud Controller side of every contract Cube speaks.
//!
//! Field names follow cloud_controller_ng (`BulkAppsController`,
//! `Diego::Protocol#desire_app_message`, `StagingCompletionController`,
//! `AppCrashedController`, `TasksCompletionController`, `StagingJobPresenter`,
//! `OPI::InstancesClient`) and the Go structs other CF components decode them
//! into (`cc_messages`, Eirini's `models/cf`). The fixtures under
//! `cc/testdata/` hold real payload shapes and the tests below prove these
//! types read and write them.

mod bulk;
mod callbacks;
mod error_body;
mod etag;
mod instances;
mod job;
mod process_guid;
mod staging;
mod upload;

pub use bulk::{
    BulkToken, DesireAppRequestFromCC, DesiredAppsPage, EnvironmentVariable, Fingerprint,
    FingerprintWalk, FingerprintsPage, HttpRoute, RoutingInfo, TcpRoute,
};
pub use callbacks::{AppCrashed, TaskCompleted};
pub use error_body::CcErrorBody;
pub use etag::Etag;
pub use instances::{Instance, InstancesResponse, LrpInstances, lrp_instances};
pub use job::{Job, JobEntity, JobMetadata, JobStatus};
pub use process_guid::ProcessGuid;
pub use staging::{
    Buildpack, BuildpackStagingLifecycle, DetectedBuildpack, DockerStagingLifecycle,
    LifecycleMetadata, StagingCompletion, StagingError, StagingLifecycle, StagingRequest,
    StagingResult,
};
pub use upload::{
    CC_BUILD_ARTIFACTS_UPLOAD_URI_KEY, CC_DROPLET_UPLOAD_URI_KEY, CC_TIMEOUT_KEY,
    DropletUploadTarget, cc_uploader_droplet_uri, query_value,
};

#[cfg(test)]
mod fixtures;
