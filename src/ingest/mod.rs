//! Ingest: the ERP's input turned into validated catalog records, with errors that name the
//! source, the line and the field.
//!
//! A bad line never stops a batch: it becomes a [`Rejection`] and reading goes on. Only a
//! failure to read the input at all (an I/O error) is fatal, as an [`IngestError`].

mod array;
pub mod batch;
pub mod iof;
mod jsonl;
mod update;

use std::fmt;
use std::io;

pub use array::ArrayLines;
pub use batch::{BatchBuilder, BatchError, Target};
pub use jsonl::{
    read_jsonl, read_jsonl_file, record_schema, record_schema_json, BadLine, JsonlReader,
    LineRecord, ParsedBatch, ParsedLine, MAX_LINE_BYTES,
};
pub use update::{PriceInput, PriceUpdate, StockUpdate, Update};

/// One input line that was not accepted, and why.
///
/// Displayed as `catalog.jsonl:17: sizes[0].code: a size code is ...`; the field part is left
/// out when the problem is not about one field (bad JSON syntax, invalid UTF-8, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Where the line came from: a file name as given, or a label such as `http`.
    pub source: String,
    /// 1-based line number.
    pub line: u64,
    /// The offending field in JSON-path style (`sizes[2].stock[0].quantity`), when there is one.
    pub field: Option<String>,
    /// What is wrong, for a person to read.
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 is "the whole input": a file-level problem has no line to name.
        if self.line == 0 {
            write!(f, "{}: ", self.source)?;
        } else {
            write!(f, "{}:{}: ", self.source, self.line)?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Rejection {}

/// A failure that stops reading: the input itself could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Opening or reading the input failed.
    #[error("{source_name}: cannot read: {source}")]
    Io {
        /// The input's name, as in [`Rejection::source`].
        source_name: String,
        #[source]
        source: io::Error,
    },
}

/// What a streaming reader yields instead of a record: a rejected line (reading continues) or
/// a fatal error (the reader yields nothing more).
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error(transparent)]
    Rejected(Rejection),
    #[error(transparent)]
    Fatal(IngestError),
}
