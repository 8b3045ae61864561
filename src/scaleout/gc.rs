//! The bucket's garbage collector, run by the writer alone: old manifests go once they are
//! both beyond the newest [`Retention::manifests`] and older than [`Retention::age`]; then
//! every object no kept manifest names and older than [`Retention::grace`] goes. The grace
//! covers objects another writer uploaded for a manifest it has not written yet (a takeover
//! under way); the kept manifests cover replicas a little behind, and a replica whose next
//! manifest is gone jumps to the newest ([`super::Follower::step`]).
//!
//! Which manifests name an object is kept as each object's newest naming sequence: the
//! writer records every manifest it writes or takes over, and the collector reads the kept
//! manifests it has not seen once, so a run reads no manifest twice.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::manifest::FileEntry;
use super::{key_number, ScaleError};

/// What the collector keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The newest manifests kept whatever their age.
    pub manifests: usize,
    /// Manifests younger than this are kept whatever their number.
    pub age: Duration,
    /// Objects younger than this are kept, named or not.
    pub grace: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            manifests: 100,
            age: Duration::from_secs(3600),
            grace: Duration::from_secs(3600),
        }
    }
}

/// What one collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub manifests: usize,
    pub objects: usize,
    pub bytes: u64,
    /// Objects and bytes left in the bucket.
    pub kept_objects: usize,
    pub kept_bytes: u64,
}

/// Each object's newest naming manifest, for the manifests from `complete_from` on.
#[derive(Debug, Default)]
pub(super) struct References {
    newest: HashMap<String, u64>,
    /// Every manifest from this sequence on is recorded (`None`: none yet).
    complete_from: Option<u64>,
}

impl References {
    /// Record manifest `sequence`, the newest so far or one just below those recorded.
    pub(super) fn record(&mut self, sequence: u64, files: &[FileEntry]) {
        for f in files {
            // Most files of a manifest were named by the one before: no key allocated.
            match self.newest.get_mut(&f.blake3) {
                Some(at) => *at = (*at).max(sequence),
                None => {
                    self.newest.insert(f.blake3.clone(), sequence);
                }
            }
        }
        self.complete_from = Some(self.complete_from.map_or(sequence, |c| c.min(sequence)));
    }

    /// Take an object out (deleted).
    pub(super) fn forget(&mut self, blake3: &str) {
        self.newest.remove(blake3);
    }

    /// Whether a kept manifest (from `cutoff` on) names the object.
    fn named(&self, blake3: &str, cutoff: u64) -> bool {
        self.newest.get(blake3).is_some_and(|&s| s >= cutoff)
    }
}

fn list_error(key: &ObjectPath) -> impl Fn(object_store::Error) -> ScaleError + '_ {
    move |source| ScaleError::Store {
        op: "list",
        key: key.to_string(),
        source,
    }
}

fn age(now: SystemTime, modified: i64) -> Duration {
    let modified = SystemTime::UNIX_EPOCH + Duration::from_millis(modified.max(0) as u64);
    now.duration_since(modified).unwrap_or_default()
}

/// Collect the bucket under `prefix` as of `now` (see the module documentation), for a
/// writer whose newest manifest is `own_newest`. Nothing is removed while the bucket holds
/// a manifest above it: another writer is publishing, and this one is about to be fenced.
/// `deleted` is told of every object removed, before its removal.
pub(super) async fn collect(
    store: &dyn ObjectStore,
    prefix: &ObjectPath,
    refs: &mut References,
    own_newest: u64,
    retention: Retention,
    now: SystemTime,
    mut deleted: impl FnMut(&str),
) -> Result<Collected, ScaleError> {
    let mut out = Collected::default();
    let dir = prefix.clone().join("manifests");
    let mut manifests: Vec<(u64, ObjectPath, i64)> = store
        .list_with_delimiter(Some(&dir))
        .await
        .map_err(list_error(&dir))?
        .objects
        .into_iter()
        .filter_map(|m| {
            let n = key_number(&m.location)?;
            Some((n, m.location, m.last_modified.timestamp_millis()))
        })
        .collect();
    manifests.sort_by_key(|m| m.0);
    if manifests.last().is_some_and(|m| m.0 > own_newest) {
        return Ok(out);
    }
    // Sequence numbers rise with time: the manifests removed are the oldest ones.
    let removable = manifests.len().saturating_sub(retention.manifests);
    let removed = manifests[..removable]
        .iter()
        .take_while(|m| age(now, m.2) >= retention.age)
        .count();
    let Some(cutoff) = manifests.get(removed).map(|m| m.0) else {
        return Ok(out);
    };
    // The kept manifests not recorded yet (written before this writer's start).
    let unrecorded = refs.complete_from.unwrap_or(u64::MAX);
    for (sequence, _, _) in &manifests[removed..] {
        if *sequence >= unrecorded {
            break;
        }
        if let Some(m) = super::follower::get_manifest(store, prefix, *sequence).await? {
            refs.record(m.sequence, &m.files);
        }
    }
    refs.complete_from = Some(cutoff.min(refs.complete_from.unwrap_or(cutoff)));
    for (_, location, _) in &manifests[..removed] {
        delete(store, location).await?;
        out.manifests += 1;
    }
    let dir = prefix.clone().join("objects");
    let mut listed = store.list(Some(&dir));
    while let Some(meta) = listed.next().await {
        let meta = meta.map_err(list_error(&dir))?;
        let Some(name) = meta.location.filename() else {
            continue;
        };
        let young = age(now, meta.last_modified.timestamp_millis()) < retention.grace;
        if young || refs.named(name, cutoff) {
            out.kept_objects += 1;
            out.kept_bytes += meta.size;
            continue;
        }
        deleted(name);
        refs.forget(name);
        delete(store, &meta.location).await?;
        out.objects += 1;
        out.bytes += meta.size;
    }
    Ok(out)
}

async fn delete(store: &dyn ObjectStore, location: &ObjectPath) -> Result<(), ScaleError> {
    match store.delete(location).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(source) => Err(ScaleError::Store {
            op: "delete",
            key: location.to_string(),
            source,
        }),
    }
}
