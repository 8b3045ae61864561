//! The foundation end to end: a real server on a real socket serving the demo catalog.

mod common;

use common::*;
use iofd::xsd::{self, Schema};

fn validate(kind: &str, bytes: &[u8]) {
    let schema = Schema::for_kind(kind).unwrap_or_else(|| panic!("no schema for {kind}"));
    if let Err(e) = xsd::validate(schema, bytes) {
        panic!("{kind}: {e}");
    }
}

#[test]
fn every_file_of_every_demo_gateway_validates_and_matches_its_hash() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    let mut kept = Vec::new();
    for (partner, token, shop) in demo_partners() {
        let out = dir.path().join("served").join(&partner);
        let gw = server.get(&format!("/feeds/{partner}/{token}/{shop}/gateway.xml"));
        assert_eq!(gw.status(), 200);
        assert_eq!(
            gw.headers()["content-type"],
            "application/xml; charset=utf-8"
        );
        let gw = gw.bytes().unwrap();
        validate("gateway", &gw);
        kept.push(keep(&out, "gateway.xml", &gw));
        let files = gateway_files(&gw);
        let kinds: Vec<&str> = files.iter().map(|(k, _, _)| k.as_str()).collect();
        for required in ["full", "light", "categories", "sizes"] {
            assert!(
                kinds.contains(&required),
                "{partner}: gateway lists {kinds:?}"
            );
        }
        for (kind, url, hash) in files {
            assert!(
                url.starts_with(&server.base),
                "{url} is not served by this origin"
            );
            let resp = server.get(&url);
            assert_eq!(resp.status(), 200, "{url}");
            let len: usize = resp.headers()["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body = resp.bytes().unwrap();
            assert_eq!(body.len(), len);
            validate(&kind, &body);
            if let Some(hash) = hash {
                assert_eq!(
                    md5_hex(&body),
                    hash,
                    "{partner} {kind}: gateway hash is the MD5 of the served bytes"
                );
            }
            // The file name of the (signed) URL's path: its query is not part of it.
            let path = url.split('?').next().unwrap_or(&url);
            let name = path.rsplit('/').next().unwrap_or(path);
            kept.push(keep(&out, name, &body));
        }
    }
    // Every entry URL `serve` prints answers.
    for entry in server.app.entry_urls() {
        assert_eq!(server.get(&entry.url).status(), 200, "{}", entry.url);
    }
    // The second XSD engine and python-idosell, once for the whole batch.
    check_clients(&kept);
}

#[test]
fn wrong_tokens_and_unknown_partners_reveal_nothing() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    for path in [
        "/feeds/sklep-kowalski/wrong-token-000000/1/full.xml",
        "/feeds/nobody/demo-kowalski-4f9c2a7e1b/1/full.xml",
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/2/full.xml", // shop not granted
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/secret.xml",
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/../../../etc/passwd",
        "/",
    ] {
        let resp = server.get(path);
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
    }
    let resp = server.request(
        reqwest::Method::POST,
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/full.xml",
        &[],
    );
    assert_eq!(resp.status(), 405);
}

#[test]
fn idosell_urls_serve_the_same_bytes_as_path_urls() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    let path = server
        .get("/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/light.xml")
        .bytes()
        .unwrap();
    let edi = server.get("/edi/export-offer.php?client=sklep-kowalski&language=pol&token=demo-kowalski-4f9c2a7e1b&shop=1&type=light&format=xml&iof_3_0");
    assert_eq!(edi.status(), 200);
    assert_eq!(edi.bytes().unwrap(), path);
}

#[test]
fn file_responses_carry_validators_and_honour_them() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    let url = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/full.xml";
    let resp = server.get(url);
    let h = resp.headers().clone();
    let body = resp.bytes().unwrap();
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "strong ETag: {etag}"
    );
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["vary"], "Accept-Encoding");
    assert!(h.contains_key("last-modified"));
    assert!(h["surrogate-key"]
        .to_str()
        .unwrap()
        .contains("partner:sklep-kowalski"));
    assert!(
        h.get("transfer-encoding").is_none(),
        "files are never chunked"
    );

    let resp = server.request(reqwest::Method::GET, url, &[("If-None-Match", &etag)]);
    assert_eq!(resp.status(), 304);
    assert_eq!(resp.headers()["etag"], etag.as_str());
    let lm = h["last-modified"].to_str().unwrap();
    assert_eq!(
        server
            .request(reqwest::Method::GET, url, &[("If-Modified-Since", lm)])
            .status(),
        304
    );

    let resp = server.request(reqwest::Method::GET, url, &[("Range", "bytes=100-199")]);
    assert_eq!(resp.status(), 206);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 100-199/{}", body.len()).as_str()
    );
    assert_eq!(resp.bytes().unwrap(), body.slice(100..200));
    let resp = server.request(
        reqwest::Method::GET,
        url,
        &[("Range", &format!("bytes={}-", body.len()))],
    );
    assert_eq!(resp.status(), 416);
    let resp = server.request(
        reqwest::Method::GET,
        url,
        &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
    );
    assert_eq!(resp.status(), 200);

    let resp = server.request(reqwest::Method::HEAD, url, &[]);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert_eq!(resp.headers()["etag"], etag.as_str());
}

#[test]
fn a_restart_serves_the_same_bytes_under_the_same_etags_without_reimporting() {
    let dir = tempdir();
    let data = data_path(&dir);
    let urls = ["gateway.xml", "full.xml", "light.xml", "categories.xml"]
        .map(|f| format!("/feeds/eu-reseller/demo-eureseller-8d31b6c05a/1/{f}"));
    let fetch = |server: &Server| -> Vec<(String, bytes::Bytes)> {
        urls.iter()
            .map(|u| {
                let r = server.get(u);
                assert_eq!(r.status(), 200, "{u}");
                (
                    r.headers()["etag"].to_str().unwrap().to_string(),
                    r.bytes().unwrap(),
                )
            })
            .collect()
    };
    // Links in a gateway carry the public URL; a real deployment has a fixed one.
    let config = || {
        let mut c = iofd::config::Config::for_data_dir(&data);
        c.public_url = "https://feeds.example.com".into();
        c
    };
    let server = Server::start(config());
    let generation = server.app.store.snapshot().generation();
    let first = fetch(&server);
    server.stop();
    let server = Server::start(config());
    assert_eq!(
        server.app.store.snapshot().generation(),
        generation,
        "no re-import on restart"
    );
    // The restart read no snapshot payload: every file was in the verified record.
    let opened = server.app.store.open_stats();
    assert_eq!((opened.checked, opened.checked_bytes), (0, 0), "{opened:?}");
    assert!(opened.trusted > 0, "{opened:?}");
    let second = fetch(&server);
    for ((e1, b1), (e2, b2)) in first.iter().zip(&second) {
        assert_eq!(e1, e2);
        assert_eq!(b1, b2);
    }
}

#[test]
fn the_scrub_finds_a_shard_altered_under_a_running_server_and_readiness_says_so() {
    let dir = tempdir();
    let data = data_path(&dir);
    let mut config = iofd::config::Config::for_data_dir(&data);
    config.scrub = iofd::store::scrub::ScrubOptions {
        bytes_per_second: u64::MAX,
        between_passes: std::time::Duration::from_millis(20),
    };
    let server = Server::start(config);
    let readyz = format!("{}/readyz", server.admin);
    assert_eq!(server.get(&readyz).status(), 200);
    let store_dir = server.app.config.store_dir();
    let victim = std::fs::read_dir(&store_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("shard-"))
        .expect("a shard file");
    // Bit rot, in place (the mapping shares the page cache, so the server sees it).
    {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(store_dir.join(&victim))
            .unwrap();
        let at = f.metadata().unwrap().len() - 24;
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[b[0] ^ 0x40]).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let answer = loop {
        let r = server.get(&readyz);
        if r.status() == 503 {
            break r.text().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scrub within 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(
        answer.contains("not ready") && answer.contains(&victim),
        "{answer}"
    );
    let metrics = server
        .get(&format!("{}/metrics", server.admin))
        .text()
        .unwrap();
    assert!(
        metrics.contains("iofd_store_scrub_damaged_files_total 1"),
        "{metrics}"
    );
    server.stop();
    // Revoked in the record: a start checks the file in full (and falls back or refuses).
    let check = iofd::store::verify(&store_dir);
    let err = check.current.unwrap().unwrap_err().to_string();
    assert!(err.contains(&victim), "{err}");
}

#[test]
fn health_and_readiness_on_the_admin_listener() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    assert_eq!(
        server.get(&format!("{}/healthz", server.admin)).status(),
        200
    );
    assert_eq!(
        server.get(&format!("{}/readyz", server.admin)).status(),
        200
    );
    assert_eq!(
        server
            .get(&format!("{}/feeds/x/y/1/full.xml", server.admin))
            .status(),
        404,
        "feeds are not on the admin listener"
    );
}

/// Wait (up to `within`) until nothing accepts on `addr` any more.
fn wait_until_closed(addr: &str, within: std::time::Duration) -> bool {
    let addr: std::net::SocketAddr = addr.trim_start_matches("http://").parse().unwrap();
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_err() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

#[test]
fn a_task_that_fails_stops_every_listener_and_fails_the_run() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    assert_eq!(
        server.get(&format!("{}/healthz", server.admin)).status(),
        200
    );
    server.server.spawn("doomed task", async {
        Err::<(), _>(std::io::Error::other("forced failure"))
    });
    let within = std::time::Duration::from_secs(20);
    assert!(
        wait_until_closed(&server.base, within),
        "public listener still open"
    );
    assert!(
        wait_until_closed(&server.admin, within),
        "admin listener still open"
    );
    match server.stop_result() {
        Err(iofd::server::ServerError::Task { task, source }) => {
            assert_eq!(task, "doomed task");
            assert_eq!(source.to_string(), "forced failure");
        }
        other => panic!("expected the task's failure, got {other:?}"),
    }
}

#[test]
fn a_task_that_panics_stops_the_server_and_fails_the_run() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    let forced = std::sync::atomic::AtomicBool::new(true);
    server.server.spawn("panicking task", async move {
        if forced.load(std::sync::atomic::Ordering::Relaxed) {
            panic!("forced panic");
        }
        Ok::<(), std::io::Error>(())
    });
    assert!(
        wait_until_closed(&server.base, std::time::Duration::from_secs(20)),
        "public listener still open"
    );
    match server.stop_result() {
        Err(iofd::server::ServerError::Panicked { task, message }) => {
            assert_eq!(task, "panicking task");
            assert_eq!(message, "forced panic");
        }
        other => panic!("expected the task's panic, got {other:?}"),
    }
}

#[test]
fn a_clean_stop_returns_ok_and_frees_the_store() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    assert!(server.stop_result().is_ok());
    // Every task holding the store ended with the server: it opens again at once.
    let config = iofd::config::Config::for_data_dir(&data_path(&dir));
    iofd::store::Store::open(&config.store_dir(), config.store_options()).expect("reopen");
}

#[test]
fn server_run_serves_until_its_shutdown_future_resolves() {
    let dir = tempdir();
    let config = iofd::config::Config::for_data_dir(&data_path(&dir));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let bind = || async {
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind")
            };
            let listeners = iofd::server::Listeners {
                public: bind().await,
                admin: bind().await,
            };
            addr_tx
                .send(listeners.admin.local_addr().expect("addr"))
                .expect("send");
            iofd::server::run(config, listeners, async {
                let _ = stop_rx.await;
            })
            .await
        })
    });
    let admin = addr_rx.recv().expect("bound");
    // The listener is bound before the app opens: the request waits in its backlog, and is
    // answered once the files are published.
    let status = client()
        .get(format!("http://{admin}/readyz"))
        .send()
        .expect("readyz")
        .status();
    assert_eq!(status, 200);
    stop_tx.send(()).expect("stop");
    thread.join().expect("joined").expect("a clean run");
    assert!(
        std::net::TcpStream::connect(admin).is_err(),
        "the admin listener is closed after the run"
    );
}

/// full.xml of 1 MiB or more is sent with sendfile(2) (its mapping keeps the file): through a
/// real socket and an HTTP client, it arrives whole under the gateway's hash, and ranges across
/// the body's chunks are the same bytes as the whole.
#[test]
fn a_full_xml_over_a_mebibyte_arrives_byte_for_byte_whole_and_in_ranges() {
    let dir = tempdir();
    let data = data_path(&dir);
    let config = iofd::config::Config::for_data_dir(&data);
    {
        let mut jsonl = Vec::new();
        iofd::generate::generate_to(
            &mut jsonl,
            &iofd::generate::GenerateOptions {
                products: 800,
                seed: 3,
            },
        )
        .unwrap();
        let batch = iofd::ingest::read_jsonl("generated.jsonl", jsonl.as_slice()).unwrap();
        let store =
            iofd::store::Store::open(&config.store_dir(), iofd::store::StoreOptions::default())
                .unwrap();
        store
            .apply(
                batch.records.into_iter().map(|l| l.record).collect(),
                iofd::store::ApplyMode::FullSync,
            )
            .unwrap();
    }
    let server = Server::start(config);
    let feed = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1";
    let gateway = server.get(&format!("{feed}/gateway.xml")).bytes().unwrap();
    let listed = gateway_files(&gateway)
        .into_iter()
        .find(|(name, _, _)| name == "full")
        .and_then(|(_, _, hash)| hash)
        .expect("the gateway lists full.xml with its hash");

    let url = format!("{feed}/full.xml");
    let full = server.get(&url).bytes().unwrap();
    assert!(
        full.len() >= 1 << 20,
        "{} bytes: too small to be sent with sendfile",
        full.len()
    );
    assert_eq!(md5_hex(&full), listed);
    let len = full.len();
    for (from, to) in [(0, 99), (200_000, 900_000), (len - 70_000, len - 1)] {
        let resp = server.request(
            reqwest::Method::GET,
            &url,
            &[("Range", &format!("bytes={from}-{to}"))],
        );
        assert_eq!(resp.status(), 206);
        assert_eq!(
            resp.bytes().unwrap(),
            full.slice(from..to + 1),
            "{from}-{to}"
        );
    }
    // Requests on one connection after a sendfile body: the next head is where it belongs.
    let client = client();
    for _ in 0..3 {
        let again = client.get(format!("{}{url}", server.base)).send().unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(again.bytes().unwrap(), full);
    }
}
