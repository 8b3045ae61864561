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
    // rejected for their length and the others get the same verdict as before.
    let (short_ok, short_rejected, _) = read_lines::<Record>(data, last, 64);
    assert_eq!(
        short_ok.len() + short_rejected.len(),
        accepted.len() + rejected.len()
    );
    for parsed in &short_ok {
        assert!(accepted.iter().any(|a| a == parsed));
    }
});
