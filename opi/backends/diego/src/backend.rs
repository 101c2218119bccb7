//! [`DiegoScheduler`]: the [`Scheduler`] over a BBS.
//!
//! Writes go straight to the BBS (desire, update, remove, retire, tasks);
//! reads ask it (desired LRPs, scheduling infos, ActualLRPs, tasks), so Cube
//! keeps nothing it cannot rebuild (besides the completions it reported
//! lately, readable for a while after they leave the BBS). Two background
//! loops follow the BBS event streams and publish crashes and task
//! completions on the [`EventBus`](opi::events::EventBus), reconnecting with
//! backoff when a stream breaks.
//!
//! Task completions are never lost and reported once per process: after
//! every subscribe and resubscribe the tasks loop lists the `cf-tasks`
//! domain and reports the completions the stream could not replay; a task
//! stays `COMPLETED` in the BBS until CC has its completion
//! ([`Scheduler::completion_delivered`]), then a third loop resolves and
//! deletes it. The protocol and its guarantee are in [`crate::completions`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use opi::model::{DesiredLrp, Event, Instance, LrpId, LrpUpdate, SchedulingInfo, Task, TaskStatus};
use opi::{Error, Scheduler};
use tokio_util::sync::{CancellationToken, DropGuard};
use url::Url;

use crate::client::{BbsClient, TlsPem};
use crate::completions::Completions;
use crate::error::DiegoError;
use crate::events::{self, BbsEvent};
use crate::proto;
use crate::translate::{APPS_DOMAIN, TASKS_DOMAIN, instance, lrp, task};

/// Default TTL of the `cf-apps` domain: a Sink syncing every 30 s keeps it
/// fresh with room for a few missed syncs.
pub const DEFAULT_DOMAIN_TTL: Duration = Duration::from_secs(120);

/// How to reach the BBS and run apps there.
#[derive(Debug, Clone)]
pub struct DiegoConfig {
    /// The BBS API, e.g. `https://bbs.service.cf.internal:8889`.
    pub bbs_url: Url,
    /// Mutual-TLS material (`None`: plain HTTP, for tests only).
    pub tls: Option<TlsPem>,
    /// Registry host[:port] serving droplet images (Cube's registry).
    pub registry: String,
    /// TTL the `cf-apps` domain is upserted with on every [`Scheduler::list`].
    pub domain_ttl: Duration,
}

struct Inner {
    client: BbsClient,
    registry: String,
    domain_ttl: Duration,
    /// The event bus; task completions reported once.
    completions: Completions,
    /// Process guid → LRP id, filled on desire/list/lookup; a cache of what
    /// the BBS stores (the id route), so crash events can be named quickly.
    ids: Mutex<HashMap<String, LrpId>>,
    lrp_stream_up: AtomicBool,
    task_stream_up: AtomicBool,
}

/// The Diego backend. Cheap to clone; the event loops stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct DiegoScheduler {
    inner: Arc<Inner>,
    _stop: Arc<DropGuard>,
}

impl DiegoScheduler {
    /// Connects to the BBS described by `config` and starts following its
    /// event streams (requires a tokio runtime). Does not wait for the BBS:
    /// [`Scheduler::ready`] tells when it is reachable and streaming.
    pub fn new(config: DiegoConfig) -> Result<Self, DiegoError> {
        let client = BbsClient::new(config.bbs_url, config.tls.as_ref())?;
        let inner = Arc::new(Inner {
            completions: Completions::new(client.clone()),
            client,
            registry: config.registry,
            domain_ttl: config.domain_ttl,
            ids: Mutex::new(HashMap::new()),
            lrp_stream_up: AtomicBool::new(false),
            task_stream_up: AtomicBool::new(false),
        });
        let stop = CancellationToken::new();
        tokio::spawn(watch(
            inner.clone(),
            events::LRP_INSTANCES_PATH,
            stop.clone(),
        ));
        tokio::spawn(watch(inner.clone(), events::TASKS_PATH, stop.clone()));
        let forgetting = inner.clone();
        let stopped = stop.clone();
        tokio::spawn(async move { forgetting.completions.forget_delivered(stopped).await });
        Ok(Self {
            inner,
            _stop: Arc::new(stop.drop_guard()),
        })
    }

    /// The BBS client this backend uses.
    pub fn client(&self) -> &BbsClient {
        &self.inner.client
    }
}

impl Inner {
    fn remember(&self, id: &LrpId) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.insert(id.process_guid(), id.clone());
    }

    fn forget(&self, id: &LrpId) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.remove(&id.process_guid());
    }

    fn cached(&self, process_guid: &str) -> Option<LrpId> {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.get(process_guid).cloned()
    }

    /// The LRP id of a process guid, from the cache or the BBS.
    async fn lookup(&self, process_guid: &str) -> Result<Option<LrpId>, DiegoError> {
        if let Some(id) = self.cached(process_guid) {
            return Ok(Some(id));
        }
        let desired = match self.client.desired_lrp(process_guid).await {
            Ok(desired) => desired,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = lrp::lrp_id(process_guid, desired.routes.as_ref());
        if let Some(id) = &id {
            self.remember(id);
        }
        Ok(id)
    }

    /// The scheduling info of `id`, or [`Error::NotFound`] when it is not
    /// desired (another LRP with the same process guid does not count).
    async fn scheduling_info(&self, id: &LrpId) -> Result<proto::DesiredLrpSchedulingInfo, Error> {
        let infos = self
            .client
            .scheduling_infos(APPS_DOMAIN, &[id.process_guid()])
            .await?;
        infos
            .into_iter()
            .find(|info| lrp::scheduling_info(info).is_some_and(|s| &s.id == id))
            .ok_or_else(|| Error::NotFound(format!("LRP {id}")))
    }

    async fn handle(&self, event: BbsEvent) {
        match event {
            BbsEvent::Crashed(crash) => {
                let key = crash.actual_lrp_key.clone().unwrap_or_default();
                if key.domain != APPS_DOMAIN {
                    return;
                }
                match self.lookup(&key.process_guid).await {
                    Ok(Some(id)) => self
                        .completions
                        .publish(Event::Crashed(instance::crash(id, &crash))),
                    Ok(None) => {
                        tracing::debug!(process_guid = %key.process_guid, "crash of an LRP Cube does not know")
                    }
                    Err(e) => {
                        tracing::warn!(process_guid = %key.process_guid, error = %e, "cannot name crashed LRP; crash not reported")
                    }
                }
            }
            BbsEvent::TaskChanged(change) => {
                if let Some(after) = &change.after {
                    self.completions
                        .changed(change.before.as_ref(), after)
                        .await;
                }
            }
            BbsEvent::TaskCreated(created) => {
                // Seen first as already completed (e.g. after reconnecting to a
                // new active BBS): still a completion to report.
                if let Some(task) = &created.task {
                    self.completions.changed(None, task).await;
                }
            }
            _ => {}
        }
    }

    /// One subscription to `path`: subscribes, catches up on the task
    /// completions the stream cannot replay, then handles events until the
    /// stream ends. An undecodable task event ends it too, so that the next
    /// catch-up covers whatever it said.
    async fn follow(&self, path: &'static str) -> Result<(), DiegoError> {
        let response = self.client.subscribe(path).await?;
        self.stream_flag(path).store(true, Ordering::SeqCst);
        let tasks = path == events::TASKS_PATH;
        if tasks {
            // After subscribing: what completes meanwhile waits in the stream.
            self.completions.catch_up().await?;
        }
        let mut stream = events::stream(response);
        while let Some(next) = stream.next().await {
            match next {
                Ok(event) => self.handle(event).await,
                Err(e) if tasks => return Err(e),
                Err(e) => tracing::warn!(path, error = %e, "bbs event stream"),
            }
        }
        Ok(())
    }

    fn stream_flag(&self, path: &str) -> &AtomicBool {
        if path == events::TASKS_PATH {
            &self.task_stream_up
        } else {
            &self.lrp_stream_up
        }
    }
}

/// Follows one event stream until `stop`, reconnecting with backoff.
async fn watch(inner: Arc<Inner>, path: &'static str, stop: CancellationToken) {
    const FIRST_DELAY: Duration = Duration::from_millis(100);
    const MAX_DELAY: Duration = Duration::from_secs(5);
    let mut delay = FIRST_DELAY;
    loop {
        let followed = tokio::select! {
            () = stop.cancelled() => return,
            followed = inner.follow(path) => followed,
        };
        inner.stream_flag(path).store(false, Ordering::SeqCst);
        match followed {
            Ok(()) => {
                delay = FIRST_DELAY;
                tracing::warn!(path, "bbs event stream ended; reconnecting");
            }
            Err(e) => tracing::warn!(path, error = %e, "bbs event stream failed; reconnecting"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

#[async_trait::async_trait]
impl Scheduler for DiegoScheduler {
    async fn desire(&self, lrp: DesiredLrp) -> Result<(), Error> {
        let inner = &self.inner;
        let want = lrp::desired_lrp(&lrp, &inner.registry)?;
        inner.remember(&lrp.id);
        let process_guid = want.process_guid.clone();
        let err = match inner.client.desire_lrp(want.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_exists() => e,
            Err(e) => return Err(e.into()),
        };
        let have = match inner.client.desired_lrp(&process_guid).await {
            Ok(have) => have,
            // Removed in between: desire again.
            Err(e) if e.is_not_found() => return Ok(inner.client.desire_lrp(want).await?),
            Err(e) => return Err(e.into()),
        };
        if lrp::lrp_id(&process_guid, have.routes.as_ref()).as_ref() != Some(&lrp.id) {
            return Err(Error::Conflict(format!(
                "process guid {process_guid} is taken by another LRP ({err})"
            )));
        }
        if lrp::differs_beyond_update(&have, &want) {
            // The BBS cannot change what runs in place: replace the LRP.
            inner.client.remove_lrp(&process_guid).await?;
            inner.client.desire_lrp(want).await?;
        } else if let Some(update) = lrp::update_between(&have, &want) {
            inner.client.update_lrp(&process_guid, update).await?;
        }
        Ok(())
    }

    async fn update(&self, id: &LrpId, update: LrpUpdate) -> Result<(), Error> {
        self.inner.scheduling_info(id).await?;
        let change = lrp::update(id, &update)?;
        Ok(self
            .inner
            .client
            .update_lrp(&id.process_guid(), change)
            .await?)
    }

    async fn get(&self, id: &LrpId) -> Result<DesiredLrp, Error> {
        let desired = self.inner.client.desired_lrp(&id.process_guid()).await?;
        if desired.domain != APPS_DOMAIN {
            return Err(Error::NotFound(format!("LRP {id}")));
        }
        let lrp = lrp::opi_lrp(&desired, &self.inner.registry)?;
        if &lrp.id != id {
            return Err(Error::NotFound(format!("LRP {id}")));
        }
        Ok(lrp)
    }

    async fn list(&self) -> Result<Vec<SchedulingInfo>, Error> {
        let inner = &self.inner;
        // Every sync marks the domain fresh, so Diego's convergence trusts
        // that what is not desired should not run.
        inner
            .client
            .upsert_domain(APPS_DOMAIN, inner.domain_ttl)
            .await?;
        let infos = inner.client.scheduling_infos(APPS_DOMAIN, &[]).await?;
        let mut out = Vec::with_capacity(infos.len());
        for info in &infos {
            match lrp::scheduling_info(info) {
                Some(info) => {
                    inner.remember(&info.id);
                    out.push(info);
                }
                None => tracing::debug!(?info.desired_lrp_key, "skipping an LRP Cube cannot name"),
            }
        }
        Ok(out)
    }

    async fn stop(&self, id: &LrpId) -> Result<(), Error> {
        self.inner.scheduling_info(id).await?;
        self.inner.client.remove_lrp(&id.process_guid()).await?;
        self.inner.forget(id);
        Ok(())
    }

    async fn stop_instance(&self, id: &LrpId, index: u32) -> Result<(), Error> {
        let info = self.inner.scheduling_info(id).await?;
        let index = i32::try_from(index)
            .ok()
            .filter(|i| *i < info.instances)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "instance {index} of LRP {id} ({} desired)",
                    info.instances
                ))
            })?;
        let key = proto::ActualLrpKey {
            process_guid: id.process_guid(),
            index,
            domain: APPS_DOMAIN.to_owned(),
        };
        Ok(self.inner.client.retire(key).await?)
    }

    async fn instances(&self, id: &LrpId) -> Result<Vec<Instance>, Error> {
        let info = self.inner.scheduling_info(id).await?;
        let actuals = self
            .inner
            .client
            .actual_lrps(APPS_DOMAIN, &id.process_guid())
            .await?;
        let desired = u32::try_from(info.instances).unwrap_or(0);
        Ok(instance::instances(&actuals, desired))
    }

    async fn desire_task(&self, task: Task) -> Result<(), Error> {
        let request = task::desire_request(&task, &self.inner.registry)?;
        Ok(self.inner.client.desire_task(&request).await?)
    }

    async fn get_task(&self, guid: &str) -> Result<TaskStatus, Error> {
        let found = match self.inner.client.task(guid).await {
            Ok(found) => found,
            // Reported, then resolved and deleted: still readable for a while.
            Err(e) if e.is_not_found() => {
                return self
                    .inner
                    .completions
                    .reported_status(guid)
                    .ok_or_else(|| Error::NotFound(format!("task {guid}")));
            }
            Err(e) => return Err(e.into()),
        };
        if found.domain != TASKS_DOMAIN {
            return Err(Error::NotFound(format!("task {guid}")));
        }
        Ok(task::status(&found))
    }

    async fn list_tasks(&self) -> Result<Vec<TaskStatus>, Error> {
        let tasks = self.inner.client.tasks(TASKS_DOMAIN).await?;
        let mut statuses: Vec<TaskStatus> = tasks.iter().map(task::status).collect();
        let listed: HashSet<String> = statuses.iter().map(|s| s.guid.clone()).collect();
        let reported = self.inner.completions.reported_statuses();
        statuses.extend(reported.into_iter().filter(|s| !listed.contains(&s.guid)));
        Ok(statuses)
    }

    async fn cancel_task(&self, guid: &str) -> Result<(), Error> {
        match self.inner.client.cancel_task(guid).await {
            // Reported and deleted: as the BBS says of a completed task.
            Err(e)
                if e.is_not_found() && self.inner.completions.reported_status(guid).is_some() =>
            {
                Err(Error::Conflict(format!("task {guid} has completed")))
            }
            other => Ok(other?),
        }
    }

    fn event_bus(&self) -> &opi::events::EventBus {
        self.inner.completions.bus()
    }

    /// A subscription that counts as a listener: completions are handed off
    /// only while one listens ([`crate::completions`]).
    fn events(&self) -> BoxStream<'static, Event> {
        self.inner.completions.subscribe()
    }

    /// CC has the completion of task `guid`: the task is resolved and
    /// deleted in the BBS, in the background (the caller does not wait for
    /// the BBS). Until then it stays `COMPLETED`, so a restarted OPI
    /// reports it again ([`crate::completions`]).
    async fn completion_delivered(&self, guid: &str) {
        self.inner.completions.delivered(guid);
    }

    async fn ready(&self) -> Result<(), String> {
        match self.inner.client.ping().await {
            Ok(true) => {}
            Ok(false) => return Err("the BBS says it is not available".into()),
            Err(e) => return Err(e.to_string()),
        }
        for path in [events::LRP_INSTANCES_PATH, events::TASKS_PATH] {
            if !self.inner.stream_flag(path).load(Ordering::SeqCst) {
                return Err(format!("not subscribed to {path} yet"));
            }
        }
        Ok(())
    }
}
