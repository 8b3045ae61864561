//! Change detection and IOF 3.0 differential files (`full_change…xml`).
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
//! 3. **Windows** ([`Changes::maintain`]): every `window` (default 30 minutes) the frames since
//!    the last cut are folded into each product's net change (window start against window
//!    end: a change undone within the window disappears) and, for each IOF render profile
//!    with changes, a `full_change<YYYY-MM-DDThh-mm-ss>.xml` is written: changed products with
//!    all attributes and only their changed nodes (state at the window's end), products that
//!    entered the profile's offer (new, back in stock, added to the shop) whole, and those
//!    that left it as `removed="yes"`. The name is the time of the window's last change in
//!    the configured zone, bumped by a second when needed so that names and `changed` times
//!    strictly increase. See [`files::write_change_file`] for nodes that disappear.
//! 4. **Bases**: each profile's full.xml is a base rendered at a known log offset and kept
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
//!    cut or a base changes; the frames after it are replayed on open. A restart mid-window loses and
//!    repeats nothing: the open window is the log from its start offset, whatever happened
//!    in between. A damaged hash store or log starts the history afresh (new bases) rather
//!    than publishing a wrong change.
//!
//! Layout under the data directory: `changes/STATE`, `changes/log/*.log`,
//! `changes/hashes/{s,d}*.nh`, `changes/files/{profile}/b{n}-full.xml` (bases) and
//! `c{n}-full_change….xml` (change files), with the artifacts' `.meta` sidecars and `.gz`
//! variants.

mod files;
pub mod hash;
mod hashfiles;
pub mod log;
mod net;
mod schedule;
mod state;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::artifacts::{self, Artifact, ArtifactError, FullFiles};
use crate::catalog::ProductId;
use crate::render::{self, DictIndex, Format, MainNode, OfferMeta, RenderProfile};
use crate::snapshot::Snapshot;
pub use hash::{
    hash_product, hash_products, DictHashError, DictHashes, Membership, NodeHash, ProductHashes,
    Refs,
};
use hashfiles::{Cid, HashFileError, HashFiles};
use log::{Frame, Kind, Log, LogError, NodeDelta, Record};
pub use net::Entry;
use state::{BaseState, ChangeState, ProfileState, State};

/// Start a new log segment at a cut once the current one is this large.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Files dropped from the listing are deleted this much later (downloads that started from
/// the previous listing still find them).
const RETIRE_GRACE: Duration = Duration::from_secs(120);

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
}

impl ChangesOptions {
    /// The defaults: 30-minute windows, 24-hour retention, rebuild at 03:00 in `timezone`.
    pub fn new(timezone: TimeZone) -> Self {
        ChangesOptions {
            window: Duration::from_secs(30 * 60),
            retention: Duration::from_secs(24 * 3600),
            rebuild_at: Time::constant(3, 0, 0, 0),
            timezone,
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
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("invalid options: {0}")]
    Options(String),
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

/// A base or change file: its persisted description and the servable artifact.
#[derive(Debug, Clone)]
struct Profile {
    state: ProfileState,
    base: Arc<Artifact>,
    /// Aligned with `state.changes` (oldest first).
    changes: Vec<Arc<Artifact>>,
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
    profiles: BTreeMap<String, Profile>,
    /// (when, profile directory, file stem) of files no longer listed.
    retired: Vec<(Timestamp, PathBuf, String)>,
}

/// What a cut or base rebuild may undo if it cannot be made durable.
struct SavePoint {
    clock: Option<DateTime>,
    window_offset: u64,
    window_started: Timestamp,
    next_seq: u64,
    profiles: BTreeMap<String, Profile>,
    retired: usize,
}

/// Change detection for one data directory. `Send + Sync`; every method serializes on an
/// internal lock (callers are the single publisher loop and tools).
#[derive(Debug)]
pub struct Changes {
    dir: PathBuf,
    opts: ChangesOptions,
    inner: Mutex<Inner>,
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

fn stem_of(file_name: &str) -> &str {
    file_name.split_once('-').map_or(file_name, |(s, _)| s)
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

/// Records for products whose hashes differ between `old` and `new` (both any order).
fn diff(
    mut old: Vec<ProductHashes>,
    mut new: Vec<ProductHashes>,
    old_dicts: &DictHashes,
    new_dicts: &DictHashes,
    same_dicts: bool,
) -> Vec<Record> {
    old.sort_unstable_by_key(|h| h.id);
    new.sort_unstable_by_key(|h| h.id);
    let mut out = Vec::new();
    let (mut a, mut b) = (old.into_iter().peekable(), new.into_iter().peekable());
    let present = |eff: [NodeHash; hash::NODES], added: bool| -> Vec<NodeDelta> {
        MainNode::ALL
            .into_iter()
            .filter(|n| eff[hash::index(*n)] != hash::ABSENT)
            .map(|node| {
                let h = eff[hash::index(node)];
                if added {
                    NodeDelta {
                        node,
                        old: hash::ABSENT,
                        new: h,
                    }
                } else {
                    NodeDelta {
                        node,
                        old: h,
                        new: hash::ABSENT,
                    }
                }
            })
            .collect()
    };
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.id.cmp(&y.id),
        };
        match order {
            std::cmp::Ordering::Less => {
                let Some(x) = a.next() else { break };
                out.push(Record {
                    product: x.id,
                    kind: Kind::Removed,
                    nodes: present(old_dicts.effective(&x), false),
                    old: Some(x.membership),
                    new: None,
                });
            }
            std::cmp::Ordering::Greater => {
                let Some(y) = b.next() else { break };
                out.push(Record {
                    product: y.id,
                    kind: Kind::Added,
                    nodes: present(new_dicts.effective(&y), true),
                    old: None,
                    new: Some(y.membership),
                });
            }
            std::cmp::Ordering::Equal => {
                let (Some(x), Some(y)) = (a.next(), b.next()) else {
                    break;
                };
                if same_dicts && x == y {
                    continue;
                }
                if let Some(r) = changed_record(&x, &y, old_dicts, new_dicts) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// The record of a product present on both sides, if anything it shows differs.
fn changed_record(
    x: &ProductHashes,
    y: &ProductHashes,
    old_dicts: &DictHashes,
    new_dicts: &DictHashes,
) -> Option<Record> {
    let (ex, ey) = (old_dicts.effective(x), new_dicts.effective(y));
    let nodes: Vec<NodeDelta> = MainNode::ALL
        .into_iter()
        .filter(|n| ex[hash::index(*n)] != ey[hash::index(*n)])
        .map(|node| NodeDelta {
            node,
            old: ex[hash::index(node)],
            new: ey[hash::index(node)],
        })
        .collect();
    if nodes.is_empty() && x.membership == y.membership {
        return None;
    }
    Some(Record {
        product: y.id,
        kind: Kind::Changed,
        nodes,
        old: Some(x.membership.clone()),
        new: Some(y.membership.clone()),
    })
}

/// What [`verify`] found in a change-history directory.
#[derive(Debug, Default)]
pub struct ChangesCheck {
    /// The checkpoint's generation and log offset, when there is a checkpoint.
    pub checkpoint: Option<(u64, u64)>,
    pub log: log::LogCheck,
    /// Hash files of the generation the log reached, read and checksummed.
    pub hash_files: usize,
    /// Damage found, each naming its file.
    pub problems: Vec<String>,
    /// Findings a start repairs by itself (hash files not yet durable, recomputed).
    pub notes: Vec<String>,
}

/// Check the change history in `dir` — the checkpoint, every log frame, the hash files of
/// the generation the log reached — without changing anything. (A server starts a history
/// it cannot trust afresh; this tells the operator before that happens.)
pub fn verify(dir: &Path) -> ChangesCheck {
    let mut out = ChangesCheck::default();
    let state_path = dir.join(state::STATE);
    let state = match State::read(dir) {
        Ok(Some(s)) => s,
        Ok(None) => {
            if let Err(e) = log::check(&dir.join("log"), u64::MAX).map(|(l, _)| out.log = l) {
                out.problems.push(e.to_string());
            }
            return out;
        }
        Err(e) => {
            out.problems.push(e);
            return out;
        }
    };
    out.checkpoint = Some((state.generation, state.log_offset));
    let tail = match log::check(&dir.join("log"), state.log_offset) {
        Ok((l, tail)) => {
            out.log = l;
            tail
        }
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    if state.log_offset < out.log.start || state.log_offset > out.log.end {
        out.problems.push(format!(
            "{}: the checkpoint is at log offset {} but the log holds {}..{}",
            state_path.display(),
            state.log_offset,
            out.log.start,
            out.log.end
        ));
        return out;
    }
    let parse = |id: &str| {
        hashfiles::unhex(id)
            .ok_or_else(|| format!("{}: bad content id {id:?}", state_path.display()))
    };
    let (mut shards, dicts) = match state
        .shards
        .iter()
        .map(|(i, id)| parse(id).map(|c| (*i, c)))
        .collect::<Result<BTreeMap<u32, Cid>, _>>()
        .and_then(|s| Ok((s, parse(&state.dicts)?)))
    {
        Ok(v) => v,
        Err(e) => {
            out.problems.push(e);
            return out;
        }
    };
    // The checkpoint's files were made durable before it named them; files named only by
    // later frames may be lost to a crash and are recomputed from the store at start.
    let durable: HashSet<Cid> = shards.values().copied().chain([dicts]).collect();
    let (mut count, mut dicts) = (state.shard_count, dicts);
    for f in &tail {
        apply_slots(&mut shards, &mut count, f);
        dicts = f.dicts;
    }
    let hashes_dir = dir.join("hashes");
    let hashes = match hashes_dir.is_dir().then(|| HashFiles::open(&hashes_dir)) {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            out.problems.push(e.to_string());
            return out;
        }
        None => {
            out.problems
                .push(format!("{}: missing", hashes_dir.display()));
            return out;
        }
    };
    let results = shards
        .values()
        .map(|cid| (cid, hashes.shard(cid).map(drop)))
        .chain([(&dicts, hashes.dicts(&dicts).map(drop))]);
    for (cid, result) in results {
        match result {
            Ok(()) => out.hash_files += 1,
            Err(e) if durable.contains(cid) => out.problems.push(e.to_string()),
            Err(e) => out.notes.push(format!("{e} (recomputed at start)")),
        }
    }
    out
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
                Self::fresh(dir, current, clock)?
            }
        };
        let changes = Changes {
            dir: dir.to_path_buf(),
            opts,
            inner: Mutex::new(inner),
        };
        changes.observe(current)?;
        Ok(changes)
    }

    /// The options in force.
    pub fn options(&self) -> &ChangesOptions {
        &self.opts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is only committed after each step succeeded; a panicked holder left the
        // last committed state.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn files_dir(&self) -> PathBuf {
        self.dir.join("files")
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
        for cid in shards.values() {
            if !hashes.has_shard(cid) {
                return Err(fail(format!(
                    "the hash file of shard {} is missing",
                    hashfiles::hex(cid)
                )));
            }
        }
        hashes.retain(&shards.values().copied().collect(), &dicts);

        let files_dir = dir.join("files");
        let mut profiles = BTreeMap::new();
        for ps in state.profiles {
            match load_profile(&files_dir, &ps, log.end()) {
                Some(p) => {
                    profiles.insert(ps.key.clone(), p);
                }
                None => tracing::warn!(
                    profile = %ps.key,
                    "a base or change file is missing or damaged; the profile gets a new base"
                ),
            }
        }
        collect_files(&files_dir, &profiles);
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
            retired: Vec::new(),
        })
    }

    /// A new history starting at `current`: every shard hashed, an empty log, no bases.
    fn fresh(
        dir: &Path,
        current: &Arc<Snapshot>,
        clock: Option<DateTime>,
    ) -> Result<Inner, ChangesError> {
        let hashes = HashFiles::open(&dir.join("hashes"))?;
        let log = Log::create(&dir.join("log"), 0)?;
        let files_dir = dir.join("files");
        if files_dir.exists() {
            std::fs::remove_dir_all(&files_dir).map_err(|e| io_err(&files_dir, e))?;
        }
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
            window_started: Timestamp::now(),
            next_seq: 1,
            profiles: BTreeMap::new(),
            retired: Vec::new(),
        };
        start_at(&mut inner, current)?;
        checkpoint(dir, &mut inner)?;
        Ok(inner)
    }

    /// Bring the log up to date with `snapshot`: compare it with the last generation seen
    /// and append a frame when their content differs. Cost: the shards whose content
    /// changed (hashed once, stored), plus a scan for products showing a changed dictionary
    /// entry when the dictionaries changed. Blocking.
    pub fn observe(&self, snapshot: &Arc<Snapshot>) -> Result<ObserveReport, ChangesError> {
        let mut inner = self.lock();
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

    /// Start the history afresh while serving: files in use are retired, not deleted.
    fn restart(&self, inner: &mut Inner, snapshot: &Arc<Snapshot>) -> Result<(), ChangesError> {
        let now = Timestamp::now();
        let files_dir = self.files_dir();
        for (key, p) in std::mem::take(&mut inner.profiles) {
            let dir = files_dir.join(&key);
            inner
                .retired
                .push((now, dir.clone(), format!("b{}", p.state.base.seq)));
            for c in &p.state.changes {
                inner
                    .retired
                    .push((now, dir.clone(), format!("c{}", c.seq)));
            }
        }
        inner.log = Log::create(&self.dir.join("log"), 0)?;
        inner.shards.clear();
        inner.unreferenced.clear();
        inner.window_offset = 0;
        inner.window_started = now;
        start_at(inner, snapshot)?;
        checkpoint(&self.dir, inner)
    }

    /// Periodic work, due when [`Changes::next_deadline`] passes and after each new
    /// generation: cut the window when its time has come, give new (or changed) IOF profiles
    /// a base, rebuild bases on schedule, drop change files past retention. Returns true when
    /// the files to serve changed (republish the artifacts). Blocking.
    pub fn maintain(
        &self,
        profiles: &[RenderProfile],
        now: Timestamp,
    ) -> Result<bool, ChangesError> {
        let mut inner = self.lock();
        self.purge_retired(&mut inner, now);
        let mut changed = false;
        if now >= schedule::next_cut(inner.window_started, self.opts.window) {
            changed |= self.cut_locked(&mut inner, profiles, now)? > 0;
        }
        changed |= self.bases_locked(&mut inner, profiles, now)?;
        Ok(changed)
    }

    /// Cut the open window now, whatever the timer says: write the change files of every
    /// profile that has a base and net changes. Returns the number of files written.
    pub fn cut(&self, profiles: &[RenderProfile], now: Timestamp) -> Result<usize, ChangesError> {
        let mut inner = self.lock();
        self.cut_locked(&mut inner, profiles, now)
    }

    /// When [`Changes::maintain`] next has something to do: the end of the open window or
    /// the next scheduled base rebuild, whichever comes first.
    pub fn next_deadline(&self, now: Timestamp) -> Timestamp {
        let inner = self.lock();
        let cut = schedule::next_cut(inner.window_started, self.opts.window);
        match schedule::next_rebuild(now, self.opts.rebuild_at, &self.opts.timezone) {
            Some(r) if r < cut => r,
            _ => cut,
        }
    }

    /// The base full.xml and listed change files of an IOF profile (`None` before it has a
    /// base, and for CSV profiles).
    pub fn full_files(&self, profile: &RenderProfile) -> Option<FullFiles> {
        if profile.format != Format::Iof30 {
            return None;
        }
        let inner = self.lock();
        let p = inner.profiles.get(&profile.key())?;
        Some(FullFiles {
            base: p.base.clone(),
            changes: p.changes.iter().rev().cloned().collect(),
        })
    }

    /// The generation the log is up to date with.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Every record still in the log, oldest first (for inspection and tests).
    pub fn log_entries(&self) -> Result<Vec<LogEntry>, ChangesError> {
        let inner = self.lock();
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

    fn purge_retired(&self, inner: &mut Inner, now: Timestamp) {
        let grace = jiff::SignedDuration::try_from(RETIRE_GRACE).unwrap_or_default();
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.retired)
            .into_iter()
            .partition(|(when, _, _)| when.checked_add(grace).is_ok_and(|t| t <= now));
        inner.retired = keep;
        for (_, dir, stem) in due {
            remove_stem(&dir, &stem);
        }
    }

    fn save_point(inner: &Inner) -> SavePoint {
        SavePoint {
            clock: inner.clock,
            window_offset: inner.window_offset,
            window_started: inner.window_started,
            next_seq: inner.next_seq,
            profiles: inner.profiles.clone(),
            retired: inner.retired.len(),
        }
    }

    /// Make the new state durable, or put the old one back and delete `written`.
    fn commit(
        &self,
        inner: &mut Inner,
        saved: SavePoint,
        written: &[(PathBuf, String)],
    ) -> Result<(), ChangesError> {
        match checkpoint(&self.dir, inner) {
            Ok(()) => Ok(()),
            Err(e) => {
                inner.clock = saved.clock;
                inner.window_offset = saved.window_offset;
                inner.window_started = saved.window_started;
                inner.next_seq = saved.next_seq;
                inner.profiles = saved.profiles;
                inner.retired.truncate(saved.retired);
                for (dir, stem) in written {
                    remove_stem(dir, stem);
                }
                Err(e)
            }
        }
    }

    fn cut_locked(
        &self,
        inner: &mut Inner,
        profiles: &[RenderProfile],
        now: Timestamp,
    ) -> Result<usize, ChangesError> {
        if inner.last.is_none() {
            // Nothing observed yet: the window cannot be rendered, keep it open.
            return Ok(0);
        }
        let saved = Self::save_point(inner);
        let mut written = Vec::new();
        let result = self.cut_files(inner, profiles, now, &mut written);
        let count = match result {
            Ok(n) => n,
            Err(e) => {
                for (dir, stem) in &written {
                    remove_stem(dir, stem);
                }
                inner.clock = saved.clock;
                inner.next_seq = saved.next_seq;
                inner.profiles = saved.profiles;
                return Err(e);
            }
        };
        inner.window_offset = inner.log.end();
        inner.window_started = now;
        self.commit(inner, saved, &written)?;
        // Older segments are history the change files now carry.
        if inner.log.tail_len() > SEGMENT_BYTES {
            if let Err(e) = inner.log.rotate() {
                tracing::warn!(error = %e, "cannot start a new change-log segment");
            }
        }
        inner.log.drop_before(inner.window_offset);
        if count > 0 {
            tracing::info!(files = count, "change window cut");
        }
        Ok(count)
    }

    /// Write the open window's change files; records what it wrote in `written`.
    fn cut_files(
        &self,
        inner: &mut Inner,
        profiles: &[RenderProfile],
        now: Timestamp,
        written: &mut Vec<(PathBuf, String)>,
    ) -> Result<usize, ChangesError> {
        let frames = inner.log.read_from(inner.window_offset)?;
        let Some(last_change) = frames
            .iter()
            .rev()
            .find(|l| !l.frame.records.is_empty())
            .map(|l| l.frame.time)
        else {
            return Ok(0);
        };
        let Some(snapshot) = inner.last.clone() else {
            return Ok(0);
        };
        let dicts = DictIndex::new(snapshot.dicts());
        let window_net = net::net_changes(frames.iter().map(|l| &l.frame));
        let mut time = None;
        let mut count = 0;
        let keys: Vec<String> = iof_profiles(profiles).map(|p| p.key()).collect();
        for key in keys {
            let Some(profile_files) = inner.profiles.get(&key) else {
                continue;
            };
            let profile = profile_files.state.profile.clone();
            let from = profile_files.state.base.offset;
            // A base built within the window already shows its earlier part.
            let local;
            let nets = if from <= inner.window_offset {
                &window_net
            } else {
                local =
                    net::net_changes(frames.iter().filter(|l| l.offset >= from).map(|l| &l.frame));
                &local
            };
            let entries: Vec<(ProductId, Entry)> = nets
                .iter()
                .filter_map(|(id, n)| n.entry(&profile).map(|e| (*id, e)))
                .collect();
            if entries.is_empty() {
                continue;
            }
            let t = *time.get_or_insert_with(|| {
                let t = schedule::issue(last_change, &self.opts.timezone, inner.clock);
                inner.clock = Some(t);
                t
            });
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let dir = self.files_dir().join(&key);
            std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
            let stem = format!("c{seq}");
            written.push((dir.clone(), stem.clone()));
            let meta = offer_meta(t);
            let artifact = artifacts::build_file(
                &dir,
                &change_name(t),
                "full_change",
                &stem,
                t,
                SystemTime::from(now),
                |w: &mut artifacts::Sink| {
                    files::write_change_file(w, &profile, &dicts, &snapshot, &entries, &meta)
                },
            )?;
            let p = inner
                .profiles
                .get_mut(&key)
                .ok_or_else(|| ChangesError::Options("profile vanished".into()))?;
            p.state.changes.push(ChangeState {
                seq,
                time: t.to_string(),
                created_ms: ms(now),
            });
            p.changes.push(Arc::new(artifact));
            count += 1;
        }
        Ok(count)
    }

    /// Bases for new profiles and on schedule; profiles no longer in use and change files
    /// past retention retired.
    fn bases_locked(
        &self,
        inner: &mut Inner,
        profiles: &[RenderProfile],
        now: Timestamp,
    ) -> Result<bool, ChangesError> {
        let wanted: BTreeMap<String, &RenderProfile> =
            iof_profiles(profiles).map(|p| (p.key(), p)).collect();
        let rebuild_due = schedule::last_rebuild(now, self.opts.rebuild_at, &self.opts.timezone);
        let retention = jiff::SignedDuration::try_from(self.opts.retention).unwrap_or_default();
        let expired_before = now.checked_sub(retention).unwrap_or(Timestamp::MIN);
        let saved = Self::save_point(inner);
        let mut changed = false;
        let files_dir = self.files_dir();

        let gone: Vec<String> = inner
            .profiles
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(p) = inner.profiles.remove(&key) {
                retire_profile(&mut inner.retired, now, &files_dir.join(&key), &p.state);
                changed = true;
            }
        }
        for p in inner.profiles.values_mut() {
            let keep = p
                .state
                .changes
                .iter()
                .position(|c| from_ms(c.created_ms) >= expired_before)
                .unwrap_or(p.state.changes.len());
            if keep > 0 {
                let dir = files_dir.join(&p.state.key);
                for c in p.state.changes.drain(..keep) {
                    inner
                        .retired
                        .push((now, dir.clone(), format!("c{}", c.seq)));
                }
                p.changes.drain(..keep);
                changed = true;
            }
        }

        let mut written = Vec::new();
        // Bases built together share one time, so profiles that differ only in how files
        // are delivered (xml, xml.gz) serve the same bytes.
        let mut time = None;
        for (key, profile) in &wanted {
            let due = match inner.profiles.get(key) {
                None => true,
                Some(p) => rebuild_due.is_some_and(|t| from_ms(p.state.base.built_ms) < t),
            };
            if !due {
                continue;
            }
            match self.build_base(inner, key, profile, now, &mut time, &mut written) {
                Ok(()) => changed = true,
                Err(e) => {
                    for (dir, stem) in &written {
                        remove_stem(dir, stem);
                    }
                    let retired = saved.retired;
                    inner.clock = saved.clock;
                    inner.next_seq = saved.next_seq;
                    inner.profiles = saved.profiles;
                    inner.retired.truncate(retired);
                    return Err(e);
                }
            }
        }
        if changed {
            self.commit(inner, saved, &written)?;
        }
        Ok(changed)
    }

    fn build_base(
        &self,
        inner: &mut Inner,
        key: &str,
        profile: &RenderProfile,
        now: Timestamp,
        time: &mut Option<DateTime>,
        written: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), ChangesError> {
        let Some(snapshot) = inner.last.clone() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let t = *time.get_or_insert_with(|| {
            let t = schedule::issue(now, &self.opts.timezone, inner.clock);
            inner.clock = Some(t);
            t
        });
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let dir = self.files_dir().join(key);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let stem = format!("b{seq}");
        written.push((dir.clone(), stem.clone()));
        let dicts = DictIndex::new(snapshot.dicts());
        let meta = offer_meta(t);
        let artifact = artifacts::build_file(
            &dir,
            "full.xml",
            "full",
            &stem,
            t,
            SystemTime::from(now),
            |w: &mut artifacts::Sink| render::full(w, profile, &dicts, &meta, snapshot.products()),
        )?;
        let base = BaseState {
            seq,
            time: t.to_string(),
            built_ms: ms(now),
            offset: inner.log.end(),
            generation: snapshot.generation(),
        };
        match inner.profiles.get_mut(key) {
            Some(p) => {
                inner
                    .retired
                    .push((now, dir, format!("b{}", p.state.base.seq)));
                p.state.base = base;
                p.state.profile = profile.clone();
                p.base = Arc::new(artifact);
            }
            None => {
                inner.profiles.insert(
                    key.to_string(),
                    Profile {
                        state: ProfileState {
                            key: key.to_string(),
                            profile: profile.clone(),
                            base,
                            changes: Vec::new(),
                        },
                        base: Arc::new(artifact),
                        changes: Vec::new(),
                    },
                );
            }
        }
        tracing::info!(
            profile = key,
            generation = snapshot.generation(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "base full.xml built"
        );
        Ok(())
    }
}

fn iof_profiles(profiles: &[RenderProfile]) -> impl Iterator<Item = &RenderProfile> {
    let mut seen = HashSet::new();
    profiles
        .iter()
        .filter(|p| p.format == Format::Iof30)
        .filter(move |p| seen.insert(p.key()))
}

fn offer_meta(t: DateTime) -> OfferMeta {
    OfferMeta {
        generated: t,
        expires: t.checked_add(jiff::Span::new().days(1)).unwrap_or(t),
    }
}

fn retire_profile(
    retired: &mut Vec<(Timestamp, PathBuf, String)>,
    now: Timestamp,
    dir: &Path,
    state: &ProfileState,
) {
    retired.push((now, dir.to_path_buf(), format!("b{}", state.base.seq)));
    for c in &state.changes {
        retired.push((now, dir.to_path_buf(), format!("c{}", c.seq)));
    }
}

/// Delete every file of `stem` in `dir` (the data file, its sidecar, its gzip variant), and
/// the directory once empty.
fn remove_stem(dir: &Path, stem: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| stem_of(n) == stem) {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an old change file");
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Remove files of the files directory that no profile state names (left by a crash).
fn collect_files(files_dir: &Path, profiles: &BTreeMap<String, Profile>) {
    let Ok(dirs) = std::fs::read_dir(files_dir) else {
        return;
    };
    for d in dirs.flatten() {
        let key = d.file_name().to_string_lossy().into_owned();
        let Some(p) = profiles.get(&key) else {
            let _ = std::fs::remove_dir_all(d.path());
            continue;
        };
        let stems: HashSet<String> = std::iter::once(format!("b{}", p.state.base.seq))
            .chain(p.state.changes.iter().map(|c| format!("c{}", c.seq)))
            .collect();
        let Ok(entries) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_str().is_some_and(|n| stems.contains(stem_of(n))) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The artifacts of a persisted profile, if every file is intact and its base is reachable.
fn load_profile(files_dir: &Path, ps: &ProfileState, log_end: u64) -> Option<Profile> {
    if ps.base.offset > log_end || ps.key != ps.profile.key() {
        return None;
    }
    let dir = files_dir.join(&ps.key);
    let base = artifacts::load_file(
        &dir.join(format!("b{}-full.xml", ps.base.seq)),
        "full.xml",
        "full",
    )?;
    let mut changes = Vec::with_capacity(ps.changes.len());
    for c in &ps.changes {
        let t: DateTime = c.time.parse().ok()?;
        let name = change_name(t);
        let a = artifacts::load_file(
            &dir.join(format!("c{}-{name}", c.seq)),
            &name,
            "full_change",
        )?;
        changes.push(Arc::new(a));
    }
    Some(Profile {
        state: ps.clone(),
        base: Arc::new(base),
        changes,
    })
}

/// Take `snapshot` as the logged state without a frame: every shard hashed and stored.
fn start_at(inner: &mut Inner, snapshot: &Arc<Snapshot>) -> Result<(), ChangesError> {
    let views: Vec<(Cid, &[crate::catalog::ArchivedProduct])> = snapshot
        .shards()
        .map(|s| (hashfiles::cid(&s.content_id), s.products))
        .filter(|(cid, _)| !inner.hashes.has_shard(cid))
        .collect();
    let started = std::time::Instant::now();
    let hashes = &inner.hashes;
    for written in parallel(&views, |(cid, products)| {
        hashes.put_shard(cid, &hash_products(products))
    }) {
        written?;
    }
    inner.unsynced.extend(views.iter().map(|(c, _)| *c));
    let dicts = hashfiles::cid(&snapshot.dicts_content_id());
    let dict_hashes = DictHashes::new(snapshot.dicts())?;
    inner.hashes.put_dicts(&dicts, &dict_hashes)?;
    inner.unsynced_dicts.push(dicts);
    inner.shards = snapshot
        .shards()
        .map(|s| (s.index, hashfiles::cid(&s.content_id)))
        .collect();
    inner.shard_count = snapshot.shard_count();
    inner.dicts = dicts;
    inner.dict_hashes = Arc::new(dict_hashes);
    inner.generation = snapshot.generation();
    inner.last = Some(snapshot.clone());
    inner
        .hashes
        .retain(&inner.shards.values().copied().collect(), &inner.dicts);
    tracing::info!(
        products = snapshot.len(),
        shards = views.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "main-node hashes computed"
    );
    Ok(())
}

/// Apply a frame's shard slots to a shard map.
fn apply_slots(shards: &mut BTreeMap<u32, Cid>, count: &mut u32, f: &Frame) {
    if f.shard_count != *count {
        shards.clear();
        *count = f.shard_count;
    }
    for (index, cid) in &f.shards {
        match cid {
            Some(cid) => shards.insert(*index, *cid),
            None => shards.remove(index),
        };
    }
}

/// One unit of diff work: old shard contents against new ones covering the same products.
struct Pair<'s> {
    old: Vec<Cid>,
    new: Vec<(Cid, &'s [crate::catalog::ArchivedProduct])>,
}

/// What one [`Pair`] produced.
struct PairDone {
    records: Vec<Record>,
    hashed: usize,
    bytes: u64,
}

fn diff_pair(
    hashes: &HashFiles,
    pair: &Pair,
    old_dicts: &DictHashes,
    new_dicts: &DictHashes,
    same_dicts: bool,
) -> Result<PairDone, ChangesError> {
    let mut old_side = Vec::new();
    for cid in &pair.old {
        old_side.extend(hashes.shard(cid)?);
    }
    let mut new_side = Vec::new();
    let mut bytes = 0;
    for (cid, products) in &pair.new {
        let hashed = hash_products(products);
        bytes += hashes.put_shard(cid, &hashed)?;
        new_side.extend(hashed);
    }
    Ok(PairDone {
        records: diff(old_side, new_side, old_dicts, new_dicts, same_dicts),
        hashed: pair.new.len(),
        bytes,
    })
}

/// Diff pairs on every core.
fn diff_pairs(
    hashes: &HashFiles,
    pairs: Vec<Pair>,
    old_dicts: &DictHashes,
    new_dicts: &DictHashes,
    same_dicts: bool,
) -> Result<PairDone, ChangesError> {
    let mut total = PairDone {
        records: Vec::new(),
        hashed: 0,
        bytes: 0,
    };
    for done in parallel(&pairs, |pair| {
        diff_pair(hashes, pair, old_dicts, new_dicts, same_dicts)
    }) {
        let done = done?;
        total.records.extend(done.records);
        total.hashed += done.hashed;
        total.bytes += done.bytes;
    }
    Ok(total)
}

fn observe_locked(
    inner: &mut Inner,
    snapshot: &Arc<Snapshot>,
) -> Result<ObserveReport, ChangesError> {
    let mut report = ObserveReport {
        generation: snapshot.generation(),
        ..Default::default()
    };
    let views: BTreeMap<u32, (Cid, &[crate::catalog::ArchivedProduct])> = snapshot
        .shards()
        .map(|s| (s.index, (hashfiles::cid(&s.content_id), s.products)))
        .collect();
    let count = snapshot.shard_count();
    let dicts = hashfiles::cid(&snapshot.dicts_content_id());
    let same_layout = count == inner.shard_count;
    let slots: Vec<(u32, Option<Cid>)> = if same_layout {
        let indices: std::collections::BTreeSet<u32> =
            views.keys().chain(inner.shards.keys()).copied().collect();
        indices
            .into_iter()
            .map(|i| (i, views.get(&i).map(|(c, _)| *c)))
            .filter(|(i, c)| inner.shards.get(i) != c.as_ref())
            .collect()
    } else {
        views.iter().map(|(i, (c, _))| (*i, Some(*c))).collect()
    };
    if same_layout && slots.is_empty() && dicts == inner.dicts {
        inner.generation = snapshot.generation();
        inner.last = Some(snapshot.clone());
        return Ok(report);
    }
    let old_cids: HashSet<Cid> = inner.shards.values().copied().collect();
    let new_cids: HashSet<Cid> = views.values().map(|(c, _)| *c).collect();
    let mut removed: Vec<Cid> = old_cids.difference(&new_cids).copied().collect();
    removed.sort_unstable();
    let pairs: Vec<Pair> = if same_layout {
        // A product's shard depends only on its id and the count: diff slot by slot.
        slots
            .iter()
            .map(|(i, _)| Pair {
                old: inner.shards.get(i).copied().into_iter().collect(),
                new: views.get(i).copied().into_iter().collect(),
            })
            .collect()
    } else {
        // Resharded: contents that exist on both sides hold the same products; the rest is
        // compared as a whole.
        vec![Pair {
            old: removed.clone(),
            new: views
                .values()
                .filter(|(c, _)| !old_cids.contains(c))
                .copied()
                .collect(),
        }]
    };
    let same_dicts = dicts == inner.dicts;
    let new_dicts = if same_dicts {
        inner.dict_hashes.clone()
    } else {
        let d = DictHashes::new(snapshot.dicts())?;
        report.bytes_written += inner.hashes.put_dicts(&dicts, &d)?;
        inner.unsynced_dicts.push(dicts);
        Arc::new(d)
    };
    let done = diff_pairs(
        &inner.hashes,
        pairs,
        &inner.dict_hashes,
        &new_dicts,
        same_dicts,
    )?;
    inner.unsynced.extend(
        views
            .values()
            .map(|(c, _)| *c)
            .filter(|c| !old_cids.contains(c)),
    );
    report.shards_hashed = done.hashed;
    report.bytes_written += done.bytes;
    let mut records = done.records;
    if !same_dicts {
        let entries = new_dicts.changed_since(&inner.dict_hashes);
        if !entries.is_empty() {
            // Unchanged shards hold the same products: only dictionary entries they show can
            // have changed their nodes.
            let mut scratch = Vec::new();
            for (cid, products) in views.values() {
                if !old_cids.contains(cid) {
                    continue;
                }
                for p in products.iter().filter(|p| entries.touches_product(p)) {
                    let h = hash_product(p, &mut scratch);
                    if let Some(r) = changed_record(&h, &h, &inner.dict_hashes, &new_dicts) {
                        records.push(r);
                    }
                }
            }
        }
    }
    records.sort_unstable_by_key(|r| r.product);
    report.records = records.len();
    let frame = Frame {
        generation: snapshot.generation(),
        time: snapshot.published(),
        dicts,
        shard_count: count,
        shards: slots,
        records,
    };
    report.bytes_written += inner.log.append(&frame)?;
    report.logged = true;
    apply_slots(&mut inner.shards, &mut inner.shard_count, &frame);
    inner.dicts = dicts;
    inner.dict_hashes = new_dicts;
    inner.generation = snapshot.generation();
    inner.last = Some(snapshot.clone());
    // The files of shards this frame removed are deleted one frame later: should this frame
    // turn out torn after a crash, the generation before it is diffed again from them.
    for cid in std::mem::replace(&mut inner.unreferenced, removed) {
        if !inner.shards.values().any(|c| *c == cid) {
            inner.hashes.remove_shard(&cid);
        }
    }
    Ok(report)
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
        profiles: inner.profiles.values().map(|p| p.state.clone()).collect(),
    };
    state
        .write(dir)
        .map_err(|e| io_err(&dir.join(state::STATE), e))?;
    Ok(())
}

#[cfg(test)]
mod tests;
