//! The fake BBS's routes through its router (`oneshot`): what Cloud
//! Controller reads — the `.r2` reads in format V2, ActualLRPs by process
//! guids — every field kept, and the BBS's errors.

#![allow(clippy::unwrap_used, deprecated)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bbs_models::version::{desired_lrp_v2, task_v2};
use http_body_util::BodyExt;
use prost::Message;
use tower::ServiceExt;

use super::proto::{self, error::Type};
use super::server::{Shared, router};

fn fake() -> Router {
    router(Arc::new(Shared::new()))
}

async fn post_bytes(router: &Router, path: &str, body: Vec<u8>) -> bytes::Bytes {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.into_body().collect().await.unwrap().to_bytes()
}

async fn post<Resp: Message + Default>(router: &Router, path: &str, body: &impl Message) -> Resp {
    Resp::decode(post_bytes(router, path, body.encode_to_vec()).await).unwrap()
}

fn error(kind: Type, message: &str) -> Option<proto::Error> {
    Some(proto::Error {
        r#type: kind as i32,
        message: message.into(),
    })
}

fn not_found() -> Option<proto::Error> {
    error(
        Type::ResourceNotFound,
        "the requested resource could not be found",
    )
}

fn static_tag(value: &str) -> proto::MetricTagValue {
    proto::MetricTagValue {
        r#static: value.into(),
        ..proto::MetricTagValue::default()
    }
}

fn dynamic_tag(value: proto::metric_tag_value::DynamicValue) -> proto::MetricTagValue {
    proto::MetricTagValue {
        dynamic: value as i32,
        ..proto::MetricTagValue::default()
    }
}

fn run(path: &str, args: &[&str]) -> proto::Action {
    proto::Action {
        run_action: Some(proto::RunAction {
            path: path.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            user: "vcap".into(),
            log_source: "APP/PROC/WEB".into(),
            ..proto::RunAction::default()
        }),
        ..proto::Action::default()
    }
}

fn lifecycle_layer() -> proto::ImageLayer {
    proto::ImageLayer {
        name: "buildpack-cflinuxfs4-lifecycle".into(),
        url: "https://file-server.service.cf.internal:8447/v1/static/buildpack_app_lifecycle/buildpack_app_lifecycle.tgz".into(),
        destination_path: "/tmp/lifecycle".into(),
        layer_type: proto::image_layer::Type::Shared as i32,
        media_type: proto::image_layer::MediaType::Tgz as i32,
        ..proto::ImageLayer::default()
    }
}

fn droplet_layer() -> proto::ImageLayer {
    proto::ImageLayer {
        name: "droplet".into(),
        url: "https://cc-uploader.service.cf.internal:9091/v1/static/droplets/app-guid/droplet.tgz"
            .into(),
        destination_path: "/home/vcap".into(),
        layer_type: proto::image_layer::Type::Exclusive as i32,
        media_type: proto::image_layer::MediaType::Tgz as i32,
        digest_algorithm: proto::image_layer::DigestAlgorithm::Sha256 as i32,
        digest_value: "droplet-sha256".into(),
    }
}

/// A DesiredLRP the way Cloud Controller's AppRecipeBuilder fills it, with
/// declarative asset downloads (image layers) on.
fn cc_lrp(process_guid: &str, instances: i32) -> proto::DesiredLrp {
    use proto::metric_tag_value::DynamicValue;
    proto::DesiredLrp {
        process_guid: process_guid.into(),
        domain: "cf-apps".into(),
        root_fs: "preloaded:cflinuxfs4".into(),
        instances,
        environment_variables: vec![proto::EnvironmentVariable {
            name: "LANG".into(),
            value: "en_US.UTF-8".into(),
        }],
        action: Some(proto::Action {
            codependent_action: Some(proto::CodependentAction {
                actions: vec![run("/tmp/lifecycle/launcher", &["app", "echo hi", "{}"])],
                log_source: String::new(),
            }),
            ..proto::Action::default()
        }),
        start_timeout_ms: 12_000,
        disk_mb: 256,
        memory_mb: 128,
        cpu_weight: 1,
        ports: vec![8080],
        routes: Some(proto::ProtoRoutes {
            routes: BTreeMap::from([(
                "cf-router".to_owned(),
                br#"[{"hostnames":["dora.example.com"],"port":8080}]"#.to_vec(),
            )]),
        }),
        log_source: "CELL".into(),
        log_guid: "app-guid".into(),
        metrics_guid: "app-guid".into(),
        annotation: "2.0".into(),
        egress_rules: vec![proto::SecurityGroupRule {
            protocol: "udp".into(),
            destinations: vec!["0.0.0.0/0".into()],
            ports: vec![53],
            annotations: vec!["security_group_id:guid1".into()],
            ..proto::SecurityGroupRule::default()
        }],
        legacy_download_user: "vcap".into(),
        trusted_system_certificates_path: "/etc/cf-system-certificates".into(),
        volume_mounts: vec![proto::VolumeMount {
            driver: "nfsv3driver".into(),
            container_dir: "/var/vcap/data/nfs".into(),
            mode: "rw".into(),
            shared: Some(proto::SharedDevice {
                volume_id: "volume-guid".into(),
                mount_config: r#"{"source":"nfs://server/export"}"#.into(),
            }),
            ..proto::VolumeMount::default()
        }],
        network: Some(proto::Network {
            properties: BTreeMap::from([
                ("app_id".to_owned(), "app-guid".to_owned()),
                ("policy_group_id".to_owned(), "app-guid".to_owned()),
            ]),
        }),
        placement_tags: vec!["placement-tag".into()],
        max_pids: 100,
        certificate_properties: Some(proto::CertificateProperties {
            organizational_unit: vec![
                "organization:org-guid".into(),
                "space:space-guid".into(),
                "app:app-guid".into(),
            ],
        }),
        check_definition: Some(proto::CheckDefinition {
            checks: vec![proto::Check {
                tcp_check: Some(proto::TcpCheck {
                    port: 8080,
                    ..proto::TcpCheck::default()
                }),
                http_check: None,
            }],
            log_source: "HEALTH".into(),
            readiness_checks: Vec::new(),
        }),
        image_layers: vec![lifecycle_layer(), droplet_layer()],
        metric_tags: BTreeMap::from([
            ("source_id".to_owned(), static_tag("app-guid")),
            ("instance_id".to_owned(), dynamic_tag(DynamicValue::Index)),
            (
                "process_instance_id".to_owned(),
                dynamic_tag(DynamicValue::InstanceGuid),
            ),
        ]),
        sidecars: vec![proto::Sidecar {
            action: Some(run("/bin/sidecar", &[])),
            disk_mb: 0,
            memory_mb: 16,
        }],
        log_rate_limit: Some(proto::LogRateLimit {
            bytes_per_second: 1024,
        }),
        volume_mounted_files: vec![proto::File {
            path: "vcap_services".into(),
            content: "{}".into(),
        }],
        ..proto::DesiredLrp::default()
    }
}

async fn desire(router: &Router, lrp: proto::DesiredLrp) {
    let reply: proto::DesiredLrpLifecycleResponse = post(
        router,
        "/v1/desired_lrp/desire.r2",
        &proto::DesireLrpRequest {
            desired_lrp: Some(lrp),
        },
    )
    .await;
    assert_eq!(reply.error, None);
}

async fn get_lrp(router: &Router, path: &str, process_guid: &str) -> proto::DesiredLrpResponse {
    let request = proto::DesiredLrpByProcessGuidRequest {
        process_guid: process_guid.into(),
    };
    post(router, path, &request).await
}

const LRP_R2: &str = "/v1/desired_lrps/get_by_process_guid.r2";
const LRP_R3: &str = "/v1/desired_lrps/get_by_process_guid.r3";

#[tokio::test]
async fn every_field_of_a_desired_lrp_is_kept_and_returned() {
    let router = fake();
    let mut sent = cc_lrp("process-guid-v1", 1);
    // The one field the BBS does not keep.
    sent.deprecated_start_timeout_s = 12;
    desire(&router, sent.clone()).await;

    let read = get_lrp(&router, LRP_R3, "process-guid-v1").await;
    assert_eq!(read.error, None);
    let read = read.desired_lrp.unwrap();
    let expected = proto::DesiredLrp {
        modification_tag: read.modification_tag.clone(),
        deprecated_start_timeout_s: 0,
        ..sent
    };
    assert!(read.modification_tag.is_some());
    assert_eq!(read, expected);
}

#[tokio::test]
async fn the_r2_read_answers_in_format_v2() {
    let router = fake();
    desire(&router, cc_lrp("process-guid-v1", 1)).await;
    let v3 = get_lrp(&router, LRP_R3, "process-guid-v1")
        .await
        .desired_lrp
        .unwrap();
    let v2 = get_lrp(&router, LRP_R2, "process-guid-v1").await;
    assert_eq!(v2.error, None);
    let v2 = v2.desired_lrp.unwrap();

    assert!(v2.image_layers.is_empty());
    // The shared lifecycle layer is a cached dependency keyed by its url.
    let lifecycle = lifecycle_layer();
    assert_eq!(
        v2.cached_dependencies,
        vec![proto::CachedDependency {
            name: lifecycle.name,
            from: lifecycle.url.clone(),
            to: lifecycle.destination_path,
            cache_key: lifecycle.url,
            ..proto::CachedDependency::default()
        }]
    );
    // The exclusive droplet layer is a download in the setup, as vcap.
    let download = v2
        .setup
        .as_ref()
        .and_then(|s| s.parallel_action.as_ref())
        .map(|p| p.actions.clone())
        .unwrap_or_default();
    let droplet = droplet_layer();
    assert_eq!(
        download,
        vec![proto::Action {
            download_action: Some(proto::DownloadAction {
                artifact: droplet.name,
                from: droplet.url,
                to: droplet.destination_path,
                cache_key: "sha256:droplet-sha256".into(),
                log_source: String::new(),
                user: "vcap".into(),
                checksum_algorithm: "sha256".into(),
                checksum_value: "droplet-sha256".into(),
            }),
            ..proto::Action::default()
        }]
    );
    // Everything else is the stored LRP.
    let rest = proto::DesiredLrp {
        image_layers: Vec::new(),
        cached_dependencies: v2.cached_dependencies.clone(),
        setup: v2.setup.clone(),
        ..v3.clone()
    };
    assert_eq!(v2, rest);
    assert_eq!(v2, desired_lrp_v2(v3));
}

#[tokio::test]
async fn desired_lrp_reads_fill_in_the_metrics_guid_and_refuse_as_the_bbs() {
    let router = fake();
    let mut lrp = cc_lrp("process-guid-v1", 0);
    lrp.metrics_guid.clear();
    desire(&router, lrp).await;
    for path in [LRP_R2, LRP_R3] {
        let read = get_lrp(&router, path, "process-guid-v1").await;
        assert_eq!(read.desired_lrp.unwrap().metrics_guid, "app-guid", "{path}");

        let missing = get_lrp(&router, path, "nope").await;
        assert_eq!((missing.error, missing.desired_lrp), (not_found(), None));

        let unnamed = get_lrp(&router, path, "").await;
        assert_eq!(
            unnamed.error,
            error(Type::InvalidRequest, "Invalid field: process_guid")
        );
    }
    // The stored LRP keeps what was desired.
    let stored: proto::DesiredLrPsRequest = proto::DesiredLrPsRequest::default();
    let infos: proto::DesiredLrpSchedulingInfosResponse =
        post(&router, "/v1/desired_lrp_scheduling_infos/list", &stored).await;
    assert_eq!(infos.desired_lrp_scheduling_infos.len(), 1);
}

#[tokio::test]
async fn scheduling_infos_carry_volume_placement_and_routes() {
    let router = fake();
    desire(&router, cc_lrp("with-mounts", 0)).await;
    let mut bare = cc_lrp("bare", 0);
    bare.volume_mounts.clear();
    bare.routes = None;
    desire(&router, bare).await;

    let infos: proto::DesiredLrpSchedulingInfosResponse = post(
        &router,
        "/v1/desired_lrp_scheduling_infos/list",
        &proto::DesiredLrPsRequest {
            domain: "cf-apps".into(),
            ..proto::DesiredLrPsRequest::default()
        },
    )
    .await;
    let by_guid: BTreeMap<_, _> = infos
        .desired_lrp_scheduling_infos
        .into_iter()
        .map(|i| (i.desired_lrp_key.clone().unwrap().process_guid, i))
        .collect();
    let placement = |guid: &str| by_guid[guid].volume_placement.clone().unwrap();
    assert_eq!(placement("with-mounts").driver_names, vec!["nfsv3driver"]);
    assert!(placement("bare").driver_names.is_empty());
    // Routes are always there (Cloud Controller reads `routes.routes`).
    assert_eq!(by_guid["bare"].routes, Some(proto::ProtoRoutes::default()));
    assert_eq!(by_guid["with-mounts"].placement_tags, vec!["placement-tag"]);
}

#[tokio::test]
async fn actual_lrps_are_listed_by_process_guids() {
    let router = fake();
    desire(&router, cc_lrp("web-v1", 2)).await;
    desire(&router, cc_lrp("worker-v1", 1)).await;
    desire(&router, cc_lrp("other-v1", 1)).await;

    let listed: proto::ActualLrPsByProcessGuidsResponse = post(
        &router,
        "/v1/actual_lrps/list_by_process_guids",
        &proto::ActualLrPsByProcessGuidsRequest {
            process_guids: vec!["web-v1".into(), "worker-v1".into(), "unknown".into()],
        },
    )
    .await;
    assert_eq!(listed.error, None);
    let keys: Vec<(String, i32)> = listed
        .actual_lrps
        .iter()
        .map(|a| {
            let key = a.actual_lrp_key.clone().unwrap();
            (key.process_guid, key.index)
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("web-v1".to_owned(), 0),
            ("web-v1".to_owned(), 1),
            ("worker-v1".to_owned(), 0)
        ]
    );
    let first = &listed.actual_lrps[0];
    let instance_guid = first.actual_lrp_instance_key.clone().unwrap().instance_guid;
    assert_eq!(first.state, "RUNNING");
    assert_eq!(
        first.optional_routable,
        Some(proto::actual_lrp::OptionalRoutable::Routable(true))
    );
    assert_eq!(first.availability_zone, "z1");
    assert_eq!(
        first.metric_tags,
        BTreeMap::from([
            ("instance_id".to_owned(), "0".to_owned()),
            ("process_instance_id".to_owned(), instance_guid),
            ("source_id".to_owned(), "app-guid".to_owned()),
        ])
    );

    // The same instances as the single-guid list answers.
    let single: proto::ActualLrPsResponse = post(
        &router,
        "/v1/actual_lrps/list",
        &proto::ActualLrPsRequest {
            process_guid: "web-v1".into(),
            ..proto::ActualLrPsRequest::default()
        },
    )
    .await;
    assert_eq!(single.actual_lrps, listed.actual_lrps[..2].to_vec());

    let none: proto::ActualLrPsByProcessGuidsResponse = post(
        &router,
        "/v1/actual_lrps/list_by_process_guids",
        &proto::ActualLrPsByProcessGuidsRequest::default(),
    )
    .await;
    assert_eq!(
        (none.error, none.actual_lrps),
        (
            error(Type::InvalidRequest, "process_guids must not be empty"),
            Vec::new()
        )
    );
}

/// A task as Cloud Controller's TaskRecipeBuilder desires one, with
/// declarative asset downloads.
fn cc_task_definition() -> proto::TaskDefinition {
    proto::TaskDefinition {
        root_fs: "preloaded:cflinuxfs4".into(),
        action: Some(run("/tmp/lifecycle/launcher", &["app", "rake db:migrate", ""])),
        disk_mb: 1024,
        memory_mb: 256,
        cpu_weight: 25,
        log_source: "APP/TASK/migrate".into(),
        log_guid: "app-guid".into(),
        completion_callback_url: "https://cloud-controller-ng.service.cf.internal:9023/internal/v4/tasks/task-guid/completed".into(),
        legacy_download_user: "vcap".into(),
        trusted_system_certificates_path: "/etc/cf-system-certificates".into(),
        placement_tags: vec!["placement-tag".into()],
        max_pids: 100,
        image_layers: vec![lifecycle_layer(), droplet_layer()],
        log_rate_limit: Some(proto::LogRateLimit {
            bytes_per_second: -1,
        }),
        network: Some(proto::Network {
            properties: BTreeMap::from([("app_id".to_owned(), "app-guid".to_owned())]),
        }),
        metric_tags: BTreeMap::from([("source_id".to_owned(), static_tag("app-guid"))]),
        ..proto::TaskDefinition::default()
    }
}

async fn desire_task(router: &Router, guid: &str, domain: &str) {
    let reply: proto::TaskLifecycleResponse = post(
        router,
        "/v1/tasks/desire.r2",
        &proto::DesireTaskRequest {
            task_definition: Some(cc_task_definition()),
            task_guid: guid.into(),
            domain: domain.into(),
        },
    )
    .await;
    assert_eq!(reply.error, None);
}

#[tokio::test]
async fn task_r2_reads_answer_in_format_v2() {
    let router = fake();
    desire_task(&router, "task-guid", "cf-tasks").await;
    desire_task(&router, "staging-guid", "cf-staging").await;

    let by_guid = |path: &'static str, guid: &'static str| {
        let router = router.clone();
        async move {
            let request = proto::TaskByGuidRequest {
                task_guid: guid.into(),
            };
            post::<proto::TaskResponse>(&router, path, &request).await
        }
    };
    let v3 = by_guid("/v1/tasks/get_by_task_guid.r3", "task-guid").await;
    let v3 = v3.task.unwrap();
    // Every field desired is kept.
    assert_eq!(v3.task_definition, Some(cc_task_definition()));

    let v2 = by_guid("/v1/tasks/get_by_task_guid.r2", "task-guid").await;
    assert_eq!(v2.error, None);
    let v2 = v2.task.unwrap();
    let definition = v2.task_definition.clone().unwrap();
    assert!(definition.image_layers.is_empty());
    assert_eq!(definition.cached_dependencies.len(), 1);
    let serial = definition.action.unwrap().serial_action.unwrap().actions;
    assert_eq!(serial.len(), 2, "downloads, then the task's own action");
    assert_eq!(Some(&serial[1]), cc_task_definition().action.as_ref());
    assert_eq!(v2, task_v2(v3));

    let listed: proto::TasksResponse = post(
        &router,
        "/v1/tasks/list.r2",
        &proto::TasksRequest {
            domain: "cf-tasks".into(),
            ..proto::TasksRequest::default()
        },
    )
    .await;
    assert_eq!(listed.error, None);
    assert_eq!(listed.tasks, vec![v2]);
    let all: proto::TasksResponse = post(
        &router,
        "/v1/tasks/list.r2",
        &proto::TasksRequest::default(),
    )
    .await;
    assert_eq!(all.tasks.len(), 2);
    assert!(
        all.tasks
            .iter()
            .all(|t| t.task_definition.as_ref().unwrap().image_layers.is_empty())
    );

    let missing = by_guid("/v1/tasks/get_by_task_guid.r2", "nope").await;
    assert_eq!((missing.error, missing.task), (not_found(), None));
    let unnamed = by_guid("/v1/tasks/get_by_task_guid.r2", "").await;
    assert_eq!(
        unnamed.error,
        error(Type::InvalidRequest, "Invalid field: task_guid")
    );
}

#[tokio::test]
async fn undecodable_and_invalid_requests_are_refused_as_the_bbs_does() {
    let router = fake();
    // Field 1 as a varint: not a DesiredLRP message.
    let garbage = post_bytes(&router, "/v1/desired_lrp/desire.r2", vec![0x08, 0x01]).await;
    let reply = proto::DesiredLrpLifecycleResponse::decode(garbage).unwrap();
    assert_eq!(
        reply.error,
        error(Type::InvalidRequest, "the request received is invalid")
    );

    let mut bad = cc_lrp("bad-v1", 1);
    bad.log_rate_limit = Some(proto::LogRateLimit {
        bytes_per_second: -2,
    });
    let reply: proto::DesiredLrpLifecycleResponse = post(
        &router,
        "/v1/desired_lrp/desire.r2",
        &proto::DesireLrpRequest {
            desired_lrp: Some(bad),
        },
    )
    .await;
    assert_eq!(
        reply.error,
        error(
            Type::InvalidRequest,
            "Invalid field: log_rate_limit_bytes_per_second, Invalid field: log_rate_limit"
        )
    );
    // Nothing was stored.
    let read = get_lrp(&router, LRP_R3, "bad-v1").await;
    assert_eq!(read.error, not_found());

    desire(&router, cc_lrp("dup-v1", 0)).await;
    let again: proto::DesiredLrpLifecycleResponse = post(
        &router,
        "/v1/desired_lrp/desire.r2",
        &proto::DesireLrpRequest {
            desired_lrp: Some(cc_lrp("dup-v1", 0)),
        },
    )
    .await;
    assert_eq!(
        again.error,
        error(
            Type::ResourceExists,
            "the requested resource already exists"
        )
    );
}
