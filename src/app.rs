//! The running origin: the store, the partner accounts and the published artifacts, wired
//! together, plus the loop that republishes artifacts when the catalog changes.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::artifacts::{ArtifactError, Artifacts};
use crate::changes::{Changes, ChangesError, ChangesOptions};
use crate::config::Config;
use crate::ingest::{self, IngestError};
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
    #[error(transparent)]
    Changes(#[from] ChangesError),
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
    /// Change log, change windows and the base full.xml of every IOF profile.
    pub changes: Changes,
    ready: AtomicBool,
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
        let changes = Changes::open(
            &config.changes_dir(),
            &store.snapshot(),
            ChangesOptions {
                window: config.change_window,
                retention: config.change_retention,
                rebuild_at: config.base_rebuild,
                timezone: config.timezone.clone(),
            },
        )?;
        let app = Arc::new(App {
            config,
            store,
            partners: ArcSwap::from_pointee(partners),
            artifacts,
            changes,
            ready: AtomicBool::new(false),
        });
        app.republish()?;
        Ok(app)
    }

    /// The partner accounts in force.
    pub fn partners(&self) -> Arc<Partners> {
        self.partners.load_full()
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
        // Change tracking failing must not stop light.xml: full.xml then stays the last base.
        if let Err(e) = self
            .changes
            .observe(&snapshot)
            .and_then(|_| self.changes.maintain(&profiles, jiff::Timestamp::now()))
        {
            tracing::error!(error = %e, "change tracking failed; full.xml stays the last base");
        }
        let set = self
            .artifacts
            .publish_with(&snapshot, &profiles, &|p| self.changes.full_files(p))?;
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

    /// Timer work of the changes stage (cut a window, rebuild bases); republish when it
    /// changed the files to serve. Blocking.
    pub fn tick(&self) -> Result<(), AppError> {
        let profiles = self.partners().profiles();
        if self.changes.maintain(&profiles, jiff::Timestamp::now())? {
            self.republish()?;
        }
        Ok(())
    }

    /// Republish whenever the store publishes a new generation, and cut change windows on
    /// time, until `shutdown` resolves. One loop, so publishes never race each other.
    pub async fn run_publisher(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut generations = self.store.subscribe();
        tokio::pin!(shutdown);
        // After a failure, do not retry a past deadline in a tight loop.
        let mut backoff = std::time::Duration::ZERO;
        loop {
            let now = jiff::Timestamp::now();
            let wait = self
                .changes
                .next_deadline(now)
                .duration_since(now)
                .try_into()
                .unwrap_or(std::time::Duration::ZERO)
                .max(backoff);
            let app = self.clone();
            let work: Box<dyn FnOnce() -> Result<(), AppError> + Send> = tokio::select! {
                _ = &mut shutdown => return,
                changed = generations.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    Box::new(move || app.republish())
                }
                _ = tokio::time::sleep(wait) => Box::new(move || app.tick()),
            };
            backoff = std::time::Duration::from_secs(5);
            match tokio::task::spawn_blocking(work).await {
                Ok(Ok(())) => backoff = std::time::Duration::ZERO,
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
