//! Throughput of the hot-path writers: full.xml and light.xml for ~20k products built from
//! the sample catalog's templates with varied ids, rendered into a reused in-memory buffer.
//!
//! `cargo bench --bench render` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rust_decimal::Decimal;

use iofd::catalog::sample::{sample_dictionaries, sample_products};
use iofd::catalog::{ArchivedDictionaries, ArchivedProduct, Product};
use iofd::catalog::{Format, RenderProfile};
use iofd::render::{full, light, DictIndex, OfferMeta};

const PRODUCTS: usize = 20_000;

/// Copies of the sample products with fresh ids (and the codes and names that carry them),
/// visible in every shop so the whole set is rendered.
fn catalog() -> Vec<Product> {
    let templates = sample_products();
    (0..PRODUCTS)
        .map(|i| {
            let mut p = templates[i % templates.len()].clone();
            let id = 100_000 + i as u64;
            p.id = id;
            p.shops.clear();
            p.code = Some(format!("SKU-{id}"));
            for size in &mut p.sizes {
                size.code = format!("{id}-{}", size.id);
            }
            for name in p.description.name.values_mut() {
                name.push_str(&format!(" #{id}"));
            }
            if let Some(g) = &mut p.group {
                g.first_product_id = 100_000 + (i as u64 / 2) * 2;
            }
            p
        })
        .collect()
}

fn profile(wholesale: bool) -> RenderProfile {
    RenderProfile {
        shop: 1,
        format: Format::Iof30,
        gzip: false,
        languages: vec!["pol".into(), "eng".into()],
        currency: "EUR".into(),
        rate: Decimal::new(2345, 4),
        discount_percent: Decimal::new(10, 0),
        wholesale,
        only_in_stock: false,
        rules: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let dicts_bytes =
        rkyv::to_bytes::<rkyv::rancor::Error>(&sample_dictionaries()).expect("archive");
    let products_bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&catalog()).expect("archive");
    let dicts =
        rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&dicts_bytes).expect("access");
    let products = rkyv::access::<rkyv::vec::ArchivedVec<ArchivedProduct>, rkyv::rancor::Error>(
        &products_bytes,
    )
    .expect("access");
    let index = DictIndex::new(dicts);
    let meta = OfferMeta {
        generated: jiff::civil::date(2026, 11, 22).at(10, 30, 0, 0),
        expires: jiff::civil::date(2026, 11, 23).at(10, 30, 0, 0),
    };

    let mut group = c.benchmark_group("render");
    for (name, wholesale) in [("retail", false), ("wholesale", true)] {
        let profile = profile(wholesale);
        let mut out = Vec::new();
        full(&mut out, &profile, &index, &meta, products.iter()).expect("render");
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_function(format!("full_xml_{name}_{PRODUCTS}"), |b| {
            b.iter(|| {
                out.clear();
                full(&mut out, &profile, &index, &meta, products.iter()).expect("render");
                black_box(out.len())
            })
        });

        let mut out = Vec::new();
        light(&mut out, &profile, &index, &meta, products.iter()).expect("render");
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_function(format!("light_xml_{name}_{PRODUCTS}"), |b| {
            b.iter(|| {
                out.clear();
                light(&mut out, &profile, &index, &meta, products.iter()).expect("render");
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
