//! The BBS's format versions, and the down-conversion its deprecated `.r2`
//! reads apply.
//!
//! A BBS keeps DesiredLRPs and tasks in format V3, where the files a
//! container needs can be named as image layers. Its `.r2` reads
//! (`/v1/desired_lrps/get_by_process_guid.r2`, `/v1/desired_lrps/list.r2`,
//! `/v1/tasks/list.r2`, `/v1/tasks/get_by_task_guid.r2`) answer in format V2,
//! which has no image layers, so each layer becomes what V2 has instead
//! (cloudfoundry/bbs `models/image_layer.go`, `desired_lrp.go`, `task.go`):
//!
//! - a **shared** layer becomes a cached dependency, placed before the
//!   existing ones: `name`; `from` = the url; `to` = the destination path;
//!   `checksum_value` = the digest value; `checksum_algorithm` = the digest
//!   algorithm's name in lower case (`sha256`), empty when unset;
//!   `cache_key` = `<algorithm>:<digest>`, or the url when the layer has no
//!   digest;
//! - the **exclusive** layers become download actions, run in parallel before
//!   the existing setup (an LRP) or action (a task): `Serial[Parallel[downloads],
//!   existing]`, or `Parallel[downloads]` alone when there was none. Each
//!   download: `artifact` = the name, `from` = the url, `to` = the destination
//!   path, `cache_key` = `<algorithm>:<digest>`, `user` = the
//!   `legacy_download_user`, `checksum_algorithm` and `checksum_value` from
//!   the digest;
//!
//! and the image layers are dropped. Nothing else changes.
//!
//! Every read of a DesiredLRP, `.r2` or `.r3`, also goes through
//! [`populate_metrics_guid`].

use crate::image_layer::{DigestAlgorithm, Type as LayerType};
use crate::{
    Action, CachedDependency, DesiredLrp, DownloadAction, ImageLayer, MetricTagValue,
    ParallelAction, SerialAction, Task, TaskDefinition,
};

/// The metric tag the BBS keeps equal to the deprecated `metrics_guid`.
pub const SOURCE_ID_TAG: &str = "source_id";

/// `lrp` as a `.r2` read answers it: image layers turned into cached
/// dependencies and setup downloads (the module's rules).
// `legacy_download_user` is deprecated in the BBS, and format V2 is where it
// is still used: it is the user of the downloads.
#[allow(deprecated)]
pub fn desired_lrp_v2(mut lrp: DesiredLrp) -> DesiredLrp {
    let layers = std::mem::take(&mut lrp.image_layers);
    let existing = std::mem::take(&mut lrp.cached_dependencies);
    lrp.cached_dependencies = cached_dependencies(&layers, existing);
    lrp.setup = with_downloads(&layers, &lrp.legacy_download_user, lrp.setup.take());
    lrp
}

/// `definition` as a `.r2` read answers it: image layers turned into cached
/// dependencies and downloads before the action (the module's rules).
#[allow(deprecated)]
pub fn task_definition_v2(mut definition: TaskDefinition) -> TaskDefinition {
    let layers = std::mem::take(&mut definition.image_layers);
    let existing = std::mem::take(&mut definition.cached_dependencies);
    definition.cached_dependencies = cached_dependencies(&layers, existing);
    definition.action = with_downloads(
        &layers,
        &definition.legacy_download_user,
        definition.action.take(),
    );
    definition
}

/// `task` as a `.r2` read answers it: its definition through
/// [`task_definition_v2`], everything else as is.
pub fn task_v2(mut task: Task) -> Task {
    task.task_definition = task.task_definition.map(task_definition_v2);
    task
}

/// What the BBS does to every DesiredLRP it reads out: a `source_id` metric
/// tag and the deprecated `metrics_guid` fill each other in — the guid from
/// the tag's static value when the guid is empty, a static `source_id` tag
/// from the guid when there is no such tag.
#[allow(deprecated)]
pub fn populate_metrics_guid(mut lrp: DesiredLrp) -> DesiredLrp {
    match lrp.metric_tags.get(SOURCE_ID_TAG) {
        Some(source) if lrp.metrics_guid.is_empty() => {
            lrp.metrics_guid = source.r#static.clone();
        }
        None if !lrp.metrics_guid.is_empty() => {
            let tag = MetricTagValue {
                r#static: lrp.metrics_guid.clone(),
                ..MetricTagValue::default()
            };
            lrp.metric_tags.insert(SOURCE_ID_TAG.to_owned(), tag);
        }
        _ => {}
    }
    lrp
}

/// The shared layers as cached dependencies, followed by `existing`.
fn cached_dependencies(
    layers: &[ImageLayer],
    existing: Vec<CachedDependency>,
) -> Vec<CachedDependency> {
    layers
        .iter()
        .filter(|layer| layer.layer_type == LayerType::Shared as i32)
        .map(|layer| {
            let algorithm = if layer.digest_algorithm == DigestAlgorithm::Invalid as i32 {
                String::new()
            } else {
                algorithm_name(layer.digest_algorithm)
            };
            let cache_key = if layer.digest_value.is_empty() {
                layer.url.clone()
            } else {
                format!("{algorithm}:{}", layer.digest_value)
            };
            CachedDependency {
                name: layer.name.clone(),
                from: layer.url.clone(),
                to: layer.destination_path.clone(),
                cache_key,
                log_source: String::new(),
                checksum_algorithm: algorithm,
                checksum_value: layer.digest_value.clone(),
            }
        })
        .chain(existing)
        .collect()
}

/// `existing` preceded by the exclusive layers' downloads, in parallel.
fn with_downloads(layers: &[ImageLayer], user: &str, existing: Option<Action>) -> Option<Action> {
    let downloads: Vec<Action> = layers
        .iter()
        .filter(|layer| layer.layer_type == LayerType::Exclusive as i32)
        .map(|layer| {
            let algorithm = algorithm_name(layer.digest_algorithm);
            Action {
                download_action: Some(DownloadAction {
                    artifact: layer.name.clone(),
                    from: layer.url.clone(),
                    to: layer.destination_path.clone(),
                    cache_key: format!("{algorithm}:{}", layer.digest_value),
                    log_source: String::new(),
                    user: user.to_owned(),
                    checksum_algorithm: algorithm,
                    checksum_value: layer.digest_value.clone(),
                }),
                ..Action::default()
            }
        })
        .collect();
    if downloads.is_empty() {
        return existing;
    }
    let parallel = Action {
        parallel_action: Some(ParallelAction {
            actions: downloads,
            log_source: String::new(),
        }),
        ..Action::default()
    };
    Some(match existing {
        None => parallel,
        Some(existing) => Action {
            serial_action: Some(SerialAction {
                actions: vec![parallel, only_first_kind(existing)],
                log_source: String::new(),
            }),
            ..Action::default()
        },
    })
}

/// The BBS names a digest algorithm by its protobuf value name in lower
/// case (`sha256`); a value it does not know, by its number.
fn algorithm_name(value: i32) -> String {
    DigestAlgorithm::try_from(value).map_or_else(
        |_| value.to_string(),
        |algorithm| algorithm.as_str_name().to_lowercase(),
    )
}

/// `action` with only its first set kind kept, in field order: the BBS
/// unwraps the existing action to one kind and wraps that again. Only an
/// action of several kinds changes (the BBS validates just the first kind,
/// so it can store one); an action of no kind is refused when desired.
fn only_first_kind(action: Action) -> Action {
    let none = Action::default();
    if action.download_action.is_some() {
        Action {
            download_action: action.download_action,
            ..none
        }
    } else if action.upload_action.is_some() {
        Action {
            upload_action: action.upload_action,
            ..none
        }
    } else if action.run_action.is_some() {
        Action {
            run_action: action.run_action,
            ..none
        }
    } else if action.timeout_action.is_some() {
        Action {
            timeout_action: action.timeout_action,
            ..none
        }
    } else if action.emit_progress_action.is_some() {
        Action {
            emit_progress_action: action.emit_progress_action,
            ..none
        }
    } else if action.try_action.is_some() {
        Action {
            try_action: action.try_action,
            ..none
        }
    } else if action.parallel_action.is_some() {
        Action {
            parallel_action: action.parallel_action,
            ..none
        }
    } else if action.serial_action.is_some() {
        Action {
            serial_action: action.serial_action,
            ..none
        }
    } else {
        Action {
            codependent_action: action.codependent_action,
            ..none
        }
    }
}

#[cfg(test)]
mod tests;
