//! `iofd load` against a real server: the demo catalog served by iofd, updates pushed through
//! its admin API by the mutator, and a broken origin the harness must catch.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use iofd::load::{self, LoadOptions};

fn gateways(server: &common::Server) -> Vec<String> {
    common::demo_partners()
        .into_iter()
        .map(|(id, token, shop)| format!("{}/feeds/{id}/{token}/{shop}/gateway.xml", server.base))
        .chain(std::iter::once(format!(
            "{}/feeds/eu-reseller/demo-eureseller-8d31b6c05a/2/gateway.xml",
            server.base
        )))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn demo_catalog_twenty_partners_no_errors_no_mismatches() {
    let dir = common::tempdir();
    let server = load_server(&dir);
    let mut opts = LoadOptions::new(gateways(&server));
    opts.partners = 20;
    opts.duration = Duration::from_secs(2);
    opts.poll_interval = Duration::from_millis(500);
    opts.range_share = 0.3;
    opts.gzip_share = 0.5;
    let report = runtime().block_on(load::run(opts)).expect("runs");
    assert!(report.passed(), "{}", report.summary());
    assert_eq!(report.hash_mismatches, 0);
    for kind in ["gateway", "full", "light", "reference"] {
        assert!(
            report.kinds.contains_key(kind),
            "{kind}: {}",
            report.summary()
        );
    }
    // Every partner polls more than once (how often depends on the machine's load); after the
    // first poll the gateway answers 304.
    let gw = &report.kinds["gateway"];
    assert!(gw.requests > 20, "{}", report.summary());
    assert!(gw.status.get("304").copied().unwrap_or(0) > 0);
    assert!(report.range_downloads > 0, "{}", report.summary());
    assert!(report.kinds["full"].latency_ms.p50 > 0.0);
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["hash_mismatches"], 0);
}

/// Run the demo server (1-second change windows, a base rebuild due `rebuild_in` after
/// start-up) and the harness with the mutator on, writing through the real admin API.
fn with_mutator(
    partners: usize,
    duration: Duration,
    poll: Duration,
    rate: f64,
    products: usize,
    rebuild_in: Duration,
) -> load::Report {
    let dir = common::tempdir();
    let mut config = load_config(&dir);
    config.admin_token = Some(ADMIN_TOKEN.into());
    config.change_window = Duration::from_secs(1);
    let rebuild_at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(rebuild_in).expect("duration"))
        .expect("time")
        .to_zoned(config.timezone.clone())
        .time();
    config.base_rebuild = rebuild_at;
    let server = common::Server::start(config);
    let rt = runtime();
    let mut opts = LoadOptions::new(gateways(&server));
    opts.partners = partners;
    opts.duration = duration;
    opts.poll_interval = poll;
    opts.mutator = Some(load::MutatorOptions {
        admin_url: server.admin.clone(),
        token: ADMIN_TOKEN.into(),
        rate,
        products,
        price_share: 0.5,
    });
    let report = rt.block_on(load::run(opts)).expect("runs");
    eprintln!("{}", report.summary());
    report
}

/// The acceptance run (200 partners, 30 s, mutator on); run it with
/// `cargo test --release --test load -- --ignored --nocapture`.
#[test]
#[ignore = "30 s; an acceptance run, not a unit of the suite"]
fn acceptance_200_partners_30_s_with_the_mutator() {
    let report = with_mutator(
        200,
        Duration::from_secs(30),
        Duration::from_secs(1),
        5.0,
        20,
        Duration::from_secs(15),
    );
    let json = serde_json::to_string_pretty(&report).expect("json");
    eprintln!("{json}");
    assert!(report.passed(), "{}", report.summary());
    assert_eq!(report.hash_mismatches, 0);
    let m = report.mutator.as_ref().expect("mutator figures");
    assert!(m.seen > 0);
}

#[test]
fn mutator_updates_reach_light_and_change_files_and_the_rebuilt_base_agrees() {
    let report = with_mutator(
        20,
        Duration::from_secs(6),
        Duration::from_millis(300),
        4.0,
        5,
        Duration::from_secs(4),
    );
    assert!(report.passed(), "{}", report.summary());
    let m = report.mutator.as_ref().expect("mutator figures");
    // How many updates fit in the run depends on the machine; that every one sent is
    // acknowledged and some are seen by partners does not.
    assert!(m.sent >= 2 && m.acked == m.sent, "{}", report.summary());
    assert!(m.seen > 0, "{}", report.summary());
    assert!(m.freshness_ms.p50 > 0.0, "{}", report.summary());
    // Windows of one second cut change files, which partners apply to their copy of the
    // base; when the base is rebuilt, they compare their copy with it, and every difference
    // is a product the mutator updated after the last window closed.
    assert!(report.changes_applied > 0, "{}", report.summary());
    assert!(report.base.checks > 0, "{}", report.summary());
    assert_eq!(report.base.drift_unexplained, 0, "{}", report.summary());
}

/// An origin on loopback whose gateway is `gateway(n, addr)` at its `n`th request (from 0),
/// serving `full` as full.xml and `light` as light.xml (any query).
async fn scripted_origin(
    gateway: fn(usize, SocketAddr) -> String,
    full: &'static str,
    light: &'static str,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let asked = asked.clone();
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let body = match req.uri().path() {
                    "/gateway.xml" => gateway(asked.fetch_add(1, Ordering::SeqCst), addr),
                    "/full.xml" => full.to_string(),
                    _ => light.to_string(),
                };
                async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

const ONE: &str = "<offer><products><product id=\"1\"/></products></offer>";
const NONE: &str = "<offer><products/></offer>";

/// A gateway listing full.xml and light.xml (at `/light.xml{query}`) with those MD5s.
fn gateway_xml(addr: SocketAddr, full_md5: &str, light_query: &str, light_md5: &str) -> String {
    format!(
        "<provider_description><full url=\"http://{addr}/full.xml\" hash=\"{full_md5}\"/>\
         <light url=\"http://{addr}/light.xml{light_query}\" hash=\"{light_md5}\"/></provider_description>"
    )
}

/// An origin whose light.xml never has the MD5 its gateway lists.
async fn broken_origin() -> SocketAddr {
    fn gateway(_: usize, addr: SocketAddr) -> String {
        let md5 = common::md5_hex(ONE.as_bytes());
        gateway_xml(addr, &md5, "", &md5)
    }
    scripted_origin(gateway, ONE, NONE).await
}

#[test]
fn a_body_that_does_not_match_its_hash_fails_the_run() {
    let rt = runtime();
    let addr = rt.block_on(broken_origin());
    let mut opts = LoadOptions::new(vec![format!("http://{addr}/gateway.xml")]);
    opts.partners = 2;
    opts.duration = Duration::from_millis(600);
    opts.poll_interval = Duration::from_millis(200);
    opts.range_share = 0.0;
    let report = rt.block_on(load::run(opts)).expect("runs");
    assert!(report.hash_mismatches > 0, "{}", report.summary());
    assert!(!report.passed());
    // full.xml matched: only light is wrong.
    assert!(report.kinds["full"].requests >= 2);
}

/// A gateway from a node behind the one that served light.xml: the first two gateway answers
/// list light.xml's old MD5 at generation 1, the next ones its new MD5 at generation 2, and
/// light.xml is always the new bytes. The harness asks the gateway again rather than count a
/// mismatch, and counts the body superseded; a gateway that keeps listing the old MD5 at the
/// same generation is a mismatch (the broken origin with `g=` links).
#[test]
fn a_gateway_behind_is_asked_again_before_a_mismatch_counts() {
    fn lagging(n: usize, addr: SocketAddr) -> String {
        let (full, new) = (
            common::md5_hex(ONE.as_bytes()),
            common::md5_hex(NONE.as_bytes()),
        );
        match n {
            0 | 1 => gateway_xml(addr, &full, "?g=1", &full),
            _ => gateway_xml(addr, &full, "?g=2", &new),
        }
    }
    fn stuck(_: usize, addr: SocketAddr) -> String {
        let md5 = common::md5_hex(ONE.as_bytes());
        gateway_xml(addr, &md5, "?g=1", &md5)
    }
    let rt = runtime();
    let run = |gateway: fn(usize, SocketAddr) -> String| {
        let addr = rt.block_on(scripted_origin(gateway, ONE, NONE));
        let mut opts = LoadOptions::new(vec![format!("http://{addr}/gateway.xml")]);
        opts.partners = 1;
        opts.duration = Duration::from_millis(600);
        opts.poll_interval = Duration::from_millis(100);
        opts.range_share = 0.0;
        rt.block_on(load::run(opts)).expect("runs")
    };
    let report = run(lagging);
    assert_eq!(report.hash_mismatches, 0, "{}", report.summary());
    assert!(report.gateway_rechecks >= 1, "{}", report.summary());
    assert!(report.superseded_bodies >= 1, "{}", report.summary());
    let report = run(stuck);
    assert!(report.hash_mismatches > 0, "{}", report.summary());
    assert!(report.gateway_rechecks >= 1, "{}", report.summary());
}

const ADMIN_TOKEN: &str = "load-test-admin-token";

/// The demo origin with the per-partner rate limit off: the harness plays many simulated
/// partners on the three demo accounts, which the limit would (rightly) throttle.
fn load_config(dir: &tempfile::TempDir) -> iofd::config::Config {
    let mut config = iofd::config::Config::for_data_dir(&common::data_path(dir));
    config.limits.rate_limit = 0.0;
    config
}

fn load_server(dir: &tempfile::TempDir) -> common::Server {
    common::Server::start(load_config(dir))
}
