use std::net::SocketAddr;

use axum::routing::get;

use super::*;

const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testkit/src/access/pki/");

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(format!("{PKI}{name}")).unwrap()
}

fn tls(client_ca: bool) -> ServerTls {
    ServerTls {
        cert_chain_pem: pem("service.pem"),
        key_pem: pem("service-key.pem"),
        client_ca_pem: client_ca.then(|| pem("ca.pem")),
    }
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

fn peer(name: &str) -> PeerCertificate {
    let der = CertificateDer::pem_slice_iter(&pem(name))
        .next()
        .unwrap()
        .unwrap();
    PeerCertificate(Arc::new(der))
}

#[test]
fn the_policy_answers_401_for_missing_or_wrong_tokens() {
    let access = Access::new(None, vec![Secret::new("right-token")], &[]).unwrap();
    let policy = access.policy();
    assert!(policy.required());
    assert_eq!(policy.check(None, None), Err(Refusal::Missing));
    assert_eq!(
        policy.check(Some(&bearer("wrong-token")), None),
        Err(Refusal::InvalidToken)
    );
    assert_eq!(
        policy.check(Some(&bearer("right-token")), None),
        Ok(Principal::Token)
    );
    // A prefix of the token is not the token; other schemes are no credential.
    assert_eq!(
        policy.check(Some(&bearer("right")), None),
        Err(Refusal::InvalidToken)
    );
    let basic = HeaderValue::from_static("Basic cmlnaHQtdG9rZW4=");
    assert_eq!(policy.check(Some(&basic), None), Err(Refusal::Missing));
    // Certificates are not accepted without a client CA.
    assert!(matches!(
        policy.check(None, Some(&peer("service.pem"))),
        Err(Refusal::Forbidden(_))
    ));
    assert_eq!(Refusal::Missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        Refusal::InvalidToken.challenge(),
        Some("Bearer realm=\"cube\", error=\"invalid_token\"")
    );
}

#[test]
fn client_certificates_outside_the_allowed_names_get_403() {
    let access = Access::new(Some(tls(true)), Vec::new(), &["localhost".to_owned()]).unwrap();
    let policy = access.policy();
    assert_eq!(
        policy.check(None, Some(&peer("service.pem"))),
        Ok(Principal::Certificate)
    );
    let refused = policy.check(None, Some(&peer("other.pem"))).unwrap_err();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.challenge(), None);
    assert_eq!(policy.check(None, None), Err(Refusal::Missing));
    // Without a names list, any certificate of the CA will do.
    let any = Access::new(Some(tls(true)), Vec::new(), &[]).unwrap();
    assert_eq!(
        any.policy().check(None, Some(&peer("other.pem"))),
        Ok(Principal::Certificate)
    );
}

#[test]
fn bad_settings_name_the_problem() {
    let no_ca = Access::new(None, Vec::new(), &["localhost".to_owned()]).unwrap_err();
    assert!(no_ca.to_string().contains("--tls-client-ca"), "{no_ca}");
    let mut wrong_key = tls(false);
    wrong_key.key_pem = pem("other-key.pem");
    let error = Access::new(Some(wrong_key), Vec::new(), &[]).unwrap_err();
    assert!(error.to_string().contains("do not match"), "{error}");
    let mut no_cert = tls(false);
    no_cert.cert_chain_pem = b"not pem".to_vec();
    let error = Access::new(Some(no_cert), Vec::new(), &[]).unwrap_err();
    assert!(error.to_string().contains("--tls-cert"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("tokens");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    let error = read_tokens(&empty).unwrap_err();
    assert!(error.to_string().contains("holds no token"), "{error}");
    std::fs::write(&empty, "# comment\n  first  \nsecond\n").unwrap();
    let tokens = read_tokens(&empty).unwrap();
    assert_eq!(
        tokens.iter().map(Secret::expose).collect::<Vec<_>>(),
        ["first", "second"]
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let secret = "s3cr3t-value-for-debug";
    let access = Access::new(Some(tls(true)), vec![Secret::new(secret)], &[]).unwrap();
    let client = ClientAccess::new(
        Some(Secret::new(secret)),
        Some(pem("ca.pem")),
        Some([pem("service.pem"), pem("service-key.pem")].concat()),
    )
    .unwrap();
    let args = AccessArgs::default();
    for shown in [
        format!("{access:?}"),
        format!("{client:?}"),
        format!("{:?}", Secret::new(secret)),
        format!("{:?}", tls(true)),
        format!("{args:?}"),
    ] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
    assert!(format!("{:?}", client.authorization().unwrap()).contains("Sensitive"));
}

#[test]
fn comparison_is_exact() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(!constant_time_eq(b"", b"a"));
}

async fn serve(access: Access) -> (SocketAddr, crate::Shutdown) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = crate::Shutdown::new();
    let router = access.guard(axum::Router::new().route("/hello", get(|| async { "hello" })));
    let stop = shutdown.clone();
    tokio::spawn(async move { crate::serve_with(listener, router, stop, &access).await });
    (addr, shutdown)
}

fn client(token: Option<&str>, identity: Option<(&str, &str)>) -> reqwest::Client {
    ClientAccess::new(
        token.map(Secret::new),
        Some(pem("ca.pem")),
        identity.map(|(cert, key)| [pem(cert), pem(key)].concat()),
    )
    .unwrap()
    .builder()
    .timeout(std::time::Duration::from_secs(10))
    .build()
    .unwrap()
}

#[tokio::test]
async fn https_with_client_certificates_or_tokens() {
    let access = Access::new(
        Some(tls(true)),
        vec![Secret::new("right-token")],
        &["localhost".to_owned()],
    )
    .unwrap();
    let (addr, shutdown) = serve(access).await;
    let url = format!("https://localhost:{}/hello", addr.port());
    let status = |client: reqwest::Client| {
        let url = url.clone();
        async move { client.get(url).send().await.map(|r| r.status()) }
    };

    let anonymous = status(client(None, None)).await.unwrap();
    assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
    let wrong = status(client(Some("wrong-token"), None)).await.unwrap();
    assert_eq!(wrong, StatusCode::UNAUTHORIZED);
    let token = status(client(Some("right-token"), None)).await.unwrap();
    assert_eq!(token, StatusCode::OK);
    let cert = status(client(None, Some(("service.pem", "service-key.pem"))))
        .await
        .unwrap();
    assert_eq!(cert, StatusCode::OK);
    let other = status(client(None, Some(("other.pem", "other-key.pem"))))
        .await
        .unwrap();
    assert_eq!(other, StatusCode::FORBIDDEN);
    // Another CA's certificate fails the handshake: no HTTP answer at all.
    assert!(
        status(client(None, Some(("rogue.pem", "rogue-key.pem"))))
            .await
            .is_err()
    );
    // A client that does not trust the CA refuses the server.
    let untrusting = ClientAccess::default().builder().build().unwrap();
    assert!(status(untrusting).await.is_err());

    // A client that never finishes its handshake does not block others.
    let _stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    let again = status(client(Some("right-token"), None)).await.unwrap();
    assert_eq!(again, StatusCode::OK);
    shutdown.cancel();
}

#[tokio::test]
async fn refusals_carry_the_challenge_and_the_json_error_shape() {
    let access = Access::new(None, vec![Secret::new("right-token")], &[]).unwrap();
    let (addr, shutdown) = serve(access).await;
    let url = format!("http://{addr}/hello");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"cube\""
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Unauthorized");
    let response = client(Some("wrong-token"), None)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"cube\", error=\"invalid_token\""
    );
    let ok = client(Some("right-token"), None)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "hello");
    shutdown.cancel();
}

#[test]
fn tasks_get_the_token_or_else_the_client_certificate() {
    let mut identity = pem("service.pem");
    identity.extend(pem("service-key.pem"));
    let with_token = ClientAccess::new(
        Some(Secret::new("t0ken")),
        Some(pem("ca.pem")),
        Some(identity.clone()),
    )
    .unwrap();
    let names = |access: &ClientAccess| -> Vec<String> {
        access
            .task_environment()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    };
    assert_eq!(names(&with_token), [TOKEN_ENV, CA_PEM_ENV]);

    // Certificates only: the task presents the client certificate, and what
    // it reads back from that environment is a working identity.
    let certs_only = ClientAccess::new(None, Some(pem("ca.pem")), Some(identity)).unwrap();
    let env = certs_only.task_environment();
    assert_eq!(
        env.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [IDENTITY_PEM_ENV, CA_PEM_ENV]
    );
    let (_, pem_text) = &env[0];
    assert!(reqwest::Identity::from_pem(pem_text.as_bytes()).is_ok());
}
