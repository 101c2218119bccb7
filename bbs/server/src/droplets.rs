//! Making sure the Registry holds a buildpack LRP's droplet image
//! (`cloudfoundry/<guid>:<hash>`) when it is desired: the Sink's client
//! ([`sink::registry::RegistryClient`]: `HEAD` the manifest, import
//! `POST /v2/cloudfoundry/<guid>/droplets?hash=<hash>` with
//! `{"uri": <droplet url>}` when missing).
//!
//! Cloud Controller waits 10 s for a BBS answer, and importing a large
//! droplet can take longer, so a desire waits at most [`Droplets::wait`]:
//! an import still running then goes on in the background and the LRP is
//! desired anyway (its instances pull the image once it is there — kubelets
//! retry). One import per droplet runs at a time; a desire of the same
//! droplet meanwhile waits on it. An import that fails within the wait
//! fails the desire (UnknownError; CC desires again on its next sync).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use sink::registry::RegistryClient;
use sink::translate::DropletRef;

use crate::error::Error;
use crate::translate::lrp::Droplet;

/// How long a desire waits for its droplet's import by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

type Import = Shared<BoxFuture<'static, Result<(), String>>>;

/// The Registry's droplet images, imported on demand.
#[derive(Clone)]
pub struct Droplets {
    registry: Option<RegistryClient>,
    running: Arc<Mutex<HashMap<String, Import>>>,
    wait: Duration,
}

impl std::fmt::Debug for Droplets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Droplets")
            .field("registry", &self.registry)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Droplets {
    /// Droplets imported into `registry`; `None`: never checked (the
    /// scheduler's image references must then be served some other way).
    pub fn new(registry: Option<RegistryClient>, wait: Duration) -> Self {
        Self {
            registry,
            running: Arc::default(),
            wait,
        }
    }

    /// How long a desire waits for an import.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Makes sure the Registry holds `droplet`'s image, or is importing it.
    ///
    /// Errors: [`Error::Droplet`] when the Registry refused or could not be
    /// asked within the wait.
    pub async fn ensure(&self, droplet: &Droplet) -> Result<(), Error> {
        let Some(registry) = &self.registry else {
            return Ok(());
        };
        let key = format!("{}:{}", droplet.guid, droplet.hash);
        let import = self.import(registry, &key, droplet);
        match tokio::time::timeout(self.wait, import).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(Error::Droplet { droplet: key, why }),
            Err(_) => {
                tracing::info!(droplet = %key, "droplet import continues in the background");
                Ok(())
            }
        }
    }

    /// The import of `droplet` under way, or a new one, running in its own
    /// task so a desire that stops waiting does not stop it.
    fn import(&self, registry: &RegistryClient, key: &str, droplet: &Droplet) -> Import {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(import) = running.get(key) {
            return import.clone();
        }
        let registry = registry.clone();
        let reference = DropletRef {
            guid: droplet.guid.clone(),
            hash: droplet.hash.clone(),
            uri: droplet.url.clone(),
        };
        let table = self.running.clone();
        let owned_key = key.to_owned();
        let task = tokio::spawn(async move {
            let outcome = registry.ensure(&reference).await;
            table
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&owned_key);
            match outcome {
                Ok(ensured) => {
                    tracing::debug!(droplet = %owned_key, ?ensured, "droplet image in the registry");
                    Ok(())
                }
                Err(error) => {
                    tracing::warn!(droplet = %owned_key, %error, "droplet import failed");
                    Err(error.to_string())
                }
            }
        });
        let import = async move {
            task.await
                .unwrap_or_else(|e| Err(format!("import task failed: {e}")))
        }
        .boxed()
        .shared();
        running.insert(key.to_owned(), import.clone());
        import
    }
}
