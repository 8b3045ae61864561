//! Normalization and validation of ERP records before they reach the store.

// Money, VAT and quantities come from outside: every operation on them is checked.
#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::{Decimal, RoundingStrategy};

use super::{Price, Prices, Product, Record, Size};

/// A record that breaks a rule, naming the field in JSON-path style (`sizes[2].code`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

fn is_nmtoken(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

fn is_lang(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_lowercase())
}

fn check_texts(field: &str, texts: &super::Texts, required: bool) -> Result<(), FieldError> {
    if required && texts.is_empty() {
        return Err(FieldError::new(field, "at least one language is required"));
    }
    for lang in texts.keys() {
        if !is_lang(lang) {
            return Err(FieldError::new(
                format!("{field}.{lang}"),
                "language codes are three lowercase letters (pol, eng, ...)",
            ));
        }
    }
    Ok(())
}

/// Round money the way prices are rounded: two places, half away from zero.
pub fn round_money(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The largest price accepted: 10^15 in the base currency. Far above any real price, and
/// low enough that a conversion by any accepted exchange rate (at most
/// [`MAX_EXCHANGE_RATE`]) stays well inside `Decimal` (about 7.9e28).
pub const MAX_PRICE: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

/// The largest exchange rate accepted (units of a currency per unit of the base currency).
pub const MAX_EXCHANGE_RATE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

fn check_price(field: &str, p: &Price) -> Result<(), FieldError> {
    if p.net.is_sign_negative() || p.gross.is_sign_negative() {
        return Err(FieldError::new(field, "prices cannot be negative"));
    }
    if p.net > MAX_PRICE || p.gross > MAX_PRICE {
        return Err(FieldError::new(
            field,
            format!("prices are at most {MAX_PRICE}"),
        ));
    }
    Ok(())
}

/// The largest stock quantity accepted (10^15): stock summed over any number of
/// warehouses stays inside `Decimal`.
pub const MAX_QUANTITY: Decimal = MAX_PRICE;

/// A stock quantity is zero or more (at most [`MAX_QUANTITY`]), or -1 for unlimited.
pub fn check_quantity(field: &str, q: Decimal) -> Result<(), FieldError> {
    if q < Decimal::ZERO && q != Decimal::NEGATIVE_ONE {
        return Err(FieldError::new(
            field,
            "a quantity is zero or more, or -1 for unlimited",
        ));
    }
    if q > MAX_QUANTITY {
        return Err(FieldError::new(
            field,
            format!("a quantity is at most {MAX_QUANTITY}"),
        ));
    }
    Ok(())
}

/// A VAT rate is a percentage from 0 to 100 inclusive. IOF declares `vat` a bare decimal;
/// no real rate is negative or above 100 (the highest in use are below 30), and within this
/// range completing a price is safe: the gross/net factor `1 + vat/100` lies in [1, 2].
pub fn check_vat(vat: Decimal) -> Result<(), FieldError> {
    if vat.is_sign_negative() || vat > Decimal::ONE_HUNDRED {
        return Err(FieldError::new(
            "vat",
            format!("{vat}: a VAT rate is a percentage between 0 and 100"),
        ));
    }
    Ok(())
}

fn check_prices(field: &str, p: &Prices) -> Result<(), FieldError> {
    for (name, price) in [
        ("retail", &p.retail),
        ("wholesale", &p.wholesale),
        ("srp", &p.srp),
        ("strikethrough_retail", &p.strikethrough_retail),
        ("strikethrough_wholesale", &p.strikethrough_wholesale),
    ] {
        if let Some(price) = price {
            check_price(&format!("{field}.{name}"), price)?;
        }
    }
    Ok(())
}

impl Product {
    /// Bring an ERP product into store form and check it: a product sent without sizes gets
    /// the single one-size `uniw` size carrying the product-level stock.
    pub fn normalize(&mut self) -> Result<(), FieldError> {
        if self.id == 0 {
            return Err(FieldError::new("id", "product ids are positive integers"));
        }
        check_vat(self.vat)?;
        check_texts("description.name", &self.description.name, true)?;
        check_texts(
            "description.short_desc",
            &self.description.short_desc,
            false,
        )?;
        check_texts("description.long_desc", &self.description.long_desc, false)?;
        check_texts("description.version", &self.description.version, false)?;
        check_prices("prices", &self.prices)?;
        if let Some(code) = &self.code {
            if code.trim().is_empty() {
                return Err(FieldError::new("code", "must not be blank"));
            }
        }
        if self.sizes.is_empty() {
            let code = format!("{}-uniw", self.id);
            self.sizes.push(Size {
                id: "uniw".into(),
                code,
                code_producer: None,
                code_external: None,
                weight: None,
                weight_net: None,
                prices: Prices::default(),
                stock: std::mem::take(&mut self.stock),
            });
        } else if !self.stock.is_empty() {
            return Err(FieldError::new("stock", "product-level stock is only for products sent without sizes; put stock on each size"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, size) in self.sizes.iter().enumerate() {
            let f = |name: &str| format!("sizes[{i}].{name}");
            if size.id.is_empty() {
                return Err(FieldError::new(f("id"), "must not be empty"));
            }
            if !seen.insert(size.id.as_str()) {
                return Err(FieldError::new(
                    f("id"),
                    format!("duplicate size id {:?}", size.id),
                ));
            }
            if !is_nmtoken(&size.code) {
                return Err(FieldError::new(
                    f("code"),
                    "a size code is letters, digits, '-', '_', '.' or ':' with no spaces",
                ));
            }
            check_prices(&f("prices"), &size.prices)?;
            let mut warehouses = std::collections::HashSet::new();
            for (j, s) in size.stock.iter().enumerate() {
                check_quantity(&format!("sizes[{i}].stock[{j}].quantity"), s.quantity)?;
                if !warehouses.insert(s.warehouse) {
                    return Err(FieldError::new(
                        format!("sizes[{i}].stock[{j}].warehouse"),
                        format!("warehouse {} listed twice", s.warehouse),
                    ));
                }
            }
        }
        for (i, image) in self.images.iter().enumerate() {
            if image.url.is_empty() {
                return Err(FieldError::new(
                    format!("images[{i}].url"),
                    "must not be empty",
                ));
            }
        }
        match (&self.bundled, self.kind) {
            (Some(_), super::ProductType::Bundle | super::ProductType::Collection) | (None, _) => {}
            (Some(_), _) => {
                return Err(FieldError::new(
                    "bundled",
                    "only bundle and collection products have components",
                ))
            }
        }
        if let Some(b) = &self.bundled {
            for (i, c) in b.components.iter().enumerate() {
                if c.id == self.id {
                    return Err(FieldError::new(
                        format!("bundled.components[{i}].id"),
                        "a product cannot contain itself",
                    ));
                }
                if c.quantity <= Decimal::ZERO {
                    return Err(FieldError::new(
                        format!("bundled.components[{i}].quantity"),
                        "must be positive",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Record {
    /// Normalize and validate a record of any kind.
    pub fn normalize(&mut self) -> Result<(), FieldError> {
        match self {
            Record::Product(p) => p.normalize(),
            Record::DeleteProduct { id } if *id == 0 => {
                Err(FieldError::new("id", "product ids are positive integers"))
            }
            Record::Category(c) => check_texts("name", &c.name, true),
            Record::Unit(u) => check_texts("name", &u.name, true),
            Record::Series(s) => check_texts("name", &s.name, true),
            Record::Warranty(w) => check_texts("name", &w.name, true),
            Record::Warehouse(w) => check_texts("name", &w.name, true),
            Record::Parameter(p) => check_texts("name", &p.name, true),
            Record::Producer(p) if p.name.trim().is_empty() => {
                Err(FieldError::new("name", "must not be blank"))
            }
            Record::Shop(s) if s.id == 0 => {
                Err(FieldError::new("id", "shop ids are positive integers"))
            }
            _ => Ok(()),
        }
    }
}

impl Price {
    /// Check a price as ingest does (not negative, at most [`MAX_PRICE`]), naming `field`.
    pub fn check(&self, field: &str) -> Result<(), FieldError> {
        check_price(field, self)
    }

    /// A price from whichever of net and gross the ERP sent, completing the other with `vat`:
    /// gross = net × (1 + vat/100), net = gross / (1 + vat/100), rounded to cents. `vat` is
    /// checked first ([`check_vat`]), so a hostile rate is an error, never a division by zero
    /// or an overflow; a net price too large to add VAT to is an error on `net`.
    pub fn from_parts(
        net: Option<Decimal>,
        gross: Option<Decimal>,
        vat: Decimal,
    ) -> Result<Option<Price>, FieldError> {
        check_vat(vat)?;
        // In [1, 2]: vat is within 0..=100.
        let factor = vat
            .checked_div(Decimal::ONE_HUNDRED)
            .and_then(|v| v.checked_add(Decimal::ONE))
            .ok_or_else(|| FieldError::new("vat", format!("{vat}: cannot be applied")))?;
        Ok(match (net, gross) {
            (Some(net), Some(gross)) => Some(Price { net, gross }),
            (Some(net), None) => Some(Price {
                net,
                gross: round_money(net.checked_mul(factor).ok_or_else(|| {
                    FieldError::new("net", format!("{net}: too large to add VAT to"))
                })?),
            }),
            (None, Some(gross)) => Some(Price {
                net: round_money(gross.checked_div(factor).ok_or_else(|| {
                    FieldError::new("gross", format!("{gross}: cannot take VAT off"))
                })?),
                gross,
            }),
            (None, None) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn hostile_vat_rates_are_errors_not_panics() {
        // -100 made the factor zero (a division by zero for a gross-only price); 1e28 and
        // the maximum decimal overflowed the multiplication.
        for vat in ["-100", "-0.01", "100.01", "10000000000000000000000000000"] {
            for (net, gross) in [(None, Some(d("12.30"))), (Some(d("10")), None)] {
                let err = Price::from_parts(net, gross, d(vat)).unwrap_err();
                assert_eq!(err.field, "vat", "{vat}");
            }
        }
        let err = Price::from_parts(None, Some(d("1")), Decimal::MAX).unwrap_err();
        assert_eq!(err.field, "vat");
    }

    #[test]
    fn prices_are_completed_within_the_vat_range() {
        let p = Price::from_parts(None, Some(d("12.30")), d("23"))
            .unwrap()
            .unwrap();
        assert_eq!((p.net, p.gross), (d("10.00"), d("12.30")));
        let p = Price::from_parts(Some(d("10")), None, d("23"))
            .unwrap()
            .unwrap();
        assert_eq!(p.gross, d("12.30"));
        // The edges: 0 % keeps the amount, 100 % doubles it.
        let p = Price::from_parts(None, Some(d("7")), d("0"))
            .unwrap()
            .unwrap();
        assert_eq!(p.net, d("7"));
        let p = Price::from_parts(None, Some(d("7")), d("100"))
            .unwrap()
            .unwrap();
        assert_eq!(p.net, d("3.50"));
        assert_eq!(Price::from_parts(None, None, d("23")).unwrap(), None);
        // A net price so large that adding VAT overflows: an error on the field, no panic.
        let err = Price::from_parts(Some(Decimal::MAX), None, d("23")).unwrap_err();
        assert_eq!(err.field, "net");
        // Dividing never overflows: the factor is at least 1.
        assert!(Price::from_parts(None, Some(Decimal::MAX), d("23")).is_ok());
    }

    #[test]
    fn prices_are_bounded_so_conversions_cannot_overflow() {
        let ok = Price {
            net: MAX_PRICE,
            gross: MAX_PRICE,
        };
        assert!(check_price("prices.retail", &ok).is_ok());
        let huge = Price {
            net: d("1"),
            gross: d("79000000000000000000000000000"),
        };
        let err = check_price("prices.retail", &huge).unwrap_err();
        assert_eq!(err.field, "prices.retail");
        // The bound keeps the worst conversion far from Decimal's limit.
        assert!(MAX_PRICE.checked_mul(MAX_EXCHANGE_RATE).is_some());
        assert_eq!(MAX_PRICE, d("1000000000000000"));
        assert_eq!(MAX_EXCHANGE_RATE, d("1000000000"));
    }
}
