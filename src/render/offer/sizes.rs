//! full.xml's `<sizes>`: size names, per-size prices and stock.

use rust_decimal::Decimal;

use super::price::PriceNodes;
use super::Cx;
use crate::catalog::{self, ArchivedProduct, ArchivedSize};
use crate::render::dicts::size_def;
use crate::render::xml::XmlBuf;
/// The size's display name: from the size group in the profile's language, `one size` for
/// `uniw` outside any group, else the size id itself.
pub(super) fn size_name<'x>(
    cx: &Cx,
    group: Option<&'x catalog::ArchivedSizeGroup>,
    size: &'x ArchivedSize,
) -> &'x str {
    let id = size.id.as_str();
    if let Some(name) = group
        .and_then(|g| size_def(g, id))
        .and_then(|def| cx.pick(&def.name))
    {
        return name;
    }
    if id == "uniw" {
        "one size"
    } else {
        id
    }
}

pub(super) fn full_sizes(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    if p.sizes.is_empty() {
        return;
    }
    let group_id = p.size_group.as_ref().map(|g| g.to_native());
    let group = group_id.and_then(|id| cx.dicts.size_group(id));
    o.raw(b"\t\t<sizes");
    match group_id {
        Some(id) => {
            if let Some(g) = group {
                o.attr(b"iaiext:group_name", g.name.as_str());
            }
            o.attr_u64(b"iaiext:group_id", id);
        }
        None => o.raw(b" iaiext:group_name=\"One size\" iaiext:group_id=\"-1\""),
    }
    o.raw(b" iaiext:sizeList=\"full\">\n");
    for (priority, size) in p.sizes.iter().enumerate() {
        let name = size_name(cx, group, size);
        o.raw(b"\t\t\t<size");
        o.attr(b"id", size.id.as_str());
        o.attr(b"name", name);
        o.attr(b"panel_name", name);
        o.attr(b"code", size.code.as_str());
        if let Some(weight) = size.weight.as_ref() {
            o.attr_u64(b"weight", u64::from(weight.to_native()));
        }
        if let Some(weight) = size.weight_net.as_ref() {
            o.attr_u64(b"iaiext:weight_net", u64::from(weight.to_native()));
        }
        if let Some(code) = size.code_producer.as_ref() {
            o.attr(b"code_producer", code.as_str());
        }
        if let Some(code) = size.code_external.as_ref() {
            o.attr(b"iaiext:code_external", code.as_str());
        }
        o.attr_u64(b"iaiext:priority", priority as u64);
        o.raw(b">\n");
        PriceNodes::of(&cx.pricing, &p.prices, Some(&size.prices)).write_all(
            o,
            b"\t\t\t\t",
            cx.places,
        );
        let rule = &cx.profile.rules.stock;
        for s in size
            .stock
            .iter()
            .filter(|s| rule.shows(s.warehouse.to_native()))
        {
            let quantity = rule.shown(catalog::decimal(&s.quantity));
            o.raw(b"\t\t\t\t<stock");
            o.attr_u64(b"id", u64::from(s.warehouse.to_native()));
            o.attr_decimal(b"quantity", quantity, 0);
            o.attr_decimal(b"available_stock_quantity", quantity, 0);
            // A reserve or cap hides the real stock: the physical figure would tell it.
            let physical = s
                .physical
                .as_ref()
                .filter(|_| !rule.reshapes())
                .map(catalog::decimal)
                .unwrap_or(quantity);
            let places = if physical == Decimal::NEGATIVE_ONE {
                0
            } else {
                3
            };
            o.attr_decimal(b"stock_quantity", physical, places);
            if let Some(location) = s.location.as_ref() {
                o.attr(b"location_text_id", location.as_str());
            }
            o.raw(b"/>\n");
        }
        o.raw(b"\t\t\t</size>\n");
    }
    o.raw(b"\t\t</sizes>\n");
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn sizes_stock_and_one_size_products() {
        let f = Fixture::new();
        let doc = render_full(&f, &retail_pl());
        let shirt = product_xml(&doc, 1001);
        assert_contains(
            shirt,
            "\t\t<sizes iaiext:group_name=\"Ubrania\" iaiext:group_id=\"1\" iaiext:sizeList=\"full\">\n",
        );
        assert_contains(
            shirt,
            "\t\t\t\t<stock id=\"0\" quantity=\"-1\" available_stock_quantity=\"-1\" stock_quantity=\"-1\"/>\n\
             \t\t\t\t<stock id=\"1\" quantity=\"12\" available_stock_quantity=\"12\" stock_quantity=\"15.000\" location_text_id=\"strefa A &amp; B\"/>\n",
        );
        let ebook = product_xml(&doc, 1003);
        assert_contains(
            ebook,
            "\t\t<sizes iaiext:group_name=\"One size\" iaiext:group_id=\"-1\" iaiext:sizeList=\"full\">\n\
             \t\t\t<size id=\"uniw\" name=\"one size\" panel_name=\"one size\" code=\"1003-uniw\" iaiext:priority=\"0\">\n\
             \t\t\t\t<price gross=\"61.49\" net=\"49.99\"/>\n\
             \t\t\t\t<stock id=\"0\" quantity=\"-1\" available_stock_quantity=\"-1\" stock_quantity=\"-1\"/>\n\
             \t\t\t</size>\n\t\t</sizes>\n",
        );
    }
}
