//! Third-party clients against a real server: an offer imported from another platform without
//! shop metadata is served from every URL `serve` prints, and every file a partner reaches
//! from its gateway validates with both XSD engines and parses with python-idosell. Partner
//! ids that are e-mail logins and IdoSell's `language=` work as migrated URLs use them.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use iofd::app::App;
use iofd::config::{Config, ServeArgs};
use iofd::xsd::{self, Schema};

const ADMIN_TOKEN: &str = "clients-test-admin-token";
const JAN: &str = "jan.kowalski@sklep.example";
const JAN_TOKEN: &str = "clients-test-token-jan-0001";

fn validate(kind: &str, bytes: &[u8]) {
    let schema = Schema::for_kind(kind).unwrap_or_else(|| panic!("no schema for {kind}"));
    if let Err(e) = xsd::validate(schema, bytes) {
        panic!("{kind}: {e}");
    }
}

/// The last path segment of a file URL, without the query.
fn file_name(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Fetch a gateway and every file it lists: 200, MD5 as listed, valid (xmllint); each kept
/// under `out` for the client check. Returns the gateway.
fn fetch_offer(server: &Server, gateway_url: &str, out: &Path, kept: &mut Vec<PathBuf>) -> Vec<u8> {
    let gw = server.get(gateway_url);
    assert_eq!(gw.status(), 200, "{gateway_url}");
    let gw = gw.bytes().unwrap().to_vec();
    validate("gateway", &gw);
    kept.push(keep(out, "gateway.xml", &gw));
    for (kind, url, hash) in gateway_files(&gw) {
        let resp = server.get(&url);
        assert_eq!(resp.status(), 200, "{url}");
        let body = resp.bytes().unwrap();
        if let Some(hash) = hash {
            assert_eq!(
                md5_hex(&body),
                hash,
                "{url}: the gateway's hash is the served MD5"
            );
        }
        let name = file_name(&url);
        let stem = name.trim_end_matches(".xml");
        validate(if kind == "change" { stem } else { &kind }, &body);
        kept.push(keep(out, &name, &body));
    }
    gw
}

fn write_setup(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let partners = dir.join("partners.toml");
    std::fs::write(
        &partners,
        format!(
            "[[partner]]\nid = \"{JAN}\"\nname = \"Migrated from IdoSell\"\ntoken = \"{JAN_TOKEN}\"\n\
             shops = [1]\nlanguages = [\"pol\", \"eng\"]\n\n\
             [[partner]]\nid = \"csv-hurt\"\ntoken = \"clients-test-token-csv-0001\"\nshops = [1]\nformat = \"csv\"\n"
        ),
    )
    .unwrap();
    let config = dir.join("iofd.toml");
    std::fs::write(
        &config,
        format!(
            "data = {:?}\npartners = {:?}\nadmin_token = \"{ADMIN_TOKEN}\"\nchange_window = \"1s\"\n\
             rate_limit = 0\n\n[shop]\nid = 1\nlong_name = \"Hurtownia Testowa\"\n\
             short_name = \"hurtownia-testowa\"\nlogo_url = \"https://hurtownia-testowa.example/logo.png\"\n\
             email = \"biuro@hurtownia-testowa.example\"\ntel = \"+48 22 000 00 00\"\nfax = \"+48 22 000 00 01\"\n\
             www = \"https://hurtownia-testowa.example\"\n\n[shop.address]\ncity = \"Warszawa\"\ncountry = \"Polska\"\n",
            data.display().to_string(),
            partners.display().to_string()
        ),
    )
    .unwrap();
    config
}

#[test]
fn an_offer_without_shop_metadata_is_served_to_third_party_clients() {
    let dir = tempdir();
    let config_file = write_setup(dir.path());
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/third-party/no-shop/full.xml");

    // Imported as a user would, into an empty data directory; the import says what the
    // gateway will show for the missing shop metadata.
    let import = std::process::Command::new(env!("CARGO_BIN_EXE_iofd"))
        .arg("import")
        .arg("--config")
        .arg(&config_file)
        .arg(&fixture)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert!(import.status.success(), "{stderr}");
    assert!(
        stderr.contains("no shop metadata")
            && stderr.contains("the gateway of shop 1 will use the [shop] table")
            && stderr.contains("Hurtownia Testowa"),
        "{stderr}"
    );

    let config = Config::load(&ServeArgs {
        config: Some(config_file),
        ..Default::default()
    })
    .unwrap();
    // Change windows pass when the test moves the clock.
    let mut config = config;
    config.clock = iofd::clock::Clock::manual(jiff::Timestamp::now());
    let server = Server::start(config);
    assert!(server.app.store.snapshot().dicts().shops.is_empty());
    let entries = server.app.entry_urls();
    assert_eq!(
        entries
            .iter()
            .map(|e| file_name(&e.url))
            .collect::<Vec<_>>(),
        ["gateway.xml", "full.csv", "light.csv"]
    );
    let served = dir.path().join("served");
    let mut kept = Vec::new();
    for entry in &entries {
        assert!(entry.url.starts_with(&server.base), "{}", entry.url);
        if entry.url.ends_with("gateway.xml") {
            let gw = fetch_offer(&server, &entry.url, &served.join("first"), &mut kept);
            let text = String::from_utf8(gw).unwrap();
            assert!(text.contains("<changes/>"), "{text}");
            assert!(
                text.contains("<long_name><![CDATA[Hurtownia Testowa]]>"),
                "{text}"
            );
            // Profile-addressed links, signed for this partner (its token is not in them).
            assert!(text.contains("/p/"), "{text}");
            assert!(
                text.contains(&format!("/full.xml?partner={JAN}&amp;expires=")),
                "{text}"
            );
            assert!(!text.contains(JAN_TOKEN), "{text}");
        } else {
            let resp = server.get(&entry.url);
            assert_eq!(resp.status(), 200, "{}", entry.url);
            assert!(resp.text().unwrap().contains("KUB-101"), "{}", entry.url);
        }
    }

    // A change: the next window's file is listed (newest first) and served.
    let put = client()
        .put(format!("{}/v1/products/101", server.admin))
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("Content-Type", "application/json")
        .body(r#"{"vat":23,"description":{"name":{"pol":"Kubek 300 ml, nowa glazura"}},"prices":{"retail":{"net":"21.00","gross":"25.83"}}}"#)
        .send()
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().unwrap());
    server.pass(Duration::from_secs(1));
    let gateway = &entries[0].url;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let gw = server.get(gateway).bytes().unwrap();
        if gateway_files(&gw)
            .iter()
            .any(|(kind, _, _)| kind == "change")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no change file listed in time");
        std::thread::sleep(Duration::from_millis(100));
    }
    fetch_offer(&server, gateway, &served.join("changed"), &mut kept);
    assert!(kept
        .iter()
        .any(|p| file_name(&p.display().to_string()).starts_with("full_change")));

    // IdoSell's URL form, as a migrated importer has it: the e-mail login percent-encoded,
    // `language=` choosing among the partner's languages; the gateway's links name that
    // language's profile.
    let idosell = |language: &str| {
        format!(
            "/edi/export-offer.php?client=jan.kowalski%40sklep.example&language={language}\
             &token={JAN_TOKEN}&shop=1&type=gateway&format=xml&iof_3_0"
        )
    };
    // A language other than the partner's first is rendered once asked for: 503 with
    // Retry-After until its files are published.
    let first = server.get(&idosell("eng"));
    assert_eq!(first.status(), 503);
    assert!(first.headers().contains_key("retry-after"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.get(&idosell("eng")).status() == 503 {
        assert!(
            Instant::now() < deadline,
            "the eng offer was not rendered in time"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let gw = fetch_offer(&server, &idosell("eng"), &served.join("eng"), &mut kept);
    let files = gateway_files(&gw);
    assert!(
        files
            .iter()
            .all(|(_, url, _)| url.contains("/p/") && url.contains("&sig=")),
        "{files:?}"
    );
    let first_gateway = std::fs::read(served.join("first/gateway.xml")).unwrap();
    let pol_full = gateway_files(&first_gateway)[0].1.clone();
    assert_ne!(
        pol_full.split('?').next(),
        files[0].1.split('?').next(),
        "each language has its own profile path"
    );
    let full_eng = server.get(&files[0].1).text().unwrap();
    assert!(
        full_eng.contains("language=\"eng\""),
        "the offer is in English"
    );
    let full_pol = std::fs::read_to_string(served.join("first/full.xml")).unwrap();
    assert!(
        full_pol.contains("language=\"pol\""),
        "by default the first language"
    );
    assert_eq!(
        server.get(&idosell("pol")).status(),
        200,
        "the first language is ready"
    );
    for missing in [idosell("deu"), idosell("ENG")] {
        let resp = server.get(&missing);
        assert_eq!(
            resp.status(),
            404,
            "{missing}: a language the partner does not have"
        );
    }
    let full_in = |language: &str| {
        format!("/edi/export-offer.php?client={JAN}&token={JAN_TOKEN}&shop=1&type=full&language={language}")
    };
    assert_eq!(server.get(&full_in("eng")).text().unwrap(), full_eng);

    check_clients(&kept);
}

fn partner(id: &str, shop: u32) -> String {
    format!("[[partner]]\nid = \"{id}\"\ntoken = \"token-of-{id}-0000000000\"\nshops = [{shop}]\n")
}

#[test]
fn a_partner_whose_shop_does_not_exist_is_refused_with_the_reason() {
    let dir = tempdir();
    let partners = dir.path().join("partners.toml");
    let mut config = Config::for_data_dir(&data_path(&dir));
    config.partners_file = Some(partners.clone());

    // At start-up: a clear error, nothing served.
    std::fs::write(&partners, partner("acme", 9)).unwrap();
    let err = App::open(config.clone())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("partner \"acme\": shop 9 does not exist: the catalog has shops 1, 2 and the configuration's [shop] table is shop 1"),
        "{err}"
    );

    // On reload: refused with the reason, the accounts in force keep serving.
    std::fs::write(&partners, partner("acme", 1)).unwrap();
    let server = Server::start(config);
    let gateway = "/feeds/acme/token-of-acme-0000000000/1/gateway.xml";
    assert_eq!(server.get(gateway).status(), 200);
    std::fs::write(&partners, partner("acme", 1) + &partner("other", 9)).unwrap();
    let err = server
        .app
        .reload_partners()
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("partner \"other\": shop 9 does not exist"),
        "{err}"
    );
    assert!(server.app.partners_status().last_error.is_some());
    assert_eq!(server.get(gateway).status(), 200);
    assert_eq!(
        server
            .get("/feeds/other/token-of-other-0000000000/9/gateway.xml")
            .status(),
        404
    );
}

/// Run the checker with `hidden` Python modules made unimportable.
fn checker_without(hidden: &[&str], files: &[PathBuf]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-clients.py");
    let hide: String = hidden
        .iter()
        .map(|m| format!("sys.modules['{m}'] = None; "))
        .collect();
    std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import runpy, sys; {hide}sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
        ))
        .arg(&script)
        .args(files)
        .output()
        .expect("python3")
}

#[test]
fn the_client_check_fails_on_a_bad_gateway_and_without_its_checkers() {
    let dir = tempdir();
    let official = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/iof/examples/gateway.xml"),
    )
    .unwrap();
    let good = keep(&dir.path().join("good"), "gateway.xml", official.as_bytes());
    assert!(checker_without(&[], std::slice::from_ref(&good))
        .status
        .success());
    // Schema-valid, but python-idosell needs every <meta> field filled; and a gateway that
    // breaks the schema fails the second engine.
    let no_fax = official.replace("<fax><![CDATA[+48 91 443 66 00]]></fax>", "<fax/>");
    let no_meta = official
        .replace("<meta>", "<metadata>")
        .replace("</meta>", "</metadata>");
    for (name, text, engine) in [
        ("no-fax", no_fax, "python-idosell"),
        ("no-meta", no_meta, "xmlschema"),
    ] {
        let bad = keep(&dir.path().join(name), "gateway.xml", text.as_bytes());
        let out = checker_without(&[], &[good.clone(), bad]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}");
        assert!(
            stdout.contains(&format!("{name}/gateway.xml: {engine}")),
            "{stdout}"
        );
    }
    for missing in ["xmlschema", "idosell"] {
        let out = checker_without(&[missing], std::slice::from_ref(&good));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{missing}: {stderr}");
        assert!(stderr.contains("is not installed"), "{stderr}");
    }
}
