//! What `cube apps` and `cube push` print about apps: the apps table and the
//! URL a route is reached at.

use cc::sim::state::{AppState, BuildState, Lifecycle};
use cc::sim::view::AppView;

/// The URL a route is reached at through `router` (the local router of
/// `cube up`, e.g. `http://localhost:8080`): `hello.localhost` →
/// `http://hello.localhost:8080`; a route's path is kept.
pub fn route_url(route: &str, router: &url::Url) -> String {
    let (host, path) = match route.split_once('/') {
        Some((host, path)) => (host, format!("/{path}")),
        None => (route, String::new()),
    };
    match router.port() {
        Some(port) => format!("{}://{host}:{port}{path}", router.scheme()),
        None => format!("{}://{host}{path}", router.scheme()),
    }
}

/// `cube apps` table: name, state, instances, memory, lifecycle, URLs (through
/// `router` when given, else the bare routes).
pub fn apps_table(apps: &[AppView], router: Option<&url::Url>) -> String {
    let mut rows = vec![[
        "name".to_owned(),
        "state".to_owned(),
        "instances".to_owned(),
        "memory".to_owned(),
        "lifecycle".to_owned(),
        "urls".to_owned(),
    ]];
    for app in apps {
        rows.push([
            app.name.clone(),
            state(app).to_owned(),
            app.instances.to_string(),
            format!("{}M", app.memory_mb),
            lifecycle(&app.lifecycle),
            app.routes
                .iter()
                .map(|route| match router {
                    Some(router) => route_url(route, router),
                    None => route.clone(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    render(&rows)
}

/// The state column: staging outcomes first, then started or stopped.
fn state(app: &AppView) -> &'static str {
    match (&app.state, app.build.as_ref().map(|b| b.state)) {
        (_, Some(BuildState::Staging)) => "staging",
        (_, Some(BuildState::Failed)) if app.droplet.is_none() => "staging failed",
        (AppState::Started, _) if app.droplet.is_none() => "not staged",
        (AppState::Started, _) => "started",
        (AppState::Stopped, _) => "stopped",
    }
}

/// The lifecycle column: `docker IMAGE`, `buildpack A,B` or `buildpack (auto)`.
fn lifecycle(lifecycle: &Lifecycle) -> String {
    match lifecycle {
        Lifecycle::Docker { image } => format!("docker {image}"),
        Lifecycle::Buildpack { buildpacks, .. } if buildpacks.is_empty() => {
            "buildpack (auto)".to_owned()
        }
        Lifecycle::Buildpack { buildpacks, .. } => format!("buildpack {}", buildpacks.join(",")),
    }
}

/// Rows as left-aligned columns three spaces apart, without trailing blanks.
fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
                .collect::<Vec<_>>()
                .join("   ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
