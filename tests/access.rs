//! Access control on every API, configured once (issue #12): OPI, St8ge, the
//! Registry (pull and push) and the CC simulator's `/sim` API, all served with
//! TLS, client certificates and a token file from the same `AccessArgs`, answer
//! 401 without credentials or with a wrong token, 403 to a certificate outside
//! the allowed names, refuse another CA's certificate in the handshake, and
//! serve the right token or certificate.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cube_runtime::Service;
use cube_runtime::access::{AccessArgs, ClientAccess, ClientArgs, Secret};
use reqwest::StatusCode;
use testkit::access::{
    CA_PEM, OTHER_CERT_PEM, OTHER_KEY_PEM, ROGUE_CERT_PEM, ROGUE_KEY_PEM, SERVICE_CERT_PEM,
    SERVICE_KEY_PEM, SERVICE_RSA_CERT_PEM, SERVICE_RSA_KEY_PEM, write_pki,
};

const TOKEN: &str = "right-token-0123456789";

fn access_args(dir: &Path) -> AccessArgs {
    let pki = write_pki(dir).unwrap();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("# Cube's tokens\n{TOKEN}\n")).unwrap();
    AccessArgs {
        tls_cert: Some(pki.cert),
        tls_key: Some(pki.key),
        tls_client_ca: Some(pki.ca.clone()),
        tls_client_names: vec!["localhost".into()],
        client: ClientArgs {
            auth_token_file: Some(tokens),
            ca_cert: Some(pki.ca),
            ..ClientArgs::default()
        },
    }
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    (listener, url)
}

/// OPI (memory backend), St8ge, the Registry and the CC simulator, each with
/// the same access settings. Returns their URLs.
struct Services {
    opi: String,
    stager: String,
    registry: String,
    cc: String,
    shutdown: cube_runtime::Shutdown,
    _dir: tempfile::TempDir,
}

async fn start() -> Services {
    let dir = tempfile::tempdir().unwrap();
    let args = access_args(dir.path());
    let server = args.server().unwrap();
    let client = args.client().unwrap();
    let shutdown = cube_runtime::Shutdown::new();
    let service = || Service::new(shutdown.clone()).with_access(server.clone(), client.clone());

    let (opi_listener, opi) = listener().await;
    let config = opi::service::ServiceConfig {
        api: opi::http::ApiConfig {
            client: client.clone(),
            ..opi::http::ApiConfig::default()
        },
        cc_url: None,
        access: server.clone(),
    };
    let scheduler = Arc::new(opi::memory::MemoryScheduler::new());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let metrics = prometheus::Registry::new();
        opi::service::run(config, scheduler, opi_listener, &metrics, stop).await
    });

    let (stager_listener, stager) = listener().await;
    let mut config = stager::Config::new(opi.clone());
    config.client = client.clone();
    config.public_url = Some(stager.parse().unwrap());
    tokio::spawn(stager::run(config, stager_listener, service()));

    let (registry_listener, registry) = listener().await;
    let config = registry::Config::new(dir.path().join("registry"));
    tokio::spawn(registry::run(config, registry_listener, service()));

    let (cc_listener, cc) = listener().await;
    let mut config = cc::sim::Config::new(dir.path().join("cc"));
    config.client = client.clone();
    config.public_url = Some(cc.clone());
    tokio::spawn(cc::sim::run(config, cc_listener, service()));

    Services {
        opi,
        stager,
        registry,
        cc,
        shutdown,
        _dir: dir,
    }
}

/// A client trusting the test CA, sending `token` and presenting `identity`.
fn client(token: Option<&str>, identity: Option<(&str, &str)>) -> reqwest::Client {
    ClientAccess::new(
        token.map(Secret::new),
        Some(CA_PEM.as_bytes().to_vec()),
        identity.map(|(cert, key)| format!("{cert}\n{key}").into_bytes()),
    )
    .unwrap()
    .builder()
    .timeout(Duration::from_secs(20))
    .build()
    .unwrap()
}

/// What one client gets from one request: a status, or no HTTP answer.
async fn status(client: &reqwest::Client, method: &str, url: &str) -> Option<StatusCode> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    client
        .request(method, url)
        .send()
        .await
        .ok()
        .map(|r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_answers_401_403_or_serves_by_credential() {
    let services = start().await;
    let right = client(Some(TOKEN), None);

    // A task in OPI, so that St8ge's cancel (which calls OPI) has work to do.
    let task = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/opi/testdata/task.json"
    ))
    .unwrap();
    let desired = right
        .post(format!("{}/tasks/staging-guid-1", services.opi))
        .header("content-type", "application/json")
        .body(task)
        .send()
        .await
        .unwrap();
    assert!(desired.status().is_success(), "{}", desired.status());

    let endpoints = [
        ("OPI", "GET", format!("{}/apps", services.opi)),
        (
            "St8ge",
            "DELETE",
            format!("{}/stage/staging-guid-1", services.stager),
        ),
        ("Registry pull", "GET", format!("{}/v2/", services.registry)),
        (
            "Registry push",
            "POST",
            format!("{}/v2/cube/test/blobs/uploads/", services.registry),
        ),
        ("CC-sim", "GET", format!("{}/sim/apps", services.cc)),
    ];
    let anonymous = client(None, None);
    let wrong = client(Some("wrong-token"), None);
    let certificate = client(None, Some((SERVICE_CERT_PEM, SERVICE_KEY_PEM)));
    let other = client(None, Some((OTHER_CERT_PEM, OTHER_KEY_PEM)));
    let rogue = client(None, Some((ROGUE_CERT_PEM, ROGUE_KEY_PEM)));
    // Cloud Controller's HTTP client presents RSA keys only.
    let rsa = client(None, Some((SERVICE_RSA_CERT_PEM, SERVICE_RSA_KEY_PEM)));
    for (api, method, url) in &endpoints {
        let got = |c| status(c, method, url);
        assert_eq!(
            got(&anonymous).await,
            Some(StatusCode::UNAUTHORIZED),
            "{api}: no credential"
        );
        assert_eq!(
            got(&wrong).await,
            Some(StatusCode::UNAUTHORIZED),
            "{api}: wrong token"
        );
        assert_eq!(
            got(&other).await,
            Some(StatusCode::FORBIDDEN),
            "{api}: certificate not allowed"
        );
        assert_eq!(got(&rogue).await, None, "{api}: another CA's certificate");
        let by_cert = got(&certificate).await.unwrap();
        assert!(
            by_cert.is_success(),
            "{api}: right certificate got {by_cert}"
        );
        // St8ge's cancel succeeds once; afterwards the task is gone (404),
        // which still shows the credential was accepted.
        for (credential, client) in [("right token", &right), ("RSA certificate", &rsa)] {
            let answer = got(client).await.unwrap();
            assert!(
                answer.is_success() || (*api == "St8ge" && answer == StatusCode::NOT_FOUND),
                "{api}: {credential} got {answer}"
            );
        }
    }

    // Refusals in each API's error shape, with the challenge to answer.
    let refused = anonymous.get(&endpoints[0].2).send().await.unwrap();
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer realm=\"cube\""
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Unauthorized");
    let wrong_answer = wrong.get(&endpoints[0].2).send().await.unwrap();
    assert!(
        wrong_answer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let registry = anonymous.get(&endpoints[2].2).send().await.unwrap();
    assert!(
        registry.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let body: serde_json::Value = registry.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");

    // A kubelet's imagePullSecret: Basic with any user and the token.
    let basic = anonymous
        .get(&endpoints[2].2)
        .basic_auth("kubelet", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
    let basic_wrong = anonymous
        .get(&endpoints[2].2)
        .basic_auth("kubelet", Some("wrong-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic_wrong.status(), StatusCode::UNAUTHORIZED);

    // CC's droplet download stays open, like CC's; the internal API keeps Basic.
    let internal = anonymous
        .get(format!("{}/internal/bulk/apps?batch_size=1", services.cc))
        .send()
        .await
        .unwrap();
    assert_eq!(internal.status(), StatusCode::UNAUTHORIZED);
    // Plain HTTP to a TLS port gets no HTTP answer.
    let plain = services.opi.replacen("https://", "http://", 1);
    assert_eq!(
        status(&anonymous, "GET", &format!("{plain}/apps")).await,
        None
    );
    services.shutdown.cancel();
}
