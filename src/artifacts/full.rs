//! Bases and change files: written when the changes stage says they are due, found again
//! from its listings. They live under `_full/{full key}/` as `b{seq}-full.xml` and
//! `c{seq}-full_change….xml`, with sidecars and `.gz` forms like every other file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use jiff::civil::DateTime;

use super::{file, Artifact, ArtifactError, Artifacts, FullFiles};
use crate::changes::{Due, ListedFile, Listing};
use crate::render::{self, DictIndex, OfferMeta};

/// The directory of bases and change files, under the artifacts directory.
pub(crate) const FULL_DIR: &str = "_full";

fn offer_meta(t: DateTime) -> OfferMeta {
    OfferMeta {
        generated: t,
        expires: t.checked_add(jiff::Span::new().days(1)).unwrap_or(t),
    }
}

impl Artifacts {
    fn full_dir(&self, key: &str) -> PathBuf {
        self.dir.join(FULL_DIR).join(key)
    }

    fn listed_path(&self, key: &str, f: &ListedFile) -> PathBuf {
        file::path_of(&self.full_dir(key), &f.stem(), &f.name)
    }

    /// Write every file `due` names, durably, before the changes stage commits it. On an
    /// error the files written so far are removed (nothing lists them). Blocking.
    pub fn write_due(&self, due: &Due) -> Result<(), ArtifactError> {
        let Some(snapshot) = &due.snapshot else {
            return Ok(());
        };
        if due.changes.is_empty() && due.bases.is_empty() {
            return Ok(());
        }
        let _guard = self.build_lock.lock();
        let dicts = DictIndex::new(snapshot.dicts());
        let modified = SystemTime::from(due.now());
        let write = |key: &str,
                     f: &ListedFile,
                     render: &(dyn Fn(&mut file::Sink) -> std::io::Result<()> + Sync)|
         -> Result<(), ArtifactError> {
            let dir = self.full_dir(key);
            std::fs::create_dir_all(&dir).map_err(|e| ArtifactError::io(&dir, e))?;
            // A file a failed or interrupted attempt left under this name is not this one:
            // render it anew rather than adopt it.
            remove_with_sidecar(&self.listed_path(key, f));
            file::build(&dir, &f.name, f.kind(), &f.stem(), f.time, modified, render)?;
            Ok(())
        };
        let changes = || {
            due.changes.iter().try_for_each(|c| {
                let meta = offer_meta(c.file.time);
                write(&c.key, &c.file, &|w| {
                    super::write_change_file(w, &c.profile, &dicts, snapshot, &c.entries, &meta)
                })
            })
        };
        // Bases of different full keys are separate files: rendered side by side (at a million
        // products each takes seconds). Each renders on one thread and hashes on two more
        // (see `sink`), so they get threads of their own rather than one pool thread each:
        // all of them at once up to twice the cores, so none waits for a pool thread while
        // another's MD5 is the only work left.
        let base = |b: &crate::changes::BaseDue| {
            let started = std::time::Instant::now();
            let meta = offer_meta(b.file.time);
            write(&b.key, &b.file, &|w| {
                render::full(w, &b.profile, &dicts, &meta, snapshot.products())
            })?;
            tracing::info!(
                profile = %b.key,
                generation = snapshot.generation(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "base full.xml built"
            );
            Ok::<_, ArtifactError>(())
        };
        let bases = || {
            let next = AtomicUsize::new(0);
            let failed = AtomicBool::new(false);
            let work = || -> Result<(), ArtifactError> {
                while !failed.load(Ordering::Relaxed) {
                    let Some(b) = due.bases.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return Ok(());
                    };
                    base(b).inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
                }
                Ok(())
            };
            let threads = due.bases.len().min(2 * rayon::current_num_threads());
            std::thread::scope(|scope| {
                let spawned: Vec<_> = (1..threads)
                    .filter_map(|_| {
                        std::thread::Builder::new()
                            .name("iofd-base".into())
                            .spawn_scoped(scope, work)
                            .ok()
                    })
                    .collect();
                // This thread renders too (and alone, when no thread can be had).
                let here = work();
                spawned
                    .into_iter()
                    .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .fold(here, Result::and)
            })
        };
        let result = changes().and_then(|()| bases());
        if result.is_err() {
            // Nothing lists them yet: remove whatever was written.
            let due_files = (due.changes.iter().map(|c| (&c.key, &c.file)))
                .chain(due.bases.iter().map(|b| (&b.key, &b.file)));
            for (key, f) in due_files {
                remove_with_sidecar(&self.listed_path(key, f));
            }
        }
        result
    }

    /// The base and change files `listing` names, from `held` (files at hand, by path) or
    /// from disk; `None` when one is missing or damaged.
    pub(crate) fn listed_files(
        &self,
        listing: &Listing,
        held: &HashMap<PathBuf, Arc<Artifact>>,
    ) -> Option<FullFiles> {
        let get = |f: &ListedFile| {
            let path = self.listed_path(&listing.key, f);
            match held.get(&path) {
                Some(a) => Some(a.clone()),
                None => file::load(&path, &f.name, f.kind()).map(Arc::new),
            }
        };
        Some(FullFiles {
            base: get(&listing.base)?,
            changes: listing
                .changes
                .iter()
                .map(get)
                .collect::<Option<Vec<_>>>()?,
        })
    }

    /// The files `listing` names, as the set being served holds them or as they are on
    /// disk; `None` when one is missing or damaged (the listing should then be forgotten).
    pub fn full_files(&self, listing: &Listing) -> Option<FullFiles> {
        self.listed_files(listing, &self.held())
    }

    /// Every file of the set being served, by path (light.xml, assembled from pieces, has
    /// no path of its own).
    pub(crate) fn held(&self) -> HashMap<PathBuf, Arc<Artifact>> {
        self.current()
            .by_profile
            .values()
            .flat_map(|p| p.files.values())
            .filter(|a| a.pieces.is_none())
            .map(|a| (a.path.clone(), a.clone()))
            .collect()
    }
}

/// Delete a data file and its sidecar (missing ones are fine).
fn remove_with_sidecar(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(format!("{}.meta", path.display()));
}
