//! `iofd partners ...`: the operator's command line over [`super::edit`].

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::edit::{self, EditError, IssuedToken, Settings};
use super::rules_edit::{self, RuleSettings};
use super::{explain, FileType, Partners, PartnersError};
use crate::catalog::rules::PriceRule;
use crate::catalog::Format;
use crate::config::{Config, ConfigError, ServeArgs};
use crate::store::StoreError;

/// `iofd partners` and its options (accepted before or after the action).
#[derive(Debug, clap::Args)]
pub struct PartnersArgs {
    /// Partner accounts file [default: `<data>/partners.toml`, demo mode].
    #[arg(long, env = "IOFD_PARTNERS", global = true)]
    pub partners: Option<PathBuf>,
    /// TOML configuration file (its exchange rates validate currencies; its public URL is
    /// printed in gateway URLs).
    #[arg(long, env = "IOFD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory.
    #[arg(long, env = "IOFD_DATA", global = true)]
    pub data: Option<PathBuf>,
    /// Base URL partners reach iofd at, for the printed gateway URLs.
    #[arg(long, env = "IOFD_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    #[command(subcommand)]
    pub action: Action,
}

/// What to do with the partners file.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Add a partner with a new token (printed once, with its gateway URLs).
    Add {
        /// Id used in URLs: letters, digits, '-', '_', '.', '@' (an e-mail login works).
        id: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Print the accounts as a table.
    List {
        /// Also each partner's fetches: last fetch, requests and bytes in the last 24 h,
        /// 304 share and last error per file kind, as a running server last saved them
        /// (every minute and at shutdown).
        #[arg(long)]
        activity: bool,
    },
    /// Switch a partner's offer access off: its URLs answer 403 and its downloads in flight
    /// are cut; the account, token and settings stay.
    Revoke { id: String },
    /// Switch a partner's offer access back on: the same URLs work again.
    Restore { id: String },
    /// Give a partner a new token (printed once); the old one stops working.
    Rotate { id: String },
    /// Delete a partner's account: its URLs answer 404 and its downloads in flight are cut.
    Remove { id: String },
    /// Change a partner's settings; only the options given change.
    Set {
        id: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Say whether PRODUCT is in PARTNER's offer and why, with its price and stock after
    /// each rule (reads the store's serving generation; safe beside a running server).
    Explain {
        id: String,
        product: u64,
        /// Only this shop of the partner's (default: each of them).
        #[arg(long)]
        shop: Option<u32>,
    },
    /// Switch offer sharing on or off for every partner.
    Sharing {
        /// `on` or `off`.
        #[arg(value_parser = parse_switch, action = clap::ArgAction::Set)]
        state: bool,
    },
}

/// Per-partner settings on the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingsArgs {
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Shop ids, comma-separated (required by `add`).
    #[arg(long, value_delimiter = ',')]
    pub shops: Option<Vec<u32>>,
    /// `iof-3.0` or `csv`.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// `xml` or `xml.gz`.
    #[arg(long, value_parser = parse_file_type)]
    pub file_type: Option<FileType>,
    /// Languages, comma-separated; the first is the offer's language (`eng,pol`).
    #[arg(long, value_delimiter = ',')]
    pub languages: Option<Vec<String>>,
    /// Currency of prices (ISO 4217, needs a rate in the configuration).
    #[arg(long)]
    pub currency: Option<String>,
    /// Percent taken off light prices (`7.5`).
    #[arg(long, value_parser = parse_decimal)]
    pub discount: Option<Decimal>,
    /// Wholesale prices instead of retail ones.
    #[arg(long, value_parser = parse_switch)]
    pub wholesale: Option<bool>,
    /// Leave out products with no stock.
    #[arg(long, value_parser = parse_switch)]
    pub only_in_stock: Option<bool>,
    /// Assortment: these categories and all their subcategories (`1,13`; `none` clears).
    #[arg(long, value_parser = parse_ids)]
    pub categories: Option<Ids>,
    /// Assortment: only these producers (`16,21`; `none` clears).
    #[arg(long, value_parser = parse_ids)]
    pub producers: Option<Ids>,
    /// Assortment: products always in (`none` clears).
    #[arg(long, value_parser = parse_ids)]
    pub include_products: Option<Ids>,
    /// Assortment: products never in (`none` clears).
    #[arg(long, value_parser = parse_ids)]
    pub exclude_products: Option<Ids>,
    /// Assortment: least shown stock of a product (`none` clears).
    #[arg(long, value_parser = parse_maybe_decimal)]
    pub min_stock: Option<MaybeDecimal>,
    /// A price rule, repeatable, first match wins; replaces the partner's list
    /// (`category=47,markup=10,round=0.99`, `producer=16,discount=5`, `markup=10`;
    /// `none` clears the list).
    #[arg(long = "price-rule", value_parser = parse_rule)]
    pub price_rules: Vec<RuleArg>,
    /// Stock: only these warehouses are shown (`none` clears).
    #[arg(long, value_parser = parse_warehouses)]
    pub warehouses: Option<Warehouses>,
    /// Stock: the most any level shows (`none` clears).
    #[arg(long, value_parser = parse_maybe_decimal)]
    pub max_quantity: Option<MaybeDecimal>,
    /// Stock: held back from every level (`none` clears).
    #[arg(long, value_parser = parse_maybe_decimal)]
    pub reserve: Option<MaybeDecimal>,
}

/// A list of ids on the command line (`none`: the empty list).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ids(pub Vec<u64>);

/// Warehouse ids on the command line (`none`: the empty list).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Warehouses(pub Vec<u32>);

fn parse_warehouses(s: &str) -> Result<Warehouses, String> {
    parse_ids(s)?
        .0
        .into_iter()
        .map(|w| u32::try_from(w).map_err(|_| format!("warehouse {w}: at most {}", u32::MAX)))
        .collect::<Result<_, _>>()
        .map(Warehouses)
}

/// A decimal on the command line (`none`: remove the key).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaybeDecimal(pub Option<Decimal>);

/// A `--price-rule` (`none`: clear the list).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleArg(pub Option<PriceRule>);

fn parse_ids(s: &str) -> Result<Ids, String> {
    if s == "none" || s.is_empty() {
        return Ok(Ids::default());
    }
    s.split(',')
        .map(|x| x.trim().parse::<u64>().map_err(|e| format!("{x:?}: {e}")))
        .collect::<Result<_, _>>()
        .map(Ids)
}

fn parse_maybe_decimal(s: &str) -> Result<MaybeDecimal, String> {
    match s {
        "none" => Ok(MaybeDecimal(None)),
        _ => parse_decimal(s).map(|d| MaybeDecimal(Some(d))),
    }
}

fn parse_rule(s: &str) -> Result<RuleArg, String> {
    match s {
        "none" => Ok(RuleArg(None)),
        _ => rules_edit::parse_price_rule(s).map(|r| RuleArg(Some(r))),
    }
}

impl From<SettingsArgs> for Settings {
    fn from(a: SettingsArgs) -> Settings {
        Settings {
            name: a.name,
            shops: a.shops,
            format: a.format,
            file_type: a.file_type,
            languages: a.languages,
            currency: a.currency,
            discount_percent: a.discount,
            wholesale: a.wholesale,
            only_in_stock: a.only_in_stock,
            rules: RuleSettings {
                categories: a.categories.map(|i| i.0),
                producers: a.producers.map(|i| i.0),
                include_products: a.include_products.map(|i| i.0),
                exclude_products: a.exclude_products.map(|i| i.0),
                min_stock: a.min_stock.map(|d| d.0),
                price_rules: (!a.price_rules.is_empty())
                    .then(|| a.price_rules.into_iter().filter_map(|r| r.0).collect()),
                warehouses: a.warehouses.map(|w| w.0),
                max_quantity: a.max_quantity.map(|d| d.0),
                reserve: a.reserve.map(|d| d.0),
            },
        }
    }
}

pub(crate) fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "iof-3.0" | "iof" | "xml" => Ok(Format::Iof30),
        "csv" => Ok(Format::Csv),
        _ => Err("expected iof-3.0 or csv".into()),
    }
}

pub(crate) fn parse_file_type(s: &str) -> Result<FileType, String> {
    match s {
        "xml" | "plain" => Ok(FileType::Plain),
        "xml.gz" | "gzip" => Ok(FileType::Gzip),
        _ => Err("expected xml or xml.gz".into()),
    }
}

pub(crate) fn parse_switch(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

pub(crate) fn parse_decimal(s: &str) -> Result<Decimal, String> {
    Decimal::from_str(s).map_err(|e| format!("{s:?}: {e}"))
}

/// Why a partners command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error(transparent)]
    Activity(#[from] crate::activity::ActivityError),
    #[error(transparent)]
    Partners(#[from] PartnersError),
    #[error("cannot read the catalog: {0}")]
    Store(#[from] StoreError),
    #[error("no partner {0:?} in the file")]
    UnknownPartner(String),
    #[error("the store holds no catalog yet (import one first)")]
    EmptyStore,
    #[error("no product {0} in the catalog")]
    UnknownProduct(u64),
    #[error("partner {0:?} has no shop {1}")]
    UnknownShop(String, u32),
}

/// Run one `iofd partners` command, writing what it reports to `out`.
pub fn run(args: PartnersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let config = Config::load(&ServeArgs {
        config: args.config,
        data: args.data,
        partners: args.partners,
        public_url: args.public_url,
        ..Default::default()
    })?;
    let path = config.partners_path();
    match args.action {
        Action::Add { id, settings } => {
            let issued = edit::add(&path, &config, &id, &settings.into())?;
            print_token(out, &config, &issued, "added")?;
        }
        Action::List { activity } => {
            let file = edit::list(&path, &config)?;
            writeln!(
                out,
                "{}: sharing {}, {} partner(s)",
                path.display(),
                if file.sharing.enabled { "on" } else { "off" },
                file.partners.len()
            )?;
            writeln!(
                out,
                "{:<20} {:<6} {:<8} {:<7} {:<6} {:<9} {:<8} {:>8} {:<9} {:<8} name",
                "id",
                "access",
                "shops",
                "format",
                "file",
                "languages",
                "currency",
                "discount",
                "wholesale",
                "in-stock"
            )?;
            for p in &file.partners {
                let shops: Vec<String> = p.shops.iter().map(u32::to_string).collect();
                writeln!(
                    out,
                    "{:<20} {:<6} {:<8} {:<7} {:<6} {:<9} {:<8} {:>8} {:<9} {:<8} {}",
                    p.id,
                    if p.offer_access { "on" } else { "off" },
                    shops.join(","),
                    edit::format_name(p.format),
                    edit::file_type_name(p.file_type),
                    p.languages.join(","),
                    p.currency.as_deref().unwrap_or(&config.base_currency),
                    format!("{}%", p.discount_percent.normalize()),
                    if p.wholesale { "yes" } else { "no" },
                    if p.only_in_stock { "yes" } else { "no" },
                    p.name
                )?;
            }
            if activity {
                let ids = file.partners.iter().map(|p| p.id.as_str());
                print_activity(out, &config, ids)?;
            }
        }
        Action::Revoke { id } => {
            let changed = edit::set_access(&path, &config, &id, false)?;
            writeln!(
                out,
                "{id}: offer access {}",
                if changed {
                    "off (a running server cuts its downloads within a second)"
                } else {
                    "was already off"
                }
            )?;
        }
        Action::Restore { id } => {
            let changed = edit::set_access(&path, &config, &id, true)?;
            writeln!(
                out,
                "{id}: offer access {}",
                if changed {
                    "on (its URLs and token work again)"
                } else {
                    "was already on"
                }
            )?;
        }
        Action::Rotate { id } => {
            let issued = edit::rotate(&path, &config, &id)?;
            print_token(out, &config, &issued, "new token")?;
        }
        Action::Remove { id } => {
            edit::remove(&path, &config, &id)?;
            writeln!(out, "{id}: removed")?;
        }
        Action::Set { id, settings } => {
            edit::set(&path, &config, &id, &settings.into())?;
            writeln!(out, "{id}: settings saved")?;
        }
        Action::Explain { id, product, shop } => {
            let partners = Partners::load(&path, &config)?;
            let account = partners
                .get(&id)
                .ok_or_else(|| CliError::UnknownPartner(id.clone()))?;
            let snapshot =
                crate::store::read_serving(&config.store_dir())?.ok_or(CliError::EmptyStore)?;
            let p = snapshot
                .product(product)
                .ok_or(CliError::UnknownProduct(product))?;
            let shops: Vec<u32> = match shop {
                Some(s) if account.shops.contains(&s) => vec![s],
                Some(s) => return Err(CliError::UnknownShop(id, s)),
                None => account.shops.iter().copied().collect(),
            };
            if !account.offer_access {
                writeln!(
                    out,
                    "{id}: offer access is off (every feed URL answers 403)"
                )?;
            }
            for shop in shops {
                if let Some(profile) = account.profile(shop) {
                    write!(out, "{}", explain::explain(profile, snapshot.dicts(), p))?;
                }
            }
        }
        Action::Sharing { state } => {
            edit::set_sharing(&path, &config, state)?;
            writeln!(
                out,
                "offer sharing {}",
                if state {
                    "on"
                } else {
                    "off: every feed URL answers 403"
                }
            )?;
        }
    }
    Ok(())
}

fn print_activity<'a>(
    out: &mut dyn Write,
    config: &Config,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<(), CliError> {
    let path = config.data_dir.join(crate::activity::FILE_NAME);
    let reports =
        crate::activity::read_report(&path, ids, config.clock.now(), config.partner_silent_after)?;
    writeln!(
        out,
        "\nactivity ({}; silent: no successful fetch for {} s)",
        path.display(),
        config.partner_silent_after.as_secs()
    )?;
    writeln!(
        out,
        "{:<20} {:<12} {:<21} {:>9} {:>12} {:>5} last error",
        "id", "file", "last success", "req 24h", "bytes 24h", "304"
    )?;
    for r in &reports {
        writeln!(
            out,
            "{:<20} {:<12} {:<21} {:>9} {:>12} {:>5} {}",
            r.partner,
            "(all)",
            r.last_fetch.as_deref().unwrap_or("never"),
            r.requests_24h,
            r.bytes_24h,
            "",
            if r.silent { "SILENT" } else { "" }
        )?;
        for k in &r.kinds {
            let share = k
                .not_modified_share
                .map(|s| format!("{:.0}%", s * 100.0))
                .unwrap_or_else(|| "-".into());
            let error = k
                .last_error
                .as_ref()
                .map(|e| format!("{} at {}", e.status, e.at))
                .unwrap_or_default();
            writeln!(
                out,
                "{:<20} {:<12} {:<21} {:>9} {:>12} {:>5} {}",
                "",
                k.kind,
                k.last_success.as_deref().unwrap_or("never"),
                k.requests_24h,
                k.bytes_24h,
                share,
                error
            )?;
        }
    }
    Ok(())
}

fn print_token(
    out: &mut dyn Write,
    config: &Config,
    issued: &IssuedToken,
    what: &str,
) -> std::io::Result<()> {
    writeln!(out, "{}: {what}", issued.partner)?;
    writeln!(
        out,
        "token (shown only now; only its SHA-256 is stored): {}",
        issued.token
    )?;
    writeln!(out, "gateway URLs:")?;
    for url in issued
        .gateway_urls(&config.public_url)
        .into_iter()
        .chain(issued.idosell_urls(&config.public_url))
    {
        writeln!(out, "  {url}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: PartnersArgs,
    }

    fn run_line(line: &[&str]) -> Result<String, CliError> {
        let args = Wrapper::try_parse_from(std::iter::once("partners").chain(line.iter().copied()))
            .map_err(|e| CliError::Output(std::io::Error::other(e.to_string())))?
            .args;
        let mut out = Vec::new();
        run(args, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn rules_are_set_cleared_and_explained_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let file = dir.path().join("p.toml");
        let (f, d) = (file.to_str().unwrap(), data.to_str().unwrap());
        let at = |line: &[&str]| {
            let mut l = line.to_vec();
            l.extend(["--partners", f, "--data", d]);
            run_line(&l)
        };
        at(&["add", "a", "--shops", "1"]).unwrap();
        at(&[
            "set",
            "a",
            "--categories",
            "100",
            "--price-rule",
            "category=110,markup=10,round=0.99",
            "--price-rule",
            "discount=5",
            "--warehouses",
            "1",
            "--reserve",
            "2",
        ])
        .unwrap();
        let entry = &edit::list(&file, &Config::for_data_dir(&data))
            .unwrap()
            .partners[0];
        assert_eq!(entry.assortment.categories, [100]);
        assert_eq!(entry.price_rule.len(), 2);
        assert_eq!(entry.price_rule[0].category, Some(110));
        assert_eq!(entry.stock.reserve, Some(Decimal::TWO));
        // A rule that cannot hold is refused with its key; the file keeps the last good one.
        let err = at(&["set", "a", "--price-rule", "markup=-150"]).unwrap_err();
        assert!(
            err.to_string().contains("price_rule[1].markup_percent"),
            "{err}"
        );

        let store =
            crate::store::Store::open(&config_store(&data), crate::store::StoreOptions::default())
                .unwrap();
        let mut records = crate::catalog::sample::sample_dictionaries().into_records();
        records.extend(
            crate::catalog::sample::sample_products()
                .into_iter()
                .map(|p| crate::catalog::Record::Product(Box::new(p))),
        );
        store
            .apply(records, crate::store::ApplyMode::FullSync)
            .unwrap();
        // The store stays open (and locked), as under a running server.
        let out = at(&["explain", "a", "1001"]).unwrap();
        assert!(
            out.starts_with("product 1001 in shop 1: IN the offer"),
            "{out}"
        );
        assert!(
            out.contains("price_rule[1] (markup 10 %, ending 0.99)"),
            "{out}"
        );
        assert!(out.contains("warehouse 1: 12 -> shown 10"), "{out}");
        assert!(matches!(
            at(&["explain", "a", "999"]),
            Err(CliError::UnknownProduct(999))
        ));
        at(&[
            "set",
            "a",
            "--categories",
            "none",
            "--price-rule",
            "none",
            "--warehouses",
            "none",
            "--reserve",
            "none",
        ])
        .unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("assortment") && !text.contains("price_rule") && !text.contains("stock"),
            "{text}"
        );
    }

    fn config_store(data: &std::path::Path) -> std::path::PathBuf {
        Config::for_data_dir(data).store_dir()
    }

    #[test]
    fn add_list_set_revoke_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        let f = file.to_str().unwrap();
        let config = dir.path().join("iofd.toml");
        std::fs::write(&config, "[currencies]\nEUR = \"0.23\"\n").unwrap();
        let c = config.to_str().unwrap();
        let out = run_line(&[
            "add",
            "shop-a",
            "--shops",
            "1,2",
            "--currency",
            "EUR",
            "--discount",
            "5",
            "--partners",
            f,
            "--config",
            c,
            "--public-url",
            "https://feeds.example",
        ])
        .unwrap();
        assert!(out.contains("https://feeds.example/feeds/shop-a/"), "{out}");
        assert!(out.contains("/2/gateway.xml"), "{out}");
        run_line(&[
            "set",
            "shop-a",
            "--only-in-stock",
            "on",
            "--file-type",
            "xml.gz",
            "--partners",
            f,
            "--config",
            c,
        ])
        .unwrap();
        run_line(&["revoke", "shop-a", "--partners", f, "--config", c]).unwrap();
        let table = run_line(&["list", "--partners", f, "--config", c]).unwrap();
        let row = table.lines().find(|l| l.starts_with("shop-a")).unwrap();
        for cell in ["off", "1,2", "xml.gz", "EUR", "5%"] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        assert!(
            row.split_whitespace().filter(|c| *c == "yes").count() == 1,
            "{row}"
        );
        assert!(run_line(&[
            "set",
            "nobody",
            "--name",
            "x",
            "--partners",
            f,
            "--config",
            c
        ])
        .is_err());
        run_line(&["sharing", "off", "--partners", f, "--config", c]).unwrap();
        assert!(run_line(&["list", "--partners", f, "--config", c])
            .unwrap()
            .contains("sharing off"));
    }

    #[test]
    fn list_activity_shows_what_the_server_saved() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        let f = file.to_str().unwrap();
        let d = dir.path().to_str().unwrap();
        run_line(&["add", "busy", "--shops", "1", "--partners", f, "--data", d]).unwrap();
        run_line(&["add", "quiet", "--shops", "1", "--partners", f, "--data", d]).unwrap();
        let activity = crate::activity::Activity::new(
            dir.path().join(crate::activity::FILE_NAME),
            crate::clock::Clock::system(),
            std::time::Duration::from_secs(3600),
        );
        activity.record("busy", "gateway", 200, 1234);
        activity.record("busy", "gateway", 304, 0);
        activity.record("busy", "full", 403, 60);
        activity.save().unwrap();
        let out = run_line(&["list", "--activity", "--partners", f, "--data", d]).unwrap();
        let busy = out
            .lines()
            .find(|l| l.starts_with("busy") && l.contains("(all)"))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(busy.contains(" 3 ") && busy.contains(" 1294 "), "{busy}");
        assert!(!busy.contains("SILENT"), "{busy}");
        assert!(
            out.lines()
                .any(|l| l.contains("gateway") && l.contains("50%")),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.contains("full") && l.contains("403 at")),
            "{out}"
        );
        let quiet = out
            .lines()
            .find(|l| l.starts_with("quiet") && l.contains("(all)"))
            .unwrap();
        assert!(
            quiet.contains("never") && quiet.contains("SILENT"),
            "{quiet}"
        );
        std::fs::write(dir.path().join(crate::activity::FILE_NAME), "not json").unwrap();
        let err = run_line(&["list", "--activity", "--partners", f, "--data", d]).unwrap_err();
        assert!(err.to_string().contains("activity.json"), "{err}");
    }
}
