//! The background scrub: re-hashes the served generation's snapshot files, paced, so that
//! bytes that changed on disk after they were checked (the open trusted them from the
//! verified record) are found and never served silently. A mismatch is logged as an error,
//! revoked in the record (a restart checks the file in full and falls back to the previous
//! generation) and kept in [`Store::damage`], which makes `/readyz` answer "not ready" so a
//! balancer or orchestrator takes the node out; the files already rendered keep serving.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Store;
use crate::snapshot::ScrubFile;

/// How hard the scrub works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrubOptions {
    /// Payload bytes hashed per second at most (0: no scrub).
    pub bytes_per_second: u64,
    /// The rest between two passes over the generation.
    pub between_passes: Duration,
}

impl Default for ScrubOptions {
    /// A pass over a 3 GB store in about two minutes on one core's fraction.
    fn default() -> Self {
        ScrubOptions {
            bytes_per_second: 32 << 20,
            between_passes: Duration::from_secs(3600),
        }
    }
}

/// What one file's scrub found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scrubbed {
    Good { file: String, bytes: u64 },
    Damaged { file: String, bytes: u64 },
}

/// Bytes hashed between two looks at the pace and the token.
const CHUNK: usize = 1 << 20;

impl Store {
    /// Why the served generation is damaged, once the scrub found a file whose bytes no
    /// longer hash to what was checked (`None` while none is).
    pub fn damage(&self) -> Option<String> {
        let damaged = self.damaged.lock();
        (!damaged.is_empty()).then(|| {
            format!(
                "snapshot file {} no longer matches its checksum (restart to fall back, or repair)",
                damaged.join(", ")
            )
        })
    }

    /// The scrub found `file` damaged: revoke its record entry and report it until the
    /// process ends.
    fn report_damage(&self, file: &ScrubFile) {
        tracing::error!(
            dir = %self.dir.display(),
            file = file.name(),
            "SNAPSHOT FILE DAMAGED: its bytes no longer match the checksum they were checked with; \
             /readyz reports not ready; a restart checks it in full and falls back"
        );
        self.record.revoke(file.entry());
        if let Err(e) = self.record.flush(None) {
            tracing::error!(dir = %self.dir.display(), error = %e, "cannot revoke a damaged file in the verified record");
        }
        let mut damaged = self.damaged.lock();
        if !damaged.iter().any(|d| d == file.name()) {
            damaged.push(file.name().to_owned());
        }
    }

    /// One pass over the current generation's files, `pace` called after each chunk with the
    /// bytes hashed (it sleeps to hold the rate; `false` stops the pass). Each file's outcome
    /// goes to `seen`. Returns false when stopped.
    pub fn scrub_pass(
        &self,
        mut pace: impl FnMut(usize) -> bool,
        mut seen: impl FnMut(Scrubbed),
    ) -> bool {
        let snapshot = self.snapshot();
        for file in snapshot.scrub_files() {
            // Reported once: the alarm stands until the process ends.
            if self.damaged.lock().iter().any(|d| d == file.name()) {
                continue;
            }
            let bytes = file.len();
            match file.rehash(CHUNK, &mut pace) {
                None => return false,
                Some(true) => seen(Scrubbed::Good {
                    file: file.name().to_owned(),
                    bytes,
                }),
                Some(false) => {
                    self.report_damage(&file);
                    seen(Scrubbed::Damaged {
                        file: file.name().to_owned(),
                        bytes,
                    });
                }
            }
        }
        true
    }

    /// Scrub pass after pass until `stop` is cancelled, at most `opts.bytes_per_second`.
    /// Blocking: run it on a thread of its own (it sleeps between chunks).
    pub fn scrub(&self, opts: ScrubOptions, stop: &CancellationToken, seen: impl FnMut(Scrubbed)) {
        if opts.bytes_per_second == 0 {
            return;
        }
        let mut seen = seen;
        // Not during start-up: its reads would compete with the first requests'.
        sleep_unless_stopped(stop, opts.between_passes.min(Duration::from_secs(60)));
        while !stop.is_cancelled() {
            // A new pace per pass: the rest between passes is no credit for a burst.
            let mut pacer = Pacer::new(opts.bytes_per_second);
            let done = self.scrub_pass(
                |n| {
                    if let Some(wait) = pacer.after(n) {
                        sleep_unless_stopped(stop, wait);
                    }
                    !stop.is_cancelled()
                },
                &mut seen,
            );
            if done {
                tracing::debug!(dir = %self.dir.display(), "scrub pass done");
                sleep_unless_stopped(stop, opts.between_passes);
            }
        }
    }
}

/// Sleep `wait`, waking early when `stop` is cancelled (looked at every 100 ms).
fn sleep_unless_stopped(stop: &CancellationToken, wait: Duration) {
    let end = Instant::now() + wait;
    while !stop.is_cancelled() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Holds a byte rate: after `n` bytes, how long to wait so the average stays at the rate.
struct Pacer {
    rate: u64,
    started: Instant,
    bytes: u64,
}

impl Pacer {
    fn new(rate: u64) -> Pacer {
        Pacer {
            rate,
            started: Instant::now(),
            bytes: 0,
        }
    }

    fn after(&mut self, n: usize) -> Option<Duration> {
        self.bytes += n as u64;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        due.checked_sub(self.started.elapsed())
    }
}
