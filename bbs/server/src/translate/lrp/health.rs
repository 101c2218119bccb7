//! Health: `check_definition` (checks the cell runs itself) and `monitor`
//! (Diego's `healthcheck` program in a timeout of a parallel action) → one
//! OPI [`HealthCheck`].
//!
//! CC sends both, describing the same checks (bbs-spec §2.2); when both are
//! present they must agree and the check definition's timeout is used. None
//! means CC's `process` (or `none`) type: a living process is healthy.
//!
//! OPI checks one port, the LRP's first, without intervals or readiness
//! checks apart from liveness: other checks are refused.

use bbs_models::{Action, Check, CheckDefinition, DesiredLrp, RunAction};
use opi::model::{HealthCheck, HealthCheckType};

use super::action::{HEALTHCHECK, exactly_one_kind};
use crate::translate::Refusal;

/// One check, as the request states it.
#[derive(Debug, PartialEq)]
struct Probe {
    field: String,
    kind: HealthCheckType,
    endpoint: String,
    port: u32,
    timeout_ms: u64,
}

/// The health check of `lrp`, whose first (OPI) port is `first_port`.
pub fn health_check(lrp: &DesiredLrp, first_port: Option<u16>) -> Result<HealthCheck, Refusal> {
    let declared = declared(lrp.check_definition.as_ref())?;
    let monitored = monitored(lrp.monitor.as_ref())?;
    let probe = match (declared, monitored) {
        (Some(declared), Some(monitored)) => {
            agree(&declared, &monitored)?;
            declared
        }
        (Some(probe), None) | (None, Some(probe)) => probe,
        (None, None) => {
            return Ok(HealthCheck {
                kind: HealthCheckType::Process,
                http_endpoint: String::new(),
                timeout_ms: 0,
            });
        }
    };
    if first_port.map(u32::from) != Some(probe.port) {
        return Err(Refusal::new(
            format!("{}.port", probe.field),
            format!(
                "Cube health-checks the LRP's first port ({}), not {}",
                first_port.map_or_else(|| "none".to_owned(), |p| p.to_string()),
                probe.port
            ),
        ));
    }
    Ok(HealthCheck {
        kind: probe.kind,
        http_endpoint: probe.endpoint,
        timeout_ms: probe.timeout_ms,
    })
}

/// Refuses a monitor that checks otherwise than the check definition.
fn agree(declared: &Probe, monitored: &Probe) -> Result<(), Refusal> {
    let same = declared.kind == monitored.kind
        && declared.endpoint == monitored.endpoint
        && declared.port == monitored.port;
    if same {
        return Ok(());
    }
    Err(Refusal::new(
        &monitored.field,
        format!(
            "checks {} {:?} on port {}, but check_definition checks {} {:?} on port {}",
            monitored.kind.as_str(),
            monitored.endpoint,
            monitored.port,
            declared.kind.as_str(),
            declared.endpoint,
            declared.port
        ),
    ))
}

/// The one liveness check of a check definition, if any.
fn declared(definition: Option<&CheckDefinition>) -> Result<Option<Probe>, Refusal> {
    let Some(definition) = definition else {
        return Ok(None);
    };
    if !definition.readiness_checks.is_empty() {
        return Err(Refusal::new(
            "check_definition.readiness_checks",
            "Cube's backends route an instance once it is healthy: no separate readiness checks",
        ));
    }
    match definition.checks.as_slice() {
        [] => Ok(None),
        [check] => check_probe("check_definition.checks[0]", check).map(Some),
        more => Err(several("check_definition.checks[1]", more.len())),
    }
}

fn several(field: &str, count: usize) -> Refusal {
    Refusal::new(
        field,
        format!("Cube health-checks one port (the first); this LRP checks {count}"),
    )
}

fn check_probe(field: &str, check: &Check) -> Result<Probe, Refusal> {
    let (probe, interval_ms) = match (&check.tcp_check, &check.http_check) {
        (Some(tcp), None) => {
            let probe = Probe {
                field: format!("{field}.tcp_check"),
                kind: HealthCheckType::Port,
                endpoint: String::new(),
                port: tcp.port,
                timeout_ms: tcp.connect_timeout_ms,
            };
            (probe, tcp.interval_ms)
        }
        (None, Some(http)) => {
            let probe = Probe {
                field: format!("{field}.http_check"),
                kind: HealthCheckType::Http,
                endpoint: http.path.clone(),
                port: http.port,
                timeout_ms: http.request_timeout_ms,
            };
            (probe, http.interval_ms)
        }
        _ => {
            return Err(Refusal::new(
                field,
                "must set exactly one of tcp_check and http_check",
            ));
        }
    };
    if probe.port == 0 || probe.port > u32::from(u16::MAX) {
        let problem = format!("{} is not a port", probe.port);
        return Err(Refusal::new(format!("{}.port", probe.field), problem));
    }
    if interval_ms != 0 {
        return Err(Refusal::new(
            format!("{}.interval_ms", probe.field),
            "Cube's backends check at their own interval",
        ));
    }
    Ok(probe)
}

/// The one check a monitor runs, if any: `Timeout(Parallel[run…])`, each
/// wrapper optional.
fn monitored(monitor: Option<&Action>) -> Result<Option<Probe>, Refusal> {
    let Some(mut action) = monitor else {
        return Ok(None);
    };
    let mut field = "monitor".to_owned();
    exactly_one_kind(&field, action)?;
    if let Some(timeout) = &action.timeout_action {
        field.push_str(".timeout_action.action");
        action = timeout
            .action
            .as_deref()
            .ok_or_else(|| Refusal::new(&field, "must be set"))?;
        exactly_one_kind(&field, action)?;
    }
    if let Some(parallel) = &action.parallel_action {
        return match parallel.actions.as_slice() {
            [] => Err(Refusal::new(
                format!("{field}.parallel_action"),
                "runs no check",
            )),
            [only] => {
                let field = format!("{field}.parallel_action.actions[0]");
                exactly_one_kind(&field, only)?;
                monitor_run(&field, only).map(Some)
            }
            more => Err(several(
                &format!("{field}.parallel_action.actions[1]"),
                more.len(),
            )),
        };
    }
    monitor_run(&field, action).map(Some)
}

fn monitor_run(field: &str, action: &Action) -> Result<Probe, Refusal> {
    let run = action
        .run_action
        .as_ref()
        .ok_or_else(|| Refusal::new(field, format!("Cube's monitors are runs of {HEALTHCHECK}")))?;
    let field = format!("{field}.run_action");
    if run.path != HEALTHCHECK {
        return Err(Refusal::new(
            format!("{field}.path"),
            format!("{:?}: Cube's monitors are runs of {HEALTHCHECK}", run.path),
        ));
    }
    healthcheck_args(field, run)
}

/// `-port=<p>`, `-uri=<path>` (an http check), `-timeout=<duration>`.
fn healthcheck_args(field: String, run: &RunAction) -> Result<Probe, Refusal> {
    let mut probe = Probe {
        kind: HealthCheckType::Port,
        endpoint: String::new(),
        port: 0,
        timeout_ms: 0,
        field,
    };
    for (i, arg) in run.args.iter().enumerate() {
        let bad = || {
            Refusal::new(
                format!("{}.args[{i}]", probe.field),
                format!("{arg:?}: Cube understands -port=, -uri= and -timeout="),
            )
        };
        let (name, value) = arg.split_once('=').ok_or_else(bad)?;
        match name {
            "-port" => probe.port = value.parse().map_err(|_| bad())?,
            "-uri" => {
                probe.kind = HealthCheckType::Http;
                probe.endpoint = value.to_owned();
            }
            "-timeout" => probe.timeout_ms = duration_ms(value).ok_or_else(bad)?,
            _ => return Err(bad()),
        }
    }
    if probe.port == 0 {
        return Err(Refusal::new(
            format!("{}.args", probe.field),
            "names no -port=",
        ));
    }
    Ok(probe)
}

/// A Go duration of one integer and unit (`1s`, `500ms`, `2m`) in ms.
fn duration_ms(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        _ => return None,
    };
    number.checked_mul(factor)
}
