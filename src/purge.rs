//! The purge hook: tells the cache in front which cached responses are stale.
//!
//! Every file response carries a `Surrogate-Key` ([`surrogate_key`]). When a publication
//! supersedes files ([`superseded`]) or a partner's access or settings change
//! ([`partner_changes`]), the affected keys are queued with [`PurgeHook::purge`] and a
//! background task sends them to the configured URL: one request per batch of keys, the keys
//! both in a `Surrogate-Key` header (space-separated, for Varnish bans) and in a JSON body
//! `{"surrogate_keys": [...]}` (the shape of common CDN batch-purge APIs). Failures are retried
//! with exponential backoff; the queue is bounded and a full queue drops (and counts) a batch
//! rather than holding memory or slowing the caller. Nothing here runs on a request's path.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::sync::mpsc;

use crate::artifacts::ArtifactSet;
use crate::config::PurgeTarget;
use crate::metrics::{Metrics, PurgeResult};
use crate::partners::Partners;

/// Batches waiting to be sent; beyond this the oldest work is not dropped, the new batch is.
const QUEUE_CAPACITY: usize = 1024;
/// Keys named by one request (CDN batch APIs commonly take 256).
const MAX_KEYS_PER_REQUEST: usize = 256;
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
    for (profile, before) in &previous.by_profile {
        let Some(after) = next.by_profile.get(profile) else {
            keys.insert(format!("profile:{profile}"));
            continue;
        };
        let mut changed = previous.generation != next.generation;
        for (name, old) in &before.files {
            if after.files.get(name).is_none_or(|new| new.etag != old.etag) {
                keys.insert(format!("profile:{profile}/{}", kind_of(name)));
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
    while let Some(first) = rx.recv().await {
        let mut keys: BTreeSet<String> = first.into_iter().collect();
        // Publications can come every second; one request for all that piled up meanwhile.
        while let Ok(more) = rx.try_recv() {
            keys.extend(more);
        }
        let keys: Vec<String> = keys.into_iter().collect();
        for batch in keys.chunks(MAX_KEYS_PER_REQUEST) {
            send_with_retry(&target, batch, &metrics).await;
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
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

async fn send_with_retry(target: &PurgeTarget, keys: &[String], metrics: &Metrics) {
    let mut delay = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, send(target, keys)).await {
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
                tracing::error!(url = %target.url, keys = keys.len(), attempt, error = %e, "purge failed");
                return;
            }
            Err(e) => {
                metrics.purge(PurgeResult::Retry, keys.len());
                tracing::warn!(url = %target.url, attempt, error = %e, "purge failed; retrying");
                // Jitter spreads retries of several origins hitting one recovering cache.
                let jitter = rand::thread_rng().gen_range(0.75..1.25);
                tokio::time::sleep(delay.mul_f64(jitter)).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The JSON body: `{"surrogate_keys":[...]}`.
fn body(keys: &[String]) -> Bytes {
    let json = serde_json::json!({ "surrogate_keys": keys });
    Bytes::from(json.to_string())
}

async fn send(target: &PurgeTarget, keys: &[String]) -> Result<(), AttemptError> {
    let host = target.url.host().unwrap_or("localhost");
    let port = target.url.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(AttemptError::Connect)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let body = body(keys);
    let authority = target
        .url
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_else(|| host.to_string());
    let path = target
        .url
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut request = Request::builder()
        .method(target.method.clone())
        .uri(path)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, body.len())
        .header(
            "Surrogate-Key",
            HeaderValue::from_str(&keys.join(" ")).map_err(hyper::http::Error::from)?,
        );
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(body))?;
    let response = sender.send_request(request).await;
    let result = match response {
        Ok(response) => {
            let status = response.status();
            // Read (a bounded amount of) the answer so the connection ends cleanly.
            let _ = http_body_util::Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await;
            if status.is_success() {
                Ok(())
            } else {
                Err(AttemptError::Status(status))
            }
        }
        Err(e) => Err(AttemptError::Http(e)),
    };
    driver.abort();
    result
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
        assert_eq!(
            superseded(&before, &after),
            vec![
                "profile:p1/categories",
                "profile:p1/gateway",
                "profile:p1/light",
                "profile:p2",
            ]
        );
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
        assert!(body(&["a".into(), "b".into()]).starts_with(b"{\"surrogate_keys\":[\"a\",\"b\"]"));
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
            url: url.parse().unwrap(),
            method: hyper::Method::from_bytes(b"BAN").unwrap(),
            headers: vec![(
                hyper::header::HeaderName::from_static("x-purge-token"),
                HeaderValue::from_static("s3cret"),
            )],
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
        let target = PurgeTarget {
            url: url.parse().unwrap(),
            method: hyper::Method::POST,
            headers: Vec::new(),
        };
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
}
