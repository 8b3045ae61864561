//! The hash store: one immutable file per shard content (`s{content}.nh`) holding its
//! products' own-data node hashes, and one per dictionaries content (`d{content}.nh`) holding
//! the entry hashes. Content-addressed like the snapshot's shards, so a shard that did not
//! change is never hashed or compared again.
//!
//! ```text
//! magic "IOFDNH01" | kind (1 = shard, 2 = dictionaries) | payload | blake3(payload)[..16]
//! ```
//!
//! Files are written (temp file, rename) without waiting for the disk: they only restate
//! snapshot content. [`HashFiles::sync`] makes them durable before a checkpoint names them;
//! those named only by later log frames are verified on open and recomputed from the store.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::hash::{self, DictHashes, ProductHashes};
use crate::fsio;

const MAGIC: &[u8; 8] = b"IOFDNH01";
const SHARD: u8 = 1;
const DICTS: u8 = 2;

/// A content id, shortened to 128 bits for names and the log.
pub type Cid = [u8; 16];

/// The short form of a snapshot content id.
pub fn cid(content_id: &[u8; 32]) -> Cid {
    let mut out = [0u8; 16];
    out.copy_from_slice(&content_id[..16]);
    out
}

/// A content id in lowercase hex, as names and the checkpoint spell it.
pub fn hex(cid: &Cid) -> String {
    hex::encode(cid)
}

/// A content id as [`hex`] wrote it (exactly 32 hex digits).
pub fn unhex(s: &str) -> Option<Cid> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// A hash file that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum HashFileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: damaged hash file", path.display())]
    Damaged { path: PathBuf },
}

/// The directory of hash files.
#[derive(Debug)]
pub struct HashFiles {
    dir: PathBuf,
}

impl HashFiles {
    pub fn open(dir: &Path) -> Result<Self, HashFileError> {
        fs::create_dir_all(dir).map_err(|source| HashFileError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(HashFiles {
            dir: dir.to_path_buf(),
        })
    }

    fn shard_name(cid: &Cid) -> String {
        format!("s{}.nh", hex(cid))
    }

    fn dicts_name(cid: &Cid) -> String {
        format!("d{}.nh", hex(cid))
    }

    fn io(&self, name: &str, source: io::Error) -> HashFileError {
        HashFileError::Io {
            path: self.dir.join(name),
            source,
        }
    }

    /// Write a file unless it exists (same name, same content); not yet durable (see
    /// [`HashFiles::sync`]). Returns the bytes written.
    fn put(&self, name: &str, kind: u8, payload: &[u8]) -> Result<u64, HashFileError> {
        let path = self.dir.join(name);
        if path.exists() {
            return Ok(0);
        }
        let checksum = blake3::hash(payload);
        let result = (|| {
            let mut f = fsio::create(&path)?;
            f.write_all(MAGIC)?;
            f.write_all(&[kind])?;
            f.write_all(payload)?;
            f.write_all(&checksum.as_bytes()[..16])?;
            f.persist()
        })();
        if let Err(e) = result {
            return Err(self.io(name, e));
        }
        Ok((MAGIC.len() + 1 + payload.len() + 16) as u64)
    }

    fn get(&self, name: &str, kind: u8) -> Result<Vec<u8>, HashFileError> {
        let path = self.dir.join(name);
        let bytes = fs::read(&path).map_err(|e| self.io(name, e))?;
        let damaged = || HashFileError::Damaged { path: path.clone() };
        let body = bytes
            .strip_prefix(&MAGIC[..])
            .and_then(|b| b.strip_prefix(&[kind][..]))
            .ok_or_else(damaged)?;
        if body.len() < 16 {
            return Err(damaged());
        }
        let (payload, sum) = body.split_at(body.len() - 16);
        if &blake3::hash(payload).as_bytes()[..16] != sum {
            return Err(damaged());
        }
        Ok(payload.to_vec())
    }

    /// Store a shard's hashes.
    pub fn put_shard(&self, cid: &Cid, products: &[ProductHashes]) -> Result<u64, HashFileError> {
        let name = Self::shard_name(cid);
        if self.dir.join(&name).exists() {
            return Ok(0);
        }
        let mut payload = Vec::with_capacity(products.len() * 256);
        hash::encode_products(products, &mut payload);
        self.put(&name, SHARD, &payload)
    }

    /// Is a shard's file present?
    pub fn has_shard(&self, cid: &Cid) -> bool {
        self.dir.join(Self::shard_name(cid)).exists()
    }

    /// The names in the directory, read once: an open checks a million products' thousand
    /// shards against it instead of looking each file up (a cold inode read apiece).
    pub fn names(&self) -> HashSet<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return HashSet::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// Whether `names` (from [`HashFiles::names`]) holds a shard's file.
    pub fn lists_shard(names: &HashSet<String>, cid: &Cid) -> bool {
        names.contains(&Self::shard_name(cid))
    }

    /// Read a shard's hashes back.
    pub fn shard(&self, cid: &Cid) -> Result<Vec<ProductHashes>, HashFileError> {
        let name = Self::shard_name(cid);
        let payload = self.get(&name, SHARD)?;
        hash::decode_products(&payload).ok_or(HashFileError::Damaged {
            path: self.dir.join(name),
        })
    }

    /// Store dictionary entry hashes.
    pub fn put_dicts(&self, cid: &Cid, d: &DictHashes) -> Result<u64, HashFileError> {
        let name = Self::dicts_name(cid);
        if self.dir.join(&name).exists() {
            return Ok(0);
        }
        let mut payload = Vec::new();
        d.encode(&mut payload);
        self.put(&name, DICTS, &payload)
    }

    /// Read dictionary entry hashes back.
    pub fn dicts(&self, cid: &Cid) -> Result<DictHashes, HashFileError> {
        let name = Self::dicts_name(cid);
        let payload = self.get(&name, DICTS)?;
        DictHashes::decode(&payload).ok_or(HashFileError::Damaged {
            path: self.dir.join(name),
        })
    }

    /// Make the files of these shards and dictionaries durable (several at once: the device
    /// sees one deep queue), then their names.
    pub fn sync(&self, shards: &[Cid], dicts: &[Cid]) -> Result<(), HashFileError> {
        let names: Vec<String> = shards
            .iter()
            .map(Self::shard_name)
            .chain(dicts.iter().map(Self::dicts_name))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let paths: Vec<PathBuf> = names.iter().map(|n| self.dir.join(n)).collect();
        // A file removed since (its shard left) needs no sync.
        fsio::Disk::PLAIN
            .sync_files(&paths, true)
            .and_then(|()| fsio::sync_dir(&self.dir))
            .map_err(|source| HashFileError::Io {
                path: self.dir.clone(),
                source,
            })
    }

    /// Remove every file but those of `shards` and `dicts` (and leftovers of crashed writes).
    pub fn retain(&self, shards: &HashSet<Cid>, dicts: &Cid) -> usize {
        self.retain_among(&self.names(), shards, dicts)
    }

    /// [`HashFiles::retain`] over `names`, the directory as [`HashFiles::names`] read it.
    pub fn retain_among(
        &self,
        names: &HashSet<String>,
        shards: &HashSet<Cid>,
        dicts: &Cid,
    ) -> usize {
        let keep: HashSet<String> = shards
            .iter()
            .map(Self::shard_name)
            .chain([Self::dicts_name(dicts)])
            .collect();
        let mut removed = 0;
        for name in names.iter().filter(|n| !keep.contains(*n)) {
            if fs::remove_file(self.dir.join(name)).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Remove one shard's file (its content left the current generation).
    pub fn remove_shard(&self, cid: &Cid) {
        let _ = fs::remove_file(self.dir.join(Self::shard_name(cid)));
    }

    /// Forget dictionary entry hashes.
    pub fn remove_dicts(&self, cid: &Cid) {
        let _ = fs::remove_file(self.dir.join(Self::dicts_name(cid)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let files = HashFiles::open(dir.path()).unwrap();
        let cid = [7u8; 16];
        let products = vec![ProductHashes {
            id: 5,
            membership: Default::default(),
            refs: Default::default(),
            own: [[1; 16]; hash::NODES],
        }];
        assert!(files.put_shard(&cid, &products).unwrap() > 0);
        assert_eq!(files.put_shard(&cid, &products).unwrap(), 0, "written once");
        assert_eq!(files.shard(&cid).unwrap(), products);
        let path = dir.path().join(HashFiles::shard_name(&cid));
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 20] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            files.shard(&cid),
            Err(HashFileError::Damaged { .. })
        ));
        assert!(files.shard(&[8; 16]).is_err());

        files.put_dicts(&[1; 16], &DictHashes::default()).unwrap();
        assert_eq!(files.dicts(&[1; 16]).unwrap(), DictHashes::default());
        assert_eq!(files.retain(&HashSet::new(), &[1; 16]), 1);
        assert!(files.dicts(&[1; 16]).is_ok());
    }

    #[test]
    fn hex_round_trips() {
        let c = [0xab; 16];
        assert_eq!(unhex(&hex(&c)), Some(c));
        assert_eq!(unhex("zz"), None);
    }
}
