//! `cube up --kubeconfig`: the same services, with apps on Kubernetes (here
//! the fake apiserver with its StatefulSet and scheduler controllers). A
//! docker-lifecycle push ends as StatefulSet `web` with pod `web-0` in the
//! space's namespace, routed by a Service and an Ingress; scale and delete
//! follow.

#![allow(clippy::unwrap_used)]

mod common;

use common::{eventually, free_port};

use std::process::{Child, Command, Stdio};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves a fake apiserver with controllers on its own runtime thread.
fn fake_cluster() -> (testkit::FakeApiServer, String) {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = testkit::FakeApiServer::builder().controllers(true).build();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let serving = server.serve(listener);
            sender.send((server, url)).unwrap();
            let _ = serving.await;
        });
    });
    receiver.recv().unwrap()
}

fn statefulset(server: &testkit::FakeApiServer, name: &str) -> Option<serde_json::Value> {
    server
        .list("statefulsets", None)
        .into_iter()
        .find(|s| s["metadata"]["name"] == name)
}

#[test]
fn docker_apps_land_on_kubernetes() {
    let (server, url) = fake_cluster();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, testkit::kubeconfig::kubeconfig(&url)).unwrap();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let _up = Killed(
        Command::new(env!("CARGO_BIN_EXE_cube"))
            .args(["up", "--kubeconfig", kubeconfig.to_str().unwrap()])
            .args(["--data-dir", dir.path().join("cube").to_str().unwrap()])
            .args(["--router-listen", &addr(0), "--cc-listen", &addr(1)])
            .args(["--opi-listen", &addr(2), "--stager-listen", &addr(3)])
            .args(["--registry-listen", &addr(4), "--admin-listen", &addr(5)])
            .args(["--interval", "1s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let curl = |args: &[&str]| Command::new("curl").args(args).output().unwrap();
    eventually("cube up to be ready", || {
        curl(&["-sf", &format!("http://{}/readyz", addr(5))])
            .status
            .success()
            .then_some(())
    });

    // An image in Cube's registry (a droplet imported as an image).
    let tgz = dir.path().join("droplet.tgz");
    common::write_droplet(
        &tgz,
        &[
            ("app/run", "#!/bin/sh\nexec busybox httpd -f -p $PORT\n"),
            (
                "staging_info.yml",
                r#"{"detected_buildpack":"binary","start_command":"./run"}"#,
            ),
        ],
    );
    let imported = curl(&[
        "-sf",
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", tgz.display()),
        &format!(
            "http://{}/v2/cloudfoundry/web-droplet/droplets?hash=v1",
            addr(4)
        ),
    ]);
    assert!(imported.status.success(), "{imported:?}");

    let cube = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_cube"))
            .args(args)
            .args(["--cc-url", &format!("http://{}", addr(1))])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cube {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let image = format!("{}/cloudfoundry/web-droplet:v1", addr(4));
    cube(&[
        "push",
        "--name",
        "web",
        "--docker-image",
        &image,
        "--no-wait",
    ]);

    let set = eventually("StatefulSet web", || statefulset(&server, "web"));
    assert_eq!(set["metadata"]["namespace"], "org-dev");
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
    eventually("pod web-0", || {
        server
            .list("pods", Some("org-dev"))
            .iter()
            .any(|p| p["metadata"]["name"] == "web-0")
            .then_some(())
    });

    // `cube up --kubeconfig` routes through Ingresses by default: the app's
    // route host goes to its Service.
    let ingress = eventually("Ingress web", || server.get("ingresses", "org-dev", "web"));
    assert_eq!(ingress["spec"]["rules"][0]["host"], "web.localhost");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "web"
    );
    let service = server.get("services", "org-dev", "web").unwrap();
    assert_eq!(
        service["spec"]["selector"]["cloudfoundry.org/source-type"],
        "APP"
    );

    cube(&["scale", "web", "-i", "2"]);
    eventually("two replicas", || {
        (statefulset(&server, "web")?["spec"]["replicas"] == 2).then_some(())
    });

    cube(&["delete", "web"]);
    eventually("the StatefulSet to go", || {
        statefulset(&server, "web").is_none().then_some(())
    });
    assert!(server.get("services", "org-dev", "web").is_none());
    assert!(server.get("ingresses", "org-dev", "web").is_none());
}
