//! The HTTP rules a cache relies on, as pure functions over header values: conditional
//! requests (RFC 9110 §13) and byte ranges (RFC 9110 §14). No sockets, no hyper types.

use std::time::SystemTime;

/// What a representation offers to validators.
#[derive(Clone, Copy, Debug)]
pub struct Validators<'a> {
    /// Strong entity tag, quoted: `"abc"`.
    pub etag: &'a str,
    pub last_modified: SystemTime,
}

/// The request headers that make a request conditional, as raw values.
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

/// The outcome of evaluating preconditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the representation (maybe a range of it).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Iterate the entity tags of an `If-Match`/`If-None-Match` list; `*` yields `"*"`.
fn tags(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// Strong comparison: both strong and byte-identical.
fn strong_eq(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

/// Weak comparison: equal opaque tags, ignoring the weakness flag.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

fn parse_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

/// HTTP dates have one-second resolution; compare at that resolution.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Evaluate preconditions in the order RFC 9110 §13.2.2 prescribes, for GET and HEAD.
pub fn evaluate(c: &Conditions, v: &Validators) -> Precondition {
    // 1. If-Match (strong comparison); 2. otherwise If-Unmodified-Since.
    if let Some(list) = c.if_match {
        if !tags(list).any(|t| t == "*" || strong_eq(t, v.etag)) {
            return Precondition::Failed;
        }
    } else if let Some(date) = c.if_unmodified_since.and_then(parse_date) {
        if secs(v.last_modified) > secs(date) {
            return Precondition::Failed;
        }
    }
    // 3. If-None-Match (weak comparison); 4. otherwise If-Modified-Since.
    if let Some(list) = c.if_none_match {
        if tags(list).any(|t| t == "*" || weak_eq(t, v.etag)) {
            return Precondition::NotModified;
        }
    } else if let Some(date) = c.if_modified_since.and_then(parse_date) {
        if secs(v.last_modified) <= secs(date) {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// How to answer with respect to `Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeDecision {
    /// 200 with the whole representation.
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Decide a `Range` request for a representation of `len` bytes.
///
/// One satisfiable range is answered with 206. Several ranges are answered with the whole
/// representation (200): multipart/byteranges buys importers nothing and lets a client make
/// an origin do extra work. A header we cannot parse is ignored, as the RFC allows.
/// `If-Range` (an entity tag compared strongly, or a date) turns a stale range request into a
/// full one.
pub fn decide_range(
    range: Option<&str>,
    if_range: Option<&str>,
    len: u64,
    v: &Validators,
) -> RangeDecision {
    let Some(range) = range else {
        return RangeDecision::Full;
    };
    if let Some(ir) = if_range {
        let ir = ir.trim();
        let fresh = if ir.starts_with('"') || ir.starts_with("W/") {
            strong_eq(ir, v.etag)
        } else {
            parse_date(ir).is_some_and(|d| secs(d) == secs(v.last_modified))
        };
        if !fresh {
            return RangeDecision::Full;
        }
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return RangeDecision::Full;
    };
    let mut parts = spec.split(',').map(str::trim).filter(|s| !s.is_empty());
    let Some(first) = parts.next() else {
        return RangeDecision::Full;
    };
    // A second range means the whole representation: the rest of the header is never read,
    // so a request listing thousands of ranges costs no more than one listing two.
    if parts.next().is_some() {
        return RangeDecision::Full;
    }
    let Some((a, b)) = first.split_once('-') else {
        return RangeDecision::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if a.is_empty() {
        // Suffix range: the last N bytes.
        let Some(n) = parse(b) else {
            return RangeDecision::Full;
        };
        if n == 0 || len == 0 {
            return RangeDecision::Unsatisfiable;
        }
        let n = n.min(len);
        return RangeDecision::Partial {
            start: len - n,
            end: len - 1,
        };
    }
    let Some(start) = parse(a) else {
        return RangeDecision::Full;
    };
    let end = if b.is_empty() {
        len.saturating_sub(1)
    } else {
        match parse(b) {
            Some(e) if e >= start => e.min(len.saturating_sub(1)),
            _ => return RangeDecision::Full,
        }
    };
    if start >= len {
        return RangeDecision::Unsatisfiable;
    }
    RangeDecision::Partial { start, end }
}

/// Choose between identity and gzip from `Accept-Encoding` (RFC 9110 §12.5.3), with q-values.
/// Returns true when gzip should be sent. Identity is always acceptable unless refused.
pub fn prefers_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let mut gzip_q: Option<f32> = None;
    let mut star_q: Option<f32> = None;
    let mut identity_q: Option<f32> = None;
    for item in header.split(',') {
        let mut it = item.split(';');
        let coding = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in it {
            if let Some(v) = param
                .trim()
                .strip_prefix("q=")
                .or_else(|| param.trim().strip_prefix("Q="))
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip_q = Some(q),
            "*" => star_q = Some(q),
            "identity" => identity_q = Some(q),
            _ => {}
        }
    }
    let gzip = gzip_q.or(star_q).unwrap_or(0.0);
    // Unlisted identity is acceptable but not preferred: a client that lists gzip wants it.
    let identity = identity_q.unwrap_or(0.0);
    gzip > 0.0 && gzip >= identity
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn v() -> Validators<'static> {
        Validators {
            etag: "\"abc\"",
            last_modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }
    const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT"; // 1_700_000_000
    const EARLIER: &str = "Tue, 14 Nov 2023 22:13:19 GMT";

    #[test]
    fn if_none_match_gives_304_and_wins_over_if_modified_since() {
        let c = Conditions {
            if_none_match: Some("\"x\", W/\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::NotModified);
        let c = Conditions {
            if_none_match: Some("\"x\""),
            if_modified_since: Some(LM),
            ..Default::default()
        };
        assert_eq!(
            evaluate(&c, &v()),
            Precondition::Proceed,
            "If-Modified-Since is ignored when If-None-Match is present"
        );
        let c = Conditions {
            if_none_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::NotModified);
    }

    #[test]
    fn if_modified_since_compares_at_second_resolution() {
        let c = Conditions {
            if_modified_since: Some(LM),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::NotModified);
        let c = Conditions {
            if_modified_since: Some(EARLIER),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::Proceed);
        let c = Conditions {
            if_modified_since: Some("not a date"),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::Proceed);
    }

    #[test]
    fn if_match_uses_strong_comparison_and_fails_with_412() {
        let c = Conditions {
            if_match: Some("W/\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::Failed);
        let c = Conditions {
            if_match: Some("\"abc\""),
            if_none_match: Some("\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::NotModified);
        let c = Conditions {
            if_unmodified_since: Some(EARLIER),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::Failed);
        let c = Conditions {
            if_unmodified_since: Some(LM),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Precondition::Proceed);
    }

    #[test]
    fn byte_ranges() {
        let d = |r: &str| decide_range(Some(r), None, 1000, &v());
        assert_eq!(
            d("bytes=0-99"),
            RangeDecision::Partial { start: 0, end: 99 }
        );
        assert_eq!(
            d("bytes=900-"),
            RangeDecision::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            d("bytes=-100"),
            RangeDecision::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            d("bytes=-5000"),
            RangeDecision::Partial { start: 0, end: 999 }
        );
        assert_eq!(
            d("bytes=990-5000"),
            RangeDecision::Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(d("bytes=1000-"), RangeDecision::Unsatisfiable);
        assert_eq!(d("bytes=-0"), RangeDecision::Unsatisfiable);
        assert_eq!(
            d("bytes=0-1,5-9"),
            RangeDecision::Full,
            "several ranges get the whole body"
        );
        assert_eq!(
            d("bytes=9-1"),
            RangeDecision::Full,
            "an invalid range is ignored"
        );
        assert_eq!(d("items=0-1"), RangeDecision::Full);
        assert_eq!(d("bytes=+1-2"), RangeDecision::Full);
        assert_eq!(decide_range(None, None, 1000, &v()), RangeDecision::Full);
        assert_eq!(
            decide_range(Some("bytes=0-0"), None, 0, &v()),
            RangeDecision::Unsatisfiable
        );
    }

    #[test]
    fn thousands_of_ranges_are_answered_whole_without_parsing_them_all() {
        let many = format!(
            "bytes={}",
            (0..10_000)
                .map(|i| format!("{i}-{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(
            decide_range(Some(&many), None, 100_000, &v()),
            RangeDecision::Full
        );
    }

    #[test]
    fn if_range_with_a_stale_validator_serves_everything() {
        assert_eq!(
            decide_range(Some("bytes=0-9"), Some("\"abc\""), 100, &v()),
            RangeDecision::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            decide_range(Some("bytes=0-9"), Some("\"old\""), 100, &v()),
            RangeDecision::Full
        );
        assert_eq!(
            decide_range(Some("bytes=0-9"), Some("W/\"abc\""), 100, &v()),
            RangeDecision::Full
        );
        assert_eq!(
            decide_range(Some("bytes=0-9"), Some(LM), 100, &v()),
            RangeDecision::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            decide_range(Some("bytes=0-9"), Some(EARLIER), 100, &v()),
            RangeDecision::Full
        );
    }

    #[test]
    fn accept_encoding_with_q_values() {
        assert!(!prefers_gzip(None));
        assert!(prefers_gzip(Some("gzip")));
        assert!(prefers_gzip(Some("br, gzip;q=0.8")));
        assert!(!prefers_gzip(Some("gzip;q=0")));
        assert!(prefers_gzip(Some("*")));
        assert!(!prefers_gzip(Some("*;q=0, identity")));
        assert!(!prefers_gzip(Some("gzip;q=0.5, identity;q=1")));
        assert!(prefers_gzip(Some("identity;q=0, GZIP")));
        assert!(!prefers_gzip(Some("deflate")));
    }
}
