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

use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, BufRead, Read, Seek, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    // A request with a body holds an upload slot until it is answered.
    let _upload = match (req.method(), req.extensions().get::<Arc<Uploads>>()) {
        (&Method::POST | &Method::PUT, Some(uploads)) => Some(uploads.try_take()?),
        _ => None,
    };
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
                Ok(report(outcome_report(outcome, &[1], Rejections::default())))
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

/// Bytes of a body that have arrived, for [`ArrayLines`] to read without blocking: with
/// nothing there yet it says `WouldBlock`, and it resumes where it stopped.
#[derive(Debug, Default)]
struct Arrived {
    chunks: VecDeque<Bytes>,
    ended: bool,
}

struct ArrivedReader {
    arrived: Arc<Mutex<Arrived>>,
    current: Bytes,
}

impl Read for ArrivedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ArrivedReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // An empty chunk is no data, not the end of the body.
        while self.current.is_empty() {
            let mut arrived = self.arrived.lock().unwrap_or_else(|p| p.into_inner());
            match arrived.chunks.pop_front() {
                Some(chunk) => self.current = chunk,
                None if arrived.ended => break,
                None => return Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, n: usize) {
        let _ = self.current.split_to(n.min(self.current.len()));
    }
}

/// Whole lines of the body cut as it arrives (a JSON array first turned into one element
/// per line), so the parser gets only complete lines and never waits for the network. A
/// line over [`ingest::MAX_LINE_BYTES`] is dropped as it streams past and rejected; an
/// empty line keeps its place so later lines keep their numbers.
struct LineFeed {
    array: Option<(ArrayLines<ArrivedReader>, Arc<Mutex<Arrived>>)>,
    /// Whole lines not yet handed out, then the start of the unfinished one.
    buf: Vec<u8>,
    /// Where the unfinished line starts in `buf`.
    line_start: usize,
    /// Whole lines in `buf[..line_start]`.
    lines: u64,
    /// Lines handed out before them.
    before: u64,
    /// Length of the unfinished line once it is over the limit (its bytes are dropped).
    too_long: Option<u64>,
    rejected: Vec<Rejection>,
}

/// Whole lines for the parser: the body's lines `before + 1 ..`, and the ones already
/// rejected for their length.
struct Batch {
    bytes: Vec<u8>,
    before: u64,
    rejected: Vec<Rejection>,
}

impl LineFeed {
    fn new(array: bool) -> LineFeed {
        let array = array.then(|| {
            let arrived = Arc::new(Mutex::new(Arrived::default()));
            let reader = ArrivedReader {
                arrived: arrived.clone(),
                current: Bytes::new(),
            };
            (ArrayLines::new(reader), arrived)
        });
        LineFeed {
            array,
            buf: Vec::new(),
            line_start: 0,
            lines: 0,
            before: 0,
            too_long: None,
            rejected: Vec::new(),
        }
    }

    /// Take a piece of the body; `Err` when a JSON array is malformed.
    fn push(&mut self, data: Bytes) -> io::Result<()> {
        let Some((_, arrived)) = &self.array else {
            self.add(&data);
            return Ok(());
        };
        arrived
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .chunks
            .push_back(data);
        self.drain_array()
    }

    /// The body ended: the last line is whole, a JSON array must be closed.
    fn finish(&mut self) -> io::Result<()> {
        if let Some((_, arrived)) = &self.array {
            arrived.lock().unwrap_or_else(|p| p.into_inner()).ended = true;
            self.drain_array()?;
        }
        if self.line_start < self.buf.len() || self.too_long.is_some() {
            self.end_line();
        }
        Ok(())
    }

    fn drain_array(&mut self) -> io::Result<()> {
        let mut out = [0u8; 16 << 10];
        loop {
            let Some((lines, _)) = &mut self.array else {
                return Ok(());
            };
            match lines.read(&mut out) {
                Ok(0) => return Ok(()),
                Ok(n) => self.add(&out[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn add(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let piece = &bytes[..newline.unwrap_or(bytes.len())];
            let open = (self.buf.len() - self.line_start) as u64;
            match &mut self.too_long {
                Some(n) => *n += piece.len() as u64,
                None if open as usize + piece.len() > ingest::MAX_LINE_BYTES => {
                    self.too_long = Some(open + piece.len() as u64);
                    self.buf.truncate(self.line_start);
                }
                None => self.buf.extend_from_slice(piece),
            }
            let Some(at) = newline else {
                return;
            };
            self.end_line();
            bytes = &bytes[at + 1..];
        }
    }

    fn end_line(&mut self) {
        if let Some(n) = self.too_long.take() {
            self.rejected.push(Rejection {
                source: "http".into(),
                line: self.before + self.lines + 1,
                field: None,
                reason: format!(
                    "the line is {n} bytes long; the limit is {} bytes",
                    ingest::MAX_LINE_BYTES
                ),
            });
        }
        self.buf.push(b'\n');
        self.lines += 1;
        self.line_start = self.buf.len();
    }

    /// Bytes of whole lines waiting.
    fn ready(&self) -> usize {
        self.line_start
    }

    /// Lines cut so far.
    fn line(&self) -> u64 {
        self.before + self.lines
    }

    fn take(&mut self) -> Batch {
        let rest = self.buf.split_off(self.line_start);
        let batch = Batch {
            bytes: std::mem::replace(&mut self.buf, rest),
            before: self.before,
            rejected: std::mem::take(&mut self.rejected),
        };
        self.before += self.lines;
        self.lines = 0;
        self.line_start = 0;
        batch
    }
}

/// Takes the accepted lines of a body, one at a time.
trait Sink<T> {
    /// The raw lines of the next batch, before its records are taken.
    fn batch(&mut self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// Keep `record` (line `line`), reject it, or fail (`Err`: the request cannot go on).
    fn take(&mut self, line: u64, record: T) -> Result<Option<Rejection>, String>;
}

/// Parse one batch of whole lines into `sink`.
fn parse_batch<T: ingest::LineRecord, S: Sink<T>>(
    batch: Batch,
    sink: &mut S,
    rejected: &mut Rejections,
) -> Result<(), String> {
    for r in batch.rejected {
        rejected.push(r);
    }
    sink.batch(&batch.bytes)?;
    for item in JsonlReader::<_, T>::of("http", batch.bytes.as_slice()) {
        match item {
            Ok(parsed) => {
                if let Some(r) = sink.take(batch.before + parsed.line, parsed.record)? {
                    rejected.push(r);
                }
            }
            Err(LineError::Rejected(mut r)) => {
                r.line += batch.before;
                rejected.push(r);
            }
            // Reading from memory does not fail; should it, the request fails whole.
            Err(LineError::Fatal(e)) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Read a body frame by frame, each within `timeout` of the last: `None` at the end.
async fn next_frame(
    body: &mut Incoming,
    timeout: Duration,
    total: u64,
) -> Result<Option<Bytes>, HttpError> {
    loop {
        let frame = tokio::time::timeout(timeout, body.frame())
            .await
            .map_err(|_| {
                HttpError::RequestTimeout(format!(
                    "no body data for {} s after {total} bytes (ingest_body_timeout); nothing was applied",
                    timeout.as_secs()
                ))
            })?;
        match frame {
            None => return Ok(None),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
            Some(Err(e)) => {
                return Err(HttpError::BadRequest(format!(
                    "the upload ended early: after {total} bytes: {e}; nothing was applied"
                )))
            }
        }
    }
}

/// Cut the body into lines as it arrives and parse them a batch at a time on a blocking
/// thread, handing every accepted line to `sink` (which may reject it, or fail: a failure
/// is a 503). Returns the sink and the rejections.
async fn parse_body<T, S>(
    app: &Arc<App>,
    req: Request<Incoming>,
    sink: S,
) -> Result<(S, Rejections), HttpError>
where
    T: ingest::LineRecord + Send + 'static,
    S: Sink<T> + Send + 'static,
{
    let limit = app.config.ingest_body_limit;
    let timeout = app.config.ingest_body_timeout;
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
    let mut body = req.into_body();
    let mut feed = LineFeed::new(array);
    let mut parser = Parser::Idle((sink, Rejections::default()));
    let mut total = 0u64;
    let unreadable = |feed: &LineFeed, e: io::Error| {
        HttpError::BadRequest(format!(
            "{e} (after line {}); nothing was applied",
            feed.line()
        ))
    };
    loop {
        let Some(data) = next_frame(&mut body, timeout, total).await? else {
            break;
        };
        total += data.len() as u64;
        if total > limit {
            return Err(HttpError::PayloadTooLarge(format!(
                "the body is larger than the limit of {limit} bytes (ingest_body_limit); nothing was applied"
            )));
        }
        feed.push(data).map_err(|e| unreadable(&feed, e))?;
        if feed.ready() >= PARSE_BATCH_BYTES {
            // One batch is parsed while the next arrives.
            let state = parser.idle().await?;
            parser = Parser::start(state, feed.take());
        }
    }
    feed.finish().map_err(|e| unreadable(&feed, e))?;
    let state = parser.idle().await?;
    parse_on_the_side(state, feed.take()).await
}

/// The parser of a body: idle with its sink, or parsing a batch on a blocking thread.
enum Parser<S> {
    Idle((S, Rejections)),
    Busy(tokio::task::JoinHandle<Result<(S, Rejections), String>>),
}

impl<S: Send + 'static> Parser<S> {
    fn start<T>((mut sink, mut rejected): (S, Rejections), batch: Batch) -> Parser<S>
    where
        T: ingest::LineRecord + Send + 'static,
        S: Sink<T>,
    {
        Parser::Busy(tokio::task::spawn_blocking(move || {
            parse_batch(batch, &mut sink, &mut rejected).map(|()| (sink, rejected))
        }))
    }

    /// Wait for the batch being parsed, if any.
    async fn idle(self) -> Result<(S, Rejections), HttpError> {
        match self {
            Parser::Idle(state) => Ok(state),
            Parser::Busy(task) => task
                .await
                .map_err(|e| HttpError::Internal(format!("parser task: {e}")))?
                .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied"))),
        }
    }
}

/// [`parse_batch`] on a blocking thread (parsing is CPU work, sinks write spool files).
async fn parse_on_the_side<T, S>(
    (mut sink, mut rejected): (S, Rejections),
    batch: Batch,
) -> Result<(S, Rejections), HttpError>
where
    T: ingest::LineRecord + Send + 'static,
    S: Sink<T> + Send + 'static,
{
    if batch.bytes.is_empty() && batch.rejected.is_empty() {
        return Ok((sink, rejected));
    }
    tokio::task::spawn_blocking(move || {
        parse_batch(batch, &mut sink, &mut rejected).map(|()| (sink, rejected))
    })
    .await
    .map_err(|e| HttpError::Internal(format!("parser task: {e}")))?
    .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))
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
    let full_sync = query.mode.is_full_sync();
    let sink = RecordSink {
        store: app.store.clone(),
        full_sync,
        small: Vec::new(),
        spooled: None,
        seen: std::collections::HashMap::new(),
    };
    let (mut sink, rejected) = parse_body::<Record, _>(app, req, sink).await?;
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
    .map_err(|e| HttpError::Internal(format!("apply task: {e}")))?;
    let applied = match applied {
        Err(e @ store::StoreError::RemovalRefused { .. }) => return Ok(removal_refused(app, &e)),
        other => other.map_err(store_error)?,
    };
    let (rejected, rejected_unlisted) = rejected.into_parts();
    Ok(report(Report {
        generation: applied.generation,
        applied: applied.applied,
        unchanged: applied.unchanged,
        removed: applied.removed,
        rejected,
        rejected_unlisted,
    }))
}

/// Where the updates of a body go while it arrives: the lines themselves, in memory while
/// they are few, then in a spool file (unlinked at once, so nothing is left behind), to be
/// committed once the body is complete; so a stalled or broken upload applies nothing.
struct UpdateSink {
    dir: std::path::PathBuf,
    /// The raw lines, while in memory.
    held: Vec<u8>,
    /// The parsed updates with their lines, while in memory.
    parsed: Vec<(u64, Update)>,
    spool: Option<io::BufWriter<std::fs::File>>,
}

/// The updates of a complete body.
enum Received {
    Memory(Vec<(u64, Update)>),
    /// Every line of the body in order (overlong ones empty), read back group by group.
    Spooled(JsonlReader<io::BufReader<std::fs::File>, Update>),
}

impl UpdateSink {
    fn new(dir: std::path::PathBuf) -> UpdateSink {
        UpdateSink {
            dir,
            held: Vec::new(),
            parsed: Vec::new(),
            spool: None,
        }
    }

    /// Move what is held into a new spool file.
    fn spill(&mut self) -> Result<&mut io::BufWriter<std::fs::File>, String> {
        if self.spool.is_none() {
            static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let path = self.dir.join(format!(
                "updates-{}-{}.tmp",
                std::process::id(),
                SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let fail =
                |e: io::Error| format!("cannot spool the updates in {}: {e}", path.display());
            std::fs::create_dir_all(&self.dir).map_err(fail)?;
            let file = std::fs::File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(fail)?;
            // Unlinked at once: the open file is all that holds the bytes, crash or not.
            std::fs::remove_file(&path).map_err(fail)?;
            let mut writer = io::BufWriter::with_capacity(64 << 10, file);
            writer.write_all(&self.held).map_err(fail)?;
            self.held = Vec::new();
            self.parsed = Vec::new();
            self.spool = Some(writer);
        }
        Ok(self
            .spool
            .as_mut()
            .unwrap_or_else(|| unreachable!("just set")))
    }

    fn finish(self) -> Result<Received, String> {
        let Some(writer) = self.spool else {
            return Ok(Received::Memory(self.parsed));
        };
        let fail = |e: io::Error| format!("cannot read the spooled updates back: {e}");
        let mut file = writer.into_inner().map_err(|e| fail(e.into_error()))?;
        file.rewind().map_err(fail)?;
        Ok(Received::Spooled(JsonlReader::of(
            "http",
            io::BufReader::with_capacity(64 << 10, file),
        )))
    }
}

impl Sink<Update> for UpdateSink {
    fn batch(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.spool.is_none() && self.held.len() + bytes.len() <= PARSE_BATCH_BYTES {
            self.held.extend_from_slice(bytes);
            return Ok(());
        }
        self.spill()?
            .write_all(bytes)
            .map_err(|e| format!("cannot spool the updates: {e}"))
    }

    fn take(&mut self, line: u64, update: Update) -> Result<Option<Rejection>, String> {
        if self.spool.is_none() {
            if self.parsed.len() < GROUP_COMMIT_MAX_RECORDS {
                self.parsed.push((line, update));
            } else {
                // Too many to hold: from here on they are read back from the spool.
                self.spill()?;
            }
        }
        Ok(None)
    }
}

impl Received {
    /// The next group of at most `max` valid updates (rejected lines were reported while
    /// the body arrived); empty at the end.
    fn next_group(&mut self, max: usize) -> Result<Vec<(u64, Update)>, String> {
        match self {
            Received::Memory(all) => Ok(std::mem::take(all)),
            Received::Spooled(lines) => {
                let mut group = Vec::new();
                for item in lines.by_ref() {
                    match item {
                        Ok(parsed) => group.push((parsed.line, parsed.record)),
                        Err(LineError::Rejected(_)) => {}
                        Err(LineError::Fatal(e)) => return Err(e.to_string()),
                    }
                    if group.len() >= max {
                        break;
                    }
                }
                Ok(group)
            }
        }
    }
}

/// Updates of one body, committed once it has arrived whole:
///
/// - with rejected lines and no `partial`, the rest is still checked against the catalog
///   (unknown products and sizes) group by group so the answer lists every problem, but
///   nothing is applied;
/// - with `partial=true`, in groups of [`GROUP_COMMIT_MAX_RECORDS`] lines, each its own
///   durable generation, so a body of any size holds one group in memory;
/// - otherwise (atomic), as one request: one generation, all or nothing.
async fn updates(
    app: &Arc<App>,
    req: Request<Incoming>,
    query: Query,
) -> Result<Response<Body>, HttpError> {
    let sink = UpdateSink::new(app.config.store_dir().join("spool"));
    let (sink, mut rejected) = parse_body::<Update, _>(app, req, sink).await?;
    let check_only = !rejected.is_empty() && !query.partial;
    let group = if check_only || query.partial {
        GROUP_COMMIT_MAX_RECORDS
    } else {
        usize::MAX
    };
    let mut received = tokio::task::spawn_blocking(move || sink.finish())
        .await
        .map_err(|e| HttpError::Internal(format!("spool task: {e}")))?
        .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))?;
    let mut total = Report {
        generation: app.store.snapshot().generation(),
        ..Report::default()
    };
    let mut committed_to = None;
    loop {
        let (back, ops) = tokio::task::spawn_blocking(move || {
            let ops = received.next_group(group);
            (received, ops)
        })
        .await
        .map_err(|e| HttpError::Internal(format!("spool task: {e}")))?;
        received = back;
        let ops = ops.map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))?;
        let Some(&(first, _)) = ops.first() else {
            break;
        };
        let (lines, ops): (Vec<u64>, Vec<Op>) = ops
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
            .map_err(|e| match committed_to {
                None => HttpError::Unavailable(format!("{e}; nothing was applied")),
                Some(last) => HttpError::Unavailable(format!(
                    "{e}; lines up to {last} were applied (partial=true), lines from {first} on were not"
                )),
            })?;
        total.generation = outcome.generation;
        total.applied += outcome.applied;
        total.unchanged += outcome.unchanged;
        total.removed += outcome.removed;
        add_rejections(&mut rejected, outcome, &lines);
        if query.partial {
            committed_to = lines.last().copied();
        }
    }
    if check_only {
        return Ok(refused(app, rejected));
    }
    (total.rejected, total.rejected_unlisted) = rejected.into_parts();
    Ok(report(total))
}

/// The largest single product accepted by `PUT /v1/products/{id}`.
const MAX_PRODUCT_BYTES: u64 = ingest::MAX_LINE_BYTES as u64;

async fn put_product(
    app: &Arc<App>,
    req: Request<Incoming>,
    id: ProductId,
) -> Result<Response<Body>, HttpError> {
    let limit = MAX_PRODUCT_BYTES.min(app.config.ingest_body_limit);
    let mut incoming = req.into_body();
    let mut body = Vec::new();
    while let Some(data) = next_frame(
        &mut incoming,
        app.config.ingest_body_timeout,
        body.len() as u64,
    )
    .await?
    {
        if (body.len() + data.len()) as u64 > limit {
            return Err(HttpError::PayloadTooLarge(format!(
                "a product is at most {limit} bytes"
            )));
        }
        body.extend_from_slice(&data);
    }
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
        Some(Err(LineError::Rejected(r))) => return Ok(refused(app, one(r))),
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
            return Ok(refused(app, one(r)));
        }
    }
    let outcome = submit(app, vec![Op::Record(record)], false).await?;
    Ok(report(outcome_report(outcome, &[1], Rejections::default())))
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
fn removal_refused(app: &App, e: &store::StoreError) -> Response<Body> {
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
    let store::StoreError::RemovalRefused {
        removing,
        products,
        max_percent,
        confirmed,
    } = e
    else {
        return HttpError::Internal(e.to_string()).response();
    };
    json(
        StatusCode::CONFLICT,
        &Refusal {
            generation: app.store.snapshot().generation(),
            reason: e.to_string(),
            products: *products,
            would_remove: *removing,
            full_sync_max_removal: max_percent.to_string(),
            confirm_removal: *confirmed,
        },
    )
}

/// 422: rejected lines, nothing applied.
fn refused(app: &App, rejected: Rejections) -> Response<Body> {
    let (rejected, rejected_unlisted) = rejected.into_parts();
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &Report {
            generation: app.store.snapshot().generation(),
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
mod tests;
