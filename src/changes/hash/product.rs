//! The canonical encoding of each main node of a product, from its own data.
//!
//! One function per node (or per family of alike nodes). [`hash_product`] decides which nodes
//! a product has and hashes each encoding; the functions only encode. Changing what any of
//! them writes changes persisted hashes: the golden test in `tests.rs` pins them.

use rust_decimal::Decimal;

use super::enc::{
    attachment_codes, bundle_type, code_standard, component_choice, product_type, Enc,
};
use super::{index, node_hash, Membership, ProductHashes, Refs, ABSENT, NODES};
use crate::catalog::MainNode;
use crate::catalog::{self, ArchivedProduct};

type OptId = rkyv::option::ArchivedOption<rkyv::rend::u64_le>;

fn opt(v: &OptId) -> Option<u64> {
    v.as_ref().map(|x| x.to_native())
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

    node(MainNode::Attributes, true, &mut |e| {
        let vat = catalog::decimal(vat);
        attributes(
            e,
            id.to_native(),
            code.as_ref(),
            producer_code_standard,
            kind,
            vat,
        )
    });
    for (n, v) in [
        (MainNode::Producer, producer),
        (MainNode::Category, category),
        (MainNode::Unit, unit),
        (MainNode::Series, series),
        (MainNode::Warranty, warranty),
    ] {
        // A dictionary reference: the entry's own hash is mixed in by `DictHashes::effective`.
        let v = opt(v);
        node(n, v.is_some(), &mut |e| e.opt_u64(v));
    }
    node(MainNode::Card, card_url.is_some(), &mut |e| {
        e.opt_str(card_url.as_ref())
    });
    node(
        MainNode::Description,
        has_description(description),
        &mut |e| self::description(e, description),
    );
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
            self::promotion(e, promo);
        }
    });
    // Sizes also show the product's prices they do not set: `DictHashes::effective` mixes the
    // price nodes' hashes in, so they are not encoded twice here.
    node(MainNode::Sizes, !sizes.is_empty(), &mut |e| {
        in_stock |= self::sizes(e, opt(size_group), sizes);
    });
    let has_icons =
        icons.icon.is_some() || icons.auction_icon.is_some() || icons.group_icon.is_some();
    node(
        MainNode::Images,
        !images.is_empty() || has_icons,
        &mut |e| self::images(e, images, icons),
    );
    node(MainNode::Parameters, !parameters.is_empty(), &mut |e| {
        self::parameters(e, parameters)
    });
    node(MainNode::Attachments, !attachments.is_empty(), &mut |e| {
        self::attachments(e, attachments)
    });
    node(MainNode::Group, group.is_some(), &mut |e| {
        if let Some(g) = group.as_ref() {
            self::group(e, g);
        }
    });
    node(MainNode::Bundled, bundled.is_some(), &mut |e| {
        if let Some(b) = bundled.as_ref() {
            self::bundled(e, b);
        }
    });

    ProductHashes {
        id: id.to_native(),
        membership: Membership {
            in_stock,
            shops: p.shops.iter().map(|s| s.to_native()).collect(),
            producer: opt(producer),
            category: opt(category),
            levels: super::levels(p),
            facts: true,
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

/// The product element's own attributes (the currency and site come from the profile).
fn attributes(
    e: &mut Enc,
    id: u64,
    code: Option<&rkyv::string::ArchivedString>,
    standard: &catalog::ArchivedCodeStandard,
    kind: &catalog::ArchivedProductType,
    vat: Decimal,
) {
    e.u64(id);
    e.opt_str(code);
    e.u8(code_standard(standard));
    e.u8(product_type(kind));
    e.dec(vat);
}

fn has_description(d: &catalog::ArchivedDescription) -> bool {
    !(d.name.is_empty()
        && d.short_desc.is_empty()
        && d.long_desc.is_empty()
        && d.version.is_empty())
}

fn description(e: &mut Enc, d: &catalog::ArchivedDescription) {
    let catalog::ArchivedDescription {
        name,
        short_desc,
        long_desc,
        version,
    } = d;
    for t in [name, short_desc, long_desc, version] {
        e.texts(t);
    }
}

fn promotion(e: &mut Enc, promo: &catalog::ArchivedPromotion) {
    e.str(promo.name.as_str());
    e.opt_str(promo.start_date.as_ref());
    e.opt_str(promo.ending_date.as_ref());
    e.price(&promo.price);
}

/// Encodes the sizes; returns whether any stock level counts as in stock.
fn sizes(e: &mut Enc, size_group: Option<u64>, sizes: &[catalog::ArchivedSize]) -> bool {
    let mut in_stock = false;
    e.opt_u64(size_group);
    e.len(sizes.len());
    for s in sizes {
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
    in_stock
}

fn images(e: &mut Enc, images: &[catalog::ArchivedImage], icons: &catalog::ArchivedIcons) {
    e.len(images.len());
    for i in images {
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
}

fn parameters(e: &mut Enc, parameters: &[catalog::ArchivedProductParameter]) {
    e.len(parameters.len());
    for pp in parameters {
        e.u64(pp.id.to_native());
        e.len(pp.values.len());
        for v in pp.values.iter() {
            e.u64(v.to_native());
        }
    }
}

fn attachments(e: &mut Enc, attachments: &[catalog::ArchivedAttachment]) {
    e.len(attachments.len());
    for a in attachments {
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
}

fn group(e: &mut Enc, g: &catalog::ArchivedGroup) {
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

fn bundled(e: &mut Enc, b: &catalog::ArchivedBundled) {
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
