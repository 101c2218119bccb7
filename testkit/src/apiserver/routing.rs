//! Services, Ingresses and Gateway API `HTTPRoute`s: what the apiserver
//! defaults and rejects for them (Service and Ingress validation of
//! `k8s.io/kubernetes`, and the `HTTPRoute` CRD's schema and CEL rules of
//! Gateway API v1), so that objects the fake accepts a real cluster accepts.

use serde_json::{Value, json};

use super::validate::{Problems, is_dns_label, is_dns_subdomain, validate_labels};

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

fn items<'a>(v: &'a Value, path: &[&str]) -> impl Iterator<Item = (usize, &'a Value)> {
    at(v, path)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn is_port(v: Option<&Value>) -> bool {
    v.and_then(Value::as_i64)
        .is_some_and(|p| (1..=65535).contains(&p))
}

/// A DNS-1035 label: a DNS-1123 label that starts with a letter.
fn is_dns_1035_label(name: &str) -> bool {
    is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// An IANA service name (a named port): ≤ 15 lowercase alphanumerics and
/// `-`, at least one letter, no `--`, not starting or ending with `-`.
fn is_port_name(name: &str) -> bool {
    is_dns_label(name)
        && name.len() <= 15
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.contains("--")
}

/// A host as Ingress rules and TLS take it: a DNS subdomain, optionally
/// with a `*.` wildcard label in front, and not an IP address.
fn host_problem(host: &str) -> Option<String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Some(format!(
            "Invalid value: {host:?}: must be a DNS name, not an IP address"
        ));
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    (!is_dns_subdomain(name) || name.is_empty()).then(|| {
        format!(
            "Invalid value: {host:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    })
}

/// Problems of a Service.
pub fn service(object: &Value, problems: &mut Problems) {
    let name = str_at(object, &["metadata", "name"]).unwrap_or("");
    if !name.is_empty() && !is_dns_1035_label(name) {
        problems.push(format!(
            "metadata.name: Invalid value: {name:?}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"
        ));
    }
    let Some(spec) = object.get("spec") else {
        problems.push("spec.ports: Required value".into());
        return;
    };
    let kind = str_at(spec, &["type"]).unwrap_or("ClusterIP");
    if !matches!(
        kind,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        problems.push(format!("spec.type: Unsupported value: {kind:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""));
    }
    let headless = str_at(spec, &["clusterIP"]) == Some("None");
    let ports: Vec<(usize, &Value)> = items(spec, &["ports"]).collect();
    if ports.is_empty() && !headless && kind != "ExternalName" {
        problems.push("spec.ports: Required value".into());
    }
    let mut names = std::collections::BTreeSet::new();
    let mut numbers = std::collections::BTreeSet::new();
    for (i, port) in &ports {
        let field = format!("spec.ports[{i}]");
        match str_at(port, &["name"]) {
            None | Some("") if ports.len() > 1 => {
                problems.push(format!("{field}.name: Required value"));
            }
            None | Some("") => {}
            Some(name) if !is_dns_label(name) => problems.push(format!(
                "{field}.name: Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"
            )),
            Some(name) => {
                if !names.insert(name) {
                    problems.push(format!("{field}.name: Duplicate value: {name:?}"));
                }
            }
        }
        if !is_port(port.get("port")) {
            problems.push(format!(
                "{field}.port: Invalid value: {}: must be between 1 and 65535, inclusive",
                port.get("port").unwrap_or(&Value::Null)
            ));
        }
        let protocol = str_at(port, &["protocol"]).unwrap_or("TCP");
        if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
            problems.push(format!("{field}.protocol: Unsupported value: {protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""));
        }
        if !numbers.insert((port.get("port").and_then(Value::as_i64), protocol)) {
            problems.push(format!(
                "{field}: Duplicate value: {{port: {}, protocol: {protocol:?}}}",
                port.get("port").unwrap_or(&Value::Null)
            ));
        }
        match port.get("targetPort") {
            None => {}
            Some(Value::String(name)) if is_port_name(name) => {}
            Some(target @ Value::Number(_)) if is_port(Some(target)) => {}
            Some(target) => problems.push(format!(
                "{field}.targetPort: Invalid value: {target}: must be between 1 and 65535, inclusive, or an IANA service name"
            )),
        }
    }
    validate_labels(spec.get("selector"), "spec.selector", problems);
}

/// Server defaults of a Service, on every write: type, session affinity,
/// port protocols and target ports, and a cluster IP (`allocate` is called
/// for a new one only when the Service has none).
pub fn default_service(object: &mut Value, allocate: impl FnOnce() -> String) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("type").or_insert_with(|| json!("ClusterIP"));
    spec.entry("sessionAffinity")
        .or_insert_with(|| json!("None"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("protocol").or_insert_with(|| json!("TCP"));
            if !port.contains_key("targetPort")
                && let Some(number) = port.get("port").cloned()
            {
                port.insert("targetPort".into(), number);
            }
        }
    }
    if spec.get("type").and_then(Value::as_str) != Some("ExternalName")
        && spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        let ip = allocate();
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
    spec.entry("ipFamilyPolicy")
        .or_insert_with(|| json!("SingleStack"));
    spec.entry("internalTrafficPolicy")
        .or_insert_with(|| json!("Cluster"));
}

/// An update keeps the allocated cluster IP when the new object names none
/// (as the apiserver does), and may not change it.
pub fn update_service(old: &Value, new: &mut Value, problems: &mut Problems) {
    let old_ip = str_at(old, &["spec", "clusterIP"]).unwrap_or("").to_owned();
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let new_ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
    if new_ip.is_empty() && !old_ip.is_empty() {
        spec.insert("clusterIP".into(), json!(old_ip));
        if let Some(ips) = at(old, &["spec", "clusterIPs"]) {
            spec.insert("clusterIPs".into(), ips.clone());
        }
    } else if new_ip != old_ip {
        problems.push(format!(
            "spec.clusterIPs[0]: Invalid value: {new_ip:?}: may not change once set"
        ));
    }
}

/// Problems of an Ingress.
pub fn ingress(object: &Value, problems: &mut Problems) {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let rules: Vec<(usize, &Value)> = items(spec, &["rules"]).collect();
    let default_backend = spec.get("defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        problems.push(
            "spec: Invalid value: \"\": either `defaultBackend` or `rules` must be specified"
                .into(),
        );
    }
    if let Some(backend) = default_backend {
        ingress_backend(backend, "spec.defaultBackend", problems);
    }
    if let Some(class) = str_at(spec, &["ingressClassName"])
        && !is_dns_subdomain(class)
    {
        problems.push(format!(
            "spec.ingressClassName: Invalid value: {class:?}: a lowercase RFC 1123 subdomain is required"
        ));
    }
    for (i, rule) in rules {
        let field = format!("spec.rules[{i}]");
        if let Some(host) = str_at(rule, &["host"])
            && let Some(why) = host_problem(host)
        {
            problems.push(format!("{field}.host: {why}"));
        }
        let Some(http) = rule.get("http") else {
            continue;
        };
        let paths: Vec<(usize, &Value)> = items(http, &["paths"]).collect();
        if paths.is_empty() {
            problems.push(format!("{field}.http.paths: Required value"));
        }
        for (j, path) in paths {
            let field = format!("{field}.http.paths[{j}]");
            let path_type = str_at(path, &["pathType"]);
            match path_type {
                None => problems.push(format!(
                    "{field}.pathType: Required value: pathType must be specified"
                )),
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(other) => problems.push(format!("{field}.pathType: Unsupported value: {other:?}: supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"")),
            }
            let value = str_at(path, &["path"]).unwrap_or("");
            if matches!(path_type, Some("Exact" | "Prefix")) && !value.starts_with('/') {
                problems.push(format!(
                    "{field}.path: Invalid value: {value:?}: must be an absolute path"
                ));
            }
            match path.get("backend") {
                Some(backend) => ingress_backend(backend, &format!("{field}.backend"), problems),
                None => problems.push(format!("{field}.backend: Required value")),
            }
        }
    }
    for (i, tls) in items(spec, &["tls"]) {
        for (j, host) in items(tls, &["hosts"]) {
            if let Some(why) = host_problem(host.as_str().unwrap_or("")) {
                problems.push(format!("spec.tls[{i}].hosts[{j}]: {why}"));
            }
        }
    }
}

fn ingress_backend(backend: &Value, field: &str, problems: &mut Problems) {
    match (backend.get("service"), backend.get("resource")) {
        (Some(_), Some(_)) => problems.push(format!(
            "{field}: Invalid value: cannot set both resource and service backends"
        )),
        (None, None) => problems.push(format!(
            "{field}: Invalid value: resource or service backend is required"
        )),
        (None, Some(_)) => {}
        (Some(service), None) => {
            let name = str_at(service, &["name"]).unwrap_or("");
            if !is_dns_1035_label(name) {
                problems.push(format!(
                    "{field}.service.name: Invalid value: {name:?}: a DNS-1035 label is required"
                ));
            }
            let port = service.get("port").unwrap_or(&Value::Null);
            match (port.get("name"), port.get("number")) {
                (Some(_), Some(_)) => problems.push(format!(
                    "{field}.service.port: Invalid value: cannot set both port name & port number"
                )),
                (None, None) => problems.push(format!(
                    "{field}.service.port: Invalid value: port name or number is required"
                )),
                (None, Some(number)) if !is_port(Some(number)) => problems.push(format!(
                    "{field}.service.port.number: Invalid value: {number}: must be between 1 and 65535, inclusive"
                )),
                _ => {}
            }
        }
    }
}

/// A Gateway API hostname: a DNS subdomain with an optional `*.` prefix,
/// no IP address (the CRD's pattern).
fn is_route_hostname(host: &str) -> bool {
    host_problem(host).is_none() && host.len() <= 253
}

/// The items of list `key` of `v` (at `field`), which the CRD's `maxItems`
/// limits to `max`.
fn at_most<'a>(
    v: &'a Value,
    key: &str,
    field: &str,
    max: usize,
    problems: &mut Problems,
) -> Vec<(usize, &'a Value)> {
    let list: Vec<(usize, &Value)> = items(v, &[key]).collect();
    if list.len() > max {
        problems.push(format!(
            "{field}.{key}: Too many: {}: must have at most {max} items",
            list.len()
        ));
    }
    list
}

/// Problems of an `HTTPRoute` (the v1 CRD's schema and CEL rules that
/// Cube's objects can meet).
pub fn http_route(object: &Value, problems: &mut Problems) {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    if !spec.is_object() {
        problems.push("spec: Required value".into());
        return;
    }
    let parents = at_most(spec, "parentRefs", "spec", 32, problems);
    for (i, parent) in parents {
        let name = str_at(parent, &["name"]).unwrap_or("");
        if name.is_empty() || name.len() > 253 {
            problems.push(format!("spec.parentRefs[{i}].name: Required value"));
        }
        if let Some(ns) = str_at(parent, &["namespace"])
            && !is_dns_label(ns)
        {
            problems.push(format!(
                "spec.parentRefs[{i}].namespace: Invalid value: {ns:?}"
            ));
        }
    }
    let hostnames = at_most(spec, "hostnames", "spec", 16, problems);
    for (i, host) in hostnames {
        let host = host.as_str().unwrap_or("");
        if !is_route_hostname(host) {
            problems.push(format!(
                "spec.hostnames[{i}]: Invalid value: {host:?}: spec.hostnames[{i}] in body should match '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'"
            ));
        }
    }
    let rules = at_most(spec, "rules", "spec", 16, problems);
    for (i, rule) in rules {
        let field = format!("spec.rules[{i}]");
        let matches = at_most(rule, "matches", &field, 64, problems);
        for (j, m) in matches {
            if let Some(path) = m.get("path") {
                let kind = str_at(path, &["type"]).unwrap_or("PathPrefix");
                let value = str_at(path, &["value"]).unwrap_or("/");
                if !matches!(kind, "Exact" | "PathPrefix" | "RegularExpression") {
                    problems.push(format!("{field}.matches[{j}].path.type: Unsupported value: {kind:?}: supported values: \"Exact\", \"PathPrefix\", \"RegularExpression\""));
                } else if kind != "RegularExpression" && !value.starts_with('/') {
                    problems.push(format!("{field}.matches[{j}].path: Invalid value: \"object\": value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"));
                }
            }
            for (k, header) in items(m, &["headers"]) {
                if str_at(header, &["name"]).unwrap_or("").is_empty() {
                    problems.push(format!(
                        "{field}.matches[{j}].headers[{k}].name: Required value"
                    ));
                }
                if str_at(header, &["value"]).is_none() {
                    problems.push(format!(
                        "{field}.matches[{j}].headers[{k}].value: Required value"
                    ));
                }
            }
        }
        for (j, backend) in items(rule, &["backendRefs"]) {
            let field = format!("{field}.backendRefs[{j}]");
            if str_at(backend, &["name"]).unwrap_or("").is_empty() {
                problems.push(format!("{field}.name: Required value"));
            }
            let group = str_at(backend, &["group"]).unwrap_or("");
            let kind = str_at(backend, &["kind"]).unwrap_or("Service");
            match backend.get("port") {
                None if group.is_empty() && kind == "Service" => problems.push(format!(
                    "{field}: Invalid value: \"object\": Must have port for Service reference"
                )),
                Some(port) if !is_port(Some(port)) => problems.push(format!(
                    "{field}.port: Invalid value: {port}: must be between 1 and 65535, inclusive"
                )),
                _ => {}
            }
        }
    }
}
