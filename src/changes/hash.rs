//! Main-node hashes: what change detection compares.
//!
//! **Choice of canonical encoding.** Each main node is hashed from the *data* it is rendered
//! from, not from rendered XML. Rendering depends on partner settings (languages, currency,
//! wholesale, …), and no single "canonical profile" shows everything: a retail profile never
//! shows the wholesale price, a Polish one never the English name. Hashing the source data is
//! a superset of every profile's view, so a change that any partner could see changes the
//! hash; at worst a partner receives a node whose bytes did not change for it (harmless:
//! replacing a node with itself). It is also cheap: the archived fields are fed straight into
//! a reused buffer (length-prefixed, tagged options, decimals normalized because the writers
//! print values, not scales) and blake3 hashes each node's slice once.
//!
//! **Dictionaries.** Producer, category, unit, series, warranty, sizes (size group) and
//! parameters also show dictionary data: a renamed producer changes the `<producer>` node of
//! all its products. Such a node's hash is `blake3(own ‖ entry…)`: the product's own data
//! plus the hash of each dictionary entry it references ([`DictHashes`]; a category's entry
//! hash covers its whole path). The own part depends only on the shard's content, so it is
//! stored per content-addressed shard and never recomputed for an unchanged shard; the entry
//! part depends only on the dictionaries. A dictionary edit therefore costs a scan for
//! products referencing the changed entries, not a rehash of the catalog.
//!
//! Hashes are blake3 truncated to 128 bits: ample for change detection (a missed change needs
//! a 2^-128 collision) at half the storage.

use std::collections::HashMap;
use std::ops::ControlFlow;

use rust_decimal::Decimal;

use crate::catalog::{
    self, ArchivedAttachmentEnable, ArchivedAttachmentType, ArchivedAttachmentVersion,
    ArchivedBundleType, ArchivedCodeStandard, ArchivedComponentChoice, ArchivedDictionaries,
    ArchivedImage, ArchivedPrice, ArchivedPrices, ArchivedProduct, ArchivedProductType, Category,
    Parameter, Producer, ProductId, Series, SizeGroup, Texts, Unit, Warranty,
};
use crate::render::{MainNode, RenderProfile};

/// Number of main nodes ([`MainNode::ALL`]).
pub const NODES: usize = MainNode::ALL.len();

// Presence masks (hash store, log) are u32.
const _: () = assert!(NODES <= 32);

/// A 128-bit node hash.
pub type NodeHash = [u8; 16];

/// The hash of a node the product does not have.
pub const ABSENT: NodeHash = [0; 16];

/// Position of a node in per-node arrays (its declaration order).
#[inline]
pub fn index(node: MainNode) -> usize {
    node as usize
}

fn hash16(bytes: &[u8]) -> NodeHash {
    let full = blake3::hash(bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full.as_bytes()[..16]);
    out
}

/// A node's hash from its canonical encoding. An encoding of at most 15 bytes (a reference
/// to a dictionary entry, say) is kept verbatim behind a length tag instead: exact, and a
/// blake3 compression saved. It differs from every other such value, from [`ABSENT`], and
/// from a blake3 output except with probability 2^-128, like any two hashes.
fn node_hash(encoding: &[u8]) -> NodeHash {
    if encoding.len() < 16 {
        let mut out = [0u8; 16];
        out[0] = 0x80 | encoding.len() as u8;
        out[1..=encoding.len()].copy_from_slice(encoding);
        out
    } else {
        hash16(encoding)
    }
}

/// What decides whether a product is part of a profile's offer: the shops it is offered in
/// and whether any size is in stock. Kept beside the hashes so that membership at the start
/// of a window is known after the product itself changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    pub in_stock: bool,
    /// Empty means every shop.
    pub shops: Vec<u32>,
}

impl Membership {
    /// The membership of a product.
    pub fn of(p: &ArchivedProduct) -> Self {
        Membership {
            in_stock: p.in_stock(),
            shops: p.shops.iter().map(|s| s.to_native()).collect(),
        }
    }

    /// The same decision as [`crate::render::includes`], from the kept facts.
    pub fn includes(&self, profile: &RenderProfile) -> bool {
        let in_shop = self.shops.is_empty() || self.shops.contains(&profile.shop);
        in_shop && (!profile.only_in_stock || self.in_stock)
    }
}

/// The dictionary entries a product references, to resolve its dictionary-dependent nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refs {
    pub producer: Option<u64>,
    pub category: Option<u64>,
    pub unit: Option<u64>,
    pub series: Option<u64>,
    pub warranty: Option<u64>,
    pub size_group: Option<u64>,
    /// Parameter-dictionary ids, in the product's order.
    pub parameters: Vec<u64>,
}

/// A product's own-data node hashes, membership and dictionary references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductHashes {
    pub id: ProductId,
    pub membership: Membership,
    pub refs: Refs,
    /// Indexed by [`index`]; [`ABSENT`] for nodes the product lacks.
    pub own: [NodeHash; NODES],
}

/// Length-prefixed, tagged field encoding into a reused buffer.
struct Enc<'b>(&'b mut Vec<u8>);

impl Enc<'_> {
    #[inline]
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    #[inline]
    fn u32(&mut self, v: u32) {
        self.u64(u64::from(v));
    }
    /// LEB128: ids, counts and lengths are mostly small, and fewer bytes are fewer blake3
    /// compressions. Prefix-free, so the encoding stays unambiguous.
    #[inline]
    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    #[inline]
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    #[inline]
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&rkyv::string::ArchivedString>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s.as_str());
            }
            None => self.u8(0),
        }
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u32(v);
            }
            None => self.u8(0),
        }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
    /// Normalized (`10` and `10.00` print the same, so they hash the same), then as scale
    /// and the mantissa's significant little-endian bytes: typical amounts take 3 to 5 bytes.
    #[inline]
    fn dec(&mut self, d: Decimal) {
        let d = d.normalize();
        let m = d.mantissa();
        // Two's complement, without the high bytes that only repeat the sign.
        let magnitude_bits = 128 - (if m < 0 { !m } else { m }).leading_zeros();
        let n = (magnitude_bits as usize + 1).div_ceil(8);
        self.u8(d.scale() as u8);
        self.u8(n as u8);
        self.0.extend_from_slice(&m.to_le_bytes()[..n]);
    }
    fn texts(&mut self, t: &<Texts as rkyv::Archive>::Archived) {
        self.len(t.len());
        // `visit` walks the archived tree in key order without allocating.
        t.visit(|k, v| {
            self.str(k.as_str());
            self.str(v.as_str());
            ControlFlow::<()>::Continue(())
        });
    }
    fn price(&mut self, p: &ArchivedPrice) {
        self.dec(catalog::decimal(&p.net));
        self.dec(catalog::decimal(&p.gross));
    }
    fn opt_price(&mut self, p: Option<&ArchivedPrice>) {
        match p {
            Some(p) => {
                self.u8(1);
                self.price(p);
            }
            None => self.u8(0),
        }
    }
    fn prices(&mut self, p: &ArchivedPrices) {
        let ArchivedPrices {
            retail,
            wholesale,
            srp,
            strikethrough_retail,
            strikethrough_wholesale,
        } = p;
        for price in [
            retail,
            wholesale,
            srp,
            strikethrough_retail,
            strikethrough_wholesale,
        ] {
            self.opt_price(price.as_ref());
        }
    }
    fn image(&mut self, i: &ArchivedImage) {
        let ArchivedImage {
            url,
            md5,
            changed,
            width,
            height,
        } = i;
        self.str(url.as_str());
        self.opt_str(md5.as_ref());
        self.opt_str(changed.as_ref());
        self.opt_u32(width.as_ref().map(|x| x.to_native()));
        self.opt_u32(height.as_ref().map(|x| x.to_native()));
    }
    fn opt_image(&mut self, i: Option<&ArchivedImage>) {
        match i {
            Some(i) => {
                self.u8(1);
                self.image(i);
            }
            None => self.u8(0),
        }
    }
}

fn product_type(t: &ArchivedProductType) -> u8 {
    match t {
        ArchivedProductType::Regular => 0,
        ArchivedProductType::Bundle => 1,
        ArchivedProductType::Collection => 2,
        ArchivedProductType::Packaging => 3,
        ArchivedProductType::Virtual => 4,
        ArchivedProductType::Service => 5,
    }
}

fn code_standard(c: &ArchivedCodeStandard) -> u8 {
    match c {
        ArchivedCodeStandard::Auto => 0,
        ArchivedCodeStandard::Gtin14 => 1,
        ArchivedCodeStandard::Gtin13 => 2,
        ArchivedCodeStandard::Gtin12 => 3,
        ArchivedCodeStandard::Gtin8 => 4,
        ArchivedCodeStandard::Isbn13 => 5,
        ArchivedCodeStandard::Isbn10 => 6,
        ArchivedCodeStandard::Upce => 7,
        ArchivedCodeStandard::Mpn => 8,
        ArchivedCodeStandard::Other => 9,
    }
}

fn attachment_codes(
    v: &ArchivedAttachmentVersion,
    e: &ArchivedAttachmentEnable,
    t: &ArchivedAttachmentType,
) -> [u8; 3] {
    let v = match v {
        ArchivedAttachmentVersion::Full => 0,
        ArchivedAttachmentVersion::Sample => 1,
        ArchivedAttachmentVersion::Demo => 2,
    };
    let e = match e {
        ArchivedAttachmentEnable::All => 0,
        ArchivedAttachmentEnable::OnlyLogged => 1,
        ArchivedAttachmentEnable::Ordered => 2,
        ArchivedAttachmentEnable::Wholesaler => 3,
        ArchivedAttachmentEnable::WholesalerOrOrdered => 4,
        ArchivedAttachmentEnable::WholesalerAndOrdered => 5,
    };
    let t = match t {
        ArchivedAttachmentType::Image => 0,
        ArchivedAttachmentType::Audio => 1,
        ArchivedAttachmentType::Video => 2,
        ArchivedAttachmentType::Doc => 3,
        ArchivedAttachmentType::Document => 4,
        ArchivedAttachmentType::Other => 5,
    };
    [v, e, t]
}

fn bundle_type(t: &ArchivedBundleType) -> u8 {
    match t {
        ArchivedBundleType::Unspecified => 0,
        ArchivedBundleType::Specified => 1,
    }
}

fn component_choice(c: &ArchivedComponentChoice) -> u8 {
    match c {
        ArchivedComponentChoice::ClientChoosesSize => 0,
        ArchivedComponentChoice::ClientChoosesVariant => 1,
        ArchivedComponentChoice::ClientChoosesDefinedSize => 2,
        ArchivedComponentChoice::ClientChoosesDefinedSizeAsSeparateItems => 3,
    }
}

/// Hash every main node of a product from its own data. `scratch` is reused between calls.
pub fn hash_product(p: &ArchivedProduct, scratch: &mut Vec<u8>) -> ProductHashes {
    // Destructured without `..`: a field added to the model fails to compile here until it
    // is assigned to a node (or deliberately ignored), so no change can go unnoticed.
    let ArchivedProduct {
        id,
        kind,
        vat,
        code,
        producer_code_standard,
        shops: _, // membership, not a node
        producer,
        category,
        unit,
        series,
        warranty,
        size_group,
        card_url,
        description,
        prices,
        promotion,
        sizes,
        images,
        icons,
        parameters,
        attachments,
        group,
        bundled,
        stock: _, // input convenience only: always empty in the store
    } = p;
    let mut own = [ABSENT; NODES];
    // Computed while the stock levels are encoded: `ArchivedProduct::in_stock`'s rule.
    let mut in_stock = false;
    let mut node = |n: MainNode, present: bool, encode: &mut dyn FnMut(&mut Enc)| {
        if present {
            scratch.clear();
            encode(&mut Enc(scratch));
            own[index(n)] = node_hash(scratch);
        }
    };
    let opt =
        |v: &rkyv::option::ArchivedOption<rkyv::rend::u64_le>| v.as_ref().map(|x| x.to_native());

    node(MainNode::Attributes, true, &mut |e| {
        e.u64(id.to_native());
        e.opt_str(code.as_ref());
        e.u8(code_standard(producer_code_standard));
        e.u8(product_type(kind));
        e.dec(catalog::decimal(vat));
    });
    for (n, v) in [
        (MainNode::Producer, producer),
        (MainNode::Category, category),
        (MainNode::Unit, unit),
        (MainNode::Series, series),
        (MainNode::Warranty, warranty),
    ] {
        let v = opt(v);
        node(n, v.is_some(), &mut |e| e.opt_u64(v));
    }
    node(MainNode::Card, card_url.is_some(), &mut |e| {
        e.opt_str(card_url.as_ref())
    });
    let d = description;
    let has_description = !(d.name.is_empty()
        && d.short_desc.is_empty()
        && d.long_desc.is_empty()
        && d.version.is_empty());
    node(MainNode::Description, has_description, &mut |e| {
        let catalog::ArchivedDescription {
            name,
            short_desc,
            long_desc,
            version,
        } = d;
        for t in [name, short_desc, long_desc, version] {
            e.texts(t);
        }
    });
    // <price> is the retail price, or the wholesale one for wholesale profiles.
    let (retail, wholesale) = (prices.retail.as_ref(), prices.wholesale.as_ref());
    node(
        MainNode::Price,
        retail.is_some() || wholesale.is_some(),
        &mut |e| {
            e.opt_price(retail);
            e.opt_price(wholesale);
        },
    );
    for (n, price) in [
        (MainNode::Srp, prices.srp.as_ref()),
        (
            MainNode::StrikethroughRetail,
            prices.strikethrough_retail.as_ref(),
        ),
        (
            MainNode::StrikethroughWholesale,
            prices.strikethrough_wholesale.as_ref(),
        ),
    ] {
        node(n, price.is_some(), &mut |e| e.opt_price(price));
    }
    node(MainNode::Promotion, promotion.is_some(), &mut |e| {
        if let Some(promo) = promotion.as_ref() {
            e.str(promo.name.as_str());
            e.opt_str(promo.start_date.as_ref());
            e.opt_str(promo.ending_date.as_ref());
            e.price(&promo.price);
        }
    });
    // Sizes also show the product's prices they do not set: `DictHashes::effective` mixes the
    // price nodes' hashes in, so they are not encoded twice here.
    node(MainNode::Sizes, !sizes.is_empty(), &mut |e| {
        e.opt_u64(opt(size_group));
        e.len(sizes.len());
        for s in sizes.iter() {
            let catalog::ArchivedSize {
                id,
                code,
                code_producer,
                code_external,
                weight,
                weight_net,
                prices,
                stock,
            } = s;
            e.str(id.as_str());
            e.str(code.as_str());
            e.opt_str(code_producer.as_ref());
            e.opt_str(code_external.as_ref());
            e.opt_u32(weight.as_ref().map(|x| x.to_native()));
            e.opt_u32(weight_net.as_ref().map(|x| x.to_native()));
            e.prices(prices);
            e.len(stock.len());
            for level in stock.iter() {
                let catalog::ArchivedStockLevel {
                    warehouse,
                    quantity,
                    physical,
                    location,
                } = level;
                e.u32(warehouse.to_native());
                let q = catalog::decimal(quantity);
                in_stock |= q > Decimal::ZERO || q == Decimal::NEGATIVE_ONE;
                e.dec(q);
                match physical.as_ref() {
                    Some(q) => {
                        e.u8(1);
                        e.dec(catalog::decimal(q));
                    }
                    None => e.u8(0),
                }
                e.opt_str(location.as_ref());
            }
        }
    });
    let has_icons =
        icons.icon.is_some() || icons.auction_icon.is_some() || icons.group_icon.is_some();
    node(
        MainNode::Images,
        !images.is_empty() || has_icons,
        &mut |e| {
            e.len(images.len());
            for i in images.iter() {
                e.image(i);
            }
            let catalog::ArchivedIcons {
                icon,
                auction_icon,
                group_icon,
            } = icons;
            for i in [icon, auction_icon, group_icon] {
                e.opt_image(i.as_ref());
            }
        },
    );
    node(MainNode::Parameters, !parameters.is_empty(), &mut |e| {
        e.len(parameters.len());
        for pp in parameters.iter() {
            e.u64(pp.id.to_native());
            e.len(pp.values.len());
            for v in pp.values.iter() {
                e.u64(v.to_native());
            }
        }
    });
    node(MainNode::Attachments, !attachments.is_empty(), &mut |e| {
        e.len(attachments.len());
        for a in attachments.iter() {
            let catalog::ArchivedAttachment {
                url,
                name,
                version,
                enable,
                file_type,
                extension,
                download_log,
                limit_downloads,
                limit_days,
            } = a;
            e.str(url.as_str());
            e.texts(name);
            for c in attachment_codes(version, enable, file_type) {
                e.u8(c);
            }
            e.opt_str(extension.as_ref());
            e.u8(match download_log.as_ref() {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
            e.opt_u32(limit_downloads.as_ref().map(|x| x.to_native()));
            e.opt_u32(limit_days.as_ref().map(|x| x.to_native()));
        }
    });
    node(MainNode::Group, group.is_some(), &mut |e| {
        if let Some(g) = group.as_ref() {
            let catalog::ArchivedGroup {
                id,
                first_product_id,
                by_parameter_id,
                by_parameter_name,
                value_id,
                value_name,
            } = g;
            e.u64(id.to_native());
            e.u64(first_product_id.to_native());
            e.str(by_parameter_id.as_str());
            e.texts(by_parameter_name);
            e.str(value_id.as_str());
            e.texts(value_name);
        }
    });
    node(MainNode::Bundled, bundled.is_some(), &mut |e| {
        if let Some(b) = bundled.as_ref() {
            e.u8(bundle_type(&b.kind));
            e.len(b.components.len());
            for c in b.components.iter() {
                e.u64(c.id.to_native());
                e.dec(catalog::decimal(&c.quantity));
                e.u8(component_choice(&c.choice));
                e.len(c.sizes.len());
                for s in c.sizes.iter() {
                    e.str(s.as_str());
                }
            }
        }
    });

    ProductHashes {
        id: id.to_native(),
        membership: Membership {
            in_stock,
            shops: p.shops.iter().map(|s| s.to_native()).collect(),
        },
        refs: Refs {
            producer: opt(producer),
            category: opt(category),
            unit: opt(unit),
            series: opt(series),
            warranty: opt(warranty),
            size_group: opt(size_group),
            parameters: parameters.iter().map(|pp| pp.id.to_native()).collect(),
        },
        own,
    }
}

/// Hash every product of a shard.
pub fn hash_products(products: &[ArchivedProduct]) -> Vec<ProductHashes> {
    let mut scratch = Vec::with_capacity(16 * 1024);
    products
        .iter()
        .map(|p| hash_product(p, &mut scratch))
        .collect()
}

/// Hash of every dictionary entry a product node can show, by dictionary and id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DictHashes {
    pub producers: HashMap<u64, NodeHash>,
    /// Covers the entry and all its ancestors: the rendered path.
    pub categories: HashMap<u64, NodeHash>,
    pub units: HashMap<u64, NodeHash>,
    pub series: HashMap<u64, NodeHash>,
    pub warranties: HashMap<u64, NodeHash>,
    pub size_groups: HashMap<u64, NodeHash>,
    pub parameters: HashMap<u64, NodeHash>,
}

/// Entry ids whose hash differs between two [`DictHashes`] (added and removed included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedEntries {
    pub producers: std::collections::HashSet<u64>,
    pub categories: std::collections::HashSet<u64>,
    pub units: std::collections::HashSet<u64>,
    pub series: std::collections::HashSet<u64>,
    pub warranties: std::collections::HashSet<u64>,
    pub size_groups: std::collections::HashSet<u64>,
    pub parameters: std::collections::HashSet<u64>,
}

/// The hash of a dictionary entry that does not exist (distinct from [`ABSENT`] nodes only in
/// name: a missing entry is mixed into the referencing node's hash).
const MISSING: NodeHash = [0; 16];

/// Why dictionary hashes could not be computed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read dictionary entry {what}: {reason}")]
pub struct DictHashError {
    what: String,
    reason: String,
}

fn entry_hash<A, T>(archived: &A, what: impl Fn() -> String) -> Result<NodeHash, DictHashError>
where
    A: rkyv::Deserialize<T, rkyv::rancor::Strategy<rkyv::de::Pool, rkyv::rancor::Error>>,
    T: serde::Serialize,
{
    let owned: T =
        rkyv::deserialize::<T, rkyv::rancor::Error>(archived).map_err(|e| DictHashError {
            what: what(),
            reason: e.to_string(),
        })?;
    // serde_json writes struct fields in declaration order and maps sorted: canonical.
    let json = serde_json::to_vec(&owned).map_err(|e| DictHashError {
        what: what(),
        reason: e.to_string(),
    })?;
    Ok(hash16(&json))
}

impl DictHashes {
    /// Hash every entry of the dictionaries. Proportional to their size; done once per
    /// dictionaries content.
    pub fn new(d: &ArchivedDictionaries) -> Result<Self, DictHashError> {
        fn table<A, T>(
            items: &[A],
            id: impl Fn(&A) -> u64,
            kind: &str,
        ) -> Result<HashMap<u64, NodeHash>, DictHashError>
        where
            A: rkyv::Deserialize<T, rkyv::rancor::Strategy<rkyv::de::Pool, rkyv::rancor::Error>>,
            T: serde::Serialize,
        {
            items
                .iter()
                .map(|x| {
                    Ok((
                        id(x),
                        entry_hash::<A, T>(x, || format!("{kind} {}", id(x)))?,
                    ))
                })
                .collect()
        }
        let own_categories: HashMap<u64, (NodeHash, Option<u64>)> = d
            .categories
            .iter()
            .map(|c| {
                let id = c.id.to_native();
                let h = entry_hash::<_, Category>(c, || format!("category {id}"))?;
                Ok((id, (h, c.parent.as_ref().map(|p| p.to_native()))))
            })
            .collect::<Result<_, DictHashError>>()?;
        // A category's path runs up its parents until a missing one or a cycle.
        let mut categories = HashMap::with_capacity(own_categories.len());
        let mut seen = Vec::new();
        for &id in own_categories.keys() {
            seen.clear();
            let mut chain = Vec::with_capacity(64);
            let mut at = Some(id);
            while let Some(c) = at {
                if seen.contains(&c) {
                    break;
                }
                seen.push(c);
                match own_categories.get(&c) {
                    Some((h, parent)) => {
                        chain.extend_from_slice(h);
                        at = *parent;
                    }
                    None => break,
                }
            }
            categories.insert(id, hash16(&chain));
        }
        Ok(DictHashes {
            producers: table::<_, Producer>(&d.producers, |x| x.id.to_native(), "producer")?,
            categories,
            units: table::<_, Unit>(&d.units, |x| x.id.to_native(), "unit")?,
            series: table::<_, Series>(&d.series, |x| x.id.to_native(), "series")?,
            warranties: table::<_, Warranty>(&d.warranties, |x| x.id.to_native(), "warranty")?,
            size_groups: table::<_, SizeGroup>(&d.size_groups, |x| x.id.to_native(), "size group")?,
            parameters: table::<_, Parameter>(&d.parameters, |x| x.id.to_native(), "parameter")?,
        })
    }

    fn tables(&self) -> [&HashMap<u64, NodeHash>; 7] {
        [
            &self.producers,
            &self.categories,
            &self.units,
            &self.series,
            &self.warranties,
            &self.size_groups,
            &self.parameters,
        ]
    }

    fn tables_mut(&mut self) -> [&mut HashMap<u64, NodeHash>; 7] {
        [
            &mut self.producers,
            &mut self.categories,
            &mut self.units,
            &mut self.series,
            &mut self.warranties,
            &mut self.size_groups,
            &mut self.parameters,
        ]
    }

    /// The entries that differ from `other`'s.
    pub fn changed_since(&self, old: &DictHashes) -> ChangedEntries {
        fn diff(
            new: &HashMap<u64, NodeHash>,
            old: &HashMap<u64, NodeHash>,
        ) -> std::collections::HashSet<u64> {
            let mut out: std::collections::HashSet<u64> = new
                .iter()
                .filter(|(id, h)| old.get(id) != Some(h))
                .map(|(id, _)| *id)
                .collect();
            out.extend(old.keys().filter(|id| !new.contains_key(id)));
            out
        }
        let [p, c, u, s, w, g, m] = self.tables();
        let [op, oc, ou, os, ow, og, om] = old.tables();
        ChangedEntries {
            producers: diff(p, op),
            categories: diff(c, oc),
            units: diff(u, ou),
            series: diff(s, os),
            warranties: diff(w, ow),
            size_groups: diff(g, og),
            parameters: diff(m, om),
        }
    }

    /// The node hashes as rendered: own data mixed with the referenced entries' hashes.
    pub fn effective(&self, h: &ProductHashes) -> [NodeHash; NODES] {
        let mut out = h.own;
        let mix = |own: &NodeHash, entries: &mut dyn Iterator<Item = NodeHash>| {
            let mut buf = Vec::with_capacity(64);
            buf.extend_from_slice(own);
            for e in entries {
                buf.extend_from_slice(&e);
            }
            hash16(&buf)
        };
        let get = |table: &HashMap<u64, NodeHash>, id: Option<u64>| {
            id.and_then(|id| table.get(&id).copied()).unwrap_or(MISSING)
        };
        let singles = [
            (MainNode::Producer, &self.producers, h.refs.producer),
            (MainNode::Category, &self.categories, h.refs.category),
            (MainNode::Unit, &self.units, h.refs.unit),
            (MainNode::Series, &self.series, h.refs.series),
            (MainNode::Warranty, &self.warranties, h.refs.warranty),
        ];
        for (node, table, id) in singles {
            let own = &h.own[index(node)];
            if *own != ABSENT {
                out[index(node)] = mix(own, &mut std::iter::once(get(table, id)));
            }
        }
        // Sizes show their size group's names and the product prices they inherit.
        let own = &h.own[index(MainNode::Sizes)];
        if *own != ABSENT {
            let inherited = [
                MainNode::Price,
                MainNode::Srp,
                MainNode::StrikethroughRetail,
                MainNode::StrikethroughWholesale,
            ]
            .map(|n| h.own[index(n)]);
            out[index(MainNode::Sizes)] = mix(
                own,
                &mut std::iter::once(get(&self.size_groups, h.refs.size_group)).chain(inherited),
            );
        }
        let own = &h.own[index(MainNode::Parameters)];
        if *own != ABSENT {
            out[index(MainNode::Parameters)] = mix(
                own,
                &mut h
                    .refs
                    .parameters
                    .iter()
                    .map(|id| get(&self.parameters, Some(*id))),
            );
        }
        out
    }

    /// Encode for the hash store (see [`super::store`]).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for table in self.tables() {
            let mut entries: Vec<_> = table.iter().collect();
            entries.sort_unstable_by_key(|(id, _)| **id);
            out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
            for (id, h) in entries {
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(h);
            }
        }
    }

    /// Decode what [`DictHashes::encode`] wrote.
    pub(crate) fn decode(mut bytes: &[u8]) -> Option<Self> {
        let mut out = DictHashes::default();
        for table in out.tables_mut() {
            let n = take_u64(&mut bytes)?;
            for _ in 0..n {
                let id = take_u64(&mut bytes)?;
                let h: NodeHash = take(&mut bytes, 16)?.try_into().ok()?;
                table.insert(id, h);
            }
        }
        bytes.is_empty().then_some(out)
    }
}

impl ChangedEntries {
    /// True when no entry a product node shows changed.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
            && self.categories.is_empty()
            && self.units.is_empty()
            && self.series.is_empty()
            && self.warranties.is_empty()
            && self.size_groups.is_empty()
            && self.parameters.is_empty()
    }

    /// Does a product with these references show a changed entry?
    pub fn touches(&self, r: &Refs) -> bool {
        let hit = |set: &std::collections::HashSet<u64>, id: Option<u64>| {
            id.is_some_and(|id| set.contains(&id))
        };
        hit(&self.producers, r.producer)
            || hit(&self.categories, r.category)
            || hit(&self.units, r.unit)
            || hit(&self.series, r.series)
            || hit(&self.warranties, r.warranty)
            || hit(&self.size_groups, r.size_group)
            || r.parameters.iter().any(|id| self.parameters.contains(id))
    }

    /// The same test on an archived product, without hashing it (the scan of unchanged
    /// shards after a dictionary edit).
    pub fn touches_product(&self, p: &ArchivedProduct) -> bool {
        let hit = |set: &std::collections::HashSet<u64>,
                   id: &rkyv::option::ArchivedOption<rkyv::rend::u64_le>| {
            !set.is_empty() && id.as_ref().is_some_and(|id| set.contains(&id.to_native()))
        };
        hit(&self.producers, &p.producer)
            || hit(&self.categories, &p.category)
            || hit(&self.units, &p.unit)
            || hit(&self.series, &p.series)
            || hit(&self.warranties, &p.warranty)
            || hit(&self.size_groups, &p.size_group)
            || (!self.parameters.is_empty()
                && p.parameters
                    .iter()
                    .any(|pp| self.parameters.contains(&pp.id.to_native())))
    }
}

pub(crate) fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Some(head)
}

pub(crate) fn take_u64(bytes: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(bytes, 8)?.try_into().ok()?))
}

pub(crate) fn take_u32(bytes: &mut &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?))
}

pub(crate) fn take_u8(bytes: &mut &[u8]) -> Option<u8> {
    Some(take(bytes, 1)?[0])
}

/// Binary form of a shard's [`ProductHashes`], for the hash store.
pub(crate) fn encode_products(products: &[ProductHashes], out: &mut Vec<u8>) {
    out.extend_from_slice(&(products.len() as u64).to_le_bytes());
    for h in products {
        out.extend_from_slice(&h.id.to_le_bytes());
        encode_membership(&h.membership, out);
        let r = &h.refs;
        let singles = [
            r.producer,
            r.category,
            r.unit,
            r.series,
            r.warranty,
            r.size_group,
        ];
        let mask = singles
            .iter()
            .enumerate()
            .fold(0u8, |m, (i, v)| m | (u8::from(v.is_some()) << i));
        out.push(mask);
        for v in singles.into_iter().flatten() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(r.parameters.len() as u32).to_le_bytes());
        for id in &r.parameters {
            out.extend_from_slice(&id.to_le_bytes());
        }
        let present = h
            .own
            .iter()
            .enumerate()
            .fold(0u32, |m, (i, x)| m | (u32::from(*x != ABSENT) << i));
        out.extend_from_slice(&present.to_le_bytes());
        for x in h.own.iter().filter(|x| **x != ABSENT) {
            out.extend_from_slice(x);
        }
    }
}

/// Decode what [`encode_products`] wrote; `None` when malformed.
pub(crate) fn decode_products(mut bytes: &[u8]) -> Option<Vec<ProductHashes>> {
    let n = take_u64(&mut bytes)?;
    // Each product takes at least 8 + 4 + 1 + 4 + 4 bytes: bound the allocation by the input.
    let mut out = Vec::with_capacity((n as usize).min(bytes.len() / 21));
    for _ in 0..n {
        let id = take_u64(&mut bytes)?;
        let membership = decode_membership(&mut bytes)?;
        let mask = take_u8(&mut bytes)?;
        let mut singles = [None; 6];
        for (i, slot) in singles.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *slot = Some(take_u64(&mut bytes)?);
            }
        }
        let count = take_u32(&mut bytes)?;
        let mut parameters = Vec::with_capacity((count as usize).min(bytes.len() / 8));
        for _ in 0..count {
            parameters.push(take_u64(&mut bytes)?);
        }
        let present = take_u32(&mut bytes)?;
        let mut own = [ABSENT; NODES];
        for (i, slot) in own.iter_mut().enumerate() {
            if present & (1 << i) != 0 {
                *slot = take(&mut bytes, 16)?.try_into().ok()?;
            }
        }
        let [producer, category, unit, series, warranty, size_group] = singles;
        out.push(ProductHashes {
            id,
            membership,
            refs: Refs {
                producer,
                category,
                unit,
                series,
                warranty,
                size_group,
                parameters,
            },
            own,
        });
    }
    bytes.is_empty().then_some(out)
}

pub(crate) fn encode_membership(m: &Membership, out: &mut Vec<u8>) {
    out.push(u8::from(m.in_stock));
    out.extend_from_slice(&(m.shops.len() as u32).to_le_bytes());
    for s in &m.shops {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

pub(crate) fn decode_membership(bytes: &mut &[u8]) -> Option<Membership> {
    let in_stock = match take_u8(bytes)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let n = take_u32(bytes)?;
    let mut shops = Vec::with_capacity((n as usize).min(bytes.len() / 4));
    for _ in 0..n {
        shops.push(take_u32(bytes)?);
    }
    Some(Membership { in_stock, shops })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::sample::{sample_dictionaries, sample_products};
    use crate::catalog::{Dictionaries, Product};
    use crate::render::{self, Format};

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
            lines.push(format!("{} {:?} {:?}", p.id, h.membership, h.refs));
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
                    let pr = profile(shop, only);
                    assert_eq!(
                        m.includes(&pr),
                        render::includes(&pr, a),
                        "product {}",
                        p.id
                    );
                }
            }
        }
    }
}
