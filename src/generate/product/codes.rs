//! Identifiers that must be valid as codes: EAN-13 and ISBN-13 with check digits, hex
//! digests, URL slugs.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::catalog::ProductId;

/// EAN-13/ISBN-13 check digit of 12 digits.
pub(in crate::generate) fn check_digit(digits12: &str) -> u32 {
    let sum: u32 = digits12
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    (10 - sum % 10) % 10
}

/// A valid EAN-13 with the Polish prefix 590, unique per `(id, size)` for the first 62.5
/// million products: the serial is scrambled by a bijection of 0..10^9 so codes look random.
pub(super) fn ean13(id: ProductId, size: usize) -> String {
    const M: u64 = 1_000_000_000;
    let serial = (id.wrapping_mul(16).wrapping_add(size as u64) % M) * 387_420_489 % M;
    let body = format!("590{serial:09}");
    let check = check_digit(&body);
    format!("{body}{check}")
}

/// A valid ISBN-13 in the Polish 978-83 range.
pub(super) fn isbn13(id: ProductId) -> String {
    const M: u64 = 10_000_000;
    let serial = (id % M) * 1_594_323 % M;
    let body = format!("97883{serial:07}");
    let check = check_digit(&body);
    format!("{body}{check}")
}

/// `bytes` random bytes in lowercase hex (one draw per byte, so a seed's catalog stays put).
pub(super) fn random_hex(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    let drawn: Vec<u8> = (0..bytes).map(|_| rng.gen::<u8>()).collect();
    hex::encode(drawn)
}

/// A URL slug: lowercase ASCII, Polish letters transliterated, runs of others as one `-`.
pub(super) fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'ą' => 'a',
            'ć' => 'c',
            'ę' => 'e',
            'ł' => 'l',
            'ń' => 'n',
            'ó' => 'o',
            'ś' => 's',
            'ź' | 'ż' => 'z',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_match_known_codes() {
        // 5901234123457 is the classic EAN-13 example; 9788301000000 an ISBN shape.
        assert_eq!(check_digit("590123412345"), 7);
        assert_eq!(check_digit("978030640615"), 7);
        assert_eq!(check_digit("400638133393"), 1);
    }

    #[test]
    fn eans_are_unique_per_product_and_size() {
        let mut seen = std::collections::HashSet::new();
        for id in 1..2_000 {
            for size in 0..11 {
                let code = ean13(id, size);
                assert_eq!(code.len(), 13);
                assert!(code.starts_with("590"));
                assert!(seen.insert(code), "duplicate EAN for {id}/{size}");
            }
        }
    }

    #[test]
    fn slug_is_ascii_and_tidy() {
        assert_eq!(
            slug("Elegant dress Łódź \"Limited\""),
            "elegant-dress-lodz-limited"
        );
        assert_eq!(slug("Set: mug + accessories"), "set-mug-accessories");
    }
}
