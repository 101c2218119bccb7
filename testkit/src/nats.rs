//! A real `nats-server` (Debian package `nats-server`, installed by
//! `scripts/install-deps`) on a free 127.0.0.1 port, for the route emitter's
//! tests: gorouter's message bus, not a fake.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server`, killed (by its PID) on drop.
pub struct NatsServer {
    child: Child,
    port: u16,
    auth: Option<(String, String)>,
}

impl NatsServer {
    /// Starts one, requiring `auth` (user, password) when given. Returns
    /// `None`, saying so on stderr, when `nats-server` is not installed —
    /// except under `CI=true`, where that panics: CI must run these tests.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Self> {
        let installed = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nats-server is not installed; scripts/install-deps installs it"
            );
            eprintln!("SKIPPED: nats-server is not installed (run scripts/install-deps)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on 127.0.0.1");
        let auth = auth.map(|(u, p)| (u.to_owned(), p.to_owned()));
        Some(Self::on_port(port, auth))
    }

    fn on_port(port: u16, auth: Option<(String, String)>) -> Self {
        let mut command = Command::new("nats-server");
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, password)) = &auth {
            command.args(["--user", user, "--pass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let server = Self { child, port, auth };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        server
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The (user, password) it requires, if any.
    pub fn auth(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Kills it and starts a new one on the same port (a server restart as
    /// clients see it).
    pub fn restart(mut self) -> Self {
        self.stop();
        Self::on_port(self.port, self.auth.take())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
