//! The admin ingest API: how an ERP feeds the store over HTTP.
//!
//! - `POST /v1/records?mode=upsert|full_sync&partial=true&confirm_removal=N` — JSON Lines of records (or a JSON
//!   array with `Content-Type: application/json`);
//! - `PUT /v1/products/{id}` — one product; `DELETE /v1/products/{id}`;
//! - `POST /v1/updates?partial=true` — JSON Lines (or an array) of stock and price updates.
//!
//! Every answer is `{"generation","applied","unchanged","removed","rejected":[{"line","field",
//! "reason"}]}` and is sent only after the change is durable. A request with a rejected line
//! applies nothing (422) unless `partial=true` (200, the valid lines applied); a full sync is
//! never applied partially, since a rejected product would be deleted by it. The first
//! [`MAX_LISTED_REJECTIONS`] rejected lines are listed; `rejected_unlisted` counts the rest.
//! A full sync that would remove more than `full_sync_max_removal` of the products is
//! answered 409 with the numbers and applies nothing, unless `confirm_removal=N` names the
//! exact count.
//!
//! Bodies are cut into whole lines as they arrive ([`LineFeed`]) and parsed a batch of lines
//! at a time on a blocking thread, so no thread waits on the network and the raw body is
//! never held; a pause longer than `ingest_body_timeout` answers 408, and at most
//! `ingest_max_concurrent` bodies are received at once ([`Uploads`]). Records go to the
//! store's spool once a batch is large; updates go to a spool file of their own and are
//! committed from it once the body is complete. Small requests go through the group
//! committer and share fsyncs; large ones and full syncs are applied on their own.

use parking_lot::Mutex;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, BufRead, Read, Seek, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{body, Body, HttpError};
use crate::catalog::{FieldError, ProductId, Record};
use crate::http::State;
use crate::ingest::{self, ArrayLines, JsonlReader, LineError, Rejection, Update};
use crate::store::{self, ApplyMode, Op, Outcome};

mod records;
mod stream;
mod updates;

use records::{put_product, records};
#[cfg(test)]
use stream::{parse_batch, LineFeed};
use stream::{parse_body, Sink};
use updates::updates;

/// Requests with more records than this are applied on their own rather than queued for a
/// group commit: they would hold up the small ones behind them, and gain nothing.
const GROUP_COMMIT_MAX_RECORDS: usize = 1000;

/// Whole lines are handed to the parser in batches of about this many bytes: enough to make
/// a blocking task worth it, little memory.
const PARSE_BATCH_BYTES: usize = 1 << 20;

/// Rejected lines listed in an answer (the first, by line); the rest are only counted.
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// The JSON answer of every ingest request.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub generation: u64,
    pub applied: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub rejected: Vec<RejectedLine>,
    /// Rejected lines after the first [`MAX_LISTED_REJECTIONS`], not listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub rejected_unlisted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Rejected lines of one request: the first [`MAX_LISTED_REJECTIONS`] by line, and a count
/// of the others, so a body of a million bad lines costs a thousand.
#[derive(Debug, Default)]
struct Rejections {
    /// A max-heap by line: the last listed line is the one given up for an earlier one.
    listed: BinaryHeap<ByLine>,
    unlisted: u64,
}

#[derive(Debug)]
struct ByLine(RejectedLine);

impl PartialEq for ByLine {
    fn eq(&self, other: &Self) -> bool {
        self.0.line == other.0.line
    }
}
impl Eq for ByLine {}
impl PartialOrd for ByLine {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByLine {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.line.cmp(&other.0.line)
    }
}

impl Rejections {
    fn push(&mut self, r: impl Into<RejectedLine>) {
        self.listed.push(ByLine(r.into()));
        if self.listed.len() > MAX_LISTED_REJECTIONS {
            self.listed.pop();
            self.unlisted += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// The listed lines in line order, and how many more there were.
    fn into_parts(self) -> (Vec<RejectedLine>, u64) {
        let listed = self.listed.into_sorted_vec().into_iter().map(|b| b.0);
        (listed.collect(), self.unlisted)
    }
}

/// The ingest bodies being received at once on one admin listener, at most
/// `ingest_max_concurrent`: each holds a spool file, a parse batch and a slot of the
/// descriptor budget, so more are answered 503 rather than queued.
#[derive(Debug)]
pub struct Uploads {
    slots: Arc<tokio::sync::Semaphore>,
    max: usize,
}

impl Uploads {
    pub fn new(max: usize) -> Arc<Uploads> {
        Arc::new(Uploads {
            slots: Arc::new(tokio::sync::Semaphore::new(max)),
            max,
        })
    }

    fn try_take(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HttpError> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| HttpError::TooManyUploads(self.max))
    }
}

/// One rejected line: 1-based line (or array element) number, field, reason.
#[derive(Debug, serde::Serialize)]
pub struct RejectedLine {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

impl From<Rejection> for RejectedLine {
    fn from(r: Rejection) -> Self {
        RejectedLine {
            line: r.line,
            field: r.field,
            reason: r.reason,
        }
    }
}

/// Answer one `/v1/...` request.
pub async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let full_sync = Query::parse(req.uri().query()).is_ok_and(|q| q.mode.is_full_sync());
    let response = match answer(state, req).await {
        Ok(r) => r,
        Err(e) => e.response(),
    };
    if response.status() == StatusCode::OK && method != Method::GET {
        // For the panel's overview: the last change that came in over the API.
        state
            .panel
            .ingests
            .note(&path, full_sync, state.clock.now());
    }
    tracing::info!(
        target: "ingest",
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn answer(state: &Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, HttpError> {
    check_token(state.admin_token.as_deref(), req.headers())?;
    let path = req.uri().path().to_owned();
    let query = Query::parse(req.uri().query())?;
    // A request with a body holds an upload slot until it is answered.
    let _upload = match (req.method(), req.extensions().get::<Arc<Uploads>>()) {
        (&Method::POST | &Method::PUT, Some(uploads)) => Some(uploads.try_take()?),
        _ => None,
    };
    if path == "/v1/records" {
        if req.method() != Method::POST {
            return Err(HttpError::WrongMethod { allow: "POST" });
        }
        return records(state, req, query).await;
    }
    if path == "/v1/updates" {
        if req.method() != Method::POST {
            return Err(HttpError::WrongMethod { allow: "POST" });
        }
        return updates(state, req, query).await;
    }
    if let Some(id) = path.strip_prefix("/v1/products/") {
        let id: ProductId = id
            .parse()
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| HttpError::BadRequest("product ids are positive integers".into()))?;
        return match *req.method() {
            Method::PUT => put_product(state, req, id).await,
            Method::DELETE => {
                let op = Op::Record(Record::DeleteProduct { id });
                let outcome = submit(state, vec![op], false).await?;
                Ok(report(
                    state,
                    outcome_report(outcome, &[1], Rejections::default()),
                ))
            }
            _ => Err(HttpError::WrongMethod {
                allow: "PUT, DELETE",
            }),
        };
    }
    Err(HttpError::NotFound)
}

/// Constant-time bearer token check. Both sides are hashed first, so neither the content
/// nor the length of the configured token leaks through timing.
pub(in crate::http) fn check_token(
    expected: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), HttpError> {
    let Some(expected) = expected else {
        return Err(HttpError::Unauthorized(
            "ingest is disabled: no admin token is configured (admin_token, --admin-token, IOFD_ADMIN_TOKEN)",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(HttpError::Unauthorized(
            "missing bearer token (Authorization: Bearer <token>)",
        ))?;
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    if bool::from(a.ct_eq(&b)) {
        Ok(())
    } else {
        Err(HttpError::Unauthorized("wrong bearer token"))
    }
}

/// The query parameters the ingest routes take.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    mode: ApplyMode,
    partial: bool,
}

impl Query {
    fn parse(query: Option<&str>) -> Result<Query, HttpError> {
        let mut q = Query::default();
        let mut confirm_removal = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (k, v) {
                ("mode", "upsert") => q.mode = ApplyMode::Upsert,
                ("mode", "full_sync") => q.mode = ApplyMode::FullSync,
                ("confirm_removal", n) => {
                    confirm_removal = Some(n.parse::<usize>().map_err(|_| {
                        HttpError::BadRequest(format!(
                            "query parameter confirm_removal={n:?}: expected the number of products the full sync removes"
                        ))
                    })?)
                }
                ("partial", "true" | "1" | "") => q.partial = true,
                ("partial", "false" | "0") => q.partial = false,
                ("mode" | "partial", _) => {
                    return Err(HttpError::BadRequest(format!(
                    "query parameter {k}={v:?}: expected mode=upsert|full_sync, partial=true|false"
                )))
                }
                _ => {
                    return Err(HttpError::BadRequest(format!(
                        "unknown query parameter {k:?}"
                    )))
                }
            }
        }
        if let Some(removal) = confirm_removal {
            if q.mode != ApplyMode::FullSync {
                return Err(HttpError::BadRequest(
                    "confirm_removal goes with mode=full_sync".into(),
                ));
            }
            q.mode = ApplyMode::FullSyncConfirmed { removal };
        }
        Ok(q)
    }
}

/// Is the body a JSON array (`application/json`) or JSON Lines (anything text-like)?
fn is_array(headers: &HeaderMap) -> Result<bool, HttpError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(false);
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" => Ok(true),
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines"
        | "application/json-seq" | "text/plain" | "application/octet-stream" | "" => Ok(false),
        // curl -d sends this by default; the body is still taken as JSON Lines.
        "application/x-www-form-urlencoded" => Ok(false),
        other => Err(HttpError::UnsupportedMediaType(format!(
            "Content-Type {other:?}: send JSON Lines (application/x-ndjson) or a JSON array (application/json)"
        ))),
    }
}

/// Queue ops for the group committer and wait until they are durable.
/// With an object store, also until the batch's generation is in a manifest there: a 503
/// otherwise (the ERP sends the batch again; an update already applied is then unchanged).
async fn submit(state: &Arc<State>, ops: Vec<Op>, partial: bool) -> Result<Outcome, HttpError> {
    let outcome = state
        .committer
        .submit(store::Request {
            ops,
            partial,
            check_only: false,
        })
        .await
        .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))?;
    await_durable(state, outcome.generation).await?;
    Ok(outcome)
}

/// With an object store, wait until `generation` is in a manifest there (see [`submit`]).
pub(super) async fn await_durable(state: &State, generation: u64) -> Result<(), HttpError> {
    let Some(durable) = &state.durable else {
        return Ok(());
    };
    durable
        .wait(generation, crate::scaleout::task::DURABLE_TIMEOUT)
        .await
        .map_err(|why| {
            HttpError::Unavailable(format!(
                "applied on this writer as generation {generation} but not durable in the object store ({why}); send the batch again"
            ))
        })
}

fn store_error(e: store::StoreError) -> HttpError {
    tracing::error!(error = %e, "ingest apply failed");
    HttpError::Unavailable(format!(
        "the store could not apply the batch: {e}; nothing was applied"
    ))
}

/// Add a committer outcome's rejections; `lines[i]` is the line of op `i`.
fn add_rejections(rejected: &mut Rejections, outcome: Outcome, lines: &[u64]) {
    for (i, e) in outcome.rejected {
        let e: FieldError = e;
        rejected.push(RejectedLine {
            line: lines.get(i).copied().unwrap_or(0),
            field: Some(e.field),
            reason: e.reason,
        });
    }
}

/// A committer outcome as a report; `lines[i]` is the line of op `i`.
fn outcome_report(outcome: Outcome, lines: &[u64], mut rejected: Rejections) -> Report {
    let (generation, applied, unchanged, removed) = (
        outcome.generation,
        outcome.applied,
        outcome.unchanged,
        outcome.removed,
    );
    add_rejections(&mut rejected, outcome, lines);
    let (rejected, rejected_unlisted) = rejected.into_parts();
    Report {
        generation,
        applied,
        unchanged,
        removed,
        rejected,
        rejected_unlisted,
    }
}

/// 409: the mass-deletion guard refused a full sync; nothing applied. The numbers let the
/// caller check the export and, if it is right, confirm with `confirm_removal`.
fn removal_refused(state: &State, e: store::StoreError) -> Response<Body> {
    #[derive(serde::Serialize)]
    struct Refusal {
        generation: u64,
        reason: String,
        products: usize,
        would_remove: usize,
        full_sync_max_removal: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        confirm_removal: Option<usize>,
    }
    let reason = e.to_string();
    let store::StoreError::RemovalRefused {
        removing,
        products,
        max_percent,
        confirmed,
    } = e
    else {
        return HttpError::internal("a full sync", e).response();
    };
    json(
        StatusCode::CONFLICT,
        &Refusal {
            generation: state.store.snapshot().generation(),
            reason,
            products,
            would_remove: removing,
            full_sync_max_removal: max_percent.to_string(),
            confirm_removal: confirmed,
        },
    )
}

/// 422: rejected lines, nothing applied.
fn refused(state: &State, rejected: Rejections) -> Response<Body> {
    let (rejected, rejected_unlisted) = rejected.into_parts();
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &Report {
            generation: state.store.snapshot().generation(),
            rejected,
            rejected_unlisted,
            ..Report::default()
        },
    )
}

/// One rejected line as the rejections of a request.
fn one(r: impl Into<RejectedLine>) -> Rejections {
    let mut rejected = Rejections::default();
    rejected.push(r);
    rejected
}

/// 200 when everything offered was applied or `partial` allowed the rest to be skipped,
/// 422 when the request was refused as a whole.
fn report(state: &State, r: Report) -> Response<Body> {
    let rejected = (r.rejected.len() as u64).saturating_add(r.rejected_unlisted);
    state.metrics.ingest(
        "api",
        r.applied as u64,
        r.unchanged as u64,
        r.removed as u64,
        rejected,
    );
    let refused = !r.rejected.is_empty() && r.applied + r.unchanged + r.removed == 0;
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    json(status, &r)
}

pub(in crate::http) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let mut text = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    text.push(b'\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_LENGTH, text.len())
        .body(body::full(text))
        .unwrap_or_else(|_| Response::new(body::empty()))
}

#[cfg(test)]
mod tests;
