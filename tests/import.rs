//! `iofd import` as a user runs it (the built binary): the full-sync removal guard.

use std::path::Path;
use std::process::{Command, Output};

use iofd::store::{Store, StoreOptions};

fn import(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iofd"))
        .arg("import")
        .arg("--data")
        .arg(data)
        .args(args)
        .env("IOFD_LOG", "warn")
        .output()
        .expect("run iofd import")
}

fn products(data: &Path) -> usize {
    Store::open(&data.join("store"), StoreOptions::default())
        .unwrap()
        .snapshot()
        .len()
}

#[test]
fn a_full_sync_import_that_removes_too_much_needs_the_count_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/catalog.jsonl");
    let out = import(&data, &[catalog.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(products(&data), 200);

    let short = dir.path().join("short.jsonl");
    std::fs::write(
        &short,
        r#"{"kind":"product","id":1,"vat":23,"description":{"name":{"pol":"Jedyny"}}}"#,
    )
    .unwrap();
    let short = short.to_str().unwrap();
    let out = import(&data, &["--full-sync", short]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("would remove 199 of the 200 products")
            && stderr.contains("--confirm-removal 199"),
        "{stderr}"
    );
    assert_eq!(products(&data), 200, "nothing removed");

    // The flag only goes with --full-sync; with it and the wrong count, still refused.
    let out = import(&data, &["--confirm-removal", "199", short]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--full-sync"));
    let out = import(&data, &["--full-sync", "--confirm-removal", "198", short]);
    assert!(!out.status.success());
    assert_eq!(products(&data), 200);

    let out = import(&data, &["--full-sync", "--confirm-removal", "199", short]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("199 removed"));
    assert_eq!(products(&data), 1);
}
