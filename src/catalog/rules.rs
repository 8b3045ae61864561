//! Partner rules: which products a partner's offer holds (assortment), at which prices (price
//! rules) and with which stock (stock rule). They are catalog-level values so that `partners`
//! (parsing, validation), `render` (shaping files) and `changes` (membership in change files)
//! read one definition and cannot disagree.
//!
//! Meaning, precisely (README "Partner rules" says the same for operators):
//! - **Assortment.** A product is in when it is offered in the profile's shop and not in
//!   `exclude_products`, and either it is in `include_products` or it passes every filter
//!   given: its category is one of `categories` or below one of them, its producer is one of
//!   `producers` (both given: both must hold), its shown stock (see below) totals at least
//!   `min_stock` (an unlimited level always does), and with `only_in_stock` some shown level
//!   is above 0 or unlimited.
//! - **Price rules.** The first rule whose selector matches applies (`category` matches the
//!   category's subtree, like the assortment; no selector matches every product). The paid
//!   price (`<price>`, the `price_*` CSV columns) is the price the partner would pay without
//!   rules, times `(100 + markup_percent) / 100` or `(100 - discount_percent) / 100`, rounded
//!   to the cent; `round_to` then moves each amount (net and gross apart) up to the nearest
//!   amount ending in those cents. The floor is that rounded rule result: an ending never
//!   lowers a price. Reference prices (srp, strikethrough, promotion) are the end customer's
//!   and stay as they are.
//! - **Stock.** Only levels of `warehouses` are shown (none given: all); each shown level's
//!   quantity is `max(0, real - reserve)`, capped at `max_quantity`; an unlimited level (-1)
//!   stays unlimited unless capped, then it shows `max_quantity`.

// Money and quantities come from outside: every operation on them is checked.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;

use super::{round_money, ArchivedDictionaries, MAX_QUANTITY};

/// Which products a partner gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assortment {
    /// These categories and all their subcategories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub producers: Vec<u64>,
    /// Always in (within the shop's offer), whatever the filters say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_products: Vec<u64>,
    /// Never in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_products: Vec<u64>,
    /// Least shown stock, summed over sizes and shown warehouses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_stock: Option<Decimal>,
}

impl Assortment {
    pub fn is_empty(&self) -> bool {
        *self == Assortment::default()
    }
}

/// One `[[partner.price_rule]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRule {
    /// Products of this category's subtree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markup_percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_percent: Option<Decimal>,
    /// The cents every paid amount ends in (`0.99`), from 0 up to (not including) 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_to: Option<Decimal>,
}

/// `[partner.stock]`: which stock a partner sees.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockRule {
    /// Only these warehouses are shown (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warehouses: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_quantity: Option<Decimal>,
    /// Held back from every shown level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<Decimal>,
}

impl StockRule {
    pub fn is_empty(&self) -> bool {
        *self == StockRule::default()
    }

    /// Whether levels of `warehouse` are shown.
    pub fn shows(&self, warehouse: u32) -> bool {
        self.warehouses.is_empty() || self.warehouses.contains(&warehouse)
    }

    /// Whether shown quantities differ from the real ones.
    pub fn reshapes(&self) -> bool {
        self.max_quantity.is_some() || self.reserve.is_some()
    }

    /// The quantity shown for a level of `real` (-1: unlimited).
    pub fn shown(&self, real: Decimal) -> Decimal {
        if real == Decimal::NEGATIVE_ONE {
            return self.max_quantity.unwrap_or(real);
        }
        let left = match self.reserve {
            // Both are bounded (ingest, validation): saturation never happens in practice.
            Some(r) => real.saturating_sub(r).max(Decimal::ZERO),
            None => real,
        };
        match self.max_quantity {
            Some(max) => left.min(max),
            None => left,
        }
    }
}

/// Everything a partner's account says about its offer beyond the settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rules {
    #[serde(default, skip_serializing_if = "Assortment::is_empty")]
    pub assortment: Assortment,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub price_rules: Vec<PriceRule>,
    #[serde(default, skip_serializing_if = "StockRule::is_empty")]
    pub stock: StockRule,
}

/// A rule that cannot hold; `key` is its place in the partner's entry
/// (`price_rule[2].round_to`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: &'static str },
    #[error("{key}: {what} {id} is not in the catalog")]
    Unknown {
        key: String,
        what: &'static str,
        id: u64,
    },
}

/// What the catalog holds, for [`Rules::check_against`].
pub trait Known {
    fn category(&self, id: u64) -> bool;
    fn producer(&self, id: u64) -> bool;
    fn warehouse(&self, id: u32) -> bool;
}

/// The ids of a catalog's dictionaries, for [`Rules::check_against`]. A dictionary the
/// catalog does not have at all (an empty store before the first import) cannot be checked
/// and knows every id; the rules are checked again on the next reload.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    categories: HashSet<u64>,
    producers: HashSet<u64>,
    warehouses: HashSet<u32>,
}

impl Ids {
    pub fn of(d: &ArchivedDictionaries) -> Self {
        Ids {
            categories: d.categories.iter().map(|c| c.id.to_native()).collect(),
            producers: d.producers.iter().map(|p| p.id.to_native()).collect(),
            warehouses: d.warehouses.iter().map(|w| w.id.to_native()).collect(),
        }
    }
}

impl Known for Ids {
    fn category(&self, id: u64) -> bool {
        self.categories.is_empty() || self.categories.contains(&id)
    }
    fn producer(&self, id: u64) -> bool {
        self.producers.is_empty() || self.producers.contains(&id)
    }
    fn warehouse(&self, id: u32) -> bool {
        self.warehouses.is_empty() || self.warehouses.contains(&id)
    }
}

/// The category tree, for subtree selectors.
pub trait Tree {
    fn parent(&self, category: u64) -> Option<u64>;
}

impl<F: Fn(u64) -> Option<u64>> Tree for F {
    fn parent(&self, category: u64) -> Option<u64> {
        self(category)
    }
}

/// The parents of a catalog's categories.
#[derive(Clone, Debug, Default)]
pub struct Parents(HashMap<u64, u64>);

impl Parents {
    pub fn of(d: &ArchivedDictionaries) -> Self {
        Parents(
            d.categories
                .iter()
                .filter_map(|c| Some((c.id.to_native(), c.parent.as_ref()?.to_native())))
                .collect(),
        )
    }
}

impl Tree for Parents {
    fn parent(&self, category: u64) -> Option<u64> {
        self.0.get(&category).copied()
    }
}

/// The category tree of no catalog (every category a root), for callers that have none.
pub fn flat(_: u64) -> Option<u64> {
    None
}

/// Bound on the walk up a category path (a cycle in the data must not hang a render).
const MAX_DEPTH: usize = 1024;

/// Whether `category` is one of `roots` or below one of them.
pub fn in_subtree(tree: &impl Tree, category: u64, roots: &[u64]) -> bool {
    let mut at = Some(category);
    for _ in 0..MAX_DEPTH {
        let Some(c) = at else { return false };
        if roots.contains(&c) {
            return true;
        }
        at = tree.parent(c);
    }
    false
}

/// What rules read of a product besides its stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject {
    pub id: u64,
    pub producer: Option<u64>,
    pub category: Option<u64>,
}

/// Why a product is in or out of an offer (for `iofd partners explain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    In(&'static str),
    Out(&'static str),
}

impl Verdict {
    pub fn is_in(self) -> bool {
        matches!(self, Verdict::In(_))
    }
}

impl Rules {
    /// Whether any rule reads the category tree (then callers build [`Parents`]).
    pub fn reads_categories(&self) -> bool {
        !self.assortment.categories.is_empty()
            || self.price_rules.iter().any(|r| r.category.is_some())
    }

    /// No rule restricts or reshapes anything: the offer is the settings' alone.
    pub fn is_unrestricted(&self) -> bool {
        *self == Rules::default()
    }

    /// Store decimals normalized (`"1.0"` as `1`), so equal rules give equal file keys.
    pub fn normalize(&mut self) {
        let n = |d: &mut Option<Decimal>| {
            if let Some(x) = d {
                *x = x.normalize();
            }
        };
        n(&mut self.assortment.min_stock);
        n(&mut self.stock.max_quantity);
        n(&mut self.stock.reserve);
        for r in &mut self.price_rules {
            n(&mut r.markup_percent);
            n(&mut r.discount_percent);
            n(&mut r.round_to);
        }
    }

    /// Refuse rules that cannot hold, whatever the catalog.
    pub fn check(&self) -> Result<(), RuleError> {
        let bad = |key: String, reason| Err(RuleError::Invalid { key, reason });
        let quantity =
            |d: Option<Decimal>| d.is_some_and(|d| d < Decimal::ZERO || d > MAX_QUANTITY);
        if quantity(self.assortment.min_stock) {
            return bad("assortment.min_stock".into(), "a quantity from 0 to 10^15");
        }
        if quantity(self.stock.max_quantity) {
            return bad("stock.max_quantity".into(), "a quantity from 0 to 10^15");
        }
        if quantity(self.stock.reserve) {
            return bad("stock.reserve".into(), "a quantity from 0 to 10^15");
        }
        for (i, r) in self.price_rules.iter().enumerate() {
            let key = |field: &str| format!("price_rule[{}].{field}", i.saturating_add(1));
            let selectors = [
                r.category.is_some(),
                r.producer.is_some(),
                r.product.is_some(),
            ];
            if selectors.iter().filter(|s| **s).count() > 1 {
                return bad(key("category"), "give one of category, producer, product");
            }
            match (r.markup_percent, r.discount_percent) {
                (Some(_), Some(_)) => {
                    return bad(
                        key("markup_percent"),
                        "give markup_percent or discount_percent, not both",
                    )
                }
                (None, None) => {
                    return bad(
                        key("markup_percent"),
                        "give markup_percent or discount_percent",
                    )
                }
                (Some(m), None) if m < MIN_MARKUP => {
                    return bad(
                        key("markup_percent"),
                        "below -100 %: prices would be negative",
                    )
                }
                (Some(m), None) if m > MAX_MARKUP => {
                    return bad(key("markup_percent"), "above 10000 %")
                }
                (None, Some(d)) if d < Decimal::ZERO || d > Decimal::ONE_HUNDRED => {
                    return bad(key("discount_percent"), "a percentage from 0 to 100")
                }
                _ => {}
            }
            if let Some(e) = r.round_to {
                if e < Decimal::ZERO || e >= Decimal::ONE {
                    return bad(key("round_to"), "an ending from 0 up to (not including) 1");
                }
                if e.normalize().scale() > 2 {
                    return bad(
                        key("round_to"),
                        "an ending in cents (at most 2 decimal places)",
                    );
                }
            }
        }
        Ok(())
    }

    /// Refuse rules naming categories, producers or warehouses the catalog lacks.
    pub fn check_against(&self, known: &impl Known) -> Result<(), RuleError> {
        let unknown = |key: String, what, id| Err(RuleError::Unknown { key, what, id });
        for &c in &self.assortment.categories {
            if !known.category(c) {
                return unknown("assortment.categories".into(), "category", c);
            }
        }
        for &p in &self.assortment.producers {
            if !known.producer(p) {
                return unknown("assortment.producers".into(), "producer", p);
            }
        }
        for &w in &self.stock.warehouses {
            if !known.warehouse(w) {
                return unknown("stock.warehouses".into(), "warehouse", u64::from(w));
            }
        }
        for (i, r) in self.price_rules.iter().enumerate() {
            let key = |field: &str| format!("price_rule[{}].{field}", i.saturating_add(1));
            if let Some(c) = r.category.filter(|c| !known.category(*c)) {
                return unknown(key("category"), "category", c);
            }
            if let Some(p) = r.producer.filter(|p| !known.producer(*p)) {
                return unknown(key("producer"), "producer", p);
            }
        }
        Ok(())
    }

    /// Whether a product offered in the profile's shop is in the offer, and why.
    /// `levels` are the (warehouse, quantity) stock levels of all its sizes.
    pub fn verdict(
        &self,
        only_in_stock: bool,
        s: Subject,
        tree: &impl Tree,
        levels: impl Iterator<Item = (u32, Decimal)> + Clone,
    ) -> Verdict {
        let a = &self.assortment;
        if a.exclude_products.contains(&s.id) {
            return Verdict::Out("listed in assortment.exclude_products");
        }
        if a.include_products.contains(&s.id) {
            return Verdict::In("listed in assortment.include_products");
        }
        if !a.categories.is_empty()
            && !s
                .category
                .is_some_and(|c| in_subtree(tree, c, &a.categories))
        {
            return Verdict::Out("its category is outside assortment.categories");
        }
        if !a.producers.is_empty() && !s.producer.is_some_and(|p| a.producers.contains(&p)) {
            return Verdict::Out("its producer is not in assortment.producers");
        }
        let shown = levels
            .filter(|(w, _)| self.stock.shows(*w))
            .map(|(_, q)| self.stock.shown(q));
        if only_in_stock
            && !shown
                .clone()
                .any(|q| q > Decimal::ZERO || q == Decimal::NEGATIVE_ONE)
        {
            return Verdict::Out("only_in_stock and no shown stock");
        }
        if let Some(min) = a.min_stock {
            let mut total = Decimal::ZERO;
            let mut unlimited = false;
            for q in shown {
                if q == Decimal::NEGATIVE_ONE {
                    unlimited = true;
                    break;
                }
                total = total.saturating_add(q);
            }
            if !unlimited && total < min {
                return Verdict::Out("its shown stock is below assortment.min_stock");
            }
        }
        Verdict::In(if self.assortment.is_empty() && !only_in_stock {
            "offered in the shop"
        } else {
            "passes the assortment"
        })
    }

    /// The first price rule matching the product, with its position (from 0).
    pub fn price_rule(&self, s: Subject, tree: &impl Tree) -> Option<(usize, &PriceRule)> {
        self.price_rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(s, tree))
    }
}

/// The highest markup accepted: far above any real one, and it keeps products of
/// `MAX_PRICE` far from overflowing.
/// The lowest: -100 % makes a price 0.
const MIN_MARKUP: Decimal = Decimal::from_parts(100, 0, 0, true, 0);
const MAX_MARKUP: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

impl PriceRule {
    /// Whether the rule's selector picks the product (no selector: every product).
    pub fn matches(&self, s: Subject, tree: &impl Tree) -> bool {
        if let Some(c) = self.category {
            return s.category.is_some_and(|pc| in_subtree(tree, pc, &[c]));
        }
        if let Some(p) = self.producer {
            return s.producer == Some(p);
        }
        if let Some(id) = self.product {
            return s.id == id;
        }
        true
    }

    /// What a paid amount is multiplied by.
    pub fn factor(&self) -> Option<Decimal> {
        let percent = match (self.markup_percent, self.discount_percent) {
            (Some(m), _) => Decimal::ONE_HUNDRED.checked_add(m)?,
            (None, Some(d)) => Decimal::ONE_HUNDRED.checked_sub(d)?,
            (None, None) => Decimal::ONE_HUNDRED,
        };
        percent.checked_div(Decimal::ONE_HUNDRED)
    }

    /// A paid amount (already converted and, in light files, discounted) after the rule;
    /// `None` when it overflows.
    pub fn apply(&self, amount: Decimal) -> Option<Decimal> {
        let ruled = round_money(amount.checked_mul(self.factor()?)?);
        match self.round_to {
            Some(ending) => ending_at_or_above(ruled, ending),
            None => Some(ruled),
        }
    }
}

/// The least amount at or above `amount` whose fraction is `ending` (0 <= ending < 1).
fn ending_at_or_above(amount: Decimal, ending: Decimal) -> Option<Decimal> {
    let candidate = amount.floor().checked_add(ending)?;
    let out = if candidate >= amount {
        candidate
    } else {
        candidate.checked_add(Decimal::ONE)?
    };
    // Written with cents like every price.
    Some(round_money(out))
}

#[cfg(test)]
mod tests;
