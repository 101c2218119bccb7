//! The BBS's request validation (`Validate()` of cloudfoundry/bbs
//! `models/*_requests.go`, `task.go`, `actions.go`, `desired_lrp.go`), run
//! after a body decoded and before anything happens. A failure answers
//! InvalidRequest with the BBS's own message: items such as
//! `Invalid field: process_guid`, joined with `, `.
//!
//! A desired LRP's own validation is the translation's
//! ([`crate::translate::lrp::desired`]): what Cube cannot run is refused there.
//!
//! Pure: plain function calls in tests.

use bbs_models::metric_tag_value::DynamicValue;
use bbs_models::{
    Action, ActualLrPsByProcessGuidsRequest, CachedDependency, DesireTaskRequest, DesiredLrpUpdate,
    MetricTagValue, RetireActualLrpRequest, TaskDefinition,
};

use crate::error::{Error, Validation};

/// The longest annotation the BBS stores (10 KiB).
pub const MAX_ANNOTATION_BYTES: usize = 10 * 1024;
/// The most route bytes, all routers together, the BBS stores (128 KiB).
pub const MAX_ROUTE_BYTES: usize = 128 * 1024;

/// A request naming one LRP or task by a guid that must not be empty
/// (`Invalid field: <field>`).
pub fn guid(value: &str, field: &str) -> Result<(), Error> {
    Validation::default()
        .field(value.is_empty(), field)
        .finish()
}

/// `domains/upsert`: a domain is required.
pub fn upsert_domain(domain: &str) -> Result<(), Error> {
    guid(domain, "domain")
}

/// `desired_lrp/update`: the process guid, and the update's fields as the
/// BBS checks them.
pub fn update_lrp(process_guid: &str, update: Option<&DesiredLrpUpdate>) -> Result<(), Error> {
    let mut validation = Validation::default().field(process_guid.is_empty(), "process_guid");
    if let Some(update) = update {
        validation = validation.nested(lrp_update(update));
    }
    validation.finish()
}

fn lrp_update(update: &DesiredLrpUpdate) -> Validation {
    use bbs_models::desired_lrp_update::{
        OptionalAnnotation, OptionalImagePassword, OptionalImageUsername, OptionalInstances,
    };
    let instances =
        matches!(update.optional_instances, Some(OptionalInstances::Instances(n)) if n < 0);
    let annotation = matches!(&update.optional_annotation,
        Some(OptionalAnnotation::Annotation(a)) if a.len() > MAX_ANNOTATION_BYTES);
    let routes = update.routes.as_ref().is_some_and(|routes| {
        routes.routes.values().map(Vec::len).sum::<usize>() > MAX_ROUTE_BYTES
    });
    let tags = metric_tags(update.metric_tags.values());
    let username = matches!(
        update.optional_image_username,
        Some(OptionalImageUsername::ImageUsername(_))
    );
    let password = matches!(
        update.optional_image_password,
        Some(OptionalImagePassword::ImagePassword(_))
    );
    Validation::default()
        .field(instances, "instances")
        .field(annotation, "annotation")
        .field(routes, "routes")
        .field(!tags.is_empty(), "metric_tags")
        .nested(tags)
        .field(username && !password, "image_password")
        .field(!username && password, "image_username")
}

/// Each tag holds exactly one of a static value and a known dynamic one.
fn metric_tags<'a>(tags: impl Iterator<Item = &'a MetricTagValue>) -> Validation {
    tags.fold(Validation::default(), |validation, tag| {
        let dynamic = matches!(
            DynamicValue::try_from(tag.dynamic),
            Ok(DynamicValue::Index | DynamicValue::InstanceGuid)
        );
        let bad = tag.r#static.is_empty() != dynamic;
        validation.field(bad, "static").field(bad, "dynamic")
    })
}

/// `actual_lrps/retire`: a key with a process guid, an index ≥ 0 and a domain.
pub fn retire(request: &RetireActualLrpRequest) -> Result<(), Error> {
    match &request.actual_lrp_key {
        None => Validation::default().field(true, "actual_lrp_key").finish(),
        Some(key) => Validation::default()
            .field(key.process_guid.is_empty(), "process_guid")
            .field(key.index < 0, "index")
            .field(key.domain.is_empty(), "domain")
            .finish(),
    }
}

/// `actual_lrps/list_by_process_guids`: at least one guid.
pub fn by_process_guids(request: &ActualLrPsByProcessGuidsRequest) -> Result<(), Error> {
    if request.process_guids.is_empty() {
        return Err(Error::Invalid("process_guids must not be empty".into()));
    }
    Ok(())
}

/// `tasks/desire.r2`: the task guid (`^[a-zA-Z0-9_-]+$`), a domain and a
/// valid definition.
pub fn desire_task(request: &DesireTaskRequest) -> Result<(), Error> {
    let guid_ok = !request.task_guid.is_empty()
        && request
            .task_guid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let mut validation = Validation::default()
        .field(!guid_ok, "task_guid")
        .field(request.domain.is_empty(), "domain");
    validation = match &request.task_definition {
        None => validation.field(true, "task_definition"),
        Some(definition) => validation.nested(task_definition(definition)),
    };
    validation.finish()
}

// `legacy_download_user` is deprecated in the BBS but still validated.
#[allow(deprecated)]
fn task_definition(definition: &TaskDefinition) -> Validation {
    let action = match &definition.action {
        None => Validation::default().item(true, "invalid action type"),
        Some(action) => {
            let inner = self::action(action);
            Validation::default()
                .field(!inner.is_empty(), "action")
                .nested(inner)
        }
    };
    let log_rate = definition
        .log_rate_limit
        .as_ref()
        .is_some_and(|limit| limit.bytes_per_second < -1);
    let username = !definition.image_username.is_empty();
    let password = !definition.image_password.is_empty();
    Validation::default()
        .field(!has_scheme(&definition.root_fs), "rootfs")
        .nested(action)
        .field(definition.memory_mb < 0, "memory_mb")
        .field(definition.disk_mb < 0, "disk_mb")
        .field(log_rate, "log_rate_limit")
        .field(definition.max_pids < 0, "max_pids")
        .field(
            definition.annotation.len() > MAX_ANNOTATION_BYTES,
            "annotation",
        )
        .field(!username && password, "image_username")
        .field(username && !password, "image_password")
        .nested(cached_dependencies(&definition.cached_dependencies))
}

/// Whether `url` starts with a URL scheme (`preloaded:`, `docker://`), as
/// Go's `url.Parse` finds one: a letter, then letters, digits, `+`, `-`, `.`,
/// up to a `:`.
fn has_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// An action of one kind (the first set, in field order, as the BBS
/// unwraps it) with what that kind requires.
fn action(action: &Action) -> Validation {
    let v = Validation::default();
    if let Some(download) = &action.download_action {
        v.field(download.from.is_empty(), "from")
            .field(download.to.is_empty(), "to")
            .field(download.user.is_empty(), "user")
            .nested(checksum(
                &download.checksum_algorithm,
                &download.checksum_value,
            ))
    } else if let Some(upload) = &action.upload_action {
        v.field(upload.to.is_empty(), "to")
            .field(upload.from.is_empty(), "from")
            .field(upload.user.is_empty(), "user")
    } else if let Some(run) = &action.run_action {
        v.field(run.path.is_empty(), "path")
            .field(run.user.is_empty(), "user")
    } else if let Some(timeout) = &action.timeout_action {
        wrapped(timeout.action.as_deref()).field(timeout.timeout_ms <= 0, "timeout_ms")
    } else if let Some(progress) = &action.emit_progress_action {
        wrapped(progress.action.as_deref())
    } else if let Some(attempt) = &action.try_action {
        wrapped(attempt.action.as_deref())
    } else if let Some(parallel) = &action.parallel_action {
        several(&parallel.actions)
    } else if let Some(serial) = &action.serial_action {
        several(&serial.actions)
    } else if let Some(codependent) = &action.codependent_action {
        several(&codependent.actions)
    } else {
        v.field(true, "inner-action")
    }
}

fn wrapped(inner: Option<&Action>) -> Validation {
    match inner {
        None => Validation::default().field(true, "action"),
        Some(inner) => action(inner),
    }
}

fn several(actions: &[Action]) -> Validation {
    actions.iter().fold(
        Validation::default().field(actions.is_empty(), "actions"),
        |validation, inner| validation.nested(action(inner)),
    )
}

/// A checksum is an algorithm (md5, sha1, sha256) and a value, or neither.
fn checksum(algorithm: &str, value: &str) -> Validation {
    let known = ["md5", "sha1", "sha256"].contains(&algorithm.to_ascii_lowercase().as_str());
    Validation::default()
        .field(
            !value.is_empty() && algorithm.is_empty(),
            "checksum algorithm",
        )
        .field(value.is_empty() && !algorithm.is_empty(), "checksum value")
        .field(
            !value.is_empty() && !algorithm.is_empty() && !known,
            "invalid algorithm",
        )
}

fn cached_dependencies(dependencies: &[CachedDependency]) -> Validation {
    dependencies
        .iter()
        .fold(Validation::default(), |validation, dependency| {
            let inner = Validation::default()
                .field(dependency.from.is_empty(), "from")
                .field(dependency.to.is_empty(), "to")
                .nested(checksum(
                    &dependency.checksum_algorithm,
                    &dependency.checksum_value,
                ));
            validation
                .field(!inner.is_empty(), "cached_dependency")
                .nested(inner)
        })
}

#[cfg(test)]
mod tests;
