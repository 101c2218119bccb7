//! CC's side of staging: build the staging request, send it to the stager
//! (`POST {stager}/stage/{staging_guid}`; anything but 202 fails the build as
//! `RunnerError`, see [`super::stage_answer`]), or, for a Docker app when no stager
//! is configured, record the image as the droplet directly; stream a build's
//! staging output from the stager ([`logs`]).

use std::collections::BTreeMap;

use axum::response::IntoResponse;

use super::Sim;
use super::state::{App, Build, Lifecycle};
use crate::model::{
    Buildpack, BuildpackStagingLifecycle, DockerStagingLifecycle, EnvironmentVariable,
    LifecycleMetadata, StagingError, StagingLifecycle, StagingRequest, StagingResult,
};
use crate::{Error, Result};

/// CC's default minimum staging memory (`staging.minimum_staging_memory_mb`).
const MIN_STAGING_MEMORY_MB: u64 = 1024;
/// CC's default minimum staging disk (`staging.minimum_staging_disk_mb`).
const MIN_STAGING_DISK_MB: u64 = 4096;

/// Stages app `name`: starts a build and hands it to the stager. Returns the
/// build as it stands after the hand-off.
pub async fn stage(sim: &Sim, name: &str, start: bool) -> Result<Build> {
    let snapshot = sim.store.snapshot();
    let app = snapshot
        .app_by_name(name)
        .ok_or_else(|| Error::not_found(format!("app `{name}` not found")))?;
    if sim.stager_url.is_none() && matches!(app.lifecycle, Lifecycle::Buildpack { .. }) {
        return Err(Error::unprocessable(format!(
            "no stager configured: cc-sim needs --stager-url (St8ge) to stage buildpack app `{name}`; \
             Docker apps stage without one"
        )));
    }
    let now = super::now_micros();
    let build = sim
        .store
        .update(|state| state.start_build(name, start, now))
        .await?;
    let snapshot = sim.store.snapshot();
    let app = snapshot
        .app_by_guid(&build.app_guid)
        .ok_or_else(|| Error::not_found(format!("app `{name}` not found")))?;
    match &sim.stager_url {
        Some(stager) => {
            let request = staging_request(sim, app, &build);
            if let Err(error) = send(sim, stager, &build.guid, &request).await {
                let message = error.to_string();
                sim.store
                    .update(|state| {
                        state.fail_build(&build.guid, StagingError::staging(message.clone()));
                        Ok(())
                    })
                    .await?;
                return Err(error);
            }
            let body = serde_json::to_value(&request).unwrap_or_default();
            let path = format!("/stage/{}", build.guid);
            sim.store
                .update(|state| {
                    state.record_event("staging_requested", &path, redact(body), now);
                    Ok(())
                })
                .await?;
        }
        None => {
            let Lifecycle::Docker { image } = &app.lifecycle else {
                return Err(Error::unprocessable("no stager configured"));
            };
            let result = StagingResult {
                lifecycle_type: "docker".into(),
                lifecycle_metadata: LifecycleMetadata {
                    docker_image: Some(image.clone()),
                    ..LifecycleMetadata::default()
                },
                process_types: BTreeMap::from([("web".to_owned(), String::new())]),
                execution_metadata: "{}".into(),
                extra: BTreeMap::new(),
            };
            let guid = build.guid.clone();
            sim.store
                .update(|state| {
                    state.complete_build(&guid, Ok(result), start, now)?;
                    state.record_event(
                        "staged_without_stager",
                        &format!("/stage/{guid}"),
                        serde_json::json!({"docker_image": image,
                            "note": "no stager configured: the image was recorded as the droplet without inspecting it"}),
                        now,
                    );
                    Ok(())
                })
                .await?;
        }
    }
    let snapshot = sim.store.snapshot();
    snapshot
        .builds
        .get(&build.guid)
        .cloned()
        .ok_or_else(|| Error::not_found(format!("build {} not found", build.guid)))
}

/// The request CC would send for `build` of `app`.
pub fn staging_request(sim: &Sim, app: &App, build: &Build) -> StagingRequest {
    let mut completion = sim.internal_url(&format!(
        "/internal/v3/staging/{}/build_completed",
        build.guid
    ));
    if build.start_when_staged {
        completion.push_str("?start=true");
    }
    let lifecycle = match &app.lifecycle {
        Lifecycle::Docker { image } => StagingLifecycle {
            docker_lifecycle: Some(DockerStagingLifecycle {
                image: image.clone(),
                registry_username: String::new(),
                registry_password: String::new(),
            }),
            buildpack_lifecycle: None,
        },
        Lifecycle::Buildpack { buildpacks, stack } => StagingLifecycle {
            docker_lifecycle: None,
            buildpack_lifecycle: Some(BuildpackStagingLifecycle {
                app_bits_download_uri: sim.internal_url(&format!(
                    "/staging/packages/{}",
                    app.package
                        .as_ref()
                        .map(|p| p.guid.as_str())
                        .unwrap_or_default()
                )),
                droplet_upload_uri: sim.droplet_upload_uri(&build.guid),
                buildpacks: buildpacks
                    .iter()
                    .map(|name| Buildpack {
                        name: if name.contains("://") {
                            "custom".into()
                        } else {
                            name.clone()
                        },
                        key: name.clone(),
                        url: if name.contains("://") {
                            name.clone()
                        } else {
                            String::new()
                        },
                        // A buildpack the user named is used without detection.
                        skip_detect: true,
                    })
                    .collect(),
                stack: stack.clone(),
                buildpack_cache_download_uri: None,
                buildpack_cache_upload_uri: None,
                buildpack_cache_checksum: None,
                buildpack_cache_checksum_algorithm: None,
            }),
        },
    };
    let mut environment = super::desire::environment(app);
    if let Lifecycle::Buildpack { stack, .. } = &app.lifecycle {
        environment.push(EnvironmentVariable {
            name: "CF_STACK".into(),
            value: stack.clone(),
        });
    }
    StagingRequest {
        app_guid: app.guid.clone(),
        app_name: app.name.clone(),
        staging_guid: Some(build.guid.clone()),
        org_name: super::state::ORG_NAME.into(),
        org_guid: crate::guid::guid_from_seed("org"),
        space_name: super::state::SPACE_NAME.into(),
        space_guid: crate::guid::guid_from_seed("org/dev"),
        completion_callback: completion,
        environment,
        lifecycle,
        memory_mb: app.memory_mb.max(MIN_STAGING_MEMORY_MB),
        disk_mb: app.disk_mb.max(MIN_STAGING_DISK_MB),
        cpu_weight: 50,
    }
}

/// The most a staging log may stream (CC's longest staging timeout and more).
const STAGING_LOG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// App `name`'s latest staging log, streamed from the stager's
/// `GET /stage/{build}/logs` (through OPI's forwarding, as CC reaches St8ge).
pub async fn logs(sim: &Sim, name: &str, follow: bool) -> Result<axum::response::Response> {
    let snapshot = sim.store.snapshot();
    let app = snapshot
        .app_by_name(name)
        .ok_or_else(|| Error::not_found(format!("app `{name}` not found")))?;
    let build = app
        .latest_build
        .as_ref()
        .ok_or_else(|| Error::not_found(format!("app `{name}` has not been staged")))?;
    let stager = sim.stager_url.as_ref().ok_or_else(|| {
        Error::not_found(format!(
            "no staging log for app `{name}`: no stager configured"
        ))
    })?;
    let mut url = stager.clone();
    let prefix = stager.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}/stage/{build}/logs"));
    if !follow {
        url.set_query(Some("follow=false"));
    }
    let shown = crate::client::urls::redact(&url);
    let response = sim
        .http
        .get(url)
        .timeout(STAGING_LOG_TIMEOUT)
        .send()
        .await
        .map_err(|e| Error::Stager {
            url: shown.clone(),
            message: format!("cannot read the staging log: {}", chain(&e)),
        })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.trim().to_owned());
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::not_found(format!(
                "no staging log for build {build} of app `{name}`: {message}"
            )));
        }
        return Err(Error::Stager {
            url: shown,
            message: format!("answered {status} for the staging log: {message}"),
        });
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        axum::body::Body::from_stream(response.bytes_stream()),
    )
        .into_response())
}

/// `POST {stager}/stage/{guid}`, the answer read as an Eirini-era CC reads it
/// ([`super::stage_answer`]).
async fn send(sim: &Sim, stager: &url::Url, guid: &str, request: &StagingRequest) -> Result<()> {
    let mut url = stager.clone();
    let prefix = stager.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}/stage/{guid}"));
    let shown = crate::client::urls::redact(&url);
    let response = sim
        .http
        .post(url.clone())
        .json(request)
        .send()
        .await
        .map_err(|e| {
            Error::stager_error(format!(
                "cannot send the staging request to {shown}: {}",
                chain(&e)
            ))
        })?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| {
        Error::stager_error(format!(
            "cannot read the answer of {shown} ({status}): {}",
            chain(&e)
        ))
    })?;
    let read = super::stage_answer::read(status, &body);
    if let Err(error) = &read {
        tracing::info!(url = %shown, status, %error, "the stager refused the staging request");
    }
    read
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The request as recorded in events: credentials in URLs (and in URLs
/// nested in their queries) removed.
fn redact(mut body: serde_json::Value) -> serde_json::Value {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => {
                // Credentials in the URL, or in a URL in its query
                // (cc-uploader's `cc-droplet-upload-uri`).
                if let Ok(url) = url::Url::parse(text) {
                    let shown = crate::client::urls::redact(&url);
                    if shown != url.as_str() {
                        *text = shown;
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut body);
    body
}
