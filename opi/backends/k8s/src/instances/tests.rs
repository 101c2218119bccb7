use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

use super::*;

fn time(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn pod(index: u32) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("myapp-{index}")),
            uid: Some(format!("uid-{index}")),
            creation_timestamp: Some(time(100)),
            labels: Some(BTreeMap::from([(
                labels::POD_INDEX.to_owned(),
                index.to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (labels::PROCESS_GUID.to_owned(), "guid".to_owned()),
                (labels::VERSION.to_owned(), "v1".to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-a".into()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            ..PodStatus::default()
        }),
    }
}

fn with_condition(mut pod: Pod, kind: &str, status: &str, at: i64, message: &str) -> Pod {
    let conditions = pod
        .status
        .get_or_insert_with(PodStatus::default)
        .conditions
        .get_or_insert_with(Vec::new);
    conditions.push(PodCondition {
        type_: kind.into(),
        status: status.into(),
        last_transition_time: Some(time(at)),
        message: (!message.is_empty()).then(|| message.to_owned()),
        ..PodCondition::default()
    });
    pod
}

fn terminated(exit_code: i32, finished: i64, id: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            reason: Some(
                if exit_code == 137 {
                    "OOMKilled"
                } else {
                    "Error"
                }
                .into(),
            ),
            finished_at: Some(time(finished)),
            container_id: Some(id.into()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

fn running() -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning::default()),
        ..ContainerState::default()
    }
}

fn backoff() -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some("CrashLoopBackOff".into()),
            message: None,
        }),
        ..ContainerState::default()
    }
}

fn with_container(
    mut pod: Pod,
    state: ContainerState,
    last: Option<ContainerState>,
    restarts: i32,
) -> Pod {
    pod.status
        .get_or_insert_with(PodStatus::default)
        .container_statuses = Some(vec![ContainerStatus {
        name: CONTAINER.into(),
        state: Some(state),
        last_state: last,
        restart_count: restarts,
        ..ContainerStatus::default()
    }]);
    pod
}

fn state_of(pod: &Pod) -> InstanceState {
    instance(pod).map_or(InstanceState::Unknown, |i| i.state)
}

#[test]
fn a_ready_pod_is_running_since_it_became_ready() {
    let pod = with_condition(pod(2), "PodScheduled", "True", 110, "");
    let pod = with_condition(pod, "Ready", "True", 120, "");
    let got = instance(&pod).expect("an instance");
    assert_eq!(got.index, 2);
    assert_eq!(got.state, InstanceState::Running);
    assert_eq!(got.since, 120_000_000_000);
}

#[test]
fn a_created_pod_that_is_not_ready_is_claimed() {
    assert_eq!(state_of(&pod(0)), InstanceState::Claimed);
    let pod = with_condition(pod(0), "PodScheduled", "True", 110, "");
    let pod = with_condition(pod, "Ready", "False", 110, "");
    assert_eq!(state_of(&pod), InstanceState::Claimed);
}

#[test]
fn an_unschedulable_pod_is_unclaimed_with_the_scheduler_message() {
    let message = "0/3 nodes are available: 3 Insufficient memory.";
    let pod = with_condition(pod(0), "PodScheduled", "False", 110, message);
    let got = instance(&pod).expect("an instance");
    assert_eq!(got.state, InstanceState::Unclaimed);
    assert_eq!(got.placement_error, message);
}

#[test]
fn crash_looping_and_failed_containers_are_crashed() {
    let looping = with_container(pod(0), backoff(), Some(terminated(1, 130, "c1")), 1);
    assert_eq!(state_of(&looping), InstanceState::Crashed);
    let failed = with_container(pod(0), terminated(3, 130, "c1"), None, 0);
    assert_eq!(state_of(&failed), InstanceState::Crashed);
    // A clean exit is not a crash by itself.
    let clean = with_container(pod(0), terminated(0, 130, "c1"), None, 0);
    assert_eq!(state_of(&clean), InstanceState::Claimed);
}

#[test]
fn pods_being_deleted_are_not_instances() {
    let mut pod = pod(0);
    pod.metadata.deletion_timestamp = Some(time(200));
    assert_eq!(instance(&pod), None);
}

#[test]
fn a_restart_after_a_non_zero_exit_is_one_crash() {
    let up = with_container(pod(1), running(), None, 0);
    let (seen, crash) = observe(None, &up, true);
    assert_eq!(crash, None);

    let down = with_container(pod(1), terminated(3, 130, "c1"), None, 0);
    let (seen, crash) = observe(Some(&seen), &down, true);
    let crash = crash.expect("a crash");
    assert_eq!(crash.id, LrpId::new("guid", "v1"));
    assert_eq!(crash.index, 1);
    assert_eq!(crash.exit_status, 3);
    assert_eq!(crash.crash_count, 1);
    assert_eq!(crash.reason, "Error");
    assert_eq!(crash.cell_id, "node-a");
    assert_eq!(crash.instance, "uid-1");
    assert_eq!(crash.crash_timestamp, 130_000_000_000);

    // The kubelet restarts it: the same termination is now the last state.
    let restarted = with_container(pod(1), running(), Some(terminated(3, 130, "c1")), 1);
    let (seen, crash) = observe(Some(&seen), &restarted, true);
    assert_eq!(crash, None, "the same termination is reported once");

    // It crashes again and is seen only after the next restart.
    let again = with_container(pod(1), backoff(), Some(terminated(137, 160, "c2")), 2);
    let (_, crash) = observe(Some(&seen), &again, true);
    let crash = crash.expect("the second crash");
    assert_eq!((crash.exit_status, crash.crash_count), (137, 2));
    assert_eq!(crash.reason, "OOMKilled");
}

#[test]
fn old_crashes_of_pods_first_seen_while_listing_are_not_reported() {
    let old = with_container(pod(0), running(), Some(terminated(1, 130, "c1")), 1);
    let (seen, crash) = observe(None, &old, false);
    assert_eq!(crash, None);
    let (_, crash) = observe(Some(&seen), &old, true);
    assert_eq!(crash, None);
}

#[test]
fn containers_killed_because_their_pod_is_deleted_are_not_crashes() {
    let mut stopping = with_container(pod(0), terminated(143, 130, "c1"), None, 0);
    stopping.metadata.deletion_timestamp = Some(time(129));
    assert_eq!(observe(None, &stopping, true).1, None);
}

#[test]
fn clean_exits_are_not_crashes() {
    let pod = with_container(pod(0), running(), Some(terminated(0, 130, "c1")), 1);
    assert_eq!(observe(None, &pod, true).1, None);
}

proptest! {
    /// However often the watch delivers each state, every restart after a
    /// non-zero exit yields exactly one crash event, with increasing counts.
    #[test]
    fn each_restart_is_reported_exactly_once(
        exits in prop::collection::vec(1i32..=255, 1..8),
        repeats in prop::collection::vec(1usize..4, 8),
    ) {
        let mut seen = None;
        let mut crashes = Vec::new();
        for (n, exit) in exits.iter().enumerate() {
            let restarts = i32::try_from(n).unwrap_or(0);
            let finished = 1000 + i64::from(restarts) * 10;
            let id = format!("c{n}");
            let dying = with_container(pod(0), terminated(*exit, finished, &id), None, restarts);
            let restarted =
                with_container(pod(0), running(), Some(terminated(*exit, finished, &id)), restarts + 1);
            for state in [dying, restarted] {
                for _ in 0..repeats[n] {
                    let (next, crash) = observe(seen.as_ref(), &state, true);
                    seen = Some(next);
                    crashes.extend(crash);
                }
            }
        }
        prop_assert_eq!(crashes.len(), exits.len());
        for (n, crash) in crashes.iter().enumerate() {
            prop_assert_eq!(crash.exit_status, exits[n]);
            prop_assert_eq!(crash.crash_count as usize, n + 1);
        }
    }
}

/// Slimming a pod for the cache changes nothing the backend reads from it.
#[test]
fn slim_pods_read_the_same() {
    let cases = vec![
        with_container(pod(1), running(), None, 0),
        with_condition(
            pod(2),
            "PodScheduled",
            "False",
            110,
            "0/3 nodes are available",
        ),
        with_container(pod(3), backoff(), Some(terminated(137, 160, "c2")), 2),
        with_condition(
            with_container(pod(4), running(), None, 0),
            "Ready",
            "True",
            120,
            "",
        ),
    ];
    for full in cases {
        let mut slim_pod = full.clone();
        let mut fat = full.clone();
        fat.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("cloudfoundry.org/lrp".into(), "x".repeat(4096));
        fat.spec.get_or_insert_with(PodSpec::default).hostname = Some("h".into());
        slim(&mut slim_pod);
        let mut slim_fat = fat.clone();
        slim(&mut slim_fat);
        assert_eq!(instance(&slim_pod), instance(&full));
        assert_eq!(lrp_id(&slim_pod), lrp_id(&full));
        assert_eq!(index(&slim_pod), index(&full));
        assert_eq!(slim_fat, slim_pod, "everything else is dropped");
        let before = observe(None, &full, true);
        let after = observe(None, &slim_pod, true);
        assert_eq!(before.1, after.1);
        let (seen, _) = before;
        let restarted = with_container(full.clone(), running(), Some(terminated(3, 200, "c9")), 3);
        let mut restarted_slim = restarted.clone();
        slim(&mut restarted_slim);
        assert_eq!(
            observe(Some(&seen), &restarted, true).1,
            observe(Some(&seen), &restarted_slim, true).1
        );
    }
}
