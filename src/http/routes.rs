//! URL forms that reach a partner's file. Both map to the same [`FeedRequest`]:
//!
//! - `/feeds/{partner}/{token}/{shop}/{file}`
//! - `/edi/export-offer.php?client={partner}&token={token}&shop={shop}&type={kind}&format=xml&iof_3_0`
//!   (IdoSell's form, so importers configured with IdoSell-style URLs work unchanged).
//!
//! File names come from a fixed list; nothing in a URL ever becomes a filesystem path.

/// A request for one of a partner's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRequest {
    pub partner: String,
    pub token: String,
    pub shop: u32,
    /// The file, normalized to its path-form name (`full.xml`, `light.xml.gz`, `full.csv`).
    pub file: FileRef,
}

/// Which file, before the partner's file type (plain or gzip) is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRef {
    /// A name from the path form, exactly as requested.
    Named(String),
    /// A `type=` from the IdoSell form (`full`, `light`, `gateway`, ...) and its `format`;
    /// the partner's file type decides between `.xml` and `.xml.gz`.
    Kind { kind: String, csv: bool },
}

/// Every file kind a partner can fetch, as named in the gateway and in `type=`.
pub(crate) const KINDS: &[&str] = &[
    "gateway",
    "full",
    "light",
    "categories",
    "sizes",
    "producers",
    "units",
    "parameters",
    "stocks",
    "series",
    "warranties",
];

/// Is `name` a file iofd can serve (by shape; whether the partner has it is decided later)?
pub fn is_file_name(name: &str) -> bool {
    let stem = name
        .strip_suffix(".xml.gz")
        .or_else(|| name.strip_suffix(".xml"))
        .or_else(|| name.strip_suffix(".csv"));
    match stem {
        Some(stem) => KINDS.contains(&stem) || is_change_stem(stem),
        None => false,
    }
}

/// `full_change2026-11-22T10-30-00`
fn is_change_stem(stem: &str) -> bool {
    let Some(ts) = stem.strip_prefix("full_change") else {
        return false;
    };
    let b = ts.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 | 16 => *c == b'-',
            10 => *c == b'T',
            _ => c.is_ascii_digit(),
        })
}

fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        && s != "."
        && s != ".."
}

/// Parse a request target; `None` for anything that is not a feed URL.
pub fn parse(path: &str, query: Option<&str>) -> Option<FeedRequest> {
    if let Some(rest) = path.strip_prefix("/feeds/") {
        let mut parts = rest.split('/');
        let (partner, token, shop, file) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || !segment_ok(partner)
            || !segment_ok(token)
            || !is_file_name(file)
        {
            return None;
        }
        let shop = parse_shop(shop)?;
        return Some(FeedRequest {
            partner: partner.into(),
            token: token.into(),
            shop,
            file: FileRef::Named(file.into()),
        });
    }
    if path == "/edi/export-offer.php" {
        let (mut client, mut token, mut shop, mut kind, mut format) =
            (None, None, None, None, None);
        for pair in query?.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "client" => client = Some(v),
                "token" => token = Some(v),
                "shop" => shop = Some(v),
                "type" => kind = Some(v),
                "format" => format = Some(v),
                _ => {} // language=, iof_3_0 and unknown flags do not select a file
            }
        }
        let (partner, token, kind) = (client?, token?, kind?);
        if !segment_ok(partner)
            || !segment_ok(token)
            || !(KINDS.contains(&kind) || is_change_stem(kind))
        {
            return None;
        }
        let csv = match format.unwrap_or("xml") {
            "xml" => false,
            "csv" => true,
            _ => return None,
        };
        let shop = parse_shop(shop.unwrap_or("1"))?;
        return Some(FeedRequest {
            partner: partner.into(),
            token: token.into(),
            shop,
            file: FileRef::Kind {
                kind: kind.into(),
                csv,
            },
        });
    }
    None
}

fn parse_shop(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_form() {
        let r = parse("/feeds/acme/tok-123/1/full.xml", None).unwrap();
        assert_eq!(
            (r.partner.as_str(), r.token.as_str(), r.shop),
            ("acme", "tok-123", 1)
        );
        assert_eq!(r.file, FileRef::Named("full.xml".into()));
        assert!(parse("/feeds/acme/tok/2/light.xml.gz", None).is_some());
        assert!(parse("/feeds/acme/tok/2/full_change2026-11-22T10-30-00.xml", None).is_some());
        assert!(parse("/feeds/acme/tok/2/full.csv", None).is_some());
    }

    #[test]
    fn anything_else_is_not_a_feed() {
        for bad in [
            "/feeds/acme/tok/1/../../etc/passwd",
            "/feeds/acme/tok/1/%2e%2e",
            "/feeds/../tok/1/full.xml",
            "/feeds/acme/tok/1/full.xml/extra",
            "/feeds/acme/tok/0/full.xml",
            "/feeds/acme/tok/x/full.xml",
            "/feeds/acme/tok/1/secret.txt",
            "/feeds/acme/tok/1/full_change2026-11-22.xml",
            "/feeds/acme//1/full.xml",
            "/feeds/acme/tok/1",
            "/",
        ] {
            assert_eq!(parse(bad, None), None, "{bad}");
        }
    }

    #[test]
    fn idosell_form_maps_to_the_same_request() {
        let q = "client=acme&language=pol&token=tok-123&shop=1&type=full&format=xml&iof_3_0";
        let r = parse("/edi/export-offer.php", Some(q)).unwrap();
        assert_eq!(
            (r.partner.as_str(), r.token.as_str(), r.shop),
            ("acme", "tok-123", 1)
        );
        assert_eq!(
            r.file,
            FileRef::Kind {
                kind: "full".into(),
                csv: false
            }
        );
        let q = "client=acme&token=t&shop=1&type=full_change2026-11-22T10-30-00&format=xml&iof_3_0";
        assert!(parse("/edi/export-offer.php", Some(q)).is_some());
        assert_eq!(
            parse(
                "/edi/export-offer.php",
                Some("client=acme&token=t&type=nope")
            ),
            None
        );
        assert_eq!(parse("/edi/export-offer.php", None), None);
    }
}
