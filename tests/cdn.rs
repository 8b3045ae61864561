//! What a CDN in front relies on, against the real server: content negotiation with gzip,
//! limits and timeouts, the purge hook, metrics and the access log.

mod common;
#[path = "common/raw.rs"]
mod raw;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use iofd::config::{Config, PurgeTarget};

const KOWALSKI: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1";
const EU: &str = "/feeds/eu-reseller/demo-eureseller-8d31b6c05a/1";

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn config(data: &std::path::Path) -> Config {
    Config::for_data_dir(data)
}

#[test]
fn gzip_is_negotiated_per_representation_with_its_own_validators() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    let addr = raw::addr(&server.base);
    for file in ["gateway.xml", "full.xml", "light.xml", "categories.xml"] {
        let path = format!("{KOWALSKI}/{file}");
        let plain = raw::get(addr, &path, &[]).unwrap();
        let gz = raw::get(addr, &path, &[("Accept-Encoding", "gzip, deflate")]).unwrap();
        assert_eq!((plain.status, gz.status), (200, 200), "{file}");
        assert_eq!(plain.header("content-encoding"), None, "{file}");
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{file}");
        for r in [&plain, &gz] {
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{file}");
            assert_eq!(
                r.header("content-length"),
                Some(r.body.len().to_string().as_str())
            );
            assert_eq!(r.header("transfer-encoding"), None);
        }
        assert_eq!(plain.header("content-type"), gz.header("content-type"));
        assert_ne!(
            plain.header("etag"),
            gz.header("etag"),
            "{file}: one ETag per representation"
        );
        assert!(gz.body.len() < plain.body.len(), "{file}");
        assert_eq!(gunzip(&gz.body), plain.body, "{file}");
        // q-values: gzip refused, or preferred below another coding we do not have.
        let refused = raw::get(addr, &path, &[("Accept-Encoding", "gzip;q=0, identity")]).unwrap();
        assert_eq!(refused.header("content-encoding"), None);
        let second = raw::get(addr, &path, &[("Accept-Encoding", "br, gzip;q=0.5")]).unwrap();
        assert_eq!(second.header("content-encoding"), Some("gzip"));
    }

    let path = format!("{KOWALSKI}/full.xml");
    let plain = raw::get(addr, &path, &[]).unwrap();
    let gz = raw::get(addr, &path, &[("Accept-Encoding", "gzip")]).unwrap();
    let (plain_tag, gz_tag) = (
        plain.header("etag").unwrap().to_string(),
        gz.header("etag").unwrap().to_string(),
    );
    // 304 only for the validator of the representation that would be sent.
    let r = raw::get(
        addr,
        &path,
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &gz_tag)],
    )
    .unwrap();
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(gz_tag.as_str()));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    let r = raw::get(
        addr,
        &path,
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &plain_tag)],
    )
    .unwrap();
    assert_eq!(
        (r.status, r.header("content-encoding")),
        (200, Some("gzip"))
    );
    let r = raw::get(addr, &path, &[("If-None-Match", &gz_tag)]).unwrap();
    assert_eq!((r.status, r.header("content-encoding")), (200, None));
    // Ranges address the bytes of the chosen representation.
    let r = raw::get(
        addr,
        &path,
        &[("Accept-Encoding", "gzip"), ("Range", "bytes=10-19")],
    )
    .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &gz.body[10..20]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-19/{}", gz.body.len()).as_str())
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let r = raw::get(
        addr,
        &path,
        &[
            ("Accept-Encoding", "gzip"),
            ("Range", "bytes=10-19"),
            ("If-Range", &plain_tag),
        ],
    )
    .unwrap();
    assert_eq!(
        r.status, 200,
        "If-Range with the other representation's ETag"
    );
    let mut s = raw::connect(addr).unwrap();
    let head = raw::request(&mut s, "HEAD", &path, &[("Accept-Encoding", "gzip")]).unwrap();
    assert_eq!(
        head.header("content-length"),
        Some(gz.body.len().to_string().as_str())
    );
    assert_eq!(head.header("etag"), Some(gz_tag.as_str()));
}

#[test]
fn xml_gz_partners_fetch_gzip_files_without_content_encoding() {
    let dir = tempdir();
    let data = data_path(&dir);
    std::fs::create_dir_all(&data).unwrap();
    let partners = format!(
        "{}\n[[partner]]\nid = \"gz-partner\"\ntoken = \"demo-gz-partner-0001\"\nshops = [1]\nfile_type = \"xml.gz\"\n",
        iofd::partners::DEMO_PARTNERS
    );
    std::fs::write(data.join("partners.toml"), partners).unwrap();
    let server = Server::demo(&data);
    let addr = raw::addr(&server.base);
    let base = "/feeds/gz-partner/demo-gz-partner-0001/1";
    let gateway = raw::get(addr, &format!("{base}/gateway.xml"), &[]).unwrap();
    assert_eq!(gateway.status, 200);
    let files = gateway_files(&gateway.body);
    let (_, full_url, full_hash) = files.iter().find(|(k, _, _)| k == "full").unwrap();
    // A signed profile URL: the query holds the partner's authority.
    let full_path = full_url.split('?').next().unwrap();
    assert!(full_path.ends_with("/full.xml.gz"), "{full_url}");
    let plain = raw::get(addr, &format!("{base}/full.xml"), &[]).unwrap();
    for ae in [None, Some("gzip")] {
        let headers: Vec<(&str, &str)> = ae.map(|v| ("Accept-Encoding", v)).into_iter().collect();
        let r = raw::get(addr, &format!("{base}/full.xml.gz"), &headers).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/gzip"));
        assert_eq!(
            r.header("content-encoding"),
            None,
            "a .xml.gz file is the gzip file itself"
        );
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(md5_hex(&r.body), *full_hash.as_ref().unwrap());
        assert_eq!(gunzip(&r.body), plain.body);
    }
}

#[test]
fn a_partner_over_its_rate_gets_429_with_retry_after_and_strangers_cannot_spend_its_budget() {
    let dir = tempdir();
    let mut c = config(&data_path(&dir));
    c.limits.rate_limit = 1.0;
    c.limits.rate_burst = 3;
    // Buckets refill on a clock the test moves.
    c.clock = iofd::clock::Clock::manual(jiff::Timestamp::now());
    let server = Server::start(c);
    let addr = raw::addr(&server.base);
    // Wrong tokens under the partner's id are not the partner: they do not use its budget.
    for i in 0..50 {
        let r = raw::get(
            addr,
            &format!("/feeds/sklep-kowalski/wrong-{i}/1/light.xml"),
            &[],
        )
        .unwrap();
        assert_eq!(r.status, 404);
    }
    let path = format!("{KOWALSKI}/light.xml");
    for _ in 0..3 {
        assert_eq!(raw::get(addr, &path, &[]).unwrap().status, 200);
    }
    let limited = raw::get(addr, &path, &[]).unwrap();
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("cache-control"), Some("no-store"));
    assert_eq!(
        raw::get(addr, &format!("{EU}/light.xml"), &[])
            .unwrap()
            .status,
        200,
        "per partner"
    );
    assert!(server.app.config.clock.advance(Duration::from_millis(1100)));
    assert_eq!(
        raw::get(addr, &path, &[]).unwrap().status,
        200,
        "refilled at the rate"
    );
}

/// Wait (up to 10 s) until the server counts `n` connections being served.
fn wait_for_open_connections(server: &Server, n: usize) {
    let want = format!("\niofd_connections_open {n}\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = server.app.metrics.encode(iofd::metrics::StateSample {
            snapshot_generation: 0,
            snapshot_published: std::time::SystemTime::now(),
            artifacts_generation: 0,
            artifact_files: 0,
        });
        if metrics.contains(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not {n} connections open: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn connections_over_the_limit_get_a_quick_503_and_slots_free_up() {
    let dir = tempdir();
    let mut c = config(&data_path(&dir));
    c.limits.max_connections = 2;
    let server = Server::start(c);
    let addr = raw::addr(&server.base);
    let idle: Vec<_> = (0..2).map(|_| raw::connect(addr).unwrap()).collect();
    wait_for_open_connections(&server, 2);
    let started = Instant::now();
    let r = raw::get(addr, &format!("{KOWALSKI}/light.xml"), &[]).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    wait_for_open_connections(&server, 0);
    assert_eq!(
        raw::get(addr, &format!("{KOWALSKI}/light.xml"), &[])
            .unwrap()
            .status,
        200
    );
    let metrics = server
        .get(&format!("{}/metrics", server.admin))
        .text()
        .unwrap();
    assert!(
        metrics.contains("iofd_connections_rejected_total 1"),
        "{metrics}"
    );
}

#[test]
fn idle_and_slow_header_connections_are_closed_but_a_pause_between_requests_is_fine() {
    let dir = tempdir();
    let mut c = config(&data_path(&dir));
    c.limits.header_timeout = Duration::from_secs(1);
    c.limits.idle_timeout = Duration::from_secs(2);
    let server = Server::start(c);
    let addr = raw::addr(&server.base);
    let path = format!("{KOWALSKI}/light.xml");

    // Keep-alive: a pause shorter than the idle timeout, and longer than the header timeout.
    let mut keep = raw::connect(addr).unwrap();
    assert_eq!(
        raw::request(&mut keep, "GET", &path, &[]).unwrap().status,
        200
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        raw::request(&mut keep, "GET", &path, &[]).unwrap().status,
        200
    );
    let started = Instant::now();
    assert!(raw::closed_within(&mut keep, Duration::from_secs(5)));
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(1800) && idle < Duration::from_secs(4),
        "{idle:?}"
    );

    // A head trickled one line every 300 ms is cut a second after its first byte.
    let mut slow = raw::connect(addr).unwrap();
    let started = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut cut = false;
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(300));
        if slow
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            cut = true;
            break;
        }
        if raw::closed_within(&mut slow, Duration::from_millis(1)) {
            cut = true;
            break;
        }
    }
    assert!(cut, "the trickle was not cut");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );

    // A connection that never sends anything.
    let mut silent = raw::connect(addr).unwrap();
    let started = Instant::now();
    assert!(raw::closed_within(&mut silent, Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_millis(2500));

    let metrics = server
        .get(&format!("{}/metrics", server.admin))
        .text()
        .unwrap();
    for reason in ["idle_timeout", "header_timeout"] {
        assert!(
            metrics.contains(&format!(
                "iofd_connections_closed_by_limit_total{{reason=\"{reason}\"}}"
            )),
            "{metrics}"
        );
    }
}

#[test]
fn a_client_reading_too_slowly_is_disconnected() {
    let dir = tempdir();
    let mut c = config(&data_path(&dir));
    c.limits.send_timeout = Duration::from_secs(1);
    c.limits.min_send_rate = 256 * 1024;
    let server = Server::start(c);
    let addr = raw::addr(&server.base);
    let full = raw::get(addr, &format!("{KOWALSKI}/full.xml"), &[]).unwrap();
    assert_eq!(
        full.status, 200,
        "a client reading at full speed gets it all"
    );
    // Read at 8 KB/s, far below 256 KB/s. The kernel takes up to a few megabytes of a
    // response into its socket buffers whatever the client does, so ask for more than that:
    // twelve pipelined requests for full.xml.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut slow: std::net::TcpStream = socket.into();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let requests = 12;
    let one = format!("GET {KOWALSKI}/full.xml HTTP/1.1\r\nHost: t\r\n\r\n");
    slow.write_all(one.repeat(requests).as_bytes()).unwrap();
    let started = Instant::now();
    let mut got = 0usize;
    let mut buf = [0u8; 1024];
    loop {
        std::thread::sleep(Duration::from_millis(125));
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never cut");
    }
    let cut_after = started.elapsed();
    assert!(cut_after < Duration::from_secs(5), "{cut_after:?}");
    let all = full.body.len() * requests;
    assert!(got < all, "cut before the end: {got} of {all}");
    let metrics = server
        .get(&format!("{}/metrics", server.admin))
        .text()
        .unwrap();
    assert!(
        metrics.contains("iofd_connections_closed_by_limit_total{reason=\"slow_client\"} 1"),
        "{metrics}"
    );
}

#[test]
fn metrics_count_requests_by_route_status_and_authenticated_partner() {
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    let addr = raw::addr(&server.base);
    let full = raw::get(
        addr,
        &format!("{KOWALSKI}/full.xml"),
        &[("Accept-Encoding", "zstd, gzip")],
    )
    .unwrap();
    raw::get(addr, &format!("{KOWALSKI}/light.xml"), &[]).unwrap();
    raw::get(addr, "/feeds/nobody-at-all/x/1/light.xml", &[]).unwrap();
    let resp = server.get(&format!("{}/metrics", server.admin));
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = resp.text().unwrap();
    for line in [
        "iofd_http_requests_total{route=\"full\",status=\"200\",encoding=\"gzip\"} 1".to_string(),
        "iofd_http_requests_total{route=\"light\",status=\"404\",encoding=\"identity\"} 1"
            .to_string(),
        "iofd_partner_requests_total{partner=\"sklep-kowalski\",status=\"200\"} 2".to_string(),
        format!(
            "iofd_http_response_body_bytes_total{{route=\"full\"}} {}",
            full.body.len()
        ),
        "iofd_http_requests_accepting_zstd_total 1".to_string(),
        format!(
            "iofd_snapshot_generation {}",
            server.app.store.snapshot().generation()
        ),
        "iofd_http_response_head_duration_seconds_count{route=\"light\"} 2".to_string(),
        "iofd_artifact_publish_duration_seconds_count 1".to_string(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("nobody-at-all"),
        "unauthenticated ids never become labels"
    );
}

/// A purge endpoint: records each request's head and answers 200.
fn purge_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/purge", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(req) = raw_request(&mut s) else {
                continue;
            };
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx.send(req).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

fn raw_request(s: &mut impl Read) -> std::io::Result<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Ok(text);
            }
        }
        if n == 0 {
            return Ok(text);
        }
    }
}

fn surrogate_keys(request: &str) -> Vec<String> {
    request
        .lines()
        .find_map(|l| {
            l.strip_prefix("Surrogate-Key: ")
                .or_else(|| l.strip_prefix("surrogate-key: "))
        })
        .map(|v| v.split(' ').map(str::to_string).collect())
        .unwrap_or_default()
}

/// Surrogate keys of the purge requests received until `done` holds for all of them.
fn keys_until(
    purges: &std::sync::mpsc::Receiver<String>,
    done: impl Fn(&std::collections::BTreeSet<String>) -> bool,
) -> std::collections::BTreeSet<String> {
    let mut keys = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&keys) {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = purges
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no purge request completes {keys:?}"));
        assert!(request.starts_with("BAN /purge HTTP/1.1\r\n"), "{request}");
        assert!(
            request
                .to_ascii_lowercase()
                .contains("x-purge-token: s3cret"),
            "{request}"
        );
        keys.extend(surrogate_keys(&request));
    }
    keys
}

#[test]
fn revoking_a_partner_and_superseding_files_call_the_purge_hook() {
    let dir = tempdir();
    let data = data_path(&dir);
    let (url, purges) = purge_receiver();
    let mut c = config(&data);
    c.purge = Some(PurgeTarget {
        method: "BAN".parse().unwrap(),
        headers: vec![("x-purge-token".parse().unwrap(), "s3cret".parse().unwrap())],
        ..PurgeTarget::generic(url.parse().unwrap())
    });
    let server = Server::start(c);
    let addr = raw::addr(&server.base);
    let profile_of = |base: &str| -> String {
        let r = raw::get(addr, &format!("{base}/light.xml"), &[]).unwrap();
        let key = r.header("surrogate-key").unwrap().to_string();
        assert!(key.contains("file:light"), "{key}");
        key.split(' ')
            .find_map(|k| k.strip_suffix("/light"))
            .unwrap()
            .to_string()
    };
    let kowalski = profile_of(KOWALSKI);
    let eu = profile_of(EU);

    // Revoke in the partners file and reload it: the partner's responses are purged, and
    // so is its render profile, which no partner with access uses any more.
    let path = data.join("partners.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let revoked = text.replacen("offer_access = true", "offer_access = false", 1);
    assert_ne!(text, revoked);
    std::fs::write(&path, revoked).unwrap();
    // The file watcher may put the change in force before this call does; either way the
    // partner's responses and its unused profile are purged.
    server.app.reload_partners().unwrap();
    let keys = keys_until(&purges, |k| {
        k.contains("partner:sklep-kowalski") && k.contains(&kowalski)
    });
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("eu-reseller") || k.starts_with(&eu)),
        "{keys:?}"
    );
    assert_eq!(
        raw::get(addr, &format!("{KOWALSKI}/light.xml"), &[])
            .unwrap()
            .status,
        403
    );

    // A catalog change supersedes light and the gateways of the profile in use; full.xml is
    // a base that stays until its scheduled rebuild (the change reaches partners as a change
    // file when the window closes).
    let batch =
        iofd::ingest::read_jsonl("t", &b"{\"kind\":\"delete_product\",\"id\":1}\n"[..]).unwrap();
    let records = batch.records.into_iter().map(|l| l.record).collect();
    server
        .app
        .store
        .apply(records, iofd::store::ApplyMode::Upsert)
        .unwrap();
    let wanted: Vec<String> = ["light", "gateway"]
        .iter()
        .map(|kind| format!("{eu}/{kind}"))
        .collect();
    let keys = keys_until(&purges, |k| wanted.iter().all(|w| k.contains(w)));
    assert!(
        !keys
            .iter()
            .any(|k| k.ends_with("/categories") || k.ends_with("/full")),
        "unchanged reference files and the base full.xml stay cached: {keys:?}"
    );
    let metrics = server
        .get(&format!("{}/metrics", server.admin))
        .text()
        .unwrap();
    assert!(
        metrics.contains("iofd_purge_requests_total{result=\"ok\"}"),
        "{metrics}"
    );
}

/// Collects everything the JSON log formatter writes.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

#[test]
fn the_json_access_log_has_bytes_and_duration_and_no_token() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(logs.clone())
        .with_env_filter("access=info")
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets it");
    let dir = tempdir();
    let server = Server::demo(&data_path(&dir));
    let addr = raw::addr(&server.base);
    let r = raw::get(addr, &format!("{EU}/full.xml"), &[("Range", "bytes=0-99")]).unwrap();
    assert_eq!(r.status, 206);
    let mut line = None;
    for _ in 0..50 {
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        line = text
            .lines()
            .find(|l| l.contains("\"target\":\"access\"") && l.contains("\"status\":206"))
            .map(str::to_string);
        if line.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = line.expect("an access line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let f = &v["fields"];
    assert_eq!(f["partner"], "eu-reseller");
    assert_eq!(f["file"], "full.xml");
    assert_eq!(f["bytes"], 100);
    assert_eq!(f["complete"], true);
    assert!(
        f["micros"].as_u64().is_some() && f["head_micros"].as_u64().is_some(),
        "{line}"
    );
    assert!(
        !line.contains("demo-eureseller"),
        "tokens never reach the log"
    );
}

/// A one-request-at-a-time HTTPS receiver on 127.0.0.1 with a self-signed certificate made
/// here; returns its URL, the certificate as PEM (to trust through `purge_ca_file`) and the
/// requests it got, as read from the TLS stream.
fn tls_purge_receiver() -> (String, String, std::sync::mpsc::Receiver<String>) {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/purge", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { return };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let conn = ServerConnection::new(config.clone()).unwrap();
            let mut tls = StreamOwned::new(conn, tcp);
            let Ok(req) = raw_request(&mut tls) else {
                continue;
            };
            let _ =
                tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
            if tx.send(req).is_err() {
                return;
            }
        }
    });
    (url, certified.cert.pem(), rx)
}

#[test]
fn serve_with_an_https_purge_url_reaches_a_tls_endpoint_trusted_through_the_ca_file() {
    let dir = tempdir();
    let data = data_path(&dir);
    let (url, ca_pem, purges) = tls_purge_receiver();
    let ca_file = dir.path().join("purge-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    // As `iofd serve --purge-url https://… --purge-style fastly --purge-ca-file …` takes it.
    let args = iofd::config::ServeArgs {
        data: Some(data.clone()),
        limits: iofd::config::LimitArgs {
            purge_url: Some(url),
            purge_style: Some("fastly".into()),
            purge_ca_file: Some(ca_file),
            purge_headers: vec!["Fastly-Key: k-123".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let server = Server::start(Config::load(&args).unwrap());
    let path = data.join("partners.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("offer_access = true", "offer_access = false", 1),
    )
    .unwrap();
    server.app.reload_partners().unwrap();
    let request = purges
        .recv_timeout(Duration::from_secs(30))
        .expect("a purge request over TLS");
    assert!(request.starts_with("POST /purge HTTP/1.1\r\n"), "{request}");
    let lower = request.to_ascii_lowercase();
    assert!(lower.contains("fastly-key: k-123\r\n"), "{request}");
    assert!(
        surrogate_keys(&request).contains(&"partner:sklep-kowalski".to_string()),
        "{request}"
    );
    assert!(
        request.ends_with("\r\n\r\n"),
        "Fastly purges carry no body: {request}"
    );
    server.stop();
    // Later batches of the first server (its superseded files) are not this check's.
    while purges.try_recv().is_ok() {}

    // Without the CA file the self-signed endpoint is not trusted: the attempt fails in the
    // TLS handshake (retried), and no request reaches the endpoint.
    let dir = tempdir();
    let data = data_path(&dir);
    let mut untrusted = args.clone();
    untrusted.data = Some(data.clone());
    untrusted.limits.purge_ca_file = None;
    let server = Server::start(Config::load(&untrusted).unwrap());
    let path = data.join("partners.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("offer_access = true", "offer_access = false", 1),
    )
    .unwrap();
    server.app.reload_partners().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = server
            .get(&format!("{}/metrics", server.admin))
            .text()
            .unwrap();
        if metrics.contains("iofd_purge_requests_total{result=\"retry\"} 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempt counted: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        purges.try_recv().is_err(),
        "an untrusted endpoint must not receive the purge"
    );
}
