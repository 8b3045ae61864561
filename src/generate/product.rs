//! Synthesis of one product from `(seed, id)`.
//!
//! Every product is a pure function of the seed, its id and the catalog size, drawn from its
//! own ChaCha8 streams. That keeps memory O(1) in the catalog size and lets a bundle look at
//! the *skeleton* (type, shops, sizes) of any earlier product by recomputing it, instead of
//! remembering every product written so far.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod codes;
mod words;

#[cfg(test)]
pub(super) use codes::check_digit;
use codes::{ean13, isbn13, random_hex, slug};
use words::*;

use super::dict::{self, texts, Dictionary, Leaf, Theme};
use crate::catalog::{
    round_money, Attachment, AttachmentEnable, AttachmentType, AttachmentVersion, BundleType,
    Bundled, BundledComponent, CodeStandard, ComponentChoice, Decimal, Description, Group, Icons,
    Image, Price, Prices, Product, ProductId, ProductParameter, ProductType, Promotion, Size,
    StockLevel, Texts,
};

/// Products `1..=ALWAYS_REGULAR` are plain regular products offered in every shop, so a
/// bundle always has something to contain.
const ALWAYS_REGULAR: u64 = 10;

/// Ids are cut into blocks; a block may open with a variant group of 2 to 5 products.
const FAMILY_BLOCK: u64 = 8;

/// Independent random streams per key.
#[derive(Clone, Copy)]
enum Stream {
    Skeleton = 0,
    Detail = 1,
    Family = 2,
}

/// A variant group: consecutive products sharing everything but their colour.
#[derive(Clone, Copy)]
struct Family {
    first: ProductId,
    leaf: usize,
    sizes: Option<SizeRange>,
    producer: u64,
    model: usize,
    adjective: usize,
    net: i64,
    first_colour: usize,
}

/// A contiguous run of a size group's sizes.
#[derive(Clone, Copy)]
struct SizeRange {
    group: u64,
    lo: usize,
    hi: usize,
}

impl SizeRange {
    fn ids(&self) -> &'static [dict::SizeSpec] {
        &dict::size_ids(self.group)[self.lo..=self.hi]
    }
}

/// What other products may need to know about a product.
#[derive(Clone, Copy)]
struct Skeleton {
    kind: ProductType,
    leaf: usize,
    sizes: Option<SizeRange>,
    /// `None`: every shop; otherwise the only shop.
    only_shop: Option<u32>,
    family: Option<Family>,
}

/// Product synthesis for one catalog.
pub(super) struct Synth<'d> {
    dict: &'d Dictionary,
    base: ChaCha8Rng,
    products: u64,
    /// Leaf indexes by use.
    regular: Vec<usize>,
    variant: Vec<usize>,
    virtual_: Vec<usize>,
    service: Vec<usize>,
    packaging: Vec<usize>,
}

/// A uniform index below `len`; via u32 so it is the same on every platform.
fn index(rng: &mut ChaCha8Rng, len: usize) -> usize {
    let len = u32::try_from(len).unwrap_or(u32::MAX).max(1);
    rng.gen_range(0..len) as usize
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[index(rng, items.len())]
}

fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// A price from its net amount and the VAT rate: gross = net × (1 + vat), rounded.
fn price(net_cents: i64, vat: Decimal) -> Price {
    let net = money(net_cents);
    Price {
        net,
        gross: round_money(net * (Decimal::ONE + vat / Decimal::ONE_HUNDRED)),
    }
}

/// `cents × percent / 100`, rounded to whole cents.
fn scale(cents: i64, percent: i64) -> i64 {
    (cents * percent + 50) / 100
}

/// A `YYYY-MM-DD hh:mm:ss` timestamp in 2025.
fn timestamp(rng: &mut ChaCha8Rng) -> String {
    format!(
        "2025-{:02}-{:02} {:02}:{:02}:{:02}",
        rng.gen_range(1..=12u32),
        rng.gen_range(1..=28u32),
        rng.gen_range(0..24u32),
        rng.gen_range(0..60u32),
        rng.gen_range(0..60u32)
    )
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl<'d> Synth<'d> {
    pub(super) fn new(dict: &'d Dictionary, seed: u64, products: u64) -> Self {
        let with = |f: &dyn Fn(&dict::LeafRef) -> bool| -> Vec<usize> {
            (0..dict.leaves.len())
                .filter(|&i| f(&dict.leaves[i]))
                .collect()
        };
        Synth {
            dict,
            base: ChaCha8Rng::seed_from_u64(seed),
            products,
            regular: with(&|l| l.theme.product_type() == ProductType::Regular),
            variant: with(&|l| l.theme.has_variants()),
            virtual_: with(&|l| l.theme == Theme::Digital),
            service: with(&|l| l.theme == Theme::Services),
            packaging: with(&|l| l.theme == Theme::Packaging),
        }
    }

    fn rng(&self, key: u64, stream: Stream) -> ChaCha8Rng {
        let mut rng = self.base.clone();
        rng.set_stream(key.wrapping_mul(4) | stream as u64);
        rng
    }

    fn leaf(&self, i: usize) -> &'static Leaf {
        self.dict.leaves[i].leaf
    }

    fn sizes_of(&self, rng: &mut ChaCha8Rng, leaf: usize) -> Option<SizeRange> {
        let group = self.leaf(leaf).size_group?;
        let len = dict::size_ids(group).len();
        if rng.gen_bool(0.5) {
            return Some(SizeRange {
                group,
                lo: 0,
                hi: len - 1,
            });
        }
        let lo = index(rng, len - 1);
        let hi = lo + 1 + index(rng, len - lo - 1);
        Some(SizeRange { group, lo, hi })
    }

    /// The variant group opening the block of `id`, if any.
    fn family(&self, id: ProductId) -> Option<Family> {
        let block = (id - 1) / FAMILY_BLOCK;
        let mut rng = self.rng(block, Stream::Family);
        if !rng.gen_bool(0.3) {
            return None;
        }
        let first = block * FAMILY_BLOCK + 1;
        let last = (first + rng.gen_range(1..5u64)).min(self.products);
        if last <= first || id > last {
            return None;
        }
        let leaf = *pick(&mut rng, &self.variant);
        let (lo, hi) = self.dict.leaves[leaf].theme.price_range();
        Some(Family {
            first,
            leaf,
            sizes: self.sizes_of(&mut rng, leaf),
            producer: rng.gen_range(1..=dict::PRODUCERS.len() as u64),
            model: index(&mut rng, MODELS.len()),
            adjective: index(&mut rng, FOOD_ADJECTIVES),
            net: rng.gen_range(lo..hi) / 100 * 100 + 99,
            first_colour: index(&mut rng, dict::COLOURS.len()),
        })
    }

    fn skeleton(&self, id: ProductId) -> Skeleton {
        if let Some(family) = self.family(id) {
            return Skeleton {
                kind: ProductType::Regular,
                leaf: family.leaf,
                sizes: family.sizes,
                only_shop: None,
                family: Some(family),
            };
        }
        let mut rng = self.rng(id, Stream::Skeleton);
        let roll = rng.gen_range(0..1000u32);
        let kind = match roll {
            _ if id <= ALWAYS_REGULAR => ProductType::Regular,
            0..=29 => ProductType::Bundle,
            30..=49 => ProductType::Collection,
            50..=69 => ProductType::Packaging,
            70..=94 => ProductType::Virtual,
            95..=129 => ProductType::Service,
            _ => ProductType::Regular,
        };
        let leaves = match kind {
            ProductType::Virtual => &self.virtual_,
            ProductType::Service => &self.service,
            ProductType::Packaging => &self.packaging,
            _ => &self.regular,
        };
        let leaf = *pick(&mut rng, leaves);
        let sizes = if kind == ProductType::Regular {
            self.sizes_of(&mut rng, leaf)
        } else {
            None
        };
        let only_shop = match rng.gen_range(0..100u32) {
            _ if id <= ALWAYS_REGULAR || kind != ProductType::Regular => None,
            0..=4 => Some(2),
            5..=6 => Some(1),
            _ => None,
        };
        Skeleton {
            kind,
            leaf,
            sizes,
            only_shop,
            family: None,
        }
    }

    /// The full product `id`.
    pub(super) fn product(&self, id: ProductId) -> Product {
        let sk = self.skeleton(id);
        let mut rng = self.rng(id, Stream::Detail);
        let leaf_ref = &self.dict.leaves[sk.leaf];
        let (theme, leaf) = (leaf_ref.theme, leaf_ref.leaf);
        let vat = Decimal::from(leaf.vat);
        let fractional = dict::unit_is_fractional(leaf.unit);

        let producer = match (sk.family, sk.kind) {
            (Some(f), _) => Some(f.producer),
            (None, ProductType::Service | ProductType::Virtual) => None,
            _ if rng.gen_bool(0.95) => Some(rng.gen_range(1..=dict::PRODUCERS.len() as u64)),
            _ => None,
        };
        let colour = sk
            .family
            .map(|f| (f.first_colour + (id - f.first) as usize) % dict::COLOURS.len());

        let mut net = match sk.family {
            Some(f) => f.net,
            None => {
                let (lo, hi) = theme.price_range();
                let n = rng.gen_range(lo..hi);
                if rng.gen_bool(0.5) {
                    n / 100 * 100 + 99
                } else {
                    n
                }
            }
        };
        if leaf.vat == 0 {
            // Gift cards: a round face value.
            net = *pick(&mut rng, &[5_000, 10_000, 20_000, 50_000]);
        }
        let (name, version) = self.name(&mut rng, id, &sk, leaf, colour, net);
        let code = format!("{}-{id:06}", theme.code_prefix());
        let prices = self.prices(&mut rng, net, vat);

        let description = Description {
            short_desc: self.short_desc(&mut rng, producer),
            long_desc: self.long_desc(&mut rng, &name, &code, producer, leaf),
            name,
            version,
        };

        let standard = match (sk.kind, theme) {
            (ProductType::Regular, Theme::Books) => CodeStandard::Isbn13,
            (ProductType::Regular | ProductType::Packaging, _) => match rng.gen_range(0..10u32) {
                0..=6 => CodeStandard::Gtin13,
                7 => CodeStandard::Mpn,
                _ => CodeStandard::Auto,
            },
            _ => CodeStandard::Auto,
        };

        let mut product = Product {
            id,
            kind: sk.kind,
            vat,
            code: Some(code),
            producer_code_standard: standard,
            shops: sk.only_shop.into_iter().collect(),
            producer,
            category: Some(leaf_ref.category),
            unit: Some(leaf.unit),
            series: None,
            warranty: None,
            size_group: sk.sizes.map(|s| s.group),
            card_url: None,
            description,
            prices,
            promotion: None,
            sizes: Vec::new(),
            images: Vec::new(),
            icons: Icons::default(),
            parameters: Vec::new(),
            attachments: Vec::new(),
            group: None,
            bundled: None,
            stock: Vec::new(),
        };

        if matches!(
            theme,
            Theme::Clothing | Theme::Shoes | Theme::Home | Theme::Electronics
        ) && rng.gen_bool(0.3)
        {
            product.series = Some(rng.gen_range(1..=dict::SERIES.len() as u64));
        }
        product.warranty = self.warranty(&mut rng, theme);
        if rng.gen_bool(0.9) {
            let names = &product.description.name;
            let title = names.get("eng").or_else(|| names.get("pol"));
            product.card_url = Some(format!(
                "https://hurtownia.example.com/pl/products/{id}-{}.html",
                slug(title.map_or("", String::as_str))
            ));
        }
        if sk.kind == ProductType::Regular && rng.gen_bool(0.03) {
            let month = rng.gen_range(1..=12u32);
            product.promotion = Some(Promotion {
                name: (*pick(&mut rng, &PROMOTIONS)).into(),
                start_date: Some(format!("2026-{month:02}-01")),
                ending_date: Some(format!("2026-{month:02}-28")),
                price: price(scale(net, rng.gen_range(75..=90)), vat),
            });
        }

        self.sizes_and_stock(&mut rng, &mut product, &sk, theme, fractional, net);
        self.images(&mut rng, &mut product, &sk);
        product.parameters = self.parameters(&mut rng, theme, leaf, colour);
        product.attachments = self.attachments(&mut rng, id, theme, leaf);
        if let (Some(f), Some(c)) = (sk.family, colour) {
            let (pol, eng, _) = dict::COLOURS[c];
            product.group = Some(Group {
                id: f.first,
                first_product_id: f.first,
                by_parameter_id: dict::PARAM_COLOUR.to_string(),
                by_parameter_name: texts("Kolor", "Colour"),
                value_id: dict::value_id(dict::PARAM_COLOUR, c).to_string(),
                value_name: texts(pol, eng),
            });
        }
        if matches!(sk.kind, ProductType::Bundle | ProductType::Collection) {
            product.bundled = Some(self.bundled(&mut rng, id, sk.kind));
        }
        product
    }

    fn name(
        &self,
        rng: &mut ChaCha8Rng,
        id: ProductId,
        sk: &Skeleton,
        leaf: &Leaf,
        colour: Option<usize>,
        net: i64,
    ) -> (Texts, Texts) {
        let (noun_pol, noun_eng, gender) = leaf.noun;
        let theme = self.dict.leaves[sk.leaf].theme;
        let (adj, model) = match sk.family {
            Some(f) => (f.adjective, f.model),
            None if theme == Theme::Food => (
                FOOD_ADJECTIVES + index(rng, ADJECTIVES.len() - FOOD_ADJECTIVES),
                index(rng, MODELS.len()),
            ),
            None => (index(rng, ADJECTIVES.len()), index(rng, MODELS.len())),
        };
        let model = MODELS[model];
        let (mut pol, mut eng) = match (sk.kind, theme) {
            (ProductType::Bundle, _) => (
                format!("Zestaw: {noun_pol} {model} + akcesoria"),
                format!("Set: {noun_eng} {model} + accessories"),
            ),
            (ProductType::Collection, _) => (
                format!("Kolekcja {model} – {}", noun_pol.to_lowercase()),
                format!("{model} collection – {noun_eng}"),
            ),
            (_, Theme::Books | Theme::Digital) if leaf.vat != 0 => {
                let (tp, te) = *pick(rng, &TITLES);
                (
                    format!("{noun_pol} \"{tp}\""),
                    format!("{} \"{te}\"", capitalize(noun_eng)),
                )
            }
            (_, Theme::Digital) => {
                let value = net / 100;
                (
                    format!("{noun_pol} {value} zł"),
                    format!("{} PLN {value}", capitalize(noun_eng)),
                )
            }
            (_, Theme::Services) => {
                let (tp, te) = *pick(rng, &SERVICE_TIERS);
                (
                    format!("{noun_pol} – pakiet {tp}"),
                    format!("{} – {te} package", capitalize(noun_eng)),
                )
            }
            (_, Theme::Packaging) => {
                let dims = *pick(rng, &["60×40 cm", "80×120 cm", "30×20 cm"]);
                (
                    format!("{noun_pol} {dims}"),
                    format!("{} {dims}", capitalize(noun_eng)),
                )
            }
            _ => {
                let a = ADJECTIVES[adj];
                (
                    format!("{noun_pol} {} {model}", adjective(adj, gender)),
                    format!("{} {noun_eng} {model}", capitalize(a.4)),
                )
            }
        };
        if sk.family.is_none() && rng.gen_bool(0.06) {
            let (sp, se) = *pick(rng, &SPECIAL_SUFFIXES);
            pol.push_str(sp);
            eng.push_str(se);
        }
        let mut version = Texts::new();
        if let Some(c) = colour {
            let (cp, ce, _) = dict::COLOURS[c];
            pol.push_str(&format!(", kolor {cp}"));
            eng.push_str(&format!(", {ce}"));
            version = texts(cp, ce);
        }
        if sk.kind == ProductType::Regular && id % 97 == 0 {
            // The odd product without an English name, as in real ERPs.
            let mut only = Texts::new();
            only.insert("pol".into(), pol);
            return (only, version);
        }
        (texts(&pol, &eng), version)
    }

    fn prices(&self, rng: &mut ChaCha8Rng, net: i64, vat: Decimal) -> crate::catalog::Prices {
        let mut prices = Prices {
            retail: Some(price(net, vat)),
            ..Prices::default()
        };
        if rng.gen_bool(0.9) {
            prices.wholesale = Some(price(scale(net, rng.gen_range(70..=85)), vat));
        }
        if rng.gen_bool(0.4) {
            prices.srp = Some(price(scale(net, rng.gen_range(105..=120)), vat));
        }
        if rng.gen_bool(0.12) {
            prices.strikethrough_retail = Some(price(scale(net, rng.gen_range(110..=140)), vat));
            if rng.gen_bool(0.4) {
                prices.strikethrough_wholesale =
                    Some(price(scale(net, rng.gen_range(90..=100)), vat));
            }
        }
        prices
    }

    fn short_desc(&self, rng: &mut ChaCha8Rng, producer: Option<u64>) -> Texts {
        if rng.gen_bool(0.1) {
            return Texts::new();
        }
        let (fp, fe) = *pick(rng, &FEATURES);
        match producer {
            Some(p) => {
                let name = dict::producer_name(p);
                texts(
                    &format!("Produkt marki {name}. {fp}"),
                    &format!("A product by {name}. {fe}"),
                )
            }
            None => texts(fp, fe),
        }
    }

    fn long_desc(
        &self,
        rng: &mut ChaCha8Rng,
        name: &Texts,
        code: &str,
        producer: Option<u64>,
        leaf: &Leaf,
    ) -> Texts {
        let mut out = Texts::new();
        let producer = producer.map_or("—", dict::producer_name);
        let (fp, fe) = *pick(rng, &FEATURES);
        let odd = rng.gen_bool(0.02);
        for (lang, label_code, label_producer, label_category, feature) in [
            ("pol", "Kod", "Producent", "Kategoria", fp),
            ("eng", "Code", "Producer", "Category", fe),
        ] {
            let Some(title) = name.get(lang) else {
                continue;
            };
            let category = if lang == "pol" { leaf.pol } else { leaf.eng };
            let mut html = format!(
                "<h2>{title}</h2><p>{feature}</p><ul><li><strong>{label_code}:</strong> {code}</li>\
                 <li><strong>{label_producer}:</strong> {producer}</li>\
                 <li><strong>{label_category}:</strong> {category}</li></ul>"
            );
            if odd {
                // A literal CDATA terminator: renderers must split the CDATA section.
                html.push_str("<p><code>if (a[b[0]]> 1) reset();</code></p>");
            }
            out.insert(lang.into(), html);
        }
        if rng.gen_bool(0.08) {
            out.remove("eng");
        }
        out
    }

    fn warranty(&self, rng: &mut ChaCha8Rng, theme: Theme) -> Option<u64> {
        let roll = rng.gen_range(0..100u32);
        match theme {
            Theme::Electronics => Some(match roll {
                0..=69 => dict::WARRANTY_PRODUCER_24,
                70..=89 => dict::WARRANTY_PRODUCER_12,
                _ => dict::WARRANTY_PRODUCER_60,
            }),
            Theme::Home if roll < 40 => Some(if roll < 25 {
                dict::WARRANTY_PRODUCER_24
            } else {
                dict::WARRANTY_SELLER_12
            }),
            Theme::Shoes if roll < 20 => Some(dict::WARRANTY_SELLER_6),
            Theme::Clothing if roll < 10 => Some(dict::WARRANTY_SELLER_6),
            _ => None,
        }
    }

    /// Stock in a few warehouses: some empty, a few unlimited (-1), fractional for kg and l.
    fn stock(&self, rng: &mut ChaCha8Rng, kind: ProductType, fractional: bool) -> Vec<StockLevel> {
        if matches!(kind, ProductType::Service | ProductType::Virtual) {
            return vec![StockLevel {
                warehouse: 1,
                quantity: Decimal::NEGATIVE_ONE,
                physical: None,
                location: None,
            }];
        }
        let mut out = Vec::new();
        for (warehouse, p) in [(0u32, 0.4), (1, 0.85), (2, 0.3), (3, 0.15)] {
            if !rng.gen_bool(p) {
                continue;
            }
            let quantity = match rng.gen_range(0..100u32) {
                0..=11 => Decimal::ZERO,
                12..=14 => Decimal::NEGATIVE_ONE,
                _ if fractional => Decimal::new(rng.gen_range(1..80_000), 3),
                _ => Decimal::from(rng.gen_range(1..=40u32) * rng.gen_range(1..=6u32)),
            };
            let physical = (quantity >= Decimal::ZERO && rng.gen_bool(0.1))
                .then(|| quantity + Decimal::from(rng.gen_range(1..=5u32)));
            let location = (warehouse == 1 && rng.gen_bool(0.2)).then(|| {
                format!(
                    "{}-{:02}-{:02}",
                    char::from(b'A' + rng.gen_range(0..6u8)),
                    rng.gen_range(1..=30u32),
                    rng.gen_range(1..=12u32)
                )
            });
            out.push(StockLevel {
                warehouse,
                quantity,
                physical,
                location,
            });
        }
        out
    }

    fn sizes_and_stock(
        &self,
        rng: &mut ChaCha8Rng,
        product: &mut Product,
        sk: &Skeleton,
        theme: Theme,
        fractional: bool,
        net: i64,
    ) {
        let id = product.id;
        let codes = |rng: &mut ChaCha8Rng, i: usize| match product.producer_code_standard {
            CodeStandard::Gtin13 => Some(ean13(id, i)),
            CodeStandard::Isbn13 => Some(isbn13(id)),
            CodeStandard::Mpn => Some(format!(
                "{}{}-{:04}",
                char::from(b'A' + rng.gen_range(0..26u8)),
                char::from(b'A' + rng.gen_range(0..26u8)),
                (id * 7 + i as u64) % 10_000
            )),
            _ => None,
        };
        let external = rng.gen_bool(0.5);
        let weight = theme.weight_range().map(|(lo, hi)| rng.gen_range(lo..=hi));
        let size = |rng: &mut ChaCha8Rng, i: usize, size_id: &str, stock| {
            let weight = weight.map(|w| w + 40 * i as u32);
            Size {
                id: size_id.into(),
                code: format!("{id}-{size_id}"),
                code_producer: codes(rng, i),
                code_external: external.then(|| format!("ERP/{id:07}/{size_id}")),
                weight,
                weight_net: weight.map(|w| w - w / 10),
                prices: Prices::default(),
                stock,
            }
        };
        match sk.sizes {
            Some(range) => {
                let ids = range.ids();
                let dearer_large = rng.gen_bool(0.2);
                for (i, (size_id, _, _)) in ids.iter().enumerate() {
                    let stock = self.stock(rng, sk.kind, fractional);
                    let mut s = size(rng, i, size_id, stock);
                    if dearer_large && i + 2 >= ids.len() {
                        // The largest sizes cost 10% more: a per-size price.
                        s.prices.retail = Some(price(scale(net, 110), product.vat));
                    }
                    product.sizes.push(s);
                }
            }
            // One size: usually sent without sizes (ingest adds `uniw`), sometimes explicitly
            // to carry the EAN and weight.
            None if product.producer_code_standard != CodeStandard::Auto || rng.gen_bool(0.3) => {
                let stock = self.stock(rng, sk.kind, fractional);
                let s = size(rng, 0, "uniw", stock);
                product.sizes.push(s);
            }
            None => product.stock = self.stock(rng, sk.kind, fractional),
        }
    }

    fn image(&self, rng: &mut ChaCha8Rng, url: String) -> Image {
        let (width, height) = *pick(rng, &[(1200, 1200), (1000, 1500), (800, 600)]);
        let full = rng.gen_bool(0.8);
        Image {
            url,
            md5: full.then(|| random_hex(rng, 16)),
            changed: full.then(|| timestamp(rng)),
            width: Some(width),
            height: Some(height),
        }
    }

    fn images(&self, rng: &mut ChaCha8Rng, product: &mut Product, sk: &Skeleton) {
        let id = product.id;
        let count = match sk.kind {
            ProductType::Regular | ProductType::Bundle | ProductType::Collection => {
                rng.gen_range(1..=6u32)
            }
            _ => rng.gen_range(1..=2u32),
        };
        product.images = (1..=count)
            .map(|n| {
                self.image(
                    rng,
                    format!("https://img.example.com/products/{id}/{n}.jpg"),
                )
            })
            .collect();
        product.icons.icon =
            Some(self.image(rng, format!("https://img.example.com/icons/{id}.jpg")));
        if rng.gen_bool(0.1) {
            product.icons.auction_icon = Some(self.image(
                rng,
                format!("https://img.example.com/icons/{id}-auction.jpg"),
            ));
        }
        if let Some(f) = sk.family {
            product.icons.group_icon = Some(self.image(
                rng,
                format!("https://img.example.com/groups/{}.jpg", f.first),
            ));
        }
    }

    fn parameters(
        &self,
        rng: &mut ChaCha8Rng,
        theme: Theme,
        leaf: &Leaf,
        colour: Option<usize>,
    ) -> Vec<ProductParameter> {
        use dict::*;
        let section = |id| ProductParameter { id, values: vec![] };
        let mut value = |param: u64| ProductParameter {
            id: param,
            values: vec![value_id(param, index(rng, value_count(param)))],
        };
        let mut out = match theme {
            Theme::Clothing => vec![
                section(SECTION_BASIC),
                value(PARAM_SEX),
                value(PARAM_SEASON),
                section(SECTION_MATERIAL),
                value(PARAM_MATERIAL),
                value(PARAM_ORIGIN),
            ],
            Theme::Shoes => {
                let mut v = vec![section(SECTION_BASIC), value(PARAM_SEX)];
                if leaf.pol == "Szpilki" || leaf.pol == "Botki" {
                    v.push(value(PARAM_HEEL));
                }
                v.extend([section(SECTION_MATERIAL), value(PARAM_MATERIAL)]);
                v
            }
            Theme::Home => vec![
                section(SECTION_MATERIAL),
                value(PARAM_MATERIAL),
                value(PARAM_ORIGIN),
            ],
            Theme::Electronics => vec![
                section(SECTION_TECH),
                value(PARAM_POWER),
                value(PARAM_CONNECTIVITY),
                value(PARAM_STATE),
            ],
            Theme::Food => {
                let mut v = vec![section(SECTION_BASIC), value(PARAM_ORIGIN)];
                if leaf.unit == UNIT_L {
                    v.push(value(PARAM_ADULTS));
                }
                v
            }
            Theme::Books => vec![section(SECTION_BASIC), value(PARAM_AGE)],
            Theme::Digital if leaf.vat != 0 => vec![section(SECTION_TECH), value(PARAM_FORMAT)],
            Theme::Digital | Theme::Services | Theme::Packaging => vec![],
        };
        let colour = colour.or_else(|| {
            (theme.has_variants() && rng.gen_bool(0.7)).then(|| index(rng, COLOURS.len()))
        });
        if let Some(c) = colour {
            // Colour goes right after the first section.
            let at = usize::from(!out.is_empty());
            out.insert(
                at,
                ProductParameter {
                    id: PARAM_COLOUR,
                    values: vec![value_id(PARAM_COLOUR, c)],
                },
            );
        }
        out
    }

    fn attachments(
        &self,
        rng: &mut ChaCha8Rng,
        id: ProductId,
        theme: Theme,
        leaf: &Leaf,
    ) -> Vec<Attachment> {
        let manual = || Attachment {
            url: format!("https://files.example.com/manuals/{id}.pdf"),
            name: texts(
                "Instrukcja obsługi & karta gwarancyjna",
                "User manual & warranty card",
            ),
            version: AttachmentVersion::Full,
            enable: AttachmentEnable::All,
            file_type: AttachmentType::Doc,
            extension: Some("pdf".into()),
            download_log: None,
            limit_downloads: None,
            limit_days: None,
        };
        match theme {
            Theme::Electronics if rng.gen_bool(0.5) => vec![manual()],
            Theme::Home if rng.gen_bool(0.1) => vec![manual()],
            Theme::Digital if leaf.vat != 0 => {
                let audio = leaf.eng == "Audiobooks";
                let (ext, file_type) = if audio {
                    ("mp3", AttachmentType::Audio)
                } else {
                    ("epub", AttachmentType::Document)
                };
                vec![
                    Attachment {
                        url: format!("https://files.example.com/digital/{id}/full.{ext}"),
                        name: texts("Plik do pobrania", "Download"),
                        version: AttachmentVersion::Full,
                        enable: AttachmentEnable::Ordered,
                        file_type,
                        extension: Some(ext.into()),
                        download_log: Some(true),
                        limit_downloads: Some(5),
                        limit_days: Some(30),
                    },
                    Attachment {
                        url: format!("https://files.example.com/digital/{id}/sample.{ext}"),
                        name: texts("Fragment na próbę", "Free sample"),
                        version: AttachmentVersion::Sample,
                        enable: AttachmentEnable::All,
                        file_type,
                        extension: Some(ext.into()),
                        download_log: None,
                        limit_downloads: None,
                        limit_days: None,
                    },
                ]
            }
            _ => vec![],
        }
    }

    /// Components: earlier regular products offered in every shop, sometimes restricted to
    /// some of their sizes.
    fn bundled(&self, rng: &mut ChaCha8Rng, id: ProductId, kind: ProductType) -> Bundled {
        let wanted = if kind == ProductType::Bundle {
            rng.gen_range(2..=4u32)
        } else {
            rng.gen_range(2..=5u32)
        };
        let mut components: Vec<BundledComponent> = Vec::new();
        for _ in 0..wanted {
            let mut found = None;
            for _ in 0..32 {
                let c = rng.gen_range(1..id);
                if components.iter().any(|x| x.id == c) {
                    continue;
                }
                let sk = self.skeleton(c);
                if sk.kind == ProductType::Regular && sk.only_shop.is_none() {
                    found = Some((c, sk));
                    break;
                }
            }
            let Some((c, sk)) = found else { continue };
            let fractional = dict::unit_is_fractional(self.leaf(sk.leaf).unit);
            let quantity = if fractional {
                Decimal::new(500, 3)
            } else {
                Decimal::from(rng.gen_range(1..=2u32))
            };
            let (choice, sizes) = match sk.sizes {
                Some(range) if rng.gen_bool(0.3) => {
                    let ids = range.ids();
                    let from = index(rng, ids.len());
                    let to = (from + 1 + index(rng, 2)).min(ids.len());
                    (
                        ComponentChoice::ClientChoosesDefinedSize,
                        ids[from..to].iter().map(|s| s.0.to_owned()).collect(),
                    )
                }
                _ if sk.family.is_some() && rng.gen_bool(0.3) => {
                    (ComponentChoice::ClientChoosesVariant, Vec::new())
                }
                _ => (ComponentChoice::ClientChoosesSize, Vec::new()),
            };
            components.push(BundledComponent {
                id: c,
                quantity,
                choice,
                sizes,
            });
        }
        if components.is_empty() {
            // Products 1..=ALWAYS_REGULAR are regular and in every shop.
            components.push(BundledComponent {
                id: 1,
                quantity: Decimal::ONE,
                choice: ComponentChoice::ClientChoosesSize,
                sizes: Vec::new(),
            });
        }
        Bundled {
            kind: if rng.gen_bool(0.5) {
                BundleType::Specified
            } else {
                BundleType::Unspecified
            },
            components,
        }
    }
}
