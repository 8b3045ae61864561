//! Hashes of dictionary entries, what changed between two sets of them, and how they mix
//! into a product's dictionary-dependent nodes.

use std::collections::HashMap;

use super::codec::{take, take_u64};
use super::{hash16, index, NodeHash, ProductHashes, Refs, ABSENT, NODES};
use crate::catalog::MainNode;
use crate::catalog::{
    ArchivedDictionaries, ArchivedProduct, Category, Parameter, Producer, Series, SizeGroup, Unit,
    Warranty,
};

/// Hash of every dictionary entry a product node can show, by dictionary and id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DictHashes {
    pub producers: HashMap<u64, NodeHash>,
    /// Covers the entry and all its ancestors: the rendered path.
    pub categories: HashMap<u64, NodeHash>,
    pub units: HashMap<u64, NodeHash>,
    pub series: HashMap<u64, NodeHash>,
    pub warranties: HashMap<u64, NodeHash>,
    pub size_groups: HashMap<u64, NodeHash>,
    pub parameters: HashMap<u64, NodeHash>,
}

/// Entry ids whose hash differs between two [`DictHashes`] (added and removed included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedEntries {
    pub producers: std::collections::HashSet<u64>,
    pub categories: std::collections::HashSet<u64>,
    pub units: std::collections::HashSet<u64>,
    pub series: std::collections::HashSet<u64>,
    pub warranties: std::collections::HashSet<u64>,
    pub size_groups: std::collections::HashSet<u64>,
    pub parameters: std::collections::HashSet<u64>,
}

/// The hash of a dictionary entry that does not exist (distinct from [`ABSENT`] nodes only in
/// name: a missing entry is mixed into the referencing node's hash).
const MISSING: NodeHash = [0; 16];

/// Why dictionary hashes could not be computed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} dictionary entry {what}")]
pub struct DictHashError {
    /// `read` (the archive) or `encode` (the canonical JSON).
    step: &'static str,
    what: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

fn entry_hash<A, T>(archived: &A, what: impl Fn() -> String) -> Result<NodeHash, DictHashError>
where
    A: rkyv::Deserialize<T, rkyv::rancor::Strategy<rkyv::de::Pool, rkyv::rancor::Error>>,
    T: serde::Serialize,
{
    let owned: T =
        rkyv::deserialize::<T, rkyv::rancor::Error>(archived).map_err(|e| DictHashError {
            step: "read",
            what: what(),
            source: Box::new(e),
        })?;
    // serde_json writes struct fields in declaration order and maps sorted: canonical.
    let json = serde_json::to_vec(&owned).map_err(|e| DictHashError {
        step: "encode",
        what: what(),
        source: Box::new(e),
    })?;
    Ok(hash16(&json))
}

impl DictHashes {
    /// Hash every entry of the dictionaries. Proportional to their size; done once per
    /// dictionaries content.
    pub fn new(d: &ArchivedDictionaries) -> Result<Self, DictHashError> {
        fn table<A, T>(
            items: &[A],
            id: impl Fn(&A) -> u64,
            kind: &str,
        ) -> Result<HashMap<u64, NodeHash>, DictHashError>
        where
            A: rkyv::Deserialize<T, rkyv::rancor::Strategy<rkyv::de::Pool, rkyv::rancor::Error>>,
            T: serde::Serialize,
        {
            items
                .iter()
                .map(|x| {
                    Ok((
                        id(x),
                        entry_hash::<A, T>(x, || format!("{kind} {}", id(x)))?,
                    ))
                })
                .collect()
        }
        let own_categories: HashMap<u64, (NodeHash, Option<u64>)> = d
            .categories
            .iter()
            .map(|c| {
                let id = c.id.to_native();
                let h = entry_hash::<_, Category>(c, || format!("category {id}"))?;
                Ok((id, (h, c.parent.as_ref().map(|p| p.to_native()))))
            })
            .collect::<Result<_, DictHashError>>()?;
        // A category's path runs up its parents until a missing one or a cycle.
        let mut categories = HashMap::with_capacity(own_categories.len());
        let mut seen = Vec::new();
        for &id in own_categories.keys() {
            seen.clear();
            let mut chain = Vec::with_capacity(64);
            let mut at = Some(id);
            while let Some(c) = at {
                if seen.contains(&c) {
                    break;
                }
                seen.push(c);
                match own_categories.get(&c) {
                    Some((h, parent)) => {
                        chain.extend_from_slice(h);
                        at = *parent;
                    }
                    None => break,
                }
            }
            categories.insert(id, hash16(&chain));
        }
        Ok(DictHashes {
            producers: table::<_, Producer>(&d.producers, |x| x.id.to_native(), "producer")?,
            categories,
            units: table::<_, Unit>(&d.units, |x| x.id.to_native(), "unit")?,
            series: table::<_, Series>(&d.series, |x| x.id.to_native(), "series")?,
            warranties: table::<_, Warranty>(&d.warranties, |x| x.id.to_native(), "warranty")?,
            size_groups: table::<_, SizeGroup>(&d.size_groups, |x| x.id.to_native(), "size group")?,
            parameters: table::<_, Parameter>(&d.parameters, |x| x.id.to_native(), "parameter")?,
        })
    }

    fn tables(&self) -> [&HashMap<u64, NodeHash>; 7] {
        [
            &self.producers,
            &self.categories,
            &self.units,
            &self.series,
            &self.warranties,
            &self.size_groups,
            &self.parameters,
        ]
    }

    fn tables_mut(&mut self) -> [&mut HashMap<u64, NodeHash>; 7] {
        [
            &mut self.producers,
            &mut self.categories,
            &mut self.units,
            &mut self.series,
            &mut self.warranties,
            &mut self.size_groups,
            &mut self.parameters,
        ]
    }

    /// The entries that differ from `other`'s.
    pub fn changed_since(&self, old: &DictHashes) -> ChangedEntries {
        fn diff(
            new: &HashMap<u64, NodeHash>,
            old: &HashMap<u64, NodeHash>,
        ) -> std::collections::HashSet<u64> {
            let mut out: std::collections::HashSet<u64> = new
                .iter()
                .filter(|(id, h)| old.get(id) != Some(h))
                .map(|(id, _)| *id)
                .collect();
            out.extend(old.keys().filter(|id| !new.contains_key(id)));
            out
        }
        let [p, c, u, s, w, g, m] = self.tables();
        let [op, oc, ou, os, ow, og, om] = old.tables();
        ChangedEntries {
            producers: diff(p, op),
            categories: diff(c, oc),
            units: diff(u, ou),
            series: diff(s, os),
            warranties: diff(w, ow),
            size_groups: diff(g, og),
            parameters: diff(m, om),
        }
    }

    /// The node hashes as rendered: own data mixed with the referenced entries' hashes.
    pub fn effective(&self, h: &ProductHashes) -> [NodeHash; NODES] {
        let mut out = h.own;
        let mix = |own: &NodeHash, entries: &mut dyn Iterator<Item = NodeHash>| {
            let mut buf = Vec::with_capacity(64);
            buf.extend_from_slice(own);
            for e in entries {
                buf.extend_from_slice(&e);
            }
            hash16(&buf)
        };
        let get = |table: &HashMap<u64, NodeHash>, id: Option<u64>| {
            id.and_then(|id| table.get(&id).copied()).unwrap_or(MISSING)
        };
        let singles = [
            (MainNode::Producer, &self.producers, h.refs.producer),
            (MainNode::Category, &self.categories, h.refs.category),
            (MainNode::Unit, &self.units, h.refs.unit),
            (MainNode::Series, &self.series, h.refs.series),
            (MainNode::Warranty, &self.warranties, h.refs.warranty),
        ];
        for (node, table, id) in singles {
            let own = &h.own[index(node)];
            if *own != ABSENT {
                out[index(node)] = mix(own, &mut std::iter::once(get(table, id)));
            }
        }
        // Sizes show their size group's names and the product prices they inherit.
        let own = &h.own[index(MainNode::Sizes)];
        if *own != ABSENT {
            let inherited = [
                MainNode::Price,
                MainNode::Srp,
                MainNode::StrikethroughRetail,
                MainNode::StrikethroughWholesale,
            ]
            .map(|n| h.own[index(n)]);
            out[index(MainNode::Sizes)] = mix(
                own,
                &mut std::iter::once(get(&self.size_groups, h.refs.size_group)).chain(inherited),
            );
        }
        let own = &h.own[index(MainNode::Parameters)];
        if *own != ABSENT {
            out[index(MainNode::Parameters)] = mix(
                own,
                &mut h
                    .refs
                    .parameters
                    .iter()
                    .map(|id| get(&self.parameters, Some(*id))),
            );
        }
        out
    }

    /// Encode for the hash store (`changes/hashfiles.rs`).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for table in self.tables() {
            let mut entries: Vec<_> = table.iter().collect();
            entries.sort_unstable_by_key(|(id, _)| **id);
            out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
            for (id, h) in entries {
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(h);
            }
        }
    }

    /// Decode what [`DictHashes::encode`] wrote.
    pub(crate) fn decode(mut bytes: &[u8]) -> Option<Self> {
        let mut out = DictHashes::default();
        for table in out.tables_mut() {
            let n = take_u64(&mut bytes)?;
            for _ in 0..n {
                let id = take_u64(&mut bytes)?;
                let h: NodeHash = take(&mut bytes, 16)?.try_into().ok()?;
                table.insert(id, h);
            }
        }
        bytes.is_empty().then_some(out)
    }
}

impl ChangedEntries {
    /// True when no entry a product node shows changed.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
            && self.categories.is_empty()
            && self.units.is_empty()
            && self.series.is_empty()
            && self.warranties.is_empty()
            && self.size_groups.is_empty()
            && self.parameters.is_empty()
    }

    /// Does a product with these references show a changed entry?
    pub fn touches(&self, r: &Refs) -> bool {
        let hit = |set: &std::collections::HashSet<u64>, id: Option<u64>| {
            id.is_some_and(|id| set.contains(&id))
        };
        hit(&self.producers, r.producer)
            || hit(&self.categories, r.category)
            || hit(&self.units, r.unit)
            || hit(&self.series, r.series)
            || hit(&self.warranties, r.warranty)
            || hit(&self.size_groups, r.size_group)
            || r.parameters.iter().any(|id| self.parameters.contains(id))
    }

    /// The same test on an archived product, without hashing it (the scan of unchanged
    /// shards after a dictionary edit).
    pub fn touches_product(&self, p: &ArchivedProduct) -> bool {
        let hit = |set: &std::collections::HashSet<u64>,
                   id: &rkyv::option::ArchivedOption<rkyv::rend::u64_le>| {
            !set.is_empty() && id.as_ref().is_some_and(|id| set.contains(&id.to_native()))
        };
        hit(&self.producers, &p.producer)
            || hit(&self.categories, &p.category)
            || hit(&self.units, &p.unit)
            || hit(&self.series, &p.series)
            || hit(&self.warranties, &p.warranty)
            || hit(&self.size_groups, &p.size_group)
            || (!self.parameters.is_empty()
                && p.parameters
                    .iter()
                    .any(|pp| self.parameters.contains(&pp.id.to_native())))
    }
}
