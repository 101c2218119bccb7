//! URL building for the client: the bulk query (token percent-encoded) and
//! credential-free renderings for messages.

use url::Url;

use crate::model::BulkToken;
use crate::{Error, Result};

/// Joins `path` (absolute, starting with `/`, optionally with `?query`) onto
/// `base`, keeping any path prefix of `base` (`https://cc.example.com/prefix`).
pub fn join(base: &Url, path: &str) -> Url {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(query);
    url
}

/// The bulk URL: `/internal/bulk/apps?batch_size=N[&format=fingerprint]&token=<json>`,
/// the token's JSON percent-encoded as CC expects.
pub fn bulk_apps(base: &Url, batch_size: u32, token: BulkToken, fingerprint: bool) -> Url {
    let mut url = join(base, "/internal/bulk/apps");
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("batch_size", &batch_size.to_string());
        if fingerprint {
            query.append_pair("format", "fingerprint");
        }
        query.append_pair("token", &token.to_query_value());
    }
    url
}

/// Parses a URL, naming it (without credentials) on failure.
pub fn parse(text: &str) -> Result<Url> {
    Url::parse(text).map_err(|e| Error::InvalidUrl {
        url: redact_text(text),
        reason: e.to_string(),
    })
}

/// The URL without user and password, for logs and errors; URLs carried in
/// its query (cc-uploader's `cc-droplet-upload-uri=…`) lose theirs too.
pub fn redact(url: &Url) -> String {
    redacted(url).to_string()
}

fn redacted(url: &Url) -> Url {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if query_has_credentials(&url) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = match Url::parse(&value) {
                    Ok(inner) => redacted(&inner).to_string(),
                    Err(_) => value.into_owned(),
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url
}

/// Whether a query value is a URL with a user or password.
fn query_has_credentials(url: &Url) -> bool {
    url.query_pairs().any(|(_, value)| {
        Url::parse(&value).is_ok_and(|inner| {
            !inner.username().is_empty()
                || inner.password().is_some()
                || query_has_credentials(&inner)
        })
    })
}

/// [`redact`] for text that may not parse as a URL.
pub fn redact_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => redact(&url),
        Err(_) => match text.split_once('@') {
            Some((_, rest)) => format!("…@{rest}"),
            None => text.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:9022").unwrap()
    }

    #[test]
    fn token_is_percent_encoded() {
        let url = bulk_apps(&base(), 50, BulkToken { id: Some(7) }, true);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9022/internal/bulk/apps?batch_size=50&format=fingerprint&token=%7B%22id%22%3A7%7D"
        );
    }

    #[test]
    fn base_path_prefix_is_kept_and_credentials_hidden() {
        let base = Url::parse("https://u:secret@cc.example.com/prefix/").unwrap();
        let url = join(&base, "/internal/bulk/apps");
        assert_eq!(url.path(), "/prefix/internal/bulk/apps");
        let url = join(&base, "/sim/apps/x/stage?start=true");
        assert_eq!(url.path(), "/prefix/sim/apps/x/stage");
        assert_eq!(url.query(), Some("start=true"));
        assert!(!redact(&url).contains("secret"));
        assert!(!redact_text("nonsense://u:secret@").contains("secret"));
    }

    #[test]
    fn credentials_of_urls_in_the_query_are_hidden() {
        let uri = crate::model::cc_uploader_droplet_uri(
            &base(),
            "b-1",
            "http://internal_user:s3cret@127.0.0.1:9022/staging/v3/droplets/b-1/upload",
        );
        let shown = redact(&uri);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("internal_user"), "{shown}");
        let shown = Url::parse(&shown).unwrap();
        assert_eq!(
            crate::model::query_value(&shown, crate::model::CC_DROPLET_UPLOAD_URI_KEY).as_deref(),
            Some("http://127.0.0.1:9022/staging/v3/droplets/b-1/upload"),
            "the inner URL is still shown"
        );
        // A query without credentials is left exactly as it was.
        let plain = Url::parse("http://x/y?token=%7B%22id%22%3A7%7D&a=b").unwrap();
        assert_eq!(redact(&plain), plain.as_str());
    }

    proptest! {
        /// Whatever the id, the query carries no raw JSON punctuation and decodes
        /// back to exactly the token CC reads.
        #[test]
        fn token_round_trips_through_the_query(id in proptest::option::of(any::<u64>()), batch in 1u32..100_000) {
            let token = BulkToken { id };
            let url = bulk_apps(&base(), batch, token, true);
            let query = url.query().unwrap();
            let clean = !query.contains('{') && !query.contains('"') && !query.contains(':');
            prop_assert!(clean, "raw JSON in query {}", query);
            let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            let raw = &pairs.iter().find(|(k, _)| k == "token").unwrap().1;
            let decoded: BulkToken = serde_json::from_str(raw).unwrap();
            prop_assert_eq!(decoded, token);
            let size = &pairs.iter().find(|(k, _)| k == "batch_size").unwrap().1;
            prop_assert_eq!(size, &batch.to_string());
        }
    }
}
