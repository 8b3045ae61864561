//! Which generation a store directory holds: the one `MANIFEST` names, or — when that
//! manifest or one of its files fails verification — the fallback `MANIFEST.prev` names.
//! Nothing here writes or removes a snapshot file, so a checker may run beside a server; the
//! verified record (`snapshot::verified`) is the one file a check adds to.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::snapshot::verified::{Trust, VerifiedRecord};
use crate::snapshot::Snapshot;

use super::manifest::{Manifest, MANIFEST, PREVIOUS};
use super::StoreError;

/// What [`recover`] found.
pub(crate) struct Recovered {
    pub snapshot: Snapshot,
    /// `MANIFEST` names `snapshot` (false after a fallback).
    pub from_manifest: bool,
    /// Files to keep besides the snapshot's: the fallback generation's, or after a fallback
    /// the damaged generation's (left for inspection until the next commit).
    pub also_kept: HashSet<String>,
    /// The highest generation number the disk has used: the next commit goes above it.
    pub floor: u64,
}

/// The generation to serve from `dir`, falling back when the current one is damaged. The
/// error is the current generation's when the fallback cannot be used either.
pub(crate) fn recover(dir: &Path, record: &VerifiedRecord) -> Result<Recovered, StoreError> {
    let previous = Manifest::read_named(dir, PREVIOUS);
    let current = match Manifest::read(dir) {
        Ok(Some(m)) => m.load(dir, MANIFEST, record).map(|s| (m, s)),
        Ok(None) => match &previous {
            // The commit replaces MANIFEST by rename: it is never missing once written.
            Ok(Some(_)) | Err(_) => Err(StoreError::Manifest {
                path: dir.join(MANIFEST),
                reason: format!("missing, while {PREVIOUS} exists"),
            }),
            _ => {
                return Ok(Recovered {
                    snapshot: Snapshot::empty()?,
                    from_manifest: true,
                    also_kept: HashSet::new(),
                    floor: 0,
                })
            }
        },
        Err(e) => Err(e),
    };
    match current {
        Ok((m, snapshot)) => {
            let mine: HashSet<&str> = m.file_names().collect();
            let also_kept = match previous {
                Ok(Some(p)) => p
                    .file_names()
                    .filter(|n| !mine.contains(n))
                    .map(str::to_owned)
                    .collect(),
                Ok(None) => HashSet::new(),
                Err(e) => {
                    // Not fatal (the current generation is good), but there is no fallback.
                    tracing::warn!(error = %e, "the fallback manifest is unreadable");
                    HashSet::new()
                }
            };
            let floor = snapshot.generation();
            Ok(Recovered {
                snapshot,
                from_manifest: true,
                also_kept,
                floor,
            })
        }
        Err(damage) => {
            let Ok(Some(p)) = previous else {
                return Err(damage);
            };
            // Damage is about: the fallback is checked in full, whatever the record says.
            record.distrust();
            let snapshot = match p.load(dir, PREVIOUS, record) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "the fallback generation is damaged too");
                    return Err(damage);
                }
            };
            // The damaged manifest's files stay (never delete what the on-disk MANIFEST
            // names) and its generation number is not reused.
            let named = Manifest::read(dir).ok().flatten();
            let also_kept = named
                .iter()
                .flat_map(|m| m.file_names())
                .map(str::to_owned)
                .collect();
            let floor = named
                .map_or(0, |m| m.generation)
                .max(snapshot.generation() + 1);
            tracing::error!(
                damage = %damage,
                generation = snapshot.generation(),
                products = snapshot.len(),
                "THE CURRENT GENERATION IS DAMAGED: serving the fallback generation; \
                 updates acknowledged after it are missing until the store is repaired"
            );
            Ok(Recovered {
                snapshot,
                from_manifest: false,
                also_kept,
                floor,
            })
        }
    }
}

/// One generation that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationCheck {
    /// The manifest naming it.
    pub manifest: PathBuf,
    pub generation: u64,
    pub products: usize,
    /// The snapshot files validated (header, blake3, archive check, placement).
    pub files: Vec<String>,
}

/// The result of [`verify`]: the current generation and the fallback, each checked fully.
#[derive(Debug)]
pub struct StoreCheck {
    /// `None` when the store was never written.
    pub current: Option<Result<GenerationCheck, StoreError>>,
    /// `None` when there is no fallback manifest.
    pub fallback: Option<Result<GenerationCheck, StoreError>>,
}

impl StoreCheck {
    /// The generation a server starting now would serve: the current one when it is good,
    /// else the fallback when that is good.
    pub fn serves(&self) -> Option<&GenerationCheck> {
        match (&self.current, &self.fallback) {
            (Some(Ok(g)), _) => Some(g),
            (_, Some(Ok(g))) => Some(g),
            _ => None,
        }
    }
}

/// The generation a server starting now would serve (the current one, else the fallback),
/// read without the store's lock or any change (safe beside a running server, like
/// [`verify`]); `None` when the store was never written.
pub fn read_serving(dir: &Path) -> Result<Option<Snapshot>, StoreError> {
    let mut first_error = None;
    let record = VerifiedRecord::load(dir, Trust::Recorded);
    for name in [MANIFEST, PREVIOUS] {
        match Manifest::read_named(dir, name)
            .and_then(|m| m.map(|m| m.load(dir, name, &record)).transpose())
        {
            Ok(Some(s)) => return Ok(Some(s)),
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(None), Err)
}

/// Check every file of the current generation and of the fallback in full, whatever the
/// verified record says, changing no snapshot file (safe beside a running server). What was
/// checked good is added to the record; a recorded file found damaged is revoked there, so
/// no later open trusts it.
pub fn verify(dir: &Path) -> StoreCheck {
    let record = VerifiedRecord::load(dir, Trust::Nothing);
    let check = |name: &str| -> Option<Result<GenerationCheck, StoreError>> {
        let m = match Manifest::read_named(dir, name) {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        Some(m.load(dir, name, &record).map(|s| GenerationCheck {
            manifest: dir.join(name),
            generation: s.generation(),
            products: s.len(),
            files: s.file_names().map(str::to_owned).collect(),
        }))
    };
    let mut current = check(MANIFEST);
    let fallback = check(PREVIOUS);
    if dir.join(MANIFEST).exists() {
        if let Err(e) = record.flush(None) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot update the verified record");
        }
    }
    if current.is_none() && fallback.is_some() {
        current = Some(Err(StoreError::Manifest {
            path: dir.join(MANIFEST),
            reason: format!("missing, while {PREVIOUS} exists"),
        }));
    }
    StoreCheck { current, fallback }
}
