//! A file response: validators, preconditions, ranges and cache headers, decided by the pure
//! rules and put on the wire here.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::body::{self, Body, Revocable};
use super::rules::{self, Conditions, Precondition, RangeDecision, Validators};
use super::HttpError;
use crate::artifacts::Artifact;

/// How long caches may keep a file, by the gateway node it is listed under.
pub fn cache_control(kind: &str) -> &'static str {
    match kind {
        // Change-file URLs name one immutable file.
        k if k.starts_with("full_change") => "public, max-age=31536000, immutable",
        // Freshness matters most here: prices and stock.
        "gateway" | "light" => {
            "public, max-age=30, stale-while-revalidate=30, stale-if-error=86400"
        }
        "full" => "public, max-age=300, stale-while-revalidate=300, stale-if-error=86400",
        _ => "public, max-age=3600, stale-while-revalidate=600, stale-if-error=86400",
    }
}

/// `Last-Modified` for `t`. Most responses of a moment share a few times (a generation's),
/// so each thread keeps the last one formatted.
fn http_date(t: std::time::SystemTime) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(std::time::SystemTime, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((at, value)) if *at == t => value.clone(),
        _ => {
            let value = HeaderValue::from_str(&httpdate::fmt_http_date(t))
                .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
            *last = Some((t, value.clone()));
            value
        }
    })
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The representation to send: the gzip one when the artifact has it and the client prefers
/// it. Validators, preconditions and ranges all apply to the chosen representation.
pub fn representation<'a>(artifact: &'a Artifact, headers: &HeaderMap) -> &'a Artifact {
    match &artifact.gzip {
        Some(gz) if rules::prefers_gzip(header(headers, header::ACCEPT_ENCODING)) => gz,
        _ => artifact,
    }
}

/// The purge keys of an answer, as the two headers that carry them: `Surrogate-Key`
/// (space-separated, Fastly and Varnish) and `Cache-Tag` (comma-separated, Cloudflare).
#[derive(Clone, Debug)]
pub struct PurgeKeys {
    pub surrogate_key: HeaderValue,
    pub cache_tag: HeaderValue,
}

impl PurgeKeys {
    /// Both headers from space-separated keys.
    pub fn from_keys(keys: String) -> Result<PurgeKeys, HttpError> {
        let cache_tag = keys.replace(' ', ",");
        let value = |s: String| {
            HeaderValue::from_maybe_shared(bytes::Bytes::from(s))
                .map_err(|e| HttpError::internal("a surrogate key", e))
        };
        Ok(PurgeKeys {
            surrogate_key: value(keys)?,
            cache_tag: value(cache_tag)?,
        })
    }
}

/// Whose file an answer is, as its purge keys name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyScope<'a> {
    /// A partner's stable URL (`/feeds/{partner}/…/{shop}/…`).
    Partner { partner: &'a str, shop: u32 },
    /// A profile-addressed path (`/p/{key}/…`), one cached copy shared by partners.
    Path,
}

/// [`PurgeKeys`] built once per partner, shop, file kind and profile, then shared: every
/// request would otherwise format and validate the same two headers again.
#[derive(Default)]
pub struct PurgeKeyCache {
    /// By a hash of the parts; each entry keeps its parts, so a collision is a miss.
    map: parking_lot::RwLock<std::collections::HashMap<u64, Vec<CachedKeys>>>,
}

struct CachedKeys {
    partner: Option<(Box<str>, u32)>,
    kind: Box<str>,
    profile_key: Box<str>,
    keys: PurgeKeys,
}

impl CachedKeys {
    fn is(&self, scope: KeyScope<'_>, kind: &str, profile_key: &str) -> bool {
        let partner = match scope {
            KeyScope::Partner { partner, shop } => Some((partner, shop)),
            KeyScope::Path => None,
        };
        self.partner.as_ref().map(|(p, s)| (&**p, *s)) == partner
            && &*self.kind == kind
            && &*self.profile_key == profile_key
    }
}

/// Entries kept at most; past it the cache starts again (accounts come and go, keys don't
/// go stale: they are a function of their parts).
const PURGE_KEYS_KEPT: usize = 100_000;

impl PurgeKeyCache {
    /// The purge keys of `kind` (`full`, `gateway`…) of profile `profile_key` in `scope`.
    pub fn get(
        &self,
        scope: KeyScope<'_>,
        kind: &str,
        profile_key: &str,
    ) -> Result<PurgeKeys, HttpError> {
        use std::hash::{Hash, Hasher};
        // Every part is ours (an account's id, a served file's kind, a profile key), never
        // a stranger's bytes: a fast hash needs no defence against chosen collisions.
        let mut hasher = rustc_hash::FxHasher::default();
        (scope, kind, profile_key).hash(&mut hasher);
        let hash = hasher.finish();
        if let Some(found) = self.map.read().get(&hash).and_then(|entries| {
            entries
                .iter()
                .find(|c| c.is(scope, kind, profile_key))
                .map(|c| c.keys.clone())
        }) {
            return Ok(found);
        }
        let keys = PurgeKeys::from_keys(match scope {
            KeyScope::Partner { partner, shop } => {
                crate::purge::surrogate_key(partner, shop, kind, profile_key)
            }
            KeyScope::Path => super::signed::surrogate_key(profile_key, kind),
        })?;
        let mut map = self.map.write();
        if map.len() >= PURGE_KEYS_KEPT {
            map.clear();
        }
        let entries = map.entry(hash).or_default();
        if !entries.iter().any(|c| c.is(scope, kind, profile_key)) {
            entries.push(CachedKeys {
                partner: match scope {
                    KeyScope::Partner { partner, shop } => Some((partner.into(), shop)),
                    KeyScope::Path => None,
                },
                kind: kind.into(),
                profile_key: profile_key.into(),
                keys: keys.clone(),
            });
        }
        Ok(keys)
    }
}

/// Answer a GET or HEAD for `artifact`, in the representation the client prefers. A large
/// body (mapped, in pieces, or read from disk) stops when `revocable`'s grant is revoked;
/// bodies held in memory are small and finish.
///
/// The head is put together in one header map of the right size (no builder moving it from
/// call to call): this runs on every request, and nginx is the yardstick.
pub async fn file(
    method: &Method,
    headers: &HeaderMap,
    artifact: &Artifact,
    keys: PurgeKeys,
    revocable: Option<Revocable>,
) -> Result<Response<Body>, HttpError> {
    let artifact = representation(artifact, headers);
    let validators = Validators {
        etag: &artifact.etag,
        last_modified: artifact.modified,
    };
    let conditions = Conditions {
        if_match: header(headers, header::IF_MATCH),
        if_none_match: header(headers, header::IF_NONE_MATCH),
        if_modified_since: header(headers, header::IF_MODIFIED_SINCE),
        if_unmodified_since: header(headers, header::IF_UNMODIFIED_SINCE),
    };
    let mut head = HeaderMap::with_capacity(12);
    head.insert(
        header::ETAG,
        HeaderValue::from_str(&artifact.etag).map_err(|e| HttpError::internal("an ETag", e))?,
    );
    head.insert(header::LAST_MODIFIED, http_date(artifact.modified));
    head.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control(&artifact.kind)),
    );
    head.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    head.insert(SURROGATE_KEY, keys.surrogate_key);
    head.insert(CACHE_TAG, keys.cache_tag);
    let empty = |mut head: HeaderMap, status: StatusCode| {
        if status != StatusCode::NOT_MODIFIED {
            head.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        answer(status, head, body::empty())
    };
    match rules::evaluate(&conditions, &validators) {
        Precondition::NotModified => return Ok(empty(head, StatusCode::NOT_MODIFIED)),
        Precondition::Failed => return Ok(empty(head, StatusCode::PRECONDITION_FAILED)),
        Precondition::Proceed => {}
    }
    head.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(artifact.content_type),
    );
    head.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(encoding) = artifact.content_encoding {
        head.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    let len = artifact.len;
    let (status, start, count) = match rules::decide_range(
        header(headers, header::RANGE),
        header(headers, header::IF_RANGE),
        len,
        &validators,
    ) {
        RangeDecision::Full => (StatusCode::OK, 0, len),
        RangeDecision::Partial { start, end } => {
            head.insert(
                header::CONTENT_RANGE,
                range_value(format!("bytes {start}-{end}/{len}"))?,
            );
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeDecision::Unsatisfiable => {
            head.insert(
                header::CONTENT_RANGE,
                range_value(format!("bytes */{len}"))?,
            );
            return Ok(empty(head, StatusCode::RANGE_NOT_SATISFIABLE));
        }
    };
    head.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    let body = if *method == Method::HEAD || count == 0 {
        body::empty()
    } else if let Some(bytes) = &artifact.memory {
        body::full(bytes.slice(start as usize..(start + count) as usize))
    } else if let Some(mapped) = &artifact.mapped {
        body::mapped_range(mapped, start, count, revocable)
    } else if let Some(pieces) = &artifact.pieces {
        body::pieces_range(pieces.clone(), start, count, revocable)
    } else {
        body::file_range(&artifact.path, start, count, revocable)
            .await
            .map_err(|e| HttpError::internal(artifact.path.display().to_string(), e))?
    };
    Ok(answer(status, head, body))
}

const SURROGATE_KEY: header::HeaderName = header::HeaderName::from_static("surrogate-key");
const CACHE_TAG: header::HeaderName = header::HeaderName::from_static("cache-tag");

fn range_value(text: String) -> Result<HeaderValue, HttpError> {
    HeaderValue::try_from(text).map_err(|e| HttpError::internal("a Content-Range", e))
}

fn answer(status: StatusCode, head: HeaderMap, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = head;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_follows_the_time_asked_for() {
        let a = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let b = a + std::time::Duration::from_secs(1);
        assert_eq!(http_date(a), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(a), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(b), "Tue, 14 Nov 2023 22:13:21 GMT");
        assert_eq!(http_date(a), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    /// A plain file whose gzip form is not written yet (see `Artifacts::publish_identity`).
    fn identity_only(body: &'static [u8]) -> Artifact {
        Artifact {
            name: "full.xml".into(),
            kind: "full".into(),
            path: std::path::PathBuf::new(),
            len: body.len() as u64,
            md5: String::new(),
            etag: "\"plain\"".into(),
            modified: std::time::SystemTime::UNIX_EPOCH,
            changed: jiff::civil::date(2026, 1, 1).at(0, 0, 0, 0),
            content_type: "application/xml; charset=utf-8",
            content_encoding: None,
            memory: Some(bytes::Bytes::from_static(body)),
            mapped: None,
            pieces: None,
            gzip: None,
        }
    }

    #[tokio::test]
    async fn a_gzip_request_before_the_gzip_form_exists_gets_identity_labelled_so() {
        let artifact = identity_only(b"<offer/>");
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let keys = PurgeKeys::from_keys("k".into()).unwrap();
        let r = file(&Method::GET, &headers, &artifact, keys, None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
        assert_eq!(r.headers()[header::ETAG], "\"plain\"");
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"<offer/>");
    }
    #[test]
    fn cached_purge_keys_are_those_of_their_own_parts() {
        let cache = PurgeKeyCache::default();
        let acme = KeyScope::Partner {
            partner: "acme",
            shop: 1,
        };
        let shop2 = KeyScope::Partner {
            partner: "acme",
            shop: 2,
        };
        // Asked twice (built, then found) and beside its neighbours: each answer is what its
        // own parts give, never a neighbour's.
        for _ in 0..2 {
            for (scope, kind, key) in [
                (acme, "full", "p1"),
                (acme, "light", "p1"),
                (acme, "full", "p2"),
                (shop2, "full", "p1"),
                (KeyScope::Path, "full", "p1"),
            ] {
                let keys = cache.get(scope, kind, key).unwrap();
                let want = match scope {
                    KeyScope::Partner { partner, shop } => {
                        crate::purge::surrogate_key(partner, shop, kind, key)
                    }
                    KeyScope::Path => crate::http::signed::surrogate_key(key, kind),
                };
                assert_eq!(keys.surrogate_key, want.as_str());
                assert_eq!(keys.cache_tag, want.replace(' ', ",").as_str());
            }
        }
        assert_eq!(cache.map.read().values().map(Vec::len).sum::<usize>(), 5);
    }

    #[tokio::test]
    async fn a_304_carries_the_validators_and_purge_keys_but_no_length() {
        let artifact = identity_only(b"<offer/>");
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"plain\""));
        let keys = PurgeKeys::from_keys("a b".into()).unwrap();
        let r = file(&Method::GET, &headers, &artifact, keys, None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], "\"plain\"");
        assert_eq!(r.headers()["surrogate-key"], "a b");
        assert_eq!(r.headers()["cache-tag"], "a,b");
        assert!(r.headers().get(header::CONTENT_LENGTH).is_none());
        assert!(r.headers().get(header::CONTENT_TYPE).is_none());
    }
}
