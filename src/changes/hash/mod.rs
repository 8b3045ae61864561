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

mod codec;
mod dicts;
mod enc;
mod product;
#[cfg(test)]
mod tests;

use rust_decimal::Decimal;

use crate::catalog::rules::{Subject, Tree};
use crate::catalog::{ArchivedProduct, ProductId};
use crate::catalog::{MainNode, RenderProfile};

pub(crate) use codec::{
    decode_membership, decode_products, encode_membership, encode_products, take, take_u32,
    take_u64, take_u8,
};
pub use dicts::{ChangedEntries, DictHashError, DictHashes};
pub use product::hash_product;

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

/// What decides whether a product is part of a profile's offer: the shops it is offered in,
/// whether any size is in stock, and what partner rules read (producer, category, stock
/// levels). Kept beside the hashes so that membership at the start of a window is known
/// after the product itself changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    pub in_stock: bool,
    /// Empty means every shop.
    pub shops: Vec<u32>,
    pub producer: Option<u64>,
    pub category: Option<u64>,
    /// Every size's stock levels as (warehouse, quantity), in the product's order.
    pub levels: Vec<(u32, Decimal)>,
    /// Whether `producer`, `category` and `levels` are known: false for memberships stored
    /// before partner rules (hash files and log frames of an earlier version).
    pub facts: bool,
}

impl Membership {
    /// The membership of a product.
    pub fn of(p: &ArchivedProduct) -> Self {
        let s = crate::catalog::subject(p);
        Membership {
            in_stock: p.in_stock(),
            shops: p.shops.iter().map(|s| s.to_native()).collect(),
            producer: s.producer,
            category: s.category,
            levels: levels(p),
            facts: true,
        }
    }

    /// [`RenderProfile::includes`] of product `id`, from the facts kept of it; `tree`
    /// resolves category subtrees.
    pub fn includes(&self, id: ProductId, profile: &RenderProfile, tree: &impl Tree) -> bool {
        let in_shop = self.shops.is_empty() || self.shops.contains(&profile.shop);
        if profile.rules.assortment.is_empty() && profile.rules.stock.is_empty() {
            return in_shop && (!profile.only_in_stock || self.in_stock);
        }
        profile.admits(in_shop, self.subject(id), tree, self.levels.iter().copied())
    }

    /// What price rules select by.
    pub fn subject(&self, id: ProductId) -> Subject {
        Subject {
            id,
            producer: self.producer,
            category: self.category,
        }
    }
}

/// A product's stock levels as [`Membership`] keeps them.
pub fn levels(p: &ArchivedProduct) -> Vec<(u32, Decimal)> {
    p.sizes
        .iter()
        .flat_map(|s| s.stock.iter())
        .map(|l| {
            (
                l.warehouse.to_native(),
                crate::catalog::decimal(&l.quantity),
            )
        })
        .collect()
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

/// Hash every product of a shard.
pub fn hash_products(products: &[ArchivedProduct]) -> Vec<ProductHashes> {
    let mut scratch = Vec::with_capacity(16 * 1024);
    products
        .iter()
        .map(|p| hash_product(p, &mut scratch))
        .collect()
}
