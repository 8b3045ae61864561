//! The mutator: stock and price updates through the admin API at a set rate, and the
//! bookkeeping that turns partners' light.xml downloads into freshness figures.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Uri};
use http_body_util::BodyExt;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::client::Client;
use super::feed::{parse_gateway, parse_light, LightIndex};
use super::{LoadError, LoadOptions, MutatorOptions, Shared};

/// A (product, size) the mutator updates, with the warehouses light.xml lists for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub product: u64,
    pub size: String,
    pub warehouses: Vec<u32>,
    /// light.xml shows a product-level price for it.
    pub has_price: bool,
}

/// What a partner must see in light.xml.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Watch {
    Stock(u64, String, u32),
    /// The product-level retail price (seen as is by partners without discount or currency).
    Price(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Quantity(Decimal),
    Price { net: Decimal, gross: Decimal },
}

#[derive(Debug)]
struct Expected {
    value: Value,
    /// Which update (a later update to the same value replaces it).
    seq: i64,
    /// When the update was acknowledged (`None` while in flight).
    acked: Option<Instant>,
    /// Seen by a partner before the acknowledgement arrived.
    seen_early: bool,
}

/// Updates sent and not yet seen by any partner.
#[derive(Debug, Default)]
pub struct Pending {
    map: HashMap<Watch, Expected>,
}

impl Pending {
    /// Update `seq` is about to be sent. Returns true when it overwrites one nobody saw.
    pub fn sent(&mut self, watch: Watch, value: Value, seq: i64) -> bool {
        self.map
            .insert(
                watch,
                Expected {
                    value,
                    seq,
                    acked: None,
                    seen_early: false,
                },
            )
            .is_some()
    }

    /// Update `seq` was acknowledged at `at`. Returns `Some(ZERO)` when a partner had already
    /// seen it (it counts as fresh at once), `None` otherwise.
    pub fn acked(&mut self, watch: &Watch, seq: i64, at: Instant) -> Option<Duration> {
        let e = self.map.get_mut(watch).filter(|e| e.seq == seq)?;
        if e.seen_early {
            self.map.remove(watch);
            return Some(Duration::ZERO);
        }
        e.acked = Some(at);
        None
    }

    /// Update `seq` failed: stop waiting for it (unless a later update replaced it).
    pub fn forget(&mut self, watch: &Watch, seq: i64) {
        if self.map.get(watch).is_some_and(|e| e.seq == seq) {
            self.map.remove(watch);
        }
    }

    /// A partner received `index` at `at`: the freshness of every update it shows.
    pub fn check(&mut self, index: &LightIndex, at: Instant) -> Vec<Duration> {
        let mut seen = Vec::new();
        self.map.retain(|watch, e| {
            let shown = match (watch, &e.value) {
                (Watch::Stock(p, s, w), Value::Quantity(q)) => index
                    .stock
                    .get(&(*p, s.clone(), *w))
                    .is_some_and(|v| v == &q.normalize()),
                (Watch::Price(p), Value::Price { net, gross }) => index
                    .price
                    .get(p)
                    .is_some_and(|(n, g)| n == net && g == gross),
                _ => false,
            };
            if !shown {
                return true;
            }
            match e.acked {
                Some(acked) => {
                    seen.push(at.saturating_duration_since(acked));
                    false
                }
                None => {
                    e.seen_early = true;
                    true
                }
            }
        });
        seen
    }

    /// Acknowledged before `before` and never seen.
    pub fn unseen_before(&self, before: Instant) -> u64 {
        self.map
            .values()
            .filter(|e| e.acked.is_some_and(|a| a < before))
            .count() as u64
    }
}

/// Download a body for discovery (outside the measured run).
async fn get(client: &mut Client, url: &str) -> Result<Bytes, LoadError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| LoadError::Mutator(format!("{url}: not a URL")))?;
    let resp = client
        .send(Method::GET, &uri, &HeaderMap::new(), Bytes::new())
        .await
        .map_err(|e| LoadError::Mutator(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(LoadError::Mutator(format!(
            "{url}: status {}",
            resp.status()
        )));
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| LoadError::Mutator(format!("{url}: {e}")))?
        .to_bytes();
    Ok(body)
}

/// Pick the products to update from the first gateway's light.xml.
pub async fn discover(
    opts: &LoadOptions,
    m: &MutatorOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Target>, LoadError> {
    let mut client = Client::new(opts.allow_remote);
    let gateway_url = &opts.gateways[0];
    let gateway = get(&mut client, gateway_url).await?;
    let doc =
        parse_gateway(&gateway).map_err(|e| LoadError::Mutator(format!("{gateway_url}: {e}")))?;
    let light = doc
        .file("light")
        .ok_or_else(|| LoadError::Mutator(format!("{gateway_url}: no light file listed")))?;
    let bytes = get(&mut client, &light.url).await?;
    let bytes = super::partner::gunzip_if_gz(&light.url, bytes.to_vec())
        .map_err(|e| LoadError::Mutator(format!("{}: {e}", light.url)))?;
    let index =
        parse_light(&bytes, None).map_err(|e| LoadError::Mutator(format!("{}: {e}", light.url)))?;
    // One size per product, so updates to different targets never touch the same node twice.
    let mut by_product: HashMap<u64, Target> = HashMap::new();
    for (product, size, warehouses) in &index.sizes {
        if warehouses.is_empty() {
            continue;
        }
        by_product.entry(*product).or_insert_with(|| Target {
            product: *product,
            size: size.clone(),
            warehouses: warehouses.clone(),
            has_price: index.price.contains_key(product),
        });
    }
    let mut targets: Vec<Target> = by_product.into_values().collect();
    targets.sort_by_key(|t| t.product);
    targets.shuffle(rng);
    targets.truncate(m.products);
    if targets.is_empty() {
        return Err(LoadError::Mutator(format!(
            "{}: no product with stock to update",
            light.url
        )));
    }
    Ok(targets)
}

/// Run-unique starting values, so a value left by an earlier run is never taken for this
/// run's update.
fn start_value() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as i64 ^ (d.as_secs() as i64 * 7919))
        .unwrap_or(0);
    100_000 + nanos.rem_euclid(800_000)
}

/// The JSON line of an update and what partners should then see.
pub fn update_line(
    target: &Target,
    price: bool,
    n: i64,
    rng: &mut ChaCha8Rng,
) -> (String, Watch, Value) {
    if price && target.has_price {
        let net = Decimal::new(n, 2);
        let gross = (net * Decimal::new(123, 2)).round_dp(2);
        let line = serde_json::json!({
            "kind": "price",
            "product": target.product,
            "retail": {"net": net.to_string(), "gross": gross.to_string()},
        });
        (
            line.to_string(),
            Watch::Price(target.product),
            Value::Price { net, gross },
        )
    } else {
        let warehouse = target
            .warehouses
            .get(rng.gen_range(0..target.warehouses.len().max(1)))
            .copied()
            .unwrap_or(0);
        let quantity = Decimal::from(n);
        let line = serde_json::json!({
            "kind": "stock",
            "product": target.product,
            "size": target.size,
            "warehouse": warehouse,
            "quantity": quantity.to_string(),
        });
        (
            line.to_string(),
            Watch::Stock(target.product, target.size.clone(), warehouse),
            Value::Quantity(quantity),
        )
    }
}

/// Most updates in flight at once: the rate holds while acknowledgements take up to this
/// many intervals.
const MAX_IN_FLIGHT: usize = 64;

/// Send updates at the set rate until the run ends (several in flight when acknowledgements
/// take longer than the interval), then wait for those in flight.
pub async fn run(
    shared: Arc<Shared>,
    m: MutatorOptions,
    targets: Vec<Target>,
    mut rng: ChaCha8Rng,
) {
    let uri: Uri = match format!("{}/v1/updates", m.admin_url).parse() {
        Ok(u) => u,
        Err(_) => {
            shared.stats.error("mutator_bad_url");
            return;
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    match HeaderValue::from_str(&format!("Bearer {}", m.token)) {
        Ok(v) => {
            headers.insert(AUTHORIZATION, v);
        }
        Err(_) => {
            shared.stats.error("mutator_bad_token");
            return;
        }
    }
    let request = Arc::new((uri, headers));
    // Idle keep-alive connections, one per update in flight at most.
    let idle: Arc<parking_lot::Mutex<Vec<Client>>> = Arc::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut in_flight = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / m.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = start_value();
    while shared.running() {
        tick.tick().await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if !shared.running() {
            break;
        }
        while in_flight.try_join_next().is_some() {}
        n += 1;
        let Some(target) = targets.choose(&mut rng) else {
            return;
        };
        let price = rng.gen_bool(m.price_share);
        let (line, watch, value) = update_line(target, price, n, &mut rng);
        shared.touched.lock().insert(target.product);
        if lock(&shared).sent(watch.clone(), value, n) {
            shared
                .stats
                .mutations_superseded
                .fetch_add(1, Ordering::Relaxed);
        }
        shared.stats.mutations_sent.fetch_add(1, Ordering::Relaxed);
        let client = idle
            .lock()
            .pop()
            .unwrap_or_else(|| Client::new(shared.opts.allow_remote));
        let (shared, idle, request) = (shared.clone(), idle.clone(), request.clone());
        in_flight.spawn(async move {
            let client = send_update(&shared, client, &request.0, &request.1, line, watch, n).await;
            idle.lock().push(client);
            drop(slot);
        });
    }
    let limit = shared.opts.timeout;
    let _ = tokio::time::timeout(limit, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
}

/// POST one update and account for the answer. Gives the connection back for reuse.
async fn send_update(
    shared: &Shared,
    mut client: Client,
    uri: &Uri,
    headers: &HeaderMap,
    line: String,
    watch: Watch,
    seq: i64,
) -> Client {
    let stats = &shared.stats;
    let started = Instant::now();
    let result = tokio::time::timeout(shared.opts.timeout, async {
        let resp = client
            .send(Method::POST, uri, headers, Bytes::from(line + "\n"))
            .await
            .map_err(|e| e.kind().to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|_| "admin_body".to_string())?
            .to_bytes();
        Ok::<_, String>((status, body))
    })
    .await
    .unwrap_or_else(|_| Err("admin_timeout".to_string()));
    let elapsed = started.elapsed();
    match result {
        Ok((status, body)) => {
            stats.request("admin", status.as_u16(), body.len() as u64, elapsed);
            let rejected = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .map(|v| {
                    v.get("rejected")
                        .and_then(|r| r.as_array())
                        .is_some_and(|r| !r.is_empty())
                });
            if !status.is_success() {
                stats.error(format!("admin_status_{}", status.as_u16()));
                lock(shared).forget(&watch, seq);
            } else if rejected != Some(false) {
                // Rejected, or an answer that is not the documented JSON.
                stats.error("mutation_rejected");
                lock(shared).forget(&watch, seq);
            } else {
                stats.ack(elapsed);
                if let Some(d) = lock(shared).acked(&watch, seq, Instant::now()) {
                    stats.freshness(d);
                }
            }
        }
        Err(kind) => {
            stats.error(format!("admin_{kind}"));
            lock(shared).forget(&watch, seq);
        }
    }
    client
}

fn lock(shared: &Shared) -> parking_lot::MutexGuard<'_, Pending> {
    shared.pending.lock()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn index(q: i64, net: &str, gross: &str) -> LightIndex {
        let mut i = LightIndex::default();
        i.stock.insert((5, "M".into(), 1), Decimal::from(q));
        i.price
            .insert(5, (net.parse().unwrap(), gross.parse().unwrap()));
        i
    }

    #[test]
    fn freshness_counts_from_the_acknowledgement() {
        let mut p = Pending::default();
        let t0 = Instant::now();
        let stock = Watch::Stock(5, "M".into(), 1);
        assert!(!p.sent(stock.clone(), Value::Quantity(Decimal::from(12)), 1));
        assert_eq!(p.acked(&stock, 1, t0), None);
        // An old light.xml does not count.
        assert!(p
            .check(&index(11, "1", "1"), t0 + Duration::from_millis(100))
            .is_empty());
        assert_eq!(p.unseen_before(t0 + Duration::from_millis(1)), 1);
        let seen = p.check(&index(12, "1", "1"), t0 + Duration::from_millis(700));
        assert_eq!(seen, vec![Duration::from_millis(700)]);
        assert_eq!(p.unseen_before(t0 + Duration::from_secs(9)), 0);
    }

    #[test]
    fn seen_before_the_ack_is_fresh_at_once_and_overwrites_are_counted() {
        let mut p = Pending::default();
        let price = Watch::Price(5);
        let value = Value::Price {
            net: "10.00".parse().unwrap(),
            gross: "12.30".parse().unwrap(),
        };
        p.sent(price.clone(), value.clone(), 1);
        assert!(p
            .check(&index(1, "10.00", "12.30"), Instant::now())
            .is_empty());
        assert_eq!(p.acked(&price, 1, Instant::now()), Some(Duration::ZERO));
        assert!(!p.sent(price.clone(), value.clone(), 2));
        assert!(
            p.sent(price.clone(), value, 3),
            "an unseen update overwritten"
        );
        // The overwritten update's answer does not touch the newer one.
        p.forget(&price, 2);
        assert_eq!(p.acked(&price, 2, Instant::now()), None);
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            p.unseen_before(later),
            0,
            "update 3 is not acknowledged yet"
        );
        assert_eq!(p.acked(&price, 3, Instant::now()), None);
        assert_eq!(p.unseen_before(later), 1);
        p.forget(&price, 3);
        assert_eq!(p.unseen_before(later), 0);
    }

    #[test]
    fn update_lines_follow_the_admin_contract() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = Target {
            product: 17,
            size: "M".into(),
            warehouses: vec![1],
            has_price: true,
        };
        let (line, watch, value) = update_line(&t, false, 123, &mut rng);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "stock");
        assert_eq!(
            (
                v["product"].as_u64(),
                v["size"].as_str(),
                v["warehouse"].as_u64()
            ),
            (Some(17), Some("M"), Some(1))
        );
        assert_eq!(v["quantity"], "123");
        assert_eq!(watch, Watch::Stock(17, "M".into(), 1));
        assert_eq!(value, Value::Quantity(Decimal::from(123)));
        let (line, watch, value) = update_line(&t, true, 12345, &mut rng);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "price");
        assert_eq!(v["retail"]["net"], "123.45");
        assert_eq!(v["retail"]["gross"], "151.84");
        assert!(v.get("size").is_none(), "product-level price");
        assert_eq!(watch, Watch::Price(17));
        assert!(matches!(value, Value::Price { .. }));
    }
}
