//! A fake Diego BBS, built from the BBS protobuf models (`bbs-models`), in
//! memory, on 127.0.0.1.
//!
//! It answers the routes Cube's Diego backend and Cloud Controller use the
//! way the real BBS does — POST + `application/x-protobuf`, errors inside a
//! 200 response as `Error{type,message}`, the real validation rule for rule
//! (`validate.rs`: missing process guid, empty domain, bad root filesystem,
//! run actions without path or user, image layers, egress rules, …),
//! `ResourceExists` on a duplicate desire, `ResourceNotFound` on unknown
//! records — and streams `/v1/events/lrp_instances.r1` and
//! `/v1/events/tasks.r1` as server-sent events with base64 protobuf data.
//!
//! Routes: `/v1/ping`, `/v1/domains/upsert`, `/v1/desired_lrp/desire.r2`,
//! `/v1/desired_lrp/update`, `/v1/desired_lrp/remove`,
//! `/v1/desired_lrps/get_by_process_guid.r3` and `.r2`,
//! `/v1/desired_lrp_scheduling_infos/list`, `/v1/actual_lrps/list`,
//! `/v1/actual_lrps/list_by_process_guids`, `/v1/actual_lrps/retire`,
//! `/v1/tasks/desire.r2`, `/v1/tasks/list.r3` and `.r2`,
//! `/v1/tasks/get_by_task_guid.r3` and `.r2`, `/v1/tasks/cancel`,
//! `/v1/tasks/resolving`, `/v1/tasks/delete`. Every field of a desired LRP or
//! task is kept and returned; the `.r2` reads answer in format V2
//! (`bbs_models::version`: image layers as cached dependencies and
//! downloads), and every DesiredLRP read fills in its metrics guid, as the
//! BBS does.
//!
//! [`FakeBbs::start`] serves mutual TLS with the test PKI in [`tls`]; clients
//! without a certificate from its CA are refused. Cells are simulated:
//! instances start `RUNNING` at once (or stay `UNCLAIMED` with
//! [`FakeBbs::set_placement_error`]), tasks start at once and complete when a
//! test calls [`FakeBbs::complete_task`]; [`FakeBbs::crash`] is a cell
//! reporting a crashed instance. A started instance is routable, in zone
//! `z1` of cell `cell-z1-0`, with its metric tags resolved (`INDEX`,
//! `INSTANCE_GUID`) as a cell reports them. A consumer resolves a completed task
//! (`/v1/tasks/resolving`) and deletes it (`/v1/tasks/delete`), with the
//! real BBS's state-transition errors.
//!
//! Faults: [`FakeBbs::set_unavailable`] (every route answers 503),
//! [`FakeBbs::drop_event_streams`] (the open event streams end; events are
//! not replayed), [`FakeBbs::hold`] (requests to a route wait until
//! released, e.g. to complete a task while a client is listing).
//!
//! ```ignore
//! let bbs = testkit::bbs::FakeBbs::start().await;
//! // connect with bbs.url() and testkit::bbs::tls::{CA_PEM, CLIENT_CERT_PEM, CLIENT_KEY_PEM}
//! ```

mod server;
mod state;
#[cfg(test)]
mod tests;
pub mod tls;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bbs_models as proto;

use server::Shared;

/// A running fake BBS. Dropping it shuts it down (event streams end).
pub struct FakeBbs {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: bool,
}

impl FakeBbs {
    /// A fake BBS serving mutual TLS (the way a real BBS is deployed).
    pub async fn start() -> Self {
        Self::serve(true).await
    }

    /// A fake BBS serving plain HTTP.
    pub async fn start_plain() -> Self {
        Self::serve(false).await
    }

    async fn serve(tls: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::new());
        let acceptor = tls.then(|| {
            tokio_rustls::TlsAcceptor::from(tls::server_config().expect("test PKI is valid"))
        });
        tokio::spawn(server::serve(
            listener,
            server::router(shared.clone()),
            acceptor,
            shared.shutdown.clone(),
        ));
        Self { shared, addr, tls }
    }

    /// `https://127.0.0.1:<port>` (or `http://` for [`FakeBbs::start_plain`]).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A cell reporting that instance `index` of `process_guid` exited with
    /// `exit_status`: an `actual_lrp_crashed` event, and the instance
    /// restarted at once for its first three crashes, `CRASHED` after.
    pub fn crash(&self, process_guid: &str, index: u32, exit_status: i32) -> Result<(), String> {
        let index = i32::try_from(index).map_err(|e| e.to_string())?;
        self.shared
            .with(|s| s.crash(process_guid, index, exit_status))
            .map_err(|e| e.message)
    }

    /// A cell finishing a task.
    pub fn complete_task(
        &self,
        guid: &str,
        failed: bool,
        failure_reason: &str,
        result: &str,
    ) -> Result<(), String> {
        self.shared
            .with(|s| s.complete_task(guid, failed, failure_reason, result))
            .map_err(|e| e.message)
    }

    /// A cell running task `guid`'s action to its end the way Diego's
    /// executor does — serial actions in order, stopping at the first
    /// failure; emit-progress actions prefixing a failure with their
    /// `failure_message_prefix`; timeout actions their inner action; try
    /// actions ignoring failure; parallel and codependent actions theirs in
    /// turn; downloads and uploads succeeding — where a run action exits
    /// with `exit_status(run)` (failure `Exited with status N`), then
    /// completing the task with the outcome.
    pub fn run_task(
        &self,
        guid: &str,
        exit_status: impl Fn(&proto::RunAction) -> i32,
    ) -> Result<(), String> {
        let task = self.task(guid).ok_or_else(|| format!("no task {guid}"))?;
        let action = task
            .task_definition
            .and_then(|d| d.action)
            .ok_or_else(|| format!("task {guid} has no action"))?;
        match execute(&action, &exit_status) {
            Ok(()) => self.complete_task(guid, false, "", ""),
            Err(reason) => self.complete_task(guid, true, &reason, ""),
        }
    }

    /// Makes new instances stay `UNCLAIMED` with `error` (e.g. `insufficient
    /// resources: memory`), or lets them start again with `None`.
    pub fn set_placement_error(&self, error: Option<&str>) {
        self.shared
            .with(|s| s.placement_error = error.map(str::to_owned));
    }

    /// While set, every route answers HTTP 503 (a BBS that lost its lock).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.shared.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Ends every event stream open now, as a BBS restart or a broken
    /// connection would; clients may subscribe again at once (refuse that
    /// with [`FakeBbs::set_unavailable`]).
    pub fn drop_event_streams(&self) {
        self.shared.drop_event_streams();
    }

    /// Makes requests to the unary route `path` (e.g. `/v1/tasks/list.r3`)
    /// wait, counted in [`FakeBbs::requests`] but not answered, until
    /// [`FakeBbs::release`]. The answer reflects the state at release.
    pub fn hold(&self, path: &str) {
        self.shared.hold(path, true);
    }

    /// Lets the requests held by [`FakeBbs::hold`] on `path` be answered.
    pub fn release(&self, path: &str) {
        self.shared.hold(path, false);
    }

    /// A desired LRP as stored.
    pub fn desired_lrp(&self, process_guid: &str) -> Option<proto::DesiredLrp> {
        self.shared.with(|s| s.desired.get(process_guid).cloned())
    }

    /// Every desired LRP, by process guid.
    pub fn desired_lrps(&self) -> Vec<proto::DesiredLrp> {
        self.shared.with(|s| s.desired.values().cloned().collect())
    }

    /// The ActualLRPs of `process_guid`, by index.
    pub fn actual_lrps(&self, process_guid: &str) -> Vec<proto::ActualLrp> {
        self.shared.with(|s| {
            s.actuals
                .iter()
                .filter(|((pg, _), _)| pg == process_guid)
                .map(|(_, a)| a.clone())
                .collect()
        })
    }

    /// A task as stored.
    pub fn task(&self, guid: &str) -> Option<proto::Task> {
        self.shared.with(|s| s.tasks.get(guid).cloned())
    }

    /// The TTL (seconds) `domain` was last upserted with.
    pub fn domain_ttl(&self, domain: &str) -> Option<u32> {
        self.shared.with(|s| s.domains.get(domain).copied())
    }

    /// How many requests `path` has received.
    pub fn requests(&self, path: &str) -> u64 {
        self.shared.requests(path)
    }

    /// Stops serving and ends the event streams.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}

impl Drop for FakeBbs {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `action` as the executor would: `Err` with the failure message.
fn execute(
    action: &proto::Action,
    exit_status: &dyn Fn(&proto::RunAction) -> i32,
) -> Result<(), String> {
    if let Some(run) = &action.run_action {
        return match exit_status(run) {
            0 => Ok(()),
            code => Err(format!("Exited with status {code}")),
        };
    }
    let inner = |nested: Option<&proto::Action>| {
        nested.map_or(Ok(()), |nested| execute(nested, exit_status))
    };
    if let Some(progress) = &action.emit_progress_action {
        return inner(progress.action.as_deref()).map_err(|e| {
            if progress.failure_message_prefix.is_empty() {
                e
            } else {
                format!("{}: {e}", progress.failure_message_prefix)
            }
        });
    }
    if let Some(timeout) = &action.timeout_action {
        return inner(timeout.action.as_deref());
    }
    if let Some(attempt) = &action.try_action {
        let _ = inner(attempt.action.as_deref());
        return Ok(());
    }
    let lists = [
        action.serial_action.as_ref().map(|a| &a.actions),
        action.parallel_action.as_ref().map(|a| &a.actions),
        action.codependent_action.as_ref().map(|a| &a.actions),
    ];
    for list in lists.into_iter().flatten() {
        for nested in list {
            execute(nested, exit_status)?;
        }
    }
    Ok(())
}
