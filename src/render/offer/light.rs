//! light.xml's `<product>`: the partner's prices and stock per size.

use super::price::PriceNodes;
use super::sizes::size_name;
use super::Cx;
use crate::catalog::{self, ArchivedProduct};
use crate::render::xml::XmlBuf;
pub(super) fn light_product(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let cx = &cx.for_product(p);
    let places = cx.places;
    let stock = &cx.profile.rules.stock;
    o.raw(b"\t<product");
    o.attr_u64(b"id", p.id.to_native());
    o.attr_decimal(b"vat", catalog::decimal(&p.vat), 1);
    o.raw(b">\n");
    PriceNodes::of(&cx.pricing, &p.prices, None).write_all(o, b"\t\t", places);
    if !p.sizes.is_empty() {
        let group = p
            .size_group
            .as_ref()
            .and_then(|g| cx.dicts.size_group(g.to_native()));
        o.raw(b"\t\t<sizes>\n");
        for size in p.sizes.iter() {
            let name = size_name(cx, group, size);
            o.raw(b"\t\t\t<size");
            o.attr(b"id", size.id.as_str());
            o.attr(b"name", name);
            o.attr(b"panel_name", name);
            if let Some(code) = size.code_producer.as_ref() {
                o.attr(b"code_producer", code.as_str());
            }
            if let Some(code) = size.code_external.as_ref() {
                o.attr(b"iaiext:code_external", code.as_str());
            }
            o.attr(b"code", size.code.as_str());
            if let Some(weight) = size.weight.as_ref() {
                o.attr_u64(b"weight", u64::from(weight.to_native()));
            }
            if let Some(weight) = size.weight_net.as_ref() {
                o.attr_u64(b"iaiext:weight_net", u64::from(weight.to_native()));
            }
            o.raw(b">\n");
            PriceNodes::of(&cx.pricing, &p.prices, Some(&size.prices)).write_all(
                o,
                b"\t\t\t\t",
                places,
            );
            for s in size
                .stock
                .iter()
                .filter(|s| stock.shows(s.warehouse.to_native()))
            {
                o.raw(b"\t\t\t\t<stock");
                o.attr_u64(b"id", u64::from(s.warehouse.to_native()));
                o.attr_decimal(b"quantity", stock.shown(catalog::decimal(&s.quantity)), 0);
                o.raw(b"/>\n");
            }
            o.raw(b"\t\t\t</size>\n");
        }
        o.raw(b"\t\t</sizes>\n");
    }
    o.raw(b"\t</product>\n");
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn light_prices_are_discounted_with_two_decimals() {
        let f = Fixture::new();
        let light = render_light(&f, &wholesale_eur());
        let shirt = product_xml(&light, 1001);
        // Wholesale 80.00 / 98.40, * 0.25 * 0.9; reference prices converted only.
        assert!(shirt.starts_with(
            "<product id=\"1001\" vat=\"23.0\">\n\
             \t\t<price gross=\"22.14\" net=\"18.00\"/>\n\
             \t\t<srp gross=\"36.90\" net=\"30.00\"/>\n\
             \t\t<strikethrough_retail_price gross=\"33.83\" net=\"27.50\"/>\n\
             \t\t<strikethrough_wholesale_price gross=\"27.68\" net=\"22.50\"/>\n\
             \t\t<sizes>\n\
             \t\t\t<size id=\"1\" name=\"small\" panel_name=\"small\" code_producer=\"5901234123457\" \
             iaiext:code_external=\"ERP-1001-1\" code=\"1001-1\" weight=\"350\" iaiext:weight_net=\"300\">\n\
             \t\t\t\t<price gross=\"22.14\" net=\"18.00\"/>\n"
        ), "{shirt}");
        assert_contains(shirt, "\t\t\t\t<stock id=\"0\" quantity=\"-1\"/>\n\t\t\t\t<stock id=\"1\" quantity=\"12\"/>\n");
        // 104.55 * 0.25 * 0.9 = 23.52375
        assert_contains(shirt, "<price gross=\"23.52\" net=\"19.13\"/>");
        // Retail at rate 1 with 5 % off.
        let light = render_light(&f, &retail_pl());
        assert_contains(product_xml(&light, 1001), "\t\t<price gross=\"116.85\" net=\"95.00\"/>\n\t\t<srp gross=\"147.60\" net=\"120.00\"/>");
        // One-size products keep the uniw id and code in light too.
        assert_contains(
            product_xml(&light, 1003),
            "<size id=\"uniw\" name=\"one size\" panel_name=\"one size\" code=\"1003-uniw\">",
        );
        // Fractional stock stays as it is.
        let shop2 = render_light(&f, &wholesale_eur());
        assert_contains(
            product_xml(&shop2, 1006),
            "<stock id=\"1\" quantity=\"1000.5\"/>",
        );
    }
}
