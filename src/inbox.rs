//! The watched drop folder, for ERPs that can only write files.
//!
//! A file (JSON Lines, or an IOF offer: a `.xml` file or a directory holding full.xml and its
//! companions) is taken at once when it is renamed into the inbox or has a `<name>.ready`
//! companion at least as new as itself. Written in place, it is taken once unchanged for
//! `inbox_stable` across two scans, and a JSON Lines file only if it ends with a newline; a
//! full sync (`*.full_sync.jsonl`) never is, as a file cut at a line boundary would delete
//! every product after the cut. Names starting with `.`, or ending in `.tmp` or `.ready`, are
//! never taken; symlinks, FIFOs, sockets and devices are never opened but rejected. Each file
//! is one batch, applied atomically: it ends in `done/`, or in `rejected/` with
//! `<name>.errors.txt` beside it (nothing of it applied, at most [`Rejections::LISTED`]
//! problems listed).
//! `*.full_sync.jsonl` files are full syncs, within the store's mass-deletion guard (a file
//! beyond it is rejected with the numbers, like any batch the store refuses).
//!
//! No file is applied twice and none is lost, whatever moment a crash or an I/O error hits:
//! 1. a claim directory `.work/.<id>/` is created (the id is unique: markers of earlier
//!    files of the same name can never match) and the file renamed into it;
//! 2. it is applied, and still under the store's writer lock the marker `.work/.<id>/.applied`
//!    is written and fsynced. Nothing else commits in between, so after a crash before the
//!    marker, applying the file again at start-up finds every record unchanged. When the
//!    marker cannot be written, the claim is moved to `poisoned/<id>/` under that same lock
//!    (never applied again without an operator); when even that fails, the process stops
//!    rather than let another batch commit over a file the next start would apply again;
//! 3. the file is moved to `done/`, then the marker and the claim directory removed. A claim
//!    left holding only its marker is removed at the next scan or start.
//!
//! A claim left without a marker was never committed (step 2 is the only way past the commit
//! point), so it is applied again at the next scan or start.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::catalog::Record;
use crate::ingest::{self, Rejection};
use crate::store::{ApplyMode, ApplyReport, Parked, Spool, Store, StoreError};

/// Failures of the drop folder itself (a bad file is not one: it is rejected).
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InboxError + '_ {
    move |source| InboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const WORK: &str = ".work";
const DONE: &str = "done";
const REJECTED: &str = "rejected";
const POISONED: &str = "poisoned";
/// The marker inside a claim directory; a leading `.`, so never a dropped file's name.
const MARKER: &str = ".applied";
/// Suffix of the companion that says a file written in place is complete.
const READY: &str = ".ready";
/// Suffix of the per-name markers of earlier versions (`.work/<name>.applied`).
const LEGACY_APPLIED: &str = ".applied";
const MARKER_TEXT: &[u8] = b"applied\n";

/// How often the inbox is rescanned when no event arrives (events can be lost).
const TICK: Duration = Duration::from_millis(250);

/// What became of one dropped file.
#[derive(Debug)]
pub enum Processed {
    Applied(ApplyReport),
    /// Rejected with this many problems; nothing of it applied.
    Rejected(usize),
    /// Committed, but not journalled: moved to this directory for an operator.
    Poisoned(PathBuf),
}

/// The drop folder: its directories and the store it feeds.
pub struct Inbox {
    dir: PathBuf,
    store: Arc<Store>,
    stable: Duration,
    /// Currencies for IOF offers (prices in another currency are converted, or refused).
    iof: ingest::iof::ImportOptions,
    #[cfg(test)]
    faults: std::sync::Mutex<Vec<(Step, Fault)>>,
}

/// A running watcher; stops when dropped.
pub struct InboxHandle {
    stop: Arc<AtomicBool>,
    scans: Arc<std::sync::atomic::AtomicU64>,
    /// Joined on drop: the thread holds the store (and so its directory lock).
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InboxHandle {
    /// Scans of the folder so far (one every 250 ms while idle).
    pub fn scans(&self) -> u64 {
        self.scans.load(Ordering::Relaxed)
    }
}

impl Drop for InboxHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Within one scan tick (or the file being applied): once dropped, the store this
        // watcher fed can be opened again.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Is this a name the inbox takes?
fn takeable(name: &str) -> bool {
    !name.starts_with('.')
        && !name.ends_with(".tmp")
        && !name.ends_with(READY)
        && ![DONE, REJECTED, POISONED].contains(&name)
}

/// The points of the protocol where a test injects a crash or an I/O error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The file was renamed into its claim directory.
    Claimed,
    /// The file was parsed; nothing committed yet.
    Parsed,
    /// The batch committed; the marker is not written yet.
    Committed,
    /// The marker is durable; the writer lock is still held.
    Marked,
    /// The claim is about to be moved to `poisoned/`.
    Poison,
    /// The file was moved to `done/` or `rejected/`; its marker is still there.
    Moved,
    /// The marker was removed; the claim directory is still there.
    Unmarked,
}

/// What a test injects at a [`Step`].
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The process dies there: a panic with a [`Crash`] payload, which nothing catches.
    Crash,
    /// The I/O operation there fails.
    Fail,
    /// A bug: an ordinary panic.
    Panic,
}

/// Panic payload of an injected crash.
#[cfg(test)]
struct Crash;

/// Problems found in one input: the first [`Rejections::LISTED`] with their positions, the
/// rest only counted, so a file of a million bad lines costs no more memory than a thousand.
#[derive(Debug, Default)]
pub struct Rejections {
    pub listed: Vec<Rejection>,
    /// Every problem, listed or not.
    pub total: usize,
}

impl Rejections {
    /// Problems kept with their positions.
    pub const LISTED: usize = 1000;

    fn one(source: &str, reason: String) -> Rejections {
        let mut r = Rejections::default();
        r.push(Rejection {
            source: source.to_string(),
            line: 0,
            field: None,
            reason,
        });
        r
    }

    pub fn push(&mut self, rejection: Rejection) {
        self.total += 1;
        if self.listed.len() < Self::LISTED {
            self.listed.push(rejection);
        }
    }

    /// Add the problems of another input.
    pub fn append(&mut self, other: Rejections) {
        self.total += other.total - other.listed.len();
        for r in other.listed {
            self.push(r);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The text of `<name>.errors.txt`.
    fn report(&self, name: &str) -> String {
        let mut text = format!(
            "{name}: rejected, nothing applied: {} problem(s)\n",
            self.total
        );
        for r in &self.listed {
            text.push_str(&r.to_string());
            text.push('\n');
        }
        if self.total > self.listed.len() {
            text.push_str(&format!(
                "... and {} more problem(s), not listed\n",
                self.total - self.listed.len()
            ));
        }
        text
    }
}

/// How a claimed file's application ended (before it is moved out of its claim).
enum Outcome {
    Applied(ApplyReport),
    Rejected(Rejections),
    Poisoned { dir: PathBuf, reason: String },
}

impl Inbox {
    /// Create the directories if needed.
    pub fn new(dir: &Path, store: Arc<Store>, stable: Duration) -> Result<Inbox, InboxError> {
        for sub in [WORK, DONE, REJECTED, POISONED] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        Ok(Inbox {
            dir: dir.to_path_buf(),
            store,
            stable,
            iof: ingest::iof::ImportOptions::default(),
            #[cfg(test)]
            faults: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The base currency and rates dropped IOF offers are converted with.
    pub fn with_import_options(mut self, options: ingest::iof::ImportOptions) -> Inbox {
        self.iof = options;
        self
    }

    /// Finish what a crash or an error interrupted: every claim left in `.work/` (and the
    /// files of earlier versions' layout). Call before serving. Returns the files processed.
    pub fn recover(&self) -> Result<usize, InboxError> {
        self.adopt_legacy()?;
        let done = self.resume_claims()?;
        let poisoned = self.dir.join(POISONED);
        let waiting = fs::read_dir(&poisoned).map_err(io(&poisoned))?.count();
        if waiting > 0 {
            tracing::error!(
                dir = %poisoned.display(),
                claims = waiting,
                "drop folder: poisoned files wait for an operator (see each reason file)"
            );
        }
        Ok(done)
    }

    /// Every claim in `.work/`, oldest first: files processed, orphan markers removed.
    fn resume_claims(&self) -> Result<usize, InboxError> {
        let work = self.dir.join(WORK);
        let mut claims = Vec::new();
        for entry in fs::read_dir(&work).map_err(io(&work))? {
            let entry = entry.map_err(io(&work))?;
            let name = entry.file_name();
            let is_dir = entry.file_type().map_err(io(&entry.path()))?.is_dir();
            if is_dir && name.to_string_lossy().starts_with('.') {
                claims.push(entry.path());
            }
        }
        claims.sort();
        let mut files = 0;
        for claim in &claims {
            let names = claimed_names(claim)?;
            match names.as_slice() {
                [] => {
                    tracing::info!(claim = %claim.display(), "drop folder: removing a finished claim's marker");
                    self.release(claim)?;
                }
                [name] => {
                    tracing::warn!(file = %name, claim = %claim.display(), "drop folder: finishing a file interrupted by a crash or an error");
                    self.process_claimed(claim, name)?;
                    files += 1;
                }
                _ => {
                    return Err(io(claim)(std::io::Error::other(format!(
                        "a claim holds several files ({}): move them back into the inbox",
                        names.join(", ")
                    ))))
                }
            }
        }
        Ok(files)
    }

    /// Files an earlier version left in `.work/` directly: with their marker they are only
    /// moved to `done/`; without one they are claimed anew and applied, as that version
    /// would have. A marker without its file is removed: it must not make a later file of
    /// that name skip its application.
    fn adopt_legacy(&self) -> Result<(), InboxError> {
        let work = self.dir.join(WORK);
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(&work).map_err(io(&work))? {
            let entry = entry.map_err(io(&work))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                if name.ends_with(".tmp") && !entry.path().is_dir() {
                    remove_if_exists(&entry.path())?;
                }
                continue;
            }
            names.push(name);
        }
        names.sort();
        for name in &names {
            let path = work.join(name);
            if fs::symlink_metadata(&path).is_err() {
                continue; // a marker, moved with its file
            }
            if let Some(file) = name
                .strip_suffix(LEGACY_APPLIED)
                .filter(|_| is_marker(&path))
            {
                // A marker (by its exact text) whose file is gone: it served only that file.
                if !names.iter().any(|n| n == file) {
                    tracing::info!(marker = %name, "drop folder: removing an orphan marker");
                    remove_if_exists(&path)?;
                    sync_dir(&work)?;
                }
                continue;
            }
            let marker = work.join(format!("{name}{LEGACY_APPLIED}"));
            if is_marker(&marker) {
                // Applied: moved (a crash before the marker's removal leaves an orphan marker,
                // removed above at the next start; no new file is ever claimed here).
                self.move_to(&path, name, DONE)?;
                remove_if_exists(&marker)?;
                sync_dir(&work)?;
                continue;
            }
            let claim = self.new_claim()?;
            fs::rename(&path, claim.join(name)).map_err(io(&path))?;
            sync_dir(&claim)?;
            sync_dir(&work)?;
            tracing::warn!(file = %name, "drop folder: adopted a file left by an earlier version");
        }
        Ok(())
    }

    /// Take `name` from the inbox and process it.
    pub fn take(&self, name: &str) -> Result<Processed, InboxError> {
        let from = self.dir.join(name);
        let claim = self.new_claim()?;
        if let Err(e) = fs::rename(&from, claim.join(name)) {
            let _ = fs::remove_dir(&claim);
            return Err(io(&from)(e));
        }
        sync_dir(&self.dir)?;
        sync_dir(&claim)?;
        sync_dir(&self.dir.join(WORK))?;
        self.fault(Step::Claimed).map_err(io(&claim))?;
        // The companion served this file: a later file of the name must bring its own.
        let ready = self.dir.join(format!("{name}{READY}"));
        if let Err(e) = remove_if_exists(&ready) {
            tracing::warn!(error = %e, "drop folder: cannot remove a companion");
        }
        self.process_claimed(&claim, name)
    }

    /// A new claim directory `.work/.<id>`; ids are unique (exclusive create) and sort in
    /// claim order while the clock does not go back.
    fn new_claim(&self) -> Result<PathBuf, InboxError> {
        let work = self.dir.join(WORK);
        let mut id = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        loop {
            let claim = work.join(format!(".{id:016x}"));
            match fs::create_dir(&claim) {
                Ok(()) => return Ok(claim),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => id += 1,
                Err(e) => return Err(io(&claim)(e)),
            }
        }
    }

    fn process_claimed(&self, claim: &Path, name: &str) -> Result<Processed, InboxError> {
        if claim.join(MARKER).exists() {
            // Applied before a crash: only the move is left.
            self.finish(claim, name, DONE)?;
            return Ok(Processed::Applied(ApplyReport::default()));
        }
        let started = Instant::now();
        let committed = AtomicBool::new(false);
        // A panic on a file's content is a bug, but it must not stop the server from
        // starting: the file is rejected with it, as long as nothing committed.
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.apply(claim, name, &committed)));
        let outcome = match outcome {
            Ok(outcome) => outcome?,
            Err(payload) => {
                #[cfg(test)]
                if payload.is::<Crash>() {
                    std::panic::resume_unwind(payload);
                }
                let what = panic_text(payload.as_ref());
                if committed.load(Ordering::Acquire) {
                    // Only the journalling itself runs after the commit.
                    self.fatal(&format!("{name}: panicked after its commit: {what}"));
                }
                tracing::error!(file = %name, panic = %what, "drop folder: a file made iofd panic");
                Outcome::Rejected(Rejections::one(
                    name,
                    format!("internal error while reading or applying it (a bug in iofd; please report it): {what}"),
                ))
            }
        };
        match outcome {
            Outcome::Applied(report) => {
                self.finish(claim, name, DONE)?;
                tracing::info!(
                    file = %name,
                    applied = report.applied,
                    unchanged = report.unchanged,
                    removed = report.removed,
                    generation = report.generation,
                    millis = started.elapsed().as_millis() as u64,
                    "drop folder: file applied"
                );
                Ok(Processed::Applied(report))
            }
            Outcome::Rejected(rejected) => {
                let report = self.dir.join(REJECTED).join(format!("{name}.errors.txt"));
                write_durably(&report, rejected.report(name).as_bytes())?;
                self.finish(claim, name, REJECTED)?;
                tracing::warn!(file = %name, rejected = rejected.total, "drop folder: file rejected");
                Ok(Processed::Rejected(rejected.total))
            }
            Outcome::Poisoned { dir, reason } => {
                let note = dir.join(format!("{name}.reason.txt"));
                let text = format!(
                    "{name}: {reason}\nIts batch is committed; it will not be applied again. \
                     See README, \"The drop folder\", for what to do.\n"
                );
                if let Err(e) = write_durably(&note, text.as_bytes()) {
                    tracing::error!(error = %e, "drop folder: cannot write the reason of a poisoned file");
                }
                tracing::error!(
                    file = %name,
                    dir = %dir.display(),
                    %reason,
                    "drop folder: file POISONED: committed but not journalled; moved aside, never applied again without an operator"
                );
                Ok(Processed::Poisoned(dir))
            }
        }
    }

    /// Parse and apply a claimed file; the marker is written under the writer lock.
    fn apply(
        &self,
        claim: &Path,
        name: &str,
        committed: &AtomicBool,
    ) -> Result<Outcome, InboxError> {
        let path = claim.join(name);
        let batch = match self.read_batch(&path, name) {
            Ok((batch, rejected)) if rejected.is_empty() => batch,
            Ok((_, rejected)) => return Ok(Outcome::Rejected(rejected)),
            Err(reason) => return Ok(Outcome::Rejected(Rejections::one(name, reason))),
        };
        self.fault(Step::Parsed).map_err(io(&path))?;
        let mode = if name.contains(".full_sync.") {
            ApplyMode::FullSync
        } else {
            ApplyMode::Upsert
        };
        let mut poisoned = None;
        // Runs under the writer lock, after the commit: the file must leave the "not yet
        // applied" state before any other batch can commit, or a restart would apply it
        // again over that batch. This never returns an error: it marks, poisons or stops.
        let mark = |_: &ApplyReport| -> Result<(), StoreError> {
            committed.store(true, Ordering::Release);
            let marker = claim.join(MARKER);
            let marked = self
                .fault(Step::Committed)
                .and_then(|()| write_durably(&marker, MARKER_TEXT).map_err(into_io))
                .and_then(|()| self.fault(Step::Marked));
            if let Err(e) = marked {
                let reason = format!("committed, but its marker could not be written: {e}");
                match self.poison(claim) {
                    Ok(dir) => poisoned = Some((dir, reason)),
                    Err(e2) => self.fatal(&format!("{name}: {reason}; nor moved aside: {e2}")),
                }
            }
            Ok(())
        };
        let result = match batch.spool {
            Some(mut spool) => {
                self.store
                    .apply_spooled_and(batch.dicts, batch.changes, &mut spool, mode, mark)
            }
            None => self.store.apply_and(batch.records, mode, mark),
        };
        match result {
            // The hook never fails: an error is the store's own, before its commit.
            Err(e) => Ok(Outcome::Rejected(Rejections::one(
                name,
                format!("not applied: {e}"),
            ))),
            Ok(report) => Ok(match poisoned {
                Some((dir, reason)) => Outcome::Poisoned { dir, reason },
                None => Outcome::Applied(report),
            }),
        }
    }

    /// Move a claim to `poisoned/<id>/`: one rename, so it leaves `.work/` whole or not at all.
    fn poison(&self, claim: &Path) -> std::io::Result<PathBuf> {
        self.fault(Step::Poison)?;
        let id = claim
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.trim_start_matches('.'))
            .unwrap_or("claim");
        let dir = self.dir.join(POISONED).join(id);
        fs::rename(claim, &dir)?;
        fsync_dir(&self.dir.join(POISONED))?;
        fsync_dir(&self.dir.join(WORK))?;
        Ok(dir)
    }

    /// A committed batch that cannot be journalled: stop, so that nothing commits after it
    /// and the next start's second application of the file changes nothing.
    fn fatal(&self, what: &str) -> ! {
        tracing::error!("drop folder: {what}; stopping iofd so that no other batch commits after it (the next start finishes the file)");
        eprintln!("iofd: drop folder: {what}; stopping");
        #[cfg(test)]
        std::panic::panic_any(Crash);
        #[cfg(not(test))]
        std::process::abort();
    }

    /// Move a claim's file to `to/` (replacing an older file of the same name), then remove
    /// the claim.
    fn finish(&self, claim: &Path, name: &str, to: &str) -> Result<(), InboxError> {
        self.move_to(&claim.join(name), name, to)?;
        sync_dir(claim)?;
        self.fault(Step::Moved).map_err(io(claim))?;
        self.release(claim)
    }

    /// Rename `from` to `to/name`, replacing what has that name there, durably.
    fn move_to(&self, from: &Path, name: &str, to: &str) -> Result<(), InboxError> {
        let dest = self.dir.join(to).join(name);
        match fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&dest).map_err(io(&dest))?,
            Ok(_) if from.is_dir() => fs::remove_file(&dest).map_err(io(&dest))?,
            _ => {}
        }
        fs::rename(from, &dest).map_err(io(from))?;
        sync_dir(&self.dir.join(to))
    }

    /// Remove a claim whose file has left: its marker, then its directory.
    fn release(&self, claim: &Path) -> Result<(), InboxError> {
        remove_if_exists(&claim.join(MARKER))?;
        self.fault(Step::Unmarked).map_err(io(claim))?;
        // Leftovers are only temporaries (names with a leading `.`); a file is never removed.
        for entry in fs::read_dir(claim).map_err(io(claim))? {
            let entry = entry.map_err(io(claim))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                remove_if_exists(&entry.path())?;
            }
        }
        fs::remove_dir(claim).map_err(io(claim))?;
        sync_dir(&self.dir.join(WORK))
    }

    /// Injected failures (tests only); a no-op otherwise.
    fn fault(&self, step: Step) -> std::io::Result<()> {
        #[cfg(test)]
        {
            let fault = self
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .find(|(s, _)| *s == step)
                .map(|(_, f)| *f);
            match fault {
                Some(Fault::Crash) => std::panic::panic_any(Crash),
                Some(Fault::Panic) => panic!("injected panic at {step:?}"),
                Some(Fault::Fail) => {
                    return Err(std::io::Error::other(format!(
                        "injected failure at {step:?}"
                    )))
                }
                None => {}
            }
        }
        let _ = step;
        Ok(())
    }

    /// Watch the inbox on a thread until the handle is dropped.
    pub fn watch(self) -> Result<InboxHandle, InboxError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .map_err(|source| InboxError::Watch {
            path: self.dir.clone(),
            source,
        })?;
        watcher
            .watch(&self.dir, RecursiveMode::NonRecursive)
            .map_err(|source| InboxError::Watch {
                path: self.dir.clone(),
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let scans = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let scanned = scans.clone();
        let thread = std::thread::Builder::new()
            .name("iofd-inbox".into())
            .spawn(move || {
                let _watcher = watcher; // dropped with the thread
                let mut seen: HashMap<String, Seen> = HashMap::new();
                let mut next_scan = Instant::now();
                while !stopped.load(Ordering::Acquire) {
                    let mut renamed = Vec::new();
                    let wait = next_scan.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(Ok(event)) => {
                            let event: notify::Event = event;
                            if is_renamed_in(&event.kind) {
                                renamed.extend(
                                    event
                                        .paths
                                        .iter()
                                        .filter(|p| p.parent() == Some(self.dir.as_path()))
                                        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned)),
                                );
                            }
                        }
                        Ok(Err(_)) | Err(RecvTimeoutError::Timeout) => {}
                        // The watcher is gone: keep scanning on the clock.
                        Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
                    }
                    // Other events (writes in progress, and the open and close of the
                    // directory that each scan itself causes) wait for the next scan: acting
                    // on them would scan in a loop.
                    if renamed.is_empty() && Instant::now() < next_scan {
                        continue;
                    }
                    next_scan = Instant::now() + TICK;
                    scanned.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = self.tick(&mut seen, &renamed) {
                        tracing::error!(error = %e, "drop folder");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            })
            .map_err(io(&PathBuf::from("iofd-inbox thread")))?;
        Ok(InboxHandle {
            stop,
            scans,
            thread: Some(thread),
        })
    }

    /// One scan: claims an error left behind first, then renamed-in and ready files at once,
    /// others once stable.
    fn tick(&self, seen: &mut HashMap<String, Seen>, renamed: &[String]) -> Result<(), InboxError> {
        // A claim that keeps failing must not hold up the files behind it.
        if let Err(e) = self.resume_claims() {
            tracing::error!(error = %e, "drop folder: cannot finish an earlier file");
        }
        let now = Instant::now();
        let mut present = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))?.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !takeable(&name) {
                continue;
            }
            // Not followed: a symlink is judged as itself.
            let Ok(meta) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            let kind = meta.file_type();
            let ready = self.is_ready(&name, &meta);
            let take = if !kind.is_file() && !kind.is_dir() {
                // Symlinks, FIFOs, sockets, devices: rejected unopened, at once.
                true
            } else if renamed.contains(&name) || ready {
                true
            } else {
                let state = (meta.len(), meta.modified().ok(), kind.is_dir(), meta.ino());
                present.push(name.clone());
                let entry = seen.entry(name.clone()).or_insert(Seen {
                    state,
                    since: now,
                    warned: false,
                });
                if entry.state != state {
                    *entry = Seen {
                        state,
                        since: now,
                        warned: false,
                    };
                }
                let old_enough = state
                    .1
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|age| age >= self.stable);
                // Unchanged across two scans at least, and for the stable period.
                let stable = now - entry.since >= self.stable.max(TICK)
                    || (old_enough && now - entry.since >= TICK);
                if stable && name.contains(".full_sync.") {
                    if !entry.warned {
                        entry.warned = true;
                        tracing::warn!(file = %name, "drop folder: a full sync is only taken when renamed into the inbox or with a {name}{READY} companion: waiting");
                    }
                    false
                } else {
                    stable
                        && (kind.is_dir()
                            || name.ends_with(".xml")
                            || ends_with_newline(&self.dir.join(&name)))
                }
            };
            if take {
                seen.remove(&name);
                match self.take(&name) {
                    Ok(_) => {}
                    Err(InboxError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        seen.retain(|name, _| present.contains(name));
        Ok(())
    }

    /// Has `name` a `.ready` companion (a regular file) no older than itself?
    fn is_ready(&self, name: &str, meta: &fs::Metadata) -> bool {
        let Ok(ready) = fs::symlink_metadata(self.dir.join(format!("{name}{READY}"))) else {
            return false;
        };
        ready.file_type().is_file()
            && match (ready.modified(), meta.modified()) {
                (Ok(r), Ok(m)) => r >= m,
                _ => false,
            }
    }
}

/// Does the regular file at `path` end with a newline? Opened without following links or
/// blocking; false on any doubt.
fn ends_with_newline(path: &Path) -> bool {
    let Ok(file) = open_regular(path) else {
        return false;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut last = [0u8];
    len > 0 && file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n'
}

/// Open a regular file for reading: never through a symlink (O_NOFOLLOW), never blocking on
/// a FIFO or device (O_NONBLOCK), and its type checked on the open descriptor.
fn open_regular(path: &Path) -> std::io::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other("a symbolic link: refused, only regular files are read")
            } else {
                e
            }
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(std::io::Error::other(format!(
            "{}: refused, only regular files are read",
            kind_name(kind)
        )));
    }
    Ok(file)
}

fn kind_name(kind: fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// What a candidate looked like when last seen (size, mtime, is a directory, inode), since
/// when, and whether its wait was logged.
struct Seen {
    state: (u64, Option<SystemTime>, bool, u64),
    since: Instant,
    warned: bool,
}

/// Names of the files in a claim directory (markers and temporaries start with `.`).
fn claimed_names(claim: &Path) -> Result<Vec<String>, InboxError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(claim).map_err(io(claim))? {
        let entry = entry.map_err(io(claim))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Is `path` a marker (by its exact text), not a dropped file that happens to end in
/// `.applied`?
fn is_marker(path: &Path) -> bool {
    let Ok(file) = open_regular(path) else {
        return false;
    };
    let mut text = Vec::new();
    file.take(MARKER_TEXT.len() as u64 + 1)
        .read_to_end(&mut text)
        .is_ok()
        && text == MARKER_TEXT
}

/// The message of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}
/// A dropped file, parsed: JSON Lines spooled (any size), an IOF offer in memory.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    dicts: Vec<Record>,
    changes: Vec<Parked>,
    spool: Option<Spool>,
}

impl Inbox {
    /// Parse a dropped file, or say why it cannot be read. Only regular files are opened
    /// (directories: only their regular files), never through a symlink.
    fn read_batch(&self, path: &Path, name: &str) -> Result<(Batch, Rejections), String> {
        let kind = fs::symlink_metadata(path)
            .map_err(|e| format!("cannot read: {e}"))?
            .file_type();
        if kind.is_dir() {
            for entry in fs::read_dir(path).map_err(|e| format!("cannot read: {e}"))? {
                let entry = entry.map_err(|e| format!("cannot read: {e}"))?;
                let kind = entry.file_type().map_err(|e| format!("cannot read: {e}"))?;
                if !kind.is_file() && !kind.is_dir() {
                    return Err(format!(
                        "{}: {}: refused, only regular files are read; nothing applied",
                        entry.file_name().to_string_lossy(),
                        kind_name(kind)
                    ));
                }
            }
            return read_offer(path, name, &self.iof);
        }
        let file = open_regular(path).map_err(|e| format!("cannot read: {e}"))?;
        if name.ends_with(".xml") {
            return read_offer(path, name, &self.iof);
        }
        let before = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
        let (spooled, rejected) = spool_jsonl(
            &self.store,
            name,
            std::io::BufReader::with_capacity(256 << 10, &file),
        )?;
        // A writer still at work (an in-place write taken as stable) would be caught here.
        let after = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
        if (before.len(), before.modified().ok()) != (after.len(), after.modified().ok()) {
            return Err(
                "the file changed while it was being read (still being written?): \
                 write it under a temporary name and rename it into the inbox"
                    .to_string(),
            );
        }
        Ok((
            Batch {
                dicts: spooled.dicts,
                changes: spooled.changes,
                spool: Some(spooled.spool),
                ..Batch::default()
            },
            rejected,
        ))
    }
}

/// An IOF offer, mapped with the configured currencies; its report goes to the log.
fn read_offer(
    path: &Path,
    name: &str,
    options: &ingest::iof::ImportOptions,
) -> Result<(Batch, Rejections), String> {
    let offer = ingest::iof::read_offer_with(path, options).map_err(|e| e.to_string())?;
    for note in &offer.notes {
        tracing::info!(file = %name, "{note}");
    }
    if !offer.skipped.is_empty() {
        // As for a JSON Lines file with a bad line: nothing of the file is applied.
        return Err(format!(
            "{} product(s) cannot be imported; nothing applied:\n{}",
            offer.skipped.len(),
            offer.skipped.join("\n")
        ));
    }
    let report = &offer.report;
    tracing::info!(
        file = %name,
        products = report.products,
        dropped = report.dropped_total(),
        elapsed_ms = report.elapsed_ms,
        "IOF offer read"
    );
    for (field, counts) in report.fields.iter().filter(|(_, c)| c.dropped > 0) {
        tracing::warn!(
            file = %name,
            field = %field,
            dropped = counts.dropped,
            examples = %counts.dropped_examples.join("; "),
            "IOF values not imported"
        );
    }
    Ok((
        Batch {
            records: offer.records,
            ..Batch::default()
        },
        Rejections::default(),
    ))
}

/// A JSON Lines input parsed for [`Store::apply_spooled`]: products parked in a spool,
/// dictionary records and deletions in order.
pub struct SpooledJsonl {
    pub dicts: Vec<Record>,
    pub changes: Vec<Parked>,
    pub spool: Spool,
    /// Accepted records.
    pub count: usize,
}

/// Read JSON Lines from `reader`, parking every accepted product in a new spool of `store`;
/// a product id seen earlier rejects the later line. Memory: about 16 bytes per product.
/// `Err` when the input cannot be read or the spool written.
pub fn spool_jsonl(
    store: &Store,
    name: &str,
    reader: impl std::io::BufRead,
) -> Result<(SpooledJsonl, Rejections), String> {
    let mut out = SpooledJsonl {
        dicts: Vec::new(),
        changes: Vec::new(),
        spool: store.spool().map_err(|e| e.to_string())?,
        count: 0,
    };
    spool_more(&mut out, &mut HashMap::new(), name, reader).map(|rejected| (out, rejected))
}

/// Add another input to `out` (several files as one batch); `seen` carries product ids.
pub fn spool_more(
    out: &mut SpooledJsonl,
    seen: &mut HashMap<u64, (String, u64)>,
    name: &str,
    reader: impl std::io::BufRead,
) -> Result<Rejections, String> {
    let mut rejected = Rejections::default();
    for item in ingest::JsonlReader::new(name, reader) {
        match item {
            Ok(parsed) => match parsed.record {
                Record::Product(p) => {
                    if let Some((file, first)) = seen.get(&p.id) {
                        rejected.push(Rejection {
                            source: name.to_string(),
                            line: parsed.line,
                            field: Some("id".into()),
                            reason: format!("duplicate of product {} on {file}:{first}", p.id),
                        });
                        continue;
                    }
                    seen.insert(p.id, (name.to_string(), parsed.line));
                    out.changes
                        .push(out.spool.park(&p).map_err(|e| e.to_string())?);
                    out.count += 1;
                }
                Record::DeleteProduct { id } => {
                    out.changes.push(Parked::Delete(id));
                    out.count += 1;
                }
                dict => {
                    out.dicts.push(dict);
                    out.count += 1;
                }
            },
            Err(ingest::LineError::Rejected(r)) => rejected.push(r),
            Err(ingest::LineError::Fatal(e)) => return Err(e.to_string()),
        }
    }
    Ok(rejected)
}

fn sync_dir(dir: &Path) -> Result<(), InboxError> {
    fsync_dir(dir).map_err(io(dir))
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all())
}

fn remove_if_exists(path: &Path) -> Result<(), InboxError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// An [`InboxError`] as the I/O error it reports (inside the store's hook).
fn into_io(e: InboxError) -> std::io::Error {
    match e {
        InboxError::Io { path, source } => {
            std::io::Error::new(source.kind(), format!("{}: {source}", path.display()))
        }
        other => std::io::Error::other(other.to_string()),
    }
}

/// Temp file, fsync, rename, fsync the directory.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), InboxError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

/// A file renamed into the folder: the sign of a complete drop, taken at once.
fn is_renamed_in(kind: &EventKind) -> bool {
    use notify::event::{ModifyKind, RenameMode};
    matches!(
        kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    const GOOD: &str = r#"{"kind":"product","id":7,"vat":23,"description":{"name":{"pol":"A"}}}
{"kind":"product","id":8,"vat":23,"description":{"name":{"pol":"B"}}}
"#;

    fn inbox() -> (tempfile::TempDir, Inbox) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap());
        let inbox = Inbox::new(&dir.path().join("inbox"), store, Duration::from_secs(1)).unwrap();
        (dir, inbox)
    }

    #[test]
    fn good_files_are_applied_and_moved_bad_ones_rejected_with_a_report() {
        let (_dir, inbox) = inbox();
        fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
        assert!(matches!(inbox.take("a.jsonl").unwrap(), Processed::Applied(r) if r.applied == 2));
        assert!(inbox.dir.join("done/a.jsonl").exists());
        assert_eq!(inbox.store.snapshot().len(), 2);

        fs::write(inbox.dir.join("b.jsonl"), format!("{GOOD}{{oops\n")).unwrap();
        assert!(matches!(
            inbox.take("b.jsonl").unwrap(),
            Processed::Rejected(1)
        ));
        let report = fs::read_to_string(inbox.dir.join("rejected/b.jsonl.errors.txt")).unwrap();
        assert!(
            report.contains("b.jsonl:3: ") && report.contains("invalid JSON"),
            "{report}"
        );
        assert!(inbox.dir.join("rejected/b.jsonl").exists());
        assert_eq!(
            inbox.store.snapshot().generation(),
            1,
            "nothing of b applied"
        );

        // A full sync that would remove half the catalog: the mass-deletion guard rejects
        // the file with the numbers, nothing is removed, and the inbox goes on.
        fs::write(
            inbox.dir.join("c.full_sync.jsonl"),
            GOOD.lines().next().unwrap(),
        )
        .unwrap();
        assert!(matches!(
            inbox.take("c.full_sync.jsonl").unwrap(),
            Processed::Rejected(1)
        ));
        let report =
            fs::read_to_string(inbox.dir.join("rejected/c.full_sync.jsonl.errors.txt")).unwrap();
        assert!(
            report.contains("full sync refused") && report.contains("remove 1 of the 2 products"),
            "{report}"
        );
        assert_eq!(inbox.store.snapshot().len(), 2);
        // One that removes nothing (it carries both products and a new one) is applied.
        let third = r#"{"kind":"product","id":9,"vat":23,"description":{"name":{"pol":"C"}}}"#;
        fs::write(
            inbox.dir.join("d.full_sync.jsonl"),
            format!("{GOOD}\n{third}\n"),
        )
        .unwrap();
        assert!(
            matches!(inbox.take("d.full_sync.jsonl").unwrap(), Processed::Applied(r) if r.removed == 0 && r.applied == 1)
        );
        assert_eq!(inbox.store.snapshot().len(), 3);
    }

    #[test]
    fn an_iof_offer_dropped_as_a_directory_is_imported() {
        let (_dir, inbox) = inbox();
        let offer = inbox.dir.join("offer");
        fs::create_dir(&offer).unwrap();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/iof/examples");
        for f in ["full.xml", "light.xml", "categories.xml", "producers.xml"] {
            fs::copy(examples.join(f), offer.join(f)).unwrap();
        }
        assert!(matches!(
            inbox.take("offer").unwrap(),
            Processed::Applied(_)
        ));
        assert_eq!(inbox.store.snapshot().len(), 8);
        assert!(inbox.dir.join("done/offer/full.xml").exists());
        fs::write(
            inbox.dir.join("broken.xml"),
            "<offer><products><product id=\"1\">",
        )
        .unwrap();
        assert!(matches!(
            inbox.take("broken.xml").unwrap(),
            Processed::Rejected(1)
        ));
        let report = fs::read_to_string(inbox.dir.join("rejected/broken.xml.errors.txt")).unwrap();
        assert!(report.contains("at byte"), "{report}");
    }

    #[test]
    fn a_dropped_offer_in_another_currency_is_converted_or_refused() {
        let third_party = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/third-party");
        let drop_offer = |inbox: &Inbox, fixture: &str, name: &str| {
            let offer = inbox.dir.join(name);
            fs::create_dir(&offer).unwrap();
            fs::copy(
                third_party.join(fixture).join("full.xml"),
                offer.join("full.xml"),
            )
            .unwrap();
            inbox.take(name).unwrap()
        };
        // Without a rate for EUR (the default options), refused: nothing published in PLN.
        let (_dir, bare) = inbox();
        assert!(matches!(
            drop_offer(&bare, "b2b-en-eur", "eur"),
            Processed::Rejected(1)
        ));
        let errors = fs::read_to_string(bare.dir.join("rejected/eur.errors.txt")).unwrap();
        assert!(
            errors.contains("EUR") && errors.contains("[currencies]"),
            "{errors}"
        );
        assert_eq!(bare.store.snapshot().len(), 0);
        // With the configured rate, converted.
        let (_dir2, plain) = inbox();
        let inbox = plain.with_import_options(ingest::iof::ImportOptions {
            rates: [
                ("PLN", crate::catalog::Decimal::ONE),
                ("EUR", crate::catalog::Decimal::new(25, 2)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            ..ingest::iof::ImportOptions::default()
        });
        assert!(matches!(
            drop_offer(&inbox, "b2b-en-eur", "eur"),
            Processed::Applied(_)
        ));
        let snapshot = inbox.store.snapshot();
        let mug = snapshot.product(1001).expect("imported");
        let retail = mug.prices.retail.as_ref().expect("a price");
        assert_eq!(
            (
                crate::catalog::decimal(&retail.net),
                crate::catalog::decimal(&retail.gross)
            ),
            (
                crate::catalog::Decimal::from(40),
                crate::catalog::Decimal::new(4920, 2)
            ),
            "10,00 / 12,30 EUR at 0.25 EUR per PLN"
        );
    }

    #[test]
    fn files_left_in_the_earlier_layout_are_finished_after_an_upgrade() {
        // Claimed but not applied: applied at recovery.
        let (_dir, inbox) = inbox();
        fs::write(inbox.dir.join(".work/a.jsonl"), GOOD).unwrap();
        assert_eq!(inbox.recover().unwrap(), 1);
        assert!(inbox.dir.join("done/a.jsonl").exists());
        assert_eq!(inbox.store.snapshot().generation(), 1);

        // Applied and marked, not moved: only moved (a later change is not undone).
        let later = r#"{"kind":"product","id":7,"vat":8,"description":{"name":{"pol":"A2"}}}"#;
        inbox
            .store
            .apply(
                ingest::read_jsonl("x", later.as_bytes())
                    .unwrap()
                    .records
                    .into_iter()
                    .map(|l| l.record)
                    .collect(),
                ApplyMode::Upsert,
            )
            .unwrap();
        fs::write(inbox.dir.join(".work/b.jsonl"), GOOD).unwrap();
        fs::write(inbox.dir.join(".work/b.jsonl.applied"), "applied\n").unwrap();
        inbox.recover().unwrap();
        assert!(inbox.dir.join("done/b.jsonl").exists());
        assert!(!inbox.dir.join(".work/b.jsonl.applied").exists());
        let snap = inbox.store.snapshot();
        assert_eq!(snap.generation(), 2, "not applied again");
        assert_eq!(
            crate::catalog::decimal(&snap.product(7).unwrap().vat).to_string(),
            "8"
        );

        // Applied, crash before the marker: applying again changes nothing.
        fs::write(inbox.dir.join(".work/c.jsonl"), later).unwrap();
        inbox.recover().unwrap();
        assert_eq!(inbox.store.snapshot().generation(), 2);
    }

    #[test]
    fn the_watcher_takes_renamed_files_and_ignores_temporaries() {
        let (_dir, inbox) = inbox();
        let dir = inbox.dir.clone();
        let store = inbox.store.clone();
        let handle = inbox.watch().unwrap();
        fs::write(dir.join("x.jsonl.tmp"), GOOD).unwrap();
        fs::write(dir.join(".hidden.jsonl"), GOOD).unwrap();
        fs::rename(dir.join("x.jsonl.tmp"), dir.join("x.jsonl")).unwrap();
        let started = Instant::now();
        while !dir.join("done/x.jsonl").exists() {
            assert!(started.elapsed() < Duration::from_secs(5), "not taken");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(store.snapshot().len(), 2);
        assert!(dir.join(".hidden.jsonl").exists(), "dotfiles stay");
        // Idle, it scans on the clock: the events its own scans cause (the directory opened
        // and closed) must not make it scan in a loop.
        let before = handle.scans();
        std::thread::sleep(Duration::from_millis(1000));
        let idle = handle.scans() - before;
        assert!((2..=6).contains(&idle), "{idle} scans in one idle second");
        drop(handle);
    }

    const LATER: &str = r#"{"kind":"product","id":7,"vat":8,"description":{"name":{"pol":"A2"}}}
"#;

    /// The inbox and store of `dir`, as a (re)started server opens them.
    fn open(dir: &Path) -> Inbox {
        let store = Arc::new(Store::open(&dir.join("store"), StoreOptions::default()).unwrap());
        Inbox::new(&dir.join("inbox"), store, Duration::from_secs(1)).unwrap()
    }

    fn inject(inbox: &Inbox, step: Step, fault: Fault) {
        inbox.faults.lock().unwrap().push((step, fault));
    }

    /// Did `f` die of an injected crash?
    fn crashes<R>(f: impl FnOnce() -> R) -> bool {
        match std::panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(_) => false,
            Err(payload) => payload.is::<Crash>(),
        }
    }

    fn vat(inbox: &Inbox, id: u64) -> String {
        crate::catalog::decimal(&inbox.store.snapshot().product(id).unwrap().vat).to_string()
    }

    fn assert_clean(inbox: &Inbox, what: &str) {
        let left: Vec<_> = fs::read_dir(inbox.dir.join(WORK))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{what}: left in .work: {left:?}");
    }

    fn upsert(inbox: &Inbox, jsonl: &str) -> ApplyReport {
        let records = ingest::read_jsonl("x", jsonl.as_bytes()).unwrap().records;
        inbox
            .store
            .apply(
                records.into_iter().map(|l| l.record).collect(),
                ApplyMode::Upsert,
            )
            .unwrap()
    }

    #[test]
    fn a_crash_at_any_step_neither_loses_nor_repeats_a_file() {
        use Step::*;
        for step in [Claimed, Parsed, Committed, Marked, Moved, Unmarked] {
            let dir = tempfile::tempdir().unwrap();
            let inbox = open(dir.path());
            fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
            inject(&inbox, step, Fault::Crash);
            assert!(crashes(|| inbox.take("a.jsonl")), "{step:?}");
            drop(inbox);

            let inbox = open(dir.path());
            inbox.recover().unwrap();
            let snap = inbox.store.snapshot();
            assert_eq!(snap.len(), 2, "{step:?}: lost");
            assert_eq!(snap.generation(), 1, "{step:?}");
            assert!(inbox.dir.join("done/a.jsonl").exists(), "{step:?}");
            assert!(!inbox.dir.join("a.jsonl").exists(), "{step:?}");
            assert_clean(&inbox, &format!("{step:?}"));

            // Whatever the crash left, a later file of the same name is applied.
            fs::write(inbox.dir.join("a.jsonl"), LATER).unwrap();
            assert!(
                matches!(inbox.take("a.jsonl").unwrap(), Processed::Applied(r) if r.applied == 1),
                "{step:?}"
            );
            assert_eq!(vat(&inbox, 7), "8", "{step:?}");
        }
    }

    #[test]
    fn an_io_error_before_the_commit_or_after_the_marker_is_retried_not_repeated() {
        use Step::*;
        for step in [Claimed, Parsed, Moved, Unmarked] {
            let (_dir, inbox) = inbox();
            fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
            inject(&inbox, step, Fault::Fail);
            assert!(inbox.take("a.jsonl").is_err(), "{step:?}");
            inbox
                .faults
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            // The next scan finishes it: applied once (before the commit) or only cleaned up.
            inbox.resume_claims().unwrap();
            assert_eq!(inbox.store.snapshot().generation(), 1, "{step:?}");
            assert_eq!(inbox.store.snapshot().len(), 2, "{step:?}");
            assert!(inbox.dir.join("done/a.jsonl").exists(), "{step:?}");
            assert_clean(&inbox, &format!("{step:?}"));
            // A later write is not undone by another scan.
            upsert(&inbox, LATER);
            inbox.resume_claims().unwrap();
            assert_eq!(vat(&inbox, 7), "8", "{step:?}");
        }
    }

    #[test]
    fn a_marker_that_cannot_be_written_after_the_commit_poisons_the_file() {
        for step in [Step::Committed, Step::Marked] {
            let dir = tempfile::tempdir().unwrap();
            let inbox = open(dir.path());
            fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
            inject(&inbox, step, Fault::Fail);
            let Processed::Poisoned(poisoned) = inbox.take("a.jsonl").unwrap() else {
                panic!("{step:?}: not poisoned");
            };
            assert!(poisoned.starts_with(inbox.dir.join(POISONED)));
            assert!(poisoned.join("a.jsonl").exists(), "{step:?}");
            let reason = fs::read_to_string(poisoned.join("a.jsonl.reason.txt")).unwrap();
            assert!(
                reason.contains("committed") && reason.contains("injected failure"),
                "{reason}"
            );
            assert_clean(&inbox, &format!("{step:?}"));
            assert_eq!(inbox.store.snapshot().generation(), 1, "the batch stays");

            // Writes go on; a restart does not apply the poisoned file over them.
            upsert(&inbox, LATER);
            drop(inbox);
            let inbox = open(dir.path());
            assert_eq!(inbox.recover().unwrap(), 0);
            assert_eq!(vat(&inbox, 7), "8", "{step:?}: applied again");
            assert_eq!(inbox.store.snapshot().generation(), 2);
            assert!(poisoned.join("a.jsonl").exists(), "waits for an operator");
        }
    }

    #[test]
    fn a_commit_that_can_be_neither_marked_nor_moved_aside_stops_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = open(dir.path());
        fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
        inject(&inbox, Step::Committed, Fault::Fail);
        inject(&inbox, Step::Poison, Fault::Fail);
        // Stopped under the writer lock: nothing commits after it, so the next start's
        // second application changes nothing.
        assert!(crashes(|| inbox.take("a.jsonl")));
        drop(inbox);
        let inbox = open(dir.path());
        assert_eq!(inbox.recover().unwrap(), 1);
        assert_eq!(inbox.store.snapshot().generation(), 1);
        assert!(inbox.dir.join("done/a.jsonl").exists());
        assert_clean(&inbox, "after recovery");
    }

    #[test]
    fn an_orphan_marker_does_not_make_a_later_file_of_its_name_skip_its_application() {
        let (_dir, inbox) = inbox();
        // Left by an earlier version's crash between the move to done/ and the removal.
        fs::write(inbox.dir.join(".work/a.jsonl.applied"), MARKER_TEXT).unwrap();
        // A claim of this version left the same way.
        let claim = inbox.new_claim().unwrap();
        fs::write(claim.join(MARKER), MARKER_TEXT).unwrap();
        // A claimed file whose name merely ends in `.applied` is a file, not a marker.
        fs::write(inbox.dir.join(".work/b.applied"), LATER).unwrap();
        assert_eq!(inbox.recover().unwrap(), 1);
        assert_clean(&inbox, "after recovery");
        assert!(inbox.dir.join("done/b.applied").exists());
        fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
        assert!(matches!(inbox.take("a.jsonl").unwrap(), Processed::Applied(r) if r.applied == 2));
        assert_eq!(vat(&inbox, 7), "23");
    }

    #[test]
    fn a_file_that_makes_iofd_panic_is_rejected_and_the_next_one_applied() {
        let (_dir, inbox) = inbox();
        inject(&inbox, Step::Parsed, Fault::Panic);
        fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
        assert!(matches!(
            inbox.take("a.jsonl").unwrap(),
            Processed::Rejected(1)
        ));
        let report = fs::read_to_string(inbox.dir.join("rejected/a.jsonl.errors.txt")).unwrap();
        assert!(
            report.contains("internal error") && report.contains("injected panic"),
            "{report}"
        );
        assert_eq!(inbox.store.snapshot().generation(), 0);
        inbox
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        fs::write(inbox.dir.join("b.jsonl"), GOOD).unwrap();
        assert!(matches!(
            inbox.take("b.jsonl").unwrap(),
            Processed::Applied(_)
        ));
    }

    #[test]
    fn a_hostile_iof_file_is_rejected_naming_its_bad_product() {
        let (_dir, inbox) = inbox();
        fs::write(
            inbox.dir.join("hostile.xml"),
            r#"<offer file_format="IOF" version="3.0"><products currency="PLN" language="pol">
<product id="1" vat="-100" type="regular"><price gross="10.00"/><description><name xml:lang="pol">X</name></description></product>
</products></offer>"#,
        )
        .unwrap();
        // VAT -100 once divided by zero; now the product is an error with its reason, and
        // an offer is taken whole or not at all, like a JSON Lines file.
        assert!(matches!(
            inbox.take("hostile.xml").unwrap(),
            Processed::Rejected(1)
        ));
        let errors = fs::read_to_string(inbox.dir.join("rejected/hostile.xml.errors.txt")).unwrap();
        assert!(errors.contains(r#"vat "-100" is not a rate"#), "{errors}");
        assert!(inbox.store.snapshot().product(1).is_none());
        assert_eq!(inbox.store.snapshot().generation(), 0);
    }

    #[test]
    fn errors_txt_lists_a_thousand_problems_then_counts_the_rest() {
        let (_dir, inbox) = inbox();
        fs::write(inbox.dir.join("bad.jsonl"), "{oops\n".repeat(1500)).unwrap();
        assert!(matches!(
            inbox.take("bad.jsonl").unwrap(),
            Processed::Rejected(1500)
        ));
        let report = fs::read_to_string(inbox.dir.join("rejected/bad.jsonl.errors.txt")).unwrap();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 1 + Rejections::LISTED + 1, "{}", lines[0]);
        assert!(lines[0].contains("1500 problem(s)"), "{}", lines[0]);
        assert!(lines[Rejections::LISTED].starts_with("bad.jsonl:1000: "));
        assert_eq!(lines[1001], "... and 500 more problem(s), not listed");
    }

    #[test]
    fn symlinks_fifos_and_directories_holding_them_are_rejected_unopened() {
        let (_dir, inbox) = inbox();
        std::os::unix::fs::symlink("/dev/zero", inbox.dir.join("zero.jsonl")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(inbox.dir.join("pipe.jsonl"))
            .status()
            .unwrap();
        assert!(status.success());
        let offer = inbox.dir.join("offer");
        fs::create_dir(&offer).unwrap();
        std::os::unix::fs::symlink("/dev/zero", offer.join("full.xml")).unwrap();
        let started = Instant::now();
        for (name, kind) in [
            ("zero.jsonl", "symbolic link"),
            ("pipe.jsonl", "FIFO"),
            ("offer", "symbolic link"),
        ] {
            assert!(
                matches!(inbox.take(name).unwrap(), Processed::Rejected(1)),
                "{name}"
            );
            let report =
                fs::read_to_string(inbox.dir.join(format!("rejected/{name}.errors.txt"))).unwrap();
            assert!(report.contains(kind), "{report}");
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let moved = fs::symlink_metadata(inbox.dir.join("rejected/zero.jsonl")).unwrap();
        assert!(
            moved.file_type().is_symlink(),
            "moved as it is, not followed"
        );
        assert_eq!(inbox.store.snapshot().generation(), 0);
    }

    /// Make every candidate look first seen `by` earlier (the scan's clock, without sleeping).
    fn age(seen: &mut HashMap<String, Seen>, by: Duration) {
        for s in seen.values_mut() {
            s.since -= by;
        }
    }

    #[test]
    fn files_written_in_place_are_taken_only_when_they_look_complete() {
        let (_dir, inbox) = inbox();
        let dir = inbox.dir.clone();
        let mut seen = HashMap::new();
        fs::write(dir.join("a.jsonl"), GOOD.trim_end()).unwrap(); // cut inside a line
        fs::write(dir.join("f.full_sync.jsonl"), GOOD).unwrap();
        inbox.tick(&mut seen, &[]).unwrap();
        age(&mut seen, Duration::from_secs(2));
        inbox.tick(&mut seen, &[]).unwrap();
        assert!(
            dir.join("a.jsonl").exists(),
            "no final newline: not complete"
        );
        assert!(
            dir.join("f.full_sync.jsonl").exists(),
            "a full sync is never taken for being stable"
        );

        // Completed: the change starts the stable period again.
        fs::OpenOptions::new()
            .append(true)
            .open(dir.join("a.jsonl"))
            .unwrap()
            .write_all(b"\n")
            .unwrap();
        inbox.tick(&mut seen, &[]).unwrap();
        assert!(dir.join("a.jsonl").exists(), "changed since the last scan");
        age(&mut seen, Duration::from_secs(2));
        inbox.tick(&mut seen, &[]).unwrap();
        assert!(dir.join("done/a.jsonl").exists());

        // A companion older than the file does not vouch for it; a newer one does.
        let ready = dir.join("f.full_sync.jsonl.ready");
        fs::File::create(&ready)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        inbox.tick(&mut seen, &[]).unwrap();
        assert!(dir.join("f.full_sync.jsonl").exists(), "stale companion");
        fs::File::create(&ready)
            .unwrap()
            .set_modified(SystemTime::now())
            .unwrap();
        inbox.tick(&mut seen, &[]).unwrap();
        assert!(dir.join("done/f.full_sync.jsonl").exists());
        assert!(!ready.exists(), "the companion goes with its file");

        // Renamed in: taken at once.
        fs::write(dir.join("r.full_sync.jsonl.tmp"), GOOD).unwrap();
        fs::rename(
            dir.join("r.full_sync.jsonl.tmp"),
            dir.join("r.full_sync.jsonl"),
        )
        .unwrap();
        inbox
            .tick(&mut seen, &["r.full_sync.jsonl".to_string()])
            .unwrap();
        assert!(dir.join("done/r.full_sync.jsonl").exists());
    }

    proptest::proptest! {
        /// However problems arrive (one by one or input by input), every one is counted and
        /// the first `LISTED` are kept, in order.
        #[test]
        fn rejections_count_every_problem_and_list_the_first(
            inputs in proptest::collection::vec(0usize..700, 0..6)
        ) {
            let mut all = Rejections::default();
            let mut line = 0u64;
            for n in &inputs {
                let mut one = Rejections::default();
                for _ in 0..*n {
                    line += 1;
                    one.push(Rejection { source: "x".into(), line, field: None, reason: "bad".into() });
                }
                all.append(one);
            }
            let total: usize = inputs.iter().sum();
            proptest::prop_assert_eq!(all.total, total);
            proptest::prop_assert_eq!(all.listed.len(), total.min(Rejections::LISTED));
            // No input reaches the cap alone: the listed ones are exactly the first lines.
            proptest::prop_assert!(all.listed.iter().enumerate().all(|(i, r)| r.line == i as u64 + 1));
        }
    }
}
