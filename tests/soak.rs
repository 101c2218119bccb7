//! A bounded soak of OPI with the Kubernetes backend on the fake apiserver,
//! failure injection on: many concurrent clients issue mixed desire /
//! update / new version / stop / instances calls, retrying failed calls as
//! the Sink would; then faults go off, one reconciliation pass runs (as the
//! Sink's next cycle), and the cluster must equal the clients' model of
//! desired state — and the process's memory must be back near its baseline.
//!
//! `CUBE_SOAK_SECS` (default 30, at most 300) sets the loaded duration,
//! `CUBE_SOAK_CLIENTS` (default 32) the concurrency. Figures are printed
//! (`cargo test --test soak -- --nocapture`) and recorded in RELIABILITY.md.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opi_k8s::{Config, K8sScheduler, labels};
use serde_json::{Value, json};
use testkit::FakeApiServer;
use testkit::apiserver::Fault;

/// Apps each client owns (clients never touch each other's apps, so the
/// model of desired state is exact).
const APPS_PER_CLIENT: usize = 4;
/// Attempts per call before the client gives up (as a Sink cycle would).
const ATTEMPTS: u32 = 40;
/// Injected failure rate per fault kind: one request in this many.
const ONE_IN: u32 = 80;
/// Fault kinds injected (500, 409, 504 and 429), so about 5 % of requests fail.
const FAULT_STATUSES: [u16; 4] = [500, 409, 504, 429];
/// How long calls in flight at the end of a phase may still retry.
const RETRY_GRACE: Duration = Duration::from_secs(30);
/// How long the final cycle may retry its writes.
const REPAIR_TIME: Duration = Duration::from_secs(90);
/// How long the cluster may take to settle after the final cycle.
const SETTLE_TIME: Duration = Duration::from_secs(120);
/// How long one call may take under load.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the final cycle's list of every LRP (and each of its writes) may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(120);
/// Changes the fake apiserver keeps for watches.
const LOG_CAPACITY: usize = 256;
/// How much the resident set may grow from the warmed-up baseline.
const GROWTH_PERCENT: u64 = 25;
/// … plus this slack, for allocator arenas of a 2-core runner.
const GROWTH_SLACK_KIB: u64 = 24 * 1024;

fn env_or(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

/// `VmRSS` of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// What one app should be, in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Desired {
    version: u32,
    instances: u32,
    routes: Vec<String>,
    annotation: u64,
}

/// A small deterministic PRNG (xorshift), one per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default)]
struct Stats {
    calls: AtomicU64,
    requests: AtomicU64,
    retried: AtomicU64,
    given_up: AtomicU64,
    /// Calls and their total time, by kind (`desire`, `update`, …).
    latency: std::sync::Mutex<BTreeMap<&'static str, (u32, Duration)>>,
}

struct Opi {
    url: String,
    http: reqwest::Client,
    stats: Stats,
    /// Failed calls are not retried past this (the run stays bounded even
    /// on a starved 2-core runner).
    retry_until: std::sync::Mutex<Instant>,
    /// How long one request may take (longer in the final cycle).
    request_timeout: std::sync::Mutex<Duration>,
}

fn space(guid: &str) -> (String, String) {
    let n = guid.len() % 4;
    (format!("space-{n}"), format!("space{n}"))
}

fn desire_body(guid: &str, d: &Desired) -> Value {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/opi/testdata/desire_docker.json"
    ))
    .unwrap();
    let mut body: Value = serde_json::from_str(&fixture).unwrap();
    let version = format!("v{}", d.version);
    let (space_guid, space_name) = space(guid);
    body["guid"] = json!(guid);
    body["version"] = json!(version);
    body["process_guid"] = json!(format!("{guid}-{version}"));
    body["process_type"] = json!("web");
    body["app_guid"] = json!(format!("app-{guid}"));
    body["app_name"] = json!(guid);
    body["space_guid"] = json!(space_guid);
    body["space_name"] = json!(space_name);
    body["instances"] = json!(d.instances);
    body["ports"] = json!([8080]);
    body["health_check_type"] = json!("port");
    body["routes"] = routes(d);
    body["last_updated"] = json!(d.annotation.to_string());
    if guid.ends_with('0') {
        // Half the apps carry registry credentials (a pull Secret to clean up).
        let docker = &mut body["lifecycle"]["docker_lifecycle"];
        docker.as_object_mut().unwrap().remove("registry_username");
        docker.as_object_mut().unwrap().remove("registry_password");
    }
    body
}

fn routes(d: &Desired) -> Value {
    json!({"cf-router": d.routes.iter().map(|h| json!({"hostname": h, "port": 8080})).collect::<Vec<_>>()})
}

impl Opi {
    /// One call, retried on 5xx, 409, 429 and connection errors; `Ok(status)`
    /// once answered otherwise, `Err` when it gave up.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<u16, String> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let kind = match (
            method.as_str(),
            path.ends_with("/stop"),
            path.ends_with("/instances"),
        ) {
            ("PUT", true, _) => "stop",
            ("PUT", _, _) => "desire",
            ("POST", _, _) => "update",
            (_, _, true) => "instances",
            _ => "other",
        };
        let started = Instant::now();
        let outcome = self.attempts(method, path, body).await;
        let mut latency = self.stats.latency.lock().unwrap();
        let entry = latency.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += started.elapsed();
        outcome
    }

    async fn attempts(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<u16, String> {
        let mut delay = Duration::from_millis(10);
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 && Instant::now() > *self.retry_until.lock().unwrap() {
                break;
            }
            if attempt > 0 {
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let timeout = *self.request_timeout.lock().unwrap();
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.url))
                .timeout(timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    if status >= 500 || status == 409 || status == 429 {
                        last = format!("{status} {text}");
                        continue;
                    }
                    assert!(
                        status < 400 || status == 404,
                        "{method} {path}: a valid call was refused: {status} {text}"
                    );
                    return Ok(status);
                }
                Err(e) => last = format!("{e}: {:?}", std::error::Error::source(&e)),
            }
        }
        self.stats.given_up.fetch_add(1, Ordering::Relaxed);
        Err(format!(
            "{method} {path}: gave up after {ATTEMPTS} attempts: {last}"
        ))
    }

    async fn desire(&self, guid: &str, d: &Desired) -> Result<u16, String> {
        let version = format!("v{}", d.version);
        let body = desire_body(guid, d);
        self.call(
            reqwest::Method::PUT,
            &format!("/apps/{guid}-{version}"),
            Some(&body),
        )
        .await
    }

    async fn update(&self, guid: &str, d: &Desired) -> Result<u16, String> {
        let version = format!("v{}", d.version);
        let body = json!({"guid": guid, "version": version, "update": {
            "instances": d.instances, "routes": routes(d), "annotation": d.annotation.to_string()}});
        self.call(
            reqwest::Method::POST,
            &format!("/apps/{guid}-{version}"),
            Some(&body),
        )
        .await
    }

    async fn stop(&self, guid: &str, version: u32) -> Result<u16, String> {
        self.call(
            reqwest::Method::PUT,
            &format!("/apps/{guid}/v{version}/stop"),
            None,
        )
        .await
    }
}

/// What one client knows: its model of what should run (`None`: stopped or
/// never desired), the last version it used per app, its clock.
struct Client {
    index: usize,
    rng: Rng,
    model: BTreeMap<String, Option<Desired>>,
    versions: BTreeMap<String, u32>,
    annotation: u64,
}

impl Client {
    fn new(index: usize) -> Self {
        Self {
            index,
            rng: Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d)),
            model: (0..APPS_PER_CLIENT)
                .map(|k| (format!("soak-{index}-{k}"), None))
                .collect(),
            versions: BTreeMap::new(),
            annotation: 1_700_000_000,
        }
    }
}

/// One client: random operations on its own apps until `until`.
async fn client(opi: Arc<Opi>, mut me: Client, until: Instant) -> Client {
    let Client {
        index,
        ref mut rng,
        ref mut model,
        ref mut versions,
        ref mut annotation,
    } = me;
    while Instant::now() < until {
        let guid = format!("soak-{index}-{}", rng.below(APPS_PER_CLIENT as u64));
        *annotation += 1;
        let annotation = *annotation;
        let current = model[&guid].clone();
        let routes = |rng: &mut Rng| {
            (0..rng.below(3))
                .map(|r| format!("{guid}-{r}-{}.example.com", rng.below(4)))
                .collect::<Vec<_>>()
        };
        // On give-up the model keeps what was last confirmed: the final
        // reconciliation repairs it, as the Sink's next cycle would.
        match (current, rng.below(10)) {
            (None, _) => {
                let version = versions.entry(guid.clone()).or_insert(0);
                *version += 1;
                let d = Desired {
                    version: *version,
                    instances: 1 + rng.below(3) as u32,
                    routes: routes(rng),
                    annotation,
                };
                if opi.desire(&guid, &d).await.is_ok() {
                    model.insert(guid, Some(d));
                }
            }
            (Some(d), 0..=2) => {
                let next = Desired {
                    instances: rng.below(4) as u32,
                    annotation,
                    ..d
                };
                if opi.update(&guid, &next).await.is_ok() {
                    model.insert(guid, Some(next));
                }
            }
            (Some(d), 3) => {
                let next = Desired {
                    routes: routes(rng),
                    annotation,
                    ..d
                };
                if opi.update(&guid, &next).await.is_ok() {
                    model.insert(guid, Some(next));
                }
            }
            (Some(d), 4 | 5) => {
                // A new version: desired before the old one is stopped.
                let version = versions.entry(guid.clone()).or_insert(d.version);
                *version += 1;
                let next = Desired {
                    version: *version,
                    instances: 1 + rng.below(3) as u32,
                    routes: routes(rng),
                    annotation,
                };
                if opi.desire(&guid, &next).await.is_ok() {
                    model.insert(guid.clone(), Some(next));
                    let _ = opi.stop(&guid, d.version).await;
                }
            }
            (Some(d), 6) => {
                if opi.stop(&guid, d.version).await.is_ok() {
                    model.insert(guid, None);
                }
            }
            (Some(d), _) => {
                let _ = opi
                    .call(
                        reqwest::Method::GET,
                        &format!("/apps/{guid}/v{}/instances", d.version),
                        None,
                    )
                    .await;
            }
        }
    }
    me
}

/// The Sink's next cycle: list, then desire what differs and stop what should
/// not run. Returns the writes it needed.
async fn reconcile(opi: &Opi, model: &BTreeMap<String, Option<Desired>>) -> usize {
    // Listing every LRP reads every StatefulSet back: on a starved runner it
    // outlasts the load's 20 s timeout, so it gets its own (bounded) patience.
    let mut list = Value::Null;
    for _ in 0..3 {
        let answer = opi
            .http
            .get(format!("{}/apps", opi.url))
            .timeout(LIST_TIMEOUT)
            .send()
            .await;
        if let Ok(response) = answer
            && response.status().is_success()
        {
            list = response.json().await.unwrap();
            break;
        }
    }
    assert!(
        !list.is_null(),
        "OPI could not list its LRPs after the load"
    );
    let mut writes = 0;
    let mut listed: BTreeMap<String, Value> = BTreeMap::new();
    for info in list["desired_lrp_scheduling_infos"].as_array().unwrap() {
        listed.insert(info["guid"].as_str().unwrap().to_owned(), info.clone());
    }
    for (guid, desired) in model {
        let info = listed.get(guid);
        match (desired, info) {
            (Some(d), Some(info))
                if info["version"] == json!(format!("v{}", d.version))
                    && info["annotation"] == json!(d.annotation.to_string())
                    && info["instances"] == json!(d.instances) => {}
            (Some(d), _) => {
                writes += 1;
                opi.desire(guid, d).await.unwrap();
            }
            (None, Some(info)) => {
                writes += 1;
                let version = info["version"].as_str().unwrap().trim_start_matches('v');
                opi.stop(guid, version.parse().unwrap()).await.unwrap();
            }
            (None, None) => {}
        }
    }
    writes
}

fn annotation<'a>(object: &'a Value, key: &str) -> &'a str {
    object["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or("")
}

/// Differences between the fake cluster and the model (empty when equal).
fn differences(server: &FakeApiServer, model: &BTreeMap<String, Option<Desired>>) -> Vec<String> {
    let mut problems = Vec::new();
    let sets = server.list("statefulsets", None);
    let mut seen: BTreeMap<String, &Value> = BTreeMap::new();
    for set in &sets {
        let guid = annotation(set, labels::PROCESS_GUID).to_owned();
        if seen.insert(guid.clone(), set).is_some() {
            problems.push(format!("two StatefulSets for {guid}"));
        }
    }
    for (guid, desired) in model {
        match (desired, seen.get(guid)) {
            (None, Some(_)) => problems.push(format!("{guid} is stopped but has a StatefulSet")),
            (Some(_), None) => problems.push(format!("{guid} is desired but has no StatefulSet")),
            (Some(d), Some(set)) => {
                let version = format!("v{}", d.version);
                if annotation(set, labels::VERSION) != version {
                    problems.push(format!(
                        "{guid}: version {} ≠ {version}",
                        annotation(set, labels::VERSION)
                    ));
                }
                if set["spec"]["replicas"] != json!(d.instances) {
                    problems.push(format!(
                        "{guid}: replicas {} ≠ {}",
                        set["spec"]["replicas"], d.instances
                    ));
                }
                let routes: Value =
                    serde_json::from_str(annotation(set, labels::ROUTES)).unwrap_or(Value::Null);
                if routes["cf_router"] != routes_of(d) && routes["cf-router"] != routes_of(d) {
                    problems.push(format!("{guid}: routes {routes} ≠ {:?}", d.routes));
                }
                let namespace = set["metadata"]["namespace"].as_str().unwrap();
                let name = set["metadata"]["name"].as_str().unwrap();
                let pods = server
                    .list("pods", Some(namespace))
                    .iter()
                    .filter(|p| {
                        testkit::apiserver::ordinal(
                            p["metadata"]["name"].as_str().unwrap_or(""),
                            name,
                        )
                        .is_some()
                    })
                    .count();
                if pods != d.instances as usize {
                    problems.push(format!("{guid}: {pods} pods ≠ {}", d.instances));
                }
                let pdb = server
                    .get("poddisruptionbudgets", namespace, name)
                    .is_some();
                if pdb != (d.instances > 1) {
                    problems.push(format!(
                        "{guid}: PDB present {pdb} with {} instances",
                        d.instances
                    ));
                }
            }
            (None, None) => {}
        }
    }
    // Nothing left behind by a stop: every Secret, PDB and pod belongs to a
    // StatefulSet that exists.
    let names: BTreeSet<(String, String)> = sets
        .iter()
        .map(|s| {
            (
                s["metadata"]["namespace"].as_str().unwrap().to_owned(),
                s["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let owned = |namespace: &str, name: &str| {
        names.iter().any(|(ns, set)| {
            ns == namespace
                && (name == set
                    || name == format!("{set}-env")
                    || name == format!("{set}-registry")
                    || testkit::apiserver::ordinal(name, set).is_some())
        })
    };
    for plural in ["secrets", "poddisruptionbudgets", "pods"] {
        for object in server.list(plural, None) {
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or("");
            let name = object["metadata"]["name"].as_str().unwrap_or("");
            if !owned(namespace, name) {
                problems.push(format!("orphan {plural} {namespace}/{name}"));
            }
        }
    }
    problems
}

fn routes_of(d: &Desired) -> Value {
    routes(d)["cf-router"].clone()
}

async fn load(opi: &Arc<Opi>, clients: Vec<Client>, duration: Duration) -> Vec<Client> {
    let until = Instant::now() + duration;
    *opi.retry_until.lock().unwrap() = until + RETRY_GRACE;
    let handles: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(client(opi.clone(), c, until)))
        .collect();
    let mut clients = Vec::new();
    for handle in handles {
        clients.push(handle.await.unwrap());
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opi_on_kubernetes_holds_mixed_load_with_faults_and_ends_as_desired() {
    let secs = env_or("CUBE_SOAK_SECS", 30, 300);
    let clients = env_or("CUBE_SOAK_CLIENTS", 32, 512) as usize;
    // A short change log (the fake's own memory, not Cube's): watches that
    // fall behind get 410 Gone and relist, which the load exercises too.
    let server = FakeApiServer::builder()
        .controllers(true)
        .log_capacity(LOG_CAPACITY)
        .build();
    let scheduler: Arc<dyn opi::Scheduler> =
        Arc::new(K8sScheduler::new(server.client(), Config::default()));
    let router = opi::http::router(
        scheduler,
        opi::http::ApiConfig::default(),
        opi::http::ApiMetrics::register(&prometheus::Registry::new()).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let opi = Arc::new(Opi {
        url,
        http: opi::http::http_client_builder()
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(clients)
            .build()
            .unwrap(),
        stats: Stats::default(),
        retry_until: std::sync::Mutex::new(Instant::now()),
        request_timeout: std::sync::Mutex::new(REQUEST_TIMEOUT),
    });
    // The fake's request log is test bookkeeping, not Cube: keep it empty.
    let log = server.clone();
    let sweeper = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            log.clear_requests();
        }
    });
    let one_in = env_or("CUBE_SOAK_ONE_IN", u64::from(ONE_IN), 1_000_000) as u32;
    for status in FAULT_STATUSES {
        server.inject(Fault::rate(one_in, status));
    }

    // Warm-up: the same load for a sixth of the run (at least 5 s), then the
    // baseline once it settled.
    let warm_up = Duration::from_secs((secs / 6).max(5));
    let warmed = load(&opi, (0..clients).map(Client::new).collect(), warm_up).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = rss_kib();
    let started = Instant::now();
    let model: BTreeMap<String, Option<Desired>> = load(&opi, warmed, Duration::from_secs(secs))
        .await
        .into_iter()
        .flat_map(|c| c.model)
        .collect();
    let loaded = started.elapsed();
    let peak = rss_kib();
    let requests = opi.stats.requests.load(Ordering::Relaxed);
    let calls = opi.stats.calls.load(Ordering::Relaxed);
    let retried = opi.stats.retried.load(Ordering::Relaxed);
    let given_up = opi.stats.given_up.load(Ordering::Relaxed);
    let apiserver_faults = FAULT_STATUSES.len() as f64 / f64::from(one_in);

    // Faults off; the Sink's next cycle; the cluster settles.
    server.clear_faults();
    *opi.retry_until.lock().unwrap() = Instant::now() + REPAIR_TIME;
    *opi.request_timeout.lock().unwrap() = LIST_TIMEOUT;
    let repairs = reconcile(&opi, &model).await;
    let deadline = Instant::now() + SETTLE_TIME;
    let mut problems = differences(&server, &model);
    while !problems.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        problems = differences(&server, &model);
    }
    sweeper.abort();
    server.clear_requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end = rss_kib();
    let desired = model.values().filter(|d| d.is_some()).count();
    let instances: u32 = model.values().flatten().map(|d| d.instances).sum();
    println!(
        "soak: {clients} clients × {loaded:.0?} (+{warm_up:?} warm-up), {calls} calls = {requests} HTTP requests \
         ({:.0}/s), {retried} retries, {given_up} given up, apiserver faults {:.1} % \
         ({FAULT_STATUSES:?} each 1 in {one_in}); end: {desired} LRPs / {instances} instances, \
         {repairs} repaired by the final cycle; RSS baseline {} MiB, peak {} MiB, end {} MiB",
        requests as f64 / loaded.as_secs_f64(),
        apiserver_faults * 100.0,
        baseline / 1024,
        peak / 1024,
        end / 1024,
    );
    let latency: Vec<String> = opi
        .stats
        .latency
        .lock()
        .unwrap()
        .iter()
        .map(|(kind, (n, total))| format!("{kind} {n}× {:.0?}", *total / (*n).max(1)))
        .collect();
    println!(
        "soak: mean call time (with retries): {}",
        latency.join(", ")
    );
    assert!(
        problems.is_empty(),
        "the cluster differs from the desired state: {problems:#?}"
    );
    assert!(
        repairs as u64 <= given_up,
        "{repairs} LRPs needed repair but only {given_up} calls were given up: an acknowledged write was lost"
    );
    let bound = baseline + baseline * GROWTH_PERCENT / 100 + GROWTH_SLACK_KIB;
    assert!(
        end <= bound,
        "memory did not return near its baseline: {baseline} KiB → {end} KiB (bound {bound} KiB)"
    );
}
