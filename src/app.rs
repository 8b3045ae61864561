//! The running origin: the store, the partner accounts and the published artifacts, wired
//! together; the publisher ([`crate::publish::Publisher`]) keeps the artifacts current.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use crate::artifacts::{ArtifactError, Artifacts, GatewayCache};
use crate::catalog::rules::Ids;
use crate::changes::{Changes, ChangesError, ChangesOptions};
use crate::config::{Config, Role};
use crate::ingest::{self, IngestError};
use crate::metrics::Metrics;
use crate::partners::watch::PartnersWatcher;
use crate::partners::{Partners, PartnersError, DEMO_PARTNERS};
use crate::publish::{Demand, Publisher, Readiness};
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
    /// The partner accounts in force and the profiles the publisher renders for them.
    pub demand: Arc<Demand>,
    pub artifacts: Arc<Artifacts>,
    /// Change log, change windows and the base full.xml of every IOF profile.
    pub changes: Arc<Changes>,
    /// True once the publisher has published artifacts of the latest snapshot.
    pub readiness: Readiness,
    /// Counters and histograms served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Tells the cache in front which files are stale.
    pub purge: Arc<PurgeHook>,
    /// Serializes partner reloads, so each new file inherits grants from its predecessor.
    reload_lock: Mutex<PartnersStatus>,
}

/// The background work [`App::open`] prepares but does not start: [`crate::server`] runs it.
pub struct Workers {
    /// The drop folder, its leftovers finished, not yet watched.
    pub inbox: crate::inbox::Inbox,
    /// The writer of [`App::committer`].
    pub committer: CommitWorker,
    /// The sender of [`App::purge`] (`None` without a purge target).
    pub purge: Option<PurgeWorker>,
    /// The loops that keep the artifacts current (the first publish is done).
    pub publisher: Publisher,
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
    /// purge sender, the drop-folder watch and the publisher are returned for the caller to run (ingest
    /// requests wait until the committer runs). Blocking.
    pub fn open(config: Config) -> Result<(Arc<App>, Workers), AppError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| AppError::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        let started = std::time::Instant::now();
        let store = Arc::new(Store::open(&config.store_dir(), config.store_options())?);
        let store_opened = started.elapsed();
        if config.demo {
            seed_demo(&config, &store)?;
        }
        let metrics = Arc::new(Metrics::new());
        metrics.store_opened(store.open_stats());
        // Files a crash left half-processed are finished before anything else is served.
        let inbox =
            crate::inbox::Inbox::new(&config.inbox_dir, store.clone(), config.inbox_stable)?
                .with_import_options(crate::ingest::iof::ImportOptions {
                    base_currency: config.base_currency.clone(),
                    rates: config.rates.clone(),
                    strict: false,
                })
                .with_metrics(metrics.clone());
        inbox.recover()?;
        let mut artifacts = Artifacts::new(&config.artifacts_dir(), config.timezone.clone())?;
        artifacts.gateways =
            GatewayCache::with_fallback(config.shop.as_ref()).map_err(AppError::Shop)?;
        let partners = Partners::load(&config.partners_path(), &config)?;
        check_shops(&partners, &config, &artifacts, &store.snapshot())?;
        partners.check_rules(&config.partners_path(), &Ids::of(store.snapshot().dicts()))?;
        let (committer, commit_worker) = Committer::new(store.clone());
        let (purge, purge_worker) = PurgeHook::new(config.purge.clone(), metrics.clone());
        let options = ChangesOptions {
            window: config.change_window,
            retention: config.change_retention,
            rebuild_at: config.base_rebuild,
            timezone: config.timezone.clone(),
            clock: config.clock.clone(),
        };
        // A read replica lists the bases and change files its writer cut, from the writer's
        // checkpoint that comes with each manifest: cutting its own would name other files.
        let changes_from = started.elapsed();
        let changes = if config.role == Role::Replica && config.object_store.is_some() {
            Changes::follow(&config.changes_dir(), options)?
        } else {
            Changes::open(&config.changes_dir(), &store.snapshot(), options)?
        };
        let changes_opened = started.elapsed();
        let publisher = Publisher {
            store: store.clone(),
            changes: Arc::new(changes),
            artifacts: Arc::new(artifacts),
            purge: Arc::new(purge),
            metrics,
            demand: Arc::new(Demand::new(partners)),
            ready: Arc::new(AtomicBool::new(false)),
            clock: config.clock.clone(),
            publish_coalesce: config.publish_coalesce,
            full_publish_interval: config.full_publish_interval,
        };
        publisher.republish_identity()?;
        // Where a start-up's time goes (a cold restart is measured against a target).
        tracing::info!(
            store_ms = store_opened.as_millis() as u64,
            before_changes_ms = (changes_from - store_opened).as_millis() as u64,
            changes_ms = (changes_opened - changes_from).as_millis() as u64,
            artifacts_ms = (started.elapsed() - changes_opened).as_millis() as u64,
            "opened"
        );
        let app = Arc::new(App {
            config,
            store,
            committer,
            demand: publisher.demand.clone(),
            artifacts: publisher.artifacts.clone(),
            changes: publisher.changes.clone(),
            readiness: publisher.readiness(),
            metrics: publisher.metrics.clone(),
            purge: publisher.purge.clone(),
            reload_lock: Mutex::new(PartnersStatus::default()),
        });
        let workers = Workers {
            inbox,
            committer: commit_worker,
            purge: purge_worker,
            publisher,
        };
        Ok((app, workers))
    }

    /// A partner asked for the `language=` profile `key`, which has no files yet: have the
    /// publisher render it (and keep it rendered while an account has it).
    pub fn ask_for_profile(&self, key: &str, profile: &crate::catalog::RenderProfile) {
        self.demand.ask_for_profile(key, profile);
    }

    /// The partner accounts in force.
    pub fn partners(&self) -> Arc<Partners> {
        self.demand.partners()
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
            let snapshot = self.store.snapshot();
            check_shops(&p, &self.config, &self.artifacts, &snapshot)?;
            p.check_rules(&path, &Ids::of(snapshot.dicts()))?;
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
        let previous = self.demand.partners();
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
        self.demand.set_partners(partners);
        // Gateways carry per-partner links; drop them so none outlives a token or account.
        self.artifacts.gateways.clear();
        // New profiles need files; profiles no partner uses any more are superseded, and the
        // republish sends their files to the purge hook.
        if new_profiles > 0 || profiles_changed {
            self.demand.want_republish();
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

    /// True once artifacts of the latest snapshot are published.
    pub fn is_ready(&self) -> bool {
        self.readiness.is_ready()
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
            records = report.applied,
            products = store.snapshot().len(),
            generation = report.generation,
            "imported the demo catalog"
        );
    }
    Ok(())
}
