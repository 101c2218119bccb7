//! Delivers backend [`Event`]s to Cloud Controller through [`cc::Client`]:
//! crashes to `POST {cc}/internal/v4/apps/{process_guid}/crashed`, task
//! completions to the task's `completion_callback`.
//!
//! CC outages lose nothing that still matters: undelivered events wait in a
//! bounded queue and are retried with exponential backoff (408, 429, 5xx and
//! no answer). An event is dropped only when CC rejects it for good (any
//! other 4xx), when it is a crash of an LRP that is no longer desired (CC no
//! longer cares), when it cannot be sent at all (no or a bad callback URL),
//! or when the queue overflows (oldest crash first); drops are counted in
//! `cube_opi_events_dropped_total`.
//!
//! A task completion CC accepted, or that is dropped for good, is then
//! reported to [`Scheduler::completion_delivered`], so a backend that keeps
//! completions until CC has them may forget it. One still queued (retrying,
//! or lost to an overflow or a shutdown) is not: the backend reports it again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use cc::model::{AppCrashed, ProcessGuid, TaskCompleted};
use cube_runtime::access::ClientAccess;
use futures::StreamExt;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use reqwest::{StatusCode, Url};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

/// How one delivery attempt ended.
enum Outcome {
    /// The event leaves the queue.
    Final(Fate),
    /// Try again after a backoff; why it failed.
    Retry(String),
}

/// What became of an event that left the queue.
enum Fate {
    /// CC accepted it.
    Delivered,
    /// Given up on for good: the metric's reason, and why.
    Dropped(&'static str, String),
}

/// Forwards a scheduler's events to CC until shutdown.
pub struct Forwarder {
    config: ForwarderConfig,
    cc: cc::Client,
    metrics: ForwarderMetrics,
}

impl Forwarder {
    /// A forwarder reaching CC at `config.cc_url` with `access`'s TLS
    /// settings (OPI's client certificate and CA trust; its bearer token is
    /// never sent to CC). The only credentials sent are the CC URL's
    /// `user:password@`, as Basic auth; a completion callback carries its own.
    ///
    /// Errors: [`Error::Internal`] when the CC URL cannot take a path or the
    /// HTTP client cannot be built.
    pub fn new(
        config: ForwarderConfig,
        access: &ClientAccess,
        metrics: ForwarderMetrics,
    ) -> Result<Self, Error> {
        if config.cc_url.cannot_be_a_base() {
            return Err(Error::Internal(format!(
                "CC URL {} cannot take a path",
                config.cc_url
            )));
        }
        let cc = cc::Client::new(cc_client_config(&config, access))
            .map_err(|e| Error::Internal(format!("cannot build the CC client: {e}")))?;
        Ok(Self {
            config,
            cc,
            metrics,
        })
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

    /// Queues `event`, making room first when the queue is full. An event
    /// dropped here is not reported to the scheduler as delivered.
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

    /// Tries every event that is due once: settles those that are final,
    /// schedules the others' next try.
    async fn deliver_due(&self, queue: &mut VecDeque<Pending>, scheduler: &dyn Scheduler) {
        let now = Instant::now();
        let mut index = 0;
        while index < queue.len() {
            if queue[index].due > now {
                index += 1;
                continue;
            }
            match self.attempt(&queue[index], scheduler).await {
                Outcome::Retry(why) => {
                    self.retry_later(&mut queue[index], &why);
                    index += 1;
                }
                Outcome::Final(fate) => {
                    if let Some(pending) = queue.remove(index) {
                        self.settle(&pending.event, fate, scheduler).await;
                    }
                }
            }
        }
    }

    /// Counts an event that left the queue; a task completion is then done
    /// with for good, which the scheduler hears of.
    async fn settle(&self, event: &Event, fate: Fate, scheduler: &dyn Scheduler) {
        let event_kind = kind(event);
        match fate {
            Fate::Delivered => {
                self.metrics
                    .delivered
                    .with_label_values(&[event_kind])
                    .inc();
            }
            Fate::Dropped(reason, why) => {
                tracing::warn!(kind = event_kind, reason, %why, "dropping event");
                self.metrics
                    .dropped
                    .with_label_values(&[event_kind, reason])
                    .inc();
            }
        }
        if let Event::TaskCompleted(done) = event {
            scheduler.completion_delivered(&done.guid).await;
        }
    }

    /// Schedules the next try of `pending` after its backoff.
    fn retry_later(&self, pending: &mut Pending, why: &str) {
        pending.attempts += 1;
        let backoff = backoff(
            self.config.initial_backoff,
            self.config.max_backoff,
            pending.attempts,
        );
        pending.due = Instant::now() + backoff;
        tracing::info!(kind = kind(&pending.event), attempts = pending.attempts, ?backoff, %why, "CC delivery failed; will retry");
    }

    async fn attempt(&self, pending: &Pending, scheduler: &dyn Scheduler) -> Outcome {
        match &pending.event {
            Event::Crashed(crash) => {
                // A retried crash of an LRP CC has stopped meanwhile is moot.
                if pending.attempts > 0
                    && let Err(Error::NotFound(_)) = scheduler.get(&crash.id).await
                {
                    return Outcome::Final(Fate::Dropped(
                        "no_longer_desired",
                        format!("LRP {} is gone", crash.id),
                    ));
                }
                self.deliver_crash(crash).await
            }
            Event::TaskCompleted(done) => self.deliver_task(done).await,
        }
    }

    async fn deliver_crash(&self, crash: &CrashEvent) -> Outcome {
        let process_guid = ProcessGuid(crash.id.process_guid());
        outcome(
            self.cc
                .app_crashed(&process_guid, &app_crashed(crash))
                .await,
        )
    }

    async fn deliver_task(&self, done: &TaskCompletion) -> Outcome {
        if done.completion_callback.is_empty() {
            return Outcome::Final(Fate::Dropped(
                "no_callback",
                format!("task {} has no completion callback", done.guid),
            ));
        }
        let body = task_completed(done);
        outcome(
            self.cc
                .task_completed(&done.completion_callback, &body)
                .await,
        )
    }
}

/// How the forwarder reaches CC: no credentials but the CC URL's userinfo
/// (a callback URL's own for completions), no retries of its own (the queue
/// retries with backoff), one try bounded by the request timeout.
fn cc_client_config(config: &ForwarderConfig, access: &ClientAccess) -> cc::ClientConfig {
    let mut client = cc::ClientConfig::new(config.cc_url.as_str());
    client.username = None;
    client.password = None;
    client.request_timeout = config.request_timeout;
    client.connect_timeout = client.connect_timeout.min(config.request_timeout);
    client.retry = cc::RetryPolicy::none();
    client.access = access.clone();
    client
}

/// What a delivery's result means for the event: delivered; retried when
/// CC may take it later (no answer, or 408, 429, 5xx); dropped when it
/// cannot be sent (a bad URL) or CC refused it for good.
fn outcome(delivered: cc::Result<()>) -> Outcome {
    let error = match delivered {
        Ok(()) => return Outcome::Final(Fate::Delivered),
        Err(error) => error,
    };
    let transient = match &error {
        cc::Error::InvalidUrl { .. } => {
            return Outcome::Final(Fate::Dropped("bad_url", error.to_string()));
        }
        cc::Error::Unreachable { .. } => true,
        cc::Error::Status { status, .. } => {
            StatusCode::from_u16(*status).is_ok_and(crate::http::is_transient)
        }
        _ => false,
    };
    if transient {
        Outcome::Retry(error.to_string())
    } else {
        Outcome::Final(Fate::Dropped("rejected", error.to_string()))
    }
}

/// CC's crash body for `crash`; the exit status and description are always
/// sent, as OPI always knows them.
fn app_crashed(crash: &CrashEvent) -> AppCrashed {
    AppCrashed {
        instance: crash.instance.clone(),
        index: crash.index,
        cell_id: crash.cell_id.clone(),
        reason: crash.reason.clone(),
        exit_status: Some(crash.exit_status),
        exit_description: Some(crash.exit_description.clone()),
        crash_count: crash.crash_count,
        crash_timestamp: crash.crash_timestamp,
    }
}

/// CC's task completion body for `done`.
fn task_completed(done: &TaskCompletion) -> TaskCompleted {
    TaskCompleted {
        task_guid: done.guid.clone(),
        failed: done.failed,
        failure_reason: done.failure_reason.clone(),
        result: done.result.clone(),
        annotation: None,
    }
}

/// The delay before retry number `attempts` (1-based): `initial * 2^(attempts-1)`, capped.
pub fn backoff(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    initial.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests;
