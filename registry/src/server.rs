//! Wiring: config → store, auth, importer → router, served until shutdown.

use std::sync::Arc;

use crate::api::{self, AppState, Shared};
use crate::auth::Auth;
use crate::image::Importer;
use crate::metrics::Metrics;
use crate::rootfs::RootfsProvider;
use crate::store::{ObjectBackend, Store};
use crate::{Config, Error};

/// Opens the store named by `config` (filesystem, or object store).
pub async fn open_store(config: &Config) -> Result<Arc<Store>, Error> {
    tokio::fs::create_dir_all(&config.data_dir)
        .await
        .map_err(|e| Error::Config(format!("data dir {}: {e}", config.data_dir.display())))?;
    let mut store = match &config.object_store {
        None => Store::filesystem(&config.data_dir, config.max_blob_bytes).await?,
        Some(url) => {
            let backend = ObjectBackend::s3(url)?;
            Store::open(&config.data_dir, Arc::new(backend), config.max_blob_bytes).await?
        }
    };
    store.cache_blobs(config.blob_cache_bytes);
    Ok(Arc::new(store))
}

/// Builds the registry's shared state from `config`.
pub async fn state(config: &Config, metrics: &prometheus::Registry) -> Result<Shared, Error> {
    state_with(
        config,
        metrics,
        &cube_runtime::Service::new(Default::default()),
    )
    .await
}

/// [`state`], also accepting Cube's shared credentials from `service.access`
/// and reaching CC with `service.client`'s TLS settings.
pub async fn state_with(
    config: &Config,
    metrics: &prometheus::Registry,
    service: &cube_runtime::Service,
) -> Result<Shared, Error> {
    let store = open_store(config).await?;
    let auth = match &config.auth_file {
        Some(path) => Auth::from_file(path, config.anonymous_pull)?,
        None => Auth::disabled(),
    }
    .with_shared(service.access.policy().clone());
    let importer = Importer::new(
        store.clone(),
        RootfsProvider::new(config.rootfs.clone()),
        config.droplet_limits,
        config.cc_url.as_deref(),
    )?
    .with_access(&service.client)?;
    Ok(Arc::new(AppState {
        store,
        auth,
        importer,
        metrics: Metrics::new(metrics)?,
        automatic_crossmount: config.automatic_crossmount,
    }))
}

/// Serves the registry on `listener` until `service.shutdown` fires. Readiness
/// reports whether the store takes writes.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    service: cube_runtime::Service,
) -> Result<(), Error> {
    let state = state_with(&config, &service.metrics, &service).await?;
    service
        .readiness
        .add(Arc::new(StoreWritable(state.store.clone())));
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(e.to_string()))?;
    tracing::info!(
        %addr,
        store = %state.store.backend().describe(),
        auth = state.auth.enabled(),
        "registry listening"
    );
    // The registry answers credentials itself (OCI error shape, Basic
    // challenge for docker clients), so the router is not guarded here.
    cube_runtime::serve_with(
        listener,
        api::router(state),
        service.shutdown.clone(),
        &service.access,
    )
    .await
    .map_err(|e| Error::Config(format!("serving: {e}")))
}

struct StoreWritable(Arc<Store>);

#[async_trait::async_trait]
impl cube_runtime::ReadyCheck for StoreWritable {
    fn name(&self) -> &str {
        "store-writable"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.check_writable().await.map_err(|e| e.to_string())
    }
}
