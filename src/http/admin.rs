//! The admin listener: health, readiness and the ingest API (`/v1/...`, see [`super::ingest`]).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::{body, Body, HttpError};
use crate::http::State;

/// Answer one request on the admin listener.
pub async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/ui" || path.starts_with("/ui/") {
        return super::ui::handle(state, req).await;
    }
    if req.uri().path() == "/v1/partners/activity" {
        return super::activity::handle(state, &req);
    }
    if req.uri().path().starts_with("/v1/") {
        return super::ingest::handle(state, req).await;
    }
    let text = |status: StatusCode, text: std::borrow::Cow<'static, str>| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(hyper::header::CACHE_CONTROL, "no-store")
            .body(body::full(match text {
                std::borrow::Cow::Borrowed(s) => bytes::Bytes::from_static(s.as_bytes()),
                std::borrow::Cow::Owned(s) => bytes::Bytes::from(s),
            }))
            .unwrap_or_else(|_| Response::new(body::empty()))
    };
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        // The current generation keeps serving while the object store is away: still ready.
        "/readyz" if state.readiness.is_ready() => {
            match state.store_health.as_ref().and_then(|h| h.problem()) {
                Some(problem) => text(
                    StatusCode::OK,
                    format!("ready; object store: {problem}\n").into(),
                ),
                None => text(StatusCode::OK, "ready\n".into()),
            }
        }
        "/readyz" => match state.readiness.problem() {
            Some(problem) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {problem}\n").into(),
            ),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "publishing\n".into()),
        },
        "/metrics" => super::observe::metrics(state),
        _ => HttpError::NotFound.response(),
    }
}
