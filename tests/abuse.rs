//! Abuse against the real server, in-process: slowloris, huge heads, thousands of ranges,
//! path traversal and token guessing. After each, the server is up, its memory bounded, and a
//! well-behaved partner's requests succeed; their latency during the abuse is printed
//! (`cargo test --test abuse -- --nocapture`). And floods of idle connections against the
//! real binary under a descriptor limit of 1024.

mod common;
#[path = "common/raw.rs"]
mod raw;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use iofd::config::Config;

const KOWALSKI: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1";
const SLOWLORIS: usize = 1000;

/// Resident and peak memory of this process (server and attackers), in MiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (kb("VmRSS:") / 1024, kb("VmHWM:") / 1024)
}

/// Enough descriptors for both ends of the slowloris connections.
fn raise_fd_limit(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < want) {
        limit.current = Some(limit.maximum.map_or(want, |m| want.min(m)));
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// A well-behaved partner fetching its light.xml on a keep-alive connection until stopped;
/// returns the latency of each request. Any failure fails the test.
fn good_client(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut latencies = Vec::new();
        let mut conn = raw::connect(addr).expect("good client connects");
        while !stop.load(Ordering::Relaxed) || latencies.len() < 5 {
            let started = Instant::now();
            let r = match raw::request(&mut conn, "GET", &format!("{KOWALSKI}/light.xml"), &[]) {
                Ok(r) => r,
                Err(_) => {
                    // The idle clock may have closed the keep-alive connection: reconnect.
                    conn = raw::connect(addr).expect("good client reconnects");
                    raw::request(&mut conn, "GET", &format!("{KOWALSKI}/light.xml"), &[])
                        .expect("good client request")
                }
            };
            assert_eq!(r.status, 200, "the good client was refused");
            latencies.push(started.elapsed());
            // Ten requests a second: within the default per-partner rate.
            std::thread::sleep(Duration::from_millis(100));
        }
        latencies
    })
}

fn report(what: &str, mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let (p50, p99, max) = (at(0.5), at(0.99), at(1.0));
    let (rss, peak) = memory();
    println!(
        "{what}: good client {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; RSS {rss} MiB (peak {peak} MiB)",
        latencies.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
    );
    max
}

fn still_serving(addr: SocketAddr) {
    let r = raw::get(addr, &format!("{KOWALSKI}/gateway.xml"), &[]).expect("server up");
    assert_eq!(r.status, 200);
}

#[test]
fn the_server_survives_abuse_and_keeps_serving_well_behaved_partners() {
    raise_fd_limit(4096);
    let dir = tempdir();
    let mut config = Config::for_data_dir(&data_path(&dir));
    config.limits.header_timeout = Duration::from_secs(2);
    // Every slowloris comes from one address: without the per-address cap they all reach
    // the header timeout (the cap has its own test).
    config.limits.max_connections_per_ip = 0;
    let server = Server::start(config);
    let addr = raw::addr(&server.base);
    still_serving(addr);
    let (rss_start, _) = memory();

    // 1. Slowloris: 1,000 connections opened over about two seconds, each sending a partial
    //    head and then a byte now and then. They hold slots until the header timeout.
    let stop = Arc::new(AtomicBool::new(false));
    let good = good_client(addr, stop.clone());
    let mut lorises: Vec<TcpStream> = Vec::with_capacity(SLOWLORIS);
    let opened = Instant::now();
    for i in 0..SLOWLORIS {
        let mut s = raw::connect(addr).expect("slowloris connects");
        let _ = s.write_all(
            format!("GET {KOWALSKI}/full.xml HTTP/1.1\r\nHost: x\r\nX-{i}: ").as_bytes(),
        );
        lorises.push(s);
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(100));
            for s in &mut lorises {
                let _ = s.write_all(b"a");
            }
        }
    }
    let opening = opened.elapsed();
    // Keep trickling until the header timeout cuts them all.
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut open = lorises.len();
    while open > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        open = 0;
        for s in &mut lorises {
            if s.write_all(b"a").is_ok() && !raw::closed_within(s, Duration::from_micros(1)) {
                open += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let max = report(
        &format!("slowloris ({SLOWLORIS} connections opened in {opening:.1?})"),
        good.join().expect("good client"),
    );
    assert_eq!(
        open, 0,
        "the header timeout closed every slowloris connection"
    );
    assert!(max < Duration::from_secs(2), "good client stalled: {max:?}");
    drop(lorises);
    still_serving(addr);

    // 2. 100 KB of headers: refused with 431 (or the connection closed), the server stays up.
    let mut s = raw::connect(addr).unwrap();
    let big = format!(
        "GET {KOWALSKI}/light.xml HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let written = s.write_all(big.as_bytes());
    match raw::read_response(&mut s, false) {
        Ok(r) => {
            println!("100 KB of headers: {}", r.status);
            assert_eq!(r.status, 431)
        }
        Err(_) => assert!(written.is_err() || raw::closed_within(&mut s, Duration::from_secs(2))),
    }
    still_serving(addr);

    // 3. Thousands of ranges: answered with the whole body at once, never a multipart
    //    amplification; a header too big to parse is refused like any other.
    let full = raw::get(addr, &format!("{KOWALSKI}/full.xml"), &[]).unwrap();
    let many = format!("bytes={}", vec!["0-0"; 3000].join(","));
    let started = Instant::now();
    let r = raw::get(addr, &format!("{KOWALSKI}/full.xml"), &[("Range", &many)]).unwrap();
    assert_eq!((r.status, r.body.len()), (200, full.body.len()));
    assert!(started.elapsed() < Duration::from_secs(2));
    let huge = format!(
        "bytes={}",
        (0..10_000)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let r = raw::get(addr, &format!("{KOWALSKI}/full.xml"), &[("Range", &huge)]);
    assert!(r.map(|r| r.status == 431).unwrap_or(true));
    still_serving(addr);

    // 4. Path traversal in the partner, token, shop and file segments and the IdoSell query.
    for target in [
        "/feeds/../../../../etc/passwd",
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/../../../../Cargo.toml",
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/..%2f..%2f..%2fCargo.toml",
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/%2e%2e%2fpartners.toml",
        "/feeds/%2e%2e/demo-kowalski-4f9c2a7e1b/1/full.xml",
        "/feeds/..%5c..%5c/demo-kowalski-4f9c2a7e1b/1/full.xml",
        "/feeds/sklep-kowalski/../1/full.xml",
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/full.xml%00.txt",
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/..%2f1/full.xml",
        "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/....//full.xml",
        "/edi/export-offer.php?client=../sklep-kowalski&token=demo-kowalski-4f9c2a7e1b&type=full",
        "/edi/export-offer.php?client=sklep-kowalski&token=demo-kowalski-4f9c2a7e1b&type=../../etc/passwd",
        "/edi/export-offer.php?client=sklep-kowalski&token=demo-kowalski-4f9c2a7e1b&type=full%2f..%2f..",
        "/artifacts/",
        "/store/MANIFEST",
        "//etc/passwd",
    ] {
        let r = raw::get(addr, target, &[]).expect(target);
        assert!(
            r.status == 404 || r.status == 400,
            "{target}: answered {}",
            r.status
        );
        let text = String::from_utf8_lossy(&r.body);
        assert!(!text.contains("root:") && !text.contains("[package]") && !text.contains("token"), "{target}");
    }
    still_serving(addr);

    // 5. Random tokens at a high rate from four keep-alive connections, with the good
    //    client measuring meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let good = good_client(addr, stop.clone());
    let started = Instant::now();
    let guessers: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut conn = raw::connect(addr).unwrap();
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                let mut count = 0;
                for _ in 0..2500 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let path = format!("/feeds/sklep-kowalski/{seed:016x}/1/light.xml");
                    let r = raw::request(&mut conn, "GET", &path, &[]).expect("guess answered");
                    assert_eq!(r.status, 404, "a random token was accepted");
                    count += 1;
                }
                count
            })
        })
        .collect();
    let guesses: usize = guessers.into_iter().map(|g| g.join().unwrap()).sum();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let max = report(
        &format!(
            "random tokens ({guesses} in {:.2} s, {:.0}/s)",
            took.as_secs_f64(),
            guesses as f64 / took.as_secs_f64()
        ),
        good.join().expect("good client"),
    );
    assert!(max < Duration::from_secs(2), "good client stalled: {max:?}");
    still_serving(addr);

    // Memory: the attacks' connections are gone; the process did not grow without bound
    // (this figure includes the attacking side's buffers too).
    let (rss_end, peak) = memory();
    println!("memory: RSS {rss_start} MiB at start, {rss_end} MiB at the end, peak {peak} MiB");
    assert!(
        rss_end < rss_start + 64,
        "RSS grew from {rss_start} to {rss_end} MiB"
    );
    assert!(
        peak < rss_start + 192,
        "peak {peak} MiB from {rss_start} MiB"
    );
    let metrics = server
        .get(&format!("{}/metrics", server.admin))
        .text()
        .unwrap();
    assert!(metrics.contains("iofd_connections_closed_by_limit_total{reason=\"header_timeout\"}"));
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// The server process, killed when the test ends however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` connections to `to` from the loopback address `from` (all of 127/8 is local), each
/// sending nothing: they hold their slots until the header timeout. Opened from several
/// threads, so a SYN the kernel drops in the burst (retried after a second) delays only its own.
fn idle_connections(from: [u8; 4], to: SocketAddr, n: usize) -> Vec<socket2::Socket> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let local = SocketAddr::from((from, 0));
    let threads: Vec<_> = (0..n.div_ceil(100))
        .map(|t| {
            let count = 100.min(n - t * 100);
            std::thread::spawn(move || {
                (0..count)
                    .map(|_| {
                        let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
                        s.bind(&SockAddr::from(local))
                            .expect("bind a loopback address");
                        s.connect_timeout(&SockAddr::from(to), Duration::from_secs(5))
                            .expect("connect");
                        s
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("connecting thread"))
        .collect()
}

/// A value of the server's metrics (the first sample of `name`).
fn metric(admin: SocketAddr, name: &str) -> f64 {
    let r = raw::get(admin, "/metrics", &[]).expect("metrics");
    String::from_utf8_lossy(&r.body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// Wait (polling the metrics, up to 20 s) until `check` holds for `name`.
fn wait_metric(admin: SocketAddr, name: &str, check: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = metric(admin, name);
        if check(v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ingest API works: a PUT of a product and a stock update, each durable (200).
fn ingest_works(admin: SocketAddr, quantity: u32) {
    let client = client();
    let put = client
        .put(format!("http://{admin}/v1/products/17"))
        .bearer_auth("demo-admin-token")
        .body(r#"{"vat":23,"description":{"name":{"pol":"Kubek"}},"prices":{"retail":{"net":"10.00","gross":"12.30"}}}"#)
        .send()
        .expect("PUT answered");
    assert_eq!(put.status(), 200, "{}", put.text().unwrap_or_default());
    let update = client
        .post(format!("http://{admin}/v1/updates"))
        .bearer_auth("demo-admin-token")
        .body(format!(
            r#"{{"kind":"stock","product":1,"warehouse":1,"quantity":"{quantity}"}}"#
        ))
        .send()
        .expect("update answered");
    assert_eq!(
        update.status(),
        200,
        "{}",
        update.text().unwrap_or_default()
    );
}

/// The feeds work: the gateway and the whole full.xml.
fn feeds_work(public: SocketAddr) {
    let r = raw::get(public, &format!("{KOWALSKI}/gateway.xml"), &[]).expect("gateway");
    assert_eq!(r.status, 200);
    let r = raw::get(public, &format!("{KOWALSKI}/full.xml"), &[]).expect("full.xml");
    assert_eq!(r.status, 200);
    assert!(r.body.ends_with(b"</offer>\n") || r.body.ends_with(b"</offer>"));
}

#[test]
fn idle_floods_under_a_descriptor_limit_of_1024_leave_ingest_and_feeds_working() {
    raise_fd_limit(8192);
    let dir = tempdir();
    let data = data_path(&dir);
    let (public, admin) = (free_port(), free_port());
    let log_path = dir.path().join("iofd.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    // `ulimit -n` sets the soft and the hard limit: iofd cannot raise it past 1024.
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_iofd"))
        .args(["serve", "--data"])
        .arg(&data)
        .args(["--listen", &public.to_string()])
        .args(["--admin-listen", &admin.to_string()])
        // More than the flood below, so only the descriptor budget and the per-IP cap hold
        // it; a header timeout long enough for the idle connections to outlast the checks.
        .args(["--max-connections", "1200", "--header-timeout", "60"])
        .env("IOFD_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn iofd");
    let _child = Child(child);
    let started = Instant::now();
    while !raw::get(public, &format!("{KOWALSKI}/gateway.xml"), &[]).is_ok_and(|r| r.status == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "iofd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The log without its colours.
    let log = || {
        let raw = std::fs::read_to_string(&log_path).unwrap_or_default();
        let mut text = String::with_capacity(raw.len());
        let mut rest = raw.as_str();
        while let Some(at) = rest.find('\x1b') {
            text.push_str(&rest[..at]);
            rest = rest[at..].split_once('m').map_or("", |(_, r)| r);
        }
        text.push_str(rest);
        text
    };
    let text = log();
    assert!(
        text.contains("connection budget") && text.contains("descriptor_limit=1024"),
        "{text}"
    );

    // 1. 1,500 idle connections from one address (127.0.0.2): it gets its 256, the rest are
    //    refused; partners elsewhere and the ERP are served.
    // Open now: this metrics request's, and maybe the last ones' (closing).
    let base = wait_metric(admin, "iofd_connections_open", |v| v <= 1.0);
    let phase = Instant::now();
    let flood = idle_connections([127, 0, 0, 2], public, 1500);
    let open = wait_metric(admin, "iofd_connections_open", |v| v >= base + 256.0);
    assert!(
        (256.0..=258.0).contains(&(open - base)),
        "one address holds its cap: {open} open"
    );
    let rejected = wait_metric(admin, "iofd_connections_rejected_total", |v| v >= 1244.0);
    assert!(rejected >= 1244.0, "{rejected}");
    println!(
        "1,500 idle connections from one address in {:.1?}",
        phase.elapsed()
    );
    feeds_work(public);
    ingest_works(admin, 11);
    // The drop folder can still open its files.
    let inbox = data.join("inbox");
    std::fs::write(
        inbox.join("stock.jsonl.tmp"),
        r#"{"kind":"product","id":18,"vat":23,"description":{"name":{"pol":"Talerz"}},"prices":{"retail":{"net":"10.00","gross":"12.30"}}}"#,
    )
    .unwrap();
    std::fs::rename(inbox.join("stock.jsonl.tmp"), inbox.join("stock.jsonl")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !inbox.join("done").join("stock.jsonl").exists() {
        assert!(
            Instant::now() < deadline,
            "the dropped file was not taken: {:?}",
            std::fs::read_to_string(inbox.join("rejected").join("stock.jsonl.errors.txt"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    println!("phase 1 done in {:.1?}", phase.elapsed());
    // 2. 1,500 more from six other addresses, 250 each: more than the public listener's share
    //    of descriptors. Partners get the over-limit answer (503 or a closed connection), never
    //    an accept error; the ERP keeps its own share.
    let wide: Vec<_> = (3..9)
        .flat_map(|last| idle_connections([127, 0, 0, last], public, 250))
        .collect();
    let rejected_before = metric(admin, "iofd_connections_rejected_total");
    // A 503, or closed at once when the waiting queue is full too.
    if let Ok(r) = raw::get(public, &format!("{KOWALSKI}/gateway.xml"), &[]) {
        assert_eq!(r.status, 503, "a full listener answers 503");
    }
    assert!(metric(admin, "iofd_connections_rejected_total") > rejected_before);
    ingest_works(admin, 13);
    let open = metric(admin, "iofd_connections_open");
    assert!(
        open < 1024.0 - base,
        "connections stay under the limit: {open}"
    );

    println!("phase 2 done in {:.1?}", phase.elapsed());
    // 3. The flood ends: partners are served again.
    drop((flood, wide));
    wait_metric(admin, "iofd_connections_open", |v| v <= base + 1.0);
    feeds_work(public);
    let text = log();
    for bad in ["Too many open files", "EMFILE", "accept failed"] {
        assert!(!text.contains(bad), "{bad} in the log:\n{text}");
    }
    println!(
        "{}",
        text.lines()
            .filter(|l| l.contains("connection budget") || l.contains("descriptor limit"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// POST `body` to the admin API; status and JSON answer.
fn admin_post(server: &Server, path: &str, body: String) -> (u16, serde_json::Value) {
    let r = client()
        .post(format!("{}{path}", server.admin))
        .bearer_auth("demo-admin-token")
        .body(body)
        .send()
        .expect("answered");
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(text.into()))
}

#[test]
fn stalled_and_concurrent_uploads_are_bounded_and_big_update_bodies_keep_their_contract() {
    let dir = tempdir();
    let mut config = Config::for_data_dir(&data_path(&dir));
    config.ingest_body_timeout = Duration::from_secs(2);
    config.ingest_max_concurrent = 1;
    let server = Server::start(config);
    let admin = raw::addr(&server.admin);
    let generation = || server.app.store.snapshot().generation();
    let before = generation();

    // 1. An upload that stalls mid-line holds the only upload slot: others get 503 with
    //    Retry-After (an empty body would otherwise be a harmless 200).
    let line = |product: u64, quantity: u64| {
        format!(r#"{{"kind":"stock","product":{product},"warehouse":1,"quantity":"{quantity}"}}"#)
    };
    let mut stalled = raw::connect(admin).unwrap();
    write!(
        stalled,
        "POST /v1/updates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-admin-token\r\nContent-Length: 1000\r\n\r\n{}\n{{\"kind\":",
        line(1, 9)
    )
    .unwrap();
    let stalled_at = Instant::now();
    let deadline = stalled_at + Duration::from_millis(1500);
    let busy = loop {
        let r = client()
            .post(format!("{}/v1/updates", server.admin))
            .bearer_auth("demo-admin-token")
            .body("")
            .send()
            .unwrap();
        if r.status() == 503 || Instant::now() > deadline {
            break r;
        }
    };
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert!(busy.text().unwrap().contains("ingest_max_concurrent"));
    // 2. The stall ends in 408 after the body timeout, and nothing of it is applied.
    let r = raw::read_response(&mut stalled, false).expect("an answer to the stalled upload");
    let waited = stalled_at.elapsed();
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("nothing was applied"));
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(generation(), before, "a stalled upload applies nothing");
    // The slot is free again.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, report) = admin_post(&server, "/v1/updates", line(1, 10));
        if status == 200 {
            assert_eq!(report["applied"], 1, "{report}");
            break;
        }
        assert_eq!(status, 503, "{report}");
        assert!(
            Instant::now() < deadline,
            "the upload slot was not given back"
        );
    }
    let before = generation();

    // 3. 1,500 bad lines: the first 1,000 are listed, the rest counted.
    let bad: String = (0..1500)
        .map(|_| "{\"kind\":\"stock\",\"product\":\"x\"}\n")
        .collect();
    let (status, report) = admin_post(&server, "/v1/updates", bad);
    assert_eq!(status, 422);
    let listed = report["rejected"].as_array().unwrap();
    assert_eq!(listed.len(), 1000);
    assert_eq!(
        (listed[0]["line"].as_u64(), listed[999]["line"].as_u64()),
        (Some(1), Some(1000))
    );
    assert_eq!(report["rejected_unlisted"], 500);

    // 4. 2,500 updates, one naming an unknown product: atomic, nothing applied...
    let body = |bad_at: Option<u64>, base: u64, lines: u64| -> String {
        (1..=lines)
            .map(|i| line(if Some(i) == bad_at { 999_999 } else { 1 }, base + i) + "\n")
            .collect()
    };
    let (status, report) = admin_post(&server, "/v1/updates", body(Some(2400), 1000, 2500));
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["rejected"][0]["line"], 2400, "{report}");
    assert_eq!(report["applied"], 0);
    assert_eq!(generation(), before, "an atomic body applies nothing");
    // ...with partial=true the others are, in groups of 1,000 lines, each durable...
    let (status, report) = admin_post(
        &server,
        "/v1/updates?partial=true",
        body(Some(2400), 1000, 2500),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 2499, "{report}");
    assert_eq!(report["rejected"][0]["line"], 2400, "{report}");
    assert_eq!(generation(), before + 3, "three groups");
    // ...and a valid atomic body, 1.3 MB (parsed in several batches), is one generation
    // (with quantities that end elsewhere: a batch that leaves the catalog as it was makes
    // no generation). The spool file is gone.
    let before = generation();
    let (status, report) = admin_post(&server, "/v1/updates", body(None, 50_000, 20_000));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], 20_000, "{report}");
    assert_eq!(generation(), before + 1, "one generation");
    let spool = data_path(&dir).join("store/spool");
    assert_eq!(std::fs::read_dir(spool).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn one_address_over_its_cap_gets_503_at_once_and_others_are_served() {
    let dir = tempdir();
    let mut config = Config::for_data_dir(&data_path(&dir));
    config.limits.max_connections_per_ip = 2;
    let server = Server::start(config);
    let addr = raw::addr(&server.base);
    let path = format!("{KOWALSKI}/light.xml");
    let mut held: Vec<_> = (0..2).map(|_| raw::connect(addr).unwrap()).collect();
    // Both are being served (a request on each proves the server took them).
    for conn in &mut held {
        assert_eq!(raw::request(conn, "GET", &path, &[]).unwrap().status, 200);
    }
    let started = Instant::now();
    let r = raw::get(addr, &path, &[]).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "answered without waiting"
    );
    // Another address is not affected.
    let other = idle_connections([127, 0, 0, 2], addr, 1).pop().unwrap();
    let mut other: TcpStream = other.into();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        raw::request(&mut other, "GET", &path, &[]).unwrap().status,
        200
    );
    // A slot given back is taken again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    while raw::get(addr, &path, &[]).unwrap().status != 200 {
        assert!(
            Instant::now() < deadline,
            "the address's slot was not given back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
