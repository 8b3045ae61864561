//! A deterministic synthetic catalog in the ERP's JSON Lines format, for demos, tests and
//! load tests.
//!
//! The output is the dictionary records (shops, warehouses, units, categories, producers,
//! series, warranties, size groups, parameters) followed by products `1..=N`. The same
//! `(products, seed)` always gives byte-identical output: all randomness comes from ChaCha8
//! streams keyed by the seed and the product id, and nothing iterates a hash map.
//! Generation streams: memory does not grow with the number of products.

mod dict;
mod product;

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::catalog::Record;
use crate::fsio;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of products (ids `1..=products`).
    pub products: u64,
    /// Seed of every random choice.
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Product records written.
    pub products: u64,
    /// All records written (dictionary entries and products).
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Why generation failed: only writing can fail.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Writing to the caller's writer failed.
    #[error("cannot write the catalog: {0}")]
    Write(#[source] io::Error),
    /// Creating, writing or publishing the output file failed.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The file name [`generate`] writes in its output directory.
pub const CATALOG_FILE: &str = "catalog.jsonl";

/// Counts the bytes that pass through to the inner writer.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_record(out: &mut impl Write, record: &Record) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

/// Write the catalog for `opts` to `w`, one record per line.
pub fn generate_to(
    w: &mut impl Write,
    opts: &GenerateOptions,
) -> Result<GenerateSummary, GenerateError> {
    let dict = dict::Dictionary::new();
    let synth = product::Synth::new(&dict, opts.seed, opts.products);
    let mut counting = Counting { inner: w, bytes: 0 };
    let mut out = BufWriter::with_capacity(256 * 1024, &mut counting);
    let mut records = 0u64;
    for record in &dict.records {
        write_record(&mut out, record).map_err(GenerateError::Write)?;
        records += 1;
    }
    for id in 1..=opts.products {
        let record = Record::Product(Box::new(synth.product(id)));
        write_record(&mut out, &record).map_err(GenerateError::Write)?;
        records += 1;
    }
    out.flush().map_err(GenerateError::Write)?;
    drop(out);
    Ok(GenerateSummary {
        products: opts.products,
        records,
        bytes: counting.bytes,
    })
}

/// Write the catalog for `opts` to `out_dir/catalog.jsonl`, creating the directory. The file
/// appears atomically: it is written to a temporary name, fsynced and renamed, so a reader
/// never sees half a catalog.
pub fn generate(opts: &GenerateOptions, out_dir: &Path) -> Result<GenerateSummary, GenerateError> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::File { path, source }
    };
    fs::create_dir_all(out_dir).map_err(file_err(out_dir))?;
    let target = out_dir.join(CATALOG_FILE);
    // Dropped on an error, the temporary file is removed.
    let mut file = fsio::create(&target).map_err(file_err(&target))?;
    let summary = match generate_to(&mut file, opts) {
        Err(GenerateError::Write(source)) => return Err(file_err(&target)(source)),
        other => other?,
    };
    file.commit_and_sync_dir().map_err(file_err(&target))?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
