//! The running origin: the store, the partner accounts and the published artifacts, wired
//! together, plus the loop that republishes artifacts when the catalog changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::artifacts::{ArtifactError, Artifacts, GatewayCache};
use crate::changes::{Changes, ChangesError, ChangesOptions};
use crate::config::Config;
use crate::http::RateLimiter;
use crate::ingest::{self, IngestError};
use crate::metrics::Metrics;
use crate::partners::watch::PartnersWatcher;
use crate::partners::{Partners, PartnersError, DEMO_PARTNERS};
use crate::purge::{self, PurgeHook, PurgeWorker};
use crate::store::{ApplyMode, CommitWorker, Committer, Store, StoreError};

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
    Inbox(#[from] crate::inbox::InboxError),
    #[error(transparent)]
    Changes(#[from] ChangesError),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error("cannot prepare the [shop] table of the configuration: {0}")]
    Shop(#[source] rkyv::rancor::Error),
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
    pub store: Arc<Store>,
    /// Group commit of ingest requests (see [`Committer`]).
    pub committer: Committer,
    partners: ArcSwap<Partners>,
    pub artifacts: Artifacts,
    /// Change log, change windows and the base full.xml of every IOF profile.
    pub changes: Changes,
    ready: AtomicBool,
    /// Counters and histograms served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Tells the cache in front which files are stale.
    pub purge: PurgeHook,
    /// Per-partner request rate limit of the public listener.
    pub rate_limiter: RateLimiter,
    /// Serializes partner reloads, so each new file inherits grants from its predecessor.
    reload_lock: Mutex<PartnersStatus>,
    /// Wakes the publisher when a reload brings render profiles that have no files yet.
    republish_wanted: tokio::sync::Notify,
    /// `language=` profiles partners have asked for, by key: rendered from the first request
    /// on, not before (most partners never ask, and each costs a full render).
    asked: Mutex<std::collections::BTreeMap<String, crate::catalog::RenderProfile>>,
}

/// The background work [`App::open`] prepares but does not start: [`crate::server`] runs it.
pub struct Workers {
    /// The drop folder, its leftovers finished, not yet watched.
    pub inbox: crate::inbox::Inbox,
    /// The writer of [`App::committer`].
    pub committer: CommitWorker,
    /// The sender of [`App::purge`] (`None` without a purge target).
    pub purge: Option<PurgeWorker>,
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

/// A partner's entry URL (see [`App::entry_urls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryUrl {
    pub partner: String,
    pub shop: u32,
    pub url: String,
    /// False: the URL answers 403 until access is switched on.
    pub offer_access: bool,
    /// False: the file keeps only the token's hash; the URL shows `<token>`.
    pub has_token: bool,
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
    /// Partners whose cached responses were sent to the purge hook.
    pub purged: usize,
    pub elapsed: Duration,
}

impl App {
    /// Open the data directory, seed it with the demo catalog and partners in demo mode, and
    /// publish the artifacts of the current snapshot. Starts nothing: the committer, the
    /// purge sender and the drop-folder watch are returned for the caller to run (ingest
    /// requests wait until the committer runs). Blocking.
    pub fn open(config: Config) -> Result<(Arc<App>, Workers), AppError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| AppError::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        let store = Arc::new(Store::open(&config.store_dir(), config.store_options())?);
        if config.demo {
            seed_demo(&config, &store)?;
        }
        // Files a crash left half-processed are finished before anything else is served.
        let inbox =
            crate::inbox::Inbox::new(&config.inbox_dir, store.clone(), config.inbox_stable)?
                .with_import_options(crate::ingest::iof::ImportOptions {
                    base_currency: config.base_currency.clone(),
                    rates: config.rates.clone(),
                    strict: false,
                });
        inbox.recover()?;
        let mut artifacts = Artifacts::new(&config.artifacts_dir(), config.timezone.clone())?;
        artifacts.gateways =
            GatewayCache::with_fallback(config.shop.as_ref()).map_err(AppError::Shop)?;
        let partners = Partners::load(&config.partners_path(), &config)?;
        check_shops(&partners, &config, &artifacts, &store.snapshot())?;
        let (committer, commit_worker) = Committer::new(store.clone());
        let metrics = Arc::new(Metrics::new());
        let (purge, purge_worker) = PurgeHook::new(config.purge.clone(), metrics.clone());
        let rate_limiter = RateLimiter::new(config.limits.rate_limit, config.limits.rate_burst)
            .with_clock(config.clock.clone());
        let changes = Changes::open(
            &config.changes_dir(),
            &store.snapshot(),
            ChangesOptions {
                window: config.change_window,
                retention: config.change_retention,
                rebuild_at: config.base_rebuild,
                timezone: config.timezone.clone(),
                clock: config.clock.clone(),
            },
        )?;
        let app = Arc::new(App {
            config,
            store,
            committer,
            partners: ArcSwap::from_pointee(partners),
            artifacts,
            changes,
            ready: AtomicBool::new(false),
            metrics,
            purge,
            rate_limiter,
            reload_lock: Mutex::new(PartnersStatus::default()),
            republish_wanted: tokio::sync::Notify::new(),
            asked: Mutex::default(),
        });
        app.republish()?;
        let workers = Workers {
            inbox,
            committer: commit_worker,
            purge: purge_worker,
        };
        Ok((app, workers))
    }

    /// A partner asked for the `language=` profile `key`, which has no files yet: have the
    /// publisher render it (and keep it rendered while an account has it).
    pub fn ask_for_profile(&self, key: &str, profile: &crate::catalog::RenderProfile) {
        let mut asked = self.asked.lock();
        if asked.insert(key.to_string(), profile.clone()).is_none() {
            self.republish_wanted.notify_one();
        }
    }

    /// The profiles to render: the partners' own, plus the `language=` ones asked for that an
    /// account still has.
    fn render_profiles(&self) -> Vec<crate::catalog::RenderProfile> {
        let partners = self.partners();
        let mut profiles = partners.profiles();
        let mut asked = self.asked.lock();
        asked.retain(|key, _| partners.has_alternate(key));
        profiles.extend(asked.values().cloned());
        profiles
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
        let mut status = self.reload_lock.lock();
        let started = std::time::Instant::now();
        status.attempts += 1;
        let path = self.config.partners_path();
        let loaded = Partners::load(&path, &self.config).and_then(|p| {
            check_shops(&p, &self.config, &self.artifacts, &self.store.snapshot())?;
            Ok(p)
        });
        let mut partners = match loaded {
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
        // Cached copies of every partner whose access, token or settings changed are stale.
        let purge_keys = purge::partner_changes(&previous, &partners);
        let set = self.artifacts.current();
        let new_profiles = partners
            .profiles()
            .iter()
            .filter(|p| set.profile(p).is_none())
            .count();
        let profile_keys = |p: &Partners| p.profiles().iter().map(|p| p.key()).collect::<Vec<_>>();
        let profiles_changed = profile_keys(&previous) != profile_keys(&partners);
        let accounts = partners.len();
        self.partners.store(Arc::new(partners));
        // Gateways carry per-partner links; drop them so none outlives a token or account.
        self.artifacts.gateways.clear();
        // New profiles need files; profiles no partner uses any more are superseded, and the
        // republish sends their files to the purge hook.
        if new_profiles > 0 || profiles_changed {
            self.republish_wanted.notify_one();
        }
        let purged = purge_keys.len();
        self.purge.purge(purge_keys);
        status.last_error = None;
        let elapsed = started.elapsed();
        tracing::info!(
            path = %path.display(),
            accounts,
            revoked = ?revoked,
            new_profiles,
            purged,
            elapsed_us = elapsed.as_micros() as u64,
            "partners reloaded"
        );
        Ok(PartnersReload {
            accounts,
            revoked,
            new_profiles,
            purged,
            elapsed,
        })
    }

    /// The URL each partner starts from, per shop, as `serve` prints them: the gateway for
    /// IOF partners, full.csv and light.csv for CSV partners (they have no gateway). An
    /// account without a plain token shows `<token>` in its place.
    pub fn entry_urls(&self) -> Vec<EntryUrl> {
        let partners = self.partners();
        let mut out = Vec::new();
        for account in partners.accounts() {
            let token = account.plain_token.as_deref().unwrap_or("<token>");
            for &shop in &account.shops {
                let names: &[&str] = match account.profile(shop).map(|p| p.format) {
                    Some(crate::catalog::Format::Csv) => &["full.csv", "light.csv"],
                    _ => &["gateway.xml"],
                };
                for name in names {
                    let links = crate::artifacts::GatewayLinks {
                        public_url: &self.config.public_url,
                        partner: &account.id,
                        token,
                        shop,
                        language: None,
                    };
                    out.push(EntryUrl {
                        partner: account.id.clone(),
                        shop,
                        url: links.url(name),
                        offer_access: account.offer_access,
                        has_token: account.plain_token.is_some(),
                    });
                }
            }
        }
        out
    }

    /// Outcome of the partner reloads so far.
    pub fn partners_status(&self) -> PartnersStatus {
        self.reload_lock.lock().clone()
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

    /// The changes and artifacts stages, as one publishing cycle works them.
    pub fn cycle(&self) -> crate::publish::Cycle<'_> {
        crate::publish::Cycle::new(&self.changes, &self.artifacts)
    }

    /// True once artifacts of the latest snapshot are published.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && self.artifacts.current().generation == self.store.snapshot().generation()
    }

    /// Render what the current snapshot and partners need and publish it. Blocking.
    pub fn republish(&self) -> Result<(), AppError> {
        let snapshot = self.store.snapshot();
        let profiles = self.render_profiles();
        let started = std::time::Instant::now();
        let previous = self.artifacts.current();
        let set = match self
            .cycle()
            .republish(&snapshot, &profiles, self.config.clock.now())
        {
            Ok(set) => set,
            Err(e) => {
                self.metrics.artifacts_published(started.elapsed(), None, 0);
                return Err(e.into());
            }
        };
        self.metrics
            .artifacts_published(started.elapsed(), Some(set.generation), set.file_count());
        // Purge only after the new set is served, so the cache refetches new bytes.
        self.purge.purge(purge::superseded(&previous, &set));
        // Rendering touched every mapped page; serving reads rendered files, not the snapshot.
        snapshot.release_pages();
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
        let profiles = self.render_profiles();
        if self.cycle().maintain(&profiles, self.config.clock.now())? {
            self.republish()?;
        }
        Ok(())
    }

    /// Republish whenever the store publishes a new generation or a partners reload needs new
    /// profiles rendered, and cut change windows on time, until `shutdown` resolves.
    ///
    /// Two loops: light.xml follows every generation on its own (a burst of updates within
    /// `publish_coalesce` publishes once; only changed shards are rendered), so it is fresh
    /// within a second whatever the rest costs; the other files, the change log and the change
    /// windows are the work of a second loop that always takes the newest generation when it
    /// is free (one loop, so those publishes never race each other).
    pub async fn run_publisher(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let light = self.clone().light_loop();
        let full = self.clone().full_loop();
        tokio::select! {
            _ = shutdown => {}
            _ = async { tokio::join!(light, full) } => {}
        }
    }

    async fn light_loop(self: Arc<Self>) {
        let mut generations = self.store.subscribe();
        loop {
            if generations.changed().await.is_err() {
                return;
            }
            // Gather a burst: the updates acknowledged meanwhile publish together.
            tokio::time::sleep(self.config.publish_coalesce).await;
            generations.borrow_and_update();
            let app = self.clone();
            let published = tokio::task::spawn_blocking(move || {
                let snapshot = app.store.snapshot();
                let started = std::time::Instant::now();
                let previous = app.artifacts.current();
                let set = app.artifacts.publish_light(&snapshot)?;
                // The superseded light.xml (and gateways) leave the cache in front now; the
                // full publisher purges what it supersedes later.
                app.purge.purge(purge::superseded(&previous, &set));
                Ok::<_, crate::artifacts::ArtifactError>((set, started.elapsed()))
            })
            .await;
            match published {
                Ok(Ok((set, elapsed))) => tracing::debug!(
                    generation = set.generation,
                    micros = elapsed.as_micros() as u64,
                    "light.xml published"
                ),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot publish light.xml; the previous one keeps serving")
                }
                Err(e) => tracing::error!(error = %e, "the light publisher task failed"),
            }
        }
    }

    async fn full_loop(self: Arc<Self>) {
        let mut generations = self.store.subscribe();
        // After a failure, do not retry a past deadline in a tight loop.
        let mut backoff = Duration::ZERO;
        loop {
            // Deadlines are read on the app's clock, which tests move instead of waiting.
            let clock = &self.config.clock;
            let now = clock.now();
            let due = self
                .changes
                .next_deadline(now)
                .max(now.checked_add(backoff).unwrap_or(jiff::Timestamp::MAX));
            let app = self.clone();
            let work: Box<dyn FnOnce() -> Result<(), AppError> + Send> = tokio::select! {
                _ = self.republish_wanted.notified() => Box::new(move || app.republish()),
                changed = generations.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    Box::new(move || app.republish())
                }
                _ = clock.sleep_until(due) => Box::new(move || app.tick()),
            };
            // Generations published meanwhile are included in this republish.
            generations.borrow_and_update();
            let started = tokio::time::Instant::now();
            backoff = Duration::from_secs(5);
            match tokio::task::spawn_blocking(work).await {
                Ok(Ok(())) => backoff = Duration::ZERO,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot publish artifacts; the previous ones keep serving")
                }
                Err(e) => tracing::error!(error = %e, "the publisher task failed"),
            }
            tokio::time::sleep_until(started + self.config.full_publish_interval).await;
        }
    }
}

/// A partners file whose accounts name a shop without gateway metadata (in the catalog or the
/// configuration's `[shop]` table) is refused: that shop's gateway would answer 404.
fn check_shops(
    partners: &Partners,
    config: &Config,
    artifacts: &Artifacts,
    snapshot: &crate::snapshot::Snapshot,
) -> Result<(), PartnersError> {
    partners.check_shops(
        &config.partners_path(),
        |shop| artifacts.gateways.has_shop(snapshot, shop),
        |_| {
            let known: Vec<String> = snapshot
                .dicts()
                .shops
                .iter()
                .map(|s| s.id.to_native().to_string())
                .collect();
            let catalog = if known.is_empty() {
                "the catalog has no shop metadata".to_string()
            } else {
                format!("the catalog has shops {}", known.join(", "))
            };
            match artifacts.gateways.fallback_shop() {
                Some(id) => format!("{catalog} and the configuration's [shop] table is shop {id}"),
                None => format!(
                    "{catalog} and the configuration has no [shop] table to stand in for it"
                ),
            }
        },
    )
}

/// Demo mode: write the demo partners file if absent and import the demo catalog into an
/// empty store.
fn seed_demo(config: &Config, store: &Store) -> Result<(), AppError> {
    let partners = config.partners_path();
    if !partners.exists() {
        crate::partners::edit::write_atomically(&partners, DEMO_PARTNERS.as_bytes())
            .map_err(|e| AppError::Demo(e.to_string()))?;
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
