//! Values as other generators write them: decimals, flags, languages, ids, enumerations.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::catalog::{CodeStandard, Decimal, WarrantyType};

/// A decimal as IOF writes it: `.` or `,` as the separator, surrounding spaces allowed.
pub(super) fn decimal(s: &str) -> Option<Decimal> {
    let t = s.trim().replace(',', ".");
    if t.is_empty() {
        return None;
    }
    Decimal::from_str(&t)
        .or_else(|_| Decimal::from_scientific(&t))
        .ok()
}

pub(super) fn yes(s: Option<&str>) -> bool {
    matches!(
        s.map(str::trim),
        Some("y" | "yes" | "Y" | "YES" | "true" | "1")
    )
}

pub(super) fn is_lang(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_lowercase())
}

/// Maps the ids of one kind to the integers iofd uses, reporting the ones it had to invent.
#[derive(Default)]
pub(super) struct Ids {
    pub(super) mapped: BTreeMap<(&'static str, String), u64>,
}

impl Ids {
    /// `positive`: 0 is not a valid id of this kind (products).
    pub(super) fn id(&mut self, kind: &'static str, raw: &str, positive: bool) -> u64 {
        let raw = raw.trim();
        if let Ok(n) = raw.parse::<u64>() {
            if n > 0 || !positive {
                return n;
            }
        }
        *self
            .mapped
            .entry((kind, raw.to_string()))
            .or_insert_with(|| {
                let h = blake3::hash(format!("{kind}:{raw}").as_bytes());
                let mut b = [0u8; 8];
                b.copy_from_slice(&h.as_bytes()[..8]);
                (1u64 << 52) | (u64::from_le_bytes(b) & ((1u64 << 52) - 1))
            })
    }

    pub(super) fn warehouse(&mut self, raw: &str) -> u32 {
        let raw = raw.trim();
        if let Ok(n) = raw.parse::<u32>() {
            return n;
        }
        let v = *self
            .mapped
            .entry(("warehouse", raw.to_string()))
            .or_insert_with(|| {
                let h = blake3::hash(format!("warehouse:{raw}").as_bytes());
                let mut b = [0u8; 4];
                b.copy_from_slice(&h.as_bytes()[..4]);
                u64::from((1u32 << 31) | (u32::from_le_bytes(b) & ((1u32 << 31) - 1)))
            });
        v as u32
    }

    pub(super) fn notes(&self) -> Vec<String> {
        self.mapped
            .iter()
            .map(|((kind, raw), id)| {
                format!("{kind} id {raw:?} is not a positive integer; mapped to {id}")
            })
            .collect()
    }
}

pub(super) fn warranty_type(s: Option<&str>) -> WarrantyType {
    match s.map(str::trim) {
        Some("seller") => WarrantyType::Seller,
        Some("none") => WarrantyType::None,
        _ => WarrantyType::Producer,
    }
}

pub(super) fn code_standard(s: Option<&str>) -> CodeStandard {
    match s.map(|x| x.trim().to_ascii_uppercase()).as_deref() {
        Some("GTIN14") => CodeStandard::Gtin14,
        Some("GTIN13") => CodeStandard::Gtin13,
        Some("GTIN12") => CodeStandard::Gtin12,
        Some("GTIN8") => CodeStandard::Gtin8,
        Some("ISBN13") => CodeStandard::Isbn13,
        Some("ISBN10") => CodeStandard::Isbn10,
        Some("UPCE") => CodeStandard::Upce,
        Some("MPN") => CodeStandard::Mpn,
        Some("OTHER") => CodeStandard::Other,
        _ => CodeStandard::Auto,
    }
}
