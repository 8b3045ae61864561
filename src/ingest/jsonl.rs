//! The ERP's JSON Lines format: one [`Record`] per line, tagged by `"kind"`.
//!
//! Parsing is streaming: [`JsonlReader`] holds one line at a time (at most
//! [`MAX_LINE_BYTES`]), so memory does not grow with the input. Errors name the field in
//! JSON-path style. When `"kind"` is the first key (as every serializer of [`Record`] writes
//! it) a line is parsed in one pass straight into the typed record; otherwise the object is
//! buffered as a JSON value first, which is slower but accepts keys in any order.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::iter::FusedIterator;
use std::path::Path;

mod line;

use line::parse_record;
pub use line::BadLine;
pub(super) use line::{bad_line, json_reason};

use super::batch::{BatchBuilder, BatchError, Target};
use super::{IngestError, LineError, Rejection};
use crate::catalog::Record;

/// The longest line accepted, in bytes (16 MiB). A longer line is rejected without being
/// held in memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Capacity kept for the line buffer between lines; a rare huge line does not pin its
/// memory for the rest of the input.
const RETAINED_LINE_CAPACITY: usize = 256 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One accepted line: the record, already normalized ([`Record::normalize`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine<T = Record> {
    /// 1-based line number.
    pub line: u64,
    pub record: T,
}

/// A type one JSON Lines line holds: how it is parsed and then checked.
pub trait LineRecord: Sized {
    /// Parse one line of text (not blank, without its newline).
    fn parse_line(text: &str) -> Result<Self, BadLine>;
    /// Bring the parsed value into store form and check it.
    fn normalize_line(&mut self) -> Result<(), crate::catalog::FieldError>;
}

impl LineRecord for Record {
    fn parse_line(text: &str) -> Result<Self, BadLine> {
        parse_record(text)
    }

    fn normalize_line(&mut self) -> Result<(), crate::catalog::FieldError> {
        self.normalize()
    }
}

/// A whole input read: the accepted records in input order and the rejected lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedBatch {
    pub records: Vec<ParsedLine>,
    pub rejected: Vec<Rejection>,
}

/// Streaming JSON Lines reader: yields each non-blank line as a normalized record or a
/// [`Rejection`]; an I/O error is yielded once as [`LineError::Fatal`] and ends the stream.
///
/// It does not detect duplicate product ids (that needs memory proportional to the input);
/// [`read_jsonl`] does.
pub struct JsonlReader<R: BufRead, T = Record> {
    source: String,
    reader: R,
    buf: Vec<u8>,
    line: u64,
    max_line_bytes: usize,
    done: bool,
    _record: std::marker::PhantomData<fn() -> T>,
}

/// What one physical line turned out to be before parsing.
enum RawLine {
    /// The line's bytes are in the buffer (without the newline).
    Complete,
    /// The line was longer than the limit; its bytes were skipped, this many in all.
    TooLong(u64),
}

impl<R: BufRead> JsonlReader<R> {
    /// A reader of [`Record`]s from `reader`; `source` names it in rejections (a file name,
    /// `http`, ...).
    pub fn new(source: impl Into<String>, reader: R) -> Self {
        Self::of(source, reader)
    }
}

impl<R: BufRead, T: LineRecord> JsonlReader<R, T> {
    /// A reader of any [`LineRecord`] type (records, partial updates).
    pub fn of(source: impl Into<String>, reader: R) -> Self {
        Self {
            source: source.into(),
            reader,
            buf: Vec::new(),
            line: 0,
            max_line_bytes: MAX_LINE_BYTES,
            done: false,
            _record: std::marker::PhantomData,
        }
    }

    /// The number of the last line read (1-based; 0 before the first).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Change the longest accepted line (default [`MAX_LINE_BYTES`]).
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.max_line_bytes = max;
        self
    }

    /// The name rejections carry.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Read the next physical line into `self.buf`; `None` at end of input.
    fn read_line(&mut self) -> io::Result<Option<RawLine>> {
        self.buf.clear();
        if self.buf.capacity() > RETAINED_LINE_CAPACITY {
            self.buf.shrink_to(RETAINED_LINE_CAPACITY);
        }
        let mut seen_any = false;
        let mut too_long: Option<u64> = None;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(match (seen_any, too_long) {
                    (false, _) => None,
                    (true, Some(n)) => Some(RawLine::TooLong(n)),
                    (true, None) => Some(RawLine::Complete),
                });
            }
            seen_any = true;
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            match &mut too_long {
                Some(n) => *n += chunk.len() as u64,
                None if self.buf.len() + chunk.len() > self.max_line_bytes => {
                    // Stop keeping the line: count the rest and drop it as it streams past.
                    too_long = Some((self.buf.len() + chunk.len()) as u64);
                    self.buf.clear();
                }
                None => self.buf.extend_from_slice(chunk),
            }
            let used = chunk.len() + usize::from(newline.is_some());
            self.reader.consume(used);
            if newline.is_some() {
                return Ok(Some(too_long.map_or(RawLine::Complete, RawLine::TooLong)));
            }
        }
    }

    fn reject(&self, field: Option<String>, reason: impl Into<String>) -> Rejection {
        rejection(&self.source, self.line, field, reason)
    }

    fn too_long(&self, n: u64) -> Rejection {
        let limit = self.max_line_bytes;
        self.reject(
            None,
            format!("the line is {n} bytes long; the limit is {limit} bytes"),
        )
    }

    /// Parse the line in the buffer; `None` for a blank line.
    fn parse_buffered(&self) -> Option<Result<ParsedLine<T>, Rejection>> {
        parse_raw(&self.source, self.line, &self.buf)
    }

    /// The next results, up to `n` lines' worth, in input order: the lines are read here and
    /// parsed on every core (parsing is most of an import's time). A read error ends the
    /// list and the input.
    pub fn next_many(&mut self, n: usize) -> Vec<Result<ParsedLine<T>, LineError>>
    where
        T: Send,
    {
        let mut parsed = Vec::new();
        // Blank lines give nothing: read on until something is parsed or the input ends, so
        // an empty list means the end.
        while parsed.is_empty() && !self.done {
            parsed = self.parse_many(n);
        }
        parsed
    }

    fn parse_many(&mut self, n: usize) -> Vec<Result<ParsedLine<T>, LineError>>
    where
        T: Send,
    {
        use rayon::prelude::*;
        enum Raw {
            Line(u64, Vec<u8>),
            Failed(LineError),
        }
        let mut raw = Vec::with_capacity(n);
        while raw.len() < n.max(1) && !self.done {
            match self.read_line() {
                Ok(None) => self.done = true,
                Err(source) => {
                    self.done = true;
                    raw.push(Raw::Failed(LineError::Fatal(IngestError::Io {
                        source_name: self.source.clone(),
                        source,
                    })));
                }
                Ok(Some(line)) => {
                    self.line += 1;
                    raw.push(match line {
                        RawLine::TooLong(n) => Raw::Failed(LineError::Rejected(self.too_long(n))),
                        RawLine::Complete => Raw::Line(self.line, std::mem::take(&mut self.buf)),
                    });
                }
            }
        }
        let source = self.source.as_str();
        raw.into_par_iter()
            .filter_map(|r| match r {
                Raw::Line(line, bytes) => {
                    parse_raw(source, line, &bytes).map(|r| r.map_err(LineError::Rejected))
                }
                Raw::Failed(e) => Some(Err(e)),
            })
            .collect()
    }
}

fn rejection(
    source: &str,
    line: u64,
    field: Option<String>,
    reason: impl Into<String>,
) -> Rejection {
    Rejection {
        source: source.to_string(),
        line,
        field,
        reason: reason.into(),
    }
}

/// Parse line number `line` of `source` from its bytes (without the newline); `None` for a
/// blank line.
fn parse_raw<T: LineRecord>(
    source: &str,
    line: u64,
    buf: &[u8],
) -> Option<Result<ParsedLine<T>, Rejection>> {
    let mut bytes = buf;
    let mut offset = 0;
    if line == 1 && bytes.starts_with(BOM) {
        bytes = &bytes[BOM.len()..];
        offset = BOM.len();
    }
    if let Some(stripped) = bytes.strip_suffix(b"\r") {
        bytes = stripped;
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Some(Err(rejection(
                source,
                line,
                None,
                format!(
                    "invalid UTF-8 at byte {} of the line; the input must be UTF-8",
                    offset + e.valid_up_to() + 1
                ),
            )))
        }
    };
    let mut record = match T::parse_line(text) {
        Ok(r) => r,
        Err(BadLine { field, reason }) => return Some(Err(rejection(source, line, field, reason))),
    };
    Some(match record.normalize_line() {
        Ok(()) => Ok(ParsedLine { line, record }),
        Err(e) => Err(rejection(source, line, Some(e.field), e.reason)),
    })
}

impl<R: BufRead, T: LineRecord> Iterator for JsonlReader<R, T> {
    type Item = Result<ParsedLine<T>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let raw = match self.read_line() {
                Ok(Some(raw)) => raw,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(LineError::Fatal(IngestError::Io {
                        source_name: self.source.clone(),
                        source,
                    })));
                }
            };
            self.line += 1;
            match raw {
                RawLine::TooLong(n) => return Some(Err(LineError::Rejected(self.too_long(n)))),
                RawLine::Complete => {
                    if let Some(result) = self.parse_buffered() {
                        return Some(result.map_err(LineError::Rejected));
                    }
                }
            }
        }
        None
    }
}

impl<R: BufRead, T: LineRecord> FusedIterator for JsonlReader<R, T> {}

/// Read a whole JSON Lines input. Bad lines are collected in [`ParsedBatch::rejected`];
/// a product id seen earlier in the same input rejects the later line. Fails only when the
/// input cannot be read.
pub fn read_jsonl(source: &str, reader: impl BufRead + Send) -> Result<ParsedBatch, IngestError> {
    struct Lines(Vec<ParsedLine>);
    impl Target for Lines {
        type Error = std::convert::Infallible;
        fn push(&mut self, line: u64, record: Record) -> Result<(), Self::Error> {
            self.0.push(ParsedLine { line, record });
            Ok(())
        }
    }
    let mut builder = BatchBuilder::new(Lines(Vec::new()));
    let mut rejected = Vec::new();
    match builder.add_jsonl(source, reader, &mut |r| rejected.push(r)) {
        Ok(()) => {}
        Err(BatchError::Read(e)) => return Err(e),
        Err(BatchError::Target(never)) => match never {},
    }
    Ok(ParsedBatch {
        records: builder.into_target().0,
        rejected,
    })
}

/// [`read_jsonl`] on a file; rejections name the file as `path` was given.
pub fn read_jsonl_file(path: &Path) -> Result<ParsedBatch, IngestError> {
    let source = path.display().to_string();
    let file = File::open(path).map_err(|e| IngestError::Io {
        source_name: source.clone(),
        source: e,
    })?;
    read_jsonl(&source, BufReader::with_capacity(256 * 1024, file))
}

/// The JSON Schema (draft 2020-12) of one input line, generated from the model.
pub fn record_schema() -> schemars::Schema {
    schemars::schema_for!(Record)
}

/// [`record_schema`] as pretty-printed JSON with a final newline: the content of the
/// committed `fixtures/erp-record.schema.json`.
pub fn record_schema_json() -> String {
    // Serializing a `Value`-backed schema cannot fail; an empty object is never what we ship.
    let mut s = serde_json::to_string_pretty(&record_schema()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod doc_tests;
#[cfg(test)]
mod tests;
