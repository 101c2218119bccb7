//! End-to-end: `cube opi --backend local --nats-url …` registers an app's
//! routes with gorouter (a real `nats-server`, read with the plain NATS text
//! protocol as gorouter's client would), and unregisters them on SIGTERM.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GUID: &str = "a6f0a0a2-6b7b-4d8e-9a3f-4c2b1e0d9f11";
const VERSION: &str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
const PASSWORD: &str = "nats-pass-4d1b";
const PATIENCE: Duration = Duration::from_secs(30);

/// Kills (by PID) and reaps the child on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A gorouter stand-in: subscribed to both route subjects.
struct Router {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Router {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut router = Self {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        };
        let info = router.line().unwrap();
        assert!(info.starts_with("INFO "), "{info}");
        let connect = serde_json::json!({"verbose": false, "user": "cube", "pass": PASSWORD});
        write!(
            router.writer,
            "CONNECT {connect}\r\nSUB router.register 1\r\nSUB router.unregister 2\r\nPING\r\n"
        )
        .unwrap();
        let pong = router.line().unwrap();
        assert_eq!(pong, "PONG", "the server accepted the subscriptions");
        router
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_owned()),
        }
    }

    /// The next `(subject, body)` satisfying `want`, within `PATIENCE`.
    fn until(
        &mut self,
        what: &str,
        want: impl Fn(&str, &serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let Some(line) = self.line() else { continue };
            if line == "PING" {
                self.writer.write_all(b"PONG\r\n").unwrap();
                continue;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            let ["MSG", subject, _sid, len] = parts[..] else {
                continue;
            };
            let mut body = vec![0; len.parse::<usize>().unwrap() + 2];
            self.reader.read_exact(&mut body).unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body[..body.len() - 2]).unwrap();
            if want(subject, &body) {
                return body;
            }
            seen.push((subject.to_owned(), body));
        }
        panic!("no {what} within {PATIENCE:?}; saw {seen:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cube_opi_registers_a_local_apps_routes_with_gorouter() {
    let Some(nats) = testkit::nats::NatsServer::start(Some(("cube", PASSWORD))) else {
        return;
    };
    let nats_port = nats.port();
    let mut router = Router::connect(nats_port);
    let data = tempfile::tempdir().unwrap();
    // The droplet is already unpacked where the local backend keeps droplets,
    // so no registry is needed.
    let hash = "8f2c5e7a9b1d3f4a6c8e0b2d4f6a8c0e2b4d6f8a";
    let app = data
        .path()
        .join("droplets")
        .join(format!("d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a-{hash}"))
        .join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "hello\n").unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_cube"))
        .args(["--log-format", "json", "opi", "--backend", "local"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .args(["--registry-url", "http://127.0.0.1:1"])
        .args(["--nats-url", &format!("nats://127.0.0.1:{nats_port}")])
        .args(["--nats-register-interval", "1s"])
        .env("CUBE_NATS_USER", "cube")
        .env("CUBE_NATS_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut cube = Killed(child);
    let logs = Arc::new(Mutex::new(String::new()));
    let (api_tx, api_rx) = std::sync::mpsc::channel();
    {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                    && entry["message"] == "cube opi started"
                {
                    let _ = api_tx.send(entry["api"].as_str().unwrap_or_default().to_owned());
                }
                logs.lock().unwrap().push_str(&line);
                logs.lock().unwrap().push('\n');
            }
        });
    }
    let api = api_rx
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("cube opi did not start:\n{}", logs.lock().unwrap()));

    let mut body: serde_json::Value =
        serde_json::from_str(&common::opi_fixture("desire_buildpack.json")).unwrap();
    body["instances"] = 1.into();
    body["lifecycle"]["buildpack_lifecycle"]["start_command"] =
        "exec busybox httpd -f -p 127.0.0.1:$PORT -h .".into();
    let response = opi::http::http_client_builder()
        .build()
        .unwrap()
        .put(format!("http://{api}/apps/{GUID}-{VERSION}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());

    let registered = tokio::task::block_in_place(|| {
        router.until("router.register for myapp", |subject, m| {
            subject == "router.register" && m["uris"] == serde_json::json!(["myapp.example.com"])
        })
    });
    assert_eq!(registered["app"], GUID);
    assert_eq!(registered["host"], "127.0.0.1");
    assert_eq!(registered["private_instance_index"], "0");
    // The registered address serves the app.
    let port = registered["port"].as_u64().unwrap();
    let page = opi::http::http_client_builder()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/index.html"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page, "hello\n");

    // SIGTERM: the routes go before the instance does.
    let term = Command::new("kill")
        .args(["-TERM", &cube.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let unregistered = tokio::task::block_in_place(|| {
        router.until("router.unregister on shutdown", |subject, m| {
            subject == "router.unregister"
                && m["private_instance_id"] == registered["private_instance_id"]
        })
    });
    assert_eq!(unregistered["port"], registered["port"]);
    let status = common::eventually("cube opi to exit", || cube.0.try_wait().unwrap());
    assert!(status.success(), "{}", logs.lock().unwrap());
    let logs = logs.lock().unwrap();
    assert!(
        !logs.contains(PASSWORD),
        "the NATS password was logged:\n{logs}"
    );
}
