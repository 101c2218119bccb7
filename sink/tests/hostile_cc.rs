//! The Sink against a Cloud Controller that answers malformed bulk pages:
//! not JSON, wrong types, a missing or non-advancing token, a token that
//! cycles back, the same process guid twice, a page larger than asked for,
//! and unreadable or absurd full records. Each must fail the cycle with an
//! error naming the problem, and OPI must receive no write at all — above
//! all, no stop of an app CC still desires.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use opi::Scheduler;
use opi::memory::MemoryScheduler;
use serde_json::{Value, json};
use sink::{Config, Settings};

/// What the scripted CC answers: bulk pages by the token id asked for (an
/// empty last page when unscripted), and the body of `POST /internal/bulk/apps`.
#[derive(Clone, Default)]
struct Script {
    pages: BTreeMap<u64, Vec<u8>>,
    records: Vec<u8>,
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../cc/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn fingerprints() -> Vec<Value> {
    fixture("bulk_fingerprints_page.json")["fingerprints"]
        .as_array()
        .unwrap()
        .clone()
}

fn page(fingerprints: &[Value], token: Value) -> Vec<u8> {
    json!({"fingerprints": fingerprints, "token": token})
        .to_string()
        .into_bytes()
}

/// CC's two apps in one page, then the end.
fn legit() -> Script {
    Script {
        pages: BTreeMap::from([(0, page(&fingerprints(), json!({"id": 57})))]),
        records: fixture("bulk_desired_apps.json").to_string().into_bytes(),
    }
}

/// A legit walk whose first app has a new etag (so its record is fetched).
fn changed_etag() -> Script {
    let mut fps = fingerprints();
    fps[0]["etag"] = json!("1800000000.0");
    Script {
        pages: BTreeMap::from([(0, page(&fps, json!({"id": 57})))]),
        ..legit()
    }
}

struct World {
    script: Arc<Mutex<Script>>,
    memory: Arc<MemoryScheduler>,
    writes: Arc<Mutex<Vec<String>>>,
    converger: sink::Converger,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn world() -> World {
    let script = Arc::new(Mutex::new(legit()));
    let pages = script.clone();
    let records = script.clone();
    let cc = axum::Router::new().route(
        "/internal/bulk/apps",
        axum::routing::get(move |RawQuery(query): RawQuery| {
            let pages = pages.clone();
            async move {
                let query = query.unwrap_or_default();
                let token = reqwest::Url::parse(&format!("http://cc/?{query}"))
                    .unwrap()
                    .query_pairs()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let id = serde_json::from_str::<Value>(&token).unwrap_or(Value::Null)["id"]
                    .as_u64()
                    .unwrap_or(0);
                let body = pages
                    .lock()
                    .unwrap()
                    .pages
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| br#"{"fingerprints":[],"token":{"id":null}}"#.to_vec());
                (StatusCode::OK, body)
            }
        })
        .post(move || {
            let records = records.clone();
            async move { (StatusCode::OK, records.lock().unwrap().records.clone()) }
        }),
    );
    let cc_url = serve(cc).await;

    let memory = Arc::new(MemoryScheduler::new());
    let writes: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = writes.clone();
    let opi = opi::http::router(
        memory.clone(),
        opi::http::ApiConfig::default(),
        opi::http::ApiMetrics::register(&prometheus::Registry::new()).unwrap(),
    )
    .layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            if req.method() != Method::GET {
                recorded
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", req.method(), req.uri().path()));
            }
            async move { next.run(req).await.into_response() }
        },
    ));
    let opi_url = serve(opi).await;
    let mut cc = cc::ClientConfig::new(cc_url);
    cc.retry = cc::RetryPolicy::none();
    let config = Config {
        cc,
        opi_url,
        registry_url: None,
        interval: Duration::from_secs(15),
        settings: Settings {
            batch_size: 10,
            ..Settings::default()
        },
        leader_election: None,
    };
    let converger = sink::converger(&config, &prometheus::Registry::new()).unwrap();
    World {
        script,
        memory,
        writes,
        converger,
    }
}

static CASES: AtomicU64 = AtomicU64::new(0);

/// With `script`, one cycle fails naming `problem` and writes nothing; the
/// legit CC afterwards converges with no write either (nothing was lost).
async fn refused(world: &World, script: Script, problem: &str) {
    CASES.fetch_add(1, Ordering::Relaxed);
    *world.script.lock().unwrap() = script;
    let before = world.writes.lock().unwrap().len();
    let lrps = world.memory.list().await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), world.converger.cycle())
        .await
        .unwrap_or_else(|_| panic!("the cycle never ended ({problem})"));
    let error = outcome.expect_err(problem).to_string();
    assert!(
        error.contains(problem),
        "the error names the problem ({problem}): {error}"
    );
    let writes = world.writes.lock().unwrap()[before..].to_vec();
    assert!(writes.is_empty(), "{problem}: OPI got writes {writes:?}");
    assert_eq!(world.memory.list().await.unwrap(), lrps);
    *world.script.lock().unwrap() = legit();
    let report = world.converger.cycle().await.unwrap();
    assert_eq!(report.writes(), 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bulk_pages_fail_the_cycle_and_write_nothing() {
    let world = world().await;
    let report = world.converger.cycle().await.unwrap();
    assert_eq!(report.desired, 2, "{report:?}");
    let fps = fingerprints();
    let one = |token: Value| page(&fps[..1], token);

    refused(
        &world,
        Script {
            pages: BTreeMap::from([(0, b"<html>bad gateway</html>".to_vec())]),
            ..legit()
        },
        "expected value",
    )
    .await;
    refused(
        &world,
        Script {
            pages: BTreeMap::from([(0, json!({"fingerprints": fps}).to_string().into_bytes())]),
            ..legit()
        },
        "token",
    )
    .await;
    refused(
        &world,
        Script {
            pages: BTreeMap::from([(
                0,
                json!({"fingerprints": {"a": 1}, "token": {"id": 1}})
                    .to_string()
                    .into_bytes(),
            )]),
            ..legit()
        },
        "invalid type",
    )
    .await;
    refused(
        &world,
        Script {
            pages: BTreeMap::from([(0, one(json!({"id": 0})))]),
            ..legit()
        },
        "must advance the token",
    )
    .await;
    // A token that goes back to an earlier page would walk for ever.
    refused(
        &world,
        Script {
            pages: BTreeMap::from([(0, one(json!({"id": 5}))), (5, one(json!({"id": 3})))]),
            ..legit()
        },
        "must advance the token",
    )
    .await;
    // The same process guid twice (on two pages, with two etags).
    let mut again = fps[0].clone();
    again["etag"] = json!("1900000000.0");
    refused(
        &world,
        Script {
            pages: BTreeMap::from([
                (0, page(&fps, json!({"id": 5}))),
                (5, page(&[again], json!({"id": 9}))),
            ]),
            ..legit()
        },
        "twice",
    )
    .await;
    // More fingerprints than the batch size asked for.
    let many: Vec<Value> = (0..11)
        .map(|i| json!({"process_guid": format!("pg-{i}-v1"), "etag": "1.0"}))
        .collect();
    refused(
        &world,
        Script {
            pages: BTreeMap::from([(0, page(&many, json!({"id": 11})))]),
            ..legit()
        },
        "batch_size",
    )
    .await;
    // Full records that are not JSON, or absurd.
    refused(
        &world,
        Script {
            records: b"[{\"process_guid\":".to_vec(),
            ..changed_etag()
        },
        "EOF",
    )
    .await;
    let mut absurd = fixture("bulk_desired_apps.json");
    absurd[0]["num_instances"] = json!(4_294_967_296u64);
    refused(
        &world,
        Script {
            records: absurd.to_string().into_bytes(),
            ..changed_etag()
        },
        "num_instances",
    )
    .await;
    assert_eq!(CASES.load(Ordering::Relaxed), 9);
}
