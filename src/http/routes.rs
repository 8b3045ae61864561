//! URL forms that reach a partner's file. Both map to the same [`FeedRequest`]:
//!
//! - `/feeds/{partner}/{token}/{shop}/{file}`
//! - `/edi/export-offer.php?client={partner}&token={token}&shop={shop}&type={kind}&format=xml&iof_3_0`
//!   (IdoSell's form, so importers configured with IdoSell-style URLs work unchanged).
//!
//! Both take `language=` (the path form as a query): one of the partner's languages becomes
//! the offer's. Partner ids may hold `.` and `@` (IdoSell's `client=` is often an e-mail
//! login), literally or percent-encoded (`%40`).
//!
//! Files are also served profile-addressed, the partner's authority in a signed query (see
//! [`crate::signing`]): `/p/{key}/{file}?partner={id}&expires={unix}&sig={hex}` ([`SignedRequest`]).
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
    /// `language=`: which of the partner's languages is the offer's (`None`: its first).
    pub language: Option<String>,
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
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@'))
        && s != "."
        && s != ".."
}

/// `%XX` escapes decoded (and `+` as a space in a query); `None` for a malformed escape or
/// bytes that are not UTF-8. The result is still checked by [`segment_ok`].
fn decode(s: &str, query: bool) -> Option<String> {
    if !s.contains(['%', '+']) {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if query => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A `language=` value: three lowercase letters, as partners' languages are.
fn language(v: &str) -> Option<String> {
    (v.len() == 3 && v.bytes().all(|b| b.is_ascii_lowercase())).then(|| v.to_string())
}

/// The `language=` of a path-form query; `Err` when it is given but malformed.
fn path_language(query: Option<&str>) -> Result<Option<String>, ()> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix("language=") {
            found = Some(language(&decode(v, true).ok_or(())?).ok_or(())?);
        }
    }
    Ok(found)
}

/// Parse a request target; `None` for anything that is not a feed URL.
pub fn parse(path: &str, query: Option<&str>) -> Option<FeedRequest> {
    if let Some(rest) = path.strip_prefix("/feeds/") {
        let mut parts = rest.split('/');
        let (partner, token, shop, file) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let (partner, token) = (decode(partner, false)?, decode(token, false)?);
        if parts.next().is_some()
            || !segment_ok(&partner)
            || !segment_ok(&token)
            || !is_file_name(file)
        {
            return None;
        }
        let shop = parse_shop(shop)?;
        return Some(FeedRequest {
            partner,
            token,
            shop,
            file: FileRef::Named(file.into()),
            language: path_language(query).ok()?,
        });
    }
    if path == "/edi/export-offer.php" {
        let (mut client, mut token, mut shop, mut kind, mut format, mut lang) =
            (None, None, None, None, None, None);
        for pair in query?.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "client" => client = Some(decode(v, true)?),
                "token" => token = Some(decode(v, true)?),
                "shop" => shop = Some(v),
                "type" => kind = Some(v),
                "format" => format = Some(v),
                "language" => lang = Some(language(&decode(v, true)?)?),
                _ => {} // iof_3_0 and unknown flags do not select a file
            }
        }
        let (partner, token, kind) = (client?, token?, kind?);
        if !segment_ok(&partner)
            || !segment_ok(&token)
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
            partner,
            token,
            shop,
            file: FileRef::Kind {
                kind: kind.into(),
                csv,
            },
            language: lang,
        });
    }
    None
}

/// A request for a profile-addressed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The path as requested (`/p/{key}/{file}`): what was signed.
    pub path: String,
    /// The key of the settings the file shows (`artifacts::gateway::path_key`).
    pub key: String,
    /// A file name of the path form (never the gateway: it is per partner).
    pub file: String,
    pub partner: String,
    pub expires: i64,
    pub sig: String,
    /// The generation the link was made from (`g=`, not signed): a replica behind it waits.
    pub generation: Option<u64>,
}

/// Parse a profile-addressed request target; `None` when it is not one (404). Whether the
/// signature holds is checked by the handler.
pub fn parse_signed(path: &str, query: Option<&str>) -> Option<SignedRequest> {
    let rest = path.strip_prefix("/p/")?;
    let (key, file) = rest.split_once('/')?;
    let key_ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    if !key_ok || !is_file_name(file) || file.starts_with("gateway.") {
        return None;
    }
    let (mut partner, mut expires, mut sig, mut generation) = (None, None, None, None);
    for pair in query?.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "partner" => partner = Some(decode(v, true)?),
            "expires" => expires = Some(v),
            "sig" => sig = Some(v),
            "g" => {
                let ok = !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit());
                generation = Some(v.parse::<u64>().ok().filter(|_| ok)?);
            }
            _ => {} // not signed, so it selects nothing
        }
    }
    let (partner, expires, sig) = (partner?, expires?, sig?);
    let expires_ok =
        !expires.is_empty() && expires.len() <= 12 && expires.bytes().all(|b| b.is_ascii_digit());
    let sig_ok = sig.len() == 64
        && sig
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !segment_ok(&partner) || !expires_ok || !sig_ok {
        return None;
    }
    Some(SignedRequest {
        path: path.to_string(),
        key: key.to_string(),
        file: file.to_string(),
        partner,
        expires: expires.parse().ok()?,
        sig: sig.to_string(),
        generation,
    })
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

    #[test]
    fn signed_form() {
        let sig = "0123456789abcdef".repeat(4);
        let q = format!("partner=jan%40sklep.example&expires=1800000000&sig={sig}");
        let r = parse_signed("/p/0123456789abcdef/full.xml.gz", Some(&q)).unwrap();
        assert_eq!(r.path, "/p/0123456789abcdef/full.xml.gz");
        assert_eq!(r.key, "0123456789abcdef");
        assert_eq!(r.file, "full.xml.gz");
        assert_eq!(r.partner, "jan@sklep.example");
        assert_eq!(r.expires, 1_800_000_000);
        let q = format!("partner=a&expires=1&sig={sig}");
        for (path, query) in [
            ("/p/k/gateway.xml", q.as_str()),
            ("/p/K/full.xml", q.as_str()),
            ("/p//full.xml", q.as_str()),
            ("/p/k/../full.xml", q.as_str()),
            ("/p/k/secret.txt", q.as_str()),
            ("/p/k/full.xml", "partner=a&expires=1"),
            ("/p/k/full.xml", "partner=a&expires=-1&sig=00"),
            ("/p/k/full.xml", "partner=..&expires=1&sig=00"),
        ] {
            assert_eq!(parse_signed(path, Some(query)), None, "{path}?{query}");
        }
        assert_eq!(
            parse_signed("/p/k/full.xml", Some(&q)).unwrap().generation,
            None
        );
        assert_eq!(parse_signed("/p/k/full.xml", None), None);
        // The generation a gateway's link names, in the order gateways write it.
        let q = format!("partner=a&expires=1&g=42&sig={sig}");
        assert_eq!(
            parse_signed("/p/k/full.xml", Some(&q)).unwrap().generation,
            Some(42)
        );
        for g in ["", "x", "-1", "99999999999999999999999"] {
            let q = format!("partner=a&expires=1&g={g}&sig={sig}");
            assert_eq!(parse_signed("/p/k/full.xml", Some(&q)), None, "g={g}");
        }
    }

    #[test]
    fn language_and_e_mail_logins_in_both_forms() {
        let q = "client=jan.kowalski%40sklep.example&language=eng&token=tok-1&shop=2&type=light&format=xml&iof_3_0";
        let r = parse("/edi/export-offer.php", Some(q)).unwrap();
        assert_eq!(r.partner, "jan.kowalski@sklep.example");
        assert_eq!(r.language.as_deref(), Some("eng"));
        assert_eq!(r.shop, 2);
        let q = "client=jan.kowalski@sklep.example&token=tok-1&type=full";
        let r = parse("/edi/export-offer.php", Some(q)).unwrap();
        assert_eq!(r.partner, "jan.kowalski@sklep.example");
        assert_eq!(r.language, None);
        for path in [
            "/feeds/jan.kowalski@sklep.example/tok-1/1/full.xml",
            "/feeds/jan.kowalski%40sklep.example/tok-1/1/full.xml",
        ] {
            let r = parse(path, Some("language=pol")).unwrap();
            assert_eq!(r.partner, "jan.kowalski@sklep.example", "{path}");
            assert_eq!(r.language.as_deref(), Some("pol"));
        }
        // A malformed language or escape is not a feed URL (404), never a default language.
        for (path, query) in [
            ("/feeds/a/tok/1/full.xml", "language=English"),
            ("/feeds/a/tok/1/full.xml", "language=%zz"),
            ("/feeds/a%2/tok/1/full.xml", ""),
            ("/feeds/a%2Fb/tok/1/full.xml", ""),
            (
                "/edi/export-offer.php",
                "client=a&token=t&type=full&language=PL",
            ),
            ("/edi/export-offer.php", "client=a%ff&token=t&type=full"),
        ] {
            assert_eq!(parse(path, Some(query)), None, "{path}?{query}");
        }
    }
}
