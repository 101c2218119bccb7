//! The Sink against the real CC simulator and the real OPI API (memory
//! backend), both on 127.0.0.1. Writes are counted on the OPI side, from its
//! request metrics, not from the Sink's own report.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use cc::sim::{Config as SimConfig, Sim};
use opi::Scheduler;
use opi::memory::MemoryScheduler;
use sink::{Config, Converger, Settings};

struct World {
    sim: Arc<Sim>,
    memory: Arc<MemoryScheduler>,
    opi_metrics: prometheus::Registry,
    converger: Converger,
    config: Config,
    cc_fail_after_first_page: Arc<AtomicBool>,
    opi_fail_every_other_write: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn world(fake_apps: usize, settings: Settings) -> World {
    let dir = tempfile::tempdir().unwrap();
    // CC simulator, with a switch that fails every bulk page after the first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut sim_config = SimConfig::new(dir.path().join("cc"));
    sim_config.fake_apps = fake_apps;
    let sim = Sim::open(sim_config, addr, &prometheus::Registry::new())
        .await
        .unwrap();
    let cc_fail = Arc::new(AtomicBool::new(false));
    let flag = cc_fail.clone();
    let cc_router = sim.router().layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let fail = flag.load(Ordering::SeqCst)
                && req.uri().path() == "/internal/bulk/apps"
                && req.method() == Method::GET
                && !req
                    .uri()
                    .query()
                    .unwrap_or("")
                    .contains("%7B%22id%22%3A0%7D");
            async move {
                if fail {
                    (StatusCode::INTERNAL_SERVER_ERROR, "database is down").into_response()
                } else {
                    next.run(req).await
                }
            }
        },
    ));
    tokio::spawn(async move { axum::serve(listener, cc_router).await.unwrap() });
    let cc_url = format!("http://{addr}");

    // OPI over the memory backend, with a switch that fails every other write.
    let memory = Arc::new(MemoryScheduler::new());
    let opi_metrics = prometheus::Registry::new();
    let opi_fail = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU32::new(0));
    let flag = opi_fail.clone();
    let opi_router = opi::http::router(
        memory.clone(),
        opi::http::ApiConfig::default(),
        opi::http::ApiMetrics::register(&opi_metrics).unwrap(),
    )
    .layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let is_write = req.method() != Method::GET;
            let fail = is_write
                && flag.load(Ordering::SeqCst)
                && counter.fetch_add(1, Ordering::SeqCst).is_multiple_of(2);
            async move {
                if fail {
                    (StatusCode::SERVICE_UNAVAILABLE, "apiserver unreachable").into_response()
                } else {
                    next.run(req).await
                }
            }
        },
    ));
    let opi_url = serve(opi_router).await;

    let mut cc = cc::ClientConfig::new(cc_url);
    cc.retry = cc::RetryPolicy::none();
    let config = Config {
        cc,
        opi_url,
        registry_url: None,
        interval: Duration::from_secs(15),
        settings,
        leader_election: None,
    };
    let converger = sink::converger(&config, &prometheus::Registry::new()).unwrap();
    World {
        sim,
        memory,
        opi_metrics,
        converger,
        config,
        cc_fail_after_first_page: cc_fail,
        opi_fail_every_other_write: opi_fail,
        _dir: dir,
    }
}

/// OPI write requests answered 2xx so far, from OPI's own metrics.
fn opi_writes(world: &World) -> u64 {
    world
        .opi_metrics
        .gather()
        .iter()
        .filter(|f| f.name() == "cube_opi_requests_total")
        .flat_map(|f| f.get_metric().to_vec())
        .filter(|m| {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            !label("route").starts_with("GET") && label("code").starts_with('2')
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

async fn scale(world: &World, name: &str, instances: u32) {
    world
        .sim
        .store()
        .update(|state| {
            state.scale_app(
                name,
                cc::sim::state::Scale {
                    instances: Some(instances),
                    ..Default::default()
                },
                cc::sim::now_micros(),
            )
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_apps_converge_then_only_changes_are_written() {
    let world = world(10_000, Settings::default()).await;

    let report = world.converger.cycle().await.unwrap();
    assert_eq!(report.cc_apps, 10_000);
    assert_eq!(report.desired, 10_000, "{:?}", report.errors.first());
    assert_eq!(world.memory.list().await.unwrap().len(), 10_000);
    assert_eq!(opi_writes(&world), 10_000);

    // Nothing changed: not a single write.
    let report = world.converger.cycle().await.unwrap();
    assert_eq!(report.writes(), 0);
    assert_eq!(opi_writes(&world), 10_000);

    // Ten etags change: exactly ten writes, all updates.
    for i in 0..10 {
        scale(&world, &format!("fake-app-{}", i * 997), 3).await;
    }
    let report = world.converger.cycle().await.unwrap();
    assert_eq!((report.updated, report.writes()), (10, 10), "{report:?}");
    assert_eq!(opi_writes(&world), 10_010);
    let scaled = world
        .memory
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|info| info.instances == 3)
        .count();
    assert_eq!(scaled, 10);

    // Three apps deleted: exactly three stops.
    for i in [1, 2, 3] {
        world
            .sim
            .store()
            .update(|state| state.delete_app(&format!("fake-app-{i}")))
            .await
            .unwrap();
    }
    let report = world.converger.cycle().await.unwrap();
    assert_eq!((report.stopped, report.writes()), (3, 3), "{report:?}");
    assert_eq!(world.memory.list().await.unwrap().len(), 9_997);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_failing_mid_walk_stops_nothing() {
    let settings = Settings {
        batch_size: 10,
        ..Settings::default()
    };
    let world = world(50, settings).await;
    world.converger.cycle().await.unwrap();
    assert_eq!(world.memory.list().await.unwrap().len(), 50);
    let writes = opi_writes(&world);

    world.cc_fail_after_first_page.store(true, Ordering::SeqCst);
    let error = world.converger.cycle().await.unwrap_err();
    assert!(error.to_string().contains("500"), "{error}");
    assert_eq!(opi_writes(&world), writes, "a failed walk writes nothing");
    assert_eq!(world.memory.list().await.unwrap().len(), 50);

    world
        .cc_fail_after_first_page
        .store(false, Ordering::SeqCst);
    let report = world.converger.cycle().await.unwrap();
    assert_eq!(report.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opi_failing_some_writes_converges_next_cycle() {
    let world = world(40, Settings::default()).await;
    world
        .opi_fail_every_other_write
        .store(true, Ordering::SeqCst);
    let report = world.converger.cycle().await.unwrap();
    assert_eq!(report.desired, 20, "{report:?}");
    assert_eq!(report.errors.len(), 20);
    assert!(
        report.errors[0].contains("unreachable") || report.errors[0].contains("503"),
        "{:?}",
        report.errors[0]
    );

    world
        .opi_fail_every_other_write
        .store(false, Ordering::SeqCst);
    let report = world.converger.cycle().await.unwrap();
    assert_eq!((report.desired, report.errors.len()), (20, 0), "{report:?}");
    assert_eq!(world.memory.list().await.unwrap().len(), 40);
    assert_eq!(world.converger.cycle().await.unwrap().writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_stop_is_refused_unless_allowed() {
    let world = world(30, Settings::default()).await;
    world.converger.cycle().await.unwrap();
    // CC suddenly knows only 5 of 30 apps (say, a restored old backup).
    for i in 5..30 {
        world
            .sim
            .store()
            .update(|state| state.delete_app(&format!("fake-app-{i}")))
            .await
            .unwrap();
    }
    let report = world.converger.cycle().await.unwrap();
    assert_eq!((report.stopped, report.stops_refused), (0, 25));
    assert_eq!(world.memory.list().await.unwrap().len(), 30);

    // The operator confirms: --allow-mass-stop.
    let mut config = world.config.clone();
    config.settings.allow_mass_stop = true;
    let allowed = sink::converger(&config, &prometheus::Registry::new()).unwrap();
    let report = allowed.cycle().await.unwrap();
    assert_eq!((report.stopped, report.stops_refused), (25, 0));
    assert_eq!(world.memory.list().await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_desired_before_the_old_one_is_stopped() {
    let world = world(1, Settings::default()).await;
    world.converger.cycle().await.unwrap();
    let before = world.memory.list().await.unwrap();
    // Memory changes make a new version of a started app.
    world
        .sim
        .store()
        .update(|state| {
            state.scale_app(
                "fake-app-0",
                cc::sim::state::Scale {
                    memory_mb: Some(128),
                    ..Default::default()
                },
                cc::sim::now_micros(),
            )
        })
        .await
        .unwrap();
    let report = world.converger.cycle().await.unwrap();
    assert_eq!((report.desired, report.stopped), (1, 1), "{report:?}");
    let after = world.memory.list().await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id.guid, before[0].id.guid);
    assert_ne!(after[0].id.version, before[0].id.version);
    assert_eq!(world.memory.get(&after[0].id).await.unwrap().memory_mb, 128);
}
