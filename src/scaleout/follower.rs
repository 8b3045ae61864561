//! The replica's side: follow the manifest sequence, fetch and verify what is new into the
//! data directory ([`super::transfer::download`]), one manifest at a time.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::manifest::{safe_path, FileEntry, Manifest};
use super::{highest, manifest_key, object_key, ScaleError};

/// Follows one manifest sequence into a data directory.
pub struct Follower {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    data_dir: PathBuf,
    current: Option<Manifest>,
    /// When the bucket was last asked whether the collector removed the next manifest.
    gap_checked: Option<Instant>,
    /// Files the writer removed, by when the manifest without them was applied.
    dropped: VecDeque<(Instant, Vec<FileEntry>)>,
    drop_after: Duration,
}

/// How long a file the writer removed stays in a replica's data directory: the replica's
/// publisher may still serve the set before the swap (and downloads may have resolved it).
const DROP_AFTER: Duration = Duration::from_secs(60);

/// How often a replica that finds no next manifest asks whether the collector removed it
/// (it lagged behind the retention): one listing now and then, not one per poll.
const GAP_CHECK: Duration = Duration::from_secs(10);

/// What one [`Follower::step`] did.
#[derive(Debug)]
pub enum FollowOutcome {
    /// No manifest after the current one yet.
    UpToDate,
    /// The files of this manifest are in the data directory, verified; objects fetched
    /// and their bytes.
    Applied {
        manifest: Box<Manifest>,
        objects: usize,
        bytes: u64,
    },
}

/// Manifest `sequence`, `None` when it does not exist yet.
pub(crate) async fn get_manifest(
    store: &dyn ObjectStore,
    prefix: &ObjectPath,
    sequence: u64,
) -> Result<Option<Manifest>, ScaleError> {
    let key = manifest_key(prefix, sequence);
    let bytes = match store.get(&key).await {
        Ok(got) => got.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|source| ScaleError::Store {
        op: "get",
        key: key.to_string(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ScaleError::Manifest {
            key: key.to_string(),
            source,
        })
}

impl Follower {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: ObjectPath, data_dir: PathBuf) -> Follower {
        Follower {
            store,
            prefix,
            data_dir,
            current: None,
            gap_checked: None,
            dropped: VecDeque::new(),
            drop_after: DROP_AFTER,
        }
    }

    /// Remove the files the writer removed as soon as the next step (tests).
    #[cfg(test)]
    pub(crate) fn dropping_at_once(mut self) -> Follower {
        self.drop_after = Duration::ZERO;
        self
    }

    /// The newest manifest, when it is past `next`, which is missing: the collector removed
    /// the manifests this replica had not reached (it lagged past the retention, or an
    /// object of the one it was applying was removed). Asked at most every [`GAP_CHECK`].
    async fn collected_past(&mut self, next: u64) -> Result<Option<Manifest>, ScaleError> {
        if self.current.is_none() || self.gap_checked.is_some_and(|t| t.elapsed() < GAP_CHECK) {
            return Ok(None);
        }
        self.gap_checked = Some(Instant::now());
        let newest = highest(self.store.as_ref(), &self.prefix, "manifests").await?;
        match newest {
            Some(n) if n > next => {
                tracing::warn!(
                    missing = next,
                    newest = n,
                    "replica: manifests were collected before this replica took them; jumping to the newest"
                );
                get_manifest(self.store.as_ref(), &self.prefix, n).await
            }
            _ => Ok(None),
        }
    }

    /// Remove the files the writer removed, [`DROP_AFTER`] after the manifest without them
    /// was applied, unless the current manifest names them again; a file of another size
    /// there is not the writer's and stays. The writer's own retention decides (its
    /// manifests list every file it keeps), so a replica's disk follows the writer's.
    fn remove_dropped(&mut self) {
        let due = |d: &VecDeque<(Instant, Vec<FileEntry>)>, after| {
            d.front().is_some_and(|(at, _)| at.elapsed() >= after)
        };
        // Every poll comes here: nothing to do, nothing built.
        if !due(&self.dropped, self.drop_after) {
            return;
        }
        let Some(current) = &self.current else {
            return;
        };
        let listed: HashSet<&str> = current.files.iter().map(|f| f.path.as_str()).collect();
        while due(&self.dropped, self.drop_after) {
            let (_, files) = self.dropped.pop_front().expect("a front entry");
            let stale = |f: &&FileEntry| !listed.contains(f.path.as_str()) && safe_path(&f.path);
            for f in files.iter().filter(stale) {
                let path = self.data_dir.join(&f.path);
                if std::fs::metadata(&path).is_ok_and(|m| m.len() == f.size) {
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "replica: cannot remove a file the writer removed");
                    }
                }
            }
        }
    }

    /// The manifest whose files are in the data directory.
    pub fn current(&self) -> Option<&Manifest> {
        self.current.as_ref()
    }

    /// Take the next manifest (the newest, the first time), if there is one: fetch the
    /// objects of its files the data directory lacks, verify size and blake3 before writing
    /// them, and make it current. A failure leaves the current manifest current.
    pub async fn step(&mut self) -> Result<FollowOutcome, ScaleError> {
        self.remove_dropped();
        let next = match &self.current {
            Some(m) => m.sequence + 1,
            None => match highest(self.store.as_ref(), &self.prefix, "manifests").await? {
                Some(n) => n,
                None => return Ok(FollowOutcome::UpToDate),
            },
        };
        let manifest = match get_manifest(self.store.as_ref(), &self.prefix, next).await? {
            Some(m) => m,
            None => match self.collected_past(next).await? {
                Some(m) => m,
                None => return Ok(FollowOutcome::UpToDate),
            },
        };
        let next = manifest.sequence;
        let key = manifest_key(&self.prefix, next).to_string();
        let (mut objects, mut bytes) = (0, 0);
        let mut files = manifest.new_files(self.current.as_ref());
        // The store's manifests last: once one is replaced, the files it names are in place.
        files.sort_by_key(|f| {
            f.path
                .rsplit('/')
                .next()
                .unwrap_or("")
                .starts_with("MANIFEST")
        });
        for file in files {
            if !safe_path(&file.path) {
                return Err(ScaleError::BadPath {
                    key,
                    path: file.path.clone(),
                });
            }
            let dest = self.data_dir.join(&file.path);
            if holds(&dest, file.size, &file.blake3) {
                continue;
            }
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|source| ScaleError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let object = object_key(&self.prefix, &file.blake3);
            match super::transfer::download(self.store.as_ref(), &object, file, &dest).await {
                // Collected under a manifest this replica was too slow for (the manifest
                // went first): the next step looks for the newest at once.
                Err(
                    e @ ScaleError::Store {
                        source: object_store::Error::NotFound { .. },
                        ..
                    },
                ) => {
                    self.gap_checked = None;
                    return Err(e);
                }
                r => r?,
            }
            objects += 1;
            bytes += file.size;
        }
        if let Some(before) = &self.current {
            let kept: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
            let gone: Vec<FileEntry> = before
                .files
                .iter()
                .filter(|f| !kept.contains(f.path.as_str()))
                .cloned()
                .collect();
            if !gone.is_empty() {
                self.dropped.push_back((Instant::now(), gone));
            }
        }
        self.current = Some(manifest.clone());
        Ok(FollowOutcome::Applied {
            manifest: Box::new(manifest),
            objects,
            bytes,
        })
    }
}

/// Whether `path` already holds these bytes (a file kept from an earlier manifest).
fn holds(path: &Path, size: u64, blake3: &str) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == size => {}
        _ => return false,
    }
    let mut hasher = blake3::Hasher::new();
    std::fs::File::open(path)
        .and_then(|f| hasher.update_reader(f).map(|_| ()))
        .is_ok()
        && hasher.finalize().to_hex().as_str() == blake3
}
