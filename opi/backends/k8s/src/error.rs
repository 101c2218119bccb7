//! [`K8sError`], the one error type of this crate, and its mapping to
//! [`opi::Error`].

/// What went wrong talking to Kubernetes.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// The apiserver answered with an error status.
    #[error("kubernetes: {message} ({reason}, HTTP {code})")]
    Api {
        /// HTTP status.
        code: u16,
        /// The apiserver's reason (`NotFound`, `Invalid`, …).
        reason: String,
        /// The apiserver's message.
        message: String,
    },
    /// The apiserver could not be reached or the connection broke.
    #[error("kubernetes apiserver unreachable: {0}")]
    Unreachable(String),
    /// Loading the kubeconfig or in-cluster configuration failed.
    #[error("kubernetes configuration: {0}")]
    Config(String),
    /// An object in the cluster does not have the shape Cube wrote.
    #[error("{0}")]
    Corrupt(String),
    /// Another unexpected client failure.
    #[error("kubernetes client: {0}")]
    Client(String),
}

impl From<kube::Error> for K8sError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => Self::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            kube::Error::HyperError(e) => Self::Unreachable(e.to_string()),
            kube::Error::Service(e) => Self::Unreachable(e.to_string()),
            kube::Error::HttpError(e) => Self::Unreachable(e.to_string()),
            other => Self::Client(other.to_string()),
        }
    }
}

impl From<kube::config::KubeconfigError> for K8sError {
    fn from(error: kube::config::KubeconfigError) -> Self {
        Self::Config(error.to_string())
    }
}

impl From<kube::config::InferConfigError> for K8sError {
    fn from(error: kube::config::InferConfigError) -> Self {
        Self::Config(error.to_string())
    }
}

impl K8sError {
    /// Whether the apiserver said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { code: 404, .. })
    }

    /// Whether the apiserver said the object exists already or changed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Api { code: 409, .. })
    }
}

impl From<K8sError> for opi::Error {
    fn from(error: K8sError) -> Self {
        match &error {
            K8sError::Api { code, message, .. } => match code {
                400 | 422 => opi::Error::BadBody(format!("kubernetes rejected it: {message}")),
                404 => opi::Error::NotFound(message.clone()),
                409 => opi::Error::Conflict(message.clone()),
                429 | 500..=599 => opi::Error::Unavailable(error.to_string()),
                _ => opi::Error::Internal(error.to_string()),
            },
            K8sError::Unreachable(_) => opi::Error::Unavailable(error.to_string()),
            K8sError::Config(_) | K8sError::Corrupt(_) | K8sError::Client(_) => {
                opi::Error::Internal(error.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> K8sError {
        K8sError::Api {
            code,
            reason: "Reason".into(),
            message: message.into(),
        }
    }

    #[test]
    fn apiserver_statuses_map_to_opi_errors() {
        let invalid = opi::Error::from(api(422, "StatefulSet \"x\" is invalid: bad"));
        assert_eq!(invalid.status().as_u16(), 400);
        assert!(invalid.to_string().contains("StatefulSet \"x\" is invalid"));
        assert_eq!(opi::Error::from(api(404, "gone")).status().as_u16(), 404);
        assert_eq!(opi::Error::from(api(409, "exists")).status().as_u16(), 409);
        assert_eq!(opi::Error::from(api(503, "busy")).status().as_u16(), 503);
        assert_eq!(
            opi::Error::from(api(429, "slow down")).status().as_u16(),
            503
        );
        assert_eq!(
            opi::Error::from(api(403, "forbidden")).status().as_u16(),
            500
        );
        let down = opi::Error::from(K8sError::Unreachable("connection refused".into()));
        assert_eq!(down.status().as_u16(), 503);
    }
}
