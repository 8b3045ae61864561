//! The wall clock the origin's timed behaviour reads: when change windows are cut, when bases
//! are rebuilt, the times written into change files and bases, and how far the partners'
//! rate-limit buckets have refilled.
//!
//! The server runs on [`Clock::system`]. Tests run on [`Clock::manual`], which stands still
//! until [`Clock::advance`] moves it, so a test that needs a window to pass moves the clock
//! instead of sleeping; whoever waits on it with [`Clock::sleep_until`] wakes at once.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

/// A source of the current time; clones share it.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

struct Manual {
    time: watch::Sender<Timestamp>,
    /// The time it was made with, and the monotonic instant it stands for.
    start: Timestamp,
    origin: tokio::time::Instant,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that reads `start` until [`Clock::advance`] moves it.
    pub fn manual(start: Timestamp) -> Clock {
        Clock {
            manual: Some(Arc::new(Manual {
                time: watch::Sender::new(start),
                start,
                origin: tokio::time::Instant::now(),
            })),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            None => Timestamp::now(),
            Some(m) => *m.time.borrow(),
        }
    }

    /// The current time as a monotonic instant, for intervals (the system clock's own
    /// monotonic time; on a manual clock, an instant that moves with [`Clock::advance`]).
    pub fn instant(&self) -> tokio::time::Instant {
        match &self.manual {
            None => tokio::time::Instant::now(),
            Some(m) => {
                let moved = m.time.borrow().duration_since(m.start);
                m.origin + Duration::try_from(moved).unwrap_or(Duration::ZERO)
            }
        }
    }

    /// Move a manual clock forward by `by` and wake its sleepers whose time has come. The
    /// system clock cannot be moved: a call on it is refused with `false`.
    pub fn advance(&self, by: Duration) -> bool {
        let Some(m) = &self.manual else {
            return false;
        };
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        m.time
            .send_modify(|t| *t = t.checked_add(by).unwrap_or(Timestamp::MAX));
        true
    }

    /// Wait until the clock reads `deadline` or later. On the system clock this is a timer
    /// (a clock stepped meanwhile is noticed when the timer fires, as the caller then reads
    /// the time again); on a manual clock it returns once an advance reaches `deadline`.
    pub async fn sleep_until(&self, deadline: Timestamp) {
        match &self.manual {
            None => {
                let wait = deadline
                    .duration_since(Timestamp::now())
                    .try_into()
                    .unwrap_or(Duration::ZERO);
                tokio::time::sleep(wait).await;
            }
            Some(m) => {
                let mut moved = m.time.subscribe();
                // The sender lives as long as this clock, so the wait only ends on time.
                let _ = moved.wait_for(|now| *now >= deadline).await;
            }
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::system"),
            Some(m) => write!(f, "Clock::manual({})", *m.time.borrow()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        assert!(clock.clone().advance(Duration::from_secs(90)));
        assert_eq!(clock.now(), start + SignedDuration::from_secs(90));
        let before = clock.instant();
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.instant() - before, Duration::from_millis(1500));
        assert!(!Clock::system().advance(Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn a_sleeper_on_a_manual_clock_wakes_when_the_clock_reaches_its_deadline() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        let deadline = start + SignedDuration::from_secs(60);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(deadline).await }
        });
        clock.advance(Duration::from_secs(30));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(30));
        tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("woken")
            .expect("joined");
    }
}
