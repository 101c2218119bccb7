//! What an Eirini-era CC makes of the stager's answer to
//! `POST {opi}/stage/{staging_guid}` (`OPI::StagerClient#start_staging`,
//! cloud_controller_ng 9b783b01, `lib/cloud_controller/opi/stager_client.rb`):
//!
//! - `202` is success; the body is not read.
//! - Any other status: the body is parsed as JSON and only its top-level
//!   `message` is read (`response_json.message`), raised as `RunnerError`
//!   (`Runner error: %s`). A body without `message` shows as `Runner error: `
//!   — a server that nests its message only in `error.message` shows that way.
//! - A body that is not a JSON object cannot be read: `JSON.parse` (or
//!   `recursive_ostruct`) raises, which `Diego::Stager` turns into `StagerError`.

use crate::{Error, Result};

/// Reads one answer as CC does: `Ok` for 202, else the error CC raises.
pub fn read(status: u16, body: &[u8]) -> Result<()> {
    if status == 202 {
        return Ok(());
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Error::stager_error(format!(
            "the stager answered {status} with a body that is not JSON: {e}"
        ))
    })?;
    let serde_json::Value::Object(fields) = value else {
        return Err(Error::stager_error(format!(
            "the stager answered {status} with JSON that is not an object"
        )));
    };
    Err(Error::runner_error(&message_text(fields.get("message"))))
}

/// Ruby's `format('%s', message)`: `nil` is empty, a string itself; other
/// values are shown as their JSON text.
fn message_text(message: Option<&serde_json::Value>) -> String {
    match message {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(result: Result<()>) -> (u16, &'static str, String) {
        match result {
            Err(Error::Api {
                status,
                name,
                description,
                ..
            }) => (status, name, description),
            other => panic!("expected a CC API error, got {other:?}"),
        }
    }

    #[test]
    fn only_202_is_success() {
        assert!(read(202, b"").is_ok());
        assert!(read(202, b"not json").is_ok());
        for status in [200, 201, 204] {
            let (code, name, _) = description(read(status, br#"{"message":"ok?"}"#));
            assert_eq!((code, name), (500, "RunnerError"), "{status}");
        }
    }

    #[test]
    fn the_top_level_message_is_what_cc_shows() {
        let body = include_bytes!("../../testdata/opi_stage_error.json");
        let (status, name, text) = description(read(400, body));
        assert_eq!((status, name), (500, "RunnerError"));
        assert_eq!(
            text,
            "Runner error: lifecycle.buildpack_lifecycle.droplet_upload_uri: must not be empty"
        );
    }

    #[test]
    fn a_nested_message_alone_shows_blank() {
        let body = br#"{"error":{"code":"BadRequest","message":"only in here"}}"#;
        let (_, name, text) = description(read(400, body));
        assert_eq!(name, "RunnerError");
        assert_eq!(text, "Runner error: ", "CC reads no nested message");
        let (_, _, text) = description(read(500, br#"{"message":null}"#));
        assert_eq!(text, "Runner error: ");
        let (_, _, text) = description(read(500, br#"{"message":42}"#));
        assert_eq!(text, "Runner error: 42");
    }

    #[test]
    fn an_unreadable_body_is_a_stager_error() {
        for body in [&b""[..], b"<html>bad gateway</html>", b"[\"message\"]"] {
            let (status, name, text) = description(read(502, body));
            assert_eq!((status, name), (500, "StagerError"), "{text}");
            assert!(
                text.starts_with("Stager error: the stager answered 502"),
                "{text}"
            );
        }
    }
}
