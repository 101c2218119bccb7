//! Health checks of a local instance: `port` (TCP connect), `http` (GET answers
//! 2xx) or `process` (alive, checked by the supervisor).

use std::time::Duration;

use opi::model::{HealthCheck, HealthCheckType};

/// Default timeout of one check when CC sends 0.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs one check against an instance listening on 127.0.0.1:`port`.
pub async fn check(health: &HealthCheck, port: u16, http: &reqwest::Client) -> Result<(), String> {
    let timeout = if health.timeout_ms == 0 {
        DEFAULT_TIMEOUT
    } else {
        Duration::from_millis(health.timeout_ms)
    };
    match health.kind {
        HealthCheckType::Process => Ok(()),
        HealthCheckType::Port => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(("127.0.0.1", port)))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("port {port}: {e}")),
                Err(_) => Err(format!("port {port}: no connection within {timeout:?}")),
            }
        }
        HealthCheckType::Http => {
            let url = format!("http://127.0.0.1:{port}{}", health.http_endpoint);
            match http.get(&url).timeout(timeout).send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("GET {url} answered {}", response.status())),
                Err(e) => Err(format!("GET {url}: {e}")),
            }
        }
    }
}
