//! IOF 3.0 offers read back into catalog records, so a supplier moving from another platform
//! can start from the feed it already publishes.
//!
//! Input: a directory holding full.xml (and, when present, light.xml, gateway.xml and the
//! reference files), a full.xml whose companions sit beside it, or a gateway file on local
//! disk naming them. full.xml and light.xml are stream-parsed with quick-xml one `<product>`
//! at a time, so parsing memory does not grow with the file; [`read_offer_each`] hands each
//! product on as it is mapped ([`read_offer`] holds them all: about 10 KB per product);
//! reference files are small and read whole.
//!
//! Mapping decisions:
//! - **Dialects.** Core elements are matched by local name in any namespace (no prefix or the
//!   default IOF namespace); `iaiext:` elements are extensions. `parameter type="section"` and
//!   `<section>` are both sections; `changed` and `date_changed` are both image dates;
//!   `code_external` and `iaiext:code_external` are both the ERP code; decimals may use a
//!   comma. A `<product removed="yes">` (change files) becomes a deletion. Other generators'
//!   shapes (sizes without ids, product-level EAN and codes, two-letter languages, other date
//!   shapes, category paths, `<description><description>`) are mapped in `sizes`, `map`,
//!   `parts` and `dialect`; the README's "Moving from another platform" lists them.
//! - **Ids.** Product ids must be positive integers in iofd: an id that is not one is mapped
//!   to `2^52 + (blake3("product:" + id) mod 2^52)`, deterministic, and reported. Dictionary
//!   ids likewise (warehouses into `2^31 + ..`).
//! - **Prices** come from full.xml (in `products@currency`, or the product's `currency`,
//!   converted to the base currency with the configured rates; no rate is an error, never a
//!   relabelling: `prices`); light.xml prices are
//!   the partner's (discounts applied) and are not imported. A zero srp or strikethrough
//!   price means "none". **Stock** comes from light.xml when it lists the size (it is the
//!   fresher file), else from full.xml; light's one-size `id="0"` joins full's `uniw`.
//! - **Dictionaries** come from the reference files, completed by what full.xml says inline
//!   (names in the offer language, parameter values and their contexts, size groups).
//! - Everything else (IdoSell category taxonomy, promotions' zones, iaiext extensions, ...)
//!   is counted and reported as dropped in the [`Report`], with examples; a product that
//!   cannot be imported at all is listed in [`Offer::skipped`].

mod dialect;
mod map;
mod parts;
mod prices;
mod reader;
mod refs;
mod report;
mod sizes;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::catalog::{Decimal, Record};

use map::Import;
pub use reader::Position;
use reader::{read_document, root_name, Node, Stream};

pub use report::{Conversion, FieldCounts, Report};

/// An offer mapped to records (dictionaries first, then products), with notes on what was
/// changed (ids, currency) and the report of what was mapped, converted, derived or dropped.
#[derive(Debug, Default)]
pub struct Offer {
    pub records: Vec<Record>,
    pub notes: Vec<String>,
    /// Products that cannot be imported, each as `file: product at line L (byte B) skipped: reason`;
    /// callers refuse the offer unless told to import the valid rest.
    pub skipped: Vec<String>,
    pub report: Report,
}

/// What the import needs from the configuration.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The store's currency: prices in another one are converted into it.
    pub base_currency: String,
    /// Units of each currency per one unit of the base (`[currencies]`).
    pub rates: BTreeMap<String, Decimal>,
    /// Any dropped value is an error ([`IofError::Strict`]) instead of a line in the report.
    pub strict: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            base_currency: "PLN".into(),
            rates: BTreeMap::from([("PLN".to_string(), Decimal::ONE)]),
            strict: false,
        }
    }
}

/// Why an offer cannot be read at all, with the line (and byte offset) where it went wrong.
#[derive(Debug, thiserror::Error)]
pub enum IofError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: invalid XML at {position}: {problem}", path.display())]
    Xml {
        path: PathBuf,
        position: Position,
        #[source]
        problem: XmlProblem,
    },
    #[error("{}: at {position}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        position: Position,
        message: String,
    },
    #[error("{}: no full.xml found (give a directory holding full.xml, a full.xml, or a gateway file)", path.display())]
    NoFull { path: PathBuf },
    /// Prices in a currency the configuration has no rate for: they are not published as if
    /// they were in the base currency.
    #[error("{}: at {position}: prices are in {currency}, and there is no exchange rate for it: add {currency} = \"<units of {currency} per 1 {base}>\" under [currencies] in the configuration (base_currency is {base})", path.display())]
    NoRate {
        path: PathBuf,
        position: Position,
        currency: String,
        base: String,
    },
    /// The caller's sink refused a product (e.g. its spool could not be written).
    #[error("{}: at {position}: cannot keep the product: {message}", path.display())]
    Sink {
        path: PathBuf,
        position: Position,
        message: String,
    },
    /// `--strict`, and values were dropped.
    #[error("{}: {dropped} value(s) could not be imported (strict): {}", path.display(), fields.join(", "))]
    Strict {
        path: PathBuf,
        dropped: u64,
        fields: Vec<String>,
        /// The whole report, for printing.
        report: Box<Report>,
    },
}

/// What is wrong with an offer's XML: the parser's error, kept as the source, or a rule of
/// the offer's shape the parser does not check.
#[derive(Debug, thiserror::Error)]
pub enum XmlProblem {
    #[error(transparent)]
    Parser(#[from] quick_xml::Error),
    #[error(transparent)]
    Utf8(#[from] std::str::Utf8Error),
    #[error("{0}")]
    Shape(String),
}

impl From<&str> for XmlProblem {
    fn from(s: &str) -> Self {
        XmlProblem::Shape(s.to_owned())
    }
}

impl From<String> for XmlProblem {
    fn from(s: String) -> Self {
        XmlProblem::Shape(s)
    }
}

/// Where the files of an offer are.
#[derive(Debug, Default, Clone)]
struct Files {
    gateway: Option<PathBuf>,
    full: Option<PathBuf>,
    light: Option<PathBuf>,
    refs: HashMap<&'static str, PathBuf>,
}

const REFERENCE_KINDS: [&str; 8] = [
    "categories",
    "sizes",
    "producers",
    "units",
    "parameters",
    "stocks",
    "series",
    "warranties",
];

fn locate(path: &Path) -> Result<Files, IofError> {
    let mut files = Files::default();
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        match root_name(path)?.as_str() {
            "provider_description" => {
                files.gateway = Some(path.to_path_buf());
            }
            "offer" => files.full = Some(path.to_path_buf()),
            other => {
                return Err(IofError::Invalid {
                    path: path.to_path_buf(),
                    position: Position::START,
                    message: format!(
                        "root element <{other}>: expected an offer (full.xml) or a gateway"
                    ),
                })
            }
        }
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    let in_dir = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    if files.gateway.is_none() && files.full.is_none() {
        files.gateway = in_dir("gateway.xml");
    }
    if let Some(gw) = files.gateway.clone() {
        // The gateway names the files; on local disk a URL's last segment (or IdoSell's
        // `type=`) names a file beside the gateway.
        let doc = read_document(&gw)?;
        let local = |node: &Node, kind: &str| -> Option<PathBuf> {
            let url = node.attr(&["url"])?;
            let candidate = if let Some(p) = url.strip_prefix("file://") {
                PathBuf::from(p)
            } else if url.contains("://") {
                let query_type = url
                    .split(['?', '&'])
                    .find_map(|kv| kv.strip_prefix("type="));
                match query_type {
                    Some(t) => dir.join(format!("{t}.xml")),
                    None => dir.join(url.rsplit('/').next().unwrap_or(kind)),
                }
            } else {
                dir.join(url)
            };
            Some(candidate)
                .filter(|p| p.is_file())
                .or_else(|| in_dir(&format!("{kind}.xml")))
        };
        for child in &doc.children {
            match child.name.as_str() {
                "full" if files.full.is_none() => files.full = local(child, "full"),
                "light" => files.light = local(child, "light"),
                k => {
                    if let Some(kind) = REFERENCE_KINDS.iter().find(|r| **r == k) {
                        if let Some(p) = local(child, kind) {
                            files.refs.insert(kind, p);
                        }
                    }
                }
            }
        }
    }
    if files.full.is_none() {
        files.full = in_dir("full.xml");
    }
    if files.light.is_none() {
        files.light = in_dir("light.xml");
    }
    for kind in REFERENCE_KINDS {
        if !files.refs.contains_key(kind) {
            if let Some(p) = in_dir(&format!("{kind}.xml")) {
                files.refs.insert(kind, p);
            }
        }
    }
    if files.full.is_none() {
        return Err(IofError::NoFull {
            path: path.to_path_buf(),
        });
    }
    Ok(files)
}
/// Read an offer: a directory, a full.xml (companions beside it) or a gateway file, with
/// the default options (base currency PLN, no other rates).
pub fn read_offer(path: &Path) -> Result<Offer, IofError> {
    read_offer_with(path, &ImportOptions::default())
}

/// Read an offer with the configured currencies; `options.strict` refuses any drop.
pub fn read_offer_with(path: &Path, options: &ImportOptions) -> Result<Offer, IofError> {
    let started = Instant::now();
    let mut offer = read_files(path, options, None)?;
    offer.report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    strict(path, options, offer)
}

/// [`read_offer_with`], handing each product (and deletion) to `each` as soon as it is
/// mapped instead of holding it: the returned offer's records are the dictionaries only, and
/// memory stays bounded by them whatever the size of full.xml. `each` failing stops the read.
pub fn read_offer_each(
    path: &Path,
    options: &ImportOptions,
    each: &mut dyn FnMut(Record) -> Result<(), String>,
) -> Result<Offer, IofError> {
    let started = Instant::now();
    let mut offer = read_files(path, options, Some(each))?;
    offer.report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    strict(path, options, offer)
}

fn strict(path: &Path, options: &ImportOptions, offer: Offer) -> Result<Offer, IofError> {
    let dropped = offer.report.dropped_total();
    if options.strict && dropped > 0 {
        return Err(IofError::Strict {
            path: path.to_path_buf(),
            dropped,
            fields: offer
                .report
                .dropped_fields()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            report: Box::new(offer.report),
        });
    }
    Ok(offer)
}

fn read_files(
    path: &Path,
    options: &ImportOptions,
    sink: Option<map::Sink<'_>>,
) -> Result<Offer, IofError> {
    let files = locate(path)?;
    let mut im = Import::new(options.clone(), sink);
    for kind in REFERENCE_KINDS {
        if let Some(p) = files.refs.get(kind) {
            let doc = read_document(p)?;
            if let Some((lang, _)) = doc.attr(&["language"]).and_then(dialect::language) {
                im.lang = lang;
            }
            im.reference(kind, &doc);
        }
    }
    if let Some(light) = &files.light {
        im.read_light(light)?;
    }
    let full = files.full.clone().ok_or(IofError::NoFull {
        path: path.to_path_buf(),
    })?;
    im.read_full(&full)?;
    if let Some(gw) = &files.gateway {
        im.gateway(&read_document(gw)?);
    } else {
        im.notes
            .push("no gateway: no shop metadata imported".to_string());
    }
    Ok(im.finish())
}

/// Parse full.xml-shaped bytes (for fuzzing and tests): the products' records and notes.
pub fn read_full_bytes(bytes: &[u8]) -> Result<Offer, IofError> {
    read_full_bytes_with(bytes, &ImportOptions::default())
}

/// [`read_full_bytes`] with the configured currencies (and strictness).
pub fn read_full_bytes_with(bytes: &[u8], options: &ImportOptions) -> Result<Offer, IofError> {
    let mut im = Import::new(options.clone(), None);
    let stream = Stream::new(
        bytes,
        Path::new("full.xml"),
        &["offer", "products", "product"],
    );
    im.read_products(stream)?;
    strict(Path::new("full.xml"), options, im.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Decimal, Parameter, ParameterKind, Price, Prices, Product};
    use crate::catalog::{Format, RenderProfile};
    use crate::render::{self, DictIndex, OfferMeta};
    use crate::store::{ApplyMode, Store, StoreOptions};
    use std::collections::BTreeMap;

    fn examples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/iof/examples")
    }

    fn products(offer: &Offer) -> BTreeMap<u64, Product> {
        offer
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Product(p) => Some((p.id, (**p).clone())),
                _ => None,
            })
            .collect()
    }

    /// (size id, size code, prices, stock per warehouse) of one size.
    type EffectiveSize = (String, String, Prices, Vec<(u32, Decimal)>);

    /// A size's prices as a partner sees them: its own, else the product's.
    fn effective(p: &Product) -> Vec<EffectiveSize> {
        p.sizes
            .iter()
            .map(|s| {
                let pick =
                    |own: &Option<Price>, product: &Option<Price>| own.clone().or(product.clone());
                let prices = Prices {
                    retail: pick(&s.prices.retail, &p.prices.retail),
                    wholesale: None,
                    srp: pick(&s.prices.srp, &p.prices.srp),
                    strikethrough_retail: pick(
                        &s.prices.strikethrough_retail,
                        &p.prices.strikethrough_retail,
                    ),
                    strikethrough_wholesale: pick(
                        &s.prices.strikethrough_wholesale,
                        &p.prices.strikethrough_wholesale,
                    ),
                };
                let stock = s
                    .stock
                    .iter()
                    .map(|l| (l.warehouse, l.quantity.normalize()))
                    .collect();
                (s.id.clone(), s.code.clone(), prices, stock)
            })
            .collect()
    }

    #[test]
    fn a_hostile_warranty_period_does_not_panic_the_import() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("full.xml"),
            r#"<offer file_format="IOF" version="3.0"><products language="pol"><product id="1" vat="23"><description><name>A</name></description><warranty id="1"/></product></products></offer>"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("warranties.xml"),
            r#"<warranties file_format="IOF" version="3.0" language="pol"><warranty id="1" name="Wieczna"><terms type="producer" period_number="70000000000000000000000000000" period_unit="years"/></warranty></warranties>"#,
        )
        .unwrap();
        let offer = read_offer(dir.path()).expect("read");
        assert!(offer
            .records
            .iter()
            .any(|r| matches!(r, Record::Warranty(w) if w.period_months == 0)));
    }

    #[test]
    fn the_official_example_offer_survives_import_and_republishing() {
        let original = read_offer(&examples()).expect("import");
        let before = products(&original);
        assert_eq!(
            before.keys().copied().collect::<Vec<_>>(),
            [33, 34, 35, 41, 42, 44, 45, 47]
        );
        assert!(
            original.report.fields["product/category_idosell"].dropped > 0,
            "{}",
            original.report
        );
        assert_eq!(original.report.products, 8);

        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("store"), StoreOptions::default()).expect("open");
        store
            .apply(original.records.clone(), ApplyMode::FullSync)
            .expect("apply");
        let snapshot = store.snapshot();
        let profile = RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip: false,
            languages: vec!["pol".into(), "eng".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: Decimal::ZERO,
            wholesale: false,
            only_in_stock: false,
            rules: Default::default(),
        };
        let when = jiff::civil::date(2026, 1, 1).at(0, 0, 0, 0);
        let meta = OfferMeta {
            generated: when,
            expires: when,
        };
        let dicts = DictIndex::new(snapshot.dicts());
        let out = dir.path().join("offer");
        std::fs::create_dir_all(&out).unwrap();
        let mut full = Vec::new();
        render::full(&mut full, &profile, &dicts, &meta, snapshot.products()).unwrap();
        let mut light = Vec::new();
        render::light(&mut light, &profile, &dicts, &meta, snapshot.products()).unwrap();
        std::fs::write(out.join("full.xml"), &full).unwrap();
        std::fs::write(out.join("light.xml"), &light).unwrap();
        crate::xsd::validate(crate::xsd::Schema::for_kind("full").unwrap(), &full)
            .expect("valid full.xml");

        let again = read_offer(&out).expect("re-import");
        let after = products(&again);
        assert_eq!(before.len(), after.len());
        for (id, a) in &before {
            let b = &after[id];
            assert_eq!(
                (a.kind, a.vat, &a.code),
                (b.kind, b.vat, &b.code),
                "product {id}"
            );
            assert_eq!(
                effective(a),
                effective(b),
                "product {id}: sizes, prices, stock"
            );
            assert_eq!(a.parameters, b.parameters, "product {id}: parameters");
            assert_eq!(a.bundled, b.bundled, "product {id}: bundle components");
            assert_eq!(
                (a.producer, a.category, a.unit, a.series, a.warranty),
                (b.producer, b.category, b.unit, b.series, b.warranty),
                "product {id}: dictionary references"
            );
            assert_eq!(a.description, b.description, "product {id}: texts");
            assert_eq!(
                a.sizes
                    .iter()
                    .map(|s| (&s.code_producer, s.weight, &s.code_external))
                    .collect::<Vec<_>>(),
                b.sizes
                    .iter()
                    .map(|s| (&s.code_producer, s.weight, &s.code_external))
                    .collect::<Vec<_>>(),
                "product {id}: producer codes, weights, ERP codes"
            );
            assert_eq!(
                (a.producer_code_standard, &a.promotion, &a.card_url),
                (b.producer_code_standard, &b.promotion, &b.card_url),
                "product {id}: code standard, promotion, card"
            );
            assert_eq!(a.images, b.images, "product {id}: images");
        }
        // Light's stock won over full's where they differ (product 33, warehouse 0).
        let s = &before[&33].sizes[0];
        assert_eq!(s.stock[0].quantity, Decimal::from(9));
    }

    #[test]
    fn a_gateway_on_local_disk_names_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let ex = examples();
        std::fs::copy(ex.join("full.xml"), dir.path().join("offer-full.xml")).unwrap();
        std::fs::copy(ex.join("light.xml"), dir.path().join("offer-light.xml")).unwrap();
        std::fs::copy(ex.join("producers.xml"), dir.path().join("producers.xml")).unwrap();
        let light_url = format!("file://{}", dir.path().join("offer-light.xml").display());
        let gateway = format!(
            r#"<provider_description file_format="IOF" version="3.0"><meta><long_name>Shop</long_name><short_name>shop</short_name></meta>
<full url="offer-full.xml" hash="x"/><light url="{light_url}"/>
<producers url="https://example.com/edi/export-offer.php?client=a&amp;type=producers&amp;iof_3_0"/></provider_description>"#
        );
        let gw = dir.path().join("gw.xml");
        std::fs::write(&gw, gateway).unwrap();
        let offer = read_offer(&gw).expect("import through the gateway");
        let products = products(&offer);
        assert_eq!(products.len(), 8);
        assert_eq!(
            products[&33].sizes[0].stock[0].quantity,
            Decimal::from(9),
            "light.xml was read"
        );
        assert!(offer
            .records
            .iter()
            .any(|r| matches!(r, Record::Shop(s) if s.short_name == "shop")));
        let producers = offer
            .records
            .iter()
            .filter(|r| matches!(r, Record::Producer(_)))
            .count();
        assert!(producers > 8, "producers.xml was read: {producers}");
        let e = read_offer(dir.path().join("nothing-here").as_path()).unwrap_err();
        assert!(matches!(e, IofError::Io { .. }), "{e}");
    }

    #[test]
    fn dialects_and_odd_ids_are_accepted_and_reported() {
        let xml = r#"<?xml version="1.0"?>
<offer xmlns="http://www.iai-shop.com/developers/iof.phtml" xmlns:iaiext="http://www.iai-shop.com/developers/iof/extensions.phtml" file_format="IOF" version="3.0">
<products language="eng" currency="EUR">
 <product id="ABC-1" vat="8,0" type="regular">
  <description><name>Mug</name></description>
  <price net="10,50"/>
  <parameters>
   <section id="5" name="Main"/>
   <parameter type="parameter" id="6" name="Colour" iaiext:context_id="CONTEXT_X"><value id="7" name="red"/></parameter>
  </parameters>
  <images><large><image url="http://x/1.jpg" date_changed="2020-01-01 00:00:00"/></large></images>
  <sizes><size id="uniw" code="ABC-1-uniw" iaiext:code_external="E1"><stock id="1" quantity="2,5"/></size></sizes>
  <iaiext:meta_title>t</iaiext:meta_title>
 </product>
 <product id="9" removed="yes"/>
</products>
</offer>"#;
        let options = ImportOptions {
            rates: BTreeMap::from([
                ("PLN".to_string(), Decimal::ONE),
                ("EUR".to_string(), Decimal::new(25, 2)),
            ]),
            ..ImportOptions::default()
        };
        let e = read_full_bytes(xml.as_bytes()).unwrap_err();
        assert!(
            matches!(&e, IofError::NoRate { currency, .. } if currency == "EUR"),
            "{e}"
        );
        assert!(e.to_string().contains("[currencies]"), "{e}");
        let offer = read_full_bytes_with(xml.as_bytes(), &options).expect("parse");
        let p = match &offer
            .records
            .iter()
            .find(|r| matches!(r, Record::Product(_)))
        {
            Some(Record::Product(p)) => (**p).clone(),
            _ => panic!("{:?}", offer.records),
        };
        assert!(p.id >= 1 << 52);
        assert!(offer
            .notes
            .iter()
            .any(|n| n.contains("\"ABC-1\"") && n.contains(&p.id.to_string())));
        assert_eq!(p.vat.to_string(), "8.0");
        let retail = p.prices.retail.clone().unwrap();
        assert_eq!(
            (retail.net, retail.gross),
            (Decimal::new(4200, 2), Decimal::new(4536, 2)),
            "10,50 EUR at 0.25 EUR per PLN"
        );
        assert_eq!(p.description.name["eng"], "Mug");
        assert_eq!(p.parameters.len(), 2);
        assert_eq!(p.images[0].changed.as_deref(), Some("2020-01-01 00:00:00"));
        assert_eq!(p.sizes[0].code_external.as_deref(), Some("E1"));
        assert_eq!(p.sizes[0].stock[0].quantity.to_string(), "2.5");
        assert!(offer.records.contains(&Record::DeleteProduct { id: 9 }));
        assert_eq!(
            offer.report.fields["product/iaiext:meta_title"].dropped, 1,
            "{}",
            offer.report
        );
        assert_eq!(
            offer.report.conversion.as_ref().map(|c| c.from.as_str()),
            Some("EUR")
        );
        assert_eq!(offer.report.fields["product/price@net"].converted, 1);
        let strict = ImportOptions {
            strict: true,
            ..options.clone()
        };
        let e = read_full_bytes_with(xml.as_bytes(), &strict).unwrap_err();
        assert!(
            matches!(&e, IofError::Strict { fields, .. } if fields.iter().any(|f| f == "product/iaiext:meta_title")),
            "{e}"
        );
        let params: Vec<&Parameter> = offer
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Parameter(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(params[0].kind, ParameterKind::Section);
        assert_eq!(params[1].context.as_deref(), Some("CONTEXT_X"));
    }

    #[test]
    fn streamed_products_are_the_held_ones_and_a_failing_sink_stops_the_read() {
        let held = read_offer(&examples()).expect("import");
        let mut streamed = Vec::new();
        let offer = read_offer_each(&examples(), &ImportOptions::default(), &mut |r| {
            streamed.push(r);
            Ok(())
        })
        .expect("import");
        assert!(offer
            .records
            .iter()
            .all(|r| !matches!(r, Record::Product(_) | Record::DeleteProduct { .. })));
        let products = |records: &[Record]| {
            records
                .iter()
                .filter(|r| matches!(r, Record::Product(_)))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(products(&held.records), streamed);
        assert_eq!(offer.records.len() + streamed.len(), held.records.len());
        let e = read_offer_each(&examples(), &ImportOptions::default(), &mut |_| {
            Err("disk full".into())
        })
        .unwrap_err();
        assert!(
            matches!(&e, IofError::Sink { message, position, .. } if message == "disk full" && position.byte > 0),
            "{e}"
        );
    }

    #[test]
    fn a_price_that_cannot_be_completed_skips_its_product_with_a_note() {
        // Found by fuzzing: a gross-only price with VAT -100 divided by zero, and a net near
        // the decimal maximum overflowed once VAT was added; both panicked.
        for (product, what) in [
            (
                r#"<product id="1" vat="-100"><srp gross="7"/></product>"#,
                "vat \"-100\" is not a rate",
            ),
            (
                r#"<product id="2" vat="23"><sizes><size id="S"><price net="79228162514264337593543950335"/></size></sizes></product>"#,
                "size S: price@net",
            ),
        ] {
            let good = r#"<product id="3" vat="23"><description><name xml:lang="pol">Kubek</name></description><price net="1" gross="1.23"/><sizes><size id="U" code="3-U"><stock id="0" quantity="1"/></size></sizes></product>"#;
            let xml = format!("<offer><products>{product}{good}</products></offer>");
            let offer = read_full_bytes(xml.as_bytes()).expect("parse");
            assert_eq!(
                offer.records.len(),
                1,
                "only the good product is kept: {offer:?}"
            );
            assert!(
                offer
                    .skipped
                    .iter()
                    .any(|n| n.contains("skipped") && n.contains(what)),
                "{:?}",
                offer.skipped
            );
            assert_eq!(offer.report.products_skipped, 1);
        }
    }

    #[test]
    fn languages_are_mapped_reported_or_refused() {
        let xml = |lang: &str| {
            format!(
                r#"<offer><products language="{lang}"><product id="1" vat="23">
                <description><name>Mug</name><name xml:lang="uk">Кухоль</name><name xml:lang="zz">?</name></description>
                </product></products></offer>"#
            )
        };
        let offer = read_full_bytes(xml("de").as_bytes()).expect("parse");
        let Some(Record::Product(p)) = offer.records.first() else {
            panic!("{:?}", offer.notes)
        };
        assert_eq!(
            p.description.name.keys().collect::<Vec<_>>(),
            ["ger", "ukr"],
            "no xml:lang is the offer's language"
        );
        assert_eq!(
            offer.report.fields["description/name@xml:lang"].dropped, 1,
            "{}",
            offer.report
        );
        let e = read_full_bytes(xml("klingon").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("products@language"), "{e}");
    }

    #[test]
    fn broken_xml_is_an_error_with_a_position() {
        let e =
            read_full_bytes(b"<offer><products><product id=\"1\"><price></product>").unwrap_err();
        assert!(
            matches!(e, IofError::Xml { position, .. } if position.byte > 0 && position.line > 0),
            "{e}"
        );
        let e = read_full_bytes(b"<offer><products><product id=\"1\">").unwrap_err();
        assert!(e.to_string().contains("ends inside"), "{e}");
    }

    #[test]
    fn positions_count_from_the_first_byte_of_the_file_byte_order_mark_included() {
        // The mismatched end tag is on line 3, bytes 43..51: 3 (BOM) + 21 + 1 + 17 + 1 = 43.
        let input = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<offer><products>\n</offer>";
        let e = read_full_bytes(input).unwrap_err();
        match e {
            IofError::Xml { position, .. } => {
                assert_eq!(position.line, 3, "{position}");
                assert!((43..51).contains(&position.byte), "{position}");
            }
            other => panic!("expected an XML error, got {other}"),
        }
    }
}
