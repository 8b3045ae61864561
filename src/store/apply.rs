//! Applying a batch of records to in-memory state: no I/O here, so the counting rules are
//! tested directly.
//!
//! Counting: a product or dictionary record that changes something is *applied*; one that
//! leaves the state as it was (an identical product, an identical dictionary entry, the
//! deletion of an unknown id) is *unchanged*; each product that disappears (a deletion, or
//! absence from a [`super::ApplyMode::FullSync`] batch) is *removed*. Records are applied in
//! batch order, so a later record for the same id wins.

use std::collections::{BTreeMap, HashSet};

use rust_decimal::Decimal;

use crate::catalog::{ArchivedProduct, Dictionaries, Product, ProductId, Record};
use crate::snapshot::format;

use super::StoreError;

/// A product-level change.
#[derive(Debug)]
pub(crate) enum Change {
    Upsert(Box<Product>),
    Delete(ProductId),
    /// An upsert whose product waits in a spool (read back when its shard is rebuilt).
    Spooled {
        id: ProductId,
        at: u64,
    },
}

impl Change {
    /// The product the change is about.
    pub(crate) fn id(&self) -> ProductId {
        match self {
            Change::Upsert(p) => p.id,
            Change::Delete(id) | Change::Spooled { id, .. } => *id,
        }
    }
}

/// A batch sorted out: dictionary records in order, product changes grouped by shard.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub dicts: Vec<Record>,
    pub products: BTreeMap<u32, Vec<Change>>,
}

/// The counts of an apply.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub applied: usize,
    pub unchanged: usize,
    pub removed: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.applied += other.applied;
        self.unchanged += other.unchanged;
        self.removed += other.removed;
    }
}

impl Batch {
    /// Normalize every record (the store never holds data that would not pass) and group the
    /// product changes by shard for `shard_count` shards. One bad record rejects the batch.
    pub(crate) fn split(records: Vec<Record>, shard_count: u32) -> Result<Batch, StoreError> {
        let mut batch = Batch::default();
        for (index, mut record) in records.into_iter().enumerate() {
            record
                .normalize()
                .map_err(|source| StoreError::InvalidRecord {
                    index,
                    subject: record.subject(),
                    source,
                })?;
            let change = match record {
                Record::Product(p) => Change::Upsert(p),
                Record::DeleteProduct { id } => Change::Delete(id),
                dict => {
                    batch.dicts.push(dict);
                    continue;
                }
            };
            batch
                .products
                .entry(format::shard_of(change.id(), shard_count))
                .or_default()
                .push(change);
        }
        Ok(batch)
    }
}

/// Apply dictionary records to `dicts`; returns whether anything changed.
pub(crate) fn apply_dicts(dicts: &mut Dictionaries, records: &[Record], tally: &mut Tally) -> bool {
    let mut changed = false;
    for record in records {
        if dict_entry_present(dicts, record) {
            tally.unchanged += 1;
        } else {
            dicts.upsert(record);
            tally.applied += 1;
            changed = true;
        }
    }
    changed
}

/// True when `dicts` already holds exactly the entry `record` carries.
fn dict_entry_present(d: &Dictionaries, record: &Record) -> bool {
    fn same<T: PartialEq>(list: &[T], item: &T, key: impl Fn(&T) -> u64) -> bool {
        list.binary_search_by_key(&key(item), &key)
            .is_ok_and(|i| list[i] == *item)
    }
    match record {
        Record::Shop(x) => same(&d.shops, x, |s| u64::from(s.id)),
        Record::Category(x) => same(&d.categories, x, |c| c.id),
        Record::Producer(x) => same(&d.producers, x, |p| p.id),
        Record::Unit(x) => same(&d.units, x, |u| u.id),
        Record::Series(x) => same(&d.series, x, |s| s.id),
        Record::Warranty(x) => same(&d.warranties, x, |w| w.id),
        Record::Warehouse(x) => same(&d.warehouses, x, |w| u64::from(w.id)),
        Record::SizeGroup(x) => same(&d.size_groups, x, |g| g.id),
        Record::Parameter(x) => same(&d.parameters, x, |p| p.id),
        // Never routed here (Batch::split keeps them apart); "present" makes it a no-op.
        Record::Product(_) | Record::DeleteProduct { .. } => true,
    }
}

/// A shard after a batch, predicted from ids alone (no product is read back): the shard
/// count and the removal guard are decided before any shard is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct After {
    /// Products the shard holds after the changes.
    pub len: usize,
    /// Products it holds now that are gone after them (deleted, or absent from a full sync).
    pub removed: usize,
}

/// How a shard with `old_ids` looks after `changes`.
pub(crate) fn count_after(
    old_ids: impl Iterator<Item = ProductId>,
    changes: &[Change],
    full_sync: bool,
) -> After {
    let old: HashSet<ProductId> = old_ids.collect();
    // With a full sync the result is exactly what the batch carries at its end.
    let mut ids: HashSet<ProductId> = if full_sync {
        HashSet::new()
    } else {
        old.clone()
    };
    for change in changes {
        match change {
            Change::Upsert(p) => ids.insert(p.id),
            Change::Spooled { id, .. } => ids.insert(*id),
            Change::Delete(id) => ids.remove(id),
        };
    }
    After {
        len: ids.len(),
        removed: old.iter().filter(|id| !ids.contains(id)).count(),
    }
}

/// The mass-deletion guard of a full sync: may it remove `removing` of the `products` the
/// catalog holds? Yes when the caller confirmed exactly that count, or, unconfirmed, when
/// it is at most `max_percent` of them. A confirmation of another count is a no: the
/// catalog is not what the caller looked at.
pub(crate) fn removal_allowed(
    products: usize,
    removing: usize,
    max_percent: Decimal,
    confirmed: Option<usize>,
) -> bool {
    if let Some(n) = confirmed {
        return n == removing;
    }
    if removing == 0 {
        return true;
    }
    // removing / products <= max_percent / 100, without division; counts fit a Decimal.
    match (
        Decimal::from(removing).checked_mul(Decimal::ONE_HUNDRED),
        Decimal::from(products).checked_mul(max_percent),
    ) {
        (Some(asked), Some(allowed)) => asked <= allowed,
        _ => false,
    }
}

/// Apply one shard's changes to its products. With `full_sync`, products the batch does
/// not carry are removed. Agrees with [`count_after`] on the resulting size and removals.
pub(crate) fn apply_shard(
    products: &mut BTreeMap<ProductId, Product>,
    changes: Vec<Change>,
    full_sync: bool,
    tally: &mut Tally,
) {
    let mut carried = HashSet::new();
    for change in changes {
        match change {
            Change::Upsert(p) => {
                if full_sync {
                    carried.insert(p.id);
                }
                match products.get_mut(&p.id) {
                    Some(old) if *old == *p => tally.unchanged += 1,
                    Some(old) => {
                        *old = *p;
                        tally.applied += 1;
                    }
                    None => {
                        products.insert(p.id, *p);
                        tally.applied += 1;
                    }
                }
            }
            // Read back by the store before a shard is rebuilt; never reaches here.
            Change::Spooled { id, .. } => {
                if full_sync {
                    carried.insert(id);
                }
                tally.unchanged += 1;
            }
            Change::Delete(id) => {
                if full_sync {
                    carried.remove(&id);
                }
                if products.remove(&id).is_some() {
                    tally.removed += 1;
                } else {
                    tally.unchanged += 1;
                }
            }
        }
    }
    if full_sync {
        let before = products.len();
        products.retain(|id, _| carried.contains(id));
        tally.removed += before - products.len();
    }
}

/// Deserialize archived products into an owned, id-keyed map.
pub(crate) fn thaw(
    products: &[ArchivedProduct],
) -> Result<BTreeMap<ProductId, Product>, StoreError> {
    products
        .iter()
        .map(|p| {
            rkyv::deserialize::<Product, rkyv::rancor::Error>(p)
                .map(|p| (p.id, p))
                .map_err(|e| StoreError::Deserialize {
                    what: format!("product {}", p.id.to_native()),
                    source: e,
                })
        })
        .collect()
}

/// The shard count for a catalog of `products` written from scratch: about
/// `products_per_shard` per shard, a power of two within `1..=MAX_SHARDS`.
pub(crate) fn fresh_shard_count(products: usize, products_per_shard: usize) -> u32 {
    let want = products.div_ceil(products_per_shard.max(1)).max(1);
    let capped = want.min(format::MAX_SHARDS as usize) as u32;
    capped.next_power_of_two().min(format::MAX_SHARDS)
}

/// The shard count after a change: a fresh count when the catalog was empty or shards grew
/// beyond 4× their target size (a full rewrite), the current count otherwise.
pub(crate) fn target_shard_count(
    current: u32,
    was_empty: bool,
    products: usize,
    products_per_shard: usize,
) -> u32 {
    if products == 0 {
        return current;
    }
    let average = products / current.max(1) as usize;
    let grown = current < format::MAX_SHARDS && average > 4 * products_per_shard;
    if was_empty || grown {
        fresh_shard_count(products, products_per_shard)
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Producer;

    fn product(id: ProductId, name: &str) -> Product {
        let mut p = Product::named(id, "pol", name);
        p.normalize().unwrap();
        p
    }

    fn upsert(id: ProductId, name: &str) -> Change {
        Change::Upsert(Box::new(product(id, name)))
    }

    #[test]
    fn upserts_count_applied_or_unchanged() {
        let mut shard = BTreeMap::from([(1, product(1, "a"))]);
        let mut t = Tally::default();
        apply_shard(
            &mut shard,
            vec![upsert(1, "a"), upsert(1, "b"), upsert(2, "c")],
            false,
            &mut t,
        );
        assert_eq!(
            t,
            Tally {
                applied: 2,
                unchanged: 1,
                removed: 0
            }
        );
        assert_eq!(shard[&1].description.name["pol"], "b");
        assert_eq!(shard.len(), 2);
    }

    #[test]
    fn deleting_unknown_id_is_unchanged_and_order_matters() {
        let mut shard = BTreeMap::from([(1, product(1, "a"))]);
        let mut t = Tally::default();
        apply_shard(
            &mut shard,
            vec![Change::Delete(9), Change::Delete(1), upsert(1, "again")],
            false,
            &mut t,
        );
        assert_eq!(
            t,
            Tally {
                applied: 1,
                unchanged: 1,
                removed: 1
            }
        );
        assert_eq!(shard[&1].description.name["pol"], "again");
    }

    #[test]
    fn full_sync_removes_what_the_batch_does_not_carry() {
        let mut shard: BTreeMap<_, _> = (1..=5).map(|i| (i, product(i, "x"))).collect();
        let mut t = Tally::default();
        apply_shard(
            &mut shard,
            vec![
                upsert(2, "x"),
                upsert(4, "y"),
                upsert(5, "z"),
                Change::Delete(5),
            ],
            true,
            &mut t,
        );
        assert_eq!(shard.keys().copied().collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(
            t,
            Tally {
                applied: 2,
                unchanged: 1,
                removed: 3
            }
        );
    }

    #[test]
    fn count_after_agrees_with_apply_shard() {
        let cases: Vec<(Vec<ProductId>, Vec<Change>)> = vec![
            (vec![1, 2, 3], vec![upsert(4, "a"), Change::Delete(2)]),
            (vec![1, 2, 3], vec![Change::Delete(9), upsert(1, "b")]),
            (
                vec![],
                vec![upsert(5, "c"), Change::Delete(5), upsert(5, "d")],
            ),
            (
                vec![1, 2, 3, 4, 5],
                vec![upsert(2, "x"), upsert(4, "y"), Change::Delete(4)],
            ),
        ];
        for full_sync in [false, true] {
            for (old, changes) in &cases {
                let mut shard: BTreeMap<_, _> =
                    old.iter().map(|&i| (i, product(i, "old"))).collect();
                let copy = changes
                    .iter()
                    .map(|c| match c {
                        Change::Upsert(p) => Change::Upsert(p.clone()),
                        Change::Delete(id) => Change::Delete(*id),
                        Change::Spooled { id, at } => Change::Spooled { id: *id, at: *at },
                    })
                    .collect();
                let predicted = count_after(old.iter().copied(), changes, full_sync);
                apply_shard(&mut shard, copy, full_sync, &mut Tally::default());
                assert_eq!(
                    predicted.len,
                    shard.len(),
                    "{old:?} {changes:?} {full_sync}"
                );
                let gone = old.iter().filter(|id| !shard.contains_key(id)).count();
                assert_eq!(predicted.removed, gone, "{old:?} {changes:?} {full_sync}");
            }
        }
    }

    #[test]
    fn the_removal_guard_allows_up_to_the_share_or_the_exact_confirmed_count() {
        let pct = |s: &str| s.parse::<Decimal>().unwrap();
        // 20 % of 200 is 40: 40 may go, 41 may not.
        assert!(removal_allowed(200, 40, pct("20"), None));
        assert!(!removal_allowed(200, 41, pct("20"), None));
        assert!(!removal_allowed(200, 200, pct("20"), None));
        // Confirmed: exactly the count, whatever the share; another count is refused.
        assert!(removal_allowed(200, 200, pct("20"), Some(200)));
        assert!(!removal_allowed(200, 200, pct("20"), Some(199)));
        assert!(!removal_allowed(200, 10, pct("20"), Some(11)));
        // Nothing removed is always fine, even from an empty catalog or with a 0 % limit.
        assert!(removal_allowed(0, 0, pct("0"), None));
        assert!(removal_allowed(5, 0, pct("0"), None));
        assert!(!removal_allowed(5, 1, pct("0"), None));
        // 100 % allows everything; fractional limits are exact.
        assert!(removal_allowed(7, 7, pct("100"), None));
        assert!(removal_allowed(1000, 125, pct("12.5"), None));
        assert!(!removal_allowed(1000, 126, pct("12.5"), None));
        assert!(removal_allowed(usize::MAX, usize::MAX, pct("100"), None));
    }

    #[test]
    fn dictionary_records_count_applied_or_unchanged() {
        let mut d = Dictionaries::default();
        let acme = Record::Producer(Producer {
            id: 1,
            name: "Acme".into(),
        });
        let renamed = Record::Producer(Producer {
            id: 1,
            name: "Acme Ltd".into(),
        });
        let mut t = Tally::default();
        assert!(apply_dicts(&mut d, std::slice::from_ref(&acme), &mut t));
        assert!(!apply_dicts(&mut d, &[acme], &mut t));
        assert!(apply_dicts(&mut d, &[renamed], &mut t));
        assert_eq!(t.applied, 2);
        assert_eq!(t.unchanged, 1);
        assert_eq!(d.producers[0].name, "Acme Ltd");
    }

    #[test]
    fn split_normalizes_and_names_the_bad_record() {
        let mut bad = product(3, "x");
        bad.vat = 200.into();
        let records = vec![
            Record::Product(Box::new(product(1, "ok"))),
            Record::Product(Box::new(bad)),
        ];
        let err = Batch::split(records, 4).unwrap_err().to_string();
        assert!(err.contains("record 1") && err.contains("product 3") && err.contains("vat"));

        let records = vec![
            Record::Product(Box::new(product(1, "ok"))),
            Record::DeleteProduct { id: 2 },
            Record::Producer(Producer {
                id: 1,
                name: "Acme".into(),
            }),
        ];
        let batch = Batch::split(records, 4).unwrap();
        assert_eq!(batch.dicts.len(), 1);
        assert_eq!(batch.products.values().map(Vec::len).sum::<usize>(), 2);
        for (shard, changes) in &batch.products {
            for c in changes {
                let id = c.id();
                assert_eq!(format::shard_of(id, 4), *shard);
            }
        }
    }

    #[test]
    fn shard_counts_follow_the_sizing_rule() {
        assert_eq!(fresh_shard_count(0, 1000), 1);
        assert_eq!(fresh_shard_count(1000, 1000), 1);
        assert_eq!(fresh_shard_count(1001, 1000), 2);
        assert_eq!(fresh_shard_count(100_000, 1000), 128);
        assert_eq!(fresh_shard_count(1_000_000, 1000), 1024);
        assert_eq!(fresh_shard_count(100_000_000, 1000), format::MAX_SHARDS);

        assert_eq!(target_shard_count(1, true, 3000, 1000), 4);
        assert_eq!(target_shard_count(4, false, 16_000, 1000), 4);
        assert_eq!(target_shard_count(4, false, 16_004, 1000), 32);
        assert_eq!(target_shard_count(8, false, 0, 1000), 8);
        assert_eq!(target_shard_count(4096, false, 50_000_000, 1000), 4096);
    }
}
