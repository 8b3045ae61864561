//! The CSV offer: `full.csv` (everything a partner needs to list a product) and `light.csv`
//! (the partner's prices and stock), one row per product size.
//!
//! UTF-8 without BOM, RFC 4180 quoting (only where needed), CRLF line ends, a header row.
//! Prices come from the formula the XML offer uses ([`super::pricing`]): full converts to the
//! partner's currency, light also applies the partner's discount, wholesale partners get
//! wholesale prices. `docs/csv.md` documents every column.

// Money, VAT and quantities come from outside: every operation on them is checked.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::{HashMap, HashSet};
use std::fmt::{Display, Write as _};
use std::io::Write;

use rust_decimal::Decimal;

use super::pricing::{PriceNode, Pricing};
use super::reference::{localized, ArchivedTexts};
use super::RenderError;
use crate::catalog::rules::{Parents, StockRule};
use crate::catalog::{
    self, ArchivedDictionaries, ArchivedProduct, ArchivedSize, Price, RenderProfile,
};

/// The columns of `full.csv`, in order.
pub const FULL_COLUMNS: &[&str] = &[
    "product_id",
    "type",
    "code",
    "producer_code_standard",
    "size_id",
    "size_name",
    "size_code",
    "code_producer",
    "code_external",
    "name",
    "short_desc",
    "long_desc",
    "producer_id",
    "producer",
    "category_id",
    "category",
    "unit_id",
    "unit",
    "series",
    "warranty",
    "vat",
    "currency",
    "price_net",
    "price_gross",
    "srp_net",
    "srp_gross",
    "stock_total",
    "weight",
    "weight_net",
    "card_url",
    "image_urls",
    "shops",
];

/// The fixed columns of `light.csv`; one `stock_<warehouse id>` column per warehouse of the
/// dictionary follows them.
pub const LIGHT_COLUMNS: &[&str] = &[
    "product_id",
    "size_id",
    "size_code",
    "code_producer",
    "code_external",
    "weight",
    "vat",
    "currency",
    "price_net",
    "price_gross",
    "srp_net",
    "srp_gross",
    "stock_total",
];

/// Render `full.csv`: every product the profile may see, one row per size, texts in the
/// profile's first language (falling back to its other languages, then to any), prices
/// converted to the profile's currency without discount.
pub fn write_full_csv<'p>(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &ArchivedDictionaries,
    products: impl IntoIterator<Item = &'p ArchivedProduct>,
) -> Result<(), RenderError> {
    let pricing = Pricing::full(profile);
    let tree = tree(profile, dicts);
    let mut out = Out::new(w);
    out.header(FULL_COLUMNS.iter().copied())?;
    let mut names = Names::new(dicts, &profile.languages);
    for p in products.into_iter().filter(|p| profile.includes(p, &tree)) {
        let pricing = pricing.for_product(profile, catalog::subject(p), &tree);
        let id = p.id.to_native();
        let desc = &p.description;
        let name = localized(&desc.name, &profile.languages);
        let short_desc = localized(&desc.short_desc, &profile.languages);
        let long_desc = localized(&desc.long_desc, &profile.languages);
        let producer = p.producer.as_ref().map(|id| id.to_native());
        let producer_name = producer.map_or("", |id| names.producer(id));
        let category = p.category.as_ref().map(|id| id.to_native());
        let unit = p.unit.as_ref().map(|id| id.to_native());
        let unit_name = unit.map_or("", |id| names.unit(id));
        let series_name = p
            .series
            .as_ref()
            .map_or("", |id| names.series(id.to_native()));
        let warranty_name = p
            .warranty
            .as_ref()
            .map_or("", |id| names.warranty(id.to_native()));
        let images = image_urls(p);
        let shops = join_ids(p.shops.iter().map(|s| s.to_native()));
        let vat = catalog::decimal(&p.vat).normalize();
        for size in p.sizes.iter() {
            let (price, srp, stock) = size_values(&pricing, &profile.rules.stock, p, size)?;
            out.display(id)?;
            out.text(p.kind.as_str())?;
            out.text(p.code.as_ref().map_or("", |c| c.as_str()))?;
            out.text(p.producer_code_standard.as_str())?;
            out.text(&size.id)?;
            out.text(names.size(p, size))?;
            out.text(&size.code)?;
            out.text(opt_str(&size.code_producer))?;
            out.text(opt_str(&size.code_external))?;
            out.text(name)?;
            out.text(short_desc)?;
            out.text(long_desc)?;
            out.opt(producer)?;
            out.text(producer_name)?;
            out.opt(category)?;
            out.text(category.map_or("", |id| names.category_path(id)))?;
            out.opt(unit)?;
            out.text(unit_name)?;
            out.text(series_name)?;
            out.text(warranty_name)?;
            out.display(vat)?;
            out.text(&profile.currency)?;
            out.price(price.as_ref())?;
            out.price(srp.as_ref())?;
            out.display(stock)?;
            out.opt(size.weight.as_ref().map(|g| g.to_native()))?;
            out.opt(size.weight_net.as_ref().map(|g| g.to_native()))?;
            out.text(opt_str(&p.card_url))?;
            out.text(&images)?;
            out.text(&shops)?;
            out.end()?;
        }
    }
    out.finish()
}

/// Render `light.csv`: the same products and sizes as `full.csv`, with the partner's prices
/// (converted and discounted), the suggested retail price (converted, never discounted: it is
/// the end customer's price), the total stock and one `stock_<id>` column per warehouse in the
/// dictionary.
pub fn write_light_csv<'p>(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &ArchivedDictionaries,
    products: impl IntoIterator<Item = &'p ArchivedProduct>,
) -> Result<(), RenderError> {
    let stock_rule = &profile.rules.stock;
    let warehouses: Vec<u32> = dicts
        .warehouses
        .iter()
        .map(|w| w.id.to_native())
        .filter(|w| stock_rule.shows(*w))
        .collect();
    let pricing = Pricing::light(profile);
    let tree = tree(profile, dicts);
    let mut out = Out::new(w);
    let stock_columns: Vec<String> = warehouses.iter().map(|id| format!("stock_{id}")).collect();
    out.header(
        LIGHT_COLUMNS
            .iter()
            .copied()
            .chain(stock_columns.iter().map(String::as_str)),
    )?;
    for p in products.into_iter().filter(|p| profile.includes(p, &tree)) {
        let pricing = pricing.for_product(profile, catalog::subject(p), &tree);
        let id = p.id.to_native();
        let vat = catalog::decimal(&p.vat).normalize();
        for size in p.sizes.iter() {
            let (price, srp, stock) = size_values(&pricing, &profile.rules.stock, p, size)?;
            out.display(id)?;
            out.text(&size.id)?;
            out.text(&size.code)?;
            out.text(opt_str(&size.code_producer))?;
            out.text(opt_str(&size.code_external))?;
            out.opt(size.weight.as_ref().map(|g| g.to_native()))?;
            out.display(vat)?;
            out.text(&profile.currency)?;
            out.price(price.as_ref())?;
            out.price(srp.as_ref())?;
            out.display(stock)?;
            for &warehouse in &warehouses {
                let level = size
                    .stock
                    .iter()
                    .find(|s| s.warehouse.to_native() == warehouse)
                    .map(|s| stock_rule.shown(catalog::decimal(&s.quantity)).normalize());
                out.opt(level)?;
            }
            out.end()?;
        }
    }
    out.finish()
}

/// The category tree when the profile's rules read it (an empty one otherwise: cheaper).
fn tree(profile: &RenderProfile, dicts: &ArchivedDictionaries) -> Parents {
    match profile.rules.reads_categories() {
        true => Parents::of(dicts),
        false => Parents::default(),
    }
}

/// The size's shown stock summed over shown warehouses; -1 (unlimited) when any of them is
/// unlimited; `None` when the sum overflows.
fn stock_total(rule: &StockRule, size: &ArchivedSize) -> Option<Decimal> {
    let mut total = Decimal::ZERO;
    for level in size
        .stock
        .iter()
        .filter(|l| rule.shows(l.warehouse.to_native()))
    {
        let q = rule.shown(catalog::decimal(&level.quantity));
        if q == Decimal::NEGATIVE_ONE {
            return Some(Decimal::NEGATIVE_ONE);
        }
        total = total.checked_add(q)?;
    }
    Some(total.normalize())
}

/// The error for a `column` of a size that cannot be computed exactly.
/// A size's price, suggested retail price and total stock, as both CSV files show them.
fn size_values(
    pricing: &Pricing,
    stock: &StockRule,
    p: &ArchivedProduct,
    size: &ArchivedSize,
) -> Result<(Option<Price>, Option<Price>, Decimal), RenderError> {
    let overflow = |column| overflow(p.id.to_native(), size, column);
    let [price, srp] =
        [(PriceNode::Price, "price"), (PriceNode::Srp, "srp")].map(|(node, column)| {
            pricing
                .quote(node, &p.prices, Some(&size.prices))
                .or_overflow(|| overflow(column))
        });
    let (price, srp) = (price?, srp?);
    let stock = stock_total(stock, size).ok_or_else(|| overflow("stock"))?;
    Ok((price, srp, stock))
}

fn overflow(product: u64, size: &ArchivedSize, column: &'static str) -> RenderError {
    RenderError::Overflow {
        product,
        size: size.id.to_string(),
        column,
    }
}

/// Image URLs separated by single spaces; a space inside a URL is percent-encoded so the
/// list splits back unambiguously.
fn image_urls(p: &ArchivedProduct) -> String {
    let mut s = String::new();
    for (i, image) in p.images.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        if image.url.contains(' ') {
            s.push_str(&image.url.replace(' ', "%20"));
        } else {
            s.push_str(&image.url);
        }
    }
    s
}

fn join_ids(ids: impl Iterator<Item = u32>) -> String {
    let mut s = String::new();
    for (i, id) in ids.enumerate() {
        if i > 0 {
            s.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(s, "{id}");
    }
    s
}

fn opt_str(s: &rkyv::option::ArchivedOption<rkyv::string::ArchivedString>) -> &str {
    s.as_ref().map_or("", |s| s.as_str())
}

/// An entry of an id-sorted dictionary list, by binary search.
fn find<T>(list: &[T], id: u64, key: impl Fn(&T) -> u64) -> Option<&T> {
    list.binary_search_by_key(&id, key).ok().map(|i| &list[i])
}

/// Dictionary names in the profile's languages; category paths are cached because many
/// products share a category and each path walks the tree.
struct Names<'d> {
    dicts: &'d ArchivedDictionaries,
    languages: &'d [String],
    paths: HashMap<u64, String>,
}

impl<'d> Names<'d> {
    fn new(dicts: &'d ArchivedDictionaries, languages: &'d [String]) -> Names<'d> {
        Names {
            dicts,
            languages,
            paths: HashMap::new(),
        }
    }

    fn text(&self, texts: &'d ArchivedTexts) -> &'d str {
        localized(texts, self.languages)
    }

    fn producer(&self, id: u64) -> &'d str {
        find(&self.dicts.producers, id, |x| x.id.to_native()).map_or("", |x| x.name.as_str())
    }

    fn unit(&self, id: u64) -> &'d str {
        find(&self.dicts.units, id, |x| x.id.to_native()).map_or("", |x| self.text(&x.name))
    }

    fn series(&self, id: u64) -> &'d str {
        find(&self.dicts.series, id, |x| x.id.to_native()).map_or("", |x| self.text(&x.name))
    }

    fn warranty(&self, id: u64) -> &'d str {
        find(&self.dicts.warranties, id, |x| x.id.to_native()).map_or("", |x| self.text(&x.name))
    }

    /// The size's name in the product's size group; empty when the group does not define it.
    fn size(&self, p: &ArchivedProduct, size: &ArchivedSize) -> &'d str {
        let Some(group) = p.size_group.as_ref() else {
            return "";
        };
        find(&self.dicts.size_groups, group.to_native(), |g| {
            g.id.to_native()
        })
        .and_then(|g| g.sizes.iter().find(|s| s.id == size.id))
        .map_or("", |s| self.text(&s.name))
    }

    /// `Parent/Child/Leaf`; empty for an unknown category. A parent cycle ends the path at
    /// the first repeated category.
    fn category_path(&mut self, id: u64) -> &str {
        let dicts = self.dicts;
        let languages = self.languages;
        self.paths.entry(id).or_insert_with(|| {
            let mut names = Vec::new();
            let mut seen = HashSet::new();
            let mut next = Some(id);
            while let Some(id) = next {
                if !seen.insert(id) {
                    break;
                }
                let Some(c) = find(&dicts.categories, id, |c| c.id.to_native()) else {
                    break;
                };
                names.push(localized(&c.name, languages));
                next = c.parent.as_ref().map(|p| p.to_native());
            }
            names.reverse();
            names.join("/")
        })
    }
}

/// The CSV writer with a reusable buffer for numbers.
struct Out<W: Write> {
    csv: ::csv::Writer<W>,
    buf: String,
}

impl<W: Write> Out<W> {
    fn new(w: W) -> Out<W> {
        let csv = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .quote_style(::csv::QuoteStyle::Necessary)
            .from_writer(w);
        Out {
            csv,
            buf: String::new(),
        }
    }

    fn header<'a>(&mut self, columns: impl Iterator<Item = &'a str>) -> Result<(), RenderError> {
        self.csv.write_record(columns)?;
        Ok(())
    }

    fn text(&mut self, s: &str) -> Result<(), RenderError> {
        self.csv.write_field(s)?;
        Ok(())
    }

    fn display(&mut self, v: impl Display) -> Result<(), RenderError> {
        self.buf.clear();
        // Writing to a String cannot fail.
        let _ = write!(self.buf, "{v}");
        self.csv.write_field(&self.buf)?;
        Ok(())
    }

    fn opt(&mut self, v: Option<impl Display>) -> Result<(), RenderError> {
        match v {
            Some(v) => self.display(v),
            None => self.text(""),
        }
    }

    /// Net and gross, with exactly two decimals; two empty cells when there is no price.
    fn price(&mut self, p: Option<&Price>) -> Result<(), RenderError> {
        match p {
            Some(p) => {
                self.display(format_args!("{:.2}", p.net))?;
                self.display(format_args!("{:.2}", p.gross))
            }
            None => {
                self.text("")?;
                self.text("")
            }
        }
    }

    fn end(&mut self) -> Result<(), RenderError> {
        self.csv.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn finish(mut self) -> Result<(), RenderError> {
        self.csv.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Format;
    use crate::catalog::{Dictionaries, Product, Size, StockLevel};
    use std::str::FromStr;

    fn profile() -> RenderProfile {
        RenderProfile {
            shop: 1,
            format: Format::Csv,
            gzip: false,
            languages: vec!["pol".into(), "eng".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: Decimal::ZERO,
            wholesale: false,
            only_in_stock: false,
            rules: Default::default(),
        }
    }

    fn product(v: serde_json::Value) -> Product {
        let mut p: Product = serde_json::from_value(v).unwrap();
        p.normalize().unwrap();
        p
    }

    fn dicts() -> Dictionaries {
        serde_json::from_value(serde_json::json!({
            "categories": [
                {"id": 1, "name": {"pol": "Obuwie", "eng": "Shoes"}},
                {"id": 2, "parent": 1, "name": {"pol": "Półbuty, męskie", "eng": "Men's"}},
                {"id": 5, "parent": 6, "name": {"pol": "Pętla A"}},
                {"id": 6, "parent": 5, "name": {"pol": "Pętla B"}}
            ],
            "producers": [{"id": 7, "name": "Żółć & \"Syn\""}],
            "units": [{"id": 0, "name": {"eng": "pcs"}}],
            "series": [{"id": 3, "name": {"pol": "Lato"}}],
            "warranties": [{"id": 4, "period_months": 24, "name": {"pol": "Gwarancja 2 lata"}}],
            "warehouses": [
                {"id": 0, "name": {"pol": "Obcy"}},
                {"id": 1, "name": {"pol": "Główny"}},
                {"id": 2, "name": {"pol": "Pomocniczy"}}
            ],
            "size_groups": [{"id": 1, "name": "Buty", "sizes": [{"id": "39", "name": {"pol": "39 EU"}}]}]
        }))
        .unwrap()
    }

    type Render = fn(
        &mut Vec<u8>,
        &RenderProfile,
        &ArchivedDictionaries,
        std::slice::Iter<'_, ArchivedProduct>,
    ) -> Result<(), RenderError>;

    fn render(f: Render, profile: &RenderProfile, products: &[Product]) -> Vec<u8> {
        try_render(f, profile, products).unwrap()
    }

    fn try_render(
        f: Render,
        profile: &RenderProfile,
        products: &[Product],
    ) -> Result<Vec<u8>, RenderError> {
        let d = rkyv::to_bytes::<rkyv::rancor::Error>(&dicts()).unwrap();
        let d = rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&d).unwrap();
        let p = rkyv::to_bytes::<rkyv::rancor::Error>(&products.to_vec()).unwrap();
        let p = rkyv::access::<rkyv::vec::ArchivedVec<ArchivedProduct>, rkyv::rancor::Error>(&p)
            .unwrap();
        let mut out = Vec::new();
        f(&mut out, profile, d, p.iter())?;
        Ok(out)
    }

    #[test]
    fn a_price_that_overflows_on_conversion_is_an_error_naming_it_not_a_panic() {
        let json = serde_json::json!({
            "id": 8, "vat": "23", "description": {"name": {"pol": "Ogromna"}},
            "prices": {"retail": {"net": "79000000000000000000000000000", "gross": "79000000000000000000000000000"}},
            "stock": [{"warehouse": 1, "quantity": "5"}]
        });
        // Ingest refuses such a price (prices are bounded so conversions cannot overflow)...
        let mut raw: Product = serde_json::from_value(json).unwrap();
        let err = raw.clone().normalize().unwrap_err();
        assert_eq!(err.field, "prices.retail");
        // ...and should one reach the writer anyway, rendering stops with an error naming
        // the product, size and column instead of panicking or writing a wrong number.
        raw.sizes.push(Size {
            id: "uniw".into(),
            code: "8-uniw".into(),
            code_producer: None,
            code_external: None,
            weight: None,
            weight_net: None,
            prices: Default::default(),
            stock: std::mem::take(&mut raw.stock),
        });
        let mut pr = profile();
        pr.currency = "EUR".into();
        pr.rate = Decimal::from_str("4.3").unwrap();
        let writers: [(&str, Render); 2] = [
            ("full", |w, pr, d, p| write_full_csv(w, pr, d, p)),
            ("light", |w, pr, d, p| write_light_csv(w, pr, d, p)),
        ];
        for (name, f) in writers {
            match try_render(f, &pr, std::slice::from_ref(&raw)) {
                Err(RenderError::Overflow {
                    product,
                    size,
                    column,
                }) => assert_eq!((product, size.as_str(), column), (8, "uniw", "price")),
                other => panic!("{name}: expected an overflow error, got {other:?}"),
            }
        }
        // A rate at or below 1 converts the same price fine.
        pr.rate = Decimal::ONE;
        assert_eq!(rows(&full(&pr, std::slice::from_ref(&raw))).len(), 1);
    }

    #[test]
    fn a_stock_total_that_overflows_is_an_error_not_a_panic() {
        let mut p = shoe();
        let huge = Decimal::from_str("50000000000000000000000000000").unwrap();
        p.sizes[0].stock = vec![
            StockLevel {
                warehouse: 1,
                quantity: huge,
                physical: None,
                location: None,
            },
            StockLevel {
                warehouse: 2,
                quantity: huge,
                physical: None,
                location: None,
            },
        ];
        match try_render(|w, pr, d, p| write_light_csv(w, pr, d, p), &profile(), &[p]) {
            Err(RenderError::Overflow { column, .. }) => assert_eq!(column, "stock"),
            other => panic!("expected an overflow error, got {other:?}"),
        }
    }

    fn full(profile: &RenderProfile, products: &[Product]) -> Vec<u8> {
        render(|w, pr, d, p| write_full_csv(w, pr, d, p), profile, products)
    }

    fn light(profile: &RenderProfile, products: &[Product]) -> Vec<u8> {
        render(
            |w, pr, d, p| write_light_csv(w, pr, d, p),
            profile,
            products,
        )
    }

    /// The rows as maps from column name to value, read back with a CSV reader.
    fn rows(bytes: &[u8]) -> Vec<HashMap<String, String>> {
        let mut r = ::csv::Reader::from_reader(bytes);
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                header
                    .iter()
                    .cloned()
                    .zip(rec.iter().map(String::from))
                    .collect()
            })
            .collect()
    }

    fn shoe() -> Product {
        product(serde_json::json!({
            "id": 17,
            "vat": "23",
            "code": "BUT-17",
            "producer_code_standard": "GTIN13",
            "producer": 7,
            "category": 2,
            "unit": 0,
            "series": 3,
            "warranty": 4,
            "size_group": 1,
            "card_url": "https://shop.example/p/17",
            "description": {
                "name": {"pol": "But \"Kraków\", skórzany", "eng": "Shoe"},
                "short_desc": {"eng": "Short only in English"},
                "long_desc": {"pol": "<p>Linia 1\r\nLinia 2, \"cytat\"</p>"}
            },
            "prices": {
                "retail": {"net": "100.00", "gross": "123.00"},
                "wholesale": {"net": "80", "gross": "98.40"},
                "srp": {"net": "120", "gross": "147.60"}
            },
            "sizes": [
                {"id": "39", "code": "17-39", "code_producer": "5901234123457", "code_external": "ERP,39",
                 "weight": 800, "weight_net": 650,
                 "stock": [{"warehouse": 1, "quantity": "2"}, {"warehouse": 2, "quantity": "3.5"}]},
                {"id": "40", "code": "17-40",
                 "prices": {"retail": {"net": "110.00", "gross": "135.30"}},
                 "stock": [{"warehouse": 0, "quantity": "-1"}, {"warehouse": 1, "quantity": "4"}]}
            ],
            "images": [{"url": "https://img.example/17 a.jpg"}, {"url": "https://img.example/17-b.jpg"}],
            "shops": [1, 3]
        }))
    }

    #[test]
    fn full_csv_has_a_header_crlf_and_no_bom() {
        let bytes = full(&profile(), &[]);
        let expected = FULL_COLUMNS.join(",") + "\r\n";
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        let bytes = full(&profile(), &[shoe()]);
        assert!(bytes.starts_with(b"product_id,type,"));
        let text = String::from_utf8(bytes).unwrap();
        // Three records: every record ends in CRLF; the bare CRLF inside long_desc is quoted.
        assert!(text.ends_with("\r\n"));
        assert!(
            text.contains("\"<p>Linia 1\r\nLinia 2, \"\"cytat\"\"</p>\""),
            "{text}"
        );
        assert!(
            text.contains(",\"But \"\"Kraków\"\", skórzany\","),
            "{text}"
        );
    }

    #[test]
    fn full_csv_round_trips_every_column() {
        let rows = rows(&full(&profile(), &[shoe()]));
        assert_eq!(rows.len(), 2, "one row per size");
        let r = &rows[0];
        let expect = [
            ("product_id", "17"),
            ("type", "regular"),
            ("code", "BUT-17"),
            ("producer_code_standard", "GTIN13"),
            ("size_id", "39"),
            ("size_name", "39 EU"),
            ("size_code", "17-39"),
            ("code_producer", "5901234123457"),
            ("code_external", "ERP,39"),
            ("name", "But \"Kraków\", skórzany"),
            ("short_desc", "Short only in English"),
            ("long_desc", "<p>Linia 1\r\nLinia 2, \"cytat\"</p>"),
            ("producer_id", "7"),
            ("producer", "Żółć & \"Syn\""),
            ("category_id", "2"),
            ("category", "Obuwie/Półbuty, męskie"),
            ("unit_id", "0"),
            ("unit", "pcs"),
            ("series", "Lato"),
            ("warranty", "Gwarancja 2 lata"),
            ("vat", "23"),
            ("currency", "PLN"),
            ("price_net", "100.00"),
            ("price_gross", "123.00"),
            ("srp_net", "120.00"),
            ("srp_gross", "147.60"),
            ("stock_total", "5.5"),
            ("weight", "800"),
            ("weight_net", "650"),
            ("card_url", "https://shop.example/p/17"),
            (
                "image_urls",
                "https://img.example/17%20a.jpg https://img.example/17-b.jpg",
            ),
            ("shops", "1 3"),
        ];
        assert_eq!(r.len(), FULL_COLUMNS.len());
        for (column, value) in expect {
            assert_eq!(r[column], value, "column {column}");
        }
        // The second size: its own retail price, unlimited stock, no size name in the group.
        let r = &rows[1];
        assert_eq!(
            (
                r["size_id"].as_str(),
                r["size_name"].as_str(),
                r["size_code"].as_str()
            ),
            ("40", "", "17-40")
        );
        assert_eq!(
            (r["price_net"].as_str(), r["price_gross"].as_str()),
            ("110.00", "135.30")
        );
        assert_eq!(r["stock_total"], "-1");
        assert_eq!(
            (r["weight"].as_str(), r["code_producer"].as_str()),
            ("", "")
        );
    }

    #[test]
    fn full_converts_and_light_also_discounts() {
        let mut pr = profile();
        pr.currency = "EUR".into();
        pr.rate = Decimal::from_str("0.2345").unwrap();
        pr.discount_percent = Decimal::from_str("10").unwrap();
        let f = rows(&full(&pr, &[shoe()]));
        assert_eq!(
            (f[0]["price_net"].as_str(), f[0]["price_gross"].as_str()),
            ("23.45", "28.84")
        );
        assert_eq!(f[0]["currency"], "EUR");
        let l = rows(&light(&pr, &[shoe()]));
        assert_eq!(
            (l[0]["price_net"].as_str(), l[0]["price_gross"].as_str()),
            ("21.11", "25.96")
        );
        // The suggested retail price is the end customer's: converted, never discounted.
        assert_eq!(
            (l[0]["srp_net"].as_str(), l[0]["srp_gross"].as_str()),
            ("28.14", "34.61")
        );
        assert_eq!(f[0]["srp_net"], l[0]["srp_net"]);
        // The same values as the profile's own conversion and discount.
        let base = Price {
            net: Decimal::from_str("110.00").unwrap(),
            gross: Decimal::from_str("135.30").unwrap(),
        };
        let d = pr.discounted(base.clone()).unwrap();
        assert_eq!(l[1]["price_net"], format!("{:.2}", d.net));
        assert_eq!(l[1]["price_gross"], format!("{:.2}", d.gross));
        let c = pr.convert(base).unwrap();
        assert_eq!(f[1]["price_gross"], format!("{:.2}", c.gross));
    }

    #[test]
    fn wholesale_partners_get_wholesale_prices_falling_back_to_retail() {
        let mut pr = profile();
        pr.wholesale = true;
        let retail_only = product(serde_json::json!({
            "id": 2, "vat": "8", "description": {"name": {"pol": "Tylko detal"}},
            "prices": {"retail": {"net": "10", "gross": "10.80"}}
        }));
        let f = rows(&full(&pr, &[shoe(), retail_only.clone()]));
        // Size 39 inherits the product's wholesale price; size 40's own retail price does not
        // hide it either: each price field is inherited on its own.
        assert_eq!(
            (f[0]["price_net"].as_str(), f[0]["price_gross"].as_str()),
            ("80.00", "98.40")
        );
        assert_eq!(
            (f[1]["price_net"].as_str(), f[1]["price_gross"].as_str()),
            ("80.00", "98.40")
        );
        assert_eq!(
            (f[2]["price_net"].as_str(), f[2]["price_gross"].as_str()),
            ("10.00", "10.80")
        );
        assert_eq!(
            (f[2]["size_id"].as_str(), f[2]["size_code"].as_str()),
            ("uniw", "2-uniw")
        );
        let l = rows(&light(&pr, &[shoe(), retail_only]));
        assert_eq!(l[0]["price_net"], "80.00");
        assert_eq!(l[2]["price_gross"], "10.80");
        assert_eq!(l[2]["vat"], "8");
    }

    #[test]
    fn products_outside_the_shop_or_out_of_stock_are_left_out() {
        let other_shop = product(serde_json::json!({
            "id": 3, "vat": "23", "description": {"name": {"pol": "Inny sklep"}}, "shops": [2],
            "stock": [{"warehouse": 1, "quantity": "5"}]
        }));
        let every_shop_no_stock = product(serde_json::json!({
            "id": 4, "vat": "23", "description": {"name": {"pol": "Brak"}},
            "stock": [{"warehouse": 1, "quantity": "0"}]
        }));
        let unlimited = product(serde_json::json!({
            "id": 5, "vat": "23", "description": {"name": {"pol": "Bez limitu"}},
            "stock": [{"warehouse": 1, "quantity": "-1"}]
        }));
        let all = [shoe(), other_shop, every_shop_no_stock, unlimited];
        let ids = |bytes: Vec<u8>| -> Vec<String> {
            let mut ids: Vec<String> = rows(&bytes)
                .iter()
                .map(|r| r["product_id"].clone())
                .collect();
            ids.dedup();
            ids
        };
        assert_eq!(ids(full(&profile(), &all)), ["17", "4", "5"]);
        let mut pr = profile();
        pr.only_in_stock = true;
        assert_eq!(ids(full(&pr, &all)), ["17", "5"]);
        assert_eq!(ids(light(&pr, &all)), ["17", "5"]);
        pr.shop = 2;
        assert_eq!(ids(light(&pr, &all)), ["3", "5"]);
    }

    #[test]
    fn light_csv_has_a_column_per_warehouse() {
        let bytes = light(&profile(), &[shoe()]);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let header = text.split("\r\n").next().unwrap();
        assert_eq!(
            header,
            "product_id,size_id,size_code,code_producer,code_external,weight,vat,currency,\
             price_net,price_gross,srp_net,srp_gross,stock_total,stock_0,stock_1,stock_2"
        );
        let l = rows(&bytes);
        let stock = |r: &HashMap<String, String>| {
            ["stock_total", "stock_0", "stock_1", "stock_2"].map(|c| r[c].clone())
        };
        assert_eq!(stock(&l[0]), ["5.5", "", "2", "3.5"]);
        assert_eq!(stock(&l[1]), ["-1", "-1", "4", ""]);
        assert_eq!(l[0]["code_external"], "ERP,39");
        assert_eq!(l[0]["weight"], "800");
    }

    #[test]
    fn names_fall_back_and_cycles_end() {
        let mut pr = profile();
        pr.languages = vec!["eng".into()];
        let looped = product(serde_json::json!({
            "id": 6, "vat": "23", "category": 5, "producer": 99,
            "description": {"name": {"ger": "Nur Deutsch"}}
        }));
        let f = rows(&full(&pr, &[shoe(), looped]));
        assert_eq!(f[0]["name"], "Shoe");
        assert_eq!(f[0]["category"], "Shoes/Men's");
        // Polish is all the long description has: better than nothing.
        assert_eq!(f[0]["long_desc"], "<p>Linia 1\r\nLinia 2, \"cytat\"</p>");
        assert_eq!(f[2]["name"], "Nur Deutsch");
        assert_eq!(f[2]["category"], "Pętla B/Pętla A");
        // An id missing from the dictionary keeps its id and leaves the name empty.
        assert_eq!(
            (f[2]["producer_id"].as_str(), f[2]["producer"].as_str()),
            ("99", "")
        );
        assert_eq!(
            (f[2]["price_net"].as_str(), f[2]["srp_gross"].as_str()),
            ("", "")
        );
        assert_eq!(f[2]["stock_total"], "0");
    }

    #[test]
    fn write_errors_surface() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let d = rkyv::to_bytes::<rkyv::rancor::Error>(&dicts()).unwrap();
        let d = rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&d).unwrap();
        let err = write_light_csv(&mut Broken, &profile(), d, std::iter::empty()).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
