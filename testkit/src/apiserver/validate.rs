//! What the apiserver rejects with 422 Invalid: names, labels, annotations
//! and the required fields of each kind, as real validation does. The fake
//! must never accept an object a real cluster would refuse.

use serde_json::Value;

use super::resources::Kind;
use super::routing;

/// One validation failure: the field path and the problem, in the
/// apiserver's words (`spec.selector: Required value`).
pub type Problems = Vec<String>;

pub(super) fn is_dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    !name.is_empty()
        && name.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

pub(super) fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

fn is_qualified_name_part(name: &str) -> bool {
    let b = name.as_bytes();
    !name.is_empty()
        && name.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Validates a label or annotation key (`[prefix/]name`).
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "Invalid value: {key:?}: prefix part must be a lowercase RFC 1123 subdomain"
        ));
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', must start and end with an alphanumeric character, and be at most 63 characters"
        ));
    }
    Ok(())
}

fn label_value(value: &str) -> bool {
    value.is_empty() || is_qualified_name_part(value)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

pub(super) fn validate_labels(labels: Option<&Value>, field: &str, problems: &mut Problems) {
    let Some(labels) = labels else { return };
    let Some(map) = labels.as_object() else {
        problems.push(format!("{field}: Invalid value: must be a map of strings"));
        return;
    };
    for (key, value) in map {
        if let Err(why) = label_key(key) {
            problems.push(format!("{field}: {why}"));
        }
        match value.as_str() {
            Some(v) if label_value(v) => {}
            _ => problems.push(format!(
                "{field}: Invalid value: {value}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters"
            )),
        }
    }
}

fn validate_annotations(annotations: Option<&Value>, field: &str, problems: &mut Problems) {
    let Some(annotations) = annotations else {
        return;
    };
    let Some(map) = annotations.as_object() else {
        problems.push(format!("{field}: Invalid value: must be a map of strings"));
        return;
    };
    let mut size = 0;
    for (key, value) in map {
        if let Err(why) = label_key(key) {
            problems.push(format!("{field}: {why}"));
        }
        match value.as_str() {
            Some(v) => size += key.len() + v.len(),
            None => problems.push(format!("{field}.{key}: Invalid value: must be a string")),
        }
    }
    if size > 256 * 1024 {
        problems.push(format!("{field}: Too long: must have at most 262144 bytes"));
    }
}

/// Validates `metadata` (name per kind, labels, annotations).
fn validate_metadata(kind: &Kind, object: &Value, problems: &mut Problems) {
    let name = str_at(object, &["metadata", "name"]).unwrap_or("");
    if name.is_empty() {
        problems.push("metadata.name: Required value: name or generateName is required".into());
    } else if kind.name_is_dns_label && !is_dns_label(name) {
        problems.push(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters"
        ));
    } else if !is_dns_subdomain(name) {
        problems.push(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ));
    }
    validate_labels(
        at(object, &["metadata", "labels"]),
        "metadata.labels",
        problems,
    );
    validate_annotations(
        at(object, &["metadata", "annotations"]),
        "metadata.annotations",
        problems,
    );
    validate_owner_references(at(object, &["metadata", "ownerReferences"]), problems);
}

/// Every owner reference names its owner completely; at most one is the
/// controller.
fn validate_owner_references(refs: Option<&Value>, problems: &mut Problems) {
    let refs = refs
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (field, what) in [
        ("apiVersion", "version"),
        ("kind", "kind"),
        ("name", "name"),
        ("uid", "uid"),
    ] {
        if refs
            .iter()
            .any(|r| str_at(r, &[field]).is_none_or(str::is_empty))
        {
            problems.push(format!(
                "metadata.ownerReferences.{field}: Invalid value: \"\": {what} must not be empty"
            ));
        }
    }
    let controllers = refs
        .iter()
        .filter(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .count();
    if controllers > 1 {
        problems.push(
            "metadata.ownerReferences: Invalid value: only one reference can have Controller set to true".into(),
        );
    }
}

fn is_quantity(q: &Value) -> bool {
    let s = match q {
        Value::String(s) => s.as_str(),
        Value::Number(_) => return true,
        _ => return false,
    };
    let number_end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    let (number, suffix) = s.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    !digits.is_empty()
        && digits != "."
        && digits.matches('.').count() <= 1
        && matches!(
            suffix,
            "" | "m"
                | "k"
                | "M"
                | "G"
                | "T"
                | "P"
                | "E"
                | "Ki"
                | "Mi"
                | "Gi"
                | "Ti"
                | "Pi"
                | "Ei"
                | "n"
                | "u"
        )
}

fn is_env_name(name: &str) -> bool {
    let b = name.as_bytes();
    !name.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn validate_probe(probe: Option<&Value>, field: &str, problems: &mut Problems) {
    let Some(probe) = probe else { return };
    let handlers = ["exec", "httpGet", "tcpSocket", "grpc"]
        .iter()
        .filter(|h| probe.get(**h).is_some())
        .count();
    if handlers != 1 {
        problems.push(format!(
            "{field}: Required value: must specify exactly one handler type"
        ));
    }
    for handler in ["httpGet", "tcpSocket"] {
        if let Some(port) = at(probe, &[handler, "port"]) {
            let ok = match port {
                Value::Number(n) => n.as_i64().is_some_and(|p| (1..=65535).contains(&p)),
                Value::String(s) => !s.is_empty() && s.len() <= 15,
                _ => false,
            };
            if !ok {
                problems.push(format!(
                    "{field}.{handler}.port: Invalid value: {port}: must be between 1 and 65535, inclusive"
                ));
            }
        } else if probe.get(handler).is_some() {
            problems.push(format!("{field}.{handler}.port: Required value"));
        }
    }
}

/// Validates a pod spec at `field` (`spec`, `spec.template.spec`).
fn validate_pod_spec(spec: Option<&Value>, field: &str, problems: &mut Problems) {
    let Some(spec) = spec else {
        problems.push(format!("{field}: Required value"));
        return;
    };
    let volumes: Vec<&str> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(|v| str_at(v, &["name"])).collect())
        .unwrap_or_default();
    for (i, name) in volumes.iter().enumerate() {
        if !is_dns_label(name) {
            problems.push(format!(
                "{field}.volumes[{i}].name: Invalid value: {name:?}"
            ));
        }
    }
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => problems.push(format!("{field}.containers: Required value")),
        Some(list) if list.is_empty() => {
            problems.push(format!("{field}.containers: Required value"))
        }
        Some(list) => {
            let mut names = std::collections::BTreeSet::new();
            for (i, c) in list.iter().enumerate() {
                let f = format!("{field}.containers[{i}]");
                let name = str_at(c, &["name"]).unwrap_or("");
                if !is_dns_label(name) {
                    problems.push(format!(
                        "{f}.name: Invalid value: {name:?}: a lowercase RFC 1123 label is required"
                    ));
                } else if !names.insert(name) {
                    problems.push(format!("{f}.name: Duplicate value: {name:?}"));
                }
                if str_at(c, &["image"]).unwrap_or("").trim().is_empty() {
                    problems.push(format!("{f}.image: Required value"));
                }
                for (j, port) in c
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let p = port.get("containerPort").and_then(Value::as_i64);
                    if !p.is_some_and(|p| (1..=65535).contains(&p)) {
                        problems.push(format!("{f}.ports[{j}].containerPort: Invalid value: must be between 1 and 65535, inclusive"));
                    }
                }
                for (j, env) in c
                    .get("env")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let name = str_at(env, &["name"]).unwrap_or("");
                    if !is_env_name(name) {
                        problems.push(format!("{f}.env[{j}].name: Invalid value: {name:?}: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit"));
                    }
                    if env.get("value").is_some() && env.get("valueFrom").is_some() {
                        problems.push(format!("{f}.env[{j}].valueFrom: Invalid value: may not be specified when `value` is not empty"));
                    }
                }
                for (j, from) in c
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    for source in ["secretRef", "configMapRef"] {
                        if let Some(r) = from.get(source)
                            && !is_dns_subdomain(str_at(r, &["name"]).unwrap_or(""))
                        {
                            problems
                                .push(format!("{f}.envFrom[{j}].{source}.name: Required value"));
                        }
                    }
                }
                for (kind, list) in [
                    ("requests", at(c, &["resources", "requests"])),
                    ("limits", at(c, &["resources", "limits"])),
                ] {
                    for (resource, quantity) in
                        list.and_then(Value::as_object).into_iter().flatten()
                    {
                        if !is_quantity(quantity) {
                            problems.push(format!("{f}.resources.{kind}[{resource}]: Invalid value: {quantity}: must match the regular expression of a quantity"));
                        }
                    }
                }
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    validate_probe(c.get(probe), &format!("{f}.{probe}"), problems);
                }
                for (j, mount) in c
                    .get("volumeMounts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let name = str_at(mount, &["name"]).unwrap_or("");
                    if !volumes.contains(&name) {
                        problems.push(format!("{f}.volumeMounts[{j}].name: Not found: {name:?}"));
                    }
                    if str_at(mount, &["mountPath"]).unwrap_or("").is_empty() {
                        problems.push(format!("{f}.volumeMounts[{j}].mountPath: Required value"));
                    }
                }
            }
        }
    }
    for (i, secret) in spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if str_at(secret, &["name"]).unwrap_or("").is_empty() {
            problems.push(format!(
                "{field}.imagePullSecrets[{i}].name: Required value"
            ));
        }
    }
    if let Some(uid) = at(spec, &["securityContext", "runAsUser"])
        && uid.as_i64().is_none_or(|u| u < 0)
    {
        problems.push(format!("{field}.securityContext.runAsUser: Invalid value: {uid}: must be between 0 and 2147483647, inclusive"));
    }
}

fn selector_matches(selector: &Value, labels: Option<&Value>) -> bool {
    let labels = labels.and_then(Value::as_object);
    let has = |k: &str, v: &Value| labels.and_then(|l| l.get(k)) == Some(v);
    selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| has(k, v)))
}

fn selector_is_empty(selector: &Value) -> bool {
    let empty = |k: &str| {
        selector.get(k).is_none_or(|v| {
            v.as_object().map_or_else(
                || v.as_array().is_none_or(Vec::is_empty),
                serde_json::Map::is_empty,
            )
        })
    };
    empty("matchLabels") && empty("matchExpressions")
}

fn validate_statefulset(object: &Value, problems: &mut Problems) {
    let Some(spec) = object.get("spec") else {
        problems.push("spec: Required value".into());
        return;
    };
    match spec.get("selector") {
        None => problems.push("spec.selector: Required value".into()),
        Some(s) if selector_is_empty(s) => problems
            .push("spec.selector: Invalid value: empty selector is invalid for statefulset".into()),
        Some(s) => {
            if !selector_matches(s, at(spec, &["template", "metadata", "labels"])) {
                problems.push("spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`".into());
            }
        }
    }
    if let Some(replicas) = spec.get("replicas")
        && replicas.as_i64().is_none_or(|r| r < 0)
    {
        problems.push(format!(
            "spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
        ));
    }
    if let Some(policy) = str_at(spec, &["podManagementPolicy"])
        && policy != "OrderedReady"
        && policy != "Parallel"
    {
        problems.push(format!("spec.podManagementPolicy: Unsupported value: {policy:?}: supported values: \"OrderedReady\", \"Parallel\""));
    }
    if let Some(policy) = str_at(spec, &["template", "spec", "restartPolicy"])
        && policy != "Always"
    {
        problems.push(format!("spec.template.spec.restartPolicy: Unsupported value: {policy:?}: supported values: \"Always\""));
    }
    validate_labels(
        at(spec, &["template", "metadata", "labels"]),
        "spec.template.metadata.labels",
        problems,
    );
    validate_annotations(
        at(spec, &["template", "metadata", "annotations"]),
        "spec.template.metadata.annotations",
        problems,
    );
    validate_pod_spec(
        at(spec, &["template", "spec"]),
        "spec.template.spec",
        problems,
    );
}

fn validate_job(object: &Value, problems: &mut Problems) {
    let Some(spec) = object.get("spec") else {
        problems.push("spec: Required value".into());
        return;
    };
    match str_at(spec, &["template", "spec", "restartPolicy"]) {
        Some("Never" | "OnFailure") => {}
        other => problems.push(format!(
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\" (got {other:?})"
        )),
    }
    for field in [
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "parallelism",
        "completions",
    ] {
        if let Some(v) = spec.get(field)
            && v.as_i64().is_none_or(|n| n < 0)
        {
            problems.push(format!(
                "spec.{field}: Invalid value: {v}: must be greater than or equal to 0"
            ));
        }
    }
    validate_labels(
        at(spec, &["template", "metadata", "labels"]),
        "spec.template.metadata.labels",
        problems,
    );
    validate_pod_spec(
        at(spec, &["template", "spec"]),
        "spec.template.spec",
        problems,
    );
}

fn validate_secret(object: &Value, problems: &mut Problems) {
    use base64::Engine as _;
    let data = object.get("data").and_then(Value::as_object);
    let mut size = 0;
    for (key, value) in data.into_iter().flatten() {
        let key_ok = !key.is_empty()
            && key.len() <= 253
            && key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !key_ok {
            problems.push(format!("data[{key}]: Invalid value: {key:?}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
        }
        match value
            .as_str()
            .map(|s| base64::engine::general_purpose::STANDARD.decode(s))
        {
            Some(Ok(bytes)) => size += bytes.len(),
            _ => problems.push(format!(
                "data[{key}]: Invalid value: not base64-encoded bytes"
            )),
        }
    }
    if size > 1024 * 1024 {
        problems.push("data: Too long: must have at most 1048576 bytes".into());
    }
    if str_at(object, &["type"]) == Some("kubernetes.io/dockerconfigjson") {
        let config = data
            .and_then(|d| d.get(".dockerconfigjson"))
            .and_then(Value::as_str)
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
        match config {
            None => problems.push("data[.dockerconfigjson]: Required value".into()),
            Some(bytes) if serde_json::from_slice::<Value>(&bytes).is_err() => {
                problems.push("data[.dockerconfigjson]: Invalid value: invalid JSON".into());
            }
            Some(_) => {}
        }
    }
}

fn validate_pdb(object: &Value, problems: &mut Problems) {
    let spec = object.get("spec");
    if spec.and_then(|s| s.get("minAvailable")).is_some()
        && spec.and_then(|s| s.get("maxUnavailable")).is_some()
    {
        problems
            .push("spec: Invalid value: minAvailable and maxUnavailable cannot be both set".into());
    }
}

/// Validates `object` as a new or updated `kind`.
pub fn object(kind: &Kind, object: &Value) -> Problems {
    let mut problems = Problems::new();
    validate_metadata(kind, object, &mut problems);
    match kind.plural {
        "pods" => validate_pod_spec(object.get("spec"), "spec", &mut problems),
        "statefulsets" => validate_statefulset(object, &mut problems),
        "jobs" => validate_job(object, &mut problems),
        "secrets" => validate_secret(object, &mut problems),
        "poddisruptionbudgets" => validate_pdb(object, &mut problems),
        "services" => routing::service(object, &mut problems),
        "ingresses" => routing::ingress(object, &mut problems),
        "httproutes" => routing::http_route(object, &mut problems),
        _ => {}
    }
    problems
}

/// Fields an update may not change, per kind.
pub fn update(kind: &Kind, old: &Value, new: &Value) -> Problems {
    let mut problems = Problems::new();
    match kind.plural {
        "statefulsets" => {
            const MUTABLE: [&str; 7] = [
                "replicas",
                "template",
                "updateStrategy",
                "minReadySeconds",
                "persistentVolumeClaimRetentionPolicy",
                "ordinals",
                "revisionHistoryLimit",
            ];
            let strip = |v: &Value| {
                let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(map) = spec.as_object_mut() {
                    for field in MUTABLE {
                        map.remove(field);
                    }
                }
                spec
            };
            if strip(old) != strip(new) {
                problems.push("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into());
            }
        }
        "jobs" => {
            if at(old, &["spec", "template"]) != at(new, &["spec", "template"]) {
                problems.push("spec.template: Invalid value: field is immutable".into());
            }
            if at(old, &["spec", "selector"]) != at(new, &["spec", "selector"]) {
                problems.push("spec.selector: Invalid value: field is immutable".into());
            }
        }
        "secrets" if old.get("type") != new.get("type") => {
            problems.push("type: Invalid value: field is immutable".into());
        }
        "pods" => {
            let strip = |v: &Value| {
                let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
                    for c in containers {
                        if let Some(c) = c.as_object_mut() {
                            c.remove("image");
                        }
                    }
                }
                if let Some(map) = spec.as_object_mut() {
                    map.remove("activeDeadlineSeconds");
                    map.remove("tolerations");
                }
                spec
            };
            if strip(old) != strip(new) {
                problems.push("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations`".into());
            }
        }
        _ => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources;
    use serde_json::json;

    fn kind(plural: &str) -> &'static Kind {
        resources::by_plural(plural).expect("known kind")
    }

    #[test]
    fn names_and_labels_are_checked() {
        let bad =
            json!({"metadata": {"name": "My_App", "labels": {"a": "x".repeat(64)}}, "spec": {}});
        let problems = object(kind("poddisruptionbudgets"), &bad);
        assert!(
            problems.iter().any(|p| p.starts_with("metadata.name")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("metadata.labels")),
            "{problems:?}"
        );
        let dotted = json!({"metadata": {"name": "a.b"}});
        assert!(object(kind("secrets"), &dotted).is_empty());
        assert!(
            !object(kind("namespaces"), &dotted).is_empty(),
            "namespaces are labels"
        );
    }

    #[test]
    fn statefulsets_need_a_matching_selector_and_containers() {
        let sts = json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": []}}}});
        let problems = object(kind("statefulsets"), &sts);
        assert!(
            problems.iter().any(|p| p.contains("does not match")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("containers: Required")),
            "{problems:?}"
        );
    }

    #[test]
    fn quantities_are_parsed() {
        for ok in ["64Mi", "250m", "1", "0.5", "1Gi", "100"] {
            assert!(is_quantity(&json!(ok)), "{ok}");
        }
        for bad in ["64MB", "", "lots", "1.2.3", "Mi"] {
            assert!(!is_quantity(&json!(bad)), "{bad}");
        }
    }

    #[test]
    fn statefulset_selectors_are_immutable() {
        let a = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "replicas": 1}});
        let b = json!({"spec": {"selector": {"matchLabels": {"a": "2"}}, "replicas": 1}});
        let c = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "replicas": 5}});
        assert!(!update(kind("statefulsets"), &a, &b).is_empty());
        assert!(update(kind("statefulsets"), &a, &c).is_empty());
    }
}
