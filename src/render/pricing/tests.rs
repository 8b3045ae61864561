//! The formula against the profile's own, and XML against CSV on generated catalogs.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::str::FromStr;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::catalog::Format;
use crate::catalog::{ArchivedDictionaries, ArchivedProduct, Dictionaries, Product, Record};
use crate::generate::{generate_to, GenerateOptions};
use crate::ingest::read_jsonl;
use crate::render::{full, light, write_full_csv, write_light_csv, DictIndex, OfferMeta};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

/// Retail, shop 1, Polish then English, PLN at rate 1, 5 % off light.
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
        rules: Default::default(),
    }
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

/// A generated catalog, read back through the ERP reader and archived as the store keeps it.
struct Catalog {
    dicts: rkyv::util::AlignedVec,
    products: rkyv::util::AlignedVec,
}

impl Catalog {
    fn generated(products: u64, seed: u64) -> Self {
        let mut raw = Vec::new();
        generate_to(&mut raw, &GenerateOptions { products, seed }).expect("generate");
        let batch = read_jsonl("generated", Cursor::new(&raw)).expect("read back");
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected.first());
        let mut dicts = Dictionaries::default();
        let mut list: Vec<Product> = Vec::new();
        for line in batch.records {
            match line.record {
                Record::Product(p) => list.push(*p),
                other => assert!(dicts.upsert(&other), "unexpected {other:?}"),
            }
        }
        Catalog {
            dicts: rkyv::to_bytes::<rkyv::rancor::Error>(&dicts).expect("archive"),
            products: rkyv::to_bytes::<rkyv::rancor::Error>(&list).expect("archive"),
        }
    }

    fn dicts(&self) -> &ArchivedDictionaries {
        rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&self.dicts).expect("dicts")
    }

    fn products(&self) -> &rkyv::vec::ArchivedVec<ArchivedProduct> {
        rkyv::access::<_, rkyv::rancor::Error>(&self.products).expect("products")
    }
}

/// Per (product id, size id): the paid price and the srp, each as (net, gross).
type Prices = BTreeMap<(String, String), [Option<(Decimal, Decimal)>; 2]>;

/// The size-level `<price>` and `<srp>` of an offer.
fn xml_prices(doc: &[u8]) -> Prices {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(doc);
    let mut buf = Vec::new();
    let mut out = Prices::new();
    // Depth of the element being read: products are at 3, their sizes at 5.
    let mut depth = 0usize;
    let (mut product, mut size) = (String::new(), None::<String>);
    loop {
        let event = reader.read_event_into(&mut buf).expect("offer parses");
        let (e, empty) = match &event {
            Event::Eof => break,
            Event::Start(e) => (e.clone(), false),
            Event::Empty(e) => (e.clone(), true),
            Event::End(e) => {
                if e.name().as_ref() == b"size" && depth == 5 {
                    size = None;
                }
                depth = depth.saturating_sub(1);
                buf.clear();
                continue;
            }
            _ => {
                buf.clear();
                continue;
            }
        };
        let attr = |name: &[u8]| -> String {
            e.attributes()
                .flatten()
                .find(|a| a.key.as_ref() == name)
                .map(|a| a.unescape_value().expect("attribute").into_owned())
                .unwrap_or_default()
        };
        let at = depth.saturating_add(1);
        match (e.name().as_ref(), at) {
            (b"product", 3) => product = attr(b"id"),
            (b"size", 5) => {
                size = Some(attr(b"id"));
                out.entry((product.clone(), attr(b"id"))).or_default();
            }
            (tag @ (b"price" | b"srp"), 6) => {
                let slot = usize::from(tag == b"srp");
                let key = (product.clone(), size.clone().expect("in a size"));
                out.entry(key).or_default()[slot] =
                    Some((dec(&attr(b"net")), dec(&attr(b"gross"))));
            }
            _ => {}
        }
        if !empty {
            depth = at;
        }
        buf.clear();
    }
    out
}

/// The price and srp columns of a CSV offer.
fn csv_prices(doc: &[u8]) -> Prices {
    let mut reader = csv::Reader::from_reader(doc);
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (id, size) = (col("product_id"), col("size_id"));
    let pairs =
        [("price_net", "price_gross"), ("srp_net", "srp_gross")].map(|(n, g)| (col(n), col(g)));
    let mut out = Prices::new();
    for row in reader.records() {
        let row = row.expect("row");
        let pair =
            |(n, g): (usize, usize)| (!row[n].is_empty()).then(|| (dec(&row[n]), dec(&row[g])));
        out.insert(
            (row[id].to_string(), row[size].to_string()),
            pairs.map(pair),
        );
    }
    out
}

fn meta() -> OfferMeta {
    OfferMeta {
        generated: jiff::civil::date(2026, 11, 22).at(10, 30, 0, 0),
        expires: jiff::civil::date(2026, 11, 23).at(10, 30, 0, 0),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Every size of every offered product has the same paid price and srp in full.xml and
    /// full.csv, and in light.xml and light.csv, whatever the rate, discount and price list.
    #[test]
    fn xml_and_csv_price_a_generated_catalog_identically(
        seed in any::<u64>(),
        rate in 1i64..=200_000,
        discount in 0i64..=1000,
        wholesale in any::<bool>(),
        shop in 1u32..=2,
    ) {
        let catalog = Catalog::generated(30, seed);
        let profile = RenderProfile {
            shop,
            rate: Decimal::new(rate, 4),
            discount_percent: Decimal::new(discount, 1),
            wholesale,
            ..retail_pl()
        };
        let dicts = DictIndex::new(catalog.dicts());
        let products = catalog.products();
        let (mut full_xml, mut light_xml) = (Vec::new(), Vec::new());
        full(&mut full_xml, &profile, &dicts, &meta(), products.iter()).expect("full.xml");
        light(&mut light_xml, &profile, &dicts, &meta(), products.iter()).expect("light.xml");
        let (mut full_csv, mut light_csv) = (Vec::new(), Vec::new());
        write_full_csv(&mut full_csv, &profile, catalog.dicts(), products.iter()).expect("full.csv");
        write_light_csv(&mut light_csv, &profile, catalog.dicts(), products.iter())
            .expect("light.csv");
        let full_prices = xml_prices(&full_xml);
        prop_assert!(full_prices.values().any(|p| p[0].is_some()), "no prices at all");
        prop_assert_eq!(&full_prices, &csv_prices(&full_csv));
        prop_assert_eq!(xml_prices(&light_xml), csv_prices(&light_csv));
    }
}
