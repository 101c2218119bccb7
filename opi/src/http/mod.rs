//! The OPI HTTP API: [`router`] serves every route over any
//! [`crate::Scheduler`]; [`OpiClient`] calls it.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `PUT /apps/{process_guid}` | `DesireLrpRequest` | 202 |
//! | `GET /apps` | | 200 `{desired_lrp_scheduling_infos}` |
//! | `POST /apps/{process_guid}` | `UpdateLrpRequest` | 200 |
//! | `GET /apps/{guid}/{version}` | | 200 `{desired_lrp}` |
//! | `GET /apps/{guid}/{version}/instances` | | 200 `{process_guid, instances}` |
//! | `PUT /apps/{guid}/{version}/stop` | | 200 |
//! | `PUT /apps/{guid}/{version}/stop/{index}` | | 200 |
//! | `POST /tasks/{guid}` | `TaskRequest` | 202 |
//! | `GET /tasks`, `GET /tasks/{guid}` | | 200 |
//! | `DELETE /tasks/{guid}` | | 204 |
//!
//! Beside it, `/stage/…` is forwarded to St8ge (the staging path an
//! Eirini-era CC takes through OPI, [`stage`]).
//!
//! Errors are `{"error":{"code","message"},"message"}` with the status of
//! [`crate::Error::status`]; a 400 names the offending field.

mod client;
mod metrics;
mod server;
mod stage;

pub(crate) use client::is_transient;
pub use client::{OpiClient, http_client_builder};
pub use metrics::ApiMetrics;
pub use server::{ApiConfig, DEFAULT_MAX_BODY_BYTES, router};
