//! The purge hook: tells the cache in front which cached responses are stale.
//!
//! Every file response carries a `Surrogate-Key` ([`surrogate_key`]). When a publication
//! supersedes files ([`superseded`]) or a partner's access or settings change
//! ([`partner_changes`]), the affected keys are queued with [`PurgeHook::purge`] and a
//! background task sends them to the configured URL (http:// or https://, through `reqwest`
//! with rustls), one request per batch of keys, in the shape `purge_style` names (see
//! [`PurgeStyle`]): a Varnish `BAN` or Fastly purge with the keys in a `Surrogate-Key` header,
//! Cloudflare's `{"tags": [...]}`, or the generic header plus `{"surrogate_keys": [...]}`.
//! Failures are retried with exponential backoff; the queue is bounded and a full queue drops
//! (and counts) a batch rather than holding memory or slowing the caller. Nothing here runs on
//! a request's path.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use rand::Rng;
use tokio::sync::mpsc;

use crate::artifacts::{path_key, Artifact, ArtifactSet};
use crate::config::{PurgeStyle, PurgeTarget};
use crate::metrics::{Metrics, PurgeResult};
use crate::partners::Partners;

/// Batches waiting to be sent; beyond this the oldest work is not dropped, the new batch is.
const QUEUE_CAPACITY: usize = 1024;
/// Keys named by one request: Fastly takes 256 surrogate keys, Cloudflare 30 tags.
fn max_keys_per_request(style: PurgeStyle) -> usize {
    match style {
        PurgeStyle::Cloudflare => 30,
        _ => 256,
    }
}
/// Attempts per request before giving up.
const MAX_ATTEMPTS: u32 = 6;
/// First retry delay; doubled per attempt, capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// One attempt, connect to response head.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `Surrogate-Key` of a file response: the partner, the shop, the file kind, the render
/// profile, and the profile's file (what a superseding publication purges).
pub fn surrogate_key(partner: &str, shop: u32, kind: &str, profile_key: &str) -> String {
    format!("partner:{partner} shop:{shop} file:{kind} profile:{profile_key} profile:{profile_key}/{kind}")
}

/// The kind of a file name as it appears in surrogate keys: `full.xml.gz` → `full`.
pub fn kind_of(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Keys of the responses a new artifact set supersedes: each file whose bytes changed or
/// that disappeared, the gateways of a profile whose generation changed (they list every
/// file with its hash and the generation's time), and every file of a profile no longer
/// rendered.
pub fn superseded(previous: &ArtifactSet, next: &ArtifactSet) -> Vec<String> {
    let mut keys = BTreeSet::new();
    // A profile path (`/p/{key}/…`) is shared by every profile whose file has that key:
    // purging it for one profile clears the one cached copy they all read.
    let path = |before: &crate::artifacts::ProfileArtifacts, name: &str| {
        format!("p:{}/{}", path_key(&before.profile, name), kind_of(name))
    };
    for (profile, before) in &previous.by_profile {
        let Some(after) = next.by_profile.get(profile) else {
            keys.insert(format!("profile:{profile}"));
            keys.extend(before.files.keys().map(|name| path(before, name)));
            continue;
        };
        let mut changed = previous.generation != next.generation;
        for (name, old) in &before.files {
            // A gzip form added since: a cache may hold identity for gzip clients.
            let same = |new: &Arc<Artifact>| {
                new.etag == old.etag && new.gzip.is_some() == old.gzip.is_some()
            };
            if !after.files.get(name).is_some_and(same) {
                keys.insert(format!("profile:{profile}/{}", kind_of(name)));
                keys.insert(path(before, name));
                changed = true;
            }
        }
        changed |= after.files.keys().any(|n| !before.files.contains_key(n));
        if changed {
            keys.insert(format!("profile:{profile}/gateway"));
        }
    }
    keys.into_iter().collect()
}

/// Keys of partners whose cached responses a change of the partners file makes wrong:
/// revoked, restored, rotated, removed, or with other shops or settings; every partner when
/// the sharing switch flips.
pub fn partner_changes(old: &Partners, new: &Partners) -> Vec<String> {
    let mut ids = BTreeSet::new();
    if old.sharing_enabled != new.sharing_enabled {
        ids.extend(old.accounts().map(|a| a.id.clone()));
        ids.extend(new.accounts().map(|a| a.id.clone()));
    }
    for account in old.accounts() {
        let same = new.get(&account.id).is_some_and(|now| {
            now.offer_access == account.offer_access
                && now.same_token(account)
                && now.shops == account.shops
                && now.file_type == account.file_type
                && account
                    .shops
                    .iter()
                    .all(|s| now.profile_key(*s) == account.profile_key(*s))
        });
        if !same {
            ids.insert(account.id.clone());
        }
    }
    ids.into_iter().map(|id| format!("partner:{id}")).collect()
}

/// The sending side of the purge queue. Cheap to call from anywhere, never blocks.
pub struct PurgeHook {
    queue: Option<mpsc::Sender<Vec<String>>>,
    metrics: Arc<Metrics>,
}

/// The purge hook's sender, not yet running: the server runs [`PurgeWorker::run`] as one of
/// its tasks.
pub struct PurgeWorker {
    target: PurgeTarget,
    rx: mpsc::Receiver<Vec<String>>,
    metrics: Arc<Metrics>,
}

impl PurgeWorker {
    /// Send what is queued until every [`PurgeHook`] is dropped.
    pub async fn run(self) {
        run(self.target, self.rx, self.metrics).await
    }
}

impl PurgeHook {
    /// A hook that queues for `target` and the sender that empties the queue; disabled (no
    /// sender) when there is no target.
    pub fn new(
        target: Option<PurgeTarget>,
        metrics: Arc<Metrics>,
    ) -> (PurgeHook, Option<PurgeWorker>) {
        let Some(target) = target else {
            return (
                PurgeHook {
                    queue: None,
                    metrics,
                },
                None,
            );
        };
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let worker = PurgeWorker {
            target,
            rx,
            metrics: metrics.clone(),
        };
        (
            PurgeHook {
                queue: Some(tx),
                metrics,
            },
            Some(worker),
        )
    }

    /// A hook that sends to `target` from a task on the current Tokio runtime; disabled
    /// (with a warning) when there is no target or no runtime.
    pub fn start(target: Option<PurgeTarget>, metrics: Arc<Metrics>) -> PurgeHook {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            if target.is_some() {
                tracing::warn!("no async runtime: the purge hook is disabled");
            }
            return PurgeHook {
                queue: None,
                metrics,
            };
        };
        let (hook, worker) = PurgeHook::new(target, metrics);
        if let Some(worker) = worker {
            runtime.spawn(worker.run());
        }
        hook
    }

    /// Whether purges are sent anywhere.
    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queue `keys` for purging. A full queue drops the batch (counted and logged): the
    /// cache then serves those files until their `max-age` runs out, as without a hook.
    pub fn purge(&self, keys: Vec<String>) {
        let Some(queue) = &self.queue else {
            return;
        };
        if keys.is_empty() {
            return;
        }
        let count = keys.len();
        if let Err(e) = queue.try_send(keys) {
            self.metrics.purge(PurgeResult::Dropped, count);
            tracing::warn!(keys = count, error = %e, "purge queue full or closed: batch dropped");
        }
    }
}

/// The worker: coalesce whatever is queued, send it in batches, retry failures.
async fn run(target: PurgeTarget, mut rx: mpsc::Receiver<Vec<String>>, metrics: Arc<Metrics>) {
    let client = match client(&target) {
        Ok(client) => client,
        Err(e) => {
            // The CA file was checked at start-up; a client that still cannot be built
            // leaves the cache to expire files by max-age, as without a hook.
            tracing::error!(url = %target.url, error = %e, "cannot build the purge client: purges are not sent");
            while let Some(keys) = rx.recv().await {
                metrics.purge(PurgeResult::Failed, keys.len());
            }
            return;
        }
    };
    while let Some(first) = rx.recv().await {
        let mut keys: BTreeSet<String> = first.into_iter().collect();
        // Publications can come every second; one request for all that piled up meanwhile.
        while let Ok(more) = rx.try_recv() {
            keys.extend(more);
        }
        let keys: Vec<String> = keys.into_iter().collect();
        for batch in keys.chunks(max_keys_per_request(target.style)) {
            send_with_retry(&client, &target, batch, &metrics).await;
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("request failed")]
    Http(#[source] reqwest::Error),
    #[error("timed out")]
    Timeout,
    #[error("answered {0}")]
    Status(StatusCode),
}

impl AttemptError {
    /// A 4xx other than 408/429 means the request itself is wrong: retrying cannot help.
    fn permanent(&self) -> bool {
        matches!(self, AttemptError::Status(s) if s.is_client_error()
            && *s != StatusCode::REQUEST_TIMEOUT
            && *s != StatusCode::TOO_MANY_REQUESTS)
    }
}

async fn send_with_retry(
    client: &reqwest::Client,
    target: &PurgeTarget,
    keys: &[String],
    metrics: &Metrics,
) {
    let mut delay = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, send(client, target, keys)).await {
            Ok(r) => r,
            Err(_) => Err(AttemptError::Timeout),
        };
        match result {
            Ok(()) => {
                metrics.purge(PurgeResult::Ok, keys.len());
                tracing::info!(keys = keys.len(), attempt, "purged");
                return;
            }
            Err(e) if e.permanent() || attempt == MAX_ATTEMPTS => {
                metrics.purge(PurgeResult::Failed, keys.len());
                tracing::error!(url = %target.url, keys = keys.len(), attempt, error = %error_chain(&e), "purge failed");
                return;
            }
            Err(e) => {
                metrics.purge(PurgeResult::Retry, keys.len());
                tracing::warn!(url = %target.url, attempt, error = %error_chain(&e), "purge failed; retrying");
                // Jitter spreads retries of several origins hitting one recovering cache.
                let jitter = rand::thread_rng().gen_range(0.75..1.25);
                tokio::time::sleep(delay.mul_f64(jitter)).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// An error with its sources, for the log (a TLS or connect failure is in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The HTTP client of the hook: rustls (no OpenSSL), the public roots plus the configured CA.
fn client(target: &PurgeTarget) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(ATTEMPT_TIMEOUT)
        // A purge endpoint that redirects is misconfigured; following could resend the
        // credentials elsewhere.
        .redirect(reqwest::redirect::Policy::none());
    if let Some((_, pem)) = &target.ca {
        for cert in reqwest::Certificate::from_pem_bundle(pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build()
}

/// The body of a purge request in `style`, with its content type (`None`: no body).
fn body(style: PurgeStyle, keys: &[String]) -> Option<Bytes> {
    let json = match style {
        PurgeStyle::Generic => serde_json::json!({ "surrogate_keys": keys }),
        PurgeStyle::Cloudflare => serde_json::json!({ "tags": keys }),
        PurgeStyle::Varnish | PurgeStyle::Fastly => return None,
    };
    Some(Bytes::from(json.to_string()))
}

async fn send(
    client: &reqwest::Client,
    target: &PurgeTarget,
    keys: &[String],
) -> Result<(), AttemptError> {
    let mut request = client.request(target.method.clone(), target.url.to_string());
    if target.style != PurgeStyle::Cloudflare {
        request = request.header("Surrogate-Key", keys.join(" "));
    }
    match body(target.style, keys) {
        Some(body) => {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
        }
        None => request = request.header(reqwest::header::CONTENT_LENGTH, 0),
    }
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(AttemptError::Http)?;
    let status = response.status();
    // Read (a bounded amount of) the answer so the connection can be reused.
    let _ = tokio::time::timeout(Duration::from_secs(1), response.bytes()).await;
    if status.is_success() {
        Ok(())
    } else {
        Err(AttemptError::Status(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::{Artifact, ProfileArtifacts};
    use crate::config::Config;
    use std::path::{Path, PathBuf};
    use std::time::SystemTime;

    fn artifact(name: &str, etag: &str) -> Arc<Artifact> {
        Arc::new(Artifact {
            name: name.into(),
            kind: kind_of(name).into(),
            path: PathBuf::new(),
            len: 0,
            md5: String::new(),
            etag: etag.into(),
            modified: SystemTime::UNIX_EPOCH,
            changed: jiff::civil::date(2026, 1, 1).at(0, 0, 0, 0),
            pieces: None,
            content_type: "application/xml",
            content_encoding: None,
            memory: None,
            mapped: None,
            gzip: None,
        })
    }

    fn set(generation: u64, profiles: &[(&str, &[(&str, &str)])]) -> ArtifactSet {
        let profile = crate::catalog::RenderProfile {
            shop: 1,
            format: crate::catalog::Format::Iof30,
            gzip: false,
            languages: vec!["pol".into()],
            currency: "PLN".into(),
            rate: rust_decimal::Decimal::ONE,
            discount_percent: rust_decimal::Decimal::ZERO,
            wholesale: false,
            only_in_stock: false,
            rules: Default::default(),
        };
        ArtifactSet {
            generation,
            snapshot: None,
            by_profile: profiles
                .iter()
                .map(|(key, files)| {
                    (
                        key.to_string(),
                        Arc::new(ProfileArtifacts {
                            profile: profile.clone(),
                            files: files
                                .iter()
                                .map(|(n, e)| (n.to_string(), artifact(n, e)))
                                .collect(),
                        }),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_publication_purges_changed_and_vanished_files_and_gateways() {
        let before = set(
            1,
            &[
                (
                    "p1",
                    &[
                        ("full.xml", "a"),
                        ("light.xml", "b"),
                        ("categories.xml", "c"),
                    ],
                ),
                ("p2", &[("full.xml", "x")]),
            ],
        );
        let after = set(
            2,
            &[(
                "p1",
                &[
                    ("full.xml", "a"),
                    ("light.xml", "B"),
                    ("full_change2026-11-22T10-30-00.xml", "d"),
                ],
            )],
        );
        let profile = &after.by_profile["p1"].profile;
        let (light, reference, full) = (
            profile.light_key(),
            profile.reference_key(),
            profile.full_key(),
        );
        let mut expected = vec![
            format!("p:{reference}/categories"),
            format!("p:{light}/light"),
            format!("p:{full}/full"),
            "profile:p1/categories".to_string(),
            "profile:p1/gateway".to_string(),
            "profile:p1/light".to_string(),
            "profile:p2".to_string(),
        ];
        expected.sort();
        assert_eq!(superseded(&before, &after), expected);
        // Same generation, same bytes: nothing to purge.
        assert!(superseded(&before, &before).is_empty());
        // First publication after start: nothing was served from this process before.
        assert!(superseded(&ArtifactSet::default(), &after).is_empty());
    }

    fn partners(text: &str) -> Partners {
        let config = Config::for_data_dir(Path::new("unused"));
        Partners::parse(text, Path::new("partners.toml"), &config).unwrap()
    }

    const BASE: &str = r#"
[[partner]]
id = "a"
token = "token-a-0000000000"
shops = [1]

[[partner]]
id = "b"
token = "token-b-0000000000"
shops = [1]

[[partner]]
id = "c"
token = "token-c-0000000000"
shops = [1]
"#;

    #[test]
    fn partner_changes_name_revoked_rotated_and_changed_partners() {
        let old = partners(BASE);
        assert!(partner_changes(&old, &partners(BASE)).is_empty());
        let new = BASE
            .replacen("shops = [1]", "shops = [1]\noffer_access = false", 1)
            .replace("token-b-0000000000", "token-b-rotated000")
            .replacen(
                "id = \"c\"\ntoken = \"token-c-0000000000\"\nshops = [1]",
                "id = \"c\"\ntoken = \"token-c-0000000000\"\nshops = [1]\nwholesale = true",
                1,
            );
        assert_eq!(
            partner_changes(&old, &partners(&new)),
            vec!["partner:a", "partner:b", "partner:c"]
        );
        // Restoring is a change too, and a removed partner is purged.
        let restored = partner_changes(&partners(&new), &old);
        assert_eq!(restored, vec!["partner:a", "partner:b", "partner:c"]);
        let without_c = BASE.split("[[partner]]\nid = \"c\"").next().unwrap();
        assert_eq!(
            partner_changes(&old, &partners(without_c)),
            vec!["partner:c"]
        );
        let off = format!("[sharing]\nenabled = false\n{BASE}");
        assert_eq!(
            partner_changes(&old, &partners(&off)),
            vec!["partner:a", "partner:b", "partner:c"]
        );
    }

    #[test]
    fn keys_are_space_free_tokens() {
        let key = surrogate_key("acme", 2, kind_of("full.xml.gz"), "0123abcd");
        assert_eq!(
            key,
            "partner:acme shop:2 file:full profile:0123abcd profile:0123abcd/full"
        );
        let keys = ["a".to_string(), "b".to_string()];
        assert_eq!(
            body(PurgeStyle::Generic, &keys).unwrap(),
            &b"{\"surrogate_keys\":[\"a\",\"b\"]}"[..]
        );
        assert_eq!(
            body(PurgeStyle::Cloudflare, &keys).unwrap(),
            &b"{\"tags\":[\"a\",\"b\"]}"[..]
        );
        assert_eq!(body(PurgeStyle::Fastly, &keys), None);
    }

    /// A one-shot HTTP receiver that answers each request with the next status of `statuses`
    /// and reports what it got.
    async fn receiver(
        statuses: Vec<u16>,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/purge", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for status in statuses {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                // Head and the small JSON body arrive together or soon after.
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                tx.send(String::from_utf8_lossy(&got).into_owned()).unwrap();
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn the_hook_sends_keys_with_configured_headers_and_retries() {
        let (url, mut got) = receiver(vec![503, 200]).await;
        let target = PurgeTarget {
            method: hyper::Method::from_bytes(b"BAN").unwrap(),
            headers: vec![(
                hyper::header::HeaderName::from_static("x-purge-token"),
                hyper::header::HeaderValue::from_static("s3cret"),
            )],
            ..PurgeTarget::generic(url.parse().unwrap())
        };
        let metrics = Arc::new(Metrics::new());
        let hook = PurgeHook::start(Some(target), metrics.clone());
        assert!(hook.enabled());
        hook.purge(vec!["partner:a".into(), "profile:p/full".into()]);
        for _ in 0..2 {
            let request = tokio::time::timeout(Duration::from_secs(5), got.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(request.starts_with("BAN /purge HTTP/1.1\r\n"), "{request}");
            let lower = request.to_ascii_lowercase();
            assert!(
                lower.contains("surrogate-key: partner:a profile:p/full\r\n"),
                "{request}"
            );
            assert!(lower.contains("x-purge-token: s3cret\r\n"), "{request}");
            assert!(
                request.ends_with("{\"surrogate_keys\":[\"partner:a\",\"profile:p/full\"]}"),
                "{request}"
            );
        }
        // The second attempt succeeded: one retry, one success, two keys purged.
        for _ in 0..50 {
            if metrics
                .encode(crate::metrics::StateSample {
                    snapshot_generation: 0,
                    snapshot_published: SystemTime::now(),
                    artifacts_generation: 0,
                    artifact_files: 0,
                })
                .contains("iofd_purge_keys_total 2")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = metrics.encode(crate::metrics::StateSample {
            snapshot_generation: 0,
            snapshot_published: SystemTime::now(),
            artifacts_generation: 0,
            artifact_files: 0,
        });
        assert!(
            text.contains("iofd_purge_requests_total{result=\"retry\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("iofd_purge_requests_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("iofd_purge_keys_total 2"), "{text}");
    }

    #[tokio::test]
    async fn a_refused_purge_is_not_retried() {
        let (url, mut got) = receiver(vec![403, 200]).await;
        let target = PurgeTarget::generic(url.parse().unwrap());
        let metrics = Arc::new(Metrics::new());
        let hook = PurgeHook::start(Some(target), metrics.clone());
        hook.purge(vec!["partner:a".into()]);
        let first = tokio::time::timeout(Duration::from_secs(5), got.recv())
            .await
            .unwrap();
        assert!(first.is_some());
        let second = tokio::time::timeout(Duration::from_millis(600), got.recv()).await;
        assert!(second.is_err(), "a 403 is not retried");
    }

    #[tokio::test]
    async fn each_style_sends_its_api_shape() {
        let keys = vec!["p:k/full".to_string(), "partner:a".to_string()];
        for (style, method, line, header, json) in [
            (PurgeStyle::Varnish, "BAN", "BAN /purge", true, None),
            (PurgeStyle::Fastly, "POST", "POST /purge", true, None),
            (
                PurgeStyle::Cloudflare,
                "POST",
                "POST /purge",
                false,
                Some("{\"tags\":[\"p:k/full\",\"partner:a\"]}"),
            ),
            (
                PurgeStyle::Generic,
                "PURGE",
                "PURGE /purge",
                true,
                Some("{\"surrogate_keys\":[\"p:k/full\",\"partner:a\"]}"),
            ),
        ] {
            let (url, mut got) = receiver(vec![200]).await;
            let target = PurgeTarget {
                method: method.parse().unwrap(),
                style,
                ..PurgeTarget::generic(url.parse().unwrap())
            };
            let client = client(&target).unwrap();
            send(&client, &target, &keys).await.unwrap();
            let request = got.recv().await.unwrap();
            assert!(
                request.starts_with(&format!("{line} HTTP/1.1\r\n")),
                "{request}"
            );
            let lower = request.to_ascii_lowercase();
            assert_eq!(
                lower.contains("surrogate-key: p:k/full partner:a\r\n"),
                header,
                "{style:?}: {request}"
            );
            match json {
                Some(json) => {
                    assert!(
                        lower.contains("content-type: application/json"),
                        "{request}"
                    );
                    assert!(request.ends_with(json), "{style:?}: {request}");
                }
                None => assert!(
                    request.ends_with("\r\n\r\n"),
                    "{style:?}: no body: {request}"
                ),
            }
        }
    }
}
