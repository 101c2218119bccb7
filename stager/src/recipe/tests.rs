use super::*;

fn recipe() -> Recipe {
    Recipe {
        cube_binary: "/usr/local/bin/cube".into(),
        image: "cube/host-exec".into(),
        public_url: Url::parse("http://127.0.0.1:8086").unwrap(),
        registry_url: Some(Url::parse("http://127.0.0.1:8087").unwrap()),
        staging_timeout: Duration::from_secs(900),
        credentials: Vec::new(),
    }
}

fn request() -> StagingRequest {
    serde_json::from_str(include_str!(
        "../../testdata/staging_request_buildpack.json"
    ))
    .unwrap()
}

fn env_of<'a>(task: &'a Task, name: &str) -> Option<&'a str> {
    task.environment
        .iter()
        .rev()
        .find(|v| v.name == name)
        .map(|v| v.value.as_str())
}

#[test]
fn task_runs_the_three_steps_and_reports_to_st8ge() {
    let mut request = request();
    request.environment.push(EnvironmentVariable {
        name: "CUBE_REGISTRY_URL".into(),
        value: "http://evil".into(),
    });
    let guid = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    let bps = request
        .lifecycle
        .buildpack_lifecycle
        .as_ref()
        .unwrap()
        .buildpacks
        .clone();
    let task = staging_task(&recipe(), guid, &request, &bps).unwrap();
    assert_eq!(task.guid, guid);
    let LrpLifecycle::Docker { image, command, .. } = &task.lifecycle else {
        panic!("docker lifecycle expected");
    };
    assert_eq!(image, "cube/host-exec");
    assert!(
        command.is_empty(),
        "the steps carry the commands: {command:?}"
    );
    let steps: Vec<(&str, Vec<&str>)> = task
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.command.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("download", vec!["/usr/local/bin/cube", "stage", "download"]),
            ("build", vec!["/usr/local/bin/cube", "stage", "build"]),
            ("upload", vec!["/usr/local/bin/cube", "stage", "upload"]),
        ]
    );
    opi::model::validate::steps(&task.steps, &task.lifecycle).expect("OPI accepts the steps");
    assert!(task.completion_callback.starts_with(&format!(
        "http://127.0.0.1:8086/stage/{guid}/completed?cc_callback=http"
    )));
    let completion = Url::parse(env_of(&task, env::COMPLETION_URL).unwrap()).unwrap();
    let (_, cc) = completion.query_pairs().next().unwrap();
    assert_eq!(cc, request.completion_callback);
    assert_eq!(
        env_of(&task, env::LOGS_URL),
        Some(format!("http://127.0.0.1:8086/stage/{guid}/logs").as_str())
    );
    assert_eq!(
        env_of(&task, env::APP_BITS_URL),
        Some("http://cc.service.internal:9023/internal/v4/packages/p1/download")
    );
    assert_eq!(
        env_of(&task, env::DROPLET_GUID),
        Some(request.app_guid.as_str())
    );
    assert_eq!(env_of(&task, env::STAGING_TIMEOUT), Some("900s"));
    assert_eq!(
        env_of(&task, env::REGISTRY_URL),
        Some("http://127.0.0.1:8087/")
    );
    assert!(
        !task.environment.iter().any(|v| v.value == "http://evil"),
        "the request cannot set the steps' variables"
    );
    assert_eq!(env_of(&task, "CF_STACK"), Some("cflinuxfs4"));
    let buildpacks: Vec<Buildpack> =
        serde_json::from_str(env_of(&task, env::BUILDPACKS).unwrap()).unwrap();
    assert_eq!(buildpacks, bps);
    assert_eq!(
        (task.memory_mb, task.disk_mb, task.cpu_weight),
        (1024, 4096, 50)
    );
    assert!(
        !task
            .steps
            .iter()
            .flat_map(|s| &s.command)
            .any(|a| a.contains("pass")),
        "no credentials on the command line"
    );
}

#[test]
fn empty_buildpacks_mean_the_shipped_ones_in_order() {
    let public = Url::parse("http://127.0.0.1:8086/").unwrap();
    let shipped = vec!["python".to_owned(), "binary".to_owned()];
    let resolved = resolve_buildpacks(&[], &shipped, &public).unwrap();
    assert_eq!(resolved.len(), 2);
    assert_eq!(resolved[0].name, "python");
    assert_eq!(
        resolved[0].url,
        "http://127.0.0.1:8086/buildpacks/python.zip"
    );
    assert_eq!(
        resolved[1].url,
        "http://127.0.0.1:8086/buildpacks/binary.zip"
    );
    assert!(resolved.iter().all(|b| !b.skip_detect));
}

#[test]
fn named_buildpacks_without_url_resolve_to_shipped_ones_or_name_the_field() {
    let public = Url::parse("http://127.0.0.1:8086").unwrap();
    let shipped = vec!["python".to_owned(), "binary".to_owned()];
    let named = |name: &str| Buildpack {
        name: name.into(),
        key: name.into(),
        url: String::new(),
        skip_detect: true,
    };
    let resolved = resolve_buildpacks(
        &[named("python_buildpack"), named("binary")],
        &shipped,
        &public,
    )
    .unwrap();
    assert_eq!(
        resolved[0].url,
        "http://127.0.0.1:8086/buildpacks/python.zip"
    );
    assert_eq!(resolved[0].name, "python_buildpack");
    assert!(resolved[0].skip_detect);
    assert_eq!(
        resolved[1].url,
        "http://127.0.0.1:8086/buildpacks/binary.zip"
    );
    let error =
        resolve_buildpacks(&[named("binary"), named("ruby")], &shipped, &public).unwrap_err();
    assert_eq!(
        error.field,
        "lifecycle.buildpack_lifecycle.buildpacks[1].url"
    );
    assert!(error.problem.contains("ruby") && error.problem.contains("python, binary"));
    let custom = Buildpack {
        url: "http://example.test/bp.zip".into(),
        ..named("custom")
    };
    assert_eq!(
        resolve_buildpacks(std::slice::from_ref(&custom), &shipped, &public).unwrap(),
        [custom]
    );
}
