//! Request handling. The feed handler takes hyper's `Request<Incoming>`, which only a
//! connection can produce, so whole requests are measured through a loopback socket: one
//! keep-alive HTTP/1.1 connection to a server on 127.0.0.1 serving the demo catalog (this
//! includes the kernel's loopback path, about 10-20 µs a round trip). The pure HTTP rules
//! (conditional requests, ranges) are measured without sockets. The load harness's own hot
//! path, reducing a full.xml to per-node hashes, is measured too, since it bounds how fast one
//! machine can check an origin.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use iofd::config::Config;
use iofd::http::rules::{self, Conditions, Validators};
use iofd::server::{Listeners, Server};

const GATEWAY: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/gateway.xml";
const FULL: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/full.xml";
const LIGHT: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/light.xml";

struct Origin {
    addr: std::net::SocketAddr,
    // Dropped in this order: the server signals its tasks, the runtime waits for them, then
    // the data directory goes.
    _server: Server,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// The demo server on its own runtime (one worker, so client and server share the machine
/// the way they do in production: the client's core is not the server's).
fn origin() -> Origin {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::for_data_dir(&dir.path().join("data"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(async move {
        let bind = || async {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind")
        };
        let listeners = Listeners {
            public: bind().await,
            admin: bind().await,
        };
        Server::start(config, listeners).await.expect("server")
    });
    Origin {
        addr: server.public_addr(),
        _server: server,
        _dir: dir,
        _runtime: runtime,
    }
}

async fn connect(addr: std::net::SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, usize, Option<String>) {
    let mut req = hyper::Request::get(path).header("host", "127.0.0.1");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    sender.ready().await.expect("ready");
    let resp = sender
        .send_request(req.body(Empty::new()).expect("request"))
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body.len(), etag)
}

fn loopback(c: &mut Criterion) {
    let origin = origin();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut sender = rt.block_on(connect(origin.addr));
    let (_, gateway_len, gateway_etag) = rt.block_on(get(&mut sender, GATEWAY, &[]));
    let (_, light_len, _) = rt.block_on(get(&mut sender, LIGHT, &[]));
    let gateway_etag = gateway_etag.expect("gateway etag");
    let mut g = c.benchmark_group("loopback");
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Bytes(gateway_len as u64));
    g.bench_function("gateway_200", |b| {
        b.iter(|| black_box(rt.block_on(get(&mut sender, GATEWAY, &[]))))
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("gateway_304", |b| {
        b.iter(|| {
            let r = rt.block_on(get(
                &mut sender,
                GATEWAY,
                &[("if-none-match", gateway_etag.as_str())],
            ));
            assert_eq!(r.0, 304);
            black_box(r)
        })
    });
    g.throughput(Throughput::Bytes(light_len as u64));
    g.bench_function("light_200", |b| {
        b.iter(|| black_box(rt.block_on(get(&mut sender, LIGHT, &[]))))
    });
    g.throughput(Throughput::Bytes(64 * 1024));
    g.bench_function("full_range_64k", |b| {
        b.iter(|| {
            let r = rt.block_on(get(&mut sender, FULL, &[("range", "bytes=65536-131071")]));
            assert_eq!(r.0, 206);
            black_box(r)
        })
    });
    g.finish();
}

fn pure_rules(c: &mut Criterion) {
    let v = Validators {
        etag: "\"0123456789abcdef0123456789abcdef\"",
        last_modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    };
    let conditions = Conditions {
        if_match: None,
        if_none_match: Some("\"ffff\", \"0123456789abcdef0123456789abcdef\""),
        if_modified_since: Some("Sun, 15 Jan 2027 08:00:00 GMT"),
        if_unmodified_since: None,
    };
    let mut g = c.benchmark_group("rules");
    g.bench_function("conditional_304", |b| {
        b.iter(|| black_box(rules::evaluate(black_box(&conditions), &v)))
    });
    g.bench_function("range_if_range", |b| {
        b.iter(|| {
            black_box(rules::decide_range(
                black_box(Some("bytes=65536-131071")),
                Some(v.etag),
                400_000_000,
                &v,
            ))
        })
    });
    g.finish();
}

fn harness_parse(c: &mut Criterion) {
    let origin = origin();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let full = rt.block_on(async {
        let mut sender = connect(origin.addr).await;
        let req = hyper::Request::get(FULL)
            .header("host", "127.0.0.1")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        resp.into_body().collect().await.expect("body").to_bytes()
    });
    let mut g = c.benchmark_group("harness");
    g.throughput(Throughput::Bytes(full.len() as u64));
    g.bench_function("full_xml_to_node_hashes", |b| {
        b.iter(|| black_box(iofd::load::OfferDigest::parse_full(&full).expect("parses")))
    });
    g.finish();
}

criterion_group!(benches, loopback, pure_rules, harness_parse);
criterion_main!(benches);
