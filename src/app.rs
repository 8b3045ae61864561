//! The running origin: the store, the partner accounts and the published artifacts, wired
//! together, plus the loop that republishes artifacts when the catalog changes.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::artifacts::{ArtifactError, Artifacts};
use crate::config::Config;
use crate::ingest::{self, IngestError};
use crate::partners::watch::PartnersWatcher;
use crate::partners::{Partners, PartnersError, DEMO_PARTNERS};
use crate::store::{ApplyMode, Store, StoreError, StoreOptions};

/// The demo catalog served by `iofd serve` with no arguments.
pub const DEMO_CATALOG: &str = include_str!("../fixtures/demo/catalog.jsonl");

/// Why the origin cannot start or publish.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Partners(#[from] PartnersError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("the demo catalog is invalid: {0}")]
    Demo(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Shared state of a running server.
pub struct App {
    pub config: Config,
    pub store: Store,
    partners: ArcSwap<Partners>,
    pub artifacts: Artifacts,
    ready: AtomicBool,
    /// Serializes partner reloads, so each new file inherits grants from its predecessor.
    reload_lock: Mutex<PartnersStatus>,
    /// Wakes the publisher when a reload brings render profiles that have no files yet.
    republish_wanted: tokio::sync::Notify,
}

/// Outcome of the latest partner reloads, for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnersStatus {
    /// Reloads tried since start-up.
    pub attempts: u64,
    /// Of those, reloads rejected (the previous accounts kept serving).
    pub failures: u64,
    /// Why the latest reload was rejected; `None` once a reload succeeds.
    pub last_error: Option<String>,
}

/// What a successful partner reload changed.
#[derive(Debug, Clone)]
pub struct PartnersReload {
    /// Accounts in the new file.
    pub accounts: usize,
    /// Accounts that lost access (their downloads in flight are being cut).
    pub revoked: Vec<String>,
    /// Render profiles that need files rendered (a republish was requested).
    pub new_profiles: usize,
    pub elapsed: Duration,
}

impl App {
    /// Open the data directory, seed it with the demo catalog and partners in demo mode, and
    /// publish the artifacts of the current snapshot. Blocking.
    pub fn open(config: Config) -> Result<Arc<App>, AppError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| AppError::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        let store = Store::open(&config.store_dir(), StoreOptions::default())?;
        if config.demo {
            seed_demo(&config, &store)?;
        }
        let partners = Partners::load(&config.partners_path(), &config)?;
        let artifacts = Artifacts::new(&config.artifacts_dir(), config.timezone.clone())?;
        let app = Arc::new(App {
            config,
            store,
            partners: ArcSwap::from_pointee(partners),
            artifacts,
            ready: AtomicBool::new(false),
            reload_lock: Mutex::new(PartnersStatus::default()),
            republish_wanted: tokio::sync::Notify::new(),
        });
        app.republish()?;
        Ok(app)
    }

    /// The partner accounts in force.
    pub fn partners(&self) -> Arc<Partners> {
        self.partners.load_full()
    }

    /// Read the partners file again and put it in force. A file that does not load is
    /// logged with the reason and leaves the accounts in force untouched. Accounts that lost
    /// access have their downloads in flight cut; cached gateways are dropped; render profiles
    /// without files are handed to the publisher (off the request path). Blocking.
    pub fn reload_partners(&self) -> Result<PartnersReload, AppError> {
        let mut status = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        status.attempts += 1;
        let path = self.config.partners_path();
        let mut partners = match Partners::load(&path, &self.config) {
            Ok(p) => p,
            Err(e) => {
                status.failures += 1;
                status.last_error = Some(e.to_string());
                tracing::error!(error = %e, "partners file rejected; the previous accounts keep serving");
                return Err(e.into());
            }
        };
        let previous = self.partners.load_full();
        let revoked = partners.inherit(&previous);
        let set = self.artifacts.current();
        let new_profiles = partners
            .profiles()
            .iter()
            .filter(|p| set.profile(p).is_none())
            .count();
        let accounts = partners.len();
        self.partners.store(Arc::new(partners));
        // Gateways carry per-partner links; drop them so none outlives a token or account.
        self.artifacts.gateways.clear();
        if new_profiles > 0 {
            self.republish_wanted.notify_one();
        }
        status.last_error = None;
        let elapsed = started.elapsed();
        tracing::info!(
            path = %path.display(),
            accounts,
            revoked = ?revoked,
            new_profiles,
            elapsed_us = elapsed.as_micros() as u64,
            "partners reloaded"
        );
        Ok(PartnersReload {
            accounts,
            revoked,
            new_profiles,
            elapsed,
        })
    }

    /// Outcome of the partner reloads so far.
    pub fn partners_status(&self) -> PartnersStatus {
        self.reload_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reload the partners file whenever it changes, until `shutdown` resolves. Without a
    /// working watch (the system refused one) the file is only read at start-up; that is
    /// logged.
    pub async fn run_partners_watcher(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let path = self.config.partners_path();
        let mut watcher = match PartnersWatcher::new(&path) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the partners file; edits take effect after a restart");
                return;
            }
        };
        tracing::info!(path = %path.display(), "watching the partners file");
        // Edits made between start-up's load and the watch's start raised no event: read
        // the file once more now that the watch is on.
        let app = self.clone();
        let _ = tokio::task::spawn_blocking(move || app.reload_partners()).await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                changed = watcher.changed() => {
                    if changed.is_none() {
                        return;
                    }
                    let app = self.clone();
                    // Errors are logged and counted inside.
                    let _ = tokio::task::spawn_blocking(move || app.reload_partners()).await;
                }
            }
        }
    }

    /// True once artifacts of the latest snapshot are published.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && self.artifacts.current().generation == self.store.snapshot().generation()
    }

    /// Render what the current snapshot and partners need and publish it. Blocking.
    pub fn republish(&self) -> Result<(), AppError> {
        let snapshot = self.store.snapshot();
        let profiles = self.partners().profiles();
        let started = std::time::Instant::now();
        let set = self.artifacts.publish(&snapshot, &profiles)?;
        tracing::info!(
            generation = set.generation,
            profiles = set.by_profile.len(),
            files = set.file_count(),
            products = snapshot.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "artifacts published"
        );
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Republish whenever the store publishes a new generation or a partners reload needs new
    /// profiles rendered, until `shutdown` resolves.
    pub async fn run_publisher(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut generations = self.store.subscribe();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.republish_wanted.notified() => {}
                changed = generations.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let app = self.clone();
            match tokio::task::spawn_blocking(move || app.republish()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot publish artifacts; the previous ones keep serving")
                }
                Err(e) => tracing::error!(error = %e, "the publisher task failed"),
            }
        }
    }
}

/// Demo mode: write the demo partners file if absent and import the demo catalog into an
/// empty store.
fn seed_demo(config: &Config, store: &Store) -> Result<(), AppError> {
    let partners = config.partners_path();
    if !partners.exists() {
        write_atomically(&partners, DEMO_PARTNERS.as_bytes())?;
        tracing::info!(path = %partners.display(), "wrote the demo partners file");
    }
    if store.snapshot().is_empty() {
        let batch = ingest::read_jsonl("demo catalog.jsonl", DEMO_CATALOG.as_bytes())?;
        if let Some(first) = batch.rejected.first() {
            return Err(AppError::Demo(first.to_string()));
        }
        let records = batch.records.into_iter().map(|l| l.record).collect();
        let report = store.apply(records, ApplyMode::FullSync)?;
        tracing::info!(
            products = report.applied,
            generation = report.generation,
            "imported the demo catalog"
        );
    }
    Ok(())
}

/// Write a small file durably: temp file, fsync, rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    use std::io::Write;
    let io = |source| AppError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}
