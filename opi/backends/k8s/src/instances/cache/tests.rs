use super::*;
use crate::labels;

fn pod(uid: &str, index: u32, ready: bool, ip: &str, restarts: i32) -> PodView {
    let last_state = if restarts > 0 {
        serde_json::json!({"terminated": {
            "exitCode": 1, "reason": "Error",
            "finishedAt": "2026-11-23T10:00:00Z",
            "containerID": format!("containerd://{uid}-{restarts}"),
        }})
    } else {
        serde_json::json!({})
    };
    serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("myapp-{index}"),
            "namespace": "acme-dev",
            "uid": uid,
            "creationTimestamp": "2026-11-23T09:00:00Z",
            "labels": {labels::POD_INDEX: index.to_string()},
            "annotations": {labels::PROCESS_GUID: "guid", labels::VERSION: "v1"},
        },
        "spec": {
            "nodeName": "node-a",
            "containers": [{"name": "opi", "ports": [{"containerPort": 8080}]}],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-23T09:00:01Z"},
                {"type": "Ready", "status": if ready { "True" } else { "False" },
                 "lastTransitionTime": "2026-11-23T09:00:02Z"},
            ],
            "containerStatuses": [{
                "name": "opi", "image": "nginx", "imageID": "", "ready": ready,
                "restartCount": restarts,
                "state": {"running": {"startedAt": "2026-11-23T10:00:01Z"}},
                "lastState": last_state,
            }],
        },
    }))
    .expect("a pod")
}

fn cache() -> (PodCache, Changes) {
    let changes = Changes::default();
    (PodCache::new(changes.clone()), changes)
}

fn id() -> LrpId {
    LrpId::new("guid", "v1")
}

/// A relist keeps the pods listed again (with their crash memory) and drops
/// the ones deleted while the watch was away.
#[test]
fn a_relist_drops_unlisted_pods_and_reports_no_crash_twice() {
    let (cache, _) = cache();
    cache.relisting();
    assert_eq!(cache.apply(&pod("a", 0, true, "10.0.0.1", 0), true), None);
    assert_eq!(cache.apply(&pod("b", 1, true, "10.0.0.2", 0), true), None);
    cache.listed();
    assert_eq!(cache.len(), 2);

    // Pod a crashes and is restarted: one crash.
    let crashed = pod("a", 0, true, "10.0.0.1", 1);
    let crash = cache.apply(&crashed, false).expect("a crash");
    assert_eq!((crash.index, crash.instance.as_str()), (0, "a"));
    assert_eq!(crash.cell_id, "node-a");

    // The watch is lost; b is deleted meanwhile; the relist shows a again.
    cache.relisting();
    assert_eq!(cache.apply(&crashed, true), None, "reported already");
    assert_eq!(cache.len(), 2, "b stays until the relist ends");
    cache.listed();
    assert_eq!(cache.len(), 1);
    let mut got = cache.instances("acme-dev", &id());
    got.sort_by_key(|i| i.index);
    assert_eq!(got.iter().map(|i| i.index).collect::<Vec<_>>(), [0]);
    assert!(cache.instances("other", &id()).is_empty());
    assert!(
        cache
            .instances("acme-dev", &LrpId::new("guid", "v2"))
            .is_empty()
    );
}

/// A pod first met while listing may show a crash from before Cube
/// started: not reported, but a later one is.
#[test]
fn crashes_older_than_the_first_listing_are_not_reported() {
    let (cache, _) = cache();
    cache.relisting();
    assert_eq!(cache.apply(&pod("a", 0, true, "10.0.0.1", 1), true), None);
    cache.listed();
    let crash = cache.apply(&pod("a", 0, true, "10.0.0.1", 2), false);
    assert_eq!(crash.map(|c| c.crash_count), Some(2));
}

/// The change counter moves when a pod starts or stops serving or a serving
/// pod's address changes, and not on other status churn.
#[test]
fn changes_count_only_what_routers_see() {
    let (cache, changes) = cache();
    let mut expected = changes.current();
    let mut step = |pod: Option<PodView>, delete: Option<PodView>, bumps: bool| {
        if let Some(pod) = pod {
            cache.apply(&pod, false);
        }
        if let Some(pod) = delete {
            cache.delete(&pod);
        }
        if bumps {
            expected += 1;
        }
        assert_eq!(changes.current(), expected);
    };
    step(Some(pod("a", 0, false, "", 0)), None, false);
    step(Some(pod("a", 0, false, "10.0.0.1", 0)), None, false);
    step(Some(pod("a", 0, true, "10.0.0.1", 0)), None, true);
    step(Some(pod("a", 0, true, "10.0.0.1", 0)), None, false);
    let mut churn = pod("a", 0, true, "10.0.0.1", 0);
    if let Some(status) = churn.status.as_mut() {
        status.host_ip = Some("10.9.9.9".into());
        status.start_time = None;
    }
    step(Some(churn), None, false);
    step(Some(pod("a", 0, true, "10.0.0.9", 0)), None, true);
    step(Some(pod("b", 1, false, "10.0.0.2", 0)), None, false);
    step(None, Some(pod("b", 1, false, "10.0.0.2", 0)), false);
    step(None, Some(pod("a", 0, true, "10.0.0.9", 0)), true);
    assert!(cache.is_empty());

    // A relist that no longer shows a serving pod.
    step(Some(pod("c", 2, true, "10.0.0.3", 0)), None, true);
    cache.relisting();
    cache.listed();
    expected += 1;
    assert_eq!(changes.current(), expected);
}
