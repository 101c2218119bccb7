//! Hostile input against every HTTP API of Cube — OPI, St8ge, the Registry
//! and the CC simulator — through `tower::ServiceExt::oneshot` on their real
//! routers (nothing leaves the process but loopback calls to fakes).
//!
//! Properties, for [`CASES`] generated inputs each:
//! - JSON bodies (arbitrary JSON; structural mutations of the valid
//!   fixtures: a field replaced by arbitrary JSON or removed; textual
//!   mutations: a byte range replaced by garbage, huge numbers, lone
//!   surrogates, NULs) are answered 2xx or 4xx, never 5xx, never a panic;
//!   every 4xx carries the service's error body with a message, and a 400
//!   after a structural mutation names a field;
//! - path parameters built from `..`, `%2e%2e`, `/`, `%2F`, NUL, invalid
//!   UTF-8 escapes and very long runs get the same answer, and never reach a
//!   file outside the service's data (the Registry's data dir stays the only
//!   thing in its parent; St8ge's buildpack route never serves a file beside
//!   its buildpacks directory);
//! - a body one byte over each API's limit gets 413.

#![allow(clippy::unwrap_used)]

mod common;

use common::opi_fixture;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, Uri, header};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Number, Value};
use tower::ServiceExt;

/// Generated inputs per property (CI runs everything on 2 cores).
const CASES: u32 = 256;

// ---------------------------------------------------------------- harness

struct Answer {
    status: StatusCode,
    body: Bytes,
}

async fn call(
    router: &Router,
    method: Method,
    uri: &Uri,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri.clone());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, body }
}

/// Runs `check` on [`CASES`] values of `strategy`, inside one runtime.
fn property<S: Strategy>(
    runtime: &tokio::runtime::Runtime,
    strategy: S,
    check: impl Fn(S::Value) -> futures::future::BoxFuture<'static, Result<(), TestCaseError>>,
) {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |value| runtime.block_on(check(value)));
    if let Err(failure) = result {
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

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The error bodies of Cube's services.
#[derive(Clone, Copy)]
enum Dialect {
    /// OPI and St8ge: `{"error":{"code","message"}}`.
    Opi,
    /// The Registry: `{"errors":[{"code","message"}]}`.
    Oci,
    /// The CC simulator: `{"code","description","error_code"}`.
    Cc,
}

/// The answer is 2xx/3xx or 4xx with the dialect's error body; returns the
/// error message of a 4xx.
fn client_answer(
    answer: &Answer,
    dialect: Dialect,
    head: bool,
) -> Result<Option<String>, TestCaseError> {
    let text = String::from_utf8_lossy(&answer.body);
    prop_assert!(
        !answer.status.is_server_error(),
        "server error {}: {text}",
        answer.status
    );
    if !answer.status.is_client_error() || head {
        return Ok(None);
    }
    let body: Value = serde_json::from_slice(&answer.body).map_err(|e| {
        TestCaseError::fail(format!(
            "{} with a non-JSON body ({e}): {text}",
            answer.status
        ))
    })?;
    let (code, message) = match dialect {
        Dialect::Opi => (&body["error"]["code"], &body["error"]["message"]),
        Dialect::Oci => (&body["errors"][0]["code"], &body["errors"][0]["message"]),
        Dialect::Cc => (&body["error_code"], &body["description"]),
    };
    let (Some(code), Some(message)) = (code.as_str(), message.as_str()) else {
        return Err(TestCaseError::fail(format!(
            "{} without an error code and message: {text}",
            answer.status
        )));
    };
    prop_assert!(!code.is_empty() && !message.trim().is_empty(), "{text}");
    Ok(Some(message.to_owned()))
}

/// A 400 after a structural mutation names a field of the body or a path
/// parameter.
fn names_a_field(
    answer: &Answer,
    message: &str,
    fields: &BTreeSet<String>,
) -> Result<(), TestCaseError> {
    if answer.status == StatusCode::BAD_REQUEST || answer.status == StatusCode::UNPROCESSABLE_ENTITY
    {
        // A field by name, or an element of a list body by index (`[0]: …`).
        let indexed = message
            .match_indices('[')
            .any(|(at, _)| message[at + 1..].starts_with(|c: char| c.is_ascii_digit()));
        prop_assert!(
            indexed || fields.iter().any(|f| message.contains(f.as_str())),
            "{} names no field: {message}",
            answer.status
        );
    }
    Ok(())
}

/// A hostile body's answer: [`client_answer`], and [`names_a_field`] when the
/// body was a fixture with one field changed.
fn body_refused(
    answer: &Answer,
    dialect: Dialect,
    body: &Hostile,
    fields: &BTreeSet<String>,
) -> Result<(), TestCaseError> {
    if let Some(message) = client_answer(answer, dialect, false)?
        && let Hostile::Mutated(_) = body
    {
        names_a_field(answer, &message, fields)?;
    }
    Ok(())
}

// ------------------------------------------------------------- strategies

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z_]{1,12}",
        ".{0,8}",
        Just(String::new()),
        Just("__proto__".to_owned()),
    ]
    .boxed()
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(-1)),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        Just(serde_json::json!(1e308)),
        ".{0,24}".prop_map(Value::String),
        "[a-z0-9./-]{0,40}".prop_map(Value::String),
        (1usize..40_000).prop_map(|n| Value::String("é\u{0}/..".repeat(n / 5 + 1))),
    ]
    .boxed()
}

/// Any JSON value: nested, wrong types, huge numbers, unicode, nulls.
fn json() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The path of every node of `value` but the root.
fn paths(value: &Value) -> Vec<Vec<Seg>> {
    fn walk(value: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        let children: Vec<(Seg, &Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (Seg::Key(k.clone()), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Index(i), v))
                .collect(),
            _ => Vec::new(),
        };
        for (seg, child) in children {
            prefix.push(seg);
            out.push(prefix.clone());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// Every object key in `value`.
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// Replaces (`Some`) or removes (`None`) the node at `path`.
fn edit(root: &mut Value, path: &[Seg], replacement: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for seg in parents {
        node = match seg {
            Seg::Key(k) => &mut node[k.as_str()],
            Seg::Index(i) => &mut node[*i],
        };
    }
    match (last, replacement, node) {
        (Seg::Key(k), Some(v), node) => node[k.as_str()] = v,
        (Seg::Key(k), None, Value::Object(map)) => {
            map.remove(k);
        }
        (Seg::Index(i), Some(v), node) => node[*i] = v,
        (Seg::Index(i), None, Value::Array(items)) => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// A body made from `fixture`.
#[derive(Debug, Clone)]
enum Hostile {
    /// One field replaced by arbitrary JSON or removed.
    Mutated(Value),
    /// A byte range of the fixture's text replaced by garbage.
    Garbled(Vec<u8>),
    /// Any JSON at all.
    Arbitrary(Value),
}

impl Hostile {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Hostile::Mutated(v) | Hostile::Arbitrary(v) => serde_json::to_vec(v).unwrap(),
            Hostile::Garbled(b) => b.clone(),
        }
    }
}

fn garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..16),
        Just(b"99999999999999999999999999999999".to_vec()),
        Just(b"-1e999".to_vec()),
        Just(b"\"\\ud800\"".to_vec()),
        Just(b"{".to_vec()),
        Just(b"\0".to_vec()),
        Just(b",,".to_vec()),
        Just(b"\xff\xfe".to_vec()),
    ]
    .boxed()
}

fn hostile(fixture: &str) -> BoxedStrategy<Hostile> {
    let value: Value = serde_json::from_str(fixture).unwrap();
    let all = paths(&value);
    let count = all.len();
    let text = fixture.as_bytes().to_vec();
    let len = text.len();
    prop_oneof![
        4 => (0..count, prop::option::of(json())).prop_map(move |(i, replacement)| {
            let mut v = value.clone();
            edit(&mut v, &all[i], replacement);
            Hostile::Mutated(v)
        }),
        2 => (0..=len, 0..=len, garbage()).prop_map(move |(a, b, insert)| {
            let (a, b) = (a.min(b), a.max(b));
            let mut bytes = text[..a].to_vec();
            bytes.extend_from_slice(&insert);
            bytes.extend_from_slice(&text[b..]);
            Hostile::Garbled(bytes)
        }),
        1 => json().prop_map(Hostile::Arbitrary),
    ]
    .boxed()
}

/// A path segment made of traversal, separators, NUL, bad escapes and long runs.
fn segment() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%2E%2E".to_owned()),
        Just("%2F".to_owned()),
        Just("/".to_owned()),
        Just("%00".to_owned()),
        Just("%ff".to_owned()),
        Just("%".to_owned()),
        Just("%C3%A9".to_owned()),
        Just("%20".to_owned()),
        Just("%0A".to_owned()),
        Just("~".to_owned()),
        Just("-".to_owned()),
        Just("a".repeat(300)),
        "[a-z0-9]{1,8}",
        "[A-Z_:@]{1,4}",
    ];
    prop::collection::vec(piece, 1..6)
        .prop_map(|pieces| pieces.concat())
        .boxed()
}

/// `template` with each `{}` replaced by the next segment; `None` when the
/// result is not a URI at all (no client could send it).
fn fill(template: &str, segments: &[String]) -> Option<Uri> {
    let mut uri = String::new();
    let mut rest = template;
    let mut segments = segments.iter();
    while let Some(at) = rest.find("{}") {
        uri.push_str(&rest[..at]);
        uri.push_str(segments.next()?);
        rest = &rest[at + 2..];
    }
    uri.push_str(rest);
    uri.parse().ok()
}

// -------------------------------------------------------------------- OPI

fn opi_router(max_body_bytes: usize) -> Router {
    let scheduler: Arc<dyn opi::Scheduler> = Arc::new(opi::memory::MemoryScheduler::new());
    opi::http::router(
        scheduler,
        opi::http::ApiConfig {
            max_body_bytes,
            ..opi::http::ApiConfig::default()
        },
        opi::http::ApiMetrics::register(&prometheus::Registry::new()).unwrap(),
    )
}

fn fields_of(fixtures: &[&str], params: &[&str]) -> BTreeSet<String> {
    let mut fields: BTreeSet<String> = params.iter().map(|p| (*p).to_owned()).collect();
    for fixture in fixtures {
        keys(&serde_json::from_str(fixture).unwrap(), &mut fields);
    }
    // Single letters and very short keys would match anything.
    fields.retain(|f| f.len() >= 3);
    fields
}

#[test]
fn opi_bodies_are_refused_naming_the_problem() {
    let rt = runtime();
    let router = opi_router(opi::http::DEFAULT_MAX_BODY_BYTES);
    let desire = opi_fixture("desire_buildpack.json");
    let docker = opi_fixture("desire_docker.json");
    let update = opi_fixture("update.json");
    let task = opi_fixture("task.json");
    let process_guid = |fixture: &str| {
        let v: Value = serde_json::from_str(fixture).unwrap();
        v["process_guid"].as_str().unwrap().to_owned()
    };
    let updated: Value = serde_json::from_str(&update).unwrap();
    let update_guid = format!(
        "{}-{}",
        updated["guid"].as_str().unwrap(),
        updated["version"].as_str().unwrap()
    );
    let routes: Vec<(Method, String, String)> = vec![
        (
            Method::PUT,
            format!("/apps/{}", process_guid(&desire)),
            desire.clone(),
        ),
        (
            Method::PUT,
            format!("/apps/{}", process_guid(&docker)),
            docker.clone(),
        ),
        (Method::POST, format!("/apps/{update_guid}"), update.clone()),
        (Method::POST, "/tasks/task-1".to_owned(), task.clone()),
    ];
    let fields = fields_of(
        &[&desire, &docker, &update, &task],
        &["process_guid", "guid", "version", "task_guid"],
    );
    let strategy = (0..routes.len()).prop_flat_map(move |i| (Just(i), hostile(&routes[i].2)));
    let routes: Vec<(Method, String, String)> = vec![
        (
            Method::PUT,
            format!("/apps/{}", process_guid(&desire)),
            String::new(),
        ),
        (
            Method::PUT,
            format!("/apps/{}", process_guid(&docker)),
            String::new(),
        ),
        (Method::POST, format!("/apps/{update_guid}"), String::new()),
        (Method::POST, "/tasks/task-1".to_owned(), String::new()),
    ];
    property(&rt, strategy, move |(i, body)| {
        let router = router.clone();
        let fields = fields.clone();
        let (method, uri, _) = routes[i].clone();
        Box::pin(async move {
            let answer = call(&router, method, &uri.parse().unwrap(), &[], body.bytes()).await;
            body_refused(&answer, Dialect::Opi, &body, &fields)?;
            Ok(())
        })
    });
}

#[test]
fn opi_path_parameters_are_refused_naming_the_problem() {
    let rt = runtime();
    let router = opi_router(opi::http::DEFAULT_MAX_BODY_BYTES);
    let desire = opi_fixture("desire_buildpack.json");
    let task = opi_fixture("task.json");
    let update = opi_fixture("update.json");
    let templates: Vec<(Method, &str, String)> = vec![
        (Method::GET, "/apps/{}/{}", String::new()),
        (Method::GET, "/apps/{}/{}/instances", String::new()),
        (Method::PUT, "/apps/{}/{}/stop", String::new()),
        (Method::PUT, "/apps/{}/{}/stop/{}", String::new()),
        (Method::GET, "/tasks/{}", String::new()),
        (Method::DELETE, "/tasks/{}", String::new()),
        (Method::PUT, "/apps/{}", desire),
        (Method::POST, "/apps/{}", update),
        (Method::POST, "/tasks/{}", task),
        (Method::POST, "/stage/{}", "{}".to_owned()),
    ];
    let count = templates.len();
    let strategy = (0..count, prop::collection::vec(segment(), 3));
    property(&rt, strategy, move |(i, segments)| {
        let router = router.clone();
        let (method, template, body) = templates[i].clone();
        Box::pin(async move {
            let Some(uri) = fill(template, &segments) else {
                return Ok(());
            };
            let answer = call(&router, method, &uri, &[], body.into_bytes()).await;
            client_answer(&answer, Dialect::Opi, false)?;
            Ok(())
        })
    });
}

#[test]
fn opi_bodies_over_the_limit_get_413() {
    let rt = runtime();
    let limit = 4096;
    let router = opi_router(limit);
    rt.block_on(async {
        for (method, uri) in [
            (Method::PUT, "/apps/a-b"),
            (Method::POST, "/apps/a-b"),
            (Method::POST, "/tasks/t1"),
        ] {
            let mut body = b"{\"x\":\"".to_vec();
            body.resize(limit + 1 - 2, b'a');
            body.extend_from_slice(b"\"}");
            assert_eq!(body.len(), limit + 1);
            let answer = call(&router, method.clone(), &uri.parse().unwrap(), &[], body).await;
            assert_eq!(
                answer.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{method} {uri}"
            );
            let message = client_answer(&answer, Dialect::Opi, false)
                .unwrap()
                .unwrap();
            assert!(message.contains(&limit.to_string()), "{message}");
        }
    });
}

// ------------------------------------------------------------------ St8ge

struct Stager {
    router: Router,
    dir: tempfile::TempDir,
}

/// St8ge over an OPI with a memory scheduler and a CC that accepts every
/// callback, its buildpacks in `<dir>/buildpacks` and a secret beside them.
async fn stager() -> Stager {
    let scheduler: Arc<dyn opi::Scheduler> = Arc::new(opi::memory::MemoryScheduler::new());
    let opi = opi::http::router(
        scheduler,
        opi::http::ApiConfig::default(),
        opi::http::ApiMetrics::register(&prometheus::Registry::new()).unwrap(),
    );
    let opi_addr = serve(opi).await;
    let cc_addr = serve(Router::new().fallback(|| async { StatusCode::OK })).await;
    let dir = tempfile::tempdir().unwrap();
    let buildpacks = dir.path().join("buildpacks");
    std::fs::create_dir_all(buildpacks.join("python/bin")).unwrap();
    std::fs::write(buildpacks.join("python/bin/detect"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(buildpacks.join("order"), "python\n").unwrap();
    std::fs::write(dir.path().join("secret"), "SECRET-BESIDE-BUILDPACKS").unwrap();
    let mut config = stager::Config::new(format!("http://{opi_addr}"));
    config.cc_url = Some(url::Url::parse(&format!("http://{cc_addr}")).unwrap());
    config.buildpacks_dir = Some(buildpacks);
    let metrics = stager::api::Metrics::register(&prometheus::Registry::new()).unwrap();
    let api = stager::service::api(&config, "127.0.0.1:8086".parse().unwrap(), metrics).unwrap();
    Stager {
        router: stager::api::router(Arc::new(api)),
        dir,
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn stager_bodies_and_paths_are_refused_naming_the_problem() {
    let rt = runtime();
    let stager = rt.block_on(stager());
    let router = stager.router.clone();
    let staging = read("stager/testdata/staging_request_buildpack.json");
    // Callbacks must go to the configured CC: point the fixture's there.
    let cc = {
        let v: Value = serde_json::from_str(&staging).unwrap();
        v["completion_callback"].as_str().unwrap().to_owned()
    };
    let completion = read("cc/testdata/staging_completion_task_callback.json");
    let fields = fields_of(&[&staging, &completion], &["staging_guid", "cc_callback"]);
    let strategy = (any::<bool>(), hostile(&staging), hostile(&completion));
    property(
        &rt,
        strategy,
        move |(stage, staging_body, completion_body)| {
            let router = router.clone();
            let fields = fields.clone();
            let _ = &cc;
            Box::pin(async move {
                let (uri, body) = if stage {
                    ("/stage/s-1".to_owned(), staging_body)
                } else {
                    (
                        "/stage/s-1/completed?cc_callback=http%3A%2F%2F127.0.0.1%3A1%2Fx"
                            .to_owned(),
                        completion_body,
                    )
                };
                let answer = call(
                    &router,
                    Method::POST,
                    &uri.parse().unwrap(),
                    &[],
                    body.bytes(),
                )
                .await;
                body_refused(&answer, Dialect::Opi, &body, &fields)?;
                Ok(())
            })
        },
    );
    let router = stager.router.clone();
    let templates: Vec<(Method, &str)> = vec![
        (Method::POST, "/stage/{}"),
        (Method::DELETE, "/stage/{}"),
        (Method::POST, "/stage/{}/completed"),
        (Method::GET, "/buildpacks/{}"),
        (Method::GET, "/buildpacks/..%2F{}"),
        (Method::GET, "/buildpacks/{}%2F..%2Fsecret"),
    ];
    let strategy = (0..templates.len(), segment());
    property(&rt, strategy, move |(i, segment)| {
        let router = router.clone();
        let (method, template) = templates[i].clone();
        Box::pin(async move {
            let Some(uri) = fill(template, &[segment]) else {
                return Ok(());
            };
            let answer = call(&router, method, &uri, &[], b"{}".to_vec()).await;
            client_answer(&answer, Dialect::Opi, false)?;
            prop_assert!(
                !String::from_utf8_lossy(&answer.body).contains("SECRET-BESIDE-BUILDPACKS"),
                "{uri} served a file outside the buildpacks"
            );
            Ok(())
        })
    });
    rt.block_on(async {
        let body = vec![b' '; stager::api::MAX_BODY_BYTES + 1];
        let answer = call(
            &stager.router,
            Method::POST,
            &"/stage/s-2".parse().unwrap(),
            &[],
            body,
        )
        .await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    });
    drop(stager.dir);
}

// --------------------------------------------------------------- Registry

#[test]
fn registry_bodies_and_names_are_refused_and_nothing_escapes_the_data_dir() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let router = rt.block_on(async {
        let mut config = registry::Config::new(&data);
        config.cc_url = Some(format!("http://127.0.0.1:{}", closed_port()));
        let state = registry::server::state(&config, &prometheus::Registry::new())
            .await
            .unwrap();
        registry::api::router(state)
    });
    let digest = format!("sha256:{}", "ab".repeat(32));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": 7}],
        "annotations": {"org.opencontainers.image.title": "fuzz"}
    })
    .to_string();
    let templates: Vec<(Method, &str, &'static str)> = vec![
        (Method::GET, "/v2/{}/manifests/{}", ""),
        (Method::HEAD, "/v2/{}/manifests/{}", ""),
        (Method::PUT, "/v2/{}/manifests/{}", "{}"),
        (Method::DELETE, "/v2/{}/manifests/{}", ""),
        (Method::GET, "/v2/{}/blobs/{}", ""),
        (Method::HEAD, "/v2/{}/blobs/{}", ""),
        (Method::POST, "/v2/{}/blobs/uploads/", ""),
        (Method::PATCH, "/v2/{}/blobs/uploads/{}", "x"),
        (Method::PUT, "/v2/{}/blobs/uploads/{}?digest={}", "x"),
        (Method::GET, "/v2/{}/tags/list", ""),
        (
            Method::POST,
            "/v2/cloudfoundry/{}/droplets?hash={}",
            "not a droplet",
        ),
        (Method::GET, "/v2/_catalog?n={}&last={}", ""),
    ];
    let strategy = (0..templates.len(), prop::collection::vec(segment(), 3));
    let paths_router = router.clone();
    property(&rt, strategy, move |(i, segments)| {
        let router = paths_router.clone();
        let (method, template, body) = templates[i].clone();
        Box::pin(async move {
            let Some(uri) = fill(template, &segments) else {
                return Ok(());
            };
            let head = method == Method::HEAD;
            let answer = call(&router, method, &uri, &[], body.as_bytes().to_vec()).await;
            client_answer(&answer, Dialect::Oci, head)?;
            Ok(())
        })
    });
    // Manifests and droplet-import requests: mutated and arbitrary JSON.
    let import = serde_json::json!({"uri": "http://127.0.0.1:1/droplet.tgz"}).to_string();
    let strategy = (any::<bool>(), hostile(&manifest), hostile(&import));
    let bodies_router = router.clone();
    property(&rt, strategy, move |(put_manifest, manifest, import)| {
        let router = bodies_router.clone();
        Box::pin(async move {
            let answer = if put_manifest {
                call(
                    &router,
                    Method::PUT,
                    &"/v2/fuzz/app/manifests/latest".parse().unwrap(),
                    &[(
                        header::CONTENT_TYPE.as_str(),
                        "application/vnd.oci.image.manifest.v1+json",
                    )],
                    manifest.bytes(),
                )
                .await
            } else {
                call(
                    &router,
                    Method::POST,
                    &"/v2/cloudfoundry/d-1/droplets?hash=abc".parse().unwrap(),
                    &[(header::CONTENT_TYPE.as_str(), "application/json")],
                    import.bytes(),
                )
                .await
            };
            // A URI the import accepts is fetched from CC (here: nothing
            // listens), and CC failing to deliver is the documented 502
            // UPSTREAM — a fault upstream, not a crash.
            let upstream = answer.status == StatusCode::BAD_GATEWAY
                && serde_json::from_slice::<Value>(&answer.body)
                    .is_ok_and(|b| b["errors"][0]["code"] == "UPSTREAM");
            if !upstream || put_manifest {
                client_answer(&answer, Dialect::Oci, false)?;
            }
            Ok(())
        })
    });
    rt.block_on(async {
        let body = vec![b' '; registry::manifest::MAX_MANIFEST_BYTES + 1];
        let answer = call(
            &router,
            Method::PUT,
            &"/v2/fuzz/app/manifests/big".parse().unwrap(),
            &[(
                header::CONTENT_TYPE.as_str(),
                "application/vnd.oci.image.manifest.v1+json",
            )],
            body,
        )
        .await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        client_answer(&answer, Dialect::Oci, false).unwrap();
    });
    assert_only_data_dir(root.path());
}

// ----------------------------------------------------------- CC simulator

#[test]
fn cc_sim_bodies_and_paths_are_refused_naming_the_problem() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let router = rt.block_on(async {
        let mut config = cc::sim::Config::new(&data);
        config.fake_apps = 3;
        let sim = cc::sim::Sim::open(
            config,
            "127.0.0.1:9".parse().unwrap(),
            &prometheus::Registry::new(),
        )
        .await
        .unwrap();
        sim.router()
    });
    let basic = cc::sim::auth::basic_header(
        &cc::sim::Config::new("x").username,
        &cc::sim::Config::new("x").password,
    );
    let manifest = serde_json::json!({
        "instances": 2, "memory_mb": 128, "disk_mb": 256, "buildpacks": ["python"],
        "stack": "cflinuxfs4", "command": "python app.py", "environment": {"GREETING": "hi"},
        "routes": ["fuzz.example.com"], "health_check_type": "http"
    })
    .to_string();
    let scale = serde_json::json!({"instances": 3}).to_string();
    let guids = serde_json::json!(["pg-1", "pg-2"]).to_string();
    let crashed = read("cc/testdata/app_crashed.json");
    let task = read("cc/testdata/task_completed.json");
    let staged = read("cc/testdata/staging_completion_buildpack.json");
    let bodies: Vec<(Method, &'static str, String)> = vec![
        (Method::PUT, "/sim/apps/fuzz", manifest.clone()),
        (Method::PUT, "/sim/apps/fuzz/scale", scale.clone()),
        (Method::POST, "/internal/bulk/apps", guids.clone()),
        (
            Method::POST,
            "/internal/v4/apps/8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d/crashed",
            crashed.clone(),
        ),
        (
            Method::POST,
            "/internal/v4/tasks/t-1/completed",
            task.clone(),
        ),
        (
            Method::POST,
            "/internal/v3/staging/b-1/build_completed",
            staged.clone(),
        ),
    ];
    let fields = fields_of(&[&manifest, &scale, &crashed, &task, &staged], &[]);
    let fixtures: Vec<String> = bodies.iter().map(|b| b.2.clone()).collect();
    let strategy = (0..bodies.len()).prop_flat_map(move |i| (Just(i), hostile(&fixtures[i])));
    let bodies_router = router.clone();
    let auth = basic.clone();
    property(&rt, strategy, move |(i, body)| {
        let router = bodies_router.clone();
        let fields = fields.clone();
        let (method, uri, _) = bodies[i].clone();
        let auth = auth.clone();
        Box::pin(async move {
            let headers = [(header::AUTHORIZATION.as_str(), auth.as_str())];
            let answer = call(
                &router,
                method,
                &uri.parse().unwrap(),
                &headers,
                body.bytes(),
            )
            .await;
            body_refused(&answer, Dialect::Cc, &body, &fields)?;
            Ok(())
        })
    });
    let templates: Vec<(Method, &str)> = vec![
        (Method::GET, "/sim/apps/{}"),
        (Method::PUT, "/sim/apps/{}"),
        (Method::DELETE, "/sim/apps/{}"),
        (Method::POST, "/sim/apps/{}/start"),
        (Method::PUT, "/sim/apps/{}/bits"),
        (Method::GET, "/internal/bulk/apps?batch_size={}&token={}"),
        (Method::GET, "/internal/v2/droplets/{}/{}/download"),
        (Method::GET, "/staging/packages/{}"),
        (Method::GET, "/staging/jobs/{}"),
        (Method::POST, "/internal/v4/droplets/{}/upload"),
    ];
    let strategy = (0..templates.len(), prop::collection::vec(segment(), 2));
    let paths_router = router.clone();
    let basic_413 = basic.clone();
    property(&rt, strategy, move |(i, segments)| {
        let router = paths_router.clone();
        let (method, template) = templates[i].clone();
        let auth = basic.clone();
        Box::pin(async move {
            let Some(uri) = fill(template, &segments) else {
                return Ok(());
            };
            let headers = [(header::AUTHORIZATION.as_str(), auth.as_str())];
            let answer = call(&router, method, &uri, &headers, b"{}".to_vec()).await;
            client_answer(&answer, Dialect::Cc, false)?;
            Ok(())
        })
    });
    rt.block_on(async {
        // JSON routes stop at their own limit, not the droplet uploads' 2 GiB.
        let body = vec![b' '; cc::sim::MAX_JSON_BYTES + 1];
        for (method, uri) in [
            (Method::PUT, "/sim/apps/fuzz"),
            (Method::PUT, "/sim/apps/fuzz/scale"),
            (Method::POST, "/internal/bulk/apps"),
            (Method::POST, "/internal/v4/tasks/t-1/completed"),
            (Method::POST, "/internal/v3/staging/b-1/build_completed"),
        ] {
            let headers = [
                (header::AUTHORIZATION.as_str(), basic_413.as_str()),
                (header::CONTENT_TYPE.as_str(), "application/json"),
            ];
            let answer = call(
                &router,
                method,
                &uri.parse().unwrap(),
                &headers,
                body.clone(),
            )
            .await;
            assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
            client_answer(&answer, Dialect::Cc, false).unwrap();
        }
    });
    assert_only_data_dir(root.path());
}

/// Nothing but the service's `data` dir appears in `root`: hostile names
/// wrote nothing beside it.
fn assert_only_data_dir(root: &std::path::Path) {
    let beside: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        beside,
        vec![std::ffi::OsString::from("data")],
        "nothing is written outside the data dir"
    );
}
