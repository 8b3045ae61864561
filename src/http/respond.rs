//! A file response: validators, preconditions, ranges and cache headers, decided by the pure
//! rules and put on the wire here.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::body::{self, Body, Revocable};
use super::rules::{self, Conditions, Precondition, RangeDecision, Validators};
use super::HttpError;
use crate::artifacts::Artifact;

/// How long caches may keep a file, by the gateway node it is listed under.
pub fn cache_control(kind: &str) -> &'static str {
    match kind {
        // Change-file URLs name one immutable file.
        k if k.starts_with("full_change") => "public, max-age=31536000, immutable",
        // Freshness matters most here: prices and stock.
        "gateway" | "light" => {
            "public, max-age=30, stale-while-revalidate=30, stale-if-error=86400"
        }
        "full" => "public, max-age=300, stale-while-revalidate=300, stale-if-error=86400",
        _ => "public, max-age=3600, stale-while-revalidate=600, stale-if-error=86400",
    }
}

/// `Last-Modified` for `t`. Most responses of a moment share a few times (a generation's),
/// so each thread keeps the last one formatted.
fn http_date(t: std::time::SystemTime) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(std::time::SystemTime, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((at, value)) if *at == t => value.clone(),
        _ => {
            let value = HeaderValue::from_str(&httpdate::fmt_http_date(t))
                .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
            *last = Some((t, value.clone()));
            value
        }
    })
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The representation to send: the gzip one when the artifact has it and the client prefers
/// it. Validators, preconditions and ranges all apply to the chosen representation.
pub fn representation<'a>(artifact: &'a Artifact, headers: &HeaderMap) -> &'a Artifact {
    match &artifact.gzip {
        Some(gz) if rules::prefers_gzip(header(headers, header::ACCEPT_ENCODING)) => gz,
        _ => artifact,
    }
}

/// Answer a GET or HEAD for `artifact`, in the representation the client prefers. A large
/// body (mapped, in pieces, or read from disk) stops when `revocable`'s grant is revoked;
/// bodies held in memory are small and finish.
pub async fn file(
    method: &Method,
    headers: &HeaderMap,
    artifact: &Artifact,
    surrogate_key: String,
    revocable: Option<Revocable>,
) -> Result<Response<Body>, HttpError> {
    // The same keys as Cloudflare reads them (comma-separated) for purge by tag. Both header
    // values own their strings: nothing is copied again.
    let cache_tag = surrogate_key.replace(' ', ",");
    let surrogate_key = HeaderValue::from_maybe_shared(bytes::Bytes::from(surrogate_key))
        .map_err(|e| HttpError::internal("a surrogate key", e))?;
    let cache_tag = HeaderValue::from_maybe_shared(bytes::Bytes::from(cache_tag))
        .map_err(|e| HttpError::internal("a surrogate key", e))?;
    let artifact = representation(artifact, headers);
    let validators = Validators {
        etag: &artifact.etag,
        last_modified: artifact.modified,
    };
    let conditions = Conditions {
        if_match: header(headers, header::IF_MATCH),
        if_none_match: header(headers, header::IF_NONE_MATCH),
        if_modified_since: header(headers, header::IF_MODIFIED_SINCE),
        if_unmodified_since: header(headers, header::IF_UNMODIFIED_SINCE),
    };
    let mut builder = Response::builder()
        .header(header::ETAG, &artifact.etag)
        .header(header::LAST_MODIFIED, http_date(artifact.modified))
        .header(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control(&artifact.kind)),
        )
        .header(header::VARY, HeaderValue::from_static("Accept-Encoding"))
        .header("Surrogate-Key", surrogate_key)
        .header("Cache-Tag", cache_tag);
    match rules::evaluate(&conditions, &validators) {
        Precondition::NotModified => {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(body::empty())
                .map_err(|e| HttpError::internal("building a response", e));
        }
        Precondition::Failed => {
            return builder
                .status(StatusCode::PRECONDITION_FAILED)
                .header(header::CONTENT_LENGTH, 0)
                .body(body::empty())
                .map_err(|e| HttpError::internal("building a response", e));
        }
        Precondition::Proceed => {}
    }
    builder = builder
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static(artifact.content_type),
        )
        .header(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(encoding) = artifact.content_encoding {
        builder = builder.header(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    let len = artifact.len;
    let (status, start, count) = match rules::decide_range(
        header(headers, header::RANGE),
        header(headers, header::IF_RANGE),
        len,
        &validators,
    ) {
        RangeDecision::Full => (StatusCode::OK, 0, len),
        RangeDecision::Partial { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeDecision::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_LENGTH, 0)
                .body(body::empty())
                .map_err(|e| HttpError::internal("building a response", e));
        }
    };
    builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, HeaderValue::from(count));
    let body = if *method == Method::HEAD || count == 0 {
        body::empty()
    } else if let Some(bytes) = &artifact.memory {
        body::full(bytes.slice(start as usize..(start + count) as usize))
    } else if let Some(mapped) = &artifact.mapped {
        body::mapped_range(mapped, start, count, revocable)
    } else if let Some(pieces) = &artifact.pieces {
        body::pieces_range(pieces.clone(), start, count, revocable)
    } else {
        body::file_range(&artifact.path, start, count, revocable)
            .await
            .map_err(|e| HttpError::internal(artifact.path.display().to_string(), e))?
    };
    builder
        .body(body)
        .map_err(|e| HttpError::internal("building a response", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_follows_the_time_asked_for() {
        let a = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let b = a + std::time::Duration::from_secs(1);
        assert_eq!(http_date(a), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(a), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(b), "Tue, 14 Nov 2023 22:13:21 GMT");
        assert_eq!(http_date(a), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    /// A plain file whose gzip form is not written yet (see `Artifacts::publish_identity`).
    fn identity_only(body: &'static [u8]) -> Artifact {
        Artifact {
            name: "full.xml".into(),
            kind: "full".into(),
            path: std::path::PathBuf::new(),
            len: body.len() as u64,
            md5: String::new(),
            etag: "\"plain\"".into(),
            modified: std::time::SystemTime::UNIX_EPOCH,
            changed: jiff::civil::date(2026, 1, 1).at(0, 0, 0, 0),
            content_type: "application/xml; charset=utf-8",
            content_encoding: None,
            memory: Some(bytes::Bytes::from_static(body)),
            mapped: None,
            pieces: None,
            gzip: None,
        }
    }

    #[tokio::test]
    async fn a_gzip_request_before_the_gzip_form_exists_gets_identity_labelled_so() {
        let artifact = identity_only(b"<offer/>");
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let r = file(&Method::GET, &headers, &artifact, "k".into(), None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
        assert_eq!(r.headers()[header::ETAG], "\"plain\"");
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"<offer/>");
    }
}
