//! A product's sizes: ids (given or derived), codes, weights, prices and stock per warehouse,
//! joined with light.xml's fresher stock; product-level producer codes moved onto the sizes.

use crate::catalog::{CodeStandard, Product, Size, SizeDef, SizeGroup, StockLevel, Texts};

use super::dialect::{code_standard, decimal, ean_standard};
use super::map::Import;
use super::reader::Node;

/// Size attributes the import maps; any other is reported as dropped.
const SIZE_ATTRS: [&str; 14] = [
    "id",
    "name",
    "panel_name",
    "code",
    "iaiext:code",
    "code_producer",
    "iaiext:code_producer",
    "EAN",
    "ean",
    "code_external",
    "iaiext:code_external",
    "weight",
    "iaiext:weight_net",
    "weight_net",
];

/// Size children the import maps.
const SIZE_CHILDREN: [&str; 5] = [
    "price",
    "srp",
    "strikethrough_retail_price",
    "strikethrough_wholesale_price",
    "stock",
];

/// Producer codes a feed put on `<product>` rather than on its sizes.
#[derive(Debug, Default)]
pub(super) struct ProductCodes {
    pub(super) ean: Option<String>,
    pub(super) code_producer: Option<String>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

impl Import<'_> {
    pub(super) fn sizes(
        &mut self,
        node: &Node,
        raw_id: &str,
        p: &mut Product,
    ) -> Result<(), String> {
        let group = node
            .attr(&["iaiext:group_id", "group_id"])
            .map(str::trim)
            .filter(|g| *g != "-1" && !g.is_empty());
        let group_id = group.map(|g| self.ids.id("size group", g, false));
        p.size_group = group_id;
        let count = node.kids("size").count();
        for (position, s) in node.kids("size").enumerate() {
            let id = match non_empty(s.attr(&["id"])) {
                Some(id) => {
                    self.mapped("product/sizes/size@id");
                    id
                }
                None => {
                    // Derived so that the same feed gives the same ids on every import.
                    self.derived("product/sizes/size@id");
                    if count == 1 {
                        "uniw".to_string()
                    } else if let Some(code) = non_empty(s.attr(&["code", "iaiext:code"])) {
                        code
                    } else if let Some(name) = non_empty(s.attr(&["name"])) {
                        name
                    } else {
                        (position + 1).to_string()
                    }
                }
            };
            for (k, v) in &s.attrs {
                // The priority is the sizes' order, which is kept.
                if k == "iaiext:priority" && v.trim() == position.to_string() {
                    self.mapped("product/sizes/size@iaiext:priority");
                    continue;
                }
                if !SIZE_ATTRS.contains(&k.as_str()) && !k.starts_with("xmlns") {
                    self.dropped(&format!("product/sizes/size@{k}"), || {
                        format!("size {id}: {v:?}")
                    });
                }
            }
            for c in &s.children {
                if c.ext || !SIZE_CHILDREN.contains(&c.name.as_str()) {
                    let name = if c.ext {
                        format!("iaiext:{}", c.name)
                    } else {
                        c.name.clone()
                    };
                    self.dropped(&format!("product/sizes/size/{name}"), || {
                        format!("size {id}")
                    });
                }
            }
            let code = match non_empty(s.attr(&["code", "iaiext:code"])) {
                Some(c) => {
                    self.mapped("product/sizes/size@code");
                    c
                }
                None => format!("{raw_id}-{id}"),
            };
            let mut stock = self.stock(s, &id);
            if let Some(fresh) = self.light_for(raw_id, &id, &code, count) {
                self.mapped("light.xml product/sizes/size/stock");
                // light.xml is fresher: its quantities win, the physical stock and location
                // (which light does not carry) stay where the warehouse is the same.
                stock = fresh
                    .into_iter()
                    .map(|mut l| {
                        if let Some(old) = stock.iter().find(|o| o.warehouse == l.warehouse) {
                            l.physical = old.physical.filter(|q| *q != l.quantity);
                            l.location = old.location.clone();
                        }
                        l
                    })
                    .collect();
            }
            let mut code_producer = non_empty(s.attr(&["code_producer", "iaiext:code_producer"]));
            if let Some(ean) = non_empty(s.attr(&["EAN", "ean"])) {
                match &code_producer {
                    None => {
                        self.mapped("product/sizes/size@EAN");
                        code_producer = Some(ean);
                    }
                    Some(c) if *c == ean => self.mapped("product/sizes/size@EAN"),
                    Some(c) => self.dropped("product/sizes/size@EAN", || {
                        format!("size {id}: {ean:?} (the size's code_producer is {c:?})")
                    }),
                }
            }
            if code_producer.is_some() {
                self.mapped("product/sizes/size@code_producer");
            }
            let weight = self.weight(s, "weight", &["weight"]);
            let weight_net =
                self.weight(s, "iaiext:weight_net", &["iaiext:weight_net", "weight_net"]);
            let prices = self
                .prices(s, "product/sizes/size", p.vat)
                .map_err(|e| format!("size {id}: {e}"))?;
            p.sizes.push(Size {
                id: id.clone(),
                code,
                code_producer,
                code_external: non_empty(s.attr(&["iaiext:code_external", "code_external"])),
                weight,
                weight_net,
                prices,
                stock,
            });
            if let Some(gid) = group_id {
                let name = s.attr(&["name"]).unwrap_or(&id).trim().to_string();
                let lang = self.lang.clone();
                let g = self.size_groups.entry(gid).or_insert_with(|| SizeGroup {
                    id: gid,
                    name: node
                        .attr(&["iaiext:group_name", "group_name"])
                        .unwrap_or("")
                        .trim()
                        .to_string(),
                    sizes: Vec::new(),
                });
                if !g.sizes.iter().any(|d| d.id == id) {
                    g.sizes.push(SizeDef {
                        id: id.clone(),
                        name: Texts::from([(lang, name)]),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every `<stock>` of a size; one that cannot be read is reported, never guessed.
    fn stock(&mut self, s: &Node, size: &str) -> Vec<StockLevel> {
        let mut out: Vec<StockLevel> = Vec::new();
        for st in s.kids("stock") {
            let Some(warehouse) = non_empty(st.attr(&["id"])) else {
                self.dropped("product/sizes/size/stock@id", || {
                    format!("size {size}: a <stock> without a warehouse id")
                });
                continue;
            };
            let raw = st.attr(&["quantity"]).unwrap_or("");
            let Some(quantity) = decimal(raw) else {
                self.dropped("product/sizes/size/stock@quantity", || {
                    format!("size {size}, warehouse {warehouse}: {raw:?} is not a number")
                });
                continue;
            };
            self.mapped("product/sizes/size/stock@quantity");
            let physical = st
                .attr(&["stock_quantity"])
                .and_then(decimal)
                .filter(|q| *q != quantity);
            let warehouse = self.ids.warehouse(&warehouse);
            if out.iter().any(|l| l.warehouse == warehouse) {
                // IOF lists a warehouse once per size; a repeat is summed, as a feed that
                // splits a warehouse's stock over locations means it.
                self.converted("product/sizes/size/stock@quantity");
                if let Some(l) = out.iter_mut().find(|l| l.warehouse == warehouse) {
                    l.quantity = l.quantity.checked_add(quantity).unwrap_or(l.quantity);
                }
                continue;
            }
            out.push(StockLevel {
                warehouse,
                quantity,
                physical,
                location: st
                    .attr(&["location_text_id", "iaiext:location_text_id"])
                    .map(str::to_owned),
            });
        }
        out
    }

    /// A weight in grams; a fraction (`0,5`) is rounded to whole grams and counted converted.
    fn weight(&mut self, s: &Node, field: &str, names: &[&str]) -> Option<u32> {
        let field = format!("product/sizes/size@{field}");
        let raw = s.attr(names)?.trim();
        if raw.is_empty() {
            return None;
        }
        let w = decimal(raw).filter(|w| !w.is_sign_negative());
        let grams = w.and_then(|w| {
            let r = w.round();
            u32::try_from(r.mantissa() / 10i128.pow(r.scale())).ok()
        });
        match (w, grams) {
            (Some(w), Some(g)) => {
                if w.fract().is_zero() {
                    self.mapped(&field);
                } else {
                    self.converted(&field);
                }
                Some(g)
            }
            _ => {
                self.dropped(&field, || format!("{raw:?} is not a weight in grams"));
                None
            }
        }
    }

    /// Put product-level producer codes where IOF 3.0 holds them: on the size.
    pub(super) fn place_product_codes(&mut self, codes: ProductCodes, p: &mut Product) {
        let ProductCodes { ean, code_producer } = codes;
        if ean.is_none() && code_producer.is_none() {
            return;
        }
        if p.sizes.is_empty() {
            // The one size IOF gives a product without sizes, made here to carry the code.
            p.sizes.push(Size {
                id: "uniw".into(),
                code: format!("{}-uniw", p.id),
                code_producer: None,
                code_external: None,
                weight: None,
                weight_net: None,
                prices: Default::default(),
                stock: std::mem::take(&mut p.stock),
            });
        }
        let mut place = |im: &mut Import<'_>, field: &str, code: String, standard: CodeStandard| {
            if p.sizes
                .iter()
                .any(|s| s.code_producer.as_deref() == Some(code.as_str()))
            {
                // A size already carries this very code: nothing to move.
                im.mapped(field);
                return;
            }
            let without: Vec<usize> = (0..p.sizes.len())
                .filter(|i| p.sizes[*i].code_producer.is_none())
                .collect();
            match without.as_slice() {
                [only] => {
                    im.mapped(field);
                    p.sizes[*only].code_producer = Some(code);
                    if p.producer_code_standard == CodeStandard::Auto {
                        p.producer_code_standard = standard;
                    }
                }
                [] if p.sizes.len() == 1 => im.dropped(field, || {
                    format!(
                        "{code:?}: the only size already has the producer code {:?}",
                        p.sizes[0].code_producer.as_deref().unwrap_or("")
                    )
                }),
                [] => im.dropped(field, || {
                    format!("{code:?}: every size has its own code_producer")
                }),
                many => im.dropped(field, || {
                    format!(
                        "{code:?}: {} sizes have no code_producer; one code cannot be all of theirs",
                        many.len()
                    )
                }),
            }
        };
        if let Some(ean) = ean {
            let standard = ean_standard(&ean);
            place(self, "product@EAN", ean, standard);
        }
        if let Some(code) = code_producer {
            place(self, "product@code_producer", code, code_standard(None));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::{Decimal, Product, Record};
    use crate::ingest::iof::read_full_bytes;

    fn one(xml: &str) -> (Product, crate::ingest::iof::Report) {
        let offer = read_full_bytes(xml.as_bytes()).expect("parse");
        let p = offer
            .records
            .iter()
            .find_map(|r| match r {
                Record::Product(p) => Some((**p).clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{:?} {}", offer.notes, offer.report));
        (p, offer.report)
    }

    #[test]
    fn sizes_without_id_get_ids_from_code_name_or_position() {
        let (p, report) = one(
            r#"<offer><products language="pol" currency="PLN"><product id="5" vat="23">
            <description><name>X</name></description><price net="1"/>
            <sizes>
             <size code="X-A"><stock id="1" quantity="1"/></size>
             <size name="XL"><stock id="1" quantity="2"/><stock id="1" quantity="3"/></size>
             <size><stock quantity="9"/></size>
            </sizes></product></products></offer>"#,
        );
        let ids: Vec<&str> = p.sizes.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["X-A", "XL", "3"]);
        assert_eq!(p.sizes[1].code, "5-XL");
        // A warehouse listed twice for one size is summed, not half lost.
        assert_eq!(p.sizes[1].stock[0].quantity, Decimal::from(5));
        // A stock without a warehouse is reported, never guessed.
        assert!(p.sizes[2].stock.is_empty());
        assert_eq!(report.fields["product/sizes/size/stock@id"].dropped, 1);
        assert_eq!(report.fields["product/sizes/size@id"].derived, 3);
    }

    #[test]
    fn product_level_codes_go_to_the_size_without_one_or_are_reported() {
        let (p, report) = one(
            r#"<offer><products language="pol"><product id="6" vat="23" EAN="12345678" code_producer="MPN-6">
            <description><name>X</name></description><price net="1"/>
            <sizes><size id="a" code="6-a"/><size id="b" code="6-b" code_producer="B"/></sizes>
            </product></products></offer>"#,
        );
        assert_eq!(p.sizes[0].code_producer.as_deref(), Some("12345678"));
        assert_eq!(p.sizes[1].code_producer.as_deref(), Some("B"));
        assert_eq!(
            p.producer_code_standard,
            crate::catalog::CodeStandard::Gtin8
        );
        let dropped = &report.fields["product@code_producer"];
        assert_eq!(dropped.dropped, 1);
        assert!(dropped.dropped_examples[0].contains("MPN-6"), "{dropped:?}");
        // Two sizes without a code: one product-level EAN cannot be both of theirs.
        let (p, report) = one(
            r#"<offer><products language="pol"><product id="7" vat="23" EAN="12345678">
            <description><name>X</name></description><price net="1"/>
            <sizes><size id="a" code="7-a"/><size id="b" code="7-b"/></sizes>
            </product></products></offer>"#,
        );
        assert!(p.sizes.iter().all(|s| s.code_producer.is_none()));
        assert_eq!(report.fields["product@EAN"].dropped, 1);
    }
}
