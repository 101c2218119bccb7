//! What the real BBS rejects as `InvalidRequest`, rule for rule and in its
//! order, from cloudfoundry/bbs `models/*.go` `Validate()`: a request that a
//! real BBS would refuse fails here with the same message (`Invalid field: …`
//! entries joined by `, `), before anything is stored — as the BBS's
//! `parseRequest` does for every route.
//!
//! Where the BBS would crash instead of answering (a nested action of no
//! kind), the fake answers `Invalid field: inner-action`. Root filesystems are
//! checked as Go's `url.Parse` sees a scheme (no control characters, a scheme
//! before the first `:`), not for every URL error Go reports.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bbs_models as proto;

/// BBS's limit on annotations (`maximumAnnotationLength`).
const MAX_ANNOTATION: usize = 10 * 1024;
/// BBS's limit on all routes of an LRP together (`maximumRouteLength`).
const MAX_ROUTES: usize = 128 * 1024;
/// BBS's limit on the content of all volume-mounted files of an LRP.
const MAX_VOLUME_MOUNTED_FILES: usize = 1024 * 1024;

/// A request the BBS validates before serving it.
pub(crate) trait Validate {
    /// `Err` with the BBS's message when the BBS refuses the request.
    fn validate(&self) -> Result<(), String>;
}

/// Problems found so far, reported like BBS's `ValidationError`.
#[derive(Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    fn error(&mut self, message: impl Into<String>) {
        self.0.push(message.into());
    }

    fn field(&mut self, name: &str) {
        self.error(format!("Invalid field: {name}"));
    }

    fn check(&mut self, ok: bool, name: &str) {
        if !ok {
            self.field(name);
        }
    }

    /// `Invalid field: <name>` followed by `inner`'s problems, if any.
    fn nested(&mut self, name: &str, inner: Problems) {
        if !inner.0.is_empty() {
            self.field(name);
            self.0.extend(inner.0);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was found, else the BBS's message.
    pub(crate) fn finish(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0.join(", "))
        }
    }
}

fn found(check: impl FnOnce(&mut Problems)) -> Problems {
    let mut p = Problems::default();
    check(&mut p);
    p
}

/// BBS's `processGuidPattern` / `taskGuidPattern`: `^[a-zA-Z0-9_-]+$`.
pub(crate) fn is_guid(guid: &str) -> bool {
    !guid.is_empty()
        && guid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A root filesystem is a URL with a scheme (`docker:///…`, `preloaded:…`).
fn is_root_fs(root_fs: &str) -> bool {
    if root_fs.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    match root_fs.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && scheme.as_bytes()[0].is_ascii_alphabetic()
        }
        None => false,
    }
}

fn routes_length(routes: Option<&proto::ProtoRoutes>) -> usize {
    routes.map_or(0, |r| r.routes.values().map(Vec::len).sum())
}

// ---- actions ---------------------------------------------------------------

/// `Action.Validate`: the first kind set, validated; none is invalid.
fn action(p: &mut Problems, action: &proto::Action) {
    if let Some(download) = &action.download_action {
        p.check(!download.from.is_empty(), "from");
        p.check(!download.to.is_empty(), "to");
        p.check(!download.user.is_empty(), "user");
        checksum(p, &download.checksum_algorithm, &download.checksum_value);
    } else if let Some(upload) = &action.upload_action {
        p.check(!upload.to.is_empty(), "to");
        p.check(!upload.from.is_empty(), "from");
        p.check(!upload.user.is_empty(), "user");
    } else if let Some(run) = &action.run_action {
        p.check(!run.path.is_empty(), "path");
        p.check(!run.user.is_empty(), "user");
    } else if let Some(timeout) = &action.timeout_action {
        wrapped(p, timeout.action.as_deref());
        p.check(timeout.timeout_ms > 0, "timeout_ms");
    } else if let Some(progress) = &action.emit_progress_action {
        wrapped(p, progress.action.as_deref());
    } else if let Some(attempt) = &action.try_action {
        wrapped(p, attempt.action.as_deref());
    } else if let Some(parallel) = &action.parallel_action {
        list(p, &parallel.actions);
    } else if let Some(serial) = &action.serial_action {
        list(p, &serial.actions);
    } else if let Some(codependent) = &action.codependent_action {
        list(p, &codependent.actions);
    } else {
        p.field("inner-action");
    }
}

fn wrapped(p: &mut Problems, inner: Option<&proto::Action>) {
    match inner {
        Some(inner) => action(p, inner),
        None => p.field("action"),
    }
}

fn list(p: &mut Problems, actions: &[proto::Action]) {
    if actions.is_empty() {
        p.field("actions");
    }
    for inner in actions {
        action(p, inner);
    }
}

/// Downloads and cached dependencies: both checksum parts or neither, and
/// an algorithm the executor knows.
fn checksum(p: &mut Problems, algorithm: &str, value: &str) {
    p.check(
        value.is_empty() || !algorithm.is_empty(),
        "checksum algorithm",
    );
    p.check(!value.is_empty() || algorithm.is_empty(), "checksum value");
    if !value.is_empty() && !algorithm.is_empty() {
        let known = ["md5", "sha1", "sha256"].contains(&algorithm.to_lowercase().as_str());
        p.check(known, "invalid algorithm");
    }
}

/// An action that must be present (`action` of an LRP, task or sidecar):
/// absent is `invalid action type`, invalid is `Invalid field: action` and
/// why.
fn required_action(p: &mut Problems, given: Option<&proto::Action>) {
    match given {
        None => p.error("invalid action type"),
        Some(given) => p.nested("action", found(|q| action(q, given))),
    }
}

fn optional_action(p: &mut Problems, given: Option<&proto::Action>, name: &str) {
    if let Some(given) = given {
        p.nested(name, found(|q| action(q, given)));
    }
}

// ---- the parts of a DesiredLRP or task ------------------------------------

fn checks(p: &mut Problems, definition: &proto::CheckDefinition) {
    for check in definition.checks.iter().chain(&definition.readiness_checks) {
        // As the BBS: both kinds is no check; neither is a check on port 0.
        let port = match (&check.tcp_check, &check.http_check) {
            (Some(_), Some(_)) => {
                p.field("check");
                continue;
            }
            (None, Some(http)) => http.port,
            (Some(tcp), None) => tcp.port,
            (None, None) => 0,
        };
        p.check((1..=65535).contains(&port), "port");
    }
}

fn metric_tags(
    p: &mut Problems,
    tags: &BTreeMap<String, proto::MetricTagValue>,
    metrics_guid: &str,
) {
    for value in tags.values() {
        let dynamic = value.dynamic == 1 || value.dynamic == 2;
        if value.r#static.is_empty() != dynamic {
            p.field("static");
            p.field("dynamic");
        }
    }
    if !tags.is_empty() && !metrics_guid.is_empty() {
        let matches = tags
            .get("source_id")
            .is_some_and(|source| source.r#static == metrics_guid);
        p.check(matches, "source_id should match metrics_guid");
    }
}

fn cached_dependencies(p: &mut Problems, dependencies: &[proto::CachedDependency]) {
    for dependency in dependencies {
        p.nested(
            "cached_dependency",
            found(|q| {
                q.check(!dependency.from.is_empty(), "from");
                q.check(!dependency.to.is_empty(), "to");
                checksum(
                    q,
                    &dependency.checksum_algorithm,
                    &dependency.checksum_value,
                );
            }),
        );
    }
}

fn image_layers(p: &mut Problems, layers: &[proto::ImageLayer], legacy_download_user: &str) {
    use proto::image_layer::Type;
    let exclusive = Type::Exclusive as i32;
    for layer in layers {
        p.nested(
            "image_layer",
            found(|q| {
                let algorithm_set = layer.digest_algorithm != 0;
                let algorithm_known = matches!(layer.digest_algorithm, 1 | 2);
                let is_exclusive = layer.layer_type == exclusive;
                q.check(!layer.url.is_empty(), "url");
                q.check(!layer.destination_path.is_empty(), "destination_path");
                q.check(matches!(layer.layer_type, 1 | 2), "layer_type");
                q.check(matches!(layer.media_type, 1..=3), "media_type");
                // A digest, or an exclusive layer, needs both its parts.
                let needs_algorithm = !layer.digest_value.is_empty() || is_exclusive;
                q.check(!needs_algorithm || algorithm_set, "digest_algorithm");
                let needs_value = algorithm_set || is_exclusive;
                q.check(
                    !needs_value || !layer.digest_value.is_empty(),
                    "digest_value",
                );
                q.check(
                    layer.digest_value.is_empty() || algorithm_known,
                    "digest_algorithm",
                );
            }),
        );
    }
    if layers.iter().any(|l| l.layer_type == exclusive) {
        p.check(!legacy_download_user.is_empty(), "legacy_download_user");
    }
}

fn egress_rule(rule: &proto::SecurityGroupRule) -> Problems {
    found(|q| {
        let ports = !rule.ports.is_empty();
        match rule.protocol.as_str() {
            "tcp" | "udp" => {
                rule_ports(q, rule);
                q.check(rule.icmp_info.is_none(), "icmp_info");
            }
            "icmp" | "icmpv6" | "all" => {
                q.check(rule.port_range.is_none(), "port_range");
                q.check(!ports, "ports");
                match rule.protocol.as_str() {
                    "icmp" => q.check(rule.icmp_info.is_some(), "icmp_info"),
                    "icmpv6" => q.check(rule.icmp_info.is_some(), "icmpv6_info"),
                    _ => q.check(rule.icmp_info.is_none(), "icmp_info"),
                }
            }
            _ => q.field("protocol"),
        }
        if let Err(why) = destinations(&rule.destinations) {
            q.field(&format!("destinations [ {why} ]"));
        }
    })
}

fn rule_ports(q: &mut Problems, rule: &proto::SecurityGroupRule) {
    match (&rule.port_range, rule.ports.is_empty()) {
        (None, true) => q.error("Missing required field: ports or port_range"),
        (Some(_), false) => q.error("Invalid: ports and port_range provided"),
        (Some(range), true) => {
            q.check(range.start >= 1, "port_range");
            q.check(range.end >= 1, "port_range");
            q.check(range.start <= range.end, "port_range");
        }
        (None, false) => {
            for port in &rule.ports {
                q.check(*port >= 1, "ports");
            }
        }
    }
}

/// Go's `net.ParseIP` as 16 bytes (IPv4 mapped into IPv6).
fn ip16(text: &str) -> Option<[u8; 16]> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_ipv6_mapped().octets()),
        IpAddr::V6(v6) => Some(v6.octets()),
    }
}

/// Go's `net.ParseCIDR`, with its error text.
fn cidr(text: &str, p: &mut Problems) {
    let valid = text.split_once('/').is_some_and(|(ip, bits)| {
        let max = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => 32,
            Ok(IpAddr::V6(_)) => 128,
            Err(_) => return false,
        };
        !bits.is_empty()
            && bits.bytes().all(|b| b.is_ascii_digit())
            && bits.parse::<u32>().is_ok_and(|b| b <= max)
    });
    if !valid {
        p.error(format!("invalid CIDR address: {text}"));
    }
}

/// Each destination (comma-separated lists allowed) is an IP, a CIDR or a
/// range `a-b` with `a` ≤ `b`; the BBS's own error text otherwise.
fn destinations(destinations: &[String]) -> Result<(), String> {
    if destinations.is_empty() {
        return Err("Must have at least 1 destination".into());
    }
    let mut p = Problems::default();
    for destination in destinations.iter().flat_map(|d| d.split(',')) {
        match destination.find(['-', '/']) {
            None if ip16(destination).is_none() => p.error("Invalid IP"),
            None => {}
            Some(n) if destination.as_bytes()[n] == b'/' => cidr(destination, &mut p),
            Some(n) => match (ip16(&destination[..n]), ip16(&destination[n + 1..])) {
                (Some(first), Some(last)) => {
                    // Byte by byte as the BBS compares them.
                    for (a, b) in first.iter().zip(last) {
                        if *a < b {
                            break;
                        }
                        if *a > b {
                            p.error("Invalid IP");
                        }
                    }
                }
                _ => p.error("Invalid IP"),
            },
        }
    }
    p.finish()
}

fn volume_mounts(p: &mut Problems, mounts: &[proto::VolumeMount]) {
    for mount in mounts {
        if mount.driver.is_empty() {
            p.error("invalid volume_mount driver");
        }
        if mount.mode != "r" && mount.mode != "rw" {
            p.error("invalid volume_mount mode");
        }
        if mount
            .shared
            .as_ref()
            .is_some_and(|s| s.volume_id.is_empty())
        {
            p.error("invalid volume_mount volume id");
        }
        if mount
            .dedicated
            .as_ref()
            .is_some_and(|d| d.mounter_id.is_empty())
        {
            p.error("invalid volume_mount mounter id");
        }
    }
}

fn sidecars(p: &mut Problems, sidecars: &[proto::Sidecar]) {
    let inner = found(|q| {
        for sidecar in sidecars {
            required_action(q, sidecar.action.as_ref());
            q.check(sidecar.memory_mb >= 0, "memory_mb");
            q.check(sidecar.disk_mb >= 0, "disk_mb");
        }
    });
    p.nested("sidecars", inner);
}

fn volume_mounted_files_fit(files: &[proto::File]) -> bool {
    files.iter().map(|f| f.content.len()).sum::<usize>() <= MAX_VOLUME_MOUNTED_FILES
}

fn log_rate_limit_ok(limit: Option<&proto::LogRateLimit>) -> bool {
    limit.is_none_or(|l| l.bytes_per_second >= -1)
}

fn image_credentials(p: &mut Problems, username: &str, password: &str) {
    // Both or neither.
    p.check(
        !username.is_empty() || password.is_empty(),
        "image_username",
    );
    p.check(
        username.is_empty() || !password.is_empty(),
        "image_password",
    );
}

// ---- DesiredLRPs -----------------------------------------------------------

/// `DesiredLRP.Validate`: its own checks, then its run info's.
// `metrics_guid` and `legacy_download_user` are deprecated, and validated.
#[allow(deprecated)]
fn desired_lrp(p: &mut Problems, d: &proto::DesiredLrp) {
    let files_fit = volume_mounted_files_fit(&d.volume_mounted_files);
    p.check(files_fit, "volumeMountedFiles");
    p.check(!d.domain.is_empty(), "domain");
    p.check(!d.root_fs.is_empty(), "rootfs");
    p.check(is_root_fs(&d.root_fs), "rootfs");
    p.check(d.instances >= 0, "instances");
    p.check(d.memory_mb >= 0, "memory_mb");
    p.check(d.disk_mb >= 0, "disk_mb");
    let rate_ok = log_rate_limit_ok(d.log_rate_limit.as_ref());
    p.check(rate_ok, "log_rate_limit_bytes_per_second");
    p.check(d.annotation.len() <= MAX_ANNOTATION, "annotation");
    p.check(d.max_pids >= 0, "max_pids");
    p.check(routes_length(d.routes.as_ref()) <= MAX_ROUTES, "routes");
    // An empty map decodes as Go's nil map, which the BBS refuses.
    if d.metric_tags.is_empty() {
        p.field("metric_tags");
    } else {
        let inner = found(|q| metric_tags(q, &d.metric_tags, &d.metrics_guid));
        p.nested("metric_tags", inner);
    }
    run_info(p, d, files_fit);
}

/// `DesiredLRPRunInfo.Validate` on the run half of `d`.
#[allow(deprecated)]
fn run_info(p: &mut Problems, d: &proto::DesiredLrp, files_fit: bool) {
    p.check(!d.domain.is_empty(), "domain");
    p.check(is_guid(&d.process_guid), "process_guid");
    p.check(files_fit, "volumeMountedFiles");
    optional_action(p, d.setup.as_ref(), "setup");
    required_action(p, d.action.as_ref());
    optional_action(p, d.monitor.as_ref(), "monitor");
    for env in &d.environment_variables {
        if env.name.is_empty() {
            p.error("invalid field: name cannot be blank");
        }
    }
    for rule in &d.egress_rules {
        p.nested("egress_rules", egress_rule(rule));
    }
    cached_dependencies(p, &d.cached_dependencies);
    image_layers(p, &d.image_layers, &d.legacy_download_user);
    sidecars(p, &d.sidecars);
    volume_mounts(p, &d.volume_mounts);
    image_credentials(p, &d.image_username, &d.image_password);
    if let Some(definition) = &d.check_definition {
        p.nested("check_definition", found(|q| checks(q, definition)));
    }
    p.check(
        log_rate_limit_ok(d.log_rate_limit.as_ref()),
        "log_rate_limit",
    );
}

impl Validate for proto::DesireLrpRequest {
    fn validate(&self) -> Result<(), String> {
        let mut p = Problems::default();
        match &self.desired_lrp {
            None => p.field("desired_lrp"),
            Some(lrp) => desired_lrp(&mut p, lrp),
        }
        p.finish()
    }
}

impl Validate for proto::UpdateDesiredLrpRequest {
    fn validate(&self) -> Result<(), String> {
        use proto::desired_lrp_update::{
            OptionalAnnotation, OptionalImagePassword, OptionalImageUsername, OptionalInstances,
        };
        let mut p = Problems::default();
        p.check(!self.process_guid.is_empty(), "process_guid");
        if let Some(u) = &self.update {
            if let Some(OptionalInstances::Instances(n)) = u.optional_instances {
                p.check(n >= 0, "instances");
            }
            if let Some(OptionalAnnotation::Annotation(a)) = &u.optional_annotation {
                p.check(a.len() <= MAX_ANNOTATION, "annotation");
            }
            p.check(routes_length(u.routes.as_ref()) <= MAX_ROUTES, "routes");
            p.nested("metric_tags", found(|q| metric_tags(q, &u.metric_tags, "")));
            let username = matches!(
                u.optional_image_username,
                Some(OptionalImageUsername::ImageUsername(_))
            );
            let password = matches!(
                u.optional_image_password,
                Some(OptionalImagePassword::ImagePassword(_))
            );
            p.check(!username || password, "image_password");
            p.check(username || !password, "image_username");
        }
        p.finish()
    }
}

fn process_guid_given(guid: &str) -> Result<(), String> {
    found(|p| p.check(!guid.is_empty(), "process_guid")).finish()
}

impl Validate for proto::RemoveDesiredLrpRequest {
    fn validate(&self) -> Result<(), String> {
        process_guid_given(&self.process_guid)
    }
}

impl Validate for proto::DesiredLrpByProcessGuidRequest {
    fn validate(&self) -> Result<(), String> {
        process_guid_given(&self.process_guid)
    }
}

impl Validate for proto::DesiredLrPsRequest {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

// ---- ActualLRPs ------------------------------------------------------------

impl Validate for proto::ActualLrPsRequest {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Validate for proto::ActualLrPsByProcessGuidsRequest {
    fn validate(&self) -> Result<(), String> {
        if self.process_guids.is_empty() {
            return Err("process_guids must not be empty".into());
        }
        Ok(())
    }
}

impl Validate for proto::RetireActualLrpRequest {
    fn validate(&self) -> Result<(), String> {
        let mut p = Problems::default();
        match &self.actual_lrp_key {
            None => p.field("actual_lrp_key"),
            Some(key) => {
                p.check(!key.process_guid.is_empty(), "process_guid");
                p.check(key.index >= 0, "index");
                p.check(!key.domain.is_empty(), "domain");
            }
        }
        p.finish()
    }
}

// ---- domains and tasks -----------------------------------------------------

impl Validate for proto::UpsertDomainRequest {
    fn validate(&self) -> Result<(), String> {
        found(|p| p.check(!self.domain.is_empty(), "domain")).finish()
    }
}

/// `TaskDefinition.Validate`.
#[allow(deprecated)]
fn task_definition(p: &mut Problems, def: &proto::TaskDefinition) {
    if def.root_fs.is_empty() {
        p.field("rootfs");
    } else {
        p.check(is_root_fs(&def.root_fs), "rootfs");
    }
    required_action(p, def.action.as_ref());
    p.check(def.memory_mb >= 0, "memory_mb");
    p.check(def.disk_mb >= 0, "disk_mb");
    p.check(
        log_rate_limit_ok(def.log_rate_limit.as_ref()),
        "log_rate_limit",
    );
    p.check(def.max_pids >= 0, "max_pids");
    p.check(def.annotation.len() <= MAX_ANNOTATION, "annotation");
    for rule in &def.egress_rules {
        // A task's rules are reported without the why, unlike an LRP's.
        p.check(egress_rule(rule).is_empty(), "egress_rules");
    }
    image_credentials(p, &def.image_username, &def.image_password);
    cached_dependencies(p, &def.cached_dependencies);
    image_layers(p, &def.image_layers, &def.legacy_download_user);
}

impl Validate for proto::DesireTaskRequest {
    fn validate(&self) -> Result<(), String> {
        let mut p = Problems::default();
        p.check(is_guid(&self.task_guid), "task_guid");
        p.check(!self.domain.is_empty(), "domain");
        match &self.task_definition {
            None => p.field("task_definition"),
            Some(def) => task_definition(&mut p, def),
        }
        p.finish()
    }
}

impl Validate for proto::TasksRequest {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Validate for proto::TaskByGuidRequest {
    fn validate(&self) -> Result<(), String> {
        found(|p| p.check(!self.task_guid.is_empty(), "task_guid")).finish()
    }
}

impl Validate for proto::TaskGuidRequest {
    fn validate(&self) -> Result<(), String> {
        found(|p| p.check(!self.task_guid.is_empty(), "task_guid")).finish()
    }
}

#[cfg(test)]
mod tests;
