//! The HTTP server: the only module that serves requests (`purge` calls the CDN with
//! reqwest, and the `load` tool is a hyper client).
//!
//! A request's path from socket to bytes: [`serve`] accepts a connection and hands each
//! request to [`feeds::handle`], which parses the route ([`routes`]), checks the partner,
//! finds the artifact and answers through [`respond::file`], where the pure rules of
//! [`rules`] decide 200, 206, 304, 412 or 416. Errors become statuses in one place,
//! [`HttpError::response`].

mod access;
mod activity;
mod admin;
mod body;
mod conn;
mod feeds;
mod ingest;
pub mod limits;
mod observe;
mod respond;
pub mod routes;
pub mod rules;
mod signed;
mod state;
mod ui;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use body::Body;
pub use limits::RateLimiter;
pub use state::{Handles, State};

/// Largest request head accepted (request line + headers); larger heads get 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection over the limit waits for a slot before it is answered 503.
const CONNECTION_WAIT: Duration = Duration::from_millis(250);
/// Connections over the limit that may wait (or be answered 503) at once, at most; beyond
/// that they are closed at accept, so a flood costs a file descriptor for an instant, never a
/// task or a buffer. A low descriptor limit makes the queue shorter.
const MAX_WAITING: usize = 256;

/// A request that cannot be answered with a file.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("offer access for this partner is switched off")]
    Revoked,
    #[error("offer sharing is switched off")]
    SharingOff,
    /// A profile URL whose signature no key gives.
    #[error("the URL's signature is not valid; fetch the gateway again")]
    BadSignature,
    /// A profile URL past its `expires`.
    #[error("the URL has expired; fetch the gateway again")]
    SignatureExpired,
    #[error("the offer is being prepared; retry shortly")]
    NotReady,
    /// A profile URL made from a generation this node does not serve yet (a replica that
    /// lags behind the one that rendered the gateway).
    #[error("this server has generation {serving}, the link names {wanted}; retry shortly")]
    Behind { wanted: u64, serving: u64 },
    /// The partner's request rate is over its limit; retry after the duration.
    #[error("too many requests; retry later")]
    RateLimited(Duration),
    /// Every connection slot is taken.
    #[error("the server is busy; retry shortly")]
    Overloaded,
    /// A fault of the server, not of the request: logged with its cause, answered 500.
    #[error("internal error")]
    Internal {
        /// What was being done.
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Admin API: no or wrong bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Admin API: a method the route does not take; `allow` lists those it does.
    #[error("method not allowed")]
    WrongMethod { allow: &'static str },
    /// Admin API: a request that cannot be read at all (the reason says where).
    #[error("{0}")]
    BadRequest(String),
    /// Admin API: the body is over the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Admin API: the store could not make the update durable; nothing was applied.
    #[error("{0}")]
    Unavailable(String),
    /// Admin API: the body stalled longer than `ingest_body_timeout`; nothing was applied.
    #[error("{0}")]
    RequestTimeout(String),
    /// Admin API: `ingest_max_concurrent` bodies are already being received.
    #[error("{0} uploads are already being received (ingest_max_concurrent); retry shortly")]
    TooManyUploads(usize),
}

impl HttpError {
    /// [`HttpError::Internal`]: `what` was being done when `source` happened.
    pub fn internal(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> HttpError {
        HttpError::Internal {
            what: what.into(),
            source: source.into(),
        }
    }
    /// The one place errors become statuses. Error answers are never cached: a revoked
    /// partner restored a second later must not be served a stale 403.
    pub fn response(&self) -> Response<Body> {
        let status = match self {
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::Revoked
            | HttpError::SharingOff
            | HttpError::BadSignature
            | HttpError::SignatureExpired => StatusCode::FORBIDDEN,
            HttpError::NotReady
            | HttpError::Behind { .. }
            | HttpError::Unavailable(_)
            | HttpError::Overloaded
            | HttpError::TooManyUploads(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            HttpError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            HttpError::WrongMethod { .. } => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HttpError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            HttpError::Internal { what, source } => {
                tracing::error!(what = %what, error = %source, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut builder = Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(hyper::header::CACHE_CONTROL, "no-store");
        match self {
            HttpError::MethodNotAllowed => {
                builder = builder.header(hyper::header::ALLOW, "GET, HEAD");
            }
            HttpError::WrongMethod { allow } => {
                builder = builder.header(hyper::header::ALLOW, *allow)
            }
            HttpError::Unauthorized(_) => {
                builder = builder.header(
                    hyper::header::WWW_AUTHENTICATE,
                    "Bearer realm=\"iofd-admin\"",
                );
            }
            _ => {}
        }
        match self {
            HttpError::NotReady => builder = builder.header(hyper::header::RETRY_AFTER, "5"),
            HttpError::Overloaded => {
                builder = builder
                    .header(hyper::header::RETRY_AFTER, "1")
                    .header(hyper::header::CONNECTION, "close");
            }
            HttpError::TooManyUploads(_) | HttpError::Behind { .. } => {
                builder = builder.header(hyper::header::RETRY_AFTER, "1");
            }
            // The rest of a stalled body is not waited for: the connection cannot go on.
            HttpError::RequestTimeout(_) => {
                builder = builder.header(hyper::header::CONNECTION, "close");
            }
            HttpError::RateLimited(wait) => {
                // Whole seconds, rounded up: a client retrying after it gets a token.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                builder = builder.header(hyper::header::RETRY_AFTER, secs.max(1));
            }
            _ => {}
        }
        let text = format!("{self}\n");
        builder
            .header(hyper::header::CONTENT_LENGTH, text.len())
            .body(body::full(text))
            .unwrap_or_else(|_| Response::new(body::empty()))
    }
}

/// Which requests a listener answers.
#[derive(Clone, Copy, Debug)]
pub enum Surface {
    /// Partner feeds.
    Public,
    /// Health, readiness and the ingest API.
    Admin,
}

/// Serve `surface` on `listener` until `shutdown` resolves, then let requests in flight
/// finish (up to a drain timeout, after which the connections still open are closed); returns
/// once no task of the listener's connections is left.
///
/// At most `max_connections` connections are served at once, fewer when the descriptor limit
/// is too low for it (see [`limits::ConnectionBudget`]), and at most
/// `max_connections_per_ip` from one client address. A connection over the limit waits up
/// to [`CONNECTION_WAIT`] for a slot and is then answered 503 (one over its address's cap is
/// answered 503 at once); when the listener's share of waiting connections is taken it is
/// closed at once. Public connections run under the timeouts of [`limits::GuardedIo`].
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    surface: Surface,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let configured = state.limits.max_connections;
    let budget =
        limits::ConnectionBudget::compute(limits::descriptor_limit(), configured, MAX_WAITING);
    let caps = match surface {
        Surface::Public => budget.public,
        Surface::Admin => budget.admin,
    };
    let soft_limit = budget
        .soft_limit
        .map_or("unlimited".to_string(), |n| n.to_string());
    tracing::info!(
        listener = ?surface,
        descriptor_limit = %soft_limit,
        reserve = budget.reserve,
        max_connections = caps.max_connections,
        configured,
        max_waiting = caps.max_waiting,
        max_connections_per_ip = state.limits.max_connections_per_ip,
        "connection budget"
    );
    if caps.max_connections < configured {
        tracing::warn!(
            listener = ?surface,
            "the descriptor limit ({soft_limit}) allows {} connections, not max_connections = {configured}; raise the hard limit (LimitNOFILE=) to serve more",
            caps.max_connections
        );
    }
    let slots = Arc::new(Semaphore::new(caps.max_connections));
    let waiting = Arc::new(Semaphore::new(caps.max_waiting));
    let per_ip = limits::PerIp::new(state.limits.max_connections_per_ip);
    let uploads = ingest::Uploads::new(state.ingest_max_concurrent);
    let mut backoff = limits::AcceptBackoff::default();
    let tasks = Tasks::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and similar: back off instead of spinning, and
                        // log now and then rather than at every attempt.
                        let (wait, log) = backoff.failed(tokio::time::Instant::now());
                        if let Some(failures) = log {
                            tracing::warn!(listener = ?surface, error = %e, failures, backoff_ms = wait.as_millis() as u64, "accept failed");
                        }
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                };
                backoff.succeeded();
                let _ = stream.set_nodelay(true);
                let Some(ip_slot) = per_ip.try_take(peer.ip()) else {
                    // One client holds its address's share: answered like a full server.
                    state.metrics.connection_rejected();
                    if let Ok(wait_slot) = waiting.clone().try_acquire_owned() {
                        tasks.spawn(async move {
                            overloaded(stream).await;
                            drop(wait_slot);
                        });
                    }
                    continue;
                };
                if let Ok(slot) = slots.clone().try_acquire_owned() {
                    connection(stream, peer, state.clone(), surface, (slot, ip_slot), &uploads, (graceful.watcher(), &tasks));
                    continue;
                }
                let Ok(wait_slot) = waiting.clone().try_acquire_owned() else {
                    state.metrics.connection_rejected();
                    drop(stream);
                    continue;
                };
                let (state, slots, watcher) = (state.clone(), slots.clone(), graceful.watcher());
                let (uploads, spawner) = (uploads.clone(), tasks.clone());

                tasks.spawn(async move {
                    let slot = tokio::time::timeout(CONNECTION_WAIT, slots.acquire_owned()).await;
                    match slot {
                        Ok(Ok(slot)) => {
                            drop(wait_slot);
                            connection(stream, peer, state, surface, (slot, ip_slot), &uploads, (watcher, &spawner))
                        }
                        _ => {
                            state.metrics.connection_rejected();
                            // The wait slot is held until the 503 is sent: it counts the
                            // descriptor in the budget.
                            overloaded(stream).await;
                            drop((wait_slot, ip_slot));
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timeout: closing connections still open"),
    }
    // No connection task outlives the listener: those still running after the drain are cut.
    tasks.cut.cancel();
    tasks.tracker.close();
    tasks.tracker.wait().await;
    Ok(())
}

/// The connection tasks of one listener (and its 503 answers), tracked so that [`serve`]
/// returns only once none is left.
#[derive(Clone, Default)]
struct Tasks {
    tracker: tokio_util::task::TaskTracker,
    /// Cuts the tasks still running when the drain times out.
    cut: tokio_util::sync::CancellationToken,
}

impl Tasks {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let cut = self.cut.clone();
        self.tracker.spawn(async move {
            cut.run_until_cancelled(task).await;
        });
    }
}

/// Answer a connection over the limit with 503 (through [`HttpError::response`]) and close
/// it; bounded in time so a silent client cannot keep even this.
async fn overloaded(stream: TcpStream) {
    let service =
        service_fn(|_req| async { Ok::<_, Infallible>(HttpError::Overloaded.response()) });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(Duration::from_secs(1))
        .max_buf_size(MAX_HEAD_BYTES.max(8192));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
}

/// Serve one connection while holding `slot` (its listener's and its address's).
fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    state: Arc<State>,
    surface: Surface,
    slot: (OwnedSemaphorePermit, limits::IpSlot),
    uploads: &Arc<ingest::Uploads>,
    // Graceful shutdown's hold on the connection, and the listener's tasks to run it on.
    (watcher, tasks): (Watcher, &Tasks),
) {
    state.metrics.connection_opened();
    let limits = state.limits.clone();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .max_buf_size(MAX_HEAD_BYTES.max(8192));
    match surface {
        Surface::Public => {
            let guard = Arc::new(limits::ConnState::new());
            // Lets a revoked partner's download cut this connection (see `conn`).
            let cut = Arc::new(conn::ConnCut::default());
            let stream = conn::CutIo::new(stream, cut.clone());
            let io = limits::GuardedIo::new(stream, guard.clone(), limits);
            // The guard keeps the header, idle and send clocks; hyper's header timer would
            // also count idle keep-alive time as header time, so it is off here.
            builder.header_read_timeout(None);
            let service_state = state.clone();
            let service_guard = guard.clone();
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let state = service_state.clone();
                let guard = service_guard.clone();
                req.extensions_mut().insert(cut.clone());
                async move {
                    guard.begin();
                    if accepts_zstd(&req) {
                        state.metrics.accepts_zstd();
                    }
                    let response = feeds::handle(&state, req).await;
                    Ok::<_, Infallible>(access::track(
                        &state.metrics,
                        Some(&state.activity),
                        response,
                        Some(guard),
                    ))
                }
            });
            let conn = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
            tasks.spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                if let Some(why) = guard.expired() {
                    tracing::debug!(%peer, ?why, "connection closed by a limit");
                    state.metrics.connection_limited(why);
                }
                state.metrics.connection_closed();
                drop(slot);
            });
        }
        Surface::Admin => {
            builder.header_read_timeout(limits.header_timeout);
            let service_state = state.clone();
            let uploads = uploads.clone();
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let state = service_state.clone();
                // Ingest bodies received at once are bounded per listener.
                req.extensions_mut().insert(uploads.clone());
                async move { Ok::<_, Infallible>(admin::handle(&state, req).await) }
            });
            let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
            tasks.spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                state.metrics.connection_closed();
                drop(slot);
            });
        }
    }
}

/// Whether a request's `Accept-Encoding` lists zstd (counted to decide on a zstd variant).
fn accepts_zstd<B>(req: &hyper::Request<B>) -> bool {
    req.headers()
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("zstd"))
}
