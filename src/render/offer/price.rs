//! The price nodes of a product or size in XML, and `<promotion>`; the formula behind them
//! is [`crate::render::pricing`], shared with CSV.

use super::Cx;
use crate::catalog::{ArchivedPrices, ArchivedProduct, Price};
use crate::render::pricing::{PriceNode, Pricing};
use crate::render::xml::{nmtoken, XmlBuf};

/// The four price nodes of a product or a size, resolved and converted.
#[derive(Default)]
pub(super) struct PriceNodes {
    pub(super) price: Option<Price>,
    pub(super) srp: Option<Price>,
    pub(super) strikethrough_retail: Option<Price>,
    pub(super) strikethrough_wholesale: Option<Price>,
}

impl PriceNodes {
    /// A product's nodes (`size` is `None`) or a size's, inheriting the product's.
    pub(super) fn of(
        pricing: &Pricing,
        product: &ArchivedPrices,
        size: Option<&ArchivedPrices>,
    ) -> Self {
        // A price that overflows on conversion is left out rather than written wrong.
        let quote = |node| pricing.quote(node, product, size).ok();
        PriceNodes {
            price: quote(PriceNode::Price),
            srp: quote(PriceNode::Srp),
            strikethrough_retail: quote(PriceNode::StrikethroughRetail),
            strikethrough_wholesale: quote(PriceNode::StrikethroughWholesale),
        }
    }

    pub(super) fn write_all(&self, o: &mut Vec<u8>, indent: &[u8], places: u32) {
        let nodes: [(&[u8], &Option<Price>); 4] = [
            (b"price", &self.price),
            (b"srp", &self.srp),
            (b"strikethrough_retail_price", &self.strikethrough_retail),
            (
                b"strikethrough_wholesale_price",
                &self.strikethrough_wholesale,
            ),
        ];
        for (tag, price) in nodes {
            if let Some(price) = price {
                price_node(o, indent, tag, price, places);
            }
        }
    }
}

pub(super) fn price_node(o: &mut Vec<u8>, indent: &[u8], tag: &[u8], p: &Price, places: u32) {
    o.raw(indent);
    o.raw(b"<");
    o.raw(tag);
    o.attr_decimal(b"gross", p.gross, places);
    o.attr_decimal(b"net", p.net, places);
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
    if let Some(price) = cx.pricing.converted(&promo.price) {
        price_node(o, b"\t\t\t", b"price", &price, cx.places);
    } else {
        o.raw(b"\t\t\t<price/>\n");
    }
    // Required by the schema; which shop zones show the product is not in the model.
    o.raw(b"\t\t\t<shown_in_the_zone/>\n\t\t</promotion>\n");
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

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
}
