//! The `MANIFEST`: a small JSON document naming the files of the current generation.
//! Replacing it (atomically, by rename) is what publishes a generation.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crate::snapshot::format::{self, FileRole, MAX_SHARDS};
use crate::snapshot::verified::VerifiedRecord;
use crate::snapshot::{DictsFile, ShardFile, Snapshot};

use super::{parallel, StoreError};

/// File name of the manifest inside the store directory.
pub(crate) const MANIFEST: &str = "MANIFEST";

/// The manifest of the generation before the current one, kept (with its files) as the
/// fallback until the next commit: a damaged current generation is not the end of the store.
pub(crate) const PREVIOUS: &str = "MANIFEST.prev";

/// Version of the manifest document.
pub(crate) const MANIFEST_VERSION: u32 = 1;

/// The manifest document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub format: u32,
    pub generation: u64,
    /// RFC 3339 UTC.
    pub published: String,
    pub shard_count: u32,
    /// Total number of products, a cross-check on the shard files.
    pub products: u64,
    /// One entry per shard: the file name, or `null` for an empty shard.
    pub shards: Vec<Option<String>>,
    /// The dictionaries file, `null` while the dictionaries are empty.
    pub dictionaries: Option<String>,
}

impl Manifest {
    /// The manifest describing `snapshot`.
    pub(crate) fn describe(snapshot: &Snapshot) -> Manifest {
        Manifest {
            format: MANIFEST_VERSION,
            generation: snapshot.generation(),
            published: snapshot.published().to_string(),
            shard_count: snapshot.shard_count(),
            products: snapshot.len() as u64,
            shards: (0..snapshot.shard_count())
                .map(|i| snapshot.shard_file(i).map(|s| s.name().to_owned()))
                .collect(),
            dictionaries: snapshot.dicts_file().name().map(str::to_owned),
        }
    }

    /// Read and check `dir/MANIFEST`; `None` when the store was never written.
    pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>, StoreError> {
        Manifest::read_named(dir, MANIFEST)
    }

    /// Read and check the manifest `dir/name` ([`MANIFEST`] or [`PREVIOUS`]).
    pub(crate) fn read_named(dir: &Path, name: &str) -> Result<Option<Manifest>, StoreError> {
        let path = dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let bad = |reason: String| StoreError::Manifest {
            path: path.clone(),
            reason,
        };
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::ManifestJson {
                path: path.clone(),
                source,
            })?;
        m.check().map_err(bad)?;
        Ok(Some(m))
    }

    fn check(&self) -> Result<(), String> {
        if self.format != MANIFEST_VERSION {
            return Err(format!(
                "manifest format {} is not supported (this build reads {MANIFEST_VERSION})",
                self.format
            ));
        }
        if !self.shard_count.is_power_of_two() || self.shard_count > MAX_SHARDS {
            return Err(format!(
                "shard_count {} is not a power of two up to {MAX_SHARDS}",
                self.shard_count
            ));
        }
        if self.shards.len() != self.shard_count as usize {
            return Err(format!(
                "{} shard entries for shard_count {}",
                self.shards.len(),
                self.shard_count
            ));
        }
        self.published
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("published {:?}: {e}", self.published))?;
        let mut seen = HashSet::new();
        for (i, name) in self.shards.iter().enumerate() {
            let Some(name) = name else { continue };
            match format::parse_file_name(name) {
                Some((FileRole::Shard(index), _)) if index as usize == i => {}
                _ => {
                    return Err(format!(
                        "shard {i}: {name:?} is not a file name for shard {i}"
                    ))
                }
            }
            if !seen.insert(name) {
                return Err(format!("{name:?} is listed twice"));
            }
        }
        if let Some(name) = &self.dictionaries {
            if !matches!(
                format::parse_file_name(name),
                Some((FileRole::Dictionaries, _))
            ) {
                return Err(format!("{name:?} is not a dictionaries file name"));
            }
        }
        Ok(())
    }

    /// The names of the files this manifest lists.
    pub(crate) fn file_names(&self) -> impl Iterator<Item = &str> {
        self.shards
            .iter()
            .flatten()
            .chain(&self.dictionaries)
            .map(String::as_str)
    }

    /// Map every file (validating those `record` does not list), assembling the snapshot;
    /// errors name `dir/name`, the manifest this one was read from.
    pub(crate) fn load(
        &self,
        dir: &Path,
        name: &str,
        record: &VerifiedRecord,
    ) -> Result<Snapshot, StoreError> {
        let published =
            self.published
                .parse::<jiff::Timestamp>()
                .map_err(|e| StoreError::Manifest {
                    path: dir.join(name),
                    reason: format!("published {:?}: {e}", self.published),
                })?;
        let shards = self.load_shards(dir, record)?;
        let dicts = match &self.dictionaries {
            Some(name) => DictsFile::open(dir, name, record)?,
            None => DictsFile::empty()?,
        };
        let snapshot = Snapshot::new(self.generation, published, shards, Arc::new(dicts))?;
        if snapshot.len() as u64 != self.products {
            return Err(StoreError::Manifest {
                path: dir.join(name),
                reason: format!(
                    "lists {} products but the shard files hold {}",
                    self.products,
                    snapshot.len()
                ),
            });
        }
        Ok(snapshot)
    }

    /// Opening many shards waits on the disk (a header each) or the CPU (an unrecorded
    /// shard's full check): both go wide.
    fn load_shards(
        &self,
        dir: &Path,
        record: &VerifiedRecord,
    ) -> Result<Vec<Option<Arc<ShardFile>>>, StoreError> {
        let count = self.shard_count;
        let names: Vec<(u32, Option<&str>)> = (0..count)
            .zip(self.shards.iter().map(Option::as_deref))
            .collect();
        // Recorded files cost one header read each, unrecorded ones a full check: the disk's
        // queue depth matters more than the core count either way.
        parallel::io_map(names, |(index, name)| {
            name.map(|n| ShardFile::open(dir, n, index, count, record).map(Arc::new))
                .transpose()
        })
        .into_iter()
        .map(|r| r.map_err(StoreError::from))
        .collect()
    }

    /// The document as written to disk.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, StoreError> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|source| StoreError::ManifestJson {
                path: MANIFEST.into(),
                source,
            })?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: MANIFEST_VERSION,
            generation: 3,
            published: "2026-05-01T10:00:00Z".into(),
            shard_count: 2,
            products: 0,
            shards: vec![None, Some(format::shard_file_name(1, &[7; 32]))],
            dictionaries: Some(format::dicts_file_name(&[8; 32])),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let m = sample();
        let parsed: Manifest = serde_json::from_slice(&m.to_json().unwrap()).unwrap();
        assert_eq!(parsed, m);
        assert_eq!(parsed.check(), Ok(()));
    }

    #[test]
    fn rejects_incoherent_manifests() {
        let mut m = sample();
        m.shard_count = 3;
        assert!(m.check().unwrap_err().contains("power of two"));

        let mut m = sample();
        m.shards.push(None);
        assert!(m.check().unwrap_err().contains("3 shard entries"));

        let mut m = sample();
        m.shards[0] = Some(format::shard_file_name(1, &[7; 32]));
        assert!(m
            .check()
            .unwrap_err()
            .contains("not a file name for shard 0"));

        let mut m = sample();
        m.shards[1] = Some("../../etc/passwd".into());
        assert!(m.check().is_err());

        let mut m = sample();
        m.dictionaries = m.shards[1].clone();
        assert!(m.check().unwrap_err().contains("dictionaries"));

        let mut m = sample();
        m.published = "yesterday".into();
        assert!(m.check().unwrap_err().contains("published"));

        let mut m = sample();
        m.format = 9;
        assert!(m.check().unwrap_err().contains("not supported"));
    }

    #[test]
    fn missing_manifest_reads_as_none_and_garbage_as_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(MANIFEST), b"{ not json").unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains(MANIFEST), "{err}");
    }
}
