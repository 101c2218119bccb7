//! Routes: BBS `ProtoRoutes` (router name → JSON text) ⇄ OPI [`Routes`].
//!
//! `cf-router` is CC's array of `{hostnames, port, route_service_url,
//! isolation_segment, protocol, options?}` (bbs-spec §2.3); each hostname
//! becomes one OPI route to its port. What the gorouter would do beyond
//! routing a hostname to a port cannot be carried and is refused: a route
//! service, `http2` to the app, route options (load balancing, route
//! policies). `isolation_segment` is accepted and not carried: the LRP's
//! placement tags place it, and reads write the first placement tag there,
//! as CC does. Every other router (`tcp-router`, `internal-router`,
//! `diego-ssh`, …) is kept verbatim, as JSON, in [`Routes::other`].
//!
//! Reads answer a router's stored bytes as CC sent them while the OPI routes
//! still say the same, else the OPI routes written in CC's format.

use std::collections::BTreeMap;

use bbs_models::ProtoRoutes;
use opi::model::{Route, Routes};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::translate::Refusal;

/// The gorouter's routes key.
pub const CF_ROUTER: &str = "cf-router";
/// The BBS's limit on the routes of one LRP (all values together).
const MAX_ROUTES_BYTES: usize = 128 * 1024;
/// The protocol every Cube route speaks to the app.
const HTTP1: &str = "http1";

/// One `cf-router` entry as CC writes it. Unknown keys are refused: Cube
/// cannot tell whether it would honour them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CfRoute {
    hostnames: Vec<String>,
    port: i64,
    #[serde(default)]
    route_service_url: Option<String>,
    // Accepted, not carried (see the module docs).
    #[serde(default)]
    #[allow(dead_code)]
    isolation_segment: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    options: Option<serde_json::Map<String, Value>>,
}

/// A `cf-router` entry as reads write it, in CC's key order.
#[derive(Debug, Serialize)]
struct WrittenRoute<'a> {
    hostnames: [&'a str; 1],
    port: i64,
    route_service_url: Option<&'a str>,
    isolation_segment: Option<&'a str>,
    protocol: &'a str,
}

/// The OPI routes of BBS `routes` (absent: none), refusals named under
/// `field` (`routes`).
pub fn opi_routes(routes: Option<&ProtoRoutes>, field: &str) -> Result<Routes, Refusal> {
    let mut out = Routes::default();
    let Some(routes) = routes else {
        return Ok(out);
    };
    let total: usize = routes.routes.values().map(Vec::len).sum();
    if total > MAX_ROUTES_BYTES {
        return Err(Refusal::new(
            field,
            format!("{total} bytes of routes; the BBS takes at most {MAX_ROUTES_BYTES}"),
        ));
    }
    for (key, bytes) in &routes.routes {
        let key_field = format!("{field}.{key}");
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Refusal::new(&key_field, format!("is not JSON: {e}")))?;
        if key == CF_ROUTER {
            out.cf_router = cf_router(&key_field, value)?;
        } else {
            out.other.insert(key.clone(), value);
        }
    }
    Ok(out)
}

/// One OPI route per hostname of each entry.
fn cf_router(field: &str, value: Value) -> Result<Vec<Route>, Refusal> {
    let Value::Array(entries) = value else {
        return Err(Refusal::new(field, "must be an array of routes"));
    };
    let mut routes = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let field = format!("{field}[{i}]");
        let entry: CfRoute =
            serde_json::from_value(entry).map_err(|e| Refusal::new(&field, e.to_string()))?;
        check_entry(&field, &entry)?;
        routes.extend(entry.hostnames.into_iter().map(|hostname| Route {
            hostname,
            port: entry.port,
        }));
    }
    Ok(routes)
}

/// Refuses what a Cube route cannot do, and hostnames or ports no route has.
fn check_entry(field: &str, entry: &CfRoute) -> Result<(), Refusal> {
    if let Some(i) = entry.hostnames.iter().position(|h| h.trim().is_empty()) {
        return Err(Refusal::new(
            format!("{field}.hostnames[{i}]"),
            "must not be empty",
        ));
    }
    if !(1..=i64::from(u16::MAX)).contains(&entry.port) {
        return Err(Refusal::new(
            format!("{field}.port"),
            format!("port {} is out of range 1-65535", entry.port),
        ));
    }
    if entry
        .route_service_url
        .as_deref()
        .is_some_and(|url| !url.is_empty())
    {
        return Err(Refusal::new(
            format!("{field}.route_service_url"),
            "Cube's routers send no traffic through route services",
        ));
    }
    if let Some(protocol) = entry
        .protocol
        .as_deref()
        .filter(|p| !p.is_empty() && *p != HTTP1)
    {
        return Err(Refusal::new(
            format!("{field}.protocol"),
            format!("{protocol:?}: Cube's routers speak {HTTP1} to apps"),
        ));
    }
    if entry
        .options
        .as_ref()
        .is_some_and(|options| !options.is_empty())
    {
        return Err(Refusal::new(
            format!("{field}.options"),
            "Cube's routers take no route options (load balancing, route policies)",
        ));
    }
    Ok(())
}

/// The BBS routes of `routes`: for each router, the bytes in `stored` (what
/// CC sent) while they still mean `routes`' value, else `routes`' value
/// written anew (`cf-router` in CC's format with `isolation_segment`).
pub fn bbs_routes(
    routes: &Routes,
    stored: Option<&ProtoRoutes>,
    isolation_segment: Option<&str>,
) -> ProtoRoutes {
    let stored = stored.map(|r| &r.routes);
    let kept = |key: &str, still: &dyn Fn(&[u8]) -> bool| {
        stored
            .and_then(|s| s.get(key))
            .filter(|bytes| still(bytes))
            .cloned()
    };
    let mut out = BTreeMap::new();
    let never_had = stored.is_some_and(|s| !s.contains_key(CF_ROUTER));
    if !(routes.cf_router.is_empty() && never_had) {
        let cf_router = kept(CF_ROUTER, &|bytes| {
            cf_router_of(bytes).is_some_and(|old| old == routes.cf_router)
        })
        .unwrap_or_else(|| written_cf_router(&routes.cf_router, isolation_segment));
        out.insert(CF_ROUTER.to_owned(), cf_router);
    }
    for (key, value) in &routes.other {
        let bytes = kept(key, &|bytes| {
            serde_json::from_slice::<Value>(bytes).is_ok_and(|old| old == *value)
        })
        .unwrap_or_else(|| value.to_string().into_bytes());
        out.insert(key.clone(), bytes);
    }
    ProtoRoutes { routes: out }
}

/// The OPI `cf-router` routes of stored bytes (`None` if they do not parse).
fn cf_router_of(bytes: &[u8]) -> Option<Vec<Route>> {
    let value = serde_json::from_slice(bytes).ok()?;
    cf_router(CF_ROUTER, value).ok()
}

fn written_cf_router(routes: &[Route], isolation_segment: Option<&str>) -> Vec<u8> {
    let entries: Vec<WrittenRoute<'_>> = routes
        .iter()
        .map(|route| WrittenRoute {
            hostnames: [route.hostname.as_str()],
            port: route.port,
            route_service_url: None,
            isolation_segment,
            protocol: HTTP1,
        })
        .collect();
    // Plain strings and numbers always serialize.
    serde_json::to_vec(&entries).unwrap_or_default()
}
