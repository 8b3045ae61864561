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
//! - **Sizes in light.xml** keep their full.xml ids and codes (`uniw`, `33-uniw`), so light
//!   joins to full on `size@id` and `size@code`; IdoSell's own sample writes `0` there.
//! - **Numbers.** full.xml prices drop trailing zeros (`1563.6`), light.xml prices have two
//!   decimals (`1563.60`), VAT at least one (`23.0`), physical stock and bundle quantities
//!   three (`102.000`); `-1` (unlimited) stays `-1`.
//! - **Schema-constrained values.** `unit@name` must be an NCName and `promotion@start_date`
//!   an NMTOKEN: they are sanitized (see `xml::ncname`, `xml::nmtoken`). Parameter context ids
//!   the schema does not enumerate go to `iaiext:context_id`. Dictionary references that do
//!   not resolve (an unknown producer id, say) leave the node out: its name is required.

use std::io::{self, Write};

use jiff::civil::DateTime;
use rust_decimal::Decimal;

use super::dicts::{first_text, size_def, text, ArchivedTexts, Context, DictIndex};
use super::xml::{ncname, nmtoken, with_scratch, XmlBuf};
use crate::catalog::{
    self, round_money, ArchivedAttachmentEnable, ArchivedAttachmentType, ArchivedAttachmentVersion,
    ArchivedBundleType, ArchivedComponentChoice, ArchivedImage, ArchivedParameterKind,
    ArchivedPrice, ArchivedPrices, ArchivedProduct, ArchivedSize, ArchivedWarrantyType, MainNode,
    RenderProfile,
};

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
        | MainNode::StrikethroughWholesale.bit()
        | MainNode::Sizes.bit();

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

/// A net/gross pair ready to write.
type Pair = (Decimal, Decimal);

/// Currency conversion and discount, prepared once per render.
struct Pricing {
    rate: Decimal,
    /// Converting is only rounding: the rate is 1.
    rate_is_one: bool,
    /// light.xml's `(100 - discount) / 100`, when there is a discount.
    keep: Option<Decimal>,
    /// Decimal places prices are written with at least.
    places: u32,
}

impl Pricing {
    fn full(profile: &RenderProfile) -> Self {
        Pricing {
            rate: profile.rate,
            rate_is_one: profile.rate == Decimal::ONE,
            keep: None,
            places: 0,
        }
    }

    fn light(profile: &RenderProfile) -> Self {
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
    fn convert(&self, d: Decimal) -> Option<Decimal> {
        if self.rate_is_one {
            // d * 1 is d at the same scale; only the rounding remains.
            Some(round_money(d))
        } else {
            d.checked_mul(self.rate).map(round_money)
        }
    }

    /// What the partner pays: `RenderProfile::discounted` in light.xml, converted in full.xml.
    fn pay(&self, d: Decimal) -> Option<Decimal> {
        match self.keep {
            None => self.convert(d),
            Some(keep) => d
                .checked_mul(self.rate)
                .and_then(|x| x.checked_mul(keep))
                .map(round_money),
        }
    }

    fn converted(&self, p: &ArchivedPrice) -> Option<Pair> {
        Some((
            self.convert(catalog::decimal(&p.net))?,
            self.convert(catalog::decimal(&p.gross))?,
        ))
    }

    fn paid(&self, p: &ArchivedPrice) -> Option<Pair> {
        Some((
            self.pay(catalog::decimal(&p.net))?,
            self.pay(catalog::decimal(&p.gross))?,
        ))
    }
}

/// Everything a product writer needs besides the product.
struct Cx<'c, 'd> {
    profile: &'c RenderProfile,
    dicts: &'c DictIndex<'d>,
    pricing: Pricing,
}

impl<'c, 'd> Cx<'c, 'd> {
    fn full(profile: &'c RenderProfile, dicts: &'c DictIndex<'d>) -> Self {
        Cx {
            profile,
            dicts,
            pricing: Pricing::full(profile),
        }
    }

    fn light(profile: &'c RenderProfile, dicts: &'c DictIndex<'d>) -> Self {
        Cx {
            profile,
            dicts,
            pricing: Pricing::light(profile),
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

/// The four price nodes of a product or a size, resolved and converted.
#[derive(Default)]
struct PriceNodes {
    price: Option<Pair>,
    srp: Option<Pair>,
    strikethrough_retail: Option<Pair>,
    strikethrough_wholesale: Option<Pair>,
}

fn opt_price(p: &rkyv::option::ArchivedOption<ArchivedPrice>) -> Option<&ArchivedPrice> {
    p.as_ref()
}

impl PriceNodes {
    fn product(cx: &Cx, prices: &ArchivedPrices) -> Self {
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
    fn size(cx: &Cx, own: &ArchivedPrices, product: &ArchivedPrices, inherited: &Self) -> Self {
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

    fn write_all(&self, o: &mut Vec<u8>, indent: &[u8], places: u32) {
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

fn price_node(o: &mut Vec<u8>, indent: &[u8], tag: &[u8], (net, gross): Pair, places: u32) {
    o.raw(indent);
    o.raw(b"<");
    o.raw(tag);
    o.attr_decimal(b"gross", gross, places);
    o.attr_decimal(b"net", net, places);
    o.raw(b"/>\n");
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
    if !profile.includes(p) {
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
/// `<product .../>` element. Used to hash nodes canonically.
pub fn write_main_node(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &DictIndex,
    p: &ArchivedProduct,
    node: MainNode,
) -> io::Result<()> {
    let cx = Cx::full(profile, dicts);
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
    if !profile.includes(p) {
        return Ok(());
    }
    let cx = Cx::light(profile, dicts);
    with_scratch(|o| {
        light_product(o, &cx, p);
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
            if profile.includes(p) {
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
            if profile.includes(p) {
                light_product(o, &cx, p);
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
        PriceNodes::product(cx, &p.prices)
    } else {
        PriceNodes::default()
    }
}

fn full_product(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct, set: NodeSet) {
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
    let places = cx.pricing.places;
    match node {
        MainNode::Attributes => {}
        MainNode::Producer => producer(o, cx, p),
        MainNode::Category => category(o, cx, p),
        MainNode::Unit => unit(o, cx, p),
        MainNode::Series => series(o, cx, p),
        MainNode::Warranty => warranty(o, cx, p),
        MainNode::Card => {
            if let Some(url) = p.card_url.as_ref() {
                o.raw(b"\t\t<card");
                o.attr(b"url", url.as_str());
                o.raw(b"/>\n");
            }
        }
        MainNode::Description => description(o, cx, p),
        MainNode::Price => {
            if let Some(pair) = prices.price {
                price_node(o, b"\t\t", b"price", pair, places);
            }
        }
        MainNode::Srp => {
            if let Some(pair) = prices.srp {
                price_node(o, b"\t\t", b"srp", pair, places);
            }
        }
        MainNode::StrikethroughRetail => {
            if let Some(pair) = prices.strikethrough_retail {
                price_node(o, b"\t\t", b"strikethrough_retail_price", pair, places);
            }
        }
        MainNode::StrikethroughWholesale => {
            if let Some(pair) = prices.strikethrough_wholesale {
                price_node(o, b"\t\t", b"strikethrough_wholesale_price", pair, places);
            }
        }
        MainNode::Promotion => promotion(o, cx, p),
        MainNode::Sizes => full_sizes(o, cx, p, prices),
        MainNode::Images => images(o, p),
        MainNode::Parameters => parameters(o, cx, p),
        MainNode::Attachments => attachments(o, cx, p),
        MainNode::Group => group(o, cx, p),
        MainNode::Bundled => bundled(o, p),
    }
}

fn producer(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
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

fn category(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
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

fn unit(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
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

fn series(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
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

fn warranty(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
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

/// `<tag xml:lang="..">CDATA</tag>` lines for the profile's languages the texts have; with
/// `fallback`, the first language they have when none matches. Returns whether any was written.
fn lang_texts(
    o: &mut Vec<u8>,
    cx: &Cx,
    texts: &ArchivedTexts,
    indent: &[u8],
    tag: &[u8],
    fallback: bool,
) -> bool {
    let mut wrote = false;
    for lang in cx.langs() {
        if let Some(t) = text(texts, lang) {
            lang_text(o, indent, tag, lang, t);
            wrote = true;
        }
    }
    if !wrote && fallback {
        if let Some((lang, t)) = first_text(texts) {
            lang_text(o, indent, tag, lang, t);
            wrote = true;
        }
    }
    wrote
}

fn lang_text(o: &mut Vec<u8>, indent: &[u8], tag: &[u8], lang: &str, t: &str) {
    o.raw(indent);
    o.raw(b"<");
    o.raw(tag);
    o.raw(b" xml:lang=\"");
    o.escaped(lang);
    o.raw(b"\">");
    o.cdata(t);
    o.raw(b"</");
    o.raw(tag);
    o.raw(b">\n");
}

fn description(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let d = &p.description;
    let mark = o.len();
    o.raw(b"\t\t<description>\n");
    let body = o.len();
    lang_texts(o, cx, &d.name, b"\t\t\t", b"name", true);
    if let Some(version_name) = cx.pick(&d.version) {
        o.raw(b"\t\t\t<version");
        o.attr(b"name", version_name);
        o.raw(b">\n");
        lang_texts(o, cx, &d.version, b"\t\t\t\t", b"name", true);
        o.raw(b"\t\t\t</version>\n");
    }
    lang_texts(o, cx, &d.long_desc, b"\t\t\t", b"long_desc", false);
    lang_texts(o, cx, &d.short_desc, b"\t\t\t", b"short_desc", false);
    if o.len() == body {
        o.truncate(mark);
    } else {
        o.raw(b"\t\t</description>\n");
    }
}

fn promotion(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
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

/// The size's display name: from the size group in the profile's language, `one size` for
/// `uniw` outside any group, else the size id itself.
fn size_name<'x>(
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

fn full_sizes(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct, inherited: &PriceNodes) {
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
        PriceNodes::size(cx, &size.prices, &p.prices, inherited).write_all(
            o,
            b"\t\t\t\t",
            cx.pricing.places,
        );
        for s in size.stock.iter() {
            let quantity = catalog::decimal(&s.quantity);
            o.raw(b"\t\t\t\t<stock");
            o.attr_u64(b"id", u64::from(s.warehouse.to_native()));
            o.attr_decimal(b"quantity", quantity, 0);
            o.attr_decimal(b"available_stock_quantity", quantity, 0);
            let physical = s
                .physical
                .as_ref()
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

fn image_attrs(o: &mut Vec<u8>, image: &ArchivedImage) {
    o.attr(b"url", image.url.as_str());
    if let Some(md5) = image.md5.as_ref() {
        o.attr(b"hash", md5.as_str());
    }
    if let Some(changed) = image.changed.as_ref() {
        o.attr(b"changed", changed.as_str());
    }
    if let Some(width) = image.width.as_ref() {
        o.attr_u64(b"width", u64::from(width.to_native()));
    }
    if let Some(height) = image.height.as_ref() {
        o.attr_u64(b"height", u64::from(height.to_native()));
    }
}

fn images(o: &mut Vec<u8>, p: &ArchivedProduct) {
    let icons = [
        (&b"icon"[..], p.icons.icon.as_ref()),
        (&b"auction_icon"[..], p.icons.auction_icon.as_ref()),
        (&b"group_icon"[..], p.icons.group_icon.as_ref()),
    ];
    let has_icons = icons.iter().any(|(_, i)| i.is_some());
    if p.images.is_empty() && !has_icons {
        return;
    }
    o.raw(b"\t\t<images>\n");
    if !p.images.is_empty() {
        o.raw(b"\t\t\t<large>\n");
        for (i, image) in p.images.iter().enumerate() {
            o.raw(b"\t\t\t\t<image");
            o.attr_u64(b"iaiext:priority", i as u64 + 1);
            image_attrs(o, image);
            o.raw(b"/>\n");
        }
        o.raw(b"\t\t\t</large>\n");
    }
    if has_icons {
        o.raw(b"\t\t\t<icons>\n");
        for (tag, icon) in icons {
            if let Some(icon) = icon {
                o.raw(b"\t\t\t\t<");
                o.raw(tag);
                image_attrs(o, icon);
                o.raw(b"/>\n");
            }
        }
        o.raw(b"\t\t\t</icons>\n");
    }
    o.raw(b"\t\t</images>\n");
}

fn context_attr(o: &mut Vec<u8>, context: Context) {
    match context {
        Context::None => {}
        Context::Standard(c) => o.attr(b"context_id", c),
        Context::Extension(c) => o.attr(b"iaiext:context_id", c),
    }
}

fn parameters(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    if p.parameters.is_empty() {
        return;
    }
    let mark = o.len();
    o.raw(b"\t\t<parameters>\n");
    let body = o.len();
    for pp in p.parameters.iter() {
        let id = pp.id.to_native();
        let Some((def, context)) = cx.dicts.parameter_with_context(id) else {
            continue;
        };
        let Some(name) = cx.pick(&def.name) else {
            continue;
        };
        let section = matches!(def.kind, ArchivedParameterKind::Section);
        o.raw(if section {
            b"\t\t\t<parameter type=\"section\""
        } else {
            b"\t\t\t<parameter type=\"parameter\""
        });
        o.attr_u64(b"id", id);
        o.attr_u64(b"priority", u64::from(def.priority.to_native()));
        o.attr(b"distinction", yes_no(def.distinction));
        o.attr(b"group_distinction", yes_no(def.group_distinction));
        o.attr(b"hide", yes_no(def.hide));
        o.attr(b"auction_template_hide", yes_no(def.auction_template_hide));
        context_attr(o, context);
        o.attr(b"name", name);
        let open = o.len();
        o.raw(b">\n");
        let values_start = o.len();
        if !section {
            for (priority, value_id) in pp.values.iter().enumerate() {
                let value_id = value_id.to_native();
                let Some((value, context)) = cx.dicts.parameter_value(id, value_id) else {
                    continue;
                };
                let Some(value_name) = cx.pick(&value.name) else {
                    continue;
                };
                o.raw(b"\t\t\t\t<value");
                o.attr_u64(b"id", value_id);
                o.attr_u64(b"priority", priority as u64);
                context_attr(o, context);
                o.attr(b"name", value_name);
                o.raw(b"/>\n");
            }
        }
        if o.len() == values_start {
            o.truncate(open);
            o.raw(b"/>\n");
        } else {
            o.raw(b"\t\t\t</parameter>\n");
        }
    }
    if o.len() == body {
        o.truncate(mark);
    } else {
        o.raw(b"\t\t</parameters>\n");
    }
}

fn attachments(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    if p.attachments.is_empty() {
        return;
    }
    o.raw(b"\t\t<attachments>\n");
    for (i, a) in p.attachments.iter().enumerate() {
        o.raw(b"\t\t\t<file");
        o.attr(
            b"version",
            match a.version {
                ArchivedAttachmentVersion::Full => "full",
                ArchivedAttachmentVersion::Sample => "sample",
                ArchivedAttachmentVersion::Demo => "demo",
            },
        );
        o.attr(b"url", a.url.as_str());
        o.attr_u64(b"priority", i as u64 + 1);
        o.attr(
            b"attachment_file_type",
            match a.file_type {
                ArchivedAttachmentType::Image => "image",
                ArchivedAttachmentType::Audio => "audio",
                ArchivedAttachmentType::Video => "video",
                ArchivedAttachmentType::Doc => "doc",
                ArchivedAttachmentType::Document => "document",
                ArchivedAttachmentType::Other => "other",
            },
        );
        if let Some(ext) = a.extension.as_ref() {
            o.attr(b"attachment_file_extension", ext.as_str());
        }
        o.attr(
            b"enable",
            match a.enable {
                ArchivedAttachmentEnable::All => "all",
                ArchivedAttachmentEnable::OnlyLogged => "only_logged",
                ArchivedAttachmentEnable::Ordered => "ordered",
                ArchivedAttachmentEnable::Wholesaler => "wholesaler",
                // The schema's spelling.
                ArchivedAttachmentEnable::WholesalerOrOrdered => "wholesaler_or_orderer",
                ArchivedAttachmentEnable::WholesalerAndOrdered => "wholesaler_and_ordered",
            },
        );
        if let Some(log) = a.download_log.as_ref() {
            o.attr(b"download_log", yes_no(*log));
        }
        o.raw(b">\n");
        if !lang_texts(o, cx, &a.name, b"\t\t\t\t", b"name", true) {
            // <file> needs a name: the last segment of its URL.
            let url = a.url.as_str();
            let path = url.split(['?', '#']).next().unwrap_or(url);
            let file_name = path.rsplit('/').next().unwrap_or(path);
            lang_text(o, b"\t\t\t\t", b"name", cx.profile.language(), file_name);
        }
        let downloads = a.limit_downloads.as_ref().map(|x| x.to_native());
        let days = a.limit_days.as_ref().map(|x| x.to_native());
        if downloads.is_some() || days.is_some() {
            o.raw(b"\t\t\t\t<limitation");
            // xs:int limits.
            if let Some(n) = downloads {
                o.attr_u64(b"downloads", u64::from(n.min(i32::MAX as u32)));
            }
            if let Some(n) = days {
                o.attr_u64(b"days", u64::from(n.min(i32::MAX as u32)));
            }
            o.raw(b"/>\n");
        }
        o.raw(b"\t\t\t</file>\n");
    }
    o.raw(b"\t\t</attachments>\n");
}

fn group(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
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

fn bundled(o: &mut Vec<u8>, p: &ArchivedProduct) {
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

// ---------------------------------------------------------------------------------------
// light.xml product

fn light_product(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let places = cx.pricing.places;
    o.raw(b"\t<product");
    o.attr_u64(b"id", p.id.to_native());
    o.attr_decimal(b"vat", catalog::decimal(&p.vat), 1);
    o.raw(b">\n");
    let inherited = PriceNodes::product(cx, &p.prices);
    inherited.write_all(o, b"\t\t", places);
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
            PriceNodes::size(cx, &size.prices, &p.prices, &inherited).write_all(
                o,
                b"\t\t\t\t",
                places,
            );
            for s in size.stock.iter() {
                o.raw(b"\t\t\t\t<stock");
                o.attr_u64(b"id", u64::from(s.warehouse.to_native()));
                o.attr_decimal(b"quantity", catalog::decimal(&s.quantity), 0);
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
    use std::str::FromStr;

    use super::*;
    use crate::catalog::sample::{sample_dictionaries, sample_products};
    use crate::catalog::Format;
    use crate::catalog::{ArchivedDictionaries, Price};
    use crate::render::{Gateway, GatewayFile};
    use crate::xsd::{validate, Schema};

    type Products = rkyv::vec::ArchivedVec<ArchivedProduct>;

    struct Fixture {
        dicts: rkyv::util::AlignedVec,
        products: rkyv::util::AlignedVec,
    }

    impl Fixture {
        fn new() -> Self {
            Self::of(&sample_dictionaries(), &sample_products())
        }

        fn of(dicts: &crate::catalog::Dictionaries, products: &[crate::catalog::Product]) -> Self {
            Fixture {
                dicts: rkyv::to_bytes::<rkyv::rancor::Error>(dicts).expect("archive dictionaries"),
                products: rkyv::to_bytes::<rkyv::rancor::Error>(&products.to_vec())
                    .expect("archive products"),
            }
        }

        fn dicts(&self) -> &ArchivedDictionaries {
            rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&self.dicts)
                .expect("dictionaries")
        }

        fn products(&self) -> &Products {
            rkyv::access::<Products, rkyv::rancor::Error>(&self.products).expect("products")
        }

        fn product(&self, id: u64) -> &ArchivedProduct {
            self.products()
                .iter()
                .find(|p| p.id.to_native() == id)
                .expect("sample product")
        }
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    /// Retail, shop 1, Polish then English, PLN at rate 1, no filters.
    fn retail_pl() -> RenderProfile {
        RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip: false,
            languages: vec!["pol".into(), "eng".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: dec("5"),
            wholesale: false,
            only_in_stock: false,
        }
    }

    /// Wholesale, shop 2, English only, EUR at 0.25, 10 % off light, only in stock.
    fn wholesale_eur() -> RenderProfile {
        RenderProfile {
            shop: 2,
            format: Format::Iof30,
            gzip: true,
            languages: vec!["eng".into()],
            currency: "EUR".into(),
            rate: dec("0.25"),
            discount_percent: dec("10"),
            wholesale: true,
            only_in_stock: true,
        }
    }

    fn meta() -> OfferMeta {
        OfferMeta {
            generated: jiff::civil::date(2026, 11, 22).at(10, 30, 0, 0),
            expires: jiff::civil::date(2026, 11, 23).at(10, 30, 0, 0),
        }
    }

    fn render_full(f: &Fixture, profile: &RenderProfile) -> String {
        let dicts = DictIndex::new(f.dicts());
        let mut out = Vec::new();
        full(&mut out, profile, &dicts, &meta(), f.products().iter()).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    fn render_light(f: &Fixture, profile: &RenderProfile) -> String {
        let dicts = DictIndex::new(f.dicts());
        let mut out = Vec::new();
        light(&mut out, profile, &dicts, &meta(), f.products().iter()).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    /// The text of `<product id="id" ...>` through its closing tag.
    fn product_xml(doc: &str, id: u64) -> &str {
        let start = doc
            .find(&format!("<product id=\"{id}\""))
            .unwrap_or_else(|| panic!("product {id} missing"));
        // Bundle components are `<product>` too, but deeper: the product ends at depth 1.
        let end = doc[start..].find("\n\t</product>\n").expect("closed") + start + 1;
        &doc[start..end]
    }

    fn ids(doc: &str) -> Vec<u64> {
        doc.match_indices("\n\t<product id=\"")
            .map(|(i, m)| {
                let rest = &doc[i + m.len()..];
                rest[..rest.find('"').expect("quote")].parse().expect("id")
            })
            .collect()
    }

    fn assert_contains(haystack: &str, needle: &str) {
        assert!(
            haystack.contains(needle),
            "missing {needle:?} in:\n{haystack}"
        );
    }

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
        assert!(!in_stock.includes(f.product(1002)));
        assert!(retail_pl().includes(f.product(1002)));
        // The per-product writer skips excluded products too.
        let dicts = DictIndex::new(f.dicts());
        let mut out = Vec::new();
        write_full_product(&mut out, &in_stock, &dicts, f.product(1002)).expect("write");
        write_light_product(&mut out, &in_stock, &dicts, f.product(1002)).expect("write");
        assert!(out.is_empty());
    }

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

    #[test]
    fn texts_use_profile_languages_in_order_with_cdata() {
        let f = Fixture::new();
        let doc = render_full(&f, &retail_pl());
        let shirt = product_xml(&doc, 1001);
        assert_contains(
            shirt,
            "\t\t\t<name xml:lang=\"pol\"><![CDATA[Koszula męska „Zażółć” <b>&</b>]]></name>\n\
             \t\t\t<name xml:lang=\"eng\"><![CDATA[Men's shirt \"Classic\" & more]]></name>\n\
             \t\t\t<version name=\"niebieski \\ bawełna\">\n\
             \t\t\t\t<name xml:lang=\"pol\"><![CDATA[niebieski \\ bawełna]]></name>\n\
             \t\t\t\t<name xml:lang=\"eng\"><![CDATA[blue \\ cotton]]></name>\n\
             \t\t\t</version>\n",
        );
        // `]]>` inside a text is split across two CDATA sections.
        assert_contains(
            shirt,
            "<long_desc xml:lang=\"pol\"><![CDATA[<p>Opis z <b>HTML</b> &amp; znakami ąęł, a także ]]]]><![CDATA[> w środku.</p>]]></long_desc>",
        );
        let eng = render_full(&f, &wholesale_eur());
        let shirt = product_xml(&eng, 1001);
        assert!(!shirt.contains("xml:lang=\"pol\""), "{shirt}");
        assert_contains(shirt, "<version name=\"blue \\ cotton\">");
        // A name in none of the profile's languages falls back to the one the product has.
        assert_contains(
            product_xml(&eng, 1007),
            "<name xml:lang=\"ger\"><![CDATA[Montage-Service für Hemden]]></name>",
        );
        // ... but descriptions do not; a version only in Polish keeps its name.
        assert!(!product_xml(&eng, 1001).contains("Bawełniana"));
    }

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

    #[test]
    fn images_parameters_attachments_group_and_bundles() {
        let f = Fixture::new();
        let doc = render_full(&f, &retail_pl());
        let shirt = product_xml(&doc, 1001);
        assert_contains(
            shirt,
            "\t\t\t\t<image iaiext:priority=\"2\" url=\"https://hurtownia.example/img/1001_2.jpg?v=2&amp;size=large\" \
             hash=\"4c255061ccde0f7c04d21e79dc288874\" changed=\"2026-10-01 12:00:00\" width=\"1200\" height=\"800\"/>\n",
        );
        assert_contains(
            shirt,
            "\t\t\t\t<group_icon url=\"https://hurtownia.example/icons/group/1001.jpg\"/>\n\t\t\t</icons>\n",
        );
        assert_contains(
            shirt,
            "\t\t<parameters>\n\
             \t\t\t<parameter type=\"section\" id=\"10\" priority=\"0\" distinction=\"n\" group_distinction=\"n\" hide=\"n\" auction_template_hide=\"n\" name=\"Sekcja główna\"/>\n\
             \t\t\t<parameter type=\"parameter\" id=\"11\" priority=\"1\" distinction=\"n\" group_distinction=\"y\" hide=\"n\" auction_template_hide=\"n\" context_id=\"CONTEXT_COLOR\" name=\"Kolor\">\n\
             \t\t\t\t<value id=\"111\" priority=\"0\" name=\"niebieski\"/>\n\
             \t\t\t</parameter>\n",
        );
        assert_contains(
            shirt,
            "<value id=\"131\" priority=\"0\" context_id=\"CONTEXT_SEX_MAN\" name=\"mężczyzna\"/>",
        );
        assert_contains(
            shirt,
            "\t\t<group id=\"5\" first_product_id=\"1001\">\n\
             \t\t\t<group_by_parameter id=\"efac1b1fe38afd9a307b32a0c9f93ba1\">\n\
             \t\t\t\t<name xml:lang=\"pol\"><![CDATA[Kolor \\ Materiał]]></name>\n",
        );
        // Order of the official example: images, attachments, group, parameters, bundled.
        let at = |s: &str| shirt.find(s).unwrap_or_else(|| panic!("{s}"));
        assert!(at("<sizes") < at("<images>"));
        assert!(at("<images>") < at("<group "));
        assert!(at("<group ") < at("<parameters>"));

        let ebook = product_xml(&doc, 1003);
        assert_contains(ebook, "iaiext:context_id=\"CONTEXT_CONNECTOR\" name=\"Złącze\">\n\t\t\t\t<value id=\"141\" priority=\"0\" name=\"USB-C &lt;3.1&gt;\"/>");
        assert_contains(
            ebook,
            "\t\t\t<file version=\"full\" url=\"https://hurtownia.example/files/guide.pdf?a=1&amp;b=2\" priority=\"1\" \
             attachment_file_type=\"doc\" attachment_file_extension=\"pdf\" enable=\"ordered\" download_log=\"y\">\n\
             \t\t\t\t<name xml:lang=\"pol\"><![CDATA[Poradnik – pełna wersja]]></name>\n\
             \t\t\t\t<name xml:lang=\"eng\"><![CDATA[Guide, full version]]></name>\n\
             \t\t\t\t<limitation downloads=\"3\" days=\"7\"/>\n\t\t\t</file>\n",
        );
        assert_contains(ebook, "enable=\"wholesaler_or_orderer\">\n\t\t\t\t<name xml:lang=\"eng\"><![CDATA[Demo video]]></name>\n\t\t\t\t<limitation days=\"12\"/>");
        assert!(at("<images>") < at("<group "));

        assert_contains(
            product_xml(&doc, 1004),
            "\t\t<bundled type=\"specified\">\n\
             \t\t\t<product id=\"1001\" quantity=\"1.000\" type=\"client_chooses_defined_size\">\n\
             \t\t\t\t<sizes>\n\t\t\t\t\t<size id=\"2\"/>\n\t\t\t\t</sizes>\n\t\t\t</product>\n\
             \t\t\t<product id=\"1003\" quantity=\"2.000\" type=\"client_chooses_variant\"/>\n\
             \t\t</bundled>\n",
        );
        assert_contains(
            product_xml(&doc, 1005),
            "<product id=\"1002\" quantity=\"1.500\" type=\"client_chooses_defined_size_as_separate_items\">",
        );
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

    fn gateway_file(kind: &str, md5: bool) -> GatewayFile {
        GatewayFile {
            url: format!("https://feeds.example/feeds/p1/tok/1/{kind}.xml?a=1&b=2"),
            md5: md5.then(|| "98b7e54f96335e632524ab267c11b8c3".to_string()),
            changed: Some(jiff::civil::date(2026, 11, 22).at(3, 0, 0, 0)),
        }
    }

    fn gateway_doc(
        f: &Fixture,
        shop: u32,
        others: Vec<(&'static str, GatewayFile)>,
    ) -> io::Result<String> {
        let dicts = DictIndex::new(f.dicts());
        let g = Gateway {
            shop: dicts.shop(shop).expect("shop"),
            generated: meta().generated,
            expires: jiff::civil::date(2026, 11, 29).at(10, 30, 0, 0),
            full: gateway_file("full", true),
            changes: vec![
                gateway_file("full_change2026-11-22T10-00-00", true),
                gateway_file("full_change2026-11-22T09-30-00", true),
            ],
            light: GatewayFile {
                url: "https://feeds.example/light.xml".into(),
                md5: None,
                changed: None,
            },
            categories: gateway_file("categories", true),
            sizes: gateway_file("sizes", true),
            others,
        };
        let mut out = Vec::new();
        crate::render::write_gateway(&mut out, &g)?;
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn gateway_meta_and_files() {
        let f = Fixture::new();
        let doc = gateway_doc(&f, 1, vec![("producers", gateway_file("producers", true))])
            .expect("gateway");
        assert_contains(
            &doc,
            "<provider_description file_format=\"IOF\" version=\"3.0\" generated_by=\"iofd\" generated=\"2026-11-22 10:30:00\">\n\t<meta>\n\
             \t\t<long_name><![CDATA[Hurtownia Zazolc Gesla Jazn]]></long_name>\n\
             \t\t<short_name><![CDATA[hurtownia]]></short_name>\n\
             \t\t<showcase_image url=\"https://hurtownia.example/logo.png\"/>\n",
        );
        assert_contains(
            &doc,
            "\t\t\t<street><![CDATA[ul. Świętokrzyska 12]]></street>\n",
        );
        assert_contains(
            &doc,
            "\t\t<time>\n\t\t\t<offer created=\"2026-11-22 10:30:00\"/>\n\t\t\t<offer expires=\"2026-11-29 10:30:00\"/>\n\t\t</time>\n",
        );
        assert_contains(
            &doc,
            "\t<full url=\"https://feeds.example/feeds/p1/tok/1/full.xml?a=1&amp;b=2\" hash=\"98b7e54f96335e632524ab267c11b8c3\" changed=\"2026-11-22 03:00:00\">\n\t\t<changes>\n\t\t\t<change url=\"https://feeds.example/feeds/p1/tok/1/full_change2026-11-22T10-00-00.xml",
        );
        assert_contains(&doc, "\t<light url=\"https://feeds.example/light.xml\"/>\n");
        assert_contains(&doc, "\t<producers url=");
        let doc2 = gateway_doc(&f, 2, Vec::new()).expect("gateway");
        assert_contains(
            &doc2,
            "<long_name><![CDATA[Sklep Lodz Co B2B]]></long_name>",
        );
        assert_contains(&doc2, "<short_name><![CDATA[sklep_lodz]]></short_name>");
        assert_contains(&doc2, "<showcase_image/>");
        assert_contains(&doc2, "<tel><![CDATA[]]></tel>");

        let err = gateway_doc(&f, 1, vec![("bogus", gateway_file("x", true))]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let twice = vec![
            ("units", gateway_file("units", true)),
            ("units", gateway_file("units", true)),
        ];
        assert!(gateway_doc(&f, 1, twice).is_err());
    }

    #[test]
    fn documents_validate_against_the_official_schemas() {
        let f = Fixture::new();
        for profile in [retail_pl(), wholesale_eur()] {
            let full_doc = render_full(&f, &profile);
            if let Err(e) = validate(Schema::Full, full_doc.as_bytes()) {
                panic!("full.xml for shop {}: {e}\n{full_doc}", profile.shop);
            }
            let light_doc = render_light(&f, &profile);
            if let Err(e) = validate(Schema::Light, light_doc.as_bytes()) {
                panic!("light.xml for shop {}: {e}\n{light_doc}", profile.shop);
            }
            // A change file: a few products with some nodes, one removed.
            let dicts = DictIndex::new(f.dicts());
            let mut change = Vec::new();
            write_full_header(&mut change, &profile, &meta()).expect("w");
            write_change_product(
                &mut change,
                &profile,
                &dicts,
                f.product(1001),
                &[MainNode::Sizes, MainNode::Parameters],
            )
            .expect("w");
            write_change_product(
                &mut change,
                &profile,
                &dicts,
                f.product(1003),
                &MainNode::ALL,
            )
            .expect("w");
            write_change_product(&mut change, &profile, &dicts, f.product(1005), &[]).expect("w");
            write_removed_product(&mut change, 999).expect("w");
            write_full_footer(&mut change).expect("w");
            if let Err(e) = validate(Schema::FullChange, &change) {
                panic!("change file for shop {}: {e}", profile.shop);
            }
        }
        let others = vec![
            ("producers", gateway_file("producers", true)),
            ("units", gateway_file("units", true)),
            ("parameters", gateway_file("parameters", true)),
            ("stocks", gateway_file("stocks", true)),
            ("series", gateway_file("series", true)),
            ("warranties", gateway_file("warranties", true)),
        ];
        for (shop, others) in [(1, others), (2, Vec::new())] {
            let doc = gateway_doc(&f, shop, others).expect("gateway");
            if let Err(e) = validate(Schema::Gateway, doc.as_bytes()) {
                panic!("gateway for shop {shop}: {e}\n{doc}");
            }
        }
    }

    #[test]
    fn hostile_content_still_validates() {
        let mut dicts = sample_dictionaries();
        dicts.units[0].name = [("pol".to_string(), "2 pack: duży".to_string())].into();
        dicts.producers[0].name = "A\u{1}B ]]> \u{FFFF}\"'<&>".into();
        dicts.parameters[1].context = Some(" CONTEXT_COLOR ".into());
        let mut products = sample_products();
        let p = &mut products[0];
        p.description.name = [(
            "pol".to_string(),
            "bell\u{7} tab\t ]]]]>> \u{FFFE}end".to_string(),
        )]
        .into();
        p.description.long_desc =
            [("pol".to_string(), "<![CDATA[nested]]> \u{0}".to_string())].into();
        p.category = Some(999_999);
        p.series = Some(999_999);
        // A parameter the dictionary does not have: left out.
        p.parameters.push(crate::catalog::ProductParameter {
            id: 424_242,
            values: vec![1],
        });
        if let Some(promo) = &mut p.promotion {
            promo.start_date = Some("   ".into());
            promo.ending_date = Some("1 grudnia 2026 r.".into());
        }
        p.sizes[0].stock[1].location = Some("a\nb\rc\td".into());
        p.images[0].url = "https://x.example/a b?c=\"d\"&e=<f>".into();
        let f = Fixture::of(&dicts, &products);
        for profile in [retail_pl(), wholesale_eur()] {
            let doc = render_full(&f, &profile);
            if let Err(e) = validate(Schema::Full, doc.as_bytes()) {
                panic!("{e}\n{doc}");
            }
            let doc = render_light(&f, &profile);
            if let Err(e) = validate(Schema::Light, doc.as_bytes()) {
                panic!("{e}\n{doc}");
            }
        }
        let doc = render_full(&f, &retail_pl());
        let shirt = product_xml(&doc, 1001);
        assert_contains(
            shirt,
            "<producer id=\"1\" name=\"AB ]]&gt; &quot;&apos;&lt;&amp;&gt;\"/>",
        );
        assert_contains(shirt, "<unit id=\"1\" name=\"_2_pack_duży\"/>");
        assert_contains(shirt, "<![CDATA[bell tab\t ]]]]]]><![CDATA[>> end]]>");
        assert_contains(shirt, "<![CDATA[<![CDATA[nested]]]]><![CDATA[> ]]>");
        assert_contains(
            shirt,
            "<promotion name=\"Wyprzedaż zimowa &amp; więcej\" ending_date=\"1TgrudniaT2026Tr.\">",
        );
        assert_contains(shirt, "location_text_id=\"a&#10;b&#13;c&#9;d\"");
        assert_contains(shirt, "context_id=\"CONTEXT_COLOR\" name=\"Kolor\"");
        assert!(!shirt.contains("<category"), "unknown category left out");
        assert!(!shirt.contains("<series"), "unknown series left out");
    }
}
