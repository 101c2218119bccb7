//! `cube-runtime`: what every Cube service shares.
//!
//! - [`admin`]: the admin port (`/metrics`, `/healthz`, `/readyz`) with readiness
//!   that reflects real dependencies.
//! - [`telemetry`]: `tracing` setup, JSON or pretty logs.
//! - [`config`]: configuration layering — flags beat `CUBE_*` environment variables,
//!   which beat an optional YAML file.
//! - [`shutdown`]: one cancellation token per process, fired by SIGTERM or Ctrl-C.
//! - [`serve`]: run an axum router on a bound listener until shutdown, draining
//!   in-flight requests; [`serve_with`] serves HTTPS when configured.
//! - [`access`]: TLS, client certificates and bearer tokens for every API,
//!   configured once ([`access::AccessArgs`]).
//! - [`body`]: reading an answer from another system no further than a limit.

#![warn(missing_docs)]
pub mod access;
pub mod admin;
pub mod body;
pub mod config;
pub mod error;
pub mod shutdown;
pub mod telemetry;
mod tls;

pub use admin::{AdminServer, Readiness, ReadyCheck};
pub use error::Error;
pub use shutdown::Shutdown;

use std::net::SocketAddr;

/// Installs the process-wide rustls crypto provider (ring). Call once at start;
/// calling it again is harmless.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Binds a TCP listener, naming the address in the error so a port clash is obvious.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Serves `router` on `listener` until `shutdown` fires, then stops accepting and
/// waits for in-flight requests to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(Error::Io)?;
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
    .await
    .map_err(|source| Error::Serve { addr, source })
}

/// Serves `router` on `listener` until `shutdown` fires, over TLS when
/// `access` has a TLS configuration (each request then carries the client's
/// verified [`access::PeerCertificate`], if it presented one). Does not guard
/// the router: see [`access::Access::guard`] or [`Service::serve`].
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: Shutdown,
    access: &access::Access,
) -> Result<(), Error> {
    match access.tls() {
        Some(tls) => tls::serve(listener, router, shutdown, tls.clone()).await,
        None => serve(listener, router, shutdown).await,
    }
}

/// What one service process (or one service inside `cube up`) shares with the
/// admin server: its metrics registry, its readiness checks and the shutdown token.
#[derive(Clone)]
pub struct Service {
    /// Where the service registers its Prometheus metrics.
    pub metrics: prometheus::Registry,
    /// Where the service adds its readiness checks.
    pub readiness: Readiness,
    /// Fired on SIGTERM/Ctrl-C; every loop and server stops when it fires.
    pub shutdown: Shutdown,
    /// How the service's API is served and who may call it.
    pub access: access::Access,
    /// How the service reaches other Cube services.
    pub client: access::ClientAccess,
}

impl Service {
    /// A service whose shutdown fires on SIGTERM or Ctrl-C.
    pub fn from_signals() -> Self {
        Self::new(shutdown::on_signals())
    }

    /// A service stopped by `shutdown` (tests, or several services in one process).
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            metrics: prometheus::Registry::new(),
            readiness: Readiness::default(),
            shutdown,
            access: access::Access::default(),
            client: access::ClientAccess::default(),
        }
    }

    /// The same service, served with `access` and calling others with `client`.
    pub fn with_access(mut self, access: access::Access, client: access::ClientAccess) -> Self {
        self.access = access;
        self.client = client;
        self
    }

    /// Serves `router` on `listener` until shutdown, with this service's
    /// access: HTTPS when configured, and requests without valid credentials
    /// refused (401/403) when credentials are required.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        router: axum::Router,
    ) -> Result<(), Error> {
        serve_with(
            listener,
            self.access.guard(router),
            self.shutdown.clone(),
            &self.access,
        )
        .await
    }

    /// Binds `admin_addr` and serves `/metrics`, `/healthz` and `/readyz` until shutdown.
    /// Returns the bound address (useful with port 0) and the server task.
    pub async fn spawn_admin(
        &self,
        admin_addr: SocketAddr,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<Result<(), Error>>), Error> {
        let listener = bind(admin_addr).await?;
        let addr = listener.local_addr()?;
        let admin = AdminServer::new(
            self.metrics.clone(),
            self.readiness.clone(),
            self.shutdown.clone(),
        );
        Ok((addr, tokio::spawn(admin.run(listener))))
    }
}
