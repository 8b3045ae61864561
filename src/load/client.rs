//! A minimal HTTP/1.1 client on hyper's connection API: one keep-alive connection per host,
//! as one importer holds it. Only `http://` (a TLS-terminating CDN is tested through its
//! plain-HTTP listener or a local proxy).

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, HOST};
use http::{Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

/// A request that could not be made or answered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}: not an http:// URL")]
    Url(String),
    #[error("{0}: not a loopback address (pass --allow-remote to load a remote host)")]
    Remote(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(#[from] http::Error),
}

impl ClientError {
    /// A short label for the report's error table.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Url(_) => "bad_url",
            ClientError::Remote(_) => "remote_refused",
            ClientError::Connect { .. } => "connect",
            ClientError::Http(e) if e.is_timeout() => "timeout",
            ClientError::Http(_) => "http",
            ClientError::Request(_) => "bad_request",
        }
    }
}

/// Is `host` (from a URL) a loopback address?
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Keep-alive connections by `host:port`.
pub struct Client {
    conns: HashMap<String, SendRequest<Full<Bytes>>>,
    allow_remote: bool,
}

impl Client {
    pub fn new(allow_remote: bool) -> Client {
        Client {
            conns: HashMap::new(),
            allow_remote,
        }
    }

    /// Forget the connection to `uri`'s host (after abandoning a body half read).
    pub fn drop_connection(&mut self, uri: &Uri) {
        if let Some(a) = uri.authority() {
            self.conns.remove(&authority_key(a));
        }
    }

    /// Send one request; the caller reads (or drops) the body. A request on a kept-alive
    /// connection that the server closed meanwhile is retried once on a new connection.
    pub async fn send(
        &mut self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, ClientError> {
        if uri.scheme_str() != Some("http") {
            return Err(ClientError::Url(uri.to_string()));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::Url(uri.to_string()))?;
        if !self.allow_remote && !is_loopback(authority.host()) {
            return Err(ClientError::Remote(authority.host().to_string()));
        }
        let key = authority_key(authority);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let build = || -> Result<Request<Full<Bytes>>, ClientError> {
            let mut req = Request::builder().method(method.clone()).uri(path);
            if let Some(h) = req.headers_mut() {
                h.clone_from(headers);
                h.insert(
                    HOST,
                    HeaderValue::from_str(authority.as_str())
                        .map_err(|e| ClientError::Request(e.into()))?,
                );
            }
            Ok(req.body(Full::new(body.clone()))?)
        };
        let reused = match self.conns.get_mut(&key) {
            Some(sender) if !sender.is_closed() => sender.ready().await.is_ok(),
            _ => false,
        };
        if reused {
            if let Some(sender) = self.conns.get_mut(&key) {
                match sender.send_request(build()?).await {
                    Ok(resp) => return Ok(resp),
                    // The server closed the idle connection before reading the request:
                    // safe to retry on a fresh one.
                    Err(e) if e.is_canceled() || e.is_closed() || e.is_incomplete_message() => {}
                    Err(e) => {
                        self.conns.remove(&key);
                        return Err(e.into());
                    }
                }
            }
        }
        self.conns.remove(&key);
        let mut sender = connect(&key).await?;
        let resp = sender.send_request(build()?).await;
        match resp {
            Ok(resp) => {
                self.conns.insert(key, sender);
                Ok(resp)
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn authority_key(a: &http::uri::Authority) -> String {
    format!("{}:{}", a.host(), a.port_u16().unwrap_or(80))
}

async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>, ClientError> {
    let connect_err = |source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    };
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(connect_err)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the peer closes it.
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "127.3.2.1", "localhost", "[::1]", "::1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1", "example.com", "192.168.1.1", "[2001:db8::1]"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[tokio::test]
    async fn remote_and_https_targets_are_refused() {
        let mut c = Client::new(false);
        let h = HeaderMap::new();
        let uri: Uri = "http://192.0.2.1/x".parse().unwrap();
        let e = c
            .send(Method::GET, &uri, &h, Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "remote_refused");
        let uri: Uri = "https://127.0.0.1/x".parse().unwrap();
        let e = c
            .send(Method::GET, &uri, &h, Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "bad_url");
    }
}
