//! Scale-out over S3-compatible object storage (`docs/scale-out.md`): the writer uploads each
//! published state's immutable files and then a create-only manifest; replicas follow the
//! manifests into their own data directory. The bucket's conditional write is the only
//! coordination: exactly one writer wins each manifest sequence number, and a writer that
//! loses to a higher epoch is fenced for good.
//!
//! This stage reads the data directory the earlier stages wrote and knows none of them.

mod follower;
mod gc;
mod manifest;
pub mod task;
#[cfg(test)]
mod tests;
mod transfer;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

pub use follower::{FollowOutcome, Follower};
pub use gc::{Collected, Retention};
pub use manifest::{FileEntry, Manifest};
pub use task::{Durable, DurableState, Following, StoreHealth, Uploader};
pub use writer::{scan, HashCache, Published, Writer};

use crate::config::StoreTarget;

/// The data-directory subdirectories whose files are published; everything else there
/// (`LOCK`, the store's `VERIFIED` record, partners, the signing key, activity, the drop
/// folder) is local to a node.
pub const PUBLISHED_DIRS: [&str; 3] = ["store", "changes", "artifacts"];

/// Why a step of scale-out failed.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    #[error("object store {op} {key}")]
    Store {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot open the object store {url}")]
    Open {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {key} is not valid")]
    Manifest {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("object {key} for {path}: expected {expected_len} bytes with blake3 {expected}, got {actual_len} bytes with blake3 {actual}")]
    HashMismatch {
        key: String,
        path: String,
        expected: String,
        expected_len: u64,
        actual: String,
        actual_len: u64,
    },
    #[error("manifest {key} names the path {path}, which leaves the published directories")]
    BadPath { key: String, path: String },
    /// A scanned file was removed (retention) or replaced before its upload: scan again.
    #[error("{} went away or changed before its upload", path.display())]
    Vanished { path: PathBuf },
    #[error("{url} holds no manifest yet: start the writer first")]
    Empty { url: String },
    /// A higher epoch published this sequence number: this writer was taken over.
    #[error("fenced: manifest {sequence} was written by epoch {winner}, above this writer's epoch {epoch}; this writer takes no more writes")]
    Fenced {
        epoch: u64,
        winner: u64,
        sequence: u64,
    },
}

/// The object store a [`StoreTarget`] names (S3-compatible; credentials from `AWS_*`).
pub fn open(target: &StoreTarget) -> Result<(Arc<dyn ObjectStore>, ObjectPath), ScaleError> {
    let mut builder = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&target.bucket)
        .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
        // Fail within seconds, not minutes: the writer answers ingest with 503 and retries
        // on its own, a replica keeps serving and says so.
        .with_retry(object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(5),
            ..Default::default()
        });
    if let Some(region) = &target.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &target.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let store = builder.build().map_err(|source| ScaleError::Open {
        url: target.url(),
        source,
    })?;
    Ok((Arc::new(store), ObjectPath::from(target.prefix.as_str())))
}

/// A put that fails with `AlreadyExists` when the key is taken (`If-None-Match: *`).
fn put_create() -> object_store::PutOptions {
    object_store::PutOptions {
        mode: object_store::PutMode::Create,
        ..Default::default()
    }
}

/// `prefix/part/name`, the key of an object under the store's prefix.
fn key(prefix: &ObjectPath, part: &str, name: &str) -> ObjectPath {
    prefix.clone().join(part).join(name)
}

fn manifest_key(prefix: &ObjectPath, sequence: u64) -> ObjectPath {
    key(prefix, "manifests", &format!("{sequence:020}.json"))
}

fn object_key(prefix: &ObjectPath, blake3: &str) -> ObjectPath {
    key(prefix, "objects", blake3)
}

fn epoch_key(prefix: &ObjectPath, epoch: u64) -> ObjectPath {
    key(prefix, "epochs", &format!("{epoch:020}"))
}

/// The number a zero-padded key ends with (`…/00000000000000000007.json` → 7).
fn key_number(location: &ObjectPath) -> Option<u64> {
    let name = location.filename()?;
    name.strip_suffix(".json").unwrap_or(name).parse().ok()
}

/// The highest number among the keys under `prefix/part`.
async fn highest(
    store: &dyn ObjectStore,
    prefix: &ObjectPath,
    part: &str,
) -> Result<Option<u64>, ScaleError> {
    let dir = prefix.clone().join(part);
    let listed = store
        .list_with_delimiter(Some(&dir))
        .await
        .map_err(|source| ScaleError::Store {
            op: "list",
            key: dir.to_string(),
            source,
        })?;
    Ok(listed
        .objects
        .iter()
        .filter_map(|m| key_number(&m.location))
        .max())
}

/// Lay the newest manifest of `target` out in `data_dir` (a replica's start); the follower,
/// to go on following.
pub async fn sync_replica(
    target: &StoreTarget,
    data_dir: &std::path::Path,
) -> Result<Follower, ScaleError> {
    let (store, prefix) = open(target)?;
    let mut follower = Follower::new(store, prefix, data_dir.to_path_buf());
    while let FollowOutcome::Applied { .. } = follower.step().await? {}
    match follower.current() {
        // The first manifest of a bucket names no file: nothing to serve yet.
        Some(m) if !m.files.is_empty() => Ok(follower),
        _ => Err(ScaleError::Empty { url: target.url() }),
    }
}
