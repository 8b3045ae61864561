//! One simulated partner: an IOF importer's poll loop.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_RANGE, ETAG, IF_NONE_MATCH,
    IF_RANGE, RANGE,
};
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cache::{Lookup, ParseCache};
use super::client::Client;
use super::feed::{
    link_generation, link_key, parse_gateway, parse_light, same_link, GatewayDoc, LightIndex,
    Listed,
};
use super::offer::{parse_change, OfferDigest, ProductDigest};
use super::Shared;

/// How long a partner waits for another partner's parse of the same bytes.
const PARSE_WAIT: Duration = Duration::from_secs(120);
/// How long a body that does not match its gateway's hash is rechecked against the gateway
/// before it counts as a mismatch: replicas follow the writer within about a second.
const RECHECK_FOR: Duration = Duration::from_secs(3);
const RECHECK_EVERY: Duration = Duration::from_millis(100);
/// Bodies larger than this are refused (a runaway response must not eat the machine).
const MAX_BODY: u64 = 8 << 30;

/// Decompress a body fetched from a `.gz` URL (a gzip file, not a content encoding).
pub fn gunzip_if_gz(url: &str, bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let path = url.split('?').next().unwrap_or(url);
    if !path.ends_with(".gz") {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 6);
    flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out)?;
    Ok(out)
}

/// MD5 (and optionally a copy) of the identity bytes of a body.
struct Sink {
    md5: Md5,
    keep: Option<Vec<u8>>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.md5.update(buf);
        if let Some(k) = self.keep.as_mut() {
            k.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Writer {
    Plain(Sink),
    Gzip(Box<flate2::write::GzDecoder<Sink>>),
}

impl Writer {
    fn new(gzip: bool, keep: bool) -> Writer {
        let sink = Sink {
            md5: Md5::new(),
            keep: keep.then(Vec::new),
        };
        if gzip {
            Writer::Gzip(Box::new(flate2::write::GzDecoder::new(sink)))
        } else {
            Writer::Plain(sink)
        }
    }
    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Plain(s) => s.write_all(buf),
            Writer::Gzip(d) => d.write_all(buf),
        }
    }
    fn finish(self) -> std::io::Result<Sink> {
        match self {
            Writer::Plain(s) => Ok(s),
            Writer::Gzip(d) => d.finish(),
        }
    }
}

/// A verified body.
struct Body {
    md5: String,
    etag: Option<String>,
    bytes: Option<Vec<u8>>,
}

enum Fetched {
    NotModified,
    Body(Body),
}

/// What became of a listed file.
enum Outcome {
    /// The body matches the gateway's hash (bytes when asked to keep them).
    Verified(Option<Vec<u8>>),
    /// 304, and what we hold is what the gateway lists.
    Unchanged,
    /// Failed or superseded; counted already. Try again next poll.
    Skipped,
}

/// What the partner knows of one listed file.
#[derive(Clone, Debug, Default)]
struct Known {
    url: String,
    etag: Option<String>,
    md5: Option<String>,
}

/// The partner's local copy of the offer.
struct Base {
    /// MD5 of the base full.xml.
    md5: String,
    /// State key of the local copy (base MD5, then one step per change file applied).
    key: String,
    /// The parsed copy; `None` when it could not be had (offer check off, or parse failed).
    offer: Option<Arc<OfferDigest>>,
    /// `changed` of the base, then of the last change file applied.
    applied_until: Option<String>,
    applied: HashSet<String>,
}

pub struct Partner {
    id: usize,
    gateway_url: String,
    gzip: bool,
    rng: ChaCha8Rng,
    client: Client,
    shared: Arc<Shared>,
    gateway_etag: Option<String>,
    gateway: Option<Arc<GatewayDoc>>,
    /// By gateway kind (`full`, `light`, `categories`, ...).
    known: HashMap<String, Known>,
    /// Length of each URL's body last time, to place Range splits.
    lengths: HashMap<String, u64>,
    base: Option<Base>,
}

impl Partner {
    pub fn new(
        id: usize,
        gateway_url: String,
        seed: u64,
        gzip: bool,
        shared: Arc<Shared>,
    ) -> Partner {
        Partner {
            id,
            gateway_url,
            gzip,
            rng: ChaCha8Rng::seed_from_u64(seed),
            client: Client::new(shared.opts.allow_remote),
            shared,
            gateway_etag: None,
            gateway: None,
            known: HashMap::new(),
            lengths: HashMap::new(),
            base: None,
        }
    }

    /// Poll until the deadline, starting at a random point of the first interval so partners
    /// do not arrive in step.
    pub async fn run(mut self) {
        let interval = self.shared.opts.poll_interval;
        let offset = interval.mul_f64(self.rng.gen_range(0.0..1.0));
        let mut next = Instant::now() + offset;
        tracing::debug!(partner = self.id, gzip = self.gzip, "partner starts");
        loop {
            tokio::time::sleep_until(next.into()).await;
            if !self.shared.running() {
                return;
            }
            self.poll().await;
            next += interval;
            let now = Instant::now();
            if next < now {
                // Behind schedule (slow server): poll again at once, without a burst of
                // catch-up polls.
                next = now;
            }
        }
    }

    async fn think(&self) {
        let t = self.shared.opts.think_time;
        if !t.is_zero() {
            tokio::time::sleep(t).await;
        }
    }

    async fn poll(&mut self) {
        let Some(doc) = self.fetch_gateway().await else {
            return;
        };
        for f in &doc.files {
            if !self.shared.running() {
                return;
            }
            if f.kind == "full" {
                continue;
            }
            let known = self.known.get(&f.kind);
            let changed = match (known, &f.hash) {
                (Some(k), Some(h)) => {
                    !same_link(&k.url, &f.url) || k.md5.as_deref() != Some(h.as_str())
                }
                // No hash (light may have none): revalidate every poll.
                _ => true,
            };
            if !changed {
                continue;
            }
            self.think().await;
            if f.kind == "light" {
                self.fetch_light(f).await;
            } else {
                self.get_listed("reference", f, false).await;
            }
        }
        if !self.shared.running() {
            return;
        }
        if let Some(full) = doc.file("full") {
            let current = self.base.as_ref().map(|b| b.md5.as_str());
            if full.hash.is_none() || current != full.hash.as_deref() {
                self.think().await;
                self.update_base(&doc, full).await;
            }
        }
        if self.base.is_some() {
            self.apply_changes(&doc, None).await;
        }
    }

    async fn fetch_gateway(&mut self) -> Option<Arc<GatewayDoc>> {
        let url = self.gateway_url.clone();
        let etag = self.gateway.as_ref().and(self.gateway_etag.clone());
        match self
            .fetch("gateway", &url, etag.as_deref(), true, false)
            .await
        {
            Ok(Fetched::NotModified) => self.gateway.clone(),
            Ok(Fetched::Body(body)) => {
                let bytes = body.bytes.unwrap_or_default();
                match parse_gateway(&bytes) {
                    Ok(doc) => {
                        let doc = Arc::new(doc);
                        self.gateway = Some(doc.clone());
                        self.gateway_etag = body.etag;
                        Some(doc)
                    }
                    Err(e) => {
                        tracing::debug!(partner = self.id, error = %e, "invalid gateway");
                        self.shared.stats.error("gateway_invalid");
                        None
                    }
                }
            }
            Err(kind) => {
                self.shared.stats.error(kind);
                None
            }
        }
    }

    /// Parse a verified body off the async threads, and share the outcome under its `hash`
    /// with the partners waiting for the same bytes. A body that does not parse counts as the
    /// error `invalid`.
    async fn parse_shared<T: Send + Sync + 'static>(
        &self,
        cache: &ParseCache<T>,
        hash: Option<&str>,
        url: &str,
        bytes: Vec<u8>,
        invalid: &'static str,
        parse: impl FnOnce(&[u8]) -> Result<T, String> + Send + 'static,
    ) -> Option<Arc<T>> {
        let parsed = match parse_blocking(url.to_string(), bytes, parse).await {
            Ok(value) => Some(Arc::new(value)),
            Err(e) => {
                tracing::debug!(partner = self.id, url, error = %e, "{invalid}");
                self.shared.stats.error(invalid);
                None
            }
        };
        if let Some(h) = hash {
            cache.fill(h, parsed.as_ref());
        }
        parsed
    }

    /// light.xml: fetch, verify, and when the mutator runs, look for its updates.
    async fn fetch_light(&mut self, f: &Listed) {
        let shared = self.shared.clone();
        let Some(watch) = shared.watch.as_ref() else {
            self.get_listed("light", f, false).await;
            return;
        };
        // Parse each distinct light.xml once; without a hash, every partner parses its own.
        let claim = match &f.hash {
            Some(h) => match shared.lights.lookup_or_claim(h) {
                Lookup::Claimed => true,
                Lookup::Ready(_) | Lookup::Busy => false,
            },
            None => true,
        };
        let outcome = self.get_listed("light", f, claim).await;
        let received = Instant::now();
        let index: Option<Arc<LightIndex>> = match (outcome, &f.hash) {
            (Outcome::Verified(Some(bytes)), hash) => {
                let watch = watch.clone();
                self.parse_shared(
                    &shared.lights,
                    hash.as_deref(),
                    &f.url,
                    bytes,
                    "light_invalid",
                    move |b| parse_light(b, Some(&watch)).map_err(|e| e.to_string()),
                )
                .await
            }
            (Outcome::Verified(None), Some(h)) => shared.lights.wait(h, PARSE_WAIT).await,
            _ => {
                if claim {
                    if let Some(h) = &f.hash {
                        shared.lights.fill(h, None);
                    }
                }
                None
            }
        };
        if let Some(index) = index {
            let seen = shared.pending.lock().check(&index, received);
            for d in seen {
                shared.stats.freshness(d);
            }
        }
    }

    /// A new base full.xml: fetch it, compare the local copy with it, start over from it.
    async fn update_base(&mut self, doc: &GatewayDoc, full: &Listed) {
        let shared = self.shared.clone();
        let check = shared.opts.offer_check;
        let claim = check
            && match &full.hash {
                Some(h) => matches!(shared.offers.lookup_or_claim(h), Lookup::Claimed),
                None => true,
            };
        let outcome = self.get_listed("full", full, claim).await;
        let md5 = match (&outcome, &full.hash) {
            (Outcome::Verified(_), Some(h)) => h.clone(),
            (Outcome::Verified(Some(bytes)), None) => hex::encode(Md5::digest(bytes)),
            (Outcome::Verified(None), None) => String::new(),
            _ => {
                if claim {
                    if let Some(h) = &full.hash {
                        shared.offers.fill(h, None);
                    }
                }
                return;
            }
        };
        let offer = if !check {
            None
        } else if let Outcome::Verified(Some(bytes)) = outcome {
            self.parse_shared(
                &shared.offers,
                Some(&md5),
                &full.url,
                bytes,
                "full_invalid",
                |b| OfferDigest::parse_full(b).map_err(|e| e.to_string()),
            )
            .await
        } else {
            shared.offers.wait(&md5, PARSE_WAIT).await
        };
        if let Some(mut old) = self.base.take() {
            // Bring the old copy up to the new base's time with the change files listed
            // before it, then compare product by product.
            if old.offer.is_some() {
                self.base = Some(old);
                self.apply_changes(doc, full.changed.as_deref()).await;
                old = match self.base.take() {
                    Some(b) => b,
                    None => return,
                };
            }
            match (&old.offer, &offer) {
                (Some(local), Some(new)) => self.compare(local, new),
                _ if check => {
                    shared.stats.checks_skipped.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        self.base = Some(Base {
            key: md5.clone(),
            md5,
            offer,
            applied_until: full.changed.clone(),
            applied: HashSet::new(),
        });
    }

    fn compare(&self, local: &OfferDigest, new: &OfferDigest) {
        let stats = &self.shared.stats;
        stats.base_checks.fetch_add(1, Ordering::Relaxed);
        let differing = local.differing(new);
        if differing.is_empty() {
            stats.base_equal.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let touched = self.shared.touched.lock();
        let explained = differing
            .iter()
            .filter(|id| self.shared.opts.external_writes || touched.contains(id))
            .count() as u64;
        let unexplained = differing.len() as u64 - explained;
        stats
            .drift_explained
            .fetch_add(explained, Ordering::Relaxed);
        if unexplained > 0 {
            stats
                .drift_unexplained
                .fetch_add(unexplained, Ordering::Relaxed);
            stats.error("base_drift");
            tracing::warn!(
                partner = self.id,
                products = ?differing.iter().filter(|id| !touched.contains(id)).take(10).collect::<Vec<_>>(),
                "the local copy differs from the new full.xml in products nobody updated"
            );
        }
    }

    /// Apply the listed change files newer than the copy (and not newer than `until`),
    /// oldest first.
    async fn apply_changes(&mut self, doc: &GatewayDoc, until: Option<&str>) {
        let shared = self.shared.clone();
        for c in &doc.changes {
            if !shared.running() {
                return;
            }
            let Some(base) = self.base.as_ref() else {
                return;
            };
            if base.applied.contains(&link_key(&c.url)) {
                continue;
            }
            if let (Some(cc), Some(au)) = (&c.changed, &base.applied_until) {
                if cc <= au {
                    continue;
                }
            }
            if let (Some(u), Some(cc)) = (until, &c.changed) {
                if cc.as_str() > u {
                    break;
                }
            }
            let check = shared.opts.offer_check && base.offer.is_some();
            let claim = check
                && match &c.hash {
                    Some(h) => matches!(shared.changes.lookup_or_claim(h), Lookup::Claimed),
                    None => true,
                };
            self.think().await;
            let outcome = self.get_listed("change", c, claim).await;
            let products: Option<Arc<Vec<ProductDigest>>> = match (outcome, &c.hash) {
                (Outcome::Verified(Some(bytes)), hash) => {
                    self.parse_shared(
                        &shared.changes,
                        hash.as_deref(),
                        &c.url,
                        bytes,
                        "change_invalid",
                        |b| parse_change(b).map_err(|e| e.to_string()),
                    )
                    .await
                }
                (Outcome::Verified(None), Some(h)) if check => {
                    shared.changes.wait(h, PARSE_WAIT).await
                }
                (Outcome::Verified(None), _) => None,
                _ => {
                    if claim {
                        if let Some(h) = &c.hash {
                            shared.changes.fill(h, None);
                        }
                    }
                    // Change files apply in order: stop here, retry next poll.
                    return;
                }
            };
            let Some(base) = self.base.as_mut() else {
                return;
            };
            let step = c.hash.clone().unwrap_or_else(|| c.url.clone());
            let key = hex::encode(
                &blake3::hash(format!("{}+{step}", base.key).as_bytes()).as_bytes()[..16],
            );
            base.offer = match (base.offer.take(), products) {
                (Some(offer), Some(products)) => {
                    derive(&shared.offers, &key, offer, products).await
                }
                _ => None,
            };
            base.key = key;
            base.applied.insert(link_key(&c.url));
            if c.changed.is_some() {
                base.applied_until = c.changed.clone();
            }
            shared.stats.changes_applied.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Fetch a listed file (conditionally when we hold a copy) and check its MD5.
    async fn get_listed(&mut self, label: &'static str, f: &Listed, keep: bool) -> Outcome {
        let known = self
            .known
            .get(&f.kind)
            .filter(|k| same_link(&k.url, &f.url))
            .cloned();
        let etag = known.as_ref().and_then(|k| k.etag.clone());
        let mut result = self.fetch(label, &f.url, etag.as_deref(), keep, true).await;
        if let (Ok(Fetched::NotModified), Some(hash)) = (&result, &f.hash) {
            if known.as_ref().and_then(|k| k.md5.as_deref()) == Some(hash.as_str()) {
                return Outcome::Unchanged;
            }
            // 304 for a copy the gateway says is outdated: fetch it whole.
            result = self.fetch(label, &f.url, None, keep, true).await;
        }
        let body = match result {
            Ok(Fetched::Body(b)) => b,
            Ok(Fetched::NotModified) => return Outcome::Unchanged,
            Err(kind) => {
                self.shared.stats.error(kind);
                return Outcome::Skipped;
            }
        };
        if let Some(hash) = &f.hash {
            if &body.md5 != hash {
                self.mismatch(label, f, &body.md5).await;
                return Outcome::Skipped;
            }
        }
        if f.kind != "change" {
            self.known.insert(
                f.kind.clone(),
                Known {
                    url: f.url.clone(),
                    etag: body.etag,
                    md5: Some(body.md5),
                },
            );
        }
        Outcome::Verified(body.bytes)
    }

    /// A body whose MD5 is not the gateway's hash: a mismatch, unless the gateway meanwhile
    /// lists another version of the file (it was republished while we fetched). Behind a
    /// balancer the gateway asked again may come from a replica a manifest behind the one
    /// that served the body, still listing the old hash at the old generation: a link that
    /// names its generation (`g=`) is asked again until the gateway lists it at a newer one,
    /// or [`RECHECK_FOR`] passes.
    async fn mismatch(&mut self, label: &'static str, f: &Listed, got: &str) {
        let url = self.gateway_url.clone();
        let deadline = Instant::now() + RECHECK_FOR;
        loop {
            let doc = match self.fetch("gateway", &url, None, true, false).await {
                Ok(Fetched::Body(b)) => b.bytes.and_then(|bytes| parse_gateway(&bytes).ok()),
                Ok(Fetched::NotModified) => None,
                Err(kind) => {
                    self.shared.stats.error(kind);
                    None
                }
            };
            let Some(doc) = doc else {
                // Cannot tell whether the file was republished: count the mismatch.
                self.shared.stats.mismatches.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let listed_now = doc
                .files
                .iter()
                .chain(doc.changes.iter())
                .find(|x| same_link(&x.url, &f.url))
                .map(|x| (x.hash.clone(), link_generation(&x.url)));
            match listed_now {
                // Still listed with the hash we checked against, by a gateway no newer than
                // the one we had: perhaps a node behind the one that served the body (only
                // links that name their generation can tell).
                Some((now, Some(g)))
                    if now == f.hash
                        && link_generation(&f.url).is_some_and(|had| g <= had)
                        && Instant::now() < deadline =>
                {
                    self.shared.stats.rechecks.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(RECHECK_EVERY).await;
                }
                // Still listed with that hash: the server sent other bytes.
                Some((now, _)) if now == f.hash => {
                    self.shared.stats.mismatches.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        partner = self.id,
                        file = label,
                        url = %f.url,
                        expected = ?f.hash,
                        got,
                        "body does not match the gateway's hash"
                    );
                    return;
                }
                // Listed with another hash, or no longer listed: republished while we fetched.
                Some(_) | None => {
                    self.shared.stats.superseded.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// GET `url`; with `allow_range`, some downloads are split in two Range requests.
    async fn fetch(
        &mut self,
        label: &'static str,
        url: &str,
        etag: Option<&str>,
        keep: bool,
        allow_range: bool,
    ) -> Result<Fetched, String> {
        let uri: Uri = url.parse().map_err(|_| "bad_url".to_string())?;
        let range = allow_range
            && etag.is_none()
            && self.shared.opts.range_share > 0.0
            && self.rng.gen_bool(self.shared.opts.range_share);
        let timeout = self.shared.opts.timeout;
        let result = if range {
            tokio::time::timeout(timeout, self.fetch_ranged(label, &uri, keep)).await
        } else {
            tokio::time::timeout(timeout, self.fetch_once(label, &uri, etag, keep)).await
        };
        match result {
            Ok(r) => r,
            Err(_) => {
                // The connection is mid-response: it cannot be reused.
                self.client.drop_connection(&uri);
                Err("timeout".into())
            }
        }
    }

    async fn fetch_once(
        &mut self,
        label: &'static str,
        uri: &Uri,
        etag: Option<&str>,
        keep: bool,
    ) -> Result<Fetched, String> {
        let mut headers = HeaderMap::new();
        if let Some(e) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            headers.insert(IF_NONE_MATCH, e);
        }
        if self.gzip {
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let started = Instant::now();
        let shared = self.shared.clone();
        let _permit = shared.permit().await;
        let resp = self
            .client
            .send(Method::GET, uri, &headers, Bytes::new())
            .await
            .map_err(|e| e.kind().to_string())?;
        let status = resp.status();
        let etag = header(resp.headers(), ETAG);
        let gzip = header(resp.headers(), CONTENT_ENCODING)
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let mut writer = Writer::new(gzip, keep);
        let wire = self.read_body(resp.into_body(), &mut writer, uri).await?;
        self.shared
            .stats
            .request(label, status.as_u16(), wire, started.elapsed());
        match status {
            StatusCode::NOT_MODIFIED => Ok(Fetched::NotModified),
            StatusCode::OK => {
                if gzip {
                    self.shared
                        .stats
                        .gzip_decoded
                        .fetch_add(1, Ordering::Relaxed);
                }
                self.lengths.insert(uri.to_string(), wire);
                let sink = writer.finish().map_err(|_| "gzip_decode".to_string())?;
                Ok(Fetched::Body(Body {
                    md5: hex::encode(sink.md5.finalize()),
                    etag,
                    bytes: sink.keep,
                }))
            }
            s => Err(format!("status_{}", s.as_u16())),
        }
    }

    /// A download resumed: the first part, then the rest with `If-Range`, joined.
    async fn fetch_ranged(
        &mut self,
        label: &'static str,
        uri: &Uri,
        keep: bool,
    ) -> Result<Fetched, String> {
        let known_len = self
            .lengths
            .get(&uri.to_string())
            .copied()
            .unwrap_or(128 * 1024);
        let split = self.rng.gen_range(1..=known_len.max(2));
        let shared = self.shared.clone();
        let mut writer = Writer::new(false, keep);
        let started = Instant::now();
        let (status, etag, content_range, wire) = {
            let _permit = shared.permit().await;
            let mut headers = HeaderMap::new();
            headers.insert(RANGE, range_value(0, Some(split - 1))?);
            let resp = self
                .client
                .send(Method::GET, uri, &headers, Bytes::new())
                .await
                .map_err(|e| e.kind().to_string())?;
            let status = resp.status();
            let etag = header(resp.headers(), ETAG);
            let cr = header(resp.headers(), CONTENT_RANGE);
            let wire = self.read_body(resp.into_body(), &mut writer, uri).await?;
            shared
                .stats
                .request(label, status.as_u16(), wire, started.elapsed());
            (status, etag, cr, wire)
        };
        let mut total = wire;
        match status {
            StatusCode::OK => {}
            StatusCode::PARTIAL_CONTENT => {
                let (start, end, len) = content_range
                    .as_deref()
                    .and_then(parse_content_range)
                    .ok_or_else(|| "bad_content_range".to_string())?;
                if start != 0 || end + 1 != wire {
                    return Err("bad_content_range".into());
                }
                if end + 1 < len {
                    let started = Instant::now();
                    let _permit = shared.permit().await;
                    let mut headers = HeaderMap::new();
                    headers.insert(RANGE, range_value(end + 1, None)?);
                    if let Some(e) = etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
                        headers.insert(IF_RANGE, e);
                    }
                    let resp = self
                        .client
                        .send(Method::GET, uri, &headers, Bytes::new())
                        .await
                        .map_err(|e| e.kind().to_string())?;
                    let status = resp.status();
                    let cr = header(resp.headers(), CONTENT_RANGE);
                    let etag2 = header(resp.headers(), ETAG);
                    if status == StatusCode::OK {
                        // The file changed between the parts: If-Range gave the whole new
                        // file; start over with it.
                        writer = Writer::new(false, keep);
                    }
                    let wire = self.read_body(resp.into_body(), &mut writer, uri).await?;
                    shared
                        .stats
                        .request(label, status.as_u16(), wire, started.elapsed());
                    match status {
                        StatusCode::OK => total = wire,
                        StatusCode::PARTIAL_CONTENT => {
                            let ok = cr.as_deref().and_then(parse_content_range).is_some_and(
                                |(s, e, l)| {
                                    s == end + 1 && e + 1 == l && l == len && e + 1 - s == wire
                                },
                            );
                            if !ok || etag2 != etag {
                                return Err("bad_content_range".into());
                            }
                            total += wire;
                        }
                        s => return Err(format!("status_{}", s.as_u16())),
                    }
                }
                shared.stats.range_downloads.fetch_add(1, Ordering::Relaxed);
            }
            s => return Err(format!("status_{}", s.as_u16())),
        }
        self.lengths.insert(uri.to_string(), total);
        let sink = writer.finish().map_err(|_| "gzip_decode".to_string())?;
        Ok(Fetched::Body(Body {
            md5: hex::encode(sink.md5.finalize()),
            etag,
            bytes: sink.keep,
        }))
    }

    /// Stream a body through `writer`; returns the bytes received on the wire.
    async fn read_body(
        &mut self,
        mut body: hyper::body::Incoming,
        writer: &mut Writer,
        uri: &Uri,
    ) -> Result<u64, String> {
        let mut wire = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    self.client.drop_connection(uri);
                    return Err(if e.is_incomplete_message() {
                        "truncated_body".into()
                    } else {
                        "body_read".into()
                    });
                }
            };
            if let Ok(data) = frame.into_data() {
                wire += data.len() as u64;
                if wire > MAX_BODY {
                    self.client.drop_connection(uri);
                    return Err("body_too_large".into());
                }
                writer.write(&data).map_err(|_| "gzip_decode".to_string())?;
            }
        }
        Ok(wire)
    }
}

fn header(h: &HeaderMap, name: http::header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn range_value(start: u64, end: Option<u64>) -> Result<HeaderValue, String> {
    let v = match end {
        Some(e) => format!("bytes={start}-{e}"),
        None => format!("bytes={start}-"),
    };
    HeaderValue::from_str(&v).map_err(|_| "bad_request".to_string())
}

/// `bytes 0-99/1234` → (0, 99, 1234).
pub fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, len) = rest.split_once('/')?;
    let (s, e) = range.split_once('-')?;
    let (s, e, len) = (s.parse().ok()?, e.parse().ok()?, len.parse().ok()?);
    (s <= e && e < len).then_some((s, e, len))
}

/// Parse on a blocking thread (large files take a while), decompressing `.gz` files first.
async fn parse_blocking<T: Send + 'static>(
    url: String,
    bytes: Vec<u8>,
    parse: impl FnOnce(&[u8]) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(move || {
        let bytes = gunzip_if_gz(&url, bytes).map_err(|e| format!("gunzip: {e}"))?;
        parse(&bytes)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The copy after one change file: shared with other partners who reached the same state.
async fn derive(
    cache: &ParseCache<OfferDigest>,
    key: &str,
    offer: Arc<OfferDigest>,
    products: Arc<Vec<ProductDigest>>,
) -> Option<Arc<OfferDigest>> {
    match cache.lookup_or_claim(key) {
        Lookup::Ready(o) => Some(o),
        Lookup::Busy => cache.wait(key, PARSE_WAIT).await,
        Lookup::Claimed => {
            let next = tokio::task::spawn_blocking(move || {
                let mut next = (*offer).clone();
                next.apply(&products);
                next
            })
            .await
            .ok()
            .map(Arc::new);
            cache.fill(key, next.as_ref());
            next
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-99/1234"), Some((0, 99, 1234)));
        assert_eq!(parse_content_range("bytes 5-5/6"), Some((5, 5, 6)));
        for bad in [
            "bytes */1234",
            "bytes 9-3/100",
            "bytes 0-100/100",
            "0-1/2",
            "bytes a-b/c",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn gz_files_are_decompressed_plain_ones_kept() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"<offer/>").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(
            gunzip_if_gz("http://h/light.xml.gz", gz.clone()).unwrap(),
            b"<offer/>"
        );
        assert_eq!(gunzip_if_gz("http://h/light.xml", gz.clone()).unwrap(), gz);
        assert!(gunzip_if_gz("http://h/light.xml.gz", b"nope".to_vec()).is_err());
    }

    #[test]
    fn content_encoding_gzip_is_decoded_before_hashing() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello").unwrap();
        let gz = enc.finish().unwrap();
        let mut w = Writer::new(true, true);
        w.write(&gz[..3]).unwrap();
        w.write(&gz[3..]).unwrap();
        let sink = w.finish().unwrap();
        assert_eq!(
            hex::encode(sink.md5.finalize()),
            hex::encode(Md5::digest(b"hello"))
        );
        assert_eq!(sink.keep.as_deref(), Some(&b"hello"[..]));
    }
}
