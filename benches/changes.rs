//! Change detection costs on synthetic catalogs, on real files (fsync included):
//!
//! - `hash_main_nodes/100k`: every main node of 100,000 products, one core;
//! - `publish_one_change/1M`: one product's stock changes in a 1,000,000-product catalog:
//!   `Store::apply` (new generation, durable) + `Changes::observe` (hash the changed shard,
//!   diff, fsynced change-log frame). Bytes written are printed once.
//!
//! The catalogs are built once per run through `Store::apply` in batches (minutes for the
//! million). `IOFD_BENCH_PRODUCTS` overrides the size of the large one; `IOFD_BENCH_DIR`
//! keeps its store there between runs. Wall times on a shared machine include waiting for a
//! core, so the split printed at the end adds the thread's CPU time (Linux).
//! Run with `cargo bench --bench changes`.

use std::hint::black_box;
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use iofd::catalog::{Decimal, Product, Record};
use iofd::changes::{hash_products, Changes, ChangesOptions};
use iofd::generate::{generate_to, GenerateOptions};
use iofd::ingest::{JsonlReader, LineError};
use iofd::store::{ApplyMode, Store, StoreOptions};

/// Bytes from a generator thread, through a bounded channel: no multi-gigabyte file.
struct ChannelWriter(mpsc::SyncSender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(buf.to_vec())
            .map_err(|_| std::io::Error::other("reader gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

const BATCH: usize = 50_000;

/// A store of `n` synthetic products in `dir`, imported in batches, with the shard layout a
/// single import of all of them would get (the first batch decides the shard count).
fn build_store(dir: &Path, n: u64) -> Store {
    let started = Instant::now();
    let first = (n as usize).min(BATCH);
    let per_shard = StoreOptions::default().products_per_shard;
    let mut store = Store::open(
        dir,
        StoreOptions {
            products_per_shard: (first * per_shard / n as usize).max(1),
            ..StoreOptions::default()
        },
    )
    .expect("store");
    let mut reopened = false;
    let (tx, rx) = mpsc::sync_channel(64);
    let generator = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, ChannelWriter(tx));
        generate_to(
            &mut w,
            &GenerateOptions {
                products: n,
                seed: 7,
            },
        )
        .expect("generate");
    });
    let reader = JsonlReader::new(
        "generated",
        BufReader::with_capacity(
            1 << 20,
            ChannelReader {
                rx,
                chunk: Vec::new(),
                at: 0,
            },
        ),
    );
    let mut batch = Vec::with_capacity(BATCH);
    for line in reader {
        match line {
            Ok(l) => batch.push(l.record),
            Err(LineError::Rejected(r)) => panic!("generated line rejected: {r}"),
            Err(LineError::Fatal(e)) => panic!("{e}"),
        }
        if batch.len() == BATCH {
            store
                .apply(std::mem::take(&mut batch), ApplyMode::Upsert)
                .expect("apply");
            if !reopened {
                // The shard count is set; the usual options from here on.
                drop(store);
                store = Store::open(dir, StoreOptions::default()).expect("store");
                reopened = true;
            }
        }
    }
    store.apply(batch, ApplyMode::Upsert).expect("apply");
    generator.join().expect("generator");
    eprintln!(
        "built a store of {} products ({} shards) in {:.1} s",
        store.snapshot().len(),
        store.snapshot().shard_count(),
        started.elapsed().as_secs_f64()
    );
    store
}

fn hashing(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = build_store(&dir.path().join("store"), 100_000);
    let snapshot = store.snapshot();
    let mut group = c.benchmark_group("hash_main_nodes");
    group.throughput(Throughput::Elements(snapshot.len() as u64));
    group.sample_size(20);
    group.bench_function("100k", |b| {
        b.iter(|| {
            for shard in snapshot.shards() {
                black_box(hash_products(shard.products));
            }
        })
    });
    group.finish();
}

/// CPU time of the calling thread, where the platform tells it.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn publishing(c: &mut Criterion) {
    let n: u64 = std::env::var("IOFD_BENCH_PRODUCTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = match std::env::var_os("IOFD_BENCH_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => dir.path().join("store"),
    };
    let existing = iofd::store::load_snapshot(&store_dir).map_or(0, |s| s.len() as u64);
    let store = if existing >= n {
        Store::open(&store_dir, StoreOptions::default()).expect("store")
    } else {
        build_store(&store_dir, n)
    };
    let started = Instant::now();
    let changes = Changes::open(
        &dir.path().join("changes"),
        &store.snapshot(),
        ChangesOptions::new(jiff::tz::TimeZone::UTC),
    )
    .expect("changes");
    eprintln!(
        "hashed every main node of {n} products (all cores) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let id = n / 2;
    let mut product: Product =
        rkyv::deserialize::<Product, rkyv::rancor::Error>(store.snapshot().product(id).unwrap())
            .expect("product");
    let mut quantity = 0i64;
    let mut bytes = (0u64, 0u64, 0usize);
    let (mut store_wall, mut store_cpu, mut observe_wall, mut observe_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut group = c.benchmark_group("publish_one_change");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(format!("{}k", n / 1000), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                quantity += 1;
                product.sizes[0].stock[0].quantity = Decimal::from(quantity % 1000 + 1);
                let record = Record::Product(Box::new(product.clone()));
                let (t, cpu) = (Instant::now(), thread_cpu());
                let applied = store.apply(vec![record], ApplyMode::Upsert).expect("apply");
                let (t2, cpu2) = (Instant::now(), thread_cpu());
                let observed = changes.observe(&store.snapshot()).expect("observe");
                let (t3, cpu3) = (Instant::now(), thread_cpu());
                total += t3 - t;
                store_wall.push(t2 - t);
                observe_wall.push(t3 - t2);
                if let (Some(a), Some(b), Some(c)) = (cpu, cpu2, cpu3) {
                    store_cpu.push(b - a);
                    observe_cpu.push(c - b);
                }
                assert_eq!(observed.records, 1);
                bytes = (
                    applied.bytes_written,
                    observed.bytes_written,
                    applied.shards_written,
                );
            }
            total
        })
    });
    group.finish();
    eprintln!(
        "one-product change in {n} products: store wrote {} bytes ({} file(s) and the manifest), \
         changes wrote {} bytes (one shard's hashes + one log frame)",
        bytes.0, bytes.2, bytes.1
    );
    eprintln!(
        "median per change: Store::apply {:?} wall ({:?} CPU on the calling thread), \
         Changes::observe {:?} wall ({:?} CPU)",
        median(store_wall),
        median(store_cpu),
        median(observe_wall),
        median(observe_cpu)
    );
}

criterion_group!(benches, hashing, publishing);
criterion_main!(benches);
