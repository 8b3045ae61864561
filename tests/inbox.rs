//! The drop folder on a real server: files that are not regular files are refused without
//! being opened, a file left claimed by a run it made panic no longer stops start-up, an
//! orphan marker does not make a file skip, poisoned files are left alone, and error reports
//! are capped.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A product no demo catalog carries.
const GOOD: &str = r#"{"kind":"product","id":990001,"vat":23,"description":{"name":{"pol":"Z"}}}
"#;

/// Drop `body` as `inbox/name` the safe way: written under a temporary name, renamed in.
fn drop_file(inbox: &Path, name: &str, body: &str) {
    let tmp = inbox.join(format!("{name}.tmp"));
    fs::write(&tmp, body).unwrap();
    fs::rename(&tmp, inbox.join(name)).unwrap();
}

/// Wait (polling the file system, bounded) until `path` exists.
fn wait_for(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_product(server: &Server, id: u64) -> bool {
    server.app.store.snapshot().product(id).is_some()
}

#[test]
fn symlinks_and_fifos_are_refused_quickly_and_the_folder_keeps_going() {
    let dir = tempdir();
    let data = data_path(&dir);
    let server = Server::demo(&data);
    let inbox = data.join("inbox");
    let started = Instant::now();
    std::os::unix::fs::symlink("/dev/zero", inbox.join("zero.jsonl")).unwrap();
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(inbox.join("pipe.jsonl"))
        .status()
        .unwrap();
    assert!(mkfifo.success());
    drop_file(&inbox, "good.jsonl", GOOD);

    wait_for(&inbox.join("rejected/zero.jsonl.errors.txt"));
    wait_for(&inbox.join("rejected/pipe.jsonl.errors.txt"));
    wait_for(&inbox.join("done/good.jsonl"));
    // Taken at the next scan, not after the 5 s stable period, and never read.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let zero = fs::read_to_string(inbox.join("rejected/zero.jsonl.errors.txt")).unwrap();
    assert!(zero.contains("symbolic link"), "{zero}");
    let pipe = fs::read_to_string(inbox.join("rejected/pipe.jsonl.errors.txt")).unwrap();
    assert!(pipe.contains("FIFO"), "{pipe}");
    assert!(has_product(&server, 990001));
    // Each file's records are counted at /metrics by outcome.
    let metrics = server
        .get(&format!("{}/metrics", server.admin))
        .text()
        .unwrap();
    for line in [
        r#"iofd_ingest_records_total{source="folder",outcome="applied"} 1"#,
        r#"iofd_ingest_records_total{source="folder",outcome="rejected"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[test]
fn a_hostile_file_left_claimed_is_taken_and_the_server_starts() {
    let dir = tempdir();
    let data = data_path(&dir);
    let inbox = data.join("inbox");
    let work = inbox.join(".work");
    fs::create_dir_all(&work).unwrap();
    // Left in `.work/` by an earlier run that it made panic (a zero VAT divisor: 1 - 100%).
    // The importer now refuses that product (VAT outside 0..=100), so the file is rejected.
    fs::write(
        work.join("hostile.xml"),
        r#"<offer file_format="IOF" version="3.0"><products currency="PLN" language="pol">
<product id="990002" vat="-100" type="regular"><price gross="10.00"/>
<description><name xml:lang="pol">X</name></description></product>
</products></offer>"#,
    )
    .unwrap();
    // The marker of a file that reached done/ before the crash, but not its own removal.
    fs::write(work.join("a.jsonl.applied"), "applied\n").unwrap();
    // A file poisoned by an earlier run: it waits for an operator, never applied again.
    let poisoned = inbox.join("poisoned/0000000000000001");
    fs::create_dir_all(&poisoned).unwrap();
    fs::write(
        poisoned.join("p.jsonl"),
        r#"{"kind":"product","id":990003,"vat":23,"description":{"name":{"pol":"P"}}}
"#,
    )
    .unwrap();

    let server = Server::demo(&data);
    assert_eq!(
        server.get(&format!("{}/healthz", server.admin)).status(),
        200
    );
    assert!(inbox.join("rejected/hostile.xml").exists());
    assert!(!has_product(&server, 990002));
    assert!(
        !has_product(&server, 990003),
        "a poisoned file is not applied"
    );
    assert!(poisoned.join("p.jsonl").exists());
    assert!(
        !work.join("a.jsonl.applied").exists(),
        "orphan marker removed"
    );

    // A new file of the orphan marker's name is applied, not moved to done/ unapplied.
    drop_file(&inbox, "a.jsonl", GOOD);
    wait_for(&inbox.join("done/a.jsonl"));
    assert!(has_product(&server, 990001));
}

#[test]
fn errors_txt_lists_at_most_a_thousand_problems() {
    let dir = tempdir();
    let data = data_path(&dir);
    let _server = Server::demo(&data);
    let inbox = data.join("inbox");
    drop_file(&inbox, "bad.jsonl", &"{oops\n".repeat(1200));
    let report = inbox.join("rejected/bad.jsonl.errors.txt");
    wait_for(&report);
    let text = fs::read_to_string(&report).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1002);
    assert!(lines[0].contains("1200 problem(s)"), "{}", lines[0]);
    assert!(
        lines[1000].starts_with("bad.jsonl:1000: "),
        "{}",
        lines[1000]
    );
    assert_eq!(lines[1001], "... and 200 more problem(s), not listed");
}

#[test]
fn a_full_sync_dropped_while_stopped_is_taken_with_its_ready_companion() {
    let dir = tempdir();
    let data = data_path(&dir);
    let first = Server::demo(&data);
    let before = first.app.store.snapshot().len();
    first.stop();
    // Dropped while iofd was not running: no rename is seen, the companion vouches for it.
    // (The whole catalog and one more product: a full sync that removes nothing.)
    let inbox = data.join("inbox");
    let mut all = iofd::app::DEMO_CATALOG.trim_end().to_string();
    all.push('\n');
    all.push_str(GOOD);
    fs::write(inbox.join("all.full_sync.jsonl"), all).unwrap();
    fs::write(inbox.join("all.full_sync.jsonl.ready"), "").unwrap();
    let server = Server::demo(&data);
    wait_for(&inbox.join("done/all.full_sync.jsonl"));
    assert!(!inbox.join("all.full_sync.jsonl.ready").exists());
    let snap = server.app.store.snapshot();
    assert_eq!(snap.len(), before + 1);
    assert!(snap.product(990001).is_some());
}
