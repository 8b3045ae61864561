//! The bytes of change files.

use std::io::{self, Write};

use crate::catalog::{MainNode, ProductId, RenderProfile};
use crate::changes::Entry;
use crate::render::{self, DictIndex, OfferMeta};
use crate::snapshot::Snapshot;

/// Write a `full_change` file: the full.xml header, one entry per product (by id), footer.
///
/// A node that is gone at the window's end (a producer unset, a promotion ended, texts left
/// only in languages the profile does not show) cannot be expressed by leaving it out: a
/// consumer keeps nodes a change file omits. Such a product is written as
/// `<product id=".." removed="yes"/>` immediately followed by the whole product, so a
/// consumer that applies the file's products in document order (delete, then insert) ends
/// with exactly the current product.
pub fn write_change_file(
    w: &mut impl Write,
    profile: &RenderProfile,
    dicts: &DictIndex,
    snapshot: &Snapshot,
    entries: &[(ProductId, Entry)],
    meta: &OfferMeta,
) -> io::Result<()> {
    render::write_full_header(w, profile, meta)?;
    let mut scratch = Vec::new();
    for (id, entry) in entries {
        let Some(p) = snapshot.product(*id) else {
            // Not in the window's final state: nothing else can be said about it.
            render::write_removed_product(w, *id)?;
            continue;
        };
        match entry {
            Entry::Removed => render::write_removed_product(w, *id)?,
            // A whole product the window's end does not include is a removal.
            Entry::Whole if !profile.includes(p, dicts) => render::write_removed_product(w, *id)?,
            Entry::Whole => render::write_full_product(w, profile, dicts, p)?,
            // The partner may hold an older copy: removed first, so no stale node survives.
            Entry::Replaced => {
                render::write_removed_product(w, *id)?;
                if profile.includes(p, dicts) {
                    render::write_full_product(w, profile, dicts, p)?;
                }
            }
            Entry::Nodes(nodes) => {
                let mut vanished = false;
                for node in nodes.iter().filter(|n| **n != MainNode::Attributes) {
                    scratch.clear();
                    render::write_main_node(&mut scratch, profile, dicts, p, *node)?;
                    if scratch.is_empty() {
                        vanished = true;
                        break;
                    }
                }
                if vanished {
                    render::write_removed_product(w, *id)?;
                    render::write_full_product(w, profile, dicts, p)?;
                } else {
                    render::write_change_product(w, profile, dicts, p, nodes)?;
                }
            }
        }
    }
    render::write_full_footer(w)
}
