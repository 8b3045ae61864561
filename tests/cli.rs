//! The command line as users run it.

use std::process::Command;

fn iofd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iofd"))
}

#[test]
fn a_malformed_line_is_reported_with_file_line_and_field_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("gen");
    let status = iofd()
        .args(["generate", "--products", "50", "--seed", "3", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let good = out.join("catalog.jsonl");
    let imported = iofd()
        .arg("import")
        .arg("--data")
        .arg(&data)
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let before = std::fs::read(data.join("store/MANIFEST")).unwrap();

    // Line 2 has a price of the wrong type deep inside a size.
    let text = std::fs::read_to_string(&good).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let product_line = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"product\""))
        .unwrap();
    lines[product_line] = lines[product_line].replacen("\"vat\":", "\"vat\":\"twenty\",\"x\":", 1);
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let result = iofd()
        .arg("import")
        .arg("--data")
        .arg(&data)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains(&format!("bad.jsonl:{}:", product_line + 1)),
        "{stderr}"
    );
    assert!(stderr.contains("vat"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(
        std::fs::read(data.join("store/MANIFEST")).unwrap(),
        before,
        "the store is untouched"
    );
}

#[test]
fn validate_accepts_the_official_examples_and_rejects_a_broken_file() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/iof/examples");
    let ok = iofd()
        .arg("validate")
        .arg(format!("{examples}/full.xml"))
        .arg(format!("{examples}/gateway.xml"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("light.xml");
    std::fs::write(&broken, "<offer/>").unwrap();
    let bad = iofd().arg("validate").arg(&broken).output().unwrap();
    assert!(!bad.status.success());
}

#[test]
fn verify_passes_a_good_store_and_names_damage_and_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("gen");
    let status = iofd()
        .args(["generate", "--products", "40", "--seed", "5", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let catalog = out.join("catalog.jsonl");
    let verify = || {
        let o = iofd()
            .arg("verify")
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let import = |args: &[&str], file: &std::path::Path| {
        let o = iofd()
            .arg("import")
            .arg("--data")
            .arg(&data)
            .args(args)
            .arg(file)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    import(&[], &catalog);
    let store = data.join("store");
    let shards = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(&store)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("shard-"))
            .collect()
    };
    let first = shards();
    // A full sync of all but the last product: generation 2, generation 1 the fallback.
    let text = std::fs::read_to_string(&catalog).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines
        .iter()
        .rposition(|l| l.contains("\"kind\":\"product\""))
        .unwrap();
    let fewer: Vec<&str> = lines
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| *i != last)
        .map(|(_, l)| l)
        .collect();
    let smaller = dir.path().join("smaller.jsonl");
    std::fs::write(&smaller, fewer.join("\n") + "\n").unwrap();
    import(&["--full-sync"], &smaller);

    let (ok, report) = verify();
    assert!(ok, "{report}");
    assert!(report.contains("store: generation 2"), "{report}");
    assert!(report.contains("store fallback: generation 1"), "{report}");
    assert!(
        report.contains("a start would serve generation 2"),
        "{report}"
    );

    let victim = shards().difference(&first).next().unwrap().clone();
    let path = store.join(&victim);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let (ok, report) = verify();
    assert!(!ok, "{report}");
    assert!(
        report.contains("DAMAGED  store:") && report.contains(&victim),
        "{report}"
    );
    assert!(report.contains("FALL BACK to generation 1"), "{report}");
    // Read-only: the damaged file is still there for the operator.
    assert!(path.exists());
}
