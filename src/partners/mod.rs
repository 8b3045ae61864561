//! Partner accounts: who may fetch which offer, with which settings.
//!
//! The source of truth is a TOML file (`partners.toml`). Tokens are stored as SHA-256 hashes
//! and compared in constant time; a plain `token` is accepted for demo and development files.
//!
//! - [`Partners`] is one validated file; the server swaps it whole on reload.
//! - [`grant`]: what lets a partner's downloads in flight go on, and cuts them on revocation.
//! - [`watch`]: notices edits to the file (the server reloads it within a second).
//! - [`edit`]: the operator's changes (`iofd partners ...`), written atomically; [`cli`] is
//!   their command line.

pub mod cli;
pub mod edit;
pub mod explain;
pub mod grant;
pub mod rules_edit;
pub mod watch;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::catalog::rules::{Assortment, Known, PriceRule, RuleError, Rules, StockRule};
use crate::catalog::{FileKeys, Format, RenderProfile};
use crate::config::Config;

pub use grant::Grant;

/// The demo accounts served by `iofd serve` with no partners file.
pub const DEMO_PARTNERS: &str = include_str!("../../fixtures/demo/partners.toml");

/// Whether a partner receives plain or gzip-compressed files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum FileType {
    #[default]
    #[serde(rename = "xml")]
    Plain,
    #[serde(rename = "xml.gz")]
    Gzip,
}

/// One `[[partner]]` entry as written in the file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerEntry {
    /// Short name used in URLs: letters, digits, `-`, `_`, `.`, `@` (IdoSell's `client=` is
    /// often an e-mail login, and migrated URLs keep it).
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Hex SHA-256 of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// A plain token (demo and development only: anyone who reads the file can use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Switched off: every feed URL answers 403, the account and settings stay.
    #[serde(default = "yes")]
    pub offer_access: bool,
    /// Shop ids this partner may fetch.
    pub shops: Vec<u32>,
    #[serde(default = "iof")]
    pub format: Format,
    #[serde(default)]
    pub file_type: FileType,
    /// Languages of texts; the first is the offer's default.
    #[serde(default = "pol")]
    pub languages: Vec<String>,
    /// Currency of prices; needs a rate in the configuration unless it is the base currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// Percent taken off light.xml prices.
    #[serde(default)]
    pub discount_percent: Decimal,
    #[serde(default)]
    pub wholesale: bool,
    #[serde(default)]
    pub only_in_stock: bool,
    /// `[partner.assortment]`: which products the partner gets.
    #[serde(default, skip_serializing_if = "Assortment::is_empty")]
    pub assortment: Assortment,
    /// `[[partner.price_rule]]`: the first that matches a product prices it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub price_rule: Vec<PriceRule>,
    /// `[partner.stock]`: which stock the partner sees.
    #[serde(default, skip_serializing_if = "StockRule::is_empty")]
    pub stock: StockRule,
}

impl PartnerEntry {
    /// The entry's rules, normalized (equal rules, equal file keys).
    pub fn rules(&self) -> Rules {
        let mut rules = Rules {
            assortment: self.assortment.clone(),
            price_rules: self.price_rule.clone(),
            stock: self.stock.clone(),
        };
        rules.normalize();
        rules
    }
}

fn yes() -> bool {
    true
}
fn iof() -> Format {
    Format::Iof30
}
fn pol() -> Vec<String> {
    vec!["pol".to_string()]
}

/// Global settings of the file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sharing {
    /// Global switch: off answers 403 to every feed request.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for Sharing {
    fn default() -> Self {
        Sharing { enabled: true }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnersFile {
    #[serde(default)]
    pub sharing: Sharing,
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerEntry>,
}

/// A validated account.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub name: String,
    token_hash: [u8; 32],
    /// The plain token when the file carries one (demo files), to print URLs.
    pub plain_token: Option<String>,
    pub offer_access: bool,
    pub shops: BTreeSet<u32>,
    pub file_type: FileType,
    /// The render profile for each shop the account may fetch, with its key (computed once:
    /// every request looks its files up by it).
    profiles: HashMap<u32, (RenderProfile, String)>,
    /// The same per (shop, language) for each of the account's other languages, picked with
    /// `language=`: that language becomes the offer's, the others' texts follow.
    alternates: HashMap<(u32, String), (RenderProfile, String)>,
    /// The file keys of every profile above with the profile's key: a signed request names
    /// its file by one of them, so they are computed once here, not per request.
    file_keys: Vec<(FileKeys, String)>,
    /// Revoked when this account's access ends; downloads in flight hold a clone.
    grant: Arc<Grant>,
}

impl Account {
    /// The render profile for one of the account's shops.
    pub fn profile(&self, shop: u32) -> Option<&RenderProfile> {
        self.profiles.get(&shop).map(|(p, _)| p)
    }

    /// [`RenderProfile::key`] of the profile for one of the account's shops.
    pub fn profile_key(&self, shop: u32) -> Option<&str> {
        self.profiles.get(&shop).map(|(_, k)| k.as_str())
    }

    /// The profile and its key for `shop` with `language` as the offer's language (`None`:
    /// the account's first language). `None` for a shop or language the account lacks.
    pub fn profile_in(&self, shop: u32, language: Option<&str>) -> Option<(&RenderProfile, &str)> {
        let (profile, key) = self.profiles.get(&shop)?;
        match language {
            None => Some((profile, key.as_str())),
            Some(l) if l == profile.language() => Some((profile, key.as_str())),
            Some(l) => self
                .alternates
                .get(&(shop, l.to_string()))
                .map(|(p, k)| (p, k.as_str())),
        }
    }

    /// The keys of the account's profiles whose file `name` has the path key `key` (a
    /// signed URL's `/p/{key}/{name}`).
    pub fn profiles_with_file_key<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a str> {
        self.file_keys
            .iter()
            .filter(move |(keys, _)| keys.of_file(name) == key)
            .map(|(_, profile)| profile.as_str())
    }

    /// Whether `other` has the same token (compared in constant time); false after a rotation.
    pub fn same_token(&self, other: &Account) -> bool {
        bool::from(self.token_hash.ct_eq(&other.token_hash))
    }

    /// The grant a download by this account holds while it streams.
    pub fn grant(&self) -> &Arc<Grant> {
        &self.grant
    }
}

/// The answer to "may this request see the offer?".
#[derive(Debug)]
pub enum Access<'a> {
    Granted(&'a Account),
    /// Unknown partner or wrong token: reveal nothing (404).
    NotFound,
    /// The account's offer access is switched off (403).
    Revoked,
    /// Offer sharing is switched off for everyone (403).
    SharingOff,
}

/// A loaded, validated partners file.
#[derive(Debug, Default)]
pub struct Partners {
    pub sharing_enabled: bool,
    accounts: HashMap<String, Account>,
    order: Vec<String>,
}

/// A partners file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PartnersError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `message` is the parser's error on one line, with the offending line quoted.
    #[error("{path}: {message}")]
    Parse {
        path: PathBuf,
        message: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A file with nothing in it is the moment an editor truncated it to write it again
    /// (or a failed copy), not an operator's wish to end every account.
    #[error("{path}: the file is empty (a write in progress?); the accounts in force are kept. A file with no partners still says so: `[sharing]` on its own line")]
    Empty { path: PathBuf },
    #[error("{path}: partner {id:?}: {reason}")]
    Invalid {
        path: PathBuf,
        id: String,
        reason: String,
    },
    /// A rule that cannot hold; the source names the key.
    #[error("{path}: partner {id:?}: {source}")]
    Rule {
        path: PathBuf,
        id: String,
        #[source]
        source: RuleError,
    },
}

/// Hash a token for storage and comparison.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Partner ids appear in URL paths and in IdoSell's `client=`, which is often an e-mail
/// login: letters, digits, `-`, `_`, `.`, `@`, starting with a letter or digit (so never
/// `.` or `..`).
pub fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// What [`valid_id`] accepts, for error messages.
pub const ID_RULE: &str =
    "an id is 1-64 letters, digits, '-', '_', '.' or '@', starting with a letter or digit";

impl Partners {
    /// Read and validate a partners file.
    pub fn load(path: &Path, config: &Config) -> Result<Partners, PartnersError> {
        let text = std::fs::read_to_string(path).map_err(|source| PartnersError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(PartnersError::Empty {
                path: path.to_path_buf(),
            });
        }
        Partners::parse(&text, path, config)
    }

    /// Validate the text of a partners file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path, config: &Config) -> Result<Partners, PartnersError> {
        let file: PartnersFile = toml::from_str(text).map_err(|e| PartnersError::Parse {
            path: path.to_path_buf(),
            message: one_line(text, &e),
            source: Box::new(e),
        })?;
        let mut accounts = HashMap::new();
        let mut order = Vec::new();
        for entry in file.partners {
            let bad = |reason: String| PartnersError::Invalid {
                path: path.to_path_buf(),
                id: entry.id.clone(),
                reason,
            };
            if !valid_id(&entry.id) {
                return Err(bad(ID_RULE.into()));
            }
            if accounts.contains_key(&entry.id) {
                return Err(bad("duplicate id".into()));
            }
            let token_hash = match (&entry.token_sha256, &entry.token) {
                (Some(h), None) => decode_hash(h)
                    .ok_or_else(|| bad("token_sha256 must be 64 hex digits".into()))?,
                (None, Some(t)) if t.len() >= 16 => hash_token(t),
                (None, Some(_)) => return Err(bad("a token needs at least 16 characters".into())),
                (Some(_), Some(_)) => {
                    return Err(bad("give token_sha256 or token, not both".into()))
                }
                (None, None) => return Err(bad("no token: set token_sha256".into())),
            };
            if entry.shops.is_empty() {
                return Err(bad("shops is empty: give at least one shop id".into()));
            }
            if entry.languages.is_empty()
                || entry
                    .languages
                    .iter()
                    .any(|l| l.len() != 3 || !l.bytes().all(|b| b.is_ascii_lowercase()))
            {
                return Err(bad(
                    "languages are three-letter lowercase codes (pol, eng, ...), at least one"
                        .into(),
                ));
            }
            let currency = entry
                .currency
                .clone()
                .unwrap_or_else(|| config.base_currency.clone());
            let rate = config.rate(&currency).ok_or_else(|| {
                bad(format!(
                    "currency {currency} has no exchange rate in the configuration"
                ))
            })?;
            if entry.discount_percent < Decimal::ZERO
                || entry.discount_percent >= Decimal::ONE_HUNDRED
            {
                return Err(bad(
                    "discount_percent is from 0 up to (not including) 100".into()
                ));
            }
            let rules = entry.rules();
            rules.check().map_err(|source| PartnersError::Rule {
                path: path.to_path_buf(),
                id: entry.id.clone(),
                source,
            })?;
            let profiles = entry
                .shops
                .iter()
                .map(|&shop| {
                    let profile = RenderProfile {
                        shop,
                        format: entry.format,
                        gzip: entry.file_type == FileType::Gzip,
                        languages: entry.languages.clone(),
                        currency: currency.clone(),
                        rate,
                        discount_percent: entry.discount_percent,
                        wholesale: entry.wholesale,
                        only_in_stock: entry.only_in_stock,
                        rules: rules.clone(),
                    };
                    let key = profile.key();
                    (shop, (profile, key))
                })
                .collect::<HashMap<_, _>>();
            let mut alternates = HashMap::new();
            for (&shop, (profile, _)) in &profiles {
                for (i, language) in entry.languages.iter().enumerate().skip(1) {
                    if entry.languages[..i].contains(language) {
                        continue;
                    }
                    let mut languages = vec![language.clone()];
                    languages.extend(entry.languages.iter().filter(|l| *l != language).cloned());
                    let alternate = RenderProfile {
                        languages,
                        ..profile.clone()
                    };
                    let key = alternate.key();
                    alternates.insert((shop, language.clone()), (alternate, key));
                }
            }
            let file_keys = profiles
                .values()
                .chain(alternates.values())
                .map(|(p, key)| (FileKeys::of_each(p), key.clone()))
                .collect();
            order.push(entry.id.clone());
            accounts.insert(
                entry.id.clone(),
                Account {
                    id: entry.id.clone(),
                    name: entry.name.clone(),
                    token_hash,
                    plain_token: entry.token.clone(),
                    offer_access: entry.offer_access,
                    shops: entry.shops.iter().copied().collect(),
                    file_type: entry.file_type,
                    profiles,
                    alternates,
                    file_keys,
                    grant: Arc::new(Grant::default()),
                },
            );
        }
        Ok(Partners {
            sharing_enabled: file.sharing.enabled,
            accounts,
            order,
        })
    }

    /// Refuse the file when an account names a shop that does not exist (`exists` says which
    /// do): its gateway could not be served. `missing` explains, for the error, why a shop
    /// is unknown.
    pub fn check_shops(
        &self,
        path: &Path,
        exists: impl Fn(u32) -> bool,
        missing: impl Fn(u32) -> String,
    ) -> Result<(), PartnersError> {
        for account in self.accounts() {
            if let Some(&shop) = account.shops.iter().find(|&&s| !exists(s)) {
                return Err(PartnersError::Invalid {
                    path: path.to_path_buf(),
                    id: account.id.clone(),
                    reason: format!("shop {shop} does not exist: {}", missing(shop)),
                });
            }
        }
        Ok(())
    }

    /// Refuse the file when an account's rules name a category, producer or warehouse the
    /// catalog lacks (`known` says what it holds).
    pub fn check_rules(&self, path: &Path, known: &impl Known) -> Result<(), PartnersError> {
        for account in self.accounts() {
            let Some((profile, _)) = account.profiles.values().next() else {
                continue;
            };
            profile
                .rules
                .check_against(known)
                .map_err(|source| PartnersError::Rule {
                    path: path.to_path_buf(),
                    id: account.id.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Check a partner id and token. The token is compared in constant time; an unknown id
    /// still costs a hash so timing does not tell ids apart.
    pub fn authenticate(&self, id: &str, token: &str) -> Access<'_> {
        let presented = hash_token(token);
        let Some(account) = self.accounts.get(id) else {
            return Access::NotFound;
        };
        if !bool::from(presented.ct_eq(&account.token_hash)) {
            return Access::NotFound;
        }
        if !self.sharing_enabled {
            return Access::SharingOff;
        }
        if !account.offer_access {
            return Access::Revoked;
        }
        Access::Granted(account)
    }

    /// Take over `previous`'s grants for the accounts whose access goes on unchanged, and
    /// revoke the others, which cuts their downloads in flight. Returns the ids of the accounts
    /// that lost access. Call it on a freshly loaded file before it replaces `previous`.
    pub fn inherit(&mut self, previous: &Partners) -> Vec<String> {
        let mut lost = Vec::new();
        for old in previous.accounts() {
            let kept = self.accounts.get_mut(&old.id).filter(|new| {
                self.sharing_enabled
                    && new.offer_access
                    // Constant time is not needed here: both hashes come from the files.
                    && new.token_hash == old.token_hash
                    && new.shops.is_superset(&old.shops)
            });
            match kept {
                Some(new) => new.grant = old.grant.clone(),
                None => {
                    old.grant.revoke();
                    if previous.sharing_enabled && old.offer_access {
                        lost.push(old.id.clone());
                    }
                }
            }
        }
        lost
    }

    /// An account by id (no token check: for operators and tools, not for requests).
    pub fn get(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when the file has no accounts.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Accounts in file order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.order.iter().filter_map(|id| self.accounts.get(id))
    }

    /// Whether an account with access has the `language=` profile `key` (see
    /// [`Account::profile_in`]). Those are rendered only once asked for, not listed by
    /// [`Partners::profiles`].
    pub fn has_alternate(&self, key: &str) -> bool {
        self.accounts()
            .filter(|a| a.offer_access)
            .any(|a| a.alternates.values().any(|(_, k)| k == key))
    }

    /// Every distinct render profile in use by an account with access.
    pub fn profiles(&self) -> Vec<RenderProfile> {
        let mut seen = HashMap::new();
        for account in self.accounts().filter(|a| a.offer_access) {
            for (profile, key) in account.profiles.values() {
                seen.entry(key.as_str()).or_insert(profile);
            }
        }
        // Ordered by key, so the list (and what is rendered first) does not vary.
        let mut list: Vec<_> = seen.into_iter().collect();
        list.sort_unstable_by_key(|(key, _)| *key);
        list.into_iter().map(|(_, p)| p.clone()).collect()
    }
}

/// A TOML error as one log line: `line 3, column 7: unknown field ...`.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_refused_rather_than_read_as_no_partners() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partners.toml");
        std::fs::write(&path, "\n  \n").unwrap();
        let err = Partners::load(&path, &config()).unwrap_err();
        assert!(matches!(err, PartnersError::Empty { .. }), "{err}");
        std::fs::write(&path, "[sharing]\n").unwrap();
        assert_eq!(Partners::load(&path, &config()).unwrap().len(), 0);
    }

    fn config() -> Config {
        let mut c = Config::for_data_dir(Path::new("data"));
        c.rates.insert("EUR".into(), Decimal::new(23, 2));
        c
    }

    fn parse(text: &str) -> Result<Partners, PartnersError> {
        Partners::parse(text, Path::new("partners.toml"), &config())
    }

    const TWO: &str = r#"
[[partner]]
id = "a"
token = "0123456789abcdef-a"
shops = [1, 2]
languages = ["eng", "pol"]
currency = "EUR"

[[partner]]
id = "b"
token_sha256 = "SHA"
shops = [1]
offer_access = false
"#;

    fn two() -> String {
        TWO.replace("SHA", &hex::encode(hash_token("0123456789abcdef-b")))
    }

    #[test]
    fn tokens_are_checked_and_access_switches_apply() {
        let p = parse(&two()).unwrap();
        assert!(matches!(
            p.authenticate("a", "0123456789abcdef-a"),
            Access::Granted(_)
        ));
        assert!(matches!(
            p.authenticate("a", "0123456789abcdef-b"),
            Access::NotFound
        ));
        assert!(matches!(
            p.authenticate("nobody", "0123456789abcdef-a"),
            Access::NotFound
        ));
        assert!(matches!(
            p.authenticate("b", "0123456789abcdef-b"),
            Access::Revoked
        ));
        assert!(
            matches!(p.authenticate("b", "wrong"), Access::NotFound),
            "a revoked account reveals nothing to a wrong token"
        );
        let off = parse(&format!("[sharing]\nenabled = false\n{}", two())).unwrap();
        assert!(matches!(
            off.authenticate("a", "0123456789abcdef-a"),
            Access::SharingOff
        ));
    }

    #[test]
    fn profiles_follow_settings_and_are_shared() {
        let p = parse(&two()).unwrap();
        let Access::Granted(a) = p.authenticate("a", "0123456789abcdef-a") else {
            panic!()
        };
        let prof = a.profile(2).unwrap();
        assert_eq!(prof.currency, "EUR");
        assert_eq!(prof.language(), "eng");
        assert!(a.profile(3).is_none());
        // b is revoked, so only a's two shops are in use (`language=` profiles are rendered
        // once asked for, not listed).
        assert_eq!(p.profiles().len(), 2);
    }

    #[test]
    fn language_picks_one_of_the_partners_languages() {
        let p = parse(&two()).unwrap();
        let a = p.get("a").unwrap();
        let (default, key) = a.profile_in(1, None).unwrap();
        assert_eq!(default.languages, ["eng", "pol"]);
        assert_eq!(a.profile_in(1, Some("eng")).unwrap().1, key);
        let (pol, pol_key) = a.profile_in(1, Some("pol")).unwrap();
        assert_eq!(pol.languages, ["pol", "eng"], "the other texts are kept");
        assert_ne!(pol_key, key);
        assert!(p.has_alternate(pol_key) && !p.has_alternate(key));
        assert_eq!(pol.currency, default.currency);
        assert!(a.profile_in(1, Some("deu")).is_none());
        assert!(a.profile_in(3, Some("pol")).is_none());
    }

    #[test]
    fn ids_may_be_e_mail_logins() {
        for id in ["jan.kowalski@sklep.example", "b2b_hurt-1", "a"] {
            let text = format!(
                "[[partner]]\nid = \"{id}\"\ntoken = \"0123456789abcdef-a\"\nshops = [1]\n"
            );
            assert!(parse(&text).is_ok(), "{id}");
        }
        for id in [
            "",
            ".",
            "..",
            ".hidden",
            "@x",
            "a/b",
            "a b",
            "jan%40x",
            &"x".repeat(65),
        ] {
            let text = format!(
                "[[partner]]\nid = \"{id}\"\ntoken = \"0123456789abcdef-a\"\nshops = [1]\n"
            );
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains("'@'"), "{id:?}: {err}");
        }
    }

    #[test]
    fn a_reload_keeps_grants_of_unchanged_access_and_revokes_the_rest() {
        let base = "[[partner]]\nid = \"a\"\ntoken = \"0123456789abcdef-a\"\nshops = [1, 2]\n[[partner]]\nid = \"c\"\ntoken = \"0123456789abcdef-c\"\nshops = [1]\n";
        let reload = |old: &Partners, text: &str| {
            let mut new = parse(text).unwrap();
            let lost = new.inherit(old);
            (new, lost)
        };
        // (changed text, does a keep its grant)
        let cases = [
            (base.to_string(), true),
            (
                base.replace("shops = [1, 2]", "shops = [1, 2, 3]\nlanguages = [\"eng\"]"),
                true,
            ),
            (
                base.replace("shops = [1, 2]", "shops = [1, 2]\noffer_access = false"),
                false,
            ),
            (base.replace("abcdef-a", "abcdef-A"), false),
            (base.replace("shops = [1, 2]", "shops = [2]"), false),
            (format!("[sharing]\nenabled = false\n{base}"), false),
            (base.replace("id = \"a\"", "id = \"z\""), false),
        ];
        for (text, keeps) in cases {
            let old = parse(base).unwrap();
            let grant_a = old.get("a").unwrap().grant().clone();
            let grant_c = old.get("c").unwrap().grant().clone();
            let (new, lost) = reload(&old, &text);
            assert_eq!(!grant_a.is_revoked(), keeps, "{text}");
            assert_eq!(lost.contains(&"a".to_string()), !keeps, "{text}");
            if let (true, Some(a)) = (keeps, new.get("a")) {
                assert!(Arc::ptr_eq(a.grant(), &grant_a), "carried over: {text}");
            }
            if new.sharing_enabled {
                assert!(!grant_c.is_revoked(), "c is untouched: {text}");
            }
        }
        // Restored after a revocation: a fresh grant, not the revoked one.
        let old = parse(base).unwrap();
        let (off, _) = reload(
            &old,
            &base.replace("shops = [1, 2]", "shops = [1, 2]\noffer_access = false"),
        );
        let (on, lost) = reload(&off, base);
        assert!(lost.is_empty(), "a had no access to lose");
        assert!(!on.get("a").unwrap().grant().is_revoked());
    }

    #[test]
    fn broken_files_are_rejected_with_the_reason() {
        for (text, needle) in [
            ("[[partner]\n", "partners.toml: line 1, column"),
            ("[[partner]]\nid = \"a\"\ntoken = \"0123456789abcdef\"\nshops = [1]\ncolour = \"red\"\n", "colour"),
            ("[[partner]]\nid = \"a\"\ntoken = \"0123456789abcdef\"\nshops = [1]\n[[partner]]\nid = \"a\"\ntoken = \"0123456789abcdef\"\nshops = [1]\n", "duplicate"),
            ("[[partner]]\nid = \"a\"\ntoken = \"short\"\nshops = [1]\n", "16"),
            ("[[partner]]\nid = \"a\"\ntoken = \"0123456789abcdef\"\nshops = [1]\ncurrency = \"USD\"\n", "USD"),
            ("[[partner]]\nid = \"a b\"\ntoken = \"0123456789abcdef\"\nshops = [1]\n", "id"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} gave {err}");
            assert!(!err.contains('\n'), "one log line: {err}");
        }
    }

    #[test]
    fn the_demo_file_is_valid() {
        let mut c = config();
        c.rates.insert("EUR".into(), Decimal::new(23, 2));
        let p = Partners::parse(DEMO_PARTNERS, Path::new("demo"), &c).unwrap();
        assert!(p.accounts().count() >= 2);
        assert!(
            p.accounts().all(|a| a.plain_token.is_some()),
            "demo accounts carry plain tokens so URLs can be printed"
        );
    }
}
