//! Decimal money in the snapshot: `rust_decimal::Decimal` archived as its 16-byte form.

// Money crosses this module: any arithmetic here must be checked.
#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;

/// rkyv remote definition for [`Decimal`]: use `#[rkyv(with = DecimalDef)]` on a field.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(remote = Decimal)]
pub struct DecimalDef {
    #[rkyv(getter = Decimal::serialize)]
    bytes: [u8; 16],
}

impl From<DecimalDef> for Decimal {
    fn from(value: DecimalDef) -> Self {
        Decimal::deserialize(value.bytes)
    }
}

/// JSON Schema of a decimal in the ERP input: a JSON number or a string holding one, so
/// `12.30` and `"12.30"` are both accepted (and both kept exact). Use it on `Decimal` fields
/// as `#[schemars(with = "DecimalSchema")]`.
pub struct DecimalSchema;

impl schemars::JsonSchema for DecimalSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Decimal".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An exact decimal: a JSON number (12.30) or a string holding one (\"12.30\").",
            "type": ["string", "number"],
            "pattern": "^-?[0-9]+(\\.[0-9]+)?$"
        })
    }
}

/// Read an archived decimal back as a [`Decimal`] (a 16-byte copy, no allocation).
#[inline]
pub fn archived(value: &ArchivedDecimalDef) -> Decimal {
    Decimal::deserialize(value.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::prelude::FromStr;

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    struct Holder {
        #[rkyv(with = DecimalDef)]
        d: Decimal,
    }

    #[test]
    fn decimal_round_trips_through_the_archive() {
        let d = Decimal::from_str("-1271.22").unwrap();
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&Holder { d }).unwrap();
        let a = rkyv::access::<ArchivedHolder, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(archived(&a.d), d);
        assert_eq!(archived(&a.d).to_string(), "-1271.22");
    }
}
