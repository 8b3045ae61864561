//! The diff between two generations: per-product node hashes compared shard by shard, and
//! the log frame that records it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::hash::{self, hash_product, hash_products, DictHashes, NodeHash, ProductHashes};
use super::hashfiles::{self, Cid, HashFiles};
use super::log::{Frame, Kind, NodeDelta, Record};
use super::{parallel, ChangesError, Inner, ObserveReport};
use crate::catalog::MainNode;
use crate::snapshot::Snapshot;

/// Records for products whose hashes differ between `old` and `new` (both any order).
pub(super) fn diff(
    mut old: Vec<ProductHashes>,
    mut new: Vec<ProductHashes>,
    old_dicts: &DictHashes,
    new_dicts: &DictHashes,
    same_dicts: bool,
) -> Vec<Record> {
    old.sort_unstable_by_key(|h| h.id);
    new.sort_unstable_by_key(|h| h.id);
    let mut out = Vec::new();
    let (mut a, mut b) = (old.into_iter().peekable(), new.into_iter().peekable());
    let present = |eff: [NodeHash; hash::NODES], added: bool| -> Vec<NodeDelta> {
        MainNode::ALL
            .into_iter()
            .filter(|n| eff[hash::index(*n)] != hash::ABSENT)
            .map(|node| {
                let h = eff[hash::index(node)];
                if added {
                    NodeDelta {
                        node,
                        old: hash::ABSENT,
                        new: h,
                    }
                } else {
                    NodeDelta {
                        node,
                        old: h,
                        new: hash::ABSENT,
                    }
                }
            })
            .collect()
    };
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.id.cmp(&y.id),
        };
        match order {
            std::cmp::Ordering::Less => {
                let Some(x) = a.next() else { break };
                out.push(Record {
                    product: x.id,
                    kind: Kind::Removed,
                    nodes: present(old_dicts.effective(&x), false),
                    old: Some(x.membership),
                    new: None,
                });
            }
            std::cmp::Ordering::Greater => {
                let Some(y) = b.next() else { break };
                out.push(Record {
                    product: y.id,
                    kind: Kind::Added,
                    nodes: present(new_dicts.effective(&y), true),
                    old: None,
                    new: Some(y.membership),
                });
            }
            std::cmp::Ordering::Equal => {
                let (Some(x), Some(y)) = (a.next(), b.next()) else {
                    break;
                };
                if same_dicts && x == y {
                    continue;
                }
                if let Some(r) = changed_record(&x, &y, old_dicts, new_dicts) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// The record of a product present on both sides, if anything it shows differs.
pub(super) fn changed_record(
    x: &ProductHashes,
    y: &ProductHashes,
    old_dicts: &DictHashes,
    new_dicts: &DictHashes,
) -> Option<Record> {
    let (ex, ey) = (old_dicts.effective(x), new_dicts.effective(y));
    let nodes: Vec<NodeDelta> = MainNode::ALL
        .into_iter()
        .filter(|n| ex[hash::index(*n)] != ey[hash::index(*n)])
        .map(|node| NodeDelta {
            node,
            old: ex[hash::index(node)],
            new: ey[hash::index(node)],
        })
        .collect();
    if nodes.is_empty() && x.membership == y.membership {
        return None;
    }
    Some(Record {
        product: y.id,
        kind: Kind::Changed,
        nodes,
        old: Some(x.membership.clone()),
        new: Some(y.membership.clone()),
    })
}

/// Take `snapshot` as the logged state without a frame: every shard hashed and stored.
pub(super) fn start_at(inner: &mut Inner, snapshot: &Arc<Snapshot>) -> Result<(), ChangesError> {
    let views: Vec<(Cid, &[crate::catalog::ArchivedProduct])> = snapshot
        .shards()
        .map(|s| (hashfiles::cid(&s.content_id), s.products))
        .filter(|(cid, _)| !inner.hashes.has_shard(cid))
        .collect();
    let started = std::time::Instant::now();
    let hashes = &inner.hashes;
    for written in parallel(&views, |(cid, products)| {
        hashes.put_shard(cid, &hash_products(products))
    }) {
        written?;
    }
    inner.unsynced.extend(views.iter().map(|(c, _)| *c));
    let dicts = hashfiles::cid(&snapshot.dicts_content_id());
    let dict_hashes = DictHashes::new(snapshot.dicts())?;
    inner.hashes.put_dicts(&dicts, &dict_hashes)?;
    inner.unsynced_dicts.push(dicts);
    inner.shards = snapshot
        .shards()
        .map(|s| (s.index, hashfiles::cid(&s.content_id)))
        .collect();
    inner.shard_count = snapshot.shard_count();
    inner.dicts = dicts;
    inner.dict_hashes = Arc::new(dict_hashes);
    inner.generation = snapshot.generation();
    inner.last = Some(snapshot.clone());
    inner
        .hashes
        .retain(&inner.shards.values().copied().collect(), &inner.dicts);
    tracing::info!(
        products = snapshot.len(),
        shards = views.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "main-node hashes computed"
    );
    Ok(())
}

/// Apply a frame's shard slots to a shard map.
pub(super) fn apply_slots(shards: &mut BTreeMap<u32, Cid>, count: &mut u32, f: &Frame) {
    if f.shard_count != *count {
        shards.clear();
        *count = f.shard_count;
    }
    for (index, cid) in &f.shards {
        match cid {
            Some(cid) => shards.insert(*index, *cid),
            None => shards.remove(index),
        };
    }
}

/// One unit of diff work: old shard contents against new ones covering the same products.
pub(super) struct Pair<'s> {
    old: Vec<Cid>,
    new: Vec<(Cid, &'s [crate::catalog::ArchivedProduct])>,
}

/// What one [`Pair`] produced.
pub(super) struct PairDone {
    records: Vec<Record>,
    hashed: usize,
    bytes: u64,
}

pub(super) fn diff_pair(
    hashes: &HashFiles,
    pair: &Pair,
    old_dicts: &DictHashes,
    new_dicts: &DictHashes,
    same_dicts: bool,
) -> Result<PairDone, ChangesError> {
    let mut old_side = Vec::new();
    for cid in &pair.old {
        old_side.extend(hashes.shard(cid)?);
    }
    let mut new_side = Vec::new();
    let mut bytes = 0;
    for (cid, products) in &pair.new {
        let hashed = hash_products(products);
        bytes += hashes.put_shard(cid, &hashed)?;
        new_side.extend(hashed);
    }
    Ok(PairDone {
        records: diff(old_side, new_side, old_dicts, new_dicts, same_dicts),
        hashed: pair.new.len(),
        bytes,
    })
}

/// Diff pairs on every core.
pub(super) fn diff_pairs(
    hashes: &HashFiles,
    pairs: Vec<Pair>,
    old_dicts: &DictHashes,
    new_dicts: &DictHashes,
    same_dicts: bool,
) -> Result<PairDone, ChangesError> {
    let mut total = PairDone {
        records: Vec::new(),
        hashed: 0,
        bytes: 0,
    };
    for done in parallel(&pairs, |pair| {
        diff_pair(hashes, pair, old_dicts, new_dicts, same_dicts)
    }) {
        let done = done?;
        total.records.extend(done.records);
        total.hashed += done.hashed;
        total.bytes += done.bytes;
    }
    Ok(total)
}

pub(super) fn observe_locked(
    inner: &mut Inner,
    snapshot: &Arc<Snapshot>,
) -> Result<ObserveReport, ChangesError> {
    let mut report = ObserveReport {
        generation: snapshot.generation(),
        ..Default::default()
    };
    // Content ids first, from the shard headers: an unchanged generation (every start-up)
    // touches no mapped page.
    let ids: BTreeMap<u32, Cid> = snapshot
        .shard_ids()
        .map(|(i, c)| (i, hashfiles::cid(&c)))
        .collect();
    let count = snapshot.shard_count();
    let dicts = hashfiles::cid(&snapshot.dicts_content_id());
    let same_layout = count == inner.shard_count;
    let slots: Vec<(u32, Option<Cid>)> = if same_layout {
        let indices: std::collections::BTreeSet<u32> =
            ids.keys().chain(inner.shards.keys()).copied().collect();
        indices
            .into_iter()
            .map(|i| (i, ids.get(&i).copied()))
            .filter(|(i, c)| inner.shards.get(i) != c.as_ref())
            .collect()
    } else {
        ids.iter().map(|(i, c)| (*i, Some(*c))).collect()
    };
    if same_layout && slots.is_empty() && dicts == inner.dicts {
        inner.generation = snapshot.generation();
        inner.last = Some(snapshot.clone());
        return Ok(report);
    }
    let views: BTreeMap<u32, (Cid, &[crate::catalog::ArchivedProduct])> = snapshot
        .shards()
        .map(|s| (s.index, (hashfiles::cid(&s.content_id), s.products)))
        .collect();
    let old_cids: HashSet<Cid> = inner.shards.values().copied().collect();
    let new_cids: HashSet<Cid> = views.values().map(|(c, _)| *c).collect();
    let mut removed: Vec<Cid> = old_cids.difference(&new_cids).copied().collect();
    removed.sort_unstable();
    let pairs: Vec<Pair> = if same_layout {
        // A product's shard depends only on its id and the count: diff slot by slot.
        slots
            .iter()
            .map(|(i, _)| Pair {
                old: inner.shards.get(i).copied().into_iter().collect(),
                new: views.get(i).copied().into_iter().collect(),
            })
            .collect()
    } else {
        // Resharded: contents that exist on both sides hold the same products; the rest is
        // compared as a whole.
        vec![Pair {
            old: removed.clone(),
            new: views
                .values()
                .filter(|(c, _)| !old_cids.contains(c))
                .copied()
                .collect(),
        }]
    };
    let same_dicts = dicts == inner.dicts;
    let new_dicts = if same_dicts {
        inner.dict_hashes.clone()
    } else {
        let d = DictHashes::new(snapshot.dicts())?;
        report.bytes_written += inner.hashes.put_dicts(&dicts, &d)?;
        inner.unsynced_dicts.push(dicts);
        Arc::new(d)
    };
    let done = diff_pairs(
        &inner.hashes,
        pairs,
        &inner.dict_hashes,
        &new_dicts,
        same_dicts,
    )?;
    inner.unsynced.extend(
        views
            .values()
            .map(|(c, _)| *c)
            .filter(|c| !old_cids.contains(c)),
    );
    report.shards_hashed = done.hashed;
    report.bytes_written += done.bytes;
    let mut records = done.records;
    if !same_dicts {
        let entries = new_dicts.changed_since(&inner.dict_hashes);
        if !entries.is_empty() {
            // Unchanged shards hold the same products: only dictionary entries they show can
            // have changed their nodes.
            let mut scratch = Vec::new();
            for (cid, products) in views.values() {
                if !old_cids.contains(cid) {
                    continue;
                }
                for p in products.iter().filter(|p| entries.touches_product(p)) {
                    let h = hash_product(p, &mut scratch);
                    if let Some(r) = changed_record(&h, &h, &inner.dict_hashes, &new_dicts) {
                        records.push(r);
                    }
                }
            }
        }
    }
    records.sort_unstable_by_key(|r| r.product);
    report.records = records.len();
    let frame = Frame {
        generation: snapshot.generation(),
        time: snapshot.published(),
        dicts,
        shard_count: count,
        shards: slots,
        records,
    };
    report.bytes_written += inner.log.append(&frame)?;
    report.logged = true;
    apply_slots(&mut inner.shards, &mut inner.shard_count, &frame);
    inner.dicts = dicts;
    inner.dict_hashes = new_dicts;
    inner.generation = snapshot.generation();
    inner.last = Some(snapshot.clone());
    // The files of shards this frame removed are deleted one frame later: should this frame
    // turn out torn after a crash, the generation before it is diffed again from them.
    for cid in std::mem::replace(&mut inner.unreferenced, removed) {
        if !inner.shards.values().any(|c| *c == cid) {
            inner.hashes.remove_shard(&cid);
        }
    }
    Ok(report)
}
