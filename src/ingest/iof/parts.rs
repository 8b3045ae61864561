//! Product parts with their own shape: images, parameters, attachments, groups, bundles.

use crate::catalog::{
    Attachment, AttachmentEnable, AttachmentType, AttachmentVersion, BundleType, Bundled,
    BundledComponent, Category, ComponentChoice, Decimal, Group, Icons, Image, Parameter,
    ParameterKind, ParameterValue, Product, ProductParameter, Texts,
};

use super::dialect::{date_time, decimal, yes, Ids};
use super::map::Import;
use super::reader::Node;

/// The hierarchy separator a category name uses, if any: whichever of `/` and `\\` comes first.
fn separator(name: &str) -> Option<char> {
    name.find(['/', '\\'])
        .and_then(|i| name[i..].chars().next())
}

impl Import<'_> {
    /// `<category id name>`: a name like `Home/Kitchen/Mugs` (or with `\\`) is a path; its
    /// parents get ids derived from their path (`Ids::hashed("category path", "Home/Kitchen")`),
    /// so every product naming the same path shares them and re-imports keep them.
    pub(super) fn category(&mut self, node: &Node) -> Option<u64> {
        let names = self.names(node);
        let lead = names
            .get(&self.lang)
            .or_else(|| names.values().next())
            .cloned();
        let id = match (node.attr(&["id"]).map(str::trim), &lead) {
            (Some(raw), _) if !raw.is_empty() => {
                self.mapped("product/category@id");
                self.ids.id("category", raw, false)
            }
            (_, Some(path)) => {
                self.derived("product/category@id");
                Ids::hashed("category path", path)
            }
            _ => return None,
        };
        if self.dicts.categories.iter().any(|x| x.id == id) || names.is_empty() {
            return Some(id);
        }
        let split = |t: &str| -> Vec<String> {
            match separator(t) {
                Some(sep) => t
                    .split(sep)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => vec![t.trim().to_string()],
            }
        };
        let paths: Vec<(String, Vec<String>)> =
            names.iter().map(|(l, t)| (l.clone(), split(t))).collect();
        let depth = paths[0].1.len();
        let lead = lead.map(|l| split(&l)).unwrap_or_default();
        if depth < 2 || paths.iter().any(|(_, p)| p.len() != depth) || lead.len() != depth {
            if depth >= 2 {
                self.dropped("product/category@name", || {
                    "the languages' paths differ in depth: kept as one name".to_string()
                });
            } else {
                self.mapped("product/category@name");
            }
            self.dicts.categories.push(Category {
                id,
                parent: None,
                name: names,
            });
            return Some(id);
        }
        self.derived("product/category@name");
        let mut parent = None;
        for level in 0..depth - 1 {
            let pid = Ids::hashed("category path", &lead[..=level].join("/"));
            if !self.dicts.categories.iter().any(|x| x.id == pid) {
                let name = paths
                    .iter()
                    .map(|(l, p)| (l.clone(), p[level].clone()))
                    .collect();
                self.dicts.categories.push(Category {
                    id: pid,
                    parent,
                    name,
                });
            }
            parent = Some(pid);
        }
        let name = paths
            .iter()
            .map(|(l, p)| (l.clone(), p[depth - 1].clone()))
            .collect();
        self.dicts.categories.push(Category { id, parent, name });
        Some(id)
    }

    pub(super) fn image(&self, n: &Node) -> Option<Image> {
        Some(Image {
            url: n.attr(&["url"])?.trim().to_string(),
            md5: n.attr(&["hash"]).map(str::to_owned),
            changed: n.attr(&["changed", "date_changed"]).map(|raw| {
                // Another shape (`14.06.2025 13:06`) is rewritten as IOF's; a value that is
                // no date is kept as written (the attribute is free text in the schema).
                match date_time(raw) {
                    Some((d, true)) => {
                        self.converted("product/images/image@changed");
                        d
                    }
                    _ => {
                        self.mapped("product/images/image@changed");
                        raw.to_string()
                    }
                }
            }),
            width: n.attr(&["width"]).and_then(|w| w.trim().parse().ok()),
            height: n.attr(&["height"]).and_then(|h| h.trim().parse().ok()),
        })
    }

    pub(super) fn images(&mut self, node: &Node, p: &mut Product) {
        for large in node.kids("large") {
            p.images
                .extend(large.kids("image").filter_map(|i| self.image(i)));
        }
        if let Some(icons) = node.kid("icons") {
            p.icons = Icons {
                icon: icons.kid("icon").and_then(|i| self.image(i)),
                auction_icon: icons.kid("auction_icon").and_then(|i| self.image(i)),
                group_icon: icons.kid("group_icon").and_then(|i| self.image(i)),
            };
        }
    }

    pub(super) fn parameters(&mut self, node: &Node) -> Vec<ProductParameter> {
        let mut out = Vec::new();
        for c in &node.children {
            if c.ext || !(c.name == "parameter" || c.name == "section") {
                self.unmapped(format!("parameters/{}", c.name));
                continue;
            }
            let Some(raw) = c.attr(&["id"]) else { continue };
            let id = self.ids.id("parameter", raw, false);
            let section =
                c.name == "section" || c.attr(&["type"]).map(str::trim) == Some("section");
            let kind = if section {
                ParameterKind::Section
            } else {
                ParameterKind::Parameter
            };
            let name = self.names(c);
            let context = c
                .attr(&["context_id", "iaiext:context_id"])
                .map(str::to_owned);
            let entry = self.params.entry(id).or_insert_with(|| Parameter {
                id,
                kind,
                name: name.clone(),
                description: Texts::new(),
                priority: 0,
                context: None,
                distinction: false,
                group_distinction: false,
                hide: false,
                auction_template_hide: false,
                values: Vec::new(),
            });
            if entry.kind != kind {
                let note = format!(
                    "parameter {id} is used both as a section and as a parameter; kept as {:?}",
                    entry.kind
                );
                if !self.notes.contains(&note) {
                    self.notes.push(note);
                }
                continue;
            }
            for (lang, text) in name {
                entry.name.entry(lang).or_insert(text);
            }
            entry.priority = c
                .attr(&["priority"])
                .and_then(|x| x.trim().parse().ok())
                .unwrap_or(entry.priority);
            entry.context = entry.context.take().or(context);
            entry.distinction |= yes(c.attr(&["distinction"]));
            entry.group_distinction |= yes(c.attr(&["group_distinction"]));
            entry.hide |= yes(c.attr(&["hide"]));
            entry.auction_template_hide |= yes(c.attr(&["auction_template_hide"]));
            let mut values = Vec::new();
            for v in c.kids("value") {
                let Some(raw) = v.attr(&["id"]) else { continue };
                let vid = self.ids.id("parameter value", raw, false);
                values.push(vid);
                if !entry.values.iter().any(|x| x.id == vid) {
                    let mut vname = Texts::new();
                    if let Some(n) = v.attr(&["name"]).map(str::trim).filter(|n| !n.is_empty()) {
                        vname.insert(self.lang.clone(), n.to_string());
                    }
                    if let Some((names, _)) = self.values.get(&vid) {
                        for (l, t) in names {
                            vname.entry(l.clone()).or_insert_with(|| t.clone());
                        }
                    }
                    entry.values.push(ParameterValue {
                        id: vid,
                        name: vname,
                        context: v
                            .attr(&["context_id", "iaiext:context_id"])
                            .map(str::to_owned),
                    });
                }
            }
            out.push(ProductParameter { id, values });
        }
        out
    }

    pub(super) fn attachments(&mut self, node: &Node) -> Vec<Attachment> {
        node.kids("file")
            .filter_map(|f| {
                let limitation = f.kid("limitation");
                Some(Attachment {
                    url: f.attr(&["url"])?.trim().to_string(),
                    name: self.names(f),
                    version: match f.attr(&["version"]).map(str::trim) {
                        Some("sample") => AttachmentVersion::Sample,
                        Some("demo") => AttachmentVersion::Demo,
                        _ => AttachmentVersion::Full,
                    },
                    enable: match f.attr(&["enable"]).map(str::trim) {
                        Some("only_logged") => AttachmentEnable::OnlyLogged,
                        Some("ordered") => AttachmentEnable::Ordered,
                        Some("wholesaler") => AttachmentEnable::Wholesaler,
                        Some("wholesaler_or_orderer" | "wholesaler_or_ordered") => {
                            AttachmentEnable::WholesalerOrOrdered
                        }
                        Some("wholesaler_and_ordered") => AttachmentEnable::WholesalerAndOrdered,
                        _ => AttachmentEnable::All,
                    },
                    file_type: match f.attr(&["attachment_file_type"]).map(str::trim) {
                        Some("image") => AttachmentType::Image,
                        Some("audio") => AttachmentType::Audio,
                        Some("video") => AttachmentType::Video,
                        Some("doc") => AttachmentType::Doc,
                        Some("document") => AttachmentType::Document,
                        _ => AttachmentType::Other,
                    },
                    extension: f.attr(&["attachment_file_extension"]).map(str::to_owned),
                    download_log: f.attr(&["download_log"]).map(|d| yes(Some(d))),
                    limit_downloads: limitation
                        .and_then(|l| l.attr(&["downloads"]))
                        .and_then(|x| x.trim().parse().ok()),
                    limit_days: limitation
                        .and_then(|l| l.attr(&["days"]))
                        .and_then(|x| x.trim().parse().ok()),
                })
            })
            .collect()
    }

    pub(super) fn group(&mut self, node: &Node) -> Option<Group> {
        let id = self.ids.id("group", node.attr(&["id"])?, false);
        let first = node
            .attr(&["first_product_id", "iaiext:first_product_id"])
            .map(|f| self.ids.id("product", f, true))
            .unwrap_or(0);
        let by = node.kid("group_by_parameter")?;
        let value = by.kid("product_value")?;
        Some(Group {
            id,
            first_product_id: first,
            by_parameter_id: by.attr(&["id"]).unwrap_or("").to_string(),
            by_parameter_name: self.texts(by, "name"),
            value_id: value.attr(&["id"]).unwrap_or("").to_string(),
            value_name: self.texts(value, "name"),
        })
    }

    pub(super) fn bundled(&mut self, node: &Node) -> Option<Bundled> {
        let kind = match node.attr(&["type"]).map(str::trim) {
            Some("specified") => BundleType::Specified,
            _ => BundleType::Unspecified,
        };
        let mut components = Vec::new();
        for c in node.kids("product") {
            let Some(raw) = c.attr(&["id"]) else { continue };
            let choice = match c.attr(&["type"]).map(str::trim) {
                Some("client_chooses_variant") => ComponentChoice::ClientChoosesVariant,
                Some("client_chooses_defined_size") => ComponentChoice::ClientChoosesDefinedSize,
                Some("client_chooses_defined_size_as_separate_items") => {
                    ComponentChoice::ClientChoosesDefinedSizeAsSeparateItems
                }
                _ => ComponentChoice::ClientChoosesSize,
            };
            components.push(BundledComponent {
                id: self.ids.id("product", raw, true),
                quantity: c
                    .attr(&["quantity"])
                    .and_then(decimal)
                    .unwrap_or(Decimal::ONE),
                choice,
                sizes: c
                    .kids("sizes")
                    .flat_map(|s| s.kids("size"))
                    .filter_map(|s| s.attr(&["id"]).map(|x| x.trim().to_string()))
                    .collect(),
            });
        }
        Some(Bundled { kind, components })
    }
}
