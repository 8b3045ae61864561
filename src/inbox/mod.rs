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
use std::io::Read;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::catalog::Record;
use crate::fsio;
use crate::ingest::{self, BatchBuilder, BatchError, Rejection};
use crate::store::{ApplyMode, ApplyReport, Parked, Spool, SpooledBatch, Store, StoreError};

mod durable;
pub use durable::DurableGate;

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
    /// Applied as `generation`, not yet durable in the object store: stays claimed, retried.
    #[error("{name}: applied as generation {generation}, not yet durable in the object store ({reason}); kept in .work/ and retried")]
    NotDurable {
        name: String,
        generation: u64,
        reason: String,
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
    /// Counts each file's records at `/metrics` (`source="folder"`).
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// With an object store: files are done only once durable there (`durable.rs`).
    durable: Option<DurableGate>,
    #[cfg(test)]
    faults: parking_lot::Mutex<Vec<(Step, Fault)>>,
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
            metrics: None,
            durable: None,
            #[cfg(test)]
            faults: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// The base currency and rates dropped IOF offers are converted with.
    pub fn with_import_options(mut self, options: ingest::iof::ImportOptions) -> Inbox {
        self.iof = options;
        self
    }

    /// Count applied and rejected files' records in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Inbox {
        self.metrics = Some(metrics);
        self
    }

    /// Finish what a crash or an error interrupted: every claim left in `.work/` (and the
    /// files of earlier versions' layout). Call before serving. Returns the files processed.
    pub fn recover(&self) -> Result<usize, InboxError> {
        self.adopt_legacy()?;
        self.reopen_unconfirmed_claims()?;
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
                    match self.process_claimed(claim, name) {
                        // Kept for the next scan; the claims behind it go on.
                        Err(e @ InboxError::NotDurable { .. }) => {
                            tracing::warn!(error = %e, "drop folder")
                        }
                        r => {
                            r?;
                            files += 1;
                        }
                    }
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
            // The claim's creation is in `.work/`, which the move syncs too.
            fsio::rename(&path, &claim.join(name)).map_err(io(&path))?;
            tracing::warn!(file = %name, "drop folder: adopted a file left by an earlier version");
        }
        Ok(())
    }

    /// Take `name` from the inbox and process it.
    pub fn take(&self, name: &str) -> Result<Processed, InboxError> {
        let from = self.dir.join(name);
        let claim = self.new_claim()?;
        if let Err(e) = fsio::rename(&from, &claim.join(name)) {
            // Only a claim the file never reached is empty and goes; one whose sync failed
            // holds the file and is resumed at the next start.
            let _ = fs::remove_dir(&claim);
            return Err(io(&from)(e));
        }
        // The claim directory's own entry.
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
            // Applied before a crash or an outage: only the move is left.
            self.await_durable(name, self.store.snapshot().generation())?;
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
                self.await_durable(name, report.generation)?;
                self.finish(claim, name, DONE)?;
                if let Some(m) = &self.metrics {
                    m.ingest(
                        "folder",
                        report.applied as u64,
                        report.unchanged as u64,
                        report.removed as u64,
                        0,
                    );
                }
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
                if let Some(m) = &self.metrics {
                    m.ingest("folder", 0, 0, 0, rejected.total as u64);
                }
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
        fsio::rename(claim, &dir)?;
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
        self.fault(Step::Moved).map_err(io(claim))?;
        self.release(claim)
    }

    /// Rename `from` to `to/name`, replacing what has that name there, durably (both
    /// directories synced).
    fn move_to(&self, from: &Path, name: &str, to: &str) -> Result<(), InboxError> {
        let dest = self.dir.join(to).join(name);
        match fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&dest).map_err(io(&dest))?,
            Ok(_) if from.is_dir() => fs::remove_file(&dest).map_err(io(&dest))?,
            _ => {}
        }
        fsio::rename(from, &dest).map_err(io(from))
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
        let stop = Arc::new(AtomicBool::new(false));
        let scans = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let watch = self.watcher(stop.clone(), scans.clone())?;
        let thread = std::thread::Builder::new()
            .name("iofd-inbox".into())
            .spawn(watch)
            .map_err(io(&PathBuf::from("iofd-inbox thread")))?;
        Ok(InboxHandle {
            stop,
            scans,
            thread: Some(thread),
        })
    }

    /// Start watching the folder and return the loop that takes its files, to run on a
    /// thread of the caller's choosing until `stop` is set; `scans` counts its scans.
    pub fn watcher(
        self,
        stop: Arc<AtomicBool>,
        scans: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<impl FnOnce() + Send + 'static, InboxError> {
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
        let (stopped, scanned) = (stop, scans);
        Ok(move || {
            let _watcher = watcher; // dropped with the loop
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
                    Err(e @ InboxError::NotDurable { .. }) => {
                        tracing::warn!(error = %e, "drop folder")
                    }
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
        )
        // The reason of the file's rejection report.
        .map_err(|e| e.to_string())?;
        // A writer still at work (an in-place write taken as stable) would be caught here.
        let after = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
        if (before.len(), before.modified().ok()) != (after.len(), after.modified().ok()) {
            return Err(
                "the file changed while it was being read (still being written?): \
                 write it under a temporary name and rename it into the inbox"
                    .to_string(),
            );
        }
        let spooled = spooled.into_target();
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
        // As for a JSON Lines file with a bad line: nothing of the file is applied. The
        // problems name the file as the operator dropped it, not its claimed path.
        let claimed = path.display().to_string();
        let problems: Vec<String> = offer
            .skipped
            .iter()
            .map(|p| p.replace(&claimed, name))
            .collect();
        return Err(format!(
            "{} product(s) cannot be imported; nothing applied:\n{}",
            offer.skipped.len(),
            problems.join("\n")
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
    // The same duplicate rule as for every batch; an offer has no lines.
    let mut builder = BatchBuilder::new(Vec::new());
    let mut rejected = Rejections::default();
    for record in offer.records {
        let Ok(duplicate) = builder.add(name, 0, record);
        if let Some(r) = duplicate {
            rejected.push(r);
        }
    }
    Ok((
        Batch {
            records: builder.into_target(),
            ..Batch::default()
        },
        rejected,
    ))
}

/// Read JSON Lines from `reader` into a new spooled batch of `store`, under ingest's one
/// duplicate rule (see [`BatchBuilder`]). Memory: about 16 bytes per product.
/// `Err` when the input cannot be read or the spool written.
pub fn spool_jsonl(
    store: &Store,
    name: &str,
    reader: impl std::io::BufRead + Send,
) -> Result<(BatchBuilder<SpooledBatch>, Rejections), BatchError<StoreError>> {
    let spool = store.spool().map_err(BatchError::Target)?;
    let mut builder = BatchBuilder::new(SpooledBatch::new(spool));
    spool_more(&mut builder, name, reader).map(|rejected| (builder, rejected))
}

/// Add another input to `builder` (several files as one batch).
pub fn spool_more(
    builder: &mut BatchBuilder<SpooledBatch>,
    name: &str,
    reader: impl std::io::BufRead + Send,
) -> Result<Rejections, BatchError<StoreError>> {
    let mut rejected = Rejections::default();
    builder.add_jsonl(name, reader, &mut |r| rejected.push(r))?;
    Ok(rejected)
}

fn sync_dir(dir: &Path) -> Result<(), InboxError> {
    fsio::sync_dir(dir).map_err(io(dir))
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

/// Atomic write (temp file, fsync, rename), then the directory's fsync.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), InboxError> {
    fsio::write(path, bytes).map_err(io(path))
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
mod tests;
