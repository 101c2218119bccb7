//! Configuration layering: **flags > `CUBE_*` environment > YAML file > built-in
//! defaults**, for every subcommand, without per-flag boilerplate.
//!
//! - Every long flag `--some-flag` that does not name its own variable reads
//!   `CUBE_SOME_FLAG` from the environment.
//! - `--config FILE` (or `CUBE_CONFIG`) names a YAML mapping whose keys are long
//!   flag names. A key whose value is a mapping and that names a subcommand applies
//!   to that subcommand only (`opi: {listen: …}`); other keys apply to every
//!   subcommand that has that flag. An unknown key is an error naming it.
//!
//! The YAML values become the flags' defaults, so clap's own precedence (flag, then
//! env, then default) gives the order above.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Command;
use serde_json::Value;

use crate::Error;

/// The flag naming the YAML file.
pub const CONFIG_FLAG: &str = "config";
/// The environment variable naming the YAML file.
pub const CONFIG_ENV: &str = "CUBE_CONFIG";

/// Parses `C` from the process's arguments with layering. Prints help/version or
/// the error and exits the process when parsing fails.
pub fn parse<C: clap::Parser>() -> C {
    match try_parse_from::<C>(std::env::args_os().collect()) {
        Ok(config) => config,
        Err(Error::Cli(error)) => error.exit(),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2)
        }
    }
}

/// Parses `C` from `args` (the first is the program name) with layering.
pub fn try_parse_from<C: clap::Parser>(args: Vec<OsString>) -> Result<C, Error> {
    let yaml_path = config_path(&args);
    let mut command = with_env_names(C::command());
    if let Some(path) = yaml_path {
        let yaml = read_yaml(&path)?;
        command = apply_yaml(command, &yaml, &path)?;
    }
    let matches = command.try_get_matches_from(args)?;
    Ok(C::from_arg_matches(&matches)?)
}

/// `CUBE_` + the flag name in upper snake case.
pub fn env_name(long: &str) -> String {
    format!("CUBE_{}", long.replace('-', "_").to_ascii_uppercase())
}

fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let flag = format!("--{CONFIG_FLAG}");
    let prefix = format!("--{CONFIG_FLAG}=");
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == flag {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix(&prefix) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV).map(PathBuf::from)
}

fn with_env_names(command: Command) -> Command {
    let ids: Vec<(String, String)> = command
        .get_arguments()
        .filter(|arg| arg.get_env().is_none() && !arg.is_global_set())
        .filter_map(|arg| Some((arg.get_id().to_string(), arg.get_long()?.to_owned())))
        .filter(|(_, long)| long != "help" && long != "version")
        .collect();
    let mut command = command;
    for (id, long) in ids {
        command = command.mut_arg(id, |arg| arg.env(env_name(&long)));
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in subcommands {
        command = command.mut_subcommand(name, with_env_names);
    }
    command
}

fn read_yaml(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_saphyr::from_str(&text).map_err(|e| Error::ConfigInvalid {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn apply_yaml(command: Command, yaml: &Value, path: &Path) -> Result<Command, Error> {
    let invalid = |message: String| Error::ConfigInvalid {
        path: path.to_owned(),
        message,
    };
    let Value::Object(map) = yaml else {
        return Err(invalid("expected a mapping of flag names to values".into()));
    };
    let mut command = command;
    // Flat keys first, so subcommand sections override them.
    for (key, value) in map {
        let is_section =
            value.is_object() && command.get_subcommands().any(|sub| sub.get_name() == key);
        if is_section {
            continue;
        }
        let (next, applied) = set_default_everywhere(command, key, value, path)?;
        command = next;
        if !applied {
            return Err(invalid(format!("unknown setting `{key}`")));
        }
    }
    for (key, value) in map {
        if value.is_object() && command.get_subcommands().any(|sub| sub.get_name() == key) {
            let mut failure = None;
            command =
                command.mut_subcommand(key, |sub| match apply_yaml(sub.clone(), value, path) {
                    Ok(sub) => sub,
                    Err(error) => {
                        failure = Some(error);
                        sub
                    }
                });
            if let Some(error) = failure {
                return Err(match error {
                    Error::ConfigInvalid { path, message } => Error::ConfigInvalid {
                        path,
                        message: format!("in section `{key}`: {message}"),
                    },
                    other => other,
                });
            }
        }
    }
    Ok(command)
}

/// Sets `key` as a default on this command and every subcommand that has it.
/// Returns whether any command had such a flag.
fn set_default_everywhere(
    command: Command,
    key: &str,
    value: &Value,
    path: &Path,
) -> Result<(Command, bool), Error> {
    let mut command = command;
    let mut applied = false;
    let id = command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(key))
        .map(|arg| arg.get_id().to_string());
    if let Some(id) = id {
        let values = scalar_values(value).ok_or_else(|| Error::ConfigInvalid {
            path: path.to_owned(),
            message: format!("setting `{key}` must be a string, number, boolean or list of those"),
        })?;
        command = command.mut_arg(id, |arg| {
            let arg = arg.required(false);
            if values.len() == 1 {
                arg.default_value(values[0].clone())
            } else {
                arg.default_values(values)
            }
        });
        applied = true;
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in subcommands {
        let mut result = Ok(false);
        command = command.mut_subcommand(name, |sub| {
            match set_default_everywhere(sub.clone(), key, value, path) {
                Ok((sub, sub_applied)) => {
                    result = Ok(sub_applied);
                    sub
                }
                Err(error) => {
                    result = Err(error);
                    sub
                }
            }
        });
        applied |= result?;
    }
    Ok((command, applied))
}

fn scalar_values(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Number(n) => Some(vec![n.to_string()]),
        Value::Bool(b) => Some(vec![b.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
            .collect(),
        Value::Null | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: Cmd,
    }

    #[derive(Debug, Subcommand)]
    enum Cmd {
        Serve {
            #[arg(long, default_value = "127.0.0.1:1")]
            listen: String,
            #[arg(long)]
            verbose: bool,
            #[arg(long, required = true)]
            backend: String,
            #[arg(long)]
            tag: Vec<String>,
        },
        Other {
            #[arg(long, default_value = "127.0.0.1:2")]
            listen: String,
        },
    }

    fn parse(args: &[&str]) -> Result<Cli, Error> {
        try_parse_from(args.iter().map(OsString::from).collect())
    }

    fn yaml(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn flags_beat_yaml_and_yaml_beats_defaults() {
        let file = yaml("listen: 0.0.0.0:9\nverbose: true\nbackend: memory\ntag: [a, b]\n");
        let path = file.path().to_str().unwrap();
        let cli = parse(&["cube", "--config", path, "serve"]).unwrap();
        let Cmd::Serve {
            listen,
            verbose,
            backend,
            tag,
        } = cli.command
        else {
            panic!("wrong subcommand")
        };
        assert_eq!(listen, "0.0.0.0:9");
        assert!(verbose);
        assert_eq!(backend, "memory");
        assert_eq!(tag, ["a", "b"]);

        let cli = parse(&["cube", "serve", "--config", path, "--listen", "1.2.3.4:5"]).unwrap();
        let Cmd::Serve { listen, .. } = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(listen, "1.2.3.4:5");
    }

    #[test]
    fn sections_apply_to_their_subcommand_only() {
        let file = yaml("listen: 0.0.0.0:7\nother:\n  listen: 0.0.0.0:8\n");
        let path = file.path().to_str().unwrap();
        let Cmd::Other { listen } = parse(&["cube", "--config", path, "other"]).unwrap().command
        else {
            panic!("wrong subcommand")
        };
        assert_eq!(listen, "0.0.0.0:8");
        let Cmd::Serve { listen, .. } =
            parse(&["cube", "--config", path, "serve", "--backend", "x"])
                .unwrap()
                .command
        else {
            panic!("wrong subcommand")
        };
        assert_eq!(listen, "0.0.0.0:7");
    }

    #[test]
    fn unknown_keys_and_bad_files_are_named() {
        let file = yaml("lisen: 0.0.0.0:7\n");
        let err = parse(&["cube", "--config", file.path().to_str().unwrap(), "other"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown setting `lisen`"), "{err}");

        let file = yaml("other:\n  backend: x\n");
        let err = parse(&["cube", "--config", file.path().to_str().unwrap(), "other"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in section `other`: unknown setting `backend`"),
            "{err}"
        );

        let err = parse(&["cube", "--config", "/nonexistent/cube.yaml", "other"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/cube.yaml"), "{err}");

        let file = yaml("listen: [\n");
        assert!(matches!(
            parse(&["cube", "--config", file.path().to_str().unwrap(), "other"]),
            Err(Error::ConfigInvalid { .. })
        ));
    }

    #[test]
    fn flags_get_cube_env_names() {
        let command = with_env_names(Cli::command());
        let serve = command.find_subcommand("serve").unwrap();
        let listen = serve
            .get_arguments()
            .find(|a| a.get_long() == Some("listen"))
            .unwrap();
        assert_eq!(listen.get_env().unwrap(), "CUBE_LISTEN");
        assert_eq!(env_name("admin-listen"), "CUBE_ADMIN_LISTEN");
    }
}
