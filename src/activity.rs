//! Partner activity: per partner and file kind, the last successful fetch, requests, bytes
//! and 304 answers over the last 24 hours (a ring of hourly buckets, never an unbounded log)
//! and the last error; partners without a successful fetch for `partner_silent_after` are
//! flagged.
//!
//! The request path takes a read lock on the partner map (shared, so requests never wait for
//! each other there) and the partner's own mutex, so only requests of one partner ever meet.
//! [`Activity::save`] writes the whole state as JSON through [`crate::fsio`]: the server saves
//! it every minute and at shutdown, and [`Activity::open`] reads it back; a damaged file is
//! reported, moved aside and replaced by an empty state, never a start-up failure.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// The file under the data directory.
pub const FILE_NAME: &str = "activity.json";
/// Hourly buckets kept: the last 24 hours.
const HOURS: i64 = 24;
/// How often a running server saves the activity.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(60);

/// The activity file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged")]
    Damaged {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The persisted form, and the in-memory one of a partner.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FileForm {
    version: u32,
    /// Partner id → file kind → log.
    partners: BTreeMap<String, BTreeMap<String, KindLog>>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct KindLog {
    /// Unix seconds of the last 2xx or 304 answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_success: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<ErrorMark>,
    /// At most [`HOURS`] buckets, oldest first.
    #[serde(default)]
    hours: Vec<Hour>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct ErrorMark {
    status: u16,
    at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Hour {
    /// Unix seconds / 3600.
    hour: i64,
    requests: u64,
    bytes: u64,
    not_modified: u64,
}

impl KindLog {
    fn record(&mut self, now: i64, status: u16, bytes: u64) {
        let hour = now.div_euclid(3600);
        match self.hours.last_mut() {
            // A clock stepped back lands in the newest bucket rather than reordering them.
            Some(h) if h.hour >= hour => {
                h.requests += 1;
                h.bytes += bytes;
                h.not_modified += u64::from(status == 304);
            }
            _ => self.hours.push(Hour {
                hour,
                requests: 1,
                bytes,
                not_modified: u64::from(status == 304),
            }),
        }
        self.prune(hour);
        if (200..300).contains(&status) || status == 304 {
            self.last_success = Some(now);
        } else if status >= 400 {
            self.last_error = Some(ErrorMark { status, at: now });
        }
    }

    /// Drop the buckets that fell out of the last 24 hours.
    fn prune(&mut self, hour: i64) {
        let oldest = hour - (HOURS - 1);
        self.hours.retain(|h| h.hour >= oldest);
        let extra = self.hours.len().saturating_sub(HOURS as usize);
        self.hours.drain(..extra);
    }

    fn window(&self, now: i64) -> (u64, u64, u64) {
        let oldest = now.div_euclid(3600) - (HOURS - 1);
        self.hours
            .iter()
            .filter(|h| h.hour >= oldest)
            .fold((0, 0, 0), |(r, b, n), h| {
                (r + h.requests, b + h.bytes, n + h.not_modified)
            })
    }
}

type PartnerLog = BTreeMap<String, KindLog>;

/// The activity of every partner (see the module documentation).
pub struct Activity {
    clock: Clock,
    silent_after: Duration,
    path: PathBuf,
    partners: RwLock<HashMap<String, Arc<Mutex<PartnerLog>>>>,
}

/// One partner's activity, as `GET /v1/partners/activity` and the panel show it.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerReport {
    pub partner: String,
    /// The newest successful fetch of any file (RFC 3339, UTC).
    pub last_fetch: Option<String>,
    /// No successful fetch for `partner_silent_after` (or never).
    pub silent: bool,
    pub requests_24h: u64,
    pub bytes_24h: u64,
    pub kinds: Vec<KindReport>,
}

/// One file kind of a partner.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub kind: String,
    pub last_success: Option<String>,
    pub requests_24h: u64,
    pub bytes_24h: u64,
    pub not_modified_24h: u64,
    /// 304 answers / requests over the last 24 h, rounded to 0.001 (none without requests).
    pub not_modified_share: Option<f64>,
    pub last_error: Option<ErrorReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub status: u16,
    pub at: String,
}

/// Unix seconds as RFC 3339 in UTC (`2026-03-01T10:15:00Z`).
pub fn rfc3339(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

impl Activity {
    /// An empty activity saved to `path` (nothing is read).
    pub fn new(path: PathBuf, clock: Clock, silent_after: Duration) -> Activity {
        Activity {
            clock,
            silent_after,
            path,
            partners: RwLock::default(),
        }
    }

    /// The activity saved at `path`. A missing file is an empty activity; a damaged one is
    /// logged, moved aside (to `<name>.damaged`) and replaced by an empty activity.
    pub fn open(path: PathBuf, clock: Clock, silent_after: Duration) -> Activity {
        let activity = Activity::new(path, clock, silent_after);
        match read_file(&activity.path) {
            Ok(file) => {
                let mut map = activity.partners.write();
                for (partner, log) in file.partners {
                    map.insert(partner, Arc::new(Mutex::new(log)));
                }
            }
            Err(e @ ActivityError::Read { .. }) => {
                // Unreadable (permissions, I/O): left where it is for the operator to look at.
                tracing::error!(
                    error = %e,
                    cause = %std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default(),
                    "partner activity not restored; starting empty"
                );
            }
            Err(e) => {
                let aside = activity.path.with_extension("json.damaged");
                let moved = crate::fsio::rename(&activity.path, &aside);
                tracing::error!(
                    error = %e,
                    cause = %std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default(),
                    moved_to = %aside.display(),
                    moved = moved.is_ok(),
                    "partner activity not restored; starting empty"
                );
            }
        }
        activity
    }

    /// Count one answer to an authenticated partner: `kind` is the file kind (a fixed label),
    /// `bytes` the body bytes sent.
    pub fn record(&self, partner: &str, kind: &str, status: u16, bytes: u64) {
        let now = self.clock.now().as_second();
        let log = self.partners.read().get(partner).cloned();
        let log = match log {
            Some(log) => log,
            None => self
                .partners
                .write()
                .entry(partner.to_string())
                .or_default()
                .clone(),
        };
        let mut log = log.lock();
        // The kind's entry exists after its first request: no allocation on the way.
        match log.get_mut(kind) {
            Some(k) => k.record(now, status, bytes),
            None => log
                .entry(kind.to_string())
                .or_default()
                .record(now, status, bytes),
        }
    }

    /// The activity of `partners` (in that order), every one listed even without requests.
    pub fn report<'a>(&self, partners: impl IntoIterator<Item = &'a str>) -> Vec<PartnerReport> {
        let map = self.partners.read();
        let now = self.clock.now().as_second();
        partners
            .into_iter()
            .map(|id| {
                let log = map.get(id).map(|l| l.lock().clone()).unwrap_or_default();
                report_of(id, &log, now, self.silent_after)
            })
            .collect()
    }

    /// Forget partners not in `keep` (accounts removed from the file).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        self.partners.write().retain(|id, _| keep(id));
    }

    /// How long without a successful fetch flags a partner.
    pub fn silent_after(&self) -> Duration {
        self.silent_after
    }

    /// Write the activity durably (temp file, fsync, rename).
    pub fn save(&self) -> Result<(), ActivityError> {
        let file = FileForm {
            version: 1,
            partners: self
                .partners
                .read()
                .iter()
                .map(|(id, log)| (id.clone(), log.lock().clone()))
                .collect(),
        };
        // Serializing plain maps of numbers and strings cannot fail.
        let bytes = serde_json::to_vec(&file).unwrap_or_default();
        crate::fsio::write(&self.path, &bytes).map_err(|source| ActivityError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

fn report_of(id: &str, log: &PartnerLog, now: i64, silent_after: Duration) -> PartnerReport {
    let kinds: Vec<KindReport> = log
        .iter()
        .map(|(kind, k)| {
            let (requests, bytes, not_modified) = k.window(now);
            KindReport {
                kind: kind.clone(),
                last_success: k.last_success.map(rfc3339),
                requests_24h: requests,
                bytes_24h: bytes,
                not_modified_24h: not_modified,
                not_modified_share: (requests > 0)
                    .then(|| (not_modified as f64 / requests as f64 * 1000.0).round() / 1000.0),
                last_error: k.last_error.map(|e| ErrorReport {
                    status: e.status,
                    at: rfc3339(e.at),
                }),
            }
        })
        .collect();
    let last = log.values().filter_map(|k| k.last_success).max();
    let silent_secs = i64::try_from(silent_after.as_secs()).unwrap_or(i64::MAX);
    PartnerReport {
        partner: id.to_string(),
        last_fetch: last.map(rfc3339),
        silent: last.is_none_or(|t| now.saturating_sub(t) >= silent_secs),
        requests_24h: kinds.iter().map(|k| k.requests_24h).sum(),
        bytes_24h: kinds.iter().map(|k| k.bytes_24h).sum(),
        kinds,
    }
}

fn read_file(path: &Path) -> Result<FileForm, ActivityError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileForm::default()),
        Err(source) => {
            return Err(ActivityError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut file: FileForm =
        serde_json::from_slice(&bytes).map_err(|source| ActivityError::Damaged {
            path: path.to_path_buf(),
            source,
        })?;
    // A hand-edited file with too many buckets keeps the newest ones.
    for log in file.partners.values_mut().flat_map(|p| p.values_mut()) {
        log.hours.sort_by_key(|h| h.hour);
        if let Some(newest) = log.hours.last().map(|h| h.hour) {
            log.prune(newest);
        }
    }
    Ok(file)
}

/// The saved activity of `partners` as of `now`, read-only (for `iofd partners list
/// --activity`, beside a running server that saves it every minute).
pub fn read_report<'a>(
    path: &Path,
    partners: impl IntoIterator<Item = &'a str>,
    now: Timestamp,
    silent_after: Duration,
) -> Result<Vec<PartnerReport>, ActivityError> {
    let file = read_file(path)?;
    let now = now.as_second();
    Ok(partners
        .into_iter()
        .map(|id| {
            let log = file.partners.get(id).cloned().unwrap_or_default();
            report_of(id, &log, now, silent_after)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Timestamp {
        "2026-03-01T10:15:00Z".parse().unwrap()
    }

    fn activity(dir: &Path, clock: &Clock) -> Activity {
        Activity::open(
            dir.join(FILE_NAME),
            clock.clone(),
            Duration::from_secs(6 * 3600),
        )
    }

    #[test]
    fn counts_requests_bytes_and_304s_per_kind_over_24_hours() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(start());
        let a = activity(dir.path(), &clock);
        a.record("shop", "gateway", 200, 1000);
        a.record("shop", "gateway", 304, 0);
        a.record("shop", "gateway", 304, 0);
        a.record("shop", "full", 200, 50_000);
        clock.advance(Duration::from_secs(3600));
        a.record("shop", "full", 503, 40);
        let r = &a.report(["shop", "idle"]);
        assert_eq!(r[0].requests_24h, 5);
        assert_eq!(r[0].bytes_24h, 51_040);
        let gateway = r[0].kinds.iter().find(|k| k.kind == "gateway").unwrap();
        assert_eq!(gateway.not_modified_24h, 2);
        assert_eq!(gateway.not_modified_share, Some(0.667));
        assert_eq!(
            gateway.last_success.as_deref(),
            Some("2026-03-01T10:15:00Z")
        );
        let full = r[0].kinds.iter().find(|k| k.kind == "full").unwrap();
        let error = full.last_error.as_ref().unwrap();
        assert_eq!(
            (error.status, error.at.as_str()),
            (503, "2026-03-01T11:15:00Z")
        );
        assert_eq!(full.last_success.as_deref(), Some("2026-03-01T10:15:00Z"));
        assert!(!r[0].silent);
        assert!(r[1].silent && r[1].last_fetch.is_none(), "never fetched");
        // 24 hours later the first hour's requests have left the window; the last
        // successful fetch is remembered and is now old enough to flag the partner.
        clock.advance(Duration::from_secs(23 * 3600));
        let r = &a.report(["shop"])[0];
        assert_eq!(r.requests_24h, 1);
        assert!(r.silent);
        assert_eq!(r.last_fetch.as_deref(), Some("2026-03-01T10:15:00Z"));
    }

    #[test]
    fn the_ring_never_holds_more_than_24_buckets() {
        let clock = Clock::manual(start());
        let mut log = KindLog::default();
        for _ in 0..100 {
            log.record(clock.now().as_second(), 200, 1);
            clock.advance(Duration::from_secs(1800));
        }
        assert!(log.hours.len() <= 24, "{}", log.hours.len());
        // Two requests an hour; the current hour (the clock stands half an hour past the
        // last one) has none yet, so 23 hours count.
        assert_eq!(log.window(clock.now().as_second()).0, 46);
    }

    #[test]
    fn survives_a_restart_and_a_damaged_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(start());
        let a = activity(dir.path(), &clock);
        a.record("shop", "light", 200, 7);
        a.save().unwrap();
        let b = activity(dir.path(), &clock);
        assert_eq!(b.report(["shop"])[0].bytes_24h, 7);
        let read = read_report(
            &dir.path().join(FILE_NAME),
            ["shop"],
            clock.now(),
            b.silent_after(),
        )
        .unwrap();
        assert_eq!(read[0].requests_24h, 1);

        std::fs::write(dir.path().join(FILE_NAME), b"{\"partners\": [1,").unwrap();
        let err = read_report(
            &dir.path().join(FILE_NAME),
            ["shop"],
            clock.now(),
            b.silent_after(),
        )
        .unwrap_err();
        assert!(err.to_string().contains(FILE_NAME), "{err}");
        let c = activity(dir.path(), &clock);
        assert_eq!(c.report(["shop"])[0].requests_24h, 0);
        assert!(dir.path().join("activity.json.damaged").exists());
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
