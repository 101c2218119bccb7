//! The manifests in `deploy/` cannot drift from the code: every document
//! parses into its k8s-openapi type; every container has probes on the admin
//! port, limits and a locked-down security context; every workload's
//! (Deployment's or StatefulSet's) arguments and the ConfigMap's settings are
//! accepted by the real `cube` binary; OPI's RBAC equals what the Kubernetes
//! backend declares it needs.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

struct Manifests {
    /// (file, document) for every Kubernetes object.
    objects: Vec<(PathBuf, Value)>,
}

impl Manifests {
    fn load() -> Self {
        let mut files = Vec::new();
        yaml_files(&deploy_dir(), &mut files);
        files.sort();
        let mut objects = Vec::new();
        for file in files {
            let name = file.file_name().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&file).unwrap();
            if name == "kustomization.yaml" {
                check_kustomization(&file, &text);
                continue;
            }
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for doc in docs {
                if doc.is_array() {
                    continue; // a JSON 6902 patch, checked with its kustomization
                }
                objects.push((file.clone(), doc));
            }
        }
        Self { objects }
    }

    fn of_kind(&self, kind: &str) -> Vec<(&PathBuf, &Value)> {
        self.objects
            .iter()
            .filter(|(_, v)| v["kind"] == kind)
            .map(|(f, v)| (f, v))
            .collect()
    }

    /// Every Deployment and StatefulSet: name, selector labels, pod template.
    fn workloads(&self) -> Vec<Workload> {
        let deployments = self.of_kind("Deployment").into_iter().map(|(f, d)| {
            let deployment: Deployment = typed(f, d);
            let spec = deployment.spec.unwrap();
            (
                deployment.metadata.name.unwrap(),
                spec.selector,
                spec.template,
            )
        });
        let stateful_sets = self.of_kind("StatefulSet").into_iter().map(|(f, d)| {
            let set: StatefulSet = typed(f, d);
            let spec = set.spec.unwrap();
            (set.metadata.name.unwrap(), spec.selector, spec.template)
        });
        deployments
            .chain(stateful_sets)
            .map(|(name, selector, template)| Workload {
                name,
                labels: selector.match_labels.unwrap(),
                template,
            })
            .collect()
    }
}

/// A Deployment or StatefulSet.
struct Workload {
    name: String,
    labels: BTreeMap<String, String>,
    template: PodTemplateSpec,
}

fn check_kustomization(file: &Path, text: &str) {
    let k: Value = serde_saphyr::from_str(text).unwrap();
    let dir = file.parent().unwrap();
    let listed = k["resources"].as_array().cloned().unwrap_or_default();
    for resource in &listed {
        let path = dir.join(resource.as_str().unwrap());
        assert!(
            path.exists(),
            "{} lists missing {}",
            file.display(),
            path.display()
        );
    }
    for patch in k["patchesJson6902"].as_array().cloned().unwrap_or_default() {
        let path = dir.join(patch["path"].as_str().unwrap());
        let ops: Vec<Value> =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(!ops.is_empty(), "{} is empty", path.display());
    }
    // Every manifest file in this directory is listed, so none is forgotten.
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let is_patch = k["patchesJson6902"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["path"] == name.as_str()));
        if path.extension().is_some_and(|e| e == "yaml")
            && name != "kustomization.yaml"
            && !is_patch
        {
            assert!(
                listed.iter().any(|r| r == name.as_str()),
                "{} is not listed in {}",
                name,
                file.display()
            );
        }
    }
}

fn typed<T: serde::de::DeserializeOwned>(file: &Path, value: &Value) -> T {
    serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{}: {} does not parse: {e}", file.display(), value["kind"]))
}

#[test]
fn every_document_parses_into_its_type() {
    let manifests = Manifests::load();
    assert!(
        manifests.objects.len() >= 20,
        "{} objects",
        manifests.objects.len()
    );
    for (file, doc) in &manifests.objects {
        match doc["kind"].as_str().unwrap_or_default() {
            "Namespace" => drop(typed::<Namespace>(file, doc)),
            "ConfigMap" => drop(typed::<ConfigMap>(file, doc)),
            "Secret" => drop(typed::<Secret>(file, doc)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(file, doc)),
            "ClusterRole" => drop(typed::<ClusterRole>(file, doc)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(file, doc)),
            "Role" => drop(typed::<Role>(file, doc)),
            "RoleBinding" => drop(typed::<RoleBinding>(file, doc)),
            "Deployment" => drop(typed::<Deployment>(file, doc)),
            "StatefulSet" => drop(typed::<StatefulSet>(file, doc)),
            "Service" => drop(typed::<Service>(file, doc)),
            "PersistentVolumeClaim" => drop(typed::<PersistentVolumeClaim>(file, doc)),
            "NetworkPolicy" => drop(typed::<NetworkPolicy>(file, doc)),
            other => panic!("{}: unexpected kind {other:?}", file.display()),
        }
    }
}

#[test]
fn every_container_is_probed_limited_and_locked_down() {
    let manifests = Manifests::load();
    let workloads = manifests.workloads();
    let names: BTreeSet<String> = workloads.iter().map(|w| w.name.clone()).collect();
    assert_eq!(
        names,
        [
            "cube-bbs",
            "cube-opi",
            "cube-registry",
            "cube-sink",
            "cube-stager"
        ]
        .map(String::from)
        .into()
    );
    for Workload { name, template, .. } in workloads {
        let pod = template.spec.unwrap();
        let pod_security = pod.security_context.clone().unwrap_or_default();
        assert_eq!(pod_security.run_as_non_root, Some(true), "{name}");
        assert_eq!(
            pod_security.seccomp_profile.unwrap().type_,
            "RuntimeDefault",
            "{name}"
        );
        let annotations = template.metadata.unwrap().annotations.unwrap_or_default();
        assert_eq!(
            annotations.get("prometheus.io/scrape").map(String::as_str),
            Some("true"),
            "{name}"
        );
        for container in &pod.containers {
            let ports: BTreeMap<String, i32> = container
                .ports
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name.unwrap_or_default(), p.container_port))
                .collect();
            let admin = ports["admin"];
            assert_eq!(
                annotations["prometheus.io/port"],
                admin.to_string(),
                "{name}: scrape the admin port"
            );
            for (probe, path) in [
                (container.liveness_probe.clone(), "/healthz"),
                (container.readiness_probe.clone(), "/readyz"),
            ] {
                let http = probe
                    .unwrap_or_else(|| panic!("{name}: missing probe for {path}"))
                    .http_get
                    .unwrap();
                assert_eq!(http.path.as_deref(), Some(path), "{name}");
                assert_eq!(
                    format!("{:?}", http.port),
                    format!(
                        "{:?}",
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                            "admin".into()
                        )
                    ),
                    "{name}"
                );
            }
            let resources = container.resources.clone().unwrap();
            for key in ["cpu", "memory"] {
                assert!(
                    resources.limits.as_ref().unwrap().contains_key(key),
                    "{name}: no {key} limit"
                );
                assert!(
                    resources.requests.as_ref().unwrap().contains_key(key),
                    "{name}: no {key} request"
                );
            }
            let security = container.security_context.clone().unwrap();
            assert_eq!(security.allow_privilege_escalation, Some(false), "{name}");
            assert_eq!(security.read_only_root_filesystem, Some(true), "{name}");
            assert_eq!(
                security.capabilities.unwrap().drop,
                Some(vec!["ALL".to_owned()]),
                "{name}"
            );
        }
        let mounts_token = pod.automount_service_account_token.unwrap_or(true);
        assert_eq!(
            mounts_token,
            matches!(name.as_str(), "cube-opi" | "cube-bbs" | "cube-sink"),
            "{name}: only OPI and the BBS front (workloads) and the Sink (its Lease) talk to the apiserver"
        );
    }
}

#[test]
fn deployment_arguments_and_config_are_accepted_by_cube() {
    let manifests = Manifests::load();
    let dir = tempfile::tempdir().unwrap();
    let (file, config) = &manifests.of_kind("ConfigMap")[0];
    let config: ConfigMap = typed(file, config);
    let yaml = config.data.unwrap()["cube.yaml"].clone();
    let config_path = dir.path().join("cube.yaml");
    std::fs::write(&config_path, yaml).unwrap();
    for workload in manifests.workloads() {
        let pod = workload.template.spec.unwrap();
        let args: Vec<String> = pod.containers[0]
            .args
            .clone()
            .unwrap()
            .into_iter()
            .map(|a| {
                if a.starts_with("--config=") {
                    format!("--config={}", config_path.display())
                } else {
                    a
                }
            })
            .collect();
        // clap rejects an unknown flag before it prints help; the config layer
        // rejects unknown settings before that.
        let output = Command::new(env!("CARGO_BIN_EXE_cube"))
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cube {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn rules(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut set = BTreeSet::new();
    for rule in rules {
        for group in rule.api_groups.clone().unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                for verb in &rule.verbs {
                    set.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    set
}

fn declared(declared: &[opi_k8s::rbac::Rule]) -> BTreeSet<(String, String, String)> {
    let mut set = BTreeSet::new();
    for rule in declared {
        for resource in rule.resources {
            for verb in rule.verbs {
                set.insert((
                    rule.group.to_owned(),
                    (*resource).to_owned(),
                    (*verb).to_owned(),
                ));
            }
        }
    }
    set
}

#[test]
fn rbac_is_exactly_what_the_code_needs() {
    let manifests = Manifests::load();
    let (file, doc) = manifests.of_kind("ClusterRole")[0];
    let cluster: ClusterRole = typed(file, doc);
    let mut needed = declared(opi_k8s::rbac::NAMESPACED);
    needed.extend(declared(opi_k8s::rbac::CLUSTER));
    assert_eq!(
        rules(&cluster.rules.unwrap()),
        needed,
        "per-space ClusterRole"
    );

    let roles = manifests.of_kind("Role");
    let (file, doc) = roles
        .iter()
        .find(|(_, d)| d["metadata"]["name"] == "cube-opi")
        .copied()
        .unwrap();
    let role: Role = typed(file, doc);
    assert_eq!(
        rules(&role.rules.unwrap()),
        declared(opi_k8s::rbac::NAMESPACED),
        "single-namespace Role"
    );
    // The Sink may only read, create and update its Lease (sink/src/leader.rs:
    // get_opt, create, replace); nobody else gets any rights.
    let (file, doc) = roles
        .iter()
        .find(|(_, d)| d["metadata"]["name"] == "cube-sink-lease")
        .copied()
        .unwrap();
    let lease_role: Role = typed(file, doc);
    let expected: BTreeSet<(String, String, String)> = ["get", "create", "update"]
        .iter()
        .map(|v| {
            (
                "coordination.k8s.io".to_owned(),
                "leases".to_owned(),
                (*v).to_owned(),
            )
        })
        .collect();
    assert_eq!(rules(&lease_role.rules.unwrap()), expected);
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for (file, doc) in manifests.of_kind(kind) {
            let subjects = doc["subjects"].as_array().unwrap();
            let role = doc["roleRef"]["name"].as_str().unwrap();
            // `cube bbs` runs the same Kubernetes backend as OPI, so it may
            // hold OPI's rights; nobody else holds another service's.
            let holders: &[&str] = match role {
                "cube-opi" => &["cube-opi", "cube-bbs"],
                other => &[other.trim_end_matches("-lease")],
            };
            assert!(
                subjects
                    .iter()
                    .all(|s| holders.iter().any(|h| s["name"] == *h)),
                "{}: {role} is bound to its own service only",
                file.display()
            );
        }
    }
}

#[test]
fn services_point_at_named_container_ports() {
    let manifests = Manifests::load();
    let mut ports = BTreeMap::new();
    for workload in manifests.workloads() {
        let labels = workload.labels;
        let pod = workload.template.spec.unwrap();
        let named: BTreeSet<String> = pod.containers[0]
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .filter_map(|p| p.name)
            .collect();
        ports.insert(labels["app.kubernetes.io/name"].clone(), named);
    }
    for (file, doc) in manifests.of_kind("Service") {
        let service: Service = typed(file, doc);
        let spec = service.spec.unwrap();
        let target = &spec.selector.unwrap()["app.kubernetes.io/name"];
        for port in spec.ports.unwrap() {
            let name = match port.target_port.unwrap() {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => name,
                other => panic!("{}: numeric targetPort {other:?}", file.display()),
            };
            assert!(
                ports[target].contains(&name),
                "{}: {target} has no port {name}",
                file.display()
            );
        }
    }
}
