//! Fault injection at every durability step of a commit (temporary-file write, file fsync,
//! rename or link, directory fsync) and in the caller's follow-up, with ENOSPC and EIO:
//! after each, no acknowledged update is lost, the store reopens on the generation it
//! committed, and a failure after the commit point refuses further writes.

use std::collections::BTreeMap;
use std::path::Path;

use super::fault::{count, Plan, Step};
use super::*;
use crate::catalog::Product;

const STEPS: [Step; 4] = [Step::Write, Step::Fsync, Step::Rename, Step::DirFsync];
const ERRNOS: [i32; 2] = [libc::ENOSPC, libc::EIO];

fn product(id: u64, name: &str) -> Product {
    let mut p: Product = serde_json::from_value(serde_json::json!({
        "id": id,
        "vat": 23,
        "description": {"name": {"pol": name}},
        "prices": {"retail": {"net": "10.00", "gross": "12.30"}},
        "stock": [{"warehouse": 0, "quantity": 5}],
    }))
    .unwrap();
    p.normalize().unwrap();
    p
}

fn upserts(ids: impl IntoIterator<Item = u64>, name: &str) -> Vec<Record> {
    ids.into_iter()
        .map(|id| Record::Product(Box::new(product(id, &format!("{name} {id}")))))
        .collect()
}

fn category(name: &str) -> Record {
    serde_json::from_value(serde_json::json!({"kind": "category", "id": 3, "name": {"pol": name}}))
        .unwrap()
}

/// The catalog as the tests model it: product id → name.
type State = BTreeMap<u64, String>;

fn state_of(s: &Snapshot) -> State {
    s.products()
        .map(|p| {
            let name = p.description.name.get("pol").unwrap().to_string();
            (p.id.to_native(), name)
        })
        .collect()
}

fn category_of(s: &Snapshot) -> Option<String> {
    s.dicts()
        .categories
        .iter()
        .find(|c| c.id.to_native() == 3)
        .and_then(|c| c.name.get("pol").map(|n| n.to_string()))
}

fn opts() -> StoreOptions {
    // Two products per shard: every operation below spans several shard files.
    StoreOptions {
        products_per_shard: 2,
        // The full sync below removes most products: durability is under test, not the
        // mass-deletion guard.
        full_sync_max_removal: rust_decimal::Decimal::ONE_HUNDRED,
    }
}

/// The operations put under fault, each with the state it leaves when applied.
#[derive(Debug, Clone, Copy)]
enum Operation {
    /// Products of several shards and a dictionary entry.
    Upsert,
    /// A batch whose products wait in a spool file.
    Spooled,
    /// A full sync: products absent from it are removed.
    FullSync,
    /// Requests of the ingest API, committed as one group.
    Group,
    /// An apply whose follow-up (the drop folder's marker) runs under the writer lock.
    FollowedUp,
}

const OPERATIONS: [Operation; 5] = [
    Operation::Upsert,
    Operation::Spooled,
    Operation::FullSync,
    Operation::Group,
    Operation::FollowedUp,
];

/// Two acknowledged generations, so that a fallback exists: ids 1..=8, then 1..=4 renamed.
fn prepared(dir: &Path) -> (Store, State) {
    let store = Store::open(dir, opts()).unwrap();
    store.apply(upserts(1..=8, "a"), ApplyMode::Upsert).unwrap();
    let mut b = upserts(1..=4, "b");
    b.push(category("kategoria"));
    store.apply(b, ApplyMode::Upsert).unwrap();
    let state = state_of(&store.snapshot());
    (store, state)
}

/// Run `op` on `store`; returns whether it was acknowledged and the state it makes.
fn run(store: &Store, op: Operation, before: &State) -> (bool, State) {
    let mut after = before.clone();
    let ok = match op {
        Operation::Upsert => {
            let mut batch = upserts([2, 5, 7, 20], "c");
            batch.push(category("zmieniona"));
            batch.push(Record::DeleteProduct { id: 8 });
            after.remove(&8);
            for id in [2, 5, 7, 20] {
                after.insert(id, format!("c {id}"));
            }
            store.apply(batch, ApplyMode::Upsert).is_ok()
        }
        Operation::Spooled => {
            let mut spool = store.spool().unwrap();
            let mut changes = Vec::new();
            for id in [1, 6, 30, 31] {
                changes.push(spool.park(&product(id, &format!("s {id}"))).unwrap());
                after.insert(id, format!("s {id}"));
            }
            changes.push(Parked::Delete(3));
            after.remove(&3);
            store
                .apply_spooled(vec![], changes, &mut spool, ApplyMode::Upsert)
                .is_ok()
        }
        Operation::FullSync => {
            after = (3..=6).map(|id| (id, format!("f {id}"))).collect();
            store
                .apply(upserts(3..=6, "f"), ApplyMode::FullSync)
                .is_ok()
        }
        Operation::Group => {
            let request = |records: Vec<Record>| Request {
                ops: records.into_iter().map(Op::Record).collect(),
                ..Request::default()
            };
            for id in [4, 9] {
                after.insert(id, format!("g {id}"));
            }
            store
                .commit(vec![request(upserts([4], "g")), request(upserts([9], "g"))])
                .is_ok()
        }
        Operation::FollowedUp => {
            for id in [5, 6] {
                after.insert(id, format!("m {id}"));
            }
            // The marker is one more durable file beside the store.
            let marker = store.dir.join("marker");
            store
                .apply_and(upserts([5, 6], "m"), ApplyMode::Upsert, |_| {
                    durable::write_file(&store.dir, "marker", &[b"applied\n"])
                        .map(drop)
                        .map_err(|source| StoreError::Io {
                            path: marker.clone(),
                            source,
                        })
                })
                .is_ok()
        }
    };
    (ok, after)
}

/// How often each step happens during `op` on a prepared store.
fn steps_of(op: Operation) -> BTreeMap<String, (Step, usize)> {
    let dir = tempfile::tempdir().unwrap();
    let (store, before) = prepared(dir.path());
    let plan = Plan::observe(dir.path());
    assert!(run(&store, op, &before).0);
    STEPS
        .iter()
        .map(|&s| (format!("{s:?}"), (s, count(&plan, s))))
        .collect()
}

#[test]
fn every_durability_step_failing_loses_no_acknowledged_update() {
    let mut cases = 0;
    for (k, op) in OPERATIONS.into_iter().enumerate() {
        for (step, n) in steps_of(op).into_values() {
            assert!(n > 0, "{op:?}: no {step:?} step seen");
            // Each occurrence of each step, the errors taking turns (the store's answer does
            // not depend on which: both must keep what was acknowledged).
            for nth in 0..n {
                check_case(op, step, nth, ERRNOS[(k + nth) % ERRNOS.len()]);
                cases += 1;
            }
        }
    }
    assert!(
        cases >= OPERATIONS.len() * STEPS.len(),
        "only {cases} cases"
    );
    println!("{cases} fault-injection cases");
}

fn check_case(op: Operation, step: Step, nth: usize, errno: i32) {
    let case = format!("{op:?}, {step:?} #{nth} fails with errno {errno}");
    let dir = tempfile::tempdir().unwrap();
    let (store, before) = prepared(dir.path());
    let acked_generation = store.snapshot().generation();
    let plan = Plan::fail(dir.path(), step, nth, errno);
    let (ok, after) = run(&store, op, &before);
    assert!(plan.fired(), "{case}: the fault was not reached");
    drop(plan);
    assert!(
        !ok,
        "{case}: acknowledged although a durability step failed"
    );

    // Memory holds the old generation, or — when only the follow-up failed — the committed
    // one, and then the store is poisoned.
    let poisoned = store.poisoned().is_some();
    let memory = state_of(&store.snapshot());
    assert!(
        memory == before || (poisoned && memory == after),
        "{case}: memory holds {memory:?}"
    );
    // A later write is either taken and durable, or refused because the failure came after
    // the commit point (then disk may hold the failed operation).
    let later = store.apply(upserts([100], "later"), ApplyMode::Upsert);
    match &later {
        Ok(_) => assert!(!poisoned, "{case}"),
        Err(StoreError::Poisoned(_)) => assert!(poisoned, "{case}"),
        Err(e) => panic!("{case}: the later write failed: {e}"),
    }
    drop(store);

    let check = verify(dir.path());
    assert!(
        matches!(check.current, Some(Ok(_))),
        "{case}: the current generation does not verify: {:?}",
        check.current
    );
    assert!(
        matches!(check.fallback, Some(Ok(_))),
        "{case}: the fallback does not verify: {:?}",
        check.fallback
    );
    let reopened = Store::open(dir.path(), opts())
        .unwrap_or_else(|e| panic!("{case}: the store does not open: {e}"));
    let s = reopened.snapshot();
    assert!(
        s.generation() >= acked_generation,
        "{case}: generation went back"
    );
    let mut found = state_of(&s);
    if later.is_ok() {
        assert_eq!(found.remove(&100).as_deref(), Some("later 100"), "{case}");
    }
    // All or nothing: the failed operation is there whole or not at all.
    assert!(
        found == before || found == after,
        "{case}: reopened state {found:?}, acknowledged {before:?}"
    );
    if found == before {
        assert_eq!(category_of(&s).as_deref(), Some("kategoria"), "{case}");
    }
    // The reopened store takes writes.
    reopened
        .apply(upserts([200], "again"), ApplyMode::Upsert)
        .unwrap_or_else(|e| panic!("{case}: no write after reopening: {e}"));
}

/// The directory fsync after the manifest rename fails: the disk may hold the new
/// generation while memory holds the old one. A retry of the same batch would stage files
/// under the names the disk's manifest uses; if it then failed before its own commit, its
/// cleanup removed them and the store no longer opened. It is refused instead.
#[test]
fn a_retry_after_an_uncertain_commit_cannot_remove_what_the_manifest_names() {
    let dir = tempfile::tempdir().unwrap();
    let (store, before) = prepared(dir.path());
    let last_dir_fsync = steps_of(Operation::Upsert)["DirFsync"].1 - 1;
    let plan = Plan::fail(dir.path(), Step::DirFsync, last_dir_fsync, libc::EIO);
    let (ok, after) = run(&store, Operation::Upsert, &before);
    assert!(plan.fired() && !ok);
    drop(plan);

    // The retry fails at its manifest write (the last temporary file written).
    let manifest_write = steps_of(Operation::Upsert)["Write"].1 - 1;
    let plan = Plan::fail(dir.path(), Step::Write, manifest_write, libc::ENOSPC);
    let err = store
        .apply(
            {
                let mut batch = upserts([2, 5, 7, 20], "c");
                batch.push(category("zmieniona"));
                batch.push(Record::DeleteProduct { id: 8 });
                batch
            },
            ApplyMode::Upsert,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Poisoned(_)), "{err}");
    assert!(!plan.fired(), "the refused retry touched the disk");
    drop(plan);
    drop(store);

    let s = Store::open(dir.path(), opts()).unwrap().snapshot();
    assert_eq!(state_of(&s), after, "the rename itself had happened");
    assert!(s.generation() > 2);
}

/// The caller's follow-up (the drop folder's marker) fails after the batch committed: a
/// later write would be overwritten when the caller replays the batch after a restart, so
/// none is taken until then.
#[test]
fn a_failed_follow_up_refuses_writes_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = prepared(dir.path());
    let err = store
        .apply_and(upserts([1], "x"), ApplyMode::Upsert, |r| {
            Err(StoreError::Options(format!(
                "marker of {} failed",
                r.generation
            )))
        })
        .unwrap_err();
    assert!(err.to_string().contains("marker of 3 failed"), "{err}");
    // Committed and published: readers see it.
    assert_eq!(state_of(&store.snapshot())[&1], "x 1");
    for attempt in [
        store.apply(upserts([2], "y"), ApplyMode::Upsert).map(drop),
        store.commit(vec![Request::default()]).map(drop),
    ] {
        let err = attempt.unwrap_err();
        assert!(matches!(err, StoreError::Poisoned(_)), "{err}");
        assert!(err.to_string().contains("marker of 3 failed"), "{err}");
    }
    drop(store);
    let store = Store::open(dir.path(), opts()).unwrap();
    assert!(store.poisoned().is_none());
    let s = store.snapshot();
    assert_eq!((s.generation(), state_of(&s)[&1].as_str()), (3, "x 1"));
    assert_eq!(state_of(&s)[&2], "b 2");
    store.apply(upserts([2], "y"), ApplyMode::Upsert).unwrap();
}

/// Where hard links are refused (EPERM), the fallback manifest is written as a copy and the
/// commit goes on.
#[test]
fn without_hard_links_the_fallback_manifest_is_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (store, before) = prepared(dir.path());
    // Renames of a commit: the staged files, the link (checked twice), the manifest.
    let renames = steps_of(Operation::Upsert)["Rename"].1;
    let plan = Plan::fail(dir.path(), Step::Rename, renames - 3, libc::EPERM);
    let (ok, after) = run(&store, Operation::Upsert, &before);
    assert!(plan.fired() && ok);
    drop(plan);
    assert!(store.poisoned().is_none());
    drop(store);
    let check = verify(dir.path());
    assert_eq!(check.current.unwrap().unwrap().generation, 3);
    assert_eq!(check.fallback.unwrap().unwrap().generation, 2);
    let s = Store::open(dir.path(), opts()).unwrap().snapshot();
    assert_eq!(state_of(&s), after);
}
