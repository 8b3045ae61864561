//! Mapped, validated rkyv payloads. **All of the crate's `unsafe` code lives in this file**:
//! the memory mapping itself and the unchecked access after the one-time validation.
//!
//! The contract that makes it sound:
//! - a snapshot file is immutable once renamed into place: the store writes a temporary file,
//!   fsyncs it and renames it, and never opens a published file for writing or truncates it
//!   (new content always gets a new name: names carry the content's hash);
//! - unlinking a mapped file, or renaming another file over its name, is safe on Linux: the
//!   mapping holds the old inode, whose pages stay valid until the last mapping goes, so
//!   readers holding an old snapshot keep reading what they validated;
//! - a payload is checked once — header, exact length, blake3 of every byte, then rkyv's
//!   bytecheck validation of the whole archive — before any typed access; afterwards it is
//!   read through `access_unchecked`, which is sound because the bytes cannot change;
//! - "once" spans restarts: a payload whose blake3 the verified record (`verified.rs`) lists
//!   as checked by this build, for this kind (and shard count), is mapped after the header
//!   and exact-length checks alone. The record is written only after a full check of those
//!   bytes, and the file's header names the hash its payload had when written; since a
//!   published file is never modified, the payload under that header is the one checked.
//!   Bytes changed on disk behind the program's back (bit rot, another writer) break the
//!   contract exactly as they would after a check at open (the page cache can be refilled
//!   from the disk at any time); the background scrub re-hashes recorded payloads to find
//!   such damage and revokes their entries;
//! - the payload starts 16-byte aligned (mappings are page-aligned and the header is 64
//!   bytes; heap payloads use `AlignedVec<16>`), which covers every archived type's alignment.
//!
//! Another process modifying a published file violates the contract and is not defended
//! against (it would be undefined behaviour for any mmap-based reader).
//!
//! Rendered artifacts (full.xml and other large files served over HTTP) are mapped here too,
//! under the same contract: the artifact store writes them to a temporary file, fsyncs and
//! renames them, never writes a published name again, and only unlinks superseded ones.
//! Their bytes are served as they are, never interpreted, so no validation is needed.

use std::fs::File;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::Path;

use rkyv::api::high::HighValidator;
use rkyv::bytecheck::CheckBytes;
use rkyv::util::AlignedVec;
use rkyv::Portable;

use super::format::{self, PayloadKind, HEADER_LEN, PAYLOAD_ALIGN};
use super::SnapshotError;

enum Backing {
    Map(memmap2::Mmap),
    Heap(AlignedVec<PAYLOAD_ALIGN>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Heap(v) => v,
        }
    }
}

/// A validated archived `T`, backed by a read-only file mapping or (for the built-in empty
/// values) by an aligned heap buffer.
pub(crate) struct Validated<T> {
    backing: Backing,
    payload: Range<usize>,
    content_id: [u8; 32],
    // `fn() -> T`: we hand out `&T` but own no `T`; keeps `Validated` Send + Sync.
    _type: PhantomData<fn() -> T>,
}

impl<T> Validated<T>
where
    T: Portable + for<'a> CheckBytes<HighValidator<'a, rkyv::rancor::Error>>,
{
    /// Map `path` and check the header (magic, version, kind, layout, exact length). Then,
    /// unless `recorded` says the verified record lists the header's payload (see the module
    /// contract), check the blake3 hash of the payload and the archive's structure. Only then
    /// is the value accessible. Returns whether the payload was trusted from the record
    /// (nothing of it was read) rather than checked.
    pub(crate) fn open(
        path: &Path,
        kind: PayloadKind,
        recorded: impl FnOnce(&format::Header) -> bool,
    ) -> Result<(Self, bool), SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER_LEN as u64 {
            // Also keeps us from mapping an empty file, which mmap refuses.
            return Err(SnapshotError::Header {
                path: path.to_path_buf(),
                problem: format::HeaderProblem::TooShort(len as usize),
            });
        }
        // The header is read on its own: the mapping's first fault would read ahead (up to
        // the device's read-ahead, often megabytes) into a payload a recorded file never needs.
        let mut head = [0u8; HEADER_LEN];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).map_err(io)?;
        let header = format::decode_header_of(&head, len, kind).map_err(|problem| {
            SnapshotError::Header {
                path: path.to_path_buf(),
                problem,
            }
        })?;
        // SAFETY: the file is a published snapshot file: immutable once renamed into place,
        // never written, truncated or renamed over while referenced (module contract above),
        // so the mapped bytes cannot change underneath the `&[u8]` and `&T` we hand out.
        // The mapping is read-only; unlinking the file later does not invalidate it.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        if map.len() as u64 != len {
            // Changed between the stat and the mapping: not a published file's behaviour.
            return Err(SnapshotError::Header {
                path: path.to_path_buf(),
                problem: format::HeaderProblem::Length {
                    declared: header.payload_len,
                    actual: (map.len() as u64).saturating_sub(HEADER_LEN as u64),
                },
            });
        }
        // The archive's root sits in its last bytes and every view of the shard reads it:
        // without this, that first fault would read ahead megabytes of payload per file.
        // Only the root's page is advised; a walk over the products keeps its read-ahead.
        let page = 4096;
        let tail = (map.len() - 1) / page * page;
        let _ = map.advise_range(memmap2::Advice::Random, tail, map.len() - tail);
        let payload = HEADER_LEN..map.len();
        if recorded(&header) {
            if (map[HEADER_LEN..].as_ptr() as usize) % PAYLOAD_ALIGN != 0 {
                return Err(SnapshotError::Misaligned {
                    path: path.to_path_buf(),
                });
            }
            // Only the header page was read: the payload stays on disk until served.
            return Ok((
                Validated {
                    backing: Backing::Map(map),
                    payload,
                    content_id: header.hash,
                    _type: PhantomData,
                },
                true,
            ));
        }
        Self::validate(Backing::Map(map), payload, Some(header.hash), path).map(|v| (v, false))
    }

    /// Validate an in-memory payload (used for values that have no file, such as the empty
    /// dictionaries of a store that was never written).
    pub(crate) fn from_payload(bytes: AlignedVec<PAYLOAD_ALIGN>) -> Result<Self, SnapshotError> {
        let payload = 0..bytes.len();
        Self::validate(
            Backing::Heap(bytes),
            payload,
            None,
            Path::new("(in-memory payload)"),
        )
    }

    fn validate(
        backing: Backing,
        payload: Range<usize>,
        expected_hash: Option<[u8; 32]>,
        origin: &Path,
    ) -> Result<Self, SnapshotError> {
        let bytes = &backing.bytes()[payload.clone()];
        let content_id = *blake3::hash(bytes).as_bytes();
        if expected_hash.is_some_and(|h| h != content_id) {
            return Err(SnapshotError::Checksum {
                path: origin.to_path_buf(),
            });
        }
        if (bytes.as_ptr() as usize) % PAYLOAD_ALIGN != 0 {
            return Err(SnapshotError::Misaligned {
                path: origin.to_path_buf(),
            });
        }
        rkyv::access::<T, rkyv::rancor::Error>(bytes).map_err(|e| SnapshotError::Archive {
            path: origin.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Validated {
            backing,
            payload,
            content_id,
            _type: PhantomData,
        })
    }

    /// The archived value, without re-validating.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        // SAFETY: these exact bytes passed rkyv's full bytecheck validation as a `T`: either
        // `validate` ran it before this value was constructed, or (`open` with a recorded
        // payload) a check of this build ran it on the payload whose blake3 the file's header
        // names, and the verified record says so for this kind and layout (module contract:
        // a published file's payload is the one its header was written for). The payload is
        // aligned to PAYLOAD_ALIGN (checked on both paths), and the bytes are immutable for
        // the lifetime of `self`: a heap buffer we own and never mutate, or a mapping of a
        // file that is never modified (module contract above).
        unsafe { rkyv::access_unchecked::<T>(self.payload_bytes()) }
    }
}

impl<T> Validated<T> {
    /// The raw payload bytes.
    pub(crate) fn payload_bytes(&self) -> &[u8] {
        &self.backing.bytes()[self.payload.clone()]
    }

    /// blake3 of the payload.
    pub(crate) fn content_id(&self) -> [u8; 32] {
        self.content_id
    }

    /// Re-hash the payload `chunk` bytes at a time, calling `pace` after each chunk (the
    /// scrub sleeps or stops there; `false` stops). `Some(true)` when the payload still has the
    /// blake3 this value was opened with, `None` when stopped.
    pub(crate) fn rehash(&self, chunk: usize, mut pace: impl FnMut(usize) -> bool) -> Option<bool> {
        let mut hasher = blake3::Hasher::new();
        for part in self.payload_bytes().chunks(chunk.max(4096)) {
            hasher.update(part);
            if !pace(part.len()) {
                return None;
            }
        }
        Some(*hasher.finalize().as_bytes() == self.content_id)
    }

    /// Drop this process's resident pages of a mapped file. Rendering walks every product,
    /// which would otherwise leave the whole snapshot counted in the server's resident set
    /// although serving never reads it. The next access faults the same bytes back in from
    /// the page cache or the file. Errors are ignored: this is only advice.
    pub(crate) fn release_pages(&self) {
        if let Backing::Map(map) = &self.backing {
            // SAFETY: `MADV_DONTNEED` on a read-only, shared mapping of an immutable file
            // discards only this process's page-table entries; later reads fault in the file's
            // unchanged bytes (module contract above), so every `&T` handed out stays valid and
            // sees identical data. It would lose data only on private written pages, and this
            // mapping is never written.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

/// The whole of an immutable file (see the module contract) as shared bytes: slices of it are
/// served without copying, and the mapping goes when the last slice is dropped.
pub(crate) fn map_file(path: &Path) -> std::io::Result<bytes::Bytes> {
    let file = File::open(path)?;
    let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    if len == 0 {
        // An empty mapping is an error on Linux; there is nothing to map.
        return Ok(bytes::Bytes::new());
    }
    // SAFETY: `path` is a published artifact: written once, renamed into place and never
    // opened for writing again (module contract), so the mapped bytes cannot change while
    // this mapping lives; unlinking it later leaves the mapping valid. `len` is the file's
    // (given, so the mapping costs no second fstat).
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(&file) }?;
    // Served front to back, mostly by many clients at once.
    let _ = map.advise(memmap2::Advice::Sequential);
    if len < SENDABLE_MIN_LEN {
        return Ok(bytes::Bytes::from_owner(map));
    }
    match SendableMap::register(map, file) {
        Ok(sendable) => Ok(bytes::Bytes::from_owner(sendable)),
        Err(map) => Ok(bytes::Bytes::from_owner(map)),
    }
}

/// Mapped files at least this long keep their descriptor for sendfile(2): a small file is
/// copied as cheaply as it is looked up, and fragments are many.
const SENDABLE_MIN_LEN: usize = 1 << 20;

/// Descriptors held for sendfile at most: well inside the descriptors the connection budget
/// keeps back (`64 + limit/16`, 128 under a limit of 1024), so they never compete with
/// connections. Files mapped past it are copied from the mapping: correct, a little more CPU.
const SENDABLE_MAX: usize = 64;

/// A mapping of a whole published file, registered with the file it maps: bytes handed to a
/// socket from inside it can be sent by the kernel from the page cache (sendfile) instead of
/// being copied out of the mapping. Same bytes either way: the file is immutable (module
/// contract), and the mapping lives as long as any slice of it.
struct SendableMap {
    map: memmap2::Mmap,
}

struct Registered {
    end: usize,
    file: std::sync::Arc<File>,
}

/// Registered mappings by start address. Addresses are unique while mapped: an entry goes
/// (in `Drop`) before its mapping is unmapped, and only then can the range be mapped again.
static SENDABLE: parking_lot::RwLock<std::collections::BTreeMap<usize, Registered>> =
    parking_lot::RwLock::new(std::collections::BTreeMap::new());

impl SendableMap {
    fn register(map: memmap2::Mmap, file: File) -> Result<SendableMap, memmap2::Mmap> {
        let start = map.as_ptr() as usize;
        let mut registry = SENDABLE.write();
        if registry.len() >= SENDABLE_MAX {
            return Err(map);
        }
        registry.insert(
            start,
            Registered {
                end: start + map.len(),
                file: std::sync::Arc::new(file),
            },
        );
        Ok(SendableMap { map })
    }
}

impl AsRef<[u8]> for SendableMap {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for SendableMap {
    fn drop(&mut self) {
        SENDABLE.write().remove(&(self.map.as_ptr() as usize));
    }
}

/// The file whose bytes `bytes` are and where they start in it, when `bytes` lies inside a
/// mapping registered for sendfile. The caller holds `bytes`, so the mapping (and its entry)
/// outlives the call; sending `bytes.len()` bytes of the file from that offset sends
/// exactly `bytes`.
pub(crate) fn file_behind(bytes: &[u8]) -> Option<(std::sync::Arc<File>, u64)> {
    let addr = bytes.as_ptr() as usize;
    let registry = SENDABLE.read();
    let (start, entry) = registry.range(..=addr).next_back()?;
    (addr.checked_add(bytes.len())? <= entry.end)
        .then(|| (entry.file.clone(), (addr - start) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_mapping_names_its_file_and_offset_until_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let data: Vec<u8> = (0..SENDABLE_MIN_LEN + 5000)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&big, &data).unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, &data[..4096]).unwrap();

        let mapped = map_file(&big).unwrap();
        let slice = mapped.slice(1000..3000);
        let (file, offset) = file_behind(&slice).expect("inside a registered mapping");
        assert_eq!(offset, 1000);
        let mut read = vec![0; slice.len()];
        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut read, offset).unwrap();
        assert_eq!(
            read,
            &slice[..],
            "the file at that offset holds the same bytes"
        );

        let small_map = map_file(&small).unwrap();
        assert!(
            file_behind(&small_map).is_none(),
            "small files keep no descriptor"
        );
        assert!(
            file_behind(&data[..]).is_none(),
            "heap bytes are nobody's file"
        );

        let addr = slice.as_ptr() as usize;
        drop((slice, mapped, file));
        let registry = SENDABLE.read();
        assert!(
            registry
                .range(..=addr)
                .next_back()
                .is_none_or(|(_, e)| e.end <= addr),
            "the entry goes with the mapping"
        );
    }
}
