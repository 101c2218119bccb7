//! Runs the fake Kubernetes apiserver (with its controllers) on 127.0.0.1 and
//! writes a kubeconfig for it, for trying `cube opi --backend k8s` by hand:
//!
//! ```text
//! cargo run -p testkit --example fake-apiserver -- /tmp/fake-kubeconfig [port]
//! cube opi --backend k8s --kubeconfig /tmp/fake-kubeconfig
//! ```

use testkit::FakeApiServer;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let kubeconfig = args
        .next()
        .unwrap_or_else(|| "fake-kubeconfig.yaml".to_owned());
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let server = FakeApiServer::builder().controllers(true).build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    std::fs::write(
        &kubeconfig,
        testkit::kubeconfig::kubeconfig(&format!("http://{addr}")),
    )?;
    println!("fake apiserver on http://{addr}; kubeconfig in {kubeconfig}");
    let serving = server.serve(listener);
    tokio::signal::ctrl_c().await?;
    serving.abort();
    Ok(())
}
