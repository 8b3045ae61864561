//! The price formula of every offer, XML and CSV alike: which base price a node shows
//! (inheritance from the product, the wholesale fallback to retail), its conversion to the
//! profile currency, the partner's discount and the rounding.
//!
//! full.xml, full.csv and change files show converted prices; light.xml and light.csv show
//! the partner's price after discount (the reference prices, srp and strikethrough, are the
//! end customer's: converted, never discounted). The writers only decide how a price is
//! written and what an overflow means for them (XML leaves the node out, CSV refuses).

// Money comes from outside: every operation on it is checked.
#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;

use crate::catalog::rules::{PriceRule, Subject, Tree};
use crate::catalog::RenderProfile;
use crate::catalog::{self, round_money, ArchivedPrice, ArchivedPrices, Price};

/// The price nodes a product or a size carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PriceNode {
    /// What the partner pays (`<price>`; the `price_*` CSV columns).
    Price,
    Srp,
    StrikethroughRetail,
    StrikethroughWholesale,
}

/// A price node as a partner sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Quote {
    /// Neither the size nor the product has this price.
    Absent,
    /// The price does not fit a decimal after conversion (beyond about 7.9e28).
    Overflow,
    Price(Price),
}

impl Quote {
    /// The price, with an overflow treated as no price (XML leaves such a node out).
    pub(crate) fn ok(self) -> Option<Price> {
        match self {
            Quote::Price(p) => Some(p),
            Quote::Absent | Quote::Overflow => None,
        }
    }

    /// The price if any, with an overflow turned into the caller's error.
    pub(crate) fn or_overflow<E>(self, err: impl FnOnce() -> E) -> Result<Option<Price>, E> {
        match self {
            Quote::Price(p) => Ok(Some(p)),
            Quote::Absent => Ok(None),
            Quote::Overflow => Err(err()),
        }
    }
}

/// What the paid price is multiplied by after conversion.
#[derive(Clone, Copy, Debug)]
enum Discount {
    None,
    /// `(100 - discount) / 100`.
    Keep(Decimal),
    /// The discount cannot be computed (configuration bounds prevent it): every paid price
    /// overflows rather than being written wrong.
    Unrepresentable,
}

/// Currency conversion and discount of one profile, prepared once per render.
#[derive(Clone, Debug)]
pub(crate) struct Pricing {
    rate: Decimal,
    /// Converting is only rounding: the rate is 1.
    rate_is_one: bool,
    discount: Discount,
    /// Wholesale partners pay the wholesale price, falling back to retail.
    wholesale: bool,
    /// The partner's price rule for the product being written (see [`Pricing::for_product`]).
    rule: Option<PriceRule>,
}

impl Pricing {
    /// Prices as full files show them: converted, not discounted.
    pub(crate) fn full(profile: &RenderProfile) -> Self {
        Pricing {
            rate: profile.rate,
            rate_is_one: profile.rate == Decimal::ONE,
            discount: Discount::None,
            wholesale: profile.wholesale,
            rule: None,
        }
    }

    /// This pricing for one product: with the first of the profile's price rules that
    /// matches it (none: as it is).
    pub(crate) fn for_product(
        &self,
        profile: &RenderProfile,
        s: Subject,
        tree: &impl Tree,
    ) -> Self {
        let rule = match profile.rules.price_rules.is_empty() {
            true => None,
            false => profile.rules.price_rule(s, tree).map(|(_, r)| r.clone()),
        };
        Pricing {
            rule,
            ..self.clone()
        }
    }

    /// Prices as light files show them: the paid price also discounted.
    pub(crate) fn light(profile: &RenderProfile) -> Self {
        // Computed once per render instead of per price.
        let discount = if profile.discount_percent.is_zero() {
            Discount::None
        } else {
            catalog::discount_keep(profile.discount_percent)
                .map_or(Discount::Unrepresentable, Discount::Keep)
        };
        Pricing {
            discount,
            ..Pricing::full(profile)
        }
    }

    /// A base amount in the profile currency (`RenderProfile::convert`).
    pub(crate) fn convert(&self, d: Decimal) -> Option<Decimal> {
        if self.rate_is_one {
            // d * 1 is d at the same scale; only the rounding remains.
            Some(round_money(d))
        } else {
            catalog::convert_amount(d, self.rate)
        }
    }

    /// What the partner pays for a base amount: converted, and discounted in light files
    /// (`RenderProfile::discounted`).
    pub(crate) fn pay(&self, d: Decimal) -> Option<Decimal> {
        let paid = match self.discount {
            Discount::None => self.convert(d),
            Discount::Keep(keep) => catalog::discount_amount(d, self.rate, keep),
            Discount::Unrepresentable => None,
        }?;
        match &self.rule {
            Some(rule) => rule.apply(paid),
            None => Some(paid),
        }
    }

    /// A reference price in the profile currency.
    pub(crate) fn converted(&self, p: &ArchivedPrice) -> Option<Price> {
        Some(Price {
            net: self.convert(catalog::decimal(&p.net))?,
            gross: self.convert(catalog::decimal(&p.gross))?,
        })
    }

    fn paid(&self, p: &ArchivedPrice) -> Option<Price> {
        Some(Price {
            net: self.pay(catalog::decimal(&p.net))?,
            gross: self.pay(catalog::decimal(&p.gross))?,
        })
    }

    /// One price node of a product (`size` is `None`) or of one of its sizes.
    pub(crate) fn quote(
        &self,
        node: PriceNode,
        product: &ArchivedPrices,
        size: Option<&ArchivedPrices>,
    ) -> Quote {
        let Some(base) = self.source(node, product, size) else {
            return Quote::Absent;
        };
        let priced = match node {
            PriceNode::Price => self.paid(base),
            _ => self.converted(base),
        };
        priced.map_or(Quote::Overflow, Quote::Price)
    }

    /// The base price behind a node. Each price field of a size is inherited from the product
    /// on its own, so for wholesale partners a size's own retail price does not hide the
    /// product's wholesale price: wholesale (size's, then product's), else retail (size's,
    /// then product's).
    fn source<'a>(
        &self,
        node: PriceNode,
        product: &'a ArchivedPrices,
        size: Option<&'a ArchivedPrices>,
    ) -> Option<&'a ArchivedPrice> {
        let field = |pick: fn(&ArchivedPrices) -> &rkyv::option::ArchivedOption<ArchivedPrice>| {
            size.and_then(|s| pick(s).as_ref())
                .or_else(|| pick(product).as_ref())
        };
        match node {
            PriceNode::Price if self.wholesale => {
                field(|p| &p.wholesale).or_else(|| field(|p| &p.retail))
            }
            PriceNode::Price => field(|p| &p.retail),
            PriceNode::Srp => field(|p| &p.srp),
            PriceNode::StrikethroughRetail => field(|p| &p.strikethrough_retail),
            PriceNode::StrikethroughWholesale => field(|p| &p.strikethrough_wholesale),
        }
    }
}

#[cfg(test)]
mod tests;
