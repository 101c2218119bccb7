//! `GET /internal/bulk/apps` and `POST /internal/bulk/apps`, paged exactly like
//! CC's `BulkAppsController`: apps in id order after the token's id, at most
//! `batch_size` of them, the next token naming the last id (or `null` on an empty
//! page, which ends the walk).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};

use super::Sim;
use super::desire::desire_message;
use super::response::parse_json;
use crate::model::{BulkToken, DesiredAppsPage, Fingerprint, FingerprintsPage};
use crate::{Error, Result};

/// The largest page the simulator serves; bigger asks are an error, not a
/// silently smaller page.
pub const MAX_BATCH_SIZE: usize = 5_000;

/// Parsed query of a bulk request.
#[derive(Debug, PartialEq, Eq)]
pub struct BulkQuery {
    /// Page size.
    pub batch_size: usize,
    /// Last id of the previous page (0 to start).
    pub last_id: u64,
    /// `format=fingerprint`.
    pub fingerprint: bool,
}

/// Reads `batch_size`, `token` and `format` from a raw query string, naming
/// whatever is missing or wrong.
pub fn parse_query(raw: Option<&str>) -> Result<BulkQuery> {
    let params: HashMap<String, String> = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let batch = params
        .get("batch_size")
        .ok_or_else(|| Error::bad_query("The query parameter is invalid: batch_size is missing"))?;
    let batch_size: usize = batch
        .parse()
        .ok()
        .filter(|n| (1..=MAX_BATCH_SIZE).contains(n))
        .ok_or_else(|| {
            Error::bad_query(format!(
                "The query parameter is invalid: batch_size `{batch}` must be an integer from 1 to {MAX_BATCH_SIZE}"
            ))
        })?;
    let token = params
        .get("token")
        .ok_or_else(|| Error::bad_query("The query parameter is invalid: token is missing"))?;
    let token: BulkToken = serde_json::from_str(token).map_err(|e| {
        Error::bad_query(format!(
            "The query parameter is invalid: token `{token}` is not {{\"id\":N}}: {e}"
        ))
    })?;
    Ok(BulkQuery {
        batch_size,
        last_id: token.id.unwrap_or(0),
        fingerprint: params.get("format").map(String::as_str) == Some("fingerprint"),
    })
}

/// `GET /internal/bulk/apps`.
pub async fn get_apps(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> Result<Response> {
    let query = parse_query(raw.as_deref())?;
    let state = sim.store.snapshot();
    let page = state.desired_page(query.last_id, query.batch_size);
    let token = BulkToken {
        id: page.last().map(|app| app.id),
    };
    sim.metrics.bulk_pages.inc();
    if query.fingerprint {
        let fingerprints = page
            .iter()
            .map(|app| Fingerprint {
                process_guid: app.process_guid(),
                etag: app.etag(),
            })
            .collect();
        Ok(Json(FingerprintsPage {
            fingerprints,
            token,
        })
        .into_response())
    } else {
        let apps = page
            .iter()
            .map(|app| desire_message(app, &sim.public_url))
            .collect();
        Ok(Json(DesiredAppsPage { apps, token }).into_response())
    }
}

/// `POST /internal/bulk/apps` with a JSON list of process guids.
pub async fn post_apps(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response> {
    let guids: Vec<String> = parse_json(&body)?;
    let state = sim.store.snapshot();
    let apps: Vec<_> = state
        .desired_by_process_guid(&guids)
        .into_iter()
        .map(|app| desire_message(app, &sim.public_url))
        .collect();
    Ok(Json(apps).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_what_is_wrong() {
        let err = |q: &str| parse_query(Some(q)).unwrap_err().to_string();
        assert!(err("token=%7B%22id%22%3A0%7D").contains("batch_size is missing"));
        assert!(err("batch_size=0&token=%7B%7D").contains("batch_size `0`"));
        assert!(err("batch_size=x&token=%7B%7D").contains("batch_size `x`"));
        assert!(err("batch_size=5").contains("token is missing"));
        assert!(err("batch_size=5&token=nope").contains("token `nope`"));
        assert!(err("batch_size=5&token=%7B%22id%22%3A%22x%22%7D").contains("token"));
    }

    #[test]
    fn null_or_missing_id_starts_at_zero() {
        let q = parse_query(Some("batch_size=5&token=%7B%22id%22%3Anull%7D")).unwrap();
        assert_eq!(q.last_id, 0);
        assert!(!q.fingerprint);
        let q = parse_query(Some("batch_size=5&format=fingerprint&token=%7B%7D")).unwrap();
        assert_eq!(
            q,
            BulkQuery {
                batch_size: 5,
                last_id: 0,
                fingerprint: true
            }
        );
    }

    proptest! {
        /// What the client encodes, the simulator decodes.
        #[test]
        fn reads_what_the_client_writes(id in any::<u64>(), batch in 1u32..=5_000) {
            let base = url::Url::parse("http://127.0.0.1:1").unwrap();
            let url = crate::client::urls::bulk_apps(&base, batch, BulkToken { id: Some(id) }, true);
            let q = parse_query(url.query()).unwrap();
            prop_assert_eq!(q, BulkQuery { batch_size: batch as usize, last_id: id, fingerprint: true });
        }
    }
}
