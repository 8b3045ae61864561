//! Acknowledged means durable: clients stream stock updates to a real `iofd serve` process
//! while it is killed with SIGKILL at random moments. After every kill the store on disk must
//! open and validate, and hold every acknowledged update (or a later one that was in flight).
//!
//! Run by `scripts/crash-test.sh` (and CI): `cargo test --test crash -- --ignored`.
//! `IOFD_CRASH_KILLS` sets the number of kills (default 50), `IOFD_CRASH_SEED` the seed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

const TOKEN: &str = "demo-admin-token";
/// Demo products whose single size takes warehouse-keyed stock updates.
const PRODUCTS: [u64; 4] = [1, 3, 4, 6];
const CLIENTS: usize = 4;

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn start(data: &std::path::Path) -> (Child, SocketAddr) {
    let (public, admin) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_iofd"))
        .args(["serve", "--data"])
        .arg(data)
        .args([
            "--listen",
            &public.to_string(),
            "--admin-listen",
            &admin.to_string(),
        ])
        .env("IOFD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn iofd");
    (child, admin)
}

/// One HTTP/1.1 request on a fresh connection: `Some(body)` for a 200, `None` otherwise
/// (refused, reset, killed mid-request).
fn post(admin: SocketAddr, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    if !answer.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(answer.split("\r\n\r\n").nth(1)?.to_string())
}

fn wait_ready(admin: SocketAddr) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(mut s) = TcpStream::connect_timeout(&admin, Duration::from_millis(100)) {
            let _ = write!(
                s,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut a = String::new();
            if s.read_to_string(&mut a).is_ok() && a.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Per (product, warehouse): the last acknowledged quantity and those sent after it without
/// an answer (each may or may not have been committed before the kill).
#[derive(Default, Clone, Debug)]
struct Key {
    acked: Option<u64>,
    unanswered: Vec<u64>,
}

#[test]
#[ignore = "spawns and kills the server many times; run by scripts/crash-test.sh"]
fn acknowledged_updates_survive_sigkill() {
    let kills: usize = std::env::var("IOFD_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("IOFD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test: {kills} kills, seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let state: Arc<Mutex<HashMap<(u64, u32), Key>>> = Arc::default();
    let mut counter = 0u64;
    let mut acked_total = 0usize;

    for round in 0..kills {
        let (mut child, admin) = start(&data);
        assert!(wait_ready(admin), "round {round}: server did not start");
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (stop, state, acks) = (stop.clone(), state.clone(), acks.clone());
            let base = counter + (c as u64) * 1_000_000;
            clients.push(std::thread::spawn(move || {
                let mut n = base;
                let mut i = 0usize;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    i += 1;
                    let product = PRODUCTS[c % PRODUCTS.len()];
                    let warehouse = (c * 10 + i % 3) as u32;
                    let key = (product, warehouse);
                    state.lock().unwrap().entry(key).or_default().unanswered.push(n);
                    let body = format!(
                        r#"{{"kind":"stock","product":{product},"warehouse":{warehouse},"quantity":"{n}"}}"#
                    );
                    if post(admin, "/v1/updates", &body).is_some() {
                        let mut st = state.lock().unwrap();
                        let k = st.entry(key).or_default();
                        k.acked = Some(n);
                        k.unanswered.clear();
                        acks.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Not acknowledged: it may or may not have been applied; it stays
                        // possible until the next acknowledged update of the key.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..250)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        stop.store(true, Ordering::Release);
        for c in clients {
            c.join().expect("client");
        }
        counter += 10_000_000;
        acked_total += acks.load(Ordering::Relaxed);

        // The store must open (every file validated) and hold what was acknowledged.
        let snapshot = iofd::store::load_snapshot(&data.join("store"))
            .unwrap_or_else(|e| panic!("round {round}: the store does not load: {e}"));
        let st = state.lock().unwrap();
        for (&(product, warehouse), key) in st.iter() {
            let Some(acked) = key.acked else { continue };
            let p = snapshot
                .product(product)
                .unwrap_or_else(|| panic!("round {round}: product {product} missing"));
            let stored = p.sizes[0]
                .stock
                .iter()
                .find(|l| l.warehouse.to_native() == warehouse)
                .map(|l| iofd::catalog::decimal(&l.quantity).to_string());
            let allowed: Vec<Option<String>> = std::iter::once(acked)
                .chain(key.unanswered.iter().copied())
                .map(|n| Some(n.to_string()))
                .collect();
            assert!(
                allowed.contains(&stored),
                "round {round}: product {product} warehouse {warehouse}: stored {stored:?}, acknowledged {acked}, unanswered since {:?}",
                key.unanswered
            );
        }
    }
    println!("crash test: {kills} kills, {acked_total} acknowledged updates checked");
    assert!(
        acked_total > kills,
        "too few updates were acknowledged to mean anything"
    );
}
