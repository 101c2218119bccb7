//! `cube bbs`: serve Diego's BBS API to Cloud Controller over a backend —
//! point CC's `diego.bbs.url` (with its `ca_file`, `cert_file`, `key_file`)
//! at it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use cube_runtime::Service;

use super::backend::{Backend, BackendArgs, RoutingMode};
use super::opi::{NatsArgs, spawn_route_emitter, stop};

/// Flags of `cube bbs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArgs,

    /// Address of the BBS API (Diego's BBS listens on 8889).
    #[arg(long, default_value = "127.0.0.1:8889")]
    listen: SocketAddr,

    /// Address of the admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:9889")]
    admin_listen: SocketAddr,

    /// Serve plain HTTP. Without it the BBS API is served only over mutual
    /// TLS, as Diego's BBS: --tls-cert, --tls-key and --tls-client-ca (the
    /// CA of Cloud Controller's diego.bbs.cert_file).
    #[arg(long)]
    plain_http: bool,

    /// A stack Cube runs droplets on: `preloaded:<NAME>` root filesystems
    /// run on base image IMAGE (repeatable), e.g.
    /// `cflinuxfs4=registry.example/cube/cflinuxfs4:latest`.
    #[arg(long = "stack", value_name = "NAME=IMAGE", value_parser = parse_stack)]
    stacks: Vec<(String, String)>,

    /// The Registry that droplet images are imported into when an LRP is
    /// desired (its API URL, e.g. http://127.0.0.1:8087; the images are
    /// named with --registry). Without it, droplet images are not checked.
    #[arg(long, value_name = "URL")]
    droplet_registry_url: Option<reqwest::Url>,

    /// How long a desire waits for its droplet's import before answering
    /// (the import goes on; Cloud Controller waits 10 s for an answer).
    #[arg(long, default_value = "5s", value_parser = super::duration::positive)]
    droplet_import_wait: Duration,

    /// Cloud Controller's internal API URL (e.g.
    /// https://cloud-controller-ng.service.cf.internal:9023): instance
    /// crashes are reported there, with --client-cert and --ca-cert.
    #[arg(long)]
    cc_url: Option<reqwest::Url>,

    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = bbs::api::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,

    #[command(flatten)]
    access: cube_runtime::access::AccessArgs,

    #[command(flatten)]
    nats: NatsArgs,
}

/// `NAME=IMAGE`, both non-empty.
fn parse_stack(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, image)) if !name.trim().is_empty() && !image.trim().is_empty() => {
            Ok((name.trim().to_owned(), image.trim().to_owned()))
        }
        _ => Err(format!(
            "{value:?} is not NAME=IMAGE (e.g. cflinuxfs4=registry.example/cube/cflinuxfs4:latest)"
        )),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.backend
        .k8s
        .routing
        .refuse_unless(args.backend.backend == Backend::K8s, "add --backend k8s")?;
    let transport = bbs::Transport::choose(
        args.plain_http,
        args.access.tls_cert.is_some(),
        args.access.tls_client_ca.is_some(),
    )?;
    let access = args.access.server()?;
    let client = args.access.client()?;
    let scheduler = args.backend.build(&client, RoutingMode::None).await?;
    let service = Service::from_signals().with_access(access, client);
    let emitter = spawn_route_emitter(&args.nats, scheduler.clone().routes(), &service)?;
    let (admin_addr, admin) = service.spawn_admin(args.admin_listen).await?;
    let listener = cube_runtime::bind(args.listen).await?;
    tracing::info!(
        backend = ?args.backend.backend,
        api = %listener.local_addr()?,
        admin = %admin_addr,
        ?transport,
        "cube bbs started"
    );
    let config = bbs::Config {
        settings: bbs::translate::Settings {
            stacks: args.stacks.into_iter().collect::<BTreeMap<_, _>>(),
        },
        registry_url: args.droplet_registry_url,
        droplet_wait: args.droplet_import_wait,
        cc_url: args.cc_url,
        max_body_bytes: args.max_body_bytes,
        transport,
        ..bbs::Config::new(scheduler.clone())
    };
    bbs::run(config, listener, &service)
        .await
        .context("BBS service failed")?;
    stop(scheduler, emitter).await?;
    admin.await.context("admin server task failed")??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_name_equals_image() {
        assert_eq!(
            parse_stack("cflinuxfs4=registry.example/cube/cflinuxfs4:latest"),
            Ok((
                "cflinuxfs4".to_owned(),
                "registry.example/cube/cflinuxfs4:latest".to_owned()
            ))
        );
        for bad in ["cflinuxfs4", "=image", "name=", ""] {
            assert!(parse_stack(bad).is_err(), "{bad:?}");
        }
    }
}
