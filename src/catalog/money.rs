//! Decimal money in the snapshot: `rust_decimal::Decimal` archived as its 16-byte form.

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
