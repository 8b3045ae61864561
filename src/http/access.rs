//! The end of a request: its access-log line and its metrics, written when the response body
//! is done (or dropped), so they carry the bytes actually handed to the network and the whole
//! duration, not only the time to the response head.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::Response;

use super::limits::ConnState;
use super::Body;
use crate::activity::Activity;
use crate::metrics::Metrics;

/// What the feed handler knows about a request, attached to its response as an extension.
#[derive(Clone, Debug)]
pub struct Entry {
    pub method: hyper::Method,
    /// The partner of the URL, for the log (tokens are never logged).
    pub partner: Option<String>,
    pub shop: u32,
    /// The file asked for (`full.xml`, or a kind from the IdoSell form).
    pub file: String,
    pub started: Instant,
}

/// The route label of a file name or kind: its kind from a fixed list.
pub fn route_label(file: &str) -> &'static str {
    let kind = crate::purge::kind_of(file);
    if kind.starts_with("full_change") {
        return "full_change";
    }
    super::routes::KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("other")
}

struct Done {
    metrics: Arc<Metrics>,
    entry: Option<Entry>,
    route: &'static str,
    /// Whether the entry's partner is a label: only for answers that imply the partner
    /// authenticated.
    labelled: bool,
    status: u16,
    encoding: &'static str,
    head: Duration,
    declared: Option<u64>,
    conn: Option<Arc<ConnState>>,
    activity: Option<Arc<Activity>>,
}

impl Done {
    fn partner_label(&self) -> Option<&str> {
        self.entry
            .as_ref()
            .and_then(|e| e.partner.as_deref())
            .filter(|_| self.labelled)
    }
}

/// A response body that counts what it hands to hyper and reports when it ends.
struct Tracked {
    inner: Body,
    sent: u64,
    finished: bool,
    done: Done,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => this.finished = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let complete = self.finished
            || self.inner.is_end_stream()
            || self.done.declared.is_some_and(|n| n == self.sent);
        let d = &self.done;
        d.metrics
            .body_sent(d.route, d.status, d.encoding, d.partner_label(), self.sent);
        if let Some(e) = &d.entry {
            tracing::info!(
                target: "access",
                method = %e.method,
                partner = e.partner.as_deref().unwrap_or("-"),
                shop = e.shop,
                file = %e.file,
                status = d.status,
                encoding = d.encoding,
                bytes = self.sent,
                complete,
                head_micros = d.head.as_micros() as u64,
                micros = e.started.elapsed().as_micros() as u64,
                "request"
            );
        }
        if let (Some(activity), Some(partner)) = (&d.activity, d.partner_label()) {
            activity.record(partner, d.route, d.status, self.sent);
        }
        if let Some(conn) = &d.conn {
            conn.end();
        }
    }
}

/// Record the response head of a feed request and wrap its body so the log line and byte
/// counts are written when it ends; `conn` learns then that the connection is idle.
/// The answer is also counted in the partner's `activity`.
pub fn track(
    metrics: &Arc<Metrics>,
    activity: Option<&Arc<Activity>>,
    response: Response<Body>,
    conn: Option<Arc<ConnState>>,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let entry = parts.extensions.remove::<Entry>();
    let status = parts.status.as_u16();
    let encoding = match parts.headers.get(hyper::header::CONTENT_ENCODING) {
        Some(v) if v == "gzip" => "gzip",
        _ => "identity",
    };
    let route = entry
        .as_ref()
        .map(|e| route_label(&e.file))
        .unwrap_or("other");
    // 404 and 405 are answered before (or regardless of) authentication: a partner label
    // there would be whatever id a stranger put in the URL.
    let head = entry
        .as_ref()
        .map(|e| e.started.elapsed())
        .unwrap_or_default();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let done = Done {
        metrics: metrics.clone(),
        entry,
        route,
        labelled: status != 404 && status != 405,
        status,
        encoding,
        head,
        declared,
        conn,
        activity: activity.cloned(),
    };
    metrics.request(route, status, encoding, done.partner_label(), head);
    let tracked = Tracked {
        inner: body,
        sent: 0,
        finished: false,
        done,
    };
    Response::from_parts(parts, tracked.boxed_unsync())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_come_from_a_fixed_list() {
        assert_eq!(route_label("full.xml.gz"), "full");
        assert_eq!(route_label("gateway"), "gateway");
        assert_eq!(
            route_label("full_change2026-11-22T10-30-00.xml"),
            "full_change"
        );
        assert_eq!(route_label("light.csv"), "light");
        assert_eq!(route_label("anything-a-stranger-sends"), "other");
    }

    #[tokio::test]
    async fn bytes_are_counted_and_the_connection_marked_idle_at_the_end() {
        let metrics = Arc::new(Metrics::new());
        let conn = Arc::new(ConnState::new());
        conn.begin();
        let mut response = Response::new(super::super::body::full("0123456789"));
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_LENGTH, 10.into());
        response.extensions_mut().insert(Entry {
            method: hyper::Method::GET,
            partner: Some("acme".into()),
            shop: 1,
            file: "light.xml".into(),
            started: Instant::now(),
        });
        let response = track(&metrics, None, response, Some(conn.clone()));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"0123456789");
        let text = metrics.encode(crate::metrics::StateSample {
            snapshot_generation: 0,
            snapshot_published: std::time::SystemTime::now(),
            artifacts_generation: 0,
            artifact_files: 0,
        });
        assert!(
            text.contains("iofd_partner_response_body_bytes_total{partner=\"acme\"} 10"),
            "{text}"
        );
        assert!(text.contains(
            "iofd_http_requests_total{route=\"light\",status=\"200\",encoding=\"identity\"} 1"
        ));
        assert!(conn.is_idle());
    }
}
