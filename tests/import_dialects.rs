//! Third-party IOF offers (`fixtures/third-party/`) through the real `iofd import` command,
//! then published by iofd: what the source says must be what partners get.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use iofd::catalog::Decimal;
use iofd::catalog::{Format, RenderProfile};
use iofd::render::{self, DictIndex, OfferMeta};
use iofd::store::{Store, StoreOptions};

fn iofd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iofd"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/third-party")
        .join(name)
}

/// A data directory and a configuration with the EUR rate (units of EUR per 1 PLN).
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let config = dir.join("iofd.toml");
    std::fs::write(
        &config,
        "base_currency = \"PLN\"\n[currencies]\nEUR = \"0.25\"\n",
    )
    .unwrap();
    (dir.join("data"), config)
}

fn import(data: &Path, config: &Path, extra: &[&str], offer: &Path) -> Output {
    iofd()
        .arg("import")
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(extra)
        .arg(offer)
        .output()
        .unwrap()
}

/// full.xml and light.xml as iofd publishes the store, in PLN, each checked against the
/// official schemas.
fn publish(data: &Path) -> (String, String) {
    let store = Store::open(&data.join("store"), StoreOptions::default()).expect("store");
    let snapshot = store.snapshot();
    let profile = RenderProfile {
        shop: 1,
        format: Format::Iof30,
        gzip: false,
        languages: vec!["eng".into(), "ger".into(), "pol".into(), "cze".into()],
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
    let mut full = Vec::new();
    render::full(&mut full, &profile, &dicts, &meta, snapshot.products()).unwrap();
    let mut light = Vec::new();
    render::light(&mut light, &profile, &dicts, &meta, snapshot.products()).unwrap();
    iofd::xsd::validate(iofd::xsd::Schema::for_kind("full").unwrap(), &full)
        .expect("full.xml is valid IOF 3.0");
    iofd::xsd::validate(iofd::xsd::Schema::for_kind("light").unwrap(), &light)
        .expect("light.xml is valid IOF 3.0");
    (
        String::from_utf8(full).unwrap(),
        String::from_utf8(light).unwrap(),
    )
}

/// The `<product id="..">` element of a published file.
fn product<'a>(xml: &'a str, id: &str) -> &'a str {
    let start = xml
        .find(&format!("<product id=\"{id}\""))
        .unwrap_or_else(|| panic!("product {id} is published"));
    let end = start + xml[start..].find("</product>").expect("closed");
    &xml[start..end]
}

/// The `<size ...>` element of a product fragment with this code.
fn size<'a>(product: &'a str, code: &str) -> &'a str {
    let at = product
        .find(&format!("code=\"{code}\""))
        .unwrap_or_else(|| panic!("size {code} in {product}"));
    let start = product[..at].rfind("<size ").expect("size start");
    let end = start + product[start..].find("</size>").expect("size end");
    &product[start..end]
}

fn has(fragment: &str, needle: &str) {
    assert!(fragment.contains(needle), "{needle:?} not in:\n{fragment}");
}

#[test]
fn a_third_party_offer_is_imported_without_loss_and_published_as_the_source_says() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = setup(dir.path());
    let report_file = dir.path().join("report.json");
    let out = import(
        &data,
        &config,
        &["--report", report_file.to_str().unwrap()],
        &fixture("b2b-en-eur"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The conversion is said, in the printed report and in the notes.
    has(&stdout, "prices converted from EUR to PLN at 0.25");
    has(&stderr, "products@language \"en\" read as \"eng\"");

    let (full, light) = publish(&data);

    // 1001: sizes without id keep codes, producer codes, weights, prices and every stock;
    // their ids are their codes.
    let mug = product(&full, "1001");
    has(mug, "code_on_card=\"MUG-1001\"");
    let small = size(mug, "MUG-1001-S");
    has(small, "id=\"MUG-1001-S\"");
    has(small, "code_producer=\"5901234123457\"");
    has(small, "weight=\"250\"");
    // 9,00 / 11,07 EUR at 0.25 EUR per PLN.
    has(small, "<price gross=\"44.28\" net=\"36\"/>");
    has(small, "<stock id=\"1\" quantity=\"12\"");
    has(small, "<stock id=\"2\" quantity=\"3.5\"");
    let large = size(mug, "MUG-1001-L");
    has(large, "code_producer=\"5901234123464\"");
    has(large, "weight=\"400\"");
    has(large, "<stock id=\"1\" quantity=\"0\"");
    has(large, "<stock id=\"2\" quantity=\"7\"");
    // The product price, converted; the empty <srp> is no SRP.
    has(mug, "<price gross=\"49.2\" net=\"40\"/>");
    // The large size has no price of its own: the product's.
    has(large, "<price gross=\"49.2\" net=\"40\"/>");
    assert!(!mug.contains("<srp"), "{mug}");
    // Names by language: no xml:lang is the offer's (en → eng), de → ger.
    has(mug, "<name xml:lang=\"eng\"><![CDATA[Enamel mug]]></name>");
    has(
        mug,
        "<name xml:lang=\"ger\"><![CDATA[Emaillebecher]]></name>",
    );
    assert!(!mug.contains("xml:lang=\"pol\""), "{mug}");
    // <description><description> is the long description.
    has(
        mug,
        "<long_desc xml:lang=\"eng\"><![CDATA[<p>Hand-dipped enamel, 350 ml.</p>]]></long_desc>",
    );
    // The category path is a hierarchy, published as the same path.
    has(mug, "<category id=\"11\" name=\"Home/Kitchen/Mugs\"/>");
    // 14.06.2025 13:06:48 in IOF's shape.
    has(mug, "changed=\"2025-06-14 13:06:48\"");

    // 1002: product-level EAN on its only size (id uniw), vat 0, a `\` path, gross-only price.
    let spade = product(&full, "1002");
    has(spade, "vat=\"0");
    has(spade, "code_on_card=\"SPADE-2\"");
    has(spade, "producer_code_standard=\"GTIN13\"");
    let only = size(spade, "SPADE-2-U");
    has(only, "id=\"uniw\"");
    has(only, "code_producer=\"4006381333931\"");
    has(only, "weight=\"2\"");
    has(only, "<stock id=\"1\" quantity=\"4\"");
    // 25,00 EUR gross at VAT 0; the SRP's empty net is completed from its gross.
    has(spade, "<price gross=\"100\" net=\"100\"/>");
    has(spade, "<srp gross=\"120\" net=\"120\"/>");
    has(spade, "<category id=\"12\" name=\"Garden/Tools\"/>");
    has(
        spade,
        "<name xml:lang=\"pol\"><![CDATA[Szpadel ogrodowy]]></name>",
    );
    has(spade, "changed=\"2025-06-14 13:06:00\"");

    // 1003: no sizes: the EAN (8 digits) is carried on the one size; cs → cze.
    let gift = product(&full, "1003");
    has(gift, "producer_code_standard=\"GTIN8\"");
    has(gift, "code_producer=\"40170725\"");
    has(
        gift,
        "<name xml:lang=\"cze\"><![CDATA[Dárková krabička]]></name>",
    );
    has(gift, "<price gross=\"10.8\" net=\"10\"/>");
    // Promotion dates as NMTOKENs (14.06.2025, 30.06.2025 23:59) and its price converted.
    has(
        gift,
        "<promotion name=\"Summer\" start_date=\"2025-06-14\" ending_date=\"2025-06-30T23:59:00\">",
    );
    has(gift, "<price gross=\"8.64\" net=\"8\"/>");

    // light.xml carries the same stock per size and warehouse.
    let light_mug = product(&light, "1001");
    let light_small = size(light_mug, "MUG-1001-S");
    has(light_small, "<stock id=\"1\" quantity=\"12\"/>");
    has(light_small, "<stock id=\"2\" quantity=\"3.5\"/>");
    has(light_small, "<price gross=\"44.28\" net=\"36.00\"/>");
    has(size(light_mug, "MUG-1001-L"), "quantity=\"7\"");

    // The JSON report: per field, and the one value this offer cannot hold.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    let r = &report["offers"][0]["report"];
    assert_eq!(r["products"], 3, "{r:#}");
    assert_eq!(r["conversion"]["from"], "EUR");
    let f = &r["fields"];
    assert_eq!(f["product/sizes/size@id"]["derived"], 3, "{f:#}");
    assert_eq!(f["product@EAN"]["mapped"], 2, "{f:#}");
    assert_eq!(f["product/price@net"]["converted"], 2, "{f:#}");
    assert_eq!(f["product/sizes/size@weight"]["converted"], 2, "{f:#}");
    assert_eq!(f["product/sizes/size/stock@quantity"]["mapped"], 5, "{f:#}");
    assert_eq!(f["product/images/image@changed"]["converted"], 2, "{f:#}");
    assert_eq!(f["product/promotion@start_date"]["converted"], 1, "{f:#}");
    assert_eq!(f["product/category@name"]["derived"], 2, "{f:#}");
    assert_eq!(f["product/category@id"]["mapped"], 3, "{f:#}");
    assert_eq!(f["products@language"]["derived"], 1, "{f:#}");
    // One producer code per size: 1002's second product-level code is reported, with why.
    assert_eq!(f["product@code_producer"]["dropped"], 1, "{f:#}");
    let example = f["product@code_producer"]["dropped_examples"][0]
        .as_str()
        .unwrap();
    assert!(
        example.contains("1002")
            && example.contains("ACME-SPADE-2")
            && example.contains("already has the producer code \"4006381333931\""),
        "{example}"
    );
    assert!(r["elapsed_ms"].is_u64(), "{r:#}");
}

#[test]
fn strict_refuses_an_offer_that_would_lose_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = setup(dir.path());
    let out = import(&data, &config, &["--strict"], &fixture("b2b-en-eur"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    has(&stderr, "product@code_producer");
    has(&stderr, "nothing was imported (--strict)");
    assert!(
        !data.join("store/MANIFEST").exists(),
        "nothing was written to the store"
    );
}

#[test]
fn a_currency_without_a_rate_is_refused_naming_it_and_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = setup(dir.path());
    let out = import(&data, &config, &[], &fixture("czk-no-rate"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    has(&stderr, "prices are in CZK");
    has(&stderr, "[currencies]");
    has(&stderr, "base_currency is PLN");
    assert!(!data.join("store/MANIFEST").exists());

    // Without any rate configured, EUR is refused the same way: never published as PLN.
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "base_currency = \"PLN\"\n").unwrap();
    let out = import(&data, &bare, &[], &fixture("b2b-en-eur"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    has(&stderr, "prices are in EUR");
}

#[test]
fn reimporting_the_same_feed_keeps_the_derived_ids() {
    let options = iofd::ingest::iof::ImportOptions {
        rates: [("PLN", Decimal::ONE), ("EUR", Decimal::new(25, 2))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ..Default::default()
    };
    let a = iofd::ingest::iof::read_offer_with(&fixture("b2b-en-eur"), &options).unwrap();
    let b = iofd::ingest::iof::read_offer_with(&fixture("b2b-en-eur"), &options).unwrap();
    assert_eq!(a.records, b.records);
    let categories: Vec<_> = a
        .records
        .iter()
        .filter_map(|r| match r {
            iofd::catalog::Record::Category(c) => Some((c.id, c.parent, c.name["eng"].clone())),
            _ => None,
        })
        .collect();
    // Home > Kitchen > Mugs (11) and Garden > Tools (12); parents have derived ids.
    let by_name = |n: &str| categories.iter().find(|c| c.2 == n).unwrap().clone();
    let (home, kitchen, mugs) = (by_name("Home"), by_name("Kitchen"), by_name("Mugs"));
    assert_eq!(home.1, None);
    assert_eq!(kitchen.1, Some(home.0));
    assert_eq!((mugs.0, mugs.1), (11, Some(kitchen.0)));
    let (garden, tools) = (by_name("Garden"), by_name("Tools"));
    assert_eq!((tools.0, tools.1), (12, Some(garden.0)));
    assert_eq!(categories.len(), 5, "{categories:?}");
}

mod roundtrip {
    use std::collections::BTreeMap;

    use iofd::catalog::{Price, Product, Record};
    use iofd::generate::{generate_to, GenerateOptions};
    use iofd::store::ApplyMode;
    use proptest::prelude::*;

    use super::*;

    /// What a partner sees of a product, and so what an import of its feed must give back:
    /// id, type, VAT, code, producer code standard, texts, and per size its id, code,
    /// producer code, weight, effective prices (its own, else the product's) and stock per
    /// warehouse.
    type Seen = (
        String,
        Vec<(
            String,
            String,
            Option<String>,
            Option<u32>,
            [Option<Price>; 3],
            Vec<(u32, Decimal)>,
        )>,
    );

    fn seen(p: &Product) -> Seen {
        let head = format!(
            "{} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?}",
            p.id,
            p.kind,
            p.vat.normalize(),
            p.code,
            p.producer_code_standard,
            p.description.name,
            p.description.short_desc,
            p.description.long_desc,
            p.category,
        );
        let pick = |own: &Option<Price>, product: &Option<Price>| {
            own.clone().or(product.clone()).map(|x| Price {
                net: x.net.normalize(),
                gross: x.gross.normalize(),
            })
        };
        let sizes = p
            .sizes
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    s.code.clone(),
                    s.code_producer.clone(),
                    s.weight,
                    [
                        pick(&s.prices.retail, &p.prices.retail),
                        pick(&s.prices.srp, &p.prices.srp),
                        pick(
                            &s.prices.strikethrough_retail,
                            &p.prices.strikethrough_retail,
                        ),
                    ],
                    s.stock
                        .iter()
                        .map(|l| (l.warehouse, l.quantity.normalize()))
                        .collect(),
                )
            })
            .collect();
        (head, sizes)
    }

    /// The products shop 1 publishes (a product limited to other shops is not in its feed).
    fn products(records: &[Record]) -> BTreeMap<u64, Seen> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Product(p) if p.shops.is_empty() || p.shops.contains(&1) => {
                    Some((p.id, seen(p)))
                }
                _ => None,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

        /// Any catalog iofd publishes, imported back from its own full.xml and light.xml,
        /// is the same catalog.
        #[test]
        fn a_published_catalog_imports_back_as_itself(seed in any::<u64>(), count in 1u64..25) {
            let mut jsonl = Vec::new();
            generate_to(&mut jsonl, &GenerateOptions { products: count, seed }).unwrap();
            let records: Vec<Record> = jsonl
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let mut r: Record = serde_json::from_slice(l).unwrap();
                    r.normalize().unwrap();
                    r
                })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            let store = Store::open(&data.join("store"), StoreOptions::default()).unwrap();
            store.apply(records.clone(), ApplyMode::FullSync).unwrap();
            drop(store);
            let (full, light) = publish(&data);
            let offer = dir.path().join("offer");
            std::fs::create_dir_all(&offer).unwrap();
            std::fs::write(offer.join("full.xml"), &full).unwrap();
            std::fs::write(offer.join("light.xml"), &light).unwrap();
            let back = iofd::ingest::iof::read_offer(&offer).unwrap();
            let before = products(&records);
            let after = products(&back.records);
            prop_assert_eq!(before.len(), after.len());
            for (id, a) in &before {
                prop_assert_eq!(Some(a), after.get(id), "product {}", id);
            }
        }
    }
}

#[test]
fn a_product_that_cannot_be_imported_refuses_the_offer_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = setup(dir.path());
    let offer = dir.path().join("offer");
    std::fs::create_dir_all(&offer).unwrap();
    std::fs::write(
        offer.join("full.xml"),
        r#"<offer><products language="pl" currency="PLN">
<product id="1" vat="-100"><price gross="10"/><description><name>Bad</name></description></product>
<product id="2" vat="23"><price gross="12,30"/><description><name>Good</name></description></product>
</products></offer>"#,
    )
    .unwrap();
    let out = import(&data, &config, &[], &offer);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    has(&stderr, "product at line 2 (byte ");
    has(&stderr, "vat \"-100\" is not a rate between 0 and 100");
    has(&stderr, "nothing was imported");
    assert!(!data.join("store/MANIFEST").exists());

    let out = import(&data, &config, &["--skip-invalid"], &offer);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (full, _) = publish(&data);
    has(product(&full, "2"), "<price gross=\"12.3\" net=\"10\"/>");
    assert!(!full.contains("<product id=\"1\""), "{full}");
}
