//! A fake apiserver served on 127.0.0.1 with a kubeconfig for it, and the
//! `cube opi --backend k8s` process that talks to it.

use std::path::Path;
use std::time::Duration;

use crate::harness::{Proc, free_port};

/// A fake apiserver over TCP.
pub struct FakeCluster {
    /// The server (for direct inspection and control).
    pub server: testkit::FakeApiServer,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// A kubeconfig file pointing at it.
    pub kubeconfig: std::path::PathBuf,
    _serving: tokio::task::JoinHandle<()>,
}

impl FakeCluster {
    /// Serves a fake apiserver (with or without its controllers) and writes a
    /// kubeconfig for it into `dir`.
    pub async fn start(dir: &Path, name: &str, controllers: bool) -> anyhow::Result<Self> {
        let server = testkit::FakeApiServer::builder()
            .controllers(controllers)
            .build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let serving = server.serve(listener);
        let url = format!("http://{addr}");
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&kubeconfig, testkit::kubeconfig::kubeconfig(&url))?;
        Ok(Self {
            server,
            url,
            kubeconfig,
            _serving: serving,
        })
    }

    /// A kube client over TCP, like OPI's.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let config = kube::Config::new(self.url.parse()?);
        Ok(kube::Client::try_from(config)?)
    }
}

/// `cube opi --backend k8s` against `cluster`.
pub struct K8sOpi {
    /// The process.
    pub proc: Proc,
    /// OPI's base URL.
    pub url: String,
    /// The admin base URL.
    pub admin: String,
}

impl K8sOpi {
    /// OPI's resident memory.
    pub fn rss(&self) -> u64 {
        crate::harness::rss_bytes(self.proc.pid())
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        let Ok(http) = crate::harness::client() else {
            return false;
        };
        http.get(format!("{}/readyz", self.admin))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

impl K8sOpi {
    /// Starts OPI and waits until its watches are synced (patiently: the
    /// fake apiserver copies its whole store for each LIST page, and OPI
    /// lists 10,000 pods 100 a page).
    pub async fn start(cube: &Path, cluster: &FakeCluster, extra: &[&str]) -> anyhow::Result<Self> {
        let (api, admin) = (free_port()?, free_port()?);
        let mut args = vec![
            "opi".to_owned(),
            "--backend".into(),
            "k8s".into(),
            "--kubeconfig".into(),
            cluster.kubeconfig.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--admin-listen".into(),
            format!("127.0.0.1:{admin}"),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut proc = Proc::spawn("cube opi --backend k8s", cube, &args)?;
        let admin = format!("http://127.0.0.1:{admin}");
        proc.wait_ready(&format!("{admin}/readyz"), Duration::from_secs(180))
            .await?;
        Ok(Self {
            proc,
            url: format!("http://127.0.0.1:{api}"),
            admin,
        })
    }
}
