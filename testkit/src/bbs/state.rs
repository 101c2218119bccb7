//! The fake BBS's records and every operation on them, with the real BBS's
//! errors, plus a stand-in for the cells: instances are placed, claimed and
//! started at once (unless a placement error is set), tasks start at once and
//! complete when a test says so. Each change queues the events a real BBS
//! would stream.

use std::collections::BTreeMap;

use bbs_models::{self as proto, error::Type};
use prost::Message;

/// Which event stream an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// `/v1/events/lrp_instances.r1`.
    Lrp,
    /// `/v1/events/tasks.r1`.
    Task,
}

/// One event: its SSE name and protobuf payload.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) stream: Stream,
    pub(crate) name: &'static str,
    pub(crate) payload: Vec<u8>,
}

/// A BBS error.
pub(crate) fn error(kind: Type, message: impl Into<String>) -> proto::Error {
    proto::Error {
        r#type: kind as i32,
        message: message.into(),
    }
}

fn not_found() -> proto::Error {
    error(
        Type::ResourceNotFound,
        "the requested resource could not be found",
    )
}

fn exists() -> proto::Error {
    error(
        Type::ResourceExists,
        "the requested resource already exists",
    )
}

/// The BBS always answers an instance's `routable` (false until started).
fn routable(routable: bool) -> Option<proto::actual_lrp::OptionalRoutable> {
    Some(proto::actual_lrp::OptionalRoutable::Routable(routable))
}

/// The zone of the one simulated cell, `cell-z1-0`.
const CELL_ID: &str = "cell-z1-0";
const CELL_ZONE: &str = "z1";

/// After how many crashes an instance stays `CRASHED` instead of being
/// restarted at once (Diego restarts the first three immediately).
const IMMEDIATE_RESTARTS: i32 = 3;

/// Everything the fake BBS stores.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) desired: BTreeMap<String, proto::DesiredLrp>,
    pub(crate) actuals: BTreeMap<(String, i32), proto::ActualLrp>,
    pub(crate) tasks: BTreeMap<String, proto::Task>,
    pub(crate) domains: BTreeMap<String, u32>,
    /// When set, new instances stay `UNCLAIMED` with this placement error.
    pub(crate) placement_error: Option<String>,
    pub(crate) events: Vec<Event>,
    next_instance: u64,
    next_port: u32,
}

fn now() -> i64 {
    opi::model::now_unix_nanos()
}

impl State {
    fn emit(&mut self, stream: Stream, name: &'static str, message: &impl Message) {
        self.events.push(Event {
            stream,
            name,
            payload: message.encode_to_vec(),
        });
    }

    fn info(lrp: &proto::ActualLrp) -> proto::ActualLrpInfo {
        proto::ActualLrpInfo {
            actual_lrp_net_info: lrp.actual_lrp_net_info.clone(),
            crash_count: lrp.crash_count,
            crash_reason: lrp.crash_reason.clone(),
            state: lrp.state.clone(),
            placement_error: lrp.placement_error.clone(),
            since: lrp.since,
            modification_tag: lrp.modification_tag.clone(),
            presence: lrp.presence,
            optional_routable: lrp.optional_routable.map(|r| match r {
                proto::actual_lrp::OptionalRoutable::Routable(b) => {
                    proto::actual_lrp_info::OptionalRoutable::Routable(b)
                }
            }),
            availability_zone: lrp.availability_zone.clone(),
        }
    }

    fn changed(&mut self, before: &proto::ActualLrp, after: &proto::ActualLrp) {
        let event = proto::ActualLrpInstanceChangedEvent {
            actual_lrp_key: after.actual_lrp_key.clone(),
            actual_lrp_instance_key: after.actual_lrp_instance_key.clone(),
            before: Some(Self::info(before)),
            after: Some(Self::info(after)),
            trace_id: String::new(),
        };
        self.emit(Stream::Lrp, "actual_lrp_instance_changed", &event);
    }

    /// Creates the instance at `index` and, unless placement fails, starts it.
    fn place(&mut self, process_guid: &str, domain: &str, index: i32) {
        let lrp = proto::ActualLrp {
            actual_lrp_key: Some(proto::ActualLrpKey {
                process_guid: process_guid.to_owned(),
                index,
                domain: domain.to_owned(),
            }),
            actual_lrp_instance_key: Some(proto::ActualLrpInstanceKey::default()),
            actual_lrp_net_info: Some(proto::ActualLrpNetInfo::default()),
            state: "UNCLAIMED".into(),
            placement_error: self.placement_error.clone().unwrap_or_default(),
            since: now(),
            modification_tag: Some(proto::ModificationTag {
                epoch: format!("epoch-{process_guid}-{index}"),
                index: 0,
            }),
            optional_routable: routable(false),
            ..proto::ActualLrp::default()
        };
        self.emit(
            Stream::Lrp,
            "actual_lrp_instance_created",
            &proto::ActualLrpInstanceCreatedEvent {
                actual_lrp: Some(lrp.clone()),
                trace_id: String::new(),
            },
        );
        let key = (process_guid.to_owned(), index);
        self.actuals.insert(key.clone(), lrp.clone());
        if self.placement_error.is_none() {
            self.start(&key);
        }
    }

    /// Claims and starts an unclaimed instance on a fresh container.
    fn start(&mut self, key: &(String, i32)) {
        let Some(before) = self.actuals.get(key).cloned() else {
            return;
        };
        self.next_instance += 1;
        self.next_port += 1;
        let (desired_ports, desired_tags) = self
            .desired
            .get(&key.0)
            .map(|d| (d.ports.clone(), d.metric_tags.clone()))
            .unwrap_or_default();
        let instance_guid = format!("instance-{}", self.next_instance);
        let mut after = before.clone();
        after.metric_tags = instance_metric_tags(&desired_tags, key.1, &instance_guid);
        after.actual_lrp_instance_key = Some(proto::ActualLrpInstanceKey {
            instance_guid,
            cell_id: CELL_ID.into(),
        });
        after.actual_lrp_net_info = Some(proto::ActualLrpNetInfo {
            address: "10.0.16.4".into(),
            ports: desired_ports
                .iter()
                .map(|p| proto::PortMapping {
                    container_port: *p,
                    host_port: 61000 + self.next_port,
                    ..proto::PortMapping::default()
                })
                .collect(),
            instance_address: format!("10.255.0.{}", self.next_instance % 250 + 1),
            ..proto::ActualLrpNetInfo::default()
        });
        after.state = "RUNNING".into();
        after.optional_routable = routable(true);
        after.availability_zone = CELL_ZONE.into();
        after.placement_error.clear();
        after.since = now();
        if let Some(tag) = &mut after.modification_tag {
            tag.index += 1;
        }
        self.actuals.insert(key.clone(), after.clone());
        self.changed(&before, &after);
    }

    fn unplace(&mut self, key: &(String, i32)) {
        if let Some(lrp) = self.actuals.remove(key) {
            self.emit(
                Stream::Lrp,
                "actual_lrp_instance_removed",
                &proto::ActualLrpInstanceRemovedEvent {
                    actual_lrp: Some(lrp),
                    trace_id: String::new(),
                },
            );
        }
    }

    /// Brings the instances of `process_guid` to its desired count.
    fn converge(&mut self, process_guid: &str) {
        let (want, domain) = match self.desired.get(process_guid) {
            Some(d) => (d.instances, d.domain.clone()),
            None => (0, String::new()),
        };
        let have: Vec<(String, i32)> = self
            .actuals
            .keys()
            .filter(|(pg, _)| pg == process_guid)
            .cloned()
            .collect();
        for key in have.iter().filter(|(_, i)| *i >= want) {
            self.unplace(key);
        }
        for index in 0..want {
            if !self.actuals.contains_key(&(process_guid.to_owned(), index)) {
                self.place(process_guid, &domain, index);
            }
        }
    }

    // ---- routes ------------------------------------------------------------

    // Requests arrive validated (`validate.rs`), as in the BBS.

    pub(crate) fn upsert_domain(
        &mut self,
        req: proto::UpsertDomainRequest,
    ) -> Result<(), proto::Error> {
        self.domains.insert(req.domain, req.ttl);
        Ok(())
    }

    pub(crate) fn desire_lrp(&mut self, req: proto::DesireLrpRequest) -> Result<(), proto::Error> {
        let lrp = req.desired_lrp.unwrap_or_default();
        if self.desired.contains_key(&lrp.process_guid) {
            return Err(exists());
        }
        let lrp = stored(lrp);
        let process_guid = lrp.process_guid.clone();
        self.desired.insert(process_guid.clone(), lrp.clone());
        self.emit(
            Stream::Lrp,
            "desired_lrp_created",
            &proto::DesiredLrpCreatedEvent {
                desired_lrp: Some(lrp),
                trace_id: String::new(),
            },
        );
        self.converge(&process_guid);
        Ok(())
    }

    pub(crate) fn update_lrp(
        &mut self,
        req: proto::UpdateDesiredLrpRequest,
    ) -> Result<(), proto::Error> {
        use proto::desired_lrp_update::{
            OptionalAnnotation, OptionalImagePassword, OptionalImageUsername, OptionalInstances,
        };
        let update = req.update.unwrap_or_default();
        let Some(before) = self.desired.get(&req.process_guid).cloned() else {
            return Err(not_found());
        };
        let mut after = before.clone();
        if let Some(OptionalInstances::Instances(n)) = update.optional_instances {
            after.instances = n;
        }
        if let Some(routes) = update.routes {
            after.routes = Some(routes);
        }
        if let Some(OptionalAnnotation::Annotation(a)) = update.optional_annotation {
            after.annotation = a;
        }
        if !update.metric_tags.is_empty() {
            after.metric_tags = update.metric_tags;
        }
        if let Some(OptionalImageUsername::ImageUsername(u)) = update.optional_image_username {
            after.image_username = u;
        }
        if let Some(OptionalImagePassword::ImagePassword(p)) = update.optional_image_password {
            after.image_password = p;
        }
        if let Some(tag) = &mut after.modification_tag {
            tag.index += 1;
        }
        self.desired.insert(req.process_guid.clone(), after.clone());
        self.emit(
            Stream::Lrp,
            "desired_lrp_changed",
            &proto::DesiredLrpChangedEvent {
                before: Some(before),
                after: Some(after),
                trace_id: String::new(),
            },
        );
        self.converge(&req.process_guid);
        Ok(())
    }

    pub(crate) fn remove_lrp(
        &mut self,
        req: proto::RemoveDesiredLrpRequest,
    ) -> Result<(), proto::Error> {
        let Some(lrp) = self.desired.remove(&req.process_guid) else {
            return Err(not_found());
        };
        self.converge(&req.process_guid);
        self.emit(
            Stream::Lrp,
            "desired_lrp_removed",
            &proto::DesiredLrpRemovedEvent {
                desired_lrp: Some(lrp),
                trace_id: String::new(),
            },
        );
        Ok(())
    }

    /// The DesiredLRP as stored (format V3); the routes convert it.
    pub(crate) fn desired_lrp(
        &self,
        req: &proto::DesiredLrpByProcessGuidRequest,
    ) -> Result<proto::DesiredLrp, proto::Error> {
        self.desired
            .get(&req.process_guid)
            .cloned()
            .ok_or_else(not_found)
    }

    pub(crate) fn scheduling_infos(
        &self,
        req: &proto::DesiredLrPsRequest,
    ) -> Vec<proto::DesiredLrpSchedulingInfo> {
        self.desired
            .values()
            .filter(|d| req.domain.is_empty() || d.domain == req.domain)
            .filter(|d| req.process_guids.is_empty() || req.process_guids.contains(&d.process_guid))
            .map(|d| proto::DesiredLrpSchedulingInfo {
                desired_lrp_key: Some(proto::DesiredLrpKey {
                    process_guid: d.process_guid.clone(),
                    domain: d.domain.clone(),
                    log_guid: d.log_guid.clone(),
                }),
                annotation: d.annotation.clone(),
                instances: d.instances,
                desired_lrp_resource: Some(proto::DesiredLrpResource {
                    memory_mb: d.memory_mb,
                    disk_mb: d.disk_mb,
                    root_fs: d.root_fs.clone(),
                    max_pids: d.max_pids,
                }),
                routes: d.routes.clone(),
                modification_tag: d.modification_tag.clone(),
                volume_placement: Some(proto::VolumePlacement {
                    driver_names: d.volume_mounts.iter().map(|m| m.driver.clone()).collect(),
                }),
                placement_tags: d.placement_tags.clone(),
            })
            .collect()
    }

    pub(crate) fn actual_lrps(&self, req: &proto::ActualLrPsRequest) -> Vec<proto::ActualLrp> {
        use proto::actual_lr_ps_request::OptionalIndex;
        self.actuals
            .values()
            .filter(|a| {
                let key = a.actual_lrp_key.clone().unwrap_or_default();
                let cell = a
                    .actual_lrp_instance_key
                    .as_ref()
                    .map(|k| k.cell_id.as_str())
                    .unwrap_or_default();
                (req.domain.is_empty() || key.domain == req.domain)
                    && (req.process_guid.is_empty() || key.process_guid == req.process_guid)
                    && (req.cell_id.is_empty() || cell == req.cell_id)
                    && match req.optional_index {
                        Some(OptionalIndex::Index(i)) => key.index == i,
                        None => true,
                    }
            })
            .cloned()
            .collect()
    }

    pub(crate) fn actual_lrps_by_process_guids(
        &self,
        req: &proto::ActualLrPsByProcessGuidsRequest,
    ) -> Vec<proto::ActualLrp> {
        self.actuals
            .iter()
            .filter(|((process_guid, _), _)| req.process_guids.contains(process_guid))
            .map(|(_, lrp)| lrp.clone())
            .collect()
    }

    pub(crate) fn retire(
        &mut self,
        req: proto::RetireActualLrpRequest,
    ) -> Result<(), proto::Error> {
        let key = req.actual_lrp_key.unwrap_or_default();
        let id = (key.process_guid.clone(), key.index);
        if !self.actuals.contains_key(&id) {
            return Err(not_found());
        }
        // The cell stops the container; convergence then places a new one.
        self.unplace(&id);
        self.converge(&key.process_guid);
        Ok(())
    }

    pub(crate) fn desire_task(
        &mut self,
        req: proto::DesireTaskRequest,
    ) -> Result<(), proto::Error> {
        if self.tasks.contains_key(&req.task_guid) {
            return Err(exists());
        }
        let task = proto::Task {
            task_definition: req.task_definition,
            task_guid: req.task_guid.clone(),
            domain: req.domain,
            created_at: now(),
            updated_at: now(),
            state: proto::task::State::Pending as i32,
            ..proto::Task::default()
        };
        self.tasks.insert(req.task_guid.clone(), task.clone());
        self.emit(
            Stream::Task,
            "task_created",
            &proto::TaskCreatedEvent {
                task: Some(task.clone()),
            },
        );
        // A cell picks it up at once.
        let mut running = task.clone();
        running.state = proto::task::State::Running as i32;
        running.cell_id = CELL_ID.into();
        running.updated_at = now();
        self.set_task(task, running);
        Ok(())
    }

    fn set_task(&mut self, before: proto::Task, after: proto::Task) {
        self.tasks.insert(after.task_guid.clone(), after.clone());
        self.emit(
            Stream::Task,
            "task_changed",
            &proto::TaskChangedEvent {
                before: Some(before),
                after: Some(after),
            },
        );
    }

    pub(crate) fn tasks(&self, req: &proto::TasksRequest) -> Vec<proto::Task> {
        self.tasks
            .values()
            .filter(|t| req.domain.is_empty() || t.domain == req.domain)
            .filter(|t| req.cell_id.is_empty() || t.cell_id == req.cell_id)
            .cloned()
            .collect()
    }

    pub(crate) fn task(&self, req: &proto::TaskByGuidRequest) -> Result<proto::Task, proto::Error> {
        self.tasks
            .get(&req.task_guid)
            .cloned()
            .ok_or_else(not_found)
    }

    /// Completes a pending or running task (a cell finishing it, or a cancel).
    pub(crate) fn complete_task(
        &mut self,
        guid: &str,
        failed: bool,
        failure_reason: &str,
        result: &str,
    ) -> Result<(), proto::Error> {
        use proto::task::State as S;
        let Some(before) = self.tasks.get(guid).cloned() else {
            return Err(not_found());
        };
        match S::try_from(before.state) {
            Ok(S::Pending | S::Running) => {}
            _ => {
                return Err(error(
                    Type::InvalidStateTransition,
                    format!(
                        "Cannot transition from {:?} to Completed",
                        S::try_from(before.state).unwrap_or(S::Invalid)
                    ),
                ));
            }
        }
        let mut after = before.clone();
        after.state = S::Completed as i32;
        after.failed = failed;
        after.failure_reason = failure_reason.to_owned();
        after.result = result.to_owned();
        after.updated_at = now();
        after.first_completed_at = now();
        self.set_task(before, after);
        Ok(())
    }

    pub(crate) fn cancel_task(&mut self, req: &proto::TaskGuidRequest) -> Result<(), proto::Error> {
        self.complete_task(&req.task_guid, true, "task was cancelled", "")
    }

    /// A consumer claiming a completed task: `COMPLETED` → `RESOLVING`.
    pub(crate) fn resolving_task(
        &mut self,
        req: &proto::TaskGuidRequest,
    ) -> Result<(), proto::Error> {
        use proto::task::State as S;
        let before = self.task_in(&req.task_guid, S::Completed, S::Resolving)?;
        let mut after = before.clone();
        after.state = S::Resolving as i32;
        after.updated_at = now();
        self.set_task(before, after);
        Ok(())
    }

    /// A consumer done with a task it resolves: removes a `RESOLVING` task.
    pub(crate) fn delete_task(&mut self, req: &proto::TaskGuidRequest) -> Result<(), proto::Error> {
        use proto::task::State as S;
        self.task_in(&req.task_guid, S::Resolving, S::Resolving)?;
        if let Some(task) = self.tasks.remove(&req.task_guid) {
            self.emit(
                Stream::Task,
                "task_removed",
                &proto::TaskRemovedEvent { task: Some(task) },
            );
        }
        Ok(())
    }

    /// Task `guid` if it is in state `from`, else the real BBS's errors for
    /// a move to `to`: not found, or an invalid state transition.
    fn task_in(
        &self,
        guid: &str,
        from: proto::task::State,
        to: proto::task::State,
    ) -> Result<proto::Task, proto::Error> {
        use proto::task::State as S;
        let task = self.tasks.get(guid).ok_or_else(not_found)?;
        if task.state == from as i32 {
            return Ok(task.clone());
        }
        let state = S::try_from(task.state).unwrap_or(S::Invalid);
        Err(error(
            Type::InvalidStateTransition,
            format!("Cannot transition from {state:?} to {to:?}"),
        ))
    }

    /// A cell reporting that the instance at `index` exited with `exit_status`.
    pub(crate) fn crash(
        &mut self,
        process_guid: &str,
        index: i32,
        exit_status: i32,
    ) -> Result<(), proto::Error> {
        let key = (process_guid.to_owned(), index);
        let Some(before) = self.actuals.get(&key).cloned() else {
            return Err(not_found());
        };
        if before.state != "RUNNING" && before.state != "CLAIMED" {
            return Err(error(
                Type::ActualLrpCannotBeCrashed,
                format!("instance is {}", before.state),
            ));
        }
        let mut after = before.clone();
        after.crash_count += 1;
        after.crash_reason = format!("APP/PROC/WEB: Exited with status {exit_status}");
        after.since = now();
        let crashed = proto::ActualLrpCrashedEvent {
            actual_lrp_key: before.actual_lrp_key.clone(),
            actual_lrp_instance_key: before.actual_lrp_instance_key.clone(),
            crash_count: after.crash_count,
            crash_reason: after.crash_reason.clone(),
            since: after.since,
        };
        self.emit(Stream::Lrp, "actual_lrp_crashed", &crashed);
        let restart = after.crash_count <= IMMEDIATE_RESTARTS;
        after.state = if restart { "UNCLAIMED" } else { "CRASHED" }.into();
        after.actual_lrp_instance_key = Some(proto::ActualLrpInstanceKey::default());
        after.actual_lrp_net_info = Some(proto::ActualLrpNetInfo::default());
        after.optional_routable = routable(false);
        if let Some(tag) = &mut after.modification_tag {
            tag.index += 1;
        }
        self.actuals.insert(key.clone(), after.clone());
        self.changed(&before, &after);
        if restart && self.placement_error.is_none() {
            self.start(&key);
        }
        Ok(())
    }
}

/// A desired LRP as the BBS keeps it: with a fresh modification tag, routes
/// (an empty set when none were given: the BBS always answers some) and
/// without the deprecated start timeout in seconds, which the BBS does not
/// store.
#[allow(deprecated)]
fn stored(mut lrp: proto::DesiredLrp) -> proto::DesiredLrp {
    lrp.modification_tag = Some(proto::ModificationTag {
        epoch: format!("epoch-{}", lrp.process_guid),
        index: 0,
    });
    lrp.routes = Some(lrp.routes.unwrap_or_default());
    lrp.deprecated_start_timeout_s = 0;
    lrp
}

/// An instance's metric tags as its cell reports them: static values as
/// they are, `INDEX` and `INSTANCE_GUID` resolved, an unknown dynamic value
/// left out (BBS `ConvertMetricTags`).
fn instance_metric_tags(
    desired: &BTreeMap<String, proto::MetricTagValue>,
    index: i32,
    instance_guid: &str,
) -> BTreeMap<String, String> {
    use proto::metric_tag_value::DynamicValue;
    desired
        .iter()
        .filter_map(|(name, value)| {
            let value = match DynamicValue::try_from(value.dynamic) {
                Ok(DynamicValue::Invalid) => value.r#static.clone(),
                Ok(DynamicValue::Index) => index.to_string(),
                Ok(DynamicValue::InstanceGuid) => instance_guid.to_owned(),
                Err(_) => return None,
            };
            Some((name.clone(), value))
        })
        .collect()
}
