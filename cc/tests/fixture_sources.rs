//! Every fixture in `cc/testdata` names the Cloud Controller it is shaped
//! after in `cc/testdata/README.md`, and every row there names a fixture.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

/// The known CC versions the README defines; a row must name one.
const VERSIONS: [&str; 3] = ["Eirini-era", "bulk-era", "HEAD"];

fn testdata() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The fixtures on disk: every file but the README.
fn fixtures() -> BTreeSet<String> {
    std::fs::read_dir(testdata())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "README.md")
        .collect()
}

/// The README table's rows: (fixture, CC version, source files).
fn rows() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(testdata().join("README.md")).unwrap();
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .strip_prefix('|')?
                .split('|')
                .map(str::trim)
                .collect();
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            name.ends_with(".json").then(|| {
                (
                    name.to_owned(),
                    cells.get(1).copied().unwrap_or_default().to_owned(),
                    cells.get(2).copied().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn every_fixture_names_its_cc_version_and_source() {
    let listed: BTreeSet<String> = rows().into_iter().map(|(name, _, _)| name).collect();
    let missing: Vec<String> = fixtures()
        .into_iter()
        .filter(|f| !listed.contains(f))
        .collect();
    assert!(
        missing.is_empty(),
        "fixtures missing from cc/testdata/README.md: {missing:?}"
    );
}

#[test]
fn every_row_names_an_existing_fixture_a_version_and_a_file() {
    let on_disk = fixtures();
    for (name, version, source) in rows() {
        assert!(
            on_disk.contains(&name),
            "README row for a missing fixture: {name}"
        );
        assert!(
            VERSIONS.iter().any(|v| version.starts_with(v)),
            "{name}: `{version}` is none of {VERSIONS:?}"
        );
        assert!(
            source.contains(".rb") || source.contains(".yml"),
            "{name}: no cloud_controller_ng source file named in `{source}`"
        );
    }
}

#[test]
fn the_readme_defines_the_versions_it_uses() {
    let text = std::fs::read_to_string(testdata().join("README.md")).unwrap();
    for version in VERSIONS {
        let defined = text.lines().any(|line| {
            line.starts_with(&format!("| **{version}** |"))
                && line.split('`').nth(1).is_some_and(|hash| {
                    hash.len() == 40 && hash.chars().all(|c| c.is_ascii_hexdigit())
                })
        });
        assert!(defined, "{version} is not defined with a 40-hex commit");
    }
}
