//! The net change of a window: each product's state at the window's start against its
//! state at the window's end, from the log records in between. A change undone within the
//! window compares equal and disappears.

use std::collections::BTreeMap;

use super::hash::{index, Membership, NodeHash};
use super::log::{Frame, Kind};
use crate::catalog::rules::Tree;
use crate::catalog::{MainNode, ProductId, RenderProfile};

/// One product's start and end state over a window (only what its records mention).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    present_start: bool,
    present_end: bool,
    start_member: Option<Membership>,
    end_member: Option<Membership>,
    /// Each node a record mentions: its index, its hash at the window's start (the first
    /// old value) and at its end (the last new value). Sparse: a window may touch the
    /// whole catalog.
    nodes: Vec<(u8, NodeHash, NodeHash)>,
}

/// What a change file says about one product, for one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Left the profile's offer: `<product id=".." removed="yes"/>`.
    Removed,
    /// Entered the profile's offer: the whole product (a removal if, at the window's end,
    /// the product is not in the offer after all: see the membership facts).
    Whole,
    /// In or out of the offer at the window's start, which the kept facts cannot tell: a
    /// removal, then the whole product if the window's end includes it (a consumer keeps
    /// nodes a whole product omits, so it must not be merged into an older copy).
    Replaced,
    /// Still in the offer: these main nodes differ (attributes always written).
    Nodes(Vec<MainNode>),
}

/// Fold log frames (oldest first) into each touched product's net change.
pub fn net_changes<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> BTreeMap<ProductId, Net> {
    let mut out: BTreeMap<ProductId, Net> = BTreeMap::new();
    for frame in frames {
        for r in &frame.records {
            let net = out.entry(r.product).or_insert_with(|| Net {
                present_start: r.kind != Kind::Added,
                present_end: true,
                start_member: r.old.clone(),
                end_member: None,
                nodes: Vec::with_capacity(r.nodes.len()),
            });
            for d in &r.nodes {
                let i = index(d.node) as u8;
                match net.nodes.iter_mut().find(|(n, _, _)| *n == i) {
                    Some(slot) => slot.2 = d.new,
                    None => net.nodes.push((i, d.old, d.new)),
                }
            }
            net.present_end = r.kind != Kind::Removed;
            net.end_member = r.new.clone();
        }
    }
    out
}

impl Net {
    /// The entry of product `id` for `profile`, or `None` when the product is no net change
    /// there. `tree` (the category tree of the window's end) resolves category subtrees.
    pub fn entry(&self, id: ProductId, profile: &RenderProfile, tree: &impl Tree) -> Option<Entry> {
        let member = |present: bool, m: &Option<Membership>| {
            present && m.as_ref().is_some_and(|m| m.includes(id, profile, tree))
        };
        let before = member(self.present_start, &self.start_member);
        let after = member(self.present_end, &self.end_member);
        // Facts stored before partner rules: membership by rules is unknown, so the entry
        // must be right whatever it was: the product replaced.
        let unknown =
            |present: bool, m: &Option<Membership>| present && m.as_ref().is_some_and(|m| !m.facts);
        if !profile.rules.is_unrestricted()
            && (unknown(self.present_start, &self.start_member)
                || unknown(self.present_end, &self.end_member))
        {
            return Some(Entry::Replaced);
        }
        // `tree` is the window's end: it decides membership and price rule at the start
        // only if the start category's place in the tree is the same at both ends. A moved
        // category changes the category node of its products (the node hashes the path), so
        // a product with a category whose node changed may have been in or out at the start
        // (it moved to another category, or its category moved): the product replaced, or
        // removed when it is gone (a removal of a product the partner lacks is harmless).
        if profile.rules.reads_categories()
            && self.present_start
            && self
                .start_member
                .as_ref()
                .is_some_and(|m| m.category.is_some())
        {
            let category = index(MainNode::Category) as u8;
            if self
                .nodes
                .iter()
                .any(|(i, start, end)| *i == category && start != end)
            {
                return Some(if self.present_end {
                    Entry::Replaced
                } else {
                    Entry::Removed
                });
            }
        }
        match (before, after) {
            (false, false) => None,
            (true, false) => Some(Entry::Removed),
            (false, true) => Some(Entry::Whole),
            (true, true) => {
                let mut changed: Vec<u8> = self
                    .nodes
                    .iter()
                    .filter(|(_, start, end)| start != end)
                    .map(|(i, _, _)| *i)
                    .collect();
                // Another price rule now (a category or producer moved): the paid prices
                // differ though the price data did not.
                if let (Some(a), Some(b)) = (&self.start_member, &self.end_member) {
                    let rule = |m: &Membership| {
                        profile
                            .rules
                            .price_rule(m.subject(id), tree)
                            .map(|(i, _)| i)
                    };
                    if !profile.rules.price_rules.is_empty() && rule(a) != rule(b) {
                        for node in [MainNode::Price, MainNode::Sizes] {
                            let i = index(node) as u8;
                            if !changed.contains(&i) {
                                changed.push(i);
                            }
                        }
                    }
                }
                changed.sort_unstable();
                let nodes: Vec<MainNode> = changed
                    .into_iter()
                    .filter_map(|i| MainNode::ALL.get(usize::from(i)).copied())
                    .collect();
                (!nodes.is_empty()).then_some(Entry::Nodes(nodes))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::rules::flat;
    use crate::catalog::Format;
    use crate::changes::hash::ABSENT;
    use crate::changes::log::{NodeDelta, Record};
    use rust_decimal::Decimal;

    fn profile(only_in_stock: bool) -> RenderProfile {
        RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip: false,
            languages: vec!["pol".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: Decimal::ZERO,
            wholesale: false,
            only_in_stock,
            rules: Default::default(),
        }
    }

    fn member(in_stock: bool) -> Option<Membership> {
        Some(Membership {
            in_stock,
            facts: true,
            ..Membership::default()
        })
    }

    fn frame(records: Vec<Record>) -> Frame {
        Frame {
            generation: 1,
            time: jiff::Timestamp::UNIX_EPOCH,
            dicts: [0; 16],
            shard_count: 1,
            shards: vec![],
            records,
        }
    }

    fn changed(id: u64, node: MainNode, old: u8, new: u8, stock: (bool, bool)) -> Record {
        Record {
            product: id,
            kind: Kind::Changed,
            nodes: vec![NodeDelta {
                node,
                old: [old; 16],
                new: [new; 16],
            }],
            old: member(stock.0),
            new: member(stock.1),
        }
    }

    #[test]
    fn rules_decide_membership_and_a_new_price_rule_resends_prices() {
        use crate::catalog::rules::PriceRule;
        let m = |category: u64, facts: bool| {
            Some(Membership {
                in_stock: true,
                category: Some(category),
                levels: vec![(1, Decimal::TEN)],
                facts,
                ..Membership::default()
            })
        };
        let moved = |from, to, facts| Record {
            product: 9,
            kind: Kind::Changed,
            nodes: vec![NodeDelta {
                node: MainNode::Category,
                old: [1; 16],
                new: [2; 16],
            }],
            old: m(from, facts),
            new: m(to, true),
        };
        // Categories 11 and 12 are children of 1; 2 is a root.
        let tree = |c: u64| (c > 10).then_some(1);
        let mut ruled = profile(false);
        ruled.rules.assortment.categories = vec![1];
        let entry =
            |r: Record, p: &RenderProfile| net_changes(&[frame(vec![r])])[&9].entry(9, p, &tree);
        // The start category's place at the start is unknown (`tree` is the end's): the
        // product replaced, which the writer makes a removal alone when it is out at the end.
        assert_eq!(entry(moved(11, 2, true), &ruled), Some(Entry::Replaced));
        assert_eq!(entry(moved(2, 12, true), &ruled), Some(Entry::Replaced));
        assert_eq!(entry(moved(11, 12, true), &ruled), Some(Entry::Replaced));
        // Its category moved in the tree (same id, another node): replaced as well.
        assert_eq!(entry(moved(12, 12, true), &ruled), Some(Entry::Replaced));
        // No category at the start: no tree to doubt, decided exactly.
        let from_none = |to| Record {
            old: Some(Membership {
                category: None,
                ..m(to, true).unwrap()
            }),
            ..moved(to, to, true)
        };
        assert_eq!(entry(from_none(12), &ruled), Some(Entry::Whole));
        assert_eq!(entry(from_none(2), &ruled), None);
        // A price rule by producer needs no tree: another rule resends the prices.
        let mut priced = profile(false);
        priced.rules.price_rules = vec![PriceRule {
            producer: Some(6),
            markup_percent: Some(Decimal::TEN),
            ..PriceRule::default()
        }];
        let by = |producer| {
            Some(Membership {
                producer: Some(producer),
                ..m(11, true).unwrap()
            })
        };
        let made = Record {
            nodes: vec![NodeDelta {
                node: MainNode::Producer,
                old: [1; 16],
                new: [2; 16],
            }],
            old: by(5),
            new: by(6),
            ..moved(11, 11, true)
        };
        assert_eq!(
            entry(made, &priced),
            Some(Entry::Nodes(vec![
                MainNode::Producer,
                MainNode::Price,
                MainNode::Sizes
            ])),
            "another price rule: the prices again"
        );
        // Facts from before rules: replaced, whatever they were.
        assert_eq!(entry(moved(11, 12, false), &ruled), Some(Entry::Replaced));
        assert_eq!(
            entry(moved(11, 12, false), &profile(false)),
            Some(Entry::Nodes(vec![MainNode::Category])),
            "an unrestricted profile needs no facts"
        );
    }

    #[test]
    fn a_category_moved_in_the_window_leaves_the_start_membership_to_the_end() {
        // Found by the merge property test: the product went from 111 (then under 110) to
        // 210 (under 200), then 111 moved under 200. By the end's tree it was in the
        // `200` subtree at the start too, so only its category node went out; it was not.
        let tree = |c: u64| match c {
            111 | 210 => Some(200),
            _ => None,
        };
        let m = |category| {
            Some(Membership {
                in_stock: true,
                category: Some(category),
                facts: true,
                ..Membership::default()
            })
        };
        let mut ruled = profile(false);
        ruled.rules.assortment.categories = vec![200];
        let edit = Record {
            product: 7,
            kind: Kind::Changed,
            nodes: vec![NodeDelta {
                node: MainNode::Category,
                old: [1; 16],
                new: [2; 16],
            }],
            old: m(111),
            new: m(210),
        };
        let net = net_changes(&[frame(vec![edit.clone()])]);
        assert_eq!(net[&7].entry(7, &ruled, &tree), Some(Entry::Replaced));
        // Deleted after its category moved out of the subtree: by the end's tree it was
        // never in, but the partner has it.
        let tree = |c: u64| (c == 111).then_some(300);
        let gone = Record {
            kind: Kind::Removed,
            nodes: vec![NodeDelta {
                node: MainNode::Category,
                old: [1; 16],
                new: ABSENT,
            }],
            new: None,
            ..edit
        };
        ruled.rules.assortment.categories = vec![110];
        let net = net_changes(&[frame(vec![gone])]);
        assert_eq!(net[&7].entry(7, &ruled, &tree), Some(Entry::Removed));
    }

    #[test]
    fn an_undone_change_is_no_change() {
        let frames = [
            frame(vec![changed(1, MainNode::Description, 1, 2, (true, true))]),
            frame(vec![
                changed(1, MainNode::Description, 2, 1, (true, true)),
                changed(2, MainNode::Sizes, 5, 6, (true, true)),
            ]),
        ];
        let net = net_changes(&frames);
        assert_eq!(net[&1].entry(0, &profile(false), &flat), None);
        assert_eq!(
            net[&2].entry(0, &profile(false), &flat),
            Some(Entry::Nodes(vec![MainNode::Sizes]))
        );
    }

    #[test]
    fn membership_decides_removed_and_whole_per_profile() {
        // Goes out of stock: removed for only-in-stock partners, a node change for others.
        let frames = [frame(vec![changed(
            3,
            MainNode::Sizes,
            1,
            2,
            (true, false),
        )])];
        let net = net_changes(&frames);
        assert_eq!(
            net[&3].entry(0, &profile(true), &flat),
            Some(Entry::Removed)
        );
        assert_eq!(
            net[&3].entry(0, &profile(false), &flat),
            Some(Entry::Nodes(vec![MainNode::Sizes]))
        );
        // Back in stock: whole for only-in-stock partners.
        let frames = [frame(vec![changed(
            3,
            MainNode::Sizes,
            2,
            1,
            (false, true),
        )])];
        assert_eq!(
            net_changes(&frames)[&3].entry(0, &profile(true), &flat),
            Some(Entry::Whole)
        );
    }

    #[test]
    fn added_then_removed_is_nothing_and_removed_then_added_compares_states() {
        let add = |id, h: u8| Record {
            product: id,
            kind: Kind::Added,
            nodes: vec![
                NodeDelta {
                    node: MainNode::Attributes,
                    old: ABSENT,
                    new: [h; 16],
                },
                NodeDelta {
                    node: MainNode::Description,
                    old: ABSENT,
                    new: [7; 16],
                },
            ],
            old: None,
            new: member(true),
        };
        let remove = |id, h: u8| Record {
            product: id,
            kind: Kind::Removed,
            nodes: vec![
                NodeDelta {
                    node: MainNode::Attributes,
                    old: [h; 16],
                    new: ABSENT,
                },
                NodeDelta {
                    node: MainNode::Producer,
                    old: [8; 16],
                    new: ABSENT,
                },
            ],
            old: member(true),
            new: None,
        };
        let frames = [frame(vec![add(4, 1)]), frame(vec![remove(4, 1)])];
        assert_eq!(
            net_changes(&frames)[&4].entry(0, &profile(false), &flat),
            None
        );
        let frames = [frame(vec![add(4, 1)])];
        assert_eq!(
            net_changes(&frames)[&4].entry(0, &profile(false), &flat),
            Some(Entry::Whole)
        );
        // Re-added with the same attributes, without its producer, with a description.
        let frames = [frame(vec![remove(5, 1)]), frame(vec![add(5, 1)])];
        assert_eq!(
            net_changes(&frames)[&5].entry(0, &profile(false), &flat),
            Some(Entry::Nodes(vec![
                MainNode::Producer,
                MainNode::Description
            ]))
        );
        let frames = [frame(vec![remove(5, 1)])];
        assert_eq!(
            net_changes(&frames)[&5].entry(0, &profile(false), &flat),
            Some(Entry::Removed)
        );
    }
}
