//! The IOF importer over arbitrary bytes (a full.xml): it maps the offer or refuses it with
//! a position inside the input (the line of its byte), and every product it maps is one iofd can store.
#![no_main]

use iofd::ingest::iof::{read_full_bytes, IofError};
use iofd::ingest::LineRecord;
use iofd_fuzz::check_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match read_full_bytes(data) {
        Ok(offer) => {
            for record in offer.records {
                let mut normalized = record.clone();
                // The store normalizes what it is given; a refusal is reported there.
                if normalized.normalize_line().is_ok() {
                    check_round_trip(&normalized);
                }
            }
        }
        Err(
            IofError::Xml { position, .. }
            | IofError::Invalid { position, .. }
            // A mutated currency has no configured rate: refused, not relabelled.
            | IofError::NoRate { position, .. },
        ) => {
            // The byte is inside the input and the line is the one that byte is on.
            let byte = usize::try_from(position.byte).unwrap_or(usize::MAX);
            assert!(byte <= data.len(), "{position} > {}", data.len());
            let newlines = data[..byte].iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(position.line, newlines + 1, "{position}");
        }
        Err(e) => panic!("bytes cannot fail to read or lack a full.xml: {e}"),
    }
});
