//! The load-test harness: `iofd load` plays many partners against an origin (iofd itself, or
//! a CDN in front of it), each behaving like a real IOF importer, and measures speed and
//! correctness.
//!
//! Each simulated partner polls its gateway (conditionally, with `If-None-Match`), fetches
//! every listed file whose `hash` changed (again conditionally), checks each body's MD5 against
//! the gateway, keeps a local copy of the offer (full.xml with the listed change files applied)
//! and, when the base full.xml changes, compares its copy with the new one. Some partners ask
//! for gzip, some downloads are resumed with `Range`/`If-Range`. A mutator can push stock and
//! price updates through the admin API and measure freshness: from the acknowledgement to the
//! first partner seeing the new value in light.xml.
//!
//! Parsing is shared: partners that download the same bytes (same MD5) reuse one parsed copy,
//! so the harness spends its CPU on requests, not on parsing the same file 200 times, and its
//! memory stays at a few parsed copies however many partners it plays.

mod cache;
mod client;
mod feed;
mod mutator;
mod offer;
mod partner;
mod report;

use parking_lot::Mutex;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use client::is_loopback;
pub use feed::{parse_gateway, parse_light, GatewayDoc, LightIndex, Listed};
pub use offer::{parse_change, Applied, OfferDigest, OfferError, ProductDigest};
pub use report::{human_bytes, BaseReport, KindReport, MutatorReport, Percentiles, Report, Stats};

use cache::ParseCache;
use mutator::Pending;

/// Why a load test could not run (its findings are in the [`Report`], not here).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no gateway URL: give --gateway, --partners-file or a scenario with `gateways`")]
    NoGateways,
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    Scenario { path: PathBuf, message: String },
    #[error("cannot start the mutator: {0}")]
    Mutator(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the report: {0}")]
    Output(String),
    #[error("the load test failed: {errors} error(s), {mismatches} hash mismatch(es)")]
    Failed { errors: u64, mismatches: u64 },
}

/// `iofd load` flags. Each may also come from a scenario file (`--scenario`, TOML, the same
/// names with `_`); a flag beats the file.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct LoadArgs {
    /// Base URL that gateway paths (`/feeds/...`) and partners files resolve against.
    #[arg(long)]
    pub target: Option<String>,
    /// A partner's gateway URL (absolute, or a path under --target); repeat for several.
    /// Partners take them in turn.
    #[arg(long = "gateway")]
    pub gateways: Vec<String>,
    /// A TOML scenario file with any of these settings, `gateways = [...]` among them.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Take gateway URLs from a partners.toml (accounts with a plain `token` only).
    #[arg(long)]
    pub partners_file: Option<PathBuf>,
    /// Base URL of the gateways built from --partners-file (default: --target).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Number of simulated partners [default: 20].
    #[arg(long)]
    pub partners: Option<usize>,
    /// Length of the run in seconds [default: 30].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds between a partner's gateway polls [default: 1].
    #[arg(long)]
    pub poll_interval: Option<f64>,
    /// Pause between a partner's requests within one poll, in milliseconds [default: 0].
    #[arg(long)]
    pub think_time_ms: Option<u64>,
    /// Most requests in flight at once, over all partners (0: no limit) [default: 0].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Share of downloads made in two Range requests joined with If-Range [default: 0.1].
    #[arg(long)]
    pub range_share: Option<f64>,
    /// Share of partners sending Accept-Encoding: gzip [default: 0.25].
    #[arg(long)]
    pub gzip_share: Option<f64>,
    /// Seconds one request may take, body included [default: 60].
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Seed for every random choice, so runs repeat [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only check MD5s: do not parse full.xml and change files into a local copy.
    #[arg(long)]
    pub no_offer_check: bool,
    /// Someone else writes to the catalog during the run: a local copy that differs from a
    /// new full.xml is reported, not counted as an error.
    #[arg(long)]
    pub external_writes: bool,
    /// Admin listener URL: turns the mutator on (stock and price updates).
    #[arg(long)]
    pub admin_url: Option<String>,
    /// Bearer token of the admin API.
    #[arg(long, env = "IOFD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Updates per second the mutator sends [default: 2].
    #[arg(long)]
    pub mutate_rate: Option<f64>,
    /// How many products the mutator picks to update [default: 20].
    #[arg(long)]
    pub mutate_products: Option<usize>,
    /// Share of price updates among the mutator's updates (the rest are stock) [default: 0.3].
    #[arg(long)]
    pub price_share: Option<f64>,
    /// Print the report as JSON on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Allow targets that are not loopback addresses.
    #[arg(long)]
    pub allow_remote: bool,
}

/// A scenario file: the flags of [`LoadArgs`] as TOML keys.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    target: Option<String>,
    #[serde(default)]
    gateways: Vec<String>,
    partners_file: Option<PathBuf>,
    public_url: Option<String>,
    partners: Option<usize>,
    duration: Option<f64>,
    poll_interval: Option<f64>,
    think_time_ms: Option<u64>,
    concurrency: Option<usize>,
    range_share: Option<f64>,
    gzip_share: Option<f64>,
    timeout: Option<f64>,
    seed: Option<u64>,
    offer_check: Option<bool>,
    external_writes: Option<bool>,
    admin_url: Option<String>,
    admin_token: Option<String>,
    mutate_rate: Option<f64>,
    mutate_products: Option<usize>,
    price_share: Option<f64>,
    allow_remote: Option<bool>,
}

/// The mutator's settings.
#[derive(Clone, Debug)]
pub struct MutatorOptions {
    /// Admin listener base URL (`http://127.0.0.1:8081`).
    pub admin_url: String,
    pub token: String,
    /// Updates per second.
    pub rate: f64,
    /// Products to pick for updates.
    pub products: usize,
    /// Share of price updates (the rest are stock updates).
    pub price_share: f64,
}

/// A resolved load test.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Absolute gateway URLs; partner `i` uses `gateways[i % len]`.
    pub gateways: Vec<String>,
    pub partners: usize,
    pub duration: Duration,
    pub poll_interval: Duration,
    pub think_time: Duration,
    /// Most requests in flight (0: unlimited).
    pub concurrency: usize,
    pub range_share: f64,
    pub gzip_share: f64,
    pub timeout: Duration,
    pub seed: u64,
    /// Keep and check a parsed local copy of the offer.
    pub offer_check: bool,
    pub external_writes: bool,
    pub mutator: Option<MutatorOptions>,
    /// Print a progress line on stderr every second.
    pub progress: bool,
    pub allow_remote: bool,
}

impl LoadOptions {
    /// Defaults for `gateways`: 20 partners for 30 s, polling every second.
    pub fn new(gateways: Vec<String>) -> LoadOptions {
        LoadOptions {
            gateways,
            partners: 20,
            duration: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            think_time: Duration::ZERO,
            concurrency: 0,
            range_share: 0.1,
            gzip_share: 0.25,
            timeout: Duration::from_secs(60),
            seed: 1,
            offer_check: true,
            external_writes: false,
            mutator: None,
            progress: false,
            allow_remote: false,
        }
    }

    /// Resolve flags, the scenario file and defaults.
    pub fn from_args(args: &LoadArgs) -> Result<LoadOptions, LoadError> {
        let scenario = match &args.scenario {
            Some(path) => read_scenario(path)?,
            None => Scenario::default(),
        };
        let target = args.target.clone().or(scenario.target);
        let mut gateways: Vec<String> = if args.gateways.is_empty() {
            scenario.gateways
        } else {
            args.gateways.clone()
        };
        if let Some(path) = args.partners_file.clone().or(scenario.partners_file) {
            let base = args
                .public_url
                .clone()
                .or(scenario.public_url)
                .or(target.clone())
                .ok_or_else(|| {
                    LoadError::Invalid("--partners-file needs --public-url or --target".into())
                })?;
            gateways.extend(gateways_from_partners(&path, &base)?);
        }
        let gateways = gateways
            .into_iter()
            .map(|g| resolve(&g, target.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        if gateways.is_empty() {
            return Err(LoadError::NoGateways);
        }
        let mut o = LoadOptions::new(gateways);
        let secs = |v: f64, name: &str| -> Result<Duration, LoadError> {
            if v.is_finite() && v > 0.0 && v < 1e7 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(LoadError::Invalid(format!(
                    "{name} must be a positive number of seconds"
                )))
            }
        };
        if let Some(n) = args.partners.or(scenario.partners) {
            o.partners = n;
        }
        if let Some(v) = args.duration.or(scenario.duration) {
            o.duration = secs(v, "duration")?;
        }
        if let Some(v) = args.poll_interval.or(scenario.poll_interval) {
            o.poll_interval = secs(v, "poll_interval")?;
        }
        if let Some(v) = args.timeout.or(scenario.timeout) {
            o.timeout = secs(v, "timeout")?;
        }
        if let Some(ms) = args.think_time_ms.or(scenario.think_time_ms) {
            o.think_time = Duration::from_millis(ms);
        }
        if let Some(n) = args.concurrency.or(scenario.concurrency) {
            o.concurrency = n;
        }
        if let Some(v) = args.range_share.or(scenario.range_share) {
            o.range_share = v;
        }
        if let Some(v) = args.gzip_share.or(scenario.gzip_share) {
            o.gzip_share = v;
        }
        if let Some(v) = args.seed.or(scenario.seed) {
            o.seed = v;
        }
        o.offer_check = !args.no_offer_check && scenario.offer_check.unwrap_or(true);
        o.external_writes = args.external_writes || scenario.external_writes.unwrap_or(false);
        o.allow_remote = args.allow_remote || scenario.allow_remote.unwrap_or(false);
        o.progress = !args.quiet;
        if let Some(admin_url) = args.admin_url.clone().or(scenario.admin_url) {
            let token = args
                .admin_token
                .clone()
                .or(scenario.admin_token)
                .ok_or_else(|| {
                    LoadError::Invalid(
                        "the mutator needs --admin-token (or IOFD_ADMIN_TOKEN)".into(),
                    )
                })?;
            o.mutator = Some(MutatorOptions {
                admin_url: admin_url.trim_end_matches('/').to_string(),
                token,
                rate: args.mutate_rate.or(scenario.mutate_rate).unwrap_or(2.0),
                products: args
                    .mutate_products
                    .or(scenario.mutate_products)
                    .unwrap_or(20),
                price_share: args.price_share.or(scenario.price_share).unwrap_or(0.3),
            });
        }
        o.validate()?;
        Ok(o)
    }

    /// Check ranges and shares.
    pub fn validate(&self) -> Result<(), LoadError> {
        let share = |v: f64, name: &str| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(LoadError::Invalid(format!(
                    "{name} must be between 0 and 1"
                )))
            }
        };
        share(self.range_share, "range_share")?;
        share(self.gzip_share, "gzip_share")?;
        if self.gateways.is_empty() {
            return Err(LoadError::NoGateways);
        }
        if self.partners == 0 || self.partners > 1_000_000 {
            return Err(LoadError::Invalid(
                "partners must be between 1 and 1000000".into(),
            ));
        }
        if let Some(m) = &self.mutator {
            share(m.price_share, "price_share")?;
            if !(m.rate.is_finite() && m.rate > 0.0 && m.rate <= 10_000.0) {
                return Err(LoadError::Invalid(
                    "mutate_rate must be between 0 and 10000 per second".into(),
                ));
            }
            if m.products == 0 {
                return Err(LoadError::Invalid(
                    "mutate_products must be positive".into(),
                ));
            }
        }
        for url in self
            .gateways
            .iter()
            .chain(self.mutator.as_ref().map(|m| &m.admin_url))
        {
            let uri: http::Uri = url
                .parse()
                .map_err(|_| LoadError::Invalid(format!("{url}: not a URL")))?;
            if uri.scheme_str() != Some("http") {
                return Err(LoadError::Invalid(format!("{url}: only http:// URLs")));
            }
            let host = uri.host().unwrap_or("");
            if !self.allow_remote && !is_loopback(host) {
                return Err(LoadError::Invalid(format!(
                    "{url}: not a loopback address; pass --allow-remote to load a remote host"
                )));
            }
        }
        Ok(())
    }
}

fn read_scenario(path: &Path) -> Result<Scenario, LoadError> {
    let err = |message: String| LoadError::Scenario {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(e.to_string()))
}

fn resolve(gateway: &str, target: Option<&str>) -> Result<String, LoadError> {
    if gateway.starts_with("http://") || gateway.starts_with("https://") {
        return Ok(gateway.to_string());
    }
    match target {
        Some(t) if gateway.starts_with('/') => Ok(format!("{}{gateway}", t.trim_end_matches('/'))),
        _ => Err(LoadError::Invalid(format!(
            "{gateway}: a gateway path needs --target"
        ))),
    }
}

/// Gateway URLs of every account with a plain token and offer access, for each of its shops.
fn gateways_from_partners(path: &Path, base: &str) -> Result<Vec<String>, LoadError> {
    let err = |message: String| LoadError::Scenario {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let file: crate::partners::PartnersFile =
        toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let base = base.trim_end_matches('/');
    let mut out = Vec::new();
    for p in file.partners.iter().filter(|p| p.offer_access) {
        // Accounts stored as hashes cannot be played: the harness needs the token itself.
        let Some(token) = &p.token else { continue };
        for shop in &p.shops {
            out.push(format!("{base}/feeds/{}/{token}/{shop}/gateway.xml", p.id));
        }
    }
    if out.is_empty() {
        return Err(err(
            "no account with a plain `token` and offer access (hashed tokens cannot be played)"
                .into(),
        ));
    }
    Ok(out)
}

/// State shared by the partner tasks and the mutator.
pub(crate) struct Shared {
    pub opts: LoadOptions,
    pub stats: Stats,
    /// Parsed full.xml by MD5, and local copies by state key (base MD5 + change MD5s).
    pub offers: ParseCache<OfferDigest>,
    /// Parsed change files by MD5.
    pub changes: ParseCache<Vec<ProductDigest>>,
    /// light.xml indexes (watched products only) by MD5.
    pub lights: ParseCache<LightIndex>,
    /// Products the mutator updates (light.xml is indexed for these only).
    pub watch: Option<HashSet<u64>>,
    pub pending: Mutex<Pending>,
    /// Products the mutator sent an update for during the run.
    pub touched: Mutex<HashSet<u64>>,
    limiter: Option<tokio::sync::Semaphore>,
    pub deadline: Instant,
}

impl Shared {
    /// Is the run still going?
    pub fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// Wait for a request slot (the --concurrency limit).
    pub async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.limiter {
            Some(s) => s.acquire().await.ok(),
            None => None,
        }
    }
}

/// Run a load test. Returns the report; its [`Report::passed`] says whether it found errors.
pub async fn run(opts: LoadOptions) -> Result<Report, LoadError> {
    opts.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let targets = match &opts.mutator {
        Some(m) => Some(mutator::discover(&opts, m, &mut rng).await?),
        None => None,
    };
    let watch = targets
        .as_ref()
        .map(|t| t.iter().map(|t| t.product).collect::<HashSet<u64>>());
    let started = Instant::now();
    let shared = Arc::new(Shared {
        stats: Stats::default(),
        offers: ParseCache::default(),
        changes: ParseCache::default(),
        lights: ParseCache::default(),
        watch,
        pending: Mutex::new(Pending::default()),
        touched: Mutex::new(HashSet::new()),
        limiter: (opts.concurrency > 0).then(|| tokio::sync::Semaphore::new(opts.concurrency)),
        deadline: started + opts.duration,
        opts: opts.clone(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..opts.partners {
        let gateway = opts.gateways[i % opts.gateways.len()].clone();
        let seed = opts.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let gzip = rng.gen_bool(opts.gzip_share);
        let shared = shared.clone();
        tasks.spawn(partner::Partner::new(i, gateway, seed, gzip, shared).run());
    }
    let mutator_task = match (targets, &opts.mutator) {
        (Some(targets), Some(m)) => Some(tokio::spawn(mutator::run(
            shared.clone(),
            m.clone(),
            targets,
            ChaCha8Rng::seed_from_u64(opts.seed.wrapping_add(7)),
        ))),
        _ => None,
    };
    let progress = opts
        .progress
        .then(|| tokio::spawn(progress_line(shared.clone(), started)));
    // Requests in flight at the deadline finish: each is bounded by the request timeout (and
    // times out as an error), and no partner starts a new one after the deadline. Cutting
    // them sooner would count a slow but healthy download as a failure.
    let grace = opts.timeout;
    let drained = tokio::time::timeout(opts.duration + grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
        shared.stats.error("unfinished_at_deadline");
    }
    if let Some(mut m) = mutator_task {
        // It stops sending at the deadline and waits for the updates in flight.
        if tokio::time::timeout(grace, &mut m).await.is_err() {
            m.abort();
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    let elapsed = started.elapsed();
    let unseen_grace = (opts.poll_interval * 3).max(Duration::from_secs(5));
    let unseen = shared
        .pending
        .lock()
        .unseen_before(Instant::now().checked_sub(unseen_grace).unwrap_or(started));
    Ok(shared.stats.report(elapsed, opts.partners, unseen))
}

async fn progress_line(shared: Arc<Shared>, started: Instant) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_req, mut last_bytes) = (0u64, 0u64);
    loop {
        tick.tick().await;
        let s = &shared.stats;
        let (req, bytes) = (s.requests.load(Relaxed), s.bytes.load(Relaxed));
        let fresh = s
            .freshness_p50()
            .map(|d| format!("  freshness p50 {} ms", d.as_millis()))
            .unwrap_or_default();
        eprintln!(
            "[{:>4.0}s] {:>7} req/s {:>10}/s  errors {}  mismatches {}{}",
            started.elapsed().as_secs_f64(),
            req - last_req,
            human_bytes((bytes - last_bytes) as f64),
            s.error_count.load(Relaxed),
            s.mismatches.load(Relaxed),
            fresh
        );
        (last_req, last_bytes) = (req, bytes);
    }
}

/// `iofd load`: run, print the report (JSON on stdout with `--json`, else the summary), and
/// fail when the run found errors or mismatches.
pub fn main(args: LoadArgs) -> Result<(), LoadError> {
    let opts = LoadOptions::from_args(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)?;
    eprintln!(
        "iofd load: {} partners on {} gateway URL(s) for {:.0} s{}",
        opts.partners,
        opts.gateways.len(),
        opts.duration.as_secs_f64(),
        if opts.mutator.is_some() {
            ", mutator on"
        } else {
            ""
        }
    );
    let report = runtime.block_on(run(opts))?;
    if args.json {
        let json =
            serde_json::to_string_pretty(&report).map_err(|e| LoadError::Output(e.to_string()))?;
        println!("{json}");
        eprint!("{}", report.summary());
    } else {
        print!("{}", report.summary());
    }
    if report.passed() {
        Ok(())
    } else {
        Err(LoadError::Failed {
            errors: report.errors.values().sum(),
            mismatches: report.hash_mismatches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_scenario_and_paths_resolve_against_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "target = \"http://127.0.0.1:9\"\ngateways = [\"/feeds/a/t/1/gateway.xml\"]\npartners = 7\nduration = 2.5\nrange_share = 0.5\n",
        )
        .unwrap();
        let args = LoadArgs {
            scenario: Some(path.clone()),
            partners: Some(9),
            ..LoadArgs::default()
        };
        let o = LoadOptions::from_args(&args).unwrap();
        assert_eq!(o.gateways, ["http://127.0.0.1:9/feeds/a/t/1/gateway.xml"]);
        assert_eq!(o.partners, 9);
        assert_eq!(o.duration, Duration::from_millis(2500));
        assert_eq!(o.range_share, 0.5);
        assert!(o.mutator.is_none());
        std::fs::write(&path, "partnrs = 3\n").unwrap();
        assert!(matches!(
            LoadOptions::from_args(&args),
            Err(LoadError::Scenario { .. })
        ));
    }

    #[test]
    fn bad_settings_are_refused() {
        let base = LoadArgs {
            gateways: vec!["http://127.0.0.1:1/g".into()],
            ..LoadArgs::default()
        };
        assert!(LoadOptions::from_args(&base).is_ok());
        for args in [
            LoadArgs {
                gateways: vec![],
                ..base.clone()
            },
            LoadArgs {
                gzip_share: Some(1.5),
                ..base.clone()
            },
            LoadArgs {
                duration: Some(-1.0),
                ..base.clone()
            },
            LoadArgs {
                partners: Some(0),
                ..base.clone()
            },
            LoadArgs {
                gateways: vec!["http://192.0.2.7/g".into()],
                ..base.clone()
            },
            LoadArgs {
                gateways: vec!["/feeds/x".into()],
                ..base.clone()
            },
            LoadArgs {
                admin_url: Some("http://127.0.0.1:2".into()),
                ..base.clone()
            },
        ] {
            assert!(LoadOptions::from_args(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn gateways_from_a_partners_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partners.toml");
        std::fs::write(&path, crate::partners::DEMO_PARTNERS).unwrap();
        let g = gateways_from_partners(&path, "http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            g,
            [
                "http://127.0.0.1:8080/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1/gateway.xml",
                "http://127.0.0.1:8080/feeds/eu-reseller/demo-eureseller-8d31b6c05a/1/gateway.xml",
                "http://127.0.0.1:8080/feeds/eu-reseller/demo-eureseller-8d31b6c05a/2/gateway.xml",
            ]
        );
        std::fs::write(
            &path,
            "[[partner]]\nid = \"a\"\ntoken_sha256 = \"00\"\nshops = [1]\n",
        )
        .unwrap();
        assert!(gateways_from_partners(&path, "http://127.0.0.1:8080").is_err());
    }
}
