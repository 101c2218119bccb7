//! Release: the last buildpack's `bin/release <build_dir>` prints YAML with
//! `default_process_types`; the app's `Procfile` overrides them per type.

use std::collections::BTreeMap;
use std::path::Path;

use cc::model::StagingError;
use serde::Deserialize;

use super::exec::{self, Script};
use super::{Buildpack, Layout, failure, ids};

/// What `bin/release` prints.
#[derive(Debug, Default, Deserialize)]
struct Release {
    #[serde(default)]
    default_process_types: Option<BTreeMap<String, String>>,
}

/// Parses `bin/release` output. Empty output means no process types.
pub fn parse_release(yaml: &str) -> Result<BTreeMap<String, String>, String> {
    if yaml.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let release: Option<Release> = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    Ok(release
        .and_then(|r| r.default_process_types)
        .unwrap_or_default())
}

/// Parses a `Procfile`: `type: command` lines; blank lines and `#` comments are
/// skipped. A line without a colon is an error naming its number.
pub fn parse_procfile(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut types = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = line.split_once(':') else {
            return Err(format!(
                "Procfile line {} is not `type: command`: {line:?}",
                number + 1
            ));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err(format!(
                "Procfile line {} has a bad process type {name:?}",
                number + 1
            ));
        }
        types.insert(name.to_owned(), command.trim().to_owned());
    }
    Ok(types)
}

/// The app's `Procfile`, if it has one.
pub fn read_procfile(build_dir: &Path) -> Result<BTreeMap<String, String>, StagingError> {
    match std::fs::read_to_string(build_dir.join("Procfile")) {
        Ok(text) => parse_procfile(&text).map_err(|e| failure(ids::STAGING, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(failure(
            ids::STAGING,
            format!("cannot read the Procfile: {e}"),
        )),
    }
}

/// Runs `bin/release` of `buildpack` and merges the Procfile over its types.
pub async fn process_types(
    layout: &Layout,
    buildpack: &Buildpack,
    env: &[(String, String)],
) -> Result<BTreeMap<String, String>, StagingError> {
    let mut types = if buildpack.has("release") {
        let script = Script {
            path: buildpack.script("release"),
            args: vec![layout.build_dir.clone().into()],
            cwd: layout.build_dir.clone(),
            env: env.to_vec(),
        };
        let ran = exec::run(&script, true).await.map_err(|e| {
            failure(
                ids::RELEASE_FAILED,
                format!(
                    "cannot run bin/release of buildpack {}: {e}",
                    buildpack.name
                ),
            )
        })?;
        if !ran.status.success() {
            return Err(failure(
                ids::RELEASE_FAILED,
                format!(
                    "buildpack {} failed: bin/release exited with status {}",
                    buildpack.name,
                    ran.code()
                ),
            ));
        }
        parse_release(&ran.stdout).map_err(|e| {
            failure(
                ids::RELEASE_FAILED,
                format!(
                    "buildpack {}: bin/release printed invalid YAML: {e}",
                    buildpack.name
                ),
            )
        })?
    } else {
        BTreeMap::new()
    };
    types.extend(read_procfile(&layout.build_dir)?);
    if let Some(web) = types.get("web") {
        crate::output::say(format!("-----> Start command (web): {web}"));
    } else {
        crate::output::say(
            "-----> No web start command: give one with a Procfile or `cube push -c`",
        );
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_yaml() {
        let types =
            parse_release("---\ndefault_process_types:\n  web: python3 app.py\n  worker: ./w\n")
                .unwrap();
        assert_eq!(types["web"], "python3 app.py");
        assert_eq!(types["worker"], "./w");
        assert!(parse_release("").unwrap().is_empty());
        assert!(parse_release("---\nother: 1\n").unwrap().is_empty());
        assert!(parse_release("default_process_types: [1, 2]").is_err());
    }

    #[test]
    fn procfile() {
        let types =
            parse_procfile("# comment\nweb: ./serve --port $PORT\n\nworker:  sh -c 'a: b'\n")
                .unwrap();
        assert_eq!(types["web"], "./serve --port $PORT");
        assert_eq!(types["worker"], "sh -c 'a: b'");
        let error = parse_procfile("web ./x\n").unwrap_err();
        assert!(error.contains("line 1"), "{error}");
        assert!(parse_procfile("bad type: x").is_err());
    }
}
