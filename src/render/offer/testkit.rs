//! Sample catalog and profiles shared by the offer writers' tests.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::{full, light, OfferMeta};
use crate::catalog::sample::{sample_dictionaries, sample_products};
use crate::catalog::{ArchivedDictionaries, ArchivedProduct};
use crate::catalog::{Format, RenderProfile};
use crate::render::DictIndex;
pub(super) type Products = rkyv::vec::ArchivedVec<ArchivedProduct>;

pub(super) struct Fixture {
    dicts: rkyv::util::AlignedVec,
    products: rkyv::util::AlignedVec,
}

impl Fixture {
    pub(super) fn new() -> Self {
        Self::of(&sample_dictionaries(), &sample_products())
    }

    pub(super) fn of(
        dicts: &crate::catalog::Dictionaries,
        products: &[crate::catalog::Product],
    ) -> Self {
        Fixture {
            dicts: rkyv::to_bytes::<rkyv::rancor::Error>(dicts).expect("archive dictionaries"),
            products: rkyv::to_bytes::<rkyv::rancor::Error>(&products.to_vec())
                .expect("archive products"),
        }
    }

    pub(super) fn dicts(&self) -> &ArchivedDictionaries {
        rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&self.dicts)
            .expect("dictionaries")
    }

    pub(super) fn products(&self) -> &Products {
        rkyv::access::<Products, rkyv::rancor::Error>(&self.products).expect("products")
    }

    pub(super) fn product(&self, id: u64) -> &ArchivedProduct {
        self.products()
            .iter()
            .find(|p| p.id.to_native() == id)
            .expect("sample product")
    }
}

pub(super) fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

/// Retail, shop 1, Polish then English, PLN at rate 1, no filters.
pub(super) fn retail_pl() -> RenderProfile {
    RenderProfile {
        shop: 1,
        format: Format::Iof30,
        gzip: false,
        languages: vec!["pol".into(), "eng".into()],
        currency: "PLN".into(),
        rate: Decimal::ONE,
        discount_percent: dec("5"),
        wholesale: false,
        only_in_stock: false,
        rules: Default::default(),
    }
}

/// Wholesale, shop 2, English only, EUR at 0.25, 10 % off light, only in stock.
pub(super) fn wholesale_eur() -> RenderProfile {
    RenderProfile {
        shop: 2,
        format: Format::Iof30,
        gzip: true,
        languages: vec!["eng".into()],
        currency: "EUR".into(),
        rate: dec("0.25"),
        discount_percent: dec("10"),
        wholesale: true,
        only_in_stock: true,
        rules: Default::default(),
    }
}

pub(super) fn meta() -> OfferMeta {
    OfferMeta {
        generated: jiff::civil::date(2026, 11, 22).at(10, 30, 0, 0),
        expires: jiff::civil::date(2026, 11, 23).at(10, 30, 0, 0),
    }
}

pub(super) fn render_full(f: &Fixture, profile: &RenderProfile) -> String {
    let dicts = DictIndex::new(f.dicts());
    let mut out = Vec::new();
    full(&mut out, profile, &dicts, &meta(), f.products().iter()).expect("render");
    String::from_utf8(out).expect("utf-8")
}

pub(super) fn render_light(f: &Fixture, profile: &RenderProfile) -> String {
    let dicts = DictIndex::new(f.dicts());
    let mut out = Vec::new();
    light(&mut out, profile, &dicts, &meta(), f.products().iter()).expect("render");
    String::from_utf8(out).expect("utf-8")
}

/// The text of `<product id="id" ...>` through its closing tag.
pub(super) fn product_xml(doc: &str, id: u64) -> &str {
    let start = doc
        .find(&format!("<product id=\"{id}\""))
        .unwrap_or_else(|| panic!("product {id} missing"));
    // Bundle components are `<product>` too, but deeper: the product ends at depth 1.
    let end = doc[start..].find("\n\t</product>\n").expect("closed") + start + 1;
    &doc[start..end]
}

pub(super) fn ids(doc: &str) -> Vec<u64> {
    doc.match_indices("\n\t<product id=\"")
        .map(|(i, m)| {
            let rest = &doc[i + m.len()..];
            rest[..rest.find('"').expect("quote")].parse().expect("id")
        })
        .collect()
}

pub(super) fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "missing {needle:?} in:\n{haystack}"
    );
}
