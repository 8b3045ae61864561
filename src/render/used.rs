//! The dictionary entries a profile's products use, for the reference files of profiles whose
//! rules narrow the assortment or the warehouses: those files list only what the partner's
//! full and light files refer to (a category with all its ancestors, so the tree stays whole).

use std::collections::BTreeSet;

use crate::catalog::rules::Tree;
use crate::catalog::{ArchivedDictionaries, ArchivedProduct, Dictionaries, RenderProfile};

use super::RenderError;

/// Ids of the entries in use, by dictionary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Used {
    categories: BTreeSet<u64>,
    producers: BTreeSet<u64>,
    units: BTreeSet<u64>,
    series: BTreeSet<u64>,
    warranties: BTreeSet<u64>,
    size_groups: BTreeSet<u64>,
    parameters: BTreeSet<u64>,
    warehouses: BTreeSet<u32>,
}

/// Bound on the walk up a category path (cycles in the data end it).
const MAX_DEPTH: usize = 1024;

impl Used {
    /// What the products `profile` includes refer to.
    pub fn of<'p>(
        profile: &RenderProfile,
        tree: &impl Tree,
        products: impl IntoIterator<Item = &'p ArchivedProduct>,
    ) -> Used {
        let mut u = Used::default();
        let id = |x: &rkyv::option::ArchivedOption<rkyv::rend::u64_le>| {
            x.as_ref().map(|v| v.to_native())
        };
        for p in products.into_iter().filter(|p| profile.includes(p, tree)) {
            let mut at = id(&p.category);
            for _ in 0..MAX_DEPTH {
                let Some(c) = at else { break };
                if !u.categories.insert(c) {
                    break;
                }
                at = tree.parent(c);
            }
            u.producers.extend(id(&p.producer));
            u.units.extend(id(&p.unit));
            u.series.extend(id(&p.series));
            u.warranties.extend(id(&p.warranty));
            u.size_groups.extend(id(&p.size_group));
            u.parameters
                .extend(p.parameters.iter().map(|x| x.id.to_native()));
            for level in p.sizes.iter().flat_map(|s| s.stock.iter()) {
                let w = level.warehouse.to_native();
                if profile.rules.stock.shows(w) {
                    u.warehouses.insert(w);
                }
            }
        }
        u
    }

    /// A short key of the set, for the files' names: equal sets share the files.
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        blake3::hash(&json).to_hex()[..16].to_string()
    }

    /// The dictionaries with only the entries in use (shops kept whole: no reference file
    /// lists them).
    pub fn narrow(&self, d: &ArchivedDictionaries) -> Result<Dictionaries, RenderError> {
        let mut d: Dictionaries = rkyv::deserialize::<Dictionaries, rkyv::rancor::Error>(d)
            .map_err(|e| RenderError::Dictionaries(Box::new(e)))?;
        d.categories.retain(|c| self.categories.contains(&c.id));
        d.producers.retain(|x| self.producers.contains(&x.id));
        d.units.retain(|x| self.units.contains(&x.id));
        d.series.retain(|x| self.series.contains(&x.id));
        d.warranties.retain(|x| self.warranties.contains(&x.id));
        d.size_groups.retain(|x| self.size_groups.contains(&x.id));
        d.parameters.retain(|x| self.parameters.contains(&x.id));
        d.warehouses.retain(|x| self.warehouses.contains(&x.id));
        Ok(d)
    }
}

/// `d` archived, for the reference writers (they read archived dictionaries).
pub fn archive(d: &Dictionaries) -> Result<rkyv::util::AlignedVec, RenderError> {
    rkyv::to_bytes::<rkyv::rancor::Error>(d).map_err(|e| RenderError::Dictionaries(Box::new(e)))
}

/// The archived dictionaries in `bytes` (from [`archive`]).
pub fn access(bytes: &[u8]) -> Result<&ArchivedDictionaries, RenderError> {
    rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(bytes)
        .map_err(|e| RenderError::Dictionaries(Box::new(e)))
}
