//! Requests of the ingest API, committed together: whole records and partial updates,
//! each request all-or-nothing unless it asks for partial application, several requests
//! sharing one new generation (one round of fsyncs). [`Committer`] is the queue in front of
//! it: while one group is being made durable the next requests gather, and they are
//! committed together as soon as the store is free (group commit).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;

use super::{ApplyMode, Store, StoreError};
use crate::catalog::{Dictionaries, FieldError, Product, ProductId, Record};
use crate::ingest::Update;

/// One operation of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A whole record: product, deletion or dictionary entry.
    Record(Record),
    /// A partial update of an existing product.
    Update(Update),
}

/// The operations of one request, in order. With `partial` false, one rejected operation
/// rejects the request and nothing of it is applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub ops: Vec<Op>,
    pub partial: bool,
    /// Check every op against the current state and report, but apply nothing (used when
    /// the request already has rejected lines, so that all problems are reported at once).
    pub check_only: bool,
}

/// What became of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The generation current after the commit (the old one when nothing changed).
    pub generation: u64,
    pub applied: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Operations not applied: their index in the request and why.
    pub rejected: Vec<(usize, FieldError)>,
}

impl Outcome {
    /// True when the request was refused as a whole (nothing applied).
    pub fn refused(&self) -> bool {
        !self.rejected.is_empty() && self.applied + self.unchanged + self.removed == 0
    }
}

/// The state of one product as the requests of a group see it.
type Overlay = HashMap<ProductId, Option<Product>>;

impl Store {
    /// Commit `requests` in order as one new generation: each sees the effects of the
    /// accepted ones before it. Partial updates are applied to the product as it is at that
    /// point; an unknown product or size rejects the update. Returns after the generation is
    /// durable; an error means nothing of the group was committed.
    pub fn commit(&self, requests: Vec<Request>) -> Result<Vec<Outcome>, StoreError> {
        let mut w = self.lock_writer()?;
        let old = self.current.load_full();
        let mut overlay = Overlay::new();
        let mut dicts: Option<Dictionaries> = None;
        let mut dict_records = Vec::new();
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            let mut local = Overlay::new();
            let mut local_dicts: Option<Dictionaries> = None;
            let mut local_records = Vec::new();
            let mut outcome = Outcome::default();
            for (index, op) in request.ops.into_iter().enumerate() {
                // The product as this request currently sees it.
                let current =
                    |id: ProductId, local: &Overlay| -> Result<Option<Product>, StoreError> {
                        if let Some(state) = local.get(&id).or_else(|| overlay.get(&id)) {
                            return Ok(state.clone());
                        }
                        old.product(id)
                            .map(|p| {
                                rkyv::deserialize::<Product, rkyv::rancor::Error>(p).map_err(|e| {
                                    StoreError::Deserialize {
                                        what: format!("product {id}"),
                                        source: e,
                                    }
                                })
                            })
                            .transpose()
                    };
                match op {
                    Op::Record(mut record) => {
                        if let Err(e) = record.normalize() {
                            outcome.rejected.push((index, e));
                            continue;
                        }
                        match record {
                            Record::Product(p) => {
                                let id = p.id;
                                if current(id, &local)?.as_ref() == Some(&*p) {
                                    outcome.unchanged += 1;
                                } else {
                                    outcome.applied += 1;
                                }
                                local.insert(id, Some(*p));
                            }
                            Record::DeleteProduct { id } => {
                                if current(id, &local)?.is_some() {
                                    outcome.removed += 1;
                                } else {
                                    outcome.unchanged += 1;
                                }
                                local.insert(id, None);
                            }
                            dict => {
                                let d = match &mut local_dicts {
                                    Some(d) => d,
                                    None => local_dicts.insert(match &dicts {
                                        Some(d) => d.clone(),
                                        None => {
                                            rkyv::deserialize::<_, rkyv::rancor::Error>(old.dicts())
                                                .map_err(|e| StoreError::Deserialize {
                                                    what: "dictionaries".into(),
                                                    source: e,
                                                })?
                                        }
                                    }),
                                };
                                let mut tally = super::apply::Tally::default();
                                super::apply::apply_dicts(
                                    d,
                                    std::slice::from_ref(&dict),
                                    &mut tally,
                                );
                                outcome.applied += tally.applied;
                                outcome.unchanged += tally.unchanged;
                                local_records.push(dict);
                            }
                        }
                    }
                    Op::Update(mut update) => {
                        if let Err(e) = update.normalize() {
                            outcome.rejected.push((index, e));
                            continue;
                        }
                        let id = update.product();
                        let Some(mut product) = current(id, &local)? else {
                            outcome.rejected.push((
                                index,
                                FieldError::new("product", format!("unknown product {id}")),
                            ));
                            continue;
                        };
                        match update.apply_to(&mut product) {
                            Ok(true) => {
                                outcome.applied += 1;
                                local.insert(id, Some(product));
                            }
                            Ok(false) => outcome.unchanged += 1,
                            Err(e) => outcome.rejected.push((index, e)),
                        }
                    }
                }
            }
            if request.check_only || (!outcome.rejected.is_empty() && !request.partial) {
                // All or nothing: drop what the request did.
                outcome.applied = 0;
                outcome.unchanged = 0;
                outcome.removed = 0;
            } else {
                overlay.extend(local);
                if local_dicts.is_some() {
                    dicts = local_dicts;
                }
                dict_records.extend(local_records);
            }
            outcomes.push(outcome);
        }

        let mut records = dict_records;
        records.extend(overlay.into_iter().map(|(id, state)| match state {
            Some(p) => Record::Product(Box::new(p)),
            None => Record::DeleteProduct { id },
        }));
        let generation = if records.is_empty() {
            old.generation()
        } else {
            let mut written = Vec::new();
            let result = self.apply_locked(&mut w, &old, records, ApplyMode::Upsert, &mut written);
            if result.is_err() {
                self.discard(&w, &written);
            }
            result?.generation
        };
        for o in &mut outcomes {
            o.generation = generation;
        }
        Ok(outcomes)
    }
}

/// Why a request handed to the [`Committer`] was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The store failed; nothing of the request's group was committed.
    #[error("the store could not commit: {0}")]
    Store(#[source] std::sync::Arc<StoreError>),
    /// The committer has stopped (the server is shutting down).
    #[error("the committer has stopped")]
    Stopped,
}

struct Job {
    request: Request,
    reply: tokio::sync::oneshot::Sender<Result<Outcome, CommitError>>,
}

/// What the writer is sent: a request to commit, or the order to stop once the requests
/// queued before it are committed.
enum Message {
    Commit(Job),
    Stop,
}

/// The most requests committed together; more wait for the next round.
const MAX_GROUP: usize = 4096;

/// Group commit: a writer that takes every request queued while the previous group was being
/// made durable and commits them as one generation.
#[derive(Clone)]
pub struct Committer {
    writer: Arc<Writer>,
}

/// The queue, and the writer thread when [`Committer::start`] started one: that thread is
/// joined when the last [`Committer`] clone is dropped, as it holds the store (and so its
/// directory lock), which is free again once the committer is gone.
struct Writer {
    queue: Option<mpsc::Sender<Message>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the writer after the group in progress.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer's loop, not yet running: [`CommitWorker::run`] it on a thread of your own.
pub struct CommitWorker {
    store: Arc<Store>,
    jobs: mpsc::Receiver<Message>,
}

impl CommitWorker {
    /// Commit queued requests until [`Committer::stop`] or until every [`Committer`] clone is
    /// dropped. Blocking.
    pub fn run(self) {
        let CommitWorker { store, jobs } = self;
        let mut stopping = false;
        while !stopping {
            let Ok(Message::Commit(first)) = jobs.recv() else {
                return;
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(Message::Commit(job)) => group.push(job),
                    Ok(Message::Stop) => {
                        stopping = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            commit_group(&store, group);
        }
    }
}

fn commit_group(store: &Store, mut group: Vec<Job>) {
    let requests = group
        .iter_mut()
        .map(|j| std::mem::take(&mut j.request))
        .collect();
    let started = std::time::Instant::now();
    // A panic must not take the writer (and so all ingest) down.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.commit(requests)))
        .unwrap_or_else(|_| {
            Err(StoreError::Options(
                "the commit panicked; nothing was applied".into(),
            ))
        });
    tracing::debug!(
        requests = group.len(),
        micros = started.elapsed().as_micros() as u64,
        "group committed"
    );
    match result {
        Ok(outcomes) => {
            for (job, outcome) in group.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed; nothing of the group was applied");
            // Every request of the group shares the one failure.
            let e = Arc::new(e);
            for job in group {
                let _ = job.reply.send(Err(CommitError::Store(Arc::clone(&e))));
            }
        }
    }
}

impl Committer {
    /// A committer and its writer loop, which the caller runs (the server runs it as one of
    /// its tasks). Requests submitted before the loop runs wait for it.
    pub fn new(store: Arc<Store>) -> (Committer, CommitWorker) {
        let (queue, jobs) = mpsc::channel::<Message>();
        let committer = Committer {
            writer: Arc::new(Writer {
                queue: Some(queue),
                thread: None,
            }),
        };
        (committer, CommitWorker { store, jobs })
    }

    /// A committer with its writer on a thread of its own, which stops when the last clone
    /// of the committer is dropped.
    pub fn start(store: Arc<Store>) -> std::io::Result<Committer> {
        let (queue, jobs) = mpsc::channel::<Message>();
        let worker = CommitWorker { store, jobs };
        let thread = std::thread::Builder::new()
            .name("iofd-commit".into())
            .spawn(move || worker.run())?;
        Ok(Committer {
            writer: Arc::new(Writer {
                queue: Some(queue),
                thread: Some(thread),
            }),
        })
    }

    /// Have the writer stop once the requests queued so far are committed; later requests
    /// are refused with [`CommitError::Stopped`].
    pub fn stop(&self) {
        if let Some(queue) = &self.writer.queue {
            let _ = queue.send(Message::Stop);
        }
    }

    /// Queue `request` and wait until it is committed (durable) or refused.
    pub async fn submit(&self, request: Request) -> Result<Outcome, CommitError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer
            .queue
            .as_ref()
            .ok_or(CommitError::Stopped)?
            .send(Message::Commit(Job { request, reply }))
            .map_err(|_| CommitError::Stopped)?;
        answer.await.map_err(|_| CommitError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{read_jsonl, JsonlReader};
    use crate::store::StoreOptions;

    fn records(text: &str) -> Vec<Op> {
        let batch = read_jsonl("t", text.as_bytes()).expect("read");
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        batch
            .records
            .into_iter()
            .map(|l| Op::Record(l.record))
            .collect()
    }

    fn updates(text: &str) -> Vec<Op> {
        JsonlReader::<_, Update>::of("u", text.as_bytes())
            .map(|l| Op::Update(l.expect("valid").record))
            .collect()
    }

    const CATALOG: &str = r#"{"kind":"product","id":1,"vat":23,"description":{"name":{"pol":"A"}},"sizes":[{"id":"S","code":"1-S"},{"id":"M","code":"1-M"}]}
{"kind":"product","id":2,"vat":23,"description":{"name":{"pol":"B"}}}
{"kind":"producer","id":1,"name":"Acme"}"#;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
        let out = store
            .commit(vec![Request {
                ops: records(CATALOG),
                ..Request::default()
            }])
            .expect("commit");
        assert_eq!(out[0].applied, 3);
        assert_eq!(out[0].generation, 1);
        (dir, store)
    }

    fn stock(store: &Store, id: u64, size: &str, warehouse: u32) -> Option<String> {
        let snap = store.snapshot();
        let p = snap.product(id)?;
        let s = p.sizes.iter().find(|s| s.id.as_str() == size)?;
        let l = s
            .stock
            .iter()
            .find(|l| l.warehouse.to_native() == warehouse)?;
        Some(crate::catalog::decimal(&l.quantity).to_string())
    }

    #[test]
    fn a_group_shares_one_generation_and_later_requests_see_earlier_ones() {
        let (_dir, store) = store();
        let out = store
            .commit(vec![
                Request {
                    ops: updates(
                        r#"{"kind":"stock","product":1,"size":"S","warehouse":1,"quantity":5}"#,
                    ),
                    ..Request::default()
                },
                Request {
                    ops: updates(
                        r#"{"kind":"stock","product":1,"size":"S","warehouse":1,"quantity":7}
{"kind":"stock","product":2,"warehouse":1,"quantity":3}"#,
                    ),
                    ..Request::default()
                },
                Request {
                    ops: records(
                        r#"{"kind":"delete_product","id":2}
{"kind":"delete_product","id":99}"#,
                    ),
                    ..Request::default()
                },
            ])
            .expect("commit");
        assert!(out.iter().all(|o| o.generation == 2), "{out:?}");
        assert_eq!(
            (out[1].applied, out[2].removed, out[2].unchanged),
            (2, 1, 1)
        );
        assert_eq!(stock(&store, 1, "S", 1).as_deref(), Some("7"));
        assert!(store.snapshot().product(2).is_none());
    }

    #[test]
    fn a_rejected_update_refuses_its_request_unless_partial() {
        let (_dir, store) = store();
        let bad = r#"{"kind":"stock","product":1,"size":"S","warehouse":1,"quantity":5}
{"kind":"stock","product":42,"size":"S","warehouse":1,"quantity":5}
{"kind":"stock","product":1,"size":"XL","warehouse":1,"quantity":5}"#;
        let out = store
            .commit(vec![Request {
                ops: updates(bad),
                ..Request::default()
            }])
            .expect("commit");
        assert!(out[0].refused());
        assert_eq!(out[0].generation, 1, "nothing written");
        let rejected: Vec<(usize, &str)> = out[0]
            .rejected
            .iter()
            .map(|(i, e)| (*i, e.field.as_str()))
            .collect();
        assert_eq!(rejected, [(1, "product"), (2, "size")]);
        assert_eq!(out[0].rejected[0].1.reason, "unknown product 42");
        assert_eq!(stock(&store, 1, "S", 1), None);

        let out = store
            .commit(vec![Request {
                ops: updates(bad),
                partial: true,
                ..Request::default()
            }])
            .expect("commit");
        assert_eq!(
            (out[0].applied, out[0].rejected.len(), out[0].generation),
            (1, 2, 2)
        );
        assert_eq!(stock(&store, 1, "S", 1).as_deref(), Some("5"));
    }

    #[test]
    fn unchanged_requests_write_nothing() {
        let (_dir, store) = store();
        let out = store
            .commit(vec![Request {
                ops: records(CATALOG),
                ..Request::default()
            }])
            .expect("commit");
        assert_eq!((out[0].unchanged, out[0].generation), (3, 1));
    }

    #[test]
    fn the_committer_answers_every_request() {
        let (_dir, store) = store();
        let store = Arc::new(store);
        let committer = Committer::start(store.clone()).expect("start");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let outcomes = rt.block_on(async {
            let mut tasks = Vec::new();
            for q in 0..20 {
                let c = committer.clone();
                let text = format!(
                    r#"{{"kind":"stock","product":1,"size":"M","warehouse":{q},"quantity":{q}}}"#
                );
                tasks.push(tokio::spawn(async move {
                    c.submit(Request {
                        ops: updates(&text),
                        ..Request::default()
                    })
                    .await
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("task"));
            }
            out
        });
        assert!(outcomes
            .iter()
            .all(|o| o.as_ref().is_ok_and(|o| o.applied == 1)));
        let snap = store.snapshot();
        assert_eq!(snap.product(1).expect("product").sizes[1].stock.len(), 20);
        // All 20 were queued before the first commit finished: fewer generations than requests.
        assert!(snap.generation() < 21, "{}", snap.generation());
    }
}
