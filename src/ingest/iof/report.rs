//! What an import did with each source field: mapped as is, converted (currency, rounding,
//! date shape), derived (ids, languages, hierarchy), or dropped, with examples of the drops.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::catalog::Decimal;

/// How many examples of each dropped field are kept.
const EXAMPLES: usize = 5;

/// Counts for one source field, named like `product/sizes/size@code` or `products@currency`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct FieldCounts {
    pub mapped: u64,
    pub converted: u64,
    pub derived: u64,
    pub dropped: u64,
    /// The first few dropped values, each with where it was and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped_examples: Vec<String>,
}

/// The currency conversion applied to every imported price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversion {
    pub from: String,
    pub to: String,
    /// Units of `from` per one unit of `to` (the `[currencies]` setting); prices are divided.
    pub rate: Decimal,
}

/// The import report: printed by `iofd import`, written as JSON with `--report FILE`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub products: u64,
    pub deleted: u64,
    /// Products that could not be imported at all, with the reason (also counted as dropped).
    pub products_skipped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
    pub fields: BTreeMap<String, FieldCounts>,
    /// Wall time of reading and mapping the offer, in milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    fn field(&mut self, field: &str) -> &mut FieldCounts {
        if !self.fields.contains_key(field) {
            self.fields
                .insert(field.to_string(), FieldCounts::default());
        }
        self.fields.get_mut(field).expect("inserted above")
    }

    pub(super) fn mapped(&mut self, field: &str) {
        self.field(field).mapped += 1;
    }

    pub(super) fn converted(&mut self, field: &str) {
        self.field(field).converted += 1;
    }

    pub(super) fn derived(&mut self, field: &str) {
        self.field(field).derived += 1;
    }

    /// A value not carried into the catalog; `example` says which and why.
    pub(super) fn dropped(&mut self, field: &str, example: impl FnOnce() -> String) {
        let f = self.field(field);
        f.dropped += 1;
        if f.dropped_examples.len() < EXAMPLES {
            f.dropped_examples.push(example());
        }
    }

    /// Every dropped value, over all fields.
    pub fn dropped_total(&self) -> u64 {
        self.fields.values().map(|f| f.dropped).sum()
    }

    /// The fields with drops, for `--strict`'s error.
    pub fn dropped_fields(&self) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(_, f)| f.dropped > 0)
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "import report: {} products, {} deletions, {} products skipped, read in {} ms",
            self.products, self.deleted, self.products_skipped, self.elapsed_ms
        )?;
        if let Some(c) = &self.conversion {
            writeln!(
                f,
                "  prices converted from {} to {} at {} {} per 1 {}",
                c.from, c.to, c.rate, c.from, c.to
            )?;
        }
        writeln!(
            f,
            "  {:<56} {:>9} {:>9} {:>9} {:>9}",
            "field", "mapped", "converted", "derived", "dropped"
        )?;
        for (name, c) in &self.fields {
            writeln!(
                f,
                "  {:<56} {:>9} {:>9} {:>9} {:>9}",
                name, c.mapped, c.converted, c.derived, c.dropped
            )?;
            for e in &c.dropped_examples {
                writeln!(f, "      dropped: {e}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_keep_a_few_examples_and_are_totalled() {
        let mut r = Report::default();
        for i in 0..8 {
            r.dropped("product@foo", || format!("product {i}"));
        }
        r.mapped("product@id");
        r.converted("product/price@net");
        assert_eq!(r.dropped_total(), 8);
        assert_eq!(r.dropped_fields(), ["product@foo"]);
        let f = &r.fields["product@foo"];
        assert_eq!(f.dropped_examples.len(), EXAMPLES);
        assert_eq!(f.dropped_examples[0], "product 0");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["fields"]["product/price@net"]["converted"], 1);
        assert_eq!(json["fields"]["product@id"]["mapped"], 1);
        let text = r.to_string();
        assert!(text.contains("dropped: product 4"), "{text}");
        assert!(!text.contains("dropped: product 5"), "{text}");
    }
}
