//! A fake Kubernetes apiserver: an in-process axum router that
//! [`kube::Client`] talks to as to a real cluster.
//!
//! It serves namespaces, pods (+status), secrets, StatefulSets (+status),
//! Jobs (+status), PodDisruptionBudgets (+status), Leases, Services
//! (+status; cluster IPs allocated), Ingresses (+status) and Gateway API
//! `HTTPRoute`s (+status) with get, list
//! (label/field selectors, `limit`/`continue`), create, replace, merge and
//! JSON patch, server-side apply (field managers, conflicts, `force`) and
//! delete (preconditions, garbage collection of owned objects, namespace
//! cascade); resource versions with 409 on conflict; watches with bookmarks,
//! `sendInitialEvents` and 410 Gone for versions older than the event log;
//! 404/409/422 answers with the apiserver's `Status` bodies, rejecting what
//! real validation rejects. Failure injection: [`FakeApiServer::inject`],
//! [`FakeApiServer::set_latency`], [`FakeApiServer::set_unreachable`].
//! Optional controllers ([`Builder::controllers`]) create pods for
//! StatefulSets and run them.
//!
//! ```ignore
//! let server = FakeApiServer::builder().controllers(true).build();
//! let client = server.client();            // a kube::Client, no sockets
//! let pods: kube::Api<Pod> = kube::Api::namespaced(client, "default");
//! ```

mod apply;
mod controller;
mod error;
mod faults;
mod http;
mod rbac;
mod resources;
mod routing;
mod selector;
mod store;
mod validate;
mod watch;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tower::ServiceExt as _;

pub use controller::Settings;
pub use error::ApiError;
pub use faults::Fault;
pub use rbac::{Rbac, Rule};
pub use selector::{FieldSelector, LabelSelector};

use faults::Faults;
use store::Store;

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `PATCH`, ….
    pub method: String,
    /// The path.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
}

/// State shared by the router, the controllers and the handle.
pub struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
    latency: Mutex<Duration>,
    unreachable: std::sync::atomic::AtomicBool,
    settings: Mutex<Settings>,
    bookmark_interval: Duration,
    /// Bumped to end every open watch (as an apiserver restart would).
    watch_epoch: tokio::sync::watch::Sender<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock (a failing test) leaves consistent data:
    // every mutation is committed in one step.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    fn record(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
    }

    fn latency(&self) -> Duration {
        *lock(&self.latency)
    }

    fn take_fault(&self, method: &::http::Method, path: &str) -> Option<Fault> {
        lock(&self.faults).take(method, path)
    }

    fn settings(&self) -> Settings {
        *lock(&self.settings)
    }
}

/// The ordinal of pod `name` of StatefulSet `set` (`web-3` of `web` → 3).
pub fn ordinal(name: &str, set: &str) -> Option<u64> {
    name.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// Options of a [`FakeApiServer`].
#[derive(Debug, Clone)]
pub struct Builder {
    controllers: bool,
    settings: Settings,
    log_capacity: usize,
    bookmark_interval: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            controllers: false,
            settings: Settings::default(),
            log_capacity: 10_000,
            bookmark_interval: Duration::from_millis(500),
        }
    }
}

impl Builder {
    /// Run the StatefulSet/scheduler/kubelet/Job controllers (needs a tokio
    /// runtime when building).
    pub fn controllers(mut self, on: bool) -> Self {
        self.controllers = on;
        self
    }

    /// Whether the simulated cluster can schedule and ready pods.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// How many changes watches can resume from (older → 410 Gone).
    pub fn log_capacity(mut self, changes: usize) -> Self {
        self.log_capacity = changes;
        self
    }

    /// How often watches that allow bookmarks get one.
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// The server.
    pub fn build(self) -> FakeApiServer {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(self.log_capacity)),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
            latency: Mutex::new(Duration::ZERO),
            unreachable: std::sync::atomic::AtomicBool::new(false),
            settings: Mutex::new(self.settings),
            bookmark_interval: self.bookmark_interval.max(Duration::from_millis(10)),
            watch_epoch: tokio::sync::watch::Sender::new(0),
        });
        let controllers = self.controllers.then(|| {
            let task = tokio::spawn(controller::run(Arc::downgrade(&shared)));
            Arc::new(AbortOnDrop(task))
        });
        FakeApiServer {
            shared,
            _controllers: controllers,
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A handle on a fake apiserver. Cheap to clone; clients keep it alive.
#[derive(Clone)]
pub struct FakeApiServer {
    shared: Arc<Shared>,
    _controllers: Option<Arc<AbortOnDrop>>,
}

impl Default for FakeApiServer {
    fn default() -> Self {
        Builder::default().build()
    }
}

impl FakeApiServer {
    /// A server without controllers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Options.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The axum router serving the Kubernetes API.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(http::handle)
            .with_state(self.shared.clone())
    }

    /// A [`kube::Client`] talking to this server in-process (default
    /// namespace `default`).
    pub fn client(&self) -> kube::Client {
        self.make_client(None)
    }

    /// A client whose requests are authorised against `rbac` (403 Forbidden
    /// for anything its rules do not allow).
    pub fn client_as(&self, rbac: Rbac) -> kube::Client {
        self.make_client(Some(Arc::new(rbac)))
    }

    fn make_client(&self, rbac: Option<Arc<Rbac>>) -> kube::Client {
        let router = self.router();
        let shared = self.shared.clone();
        let service = tower::service_fn(move |request: ::http::Request<kube::client::Body>| {
            let router = router.clone();
            let rbac = rbac.clone();
            let unreachable = shared.unreachable.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if unreachable {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        "fake apiserver is unreachable (injected)",
                    ));
                }
                let mut request = request.map(axum::body::Body::new);
                if let Some(rbac) = rbac {
                    request.extensions_mut().insert(rbac);
                }
                match router.oneshot(request).await {
                    Ok(response) => Ok(response),
                    Err(never) => match never {},
                }
            }
        });
        kube::Client::new(service, "default")
    }

    /// Serves the API over HTTP on `listener` until the task is aborted (for
    /// clients that need a URL, e.g. a kubeconfig pointing at 127.0.0.1).
    pub fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let router = self.router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(%error, "fake apiserver stopped");
            }
        })
    }

    /// Adds a failure rule.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).add(fault);
    }

    /// Removes every failure rule.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Delays every request by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// Makes in-process clients fail to connect (as if the apiserver were
    /// down) until switched back.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.shared
            .unreachable
            .store(unreachable, std::sync::atomic::Ordering::SeqCst);
        if unreachable {
            self.close_watches();
        }
    }

    /// Ends every open watch, as an apiserver restart would; clients
    /// reconnect from their last resource version.
    pub fn close_watches(&self) {
        self.shared.watch_epoch.send_modify(|epoch| *epoch += 1);
    }

    /// Changes what the simulated cluster does with new pods, and applies
    /// it to pods waiting for a node.
    pub fn set_settings(&self, settings: Settings) {
        *lock(&self.shared.settings) = settings;
        if self._controllers.is_some() {
            controller::nudge(&self.shared);
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Drops the event log: watches resuming from older versions get 410.
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// The current resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// An object by kind (plural), namespace (`""` for cluster-scoped) and name.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let kind = resources::by_plural(plural)?;
        self.shared.store().get(kind, namespace, name).ok()
    }

    /// Every object of a kind, in a namespace or all.
    pub fn list(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(kind) = resources::by_plural(plural) else {
            return Vec::new();
        };
        let (items, _) = self.shared.store().list(
            kind,
            namespace,
            &LabelSelector::default(),
            &FieldSelector::default(),
        );
        items.into_iter().map(|(_, object)| object).collect()
    }
}
