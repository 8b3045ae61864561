//! Checks shared by the fuzz targets: what every parser promises whatever its input.

use iofd::catalog::Record;
use iofd::ingest::{JsonlReader, LineError, LineRecord, ParsedLine, Rejection};

/// A rejection names its line (within the input) and says why. (A field may be named by
/// the empty string: `{"": 1}` has an unknown field called "".)
pub fn check_rejection(r: &Rejection, source: &str, last_line: u64) {
    assert_eq!(r.source, source);
    assert!(
        r.line >= 1 && r.line <= last_line,
        "line {} of {last_line}: {r}",
        r.line
    );
    assert!(!r.reason.is_empty(), "{r}");
    assert!(r.to_string().starts_with(&format!("{source}:{}: ", r.line)));
}

/// Stream `input` as JSON Lines of `T`: every item is an accepted line or a rejection whose
/// line number lies within the input, in increasing order. Returns the accepted lines and
/// the fatal error's text, if reading failed (only possible for a failing reader).
pub fn read_lines<T: LineRecord>(
    reader: impl std::io::BufRead,
    last_line: u64,
    max_line_bytes: usize,
) -> (Vec<ParsedLine<T>>, Vec<Rejection>, Option<String>) {
    let mut lines = JsonlReader::<_, T>::of("fuzz", reader).with_max_line_bytes(max_line_bytes);
    let (mut accepted, mut rejected, mut fatal) = (Vec::new(), Vec::new(), None);
    let mut previous = 0;
    for item in lines.by_ref() {
        let line = match item {
            Ok(parsed) => {
                let line = parsed.line;
                assert!(line >= 1 && line <= last_line, "line {line} of {last_line}");
                accepted.push(parsed);
                line
            }
            Err(LineError::Rejected(r)) => {
                check_rejection(&r, "fuzz", last_line);
                let line = r.line;
                rejected.push(r);
                line
            }
            Err(LineError::Fatal(e)) => {
                assert!(fatal.is_none(), "a second item after a fatal error");
                fatal = Some(e.to_string());
                continue;
            }
        };
        assert!(fatal.is_none(), "an item after a fatal error");
        assert!(line > previous, "line {line} after line {previous}");
        previous = line;
    }
    (accepted, rejected, fatal)
}

/// The number of lines `input` has, counting a last line without a newline.
pub fn line_count(input: &[u8]) -> u64 {
    input.split(|&b| b == b'\n').count() as u64
}

/// An accepted record survives being written as a line and read back: what the importer
/// or the parser produced is something iofd can store and export again unchanged.
pub fn check_round_trip(record: &Record) {
    let text = serde_json::to_string(record).expect("a record serializes");
    let mut again = match Record::parse_line(&text) {
        Ok(r) => r,
        Err(e) => panic!("{text}\ndoes not parse back: {:?}: {}", e.field, e.reason),
    };
    if let Err(e) = again.normalize_line() {
        panic!("{text}\nis refused once written: {}: {}", e.field, e.reason);
    }
    assert_eq!(&again, record, "{text}");
}
