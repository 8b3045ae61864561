//! Partial updates: what an ERP's "send changed stock and prices" job produces. Each update
//! names a product (and a size) that must already exist; the store applies it to the
//! current product, so the ERP never has to send the whole product for a stock change.
//!
//! ```json
//! {"kind":"stock","product":17,"size":"M","warehouse":1,"quantity":"5"}
//! {"kind":"price","product":17,"size":"M","retail":{"net":"10.00","gross":"12.30"}}
//! {"kind":"price","product":17,"wholesale":{"net":"8.00"}}
//! ```
//!
//! A price node may carry `net`, `gross` or both; a missing half is derived from the
//! product's VAT rate (rounded half away from zero to 2 places). A price update without
//! `size` changes the product-level price.

// Money, VAT and quantities come from outside: every operation on them is checked.
#![deny(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};

use super::jsonl::{bad_line, BadLine, LineRecord};
use crate::catalog::{Decimal, FieldError, Price, Product, ProductId, Size, StockLevel};

/// One partial update of an existing product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Update {
    /// Set the stock of one size in one warehouse.
    Stock(StockUpdate),
    /// Set price nodes of a product or of one of its sizes.
    Price(PriceUpdate),
}

/// `{"kind":"stock",...}`: the orderable quantity of one size in one warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockUpdate {
    pub product: ProductId,
    /// Size id; may be left out for a product with a single size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    pub warehouse: u32,
    /// Zero or more, or -1 for unlimited.
    #[schemars(with = "crate::catalog::DecimalSchema")]
    pub quantity: Decimal,
}

/// A net/gross pair where either half may be left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::catalog::DecimalSchema>")]
    pub net: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::catalog::DecimalSchema>")]
    pub gross: Option<Decimal>,
}

/// `{"kind":"price",...}`: new price nodes; nodes left out keep their value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceUpdate {
    pub product: ProductId,
    /// Size id; absent: the product-level prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retail: Option<PriceInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wholesale: Option<PriceInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srp: Option<PriceInput>,
}

impl Update {
    /// The product the update is about.
    pub fn product(&self) -> ProductId {
        match self {
            Update::Stock(s) => s.product,
            Update::Price(p) => p.product,
        }
    }

    /// Check what can be checked without the product: ids, quantities, prices.
    pub fn normalize(&mut self) -> Result<(), FieldError> {
        if self.product() == 0 {
            return Err(FieldError::new(
                "product",
                "product ids are positive integers",
            ));
        }
        let size = match self {
            Update::Stock(s) => &s.size,
            Update::Price(p) => &p.size,
        };
        if size.as_deref().is_some_and(str::is_empty) {
            return Err(FieldError::new("size", "must not be empty"));
        }
        match self {
            Update::Stock(s) => crate::catalog::check_quantity("quantity", s.quantity)?,
            Update::Price(p) => {
                let nodes = [
                    ("retail", &p.retail),
                    ("wholesale", &p.wholesale),
                    ("srp", &p.srp),
                ];
                if nodes.iter().all(|(_, n)| n.is_none()) {
                    return Err(FieldError::new(
                        "retail",
                        "a price update needs at least one of retail, wholesale, srp",
                    ));
                }
                for (name, node) in nodes {
                    let Some(node) = node else { continue };
                    match (node.net, node.gross) {
                        (None, None) => {
                            return Err(FieldError::new(name, "needs net, gross or both"))
                        }
                        (net, gross) => {
                            for (half, value) in [("net", net), ("gross", gross)] {
                                if value.is_some_and(|v| v.is_sign_negative() && !v.is_zero()) {
                                    return Err(FieldError::new(
                                        format!("{name}.{half}"),
                                        "prices cannot be negative",
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Apply the update to `product`; `Ok(true)` when something changed. An unknown size is
    /// an error naming the `size` field.
    pub fn apply_to(&self, product: &mut Product) -> Result<bool, FieldError> {
        match self {
            Update::Stock(s) => {
                let size = find_size(product, s.size.as_deref())?;
                match size.stock.iter_mut().find(|l| l.warehouse == s.warehouse) {
                    Some(level) if level.quantity == s.quantity => Ok(false),
                    Some(level) => {
                        level.quantity = s.quantity;
                        Ok(true)
                    }
                    None => {
                        // Keep levels ordered by warehouse so equal states compare equal.
                        let at = size.stock.partition_point(|l| l.warehouse < s.warehouse);
                        size.stock.insert(
                            at,
                            StockLevel {
                                warehouse: s.warehouse,
                                quantity: s.quantity,
                                physical: None,
                                location: None,
                            },
                        );
                        Ok(true)
                    }
                }
            }
            Update::Price(p) => {
                let vat = product.vat;
                let prices = match p.size.as_deref() {
                    None => &mut product.prices,
                    Some(id) => &mut find_size(product, Some(id))?.prices,
                };
                // Every node is completed before any is set: a refused update changes nothing.
                let mut news = [None, None, None];
                for (new, (name, input)) in news.iter_mut().zip([
                    ("retail", &p.retail),
                    ("wholesale", &p.wholesale),
                    ("srp", &p.srp),
                ]) {
                    let Some(input) = input else { continue };
                    // The half completed with the product's VAT is checked like a sent one.
                    *new = Price::from_parts(input.net, input.gross, vat)
                        .map_err(|e| FieldError::new(format!("{name}.{}", e.field), e.reason))?;
                    if let Some(price) = &*new {
                        price.check(name)?;
                    }
                }
                let mut changed = false;
                for (new, slot) in news.into_iter().zip([
                    &mut prices.retail,
                    &mut prices.wholesale,
                    &mut prices.srp,
                ]) {
                    if new.is_some() && *slot != new {
                        *slot = new;
                        changed = true;
                    }
                }
                Ok(changed)
            }
        }
    }
}

/// The size `id` of `product`, or its only size when `id` is `None`.
fn find_size<'p>(product: &'p mut Product, id: Option<&str>) -> Result<&'p mut Size, FieldError> {
    let count = product.sizes.len();
    match id {
        Some(id) => {
            let Some(at) = product.sizes.iter().position(|s| s.id == id) else {
                let known: Vec<&str> = product
                    .sizes
                    .iter()
                    .map(|s| s.id.as_str())
                    .take(20)
                    .collect();
                return Err(FieldError::new(
                    "size",
                    format!(
                        "product {} has no size {id:?} (sizes: {})",
                        product.id,
                        known.join(", ")
                    ),
                ));
            };
            Ok(&mut product.sizes[at])
        }
        None if count == 1 => Ok(&mut product.sizes[0]),
        None => Err(FieldError::new(
            "size",
            format!("product {} has {count} sizes; name one", product.id),
        )),
    }
}

impl LineRecord for Update {
    fn parse_line(text: &str) -> Result<Self, BadLine> {
        // Through a value: the variant is chosen by "kind" first so that errors inside it
        // carry their path (serde's internally tagged enums lose it).
        let mut de = serde_json::Deserializer::from_str(text);
        let value = serde_json::Value::deserialize(&mut de).map_err(|e| BadLine {
            field: None,
            reason: super::jsonl::json_reason(&e),
        })?;
        de.end().map_err(|e| BadLine {
            field: None,
            reason: format!(
                "unexpected characters after the JSON object at column {}; put one update per line",
                e.column()
            ),
        })?;
        let serde_json::Value::Object(mut object) = value else {
            return Err(BadLine {
                field: None,
                reason: "expected a JSON object (one update per line)".into(),
            });
        };
        let kind = object.remove("kind");
        let body = serde_json::Value::Object(object);
        match kind.as_ref().and_then(|k| k.as_str()) {
            Some("stock") => serde_path_to_error::deserialize(body)
                .map(Update::Stock)
                .map_err(bad_line),
            Some("price") => serde_path_to_error::deserialize(body)
                .map(Update::Price)
                .map_err(bad_line),
            Some(other) => Err(BadLine {
                field: Some("kind".into()),
                reason: format!("unknown kind {other:?}; expected stock or price"),
            }),
            None => Err(BadLine {
                field: Some("kind".into()),
                reason: "missing or not a string; every update needs \"kind\": stock or price"
                    .into(),
            }),
        }
    }

    fn normalize_line(&mut self) -> Result<(), FieldError> {
        self.normalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{JsonlReader, LineError};
    use std::str::FromStr;

    fn product() -> Product {
        let line = r#"{"kind":"product","id":17,"vat":23,"description":{"name":{"pol":"Kubek"}},"sizes":[{"id":"S","code":"17-S","stock":[{"warehouse":2,"quantity":1}]},{"id":"M","code":"17-M"}]}"#;
        match crate::ingest::read_jsonl("t", line.as_bytes())
            .expect("read")
            .records
            .remove(0)
            .record
        {
            crate::catalog::Record::Product(p) => *p,
            other => panic!("{other:?}"),
        }
    }

    fn parse(text: &str) -> Result<Update, String> {
        let mut items: Vec<_> = JsonlReader::<_, Update>::of("u", text.as_bytes()).collect();
        assert_eq!(items.len(), 1);
        match items.remove(0) {
            Ok(p) => Ok(p.record),
            Err(LineError::Rejected(r)) => Err(r.to_string()),
            Err(e) => panic!("{e}"),
        }
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn a_price_too_large_to_complete_is_refused_naming_its_node_and_changes_nothing() {
        // Found by fuzzing: net * (1 + VAT) overflowed the decimal and panicked.
        let mut p = product();
        let before = p.clone();
        let u = parse(
            r#"{"kind":"price","product":17,"srp":{"gross":"1"},"retail":{"net":"79228162514264337593543950335"}}"#,
        )
        .expect("each amount is valid on its own");
        let e = u.apply_to(&mut p).expect_err("no gross can be derived");
        assert_eq!(e.field, "retail.net");
        assert!(e.reason.contains("too large"), "{e}");
        assert_eq!(p, before, "the srp node was not set either");
    }

    #[test]
    fn stock_updates_set_insert_in_order_and_report_no_change() {
        let mut p = product();
        let u = parse(r#"{"kind":"stock","product":17,"size":"S","warehouse":1,"quantity":"5"}"#)
            .expect("valid");
        assert_eq!(u.apply_to(&mut p), Ok(true));
        assert_eq!(u.apply_to(&mut p), Ok(false), "same quantity again");
        let warehouses: Vec<u32> = p.sizes[0].stock.iter().map(|l| l.warehouse).collect();
        assert_eq!(warehouses, [1, 2]);
        assert_eq!(p.sizes[0].stock[0].quantity, dec("5"));
        let u = parse(r#"{"kind":"stock","product":17,"size":"S","warehouse":2,"quantity":-1}"#)
            .expect("valid");
        assert_eq!(u.apply_to(&mut p), Ok(true));
        assert_eq!(p.sizes[0].stock[1].quantity, Decimal::NEGATIVE_ONE);
    }

    #[test]
    fn unknown_and_ambiguous_sizes_are_named() {
        let mut p = product();
        let u = parse(r#"{"kind":"stock","product":17,"size":"XL","warehouse":1,"quantity":1}"#)
            .expect("valid");
        let e = u.apply_to(&mut p).expect_err("no XL");
        assert_eq!(e.field, "size");
        assert!(
            e.reason.contains("no size \"XL\"") && e.reason.contains("S, M"),
            "{e}"
        );
        let u = parse(r#"{"kind":"stock","product":17,"warehouse":1,"quantity":1}"#).expect("ok");
        assert!(u
            .apply_to(&mut p)
            .expect_err("two sizes")
            .reason
            .contains("2 sizes"));
    }

    #[test]
    fn price_updates_complete_the_missing_half_from_vat() {
        let mut p = product();
        let u = parse(r#"{"kind":"price","product":17,"retail":{"net":"10.00"}}"#).expect("ok");
        assert_eq!(u.apply_to(&mut p), Ok(true));
        let retail = p.prices.retail.clone().expect("retail");
        assert_eq!((retail.net, retail.gross), (dec("10.00"), dec("12.30")));
        let u = parse(r#"{"kind":"price","product":17,"size":"M","srp":{"gross":"24.60"},"wholesale":{"net":"7","gross":"8.61"}}"#)
            .expect("ok");
        assert_eq!(u.apply_to(&mut p), Ok(true));
        assert_eq!(
            p.sizes[1].prices.srp.clone().expect("srp").net,
            dec("20.00")
        );
        assert_eq!(
            p.sizes[1].prices.wholesale.clone().expect("w").gross,
            dec("8.61")
        );
        assert_eq!(u.apply_to(&mut p), Ok(false));
    }

    #[test]
    fn bad_updates_are_rejected_with_their_field() {
        for (line, field) in [
            (
                r#"{"kind":"stock","product":17,"warehouse":1,"quantity":-2}"#,
                "quantity",
            ),
            (
                r#"{"kind":"stock","product":0,"warehouse":1,"quantity":1}"#,
                "product",
            ),
            (
                r#"{"kind":"stock","product":1,"size":"","warehouse":1,"quantity":1}"#,
                "size",
            ),
            (
                r#"{"kind":"price","product":17,"retail":{"net":"-1"}}"#,
                "retail.net",
            ),
            (r#"{"kind":"price","product":17}"#, "retail"),
            (r#"{"kind":"price","product":17,"srp":{}}"#, "srp"),
            (
                r#"{"kind":"stock","product":"x","warehouse":1,"quantity":1}"#,
                "product",
            ),
            (
                r#"{"kind":"stock","product":1,"warehouse":1,"quantity":1,"colour":1}"#,
                "colour",
            ),
        ] {
            let e = parse(line).expect_err(line);
            assert!(e.starts_with(&format!("u:1: {field}: ")), "{line}: {e}");
        }
        let e = parse(r#"{"kind":"stok","product":1}"#).expect_err("kind");
        assert!(e.contains("stok"), "{e}");
    }
}
