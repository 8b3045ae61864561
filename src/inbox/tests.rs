use super::*;
use crate::store::StoreOptions;
use std::io::Write;

const GOOD: &str = r#"{"kind":"product","id":7,"vat":23,"description":{"name":{"pol":"A"}}}
{"kind":"product","id":8,"vat":23,"description":{"name":{"pol":"B"}}}
"#;

fn inbox() -> (tempfile::TempDir, Inbox) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap());
    let inbox = Inbox::new(&dir.path().join("inbox"), store, Duration::from_secs(1)).unwrap();
    (dir, inbox)
}

#[test]
fn good_files_are_applied_and_moved_bad_ones_rejected_with_a_report() {
    let (_dir, inbox) = inbox();
    fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
    assert!(matches!(inbox.take("a.jsonl").unwrap(), Processed::Applied(r) if r.applied == 2));
    assert!(inbox.dir.join("done/a.jsonl").exists());
    assert_eq!(inbox.store.snapshot().len(), 2);

    fs::write(inbox.dir.join("b.jsonl"), format!("{GOOD}{{oops\n")).unwrap();
    assert!(matches!(
        inbox.take("b.jsonl").unwrap(),
        Processed::Rejected(1)
    ));
    let report = fs::read_to_string(inbox.dir.join("rejected/b.jsonl.errors.txt")).unwrap();
    assert!(
        report.contains("b.jsonl:3: ") && report.contains("invalid JSON"),
        "{report}"
    );
    assert!(inbox.dir.join("rejected/b.jsonl").exists());
    assert_eq!(
        inbox.store.snapshot().generation(),
        1,
        "nothing of b applied"
    );

    // A full sync that would remove half the catalog: the mass-deletion guard rejects
    // the file with the numbers, nothing is removed, and the inbox goes on.
    fs::write(
        inbox.dir.join("c.full_sync.jsonl"),
        GOOD.lines().next().unwrap(),
    )
    .unwrap();
    assert!(matches!(
        inbox.take("c.full_sync.jsonl").unwrap(),
        Processed::Rejected(1)
    ));
    let report =
        fs::read_to_string(inbox.dir.join("rejected/c.full_sync.jsonl.errors.txt")).unwrap();
    assert!(
        report.contains("full sync refused") && report.contains("remove 1 of the 2 products"),
        "{report}"
    );
    assert_eq!(inbox.store.snapshot().len(), 2);
    // One that removes nothing (it carries both products and a new one) is applied.
    let third = r#"{"kind":"product","id":9,"vat":23,"description":{"name":{"pol":"C"}}}"#;
    fs::write(
        inbox.dir.join("d.full_sync.jsonl"),
        format!("{GOOD}\n{third}\n"),
    )
    .unwrap();
    assert!(
        matches!(inbox.take("d.full_sync.jsonl").unwrap(), Processed::Applied(r) if r.removed == 0 && r.applied == 1)
    );
    assert_eq!(inbox.store.snapshot().len(), 3);
}

#[test]
fn an_iof_offer_dropped_as_a_directory_is_imported() {
    let (_dir, inbox) = inbox();
    let offer = inbox.dir.join("offer");
    fs::create_dir(&offer).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/iof/examples");
    for f in ["full.xml", "light.xml", "categories.xml", "producers.xml"] {
        fs::copy(examples.join(f), offer.join(f)).unwrap();
    }
    assert!(matches!(
        inbox.take("offer").unwrap(),
        Processed::Applied(_)
    ));
    assert_eq!(inbox.store.snapshot().len(), 8);
    assert!(inbox.dir.join("done/offer/full.xml").exists());
    fs::write(
        inbox.dir.join("broken.xml"),
        "<offer><products><product id=\"1\">",
    )
    .unwrap();
    assert!(matches!(
        inbox.take("broken.xml").unwrap(),
        Processed::Rejected(1)
    ));
    let report = fs::read_to_string(inbox.dir.join("rejected/broken.xml.errors.txt")).unwrap();
    assert!(report.contains("at line 1 (byte 33)"), "{report}");
}

#[test]
fn a_dropped_offer_in_another_currency_is_converted_or_refused() {
    let third_party = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/third-party");
    let drop_offer = |inbox: &Inbox, fixture: &str, name: &str| {
        let offer = inbox.dir.join(name);
        fs::create_dir(&offer).unwrap();
        fs::copy(
            third_party.join(fixture).join("full.xml"),
            offer.join("full.xml"),
        )
        .unwrap();
        inbox.take(name).unwrap()
    };
    // Without a rate for EUR (the default options), refused: nothing published in PLN.
    let (_dir, bare) = inbox();
    assert!(matches!(
        drop_offer(&bare, "b2b-en-eur", "eur"),
        Processed::Rejected(1)
    ));
    let errors = fs::read_to_string(bare.dir.join("rejected/eur.errors.txt")).unwrap();
    assert!(
        errors.contains("EUR") && errors.contains("[currencies]"),
        "{errors}"
    );
    assert_eq!(bare.store.snapshot().len(), 0);
    // With the configured rate, converted.
    let (_dir2, plain) = inbox();
    let inbox = plain.with_import_options(ingest::iof::ImportOptions {
        rates: [
            ("PLN", crate::catalog::Decimal::ONE),
            ("EUR", crate::catalog::Decimal::new(25, 2)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ..ingest::iof::ImportOptions::default()
    });
    assert!(matches!(
        drop_offer(&inbox, "b2b-en-eur", "eur"),
        Processed::Applied(_)
    ));
    let snapshot = inbox.store.snapshot();
    let mug = snapshot.product(1001).expect("imported");
    let retail = mug.prices.retail.as_ref().expect("a price");
    assert_eq!(
        (
            crate::catalog::decimal(&retail.net),
            crate::catalog::decimal(&retail.gross)
        ),
        (
            crate::catalog::Decimal::from(40),
            crate::catalog::Decimal::new(4920, 2)
        ),
        "10,00 / 12,30 EUR at 0.25 EUR per PLN"
    );
}

#[test]
fn files_left_in_the_earlier_layout_are_finished_after_an_upgrade() {
    // Claimed but not applied: applied at recovery.
    let (_dir, inbox) = inbox();
    fs::write(inbox.dir.join(".work/a.jsonl"), GOOD).unwrap();
    assert_eq!(inbox.recover().unwrap(), 1);
    assert!(inbox.dir.join("done/a.jsonl").exists());
    assert_eq!(inbox.store.snapshot().generation(), 1);

    // Applied and marked, not moved: only moved (a later change is not undone).
    let later = r#"{"kind":"product","id":7,"vat":8,"description":{"name":{"pol":"A2"}}}"#;
    inbox
        .store
        .apply(
            ingest::read_jsonl("x", later.as_bytes())
                .unwrap()
                .records
                .into_iter()
                .map(|l| l.record)
                .collect(),
            ApplyMode::Upsert,
        )
        .unwrap();
    fs::write(inbox.dir.join(".work/b.jsonl"), GOOD).unwrap();
    fs::write(inbox.dir.join(".work/b.jsonl.applied"), "applied\n").unwrap();
    inbox.recover().unwrap();
    assert!(inbox.dir.join("done/b.jsonl").exists());
    assert!(!inbox.dir.join(".work/b.jsonl.applied").exists());
    let snap = inbox.store.snapshot();
    assert_eq!(snap.generation(), 2, "not applied again");
    assert_eq!(
        crate::catalog::decimal(&snap.product(7).unwrap().vat).to_string(),
        "8"
    );

    // Applied, crash before the marker: applying again changes nothing.
    fs::write(inbox.dir.join(".work/c.jsonl"), later).unwrap();
    inbox.recover().unwrap();
    assert_eq!(inbox.store.snapshot().generation(), 2);
}

#[test]
fn the_watcher_takes_renamed_files_and_ignores_temporaries() {
    let (_dir, inbox) = inbox();
    let dir = inbox.dir.clone();
    let store = inbox.store.clone();
    let handle = inbox.watch().unwrap();
    fs::write(dir.join("x.jsonl.tmp"), GOOD).unwrap();
    fs::write(dir.join(".hidden.jsonl"), GOOD).unwrap();
    fs::rename(dir.join("x.jsonl.tmp"), dir.join("x.jsonl")).unwrap();
    let started = Instant::now();
    while !dir.join("done/x.jsonl").exists() {
        assert!(started.elapsed() < Duration::from_secs(5), "not taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(store.snapshot().len(), 2);
    assert!(dir.join(".hidden.jsonl").exists(), "dotfiles stay");
    // Idle, it scans on the clock: the events its own scans cause (the directory opened
    // and closed) must not make it scan in a loop.
    let before = handle.scans();
    std::thread::sleep(Duration::from_millis(1000));
    let idle = handle.scans() - before;
    assert!((2..=6).contains(&idle), "{idle} scans in one idle second");
    drop(handle);
}

const LATER: &str = r#"{"kind":"product","id":7,"vat":8,"description":{"name":{"pol":"A2"}}}
"#;

/// The inbox and store of `dir`, as a (re)started server opens them.
fn open(dir: &Path) -> Inbox {
    let store = Arc::new(Store::open(&dir.join("store"), StoreOptions::default()).unwrap());
    Inbox::new(&dir.join("inbox"), store, Duration::from_secs(1)).unwrap()
}

fn inject(inbox: &Inbox, step: Step, fault: Fault) {
    inbox.faults.lock().push((step, fault));
}

/// Did `f` die of an injected crash?
fn crashes<R>(f: impl FnOnce() -> R) -> bool {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => false,
        Err(payload) => payload.is::<Crash>(),
    }
}

fn vat(inbox: &Inbox, id: u64) -> String {
    crate::catalog::decimal(&inbox.store.snapshot().product(id).unwrap().vat).to_string()
}

fn assert_clean(inbox: &Inbox, what: &str) {
    let left: Vec<_> = fs::read_dir(inbox.dir.join(WORK))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{what}: left in .work: {left:?}");
}

fn upsert(inbox: &Inbox, jsonl: &str) -> ApplyReport {
    let records = ingest::read_jsonl("x", jsonl.as_bytes()).unwrap().records;
    inbox
        .store
        .apply(
            records.into_iter().map(|l| l.record).collect(),
            ApplyMode::Upsert,
        )
        .unwrap()
}

#[test]
fn a_crash_at_any_step_neither_loses_nor_repeats_a_file() {
    use Step::*;
    for step in [Claimed, Parsed, Committed, Marked, Moved, Unmarked] {
        let dir = tempfile::tempdir().unwrap();
        let inbox = open(dir.path());
        fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
        inject(&inbox, step, Fault::Crash);
        assert!(crashes(|| inbox.take("a.jsonl")), "{step:?}");
        drop(inbox);

        let inbox = open(dir.path());
        inbox.recover().unwrap();
        let snap = inbox.store.snapshot();
        assert_eq!(snap.len(), 2, "{step:?}: lost");
        assert_eq!(snap.generation(), 1, "{step:?}");
        assert!(inbox.dir.join("done/a.jsonl").exists(), "{step:?}");
        assert!(!inbox.dir.join("a.jsonl").exists(), "{step:?}");
        assert_clean(&inbox, &format!("{step:?}"));

        // Whatever the crash left, a later file of the same name is applied.
        fs::write(inbox.dir.join("a.jsonl"), LATER).unwrap();
        assert!(
            matches!(inbox.take("a.jsonl").unwrap(), Processed::Applied(r) if r.applied == 1),
            "{step:?}"
        );
        assert_eq!(vat(&inbox, 7), "8", "{step:?}");
    }
}

#[test]
fn an_io_error_before_the_commit_or_after_the_marker_is_retried_not_repeated() {
    use Step::*;
    for step in [Claimed, Parsed, Moved, Unmarked] {
        let (_dir, inbox) = inbox();
        fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
        inject(&inbox, step, Fault::Fail);
        assert!(inbox.take("a.jsonl").is_err(), "{step:?}");
        inbox.faults.lock().clear();
        // The next scan finishes it: applied once (before the commit) or only cleaned up.
        inbox.resume_claims().unwrap();
        assert_eq!(inbox.store.snapshot().generation(), 1, "{step:?}");
        assert_eq!(inbox.store.snapshot().len(), 2, "{step:?}");
        assert!(inbox.dir.join("done/a.jsonl").exists(), "{step:?}");
        assert_clean(&inbox, &format!("{step:?}"));
        // A later write is not undone by another scan.
        upsert(&inbox, LATER);
        inbox.resume_claims().unwrap();
        assert_eq!(vat(&inbox, 7), "8", "{step:?}");
    }
}

#[test]
fn a_marker_that_cannot_be_written_after_the_commit_poisons_the_file() {
    for step in [Step::Committed, Step::Marked] {
        let dir = tempfile::tempdir().unwrap();
        let inbox = open(dir.path());
        fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
        inject(&inbox, step, Fault::Fail);
        let Processed::Poisoned(poisoned) = inbox.take("a.jsonl").unwrap() else {
            panic!("{step:?}: not poisoned");
        };
        assert!(poisoned.starts_with(inbox.dir.join(POISONED)));
        assert!(poisoned.join("a.jsonl").exists(), "{step:?}");
        let reason = fs::read_to_string(poisoned.join("a.jsonl.reason.txt")).unwrap();
        assert!(
            reason.contains("committed") && reason.contains("injected failure"),
            "{reason}"
        );
        assert_clean(&inbox, &format!("{step:?}"));
        assert_eq!(inbox.store.snapshot().generation(), 1, "the batch stays");

        // Writes go on; a restart does not apply the poisoned file over them.
        upsert(&inbox, LATER);
        drop(inbox);
        let inbox = open(dir.path());
        assert_eq!(inbox.recover().unwrap(), 0);
        assert_eq!(vat(&inbox, 7), "8", "{step:?}: applied again");
        assert_eq!(inbox.store.snapshot().generation(), 2);
        assert!(poisoned.join("a.jsonl").exists(), "waits for an operator");
    }
}

#[test]
fn a_commit_that_can_be_neither_marked_nor_moved_aside_stops_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = open(dir.path());
    fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
    inject(&inbox, Step::Committed, Fault::Fail);
    inject(&inbox, Step::Poison, Fault::Fail);
    // Stopped under the writer lock: nothing commits after it, so the next start's
    // second application changes nothing.
    assert!(crashes(|| inbox.take("a.jsonl")));
    drop(inbox);
    let inbox = open(dir.path());
    assert_eq!(inbox.recover().unwrap(), 1);
    assert_eq!(inbox.store.snapshot().generation(), 1);
    assert!(inbox.dir.join("done/a.jsonl").exists());
    assert_clean(&inbox, "after recovery");
}

#[test]
fn an_orphan_marker_does_not_make_a_later_file_of_its_name_skip_its_application() {
    let (_dir, inbox) = inbox();
    // Left by an earlier version's crash between the move to done/ and the removal.
    fs::write(inbox.dir.join(".work/a.jsonl.applied"), MARKER_TEXT).unwrap();
    // A claim of this version left the same way.
    let claim = inbox.new_claim().unwrap();
    fs::write(claim.join(MARKER), MARKER_TEXT).unwrap();
    // A claimed file whose name merely ends in `.applied` is a file, not a marker.
    fs::write(inbox.dir.join(".work/b.applied"), LATER).unwrap();
    assert_eq!(inbox.recover().unwrap(), 1);
    assert_clean(&inbox, "after recovery");
    assert!(inbox.dir.join("done/b.applied").exists());
    fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
    assert!(matches!(inbox.take("a.jsonl").unwrap(), Processed::Applied(r) if r.applied == 2));
    assert_eq!(vat(&inbox, 7), "23");
}

#[test]
fn a_file_that_makes_iofd_panic_is_rejected_and_the_next_one_applied() {
    let (_dir, inbox) = inbox();
    inject(&inbox, Step::Parsed, Fault::Panic);
    fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
    assert!(matches!(
        inbox.take("a.jsonl").unwrap(),
        Processed::Rejected(1)
    ));
    let report = fs::read_to_string(inbox.dir.join("rejected/a.jsonl.errors.txt")).unwrap();
    assert!(
        report.contains("internal error") && report.contains("injected panic"),
        "{report}"
    );
    assert_eq!(inbox.store.snapshot().generation(), 0);
    inbox.faults.lock().clear();
    fs::write(inbox.dir.join("b.jsonl"), GOOD).unwrap();
    assert!(matches!(
        inbox.take("b.jsonl").unwrap(),
        Processed::Applied(_)
    ));
}

#[test]
fn a_hostile_iof_file_is_rejected_naming_its_bad_product() {
    let (_dir, inbox) = inbox();
    fs::write(
        inbox.dir.join("hostile.xml"),
        r#"<offer file_format="IOF" version="3.0"><products currency="PLN" language="pol">
<product id="1" vat="-100" type="regular"><price gross="10.00"/><description><name xml:lang="pol">X</name></description></product>
</products></offer>"#,
    )
    .unwrap();
    // VAT -100 once divided by zero; now the product is an error with its reason, and
    // an offer is taken whole or not at all, like a JSON Lines file.
    assert!(matches!(
        inbox.take("hostile.xml").unwrap(),
        Processed::Rejected(1)
    ));
    let errors = fs::read_to_string(inbox.dir.join("rejected/hostile.xml.errors.txt")).unwrap();
    assert!(errors.contains(r#"vat "-100" is not a rate"#), "{errors}");
    // Named as dropped, with no line to name: not by its claimed path, not as "line 0".
    assert!(
        !errors.contains(".work") && !errors.contains(":0:"),
        "{errors}"
    );
    assert!(
        errors.contains("\nhostile.xml: product at line 2 (byte 80)"),
        "{errors}"
    );
    assert!(inbox.store.snapshot().product(1).is_none());
    assert_eq!(inbox.store.snapshot().generation(), 0);
}

#[test]
fn errors_txt_lists_a_thousand_problems_then_counts_the_rest() {
    let (_dir, inbox) = inbox();
    fs::write(inbox.dir.join("bad.jsonl"), "{oops\n".repeat(1500)).unwrap();
    assert!(matches!(
        inbox.take("bad.jsonl").unwrap(),
        Processed::Rejected(1500)
    ));
    let report = fs::read_to_string(inbox.dir.join("rejected/bad.jsonl.errors.txt")).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 1 + Rejections::LISTED + 1, "{}", lines[0]);
    assert!(lines[0].contains("1500 problem(s)"), "{}", lines[0]);
    assert!(lines[Rejections::LISTED].starts_with("bad.jsonl:1000: "));
    assert_eq!(lines[1001], "... and 500 more problem(s), not listed");
}

#[test]
fn symlinks_fifos_and_directories_holding_them_are_rejected_unopened() {
    let (_dir, inbox) = inbox();
    std::os::unix::fs::symlink("/dev/zero", inbox.dir.join("zero.jsonl")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(inbox.dir.join("pipe.jsonl"))
        .status()
        .unwrap();
    assert!(status.success());
    let offer = inbox.dir.join("offer");
    fs::create_dir(&offer).unwrap();
    std::os::unix::fs::symlink("/dev/zero", offer.join("full.xml")).unwrap();
    let started = Instant::now();
    for (name, kind) in [
        ("zero.jsonl", "symbolic link"),
        ("pipe.jsonl", "FIFO"),
        ("offer", "symbolic link"),
    ] {
        assert!(
            matches!(inbox.take(name).unwrap(), Processed::Rejected(1)),
            "{name}"
        );
        let report =
            fs::read_to_string(inbox.dir.join(format!("rejected/{name}.errors.txt"))).unwrap();
        assert!(report.contains(kind), "{report}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let moved = fs::symlink_metadata(inbox.dir.join("rejected/zero.jsonl")).unwrap();
    assert!(
        moved.file_type().is_symlink(),
        "moved as it is, not followed"
    );
    assert_eq!(inbox.store.snapshot().generation(), 0);
}

/// Make every candidate look first seen `by` earlier (the scan's clock, without sleeping).
fn age(seen: &mut HashMap<String, Seen>, by: Duration) {
    for s in seen.values_mut() {
        s.since -= by;
    }
}

#[test]
fn files_written_in_place_are_taken_only_when_they_look_complete() {
    let (_dir, inbox) = inbox();
    let dir = inbox.dir.clone();
    let mut seen = HashMap::new();
    fs::write(dir.join("a.jsonl"), GOOD.trim_end()).unwrap(); // cut inside a line
    fs::write(dir.join("f.full_sync.jsonl"), GOOD).unwrap();
    inbox.tick(&mut seen, &[]).unwrap();
    age(&mut seen, Duration::from_secs(2));
    inbox.tick(&mut seen, &[]).unwrap();
    assert!(
        dir.join("a.jsonl").exists(),
        "no final newline: not complete"
    );
    assert!(
        dir.join("f.full_sync.jsonl").exists(),
        "a full sync is never taken for being stable"
    );

    // Completed: the change starts the stable period again.
    fs::OpenOptions::new()
        .append(true)
        .open(dir.join("a.jsonl"))
        .unwrap()
        .write_all(b"\n")
        .unwrap();
    inbox.tick(&mut seen, &[]).unwrap();
    assert!(dir.join("a.jsonl").exists(), "changed since the last scan");
    age(&mut seen, Duration::from_secs(2));
    inbox.tick(&mut seen, &[]).unwrap();
    assert!(dir.join("done/a.jsonl").exists());

    // A companion older than the file does not vouch for it; a newer one does.
    let ready = dir.join("f.full_sync.jsonl.ready");
    fs::File::create(&ready)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    inbox.tick(&mut seen, &[]).unwrap();
    assert!(dir.join("f.full_sync.jsonl").exists(), "stale companion");
    fs::File::create(&ready)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    inbox.tick(&mut seen, &[]).unwrap();
    assert!(dir.join("done/f.full_sync.jsonl").exists());
    assert!(!ready.exists(), "the companion goes with its file");

    // Renamed in: taken at once.
    fs::write(dir.join("r.full_sync.jsonl.tmp"), GOOD).unwrap();
    fs::rename(
        dir.join("r.full_sync.jsonl.tmp"),
        dir.join("r.full_sync.jsonl"),
    )
    .unwrap();
    inbox
        .tick(&mut seen, &["r.full_sync.jsonl".to_string()])
        .unwrap();
    assert!(dir.join("done/r.full_sync.jsonl").exists());
}

proptest::proptest! {
    /// However problems arrive (one by one or input by input), every one is counted and
    /// the first `LISTED` are kept, in order.
    #[test]
    fn rejections_count_every_problem_and_list_the_first(
        inputs in proptest::collection::vec(0usize..700, 0..6)
    ) {
        let mut all = Rejections::default();
        let mut line = 0u64;
        for n in &inputs {
            let mut one = Rejections::default();
            for _ in 0..*n {
                line += 1;
                one.push(Rejection { source: "x".into(), line, field: None, reason: "bad".into() });
            }
            all.append(one);
        }
        let total: usize = inputs.iter().sum();
        proptest::prop_assert_eq!(all.total, total);
        proptest::prop_assert_eq!(all.listed.len(), total.min(Rejections::LISTED));
        // No input reaches the cap alone: the listed ones are exactly the first lines.
        proptest::prop_assert!(all.listed.iter().enumerate().all(|(i, r)| r.line == i as u64 + 1));
    }
}

#[test]
fn with_a_durability_gate_a_file_applied_before_a_restart_is_applied_again() {
    let (dir, inbox) = inbox();
    fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
    // Applied and marked, then a crash before the move: the claim keeps file and marker.
    inject(&inbox, Step::Marked, Fault::Crash);
    assert!(crashes(|| inbox.take("a.jsonl")));
    assert_eq!(inbox.store.snapshot().len(), 2);
    let inbox_dir = inbox.dir.clone();
    drop(inbox);
    // The restart's store lacks that commit (a writer restarting from the bucket's state).
    let store =
        Arc::new(Store::open(&dir.path().join("older-store"), StoreOptions::default()).unwrap());
    let gate: DurableGate = Arc::new(|_| Ok(()));
    let restarted = Inbox::new(&inbox_dir, store, Duration::from_secs(1))
        .unwrap()
        .with_durable_gate(gate);
    assert_eq!(restarted.recover().unwrap(), 1);
    assert_eq!(
        restarted.store.snapshot().len(),
        2,
        "applied again, not only moved"
    );
    assert!(inbox_dir.join("done/a.jsonl").exists());
    assert_clean(&restarted, "after the restart");

    // Without a gate (no object store) the marker is trusted: only the move is left.
    let (dir, inbox) = self::inbox();
    fs::write(inbox.dir.join("a.jsonl"), GOOD).unwrap();
    inject(&inbox, Step::Marked, Fault::Crash);
    assert!(crashes(|| inbox.take("a.jsonl")));
    let inbox_dir = inbox.dir.clone();
    drop(inbox);
    let store =
        Arc::new(Store::open(&dir.path().join("older-store"), StoreOptions::default()).unwrap());
    let restarted = Inbox::new(&inbox_dir, store, Duration::from_secs(1)).unwrap();
    restarted.recover().unwrap();
    assert_eq!(restarted.store.snapshot().len(), 0);
    assert!(inbox_dir.join("done/a.jsonl").exists());
}
