//! `POST /v1/records` (a batch of catalog records) and `PUT /v1/products/{id}`.

use super::stream::next_frame;
use super::*;

/// Where the records of a body go while it is parsed. A batch small enough for a group
/// commit stays in memory, record by record; a larger one (or a full sync) goes to a spool
/// from the record that makes it large: products parked on disk (so a batch of any size holds
/// only its index in memory), dictionary entries and deletions in order.
pub(super) struct RecordTarget {
    store: Arc<store::Store>,
    full_sync: bool,
    /// Every record with its line, while the batch is small.
    small: Vec<(u64, Record)>,
    /// The batch once it is not.
    spooled: Option<store::SpooledBatch>,
}

impl RecordTarget {
    /// The batch in a spool: moved there now if it was small; later records go straight there.
    fn spill(&mut self) -> Result<&mut store::SpooledBatch, store::StoreError> {
        let mut spooled = match self.spooled.take() {
            Some(spooled) => spooled,
            None => store::SpooledBatch::new(self.store.spool()?),
        };
        for (line, record) in self.small.drain(..) {
            ingest::Target::push(&mut spooled, line, record)?;
        }
        Ok(self.spooled.insert(spooled))
    }
}

impl ingest::Target for RecordTarget {
    type Error = store::StoreError;
    fn push(&mut self, line: u64, record: Record) -> Result<(), store::StoreError> {
        if self.spooled.is_some() || self.full_sync || self.small.len() >= GROUP_COMMIT_MAX_RECORDS
        {
            let spooled = self.spill()?;
            ingest::Target::push(spooled, line, record)
        } else {
            self.small.push((line, record));
            Ok(())
        }
    }
}

/// The body's records under ingest's one batch builder (and its duplicate rule).
pub(super) type RecordSink = ingest::BatchBuilder<RecordTarget>;

impl Sink<Record> for RecordSink {
    fn take(&mut self, line: u64, record: Record) -> Result<Option<Rejection>, String> {
        self.add("http", line, record).map_err(|e| e.to_string())
    }
}

pub(super) async fn records(
    state: &Arc<State>,
    req: Request<Incoming>,
    query: Query,
) -> Result<Response<Body>, HttpError> {
    let full_sync = query.mode.is_full_sync();
    let sink = RecordSink::new(RecordTarget {
        store: state.store.clone(),
        full_sync,
        small: Vec::new(),
        spooled: None,
    });
    let (sink, rejected) = parse_body::<Record, _>(state, req, sink).await?;
    let mut sink = sink.into_target();
    if !rejected.is_empty() && (full_sync || !query.partial) {
        return Ok(refused(state, rejected));
    }
    if sink.spooled.is_none() && !full_sync {
        // Small: queued for a group commit with the other small requests.
        let (lines, ops): (Vec<u64>, Vec<Op>) = sink
            .small
            .into_iter()
            .map(|(line, r)| (line, Op::Record(r)))
            .unzip();
        let outcome = submit(state, ops, query.partial).await?;
        return Ok(report(state, outcome_report(outcome, &lines, rejected)));
    }
    let store = state.store.clone();
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
    .map_err(|e| HttpError::internal("apply task", e))?;
    let applied = match applied {
        Err(e @ store::StoreError::RemovalRefused { .. }) => return Ok(removal_refused(state, e)),
        other => other.map_err(store_error)?,
    };
    let (rejected, rejected_unlisted) = rejected.into_parts();
    Ok(report(
        state,
        Report {
            generation: applied.generation,
            applied: applied.applied,
            unchanged: applied.unchanged,
            removed: applied.removed,
            rejected,
            rejected_unlisted,
        },
    ))
}

/// The largest single product accepted by `PUT /v1/products/{id}`.
pub(super) const MAX_PRODUCT_BYTES: u64 = ingest::MAX_LINE_BYTES as u64;

pub(super) async fn put_product(
    state: &Arc<State>,
    req: Request<Incoming>,
    id: ProductId,
) -> Result<Response<Body>, HttpError> {
    let limit = MAX_PRODUCT_BYTES.min(state.ingest_body_limit);
    let mut incoming = req.into_body();
    let mut body = Vec::new();
    while let Some(data) =
        next_frame(&mut incoming, state.ingest_body_timeout, body.len() as u64).await?
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
        Some(Err(LineError::Rejected(r))) => return Ok(refused(state, one(r))),
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
            return Ok(refused(state, one(r)));
        }
    }
    let outcome = submit(state, vec![Op::Record(record)], false).await?;
    Ok(report(
        state,
        outcome_report(outcome, &[1], Rejections::default()),
    ))
}
