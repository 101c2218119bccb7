//! Where a stager sends a droplet, and so how.
//!
//! An Eirini-era Cloud Controller (`OPI::StagerClient`, cloud_controller_ng
//! 9b783b01, `lib/cloud_controller/opi/stager_client.rb`) hands the stager
//! `droplet_upload_uri = {cc_uploader_url}/v1/droplet/{staging_guid}?cc-droplet-upload-uri={CC's upload URL}`.
//! cc-uploader (`handlers/upload_droplet`) takes the droplet as the raw request
//! body with its `Content-Length` (without one it answers `411 Missing Content
//! Length`), re-posts it to CC as multipart, polls CC's job itself and answers
//! an empty `201`. Only CC's own endpoint (`/staging/v3/droplets/{guid}/upload`,
//! `/internal/v4/droplets/{guid}/upload`) takes multipart `upload[droplet]` and
//! answers a job for the uploader to poll.

use url::Url;

/// The query key naming CC's upload URL in a cc-uploader droplet URI
/// (`cc_messages.CcDropletUploadUriKey`).
pub const CC_DROPLET_UPLOAD_URI_KEY: &str = "cc-droplet-upload-uri";
/// The query key naming CC's upload URL in a cc-uploader build-artifacts URI
/// (`cc_messages.CcBuildArtifactsUploadUriKey`).
pub const CC_BUILD_ARTIFACTS_UPLOAD_URI_KEY: &str = "cc-build-artifacts-upload-uri";
/// The optional query key of cc-uploader's timeout in seconds
/// (`cc_messages.CcTimeoutKey`).
pub const CC_TIMEOUT_KEY: &str = "timeout";

/// Who receives a droplet sent to a `droplet_upload_uri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropletUploadTarget {
    /// cc-uploader's `POST /v1/droplet/{guid}`: raw body with `Content-Length`,
    /// an empty `201` once CC's job finished.
    CcUploader,
    /// CC's own upload endpoint: multipart `upload[droplet]`, a job to poll.
    CloudController,
}

impl DropletUploadTarget {
    /// The target of `url`: cc-uploader when its path ends in
    /// `/v1/droplet/{guid}` (cc-uploader's route, under any prefix), else CC.
    pub fn of(url: &Url) -> Self {
        let segments: Vec<&str> = url
            .path_segments()
            .map(|segments| segments.collect())
            .unwrap_or_default();
        match segments.as_slice() {
            [.., "v1", "droplet", guid] if !guid.is_empty() => Self::CcUploader,
            _ => Self::CloudController,
        }
    }
}

/// The cc-uploader droplet URI an Eirini-era CC hands out:
/// `{cc_uploader}/v1/droplet/{staging_guid}?cc-droplet-upload-uri={cc_upload_uri}`.
///
/// CC interpolates `cc_upload_uri` as it is; this form-encodes it, which
/// cc-uploader (Go's `URL.Query().Get`) reads back to the same URL, and which
/// survives credentials and a query in `cc_upload_uri`.
pub fn cc_uploader_droplet_uri(cc_uploader: &Url, staging_guid: &str, cc_upload_uri: &str) -> Url {
    let mut url = cc_uploader.clone();
    let prefix = cc_uploader.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}/v1/droplet/{staging_guid}"));
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair(CC_DROPLET_UPLOAD_URI_KEY, cc_upload_uri);
    url
}

/// The value of query key `key` in `url`, decoded, if present.
pub fn query_value(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn cc_uploader_uris_are_told_from_cc_upload_urls() {
        let cases = [
            (
                "https://cc-uploader.service.cf.internal:9091/v1/droplet/b-1?cc-droplet-upload-uri=https://cc/internal/v4/droplets/b-1/upload",
                DropletUploadTarget::CcUploader,
            ),
            (
                "http://127.0.0.1:9022/prefix/v1/droplet/b-1",
                DropletUploadTarget::CcUploader,
            ),
            (
                "http://u:p@127.0.0.1:9022/staging/v3/droplets/b-1/upload",
                DropletUploadTarget::CloudController,
            ),
            (
                "https://cc:9023/internal/v4/droplets/b-1/upload",
                DropletUploadTarget::CloudController,
            ),
            (
                "http://127.0.0.1:9022/v1/droplet/",
                DropletUploadTarget::CloudController,
            ),
            (
                "http://127.0.0.1:9022/v1/build_artifacts/a-1",
                DropletUploadTarget::CloudController,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(DropletUploadTarget::of(&url(text)), expected, "{text}");
        }
    }

    #[test]
    fn the_cc_upload_url_survives_the_query_with_its_credentials() {
        let inner = "http://internal_user:p@ss&w=rd@127.0.0.1:9022/staging/v3/droplets/b-1/upload?async=true";
        let uri = cc_uploader_droplet_uri(&url("http://127.0.0.1:9022/"), "b-1", inner);
        assert_eq!(uri.path(), "/v1/droplet/b-1");
        assert_eq!(
            DropletUploadTarget::of(&uri),
            DropletUploadTarget::CcUploader
        );
        assert_eq!(
            query_value(&uri, CC_DROPLET_UPLOAD_URI_KEY).as_deref(),
            Some(inner)
        );
        // CC's raw interpolation reads back the same way.
        let raw = url(
            "https://cc-uploader:9091/v1/droplet/b-1?cc-droplet-upload-uri=https://cc:9023/internal/v4/droplets/b-1/upload",
        );
        assert_eq!(
            query_value(&raw, CC_DROPLET_UPLOAD_URI_KEY).as_deref(),
            Some("https://cc:9023/internal/v4/droplets/b-1/upload")
        );
    }
}
