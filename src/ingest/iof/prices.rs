//! Prices: amounts read with checked arithmetic and, when the feed's currency is not the
//! store's base currency, converted with the configured rate (never relabelled). An amount
//! that cannot be used makes its product an error (skipped, and the offer refused by default).

use crate::catalog::{round_money, Decimal, Price, Prices};

use super::map::Import;
use super::reader::Node;

/// No price is this large; refusing it keeps `net × (1 + VAT)` far from overflowing.
const MAX_AMOUNT: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0); // 10^15

impl Import<'_> {
    /// One amount (`net` or `gross`) of a price node, in the base currency. Empty is "none";
    /// a value that is no amount is an error: the product is not imported with a wrong price.
    fn amount(&self, node: &Node, field: &str, name: &str) -> Result<Option<Decimal>, String> {
        let Some(raw) = node.attr(&[name]).map(str::trim) else {
            return Ok(None);
        };
        if raw.is_empty() {
            return Ok(None);
        }
        let report_field = format!("{field}@{name}");
        let Some(v) = super::dialect::decimal(raw).filter(|v| v.abs() <= MAX_AMOUNT) else {
            return Err(format!(
                "{}@{name}: {raw:?} is not an amount (at most 10^15)",
                node.name
            ));
        };
        match self.rate {
            None => {
                self.mapped(&report_field);
                Ok(Some(v))
            }
            Some(rate) => match v.checked_div(rate) {
                Some(base) => {
                    self.converted(&report_field);
                    Ok(Some(round_money(base)))
                }
                None => Err(format!(
                    "{}@{name}: {raw:?} cannot be converted at {rate}",
                    node.name
                )),
            },
        }
    }

    /// A price node completed with `vat` where only one of net and gross is given.
    /// `zero_is_none`: a zero SRP or strikethrough price means "none" in IOF.
    pub(super) fn price(
        &self,
        node: Option<&Node>,
        field: &str,
        vat: Decimal,
        zero_is_none: bool,
    ) -> Result<Option<Price>, String> {
        let Some(node) = node else { return Ok(None) };
        // A price node may carry its own rate; the product's completes the price, but a
        // rate that is no rate is an error, not silently passed over.
        if let Some(raw) = node.attr(&["vat"]).map(str::trim).filter(|r| !r.is_empty()) {
            if super::dialect::vat(raw).is_none() {
                return Err(format!(
                    "{}@vat: {raw:?} is not a rate between 0 and 100",
                    node.name
                ));
            }
        }
        let net = self.amount(node, field, "net")?;
        let gross = self.amount(node, field, "gross")?;
        let price =
            Price::from_parts(net, gross, vat).map_err(|e| format!("{}: {e}", node.name))?;
        Ok(price.filter(|p| !(zero_is_none && p.net.is_zero() && p.gross.is_zero())))
    }

    /// The price nodes of a product or a size (`field` names which, for the report).
    pub(super) fn prices(&self, node: &Node, field: &str, vat: Decimal) -> Result<Prices, String> {
        let at = |name: &str| format!("{field}/{name}");
        let sr = "strikethrough_retail_price";
        let sw = "strikethrough_wholesale_price";
        Ok(Prices {
            retail: self.price(node.kid("price"), &at("price"), vat, false)?,
            wholesale: None,
            srp: self.price(node.kid("srp"), &at("srp"), vat, true)?,
            strikethrough_retail: self.price(node.kid(sr), &at(sr), vat, true)?,
            strikethrough_wholesale: self.price(node.kid(sw), &at(sw), vat, true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_amount_bound_is_ten_to_the_fifteenth() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_000u64));
    }
}
