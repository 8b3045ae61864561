//! Feed URLs, both forms: a request target either is no feed, or names a partner, token and
//! shop that are safe as they are, and a file from the fixed list; and writing the request
//! back as a URL parses to the same request.
#![no_main]

use iofd::http::routes::{is_file_name, parse, FileRef};
use libfuzzer_sys::fuzz_target;

fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            // `@` and `.`: partner ids may be e-mail logins, as IdoSell's `client=` often is.
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@'))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As the server sees it: the path, and the query after the first `?`.
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    let Some(req) = parse(path, query) else {
        return;
    };
    assert!(safe_segment(&req.partner), "{req:?}");
    assert!(safe_segment(&req.token), "{req:?}");
    assert!(req.shop > 0, "{req:?}");
    if let Some(language) = &req.language {
        assert!(
            language.len() == 3 && language.bytes().all(|b| b.is_ascii_lowercase()),
            "{req:?}"
        );
    }
    let language = req.language.as_ref().map(|l| format!("language={l}"));
    let again = match &req.file {
        FileRef::Named(name) => {
            assert!(is_file_name(name), "{req:?}");
            assert!(!name.contains('/'), "{req:?}");
            parse(
                &format!("/feeds/{}/{}/{}/{name}", req.partner, req.token, req.shop),
                language.as_deref(),
            )
        }
        FileRef::Kind { kind, csv } => {
            assert!(!kind.contains(['/', '&', '=']), "{req:?}");
            let format = if *csv { "csv" } else { "xml" };
            let mut q = format!(
                "client={}&token={}&shop={}&type={kind}&format={format}&iof_3_0",
                req.partner, req.token, req.shop
            );
            if let Some(language) = &language {
                q = format!("{q}&{language}");
            }
            parse("/edi/export-offer.php", Some(&q))
        }
    };
    assert_eq!(again.as_ref(), Some(&req), "{text}");
});
