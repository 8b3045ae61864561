//! A JSON array body, read the way the ingest API reads one: `ArrayLines` feeding the JSON
//! Lines reader. A malformed array is a read error with its byte position; a well-formed
//! array yields one accepted or rejected line per element.
#![no_main]

use std::io::BufReader;

use iofd::catalog::Record;
use iofd::ingest::ArrayLines;
use iofd_fuzz::read_lines;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small buffers so that elements and tokens straddle refills.
    let reader = BufReader::with_capacity(7, ArrayLines::new(BufReader::with_capacity(5, data)));
    let (accepted, rejected, fatal) = read_lines::<Record>(reader, u64::MAX, usize::MAX);
    if let Some(message) = &fatal {
        assert!(message.contains("JSON array"), "{message}");
    }
    // serde_json as the reference: an array it accepts is read element by element.
    if let Ok(serde_json::Value::Array(elements)) = serde_json::from_slice(data) {
        assert_eq!(fatal, None, "a valid array was refused");
        let lines = accepted.len() + rejected.len();
        assert_eq!(lines, elements.len(), "one line per element");
        for (i, line) in accepted
            .iter()
            .map(|a| a.line)
            .chain(rejected.iter().map(|r| r.line))
            .enumerate()
        {
            assert!(
                line >= 1 && line <= elements.len() as u64,
                "element {i}: line {line}"
            );
        }
    }
});
