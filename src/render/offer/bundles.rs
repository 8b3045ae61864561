//! `<group>` (the product's variant group) and `<bundled>` (a bundle's components).

use super::description::lang_texts;
use super::Cx;
use crate::catalog::{self, ArchivedBundleType, ArchivedComponentChoice, ArchivedProduct};
use crate::render::xml::XmlBuf;
pub(super) fn group(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let Some(g) = p.group.as_ref() else {
        return;
    };
    o.raw(b"\t\t<group");
    o.attr_u64(b"id", g.id.to_native());
    o.attr_u64(b"first_product_id", g.first_product_id.to_native());
    o.raw(b">\n\t\t\t<group_by_parameter");
    o.attr(b"id", g.by_parameter_id.as_str());
    o.raw(b">\n");
    lang_texts(o, cx, &g.by_parameter_name, b"\t\t\t\t", b"name", true);
    o.raw(b"\t\t\t\t<product_value");
    o.attr(b"id", g.value_id.as_str());
    o.raw(b">\n");
    lang_texts(o, cx, &g.value_name, b"\t\t\t\t\t", b"name", true);
    o.raw(b"\t\t\t\t</product_value>\n\t\t\t</group_by_parameter>\n\t\t</group>\n");
}

pub(super) fn bundled(o: &mut Vec<u8>, p: &ArchivedProduct) {
    let Some(b) = p.bundled.as_ref() else {
        return;
    };
    o.raw(b"\t\t<bundled");
    o.attr(
        b"type",
        match b.kind {
            ArchivedBundleType::Unspecified => "unspecified",
            ArchivedBundleType::Specified => "specified",
        },
    );
    o.raw(b">\n");
    for c in b.components.iter() {
        o.raw(b"\t\t\t<product");
        o.attr_u64(b"id", c.id.to_native());
        o.attr_decimal(b"quantity", catalog::decimal(&c.quantity), 3);
        o.attr(
            b"type",
            match c.choice {
                ArchivedComponentChoice::ClientChoosesSize => "client_chooses_size",
                ArchivedComponentChoice::ClientChoosesVariant => "client_chooses_variant",
                ArchivedComponentChoice::ClientChoosesDefinedSize => "client_chooses_defined_size",
                ArchivedComponentChoice::ClientChoosesDefinedSizeAsSeparateItems => {
                    "client_chooses_defined_size_as_separate_items"
                }
            },
        );
        if c.sizes.is_empty() {
            o.raw(b"/>\n");
            continue;
        }
        o.raw(b">\n\t\t\t\t<sizes>\n");
        for size in c.sizes.iter() {
            o.raw(b"\t\t\t\t\t<size");
            o.attr(b"id", size.as_str());
            o.raw(b"/>\n");
        }
        o.raw(b"\t\t\t\t</sizes>\n\t\t\t</product>\n");
    }
    o.raw(b"\t\t</bundled>\n");
}
