//! The HTTP surface: the only module that knows hyper.
//!
//! A request's path from socket to bytes: [`serve`] accepts a connection and hands each
//! request to [`feeds::handle`], which parses the route ([`routes`]), checks the partner,
//! finds the artifact and answers through [`respond::file`], where the pure rules of
//! [`rules`] decide 200, 206, 304, 412 or 416. Errors become statuses in one place,
//! [`HttpError::response`].

mod admin;
mod body;
mod conn;
mod feeds;
mod respond;
pub mod routes;
pub mod rules;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::App;
pub use body::Body;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted (request line + headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    #[error("the offer is being prepared; retry shortly")]
    NotReady,
    #[error("internal error")]
    Internal(String),
}

impl HttpError {
    /// The one place errors become statuses. Error answers are never cached: a revoked
    /// partner restored a second later must not be served a stale 403.
    pub fn response(&self) -> Response<Body> {
        let status = match self {
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::Revoked | HttpError::SharingOff => StatusCode::FORBIDDEN,
            HttpError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut builder = Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(hyper::header::CACHE_CONTROL, "no-store");
        if matches!(self, HttpError::MethodNotAllowed) {
            builder = builder.header(hyper::header::ALLOW, "GET, HEAD");
        }
        if matches!(self, HttpError::NotReady) {
            builder = builder.header(hyper::header::RETRY_AFTER, "5");
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
    /// Health, readiness (and later ingest and metrics).
    Admin,
}

/// Serve `surface` on `listener` until `shutdown` resolves, then let requests in flight
/// finish (up to a drain timeout).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    surface: Surface,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                // Lets a revoked partner's download cut this connection (see `conn`).
                let cut = Arc::new(conn::ConnCut::default());
                let stream = conn::CutIo::new(stream, cut.clone());
                let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    req.extensions_mut().insert(cut.clone());
                    async move {
                        let response = match surface {
                            Surface::Public => feeds::handle(&app, req).await,
                            Surface::Admin => admin::handle(&app, req).await,
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_buf_size(MAX_HEAD_BYTES.max(8192))
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
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
    Ok(())
}
