//! One published state: the writer's epoch, the store generation, and every file a replica
//! lays out in its data directory to serve the same bytes, ETags and Last-Modified (those are
//! derived from the files' bytes and the snapshot, never from file times).

use serde::{Deserialize, Serialize};

/// The manifest object `manifests/{sequence:020}.json`, written create-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Position in the manifest sequence; one writer wins each.
    pub sequence: u64,
    /// The epoch of the writer that published it; never goes down along the sequence.
    pub epoch: u64,
    /// The writer's id (host and process), for the operator.
    pub writer: String,
    /// The store generation the files hold.
    pub generation: u64,
    /// Every published file, sorted by path.
    pub files: Vec<FileEntry>,
}

/// A file of the data directory: its path there and its content's size and blake3 (which is
/// also its object's name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the data directory, `/`-separated (`artifacts/…`).
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

impl Manifest {
    /// Files of `self` that `other` lacks or holds with other bytes.
    pub fn new_files<'a>(&'a self, other: Option<&Manifest>) -> Vec<&'a FileEntry> {
        let old: std::collections::HashSet<&FileEntry> =
            other.map(|o| o.files.iter().collect()).unwrap_or_default();
        self.files.iter().filter(|f| !old.contains(f)).collect()
    }
}

impl std::hash::Hash for FileEntry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.path.hash(state);
        self.blake3.hash(state);
    }
}

/// A path a manifest may name: relative, under one of the published directories, no `..`.
pub(crate) fn safe_path(path: &str) -> bool {
    let mut parts = path.split('/');
    let top = parts.next().unwrap_or("");
    super::PUBLISHED_DIRS.contains(&top)
        && path
            .split('/')
            .skip(1)
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && path.split('/').count() > 1
        && !path.contains('\\')
        && !path.contains('\0')
}
