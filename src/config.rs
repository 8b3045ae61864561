//! Configuration: command-line flags with environment fallbacks and an optional TOML file,
//! merged (flag > environment > file > default) and validated once into a [`Config`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

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
    /// Length of a change window (`30m`, `5s`, `PT1H`): how often full_change files are cut.
    #[arg(long, env = "IOFD_CHANGE_WINDOW")]
    pub change_window: Option<String>,
    /// How long change files stay listed in the gateway (`24h`).
    #[arg(long, env = "IOFD_CHANGE_RETENTION")]
    pub change_retention: Option<String>,
    /// Local time of the daily full.xml base rebuild (`03:00`).
    #[arg(long, env = "IOFD_BASE_REBUILD")]
    pub base_rebuild: Option<String>,
}

/// The optional TOML file. Unknown keys are errors, so a typo cannot silently do nothing.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    partners: Option<PathBuf>,
    public_url: Option<String>,
    timezone: Option<String>,
    log_format: Option<String>,
    change_window: Option<String>,
    change_retention: Option<String>,
    base_rebuild: Option<String>,
    base_currency: Option<String>,
    /// Amount of each currency per one unit of the base currency.
    #[serde(default)]
    currencies: BTreeMap<String, Decimal>,
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
    /// ISO 4217 code of the prices the ERP sends.
    pub base_currency: String,
    /// Exchange rates: units of the currency per one unit of the base currency.
    pub rates: BTreeMap<String, Decimal>,
    /// Demo mode: bundled demo catalog and partners.
    pub demo: bool,
    /// Length of a change window (full_change files).
    pub change_window: std::time::Duration,
    /// How long change files stay listed.
    pub change_retention: std::time::Duration,
    /// Local time of the daily full.xml base rebuild.
    pub base_rebuild: jiff::civil::Time,
}

/// A configuration that cannot be used, with the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
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
            None if demo => toml::from_str(DEMO_CONFIG).map_err(|e| ConfigError::Parse {
                path: PathBuf::from("fixtures/demo/iofd.toml"),
                message: e.to_string(),
            })?,
            None => FileConfig::default(),
        };
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
            data_dir: args
                .data
                .clone()
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from("data")),
            partners_file: args.partners.clone().or(file.partners),
            public_url,
            timezone,
            timezone_name,
            log_format,
            base_currency,
            rates,
            demo,
            change_window,
            change_retention,
            base_rebuild,
        })
    }

    /// The exchange rate to `currency`, if configured.
    pub fn rate(&self, currency: &str) -> Option<Decimal> {
        self.rates.get(currency).copied()
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
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
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
    }
}
