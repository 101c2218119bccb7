//! The other St8ge replicas, for what CC may ask of any of them.
//!
//! A staging lives on the replica that desired its task: the task calls that
//! replica back (its own `--public-url`, e.g. the pod's stable name behind a
//! headless Service), so the steps' output, their outcome and OPI's task
//! callback all reach it, and its deadline settles there. CC, though, reaches
//! St8ge through one Service, so a `GET /stage/{guid}/logs` may land on a
//! replica that never saw the staging: that replica asks its peers
//! (`--peer`), marking the request with [`HOP_HEADER`] so a peer answers only
//! from its own memory.

use axum::http::HeaderMap;
use cube_runtime::access::ClientAccess;
use reqwest::Url;

use crate::{Error, Result};

/// Marks a request one replica sends another: answer it locally, never ask on.
pub const HOP_HEADER: &str = "cube-stager-hop";

/// How long a peer may take to start answering.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// This replica's peers (every `--peer` but itself).
#[derive(Debug, Clone, Default)]
pub struct Peers {
    urls: Vec<Url>,
    http: reqwest::Client,
}

impl Peers {
    /// The peers among `urls` that are not `me` (compared by origin), reached
    /// with `access` (the same CA, client certificate and token as for OPI).
    pub fn new(urls: &[Url], me: &Url, access: &ClientAccess) -> Result<Self> {
        let http = access
            .builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("client for St8ge peers: {e}")))?;
        let urls = urls
            .iter()
            .filter(|url| url.origin() != me.origin())
            .cloned()
            .collect();
        Ok(Self { urls, http })
    }

    /// Whether `headers` come from a peer (then answer locally).
    pub fn is_hop(headers: &HeaderMap) -> bool {
        headers.contains_key(HOP_HEADER)
    }

    /// The staging log of `guid` from the first peer that has it, as its
    /// response (streaming); `None` when no peer has it.
    pub async fn staging_log(&self, guid: &str, follow: bool) -> Option<reqwest::Response> {
        for peer in &self.urls {
            let Some(url) = log_url(peer, guid, follow) else {
                continue;
            };
            match self.http.get(url).header(HOP_HEADER, "1").send().await {
                Ok(answer) if answer.status().is_success() => return Some(answer),
                Ok(answer) => {
                    tracing::debug!(peer = %peer, status = %answer.status(), staging_guid = %guid, "peer has no such staging log");
                }
                Err(error) => {
                    tracing::warn!(peer = %peer, %error, staging_guid = %guid, "cannot ask a St8ge peer for a staging log");
                }
            }
        }
        None
    }
}

/// `{peer}/stage/{guid}/logs?follow=…`.
fn log_url(peer: &Url, guid: &str, follow: bool) -> Option<Url> {
    let mut url = peer.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["stage", guid, "logs"]);
    url.set_query(Some(&format!("follow={follow}")));
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn a_replica_is_not_its_own_peer() {
        let all = [
            url("https://st8ge-0.peers:8086"),
            url("https://st8ge-1.peers:8086/"),
        ];
        let peers = Peers::new(
            &all,
            &url("https://st8ge-0.peers:8086/"),
            &ClientAccess::default(),
        )
        .unwrap();
        assert_eq!(peers.urls, vec![url("https://st8ge-1.peers:8086/")]);
    }

    #[test]
    fn log_urls_keep_a_base_path() {
        let at = log_url(&url("http://10.0.0.1:8086/st8ge/"), "g-1", false).unwrap();
        assert_eq!(
            at.as_str(),
            "http://10.0.0.1:8086/st8ge/stage/g-1/logs?follow=false"
        );
    }
}
