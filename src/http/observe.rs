//! `GET /metrics` on the admin listener: the Prometheus exposition of [`crate::metrics`].

use std::time::SystemTime;

use hyper::{Response, StatusCode};

use super::{body, Body};
use crate::http::State;
use crate::metrics::{StateSample, CONTENT_TYPE};

/// The metrics text, with the snapshot and artifact gauges sampled now.
pub fn metrics(state: &State) -> Response<Body> {
    let snapshot = state.store.snapshot();
    let artifacts = state.artifacts.current();
    let text = state.metrics.encode(StateSample {
        snapshot_generation: snapshot.generation(),
        snapshot_published: SystemTime::from(snapshot.published()),
        artifacts_generation: artifacts.generation,
        artifact_files: artifacts.file_count() as u64,
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .header(hyper::header::CONTENT_LENGTH, text.len())
        .body(body::full(text))
        .unwrap_or_else(|_| Response::new(body::empty()))
}
