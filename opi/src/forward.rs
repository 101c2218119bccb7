//! Delivers backend [`Event`]s to Cloud Controller: crashes to
//! `POST {cc}/internal/v4/apps/{process_guid}/crashed`, task completions to the
//! task's `completion_callback`.
//!
//! CC outages lose nothing that still matters: undelivered events wait in a
//! bounded queue and are retried with exponential backoff. An event is dropped
//! only when CC rejects it for good (a 4xx other than 408/429), when it is a
//! crash of an LRP that is no longer desired (CC no longer cares), or when the
//! queue overflows (oldest crash first; counted in
//! `cube_opi_events_dropped_total`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use reqwest::Url;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::wire::{AppCrashedRequest, TaskCompletedRequest};
use crate::model::{CrashEvent, Event, TaskCompletion};
use crate::{Error, Scheduler};

/// Settings of the forwarder.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// CC's internal API base URL (user:password@ in the URL becomes Basic auth).
    pub cc_url: Url,
    /// Most events kept while CC is down.
    pub max_pending: usize,
    /// First retry delay.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Timeout of one delivery.
    pub request_timeout: Duration,
}

impl ForwarderConfig {
    /// Defaults: 10,000 pending events, backoff 200 ms doubling to 30 s.
    pub fn new(cc_url: Url) -> Self {
        Self {
            cc_url,
            max_pending: 10_000,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Metrics of the forwarder.
#[derive(Clone)]
pub struct ForwarderMetrics {
    delivered: IntCounterVec,
    dropped: IntCounterVec,
    pending: IntGauge,
}

impl ForwarderMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let delivered = IntCounterVec::new(
            Opts::new(
                "cube_opi_events_delivered_total",
                "Events delivered to Cloud Controller",
            ),
            &["kind"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "cube_opi_events_dropped_total",
                "Events given up on, by kind and reason",
            ),
            &["kind", "reason"],
        )?;
        let pending = IntGauge::new(
            "cube_opi_events_pending",
            "Events waiting to be delivered to Cloud Controller",
        )?;
        registry.register(Box::new(delivered.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        Ok(Self {
            delivered,
            dropped,
            pending,
        })
    }
}

struct Pending {
    event: Event,
    attempts: u32,
    due: Instant,
}

fn kind(event: &Event) -> &'static str {
    match event {
        Event::Crashed(_) => "crash",
        Event::TaskCompleted(_) => "task_completed",
    }
}

enum Outcome {
    Delivered,
    Retry(String),
    Drop(&'static str, String),
}

/// Forwards a scheduler's events to CC until shutdown.
pub struct Forwarder {
    config: ForwarderConfig,
    http: reqwest::Client,
    metrics: ForwarderMetrics,
}

impl Forwarder {
    /// A forwarder using `http` for deliveries (configure TLS there).
    pub fn new(config: ForwarderConfig, http: reqwest::Client, metrics: ForwarderMetrics) -> Self {
        Self {
            config,
            http,
            metrics,
        }
    }

    /// Subscribes to `scheduler`'s events and delivers them until `shutdown`.
    pub async fn run(self, scheduler: Arc<dyn Scheduler>, shutdown: CancellationToken) {
        let mut events = scheduler.events();
        let mut queue: VecDeque<Pending> = VecDeque::new();
        loop {
            let next_due = queue.iter().map(|p| p.due).min();
            let sleep = async {
                match next_due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.next() => match event {
                    Some(event) => self.enqueue(&mut queue, event),
                    None => {
                        tracing::warn!("scheduler event stream ended; forwarder stops");
                        break;
                    }
                },
                () = sleep => self.deliver_due(&mut queue, scheduler.as_ref()).await,
            }
            self.metrics
                .pending
                .set(i64::try_from(queue.len()).unwrap_or(i64::MAX));
        }
        if !queue.is_empty() {
            tracing::warn!(
                pending = queue.len(),
                "shutting down with undelivered events"
            );
        }
    }

    fn enqueue(&self, queue: &mut VecDeque<Pending>, event: Event) {
        if queue.len() >= self.config.max_pending {
            // Make room: the oldest crash goes first; task completions are
            // kept as long as possible because CC waits for them.
            let victim = queue
                .iter()
                .position(|p| matches!(p.event, Event::Crashed(_)))
                .unwrap_or(0);
            if let Some(dropped) = queue.remove(victim) {
                tracing::warn!(
                    kind = kind(&dropped.event),
                    "event queue full; dropping oldest event"
                );
                self.metrics
                    .dropped
                    .with_label_values(&[kind(&dropped.event), "queue_full"])
                    .inc();
            }
        }
        queue.push_back(Pending {
            event,
            attempts: 0,
            due: Instant::now(),
        });
    }

    async fn deliver_due(&self, queue: &mut VecDeque<Pending>, scheduler: &dyn Scheduler) {
        let now = Instant::now();
        let mut index = 0;
        while index < queue.len() {
            if queue[index].due > now {
                index += 1;
                continue;
            }
            let outcome = self.attempt(&queue[index], scheduler).await;
            let event_kind = kind(&queue[index].event);
            match outcome {
                Outcome::Delivered => {
                    self.metrics
                        .delivered
                        .with_label_values(&[event_kind])
                        .inc();
                    queue.remove(index);
                }
                Outcome::Drop(reason, why) => {
                    tracing::warn!(kind = event_kind, reason, %why, "dropping event");
                    self.metrics
                        .dropped
                        .with_label_values(&[event_kind, reason])
                        .inc();
                    queue.remove(index);
                }
                Outcome::Retry(why) => {
                    let pending = &mut queue[index];
                    pending.attempts += 1;
                    let backoff = backoff(
                        self.config.initial_backoff,
                        self.config.max_backoff,
                        pending.attempts,
                    );
                    pending.due = Instant::now() + backoff;
                    tracing::info!(kind = event_kind, attempts = pending.attempts, ?backoff, %why, "CC delivery failed; will retry");
                    index += 1;
                }
            }
        }
    }

    async fn attempt(&self, pending: &Pending, scheduler: &dyn Scheduler) -> Outcome {
        match &pending.event {
            Event::Crashed(crash) => {
                // A retried crash of an LRP CC has stopped meanwhile is moot.
                if pending.attempts > 0
                    && let Err(Error::NotFound(_)) = scheduler.get(&crash.id).await
                {
                    return Outcome::Drop("no_longer_desired", format!("LRP {} is gone", crash.id));
                }
                self.deliver_crash(crash).await
            }
            Event::TaskCompleted(done) => self.deliver_task(done).await,
        }
    }

    async fn deliver_crash(&self, crash: &CrashEvent) -> Outcome {
        let mut url = self.config.cc_url.clone();
        let process_guid = crash.id.process_guid();
        let extended = url
            .path_segments_mut()
            .map(|mut path| {
                path.pop_if_empty()
                    .extend(["internal", "v4", "apps", &process_guid, "crashed"]);
            })
            .is_ok();
        if !extended {
            return Outcome::Drop("bad_url", format!("CC URL {url} cannot take a path"));
        }
        let body = AppCrashedRequest {
            instance: crash.instance.clone(),
            index: crash.index,
            cell_id: crash.cell_id.clone(),
            reason: crash.reason.clone(),
            exit_status: crash.exit_status,
            exit_description: crash.exit_description.clone(),
            crash_count: crash.crash_count,
            crash_timestamp: crash.crash_timestamp,
        };
        self.post(url, &body).await
    }

    async fn deliver_task(&self, done: &TaskCompletion) -> Outcome {
        if done.completion_callback.is_empty() {
            return Outcome::Drop(
                "no_callback",
                format!("task {} has no completion callback", done.guid),
            );
        }
        let url = match Url::parse(&done.completion_callback) {
            Ok(url) => url,
            Err(e) => {
                return Outcome::Drop(
                    "bad_url",
                    format!("callback {:?}: {e}", done.completion_callback),
                );
            }
        };
        let body = TaskCompletedRequest {
            task_guid: done.guid.clone(),
            failed: done.failed,
            failure_reason: done.failure_reason.clone(),
            result: done.result.clone(),
        };
        self.post(url, &body).await
    }

    async fn post<B: serde::Serialize>(&self, url: Url, body: &B) -> Outcome {
        let response = self
            .http
            .post(url.clone())
            .timeout(self.config.request_timeout)
            .json(body)
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => Outcome::Delivered,
            Ok(response) if crate::http::is_transient(response.status()) => {
                Outcome::Retry(format!("CC answered {}", response.status()))
            }
            Ok(response) => Outcome::Drop(
                "rejected",
                format!("CC answered {} for {}", response.status(), redact(&url)),
            ),
            Err(e) => Outcome::Retry(format!("cannot reach CC at {}: {e}", redact(&url))),
        }
    }
}

/// The delay before retry number `attempts` (1-based): `initial * 2^(attempts-1)`, capped.
pub fn backoff(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    initial.saturating_mul(factor).min(max)
}

/// The URL without its password, for logs.
fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("redacted"));
    }
    url.to_string()
}

#[cfg(test)]
mod tests;
