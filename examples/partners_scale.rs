//! 1,000 partner accounts: how long a reload takes, how much memory the accounts hold, and how
//! many files are rendered for them (partners with equal settings share every file).
//!
//! Run once, optimized:
//!
//! ```sh
//! cargo run --release --example partners_scale -- [PARTNERS] [PRODUCTS]
//! ```
//!
//! Partners draw their settings from 20 combinations (format, file type, languages,
//! currency, discount, wholesale, only-in-stock), each with shops 1 and 2, so at most 40
//! render profiles exist however many partners there are.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iofd::app::App;
use iofd::config::Config;
use iofd::partners::edit::{self, token_sha256_hex};
use iofd::partners::Partners;

/// Counts live heap bytes, to measure what the accounts hold.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The settings partners draw from: (format, file_type, languages, currency, discount,
/// wholesale, only_in_stock).
const COMBOS: [(&str, &str, &str, &str, &str, bool, bool); 20] = [
    ("iof-3.0", "xml", "\"pol\"", "PLN", "0", false, false),
    ("iof-3.0", "xml", "\"pol\"", "PLN", "5", false, false),
    ("iof-3.0", "xml", "\"pol\"", "PLN", "10", false, true),
    (
        "iof-3.0",
        "xml",
        "\"pol\", \"eng\"",
        "PLN",
        "0",
        true,
        false,
    ),
    ("iof-3.0", "xml", "\"eng\"", "EUR", "0", false, false),
    ("iof-3.0", "xml", "\"eng\"", "EUR", "7.5", true, true),
    (
        "iof-3.0",
        "xml",
        "\"eng\", \"pol\"",
        "EUR",
        "3",
        false,
        false,
    ),
    ("iof-3.0", "xml", "\"eng\"", "CZK", "0", false, true),
    ("iof-3.0", "xml.gz", "\"pol\"", "PLN", "0", false, false),
    ("iof-3.0", "xml.gz", "\"eng\"", "EUR", "5", true, false),
    ("iof-3.0", "xml.gz", "\"pol\"", "PLN", "12", true, true),
    ("iof-3.0", "xml.gz", "\"eng\"", "CZK", "2.5", false, false),
    ("csv", "xml", "\"pol\"", "PLN", "0", false, false),
    ("csv", "xml", "\"pol\"", "PLN", "15", true, false),
    ("csv", "xml", "\"eng\"", "EUR", "0", false, true),
    ("csv", "xml", "\"eng\"", "EUR", "10", true, true),
    ("iof-3.0", "xml", "\"pol\"", "PLN", "20", true, false),
    ("iof-3.0", "xml", "\"eng\"", "EUR", "20", false, false),
    ("iof-3.0", "xml", "\"pol\"", "CZK", "0", true, true),
    ("iof-3.0", "xml", "\"eng\"", "PLN", "1", false, false),
];

fn partners_file(count: usize) -> String {
    let mut s = String::from("[sharing]\nenabled = true\n");
    for i in 0..count {
        let (format, file_type, languages, currency, discount, wholesale, in_stock) =
            COMBOS[i % COMBOS.len()];
        let token = token_sha256_hex(&format!("scale-token-{i:06}"));
        let _ = write!(
            s,
            "\n[[partner]]\nid = \"partner-{i:04}\"\nname = \"Partner {i}\"\ntoken_sha256 = \"{token}\"\noffer_access = true\nshops = [1, 2]\nformat = \"{format}\"\nfile_type = \"{file_type}\"\nlanguages = [{languages}]\ncurrency = \"{currency}\"\ndiscount_percent = \"{discount}\"\nwholesale = {wholesale}\nonly_in_stock = {in_stock}\n"
        );
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn dir_bytes(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for profile in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(profile.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == "meta") {
                continue;
            }
            files += 1;
            bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    (files, bytes)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let products: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let path = dir.path().join("partners.toml");
    let text = partners_file(count);
    std::fs::write(&path, &text)?;
    let mut config = Config::for_data_dir(&data);
    config.partners_file = Some(path.clone());
    config.demo = false;
    println!(
        "partners.toml: {count} partners, {} combinations x 2 shops, {:.1} KB",
        COMBOS.len(),
        text.len() as f64 / 1024.0
    );

    // Parsing and validating, and what the result holds.
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let p = Partners::parse(&text, &path, &config)?;
        times.push(t.elapsed());
        drop(p);
    }
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let partners = Partners::parse(&text, &path, &config)?;
    let held = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let profiles = partners.profiles().len();
    println!(
        "parse + validate: median {:.2} ms over 20 runs; accounts hold {:.1} KB on the heap ({} B per partner), peak during parse {:.1} KB",
        median(times).as_secs_f64() * 1e3,
        held as f64 / 1024.0,
        held / count.max(1),
        peak as f64 / 1024.0
    );
    drop(partners);

    // A catalog, the app, and the rendered files for every profile in use.
    let gen = dir.path().join("gen");
    iofd::generate::generate(&iofd::generate::GenerateOptions { products, seed: 1 }, &gen)?;
    {
        let store = iofd::store::Store::open(&config.store_dir(), Default::default())?;
        let batch = iofd::ingest::read_jsonl_file(&gen.join("catalog.jsonl"))?;
        store.apply(
            batch.records.into_iter().map(|l| l.record).collect(),
            iofd::store::ApplyMode::FullSync,
        )?;
    }
    let t = Instant::now();
    // No server around it: the committer and the drop folder are not run (nothing ingests).
    let (app, _workers) = App::open(config.clone())?;
    let open = t.elapsed();
    let set = app.artifacts.current();
    let files = set.file_count();
    let per_partner_files: usize = app
        .partners()
        .accounts()
        .map(|a| {
            a.shops
                .iter()
                .filter_map(|s| a.profile(*s))
                .filter_map(|p| set.profile(p))
                .map(|f| f.files.len())
                .sum::<usize>()
        })
        .sum();
    let (disk_files, disk_bytes) = dir_bytes(&config.artifacts_dir());
    let served_bytes: u64 = app
        .partners()
        .accounts()
        .flat_map(|a| {
            a.shops
                .iter()
                .filter_map(|s| a.profile(*s))
                .collect::<Vec<_>>()
        })
        .filter_map(|p| set.profile(p))
        .flat_map(|f| f.files.values().map(|a| a.len))
        .sum();
    println!(
        "artifacts for {products} products: {profiles} render profiles, {files} distinct files ({disk_files} on disk, {:.1} MB) serve {per_partner_files} partner files ({:.1} MB if each partner had its own copy); first publish {:.1} s",
        disk_bytes as f64 / 1e6,
        served_bytes as f64 / 1e6,
        open.as_secs_f64()
    );

    // Reload in force: the same file, then one partner revoked (grants carried over for the
    // 999 others, one revoked).
    let mut times = Vec::new();
    for _ in 0..20 {
        times.push(app.reload_partners()?.elapsed);
    }
    println!(
        "App::reload_partners (read, validate, carry grants, swap, clear gateways): median {:.2} ms over 20 runs",
        median(times).as_secs_f64() * 1e3
    );

    // End to end with the watcher: from the CLI's atomic rename to the change being in force.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = rt.spawn(app.clone().run_partners_watcher(async {
        let _ = stop_rx.await;
    }));
    std::thread::sleep(Duration::from_millis(200));
    // (the CLI's validated atomic write, rename to in force)
    let mut latencies = Vec::new();
    for i in 0..20 {
        let id = format!("partner-{:04}", i * 97 % count);
        let t = Instant::now();
        edit::set_access(&path, &config, &id, false)?;
        let renamed = Instant::now();
        while app.partners().get(&id).is_some_and(|a| a.offer_access) {
            if t.elapsed() > Duration::from_secs(5) {
                anyhow::bail!("the reload did not happen within 5 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push((renamed - t, renamed.elapsed()));
        edit::set_access(&path, &config, &id, true)?;
        std::thread::sleep(Duration::from_millis(400));
    }
    let _ = stop_tx.send(());
    rt.block_on(watcher)?;
    let write = median(latencies.iter().map(|l| l.0).collect());
    let in_force = median(latencies.iter().map(|l| l.1).collect());
    let worst = latencies.iter().map(|l| l.1).max().unwrap_or_default();
    println!(
        "`iofd partners revoke` (edit: parse, change, validate, fsync, rename): median {:.0} ms; then file replaced to revocation in force (watcher, debounce, reload): median {:.0} ms, worst {:.0} ms over {} runs",
        write.as_secs_f64() * 1e3,
        in_force.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
        latencies.len()
    );
    Ok(())
}
