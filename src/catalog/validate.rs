//! Normalization and validation of ERP records before they reach the store.

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

fn check_price(field: &str, p: &Price) -> Result<(), FieldError> {
    if p.net.is_sign_negative() || p.gross.is_sign_negative() {
        return Err(FieldError::new(field, "prices cannot be negative"));
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
        if self.vat.is_sign_negative() || self.vat > Decimal::ONE_HUNDRED {
            return Err(FieldError::new(
                "vat",
                "a VAT rate is a percentage between 0 and 100",
            ));
        }
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
                if s.quantity < Decimal::ZERO && s.quantity != Decimal::NEGATIVE_ONE {
                    return Err(FieldError::new(
                        format!("sizes[{i}].stock[{j}].quantity"),
                        "a quantity is zero or more, or -1 for unlimited",
                    ));
                }
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
    /// A price from whichever of net and gross the ERP sent, completing the other with `vat`.
    /// `Err` says why the missing half cannot be derived: a VAT rate of -100 % leaves
    /// nothing to divide by, and a huge amount can overflow a decimal once VAT is added.
    pub fn from_parts(
        net: Option<Decimal>,
        gross: Option<Decimal>,
        vat: Decimal,
    ) -> Result<Option<Price>, &'static str> {
        const TOO_LARGE: &str = "the price is too large to complete with VAT";
        let factor = (vat / Decimal::ONE_HUNDRED)
            .checked_add(Decimal::ONE)
            .ok_or(TOO_LARGE)?;
        Ok(match (net, gross) {
            (Some(net), Some(gross)) => Some(Price { net, gross }),
            (Some(net), None) => Some(Price {
                net,
                gross: round_money(net.checked_mul(factor).ok_or(TOO_LARGE)?),
            }),
            (None, Some(_)) if factor.is_zero() => {
                return Err("a VAT rate of -100 % leaves no net price to derive")
            }
            (None, Some(gross)) => Some(Price {
                net: round_money(gross.checked_div(factor).ok_or(TOO_LARGE)?),
                gross,
            }),
            (None, None) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_parts_completes_the_missing_half_and_refuses_what_cannot_be_derived() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        let vat = d("23");
        assert_eq!(
            Price::from_parts(Some(d("10")), None, vat),
            Ok(Some(Price {
                net: d("10"),
                gross: d("12.30")
            }))
        );
        assert_eq!(
            Price::from_parts(None, Some(d("12.30")), vat),
            Ok(Some(Price {
                net: d("10"),
                gross: d("12.30")
            }))
        );
        assert_eq!(Price::from_parts(None, None, vat), Ok(None));
        // Found by fuzzing: these panicked (decimal overflow, division by zero).
        assert!(Price::from_parts(Some(Decimal::MAX), None, vat).is_err());
        assert!(Price::from_parts(None, Some(d("1")), d("-100")).is_err());
        assert_eq!(
            Price::from_parts(Some(d("1")), None, d("-100")).map(|p| p.map(|p| p.gross)),
            Ok(Some(Decimal::ZERO))
        );
        // Both halves given: nothing to derive, whatever the rate.
        assert!(Price::from_parts(Some(Decimal::MAX), Some(d("1")), d("-100")).is_ok());
    }
}
