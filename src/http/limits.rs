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

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
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
}

impl RateLimiter {
    /// A limiter for `rate` requests per second with bursts of `burst`; `rate` 0 disables it.
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Take one request from `key`'s bucket, or say how long until one is available.
    ///
    /// Keys are authenticated partner ids, so the map is bounded by the partners file.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
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
    use std::sync::Arc;
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
