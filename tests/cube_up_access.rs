//! `cube up` with TLS, client certificates and a token file — one set of
//! flags for every service — still pushes, stages and runs an app (so every
//! internal hop carries the credentials), refuses a client without them, and
//! at trace log level writes none of the secrets (token, TLS key, CC's
//! password from its URLs) to its output.

#![allow(clippy::unwrap_used)]

mod common;

use common::{cube_ok, eventually, free_port};

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const TOKEN: &str = "cube-e2e-token-5f1d8a7c2b";
const WRONG_TOKEN: &str = "wrong-e2e-token-93b0c1d4";

/// Debug for every crate, trace for Cube's own (trace everywhere multiplies
/// the output of h2 and rustls a hundredfold without logging more values).
const LOG_FILTER: &str = "debug,cube=trace,cube_runtime=trace,opi=trace,opi_local=trace,\
    stager=trace,registry=trace,cube_cc=trace,sink=trace";

fn cube() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cube"))
}

/// Stops `child` with SIGTERM (so it stops its apps), then waits.
fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

fn client_flags(dir: &Path) -> Vec<String> {
    [
        "--auth-token-file",
        dir.join("tokens").to_str().unwrap(),
        "--ca-cert",
        dir.join("ca.pem").to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn cube_up_with_tls_and_a_token_runs_an_app_and_logs_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let pki = testkit::access::write_pki(dir.path()).unwrap();
    std::fs::write(dir.path().join("tokens"), format!("{TOKEN}\n")).unwrap();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let log_path = dir.path().join("cube-up.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = cube()
        // Debug for every crate, trace for Cube's own.
        .args(["--log", LOG_FILTER, "up"])
        .args(["--data-dir", dir.path().join("cube").to_str().unwrap()])
        .args(["--router-listen", &addr(0), "--cc-listen", &addr(1)])
        .args(["--opi-listen", &addr(2), "--stager-listen", &addr(3)])
        .args(["--registry-listen", &addr(4), "--admin-listen", &addr(5)])
        .args(["--interval", "1s"])
        .args(["--tls-cert", pki.cert.to_str().unwrap()])
        .args(["--tls-key", pki.key.to_str().unwrap()])
        .args(["--tls-client-ca", pki.ca.to_str().unwrap()])
        .args(client_flags(dir.path()))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut up = Guard(child);
    let ready = format!("http://{}/readyz", addr(5));
    eventually("cube up to be ready", || {
        let out = Command::new("curl").args(["-sf", &ready]).output().ok()?;
        out.status.success().then_some(())
    });
    let cc = format!("https://{}", addr(1));
    let opi = format!("https://{}", addr(2));

    // Without the token, the simulated CC refuses `cube apps`.
    let refused = cube()
        .args([
            "apps",
            "--cc-url",
            &cc,
            "--ca-cert",
            pki.ca.to_str().unwrap(),
        ])
        .env_remove("CUBE_AUTH_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Unauthorized"), "{stderr}");

    // With it, push stages through St8ge (a task reporting back), imports the
    // droplet into the Registry, the Sink desires the app in OPI, and OPI's
    // local backend pulls the droplet and runs it.
    let mut push: Vec<String> = ["push", "examples/python-hello", "--name", "hello"]
        .map(str::to_owned)
        .to_vec();
    push.extend([
        "--cc-url".into(),
        cc.clone(),
        "--opi-url".into(),
        opi.clone(),
    ]);
    push.extend([
        "--router-url".into(),
        format!("http://localhost:{}", ports[0]),
    ]);
    push.extend(client_flags(dir.path()));
    let out = cube_ok(&push);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 of 1 instances running"), "{text}");
    // The staging output reached St8ge (token, TLS) and push through cc-sim.
    assert!(text.contains("-----> Python buildpack: done"), "{text}");
    let body = eventually("the app to answer through the router", || {
        let out = Command::new("curl")
            .args(["-s", "-m", "5", "-H", "Host: hello.localhost"])
            .arg(format!("http://127.0.0.1:{}/", ports[0]))
            .output()
            .ok()?;
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        body.contains("Hello from Cube").then_some(body)
    });
    assert_eq!(body.trim(), "Hello from Cube");

    // A kubelet-style pull with the token as Basic password is served; a
    // wrong token is refused (and the refusal, logged at debug, names neither).
    let curl = |auth: &[&str], url: &str| -> String {
        let out = Command::new("curl")
            .args(["-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["--cacert", pki.ca.to_str().unwrap()])
            .args(auth)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let registry = format!("https://{}/v2/", addr(4));
    assert_eq!(curl(&["-u", &format!("kubelet:{TOKEN}")], &registry), "200");
    let wrong = format!("Authorization: Bearer {WRONG_TOKEN}");
    assert_eq!(curl(&["-H", &wrong], &format!("{opi}/apps")), "401");

    stop(&mut up.0);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "trace logs were captured"
    );
    let key_body = testkit::access::SERVICE_KEY_PEM.lines().nth(1).unwrap();
    for (secret, what) in [
        (TOKEN, "the token"),
        (WRONG_TOKEN, "a refused token"),
        (key_body, "the TLS key"),
        (cc::client::DEFAULT_PASSWORD, "CC's password from its URLs"),
    ] {
        assert!(
            !logs.contains(secret),
            "{what} appears in cube up's output ({} bytes of logs)",
            logs.len()
        );
    }
}
