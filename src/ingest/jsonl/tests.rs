//! The JSON Lines reader end to end: lines, limits, rejections and every record kind.

use super::line::kind_list;
use super::*;
use crate::catalog::{
    Category, Parameter, Producer, Product, Series, SizeGroup, Unit, Warehouse, Warranty,
};
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
    let other = r#"{"kind":"product","id":18,"vat":23,"description":{"name":{"pol":"Talerz"}}}"#;
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

/// What a reader yields, as comparable text: the line and record, or the rejection.
fn outcomes(items: impl IntoIterator<Item = Result<ParsedLine, LineError>>) -> Vec<String> {
    items
        .into_iter()
        .map(|item| match item {
            Ok(p) => format!("{} {:?}", p.line, p.record),
            Err(LineError::Rejected(r)) => format!("rejected {r:?}"),
            Err(LineError::Fatal(e)) => format!("fatal {e}"),
        })
        .collect()
}

#[test]
fn lines_parsed_many_at_once_give_what_one_at_a_time_gives_in_order() {
    let long = format!(
        r#"{{"kind":"producer","id":1,"name":"{}"}}"#,
        "a".repeat(MINIMAL.len())
    );
    let mut input = b"\xEF\xBB\xBF".to_vec();
    for i in 0..300 {
        let line = match i % 6 {
            0 => MINIMAL.to_string(),
            1 => String::new(),
            2 => long.clone(),
            3 => r#"{"kind":"producer","id":"x"}"#.to_string(),
            4 => format!(r#"{{"kind":"producer","id":{i},"name":"P{i}"}}"#),
            _ => "  \r".to_string(),
        };
        input.extend_from_slice(line.as_bytes());
        input.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
    }
    input.extend_from_slice(b"{\"kind\":\"producer\",\"id\":9,\"name\":\"\xFF\"}");
    let one_by_one = outcomes(
        JsonlReader::new("x", Cursor::new(input.clone())).with_max_line_bytes(MINIMAL.len() + 10),
    );
    for n in [1, 7, 64, 5000] {
        let mut reader = JsonlReader::new("x", Cursor::new(input.clone()))
            .with_max_line_bytes(MINIMAL.len() + 10);
        let mut many = Vec::new();
        loop {
            let items = reader.next_many(n);
            if items.is_empty() {
                break;
            }
            many.extend(items);
        }
        assert_eq!(outcomes(many), one_by_one, "{n} at a time");
    }
    assert!(one_by_one.iter().any(|o| o.contains("UTF-8")));
    assert!(one_by_one.iter().any(|o| o.contains("bytes long")));
}
