//! One owner per data directory: a second `Store::open`, a second `iofd serve` and an
//! `iofd import` against a running server are refused at once, naming the holder's pid, and
//! nothing the server acknowledged is lost.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use iofd::catalog::Product;
use iofd::store::{Store, StoreError, StoreOptions};

const TOKEN: &str = "demo-admin-token";

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// `iofd serve` in demo mode on `data`, on free loopback ports; `stderr` piped or dropped.
fn serve(data: &Path, stderr: Stdio) -> (Child, SocketAddr) {
    let (public, admin) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_iofd"))
        .args(["serve", "--data"])
        .arg(data)
        .args(["--listen", &public.to_string()])
        .args(["--admin-listen", &admin.to_string()])
        .env("IOFD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn iofd serve");
    (child, admin)
}

/// Wait until the server answers `/readyz` with 200 (it has taken the lock long before).
fn wait_ready(admin: SocketAddr, child: &mut Child) {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("iofd serve exited early: {status}");
        }
        let ready = client
            .get(format!("http://{admin}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("iofd serve did not become ready");
}

fn run(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iofd"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("IOFD_LOG", "warn")
        .output()
        .expect("run iofd")
}

fn product_name(store: &Store, id: u64) -> Option<String> {
    let snapshot = store.snapshot();
    let p: Product = rkyv::deserialize::<_, rkyv::rancor::Error>(snapshot.product(id)?).unwrap();
    p.description.name.get("pol").cloned()
}

#[test]
fn a_second_store_open_in_the_same_process_is_refused_with_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    match &err {
        StoreError::Locked { pid, path } => {
            assert_eq!(*pid, Some(std::process::id()));
            assert_eq!(path, &dir.path().join(iofd::store::LOCK));
        }
        other => panic!("expected Locked, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(
        message.contains("admin API") && message.contains("drop folder"),
        "{message}"
    );
    drop(first);
    Store::open(dir.path(), StoreOptions::default()).expect("free again once dropped");
}

#[test]
fn an_import_or_second_server_against_a_running_server_is_refused_and_acked_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, admin) = serve(&data, Stdio::null());
    wait_ready(admin, &mut server);
    let pid = server.id();

    // Acknowledged by the running server.
    let put = reqwest::blocking::Client::new()
        .put(format!("http://{admin}/v1/products/17"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"vat":23,"description":{"name":{"pol":"Kubek po imporcie"}},"prices":{"retail":{"net":"10.00","gross":"12.30"}}}"#)
        .send()
        .unwrap();
    assert_eq!(put.status(), 200, "{:?}", put.text());

    // A second process on the live directory: refused at once, nothing touched.
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/catalog.jsonl");
    let import = run(&["import", catalog.to_str().unwrap()], &data);
    assert!(!import.status.success(), "the import must fail");
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
    assert!(stderr.contains("admin API"), "{stderr}");
    assert!(stderr.contains("drop folder"), "{stderr}");

    let (mut second, second_admin) = serve(&data, Stdio::piped());
    let started = Instant::now();
    let status = second.wait().unwrap();
    assert!(!status.success(), "a second server must not start");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused at once, not after a wait"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
    assert!(
        reqwest::blocking::get(format!("http://{second_admin}/healthz")).is_err(),
        "the refused server is not listening"
    );

    // The first server kept serving, and its acknowledged write survives its death.
    let health = reqwest::blocking::get(format!("http://{admin}/healthz")).unwrap();
    assert_eq!(health.status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();
    // The kernel released the lock with the process: the store opens, with the write.
    let store = Store::open(&data.join("store"), StoreOptions::default()).unwrap();
    assert_eq!(
        product_name(&store, 17).as_deref(),
        Some("Kubek po imporcie")
    );
    drop(store);

    // And once nobody holds the directory, the import runs.
    let import = run(&["import", catalog.to_str().unwrap()], &data);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
}
