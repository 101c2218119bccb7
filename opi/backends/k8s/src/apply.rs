//! Cube's writes to the apiserver: server-side apply of namespaced objects
//! (field manager from the [`Config`](crate::Config), forced), and deletes
//! that take an object already gone for done.

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::K8sScheduler;
use crate::error::K8sError;

/// An answer of the apiserver, `Ok(None)` for a 404.
pub(crate) fn optional<T>(result: Result<T, kube::Error>) -> Result<Option<T>, K8sError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) => {
            let error = K8sError::from(error);
            if error.is_not_found() {
                Ok(None)
            } else {
                Err(error)
            }
        }
    }
}

impl K8sScheduler {
    /// Server-side applies `object` in `namespace`. The answer (the whole
    /// object) is not decoded: nobody reads it, and decoding a StatefulSet
    /// costs more than building it.
    pub(crate) async fn apply<K>(&self, namespace: &str, object: &K) -> Result<(), K8sError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Serialize,
    {
        self.apply_text(namespace, object).await.map(drop)
    }

    /// [`Self::apply`], answering the applied object's uid (read from the
    /// answer without decoding the rest of it).
    pub(crate) async fn apply_uid<K>(&self, namespace: &str, object: &K) -> Result<String, K8sError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Serialize,
    {
        #[derive(serde::Deserialize)]
        struct Meta {
            uid: String,
        }
        #[derive(serde::Deserialize)]
        struct Applied {
            metadata: Meta,
        }
        let text = self.apply_text(namespace, object).await?;
        let applied: Applied = serde_json::from_str(&text).map_err(|e| {
            K8sError::Corrupt(format!(
                "the apiserver's answer to an apply has no uid: {e}"
            ))
        })?;
        Ok(applied.metadata.uid)
    }

    /// Server-side applies `object` in `namespace`, answering the
    /// apiserver's answer undecoded.
    pub(crate) async fn apply_text<K>(
        &self,
        namespace: &str,
        object: &K,
    ) -> Result<String, K8sError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Serialize,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        let params = PatchParams::apply(&self.config.field_manager).force();
        let request = kube::core::Request::new(K::url_path(&(), Some(namespace)))
            .patch(&name, &params, &Patch::Apply(object))
            .map_err(kube::Error::BuildRequest)?;
        Ok(self.client.request_text(request).await?)
    }

    /// Applies `object`, or when the desired LRP has none makes sure object
    /// `name` is gone (not looked for when the process is `new`: see
    /// [`Self::apply_lrp`]).
    pub(crate) async fn apply_or_remove<K>(
        &self,
        namespace: &str,
        name: &str,
        object: Option<K>,
        new: bool,
    ) -> Result<(), K8sError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        match object {
            Some(object) => self.apply(namespace, &object).await,
            None if new => Ok(()),
            None => self.ensure_absent::<K>(namespace, name).await,
        }
    }

    /// Deletes object `name` in `namespace` (in the background); one
    /// already gone is as good as deleted.
    pub(crate) async fn delete_if_present<K>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), K8sError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let params = DeleteParams::background();
        optional(self.api::<K>(namespace).delete(name, &params).await).map(drop)
    }

    /// Deletes an object that should not exist, reading first so that the
    /// usual case (it does not) costs no write.
    pub(crate) async fn ensure_absent<K>(&self, namespace: &str, name: &str) -> Result<(), K8sError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        if optional(self.api::<K>(namespace).get(name).await)?.is_some() {
            self.delete_if_present::<K>(namespace, name).await?;
        }
        Ok(())
    }
}
