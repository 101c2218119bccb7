//! `/v1/ping` and the domains' freshness (`/v1/domains/upsert`,
//! `/v1/domains/list`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bbs_models::{DomainsResponse, PingResponse, UpsertDomainRequest, UpsertDomainResponse};

use super::{Bbs, metrics::Outcome, protobuf};
use crate::error::Error;
use crate::validate;

/// `/v1/ping`: the BBS is available (no request body is read).
pub(super) async fn ping() -> Response {
    protobuf(
        StatusCode::OK,
        &PingResponse { available: true },
        Outcome::SUCCESS,
    )
}

/// `/v1/domains/upsert`: `domain` is fresh for `ttl` seconds (0: for ever).
pub(super) async fn upsert(
    bbs: Arc<Bbs>,
    request: UpsertDomainRequest,
) -> Result<UpsertDomainResponse, Error> {
    validate::upsert_domain(&request.domain)?;
    bbs.domains
        .upsert(&request.domain, request.ttl, Instant::now());
    Ok(UpsertDomainResponse::default())
}

/// `/v1/domains/list`: the fresh domains (no request body is read).
pub(super) async fn list(State(bbs): State<Arc<Bbs>>) -> Response {
    let answer = DomainsResponse {
        error: None,
        domains: bbs.domains.fresh(Instant::now()),
    };
    protobuf(StatusCode::OK, &answer, Outcome::SUCCESS)
}
