//! Watches: newline-delimited `WatchEvent`s, replayed from the event log
//! after a resource version, live afterwards, with bookmarks, 410 Gone for
//! versions older than the log, and `timeoutSeconds`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::Shared;
use super::error::ApiError;
use super::resources::Kind;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Change, ChangeKind, Key, selected};

/// Longest watch the fake serves when the client names no timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    kind: &'static Kind,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn wants(&self, key: &Key, object: &Value) -> bool {
        key.plural == self.kind.plural
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| &key.namespace == ns)
            && selected(object, key, &self.labels, &self.fields)
    }

    /// The event this watch sees for `change`, if any. A modification that
    /// moves an object into or out of the selection is an ADDED or DELETED.
    fn event(&self, change: &Change) -> Option<Value> {
        let now = self.wants(&change.key, &change.object);
        let kind = match change.kind {
            ChangeKind::Added if now => "ADDED",
            ChangeKind::Deleted if now => "DELETED",
            ChangeKind::Modified => {
                let before = change
                    .old
                    .as_ref()
                    .is_some_and(|old| self.wants(&change.key, old));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            _ => return None,
        };
        Some(json!({"type": kind, "object": change.object}))
    }
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(kind: &Kind, rv: u64, initial_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({
        "type": "BOOKMARK",
        "object": {"apiVersion": kind.api_version(), "kind": kind.kind, "metadata": metadata},
    })
}

fn gone(message: &str) -> Value {
    json!({"type": "ERROR", "object": ApiError::new(410, "Expired", message).status()})
}

/// Starts a watch and returns its streaming response.
pub fn stream(
    shared: &Arc<Shared>,
    kind: &'static Kind,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let send_initial = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(MAX_TIMEOUT, |s| Duration::from_secs(s).min(MAX_TIMEOUT));
    let from = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let filter = Filter {
        kind,
        namespace,
        labels,
        fields,
    };
    let (sender, receiver) = mpsc::channel::<Bytes>(1024);
    let start = {
        let store = shared.store();
        match from {
            None => {
                let (items, rv) = store.list(
                    kind,
                    filter.namespace.as_deref(),
                    &filter.labels,
                    &filter.fields,
                );
                let initial: Vec<Value> = items
                    .into_iter()
                    .map(|(_, object)| json!({"type": "ADDED", "object": object}))
                    .collect();
                Ok((initial, Vec::new(), store.subscribe(), rv))
            }
            Some(rv) => match store.watch_from(rv) {
                Ok((replay, subscription)) => Ok((Vec::new(), replay, subscription, rv)),
                Err(e) => Err(e),
            },
        }
    };
    let interval = shared.bookmark_interval;
    let closed = shared.watch_epoch.subscribe();
    tokio::spawn(async move {
        let (initial, replay, subscription, rv) = match start {
            Ok(start) => start,
            Err(e) => {
                // A real apiserver answers 200 and sends the 410 as an event.
                let _ = sender.send(line(&gone(&e.message))).await;
                return;
            }
        };
        let streams = Streams {
            sender,
            subscription,
            closed,
        };
        run(
            streams,
            filter,
            initial,
            replay,
            rv,
            bookmarks,
            send_initial,
            timeout,
            interval,
        )
        .await;
    });
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|bytes| (Ok::<_, std::io::Error>(bytes), receiver))
    });
    Ok(super::http::streaming(Body::from_stream(body)))
}

/// The channels one watch works with.
struct Streams {
    sender: mpsc::Sender<Bytes>,
    subscription: broadcast::Receiver<Arc<Change>>,
    closed: tokio::sync::watch::Receiver<u64>,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    streams: Streams,
    filter: Filter,
    initial: Vec<Value>,
    replay: Vec<Arc<Change>>,
    mut last_rv: u64,
    bookmarks: bool,
    send_initial: bool,
    timeout: Duration,
    interval: Duration,
) {
    let Streams {
        sender,
        mut subscription,
        mut closed,
    } = streams;
    closed.mark_unchanged();
    for event in &initial {
        if sender.send(line(event)).await.is_err() {
            return;
        }
    }
    if send_initial
        && sender
            .send(line(&bookmark(filter.kind, last_rv, true)))
            .await
            .is_err()
    {
        return;
    }
    for change in replay {
        last_rv = last_rv.max(change.rv);
        if let Some(event) = filter.event(&change)
            && sender.send(line(&event)).await.is_err()
        {
            return;
        }
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    loop {
        tokio::select! {
            change = subscription.recv() => match change {
                Ok(change) if change.rv > last_rv => {
                    last_rv = change.rv;
                    if let Some(event) = filter.event(&change)
                        && sender.send(line(&event)).await.is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = sender.send(line(&gone("watch fell behind; relist"))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticks.tick(), if bookmarks => {
                // Every change up to `last_rv` was sent or filtered out, so a
                // client resuming from here misses nothing.
                if sender.send(line(&bookmark(filter.kind, last_rv, false))).await.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(deadline) => return,
            _ = closed.changed() => return,
            () = sender.closed() => return,
        }
    }
}
