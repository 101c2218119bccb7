//! The job CC answers a droplet upload with (`StagingJobPresenter`): the uploader
//! polls `metadata.url` until `entity.status` is `finished` or `failed`.

use serde::{Deserialize, Serialize};

/// A pollable background job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Where to poll.
    pub metadata: JobMetadata,
    /// The state.
    pub entity: JobEntity,
}

/// `metadata` of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMetadata {
    /// Job guid.
    pub guid: String,
    /// Creation time, ISO 8601.
    #[serde(default)]
    pub created_at: String,
    /// Status URL (absolute, or a path on the CC that answered).
    pub url: String,
}

/// `entity` of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEntity {
    /// Job guid.
    pub guid: String,
    /// The state.
    pub status: JobStatus,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Not started.
    Queued,
    /// In progress.
    Running,
    /// Done.
    Finished,
    /// Gave up.
    Failed,
}

impl JobStatus {
    /// `finished` or `failed`: polling can stop.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Finished | JobStatus::Failed)
    }
}
