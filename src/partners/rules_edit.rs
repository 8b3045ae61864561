//! Partner rules as `iofd partners set` (and `add`) change them: each option replaces one key
//! of `[partner.assortment]`, `[[partner.price_rule]]` or `[partner.stock]`, and an emptied
//! table disappears, so a partner whose rules are all cleared reads as it did before rules.

use rust_decimal::Decimal;
use toml_edit::{value, Array, ArrayOfTables, Item, Table, TableLike};

use crate::catalog::rules::PriceRule;

/// Rule changes; `None` leaves a key as it is. An empty list, or `Some(None)`, removes it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RuleSettings {
    pub categories: Option<Vec<u64>>,
    pub producers: Option<Vec<u64>>,
    pub include_products: Option<Vec<u64>>,
    pub exclude_products: Option<Vec<u64>>,
    pub min_stock: Option<Option<Decimal>>,
    /// Replaces the whole list (first match wins, so order is part of the rule).
    pub price_rules: Option<Vec<PriceRule>>,
    pub warehouses: Option<Vec<u32>>,
    pub max_quantity: Option<Option<Decimal>>,
    pub reserve: Option<Option<Decimal>>,
}

/// Apply `r` to one `[[partner]]` table.
pub(super) fn apply(table: &mut Table, r: &RuleSettings) {
    let ids = |v: &Option<Vec<u64>>| v.as_ref().map(|v| v.iter().map(|&n| n as i64).collect());
    sub_table(
        table,
        "assortment",
        &[
            ("categories", ids(&r.categories).map(list)),
            ("producers", ids(&r.producers).map(list)),
            ("include_products", ids(&r.include_products).map(list)),
            ("exclude_products", ids(&r.exclude_products).map(list)),
            ("min_stock", r.min_stock.map(decimal)),
        ],
    );
    let warehouses = r
        .warehouses
        .as_ref()
        .map(|v| list(v.iter().map(|&n| i64::from(n)).collect()));
    sub_table(
        table,
        "stock",
        &[
            ("warehouses", warehouses),
            ("max_quantity", r.max_quantity.map(decimal)),
            ("reserve", r.reserve.map(decimal)),
        ],
    );
    if let Some(rules) = &r.price_rules {
        if rules.is_empty() {
            table.remove("price_rule");
        } else {
            let mut aot = ArrayOfTables::new();
            for rule in rules {
                aot.push(price_rule_table(rule));
            }
            table.insert("price_rule", Item::ArrayOfTables(aot));
        }
    }
}

/// A key's new value: `Some(None)` removes the key.
type Change = Option<Option<Item>>;

fn list(values: Vec<i64>) -> Option<Item> {
    (!values.is_empty()).then(|| value(values.into_iter().collect::<Array>()))
}

/// Decimals are written as strings, exact, as the loader reads them.
fn decimal(d: Option<Decimal>) -> Option<Item> {
    d.map(|d| value(d.normalize().to_string()))
}

fn sub_table(table: &mut Table, name: &str, changes: &[(&str, Change)]) {
    if changes.iter().all(|(_, c)| c.is_none()) {
        return;
    }
    let item = table
        .entry(name)
        .or_insert_with(|| Item::Table(Table::new()));
    let Some(sub) = item.as_table_like_mut() else {
        // Not a table: the loader refuses the file and names the key.
        return;
    };
    for (key, change) in changes {
        match change {
            None => {}
            Some(None) => {
                sub.remove(key);
            }
            Some(Some(v)) => {
                sub.insert(key, v.clone());
            }
        }
    }
    if TableLike::is_empty(sub) {
        table.remove(name);
    }
}

fn price_rule_table(rule: &PriceRule) -> Table {
    let mut t = Table::new();
    let id = |n: u64| value(n as i64);
    if let Some(c) = rule.category {
        t.insert("category", id(c));
    }
    if let Some(p) = rule.producer {
        t.insert("producer", id(p));
    }
    if let Some(p) = rule.product {
        t.insert("product", id(p));
    }
    for (key, d) in [
        ("markup_percent", rule.markup_percent),
        ("discount_percent", rule.discount_percent),
        ("round_to", rule.round_to),
    ] {
        if let Some(item) = decimal(d) {
            t.insert(key, item);
        }
    }
    t
}

/// A price rule in the syntax [`parse_price_rule`] reads (`category=47,markup=10,round=0.99`),
/// to show a rule where it can be edited.
pub fn format_price_rule(rule: &PriceRule) -> String {
    let mut parts = Vec::new();
    for (key, id) in [
        ("category", rule.category),
        ("producer", rule.producer),
        ("product", rule.product),
    ] {
        if let Some(id) = id {
            parts.push(format!("{key}={id}"));
        }
    }
    for (key, d) in [
        ("markup", rule.markup_percent),
        ("discount", rule.discount_percent),
        ("round", rule.round_to),
    ] {
        if let Some(d) = d {
            parts.push(format!("{key}={}", d.normalize()));
        }
    }
    parts.join(",")
}

/// A price rule from the command line: `markup=10,round=0.99`, `category=47,discount=5`
/// (keys `category`, `producer`, `product`, `markup`, `discount`, `round`).
pub fn parse_price_rule(s: &str) -> Result<PriceRule, String> {
    let mut rule = PriceRule::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected key=value"))?;
        let num = || v.parse::<u64>().map_err(|e| format!("{key}={v}: {e}"));
        let dec = || v.parse::<Decimal>().map_err(|e| format!("{key}={v}: {e}"));
        match key {
            "category" => rule.category = Some(num()?),
            "producer" => rule.producer = Some(num()?),
            "product" => rule.product = Some(num()?),
            "markup" | "markup_percent" => rule.markup_percent = Some(dec()?),
            "discount" | "discount_percent" => rule.discount_percent = Some(dec()?),
            "round" | "round_to" => rule.round_to = Some(dec()?),
            _ => {
                return Err(format!(
                    "{key:?}: expected category, producer, product, markup, discount or round"
                ))
            }
        }
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formatted_price_rule_reads_back_as_itself() {
        for text in [
            "category=47,markup=10,round=0.99",
            "producer=16,discount=5",
            "markup=-2.5",
        ] {
            let rule = parse_price_rule(text).unwrap();
            assert_eq!(format_price_rule(&rule), text);
            assert_eq!(parse_price_rule(&format_price_rule(&rule)).unwrap(), rule);
        }
    }

    #[test]
    fn rules_are_written_as_the_loader_reads_them_and_cleared_away() {
        let mut doc: toml_edit::DocumentMut = "[[partner]]\nid = \"a\"\n".parse().unwrap();
        let table = doc["partner"]
            .as_array_of_tables_mut()
            .unwrap()
            .get_mut(0)
            .unwrap();
        let set = RuleSettings {
            categories: Some(vec![1]),
            min_stock: Some(Some(Decimal::new(10, 1))),
            price_rules: Some(vec![
                parse_price_rule("category=47, markup=10,round=0.99").unwrap()
            ]),
            reserve: Some(Some(Decimal::TWO)),
            ..RuleSettings::default()
        };
        apply(table, &set);
        let text = doc.to_string();
        assert!(
            text.contains("[partner.assortment]\ncategories = [1]\nmin_stock = \"1\""),
            "{text}"
        );
        assert!(text.contains("[[partner.price_rule]]\ncategory = 47\nmarkup_percent = \"10\"\nround_to = \"0.99\""), "{text}");
        assert!(text.contains("[partner.stock]\nreserve = \"2\""), "{text}");
        let clear = RuleSettings {
            categories: Some(vec![]),
            min_stock: Some(None),
            price_rules: Some(vec![]),
            reserve: Some(None),
            ..RuleSettings::default()
        };
        let table = doc["partner"]
            .as_array_of_tables_mut()
            .unwrap()
            .get_mut(0)
            .unwrap();
        apply(table, &clear);
        assert_eq!(doc.to_string(), "[[partner]]\nid = \"a\"\n");
        assert!(parse_price_rule("colour=red").is_err());
        assert!(parse_price_rule("markup").is_err());
    }
}
