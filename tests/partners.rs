//! Partner accounts from outside: a real server on a real socket, partners managed through the
//! same functions as `iofd partners`, and a server that reloads partners.toml on its own.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use iofd::catalog::Format;
use iofd::config::Config;
use iofd::partners::edit::{self, IssuedToken, Settings};
use iofd::partners::FileType;
use iofd::xsd::{self, Schema};
use rust_decimal::{Decimal, RoundingStrategy};

/// The demo configuration's EUR rate (units per 1 PLN).
const EUR: &str = "0.2315";

struct Origin {
    _dir: tempfile::TempDir,
    server: Server,
    partners: PathBuf,
    config: Config,
}

/// A server over a generated catalog of `products`, with the partners `setup` adds (through
/// the CLI's functions, so tokens are hashed as in production).
fn origin(products: u64, setup: impl FnOnce(&Path, &Config)) -> Origin {
    let dir = tempdir();
    let data = data_path(&dir);
    let gen = dir.path().join("gen");
    iofd::generate::generate(
        &iofd::generate::GenerateOptions { products, seed: 11 },
        &gen,
    )
    .unwrap();
    let mut config = Config::for_data_dir(&data);
    let partners = dir.path().join("partners.toml");
    config.partners_file = Some(partners.clone());
    config.demo = false;
    {
        let store =
            iofd::store::Store::open(&config.store_dir(), iofd::store::StoreOptions::default())
                .unwrap();
        let batch = iofd::ingest::read_jsonl_file(&gen.join("catalog.jsonl")).unwrap();
        assert!(batch.rejected.is_empty());
        store
            .apply(
                batch.records.into_iter().map(|l| l.record).collect(),
                iofd::store::ApplyMode::FullSync,
            )
            .unwrap();
    }
    setup(&partners, &config);
    let server = Server::start(config.clone());
    Origin {
        _dir: dir,
        server,
        partners,
        config,
    }
}

fn add(path: &Path, config: &Config, id: &str, settings: Settings) -> IssuedToken {
    edit::add(path, config, id, &settings).unwrap()
}

fn gateway_path(t: &IssuedToken, shop: u32) -> String {
    format!("/feeds/{}/{}/{shop}/gateway.xml", t.partner, t.token)
}

fn file_path(t: &IssuedToken, shop: u32, name: &str) -> String {
    format!("/feeds/{}/{}/{shop}/{name}", t.partner, t.token)
}

fn validate(kind: &str, bytes: &[u8]) {
    let schema = Schema::for_kind(kind).unwrap_or_else(|| panic!("no schema for {kind}"));
    if let Err(e) = xsd::validate(schema, bytes) {
        panic!("{kind}: {e}");
    }
}

/// Wait until `check` holds, for at most `limit`.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file a gateway lists: download, check the MD5, return `kind → bytes`.
fn fetch_all(server: &Server, gateway: &str) -> BTreeMap<String, bytes::Bytes> {
    let resp = server.get(gateway);
    assert_eq!(resp.status(), 200, "{gateway}");
    let gw = resp.bytes().unwrap();
    validate("gateway", &gw);
    let mut files = BTreeMap::new();
    for (kind, url, hash) in gateway_files(&gw) {
        let resp = server.get(&url);
        assert_eq!(resp.status(), 200, "{url}");
        let body = resp.bytes().unwrap();
        assert_eq!(
            Some(md5_hex(&body)),
            hash,
            "{url}: the gateway hash is the MD5 of the served bytes"
        );
        files.insert(kind, body);
    }
    files
}

/// What an offer says about prices and stock, from full.xml or light.xml.
#[derive(Default)]
struct Offer {
    language: String,
    currency: String,
    /// Product-level price (net, gross) by product id.
    prices: BTreeMap<String, (Decimal, Decimal)>,
    /// Size-level price by (product id, size id).
    size_prices: BTreeMap<(String, String), (Decimal, Decimal)>,
    /// Whether each product has a size with quantity above 0 or unlimited (-1).
    in_stock: BTreeMap<String, bool>,
}

fn parse_offer(xml: &[u8]) -> Offer {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut offer = Offer::default();
    let (mut product, mut size) = (String::new(), None::<String>);
    loop {
        let event = reader.read_event_into(&mut buf).expect("offer parses");
        let (e, empty) = match &event {
            Event::Eof => break,
            Event::Start(e) => (e.clone(), false),
            Event::Empty(e) => (e.clone(), true),
            Event::End(e) => {
                match e.name().as_ref() {
                    b"size" => size = None,
                    b"product" => {
                        product.clear();
                        size = None;
                    }
                    _ => {}
                }
                buf.clear();
                continue;
            }
            _ => {
                buf.clear();
                continue;
            }
        };
        let attr = |name: &[u8]| -> Option<String> {
            e.attributes()
                .flatten()
                .find(|a| a.key.as_ref() == name)
                .map(|a| a.unescape_value().unwrap().into_owned())
        };
        match e.name().as_ref() {
            b"products" => {
                offer.language = attr(b"language").unwrap_or_default();
                offer.currency = attr(b"currency").unwrap_or_default();
            }
            b"product" => {
                product = attr(b"id").unwrap();
                offer.in_stock.insert(product.clone(), false);
            }
            // An empty <size/> has no price or stock inside it.
            b"size" if !product.is_empty() && !empty => size = attr(b"id"),
            b"price" if !product.is_empty() => {
                let p = (
                    Decimal::from_str(&attr(b"net").unwrap()).unwrap(),
                    Decimal::from_str(&attr(b"gross").unwrap()).unwrap(),
                );
                match &size {
                    Some(s) => {
                        offer
                            .size_prices
                            .entry((product.clone(), s.clone()))
                            .or_insert(p);
                    }
                    None => {
                        offer.prices.entry(product.clone()).or_insert(p);
                    }
                }
            }
            b"stock" if size.is_some() => {
                if let Some(q) = attr(b"quantity") {
                    let q = Decimal::from_str(&q).unwrap();
                    if q > Decimal::ZERO || q == Decimal::NEGATIVE_ONE {
                        offer.in_stock.insert(product.clone(), true);
                    }
                }
            }
            _ => {}
        }
        buf.clear();
    }
    offer
}

fn money(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

#[test]
fn two_partners_get_every_listed_file_valid_hashed_and_priced_by_their_settings() {
    let mut tokens = Vec::new();
    let o = origin(300, |path, config| {
        tokens.push(add(
            path,
            config,
            "pl-retail",
            Settings {
                shops: Some(vec![1]),
                languages: Some(vec!["pol".into()]),
                currency: Some("PLN".into()),
                ..Default::default()
            },
        ));
        tokens.push(add(
            path,
            config,
            "eu-instock",
            Settings {
                shops: Some(vec![1]),
                languages: Some(vec!["eng".into(), "pol".into()]),
                currency: Some("EUR".into()),
                discount_percent: Some(Decimal::from_str("7.5").unwrap()),
                only_in_stock: Some(true),
                ..Default::default()
            },
        ));
    });
    let mut offers = Vec::new();
    for t in &tokens {
        let files = fetch_all(&o.server, &gateway_path(t, 1));
        for required in [
            "full",
            "light",
            "categories",
            "sizes",
            "producers",
            "units",
            "parameters",
            "stocks",
            "series",
            "warranties",
        ] {
            assert!(files.contains_key(required), "{}: no {required}", t.partner);
        }
        for (kind, bytes) in &files {
            validate(kind, bytes);
        }
        offers.push((parse_offer(&files["full"]), parse_offer(&files["light"])));
    }
    let (pl_full, pl_light) = &offers[0];
    let (eu_full, eu_light) = &offers[1];
    assert_eq!(
        (pl_light.language.as_str(), pl_light.currency.as_str()),
        ("pol", "PLN")
    );
    assert_eq!(
        (eu_light.language.as_str(), eu_light.currency.as_str()),
        ("eng", "EUR")
    );
    assert_eq!(eu_full.currency, "EUR");

    // Only in stock: the EU partner gets exactly the products that have stock.
    let in_stock: BTreeSet<&String> = pl_light
        .in_stock
        .iter()
        .filter(|(_, s)| **s)
        .map(|(id, _)| id)
        .collect();
    let eu_products: BTreeSet<&String> = eu_light.prices.keys().collect();
    assert!(
        in_stock.len() < pl_light.prices.len(),
        "the catalog has products without stock"
    );
    assert_eq!(eu_products, in_stock);
    assert_eq!(eu_full.prices.keys().collect::<BTreeSet<_>>(), in_stock);

    // Prices: light = converted and discounted (one rounding), full = converted only.
    let rate = Decimal::from_str(EUR).unwrap();
    let keep = Decimal::from_str("0.925").unwrap();
    let mut compared = 0;
    for id in &eu_products {
        let (pl_net, pl_gross) = pl_light.prices[*id];
        let (eu_net, eu_gross) = eu_light.prices[*id];
        assert_eq!(eu_net, money(pl_net * rate * keep), "product {id} net");
        assert_eq!(
            eu_gross,
            money(pl_gross * rate * keep),
            "product {id} gross"
        );
        let (full_net, full_gross) = eu_full.prices[*id];
        assert_eq!(full_net, money(pl_full.prices[*id].0 * rate), "{id}");
        assert_eq!(full_gross, money(pl_full.prices[*id].1 * rate), "{id}");
        compared += 1;
    }
    assert!(compared > 50, "compared {compared} products");
}

fn read_csv(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("a valid CSV record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn csv_and_gzip_partners_carry_the_same_offer_as_xml() {
    let mut tokens = Vec::new();
    let o = origin(200, |path, config| {
        let settings = Settings {
            shops: Some(vec![2]),
            languages: Some(vec!["eng".into()]),
            currency: Some("EUR".into()),
            discount_percent: Some(Decimal::from_str("12.5").unwrap()),
            wholesale: Some(true),
            ..Default::default()
        };
        tokens.push(add(path, config, "xml-twin", settings.clone()));
        tokens.push(add(
            path,
            config,
            "csv-twin",
            Settings {
                format: Some(Format::Csv),
                ..settings.clone()
            },
        ));
        tokens.push(add(
            path,
            config,
            "gz-twin",
            Settings {
                file_type: Some(FileType::Gzip),
                ..settings
            },
        ));
    });
    let (xml, csv_t, gz) = (&tokens[0], &tokens[1], &tokens[2]);
    let xml_files = fetch_all(&o.server, &gateway_path(xml, 2));

    // CSV: same products and prices, size by size.
    for (kind, name) in [("full", "full.csv"), ("light", "light.csv")] {
        let resp = o.server.get(&file_path(csv_t, 2, name));
        assert_eq!(resp.status(), 200);
        let rows = read_csv(&resp.bytes().unwrap());
        let offer = parse_offer(&xml_files[kind]);
        let csv_prices: BTreeMap<(String, String), (Decimal, Decimal)> = rows
            .iter()
            .map(|r| {
                assert_eq!(r["currency"], "EUR");
                (
                    (r["product_id"].clone(), r["size_id"].clone()),
                    (
                        Decimal::from_str(&r["price_net"]).unwrap(),
                        Decimal::from_str(&r["price_gross"]).unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(csv_prices.len(), rows.len(), "one row per product size");
        assert!(rows.len() > 50);
        assert_eq!(
            csv_prices, offer.size_prices,
            "{name}: the same sizes and prices as {kind}.xml"
        );
        let csv_products: BTreeSet<&String> = rows.iter().map(|r| &r["product_id"]).collect();
        assert_eq!(csv_products, offer.prices.keys().collect::<BTreeSet<_>>());
    }

    // gzip: the gateway lists .xml.gz files; they gunzip to valid XML with the same offer.
    let gz_files = fetch_all(&o.server, &gateway_path(gz, 2));
    let gw = o.server.get(&gateway_path(gz, 2)).bytes().unwrap();
    for (kind, url, _) in gateway_files(&gw) {
        let path = url.split('?').next().unwrap();
        assert!(path.ends_with(".xml.gz"), "{kind}: {url}");
    }
    assert_eq!(gz_files.len(), xml_files.len());
    for (kind, compressed) in &gz_files {
        assert_eq!(&compressed[..2], &[0x1f, 0x8b], "{kind} is gzip");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut plain)
            .unwrap();
        validate(kind, &plain);
        assert!(
            plain == xml_files[kind],
            "{kind}: the same bytes as the plain file ({} and {} bytes)",
            plain.len(),
            xml_files[kind].len()
        );
    }
}

/// A download over a raw socket that reads at a pace the test controls.
struct Download {
    received: Arc<AtomicU64>,
    fast: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Result<Vec<u8>, String>, Instant)>,
}

fn start_download(base: &str, path: &str) -> Download {
    let addr = base.trim_start_matches("http://").to_string();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let received = Arc::new(AtomicU64::new(0));
    let fast = Arc::new(AtomicBool::new(false));
    let (r, f) = (received.clone(), fast.clone());
    let thread = std::thread::spawn(move || {
        let result = (|| -> Result<Vec<u8>, String> {
            let mut s = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
            let mut all = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                match s.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        all.extend_from_slice(&chunk[..n]);
                        r.store(all.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => return Err(format!("{:?}: {e}", e.kind())),
                }
                if !f.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Ok(all)
        })();
        (result, Instant::now())
    });
    Download {
        received,
        fast,
        thread,
    }
}

/// Split a raw HTTP/1.1 response; the body must be complete per Content-Length.
fn complete_body(raw: &[u8]) -> Option<&[u8]> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })?
        .parse()
        .ok()?;
    (raw.len() - end == len).then_some(&raw[end..])
}

#[test]
fn revocation_cuts_the_download_in_flight_and_only_that_one() {
    let mut tokens = Vec::new();
    let same = Settings {
        shops: Some(vec![1]),
        ..Default::default()
    };
    // Enough products for a full.xml of several megabytes, streamed from disk.
    let o = origin(2500, |path, config| {
        tokens.push(add(path, config, "victim", same.clone()));
        tokens.push(add(path, config, "bystander", same.clone()));
    });
    let (victim, bystander) = (&tokens[0], &tokens[1]);
    let gw = o.server.get(&gateway_path(bystander, 1)).bytes().unwrap();
    let full_hash = gateway_files(&gw)
        .into_iter()
        .find(|(k, _, _)| k == "full")
        .and_then(|(_, _, h)| h)
        .unwrap();
    let full_len: u64 = o
        .server
        .request(
            reqwest::Method::HEAD,
            &file_path(victim, 1, "full.xml"),
            &[],
        )
        .headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(full_len > 4 << 20, "full.xml is {full_len} bytes");

    // Both partners fetch the same shared file, slowly.
    let cut = start_download(&o.server.base, &file_path(victim, 1, "full.xml"));
    let other = start_download(&o.server.base, &file_path(bystander, 1, "full.xml"));
    eventually(Duration::from_secs(5), "both downloads under way", || {
        cut.received.load(Ordering::Relaxed) > 256 * 1024
            && other.received.load(Ordering::Relaxed) > 256 * 1024
    });

    let revoked_at = Instant::now();
    assert!(edit::set_access(&o.partners, &o.config, "victim", false).unwrap());
    let (result, ended) = cut.thread.join().unwrap();
    let took = ended.duration_since(revoked_at);
    // Reset by the server (an error), or at least ended short of its Content-Length.
    if let Ok(raw) = &result {
        assert!(
            complete_body(raw).is_none(),
            "the revoked download must not complete ({} bytes)",
            raw.len()
        );
    }
    assert!(
        took < Duration::from_secs(1),
        "the download was cut {took:?} after the revocation ({} of {full_len} bytes received)",
        cut.received.load(Ordering::Relaxed)
    );

    // New requests: 403, one line, not cacheable.
    let resp = o.server.get(&file_path(victim, 1, "full.xml"));
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let text = resp.text().unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");

    // The other partner's download of the very same file goes on to the end.
    assert!(
        !other.thread.is_finished(),
        "the bystander is still downloading"
    );
    other.fast.store(true, Ordering::Relaxed);
    let (result, _) = other.thread.join().unwrap();
    let raw = result.expect("the bystander's download is not cut");
    let body = complete_body(&raw).expect("complete");
    assert_eq!(md5_hex(body), full_hash);

    // Restore: the same URL works again.
    assert!(edit::set_access(&o.partners, &o.config, "victim", true).unwrap());
    eventually(Duration::from_secs(1), "restored", || {
        o.server.get(&gateway_path(victim, 1)).status() == 200
    });
    let resp = o.server.get(&file_path(victim, 1, "full.xml"));
    assert_eq!(resp.status(), 200);
    assert_eq!(md5_hex(&resp.bytes().unwrap()), full_hash);
}

#[test]
fn reloads_apply_good_files_within_a_second_and_reject_broken_ones() {
    let mut tokens = Vec::new();
    let o = origin(60, |path, config| {
        tokens.push(add(
            path,
            config,
            "first",
            Settings {
                shops: Some(vec![1]),
                ..Default::default()
            },
        ));
    });
    let first = &tokens[0];
    let app = &o.server.app;
    // The watcher reads the file once when its watch is on.
    eventually(Duration::from_secs(2), "the watcher is up", || {
        app.partners_status().attempts >= 1
    });
    let ok = |t: &IssuedToken| o.server.get(&gateway_path(t, 1)).status();
    assert_eq!(ok(first), 200);

    // Broken files: rejected with the reason; the accounts in force keep serving.
    let good = std::fs::read_to_string(&o.partners).unwrap();
    for (broken, reason) in [
        (format!("{good}\n[[partner]\n"), "partners.toml"),
        (
            good.replace(
                "offer_access = true",
                "offer_access = true\ncolour = \"red\"",
            ),
            "colour",
        ),
        (
            format!("{good}\n{}", &good[good.find("[[partner]]").unwrap()..]),
            "duplicate",
        ),
    ] {
        let before = app.partners_status();
        edit::write_atomically(&o.partners, broken.as_bytes()).unwrap();
        eventually(Duration::from_secs(1), "the broken file is read", || {
            app.partners_status().attempts > before.attempts
        });
        let status = app.partners_status();
        assert_eq!(status.failures, before.failures + 1);
        let error = status.last_error.unwrap();
        assert!(error.contains(reason), "{reason} in {error}");
        assert_eq!(ok(first), 200, "previous accounts keep working");
    }
    edit::write_atomically(&o.partners, good.as_bytes()).unwrap();
    eventually(Duration::from_secs(1), "the good file is back", || {
        app.partners_status().last_error.is_none()
    });

    // A new partner with new settings: its files are rendered off the request path.
    let second = add(
        &o.partners,
        &o.config,
        "second",
        Settings {
            shops: Some(vec![1, 2]),
            languages: Some(vec!["eng".into()]),
            currency: Some("CZK".into()),
            ..Default::default()
        },
    );
    eventually(Duration::from_secs(5), "the new partner is served", || {
        ok(&second) == 200
    });
    let files = fetch_all(&o.server, &gateway_path(&second, 2));
    assert_eq!(parse_offer(&files["light"]).currency, "CZK");

    // Rotation: the old token is gone at once; the gateway under the new one links to signed
    // profile URLs, which carry no token (a rotation does not change them).
    let rotated = edit::rotate(&o.partners, &o.config, "first").unwrap();
    eventually(
        Duration::from_secs(1),
        "the old token stops working",
        || ok(first) == 404,
    );
    let gw = o.server.get(&gateway_path(&rotated, 1)).bytes().unwrap();
    for (_, url, _) in gateway_files(&gw) {
        let signed_for = format!("partner={}&", rotated.partner);
        assert!(url.contains(&signed_for), "{url}");
        assert!(
            !url.contains(&rotated.token) && !url.contains(&first.token),
            "{url}"
        );
    }

    // Sharing off: 403 for everyone; on again: back.
    edit::set_sharing(&o.partners, &o.config, false).unwrap();
    eventually(Duration::from_secs(1), "sharing off", || {
        ok(&rotated) == 403 && ok(&second) == 403
    });
    let resp = o.server.get(&gateway_path(&second, 1));
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.text().unwrap().contains("sharing"));
    edit::set_sharing(&o.partners, &o.config, true).unwrap();
    eventually(Duration::from_secs(1), "sharing on", || {
        ok(&rotated) == 200 && ok(&second) == 200
    });
}

#[test]
fn the_partners_command_edits_the_file_a_server_uses() {
    let dir = tempdir();
    let file = dir.path().join("partners.toml");
    let config = dir.path().join("iofd.toml");
    std::fs::write(
        &config,
        "public_url = \"https://feeds.example.com\"\n[currencies]\nEUR = \"0.23\"\n",
    )
    .unwrap();
    let iofd = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_iofd"))
            .arg("partners")
            .args(args)
            .arg("--partners")
            .arg(&file)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = iofd(&["add", "acme", "--shops", "1", "--currency", "EUR"]);
    assert!(ok, "{out}");
    let url = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("https://feeds.example.com/feeds/acme/"))
        .unwrap_or_else(|| panic!("a gateway URL in {out}"));
    let token = url.split('/').nth(5).unwrap();
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(!stored.contains(token), "only the hash is stored");
    let (ok, out) = iofd(&["set", "acme", "--discount", "150"]);
    assert!(!ok, "an invalid discount is refused: {out}");
    assert!(out.contains("discount_percent"), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stored);
    assert!(iofd(&["revoke", "acme"]).0);
    let (ok, table) = iofd(&["list"]);
    assert!(
        ok && table
            .lines()
            .any(|l| l.starts_with("acme") && l.contains(" off ")),
        "{table}"
    );
    // An IdoSell e-mail login is an id; a path-like one is refused with the rule.
    let (ok, out) = iofd(&["add", "jan.kowalski@sklep.example", "--shops", "1"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("https://feeds.example.com/feeds/jan.kowalski@sklep.example/"),
        "{out}"
    );
    let (ok, out) = iofd(&["add", "../etc", "--shops", "1"]);
    assert!(!ok && out.contains("'@'"), "{out}");
}

/// The ids of an offer's products (children of `<products>`, not bundle components), from
/// full.xml or light.xml.
fn offer_ids(xml: &[u8]) -> BTreeSet<u64> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let (mut buf, mut path, mut ids) = (Vec::new(), Vec::<Vec<u8>>::new(), BTreeSet::new());
    loop {
        let (e, start) = match reader.read_event_into(&mut buf).expect("offer parses") {
            Event::Eof => break,
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(_) => {
                path.pop();
                buf.clear();
                continue;
            }
            _ => {
                buf.clear();
                continue;
            }
        };
        if e.name().as_ref() == b"product" && path.last().is_some_and(|p| p == b"products") {
            let id = e.try_get_attribute("id").unwrap().unwrap();
            ids.insert(std::str::from_utf8(&id.value).unwrap().parse().unwrap());
        }
        if start {
            path.push(e.name().as_ref().to_vec());
        }
        buf.clear();
    }
    ids
}

#[test]
fn a_partner_with_rules_gets_one_category_tree_marked_up_and_the_others_keep_their_bytes() {
    let mut tokens = Vec::new();
    let plain = Settings {
        shops: Some(vec![1]),
        languages: Some(vec!["pol".into()]),
        currency: Some("PLN".into()),
        ..Default::default()
    };
    let o = origin(300, |path, config| {
        tokens.push(add(path, config, "plain", plain.clone()));
        let mut ruled = plain.clone();
        ruled.rules.categories = Some(vec![1]);
        ruled.rules.price_rules = Some(vec![iofd::partners::rules_edit::parse_price_rule(
            "markup=10",
        )
        .unwrap()]);
        tokens.push(add(path, config, "clothing", ruled));
    });
    let snapshot = o.server.app.store.snapshot();
    let parents: BTreeMap<u64, u64> = snapshot
        .dicts()
        .categories
        .iter()
        .filter_map(|c| Some((c.id.to_native(), c.parent.as_ref()?.to_native())))
        .collect();
    let under_1 = |mut c: u64| loop {
        if c == 1 {
            return true;
        }
        match parents.get(&c) {
            Some(&p) => c = p,
            None => return false,
        }
    };
    // Every product of shop 1 whose category is 1 or below it.
    let tree: BTreeSet<u64> = snapshot
        .products()
        .filter(|p| p.shops.is_empty() || p.shops.iter().any(|s| s.to_native() == 1))
        .filter(|p| p.category.as_ref().is_some_and(|c| under_1(c.to_native())))
        .map(|p| p.id.to_native())
        .collect();

    let plain_files = fetch_all(&o.server, &gateway_path(&tokens[0], 1));
    let ruled_files = fetch_all(&o.server, &gateway_path(&tokens[1], 1));
    for (kind, bytes) in &ruled_files {
        validate(kind, bytes);
    }
    assert!(!tree.is_empty() && tree.len() < offer_ids(&plain_files["full"]).len());
    assert_eq!(offer_ids(&ruled_files["full"]), tree);
    assert_eq!(offer_ids(&ruled_files["light"]), tree);

    // Light prices: the unrestricted partner's times 1.10, to the grosz.
    let (plain_light, ruled_light) = (
        parse_offer(&plain_files["light"]),
        parse_offer(&ruled_files["light"]),
    );
    let markup = Decimal::from_str("1.10").unwrap();
    for id in &tree {
        let id = id.to_string();
        let (net, gross) = plain_light.prices[&id];
        assert_eq!(
            ruled_light.prices[&id],
            (money(net * markup), money(gross * markup)),
            "{id}"
        );
    }
    for ((id, size), (net, gross)) in &ruled_light.size_prices {
        let (pn, pg) = plain_light.size_prices[&(id.clone(), size.clone())];
        assert_eq!(
            (*net, *gross),
            (money(pn * markup), money(pg * markup)),
            "{id} {size}"
        );
    }
    // The reference files list only what the partner's products use.
    let categories = String::from_utf8_lossy(&ruled_files["categories"]).into_owned();
    assert!(categories.contains("id=\"1\"") && !categories.contains("id=\"13\""));

    // The unrestricted partner's files are those of a file without the other partner.
    let before: BTreeMap<String, String> = plain_files
        .iter()
        .map(|(k, v)| (k.clone(), md5_hex(v)))
        .collect();
    let text = std::fs::read_to_string(&o.partners).unwrap();
    let start = text.find("[[partner]]\nid = \"clothing\"").unwrap();
    edit::write_atomically(&o.partners, &text.as_bytes()[..start]).unwrap();
    o.server.app.reload_partners().unwrap();
    assert!(o.server.get(&gateway_path(&tokens[1], 1)).status() == 404);
    let after: BTreeMap<String, String> = fetch_all(&o.server, &gateway_path(&tokens[0], 1))
        .iter()
        .map(|(k, v)| (k.clone(), md5_hex(v)))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn impossible_rules_refuse_the_file_and_the_accounts_in_force_keep_serving() {
    let mut tokens = Vec::new();
    let o = origin(50, |path, config| {
        tokens.push(add(
            path,
            config,
            "plain",
            Settings {
                shops: Some(vec![1]),
                ..Default::default()
            },
        ));
    });
    let good = std::fs::read_to_string(&o.partners).unwrap();
    for (rules, needle) in [
        (
            "[partner.assortment]\ncategories = [999999]\n",
            "assortment.categories: category 999999 is not in the catalog",
        ),
        (
            "[[partner.price_rule]]\nmarkup_percent = \"-101\"\n",
            "price_rule[1].markup_percent: below -100 %",
        ),
        (
            "[[partner.price_rule]]\nmarkup_percent = \"10\"\nround_to = \"1\"\n",
            "price_rule[1].round_to",
        ),
    ] {
        // Atomically: the server's watcher must never read half a file (an empty one is valid).
        edit::write_atomically(&o.partners, format!("{good}{rules}").as_bytes()).unwrap();
        let err = o.server.app.reload_partners().unwrap_err().to_string();
        assert!(
            err.contains("partner \"plain\"") && err.contains(needle),
            "{err}"
        );
        assert_eq!(o.server.get(&gateway_path(&tokens[0], 1)).status(), 200);
    }
}
