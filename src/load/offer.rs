//! A simulated partner's local copy of the offer, kept as hashes: every product's attributes
//! and each of its main nodes (the direct children of `<product>`) reduced to a 64-bit digest
//! of a canonical form. That is enough to apply change files exactly as an importer does
//! (replace attributes, replace each present main node, delete on `removed="yes"`) and to
//! compare the result with a new full.xml product by product, at a few hundred bytes per
//! product instead of the XML itself.
//!
//! The canonical form ignores what an XML reader ignores: attribute order, whitespace-only text
//! between elements, `<a></a>` versus `<a/>`, CDATA versus escaped text. So a change file written
//! with different indentation than full.xml still compares equal.

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// A document that is not a well-formed IOF offer.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("XML error at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("a <product> without a valid numeric id at byte {0}")]
    ProductId(u64),
    #[error("product {0} appears twice")]
    Duplicate(u64),
    #[error("the document ends inside an element")]
    Truncated,
    #[error("not an IOF offer (root element {0:?})")]
    Root(String),
}

/// One product as hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductDigest {
    pub id: u64,
    /// `removed="yes"` (change files only).
    pub removed: bool,
    /// The product element's own attributes, `removed` excluded.
    pub attrs: u64,
    /// `(hash of the element name, hash of the node)`, sorted by name hash. Repeated children
    /// of one name count as one node (hashed together in document order).
    pub nodes: Vec<(u64, u64)>,
}

/// A whole offer (full.xml with change files applied), by product id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferDigest {
    pub products: BTreeMap<u64, ProductDigest>,
}

/// What applying a change file did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub updated: usize,
    pub added: usize,
    pub removed: usize,
    /// `removed="yes"` for a product the copy did not have.
    pub removed_unknown: usize,
}

impl OfferDigest {
    /// The digest of a full.xml.
    pub fn parse_full(xml: &[u8]) -> Result<OfferDigest, OfferError> {
        let mut products = BTreeMap::new();
        for p in parse_products(xml)? {
            let id = p.id;
            if products.insert(id, p).is_some() {
                return Err(OfferError::Duplicate(id));
            }
        }
        Ok(OfferDigest { products })
    }

    /// Apply one change file's products: replace attributes, replace each present main node,
    /// add unknown products, delete on `removed="yes"`.
    pub fn apply(&mut self, change: &[ProductDigest]) -> Applied {
        let mut out = Applied::default();
        for p in change {
            if p.removed {
                if self.products.remove(&p.id).is_some() {
                    out.removed += 1;
                } else {
                    out.removed_unknown += 1;
                }
                continue;
            }
            match self.products.get_mut(&p.id) {
                Some(local) => {
                    local.attrs = p.attrs;
                    for &(name, hash) in &p.nodes {
                        match local.nodes.binary_search_by_key(&name, |n| n.0) {
                            Ok(i) => local.nodes[i].1 = hash,
                            Err(i) => local.nodes.insert(i, (name, hash)),
                        }
                    }
                    out.updated += 1;
                }
                None => {
                    self.products.insert(p.id, p.clone());
                    out.added += 1;
                }
            }
        }
        out
    }

    /// Ids of products that differ between `self` and `other` (present in one only, or with a
    /// different attribute or node hash), ascending.
    pub fn differing(&self, other: &OfferDigest) -> Vec<u64> {
        let mut out = Vec::new();
        let mut a = self.products.iter().peekable();
        let mut b = other.products.iter().peekable();
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some((&ia, _)), None) => {
                    out.push(ia);
                    a.next();
                }
                (None, Some((&ib, _))) => {
                    out.push(ib);
                    b.next();
                }
                (Some((&ia, pa)), Some((&ib, pb))) => {
                    if ia < ib {
                        out.push(ia);
                        a.next();
                    } else if ib < ia {
                        out.push(ib);
                        b.next();
                    } else {
                        if pa.attrs != pb.attrs || pa.nodes != pb.nodes {
                            out.push(ia);
                        }
                        a.next();
                        b.next();
                    }
                }
            }
        }
        out
    }
}

/// The products of a change file (or of a full.xml), in document order.
pub fn parse_change(xml: &[u8]) -> Result<Vec<ProductDigest>, OfferError> {
    parse_products(xml)
}

fn hash64(bytes: &[u8]) -> u64 {
    let h = blake3::hash(bytes);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

fn xml_err(reader: &Reader<&[u8]>, e: impl std::fmt::Display) -> OfferError {
    OfferError::Xml {
        position: reader.buffer_position(),
        message: e.to_string(),
    }
}

/// Append an element's canonical start (name, then attributes sorted by key, values
/// unescaped) to `out`. Bytes go to a buffer hashed once per node: many small hasher
/// updates cost more than the parse.
fn canonical_start(out: &mut Vec<u8>, e: &BytesStart, skip: &[u8]) -> Result<(), String> {
    let mut attrs = e
        .attributes()
        .filter(|a| a.as_ref().map_or(true, |a| a.key.as_ref() != skip))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if !attrs.is_sorted_by(|a, b| a.key.as_ref() <= b.key.as_ref()) {
        attrs.sort_by(|a, b| a.key.as_ref().cmp(b.key.as_ref()));
    }
    out.push(b'<');
    out.extend_from_slice(e.name().as_ref());
    for a in &attrs {
        out.push(0);
        out.extend_from_slice(a.key.as_ref());
        out.push(b'=');
        if a.value.contains(&b'&') {
            let v = a.unescape_value().map_err(|e| e.to_string())?;
            out.extend_from_slice(v.as_bytes());
        } else {
            out.extend_from_slice(&a.value);
        }
    }
    out.push(b'>');
    Ok(())
}

/// The product being read.
struct Open {
    digest: ProductDigest,
    /// Canonical bytes of the main node being read, and its name's hash.
    node: Option<u64>,
    buf: Vec<u8>,
}

impl Open {
    /// A main node ended: hash it (folding repeated names into one node).
    fn close_node(&mut self) {
        let Some(key) = self.node.take() else {
            return;
        };
        let h = hash64(&self.buf);
        self.buf.clear();
        match self.digest.nodes.iter_mut().find(|n| n.0 == key) {
            Some(n) => {
                let mut both = [0u8; 16];
                both[..8].copy_from_slice(&n.1.to_le_bytes());
                both[8..].copy_from_slice(&h.to_le_bytes());
                n.1 = hash64(&both);
            }
            None => self.digest.nodes.push((key, h)),
        }
    }
}

/// Parse `<offer><products><product>…` into digests.
fn parse_products(xml: &[u8]) -> Result<Vec<ProductDigest>, OfferError> {
    let mut reader = Reader::from_reader(xml);
    let mut depth = 0usize;
    let mut in_products = false;
    let mut out = Vec::new();
    let mut open: Option<Open> = None;
    let mut seen_root = false;
    let mut scratch = Vec::with_capacity(256);
    // Name hashes of main nodes, computed once per name.
    let mut names: Vec<(Vec<u8>, u64)> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| xml_err(&reader, e))?;
        let position = reader.buffer_position();
        let canon = |m: String| OfferError::Xml {
            position,
            message: m,
        };
        match event {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.name();
                if depth == 0 {
                    if name.as_ref() != b"offer" {
                        return Err(OfferError::Root(
                            String::from_utf8_lossy(name.as_ref()).into_owned(),
                        ));
                    }
                    seen_root = true;
                } else if depth == 1 && name.as_ref() == b"products" {
                    in_products = !empty;
                } else if depth == 2 && in_products && name.as_ref() == b"product" {
                    let mut id = None;
                    let mut removed = false;
                    for a in e.attributes() {
                        let a = a.map_err(|err| xml_err(&reader, err))?;
                        match a.key.as_ref() {
                            b"id" => {
                                id = std::str::from_utf8(&a.value)
                                    .ok()
                                    .and_then(|s| s.trim().parse::<u64>().ok())
                            }
                            b"removed" => removed = a.value.as_ref() == b"yes",
                            _ => {}
                        }
                    }
                    let id = id.ok_or(OfferError::ProductId(position))?;
                    scratch.clear();
                    canonical_start(&mut scratch, e, b"removed").map_err(canon)?;
                    let digest = ProductDigest {
                        id,
                        removed,
                        attrs: hash64(&scratch),
                        nodes: Vec::new(),
                    };
                    if empty {
                        out.push(digest);
                    } else {
                        open = Some(Open {
                            digest,
                            node: None,
                            buf: std::mem::take(&mut scratch),
                        });
                    }
                } else if let Some(p) = open.as_mut() {
                    if depth == 3 {
                        let key = match names.iter().find(|(n, _)| n.as_slice() == name.as_ref()) {
                            Some((_, k)) => *k,
                            None => {
                                let k = hash64(name.as_ref());
                                names.push((name.as_ref().to_vec(), k));
                                k
                            }
                        };
                        p.buf.clear();
                        p.node = Some(key);
                    }
                    if p.node.is_some() {
                        canonical_start(&mut p.buf, e, b"").map_err(canon)?;
                        if empty {
                            p.buf.push(b'/');
                        }
                    }
                    if empty && depth == 3 {
                        p.close_node();
                    }
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => {
                if depth == 0 {
                    return Err(xml_err(&reader, "unbalanced end tag"));
                }
                depth -= 1;
                if let Some(p) = open.as_mut() {
                    if p.node.is_some() {
                        p.buf.push(b'/');
                    }
                    if depth == 3 {
                        p.close_node();
                    }
                }
                if depth == 2 {
                    if let Some(mut p) = open.take() {
                        p.close_node();
                        p.digest.nodes.sort_unstable();
                        scratch = p.buf;
                        out.push(p.digest);
                    }
                } else if depth == 1 {
                    in_products = false;
                }
            }
            Event::Text(t) => {
                if let Some(p) = open.as_mut().filter(|p| p.node.is_some()) {
                    if t.iter().any(|b| !b.is_ascii_whitespace()) {
                        let text = t.unescape().map_err(|e| xml_err(&reader, e))?;
                        p.buf.push(b'T');
                        p.buf.extend_from_slice(text.as_bytes().trim_ascii());
                        p.buf.push(0);
                    }
                }
            }
            Event::CData(t) => {
                if let Some(p) = open.as_mut().filter(|p| p.node.is_some()) {
                    p.buf.push(b'T');
                    let bytes: &[u8] = &t;
                    p.buf.extend_from_slice(bytes.trim_ascii());
                    p.buf.push(0);
                }
            }
            _ => {}
        }
    }
    if depth != 0 || !seen_root {
        return Err(OfferError::Truncated);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<offer file_format="IOF" version="3.0" extensions="yes">
<products language="pol" currency="PLN">
	<product id="1" vat="23.0" type="regular">
		<producer id="4" name="Acme"/>
		<description>
			<name xml:lang="pol"><![CDATA[Kabel <nowy>]]></name>
		</description>
		<price gross="12.30" net="10.00"/>
		<sizes><size id="uniw" code="1-uniw"><stock id="1" quantity="5"/></size></sizes>
	</product>
	<product id="2" vat="8.0" type="regular">
		<price gross="1.08" net="1.00"/>
	</product>
	<product id="3" vat="23.0" type="regular">
		<series id="7" name="S"/>
	</product>
</products>
</offer>
"#;

    fn full() -> OfferDigest {
        OfferDigest::parse_full(FULL.as_bytes()).expect("parses")
    }

    #[test]
    fn equivalent_forms_hash_alike() {
        // Attribute order, whitespace, empty-element form and CDATA versus escaped text.
        let other = FULL
            .replace(
                r#"<price gross="12.30" net="10.00"/>"#,
                r#"<price net="10.00" gross="12.30"></price>"#,
            )
            .replace("<![CDATA[Kabel <nowy>]]>", "Kabel &lt;nowy&gt;")
            .replace("\n\t\t", "\n  ");
        let b = OfferDigest::parse_full(other.as_bytes()).unwrap();
        assert_eq!(full(), b);
        assert!(full().differing(&b).is_empty());
    }

    #[test]
    fn a_different_value_is_a_different_product() {
        let other = FULL.replace(r#"quantity="5""#, r#"quantity="6""#);
        let b = OfferDigest::parse_full(other.as_bytes()).unwrap();
        assert_eq!(full().differing(&b), vec![1]);
        let other = FULL.replace(r#"vat="8.0""#, r#"vat="5.0""#);
        let b = OfferDigest::parse_full(other.as_bytes()).unwrap();
        assert_eq!(full().differing(&b), vec![2]);
    }

    #[test]
    fn change_files_replace_nodes_add_and_remove() {
        // Product 1: new price, other nodes kept; 2 removed; 4 added; 9 removed but unknown.
        let change = r#"<offer file_format="IOF" version="3.0" extensions="yes"><products language="pol" currency="PLN">
	<product id="1" vat="23.0" type="regular">
		<price gross="24.60" net="20.00"/>
	</product>
	<product id="2" removed="yes"/>
	<product id="4" vat="23.0" type="regular"><price gross="2.46" net="2.00"/></product>
	<product id="9" removed="yes"/>
</products></offer>"#;
        let target = r#"<offer file_format="IOF" version="3.0" extensions="yes"><products language="pol" currency="PLN">
	<product id="1" vat="23.0" type="regular">
		<producer id="4" name="Acme"/>
		<description><name xml:lang="pol">Kabel &lt;nowy&gt;</name></description>
		<price gross="24.60" net="20.00"/>
		<sizes><size id="uniw" code="1-uniw"><stock id="1" quantity="5"/></size></sizes>
	</product>
	<product id="3" vat="23.0" type="regular"><series id="7" name="S"/></product>
	<product id="4" vat="23.0" type="regular"><price gross="2.46" net="2.00"/></product>
</products></offer>"#;
        let mut local = full();
        let products = parse_change(change.as_bytes()).unwrap();
        assert!(products[1].removed && products[3].removed);
        let applied = local.apply(&products);
        assert_eq!(
            applied,
            Applied {
                updated: 1,
                added: 1,
                removed: 1,
                removed_unknown: 1
            }
        );
        let expected = OfferDigest::parse_full(target.as_bytes()).unwrap();
        assert_eq!(local.differing(&expected), Vec::<u64>::new());
        // Attributes are replaced as a whole.
        let attrs =
            r#"<offer><products><product id="3" vat="8.0" type="regular"/></products></offer>"#;
        local.apply(&parse_change(attrs.as_bytes()).unwrap());
        assert_eq!(local.differing(&expected), vec![3]);
    }

    #[test]
    fn a_node_the_change_adds_is_inserted() {
        let mut local = full();
        let change = r#"<offer><products><product id="2" vat="8.0" type="regular"><series id="1" name="X"/></product></products></offer>"#;
        local.apply(&parse_change(change.as_bytes()).unwrap());
        let p = &local.products[&2];
        assert_eq!(p.nodes.len(), 2);
        assert!(p.nodes.windows(2).all(|w| w[0].0 < w[1].0), "kept sorted");
    }

    #[test]
    fn broken_documents_are_errors() {
        for bad in [
            "<offer><products><product vat=\"1\"/></products></offer>",
            "<offer><products><product id=\"x\"/></products></offer>",
            "<offer><products><product id=\"1\"/><product id=\"1\"/></products></offer>",
            "<offer><products><product id=\"1\">",
            "<gateway/>",
            "",
        ] {
            assert!(OfferDigest::parse_full(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
