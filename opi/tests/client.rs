//! `OpiClient` against the real router on 127.0.0.1: every method, and errors
//! coming back as the right `opi::Error` variants.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use opi::http::{ApiConfig, ApiMetrics, OpiClient, router};
use opi::memory::MemoryScheduler;
use opi::model::LrpId;
use opi::model::wire::{DesireLrpRequest, LrpUpdateBody, TaskRequest, UpdateLrpRequest};
use opi::{Error, Scheduler};

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let text =
        std::fs::read_to_string(format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn start() -> (Arc<MemoryScheduler>, OpiClient) {
    let memory = Arc::new(MemoryScheduler::new());
    let app = router(
        memory.clone(),
        ApiConfig::default(),
        ApiMetrics::unregistered(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (memory, OpiClient::new(&format!("http://{addr}/")).unwrap())
}

#[tokio::test]
async fn every_method_round_trips() {
    let (memory, client) = start().await;
    let desire: DesireLrpRequest = fixture("desire_buildpack.json");
    let id = LrpId::new(desire.guid.clone(), desire.version.clone());
    client.desire(&desire).await.unwrap();
    assert_eq!(client.list().await.unwrap()[0].annotation, "1529425339.0");
    assert_eq!(client.get(&id).await.unwrap().instances, 3);
    assert_eq!(client.instances(&id).await.unwrap().instances.len(), 3);

    let update = UpdateLrpRequest {
        guid: id.guid.clone(),
        version: id.version.clone(),
        update: LrpUpdateBody {
            instances: Some(1),
            ..LrpUpdateBody::default()
        },
    };
    client.update(&update).await.unwrap();
    assert_eq!(client.get(&id).await.unwrap().instances, 1);
    client.stop_instance(&id, 0).await.unwrap();

    let task: TaskRequest = fixture("task.json");
    client.desire_task("t-1", &task).await.unwrap();
    assert_eq!(client.list_tasks().await.unwrap().len(), 1);
    assert_eq!(client.get_task("t-1").await.unwrap().state, "RUNNING");
    client.cancel_task("t-1").await.unwrap();
    assert_eq!(
        client.get_task("t-1").await.unwrap().failure_reason,
        "cancelled"
    );

    client.stop(&id).await.unwrap();
    assert!(memory.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn errors_come_back_as_their_variants() {
    let (memory, client) = start().await;
    let id = LrpId::new("nope", "v1");
    assert!(matches!(client.get(&id).await, Err(Error::NotFound(_))));
    assert!(matches!(
        client.stop_instance(&id, 3).await,
        Err(Error::NotFound(_))
    ));

    let mut bad: DesireLrpRequest = fixture("desire_buildpack.json");
    bad.memory_mb = 0;
    match client.desire(&bad).await {
        Err(Error::BadBody(message)) => assert!(message.contains("memory_mb"), "{message}"),
        other => panic!("expected a 400, got {other:?}"),
    }

    let task: TaskRequest = fixture("task.json");
    client.desire_task("t-2", &task).await.unwrap();
    assert!(matches!(
        client.desire_task("t-2", &task).await,
        Err(Error::Conflict(_))
    ));

    memory.set_unavailable(true);
    assert!(matches!(client.list().await, Err(Error::Unavailable(_))));

    // Nobody listening: Unavailable too, so callers retry.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let gone = OpiClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    assert!(matches!(gone.list().await, Err(Error::Unavailable(_))));
}

/// Cube's `steps` extension crosses the wire in order (and is absent from
/// bodies without steps, so CC's payloads stay as they were); a bad step
/// comes back as a 400 naming it.
#[tokio::test]
async fn task_steps_round_trip() {
    let (memory, client) = start().await;
    let mut task =
        opi::model::validate::task("t-steps", fixture::<TaskRequest>("task.json")).unwrap();
    let plain = serde_json::to_value(TaskRequest::from(&task)).unwrap();
    assert!(plain.get("steps").is_none(), "{plain}");

    task.lifecycle = opi::model::LrpLifecycle::Docker {
        image: "cube/stager".into(),
        command: Vec::new(),
        credentials: None,
    };
    task.steps = ["download", "build", "upload"]
        .into_iter()
        .map(|name| opi::model::TaskStep {
            name: name.into(),
            command: vec!["cube".into(), "stage".into(), name.into()],
        })
        .collect();
    let wire = serde_json::to_value(TaskRequest::from(&task)).unwrap();
    assert_eq!(wire["steps"][1]["command"][2], "build", "{wire}");
    client.desire_task_spec(&task).await.unwrap();

    let ran = std::sync::Mutex::new(Vec::new());
    memory
        .run_steps("t-steps", |step| {
            ran.lock().unwrap().push(step.command.join(" "));
            i32::from(step.name == "build") * 2
        })
        .unwrap();
    assert_eq!(
        *ran.lock().unwrap(),
        ["cube stage download", "cube stage build"],
        "steps run in order and stop at the first failure"
    );
    let status = client.get_task("t-steps").await.unwrap();
    assert!(status.failed);
    assert_eq!(
        status.failure_reason,
        "step build failed: exited with status 2"
    );

    let mut bad = TaskRequest::from(&task);
    bad.guid = "t-bad-steps".into();
    bad.steps[1].name = "Build!".into();
    match client.desire_task("t-bad-steps", &bad).await {
        Err(Error::BadBody(message)) => assert!(message.contains("steps[1].name"), "{message}"),
        other => panic!("expected a 400, got {other:?}"),
    }
}
