//! The verified record (`VERIFIED` in the store directory): which snapshot payloads, by
//! blake3, passed the full check (hash of every byte, rkyv validation, shard placement) in a
//! build of this version. A file whose header names a recorded hash, and whose size is exact,
//! is mapped without reading its payload; everything else is checked in full and recorded.
//! A restart therefore reads headers, not the catalog; the background scrub
//! (`store::scrub`) re-hashes the payloads over time and revokes what no longer matches.
//!
//! The file is text, appended to: a first line naming the build, then one line per entry,
//! `+` (checked and good) or `-` (revoked: found damaged), each ending with a checksum of the
//! line so that a torn or garbled line is ignored rather than trusted. The last line about an
//! entry wins. Losing a `+` line (a crash before it reached the disk) costs one check at the
//! next open, so additions are appended without an fsync; revocations are fsynced.
//! [`VerifiedRecord::flush`] rewrites the file (through `fsio`, atomically) with only the live entries
//! once it holds many more lines than those.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::format::{layout_tag, PayloadKind, FORMAT_VERSION};

/// File name of the record inside a store directory.
pub const RECORD: &str = "VERIFIED";

/// One checked payload: what it is, how long, its blake3. A shard's entry includes the shard
/// count it was checked for (placement depends on it); the dictionaries' count is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub kind: PayloadKind,
    pub shard_count: u32,
    pub len: u64,
    pub hash: [u8; 32],
}

impl Entry {
    /// The line for this entry; `products` is the shard's product count (0 for the
    /// dictionaries), kept so that a trusted open need not read the archive's root either.
    fn line(&self, sign: char, products: u64) -> String {
        let kind = match self.kind {
            PayloadKind::Shard => 's',
            PayloadKind::Dictionaries => 'd',
        };
        let body = format!(
            "{sign} {kind} {} {} {} {products}",
            self.shard_count,
            self.len,
            hex::encode(self.hash)
        );
        let check = &blake3::hash(body.as_bytes()).to_hex()[..8];
        format!("{body} {check}\n")
    }

    fn parse(line: &str) -> Option<(bool, Entry, u64)> {
        let (body, check) = line.rsplit_once(' ')?;
        if blake3::hash(body.as_bytes()).to_hex()[..8] != *check {
            return None;
        }
        let mut parts = body.split(' ');
        let good = match parts.next()? {
            "+" => true,
            "-" => false,
            _ => return None,
        };
        let kind = match parts.next()? {
            "s" => PayloadKind::Shard,
            "d" => PayloadKind::Dictionaries,
            _ => return None,
        };
        let shard_count = parts.next()?.parse().ok()?;
        let len = parts.next()?.parse().ok()?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(parts.next()?, &mut hash).ok()?;
        let products = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some((
            good,
            Entry {
                kind,
                shard_count,
                len,
                hash,
            },
            products,
        ))
    }
}

/// The first line: entries are only trusted by the build (version, format, layout) that
/// checked them; another build's record is ignored and rewritten.
fn first_line() -> String {
    format!(
        "iofd-verified 2 {} format={FORMAT_VERSION} layout={:08x}\n",
        env!("CARGO_PKG_VERSION"),
        layout_tag()
    )
}

/// What opening files against a record cost: how many were trusted from the record and how
/// many (and how many payload bytes) were checked in full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenStats {
    pub trusted: u64,
    pub checked: u64,
    pub checked_bytes: u64,
}

/// Whether entries are trusted when files are opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// A server's open: a recorded payload is mapped without being read.
    Recorded,
    /// `iofd verify`: every file is checked in full (and recorded or revoked).
    Nothing,
}

struct Inner {
    trust: Trust,
    /// Each good entry with its product count.
    known: HashMap<Entry, u64>,
    /// Lines the file holds (compaction is due when they far outnumber the live entries).
    lines: usize,
    /// Lines to append at the next flush.
    pending: String,
    /// The file must be written afresh (missing, another build's, or a torn last line).
    rewrite: bool,
    /// A revocation is pending: the flush fsyncs.
    revoked: bool,
    stats: OpenStats,
}

/// The record of one store directory, shared by the opens of a generation's files.
pub struct VerifiedRecord {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for VerifiedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedRecord")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl VerifiedRecord {
    /// Read `dir/VERIFIED`. A missing, unreadable or foreign record holds nothing (every file
    /// is then checked in full): the record only ever saves work, it never decides validity.
    pub fn load(dir: &Path, trust: Trust) -> VerifiedRecord {
        let path = dir.join(RECORD);
        let mut inner = Inner {
            trust,
            known: HashMap::new(),
            lines: 0,
            pending: String::new(),
            rewrite: true,
            revoked: false,
            stats: OpenStats::default(),
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let mut lines = text.split_inclusive('\n');
                if lines.next() == Some(first_line().as_str()) {
                    inner.rewrite = !text.ends_with('\n');
                    for line in lines {
                        inner.lines += 1;
                        match line.strip_suffix('\n').and_then(Entry::parse) {
                            Some((true, e, products)) => {
                                inner.known.insert(e, products);
                            }
                            Some((false, e, _)) => {
                                inner.known.remove(&e);
                            }
                            None => {
                                tracing::warn!(path = %path.display(), "a damaged line of the verified record is ignored")
                            }
                        }
                    }
                } else {
                    tracing::info!(path = %path.display(), "the verified record is another build's: every snapshot file is checked once");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the verified record: every snapshot file is checked");
            }
        }
        VerifiedRecord {
            path,
            inner: Mutex::new(inner),
        }
    }

    /// Trust nothing from now on (a store falling back from a damaged generation checks the
    /// fallback in full); what is checked is still recorded.
    pub fn distrust(&self) {
        self.inner.lock().trust = Trust::Nothing;
    }

    /// The recorded product count when `entry` may be mapped without being checked.
    pub(crate) fn trusts(&self, entry: &Entry) -> Option<u64> {
        let mut inner = self.inner.lock();
        let trusted = match inner.trust {
            Trust::Recorded => inner.known.get(entry).copied(),
            Trust::Nothing => None,
        };
        if trusted.is_some() {
            inner.stats.trusted += 1;
        }
        trusted
    }

    /// `entry` (of `products` products) was checked in full and is good.
    pub(crate) fn checked(&self, entry: Entry, products: u64) {
        let mut inner = self.inner.lock();
        inner.stats.checked += 1;
        inner.stats.checked_bytes += entry.len;
        if inner.known.insert(entry, products) != Some(products) {
            inner.pending.push_str(&entry.line('+', products));
        }
    }

    /// `entry` failed a check (or the scrub): never trust it again.
    pub fn revoke(&self, entry: Entry) {
        let mut inner = self.inner.lock();
        inner.known.remove(&entry);
        inner.pending.push_str(&entry.line('-', 0));
        inner.revoked = true;
    }

    /// A file whose header named `entry` failed its check: revoked if it was recorded.
    pub(crate) fn refused(&self, entry: &Entry) {
        if self.contains(entry) {
            self.revoke(*entry);
        }
    }

    /// True when `entry` is recorded as good.
    pub fn contains(&self, entry: &Entry) -> bool {
        self.inner.lock().known.contains_key(entry)
    }

    /// What the opens against this record cost so far.
    pub fn stats(&self) -> OpenStats {
        self.inner.lock().stats
    }

    /// Write what changed. With `live` (the entries of every file the store keeps), a record
    /// holding far more lines than that is rewritten with only them.
    pub fn flush(&self, live: Option<&HashSet<Entry>>) -> std::io::Result<()> {
        let mut inner = self.inner.lock();
        let compact = live.is_some_and(|l| inner.lines > 2 * l.len() + 64);
        if inner.rewrite || compact {
            if let Some(live) = live {
                inner.known.retain(|e, _| live.contains(e));
            }
            let mut text = first_line();
            for (e, products) in &inner.known {
                text.push_str(&e.line('+', *products));
            }
            crate::fsio::write(&self.path, text.as_bytes())?;
            inner.lines = inner.known.len();
        } else if !inner.pending.is_empty() {
            let sync = inner.revoked;
            crate::fsio::append(&self.path, inner.pending.as_bytes(), sync)?;
            inner.lines += inner.pending.matches('\n').count();
        }
        inner.pending.clear();
        inner.rewrite = false;
        inner.revoked = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(b: u8) -> Entry {
        Entry {
            kind: PayloadKind::Shard,
            shard_count: 4,
            len: 100 + u64::from(b),
            hash: [b; 32],
        }
    }

    #[test]
    fn entries_survive_a_reload_and_revocations_win() {
        let dir = tempfile::tempdir().unwrap();
        let r = VerifiedRecord::load(dir.path(), Trust::Recorded);
        r.checked(entry(1), 1);
        r.checked(entry(2), 2);
        r.flush(None).unwrap();
        r.revoke(entry(2));
        r.checked(entry(3), 3);
        r.flush(None).unwrap();
        let r = VerifiedRecord::load(dir.path(), Trust::Recorded);
        assert!(r.trusts(&entry(1)).is_some() && r.trusts(&entry(3)) == Some(3));
        assert!(r.trusts(&entry(2)).is_none());
        // Another shard count, length or kind is another entry.
        let mut other = entry(1);
        other.shard_count = 8;
        assert!(r.trusts(&other).is_none());
        assert_eq!(r.stats().trusted, 2);
        // `iofd verify` trusts nothing, but keeps what it finds.
        let v = VerifiedRecord::load(dir.path(), Trust::Nothing);
        assert!(v.trusts(&entry(1)).is_none() && v.contains(&entry(1)));
    }

    #[test]
    fn torn_foreign_and_compacted_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECORD);
        let r = VerifiedRecord::load(dir.path(), Trust::Recorded);
        r.checked(entry(1), 1);
        r.flush(None).unwrap();
        // A torn append: the partial line is ignored, the file rewritten at the next flush.
        let torn = entry(2).line('+', 2);
        crate::fsio::append(&path, &torn.as_bytes()[..20], false).unwrap();
        let r = VerifiedRecord::load(dir.path(), Trust::Recorded);
        assert!(r.trusts(&entry(1)).is_some() && r.trusts(&entry(2)).is_none());
        r.flush(None).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().ends_with('\n'));
        // A garbled line (its checksum disagrees) is not trusted.
        let garbled = entry(3).line('+', 3).replace(" 103 ", " 104 ");
        crate::fsio::append(&path, garbled.as_bytes(), false).unwrap();
        assert!(!VerifiedRecord::load(dir.path(), Trust::Recorded).contains(&entry(3)));
        // Another build's record holds nothing.
        std::fs::write(
            &path,
            format!("iofd-verified 1 0.0.0 x\n{}", entry(1).line('+', 1)),
        )
        .unwrap();
        assert!(!VerifiedRecord::load(dir.path(), Trust::Recorded).contains(&entry(1)));
        // Many lines, few live entries: rewritten with the live ones.
        let r = VerifiedRecord::load(dir.path(), Trust::Recorded);
        for b in 0..100 {
            r.checked(entry(b), u64::from(b));
        }
        r.flush(None).unwrap();
        let live: HashSet<Entry> = [entry(7)].into();
        r.flush(Some(&live)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(VerifiedRecord::load(dir.path(), Trust::Recorded).contains(&entry(7)));
    }
}
