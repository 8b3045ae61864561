//! The operator's panel in a real browser: `tests/ui/panel.mjs` drives Debian's Chromium
//! through playwright-core against a server on 127.0.0.1:0. It needs Chromium at
//! /usr/bin/chromium, Node and `npm ci` in tests/ui, which `.ci/run` installs before running
//! this test by name (`cargo test --test browser -- --ignored`); it fails without them.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use iofd::config::DEMO_ADMIN_TOKEN;

#[test]
#[ignore = "needs Chromium and tests/ui/node_modules; .ci/run installs them and runs it"]
fn the_panel_switches_offer_access_and_adds_a_partner_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ui = root.join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in {}",
        ui.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: apt-get install chromium"
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = tempdir();
    let data = data_path(&dir);
    let server = Server::demo(&data);
    let (id, token, shop) = demo_partners().remove(0);
    let gateway = format!("{}/feeds/{id}/{token}/{shop}/gateway.xml", server.base);

    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(ui.join("panel.mjs"))
        .current_dir(&ui)
        .env("IOFD_ADMIN", &server.admin)
        .env("IOFD_TOKEN", DEMO_ADMIN_TOKEN)
        .env("IOFD_PARTNER", &id)
        .env("IOFD_GATEWAY", &gateway)
        .env("IOFD_SHOTS", &shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    // A cross-process wait: polled with a deadline.
    let deadline = started + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser test did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(status.success(), "the browser test failed ({status})");
    println!("browser test took {:?}", started.elapsed());
    for name in ["overview.png", "partner-card.png", "partners-phone.png"] {
        let png = std::fs::read(shots.join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    }
    // The partner added in the browser is in the file, with only its token's hash.
    let file = std::fs::read_to_string(data.join("partners.toml")).unwrap();
    assert!(file.contains("id = \"browser-shop\""), "{file}");
    assert!(stdout.contains("panel browser test: ok"));
}
