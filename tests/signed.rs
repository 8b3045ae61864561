//! Signed profile-addressed URLs from outside, against iofd alone: twins share paths and get
//! their own signatures; a tampered or expired signature is refused; a revoked partner's
//! signed URL is refused within a second while its twin's still works; stable partner URLs
//! redirect to the signed ones for real clients (curl, Python urllib, a one-hop client).

mod common;
#[path = "common/raw.rs"]
mod raw;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use iofd::clock::Clock;
use iofd::config::Config;

const KOWALSKI: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1";
const TWIN: &str = "/feeds/kowalski-twin/demo-twin-000000000001/1";

/// The demo partners and a twin of sklep-kowalski (same settings, own id and token).
fn twin_partners(twin_access: bool) -> String {
    format!(
        "{}\n[[partner]]\nid = \"kowalski-twin\"\ntoken = \"demo-twin-000000000001\"\n\
         offer_access = {twin_access}\nshops = [1]\nformat = \"iof-3.0\"\nfile_type = \"xml\"\n\
         languages = [\"pol\", \"eng\"]\ncurrency = \"PLN\"\ndiscount_percent = \"0\"\n\
         wholesale = false\nonly_in_stock = false\n",
        iofd::partners::DEMO_PARTNERS
    )
}

fn start(dir: &tempfile::TempDir, clock: &Clock, redirect: bool) -> Server {
    let data = data_path(dir);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("partners.toml"), twin_partners(true)).unwrap();
    let mut config = Config::for_data_dir(&data);
    config.clock = clock.clone();
    config.redirect_to_profile = redirect;
    Server::start(config)
}

/// File node name → URL of a partner's gateway.
fn listed(server: &Server, feed: &str) -> BTreeMap<String, (String, Option<String>)> {
    let gw = server.get(&format!("{feed}/gateway.xml"));
    assert_eq!(gw.status(), 200);
    gateway_files(&gw.bytes().unwrap())
        .into_iter()
        .map(|(node, url, hash)| (node, (url, hash)))
        .collect()
}

fn path_of(url: &str) -> &str {
    url.split_once('?').map_or(url, |(p, _)| p)
}

/// `url` with its query parameter `name` replaced by `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[test]
fn twins_share_paths_with_own_signatures_and_a_revoked_twin_is_refused_within_a_second() {
    let dir = tempdir();
    // At the start of an expiry bucket (a quarter of the default 4 h), so the minute moved
    // below stays inside it.
    let now = jiff::Timestamp::now().as_second();
    let clock = Clock::manual(jiff::Timestamp::from_second(now - now % 3600 + 1).unwrap());
    let server = start(&dir, &clock, false);
    let addr = raw::addr(&server.base);
    let (ours, twins) = (listed(&server, KOWALSKI), listed(&server, TWIN));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        twins.keys().collect::<Vec<_>>()
    );
    for (node, (url, hash)) in &ours {
        let (twin_url, twin_hash) = &twins[node];
        assert!(url.starts_with(&format!("{}/p/", server.base)), "{url}");
        assert!(url.contains("partner=sklep-kowalski&expires="), "{url}");
        assert_eq!(path_of(url), path_of(twin_url), "{node}: one shared path");
        assert_ne!(url, twin_url, "{node}: each partner signs its own");
        assert_eq!(hash, twin_hash);
        let got = server.get(url);
        assert_eq!(got.status(), 200, "{url}");
        let bytes = got.bytes().unwrap();
        if let Some(hash) = hash {
            assert_eq!(&md5_hex(&bytes), hash, "{url}");
        }
    }
    // The same bytes as the stable partner URL, with keys naming the shared path only.
    let full = &ours["full"].0;
    let path = full.strip_prefix(&server.base).unwrap();
    let signed = raw::get(addr, path, &[]).unwrap();
    let stable = raw::get(addr, &format!("{KOWALSKI}/full.xml"), &[]).unwrap();
    assert_eq!((signed.status, stable.status), (200, 200));
    assert_eq!(signed.body, stable.body);
    assert_eq!(signed.header("etag"), stable.header("etag"));
    let key = path_of(path).split('/').nth(2).unwrap();
    assert_eq!(
        signed.header("surrogate-key"),
        Some(format!("p:{key} p:{key}/full file:full").as_str())
    );
    assert_eq!(
        signed.header("cache-tag"),
        Some(format!("p:{key},p:{key}/full,file:full").as_str())
    );
    let range = raw::get(addr, path, &[("Range", "bytes=5-14")]).unwrap();
    assert_eq!((range.status, &range.body[..]), (206, &stable.body[5..15]));

    // Tampered: the signature, the partner, the expiry, the path. Unsigned: not a feed.
    let sig = full.split("sig=").nth(1).unwrap();
    let flipped = format!(
        "{}{}",
        &sig[..63],
        if sig.ends_with('0') { '1' } else { '0' }
    );
    let expires: i64 = full.split("expires=").nth(1).unwrap()[..10]
        .parse()
        .unwrap();
    for bad in [
        with_param(full, "sig", &flipped),
        with_param(full, "partner", "kowalski-twin"),
        with_param(full, "partner", "stranger-xyz"),
        with_param(full, "expires", &(expires + 3600).to_string()),
        full.replace("/full.xml?", "/light.xml?"),
    ] {
        let r = raw::get(addr, bad.strip_prefix(&server.base).unwrap(), &[]).unwrap();
        assert_eq!(r.status, 403, "{bad}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    assert_eq!(raw::get(addr, path_of(path), &[]).unwrap().status, 404);
    let metrics = server
        .get(&format!("{}/metrics", server.admin))
        .text()
        .unwrap();
    assert!(
        !metrics.contains("stranger-xyz"),
        "an unverified partner id became a label: {metrics}"
    );
    assert!(metrics.contains("partner=\"sklep-kowalski\""), "{metrics}");

    // Within one expiry bucket the gateway keeps its bytes and ETag.
    let etag = |feed: &str| {
        let gw = raw::get(addr, &format!("{feed}/gateway.xml"), &[]).unwrap();
        gw.header("etag").unwrap().to_string()
    };
    let before = etag(KOWALSKI);
    assert!(clock.advance(Duration::from_secs(60)));
    assert_eq!(etag(KOWALSKI), before, "same bucket, same gateway");

    // Revoke the twin: its signed URL is refused within a second, ours still serves.
    let twin_full = twins["full"].0.clone();
    let partners = data_path(&dir).join("partners.toml");
    iofd::fsio::write(&partners, twin_partners(false).as_bytes()).unwrap();
    let revoked_at = Instant::now();
    loop {
        let status = server.get(&twin_full).status();
        if status == 403 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the revoked twin's signed URL still answers after 1 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.get(full).status(),
        200,
        "the other twin is unaffected"
    );

    // Past its expiry a signed URL is refused; a fresh gateway lists new ones.
    assert!(clock.advance(Duration::from_secs(4 * 3600)));
    assert_eq!(server.get(full).status(), 403);
    assert_ne!(etag(KOWALSKI), before, "a new bucket, new links");
    let fresh = &listed(&server, KOWALSKI)["full"].0;
    assert_eq!(path_of(fresh), path_of(full));
    assert_eq!(server.get(fresh).status(), 200);
}

#[test]
fn stable_urls_redirect_to_the_signed_url_for_real_clients() {
    let dir = tempdir();
    let server = start(&dir, &Clock::system(), true);
    let addr = raw::addr(&server.base);
    let (full_url, full_hash) = listed(&server, KOWALSKI)["full"].clone();
    let full_hash = full_hash.unwrap();
    for path in [
        format!("{KOWALSKI}/full.xml"),
        "/edi/export-offer.php?client=sklep-kowalski&token=demo-kowalski-4f9c2a7e1b&shop=1&type=full&format=xml&iof_3_0".to_string(),
    ] {
        let r = raw::get(addr, &path, &[]).unwrap();
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let location = r.header("location").unwrap();
        assert_eq!(path_of(location), path_of(&full_url), "{path}");
        // A client that follows one redirect (as PHP's stream wrapper is often set to) gets
        // the file on the second request.
        let second = raw::get(addr, location.strip_prefix(&server.base).unwrap(), &[]).unwrap();
        assert_eq!(second.status, 200, "{location}");
        assert_eq!(md5_hex(&second.body), full_hash);
    }
    let url = format!("{}{KOWALSKI}/full.xml", server.base);
    let curl = std::process::Command::new("curl")
        .args(["-sSfL", "--max-redirs", "1", &url])
        .output()
        .expect("curl runs");
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(md5_hex(&curl.stdout), full_hash, "curl -L");
    let python = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())",
            &url,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    assert_eq!(md5_hex(&python.stdout), full_hash, "Python urllib");
    // The gateway is the partner's own document: served, never redirected.
    assert_eq!(
        raw::get(addr, &format!("{KOWALSKI}/gateway.xml"), &[])
            .unwrap()
            .status,
        200
    );
}

/// The generation in `url`'s `g=`.
fn generation_of(url: &str) -> u64 {
    let g = url.split("&g=").nth(1).expect("a generation in the link");
    g[..g.find('&').unwrap_or(g.len())].parse().unwrap()
}

/// A link names the generation its gateway was made from: a node asked for a newer one waits
/// for it (here: until an update makes it), and answers 503 + `Retry-After: 1` when it does
/// not come within the wait; an older one is served the current file.
#[test]
fn a_link_from_a_newer_generation_waits_for_it() {
    let dir = tempdir();
    let server = start(&dir, &Clock::system(), false);
    let (light, _) = listed(&server, KOWALSKI)["light"].clone();
    let g = generation_of(&light);
    assert_eq!(server.get(&light).status(), 200);

    let next = with_param(&light, "g", &(g + 1).to_string());
    let waiting = std::thread::spawn(move || {
        let r = client().get(&next).send().unwrap();
        (r.status().as_u16(), r.bytes().unwrap())
    });
    let update = client()
        .post(format!("{}/v1/updates", server.admin))
        .header("Authorization", "Bearer demo-admin-token")
        .header("Content-Type", "application/x-ndjson")
        .body(r#"{"kind":"stock","product":1,"warehouse":1,"quantity":"4321"}"#)
        .send()
        .unwrap();
    assert_eq!(update.status(), 200);
    let (status, body) = waiting.join().unwrap();
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("quantity=\"4321\""),
        "the file of the generation asked for"
    );

    let started = Instant::now();
    let ahead = with_param(&light, "g", &(g + 1000).to_string());
    let r = server.get(&ahead);
    assert_eq!(r.status(), 503, "a generation that does not come");
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(10),
        "waited {waited:?}"
    );

    let older = server.get(&with_param(&light, "g", "0"));
    assert_eq!(older.status(), 200);
    assert!(String::from_utf8_lossy(&older.bytes().unwrap()).contains("quantity=\"4321\""));
    assert_eq!(server.get(&with_param(&light, "g", "x")).status(), 404);
}
