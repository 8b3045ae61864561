//! The publisher: the two loops that keep the artifacts in step with the store, the partners'
//! render profiles and the clock, as one of the server's tasks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::{Cycle, PublishError};
use crate::artifacts::Artifacts;
use crate::catalog::RenderProfile;
use crate::changes::Changes;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::partners::Partners;
use crate::purge::{self, PurgeHook};
use crate::store::Store;

/// What the publisher renders: the partner accounts in force and the `language=` profiles
/// partners have asked for. Shared by the partner reloads, the feeds and the publisher.
pub struct Demand {
    partners: ArcSwap<Partners>,
    /// `language=` profiles partners have asked for, by key: rendered from the first request
    /// on, not before (most partners never ask, and each costs a full render).
    asked: Mutex<BTreeMap<String, RenderProfile>>,
    /// Wakes the publisher when profiles without files are wanted.
    wanted: tokio::sync::Notify,
}

impl Demand {
    pub fn new(partners: Partners) -> Demand {
        Demand {
            partners: ArcSwap::from_pointee(partners),
            asked: Mutex::default(),
            wanted: tokio::sync::Notify::new(),
        }
    }

    /// The partner accounts in force.
    pub fn partners(&self) -> Arc<Partners> {
        self.partners.load_full()
    }

    /// Put `partners` in force (the publisher picks up their profiles on its next cycle;
    /// call [`Demand::want_republish`] when they need files now).
    pub fn set_partners(&self, partners: Partners) {
        self.partners.store(Arc::new(partners));
    }

    /// Have the publisher republish soon, off the caller's path.
    pub fn want_republish(&self) {
        self.wanted.notify_one();
    }

    /// A partner asked for the `language=` profile `key`, which has no files yet: have the
    /// publisher render it (and keep it rendered while an account has it).
    pub fn ask_for_profile(&self, key: &str, profile: &RenderProfile) {
        let mut asked = self.asked.lock();
        if asked.insert(key.to_string(), profile.clone()).is_none() {
            self.wanted.notify_one();
        }
    }

    /// The profiles to render: the partners' own, plus the `language=` ones asked for that an
    /// account still has.
    pub fn render_profiles(&self) -> Vec<RenderProfile> {
        let partners = self.partners();
        let mut profiles = partners.profiles();
        let mut asked = self.asked.lock();
        asked.retain(|key, _| partners.has_alternate(key));
        profiles.extend(asked.values().cloned());
        profiles
    }
}

/// The readiness check: true once artifacts of the latest snapshot are published.
#[derive(Clone)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    artifacts: Arc<Artifacts>,
    store: Arc<Store>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && self.artifacts.current().generation == self.store.snapshot().generation()
            && self.store.damage().is_none()
    }

    /// Why the node is not ready although it publishes: the scrub found a snapshot file
    /// damaged (the files already rendered keep serving; a restart falls back).
    pub fn problem(&self) -> Option<String> {
        self.store.damage()
    }
}

/// The handles the publisher works with.
#[derive(Clone)]
pub struct Publisher {
    pub store: Arc<Store>,
    pub changes: Arc<Changes>,
    pub artifacts: Arc<Artifacts>,
    pub purge: Arc<PurgeHook>,
    pub metrics: Arc<Metrics>,
    pub demand: Arc<Demand>,
    /// Set once a full publish succeeded (see the readiness check).
    pub ready: Arc<AtomicBool>,
    /// Deadlines are read on this clock, which tests move instead of waiting.
    pub clock: Clock,
    /// How long a burst of updates is gathered before light.xml is republished.
    pub publish_coalesce: Duration,
    /// The least time between two starts of the full loop's work.
    pub full_publish_interval: Duration,
}

impl Publisher {
    /// The readiness check of what this publisher publishes.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            ready: self.ready.clone(),
            artifacts: self.artifacts.clone(),
            store: self.store.clone(),
        }
    }

    /// The changes and artifacts stages, as one publishing cycle works them.
    pub fn cycle(&self) -> Cycle<'_> {
        Cycle::new(&self.changes, &self.artifacts)
    }

    /// Render what the current snapshot and partners need and publish it, then its gzip
    /// forms. Blocking.
    pub fn republish(&self) -> Result<(), PublishError> {
        self.republish_identity()?;
        self.compress(true);
        Ok(())
    }

    /// Compress what the served set still lacks (see [`Artifacts::compress_pending`]), and
    /// with `then_purge` purge the responses it improves (a cache may hold identity for gzip
    /// clients; at start-up nothing was purged for the identity set either, and what a cache
    /// holds is correct bytes until its TTL). A failure is logged: identity keeps serving,
    /// and the next publish tries again. Blocking.
    pub fn compress(&self, then_purge: bool) {
        let started = std::time::Instant::now();
        let previous = self.artifacts.current();
        match self.artifacts.compress_pending() {
            Ok(set) if !Arc::ptr_eq(&set, &previous) => {
                if then_purge {
                    self.purge.purge(purge::superseded(&previous, &set));
                }
                tracing::info!(
                    generation = set.generation,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "gzip forms published"
                );
            }
            Ok(_) => {}
            Err(e) if e.interrupted() => {
                tracing::info!("compression stopped for the shutdown; the next start finishes it")
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot compress artifacts; identity keeps serving")
            }
        }
    }

    /// Render what the current snapshot and partners need and publish it in identity: the
    /// server is ready then, before any gzip form exists. Blocking.
    pub fn republish_identity(&self) -> Result<(), PublishError> {
        let snapshot = self.store.snapshot();
        let profiles = self.demand.render_profiles();
        let started = std::time::Instant::now();
        let previous = self.artifacts.current();
        let set = match self
            .cycle()
            .republish(&snapshot, &profiles, self.clock.now())
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
    pub fn tick(&self) -> Result<(), PublishError> {
        let profiles = self.demand.render_profiles();
        if self.cycle().maintain(&profiles, self.clock.now())? {
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
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let this = Arc::new(self);
        let light = this.clone().light_loop();
        let full = this.clone().full_loop();
        tokio::select! {
            _ = shutdown => {}
            _ = async { tokio::join!(light, full) } => {}
        }
        // A blocking compression outlives the loops dropped above; the runtime would wait
        // for it.
        this.artifacts.stop_compressing();
    }

    async fn light_loop(self: Arc<Self>) {
        let mut generations = self.store.subscribe();
        loop {
            if generations.changed().await.is_err() {
                return;
            }
            // Gather a burst: the updates acknowledged meanwhile publish together.
            tokio::time::sleep(self.publish_coalesce).await;
            generations.borrow_and_update();
            let this = self.clone();
            let published = tokio::task::spawn_blocking(move || {
                let snapshot = this.store.snapshot();
                let started = std::time::Instant::now();
                let previous = this.artifacts.current();
                let set = this.artifacts.publish_light(&snapshot)?;
                // The superseded light.xml (and gateways) leave the cache in front now; the
                // full publisher purges what it supersedes later.
                this.purge.purge(purge::superseded(&previous, &set));
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
        // The start published identity only (ready sooner): the light fragments it adopted
        // are mapped and the gzip forms follow here.
        let this = self.clone();
        let warm_up = move || {
            this.artifacts.map_fragments();
            this.compress(false)
        };
        if let Err(e) = tokio::task::spawn_blocking(warm_up).await {
            tracing::error!(error = %e, "the compression task failed");
        }
        // After a failure, do not retry a past deadline in a tight loop.
        let mut backoff = Duration::ZERO;
        loop {
            let clock = &self.clock;
            let now = clock.now();
            let due = self
                .changes
                .next_deadline(now)
                .max(now.checked_add(backoff).unwrap_or(jiff::Timestamp::MAX));
            let this = self.clone();
            let work: Box<dyn FnOnce() -> Result<(), PublishError> + Send> = tokio::select! {
                _ = self.demand.wanted.notified() => Box::new(move || this.republish()),
                changed = generations.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    Box::new(move || this.republish())
                }
                _ = clock.sleep_until(due) => Box::new(move || this.tick()),
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
            tokio::time::sleep_until(started + self.full_publish_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn partners(languages: &str) -> Partners {
        let text = format!(
            "[[partner]]\nid = \"a\"\ntoken = \"token-a-0000000000\"\nshops = [1]\nlanguages = {languages}\n"
        );
        let config = Config::for_data_dir(Path::new("unused"));
        Partners::parse(&text, Path::new("partners.toml"), &config).unwrap()
    }

    async fn woken(demand: &Demand) -> bool {
        tokio::time::timeout(Duration::from_millis(50), demand.wanted.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn an_asked_profile_wakes_the_publisher_once_and_is_rendered_while_an_account_has_it() {
        let demand = Demand::new(partners(r#"["pol", "eng"]"#));
        let own = demand.render_profiles();
        assert_eq!(own.len(), 1);
        let current = demand.partners();
        let account = current.accounts().next().unwrap();
        let (profile, key) = account.profile_in(1, Some("eng")).unwrap();

        demand.ask_for_profile(key, profile);
        assert!(woken(&demand).await);
        // Asking again for a profile already asked for is no new work.
        demand.ask_for_profile(key, profile);
        assert!(!woken(&demand).await);
        let keys = |d: &Demand| {
            d.render_profiles()
                .iter()
                .map(|p| p.key())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&demand), [own[0].key(), profile.key()]);

        // The account no longer has the language: the profile is not rendered any more.
        demand.set_partners(partners(r#"["pol"]"#));
        let own = demand.partners().profiles();
        assert_eq!(keys(&demand), [own[0].key()]);
        assert_ne!(own[0].key(), profile.key());
    }
}
