//! Grants: the permission behind a partner's downloads in flight.
//!
//! Every account holds one [`Grant`]. A download keeps a clone of it and checks it between
//! chunks; a watcher waits on [`Grant::revoked`] to cut a stalled connection. A reload carries
//! the grant over to the new accounts when the partner's access is unchanged, and revokes it
//! when the partner lost access (revoked, removed, token rotated, a shop taken away, sharing
//! switched off), so only that partner's downloads stop.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Whether an account's downloads may go on. Revocation is one-way: a restored account gets
/// a fresh grant.
#[derive(Debug, Default)]
pub struct Grant {
    revoked: AtomicBool,
    notify: Notify,
}

impl Grant {
    /// True once the access this grant stood for is gone.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    /// End the grant and wake everything waiting on [`Grant::revoked`].
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Resolves when the grant is revoked (at once if it already is).
    pub async fn revoked(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag, so a revoke between the check and the await
            // still wakes us.
            notified.as_mut().enable();
            if self.is_revoked() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_wake_on_revoke_and_late_waiters_return_at_once() {
        let grant = Arc::new(Grant::default());
        let waiter = tokio::spawn({
            let grant = grant.clone();
            async move { grant.revoked().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "nothing revoked yet");
        grant.revoke();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the waiter wakes")
            .expect("join");
        assert!(grant.is_revoked());
        tokio::time::timeout(Duration::from_millis(100), grant.revoked())
            .await
            .expect("an already revoked grant resolves at once");
    }
}
