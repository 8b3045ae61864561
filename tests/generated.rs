//! Catalogs the generator makes with other seeds render to schema-valid files, for profiles
//! that exercise every setting.

use std::str::FromStr;

use iofd::catalog::{Decimal, Format, RenderProfile};
use iofd::render::{self, DictIndex, OfferMeta, ReferenceKind, ReferenceMeta};
use iofd::store::{ApplyMode, Store, StoreOptions};
use iofd::xsd::{self, Schema};

fn profiles() -> Vec<RenderProfile> {
    let base = RenderProfile {
        shop: 1,
        format: Format::Iof30,
        gzip: false,
        languages: vec!["pol".into(), "eng".into()],
        currency: "PLN".into(),
        rate: Decimal::ONE,
        discount_percent: Decimal::ZERO,
        wholesale: false,
        only_in_stock: false,
        rules: Default::default(),
    };
    let other = RenderProfile {
        shop: 2,
        languages: vec!["eng".into()],
        currency: "EUR".into(),
        rate: Decimal::from_str("0.2315").unwrap(),
        discount_percent: Decimal::from_str("12.5").unwrap(),
        wholesale: true,
        only_in_stock: true,
        ..base.clone()
    };
    vec![base, other]
}

fn check(schema: Schema, what: &str, bytes: &[u8]) {
    if let Err(e) = xsd::validate(schema, bytes) {
        panic!("{what}: {e}");
    }
}

#[test]
fn generated_catalogs_of_several_seeds_validate() {
    for seed in [7u64, 20261122] {
        let mut jsonl = Vec::new();
        iofd::generate::generate_to(
            &mut jsonl,
            &iofd::generate::GenerateOptions {
                products: 300,
                seed,
            },
        )
        .unwrap();
        let batch = iofd::ingest::read_jsonl("generated.jsonl", jsonl.as_slice()).unwrap();
        assert!(
            batch.rejected.is_empty(),
            "seed {seed}: {:?}",
            batch.rejected.first().map(|r| r.to_string())
        );
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                products_per_shard: 64,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        store
            .apply(
                batch.records.into_iter().map(|l| l.record).collect(),
                ApplyMode::FullSync,
            )
            .unwrap();
        let snapshot = store.snapshot();
        assert!(snapshot.len() >= 300);
        let dicts = DictIndex::new(snapshot.dicts());
        let when = jiff::civil::date(2026, 11, 22).at(3, 0, 0, 0);
        let meta = OfferMeta {
            generated: when,
            expires: when,
        };
        for profile in profiles() {
            let what = format!("seed {seed} shop {} {}", profile.shop, profile.currency);
            let mut full = Vec::new();
            render::full(&mut full, &profile, &dicts, &meta, snapshot.products()).unwrap();
            check(Schema::Full, &format!("{what} full.xml"), &full);
            let mut light = Vec::new();
            render::light(&mut light, &profile, &dicts, &meta, snapshot.products()).unwrap();
            check(Schema::Light, &format!("{what} light.xml"), &light);
            for kind in ReferenceKind::ALL {
                let mut out = Vec::new();
                render::write_reference(
                    &mut out,
                    kind,
                    snapshot.dicts(),
                    &profile.languages,
                    &ReferenceMeta {
                        generated: when,
                        expires: when,
                    },
                )
                .unwrap();
                check(
                    Schema::for_kind(kind.name()).unwrap(),
                    &format!("{what} {}", kind.name()),
                    &out,
                );
            }
        }
    }
}
