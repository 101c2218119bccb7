//! Splits `/v2/<name>/<kind>/<rest>` paths. Names contain slashes, so routes
//! are recognised from the right.

use crate::{Error, Name};

/// What a `/v2/...` path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `<name>/manifests/<reference>`
    Manifest(Name, String),
    /// `<name>/blobs/<digest>`
    Blob(Name, String),
    /// `<name>/blobs/uploads/`
    UploadStart(Name),
    /// `<name>/blobs/uploads/<id>`
    Upload(Name, String),
    /// `<name>/tags/list`
    Tags(Name),
    /// `<name>/referrers/<digest>`
    Referrers(Name, String),
    /// `<name>/droplets`
    Droplets(Name),
}

/// Parses the part of the path after `/v2/`.
pub fn parse(rest: &str) -> Result<Route, Error> {
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    let name = |end: usize| Name::parse(&segments[..end].join("/"));
    let at = |i: usize| if i < n { segments[i] } else { "" };
    let unknown = || Error::NameUnknown(format!("no registry route for /v2/{rest}"));
    if n >= 3 && at(n - 2) == "tags" && at(n - 1) == "list" {
        return Ok(Route::Tags(name(n - 2)?));
    }
    if n >= 3 && at(n - 2) == "blobs" && at(n - 1) == "uploads" {
        return Ok(Route::UploadStart(name(n - 2)?));
    }
    if n >= 4 && at(n - 3) == "blobs" && at(n - 2) == "uploads" {
        let id = at(n - 1);
        return Ok(if id.is_empty() {
            Route::UploadStart(name(n - 3)?)
        } else {
            Route::Upload(name(n - 3)?, id.to_owned())
        });
    }
    if n >= 3 {
        let last = at(n - 1).to_owned();
        match at(n - 2) {
            "manifests" => return Ok(Route::Manifest(name(n - 2)?, last)),
            "blobs" => return Ok(Route::Blob(name(n - 2)?, last)),
            "referrers" => return Ok(Route::Referrers(name(n - 2)?, last)),
            _ => {}
        }
    }
    if n >= 2 && at(n - 1) == "droplets" {
        return Ok(Route::Droplets(name(n - 1)?));
    }
    Err(unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }

    #[test]
    fn routes_from_the_right() {
        let cases = [
            (
                "a/b/manifests/latest",
                Route::Manifest(name("a/b"), "latest".into()),
            ),
            (
                "x/blobs/sha256:abc",
                Route::Blob(name("x"), "sha256:abc".into()),
            ),
            ("x/blobs/uploads/", Route::UploadStart(name("x"))),
            ("x/blobs/uploads", Route::UploadStart(name("x"))),
            (
                "x/y/blobs/uploads/0123",
                Route::Upload(name("x/y"), "0123".into()),
            ),
            ("x/tags/list", Route::Tags(name("x"))),
            (
                "x/referrers/sha256:ab",
                Route::Referrers(name("x"), "sha256:ab".into()),
            ),
            (
                "cloudfoundry/guid-1/droplets",
                Route::Droplets(name("cloudfoundry/guid-1")),
            ),
            // A repository may be called `blobs` or `manifests` itself.
            (
                "blobs/manifests/manifests/v1",
                Route::Manifest(name("blobs/manifests"), "v1".into()),
            ),
        ];
        for (path, route) in cases {
            assert_eq!(parse(path).unwrap(), route, "{path}");
        }
    }

    #[test]
    fn refuses_bad_names_and_unknown_routes() {
        assert!(matches!(
            parse("UPPER/manifests/x"),
            Err(Error::NameInvalid(_))
        ));
        assert!(matches!(
            parse("a/../b/manifests/x"),
            Err(Error::NameInvalid(_))
        ));
        assert!(matches!(parse("manifests/x"), Err(Error::NameUnknown(_))));
        assert!(matches!(parse("a/b/c"), Err(Error::NameUnknown(_))));
        assert!(matches!(parse(""), Err(Error::NameUnknown(_))));
    }
}
