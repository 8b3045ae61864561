//! The immutable, memory-mapped view of one published generation of the catalog.
//!
//! A generation is a set of files: one per non-empty product shard (an rkyv archive of the
//! shard's products, sorted by id) and one for the dictionaries. Each file is validated once
//! when it is mapped (header, blake3, rkyv bytecheck) and then read zero-copy. Files are
//! shared between generations when a shard did not change, so a [`Snapshot`] of a new
//! generation costs only the files that changed. The store decides which files make a
//! generation; this module owns the format and the mapped view.

pub mod format;
mod mmap;
pub mod verified;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::{ArchivedDictionaries, ArchivedProduct, Dictionaries, ProductId};
use format::{ArchivedShard, FileRole, HeaderProblem, PayloadKind, MAX_SHARDS};
use mmap::Validated;
pub(crate) use mmap::{file_behind, map_file};
use verified::{Entry, VerifiedRecord};

/// Why a snapshot file or generation cannot be served. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {problem}", path.display())]
    Header {
        path: PathBuf,
        problem: HeaderProblem,
    },
    #[error("{}: checksum mismatch, the payload is corrupt", path.display())]
    Checksum { path: PathBuf },
    #[error("{}: payload is not 16-byte aligned in memory", path.display())]
    Misaligned { path: PathBuf },
    #[error("{}: invalid archive: {reason}", path.display())]
    Archive { path: PathBuf, reason: String },
    #[error("{}: not a snapshot file name", path.display())]
    Name { path: PathBuf },
    #[error("{}: content does not match the file name (a wrong or replaced file)", path.display())]
    NameMismatch { path: PathBuf },
    #[error("{}: expected shard {expected} but the file is shard {found}", path.display())]
    WrongShard {
        path: PathBuf,
        expected: u32,
        found: u32,
    },
    #[error("{}: product {id} is out of order or duplicated", path.display())]
    Unsorted { path: PathBuf, id: ProductId },
    #[error("{}: product {id} belongs to shard {expected}, found in shard {found}", path.display())]
    Misplaced {
        path: PathBuf,
        id: ProductId,
        expected: u32,
        found: u32,
    },
    #[error("{}: shard holds no products (empty shards have no file)", path.display())]
    EmptyShard { path: PathBuf },
    #[error("invalid generation layout: {0}")]
    Layout(String),
    #[error("cannot serialize {what}: {reason}")]
    Serialize { what: &'static str, reason: String },
}

/// One non-empty shard of a snapshot.
#[derive(Clone, Copy)]
pub struct ShardView<'a> {
    /// Index of the shard, `0..shard_count`.
    pub index: u32,
    /// blake3 of the shard's payload: equal ids mean identical products, so later stages can
    /// reuse per-shard work across generations.
    pub content_id: [u8; 32],
    /// The shard's products, sorted by id.
    pub products: &'a [ArchivedProduct],
}

fn view(s: &ShardFile) -> ShardView<'_> {
    ShardView {
        index: s.index,
        content_id: s.content_id(),
        products: s.products(),
    }
}

/// A mapped, validated shard file.
pub(crate) struct ShardFile {
    index: u32,
    name: String,
    data: Validated<ArchivedShard>,
    /// Products in the shard: counted when checked, else the verified record's figure (so
    /// that a trusted open reads nothing beyond the header).
    count: usize,
}

impl ShardFile {
    /// Map shard `index` of `shard_count` from `dir/name`. Unless `record` lists its payload
    /// for this shard count (then only the header and size are checked), validate it and check
    /// that its products are sorted, unique and belong to this shard, and record it.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        index: u32,
        shard_count: u32,
        record: &VerifiedRecord,
    ) -> Result<Self, SnapshotError> {
        let path = dir.join(name);
        let hex = match format::parse_file_name(name) {
            Some((FileRole::Shard(found), hex)) => {
                if found != index {
                    return Err(SnapshotError::WrongShard {
                        path,
                        expected: index,
                        found,
                    });
                }
                hex
            }
            _ => return Err(SnapshotError::Name { path }),
        };
        let entry = |h: &format::Header| Entry {
            kind: PayloadKind::Shard,
            shard_count,
            len: h.payload_len,
            hash: h.hash,
        };
        let (mut seen, mut recorded) = (None, None);
        let (data, trusted) = Validated::<ArchivedShard>::open(&path, PayloadKind::Shard, |h| {
            seen = Some(entry(h));
            recorded = record.trusts(&entry(h));
            recorded.is_some()
        })
        .inspect_err(|_| seen.iter().for_each(|e| record.refused(e)))?;
        if format::short_hex(&data.content_id()) != hex {
            return Err(SnapshotError::NameMismatch { path });
        }
        let mut file = ShardFile {
            index,
            name: name.to_owned(),
            data,
            count: recorded.unwrap_or(0) as usize,
        };
        if trusted {
            return Ok(file);
        }
        file.check_placement(&path, shard_count)?;
        file.count = file.products().len();
        record.checked(file.entry(shard_count), file.count as u64);
        Ok(file)
    }

    /// The products are sorted, unique, and all of this shard.
    fn check_placement(&self, path: &Path, shard_count: u32) -> Result<(), SnapshotError> {
        let (path, index) = (path.to_path_buf(), self.index);
        let products = self.data.get().products.as_slice();
        if products.is_empty() {
            return Err(SnapshotError::EmptyShard { path });
        }
        let mut previous = 0;
        for p in products {
            let id = p.id.to_native();
            if id <= previous {
                return Err(SnapshotError::Unsorted { path, id });
            }
            previous = id;
            let expected = format::shard_of(id, shard_count);
            if expected != index {
                return Err(SnapshotError::Misplaced {
                    path,
                    id,
                    expected,
                    found: index,
                });
            }
        }
        Ok(())
    }

    /// This file's entry in the verified record.
    pub(crate) fn entry(&self, shard_count: u32) -> Entry {
        Entry {
            kind: PayloadKind::Shard,
            shard_count,
            len: self.payload_len() as u64,
            hash: self.content_id(),
        }
    }

    /// Re-hash the payload (the scrub), see [`ScrubFile`].
    pub(crate) fn rehash(&self, chunk: usize, pace: impl FnMut(usize) -> bool) -> Option<bool> {
        let good = self.data.rehash(chunk, pace);
        self.data.release_pages();
        good
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn content_id(&self) -> [u8; 32] {
        self.data.content_id()
    }

    pub(crate) fn products(&self) -> &[ArchivedProduct] {
        self.data.get().products.as_slice()
    }

    /// Size of the payload in bytes.
    pub(crate) fn payload_len(&self) -> usize {
        self.data.payload_bytes().len()
    }
}

/// The mapped dictionaries, or the built-in empty ones (no file) before any was written.
pub(crate) struct DictsFile {
    name: Option<String>,
    data: Validated<ArchivedDictionaries>,
}

impl DictsFile {
    /// Map the dictionaries `dir/name`, validated unless `record` lists their payload.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        record: &VerifiedRecord,
    ) -> Result<Self, SnapshotError> {
        let path = dir.join(name);
        let Some((FileRole::Dictionaries, hex)) = format::parse_file_name(name) else {
            return Err(SnapshotError::Name { path });
        };
        let mut seen = None;
        let (data, trusted) =
            Validated::<ArchivedDictionaries>::open(&path, PayloadKind::Dictionaries, |h| {
                seen = Some(dicts_entry(h.payload_len, h.hash));
                record.trusts(&dicts_entry(h.payload_len, h.hash)).is_some()
            })
            .inspect_err(|_| seen.iter().for_each(|e| record.refused(e)))?;
        if format::short_hex(&data.content_id()) != hex {
            return Err(SnapshotError::NameMismatch { path });
        }
        let file = DictsFile {
            name: Some(name.to_owned()),
            data,
        };
        if !trusted {
            record.checked(file.entry(), 0);
        }
        Ok(file)
    }

    /// This file's entry in the verified record.
    pub(crate) fn entry(&self) -> Entry {
        dicts_entry(self.data.payload_bytes().len() as u64, self.content_id())
    }

    /// Re-hash the payload (the scrub), see [`ScrubFile`].
    pub(crate) fn rehash(&self, chunk: usize, pace: impl FnMut(usize) -> bool) -> Option<bool> {
        let good = self.data.rehash(chunk, pace);
        self.data.release_pages();
        good
    }

    /// Empty dictionaries, held in memory.
    pub(crate) fn empty() -> Result<Self, SnapshotError> {
        let bytes =
            rkyv::to_bytes::<rkyv::rancor::Error>(&Dictionaries::default()).map_err(|e| {
                SnapshotError::Serialize {
                    what: "empty dictionaries",
                    reason: e.to_string(),
                }
            })?;
        Ok(DictsFile {
            name: None,
            data: Validated::from_payload(bytes)?,
        })
    }

    /// The file name, `None` for the built-in empty dictionaries.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub(crate) fn content_id(&self) -> [u8; 32] {
        self.data.content_id()
    }

    pub(crate) fn get(&self) -> &ArchivedDictionaries {
        self.data.get()
    }
}

fn dicts_entry(len: u64, hash: [u8; 32]) -> Entry {
    Entry {
        kind: PayloadKind::Dictionaries,
        shard_count: 0,
        len,
        hash,
    }
}

/// One file of a generation, as the background scrub sees it: re-hashed against the blake3
/// it was opened with.
#[derive(Clone)]
pub(crate) enum ScrubFile {
    Shard(Arc<ShardFile>, u32),
    Dictionaries(Arc<DictsFile>),
}

impl ScrubFile {
    /// The file name.
    pub fn name(&self) -> &str {
        match self {
            ScrubFile::Shard(f, _) => f.name(),
            ScrubFile::Dictionaries(f) => f.name().unwrap_or("(built-in)"),
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> u64 {
        self.entry().len
    }

    /// Its entry in the verified record.
    pub fn entry(&self) -> Entry {
        match self {
            ScrubFile::Shard(f, count) => f.entry(*count),
            ScrubFile::Dictionaries(f) => f.entry(),
        }
    }

    /// Re-hash the payload `chunk` bytes at a time, calling `pace` after each (`false`
    /// stops): `Some(true)` when it still has its blake3, `None` when stopped. The pages read
    /// are released afterwards (the scrub should not grow the resident set).
    pub fn rehash(&self, chunk: usize, pace: impl FnMut(usize) -> bool) -> Option<bool> {
        match self {
            ScrubFile::Shard(f, _) => f.rehash(chunk, pace),
            ScrubFile::Dictionaries(f) => f.rehash(chunk, pace),
        }
    }
}

/// One published generation of the catalog: every shard and the dictionaries, all mapped
/// and validated. Cheap to hold; readers keep the `Arc<Snapshot>` they started with for as
/// long as they need, even after newer generations are published and old files deleted.
pub struct Snapshot {
    generation: u64,
    published: jiff::Timestamp,
    shard_count: u32,
    /// `shard_count` entries; `None` for an empty shard.
    shards: Vec<Option<Arc<ShardFile>>>,
    dicts: Arc<DictsFile>,
    len: usize,
}

impl Snapshot {
    /// Assemble a generation from mapped files, checking that the layout is coherent.
    pub(crate) fn new(
        generation: u64,
        published: jiff::Timestamp,
        shards: Vec<Option<Arc<ShardFile>>>,
        dicts: Arc<DictsFile>,
    ) -> Result<Self, SnapshotError> {
        let shard_count = u32::try_from(shards.len())
            .ok()
            .filter(|n| n.is_power_of_two() && *n <= MAX_SHARDS)
            .ok_or_else(|| {
                SnapshotError::Layout(format!(
                    "{} shards; the count must be a power of two up to {MAX_SHARDS}",
                    shards.len()
                ))
            })?;
        for (i, s) in shards.iter().enumerate() {
            if let Some(s) = s {
                if s.index as usize != i {
                    return Err(SnapshotError::Layout(format!(
                        "{} is shard {} but sits at index {i}",
                        s.name, s.index
                    )));
                }
            }
        }
        let len = shards.iter().flatten().map(|s| s.count).sum();
        Ok(Snapshot {
            generation,
            published,
            shard_count,
            shards,
            dicts,
            len,
        })
    }

    /// The state of a store that was never written: generation 0, no products.
    pub(crate) fn empty() -> Result<Self, SnapshotError> {
        Snapshot::new(
            0,
            jiff::Timestamp::UNIX_EPOCH,
            vec![None],
            Arc::new(DictsFile::empty()?),
        )
    }

    /// The generation number; 0 for a store that was never written.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When this generation was published (the Unix epoch for generation 0).
    pub fn published(&self) -> jiff::Timestamp {
        self.published
    }

    /// The reference dictionaries.
    pub fn dicts(&self) -> &ArchivedDictionaries {
        self.dicts.get()
    }

    /// blake3 of the dictionaries' payload: equal ids mean identical dictionaries.
    pub fn dicts_content_id(&self) -> [u8; 32] {
        self.dicts.content_id()
    }

    /// Number of shards (a power of two), empty ones included.
    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// The shard `id` belongs to in this generation.
    pub fn shard_of(&self, id: ProductId) -> u32 {
        format::shard_of(id, self.shard_count)
    }

    /// Index and content id of each non-empty shard, in index order, from the headers alone:
    /// unlike [`Snapshot::shards`] this touches no mapped page (on a cold start, a page
    /// fault per shard).
    pub fn shard_ids(&self) -> impl Iterator<Item = (u32, [u8; 32])> + '_ {
        self.shards
            .iter()
            .flatten()
            .map(|s| (s.index, s.content_id()))
    }

    /// Non-empty shards in index order.
    pub fn shards(&self) -> impl Iterator<Item = ShardView<'_>> {
        self.shards.iter().flatten().map(|s| view(s))
    }

    /// Shard `index`, `None` when it is empty or out of range.
    pub fn shard(&self, index: u32) -> Option<ShardView<'_>> {
        self.shard_file(index).map(|s| view(s))
    }

    /// Every product: shard by shard, by id within a shard. Not globally sorted by id, and
    /// the order changes when the store reshards.
    pub fn products(&self) -> impl Iterator<Item = &ArchivedProduct> {
        self.shards
            .iter()
            .flatten()
            .flat_map(|s| s.products().iter())
    }

    /// The product with `id`, by binary search in its shard.
    pub fn product(&self, id: ProductId) -> Option<&ArchivedProduct> {
        let shard = self.shards.get(self.shard_of(id) as usize)?.as_ref()?;
        let products = shard.products();
        products
            .binary_search_by_key(&id, |p| p.id.to_native())
            .ok()
            .map(|i| &products[i])
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the catalog holds no products.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped file of shard `index`, `None` when empty or out of range.
    /// Let the kernel drop this process's resident pages of the snapshot's files (after a
    /// full render pass, say); the data stays valid and faults back in on the next access.
    pub fn release_pages(&self) {
        for shard in self.shards.iter().flatten() {
            shard.data.release_pages();
        }
        self.dicts.data.release_pages();
    }

    pub(crate) fn shard_file(&self, index: u32) -> Option<&Arc<ShardFile>> {
        self.shards.get(index as usize)?.as_ref()
    }

    pub(crate) fn dicts_file(&self) -> &Arc<DictsFile> {
        &self.dicts
    }

    /// Every file of this generation with a payload on disk, for the scrub.
    pub(crate) fn scrub_files(&self) -> Vec<ScrubFile> {
        let count = self.shard_count;
        self.shards
            .iter()
            .flatten()
            .map(|s| ScrubFile::Shard(Arc::clone(s), count))
            .chain(
                self.dicts
                    .name()
                    .is_some()
                    .then(|| ScrubFile::Dictionaries(Arc::clone(&self.dicts))),
            )
            .collect()
    }

    /// The verified-record entries of this generation's files.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.scrub_files().into_iter().map(|f| f.entry())
    }

    /// Names of every file this generation maps.
    pub(crate) fn file_names(&self) -> impl Iterator<Item = &str> {
        self.shards
            .iter()
            .flatten()
            .map(|s| s.name())
            .chain(self.dicts.name())
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("published", &self.published)
            .field("shard_count", &self.shard_count)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Product;
    use format::Shard;
    use verified::Trust;

    fn record(dir: &Path) -> VerifiedRecord {
        VerifiedRecord::load(dir, Trust::Recorded)
    }

    fn product(id: ProductId) -> Product {
        let mut p = Product::named(id, "pol", &format!("p{id}"));
        p.normalize().unwrap();
        p
    }

    /// Write a shard file as the store would, returning its name.
    fn write_shard(dir: &Path, index: u32, payload: &[u8]) -> String {
        let id = *blake3::hash(payload).as_bytes();
        let name = format::shard_file_name(index, &id);
        let mut bytes = format::encode_header(PayloadKind::Shard, payload).to_vec();
        bytes.extend_from_slice(payload);
        std::fs::write(dir.join(&name), bytes).unwrap();
        name
    }

    fn archive(ids: &[ProductId]) -> Vec<u8> {
        let shard = Shard {
            products: ids.iter().map(|&id| product(id)).collect(),
        };
        rkyv::to_bytes::<rkyv::rancor::Error>(&shard)
            .unwrap()
            .to_vec()
    }

    /// Ids that all fall into shard `index` of `count`.
    fn ids_in(index: u32, count: u32, n: usize) -> Vec<ProductId> {
        (1..)
            .filter(|&id| format::shard_of(id, count) == index)
            .take(n)
            .collect()
    }

    #[test]
    fn a_valid_shard_opens_and_serves_its_products() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids_in(1, 4, 5);
        let payload = archive(&ids);
        let name = write_shard(dir.path(), 1, &payload);
        let file = Arc::new(ShardFile::open(dir.path(), &name, 1, 4, &record(dir.path())).unwrap());
        assert_eq!(file.content_id(), *blake3::hash(&payload).as_bytes());
        let snap = Snapshot::new(
            4,
            jiff::Timestamp::UNIX_EPOCH,
            vec![None, Some(file), None, None],
            Arc::new(DictsFile::empty().unwrap()),
        )
        .unwrap();
        assert_eq!(snap.len(), 5);
        assert_eq!(snap.shards().map(|s| s.index).collect::<Vec<_>>(), vec![1]);
        for id in &ids {
            assert_eq!(snap.product(*id).unwrap().id.to_native(), *id);
        }
        assert!(snap.product(ids[4] + 1).is_none());
        assert_eq!(snap.file_names().collect::<Vec<_>>(), vec![name.as_str()]);
    }

    #[test]
    fn semantic_problems_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut ids = ids_in(2, 4, 3);

        // Products of another shard.
        let name = write_shard(dir.path(), 2, &archive(&ids_in(3, 4, 2)));
        let err = ShardFile::open(dir.path(), &name, 2, 4, &record(dir.path()))
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                SnapshotError::Misplaced {
                    found: 2,
                    expected: 3,
                    ..
                }
            ),
            "{err}"
        );

        // Out of order.
        ids.swap(0, 1);
        let name = write_shard(dir.path(), 2, &archive(&ids));
        let err = ShardFile::open(dir.path(), &name, 2, 4, &record(dir.path()))
            .err()
            .unwrap();
        assert!(matches!(err, SnapshotError::Unsorted { .. }), "{err}");

        // A file renamed to another shard's slot, or whose content is not what its name says.
        let good = write_shard(dir.path(), 2, &archive(&ids_in(2, 4, 2)));
        let err = ShardFile::open(dir.path(), &good, 1, 4, &record(dir.path()))
            .err()
            .unwrap();
        assert!(matches!(err, SnapshotError::WrongShard { .. }), "{err}");
        let other = format::shard_file_name(2, &[9; 32]);
        std::fs::copy(dir.path().join(&good), dir.path().join(&other)).unwrap();
        let err = ShardFile::open(dir.path(), &other, 2, 4, &record(dir.path()))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("does not match the file name"),
            "{err}"
        );

        // An empty shard has no file.
        let name = write_shard(dir.path(), 0, &archive(&[]));
        let err = ShardFile::open(dir.path(), &name, 0, 4, &record(dir.path()))
            .err()
            .unwrap();
        assert!(matches!(err, SnapshotError::EmptyShard { .. }), "{err}");
    }

    #[test]
    fn a_garbage_payload_with_a_correct_checksum_fails_validation() {
        let dir = tempfile::tempdir().unwrap();
        let mut payload = archive(&ids_in(0, 1, 2));
        // Point the root vector far outside the buffer: only bytecheck can notice.
        let n = payload.len();
        payload[n - 8..n - 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        let name = write_shard(dir.path(), 0, &payload);
        let err = ShardFile::open(dir.path(), &name, 0, 1, &record(dir.path()))
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(matches!(err, SnapshotError::Archive { .. }), "{msg}");
        assert!(msg.contains(&name), "{msg}");
    }

    #[test]
    fn layout_must_be_coherent() {
        let empty = || Arc::new(DictsFile::empty().unwrap());
        let t = jiff::Timestamp::UNIX_EPOCH;
        assert!(Snapshot::new(1, t, vec![None; 3], empty()).is_err());
        assert!(Snapshot::new(1, t, vec![], empty()).is_err());
        assert!(Snapshot::new(1, t, vec![None; 8192], empty()).is_err());
        let s = Snapshot::new(1, t, vec![None; 8], empty()).unwrap();
        assert_eq!((s.shard_count(), s.len()), (8, 0));
        assert_eq!(
            s.dicts_content_id(),
            Snapshot::empty().unwrap().dicts_content_id()
        );
    }

    #[test]
    fn a_recorded_shard_is_mapped_without_reading_its_payload() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids_in(1, 4, 5);
        let name = write_shard(dir.path(), 1, &archive(&ids));
        // Not recorded: checked in full, then recorded.
        let first = record(dir.path());
        let file = ShardFile::open(dir.path(), &name, 1, 4, &first).unwrap();
        let stats = first.stats();
        assert_eq!((stats.trusted, stats.checked), (0, 1));
        assert_eq!(stats.checked_bytes, file.payload_len() as u64);
        first.flush(None).unwrap();

        let again = record(dir.path());
        let file = ShardFile::open(dir.path(), &name, 1, 4, &again).unwrap();
        assert_eq!(
            again.stats(),
            verified::OpenStats {
                trusted: 1,
                checked: 0,
                checked_bytes: 0
            }
        );
        assert_eq!(file.products().len(), 5);
        // Recorded for 4 shards is not recorded for 8 (placement depends on the count).
        let eight = record(dir.path());
        let _ = ShardFile::open(dir.path(), &name, 1, 8, &eight);
        assert_eq!(eight.stats().trusted, 0);

        // Bytes altered after they were recorded: the open trusts the record (that is the
        // point), the scrub's re-hash finds them.
        let path = dir.path().join(&name);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 40] ^= 0xff;
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let file = Arc::new(ShardFile::open(dir.path(), &name, 1, 4, &record(dir.path())).unwrap());
        let scrub = ScrubFile::Shard(file, 4);
        let mut seen = 0;
        assert_eq!(
            scrub.rehash(4096, |n| {
                seen += n;
                true
            }),
            Some(false)
        );
        assert_eq!(seen as u64, scrub.len());
        assert_eq!(
            scrub.rehash(4096, |_| false),
            None,
            "a stopped scrub says nothing"
        );
        // Unrecorded (a check that trusts nothing), the same file is refused.
        let strict = VerifiedRecord::load(dir.path(), Trust::Nothing);
        let err = ShardFile::open(dir.path(), &name, 1, 4, &strict)
            .err()
            .unwrap();
        assert!(matches!(err, SnapshotError::Checksum { .. }), "{err}");

        // A truncated file is refused at open, recorded or not: its size is checked.
        std::fs::write(&path, &bytes[..n - 16]).unwrap();
        let err = ShardFile::open(dir.path(), &name, 1, 4, &record(dir.path()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
