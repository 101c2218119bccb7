use bbs_models::desired_lrp_update::{
    OptionalAnnotation, OptionalImageUsername, OptionalInstances,
};
use bbs_models::{ActualLrpKey, LogRateLimit, ProtoRoutes, RunAction, SerialAction, TimeoutAction};

use super::*;

fn message(result: Result<(), Error>) -> String {
    match result {
        Err(Error::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn run(path: &str, user: &str) -> Action {
    Action {
        run_action: Some(RunAction {
            path: path.into(),
            user: user.into(),
            ..RunAction::default()
        }),
        ..Action::default()
    }
}

fn task(guid: &str, definition: Option<TaskDefinition>) -> DesireTaskRequest {
    DesireTaskRequest {
        task_definition: definition,
        task_guid: guid.into(),
        domain: "cf-tasks".into(),
    }
}

fn definition() -> TaskDefinition {
    TaskDefinition {
        root_fs: "preloaded:cflinuxfs4".into(),
        action: Some(run("/tmp/lifecycle/launcher", "vcap")),
        ..TaskDefinition::default()
    }
}

#[test]
fn guids_must_be_given() {
    assert_eq!(
        message(guid("", "process_guid")),
        "Invalid field: process_guid"
    );
    assert!(guid("pg", "process_guid").is_ok());
    assert_eq!(message(upsert_domain("")), "Invalid field: domain");
}

#[test]
fn retire_checks_every_key_field() {
    assert_eq!(
        message(retire(&RetireActualLrpRequest::default())),
        "Invalid field: actual_lrp_key"
    );
    let bad = RetireActualLrpRequest {
        actual_lrp_key: Some(ActualLrpKey {
            process_guid: String::new(),
            index: -1,
            domain: String::new(),
        }),
    };
    assert_eq!(
        message(retire(&bad)),
        "Invalid field: process_guid, Invalid field: index, Invalid field: domain"
    );
    let good = RetireActualLrpRequest {
        actual_lrp_key: Some(ActualLrpKey {
            process_guid: "pg".into(),
            index: 0,
            domain: "cf-apps".into(),
        }),
    };
    assert!(retire(&good).is_ok());
}

#[test]
fn list_by_process_guids_needs_one() {
    assert_eq!(
        message(by_process_guids(&ActualLrPsByProcessGuidsRequest::default())),
        "process_guids must not be empty"
    );
}

#[test]
fn update_is_checked_as_the_bbs() {
    assert!(update_lrp("pg", None).is_ok());
    let update = DesiredLrpUpdate {
        optional_instances: Some(OptionalInstances::Instances(-1)),
        optional_annotation: Some(OptionalAnnotation::Annotation("x".repeat(10 * 1024 + 1))),
        routes: Some(ProtoRoutes {
            routes: [("cf-router".to_owned(), vec![b' '; 128 * 1024 + 1])].into(),
        }),
        metric_tags: [("source_id".to_owned(), MetricTagValue::default())].into(),
        optional_image_username: Some(OptionalImageUsername::ImageUsername("u".into())),
        ..DesiredLrpUpdate::default()
    };
    assert_eq!(
        message(update_lrp("", Some(&update))),
        "Invalid field: process_guid, Invalid field: instances, Invalid field: annotation, \
         Invalid field: routes, Invalid field: metric_tags, Invalid field: static, \
         Invalid field: dynamic, Invalid field: image_password"
    );
    let fine = DesiredLrpUpdate {
        optional_instances: Some(OptionalInstances::Instances(0)),
        metric_tags: [(
            "instance_id".to_owned(),
            MetricTagValue {
                r#static: String::new(),
                dynamic: DynamicValue::Index as i32,
            },
        )]
        .into(),
        ..DesiredLrpUpdate::default()
    };
    assert!(update_lrp("pg", Some(&fine)).is_ok());
}

#[test]
fn a_cc_task_is_valid() {
    assert!(desire_task(&task("task-guid_1", Some(definition()))).is_ok());
}

#[test]
fn task_guid_domain_and_definition_are_required() {
    let mut request = task("bad guid!", None);
    request.domain.clear();
    assert_eq!(
        message(desire_task(&request)),
        "Invalid field: task_guid, Invalid field: domain, Invalid field: task_definition"
    );
}

#[test]
fn task_definition_fields_are_checked() {
    let bad = TaskDefinition {
        root_fs: "cflinuxfs4".into(),
        action: None,
        memory_mb: -1,
        log_rate_limit: Some(LogRateLimit {
            bytes_per_second: -2,
        }),
        image_password: "secret".into(),
        ..TaskDefinition::default()
    };
    assert_eq!(
        message(desire_task(&task("t", Some(bad)))),
        "Invalid field: rootfs, invalid action type, Invalid field: memory_mb, \
         Invalid field: log_rate_limit, Invalid field: image_username"
    );
}

#[test]
fn actions_are_checked_all_the_way_down() {
    let nested = Action {
        serial_action: Some(SerialAction {
            actions: vec![
                run("/bin/true", ""),
                Action {
                    timeout_action: Some(Box::new(TimeoutAction {
                        action: None,
                        timeout_ms: 0,
                        ..TimeoutAction::default()
                    })),
                    ..Action::default()
                },
                Action::default(),
            ],
            ..SerialAction::default()
        }),
        ..Action::default()
    };
    let definition = TaskDefinition {
        action: Some(nested),
        ..definition()
    };
    assert_eq!(
        message(desire_task(&task("t", Some(definition)))),
        "Invalid field: action, Invalid field: user, Invalid field: action, \
         Invalid field: timeout_ms, Invalid field: inner-action"
    );
}

#[test]
fn rootfs_needs_a_scheme() {
    for (rootfs, ok) in [
        ("preloaded:cflinuxfs4", true),
        ("docker:///cloudfoundry/diego-docker-app#latest", true),
        ("", false),
        (":nothing", false),
        ("1abc:x", false),
        ("no-scheme", false),
    ] {
        assert_eq!(has_scheme(rootfs), ok, "{rootfs}");
    }
}
