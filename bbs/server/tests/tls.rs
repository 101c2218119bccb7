//! The BBS API over mutual TLS, as Cloud Controller reaches Diego's BBS:
//! a client certificate of the client CA — RSA, as CC's HTTP client loads
//! only RSA keys, or EC — is served; no certificate, or one of another CA,
//! is not. And the service refuses to start without TLS unless plain HTTP
//! is asked for.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bbs::{Config, Transport};
use bbs_models::{DesiredLrPsRequest, DesiredLrpSchedulingInfosResponse, PingResponse};
use cube_runtime::Service;
use cube_runtime::access::{Access, ClientAccess, ServerTls};
use opi::memory::MemoryScheduler;
use prost::Message;
use testkit::access::{
    CA_PEM, ROGUE_CERT_PEM, ROGUE_KEY_PEM, SERVICE_CERT_PEM, SERVICE_KEY_PEM, SERVICE_RSA_CERT_PEM,
    SERVICE_RSA_KEY_PEM,
};
use tokio_util::sync::CancellationToken;

struct Running {
    url: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), bbs::Error>>,
}

async fn serve(access: Access, transport: Transport) -> Running {
    cube_runtime::install_crypto_provider();
    let shutdown = CancellationToken::new();
    let service = Service::new(shutdown.clone()).with_access(access, ClientAccess::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let config = Config {
        transport,
        ..Config::new(Arc::new(MemoryScheduler::new()))
    };
    let task = tokio::spawn(async move { bbs::run(config, listener, &service).await });
    Running {
        url,
        shutdown,
        task,
    }
}

fn mutual_tls() -> Access {
    let tls = ServerTls {
        cert_chain_pem: SERVICE_CERT_PEM.into(),
        key_pem: SERVICE_KEY_PEM.into(),
        client_ca_pem: Some(CA_PEM.into()),
    };
    Access::new(Some(tls), Vec::new(), &[]).unwrap()
}

/// A client trusting the test CA, presenting `identity` (cert, key).
fn client(identity: Option<(&str, &str)>) -> reqwest::Client {
    let identity = identity.map(|(cert, key)| format!("{cert}\n{key}").into_bytes());
    ClientAccess::new(None, Some(CA_PEM.into()), identity)
        .unwrap()
        .tls_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// POSTs CC's scheduling-info list; the status, or `None` when the
/// connection failed.
async fn list(client: &reqwest::Client, url: &str) -> Option<reqwest::StatusCode> {
    let body = DesiredLrPsRequest {
        domain: "cf-apps".into(),
        ..DesiredLrPsRequest::default()
    };
    let answer = client
        .post(format!("{url}/v1/desired_lrp_scheduling_infos/list"))
        .header("content-type", "application/x-protobuf")
        .body(body.encode_to_vec())
        .send()
        .await
        .ok()?;
    let status = answer.status();
    if status.is_success() {
        let bytes = answer.bytes().await.unwrap();
        let decoded = DesiredLrpSchedulingInfosResponse::decode(bytes).unwrap();
        assert_eq!(decoded.error, None);
    }
    Some(status)
}

#[tokio::test]
async fn only_clients_of_the_client_ca_are_served() {
    let running = serve(mutual_tls(), Transport::MutualTls).await;
    let url = running.url.as_str();
    let ok = Some(reqwest::StatusCode::OK);
    assert_eq!(
        list(
            &client(Some((SERVICE_RSA_CERT_PEM, SERVICE_RSA_KEY_PEM))),
            url
        )
        .await,
        ok,
        "CC's RSA client certificate"
    );
    assert_eq!(
        list(&client(Some((SERVICE_CERT_PEM, SERVICE_KEY_PEM))), url).await,
        ok,
        "an EC client certificate"
    );
    assert_eq!(
        list(&client(None), url).await,
        Some(reqwest::StatusCode::UNAUTHORIZED),
        "no client certificate"
    );
    assert_eq!(
        list(&client(Some((ROGUE_CERT_PEM, ROGUE_KEY_PEM))), url).await,
        None,
        "another CA's certificate fails the handshake"
    );
    // Ping is behind the same door.
    let ping = client(Some((SERVICE_RSA_CERT_PEM, SERVICE_RSA_KEY_PEM)))
        .post(format!("{url}/v1/ping"))
        .send()
        .await
        .unwrap();
    let ping = PingResponse::decode(ping.bytes().await.unwrap()).unwrap();
    assert!(ping.available);
    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn mutual_tls_without_tls_does_not_start() {
    let running = serve(Access::open(), Transport::MutualTls).await;
    let refused = running.task.await.unwrap().unwrap_err();
    assert!(refused.to_string().contains("no TLS"), "{refused}");
}

#[tokio::test]
async fn plain_http_serves_when_asked_for() {
    let running = serve(Access::open(), Transport::PlainHttp).await;
    let url = running.url.replace("https://", "http://");
    assert_eq!(
        list(&reqwest::Client::new(), &url).await,
        Some(reqwest::StatusCode::OK)
    );
    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
}
