//! The durable catalog of record.
//!
//! A store directory holds the files of the current generation (see [`crate::snapshot`]) and
//! a `MANIFEST` naming them. An apply rewrites only the shards it touches, writes each new
//! file durably under a new name, then replaces the manifest: the rename of the manifest is
//! the commit point, so a crash leaves either the old or the new generation, plus garbage
//! that the next [`Store::open`] removes. The generation before the current one stays on
//! disk (`MANIFEST.prev` and its files) until the next commit, as the fallback
//! [`Store::open`] serves when the current one fails verification. A failure after the
//! commit point (the directory fsync, the caller's follow-up) leaves memory and disk
//! possibly apart: the store then refuses every write until it is reopened. Readers never block: they load the current
//! `Arc<Snapshot>` from an `ArcSwap`; writers are serialized by a mutex.
//!
//! Shard count: chosen when products are written into an empty catalog (about
//! `products_per_shard` per shard, a power of two up to 4096) and raised, with a full
//! rewrite, when shards average more than 4× that. It never shrinks while products remain.
//!
//! One owner per store directory: [`Store::open`] takes an exclusive lock on `LOCK` (see
//! `lock.rs`) before it reads or cleans anything and holds it while the store lives; a
//! second open, from this process or another, fails at once with [`StoreError::Locked`].

mod apply;
mod commit;
mod durable;
mod fault;
#[cfg(test)]
mod faults;
mod lock;
mod manifest;
mod parallel;
mod recover;
pub mod scrub;
mod spool;

use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rkyv::util::AlignedVec;
use rust_decimal::Decimal;

use crate::catalog::{Dictionaries, FieldError, Product, ProductId, Record};
use crate::snapshot::format::{self, PayloadKind, Shard};
use crate::snapshot::verified::{Entry, OpenStats, Trust, VerifiedRecord};
use crate::snapshot::{DictsFile, ShardFile, Snapshot, SnapshotError};
use apply::{Batch, Tally};
use manifest::{Manifest, MANIFEST, PREVIOUS};

pub use commit::{CommitError, CommitWorker, Committer, Op, Outcome, Request};
// The one atomic-write helper and directory fsync, for the drop folder's own small files.
pub use lock::LOCK;
pub(crate) use parallel::io_map;
pub use recover::{read_serving, verify, GenerationCheck, StoreCheck};
pub use spool::{Parked, Spool, SpooledBatch};

/// Errors of the store. Each names the file or record concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: invalid manifest: {reason}", path.display())]
    Manifest { path: PathBuf, reason: String },
    /// A manifest that is not its JSON document (or cannot be written as one).
    #[error("{}: invalid manifest: {source}", path.display())]
    ManifestJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("record {index} ({subject}): {source}")]
    InvalidRecord {
        /// Position of the record in the batch, from 0.
        index: usize,
        subject: String,
        source: FieldError,
    },
    #[error("cannot read back {what} from the current snapshot: {source}")]
    Deserialize {
        what: String,
        #[source]
        source: rkyv::rancor::Error,
    },
    #[error("cannot serialize {what}: {source}")]
    Serialize {
        what: String,
        #[source]
        source: rkyv::rancor::Error,
    },
    #[error("invalid store options: {0}")]
    Options(String),
    /// The store takes no writes: an earlier commit failed after its commit point (writes
    /// resume after a restart, the reason says so), or this node may not write (a read
    /// replica, a writer fenced by a newer one).
    #[error("the store refuses writes: {0}")]
    Poisoned(String),
    /// Another [`Store`] (in this process or another) owns the directory.
    #[error(
        "{}: the data directory is in use by {}; only one iofd process may open it. Stop that process first, or hand the data to it: the admin API (POST /v1/records, PUT /v1/products/{{id}}) or the drop folder (<data>/inbox)",
        path.display(),
        match pid { Some(pid) => format!("another iofd process (pid {pid})"), None => "another iofd process".to_string() }
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    /// The mass-deletion guard: a full sync would remove too many products (or not the
    /// confirmed count). Nothing was applied.
    #[error(
        "full sync refused: it would remove {removing} of the {products} products, {}; nothing was applied. If that is intended, repeat it confirming the count (confirm_removal={removing}, or iofd import --confirm-removal {removing})",
        match confirmed {
            Some(n) => format!("not the {n} confirmed"),
            None => format!("more than full_sync_max_removal ({max_percent} %) allows"),
        }
    )]
    RemovalRefused {
        /// Current products the sync would remove.
        removing: usize,
        /// Products in the catalog now.
        products: usize,
        max_percent: Decimal,
        /// The count the caller confirmed, if any.
        confirmed: Option<usize>,
    },
}

impl StoreError {
    /// The batch was refused for what it holds (nothing applied; sending it again changes
    /// nothing), as opposed to the store failing.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::InvalidRecord { .. } | StoreError::RemovalRefused { .. }
        )
    }
}

/// Tuning of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Target products per shard when the shard count is chosen (first import, reshard).
    /// Smaller shards make single-product changes cheaper and the snapshot more files.
    pub products_per_shard: usize,
    /// Percent (0 to 100) of the catalog's products a full sync may remove unconfirmed;
    /// more is [`StoreError::RemovalRefused`] (see [`ApplyMode::FullSyncConfirmed`]).
    pub full_sync_max_removal: Decimal,
}

/// The default of [`StoreOptions::full_sync_max_removal`]: 20 %.
pub const DEFAULT_FULL_SYNC_MAX_REMOVAL: Decimal = Decimal::from_parts(20, 0, 0, false, 0);

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            products_per_shard: 1000,
            full_sync_max_removal: DEFAULT_FULL_SYNC_MAX_REMOVAL,
        }
    }
}

/// How an apply treats products the batch does not mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApplyMode {
    /// Keep them: the batch inserts, replaces and deletes what it names.
    #[default]
    Upsert,
    /// Products absent from the batch are removed: the batch is the whole catalog.
    /// Dictionary entries are never removed. A sync that would remove more than
    /// [`StoreOptions::full_sync_max_removal`] of the products is refused whole: a truncated
    /// export must not delist the catalog.
    FullSync,
    /// [`ApplyMode::FullSync`] whose removals the caller has seen and confirmed: applied
    /// only when it removes exactly `removal` of the current products, whatever the share.
    FullSyncConfirmed { removal: usize },
}

impl ApplyMode {
    /// A full sync, confirmed or not.
    pub fn is_full_sync(self) -> bool {
        !matches!(self, ApplyMode::Upsert)
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// The generation now current: unchanged when the batch changed nothing.
    pub generation: u64,
    /// Product and dictionary records that changed something.
    pub applied: usize,
    /// Records that left the state as it was (identical data, deletion of an unknown id).
    pub unchanged: usize,
    /// Products removed, by deletion or by absence from a full sync.
    pub removed: usize,
    /// Snapshot files written (shards and dictionaries; the manifest is not counted).
    pub shards_written: usize,
    /// Bytes written, manifest included.
    pub bytes_written: u64,
}

/// The durable catalog. `Send + Sync`: share it in an `Arc`.
pub struct Store {
    dir: PathBuf,
    opts: StoreOptions,
    current: ArcSwap<Snapshot>,
    /// Serializes writers and holds their state. A poisoned lock (a panicked writer) is
    /// taken over: the published state lives in `current` and on disk.
    writer: Mutex<Writer>,
    published: tokio::sync::watch::Sender<u64>,
    /// Which payloads were checked in full: opening them again reads only their headers.
    record: VerifiedRecord,
    /// What opening the store cost (files trusted from the record, files checked).
    opened: OpenStats,
    /// Files of the served generation the scrub found damaged (never cleared while running).
    damaged: Mutex<Vec<String>>,
    /// Exclusive ownership of `dir`; released when the store is dropped.
    _lock: lock::DirLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("generation", &self.current.load().generation())
            .finish_non_exhaustive()
    }
}

/// What the writer knows beyond the published snapshot.
struct Writer {
    /// Why writes are refused: a commit failed after its commit point.
    poisoned: Option<String>,
    /// `MANIFEST` on disk describes the current snapshot (false after a fallback).
    manifest_current: bool,
    /// Files on disk kept besides the current snapshot's (the fallback's): never removed
    /// or overwritten by a failed commit's cleanup.
    also_kept: HashSet<String>,
    /// The highest generation number used on disk: the next commit goes above it.
    floor: u64,
}

/// Read the current generation of the store in `dir` without opening it for writing (no
/// cleanup, no writer): for read-only tools and replicas that map the same files. Falls back
/// to the previous generation, as [`Store::open`] does, when the current one is damaged.
pub fn load_snapshot(dir: &Path) -> Result<Snapshot, StoreError> {
    recover::recover(dir, &VerifiedRecord::load(dir, Trust::Recorded)).map(|r| r.snapshot)
}

impl Store {
    /// Open the store in `dir`, creating the directory if absent, and take its lock: a
    /// directory another store holds is [`StoreError::Locked`] at once, before anything is
    /// read, repaired or removed. Every file of the current generation is validated; when one
    /// is damaged the fallback generation is served (logged as an error), and when that is
    /// damaged too the error names the current one's file: the store never serves bad data.
    /// Then files left by an interrupted write are removed.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        if opts.products_per_shard == 0 {
            return Err(StoreError::Options(
                "products_per_shard must be at least 1".into(),
            ));
        }
        if opts.full_sync_max_removal.is_sign_negative()
            || opts.full_sync_max_removal > Decimal::ONE_HUNDRED
        {
            return Err(StoreError::Options(
                "full_sync_max_removal is a percentage from 0 to 100".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = lock::DirLock::acquire(dir)?;
        let record = VerifiedRecord::load(dir, Trust::Recorded);
        let recovered = recover::recover(dir, &record)?;
        let snapshot = recovered.snapshot;
        let opened = record.stats();
        flush_record(&record, dir, [&snapshot]);
        Spool::clear(&dir.join(spool::SPOOL_DIR));
        // Only after the manifest and its files proved good: never collect on a bad read. After
        // a fallback nothing is collected: an unreadable MANIFEST may name any file here.
        let keep: HashSet<&str> = snapshot
            .file_names()
            .chain(recovered.also_kept.iter().map(String::as_str))
            .collect();
        let removed = if recovered.from_manifest {
            durable::collect_garbage(dir, &keep).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?
        } else {
            0
        };
        tracing::info!(
            dir = %dir.display(),
            generation = snapshot.generation(),
            products = snapshot.len(),
            shards = snapshot.shard_count(),
            garbage_removed = removed,
            files_trusted = opened.trusted,
            files_checked = opened.checked,
            bytes_checked = opened.checked_bytes,
            "store opened"
        );
        let (published, _) = tokio::sync::watch::channel(snapshot.generation());
        Ok(Store {
            dir: dir.to_path_buf(),
            opts,
            current: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(Writer {
                poisoned: None,
                manifest_current: recovered.from_manifest,
                also_kept: recovered.also_kept,
                floor: recovered.floor,
            }),
            published,
            record,
            opened,
            damaged: Mutex::new(Vec::new()),
            _lock: lock,
        })
    }

    /// What opening the store cost: files mapped on the verified record's word (nothing of
    /// their payload read) and files checked in full.
    pub fn open_stats(&self) -> OpenStats {
        self.opened
    }

    /// The current generation. Lock-free; hold the `Arc` as long as needed.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Why the store refuses writes, when a commit failed after its commit point.
    pub fn poisoned(&self) -> Option<String> {
        self.writer().poisoned.clone()
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock()
    }

    /// The writer, unless an earlier failure after a commit point made the store refuse
    /// writes (memory and disk may disagree until it is reopened).
    fn lock_writer(&self) -> Result<MutexGuard<'_, Writer>, StoreError> {
        let w = self.writer();
        match &w.poisoned {
            Some(why) => Err(StoreError::Poisoned(why.clone())),
            None => Ok(w),
        }
    }

    /// Remove the files of a commit that failed before its commit point, except those the
    /// fallback names (a staged file may have replaced one with identical content).
    fn discard(&self, w: &Writer, written: &[String]) {
        for name in written.iter().filter(|n| !w.also_kept.contains(*n)) {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }

    /// Run the caller's follow-up of a commit; its failure poisons the store, since the
    /// caller's own state (a drop-folder marker) now disagrees with the store's.
    fn follow_up(
        &self,
        w: &mut Writer,
        report: &ApplyReport,
        then: impl FnOnce(&ApplyReport) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        then(report).inspect_err(|e| {
            self.poison(
                w,
                format!(
                    "the follow-up of generation {} failed: {e}",
                    report.generation
                ),
            );
        })
    }

    /// A read replica's swap (`crate::scaleout`): serve the generation the directory's
    /// `MANIFEST` names now, laid out there by the replica's follower, and notify
    /// subscribers as a commit does. Only for a store that refuses writes (a replica's).
    pub fn reload(&self) -> Result<u64, StoreError> {
        let w = self.writer();
        if w.poisoned.is_none() {
            return Err(StoreError::Options(
                "reload is for a read replica's store, which takes no writes".into(),
            ));
        }
        let recovered = recover::recover(&self.dir, &self.record)?;
        flush_record(&self.record, &self.dir, [&recovered.snapshot]);
        let generation = recovered.snapshot.generation();
        if generation != self.current.load().generation() {
            self.current.store(Arc::new(recovered.snapshot));
            self.published.send_replace(generation);
        }
        drop(w);
        Ok(generation)
    }

    /// Refuse every write from now on, saying `why` (a writer fenced by a newer one, a
    /// replica): readers go on serving the current generation.
    pub fn refuse_writes(&self, why: String) {
        tracing::warn!(dir = %self.dir.display(), reason = %why, "the store takes no writes");
        self.writer().poisoned = Some(why);
    }

    fn poison(&self, w: &mut Writer, why: String) {
        tracing::error!(dir = %self.dir.display(), reason = %why, "the store refuses writes until it is reopened");
        w.poisoned = Some(format!("{why}; writes resume after a restart"));
    }

    /// Notified with the generation number after each publish.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// Apply records (dictionary upserts, product upserts, deletions) as one batch. Every
    /// record is normalized first; one invalid record rejects the whole batch and changes
    /// nothing. Returns only after the new generation is durable (files and manifest
    /// fsynced). A batch that changes nothing publishes nothing and writes nothing.
    pub fn apply(&self, records: Vec<Record>, mode: ApplyMode) -> Result<ApplyReport, StoreError> {
        self.apply_and(records, mode, |_| Ok(()))
    }

    /// [`Store::apply`], then `then` with the report while still holding the writer lock:
    /// nothing else commits between the two, so a crash between them leaves the state this
    /// batch made (the drop folder journals its files this way). An error from `then` is
    /// returned; the batch stays committed.
    pub fn apply_and(
        &self,
        records: Vec<Record>,
        mode: ApplyMode,
        then: impl FnOnce(&ApplyReport) -> Result<(), StoreError>,
    ) -> Result<ApplyReport, StoreError> {
        let mut w = self.lock_writer()?;
        let old = self.current.load_full();
        let mut written = Vec::new();
        let result = self.apply_locked(&mut w, &old, records, mode, &mut written);
        if result.is_err() {
            // Files of a generation that was never published: remove them now rather than at
            // the next open (a name the current generation uses is never in `written`).
            self.discard(&w, &written);
        }
        let report = result?;
        self.follow_up(&mut w, &report, then)?;
        Ok(report)
    }

    /// A new spool for a batch too large to hold in memory (see [`Store::apply_spooled`]).
    pub fn spool(&self) -> Result<Spool, StoreError> {
        Spool::create(&self.dir.join(spool::SPOOL_DIR))
    }

    /// Apply a spooled batch: dictionary records in memory, product changes in batch order,
    /// upserted products read back from `spool` one wave of shards at a time. Same
    /// guarantees as [`Store::apply`]; the products were normalized when parked.
    pub fn apply_spooled(
        &self,
        dicts: Vec<Record>,
        changes: Vec<Parked>,
        spool: &mut Spool,
        mode: ApplyMode,
    ) -> Result<ApplyReport, StoreError> {
        self.apply_spooled_and(dicts, changes, spool, mode, |_| Ok(()))
    }

    /// [`Store::apply_spooled`] with a hook run under the writer lock, as [`Store::apply_and`].
    pub fn apply_spooled_and(
        &self,
        dicts: Vec<Record>,
        changes: Vec<Parked>,
        spool: &mut Spool,
        mode: ApplyMode,
        then: impl FnOnce(&ApplyReport) -> Result<(), StoreError>,
    ) -> Result<ApplyReport, StoreError> {
        spool.seal()?;
        let mut w = self.lock_writer()?;
        let old = self.current.load_full();
        let mut batch = Batch::split(dicts, old.shard_count())?;
        for change in changes {
            let change = match change {
                Parked::Product { id, at } => apply::Change::Spooled { id, at },
                Parked::Delete(id) => apply::Change::Delete(id),
            };
            batch
                .products
                .entry(format::shard_of(change.id(), old.shard_count()))
                .or_default()
                .push(change);
        }
        let mut written = Vec::new();
        let result = self.apply_batch(&mut w, &old, batch, mode, Some(spool), &mut written);
        if result.is_err() {
            self.discard(&w, &written);
        }
        let report = result?;
        self.follow_up(&mut w, &report, then)?;
        Ok(report)
    }

    fn apply_locked(
        &self,
        w: &mut Writer,
        old: &Arc<Snapshot>,
        records: Vec<Record>,
        mode: ApplyMode,
        written: &mut Vec<String>,
    ) -> Result<ApplyReport, StoreError> {
        let batch = Batch::split(records, old.shard_count())?;
        self.apply_batch(w, old, batch, mode, None, written)
    }

    fn apply_batch(
        &self,
        w: &mut Writer,
        old: &Arc<Snapshot>,
        mut batch: Batch,
        mode: ApplyMode,
        spool: Option<&Spool>,
        written: &mut Vec<String>,
    ) -> Result<ApplyReport, StoreError> {
        let full_sync = mode.is_full_sync();
        let count = old.shard_count();
        let mut tally = Tally::default();

        // Dictionaries: read back, apply, keep the old file when nothing changed.
        let mut dicts_changed = None;
        if !batch.dicts.is_empty() {
            let mut dicts: Dictionaries = rkyv::deserialize::<_, rkyv::rancor::Error>(old.dicts())
                .map_err(|e| StoreError::Deserialize {
                    what: "dictionaries".into(),
                    source: e,
                })?;
            if apply::apply_dicts(&mut dicts, &batch.dicts, &mut tally) {
                dicts_changed = Some(dicts);
            }
        }

        // Products: only the shards the batch touches (every non-empty one for a full sync).
        if full_sync {
            for shard in old.shards() {
                batch.products.entry(shard.index).or_default();
            }
        }
        // The shard count is decided first, from ids alone, so shards can then be rebuilt
        // one wave at a time.
        let mut len = old.len();
        let mut removing = 0;
        for (&index, changes) in &batch.products {
            let old_products = old.shard_file(index).map_or(&[][..], |f| f.products());
            let old_ids = old_products.iter().map(|p| p.id.to_native());
            let after = apply::count_after(old_ids, changes, full_sync);
            len = len - old_products.len() + after.len;
            removing += after.removed;
        }
        // The mass-deletion guard, before anything is written. Deletions an upsert batch
        // names are the caller's explicit choice; only a sync's absences are guessed at.
        if full_sync {
            let confirmed = match mode {
                ApplyMode::FullSyncConfirmed { removal } => Some(removal),
                _ => None,
            };
            let max_percent = self.opts.full_sync_max_removal;
            if !apply::removal_allowed(old.len(), removing, max_percent, confirmed) {
                tracing::warn!(
                    products = old.len(),
                    removing,
                    %max_percent,
                    ?confirmed,
                    "full sync refused by the mass-deletion guard"
                );
                return Err(StoreError::RemovalRefused {
                    removing,
                    products: old.len(),
                    max_percent,
                    confirmed,
                });
            }
        }
        let target =
            apply::target_shard_count(count, old.is_empty(), len, self.opts.products_per_shard);

        let mut next = Builder::new(&self.dir, old, target);
        let hint = bytes_per_product(old);
        // Read a shard back from the old generation and apply its changes.
        let rebuild = |index: u32, changes: Vec<apply::Change>| {
            // Spooled products are read back here, a wave of shards at a time.
            let changes = changes
                .into_iter()
                .map(|c| match (c, spool) {
                    (apply::Change::Spooled { at, .. }, Some(s)) => {
                        s.load(at).map(|p| apply::Change::Upsert(Box::new(p)))
                    }
                    (apply::Change::Spooled { id, .. }, None) => Err(StoreError::Options(format!(
                        "product {id} is spooled but no spool was given"
                    ))),
                    (c, _) => Ok(c),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut products = match old.shard_file(index) {
                Some(file) => apply::thaw(file.products())?,
                None => BTreeMap::new(),
            };
            let mut tally = Tally::default();
            apply::apply_shard(&mut products, changes, full_sync, &mut tally);
            Ok::<_, StoreError>((products, tally))
        };
        if target == count || old.is_empty() {
            // Shard by shard, in waves. A catalog written from scratch has nothing to read
            // back: its changes are regrouped by the new count.
            let groups = if target == count {
                batch.products
            } else {
                regroup(batch.products, target)
            };
            in_waves(
                groups,
                |(index, changes)| {
                    let (products, tally) = rebuild(index, changes)?;
                    let frozen = freeze(index, products.into_values().collect(), hint)?;
                    Ok((tally, frozen))
                },
                |index, t, frozen| {
                    tally += t;
                    next.shard(index, frozen)
                },
            )?;
        } else {
            // Shards outgrew their target size: a full rewrite into `target` shards.
            let groups: Vec<_> = batch.products.into_iter().collect();
            let mut touched = BTreeMap::new();
            for (index, result) in parallel::par_map(groups, |(i, c)| (i, rebuild(i, c))) {
                let (products, t) = result?;
                tally += t;
                touched.insert(index, products);
            }
            in_waves(
                redistribute(old, touched, target)?,
                |(index, products)| Ok((Tally::default(), freeze(index, products, hint)?)),
                |index, _, frozen| next.shard(index, frozen),
            )?;
        }

        if let Some(dicts) = dicts_changed {
            next.dictionaries(&dicts)?;
        }

        let mut report = ApplyReport {
            generation: old.generation(),
            applied: tally.applied,
            unchanged: tally.unchanged,
            removed: tally.removed,
            shards_written: next.staged.names().len(),
            bytes_written: next.bytes,
        };
        if !next.changed {
            return Ok(report);
        }
        let (shards, dicts) = next.publish(written, &self.record)?;

        // Commit: the manifest rename makes the generation current, durably.
        let generation = old.generation().max(w.floor) + 1;
        let snapshot = Snapshot::new(generation, jiff::Timestamp::now(), shards, dicts)?;
        let manifest = Manifest::describe(&snapshot).to_json()?;
        self.keep_fallback(w, old)?;
        report.bytes_written += durable::write_file(&self.dir, MANIFEST, &[&manifest])
            .map_err(|source| self.io(MANIFEST, source))?;
        // The manifest is in place and names these files: never remove them from here on.
        written.clear();
        w.floor = generation;
        w.manifest_current = true;
        if let Err(e) = self.sync_dir() {
            // Disk may hold either generation after a power cut while memory holds the old
            // one: any further commit could build on the wrong one, so none is taken.
            self.poison(
                w,
                format!("generation {generation} may or may not be durable: {e}"),
            );
            return Err(e);
        }
        report.generation = generation;

        // The old generation becomes the fallback; the one before it goes.
        let keep: HashSet<&str> = snapshot.file_names().chain(old.file_names()).collect();
        let obsolete: Vec<String> = w
            .also_kept
            .iter()
            .filter(|n| !keep.contains(n.as_str()))
            .cloned()
            .collect();
        let new: HashSet<&str> = snapshot.file_names().collect();
        w.also_kept = old
            .file_names()
            .filter(|n| !new.contains(n))
            .map(str::to_owned)
            .collect();
        tracing::info!(
            generation,
            products = snapshot.len(),
            shards = snapshot.shard_count(),
            files_written = report.shards_written,
            bytes_written = report.bytes_written,
            "generation published"
        );
        flush_record(&self.record, &self.dir, [&snapshot, old]);
        self.current.store(Arc::new(snapshot));
        self.published.send_replace(generation);

        // Nothing maps the generation before the old one (readers hold at most the old one).
        // A failure here only leaves garbage for the next open.
        for name in obsolete {
            if let Err(e) = std::fs::remove_file(self.dir.join(&name)) {
                tracing::warn!(file = %name, error = %e, "cannot remove an obsolete snapshot file");
            }
        }
        Ok(report)
    }

    /// Name the generation being replaced in `MANIFEST.prev` before the commit replaces
    /// `MANIFEST`. A link of the current manifest costs no fsync of its own (the commit's
    /// directory fsync covers it); after a fallback the disk's MANIFEST is not the old
    /// generation, so its manifest is written out.
    fn keep_fallback(&self, w: &Writer, old: &Snapshot) -> Result<(), StoreError> {
        let copy = || {
            Manifest::describe(old).to_json().and_then(|bytes| {
                durable::write_file(&self.dir, PREVIOUS, &[&bytes])
                    .map(drop)
                    .map_err(|source| self.io(PREVIOUS, source))
            })
        };
        if !w.manifest_current {
            copy()
        } else if old.generation() == 0 {
            // Nothing was ever committed: no fallback.
            match std::fs::remove_file(self.dir.join(PREVIOUS)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io(PREVIOUS, e)),
                _ => Ok(()),
            }
        } else {
            match durable::link_file(&self.dir, MANIFEST, PREVIOUS) {
                // A file system without hard links: a copy, at the cost of one more fsync.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
                    ) =>
                {
                    copy()
                }
                other => other.map_err(|e| self.io(PREVIOUS, e)),
            }
        }
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        durable::sync_dir(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.clone(),
            source,
        })
    }

    fn io(&self, name: &str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.dir.join(name),
            source,
        }
    }
}

/// The files of the generation being built: what is reused from the old one, what is staged.
struct Builder<'a> {
    dir: &'a Path,
    old: &'a Snapshot,
    target: u32,
    staged: durable::Staged<'a>,
    shards: Vec<Option<Arc<ShardFile>>>,
    /// Old shard files by name: a rebuilt shard with the same index and content keeps its file.
    reusable: BTreeMap<&'a str, &'a Arc<ShardFile>>,
    new_shards: Vec<(u32, String)>,
    new_dicts: Option<String>,
    changed: bool,
    bytes: u64,
}

impl<'a> Builder<'a> {
    fn new(dir: &'a Path, old: &'a Snapshot, target: u32) -> Self {
        let count = old.shard_count();
        let shards = if target == count {
            (0..count).map(|i| old.shard_file(i).cloned()).collect()
        } else {
            vec![None; target as usize]
        };
        Builder {
            dir,
            old,
            target,
            staged: durable::Staged::new(dir),
            shards,
            reusable: (0..count)
                .filter_map(|i| old.shard_file(i))
                .map(|f| (f.name(), f))
                .collect(),
            new_shards: Vec::new(),
            new_dicts: None,
            changed: target != count,
            bytes: 0,
        }
    }

    fn io(&self, name: &str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.dir.join(name),
            source,
        }
    }

    /// Record the new content of shard `index`, staging a file unless an old one has it.
    fn shard(&mut self, index: u32, frozen: Frozen) -> Result<(), StoreError> {
        let slot = &mut self.shards[index as usize];
        let Some((payload, content_id)) = frozen else {
            self.changed |= slot.take().is_some();
            return Ok(());
        };
        let name = format::shard_file_name(index, &content_id);
        if let Some(existing) = self.reusable.get(name.as_str()) {
            self.changed |= slot.as_ref().is_none_or(|s| !Arc::ptr_eq(s, existing));
            *slot = Some(Arc::clone(existing));
            return Ok(());
        }
        let header = format::encode_header(PayloadKind::Shard, &payload);
        self.bytes += self
            .staged
            .write(&name, &[&header, &payload])
            .map_err(|e| self.io(&name, e))?;
        self.new_shards.push((index, name));
        self.changed = true;
        Ok(())
    }

    /// Record changed dictionaries, staging a file unless the content is the old one.
    fn dictionaries(&mut self, dicts: &Dictionaries) -> Result<(), StoreError> {
        let payload =
            rkyv::to_bytes::<rkyv::rancor::Error>(dicts).map_err(|e| StoreError::Serialize {
                what: "dictionaries".into(),
                source: e,
            })?;
        let content_id = *blake3::hash(&payload).as_bytes();
        if content_id == self.old.dicts_content_id() {
            return Ok(());
        }
        let name = format::dicts_file_name(&content_id);
        let header = format::encode_header(PayloadKind::Dictionaries, &payload);
        self.bytes += self
            .staged
            .write(&name, &[&header, &payload])
            .map_err(|e| self.io(&name, e))?;
        self.new_dicts = Some(name);
        self.changed = true;
        Ok(())
    }

    /// Make the staged files durable and map them (validating each once, like any file we
    /// serve). Their names go to `written` so a failure before the commit removes them.
    #[allow(clippy::type_complexity)]
    fn publish(
        mut self,
        written: &mut Vec<String>,
        record: &VerifiedRecord,
    ) -> Result<(Vec<Option<Arc<ShardFile>>>, Arc<DictsFile>), StoreError> {
        self.staged.publish().map_err(|source| StoreError::Io {
            path: self.dir.to_path_buf(),
            source,
        })?;
        written.extend(self.staged.names().iter().cloned());
        let (dir, target) = (self.dir, self.target);
        let opened = parallel::par_map(self.new_shards, |(index, name)| {
            ShardFile::open(dir, &name, index, target, record).map(|f| (index, f))
        });
        for file in opened {
            let (index, file) = file?;
            self.shards[index as usize] = Some(Arc::new(file));
        }
        let dicts = match &self.new_dicts {
            Some(name) => Arc::new(DictsFile::open(self.dir, name, record)?),
            None => Arc::clone(self.old.dicts_file()),
        };
        Ok((self.shards, dicts))
    }
}

/// Write the record's news; the files of `kept` are the live entries it may be compacted to.
/// A failure costs only checks at the next open, so it is logged, never the caller's error.
fn flush_record<'a>(
    record: &VerifiedRecord,
    dir: &Path,
    kept: impl IntoIterator<Item = &'a Snapshot>,
) {
    let live: HashSet<Entry> = kept.into_iter().flat_map(|s| s.entries()).collect();
    if let Err(e) = record.flush(Some(&live)) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot update the verified record");
    }
}

/// One item's result in a wave: its shard's tally and frozen file.
type WaveResult = Result<(Tally, Frozen), StoreError>;

/// Run `work` over `items` a wave at a time on every core, handing each result to `sink` in
/// order. Waves bound memory to a few shards' worth of products and payloads: two waves, as
/// the next one is worked on while this thread hands the last one to `sink` (whose file
/// writes then overlap the work instead of leaving the cores idle).
fn in_waves<T, F, S>(
    items: impl IntoIterator<Item = T>,
    work: F,
    mut sink: S,
) -> Result<(), StoreError>
where
    T: Send + HasIndex,
    F: Fn(T) -> WaveResult + Sync,
    S: FnMut(u32, Tally, Frozen) -> Result<(), StoreError>,
{
    let mut items = items.into_iter();
    let wave_len = 2 * parallel::parallelism();
    let work_on = |wave: Vec<T>| parallel::par_map(wave, |item| (item.index(), work(item)));
    let mut done = work_on(items.by_ref().take(wave_len).collect());
    while !done.is_empty() {
        let wave: Vec<T> = items.by_ref().take(wave_len).collect();
        let mut hand_over = |done: Vec<(u32, WaveResult)>| {
            for (index, result) in done {
                let (tally, frozen) = result?;
                sink(index, tally, frozen)?;
            }
            Ok::<_, StoreError>(())
        };
        // Taken by the thread; left here when no thread can be had, and worked on after.
        let wave = std::sync::Mutex::new(Some(wave));
        let take = || {
            let mut wave = wave
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            wave.take().unwrap_or_default()
        };
        done = std::thread::scope(|scope| {
            let next = std::thread::Builder::new()
                .name("iofd-wave".into())
                .spawn_scoped(scope, || work_on(take()));
            let handed = hand_over(done);
            let next = match next {
                Ok(next) => next
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => work_on(take()),
            };
            handed.map(|()| next)
        })?;
    }
    Ok(())
}

/// Work items carry the index of the shard they build.
trait HasIndex {
    fn index(&self) -> u32;
}

impl<X> HasIndex for (u32, X) {
    fn index(&self) -> u32 {
        self.0
    }
}

/// Regroup product changes by shard for `target` shards, keeping batch order within a shard.
fn regroup(
    groups: BTreeMap<u32, Vec<apply::Change>>,
    target: u32,
) -> BTreeMap<u32, Vec<apply::Change>> {
    let mut out: BTreeMap<u32, Vec<apply::Change>> = BTreeMap::new();
    // Changes for one id always sit in one group, in batch order, so order per id survives.
    for change in groups.into_values().flatten() {
        out.entry(format::shard_of(change.id(), target))
            .or_default()
            .push(change);
    }
    out
}

/// Serialized shard content: the payload and its blake3, or `None` for an empty shard.
type Frozen = Option<(AlignedVec, [u8; 32])>;

/// Average archived bytes per product in `snapshot`, to size serialization buffers (growing
/// a multi-megabyte buffer by doubling costs more than the serialization itself).
fn bytes_per_product(snapshot: &Snapshot) -> usize {
    let bytes: usize = (0..snapshot.shard_count())
        .filter_map(|i| snapshot.shard_file(i))
        .map(|f| f.payload_len())
        .sum();
    bytes.checked_div(snapshot.len()).unwrap_or(2048)
}

fn freeze(index: u32, products: Vec<Product>, hint: usize) -> Result<Frozen, StoreError> {
    if products.is_empty() {
        return Ok(None);
    }
    let buffer = AlignedVec::with_capacity(products.len() * hint + hint);
    let payload =
        rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(&Shard { products }, buffer)
            .map_err(|e| StoreError::Serialize {
                what: format!("shard {index}"),
                source: e,
            })?;
    let content_id = *blake3::hash(&payload).as_bytes();
    Ok(Some((payload, content_id)))
}

/// Every product of the new generation, bucketed into `target` shards: the touched shards'
/// new content plus the untouched shards read back from the old generation.
fn redistribute(
    old: &Snapshot,
    touched: BTreeMap<u32, BTreeMap<ProductId, Product>>,
    target: u32,
) -> Result<BTreeMap<u32, Vec<Product>>, StoreError> {
    let mut buckets: BTreeMap<u32, Vec<Product>> = (0..target).map(|i| (i, Vec::new())).collect();
    let mut put = |p: Product| {
        buckets
            .entry(format::shard_of(p.id, target))
            .or_default()
            .push(p);
    };
    for shard in old.shards() {
        if !touched.contains_key(&shard.index) {
            apply::thaw(shard.products)?
                .into_values()
                .for_each(&mut put);
        }
    }
    touched
        .into_values()
        .flat_map(BTreeMap::into_values)
        .for_each(&mut put);
    for products in buckets.values_mut() {
        // Ids are unique: they come from disjoint shards of the old generation.
        products.sort_unstable_by_key(|p| p.id);
    }
    Ok(buckets)
}

#[cfg(test)]
mod wave_tests {
    use super::*;

    /// Results reach the sink in item order across waves (the next wave is worked on while
    /// the last is handed over); the first error stops the handing over at its item.
    #[test]
    fn waves_hand_results_over_in_order_and_stop_at_the_first_error() {
        let items: Vec<(u32, ())> = (0..37).map(|i| (i, ())).collect();
        for fail in [None, Some(21), Some(0), Some(36)] {
            let mut seen = Vec::new();
            let result = in_waves(
                items.clone(),
                |(index, ())| match Some(index) == fail {
                    true => Err(StoreError::Options(format!("item {index}"))),
                    false => Ok((Tally::default(), None)),
                },
                |index, _, _| {
                    seen.push(index);
                    Ok(())
                },
            );
            let upto = fail.unwrap_or(37);
            assert_eq!(seen, (0..upto).collect::<Vec<_>>(), "{fail:?}");
            match fail {
                None => result.unwrap(),
                Some(i) => assert!(
                    matches!(&result, Err(StoreError::Options(m)) if *m == format!("item {i}")),
                    "{result:?}"
                ),
            }
        }
    }
}
