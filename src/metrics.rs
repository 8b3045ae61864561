//! Prometheus metrics, served on the admin listener at `/metrics`.
//!
//! One [`Metrics`] is shared by the running server's parts; each records through the small
//! methods below, so metric names and labels are defined in this one file.
//! Label values are bounded: routes come from a fixed list, statuses are numbers, and a
//! partner label is only ever set for a partner iofd authenticated (never for an id taken
//! from an unauthenticated URL, which would let anyone grow the series without bound).

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of the exposition format [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
    encoding: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerStatusLabels {
    partner: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerLabels {
    partner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngestLabels {
    source: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s: time to the response head of a file served from disk or memory.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Why a connection was closed by a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The request head did not arrive within the header timeout.
    HeaderTimeout,
    /// The keep-alive connection stayed idle past the idle timeout.
    IdleTimeout,
    /// The client took a download slower than the minimum send rate.
    SlowClient,
}

impl ConnectionEnd {
    fn label(self) -> &'static str {
        match self {
            ConnectionEnd::HeaderTimeout => "header_timeout",
            ConnectionEnd::IdleTimeout => "idle_timeout",
            ConnectionEnd::SlowClient => "slow_client",
        }
    }
}

/// How a purge request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgeResult {
    /// The cache accepted it (2xx).
    Ok,
    /// Failed, will be retried.
    Retry,
    /// Failed for good (attempts exhausted or refused with a 4xx).
    Failed,
    /// Not sent: the queue was full.
    Dropped,
}

/// What a scrape reads from the running origin (sampled at scrape time).
#[derive(Clone, Copy, Debug)]
pub struct StateSample {
    pub snapshot_generation: u64,
    /// When the snapshot being served was published.
    pub snapshot_published: SystemTime,
    pub artifacts_generation: u64,
    pub artifact_files: u64,
}

/// The request counter and head-latency histogram of one (route, status, encoding), and the
/// route's body-bytes counter: handles into their families, shared with them.
#[derive(Clone)]
struct RouteCounters {
    requests: Counter,
    latency: Histogram,
    body: Counter,
}

/// Route labels are `&'static str` from fixed lists: their addresses (with the status) find
/// their counters without hashing the strings. One label at two addresses gets two entries
/// holding the same handles, which is harmless.
type RouteKey = (usize, u16, usize);

/// One partner's counters in [`Metrics`]' partner families.
struct PartnerCounters {
    body: Counter,
    /// By status: a partner sees a handful.
    by_status: Vec<(u16, Counter)>,
}

/// Every metric iofd exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    partner_requests: Family<PartnerStatusLabels, Counter>,
    body_bytes: Family<RouteLabels, Counter>,
    partner_body_bytes: Family<PartnerLabels, Counter>,
    /// Each partner's counters of the two families above, found by `&str`: a lookup in a
    /// family needs its label set, and that would be a new `String` on every request.
    partner_counters: parking_lot::RwLock<std::collections::HashMap<String, PartnerCounters>>,
    latency: Family<RouteLabels, Histogram>,
    /// Handles into `requests`, `latency` and `body_bytes`: a family lookup hashes its whole
    /// label set, on every request.
    route_counters: parking_lot::RwLock<
        std::collections::HashMap<RouteKey, RouteCounters, rustc_hash::FxBuildHasher>,
    >,
    accepts_zstd: Counter,
    connections_open: Gauge,
    connections: Counter,
    connections_rejected: Counter,
    connections_closed: Family<ReasonLabels, Counter>,
    snapshot_generation: Gauge,
    snapshot_age: Gauge<f64, AtomicU64>,
    artifacts_generation: Gauge,
    artifact_files: Gauge,
    object_store_reachable: Gauge,
    object_store_manifest: Gauge,
    object_store_objects: Gauge,
    object_store_bytes: Gauge,
    object_store_collected: Counter,
    store_open_checked_bytes: Gauge,
    store_open_trusted_files: Gauge,
    scrub_bytes: Counter,
    scrub_damaged: Counter,
    publish_duration: Histogram,
    publish_failures: Counter,
    ingest_batches: Family<SourceLabels, Counter>,
    ingest_records: Family<IngestLabels, Counter>,
    change_files: Counter,
    purge_requests: Family<ResultLabels, Counter>,
    purge_keys: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered (at zero).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("iofd");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Feed requests answered, by route (file kind), status and content coding",
            requests.clone(),
        );
        let partner_requests = Family::<PartnerStatusLabels, Counter>::default();
        registry.register(
            "partner_requests",
            "Feed requests of authenticated partners, by partner and status",
            partner_requests.clone(),
        );
        let body_bytes = Family::<RouteLabels, Counter>::default();
        registry.register_with_unit(
            "http_response_body",
            "Body bytes handed to the network, by route",
            Unit::Bytes,
            body_bytes.clone(),
        );
        let partner_body_bytes = Family::<PartnerLabels, Counter>::default();
        registry.register_with_unit(
            "partner_response_body",
            "Body bytes handed to the network, by authenticated partner",
            Unit::Bytes,
            partner_body_bytes.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "http_response_head_duration",
            "Time from the request head to the response head, by route",
            Unit::Seconds,
            latency.clone(),
        );
        let accepts_zstd = Counter::default();
        registry.register(
            "http_requests_accepting_zstd",
            "Feed requests whose Accept-Encoding lists zstd (evidence for adding a zstd variant)",
            accepts_zstd.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Connections being served",
            connections_open.clone(),
        );
        let connections = Counter::default();
        registry.register("connections", "Connections accepted", connections.clone());
        let connections_rejected = Counter::default();
        registry.register(
            "connections_rejected",
            "Connections refused with 503 or closed at once because the connection limit was reached",
            connections_rejected.clone(),
        );
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_closed_by_limit",
            "Connections closed by a timeout or the minimum send rate",
            connections_closed.clone(),
        );
        let snapshot_generation = Gauge::default();
        registry.register(
            "snapshot_generation",
            "Generation of the catalog snapshot in force",
            snapshot_generation.clone(),
        );
        let snapshot_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "snapshot_age",
            "Time since the snapshot in force was published",
            Unit::Seconds,
            snapshot_age.clone(),
        );
        let artifacts_generation = Gauge::default();
        registry.register(
            "artifacts_generation",
            "Generation of the artifact set being served",
            artifacts_generation.clone(),
        );
        let artifact_files = Gauge::default();
        registry.register(
            "artifact_files",
            "Rendered files in the artifact set being served",
            artifact_files.clone(),
        );
        let object_store_reachable = Gauge::default();
        registry.register(
            "object_store_reachable",
            "1 while the last exchange with the object store succeeded, 0 after a failure (scale-out only)",
            object_store_reachable.clone(),
        );
        let object_store_manifest = Gauge::default();
        registry.register(
            "object_store_manifest",
            "Sequence number of the last manifest written (writer) or served (replica)",
            object_store_manifest.clone(),
        );
        let object_store_objects = Gauge::default();
        registry.register(
            "object_store_objects",
            "Objects in the bucket after the writer's last collection (writer only)",
            object_store_objects.clone(),
        );
        let object_store_bytes = Gauge::default();
        registry.register_with_unit(
            "object_store",
            "Bytes of the objects in the bucket after the writer's last collection (writer only)",
            Unit::Bytes,
            object_store_bytes.clone(),
        );
        let object_store_collected = Counter::default();
        registry.register(
            "object_store_collected_objects",
            "Objects and manifests the writer's collector removed from the bucket",
            object_store_collected.clone(),
        );
        let store_open_checked_bytes = Gauge::default();
        registry.register(
            "store_open_checked_bytes",
            "Snapshot payload bytes the store's open checked in full (0 when every file was in the verified record)",
            store_open_checked_bytes.clone(),
        );
        let store_open_trusted_files = Gauge::default();
        registry.register(
            "store_open_trusted_files",
            "Snapshot files the store's open mapped on the verified record's word, reading only their headers",
            store_open_trusted_files.clone(),
        );
        let scrub_bytes = Counter::default();
        registry.register(
            "store_scrub_bytes",
            "Snapshot payload bytes the background scrub re-hashed",
            scrub_bytes.clone(),
        );
        let scrub_damaged = Counter::default();
        registry.register(
            "store_scrub_damaged_files",
            "Snapshot files the scrub found no longer matching their checksum (any is an alarm)",
            scrub_damaged.clone(),
        );
        let publish_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register_with_unit(
            "artifact_publish_duration",
            "Time to render, compress and publish the artifact set of a generation",
            Unit::Seconds,
            publish_duration.clone(),
        );
        let publish_failures = Counter::default();
        registry.register(
            "artifact_publish_failures",
            "Artifact publications that failed (the previous set kept serving)",
            publish_failures.clone(),
        );
        let ingest_batches = Family::<SourceLabels, Counter>::default();
        registry.register(
            "ingest_batches",
            "Ingest batches applied, by source",
            ingest_batches.clone(),
        );
        let ingest_records = Family::<IngestLabels, Counter>::default();
        registry.register(
            "ingest_records",
            "Ingested records by source and outcome (applied, unchanged, removed, rejected)",
            ingest_records.clone(),
        );
        let change_files = Counter::default();
        registry.register(
            "change_files_published",
            "full_change files published",
            change_files.clone(),
        );
        let purge_requests = Family::<ResultLabels, Counter>::default();
        registry.register(
            "purge_requests",
            "Purge hook requests by result (ok, retry, failed, dropped)",
            purge_requests.clone(),
        );
        let purge_keys = Counter::default();
        registry.register(
            "purge_keys",
            "Surrogate keys purged successfully",
            purge_keys.clone(),
        );
        Metrics {
            registry,
            requests,
            partner_requests,
            body_bytes,
            partner_body_bytes,
            partner_counters: Default::default(),
            latency,
            route_counters: Default::default(),
            accepts_zstd,
            connections_open,
            connections,
            connections_rejected,
            connections_closed,
            snapshot_generation,
            snapshot_age,
            artifacts_generation,
            artifact_files,
            object_store_reachable,
            object_store_manifest,
            object_store_objects,
            object_store_bytes,
            object_store_collected,
            store_open_checked_bytes,
            store_open_trusted_files,
            scrub_bytes,
            scrub_damaged,
            publish_duration,
            publish_failures,
            ingest_batches,
            ingest_records,
            change_files,
            purge_requests,
            purge_keys,
        }
    }

    /// A feed request's response head was produced. `partner` only for authenticated
    /// partners; `encoding` is `gzip` or `identity`.
    pub fn request(
        &self,
        route: &'static str,
        status: u16,
        encoding: &'static str,
        partner: Option<&str>,
        head_latency: Duration,
    ) {
        self.with_route_counters(route, status, encoding, |c| {
            c.requests.inc();
            c.latency.observe(head_latency.as_secs_f64());
        });
        if let Some(partner) = partner {
            self.partner_request(partner, status);
        }
    }

    fn with_route_counters(
        &self,
        route: &'static str,
        status: u16,
        encoding: &'static str,
        f: impl FnOnce(&RouteCounters),
    ) {
        let key = (route.as_ptr() as usize, status, encoding.as_ptr() as usize);
        if let Some(found) = self.route_counters.read().get(&key) {
            return f(found);
        }
        let counters = RouteCounters {
            requests: self
                .requests
                .get_or_create(&RequestLabels {
                    route,
                    status,
                    encoding,
                })
                .clone(),
            latency: self.latency.get_or_create(&RouteLabels { route }).clone(),
            body: self
                .body_bytes
                .get_or_create(&RouteLabels { route })
                .clone(),
        };
        f(&counters);
        self.route_counters.write().insert(key, counters);
    }

    /// Body bytes of a feed response were handed to the network (its status and encoding
    /// as given to [`Metrics::request`]).
    pub fn body_sent(
        &self,
        route: &'static str,
        status: u16,
        encoding: &'static str,
        partner: Option<&str>,
        bytes: u64,
    ) {
        if bytes == 0 {
            return;
        }
        self.with_route_counters(route, status, encoding, |c| {
            c.body.inc_by(bytes);
        });
        if let Some(partner) = partner {
            if let Some(c) = self.partner_counters.read().get(partner) {
                c.body.inc_by(bytes);
                return;
            }
            self.partner_entry(&mut self.partner_counters.write(), partner)
                .body
                .inc_by(bytes);
        }
    }

    fn partner_request(&self, partner: &str, status: u16) {
        // Incremented where it is found: no handle is cloned on the way.
        let inc = |c: &PartnerCounters| {
            c.by_status
                .iter()
                .find(|(s, _)| *s == status)
                .map(|(_, c)| c.inc())
                .is_some()
        };
        if self.partner_counters.read().get(partner).is_some_and(inc) {
            return;
        }
        let mut map = self.partner_counters.write();
        let counters = self.partner_entry(&mut map, partner);
        if !inc(counters) {
            let counter = self
                .partner_requests
                .get_or_create(&PartnerStatusLabels {
                    partner: partner.to_string(),
                    status,
                })
                .clone();
            counter.inc();
            counters.by_status.push((status, counter));
        }
    }

    /// `partner`'s counters, created on its first request.
    fn partner_entry<'m>(
        &self,
        map: &'m mut std::collections::HashMap<String, PartnerCounters>,
        partner: &str,
    ) -> &'m mut PartnerCounters {
        map.entry(partner.to_string())
            .or_insert_with(|| PartnerCounters {
                body: self
                    .partner_body_bytes
                    .get_or_create(&PartnerLabels {
                        partner: partner.to_string(),
                    })
                    .clone(),
                by_status: Vec::new(),
            })
    }

    /// A request advertised `zstd` in `Accept-Encoding`.
    pub fn accepts_zstd(&self) {
        self.accepts_zstd.inc();
    }

    /// A connection was accepted and is being served.
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_open.inc();
    }

    /// A served connection ended.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// A connection was refused because the connection limit was reached.
    pub fn connection_rejected(&self) {
        self.connections_rejected.inc();
    }

    /// A connection was closed by a timeout or the minimum send rate.
    pub fn connection_limited(&self, why: ConnectionEnd) {
        self.connections_closed
            .get_or_create(&ReasonLabels {
                reason: why.label(),
            })
            .inc();
    }

    /// The last exchange with the object store succeeded or not; the manifest reached.
    pub fn object_store(&self, reachable: bool, manifest: u64) {
        self.object_store_reachable.set(i64::from(reachable));
        self.object_store_manifest.set(clamp(manifest));
    }

    /// The writer's collector ran: what it removed, and what the bucket holds now.
    pub fn object_store_collected(&self, collected: crate::scaleout::Collected) {
        self.object_store_collected
            .inc_by((collected.objects + collected.manifests) as u64);
        self.object_store_objects
            .set(clamp(collected.kept_objects as u64));
        self.object_store_bytes.set(clamp(collected.kept_bytes));
    }

    /// What opening the store cost (see `Store::open_stats`).
    pub fn store_opened(&self, stats: crate::snapshot::verified::OpenStats) {
        self.store_open_checked_bytes
            .set(clamp(stats.checked_bytes));
        self.store_open_trusted_files.set(clamp(stats.trusted));
    }

    /// The scrub re-hashed a file of `bytes`, good or `damaged`.
    pub fn scrubbed(&self, bytes: u64, damaged: bool) {
        self.scrub_bytes.inc_by(bytes);
        if damaged {
            self.scrub_damaged.inc();
        }
    }

    /// An artifact set was published (or failed to be: `generation` is `None`).
    pub fn artifacts_published(&self, took: Duration, generation: Option<u64>, files: usize) {
        match generation {
            Some(generation) => {
                self.publish_duration.observe(took.as_secs_f64());
                self.artifacts_generation.set(clamp(generation));
                self.artifact_files.set(clamp(files as u64));
            }
            None => {
                self.publish_failures.inc();
            }
        }
    }

    /// An ingest batch was applied. `source` names the way in (`api`, `folder`, `cli`, ...):
    /// a fixed word, never user input.
    pub fn ingest(
        &self,
        source: &'static str,
        applied: u64,
        unchanged: u64,
        removed: u64,
        rejected: u64,
    ) {
        self.ingest_batches
            .get_or_create(&SourceLabels { source })
            .inc();
        for (outcome, n) in [
            ("applied", applied),
            ("unchanged", unchanged),
            ("removed", removed),
            ("rejected", rejected),
        ] {
            self.ingest_records
                .get_or_create(&IngestLabels { source, outcome })
                .inc_by(n);
        }
    }

    /// A `full_change` file was published.
    pub fn change_file_published(&self) {
        self.change_files.inc();
    }

    /// A purge request ended (`keys`: how many surrogate keys it named).
    pub fn purge(&self, result: PurgeResult, keys: usize) {
        let label = match result {
            PurgeResult::Ok => "ok",
            PurgeResult::Retry => "retry",
            PurgeResult::Failed => "failed",
            PurgeResult::Dropped => "dropped",
        };
        self.purge_requests
            .get_or_create(&ResultLabels { result: label })
            .inc();
        if result == PurgeResult::Ok {
            self.purge_keys.inc_by(keys as u64);
        }
    }

    /// The exposition text, with gauges of the origin's state refreshed from `state`.
    pub fn encode(&self, state: StateSample) -> String {
        self.snapshot_generation
            .set(clamp(state.snapshot_generation));
        let age = SystemTime::now()
            .duration_since(state.snapshot_published)
            .unwrap_or_default();
        self.snapshot_age.set(age.as_secs_f64());
        self.artifacts_generation
            .set(clamp(state.artifacts_generation));
        self.artifact_files.set(clamp(state.artifact_files));
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StateSample {
        StateSample {
            snapshot_generation: 7,
            snapshot_published: SystemTime::now() - Duration::from_secs(30),
            artifacts_generation: 7,
            artifact_files: 20,
        }
    }

    #[test]
    fn exposition_names_routes_partners_and_state() {
        let m = Metrics::new();
        m.request("full", 200, "gzip", Some("acme"), Duration::from_millis(3));
        m.request("full", 404, "identity", None, Duration::from_millis(1));
        m.body_sent("full", 200, "identity", Some("acme"), 1234);
        // Again, through the handles found the first time; bytes of another encoding add up
        // in the route's one series.
        m.request("full", 200, "gzip", Some("acme"), Duration::from_millis(3));
        m.body_sent("full", 200, "gzip", Some("acme"), 6);
        m.ingest("api", 5, 1, 0, 2);
        m.purge(PurgeResult::Ok, 3);
        m.purge(PurgeResult::Retry, 3);
        let text = m.encode(sample());
        for line in [
            "iofd_http_requests_total{route=\"full\",status=\"200\",encoding=\"gzip\"} 2",
            "iofd_http_requests_total{route=\"full\",status=\"404\",encoding=\"identity\"} 1",
            "iofd_partner_requests_total{partner=\"acme\",status=\"200\"} 2",
            "iofd_partner_response_body_bytes_total{partner=\"acme\"} 1240",
            "iofd_http_response_body_bytes_total{route=\"full\"} 1240",
            "iofd_ingest_records_total{source=\"api\",outcome=\"rejected\"} 2",
            "iofd_ingest_batches_total{source=\"api\"} 1",
            "iofd_purge_requests_total{result=\"ok\"} 1",
            "iofd_purge_keys_total 3",
            "iofd_snapshot_generation 7",
            "iofd_artifact_files 20",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            text.contains(
                "iofd_http_response_head_duration_seconds_bucket{le=\"0.004\",route=\"full\"} 3"
            ) || text.contains("iofd_http_response_head_duration_seconds_count{route=\"full\"} 3"),
            "{text}"
        );
        let age_line = text
            .lines()
            .find(|l| l.starts_with("iofd_snapshot_age_seconds "))
            .expect("age");
        let age: f64 = age_line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((29.0..60.0).contains(&age), "{age_line}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn no_partner_label_without_a_partner() {
        let m = Metrics::new();
        m.request("gateway", 404, "identity", None, Duration::ZERO);
        m.body_sent("gateway", 200, "identity", None, 10);
        let text = m.encode(sample());
        assert!(!text.contains("partner=\""), "{text}");
    }
}
