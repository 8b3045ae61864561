//! The changes stage on a real store in a temporary directory: what it logs and what
//! `verify` finds (the files of windows and bases are the publish cycle's tests).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::*;
use crate::catalog::sample::{sample_dictionaries, sample_products};
use crate::catalog::{Dictionaries, Product, Record};
use crate::store::{ApplyMode, Store, StoreOptions};

pub(crate) fn dict_records(d: &Dictionaries) -> Vec<Record> {
    d.clone().into_records()
}

pub(crate) fn put(p: &Product) -> Record {
    Record::Product(Box::new(p.clone()))
}

pub(crate) fn options() -> ChangesOptions {
    ChangesOptions::new(TimeZone::get("Europe/Warsaw").unwrap())
}

/// The sample catalog in a store of two products per shard, in a temporary directory (the
/// publish cycle's tests use it too).
pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Store,
    pub(crate) products: BTreeMap<u64, Product>,
}

impl World {
    pub(crate) fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("store"),
            StoreOptions {
                products_per_shard: 2,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let products: BTreeMap<u64, Product> =
            sample_products().into_iter().map(|p| (p.id, p)).collect();
        let mut records = dict_records(&sample_dictionaries());
        records.extend(products.values().map(put));
        store.apply(records, ApplyMode::FullSync).unwrap();
        World {
            dir,
            store,
            products,
        }
    }

    pub(crate) fn changes(&self) -> Changes {
        Changes::open(
            &self.dir.path().join("changes"),
            &self.store.snapshot(),
            options(),
        )
        .unwrap()
    }

    pub(crate) fn edit(&mut self, id: u64, f: impl FnOnce(&mut Product)) {
        let p = self.products.get_mut(&id).unwrap();
        f(p);
        let record = put(p);
        self.store.apply(vec![record], ApplyMode::Upsert).unwrap();
    }

    pub(crate) fn delete(&mut self, id: u64) {
        self.products.remove(&id);
        self.store
            .apply(vec![Record::DeleteProduct { id }], ApplyMode::Upsert)
            .unwrap();
    }
}

#[test]
fn identical_generations_log_nothing_and_edits_log_their_nodes() {
    let mut w = World::new();
    let changes = w.changes();
    assert!(changes.log_entries().unwrap().is_empty());
    // The same catalog again: the store publishes nothing, and observing again logs nothing.
    let mut again = dict_records(&sample_dictionaries());
    again.extend(w.products.values().map(put));
    w.store.apply(again, ApplyMode::FullSync).unwrap();
    let report = changes.observe(&w.store.snapshot()).unwrap();
    assert!(!report.logged);

    w.edit(1001, |p| p.sizes[0].stock[1].quantity += Decimal::ONE);
    w.edit(1003, |p| {
        p.description.name.insert("pol".into(), "Nowa nazwa".into());
    });
    w.delete(1006);
    let report = changes.observe(&w.store.snapshot()).unwrap();
    assert!(report.logged);
    assert_eq!(report.records, 3);
    assert!(report.shards_hashed >= 1);
    let entries: Vec<(u64, Change)> = changes
        .log_entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.product, e.change))
        .collect();
    assert_eq!(
        entries,
        vec![
            (1001, Change::Nodes(vec![MainNode::Sizes])),
            (1003, Change::Nodes(vec![MainNode::Description])),
            (1006, Change::Removed),
        ]
    );
}

#[test]
fn a_renamed_producer_is_logged_for_each_of_its_products_only() {
    let w = World::new();
    let changes = w.changes();
    let mut dicts = sample_dictionaries();
    let producer = dicts.producers.iter_mut().find(|p| p.id == 1).unwrap();
    producer.name = "Nowy producent".into();
    let record = Record::Producer(producer.clone());
    w.store.apply(vec![record], ApplyMode::Upsert).unwrap();
    changes.observe(&w.store.snapshot()).unwrap();
    let expected: Vec<(u64, Change)> = w
        .products
        .values()
        .filter(|p| p.producer == Some(1))
        .map(|p| (p.id, Change::Nodes(vec![MainNode::Producer])))
        .collect();
    assert!(!expected.is_empty());
    let entries: Vec<(u64, Change)> = changes
        .log_entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.product, e.change))
        .collect();
    assert_eq!(entries, expected);
}

#[test]
fn verify_checks_the_checkpoint_the_log_and_the_hash_files_it_needs() {
    let mut w = World::new();
    let dir = w.dir.path().join("changes");
    let changes = w.changes();
    // A frame after the checkpoint: its hash files are checked too.
    let first = *w.products.keys().next().unwrap();
    w.edit(first, |p| {
        p.description.name.insert("pol".into(), "Sprawdzona".into());
    });
    changes.observe(&w.store.snapshot()).unwrap();
    let check = verify(&dir);
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert!(check.checkpoint.is_some());
    assert!(check.log.frames >= 1 && check.hash_files > 1, "{check:?}");
    let state_shards: Vec<String> = State::read(&dir)
        .unwrap()
        .unwrap()
        .shards
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    drop(changes);

    // A hash file the checkpoint names and the log still needs, damaged: reported.
    let current: HashSet<String> = w
        .store
        .snapshot()
        .shards()
        .map(|s| hashfiles::hex(&hashfiles::cid(&s.content_id)))
        .collect();
    let victim = state_shards
        .iter()
        .find(|id| current.contains(*id))
        .expect("an unchanged shard");
    let path = dir.join("hashes").join(format!("s{victim}.nh"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let check = verify(&dir);
    assert_eq!(check.problems.len(), 1, "{:?}", check.problems);
    assert!(
        check.problems[0].contains(victim.as_str()),
        "{:?}",
        check.problems
    );

    // An unreadable checkpoint.
    std::fs::write(dir.join(state::STATE), b"{").unwrap();
    let check = verify(&dir);
    assert!(check.problems[0].contains("STATE"), "{:?}", check.problems);
}
