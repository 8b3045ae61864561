//! What the overview page shows, read from the handles the listeners serve from.

use std::path::Path;
use std::time::SystemTime;

use crate::http::State;

/// The last batches the admin API applied, since start (the drop folder's are read from
/// `inbox/done/`, which outlives a restart).
#[derive(Default)]
pub struct IngestMarks {
    last: parking_lot::Mutex<(Option<Mark>, Option<Mark>)>,
}

#[derive(Clone)]
pub struct Mark {
    /// The API path (`/v1/updates`, ...) or the drop-folder file.
    pub what: String,
    pub at: jiff::Timestamp,
}

impl IngestMarks {
    /// A request to `path` was applied (`full_sync`: a full sync).
    pub fn note(&self, path: &str, full_sync: bool, at: jiff::Timestamp) {
        // Paths are the API's own (`/v1/products/17` keeps its id: a product number).
        let mark = Mark {
            what: path.chars().take(64).collect(),
            at,
        };
        let mut last = self.last.lock();
        if full_sync {
            last.1 = Some(mark.clone());
        }
        last.0 = Some(mark);
    }

    /// The last batch and the last full sync applied over the API.
    pub fn last(&self) -> (Option<Mark>, Option<Mark>) {
        self.last.lock().clone()
    }
}

/// Rejected drop-folder files listed at most.
const MAX_REJECTED: usize = 50;

pub struct Overview {
    pub products: usize,
    pub generation: u64,
    pub published: jiff::Timestamp,
    /// Seconds since `published`, on the app's clock.
    pub published_age_secs: u64,
    pub ready: bool,
    pub served_generation: u64,
    pub files: usize,
    pub profiles: Vec<ProfileRow>,
    /// Profiles in force without rendered files yet.
    pub pending: usize,
    pub rejected: Vec<Rejected>,
    pub rejected_more: usize,
    /// The newest file the drop folder applied, and the newest full sync among them.
    pub last_dropped: Option<Dropped>,
    pub last_dropped_full_sync: Option<Dropped>,
    /// The last batch and the last full sync applied over the admin API since start.
    pub last_api: Option<Mark>,
    pub last_api_full_sync: Option<Mark>,
    pub change_retention_secs: u64,
}

pub struct ProfileRow {
    pub key: String,
    pub shop: u32,
    pub format: &'static str,
    pub languages: String,
    pub currency: String,
    /// Seconds since the base full.xml (or full.csv) was written; `None` until rendered.
    pub base_age_secs: Option<u64>,
    pub change_files: usize,
    pub rendered: bool,
}

pub struct Dropped {
    pub name: String,
    /// When it was moved to `done/` (RFC 3339, UTC).
    pub at: String,
}

pub struct Rejected {
    pub name: String,
    pub reason: String,
}

pub fn gather(state: &State) -> Overview {
    let snapshot = state.store.snapshot();
    let set = state.artifacts.current();
    let mut profiles: Vec<ProfileRow> = state
        .demand
        .render_profiles()
        .into_iter()
        .map(|p| {
            let key = p.key();
            let files = set.profile_by_key(&key);
            let base = files.and_then(|f| f.get("full.xml").or_else(|| f.get("full.csv")));
            ProfileRow {
                shop: p.shop,
                format: crate::partners::edit::format_name(p.format),
                languages: p.languages.join(","),
                currency: p.currency.clone(),
                base_age_secs: base.map(|a| age_secs(a.modified)),
                change_files: files.map_or(0, |f| {
                    f.files
                        .keys()
                        .filter(|n| n.starts_with("full_change") && !n.ends_with(".gz"))
                        .count()
                }),
                rendered: files.is_some(),
                key,
            }
        })
        .collect();
    profiles.sort_by(|a, b| a.key.cmp(&b.key));
    profiles.dedup_by(|a, b| a.key == b.key);
    let pending = profiles.iter().filter(|p| !p.rendered).count();
    let (rejected, rejected_more) = rejected(&state.panel.config.inbox_dir);
    let (last_dropped, last_dropped_full_sync) = dropped(&state.panel.config.inbox_dir);
    let (last_api, last_api_full_sync) = state.panel.ingests.last();
    Overview {
        products: snapshot.len(),
        generation: snapshot.generation(),
        published: snapshot.published(),
        published_age_secs: u64::try_from(
            state
                .clock
                .now()
                .duration_since(snapshot.published())
                .as_secs(),
        )
        .unwrap_or(0),
        ready: state.readiness.is_ready(),
        served_generation: set.generation,
        files: set.file_count(),
        profiles,
        pending,
        rejected,
        rejected_more,
        last_dropped,
        last_dropped_full_sync,
        last_api,
        last_api_full_sync,
        change_retention_secs: state.panel.config.change_retention.as_secs(),
    }
}

fn age_secs(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The newest applied file of the drop folder (`done/`, by the time it was moved there)
/// and the newest full sync (`*.full_sync.jsonl`) among them.
fn dropped(inbox: &Path) -> (Option<Dropped>, Option<Dropped>) {
    let Ok(entries) = std::fs::read_dir(inbox.join("done")) else {
        return (None, None);
    };
    let mut newest: Option<(SystemTime, String)> = None;
    let mut newest_sync: Option<(SystemTime, String)> = None;
    for e in entries.flatten() {
        // A rename into done/ changes the entry's ctime, not its mtime: use the later.
        let Ok(meta) = e.metadata() else { continue };
        let changed = std::os::unix::fs::MetadataExt::ctime(&meta);
        let at = SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(changed).unwrap_or(0));
        let at = meta.modified().map_or(at, |m| m.max(at));
        let name = e.file_name().to_string_lossy().into_owned();
        let is_sync = name.ends_with(".full_sync.jsonl");
        for (slot, take) in [(&mut newest, true), (&mut newest_sync, is_sync)] {
            if take && slot.as_ref().is_none_or(|(t, _)| at > *t) {
                *slot = Some((at, name.clone()));
            }
        }
    }
    let shown = |d: Option<(SystemTime, String)>| {
        d.map(|(at, name)| Dropped {
            name,
            at: jiff::Timestamp::try_from(at)
                .map(|t| {
                    jiff::Timestamp::from_second(t.as_second())
                        .unwrap_or(t)
                        .to_string()
                })
                .unwrap_or_default(),
        })
    };
    (shown(newest), shown(newest_sync))
}

/// The newest rejected files of the drop folder with the first problem of their report.
fn rejected(inbox: &Path) -> (Vec<Rejected>, usize) {
    let Ok(entries) = std::fs::read_dir(inbox.join("rejected")) else {
        return (Vec::new(), 0);
    };
    let mut reports: Vec<(SystemTime, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".errors.txt"))
        .map(|e| {
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (modified, e.path())
        })
        .collect();
    reports.sort_by_key(|r| std::cmp::Reverse(r.0));
    let more = reports.len().saturating_sub(MAX_REJECTED);
    let listed = reports
        .into_iter()
        .take(MAX_REJECTED)
        .map(|(_, path)| {
            let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = file
                .as_deref()
                .and_then(|n| n.strip_suffix(".errors.txt"))
                .unwrap_or_default()
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // The report's first line names the file; the second is the first problem.
            let reason: String = text
                .lines()
                .nth(1)
                .or_else(|| text.lines().next())
                .unwrap_or("(no report)")
                .chars()
                .take(300)
                .collect();
            Rejected { name, reason }
        })
        .collect();
    (listed, more)
}
