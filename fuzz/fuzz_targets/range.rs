//! Range and conditional request rules. The input is text, one header value a line:
//! representation length, `Range`, `If-Range`, `If-Match`, `If-None-Match`,
//! `If-Modified-Since`, `If-Unmodified-Since`, `Accept-Encoding` (missing lines are absent
//! headers). A partial answer always lies within the representation.
#![no_main]

use std::time::{Duration, SystemTime};

use iofd::http::rules::{
    decide_range, evaluate, prefers_gzip, Conditions, Precondition, RangeDecision, Validators,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let len_line = lines.next().unwrap_or("");
    // Any length, including 0 and u64::MAX; junk falls back to a length from its bytes.
    let len = len_line
        .trim()
        .parse::<u64>()
        .unwrap_or(len_line.len() as u64 * 97);
    let mut next = || lines.next().filter(|l| !l.is_empty());
    let (range, if_range) = (next(), next());
    let conditions = Conditions {
        if_match: next(),
        if_none_match: next(),
        if_modified_since: next(),
        if_unmodified_since: next(),
    };
    let accept_encoding = next();
    let v = Validators {
        etag: "\"abc\"",
        last_modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    };

    match decide_range(range, if_range, len, &v) {
        RangeDecision::Full => {}
        RangeDecision::Partial { start, end } => {
            assert!(start <= end && end < len, "{start}-{end} of {len}");
            // The body length the server sends cannot overflow.
            assert!((end - start).checked_add(1).is_some());
        }
        RangeDecision::Unsatisfiable => assert!(range.is_some()),
    }
    if range.is_none() {
        assert_eq!(decide_range(None, if_range, len, &v), RangeDecision::Full);
    }
    // A plain `bytes=a-b` within the length is answered exactly.
    if let Some((a, b)) = range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
    {
        if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
            let plain = !range.unwrap()[6..].contains(['+', ' ', ',']);
            if plain && a <= b && b < len {
                assert_eq!(
                    decide_range(range, None, len, &v),
                    RangeDecision::Partial { start: a, end: b }
                );
            }
        }
    }
    let outcome = evaluate(&conditions, &v);
    let none = [
        conditions.if_match,
        conditions.if_none_match,
        conditions.if_modified_since,
        conditions.if_unmodified_since,
    ];
    if none.iter().all(Option::is_none) {
        assert_eq!(outcome, Precondition::Proceed);
    }
    let _ = prefers_gzip(accept_encoding);
});
