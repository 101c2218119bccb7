//! Image references ⇄ Diego `root_fs` URIs.
//!
//! Diego runs a docker image when an LRP's `root_fs` is a `docker://` URI in
//! the form Cloud Controller writes: the registry host as the URI host (empty
//! for Docker Hub), the repository as the path (`library/` added to official
//! Docker Hub images) and the tag or digest as the fragment:
//! `nginx:1.27` → `docker:///library/nginx#1.27`,
//! `127.0.0.1:8087/cloudfoundry/d:h` → `docker://127.0.0.1:8087/cloudfoundry/d#h`.

/// The `root_fs` URI that makes Diego run `image`.
pub fn root_fs(image: &str) -> String {
    let (name, reference) = split_reference(image);
    let (host, path) = match name.split_once('/') {
        Some((first, rest)) if is_registry_host(first) => (first, rest.to_owned()),
        _ => ("", name.to_owned()),
    };
    let path = if (host.is_empty() || host == "docker.io") && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    match reference {
        Some(reference) => format!("docker://{host}/{path}#{reference}"),
        None => format!("docker://{host}/{path}"),
    }
}

/// The image a `docker://` `root_fs` runs, in its shortest equivalent form
/// (`library/` of official Docker Hub images dropped); `None` for other
/// schemes (e.g. `preloaded:cflinuxfs4`).
pub fn image(root_fs: &str) -> Option<String> {
    let rest = root_fs.strip_prefix("docker://")?;
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    let (host, path) = rest.split_once('/')?;
    if path.is_empty() {
        return None;
    }
    let name = if host.is_empty() {
        match path.strip_prefix("library/") {
            Some(official) if !official.contains('/') => official.to_owned(),
            _ => path.to_owned(),
        }
    } else {
        format!("{host}/{path}")
    };
    Some(match fragment {
        // A digest (`sha256:…`) has a colon; a tag never does.
        Some(digest) if digest.contains(':') => format!("{name}@{digest}"),
        Some(tag) => format!("{name}:{tag}"),
        None => name,
    })
}

/// Splits `name[:tag]` or `name[@digest]` (a digest wins over a tag).
fn split_reference(image: &str) -> (&str, Option<&str>) {
    if let Some((name, digest)) = image.split_once('@') {
        let name = match name.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => name,
        };
        return (name, Some(digest));
    }
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (image, None),
    }
}

/// Docker's rule: the first path component is a registry host when it has a
/// dot or a port, or is `localhost`.
fn is_registry_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn converts_like_cloud_controller() {
        for (image, uri) in [
            ("nginx", "docker:///library/nginx"),
            ("nginx:1.27", "docker:///library/nginx#1.27"),
            (
                "cloudfoundry/diego-docker-app:latest",
                "docker:///cloudfoundry/diego-docker-app#latest",
            ),
            ("docker.io/nginx:1", "docker://docker.io/library/nginx#1"),
            (
                "docker.io/library/nginx:1",
                "docker://docker.io/library/nginx#1",
            ),
            (
                "127.0.0.1:8087/cloudfoundry/d-guid:h4sh",
                "docker://127.0.0.1:8087/cloudfoundry/d-guid#h4sh",
            ),
            ("localhost/app", "docker://localhost/app"),
            (
                "registry.example.com:5000/team/app@sha256:abcd",
                "docker://registry.example.com:5000/team/app#sha256:abcd",
            ),
            (
                "busybox:1.36@sha256:ff",
                "docker:///library/busybox#sha256:ff",
            ),
        ] {
            assert_eq!(root_fs(image), uri, "{image}");
        }
    }

    #[test]
    fn reads_back_the_shortest_form() {
        assert_eq!(
            image("docker:///library/nginx#1.27").as_deref(),
            Some("nginx:1.27")
        );
        assert_eq!(
            image("docker://127.0.0.1:8087/cloudfoundry/d#h").as_deref(),
            Some("127.0.0.1:8087/cloudfoundry/d:h")
        );
        assert_eq!(
            image("docker://r.io/a/b#sha256:ff").as_deref(),
            Some("r.io/a/b@sha256:ff")
        );
        assert_eq!(image("preloaded:cflinuxfs4"), None);
        assert_eq!(image("docker://host-only"), None);
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9_-]{0,8}[a-z0-9])?"
    }

    fn any_image() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                Just(String::new()),
                Just("docker.io/".to_owned()),
                Just("localhost/".to_owned()),
                Just("127.0.0.1:8087/".to_owned()),
                Just("registry.example.com/".to_owned()),
            ],
            proptest::collection::vec(component(), 1..4),
            prop_oneof![
                Just(String::new()),
                "[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}".prop_map(|t| format!(":{t}")),
                "[a-f0-9]{8}".prop_map(|d| format!("@sha256:{d}")),
            ],
        )
            .prop_map(|(host, path, reference)| format!("{host}{}{reference}", path.join("/")))
    }

    proptest! {
        /// Reading back names the same image: converting again gives the same URI.
        #[test]
        fn round_trip_names_the_same_image(image_ref in any_image()) {
            let uri = root_fs(&image_ref);
            let back = image(&uri).expect("a docker URI reads back");
            prop_assert_eq!(root_fs(&back), uri);
        }

        /// Images with a registry host (other than Docker Hub) come back verbatim,
        /// so `get` returns exactly the image that was desired.
        #[test]
        fn hosted_images_round_trip_exactly(
            path in proptest::collection::vec(component(), 1..4),
            tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}",
        ) {
            let image_ref = format!("127.0.0.1:8087/{}:{tag}", path.join("/"));
            prop_assert_eq!(image(&root_fs(&image_ref)), Some(image_ref));
        }
    }
}
