//! The scale-out settings (`docs/scale-out.md`): the object store a writer publishes to and
//! replicas follow, and this node's role.

use super::{invalid, ConfigError};

/// Flags of `iofd serve` for scale-out (flags and environment only).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ScaleArgs {
    /// Object store the writer publishes to and replicas follow: `s3://BUCKET/PREFIX`
    /// (credentials from the `AWS_*` environment variables).
    #[arg(long, env = "IOFD_STORE")]
    pub store: Option<String>,
    /// Endpoint of an S3-compatible store other than AWS (`http://127.0.0.1:9000`).
    #[arg(long, env = "IOFD_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Region of the bucket (default: `AWS_REGION`, else `us-east-1`).
    #[arg(long, env = "IOFD_S3_REGION")]
    pub s3_region: Option<String>,
    /// `writer` (default: ingests and publishes) or `replica` (follows the store).
    #[arg(long, env = "IOFD_ROLE")]
    pub role: Option<String>,
}

/// What this node does in a scale-out deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Writer,
    Replica,
}

/// An S3-compatible bucket and prefix, with how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreTarget {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl StoreTarget {
    /// The `s3://` URL it was given as.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The role and the store target of `args`, checked.
pub(super) fn scale_config(args: &ScaleArgs) -> Result<(Role, Option<StoreTarget>), ConfigError> {
    let role = match args.role.as_deref() {
        None | Some("writer") => Role::Writer,
        Some("replica") => Role::Replica,
        Some(other) => {
            return Err(invalid(
                "role",
                format!("{other:?} is not a role: `writer` or `replica`"),
            ))
        }
    };
    let Some(url) = &args.store else {
        if role == Role::Replica {
            return Err(invalid(
                "role",
                "a replica needs --store s3://BUCKET/PREFIX",
            ));
        }
        for (set, name) in [
            (&args.s3_endpoint, "s3_endpoint"),
            (&args.s3_region, "s3_region"),
        ] {
            if set.is_some() {
                return Err(invalid(
                    name,
                    "is only used with --store s3://BUCKET/PREFIX",
                ));
            }
        }
        return Ok((role, None));
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| invalid("store", format!("{url:?} is not an s3://BUCKET/PREFIX URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(invalid(
            "store",
            format!("{bucket:?} is not a bucket name (3 to 63 of a-z, 0-9, '-', '.')"),
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
        return Err(invalid("store", format!("{prefix:?} is not a key prefix")));
    }
    if let Some(endpoint) = &args.s3_endpoint {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || endpoint.parse::<http::Uri>().is_err()
        {
            return Err(invalid(
                "s3_endpoint",
                format!("{endpoint:?} is not an http:// or https:// URL"),
            ));
        }
    }
    Ok((
        role,
        Some(StoreTarget {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: args.s3_endpoint.clone(),
            region: args.s3_region.clone(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(store: Option<&str>, role: Option<&str>) -> ScaleArgs {
        ScaleArgs {
            store: store.map(str::to_string),
            role: role.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn store_urls_and_roles() {
        let (role, target) = scale_config(&args(Some("s3://feeds-1/eu/iofd/"), None)).unwrap();
        assert_eq!(role, Role::Writer);
        let target = target.unwrap();
        assert_eq!(
            (target.bucket.as_str(), target.prefix.as_str()),
            ("feeds-1", "eu/iofd")
        );
        assert_eq!(
            scale_config(&args(None, None)).unwrap(),
            (Role::Writer, None)
        );
        let (role, _) = scale_config(&args(Some("s3://feeds"), Some("replica"))).unwrap();
        assert_eq!(role, Role::Replica);
        for (bad, setting) in [
            (args(Some("gs://feeds/p"), None), "store"),
            (args(Some("s3://Feeds/p"), None), "store"),
            (args(Some("s3://feeds/a/../b"), None), "store"),
            (args(None, Some("replica")), "role"),
            (args(Some("s3://feeds"), Some("reader")), "role"),
        ] {
            let err = scale_config(&bad).unwrap_err().to_string();
            assert!(err.starts_with(setting), "{bad:?}: {err}");
        }
    }
}
