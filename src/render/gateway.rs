//! The IOF 3.0 gateway (`<provider_description>`): supplier metadata, offer validity and the
//! URL, MD5 and change time of every other file of one shop's offer.
//!
//! gateway.xsd limits `long_name` and `short_name` to `[a-zA-Z0-9_ -]`: Polish (and other
//! common Latin) diacritics are transliterated, other characters dropped, and in `short_name`
//! spaces become `_` (the documentation forbids whitespace there). A name left empty falls
//! back to the other one, then to `shop<id>`. Every `<meta>` child is always present; an
//! absent logo gives an empty `<showcase_image/>`.

use std::io::{self, Write};

use jiff::civil::DateTime;

use super::xml::{with_scratch, XmlBuf};
use crate::catalog::ArchivedShop;

/// One file the gateway points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayFile {
    /// Absolute URL of the file.
    pub url: String,
    /// MD5 hex of the exact bytes served at `url`. gateway.xsd requires it on every file but
    /// light; `None` leaves the attribute out.
    pub md5: Option<String>,
    /// When the file last changed.
    pub changed: Option<DateTime>,
}

/// Everything in one shop's gateway.
#[derive(Clone)]
pub struct Gateway<'a> {
    /// The shop whose offer this is; its names, contact and address fill `<meta>`.
    pub shop: &'a ArchivedShop,
    /// When the gateway was generated (root `generated` and `meta/time/offer@created`).
    pub generated: DateTime,
    /// Until when the offer is valid (`meta/time/offer@expires`; created + 7 days by design).
    pub expires: DateTime,
    /// The base full.xml.
    pub full: GatewayFile,
    /// Change files, newest first.
    pub changes: Vec<GatewayFile>,
    /// light.xml (IdoSell lists it without hash or changed time).
    pub light: GatewayFile,
    /// categories.xml.
    pub categories: GatewayFile,
    /// sizes.xml.
    pub sizes: GatewayFile,
    /// Optional reference files: ("producers"|"units"|"parameters"|"stocks"|"series"|"warranties", file)
    pub others: Vec<(&'static str, GatewayFile)>,
}

/// A gateway that cannot be written as a valid document.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// `others` names a kind gateway.xsd has no element for.
    #[error("{0:?} is not a file kind the gateway lists")]
    UnknownKind(&'static str),
    /// `others` names a kind twice; the schema allows each once.
    #[error("file kind {0:?} is listed twice")]
    DuplicateKind(&'static str),
}

impl From<GatewayError> for io::Error {
    fn from(e: GatewayError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// The optional file kinds gateway.xsd allows, each at most once.
const OPTIONAL_KINDS: [&str; 7] = [
    "producers",
    "units",
    "parameters",
    "stocks",
    "series",
    "warranties",
    "preset",
];

/// Write the gateway. Fails (`InvalidInput`, wrapping [`GatewayError`]) when `others` names
/// an unknown or repeated kind, before anything is written.
pub fn write_gateway(w: &mut impl Write, g: &Gateway) -> io::Result<()> {
    for (i, (kind, _)) in g.others.iter().enumerate() {
        if !OPTIONAL_KINDS.contains(kind) {
            return Err(GatewayError::UnknownKind(kind).into());
        }
        if g.others[..i].iter().any(|(k, _)| k == kind) {
            return Err(GatewayError::DuplicateKind(kind).into());
        }
    }
    with_scratch(|o| {
        render(o, g);
        w.write_all(o)
    })
}

fn render(o: &mut Vec<u8>, g: &Gateway) {
    let shop = g.shop;
    o.raw(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<provider_description file_format=\"IOF\" version=\"3.0\"");
    o.attr(b"generated_by", "iofd");
    o.attr_datetime(b"generated", g.generated);
    o.raw(b">\n\t<meta>\n");
    let id = shop.id.to_native();
    let short = [shop.short_name.as_str(), shop.long_name.as_str()]
        .into_iter()
        .map(|n| meta_name(n, '_'))
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| format!("shop{id}"));
    let long = Some(meta_name(shop.long_name.as_str(), ' '))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| short.clone());
    text_element(o, b"long_name", &long);
    text_element(o, b"short_name", &short);
    o.raw(b"\t\t<showcase_image");
    if let Some(url) = shop.logo_url.as_ref() {
        o.attr(b"url", url.as_str());
    }
    o.raw(b"/>\n");
    text_element(o, b"email", shop.email.as_str());
    text_element(o, b"tel", shop.tel.as_str());
    text_element(o, b"fax", shop.fax.as_str());
    text_element(o, b"www", shop.www.as_str());
    let a = &shop.address;
    o.raw(b"\t\t<address>\n");
    for (tag, value) in [
        (&b"street"[..], &a.street),
        (b"zipcode", &a.zipcode),
        (b"city", &a.city),
        (b"country", &a.country),
        (b"province", &a.province),
    ] {
        o.raw(b"\t");
        text_element(o, tag, value.as_str());
    }
    o.raw(b"\t\t</address>\n\t\t<time>\n\t\t\t<offer");
    o.attr_datetime(b"created", g.generated);
    o.raw(b"/>\n\t\t\t<offer");
    o.attr_datetime(b"expires", g.expires);
    o.raw(b"/>\n\t\t</time>\n\t</meta>\n");

    // `<changes>` is always written, empty when there are none, as IdoSell does: the XSD
    // makes it optional, but clients built on IdoSell's gateways require it.
    file_open(o, b"\t<full", &g.full);
    if g.changes.is_empty() {
        o.raw(b">\n\t\t<changes/>\n\t</full>\n");
    } else {
        o.raw(b">\n\t\t<changes>\n");
        for change in &g.changes {
            file_open(o, b"\t\t\t<change", change);
            o.raw(b"/>\n");
        }
        o.raw(b"\t\t</changes>\n\t</full>\n");
    }
    for (tag, file) in [
        (&b"light"[..], &g.light),
        (b"categories", &g.categories),
        (b"sizes", &g.sizes),
    ] {
        o.raw(b"\t<");
        o.raw(tag);
        file_attrs(o, file);
        o.raw(b"/>\n");
    }
    for (kind, file) in &g.others {
        o.raw(b"\t<");
        o.raw(kind.as_bytes());
        file_attrs(o, file);
        o.raw(b"/>\n");
    }
    o.raw(b"</provider_description>\n");
}

fn text_element(o: &mut Vec<u8>, tag: &[u8], value: &str) {
    o.raw(b"\t\t<");
    o.raw(tag);
    o.raw(b">");
    o.cdata(value);
    o.raw(b"</");
    o.raw(tag);
    o.raw(b">\n");
}

fn file_open(o: &mut Vec<u8>, open: &[u8], file: &GatewayFile) {
    o.raw(open);
    file_attrs(o, file);
}

fn file_attrs(o: &mut Vec<u8>, file: &GatewayFile) {
    o.attr(b"url", &file.url);
    if let Some(md5) = &file.md5 {
        o.attr(b"hash", md5);
    }
    if let Some(changed) = file.changed {
        o.attr_datetime(b"changed", changed);
    }
}

/// A name as gateway.xsd allows it (`[a-zA-Z0-9_ \-]+`): Polish (and common Latin) letters
/// with diacritics transliterated, whitespace runs turned into `space`, anything else dropped,
/// the ends trimmed.
fn meta_name(s: &str, space: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        let mapped: &str = match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => {
                if pending_space {
                    out.push(space);
                    pending_space = false;
                }
                out.push(c);
                continue;
            }
            other => transliterate(other),
        };
        if mapped.is_empty() {
            continue;
        }
        if pending_space {
            out.push(space);
            pending_space = false;
        }
        out.push_str(mapped);
    }
    out
}

/// ASCII for a Latin letter with diacritics; empty for anything else.
fn transliterate(c: char) -> &'static str {
    match c {
        'ą' | 'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'Ą' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "A",
        'ć' | 'č' | 'ç' => "c",
        'Ć' | 'Č' | 'Ç' => "C",
        'ď' => "d",
        'Ď' => "D",
        'ę' | 'è' | 'é' | 'ê' | 'ë' | 'ě' => "e",
        'Ę' | 'È' | 'É' | 'Ê' | 'Ë' | 'Ě' => "E",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' => "I",
        'ł' | 'ľ' | 'ĺ' => "l",
        'Ł' | 'Ľ' | 'Ĺ' => "L",
        'ń' | 'ñ' | 'ň' => "n",
        'Ń' | 'Ñ' | 'Ň' => "N",
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'ő' | 'ø' => "o",
        'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' | 'Ő' | 'Ø' => "O",
        'ř' | 'ŕ' => "r",
        'Ř' | 'Ŕ' => "R",
        'ś' | 'š' | 'ş' => "s",
        'Ś' | 'Š' | 'Ş' => "S",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'Ť' | 'Ţ' => "T",
        'ù' | 'ú' | 'û' | 'ü' | 'ů' | 'ű' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ů' | 'Ű' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' => "Y",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_names_fit_the_schema_pattern() {
        assert_eq!(
            meta_name("Hurtownia Zażółć Gęślą Jaźń", ' '),
            "Hurtownia Zazolc Gesla Jazn"
        );
        assert_eq!(
            meta_name("  Sklep \"Łódź\" & Co. <B2B> ", ' '),
            "Sklep Lodz Co B2B"
        );
        assert_eq!(meta_name("sklep łódź", '_'), "sklep_lodz");
        assert_eq!(meta_name("Straße-Müller_1", ' '), "Strasse-Muller_1");
        assert_eq!(meta_name("日本", ' '), "");
        for c in meta_name("ĄĆĘŁŃÓŚŹŻ ąćęłńóśźż\t!?", ' ').chars() {
            assert!(
                c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '-'),
                "{c:?}"
            );
        }
    }

    fn render_shop(long: &str, short: &str) -> String {
        let shop = crate::catalog::Shop {
            id: 9,
            long_name: long.into(),
            short_name: short.into(),
            logo_url: None,
            email: String::new(),
            tel: String::new(),
            fax: String::new(),
            www: String::new(),
            address: crate::catalog::Address::default(),
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&shop).expect("archive");
        let shop = rkyv::access::<ArchivedShop, rkyv::rancor::Error>(&bytes).expect("access");
        let file = || GatewayFile {
            url: "u".into(),
            md5: None,
            changed: None,
        };
        let at = jiff::civil::date(2026, 1, 2).at(3, 4, 5, 0);
        let g = Gateway {
            shop,
            generated: at,
            expires: at,
            full: file(),
            changes: Vec::new(),
            light: file(),
            categories: file(),
            sizes: file(),
            others: Vec::new(),
        };
        let mut out = Vec::new();
        write_gateway(&mut out, &g).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn empty_meta_names_fall_back() {
        let doc = render_shop("Zażółć Sklep", "");
        assert!(
            doc.contains("<long_name><![CDATA[Zazolc Sklep]]></long_name>"),
            "{doc}"
        );
        assert!(
            doc.contains("<short_name><![CDATA[Zazolc_Sklep]]></short_name>"),
            "{doc}"
        );
        let doc = render_shop("日本", "***");
        assert!(
            doc.contains("<long_name><![CDATA[shop9]]></long_name>"),
            "{doc}"
        );
        assert!(
            doc.contains("<short_name><![CDATA[shop9]]></short_name>"),
            "{doc}"
        );
        assert!(
            doc.contains("<full url=\"u\">\n\t\t<changes/>\n\t</full>"),
            "{doc}"
        );
    }
}
