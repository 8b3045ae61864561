//! Parsed documents shared between partners by content key (an MD5, or a local-copy state
//! key). The first partner to need a key parses it; the others wait for that result instead
//! of parsing the same bytes again. Entries live as long as some partner holds them.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

enum Slot<T> {
    /// Somebody claimed the key and is producing the value.
    Busy,
    Ready(Weak<T>),
}

/// Where a key stands.
pub enum Lookup<T> {
    Ready(Arc<T>),
    /// Another task is producing it: [`ParseCache::wait`] for it.
    Busy,
    /// Nobody has it: the caller now owns the claim and must [`ParseCache::fill`] it.
    Claimed,
}

/// A map from content key to a shared parsed value.
pub struct ParseCache<T> {
    map: Mutex<HashMap<String, Slot<T>>>,
}

impl<T> Default for ParseCache<T> {
    fn default() -> Self {
        ParseCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> ParseCache<T> {
    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Slot<T>>> {
        self.map.lock()
    }

    /// The value, or a claim on producing it, or word that someone else is.
    pub fn lookup_or_claim(&self, key: &str) -> Lookup<T> {
        let mut map = self.lock();
        match map.get(key) {
            Some(Slot::Busy) => Lookup::Busy,
            Some(Slot::Ready(weak)) => match weak.upgrade() {
                Some(v) => Lookup::Ready(v),
                None => {
                    map.insert(key.to_string(), Slot::Busy);
                    Lookup::Claimed
                }
            },
            None => {
                map.insert(key.to_string(), Slot::Busy);
                Lookup::Claimed
            }
        }
    }

    /// The value if it is ready now.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        match self.lock().get(key) {
            Some(Slot::Ready(w)) => w.upgrade(),
            _ => None,
        }
    }

    /// Settle a claim: publish the value, or give the claim up (`None`) so another task can
    /// try. Dead entries are swept now and then.
    pub fn fill(&self, key: &str, value: Option<&Arc<T>>) {
        let mut map = self.lock();
        match value {
            Some(v) => {
                map.insert(key.to_string(), Slot::Ready(Arc::downgrade(v)));
            }
            None => {
                map.remove(key);
            }
        }
        if map.len() > 256 {
            map.retain(|_, s| match s {
                Slot::Busy => true,
                Slot::Ready(w) => w.strong_count() > 0,
            });
        }
    }

    /// Wait (polling, bounded by `limit`) for another task's claim to settle.
    pub async fn wait(&self, key: &str, limit: Duration) -> Option<Arc<T>> {
        let until = Instant::now() + limit;
        loop {
            match self.lock().get(key) {
                Some(Slot::Ready(w)) => return w.upgrade(),
                Some(Slot::Busy) => {}
                None => return None,
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Number of entries (busy or ready, live or not yet swept).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_claims_others_wait_and_values_die_with_their_holders() {
        let cache = ParseCache::<u32>::default();
        assert!(matches!(cache.lookup_or_claim("k"), Lookup::Claimed));
        assert!(matches!(cache.lookup_or_claim("k"), Lookup::Busy));
        assert!(cache.wait("k", Duration::from_millis(20)).await.is_none());
        let v = Arc::new(7);
        cache.fill("k", Some(&v));
        assert_eq!(
            cache.wait("k", Duration::from_secs(1)).await.as_deref(),
            Some(&7)
        );
        assert!(matches!(cache.lookup_or_claim("k"), Lookup::Ready(_)));
        drop(v);
        // Nobody holds it any more: the next asker parses again.
        assert!(cache.get("k").is_none());
        assert!(matches!(cache.lookup_or_claim("k"), Lookup::Claimed));
        // A claim given up lets waiters go and the next asker claim.
        cache.fill("k", None);
        assert!(cache.wait("k", Duration::from_secs(1)).await.is_none());
        assert!(matches!(cache.lookup_or_claim("k"), Lookup::Claimed));
        assert_eq!(cache.len(), 1);
    }
}
