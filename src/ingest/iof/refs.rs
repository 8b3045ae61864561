//! Reference files (categories.xml, producers.xml, ...) and the gateway's shop metadata.

use crate::catalog::{
    Address, Category, Decimal, Parameter, ParameterKind, Producer, Series, Shop, SizeDef,
    SizeGroup, Unit, Warehouse, Warranty,
};

use super::dialect::{decimal, warranty_type};
use super::map::Import;
use super::reader::Node;

impl Import<'_> {
    pub(super) fn reference(&mut self, kind: &str, doc: &Node) {
        match kind {
            "categories" => {
                fn walk(im: &mut Import<'_>, node: &Node, parent: Option<u64>) {
                    for c in node.kids("category") {
                        let Some(raw) = c.attr(&["id"]) else { continue };
                        let id = im.ids.id("category", raw, false);
                        let name = im.names(c);
                        if !name.is_empty() {
                            im.dicts.categories.push(Category { id, parent, name });
                        }
                        walk(im, c, Some(id));
                    }
                }
                walk(self, doc, None);
            }
            "producers" => {
                for p in doc.kids("producer") {
                    let (Some(raw), Some(name)) = (p.attr(&["id"]), p.attr(&["name"])) else {
                        continue;
                    };
                    let id = self.ids.id("producer", raw, false);
                    if !name.trim().is_empty() {
                        self.dicts.producers.push(Producer {
                            id,
                            name: name.trim().to_string(),
                        });
                    }
                }
            }
            "units" => {
                for u in doc.kids("unit") {
                    let Some(raw) = u.attr(&["id"]) else { continue };
                    let id = self.ids.id("unit", raw, false);
                    let name = self.names(u);
                    let precision = u
                        .attr(&["precision"])
                        .and_then(|p| p.trim().parse().ok())
                        .unwrap_or(0);
                    if !name.is_empty() {
                        self.dicts.units.push(Unit {
                            id,
                            name,
                            precision,
                        });
                    }
                }
            }
            "series" => {
                for s in doc.kids("series") {
                    let Some(raw) = s.attr(&["id"]) else { continue };
                    let id = self.ids.id("series", raw, false);
                    let name = self.names(s);
                    if !name.is_empty() {
                        self.dicts.series.push(Series { id, name });
                    }
                }
            }
            "stocks" => {
                for s in doc.kids("stock") {
                    let Some(raw) = s.attr(&["id"]) else { continue };
                    let id = self.ids.warehouse(raw);
                    let name = self.names(s);
                    if !name.is_empty() {
                        self.dicts.warehouses.push(Warehouse { id, name });
                    }
                }
            }
            "warranties" => {
                for w in doc.kids("warranty") {
                    let Some(raw) = w.attr(&["id"]) else { continue };
                    let id = self.ids.id("warranty", raw, false);
                    let terms = w.kid("terms");
                    let kind = warranty_type(terms.and_then(|t| t.attr(&["type"])));
                    let number = terms
                        .and_then(|t| t.attr(&["period_number"]))
                        .and_then(decimal)
                        .unwrap_or_default();
                    let months = match terms.and_then(|t| t.attr(&["period_unit"])) {
                        Some("year" | "years") => {
                            number.checked_mul(Decimal::from(12)).unwrap_or_default()
                        }
                        Some("day" | "days") => (number / Decimal::from(30)).ceil(),
                        _ => number,
                    };
                    let name = self.names(w);
                    let description = self.texts(w, "description");
                    if !name.is_empty() {
                        self.dicts.warranties.push(Warranty {
                            id,
                            kind,
                            period_months: u32::try_from(months.trunc().mantissa()).unwrap_or(0),
                            name,
                            description,
                        });
                    }
                }
            }
            "sizes" => {
                for g in doc.kids("group") {
                    let Some(raw) = g.attr(&["id"]) else { continue };
                    let id = self.ids.id("size group", raw, false);
                    let sizes = g
                        .kids("size")
                        .filter_map(|s| {
                            Some(SizeDef {
                                id: s.attr(&["id"])?.trim().to_string(),
                                name: self.names(s),
                            })
                        })
                        .collect();
                    self.size_groups.insert(
                        id,
                        SizeGroup {
                            id,
                            name: g.attr(&["name"]).unwrap_or(raw).trim().to_string(),
                            sizes,
                        },
                    );
                }
            }
            "parameters" => {
                let lists = [("sections", "section"), ("parameters", "parameter")];
                for (list, item) in lists {
                    for l in doc.kids(list) {
                        for p in l.kids(item) {
                            let Some(raw) = p.attr(&["id"]) else { continue };
                            let id = self.ids.id("parameter", raw, false);
                            let kind = if item == "section" {
                                ParameterKind::Section
                            } else {
                                ParameterKind::Parameter
                            };
                            self.params.insert(
                                id,
                                Parameter {
                                    id,
                                    kind,
                                    name: self.names(p),
                                    description: self.texts(p, "description"),
                                    priority: 0,
                                    context: None,
                                    distinction: false,
                                    group_distinction: false,
                                    hide: false,
                                    auction_template_hide: false,
                                    values: Vec::new(),
                                },
                            );
                        }
                    }
                }
                for l in doc.kids("values") {
                    for v in l.kids("value") {
                        let Some(raw) = v.attr(&["id"]) else { continue };
                        let id = self.ids.id("parameter value", raw, false);
                        let name = self.names(v);
                        self.values.insert(id, (name, None));
                    }
                }
            }
            _ => {}
        }
    }
    pub(super) fn gateway(&mut self, doc: &Node) {
        let Some(meta) = doc.kid("meta") else {
            self.notes
                .push("the gateway has no <meta>: no shop metadata imported".into());
            return;
        };
        let text = |name: &str| {
            meta.kid(name)
                .map(|n| n.trimmed().to_string())
                .unwrap_or_default()
        };
        let address = meta.kid("address");
        let part = |name: &str| {
            address
                .and_then(|a| a.kid(name))
                .map(|n| n.trimmed().to_string())
                .unwrap_or_default()
        };
        let id = self.site.unwrap_or(1).max(1);
        self.dicts.shops.push(Shop {
            id,
            long_name: text("long_name"),
            short_name: text("short_name"),
            logo_url: meta
                .kid("showcase_image")
                .and_then(|i| i.attr(&["url"]))
                .map(str::to_owned),
            email: text("email"),
            tel: text("tel"),
            fax: text("fax"),
            www: text("www"),
            address: Address {
                street: part("street"),
                zipcode: part("zipcode"),
                city: part("city"),
                country: part("country"),
                province: part("province"),
            },
        });
    }
}
