//! Binary forms of product hashes and memberships, for the hash store and the change log.

use super::{Membership, ProductHashes, Refs, ABSENT, NODES};

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

/// Bit of the first membership byte telling that the rule facts (producer, category, stock
/// levels) follow; files written before partner rules lack it and decode without them.
const RULE_FACTS: u8 = 2;

pub(crate) fn encode_membership(m: &Membership, out: &mut Vec<u8>) {
    if !m.facts {
        // Kept as it was read (a frame rewritten from an earlier version's).
        out.push(u8::from(m.in_stock));
        out.extend_from_slice(&(m.shops.len() as u32).to_le_bytes());
        for s in &m.shops {
            out.extend_from_slice(&s.to_le_bytes());
        }
        return;
    }
    out.push(u8::from(m.in_stock) | RULE_FACTS);
    out.extend_from_slice(&(m.shops.len() as u32).to_le_bytes());
    for s in &m.shops {
        out.extend_from_slice(&s.to_le_bytes());
    }
    for id in [m.producer, m.category] {
        match id {
            Some(id) => {
                out.push(1);
                out.extend_from_slice(&id.to_le_bytes());
            }
            None => out.push(0),
        }
    }
    out.extend_from_slice(&(m.levels.len() as u32).to_le_bytes());
    for (warehouse, quantity) in &m.levels {
        out.extend_from_slice(&warehouse.to_le_bytes());
        out.extend_from_slice(&quantity.serialize());
    }
}

pub(crate) fn decode_membership(bytes: &mut &[u8]) -> Option<Membership> {
    let first = take_u8(bytes)?;
    if first & !(1 | RULE_FACTS) != 0 {
        return None;
    }
    let in_stock = first & 1 == 1;
    let n = take_u32(bytes)?;
    let mut shops = Vec::with_capacity((n as usize).min(bytes.len() / 4));
    for _ in 0..n {
        shops.push(take_u32(bytes)?);
    }
    let mut m = Membership {
        in_stock,
        shops,
        ..Membership::default()
    };
    if first & RULE_FACTS == 0 {
        return Some(m);
    }
    m.facts = true;
    let id = |bytes: &mut &[u8]| -> Option<Option<u64>> {
        match take_u8(bytes)? {
            0 => Some(None),
            1 => Some(Some(take_u64(bytes)?)),
            _ => None,
        }
    };
    m.producer = id(bytes)?;
    m.category = id(bytes)?;
    let n = take_u32(bytes)?;
    m.levels = Vec::with_capacity((n as usize).min(bytes.len() / 20));
    for _ in 0..n {
        let warehouse = take_u32(bytes)?;
        let quantity: [u8; 16] = take(bytes, 16)?.try_into().ok()?;
        m.levels
            .push((warehouse, rust_decimal::Decimal::deserialize(quantity)));
    }
    Some(m)
}
