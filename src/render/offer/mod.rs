//! full.xml, light.xml and the product fragments of change files, in IOF 3.0.
//!
//! Output follows the official IdoSell examples (attribute and element order, namespace
//! declarations, CDATA texts, `YYYY-MM-DD hh:mm:ss` dates, one-size products as the single
//! size `uniw` in group `-1` "One size") and validates against full.xsd / light.xsd.
//!
//! Decisions where the format leaves room:
//! - **Languages.** Texts appear in the profile's languages, in profile order. A name
//!   (product name, version name, attachment name, group names) that exists in none of them
//!   falls back to the first language the product has, written with its real `xml:lang`, so
//!   no product is left nameless; descriptions have no fallback. Single-valued names
//!   (category path, unit, series, warranty, size and parameter names) use the first profile
//!   language that has one, else any.
//! - **Prices.** full.xml carries base prices converted to the profile currency
//!   ([`RenderProfile::convert`]). light.xml carries the partner's price after discount
//!   ([`RenderProfile::discounted`]) in `<price>`; srp and strikethrough prices there are
//!   reference prices for the partner's customers and are converted but not discounted.
//!   Wholesale profiles get the wholesale price in `<price>`, taken from the size, then the
//!   product, then falling back to the retail price of the size, then of the product. A price
//!   that overflows on conversion (beyond 7.9e28) is left out rather than written wrong.
//!   The formula is [`super::pricing`]'s, which the CSV offer uses too.
//! - **Sizes in light.xml** keep their full.xml ids and codes (`uniw`, `33-uniw`), so light
//!   joins to full on `size@id` and `size@code`; IdoSell's own sample writes `0` there.
//! - **Numbers.** full.xml prices drop trailing zeros (`1563.6`), light.xml prices have two
//!   decimals (`1563.60`), VAT at least one (`23.0`), physical stock and bundle quantities
//!   three (`102.000`); `-1` (unlimited) stays `-1`.
//! - **Schema-constrained values.** `unit@name` must be an NCName and `promotion@start_date`
//!   an NMTOKEN: they are sanitized (see `xml::ncname`, `xml::nmtoken`). Parameter context ids
//!   the schema does not enumerate go to `iaiext:context_id`. Dictionary references that do
//!   not resolve (an unknown producer id, say) leave the node out: its name is required.

mod bundles;
mod description;
#[cfg(test)]
mod documents;
mod light;
mod media;
mod parameters;
mod price;
mod refs;
mod sizes;
#[cfg(test)]
mod testkit;

use std::io::{self, Write};

use jiff::civil::DateTime;

use self::price::{price_node, PriceNodes};
use super::dicts::{first_text, text, ArchivedTexts, DictIndex};
use super::pricing::Pricing;
use super::xml::{with_scratch, XmlBuf};
use crate::catalog::{self, ArchivedProduct};
use crate::catalog::{MainNode, RenderProfile};
/// Times written on an offer's root element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferMeta {
    /// When the file was generated (`offer@generated`).
    pub generated: DateTime,
    /// Until when it is valid (`offer@expires`); the design uses generated + 1 day.
    pub expires: DateTime,
}

/// The order child nodes are written in: the official full.xml example's.
const WRITE_ORDER: [MainNode; 18] = [
    MainNode::Producer,
    MainNode::Category,
    MainNode::Unit,
    MainNode::Series,
    MainNode::Warranty,
    MainNode::Card,
    MainNode::Description,
    MainNode::Price,
    MainNode::Srp,
    MainNode::StrikethroughRetail,
    MainNode::StrikethroughWholesale,
    MainNode::Promotion,
    MainNode::Sizes,
    MainNode::Images,
    MainNode::Attachments,
    MainNode::Group,
    MainNode::Parameters,
    MainNode::Bundled,
];

/// A set of main nodes.
#[derive(Clone, Copy)]
struct NodeSet(u32);

impl NodeSet {
    const ALL: NodeSet = NodeSet(u32::MAX);
    const PRICED: u32 = MainNode::Price.bit()
        | MainNode::Srp.bit()
        | MainNode::StrikethroughRetail.bit()
        | MainNode::StrikethroughWholesale.bit();

    fn of(nodes: &[MainNode]) -> Self {
        NodeSet(nodes.iter().fold(0, |acc, n| acc | n.bit()))
    }

    fn has(self, n: MainNode) -> bool {
        self.0 & n.bit() != 0
    }

    fn needs_prices(self) -> bool {
        self.0 & Self::PRICED != 0
    }
}

const NS: &[u8] = b" xmlns:iof=\"http://www.iai-shop.com/developers/iof.phtml\" \
xmlns:iaiext=\"http://www.iai-shop.com/developers/iof/extensions.phtml\"";
const GENERATED_BY: &str = "iofd";
/// Write the scratch buffer out once it holds this much (whole-file renders).
const FLUSH_AT: usize = 64 << 10;

/// Everything a product writer needs besides the product.
struct Cx<'c, 'd> {
    profile: &'c RenderProfile,
    dicts: &'c DictIndex<'d>,
    pricing: Pricing,
    /// Decimal places prices are written with at least.
    places: u32,
}

impl<'c, 'd> Cx<'c, 'd> {
    fn full(profile: &'c RenderProfile, dicts: &'c DictIndex<'d>) -> Self {
        Cx {
            profile,
            dicts,
            pricing: Pricing::full(profile),
            places: 0,
        }
    }

    fn light(profile: &'c RenderProfile, dicts: &'c DictIndex<'d>) -> Self {
        Cx {
            profile,
            dicts,
            pricing: Pricing::light(profile),
            places: 2,
        }
    }

    /// This context for one product: its price rule chosen.
    fn for_product(&self, p: &ArchivedProduct) -> Cx<'c, 'd> {
        Cx {
            profile: self.profile,
            dicts: self.dicts,
            pricing: self
                .pricing
                .for_product(self.profile, catalog::subject(p), self.dicts),
            places: self.places,
        }
    }

    /// The profile's languages in order (the default language when the list is empty).
    fn langs(&self) -> impl Iterator<Item = &'c str> {
        let profile = self.profile;
        let default =
            std::iter::once(profile.language()).filter(move |_| profile.languages.is_empty());
        profile.languages.iter().map(String::as_str).chain(default)
    }

    /// One text for a single-valued name: the first profile language that has it, else any.
    fn pick<'t>(&self, texts: &'t ArchivedTexts) -> Option<&'t str> {
        self.langs()
            .find_map(|lang| text(texts, lang))
            .or_else(|| first_text(texts).map(|(_, t)| t))
    }
}

fn offer_open(o: &mut Vec<u8>, meta: &OfferMeta, extensions: bool) {
    o.raw(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<offer");
    o.raw(NS);
    o.raw(b" file_format=\"IOF\" version=\"3.0\"");
    o.attr(b"generated_by", GENERATED_BY);
    o.attr_datetime(b"generated", meta.generated);
    o.attr_datetime(b"expires", meta.expires);
    if extensions {
        o.raw(b" extensions=\"yes\"");
    }
    o.raw(b">\n");
}

fn products_open(o: &mut Vec<u8>, profile: &RenderProfile) {
    o.raw(b"<products");
    o.attr(b"language", profile.language());
    o.attr(b"currency", &profile.currency);
    o.raw(b">\n");
}

fn full_header(o: &mut Vec<u8>, profile: &RenderProfile, meta: &OfferMeta) {
    offer_open(o, meta, true);
    products_open(o, profile);
}

fn light_header(o: &mut Vec<u8>, profile: &RenderProfile, meta: &OfferMeta) {
    // light.xsd makes `extensions` optional and IdoSell's light.xml leaves it out.
    offer_open(o, meta, false);
    products_open(o, profile);
}

const FOOTER: &[u8] = b"</products>\n</offer>\n";

/// `<?xml ...?><offer ...><products ...>` of full.xml (and of change files).
pub fn write_full_header(
    w: &mut impl Write,
    profile: &RenderProfile,
    meta: &OfferMeta,
) -> io::Result<()> {
    with_scratch(|o| {
        full_header(o, profile, meta);
        w.write_all(o)
    })
}

/// Writes the whole `<product>` (nothing when the profile does not include it).
pub fn write_full_product(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &DictIndex,
    p: &ArchivedProduct,
) -> io::Result<()> {
    if !profile.includes(p, dicts) {
        return Ok(());
    }
    let cx = Cx::full(profile, dicts);
    with_scratch(|o| {
        full_product(o, &cx, p, NodeSet::ALL);
        w.write_all(o)
    })
}

/// For change files: `<product>` with all attributes and only the listed main nodes (in
/// the usual order, whatever the order of `nodes`). Membership is the caller's decision:
/// this does not consult [`RenderProfile::includes`]; a product that left the offer is written with
/// [`write_removed_product`]. A listed node the product does not have is not written.
pub fn write_change_product(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &DictIndex,
    p: &ArchivedProduct,
    nodes: &[MainNode],
) -> io::Result<()> {
    let cx = Cx::full(profile, dicts);
    with_scratch(|o| {
        full_product(o, &cx, p, NodeSet::of(nodes));
        w.write_all(o)
    })
}

/// For change files: `<product id=".." removed="yes"/>`.
pub fn write_removed_product(w: &mut impl Write, id: u64) -> io::Result<()> {
    with_scratch(|o| {
        o.raw(b"\t<product");
        o.attr_u64(b"id", id);
        o.raw(b" removed=\"yes\"/>\n");
        w.write_all(o)
    })
}

/// Writes one main node alone, exactly as it appears inside full.xml's `<product>`
/// (nothing if the product lacks it). [`MainNode::Attributes`] is written as an empty
/// `<product .../>` element. Change files use it to tell whether a changed node still
/// renders (node hashes come from the data, not from this).
pub fn write_main_node(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &DictIndex,
    p: &ArchivedProduct,
    node: MainNode,
) -> io::Result<()> {
    let cx = Cx::full(profile, dicts).for_product(p);
    with_scratch(|o| {
        if node == MainNode::Attributes {
            product_attributes(o, &cx, p);
            o.raw(b"/>\n");
        } else {
            let set = NodeSet(node.bit());
            let prices = product_prices(&cx, p, set);
            main_node(o, &cx, p, node, &prices);
        }
        w.write_all(o)
    })
}

/// `</products></offer>`.
pub fn write_full_footer(w: &mut impl Write) -> io::Result<()> {
    w.write_all(FOOTER)
}

/// `<?xml ...?><offer ...><products ...>` of light.xml.
pub fn write_light_header(
    w: &mut impl Write,
    profile: &RenderProfile,
    meta: &OfferMeta,
) -> io::Result<()> {
    with_scratch(|o| {
        light_header(o, profile, meta);
        w.write_all(o)
    })
}

/// Writes one light.xml `<product>` (nothing when the profile does not include it).
pub fn write_light_product(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &DictIndex,
    p: &ArchivedProduct,
) -> io::Result<()> {
    if !profile.includes(p, dicts) {
        return Ok(());
    }
    let cx = Cx::light(profile, dicts);
    with_scratch(|o| {
        light::light_product(o, &cx, p);
        w.write_all(o)
    })
}

/// `</products></offer>`.
pub fn write_light_footer(w: &mut impl Write) -> io::Result<()> {
    w.write_all(FOOTER)
}

/// Convenience: header + every included product + footer of full.xml.
pub fn full<'p>(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &DictIndex,
    meta: &OfferMeta,
    products: impl IntoIterator<Item = &'p ArchivedProduct>,
) -> io::Result<()> {
    let cx = Cx::full(profile, dicts);
    with_scratch(|o| {
        full_header(o, profile, meta);
        for p in products {
            if profile.includes(p, dicts) {
                full_product(o, &cx, p, NodeSet::ALL);
                if o.len() >= FLUSH_AT {
                    w.write_all(o)?;
                    o.clear();
                }
            }
        }
        o.raw(FOOTER);
        w.write_all(o)
    })
}

/// Convenience: header + every included product + footer of light.xml.
pub fn light<'p>(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &DictIndex,
    meta: &OfferMeta,
    products: impl IntoIterator<Item = &'p ArchivedProduct>,
) -> io::Result<()> {
    let cx = Cx::light(profile, dicts);
    with_scratch(|o| {
        light_header(o, profile, meta);
        for p in products {
            if profile.includes(p, dicts) {
                light::light_product(o, &cx, p);
                if o.len() >= FLUSH_AT {
                    w.write_all(o)?;
                    o.clear();
                }
            }
        }
        o.raw(FOOTER);
        w.write_all(o)
    })
}

// ---------------------------------------------------------------------------------------
// full.xml product

fn yes_no(b: bool) -> &'static str {
    if b {
        "y"
    } else {
        "n"
    }
}

/// `\t<product id=.. currency=.. ...` without the closing `>`.
fn product_attributes(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    o.raw(b"\t<product");
    o.attr_u64(b"id", p.id.to_native());
    o.attr(b"currency", &cx.profile.currency);
    if let Some(code) = p.code.as_ref() {
        o.attr(b"code_on_card", code.as_str());
    }
    o.attr(b"producer_code_standard", p.producer_code_standard.as_str());
    o.attr(b"type", p.kind.as_str());
    o.attr_decimal(b"vat", catalog::decimal(&p.vat), 1);
    // product@site is an xs:int.
    if let Ok(site) = i32::try_from(cx.profile.shop) {
        o.attr_u64(b"site", site as u64);
    }
}

fn product_prices(cx: &Cx, p: &ArchivedProduct, set: NodeSet) -> PriceNodes {
    if set.needs_prices() {
        PriceNodes::of(&cx.pricing, &p.prices, None)
    } else {
        PriceNodes::default()
    }
}

fn full_product(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct, set: NodeSet) {
    let cx = &cx.for_product(p);
    product_attributes(o, cx, p);
    o.raw(b">\n");
    let prices = product_prices(cx, p, set);
    for node in WRITE_ORDER {
        if set.has(node) {
            main_node(o, cx, p, node, &prices);
        }
    }
    o.raw(b"\t</product>\n");
}

fn main_node(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct, node: MainNode, prices: &PriceNodes) {
    let places = cx.places;
    match node {
        MainNode::Attributes => {}
        MainNode::Producer => refs::producer(o, cx, p),
        MainNode::Category => refs::category(o, cx, p),
        MainNode::Unit => refs::unit(o, cx, p),
        MainNode::Series => refs::series(o, cx, p),
        MainNode::Warranty => refs::warranty(o, cx, p),
        MainNode::Card => {
            if let Some(url) = p.card_url.as_ref() {
                o.raw(b"\t\t<card");
                o.attr(b"url", url.as_str());
                o.raw(b"/>\n");
            }
        }
        MainNode::Description => description::description(o, cx, p),
        MainNode::Price => {
            if let Some(price) = &prices.price {
                price_node(o, b"\t\t", b"price", price, places);
            }
        }
        MainNode::Srp => {
            if let Some(price) = &prices.srp {
                price_node(o, b"\t\t", b"srp", price, places);
            }
        }
        MainNode::StrikethroughRetail => {
            if let Some(price) = &prices.strikethrough_retail {
                price_node(o, b"\t\t", b"strikethrough_retail_price", price, places);
            }
        }
        MainNode::StrikethroughWholesale => {
            if let Some(price) = &prices.strikethrough_wholesale {
                price_node(o, b"\t\t", b"strikethrough_wholesale_price", price, places);
            }
        }
        MainNode::Promotion => price::promotion(o, cx, p),
        MainNode::Sizes => sizes::full_sizes(o, cx, p),
        MainNode::Images => media::images(o, p),
        MainNode::Parameters => parameters::parameters(o, cx, p),
        MainNode::Attachments => media::attachments(o, cx, p),
        MainNode::Group => bundles::group(o, cx, p),
        MainNode::Bundled => bundles::bundled(o, p),
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn full_header_and_footer_match_the_official_form() {
        let f = Fixture::new();
        let doc = render_full(&f, &retail_pl());
        assert!(doc.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<offer \
             xmlns:iof=\"http://www.iai-shop.com/developers/iof.phtml\" \
             xmlns:iaiext=\"http://www.iai-shop.com/developers/iof/extensions.phtml\" \
             file_format=\"IOF\" version=\"3.0\" generated_by=\"iofd\" \
             generated=\"2026-11-22 10:30:00\" expires=\"2026-11-23 10:30:00\" \
             extensions=\"yes\">\n<products language=\"pol\" currency=\"PLN\">\n"
        ));
        assert!(doc.ends_with("\t</product>\n</products>\n</offer>\n"));
        let light = render_light(&f, &wholesale_eur());
        assert!(light.contains("generated=\"2026-11-22 10:30:00\" expires=\"2026-11-23 10:30:00\">\n<products language=\"eng\" currency=\"EUR\">\n"));
        assert!(!light.contains("extensions="));
    }

    #[test]
    fn shops_and_stock_decide_membership() {
        let f = Fixture::new();
        // Shop 1 sees everything but 1006 (shop 2 only).
        assert_eq!(
            ids(&render_full(&f, &retail_pl())),
            [1001, 1002, 1003, 1004, 1005, 1007]
        );
        // Shop 2, in stock only: 1002 is shop 1's and out of stock anyway.
        assert_eq!(
            ids(&render_light(&f, &wholesale_eur())),
            [1001, 1003, 1004, 1005, 1006, 1007]
        );
        // Only-in-stock alone drops the out-of-stock variant.
        let mut in_stock = retail_pl();
        in_stock.only_in_stock = true;
        assert_eq!(
            ids(&render_full(&f, &in_stock)),
            [1001, 1003, 1004, 1005, 1007]
        );
        let dicts = DictIndex::new(f.dicts());
        assert!(!in_stock.includes(f.product(1002), &dicts));
        assert!(retail_pl().includes(f.product(1002), &dicts));
        // The per-product writer skips excluded products too.
        let mut out = Vec::new();
        write_full_product(&mut out, &in_stock, &dicts, f.product(1002)).expect("write");
        write_light_product(&mut out, &in_stock, &dicts, f.product(1002)).expect("write");
        assert!(out.is_empty());
    }

    #[test]
    fn per_product_writers_agree_with_the_whole_file() {
        let f = Fixture::new();
        for profile in [retail_pl(), wholesale_eur()] {
            let dicts = DictIndex::new(f.dicts());
            let mut full_parts = Vec::new();
            let mut light_parts = Vec::new();
            write_full_header(&mut full_parts, &profile, &meta()).expect("w");
            write_light_header(&mut light_parts, &profile, &meta()).expect("w");
            for p in f.products().iter() {
                write_full_product(&mut full_parts, &profile, &dicts, p).expect("w");
                write_light_product(&mut light_parts, &profile, &dicts, p).expect("w");
            }
            write_full_footer(&mut full_parts).expect("w");
            write_light_footer(&mut light_parts).expect("w");
            assert_eq!(
                String::from_utf8(full_parts).expect("utf-8"),
                render_full(&f, &profile)
            );
            assert_eq!(
                String::from_utf8(light_parts).expect("utf-8"),
                render_light(&f, &profile)
            );
        }
    }

    #[test]
    fn change_products_carry_only_the_listed_nodes() {
        let f = Fixture::new();
        let dicts = DictIndex::new(f.dicts());
        let profile = retail_pl();
        let shirt = f.product(1001);
        let mut out = Vec::new();
        // Listed out of order: written in the usual order.
        write_change_product(
            &mut out,
            &profile,
            &dicts,
            shirt,
            &[MainNode::Parameters, MainNode::Price, MainNode::Attributes],
        )
        .expect("w");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.starts_with("\t<product id=\"1001\" currency=\"PLN\""),
            "{text}"
        );
        assert!(
            text.contains(">\n\t\t<price gross=\"123\" net=\"100\"/>\n\t\t<parameters>\n"),
            "{text}"
        );
        assert!(text.ends_with("\t\t</parameters>\n\t</product>\n"));
        for absent in ["<producer", "<sizes", "<description", "<srp"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        let mut removed = Vec::new();
        write_removed_product(&mut removed, 42).expect("w");
        assert_eq!(removed, b"\t<product id=\"42\" removed=\"yes\"/>\n");

        // Each main node alone is exactly its slice of the full product.
        let doc = render_full(&f, &profile);
        let whole = product_xml(&doc, 1001);
        let mut joined = String::new();
        for node in MainNode::ALL {
            let mut one = Vec::new();
            write_main_node(&mut one, &profile, &dicts, shirt, node).expect("w");
            let one = String::from_utf8(one).expect("utf-8");
            // The shirt has every node but attachments and components.
            let lacks = matches!(node, MainNode::Attachments | MainNode::Bundled);
            assert_eq!(one.is_empty(), lacks, "{node:?}");
            if node == MainNode::Attributes {
                assert!(one.starts_with("\t<product id=\"1001\"") && one.ends_with("/>\n"));
            } else {
                assert!(whole.contains(&one), "{node:?}: {one}");
                joined.push_str(&one);
            }
        }
        assert_eq!(
            joined.len() + whole.find(">\n").expect("open") + 2,
            whole.len()
        );
        // A node the product lacks writes nothing.
        let mut none = Vec::new();
        write_main_node(
            &mut none,
            &profile,
            &dicts,
            f.product(1007),
            MainNode::Producer,
        )
        .expect("w");
        assert!(none.is_empty());
    }

    #[test]
    fn main_nodes_have_distinct_names() {
        let mut names: Vec<&str> = MainNode::ALL.iter().map(|n| n.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), MainNode::ALL.len());
        assert_eq!(
            MainNode::StrikethroughRetail.name(),
            "strikethrough_retail_price"
        );
        // Every node but the attributes has a place in the write order.
        for n in MainNode::ALL.into_iter().skip(1) {
            assert!(WRITE_ORDER.contains(&n), "{n:?}");
        }
    }
}
