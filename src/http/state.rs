//! What the handlers of both listeners work with: handles to the stages they read or feed and
//! the configuration values they use, and nothing more.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::activity::Activity;
use crate::artifacts::Artifacts;
use crate::config::{Config, Limits};
use crate::metrics::Metrics;
use crate::partners::Partners;
use crate::publish::{Demand, Readiness};
use crate::signing::Signer;
use crate::store::{Committer, Store};

use super::RateLimiter;

/// The handles [`State::new`] takes, shared with the rest of the running origin.
pub struct Handles {
    /// The partner accounts in force, and where a request for an unrendered `language=`
    /// profile is recorded.
    pub demand: Arc<Demand>,
    pub artifacts: Arc<Artifacts>,
    pub store: Arc<Store>,
    /// Group commit of ingest requests.
    pub committer: Committer,
    pub metrics: Arc<Metrics>,
    /// Answers `/readyz`.
    pub readiness: Readiness,
    /// Partner fetches, counted as their answers end.
    pub activity: Arc<Activity>,
    /// Signs the profile URLs gateways list and verifies them on request.
    pub signer: Signer,
}

/// Shared state of the HTTP listeners.
pub struct State {
    pub demand: Arc<Demand>,
    pub artifacts: Arc<Artifacts>,
    pub store: Arc<Store>,
    pub committer: Committer,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    pub activity: Arc<Activity>,
    /// The operator's panel (`/ui/`): its sessions and the partners editor's configuration.
    pub panel: super::ui::Panel,
    /// Per-partner request rate limit of the public listener.
    pub rate_limiter: RateLimiter,
    /// The base of the links in gateways.
    pub public_url: String,
    pub timezone: jiff::tz::TimeZone,
    /// The app's clock (manual in tests): activity times, panel sessions.
    pub clock: crate::clock::Clock,
    pub limits: Limits,
    pub admin_token: Option<String>,
    pub ingest_body_limit: u64,
    pub ingest_body_timeout: Duration,
    pub ingest_max_concurrent: usize,
    /// Where ingest bodies are spooled before they are committed.
    pub spool_dir: PathBuf,
    pub signer: Signer,
    /// Each answer's `Surrogate-Key` and `Cache-Tag` headers, built once.
    pub purge_keys: super::respond::PurgeKeyCache,
    /// Stable partner URLs of files answer 302 to the signed profile URL.
    pub redirect_to_profile: bool,
    /// With an object store: ingest is acknowledged once its generation is durable there.
    pub durable: Option<crate::scaleout::Durable>,
    /// With an object store: what `/readyz` says of it.
    pub store_health: Option<crate::scaleout::StoreHealth>,
}

impl State {
    /// True on a read replica, whose files arrive from the writer a manifest at a time.
    pub fn is_replica(&self) -> bool {
        matches!(
            self.store_health,
            Some(crate::scaleout::StoreHealth::Replica(_))
        )
    }

    /// The listeners' state from `handles` and the values of `config` they read; the rate
    /// limiter is built here.
    pub fn new(handles: Handles, config: &Config) -> State {
        let Handles {
            demand,
            artifacts,
            store,
            committer,
            metrics,
            readiness,
            activity,
            signer,
        } = handles;
        State {
            demand,
            artifacts,
            store,
            committer,
            metrics,
            readiness,
            activity,
            panel: super::ui::Panel::new(config),
            rate_limiter: RateLimiter::new(config.limits.rate_limit, config.limits.rate_burst)
                .with_clock(config.clock.clone()),
            public_url: config.public_url.clone(),
            timezone: config.timezone.clone(),
            clock: config.clock.clone(),
            limits: config.limits.clone(),
            admin_token: config.admin_token.clone(),
            ingest_body_limit: config.ingest_body_limit,
            ingest_body_timeout: config.ingest_body_timeout,
            ingest_max_concurrent: config.ingest_max_concurrent,
            spool_dir: config.store_dir().join("spool"),
            signer,
            purge_keys: Default::default(),
            redirect_to_profile: config.redirect_to_profile,
            durable: None,
            store_health: None,
        }
    }

    /// The partner accounts in force.
    pub fn partners(&self) -> Arc<Partners> {
        self.demand.partners()
    }
}
