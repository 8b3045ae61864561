//! Fast lookups over a snapshot's dictionaries, built once and shared by every product a
//! renderer writes: id → entry by binary search over compact sorted ids, category paths
//! precomputed per language, and parameter contexts pre-checked against the schema.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use crate::catalog::{
    ArchivedCategory, ArchivedDictionaries, ArchivedParameter, ArchivedParameterValue,
    ArchivedProducer, ArchivedSeries, ArchivedShop, ArchivedSizeDef, ArchivedSizeGroup,
    ArchivedUnit, ArchivedWarehouse, ArchivedWarranty, Texts,
};

/// The archived form of [`Texts`] (texts keyed by language).
pub(crate) type ArchivedTexts = <Texts as rkyv::Archive>::Archived;

/// The text in `lang`, if there is one. The archived map's `get` walks the tree without
/// allocating (its `iter` would allocate a stack, so the hot path never uses it).
#[inline]
pub(crate) fn text<'t>(texts: &'t ArchivedTexts, lang: &str) -> Option<&'t str> {
    texts.get(lang).map(|s| s.as_str())
}

/// The first (language, text) pair in language-code order.
pub(crate) fn first_text(texts: &ArchivedTexts) -> Option<(&str, &str)> {
    // `visit` walks without allocating but cannot lend its references out, so the first key
    // is copied (language codes are three bytes) and looked up again.
    enum Key {
        Short([u8; 16], usize),
        Long(String),
    }
    let key = texts.visit(|k, _| {
        let k = k.as_str();
        ControlFlow::Break(if k.len() <= 16 {
            let mut buf = [0u8; 16];
            buf[..k.len()].copy_from_slice(k.as_bytes());
            Key::Short(buf, k.len())
        } else {
            Key::Long(k.to_string())
        })
    })?;
    let key = match &key {
        Key::Short(buf, len) => std::str::from_utf8(&buf[..*len]).ok()?,
        Key::Long(s) => s.as_str(),
    };
    texts
        .get_key_value(key)
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// The text in `lang`, or else in the first language the map has.
pub(crate) fn text_or_any<'t>(texts: &'t ArchivedTexts, lang: &str) -> Option<&'t str> {
    text(texts, lang).or_else(|| first_text(texts).map(|(_, t)| t))
}

/// Entries of one dictionary, sorted by id, found by binary search.
struct IdMap<'a, T> {
    ids: Vec<u64>,
    items: Vec<&'a T>,
}

impl<'a, T> IdMap<'a, T> {
    fn new(entries: impl Iterator<Item = (u64, &'a T)>) -> Self {
        let mut pairs: Vec<(u64, &'a T)> = entries.collect();
        // Stable: of two entries with one id (which the store never produces), the later wins.
        pairs.sort_by_key(|(id, _)| *id);
        let mut ids: Vec<u64> = Vec::with_capacity(pairs.len());
        let mut items: Vec<&'a T> = Vec::with_capacity(pairs.len());
        for (id, item) in pairs {
            if ids.last() == Some(&id) {
                if let Some(last) = items.last_mut() {
                    *last = item;
                }
            } else {
                ids.push(id);
                items.push(item);
            }
        }
        Self { ids, items }
    }

    #[inline]
    fn pos(&self, id: u64) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    #[inline]
    fn get(&self, id: u64) -> Option<&'a T> {
        self.pos(id).map(|i| self.items[i])
    }
}

/// Values of `parameter@context_id` that full.xsd enumerates; others go to `iaiext:context_id`.
const PARAMETER_CONTEXTS: &[&str] = &[
    "CONTEXT_STD_UNIT_LENGTH_CM",
    "CONTEXT_STD_UNIT_LENGTH",
    "CONTEXT_MOVIE_RELEASE_DATE",
    "CONTEXT_MOVIE_ORIGINAL_TITLE",
    "CONTEXT_AGE_GROUP",
    "CONTEXT_ENERGY_EFFICIENCY_CLASS",
    "CONTEXT_COLOR",
    "CONTEXT_BOOK_AUTHOR",
    "CONTEXT_BOOK_PUBLICATION_DATE",
    "CONTEXT_BOOK_PAGES_NUMBER",
    "CONTEXT_BOOK_PUBLICATION_LANGUAGE",
    "CONTEXT_PRESCRIPTION_MEDICINE",
    "CONTEXT_STD_UNIT_QUANTITY_PACKAGE",
    "CONTEXT_MAX_SIZE_QUANTITY_PER_RETAIL_ORDER",
    "CONTEXT_MAX_SIZE_QUANTITY_PER_WHOLESALE_ORDER",
    "CONTEXT_MAX_QUANTITY_PER_RETAIL_ORDER",
    "CONTEXT_MAX_QUANTITY_PER_WHOLESALE_ORDER",
    "CONTEXT_MIN_SIZE_QUANTITY_PER_RETAIL_ORDER",
    "CONTEXT_MIN_SIZE_QUANTITY_PER_WHOLESALE_ORDER",
    "CONTEXT_MIN_QUANTITY_PER_RETAIL_ORDER",
    "CONTEXT_MIN_QUANTITY_PER_WHOLESALE_ORDER",
    "CONTEXT_MODEL",
    "CONTEXT_STD_UNIT_VOLUME_SI",
    "CONTEXT_STD_UNIT_VOLUME_M3",
    "CONTEXT_STD_UNIT_VOLUME",
    "CONTEXT_DOCUMENTS_JPK_VAT",
    "CONTEXT_SEX",
    "CONTEXT_STD_UNIT_AREA_M2",
    "CONTEXT_SEASON",
    "CONTEXT_STATE",
    "CONTEXT_STD_UNIT_WIDTH_CM",
    "CONTEXT_ONLY_ADULTS",
    "CONTEXT_STD_OVERHEAD_WEIGHT",
    "CONTEXT_WEIGHT_NET",
    "CONTEXT_WEIGHT_PACKAGING",
    "CONTEXT_STD_UNIT_WEIGHT",
    "CONTEXT_STD_UNIT_WEIGHT_SI",
    "CONTEXT_STD_UNIT_HEIGHT_CM",
    "CONTEXT_HEEL_HEIGHT",
    "HEEL_HEIGHT",
];

/// Values of `value@context_id` that full.xsd enumerates.
const VALUE_CONTEXTS: &[&str] = &[
    "CONTEXT_AGE_GROUP_ADULT",
    "CONTEXT_AGE_GROUP_MINOR",
    "CONTEXT_PRESCRIPTION_MEDICINE_YES",
    "CONTEXT_PRESCRIPTION_MEDICINE_NO",
    "CONTEXT_SEX_MAN",
    "CONTEXT_SEX_WOMAN",
    "CONTEXT_SEX_UNISEX",
    "CONTEXT_STD_UNIT_DEFAULT",
    "CONTEXT_STD_UNIT_WHOLE",
    "CONTEXT_STD_UNIT_TENS",
    "CONTEXT_STD_UNIT_HUNDREDS",
    "CONTEXT_STD_UNIT_ONES",
    "CONTEXT_SEASON_SPRING",
    "CONTEXT_SEASON_SUMMER",
    "CONTEXT_SEASON_FALL",
    "CONTEXT_SEASON_WINTER",
    "CONTEXT_SEASON_SPRING_SUMMER",
    "CONTEXT_SEASON_FALL_WINTER",
    "CONTEXT_STATE_NEW",
    "CONTEXT_STATE_NEW_OTHERS",
    "CONTEXT_STATE_NEW_WITH_DEFECTS",
    "CONTEXT_STATE_USED",
    "CONTEXT_STATE_REFURBISHED_BY_PRODUCER",
    "CONTEXT_STATE_REFURBISHED_BY_SELLER",
    "CONTEXT_STATE_FOR_PARTS_OR_BROKEN",
    "CONTEXT_ONLY_ADULTS_YES",
    "CONTEXT_ONLY_ADULTS_NO",
];

/// Where a dictionary context id goes in full.xml.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context<'a> {
    None,
    /// One of the values the schema enumerates: `context_id`.
    Standard(&'a str),
    /// Anything else: `iaiext:context_id`, which takes any string.
    Extension(&'a str),
}

impl<'a> Context<'a> {
    fn classify(context: Option<&'a str>, allowed: &[&str]) -> Self {
        match context.map(str::trim) {
            None | Some("") => Context::None,
            Some(c) if allowed.contains(&c) => Context::Standard(c),
            Some(c) => Context::Extension(c),
        }
    }
}

/// A parameter value with where its context id belongs.
type ValueEntry<'a> = (&'a ArchivedParameterValue, Context<'a>);

/// Fast lookups over the snapshot's dictionaries, built once per snapshot and reused for every
/// product (and every profile) rendered from it.
pub struct DictIndex<'a> {
    producers: IdMap<'a, ArchivedProducer>,
    categories: IdMap<'a, ArchivedCategory>,
    units: IdMap<'a, ArchivedUnit>,
    series: IdMap<'a, ArchivedSeries>,
    warranties: IdMap<'a, ArchivedWarranty>,
    size_groups: IdMap<'a, ArchivedSizeGroup>,
    parameters: IdMap<'a, ArchivedParameter>,
    /// Aligned with `parameters.items`.
    parameter_contexts: Vec<Context<'a>>,
    /// (parameter id, value id), sorted; aligned with `value_items`.
    value_keys: Vec<(u64, u64)>,
    value_items: Vec<ValueEntry<'a>>,
    warehouses: IdMap<'a, ArchivedWarehouse>,
    shops: IdMap<'a, ArchivedShop>,
    /// Languages with precomputed category paths.
    path_langs: Vec<Box<str>>,
    /// `paths[pos * (path_langs.len() + 1) + lang]`; the extra last slot per category is the
    /// path for a language no category has.
    paths: Vec<Box<str>>,
}

impl<'a> DictIndex<'a> {
    /// Index the dictionaries. Cost is proportional to their size; do it once per snapshot.
    pub fn new(d: &'a ArchivedDictionaries) -> Self {
        let producers = IdMap::new(d.producers.iter().map(|x| (x.id.to_native(), x)));
        let categories = IdMap::new(d.categories.iter().map(|x| (x.id.to_native(), x)));
        let units = IdMap::new(d.units.iter().map(|x| (x.id.to_native(), x)));
        let series = IdMap::new(d.series.iter().map(|x| (x.id.to_native(), x)));
        let warranties = IdMap::new(d.warranties.iter().map(|x| (x.id.to_native(), x)));
        let size_groups = IdMap::new(d.size_groups.iter().map(|x| (x.id.to_native(), x)));
        let parameters = IdMap::new(d.parameters.iter().map(|x| (x.id.to_native(), x)));
        let warehouses = IdMap::new(
            d.warehouses
                .iter()
                .map(|x| (u64::from(x.id.to_native()), x)),
        );
        let shops = IdMap::new(d.shops.iter().map(|x| (u64::from(x.id.to_native()), x)));

        let parameter_contexts = parameters
            .items
            .iter()
            .map(|p| Context::classify(p.context.as_ref().map(|c| c.as_str()), PARAMETER_CONTEXTS))
            .collect();
        let mut values: Vec<((u64, u64), ValueEntry<'a>)> = Vec::new();
        for p in &parameters.items {
            for v in p.values.iter() {
                let context =
                    Context::classify(v.context.as_ref().map(|c| c.as_str()), VALUE_CONTEXTS);
                values.push(((p.id.to_native(), v.id.to_native()), (v, context)));
            }
        }
        values.sort_by_key(|(key, _)| *key);
        values.dedup_by_key(|(key, _)| *key);
        let (value_keys, value_items) = values.into_iter().unzip();

        let (path_langs, paths) = category_paths(&categories);
        Self {
            producers,
            categories,
            units,
            series,
            warranties,
            size_groups,
            parameters,
            parameter_contexts,
            value_keys,
            value_items,
            warehouses,
            shops,
            path_langs,
            paths,
        }
    }

    /// The producer with this id.
    pub fn producer(&self, id: u64) -> Option<&'a ArchivedProducer> {
        self.producers.get(id)
    }

    /// The category with this id.
    pub fn category(&self, id: u64) -> Option<&'a ArchivedCategory> {
        self.categories.get(id)
    }

    /// Whether partner rules may name this warehouse (and `stocks.xml` lists it).
    pub fn has_warehouse(&self, id: u32) -> bool {
        self.warehouse(id).is_some()
    }

    /// Full path "Parent/Child" in `lang` (falls back to any language a level has).
    /// Precomputed; no allocation per call. A parent missing from the dictionary ends the
    /// path there, and a cycle in the parent links is cut.
    pub fn category_path(&self, id: u64, lang: &str) -> Option<&str> {
        let pos = self.categories.pos(id)?;
        let slots = self.path_langs.len() + 1;
        let lang_slot = self
            .path_langs
            .iter()
            .position(|l| &**l == lang)
            .unwrap_or(self.path_langs.len());
        self.paths.get(pos * slots + lang_slot).map(|p| &**p)
    }

    /// The unit with this id.
    pub fn unit(&self, id: u64) -> Option<&'a ArchivedUnit> {
        self.units.get(id)
    }

    /// The series with this id.
    pub fn series(&self, id: u64) -> Option<&'a ArchivedSeries> {
        self.series.get(id)
    }

    /// The warranty with this id.
    pub fn warranty(&self, id: u64) -> Option<&'a ArchivedWarranty> {
        self.warranties.get(id)
    }

    /// The size group with this id.
    pub fn size_group(&self, id: u64) -> Option<&'a ArchivedSizeGroup> {
        self.size_groups.get(id)
    }

    /// The parameter-dictionary entry (section or parameter) with this id.
    pub fn parameter(&self, id: u64) -> Option<&'a ArchivedParameter> {
        self.parameters.get(id)
    }

    /// The warehouse with this id.
    pub fn warehouse(&self, id: u32) -> Option<&'a ArchivedWarehouse> {
        self.warehouses.get(u64::from(id))
    }

    /// The shop with this id.
    pub fn shop(&self, id: u32) -> Option<&'a ArchivedShop> {
        self.shops.get(u64::from(id))
    }

    /// A parameter with where its context id belongs in full.xml.
    pub(crate) fn parameter_with_context(
        &self,
        id: u64,
    ) -> Option<(&'a ArchivedParameter, Context<'a>)> {
        let pos = self.parameters.pos(id)?;
        Some((self.parameters.items[pos], self.parameter_contexts[pos]))
    }

    /// One value of a parameter with where its context id belongs.
    pub(crate) fn parameter_value(&self, parameter: u64, value: u64) -> Option<ValueEntry<'a>> {
        let pos = self.value_keys.binary_search(&(parameter, value)).ok()?;
        Some(self.value_items[pos])
    }
}

/// A size of a size group by its id.
pub(crate) fn size_def<'g>(group: &'g ArchivedSizeGroup, id: &str) -> Option<&'g ArchivedSizeDef> {
    group.sizes.iter().find(|s| s.id.as_str() == id)
}

/// Every category's path in every language any category has, plus a fallback path.
fn category_paths(categories: &IdMap<'_, ArchivedCategory>) -> (Vec<Box<str>>, Vec<Box<str>>) {
    let mut langs = BTreeSet::new();
    for c in &categories.items {
        c.name.visit(|k, _| {
            langs.insert(k.as_str().to_string());
            ControlFlow::<()>::Continue(())
        });
    }
    let path_langs: Vec<Box<str>> = langs.into_iter().map(String::into_boxed_str).collect();
    let mut paths = Vec::with_capacity(categories.items.len() * (path_langs.len() + 1));
    let mut chain: Vec<&ArchivedCategory> = Vec::new();
    for &leaf in &categories.items {
        chain.clear();
        let mut current = Some(leaf);
        // A well-formed tree is never deeper than the number of categories; stopping there
        // cuts any cycle in the parent links.
        while let Some(c) = current {
            if chain.len() > categories.items.len() {
                break;
            }
            chain.push(c);
            current = c
                .parent
                .as_ref()
                .and_then(|p| categories.get(p.to_native()));
        }
        let lang_options = path_langs.iter().map(|l| Some(&**l)).chain([None]);
        for lang in lang_options {
            let mut path = String::new();
            for c in chain.iter().rev() {
                let name = match lang {
                    Some(l) => text_or_any(&c.name, l),
                    None => first_text(&c.name).map(|(_, t)| t),
                };
                if let Some(name) = name {
                    if !path.is_empty() {
                        path.push('/');
                    }
                    path.push_str(name);
                }
            }
            paths.push(path.into_boxed_str());
        }
    }
    (path_langs, paths)
}

impl crate::catalog::rules::Tree for DictIndex<'_> {
    fn parent(&self, category: u64) -> Option<u64> {
        self.category(category)?
            .parent
            .as_ref()
            .map(|p| p.to_native())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Category, Dictionaries, Parameter, ParameterKind, ParameterValue};

    fn texts(pairs: &[(&str, &str)]) -> Texts {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn archive(d: &Dictionaries) -> rkyv::util::AlignedVec {
        rkyv::to_bytes::<rkyv::rancor::Error>(d).expect("archive")
    }

    fn category(id: u64, parent: Option<u64>, name: &[(&str, &str)]) -> Category {
        Category {
            id,
            parent,
            name: texts(name),
        }
    }

    #[test]
    fn category_paths_follow_parents_and_fall_back_per_level() {
        let d = Dictionaries {
            // Deliberately unsorted: the index must not rely on the order.
            categories: vec![
                category(3, Some(2), &[("pol", "Koszule"), ("eng", "Shirts")]),
                category(1, None, &[("pol", "Odzież"), ("eng", "Clothing")]),
                category(2, Some(1), &[("pol", "Męska")]),
                category(9, Some(404), &[("eng", "Orphan")]),
                category(7, Some(8), &[("pol", "A")]),
                category(8, Some(7), &[("pol", "B")]),
            ],
            ..Dictionaries::default()
        };
        let bytes = archive(&d);
        let a = rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&bytes).expect("access");
        let idx = DictIndex::new(a);
        assert_eq!(idx.category_path(3, "pol"), Some("Odzież/Męska/Koszule"));
        assert_eq!(idx.category_path(3, "eng"), Some("Clothing/Męska/Shirts"));
        // A language no category has: each level's first language (eng sorts before pol).
        assert_eq!(idx.category_path(3, "ger"), Some("Clothing/Męska/Shirts"));
        assert_eq!(idx.category_path(1, "pol"), Some("Odzież"));
        assert_eq!(idx.category_path(9, "pol"), Some("Orphan"));
        assert_eq!(idx.category_path(404, "pol"), None);
        // A cycle terminates.
        assert!(idx.category_path(7, "pol").is_some());
        assert_eq!(idx.category(2).map(|c| c.id.to_native()), Some(2));
    }

    #[test]
    fn parameter_contexts_are_checked_against_the_schema() {
        let value = |id, context: Option<&str>| ParameterValue {
            id,
            name: texts(&[("pol", "v")]),
            context: context.map(str::to_string),
        };
        let param = |id, context: Option<&str>, values| Parameter {
            id,
            kind: ParameterKind::Parameter,
            name: texts(&[("pol", "p")]),
            description: Texts::new(),
            priority: 0,
            context: context.map(str::to_string),
            distinction: false,
            group_distinction: false,
            hide: false,
            auction_template_hide: false,
            values,
        };
        let d = Dictionaries {
            parameters: vec![
                param(
                    1,
                    Some("CONTEXT_COLOR"),
                    vec![value(10, None), value(11, Some("CONTEXT_SEX_MAN"))],
                ),
                param(
                    2,
                    Some("CONTEXT_MADE_UP"),
                    vec![value(10, Some("WHATEVER"))],
                ),
                param(3, None, vec![]),
            ],
            ..Dictionaries::default()
        };
        let bytes = archive(&d);
        let a = rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&bytes).expect("access");
        let idx = DictIndex::new(a);
        assert_eq!(
            idx.parameter_with_context(1).map(|x| x.1),
            Some(Context::Standard("CONTEXT_COLOR"))
        );
        assert_eq!(
            idx.parameter_with_context(2).map(|x| x.1),
            Some(Context::Extension("CONTEXT_MADE_UP"))
        );
        assert_eq!(
            idx.parameter_with_context(3).map(|x| x.1),
            Some(Context::None)
        );
        assert_eq!(idx.parameter_value(1, 10).map(|x| x.1), Some(Context::None));
        assert_eq!(
            idx.parameter_value(1, 11).map(|x| x.1),
            Some(Context::Standard("CONTEXT_SEX_MAN"))
        );
        assert_eq!(
            idx.parameter_value(2, 10).map(|x| x.1),
            Some(Context::Extension("WHATEVER"))
        );
        assert!(idx.parameter_value(3, 10).is_none());
        assert!(idx.parameter(4).is_none());
    }
}
