//! Each rule of the V2 down-conversion on examples: Cloud Controller's
//! declarative asset downloads (a shared lifecycle layer without digest, an
//! exclusive droplet layer with a sha256 digest), existing setups and cached
//! dependencies, tasks.

#![allow(deprecated)]

use std::collections::BTreeMap;

use super::*;
use crate::image_layer::MediaType;
use crate::metric_tag_value::DynamicValue;
use crate::{RunAction, TimeoutAction};

const LIFECYCLE_URL: &str = "https://file-server.service.cf.internal:8447/v1/static/buildpack_app_lifecycle/buildpack_app_lifecycle.tgz";
const DROPLET_URL: &str =
    "https://cc-uploader.service.cf.internal:9091/v1/static/droplets/app-guid/droplet.tgz";
const DROPLET_SHA: &str = "8f2b0d6bde8f01c9d5f7c9e1a0d3c4b5a697887766554433221100ffeeddccbb";

fn lifecycle_layer() -> ImageLayer {
    ImageLayer {
        name: "buildpack-cflinuxfs4-lifecycle".into(),
        url: LIFECYCLE_URL.into(),
        destination_path: "/tmp/lifecycle".into(),
        layer_type: LayerType::Shared as i32,
        media_type: MediaType::Tgz as i32,
        ..ImageLayer::default()
    }
}

fn droplet_layer() -> ImageLayer {
    ImageLayer {
        name: "droplet".into(),
        url: DROPLET_URL.into(),
        destination_path: "/home/vcap".into(),
        layer_type: LayerType::Exclusive as i32,
        media_type: MediaType::Tgz as i32,
        digest_algorithm: DigestAlgorithm::Sha256 as i32,
        digest_value: DROPLET_SHA.into(),
    }
}

fn lifecycle_dependency() -> CachedDependency {
    CachedDependency {
        name: "buildpack-cflinuxfs4-lifecycle".into(),
        from: LIFECYCLE_URL.into(),
        to: "/tmp/lifecycle".into(),
        // No digest: the url is the cache key.
        cache_key: LIFECYCLE_URL.into(),
        ..CachedDependency::default()
    }
}

fn droplet_download(user: &str) -> Action {
    Action {
        download_action: Some(DownloadAction {
            artifact: "droplet".into(),
            from: DROPLET_URL.into(),
            to: "/home/vcap".into(),
            cache_key: format!("sha256:{DROPLET_SHA}"),
            log_source: String::new(),
            user: user.into(),
            checksum_algorithm: "sha256".into(),
            checksum_value: DROPLET_SHA.into(),
        }),
        ..Action::default()
    }
}

fn parallel(actions: Vec<Action>) -> Action {
    Action {
        parallel_action: Some(ParallelAction {
            actions,
            log_source: String::new(),
        }),
        ..Action::default()
    }
}

fn serial(actions: Vec<Action>) -> Action {
    Action {
        serial_action: Some(SerialAction {
            actions,
            log_source: String::new(),
        }),
        ..Action::default()
    }
}

fn run(path: &str) -> Action {
    Action {
        run_action: Some(RunAction {
            path: path.into(),
            user: "vcap".into(),
            ..RunAction::default()
        }),
        ..Action::default()
    }
}

fn lrp() -> DesiredLrp {
    DesiredLrp {
        process_guid: "app-guid-version".into(),
        domain: "cf-apps".into(),
        root_fs: "preloaded:cflinuxfs4".into(),
        instances: 2,
        action: Some(run("/tmp/lifecycle/launcher")),
        legacy_download_user: "vcap".into(),
        image_layers: vec![lifecycle_layer(), droplet_layer()],
        ..DesiredLrp::default()
    }
}

#[test]
fn declarative_downloads_become_a_cached_dependency_and_a_setup() {
    let v2 = desired_lrp_v2(lrp());
    assert!(v2.image_layers.is_empty());
    assert_eq!(v2.cached_dependencies, vec![lifecycle_dependency()]);
    // No setup before: the downloads alone, in parallel.
    assert_eq!(v2.setup, Some(parallel(vec![droplet_download("vcap")])));
    // Nothing else changes.
    let untouched = DesiredLrp {
        image_layers: Vec::new(),
        cached_dependencies: v2.cached_dependencies.clone(),
        setup: v2.setup.clone(),
        ..lrp()
    };
    assert_eq!(v2, untouched);
}

#[test]
fn layers_go_before_the_existing_setup_and_cached_dependencies() {
    let existing_dependency = CachedDependency {
        from: "lifecycle-from".into(),
        to: "lifecycle-to".into(),
        cache_key: "lifecycle-cache-key".into(),
        ..CachedDependency::default()
    };
    let existing_setup = serial(vec![run("/bin/prepare")]);
    let v2 = desired_lrp_v2(DesiredLrp {
        cached_dependencies: vec![existing_dependency.clone()],
        setup: Some(existing_setup.clone()),
        ..lrp()
    });
    assert_eq!(
        v2.cached_dependencies,
        vec![lifecycle_dependency(), existing_dependency]
    );
    assert_eq!(
        v2.setup,
        Some(serial(vec![
            parallel(vec![droplet_download("vcap")]),
            existing_setup
        ]))
    );
}

#[test]
fn a_shared_layer_with_a_digest_is_keyed_by_it() {
    let layer = ImageLayer {
        digest_algorithm: DigestAlgorithm::Sha512 as i32,
        digest_value: "abc123".into(),
        ..lifecycle_layer()
    };
    let v2 = desired_lrp_v2(DesiredLrp {
        image_layers: vec![layer],
        ..lrp()
    });
    assert_eq!(
        v2.cached_dependencies,
        vec![CachedDependency {
            cache_key: "sha512:abc123".into(),
            checksum_algorithm: "sha512".into(),
            checksum_value: "abc123".into(),
            ..lifecycle_dependency()
        }]
    );
    // Shared layers only: no downloads, the setup stays absent.
    assert_eq!(v2.setup, None);
}

#[test]
fn several_exclusive_layers_download_in_parallel_in_order() {
    let second = ImageLayer {
        name: "app-assets".into(),
        destination_path: "/home/vcap/assets".into(),
        ..droplet_layer()
    };
    let v2 = desired_lrp_v2(DesiredLrp {
        image_layers: vec![droplet_layer(), second],
        legacy_download_user: "root".into(),
        ..lrp()
    });
    let mut assets = droplet_download("root");
    if let Some(download) = &mut assets.download_action {
        download.artifact = "app-assets".into();
        download.to = "/home/vcap/assets".into();
    }
    assert_eq!(
        v2.setup,
        Some(parallel(vec![droplet_download("root"), assets]))
    );
    assert!(v2.cached_dependencies.is_empty());
}

#[test]
fn without_layers_nothing_changes() {
    let plain = DesiredLrp {
        image_layers: Vec::new(),
        setup: Some(run("/bin/prepare")),
        cached_dependencies: vec![lifecycle_dependency()],
        ..lrp()
    };
    assert_eq!(desired_lrp_v2(plain.clone()), plain);
    let task = Task {
        task_guid: "task-guid".into(),
        task_definition: Some(TaskDefinition {
            action: Some(run("/bin/true")),
            ..TaskDefinition::default()
        }),
        ..Task::default()
    };
    assert_eq!(task_v2(task.clone()), task);
    let bare = Task::default();
    assert_eq!(task_v2(bare.clone()), bare);
}

#[test]
fn a_task_gets_its_downloads_before_its_action() {
    let action = Action {
        timeout_action: Some(Box::new(TimeoutAction {
            action: Some(Box::new(run("/tmp/lifecycle/launcher"))),
            timeout_ms: 900_000,
            ..TimeoutAction::default()
        })),
        ..Action::default()
    };
    let task = Task {
        task_guid: "task-guid".into(),
        domain: "cf-tasks".into(),
        state: crate::task::State::Running as i32,
        task_definition: Some(TaskDefinition {
            root_fs: "preloaded:cflinuxfs4".into(),
            action: Some(action.clone()),
            legacy_download_user: "vcap".into(),
            image_layers: vec![lifecycle_layer(), droplet_layer()],
            ..TaskDefinition::default()
        }),
        ..Task::default()
    };
    let v2 = task_v2(task.clone());
    let definition = v2.task_definition.clone().unwrap_or_default();
    assert!(definition.image_layers.is_empty());
    assert_eq!(definition.cached_dependencies, vec![lifecycle_dependency()]);
    assert_eq!(
        definition.action,
        Some(serial(vec![
            parallel(vec![droplet_download("vcap")]),
            action
        ]))
    );
    assert_eq!(
        (v2.task_guid, v2.domain, v2.state),
        (task.task_guid, task.domain, task.state)
    );
}

#[test]
fn an_existing_action_keeps_only_its_first_kind() {
    let two_kinds = Action {
        run_action: run("/bin/a").run_action,
        serial_action: serial(vec![run("/bin/b")]).serial_action,
        ..Action::default()
    };
    let v2 = task_definition_v2(TaskDefinition {
        action: Some(two_kinds),
        image_layers: vec![droplet_layer()],
        legacy_download_user: "vcap".into(),
        ..TaskDefinition::default()
    });
    assert_eq!(
        v2.action,
        Some(serial(vec![
            parallel(vec![droplet_download("vcap")]),
            run("/bin/a")
        ]))
    );
}

#[test]
fn digest_algorithms_are_named_in_lower_case_or_by_number() {
    assert_eq!(algorithm_name(DigestAlgorithm::Sha256 as i32), "sha256");
    assert_eq!(algorithm_name(DigestAlgorithm::Sha512 as i32), "sha512");
    assert_eq!(algorithm_name(0), "digestalgorithminvalid");
    assert_eq!(algorithm_name(7), "7");
}

fn static_tag(value: &str) -> MetricTagValue {
    MetricTagValue {
        r#static: value.into(),
        ..MetricTagValue::default()
    }
}

#[test]
fn metrics_guid_and_source_id_fill_each_other_in() {
    let from_tag = populate_metrics_guid(DesiredLrp {
        metric_tags: BTreeMap::from([(SOURCE_ID_TAG.to_owned(), static_tag("app-guid"))]),
        ..DesiredLrp::default()
    });
    assert_eq!(from_tag.metrics_guid, "app-guid");

    let from_guid = populate_metrics_guid(DesiredLrp {
        metrics_guid: "app-guid".into(),
        metric_tags: BTreeMap::from([(
            "instance_id".to_owned(),
            MetricTagValue {
                dynamic: DynamicValue::Index as i32,
                ..MetricTagValue::default()
            },
        )]),
        ..DesiredLrp::default()
    });
    assert_eq!(
        from_guid.metric_tags.get(SOURCE_ID_TAG),
        Some(&static_tag("app-guid"))
    );
    assert_eq!(from_guid.metric_tags.len(), 2);

    // Both set (as Cloud Controller desires them), or neither: unchanged.
    let both = DesiredLrp {
        metrics_guid: "app-guid".into(),
        metric_tags: BTreeMap::from([(SOURCE_ID_TAG.to_owned(), static_tag("other"))]),
        ..DesiredLrp::default()
    };
    assert_eq!(populate_metrics_guid(both.clone()), both);
    assert_eq!(
        populate_metrics_guid(DesiredLrp::default()),
        DesiredLrp::default()
    );
}
