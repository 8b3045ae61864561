//! Panel sessions and CSRF tokens.
//!
//! A session is a random id (192 bits) held by the browser in an HttpOnly, SameSite=Strict
//! cookie; the server keeps, per session, its expiry and its CSRF token, which every form
//! carries and every POST must present. Sessions live in memory: a restart logs everyone
//! out. They are keyed by the SHA-256 of the id, so looking one up compares no secret in
//! variable time; CSRF tokens are compared in constant time.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::partners::edit::generate_token;

/// How long a session lasts from login.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most; a login beyond it ends the one closest to expiry.
const MAX_SESSIONS: usize = 256;

struct Session {
    csrf: String,
    expires: Timestamp,
}

/// The sessions of the panel.
pub struct Sessions {
    clock: Clock,
    ttl: Duration,
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

/// A session just opened: the cookie value and its CSRF token.
#[derive(Debug, Clone)]
pub struct Opened {
    pub id: String,
    pub csrf: String,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Whether a presented secret equals the expected one, in time independent of where they
/// differ.
pub fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (
        Sha256::digest(expected.as_bytes()),
        Sha256::digest(given.as_bytes()),
    );
    bool::from(a.ct_eq(&b))
}

impl Sessions {
    pub fn new(clock: Clock, ttl: Duration) -> Sessions {
        Sessions {
            clock,
            ttl,
            by_hash: Mutex::default(),
        }
    }

    /// How long a new session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Open a session (after a successful login).
    pub fn open(&self) -> Opened {
        let now = self.clock.now();
        let ttl = SignedDuration::try_from(self.ttl).unwrap_or(SignedDuration::MAX);
        let opened = Opened {
            id: generate_token(),
            csrf: generate_token(),
        };
        let mut map = self.by_hash.lock();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(
            key(&opened.id),
            Session {
                csrf: opened.csrf.clone(),
                expires: now.saturating_add(ttl).unwrap_or(Timestamp::MAX),
            },
        );
        opened
    }

    /// The CSRF token of a live session; `None` for an unknown or expired one (an expired
    /// one is forgotten).
    pub fn csrf_of(&self, id: &str) -> Option<String> {
        let now = self.clock.now();
        let mut map = self.by_hash.lock();
        let k = key(id);
        match map.get(&k) {
            Some(s) if s.expires > now => Some(s.csrf.clone()),
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Whether `csrf` is the token of the live session `id`.
    pub fn check_csrf(&self, id: &str, csrf: &str) -> bool {
        self.csrf_of(id)
            .is_some_and(|expected| same_secret(&expected, csrf))
    }

    /// End a session (logout).
    pub fn close(&self, id: &str) {
        self.by_hash.lock().remove(&key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> (Clock, Sessions) {
        let clock = Clock::manual("2026-05-01T08:00:00Z".parse().unwrap());
        let s = Sessions::new(clock.clone(), Duration::from_secs(3600));
        (clock, s)
    }

    #[test]
    fn a_session_lives_until_its_expiry_and_logout_ends_it() {
        let (clock, s) = sessions();
        let a = s.open();
        let b = s.open();
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        assert_eq!(a.id.len(), 32);
        assert_eq!(s.csrf_of(&a.id).as_deref(), Some(a.csrf.as_str()));
        assert_eq!(s.csrf_of("made-up"), None);
        clock.advance(Duration::from_secs(3599));
        assert!(s.csrf_of(&a.id).is_some());
        s.close(&b.id);
        assert_eq!(s.csrf_of(&b.id), None, "logged out");
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.csrf_of(&a.id), None, "expired");
    }

    #[test]
    fn csrf_must_be_the_sessions_own() {
        let (_clock, s) = sessions();
        let a = s.open();
        let b = s.open();
        assert!(s.check_csrf(&a.id, &a.csrf));
        assert!(!s.check_csrf(&a.id, &b.csrf), "another session's token");
        assert!(!s.check_csrf(&a.id, ""));
        assert!(!s.check_csrf(&a.id, &a.csrf[..31]));
        assert!(!s.check_csrf("made-up", &a.csrf));
        assert!(same_secret("x", "x") && !same_secret("x", "y"));
    }

    #[test]
    fn the_number_of_sessions_is_bounded() {
        let (_clock, s) = sessions();
        let first = s.open();
        for _ in 0..MAX_SESSIONS {
            s.open();
        }
        assert!(s.by_hash.lock().len() <= MAX_SESSIONS);
        let _ = first;
    }
}
