//! Signed profile-addressed URLs: the partner's authority carried in the query of a path that
//! every partner of one render profile shares, so a cache in front keeps one copy per profile.
//!
//! A file URL is `/p/{key}/{file}?partner={id}&expires={unix}&sig={hex}` where `sig` is the
//! lowercase hex HMAC-SHA256, under the configured key, of the canonical string
//!
//! ```text
//! {partner} LF {path} LF {expires}
//! ```
//!
//! (`path` exactly as in the URL, e.g. `/p/0123456789abcdef/full.xml`; `expires` in decimal
//! Unix seconds). An edge computes the same string from the request (`fixtures/varnish/iofd.vcl`,
//! `docs/cdn.md`). Two keys verify — the current one and the previous one — so a key can be
//! rotated without breaking the URLs already handed out; new URLs are signed with the current.
//!
//! Expiry is bucketed: every URL signed within one bucket (a quarter of the lifetime) carries
//! the same `expires`, the end of the bucket's start plus the lifetime. A partner's gateway then
//! has the same bytes and ETag for a whole bucket instead of changing every second (which
//! would defeat conditional requests and a cache of the gateway), and a URL stays valid for at
//! least three quarters of the lifetime after it was listed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::clock::Clock;

/// Shortest key accepted: 32 bytes, the strength of the HMAC.
pub const MIN_KEY_LEN: usize = 32;

/// The file under the data directory holding the key generated when none is configured.
pub const GENERATED_KEY_FILE: &str = "signing.key";

/// Signing settings from the configuration, before a missing key is generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningConfig {
    /// Signs new URLs and verifies; `None`: the key in `<data>/signing.key`, generated once.
    pub key: Option<String>,
    /// Still verifies (URLs signed before a rotation).
    pub previous_key: Option<String>,
    /// How long a signed URL is valid for, at most.
    pub lifetime: Duration,
}

impl Default for SigningConfig {
    fn default() -> Self {
        SigningConfig {
            key: None,
            previous_key: None,
            lifetime: Duration::from_secs(4 * 3600),
        }
    }
}

/// A key that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read the signing key {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the generated signing key {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the signing key {path} {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Whether `key` can sign: long enough, and printable ASCII without spaces or quotes (an edge
/// configuration carries it inside a string literal).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.len() < MIN_KEY_LEN {
        return Err(format!("must be at least {MIN_KEY_LEN} characters"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err("must be printable ASCII without spaces, quotes or backslashes".into());
    }
    Ok(())
}

/// The keys and lifetime in force, and the clock that decides expiry.
#[derive(Clone)]
pub struct Signer {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
    lifetime: Duration,
    clock: Clock,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Signer")
            .field("lifetime", &self.lifetime)
            .field("previous", &self.previous.is_some())
            .finish()
    }
}

/// A verified or rejected signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Past its `expires`.
    Expired,
    /// No key gives this signature.
    Bad,
}

impl Signer {
    /// The signer of `config`: its key, or the one generated under `data_dir` (created with
    /// mode 0600 the first time and kept, so URLs survive a restart).
    pub fn resolve(
        config: &SigningConfig,
        data_dir: &Path,
        clock: Clock,
    ) -> Result<Signer, SigningError> {
        let current = match &config.key {
            Some(key) => key.clone(),
            None => generated_key(data_dir)?,
        };
        Ok(Signer::new(
            current.as_bytes(),
            config.previous_key.as_deref().map(str::as_bytes),
            config.lifetime,
            clock,
        ))
    }

    /// A signer with these keys (tests and tools).
    pub fn new(current: &[u8], previous: Option<&[u8]>, lifetime: Duration, clock: Clock) -> Self {
        Signer {
            current: current.to_vec(),
            previous: previous.map(<[u8]>::to_vec),
            lifetime: lifetime.max(Duration::from_secs(4)),
            clock,
        }
    }

    /// The `expires` of a URL signed now: see the module comment.
    pub fn expires_now(&self) -> i64 {
        let now = self.clock.now().as_second();
        let lifetime = self.lifetime.as_secs() as i64;
        let bucket = (lifetime / 4).max(1);
        now.div_euclid(bucket) * bucket + lifetime
    }

    /// The signature of (`partner`, `path`, `expires`) under the current key.
    pub fn sign(&self, partner: &str, path: &str, expires: i64) -> String {
        hex::encode(mac(&self.current, partner, path, expires))
    }

    /// The query of a signed URL for `path`: `partner=…&expires=…&g=…&sig=…`. `g`, the
    /// generation the link was made from, is not signed: it grants nothing, it only lets a
    /// replica that lags behind wait for that generation (`docs/scale-out.md`), and leaving
    /// it out of the canonical string keeps the edge's check unchanged.
    pub fn query(&self, partner: &str, path: &str, expires: i64, generation: u64) -> String {
        let sig = self.sign(partner, path, expires);
        format!("partner={partner}&expires={expires}&g={generation}&sig={sig}")
    }

    /// Check a presented signature against both keys, in constant time per key.
    pub fn verify(&self, partner: &str, path: &str, expires: i64, sig: &str) -> Verdict {
        let Some(presented) = hex::decode(sig).ok().filter(|s| s.len() == 32) else {
            return Verdict::Bad;
        };
        let keys = std::iter::once(&self.current).chain(self.previous.as_ref());
        let mut valid = subtle::Choice::from(0);
        for key in keys {
            valid |= mac(key, partner, path, expires).ct_eq(&presented[..]);
        }
        if !bool::from(valid) {
            return Verdict::Bad;
        }
        if expires <= self.clock.now().as_second() {
            return Verdict::Expired;
        }
        Verdict::Valid
    }
}

/// The canonical string that is signed (see the module comment).
pub fn canonical(partner: &str, path: &str, expires: i64) -> String {
    format!("{partner}\n{path}\n{expires}")
}

fn mac(key: &[u8], partner: &str, path: &str, expires: i64) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(canonical(partner, path, expires).as_bytes());
    mac.finalize().into_bytes().into()
}

/// The key in `<data>/signing.key`, generated (64 hex characters of randomness) and written
/// durably with mode 0600 when the file does not exist yet.
fn generated_key(data_dir: &Path) -> Result<String, SigningError> {
    use std::os::unix::fs::PermissionsExt;
    let path = data_dir.join(GENERATED_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim().to_string();
            check_key(&key).map_err(|reason| SigningError::Invalid {
                path: path.clone(),
                reason,
            })?;
            return Ok(key);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(SigningError::Read { path, source }),
    }
    let write = |source| SigningError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(write)?;
    let key = hex::encode(rand::random::<[u8; 32]>());
    let file = crate::fsio::create(&path).map_err(write)?;
    file.file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(write)?;
    std::io::Write::write_all(&mut file.file(), format!("{key}\n").as_bytes()).map_err(write)?;
    file.commit_and_sync_dir().map_err(write)?;
    tracing::info!(path = %path.display(), "generated a URL signing key (give the same key to the edge to verify there)");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(clock: &Clock) -> Signer {
        Signer::new(
            b"current-key-0123456789abcdef0123",
            Some(b"previous-key-0123456789abcdef012"),
            Duration::from_secs(3600),
            clock.clone(),
        )
    }

    #[test]
    fn a_signature_verifies_under_either_key_until_it_expires() {
        let clock = Clock::manual(jiff::Timestamp::from_second(1_800_000_000).unwrap());
        let s = signer(&clock);
        let expires = s.expires_now();
        let path = "/p/0123456789abcdef/full.xml";
        let sig = s.sign("acme", path, expires);
        assert_eq!(sig.len(), 64);
        assert_eq!(s.verify("acme", path, expires, &sig), Verdict::Valid);
        // Each part of the canonical string is covered.
        assert_eq!(s.verify("acme2", path, expires, &sig), Verdict::Bad);
        assert_eq!(
            s.verify("acme", "/p/0123456789abcdef/light.xml", expires, &sig),
            Verdict::Bad
        );
        assert_eq!(s.verify("acme", path, expires + 1, &sig), Verdict::Bad);
        assert_eq!(s.verify("acme", path, expires, "zz"), Verdict::Bad);
        // After a rotation the old key still verifies what it signed.
        let rotated = Signer::new(
            b"next-key-0123456789abcdef0123456",
            Some(b"current-key-0123456789abcdef0123"),
            Duration::from_secs(3600),
            clock.clone(),
        );
        assert_eq!(rotated.verify("acme", path, expires, &sig), Verdict::Valid);
        assert_ne!(rotated.sign("acme", path, expires), sig);
        assert!(clock.advance(Duration::from_secs(3600)));
        assert_eq!(s.verify("acme", path, expires, &sig), Verdict::Expired);
    }

    #[test]
    fn expiry_is_bucketed_to_a_quarter_of_the_lifetime() {
        // A multiple of the 900 s bucket of a 1 h lifetime.
        let start = 1_800_000_000;
        assert_eq!(start % 900, 0);
        let clock = Clock::manual(jiff::Timestamp::from_second(start).unwrap());
        let s = signer(&clock);
        let first = s.expires_now();
        assert_eq!(first, start + 3600);
        assert!(clock.advance(Duration::from_secs(899)));
        assert_eq!(s.expires_now(), first, "stable within the bucket");
        assert!(clock.advance(Duration::from_secs(1)));
        assert_eq!(s.expires_now(), first + 900);
    }

    #[test]
    fn the_canonical_string_matches_a_known_hmac() {
        // The value an edge must compute for the same inputs (RFC 2104 HMAC-SHA256).
        let clock = Clock::manual(jiff::Timestamp::from_second(0).unwrap());
        let s = Signer::new(b"key", None, Duration::from_secs(60), clock);
        assert_eq!(
            canonical("acme", "/p/k/full.xml", 1800000000),
            "acme\n/p/k/full.xml\n1800000000"
        );
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").unwrap();
        mac.update(b"acme\n/p/k/full.xml\n1800000000");
        assert_eq!(
            s.sign("acme", "/p/k/full.xml", 1800000000),
            hex::encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn a_missing_key_is_generated_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(jiff::Timestamp::from_second(1_800_000_000).unwrap());
        let config = SigningConfig::default();
        let a = Signer::resolve(&config, dir.path(), clock.clone()).unwrap();
        let path = dir.path().join(GENERATED_KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Signer::resolve(&config, dir.path(), clock.clone()).unwrap();
        assert_eq!(
            a.sign("p", "/p/x", 1),
            b.sign("p", "/p/x", 1),
            "kept across starts"
        );
        std::fs::write(&path, "short\n").unwrap();
        let err = Signer::resolve(&config, dir.path(), clock).unwrap_err();
        assert!(err.to_string().contains("at least 32"), "{err}");
    }
}
