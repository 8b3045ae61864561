//! The IOF 3.0 reference files: categories, sizes, producers, units, parameters, series,
//! stocks (warehouses) and warranties, rendered from the snapshot's dictionaries.
//!
//! They are small and rendered once per snapshot and language set, so they go through
//! `quick_xml::Writer` (its escaping, its indentation) rather than the hand-tuned paths of
//! full.xml. The shape follows IdoSell's official examples: tab indentation, a multilingual
//! `<name xml:lang>` child per language, CDATA where the examples use it (units, stocks,
//! parameters, warranties), plain text elsewhere.
//!
//! Which texts appear: those in the requested languages, in that order; an entry that has
//! none of them keeps one text in the first language it does have, so nothing is nameless.
//! The `name` attribute is the text in the first requested language that the entry has.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use jiff::civil::DateTime;
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::RenderError;
use crate::catalog::{self, ArchivedDictionaries};

/// Written as `generated_by` on every root element.
const GENERATED_BY: &str = "iofd";

/// The language of an offer whose profile names none (as `RenderProfile::language`).
const DEFAULT_LANGUAGE: &str = "pol";

/// `Texts` as stored in the snapshot.
pub(crate) type ArchivedTexts = rkyv::Archived<catalog::Texts>;

/// One reference file of an IOF 3.0 offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReferenceKind {
    Categories,
    Sizes,
    Producers,
    Units,
    Parameters,
    Series,
    Stocks,
    Warranties,
}

impl ReferenceKind {
    /// Every reference file, in the order the gateway lists them.
    pub const ALL: [ReferenceKind; 8] = [
        ReferenceKind::Categories,
        ReferenceKind::Sizes,
        ReferenceKind::Producers,
        ReferenceKind::Units,
        ReferenceKind::Parameters,
        ReferenceKind::Stocks,
        ReferenceKind::Series,
        ReferenceKind::Warranties,
    ];

    /// The file's name as the gateway and the IdoSell-style `type=` parameter spell it;
    /// it is also the root element's name.
    pub fn name(self) -> &'static str {
        match self {
            ReferenceKind::Categories => "categories",
            ReferenceKind::Sizes => "sizes",
            ReferenceKind::Producers => "producers",
            ReferenceKind::Units => "units",
            ReferenceKind::Parameters => "parameters",
            ReferenceKind::Series => "series",
            ReferenceKind::Stocks => "stocks",
            ReferenceKind::Warranties => "warranties",
        }
    }

    /// The kind named `name` (`"categories"`, ...), as [`ReferenceKind::name`] spells it.
    pub fn from_name(name: &str) -> Option<ReferenceKind> {
        ReferenceKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The official schema the file validates against.
    pub fn schema(self) -> crate::xsd::Schema {
        use crate::xsd::Schema;
        match self {
            ReferenceKind::Categories => Schema::Categories,
            ReferenceKind::Sizes => Schema::Sizes,
            ReferenceKind::Producers => Schema::Producers,
            ReferenceKind::Units => Schema::Units,
            ReferenceKind::Parameters => Schema::Parameters,
            ReferenceKind::Series => Schema::Series,
            ReferenceKind::Stocks => Schema::Stocks,
            ReferenceKind::Warranties => Schema::Warranties,
        }
    }
}

/// The validity stamped on a reference file's root element (local time, no zone, as IdoSell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferenceMeta {
    /// When the file was rendered (`generated`).
    pub generated: DateTime,
    /// Until when a consumer may rely on it (`expires`; not written in sizes.xml, whose
    /// schema lacks the attribute).
    pub expires: DateTime,
}

impl ReferenceMeta {
    /// Generated at `generated`, valid for one day (the design's validity for every file but
    /// the gateway).
    pub fn valid_one_day(generated: DateTime) -> ReferenceMeta {
        ReferenceMeta {
            generated,
            expires: generated.saturating_add(jiff::Span::new().days(1)),
        }
    }
}

/// Render one reference file from the snapshot's dictionaries.
///
/// `languages` are the texts to include, the first being the file's `language`; an empty list
/// means the default `pol` and one text per entry. Output is UTF-8 XML with a declaration,
/// tab-indented, ending in a newline. Writes go straight to `w` in small pieces: pass a
/// buffered writer (or a `Vec<u8>`).
pub fn write_reference(
    w: &mut impl Write,
    kind: ReferenceKind,
    dicts: &ArchivedDictionaries,
    languages: &[String],
    meta: &ReferenceMeta,
) -> Result<(), RenderError> {
    let langs = Langs::new(languages);
    let mut x = Writer::new_with_indent(&mut *w, b'\t', 1);
    x.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let root = root_element(kind, langs.default(), meta);
    x.write_event(Event::Start(root))?;
    match kind {
        ReferenceKind::Categories => categories(&mut x, dicts, &langs)?,
        ReferenceKind::Sizes => sizes(&mut x, dicts, &langs)?,
        ReferenceKind::Producers => producers(&mut x, dicts)?,
        ReferenceKind::Units => units(&mut x, dicts, &langs)?,
        ReferenceKind::Parameters => parameters(&mut x, dicts, &langs)?,
        ReferenceKind::Series => series(&mut x, dicts, &langs)?,
        ReferenceKind::Stocks => stocks(&mut x, dicts, &langs)?,
        ReferenceKind::Warranties => warranties(&mut x, dicts, &langs)?,
    }
    x.write_event(Event::End(BytesEnd::new(kind.name())))?;
    w.write_all(b"\n")?;
    Ok(())
}

fn root_element(kind: ReferenceKind, language: &str, meta: &ReferenceMeta) -> BytesStart<'static> {
    const DATE: &str = "%Y-%m-%d %H:%M:%S";
    let generated = meta.generated.strftime(DATE).to_string();
    let expires = meta.expires.strftime(DATE).to_string();
    let mut root = BytesStart::new(kind.name());
    root.push_attribute(("file_format", "IOF"));
    root.push_attribute(("version", "3.0"));
    // sizes.xsd declares neither generated_by nor expires, and undeclared attributes fail
    // validation, so sizes.xml carries only what its schema knows.
    if kind != ReferenceKind::Sizes {
        root.push_attribute(("generated_by", GENERATED_BY));
    }
    root.push_attribute(("language", language));
    root.push_attribute(("generated", generated.as_str()));
    if kind != ReferenceKind::Sizes {
        root.push_attribute(("expires", expires.as_str()));
    }
    root
}

/// The requested languages, duplicates removed, order kept.
struct Langs<'a> {
    list: Vec<&'a str>,
}

impl<'a> Langs<'a> {
    fn new(languages: &'a [String]) -> Langs<'a> {
        let mut list: Vec<&str> = Vec::with_capacity(languages.len());
        for l in languages {
            if !list.contains(&l.as_str()) {
                list.push(l);
            }
        }
        Langs { list }
    }

    fn default(&self) -> &'a str {
        self.list.first().copied().unwrap_or(DEFAULT_LANGUAGE)
    }
}

/// The texts of an entry to write, as (language, text): those in the requested languages in
/// their order, else the entry's first text so that it is not left nameless.
fn select<'t>(texts: &'t ArchivedTexts, langs: &Langs<'_>) -> Vec<(&'t str, &'t str)> {
    let mut out: Vec<(&str, &str)> = langs
        .list
        .iter()
        .filter_map(|l| texts.get_key_value(*l))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if out.is_empty() {
        out.extend(texts.iter().next().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    out
}

/// The text of an entry in the first of `languages` it has, else in its first language, else
/// empty. Used for `name` attributes here and for the CSV columns.
pub(crate) fn localized<'t>(texts: &'t ArchivedTexts, languages: &[String]) -> &'t str {
    localized_by(texts, languages.iter().map(String::as_str))
}

fn localized_by<'t, 'l>(
    texts: &'t ArchivedTexts,
    mut languages: impl Iterator<Item = &'l str>,
) -> &'t str {
    languages
        .find_map(|l| texts.get(l))
        .or_else(|| texts.values().next())
        .map(|s| s.as_str())
        .unwrap_or("")
}

/// `s` without the characters XML 1.0 cannot carry at all (C0 controls other than tab, line
/// feed and carriage return; U+FFFE, U+FFFF): one stray byte from an ERP must not make the
/// whole file ill-formed. Borrowed when clean, which is nearly always.
pub(crate) fn xml_safe(s: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
    }
    if s.chars().all(allowed) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| allowed(c)).collect())
    }
}

type Xml<'w, W> = Writer<&'w mut W>;

/// `<tag id=".." name="..">` (start, or empty when `empty`).
fn entry_start(tag: &str, id: &str, name: &str) -> BytesStart<'static> {
    let mut e = BytesStart::new(tag.to_owned());
    e.push_attribute(("id", id));
    e.push_attribute(("name", xml_safe(name).as_ref()));
    e
}

/// `<tag xml:lang="..">text</tag>` for each selected text, as CDATA or escaped text.
fn write_texts<W: Write>(
    x: &mut Xml<'_, W>,
    tag: &str,
    texts: &[(&str, &str)],
    cdata: bool,
) -> io::Result<()> {
    for (lang, text) in texts {
        let mut start = BytesStart::new(tag);
        start.push_attribute(("xml:lang", *lang));
        x.write_event(Event::Start(start))?;
        let text = xml_safe(text);
        if cdata {
            // `escaped` splits the content at every `]]>` into adjacent CDATA sections.
            for part in BytesCData::escaped(&text) {
                x.write_event(Event::CData(part))?;
            }
        } else {
            // Quotes need no escaping in element content; keep them readable as the examples do.
            let escaped = quick_xml::escape::partial_escape(text);
            x.write_event(Event::Text(BytesText::from_escaped(escaped)))?;
        }
        x.write_event(Event::End(BytesEnd::new(tag)))?;
    }
    Ok(())
}

/// An entry with a multilingual name and nothing else: `<tag id name>` + `<name>` children.
fn named_entry<W: Write>(
    x: &mut Xml<'_, W>,
    tag: &str,
    id: &str,
    texts: &ArchivedTexts,
    langs: &Langs<'_>,
    cdata: bool,
) -> io::Result<()> {
    let selected = select(texts, langs);
    let start = entry_start(tag, id, localized_in(texts, langs));
    if selected.is_empty() {
        return x.write_event(Event::Empty(start));
    }
    x.write_event(Event::Start(start))?;
    write_texts(x, "name", &selected, cdata)?;
    x.write_event(Event::End(BytesEnd::new(tag)))
}

fn localized_in<'t>(texts: &'t ArchivedTexts, langs: &Langs<'_>) -> &'t str {
    localized_by(texts, langs.list.iter().copied())
}

/// The category tree. Children follow their parent's names, in dictionary (id) order. A
/// category whose parent is missing (or itself) is a top-level one; categories caught in a
/// parent cycle are cut at the first of them in id order, which becomes top-level. The walk
/// is iterative so that a deep chain cannot overflow the stack.
fn categories<W: Write>(
    x: &mut Xml<'_, W>,
    dicts: &ArchivedDictionaries,
    langs: &Langs<'_>,
) -> io::Result<()> {
    let cats = dicts.categories.as_slice();
    let mut index: HashMap<u64, usize> = HashMap::with_capacity(cats.len());
    for (i, c) in cats.iter().enumerate() {
        index.entry(c.id.to_native()).or_insert(i);
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); cats.len()];
    let mut roots = Vec::new();
    for (i, c) in cats.iter().enumerate() {
        let parent = c
            .parent
            .as_ref()
            .map(|p| p.to_native())
            .and_then(|p| index.get(&p).copied())
            .filter(|&p| p != i);
        match parent {
            Some(p) => children[p].push(i),
            None => roots.push(i),
        }
    }

    let mut done = vec![false; cats.len()];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    // Roots first, then whatever only a cycle could reach.
    let starts = roots.into_iter().chain(0..cats.len());
    for start in starts {
        if done[start] {
            continue;
        }
        let mut next = Some(start);
        loop {
            if let Some(i) = next.take() {
                done[i] = true;
                let c = &cats[i];
                let selected = select(&c.name, langs);
                let open = !selected.is_empty() || children[i].iter().any(|&k| !done[k]);
                let el = entry_start(
                    "category",
                    &c.id.to_native().to_string(),
                    localized_in(&c.name, langs),
                );
                if open {
                    x.write_event(Event::Start(el))?;
                    write_texts(x, "name", &selected, false)?;
                    stack.push((i, 0));
                } else {
                    x.write_event(Event::Empty(el))?;
                }
            }
            let Some((node, cursor)) = stack.last_mut() else {
                break;
            };
            match children[*node][*cursor..].iter().position(|&k| !done[k]) {
                Some(skip) => {
                    let child = children[*node][*cursor + skip];
                    *cursor += skip + 1;
                    next = Some(child);
                }
                None => {
                    stack.pop();
                    x.write_event(Event::End(BytesEnd::new("category")))?;
                }
            }
        }
    }
    Ok(())
}

fn sizes<W: Write>(
    x: &mut Xml<'_, W>,
    dicts: &ArchivedDictionaries,
    langs: &Langs<'_>,
) -> io::Result<()> {
    for g in dicts.size_groups.iter() {
        let el = entry_start("group", &g.id.to_native().to_string(), g.name.as_str());
        if g.sizes.is_empty() {
            x.write_event(Event::Empty(el))?;
            continue;
        }
        x.write_event(Event::Start(el))?;
        for s in g.sizes.iter() {
            named_entry(x, "size", xml_safe(&s.id).as_ref(), &s.name, langs, false)?;
        }
        x.write_event(Event::End(BytesEnd::new("group")))?;
    }
    Ok(())
}

fn producers<W: Write>(x: &mut Xml<'_, W>, dicts: &ArchivedDictionaries) -> io::Result<()> {
    for p in dicts.producers.iter() {
        let el = entry_start("producer", &p.id.to_native().to_string(), p.name.as_str());
        x.write_event(Event::Empty(el))?;
    }
    Ok(())
}

fn units<W: Write>(
    x: &mut Xml<'_, W>,
    dicts: &ArchivedDictionaries,
    langs: &Langs<'_>,
) -> io::Result<()> {
    for u in dicts.units.iter() {
        let mut el = entry_start(
            "unit",
            &u.id.to_native().to_string(),
            localized_in(&u.name, langs),
        );
        el.push_attribute(("precision", u.precision.to_string().as_str()));
        let selected = select(&u.name, langs);
        if selected.is_empty() {
            x.write_event(Event::Empty(el))?;
            continue;
        }
        x.write_event(Event::Start(el))?;
        write_texts(x, "name", &selected, true)?;
        x.write_event(Event::End(BytesEnd::new("unit")))?;
    }
    Ok(())
}

fn series<W: Write>(
    x: &mut Xml<'_, W>,
    dicts: &ArchivedDictionaries,
    langs: &Langs<'_>,
) -> io::Result<()> {
    for s in dicts.series.iter() {
        named_entry(
            x,
            "series",
            &s.id.to_native().to_string(),
            &s.name,
            langs,
            false,
        )?;
    }
    Ok(())
}

fn stocks<W: Write>(
    x: &mut Xml<'_, W>,
    dicts: &ArchivedDictionaries,
    langs: &Langs<'_>,
) -> io::Result<()> {
    for s in dicts.warehouses.iter() {
        named_entry(
            x,
            "stock",
            &s.id.to_native().to_string(),
            &s.name,
            langs,
            true,
        )?;
    }
    Ok(())
}

fn warranties<W: Write>(
    x: &mut Xml<'_, W>,
    dicts: &ArchivedDictionaries,
    langs: &Langs<'_>,
) -> io::Result<()> {
    for wt in dicts.warranties.iter() {
        let el = entry_start(
            "warranty",
            &wt.id.to_native().to_string(),
            localized_in(&wt.name, langs),
        );
        x.write_event(Event::Start(el))?;
        let kind = match wt.kind {
            catalog::ArchivedWarrantyType::Producer => "producer",
            catalog::ArchivedWarrantyType::Seller => "seller",
            catalog::ArchivedWarrantyType::None => "none",
        };
        let mut terms = BytesStart::new("terms");
        terms.push_attribute(("type", kind));
        terms.push_attribute((
            "period_number",
            wt.period_months.to_native().to_string().as_str(),
        ));
        terms.push_attribute(("period_unit", "month"));
        x.write_event(Event::Empty(terms))?;
        // Name and description per language, as the official example pairs them.
        let names = select(&wt.name, langs);
        let descriptions = select(&wt.description, langs);
        for (lang, name) in &names {
            write_texts(x, "name", &[(lang, name)], true)?;
            if let Some(d) = descriptions.iter().find(|(l, _)| l == lang) {
                write_texts(x, "description", std::slice::from_ref(d), true)?;
            }
        }
        for d in descriptions
            .iter()
            .filter(|(l, _)| !names.iter().any(|(n, _)| n == l))
        {
            write_texts(x, "description", std::slice::from_ref(d), true)?;
        }
        x.write_event(Event::End(BytesEnd::new("warranty")))?;
    }
    Ok(())
}

/// `<sections>`, `<parameters>` and `<values>`, always all three (empty when there is nothing),
/// so consumers see one shape. Values of every parameter form one list ordered by id; an id
/// that two parameters share is written once, from the first parameter that has it.
fn parameters<W: Write>(
    x: &mut Xml<'_, W>,
    dicts: &ArchivedDictionaries,
    langs: &Langs<'_>,
) -> io::Result<()> {
    let all = dicts.parameters.as_slice();
    let is_section =
        |p: &&catalog::ArchivedParameter| matches!(p.kind, catalog::ArchivedParameterKind::Section);
    let sections: Vec<_> = all.iter().filter(is_section).collect();
    let params: Vec<_> = all.iter().filter(|p| !is_section(p)).collect();
    let mut values: Vec<&catalog::ArchivedParameterValue> =
        params.iter().flat_map(|p| p.values.iter()).collect();
    // Stable sort keeps the first parameter's copy first for the dedup below.
    values.sort_by_key(|v| v.id.to_native());
    values.dedup_by_key(|v| v.id.to_native());

    group(x, "sections", sections.len(), |x| {
        for p in &sections {
            parameter_entry(
                x,
                "section",
                p.id.to_native(),
                &p.name,
                Some(&p.description),
                langs,
            )?;
        }
        Ok(())
    })?;
    group(x, "parameters", params.len(), |x| {
        for p in &params {
            parameter_entry(
                x,
                "parameter",
                p.id.to_native(),
                &p.name,
                Some(&p.description),
                langs,
            )?;
        }
        Ok(())
    })?;
    group(x, "values", values.len(), |x| {
        for v in &values {
            parameter_entry(x, "value", v.id.to_native(), &v.name, None, langs)?;
        }
        Ok(())
    })
}

fn group<W: Write>(
    x: &mut Xml<'_, W>,
    tag: &str,
    len: usize,
    body: impl FnOnce(&mut Xml<'_, W>) -> io::Result<()>,
) -> io::Result<()> {
    if len == 0 {
        return x.write_event(Event::Empty(BytesStart::new(tag)));
    }
    x.write_event(Event::Start(BytesStart::new(tag)))?;
    body(x)?;
    x.write_event(Event::End(BytesEnd::new(tag)))
}

/// A section, parameter or value: parameters.xsd requires at least one `<name>`, so an entry
/// without any text gets an empty one in the default language.
fn parameter_entry<W: Write>(
    x: &mut Xml<'_, W>,
    tag: &str,
    id: u64,
    name: &ArchivedTexts,
    description: Option<&ArchivedTexts>,
    langs: &Langs<'_>,
) -> io::Result<()> {
    let el = entry_start(tag, &id.to_string(), localized_in(name, langs));
    x.write_event(Event::Start(el))?;
    let mut names = select(name, langs);
    if names.is_empty() {
        names.push((langs.default(), ""));
    }
    write_texts(x, "name", &names, true)?;
    if let Some(d) = description {
        write_texts(x, "description", &select(d, langs), true)?;
    }
    x.write_event(Event::End(BytesEnd::new(tag)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Dictionaries;

    fn meta() -> ReferenceMeta {
        ReferenceMeta::valid_one_day(jiff::civil::date(2026, 11, 22).at(10, 30, 0, 0))
    }

    fn render(kind: ReferenceKind, d: &Dictionaries, languages: &[&str]) -> String {
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(d).unwrap();
        let archived = rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&bytes).unwrap();
        let languages: Vec<String> = languages.iter().map(|l| l.to_string()).collect();
        let mut out = Vec::new();
        write_reference(&mut out, kind, archived, &languages, &meta()).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn dicts(v: serde_json::Value) -> Dictionaries {
        serde_json::from_value(v).unwrap()
    }

    /// Every dictionary filled, with the characters that break naive writers.
    fn rich() -> Dictionaries {
        dicts(serde_json::json!({
            "categories": [
                {"id": 1, "name": {"pol": "Obuwie męskie", "eng": "Men's shoes"}},
                {"id": 2, "parent": 1, "name": {"pol": "Półbuty & sandały <lato>", "eng": "Shoes \"low\""}},
                {"id": 3, "parent": 2, "name": {"ger": "Nur Deutsch"}},
                {"id": 4, "parent": 404, "name": {"pol": "Sierota"}}
            ],
            "producers": [
                {"id": 0, "name": "* nieznany"},
                {"id": 7, "name": "Żółć & Syn \"Łódź\" <sp. z o.o.>"}
            ],
            "units": [
                {"id": 0, "name": {"pol": "szt.", "eng": "pcs"}},
                {"id": 10, "name": {"pol": "litr", "eng": "liter"}, "precision": 3}
            ],
            "series": [{"id": 1, "name": {"pol": "Jesień/Zima", "eng": "Autumn & Winter"}}],
            "warranties": [
                {"id": 1, "type": "producer", "period_months": 24,
                 "name": {"pol": "Gwarancja producenta", "eng": "Producer's warranty"},
                 "description": {"pol": "<p>Naprawa & wymiana</p>", "eng": "<p>Text with ]]> inside</p>"}},
                {"id": 2, "type": "seller", "period_months": 1, "name": {"pol": "Sklep"}}
            ],
            "warehouses": [
                {"id": 0, "name": {"pol": "Magazyn obcy", "eng": "Supplier warehouse"}},
                {"id": 1, "name": {"pol": "Magazyn główny"}}
            ],
            "size_groups": [
                {"id": 1, "name": "Buty & kapcie", "sizes": [
                    {"id": "39", "name": {"pol": "39", "eng": "6"}},
                    {"id": "C", "name": {"pol": "30/30"}}
                ]},
                {"id": 2, "name": "Pusta", "sizes": []}
            ],
            "parameters": [
                {"id": 756, "type": "section", "name": {"pol": "Dane techniczne", "eng": "Technical data"}},
                {"id": 706, "type": "parameter", "name": {"pol": "Kolor", "eng": "Colour"},
                 "description": {"pol": "Użyte <b>kolory</b> & odcienie ]]>"},
                 "values": [
                    {"id": 780, "name": {"pol": "czerwony", "eng": "red"}},
                    {"id": 779, "name": {"pol": "zielony", "eng": "green"}}
                 ]},
                {"id": 707, "type": "parameter", "name": {"pol": "Materiał"},
                 "values": [{"id": 783, "name": {"pol": "bawełna"}}, {"id": 779, "name": {"pol": "duplikat"}}]},
                {"id": 708, "type": "parameter", "name": {}, "values": [{"id": 790, "name": {}}]}
            ]
        }))
    }

    #[test]
    fn every_kind_validates_against_its_official_schema() {
        let rich = rich();
        let empty = Dictionaries::default();
        for kind in ReferenceKind::ALL {
            for (label, d, langs) in [
                ("rich", &rich, &["pol", "eng"][..]),
                ("rich, one language", &rich, &["eng"][..]),
                ("empty", &empty, &["pol"][..]),
                ("no language", &rich, &[][..]),
            ] {
                let xml = render(kind, d, langs);
                if let Err(e) = crate::xsd::validate(kind.schema(), xml.as_bytes()) {
                    panic!("{} ({label}): {e}\n{xml}", kind.name());
                }
            }
        }
    }

    #[test]
    fn names_and_schemas_match_the_gateway() {
        let names: Vec<_> = ReferenceKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            [
                "categories",
                "sizes",
                "producers",
                "units",
                "parameters",
                "stocks",
                "series",
                "warranties"
            ]
        );
        for kind in ReferenceKind::ALL {
            assert_eq!(ReferenceKind::from_name(kind.name()), Some(kind));
            assert_eq!(
                crate::xsd::Schema::for_kind(kind.name()),
                Some(kind.schema())
            );
        }
        assert_eq!(ReferenceKind::from_name("full"), None);
    }

    #[test]
    fn root_carries_the_validity_and_the_default_language() {
        let xml = render(
            ReferenceKind::Producers,
            &Dictionaries::default(),
            &["eng", "pol"],
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <producers file_format=\"IOF\" version=\"3.0\" generated_by=\"iofd\" language=\"eng\" \
             generated=\"2026-11-22 10:30:00\" expires=\"2026-11-23 10:30:00\">\n\
             </producers>\n"
        );
        // sizes.xsd declares neither generated_by nor expires.
        let xml = render(ReferenceKind::Sizes, &Dictionaries::default(), &[]);
        assert!(
            xml.contains("<sizes file_format=\"IOF\" version=\"3.0\" language=\"pol\" generated=\"2026-11-22 10:30:00\">"),
            "{xml}"
        );
    }

    #[test]
    fn categories_nest_under_their_parents() {
        let d = dicts(serde_json::json!({"categories": [
            {"id": 1, "name": {"pol": "A"}},
            {"id": 2, "parent": 1, "name": {"pol": "B"}},
            {"id": 3, "parent": 2, "name": {"pol": "C"}},
            {"id": 4, "parent": 1, "name": {"pol": "D"}},
            {"id": 5, "parent": 99, "name": {"pol": "Orphan"}},
            {"id": 7, "parent": 8, "name": {"pol": "Cycle7"}},
            {"id": 8, "parent": 7, "name": {"pol": "Cycle8"}},
            {"id": 9, "parent": 9, "name": {"pol": "Self"}},
            {"id": 10, "parent": 1, "name": {}}
        ]}));
        let xml = render(ReferenceKind::Categories, &d, &["pol"]);
        let body: String = xml.lines().skip(2).collect::<Vec<_>>().join("\n");
        assert_eq!(
            body,
            "\t<category id=\"1\" name=\"A\">
\t\t<name xml:lang=\"pol\">A</name>
\t\t<category id=\"2\" name=\"B\">
\t\t\t<name xml:lang=\"pol\">B</name>
\t\t\t<category id=\"3\" name=\"C\">
\t\t\t\t<name xml:lang=\"pol\">C</name>
\t\t\t</category>
\t\t</category>
\t\t<category id=\"4\" name=\"D\">
\t\t\t<name xml:lang=\"pol\">D</name>
\t\t</category>
\t\t<category id=\"10\" name=\"\"/>
\t</category>
\t<category id=\"5\" name=\"Orphan\">
\t\t<name xml:lang=\"pol\">Orphan</name>
\t</category>
\t<category id=\"9\" name=\"Self\">
\t\t<name xml:lang=\"pol\">Self</name>
\t</category>
\t<category id=\"7\" name=\"Cycle7\">
\t\t<name xml:lang=\"pol\">Cycle7</name>
\t\t<category id=\"8\" name=\"Cycle8\">
\t\t\t<name xml:lang=\"pol\">Cycle8</name>
\t\t</category>
\t</category>
</categories>"
        );
        crate::xsd::validate(crate::xsd::Schema::Categories, xml.as_bytes()).unwrap();
    }

    #[test]
    fn a_deep_category_chain_does_not_recurse() {
        let n = 20_000u64;
        let categories: Vec<_> = (1..=n)
            .map(|id| {
                let mut c = serde_json::json!({"id": id, "name": {"pol": format!("c{id}")}});
                if id > 1 {
                    c["parent"] = serde_json::json!(id - 1);
                }
                c
            })
            .collect();
        let d = dicts(serde_json::json!({ "categories": categories }));
        let xml = render(ReferenceKind::Categories, &d, &["pol"]);
        assert_eq!(xml.matches("</category>").count(), n as usize);
        assert!(xml.contains(&format!("<name xml:lang=\"pol\">c{n}</name>")));
    }

    #[test]
    fn text_and_attributes_are_escaped() {
        let d = rich();
        let xml = render(ReferenceKind::Producers, &d, &["pol"]);
        assert!(
            xml.contains("\t<producer id=\"7\" name=\"Żółć &amp; Syn &quot;Łódź&quot; &lt;sp. z o.o.&gt;\"/>\n"),
            "{xml}"
        );
        let xml = render(ReferenceKind::Categories, &d, &["pol", "eng"]);
        assert!(
            xml.contains("<name xml:lang=\"pol\">Półbuty &amp; sandały &lt;lato&gt;</name>"),
            "{xml}"
        );
        assert!(
            xml.contains("<category id=\"2\" name=\"Półbuty &amp; sandały &lt;lato&gt;\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<name xml:lang=\"eng\">Shoes \"low\"</name>"),
            "{xml}"
        );
        let xml = render(ReferenceKind::Categories, &d, &["eng"]);
        assert!(
            xml.contains("<category id=\"2\" name=\"Shoes &quot;low&quot;\">"),
            "{xml}"
        );
    }

    #[test]
    fn cdata_survives_its_own_terminator() {
        let xml = render(ReferenceKind::Warranties, &rich(), &["pol", "eng"]);
        assert!(
            xml.contains(
                "<description xml:lang=\"eng\"><![CDATA[<p>Text with ]]]]><![CDATA[> inside</p>]]></description>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<terms type=\"producer\" period_number=\"24\" period_unit=\"month\"/>"),
            "{xml}"
        );
        // Reading the file back gives the original HTML.
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut found = Vec::new();
        let mut in_description = false;
        let mut text = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) if e.name().as_ref() == b"description" => {
                    in_description = true;
                    text.clear();
                }
                Event::CData(c) if in_description => {
                    text.push_str(std::str::from_utf8(&c).unwrap());
                }
                Event::End(e) if e.name().as_ref() == b"description" => {
                    in_description = false;
                    found.push(text.clone());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(
            found,
            ["<p>Naprawa & wymiana</p>", "<p>Text with ]]> inside</p>"]
        );
    }

    #[test]
    fn only_requested_languages_appear_with_a_fallback() {
        let d = rich();
        let xml = render(ReferenceKind::Categories, &d, &["eng"]);
        assert!(
            xml.contains("<category id=\"1\" name=\"Men&apos;s shoes\">\n\t\t<name xml:lang=\"eng\">Men's shoes</name>\n\t\t<category"),
            "{xml}"
        );
        assert!(!xml.contains("Obuwie"), "{xml}");
        // Category 4 has only Polish: it keeps that one text rather than going nameless.
        assert!(
            xml.contains("<name xml:lang=\"pol\">Sierota</name>"),
            "{xml}"
        );
        // Likewise category 3, German only.
        assert!(
            xml.contains("<category id=\"3\" name=\"Nur Deutsch\">\n\t\t\t\t<name xml:lang=\"ger\">Nur Deutsch</name>"),
            "{xml}"
        );
        // Requested order is kept, duplicates dropped.
        let xml = render(ReferenceKind::Units, &d, &["eng", "pol", "eng"]);
        assert!(
            xml.contains(
                "\t<unit id=\"10\" name=\"liter\" precision=\"3\">\n\
                 \t\t<name xml:lang=\"eng\"><![CDATA[liter]]></name>\n\
                 \t\t<name xml:lang=\"pol\"><![CDATA[litr]]></name>\n\
                 \t</unit>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn parameters_are_grouped_and_values_deduplicated() {
        let xml = render(ReferenceKind::Parameters, &rich(), &["pol"]);
        let at = |needle: &str| {
            xml.find(needle)
                .unwrap_or_else(|| panic!("{needle} in {xml}"))
        };
        assert!(
            at("<sections>") < at("<section id=\"756\"") && at("</sections>") < at("<parameters>")
        );
        assert!(
            at("<parameter id=\"706\"") < at("<parameter id=\"707\"")
                && at("</parameters>") < at("<values>")
        );
        // Values ordered by id; 779 appears once, from the first parameter listing it.
        assert!(at("<value id=\"779\" name=\"zielony\">") < at("<value id=\"780\""));
        assert!(
            at("<value id=\"780\"") < at("<value id=\"783\"")
                && at("<value id=\"783\"") < at("<value id=\"790\"")
        );
        assert!(!xml.contains("duplikat"), "{xml}");
        // An entry without any text still gets the one <name> the schema requires.
        assert!(
            xml.contains("\t\t<parameter id=\"708\" name=\"\">\n\t\t\t<name xml:lang=\"pol\"><![CDATA[]]></name>\n\t\t</parameter>"),
            "{xml}"
        );
        assert!(
            xml.contains("<description xml:lang=\"pol\"><![CDATA[Użyte <b>kolory</b> & odcienie ]]]]><![CDATA[>]]></description>"),
            "{xml}"
        );
        let empty = render(
            ReferenceKind::Parameters,
            &Dictionaries::default(),
            &["pol"],
        );
        assert!(
            empty.contains("\t<sections/>\n\t<parameters/>\n\t<values/>\n"),
            "{empty}"
        );
    }

    #[test]
    fn sizes_group_multilingual_sizes() {
        let xml = render(ReferenceKind::Sizes, &rich(), &["pol", "eng"]);
        assert!(
            xml.contains(
                "\t<group id=\"1\" name=\"Buty &amp; kapcie\">\n\
                 \t\t<size id=\"39\" name=\"39\">\n\
                 \t\t\t<name xml:lang=\"pol\">39</name>\n\
                 \t\t\t<name xml:lang=\"eng\">6</name>\n\
                 \t\t</size>\n\
                 \t\t<size id=\"C\" name=\"30/30\">\n\
                 \t\t\t<name xml:lang=\"pol\">30/30</name>\n\
                 \t\t</size>\n\
                 \t</group>\n\
                 \t<group id=\"2\" name=\"Pusta\"/>\n"
            ),
            "{xml}"
        );
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped() {
        let d = dicts(serde_json::json!({
            "producers": [{"id": 1, "name": "Bell\u{7}\u{0} & co\u{fffe}"}],
            "warehouses": [{"id": 1, "name": {"pol": "Mag\u{1b}azyn\ttab"}}]
        }));
        let xml = render(ReferenceKind::Producers, &d, &["pol"]);
        assert!(xml.contains("name=\"Bell &amp; co\""), "{xml}");
        let xml = render(ReferenceKind::Stocks, &d, &["pol"]);
        assert!(xml.contains("<![CDATA[Magazyn\ttab]]>"), "{xml}");
        crate::xsd::validate(crate::xsd::Schema::Stocks, xml.as_bytes()).unwrap();
        assert_eq!(xml_safe("clean"), Cow::Borrowed("clean"));
    }
}
