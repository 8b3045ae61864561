//! Prices: conversion and discount, the four price nodes of a product or size, promotion.

use rust_decimal::Decimal;

use super::Cx;
use crate::catalog::{self, round_money, ArchivedPrice, ArchivedPrices, ArchivedProduct};
use crate::render::xml::{nmtoken, XmlBuf};
use crate::render::RenderProfile;
/// A net/gross pair ready to write.
pub(super) type Pair = (Decimal, Decimal);

/// Currency conversion and discount, prepared once per render.
pub(super) struct Pricing {
    rate: Decimal,
    /// Converting is only rounding: the rate is 1.
    rate_is_one: bool,
    /// light.xml's `(100 - discount) / 100`, when there is a discount.
    keep: Option<Decimal>,
    /// Decimal places prices are written with at least.
    pub(super) places: u32,
}

impl Pricing {
    pub(super) fn full(profile: &RenderProfile) -> Self {
        Pricing {
            rate: profile.rate,
            rate_is_one: profile.rate == Decimal::ONE,
            keep: None,
            places: 0,
        }
    }

    pub(super) fn light(profile: &RenderProfile) -> Self {
        // Computed exactly as RenderProfile::discounted does, once instead of per price.
        let keep = (!profile.discount_percent.is_zero())
            .then(|| (Decimal::ONE_HUNDRED - profile.discount_percent) / Decimal::ONE_HUNDRED);
        Pricing {
            keep,
            places: 2,
            ..Pricing::full(profile)
        }
    }

    /// A base amount in the profile currency: `RenderProfile::convert`.
    pub(super) fn convert(&self, d: Decimal) -> Option<Decimal> {
        if self.rate_is_one {
            // d * 1 is d at the same scale; only the rounding remains.
            Some(round_money(d))
        } else {
            d.checked_mul(self.rate).map(round_money)
        }
    }

    /// What the partner pays: `RenderProfile::discounted` in light.xml, converted in full.xml.
    pub(super) fn pay(&self, d: Decimal) -> Option<Decimal> {
        match self.keep {
            None => self.convert(d),
            Some(keep) => d
                .checked_mul(self.rate)
                .and_then(|x| x.checked_mul(keep))
                .map(round_money),
        }
    }

    pub(super) fn converted(&self, p: &ArchivedPrice) -> Option<Pair> {
        Some((
            self.convert(catalog::decimal(&p.net))?,
            self.convert(catalog::decimal(&p.gross))?,
        ))
    }

    pub(super) fn paid(&self, p: &ArchivedPrice) -> Option<Pair> {
        Some((
            self.pay(catalog::decimal(&p.net))?,
            self.pay(catalog::decimal(&p.gross))?,
        ))
    }
}

/// The four price nodes of a product or a size, resolved and converted.
#[derive(Default)]
pub(super) struct PriceNodes {
    pub(super) price: Option<Pair>,
    pub(super) srp: Option<Pair>,
    pub(super) strikethrough_retail: Option<Pair>,
    pub(super) strikethrough_wholesale: Option<Pair>,
}

fn opt_price(p: &rkyv::option::ArchivedOption<ArchivedPrice>) -> Option<&ArchivedPrice> {
    p.as_ref()
}

impl PriceNodes {
    pub(super) fn product(cx: &Cx, prices: &ArchivedPrices) -> Self {
        let pay = if cx.profile.wholesale {
            opt_price(&prices.wholesale).or(opt_price(&prices.retail))
        } else {
            opt_price(&prices.retail)
        };
        let pricing = &cx.pricing;
        PriceNodes {
            price: pay.and_then(|p| pricing.paid(p)),
            srp: opt_price(&prices.srp).and_then(|p| pricing.converted(p)),
            strikethrough_retail: opt_price(&prices.strikethrough_retail)
                .and_then(|p| pricing.converted(p)),
            strikethrough_wholesale: opt_price(&prices.strikethrough_wholesale)
                .and_then(|p| pricing.converted(p)),
        }
    }

    /// A size's nodes: its own where it has them, else the product's (already converted).
    pub(super) fn size(
        cx: &Cx,
        own: &ArchivedPrices,
        product: &ArchivedPrices,
        inherited: &Self,
    ) -> Self {
        let pricing = &cx.pricing;
        let own_pay = if cx.profile.wholesale {
            match (opt_price(&own.wholesale), opt_price(&product.wholesale)) {
                (Some(p), _) => Some(p),
                (None, Some(_)) => None,
                (None, None) => opt_price(&own.retail),
            }
        } else {
            opt_price(&own.retail)
        };
        let pick = |own: Option<&ArchivedPrice>, inherited: Option<Pair>, paid: bool| match own {
            Some(p) if paid => pricing.paid(p),
            Some(p) => pricing.converted(p),
            None => inherited,
        };
        PriceNodes {
            price: pick(own_pay, inherited.price, true),
            srp: pick(opt_price(&own.srp), inherited.srp, false),
            strikethrough_retail: pick(
                opt_price(&own.strikethrough_retail),
                inherited.strikethrough_retail,
                false,
            ),
            strikethrough_wholesale: pick(
                opt_price(&own.strikethrough_wholesale),
                inherited.strikethrough_wholesale,
                false,
            ),
        }
    }

    pub(super) fn write_all(&self, o: &mut Vec<u8>, indent: &[u8], places: u32) {
        let nodes: [(&[u8], Option<Pair>); 4] = [
            (b"price", self.price),
            (b"srp", self.srp),
            (b"strikethrough_retail_price", self.strikethrough_retail),
            (
                b"strikethrough_wholesale_price",
                self.strikethrough_wholesale,
            ),
        ];
        for (tag, pair) in nodes {
            if let Some(pair) = pair {
                price_node(o, indent, tag, pair, places);
            }
        }
    }
}

pub(super) fn price_node(
    o: &mut Vec<u8>,
    indent: &[u8],
    tag: &[u8],
    (net, gross): Pair,
    places: u32,
) {
    o.raw(indent);
    o.raw(b"<");
    o.raw(tag);
    o.attr_decimal(b"gross", gross, places);
    o.attr_decimal(b"net", net, places);
    o.raw(b"/>\n");
}

pub(super) fn promotion(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let Some(promo) = p.promotion.as_ref() else {
        return;
    };
    o.raw(b"\t\t<promotion");
    o.attr(b"name", promo.name.as_str());
    for (name, value) in [
        (&b"start_date"[..], promo.start_date.as_ref()),
        (&b"ending_date"[..], promo.ending_date.as_ref()),
    ] {
        if let Some(value) = value {
            // An xs:NMTOKEN: sanitized, and left out when nothing usable remains.
            let mark = o.len();
            o.raw(b" ");
            o.raw(name);
            o.raw(b"=\"");
            if nmtoken(o, value.as_str()) {
                o.raw(b"\"");
            } else {
                o.truncate(mark);
            }
        }
    }
    o.raw(b">\n");
    // The promotion price is a retail price like <price>, converted to the profile currency.
    if let Some(pair) = cx.pricing.converted(&promo.price) {
        price_node(o, b"\t\t\t", b"price", pair, cx.pricing.places);
    } else {
        o.raw(b"\t\t\t<price/>\n");
    }
    // Required by the schema; which shop zones show the product is not in the model.
    o.raw(b"\t\t\t<shown_in_the_zone/>\n\t\t</promotion>\n");
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::catalog::Price;

    #[test]
    fn full_prices_are_converted_and_sizes_inherit() {
        let f = Fixture::new();
        let doc = render_full(&f, &retail_pl());
        let shirt = product_xml(&doc, 1001);
        assert_contains(
            shirt,
            "\t\t<price gross=\"123\" net=\"100\"/>\n\
             \t\t<srp gross=\"147.6\" net=\"120\"/>\n\
             \t\t<strikethrough_retail_price gross=\"135.3\" net=\"110\"/>\n\
             \t\t<strikethrough_wholesale_price gross=\"110.7\" net=\"90\"/>\n\
             \t\t<promotion name=\"Wyprzedaż zimowa &amp; więcej\" start_date=\"2026-11-01\" \
             ending_date=\"2026-11-30T23:59:59\">\n\
             \t\t\t<price gross=\"110.7\" net=\"90\"/>\n\
             \t\t\t<shown_in_the_zone/>\n\
             \t\t</promotion>\n",
        );
        // Size 1 inherits every node; size 3 has its own retail price.
        assert_contains(
            shirt,
            "\t\t\t<size id=\"1\" name=\"mały\" panel_name=\"mały\" code=\"1001-1\" weight=\"350\" \
             iaiext:weight_net=\"300\" code_producer=\"5901234123457\" \
             iaiext:code_external=\"ERP-1001-1\" iaiext:priority=\"0\">\n\
             \t\t\t\t<price gross=\"123\" net=\"100\"/>\n\
             \t\t\t\t<srp gross=\"147.6\" net=\"120\"/>\n",
        );
        assert_contains(
            shirt,
            "iaiext:priority=\"2\">\n\t\t\t\t<price gross=\"129.15\" net=\"105\"/>\n",
        );
        // Wholesale in EUR at 0.25: the wholesale price, the size's own where it has one.
        let eur = render_full(&f, &wholesale_eur());
        let shirt = product_xml(&eur, 1001);
        assert_contains(
            shirt,
            "\t\t<price gross=\"24.6\" net=\"20\"/>\n\t\t<srp gross=\"36.9\" net=\"30\"/>",
        );
        assert_contains(shirt, "name=\"large\" panel_name=\"large\" code=\"1001-3\"");
        // 104.55 * 0.25 = 26.1375
        assert_contains(
            shirt,
            "iaiext:priority=\"2\">\n\t\t\t\t<price gross=\"26.14\" net=\"21.25\"/>",
        );
        // A product without a wholesale price falls back to retail: 184.50 * 0.25.
        assert_contains(
            product_xml(&eur, 1004),
            "\t\t<price gross=\"46.13\" net=\"37.5\"/>",
        );
    }

    #[test]
    fn pricing_matches_the_profile_formulas() {
        let amounts = [
            "0", "0.01", "1", "19.99", "100.00", "123.45", "98765.43", "0.005",
        ];
        for (rate, discount) in [
            ("1", "0"),
            ("1", "12.5"),
            ("0.2345", "10"),
            ("4.3", "0"),
            ("0.01", "99.9"),
        ] {
            let profile = RenderProfile {
                rate: dec(rate),
                discount_percent: dec(discount),
                ..retail_pl()
            };
            let full = Pricing::full(&profile);
            let light = Pricing::light(&profile);
            for net in amounts {
                let p = Price {
                    net: dec(net),
                    gross: dec(net) * dec("1.23"),
                };
                let want = profile.convert(p.clone()).unwrap();
                assert_eq!(full.convert(p.net), Some(want.net), "{rate} {net}");
                assert_eq!(full.pay(p.gross), Some(want.gross), "{rate} {net}");
                assert_eq!(light.convert(p.net), Some(want.net), "{rate} {net}");
                let want = profile.discounted(p.clone()).unwrap();
                assert_eq!(light.pay(p.net), Some(want.net), "{rate} {discount} {net}");
                assert_eq!(
                    light.pay(p.gross),
                    Some(want.gross),
                    "{rate} {discount} {net}"
                );
            }
        }
        // Overflow leaves the price out instead of panicking.
        let huge = RenderProfile {
            rate: dec("1000000"),
            ..retail_pl()
        };
        assert_eq!(Pricing::full(&huge).convert(Decimal::MAX), None);
    }
}
