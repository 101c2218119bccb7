//! The BBS's validation rules, message for message.

#![allow(deprecated)]

use super::*;

fn run(path: &str, user: &str) -> proto::Action {
    proto::Action {
        run_action: Some(proto::RunAction {
            path: path.into(),
            user: user.into(),
            ..proto::RunAction::default()
        }),
        ..proto::Action::default()
    }
}

fn tag(value: &str) -> proto::MetricTagValue {
    proto::MetricTagValue {
        r#static: value.into(),
        ..proto::MetricTagValue::default()
    }
}

fn lrp() -> proto::DesiredLrp {
    proto::DesiredLrp {
        process_guid: "app-guid-v1".into(),
        domain: "cf-apps".into(),
        root_fs: "preloaded:cflinuxfs4".into(),
        instances: 1,
        action: Some(run("/tmp/lifecycle/launcher", "vcap")),
        metric_tags: BTreeMap::from([("source_id".to_owned(), tag("app-guid"))]),
        ..proto::DesiredLrp::default()
    }
}

fn desire(lrp: proto::DesiredLrp) -> Result<(), String> {
    proto::DesireLrpRequest {
        desired_lrp: Some(lrp),
    }
    .validate()
}

fn task(definition: proto::TaskDefinition) -> Result<(), String> {
    proto::DesireTaskRequest {
        task_definition: Some(definition),
        task_guid: "task-guid".into(),
        domain: "cf-tasks".into(),
    }
    .validate()
}

fn task_definition() -> proto::TaskDefinition {
    proto::TaskDefinition {
        root_fs: "preloaded:cflinuxfs4".into(),
        action: Some(run("/tmp/lifecycle/launcher", "vcap")),
        ..proto::TaskDefinition::default()
    }
}

#[test]
fn guids_and_root_filesystems_follow_bbs_patterns() {
    assert!(is_guid("app-guid_v1"));
    assert!(!is_guid(""));
    assert!(!is_guid("a/b"));
    assert!(is_root_fs("docker:///library/nginx#1"));
    assert!(is_root_fs("preloaded:cflinuxfs4"));
    assert!(!is_root_fs("library/nginx"));
    assert!(!is_root_fs(""));
    assert!(!is_root_fs("docker:///a\nb"));
}

#[test]
fn a_valid_lrp_and_task_pass() {
    assert_eq!(desire(lrp()), Ok(()));
    assert_eq!(task(task_definition()), Ok(()));
}

#[test]
fn run_actions_need_path_and_user_and_actions_a_kind() {
    let mut missing = lrp();
    missing.action = Some(run("", ""));
    assert_eq!(
        desire(missing),
        Err("Invalid field: action, Invalid field: path, Invalid field: user".into())
    );
    let mut none = lrp();
    none.action = Some(proto::Action::default());
    assert_eq!(
        desire(none),
        Err("Invalid field: action, Invalid field: inner-action".into())
    );
    let mut absent = lrp();
    absent.action = None;
    assert_eq!(desire(absent), Err("invalid action type".into()));
}

#[test]
fn nested_actions_report_under_their_slot() {
    let mut bad = lrp();
    bad.setup = Some(proto::Action {
        serial_action: Some(proto::SerialAction {
            actions: vec![proto::Action {
                download_action: Some(proto::DownloadAction {
                    from: "http://x/droplet".into(),
                    to: ".".into(),
                    user: "vcap".into(),
                    checksum_algorithm: "crc32".into(),
                    checksum_value: "abc".into(),
                    ..proto::DownloadAction::default()
                }),
                ..proto::Action::default()
            }],
            log_source: String::new(),
        }),
        ..proto::Action::default()
    });
    bad.monitor = Some(proto::Action {
        timeout_action: Some(Box::new(proto::TimeoutAction {
            action: Some(Box::new(run("/tmp/lifecycle/healthcheck", "vcap"))),
            ..proto::TimeoutAction::default()
        })),
        ..proto::Action::default()
    });
    assert_eq!(
        desire(bad),
        Err("Invalid field: setup, Invalid field: invalid algorithm, \
             Invalid field: monitor, Invalid field: timeout_ms"
            .into())
    );
}

#[test]
fn an_lrp_reports_every_problem_in_the_bbs_order() {
    let bad = proto::DesiredLrp {
        process_guid: "a/b".into(),
        domain: String::new(),
        root_fs: String::new(),
        instances: -1,
        log_rate_limit: Some(proto::LogRateLimit {
            bytes_per_second: -2,
        }),
        ..lrp()
    };
    assert_eq!(
        desire(bad),
        Err(
            "Invalid field: domain, Invalid field: rootfs, Invalid field: rootfs, \
             Invalid field: instances, Invalid field: log_rate_limit_bytes_per_second, \
             Invalid field: domain, Invalid field: process_guid, Invalid field: log_rate_limit"
                .into()
        )
    );
}

#[test]
fn metric_tags_are_required_exclusive_and_match_the_metrics_guid() {
    let mut none = lrp();
    none.metric_tags.clear();
    assert_eq!(desire(none), Err("Invalid field: metric_tags".into()));

    let mut both = lrp();
    both.metric_tags.insert(
        "instance_id".into(),
        proto::MetricTagValue {
            r#static: "0".into(),
            dynamic: proto::metric_tag_value::DynamicValue::Index as i32,
        },
    );
    assert_eq!(
        desire(both),
        Err("Invalid field: metric_tags, Invalid field: static, Invalid field: dynamic".into())
    );

    let mut other_guid = lrp();
    other_guid.metrics_guid = "another-app".into();
    assert_eq!(
        desire(other_guid),
        Err("Invalid field: metric_tags, \
             Invalid field: source_id should match metrics_guid"
            .into())
    );
}

#[test]
fn image_layers_follow_the_bbs_rules() {
    use proto::image_layer::{DigestAlgorithm, MediaType, Type};
    let droplet = proto::ImageLayer {
        name: "droplet".into(),
        url: "https://cc/droplet.tgz".into(),
        destination_path: "/home/vcap".into(),
        layer_type: Type::Exclusive as i32,
        media_type: MediaType::Tgz as i32,
        digest_algorithm: DigestAlgorithm::Sha256 as i32,
        digest_value: "abc".into(),
    };
    let mut ok = lrp();
    ok.image_layers = vec![droplet.clone()];
    ok.legacy_download_user = "vcap".into();
    assert_eq!(desire(ok.clone()), Ok(()));

    // An exclusive layer needs a legacy download user (its downloads' user).
    let mut no_user = ok.clone();
    no_user.legacy_download_user.clear();
    assert_eq!(
        desire(no_user),
        Err("Invalid field: legacy_download_user".into())
    );

    // An exclusive layer needs a digest.
    let mut no_digest = ok;
    no_digest.image_layers = vec![proto::ImageLayer {
        digest_algorithm: 0,
        digest_value: String::new(),
        media_type: 0,
        ..droplet
    }];
    assert_eq!(
        desire(no_digest),
        Err("Invalid field: image_layer, Invalid field: media_type, \
             Invalid field: digest_algorithm, Invalid field: digest_value"
            .into())
    );
}

#[test]
fn egress_rules_follow_the_bbs_rules() {
    let rule = |protocol: &str, destinations: &[&str], ports: Vec<u32>| proto::SecurityGroupRule {
        protocol: protocol.into(),
        destinations: destinations.iter().map(|d| (*d).to_owned()).collect(),
        ports,
        ..proto::SecurityGroupRule::default()
    };
    let mut ok = lrp();
    ok.egress_rules = vec![
        rule("udp", &["0.0.0.0/0"], vec![53]),
        rule("tcp", &["10.0.0.1-10.0.0.9,192.168.1.1"], vec![443]),
        rule("all", &["::1"], Vec::new()),
    ];
    assert_eq!(desire(ok), Ok(()));

    let mut bad = lrp();
    bad.egress_rules = vec![
        rule("tcp", &["10.0.0.0/33"], Vec::new()),
        rule("icmp", &["10.0.0.9-10.0.0.1"], vec![1]),
        rule("sctp", &[], Vec::new()),
    ];
    assert_eq!(
        desire(bad),
        Err(
            "Invalid field: egress_rules, Missing required field: ports or port_range, \
             Invalid field: destinations [ invalid CIDR address: 10.0.0.0/33 ], \
             Invalid field: egress_rules, Invalid field: ports, Invalid field: icmp_info, \
             Invalid field: destinations [ Invalid IP ], \
             Invalid field: egress_rules, Invalid field: protocol, \
             Invalid field: destinations [ Must have at least 1 destination ]"
                .into()
        )
    );

    // A task's bad rules are named without the why.
    let mut def = task_definition();
    def.egress_rules = vec![rule("sctp", &["0.0.0.0/0"], vec![1])];
    assert_eq!(task(def), Err("Invalid field: egress_rules".into()));
}

#[test]
fn mounts_sidecars_checks_and_credentials() {
    let mut bad = lrp();
    bad.volume_mounts = vec![proto::VolumeMount {
        driver: "nfsv3driver".into(),
        container_dir: "/data".into(),
        mode: "x".into(),
        shared: Some(proto::SharedDevice::default()),
        ..proto::VolumeMount::default()
    }];
    bad.sidecars = vec![proto::Sidecar {
        action: None,
        disk_mb: 0,
        memory_mb: -1,
    }];
    bad.check_definition = Some(proto::CheckDefinition {
        checks: vec![proto::Check::default()],
        ..proto::CheckDefinition::default()
    });
    bad.image_password = "secret".into();
    assert_eq!(
        desire(bad),
        Err(
            "Invalid field: sidecars, invalid action type, Invalid field: memory_mb, \
             invalid volume_mount mode, invalid volume_mount volume id, \
             Invalid field: image_username, \
             Invalid field: check_definition, Invalid field: port"
                .into()
        )
    );
}

#[test]
fn volume_mounted_files_are_limited_to_a_megabyte() {
    let mut big = lrp();
    big.volume_mounted_files = vec![proto::File {
        path: "vcap_services".into(),
        content: "x".repeat(MAX_VOLUME_MOUNTED_FILES + 1),
    }];
    assert_eq!(
        desire(big),
        Err("Invalid field: volumeMountedFiles, Invalid field: volumeMountedFiles".into())
    );
}

#[test]
fn task_definitions_follow_the_bbs_rules() {
    let mut def = task_definition();
    def.root_fs.clear();
    def.action = None;
    def.log_rate_limit = Some(proto::LogRateLimit {
        bytes_per_second: -5,
    });
    def.cached_dependencies = vec![proto::CachedDependency {
        checksum_value: "abc".into(),
        ..proto::CachedDependency::default()
    }];
    assert_eq!(
        task(def),
        Err(
            "Invalid field: rootfs, invalid action type, Invalid field: log_rate_limit, \
             Invalid field: cached_dependency, Invalid field: from, Invalid field: to, \
             Invalid field: checksum algorithm"
                .into()
        )
    );
    // Unlike an LRP's, a task's metric tags are not validated.
    let mut tags = task_definition();
    tags.metric_tags = BTreeMap::from([("a".to_owned(), proto::MetricTagValue::default())]);
    assert_eq!(task(tags), Ok(()));

    let nameless = proto::DesireTaskRequest {
        task_definition: None,
        task_guid: "no/slashes".into(),
        domain: String::new(),
    };
    assert_eq!(
        nameless.validate(),
        Err("Invalid field: task_guid, Invalid field: domain, \
             Invalid field: task_definition"
            .into())
    );
}

#[test]
fn updates_follow_the_bbs_rules() {
    use proto::desired_lrp_update::{OptionalImageUsername, OptionalInstances};
    let update = proto::UpdateDesiredLrpRequest {
        // Only emptiness is checked here, not the guid pattern.
        process_guid: "any/thing".into(),
        update: Some(proto::DesiredLrpUpdate {
            optional_instances: Some(OptionalInstances::Instances(-1)),
            optional_image_username: Some(OptionalImageUsername::ImageUsername("u".into())),
            ..proto::DesiredLrpUpdate::default()
        }),
    };
    assert_eq!(
        update.validate(),
        Err("Invalid field: instances, Invalid field: image_password".into())
    );
    let empty = proto::UpdateDesiredLrpRequest::default();
    assert_eq!(empty.validate(), Err("Invalid field: process_guid".into()));
}

#[test]
fn requests_naming_a_record_need_its_name() {
    assert_eq!(
        proto::DesiredLrpByProcessGuidRequest::default().validate(),
        Err("Invalid field: process_guid".into())
    );
    assert_eq!(
        proto::RemoveDesiredLrpRequest::default().validate(),
        Err("Invalid field: process_guid".into())
    );
    assert_eq!(
        proto::TaskByGuidRequest::default().validate(),
        Err("Invalid field: task_guid".into())
    );
    assert_eq!(
        proto::TaskGuidRequest::default().validate(),
        Err("Invalid field: task_guid".into())
    );
    assert_eq!(
        proto::UpsertDomainRequest::default().validate(),
        Err("Invalid field: domain".into())
    );
    assert_eq!(
        proto::ActualLrPsByProcessGuidsRequest::default().validate(),
        Err("process_guids must not be empty".into())
    );
    assert_eq!(
        proto::RetireActualLrpRequest::default().validate(),
        Err("Invalid field: actual_lrp_key".into())
    );
    let key = proto::ActualLrpKey {
        process_guid: String::new(),
        index: -1,
        domain: String::new(),
    };
    assert_eq!(
        proto::RetireActualLrpRequest {
            actual_lrp_key: Some(key)
        }
        .validate(),
        Err("Invalid field: process_guid, Invalid field: index, Invalid field: domain".into())
    );
}
