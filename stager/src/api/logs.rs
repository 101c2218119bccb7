//! `POST|GET /stage/{staging_guid}/logs`: the staging steps append their
//! output; `cube push` (through CC and OPI) reads it, following new lines
//! until the staging completed. See [`crate::logs`] for the bounds.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::watch;

use super::Api;
use crate::logs::Logs;
use crate::peers::Peers;
use crate::{Error, Result};

/// How often a quiet follower re-checks that its log still exists (logs past
/// their time are dropped then).
const RECHECK: Duration = Duration::from_secs(30);

fn check_guid(guid: &str) -> Result<()> {
    opi::model::validate::guid("staging_guid", guid).map_err(|e| Error::Invalid(e.to_string()))
}

fn unknown(guid: &str) -> Error {
    Error::NotFound(format!(
        "staging log of {guid} (St8ge has no staging with this guid: never staged here, dropped after it finished, or St8ge restarted)"
    ))
}

/// `POST /stage/{guid}/logs` with newline-separated lines: 204; 404 when
/// St8ge has no such staging.
pub(super) async fn append(
    State(api): State<Arc<Api>>,
    Path(guid): Path<String>,
    body: Bytes,
) -> Result<StatusCode> {
    check_guid(&guid)?;
    let text = String::from_utf8_lossy(&body);
    if api.logs.append(&guid, &text) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(&guid))
    }
}

/// The query of `GET …/logs`.
#[derive(Debug, Deserialize)]
pub(super) struct ReadQuery {
    /// `false`: what is there now, then end.
    #[serde(default = "yes")]
    follow: bool,
}

fn yes() -> bool {
    true
}

/// `GET /stage/{guid}/logs[?follow=false]`: the log from its start as
/// chunked `text/plain`, following new lines until the staging completed.
/// A staging another replica runs is streamed from that peer.
pub(super) async fn read(
    State(api): State<Arc<Api>>,
    Path(guid): Path<String>,
    Query(query): Query<ReadQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    check_guid(&guid)?;
    let Some(changes) = api.logs.subscribe(&guid) else {
        if Peers::is_hop(&headers) {
            return Err(unknown(&guid));
        }
        let answer = api.peers.staging_log(&guid, query.follow).await;
        return answer.map(relay).ok_or_else(|| unknown(&guid));
    };
    let follower = Follower {
        logs: api.logs.clone(),
        guid,
        next: 0,
        changes,
        follow: query.follow,
    };
    let stream = futures::stream::unfold(follower, |mut follower| async move {
        let text = follower.next_text().await?;
        Some((Ok::<_, Infallible>(Bytes::from(text)), follower))
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A peer's staging log, streamed on as it arrives.
fn relay(answer: reqwest::Response) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(answer.bytes_stream()),
    )
        .into_response()
}

/// One reader of one staging log.
struct Follower {
    logs: Logs,
    guid: String,
    next: u64,
    changes: watch::Receiver<()>,
    follow: bool,
}

impl Follower {
    /// The next non-empty text, or `None` at the end (staging completed,
    /// not following, or the log was dropped).
    async fn next_text(&mut self) -> Option<String> {
        loop {
            // Marked seen before reading: an append after the read wakes us.
            self.changes.borrow_and_update();
            let chunk = self.logs.read(&self.guid, self.next)?;
            self.next = chunk.next;
            if !chunk.lines.is_empty() || chunk.dropped > 0 {
                return Some(chunk.text());
            }
            if chunk.finished || !self.follow {
                return None;
            }
            match tokio::time::timeout(RECHECK, self.changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => self.logs.prune(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
