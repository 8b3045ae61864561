//! The replica's side: follow the manifest sequence, fetch and verify what is new into the
//! data directory (through `fsio`), one manifest at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::manifest::{safe_path, Manifest};
use super::{highest, manifest_key, object_key, ScaleError};

/// Follows one manifest sequence into a data directory.
pub struct Follower {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    data_dir: PathBuf,
    current: Option<Manifest>,
}

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
        let next = match &self.current {
            Some(m) => m.sequence + 1,
            None => match highest(self.store.as_ref(), &self.prefix, "manifests").await? {
                Some(n) => n,
                None => return Ok(FollowOutcome::UpToDate),
            },
        };
        let Some(manifest) = get_manifest(self.store.as_ref(), &self.prefix, next).await? else {
            return Ok(FollowOutcome::UpToDate);
        };
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
            let object = object_key(&self.prefix, &file.blake3);
            let got = match self.store.get(&object).await {
                Ok(got) => got.bytes().await,
                Err(e) => Err(e),
            }
            .map_err(|source| ScaleError::Store {
                op: "get",
                key: object.to_string(),
                source,
            })?;
            let actual = blake3::hash(&got).to_hex().to_string();
            if actual != file.blake3 || got.len() as u64 != file.size {
                return Err(ScaleError::HashMismatch {
                    key: object.to_string(),
                    path: file.path.clone(),
                    expected: file.blake3.clone(),
                    expected_len: file.size,
                    actual,
                    actual_len: got.len() as u64,
                });
            }
            let io = |source| ScaleError::Io {
                path: dest.clone(),
                source,
            };
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            crate::fsio::write(&dest, &got).map_err(io)?;
            objects += 1;
            bytes += file.size;
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
