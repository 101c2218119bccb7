//! A hostile BBS: every answer is garbage, a truncated or bit-flipped valid
//! protobuf, or an event stream of junk. The client, the event stream and
//! the backend above them must return errors (or whatever decodes), never
//! panic and never hang.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use opi::Scheduler;
use opi::model::LrpId;
use opi_diego::{BbsClient, DiegoConfig, DiegoError, DiegoScheduler, events, proto, translate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Cases per property.
const CASES: u32 = 256;

/// A plain-HTTP "BBS" answering every request 200 with `body`.
async fn hostile_bbs(body: Arc<Mutex<Vec<u8>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = body.lock().unwrap().clone();
            tokio::spawn(async move {
                // Read the request head and its body (Content-Length).
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let events = String::from_utf8_lossy(&request).contains("/v1/events/");
                let content_type = if events {
                    "text/event-stream"
                } else {
                    "application/x-protobuf"
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

fn sample_lrp() -> opi::model::DesiredLrp {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/desire_buildpack.json"
    ))
    .unwrap();
    let request: opi::model::wire::DesireLrpRequest = serde_json::from_str(&fixture).unwrap();
    let process_guid = request.process_guid.clone();
    opi::model::validate::desire(&process_guid, request).unwrap()
}

/// Valid BBS answers to start mutating from.
fn valid_answers() -> Vec<Vec<u8>> {
    let lrp = translate::lrp::desired_lrp(&sample_lrp(), "127.0.0.1:8087").unwrap();
    vec![
        proto::DesiredLrpResponse {
            error: None,
            desired_lrp: Some(lrp.clone()),
        }
        .encode_to_vec(),
        proto::DesiredLrpResponse {
            error: Some(proto::Error {
                r#type: 5,
                message: "resource not found".into(),
            }),
            desired_lrp: None,
        }
        .encode_to_vec(),
        lrp.encode_to_vec(),
    ]
}

#[derive(Debug, Clone)]
enum Answer {
    Garbage(Vec<u8>),
    Truncated(usize, usize),
    Flipped(usize, usize, u8),
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Answer::Garbage),
        (0usize..3, any::<usize>()).prop_map(|(i, at)| Answer::Truncated(i, at)),
        (0usize..3, any::<usize>(), 1u8..=255)
            .prop_map(|(i, at, bits)| Answer::Flipped(i, at, bits)),
    ]
}

fn bytes_of(answer: &Answer, valid: &[Vec<u8>]) -> Vec<u8> {
    match answer {
        Answer::Garbage(bytes) => bytes.clone(),
        Answer::Truncated(i, at) => {
            let v = &valid[*i];
            v[..at % (v.len() + 1)].to_vec()
        }
        Answer::Flipped(i, at, bits) => {
            let mut v = valid[*i].clone();
            let at = at % v.len();
            v[at] ^= bits;
            v
        }
    }
}

fn run(
    strategy: impl Strategy<Value = Answer>,
    check: impl Fn(Vec<u8>) -> Result<(), TestCaseError>,
) {
    let valid = valid_answers();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(failure) = runner.run(&strategy, |answer| check(bytes_of(&answer, &valid))) {
        panic!("{failure}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An error from a hostile answer says what failed.
fn named(result: Result<impl Sized, DiegoError>) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(
            !e.to_string().trim().is_empty(),
            "an error without a message"
        );
    }
    Ok(())
}

#[test]
fn the_client_returns_errors_for_malformed_protobuf() {
    let rt = runtime();
    let slot = Arc::new(Mutex::new(Vec::new()));
    let url = rt.block_on(hostile_bbs(slot.clone()));
    let client = BbsClient::new(url.parse().unwrap(), None).unwrap();
    let lrp = translate::lrp::desired_lrp(&sample_lrp(), "127.0.0.1:8087").unwrap();
    run(answer(), |body| {
        *slot.lock().unwrap() = body;
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                named(client.ping().await)?;
                named(client.desired_lrp("pg-1").await)?;
                named(client.scheduling_infos("cf-apps", &[]).await)?;
                named(client.actual_lrps("cf-apps", "pg-1").await)?;
                named(client.tasks("cf-tasks").await)?;
                named(client.task("t-1").await)?;
                named(client.desire_lrp(lrp.clone()).await)?;
                named(client.remove_lrp("pg-1").await)?;
                named(client.cancel_task("t-1").await)?;
                Ok(())
            })
            .await
            .map_err(|_| TestCaseError::fail("a call hung on a malformed answer"))?
        })
    });
}

#[test]
fn event_streams_of_junk_end_in_errors() {
    let rt = runtime();
    let slot = Arc::new(Mutex::new(Vec::new()));
    let url = rt.block_on(hostile_bbs(slot.clone()));
    let client = BbsClient::new(url.parse().unwrap(), None).unwrap();
    let frames = prop_oneof![
        // Raw junk.
        prop::collection::vec(any::<u8>(), 0..512),
        // Well-framed events whose data is junk, not base64, or base64 of junk.
        prop::collection::vec(
            (
                prop_oneof![
                    Just("actual_lrp_crashed".to_owned()),
                    Just("actual_lrp_instance_changed".to_owned()),
                    Just("task_changed".to_owned()),
                    "[a-z_]{0,12}",
                ],
                prop_oneof![
                    "[A-Za-z0-9+/=]{0,60}",
                    ".{0,30}",
                    prop::collection::vec(any::<u8>(), 0..60).prop_map(|b| {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD.encode(b)
                    }),
                ],
            ),
            0..6,
        )
        .prop_map(|frames| {
            frames
                .iter()
                .enumerate()
                .map(|(i, (e, d))| format!("id: {i}\nevent: {e}\ndata: {d}\n\n"))
                .collect::<String>()
                .into_bytes()
        }),
    ];
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&frames, |body| {
        *slot.lock().unwrap() = body;
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                for path in [events::LRP_INSTANCES_PATH, events::TASKS_PATH] {
                    let response = client
                        .subscribe(path)
                        .await
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let all: Vec<_> = events::stream(response).collect().await;
                    for event in all {
                        named(event)?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(|_| TestCaseError::fail("the event stream hung"))?
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn the_backend_answers_malformed_bbs_replies_with_errors() {
    let rt = runtime();
    let slot = Arc::new(Mutex::new(Vec::new()));
    let url = rt.block_on(hostile_bbs(slot.clone()));
    let scheduler = rt.block_on(async {
        DiegoScheduler::new(DiegoConfig {
            bbs_url: url.parse().unwrap(),
            tls: None,
            registry: "127.0.0.1:8087".into(),
            domain_ttl: Duration::from_secs(120),
        })
        .unwrap()
    });
    let lrp = sample_lrp();
    let id: LrpId = lrp.id.clone();
    run(answer(), |body| {
        *slot.lock().unwrap() = body;
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                let check = |r: Result<(), opi::Error>| -> Result<(), TestCaseError> {
                    if let Err(e) = r {
                        prop_assert!(!e.to_string().trim().is_empty());
                    }
                    Ok(())
                };
                check(scheduler.list().await.map(drop))?;
                check(scheduler.get(&id).await.map(drop))?;
                check(scheduler.instances(&id).await.map(drop))?;
                check(scheduler.list_tasks().await.map(drop))?;
                check(scheduler.get_task("t-1").await.map(drop))?;
                check(scheduler.desire(lrp.clone()).await)?;
                check(scheduler.stop(&id).await)?;
                Ok(())
            })
            .await
            .map_err(|_| TestCaseError::fail("a call hung on a malformed answer"))?
        })
    });
}

#[tokio::test]
async fn an_answer_over_the_limit_is_refused_unread() {
    // A "BBS" that announces more than the client accepts, then stalls.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
                    opi_diego::client::MAX_ANSWER_BYTES + 1
                );
                let _ = socket.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    let client = BbsClient::new(url.parse().unwrap(), None).unwrap();
    let error = tokio::time::timeout(Duration::from_secs(10), client.tasks("cf-tasks"))
        .await
        .expect("refused at once, not read")
        .unwrap_err();
    assert!(error.to_string().contains("bytes"), "{error}");
}
