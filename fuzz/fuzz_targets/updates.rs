//! Stock and price updates: any bytes are read into updates or rejections naming a line;
//! each accepted update then applies to a product without panicking (decimal overflow
//! included), and applying it a second time changes nothing.
#![no_main]

use std::sync::OnceLock;

use iofd::catalog::{Product, Record};
use iofd::ingest::{JsonlReader, Update};
use iofd_fuzz::{line_count, read_lines};
use libfuzzer_sys::fuzz_target;

/// Two sizes, two warehouses, VAT 23 %: what updates name in the seed corpus.
const PRODUCT: &str = r#"{"kind":"product","id":17,"vat":23,"description":{"name":{"pol":"Kubek"}},"sizes":[{"id":"S","code":"17-S","stock":[{"warehouse":1,"quantity":"5"}],"prices":{"retail":{"net":"1","gross":"1.23"}}},{"id":"M","code":"17-M","stock":[{"warehouse":2,"quantity":"0"}]}]}"#;

fn product() -> &'static Product {
    static PRODUCT_RECORD: OnceLock<Product> = OnceLock::new();
    PRODUCT_RECORD.get_or_init(
        || match JsonlReader::new("product", PRODUCT.as_bytes()).next() {
            Some(Ok(parsed)) => match parsed.record {
                Record::Product(p) => *p,
                other => panic!("not a product: {other:?}"),
            },
            other => panic!("the sample product does not parse: {other:?}"),
        },
    )
}

fuzz_target!(|data: &[u8]| {
    let (accepted, _, fatal) = read_lines::<Update>(data, line_count(data), usize::MAX);
    assert_eq!(fatal, None, "in-memory input cannot fail to read");
    let mut current = product().clone();
    for parsed in &accepted {
        let update = &parsed.record;
        let before = current.clone();
        match update.apply_to(&mut current) {
            Ok(changed) => {
                assert_eq!(changed, current != before, "{update:?}");
                let after = current.clone();
                assert_eq!(
                    update.apply_to(&mut current).ok(),
                    Some(false),
                    "{update:?}"
                );
                assert_eq!(current, after, "{update:?}");
            }
            Err(e) => {
                // An unknown size, or a price node that cannot be completed with VAT or is
                // out of bounds (named as the node, or the node and its half: "retail.net").
                let node = e.field.split('.').next().unwrap_or_default();
                assert!(
                    ["size", "retail", "wholesale", "srp"].contains(&node),
                    "{update:?}: {e:?}"
                );
                assert_eq!(current, before, "a refused update changed the product");
            }
        }
    }
});
