//! Spooled batches: products too many to hold wait in a file and are read back shard by
//! shard while the batch is applied, so applying a batch of any size holds only a few
//! shards' worth of products (plus about 16 bytes per product for the index).
//!
//! A spool file is a sequence of `[u32 length][rkyv archive of one Product]`; it lives in
//! `<store>/spool/`, is deleted when dropped, and every spool left by a crash is removed
//! when the store opens.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rkyv::util::AlignedVec;

use super::StoreError;
use crate::catalog::{Product, ProductId, Record};
use crate::ingest::Target;

/// The spool directory inside a store directory.
pub(crate) const SPOOL_DIR: &str = "spool";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// One product change of a spooled batch, in batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parked {
    /// An upsert whose product waits in the spool at this offset.
    Product { id: ProductId, at: u64 },
    /// A deletion.
    Delete(ProductId),
}

impl Parked {
    /// The product the change is about.
    pub fn id(&self) -> ProductId {
        match self {
            Parked::Product { id, .. } | Parked::Delete(id) => *id,
        }
    }
}

/// A batch on its way to [`super::Store::apply_spooled`]: products parked in a spool (so a
/// batch of any size holds only its index in memory), dictionary records and deletions in
/// order. The [`Target`] of ingest's batch builder for large batches.
#[derive(Debug)]
pub struct SpooledBatch {
    pub spool: Spool,
    pub dicts: Vec<Record>,
    pub changes: Vec<Parked>,
}

impl SpooledBatch {
    pub fn new(spool: Spool) -> SpooledBatch {
        SpooledBatch {
            spool,
            dicts: Vec::new(),
            changes: Vec::new(),
        }
    }
}

impl Target for SpooledBatch {
    type Error = StoreError;
    fn push(&mut self, _line: u64, record: Record) -> Result<(), StoreError> {
        match record {
            Record::Product(p) => self.changes.push(self.spool.park(&p)?),
            Record::DeleteProduct { id } => self.changes.push(Parked::Delete(id)),
            dict => self.dicts.push(dict),
        }
        Ok(())
    }
}

/// A file of parked products, written once and then read at random.
pub struct Spool {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    reader: Option<File>,
    len: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("len", &self.len)
            .finish()
    }
}

impl Spool {
    /// A new, empty spool in `dir` (created if needed).
    pub(crate) fn create(dir: &Path) -> Result<Spool, StoreError> {
        let io = |path: &Path, source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let name = format!(
            "{}-{}-{}.spool",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| io(&path, e))?;
        Ok(Spool {
            path,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            reader: None,
            len: 0,
        })
    }

    /// Remove every spool file in `dir` (left by a crash).
    pub(crate) fn clear(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".spool") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Append `product`; returns where it is.
    pub fn park(&mut self, product: &Product) -> Result<Parked, StoreError> {
        let bytes =
            rkyv::to_bytes::<rkyv::rancor::Error>(product).map_err(|e| StoreError::Serialize {
                what: format!("product {}", product.id),
                source: e,
            })?;
        let Some(w) = self.writer.as_mut() else {
            return Err(self.io(std::io::Error::other("the spool is sealed")));
        };
        let len = u32::try_from(bytes.len())
            .map_err(|_| StoreError::Options(format!("product {} is too large", product.id)))?;
        let at = self.len;
        let result = w
            .write_all(&len.to_le_bytes())
            .and_then(|()| w.write_all(&bytes));
        result.map_err(|e| self.io(e))?;
        self.len += 4 + bytes.len() as u64;
        Ok(Parked::Product { id: product.id, at })
    }

    /// Finish writing; the spool can then be read.
    pub(crate) fn seal(&mut self) -> Result<(), StoreError> {
        if let Some(w) = self.writer.take() {
            let file = w.into_inner().map_err(|e| self.io(e.into_error()))?;
            drop(file);
            self.reader = Some(File::open(&self.path).map_err(|e| self.io(e))?);
        }
        Ok(())
    }

    /// The product parked at `at`.
    pub(crate) fn load(&self, at: u64) -> Result<Product, StoreError> {
        let reader = self
            .reader
            .as_ref()
            .ok_or_else(|| self.io(std::io::Error::other("the spool is not sealed")))?;
        let mut len = [0u8; 4];
        reader.read_exact_at(&mut len, at).map_err(|e| self.io(e))?;
        let len = u32::from_le_bytes(len) as usize;
        let mut buf = AlignedVec::<16>::with_capacity(len);
        buf.resize(len, 0);
        reader
            .read_exact_at(&mut buf, at + 4)
            .map_err(|e| self.io(e))?;
        rkyv::from_bytes::<Product, rkyv::rancor::Error>(&buf).map_err(|e| {
            StoreError::Deserialize {
                what: format!("spooled product at {at}"),
                source: e,
            }
        })
    }

    /// Bytes written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was parked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.path);
    }
}
