use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use super::*;
use crate::catalog::{
    round_money, CodeStandard, ComponentChoice, Decimal, Dictionaries, Price, Product, ProductType,
};
use crate::ingest::read_jsonl;

fn bytes(products: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    generate_to(&mut out, &GenerateOptions { products, seed }).expect("generate into memory");
    out
}

/// A generated catalog read back through the ERP reader.
struct Parsed {
    dict: Dictionaries,
    products: Vec<Product>,
    raw: String,
}

fn parsed(products: u64, seed: u64) -> Parsed {
    let raw = bytes(products, seed);
    let batch = read_jsonl("generated", Cursor::new(&raw)).expect("read back");
    let shown: Vec<String> = batch
        .rejected
        .iter()
        .take(5)
        .map(ToString::to_string)
        .collect();
    assert!(
        batch.rejected.is_empty(),
        "generated lines rejected: {shown:#?}"
    );
    let mut dict = Dictionaries::default();
    let mut out = Vec::new();
    for line in batch.records {
        match line.record {
            Record::Product(p) => out.push(*p),
            other => assert!(dict.upsert(&other), "unexpected {other:?}"),
        }
    }
    Parsed {
        dict,
        products: out,
        raw: String::from_utf8(raw).expect("UTF-8 output"),
    }
}

#[test]
fn same_options_give_identical_bytes_and_seeds_differ() {
    let a = bytes(300, 7);
    assert_eq!(a, bytes(300, 7));
    assert_ne!(a, bytes(300, 8));
}

#[test]
fn the_summary_counts_what_was_written() {
    let mut out = Vec::new();
    let s = generate_to(
        &mut out,
        &GenerateOptions {
            products: 40,
            seed: 3,
        },
    )
    .expect("generate");
    let lines = out.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(s.products, 40);
    assert_eq!(s.records, lines);
    assert_eq!(s.bytes, out.len() as u64);
    let dictionary_only = bytes(0, 3);
    assert!(
        out.starts_with(&dictionary_only),
        "dictionary records come first"
    );
}

#[test]
fn the_dictionary_is_complete_and_realistic() {
    let d = parsed(0, 1).dict;
    assert_eq!(d.shops.len(), 2);
    for shop in &d.shops {
        let ok = |s: &str, extra: &[char]| {
            !s.is_empty()
                && s.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c)
                })
        };
        assert!(ok(&shop.long_name, &[' ']), "{}", shop.long_name);
        assert!(ok(&shop.short_name, &[]), "{}", shop.short_name);
        assert_eq!(shop.address.country, "Polska");
        assert!(shop.address.zipcode.len() == 6 && shop.address.zipcode.as_bytes()[2] == b'-');
    }
    let warehouses: Vec<u32> = d.warehouses.iter().map(|w| w.id).collect();
    assert_eq!(warehouses, [0, 1, 2, 3]);

    // Three levels: every leaf's grandparent is a root.
    let parent: BTreeMap<u64, Option<u64>> =
        d.categories.iter().map(|c| (c.id, c.parent)).collect();
    let depth = |mut id: u64| {
        let mut n = 1;
        while let Some(Some(p)) = parent.get(&id) {
            id = *p;
            n += 1;
        }
        n
    };
    assert_eq!(d.categories.iter().map(|c| depth(c.id)).max(), Some(3));

    assert_eq!(d.producers.len(), 50);
    assert!(d.producers.iter().filter(|p| p.name.contains('&')).count() >= 5);
    let kg = d
        .units
        .iter()
        .find(|u| u.name["pol"] == "kg")
        .expect("kg unit");
    assert_eq!(kg.precision, 3);
    assert!(d
        .units
        .iter()
        .any(|u| u.name["pol"] == "szt." && u.name["eng"] == "pcs"));
    assert!(d.units.iter().any(|u| u.name["pol"] == "l"));
    assert!(!d.series.is_empty());
    assert!(d
        .warranties
        .iter()
        .any(|w| w.kind == crate::catalog::WarrantyType::Seller));
    assert!(d
        .warranties
        .iter()
        .any(|w| w.kind == crate::catalog::WarrantyType::Producer));

    let sizes = |name: &str| -> Vec<String> {
        let g = d
            .size_groups
            .iter()
            .find(|g| g.name == name)
            .expect("size group");
        g.sizes.iter().map(|s| s.name["pol"].clone()).collect()
    };
    assert_eq!(sizes("Odzież"), ["XS", "S", "M", "L", "XL", "XXL"]);
    assert_eq!(sizes("Obuwie").first().map(String::as_str), Some("36"));
    assert_eq!(sizes("Obuwie").last().map(String::as_str), Some("46"));
    assert!(d
        .size_groups
        .iter()
        .any(|g| g.sizes.iter().any(|s| s.id.parse::<u32>().is_err())));

    assert!(d
        .parameters
        .iter()
        .any(|p| p.kind == crate::catalog::ParameterKind::Section));
    assert!(d
        .parameters
        .iter()
        .any(|p| p.context.as_deref() == Some("CONTEXT_COLOR")));
}

/// Every context id the dictionary uses must be one the official schema knows.
#[test]
fn parameter_contexts_are_declared_in_the_iof_schema() {
    let xsd = include_str!("../../fixtures/iof/xsd/full.xsd");
    let d = parsed(0, 1).dict;
    let mut contexts = BTreeSet::new();
    for p in &d.parameters {
        contexts.extend(p.context.clone());
        contexts.extend(p.values.iter().filter_map(|v| v.context.clone()));
    }
    assert!(contexts.len() >= 10, "{contexts:?}");
    for c in contexts {
        assert!(
            xsd.contains(&format!("value=\"{c}\"")),
            "{c} is not in full.xsd"
        );
    }
}

fn gross_ok(p: &Price, vat: Decimal) -> bool {
    p.net.scale() == 2
        && p.gross == round_money(p.net * (Decimal::ONE + vat / Decimal::ONE_HUNDRED))
}

fn gtin_ok(code: &str) -> bool {
    code.len() == 13
        && code.bytes().all(|b| b.is_ascii_digit())
        && product::check_digit(&code[..12]) == u32::from(code.as_bytes()[12] - b'0')
}

#[test]
fn three_thousand_products_are_valid_and_varied() {
    let Parsed {
        dict,
        products,
        raw,
    } = parsed(3_000, 42);
    assert_eq!(products.len(), 3_000);
    let by_id: BTreeMap<u64, &Product> = products.iter().map(|p| (p.id, p)).collect();
    let ids = |list: &[u64]| list.iter().copied().collect::<BTreeSet<u64>>();
    let categories = ids(&dict.categories.iter().map(|c| c.id).collect::<Vec<_>>());
    let producers = ids(&dict.producers.iter().map(|c| c.id).collect::<Vec<_>>());
    let units = ids(&dict.units.iter().map(|c| c.id).collect::<Vec<_>>());
    let series = ids(&dict.series.iter().map(|c| c.id).collect::<Vec<_>>());
    let warranties = ids(&dict.warranties.iter().map(|c| c.id).collect::<Vec<_>>());
    let values: BTreeMap<u64, BTreeSet<u64>> = dict
        .parameters
        .iter()
        .map(|p| (p.id, p.values.iter().map(|v| v.id).collect()))
        .collect();

    let mut kinds = BTreeMap::new();
    let mut vats = BTreeSet::new();
    let mut groups: BTreeMap<u64, Vec<&Product>> = BTreeMap::new();
    let (mut one_size_implicit, mut one_size_explicit, mut multi_size) = (0, 0, 0);
    let (mut zero, mut unlimited, mut fractional) = (0, 0, 0);
    let (mut only_shop_2, mut promotions, mut attachments, mut restricted) = (0, 0, 0, 0);
    for p in &products {
        *kinds.entry(format!("{:?}", p.kind)).or_insert(0) += 1;
        vats.insert(p.vat.to_string());
        assert!(categories.contains(&p.category.expect("category")));
        assert!(units.contains(&p.unit.expect("unit")));
        assert!(p.producer.is_none_or(|x| producers.contains(&x)));
        assert!(p.series.is_none_or(|x| series.contains(&x)));
        assert!(p.warranty.is_none_or(|x| warranties.contains(&x)));
        let unit = dict
            .units
            .iter()
            .find(|u| Some(u.id) == p.unit)
            .expect("unit");

        // Prices: gross = net × (1 + vat), two places, everywhere.
        let prices = [&p.prices]
            .into_iter()
            .chain(p.sizes.iter().map(|s| &s.prices));
        for ps in prices {
            for price in [&ps.retail, &ps.wholesale, &ps.srp, &ps.strikethrough_retail]
                .into_iter()
                .flatten()
            {
                assert!(gross_ok(price, p.vat), "product {}: {price:?}", p.id);
            }
        }
        assert!(p.prices.retail.is_some());
        if let Some(promo) = &p.promotion {
            promotions += 1;
            assert!(gross_ok(&promo.price, p.vat));
            assert!(promo
                .start_date
                .as_deref()
                .is_some_and(|d| !d.contains(' ')));
        }

        // Sizes and stock.
        match (p.size_group, p.sizes.as_slice()) {
            (None, [only]) if only.id == "uniw" && only.code_producer.is_none() => {
                one_size_implicit += 1
            }
            (None, [only]) if only.id == "uniw" => one_size_explicit += 1,
            (Some(g), sizes) if sizes.len() >= 2 => {
                multi_size += 1;
                let group = dict.size_groups.iter().find(|x| x.id == g).expect("group");
                assert!(sizes
                    .iter()
                    .all(|s| group.sizes.iter().any(|d| d.id == s.id)));
            }
            other => panic!("product {}: unexpected sizes {other:?}", p.id),
        }
        for size in &p.sizes {
            match p.producer_code_standard {
                CodeStandard::Gtin13 => {
                    let code = size.code_producer.as_deref().expect("EAN");
                    assert!(code.starts_with("590") && gtin_ok(code), "{code}");
                }
                CodeStandard::Isbn13 => {
                    let code = size.code_producer.as_deref().expect("ISBN");
                    assert!(code.starts_with("978") && gtin_ok(code), "{code}");
                }
                _ => {}
            }
            for s in &size.stock {
                assert!(s.warehouse <= 3);
                if s.quantity.is_zero() {
                    zero += 1;
                } else if s.quantity == Decimal::NEGATIVE_ONE {
                    unlimited += 1;
                } else if !s.quantity.fract().is_zero() {
                    fractional += 1;
                    assert_eq!(unit.precision, 3, "fractional stock in {:?}", unit.name);
                }
            }
        }
        if p.shops == [2] {
            only_shop_2 += 1;
        }
        assert!((1..=6).contains(&p.images.len()));
        assert!(
            p.card_url.as_deref().is_none_or(|u| !u.contains("-.html")),
            "{:?}",
            p.card_url
        );
        assert!(p.icons.icon.is_some());
        if !p.attachments.is_empty() {
            attachments += 1;
        }
        for param in &p.parameters {
            let known = values.get(&param.id).expect("parameter in dictionary");
            assert!(param.values.iter().all(|v| known.contains(v)));
        }
        if let Some(g) = &p.group {
            groups.entry(g.id).or_default().push(p);
        }
        if let Some(b) = &p.bundled {
            assert!(!b.components.is_empty());
            for c in &b.components {
                assert!(c.id < p.id, "component {} of {} is not earlier", c.id, p.id);
                let component = by_id[&c.id];
                assert_eq!(component.kind, ProductType::Regular);
                assert!(component.shops.is_empty());
                if !c.sizes.is_empty() {
                    restricted += 1;
                    assert_eq!(c.choice, ComponentChoice::ClientChoosesDefinedSize);
                    for s in &c.sizes {
                        assert!(component.sizes.iter().any(|x| &x.id == s), "{s}");
                    }
                }
            }
        }
    }

    for kind in [
        "Regular",
        "Bundle",
        "Collection",
        "Packaging",
        "Virtual",
        "Service",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {kinds:?}"
        );
    }
    assert!(kinds["Regular"] > 2_400, "{kinds:?}");
    assert_eq!(vats, ["0", "23", "5", "8"].map(String::from).into());
    assert!(one_size_implicit > 50 && one_size_explicit > 50 && multi_size > 300);
    assert!(zero > 100 && unlimited > 100 && fractional > 50);
    assert!(only_shop_2 > 50 && promotions > 20 && attachments > 50 && restricted > 5);

    assert!(groups.len() > 50);
    for (id, members) in &groups {
        assert!(members.len() >= 2, "group {id} has one member");
        let first = members[0].group.as_ref().map(|g| g.first_product_id);
        assert!(members.iter().any(|m| Some(m.id) == first));
        let colours: BTreeSet<&String> = members
            .iter()
            .filter_map(|m| m.group.as_ref())
            .map(|g| &g.value_id)
            .collect();
        assert_eq!(colours.len(), members.len(), "group {id} repeats a colour");
        assert!(members.iter().all(|m| m.category == members[0].category));
    }

    // Texts that exercise escaping and encodings downstream.
    for needle in [
        "ą", "ć", "ę", "ł", "ń", "ó", "ś", "ź", "ż", "&", "<", ">", "\\\"", "]]>",
    ] {
        assert!(raw.contains(needle), "no {needle:?} anywhere");
    }
    let names: Vec<&String> = products
        .iter()
        .flat_map(|p| p.description.name.values())
        .collect();
    for special in ['&', '<', '"'] {
        assert!(
            names.iter().any(|n| n.contains(special)),
            "no name with {special}"
        );
    }
    assert!(products
        .iter()
        .all(|p| p.description.name.contains_key("pol")));
    assert!(
        products
            .iter()
            .filter(|p| p.description.name.contains_key("eng"))
            .count()
            > 2_900
    );
}

#[test]
fn generate_publishes_the_file_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("nested/demo");
    let opts = GenerateOptions {
        products: 25,
        seed: 9,
    };
    let summary = generate(&opts, &out).expect("generate");
    let written = fs::read(out.join(CATALOG_FILE)).expect("read");
    assert_eq!(written, bytes(25, 9));
    assert_eq!(summary.bytes, written.len() as u64);
    let names: Vec<_> = fs::read_dir(&out)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, [CATALOG_FILE], "no temporary file is left behind");
}

#[test]
fn generate_reports_the_path_it_could_not_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, b"x").expect("write");
    let err = generate(
        &GenerateOptions {
            products: 1,
            seed: 1,
        },
        &blocker,
    )
    .unwrap_err();
    assert!(
        matches!(&err, GenerateError::File { path, .. } if path == &blocker),
        "{err}"
    );
    assert!(err.to_string().starts_with(&blocker.display().to_string()));
}

struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("pipe closed"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_is_an_error() {
    let err = generate_to(
        &mut Broken,
        &GenerateOptions {
            products: 5,
            seed: 1,
        },
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "cannot write the catalog: pipe closed");
}
