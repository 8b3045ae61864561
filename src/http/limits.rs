//! Limits that keep any one client from holding the server: a per-partner request rate
//! ([`RateLimiter`]) and per-connection clocks ([`GuardedIo`]).
//!
//! A public connection is in one of three phases:
//!
//! - **head**: a request head is arriving (from its first byte, or from accept for a new
//!   connection); it must be complete within the header timeout, however slowly it trickles;
//! - **busy**: a request is being answered; producing the answer is the server's time;
//! - **idle**: between requests on a keep-alive connection, closed after the idle timeout.
//!
//! Across phases, whenever a write would block the client is holding the response back, and
//! a **send window** runs: the client must take at least `min_send_rate × send_timeout` bytes
//! in every `send_timeout`, until everything owed is flushed. Otherwise the connection is
//! reset (not closed: a close would leave the kernel trickling out its socket buffer), so a
//! reader of one byte a second cannot keep a 300 MB download open for a year. A response
//! small enough to fit in the kernel's socket buffer (a few megabytes) is handed over at
//! once; such a connection is then idle, and closed after the idle timeout.
//!
//! hyper's own header-read timer starts when it waits for a head, idle time included, so it
//! cannot tell idle from slow; the phases here can, because the service marks where a
//! request starts ([`ConnState::begin`]) and its response body ends ([`ConnState::end`]).
//!
//! Descriptors are a budget too: [`ConnectionBudget`] caps both listeners' connections below
//! the process's descriptor limit, [`PerIp`] keeps one client address from taking every slot,
//! and [`AcceptBackoff`] makes a failing `accept` (out of descriptors) wait instead of spin.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config::Limits;
use crate::metrics::ConnectionEnd;

/// Shards of the rate limiter's map, so concurrent partners rarely contend for a lock.
const SHARDS: usize = 16;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per partner: `rate` requests per second on average, `burst` at once.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
    /// Buckets refill on this clock (tests move a manual one instead of waiting).
    clock: crate::clock::Clock,
}

impl RateLimiter {
    /// A limiter for `rate` requests per second with bursts of `burst`; `rate` 0 disables it.
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            clock: crate::clock::Clock::system(),
        }
    }

    /// The same limiter, refilling on `clock`.
    pub fn with_clock(self, clock: crate::clock::Clock) -> RateLimiter {
        RateLimiter { clock, ..self }
    }

    /// Take one request from `key`'s bucket, or say how long until one is available.
    ///
    /// Keys are authenticated partner ids, so the map is bounded by the partners file.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, self.clock.instant())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % SHARDS];
        let mut map = shard.lock();
        // Found by `&str` first: the key is copied only for a partner's first request.
        if let Some(bucket) = map.get_mut(key) {
            return bucket.take(now, self.rate, self.burst);
        }
        map.entry(key.to_string())
            .or_insert(Bucket {
                tokens: self.burst,
                last: now,
            })
            .take(now, self.rate, self.burst)
    }
}

impl Bucket {
    /// Refill for the time since the last request, then take a token or say how long
    /// until one is there.
    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// Descriptors every connection may hold at once: its socket and a file being sent (or, on
/// the admin listener, a spool file being written).
const FDS_PER_CONNECTION: u64 = 2;

/// Raise the soft limit on open descriptors to the hard limit (systemd's default soft limit
/// of 1024 is far below what the connection limits assume). Returns the limit before and
/// after; `None` stands for unlimited.
pub fn raise_descriptor_limit() -> io::Result<(Option<u64>, Option<u64>)> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok((before, descriptor_limit()))
}

/// The soft limit on open descriptors now; `None`: unlimited.
pub fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// How many connections each listener may hold so that, with both listeners full, the
/// process still has descriptors for the store, the inbox, artifacts and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// The soft descriptor limit it was computed from (`None`: unlimited).
    pub soft_limit: Option<u64>,
    /// Descriptors kept out of the connection budget.
    pub reserve: u64,
    pub public: Caps,
    pub admin: Caps,
}

/// One listener's share of the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections over the limit that may wait for a slot (or for their 503) at once.
    pub max_waiting: usize,
}

impl ConnectionBudget {
    /// Split the descriptors under `soft_limit` between the listeners: each gets at most
    /// `configured` connections (two descriptors each) and a queue of waiting ones (one each,
    /// at most `max_waiting`). The admin listener, where the ERP comes in, gets an eighth, so
    /// a flood of partner connections cannot take ingest's descriptors.
    pub fn compute(soft_limit: Option<u64>, configured: usize, max_waiting: usize) -> Self {
        let Some(soft) = soft_limit else {
            let caps = Caps {
                max_connections: configured,
                max_waiting,
            };
            return ConnectionBudget {
                soft_limit,
                reserve: 0,
                public: caps,
                admin: caps,
            };
        };
        // Standard streams, listeners, the store's and the inbox's files, the log, the
        // artifacts being written, the runtime's own: a fixed part and a share that grows
        // with the limit (more connections go with more partners, files and shards).
        let reserve = 64 + soft / 16;
        let available = soft.saturating_sub(reserve);
        let admin = available / 8;
        let caps = |fds: u64| {
            let waiting = (fds / 8).min(max_waiting as u64);
            let slots = ((fds - waiting) / FDS_PER_CONNECTION).max(1);
            Caps {
                max_connections: configured.min(usize::try_from(slots).unwrap_or(usize::MAX)),
                max_waiting: waiting as usize,
            }
        };
        ConnectionBudget {
            soft_limit,
            reserve,
            public: caps(available - admin),
            admin: caps(admin),
        }
    }
}

/// Connections per client address on one listener, capped so one client cannot hold every
/// slot. The map holds only addresses with a connection open, so it is bounded by them.
#[derive(Debug)]
pub struct PerIp {
    cap: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count, given back on drop.
#[derive(Debug)]
pub struct IpSlot {
    owner: Option<(Arc<PerIp>, IpAddr)>,
}

impl PerIp {
    /// At most `cap` connections per address; 0: no cap.
    pub fn new(cap: usize) -> Arc<PerIp> {
        Arc::new(PerIp {
            cap,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, unless it already holds `cap`.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        if self.cap == 0 {
            return Some(IpSlot { owner: None });
        }
        // An IPv4 client on a dual-stack socket is the same client as over IPv4.
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock();
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            owner: Some((self.clone(), ip)),
        })
    }

    /// Connections `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock();
        counts.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some((owner, ip)) = self.owner.take() else {
            return;
        };
        let mut counts = owner.counts.lock();
        if let Some(count) = counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// Backoff after failed accepts: out of descriptors (EMFILE/ENFILE) or memory, `accept`
/// fails at once for as long as the cause lasts, so retrying at once would spin a core and
/// flood the log. The wait doubles up to a second and resets on the next success; a warning
/// is logged at most every [`AcceptBackoff::LOG_EVERY`], counting the failures in between.
#[derive(Debug)]
pub struct AcceptBackoff {
    delay: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            delay: Self::FIRST,
            last_log: None,
            unlogged: 0,
        }
    }
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    pub const LOG_EVERY: Duration = Duration::from_secs(5);

    /// An accept failed at `now`: how long to wait before the next one, and whether to log
    /// it (`Some`: the failures to report, this one and those not logged since the last).
    pub fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        let wait = self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        self.unlogged += 1;
        let due = self
            .last_log
            .is_none_or(|at| now.saturating_duration_since(at) >= Self::LOG_EVERY);
        if !due {
            return (wait, None);
        }
        self.last_log = Some(now);
        let failures = std::mem::take(&mut self.unlogged);
        (wait, Some(failures))
    }

    /// An accept succeeded: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.delay = Self::FIRST;
    }
}

const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// What the service tells the connection's I/O guard: where requests start and end.
#[derive(Debug)]
pub struct ConnState {
    phase: AtomicU8,
    /// Which limit closed the connection (0: none yet).
    expired: AtomicU8,
    /// Set on every phase change; the guard restarts its clock when it sees it.
    changed: AtomicBool,
}

impl ConnState {
    /// A new connection: waiting for its first request head.
    pub fn new() -> ConnState {
        ConnState {
            phase: AtomicU8::new(HEAD),
            expired: AtomicU8::new(0),
            changed: AtomicBool::new(false),
        }
    }

    /// A request head was received: its answer is being produced.
    pub fn begin(&self) {
        self.phase.store(BUSY, Ordering::Release);
        self.changed.store(true, Ordering::Release);
    }

    /// The response body was sent (or dropped): the connection is idle.
    pub fn end(&self) {
        self.phase.store(IDLE, Ordering::Release);
        self.changed.store(true, Ordering::Release);
    }

    /// Which limit closed the connection, if one did.
    pub fn expired(&self) -> Option<ConnectionEnd> {
        match self.expired.load(Ordering::Acquire) {
            1 => Some(ConnectionEnd::HeaderTimeout),
            2 => Some(ConnectionEnd::IdleTimeout),
            3 => Some(ConnectionEnd::SlowClient),
            _ => None,
        }
    }

    /// Whether the connection is between requests.
    pub fn is_idle(&self) -> bool {
        self.phase.load(Ordering::Acquire) == IDLE
    }
}

impl Default for ConnState {
    fn default() -> Self {
        ConnState::new()
    }
}

/// A window in which a held-back download must make progress.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    bytes: u64,
}

/// A connection that can be closed with a reset, dropping what the kernel still holds for it.
pub trait Abort {
    /// Make the coming close a reset (`SO_LINGER` 0).
    fn reset_on_close(&self);
}

impl Abort for tokio::net::TcpStream {
    fn reset_on_close(&self) {
        // A client too slow to read does not get the megabytes its socket buffer still
        // holds: those would keep it (and the kernel's memory) busy after we let go.
        let _ = self.set_zero_linger();
    }
}

impl Abort for tokio::io::DuplexStream {
    fn reset_on_close(&self) {}
}

/// A socket with the phase clocks of the module docs; any expiry fails the pending read or
/// write with `TimedOut`, which makes hyper close the connection.
pub struct GuardedIo<T> {
    inner: T,
    state: std::sync::Arc<ConnState>,
    limits: Limits,
    /// The phase the clock below belongs to.
    phase: u8,
    since: Instant,
    window: Option<Window>,
    timer: Pin<Box<Sleep>>,
    /// Why the connection was closed by a limit, once it was.
    pub expired: Option<ConnectionEnd>,
}

impl<T: Abort> GuardedIo<T> {
    /// Guard `inner` with `limits`; `state` is shared with the connection's service.
    pub fn new(inner: T, state: std::sync::Arc<ConnState>, limits: Limits) -> GuardedIo<T> {
        let now = Instant::now();
        GuardedIo {
            inner,
            state,
            timer: Box::pin(tokio::time::sleep_until(now + limits.header_timeout)),
            limits,
            phase: HEAD,
            since: now,
            window: None,
            expired: None,
        }
    }

    /// Follow a phase change made by the service.
    fn sync(&mut self, now: Instant) {
        if self.state.changed.swap(false, Ordering::AcqRel) {
            self.phase = self.state.phase.load(Ordering::Acquire);
            self.since = now;
            self.window = None;
        }
    }

    fn read_progress(&mut self, n: usize, now: Instant) {
        // The first byte of the next request starts its header clock.
        if n > 0 && self.phase == IDLE {
            self.phase = HEAD;
            self.state.phase.store(HEAD, Ordering::Release);
            self.since = now;
        }
    }

    fn write_progress(&mut self, n: usize) {
        if let Some(w) = &mut self.window {
            w.bytes += n as u64;
        }
    }

    /// Bytes a held-back download must move per window.
    fn window_minimum(&self) -> u64 {
        let secs = self.limits.send_timeout.as_secs_f64();
        ((self.limits.min_send_rate as f64 * secs) as u64).max(1)
    }

    /// Check the clocks; `Err` when one ran out. Two clocks may run: the phase's (header
    /// or idle), and the send window's while a write is held back. Data still owed after a
    /// response body ended (buffered in hyper) is under the send window, not the idle clock.
    fn check(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), io::Error> {
        loop {
            let phase = match self.phase {
                HEAD => Some((
                    self.since + self.limits.header_timeout,
                    ConnectionEnd::HeaderTimeout,
                )),
                IDLE if self.window.is_none() => Some((
                    self.since + self.limits.idle_timeout,
                    ConnectionEnd::IdleTimeout,
                )),
                // Busy and not held back by the client: producing the answer is our time.
                _ => None,
            };
            let window = self.window.map(|w| {
                (
                    w.start + self.limits.send_timeout,
                    ConnectionEnd::SlowClient,
                )
            });
            let Some((deadline, why)) = phase.into_iter().chain(window).min_by_key(|(d, _)| *d)
            else {
                return Ok(());
            };
            if now >= deadline {
                if let (ConnectionEnd::SlowClient, Some(w)) = (why, self.window) {
                    if w.bytes >= self.window_minimum() {
                        // Fast enough in this window: start the next one.
                        self.window = Some(Window {
                            start: now,
                            bytes: 0,
                        });
                        continue;
                    }
                }
                self.expired = Some(why);
                if why == ConnectionEnd::SlowClient {
                    self.inner.reset_on_close();
                }
                let code = match why {
                    ConnectionEnd::HeaderTimeout => 1,
                    ConnectionEnd::IdleTimeout => 2,
                    ConnectionEnd::SlowClient => 3,
                };
                self.state.expired.store(code, Ordering::Release);
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{why:?}")));
            }
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            return match self.timer.as_mut().poll(cx) {
                // Woken at the deadline: evaluate it.
                Poll::Ready(()) => continue,
                Poll::Pending => Ok(()),
            };
        }
    }

    /// A write would block: the client is holding the response back, its window starts.
    fn held_back(&mut self, now: Instant) {
        if self.window.is_none() {
            self.window = Some(Window {
                start: now,
                bytes: 0,
            });
        }
    }

    /// hyper flushes only with its buffer empty: nothing is owed any more.
    fn drained(&mut self, now: Instant) {
        if self.window.take().is_some() && self.phase == IDLE {
            self.since = now;
        }
    }
}

impl<T: AsyncRead + Abort + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let now = Instant::now();
        this.sync(now);
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                this.read_progress(n, now);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check(cx, now) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<T: AsyncWrite + Abort + Unpin> GuardedIo<T> {
    /// One write to the inner stream under the send clocks: progress counts, a write held
    /// back by the client starts (or continues) the send-rate window.
    fn guarded_write(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut T, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let now = Instant::now();
        self.sync(now);
        match write(&mut self.inner, cx) {
            Poll::Ready(Ok(n)) => {
                self.write_progress(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.held_back(now);
                match self.check(cx, now) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
        }
    }
}

impl<T: AsyncWrite + Abort + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guarded_write(cx, |inner, cx| Pin::new(inner).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.guarded_write(cx, |inner, cx| {
            Pin::new(inner).poll_write_vectored(cx, bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            this.drained(Instant::now());
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            min_send_rate: 100,
            ..Limits::default()
        }
    }

    #[test]
    fn the_budget_keeps_a_reserve_and_gives_ingest_its_share() {
        let b = ConnectionBudget::compute(Some(1024), 2048, 256);
        assert_eq!(b.reserve, 128);
        let used = |c: Caps| c.max_connections as u64 * FDS_PER_CONNECTION + c.max_waiting as u64;
        assert!(used(b.public) + used(b.admin) <= 1024 - b.reserve, "{b:?}");
        assert!(b.public.max_connections >= 300, "{b:?}");
        assert!(b.admin.max_connections >= 40, "{b:?}");
        // A high limit leaves the configured values alone.
        let b = ConnectionBudget::compute(Some(1 << 20), 2048, 256);
        assert_eq!(
            b.public,
            Caps {
                max_connections: 2048,
                max_waiting: 256
            }
        );
        assert_eq!(
            b.admin,
            Caps {
                max_connections: 2048,
                max_waiting: 256
            }
        );
        assert_eq!(
            ConnectionBudget::compute(None, 10, 256)
                .public
                .max_connections,
            10
        );
        // Even an absurdly low limit leaves each listener a connection.
        let b = ConnectionBudget::compute(Some(20), 2048, 256);
        assert_eq!((b.public.max_connections, b.admin.max_connections), (1, 1));
    }

    #[test]
    fn per_ip_slots_are_capped_and_given_back() {
        let per_ip = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = per_ip.try_take(a).unwrap();
        let second = per_ip.try_take(mapped).expect("a second one");
        assert!(per_ip.try_take(a).is_none(), "the same client over IPv6");
        assert!(
            per_ip.try_take(b).is_some(),
            "other clients are not affected"
        );
        drop(first);
        let third = per_ip.try_take(a).expect("a slot was given back");
        drop((second, third));
        assert_eq!(per_ip.held(a), 0);
        assert!(per_ip.counts.lock().is_empty(), "no entry left behind");
        let off = PerIp::new(0);
        let all: Vec<_> = (0..1000).map(|_| off.try_take(a).unwrap()).collect();
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn failing_accepts_back_off_and_log_rarely() {
        let mut backoff = AcceptBackoff::default();
        let t0 = Instant::now();
        let mut waits = Vec::new();
        let mut logged = Vec::new();
        let mut now = t0;
        // A thousand failures in a row over about 16 minutes of backoff.
        for _ in 0..1000 {
            let (wait, log) = backoff.failed(now);
            waits.push(wait);
            if let Some(n) = log {
                logged.push(n);
            }
            now += wait;
        }
        assert_eq!(waits[0], Duration::from_millis(10));
        assert_eq!(waits[1], Duration::from_millis(20));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)));
        assert_eq!(*waits.last().unwrap(), Duration::from_secs(1));
        assert_eq!(logged[0], 1, "the first failure is logged at once");
        assert_eq!(
            logged.iter().sum::<u64>() + backoff.unlogged,
            1000,
            "every failure counted"
        );
        let span = now.saturating_duration_since(t0).as_secs();
        assert!(
            logged.len() as u64 <= span / 5 + 1,
            "{} warnings in {span} s",
            logged.len()
        );
        backoff.succeeded();
        assert_eq!(backoff.failed(now).0, Duration::from_millis(10));
    }

    #[test]
    fn token_bucket_allows_bursts_then_the_rate() {
        let limiter = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("a", t0).is_ok());
        }
        let wait = limiter.check_at("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.check_at("b", t0).is_ok(), "buckets are per key");
        assert!(limiter
            .check_at("a", t0 + Duration::from_millis(500))
            .is_ok());
        assert!(limiter
            .check_at("a", t0 + Duration::from_millis(500))
            .is_err());
        // Refill is capped at the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(limiter.check_at("a", later).is_ok());
        }
        assert!(limiter.check_at("a", later).is_err());
        let off = RateLimiter::new(0.0, 1);
        for _ in 0..100 {
            assert!(off.check_at("a", t0).is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_head_times_out_from_its_first_byte() {
        let (client, server) = tokio::io::duplex(1024);
        let state = Arc::new(ConnState::new());
        let mut io = GuardedIo::new(server, state.clone(), limits());
        // A first request, answered: the connection goes idle.
        state.begin();
        state.end();
        let mut client = client;
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let started = Instant::now();
            loop {
                match io.read(&mut buf).await {
                    Ok(0) => return (started.elapsed(), None),
                    Ok(_) => continue,
                    Err(_) => return (started.elapsed(), io.expired),
                }
            }
        });
        // Idle for 50 s (under the idle timeout), then one byte every 5 s.
        tokio::time::sleep(Duration::from_secs(50)).await;
        for _ in 0..10 {
            if client.write_all(b"G").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let (elapsed, why) = reader.await.unwrap();
        assert_eq!(why, Some(ConnectionEnd::HeaderTimeout));
        assert!(
            elapsed >= Duration::from_secs(60) && elapsed <= Duration::from_secs(61),
            "idle 50 s, then 10 s of trickle: {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_after_the_idle_timeout() {
        let (_client, server) = tokio::io::duplex(1024);
        let state = Arc::new(ConnState::new());
        let mut io = GuardedIo::new(server, state.clone(), limits());
        state.begin();
        state.end();
        let started = Instant::now();
        let mut buf = [0u8; 8];
        assert!(io.read(&mut buf).await.is_err());
        assert_eq!(io.expired, Some(ConnectionEnd::IdleTimeout));
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        // A new connection that never sends gets the header timeout.
        let (_client, server) = tokio::io::duplex(1024);
        let mut io = GuardedIo::new(server, Arc::new(ConnState::new()), limits());
        let started = Instant::now();
        assert!(io.read(&mut buf).await.is_err());
        assert_eq!(io.expired, Some(ConnectionEnd::HeaderTimeout));
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    /// Write `total` bytes to a client that reads `per_second` bytes a second; `body_done`:
    /// the response body already ended and the bytes are what hyper still has buffered.
    async fn download(
        per_second: usize,
        total: usize,
        body_done: bool,
    ) -> (Option<ConnectionEnd>, usize) {
        let (mut client, server) = tokio::io::duplex(256);
        let state = Arc::new(ConnState::new());
        let mut io = GuardedIo::new(server, state.clone(), limits());
        state.begin();
        if body_done {
            state.end();
        }
        tokio::spawn(async move {
            let mut buf = vec![0u8; per_second];
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match client.read_exact(&mut buf).await {
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        let chunk = vec![b'x'; 1024];
        let mut sent = 0;
        while sent < total {
            match io.write(&chunk[..(total - sent).min(1024)]).await {
                Ok(n) => sent += n,
                Err(_) => return (io.expired, sent),
            }
        }
        (None, sent)
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_is_cut_and_a_fast_enough_one_is_not() {
        for body_done in [false, true] {
            // 10 B/s against a minimum of 100 B/s: closed at the end of the first window.
            let (why, sent) = download(10, 100_000, body_done).await;
            assert_eq!(why, Some(ConnectionEnd::SlowClient));
            assert!(sent < 1_000, "{sent}");
            // 200 B/s: slow but above the minimum, it gets everything, even when that takes
            // longer than the idle timeout.
            let (why, sent) = download(200, 20_000, body_done).await;
            assert_eq!((why, sent), (None, 20_000));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn producing_an_answer_is_not_charged_to_the_client() {
        let (_client, server) = tokio::io::duplex(1024);
        let state = Arc::new(ConnState::new());
        let mut io = GuardedIo::new(server, state.clone(), limits());
        state.begin();
        // Busy for longer than every timeout, without the client holding anything back.
        let read = tokio::time::timeout(Duration::from_secs(300), async {
            let mut buf = [0u8; 8];
            io.read(&mut buf).await
        })
        .await;
        assert!(read.is_err(), "still open after 300 s of work");
    }
}
