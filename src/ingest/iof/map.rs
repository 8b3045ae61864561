//! The mapping of full.xml and light.xml products to catalog records.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use crate::catalog::{
    Decimal, Description, Dictionaries, Parameter, Producer, Product, ProductType, Promotion,
    Record, Series, SizeGroup, StockLevel, Texts, Unit, Warranty,
};

use super::dialect::{code_standard, date_time, decimal, language, warranty_type, Ids};
use super::reader::{open, Node, Position, Stream};
use super::report::{Conversion, Report};
use super::sizes::ProductCodes;
use super::{ImportOptions, IofError, Offer};

/// Product children mapped as a whole (prices and categories are counted in detail).
const PRODUCT_CHILDREN: [&str; 13] = [
    "producer",
    "unit",
    "series",
    "warranty",
    "card",
    "description",
    "promotion",
    "sizes",
    "images",
    "parameters",
    "attachments",
    "group",
    "bundled",
];

/// Product attributes the import maps; any other is reported as dropped.
const PRODUCT_ATTRS: [&str; 12] = [
    "id",
    "currency",
    "code_on_card",
    "producer_code_standard",
    "type",
    "vat",
    "site",
    "removed",
    "EAN",
    "ean",
    "code_producer",
    "code",
];

/// Everything gathered while reading: dictionaries by id, products, notes.
/// Where mapped products go instead of being held, when the caller streams them.
pub(super) type Sink<'a> = &'a mut dyn FnMut(Record) -> Result<(), String>;

pub(super) struct Import<'a> {
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
    /// Interior mutability so that `&self` helpers (texts, prices) can count what they map.
    pub(super) report: RefCell<Report>,
    pub(super) notes: Vec<String>,
    pub(super) skipped: Vec<String>,
    pub(super) products: Vec<Record>,
    pub(super) site: Option<u32>,
    pub(super) options: ImportOptions,
    /// `products@currency`, once read.
    pub(super) currency: Option<String>,
    /// Units of the current product's currency per base unit; `None` when it is the base.
    pub(super) rate: Option<Decimal>,
    /// The product being mapped, for the report's examples.
    pub(super) current: String,
    /// Products handed on as they are mapped (memory stays flat), else held in `products`.
    pub(super) sink: Option<Sink<'a>>,
}

impl<'a> Import<'a> {
    pub(super) fn new(options: ImportOptions, sink: Option<Sink<'a>>) -> Self {
        Import {
            ids: Ids::default(),
            lang: "pol".into(),
            dicts: Dictionaries::default(),
            params: BTreeMap::new(),
            values: HashMap::new(),
            size_groups: BTreeMap::new(),
            light_stock: HashMap::new(),
            light_sizes: HashMap::new(),
            report: RefCell::new(Report::default()),
            notes: Vec::new(),
            skipped: Vec::new(),
            products: Vec::new(),
            site: None,
            options,
            currency: None,
            rate: None,
            current: String::new(),
            sink,
        }
    }

    pub(super) fn mapped(&self, field: &str) {
        self.report.borrow_mut().mapped(field);
    }

    pub(super) fn converted(&self, field: &str) {
        self.report.borrow_mut().converted(field);
    }

    pub(super) fn derived(&self, field: &str) {
        self.report.borrow_mut().derived(field);
    }

    /// A value not carried into the catalog; the example is prefixed with the product.
    pub(super) fn dropped(&self, field: &str, example: impl FnOnce() -> String) {
        let current = &self.current;
        self.report.borrow_mut().dropped(field, || {
            if current.is_empty() {
                example()
            } else {
                format!("product {current}: {}", example())
            }
        });
    }

    pub(super) fn texts(&self, node: &Node, child: &str) -> Texts {
        let mut t = Texts::new();
        for n in node.kids(child) {
            let text = n.trimmed();
            if text.is_empty() {
                continue;
            }
            // A text without xml:lang is in the offer's language.
            let lang = match n.attr(&["xml:lang"]) {
                None => self.lang.clone(),
                Some(raw) => match language(raw) {
                    Some((lang, derived)) => {
                        if derived {
                            self.derived(&format!("{}/{child}@xml:lang", node.name));
                        }
                        lang
                    }
                    None => {
                        self.dropped(&format!("{}/{child}@xml:lang", node.name), || {
                            format!("{raw:?} is not a language code: {text:.40}")
                        });
                        continue;
                    }
                },
            };
            self.mapped(&format!("{}/{child}", node.name));
            t.entry(lang).or_insert_with(|| text.to_string());
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

    /// An element the import has no place for.
    pub(super) fn unmapped(&mut self, what: String) {
        self.dropped(&what, || "not mapped".to_string());
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
                    let mut stock: Vec<StockLevel> = Vec::new();
                    for st in s.kids("stock") {
                        let warehouse = st.attr(&["id"]).map(str::trim).filter(|w| !w.is_empty());
                        let quantity = st.attr(&["quantity"]).and_then(decimal);
                        let (Some(warehouse), Some(quantity)) = (warehouse, quantity) else {
                            self.report.borrow_mut().dropped(
                                "light.xml product/sizes/size/stock",
                                || format!("product {id}: a <stock> without a warehouse id or a quantity"),
                            );
                            continue;
                        };
                        stock.push(StockLevel {
                            warehouse: self.ids.warehouse(warehouse),
                            quantity,
                            physical: None,
                            location: None,
                        });
                    }
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
                let products = stream.context.get("products").cloned().unwrap_or_default();
                self.offer_attributes(&path, &products)?;
            }
            self.rate = self.rate_for(&path, at, node.attr(&["currency"]))?;
            self.current = node.attr(&["id"]).unwrap_or("").trim().to_string();
            match self.product(&node) {
                Ok(record) => {
                    let mut report = self.report.borrow_mut();
                    match record {
                        Record::DeleteProduct { .. } => report.deleted += 1,
                        _ => report.products += 1,
                    }
                    drop(report);
                    match self.sink.as_mut() {
                        Some(sink) => sink(record).map_err(|message| IofError::Sink {
                            path: path.clone(),
                            position: at,
                            message,
                        })?,
                        None => self.products.push(record),
                    }
                }
                Err(message) => {
                    self.report.borrow_mut().products_skipped += 1;
                    self.dropped("product", || format!("at {at}: {message}"));
                    self.skipped.push(format!(
                        "{}: product at {at} skipped: {message}",
                        path.display()
                    ));
                }
            }
            self.current.clear();
        }
        Ok(())
    }

    /// `products@language` and `products@currency`: an unknown language or a currency
    /// without a rate stops the import (texts and prices would be published mislabelled).
    fn offer_attributes(
        &mut self,
        path: &Path,
        attrs: &[(String, String)],
    ) -> Result<(), IofError> {
        for (k, v) in attrs {
            match k.as_str() {
                "language" => match language(v) {
                    Some((lang, derived)) => {
                        if derived {
                            self.derived("products@language");
                            self.notes.push(format!(
                                "products@language {v:?} read as {lang:?} (IOF's three letters)"
                            ));
                        } else {
                            self.mapped("products@language");
                        }
                        self.lang = lang;
                    }
                    None => {
                        return Err(IofError::Invalid {
                            path: path.to_path_buf(),
                            position: Position::START,
                            message: format!(
                                "products@language {v:?} is not a language code (ISO 639-1 like en, or 639-2 like eng)"
                            ),
                        })
                    }
                },
                "currency" => {
                    self.currency = Some(v.trim().to_ascii_uppercase());
                    self.mapped("products@currency");
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The rate for a product's prices (its own `currency`, else the offer's), checked once.
    fn rate_for(
        &mut self,
        path: &Path,
        at: Position,
        own: Option<&str>,
    ) -> Result<Option<Decimal>, IofError> {
        let currency = match own.map(|c| c.trim().to_ascii_uppercase()) {
            Some(c) if !c.is_empty() => c,
            _ => match &self.currency {
                Some(c) => c.clone(),
                None => return Ok(None),
            },
        };
        let base = &self.options.base_currency;
        if currency == *base {
            return Ok(None);
        }
        let Some(rate) = self.options.rates.get(&currency).copied() else {
            return Err(IofError::NoRate {
                path: path.to_path_buf(),
                position: at,
                currency,
                base: base.clone(),
            });
        };
        let mut report = self.report.borrow_mut();
        if report.conversion.is_none() {
            report.conversion = Some(Conversion {
                from: currency.clone(),
                to: base.clone(),
                rate,
            });
            drop(report);
            self.notes.push(format!(
                "prices converted from {currency} to {base} at {rate} {currency} per 1 {base} ([currencies] setting)"
            ));
        } else if report
            .conversion
            .as_ref()
            .is_some_and(|c| c.from != currency)
        {
            drop(report);
            let note = format!("some products' prices are in {currency}: converted at {rate}");
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
        Ok(Some(rate))
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
        let vat = match node.attr(&["vat"]) {
            Some(raw) => {
                self.mapped("product@vat");
                super::dialect::vat(raw)
                    .ok_or_else(|| format!("vat {raw:?} is not a rate between 0 and 100"))?
            }
            None => {
                self.derived("product@vat");
                Decimal::from(23)
            }
        };
        for (k, v) in &node.attrs {
            if !PRODUCT_ATTRS.contains(&k.as_str()) && !k.starts_with("xmlns") {
                self.dropped(&format!("product@{k}"), || format!("{v:?}"));
            }
        }
        let non_empty = |names: &[&str]| {
            node.attr(names)
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
        };
        let codes = ProductCodes {
            ean: non_empty(&["EAN", "ean"]),
            code_producer: non_empty(&["code_producer"]),
        };
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
            code: non_empty(&["code_on_card"]),
            producer_code_standard: code_standard(node.attr(&["producer_code_standard"])),
            prices: self.prices(node, "product", vat)?,
            ..Product::empty(id)
        };
        // A product-level `code` is the supplier's code: IOF's code_on_card.
        if let Some(code) = non_empty(&["code"]) {
            match &p.code {
                None => {
                    self.mapped("product@code");
                    p.code = Some(code);
                }
                Some(c) if *c == code => self.mapped("product@code"),
                Some(c) => self.dropped("product@code", || {
                    format!("{code:?} (code_on_card is {c:?})")
                }),
            }
        }
        for child in &node.children {
            if child.ext {
                self.unmapped(format!("product/iaiext:{}", child.name));
                continue;
            }
            if PRODUCT_CHILDREN.contains(&child.name.as_str()) {
                self.mapped(&format!("product/{}", child.name));
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
                "category" => p.category = self.category(child),
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
                    let price =
                        self.price(child.kid("price"), "product/promotion/price", vat, false)?;
                    p.promotion = child.attr(&["name"]).and_then(|name| {
                        Some(Promotion {
                            name: name.to_string(),
                            start_date: self.promotion_date(child, "start_date"),
                            ending_date: self.promotion_date(child, "ending_date"),
                            price: price?,
                        })
                    });
                    if child.kid("shown_in_the_zone").is_some() {
                        self.unmapped("product/promotion/shown_in_the_zone".into());
                    }
                }
                "sizes" => self.sizes(child, &raw_id, &mut p)?,
                "images" => self.images(child, &mut p),
                "parameters" => p.parameters = self.parameters(child),
                "attachments" => p.attachments = self.attachments(child),
                "group" => p.group = self.group(child),
                "bundled" => p.bundled = self.bundled(child),
                other => self.unmapped(format!("product/{other}")),
            }
        }
        self.place_product_codes(codes, &mut p);
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
        // `<description><description>`: other generators' long description.
        let nested = self.texts(node, "description");
        for (lang, text) in nested {
            match d.long_desc.entry(lang) {
                std::collections::btree_map::Entry::Occupied(e) => {
                    let lang = e.key().clone();
                    self.dropped("product/description/description", || {
                        format!("{lang}: the product also has a long_desc")
                    });
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    self.mapped("product/description/description");
                    e.insert(text);
                }
            }
        }
        if let Some(v) = node.kid("version") {
            d.version = self.names(v);
        }
        for c in &node.children {
            let known = ["name", "short_desc", "long_desc", "description", "version"];
            if c.ext {
                self.unmapped(format!("product/description/iaiext:{}", c.name));
            } else if !known.contains(&c.name.as_str()) {
                self.unmapped(format!("product/description/{}", c.name));
            }
        }
        d
    }

    /// A promotion date as IOF writes it (an NMTOKEN: `2025-06-14`, or with `T` and a time).
    fn promotion_date(&self, node: &Node, name: &str) -> Option<String> {
        let raw = node.attr(&[name])?.trim();
        if raw.is_empty() {
            return None;
        }
        let field = format!("product/promotion@{name}");
        match date_time(raw) {
            Some((dt, _)) => {
                let out = match dt.strip_suffix(" 00:00:00") {
                    Some(day) => day.to_string(),
                    None => dt.replace(' ', "T"),
                };
                if out == raw {
                    self.mapped(&field);
                } else {
                    self.converted(&field);
                }
                Some(out)
            }
            None => {
                self.dropped(&field, || format!("{raw:?} is not a date"));
                None
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
        let mut report = self.report.into_inner();
        for (kind, _) in self.ids.mapped.keys() {
            report.derived(&format!("{kind} id"));
        }
        Offer {
            records,
            notes,
            skipped: self.skipped,
            report,
        }
    }
}
