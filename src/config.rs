//! Configuration: command-line flags with environment fallbacks and an optional TOML file,
//! merged (flag > environment > file > default) and validated once into a [`Config`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;

mod cdn;
mod scale;
use cdn::{purge_target, signing_config};
pub use cdn::{PurgeStyle, PurgeTarget};
pub use scale::{Role, ScaleArgs, StoreTarget};

/// The configuration of demo mode (`iofd serve` with neither `--config` nor `--partners`).
pub const DEMO_CONFIG: &str = include_str!("../fixtures/demo/iofd.toml");

/// Flags of `iofd serve` (and of the other commands that touch the data directory).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "IOFD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Public listener for partner feeds.
    #[arg(long, env = "IOFD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Admin listener (health, metrics, ingest); keep it private.
    #[arg(long, env = "IOFD_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Data directory: the store, artifacts and (in demo mode) partners.toml.
    #[arg(long, env = "IOFD_DATA")]
    pub data: Option<PathBuf>,
    /// Partner accounts file. Without it iofd runs in demo mode with the bundled demo partners.
    #[arg(long, env = "IOFD_PARTNERS")]
    pub partners: Option<PathBuf>,
    /// Base URL partners reach iofd at (the CDN's URL in production); used in gateway links.
    #[arg(long, env = "IOFD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// IANA time zone of the timestamps written into feeds.
    #[arg(long, env = "IOFD_TIMEZONE")]
    pub timezone: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "IOFD_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Threads serving requests (default: one per core).
    #[arg(long, env = "IOFD_WORKERS")]
    pub workers: Option<usize>,
    /// Bearer token of the admin ingest API (demo mode: `demo-admin-token`).
    #[arg(long, env = "IOFD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Watched drop folder for ERP files (default `<data>/inbox`).
    #[arg(long, env = "IOFD_INBOX")]
    pub inbox: Option<PathBuf>,
    /// Length of a change window (`30m`, `5s`, `PT1H`): how often full_change files are cut.
    #[arg(long, env = "IOFD_CHANGE_WINDOW")]
    pub change_window: Option<String>,
    /// How long change files stay listed in the gateway (`24h`).
    #[arg(long, env = "IOFD_CHANGE_RETENTION")]
    pub change_retention: Option<String>,
    /// Local time of the daily full.xml base rebuild (`03:00`).
    #[arg(long, env = "IOFD_BASE_REBUILD")]
    pub base_rebuild: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub scale: ScaleArgs,
}

/// Limits, timeouts and the purge hook (flags of `iofd serve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitArgs {
    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "IOFD_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "IOFD_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Most connections served at once per listener; more wait briefly, then get 503.
    #[arg(long, env = "IOFD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most connections one client address may hold per listener (0: no cap).
    #[arg(long, env = "IOFD_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Requests per second each partner may make (0: no limit); excess gets 429.
    #[arg(long, env = "IOFD_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Requests a partner may make in a burst above the rate.
    #[arg(long, env = "IOFD_RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Window in seconds over which a download held back by its client must move
    /// `min_send_rate` bytes per second.
    #[arg(long, env = "IOFD_SEND_TIMEOUT")]
    pub send_timeout: Option<u64>,
    /// Slowest accepted download, bytes per second (0: only require progress).
    #[arg(long, env = "IOFD_MIN_SEND_RATE")]
    pub min_send_rate: Option<u64>,
    /// URL that receives purge requests naming surrogate keys (http:// or https://).
    #[arg(long, env = "IOFD_PURGE_URL")]
    pub purge_url: Option<String>,
    /// Method of purge requests (`POST`, `PURGE`, `BAN`, ...).
    #[arg(long, env = "IOFD_PURGE_METHOD")]
    pub purge_method: Option<String>,
    /// Shape of purge requests: `generic`, `varnish`, `fastly` or `cloudflare`.
    #[arg(long, env = "IOFD_PURGE_STYLE")]
    pub purge_style: Option<String>,
    /// PEM file of the CA a private HTTPS purge endpoint is trusted by.
    #[arg(long, env = "IOFD_PURGE_CA_FILE")]
    pub purge_ca_file: Option<PathBuf>,
    /// A header sent with purge requests, `Name: value`; repeatable (environment:
    /// one per line).
    #[arg(
        long = "purge-header",
        env = "IOFD_PURGE_HEADERS",
        value_delimiter = '\n'
    )]
    pub purge_headers: Vec<String>,
}

/// The optional TOML file. Unknown keys are errors, so a typo cannot silently do nothing.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    partners: Option<PathBuf>,
    public_url: Option<String>,
    timezone: Option<String>,
    log_format: Option<String>,
    workers: Option<usize>,
    change_window: Option<String>,
    change_retention: Option<String>,
    /// A partner without a successful fetch for this long is flagged (`48h`, `PT30M`).
    partner_silent_after: Option<String>,
    base_rebuild: Option<String>,
    base_currency: Option<String>,
    admin_token: Option<String>,
    /// Largest ingest request body, bytes.
    ingest_body_limit: Option<u64>,
    /// Longest pause, seconds, between two pieces of an ingest request body.
    ingest_body_timeout: Option<u64>,
    /// Ingest requests with a body received at once; more get 503.
    ingest_max_concurrent: Option<usize>,
    inbox: Option<PathBuf>,
    /// Seconds a dropped file must stay unchanged before it is taken.
    inbox_stable_secs: Option<u64>,
    /// Milliseconds to gather a burst of updates before light.xml is republished.
    publish_coalesce_ms: Option<u64>,
    /// MiB per second the background scrub re-hashes snapshot files at (0: off).
    scrub_mib_per_second: Option<u64>,
    /// Target products per store shard (chosen at the first import).
    products_per_shard: Option<usize>,
    /// Percent of the products a full sync may remove without confirming the count.
    full_sync_max_removal: Option<Decimal>,
    /// Least seconds between two renders of the non-light files (full.xml, CSV, ...).
    full_publish_interval_secs: Option<u64>,
    /// Amount of each currency per one unit of the base currency.
    #[serde(default)]
    currencies: BTreeMap<String, Decimal>,
    header_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    rate_limit: Option<f64>,
    rate_burst: Option<u32>,
    send_timeout: Option<u64>,
    min_send_rate: Option<u64>,
    purge_url: Option<String>,
    purge_method: Option<String>,
    #[serde(default)]
    purge_headers: BTreeMap<String, String>,
    /// Request shape: `generic`, `varnish`, `fastly` or `cloudflare`.
    purge_style: Option<String>,
    /// PEM file of the CA (or certificate) a private HTTPS purge endpoint is trusted by.
    purge_ca_file: Option<PathBuf>,
    /// Supplier metadata for the gateway of a shop the catalog has no metadata for.
    shop: Option<crate::catalog::Shop>,
    /// Signs profile URLs (current key); without it, `<data>/signing.key`.
    signing_key: Option<String>,
    /// Still verifies URLs signed before a key rotation.
    signing_key_previous: Option<String>,
    /// How long a signed URL is valid (`4h`, `30m`).
    signature_lifetime: Option<String>,
    /// 302 from stable partner URLs to signed profile URLs.
    redirect_to_profile: Option<bool>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: demo mode, partners from `<data>/partners.toml` seeded with the demo accounts.
    pub partners_file: Option<PathBuf>,
    /// Base URL without a trailing slash.
    pub public_url: String,
    pub timezone: jiff::tz::TimeZone,
    pub timezone_name: String,
    pub log_format: LogFormat,
    /// Threads serving requests.
    pub workers: usize,
    /// ISO 4217 code of the prices the ERP sends.
    pub base_currency: String,
    /// Exchange rates: units of the currency per one unit of the base currency.
    pub rates: BTreeMap<String, Decimal>,
    /// Demo mode: bundled demo catalog and partners.
    pub demo: bool,
    /// Bearer token of the admin ingest API; `None`: ingest is refused.
    pub admin_token: Option<String>,
    /// Largest ingest request body in bytes (default 2 GiB).
    pub ingest_body_limit: u64,
    /// Longest pause between two pieces of an ingest body; a longer stall answers 408 and
    /// applies nothing (default 30 s).
    pub ingest_body_timeout: Duration,
    /// Ingest requests receiving a body at once; more are answered 503 (default 4).
    pub ingest_max_concurrent: usize,
    /// The watched drop folder.
    pub inbox_dir: PathBuf,
    /// How long a dropped file must stay unchanged before it is taken (default 5 s).
    pub inbox_stable: std::time::Duration,
    /// How long a burst of updates is gathered before light.xml is republished (default 5 ms).
    pub publish_coalesce: std::time::Duration,
    /// The background scrub of the store's files (default 32 MiB/s, a pass an hour).
    pub scrub: crate::store::scrub::ScrubOptions,
    /// Target products per store shard: smaller shards make single updates cheaper.
    pub products_per_shard: usize,
    /// Percent (0 to 100) of the catalog's products a full sync may remove without
    /// confirming the exact count (default 20): a truncated export must not delist the
    /// catalog.
    pub full_sync_max_removal: Decimal,
    /// Least time between two renders of the files other than light.xml (default 0: after
    /// every generation); light.xml follows every generation regardless.
    pub full_publish_interval: std::time::Duration,
    /// Connection limits and timeouts of the listeners.
    pub limits: Limits,
    /// Where superseded files are purged from the cache in front, if anywhere.
    pub purge: Option<PurgeTarget>,
    /// Keys and lifetime of the signed profile URLs gateways list.
    pub signing: crate::signing::SigningConfig,
    /// Answer a stable partner URL of a file with a 302 to its signed profile URL instead
    /// of the bytes.
    pub redirect_to_profile: bool,
    /// Length of a change window (full_change files).
    pub change_window: std::time::Duration,
    /// How long change files stay listed.
    pub change_retention: std::time::Duration,
    /// Local time of the daily full.xml base rebuild.
    pub base_rebuild: jiff::civil::Time,
    /// A partner without a successful fetch for this long is flagged as silent (default 24 h).
    pub partner_silent_after: std::time::Duration,
    /// The `[shop]` table: the gateway metadata of its shop id while the catalog has none for
    /// it (an imported offer without a gateway, a store the ERP has not filled yet).
    pub shop: Option<crate::catalog::Shop>,
    /// Where timed behaviour (change windows, base rebuilds) reads the time: the system's
    /// clock; tests put a manual one here to move time instead of waiting.
    pub clock: crate::clock::Clock,
    /// Writer (ingests, publishes) or replica (follows `object_store`).
    pub role: Role,
    /// The object store a writer publishes to and a replica follows (`docs/scale-out.md`).
    pub object_store: Option<StoreTarget>,
}

/// Limits that keep one client from taking the server's connections, memory or time.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Time to receive a request's headers, from its first byte (or from the connection's
    /// start, for the first request).
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection stays open.
    pub idle_timeout: Duration,
    /// Connections served at once per listener (before the descriptor budget caps it).
    pub max_connections: usize,
    /// Connections one client address may hold per listener; 0: no cap.
    pub max_connections_per_ip: usize,
    /// Requests per second per partner; 0 disables the limit.
    pub rate_limit: f64,
    /// Requests a partner may make at once above the rate.
    pub rate_burst: u32,
    /// Window over which a download held back by its client must move
    /// `min_send_rate × send_timeout` bytes (at least one byte).
    pub send_timeout: Duration,
    /// Slowest accepted download, bytes per second.
    pub min_send_rate: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            // Longer than a CDN's idle timeout for origin connections (Varnish: 60 s), so
            // the CDN, not the origin, closes them and never reuses a closed one.
            idle_timeout: Duration::from_secs(75),
            max_connections: 2048,
            max_connections_per_ip: 256,
            rate_limit: 20.0,
            rate_burst: 100,
            send_timeout: Duration::from_secs(30),
            min_send_rate: 4096,
        }
    }
}

/// The admin token of demo mode, printed at start-up.
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";

/// A configuration that cannot be used, with the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

fn is_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

impl Config {
    /// Merge flags, environment (already folded into `args` by clap) and the TOML file; validate.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        let demo = args.config.is_none() && args.partners.is_none();
        let file = match &args.config {
            Some(path) => read_file(path)?,
            // Demo mode: the bundled demo configuration (its exchange rates serve the demo partners).
            None if demo => toml::from_str(DEMO_CONFIG).map_err(|source| ConfigError::Parse {
                path: PathBuf::from("fixtures/demo/iofd.toml"),
                source: Box::new(source),
            })?,
            None => FileConfig::default(),
        };
        let limits = limits(&args.limits, &file)?;
        let shop = file.shop.clone().map(shop_table).transpose()?;
        let purge = purge_target(&args.limits, &file)?;
        let signing = signing_config(&file)?;
        let (role, object_store) = scale::scale_config(&args.scale)?;
        let timezone_name = args
            .timezone
            .clone()
            .or(file.timezone)
            .unwrap_or_else(|| "Europe/Warsaw".to_string());
        let timezone =
            jiff::tz::TimeZone::get(&timezone_name).map_err(|e| ConfigError::Invalid {
                setting: "timezone",
                reason: format!("{timezone_name:?}: {e}"),
            })?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let admin_listen = args
            .admin_listen
            .or(file.admin_listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8081)));
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        let public_url = public_url.trim_end_matches('/').to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                setting: "public_url",
                reason: format!("{public_url:?} must start with http:// or https://"),
            });
        }
        let workers = match args.workers.or(file.workers) {
            Some(0) => {
                return Err(ConfigError::Invalid {
                    setting: "workers",
                    reason: "must be at least 1".into(),
                })
            }
            Some(n) => n,
            None => default_workers(),
        };
        let log_format = match args.log_format.clone().or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    setting: "log_format",
                    reason: format!("{other:?} is not text or json"),
                })
            }
        };
        let base_currency = file.base_currency.unwrap_or_else(|| "PLN".to_string());
        if !is_currency(&base_currency) {
            return Err(ConfigError::Invalid {
                setting: "base_currency",
                reason: format!("{base_currency:?} is not an ISO 4217 code like PLN"),
            });
        }
        let mut rates = file.currencies;
        for (code, rate) in &rates {
            if !is_currency(code) {
                return Err(ConfigError::Invalid {
                    setting: "currencies",
                    reason: format!("{code:?} is not an ISO 4217 code like EUR"),
                });
            }
            if *rate <= Decimal::ZERO {
                return Err(ConfigError::Invalid {
                    setting: "currencies",
                    reason: format!("the rate of {code} must be positive"),
                });
            }
            // With prices bounded too, no conversion can overflow.
            if *rate > crate::catalog::MAX_EXCHANGE_RATE {
                return Err(ConfigError::Invalid {
                    setting: "currencies",
                    reason: format!(
                        "the rate of {code} is at most {}",
                        crate::catalog::MAX_EXCHANGE_RATE
                    ),
                });
            }
        }
        if let Some(rate) = rates.get(&base_currency) {
            if *rate != Decimal::ONE {
                return Err(ConfigError::Invalid {
                    setting: "currencies",
                    reason: format!("the base currency {base_currency} must have rate 1"),
                });
            }
        }
        rates.insert(base_currency.clone(), Decimal::ONE);
        let admin_token = args
            .admin_token
            .clone()
            .or(file.admin_token)
            .or_else(|| demo.then(|| DEMO_ADMIN_TOKEN.to_string()));
        if admin_token.as_deref().is_some_and(|t| t.len() < 8) {
            return Err(ConfigError::Invalid {
                setting: "admin_token",
                reason: "must be at least 8 characters".into(),
            });
        }
        let data_dir = args
            .data
            .clone()
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from("data"));
        let inbox_dir = args
            .inbox
            .clone()
            .or(file.inbox)
            .unwrap_or_else(|| data_dir.join("inbox"));
        let change_window = duration(
            "change_window",
            args.change_window.clone().or(file.change_window),
            "30m",
        )?;
        let change_retention = duration(
            "change_retention",
            args.change_retention.clone().or(file.change_retention),
            "24h",
        )?;
        let partner_silent_after = duration(
            "partner_silent_after",
            file.partner_silent_after.clone(),
            "24h",
        )?;
        let base_rebuild = args
            .base_rebuild
            .clone()
            .or(file.base_rebuild)
            .unwrap_or_else(|| "03:00".into());
        let base_rebuild: jiff::civil::Time =
            base_rebuild.parse().map_err(|e| ConfigError::Invalid {
                setting: "base_rebuild",
                reason: format!("{base_rebuild:?} is not a time of day like 03:00: {e}"),
            })?;
        Ok(Config {
            listen,
            admin_listen,
            data_dir,
            partners_file: args.partners.clone().or(file.partners),
            public_url,
            timezone,
            timezone_name,
            log_format,
            workers,
            base_currency,
            rates,
            demo,
            admin_token,
            ingest_body_limit: file.ingest_body_limit.unwrap_or(2 << 30),
            ingest_body_timeout: seconds(
                "ingest_body_timeout",
                file.ingest_body_timeout,
                Duration::from_secs(30),
            )?,
            ingest_max_concurrent: match file.ingest_max_concurrent {
                Some(0) => return Err(invalid("ingest_max_concurrent", "must be at least 1")),
                Some(n) => n,
                None => 4,
            },
            inbox_dir,
            inbox_stable: std::time::Duration::from_secs(file.inbox_stable_secs.unwrap_or(5)),
            publish_coalesce: std::time::Duration::from_millis(
                file.publish_coalesce_ms.unwrap_or(5),
            ),
            scrub: match file.scrub_mib_per_second {
                Some(mib) => crate::store::scrub::ScrubOptions {
                    bytes_per_second: mib.saturating_mul(1 << 20),
                    ..Default::default()
                },
                None => Default::default(),
            },
            products_per_shard: match file.products_per_shard {
                Some(0) => {
                    return Err(ConfigError::Invalid {
                        setting: "products_per_shard",
                        reason: "must be at least 1".into(),
                    })
                }
                Some(n) => n,
                None => crate::store::StoreOptions::default().products_per_shard,
            },
            full_sync_max_removal: match file.full_sync_max_removal {
                Some(p) if p.is_sign_negative() || p > Decimal::ONE_HUNDRED => {
                    return Err(invalid(
                        "full_sync_max_removal",
                        format!("{p} is not a percentage from 0 to 100"),
                    ))
                }
                Some(p) => p,
                None => crate::store::DEFAULT_FULL_SYNC_MAX_REMOVAL,
            },
            full_publish_interval: std::time::Duration::from_secs(
                file.full_publish_interval_secs.unwrap_or(0),
            ),
            limits,
            purge,
            signing,
            role,
            object_store,
            redirect_to_profile: file.redirect_to_profile.unwrap_or(false),
            change_window,
            change_retention,
            base_rebuild,
            partner_silent_after,
            shop,
            clock: crate::clock::Clock::system(),
        })
    }

    /// The exchange rate to `currency`, if configured.
    pub fn rate(&self, currency: &str) -> Option<Decimal> {
        self.rates.get(currency).copied()
    }

    /// How the store is opened: shard size and the full-sync removal guard.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            products_per_shard: self.products_per_shard,
            full_sync_max_removal: self.full_sync_max_removal,
        }
    }

    /// Where the catalog of record lives.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// Where the change log, main-node hashes, bases and change files live.
    pub fn changes_dir(&self) -> PathBuf {
        self.data_dir.join("changes")
    }

    /// Where rendered files live.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }

    /// The partners file in use (the demo one in the data directory when none is configured).
    pub fn partners_path(&self) -> PathBuf {
        self.partners_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("partners.toml"))
    }

    /// A config for tests and tools: demo defaults rooted at `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Config {
        let args = ServeArgs {
            data: Some(data_dir.to_path_buf()),
            ..Default::default()
        };
        // The defaults are valid by construction.
        Config::load(&args).unwrap_or_else(|e| unreachable!("default config is invalid: {e}"))
    }
}

pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

fn seconds(
    setting: &'static str,
    value: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(invalid(setting, "must be at least 1 second")),
        Some(s) => Ok(Duration::from_secs(s)),
    }
}

fn limits(args: &LimitArgs, file: &FileConfig) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or(d.max_connections);
    if max_connections == 0 {
        return Err(invalid("max_connections", "must be at least 1"));
    }
    let rate_limit = args.rate_limit.or(file.rate_limit).unwrap_or(d.rate_limit);
    if !rate_limit.is_finite() || rate_limit < 0.0 {
        return Err(invalid(
            "rate_limit",
            format!("{rate_limit} is not a rate ≥ 0"),
        ));
    }
    let rate_burst = args.rate_burst.or(file.rate_burst).unwrap_or(d.rate_burst);
    if rate_burst == 0 {
        return Err(invalid("rate_burst", "must be at least 1"));
    }
    Ok(Limits {
        header_timeout: seconds(
            "header_timeout",
            args.header_timeout.or(file.header_timeout),
            d.header_timeout,
        )?,
        idle_timeout: seconds(
            "idle_timeout",
            args.idle_timeout.or(file.idle_timeout),
            d.idle_timeout,
        )?,
        max_connections,
        max_connections_per_ip: args
            .max_connections_per_ip
            .or(file.max_connections_per_ip)
            .unwrap_or(d.max_connections_per_ip),
        rate_limit,
        rate_burst,
        send_timeout: seconds(
            "send_timeout",
            args.send_timeout.or(file.send_timeout),
            d.send_timeout,
        )?,
        min_send_rate: args
            .min_send_rate
            .or(file.min_send_rate)
            .unwrap_or(d.min_send_rate),
    })
}

/// The `[shop]` table, checked like the ERP's shop record plus what a gateway needs: a name,
/// and a logo URL a client can fetch.
fn shop_table(shop: crate::catalog::Shop) -> Result<crate::catalog::Shop, ConfigError> {
    if shop.id == 0 {
        return Err(invalid("shop.id", "shop ids are positive integers"));
    }
    if shop.long_name.trim().is_empty() && shop.short_name.trim().is_empty() {
        return Err(invalid("shop", "give long_name or short_name"));
    }
    if let Some(url) = &shop.logo_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "shop.logo_url",
                format!("{url:?} must start with http:// or https://"),
            ));
        }
    }
    Ok(shop)
}

/// One request thread per core.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A positive duration setting (`30m`, `5s`, `1h 30m`, `PT30M`).
fn duration(
    setting: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<std::time::Duration, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_string());
    let invalid = |reason: String| ConfigError::Invalid { setting, reason };
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|e| invalid(format!("{text:?} is not a duration like 30m: {e}")))?;
    std::time::Duration::try_from(d)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| invalid(format!("{text:?} must be positive")))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iofd.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\npublic_url = \"https://feeds.example.com/\"\nbase_currency = \"PLN\"\n[currencies]\nEUR = \"0.23\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.public_url, "https://feeds.example.com");
        assert_eq!(c.rate("EUR").unwrap().to_string(), "0.23");
        assert_eq!(c.rate("PLN"), Some(Decimal::ONE));
        assert_eq!(c.timezone_name, "Europe/Warsaw");
        assert_eq!(c.change_window, std::time::Duration::from_secs(1800));
        assert_eq!(c.change_retention, std::time::Duration::from_secs(86400));
        assert_eq!(c.base_rebuild, jiff::civil::Time::constant(3, 0, 0, 0));
    }

    #[test]
    fn the_full_sync_removal_limit_is_a_percentage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iofd.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(&ServeArgs {
                config: Some(path.clone()),
                ..Default::default()
            })
        };
        assert_eq!(load("").unwrap().full_sync_max_removal, Decimal::from(20));
        let c = load("full_sync_max_removal = 12.5\n").unwrap();
        assert_eq!(c.full_sync_max_removal.to_string(), "12.5");
        assert_eq!(c.store_options().full_sync_max_removal.to_string(), "12.5");
        assert_eq!(
            load("full_sync_max_removal = 100\n")
                .unwrap()
                .full_sync_max_removal,
            Decimal::ONE_HUNDRED
        );
        for bad in ["-1", "100.5", "250"] {
            let err = load(&format!("full_sync_max_removal = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("full_sync_max_removal"), "{err}");
        }
    }

    #[test]
    fn change_settings_parse_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iofd.toml");
        std::fs::write(
            &path,
            "change_window = \"5s\"\nchange_retention = \"1h 30m\"\nbase_rebuild = \"04:15\"\n",
        )
        .unwrap();
        let c = Config::load(&ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.change_window, std::time::Duration::from_secs(5));
        assert_eq!(c.change_retention, std::time::Duration::from_secs(5400));
        assert_eq!(c.base_rebuild, jiff::civil::Time::constant(4, 15, 0, 0));
        for (args, setting) in [
            (
                ServeArgs {
                    change_window: Some("0s".into()),
                    ..Default::default()
                },
                "change_window",
            ),
            (
                ServeArgs {
                    change_retention: Some("soon".into()),
                    ..Default::default()
                },
                "change_retention",
            ),
            (
                ServeArgs {
                    base_rebuild: Some("25:00".into()),
                    ..Default::default()
                },
                "base_rebuild",
            ),
        ] {
            let err = Config::load(&args).unwrap_err();
            assert!(err.to_string().contains(setting), "{err}");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iofd.toml");
        std::fs::write(&path, "lisen = \"0.0.0.0:9000\"\n").unwrap();
        let err = Config::load(&ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        std::fs::write(&path, "[currencies]\neur = \"1\"\n").unwrap();
        let err = Config::load(&ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("currencies"), "{err}");
        let err = Config::load(&ServeArgs {
            timezone: Some("Mars/Base".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("timezone"), "{err}");
        let err = Config::load(&ServeArgs {
            workers: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("workers"), "{err}");
        std::fs::write(&path, "workers = 3\n").unwrap();
        let c = Config::load(&ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.workers, 3);
    }

    #[test]
    fn the_shop_table_is_checked_and_demo_mode_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iofd.toml");
        let load = |toml: &str| {
            std::fs::write(&path, toml).unwrap();
            Config::load(&ServeArgs {
                config: Some(path.clone()),
                ..Default::default()
            })
        };
        let c = load("[shop]\nid = 3\nlong_name = \"Hurt\"\nshort_name = \"hurt\"\n[shop.address]\ncity = \"Poznan\"\n").unwrap();
        let shop = c.shop.unwrap();
        assert_eq!((shop.id, shop.address.city.as_str()), (3, "Poznan"));
        assert!(
            load("").unwrap().shop.is_none(),
            "no default outside demo mode"
        );
        let demo = Config::for_data_dir(dir.path()).shop.expect("demo [shop]");
        assert!(demo.logo_url.is_some() && !demo.fax.is_empty());
        for (toml, setting) in [
            (
                "[shop]\nid = 0\nlong_name = \"a\"\nshort_name = \"a\"",
                "shop.id",
            ),
            (
                "[shop]\nid = 1\nlong_name = \" \"\nshort_name = \"\"",
                "shop",
            ),
            (
                "[shop]\nid = 1\nlong_name = \"a\"\nshort_name = \"a\"\nlogo_url = \"logo.png\"",
                "shop.logo_url",
            ),
            (
                "[shop]\nid = 1\nlong_name = \"a\"\nshort_name = \"a\"\nmail = \"x\"",
                "mail",
            ),
        ] {
            let err = load(toml).unwrap_err().to_string();
            assert!(err.contains(setting), "{toml}: {err}");
        }
    }

    #[test]
    fn limits_and_the_purge_hook_come_from_file_flags_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iofd.toml");
        std::fs::write(
            &path,
            "idle_timeout = 90\nrate_limit = 2.5\nmax_connections_per_ip = 0\ningest_body_timeout = 7\npurge_url = \"http://cache:6081/ban\"\n\
             purge_method = \"BAN\"\n[purge_headers]\nX-Purge-Token = \"s3cret\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            limits: LimitArgs {
                max_connections: Some(10),
                purge_headers: vec!["X-Other: 1".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.limits.rate_limit, 2.5);
        assert_eq!(c.limits.max_connections, 10);
        assert_eq!(c.limits.max_connections_per_ip, 0, "0: no cap");
        assert_eq!(c.ingest_body_timeout, Duration::from_secs(7));
        assert_eq!(c.ingest_max_concurrent, 4);
        assert_eq!(c.limits.header_timeout, Limits::default().header_timeout);
        let purge = c.purge.unwrap();
        assert_eq!(purge.url.to_string(), "http://cache:6081/ban");
        assert_eq!(purge.method.as_str(), "BAN");
        let headers: Vec<String> = purge
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        assert_eq!(headers, ["x-purge-token: s3cret", "x-other: 1"]);
        assert!(Config::for_data_dir(dir.path()).purge.is_none());
        // HTTPS, a CDN style: its method follows.
        std::fs::write(
            &path,
            "purge_url = \"https://api.fastly.example/service/S1/purge\"\npurge_style = \"varnish\"\n",
        )
        .unwrap();
        let c = Config::load(&ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        let purge = c.purge.unwrap();
        assert_eq!(purge.style, PurgeStyle::Varnish);
        assert_eq!(purge.method.as_str(), "BAN");

        for (toml, setting) in [
            ("purge_url = \"ftp://api.example.com/purge\"", "purge_url"),
            (
                "purge_url = \"https://c/\"\npurge_style = \"akamai\"",
                "purge_style",
            ),
            (
                "purge_url = \"https://c/\"\npurge_style = \"fastly\"\npurge_method = \"BAN\"",
                "purge_method",
            ),
            (
                "purge_url = \"https://c/\"\npurge_ca_file = \"/nonexistent/ca.pem\"",
                "purge_ca_file",
            ),
            ("purge_url = \"not a url\"", "purge_url"),
            (
                "purge_url = \"http://c/\"\npurge_method = \"B A N\"",
                "purge_method",
            ),
            (
                "purge_url = \"http://c/\"\n[purge_headers]\n\"bad name\" = \"1\"",
                "purge_headers",
            ),
            ("rate_limit = -1", "rate_limit"),
            ("max_connections = 0", "max_connections"),
            ("ingest_body_timeout = 0", "ingest_body_timeout"),
            ("ingest_max_concurrent = 0", "ingest_max_concurrent"),
            ("idle_timeout = 0", "idle_timeout"),
        ] {
            std::fs::write(&path, toml).unwrap();
            let err = Config::load(&ServeArgs {
                config: Some(path.clone()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.to_string().starts_with(setting), "{toml}: {err}");
        }
    }
}
