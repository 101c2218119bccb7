//! Where a space's workloads go: its namespace (the fixed one, or one per
//! space, found or created) and the registry pull Secret written into it
//! before its first droplet workload.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use opi::model::{LrpLifecycle, Named};

use crate::apply::optional;
use crate::backend::K8sScheduler;
use crate::error::K8sError;
use crate::names::{self, label_value};
use crate::{labels, translate};

impl K8sScheduler {
    /// The namespace of a space: the fixed one, the one labelled with the
    /// space guid, or a new one named `<org>-<space>` (hashed when another
    /// space owns that name). Creates it when needed.
    pub(crate) async fn namespace_for(
        &self,
        space: &Named,
        org: &Named,
    ) -> Result<String, K8sError> {
        if let Some(namespace) = &self.config.namespace {
            return Ok(namespace.clone());
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let guid_label = label_value(&space.guid);
        match self.placements.namespace(&guid_label) {
            Some(Some(name)) => return Ok(name),
            // Synced and unknown: a new space.
            Some(None) => {}
            None => {
                let selector = format!("{}={}", labels::SPACE_GUID, guid_label);
                let owned = api.list(&ListParams::default().labels(&selector)).await?;
                if let Some(name) = owned.items.into_iter().find_map(|ns| ns.metadata.name) {
                    return Ok(name);
                }
            }
        }
        let plain = names::namespace_name(&org.name, &space.name, &space.guid);
        let name = match optional(api.get(&plain).await)? {
            Some(existing)
                if existing
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::SPACE_GUID))
                    != Some(&guid_label) =>
            {
                names::namespace_name_on_collision(&org.name, &space.name, &space.guid)
            }
            _ => plain,
        };
        let namespace = translate::namespace::namespace(&name, space, org);
        let params = PatchParams::apply(&self.config.field_manager).force();
        api.patch(&name, &params, &Patch::Apply(&namespace)).await?;
        self.placements.namespace_written(&guid_label, &name);
        // A namespace applied here may be new, or one deleted and created
        // again: it needs its pull Secret (again).
        self.pull_secrets_lock().remove(&name);
        Ok(name)
    }

    /// The namespaces holding the pull Secret, locked (past a poisoned lock
    /// too).
    pub(crate) fn pull_secrets_lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.pull_secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the registry pull Secret into `namespace` before a droplet
    /// workload there needs it, when the backend has registry credentials:
    /// once per namespace and process (one request).
    pub(crate) async fn ensure_pull_secret(
        &self,
        namespace: &str,
        lifecycle: &LrpLifecycle,
    ) -> Result<(), K8sError> {
        let (Some(credentials), Some(name)) =
            (&self.config.registry_credentials, self.config.pull_secret())
        else {
            return Ok(());
        };
        if !matches!(lifecycle, LrpLifecycle::Buildpack { .. })
            || self.pull_secrets_lock().contains(namespace)
        {
            return Ok(());
        }
        let secret =
            translate::namespace::pull_secret(name, namespace, &self.config.registry, credentials);
        self.apply(namespace, &secret).await?;
        self.pull_secrets_lock().insert(namespace.to_owned());
        Ok(())
    }
}
