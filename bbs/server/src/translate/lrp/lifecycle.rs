//! What runs: `root_fs`, the droplet (`image_layers` or `setup`), the
//! lifecycle bundles (`cached_dependencies`, shared `image_layers`) and the
//! registry credentials → an OPI lifecycle and the droplet to import.
//!
//! - `preloaded:<stack>` runs a droplet on a stack the operator offers
//!   ([`Settings::stacks`]). The droplet is an exclusive image layer named
//!   `droplet` (CC with declarative asset downloads and a sha256 droplet) or
//!   the `setup` download of artifact `droplet`; its guid is the path segment
//!   after `droplets` in CC's URL, its hash the checksum (the image tag).
//! - `docker://<host>/<path>#<tag>` (or `<path>@sha256#<hex>`, CC's digest
//!   form) runs that image; a start command runs as `/bin/sh -c <command>`,
//!   as Diego's docker launcher does, none means the image's entrypoint.
//!
//! Diego's lifecycle bundles (launcher, health check, sshd for
//! `/tmp/lifecycle`) are ignored: Cube's backends start and check processes
//! themselves. Cloud native buildpack bundles are refused (Cube's registry
//! turns buildpack droplets into images, not CNB ones).

use bbs_models::image_layer::{DigestAlgorithm, MediaType, Type as LayerType};
use bbs_models::{Action, CachedDependency, DesiredLrp, ImageLayer};
use opi::model::wire::{BuildpackLifecycle, DockerLifecycle, Lifecycle};

use super::Droplet;
use super::action::{Launch, exactly_one_kind, kinds};
use crate::translate::{Refusal, Settings};

/// Where Diego's lifecycle bundles go.
const LIFECYCLE_DIR: &str = "/tmp/lifecycle";
/// The name of CC's droplet layer and download artifact.
const DROPLET: &str = "droplet";
/// Where the droplet is unpacked: `/home/vcap` (`.` is relative to it).
const DROPLET_DESTINATIONS: [&str; 3] = [".", "/home/vcap", "/home/vcap/"];
/// The scheme of a stack's root filesystem.
const PRELOADED: &str = "preloaded:";
/// The scheme of a docker image's root filesystem.
const DOCKER: &str = "docker://";

/// A droplet as the request names it, with the fields it came from.
#[derive(Debug)]
struct Source {
    url: String,
    algorithm: &'static str,
    hash: String,
    url_field: String,
}

/// The OPI lifecycle (wire form, for `opi::model::validate::desire`) and the
/// droplet to import, or a refusal naming the field.
pub fn lifecycle(
    lrp: &DesiredLrp,
    launch: &Launch<'_>,
    settings: &Settings,
) -> Result<(Lifecycle, Option<Droplet>), Refusal> {
    bundles(&lrp.cached_dependencies)?;
    let layer = layer_droplet(&lrp.image_layers)?;
    let download = setup_droplet(lrp.setup.as_ref())?;
    if let Some(stack) = lrp.root_fs.strip_prefix(PRELOADED) {
        let source = match (layer, download) {
            (Some(source), None) | (None, Some(source)) => source,
            (Some(_), Some(_)) => {
                return Err(Refusal::new(
                    "setup",
                    "downloads a droplet the image layers already bring",
                ));
            }
            (None, None) => {
                return Err(Refusal::new(
                    "setup",
                    "a preloaded root_fs needs the droplet: an image layer or a setup download named droplet",
                ));
            }
        };
        return buildpack(lrp, stack, source, launch, settings);
    }
    if lrp.root_fs.starts_with(DOCKER) {
        if let Some(source) = layer.or(download) {
            return Err(Refusal::new(
                source.url_field,
                "a docker image LRP downloads no droplet",
            ));
        }
        return docker(lrp, launch).map(|lifecycle| (lifecycle, None));
    }
    Err(Refusal::new(
        "root_fs",
        format!(
            "{:?}: Cube runs preloaded:<stack> droplets and docker:// images",
            lrp.root_fs
        ),
    ))
}

/// A droplet on `stack`.
fn buildpack(
    lrp: &DesiredLrp,
    stack: &str,
    source: Source,
    launch: &Launch<'_>,
    settings: &Settings,
) -> Result<(Lifecycle, Option<Droplet>), Refusal> {
    let base_image = settings.stacks.get(stack).ok_or_else(|| {
        let known: Vec<&str> = settings.stacks.keys().map(String::as_str).collect();
        Refusal::new(
            "root_fs",
            format!(
                "stack {stack:?} is not offered (offered: {})",
                known.join(", ")
            ),
        )
    })?;
    no_credentials(lrp)?;
    let guid = checked_droplet_guid(&source)?;
    let lifecycle = Lifecycle {
        buildpack_lifecycle: Some(BuildpackLifecycle {
            droplet_guid: guid.clone(),
            droplet_hash: source.hash.clone(),
            start_command: launch.start_command.to_owned(),
        }),
        docker_lifecycle: None,
    };
    let droplet = Droplet {
        guid,
        hash: source.hash,
        url: source.url,
        checksum_algorithm: source.algorithm.to_owned(),
        stack: stack.to_owned(),
        base_image: base_image.clone(),
    };
    Ok((lifecycle, Some(droplet)))
}

/// Refuses registry credentials: only docker images are pulled with them.
fn no_credentials(lrp: &DesiredLrp) -> Result<(), Refusal> {
    for (field, value) in [
        ("image_username", &lrp.image_username),
        ("image_password", &lrp.image_password),
    ] {
        if !value.is_empty() {
            return Err(Refusal::new(
                field,
                "only docker images take registry credentials",
            ));
        }
    }
    Ok(())
}

/// The droplet guid of `source`'s URL, an identifier OPI accepts.
fn checked_droplet_guid(source: &Source) -> Result<String, Refusal> {
    let guid = droplet_guid(&source.url).ok_or_else(|| {
        Refusal::new(
            &source.url_field,
            format!("{:?} has no droplet guid (…/droplets/<guid>/…)", source.url),
        )
    })?;
    opi::model::validate::guid(&source.url_field, &guid).map_err(|invalid| {
        Refusal::new(invalid.field, format!("droplet guid: {}", invalid.problem))
    })?;
    Ok(guid)
}

/// The path segment after `droplets` in CC's droplet URL
/// (`…/internal/v4/droplets/<guid>/<checksum>/download`).
fn droplet_guid(url: &str) -> Option<String> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/').skip(1);
    segments.find(|segment| *segment == "droplets")?;
    segments
        .next()
        .filter(|guid| !guid.is_empty())
        .map(str::to_owned)
}

/// A docker image.
fn docker(lrp: &DesiredLrp, launch: &Launch<'_>) -> Result<Lifecycle, Refusal> {
    let image = image(&lrp.root_fs)?;
    let command = if launch.start_command.trim().is_empty() {
        Vec::new()
    } else {
        vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            launch.start_command.to_owned(),
        ]
    };
    Ok(Lifecycle {
        docker_lifecycle: Some(DockerLifecycle {
            image,
            command,
            registry_username: lrp.image_username.clone(),
            registry_password: lrp.image_password.clone(),
        }),
        buildpack_lifecycle: None,
    })
}

/// The image reference of a `docker://` root filesystem in its usual form:
/// `docker:///library/nginx#1.27` → `nginx:1.27`,
/// `docker://10.244.2.6:8080/user/image#tag` → `10.244.2.6:8080/user/image:tag`,
/// `docker:///user/image@sha256#<hex>` → `user/image@sha256:<hex>`.
pub fn image(root_fs: &str) -> Result<String, Refusal> {
    let refuse = |problem: &str| Refusal::new("root_fs", format!("{root_fs:?} {problem}"));
    let rest = root_fs
        .strip_prefix(DOCKER)
        .ok_or_else(|| refuse("is not docker://"))?;
    let (location, fragment) = match rest.split_once('#') {
        Some((location, fragment)) => (location, Some(fragment)),
        None => (rest, None),
    };
    let (host, path) = location
        .split_once('/')
        .filter(|(_, path)| !path.is_empty())
        .ok_or_else(|| refuse("names no image (docker://<host>/<repository>#<tag>)"))?;
    let (path, digest) = match path.strip_suffix("@sha256") {
        Some(path) => (path, true),
        None => (path, false),
    };
    let path = match path.strip_prefix("library/") {
        Some(official) if host.is_empty() && !official.contains('/') => official,
        _ => path,
    };
    let name = if host.is_empty() {
        path.to_owned()
    } else {
        format!("{host}/{path}")
    };
    match fragment {
        Some(hex) if digest && !hex.is_empty() => Ok(format!("{name}@sha256:{hex}")),
        Some(digest) if digest.contains(':') => Ok(format!("{name}@{digest}")),
        Some(tag) if !digest && !tag.is_empty() => Ok(format!("{name}:{tag}")),
        None if !digest => Ok(name),
        _ => Err(refuse("has an empty tag or digest")),
    }
}

/// Accepts the lifecycle bundles CC caches for `/tmp/lifecycle`; refuses
/// other cached dependencies and cloud native buildpack bundles.
fn bundles(dependencies: &[CachedDependency]) -> Result<(), Refusal> {
    for (i, dependency) in dependencies.iter().enumerate() {
        let field = format!("cached_dependencies[{i}]");
        if dependency.to != LIFECYCLE_DIR {
            return Err(Refusal::new(
                format!("{field}.to"),
                format!(
                    "{:?}: Cube caches only Diego's lifecycle bundles ({LIFECYCLE_DIR})",
                    dependency.to
                ),
            ));
        }
        cnb(&field, &dependency.cache_key)?;
        cnb(&field, &dependency.name)?;
    }
    Ok(())
}

/// Refuses a cloud native buildpack lifecycle (`cnb-<stack>-lifecycle`).
fn cnb(field: &str, name: &str) -> Result<(), Refusal> {
    if name.starts_with("cnb-") {
        return Err(Refusal::new(
            field,
            format!("{name:?}: Cube runs buildpack droplets, not cloud native buildpack ones"),
        ));
    }
    Ok(())
}

/// The droplet among `layers` (an exclusive layer named `droplet`); shared
/// lifecycle layers are accepted, anything else refused.
fn layer_droplet(layers: &[ImageLayer]) -> Result<Option<Source>, Refusal> {
    let mut droplet = None;
    for (i, layer) in layers.iter().enumerate() {
        let field = format!("image_layers[{i}]");
        match LayerType::try_from(layer.layer_type) {
            Ok(LayerType::Shared) if layer.destination_path == LIFECYCLE_DIR => {
                cnb(&field, &layer.name)?;
            }
            Ok(LayerType::Exclusive) if layer.name == DROPLET && droplet.is_none() => {
                droplet = Some(layer_source(&field, layer)?);
            }
            _ => {
                return Err(Refusal::new(
                    field,
                    format!(
                        "{:?}: Cube takes the droplet (one exclusive layer) and lifecycle bundles for {LIFECYCLE_DIR}",
                        layer.name
                    ),
                ));
            }
        }
    }
    Ok(droplet)
}

fn layer_source(field: &str, layer: &ImageLayer) -> Result<Source, Refusal> {
    if MediaType::try_from(layer.media_type) != Ok(MediaType::Tgz) {
        return Err(Refusal::new(
            format!("{field}.media_type"),
            "a droplet is a TGZ",
        ));
    }
    destination(
        &format!("{field}.destination_path"),
        &layer.destination_path,
    )?;
    if DigestAlgorithm::try_from(layer.digest_algorithm) != Ok(DigestAlgorithm::Sha256) {
        return Err(Refusal::new(
            format!("{field}.digest_algorithm"),
            "Cube checks droplets by their SHA256 digest",
        ));
    }
    checksum(
        &format!("{field}.digest_value"),
        "sha256",
        &layer.digest_value,
    )?;
    Ok(Source {
        url: layer.url.clone(),
        algorithm: "sha256",
        hash: layer.digest_value.clone(),
        url_field: format!("{field}.url"),
    })
}

/// The droplet `setup` downloads: `Serial[Download{artifact: droplet}]` or
/// the download alone; any other setup is refused.
fn setup_droplet(setup: Option<&Action>) -> Result<Option<Source>, Refusal> {
    let Some(setup) = setup else {
        return Ok(None);
    };
    exactly_one_kind("setup", setup)?;
    let (field, download) = if let Some(download) = &setup.download_action {
        ("setup.download_action".to_owned(), download)
    } else if let Some(serial) = &setup.serial_action
        && let [only] = serial.actions.as_slice()
        && let Some(download) = &only.download_action
        && kinds(only).len() == 1
    {
        (
            "setup.serial_action.actions[0].download_action".to_owned(),
            download,
        )
    } else {
        return Err(not_a_droplet("setup"));
    };
    if download.artifact != DROPLET {
        return Err(not_a_droplet(&format!("{field}.artifact")));
    }
    destination(&format!("{field}.to"), &download.to)?;
    let algorithm = match download.checksum_algorithm.as_str() {
        "sha256" => "sha256",
        "sha1" => "sha1",
        other => {
            return Err(Refusal::new(
                format!("{field}.checksum_algorithm"),
                format!("{other:?}: Cube checks droplets by sha256 or sha1"),
            ));
        }
    };
    checksum(
        &format!("{field}.checksum_value"),
        algorithm,
        &download.checksum_value,
    )?;
    Ok(Some(Source {
        url: download.from.clone(),
        algorithm,
        hash: download.checksum_value.clone(),
        url_field: format!("{field}.from"),
    }))
}

fn not_a_droplet(field: &str) -> Refusal {
    Refusal::new(
        field,
        "Cube's setup is the droplet download alone (a serial action of one download of artifact droplet)",
    )
}

fn destination(field: &str, path: &str) -> Result<(), Refusal> {
    if DROPLET_DESTINATIONS.contains(&path) {
        return Ok(());
    }
    Err(Refusal::new(
        field,
        format!("{path:?}: Cube's droplet images unpack droplets in /home/vcap"),
    ))
}

/// A lower-case hex digest of the algorithm's length (the image tag).
fn checksum(field: &str, algorithm: &str, value: &str) -> Result<(), Refusal> {
    let len = if algorithm == "sha256" { 64 } else { 40 };
    if value.len() == len && value.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Ok(());
    }
    Err(Refusal::new(
        field,
        format!("{value:?} is not a {algorithm} digest ({len} lower-case hex digits)"),
    ))
}
