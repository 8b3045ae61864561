//! Operator changes to `partners.toml`: add, revoke, restore, rotate, change settings,
//! switch sharing.
//!
//! Every change edits the document in place (other entries, comments and layout are kept),
//! is validated with the same rules the server loads the file with, and is written
//! atomically (temp file, fsync, rename, directory fsync), so a running server — which reloads
//! the file when it changes — never sees half a file. Two operators editing at the same
//! instant can still lose one edit (last rename wins); edits are meant to be run one at a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;
use rust_decimal::Decimal;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use super::{hash_token, FileType, Partners, PartnersError, PartnersFile};
use crate::catalog::Format;
use crate::config::Config;

/// Random bytes in a generated token: 192 bits.
const TOKEN_BYTES: usize = 24;

/// The partners file an edit applies to, and optionally the [`content_hash`] of the file as
/// the operator last saw it: an edit against a file that changed since is refused with
/// [`EditError::Conflict`]. A plain path (the command line) edits whatever is there.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub path: &'a Path,
    pub seen: Option<&'a str>,
}

impl<'a> From<&'a Path> for Target<'a> {
    fn from(path: &'a Path) -> Target<'a> {
        Target { path, seen: None }
    }
}

impl<'a> From<&'a PathBuf> for Target<'a> {
    fn from(path: &'a PathBuf) -> Target<'a> {
        Target { path, seen: None }
    }
}

/// The hash an edit's [`Target::seen`] names: BLAKE3 hex of the file's bytes (of nothing
/// for a missing file).
pub fn content_hash(path: &Path) -> Result<String, EditError> {
    Ok(blake3::hash(read(path)?.as_bytes()).to_hex().to_string())
}

/// A change that cannot be made. The file is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Syntax {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}: `partner` must be a list of [[partner]] tables")]
    Shape { path: PathBuf },
    #[error("no partner {0:?} in the file")]
    UnknownPartner(String),
    #[error("a partner {0:?} already exists")]
    Exists(String),
    #[error("a new partner needs --shops")]
    NoShops,
    /// The edited file would not load; the message names the rule.
    #[error("the change was not saved: {0}")]
    Invalid(PartnersError),
    /// The file changed since the operator read it (a hand edit, another operator): nothing
    /// was saved, so that change is not overwritten blindly.
    #[error("{path} was changed since it was read (by hand or by someone else); nothing was saved: read it again and redo the change")]
    Conflict { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Settings an operator can give to `add` and `set`; `None` leaves a setting as it is (or at
/// its default for a new partner).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Settings {
    pub name: Option<String>,
    pub shops: Option<Vec<u32>>,
    pub format: Option<Format>,
    pub file_type: Option<FileType>,
    pub languages: Option<Vec<String>>,
    pub currency: Option<String>,
    pub discount_percent: Option<Decimal>,
    pub wholesale: Option<bool>,
    pub only_in_stock: Option<bool>,
    /// Assortment, price and stock rules.
    pub rules: super::rules_edit::RuleSettings,
}

/// A token just created: the only moment it exists outside the partner's hands.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub partner: String,
    pub token: String,
    pub shops: Vec<u32>,
}

impl IssuedToken {
    /// Gateway URLs of the partner, one per shop, under `public_url` (no trailing slash).
    pub fn gateway_urls(&self, public_url: &str) -> Vec<String> {
        self.shops
            .iter()
            .map(|shop| {
                format!(
                    "{public_url}/feeds/{}/{}/{shop}/gateway.xml",
                    self.partner, self.token
                )
            })
            .collect()
    }

    /// The same gateways in IdoSell's URL form.
    pub fn idosell_urls(&self, public_url: &str) -> Vec<String> {
        self.shops
            .iter()
            .map(|shop| {
                format!(
                    "{public_url}/edi/export-offer.php?client={}&token={}&shop={shop}&type=gateway&format=xml&iof_3_0",
                    self.partner, self.token
                )
            })
            .collect()
    }
}

/// A new random token: 192 bits from the operating system, URL-safe base64 (32 characters).
pub fn generate_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64url(&bytes)
}

/// Hex SHA-256 of a token, as stored in `token_sha256`.
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(hash_token(token))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

/// Add a partner with a new token. Needs `settings.shops`.
pub fn add<'a>(
    file: impl Into<Target<'a>>,
    config: &Config,
    id: &str,
    settings: &Settings,
) -> Result<IssuedToken, EditError> {
    let file = file.into();
    let path = file.path;
    let shops = settings.shops.clone().ok_or(EditError::NoShops)?;
    let token = generate_token();
    edit(file, config, |doc| {
        let partners = partner_tables(doc, path, true)?;
        if partners
            .iter()
            .any(|t| t.get("id").and_then(Item::as_str) == Some(id))
        {
            return Err(EditError::Exists(id.to_string()));
        }
        let mut table = Table::new();
        table.insert("id", value(id));
        table.insert("name", value(settings.name.clone().unwrap_or_default()));
        table.insert("token_sha256", value(token_sha256_hex(&token)));
        table.insert("offer_access", value(true));
        table.insert("shops", value(int_array(&shops)));
        apply_settings(
            &mut table,
            &Settings {
                name: None,
                shops: None,
                ..settings.clone()
            },
        );
        partners.push(table);
        Ok(())
    })?;
    Ok(IssuedToken {
        partner: id.to_string(),
        token,
        shops,
    })
}

/// Change settings of an existing partner.
pub fn set<'a>(
    file: impl Into<Target<'a>>,
    config: &Config,
    id: &str,
    settings: &Settings,
) -> Result<(), EditError> {
    let file = file.into();
    let path = file.path;
    edit(file, config, |doc| {
        let table = find(doc, path, id)?;
        apply_settings(table, settings);
        Ok(())
    })
}

/// Switch a partner's offer access on (restore) or off (revoke). The account, its token and
/// its settings stay. Returns false when it already was as asked (the file is not rewritten).
pub fn set_access<'a>(
    file: impl Into<Target<'a>>,
    config: &Config,
    id: &str,
    on: bool,
) -> Result<bool, EditError> {
    let file = file.into();
    let path = file.path;
    let mut changed = false;
    edit(file, config, |doc| {
        let table = find(doc, path, id)?;
        let current = table
            .get("offer_access")
            .and_then(Item::as_bool)
            .unwrap_or(true);
        if current != on {
            table.insert("offer_access", value(on));
            changed = true;
        }
        Ok(())
    })?;
    Ok(changed)
}

/// Give a partner a new token; the old one stops working (and its downloads are cut) as soon
/// as the server reloads the file.
pub fn rotate<'a>(
    file: impl Into<Target<'a>>,
    config: &Config,
    id: &str,
) -> Result<IssuedToken, EditError> {
    let file = file.into();
    let path = file.path;
    let token = generate_token();
    let mut shops = Vec::new();
    edit(file, config, |doc| {
        let table = find(doc, path, id)?;
        set_token_hash(table, &token_sha256_hex(&token));
        shops = table
            .get("shops")
            .and_then(Item::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_integer())
                    .filter_map(|n| u32::try_from(n).ok())
                    .collect()
            })
            .unwrap_or_default();
        Ok(())
    })?;
    Ok(IssuedToken {
        partner: id.to_string(),
        token,
        shops,
    })
}

/// The global switch: off answers 403 to every feed request.
pub fn set_sharing<'a>(
    file: impl Into<Target<'a>>,
    config: &Config,
    on: bool,
) -> Result<(), EditError> {
    let file = file.into();
    let path = file.path;
    edit(file, config, |doc| {
        let sharing = doc.entry("sharing").or_insert_with(|| {
            let mut t = Table::new();
            // Put a new [sharing] table first, where a reader looks for it.
            t.set_position(0);
            Item::Table(t)
        });
        let Some(sharing) = sharing.as_table_like_mut() else {
            return Err(EditError::Shape {
                path: path.to_path_buf(),
            });
        };
        sharing.insert("enabled", value(on));
        Ok(())
    })
}

/// Remove a partner's account: its URLs answer 404 and its downloads in flight are cut as
/// soon as the server reloads the file.
pub fn remove<'a>(file: impl Into<Target<'a>>, config: &Config, id: &str) -> Result<(), EditError> {
    let file = file.into();
    let path = file.path;
    edit(file, config, |doc| {
        if !doc.contains_key("partner") {
            return Err(EditError::UnknownPartner(id.to_string()));
        }
        let partners = partner_tables(doc, path, false)?;
        let index = partners
            .iter()
            .position(|t| t.get("id").and_then(Item::as_str) == Some(id))
            .ok_or_else(|| EditError::UnknownPartner(id.to_string()))?;
        partners.remove(index);
        Ok(())
    })
}

/// The file's entries after checking it loads. An absent file has none.
pub fn list(path: &Path, config: &Config) -> Result<PartnersFile, EditError> {
    list_seen(path, config).map(|(file, _)| file)
}

/// [`list`] and the [`content_hash`] of the same read: what an edit form shows and names
/// as the file it was made against.
pub fn list_seen(path: &Path, config: &Config) -> Result<(PartnersFile, String), EditError> {
    let text = read(path)?;
    Partners::parse(&text, path, config).map_err(EditError::Invalid)?;
    let file = toml::from_str(&text).map_err(|e: toml::de::Error| EditError::Syntax {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    Ok((file, blake3::hash(text.as_bytes()).to_hex().to_string()))
}

/// Read, check against what the operator saw, change, validate, write atomically.
fn edit(
    target: Target<'_>,
    config: &Config,
    change: impl FnOnce(&mut DocumentMut) -> Result<(), EditError>,
) -> Result<(), EditError> {
    let path = target.path;
    let before = read(path)?;
    if let Some(seen) = target.seen {
        // Neither hash is secret: a plain comparison.
        if blake3::hash(before.as_bytes()).to_hex().as_str() != seen {
            return Err(EditError::Conflict {
                path: path.to_path_buf(),
            });
        }
    }
    let mut doc: DocumentMut =
        before
            .parse()
            .map_err(|e: toml_edit::TomlError| EditError::Syntax {
                path: path.to_path_buf(),
                source: Box::new(e),
            })?;
    change(&mut doc)?;
    let after = doc.to_string();
    Partners::parse(&after, path, config).map_err(EditError::Invalid)?;
    if after == before {
        return Ok(());
    }
    write_atomically(path, after.as_bytes())
}

fn read(path: &Path) -> Result<String, EditError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        // A first `add` creates the file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(EditError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn partner_tables<'a>(
    doc: &'a mut DocumentMut,
    path: &Path,
    create: bool,
) -> Result<&'a mut ArrayOfTables, EditError> {
    if create && !doc.contains_key("partner") {
        doc.insert("partner", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    match doc.get_mut("partner") {
        Some(Item::ArrayOfTables(a)) => Ok(a),
        Some(_) => Err(EditError::Shape {
            path: path.to_path_buf(),
        }),
        None => Err(EditError::Shape {
            path: path.to_path_buf(),
        }),
    }
}

fn find<'a>(doc: &'a mut DocumentMut, path: &Path, id: &str) -> Result<&'a mut Table, EditError> {
    if !doc.contains_key("partner") {
        return Err(EditError::UnknownPartner(id.to_string()));
    }
    partner_tables(doc, path, false)?
        .iter_mut()
        .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
        .ok_or_else(|| EditError::UnknownPartner(id.to_string()))
}

/// Store a token hash where the account's token was, dropping a plain `token`.
fn set_token_hash(table: &mut Table, hex: &str) {
    if !table.contains_key("token") {
        table.insert("token_sha256", value(hex));
        return;
    }
    // Rebuild to keep the key order: the hash takes the plain token's place.
    let mut rebuilt = Table::new();
    *rebuilt.decor_mut() = table.decor().clone();
    if let Some(position) = table.position() {
        rebuilt.set_position(position);
    }
    for (key, item) in table.iter() {
        match key {
            "token" => {
                rebuilt.insert("token_sha256", value(hex));
            }
            "token_sha256" => {}
            _ => {
                rebuilt.insert(key, item.clone());
            }
        }
    }
    *table = rebuilt;
}

fn int_array(values: &[u32]) -> Array {
    values.iter().map(|&n| i64::from(n)).collect()
}

fn apply_settings(table: &mut Table, s: &Settings) {
    if let Some(name) = &s.name {
        table.insert("name", value(name.as_str()));
    }
    if let Some(shops) = &s.shops {
        table.insert("shops", value(int_array(shops)));
    }
    if let Some(format) = s.format {
        table.insert("format", value(format_name(format)));
    }
    if let Some(file_type) = s.file_type {
        table.insert("file_type", value(file_type_name(file_type)));
    }
    if let Some(languages) = &s.languages {
        let array: Array = languages.iter().map(String::as_str).collect();
        table.insert("languages", value(array));
    }
    if let Some(currency) = &s.currency {
        table.insert("currency", value(currency.as_str()));
    }
    if let Some(discount) = s.discount_percent {
        // A string keeps the decimal exact, as the loader reads it.
        table.insert("discount_percent", value(discount.normalize().to_string()));
    }
    if let Some(wholesale) = s.wholesale {
        table.insert("wholesale", value(wholesale));
    }
    if let Some(only_in_stock) = s.only_in_stock {
        table.insert("only_in_stock", value(only_in_stock));
    }
    super::rules_edit::apply(table, &s.rules);
}

/// The name of a format in the file and on the command line.
pub fn format_name(format: Format) -> &'static str {
    match format {
        Format::Iof30 => "iof-3.0",
        Format::Csv => "csv",
    }
}

/// The name of a file type in the file and on the command line.
pub fn file_type_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Plain => "xml",
        FileType::Gzip => "xml.gz",
    }
}

/// Write `bytes` to `path` so that readers see the old file or the new one, never a mix, and
/// the new one survives a crash once this returns. Keeps the old file's permissions; a new
/// file is readable by its owner only (it holds token hashes).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), EditError> {
    let io = |source| EditError::Write {
        path: path.to_path_buf(),
        source,
    };
    // A unique temp name, so two writers never write into the same temp file.
    let mut file = crate::fsio::create(path).map_err(io)?;
    let result = (|| {
        match std::fs::metadata(path) {
            Ok(meta) => file.file().set_permissions(meta.permissions())?,
            Err(_) => restrict(file.file())?,
        }
        file.write_all(bytes)?;
        file.commit_and_sync_dir()
    })();
    result.map_err(io)
}

#[cfg(unix)]
fn restrict(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partners::Access;

    fn config() -> Config {
        let mut c = Config::for_data_dir(Path::new("data"));
        c.rates.insert("EUR".into(), Decimal::new(23, 2));
        c
    }

    const START: &str = "# Our partners.\n\n[[partner]]\nid = \"keep\"  # a comment that must survive\ntoken = \"0123456789abcdef-keep\"\nshops = [1]\n";

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partners.toml");
        std::fs::write(&path, START).unwrap();
        (dir, path)
    }

    fn load(path: &Path) -> Partners {
        Partners::load(path, &config()).unwrap()
    }

    #[test]
    fn base64url_matches_the_rfc_alphabet() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff, 0xfe]), "-__-");
        let t = generate_token();
        assert_eq!(t.len(), 32);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(t, generate_token());
    }

    #[test]
    fn add_stores_only_the_hash_and_keeps_other_entries_and_comments() {
        let (_dir, path) = setup();
        let settings = Settings {
            name: Some("Nowy \"Sklep\"".into()),
            shops: Some(vec![1, 2]),
            format: Some(Format::Csv),
            languages: Some(vec!["eng".into()]),
            currency: Some("EUR".into()),
            discount_percent: Some(Decimal::new(75, 1)),
            ..Default::default()
        };
        let issued = add(&path, &config(), "new-one", &settings).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("a comment that must survive"), "{text}");
        assert!(
            !text.contains(&issued.token),
            "the token itself is never stored"
        );
        assert!(text.contains(&token_sha256_hex(&issued.token)));
        let p = load(&path);
        assert_eq!(p.len(), 2);
        let Access::Granted(a) = p.authenticate("new-one", &issued.token) else {
            panic!("the printed token works")
        };
        let prof = a.profile(2).unwrap();
        assert_eq!(prof.format, Format::Csv);
        assert_eq!(prof.currency, "EUR");
        assert_eq!(prof.discount_percent.to_string(), "7.5");
        assert_eq!(a.name, "Nowy \"Sklep\"");
        assert!(matches!(
            p.authenticate("keep", "0123456789abcdef-keep"),
            Access::Granted(_)
        ));
        assert_eq!(
            issued.gateway_urls("https://f.example")[1],
            format!(
                "https://f.example/feeds/new-one/{}/2/gateway.xml",
                issued.token
            )
        );
        assert!(matches!(
            add(&path, &config(), "new-one", &settings),
            Err(EditError::Exists(_))
        ));
        assert!(matches!(
            add(&path, &config(), "x", &Settings::default()),
            Err(EditError::NoShops)
        ));
    }

    #[test]
    fn revoke_restore_rotate_and_sharing() {
        let (_dir, path) = setup();
        let c = config();
        assert!(set_access(&path, &c, "keep", false).unwrap());
        assert!(
            !set_access(&path, &c, "keep", false).unwrap(),
            "already off"
        );
        assert!(matches!(
            load(&path).authenticate("keep", "0123456789abcdef-keep"),
            Access::Revoked
        ));
        assert!(set_access(&path, &c, "keep", true).unwrap());
        assert!(matches!(
            load(&path).authenticate("keep", "0123456789abcdef-keep"),
            Access::Granted(_)
        ));
        let issued = rotate(&path, &c, "keep").unwrap();
        assert_eq!(issued.shops, vec![1]);
        let p = load(&path);
        assert!(matches!(
            p.authenticate("keep", "0123456789abcdef-keep"),
            Access::NotFound
        ));
        assert!(matches!(
            p.authenticate("keep", &issued.token),
            Access::Granted(_)
        ));
        assert!(p.get("keep").unwrap().plain_token.is_none());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.find("token_sha256").unwrap() < text.find("shops").unwrap(),
            "the hash takes the plain token's place: {text}"
        );
        set_sharing(&path, &c, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.find("[sharing]").unwrap() < text.find("[[partner]]").unwrap(),
            "{text}"
        );
        assert!(!load(&path).sharing_enabled);
        set_sharing(&path, &c, true).unwrap();
        assert!(load(&path).sharing_enabled);
        assert!(matches!(
            set_access(&path, &c, "nobody", false),
            Err(EditError::UnknownPartner(_))
        ));
    }

    #[test]
    fn an_invalid_change_is_refused_and_the_file_untouched() {
        let (_dir, path) = setup();
        let bad = Settings {
            currency: Some("USD".into()),
            ..Default::default()
        };
        let err = set(&path, &config(), "keep", &bad).unwrap_err();
        assert!(err.to_string().contains("USD"), "{err}");
        let bad = Settings {
            discount_percent: Some(Decimal::ONE_HUNDRED),
            ..Default::default()
        };
        assert!(matches!(
            set(&path, &config(), "keep", &bad),
            Err(EditError::Invalid(_))
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), START);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != "partners.toml")
            .collect();
        assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
    }

    #[test]
    fn set_changes_only_the_given_settings() {
        let (_dir, path) = setup();
        set(
            &path,
            &config(),
            "keep",
            &Settings {
                only_in_stock: Some(true),
                file_type: Some(FileType::Gzip),
                shops: Some(vec![2, 3]),
                ..Default::default()
            },
        )
        .unwrap();
        let file = list(&path, &config()).unwrap();
        let e = &file.partners[0];
        assert!(e.only_in_stock);
        assert_eq!(e.file_type, FileType::Gzip);
        assert_eq!(e.shops, vec![2, 3]);
        assert_eq!(e.languages, vec!["pol".to_string()], "default untouched");
        assert!(!e.wholesale);
    }

    #[test]
    fn the_first_add_creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partners.toml");
        add(
            &path,
            &config(),
            "first",
            &Settings {
                shops: Some(vec![1]),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(load(&path).len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_edit_against_a_file_changed_since_it_was_read_is_refused() {
        let (_dir, path) = setup();
        let c = config();
        let seen = content_hash(&path).unwrap();
        let target = Target {
            path: &path,
            seen: Some(&seen),
        };
        assert!(set_access(target, &c, "keep", false).unwrap());
        // The edit changed the file: the hash read before it is stale now.
        let edited = std::fs::read_to_string(&path).unwrap();
        assert!(matches!(
            set_access(target, &c, "keep", true),
            Err(EditError::Conflict { .. })
        ));
        // A hand edit meanwhile: refused, and the hand edit kept as it is.
        let seen = content_hash(&path).unwrap();
        let by_hand = format!("{edited}# edited by hand\n");
        std::fs::write(&path, &by_hand).unwrap();
        let target = Target {
            path: &path,
            seen: Some(&seen),
        };
        for result in [
            set(target, &c, "keep", &Settings::default()).map(|_| ()),
            rotate(target, &c, "keep").map(|_| ()),
            remove(target, &c, "keep"),
            set_sharing(target, &c, false),
            add(
                target,
                &c,
                "other",
                &Settings {
                    shops: Some(vec![1]),
                    ..Default::default()
                },
            )
            .map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, EditError::Conflict { .. }), "{err}");
            assert!(err.to_string().contains("nothing was saved"), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), by_hand);
        // Against the file as it is now, the edit goes through.
        let seen = content_hash(&path).unwrap();
        let target = Target {
            path: &path,
            seen: Some(&seen),
        };
        assert!(set_access(target, &c, "keep", true).unwrap());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("# edited by hand"));
    }

    #[test]
    fn remove_takes_one_account_and_keeps_the_rest() {
        let (_dir, path) = setup();
        let c = config();
        let other = add(
            &path,
            &c,
            "other",
            &Settings {
                shops: Some(vec![1]),
                ..Default::default()
            },
        )
        .unwrap();
        remove(&path, &c, "keep").unwrap();
        let p = load(&path);
        assert_eq!(p.len(), 1);
        assert!(p.get("keep").is_none());
        assert!(matches!(
            p.authenticate("other", &other.token),
            Access::Granted(_)
        ));
        assert!(matches!(
            remove(&path, &c, "keep"),
            Err(EditError::UnknownPartner(_))
        ));
    }
}
