//! Reading the two small documents a partner looks at on every poll: the gateway (which files
//! exist, their MD5 and change time) and, for freshness, the stock and prices of light.xml.

use std::collections::{HashMap, HashSet};

use quick_xml::events::Event;
use quick_xml::Reader;
use rust_decimal::Decimal;

use super::offer::OfferError;

/// One file the gateway lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The gateway node: `full`, `light`, `categories`, ..., `change`.
    pub kind: String,
    pub url: String,
    /// MD5 hex, lower case; light may have none.
    pub hash: Option<String>,
    /// `YYYY-MM-DD hh:mm:ss` as written (compares in time order as text).
    pub changed: Option<String>,
}

/// A parsed gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayDoc {
    /// Every file but the change files, in document order.
    pub files: Vec<Listed>,
    /// `<full><changes><change>` entries, oldest first.
    pub changes: Vec<Listed>,
}

impl GatewayDoc {
    /// The file listed under `kind`.
    pub fn file(&self, kind: &str) -> Option<&Listed> {
        self.files.iter().find(|f| f.kind == kind)
    }
}

/// A listed URL without `g=`, the generation the gateway was made from: that changes with
/// every update while the file and the partner's authority stay.
pub fn link_key(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("g="))
        .collect();
    format!("{path}?{}", kept.join("&"))
}

/// The generation a listed URL was signed at (its `g=`), if it names one.
pub fn link_generation(url: &str) -> Option<u64> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("g="))
        .and_then(|g| g.parse().ok())
}

/// Whether two listed URLs name the same file for the same partner ([`link_key`]).
pub fn same_link(a: &str, b: &str) -> bool {
    link_key(a) == link_key(b)
}

fn xml_err(reader: &Reader<&[u8]>, e: impl std::fmt::Display) -> OfferError {
    OfferError::Xml {
        position: reader.buffer_position(),
        message: e.to_string(),
    }
}

/// Parse a gateway (`<provider_description>`).
pub fn parse_gateway(xml: &[u8]) -> Result<GatewayDoc, OfferError> {
    let mut reader = Reader::from_reader(xml);
    let mut doc = GatewayDoc::default();
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let event = reader.read_event().map_err(|e| xml_err(&reader, e))?;
        match event {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name();
                if depth == 0 {
                    if name.as_ref() != b"provider_description" {
                        return Err(OfferError::Root(
                            String::from_utf8_lossy(name.as_ref()).into_owned(),
                        ));
                    }
                    seen_root = true;
                }
                let kind = String::from_utf8_lossy(name.as_ref()).into_owned();
                // File nodes are children of the root, change nodes sit under full/changes.
                let is_file = (depth == 1 && kind != "meta") || (depth == 3 && kind == "change");
                if is_file {
                    let (mut url, mut hash, mut changed) = (None, None, None);
                    for a in e.attributes() {
                        let a = a.map_err(|err| xml_err(&reader, err))?;
                        let v = a
                            .unescape_value()
                            .map_err(|err| xml_err(&reader, err))?
                            .into_owned();
                        match a.key.as_ref() {
                            b"url" => url = Some(v),
                            b"hash" => hash = Some(v.to_ascii_lowercase()),
                            b"changed" | b"date_changed" => changed = Some(v),
                            _ => {}
                        }
                    }
                    if let Some(url) = url {
                        let listed = Listed {
                            kind,
                            url,
                            hash,
                            changed,
                        };
                        if listed.kind == "change" {
                            doc.changes.push(listed);
                        } else {
                            doc.files.push(listed);
                        }
                    }
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if !seen_root || depth != 0 {
        return Err(OfferError::Truncated);
    }
    // Listed newest first; importers apply oldest first. A missing time sorts first.
    doc.changes.sort_by(|a, b| a.changed.cmp(&b.changed));
    Ok(doc)
}

/// What light.xml says about the watched products: stock per (product, size, warehouse) and
/// the product-level retail price.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LightIndex {
    pub stock: HashMap<(u64, String, u32), Decimal>,
    /// Product-level `<price net gross>`.
    pub price: HashMap<u64, (Decimal, Decimal)>,
    /// Every (product, size) seen, with the warehouses listed for it, in document order.
    pub sizes: Vec<(u64, String, Vec<u32>)>,
}

fn attr_decimal(v: &[u8]) -> Option<Decimal> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// Index light.xml, keeping only products in `watch` (all when `None`).
pub fn parse_light(xml: &[u8], watch: Option<&HashSet<u64>>) -> Result<LightIndex, OfferError> {
    let mut reader = Reader::from_reader(xml);
    let mut index = LightIndex::default();
    let mut depth = 0usize;
    let mut product: Option<u64> = None;
    let mut size: Option<usize> = None;
    loop {
        let event = reader.read_event().map_err(|e| xml_err(&reader, e))?;
        match event {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                let start = matches!(event, Event::Start(_));
                match (depth, e.name().as_ref()) {
                    (2, b"product") => {
                        let mut id = None;
                        for a in e.attributes().flatten() {
                            if a.key.as_ref() == b"id" {
                                id = std::str::from_utf8(&a.value)
                                    .ok()
                                    .and_then(|s| s.trim().parse::<u64>().ok());
                            }
                        }
                        product = id.filter(|id| watch.is_none_or(|w| w.contains(id)));
                        if !start {
                            product = None;
                        }
                    }
                    (3, b"price") => {
                        if let Some(p) = product {
                            let (mut net, mut gross) = (None, None);
                            for a in e.attributes().flatten() {
                                match a.key.as_ref() {
                                    b"net" => net = attr_decimal(&a.value),
                                    b"gross" => gross = attr_decimal(&a.value),
                                    _ => {}
                                }
                            }
                            if let (Some(net), Some(gross)) = (net, gross) {
                                index.price.insert(p, (net, gross));
                            }
                        }
                    }
                    (4, b"size") => {
                        if let Some(p) = product {
                            let id = e
                                .attributes()
                                .flatten()
                                .find(|a| a.key.as_ref() == b"id")
                                .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
                            if let Some(id) = id {
                                index.sizes.push((p, id, Vec::new()));
                                size = Some(index.sizes.len() - 1);
                            }
                        }
                        if !start {
                            size = None;
                        }
                    }
                    (5, b"stock") => {
                        if let (Some(p), Some(s)) = (product, size) {
                            let (mut wh, mut q) = (None, None);
                            for a in e.attributes().flatten() {
                                match a.key.as_ref() {
                                    b"id" => {
                                        wh = std::str::from_utf8(&a.value)
                                            .ok()
                                            .and_then(|s| s.trim().parse::<u32>().ok())
                                    }
                                    b"quantity" => q = attr_decimal(&a.value),
                                    _ => {}
                                }
                            }
                            if let (Some(wh), Some(q)) = (wh, q) {
                                let entry = &mut index.sizes[s];
                                entry.2.push(wh);
                                index.stock.insert((p, entry.1.clone(), wh), q.normalize());
                            }
                        }
                    }
                    _ => {}
                }
                if start {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                match depth {
                    2 => product = None,
                    4 => size = None,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(OfferError::Truncated);
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_equal_but_for_the_generation() {
        let a = "http://h/p/k/light.xml?partner=a&expires=9&g=4&sig=ab";
        assert!(same_link(
            a,
            "http://h/p/k/light.xml?partner=a&expires=9&g=5&sig=ab"
        ));
        assert!(same_link(
            a,
            "http://h/p/k/light.xml?partner=a&expires=9&sig=ab"
        ));
        assert!(!same_link(
            a,
            "http://h/p/k/light.xml?partner=a&expires=8&g=4&sig=ab"
        ));
        assert!(!same_link(
            a,
            "http://h/p/k/full.xml?partner=a&expires=9&g=4&sig=ab"
        ));
        assert!(!same_link(
            a,
            "http://h/p/k/light.xml?partner=b&expires=9&g=4&sig=ab"
        ));
    }

    #[test]
    fn the_generation_a_link_was_signed_at() {
        let at = |url| link_generation(url);
        assert_eq!(at("http://h/p/k/light.xml?partner=a&g=42&sig=ab"), Some(42));
        assert_eq!(at("http://h/p/k/light.xml?partner=a&sig=ab"), None);
        assert_eq!(at("http://h/p/k/light.xml?partner=a&g=x"), None);
        assert_eq!(at("http://h/feeds/light.xml"), None);
        // A newer generation orders after an older one, and after none.
        assert!(at("http://h/x?g=5") > at("http://h/x?g=4"));
        assert!(at("http://h/x?g=0") > at("http://h/x"));
    }

    #[test]
    fn gateway_files_and_changes_oldest_first() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<provider_description file_format="IOF" version="3.0">
 <meta><showcase_image url="http://x/logo.png"/><time><offer created="2026-01-01 00:00:00"/></time></meta>
 <full url="http://h/full.xml" hash="ABC" changed="2026-01-01 03:00:00">
  <changes>
   <change url="http://h/full_change2026-01-01T05-00-00.xml" hash="c2" changed="2026-01-01 05:00:00"/>
   <change url="http://h/full_change2026-01-01T04-00-00.xml" hash="c1" changed="2026-01-01 04:00:00"/>
  </changes>
 </full>
 <light url="http://h/light.xml?a=1&amp;b=2"/>
 <categories url="http://h/categories.xml" hash="d" changed="2026-01-01 03:00:00"/>
</provider_description>"#;
        let g = parse_gateway(xml.as_bytes()).unwrap();
        let kinds: Vec<_> = g.files.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(kinds, ["full", "light", "categories"]);
        assert_eq!(g.file("full").unwrap().hash.as_deref(), Some("abc"));
        assert_eq!(g.file("light").unwrap().url, "http://h/light.xml?a=1&b=2");
        assert_eq!(g.file("light").unwrap().hash, None);
        let changes: Vec<_> = g
            .changes
            .iter()
            .map(|c| c.hash.as_deref().unwrap())
            .collect();
        assert_eq!(changes, ["c1", "c2"]);
        assert!(parse_gateway(b"<offer/>").is_err());
        assert!(parse_gateway(b"<provider_description><full url=\"x\">").is_err());
    }

    #[test]
    fn light_stock_and_prices_of_watched_products() {
        let xml = r#"<offer><products currency="PLN">
	<product id="1" vat="23.0"><price gross="12.30" net="10.00"/>
		<sizes><size id="M" code="1-M"><price gross="1" net="1"/><stock id="1" quantity="5"/><stock id="2" quantity="-1"/></size>
		<size id="L" code="1-L"/></sizes></product>
	<product id="2"><price gross="2.46" net="2.00"/><sizes><size id="uniw"><stock id="0" quantity="7.000"/></size></sizes></product>
</products></offer>"#;
        let all = parse_light(xml.as_bytes(), None).unwrap();
        assert_eq!(all.stock[&(1, "M".into(), 1)], Decimal::from(5));
        assert_eq!(all.stock[&(1, "M".into(), 2)], Decimal::from(-1));
        assert_eq!(all.stock[&(2, "uniw".into(), 0)], Decimal::from(7));
        assert_eq!(
            all.price[&1],
            ("10.00".parse().unwrap(), "12.30".parse().unwrap())
        );
        assert_eq!(
            all.sizes,
            vec![
                (1, "M".to_string(), vec![1, 2]),
                (1, "L".to_string(), vec![]),
                (2, "uniw".to_string(), vec![0])
            ]
        );
        let watch: HashSet<u64> = [2].into();
        let some = parse_light(xml.as_bytes(), Some(&watch)).unwrap();
        assert_eq!(some.stock.len(), 1);
        assert!(!some.price.contains_key(&1));
    }
}
