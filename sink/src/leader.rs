//! Leader election with a Kubernetes `Lease`, so two Sink replicas never both
//! write: only the holder of `coordination.k8s.io/v1` Lease `<name>` runs
//! cycles.
//!
//! The holder renews the lease every third of its duration. Another replica
//! takes it over only once `renewTime + leaseDurationSeconds` has passed.
//! Every write goes through the apiserver's optimistic concurrency (the read
//! resourceVersion must still be current), so two replicas racing for an
//! expired lease cannot both win.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

/// Who holds the lease and for how long.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (pod name, or host and pid).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
}

/// Tracks whether this replica leads.
#[derive(Clone)]
pub struct Leadership {
    leading: Arc<AtomicBool>,
}

impl Leadership {
    /// Whether this replica holds the lease right now.
    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// Always the leader (no election configured).
    pub fn always() -> Self {
        Self {
            leading: Arc::new(AtomicBool::new(true)),
        }
    }
}

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// One attempt to acquire or renew. `Ok(true)`: we hold the lease now.
pub async fn try_acquire(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    // The Lease counts whole seconds: round up.
    let seconds = i32::try_from(config.duration.as_millis().div_ceil(1000))
        .unwrap_or(i32::MAX)
        .max(1);
    let existing = api.get_opt(&config.name).await?;
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now())),
                renew_time: Some(MicroTime(now())),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Someone else created it first.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let ours = holder == config.identity;
    let expired = match (spec.renew_time.as_ref(), spec.lease_duration_seconds) {
        (Some(renewed), Some(duration)) => {
            let until = renewed
                .0
                .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(
                    duration,
                )))
                .unwrap_or(renewed.0);
            until < now()
        }
        _ => true,
    };
    if !(ours || holder.is_empty() || expired) {
        return Ok(false);
    }
    let mut new_spec = spec.clone();
    if !ours {
        new_spec.acquire_time = Some(MicroTime(now()));
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    new_spec.holder_identity = Some(config.identity.clone());
    new_spec.lease_duration_seconds = Some(seconds);
    new_spec.renew_time = Some(MicroTime(now()));
    lease.spec = Some(new_spec);
    // `replace` carries the resourceVersion we read: a concurrent winner makes
    // this a 409, and we stay a follower.
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Keeps trying to acquire and renew the lease until `shutdown`; the returned
/// [`Leadership`] says whether we lead. Losing contact with the apiserver for
/// longer than the lease means losing leadership.
pub fn campaign(api: Api<Lease>, config: LeaseConfig, shutdown: CancellationToken) -> Leadership {
    let leading = Arc::new(AtomicBool::new(false));
    let flag = leading.clone();
    tokio::spawn(async move {
        let period = (config.duration / 3).max(Duration::from_millis(100));
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            match try_acquire(&api, &config).await {
                Ok(true) => {
                    if !flag.swap(true, Ordering::SeqCst) {
                        tracing::info!(identity = %config.identity, lease = %config.name, "became the leader");
                    }
                    last_renewal = tokio::time::Instant::now();
                }
                Ok(false) => {
                    if flag.swap(false, Ordering::SeqCst) {
                        tracing::warn!(identity = %config.identity, "lost the lease to another replica");
                    }
                }
                Err(error) => {
                    // Keep leading only while our last renewal is still valid.
                    if last_renewal.elapsed() >= config.duration
                        && flag.swap(false, Ordering::SeqCst)
                    {
                        tracing::warn!(%error, "cannot renew the lease; no longer the leader");
                    } else {
                        tracing::warn!(%error, "cannot reach the apiserver for the lease");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(period) => {}
            }
        }
        // Step down visibly on shutdown so a standby takes over at once.
        if flag.swap(false, Ordering::SeqCst)
            && let Ok(Some(mut lease)) = api.get_opt(&config.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(config.identity.as_str())
        {
            spec.holder_identity = None;
            let _ = api
                .replace(&config.name, &PostParams::default(), &lease)
                .await;
        }
    });
    Leadership { leading }
}
