//! One convergence cycle: walk CC, list OPI, diff, fetch what changed, write.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use cc::model::{DesireAppRequestFromCC, Fingerprint, ProcessGuid};
use futures::StreamExt;
use opi::http::OpiClient;
use opi::model::LrpId;
use opi::model::wire::{
    DesireLrpRequest, DesiredLrpBody, LrpUpdateBody, SchedulingInfoBody, UpdateLrpRequest,
};

use crate::Error;
use crate::diff::{self, CcApp, OpiLrp, Plan};
use crate::metrics::Metrics;
use crate::registry::{Ensured, RegistryClient};
use crate::translate::{self, Translated};

/// How a cycle behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Page size of CC's bulk API, and of full-record fetches.
    pub batch_size: u32,
    /// Most OPI writes in flight at once.
    pub parallel: usize,
    /// A cycle that would stop more than this fraction of all LRPs stops nothing…
    pub max_stop_fraction: f64,
    /// …when it would stop more than this many.
    pub mass_stop_min: usize,
    /// Stop anyway.
    pub allow_mass_stop: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            parallel: 32,
            max_stop_fraction: 0.5,
            mass_stop_min: 10,
            allow_mass_stop: false,
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Apps CC desires.
    pub cc_apps: usize,
    /// LRPs OPI had at the start.
    pub lrps: usize,
    /// New LRPs desired.
    pub desired: usize,
    /// LRPs updated (instances, routes, annotation).
    pub updated: usize,
    /// LRPs re-desired because more than instances/routes changed.
    pub redesired: usize,
    /// LRPs stopped.
    pub stopped: usize,
    /// Droplet images imported into the registry.
    pub imported: usize,
    /// Stops refused by the mass-stop guard.
    pub stops_refused: usize,
    /// What failed (each names the app); retried next cycle.
    pub errors: Vec<String>,
}

impl CycleReport {
    /// Writes made to OPI.
    pub fn writes(&self) -> usize {
        self.desired + self.updated + self.redesired + self.stopped
    }
}

/// The Sink's clients and settings.
pub struct Converger {
    cc: cc::Client,
    opi: OpiClient,
    registry: Option<RegistryClient>,
    settings: Settings,
    metrics: Metrics,
}

enum Done {
    Desired { imported: bool },
    Updated,
    Redesired { imported: bool },
}

impl Converger {
    /// A converger; without a registry, buildpack apps are desired without
    /// checking that their image exists.
    pub fn new(
        cc: cc::Client,
        opi: OpiClient,
        registry: Option<RegistryClient>,
        settings: Settings,
        metrics: Metrics,
    ) -> Self {
        Self {
            cc,
            opi,
            registry,
            settings,
            metrics,
        }
    }

    fn mark_success(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.metrics.last_success.set(now);
    }

    /// Runs one cycle. An `Err` means nothing was written (CC or OPI could not
    /// be read completely); per-app failures are in the report instead.
    pub async fn cycle(&self) -> Result<CycleReport, Error> {
        let started = Instant::now();
        let result = self.converge().await;
        self.metrics
            .cycle_duration
            .observe(started.elapsed().as_secs_f64());
        if result.is_ok() {
            self.mark_success();
        }
        let outcome = match &result {
            Ok(report) if report.errors.is_empty() => "ok",
            Ok(_) => "partial",
            Err(_) => "failed",
        };
        self.metrics.cycles.with_label_values(&[outcome]).inc();
        result
    }

    /// One cycle's work: read both sides, diff, write what changed, then
    /// stop what CC no longer desires.
    async fn converge(&self) -> Result<CycleReport, Error> {
        // A failed page fails the whole walk: a partial list must never
        // make us stop apps that still exist.
        let fingerprints = self.cc.fingerprints(self.settings.batch_size).await?;
        let lrps = self.opi.list().await?;
        let cc_apps = cc_apps(fingerprints);
        let opi_lrps = opi_lrps(lrps);
        self.metrics
            .apps
            .set(i64::try_from(cc_apps.len()).unwrap_or(i64::MAX));
        let plan = diff::diff(&cc_apps, &opi_lrps);
        let mut report = CycleReport {
            cc_apps: cc_apps.len(),
            lrps: opi_lrps.len(),
            ..CycleReport::default()
        };
        if plan.is_empty() {
            return Ok(report);
        }
        let failed_apps = self.write_all(&plan, &mut report).await?;
        // Stops: never of an app whose new version just failed to start,
        // never more than the guard allows.
        let stops: Vec<OpiLrp> = plan
            .stop
            .into_iter()
            .filter(|lrp| !failed_apps.contains(&lrp.guid))
            .collect();
        if self.refuses_mass_stop(stops.len(), opi_lrps.len()) {
            report.stops_refused = stops.len();
            return Ok(report);
        }
        self.stop_all(stops, &mut report).await;
        Ok(report)
    }

    /// Fetches the full records of the plan's new and changed apps and writes
    /// them to OPI (at most `parallel` at once), counting each outcome in
    /// `report`. Answers the app guids whose write failed.
    async fn write_all(
        &self,
        plan: &Plan,
        report: &mut CycleReport,
    ) -> Result<BTreeSet<String>, Error> {
        let to_fetch = plan.to_fetch();
        let records = self.fetch(&to_fetch).await?;
        let new: BTreeSet<&str> = plan.desire.iter().map(String::as_str).collect();
        let writes = to_fetch.into_iter().filter_map(|pg| {
            let record = records.get(&pg)?.clone();
            Some((new.contains(pg.as_str()), record))
        });
        let outcomes: Vec<(String, String, Result<Done, String>)> = futures::stream::iter(writes)
            .map(|(is_new, record)| async move {
                let pg = record.process_guid.0.clone();
                let app_guid = record
                    .process_guid
                    .app_guid()
                    .unwrap_or_default()
                    .to_owned();
                (pg, app_guid, self.write(is_new, &record).await)
            })
            .buffer_unordered(self.settings.parallel.max(1))
            .collect()
            .await;
        let mut failed_apps = BTreeSet::new();
        for (pg, app_guid, outcome) in outcomes {
            if !self.count_write(&pg, outcome, report) {
                failed_apps.insert(app_guid);
            }
        }
        Ok(failed_apps)
    }

    /// Counts one write's outcome in `report` and the metrics; `false` when
    /// it failed.
    fn count_write(
        &self,
        pg: &str,
        outcome: Result<Done, String>,
        report: &mut CycleReport,
    ) -> bool {
        match outcome {
            Ok(Done::Desired { imported }) => {
                report.desired += 1;
                report.imported += usize::from(imported);
                self.metrics.actions.with_label_values(&["desire"]).inc();
            }
            Ok(Done::Redesired { imported }) => {
                report.redesired += 1;
                report.imported += usize::from(imported);
                self.metrics.actions.with_label_values(&["desire"]).inc();
            }
            Ok(Done::Updated) => {
                report.updated += 1;
                self.metrics.actions.with_label_values(&["update"]).inc();
            }
            Err(why) => {
                tracing::warn!(process_guid = %pg, error = %why, "cannot converge app; retrying next cycle");
                self.metrics.actions.with_label_values(&["error"]).inc();
                report.errors.push(format!("{pg}: {why}"));
                return false;
            }
        }
        true
    }

    /// Whether the mass-stop guard refuses stopping `stops` of `total` LRPs
    /// (logged and counted when it does).
    fn refuses_mass_stop(&self, stops: usize, total: usize) -> bool {
        if self.settings.allow_mass_stop
            || !diff::is_mass_stop(
                stops,
                total,
                self.settings.max_stop_fraction,
                self.settings.mass_stop_min,
            )
        {
            return false;
        }
        tracing::error!(
            would_stop = stops,
            of = total,
            max_fraction = self.settings.max_stop_fraction,
            "refusing to stop this many LRPs at once; stopping none (use --allow-mass-stop if intended)"
        );
        self.metrics.mass_stop_refused.inc();
        true
    }

    /// Stops `stops` (at most `parallel` at once; one already gone counts as
    /// stopped), counting each outcome in `report`.
    async fn stop_all(&self, stops: Vec<OpiLrp>, report: &mut CycleReport) {
        let stopped: Vec<(String, Result<(), opi::Error>)> = futures::stream::iter(stops)
            .map(|lrp| async move {
                let id = LrpId::new(lrp.guid, lrp.version);
                let result = match self.opi.stop(&id).await {
                    Err(opi::Error::NotFound(_)) => Ok(()),
                    other => other,
                };
                (lrp.process_guid, result)
            })
            .buffer_unordered(self.settings.parallel.max(1))
            .collect()
            .await;
        for (pg, result) in stopped {
            match result {
                Ok(()) => {
                    report.stopped += 1;
                    self.metrics.actions.with_label_values(&["stop"]).inc();
                }
                Err(e) => {
                    tracing::warn!(process_guid = %pg, error = %e, "cannot stop LRP; retrying next cycle");
                    self.metrics.actions.with_label_values(&["error"]).inc();
                    report.errors.push(format!("{pg}: stop: {e}"));
                }
            }
        }
    }

    async fn fetch(
        &self,
        process_guids: &[String],
    ) -> Result<HashMap<String, DesireAppRequestFromCC>, Error> {
        let mut records = HashMap::new();
        let size = usize::try_from(self.settings.batch_size.max(1)).unwrap_or(500);
        for chunk in process_guids.chunks(size) {
            let guids: Vec<ProcessGuid> = chunk.iter().map(|g| ProcessGuid(g.clone())).collect();
            for record in self.cc.desired_apps(&guids).await? {
                records.insert(record.process_guid.0.clone(), record);
            }
        }
        Ok(records)
    }

    async fn ensure_image(&self, translated: &Translated) -> Result<bool, String> {
        match (&self.registry, &translated.droplet) {
            (Some(registry), Some(droplet)) => registry
                .ensure(droplet)
                .await
                .map(|e| e == Ensured::Imported)
                .map_err(|e| e.to_string()),
            _ => Ok(false),
        }
    }

    /// Imports the droplet image when needed, then desires the app; answers
    /// whether the image was imported.
    async fn import_and_desire(&self, translated: &Translated) -> Result<bool, String> {
        let imported = self.ensure_image(translated).await?;
        self.opi
            .desire(&translated.request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(imported)
    }

    /// Writes one fetched record: desires a new app; for a changed one,
    /// updates it when only instances and routes changed, otherwise
    /// re-desires it (and desires it when OPI no longer has it).
    async fn write(&self, is_new: bool, record: &DesireAppRequestFromCC) -> Result<Done, String> {
        let translated = translate::translate(record).map_err(|e| e.problem)?;
        let request = &translated.request;
        if is_new {
            let imported = self.import_and_desire(&translated).await?;
            return Ok(Done::Desired { imported });
        }
        // Same process guid, new etag: an update when only instances and
        // routes changed, otherwise a re-desire.
        let id = LrpId::new(request.guid.clone(), request.version.clone());
        let current = match self.opi.get(&id).await {
            Ok(current) => current,
            Err(opi::Error::NotFound(_)) => {
                let imported = self.import_and_desire(&translated).await?;
                return Ok(Done::Desired { imported });
            }
            Err(e) => return Err(e.to_string()),
        };
        if same_template(&current, request) {
            self.opi
                .update(&update_request(request))
                .await
                .map_err(|e| e.to_string())?;
            Ok(Done::Updated)
        } else {
            let imported = self.import_and_desire(&translated).await?;
            Ok(Done::Redesired { imported })
        }
    }
}

/// CC's fingerprints as the diff reads them.
fn cc_apps(fingerprints: Vec<Fingerprint>) -> Vec<CcApp> {
    fingerprints
        .into_iter()
        .map(|f| CcApp {
            process_guid: f.process_guid.0,
            etag: f.etag.0,
        })
        .collect()
}

/// OPI's scheduling infos as the diff reads them (an LRP without a process
/// guid gets `<guid>-<version>`).
fn opi_lrps(lrps: Vec<SchedulingInfoBody>) -> Vec<OpiLrp> {
    lrps.into_iter()
        .map(|l| OpiLrp {
            process_guid: if l.process_guid.is_empty() {
                format!("{}-{}", l.guid, l.version)
            } else {
                l.process_guid
            },
            guid: l.guid,
            version: l.version,
            annotation: l.annotation,
        })
        .collect()
}

/// Whether the LRP OPI runs (`current`) has the pod template `request`
/// asks for: the same image, memory, disk and process type.
fn same_template(current: &DesiredLrpBody, request: &DesireLrpRequest) -> bool {
    let same_image = match (
        &request.lifecycle.docker_lifecycle,
        &request.lifecycle.buildpack_lifecycle,
    ) {
        (Some(docker), _) => current.image == docker.image,
        (_, Some(bp)) => current.image.ends_with(&opi::model::droplet_image(
            "",
            &bp.droplet_guid,
            &bp.droplet_hash,
        )),
        (None, None) => false,
    };
    same_image
        && i64::try_from(current.memory_mb).ok() == Some(request.memory_mb)
        && i64::try_from(current.disk_mb).ok() == Some(request.disk_mb)
        && current.process_type == request.process_type
}

/// The update that brings an LRP to `request`'s instances, routes and
/// annotation.
fn update_request(request: &DesireLrpRequest) -> UpdateLrpRequest {
    UpdateLrpRequest {
        guid: request.guid.clone(),
        version: request.version.clone(),
        update: LrpUpdateBody {
            instances: Some(request.instances),
            routes: Some(request.routes.clone()),
            annotation: Some(request.last_updated.clone()),
        },
    }
}
