//! Abuse against the real server, in-process: slowloris, huge heads, thousands of ranges,
//! path traversal and token guessing. After each, the server is up, its memory bounded, and a
//! well-behaved partner's requests succeed; their latency during the abuse is printed
//! (`cargo test --test abuse -- --nocapture`).

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
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
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
