//! Unit tests of the simulator's state transitions.

use proptest::prelude::*;

use super::*;
use crate::model::{LifecycleMetadata, StagingError, StagingResult};

const NOW: i64 = 1_700_000_000_000_000;

fn docker(image: &str) -> AppManifest {
    AppManifest {
        docker_image: Some(image.into()),
        ..AppManifest::default()
    }
}

fn docker_result(image: &str) -> StagingResult {
    StagingResult {
        lifecycle_type: "docker".into(),
        lifecycle_metadata: LifecycleMetadata {
            docker_image: Some(image.into()),
            ..LifecycleMetadata::default()
        },
        process_types: [("web".to_owned(), String::new())].into(),
        execution_metadata: "{}".into(),
        extra: Default::default(),
    }
}

/// A started, staged Docker app called `name`.
fn running(state: &mut State, name: &str) {
    state
        .put_app(name, docker("nginx"), "localhost", NOW)
        .unwrap();
    let build = state.start_build(name, true, NOW).unwrap();
    assert_eq!(
        state
            .complete_build(&build.guid, Ok(docker_result("nginx")), false, NOW)
            .unwrap(),
        BuildState::Staged
    );
}

#[test]
fn staging_then_start_makes_the_app_desired() {
    let mut state = State::default();
    assert!(
        state
            .put_app("web", docker("nginx"), "localhost", NOW)
            .unwrap()
    );
    let app = state.app_by_name("web").unwrap().clone();
    assert_eq!(app.routes, ["web.localhost"]);
    assert!(!app.is_desired());
    assert!(state.start_app("web", NOW).is_err(), "no droplet yet");
    running(&mut state, "web");
    let app = state.app_by_name("web").unwrap();
    assert!(app.is_desired());
    assert_eq!(app.state, AppState::Started);
    assert_eq!(state.desired_page(0, 10).len(), 1);
}

#[test]
fn scaling_instances_changes_the_etag_not_the_version() {
    let mut state = State::default();
    running(&mut state, "web");
    let before = state.app_by_name("web").unwrap().clone();
    let scale = Scale {
        instances: Some(3),
        ..Scale::default()
    };
    // Same clock: the etag must still move.
    state
        .scale_app("web", scale, before.updated_at_micros)
        .unwrap();
    let after = state.app_by_name("web").unwrap();
    assert_eq!(after.process_guid(), before.process_guid());
    assert_ne!(after.etag(), before.etag());
    assert_eq!(after.instances, 3);
    // Memory needs a restart: a new version, a new LRP.
    let scale = Scale {
        memory_mb: Some(512),
        ..Scale::default()
    };
    state.scale_app("web", scale, NOW).unwrap();
    assert_ne!(
        state.app_by_name("web").unwrap().process_guid(),
        before.process_guid()
    );
}

#[test]
fn stop_hides_and_start_makes_a_new_version() {
    let mut state = State::default();
    running(&mut state, "web");
    let first = state.app_by_name("web").unwrap().process_guid();
    state.stop_app("web", NOW).unwrap();
    assert!(state.desired_page(0, 10).is_empty());
    state.start_app("web", NOW).unwrap();
    let second = state.app_by_name("web").unwrap().process_guid();
    assert_ne!(first, second);
    assert_eq!(first.app_guid(), second.app_guid());
    // Asking for the old version finds nothing; the new one is found.
    assert!(
        state
            .desired_by_process_guid(std::slice::from_ref(&first.0))
            .is_empty()
    );
    assert_eq!(
        state
            .desired_by_process_guid(std::slice::from_ref(&second.0))
            .len(),
        1
    );
}

#[test]
fn buildpack_staging_needs_bits_and_a_droplet() {
    let mut state = State::default();
    let manifest = AppManifest {
        buildpacks: Some(vec!["ruby_buildpack".into()]),
        ..AppManifest::default()
    };
    state.put_app("rb", manifest, "localhost", NOW).unwrap();
    let err = state.start_build("rb", true, NOW).unwrap_err().to_string();
    assert!(err.contains("no app bits"), "{err}");
    let package = Package {
        guid: "p".into(),
        sha256: "s".into(),
        size: 1,
    };
    state.set_package("rb", package, NOW).unwrap();
    let build = state.start_build("rb", true, NOW).unwrap();
    assert!(
        state.start_build("rb", true, NOW).is_err(),
        "already staging"
    );
    let result = StagingResult {
        lifecycle_type: "buildpack".into(),
        lifecycle_metadata: LifecycleMetadata::default(),
        process_types: [("web".to_owned(), "ruby app.rb".to_owned())].into(),
        execution_metadata: String::new(),
        extra: Default::default(),
    };
    // Success without an uploaded droplet is a failure.
    assert_eq!(
        state
            .complete_build(&build.guid, Ok(result.clone()), false, NOW)
            .unwrap(),
        BuildState::Failed
    );
    let failed = &state.builds[&build.guid];
    assert!(
        failed
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("no droplet")
    );
    // Again, with a droplet.
    let build = state.start_build("rb", true, NOW).unwrap();
    state
        .droplet_uploaded(&build.guid, "abc".into(), 10)
        .unwrap();
    state
        .complete_build(&build.guid, Ok(result), false, NOW)
        .unwrap();
    let app = state.app_by_name("rb").unwrap();
    assert_eq!(app.droplet.as_ref().unwrap().hash.as_deref(), Some("abc"));
    assert!(app.is_desired());
    // A second success is refused (CC's InvalidRequest); so is a late upload.
    let again = state
        .complete_build(&build.guid, Ok(docker_result("x")), false, NOW)
        .unwrap_err();
    assert!(matches!(
        again,
        crate::Error::Api {
            status: 400,
            name: "InvalidRequest",
            ..
        }
    ));
    assert!(state.droplet_uploaded(&build.guid, "d".into(), 1).is_err());
}

/// A started app staged by `build`, then its build reported failed with `start`.
fn staged_then_failed(start: bool) -> (State, App, String) {
    let mut state = State::default();
    running(&mut state, "web");
    let build = state.start_build("web", true, NOW).unwrap();
    state
        .complete_build(&build.guid, Ok(docker_result("nginx:2")), true, NOW)
        .unwrap();
    let staged = state.app_by_name("web").unwrap().clone();
    assert!(staged.is_desired());
    let late = StagingError {
        id: "BuildpackCompileFailed".into(),
        message: "reported after success".into(),
    };
    assert_eq!(
        state
            .complete_build(&build.guid, Err(late), start, NOW + 1)
            .unwrap(),
        BuildState::Failed,
        "CC applies a failure whatever state the build is in"
    );
    (state, staged, build.guid)
}

#[test]
fn a_failure_after_success_fails_the_build_and_is_recorded() {
    let (state, staged, guid) = staged_then_failed(false);
    let build = &state.builds[&guid];
    assert_eq!(build.state, BuildState::Failed);
    assert!(build.failed_after_staged);
    assert_eq!(build.error.as_ref().unwrap().id, "BuildpackCompileFailed");
    // CC's `fail_to_stage!` touches the build only: the droplet stays and,
    // without `start`, the app keeps running it.
    let app = state.app_by_name("web").unwrap();
    assert_eq!(app.droplet, staged.droplet);
    assert_eq!(app.process_guid(), staged.process_guid());
    assert!(app.is_desired());
    let late: Vec<&Event> = state
        .events
        .iter()
        .filter(|e| e.kind == "staging_failed_after_staged")
        .collect();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].body["build_guid"], guid.as_str());
    assert_eq!(late[0].body["error"]["message"], "reported after success");
    assert_eq!(late[0].body["app_stopped"], false);
}

#[test]
fn with_start_a_late_failure_stops_the_app_like_cc() {
    let (state, staged, guid) = staged_then_failed(true);
    assert!(state.builds[&guid].failed_after_staged);
    let app = state.app_by_name("web").unwrap();
    assert_eq!(app.state, AppState::Stopped, "CC's V2::AppStop");
    assert!(!app.is_desired(), "the bulk API stops listing it");
    assert_eq!(app.droplet, staged.droplet);
    assert!(state.desired_page(0, 10).is_empty());
    let late = state
        .events
        .iter()
        .find(|e| e.kind == "staging_failed_after_staged")
        .unwrap();
    assert_eq!(late.body["app_stopped"], true);
}

#[test]
fn a_failure_while_staging_is_not_marked_late() {
    let mut state = State::default();
    running(&mut state, "web");
    let build = state.start_build("web", true, NOW).unwrap();
    state
        .complete_build(&build.guid, Err(StagingError::staging("first")), true, NOW)
        .unwrap();
    // A second failure is applied again (CC overwrites the error), not late.
    state
        .complete_build(
            &build.guid,
            Err(StagingError::staging("second")),
            false,
            NOW,
        )
        .unwrap();
    let failed = &state.builds[&build.guid];
    assert_eq!(failed.error.as_ref().unwrap().message, "second");
    assert!(!failed.failed_after_staged);
    assert!(
        state
            .events
            .iter()
            .all(|e| e.kind != "staging_failed_after_staged")
    );
    // `start` on the failure stopped the app (CC's `with_start`).
    assert_eq!(state.app_by_name("web").unwrap().state, AppState::Stopped);
}

#[test]
fn staging_failure_keeps_the_old_droplet() {
    let mut state = State::default();
    running(&mut state, "web");
    let before = state.app_by_name("web").unwrap().clone();
    let build = state.start_build("web", true, NOW).unwrap();
    state
        .complete_build(&build.guid, Err(StagingError::staging("boom")), false, NOW)
        .unwrap();
    let after = state.app_by_name("web").unwrap();
    assert_eq!(after.droplet, before.droplet);
    assert_eq!(after.process_guid(), before.process_guid());
    assert_eq!(state.builds[&build.guid].state, BuildState::Failed);
}

#[test]
fn input_is_validated_with_named_fields() {
    let mut state = State::default();
    let err = |r: crate::Result<bool>| r.unwrap_err().to_string();
    assert!(err(state.put_app("bad name!", AppManifest::default(), "d", NOW)).contains("app name"));
    let huge = AppManifest {
        instances: Some(MAX_INSTANCES + 1),
        ..AppManifest::default()
    };
    assert!(err(state.put_app("a", huge, "d", NOW)).contains("instances"));
    let both = AppManifest {
        docker_image: Some("x".into()),
        buildpacks: Some(vec![]),
        ..AppManifest::default()
    };
    assert!(err(state.put_app("a", both, "d", NOW)).contains("docker_image and buildpacks"));
    let check = AppManifest {
        health_check_type: Some("tcp".into()),
        ..AppManifest::default()
    };
    assert!(err(state.put_app("a", check, "d", NOW)).contains("health_check_type"));
    assert!(state.apps.is_empty(), "nothing was created");
    assert!(state.scale_app("nope", Scale::default(), NOW).is_err());
}

#[test]
fn crashes_need_a_known_app() {
    let mut state = State::default();
    running(&mut state, "web");
    let pg = state.app_by_name("web").unwrap().process_guid();
    state.record_crash(pg.as_str()).unwrap();
    assert_eq!(state.app_by_name("web").unwrap().crash_count, 1);
    let unknown = format!("{}-{}", crate::guid::new_guid(), crate::guid::new_guid());
    assert_eq!(state.record_crash(&unknown).unwrap_err().status(), 404);
    assert_eq!(state.record_crash("short").unwrap_err().status(), 400);
}

#[test]
fn events_are_capped_and_numbered() {
    let mut state = State::default();
    for i in 0..(MAX_EVENTS + 5) {
        state.record_event("k", "/p", serde_json::json!(i), NOW);
    }
    assert_eq!(state.events.len(), MAX_EVENTS);
    assert_eq!(state.events[0].seq, 6);
    assert_eq!(state.events.last().unwrap().seq, (MAX_EVENTS + 5) as u64);
}

#[test]
fn fake_apps_are_seeded_once() {
    let mut state = State::default();
    assert_eq!(state.seed_fake_apps(100, "busybox", NOW), 100);
    assert_eq!(state.seed_fake_apps(150, "busybox", NOW), 50);
    assert_eq!(state.apps.len(), 150);
    assert_eq!(state.desired_page(0, 1_000).len(), 150);
}

#[test]
fn deleting_removes_builds_too() {
    let mut state = State::default();
    running(&mut state, "web");
    let app = state.delete_app("web").unwrap();
    assert!(state.builds.values().all(|b| b.app_guid != app.guid));
    assert!(state.app_by_name("web").is_none());
    assert_eq!(state.delete_app("web").unwrap_err().status(), 404);
}

proptest! {
    /// Walking the pages with any batch size yields every desired app exactly
    /// once, in id order, and nothing else.
    #[test]
    fn paging_visits_every_desired_app_once(
        desired in proptest::collection::vec(any::<bool>(), 0..200),
        batch in 1usize..50,
    ) {
        let mut state = State::default();
        state.seed_fake_apps(desired.len(), "busybox", NOW);
        let ids: Vec<u64> = state.apps.keys().copied().collect();
        for (id, keep) in ids.iter().zip(&desired) {
            if !keep {
                state.apps.get_mut(id).unwrap().state = AppState::Stopped;
            }
        }
        let mut seen = Vec::new();
        let mut last = 0;
        loop {
            let page = state.desired_page(last, batch);
            if page.is_empty() {
                break;
            }
            prop_assert!(page.len() <= batch);
            last = page.last().unwrap().id;
            seen.extend(page.iter().map(|a| a.id));
        }
        let expected: Vec<u64> = ids.iter().zip(&desired).filter(|(_, k)| **k).map(|(id, _)| *id).collect();
        prop_assert_eq!(seen, expected);
    }
}
