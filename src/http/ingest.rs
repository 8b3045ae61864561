//! The admin ingest API: how an ERP feeds the store over HTTP.
//!
//! - `POST /v1/records?mode=upsert|full_sync&partial=true` — JSON Lines of records (or a JSON
//!   array with `Content-Type: application/json`);
//! - `PUT /v1/products/{id}` — one product; `DELETE /v1/products/{id}`;
//! - `POST /v1/updates?partial=true` — JSON Lines (or an array) of stock and price updates.
//!
//! Every answer is `{"generation","applied","unchanged","removed","rejected":[{"line","field",
//! "reason"}]}` and is sent only after the change is durable. A request with a rejected line
//! applies nothing (422) unless `partial=true` (200, the valid lines applied); a full sync is
//! never applied partially, since a rejected product would be deleted by it.
//!
//! Bodies are parsed as they arrive, line by line, on a blocking thread fed through a small
//! channel: the raw body is never held. What is held is the parsed batch, since a batch is
//! applied atomically (see the README for the memory this takes). Small requests go through
//! the group committer and share fsyncs; large ones and full syncs are applied on their own.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{body, Body, HttpError};
use crate::app::App;
use crate::catalog::{FieldError, ProductId, Record};
use crate::ingest::{self, ArrayLines, JsonlReader, LineError, Rejection, Update};
use crate::store::{self, ApplyMode, Op, Outcome};

/// Requests with more records than this are applied on their own rather than queued for a
/// group commit: they would hold up the small ones behind them, and gain nothing.
const GROUP_COMMIT_MAX_RECORDS: usize = 1000;

/// Frames of request body in flight between the socket and the parser.
const FEED_FRAMES: usize = 16;

/// The JSON answer of every ingest request.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub generation: u64,
    pub applied: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub rejected: Vec<RejectedLine>,
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
pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match answer(app, req).await {
        Ok(r) => r,
        Err(e) => e.response(),
    };
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

async fn answer(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, HttpError> {
    check_token(app.config.admin_token.as_deref(), req.headers())?;
    let path = req.uri().path().to_owned();
    let query = Query::parse(req.uri().query())?;
    if path == "/v1/records" {
        if req.method() != Method::POST {
            return Err(HttpError::WrongMethod { allow: "POST" });
        }
        return records(app, req, query).await;
    }
    if path == "/v1/updates" {
        if req.method() != Method::POST {
            return Err(HttpError::WrongMethod { allow: "POST" });
        }
        return updates(app, req, query).await;
    }
    if let Some(id) = path.strip_prefix("/v1/products/") {
        let id: ProductId = id
            .parse()
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| HttpError::BadRequest("product ids are positive integers".into()))?;
        return match *req.method() {
            Method::PUT => put_product(app, req, id).await,
            Method::DELETE => {
                let op = Op::Record(Record::DeleteProduct { id });
                let outcome = submit(app, vec![op], false).await?;
                Ok(report(outcome_report(outcome, &[1], Vec::new())))
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
fn check_token(expected: Option<&str>, headers: &HeaderMap) -> Result<(), HttpError> {
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
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (k, v) {
                ("mode", "upsert") => q.mode = ApplyMode::Upsert,
                ("mode", "full_sync") => q.mode = ApplyMode::FullSync,
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

/// Why the body feed stopped early.
#[derive(Debug, Clone)]
enum Stop {
    TooLarge(u64),
    Broken(String),
}

/// The request body as a blocking `Read`, fed by an async pump.
struct Feed {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
    stop: Arc<Mutex<Option<Stop>>>,
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.chunk = b,
                None => {
                    let stop = self.stop.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    return match stop {
                        None => Ok(0),
                        Some(Stop::TooLarge(limit)) => Err(io::Error::other(format!(
                            "the body is larger than the limit of {limit} bytes"
                        ))),
                        Some(Stop::Broken(e)) => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the upload ended early: {e}"),
                        )),
                    };
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// Move the body into a channel, counting bytes against `limit`.
async fn pump(
    mut body: Incoming,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    stop: Arc<Mutex<Option<Stop>>>,
    limit: u64,
) {
    let mut total = 0u64;
    let set = |s: Stop| *stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                total += data.len() as u64;
                if total > limit {
                    set(Stop::TooLarge(limit));
                    return;
                }
                if tx.send(data).await.is_err() {
                    return; // the parser stopped reading
                }
            }
            Err(e) => {
                set(Stop::Broken(format!("after {total} bytes: {e}")));
                return;
            }
        }
    }
}

/// Takes the accepted lines of a body, one at a time.
trait Sink<T> {
    /// Keep `record` (line `line`), reject it, or fail (`Err`: the request cannot go on).
    fn take(&mut self, line: u64, record: T) -> Result<Option<Rejection>, String>;
}

/// Keeps every line in memory (partial updates: small records).
struct Lines<T>(Vec<(u64, T)>);

impl<T> Sink<T> for Lines<T> {
    fn take(&mut self, line: u64, record: T) -> Result<Option<Rejection>, String> {
        self.0.push((line, record));
        Ok(None)
    }
}

/// Parse the body on a blocking thread as it arrives, handing every accepted line to `sink`
/// (which may reject it, or fail: a failure is a 503). Returns the sink and the rejections.
async fn parse_body<T, S>(
    app: &Arc<App>,
    req: Request<Incoming>,
    mut sink: S,
) -> Result<(S, Vec<Rejection>), HttpError>
where
    T: ingest::LineRecord + Send + 'static,
    S: Sink<T> + Send + 'static,
{
    let limit = app.config.ingest_body_limit;
    let array = is_array(req.headers())?;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(HttpError::PayloadTooLarge(format!(
                "the body is {len} bytes; the limit is {limit} bytes (ingest_body_limit)"
            )));
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel(FEED_FRAMES);
    let stop = Arc::new(Mutex::new(None));
    let pump = tokio::spawn(pump(req.into_body(), tx, stop.clone(), limit));
    let feed = Feed {
        rx,
        chunk: Bytes::new(),
        stop: stop.clone(),
    };
    enum Failed {
        Read(u64, io::Error),
        Sink(String),
    }
    let parsed = tokio::task::spawn_blocking(move || {
        let reader: Box<dyn Read> = if array {
            Box::new(ArrayLines::new(io::BufReader::with_capacity(
                64 << 10,
                feed,
            )))
        } else {
            Box::new(feed)
        };
        let mut lines =
            JsonlReader::<_, T>::of("http", io::BufReader::with_capacity(64 << 10, reader));
        let mut rejected = Vec::new();
        for item in lines.by_ref() {
            match item {
                Ok(parsed) => match sink.take(parsed.line, parsed.record) {
                    Ok(Some(r)) => rejected.push(r),
                    Ok(None) => {}
                    Err(e) => return Err(Failed::Sink(e)),
                },
                Err(LineError::Rejected(r)) => rejected.push(r),
                Err(LineError::Fatal(e)) => {
                    let ingest::IngestError::Io { source, .. } = e;
                    return Err(Failed::Read(lines.line(), source));
                }
            }
        }
        Ok((sink, rejected))
    })
    .await
    .map_err(|e| HttpError::Internal(format!("parser task: {e}")))?;
    pump.abort();
    match parsed {
        Ok(p) => Ok(p),
        Err(Failed::Sink(e)) => Err(HttpError::Unavailable(format!("{e}; nothing was applied"))),
        Err(Failed::Read(line, e)) => {
            let at = if line > 0 {
                format!(" (after line {line})")
            } else {
                String::new()
            };
            let stop = stop.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Err(match stop {
                Some(Stop::TooLarge(_)) => {
                    HttpError::PayloadTooLarge(format!("{e}{at}; nothing was applied"))
                }
                _ => HttpError::BadRequest(format!("{e}{at}; nothing was applied")),
            })
        }
    }
}

/// Where the records of a body go while it is parsed. A batch small enough for a group
/// commit stays in memory, record by record; a larger one (or a full sync) goes to a spool
/// from the record that makes it large: products parked on disk (so a batch of any size holds
/// only its index in memory), dictionary entries and deletions in order.
struct RecordSink {
    store: Arc<store::Store>,
    full_sync: bool,
    /// Every record with its line, while the batch is small.
    small: Vec<(u64, Record)>,
    /// The batch once it is not.
    spooled: Option<Spooled>,
    /// First line of each product id, to reject duplicates.
    seen: std::collections::HashMap<ProductId, u64>,
}

/// A batch on its way to [`store::Store::apply_spooled`].
struct Spooled {
    spool: store::Spool,
    dicts: Vec<Record>,
    changes: Vec<store::Parked>,
}

impl Spooled {
    fn new(store: &store::Store) -> Result<Spooled, store::StoreError> {
        Ok(Spooled {
            spool: store.spool()?,
            dicts: Vec::new(),
            changes: Vec::new(),
        })
    }

    fn push(&mut self, record: Record) -> Result<(), store::StoreError> {
        match record {
            Record::Product(p) => self.changes.push(self.spool.park(&p)?),
            Record::DeleteProduct { id } => self.changes.push(store::Parked::Delete(id)),
            dict => self.dicts.push(dict),
        }
        Ok(())
    }
}

impl RecordSink {
    /// The batch in a spool: moved there now if it was small; later records go straight there.
    fn spill(&mut self) -> Result<&mut Spooled, store::StoreError> {
        let mut spooled = match self.spooled.take() {
            Some(spooled) => spooled,
            None => Spooled::new(&self.store)?,
        };
        for (_, record) in self.small.drain(..) {
            spooled.push(record)?;
        }
        Ok(self.spooled.insert(spooled))
    }
}

impl Sink<Record> for RecordSink {
    fn take(&mut self, line: u64, record: Record) -> Result<Option<Rejection>, String> {
        if let Record::Product(p) = &record {
            if let Some(first) = self.seen.get(&p.id) {
                return Ok(Some(Rejection {
                    source: "http".into(),
                    line,
                    field: Some("id".into()),
                    reason: format!("duplicate of product {} on line {first}", p.id),
                }));
            }
            self.seen.insert(p.id, line);
        }
        if self.spooled.is_some() || self.full_sync || self.small.len() >= GROUP_COMMIT_MAX_RECORDS
        {
            self.spill()
                .and_then(|spooled| spooled.push(record))
                .map_err(|e| e.to_string())?;
        } else {
            self.small.push((line, record));
        }
        Ok(None)
    }
}

async fn records(
    app: &Arc<App>,
    req: Request<Incoming>,
    query: Query,
) -> Result<Response<Body>, HttpError> {
    let full_sync = query.mode == ApplyMode::FullSync;
    let sink = RecordSink {
        store: app.store.clone(),
        full_sync,
        small: Vec::new(),
        spooled: None,
        seen: std::collections::HashMap::new(),
    };
    let (mut sink, rejected) = parse_body::<Record, _>(app, req, sink).await?;
    let rejected: Vec<RejectedLine> = rejected.into_iter().map(Into::into).collect();
    if !rejected.is_empty() && (full_sync || !query.partial) {
        return Ok(refused(app, rejected));
    }
    if sink.spooled.is_none() && !full_sync {
        // Small: queued for a group commit with the other small requests.
        let (lines, ops): (Vec<u64>, Vec<Op>) = sink
            .small
            .into_iter()
            .map(|(line, r)| (line, Op::Record(r)))
            .unzip();
        let outcome = submit(app, ops, query.partial).await?;
        return Ok(report(outcome_report(outcome, &lines, rejected)));
    }
    let store = app.store.clone();
    let mode = query.mode;
    let applied = tokio::task::spawn_blocking(move || {
        let spooled = sink.spill()?;
        let (dicts, changes) = (
            std::mem::take(&mut spooled.dicts),
            std::mem::take(&mut spooled.changes),
        );
        store.apply_spooled(dicts, changes, &mut spooled.spool, mode)
    })
    .await
    .map_err(|e| HttpError::Internal(format!("apply task: {e}")))?
    .map_err(store_error)?;
    Ok(report(Report {
        generation: applied.generation,
        applied: applied.applied,
        unchanged: applied.unchanged,
        removed: applied.removed,
        rejected,
    }))
}

async fn updates(
    app: &Arc<App>,
    req: Request<Incoming>,
    query: Query,
) -> Result<Response<Body>, HttpError> {
    let (parsed, rejected) = parse_body::<Update, _>(app, req, Lines(Vec::new())).await?;
    let rejected: Vec<RejectedLine> = rejected.into_iter().map(Into::into).collect();
    // With rejected lines and no `partial`, the rest is still checked against the catalog
    // (unknown products and sizes) so the answer lists every problem, but nothing is applied.
    let check_only = !rejected.is_empty() && !query.partial;
    let (lines, ops): (Vec<u64>, Vec<Op>) = parsed
        .0
        .into_iter()
        .map(|(line, u)| (line, Op::Update(u)))
        .unzip();
    let outcome = app
        .committer
        .submit(store::Request {
            ops,
            partial: query.partial,
            check_only,
        })
        .await
        .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))?;
    let mut r = outcome_report(outcome, &lines, rejected);
    if check_only {
        return Ok(refused(app, r.rejected));
    }
    r.rejected.sort_by_key(|x| x.line);
    Ok(report(r))
}

/// The largest single product accepted by `PUT /v1/products/{id}`.
const MAX_PRODUCT_BYTES: u64 = ingest::MAX_LINE_BYTES as u64;

async fn put_product(
    app: &Arc<App>,
    req: Request<Incoming>,
    id: ProductId,
) -> Result<Response<Body>, HttpError> {
    let limit = MAX_PRODUCT_BYTES.min(app.config.ingest_body_limit);
    let body = http_body_util::Limited::new(req.into_body(), limit as usize)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                HttpError::PayloadTooLarge(format!("a product is at most {limit} bytes"))
            } else {
                HttpError::BadRequest(format!("the upload ended early: {e}"))
            }
        })?
        .to_bytes();
    let mut value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        HttpError::BadRequest(format!(
            "invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let serde_json::Value::Object(object) = &mut value else {
        return Err(HttpError::BadRequest(
            "expected one product as a JSON object".into(),
        ));
    };
    match object.get("kind").and_then(|k| k.as_str()) {
        None | Some("product") => {}
        Some(other) => {
            return Err(HttpError::BadRequest(format!(
                "kind {other:?}: PUT /v1/products/{{id}} takes a product"
            )))
        }
    }
    object.insert("kind".into(), "product".into());
    object.entry("id").or_insert(id.into());
    // Through the line parser: the same checks and field paths as a JSON Lines record.
    let text = value.to_string();
    let parsed = JsonlReader::new("http", text.as_bytes()).next();
    let record = match parsed {
        Some(Ok(line)) => line.record,
        Some(Err(LineError::Rejected(r))) => return Ok(refused(app, vec![r.into()])),
        Some(Err(LineError::Fatal(e))) => return Err(HttpError::BadRequest(e.to_string())),
        None => return Err(HttpError::BadRequest("empty body".into())),
    };
    if let Record::Product(p) = &record {
        if p.id != id {
            let r = RejectedLine {
                line: 1,
                field: Some("id".into()),
                reason: format!(
                    "the body is product {} but the URL names product {id}",
                    p.id
                ),
            };
            return Ok(refused(app, vec![r]));
        }
    }
    let outcome = submit(app, vec![Op::Record(record)], false).await?;
    Ok(report(outcome_report(outcome, &[1], Vec::new())))
}

/// Queue ops for the group committer and wait until they are durable.
async fn submit(app: &Arc<App>, ops: Vec<Op>, partial: bool) -> Result<Outcome, HttpError> {
    app.committer
        .submit(store::Request {
            ops,
            partial,
            check_only: false,
        })
        .await
        .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))
}

fn store_error(e: store::StoreError) -> HttpError {
    tracing::error!(error = %e, "ingest apply failed");
    HttpError::Unavailable(format!(
        "the store could not apply the batch: {e}; nothing was applied"
    ))
}

/// A committer outcome as a report; `lines[i]` is the line of op `i`.
fn outcome_report(outcome: Outcome, lines: &[u64], mut rejected: Vec<RejectedLine>) -> Report {
    rejected.extend(
        outcome
            .rejected
            .into_iter()
            .map(|(i, e): (usize, FieldError)| RejectedLine {
                line: lines.get(i).copied().unwrap_or(0),
                field: Some(e.field),
                reason: e.reason,
            }),
    );
    rejected.sort_by_key(|r| r.line);
    Report {
        generation: outcome.generation,
        applied: outcome.applied,
        unchanged: outcome.unchanged,
        removed: outcome.removed,
        rejected,
    }
}

/// 422: rejected lines, nothing applied.
fn refused(app: &App, mut rejected: Vec<RejectedLine>) -> Response<Body> {
    rejected.sort_by_key(|r| r.line);
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &Report {
            generation: app.store.snapshot().generation(),
            rejected,
            ..Report::default()
        },
    )
}

/// 200 when everything offered was applied or `partial` allowed the rest to be skipped,
/// 422 when the request was refused as a whole.
fn report(r: Report) -> Response<Body> {
    let refused = !r.rejected.is_empty() && r.applied + r.unchanged + r.removed == 0;
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    json(status, &r)
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
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
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            check_token(Some("secret-token"), &h),
            Err(HttpError::Unauthorized(m)) if m.starts_with("missing")
        ));
        h.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert!(matches!(
            check_token(Some("secret-token"), &h),
            Err(HttpError::Unauthorized("wrong bearer token"))
        ));
        h.insert(
            header::AUTHORIZATION,
            "Bearer secret-token".parse().unwrap(),
        );
        assert!(check_token(Some("secret-token"), &h).is_ok());
        assert!(
            check_token(None, &h).is_err(),
            "no token configured: refused"
        );
    }

    #[test]
    fn queries_are_strict() {
        assert_eq!(Query::parse(None).unwrap(), Query::default());
        let q = Query::parse(Some("mode=full_sync&partial=true")).unwrap();
        assert_eq!((q.mode, q.partial), (ApplyMode::FullSync, true));
        assert!(Query::parse(Some("mode=replace")).is_err());
        assert!(Query::parse(Some("parital=true")).is_err());
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_array(&h).unwrap());
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_array(&h).unwrap());
        h.insert(
            header::CONTENT_TYPE,
            "application/x-ndjson".parse().unwrap(),
        );
        assert!(!is_array(&h).unwrap());
        h.insert(header::CONTENT_TYPE, "application/xml".parse().unwrap());
        assert!(is_array(&h).is_err());
    }
}
