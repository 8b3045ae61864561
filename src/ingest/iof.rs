//! IOF 3.0 offers read back into catalog records, so a supplier moving from another platform
//! can start from the feed it already publishes.
//!
//! Input: a directory holding full.xml (and, when present, light.xml, gateway.xml and the
//! reference files), a full.xml whose companions sit beside it, or a gateway file on local
//! disk naming them. full.xml and light.xml are stream-parsed with quick-xml one `<product>`
//! at a time, so memory does not grow with the file; reference files are small and read whole.
//!
//! Mapping decisions:
//! - **Dialects.** Core elements are matched by local name in any namespace (no prefix or the
//!   default IOF namespace); `iaiext:` elements are extensions. `parameter type="section"` and
//!   `<section>` are both sections; `changed` and `date_changed` are both image dates;
//!   `code_external` and `iaiext:code_external` are both the ERP code; decimals may use a
//!   comma. A `<product removed="yes">` (change files) becomes a deletion.
//! - **Ids.** Product ids must be positive integers in iofd: an id that is not one is mapped
//!   to `2^52 + (blake3("product:" + id) mod 2^52)`, deterministic, and reported. Dictionary
//!   ids likewise (warehouses into `2^31 + ..`).
//! - **Prices** come from full.xml (base prices in `products@currency`); light.xml prices are
//!   the partner's (discounts applied) and are not imported. A zero srp or strikethrough
//!   price means "none". **Stock** comes from light.xml when it lists the size (it is the
//!   fresher file), else from full.xml; light's one-size `id="0"` joins full's `uniw`.
//! - **Dictionaries** come from the reference files, completed by what full.xml says inline
//!   (names in the offer language, parameter values and their contexts, size groups).
//! - Everything else (IdoSell category taxonomy, promotions' zones, iaiext extensions, ...)
//!   is counted and reported as not mapped.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::catalog::{
    Address, Attachment, AttachmentEnable, AttachmentType, AttachmentVersion, BundleType, Bundled,
    BundledComponent, Category, CodeStandard, ComponentChoice, Decimal, Description, Dictionaries,
    Group, Icons, Image, Parameter, ParameterKind, ParameterValue, Price, Prices, Producer,
    Product, ProductParameter, ProductType, Promotion, Record, Series, Shop, Size, SizeDef,
    SizeGroup, StockLevel, Texts, Unit, Warehouse, Warranty, WarrantyType,
};

/// An offer mapped to records (dictionaries first, then products), with notes on what was
/// not mapped or was changed (ids).
#[derive(Debug, Default)]
pub struct Offer {
    pub records: Vec<Record>,
    pub notes: Vec<String>,
}

/// Why an offer cannot be read at all. Positions are byte offsets in the file.
#[derive(Debug, thiserror::Error)]
pub enum IofError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: invalid XML at byte {position}: {message}", path.display())]
    Xml {
        path: PathBuf,
        position: u64,
        message: String,
    },
    #[error("{}: at byte {position}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        position: u64,
        message: String,
    },
    #[error("{}: no full.xml found (give a directory holding full.xml, a full.xml, or a gateway file)", path.display())]
    NoFull { path: PathBuf },
}

// ---------------------------------------------------------------------------------------
// A small element tree, for one product or one reference file at a time.

/// One element: local name, whether it is an `iaiext:` extension, attributes by qualified
/// name, children and text.
#[derive(Debug, Default, Clone)]
struct Node {
    name: String,
    ext: bool,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.attrs
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        })
    }

    /// Core (non-extension) children named `name`.
    fn kids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children
            .iter()
            .filter(move |c| !c.ext && c.name == name)
    }

    fn kid(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| !c.ext && c.name == name)
    }

    fn trimmed(&self) -> &str {
        self.text.trim()
    }
}

fn split_name(qname: &[u8]) -> (bool, String) {
    let s = String::from_utf8_lossy(qname);
    match s.split_once(':') {
        Some((prefix, local)) => (prefix == "iaiext", local.to_string()),
        None => (false, s.into_owned()),
    }
}

fn start_node(e: &BytesStart, path: &Path, position: u64) -> Result<Node, IofError> {
    let (ext, name) = split_name(e.name().as_ref());
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| IofError::Xml {
            path: path.to_path_buf(),
            position,
            message: err.to_string(),
        })?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| IofError::Xml {
                path: path.to_path_buf(),
                position,
                message: err.to_string(),
            })?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name,
        ext,
        attrs,
        ..Node::default()
    })
}

/// Streams the elements at `target` (a path of local names from the root) as trees.
struct Stream<R: BufRead> {
    reader: Reader<R>,
    path: PathBuf,
    buf: Vec<u8>,
    stack: Vec<String>,
    target: &'static [&'static str],
    /// Attributes of the elements on the stack, by local name (for `products@language`).
    pub context: HashMap<String, Vec<(String, String)>>,
}

const MAX_DEPTH: usize = 64;

impl<R: BufRead> Stream<R> {
    fn new(reader: R, path: &Path, target: &'static [&'static str]) -> Self {
        let mut reader = Reader::from_reader(reader);
        reader.config_mut().trim_text(false);
        Stream {
            reader,
            path: path.to_path_buf(),
            buf: Vec::new(),
            stack: Vec::new(),
            target,
            context: HashMap::new(),
        }
    }

    fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn xml_error(&self, message: impl std::fmt::Display) -> IofError {
        IofError::Xml {
            path: self.path.clone(),
            position: self.position(),
            message: message.to_string(),
        }
    }

    /// The next target element and the byte offset where it started; `None` at the end.
    fn next_node(&mut self) -> Result<Option<(Node, u64)>, IofError> {
        loop {
            let at = self.position();
            self.buf.clear();
            let event = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| IofError::Xml {
                    path: self.path.clone(),
                    position: at,
                    message: e.to_string(),
                })?;
            match event {
                Event::Start(e) => {
                    let (_, name) = split_name(e.name().as_ref());
                    let mut path: Vec<&str> = self.stack.iter().map(String::as_str).collect();
                    path.push(&name);
                    if path == self.target {
                        let node = start_node(&e, &self.path, at)?;
                        let node = self.read_children(node)?;
                        return Ok(Some((node, at)));
                    }
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(self.xml_error("elements nested too deeply"));
                    }
                    let node = start_node(&e, &self.path, at)?;
                    self.context.insert(name.clone(), node.attrs);
                    self.stack.push(name);
                }
                Event::Empty(e) => {
                    let (_, name) = split_name(e.name().as_ref());
                    let mut path: Vec<&str> = self.stack.iter().map(String::as_str).collect();
                    path.push(&name);
                    if path == self.target {
                        return Ok(Some((start_node(&e, &self.path, at)?, at)));
                    }
                }
                Event::End(_) => {
                    self.stack.pop();
                }
                Event::Eof => {
                    if !self.stack.is_empty() {
                        return Err(self.xml_error(format!(
                            "the file ends inside <{}>",
                            self.stack.join("><")
                        )));
                    }
                    return Ok(None);
                }
                _ => {}
            }
        }
    }

    /// Read the content of `node` (whose start tag was just read) up to its end tag.
    fn read_children(&mut self, node: Node) -> Result<Node, IofError> {
        let mut open = vec![node];
        loop {
            let at = self.position();
            self.buf.clear();
            let event = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| IofError::Xml {
                    path: self.path.clone(),
                    position: at,
                    message: e.to_string(),
                })?;
            match event {
                Event::Start(e) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(self.xml_error("elements nested too deeply"));
                    }
                    open.push(start_node(&e, &self.path, at)?);
                }
                Event::Empty(e) => {
                    let child = start_node(&e, &self.path, at)?;
                    if let Some(top) = open.last_mut() {
                        top.children.push(child);
                    }
                }
                Event::Text(t) => {
                    let text = t.unescape().map_err(|e| e.to_string());
                    match text {
                        Ok(text) => {
                            if let Some(top) = open.last_mut() {
                                top.text.push_str(&text);
                            }
                        }
                        Err(e) => return Err(self.xml_error(e)),
                    }
                }
                Event::CData(c) => {
                    let text = std::str::from_utf8(&c)
                        .map(str::to_owned)
                        .map_err(|e| e.to_string());
                    match text {
                        Ok(text) => {
                            if let Some(top) = open.last_mut() {
                                top.text.push_str(&text);
                            }
                        }
                        Err(e) => return Err(self.xml_error(e)),
                    }
                }
                Event::End(_) => {
                    let Some(done) = open.pop() else {
                        return Err(self.xml_error("unbalanced end tag"));
                    };
                    match open.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Eof => {
                    return Err(self.xml_error("the file ends inside an element"));
                }
                _ => {}
            }
        }
    }
}

fn open(path: &Path) -> Result<std::io::BufReader<File>, IofError> {
    File::open(path)
        .map(|f| std::io::BufReader::with_capacity(256 << 10, f))
        .map_err(|source| IofError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The root element of a (small) file, whole.
fn read_document(path: &Path) -> Result<Node, IofError> {
    let mut reader = Reader::from_reader(open(path)?);
    let mut buf = Vec::new();
    loop {
        let at = reader.buffer_position();
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let node = start_node(&e, path, at)?;
                let mut stream = Stream {
                    reader,
                    path: path.to_path_buf(),
                    buf: Vec::new(),
                    stack: Vec::new(),
                    target: &[],
                    context: HashMap::new(),
                };
                return stream.read_children(node);
            }
            Ok(Event::Empty(e)) => return start_node(&e, path, at),
            Ok(Event::Eof) => {
                return Err(IofError::Xml {
                    path: path.to_path_buf(),
                    position: at,
                    message: "no root element".into(),
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(IofError::Xml {
                    path: path.to_path_buf(),
                    position: at,
                    message: e.to_string(),
                })
            }
        }
    }
}

/// The local name of a file's root element.
fn root_name(path: &Path) -> Result<String, IofError> {
    let mut reader = Reader::from_reader(open(path)?);
    let mut buf = Vec::new();
    loop {
        let at = reader.buffer_position();
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => return Ok(split_name(e.name().as_ref()).1),
            Ok(Event::Eof) => {
                return Err(IofError::Xml {
                    path: path.to_path_buf(),
                    position: at,
                    message: "no root element".into(),
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(IofError::Xml {
                    path: path.to_path_buf(),
                    position: at,
                    message: e.to_string(),
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Values.

/// A decimal as IOF writes it: `.` or `,` as the separator, surrounding spaces allowed.
fn decimal(s: &str) -> Option<Decimal> {
    let t = s.trim().replace(',', ".");
    if t.is_empty() {
        return None;
    }
    Decimal::from_str(&t)
        .or_else(|_| Decimal::from_scientific(&t))
        .ok()
}

/// The `vat` attribute of `node`: `None` when absent; an error when it is not a number or
/// not a rate (0 to 100), so a bad value is reported instead of replaced by a default.
fn vat_attr(node: &Node) -> Result<Option<Decimal>, String> {
    let Some(raw) = node.attr(&["vat"]) else {
        return Ok(None);
    };
    let vat = decimal(raw).ok_or_else(|| format!("{}: vat {raw:?} is not a number", node.name))?;
    crate::catalog::check_vat(vat).map_err(|e| format!("{}: {e}", node.name))?;
    Ok(Some(vat))
}

fn yes(s: Option<&str>) -> bool {
    matches!(
        s.map(str::trim),
        Some("y" | "yes" | "Y" | "YES" | "true" | "1")
    )
}

fn is_lang(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_lowercase())
}

/// Maps the ids of one kind to the integers iofd uses, reporting the ones it had to invent.
#[derive(Default)]
struct Ids {
    mapped: BTreeMap<(&'static str, String), u64>,
}

impl Ids {
    /// `positive`: 0 is not a valid id of this kind (products).
    fn id(&mut self, kind: &'static str, raw: &str, positive: bool) -> u64 {
        let raw = raw.trim();
        if let Ok(n) = raw.parse::<u64>() {
            if n > 0 || !positive {
                return n;
            }
        }
        *self
            .mapped
            .entry((kind, raw.to_string()))
            .or_insert_with(|| {
                let h = blake3::hash(format!("{kind}:{raw}").as_bytes());
                let mut b = [0u8; 8];
                b.copy_from_slice(&h.as_bytes()[..8]);
                (1u64 << 52) | (u64::from_le_bytes(b) & ((1u64 << 52) - 1))
            })
    }

    fn warehouse(&mut self, raw: &str) -> u32 {
        let raw = raw.trim();
        if let Ok(n) = raw.parse::<u32>() {
            return n;
        }
        let v = *self
            .mapped
            .entry(("warehouse", raw.to_string()))
            .or_insert_with(|| {
                let h = blake3::hash(format!("warehouse:{raw}").as_bytes());
                let mut b = [0u8; 4];
                b.copy_from_slice(&h.as_bytes()[..4]);
                u64::from((1u32 << 31) | (u32::from_le_bytes(b) & ((1u32 << 31) - 1)))
            });
        v as u32
    }

    fn notes(&self) -> Vec<String> {
        self.mapped
            .iter()
            .map(|((kind, raw), id)| {
                format!("{kind} id {raw:?} is not a positive integer; mapped to {id}")
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The import.

/// Where the files of an offer are.
#[derive(Debug, Default, Clone)]
struct Files {
    gateway: Option<PathBuf>,
    full: Option<PathBuf>,
    light: Option<PathBuf>,
    refs: HashMap<&'static str, PathBuf>,
}

const REFERENCE_KINDS: [&str; 8] = [
    "categories",
    "sizes",
    "producers",
    "units",
    "parameters",
    "stocks",
    "series",
    "warranties",
];

fn locate(path: &Path) -> Result<Files, IofError> {
    let mut files = Files::default();
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        match root_name(path)?.as_str() {
            "provider_description" => {
                files.gateway = Some(path.to_path_buf());
            }
            "offer" => files.full = Some(path.to_path_buf()),
            other => {
                return Err(IofError::Invalid {
                    path: path.to_path_buf(),
                    position: 0,
                    message: format!(
                        "root element <{other}>: expected an offer (full.xml) or a gateway"
                    ),
                })
            }
        }
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    let in_dir = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    if files.gateway.is_none() && files.full.is_none() {
        files.gateway = in_dir("gateway.xml");
    }
    if let Some(gw) = files.gateway.clone() {
        // The gateway names the files; on local disk a URL's last segment (or IdoSell's
        // `type=`) names a file beside the gateway.
        let doc = read_document(&gw)?;
        let local = |node: &Node, kind: &str| -> Option<PathBuf> {
            let url = node.attr(&["url"])?;
            let candidate = if let Some(p) = url.strip_prefix("file://") {
                PathBuf::from(p)
            } else if url.contains("://") {
                let query_type = url
                    .split(['?', '&'])
                    .find_map(|kv| kv.strip_prefix("type="));
                match query_type {
                    Some(t) => dir.join(format!("{t}.xml")),
                    None => dir.join(url.rsplit('/').next().unwrap_or(kind)),
                }
            } else {
                dir.join(url)
            };
            Some(candidate)
                .filter(|p| p.is_file())
                .or_else(|| in_dir(&format!("{kind}.xml")))
        };
        for child in &doc.children {
            match child.name.as_str() {
                "full" if files.full.is_none() => files.full = local(child, "full"),
                "light" => files.light = local(child, "light"),
                k => {
                    if let Some(kind) = REFERENCE_KINDS.iter().find(|r| **r == k) {
                        if let Some(p) = local(child, kind) {
                            files.refs.insert(kind, p);
                        }
                    }
                }
            }
        }
    }
    if files.full.is_none() {
        files.full = in_dir("full.xml");
    }
    if files.light.is_none() {
        files.light = in_dir("light.xml");
    }
    for kind in REFERENCE_KINDS {
        if !files.refs.contains_key(kind) {
            if let Some(p) = in_dir(&format!("{kind}.xml")) {
                files.refs.insert(kind, p);
            }
        }
    }
    if files.full.is_none() {
        return Err(IofError::NoFull {
            path: path.to_path_buf(),
        });
    }
    Ok(files)
}

/// Everything gathered while reading: dictionaries by id, products, notes.
struct Import {
    ids: Ids,
    lang: String,
    dicts: Dictionaries,
    /// Parameter ids defined as sections (parameters.xml and inline), to catch clashes.
    params: BTreeMap<u64, Parameter>,
    values: HashMap<u64, (Texts, Option<String>)>,
    size_groups: BTreeMap<u64, SizeGroup>,
    /// light.xml stock by (product id, size id or code).
    light_stock: HashMap<(String, String), Vec<StockLevel>>,
    /// Sizes light.xml lists per product, for joining one-size products.
    light_sizes: HashMap<String, Vec<String>>,
    unmapped: BTreeMap<String, usize>,
    notes: Vec<String>,
    products: Vec<Record>,
    site: Option<u32>,
}

/// Read an offer: a directory, a full.xml (companions beside it) or a gateway file.
pub fn read_offer(path: &Path) -> Result<Offer, IofError> {
    let files = locate(path)?;
    let mut im = Import::new();
    for kind in REFERENCE_KINDS {
        if let Some(p) = files.refs.get(kind) {
            let doc = read_document(p)?;
            if let Some(lang) = doc.attr(&["language"]).filter(|l| is_lang(l)) {
                im.lang = lang.to_string();
            }
            im.reference(kind, &doc);
        }
    }
    if let Some(light) = &files.light {
        im.read_light(light)?;
    }
    let full = files.full.clone().ok_or(IofError::NoFull {
        path: path.to_path_buf(),
    })?;
    im.read_full(&full)?;
    if let Some(gw) = &files.gateway {
        im.gateway(&read_document(gw)?);
    } else {
        im.notes
            .push("no gateway: no shop metadata imported".to_string());
    }
    Ok(im.finish())
}

impl Import {
    fn new() -> Self {
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

    fn texts(&self, node: &Node, child: &str) -> Texts {
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
    fn names(&self, node: &Node) -> Texts {
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

    fn unmapped(&mut self, what: String) {
        *self.unmapped.entry(what).or_default() += 1;
    }

    fn reference(&mut self, kind: &str, doc: &Node) {
        match kind {
            "categories" => {
                fn walk(im: &mut Import, node: &Node, parent: Option<u64>) {
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
                        // Saturating: a hostile period must not panic (it maps to 0 below).
                        Some("year" | "years") => number.saturating_mul(Decimal::from(12)),
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

    fn read_light(&mut self, path: &Path) -> Result<(), IofError> {
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

    fn read_full(&mut self, path: &Path) -> Result<(), IofError> {
        let stream = Stream::new(open(path)?, path, &["offer", "products", "product"]);
        self.read_products(stream)
    }

    fn read_products<R: BufRead>(&mut self, mut stream: Stream<R>) -> Result<(), IofError> {
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

    /// A price node; a hostile `vat` (outside 0..=100, or not a number) is an error naming
    /// the node, never a panic while completing the price.
    fn price(&self, node: Option<&Node>, zero_is_none: bool) -> Result<Option<Price>, String> {
        let Some(node) = node else { return Ok(None) };
        let net = node.attr(&["net"]).and_then(decimal);
        let gross = node.attr(&["gross"]).and_then(decimal);
        let vat = vat_attr(node)?.unwrap_or_default();
        let Some(price) = Price::from_parts(net, gross, vat)
            .map_err(|e| format!("{}: {}: {}", node.name, e.field, e.reason))?
        else {
            return Ok(None);
        };
        if zero_is_none && price.net.is_zero() && price.gross.is_zero() {
            return Ok(None);
        }
        Ok(Some(price))
    }

    fn prices(&self, node: &Node, vat: Decimal) -> Result<Prices, String> {
        let with_vat = |p: Option<Price>, n: Option<&Node>| -> Result<Option<Price>, String> {
            // A missing half is completed with the product's VAT.
            let (Some(_), Some(n)) = (p, n) else {
                return Ok(None);
            };
            let net = n.attr(&["net"]).and_then(decimal);
            let gross = n.attr(&["gross"]).and_then(decimal);
            Price::from_parts(net, gross, vat)
                .map_err(|e| format!("{}: {}: {}", n.name, e.field, e.reason))
        };
        let price = node.kid("price");
        let srp = node.kid("srp");
        let sr = node.kid("strikethrough_retail_price");
        let sw = node.kid("strikethrough_wholesale_price");
        Ok(Prices {
            retail: with_vat(self.price(price, false)?, price)?,
            wholesale: None,
            srp: with_vat(self.price(srp, true)?, srp)?,
            strikethrough_retail: with_vat(self.price(sr, true)?, sr)?,
            strikethrough_wholesale: with_vat(self.price(sw, true)?, sw)?,
        })
    }

    fn product(&mut self, node: &Node) -> Result<Record, String> {
        let raw_id = node.attr(&["id"]).ok_or("no id")?.trim().to_string();
        let id = self.ids.id("product", &raw_id, true);
        if node.attr(&["removed"]).is_some_and(|r| r.trim() == "yes") {
            return Ok(Record::DeleteProduct { id });
        }
        if let Some(site) = node.attr(&["site"]).and_then(|s| s.trim().parse().ok()) {
            self.site.get_or_insert(site);
        }
        // Absent: the Polish standard rate, as IdoSell assumes. Present, it must be a rate.
        let vat = vat_attr(node)?.unwrap_or(Decimal::from(23));
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
            prices: self.prices(node, vat)?,
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
                    p.promotion = match child.attr(&["name"]) {
                        Some(name) => {
                            self.price(child.kid("price"), false)?
                                .map(|price| Promotion {
                                    name: name.to_string(),
                                    start_date: child.attr(&["start_date"]).map(str::to_owned),
                                    ending_date: child.attr(&["ending_date"]).map(str::to_owned),
                                    price,
                                })
                        }
                        None => None,
                    };
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
    fn light_for(
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

    fn description(&mut self, node: &Node) -> Description {
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

    fn sizes(&mut self, node: &Node, raw_id: &str, p: &mut Product) -> Result<(), String> {
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
                prices: self.prices(s, p.vat)?,
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

    fn image(&self, n: &Node) -> Option<Image> {
        Some(Image {
            url: n.attr(&["url"])?.trim().to_string(),
            md5: n.attr(&["hash"]).map(str::to_owned),
            changed: n.attr(&["changed", "date_changed"]).map(str::to_owned),
            width: n.attr(&["width"]).and_then(|w| w.trim().parse().ok()),
            height: n.attr(&["height"]).and_then(|h| h.trim().parse().ok()),
        })
    }

    fn images(&mut self, node: &Node, p: &mut Product) {
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

    fn parameters(&mut self, node: &Node) -> Vec<ProductParameter> {
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

    fn attachments(&mut self, node: &Node) -> Vec<Attachment> {
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

    fn group(&mut self, node: &Node) -> Option<Group> {
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

    fn bundled(&mut self, node: &Node) -> Option<Bundled> {
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

    fn gateway(&mut self, doc: &Node) {
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

    fn finish(mut self) -> Offer {
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

fn warranty_type(s: Option<&str>) -> WarrantyType {
    match s.map(str::trim) {
        Some("seller") => WarrantyType::Seller,
        Some("none") => WarrantyType::None,
        _ => WarrantyType::Producer,
    }
}

fn code_standard(s: Option<&str>) -> CodeStandard {
    match s.map(|x| x.trim().to_ascii_uppercase()).as_deref() {
        Some("GTIN14") => CodeStandard::Gtin14,
        Some("GTIN13") => CodeStandard::Gtin13,
        Some("GTIN12") => CodeStandard::Gtin12,
        Some("GTIN8") => CodeStandard::Gtin8,
        Some("ISBN13") => CodeStandard::Isbn13,
        Some("ISBN10") => CodeStandard::Isbn10,
        Some("UPCE") => CodeStandard::Upce,
        Some("MPN") => CodeStandard::Mpn,
        Some("OTHER") => CodeStandard::Other,
        _ => CodeStandard::Auto,
    }
}

/// Parse full.xml-shaped bytes (for fuzzing and tests): the products' records and notes.
pub fn read_full_bytes(bytes: &[u8]) -> Result<Offer, IofError> {
    let mut im = Import::new();
    let stream = Stream::new(
        bytes,
        Path::new("full.xml"),
        &["offer", "products", "product"],
    );
    im.read_products(stream)?;
    Ok(im.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{self, DictIndex, Format, OfferMeta, RenderProfile};
    use crate::store::{ApplyMode, Store, StoreOptions};

    fn examples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/iof/examples")
    }

    fn products(offer: &Offer) -> BTreeMap<u64, Product> {
        offer
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Product(p) => Some((p.id, (**p).clone())),
                _ => None,
            })
            .collect()
    }

    /// (size id, size code, prices, stock per warehouse) of one size.
    type EffectiveSize = (String, String, Prices, Vec<(u32, Decimal)>);

    /// A size's prices as a partner sees them: its own, else the product's.
    fn effective(p: &Product) -> Vec<EffectiveSize> {
        p.sizes
            .iter()
            .map(|s| {
                let pick =
                    |own: &Option<Price>, product: &Option<Price>| own.clone().or(product.clone());
                let prices = Prices {
                    retail: pick(&s.prices.retail, &p.prices.retail),
                    wholesale: None,
                    srp: pick(&s.prices.srp, &p.prices.srp),
                    strikethrough_retail: pick(
                        &s.prices.strikethrough_retail,
                        &p.prices.strikethrough_retail,
                    ),
                    strikethrough_wholesale: pick(
                        &s.prices.strikethrough_wholesale,
                        &p.prices.strikethrough_wholesale,
                    ),
                };
                let stock = s
                    .stock
                    .iter()
                    .map(|l| (l.warehouse, l.quantity.normalize()))
                    .collect();
                (s.id.clone(), s.code.clone(), prices, stock)
            })
            .collect()
    }

    #[test]
    fn the_official_example_offer_survives_import_and_republishing() {
        let original = read_offer(&examples()).expect("import");
        let before = products(&original);
        assert_eq!(
            before.keys().copied().collect::<Vec<_>>(),
            [33, 34, 35, 41, 42, 44, 45, 47]
        );
        assert!(
            original
                .notes
                .iter()
                .any(|n| n.contains("category_idosell")),
            "{:#?}",
            original.notes
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("store"), StoreOptions::default()).expect("open");
        store
            .apply(original.records.clone(), ApplyMode::FullSync)
            .expect("apply");
        let snapshot = store.snapshot();
        let profile = RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip: false,
            languages: vec!["pol".into(), "eng".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: Decimal::ZERO,
            wholesale: false,
            only_in_stock: false,
        };
        let when = jiff::civil::date(2026, 1, 1).at(0, 0, 0, 0);
        let meta = OfferMeta {
            generated: when,
            expires: when,
        };
        let dicts = DictIndex::new(snapshot.dicts());
        let out = dir.path().join("offer");
        std::fs::create_dir_all(&out).unwrap();
        let mut full = Vec::new();
        render::full(&mut full, &profile, &dicts, &meta, snapshot.products()).unwrap();
        let mut light = Vec::new();
        render::light(&mut light, &profile, &dicts, &meta, snapshot.products()).unwrap();
        std::fs::write(out.join("full.xml"), &full).unwrap();
        std::fs::write(out.join("light.xml"), &light).unwrap();
        crate::xsd::validate(crate::xsd::Schema::for_kind("full").unwrap(), &full)
            .expect("valid full.xml");

        let again = read_offer(&out).expect("re-import");
        let after = products(&again);
        assert_eq!(before.len(), after.len());
        for (id, a) in &before {
            let b = &after[id];
            assert_eq!(
                (a.kind, a.vat, &a.code),
                (b.kind, b.vat, &b.code),
                "product {id}"
            );
            assert_eq!(
                effective(a),
                effective(b),
                "product {id}: sizes, prices, stock"
            );
            assert_eq!(a.parameters, b.parameters, "product {id}: parameters");
            assert_eq!(a.bundled, b.bundled, "product {id}: bundle components");
            assert_eq!(
                (a.producer, a.category, a.unit, a.series, a.warranty),
                (b.producer, b.category, b.unit, b.series, b.warranty),
                "product {id}: dictionary references"
            );
            assert_eq!(
                a.description.name, b.description.name,
                "product {id}: names"
            );
            assert_eq!(a.images, b.images, "product {id}: images");
        }
        // Light's stock won over full's where they differ (product 33, warehouse 0).
        let s = &before[&33].sizes[0];
        assert_eq!(s.stock[0].quantity, Decimal::from(9));
    }

    #[test]
    fn a_gateway_on_local_disk_names_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let ex = examples();
        std::fs::copy(ex.join("full.xml"), dir.path().join("offer-full.xml")).unwrap();
        std::fs::copy(ex.join("light.xml"), dir.path().join("offer-light.xml")).unwrap();
        std::fs::copy(ex.join("producers.xml"), dir.path().join("producers.xml")).unwrap();
        let light_url = format!("file://{}", dir.path().join("offer-light.xml").display());
        let gateway = format!(
            r#"<provider_description file_format="IOF" version="3.0"><meta><long_name>Shop</long_name><short_name>shop</short_name></meta>
<full url="offer-full.xml" hash="x"/><light url="{light_url}"/>
<producers url="https://example.com/edi/export-offer.php?client=a&amp;type=producers&amp;iof_3_0"/></provider_description>"#
        );
        let gw = dir.path().join("gw.xml");
        std::fs::write(&gw, gateway).unwrap();
        let offer = read_offer(&gw).expect("import through the gateway");
        let products = products(&offer);
        assert_eq!(products.len(), 8);
        assert_eq!(
            products[&33].sizes[0].stock[0].quantity,
            Decimal::from(9),
            "light.xml was read"
        );
        assert!(offer
            .records
            .iter()
            .any(|r| matches!(r, Record::Shop(s) if s.short_name == "shop")));
        let producers = offer
            .records
            .iter()
            .filter(|r| matches!(r, Record::Producer(_)))
            .count();
        assert!(producers > 8, "producers.xml was read: {producers}");
        let e = read_offer(dir.path().join("nothing-here").as_path()).unwrap_err();
        assert!(matches!(e, IofError::Io { .. }), "{e}");
    }

    #[test]
    fn a_hostile_warranty_period_does_not_panic_the_import() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("full.xml"),
            r#"<offer file_format="IOF" version="3.0"><products language="pol"><product id="1" vat="23"><description><name>A</name></description><warranty id="1"/></product></products></offer>"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("warranties.xml"),
            r#"<warranties file_format="IOF" version="3.0" language="pol"><warranty id="1" name="Wieczna"><terms type="producer" period_number="70000000000000000000000000000" period_unit="years"/></warranty></warranties>"#,
        )
        .unwrap();
        let offer = read_offer(dir.path()).expect("read");
        assert!(offer
            .records
            .iter()
            .any(|r| matches!(r, Record::Warranty(w) if w.period_months == 0)));
    }

    #[test]
    fn dialects_and_odd_ids_are_accepted_and_reported() {
        let xml = r#"<?xml version="1.0"?>
<offer xmlns="http://www.iai-shop.com/developers/iof.phtml" xmlns:iaiext="http://www.iai-shop.com/developers/iof/extensions.phtml" file_format="IOF" version="3.0">
<products language="eng" currency="EUR">
 <product id="ABC-1" vat="8,0" type="regular">
  <description><name>Mug</name></description>
  <price net="10,50"/>
  <parameters>
   <section id="5" name="Main"/>
   <parameter type="parameter" id="6" name="Colour" iaiext:context_id="CONTEXT_X"><value id="7" name="red"/></parameter>
  </parameters>
  <images><large><image url="http://x/1.jpg" date_changed="2020-01-01 00:00:00"/></large></images>
  <sizes><size id="uniw" code="ABC-1-uniw" iaiext:code_external="E1"><stock id="1" quantity="2,5"/></size></sizes>
  <iaiext:meta_title>t</iaiext:meta_title>
 </product>
 <product id="9" removed="yes"/>
</products>
</offer>"#;
        let offer = read_full_bytes(xml.as_bytes()).expect("parse");
        let p = match &offer
            .records
            .iter()
            .find(|r| matches!(r, Record::Product(_)))
        {
            Some(Record::Product(p)) => (**p).clone(),
            _ => panic!("{:?}", offer.records),
        };
        assert!(p.id >= 1 << 52);
        assert!(offer
            .notes
            .iter()
            .any(|n| n.contains("\"ABC-1\"") && n.contains(&p.id.to_string())));
        assert_eq!(p.vat.to_string(), "8.0");
        let retail = p.prices.retail.clone().unwrap();
        assert_eq!(
            (retail.net.to_string(), retail.gross.to_string()),
            ("10.50".into(), "11.34".into())
        );
        assert_eq!(p.description.name["eng"], "Mug");
        assert_eq!(p.parameters.len(), 2);
        assert_eq!(p.images[0].changed.as_deref(), Some("2020-01-01 00:00:00"));
        assert_eq!(p.sizes[0].code_external.as_deref(), Some("E1"));
        assert_eq!(p.sizes[0].stock[0].quantity.to_string(), "2.5");
        assert!(offer.records.contains(&Record::DeleteProduct { id: 9 }));
        assert!(
            offer.notes.iter().any(|n| n.contains("iaiext:meta_title")),
            "{:?}",
            offer.notes
        );
        let params: Vec<&Parameter> = offer
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Parameter(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(params[0].kind, ParameterKind::Section);
        assert_eq!(params[1].context.as_deref(), Some("CONTEXT_X"));
    }

    #[test]
    fn broken_xml_is_an_error_with_a_position() {
        let e =
            read_full_bytes(b"<offer><products><product id=\"1\"><price></product>").unwrap_err();
        assert!(
            matches!(e, IofError::Xml { position, .. } if position > 0),
            "{e}"
        );
        let e = read_full_bytes(b"<offer><products><product id=\"1\">").unwrap_err();
        assert!(e.to_string().contains("ends inside"), "{e}");
    }
}
