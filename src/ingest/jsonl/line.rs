//! Parsing one line: the `"kind"` dispatch (one pass when it comes first, buffered when it
//! does not) and errors that name the field in JSON-path style.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalog::{
    Category, Parameter, Producer, Product, ProductId, Record, Series, Shop, SizeGroup, Unit,
    Warehouse, Warranty,
};
/// Why a line's JSON was not accepted: the field (JSON-path style) when there is one.
#[derive(Debug)]
pub struct BadLine {
    pub field: Option<String>,
    pub reason: String,
}

/// The record kinds, as written in `"kind"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
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

pub(super) const KINDS: [(&str, Kind); 11] = [
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

pub(super) fn kind_list() -> String {
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
pub(super) fn parse_record(text: &str) -> Result<Record, BadLine> {
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
pub(in crate::ingest) fn bad_line(err: serde_path_to_error::Error<serde_json::Error>) -> BadLine {
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
pub(in crate::ingest) fn json_reason(e: &serde_json::Error) -> String {
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
