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

/// ISO 639-1 codes and the ISO 639-2/B codes IOF writes (`ger`, not `deu`).
const LANGUAGES: [(&str, &str); 32] = [
    ("bg", "bul"),
    ("cs", "cze"),
    ("da", "dan"),
    ("de", "ger"),
    ("el", "gre"),
    ("en", "eng"),
    ("es", "spa"),
    ("et", "est"),
    ("fi", "fin"),
    ("fr", "fre"),
    ("ga", "gle"),
    ("hr", "hrv"),
    ("hu", "hun"),
    ("it", "ita"),
    ("ja", "jpn"),
    ("ko", "kor"),
    ("lt", "lit"),
    ("lv", "lav"),
    ("nl", "dut"),
    ("no", "nor"),
    ("pl", "pol"),
    ("pt", "por"),
    ("ro", "rum"),
    ("ru", "rus"),
    ("sk", "slo"),
    ("sl", "slv"),
    ("sq", "alb"),
    ("sr", "srp"),
    ("sv", "swe"),
    ("tr", "tur"),
    ("uk", "ukr"),
    ("zh", "chi"),
];

/// A language code as feeds write it (`en`, `EN`, `en-GB`, `eng`) as IOF's three letters:
/// `Some((code, derived))`, `derived` when it had to be translated; `None` when unknown.
pub(super) fn language(s: &str) -> Option<(String, bool)> {
    let t = s.trim().to_ascii_lowercase();
    if is_lang(&t) {
        return Some((t, false));
    }
    let primary = t.split(['-', '_']).next().unwrap_or("");
    if is_lang(primary) {
        return Some((primary.to_string(), true));
    }
    LANGUAGES
        .iter()
        .find(|(two, _)| *two == primary)
        .map(|(_, three)| (three.to_string(), true))
}

/// A date as feeds write it, in the shape IOF uses (`2025-06-14 13:06:48`): ISO dates with a
/// space or `T`, or `14.06.2025`, with or without seconds or a time. The civil time is kept as
/// written (IOF dates carry no zone). `Some((date, converted))`; `None` when it is no date.
pub(super) fn date_time(s: &str) -> Option<(String, bool)> {
    let t = s.trim();
    const SHAPES: [&str; 8] = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
        "%Y-%m-%d",
        "%d.%m.%Y",
    ];
    for (i, shape) in SHAPES.iter().enumerate() {
        let Ok(parsed) = jiff::fmt::strtime::parse(shape, t) else {
            continue;
        };
        let dt = if i >= 6 {
            parsed.to_date().ok()?.at(0, 0, 0, 0)
        } else {
            parsed.to_datetime().ok()?
        };
        let out = dt.strftime("%Y-%m-%d %H:%M:%S").to_string();
        let converted = out != t;
        return Some((out, converted));
    }
    None
}

/// A VAT rate: `23`, `23,0`, `23%`; only 0 to 100 (anything else cannot be a rate, and would
/// make the net/gross arithmetic overflow).
pub(super) fn vat(s: &str) -> Option<Decimal> {
    let v = decimal(s.trim().trim_end_matches('%'))?;
    (!v.is_sign_negative() && v <= Decimal::ONE_HUNDRED).then_some(v)
}

/// The standard of a product-level EAN, by its length.
pub(super) fn ean_standard(code: &str) -> CodeStandard {
    match code.len() {
        8 => CodeStandard::Gtin8,
        12 => CodeStandard::Gtin12,
        13 => CodeStandard::Gtin13,
        14 => CodeStandard::Gtin14,
        _ => CodeStandard::Other,
    }
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
            .or_insert_with(|| Ids::hashed(kind, raw))
    }

    /// `2^52 + (blake3(kind + ":" + key) mod 2^52)`: the same key gives the same id on every
    /// import, and it stays clear of the small integers feeds use.
    pub(super) fn hashed(kind: &str, key: &str) -> u64 {
        let h = blake3::hash(format!("{kind}:{key}").as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.as_bytes()[..8]);
        (1u64 << 52) | (u64::from_le_bytes(b) & ((1u64 << 52) - 1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_letter_and_regional_languages_become_iof_codes() {
        assert_eq!(language("en"), Some(("eng".into(), true)));
        assert_eq!(language("DE"), Some(("ger".into(), true)));
        assert_eq!(language("cs"), Some(("cze".into(), true)));
        assert_eq!(language("uk"), Some(("ukr".into(), true)));
        assert_eq!(language("en-GB"), Some(("eng".into(), true)));
        assert_eq!(language("pol"), Some(("pol".into(), false)));
        assert_eq!(language("xx"), None);
        assert_eq!(language(""), None);
    }

    #[test]
    fn dates_in_other_shapes_are_normalised() {
        let d = |s| date_time(s).map(|(d, _)| d);
        assert_eq!(
            d("14.06.2025 13:06:48").as_deref(),
            Some("2025-06-14 13:06:48")
        );
        assert_eq!(
            d("14.06.2025 13:06").as_deref(),
            Some("2025-06-14 13:06:00")
        );
        assert_eq!(d("14.06.2025").as_deref(), Some("2025-06-14 00:00:00"));
        assert_eq!(
            d("2025-06-14T13:06:48").as_deref(),
            Some("2025-06-14 13:06:48")
        );
        assert_eq!(
            date_time("2022-01-20 20:50:23"),
            Some(("2022-01-20 20:50:23".into(), false))
        );
        assert_eq!(d("31.02.2025"), None);
        assert_eq!(d("yesterday"), None);
    }

    #[test]
    fn vat_rates_outside_0_to_100_are_refused() {
        assert_eq!(vat("0"), Some(Decimal::ZERO));
        assert_eq!(vat("23%"), Some(Decimal::from(23)));
        assert_eq!(vat("8,0").map(|v| v.to_string()).as_deref(), Some("8.0"));
        assert_eq!(vat("-100"), None);
        assert_eq!(vat("1e20"), None);
        assert_eq!(vat(""), None);
    }
}
