use super::*;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// 1 ─ 10 ─ 100, and 2 on its own.
fn tree(c: u64) -> Option<u64> {
    match c {
        10 => Some(1),
        100 => Some(10),
        _ => None,
    }
}

fn subject(id: u64, category: Option<u64>, producer: Option<u64>) -> Subject {
    Subject {
        id,
        producer,
        category,
    }
}

fn levels(q: &[(u32, &str)]) -> Vec<(u32, Decimal)> {
    q.iter().map(|(w, s)| (*w, d(s))).collect()
}

#[test]
fn categories_take_their_whole_subtree_and_producers_narrow_further() {
    let mut r = Rules::default();
    r.assortment.categories = vec![1];
    let stock = levels(&[(1, "5")]);
    let v = |r: &Rules, s| r.verdict(false, s, &tree, stock.iter().copied());
    assert!(
        v(&r, subject(7, Some(100), None)).is_in(),
        "a grandchild is in"
    );
    assert!(v(&r, subject(7, Some(1), None)).is_in());
    assert!(!v(&r, subject(7, Some(2), None)).is_in());
    assert!(!v(&r, subject(7, None, None)).is_in(), "no category: out");
    r.assortment.producers = vec![16];
    assert!(
        !v(&r, subject(7, Some(10), Some(21))).is_in(),
        "both must hold"
    );
    assert!(v(&r, subject(7, Some(10), Some(16))).is_in());
    r.assortment.include_products = vec![9];
    assert!(
        v(&r, subject(9, Some(2), None)).is_in(),
        "included whatever the filters"
    );
    r.assortment.exclude_products = vec![9];
    assert!(
        !v(&r, subject(9, Some(1), Some(16))).is_in(),
        "exclusion wins"
    );
}

#[test]
fn a_cycle_in_the_tree_ends_the_walk() {
    let cycle = |c: u64| Some(if c == 5 { 6 } else { 5 });
    assert!(!in_subtree(&cycle, 5, &[1]));
    assert!(in_subtree(&cycle, 5, &[6]));
}

#[test]
fn stock_rules_shape_the_shown_quantity_and_membership() {
    let stock = StockRule {
        warehouses: vec![1],
        max_quantity: Some(d("50")),
        reserve: Some(d("2")),
    };
    assert_eq!(stock.shown(d("100")), d("50"));
    assert_eq!(stock.shown(d("30")), d("28"));
    assert_eq!(stock.shown(d("1")), d("0"), "never below zero");
    assert_eq!(stock.shown(d("-1")), d("50"), "unlimited, capped");
    let uncapped = StockRule {
        max_quantity: None,
        ..stock.clone()
    };
    assert_eq!(uncapped.shown(d("-1")), d("-1"));
    assert!(stock.shows(1) && !stock.shows(2));

    let r = Rules {
        stock,
        ..Rules::default()
    };
    let s = subject(1, None, None);
    // Plenty in warehouse 2 only: not shown, so not in stock for this partner.
    let only_2 = levels(&[(1, "2"), (2, "99")]);
    assert!(!r.verdict(true, s, &flat, only_2.iter().copied()).is_in());
    assert!(r.verdict(false, s, &flat, only_2.iter().copied()).is_in());
    let three = levels(&[(1, "3")]);
    assert!(r.verdict(true, s, &flat, three.iter().copied()).is_in());

    let mut min = r.clone();
    min.assortment.min_stock = Some(d("2"));
    assert!(
        !min.verdict(false, s, &flat, three.iter().copied()).is_in(),
        "3 - 2 = 1 < 2"
    );
    let two_sizes = levels(&[(1, "3"), (1, "3")]);
    assert!(
        min.verdict(false, s, &flat, two_sizes.iter().copied())
            .is_in(),
        "summed over sizes"
    );
    let mut plain = Rules::default();
    plain.assortment.min_stock = Some(d("1000"));
    let unlimited = levels(&[(1, "-1")]);
    assert!(plain
        .verdict(false, s, &flat, unlimited.iter().copied())
        .is_in());
}

#[test]
fn the_first_matching_price_rule_applies() {
    let r = Rules {
        price_rules: vec![
            PriceRule {
                product: Some(5),
                discount_percent: Some(d("50")),
                ..PriceRule::default()
            },
            PriceRule {
                category: Some(10),
                markup_percent: Some(d("20")),
                ..PriceRule::default()
            },
            PriceRule {
                markup_percent: Some(d("10")),
                ..PriceRule::default()
            },
        ],
        ..Rules::default()
    };
    let pick = |s| r.price_rule(s, &tree).map(|(i, _)| i);
    assert_eq!(pick(subject(5, Some(100), None)), Some(0));
    assert_eq!(pick(subject(6, Some(100), None)), Some(1), "subtree of 10");
    assert_eq!(pick(subject(6, Some(1), None)), Some(2));
    assert_eq!(
        pick(subject(6, None, None)),
        Some(2),
        "no selector: every product"
    );
    assert_eq!(
        Rules::default().price_rule(subject(6, None, None), &tree),
        None
    );
}

#[test]
fn markups_discounts_and_endings() {
    let rule = |m: Option<&str>, disc: Option<&str>, e: Option<&str>| PriceRule {
        markup_percent: m.map(d),
        discount_percent: disc.map(d),
        round_to: e.map(d),
        ..PriceRule::default()
    };
    assert_eq!(
        rule(Some("10"), None, None).apply(d("45.32")),
        Some(d("49.85"))
    ); // 49.852
    assert_eq!(
        rule(Some("10"), None, None).apply(d("0.05")),
        Some(d("0.06"))
    ); // 0.055 away from zero
    assert_eq!(
        rule(None, Some("25"), None).apply(d("10.00")),
        Some(d("7.50"))
    );
    assert_eq!(
        rule(Some("-100"), None, None).apply(d("10.00")),
        Some(d("0"))
    );
    // Endings move up to the next amount with those cents, never down.
    let charm = rule(Some("10"), None, Some("0.99"));
    assert_eq!(charm.apply(d("45.32")), Some(d("49.99")));
    assert_eq!(charm.apply(d("90.90")), Some(d("99.99"))); // 99.99 exactly
    assert_eq!(charm.apply(d("90.91")), Some(d("100.99"))); // 100.001 rounds to 100.00
    let whole = rule(None, Some("0"), Some("0"));
    assert_eq!(whole.apply(d("12.01")), Some(d("13")));
    assert_eq!(whole.apply(d("12")), Some(d("12")));
    assert_eq!(
        rule(Some("10000"), None, None).apply(Decimal::MAX),
        None,
        "overflow is None"
    );
}

#[test]
fn impossible_rules_are_refused_with_their_key() {
    let refused = |r: PriceRule| {
        Rules {
            price_rules: vec![PriceRule::default(), r],
            ..Rules::default()
        }
        .check()
        .unwrap_err()
        .to_string()
    };
    let m = |s: &str| Some(d(s));
    let e = refused(PriceRule {
        markup_percent: m("-100.01"),
        ..PriceRule::default()
    });
    // The first rule (no percentage) is refused first.
    assert!(e.starts_with("price_rule[1].markup_percent"), "{e}");
    let refused = |r: PriceRule| {
        Rules {
            price_rules: vec![r],
            ..Rules::default()
        }
        .check()
        .unwrap_err()
        .to_string()
    };
    let base = PriceRule {
        markup_percent: m("10"),
        ..PriceRule::default()
    };
    for (r, needle) in [
        (
            PriceRule {
                markup_percent: m("-100.01"),
                ..PriceRule::default()
            },
            "price_rule[1].markup_percent: below -100",
        ),
        (
            PriceRule {
                round_to: m("1"),
                ..base.clone()
            },
            "price_rule[1].round_to",
        ),
        (
            PriceRule {
                round_to: m("-0.01"),
                ..base.clone()
            },
            "price_rule[1].round_to",
        ),
        (
            PriceRule {
                round_to: m("0.999"),
                ..base.clone()
            },
            "cents",
        ),
        (
            PriceRule {
                discount_percent: m("5"),
                ..base.clone()
            },
            "not both",
        ),
        (
            PriceRule {
                category: Some(1),
                producer: Some(2),
                ..base.clone()
            },
            "one of category",
        ),
        (
            PriceRule {
                markup_percent: None,
                discount_percent: m("101"),
                ..base.clone()
            },
            "price_rule[1].discount_percent",
        ),
    ] {
        let e = refused(r);
        assert!(e.contains(needle), "{e}");
    }
    let mut r = Rules::default();
    r.stock.reserve = Some(d("-1"));
    assert!(r
        .check()
        .unwrap_err()
        .to_string()
        .starts_with("stock.reserve"));
    assert!(Rules {
        price_rules: vec![PriceRule {
            markup_percent: m("-100"),
            round_to: m("0.99"),
            ..PriceRule::default()
        }],
        ..Rules::default()
    }
    .check()
    .is_ok());
}

struct Catalog;

impl Known for Catalog {
    fn category(&self, id: u64) -> bool {
        matches!(id, 1 | 10 | 100 | 2)
    }
    fn producer(&self, id: u64) -> bool {
        id == 16
    }
    fn warehouse(&self, id: u32) -> bool {
        id == 1
    }
}

#[test]
fn rules_naming_what_the_catalog_lacks_are_refused() {
    let mut r = Rules::default();
    r.assortment.categories = vec![1, 3];
    assert_eq!(
        r.check_against(&Catalog).unwrap_err().to_string(),
        "assortment.categories: category 3 is not in the catalog"
    );
    r.assortment.categories = vec![1];
    r.stock.warehouses = vec![2];
    assert!(r
        .check_against(&Catalog)
        .unwrap_err()
        .to_string()
        .contains("warehouse 2"));
    r.stock.warehouses = vec![1];
    r.price_rules = vec![PriceRule {
        producer: Some(21),
        markup_percent: Some(d("1")),
        ..PriceRule::default()
    }];
    assert!(r
        .check_against(&Catalog)
        .unwrap_err()
        .to_string()
        .starts_with("price_rule[1].producer: producer 21"));
    r.price_rules[0].producer = Some(16);
    assert_eq!(r.check_against(&Catalog), Ok(()));
}

#[test]
fn normalized_rules_compare_equal() {
    let mut a = Rules::default();
    a.stock.reserve = Some(d("2.00"));
    let mut b = Rules::default();
    b.stock.reserve = Some(d("2"));
    a.normalize();
    b.normalize();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert!(Rules::default().is_unrestricted() && !a.is_unrestricted());
}
