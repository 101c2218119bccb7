//! # opi-k8s — the Kubernetes backend of OPI
//!
//! `cf push myapp` ends up as pod `myapp-0`: [`K8sScheduler`] implements
//! [`opi::Scheduler`] by server-side applying (field manager `cube`) one
//! StatefulSet per CF process, following the "Kubernetes mapping" of
//! DESIGN.md.
//!
//! ```text
//! DesiredLrp ──translate::lrp──▶ Namespace <org>-<space> (label: space guid)
//!                                Secret <name>-env        (envFrom; the app's environment)
//!                                Secret <name>-registry   (docker credentials, when given)
//!                                StatefulSet <name>       (pods <name>-0…, Parallel)
//!                                PodDisruptionBudget      (when instances > 1)
//!                 ──translate::route─▶ Service <name>    (--routing ingress|gateway;
//!                                Ingress | HTTPRoute <name>  owned by the StatefulSet)
//! Task ──translate::task──▶ Job <app>-<task>-<hash> (backoffLimit 0, TTL) + Secret
//! pods ──watch──▶ PodCache (compact records) ──▶ instances(), crash events
//!                                       └─ + StatefulSet routes ──▶ RouteSource endpoints
//! Jobs ──watch──▶ task-completed events
//! StatefulSets, namespaces ──watch──▶ Placements (where each process / space is)
//! ```
//!
//! - [`names`]: CF names → DNS-1123 names and label values (pure, property-tested).
//! - [`translate`]: domain types → Kubernetes objects and back (pure).
//! - [`instances`], [`tasks`]: pods → instances and crashes, Jobs → task states (pure).
//! - [`routes`]: each process's routes (from its StatefulSet) and the
//!   endpoints of its ready pods: the backend as an [`opi::routing::RouteSource`].
//! - [`placements`]: the index of StatefulSets and space namespaces that
//!   spares each desire its cluster-wide LISTs (pure, fed by [`watch`]).
//! - [`backend`] and [`watch`]: the I/O; `apply.rs` holds the backend's
//!   server-side applies and deletes, `namespaces.rs` a space's namespace and
//!   the registry pull Secret in it.
//!
//! Cube keeps no state of its own (its caches are rebuilt from watches): the StatefulSet carries the desired LRP
//! (spec and annotations), the Secrets its environment and credentials, so a
//! restarted backend rebuilds everything from the cluster.
//!
//! # Versions
//!
//! One StatefulSet per process guid: desiring a new version re-applies the
//! pod template (a rolling update) and records the replaced version as
//! *superseded*; stopping it later answers `Ok` once and leaves the
//! StatefulSet running the new version. Only the current version is reported
//! by `get`, `list` and `instances`.
//!
//! # Routing
//!
//! With [`config::Routing::Ingress`] or [`config::Routing::Gateway`] each
//! process also gets a Service (selecting its pods; one port per container
//! and route port) and an Ingress or Gateway API `HTTPRoute` for its
//! `cf-router` routes ([`translate::route`]), all owned by the StatefulSet.
//! They are applied whole after it on every desire and update, so an update
//! changes exactly the changed routes and an unchanged one writes nothing;
//! stopping the current version deletes them (before the StatefulSet), stopping
//! a superseded one leaves them. A new process costs two more applies
//! than without routing; `Routing::None` adds no request. Switching modes
//! leaves the old mode's objects until the process stops (the garbage
//! collector removes them with the StatefulSet).
//!
//! # RBAC
//!
//! With `--namespace NS` (everything in one namespace) a namespaced `Role` in
//! `NS` suffices:
//!
//! | apiGroup | resources | verbs |
//! |---|---|---|
//! | `apps` | `statefulsets` | get, list, watch, create, patch, delete |
//! | `""` | `pods` | list, watch, delete |
//! | `""` | `secrets` | get, create, patch, delete |
//! | `policy` | `poddisruptionbudgets` | get, create, patch, delete |
//! | `batch` | `jobs` | get, list, watch, create, patch, delete |
//! | `""` | `services` | get, create, patch, delete |
//! | `networking.k8s.io` | `ingresses` | get, create, patch, delete |
//! | `gateway.networking.k8s.io` | `httproutes` | get, create, patch, delete |
//!
//! (`create` and `patch` both, because a server-side apply of an object that
//! does not exist yet creates it.) The same rules as data: [`rbac::NAMESPACED`]
//! and [`rbac::CLUSTER`]; the tests run the backend with exactly these against
//! a fake apiserver that answers 403 to anything else. The last three
//! serve routing ([`config::Routing`]); with `--routing none` (the default)
//! they are never used and may be left out.
//!
//! In the default namespace-per-space mode the same rules are needed in every
//! space namespace, which Cube creates, so they must be granted by a
//! `ClusterRole` bound with a `ClusterRoleBinding`, plus `namespaces`: get,
//! list, watch, create, patch (cluster-scoped). Cube never reads nodes or anything
//! cluster-wide beyond namespaces.

#![warn(missing_docs)]

mod apply;
pub mod backend;
pub mod config;
pub mod error;
pub mod instances;
pub mod labels;
pub mod names;
mod namespaces;
pub mod placements;
pub mod rbac;
pub mod routes;
pub mod tasks;
pub mod translate;
pub mod watch;

pub use backend::K8sScheduler;
pub use config::Config;
pub use error::K8sError;
