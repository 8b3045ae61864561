//! Behaviour of the durable store and its snapshots, on real files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use iofd::catalog::{Product, Record};
use iofd::snapshot::Snapshot;
use iofd::store::{load_snapshot, verify, ApplyMode, Store, StoreError, StoreOptions};

/// A small valid product: an id, a Polish name and one size with some stock.
fn product(id: u64, name: &str, stock: u32) -> Product {
    let mut p: Product = serde_json::from_value(serde_json::json!({
        "id": id,
        "vat": 23,
        "description": {"name": {"pol": name}},
        "prices": {"retail": {"net": "10.00", "gross": "12.30"}},
        "stock": [{"warehouse": 0, "quantity": stock}],
    }))
    .unwrap();
    p.normalize().unwrap();
    p
}

fn records(ids: impl IntoIterator<Item = u64>, name: &str) -> Vec<Record> {
    ids.into_iter()
        .map(|id| Record::Product(Box::new(product(id, &format!("{name} {id}"), 5))))
        .collect()
}

fn small(products_per_shard: usize) -> StoreOptions {
    StoreOptions {
        products_per_shard,
        ..StoreOptions::default()
    }
}

/// Every product of a snapshot, deserialized, by id.
fn contents(s: &Snapshot) -> BTreeMap<u64, Product> {
    s.products()
        .map(|p| {
            let p: Product = rkyv::deserialize::<_, rkyv::rancor::Error>(p).unwrap();
            (p.id, p)
        })
        .collect()
}

fn content_ids(s: &Snapshot) -> Vec<(u32, [u8; 32])> {
    s.shards().map(|v| (v.index, v.content_id)).collect()
}

/// File names in the store directory with their modification times.
fn listing(dir: &Path) -> BTreeMap<String, std::time::SystemTime> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

fn shard_files(dir: &Path) -> BTreeSet<String> {
    listing(dir)
        .into_keys()
        .filter(|n| n.starts_with("shard-"))
        .collect()
}

/// The snapshot files the current generation and its fallback name.
fn referenced(dir: &Path) -> BTreeSet<String> {
    let check = verify(dir);
    [check.current, check.fallback]
        .into_iter()
        .flatten()
        .flat_map(|g| g.unwrap().files)
        .filter(|n| n.starts_with("shard-"))
        .collect()
}

fn name_of(s: &Snapshot, id: u64) -> String {
    s.product(id)
        .unwrap()
        .description
        .name
        .get("pol")
        .unwrap()
        .to_string()
}

#[test]
fn empty_store_opens_at_generation_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("new"), StoreOptions::default()).unwrap();
    let s = store.snapshot();
    assert_eq!(s.generation(), 0);
    assert!(s.is_empty());
    assert_eq!(s.len(), 0);
    assert_eq!(s.products().count(), 0);
    assert!(s.product(1).is_none());
    assert!(s.dicts().producers.is_empty());
    assert_eq!(s.published(), jiff::Timestamp::UNIX_EPOCH);
}

#[test]
fn round_trip_through_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut batch = records(1..=200, "item");
    batch.push(serde_json::from_str(r#"{"kind":"producer","id":7,"name":"Acme"}"#).unwrap());
    let (written, ids, dicts_id, generation) = {
        let store = Store::open(dir.path(), small(10)).unwrap();
        let report = store.apply(batch, ApplyMode::Upsert).unwrap();
        assert_eq!(report.generation, 1);
        assert_eq!(report.applied, 201);
        assert_eq!((report.unchanged, report.removed), (0, 0));
        let s = store.snapshot();
        assert_eq!(s.len(), 200);
        assert_eq!(s.shard_count(), 32, "200 products at 10 per shard");
        assert_eq!(report.shards_written, s.shards().count() + 1);
        assert!(report.bytes_written > 0);
        (
            contents(&s),
            content_ids(&s),
            s.dicts_content_id(),
            s.generation(),
        )
    };
    let store = Store::open(dir.path(), small(10)).unwrap();
    let s = store.snapshot();
    assert_eq!(s.generation(), generation);
    assert_eq!(contents(&s), written);
    assert_eq!(content_ids(&s), ids);
    assert_eq!(s.dicts_content_id(), dicts_id);
    assert_eq!(s.dicts().producers[0].name, "Acme");
    assert_eq!(written[&17], product(17, "item 17", 5));
    for shard in s.shards() {
        assert!(shard.products.windows(2).all(|w| w[0].id < w[1].id));
        assert!(shard
            .products
            .iter()
            .all(|p| s.shard_of(p.id.to_native()) == shard.index));
    }
    // The read-only loader sees the same generation.
    assert_eq!(content_ids(&load_snapshot(dir.path()).unwrap()), ids);
}

#[test]
fn identical_reapply_publishes_nothing_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(10)).unwrap();
    store
        .apply(records(1..=100, "item"), ApplyMode::Upsert)
        .unwrap();
    let before = listing(dir.path());
    let mut rx = store.subscribe();
    rx.mark_unchanged();

    let report = store
        .apply(records(1..=100, "item"), ApplyMode::FullSync)
        .unwrap();
    assert_eq!(report.generation, 1);
    assert_eq!(
        (report.applied, report.unchanged, report.removed),
        (0, 100, 0)
    );
    assert_eq!((report.shards_written, report.bytes_written), (0, 0));
    assert_eq!(listing(dir.path()), before);
    assert!(!rx.has_changed().unwrap());
    assert_eq!(store.snapshot().generation(), 1);
}

#[test]
fn one_product_change_rewrites_exactly_one_shard_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(10)).unwrap();
    store
        .apply(records(1..=300, "item"), ApplyMode::Upsert)
        .unwrap();
    let old = store.snapshot();
    let old_files = shard_files(dir.path());
    let mut rx = store.subscribe();

    let change = vec![Record::Product(Box::new(product(42, "renamed", 0)))];
    let report = store.apply(change, ApplyMode::Upsert).unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(report.applied, 1);
    assert_eq!(report.shards_written, 1);
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);

    let new = store.snapshot();
    let new_files = shard_files(dir.path());
    // The replaced file stays, with the rest of generation 1, as the fallback.
    assert!(old_files.is_subset(&new_files));
    assert_eq!(new_files.difference(&old_files).count(), 1);
    assert_eq!(new_files, referenced(dir.path()));
    let changed: Vec<u32> = content_ids(&old)
        .into_iter()
        .zip(content_ids(&new))
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0)
        .collect();
    assert_eq!(changed, vec![new.shard_of(42)]);
    assert_eq!(name_of(&new, 42), "renamed");
    assert!(!new.product(42).unwrap().in_stock());
    assert_eq!(name_of(&old, 42), "item 42");
}

#[test]
fn full_sync_removes_absent_products() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(10)).unwrap();
    store
        .apply(records(1..=100, "item"), ApplyMode::Upsert)
        .unwrap();

    // Half the catalog would go: more than the default 20 %, so the guard refuses the
    // sync whole, with the numbers, and nothing changes.
    let err = store
        .apply(records(51..=120, "item"), ApplyMode::FullSync)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::RemovalRefused {
                removing: 50,
                products: 100,
                confirmed: None,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("confirm_removal=50"), "{err}");
    assert_eq!(store.snapshot().generation(), 1);
    assert_eq!(store.snapshot().len(), 100);
    // A confirmation of another count is refused too: the catalog is not what was checked.
    let err = store
        .apply(
            records(51..=120, "item"),
            ApplyMode::FullSyncConfirmed { removal: 49 },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::RemovalRefused {
                confirmed: Some(49),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.snapshot().len(), 100);

    let report = store
        .apply(
            records(51..=120, "item"),
            ApplyMode::FullSyncConfirmed { removal: 50 },
        )
        .unwrap();
    assert_eq!(report.removed, 50);
    assert_eq!(report.applied, 20);
    assert_eq!(report.unchanged, 50);
    let s = store.snapshot();
    assert_eq!(s.len(), 70);
    let ids: BTreeSet<u64> = s.products().map(|p| p.id.to_native()).collect();
    assert_eq!(ids, (51..=120).collect());

    // Upsert mode keeps what the batch does not name.
    store
        .apply(records([500], "item"), ApplyMode::Upsert)
        .unwrap();
    assert_eq!(store.snapshot().len(), 71);
}

#[test]
fn deletion_removes_products_and_unknown_ids_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(4)).unwrap();
    store
        .apply(records(1..=20, "item"), ApplyMode::Upsert)
        .unwrap();
    let files_before = shard_files(dir.path()).len();

    let report = store
        .apply(
            vec![
                Record::DeleteProduct { id: 3 },
                Record::DeleteProduct { id: 999 },
            ],
            ApplyMode::Upsert,
        )
        .unwrap();
    assert_eq!(
        (report.removed, report.unchanged, report.applied),
        (1, 1, 0)
    );
    assert_eq!(report.generation, 2);
    let s = store.snapshot();
    assert!(s.product(3).is_none());
    assert_eq!(s.len(), 19);

    // Only unknown ids: nothing to publish.
    let report = store
        .apply(vec![Record::DeleteProduct { id: 999 }], ApplyMode::Upsert)
        .unwrap();
    assert_eq!((report.generation, report.unchanged), (2, 1));

    // Emptying a whole shard removes its file without writing a new one.
    let view = s.shards().find(|v| v.products.len() == 1).unwrap();
    let id = view.products[0].id.to_native();
    let r = store
        .apply(vec![Record::DeleteProduct { id }], ApplyMode::Upsert)
        .unwrap();
    assert_eq!((r.generation, r.shards_written), (3, 0));
    assert_eq!(store.snapshot().shards().count(), files_before - 1);
    assert_eq!(shard_files(dir.path()), referenced(dir.path()));
    // Everything gone, then reopened: an empty catalog at the latest generation.
    let left = store.snapshot().len();
    store
        .apply(vec![], ApplyMode::FullSyncConfirmed { removal: left })
        .unwrap();
    drop(store);
    let s = Store::open(dir.path(), small(4)).unwrap().snapshot();
    assert!(s.is_empty());
    assert!(s.generation() >= 3);
    // The empty generation maps no file; the fallback's stay until the next commit.
    assert_eq!(shard_files(dir.path()), referenced(dir.path()));
    let store = Store::open(dir.path(), small(4)).unwrap();
    store.apply(records([1], "x"), ApplyMode::Upsert).unwrap();
    assert_eq!(shard_files(dir.path()).len(), 1);
}

#[test]
fn corrupted_shard_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small(10)).unwrap();
        store
            .apply(records(1..=50, "item"), ApplyMode::Upsert)
            .unwrap();
    }
    let victim = shard_files(dir.path()).into_iter().nth(1).unwrap();
    let path = dir.path().join(&victim);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 0x40;
    fs::write(&path, bytes).unwrap();

    // The shard was checked when written: an open maps it on the verified record's word
    // (reading no payload), and the scrub finds the damage.
    let store = Store::open(dir.path(), small(10)).unwrap();
    let opened = store.open_stats();
    assert_eq!((opened.checked, opened.checked_bytes), (0, 0), "{opened:?}");
    assert_eq!(
        opened.trusted,
        shard_files(dir.path()).len() as u64,
        "{opened:?}"
    );
    assert_eq!(store.damage(), None);
    let mut found = Vec::new();
    assert!(store.scrub_pass(|_| true, |s| found.push(s)));
    let damaged: Vec<_> = found
        .iter()
        .filter_map(|s| match s {
            iofd::store::scrub::Scrubbed::Damaged { file, .. } => Some(file.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(damaged, vec![victim.clone()]);
    assert!(store.damage().unwrap().contains(&victim));
    drop(store);

    // The scrub revoked its record entry: the next open checks it in full and refuses it.
    let err = Store::open(dir.path(), small(10)).unwrap_err().to_string();
    assert!(err.contains(&victim), "{err}");
    assert!(err.contains("checksum"), "{err}");
    // A refused open collects nothing: the evidence stays.
    assert!(path.exists());
}

#[test]
fn an_unrecorded_shard_is_checked_at_open_and_verify_catches_recorded_damage() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small(10)).unwrap();
        store
            .apply(records(1..=50, "item"), ApplyMode::Upsert)
            .unwrap();
    }
    // Without the record (an older build's store), every file is checked once, then recorded.
    fs::remove_file(dir.path().join("VERIFIED")).unwrap();
    let opened = Store::open(dir.path(), small(10)).unwrap().open_stats();
    assert_eq!(opened.trusted, 0, "{opened:?}");
    let files = shard_files(dir.path()).len() as u64;
    assert!(
        opened.checked == files && opened.checked_bytes > 0,
        "{opened:?}"
    );
    let opened = Store::open(dir.path(), small(10)).unwrap().open_stats();
    assert_eq!((opened.checked, opened.trusted), (0, files), "{opened:?}");

    // Bytes altered after they were recorded: `verify` checks in full, names the file and
    // revokes it, so the next open refuses it too.
    let victim = shard_files(dir.path()).into_iter().next().unwrap();
    damage(&dir.path().join(&victim));
    let err = verify(dir.path()).current.unwrap().unwrap_err().to_string();
    assert!(err.contains(&victim) && err.contains("checksum"), "{err}");
    let err = Store::open(dir.path(), small(10)).unwrap_err().to_string();
    assert!(err.contains(&victim) && err.contains("checksum"), "{err}");
}

#[test]
fn truncated_file_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small(10)).unwrap();
        store
            .apply(records(1..=50, "item"), ApplyMode::Upsert)
            .unwrap();
    }
    for cut in [30usize, 200] {
        let victim = shard_files(dir.path()).into_iter().next().unwrap();
        let path = dir.path().join(&victim);
        let original = fs::read(&path).unwrap();
        fs::write(&path, &original[..original.len().min(cut)]).unwrap();
        let err = Store::open(dir.path(), small(10)).unwrap_err().to_string();
        assert!(err.contains(&victim), "{err}");
        assert!(err.contains("truncated"), "{err}");
        fs::write(&path, &original).unwrap();
    }
    Store::open(dir.path(), small(10)).unwrap();
}

#[test]
fn leftovers_of_a_crash_are_ignored_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small(10)).unwrap();
        store
            .apply(records(1..=50, "item"), ApplyMode::Upsert)
            .unwrap();
    }
    let referenced = listing(dir.path());
    let leftovers = [
        "MANIFEST.tmp".to_owned(),
        format!("shard-0001-{}.snap.tmp", "0".repeat(32)),
        format!("shard-0002-{}.snap", "1".repeat(32)),
        format!("dicts-{}.snap", "2".repeat(32)),
    ];
    for name in &leftovers {
        fs::write(dir.path().join(name), b"half a file").unwrap();
    }
    fs::write(dir.path().join("README"), b"not ours").unwrap();

    let store = Store::open(dir.path(), small(10)).unwrap();
    assert_eq!(store.snapshot().len(), 50);
    let mut expected: BTreeSet<String> = referenced.into_keys().collect();
    expected.insert("README".into());
    assert_eq!(
        listing(dir.path()).into_keys().collect::<BTreeSet<_>>(),
        expected
    );
}

#[test]
fn old_snapshot_stays_readable_after_its_files_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(10)).unwrap();
    store
        .apply(records(1..=100, "old"), ApplyMode::Upsert)
        .unwrap();
    let held: Arc<Snapshot> = store.snapshot();
    let held_files = shard_files(dir.path());

    for round in 0..3 {
        let report = store
            .apply(
                records(1..=100, &format!("new{round}")),
                ApplyMode::FullSync,
            )
            .unwrap();
        assert_eq!(report.applied, 100);
    }
    // Every file of the held generation is gone from the directory...
    assert!(held_files.is_disjoint(&shard_files(dir.path())));
    // ...and the held snapshot still reads its own, valid data.
    assert_eq!(held.generation(), 1);
    assert_eq!(held.len(), 100);
    for id in 1..=100 {
        assert_eq!(name_of(&held, id), format!("old {id}"));
    }
    assert_eq!(name_of(&store.snapshot(), 7), "new2 7");
}

#[test]
fn resharding_keeps_every_product() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(4)).unwrap();
    store
        .apply(records(1..=8, "item"), ApplyMode::Upsert)
        .unwrap();
    assert_eq!(store.snapshot().shard_count(), 2);

    // Grow in steps; 4× the target per shard triggers a full rewrite into more shards.
    let mut expected = contents(&store.snapshot());
    for step in 1..=4u64 {
        let batch = records(step * 100..step * 100 + 30, "more");
        let report = store.apply(batch, ApplyMode::Upsert).unwrap();
        assert_eq!(report.applied, 30);
        for id in step * 100..step * 100 + 30 {
            expected.insert(id, product(id, &format!("more {id}"), 5));
        }
    }
    let s = store.snapshot();
    assert!(s.shard_count() >= 16, "count {}", s.shard_count());
    assert_eq!(contents(&s), expected);
    for id in expected.keys() {
        assert!(s.product(*id).is_some(), "product {id} not found by lookup");
    }
    drop(store);
    let reopened = Store::open(dir.path(), small(4)).unwrap().snapshot();
    assert_eq!(contents(&reopened), expected);
    assert_eq!(shard_files(dir.path()), referenced(dir.path()));
}

#[test]
fn dictionaries_are_durable_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let cat: Record =
        serde_json::from_str(r#"{"kind":"category","id":3,"name":{"pol":"Buty"}}"#).unwrap();
    let r = store.apply(vec![cat.clone()], ApplyMode::Upsert).unwrap();
    assert_eq!((r.generation, r.applied, r.shards_written), (1, 1, 1));
    let r = store.apply(vec![cat], ApplyMode::FullSync).unwrap();
    assert_eq!((r.generation, r.unchanged, r.bytes_written), (1, 1, 0));
    drop(store);
    let s = Store::open(dir.path(), StoreOptions::default())
        .unwrap()
        .snapshot();
    assert_eq!(s.dicts().categories[0].name.get("pol").unwrap(), "Buty");
    assert!(s.is_empty());
}

#[test]
fn an_invalid_record_rejects_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(10)).unwrap();
    let mut batch = records(1..=10, "item");
    batch.push(Record::DeleteProduct { id: 0 });
    let err = store
        .apply(batch, ApplyMode::Upsert)
        .unwrap_err()
        .to_string();
    assert!(err.contains("record 10"), "{err}");
    assert_eq!(store.snapshot().generation(), 0);
    assert!(shard_files(dir.path()).is_empty());
}

#[test]
fn readers_see_whole_generations_while_a_writer_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), small(8)).unwrap());
    store
        .apply(records(1..=64, "gen1"), ApplyMode::Upsert)
        .unwrap();
    std::thread::scope(|scope| {
        let reader = {
            let store = Arc::clone(&store);
            scope.spawn(move || {
                // Sample until the last generation shows up: how many of the intermediate
                // ones a reader catches depends on scheduling, whole generations do not.
                let mut done = false;
                while !done {
                    let s = store.snapshot();
                    // Every product of one snapshot carries the same generation's name.
                    let names: BTreeSet<String> = s
                        .products()
                        .map(|p| {
                            let n = p.description.name.get("pol").unwrap().to_string();
                            n.split(' ').next().unwrap().to_owned()
                        })
                        .collect();
                    assert_eq!(names.len(), 1, "mixed generations: {names:?}");
                    assert_eq!(s.len(), 64);
                    done = names.contains("gen3");
                    std::thread::yield_now();
                }
            })
        };
        for g in 2..=3 {
            store
                .apply(records(1..=64, &format!("gen{g}")), ApplyMode::FullSync)
                .unwrap();
        }
        reader.join().unwrap();
    });
}

#[test]
fn store_and_snapshot_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
    check::<Snapshot>();
}

#[test]
fn later_records_for_the_same_id_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(2)).unwrap();
    // A first import (regrouped into a fresh shard count) and a later batch keep batch order.
    let mut batch = records(1..=10, "first");
    batch.push(Record::DeleteProduct { id: 3 });
    batch.push(Record::Product(Box::new(product(4, "second", 1))));
    batch.push(Record::DeleteProduct { id: 4 });
    batch.push(Record::Product(Box::new(product(4, "third", 1))));
    let r = store.apply(batch, ApplyMode::Upsert).unwrap();
    assert_eq!((r.applied, r.removed, r.unchanged), (12, 2, 0));
    let s = store.snapshot();
    assert_eq!(s.shard_count(), 8, "9 products at 2 per shard");
    assert!(s.product(3).is_none());
    assert_eq!(name_of(&s, 4), "third");
    assert_eq!(s.len(), 9);

    let batch = vec![
        Record::Product(Box::new(product(3, "back", 1))),
        Record::DeleteProduct { id: 5 },
        Record::Product(Box::new(product(5, "again", 1))),
    ];
    store.apply(batch, ApplyMode::Upsert).unwrap();
    let s = store.snapshot();
    assert_eq!(
        (name_of(&s, 3), name_of(&s, 5)),
        ("back".into(), "again".into())
    );
    assert_eq!(s.len(), 10);
}

/// Flip a byte near the end of `path` (inside the payload).
fn damage(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_shard_falls_back_to_the_previous_generation() {
    let dir = tempfile::tempdir().unwrap();
    let (gen1, gen1_files) = {
        let store = Store::open(dir.path(), small(10)).unwrap();
        store
            .apply(records(1..=50, "one"), ApplyMode::Upsert)
            .unwrap();
        let gen1 = contents(&store.snapshot());
        let files = shard_files(dir.path());
        store.apply(records([7], "two"), ApplyMode::Upsert).unwrap();
        (gen1, files)
    };
    let victim = shard_files(dir.path())
        .difference(&gen1_files)
        .next()
        .unwrap()
        .clone();
    damage(&dir.path().join(&victim));

    // `verify` names the damage and what a start would serve.
    let check = verify(dir.path());
    let err = check
        .current
        .as_ref()
        .unwrap()
        .as_ref()
        .unwrap_err()
        .to_string();
    assert!(err.contains(&victim) && err.contains("checksum"), "{err}");
    assert_eq!(check.serves().unwrap().generation, 1);

    let store = Store::open(dir.path(), small(10)).unwrap();
    let s = store.snapshot();
    assert_eq!((s.generation(), contents(&s)), (1, gen1.clone()));
    assert_eq!(contents(&load_snapshot(dir.path()).unwrap()), gen1);
    // Nothing the damaged manifest names was collected: the evidence stays.
    assert!(dir.path().join(&victim).exists());

    // The next commit does not reuse generation 2, and makes the store whole again.
    let r = store
        .apply(records([8], "three"), ApplyMode::Upsert)
        .unwrap();
    assert_eq!(r.generation, 3);
    drop(store);
    let check = verify(dir.path());
    assert_eq!(check.current.unwrap().unwrap().generation, 3);
    assert_eq!(check.fallback.unwrap().unwrap().generation, 1);
    assert!(!dir.path().join(&victim).exists());
    let s = Store::open(dir.path(), small(10)).unwrap().snapshot();
    assert_eq!(name_of(&s, 7), "one 7");
    assert_eq!(name_of(&s, 8), "three 8");
}

#[test]
fn a_damaged_manifest_falls_back_and_both_damaged_is_an_error_naming_the_current() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small(10)).unwrap();
        store
            .apply(records(1..=20, "one"), ApplyMode::Upsert)
            .unwrap();
        store
            .apply(records(1..=20, "two"), ApplyMode::Upsert)
            .unwrap();
    }
    let manifest = dir.path().join("MANIFEST");
    let good = fs::read(&manifest).unwrap();
    let before = shard_files(dir.path());
    fs::write(&manifest, &good[..good.len() / 2]).unwrap();
    let s = load_snapshot(dir.path()).unwrap();
    assert_eq!((s.generation(), name_of(&s, 3)), (1, "one 3".to_owned()));
    // An open falls back too and collects nothing: the unreadable MANIFEST may name any file.
    let s = Store::open(dir.path(), small(10)).unwrap().snapshot();
    assert_eq!(s.generation(), 1);
    assert_eq!(shard_files(dir.path()), before);

    // The fallback damaged too: nothing good is left to serve, and nothing is collected.
    fs::write(&manifest, &good).unwrap();
    let fallback_only: Vec<String> = referenced(dir.path())
        .difference(
            &verify(dir.path())
                .current
                .unwrap()
                .unwrap()
                .files
                .into_iter()
                .collect(),
        )
        .cloned()
        .collect();
    fs::write(&manifest, &good[..good.len() / 2]).unwrap();
    damage(&dir.path().join(&fallback_only[0]));
    let err = Store::open(dir.path(), small(10)).unwrap_err().to_string();
    assert!(err.contains("MANIFEST"), "{err}");
    assert!(dir.path().join(&fallback_only[0]).exists());
    assert!(verify(dir.path()).serves().is_none());
}
