//! The fake BBS's HTTP side: every route Cube and Cloud Controller use, each
//! a POST of protobuf, errors inside a 200 response as `Error{type,message}`
//! (as the BBS's `parseRequest`: an undecodable body is `InvalidRequest` "the
//! request received is invalid", an invalid one `InvalidRequest` with the
//! validation message), and the two SSE event streams (`id`, `event`, base64
//! protobuf `data`) — served over plain HTTP or mutual TLS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use bbs_models::version::{desired_lrp_v2, populate_metrics_guid, task_v2};
use bbs_models::{self as proto, error::Type};
use futures::StreamExt;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::state::{Event, State, Stream, error};
use super::validate::Validate;

/// One SSE frame, ready to send.
type Frame = Bytes;

/// What the handlers share.
pub(crate) struct Shared {
    state: Mutex<State>,
    lrp_events: broadcast::Sender<Frame>,
    task_events: broadcast::Sender<Frame>,
    next_event_id: AtomicU64,
    pub(crate) unavailable: AtomicBool,
    requests: Mutex<BTreeMap<String, u64>>,
    /// Routes whose requests wait (counted, not yet answered).
    held: watch::Sender<BTreeSet<String>>,
    /// Cancelled to end the event streams open now.
    streams: Mutex<CancellationToken>,
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn new() -> Self {
        let shutdown = CancellationToken::new();
        Self {
            state: Mutex::new(State::default()),
            lrp_events: broadcast::channel(1024).0,
            task_events: broadcast::channel(1024).0,
            next_event_id: AtomicU64::new(0),
            unavailable: AtomicBool::new(false),
            requests: Mutex::new(BTreeMap::new()),
            held: watch::Sender::new(BTreeSet::new()),
            streams: Mutex::new(shutdown.child_token()),
            shutdown,
        }
    }

    /// Ends every event stream open now; later subscriptions work.
    pub(crate) fn drop_event_streams(&self) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.cancel();
        *streams = self.shutdown.child_token();
    }

    fn open_streams(&self) -> CancellationToken {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes requests to `path` wait (`true`) or lets them go on (`false`).
    pub(crate) fn hold(&self, path: &str, held: bool) {
        self.held.send_modify(|paths| {
            if held {
                paths.insert(path.to_owned());
            } else {
                paths.remove(path);
            }
        });
    }

    /// Waits while `path` is held (or until shutdown).
    async fn until_released(&self, path: &str) {
        let mut held = self.held.subscribe();
        tokio::select! {
            _ = held.wait_for(|paths| !paths.contains(path)) => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test cannot leave a half-applied change: every
        // operation validates before it mutates.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` on the state and streams the events it queued, in order.
    pub(crate) fn with<T>(&self, op: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.lock();
        let out = op(&mut state);
        for event in std::mem::take(&mut state.events) {
            self.publish(event);
        }
        out
    }

    fn publish(&self, event: Event) {
        let id = self.next_event_id.fetch_add(1, Ordering::SeqCst);
        let data = base64::engine::general_purpose::STANDARD.encode(&event.payload);
        let frame = Bytes::from(format!("id: {id}\nevent: {}\ndata: {data}\n\n", event.name));
        let sender = match event.stream {
            Stream::Lrp => &self.lrp_events,
            Stream::Task => &self.task_events,
        };
        // No subscriber is fine: events are not stored.
        let _ = sender.send(frame);
    }

    fn count(&self, path: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry(path.to_owned()).or_default() += 1;
    }

    pub(crate) fn requests(&self, path: &str) -> u64 {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.get(path).copied().unwrap_or(0)
    }
}

/// A BBS response type: it carries an optional `Error`.
trait Reply: Message + Default {
    fn failed(error: proto::Error) -> Self;
}

macro_rules! replies {
    ($($t:ident),* $(,)?) => {
        $(impl Reply for proto::$t {
            fn failed(error: proto::Error) -> Self {
                let mut reply = Self::default();
                reply.error = Some(error);
                reply
            }
        })*
    };
}

replies!(
    UpsertDomainResponse,
    DesiredLrpLifecycleResponse,
    DesiredLrpResponse,
    DesiredLrpSchedulingInfosResponse,
    ActualLrPsResponse,
    ActualLrPsByProcessGuidsResponse,
    ActualLrpLifecycleResponse,
    TaskLifecycleResponse,
    TasksResponse,
    TaskResponse,
);

fn protobuf(message: &impl Message) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        message.encode_to_vec(),
    )
        .into_response()
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "fake BBS switched off").into_response()
}

/// Decodes and validates `Req`, runs `op` and answers `Resp` (with the
/// error, if any); counted at once, answered once `path` is not held.
async fn unary<Req, Resp>(
    shared: &Shared,
    path: &str,
    body: &[u8],
    op: impl FnOnce(&mut State, Req) -> Result<Resp, proto::Error>,
) -> Response
where
    Req: Message + Default + Validate,
    Resp: Reply,
{
    shared.count(path);
    shared.until_released(path).await;
    if shared.unavailable.load(Ordering::SeqCst) {
        return unavailable();
    }
    let reply = match Req::decode(body) {
        Ok(req) => match req.validate() {
            Ok(()) => shared
                .with(|state| op(state, req))
                .unwrap_or_else(Resp::failed),
            Err(problems) => Resp::failed(error(Type::InvalidRequest, problems)),
        },
        Err(_) => Resp::failed(error(
            Type::InvalidRequest,
            "the request received is invalid",
        )),
    };
    protobuf(&reply)
}

macro_rules! route {
    ($router:expr, $path:literal, $op:expr) => {
        $router.route(
            $path,
            post(
                |Extract(shared): Extract<Arc<Shared>>, body: Bytes| async move {
                    unary(&shared, $path, &body, $op).await
                },
            ),
        )
    };
}

fn ok<T: Default>(result: Result<(), proto::Error>) -> Result<T, proto::Error> {
    result.map(|()| T::default())
}

/// Every route Cube's client and Cloud Controller use.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let router = Router::new().route(
        "/v1/ping",
        post(|Extract(shared): Extract<Arc<Shared>>| async move {
            shared.count("/v1/ping");
            let available = !shared.unavailable.load(Ordering::SeqCst);
            protobuf(&proto::PingResponse { available })
        }),
    );
    let router = route!(router, "/v1/domains/upsert", |s: &mut State, r| ok::<
        proto::UpsertDomainResponse,
    >(
        s.upsert_domain(r)
    ));
    let router = route!(
        router,
        "/v1/desired_lrp/desire.r2",
        |s: &mut State, r| ok::<proto::DesiredLrpLifecycleResponse>(s.desire_lrp(r))
    );
    let router = route!(router, "/v1/desired_lrp/update", |s: &mut State, r| ok::<
        proto::DesiredLrpLifecycleResponse,
    >(
        s.update_lrp(r)
    ));
    let router = route!(router, "/v1/desired_lrp/remove", |s: &mut State, r| ok::<
        proto::DesiredLrpLifecycleResponse,
    >(
        s.remove_lrp(r)
    ));
    // Every DesiredLRP read fills in the metrics guid; `.r2` reads answer
    // in format V2 (image layers as cached dependencies and downloads).
    let router = route!(
        router,
        "/v1/desired_lrps/get_by_process_guid.r3",
        |s: &mut State, r| {
            s.desired_lrp(&r).map(|d| proto::DesiredLrpResponse {
                error: None,
                desired_lrp: Some(populate_metrics_guid(d)),
            })
        }
    );
    let router = route!(
        router,
        "/v1/desired_lrps/get_by_process_guid.r2",
        |s: &mut State, r| {
            s.desired_lrp(&r).map(|d| proto::DesiredLrpResponse {
                error: None,
                desired_lrp: Some(populate_metrics_guid(desired_lrp_v2(d))),
            })
        }
    );
    let router = route!(
        router,
        "/v1/desired_lrp_scheduling_infos/list",
        |s: &mut State, r| {
            Ok(proto::DesiredLrpSchedulingInfosResponse {
                error: None,
                desired_lrp_scheduling_infos: s.scheduling_infos(&r),
            })
        }
    );
    let router = route!(router, "/v1/actual_lrps/list", |s: &mut State, r| {
        Ok(proto::ActualLrPsResponse {
            error: None,
            actual_lrps: s.actual_lrps(&r),
        })
    });
    let router = route!(
        router,
        "/v1/actual_lrps/list_by_process_guids",
        |s: &mut State, r| {
            Ok(proto::ActualLrPsByProcessGuidsResponse {
                error: None,
                actual_lrps: s.actual_lrps_by_process_guids(&r),
            })
        }
    );
    let router = route!(router, "/v1/actual_lrps/retire", |s: &mut State, r| ok::<
        proto::ActualLrpLifecycleResponse,
    >(
        s.retire(r)
    ));
    let router = route!(router, "/v1/tasks/desire.r2", |s: &mut State, r| ok::<
        proto::TaskLifecycleResponse,
    >(
        s.desire_task(r)
    ));
    let router = route!(router, "/v1/tasks/list.r3", |s: &mut State, r| {
        Ok(proto::TasksResponse {
            error: None,
            tasks: s.tasks(&r),
        })
    });
    let router = route!(router, "/v1/tasks/list.r2", |s: &mut State, r| {
        Ok(proto::TasksResponse {
            error: None,
            tasks: s.tasks(&r).into_iter().map(task_v2).collect(),
        })
    });
    let router = route!(
        router,
        "/v1/tasks/get_by_task_guid.r3",
        |s: &mut State, r| {
            s.task(&r).map(|t| proto::TaskResponse {
                error: None,
                task: Some(t),
            })
        }
    );
    let router = route!(
        router,
        "/v1/tasks/get_by_task_guid.r2",
        |s: &mut State, r| {
            s.task(&r).map(|t| proto::TaskResponse {
                error: None,
                task: Some(task_v2(t)),
            })
        }
    );
    let router = route!(router, "/v1/tasks/cancel", |s: &mut State, r| ok::<
        proto::TaskLifecycleResponse,
    >(
        s.cancel_task(&r)
    ));
    let router = route!(router, "/v1/tasks/resolving", |s: &mut State, r| ok::<
        proto::TaskLifecycleResponse,
    >(
        s.resolving_task(&r)
    ));
    let router = route!(router, "/v1/tasks/delete", |s: &mut State, r| ok::<
        proto::TaskLifecycleResponse,
    >(
        s.delete_task(&r)
    ));
    router
        .route(
            "/v1/events/lrp_instances.r1",
            post(|Extract(shared): Extract<Arc<Shared>>| async move { events(&shared, Stream::Lrp) }),
        )
        .route(
            "/v1/events/tasks.r1",
            post(|Extract(shared): Extract<Arc<Shared>>| async move { events(&shared, Stream::Task) }),
        )
        .with_state(shared)
}

/// An SSE stream of events from now on, until the fake BBS shuts down or
/// drops the open streams.
fn events(shared: &Shared, stream: Stream) -> Response {
    let path = match stream {
        Stream::Lrp => "/v1/events/lrp_instances.r1",
        Stream::Task => "/v1/events/tasks.r1",
    };
    shared.count(path);
    if shared.unavailable.load(Ordering::SeqCst) {
        return unavailable();
    }
    // Subscribed before the response starts, so nothing after it is missed.
    let receiver = match stream {
        Stream::Lrp => shared.lrp_events.subscribe(),
        Stream::Task => shared.task_events.subscribe(),
    };
    // A child of the shutdown token: ends with the server, or when dropped.
    let ended = shared.open_streams();
    let frames = futures::stream::unfold(receiver, move |mut receiver| {
        let ended = ended.clone();
        async move {
            tokio::select! {
                // Checked first: nothing is sent on a dropped stream.
                biased;
                () = ended.cancelled() => None,
                // As the real BBS's hub: a slow consumer's stream is closed
                // (`Lagged`), never left silently short of events.
                next = receiver.recv() => next
                    .ok()
                    .map(|frame| (Ok::<_, std::io::Error>(frame), receiver)),
            }
        }
    })
    .boxed();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response()
}

/// Serves `router` on `listener` (TLS when `tls` is set) until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _)) = accepted else {
            // Out of file descriptors or similar: let the moment pass.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    // A client without a certificate from our CA fails here.
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    tokio::select! {
                        _ = conn => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
        });
    }
}
