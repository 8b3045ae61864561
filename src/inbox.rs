//! The watched drop folder, for ERPs that can only write files.
//!
//! A file (JSON Lines, or an IOF offer: a `.xml` file or a directory holding full.xml and its
//! companions) is taken when it is renamed into the inbox or has not changed for
//! `inbox_stable`; names starting with `.` and ending in `.tmp` are never taken. Each file
//! is one batch, applied atomically: it ends in `done/`, or in `rejected/` with
//! `<name>.errors.txt` beside it (nothing of it applied). `*.full_sync.jsonl` files are full
//! syncs: products they do not carry are removed.
//!
//! No file is applied twice and none is lost, whatever moment a crash hits:
//! 1. the file is claimed by renaming it into `.work/` (a crash leaves it there, and the
//!    next start processes it first, before any other ingest is served);
//! 2. it is applied, and still under the store's writer lock a marker `.work/<name>.applied`
//!    is written and fsynced (nothing else can commit in between);
//! 3. it is moved to `done/` and the marker removed.
//!
//! After a crash between the commit and the marker, the file is applied again at start-up;
//! nothing committed after it (the writer lock was held), so the second apply finds every
//! record unchanged. With the marker present, the file is only moved.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
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
const APPLIED: &str = ".applied";

/// How often the inbox is rescanned when no event arrives (events can be lost).
const TICK: Duration = Duration::from_millis(250);

/// What became of one dropped file.
#[derive(Debug)]
pub enum Processed {
    Applied(ApplyReport),
    Rejected(usize),
}

/// The drop folder: its directories and the store it feeds.
pub struct Inbox {
    dir: PathBuf,
    store: Arc<Store>,
    stable: Duration,
    /// Currencies for IOF offers (prices in another currency are converted, or refused).
    iof: ingest::iof::ImportOptions,
}

/// A running watcher; stops when dropped.
pub struct InboxHandle {
    stop: Arc<AtomicBool>,
    scans: Arc<std::sync::atomic::AtomicU64>,
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
    }
}

/// Is this a name the inbox takes?
fn takeable(name: &str) -> bool {
    !name.starts_with('.') && !name.ends_with(".tmp") && name != DONE && name != REJECTED
}

impl Inbox {
    /// Create the directories if needed.
    pub fn new(dir: &Path, store: Arc<Store>, stable: Duration) -> Result<Inbox, InboxError> {
        for sub in [WORK, DONE, REJECTED] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        Ok(Inbox {
            dir: dir.to_path_buf(),
            store,
            stable,
            iof: ingest::iof::ImportOptions::default(),
        })
    }

    /// The base currency and rates dropped IOF offers are converted with.
    pub fn with_import_options(mut self, options: ingest::iof::ImportOptions) -> Inbox {
        self.iof = options;
        self
    }

    /// Finish what a crash interrupted: every file left in `.work/`. Call before serving.
    pub fn recover(&self) -> Result<usize, InboxError> {
        let work = self.dir.join(WORK);
        let mut names: Vec<String> = fs::read_dir(&work)
            .map_err(io(&work))?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.ends_with(APPLIED) && !n.ends_with(".tmp"))
            .collect();
        names.sort();
        for name in &names {
            tracing::warn!(file = %name, "drop folder: finishing a file interrupted by a restart");
            self.process_claimed(name)?;
        }
        Ok(names.len())
    }

    /// Take `name` from the inbox and process it.
    pub fn take(&self, name: &str) -> Result<Processed, InboxError> {
        let from = self.dir.join(name);
        let to = self.dir.join(WORK).join(name);
        fs::rename(&from, &to).map_err(io(&from))?;
        sync_dir(&self.dir)?;
        sync_dir(&self.dir.join(WORK))?;
        self.process_claimed(name)
    }

    fn process_claimed(&self, name: &str) -> Result<Processed, InboxError> {
        let work = self.dir.join(WORK);
        let path = work.join(name);
        let marker = work.join(format!("{name}{APPLIED}"));
        if marker.exists() {
            // Applied before a crash: only the move is left.
            self.finish(name, DONE)?;
            return Ok(Processed::Applied(ApplyReport::default()));
        }
        let started = Instant::now();
        let (batch, rejected) = match self.read_batch(&path, name) {
            Ok(batch) => batch,
            Err(reason) => (
                Batch::default(),
                vec![Rejection {
                    source: name.to_string(),
                    line: 0,
                    field: None,
                    reason,
                }],
            ),
        };
        if !rejected.is_empty() {
            let report = self.dir.join(REJECTED).join(format!("{name}.errors.txt"));
            let mut text = format!(
                "{name}: rejected, nothing applied: {} problem(s)\n",
                rejected.len()
            );
            for r in &rejected {
                text.push_str(&r.to_string());
                text.push('\n');
            }
            write_durably(&report, text.as_bytes())?;
            self.finish(name, REJECTED)?;
            tracing::warn!(file = %name, rejected = rejected.len(), "drop folder: file rejected");
            return Ok(Processed::Rejected(rejected.len()));
        }
        let mode = if name.contains(".full_sync.") {
            ApplyMode::FullSync
        } else {
            ApplyMode::Upsert
        };
        let mark = |_: &ApplyReport| {
            write_durably(&marker, b"applied\n").map_err(|e| match e {
                InboxError::Io { path, source } => StoreError::Io { path, source },
                other => StoreError::Options(other.to_string()),
            })
        };
        let count = batch.count;
        let report = match batch.spool {
            Some(mut spool) => {
                self.store
                    .apply_spooled_and(batch.dicts, batch.changes, &mut spool, mode, mark)?
            }
            None => self.store.apply_and(batch.records, mode, mark)?,
        };
        self.finish(name, DONE)?;
        tracing::info!(
            file = %name,
            records = count,
            applied = report.applied,
            unchanged = report.unchanged,
            removed = report.removed,
            generation = report.generation,
            millis = started.elapsed().as_millis() as u64,
            "drop folder: file applied"
        );
        Ok(Processed::Applied(report))
    }

    /// Move `.work/name` to `to/` (replacing an older file of the same name) and drop its
    /// marker.
    fn finish(&self, name: &str, to: &str) -> Result<(), InboxError> {
        let work = self.dir.join(WORK);
        let from = work.join(name);
        let dest = self.dir.join(to).join(name);
        if dest.is_dir() {
            let _ = fs::remove_dir_all(&dest);
        }
        fs::rename(&from, &dest).map_err(io(&from))?;
        sync_dir(&self.dir.join(to))?;
        let marker = work.join(format!("{name}{APPLIED}"));
        match fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&marker)(e)),
        }
        sync_dir(&work)
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
        std::thread::Builder::new()
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
        Ok(InboxHandle { stop, scans })
    }

    /// One scan: take renamed-in files at once, others once stable.
    fn tick(&self, seen: &mut HashMap<String, Seen>, renamed: &[String]) -> Result<(), InboxError> {
        let now = Instant::now();
        let mut present = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))?.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !takeable(&name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let state = (meta.len(), meta.modified().ok(), meta.is_dir());
            present.push(name.clone());
            let entry = seen
                .entry(name.clone())
                .or_insert(Seen { state, since: now });
            if entry.state != state {
                *entry = Seen { state, since: now };
            }
            let old_enough = state
                .1
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age >= self.stable);
            if renamed.contains(&name)
                || now - entry.since >= self.stable
                || (old_enough && now - entry.since >= TICK)
            {
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
}

/// What a candidate looked like when last seen, and since when.
struct Seen {
    state: (u64, Option<SystemTime>, bool),
    since: Instant,
}

/// A dropped file, parsed: JSON Lines spooled (any size), an IOF offer in memory.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    dicts: Vec<Record>,
    changes: Vec<Parked>,
    spool: Option<Spool>,
    count: usize,
}

impl Inbox {
    /// Parse a dropped file, or say why it cannot be read.
    fn read_batch(&self, path: &Path, name: &str) -> Result<(Batch, Vec<Rejection>), String> {
        if path.is_dir() || name.ends_with(".xml") {
            let offer = ingest::iof::read_offer_with(path, &self.iof).map_err(|e| e.to_string())?;
            for note in &offer.notes {
                tracing::info!(file = %name, "{note}");
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
            let count = offer.records.len();
            return Ok((
                Batch {
                    records: offer.records,
                    count,
                    ..Batch::default()
                },
                Vec::new(),
            ));
        }
        let file = fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
        let (spooled, rejected) = spool_jsonl(
            &self.store,
            name,
            std::io::BufReader::with_capacity(256 << 10, file),
        )?;
        Ok((
            Batch {
                count: spooled.count,
                dicts: spooled.dicts,
                changes: spooled.changes,
                spool: Some(spooled.spool),
                ..Batch::default()
            },
            rejected,
        ))
    }
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
) -> Result<(SpooledJsonl, Vec<Rejection>), String> {
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
) -> Result<Vec<Rejection>, String> {
    let mut rejected = Vec::new();
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
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
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

        fs::write(
            inbox.dir.join("c.full_sync.jsonl"),
            GOOD.lines().next().unwrap(),
        )
        .unwrap();
        assert!(
            matches!(inbox.take("c.full_sync.jsonl").unwrap(), Processed::Applied(r) if r.removed == 1)
        );
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
    fn a_crash_at_any_step_neither_loses_nor_repeats_a_file() {
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
}
