//! The examples of the integrator documentation, checked against the reader.

use super::line::KINDS;
use super::*;

/// Every example line in the integrator documentation is accepted as written.
#[test]
fn the_documented_examples_are_accepted() {
    let doc = include_str!("../../../docs/erp-format.md");
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
    let doc = include_str!("../../../docs/erp-format.md");
    let line = r#"{"kind":"product","id":1,"vat":23,"description":{"name":{"pol":"x"}},"sizes":[{"id":"a","code":"a"},{"id":"b","code":"b"},{"id":"c","code":"c","stock":[{"warehouse":1,"quantity":true}]}]}"#;
    let batch = read_jsonl("catalog.jsonl", line.as_bytes()).expect("in memory");
    let shown = batch.rejected[0].to_string();
    let documented = shown.replace("catalog.jsonl:1:", "catalog.jsonl:17:");
    assert!(doc.contains(&documented), "docs do not show: {documented}");
}
