//! The writer's upload task and what ingest waits on before it acknowledges: after each
//! store generation (and on a short tick, for files rendered after it) the data directory is
//! scanned and published; a generation counts as durable once a manifest holding it is in
//! the bucket.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{FollowOutcome, Follower, HashCache, ScaleError, Writer};
use crate::config::StoreTarget;
use crate::metrics::Metrics;
use crate::store::Store;

/// How often the data directory is rescanned between generations: rendered files appear
/// shortly after the generation they follow.
const TICK: Duration = Duration::from_millis(100);

/// How often the writer collects the bucket's garbage ([`super::Retention`]).
const COLLECT_EVERY: Duration = Duration::from_secs(600);

/// How long an acknowledgement (an ingest answer, a drop-folder file's move to `done/`)
/// waits for the object store before it gives up and says so.
pub const DURABLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the writer has made durable in the object store.
#[derive(Debug, Clone, Default)]
pub struct DurableState {
    /// The newest store generation a manifest in the bucket holds.
    pub generation: u64,
    /// Set once another writer took over; nothing will be durable any more.
    pub fenced: Option<String>,
    /// The last failure to reach the store, cleared by the next success.
    pub unreachable: Option<String>,
    /// Scans of the data directory published (or found unchanged) so far.
    pub scans: u64,
    /// The sequence number of the last manifest this writer wrote.
    pub sequence: u64,
    /// Failed publications so far.
    pub failures: u64,
}

/// A view of [`DurableState`] for the ingest API.
#[derive(Debug, Clone)]
pub struct Durable(watch::Receiver<DurableState>);

impl Durable {
    /// Wait until `generation` is durable in the object store; the reason when this writer is
    /// fenced, a publication fails meanwhile, or `timeout` passes first.
    pub async fn wait(&self, generation: u64, timeout: Duration) -> Result<(), String> {
        let mut rx = self.0.clone();
        let failures = rx.borrow().failures;
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let why = {
                    let s = rx.borrow_and_update();
                    if s.generation >= generation {
                        return Ok(());
                    }
                    if let Some(f) = &s.fenced {
                        return Err(f.clone());
                    }
                    if let (true, Some(why)) = (s.failures > failures, &s.unreachable) {
                        return Err(format!("the object store is unreachable: {why}"));
                    }
                    s.unreachable.clone()
                };
                if rx.changed().await.is_err() {
                    return Err(why.unwrap_or_else(|| "the upload task stopped".into()));
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            let s = self.0.borrow();
            Err(match &s.unreachable {
                Some(why) => format!("the object store is unreachable: {why}"),
                None => format!("not uploaded within {} s", timeout.as_secs()),
            })
        })
    }

    /// The state now (readiness, metrics, tests).
    pub fn state(&self) -> DurableState {
        self.0.borrow().clone()
    }
}

/// The writer's upload task (see the module documentation).
pub struct Uploader {
    writer: Writer,
    data_dir: PathBuf,
    tx: watch::Sender<DurableState>,
}

impl Uploader {
    /// Open the object store, claim an epoch and take over the newest manifest into
    /// `data_dir` ([`Writer::take_over`]); before the store is opened on it.
    pub async fn start(
        target: &StoreTarget,
        data_dir: PathBuf,
    ) -> Result<(Uploader, Durable), ScaleError> {
        let (objects, prefix) = super::open(target)?;
        let id = format!("pid {} at {}", std::process::id(), jiff::Timestamp::now());
        let mut writer = Writer::claim(objects, prefix, id).await?;
        writer.take_over(&data_dir).await?;
        let (tx, rx) = watch::channel(DurableState::default());
        Ok((
            Uploader {
                writer,
                data_dir,
                tx,
            },
            Durable(rx),
        ))
    }

    /// Publish until `stop`; once fenced, make the store refuse writes and end.
    pub async fn run(self, store: Arc<Store>, metrics: Arc<Metrics>, stop: CancellationToken) {
        let Uploader {
            mut writer,
            data_dir,
            tx,
        } = self;
        let mut generations = store.subscribe();
        let mut cache = HashCache::default();
        // The first collection right after start: a restart after a long stop has the most.
        let mut collected_at: Option<std::time::Instant> = None;
        loop {
            // The generation is read before the scan: the files found hold at least it.
            let generation = store.snapshot().generation();
            let dir = data_dir.clone();
            let scanned = tokio::task::spawn_blocking(move || {
                let files = super::scan(&dir, &mut cache);
                (files, cache)
            })
            .await;
            let files = match scanned {
                Ok((files, back)) => {
                    cache = back;
                    files
                }
                Err(e) => {
                    tracing::error!(error = %e, "object store: the scan task failed");
                    return;
                }
            };
            let published = match files {
                Ok(files) => writer.publish(generation, files).await,
                Err(e) => Err(e),
            };
            match published {
                Ok(p) => {
                    if let Some(p) = &p {
                        tracing::debug!(
                            sequence = p.sequence,
                            generation,
                            objects = p.objects,
                            bytes = p.bytes,
                            "object store: manifest published"
                        );
                    }
                    tx.send_modify(|s| {
                        s.generation = s.generation.max(generation);
                        s.unreachable = None;
                        s.scans += 1;
                        if let Some(p) = p {
                            s.sequence = p.sequence;
                        }
                        metrics.object_store(true, s.sequence);
                    });
                    if collected_at.is_none_or(|t| t.elapsed() >= COLLECT_EVERY) {
                        collected_at = Some(std::time::Instant::now());
                        collect(&mut writer, &metrics).await;
                    }
                }
                Err(e @ ScaleError::Fenced { .. }) => {
                    let why = e.to_string();
                    store.refuse_writes(why.clone());
                    tx.send_modify(|s| s.fenced = Some(why));
                    return;
                }
                // The directory moved on under the scan: take the newer state at once.
                Err(ScaleError::Vanished { .. }) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "object store: publication failed; retrying");
                    let why = error_chain(&e);
                    tx.send_modify(|s| {
                        s.unreachable = Some(why);
                        s.failures += 1;
                        metrics.object_store(false, s.sequence);
                    });
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = generations.changed() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
}

/// One collection of the bucket; a failure is only logged (the next one tries again).
async fn collect(writer: &mut Writer, metrics: &Metrics) {
    match writer
        .collect(super::Retention::default(), std::time::SystemTime::now())
        .await
    {
        Ok(c) => {
            tracing::info!(
                manifests = c.manifests,
                objects = c.objects,
                bytes = c.bytes,
                kept_objects = c.kept_objects,
                kept_bytes = c.kept_bytes,
                "object store: collected"
            );
            metrics.object_store_collected(c);
        }
        Err(e) => tracing::warn!(error = %error_chain(&e), "object store: collection failed"),
    }
}

/// What a replica's follower has reached, for readiness and metrics.
#[derive(Debug, Clone, Default)]
pub struct Following {
    /// The manifest served.
    pub sequence: u64,
    /// The last failure to reach the store (or a bad object), cleared by the next success.
    pub unreachable: Option<String>,
}

/// How often a replica asks for the next manifest.
const POLL: Duration = Duration::from_millis(100);

/// A replica's task: take each next manifest into the data directory, then swap the store to
/// it (the publisher follows, as after a commit). A manifest that leaves the store's
/// generation as it was brings other files (a window cut, a new base): `republish` then has
/// the publisher pick them up. A failure keeps the current generation served and is retried.
pub async fn follow(
    mut follower: Follower,
    store: Arc<Store>,
    tx: watch::Sender<Following>,
    metrics: Arc<Metrics>,
    republish: impl Fn(),
    stop: CancellationToken,
) {
    let report = |f: &mut Following, problem: Option<String>| {
        metrics.object_store(problem.is_none(), f.sequence);
        f.unreachable = problem;
    };
    loop {
        match follower.step().await {
            Ok(FollowOutcome::Applied { manifest, .. }) => {
                let (s, before) = (store.clone(), store.snapshot().generation());
                match tokio::task::spawn_blocking(move || s.reload()).await {
                    Ok(Ok(generation)) => {
                        if generation == before {
                            republish();
                        }
                        tracing::debug!(
                            sequence = manifest.sequence,
                            generation,
                            "replica: swapped"
                        );
                        tx.send_modify(|f| {
                            f.sequence = manifest.sequence;
                            report(f, None);
                        });
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "replica: the new generation cannot be served");
                        tx.send_modify(|f| report(f, Some(error_chain(&e))));
                    }
                    Err(e) => tracing::error!(error = %e, "replica: the swap task failed"),
                }
                continue;
            }
            Ok(FollowOutcome::UpToDate) => tx.send_modify(|f| report(f, None)),
            Err(e) => {
                tracing::warn!(error = %e, "replica: cannot follow the object store; serving the current generation");
                tx.send_modify(|f| report(f, Some(error_chain(&e))));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// What `/readyz` says of the object store.
#[derive(Debug, Clone)]
pub enum StoreHealth {
    Writer(Durable),
    Replica(watch::Receiver<Following>),
}

impl StoreHealth {
    /// Why the object store is not in use right now, if it is not: fenced, unreachable.
    pub fn problem(&self) -> Option<String> {
        match self {
            StoreHealth::Writer(d) => {
                let s = d.state();
                s.fenced
                    .or(s.unreachable.map(|u| format!("unreachable: {u}")))
            }
            StoreHealth::Replica(rx) => {
                let f = rx.borrow();
                f.unreachable.as_ref().map(|u| {
                    format!(
                        "unreachable, serving manifest {} until it answers: {u}",
                        f.sequence
                    )
                })
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
