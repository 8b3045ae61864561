//! `iofd partners explain PARTNER PRODUCT`: whether a product is in a partner's offer and why,
//! and its paid price and stock after each rule, step by step. It reads the same functions
//! the writers use (membership, conversion, discount, price rule, shown stock), so what it
//! says is what the files show.

// Money comes from outside: every operation on it is checked.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt::Write as _;

use rust_decimal::Decimal;

use crate::catalog::rules::Parents;
use crate::catalog::{
    self, convert_amount, discount_amount, discount_keep, ArchivedDictionaries, ArchivedPrice,
    ArchivedProduct, RenderProfile,
};

/// The explanation, one line per fact, for `profile` (one shop of the partner's account).
pub fn explain(
    profile: &RenderProfile,
    dicts: &ArchivedDictionaries,
    p: &ArchivedProduct,
) -> String {
    let tree = Parents::of(dicts);
    let mut out = String::new();
    let id = p.id.to_native();
    let verdict = profile.verdict(p, &tree);
    let _ = writeln!(
        out,
        "product {id} in shop {}: {} ({})",
        profile.shop,
        if verdict.is_in() {
            "IN the offer"
        } else {
            "NOT in the offer"
        },
        match verdict {
            catalog::rules::Verdict::In(why) | catalog::rules::Verdict::Out(why) => why,
        }
    );
    let s = catalog::subject(p);
    let _ = writeln!(
        out,
        "  category {}, producer {}",
        s.category.map_or("none".into(), |c| c.to_string()),
        s.producer.map_or("none".into(), |c| c.to_string())
    );
    let base = match profile.wholesale {
        true => p.prices.wholesale.as_ref().or(p.prices.retail.as_ref()),
        false => p.prices.retail.as_ref(),
    };
    match base {
        Some(price) => explain_price(&mut out, profile, &tree, s, price),
        None => {
            let _ = writeln!(
                out,
                "  price: none (the product has no price of its own; sizes may)"
            );
        }
    }
    explain_stock(&mut out, profile, p);
    out
}

fn explain_price(
    out: &mut String,
    profile: &RenderProfile,
    tree: &Parents,
    s: catalog::rules::Subject,
    price: &ArchivedPrice,
) {
    let (net, gross) = (catalog::decimal(&price.net), catalog::decimal(&price.gross));
    let kind = if profile.wholesale {
        "wholesale"
    } else {
        "retail"
    };
    let _ = writeln!(
        out,
        "  price ({kind}, base currency): net {net} gross {gross}"
    );
    let pair = |f: &dyn Fn(Decimal) -> Option<Decimal>| (f(net), f(gross));
    let show = |(n, g): (Option<Decimal>, Option<Decimal>)| match (n, g) {
        (Some(n), Some(g)) => format!("net {n} gross {g}"),
        _ => "overflows (left out of the files)".to_string(),
    };
    let full = pair(&|d| convert_amount(d, profile.rate));
    let _ = writeln!(
        out,
        "    converted to {} at {}: {}",
        profile.currency,
        profile.rate,
        show(full)
    );
    let keep = discount_keep(profile.discount_percent);
    let light = pair(&|d| discount_amount(d, profile.rate, keep?));
    if !profile.discount_percent.is_zero() {
        let _ = writeln!(
            out,
            "    discount {} % (light files only): {}",
            profile.discount_percent,
            show(light)
        );
    }
    match profile.rules.price_rule(s, tree) {
        None if profile.rules.price_rules.is_empty() => {}
        None => {
            let _ = writeln!(out, "    no price rule matches: prices as above");
        }
        Some((i, rule)) => {
            let ruled = |(n, g): (Option<Decimal>, Option<Decimal>)| {
                (n.and_then(|n| rule.apply(n)), g.and_then(|g| rule.apply(g)))
            };
            let what = match (rule.markup_percent, rule.discount_percent) {
                (Some(m), _) => format!("markup {m} %"),
                (None, Some(d)) => format!("discount {d} %"),
                (None, None) => "no change".to_string(),
            };
            let ending = rule
                .round_to
                .map_or(String::new(), |e| format!(", ending {e}"));
            let _ = writeln!(
                out,
                "    price_rule[{}] ({what}{ending}): full files {}; light files {}",
                i.saturating_add(1),
                show(ruled(full)),
                show(ruled(light))
            );
        }
    }
}

fn explain_stock(out: &mut String, profile: &RenderProfile, p: &ArchivedProduct) {
    let rule = &profile.rules.stock;
    for size in p.sizes.iter() {
        for level in size.stock.iter() {
            let w = level.warehouse.to_native();
            let q = catalog::decimal(&level.quantity);
            let shown = if rule.shows(w) {
                format!("shown {}", rule.shown(q))
            } else {
                "hidden (warehouse not in stock.warehouses)".to_string()
            };
            let _ = writeln!(
                out,
                "  stock size {} warehouse {w}: {q} -> {shown}",
                size.id.as_str()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::rules::{PriceRule, StockRule};
    use crate::catalog::sample::{sample_dictionaries, sample_products};
    use crate::catalog::{Format, Rules};

    #[test]
    fn explains_membership_price_and_stock_step_by_step() {
        let dicts = rkyv::to_bytes::<rkyv::rancor::Error>(&sample_dictionaries()).unwrap();
        let dicts = rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&dicts).unwrap();
        let shirt = sample_products()
            .into_iter()
            .find(|p| p.id == 1001)
            .unwrap();
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&shirt).unwrap();
        let p = rkyv::access::<ArchivedProduct, rkyv::rancor::Error>(&bytes).unwrap();
        let mut profile = RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip: false,
            languages: vec!["pol".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: Decimal::ZERO,
            wholesale: false,
            only_in_stock: false,
            rules: Rules {
                price_rules: vec![PriceRule {
                    category: Some(100),
                    markup_percent: Some(Decimal::TEN),
                    round_to: Some(Decimal::new(99, 2)),
                    ..PriceRule::default()
                }],
                stock: StockRule {
                    warehouses: vec![1],
                    reserve: Some(Decimal::TWO),
                    ..StockRule::default()
                },
                ..Rules::default()
            },
        };
        let text = explain(&profile, dicts, p);
        assert!(
            text.starts_with("product 1001 in shop 1: IN the offer"),
            "{text}"
        );
        // 111 is below 100: the rule matches through the tree.
        assert!(
            text.contains("price_rule[1] (markup 10 %, ending 0.99)"),
            "{text}"
        );
        assert!(text.contains("warehouse 0: -1 -> hidden"), "{text}");
        assert!(text.contains("warehouse 1: 12 -> shown 10"), "{text}");
        profile.rules.assortment.categories = vec![200];
        let text = explain(&profile, dicts, p);
        assert!(
            text.contains("NOT in the offer (its category is outside assortment.categories)"),
            "{text}"
        );
    }
}
