//! One writer and two read replicas over a local S3 (`moto_server`, PyPI `moto[server]`,
//! installed by `.ci/run`): an acknowledged stock update is in the bucket, replicas serve the
//! writer's bytes with the same ETag and Last-Modified, replicas take no writes, and a second
//! writer takes over without losing the acknowledged update while the first is fenced; the
//! faults (store unreachable, a replica killed mid-download) end as `docs/scale-out.md` says,
//! and the load harness finds no hash mismatch on two replicas while the writer publishes.

mod common;
#[path = "scaleout/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use iofd::config::{Config, Role, StoreTarget};

const TOKEN: &str = "demo-admin-token";
const FEED: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1";
const LIGHT: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/light.xml";
const FULL: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/full.xml";
const BUCKET: &str = "iofd-scaleout";

/// `moto_server` on a free loopback port, killed (by its pid) when dropped.
struct Moto {
    child: Child,
    url: String,
    addr: SocketAddr,
}

impl Moto {
    fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; .ci/run installs it)");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while client().get(&moto.url).send().is_err() {
            assert!(Instant::now() < deadline, "moto_server answers within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        let r = client()
            .put(format!("{}/{BUCKET}", moto.url))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node of the deployment whose object store answers at `endpoint`.
fn node(data: &std::path::Path, endpoint: &str, role: Role) -> Config {
    let mut config = Config::for_data_dir(data);
    config.role = role;
    config.object_store = Some(StoreTarget {
        bucket: BUCKET.into(),
        prefix: "eu/feeds".into(),
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
    });
    // Every node of a deployment is given the same key and public URL.
    config.signing.key = Some("k".repeat(40));
    config.public_url = "http://cdn.example.test".into();
    config
}

fn stock(server: &Server, quantity: u32) -> (u16, String) {
    let r = client()
        .post(format!("{}/v1/updates", server.admin))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/x-ndjson")
        .body(format!(
            r#"{{"kind":"stock","product":1,"warehouse":1,"quantity":"{quantity}"}}"#
        ))
        .send()
        .expect("ingest");
    (r.status().as_u16(), r.text().unwrap())
}

fn shows(server: &Server, quantity: u32) -> bool {
    let xml = server.get(LIGHT).text().unwrap();
    let Some(start) = xml.find("<product id=\"1\"") else {
        return false;
    };
    let product = &xml[start..start + xml[start..].find("</product>").unwrap()];
    product.contains(&format!("<stock id=\"1\" quantity=\"{quantity}\""))
}

fn wait_until(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The change files a node's gateway lists: link and MD5, newest first.
fn change_links(server: &Server) -> Vec<(String, String)> {
    let gateway = server.get(&format!("{FEED}/gateway.xml"));
    assert_eq!(gateway.status(), 200);
    gateway_files(&gateway.bytes().unwrap())
        .into_iter()
        .filter(|(kind, _, _)| kind == "change")
        .map(|(_, url, md5)| (url, md5.unwrap_or_default()))
        .collect()
}

/// The change files a node's gateway lists: name and MD5, newest first.
fn changes_listed(server: &Server) -> Vec<(String, String)> {
    change_links(server)
        .into_iter()
        .map(|(url, md5)| {
            let path = url.split('?').next().unwrap_or_default();
            (path.rsplit('/').next().unwrap_or_default().to_string(), md5)
        })
        .collect()
}

/// A response's bytes and validators.
fn fetch(server: &Server, path: &str) -> (Vec<u8>, String, String) {
    let r = server.get(path);
    assert_eq!(r.status(), 200, "{path}");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    (r.bytes().unwrap().to_vec(), etag, modified)
}

#[test]
fn a_writer_and_two_replicas_over_s3() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let moto = Moto::start();
    let dirs: Vec<_> = (0..4).map(|_| tempdir()).collect();

    // The writer's change windows are cut by moving its clock.
    let mut config = node(&data_path(&dirs[0]), &moto.url, Role::Writer);
    config.clock = iofd::clock::Clock::manual(jiff::Timestamp::now());
    let writer = Server::start(config);
    let durable = writer
        .server
        .durable()
        .expect("a writer with a store")
        .clone();
    let started = Instant::now();
    let (status, body) = stock(&writer, 77);
    let ack = started.elapsed();
    assert_eq!(status, 200, "{body}");
    eprintln!("ack with the object store: {ack:?}");
    let generation = writer.app.store.snapshot().generation();
    assert!(
        durable.state().generation >= generation,
        "acknowledged before durable"
    );
    wait_until(
        "the writer's light.xml shows the update",
        Duration::from_secs(1),
        || shows(&writer, 77),
    );
    // Two whole scans after light.xml changed: its bytes are in a manifest.
    let scans = durable.state().scans;
    wait_until("two more uploads", Duration::from_secs(5), || {
        durable.state().scans >= scans + 2
    });

    let replicas: Vec<Server> = [&dirs[1], &dirs[2]]
        .iter()
        .map(|d| Server::start(node(&data_path(d), &moto.url, Role::Replica)))
        .collect();
    for path in [LIGHT, FULL] {
        let expected = fetch(&writer, path);
        for replica in &replicas {
            assert_eq!(
                fetch(replica, path),
                expected,
                "{path}: same bytes and validators"
            );
        }
    }
    for replica in &replicas {
        assert!(shows(replica, 77));
        let (status, body) = stock(replica, 1);
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("read replica"), "{body}");
    }

    // A stock update acknowledged by the writer is in both replicas' light.xml within 1 s,
    // with the writer's bytes and validators.
    let started = Instant::now();
    let (status, body) = stock(&writer, 91);
    assert_eq!(status, 200, "{body}");
    for replica in &replicas {
        wait_until(
            "a replica's light.xml shows the update",
            Duration::from_secs(1),
            || shows(replica, 91),
        );
    }
    eprintln!("ack to visible on both replicas: {:?}", started.elapsed());
    wait_until("the writer's light.xml", Duration::from_secs(1), || {
        shows(&writer, 91)
    });
    let expected = fetch(&writer, LIGHT);
    for replica in &replicas {
        assert_eq!(
            fetch(replica, LIGHT),
            expected,
            "same light.xml after the swap"
        );
        assert_eq!(replica.server.following().unwrap().unreachable, None);
    }

    // The writer cuts a change window: both replicas list the same change files as the
    // writer, under the same names, with the writer's bytes and validators (a replica cuts
    // no window of its own).
    writer.pass(Duration::from_secs(31 * 60));
    // `pass` returns once the cut is committed; the republish that lists it follows.
    wait_until(
        "the writer's gateway lists the change file it cut",
        Duration::from_secs(5),
        || !changes_listed(&writer).is_empty(),
    );
    let cut = changes_listed(&writer);
    assert_eq!(cut.len(), 1, "the writer cut one change file: {cut:?}");
    // The writer's signed link at once, before a replica has the cut: the cut made no new
    // generation, so the replica waits for its follower rather than answering 404.
    let link = change_links(&writer).remove(0);
    let path = link.0.trim_start_matches("http://cdn.example.test");
    assert!(path.starts_with("/p/") && path.contains("&g="), "{path}");
    for replica in &replicas {
        let r = replica.get(path);
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(md5_hex(&r.bytes().unwrap()), link.1);
    }
    for replica in &replicas {
        wait_until(
            "a replica lists the writer's change files",
            Duration::from_secs(5),
            || changes_listed(replica) == cut,
        );
        for (name, md5) in &cut {
            let path = format!("{FEED}/{name}");
            let got = fetch(replica, &path);
            assert_eq!(
                got,
                fetch(&writer, &path),
                "{name}: same bytes and validators"
            );
            assert_eq!(&md5_hex(&got.0), md5, "{name}: the gateway's MD5");
        }
        assert_eq!(fetch(replica, FULL), fetch(&writer, FULL), "the same base");
    }

    // Takeover: a second writer continues from the bucket; the first is fenced at its next
    // publication and acknowledges nothing more.
    let second = Server::start(node(&data_path(&dirs[3]), &moto.url, Role::Writer));
    // The acknowledged update survives the takeover.
    wait_until(
        "the new writer's light.xml shows the acknowledged update",
        Duration::from_secs(1),
        || shows(&second, 91),
    );
    let (status, body) = stock(&writer, 78);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("fenced"), "{body}");
    let (status, body) = stock(&writer, 79);
    assert_eq!(status, 503, "a fenced writer stays fenced: {body}");
    let (status, body) = stock(&second, 80);
    assert_eq!(status, 200, "{body}");
    wait_until("the new writer's light.xml", Duration::from_secs(1), || {
        shows(&second, 80)
    });

    // The object store goes away: replicas keep serving their generation and say so in
    // /readyz and metrics; the writer answers ingest with 503, never a false ack.
    wait_until("the replicas follow", Duration::from_secs(2), || {
        replicas.iter().all(|r| shows(r, 80))
    });
    let served = fetch(&replicas[0], LIGHT);
    drop(moto);
    let (status, body) = stock(&second, 81);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not durable in the object store"), "{body}");
    for replica in &replicas {
        let readyz = || {
            client()
                .get(format!("{}/readyz", replica.admin))
                .send()
                .unwrap()
        };
        wait_until(
            "/readyz says the store is unreachable",
            Duration::from_secs(15),
            || {
                readyz()
                    .text()
                    .unwrap()
                    .contains("object store: unreachable")
            },
        );
        assert_eq!(readyz().status(), 200, "still serving");
        let metrics = client()
            .get(format!("{}/metrics", replica.admin))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains("iofd_object_store_reachable 0"),
            "{metrics}"
        );
        assert_eq!(
            fetch(replica, LIGHT),
            served,
            "the current generation keeps serving"
        );
    }
}

fn aws_env() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
}

fn readyz(server: &Server) -> (u16, String) {
    let r = client()
        .get(format!("{}/readyz", server.admin))
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn metrics(server: &Server) -> String {
    client()
        .get(format!("{}/metrics", server.admin))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

const DROPPED: &str = r#"{"kind":"product","id":990001,"vat":23,"description":{"name":{"pol":"Z"}}}
"#;

/// The object store goes away behind a proxy (moto keeps its bucket) and comes back: the
/// writer answers ingest with 503, never a false ack, and uploads what it applied meanwhile
/// by itself once the store answers; the update re-sent is acknowledged and reaches the
/// replica, which served its generation throughout and said so in `/readyz` and metrics. A
/// drop-folder file applied during the outage stays claimed, and moves to `done/` only once
/// durable.
#[test]
fn the_object_store_unreachable_and_back() {
    aws_env();
    let moto = Moto::start();
    let proxy = proxy::Proxy::start(vec![moto.addr]);
    let dirs: Vec<_> = (0..2).map(|_| tempdir()).collect();
    let writer = Server::start(node(&data_path(&dirs[0]), &proxy.url, Role::Writer));
    let durable = writer.server.durable().expect("a writer").clone();
    let (status, body) = stock(&writer, 50);
    assert_eq!(status, 200, "{body}");
    let replica = Server::start(node(&data_path(&dirs[1]), &proxy.url, Role::Replica));
    wait_until(
        "the replica shows the update",
        Duration::from_secs(5),
        || shows(&replica, 50),
    );
    let served = fetch(&replica, LIGHT);

    proxy.set_up(false);
    let (status, body) = stock(&writer, 51);
    assert_eq!(status, 503, "no acknowledgement without the store: {body}");
    assert!(body.contains("not durable in the object store"), "{body}");
    assert!(durable.state().unreachable.is_some());
    // A drop-folder file is applied on the writer but not marked done while not durable.
    let inbox = writer.app.config.inbox_dir.clone();
    let failures = durable.state().failures;
    let tmp = inbox.join(".new.jsonl.tmp");
    std::fs::write(&tmp, DROPPED).unwrap();
    std::fs::rename(&tmp, inbox.join("new.jsonl")).unwrap();
    wait_until(
        "the writer applies the file",
        Duration::from_secs(10),
        || writer.app.store.snapshot().product(990001).is_some(),
    );
    wait_until("another failed upload", Duration::from_secs(15), || {
        durable.state().failures > failures
    });
    assert!(
        !inbox.join("done/new.jsonl").exists(),
        "done before it is durable"
    );
    assert!(!inbox.join("new.jsonl").exists(), "claimed");
    wait_until(
        "the replica's /readyz says the store is unreachable",
        Duration::from_secs(15),
        || readyz(&replica).1.contains("object store: unreachable"),
    );
    assert_eq!(readyz(&replica).0, 200, "still serving");
    let m = metrics(&replica);
    assert!(m.contains("iofd_object_store_reachable 0"), "{m}");
    assert_eq!(
        fetch(&replica, LIGHT),
        served,
        "its generation keeps serving"
    );

    // Back: the writer publishes what it applied during the outage without being asked.
    proxy.set_up(true);
    let applied = writer.app.store.snapshot().generation();
    wait_until(
        "the writer uploads by itself",
        Duration::from_secs(15),
        || {
            let s = durable.state();
            s.generation >= applied && s.unreachable.is_none()
        },
    );
    let (status, body) = stock(&writer, 51);
    assert_eq!(status, 200, "the update sent again is acknowledged: {body}");
    wait_until("the dropped file is done", Duration::from_secs(15), || {
        inbox.join("done/new.jsonl").exists()
    });
    wait_until(
        "the replica has its product",
        Duration::from_secs(15),
        || replica.app.store.snapshot().product(990001).is_some(),
    );
    wait_until("the replica shows it", Duration::from_secs(15), || {
        shows(&replica, 51)
    });
    wait_until(
        "the replica says it follows",
        Duration::from_secs(5),
        || !readyz(&replica).1.contains("unreachable"),
    );
    let m = metrics(&replica);
    assert!(m.contains("iofd_object_store_reachable 1"), "{m}");
    wait_until("the writer's light.xml", Duration::from_secs(2), || {
        shows(&writer, 51)
    });
    wait_until(
        "the replica's light.xml, same bytes",
        Duration::from_secs(5),
        || fetch(&replica, LIGHT) == fetch(&writer, LIGHT),
    );
}

/// `iofd serve --role replica` as its own process, so it can be killed (SIGKILL) mid-body.
struct ReplicaProcess {
    child: Child,
    base: String,
    admin: String,
}

impl ReplicaProcess {
    fn start(data: &std::path::Path, endpoint: &str) -> ReplicaProcess {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
        };
        let (public, admin) = (free(), free());
        let child = Command::new(env!("CARGO_BIN_EXE_iofd"))
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(["--role", "replica", "--store"])
            .arg(format!("s3://{BUCKET}/eu/feeds"))
            .args(["--s3-endpoint", endpoint, "--s3-region", "us-east-1"])
            .args(["--public-url", "http://cdn.example.test"])
            .args(["--listen", &public.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .env("IOFD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn iofd");
        let replica = ReplicaProcess {
            child,
            base: format!("http://{public}"),
            admin: format!("http://{admin}"),
        };
        wait_until(
            "the replica process is ready",
            Duration::from_secs(30),
            || {
                client()
                    .get(format!("{}/readyz", replica.admin))
                    .send()
                    .is_ok_and(|r| r.status() == 200)
            },
        );
        replica
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client reads part of full.xml from one replica, that replica is killed mid-body, and
/// the client resumes on another replica with `Range` + `If-Range`: the joined bytes are the
/// file the gateway's MD5 names. An `If-Range` with a stale ETag gets the whole file.
#[test]
fn a_replica_killed_mid_download_the_client_resumes_on_another() {
    use std::io::Read;
    aws_env();
    let moto = Moto::start();
    let dirs: Vec<_> = (0..3).map(|_| tempdir()).collect();
    // Thousands of products (imported before the start, so they are in full.xml): the body
    // outgrows what the sockets between hold.
    let catalog = dirs[0].path().join("catalog.jsonl");
    iofd::generate::generate_to(
        &mut std::fs::File::create(&catalog).unwrap(),
        &iofd::generate::GenerateOptions {
            products: 3000,
            seed: 18,
        },
    )
    .unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_iofd"))
        .arg("import")
        .arg("--data")
        .arg(data_path(&dirs[0]))
        .arg(&catalog)
        .env("IOFD_LOG", "warn")
        .output()
        .expect("iofd import");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    // The writer's change windows are cut by moving its clock.
    let mut config = node(&data_path(&dirs[0]), &moto.url, Role::Writer);
    config.clock = iofd::clock::Clock::manual(jiff::Timestamp::now());
    let writer = Server::start(config);
    let durable = writer.server.durable().expect("a writer").clone();
    let scans = durable.state().scans;
    wait_until("two more uploads", Duration::from_secs(30), || {
        durable.state().scans >= scans + 2
    });
    let (whole, etag, _) = fetch(&writer, FULL);
    eprintln!("full.xml: {} bytes", whole.len());

    let first = ReplicaProcess::start(&data_path(&dirs[1]), &moto.url);
    let second = Server::start(node(&data_path(&dirs[2]), &moto.url, Role::Replica));
    let gateway = second
        .get("/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/gateway.xml")
        .bytes()
        .unwrap();
    let (_, _, md5) = common::gateway_files(&gateway)
        .into_iter()
        .find(|(kind, _, _)| kind == "full")
        .expect("the gateway lists full.xml");
    let md5 = md5.expect("with its hash");
    assert_eq!(md5, md5_hex(&whole));

    let mut r = client()
        .get(format!("{}{FULL}", first.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let mut part = vec![0u8; 256 << 10];
    r.read_exact(&mut part).expect("the first part of the body");
    drop(first);
    // What the sockets held when it died, then the cut.
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => part.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        part.len() < whole.len(),
        "the download was cut ({} of {} bytes)",
        part.len(),
        whole.len()
    );
    eprintln!("cut after {} of {} bytes", part.len(), whole.len());
    let range = format!("bytes={}-", part.len());
    let r = second.request(
        reqwest::Method::GET,
        FULL,
        &[("Range", &range), ("If-Range", &etag)],
    );
    assert_eq!(r.status(), 206, "resumed on the other replica");
    let rest = r.bytes().unwrap();
    part.extend_from_slice(&rest);
    assert_eq!(
        md5_hex(&part),
        md5,
        "the joined bytes are what the gateway names"
    );

    let r = second.request(
        reqwest::Method::GET,
        FULL,
        &[("Range", &range), ("If-Range", "\"stale\"")],
    );
    assert_eq!(r.status(), 200, "a stale If-Range gets the whole file");
    assert_eq!(md5_hex(&r.bytes().unwrap()), md5);
}

/// The load harness plays partners against two replicas while its mutator posts stock and
/// price updates to the writer: every body matches its gateway's MD5 and updates reach the
/// partners. Partners reach the replicas through a proxy in front of both (the public URL)
/// that sends each request to one of them in turn, without affinity: a gateway from the
/// replica ahead and its file from the one behind meet, and the links' generation makes the
/// one behind wait (without the wait, about one run in three found a mismatch).
#[test]
fn the_load_harness_on_two_replicas_while_the_writer_publishes() {
    aws_env();
    let moto = Moto::start();
    let balancer = proxy::Proxy::per_request(Vec::new());
    let dirs: Vec<_> = (0..3).map(|_| tempdir()).collect();
    let config = |dir: &tempfile::TempDir, role| {
        let mut c = node(&data_path(dir), &moto.url, role);
        c.public_url = balancer.url.clone();
        // A 1-second window: the writer cuts several within the run. Replicas list its
        // change files (they cut none of their own), and a link to a cut the replica behind
        // lacks yet makes it wait, as for a generation.
        c.change_window = Duration::from_secs(1);
        // Each acknowledgement waits for its upload (seconds on a loaded machine): room for
        // the mutator's requests in flight, which the default of 4 would answer with 503.
        c.ingest_max_concurrent = 16;
        c
    };
    let writer = Server::start(config(&dirs[0], Role::Writer));
    let durable = writer.server.durable().expect("a writer").clone();
    wait_until("the first manifest", Duration::from_secs(10), || {
        durable.state().sequence > 0
    });
    let replicas: Vec<Server> = dirs[1..]
        .iter()
        .map(|d| Server::start(config(d, Role::Replica)))
        .collect();
    let addr = |s: &Server| -> SocketAddr { s.base.trim_start_matches("http://").parse().unwrap() };
    balancer.set_targets(replicas.iter().map(addr).collect());
    // Gateways and files both through the balancer, each request to either replica.
    let gateways = common::demo_partners()
        .into_iter()
        .map(|(id, token, shop)| format!("{}/feeds/{id}/{token}/{shop}/gateway.xml", balancer.url))
        .collect();
    let mut opts = iofd::load::LoadOptions::new(gateways);
    opts.partners = 8;
    opts.duration = Duration::from_secs(4);
    opts.poll_interval = Duration::from_millis(300);
    opts.range_share = 0.3;
    opts.mutator = Some(iofd::load::MutatorOptions {
        admin_url: writer.admin.clone(),
        token: TOKEN.into(),
        rate: 2.0,
        products: 5,
        price_share: 0.5,
    });
    let report = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(iofd::load::run(opts))
        .expect("runs");
    eprintln!("{}", report.summary());
    assert_eq!(report.hash_mismatches, 0, "{}", report.summary());
    assert!(report.passed(), "{}", report.summary());
    let m = report.mutator.as_ref().expect("mutator figures");
    assert!(m.sent >= 2 && m.acked == m.sent, "{}", report.summary());
    assert!(m.seen > 0, "updates reach partners: {}", report.summary());
}

/// A file of several parts (S3 refuses parts under 5 MiB but the last) goes up as a real
/// multipart upload and a replica streams it down to the same bytes; the bucket holds the
/// object under its blake3 with its exact size.
#[test]
fn a_file_of_several_parts_over_s3() {
    use iofd::scaleout::{scan, FollowOutcome, Follower, HashCache, Writer};
    aws_env();
    let moto = Moto::start();
    let (src, dst) = (tempdir(), tempdir());
    let big: Vec<u8> = (0..(21u32 << 20) / 4 + 7)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    std::fs::create_dir_all(src.path().join("artifacts/k")).unwrap();
    std::fs::write(src.path().join("artifacts/k/full.xml"), &big).unwrap();
    let target = node(&data_path(&src), &moto.url, Role::Writer)
        .object_store
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (store, prefix) = iofd::scaleout::open(&target).unwrap();
        let mut writer = Writer::claim(store.clone(), prefix.clone(), "w".into())
            .await
            .unwrap();
        let files = scan(src.path(), &mut HashCache::default()).unwrap();
        let p = writer.publish(1, files).await.unwrap().unwrap();
        assert_eq!((p.objects, p.bytes), (1, big.len() as u64));
        let mut follower = Follower::new(store, prefix, dst.path().into());
        let FollowOutcome::Applied { objects, bytes, .. } = follower.step().await.unwrap() else {
            panic!("no manifest applied");
        };
        assert_eq!((objects, bytes), (1, big.len() as u64));
    });
    let hash = blake3::hash(&big).to_hex().to_string();
    let head = client()
        .head(format!("{}/{BUCKET}/eu/feeds/objects/{hash}", moto.url))
        .send()
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let length = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(length, big.len().to_string());
    let etag = head.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.ends_with("-3\""), "a three-part upload: {etag}");
    assert!(std::fs::read(dst.path().join("artifacts/k/full.xml")).unwrap() == big);
}
