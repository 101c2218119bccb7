use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus,
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

fn rec(pod: &Pod) -> PodRecord {
    record(&PodView::from(pod.clone()), &mut Strings::default())
}

fn state_of(pod: &Pod) -> InstanceState {
    instance(&rec(pod)).map_or(InstanceState::Unknown, |i| i.state)
}

#[test]
fn a_ready_pod_is_running_since_it_became_ready() {
    let pod = with_condition(pod(2), "PodScheduled", "True", 110, "");
    let pod = with_condition(pod, "Ready", "True", 120, "");
    let got = instance(&rec(&pod)).expect("an instance");
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
    let got = instance(&rec(&pod)).expect("an instance");
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
fn instances_carry_the_crash_count_and_the_last_crash_description() {
    let up = instance(&rec(&with_container(pod(0), running(), None, 0))).expect("up");
    assert_eq!((up.crash_count, up.crash_reason.as_str()), (0, ""));

    let down = with_container(pod(0), terminated(3, 130, "c1"), None, 0);
    let got = instance(&rec(&down)).expect("down");
    assert_eq!(
        (got.crash_count, got.crash_reason.as_str()),
        (1, "exited with status 3")
    );

    // Restarted twice; the kubelet's message describes the last termination.
    let mut last = terminated(137, 160, "c2");
    if let Some(t) = last.terminated.as_mut() {
        t.message = Some("memory limit exceeded".into());
    }
    let back = with_container(pod(0), running(), Some(last), 2);
    let got = instance(&rec(&back)).expect("back");
    assert_eq!(got.state, InstanceState::Claimed);
    assert_eq!(
        (got.crash_count, got.crash_reason.as_str()),
        (2, "memory limit exceeded")
    );
}

#[test]
fn pods_being_deleted_are_not_instances() {
    let mut pod = pod(0);
    pod.metadata.deletion_timestamp = Some(time(200));
    assert_eq!(instance(&rec(&pod)), None);
}

#[test]
fn a_restart_after_a_non_zero_exit_is_one_crash() {
    let up = with_container(pod(1), running(), None, 0);
    let (seen, crash) = observe(None, &rec(&up), true);
    assert_eq!(crash, None);

    let down = with_container(pod(1), terminated(3, 130, "c1"), None, 0);
    let (seen, crash) = observe(Some(&seen), &rec(&down), true);
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
    let (seen, crash) = observe(Some(&seen), &rec(&restarted), true);
    assert_eq!(crash, None, "the same termination is reported once");

    // It crashes again and is seen only after the next restart.
    let again = with_container(pod(1), backoff(), Some(terminated(137, 160, "c2")), 2);
    let (_, crash) = observe(Some(&seen), &rec(&again), true);
    let crash = crash.expect("the second crash");
    assert_eq!((crash.exit_status, crash.crash_count), (137, 2));
    assert_eq!(crash.reason, "OOMKilled");
}

#[test]
fn old_crashes_of_pods_first_seen_while_listing_are_not_reported() {
    let old = with_container(pod(0), running(), Some(terminated(1, 130, "c1")), 1);
    let (seen, crash) = observe(None, &rec(&old), false);
    assert_eq!(crash, None);
    let (_, crash) = observe(Some(&seen), &rec(&old), true);
    assert_eq!(crash, None);
}

#[test]
fn containers_killed_because_their_pod_is_deleted_are_not_crashes() {
    let mut stopping = with_container(pod(0), terminated(143, 130, "c1"), None, 0);
    stopping.metadata.deletion_timestamp = Some(time(129));
    assert_eq!(observe(None, &rec(&stopping), true).1, None);
}

#[test]
fn clean_exits_are_not_crashes() {
    let pod = with_container(pod(0), running(), Some(terminated(0, 130, "c1")), 1);
    assert_eq!(observe(None, &rec(&pod), true).1, None);
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
                    let (next, crash) = observe(seen.as_ref(), &rec(&state), true);
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

fn with_network(mut pod: Pod, ip: &str, ports: &[i32]) -> Pod {
    pod.status.get_or_insert_with(PodStatus::default).pod_ip = Some(ip.into());
    pod.spec.get_or_insert_with(PodSpec::default).containers = vec![Container {
        name: CONTAINER.into(),
        image: Some("nginx:1.27".into()),
        ports: Some(
            ports
                .iter()
                .map(|p| ContainerPort {
                    container_port: *p,
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        ..Container::default()
    }];
    pod
}

fn ready(pod: Pod) -> Pod {
    let pod = with_condition(pod, "PodScheduled", "True", 110, "");
    with_container(
        with_condition(pod, "Ready", "True", 120, ""),
        running(),
        None,
        0,
    )
}

/// The record keeps what instances, crashes and routes read, and nothing
/// else: a pod with more metadata, spec and status makes the same record.
#[test]
fn records_keep_only_what_the_backend_reads() {
    let full = with_network(ready(pod(3)), "10.1.2.3", &[8080, 9090]);
    let got = rec(&full);
    assert_eq!(got.uid.as_ref(), "uid-3");
    assert_eq!(got.name.as_ref(), "myapp-3");
    assert_eq!(got.index, Some(3));
    assert_eq!(
        got.process.as_ref().map(Process::id),
        Some(LrpId::new("guid", "v1"))
    );
    assert_eq!(got.node.as_deref(), Some("node-a"));
    assert_eq!(got.ip, "10.1.2.3".parse().ok());
    assert_eq!(got.ports.as_ref(), &[8080, 9090]);

    let mut fat = full.clone();
    fat.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("cloudfoundry.org/lrp".into(), "x".repeat(4096));
    fat.metadata.generate_name = Some("myapp-".into());
    if let Some(spec) = fat.spec.as_mut() {
        spec.hostname = Some("myapp-3".into());
        spec.containers.push(Container {
            name: "sidecar".into(),
            ports: Some(vec![ContainerPort {
                container_port: 15000,
                ..ContainerPort::default()
            }]),
            ..Container::default()
        });
    }
    if let Some(status) = fat.status.as_mut() {
        status.host_ip = Some("10.0.0.1".into());
        status.qos_class = Some("Guaranteed".into());
    }
    assert_eq!(rec(&fat), got);
}

/// Pods of one process share one copy of its guid, version, namespace and
/// node; purging drops the copies no record holds any more.
#[test]
fn records_share_interned_strings() {
    let mut strings = Strings::default();
    let mut first = pod(0);
    first.metadata.namespace = Some("acme-dev".into());
    let mut second = pod(1);
    second.metadata.namespace = Some("acme-dev".into());
    let (first, second) = (PodView::from(first), PodView::from(second));
    let (a, b) = (record(&first, &mut strings), record(&second, &mut strings));
    let (pa, pb) = (a.process.clone(), b.process.clone());
    let (Some(pa), Some(pb)) = (pa, pb) else {
        panic!("both pods belong to an LRP");
    };
    assert!(Arc::ptr_eq(&pa.guid, &pb.guid));
    assert!(Arc::ptr_eq(&pa.version, &pb.version));
    assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
    assert!(!Arc::ptr_eq(&a.uid, &b.uid));
    assert_eq!(strings.len(), 4, "guid, version, namespace, node");
    drop((a, pa));
    strings.purge();
    assert_eq!(strings.len(), 4, "the second record still holds them");
    drop((b, pb));
    strings.purge();
    assert!(strings.is_empty());
}

/// Only running, ready pods with an IP take traffic.
#[test]
fn ready_pods_with_an_ip_are_serving() {
    let up = rec(&with_network(ready(pod(2)), "10.0.0.7", &[8080]));
    let (process, index, ip, ports) = serving(&up).expect("serving");
    assert_eq!(process.id(), LrpId::new("guid", "v1"));
    assert_eq!((index, ports), (2, &[8080][..]));
    assert_eq!(ip.to_string(), "10.0.0.7");

    let no_ip = rec(&with_network(ready(pod(2)), "", &[8080]));
    assert_eq!(serving(&no_ip), None);
    let not_ready = rec(&with_network(pod(2), "10.0.0.7", &[8080]));
    assert_eq!(serving(&not_ready), None);
    let crashed = with_container(
        with_network(ready(pod(2)), "10.0.0.7", &[8080]),
        backoff(),
        Some(terminated(1, 130, "c1")),
        1,
    );
    assert_eq!(serving(&rec(&crashed)), None);
    let mut stopping = with_network(ready(pod(2)), "10.0.0.7", &[8080]);
    stopping.metadata.deletion_timestamp = Some(time(200));
    assert_eq!(serving(&rec(&stopping)), None);
}

/// The watch decodes pods as [`PodView`]s straight from the apiserver's JSON;
/// they make the same record as the whole pod, whatever else it carries.
#[test]
fn pods_decoded_as_views_make_the_same_records() {
    let mut full = with_network(ready(pod(3)), "10.1.2.3", &[8080]);
    full.metadata.managed_fields = Some(vec![Default::default()]);
    full.metadata.resource_version = Some("42".into());
    if let Some(spec) = full.spec.as_mut() {
        spec.containers[0].env = Some(vec![Default::default()]);
    }
    let json = serde_json::to_value(&full).expect("a pod as JSON");
    let view: PodView = serde_json::from_value(json).expect("a view");
    assert_eq!(view.metadata.managed_fields, None, "not decoded");
    assert_eq!(view.metadata.resource_version.as_deref(), Some("42"));
    assert_eq!(record(&view, &mut Strings::default()), rec(&full));
}
