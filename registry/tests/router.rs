//! The OCI API through `tower::ServiceExt::oneshot`: reads, pushes, errors.
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns panic to fail the test

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use registry::{Config, Digest};

async fn fresh() -> (tempfile::TempDir, axum::Router, registry::api::Shared) {
    let dir = tempfile::tempdir().unwrap();
    let (router, state) = registry(Config::new(dir.path())).await;
    (dir, router, state)
}

#[tokio::test]
async fn base_answers_with_the_api_version() {
    let (_dir, router, _) = fresh().await;
    let reply = get(&router, "/v2/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("docker-distribution-api-version"),
        "registry/2.0"
    );
}

/// Blob reads answer the same from memory (the hot-blob cache) and streamed
/// from the store.
#[tokio::test]
async fn monolithic_blob_push_then_head_get_and_range() {
    for blob_cache_bytes in [registry::config::DEFAULT_BLOB_CACHE_BYTES, 0] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            blob_cache_bytes,
            ..Config::new(dir.path())
        };
        let (router, _) = registry(config).await;
        let data = b"0123456789";
        let digest = push_blob(&router, "lib/x", data).await;

        let head = send(
            &router,
            Method::HEAD,
            &format!("/v2/lib/x/blobs/{digest}"),
            &[],
            Body::empty(),
        )
        .await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.header("content-length"), "10");
        assert_eq!(head.header("docker-content-digest"), digest.to_string());
        assert!(head.body.is_empty());

        let full = get(&router, &format!("/v2/lib/x/blobs/{digest}")).await;
        assert_eq!(full.body.as_ref(), data);

        let part = send(
            &router,
            Method::GET,
            &format!("/v2/lib/x/blobs/{digest}"),
            &[("range", "bytes=2-4")],
            Body::empty(),
        )
        .await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.header("content-range"), "bytes 2-4/10");
        assert_eq!(part.body.as_ref(), b"234");

        let bad = send(
            &router,
            Method::GET,
            &format!("/v2/lib/x/blobs/{digest}"),
            &[("range", "bytes=20-")],
            Body::empty(),
        )
        .await;
        assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);

        // Other repositories do not see it.
        let other = get(&router, &format!("/v2/lib/y/blobs/{digest}")).await;
        assert_eq!(
            (other.status, other.code().as_str()),
            (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
        );
    }
}

#[tokio::test]
async fn digest_mismatch_stores_nothing() {
    let (_dir, router, state) = fresh().await;
    let claimed = Digest::of(b"something else");
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/a/blobs/uploads/?digest={claimed}"),
        &[],
        b"actual".to_vec(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    assert_eq!(state.store.blob_size_global(&claimed).await.unwrap(), None);
    assert_eq!(
        state
            .store
            .blob_size_global(&Digest::of(b"actual"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn chunked_upload_checks_order_and_digest() {
    let (_dir, router, _) = fresh().await;
    let start = send(
        &router,
        Method::POST,
        "/v2/a/b/blobs/uploads/",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let location = start.header("location").to_owned();
    assert!(location.starts_with("/v2/a/b/blobs/uploads/"), "{location}");

    let first = send(
        &router,
        Method::PATCH,
        &location,
        &[("content-range", "0-2")],
        b"abc".to_vec(),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.header("range"), "0-2");

    let out_of_order = send(
        &router,
        Method::PATCH,
        &location,
        &[("content-range", "5-6")],
        b"xy".to_vec(),
    )
    .await;
    assert_eq!(out_of_order.status, StatusCode::RANGE_NOT_SATISFIABLE);

    let second = send(&router, Method::PATCH, &location, &[], b"def".to_vec()).await;
    assert_eq!(second.header("range"), "0-5");
    let status = get(&router, &location).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-5");

    let wrong = Digest::of(b"abcdefg");
    let reply = send(
        &router,
        Method::PUT,
        &format!("{location}?digest={wrong}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );

    let digest = Digest::of(b"abcdefg");
    let done = send(
        &router,
        Method::PUT,
        &format!("{location}?digest={digest}"),
        &[],
        b"g".to_vec(),
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED);
    assert_eq!(done.header("location"), format!("/v2/a/b/blobs/{digest}"));
    assert_eq!(
        get(&router, &format!("/v2/a/b/blobs/{digest}"))
            .await
            .body
            .as_ref(),
        b"abcdefg"
    );
    // The session is gone.
    assert_eq!(get(&router, &location).await.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn cancelled_and_foreign_uploads_are_unknown() {
    let (_dir, router, _) = fresh().await;
    let start = send(
        &router,
        Method::POST,
        "/v2/a/blobs/uploads/",
        &[],
        Body::empty(),
    )
    .await;
    let location = start.header("location").to_owned();
    let foreign = location.replace("/v2/a/", "/v2/other/");
    assert_eq!(get(&router, &foreign).await.code(), "BLOB_UPLOAD_UNKNOWN");
    let cancel = send(&router, Method::DELETE, &location, &[], Body::empty()).await;
    assert_eq!(cancel.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&router, &location).await.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        get(&router, "/v2/a/blobs/uploads/../../etc")
            .await
            .status
            .as_u16()
            / 100,
        4
    );
}

#[tokio::test]
async fn manifests_need_their_blobs_then_serve_by_tag_and_digest() {
    let (_dir, router, _) = fresh().await;
    let (config, layer) = (b"{}".as_slice(), b"layer".as_slice());
    let manifest = image_manifest(config, &[layer]);
    let digest = Digest::of(&manifest);

    let early = send(
        &router,
        Method::PUT,
        "/v2/app/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        manifest.clone(),
    )
    .await;
    assert_eq!(
        (early.status, early.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );

    push_blob(&router, "app", config).await;
    push_blob(&router, "app", layer).await;
    let put = send(
        &router,
        Method::PUT,
        "/v2/app/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        manifest.clone(),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(put.header("docker-content-digest"), digest.to_string());

    for reference in ["v1".to_owned(), digest.to_string()] {
        let reply = get(&router, &format!("/v2/app/manifests/{reference}")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), OCI_MANIFEST);
        assert_eq!(reply.header("docker-content-digest"), digest.to_string());
        assert_eq!(reply.body.as_ref(), manifest.as_slice());
    }
    let head = send(
        &router,
        Method::HEAD,
        "/v2/app/manifests/v1",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(head.header("content-length"), manifest.len().to_string());
    assert!(head.body.is_empty());

    // Pushing by digest must match the content.
    let wrong = send(
        &router,
        Method::PUT,
        &format!("/v2/app/manifests/{}", Digest::of(b"x")),
        &[("content-type", OCI_MANIFEST)],
        manifest.clone(),
    )
    .await;
    assert_eq!(wrong.code(), "DIGEST_INVALID");

    // Content-Type must agree with the body's mediaType.
    let mismatch = send(
        &router,
        Method::PUT,
        "/v2/app/manifests/v2",
        &[("content-type", "application/vnd.oci.image.index.v1+json")],
        manifest.clone(),
    )
    .await;
    assert_eq!(mismatch.code(), "MANIFEST_INVALID");

    // Delete the tag, then the manifest.
    let untag = send(
        &router,
        Method::DELETE,
        "/v2/app/manifests/v1",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(untag.status, StatusCode::ACCEPTED);
    assert_eq!(
        get(&router, "/v2/app/manifests/v1").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        get(&router, &format!("/v2/app/manifests/{digest}"))
            .await
            .status,
        StatusCode::OK
    );
    let delete = send(
        &router,
        Method::DELETE,
        &format!("/v2/app/manifests/{digest}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(delete.status, StatusCode::ACCEPTED);
    assert_eq!(
        get(&router, &format!("/v2/app/manifests/{digest}"))
            .await
            .code(),
        "MANIFEST_UNKNOWN"
    );
}

#[tokio::test]
async fn a_moved_tag_serves_its_new_manifest() {
    let (_dir, router, _) = fresh().await;
    let config = b"{}".as_slice();
    push_blob(&router, "app", config).await;
    let mut pushed = Vec::new();
    for layer in [b"one".as_slice(), b"two".as_slice(), b"one".as_slice()] {
        push_blob(&router, "app", layer).await;
        let manifest = image_manifest(config, &[layer]);
        let put = send(
            &router,
            Method::PUT,
            "/v2/app/manifests/latest",
            &[("content-type", OCI_MANIFEST)],
            manifest.clone(),
        )
        .await;
        assert_eq!(put.status, StatusCode::CREATED);
        // Read (and so remember) the tag before it moves again.
        for _ in 0..2 {
            let reply = get(&router, "/v2/app/manifests/latest").await;
            assert_eq!(reply.body.as_ref(), manifest.as_slice());
            assert_eq!(
                reply.header("docker-content-digest"),
                Digest::of(&manifest).to_string()
            );
        }
        pushed.push(manifest);
    }
    assert_eq!(pushed[0], pushed[2]);
}

#[tokio::test]
async fn docker_schema2_and_index_manifests() {
    let (_dir, router, _) = fresh().await;
    let config = b"{\"docker\":1}".as_slice();
    push_blob(&router, "d", config).await;
    let docker = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": Digest::of(config).to_string(), "size": config.len()},
        "layers": [],
    }))
    .unwrap();
    let put = send(
        &router,
        Method::PUT,
        "/v2/d/manifests/amd64",
        &[(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        docker.clone(),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": Digest::of(&docker).to_string(), "size": docker.len(), "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let put = send(
        &router,
        Method::PUT,
        "/v2/d/manifests/latest",
        &[(
            "content-type",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )],
        list,
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let reply = get(&router, "/v2/d/manifests/latest").await;
    assert_eq!(
        reply.header("content-type"),
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let reply = get(&router, "/v2/d/manifests/amd64").await;
    assert_eq!(
        reply.header("content-type"),
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // An index pointing at a manifest the repository lacks is refused.
    let dangling = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": Digest::of(b"nope").to_string(), "size": 4}],
    }))
    .unwrap();
    let put = send(
        &router,
        Method::PUT,
        "/v2/d/manifests/bad",
        &[("content-type", "application/vnd.oci.image.index.v1+json")],
        dangling,
    )
    .await;
    assert_eq!(put.code(), "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn tags_and_catalog_paginate() {
    let (_dir, router, _) = fresh().await;
    let config = b"{}".as_slice();
    let manifest = image_manifest(config, &[]);
    for repo in ["r/a", "r/b", "r/c"] {
        push_blob(&router, repo, config).await;
        for tag in ["t1", "t2", "t3"] {
            let put = send(
                &router,
                Method::PUT,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("content-type", OCI_MANIFEST)],
                manifest.clone(),
            )
            .await;
            assert_eq!(put.status, StatusCode::CREATED);
        }
    }
    let all = get(&router, "/v2/r/b/tags/list").await.json();
    assert_eq!(
        all,
        serde_json::json!({"name": "r/b", "tags": ["t1", "t2", "t3"]})
    );
    let first = get(&router, "/v2/r/b/tags/list?n=2").await;
    assert_eq!(first.json()["tags"], serde_json::json!(["t1", "t2"]));
    assert_eq!(
        first.header("link"),
        "</v2/r/b/tags/list?last=t2&n=2>; rel=\"next\""
    );
    let rest = get(&router, "/v2/r/b/tags/list?n=2&last=t2").await;
    assert_eq!(rest.json()["tags"], serde_json::json!(["t3"]));
    assert!(rest.headers.get("link").is_none());

    let catalog = get(&router, "/v2/_catalog?n=2").await;
    assert_eq!(
        catalog.json()["repositories"],
        serde_json::json!(["r/a", "r/b"])
    );
    assert!(catalog.header("link").contains("last=r/b"));
    let rest = get(&router, "/v2/_catalog?last=r%2Fb").await;
    assert_eq!(rest.json()["repositories"], serde_json::json!(["r/c"]));

    let bad = get(&router, "/v2/_catalog?n=-1").await;
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID")
    );

    let unknown = get(&router, "/v2/nope/tags/list").await;
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
}

#[tokio::test]
async fn invalid_names_references_and_digests_are_named() {
    let (_dir, router, _) = fresh().await;
    let cases = [
        ("/v2/Upper/manifests/latest", "NAME_INVALID"),
        ("/v2/a/manifests/latest", "MANIFEST_UNKNOWN"),
        (
            &format!("/v2/a/blobs/{}", Digest::of(b"none")),
            "BLOB_UNKNOWN",
        ),
    ];
    for (uri, code) in cases {
        let reply = get(&router, uri).await;
        assert_eq!(reply.code(), code, "{uri}");
        assert!(reply.json()["errors"][0]["message"].as_str().unwrap().len() > 10);
    }
    let reply = send(
        &router,
        Method::PATCH,
        "/v2/a/manifests/latest",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
    let reply = send(
        &router,
        Method::PUT,
        "/v2/a/manifests/latest",
        &[("content-type", OCI_MANIFEST)],
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(reply.code(), "MANIFEST_INVALID");
}

/// A reference or digest that cannot be valid names nothing: reading or
/// deleting it is 404 (what the distribution-spec conformance suite and
/// clients expect, with the reason in `detail`); only pushing it is a 400.
#[tokio::test]
async fn references_that_cannot_exist_are_unknown_but_cannot_be_pushed() {
    let (_dir, router, _) = fresh().await;
    let lookups = [
        ("/v2/a/manifests/.INVALID_MANIFEST_NAME", "MANIFEST_UNKNOWN"),
        ("/v2/a/manifests/-bad-tag", "MANIFEST_UNKNOWN"),
        ("/v2/a/manifests/sha256:1234", "MANIFEST_UNKNOWN"),
        ("/v2/a/blobs/md5:abc", "BLOB_UNKNOWN"),
        ("/v2/a/blobs/sha256:XYZ", "BLOB_UNKNOWN"),
    ];
    for (uri, code) in lookups {
        for method in [Method::GET, Method::DELETE] {
            let reply = send(&router, method.clone(), uri, &[], Body::empty()).await;
            assert_eq!(
                (reply.status, reply.code().as_str()),
                (StatusCode::NOT_FOUND, code),
                "{method} {uri}"
            );
            let detail = reply.json()["errors"][0]["detail"].clone();
            assert!(
                detail.as_str().is_some_and(|d| d.contains("names no")),
                "{method} {uri}: detail says why: {detail}"
            );
        }
        let head = send(&router, Method::HEAD, uri, &[], Body::empty()).await;
        assert_eq!(head.status, StatusCode::NOT_FOUND, "HEAD {uri}");
    }
    let manifest = image_manifest(b"{}", &[]);
    push_blob(&router, "a", b"{}").await;
    let put = send(
        &router,
        Method::PUT,
        "/v2/a/manifests/.INVALID_MANIFEST_NAME",
        &[("content-type", OCI_MANIFEST)],
        manifest,
    )
    .await;
    assert_eq!(
        (put.status, put.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
    let upload = send(
        &router,
        Method::POST,
        "/v2/a/blobs/uploads/?digest=md5:abc",
        &[],
        b"data".to_vec(),
    )
    .await;
    assert_eq!(
        (upload.status, upload.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let mount = send(
        &router,
        Method::POST,
        "/v2/a/blobs/uploads/?mount=sha256:XYZ&from=b",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(
        (mount.status, mount.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
}

/// `?mount=` without `from`: an ordinary upload in the target repository
/// (202) by default; with automatic cross-mounting, a mount from wherever the
/// registry holds the blob (201), and still an upload for an unknown blob.
#[tokio::test]
async fn mount_without_from_is_an_upload_unless_automatic() {
    for automatic in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path());
        config.automatic_crossmount = automatic;
        let (router, _) = registry(config).await;
        let digest = push_blob(&router, "source", b"shared layer").await;
        let mount = |digest: Digest| {
            let router = router.clone();
            async move {
                send(
                    &router,
                    Method::POST,
                    &format!("/v2/target/blobs/uploads/?mount={digest}"),
                    &[],
                    Body::empty(),
                )
                .await
            }
        };
        let reply = mount(digest.clone()).await;
        if automatic {
            assert_eq!(reply.status, StatusCode::CREATED);
            assert_eq!(
                reply.header("location"),
                format!("/v2/target/blobs/{digest}")
            );
            let blob = get(&router, &format!("/v2/target/blobs/{digest}")).await;
            assert_eq!(blob.body.as_ref(), b"shared layer");
        } else {
            assert_eq!(reply.status, StatusCode::ACCEPTED);
            assert!(
                reply
                    .header("location")
                    .starts_with("/v2/target/blobs/uploads/")
            );
            let blob = get(&router, &format!("/v2/target/blobs/{digest}")).await;
            assert_eq!(blob.code(), "BLOB_UNKNOWN", "nothing was mounted");
        }
        let unknown = mount(Digest::of(b"nowhere")).await;
        assert_eq!(
            unknown.status,
            StatusCode::ACCEPTED,
            "automatic: {automatic}"
        );
        assert!(
            unknown
                .header("location")
                .starts_with("/v2/target/blobs/uploads/")
        );
    }
}

/// Referrers of a digest nothing refers to (or that is not even stored): an
/// empty OCI index, 200.
#[tokio::test]
async fn referrers_of_an_unknown_subject_are_an_empty_index() {
    let (_dir, router, _) = fresh().await;
    let reply = get(
        &router,
        &format!("/v2/app/referrers/{}", Digest::of(b"none")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let index = reply.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
    assert_eq!(
        reply.header("content-type"),
        "application/vnd.oci.image.index.v1+json"
    );
}

#[tokio::test]
async fn cross_repository_mount() {
    let (_dir, router, _) = fresh().await;
    let digest = push_blob(&router, "source", b"shared layer").await;
    let mounted = send(
        &router,
        Method::POST,
        &format!("/v2/target/blobs/uploads/?mount={digest}&from=source"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(mounted.status, StatusCode::CREATED);
    assert_eq!(
        mounted.header("location"),
        format!("/v2/target/blobs/{digest}")
    );
    assert_eq!(
        get(&router, &format!("/v2/target/blobs/{digest}"))
            .await
            .body
            .as_ref(),
        b"shared layer"
    );

    // Not in `from`: an ordinary upload starts instead.
    let fallback = send(
        &router,
        Method::POST,
        &format!("/v2/target/blobs/uploads/?mount={digest}&from=elsewhere"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(fallback.status, StatusCode::ACCEPTED);

    // Deleting from one repository leaves the other's copy.
    let delete = send(
        &router,
        Method::DELETE,
        &format!("/v2/target/blobs/{digest}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(delete.status, StatusCode::ACCEPTED);
    assert_eq!(
        get(&router, &format!("/v2/target/blobs/{digest}"))
            .await
            .code(),
        "BLOB_UNKNOWN"
    );
    assert_eq!(
        get(&router, &format!("/v2/source/blobs/{digest}"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn referrers_list_manifests_with_a_subject() {
    let (_dir, router, _) = fresh().await;
    let config = b"{}".as_slice();
    push_blob(&router, "app", config).await;
    let subject = image_manifest(config, &[]);
    let subject_digest = Digest::of(&subject);
    send(
        &router,
        Method::PUT,
        "/v2/app/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        subject.clone(),
    )
    .await;

    let empty_config = b"{}".as_slice();
    let signature = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::of(empty_config).to_string(), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest.to_string(), "size": subject.len()},
        "annotations": {"signed-by": "test"},
    }))
    .unwrap();
    let put = send(
        &router,
        Method::PUT,
        &format!("/v2/app/manifests/{}", Digest::of(&signature)),
        &[("content-type", OCI_MANIFEST)],
        signature.clone(),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(put.header("oci-subject"), subject_digest.to_string());

    let referrers = get(&router, &format!("/v2/app/referrers/{subject_digest}")).await;
    assert_eq!(
        referrers.header("content-type"),
        "application/vnd.oci.image.index.v1+json"
    );
    let list = referrers.json();
    assert_eq!(list["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["manifests"][0]["digest"],
        Digest::of(&signature).to_string()
    );
    assert_eq!(
        list["manifests"][0]["artifactType"],
        "application/vnd.example.signature"
    );
    assert_eq!(list["manifests"][0]["annotations"]["signed-by"], "test");

    let filtered = get(
        &router,
        &format!("/v2/app/referrers/{subject_digest}?artifactType=other"),
    )
    .await;
    assert_eq!(filtered.header("oci-filters-applied"), "artifactType");
    assert_eq!(filtered.json()["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn a_body_that_breaks_off_leaves_nothing_behind() {
    let (dir, router, state) = fresh().await;
    let data = vec![1u8; 300_000];
    let digest = Digest::of(&data);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from(data[..100_000].to_vec())),
        Err(std::io::Error::other("client went away")),
    ];
    let body = Body::from_stream(futures::stream::iter(chunks));
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/a/blobs/uploads/?digest={digest}"),
        &[],
        body,
    )
    .await;
    assert_eq!(
        reply.status.as_u16() / 100,
        4,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(state.store.blob_size_global(&digest).await.unwrap(), None);
    assert_eq!(
        std::fs::read_dir(dir.path().join("_tmp")).unwrap().count(),
        0,
        "temp file removed"
    );

    // A chunk that breaks off is rolled back; the session continues where it was.
    let start = send(
        &router,
        Method::POST,
        "/v2/a/blobs/uploads/",
        &[],
        Body::empty(),
    )
    .await;
    let location = start.header("location").to_owned();
    send(
        &router,
        Method::PATCH,
        &location,
        &[],
        data[..1000].to_vec(),
    )
    .await;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from(data[1000..2000].to_vec())),
        Err(std::io::Error::other("cut")),
    ];
    let broken = send(
        &router,
        Method::PATCH,
        &location,
        &[],
        Body::from_stream(futures::stream::iter(chunks)),
    )
    .await;
    assert_eq!(broken.status.as_u16() / 100, 4);
    assert_eq!(get(&router, &location).await.header("range"), "0-999");
    let done = send(
        &router,
        Method::PUT,
        &format!("{location}?digest={digest}"),
        &[],
        data[1000..].to_vec(),
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED);
    assert_eq!(
        get(&router, &format!("/v2/a/blobs/{digest}"))
            .await
            .body
            .len(),
        data.len()
    );
}

#[tokio::test]
async fn leftover_temp_files_are_cleared_on_start_and_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"half-written";
    std::fs::create_dir_all(dir.path().join("_tmp")).unwrap();
    std::fs::write(dir.path().join("_tmp/0123"), data).unwrap();
    let (router, _) = registry(Config::new(dir.path())).await;
    assert_eq!(
        std::fs::read_dir(dir.path().join("_tmp")).unwrap().count(),
        0
    );
    assert_eq!(
        get(&router, &format!("/v2/a/blobs/{}", Digest::of(data)))
            .await
            .code(),
        "BLOB_UNKNOWN"
    );
}

#[tokio::test]
async fn blobs_larger_than_axum_body_limits_stream_through() {
    let (_dir, router, _) = fresh().await;
    let data: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = push_blob(&router, "big", &data).await;
    let reply = get(&router, &format!("/v2/big/blobs/{digest}")).await;
    assert_eq!(reply.body.len(), data.len());
    assert_eq!(Digest::of(&reply.body), digest);
}
