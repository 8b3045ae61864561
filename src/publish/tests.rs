//! The publishing cycle on a real store in a temporary directory: windows cut into change
//! files, bases built and rebuilt, restarts and damage, as partners' files show them.

use rust_decimal::Decimal;

use jiff::Timestamp;

use super::*;
use crate::artifacts::Artifacts;
use crate::catalog::{Format, MainNode};
use crate::changes::tests::{options, World};
use crate::changes::Change;

fn profile(shop: u32, only_in_stock: bool) -> RenderProfile {
    RenderProfile {
        shop,
        format: Format::Iof30,
        gzip: false,
        languages: vec!["pol".into(), "eng".into()],
        currency: "PLN".into(),
        rate: Decimal::ONE,
        discount_percent: Decimal::ZERO,
        wholesale: false,
        only_in_stock,
        rules: Default::default(),
    }
}

/// Both stages of a cycle over `w`'s directory.
fn stages(w: &World) -> Stages {
    let changes = w.changes();
    let artifacts = Artifacts::new(&w.dir.path().join("artifacts"), options().timezone).unwrap();
    Stages { changes, artifacts }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// `(id, removed, direct child names)` of each product of one of our files, in order. Our
/// writer puts `<product` at one tab and its children at two, one per line.
fn products_of(xml: &[u8]) -> Vec<(u64, bool, Vec<String>)> {
    let text = std::str::from_utf8(xml).unwrap();
    let mut out: Vec<(u64, bool, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("\t<product ") {
            let id = rest
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap()
                .parse()
                .unwrap();
            out.push((id, rest.contains("removed=\"yes\""), Vec::new()));
        } else if let Some(rest) = line.strip_prefix("\t\t<") {
            if !rest.starts_with('/') {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.last_mut().unwrap().2.push(name);
            }
        }
    }
    out
}

fn newest_change(changes: &Stages, p: &RenderProfile) -> Option<Vec<u8>> {
    let files = changes.full_files(p)?;
    files
        .changes
        .first()
        .map(|a| std::fs::read(&a.path).unwrap())
}

/// The two stages of a cycle, used as the changes stage was before it stopped writing files.
struct Stages {
    changes: Changes,
    artifacts: Artifacts,
}

impl std::ops::Deref for Stages {
    type Target = Changes;
    fn deref(&self) -> &Changes {
        &self.changes
    }
}

impl Stages {
    fn cycle(&self) -> Cycle<'_> {
        Cycle::new(&self.changes, &self.artifacts)
    }

    fn maintain(&self, profiles: &[RenderProfile], now: Timestamp) -> Result<bool, PublishError> {
        self.cycle().maintain(profiles, now)
    }

    fn cut(&self, profiles: &[RenderProfile], now: Timestamp) -> Result<usize, PublishError> {
        self.cycle().cut(profiles, now)
    }

    fn full_files(&self, profile: &RenderProfile) -> Option<FullFiles> {
        self.cycle().full_files(profile)
    }
}

#[test]
fn a_window_becomes_one_change_file_per_profile_with_net_changes() {
    let mut w = World::new();
    let changes = stages(&w);
    let everyone = profile(1, false);
    let in_stock = profile(1, true);
    let profiles = [everyone.clone(), in_stock.clone()];
    assert!(changes.maintain(&profiles, Timestamp::now()).unwrap());
    assert!(changes.full_files(&everyone).unwrap().changes.is_empty());

    // 1001: stock; 1003: description changed then changed back (undone); 1004: removed
    // producer (a node that disappears); 1002 (out of stock) gets stock; 1005 deleted.
    let before = w.products[&1003].clone();
    w.edit(1001, |p| p.sizes[0].stock[1].quantity += Decimal::ONE);
    changes.observe(&w.store.snapshot()).unwrap();
    w.edit(1003, |p| {
        p.description.name.insert("pol".into(), "Chwilowa".into());
    });
    changes.observe(&w.store.snapshot()).unwrap();
    w.edit(1003, |p| *p = before.clone());
    w.edit(1004, |p| p.producer = None);
    w.edit(1002, |p| p.sizes[0].stock = vec![catalog_stock(1, 4)]);
    w.delete(1005);
    changes.observe(&w.store.snapshot()).unwrap();
    assert_eq!(changes.cut(&profiles, Timestamp::now()).unwrap(), 2);

    let file = newest_change(&changes, &everyone).unwrap();
    crate::xsd::validate(crate::xsd::Schema::FullChange, &file).unwrap();
    assert_eq!(
        products_of(&file),
        vec![
            (1001, false, vec!["sizes".to_string()]),
            (1002, false, vec!["sizes".to_string()]),
            // The producer is gone: removal, then the whole product.
            (1004, true, vec![]),
            (
                1004,
                false,
                products_of(
                    &std::fs::read(&changes.full_files(&everyone).unwrap().base.path).unwrap()
                )
                .into_iter()
                .find(|p| p.0 == 1004)
                .unwrap()
                .2
                .into_iter()
                .filter(|n| n != "producer")
                .collect()
            ),
            (1005, true, vec![]),
        ]
    );
    // For the in-stock partner, 1002 enters the offer: whole.
    let file = newest_change(&changes, &in_stock).unwrap();
    let entries = products_of(&file);
    let p1002 = entries.iter().find(|p| p.0 == 1002).unwrap();
    assert!(p1002.2.len() > 2, "whole product: {:?}", p1002.2);

    // An empty window writes nothing.
    assert_eq!(changes.cut(&profiles, Timestamp::now()).unwrap(), 0);
    assert_eq!(changes.full_files(&everyone).unwrap().changes.len(), 1);
}

fn catalog_stock(warehouse: u32, quantity: i64) -> crate::catalog::StockLevel {
    crate::catalog::StockLevel {
        warehouse,
        quantity: Decimal::from(quantity),
        physical: None,
        location: None,
    }
}

#[test]
fn a_restart_mid_window_loses_and_repeats_nothing() {
    let mut w = World::new();
    let profiles = [profile(1, false)];
    {
        let changes = stages(&w);
        changes.maintain(&profiles, Timestamp::now()).unwrap();
        w.edit(1001, |p| p.vat = Decimal::from(8));
        changes.observe(&w.store.snapshot()).unwrap();
        // A second change the process never observed before it stopped.
        w.edit(1003, |p| p.card_url = Some("https://x.example/1003".into()));
    }
    let changes = stages(&w);
    let names: Vec<u64> = changes
        .log_entries()
        .unwrap()
        .iter()
        .map(|e| e.product)
        .collect();
    assert_eq!(names, vec![1001, 1003], "each change logged once");
    assert_eq!(changes.cut(&profiles, Timestamp::now()).unwrap(), 1);
    let file = newest_change(&changes, &profiles[0]).unwrap();
    assert_eq!(
        products_of(&file),
        vec![(1001, false, vec![]), (1003, false, vec!["card".into()])]
    );
    // After another restart the cut window is not cut again and its file is still listed.
    drop(changes);
    let changes = stages(&w);
    assert_eq!(changes.cut(&profiles, Timestamp::now()).unwrap(), 0);
    let listed = changes.full_files(&profiles[0]).unwrap();
    assert_eq!(listed.changes.len(), 1);
    assert_eq!(std::fs::read(&listed.changes[0].path).unwrap(), file);
}

#[test]
fn a_torn_log_tail_is_dropped_and_the_generation_diffed_again() {
    let mut w = World::new();
    let profiles = [profile(1, false)];
    {
        let changes = stages(&w);
        changes.maintain(&profiles, Timestamp::now()).unwrap();
        w.edit(1001, |p| p.vat = Decimal::from(8));
        changes.observe(&w.store.snapshot()).unwrap();
    }
    // Tear the last frame as a crash during its write would.
    let log_dir = w.dir.path().join("changes/log");
    let segment = std::fs::read_dir(&log_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    std::fs::write(&segment, &bytes[..bytes.len() - 5]).unwrap();
    let changes = stages(&w);
    let entries = changes.log_entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].change, Change::Nodes(vec![MainNode::Attributes]));
}

#[test]
fn bases_are_rebuilt_on_schedule_and_files_expire() {
    let mut w = World::new();
    let changes = stages(&w);
    let profiles = [profile(1, false)];
    let day1 = at("2030-03-10T10:00:00Z");
    changes.maintain(&profiles, day1).unwrap();
    let first = changes.full_files(&profiles[0]).unwrap();
    w.edit(1001, |p| p.vat = Decimal::from(8));
    changes.observe(&w.store.snapshot()).unwrap();
    changes.cut(&profiles, at("2030-03-10T10:30:00Z")).unwrap();
    // Before 03:00 local the base stays; after it, a new base, the change file still listed.
    assert!(!changes
        .maintain(&profiles, at("2030-03-11T01:59:00Z"))
        .unwrap());
    assert!(changes
        .maintain(&profiles, at("2030-03-11T02:00:01Z"))
        .unwrap());
    let second = changes.full_files(&profiles[0]).unwrap();
    assert_ne!(second.base.path, first.base.path);
    assert!(second.base.changed > second.changes[0].changed);
    assert_eq!(second.changes.len(), 1);
    // 24 hours after its cut the change file is no longer listed.
    changes
        .maintain(&profiles, at("2030-03-11T10:31:00Z"))
        .unwrap();
    assert!(changes.full_files(&profiles[0]).unwrap().changes.is_empty());
    // A profile no longer in use loses its files; a new one gets a base.
    let other = [profile(2, false)];
    changes
        .maintain(&other, at("2030-03-11T10:32:00Z"))
        .unwrap();
    assert!(changes.full_files(&profiles[0]).is_none());
    assert!(changes.full_files(&other[0]).is_some());
    assert_eq!(
        changes.next_deadline(at("2030-03-11T10:32:00Z")),
        at("2030-03-11T11:00:00Z")
    );
}

#[test]
fn a_damaged_hash_store_starts_afresh_with_new_bases() {
    let mut w = World::new();
    let profiles = [profile(1, false)];
    let changes = stages(&w);
    changes.maintain(&profiles, Timestamp::now()).unwrap();
    let base = changes.full_files(&profiles[0]).unwrap().base;
    for e in std::fs::read_dir(w.dir.path().join("changes/hashes")).unwrap() {
        std::fs::write(e.unwrap().path(), b"garbage").unwrap();
    }
    w.edit(1001, |p| p.vat = Decimal::from(8));
    changes.observe(&w.store.snapshot()).unwrap();
    assert!(
        changes.full_files(&profiles[0]).is_none(),
        "old base retired"
    );
    changes.maintain(&profiles, Timestamp::now()).unwrap();
    let new_base = changes.full_files(&profiles[0]).unwrap().base;
    assert!(new_base.changed > base.changed);
    assert!(changes.log_entries().unwrap().is_empty());
}

#[test]
fn a_hash_file_lost_after_the_checkpoint_is_recomputed_from_the_store() {
    let mut w = World::new();
    let profiles = [profile(1, false)];
    let base = {
        let changes = stages(&w);
        changes.maintain(&profiles, Timestamp::now()).unwrap();
        w.edit(1001, |p| p.vat = Decimal::from(8));
        changes.observe(&w.store.snapshot()).unwrap();
        changes.full_files(&profiles[0]).unwrap().base.path.clone()
    };
    // A power cut took the newest hash file (written after the checkpoint, not yet synced).
    let newest = std::fs::read_dir(w.dir.path().join("changes/hashes"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('s'))
        .max_by_key(|e| e.metadata().unwrap().modified().unwrap())
        .unwrap()
        .path();
    std::fs::remove_file(&newest).unwrap();
    let changes = stages(&w);
    assert!(newest.exists(), "recomputed");
    assert_eq!(changes.full_files(&profiles[0]).unwrap().base.path, base);
    assert_eq!(changes.log_entries().unwrap().len(), 1);
    // And it serves the next diff.
    w.edit(1001, |p| p.vat = Decimal::from(5));
    assert_eq!(changes.observe(&w.store.snapshot()).unwrap().records, 1);
}

#[test]
fn a_hash_file_torn_after_the_checkpoint_is_recomputed_from_the_store() {
    let mut w = World::new();
    let profiles = [profile(1, false)];
    let base = {
        let changes = stages(&w);
        changes.maintain(&profiles, Timestamp::now()).unwrap();
        w.edit(1001, |p| p.vat = Decimal::from(8));
        changes.observe(&w.store.snapshot()).unwrap();
        changes.full_files(&profiles[0]).unwrap().base.path.clone()
    };
    // A power cut tore the newest hash file (written after the checkpoint, not yet synced).
    let newest = std::fs::read_dir(w.dir.path().join("changes/hashes"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('s'))
        .max_by_key(|e| e.metadata().unwrap().modified().unwrap())
        .unwrap()
        .path();
    let len = std::fs::metadata(&newest).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let changes = stages(&w);
    assert_eq!(std::fs::metadata(&newest).unwrap().len(), len, "recomputed");
    assert_eq!(changes.full_files(&profiles[0]).unwrap().base.path, base);
    assert_eq!(changes.log_entries().unwrap().len(), 1);
    // And it serves the next diff.
    w.edit(1001, |p| p.vat = Decimal::from(5));
    assert_eq!(changes.observe(&w.store.snapshot()).unwrap().records, 1);
}

#[test]
fn a_base_no_served_set_lists_stays_on_disk_through_its_grace() {
    let w = World::new();
    let changes = stages(&w);
    let profiles = [profile(1, false)];
    changes.maintain(&profiles, Timestamp::now()).unwrap();
    changes
        .cycle()
        .publish(&w.store.snapshot(), &profiles)
        .unwrap();
    let base = changes.full_files(&profiles[0]).unwrap().base.path.clone();
    // The profile goes: after two publishes no served set lists its base, which stays for
    // downloads that started from an earlier gateway.
    let other = [profile(2, false)];
    changes.maintain(&other, Timestamp::now()).unwrap();
    for _ in 0..2 {
        changes
            .cycle()
            .publish(&w.store.snapshot(), &other)
            .unwrap();
    }
    assert!(changes.full_files(&profiles[0]).is_none());
    assert!(base.exists(), "kept through its grace");
    let served = changes.full_files(&other[0]).unwrap().base;
    assert!(served.path.exists());
}

/// Names, sizes and modification times of every file under `dir`.
fn tree(
    dir: &std::path::Path,
) -> std::collections::BTreeMap<std::path::PathBuf, (u64, std::time::SystemTime)> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                todo.push(e.path());
            } else {
                out.insert(e.path(), (m.len(), m.modified().unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_follower_lists_the_writers_bases_and_change_files_and_writes_nothing() {
    let mut w = World::new();
    let writer = stages(&w);
    let profiles = [profile(1, false)];
    assert!(writer.maintain(&profiles, Timestamp::now()).unwrap());
    // A replica's stages on the same directory, as its follower lays the writer's files out.
    let follower = Stages {
        changes: Changes::follow(&w.dir.path().join("changes"), options()).unwrap(),
        artifacts: Artifacts::new(&w.dir.path().join("artifacts"), options().timezone).unwrap(),
    };
    assert!(follower.is_follower());
    let listing = |s: &Stages| s.listing(&profiles[0]).unwrap();
    assert_eq!(listing(&follower), listing(&writer));

    w.edit(1001, |p| p.sizes[0].stock[1].quantity += Decimal::ONE);
    writer.observe(&w.store.snapshot()).unwrap();
    assert_eq!(writer.cut(&profiles, Timestamp::now()).unwrap(), 1);
    assert_eq!(listing(&writer).changes.len(), 1);
    // Until the next generation reaches the follower, it lists what it read.
    assert!(listing(&follower).changes.is_empty());

    let before = tree(w.dir.path());
    follower.observe(&w.store.snapshot()).unwrap();
    assert_eq!(listing(&follower), listing(&writer));
    let (theirs, ours) = (
        writer.full_files(&profiles[0]).unwrap(),
        follower.full_files(&profiles[0]).unwrap(),
    );
    assert_eq!(ours.changes[0].md5, theirs.changes[0].md5);
    assert_eq!(ours.base.md5, theirs.base.md5);
    // A follower cuts no window and builds no base, whatever the time, and writes nothing.
    let later = at("2099-01-01T03:30:00Z");
    assert_eq!(follower.next_deadline(later), Timestamp::MAX);
    w.edit(1001, |p| p.sizes[0].stock[1].quantity += Decimal::ONE);
    follower.observe(&w.store.snapshot()).unwrap();
    assert!(!follower.maintain(&profiles, later).unwrap());
    assert_eq!(follower.cut(&profiles, later).unwrap(), 0);
    assert!(matches!(
        follower.log_entries(),
        Err(crate::changes::ChangesError::Follower)
    ));
    let after = tree(w.dir.path());
    let written: Vec<_> = after
        .iter()
        .filter(|(p, m)| before.get(*p) != Some(m) && !p.starts_with(w.dir.path().join("store")))
        .collect();
    assert!(written.is_empty(), "a follower wrote {written:?}");
}
