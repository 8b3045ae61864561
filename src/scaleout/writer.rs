//! The writer's side: claim an epoch, upload what is new, then the create-only manifest.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

use super::gc::{Collected, References, Retention};
use super::manifest::{FileEntry, Manifest};
use super::{epoch_key, highest, manifest_key, object_key, put_create, ScaleError, PUBLISHED_DIRS};

/// One writer of a manifest sequence (see the module documentation of [`super`]).
pub struct Writer {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    id: String,
    epoch: u64,
    /// The sequence number the next manifest is tried at.
    next: u64,
    /// Objects known to be in the store (uploaded, or named by a manifest seen).
    present: HashSet<String>,
    /// The manifest this writer last wrote, to skip publishing an unchanged state.
    last_files: Option<Vec<FileEntry>>,
    fenced: Option<ScaleError>,
    /// Files above this size go up in parts of this size.
    part: usize,
    /// Which manifests name each object, for the collector.
    refs: References,
}

/// How a create-only manifest write ended (a higher epoch's win is an error, fencing).
enum Put {
    Written(u64),
    Taken,
}

/// What one publication put into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub sequence: u64,
    pub epoch: u64,
    /// Objects uploaded and their bytes (objects already there are not counted).
    pub objects: usize,
    pub bytes: u64,
}

impl Writer {
    /// Claim the epoch after the highest claimed so far (create-only, so two writers starting
    /// together get different epochs) and continue the manifest sequence after its newest.
    pub async fn claim(
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        id: String,
    ) -> Result<Writer, ScaleError> {
        let mut epoch = highest(store.as_ref(), &prefix, "epochs")
            .await?
            .unwrap_or(0)
            + 1;
        loop {
            let key = epoch_key(&prefix, epoch);
            let body = serde_json::json!({ "writer": id }).to_string();
            match store.put_opts(&key, body.into(), put_create()).await {
                Ok(_) => break,
                Err(object_store::Error::AlreadyExists { .. }) => epoch += 1,
                Err(source) => {
                    return Err(ScaleError::Store {
                        op: "put",
                        key: key.to_string(),
                        source,
                    })
                }
            }
        }
        let next = highest(store.as_ref(), &prefix, "manifests")
            .await?
            .map_or(1, |n| n + 1);
        tracing::info!(epoch, next_manifest = next, writer = %id, "object store: epoch claimed");
        Ok(Writer {
            store,
            prefix,
            id,
            epoch,
            next,
            present: HashSet::new(),
            last_files: None,
            fenced: None,
            part: super::transfer::PART,
            refs: References::default(),
        })
    }

    /// Upload files larger than `part` bytes in parts of that size (S3 takes 5 MiB and up).
    #[cfg(test)]
    pub(crate) fn with_part_size(mut self, part: usize) -> Writer {
        self.part = part;
        self
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Why this writer takes no more writes, once another epoch has taken over.
    pub fn fenced(&self) -> Option<&ScaleError> {
        self.fenced.as_ref()
    }

    /// Upload the objects of `files` the store lacks, then the next manifest, create-only.
    /// `Ok(None)`: the files are those of the last manifest, nothing to publish. A manifest
    /// number won by a higher epoch fences this writer for good ([`ScaleError::Fenced`]); one
    /// won by a lower epoch (an old writer that has not yet learned of this one) is skipped.
    pub async fn publish(
        &mut self,
        generation: u64,
        files: Vec<(FileEntry, PathBuf)>,
    ) -> Result<Option<Published>, ScaleError> {
        if let Some(ScaleError::Fenced {
            epoch,
            winner,
            sequence,
        }) = &self.fenced
        {
            return Err(ScaleError::Fenced {
                epoch: *epoch,
                winner: *winner,
                sequence: *sequence,
            });
        }
        let entries: Vec<FileEntry> = files.iter().map(|(e, _)| e.clone()).collect();
        if self.last_files.as_ref() == Some(&entries) {
            return Ok(None);
        }
        let (mut objects, mut bytes) = (0, 0);
        for (entry, path) in &files {
            if self.present.contains(&entry.blake3) {
                continue;
            }
            if self.upload(entry, path).await? {
                objects += 1;
                bytes += entry.size;
            }
            self.present.insert(entry.blake3.clone());
        }
        loop {
            match self.put_manifest(generation, &entries).await? {
                Put::Written(sequence) => {
                    self.refs.record(sequence, &entries);
                    self.last_files = Some(entries);
                    return Ok(Some(Published {
                        sequence,
                        epoch: self.epoch,
                        objects,
                        bytes,
                    }));
                }
                // An older writer that has not yet learned of this one: the next number.
                Put::Taken => {}
            }
        }
    }

    /// Continue the sequence from its newest manifest, laid out in `data_dir` (as a replica
    /// does), and republish that state under this epoch, so the older writer is fenced from
    /// its next publication on and everything it acknowledged is in what this writer starts
    /// from. Call before taking writes. `None`: the bucket held no manifest; this writer
    /// wrote its first (empty) one and starts from its own data directory.
    pub async fn take_over(&mut self, data_dir: &Path) -> Result<Option<Manifest>, ScaleError> {
        loop {
            let mut follower =
                super::Follower::new(self.store.clone(), self.prefix.clone(), data_dir.into());
            while let super::FollowOutcome::Applied { .. } = follower.step().await? {}
            let Some(newest) = follower.current().cloned() else {
                // An empty bucket: claim its first manifest (no files) create-only, so a
                // writer starting on it meanwhile follows this one instead of both starting
                // from nothing; the one that loses takes the loop again.
                match self.put_manifest(0, &[]).await? {
                    Put::Written(_) => {
                        self.last_files = Some(Vec::new());
                        return Ok(None);
                    }
                    Put::Taken => continue,
                }
            };
            if newest.epoch > self.epoch {
                return Err(self.fence(newest.epoch, newest.sequence));
            }
            self.next = newest.sequence + 1;
            self.present
                .extend(newest.files.iter().map(|f| f.blake3.clone()));
            self.refs.record(newest.sequence, &newest.files);
            match self.put_manifest(newest.generation, &newest.files).await? {
                Put::Written(sequence) => {
                    self.refs.record(sequence, &newest.files);
                    self.last_files = Some(newest.files.clone());
                    return Ok(Some(newest));
                }
                // The older writer published meanwhile: start from its newer state.
                Put::Taken => {}
            }
        }
    }

    /// Write manifest `self.next` create-only. Taken by a higher epoch: fenced.
    async fn put_manifest(
        &mut self,
        generation: u64,
        files: &[FileEntry],
    ) -> Result<Put, ScaleError> {
        let manifest = Manifest {
            sequence: self.next,
            epoch: self.epoch,
            writer: self.id.clone(),
            generation,
            files: files.to_vec(),
        };
        let key = manifest_key(&self.prefix, self.next);
        let body = serde_json::to_vec(&manifest).expect("a manifest serialises");
        match self.store.put_opts(&key, body.into(), put_create()).await {
            Ok(_) => {
                self.next += 1;
                Ok(Put::Written(manifest.sequence))
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                let winner =
                    super::follower::get_manifest(self.store.as_ref(), &self.prefix, self.next)
                        .await?;
                let winner_epoch = winner.as_ref().map_or(self.epoch, |w| w.epoch);
                if winner_epoch > self.epoch {
                    return Err(self.fence(winner_epoch, self.next));
                }
                // An older writer's last word: replicas apply it too, so its objects stay.
                if let Some(w) = winner {
                    self.refs.record(w.sequence, &w.files);
                }
                self.next += 1;
                Ok(Put::Taken)
            }
            Err(source) => Err(ScaleError::Store {
                op: "put",
                key: key.to_string(),
                source,
            }),
        }
    }

    /// Remove what the bucket no longer needs ([`super::gc`]); nothing once fenced.
    pub async fn collect(
        &mut self,
        retention: Retention,
        now: SystemTime,
    ) -> Result<Collected, ScaleError> {
        if self.fenced.is_some() || self.next <= 1 {
            return Ok(Collected::default());
        }
        let Writer {
            store,
            prefix,
            present,
            refs,
            next,
            ..
        } = self;
        super::gc::collect(
            store.as_ref(),
            prefix,
            refs,
            *next - 1,
            retention,
            now,
            |gone| {
                present.remove(gone);
            },
        )
        .await
    }

    /// Stop for good: `winner` published sequence `sequence`.
    fn fence(&mut self, winner: u64, sequence: u64) -> ScaleError {
        tracing::error!(
            epoch = self.epoch,
            winner,
            sequence,
            "object store: taken over by a newer writer; this writer takes no more writes"
        );
        let fenced = || ScaleError::Fenced {
            epoch: self.epoch,
            winner,
            sequence,
        };
        self.fenced = Some(fenced());
        fenced()
    }

    /// Put one object (see [`super::transfer::upload`]); false when it was there already.
    async fn upload(&self, entry: &FileEntry, path: &Path) -> Result<bool, ScaleError> {
        let key = object_key(&self.prefix, &entry.blake3);
        super::transfer::upload(self.store.as_ref(), &key, entry, path, self.part).await
    }
}

/// blake3 of files already hashed, by path, size, modification time and inode: published
/// files are never rewritten in place, so a scan hashes only what is new. The inode matters:
/// a file renamed over another of the same size within one tick of the file system's clock
/// (the store's `MANIFEST.prev`) keeps size and mtime, not its inode.
#[derive(Default)]
pub struct HashCache {
    known: HashMap<PathBuf, (u64, SystemTime, u64, String)>,
}

/// Every published file of `data_dir` (see [`PUBLISHED_DIRS`]), sorted by path, with its
/// size and blake3. Temporary files (dot files), the store's `LOCK` and its verified record
/// are left out.
/// Blocking.
pub fn scan(
    data_dir: &Path,
    cache: &mut HashCache,
) -> Result<Vec<(FileEntry, PathBuf)>, ScaleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaleError::Io { path, source }
    };
    let mut out = Vec::new();
    let mut dirs: Vec<(PathBuf, String)> = PUBLISHED_DIRS
        .iter()
        .map(|d| (data_dir.join(d), d.to_string()))
        .collect();
    let mut seen = HashSet::new();
    while let Some((dir, rel)) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            r => r.map_err(io(&dir))?,
        };
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // The verified record says what this node checked: each node keeps its own.
            if name.starts_with('.') || name == "LOCK" || name == crate::snapshot::verified::RECORD
            {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            let rel = format!("{rel}/{name}");
            if kind.is_dir() {
                // Ingest bodies waiting to be committed are not published state.
                if rel != "store/spool" {
                    dirs.push((path, rel));
                }
                continue;
            }
            let meta = match std::fs::metadata(&path) {
                // Removed by retention between the listing and now: not part of this state.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                r => r.map_err(io(&path))?,
            };
            let mtime = meta.modified().map_err(io(&path))?;
            let inode = std::os::unix::fs::MetadataExt::ino(&meta);
            let blake3 = match cache.known.get(&path) {
                Some((size, time, ino, hash))
                    if *size == meta.len() && *time == mtime && *ino == inode =>
                {
                    hash.clone()
                }
                _ => {
                    let mut hasher = blake3::Hasher::new();
                    let file = match std::fs::File::open(&path) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        r => r.map_err(io(&path))?,
                    };
                    hasher.update_reader(file).map_err(io(&path))?;
                    let hash = hasher.finalize().to_hex().to_string();
                    cache
                        .known
                        .insert(path.clone(), (meta.len(), mtime, inode, hash.clone()));
                    hash
                }
            };
            seen.insert(path.clone());
            out.push((
                FileEntry {
                    path: rel,
                    size: meta.len(),
                    blake3,
                },
                path,
            ));
        }
    }
    cache.known.retain(|p, _| seen.contains(p));
    out.sort();
    Ok(out)
}
