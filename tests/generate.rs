//! The committed demo catalog is exactly what the generator makes, and it ingests cleanly.

use std::path::{Path, PathBuf};

use iofd::catalog::Record;
use iofd::generate::{generate, generate_to, GenerateOptions, CATALOG_FILE};
use iofd::ingest::read_jsonl_file;

/// `fixtures/demo/catalog.jsonl` is `generate(200 products, seed 1)`.
const DEMO: GenerateOptions = GenerateOptions {
    products: 200,
    seed: 1,
};

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
}

#[test]
fn committed_demo_catalog_is_byte_identical_to_a_fresh_generation() {
    if std::env::var_os("IOFD_BLESS").is_some() {
        generate(&DEMO, &demo_dir()).expect("regenerate the demo catalog");
    }
    let mut fresh = Vec::new();
    generate_to(&mut fresh, &DEMO).expect("generate");
    let committed = std::fs::read(demo_dir().join(CATALOG_FILE)).unwrap_or_default();
    if committed != fresh {
        let line = committed
            .split(|&b| b == b'\n')
            .zip(fresh.split(|&b| b == b'\n'))
            .position(|(a, b)| a != b)
            .map_or(0, |i| i + 1);
        panic!(
            "fixtures/demo/catalog.jsonl differs from generate(200 products, seed 1) \
             (first difference on line {line}; {} bytes committed, {} generated).\n\
             If the generator changed on purpose, regenerate it with\n    \
             IOFD_BLESS=1 cargo test --test generate committed_demo\nand commit the result.",
            committed.len(),
            fresh.len()
        );
    }
}

#[test]
fn demo_catalog_ingests_without_rejections() {
    let batch = read_jsonl_file(&demo_dir().join(CATALOG_FILE)).expect("read the demo catalog");
    assert!(batch.rejected.is_empty(), "{:#?}", batch.rejected);
    let products = batch
        .records
        .iter()
        .filter(|r| matches!(r.record, Record::Product(_)))
        .count();
    assert_eq!(products, 200);
    assert!(batch.records.len() > 300, "dictionary records come too");
}

/// Every key of every demo line is declared by the schema branch of its kind (a structural
/// check; the schema itself is generated from the model and checked in the ingest tests).
#[test]
fn demo_lines_use_only_keys_the_schema_declares() {
    let schema: serde_json::Value =
        serde_json::from_str(&iofd::ingest::record_schema_json()).expect("schema is JSON");
    let branches = schema["oneOf"].as_array().expect("one branch per kind");
    let text = std::fs::read_to_string(demo_dir().join(CATALOG_FILE)).expect("read demo");
    let mut kinds = std::collections::BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let object = value.as_object().expect("object");
        let kind = object["kind"].as_str().expect("kind");
        kinds.insert(kind.to_owned());
        let branch = branches
            .iter()
            .find(|b| b["properties"]["kind"]["const"] == kind)
            .unwrap_or_else(|| panic!("line {}: no schema branch for kind {kind}", n + 1));
        assert_eq!(branch["additionalProperties"], false);
        for key in object.keys() {
            assert!(
                branch["properties"].get(key).is_some(),
                "line {}: key {key:?} of a {kind} is not in the schema",
                n + 1
            );
        }
    }
    assert_eq!(kinds.len(), 10, "every kind but delete_product: {kinds:?}");
}
