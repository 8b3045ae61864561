//! The ERP's JSON Lines records: any bytes are read line by line into normalized records or
//! rejections naming a line of the input; what is accepted reads back unchanged once written.
#![no_main]

use iofd::catalog::Record;
use iofd_fuzz::{check_round_trip, line_count, read_lines};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let last = line_count(data);
    let (accepted, rejected, fatal) = read_lines::<Record>(data, last, usize::MAX);
    assert_eq!(fatal, None, "in-memory input cannot fail to read");
    for parsed in &accepted {
        check_round_trip(&parsed.record);
    }
    // With a small line limit, every line is still accounted for: the long ones are
    // rejected for their length and the others get the same verdict as before. A blank line
    // is skipped, unless it is too long to read: then it is rejected for its length too.
    const LIMIT: usize = 64;
    let (short_ok, short_rejected, _) = read_lines::<Record>(data, last, LIMIT);
    let lines_of = |ok: &[iofd::ingest::ParsedLine<Record>], bad: &[iofd::ingest::Rejection]| {
        ok.iter()
            .map(|a| a.line)
            .chain(bad.iter().map(|r| r.line))
            .collect::<std::collections::BTreeSet<u64>>()
    };
    let seen = lines_of(&accepted, &rejected);
    let short_seen = lines_of(&short_ok, &short_rejected);
    assert!(seen.is_subset(&short_seen), "{seen:?} {short_seen:?}");
    let lengths: Vec<usize> = data.split(|&b| b == b'\n').map(<[u8]>::len).collect();
    for extra in short_seen.difference(&seen) {
        let index = usize::try_from(*extra - 1).expect("line number");
        assert!(
            lengths[index] > LIMIT,
            "line {extra} became visible under the limit"
        );
    }
    for parsed in &short_ok {
        assert!(accepted.iter().any(|a| a == parsed));
    }
});
