//! Store and snapshot costs on a 100k-product synthetic catalog, on real files (fsync
//! included): opening and validating a snapshot, publishing a one-product change, and a bulk
//! import.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use iofd::catalog::{Decimal, Product, Record};
use iofd::store::{ApplyMode, Store, StoreOptions};

const PRODUCTS: u64 = 100_000;

/// A realistic product: two languages, descriptions, three sizes with stock in two
/// warehouses, prices, images and parameters.
fn template() -> Product {
    let mut p: Product = serde_json::from_value(serde_json::json!({
        "id": 1,
        "vat": 23,
        "code": "ABC-0001",
        "producer": 12, "category": 340, "unit": 1, "warranty": 2, "size_group": 5,
        "card_url": "https://shop.example.com/product/abc-0001",
        "description": {
            "name": {"pol": "Buty trekkingowe", "eng": "Trekking boots"},
            "short_desc": {"pol": "Wygodne buty na szlak.", "eng": "Comfortable boots for the trail."},
            "long_desc": {
                "pol": "<p>Wodoodporna membrana, podeszwa Vibram, waga 1200 g para.</p>",
                "eng": "<p>Waterproof membrane, Vibram sole, 1200 g per pair.</p>"
            }
        },
        "prices": {
            "retail": {"net": "325.20", "gross": "399.99"},
            "wholesale": {"net": "260.00", "gross": "319.80"},
            "srp": {"net": "365.85", "gross": "450.00"}
        },
        "sizes": [
            {"id": "41", "code": "ABC-0001-41", "code_producer": "5901234123457", "weight": 1300,
             "stock": [{"warehouse": 0, "quantity": 4}, {"warehouse": 1, "quantity": 10}]},
            {"id": "42", "code": "ABC-0001-42", "code_producer": "5901234123464", "weight": 1320,
             "stock": [{"warehouse": 0, "quantity": 0}, {"warehouse": 1, "quantity": 3}]},
            {"id": "43", "code": "ABC-0001-43", "code_producer": "5901234123471", "weight": 1350,
             "stock": [{"warehouse": 0, "quantity": 7}]}
        ],
        "images": [
            {"url": "https://cdn.example.com/img/abc-0001-1.jpg", "width": 1200, "height": 1200},
            {"url": "https://cdn.example.com/img/abc-0001-2.jpg", "width": 1200, "height": 1200},
            {"url": "https://cdn.example.com/img/abc-0001-3.jpg", "width": 1200, "height": 1200}
        ],
        "parameters": [
            {"id": 10, "values": [101]}, {"id": 11, "values": [111, 112]},
            {"id": 12, "values": [121]}, {"id": 13}
        ]
    }))
    .expect("the template product is valid JSON for the model");
    p.normalize().expect("the template product is valid");
    p
}

fn variant(template: &Product, id: u64, stock: u64) -> Product {
    let mut p = template.clone();
    p.id = id;
    p.code = Some(format!("ABC-{id:06}"));
    p.description
        .name
        .insert("pol".into(), format!("Buty trekkingowe model {id}"));
    for (i, size) in p.sizes.iter_mut().enumerate() {
        size.code = format!("ABC-{id:06}-{i}");
        size.stock[0].quantity = Decimal::from(stock % 50);
    }
    p
}

fn catalog(template: &Product) -> Vec<Record> {
    (1..=PRODUCTS)
        .map(|id| Record::Product(Box::new(variant(template, id, id))))
        .collect()
}

/// Real files on the build disk (not tmpfs), so fsync costs what it costs.
fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary directory")
}

fn populated(dir: &Path, template: &Product) -> Store {
    let store = Store::open(dir, StoreOptions::default()).expect("open");
    store
        .apply(catalog(template), ApplyMode::Upsert)
        .expect("import");
    store
}

fn benches(c: &mut Criterion) {
    let template = template();
    let dir = bench_dir();
    let store = populated(dir.path(), &template);
    let snap = store.snapshot();
    let payload: u64 = std::fs::read_dir(dir.path())
        .expect("listing")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum();
    println!(
        "catalog: {} products in {} shards, {:.1} MiB on disk ({} bytes/product)",
        snap.len(),
        snap.shard_count(),
        payload as f64 / (1 << 20) as f64,
        payload / PRODUCTS,
    );
    drop(snap);

    c.bench_function("snapshot/open_validate_100k", |b| {
        b.iter(|| {
            let s = Store::open(dir.path(), StoreOptions::default()).expect("open");
            black_box(s.snapshot().len())
        })
    });

    c.bench_function("snapshot/lookup_by_id", |b| {
        let s = store.snapshot();
        let mut id = 0u64;
        b.iter(|| {
            id = id % PRODUCTS + 7919;
            black_box(s.product(id % PRODUCTS + 1).is_some())
        })
    });

    let mut bytes = Vec::new();
    let mut round = 0u64;
    c.bench_function("store/apply_one_product_change_100k", |b| {
        b.iter(|| {
            round += 1;
            let change = variant(&template, 4242, 1000 + round);
            let report = store
                .apply(vec![Record::Product(Box::new(change))], ApplyMode::Upsert)
                .expect("apply");
            bytes.push(report.bytes_written);
            black_box(report.generation)
        })
    });
    bytes.sort_unstable();
    if let (Some(min), Some(max)) = (bytes.first(), bytes.last()) {
        println!(
            "one-product change: {min}..{max} bytes written per publish ({} publishes)",
            bytes.len()
        );
    }

    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PRODUCTS));
    group.bench_function("bulk_import_100k", |b| {
        b.iter_batched(
            || (bench_dir(), catalog(&template)),
            |(dir, records)| {
                let store = Store::open(dir.path(), StoreOptions::default()).expect("open");
                let report = store.apply(records, ApplyMode::Upsert).expect("import");
                black_box(report.bytes_written);
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = snapshot;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(snapshot);
