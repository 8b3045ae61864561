//! The ERP's JSON Lines format: one [`Record`] per line, tagged by `"kind"`.
//!
//! Parsing is streaming: [`JsonlReader`] holds one line at a time (at most
//! [`MAX_LINE_BYTES`]), so memory does not grow with the input. Errors name the field in
//! JSON-path style. When `"kind"` is the first key (as every serializer of [`Record`] writes
//! it) a line is parsed in one pass straight into the typed record; otherwise the object is
//! buffered as a JSON value first, which is slower but accepts keys in any order.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::iter::FusedIterator;
use std::path::Path;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::batch::{BatchBuilder, BatchError, Target};
use super::{IngestError, LineError, Rejection};
use crate::catalog::{
    Category, Parameter, Producer, Product, ProductId, Record, Series, Shop, SizeGroup, Unit,
    Warehouse, Warranty,
};

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
        Rejection {
            source: self.source.clone(),
            line: self.line,
            field,
            reason: reason.into(),
        }
    }

    /// Parse the line in the buffer; `None` for a blank line.
    fn parse_buffered(&self) -> Option<Result<ParsedLine<T>, Rejection>> {
        let mut bytes = self.buf.as_slice();
        let mut offset = 0;
        if self.line == 1 && bytes.starts_with(BOM) {
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
                return Some(Err(self.reject(
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
            Err(BadLine { field, reason }) => return Some(Err(self.reject(field, reason))),
        };
        Some(match record.normalize_line() {
            Ok(()) => Ok(ParsedLine {
                line: self.line,
                record,
            }),
            Err(e) => Err(self.reject(Some(e.field), e.reason)),
        })
    }
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
                RawLine::TooLong(n) => {
                    let reason = format!(
                        "the line is {n} bytes long; the limit is {} bytes",
                        self.max_line_bytes
                    );
                    return Some(Err(LineError::Rejected(self.reject(None, reason))));
                }
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
pub fn read_jsonl(source: &str, reader: impl BufRead) -> Result<ParsedBatch, IngestError> {
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

// ---------------------------------------------------------------------------------------
// Parsing one line.

/// Why a line's JSON was not accepted: the field (JSON-path style) when there is one.
#[derive(Debug)]
pub struct BadLine {
    pub field: Option<String>,
    pub reason: String,
}

/// The record kinds, as written in `"kind"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Product,
    DeleteProduct,
    Shop,
    Category,
    Producer,
    Unit,
    Series,
    Warranty,
    Warehouse,
    SizeGroup,
    Parameter,
}

const KINDS: [(&str, Kind); 11] = [
    ("product", Kind::Product),
    ("delete_product", Kind::DeleteProduct),
    ("shop", Kind::Shop),
    ("category", Kind::Category),
    ("producer", Kind::Producer),
    ("unit", Kind::Unit),
    ("series", Kind::Series),
    ("warranty", Kind::Warranty),
    ("warehouse", Kind::Warehouse),
    ("size_group", Kind::SizeGroup),
    ("parameter", Kind::Parameter),
];

fn kind_list() -> String {
    KINDS.map(|(name, _)| name).join(", ")
}

/// Deserializes the value of `"kind"`, with a message that lists the valid kinds.
struct KindSeed;

impl<'de> DeserializeSeed<'de> for KindSeed {
    type Value = Kind;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KindSeed {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a record kind, one of: {}", kind_list())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        KINDS
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                E::custom(format!(
                    "unknown kind {v:?}; expected one of: {}",
                    kind_list()
                ))
            })
    }
}

/// The body of a `delete_product` record.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    id: ProductId,
}

/// Deserialize the fields of a record (everything but `"kind"`) from `d`.
fn record_body<'de, D: de::Deserializer<'de>>(kind: Kind, d: D) -> Result<Record, D::Error> {
    Ok(match kind {
        Kind::Product => Record::Product(Box::new(Product::deserialize(d)?)),
        Kind::DeleteProduct => Record::DeleteProduct {
            id: DeleteBody::deserialize(d)?.id,
        },
        Kind::Shop => Record::Shop(Shop::deserialize(d)?),
        Kind::Category => Record::Category(Category::deserialize(d)?),
        Kind::Producer => Record::Producer(Producer::deserialize(d)?),
        Kind::Unit => Record::Unit(Unit::deserialize(d)?),
        Kind::Series => Record::Series(Series::deserialize(d)?),
        Kind::Warranty => Record::Warranty(Warranty::deserialize(d)?),
        Kind::Warehouse => Record::Warehouse(Warehouse::deserialize(d)?),
        Kind::SizeGroup => Record::SizeGroup(SizeGroup::deserialize(d)?),
        Kind::Parameter => Record::Parameter(Parameter::deserialize(d)?),
    })
}

/// The first key of the object: `"kind"`, or another one (kept for the buffered path).
enum FirstKey {
    Kind,
    Other(String),
}

impl<'de> Deserialize<'de> for FirstKey {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FirstKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FirstKey, E> {
                Ok(if v == "kind" {
                    FirstKey::Kind
                } else {
                    FirstKey::Other(v.to_owned())
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// The outcome of the single pass over a line.
// Lives for one line and is unpacked at once: boxing the record would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Head {
    /// `"kind"` came first: the record is complete.
    Done(Record),
    /// Another key came first: the whole object, to be parsed again from the value.
    Buffered(Map<String, Value>),
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(HeadVisitor)
    }
}

struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (one record per line)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        match map.next_key::<FirstKey>()? {
            Some(FirstKey::Kind) => {
                let kind = map.next_value_seed(KindSeed)?;
                // The rest of the object is the record's own fields: hand the same map
                // access on, so paths in errors stay relative to the line.
                record_body(kind, MapAccessDeserializer::new(map)).map(Head::Done)
            }
            Some(FirstKey::Other(first)) => {
                let mut object = Map::new();
                object.insert(first, map.next_value()?);
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    if object.contains_key(&key) {
                        return Err(de::Error::custom(format!("duplicate field `{key}`")));
                    }
                    object.insert(key, value);
                }
                Ok(Head::Buffered(object))
            }
            None => Ok(Head::Buffered(Map::new())),
        }
    }
}

/// Parse one line of text into a record (not yet normalized).
fn parse_record(text: &str) -> Result<Record, BadLine> {
    let mut de = serde_json::Deserializer::from_str(text);
    let head = serde_path_to_error::deserialize::<_, Head>(&mut de).map_err(bad_line)?;
    de.end().map_err(|e| BadLine {
        field: None,
        reason: format!(
            "unexpected characters after the JSON object at column {}; put one record per line",
            e.column()
        ),
    })?;
    match head {
        Head::Done(record) => Ok(record),
        Head::Buffered(mut object) => {
            let Some(kind) = object.remove("kind") else {
                return Err(BadLine {
                    field: Some("kind".into()),
                    reason: format!(
                        "missing; every line needs \"kind\", one of: {}",
                        kind_list()
                    ),
                });
            };
            let kind = KindSeed.deserialize(kind).map_err(|e| BadLine {
                field: Some("kind".into()),
                reason: json_reason(&e),
            })?;
            let mut track = serde_path_to_error::Track::new();
            let de = serde_path_to_error::Deserializer::new(Value::Object(object), &mut track);
            record_body(kind, de)
                .map_err(|e| bad_line(serde_path_to_error::Error::new(track.path(), e)))
        }
    }
}

/// Turn a deserialization error into a rejection's field and reason.
pub(super) fn bad_line(err: serde_path_to_error::Error<serde_json::Error>) -> BadLine {
    let path = err.path().to_string();
    let mut field = (path != ".").then_some(path);
    let inner = err.into_inner();
    let mut reason = json_reason(&inner);
    // serde reports a missing or unknown field at its parent; name the field itself.
    let named = |prefix: &str, reason: &str| -> Option<(String, String)> {
        let rest = reason.strip_prefix(prefix)?;
        let end = rest.find('`')?;
        Some((rest[..end].to_owned(), rest[end + 1..].to_owned()))
    };
    if let Some((name, _)) = named("missing field `", &reason) {
        field = Some(match field {
            Some(parent) => format!("{parent}.{name}"),
            None => name,
        });
        reason = "missing (required)".into();
    } else if let Some((name, tail)) = named("unknown field `", &reason) {
        field = Some(unknown_field_path(field, &name));
        let expected = tail.trim_start_matches(", ");
        reason = if expected.is_empty() {
            "unknown field".into()
        } else {
            format!("unknown field; {expected}")
        };
    }
    BadLine { field, reason }
}

/// The path of an unknown field: serde_path_to_error has usually recorded the key already
/// (the direct path); when parsing from a buffered value it stops at the parent.
fn unknown_field_path(path: Option<String>, name: &str) -> String {
    match path {
        None => name.to_owned(),
        Some(p) if p == name || p.ends_with(&format!(".{name}")) => p,
        Some(p) => format!("{p}.{name}"),
    }
}

/// A serde_json error as a reason: data errors without the position (the field says where),
/// syntax errors with the column.
pub(super) fn json_reason(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);
    match e.classify() {
        serde_json::error::Category::Syntax => {
            format!("invalid JSON at column {}: {message}", e.column())
        }
        serde_json::error::Category::Eof => {
            "invalid JSON: the line ends before the object is complete".into()
        }
        serde_json::error::Category::Data | serde_json::error::Category::Io => message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Decimal, ProductType, WarrantyType};
    use std::io::{Cursor, Read};
    use std::str::FromStr;

    fn read(input: &[u8]) -> ParsedBatch {
        read_jsonl("catalog.jsonl", Cursor::new(input.to_vec())).expect("in-memory read")
    }

    fn one_rejection(input: &str) -> Rejection {
        let batch = read(input.as_bytes());
        assert!(batch.records.is_empty(), "accepted: {:?}", batch.records);
        assert_eq!(batch.rejected.len(), 1, "{:?}", batch.rejected);
        batch.rejected.into_iter().next().expect("one rejection")
    }

    fn product(batch: &ParsedBatch, i: usize) -> &Product {
        match &batch.records[i].record {
            Record::Product(p) => p,
            other => panic!("not a product: {other:?}"),
        }
    }

    const MINIMAL: &str =
        r#"{"kind":"product","id":17,"vat":23,"description":{"name":{"pol":"Kubek"}}}"#;

    #[test]
    fn a_minimal_product_is_normalized_to_one_size() {
        let batch = read(MINIMAL.as_bytes());
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        assert_eq!(batch.records[0].line, 1);
        let p = product(&batch, 0);
        assert_eq!(p.id, 17);
        assert_eq!(p.sizes.len(), 1);
        assert_eq!(p.sizes[0].id, "uniw");
        assert_eq!(p.sizes[0].code, "17-uniw");
    }

    #[test]
    fn decimals_are_exact_as_numbers_and_as_strings() {
        let line = r#"{"kind":"product","id":1,"vat":"8","description":{"name":{"pol":"Mąka"}},"prices":{"retail":{"net":12.30,"gross":"13.28"}},"stock":[{"warehouse":1,"quantity":12.345678901234567890}]}"#;
        let batch = read(line.as_bytes());
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        let p = product(&batch, 0);
        let retail = p.prices.retail.as_ref().expect("retail price");
        assert_eq!(retail.net.to_string(), "12.30");
        assert_eq!(retail.gross.to_string(), "13.28");
        assert_eq!(p.vat, Decimal::from(8));
        assert_eq!(
            p.sizes[0].stock[0].quantity,
            Decimal::from_str("12.345678901234567890").expect("literal")
        );
    }

    #[test]
    fn kind_may_come_anywhere_in_the_object() {
        let first = read(MINIMAL.as_bytes());
        let last =
            read(br#"{"id":17,"vat":23,"description":{"name":{"pol":"Kubek"}},"kind":"product"}"#);
        assert!(last.rejected.is_empty(), "{:?}", last.rejected);
        assert_eq!(first.records, last.records);
    }

    const DEEP: &str = r#""sizes":[{"id":"S","code":"1-S"},{"id":"M","code":"1-M"},{"id":"L","code":"1-L","stock":[{"warehouse":1,"quantity":true}]}]"#;

    #[test]
    fn a_wrong_type_deep_inside_names_the_path() {
        for line in [
            format!(
                r#"{{"kind":"product","id":1,"vat":23,"description":{{"name":{{"pol":"x"}}}},{DEEP}}}"#
            ),
            format!(
                r#"{{"id":1,"vat":23,"description":{{"name":{{"pol":"x"}}}},{DEEP},"kind":"product"}}"#
            ),
        ] {
            let r = one_rejection(&line);
            assert_eq!(
                r.field.as_deref(),
                Some("sizes[2].stock[0].quantity"),
                "{r}"
            );
            assert!(r.reason.starts_with("invalid type: boolean `true`"), "{r}");
            assert!(!r.reason.contains("line 1"), "position leaks into {r}");
        }
    }

    #[test]
    fn validation_errors_carry_their_field_and_display_as_file_line_field_reason() {
        let input = format!(
            "{MINIMAL}\n\n{}\n",
            r#"{"kind":"product","id":2,"vat":23,"description":{"name":{"pol":"x"}},"sizes":[{"id":"S","code":"2 S"}]}"#
        );
        let batch = read(input.as_bytes());
        assert_eq!(batch.records.len(), 1);
        let r = &batch.rejected[0];
        assert_eq!(r.line, 3, "the blank line still counts");
        assert_eq!(r.field.as_deref(), Some("sizes[0].code"));
        assert_eq!(
            r.to_string(),
            "catalog.jsonl:3: sizes[0].code: a size code is letters, digits, '-', '_', '.' or ':' with no spaces"
        );
    }

    #[test]
    fn display_omits_a_missing_field() {
        let r = Rejection {
            source: "a.jsonl".into(),
            line: 4,
            field: None,
            reason: "bad".into(),
        };
        assert_eq!(r.to_string(), "a.jsonl:4: bad");
    }

    #[test]
    fn blank_lines_crlf_and_a_leading_bom_are_accepted() {
        let input = format!(
            "\u{feff}{MINIMAL}\r\n   \r\n\t\n\r\n{}\r\n",
            r#"{"kind":"delete_product","id":5}"#
        );
        let batch = read(input.as_bytes());
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.records[1].line, 5);
        assert_eq!(batch.records[1].record, Record::DeleteProduct { id: 5 });
    }

    #[test]
    fn a_bom_after_the_first_line_is_an_error() {
        let input = format!("{MINIMAL}\n\u{feff}{MINIMAL}");
        let batch = read(input.as_bytes());
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.rejected[0].line, 2);
        assert!(batch.rejected[0]
            .reason
            .starts_with("invalid JSON at column 1"));
    }

    #[test]
    fn invalid_utf8_rejects_the_line_and_reading_goes_on() {
        let mut input = br#"{"kind":"producer","id":1,"name":"Kowalsk"#.to_vec();
        input.extend_from_slice(b"\xff\xfe\"}\n");
        input.extend_from_slice(br#"{"kind":"producer","id":2,"name":"Nowak"}"#);
        let batch = read(&input);
        assert_eq!(batch.rejected.len(), 1);
        let r = &batch.rejected[0];
        assert_eq!((r.line, r.field.as_deref()), (1, None));
        assert_eq!(
            r.reason,
            "invalid UTF-8 at byte 42 of the line; the input must be UTF-8"
        );
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.records[0].line, 2);
    }

    #[test]
    fn a_line_over_the_limit_is_rejected_and_the_next_one_read() {
        let long = format!(
            r#"{{"kind":"producer","id":1,"name":"{}"}}"#,
            "a".repeat(MINIMAL.len())
        );
        let input = format!("{long}\n{MINIMAL}\n");
        let items: Vec<_> = JsonlReader::new("x", Cursor::new(input))
            .with_max_line_bytes(MINIMAL.len())
            .collect();
        assert_eq!(items.len(), 2);
        match &items[0] {
            Err(LineError::Rejected(r)) => {
                assert_eq!(r.line, 1);
                assert_eq!(
                    r.reason,
                    format!(
                        "the line is {} bytes long; the limit is {} bytes",
                        long.len(),
                        MINIMAL.len()
                    )
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&items[1], Ok(p) if p.line == 2));
    }

    #[test]
    fn a_line_over_16_mib_is_skipped_without_being_held() {
        let huge = (MAX_LINE_BYTES as u64) + 10;
        let input = io::repeat(b' ')
            .take(huge)
            .chain(Cursor::new(format!("\n{MINIMAL}")));
        let mut reader = JsonlReader::new("big.jsonl", BufReader::new(input));
        match reader.next() {
            Some(Err(LineError::Rejected(r))) => {
                assert_eq!(
                    r.reason,
                    format!("the line is {huge} bytes long; the limit is {MAX_LINE_BYTES} bytes")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            reader.buf.capacity() <= MAX_LINE_BYTES,
            "{}",
            reader.buf.capacity()
        );
        assert!(matches!(reader.next(), Some(Ok(p)) if p.line == 2));
        assert!(reader.buf.capacity() <= RETAINED_LINE_CAPACITY);
        assert!(reader.next().is_none());
    }

    #[test]
    fn missing_and_unknown_kinds_list_the_valid_ones() {
        for line in [r#"{"id":1,"name":"x"}"#, "{}"] {
            let r = one_rejection(line);
            assert_eq!(r.field.as_deref(), Some("kind"));
            assert!(r.reason.starts_with("missing;"), "{r}");
            assert!(r.reason.contains("product, delete_product, shop"), "{r}");
        }
        for line in [
            r#"{"kind":"prodcut","id":1}"#,
            r#"{"id":1,"kind":"prodcut"}"#,
        ] {
            let r = one_rejection(line);
            assert_eq!(r.field.as_deref(), Some("kind"));
            assert_eq!(
                r.reason,
                format!("unknown kind \"prodcut\"; expected one of: {}", kind_list())
            );
        }
        let r = one_rejection(r#"{"kind":7}"#);
        assert_eq!(r.field.as_deref(), Some("kind"));
        assert!(
            r.reason
                .starts_with("invalid type: integer `7`, expected a record kind, one of: product"),
            "{r}"
        );
    }

    #[test]
    fn a_duplicate_product_rejects_the_later_line() {
        let other =
            r#"{"kind":"product","id":18,"vat":23,"description":{"name":{"pol":"Talerz"}}}"#;
        let input = format!("{other}\n\n{MINIMAL}\n{MINIMAL}\n{other}\n");
        let batch = read(input.as_bytes());
        assert_eq!(batch.records.len(), 2);
        let reasons: Vec<String> = batch.rejected.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                "catalog.jsonl:4: id: duplicate of product 17 on line 3",
                "catalog.jsonl:5: id: duplicate of product 18 on line 1",
            ]
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        for line in [
            r#"{"kind":"product","id":1,"vat":23,"description":{"name":{"pol":"x"}},"sizes":[{"id":"S","code":"1-S","colour":"red"}]}"#,
            r#"{"id":1,"vat":23,"description":{"name":{"pol":"x"}},"sizes":[{"id":"S","code":"1-S","colour":"red"}],"kind":"product"}"#,
        ] {
            let r = one_rejection(line);
            assert_eq!(r.field.as_deref(), Some("sizes[0].colour"));
            assert!(
                r.reason
                    .starts_with("unknown field; expected one of `id`, `code`"),
                "{r}"
            );
        }
        let r = one_rejection(r#"{"id":1,"name":"x","kind":"producer","extra":1}"#);
        assert_eq!(r.field.as_deref(), Some("extra"));

        let r = one_rejection(
            r#"{"kind":"product","id":1,"vat":23,"description":{"name":{"pol":"x"}},"sizes":[{"id":"S"}]}"#,
        );
        assert_eq!(
            (r.field.as_deref(), r.reason.as_str()),
            (Some("sizes[0].code"), "missing (required)")
        );

        for line in [
            r#"{"kind":"producer","id":1}"#,
            r#"{"id":1,"kind":"producer"}"#,
        ] {
            let r = one_rejection(line);
            assert_eq!(
                (r.field.as_deref(), r.reason.as_str()),
                (Some("name"), "missing (required)")
            );
        }
    }

    #[test]
    fn duplicate_keys_are_rejected_on_both_paths() {
        let r = one_rejection(r#"{"kind":"producer","id":1,"id":2,"name":"x"}"#);
        assert!(r.reason.contains("duplicate field `id`"), "{r}");
        let r = one_rejection(r#"{"id":1,"id":2,"name":"x","kind":"producer"}"#);
        assert!(r.reason.contains("duplicate field `id`"), "{r}");
    }

    #[test]
    fn syntax_errors_and_non_objects_are_explained() {
        let r = one_rejection(r#"{"kind":"producer","id":1,"name":"x"} {}"#);
        assert_eq!(r.field, None);
        assert_eq!(
            r.reason,
            "unexpected characters after the JSON object at column 39; put one record per line"
        );
        let r = one_rejection(r#"{"kind":"producer","id":1,"#);
        assert_eq!(
            r.reason,
            "invalid JSON: the line ends before the object is complete"
        );
        let r = one_rejection(r#"{"kind":"producer" "id":1}"#);
        assert_eq!(r.reason, "invalid JSON at column 20: expected `,` or `}`");
        let r = one_rejection("[1, 2]");
        assert_eq!(r.field, None);
        assert!(
            r.reason
                .contains("expected a JSON object (one record per line)"),
            "{r}"
        );
    }

    #[test]
    fn normalization_rules_apply_to_every_kind() {
        let r = one_rejection(r#"{"kind":"delete_product","id":0}"#);
        assert_eq!(r.field.as_deref(), Some("id"));
        let r = one_rejection(r#"{"kind":"category","id":3,"name":{"Polski":"Buty"}}"#);
        assert_eq!(r.field.as_deref(), Some("name.Polski"));
    }

    #[test]
    fn every_record_kind_round_trips() {
        let names = |s: &str| [("pol".to_string(), s.to_string())].into();
        let records = vec![
            Record::Warranty(Warranty {
                id: 1,
                kind: WarrantyType::Seller,
                period_months: 12,
                name: names("Gwarancja"),
                description: Default::default(),
            }),
            Record::Parameter(Parameter {
                id: 2,
                kind: crate::catalog::ParameterKind::Section,
                name: names("Wymiary"),
                description: Default::default(),
                priority: 1,
                context: None,
                distinction: false,
                group_distinction: false,
                hide: false,
                auction_template_hide: false,
                values: vec![],
            }),
            Record::Producer(Producer {
                id: 3,
                name: "Nowak & Syn".into(),
            }),
            Record::Unit(Unit {
                id: 4,
                name: names("kg"),
                precision: 3,
            }),
            Record::Series(Series {
                id: 5,
                name: names("Klasyk"),
            }),
            Record::Warehouse(Warehouse {
                id: 0,
                name: names("Zewnętrzny"),
            }),
            Record::Category(Category {
                id: 6,
                parent: Some(1),
                name: names("Buty"),
            }),
            Record::SizeGroup(SizeGroup {
                id: 7,
                name: "Obuwie".into(),
                sizes: vec![],
            }),
            Record::DeleteProduct { id: 8 },
        ];
        let mut input = String::new();
        for r in &records {
            input.push_str(&serde_json::to_string(r).expect("serialize"));
            input.push('\n');
        }
        let batch = read(input.as_bytes());
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        let back: Vec<Record> = batch.records.into_iter().map(|p| p.record).collect();
        assert_eq!(back, records);
    }

    #[test]
    fn product_type_is_read_from_type() {
        let batch = read(
            br#"{"kind":"product","id":3,"type":"service","vat":23,"description":{"name":{"pol":"Monta\u017c"}}}"#,
        );
        assert_eq!(product(&batch, 0).kind, ProductType::Service);
        assert_eq!(product(&batch, 0).description.name["pol"], "Montaż");
    }

    /// Yields its bytes, then fails.
    struct Failing(Cursor<Vec<u8>>);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("disk on fire")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn an_io_error_is_fatal_and_ends_the_stream() {
        let input = format!("{MINIMAL}\n{{\"kind\":");
        let mut reader = JsonlReader::new(
            "x.jsonl",
            BufReader::new(Failing(Cursor::new(input.into_bytes()))),
        );
        assert!(matches!(reader.next(), Some(Ok(_))));
        match reader.next() {
            Some(Err(LineError::Fatal(e))) => {
                assert_eq!(e.to_string(), "x.jsonl: cannot read: disk on fire")
            }
            other => panic!("{other:?}"),
        }
        assert!(reader.next().is_none());
        let err = read_jsonl("x.jsonl", BufReader::new(Failing(Cursor::new(vec![])))).unwrap_err();
        assert!(matches!(err, IngestError::Io { .. }));
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope.jsonl");
        let err = read_jsonl_file(&path).unwrap_err();
        let IngestError::Io { source_name, .. } = &err;
        assert_eq!(source_name, &path.display().to_string());
        std::fs::write(&path, format!("{MINIMAL}\nnot json\n")).expect("write");
        let batch = read_jsonl_file(&path).expect("read");
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.rejected[0].source, path.display().to_string());
    }

    /// The committed schema must be what the model generates. Regenerate it with
    /// `IOFD_BLESS=1 cargo test --lib record_schema`.
    #[test]
    fn committed_record_schema_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/erp-record.schema.json");
        let fresh = record_schema_json();
        if std::env::var_os("IOFD_BLESS").is_some() {
            std::fs::write(&path, &fresh).expect("write schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "fixtures/erp-record.schema.json is out of date with the model; regenerate it with \
             `IOFD_BLESS=1 cargo test --lib record_schema` and commit the result"
        );
        assert!(fresh.contains("\"$schema\": \"https://json-schema.org/draft/2020-12/schema\""));
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// Every example line in the integrator documentation is accepted as written.
    #[test]
    fn the_documented_examples_are_accepted() {
        let doc = include_str!("../../docs/erp-format.md");
        let mut examples = String::new();
        let mut inside = false;
        for line in doc.lines() {
            match line.trim() {
                "```json" => inside = true,
                "```" => inside = false,
                l if inside => {
                    examples.push_str(l);
                    examples.push('\n');
                }
                _ => {}
            }
        }
        let batch = read_jsonl("erp-format.md", examples.as_bytes()).expect("in memory");
        assert!(batch.rejected.is_empty(), "{:#?}", batch.rejected);
        assert!(batch.records.len() >= 13, "{}", batch.records.len());
        let kinds: std::collections::BTreeSet<&str> = batch
            .records
            .iter()
            .map(|r| match &r.record {
                Record::Product(_) => "product",
                Record::DeleteProduct { .. } => "delete_product",
                Record::Shop(_) => "shop",
                Record::Category(_) => "category",
                Record::Producer(_) => "producer",
                Record::Unit(_) => "unit",
                Record::Series(_) => "series",
                Record::Warranty(_) => "warranty",
                Record::Warehouse(_) => "warehouse",
                Record::SizeGroup(_) => "size_group",
                Record::Parameter(_) => "parameter",
            })
            .collect();
        assert_eq!(kinds.len(), KINDS.len(), "one example per kind: {kinds:?}");
    }

    /// The documented message for a wrong type deep inside is the real one.
    #[test]
    fn the_documented_deep_error_is_real() {
        let doc = include_str!("../../docs/erp-format.md");
        let line = r#"{"kind":"product","id":1,"vat":23,"description":{"name":{"pol":"x"}},"sizes":[{"id":"a","code":"a"},{"id":"b","code":"b"},{"id":"c","code":"c","stock":[{"warehouse":1,"quantity":true}]}]}"#;
        let batch = read_jsonl("catalog.jsonl", line.as_bytes()).expect("in memory");
        let shown = batch.rejected[0].to_string();
        let documented = shown.replace("catalog.jsonl:1:", "catalog.jsonl:17:");
        assert!(doc.contains(&documented), "docs do not show: {documented}");
    }
}
