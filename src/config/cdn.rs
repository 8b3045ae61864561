//! The settings of the cache in front: the purge hook (where purge requests go, in which
//! shape, trusted how) and the keys and lifetime of signed profile URLs.

use std::path::PathBuf;

use std::time::Duration;

use super::{duration, invalid, ConfigError, FileConfig, LimitArgs};

/// The request shape of a purge: the API of the cache in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeStyle {
    /// `purge_method` (default POST) with the keys in a `Surrogate-Key` header and a JSON
    /// body `{"surrogate_keys": [...]}`.
    Generic,
    /// `BAN` with the keys in a `Surrogate-Key` header (`fixtures/varnish/iofd.vcl`).
    Varnish,
    /// Fastly's `POST /service/{id}/purge` with a `Surrogate-Key` header (up to 256 keys).
    Fastly,
    /// Cloudflare's `POST /zones/{id}/purge_cache` with `{"tags": [...]}` (up to 30 tags).
    Cloudflare,
}

impl PurgeStyle {
    fn parse(s: &str) -> Option<PurgeStyle> {
        Some(match s {
            "generic" => PurgeStyle::Generic,
            "varnish" => PurgeStyle::Varnish,
            "fastly" => PurgeStyle::Fastly,
            "cloudflare" => PurgeStyle::Cloudflare,
            _ => return None,
        })
    }
}

/// The purge hook: an HTTP(S) request naming surrogate keys, sent when files are superseded
/// or a partner's access changes.
#[derive(Debug, Clone)]
pub struct PurgeTarget {
    pub url: http::Uri,
    pub method: http::Method,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub style: PurgeStyle,
    /// A PEM CA bundle trusted for the endpoint besides the public roots, with its path
    /// (checked to parse at start-up).
    pub ca: Option<(PathBuf, Vec<u8>)>,
}

impl PurgeTarget {
    /// A generic target for `url` (tests and tools); fields can be set after.
    pub fn generic(url: http::Uri) -> PurgeTarget {
        PurgeTarget {
            url,
            method: http::Method::POST,
            headers: Vec::new(),
            style: PurgeStyle::Generic,
            ca: None,
        }
    }
}

pub(super) fn purge_target(
    args: &LimitArgs,
    file: &FileConfig,
) -> Result<Option<PurgeTarget>, ConfigError> {
    let Some(url) = args.purge_url.clone().or(file.purge_url.clone()) else {
        return Ok(None);
    };
    let url: http::Uri = url
        .parse()
        .map_err(|e| invalid("purge_url", format!("{url:?}: {e}")))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
        return Err(invalid(
            "purge_url",
            format!("{url} must be an http:// or https:// URL with a host"),
        ));
    }
    let style = match args.purge_style.clone().or(file.purge_style.clone()) {
        None => PurgeStyle::Generic,
        Some(s) => PurgeStyle::parse(&s).ok_or_else(|| {
            invalid(
                "purge_style",
                format!("{s:?} is not one of generic, varnish, fastly, cloudflare"),
            )
        })?,
    };
    let method = args.purge_method.clone().or(file.purge_method.clone());
    let method = match (style, method) {
        (PurgeStyle::Generic, m) => m.unwrap_or_else(|| "POST".to_string()),
        (PurgeStyle::Varnish, None) => "BAN".to_string(),
        (PurgeStyle::Fastly | PurgeStyle::Cloudflare, None) => "POST".to_string(),
        // The CDN's API fixes the method: another one would be refused there.
        (_, Some(m)) => {
            return Err(invalid(
                "purge_method",
                format!("{m:?}: only purge_style = \"generic\" takes a method"),
            ))
        }
    };
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| invalid("purge_method", format!("{method:?} is not an HTTP method")))?;
    let ca = match args.purge_ca_file.clone().or(file.purge_ca_file.clone()) {
        None => None,
        Some(path) => {
            let pem = std::fs::read(&path)
                .map_err(|e| invalid("purge_ca_file", format!("{}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| invalid("purge_ca_file", format!("{}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(invalid(
                    "purge_ca_file",
                    format!("{}: no PEM certificate in it", path.display()),
                ));
            }
            Some((path, pem))
        }
    };
    let mut headers = Vec::new();
    let from_args = args
        .purge_headers
        .iter()
        .filter(|h| !h.trim().is_empty())
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| invalid("purge_headers", format!("{h:?} is not `Name: value`")))
        });
    let from_file = file
        .purge_headers
        .iter()
        .map(|(n, v)| Ok((n.clone(), v.clone())));
    for pair in from_file.chain(from_args) {
        let (name, value) = pair?;
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid("purge_headers", format!("{name:?} is not a header name")))?;
        let value = http::HeaderValue::from_str(&value).map_err(|_| {
            invalid(
                "purge_headers",
                format!("the value of {name} is not a header value"),
            )
        })?;
        headers.push((name, value));
    }
    Ok(Some(PurgeTarget {
        url,
        method,
        headers,
        style,
        ca,
    }))
}

/// The signing keys and lifetime: keys checked for length and characters here, so a bad
/// one stops the start with its setting named.
pub(super) fn signing_config(
    file: &FileConfig,
) -> Result<crate::signing::SigningConfig, ConfigError> {
    for (setting, key) in [
        ("signing_key", &file.signing_key),
        ("signing_key_previous", &file.signing_key_previous),
    ] {
        if let Some(key) = key {
            crate::signing::check_key(key).map_err(|reason| invalid(setting, reason))?;
        }
    }
    if file.signing_key.is_none() && file.signing_key_previous.is_some() {
        return Err(invalid(
            "signing_key_previous",
            "needs signing_key (the key that replaced it)",
        ));
    }
    let lifetime = duration("signature_lifetime", file.signature_lifetime.clone(), "4h")?;
    if lifetime < Duration::from_secs(60) {
        return Err(invalid("signature_lifetime", "must be at least 1 minute"));
    }
    Ok(crate::signing::SigningConfig {
        key: file.signing_key.clone(),
        previous_key: file.signing_key_previous.clone(),
        lifetime,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Config, ServeArgs};

    #[test]
    fn the_packaged_example_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/iofd.toml");
        let c = Config::load(&ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.data_dir, Path::new("/var/lib/iofd"));
        assert_eq!(c.signing.lifetime, Duration::from_secs(4 * 3600));
        assert!(!c.demo && !c.redirect_to_profile);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("iofd.toml");
        for (toml, setting) in [
            ("signing_key = \"short\"", "signing_key"),
            (
                "signing_key = \"has a space 0123456789abcdef0123456\"",
                "signing_key",
            ),
            (
                "signing_key_previous = \"0123456789abcdef0123456789abcdef\"",
                "signing_key_previous",
            ),
            ("signature_lifetime = \"10s\"", "signature_lifetime"),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = Config::load(&ServeArgs {
                config: Some(file.clone()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.to_string().starts_with(setting), "{toml}: {err}");
        }
    }
}
