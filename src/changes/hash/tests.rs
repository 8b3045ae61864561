//! Tests of the node hashes: one edit changes one node, encodings are exact, and the
//! hashes of the sample catalog are pinned.

use rust_decimal::Decimal;

use super::enc::Enc;
use super::*;
use crate::catalog::rules::flat;
use crate::catalog::sample::{sample_dictionaries, sample_products};
use crate::catalog::Format;
use crate::catalog::{self, ArchivedDictionaries};
use crate::catalog::{Dictionaries, Product};

fn archive<T>(value: &T) -> rkyv::util::AlignedVec
where
    T: for<'a> rkyv::Serialize<
        rkyv::api::high::HighSerializer<
            rkyv::util::AlignedVec,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rkyv::rancor::Error,
        >,
    >,
{
    rkyv::to_bytes::<rkyv::rancor::Error>(value).unwrap()
}

fn hashes(p: &Product) -> ProductHashes {
    let bytes = archive(p);
    let a = rkyv::access::<ArchivedProduct, rkyv::rancor::Error>(&bytes).unwrap();
    hash_product(a, &mut Vec::new())
}

fn dict_hashes(d: &Dictionaries) -> DictHashes {
    let bytes = archive(d);
    let a = rkyv::access::<ArchivedDictionaries, rkyv::rancor::Error>(&bytes).unwrap();
    DictHashes::new(a).unwrap()
}

fn changed(a: &[NodeHash; NODES], b: &[NodeHash; NODES]) -> Vec<MainNode> {
    MainNode::ALL
        .into_iter()
        .filter(|n| a[index(*n)] != b[index(*n)])
        .collect()
}

fn hex(h: &NodeHash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Membership, references and every node hash (own and effective) of the sample products.
fn golden_lines() -> Vec<String> {
    let dicts = dict_hashes(&sample_dictionaries());
    let mut lines = Vec::new();
    for p in sample_products() {
        let h = hashes(&p);
        let effective = dicts.effective(&h);
        // The membership as it read before partner rules added facts to it (they are not
        // hashes), so the digest still pins every hash.
        let m = &h.membership;
        lines.push(format!(
            "{} Membership {{ in_stock: {:?}, shops: {:?} }} {:?}",
            p.id, m.in_stock, m.shops, h.refs
        ));
        for n in MainNode::ALL {
            let (own, eff) = (&h.own[index(n)], &effective[index(n)]);
            if *own != ABSENT || *eff != ABSENT {
                lines.push(format!("{} {} {} {}", p.id, n.name(), hex(own), hex(eff)));
            }
        }
    }
    lines
}

/// The hashes are persisted (hash store, change log): a refactor of the encoding that
/// changes a single byte would make every product look changed after an upgrade.
#[test]
fn hashes_of_the_sample_catalog_are_pinned() {
    let lines = golden_lines();
    let digest = hex(&hash16(lines.join("\n").as_bytes()));
    // Two lines in clear, so a failure shows which kind of node moved.
    for pinned in [
        "1001 sizes cef7bbfc51a4e6f89e27347f880bf8fb 2300e702b78aa95b8e15c22fb8d69fb7",
        "1004 bundled a3fa6479fe1fd711eef737b6a0fadf39 a3fa6479fe1fd711eef737b6a0fadf39",
    ] {
        assert!(lines.iter().any(|l| l == pinned), "{pinned}");
    }
    assert_eq!(
        (lines.len(), digest.as_str()),
        (76, "bf73fbe8ed957bf53e68e4a937587a15"),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn node_indices_follow_the_declaration_order() {
    for (i, n) in MainNode::ALL.into_iter().enumerate() {
        assert_eq!(index(n), i);
    }
}

#[test]
fn each_edit_changes_exactly_its_node() {
    let base = sample_products().into_iter().next().unwrap();
    let h0 = hashes(&base).own;
    type Edit = Box<dyn Fn(&mut Product)>;
    let cases: Vec<(MainNode, Edit)> = vec![
        (MainNode::Attributes, Box::new(|p| p.vat += Decimal::ONE)),
        (MainNode::Producer, Box::new(|p| p.producer = Some(999))),
        (MainNode::Category, Box::new(|p| p.category = Some(999))),
        (
            MainNode::Description,
            Box::new(|p| {
                p.description.long_desc.insert("ger".into(), "Neu".into());
            }),
        ),
        (
            MainNode::Sizes,
            Box::new(|p| p.sizes[0].stock[0].quantity += Decimal::ONE),
        ),
        (
            MainNode::Images,
            Box::new(|p| {
                p.images.pop();
            }),
        ),
        (
            MainNode::Card,
            Box::new(|p| p.card_url = Some("https://x.example/p".into())),
        ),
    ];
    for (node, edit) in cases {
        let mut p = base.clone();
        edit(&mut p);
        let h = hashes(&p).own;
        assert_eq!(changed(&h0, &h), vec![node], "edit of {node:?}");
    }
    // A product price is inherited by sizes: both nodes change as rendered.
    let mut p = base.clone();
    p.prices.strikethrough_wholesale = Some(catalog::Price {
        net: Decimal::ONE,
        gross: Decimal::TWO,
    });
    let d = DictHashes::default();
    assert_eq!(
        changed(&d.effective(&hashes(&base)), &d.effective(&hashes(&p))),
        vec![MainNode::StrikethroughWholesale, MainNode::Sizes]
    );
    // Shops are membership, not a node.
    let mut p = base.clone();
    p.shops = vec![7];
    let h = hashes(&p);
    assert_eq!(h.own, h0);
    assert_eq!(h.membership.shops, vec![7]);
}

#[test]
fn equal_values_at_other_scales_hash_alike() {
    let base = sample_products().into_iter().next().unwrap();
    let mut p = base.clone();
    p.vat = p.vat.round_dp(0);
    p.vat.rescale(4);
    assert_eq!(hashes(&p).own, hashes(&base).own);
}

#[test]
fn decimal_encoding_is_exact() {
    let enc = |d: Decimal| {
        let mut buf = Vec::new();
        Enc(&mut buf).dec(d);
        buf
    };
    let values = [
        "0",
        "1",
        "-1",
        "127",
        "128",
        "-128",
        "-129",
        "255",
        "256",
        "57.19",
        "-57.19",
        "0.5",
        "5",
        "50",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
    ];
    let mut seen = std::collections::HashSet::new();
    for v in values {
        let d: Decimal = v.parse().unwrap();
        assert!(seen.insert(enc(d)), "{v} collides");
        let mut rescaled = d;
        rescaled.rescale(6);
        assert_eq!(enc(rescaled), enc(d), "{v} at another scale");
    }
    assert_eq!(enc("57.19".parse().unwrap()), vec![2, 2, 0x57, 0x16]);
}

#[test]
fn short_encodings_are_kept_verbatim() {
    assert_eq!(node_hash(&[]), {
        let mut h = [0u8; 16];
        h[0] = 0x80;
        h
    });
    assert_ne!(node_hash(&[0]), node_hash(&[0, 0]));
    assert_ne!(node_hash(&[1; 15]), node_hash(&[1; 16]));
    assert_eq!(node_hash(&[9; 16]), hash16(&[9; 16]));
}

#[test]
fn absent_nodes_hash_as_absent() {
    let mut p = sample_products().into_iter().next().unwrap();
    p.producer = None;
    p.promotion = None;
    p.bundled = None;
    let h = hashes(&p).own;
    for n in [MainNode::Producer, MainNode::Promotion, MainNode::Bundled] {
        assert_eq!(h[index(n)], ABSENT, "{n:?}");
    }
    assert_ne!(h[index(MainNode::Attributes)], ABSENT);
}

#[test]
fn a_renamed_producer_changes_only_its_products_producer_node() {
    let dicts = sample_dictionaries();
    let p = sample_products()
        .into_iter()
        .find(|p| p.producer.is_some() && p.category.is_some())
        .unwrap();
    let h = hashes(&p);
    let before = dict_hashes(&dicts);
    let mut renamed = dicts.clone();
    let producer = renamed
        .producers
        .iter_mut()
        .find(|x| Some(x.id) == p.producer)
        .unwrap();
    producer.name.push_str(" Renamed");
    let after = dict_hashes(&renamed);
    let diff = after.changed_since(&before);
    assert_eq!(diff.producers.len(), 1);
    assert!(diff.touches(&h.refs));
    assert_eq!(
        changed(&before.effective(&h), &after.effective(&h)),
        vec![MainNode::Producer]
    );
    // Renaming a category's parent changes the path, hence the category node.
    let parent = dicts
        .categories
        .iter()
        .find(|c| Some(c.id) == p.category)
        .and_then(|c| c.parent);
    if let Some(parent) = parent {
        let mut moved = dicts.clone();
        let c = moved
            .categories
            .iter_mut()
            .find(|c| c.id == parent)
            .unwrap();
        c.name.insert("pol".into(), "Inna".into());
        let after = dict_hashes(&moved);
        assert_eq!(
            changed(&before.effective(&h), &after.effective(&h)),
            vec![MainNode::Category]
        );
    }
    // Unrelated dictionaries (warehouses) change nothing a product shows.
    let mut other = dicts.clone();
    other.warehouses.clear();
    assert!(dict_hashes(&other).changed_since(&before).is_empty());
}

#[test]
fn encodings_round_trip_and_reject_garbage() {
    let hs: Vec<ProductHashes> = sample_products().iter().map(hashes).collect();
    let mut buf = Vec::new();
    encode_products(&hs, &mut buf);
    assert_eq!(decode_products(&buf).unwrap(), hs);
    assert!(decode_products(&buf[..buf.len() - 1]).is_none());
    let mut longer = buf.clone();
    longer.push(0);
    assert!(decode_products(&longer).is_none());

    let d = dict_hashes(&sample_dictionaries());
    let mut buf = Vec::new();
    d.encode(&mut buf);
    assert_eq!(DictHashes::decode(&buf).unwrap(), d);
    assert!(DictHashes::decode(&buf[..buf.len() - 3]).is_none());
}

#[test]
fn membership_agrees_with_the_renderer() {
    let profile = |shop, only_in_stock| RenderProfile {
        rules: Default::default(),
        shop,
        format: Format::Iof30,
        gzip: false,
        languages: vec!["pol".into()],
        currency: "PLN".into(),
        rate: Decimal::ONE,
        discount_percent: Decimal::ZERO,
        wholesale: false,
        only_in_stock,
    };
    let mut products = sample_products();
    products[0].shops = vec![2];
    for s in products[1].sizes.iter_mut() {
        for l in s.stock.iter_mut() {
            l.quantity = Decimal::ZERO;
        }
    }
    for p in &products {
        let bytes = archive(p);
        let a = rkyv::access::<ArchivedProduct, rkyv::rancor::Error>(&bytes).unwrap();
        let m = Membership::of(a);
        assert_eq!(hash_product(a, &mut Vec::new()).membership, m);
        for shop in [1, 2] {
            for only in [false, true] {
                let mut pr = profile(shop, only);
                assert_eq!(
                    m.includes(p.id, &pr, &flat),
                    pr.includes(a, &flat),
                    "product {}",
                    p.id
                );
                // Stock rules read the levels the membership keeps.
                pr.rules.stock.warehouses = vec![1];
                pr.rules.stock.reserve = Some(Decimal::ONE);
                pr.rules.assortment.min_stock = Some(Decimal::TWO);
                assert_eq!(
                    m.includes(p.id, &pr, &flat),
                    pr.includes(a, &flat),
                    "product {}",
                    p.id
                );
            }
        }
    }
}

#[test]
fn memberships_round_trip_and_earlier_ones_decode_without_facts() {
    let m = Membership {
        in_stock: true,
        shops: vec![1, 3],
        producer: Some(16),
        category: None,
        levels: vec![(1, Decimal::new(-1, 0)), (2, Decimal::new(125, 1))],
        facts: true,
    };
    let mut bytes = Vec::new();
    encode_membership(&m, &mut bytes);
    assert_eq!(decode_membership(&mut bytes.as_slice()), Some(m.clone()));
    // As an earlier version wrote it: in stock, two shops, nothing more.
    let old = [1u8, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0];
    let read = decode_membership(&mut &old[..]).unwrap();
    assert!(!read.facts && read.in_stock && read.shops == [1, 3]);
    let mut again = Vec::new();
    encode_membership(&read, &mut again);
    assert_eq!(again, old, "written back as it was read");
    assert_eq!(
        decode_membership(&mut &[4u8][..]),
        None,
        "unknown flags are damage"
    );
}
