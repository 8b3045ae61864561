//! Main nodes that name a dictionary entry: producer, category, unit, series, warranty.

use super::Cx;
use crate::catalog::{ArchivedProduct, ArchivedWarrantyType};
use crate::render::xml::{ncname, XmlBuf};
pub(super) fn producer(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let Some(id) = p.producer.as_ref().map(|x| x.to_native()) else {
        return;
    };
    let Some(producer) = cx.dicts.producer(id) else {
        return;
    };
    o.raw(b"\t\t<producer");
    o.attr_u64(b"id", id);
    o.attr(b"name", producer.name.as_str());
    o.raw(b"/>\n");
}

pub(super) fn category(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let Some(id) = p.category.as_ref().map(|x| x.to_native()) else {
        return;
    };
    let Some(path) = cx.dicts.category_path(id, cx.profile.language()) else {
        return;
    };
    o.raw(b"\t\t<category");
    o.attr_u64(b"id", id);
    o.attr(b"name", path);
    o.raw(b"/>\n");
}

pub(super) fn unit(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let Some(id) = p.unit.as_ref().map(|x| x.to_native()) else {
        return;
    };
    let Some(unit) = cx.dicts.unit(id) else {
        return;
    };
    o.raw(b"\t\t<unit");
    o.attr_u64(b"id", id);
    o.raw(b" name=\"");
    ncname(o, cx.pick(&unit.name).unwrap_or(""));
    o.raw(b"\"/>\n");
}

pub(super) fn series(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let Some(id) = p.series.as_ref().map(|x| x.to_native()) else {
        return;
    };
    let Some(name) = cx.dicts.series(id).and_then(|s| cx.pick(&s.name)) else {
        return;
    };
    o.raw(b"\t\t<series");
    o.attr_u64(b"id", id);
    o.attr(b"name", name);
    o.raw(b"/>\n");
}

pub(super) fn warranty(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let Some(id) = p.warranty.as_ref().map(|x| x.to_native()) else {
        return;
    };
    let Some(warranty) = cx.dicts.warranty(id) else {
        return;
    };
    let Some(name) = cx.pick(&warranty.name) else {
        return;
    };
    o.raw(b"\t\t<warranty");
    o.attr_u64(b"id", id);
    o.attr(
        b"type",
        match warranty.kind {
            ArchivedWarrantyType::Producer => "producer",
            ArchivedWarrantyType::Seller => "seller",
            ArchivedWarrantyType::None => "none",
        },
    );
    o.attr_u64(b"period", u64::from(warranty.period_months.to_native()));
    o.attr(b"name", name);
    o.raw(b"/>\n");
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn product_attributes_and_dictionary_nodes() {
        let f = Fixture::new();
        let doc = render_full(&f, &retail_pl());
        let shirt = product_xml(&doc, 1001);
        assert!(shirt.starts_with(
            "<product id=\"1001\" currency=\"PLN\" code_on_card=\"KOS-1001\" \
             producer_code_standard=\"GTIN13\" type=\"regular\" vat=\"23.0\" site=\"1\">\n\
             \t\t<producer id=\"1\" name=\"H&amp;M\"/>\n\
             \t\t<category id=\"111\" name=\"Odzież/Męska/Koszule &amp; bluzy\"/>\n\
             \t\t<unit id=\"1\" name=\"szt.\"/>\n\
             \t\t<series id=\"1\" name=\"Kolekcja zimowa\"/>\n\
             \t\t<warranty id=\"1\" type=\"producer\" period=\"24\" name=\"Gwarancja producenta 2 lata\"/>\n\
             \t\t<card url=\"https://hurtownia.example/pl/products/1001.html\"/>\n\
             \t\t<description>\n"
        ), "{shirt}");
        let eng = render_full(&f, &wholesale_eur());
        assert_contains(
            product_xml(&eng, 1001),
            "<category id=\"111\" name=\"Clothing/Men/Shirts &amp; sweatshirts\"/>",
        );
        assert_contains(
            product_xml(&eng, 1003),
            "<producer id=\"3\" name=\"Sony &quot;Electronics&quot; &lt;EU&gt;\"/>",
        );
        // A level without the language falls back to the one it has.
        assert_contains(
            product_xml(&eng, 1003),
            "<category id=\"210\" name=\"Electronics/Akcesoria\"/>",
        );
        assert_contains(product_xml(&eng, 1003), "site=\"2\"");
        assert_contains(product_xml(&doc, 1005), "vat=\"8.0\"");
        assert_contains(product_xml(&doc, 1007), "type=\"service\" vat=\"0.0\"");
        assert_contains(product_xml(&doc, 1004), "type=\"bundle\"");
        assert_contains(product_xml(&doc, 1004), "<unit id=\"2\" name=\"komplet\"/>");
    }
}
