//! Throughput of the synthetic catalog generator and of the JSON Lines reader that ingests
//! its output. Run with `cargo bench --bench generate`.

use std::hint::black_box;
use std::io::{self, Cursor, Write};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use iofd::generate::{generate_to, GenerateOptions};
use iofd::ingest::JsonlReader;

const PRODUCTS: u64 = 2_000;

/// Discards bytes: measures generation, not a disk.
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(black_box(buf).len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn catalog() -> Vec<u8> {
    let mut out = Vec::new();
    generate_to(
        &mut out,
        &GenerateOptions {
            products: PRODUCTS,
            seed: 1,
        },
    )
    .expect("generate");
    out
}

fn generate(c: &mut Criterion) {
    let opts = GenerateOptions {
        products: PRODUCTS,
        seed: 1,
    };
    let bytes = catalog().len() as u64;
    let mut group = c.benchmark_group("generate");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(BenchmarkId::new("bytes", PRODUCTS), |b| {
        b.iter(|| generate_to(&mut Sink, black_box(&opts)).expect("generate"))
    });
    group.throughput(Throughput::Elements(PRODUCTS));
    group.bench_function(BenchmarkId::new("products", PRODUCTS), |b| {
        b.iter(|| generate_to(&mut Sink, black_box(&opts)).expect("generate"))
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let input = catalog();
    let mut group = c.benchmark_group("read_jsonl");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function(BenchmarkId::new("generated", PRODUCTS), |b| {
        b.iter(|| {
            let reader = JsonlReader::new("bench", Cursor::new(black_box(&input[..])));
            reader.filter(Result::is_ok).count()
        })
    });
    group.finish();
}

criterion_group!(benches, generate, read);
criterion_main!(benches);
