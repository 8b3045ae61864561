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
