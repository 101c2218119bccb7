//! Shared test fixtures: a droplet whose app serves HTTP and crashes on demand.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;

pub const DROPLET_GUID: &str = "droplet-1";
pub const DROPLET_HASH: &str = "abc123";

/// An app that serves HTTP on $PORT and exits with the code written to
/// `crash-<index>` when that file appears.
pub const START: &str = r#"busybox httpd -f -p 127.0.0.1:$PORT -h . &
server=$!
trap 'kill $server 2>/dev/null' EXIT
while [ ! -f crash-$CF_INSTANCE_INDEX ]; do sleep 0.05; done
code=$(cat crash-$CF_INSTANCE_INDEX)
rm -f crash-$CF_INSTANCE_INDEX
exit $code"#;

/// Writes the test droplet as `<dir>/droplet-1.tgz`.
pub fn write_droplet(dir: &Path) {
    let file = std::fs::File::create(dir.join(format!("{DROPLET_GUID}.tgz"))).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, body) in [
        ("app/index.html", "hello from a droplet\n"),
        (
            "staging_info.yml",
            r#"{"detected_buildpack":"test","start_command":"./serve"}"#,
        ),
        ("app/serve", START),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, path, body.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}
