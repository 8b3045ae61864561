//! The mapping of full.xml and light.xml products to catalog records.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use crate::catalog::{
    Category, Decimal, Description, Dictionaries, Parameter, Price, Prices, Producer, Product,
    ProductType, Promotion, Record, Series, Size, SizeDef, SizeGroup, StockLevel, Texts, Unit,
    Warranty,
};

use super::dialect::{code_standard, decimal, is_lang, warranty_type, Ids};
use super::reader::{open, Node, Stream};
use super::{IofError, Offer};

/// Everything gathered while reading: dictionaries by id, products, notes.
pub(super) struct Import {
    pub(super) ids: Ids,
    pub(super) lang: String,
    pub(super) dicts: Dictionaries,
    /// Parameter ids defined as sections (parameters.xml and inline), to catch clashes.
    pub(super) params: BTreeMap<u64, Parameter>,
    pub(super) values: HashMap<u64, (Texts, Option<String>)>,
    pub(super) size_groups: BTreeMap<u64, SizeGroup>,
    /// light.xml stock by (product id, size id or code).
    pub(super) light_stock: HashMap<(String, String), Vec<StockLevel>>,
    /// Sizes light.xml lists per product, for joining one-size products.
    pub(super) light_sizes: HashMap<String, Vec<String>>,
    pub(super) unmapped: BTreeMap<String, usize>,
    pub(super) notes: Vec<String>,
    pub(super) products: Vec<Record>,
    pub(super) site: Option<u32>,
}

impl Import {
    pub(super) fn new() -> Self {
        Import {
            ids: Ids::default(),
            lang: "pol".into(),
            dicts: Dictionaries::default(),
            params: BTreeMap::new(),
            values: HashMap::new(),
            size_groups: BTreeMap::new(),
            light_stock: HashMap::new(),
            light_sizes: HashMap::new(),
            unmapped: BTreeMap::new(),
            notes: Vec::new(),
            products: Vec::new(),
            site: None,
        }
    }

    pub(super) fn texts(&self, node: &Node, child: &str) -> Texts {
        let mut t = Texts::new();
        for n in node.kids(child) {
            let lang = n.attr(&["xml:lang"]).unwrap_or(&self.lang).to_string();
            let text = n.trimmed();
            if is_lang(&lang) && !text.is_empty() {
                t.entry(lang).or_insert_with(|| text.to_string());
            }
        }
        t
    }

    /// `<name xml:lang>` children, else `@name` in the offer language.
    pub(super) fn names(&self, node: &Node) -> Texts {
        let mut t = self.texts(node, "name");
        if t.is_empty() {
            if let Some(n) = node
                .attr(&["name"])
                .map(str::trim)
                .filter(|n| !n.is_empty())
            {
                t.insert(self.lang.clone(), n.to_string());
            }
        }
        t
    }

    pub(super) fn unmapped(&mut self, what: String) {
        *self.unmapped.entry(what).or_default() += 1;
    }

    pub(super) fn read_light(&mut self, path: &Path) -> Result<(), IofError> {
        let mut stream = Stream::new(open(path)?, path, &["offer", "products", "product"]);
        while let Some((p, _)) = stream.next_node()? {
            let Some(id) = p.attr(&["id"]).map(|s| s.trim().to_string()) else {
                continue;
            };
            let mut listed = Vec::new();
            for sizes in p.kids("sizes") {
                for s in sizes.kids("size") {
                    let stock: Vec<StockLevel> = s
                        .kids("stock")
                        .filter_map(|st| {
                            Some(StockLevel {
                                warehouse: self.ids.warehouse(st.attr(&["id"])?),
                                quantity: decimal(st.attr(&["quantity"])?)?,
                                physical: None,
                                location: None,
                            })
                        })
                        .collect();
                    for key in [s.attr(&["id"]), s.attr(&["code"])].into_iter().flatten() {
                        self.light_stock
                            .insert((id.clone(), key.trim().to_string()), stock.clone());
                    }
                    listed.push(s.attr(&["id"]).unwrap_or("").trim().to_string());
                }
            }
            self.light_sizes.insert(id, listed);
        }
        Ok(())
    }

    pub(super) fn read_full(&mut self, path: &Path) -> Result<(), IofError> {
        let stream = Stream::new(open(path)?, path, &["offer", "products", "product"]);
        self.read_products(stream)
    }

    pub(super) fn read_products<R: BufRead>(
        &mut self,
        mut stream: Stream<R>,
    ) -> Result<(), IofError> {
        let path = stream.path.clone();
        let mut language_seen = false;
        while let Some((node, at)) = stream.next_node()? {
            if !language_seen {
                language_seen = true;
                if let Some(products) = stream.context.get("products") {
                    for (k, v) in products {
                        match k.as_str() {
                            "language" if is_lang(v) => self.lang = v.clone(),
                            "currency" => self.notes.push(format!(
                                "prices are imported as given, in {v} (products@currency); they must be in the configured base currency"
                            )),
                            _ => {}
                        }
                    }
                }
            }
            match self.product(&node) {
                Ok(record) => self.products.push(record),
                Err(message) => self.notes.push(format!(
                    "{}: product at byte {at} skipped: {message}",
                    path.display()
                )),
            }
        }
        Ok(())
    }

    pub(super) fn price(&self, node: Option<&Node>, zero_is_none: bool) -> Option<Price> {
        let node = node?;
        let net = node.attr(&["net"]).and_then(decimal);
        let gross = node.attr(&["gross"]).and_then(decimal);
        let vat = node.attr(&["vat"]).and_then(decimal).unwrap_or_default();
        let price = Price::from_parts(net, gross, vat)?;
        if zero_is_none && price.net.is_zero() && price.gross.is_zero() {
            return None;
        }
        Some(price)
    }

    pub(super) fn prices(&self, node: &Node, vat: Decimal) -> Prices {
        let with_vat = |p: Option<Price>, n: Option<&Node>| -> Option<Price> {
            // A missing half is completed with the product's VAT.
            let n = n?;
            let net = n.attr(&["net"]).and_then(decimal);
            let gross = n.attr(&["gross"]).and_then(decimal);
            p.and(Price::from_parts(net, gross, vat))
        };
        let retail = with_vat(self.price(node.kid("price"), false), node.kid("price"));
        let srp = with_vat(self.price(node.kid("srp"), true), node.kid("srp"));
        let sr = node.kid("strikethrough_retail_price");
        let sw = node.kid("strikethrough_wholesale_price");
        Prices {
            retail,
            wholesale: None,
            srp,
            strikethrough_retail: with_vat(self.price(sr, true), sr),
            strikethrough_wholesale: with_vat(self.price(sw, true), sw),
        }
    }

    pub(super) fn product(&mut self, node: &Node) -> Result<Record, String> {
        let raw_id = node.attr(&["id"]).ok_or("no id")?.trim().to_string();
        let id = self.ids.id("product", &raw_id, true);
        if node.attr(&["removed"]).is_some_and(|r| r.trim() == "yes") {
            return Ok(Record::DeleteProduct { id });
        }
        if let Some(site) = node.attr(&["site"]).and_then(|s| s.trim().parse().ok()) {
            self.site.get_or_insert(site);
        }
        let vat = node
            .attr(&["vat"])
            .and_then(decimal)
            .unwrap_or(Decimal::from(23));
        let kind = match node.attr(&["type"]).map(str::trim) {
            None | Some("regular") => ProductType::Regular,
            Some("bundle") => ProductType::Bundle,
            Some("collection") => ProductType::Collection,
            Some("packaging") => ProductType::Packaging,
            Some("virtual") => ProductType::Virtual,
            Some("service") => ProductType::Service,
            Some(other) => return Err(format!("unknown type {other:?}")),
        };
        let mut p = Product {
            id,
            kind,
            vat,
            code: node
                .attr(&["code_on_card"])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            producer_code_standard: code_standard(node.attr(&["producer_code_standard"])),
            prices: self.prices(node, vat),
            ..Product::empty(id)
        };
        for child in &node.children {
            if child.ext {
                self.unmapped(format!("product/iaiext:{}", child.name));
                continue;
            }
            match child.name.as_str() {
                "producer" => {
                    if let Some(raw) = child.attr(&["id"]) {
                        let id = self.ids.id("producer", raw, false);
                        p.producer = Some(id);
                        if let Some(name) = child
                            .attr(&["name"])
                            .map(str::trim)
                            .filter(|n| !n.is_empty())
                        {
                            if !self.dicts.producers.iter().any(|x| x.id == id) {
                                self.dicts.producers.push(Producer {
                                    id,
                                    name: name.to_string(),
                                });
                            }
                        }
                    }
                }
                "category" => {
                    if let Some(raw) = child.attr(&["id"]) {
                        let id = self.ids.id("category", raw, false);
                        p.category = Some(id);
                        if !self.dicts.categories.iter().any(|x| x.id == id) {
                            let name = self.names(child);
                            if !name.is_empty() {
                                self.dicts.categories.push(Category {
                                    id,
                                    parent: None,
                                    name,
                                });
                            }
                        }
                    }
                }
                "unit" => {
                    if let Some(raw) = child.attr(&["id"]) {
                        let id = self.ids.id("unit", raw, false);
                        p.unit = Some(id);
                        if !self.dicts.units.iter().any(|x| x.id == id) {
                            let name = self.names(child);
                            if !name.is_empty() {
                                self.dicts.units.push(Unit {
                                    id,
                                    name,
                                    precision: 0,
                                });
                            }
                        }
                    }
                }
                "series" => {
                    if let Some(raw) = child.attr(&["id"]) {
                        let id = self.ids.id("series", raw, false);
                        p.series = Some(id);
                        if !self.dicts.series.iter().any(|x| x.id == id) {
                            let name = self.names(child);
                            if !name.is_empty() {
                                self.dicts.series.push(Series { id, name });
                            }
                        }
                    }
                }
                "warranty" => {
                    if let Some(raw) = child.attr(&["id"]) {
                        let id = self.ids.id("warranty", raw, false);
                        p.warranty = Some(id);
                        if !self.dicts.warranties.iter().any(|x| x.id == id) {
                            let name = self.names(child);
                            if !name.is_empty() {
                                self.dicts.warranties.push(Warranty {
                                    id,
                                    kind: warranty_type(child.attr(&["type"])),
                                    period_months: child
                                        .attr(&["period"])
                                        .and_then(|x| x.trim().parse().ok())
                                        .unwrap_or(0),
                                    name,
                                    description: Texts::new(),
                                });
                            }
                        }
                    }
                }
                "card" => p.card_url = child.attr(&["url"]).map(|u| u.trim().to_string()),
                "description" => p.description = self.description(child),
                "price"
                | "srp"
                | "strikethrough_retail_price"
                | "strikethrough_wholesale_price" => {}
                "promotion" => {
                    p.promotion = child.attr(&["name"]).and_then(|name| {
                        Some(Promotion {
                            name: name.to_string(),
                            start_date: child.attr(&["start_date"]).map(str::to_owned),
                            ending_date: child.attr(&["ending_date"]).map(str::to_owned),
                            price: self.price(child.kid("price"), false)?,
                        })
                    });
                    if child.kid("shown_in_the_zone").is_some() {
                        self.unmapped("product/promotion/shown_in_the_zone".into());
                    }
                }
                "sizes" => self.sizes(child, &raw_id, &mut p),
                "images" => self.images(child, &mut p),
                "parameters" => p.parameters = self.parameters(child),
                "attachments" => p.attachments = self.attachments(child),
                "group" => p.group = self.group(child),
                "bundled" => p.bundled = self.bundled(child),
                other => self.unmapped(format!("product/{other}")),
            }
        }
        if p.sizes.is_empty() {
            // Stock of a product without <sizes> can only come from light.xml.
            let code = format!("{raw_id}-uniw");
            if let Some(stock) = self.light_for(&raw_id, "uniw", &code, 1) {
                p.stock = stock;
            }
        }
        let mut record = Record::Product(Box::new(p));
        record
            .normalize()
            .map_err(|e| format!("{}: {}", e.field, e.reason))?;
        Ok(record)
    }

    /// Stock from light.xml for a size of `product`: by id, by code, or the only size.
    pub(super) fn light_for(
        &self,
        product: &str,
        id: &str,
        code: &str,
        sizes: usize,
    ) -> Option<Vec<StockLevel>> {
        let key = |k: &str| (product.to_string(), k.to_string());
        self.light_stock
            .get(&key(id))
            .or_else(|| self.light_stock.get(&key(code)))
            .or_else(|| {
                let listed = self.light_sizes.get(product)?;
                (sizes == 1 && listed.len() == 1)
                    .then(|| self.light_stock.get(&key(&listed[0])))
                    .flatten()
            })
            .cloned()
    }

    pub(super) fn description(&mut self, node: &Node) -> Description {
        let mut d = Description {
            name: self.texts(node, "name"),
            short_desc: self.texts(node, "short_desc"),
            long_desc: self.texts(node, "long_desc"),
            version: Texts::new(),
        };
        if let Some(v) = node.kid("version") {
            d.version = self.names(v);
        }
        for c in &node.children {
            if c.ext {
                self.unmapped(format!("description/iaiext:{}", c.name));
            }
        }
        d
    }

    pub(super) fn sizes(&mut self, node: &Node, raw_id: &str, p: &mut Product) {
        let group = node
            .attr(&["iaiext:group_id", "group_id"])
            .map(str::trim)
            .filter(|g| *g != "-1" && !g.is_empty());
        let group_id = group.map(|g| self.ids.id("size group", g, false));
        p.size_group = group_id;
        let count = node.kids("size").count();
        for s in node.kids("size") {
            let Some(id) = s.attr(&["id"]).map(|x| x.trim().to_string()) else {
                self.unmapped("product/sizes/size without id".into());
                continue;
            };
            let code = s
                .attr(&["code", "iaiext:code"])
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|| format!("{raw_id}-{id}"));
            let mut stock: Vec<StockLevel> = s
                .kids("stock")
                .filter_map(|st| {
                    let quantity = decimal(st.attr(&["quantity"])?)?;
                    let physical = st
                        .attr(&["stock_quantity"])
                        .and_then(decimal)
                        .filter(|q| *q != quantity);
                    Some(StockLevel {
                        warehouse: self.ids.warehouse(st.attr(&["id"])?),
                        quantity,
                        physical,
                        location: st
                            .attr(&["location_text_id", "iaiext:location_text_id"])
                            .map(str::to_owned),
                    })
                })
                .collect();
            if let Some(fresh) = self.light_for(raw_id, &id, &code, count) {
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
            let weight = |names: &[&str]| {
                s.attr(names)
                    .and_then(decimal)
                    .and_then(|w| u32::try_from(w.round().mantissa()).ok())
            };
            p.sizes.push(Size {
                id: id.clone(),
                code,
                code_producer: s
                    .attr(&["code_producer"])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
                code_external: s
                    .attr(&["iaiext:code_external", "code_external"])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
                weight: weight(&["weight"]),
                weight_net: weight(&["iaiext:weight_net", "weight_net"]),
                prices: self.prices(s, p.vat),
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
    }

    pub(super) fn finish(mut self) -> Offer {
        let mut dicts = std::mem::take(&mut self.dicts);
        dicts.parameters = std::mem::take(&mut self.params).into_values().collect();
        dicts.size_groups = std::mem::take(&mut self.size_groups)
            .into_values()
            .collect();
        let mut records = dicts.into_records();
        // Dictionary entries that would not pass validation are reported, not stored.
        let mut notes = self.ids.notes();
        records.retain_mut(|r| match r.normalize() {
            Ok(()) => true,
            Err(e) => {
                notes.push(format!("{} not imported: {e}", r.subject()));
                false
            }
        });
        records.append(&mut self.products);
        notes.append(&mut self.notes);
        for (what, count) in &self.unmapped {
            notes.push(format!("not mapped: {what} ({count}×)"));
        }
        Offer { records, notes }
    }
}
