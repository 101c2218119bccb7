use std::collections::BTreeMap;

use opi::model::{
    DesiredLrp, HealthCheck, HealthCheckType, LrpId, LrpLifecycle, LrpUpdate, Named,
    RegistryCredentials, Route, Routes,
};
use proptest::prelude::*;

use super::*;

const REGISTRY: &str = "registry.cube.internal:8087";

fn sample() -> DesiredLrp {
    DesiredLrp {
        id: LrpId::new("app-guid", "v-1"),
        process_type: "web".into(),
        app: Named {
            guid: "app-guid".into(),
            name: "dora".into(),
        },
        space: Named {
            guid: "space-guid".into(),
            name: "dev".into(),
        },
        org: Named {
            guid: "org-guid".into(),
            name: "acme".into(),
        },
        instances: 3,
        memory_mb: 256,
        disk_mb: 1024,
        cpu_weight: 20,
        ports: vec![8080, 9090],
        routes: Routes {
            cf_router: vec![
                Route {
                    hostname: "dora.example.com".into(),
                    port: 8080,
                },
                Route {
                    hostname: "www.dora.example.com".into(),
                    port: 8080,
                },
                Route {
                    hostname: "admin.dora.example.com".into(),
                    port: 9090,
                },
            ],
            other: BTreeMap::from([(
                "tcp-router".to_owned(),
                serde_json::json!([{"external_port": 61000, "container_port": 9090}]),
            )]),
        },
        environment: BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]).into(),
        health_check: HealthCheck {
            kind: HealthCheckType::Http,
            http_endpoint: "/healthz".into(),
            timeout_ms: 1500,
        },
        start_timeout_ms: 60_000,
        lifecycle: LrpLifecycle::Buildpack {
            droplet_guid: "droplet-guid".into(),
            droplet_hash: "abc123".into(),
            start_command: "bundle exec rackup -p $PORT".into(),
        },
        annotation: "1700000000.0".into(),
        user_defined_annotations: BTreeMap::new(),
        volume_mounts: Vec::new(),
        placement_tags: vec!["iso-seg".into()],
        egress_rules: Vec::new(),
    }
}

#[test]
fn a_droplet_lrp_becomes_a_cf_apps_desired_lrp() {
    let d = desired_lrp(&sample(), REGISTRY).expect("translates");
    assert_eq!(d.process_guid, "app-guid-v-1");
    assert_eq!(d.domain, "cf-apps");
    assert_eq!(
        d.root_fs,
        "docker://registry.cube.internal:8087/cloudfoundry/droplet-guid#abc123"
    );
    assert_eq!(
        (d.instances, d.memory_mb, d.disk_mb, d.cpu_weight),
        (3, 256, 1024, 20)
    );
    assert_eq!(d.ports, [8080, 9090]);
    assert_eq!(d.start_timeout_ms, 60_000);
    assert_eq!(d.log_guid, "app-guid");
    assert_eq!(d.annotation, "1700000000.0");
    assert_eq!(d.placement_tags, ["iso-seg"]);
    let run = d
        .action
        .as_ref()
        .and_then(|a| a.run_action.as_ref())
        .expect("run");
    assert_eq!(run.path, "/bin/sh");
    assert_eq!(run.args, ["-c", "bundle exec rackup -p $PORT"]);
    assert_eq!(
        (run.dir.as_str(), run.user.as_str()),
        ("/home/vcap/app", "vcap")
    );
    assert_eq!(run.log_source, "APP/PROC/WEB");
    assert_eq!(run.env.len(), 1);
    assert_eq!(
        (run.env[0].name.as_str(), run.env[0].value.as_str()),
        ("GREETING", "hello")
    );
    let check = &d.check_definition.as_ref().expect("checks").checks[0];
    let http = check.http_check.as_ref().expect("http check");
    assert_eq!(
        (http.port, http.path.as_str(), http.request_timeout_ms),
        (8080, "/healthz", 1500)
    );
    assert_eq!(d.metric_tags["process_type"].r#static, "web");
    assert_eq!(d.metric_tags["source_id"].r#static, "app-guid");
    assert_eq!(
        d.metric_tags["instance_id"].dynamic,
        proto::metric_tag_value::DynamicValue::Index as i32
    );
}

#[test]
fn routes_are_in_the_route_emitters_cf_router_format() {
    let d = desired_lrp(&sample(), REGISTRY).expect("translates");
    let routes = &d.routes.as_ref().expect("routes").routes;
    let cf: serde_json::Value = serde_json::from_slice(&routes["cf-router"]).expect("json");
    assert_eq!(
        cf,
        serde_json::json!([
            {"hostnames": ["dora.example.com", "www.dora.example.com"], "port": 8080},
            {"hostnames": ["admin.dora.example.com"], "port": 9090},
        ])
    );
    let tcp: serde_json::Value = serde_json::from_slice(&routes["tcp-router"]).expect("json");
    assert_eq!(tcp[0]["external_port"], 61000);
    let id: serde_json::Value = serde_json::from_slice(&routes[LRP_ID_ROUTE]).expect("json");
    assert_eq!(
        id,
        serde_json::json!({"guid": "app-guid", "version": "v-1"})
    );
}

#[test]
fn a_docker_lrp_runs_its_command_with_credentials() {
    let mut lrp = sample();
    lrp.lifecycle = LrpLifecycle::Docker {
        image: "nginx:1.27".into(),
        command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        credentials: Some(RegistryCredentials {
            username: "u".into(),
            password: "p".into(),
        }),
    };
    lrp.health_check.kind = HealthCheckType::Port;
    let d = desired_lrp(&lrp, REGISTRY).expect("translates");
    assert_eq!(d.root_fs, "docker:///library/nginx#1.27");
    assert_eq!(
        (d.image_username.as_str(), d.image_password.as_str()),
        ("u", "p")
    );
    let run = d
        .action
        .as_ref()
        .and_then(|a| a.run_action.as_ref())
        .expect("run");
    assert_eq!(run.path, "nginx");
    assert_eq!(run.args, ["-g", "daemon off;"]);
    assert_eq!(run.user, "root");
    let check = &d.check_definition.as_ref().expect("checks").checks[0];
    assert_eq!(check.tcp_check.as_ref().map(|t| t.port), Some(8080));
    assert_eq!(
        opi_lrp(&d, REGISTRY).expect("reads back").lifecycle,
        lrp.lifecycle
    );
}

#[test]
fn what_diego_cannot_run_is_not_supported() {
    let mut lrp = sample();
    lrp.lifecycle = LrpLifecycle::Docker {
        image: "nginx".into(),
        command: Vec::new(),
        credentials: None,
    };
    assert!(matches!(
        desired_lrp(&lrp, ""),
        Err(DiegoError::Unsupported(_))
    ));
    let mut lrp = sample();
    lrp.volume_mounts = vec![opi::model::VolumeMount {
        volume_id: "v".into(),
        mount_dir: "/data".into(),
    }];
    assert!(matches!(
        desired_lrp(&lrp, ""),
        Err(DiegoError::Unsupported(_))
    ));
    let mut lrp = sample();
    lrp.memory_mb = u64::from(u32::MAX);
    assert!(matches!(
        desired_lrp(&lrp, ""),
        Err(DiegoError::Unsupported(_))
    ));
}

#[test]
fn process_health_checks_have_no_check_definition() {
    let mut lrp = sample();
    lrp.health_check = HealthCheck {
        kind: HealthCheckType::Process,
        http_endpoint: String::new(),
        timeout_ms: 0,
    };
    let d = desired_lrp(&lrp, "").expect("translates");
    assert_eq!(d.check_definition, None);
    assert_eq!(
        opi_lrp(&d, "").expect("reads").health_check,
        lrp.health_check
    );
}

#[test]
fn cloud_controller_process_guids_split_after_the_app_guid() {
    let pg = "8f0d1f05-77d8-4ab8-a4b6-4b0c5d5e6f70-0b4b1c8e-2a1c-4d57-9f0e-6f7b2d3c4e5f";
    assert_eq!(
        lrp_id(pg, None),
        Some(LrpId::new(
            "8f0d1f05-77d8-4ab8-a4b6-4b0c5d5e6f70",
            "0b4b1c8e-2a1c-4d57-9f0e-6f7b2d3c4e5f"
        ))
    );
    assert_eq!(lrp_id("short-v1", None), None);
    // An id route that does not match the process guid is not believed.
    let routes = routes(&LrpId::new("a", "b"), &Routes::default());
    assert_eq!(lrp_id("x-y", Some(&routes)), None);
    assert_eq!(lrp_id("a-b", Some(&routes)), Some(LrpId::new("a", "b")));
}

#[test]
fn updates_carry_only_what_they_name_and_keep_the_id_route() {
    let id = LrpId::new("a-b", "c");
    let none = update(&id, &LrpUpdate::default()).expect("translates");
    assert_eq!(none, proto::DesiredLrpUpdate::default());
    let full = update(
        &id,
        &LrpUpdate {
            instances: Some(5),
            routes: Some(Routes::default()),
            annotation: Some("2".into()),
        },
    )
    .expect("translates");
    assert_eq!(
        full.optional_instances,
        Some(proto::desired_lrp_update::OptionalInstances::Instances(5))
    );
    assert_eq!(lrp_id("a-b-c", full.routes.as_ref()), Some(id));
}

#[test]
fn differences_are_classified_for_desire() {
    let have = desired_lrp(&sample(), REGISTRY).expect("translates");
    assert!(!differs_beyond_update(&have, &have));
    assert_eq!(update_between(&have, &have), None);

    let mut scaled = sample();
    scaled.instances = 7;
    scaled.annotation = "2".into();
    let want = desired_lrp(&scaled, REGISTRY).expect("translates");
    assert!(!differs_beyond_update(&have, &want));
    let update = update_between(&have, &want).expect("an update");
    assert_eq!(
        update.optional_instances,
        Some(proto::desired_lrp_update::OptionalInstances::Instances(7))
    );
    assert_eq!(update.routes, None);

    let mut bigger = sample();
    bigger.memory_mb = 512;
    let want = desired_lrp(&bigger, REGISTRY).expect("translates");
    assert!(differs_beyond_update(&have, &want));

    // The BBS's own bookkeeping is not a difference.
    let mut stored = have.clone();
    stored.modification_tag = Some(proto::ModificationTag {
        epoch: "e".into(),
        index: 3,
    });
    assert!(!differs_beyond_update(&stored, &have));
    // Nor is the metrics guid every BBS read fills in from `source_id`.
    let read = proto::version::populate_metrics_guid(have.clone());
    assert_ne!(read, have);
    assert!(!differs_beyond_update(&read, &have));
}

#[test]
fn scheduling_infos_name_the_lrp() {
    let d = desired_lrp(&sample(), REGISTRY).expect("translates");
    let info = proto::DesiredLrpSchedulingInfo {
        desired_lrp_key: Some(proto::DesiredLrpKey {
            process_guid: d.process_guid.clone(),
            domain: d.domain.clone(),
            log_guid: d.log_guid.clone(),
        }),
        annotation: d.annotation.clone(),
        instances: d.instances,
        routes: d.routes.clone(),
        ..proto::DesiredLrpSchedulingInfo::default()
    };
    assert_eq!(scheduling_info(&info), Some(sample().scheduling_info()));
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}"
}

fn any_lrp() -> impl Strategy<Value = DesiredLrp> {
    let lifecycle = prop_oneof![
        (name(), "[a-f0-9]{6}", "[a-z][a-z $./-]{0,19}").prop_map(|(g, h, c)| {
            LrpLifecycle::Buildpack {
                droplet_guid: g,
                droplet_hash: h,
                start_command: c,
            }
        }),
        (
            name(),
            proptest::collection::vec("[a-z/ -]{1,8}", 1..4),
            any::<bool>()
        )
            .prop_map(|(image, command, creds)| LrpLifecycle::Docker {
                image: format!("127.0.0.1:5000/{image}:1"),
                command,
                credentials: creds.then(|| RegistryCredentials {
                    username: "user".into(),
                    password: "secret".into(),
                }),
            }),
    ];
    let health = prop_oneof![
        Just((HealthCheckType::Process, String::new(), 0u64)),
        (0u64..10_000).prop_map(|t| (HealthCheckType::Port, String::new(), t)),
        ("/[a-z]{0,8}", 0u64..10_000).prop_map(|(p, t)| (HealthCheckType::Http, p, t)),
    ];
    (
        (
            name(),
            name(),
            0u32..100,
            1u64..10_000,
            0u64..10_000,
            0u8..=100,
        ),
        proptest::collection::vec((name(), 1024u16..1030), 0..5),
        proptest::collection::btree_map("[A-Z_]{1,6}", "[ -~]{0,10}", 0..4),
        lifecycle,
        health,
        (
            0u64..100_000,
            "[0-9.]{1,12}",
            proptest::collection::vec(name(), 0..2),
        ),
    )
        .prop_map(
            |(
                (guid, version, instances, memory_mb, disk_mb, cpu_weight),
                routes,
                environment,
                lifecycle,
                health,
                (start, annotation, tags),
            )| {
                let mut lrp = sample();
                lrp.id = LrpId::new(guid.clone(), version);
                lrp.app.guid = guid;
                lrp.instances = instances;
                lrp.memory_mb = memory_mb;
                lrp.disk_mb = disk_mb;
                lrp.cpu_weight = cpu_weight;
                lrp.ports = vec![8080];
                lrp.routes = Routes {
                    cf_router: routes
                        .into_iter()
                        .map(|(h, port)| Route {
                            hostname: format!("{h}.example.com"),
                            port: i64::from(port),
                        })
                        .collect(),
                    other: BTreeMap::new(),
                };
                lrp.environment = environment.into();
                lrp.lifecycle = lifecycle;
                lrp.health_check = HealthCheck {
                    kind: health.0,
                    http_endpoint: health.1,
                    timeout_ms: health.2,
                };
                lrp.start_timeout_ms = start;
                lrp.annotation = annotation;
                lrp.placement_tags = tags;
                lrp
            },
        )
}

proptest! {
    /// `get` returns what was desired: the BBS record reads back as the same LRP
    /// (user annotations and egress rules aside, which the BBS does not keep).
    #[test]
    fn desired_lrps_read_back_unchanged(lrp in any_lrp(), registry in prop_oneof![Just(""), Just(REGISTRY)]) {
        let d = desired_lrp(&lrp, registry).expect("translates");
        prop_assert_eq!(opi_lrp(&d, registry).expect("reads back"), lrp);
    }

    /// Applying an update in OPI and translating equals translating and
    /// applying the BBS update.
    #[test]
    fn updates_commute_with_translation(
        lrp in any_lrp(),
        instances in proptest::option::of(0u32..50),
        annotation in proptest::option::of("[0-9.]{1,8}"),
        host in proptest::option::of(name()),
    ) {
        let change = LrpUpdate {
            instances,
            routes: host.map(|h| Routes {
                cf_router: vec![Route { hostname: h, port: 8080 }],
                other: BTreeMap::new(),
            }),
            annotation,
        };
        let mut bbs = desired_lrp(&lrp, REGISTRY).expect("translates");
        let u = update(&lrp.id, &change).expect("translates");
        if let Some(proto::desired_lrp_update::OptionalInstances::Instances(n)) = u.optional_instances {
            bbs.instances = n;
        }
        if let Some(routes) = u.routes {
            bbs.routes = Some(routes);
        }
        if let Some(proto::desired_lrp_update::OptionalAnnotation::Annotation(a)) = u.optional_annotation {
            bbs.annotation = a;
        }
        let mut expected = lrp.clone();
        expected.apply(&change);
        prop_assert_eq!(opi_lrp(&bbs, REGISTRY).expect("reads back"), expected);
    }
}
