//! What the real BBS rejects as `InvalidRequest`, rule for rule from
//! cloudfoundry/bbs `models/*.go` `Validate()` (the subset Cube's fields
//! touch): a backend that writes something a real BBS would refuse fails here.

use opi_diego::proto;

/// BBS's limit on annotations (`maximumAnnotationLength`).
const MAX_ANNOTATION: usize = 10 * 1024;
/// BBS's limit on all routes of an LRP together (`maximumRouteLength`).
const MAX_ROUTES: usize = 128 * 1024;

/// Invalid fields found so far, reported like BBS's `ValidationError`.
#[derive(Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    fn field(&mut self, name: &str) {
        self.0.push(format!("Invalid field: {name}"));
    }

    fn check(&mut self, ok: bool, name: &str) {
        if !ok {
            self.field(name);
        }
    }

    /// `Ok` when nothing was found, else the BBS's message.
    pub(crate) fn finish(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0.join(", "))
        }
    }
}

/// BBS's `processGuidPattern` / `taskGuidPattern`: `^[a-zA-Z0-9_-]+$`.
pub(crate) fn is_guid(guid: &str) -> bool {
    !guid.is_empty()
        && guid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A root filesystem is a URL with a scheme (`docker:///…`, `preloaded:…`).
fn is_root_fs(root_fs: &str) -> bool {
    match root_fs.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && scheme.as_bytes()[0].is_ascii_alphabetic()
        }
        None => false,
    }
}

fn routes_length(routes: Option<&proto::ProtoRoutes>) -> usize {
    routes.map_or(0, |r| r.routes.values().map(Vec::len).sum())
}

/// Exactly one action kind is set and it is valid.
fn action(p: &mut Problems, action: &proto::Action, name: &str) {
    let set = [
        action.download_action.is_some(),
        action.upload_action.is_some(),
        action.run_action.is_some(),
        action.timeout_action.is_some(),
        action.emit_progress_action.is_some(),
        action.try_action.is_some(),
        action.parallel_action.is_some(),
        action.serial_action.is_some(),
        action.codependent_action.is_some(),
    ]
    .into_iter()
    .filter(|s| *s)
    .count();
    if set != 1 {
        p.0.push(format!("Invalid field: {name} (Invalid action type)"));
        return;
    }
    if let Some(run) = &action.run_action {
        p.check(!run.path.is_empty(), "path");
        p.check(!run.user.is_empty(), "user");
        for env in &run.env {
            p.check(!env.name.is_empty(), "name");
        }
    }
    if let Some(download) = &action.download_action {
        p.check(!download.from.is_empty(), "from");
        p.check(!download.to.is_empty(), "to");
        p.check(!download.user.is_empty(), "user");
    }
    if let Some(upload) = &action.upload_action {
        p.check(!upload.from.is_empty(), "from");
        p.check(!upload.to.is_empty(), "to");
        p.check(!upload.user.is_empty(), "user");
    }
    if let Some(timeout) = &action.timeout_action {
        p.check(timeout.timeout_ms > 0, "timeout_ms");
        nested(p, timeout.action.as_deref(), name);
    }
    if let Some(attempt) = &action.try_action {
        nested(p, attempt.action.as_deref(), name);
    }
    if let Some(progress) = &action.emit_progress_action {
        nested(p, progress.action.as_deref(), name);
    }
    for list in [
        action.serial_action.as_ref().map(|a| &a.actions),
        action.parallel_action.as_ref().map(|a| &a.actions),
        action.codependent_action.as_ref().map(|a| &a.actions),
    ]
    .into_iter()
    .flatten()
    {
        p.check(!list.is_empty(), "actions");
        for inner in list {
            self::action(p, inner, name);
        }
    }
}

fn nested(p: &mut Problems, inner: Option<&proto::Action>, name: &str) {
    match inner {
        Some(inner) => action(p, inner, name),
        None => p.field("action"),
    }
}

fn checks(p: &mut Problems, definition: &proto::CheckDefinition) {
    for check in definition.checks.iter().chain(&definition.readiness_checks) {
        match (&check.tcp_check, &check.http_check) {
            (Some(tcp), None) => p.check((1..=65535).contains(&tcp.port), "port"),
            (None, Some(http)) => p.check((1..=65535).contains(&http.port), "port"),
            _ => p.field("check_definition"),
        }
    }
}

fn metric_tags(p: &mut Problems, tags: &std::collections::BTreeMap<String, proto::MetricTagValue>) {
    for value in tags.values() {
        // Exactly one of static and dynamic.
        p.check(
            value.r#static.is_empty() != (value.dynamic == 0),
            "metric_tags",
        );
    }
}

/// `DesireLRPRequest` validation.
pub(crate) fn desired_lrp(d: &proto::DesiredLrp) -> Result<(), String> {
    let mut p = Problems::default();
    p.check(!d.domain.is_empty(), "domain");
    p.check(is_guid(&d.process_guid), "process_guid");
    p.check(is_root_fs(&d.root_fs), "rootfs");
    p.check(d.instances >= 0, "instances");
    p.check(d.memory_mb >= 0, "memory_mb");
    p.check(d.disk_mb >= 0, "disk_mb");
    p.check(d.max_pids >= 0, "max_pids");
    p.check(d.annotation.len() <= MAX_ANNOTATION, "annotation");
    p.check(routes_length(d.routes.as_ref()) <= MAX_ROUTES, "routes");
    // An empty map decodes as Go's nil map, which BBS rejects.
    p.check(!d.metric_tags.is_empty(), "metric_tags");
    metric_tags(&mut p, &d.metric_tags);
    match &d.action {
        Some(a) => action(&mut p, a, "action"),
        None => p.field("action"),
    }
    if let Some(setup) = &d.setup {
        action(&mut p, setup, "setup");
    }
    if let Some(monitor) = &d.monitor {
        action(&mut p, monitor, "monitor");
    }
    for env in &d.environment_variables {
        p.check(!env.name.is_empty(), "name");
    }
    p.check(
        d.image_username.is_empty() == d.image_password.is_empty(),
        "image_username",
    );
    if let Some(definition) = &d.check_definition {
        checks(&mut p, definition);
    }
    p.finish()
}

/// `UpdateDesiredLRPRequest` validation.
pub(crate) fn update(process_guid: &str, u: &proto::DesiredLrpUpdate) -> Result<(), String> {
    use proto::desired_lrp_update::{OptionalAnnotation, OptionalInstances};
    let mut p = Problems::default();
    p.check(is_guid(process_guid), "process_guid");
    if let Some(OptionalInstances::Instances(n)) = u.optional_instances {
        p.check(n >= 0, "instances");
    }
    if let Some(OptionalAnnotation::Annotation(a)) = &u.optional_annotation {
        p.check(a.len() <= MAX_ANNOTATION, "annotation");
    }
    p.check(routes_length(u.routes.as_ref()) <= MAX_ROUTES, "routes");
    metric_tags(&mut p, &u.metric_tags);
    p.check(
        u.optional_image_username.is_some() == u.optional_image_password.is_some(),
        "image_username",
    );
    p.finish()
}

/// `DesireTaskRequest` validation.
pub(crate) fn desire_task(req: &proto::DesireTaskRequest) -> Result<(), String> {
    let mut p = Problems::default();
    p.check(is_guid(&req.task_guid), "task_guid");
    p.check(!req.domain.is_empty(), "domain");
    match &req.task_definition {
        None => p.field("task_definition"),
        Some(def) => {
            p.check(is_root_fs(&def.root_fs), "rootfs");
            match &def.action {
                Some(a) => action(&mut p, a, "action"),
                None => p.field("action"),
            }
            p.check(def.memory_mb >= 0, "memory_mb");
            p.check(def.disk_mb >= 0, "disk_mb");
            p.check(def.max_pids >= 0, "max_pids");
            p.check(def.annotation.len() <= MAX_ANNOTATION, "annotation");
            p.check(
                def.image_username.is_empty() == def.image_password.is_empty(),
                "image_username",
            );
            metric_tags(&mut p, &def.metric_tags);
        }
    }
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_root_filesystems_follow_bbs_patterns() {
        assert!(is_guid("app-guid_v1"));
        assert!(!is_guid(""));
        assert!(!is_guid("a/b"));
        assert!(is_root_fs("docker:///library/nginx#1"));
        assert!(is_root_fs("preloaded:cflinuxfs4"));
        assert!(!is_root_fs("library/nginx"));
        assert!(!is_root_fs(""));
    }

    #[test]
    fn run_actions_need_path_and_user() {
        let mut p = Problems::default();
        action(
            &mut p,
            &proto::Action {
                run_action: Some(proto::RunAction::default()),
                ..proto::Action::default()
            },
            "action",
        );
        assert_eq!(
            p.finish(),
            Err("Invalid field: path, Invalid field: user".into())
        );
        let mut p = Problems::default();
        action(&mut p, &proto::Action::default(), "action");
        assert!(p.finish().is_err(), "an action of no kind is invalid");
    }
}
