use super::*;
use proptest::prelude::*;

struct Collect(Vec<(u64, Update)>);

impl Sink<Update> for Collect {
    fn take(&mut self, line: u64, update: Update) -> Result<Option<Rejection>, String> {
        self.0.push((line, update));
        Ok(None)
    }
}

type Parsed = (Vec<(u64, Update)>, Vec<(u64, String)>);

/// `body` fed to a [`LineFeed`] in pieces cut at `cuts`, batches taken after the pieces
/// marked in `takes`.
fn fed(body: &[u8], array: bool, cuts: &[usize], takes: &[bool]) -> Result<Parsed, String> {
    let mut feed = LineFeed::new(array);
    let mut sink = Collect(Vec::new());
    let mut rejected = Rejections::default();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(body.len());
    for (i, &cut) in cuts.iter().enumerate() {
        let piece = Bytes::copy_from_slice(&body[at..cut.max(at)]);
        at = cut.max(at);
        feed.push(piece).map_err(|e| e.to_string())?;
        if takes.get(i).copied().unwrap_or(false) {
            parse_batch(feed.take(), &mut sink, &mut rejected)?;
        }
    }
    feed.finish().map_err(|e| e.to_string())?;
    parse_batch(feed.take(), &mut sink, &mut rejected)?;
    let (listed, _) = rejected.into_parts();
    Ok((
        sink.0,
        listed.into_iter().map(|r| (r.line, r.reason)).collect(),
    ))
}

/// The same body read whole by the file readers.
fn whole(body: &[u8], array: bool) -> Result<Parsed, String> {
    let reader: Box<dyn Read> = if array {
        Box::new(ArrayLines::new(body))
    } else {
        Box::new(body)
    };
    let mut parsed = (Vec::new(), Vec::new());
    for item in JsonlReader::<_, Update>::of("http", io::BufReader::new(reader)) {
        match item {
            Ok(p) => parsed.0.push((p.line, p.record)),
            Err(LineError::Rejected(r)) => parsed.1.push((r.line, r.reason)),
            Err(LineError::Fatal(e)) => return Err(e.to_string()),
        }
    }
    parsed.1.sort();
    Ok(parsed)
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u64..5, 0u32..100).prop_map(|(p, q)| format!(
            r#"{{"kind":"stock","product":{p},"warehouse":1,"quantity":"{q}"}}"#
        )),
        Just(r#"{"kind":"stock","product":"x"}"#.to_string()),
        Just("not json".to_string()),
        Just(String::new()),
        Just("  \r".to_string()),
        Just(r#"{"kind":"price","product":2,"retail":{"net":"1.00"}}"#.to_string()),
    ]
}

proptest! {
    #[test]
    fn lines_cut_as_they_arrive_parse_as_the_whole_body(
        lines in prop::collection::vec(line(), 0..30),
        array in any::<bool>(),
        final_newline in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        takes in prop::collection::vec(any::<bool>(), 0..21),
    ) {
        let body = if array {
            let elements: Vec<&String> = lines.iter().filter(|l| l.starts_with('{')).collect();
            let joined: Vec<String> = elements.iter().map(|e| e.to_string()).collect();
            format!("[\n{}\n]", joined.join(",\n "))
        } else {
            let mut b = lines.join("\n");
            if final_newline {
                b.push('\n');
            }
            b
        };
        let expected = whole(body.as_bytes(), array);
        let got = fed(body.as_bytes(), array, &cuts, &takes);
        match (expected, got) {
            (Ok(e), Ok(g)) => prop_assert_eq!(e, g),
            (Err(_), Err(_)) => {}
            (e, g) => prop_assert!(false, "{:?} vs {:?}", e, g),
        }
    }
}

#[test]
fn an_overlong_line_is_rejected_in_place_and_the_next_keep_their_numbers() {
    let ok = r#"{"kind":"stock","product":1,"warehouse":1,"quantity":"5"}"#;
    let long = format!(
        r#"{{"kind":"stock","x":"{}"}}"#,
        "a".repeat(ingest::MAX_LINE_BYTES)
    );
    let body = format!("{ok}\n{long}\n{ok}\n");
    let (parsed, rejected) = fed(body.as_bytes(), false, &[10, 1 << 20, 5 << 20], &[]).unwrap();
    assert_eq!(parsed.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, 2);
    assert_eq!(
        rejected[0].1,
        format!(
            "the line is {} bytes long; the limit is {} bytes",
            long.len(),
            ingest::MAX_LINE_BYTES
        )
    );
    // The same words as the file reader's.
    assert_eq!(whole(body.as_bytes(), false).unwrap().1, rejected);
}

#[test]
fn malformed_arrays_are_refused_as_they_arrive() {
    for body in ["{}", "[{} {}]", "[{\"a\":1}"] {
        assert!(
            fed(body.as_bytes(), true, &[1, 3], &[true]).is_err(),
            "{body}"
        );
    }
}

#[test]
fn rejection_lists_keep_the_first_lines_and_count_the_rest() {
    let mut rejected = Rejections::default();
    // Lines 1..=2500 in a scrambled order (parse and commit rejections interleave).
    for i in 0..2500u64 {
        let line = (i * 7919) % 2500 + 1;
        rejected.push(RejectedLine {
            line,
            field: None,
            reason: format!("bad {line}"),
        });
    }
    let (listed, unlisted) = rejected.into_parts();
    assert_eq!(unlisted, 1500);
    assert_eq!(listed.len(), MAX_LISTED_REJECTIONS);
    assert!(listed.iter().map(|r| r.line).eq(1..=1000));
    let json = serde_json::to_value(Report {
        rejected: listed,
        rejected_unlisted: unlisted,
        ..Report::default()
    })
    .unwrap();
    assert_eq!(json["rejected_unlisted"], 1500);
    let empty = serde_json::to_value(Report::default()).unwrap();
    assert!(empty.get("rejected_unlisted").is_none(), "{empty}");
}

#[test]
fn tokens_are_checked() {
    let mut h = HeaderMap::new();
    assert!(matches!(
        check_token(Some("secret-token"), &h),
        Err(HttpError::Unauthorized(m)) if m.starts_with("missing")
    ));
    h.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
    assert!(matches!(
        check_token(Some("secret-token"), &h),
        Err(HttpError::Unauthorized("wrong bearer token"))
    ));
    h.insert(
        header::AUTHORIZATION,
        "Bearer secret-token".parse().unwrap(),
    );
    assert!(check_token(Some("secret-token"), &h).is_ok());
    assert!(
        check_token(None, &h).is_err(),
        "no token configured: refused"
    );
}

#[test]
fn queries_are_strict() {
    assert_eq!(Query::parse(None).unwrap(), Query::default());
    let q = Query::parse(Some("mode=full_sync&partial=true")).unwrap();
    assert_eq!((q.mode, q.partial), (ApplyMode::FullSync, true));
    let q = Query::parse(Some("confirm_removal=200&mode=full_sync")).unwrap();
    assert_eq!(q.mode, ApplyMode::FullSyncConfirmed { removal: 200 });
    assert!(Query::parse(Some("confirm_removal=200")).is_err());
    assert!(Query::parse(Some("mode=upsert&confirm_removal=1")).is_err());
    assert!(Query::parse(Some("mode=full_sync&confirm_removal=-1")).is_err());
    assert!(Query::parse(Some("mode=replace")).is_err());
    assert!(Query::parse(Some("parital=true")).is_err());
}

#[test]
fn content_types() {
    let mut h = HeaderMap::new();
    assert!(!is_array(&h).unwrap());
    h.insert(
        header::CONTENT_TYPE,
        "application/json; charset=utf-8".parse().unwrap(),
    );
    assert!(is_array(&h).unwrap());
    h.insert(
        header::CONTENT_TYPE,
        "application/x-ndjson".parse().unwrap(),
    );
    assert!(!is_array(&h).unwrap());
    h.insert(header::CONTENT_TYPE, "application/xml".parse().unwrap());
    assert!(is_array(&h).is_err());
}
