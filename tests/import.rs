//! `iofd import` as a user runs it (the built binary): the full-sync removal guard.

use std::path::Path;
use std::process::{Command, Output};

use iofd::store::{Store, StoreOptions};

fn import(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iofd"))
        .arg("import")
        .arg("--data")
        .arg(data)
        .args(args)
        .env("IOFD_LOG", "warn")
        .output()
        .expect("run iofd import")
}

fn products(data: &Path) -> usize {
    Store::open(&data.join("store"), StoreOptions::default())
        .unwrap()
        .snapshot()
        .len()
}

#[test]
fn a_full_sync_import_that_removes_too_much_needs_the_count_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/catalog.jsonl");
    let out = import(&data, &[catalog.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(products(&data), 200);

    let short = dir.path().join("short.jsonl");
    std::fs::write(
        &short,
        r#"{"kind":"product","id":1,"vat":23,"description":{"name":{"pol":"Jedyny"}}}"#,
    )
    .unwrap();
    let short = short.to_str().unwrap();
    let out = import(&data, &["--full-sync", short]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("would remove 199 of the 200 products")
            && stderr.contains("--confirm-removal 199"),
        "{stderr}"
    );
    assert_eq!(products(&data), 200, "nothing removed");

    // The flag only goes with --full-sync; with it and the wrong count, still refused.
    let out = import(&data, &["--confirm-removal", "199", short]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--full-sync"));
    let out = import(&data, &["--full-sync", "--confirm-removal", "198", short]);
    assert!(!out.status.success());
    assert_eq!(products(&data), 200);

    let out = import(&data, &["--full-sync", "--confirm-removal", "199", short]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("199 removed"));
    assert_eq!(products(&data), 1);
}

/// An IOF full.xml: one good product and the hostile values that used to panic the importer.
const HOSTILE_OFFER: &str = r#"<?xml version="1.0"?>
<offer xmlns="http://www.iai-shop.com/developers/iof.phtml" file_format="IOF" version="3.0">
<products language="pol" currency="PLN">
 <product id="1" vat="23"><description><name>Dobry</name></description><price gross="12.30"/></product>
 <product id="2" vat="-100"><description><name>Minus sto</name></description><price gross="12.30"/></product>
 <product id="3" vat="1e29"><description><name>Ogromny VAT</name></description><price gross="12.30"/></product>
 <product id="4" vat="10000000000000000000000000000"><description><name>Prawie max</name></description><price net="10"/></product>
 <product id="5" vat="23"><description><name>VAT ceny</name></description><price gross="12.30" vat="-100"/></product>
</products>
</offer>"#;

#[test]
fn hostile_vat_in_an_iof_offer_is_reported_with_the_product_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let offer = dir.path().join("full.xml");
    std::fs::write(&offer, HOSTILE_OFFER).unwrap();
    // An offer is imported whole or not at all: each hostile product is named with its
    // reason, nothing is applied, and no product gets a made-up VAT.
    let out = import(&data, &[offer.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "panicked: {stderr}");
    assert!(!out.status.success(), "{stderr}");
    let skipped: Vec<&str> = stderr.lines().filter(|l| l.contains("skipped")).collect();
    assert_eq!(skipped.len(), 4, "{stderr}");
    assert!(skipped.iter().all(|l| l.contains("vat")), "{stderr}");
    assert!(
        stderr.contains(r#"vat "-100" is not a rate between 0 and 100"#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"vat "1e29" is not a rate between 0 and 100"#),
        "{stderr}"
    );
    assert!(stderr.contains(r#"price@vat: "-100""#), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    // Told to, it imports the one valid product.
    let out = import(&data, &["--skip-invalid", offer.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let store = Store::open(&data.join("store"), StoreOptions::default()).unwrap();
    let snapshot = store.snapshot();
    assert_eq!(snapshot.len(), 1);
    let good = snapshot.product(1).unwrap();
    assert_eq!(iofd::catalog::decimal(&good.vat).to_string(), "23");
}
