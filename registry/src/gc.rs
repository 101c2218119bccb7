//! Garbage collection: deletes blobs that no manifest of any repository
//! references, and the links to them.
//!
//! Mark: every manifest revision of every repository marks itself and the
//! blobs it lists (config, layers, index children). Sweep: a blob that is
//! unmarked *and* older than the grace period is deleted, as is any repository
//! link to it. The grace period protects pushes in flight (blobs uploaded
//! whose manifest has not arrived yet); linking a blob (upload or mount)
//! rewrites its link, and a link younger than the grace period also protects
//! its blob. Stale upload sessions older than the grace period are removed.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::store::{Store, blob_key, digest_of_key};
use crate::{Digest, Error, Name, manifest};

/// What a collection did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Blobs kept because something references them (or they are young).
    pub kept: usize,
    /// Blobs deleted.
    pub deleted: Vec<Digest>,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Upload sessions removed.
    pub stale_uploads: usize,
}

/// Collects garbage older than `grace`. With `dry_run`, only reports.
pub async fn collect(store: &Store, grace: Duration, dry_run: bool) -> Result<Report, Error> {
    let backend = store.backend();
    let now = SystemTime::now();
    let young = |modified: SystemTime| now.duration_since(modified).unwrap_or_default() < grace;

    let mut marked: HashSet<Digest> = HashSet::new();
    let mut links: Vec<(String, Digest)> = Vec::new();
    for meta in backend.list("repositories").await? {
        let Some(digest) = digest_of_key(&meta.key) else {
            continue;
        };
        if meta.key.contains("/_layers/") {
            if young(meta.modified) {
                marked.insert(digest.clone());
            }
            links.push((meta.key, digest));
            continue;
        }
        let Some((name, _)) = meta
            .key
            .strip_prefix("repositories/")
            .and_then(|rest| rest.split_once("/_manifests/revisions/"))
        else {
            continue;
        };
        let name = Name::parse(name)?;
        marked.insert(digest.clone());
        let Some((media_type, body)) = store.manifest(&name, &digest).await? else {
            continue;
        };
        match manifest::parse(Some(&media_type), &body) {
            Ok(parsed) => marked.extend(parsed.blobs.into_iter().chain(parsed.manifests)),
            Err(error) => {
                // Unparseable: keep everything rather than guess.
                tracing::warn!(%name, %digest, %error, "gc: cannot parse manifest; collection skipped");
                return Err(Error::ManifestInvalid(format!(
                    "gc stopped: manifest {digest} of {name} cannot be parsed: {error}"
                )));
            }
        }
    }

    let mut report = Report::default();
    let mut doomed: HashSet<Digest> = HashSet::new();
    for meta in backend.list("blobs").await? {
        let Some(digest) = digest_of_key(&meta.key) else {
            continue;
        };
        if meta.key != blob_key(&digest) {
            continue;
        }
        if marked.contains(&digest) || young(meta.modified) {
            report.kept += 1;
            continue;
        }
        if !dry_run {
            backend.delete(&meta.key).await?;
        }
        report.freed_bytes += meta.size;
        report.deleted.push(digest.clone());
        doomed.insert(digest);
    }
    if !dry_run {
        for (key, digest) in links {
            if doomed.contains(&digest) {
                backend.delete(&key).await?;
            }
        }
        report.stale_uploads = store.remove_stale_uploads(grace).await?;
    }
    report.deleted.sort();
    Ok(report)
}
