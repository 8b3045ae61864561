//! The `iofd` command line: parse, set up logging, dispatch. The work lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use iofd::app::App;
use iofd::config::{Config, LogFormat, ServeArgs};
use iofd::http;
use iofd::server::{Listeners, Server};

/// Records are parsed on every core and freed on another, and requests allocate and free on
/// whichever worker runs them: glibc's malloc spent a quarter of an import consolidating and
/// unlinking such chunks; mimalloc's per-thread free lists do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "iofd",
    version,
    about = "A feed origin that publishes a supplier's catalog to partners as IOF 3.0 offers and CSV"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve partner feeds (with no partners file: the bundled demo catalog and partners).
    Serve(ServeArgs),
    /// Write a deterministic synthetic catalog in the ERP's JSON Lines format.
    Generate {
        /// Number of products.
        #[arg(long, default_value_t = 200)]
        products: u64,
        /// Random seed: the same seed and count give the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (receives catalog.jsonl).
        #[arg(long)]
        out: PathBuf,
    },
    /// Load JSON Lines files or IOF 3.0 offers (a directory holding full.xml and its
    /// companions, a full.xml, or a gateway file) into the store. Nothing is applied unless
    /// every line is valid.
    Import {
        #[command(flatten)]
        args: ServeArgs,
        /// Files to import, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The files are the complete catalog: remove products they do not contain. Refused
        /// when that removes more than full_sync_max_removal of the products, unless
        /// --confirm-removal gives the exact count.
        #[arg(long)]
        full_sync: bool,
        /// With --full-sync: the number of products it removes, as the refusal said.
        #[arg(long, value_name = "N", requires = "full_sync")]
        confirm_removal: Option<usize>,
        /// Apply the valid lines even when some are rejected.
        #[arg(long)]
        skip_invalid: bool,
        /// IOF offers: refuse the import when any value would be dropped.
        #[arg(long)]
        strict: bool,
        /// IOF offers: also write the import report (per field: mapped, converted, derived,
        /// dropped) as JSON to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Manage partner accounts in partners.toml (a running server reloads it within a second).
    Partners(iofd::partners::cli::PartnersArgs),
    /// Check IOF files against the official IOF 3.0 schemas (needs xmllint).
    Validate {
        /// Files to check; the schema is chosen from the file name (full.xml, light.xml, ...).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check every file of the data directory (store generation and its fallback, change
    /// history, rendered files) and say what a start would serve; exits non-zero on damage.
    /// Read-only: it may run beside a server.
    Verify {
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Play many partners against a server (or a CDN in front) and report speed and
    /// correctness: rates, latencies, hash mismatches, freshness.
    Load(iofd::load::LoadArgs),
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IOFD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args),
        Command::Generate {
            products,
            seed,
            out,
        } => generate(products, seed, out),
        Command::Import {
            args,
            files,
            full_sync,
            confirm_removal,
            skip_invalid,
            strict,
            report,
        } => {
            let mode = match (full_sync, confirm_removal) {
                (false, _) => iofd::store::ApplyMode::Upsert,
                (true, None) => iofd::store::ApplyMode::FullSync,
                (true, Some(removal)) => iofd::store::ApplyMode::FullSyncConfirmed { removal },
            };
            import(args, files, mode, skip_invalid, strict, report)
        }
        Command::Validate { files } => validate(files),
        Command::Verify { args } => verify(args),
        Command::Load(args) => {
            init_tracing(LogFormat::Text);
            iofd::load::main(args).map_err(Into::into)
        }
        Command::Partners(args) => {
            iofd::partners::cli::run(args, &mut std::io::stdout().lock()).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iofd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    init_tracing(config.log_format);
    // Before anything opens files: the connection budget is computed from this limit.
    match http::limits::raise_descriptor_limit() {
        Ok((before, after)) => tracing::info!(
            before = ?before,
            after = ?after,
            "descriptor limit (RLIMIT_NOFILE soft, None: unlimited) raised to the hard limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listeners = Listeners::bind(&config).await?;
        let server = Server::start(config, listeners).await?;
        print_gateways(server.app());
        #[cfg(unix)]
        server.spawn("hangup reload", reload_on_hangup(server.app().clone()));
        server
            .run_until(async {
                shutdown_signal().await;
                tracing::info!("shutting down: finishing requests in flight");
            })
            .await?;
        Ok(())
    })
}

fn print_gateways(app: &Arc<App>) {
    let partners = app.partners();
    println!(
        "iofd serving {} products on {} (admin {})",
        app.store.snapshot().len(),
        app.config.listen,
        app.config.admin_listen
    );
    match (&app.config.admin_token, app.config.demo) {
        (Some(token), true) => println!(
            "  admin ingest API: {}/v1/... with Authorization: Bearer {token}",
            app.config.admin_listen
        ),
        (Some(_), false) => println!("  admin ingest API: {}/v1/...", app.config.admin_listen),
        (None, _) => println!("  admin ingest API disabled: set admin_token"),
    }
    if app.config.admin_token.is_some() {
        println!(
            "  operator's panel: http://{}/ui/ (log in with the admin token)",
            app.config.admin_listen
        );
    }
    for entry in app.entry_urls() {
        let state = if entry.offer_access {
            ""
        } else {
            "  (offer access off)"
        };
        println!("  {:<16} {}{}", entry.partner, entry.url, state);
    }
    // Empty `<meta>` fields are valid IOF, but clients built on IdoSell's gateways (which
    // fill them all) may refuse them: say so at start-up rather than leave partners guessing.
    let snapshot = app.store.snapshot();
    let used: std::collections::BTreeSet<u32> = partners
        .accounts()
        .flat_map(|a| a.shops.iter().copied())
        .collect();
    let mut shops: Vec<(u32, [(&str, bool); 5])> = snapshot
        .dicts()
        .shops
        .iter()
        .map(|s| {
            (
                s.id.to_native(),
                [
                    ("logo_url", s.logo_url.is_none()),
                    ("email", s.email.trim().is_empty()),
                    ("tel", s.tel.trim().is_empty()),
                    ("fax", s.fax.trim().is_empty()),
                    ("www", s.www.trim().is_empty()),
                ],
            )
        })
        .collect();
    if let Some(s) = app.config.shop.as_ref() {
        if !shops.iter().any(|(id, _)| *id == s.id) {
            shops.push((
                s.id,
                [
                    ("logo_url", s.logo_url.is_none()),
                    ("email", s.email.trim().is_empty()),
                    ("tel", s.tel.trim().is_empty()),
                    ("fax", s.fax.trim().is_empty()),
                    ("www", s.www.trim().is_empty()),
                ],
            ));
        }
    }
    for (id, fields) in shops.iter().filter(|(id, _)| used.contains(id)) {
        let empty: Vec<&str> = fields.iter().filter(|f| f.1).map(|f| f.0).collect();
        if !empty.is_empty() {
            println!(
                "  note: shop {id}'s gateway has empty {} (valid IOF, but some IOF clients refuse it)",
                empty.join(", ")
            );
        }
    }
}

/// `kill -HUP`: read the partners file again (and purge what changed). A reload that fails
/// is logged and the accounts in force stay.
#[cfg(unix)]
async fn reload_on_hangup(app: Arc<App>) -> Result<(), std::convert::Infallible> {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::error!(error = %e, "cannot catch SIGHUP; reload the partners file by editing it");
            return Ok(());
        }
    };
    while hangups.recv().await.is_some() {
        let app = app.clone();
        match tokio::task::spawn_blocking(move || app.reload_partners()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot reload partners; the accounts in force stay")
            }
            Err(e) => tracing::error!(error = %e, "the reload task failed"),
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn generate(products: u64, seed: u64, out: PathBuf) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let summary =
        iofd::generate::generate(&iofd::generate::GenerateOptions { products, seed }, &out)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} ({} products, {} records, {:.1} MB) in {:.2} s",
        out.join("catalog.jsonl").display(),
        summary.products,
        summary.records,
        summary.bytes as f64 / 1e6,
        secs
    );
    Ok(())
}

fn verify(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    init_tracing(config.log_format);
    let report = iofd::verify::verify(&config.data_dir);
    println!("{report}");
    if report.damaged() {
        bail!("damage found under {}", config.data_dir.display());
    }
    Ok(())
}

fn import(
    args: ServeArgs,
    files: Vec<PathBuf>,
    mode: iofd::store::ApplyMode,
    skip_invalid: bool,
    strict: bool,
    report_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    let iof_options = iofd::ingest::iof::ImportOptions {
        base_currency: config.base_currency.clone(),
        rates: config.rates.clone(),
        strict,
    };
    let mut iof_reports = Vec::new();
    let mut iof_skipped = 0usize;
    init_tracing(config.log_format);
    // Before anything opens files: the connection budget is computed from this limit.
    match http::limits::raise_descriptor_limit() {
        Ok((before, after)) => tracing::info!(
            before = ?before,
            after = ?after,
            "descriptor limit (RLIMIT_NOFILE soft, None: unlimited) raised to the hard limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit"),
    }
    let started = std::time::Instant::now();
    let store = iofd::store::Store::open(&config.store_dir(), config.store_options())?;
    // Products are parked in a spool as they are read: memory stays small whatever the size.
    // One batch under ingest's one duplicate rule, whatever mix of files.
    let mut batch = iofd::ingest::BatchBuilder::new(iofd::store::SpooledBatch::new(store.spool()?));
    let mut rejected = iofd::inbox::Rejections::default();
    // IOF offers read without a gateway: they bring no shop metadata.
    let mut without_shop = Vec::new();
    for file in &files {
        let is_iof = file.is_dir() || file.extension().is_some_and(|e| e == "xml");
        if is_iof {
            // Products are parked as they are mapped, so memory stays flat however large.
            let source = file.display().to_string();
            let mut park = |record: iofd::catalog::Record| -> Result<(), String> {
                // An offer has no lines: a duplicate names the file.
                if let Some(r) = batch.add(&source, 0, record).map_err(|e| e.to_string())? {
                    rejected.push(r);
                }
                Ok(())
            };
            let offer = match iofd::ingest::iof::read_offer_each(file, &iof_options, &mut park) {
                Ok(offer) => offer,
                Err(iofd::ingest::iof::IofError::Strict {
                    path,
                    dropped,
                    fields,
                    report,
                }) => {
                    eprint!("{}: {report}", file.display());
                    bail!(
                        "{}: {dropped} value(s) would be dropped ({}); nothing was imported (--strict)",
                        path.display(),
                        fields.join(", ")
                    );
                }
                Err(e) => return Err(e.into()),
            };
            for note in &offer.notes {
                eprintln!("{}: {note}", file.display());
            }
            for skipped in &offer.skipped {
                eprintln!("{skipped}");
            }
            iof_skipped += offer.skipped.len();
            print!("{}: {}", file.display(), offer.report);
            iof_reports.push(serde_json::json!({
                "file": file.display().to_string(),
                "report": &offer.report,
            }));
            if !offer
                .records
                .iter()
                .any(|r| matches!(r, iofd::catalog::Record::Shop(_)))
            {
                without_shop.push(file.display().to_string());
            }
            for record in offer.records {
                park(record).map_err(anyhow::Error::msg)?;
            }
            continue;
        }
        let name = file.display().to_string();
        let reader = std::fs::File::open(file)
            .map(|f| std::io::BufReader::with_capacity(256 << 10, f))
            .with_context(|| format!("cannot read {name}"))?;
        rejected.append(iofd::inbox::spool_more(&mut batch, &name, reader)?);
    }
    if let Some(path) = &report_file {
        // Written before anything is applied or refused: what the files held, either way.
        let json = serde_json::to_vec_pretty(&serde_json::json!({ "offers": iof_reports }))?;
        iofd::partners::edit::write_atomically(path, &json)
            .with_context(|| format!("cannot write the import report {}", path.display()))?;
    }
    for r in rejected.listed.iter().take(50) {
        eprintln!("{r}");
    }
    if rejected.total > 50 {
        eprintln!("... and {} more rejected lines", rejected.total - 50);
    }
    if iof_skipped > 0 && !skip_invalid {
        bail!("{iof_skipped} IOF product(s) cannot be imported; nothing was imported (use --skip-invalid to import the valid ones)");
    }
    if !rejected.is_empty() && !skip_invalid {
        bail!("{} line(s) rejected; nothing was imported (use --skip-invalid to import the valid lines)", rejected.total);
    }
    let parsed = started.elapsed();
    let count = batch.count();
    let iofd::store::SpooledBatch {
        dicts,
        changes,
        mut spool,
    } = batch.into_target();
    let report = store.apply_spooled(dicts, changes, &mut spool, mode)?;
    println!(
        "{count} records: {} applied, {} unchanged, {} removed, {} rejected; generation {} ({} shard files, {:.1} MB written); parse {:.2} s, total {:.2} s",
        report.applied,
        report.unchanged,
        report.removed,
        rejected.total,
        report.generation,
        report.shards_written,
        report.bytes_written as f64 / 1e6,
        parsed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for file in &without_shop {
        eprintln!(
            "{file}: no gateway, so no shop metadata (names, e-mail, address) was imported; {}",
            shop_fallback(&store.snapshot(), config.shop.as_ref(), config.demo)
        );
    }
    Ok(())
}

/// What the gateways will say about the supplier after an import that brought no shop.
fn shop_fallback(
    snapshot: &iofd::snapshot::Snapshot,
    shop: Option<&iofd::catalog::Shop>,
    demo: bool,
) -> String {
    let stored: Vec<String> = snapshot
        .dicts()
        .shops
        .iter()
        .map(|s| s.id.to_native().to_string())
        .collect();
    match shop {
        _ if !stored.is_empty() => format!(
            "the shop metadata already stored is kept (shop {})",
            stored.join(", ")
        ),
        Some(shop) => format!(
            "the gateway of shop {} will use the [shop] table of the configuration ({:?}, {}){}",
            shop.id,
            shop.long_name,
            shop.email,
            if demo {
                "; these are demo mode's defaults: a server started with --config or --partners uses the [shop] table of its configuration instead"
            } else {
                ""
            }
        ),
        None => {
            "the configuration has no [shop] table either: add one (see README, Configuration), \
                 otherwise a partners file naming a shop is refused"
                .to_string()
        }
    }
}

fn validate(files: Vec<PathBuf>) -> anyhow::Result<()> {
    let mut failed = 0;
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let kind = name.split('.').next().unwrap_or("");
        let Some(schema) = iofd::xsd::Schema::for_kind(kind) else {
            bail!("{}: cannot tell which schema applies (name the file full.xml, light.xml, gateway.xml, ...)", file.display());
        };
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        match iofd::xsd::validate(schema, &bytes) {
            Ok(()) => println!("{}: valid ({})", file.display(), schema.file_name()),
            Err(e @ iofd::xsd::XsdError::Invalid { .. }) => {
                failed += 1;
                println!("{}: {e}", file.display());
            }
            Err(e) => return Err(e.into()),
        }
    }
    if failed > 0 {
        bail!("{failed} file(s) do not validate");
    }
    Ok(())
}
