//! Change files from the outside: the merge invariant as a property over random catalogs and
//! edit sequences, and a real server cutting short windows.

mod common;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::*;
use iofd::artifacts::{Artifacts, FullFiles};
use iofd::catalog::rules::{Assortment, PriceRule, StockRule};
use iofd::catalog::sample::{sample_dictionaries, sample_products};
use iofd::catalog::{
    Attachment, Bundled, BundledComponent, Decimal, Dictionaries, Group, Image, Price, Product,
    ProductParameter, Promotion, Record,
};
use iofd::catalog::{Format, RenderProfile, Rules};
use iofd::changes::{Changes, ChangesOptions};
use iofd::clock::Clock;
use iofd::config::Config;
use iofd::publish::{Cycle, PublishError};
use iofd::render::{self, DictIndex, OfferMeta};
use iofd::store::{ApplyMode, Store, StoreOptions};
use iofd::xsd::{self, Schema};
use jiff::Timestamp;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Reading offers as a consumer does

/// A `<product>` as a consumer keeps it: attributes and each direct child's bytes by name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    attrs: BTreeMap<String, String>,
    children: BTreeMap<String, String>,
}

/// The products of a full.xml or change file in document order; `None` for `removed="yes"`.
fn read_products(xml: &[u8]) -> Vec<(u64, Option<Node>)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current: Option<(u64, Node, bool)> = None;
    let mut child_start = 0usize;
    let mut child_name = String::new();
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().expect("well-formed XML");
        let after = reader.buffer_position() as usize;
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if depth == 2 => {
                let empty = after > 1 && xml[after - 2] == b'/';
                let mut attrs = BTreeMap::new();
                let mut removed = false;
                for a in e.attributes() {
                    let a = a.expect("attribute");
                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                    let value = a.unescape_value().expect("value").into_owned();
                    if key == "removed" {
                        removed = value == "yes";
                    } else {
                        attrs.insert(key, value);
                    }
                }
                let id = attrs["id"].parse().expect("numeric id");
                let node = Node {
                    attrs,
                    children: BTreeMap::new(),
                };
                if empty {
                    out.push((id, (!removed).then_some(node)));
                } else {
                    current = Some((id, node, removed));
                    depth += 1;
                }
            }
            Event::Start(e) => {
                if depth == 3 {
                    child_start = before;
                    child_name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                }
                depth += 1;
            }
            Event::Empty(e) if depth == 3 => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let bytes = String::from_utf8(xml[before..after].to_vec()).unwrap();
                current.as_mut().unwrap().1.children.insert(name, bytes);
            }
            Event::End(_) => {
                depth -= 1;
                if depth == 3 {
                    let bytes = String::from_utf8(xml[child_start..after].to_vec()).unwrap();
                    let name = std::mem::take(&mut child_name);
                    current.as_mut().unwrap().1.children.insert(name, bytes);
                } else if depth == 2 {
                    let (id, node, removed) = current.take().unwrap();
                    out.push((id, (!removed).then_some(node)));
                }
            }
            _ => {}
        }
    }
    out
}

fn offer_map(xml: &[u8]) -> BTreeMap<u64, Node> {
    read_products(xml)
        .into_iter()
        .map(|(id, n)| (id, n.expect("full.xml has no removed products")))
        .collect()
}

/// Apply one change file the documented way, in document order.
fn apply_change(offer: &mut BTreeMap<u64, Node>, xml: &[u8]) {
    for (id, node) in read_products(xml) {
        match node {
            None => {
                offer.remove(&id);
            }
            Some(node) => match offer.get_mut(&id) {
                Some(kept) => {
                    kept.attrs = node.attrs;
                    kept.children.extend(node.children);
                }
                None => {
                    offer.insert(id, node);
                }
            },
        }
    }
}

/// What a consumer holds after the base and every listed change file newer than it.
fn consumer_view(changes: &Stages, profile: &RenderProfile) -> BTreeMap<u64, Node> {
    let files = changes.full_files(profile).expect("the profile has a base");
    let mut offer = offer_map(&std::fs::read(&files.base.path).unwrap());
    for change in files.changes.iter().rev() {
        if change.changed > files.base.changed {
            apply_change(&mut offer, &std::fs::read(&change.path).unwrap());
        }
    }
    offer
}

fn current_full(store: &Store, profile: &RenderProfile) -> BTreeMap<u64, Node> {
    let snapshot = store.snapshot();
    let dicts = DictIndex::new(snapshot.dicts());
    let t = jiff::civil::date(2030, 1, 1).at(0, 0, 0, 0);
    let meta = OfferMeta {
        generated: t,
        expires: t,
    };
    let mut out = Vec::new();
    render::full(&mut out, profile, &dicts, &meta, snapshot.products()).unwrap();
    offer_map(&out)
}

// ---------------------------------------------------------------------------------------
// The property

fn dict_records(d: &Dictionaries) -> Vec<Record> {
    d.clone().into_records()
}

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
    vec![
        base.clone(),
        RenderProfile {
            shop: 2,
            languages: vec!["eng".into()],
            currency: "EUR".into(),
            rate: Decimal::from_str("0.2315").unwrap(),
            wholesale: true,
            only_in_stock: true,
            ..base.clone()
        },
        RenderProfile {
            only_in_stock: true,
            languages: vec!["ger".into()],
            ..base
        },
    ]
}

fn price(net: i64) -> Price {
    Price {
        net: Decimal::new(net, 2),
        gross: Decimal::new(net * 123 / 100, 2),
    }
}

/// One edit of one main node (or of membership), chosen by `how`; an edit the store would
/// refuse (components on a regular product, say) is not made.
fn mutate(p: &mut Product, what: u8, how: u8) {
    let before = p.clone();
    edit(p, what, how);
    if p.normalize().is_err() {
        *p = before;
    }
}

fn edit(p: &mut Product, what: u8, how: u8) {
    let h = u64::from(how);
    match what % 17 {
        0 => p.vat = [23, 8, 5, 0][how as usize % 4].into(),
        1 => p.code = (how % 3 != 0).then(|| format!("C-{how}")),
        2 => p.producer = [None, Some(1), Some(2), Some(999)][how as usize % 4],
        3 => p.category = [None, Some(100), Some(111), Some(210)][how as usize % 4],
        4 => p.unit = (how % 2 == 0).then_some(1 + h % 3),
        5 => {
            p.series = (how % 2 == 0).then_some(1);
            p.warranty = (how % 3 != 0).then_some(1 + h % 2);
        }
        6 => p.card_url = (how % 2 == 0).then(|| format!("https://x.example/{how}")),
        7 => match how % 4 {
            0 => {
                p.description
                    .name
                    .insert("pol".into(), format!("Nazwa {how}"));
            }
            1 => {
                p.description
                    .long_desc
                    .insert("ger".into(), format!("Lang {how}"));
            }
            2 => p.description.short_desc.clear(),
            _ => {
                p.description
                    .name
                    .insert("eng".into(), format!("Name {how}"));
            }
        },
        8 => match how % 5 {
            0 => p.prices.retail = Some(price(1000 + i64::from(how))),
            1 => p.prices.wholesale = (how % 2 == 0).then(|| price(800 + i64::from(how))),
            2 => p.prices.srp = (how % 3 == 0).then(|| price(1500)),
            3 => p.prices.strikethrough_retail = (how % 2 == 1).then(|| price(1400)),
            _ => p.prices.strikethrough_wholesale = (how % 2 == 1).then(|| price(1300)),
        },
        9 => {
            p.promotion = (how % 2 == 0).then(|| Promotion {
                name: format!("Promo {how}"),
                start_date: Some("2030-01-01".into()),
                ending_date: None,
                price: price(900),
            })
        }
        10 => {
            let levels: Vec<_> = p
                .sizes
                .iter_mut()
                .flat_map(|s| s.stock.iter_mut())
                .collect();
            let n = levels.len();
            for (i, level) in levels.into_iter().enumerate() {
                // Sometimes everything goes out of stock, sometimes one level moves.
                if how % 4 == 0 || i == how as usize % n.max(1) {
                    level.quantity = Decimal::from(i64::from(how % 7) - 1).max(Decimal::ZERO);
                }
            }
            if how % 5 == 0 && p.sizes.len() > 1 {
                p.sizes.pop();
            }
        }
        11 => {
            if how % 2 == 0 {
                p.images.push(Image {
                    url: format!("https://img.example/{}-{how}.jpg", p.id),
                    md5: None,
                    changed: None,
                    width: Some(100),
                    height: None,
                });
            } else {
                p.images.clear();
                p.icons = Default::default();
            }
        }
        12 => {
            p.parameters = match how % 3 {
                0 => vec![],
                1 => vec![ProductParameter {
                    id: 11,
                    values: vec![111],
                }],
                _ => vec![
                    ProductParameter {
                        id: 10,
                        values: vec![],
                    },
                    ProductParameter {
                        id: 12,
                        values: vec![121],
                    },
                ],
            }
        }
        13 => {
            if how % 2 == 0 {
                p.attachments.push(Attachment {
                    url: format!("https://files.example/{how}.pdf"),
                    name: [("pol".to_string(), "Instrukcja".to_string())].into(),
                    version: Default::default(),
                    enable: Default::default(),
                    file_type: Default::default(),
                    extension: Some("pdf".into()),
                    download_log: None,
                    limit_downloads: None,
                    limit_days: None,
                });
            } else {
                p.attachments.clear();
            }
        }
        14 => {
            p.group = (how % 2 == 0).then(|| Group {
                id: 7,
                first_product_id: p.id,
                by_parameter_id: "g".into(),
                by_parameter_name: [("pol".to_string(), "Kolor".to_string())].into(),
                value_id: format!("v{how}"),
                value_name: [("pol".to_string(), format!("kolor {how}"))].into(),
            })
        }
        15 => {
            p.bundled = (how % 2 == 0).then(|| Bundled {
                kind: Default::default(),
                components: vec![BundledComponent {
                    id: 1001,
                    quantity: Decimal::from(1 + h % 3),
                    choice: Default::default(),
                    sizes: vec![],
                }],
            })
        }
        _ => p.shops = [vec![], vec![1], vec![2], vec![1, 2]][how as usize % 4].clone(),
    }
}

/// A dictionary edit that products show.
fn dict_edit(d: &mut Dictionaries, how: u8) -> Record {
    match how % 5 {
        4 => {
            // A category moves to another parent: its products enter or leave category rules.
            let x = d.categories.iter_mut().find(|c| c.id == 111).unwrap();
            x.parent = Some(if x.parent == Some(110) { 200 } else { 110 });
            Record::Category(x.clone())
        }
        0 => {
            let x = &mut d.producers[0];
            x.name = format!("Producent {how}");
            Record::Producer(x.clone())
        }
        1 => {
            // A parent category: paths of its descendants change.
            let x = d.categories.iter_mut().find(|c| c.id == 100).unwrap();
            x.name.insert("pol".into(), format!("Odzież {how}"));
            Record::Category(x.clone())
        }
        2 => {
            let x = d.parameters.iter_mut().find(|p| p.id == 11).unwrap();
            x.name.insert("eng".into(), format!("Colour {how}"));
            Record::Parameter(x.clone())
        }
        _ => {
            let x = &mut d.size_groups[0];
            x.name = format!("Rozmiary {how}");
            Record::SizeGroup(x.clone())
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Edit a product's node (index into the current ids, what, how).
    Edit(usize, u8, u8),
    /// Add a new product copied from a sample one.
    Add(usize, u8),
    Delete(usize),
    /// Put a product back as it was when the window opened (a change undone in the window).
    Undo(usize),
    Dict(u8),
    /// Let the changes stage see the store (several edits may land in one generation).
    Observe,
    Cut,
    /// A day passes: the scheduled base rebuild.
    Rebuild,
    /// Partners with new settings appear: a base built mid-window.
    NewProfile,
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<usize>(), any::<u8>(), any::<u8>()).prop_map(|(i, w, h)| Step::Edit(i, w, h)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, h)| Step::Add(i, h)),
        1 => any::<usize>().prop_map(Step::Delete),
        2 => any::<usize>().prop_map(Step::Undo),
        1 => any::<u8>().prop_map(Step::Dict),
        2 => Just(Step::Observe),
        2 => Just(Step::Cut),
        1 => Just(Step::Rebuild),
        1 => Just(Step::NewProfile),
        1 => Just(Step::Restart),
    ]
}

/// Partner rules over the sample catalog's categories (100 > 110 > 111, 200 > 210, 300),
/// producers (1-3), products (1001-1007) and warehouses (0-2).
fn rules() -> impl Strategy<Value = Rules> {
    let ids = |v: Vec<u64>, most| prop::sample::subsequence(v, 0..=most);
    let price_rule = (0u8..4, 0usize..3, 0u32..40, any::<bool>(), any::<bool>()).prop_map(
        |(kind, i, percent, markup, round)| {
            let percent = Some(Decimal::from(percent));
            PriceRule {
                category: (kind == 1).then(|| [100, 110, 210][i]),
                producer: (kind == 2).then(|| [1, 2, 3][i]),
                product: (kind == 3).then(|| [1001, 1003, 1005][i]),
                markup_percent: percent.filter(|_| markup),
                discount_percent: percent.filter(|_| !markup),
                round_to: round.then(|| Decimal::new(99, 2)),
            }
        },
    );
    (
        (
            ids(vec![100, 110, 200, 300], 2),
            ids(vec![1, 2, 3], 2),
            ids(vec![1001, 1002, 1004, 1006], 1),
            ids(vec![1001, 1003, 1005], 1),
            prop::option::of(0i64..4),
        ),
        prop::collection::vec(price_rule, 0..3),
        (
            prop::sample::subsequence(vec![0u32, 1, 2], 0..=2),
            prop::option::of(0i64..10),
            prop::option::of(0i64..3),
        ),
    )
        .prop_map(
            |((categories, producers, include, exclude, min), price_rules, stock)| Rules {
                assortment: Assortment {
                    categories,
                    producers,
                    include_products: include,
                    exclude_products: exclude,
                    min_stock: min.map(Decimal::from),
                },
                price_rules,
                stock: StockRule {
                    warehouses: stock.0,
                    max_quantity: stock.1.map(Decimal::from),
                    reserve: stock.2.map(Decimal::from),
                },
            },
        )
}

fn catalog() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    // Extra products: (sample to copy, two edits).
    prop::collection::vec((0usize..7, any::<u8>(), any::<u8>()), 0..6)
}

/// The changes and artifacts stages of one data directory, as a publish cycle drives them.
struct Stages {
    changes: Changes,
    artifacts: Artifacts,
}

impl std::ops::Deref for Stages {
    type Target = Changes;
    fn deref(&self) -> &Changes {
        &self.changes
    }
}

impl Stages {
    fn open(dir: &std::path::Path, store: &Store) -> Stages {
        let options = Run::options();
        let artifacts = Artifacts::new(&dir.join("artifacts"), options.timezone.clone()).unwrap();
        let changes = Changes::open(&dir.join("changes"), &store.snapshot(), options).unwrap();
        Stages { changes, artifacts }
    }

    fn cycle(&self) -> Cycle<'_> {
        Cycle::new(&self.changes, &self.artifacts)
    }

    fn maintain(&self, profiles: &[RenderProfile], now: Timestamp) -> Result<bool, PublishError> {
        self.cycle().maintain(profiles, now)
    }

    fn cut(&self, profiles: &[RenderProfile], now: Timestamp) -> Result<usize, PublishError> {
        self.cycle().cut(profiles, now)
    }

    fn full_files(&self, profile: &RenderProfile) -> Option<FullFiles> {
        self.cycle().full_files(profile)
    }
}

struct Run {
    dir: tempfile::TempDir,
    store: Store,
    changes: Option<Stages>,
    products: BTreeMap<u64, Product>,
    at_window_start: BTreeMap<u64, Product>,
    dicts: Dictionaries,
    profiles: Vec<RenderProfile>,
    now: Timestamp,
    next_id: u64,
}

impl Run {
    fn options() -> ChangesOptions {
        let mut o = ChangesOptions::new(jiff::tz::TimeZone::get("Europe/Warsaw").unwrap());
        // Long windows: only explicit cuts (and the first maintain) cut.
        o.window = Duration::from_secs(100 * 86400);
        o
    }

    fn changes(&self) -> &Stages {
        self.changes.as_ref().unwrap()
    }

    fn apply(&self, records: Vec<Record>) {
        self.store.apply(records, ApplyMode::Upsert).unwrap();
    }

    fn put(&mut self, p: Product) {
        self.apply(vec![Record::Product(Box::new(p.clone()))]);
        self.products.insert(p.id, p);
    }

    fn pick(&self, i: usize) -> Option<u64> {
        let ids: Vec<u64> = self.products.keys().copied().collect();
        (!ids.is_empty()).then(|| ids[i % ids.len()])
    }

    fn tick(&mut self) {
        self.now = self
            .now
            .checked_add(jiff::SignedDuration::from_secs(60))
            .unwrap();
    }

    fn cut(&mut self) {
        let c = self.changes();
        c.observe(&self.store.snapshot()).unwrap();
        c.cut(&self.profiles, self.now).unwrap();
        self.at_window_start = self.products.clone();
    }
}

fn run(extra: Vec<(usize, u8, u8)>, steps: Vec<Step>, rules: Rules) -> Result<(), TestCaseError> {
    // A partner with rules beside the unrestricted ones, from the start.
    let ruled = RenderProfile {
        rules,
        ..profiles()[0].clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("store"),
        StoreOptions {
            products_per_shard: 3,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let samples = sample_products();
    let mut products: BTreeMap<u64, Product> = samples.iter().map(|p| (p.id, p.clone())).collect();
    for (k, (i, w, h)) in extra.into_iter().enumerate() {
        let mut p = samples[i].clone();
        p.id = 2000 + k as u64;
        p.sizes
            .iter_mut()
            .for_each(|s| s.code = format!("{}-{}", p.id, s.id));
        mutate(&mut p, w, h);
        products.insert(p.id, p);
    }
    let dicts = sample_dictionaries();
    let mut records = dict_records(&dicts);
    records.extend(
        products
            .values()
            .cloned()
            .map(|p| Record::Product(Box::new(p))),
    );
    store.apply(records, ApplyMode::FullSync).unwrap();
    let mut run = Run {
        changes: Some(Stages::open(dir.path(), &store)),
        dir,
        store,
        at_window_start: products.clone(),
        products,
        dicts,
        profiles: [&profiles()[..2], std::slice::from_ref(&ruled)].concat(),
        now: "2030-01-01T10:00:00Z".parse().unwrap(),
        next_id: 3000,
    };
    run.changes().maintain(&run.profiles, run.now).unwrap();

    for step in steps {
        run.tick();
        match step {
            Step::Edit(i, what, how) => {
                if let Some(id) = run.pick(i) {
                    let mut p = run.products[&id].clone();
                    mutate(&mut p, what, how);
                    run.put(p);
                }
            }
            Step::Add(i, how) => {
                let mut p = samples[i % samples.len()].clone();
                p.id = run.next_id;
                run.next_id += 1;
                p.sizes
                    .iter_mut()
                    .for_each(|s| s.code = format!("{}-{}", p.id, s.id));
                mutate(&mut p, how, how.wrapping_mul(7));
                run.put(p);
            }
            Step::Delete(i) => {
                if let Some(id) = run.pick(i) {
                    run.apply(vec![Record::DeleteProduct { id }]);
                    run.products.remove(&id);
                }
            }
            Step::Undo(i) => {
                let ids: Vec<u64> = run.at_window_start.keys().copied().collect();
                if !ids.is_empty() {
                    let p = run.at_window_start[&ids[i % ids.len()]].clone();
                    run.put(p);
                }
            }
            Step::Dict(how) => {
                let record = dict_edit(&mut run.dicts, how);
                run.apply(vec![record]);
            }
            Step::Observe => {
                run.changes().observe(&run.store.snapshot()).unwrap();
            }
            Step::Cut => run.cut(),
            Step::Rebuild => {
                run.now = run
                    .now
                    .checked_add(jiff::SignedDuration::from_hours(24))
                    .unwrap();
                let c = run.changes();
                c.observe(&run.store.snapshot()).unwrap();
                c.maintain(&run.profiles, run.now).unwrap();
                // The maintain may have cut (its window clock); the undo target follows.
                run.at_window_start = run.products.clone();
            }
            Step::NewProfile => {
                if run.profiles.len() < 4 {
                    run.profiles = profiles();
                    run.profiles.push(ruled.clone());
                    let c = run.changes();
                    c.observe(&run.store.snapshot()).unwrap();
                    c.maintain(&run.profiles, run.now).unwrap();
                }
            }
            Step::Restart => {
                run.changes = None;
                run.changes = Some(Stages::open(run.dir.path(), &run.store));
            }
        }
    }
    run.tick();
    run.cut();

    for profile in &run.profiles {
        let consumer = consumer_view(run.changes(), profile);
        let now = current_full(&run.store, profile);
        prop_assert_eq!(
            consumer.keys().collect::<Vec<_>>(),
            now.keys().collect::<Vec<_>>(),
            "products of shop {} (only in stock: {}, rules: {:?})",
            profile.shop,
            profile.only_in_stock,
            profile.rules
        );
        for (id, node) in &now {
            prop_assert_eq!(
                &consumer[id],
                node,
                "product {} for shop {}",
                id,
                profile.shop
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    /// base + listed change files newer than it, applied oldest first == current full.xml.
    #[test]
    fn base_plus_change_files_equals_the_current_full_xml(
        extra in catalog(),
        steps in prop::collection::vec(step(), 1..24),
        rules in rules(),
    ) {
        run(extra, steps, rules)?;
    }
}

// ---------------------------------------------------------------------------------------
// A real server

const KOWALSKI: &str = "/feeds/sklep-kowalski/demo-kowalski-4f9c2a7e1b/1";
const RESELLER: &str = "/feeds/eu-reseller/demo-eureseller-8d31b6c05a/1";

const ADMIN_TOKEN: &str = "changes-test-admin-token";

/// A config with change windows of `window` on the manual `clock`: windows pass when the
/// test moves the clock (see `Server::pass`), never by waiting.
fn config(dir: &tempfile::TempDir, window: Duration, clock: &Clock) -> Config {
    let mut c = Config::for_data_dir(&data_path(dir));
    c.change_window = window;
    c.admin_token = Some(ADMIN_TOKEN.into());
    c.clock = clock.clone();
    c
}

/// `(url, hash)` of the change files a gateway lists, newest first.
fn listed_changes(server: &Server, feed: &str) -> Vec<(String, String)> {
    let gw = server.get(&format!("{feed}/gateway.xml"));
    assert_eq!(gw.status(), 200);
    let gw = gw.bytes().unwrap();
    xsd::validate(Schema::Gateway, &gw).unwrap();
    gateway_files(&gw)
        .into_iter()
        .filter(|(kind, _, _)| kind == "change")
        .map(|(_, url, hash)| (url, hash.unwrap()))
        .collect()
}

fn wait_for_changes(server: &Server, feed: &str, n: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = listed_changes(server, feed);
        if listed.len() >= n || Instant::now() > deadline {
            return listed;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn product(app: &iofd::app::App, id: u64) -> Product {
    let snapshot = app.store.snapshot();
    rkyv::deserialize::<Product, rkyv::rancor::Error>(snapshot.product(id).unwrap()).unwrap()
}

/// Three demo products in shop 1 and in stock (so both demo partners have them).
fn three_products(app: &iofd::app::App) -> Vec<Product> {
    let snapshot = app.store.snapshot();
    let ids: Vec<u64> = snapshot
        .products()
        .filter(|p| {
            (p.shops.is_empty() || p.shops.iter().any(|s| s.to_native() == 1)) && p.in_stock()
        })
        .map(|p| p.id.to_native())
        .take(3)
        .collect();
    ids.into_iter().map(|id| product(app, id)).collect()
}

/// `(id, removed, child names)` of a change file.
fn summary(xml: &[u8]) -> Vec<(u64, bool, Vec<String>)> {
    read_products(xml)
        .into_iter()
        .map(|(id, n)| match n {
            None => (id, true, vec![]),
            Some(n) => (id, false, n.children.keys().cloned().collect()),
        })
        .collect()
}

/// A request to the admin ingest API; the JSON report it answers.
fn admin(server: &Server, method: reqwest::Method, path: &str, body: String) -> serde_json::Value {
    let r = client()
        .request(method.clone(), format!("{}{path}", server.admin))
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .expect("admin request");
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).expect("a JSON report")
}

#[test]
fn a_served_window_lists_one_change_file_with_exactly_the_changed_nodes() {
    let dir = tempdir();
    let clock = Clock::manual(Timestamp::now());
    let server = Server::start(config(&dir, Duration::from_secs(2), &clock));
    let app = server.app.clone();
    assert!(listed_changes(&server, KOWALSKI).is_empty());

    // Re-importing the same catalog through the import path changes nothing: no generation,
    // no change file.
    let report = admin(
        &server,
        reqwest::Method::POST,
        "/v1/records?mode=full_sync",
        iofd::app::DEMO_CATALOG.to_string(),
    );
    assert_eq!(report["applied"], 0, "{report}");
    server.pass(Duration::from_millis(4500));
    assert!(listed_changes(&server, KOWALSKI).is_empty());

    // One product's stock (a stock update), another's description (the whole product sent
    // again), a third deleted.
    let [stocked, mut described, deleted]: [Product; 3] = three_products(&app).try_into().unwrap();
    let (size, level) = stocked
        .sizes
        .iter()
        .flat_map(|s| s.stock.iter().map(move |l| (s, l)))
        .find(|(_, l)| l.quantity > Decimal::ZERO)
        .unwrap();
    let update = serde_json::json!({
        "kind": "stock",
        "product": stocked.id,
        "size": size.id,
        "warehouse": level.warehouse,
        "quantity": (level.quantity + Decimal::from(5)).to_string(),
    });
    admin(
        &server,
        reqwest::Method::POST,
        "/v1/updates",
        format!("{update}\n"),
    );
    described
        .description
        .name
        .insert("pol".into(), "Zupełnie nowa nazwa".into());
    described
        .description
        .name
        .insert("eng".into(), "A brand new name".into());
    admin(
        &server,
        reqwest::Method::PUT,
        &format!("/v1/products/{}", described.id),
        serde_json::to_string(&described).unwrap(),
    );
    admin(
        &server,
        reqwest::Method::DELETE,
        &format!("/v1/products/{}", deleted.id),
        String::new(),
    );

    let mut expected = vec![
        (stocked.id, false, vec!["sizes".to_string()]),
        (described.id, false, vec!["description".to_string()]),
        (deleted.id, true, vec![]),
    ];
    expected.sort();
    server.pass(Duration::from_secs(2));
    for feed in [KOWALSKI, RESELLER] {
        let listed = wait_for_changes(&server, feed, 1);
        assert_eq!(listed.len(), 1, "{feed}: {listed:?}");
        let (url, hash) = &listed[0];
        assert!(url.contains("/full_change"), "{url}");
        let resp = server.get(url);
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let body = resp.bytes().unwrap();
        assert_eq!(&md5_hex(&body), hash);
        xsd::validate(Schema::FullChange, &body).unwrap();
        let mut got = summary(&body);
        got.sort();
        assert_eq!(got, expected, "{feed}");
    }
    // The base full.xml did not move; a later window with nothing in it adds no file.
    server.pass(Duration::from_millis(4500));
    assert_eq!(listed_changes(&server, KOWALSKI).len(), 1);
}

#[test]
fn a_restart_mid_window_loses_and_duplicates_nothing() {
    let dir = tempdir();
    // One clock for the three runs, so time never goes back across a restart.
    let clock = Clock::manual(Timestamp::now());
    // A long window: the change is still in the open window when the server stops.
    let server = Server::start(config(&dir, Duration::from_secs(3600), &clock));
    let [mut p, ..]: [Product; 3] = three_products(&server.app).try_into().unwrap();
    p.vat = Decimal::from(8);
    server
        .app
        .store
        .apply(
            vec![Record::Product(Box::new(p.clone()))],
            ApplyMode::Upsert,
        )
        .unwrap();
    let logged = Instant::now() + Duration::from_secs(10);
    while server.app.changes.generation() != server.app.store.snapshot().generation()
        && Instant::now() < logged
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = server.get(&format!("{KOWALSKI}/full.xml")).bytes().unwrap();
    server.stop();

    // Restarted with short windows: the open window is cut once, with the change once.
    let server = Server::start(config(&dir, Duration::from_secs(2), &clock));
    server.pass(Duration::from_secs(2));
    let listed = wait_for_changes(&server, KOWALSKI, 1);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let body = server.get(&listed[0].0).bytes().unwrap();
    assert_eq!(summary(&body), vec![(p.id, false, vec![])]);
    assert!(
        std::str::from_utf8(&body).unwrap().contains("vat=\"8.0\""),
        "the attributes carry the new VAT"
    );
    let entries = server.app.changes.log_entries().unwrap();
    assert_eq!(entries.iter().filter(|e| e.product == p.id).count(), 1);
    // The base survived the restart: same bytes.
    assert_eq!(
        server.get(&format!("{KOWALSKI}/full.xml")).bytes().unwrap(),
        base
    );

    // And the cut window survives another restart, listed with the same hash.
    server.stop();
    let server = Server::start(config(&dir, Duration::from_secs(2), &clock));
    server.pass(Duration::from_millis(2500));
    // The file's name, without the signed query: its `expires` is bucketed on the clock, so a
    // run that crosses a bucket's edge lists the same file under a new signature.
    let names = |l: Vec<(String, String)>| -> Vec<(String, String)> {
        l.into_iter()
            .map(|(url, hash)| {
                let file = url.rsplit('/').next().unwrap();
                (file.split('?').next().unwrap().to_string(), hash)
            })
            .collect()
    };
    assert_eq!(names(listed_changes(&server, KOWALSKI)), names(listed));
}

/// Rendered full.xml data files (bases and per-generation renders) under `dir`.
fn rendered_full_xml(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(rendered_full_xml(&path));
        } else if path.to_string_lossy().ends_with("-full.xml") {
            out.push(path);
        }
    }
    out
}

#[test]
fn an_xml_and_an_xml_gz_partner_of_equal_settings_render_full_xml_once() {
    let dir = tempdir();
    let data = data_path(&dir);
    std::fs::create_dir_all(&data).unwrap();
    // The demo partners (three profiles) and a twin of sklep-kowalski that differs only in
    // its file type.
    let partners = format!(
        "{}\n[[partner]]\nid = \"gz-twin\"\ntoken = \"demo-gztwin-0000000001\"\nshops = [1]\n\
         format = \"iof-3.0\"\nfile_type = \"xml.gz\"\nlanguages = [\"pol\", \"eng\"]\n\
         currency = \"PLN\"\ndiscount_percent = \"0\"\nwholesale = false\nonly_in_stock = false\n",
        iofd::partners::DEMO_PARTNERS
    );
    std::fs::write(data.join("partners.toml"), partners).unwrap();
    let config = config(&dir, Duration::from_secs(3600), &Clock::system());
    let (changes_dir, artifacts_dir) = (config.changes_dir(), config.artifacts_dir());
    let server = Server::start(config);
    let profiles = server.app.partners().profiles();
    assert_eq!(profiles.len(), 4);
    let full_keys: std::collections::BTreeSet<String> =
        profiles.iter().map(|p| p.full_key()).collect();
    assert_eq!(full_keys.len(), 3, "the twins share their full.xml key");
    let mut rendered = rendered_full_xml(&changes_dir);
    rendered.extend(rendered_full_xml(&artifacts_dir));
    assert_eq!(
        rendered.len(),
        3,
        "one full.xml per distinct key: {rendered:?}"
    );
    // Both twins are served the same bytes: plain, and gzip-compressed as the twin's file.
    let plain = server.get(&format!("{KOWALSKI}/full.xml"));
    assert_eq!(plain.status(), 200);
    let plain = plain.bytes().unwrap();
    let gz = server.get("/feeds/gz-twin/demo-gztwin-0000000001/1/full.xml.gz");
    assert_eq!(gz.status(), 200);
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gz.bytes().unwrap()[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, plain);
}
