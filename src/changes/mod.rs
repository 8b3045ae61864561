//! Change detection for IOF 3.0 differential files (`full_change…xml`).
//!
//! IOF lets a partner download the big full.xml rarely and then only the products whose main
//! nodes changed. This stage keeps that promise exactly:
//!
//! 1. **Hashes** ([`hash`]): every product's main nodes (its attributes and each direct child
//!    of `<product>`) hashed from a canonical encoding independent of partner settings, kept
//!    per content-addressed shard in the hash store, so an unchanged shard costs nothing.
//! 2. **The change log** ([`log`]): [`Changes::observe`] compares a new generation with the
//!    last one it saw — only the shards whose content differs, plus the products that show a
//!    dictionary entry that changed — and appends one fsynced frame: per product, the changed
//!    nodes with old and new hashes, or added, or removed. A generation with the same content
//!    appends nothing.
//! 3. **Windows** ([`Changes::due`]): every `window` (default 30 minutes) the frames since
//!    the last cut are folded into each product's net change (window start against window
//!    end: a change undone within the window disappears) and, for each IOF render profile
//!    with changes, a `full_change<YYYY-MM-DDThh-mm-ss>.xml` is due with its entries: changed
//!    products with only their changed nodes, products that entered the profile's offer (new,
//!    back in stock, added to the shop) whole, and those that left it as removed. The name is
//!    the time of the window's last change in the configured zone, bumped by a second when
//!    needed so that names and `changed` times strictly increase. The artifacts stage writes
//!    the files (see `artifacts::write_change_file` for nodes that disappear); this stage
//!    returns values and writes only its log, hash store and checkpoint.
//! 4. **Bases**: each full key's full.xml is a base rendered at a known log offset and kept
//!    until the daily rebuild (default 03:00 local) or until the profile is new; its change
//!    files start at that offset. The gateway lists every change file within `retention`
//!    (default 24 h), newest first — older than the base ones too, as IdoSell does, so a
//!    consumer midway through the chain can go on without the new base. The invariant: the
//!    base with the listed files whose `changed` is later than `full@changed` applied oldest
//!    first (replace attributes, replace each present main node, delete on `removed`, in
//!    document order) equals the full.xml of now, product by product.
//! 5. **Durability**: a generation counts as logged once its frame is fsynced (one fsync per
//!    generation). Hash files only restate snapshot content: they are made durable before the
//!    checkpoint that names them, and those named only by later frames are verified on open
//!    and recomputed from the store. The checkpoint (`STATE`) is rewritten when a window is
//!    cut or a base changes ([`Changes::commit`], after the files [`Due`] names are durable);
//!    the frames after it are replayed on open. A restart mid-window loses and
//!    repeats nothing: the open window is the log from its start offset, whatever happened
//!    in between. A damaged hash store or log starts the history afresh (new bases) rather
//!    than publishing a wrong change.
//!
//! Code: [`diff`] compares generations and appends frames, [`windows`] says what is due and
//! what each full key lists, [`verify`] checks a directory read-only.
//!
//! Layout under the data directory: `changes/STATE`, `changes/log/*.log`,
//! `changes/hashes/{s,d}*.nh`. The files a listing names live with the artifacts.

mod diff;
mod follow;
pub mod hash;
mod hashfiles;
pub mod log;
mod net;
mod schedule;
mod state;
mod verify;
mod windows;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::catalog::{MainNode, ProductId};
use crate::clock::Clock;
use crate::snapshot::Snapshot;
use diff::{apply_slots, observe_locked, start_at};
use follow::Followed;
pub use hash::{
    hash_product, hash_products, DictHashError, DictHashes, Membership, NodeHash, ProductHashes,
    Refs,
};
use hashfiles::{Cid, HashFileError, HashFiles};
use log::{Kind, Log, LogError};
pub use net::Entry;
use state::{ProfileState, State};
pub use verify::{verify, ChangesCheck};
pub use windows::{BaseDue, ChangeDue, Due, ListedFile, Listing};

/// Start a new log segment at a cut once the current one is this large.
const SEGMENT_BYTES: u64 = 16 << 20;

/// Settings of change detection.
#[derive(Debug, Clone)]
pub struct ChangesOptions {
    /// Length of a change window.
    pub window: Duration,
    /// How long change files stay listed and downloadable.
    pub retention: Duration,
    /// Local time of the daily base rebuild.
    pub rebuild_at: Time,
    /// Zone of file names, `changed` times and the rebuild schedule.
    pub timezone: TimeZone,
    /// Where the time of a fresh or restarted window is read (the system's clock by
    /// default); the times of cuts and rebuilds are passed in by the caller.
    pub clock: Clock,
}

impl ChangesOptions {
    /// The defaults: 30-minute windows, 24-hour retention, rebuild at 03:00 in `timezone`.
    pub fn new(timezone: TimeZone) -> Self {
        ChangesOptions {
            window: Duration::from_secs(30 * 60),
            retention: Duration::from_secs(24 * 3600),
            rebuild_at: Time::constant(3, 0, 0, 0),
            timezone,
            clock: Clock::system(),
        }
    }
}

/// Errors of the changes stage.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    HashFile(#[from] HashFileError),
    #[error(transparent)]
    Dict(#[from] DictHashError),
    #[error("invalid options: {0}")]
    Options(String),
    #[error("the change checkpoint cannot be read: {0}")]
    Checkpoint(String),
    #[error("this node follows another node's change history and keeps no log of its own")]
    Follower,
}

/// What [`Changes::observe`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObserveReport {
    /// The generation now logged.
    pub generation: u64,
    /// True when a frame was appended (the content differed).
    pub logged: bool,
    /// Products recorded as changed, added or removed.
    pub records: usize,
    /// Shards whose hashes were computed.
    pub shards_hashed: usize,
    /// Bytes written: hash files and the log frame.
    pub bytes_written: u64,
}

/// How a product changed, as the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These main nodes differ (empty: only shop membership changed).
    Nodes(Vec<MainNode>),
    Added,
    Removed,
}

/// One record of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// When the generation was published.
    pub time: Timestamp,
    pub generation: u64,
    pub product: ProductId,
    pub change: Change,
}

#[derive(Debug)]
struct Inner {
    log: Log,
    hashes: HashFiles,
    /// The snapshot the log is up to date with.
    last: Option<Arc<Snapshot>>,
    generation: u64,
    /// Content of each non-empty shard, by index.
    shards: BTreeMap<u32, Cid>,
    shard_count: u32,
    /// Shards the last frame removed; their hash files go at the next frame.
    unreferenced: Vec<Cid>,
    /// Hash files written since the last checkpoint, made durable before the next one.
    unsynced: Vec<Cid>,
    unsynced_dicts: Vec<Cid>,
    dicts: Cid,
    dict_hashes: Arc<DictHashes>,
    clock: Option<DateTime>,
    window_offset: u64,
    window_started: Timestamp,
    next_seq: u64,
    /// By [`RenderProfile::full_key`]: profiles that differ only in file type or discount
    /// share a base and its change files.
    profiles: BTreeMap<String, ProfileState>,
}

/// Change detection for one data directory. `Send + Sync`; every method serializes on an
/// internal lock (callers are the single publisher loop and tools).
#[derive(Debug)]
pub struct Changes {
    dir: PathBuf,
    opts: ChangesOptions,
    keeper: Keeper,
}

/// Who writes the history in the directory.
#[derive(Debug)]
enum Keeper {
    /// This node: it observes generations, cuts windows, writes log, hashes and checkpoint.
    Writer(Box<Mutex<Inner>>),
    /// Another node, whose files arrive here (a read replica): see [`follow`].
    Follower(Mutex<Followed>),
}

fn io_err(path: &Path, source: std::io::Error) -> ChangesError {
    ChangesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn change_name(time: DateTime) -> String {
    format!("full_change{}.xml", schedule::name_stamp(time))
}

/// `f` over `items` on every core (rayon's shared pool), results in order.
/// Workers hold one item's intermediate data at a time, so memory stays bounded by the
/// number of cores, not of items.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    // One item per task: each worker of the shared pool takes the next item.
    items.par_iter().with_max_len(1).map(&f).collect()
}

impl Changes {
    /// Open (or create) the change history in `dir` and bring it up to date with `current`.
    /// A history that cannot be trusted (damaged log or hash store, missing files) is
    /// started afresh: partners then get new bases. Blocking.
    pub fn open(
        dir: &Path,
        current: &Arc<Snapshot>,
        opts: ChangesOptions,
    ) -> Result<Changes, ChangesError> {
        if opts.window.is_zero() {
            return Err(ChangesError::Options(
                "the change window must be positive".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        // Bases and change files used to live here; they are the artifacts stage's now.
        let legacy = dir.join("files");
        if legacy.exists() {
            std::fs::remove_dir_all(&legacy).map_err(|e| io_err(&legacy, e))?;
        }
        let hashes = HashFiles::open(&dir.join("hashes"))?;
        let inner = match Self::recover(dir, hashes, current) {
            Ok(inner) => inner,
            Err((reason, clock)) => {
                match &reason {
                    None => tracing::info!(dir = %dir.display(), "starting the change history"),
                    Some(reason) => tracing::warn!(
                        dir = %dir.display(),
                        %reason,
                        "the change history cannot be trusted; starting it afresh (new bases)"
                    ),
                }
                Self::fresh(dir, current, clock, opts.clock.now())?
            }
        };
        let changes = Changes {
            dir: dir.to_path_buf(),
            opts,
            keeper: Keeper::Writer(Box::new(Mutex::new(inner))),
        };
        changes.observe(current)?;
        Ok(changes)
    }

    /// Follow the history another node writes into `dir` (a read replica's, whose files
    /// arrive with each manifest): list what the writer's checkpoint lists, re-read at every
    /// [`Changes::observe`]; never cut, never write. Blocking.
    pub fn follow(dir: &Path, opts: ChangesOptions) -> Result<Changes, ChangesError> {
        let followed = Followed::read(dir)?;
        Ok(Changes {
            dir: dir.to_path_buf(),
            opts,
            keeper: Keeper::Follower(Mutex::new(followed)),
        })
    }

    /// True when this node follows another node's history ([`Changes::follow`]).
    pub fn is_follower(&self) -> bool {
        matches!(self.keeper, Keeper::Follower(_))
    }

    /// The options in force.
    pub fn options(&self) -> &ChangesOptions {
        &self.opts
    }

    /// The writer's state; `None` on a follower, which has none.
    fn lock(&self) -> Option<parking_lot::MutexGuard<'_, Inner>> {
        // The state is only committed after each step succeeded; a panicked holder left the
        // last committed state.
        match &self.keeper {
            Keeper::Writer(inner) => Some(inner.lock()),
            Keeper::Follower(_) => None,
        }
    }

    /// Rebuild the in-memory state from the checkpoint and the log. `Err((None, _))`: no
    /// history yet; `Err((Some(reason), clock))`: unusable, with the clock if it was readable.
    #[allow(clippy::type_complexity)]
    fn recover(
        dir: &Path,
        hashes: HashFiles,
        current: &Snapshot,
    ) -> Result<Inner, (Option<String>, Option<DateTime>)> {
        let state = match State::read(dir) {
            Ok(Some(s)) => s,
            Ok(None) => return Err((None, None)),
            Err(e) => return Err((Some(e), None)),
        };
        let clock = state.clock.as_deref().and_then(|c| c.parse().ok());
        let fail = |reason: String| (Some(reason), clock);
        let (log, _torn) = Log::open(&dir.join("log")).map_err(|e| fail(e.to_string()))?;
        if log.end() < state.log_offset || state.window_offset > state.log_offset {
            return Err(fail(format!(
                "the log ends at {} but the checkpoint was taken at {}",
                log.end(),
                state.log_offset
            )));
        }
        let mut shards: BTreeMap<u32, Cid> = state
            .shards
            .iter()
            .map(|(i, s)| {
                hashfiles::unhex(s)
                    .map(|c| (*i, c))
                    .ok_or_else(|| fail(format!("bad shard id {s:?}")))
            })
            .collect::<Result<_, _>>()?;
        let mut shard_count = state.shard_count;
        let mut dicts = hashfiles::unhex(&state.dicts)
            .ok_or_else(|| fail(format!("bad dictionaries id {:?}", state.dicts)))?;
        let mut generation = state.generation;
        // Hash files named only by frames after the checkpoint may not have reached the disk.
        let mut unverified = HashSet::new();
        for located in log
            .read_from(state.log_offset)
            .map_err(|e| fail(e.to_string()))?
        {
            let f = located.frame;
            apply_slots(&mut shards, &mut shard_count, &f);
            unverified.extend(f.shards.iter().filter_map(|(_, c)| *c));
            dicts = f.dicts;
            generation = f.generation;
        }
        let live: HashSet<Cid> = shards.values().copied().collect();
        unverified.retain(|c| live.contains(c));
        for cid in &unverified {
            if hashes.shard(cid).is_ok() {
                continue;
            }
            // Lost in a crash: the store still has the shard if nothing newer replaced it.
            let view = current
                .shards()
                .find(|v| hashfiles::cid(&v.content_id) == *cid)
                .ok_or_else(|| {
                    fail(format!(
                        "the hash file of shard {} was lost and the store no longer has it",
                        hashfiles::hex(cid)
                    ))
                })?;
            // A torn file is replaced, not kept (`put_shard` keeps an existing file).
            hashes.remove_shard(cid);
            hashes
                .put_shard(cid, &hash_products(view.products))
                .map_err(|e| fail(e.to_string()))?;
        }
        if hashes.dicts(&dicts).is_err() && hashfiles::cid(&current.dicts_content_id()) == dicts {
            let d = DictHashes::new(current.dicts()).map_err(|e| fail(e.to_string()))?;
            hashes.remove_dicts(&dicts);
            hashes
                .put_dicts(&dicts, &d)
                .map_err(|e| fail(e.to_string()))?;
        }
        // The window must still be readable (it is replayed at the next cut).
        log.read_from(state.window_offset)
            .map_err(|e| fail(e.to_string()))?;
        let dict_hashes = Arc::new(hashes.dicts(&dicts).map_err(|e| fail(e.to_string()))?);
        let names = hashes.names();
        for cid in shards.values() {
            if !HashFiles::lists_shard(&names, cid) {
                return Err(fail(format!(
                    "the hash file of shard {} is missing",
                    hashfiles::hex(cid)
                )));
            }
        }
        hashes.retain_among(&names, &shards.values().copied().collect(), &dicts);

        let profiles = windows::usable(state.profiles, log.end());
        Ok(Inner {
            log,
            hashes,
            last: None,
            generation,
            shards,
            shard_count,
            unreferenced: Vec::new(),
            unsynced: unverified.into_iter().collect(),
            unsynced_dicts: vec![dicts],
            dicts,
            dict_hashes,
            clock,
            window_offset: state.window_offset,
            window_started: from_ms(state.window_started_ms),
            next_seq: state.next_seq,
            profiles,
        })
    }

    /// A new history starting at `current`: every shard hashed, an empty log, no bases.
    fn fresh(
        dir: &Path,
        current: &Arc<Snapshot>,
        clock: Option<DateTime>,
        now: Timestamp,
    ) -> Result<Inner, ChangesError> {
        let hashes = HashFiles::open(&dir.join("hashes"))?;
        let log = Log::create(&dir.join("log"), 0)?;
        let mut inner = Inner {
            log,
            hashes,
            last: None,
            generation: 0,
            shards: BTreeMap::new(),
            shard_count: 0,
            unreferenced: Vec::new(),
            unsynced: Vec::new(),
            unsynced_dicts: Vec::new(),
            dicts: [0; 16],
            dict_hashes: Arc::new(DictHashes::default()),
            clock,
            window_offset: 0,
            window_started: now,
            next_seq: 1,
            profiles: BTreeMap::new(),
        };
        start_at(&mut inner, current)?;
        checkpoint(dir, &mut inner)?;
        Ok(inner)
    }

    /// Bring the log up to date with `snapshot`: compare it with the last generation seen
    /// and append a frame when their content differs. Cost: the shards whose content
    /// changed (hashed once, stored), plus a scan for products showing a changed dictionary
    /// entry when the dictionaries changed. Blocking.
    ///
    /// A follower re-reads the writer's checkpoint instead: the generation's files are in
    /// place before the store publishes it. A checkpoint it cannot read leaves the listings
    /// it had.
    pub fn observe(&self, snapshot: &Arc<Snapshot>) -> Result<ObserveReport, ChangesError> {
        let mut inner = match &self.keeper {
            Keeper::Writer(inner) => inner.lock(),
            Keeper::Follower(followed) => {
                *followed.lock() = Followed::read(&self.dir)?;
                return Ok(ObserveReport {
                    generation: snapshot.generation(),
                    ..Default::default()
                });
            }
        };
        match observe_locked(&mut inner, snapshot) {
            Err(ChangesError::HashFile(e)) => {
                tracing::warn!(error = %e, "the hash store is damaged; starting the change history afresh (new bases)");
                self.restart(&mut inner, snapshot)?;
                Ok(ObserveReport {
                    generation: snapshot.generation(),
                    ..Default::default()
                })
            }
            other => other,
        }
    }

    /// Start the history afresh while serving: every listing is dropped (their files stay
    /// for downloads under way until the artifacts stage collects them).
    fn restart(&self, inner: &mut Inner, snapshot: &Arc<Snapshot>) -> Result<(), ChangesError> {
        let now = self.opts.clock.now();
        inner.profiles.clear();
        inner.log = Log::create(&self.dir.join("log"), 0)?;
        inner.shards.clear();
        inner.unreferenced.clear();
        inner.window_offset = 0;
        inner.window_started = now;
        start_at(inner, snapshot)?;
        checkpoint(&self.dir, inner)
    }

    /// When [`Changes::due`] next has something to do: the end of the open window or
    /// the next scheduled base rebuild, whichever comes first.
    /// A follower has nothing to do on time: never.
    pub fn next_deadline(&self, now: Timestamp) -> Timestamp {
        let Some(inner) = self.lock() else {
            return Timestamp::MAX;
        };
        let cut = schedule::next_cut(inner.window_started, self.opts.window);
        match schedule::next_rebuild(now, self.opts.rebuild_at, &self.opts.timezone) {
            Some(r) if r < cut => r,
            _ => cut,
        }
    }

    /// The generation the log is up to date with (a follower: the writer's checkpoint).
    pub fn generation(&self) -> u64 {
        match &self.keeper {
            Keeper::Writer(inner) => inner.lock().generation,
            Keeper::Follower(followed) => followed.lock().generation,
        }
    }

    /// Every record still in the log, oldest first (for inspection and tests).
    pub fn log_entries(&self) -> Result<Vec<LogEntry>, ChangesError> {
        let inner = self.lock().ok_or(ChangesError::Follower)?;
        let frames = inner.log.read_from(inner.log.start())?;
        Ok(frames
            .into_iter()
            .flat_map(|l| {
                let f = l.frame;
                let (time, generation) = (f.time, f.generation);
                f.records.into_iter().map(move |r| LogEntry {
                    time,
                    generation,
                    product: r.product,
                    change: match r.kind {
                        Kind::Added => Change::Added,
                        Kind::Removed => Change::Removed,
                        Kind::Changed => Change::Nodes(r.nodes.iter().map(|d| d.node).collect()),
                    },
                })
            })
            .collect())
    }
}

fn checkpoint(dir: &Path, inner: &mut Inner) -> Result<(), ChangesError> {
    // The checkpoint names the current shards: their hash files must be durable first.
    let shards: Vec<Cid> = std::mem::take(&mut inner.unsynced)
        .into_iter()
        .filter(|c| inner.shards.values().any(|x| x == c))
        .collect();
    let dicts: Vec<Cid> = std::mem::take(&mut inner.unsynced_dicts)
        .into_iter()
        .filter(|c| *c == inner.dicts)
        .collect();
    if let Err(e) = inner.hashes.sync(&shards, &dicts) {
        inner.unsynced.extend(shards);
        inner.unsynced_dicts.extend(dicts);
        return Err(e.into());
    }
    let shards: Vec<(u32, String)> = inner
        .shards
        .iter()
        .map(|(i, c)| (*i, hashfiles::hex(c)))
        .collect();
    let state = State {
        version: state::VERSION,
        clock: inner.clock.map(|c| c.to_string()),
        log_offset: inner.log.end(),
        generation: inner.generation,
        dicts: hashfiles::hex(&inner.dicts),
        shard_count: inner.shard_count,
        shards,
        window_offset: inner.window_offset,
        window_started_ms: ms(inner.window_started),
        next_seq: inner.next_seq,
        profiles: inner.profiles.values().cloned().collect(),
    };
    state
        .write(dir)
        .map_err(|e| io_err(&dir.join(state::STATE), e))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
