//! Counting while the run goes, and the report at the end.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, up to an hour.
const MAX_MICROS: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // 3 significant figures over 1 µs .. 1 h: well under 100 KB per histogram.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

fn lock<T>(m: &Mutex<T>) -> parking_lot::MutexGuard<'_, T> {
    m.lock()
}

#[derive(Default)]
struct Kind {
    requests: u64,
    bytes: u64,
    status: BTreeMap<u16, u64>,
    latency: Option<Histogram<u64>>,
}

/// Everything counted during a run; shared by every partner task.
pub struct Stats {
    kinds: Mutex<BTreeMap<&'static str, Kind>>,
    errors: Mutex<BTreeMap<String, u64>>,
    freshness: Mutex<Histogram<u64>>,
    ack: Mutex<Histogram<u64>>,
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub error_count: AtomicU64,
    /// Bodies whose MD5 differs from the gateway's hash while the gateway still lists it.
    pub mismatches: AtomicU64,
    /// Bodies that did not match because the file was superseded meanwhile.
    pub superseded: AtomicU64,
    /// Gateways asked again because they still listed a mismatched body's file at the
    /// generation it was fetched for (a node behind the one that served it).
    pub rechecks: AtomicU64,
    pub range_downloads: AtomicU64,
    pub gzip_decoded: AtomicU64,
    pub changes_applied: AtomicU64,
    pub base_checks: AtomicU64,
    pub base_equal: AtomicU64,
    pub drift_explained: AtomicU64,
    pub drift_unexplained: AtomicU64,
    pub checks_skipped: AtomicU64,
    pub mutations_sent: AtomicU64,
    pub mutations_acked: AtomicU64,
    pub mutations_seen: AtomicU64,
    pub mutations_superseded: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            kinds: Mutex::default(),
            errors: Mutex::default(),
            freshness: Mutex::new(histogram()),
            ack: Mutex::new(histogram()),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            error_count: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
            superseded: AtomicU64::new(0),
            rechecks: AtomicU64::new(0),
            range_downloads: AtomicU64::new(0),
            gzip_decoded: AtomicU64::new(0),
            changes_applied: AtomicU64::new(0),
            base_checks: AtomicU64::new(0),
            base_equal: AtomicU64::new(0),
            drift_explained: AtomicU64::new(0),
            drift_unexplained: AtomicU64::new(0),
            checks_skipped: AtomicU64::new(0),
            mutations_sent: AtomicU64::new(0),
            mutations_acked: AtomicU64::new(0),
            mutations_seen: AtomicU64::new(0),
            mutations_superseded: AtomicU64::new(0),
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_MICROS)
}

impl Stats {
    /// One answered request: its file kind, status, bytes on the wire and time to last byte.
    pub fn request(&self, kind: &'static str, status: u16, bytes: u64, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut kinds = lock(&self.kinds);
        let k = kinds.entry(kind).or_default();
        k.requests += 1;
        k.bytes += bytes;
        *k.status.entry(status).or_default() += 1;
        let _ = k
            .latency
            .get_or_insert_with(histogram)
            .record(micros(latency));
    }

    /// An error, by kind (`connect`, `status_503`, `gateway_invalid`, ...).
    pub fn error(&self, kind: impl Into<String>) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        *lock(&self.errors).entry(kind.into()).or_default() += 1;
    }

    /// Time from an acknowledged update to the first partner seeing it.
    pub fn freshness(&self, d: Duration) {
        self.mutations_seen.fetch_add(1, Ordering::Relaxed);
        let _ = lock(&self.freshness).record(micros(d));
    }

    /// Time the admin API took to acknowledge an update.
    pub fn ack(&self, d: Duration) {
        self.mutations_acked.fetch_add(1, Ordering::Relaxed);
        let _ = lock(&self.ack).record(micros(d));
    }

    /// Freshness p50 so far, for the progress line.
    pub fn freshness_p50(&self) -> Option<Duration> {
        let h = lock(&self.freshness);
        (!h.is_empty()).then(|| Duration::from_micros(h.value_at_quantile(0.5)))
    }

    /// The report of a run that lasted `elapsed`.
    pub fn report(&self, elapsed: Duration, partners: usize, unseen: u64) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let kinds = lock(&self.kinds)
            .iter()
            .map(|(name, k)| {
                (
                    name.to_string(),
                    KindReport {
                        requests: k.requests,
                        bytes: k.bytes,
                        requests_per_s: k.requests as f64 / secs,
                        bytes_per_s: k.bytes as f64 / secs,
                        status: k.status.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
                        latency_ms: k.latency.as_ref().map(Percentiles::of).unwrap_or_default(),
                    },
                )
            })
            .collect();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let requests = get(&self.requests);
        let bytes = get(&self.bytes);
        let sent = get(&self.mutations_sent);
        Report {
            duration_s: elapsed.as_secs_f64(),
            partners,
            requests,
            bytes,
            requests_per_s: requests as f64 / secs,
            bytes_per_s: bytes as f64 / secs,
            kinds,
            errors: lock(&self.errors).clone(),
            hash_mismatches: get(&self.mismatches),
            superseded_bodies: get(&self.superseded),
            gateway_rechecks: get(&self.rechecks),
            range_downloads: get(&self.range_downloads),
            gzip_decoded: get(&self.gzip_decoded),
            changes_applied: get(&self.changes_applied),
            base: BaseReport {
                checks: get(&self.base_checks),
                equal: get(&self.base_equal),
                drift_explained: get(&self.drift_explained),
                drift_unexplained: get(&self.drift_unexplained),
                skipped: get(&self.checks_skipped),
            },
            mutator: (sent > 0).then(|| MutatorReport {
                sent,
                acked: get(&self.mutations_acked),
                seen: get(&self.mutations_seen),
                superseded: get(&self.mutations_superseded),
                unseen,
                ack_ms: Percentiles::of(&lock(&self.ack)),
                freshness_ms: Percentiles::of(&lock(&self.freshness)),
            }),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Figures for one file kind.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KindReport {
    pub requests: u64,
    pub bytes: u64,
    pub requests_per_s: f64,
    pub bytes_per_s: f64,
    /// Count by HTTP status.
    pub status: BTreeMap<String, u64>,
    pub latency_ms: Percentiles,
}

/// Comparisons of the local copy (base plus change files) with each new full.xml.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct BaseReport {
    /// Comparisons made.
    pub checks: u64,
    /// Comparisons that found the copies equal.
    pub equal: u64,
    /// Differing products the mutator had updated (an update newer than the change files).
    pub drift_explained: u64,
    /// Differing products nobody updated during the run (counted as errors too).
    pub drift_unexplained: u64,
    /// Comparisons not made because a parsed copy was not available.
    pub skipped: u64,
}

/// The mutator's figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MutatorReport {
    pub sent: u64,
    pub acked: u64,
    /// Updates some partner saw in light.xml.
    pub seen: u64,
    /// Updates overwritten by a later update to the same value before anyone saw them.
    pub superseded: u64,
    /// Updates acknowledged more than the grace period before the end and never seen.
    pub unseen: u64,
    pub ack_ms: Percentiles,
    /// From acknowledgement to the first partner seeing the value in light.xml.
    pub freshness_ms: Percentiles,
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    pub duration_s: f64,
    pub partners: usize,
    pub requests: u64,
    pub bytes: u64,
    pub requests_per_s: f64,
    pub bytes_per_s: f64,
    /// By file kind: gateway, full, light, change, reference, admin.
    pub kinds: BTreeMap<String, KindReport>,
    pub errors: BTreeMap<String, u64>,
    pub hash_mismatches: u64,
    pub superseded_bodies: u64,
    /// Gateways asked again for a mismatched body, waiting for a node that was behind.
    pub gateway_rechecks: u64,
    pub range_downloads: u64,
    pub gzip_decoded: u64,
    pub changes_applied: u64,
    pub base: BaseReport,
    pub mutator: Option<MutatorReport>,
}

impl Report {
    /// No errors, no mismatches, no unexplained drift.
    pub fn passed(&self) -> bool {
        self.errors.values().all(|n| *n == 0) && self.hash_mismatches == 0
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} partners, {:.1} s: {} requests ({:.1}/s), {} ({}/s)",
            self.partners,
            self.duration_s,
            self.requests,
            self.requests_per_s,
            human_bytes(self.bytes as f64),
            human_bytes(self.bytes_per_s)
        );
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9}  statuses",
            "kind", "requests", "req/s", "bytes/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for (name, k) in &self.kinds {
            let statuses: Vec<String> = k.status.iter().map(|(s, n)| format!("{s}:{n}")).collect();
            let _ = writeln!(
                s,
                "{:<10} {:>9} {:>9.1} {:>11} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
                name,
                k.requests,
                k.requests_per_s,
                human_bytes(k.bytes_per_s),
                k.latency_ms.p50,
                k.latency_ms.p90,
                k.latency_ms.p99,
                k.latency_ms.max,
                statuses.join(" ")
            );
        }
        let errors: u64 = self.errors.values().sum();
        let list: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let _ = writeln!(
            s,
            "errors: {errors}{}",
            if list.is_empty() {
                String::new()
            } else {
                format!(" ({})", list.join(", "))
            }
        );
        let _ = writeln!(
            s,
            "hash mismatches: {} (bodies superseded while fetching: {}, gateways asked again for them: {}); range-resumed downloads: {}; gzip-decoded: {}",
            self.hash_mismatches, self.superseded_bodies, self.gateway_rechecks, self.range_downloads, self.gzip_decoded
        );
        let _ = writeln!(
            s,
            "local copy: {} change files applied; {} base checks, {} equal, drift {} explained / {} unexplained, {} skipped",
            self.changes_applied,
            self.base.checks,
            self.base.equal,
            self.base.drift_explained,
            self.base.drift_unexplained,
            self.base.skipped
        );
        if let Some(m) = &self.mutator {
            let _ = writeln!(
                s,
                "mutator: {} sent, {} acknowledged (ack p50 {:.1} ms, p99 {:.1} ms), {} seen, {} superseded, {} never seen",
                m.sent, m.acked, m.ack_ms.p50, m.ack_ms.p99, m.seen, m.superseded, m.unseen
            );
            let _ = writeln!(
                s,
                "freshness (ack → first partner sees it in light.xml): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                m.freshness_ms.p50, m.freshness_ms.p90, m.freshness_ms.p99, m.freshness_ms.max
            );
        }
        let _ = writeln!(s, "{}", if self.passed() { "PASS" } else { "FAIL" });
        s
    }
}

/// `1.5 MB`, decimal units.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_percentiles() {
        let stats = Stats::default();
        for ms in 1..=100u64 {
            stats.request("light", 200, 1000, Duration::from_millis(ms));
        }
        stats.request("gateway", 304, 0, Duration::from_micros(250));
        let r = stats.report(Duration::from_secs(4), 3, 0);
        assert_eq!(r.requests, 101);
        assert_eq!(r.bytes, 100_000);
        assert!((r.requests_per_s - 25.25).abs() < 1e-9);
        assert!((r.bytes_per_s - 25_000.0).abs() < 1e-9);
        let light = &r.kinds["light"];
        assert_eq!(light.latency_ms.count, 100);
        // HdrHistogram keeps 3 significant figures.
        assert!(
            (light.latency_ms.p50 - 50.0).abs() < 0.1,
            "{:?}",
            light.latency_ms
        );
        assert!((light.latency_ms.p90 - 90.0).abs() < 0.1);
        assert!((light.latency_ms.p99 - 99.0).abs() < 0.1);
        assert!((light.latency_ms.max - 100.0).abs() < 0.1);
        assert_eq!(r.kinds["gateway"].status["304"], 1);
        assert!((r.kinds["gateway"].latency_ms.p50 - 0.25).abs() < 0.001);
        assert!(r.passed());
        assert!(r.mutator.is_none());
    }

    #[test]
    fn errors_and_mismatches_fail_the_run() {
        let stats = Stats::default();
        stats.error("status_503");
        stats.error("status_503");
        let r = stats.report(Duration::from_secs(1), 1, 0);
        assert_eq!(r.errors["status_503"], 2);
        assert!(!r.passed());
        assert!(r.summary().contains("status_503: 2"));
        let stats = Stats::default();
        stats.mismatches.fetch_add(1, Ordering::Relaxed);
        assert!(!stats.report(Duration::from_secs(1), 1, 0).passed());
    }

    #[test]
    fn freshness_is_reported_with_the_mutator() {
        let stats = Stats::default();
        stats.mutations_sent.fetch_add(3, Ordering::Relaxed);
        stats.ack(Duration::from_millis(4));
        stats.freshness(Duration::from_millis(300));
        stats.freshness(Duration::from_millis(900));
        let m = stats.report(Duration::from_secs(1), 1, 1).mutator.unwrap();
        assert_eq!((m.sent, m.acked, m.seen, m.unseen), (3, 1, 2, 1));
        assert!((m.freshness_ms.p50 - 300.0).abs() < 1.0);
        assert!((m.freshness_ms.max - 900.0).abs() < 1.0);
    }

    #[test]
    fn bytes_read_like_people_do() {
        assert_eq!(human_bytes(999.0), "999 B");
        assert_eq!(human_bytes(1_500_000.0), "1.5 MB");
        assert_eq!(human_bytes(2.5e9), "2.5 GB");
    }
}
