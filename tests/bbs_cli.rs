//! End-to-end: the `cube bbs` binary as an operator runs it for Cloud
//! Controller — mutual TLS unless plain HTTP is asked for; CC's calls
//! answered; metrics on the admin port.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::Running;
use std::time::Duration;

use bbs_models::{
    DesiredLrPsRequest, DesiredLrpSchedulingInfosResponse, PingResponse, UpsertDomainRequest,
    UpsertDomainResponse,
};
use prost::Message;
use testkit::access::{CA_PEM, SERVICE_RSA_CERT_PEM, SERVICE_RSA_KEY_PEM, write_pki};

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cube"));
    command
        .args(["--log-format", "json", "bbs", "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Starts `cube bbs <args>` and reads the bound addresses from its
/// "cube bbs started" log line.
fn start(args: &[&str]) -> Running {
    common::start_service(command(args), "cube bbs started")
}

async fn post<A: Message + Default>(
    http: &reqwest::Client,
    url: &str,
    request: &impl Message,
) -> A {
    let answer = http
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK, "{url}");
    A::decode(answer.bytes().await.unwrap()).unwrap()
}

#[test]
fn without_tls_or_plain_http_it_refuses_to_start() {
    let output = command(&[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("mutual TLS") && stderr.contains("--plain-http"),
        "{stderr}"
    );
}

#[tokio::test]
async fn with_plain_http_it_serves_cc_and_counts() {
    cube_runtime::install_crypto_provider();
    let cube = start(&["--plain-http", "--stack", "cflinuxfs4=example/cflinuxfs4:1"]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("http://{}", cube.api);
    let ping: PingResponse = post(&http, &format!("{base}/v1/ping"), &()).await;
    assert!(ping.available);
    let upsert = UpsertDomainRequest {
        domain: "cf-apps".into(),
        ttl: 120,
    };
    let answer: UpsertDomainResponse =
        post(&http, &format!("{base}/v1/domains/upsert"), &upsert).await;
    assert_eq!(answer.error, None);
    let list = DesiredLrPsRequest {
        domain: "cf-apps".into(),
        ..DesiredLrPsRequest::default()
    };
    let infos: DesiredLrpSchedulingInfosResponse = post(
        &http,
        &format!("{base}/v1/desired_lrp_scheduling_infos/list"),
        &list,
    )
    .await;
    assert_eq!(infos.error, None);
    assert!(infos.desired_lrp_scheduling_infos.is_empty());
    let metrics = http
        .get(format!("http://{}/metrics", cube.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"cube_bbs_requests_total{error="none",route="/v1/domains/upsert"} 1"#),
        "{metrics}"
    );
    let ready = http
        .get(format!("http://{}/readyz", cube.admin))
        .send()
        .await
        .unwrap();
    assert!(ready.status().is_success());
}

#[tokio::test]
async fn with_mutual_tls_cc_s_rsa_certificate_is_served() {
    cube_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = write_pki(dir.path()).unwrap();
    let cube = start(&[
        "--tls-cert",
        pki.cert.to_str().unwrap(),
        "--tls-key",
        pki.key.to_str().unwrap(),
        "--tls-client-ca",
        pki.ca.to_str().unwrap(),
    ]);
    let client = |identity: Option<String>| {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .add_root_certificate(reqwest::Certificate::from_pem(CA_PEM.as_bytes()).unwrap());
        if let Some(pem) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    };
    let port = cube.api.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}/v1/ping");
    let cc = client(Some(format!(
        "{SERVICE_RSA_CERT_PEM}\n{SERVICE_RSA_KEY_PEM}"
    )));
    let ping: PingResponse = post(&cc, &url, &()).await;
    assert!(ping.available);
    let anonymous = client(None).post(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
}
