//! The durable catalog of record.
//!
//! A store directory holds the files of the current generation (see [`crate::snapshot`]) and
//! a `MANIFEST` naming them. An apply rewrites only the shards it touches, writes each new
//! file durably under a new name, then replaces the manifest: the rename of the manifest is
//! the commit point, so a crash leaves either the old or the new generation, plus garbage
//! that the next [`Store::open`] removes. Readers never block: they load the current
//! `Arc<Snapshot>` from an `ArcSwap`; writers are serialized by a mutex.
//!
//! One process per store directory: two processes writing the same directory would collect
//! each other's files. (A cross-process lock would need `File::try_lock`, newer than the
//! crate's minimum Rust version.)

mod apply;
mod durable;
mod manifest;
mod parallel;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rkyv::util::AlignedVec;

use crate::catalog::{Dictionaries, FieldError, Product, ProductId, Record};
use crate::snapshot::format::{self, PayloadKind, Shard};
use crate::snapshot::{DictsFile, ShardFile, Snapshot, SnapshotError};
use apply::{Batch, Tally};
use manifest::{Manifest, MANIFEST};

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
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("record {index} ({subject}): {source}")]
    InvalidRecord {
        /// Position of the record in the batch, from 0.
        index: usize,
        subject: String,
        source: FieldError,
    },
    #[error("cannot read back {what} from the current snapshot: {reason}")]
    Deserialize { what: String, reason: String },
    #[error("cannot serialize {what}: {reason}")]
    Serialize { what: String, reason: String },
    #[error("invalid store options: {0}")]
    Options(String),
}

/// Tuning of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Target products per shard when the shard count is chosen (first import, reshard).
    /// Smaller shards make single-product changes cheaper and the snapshot more files.
    pub products_per_shard: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            products_per_shard: 1000,
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
    /// Dictionary entries are never removed.
    FullSync,
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
    /// Serializes writers; holds no data, so a poisoned lock (a panicked writer) is harmless:
    /// the published state lives in `current` and on disk, both always coherent.
    writer: Mutex<()>,
    published: tokio::sync::watch::Sender<u64>,
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

/// Read the current generation of the store in `dir` without opening it for writing (no
/// cleanup, no writer): for read-only tools and replicas that map the same files.
pub fn load_snapshot(dir: &Path) -> Result<Snapshot, StoreError> {
    match Manifest::read(dir)? {
        Some(m) => m.load(dir),
        None => Ok(Snapshot::empty()?),
    }
}

impl Store {
    /// Open the store in `dir`, creating the directory if absent. Every file of the current
    /// generation is validated (a damaged one is an error naming it: the store never serves
    /// bad data); then files left by an interrupted write are removed.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        if opts.products_per_shard == 0 {
            return Err(StoreError::Options(
                "products_per_shard must be at least 1".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let snapshot = load_snapshot(dir)?;
        // Only after the manifest and its files proved good: never collect on a bad read.
        let keep: HashSet<&str> = snapshot.file_names().collect();
        let removed = durable::collect_garbage(dir, &keep).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        tracing::info!(
            dir = %dir.display(),
            generation = snapshot.generation(),
            products = snapshot.len(),
            shards = snapshot.shard_count(),
            garbage_removed = removed,
            "store opened"
        );
        let (published, _) = tokio::sync::watch::channel(snapshot.generation());
        Ok(Store {
            dir: dir.to_path_buf(),
            opts,
            current: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(()),
            published,
        })
    }

    /// The current generation. Lock-free; hold the `Arc` as long as needed.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
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
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.current.load_full();
        let mut written = Vec::new();
        let result = self.apply_locked(&old, records, mode, &mut written);
        if result.is_err() {
            // Files of a generation that was never published: remove them now rather than at
            // the next open (a name the current generation uses is never in `written`).
            for name in &written {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
        result
    }

    fn apply_locked(
        &self,
        old: &Arc<Snapshot>,
        records: Vec<Record>,
        mode: ApplyMode,
        written: &mut Vec<String>,
    ) -> Result<ApplyReport, StoreError> {
        let full_sync = mode == ApplyMode::FullSync;
        let count = old.shard_count();
        let mut batch = Batch::split(records, count)?;
        let mut tally = Tally::default();

        // Dictionaries: read back, apply, keep the old file when nothing changed.
        let mut dicts_changed = None;
        if !batch.dicts.is_empty() {
            let mut dicts: Dictionaries = rkyv::deserialize::<_, rkyv::rancor::Error>(old.dicts())
                .map_err(|e| StoreError::Deserialize {
                    what: "dictionaries".into(),
                    reason: e.to_string(),
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
        let mut touched: BTreeMap<u32, BTreeMap<ProductId, Product>> = BTreeMap::new();
        let mut len = old.len();
        for (index, changes) in std::mem::take(&mut batch.products) {
            let mut products = match old.shard_file(index) {
                Some(file) => apply::thaw(file.products())?,
                None => BTreeMap::new(),
            };
            len -= products.len();
            apply::apply_shard(&mut products, changes, full_sync, &mut tally);
            len += products.len();
            touched.insert(index, products);
        }

        let target =
            apply::target_shard_count(count, old.is_empty(), len, self.opts.products_per_shard);
        let reshard = target != count;
        // The new content of every shard that may differ from the old generation.
        let dirty: BTreeMap<u32, Vec<Product>> = if reshard {
            redistribute(old, touched, target)?
        } else {
            touched
                .into_iter()
                .map(|(i, products)| (i, products.into_values().collect()))
                .collect()
        };

        let mut report = ApplyReport {
            generation: old.generation(),
            applied: tally.applied,
            unchanged: tally.unchanged,
            removed: tally.removed,
            ..ApplyReport::default()
        };
        let mut shards: Vec<Option<Arc<ShardFile>>> = if reshard {
            vec![None; target as usize]
        } else {
            (0..count).map(|i| old.shard_file(i).cloned()).collect()
        };
        let reusable: BTreeMap<&str, &Arc<ShardFile>> = (0..count)
            .filter_map(|i| old.shard_file(i))
            .map(|f| (f.name(), f))
            .collect();
        let mut changed = reshard;
        let mut staged = durable::Staged::new(&self.dir);
        let mut new_shards = Vec::new();
        let hint = bytes_per_product(old);
        let mut dirty = dirty.into_iter().peekable();
        while dirty.peek().is_some() {
            // Serialize a wave of shards on every core; write them out in order. Waves keep
            // memory bounded to a few shards' payloads during a bulk import.
            let wave: Vec<_> = dirty.by_ref().take(2 * parallel::parallelism()).collect();
            let frozen = parallel::par_map(wave, |(i, p)| (i, freeze(i, p, hint)));
            for (index, frozen) in frozen {
                let slot = &mut shards[index as usize];
                let Some((payload, content_id)) = frozen? else {
                    changed |= slot.take().is_some();
                    continue;
                };
                let name = format::shard_file_name(index, &content_id);
                if let Some(existing) = reusable.get(name.as_str()) {
                    // Same index, same content: the old file serves as is.
                    changed |= slot.as_ref().is_none_or(|s| !Arc::ptr_eq(s, existing));
                    *slot = Some(Arc::clone(existing));
                    continue;
                }
                let header = format::encode_header(PayloadKind::Shard, &payload);
                report.bytes_written += staged
                    .write(&name, &[&header, &payload])
                    .map_err(|e| self.io(&name, e))?;
                new_shards.push((index, name));
                changed = true;
            }
        }

        let mut new_dicts = None;
        if let Some(dicts) = dicts_changed {
            let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&dicts).map_err(|e| {
                StoreError::Serialize {
                    what: "dictionaries".into(),
                    reason: e.to_string(),
                }
            })?;
            let content_id = *blake3::hash(&payload).as_bytes();
            if content_id != old.dicts_content_id() {
                let name = format::dicts_file_name(&content_id);
                let header = format::encode_header(PayloadKind::Dictionaries, &payload);
                report.bytes_written += staged
                    .write(&name, &[&header, &payload])
                    .map_err(|e| self.io(&name, e))?;
                new_dicts = Some(name);
                changed = true;
            }
        }

        if !changed {
            return Ok(report);
        }
        report.shards_written = staged.names().len();
        staged.publish().map_err(|source| StoreError::Io {
            path: self.dir.clone(),
            source,
        })?;
        written.extend(staged.names().iter().cloned());
        drop(staged);

        // Map the new files (validating them once, like any file we serve).
        let opened = parallel::par_map(new_shards, |(index, name)| {
            ShardFile::open(&self.dir, &name, index, target).map(|f| (index, f))
        });
        for file in opened {
            let (index, file) = file?;
            shards[index as usize] = Some(Arc::new(file));
        }
        let dicts = match new_dicts {
            Some(name) => Arc::new(DictsFile::open(&self.dir, &name)?),
            None => Arc::clone(old.dicts_file()),
        };

        // Commit: the manifest rename makes the generation current, durably.
        let generation = old.generation() + 1;
        let snapshot = Snapshot::new(generation, jiff::Timestamp::now(), shards, dicts)?;
        let manifest = Manifest::describe(&snapshot).to_json()?;
        report.bytes_written += durable::write_file(&self.dir, MANIFEST, &[&manifest])
            .map_err(|source| self.io(MANIFEST, source))?;
        // The manifest is in place and names these files: never remove them from here on. If
        // the directory sync fails the caller gets an error (not durable) and the in-memory
        // generation stays the old one; the next open reads whichever manifest survived.
        written.clear();
        self.sync_dir()?;
        report.generation = generation;

        let keep: HashSet<&str> = snapshot.file_names().collect();
        let obsolete: Vec<String> = old
            .file_names()
            .filter(|n| !keep.contains(n))
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
        self.current.store(Arc::new(snapshot));
        self.published.send_replace(generation);

        // Readers still holding the old generation keep their mappings: unlinking a mapped
        // file leaves its pages valid. A failure here only leaves garbage for the next open.
        for name in obsolete {
            if let Err(e) = std::fs::remove_file(self.dir.join(&name)) {
                tracing::warn!(file = %name, error = %e, "cannot remove an obsolete snapshot file");
            }
        }
        Ok(report)
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
                reason: e.to_string(),
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
