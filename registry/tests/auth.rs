//! Authentication through the API: Basic, issued and static bearer tokens,
//! anonymous pull.
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns panic to fail the test

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use common::*;
use registry::{Config, Digest};

fn users_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("users");
    std::fs::write(
        &path,
        format!(
            "user alice {}\ntoken sink {}\nuser kubelet {} pull\n",
            Digest::of(b"wonderland"),
            Digest::of(b"sink-token"),
            Digest::of(b"pull-only")
        ),
    )
    .unwrap();
    path
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn secured(anonymous_pull: bool) -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("data"));
    config.auth_file = Some(users_file(dir.path()));
    config.anonymous_pull = anonymous_pull;
    let (router, _) = registry(config).await;
    (dir, router)
}

#[tokio::test]
async fn credentials_are_required_and_checked() {
    let (_dir, router) = secured(false).await;
    let anonymous = get(&router, "/v2/").await;
    assert_eq!(
        (anonymous.status, anonymous.code().as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    assert!(
        anonymous
            .header("www-authenticate")
            .starts_with("Basic realm=")
    );

    let wrong = basic("alice", "nope");
    let reply = send(
        &router,
        Method::GET,
        "/v2/",
        &[("authorization", &wrong)],
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let alice = basic("alice", "wonderland");
    let reply = send(
        &router,
        Method::GET,
        "/v2/",
        &[("authorization", &alice)],
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    let digest = Digest::of(b"data");
    let push = send(
        &router,
        Method::POST,
        &format!("/v2/a/blobs/uploads/?digest={digest}"),
        &[("authorization", "Bearer sink-token")],
        b"data".to_vec(),
    )
    .await;
    assert_eq!(push.status, StatusCode::CREATED);
}

#[tokio::test]
async fn issued_tokens_authorize() {
    let (_dir, router) = secured(false).await;
    assert_eq!(
        get(&router, "/v2/token").await.status,
        StatusCode::UNAUTHORIZED
    );
    let alice = basic("alice", "wonderland");
    let reply = send(
        &router,
        Method::GET,
        "/v2/token?service=cube&scope=repository:a:pull",
        &[("authorization", &alice)],
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let token = reply.json()["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let reply = send(
        &router,
        Method::GET,
        "/v2/_catalog",
        &[("authorization", &bearer)],
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn anonymous_pull_does_not_allow_push() {
    let (_dir, router) = secured(true).await;
    assert_eq!(get(&router, "/v2/").await.status, StatusCode::OK);
    assert_eq!(get(&router, "/v2/a/tags/list").await.code(), "NAME_UNKNOWN");
    let push = send(
        &router,
        Method::POST,
        "/v2/a/blobs/uploads/",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(push.code(), "UNAUTHORIZED");
    let import = send(
        &router,
        Method::POST,
        "/v2/cloudfoundry/x/droplets?hash=h",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(import.code(), "UNAUTHORIZED");
}

#[tokio::test]
async fn pull_only_users_are_denied_pushes() {
    let (_dir, router) = secured(false).await;
    let kubelet = basic("kubelet", "pull-only");
    let pull = send(
        &router,
        Method::GET,
        "/v2/_catalog",
        &[("authorization", &kubelet)],
        Body::empty(),
    )
    .await;
    assert_eq!(pull.status, StatusCode::OK);
    let push = send(
        &router,
        Method::POST,
        "/v2/a/blobs/uploads/",
        &[("authorization", &kubelet)],
        Body::empty(),
    )
    .await;
    assert_eq!(
        (push.status, push.code().as_str()),
        (StatusCode::FORBIDDEN, "DENIED")
    );
}
