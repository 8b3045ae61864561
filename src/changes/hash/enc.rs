//! The field encoding node hashes are computed from: length-prefixed, tagged, compact.

use std::ops::ControlFlow;

use rust_decimal::Decimal;

use crate::catalog::{
    self, ArchivedAttachmentEnable, ArchivedAttachmentType, ArchivedAttachmentVersion,
    ArchivedBundleType, ArchivedCodeStandard, ArchivedComponentChoice, ArchivedImage,
    ArchivedPrice, ArchivedPrices, ArchivedProductType, Texts,
};

/// Length-prefixed, tagged field encoding into a reused buffer.
pub(super) struct Enc<'b>(pub(super) &'b mut Vec<u8>);

impl Enc<'_> {
    #[inline]
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    #[inline]
    pub(super) fn u32(&mut self, v: u32) {
        self.u64(u64::from(v));
    }
    /// LEB128: ids, counts and lengths are mostly small, and fewer bytes are fewer blake3
    /// compressions. Prefix-free, so the encoding stays unambiguous.
    #[inline]
    pub(super) fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    #[inline]
    pub(super) fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    #[inline]
    pub(super) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    pub(super) fn opt_str(&mut self, s: Option<&rkyv::string::ArchivedString>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s.as_str());
            }
            None => self.u8(0),
        }
    }
    pub(super) fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u32(v);
            }
            None => self.u8(0),
        }
    }
    pub(super) fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
    /// Normalized (`10` and `10.00` print the same, so they hash the same), then as scale
    /// and the mantissa's significant little-endian bytes: typical amounts take 3 to 5 bytes.
    #[inline]
    pub(super) fn dec(&mut self, d: Decimal) {
        let d = d.normalize();
        let m = d.mantissa();
        // Two's complement, without the high bytes that only repeat the sign.
        let magnitude_bits = 128 - (if m < 0 { !m } else { m }).leading_zeros();
        let n = (magnitude_bits as usize + 1).div_ceil(8);
        self.u8(d.scale() as u8);
        self.u8(n as u8);
        self.0.extend_from_slice(&m.to_le_bytes()[..n]);
    }
    pub(super) fn texts(&mut self, t: &<Texts as rkyv::Archive>::Archived) {
        self.len(t.len());
        // `visit` walks the archived tree in key order without allocating.
        t.visit(|k, v| {
            self.str(k.as_str());
            self.str(v.as_str());
            ControlFlow::<()>::Continue(())
        });
    }
    pub(super) fn price(&mut self, p: &ArchivedPrice) {
        self.dec(catalog::decimal(&p.net));
        self.dec(catalog::decimal(&p.gross));
    }
    pub(super) fn opt_price(&mut self, p: Option<&ArchivedPrice>) {
        match p {
            Some(p) => {
                self.u8(1);
                self.price(p);
            }
            None => self.u8(0),
        }
    }
    pub(super) fn prices(&mut self, p: &ArchivedPrices) {
        let ArchivedPrices {
            retail,
            wholesale,
            srp,
            strikethrough_retail,
            strikethrough_wholesale,
        } = p;
        for price in [
            retail,
            wholesale,
            srp,
            strikethrough_retail,
            strikethrough_wholesale,
        ] {
            self.opt_price(price.as_ref());
        }
    }
    pub(super) fn image(&mut self, i: &ArchivedImage) {
        let ArchivedImage {
            url,
            md5,
            changed,
            width,
            height,
        } = i;
        self.str(url.as_str());
        self.opt_str(md5.as_ref());
        self.opt_str(changed.as_ref());
        self.opt_u32(width.as_ref().map(|x| x.to_native()));
        self.opt_u32(height.as_ref().map(|x| x.to_native()));
    }
    pub(super) fn opt_image(&mut self, i: Option<&ArchivedImage>) {
        match i {
            Some(i) => {
                self.u8(1);
                self.image(i);
            }
            None => self.u8(0),
        }
    }
}

pub(super) fn product_type(t: &ArchivedProductType) -> u8 {
    match t {
        ArchivedProductType::Regular => 0,
        ArchivedProductType::Bundle => 1,
        ArchivedProductType::Collection => 2,
        ArchivedProductType::Packaging => 3,
        ArchivedProductType::Virtual => 4,
        ArchivedProductType::Service => 5,
    }
}

pub(super) fn code_standard(c: &ArchivedCodeStandard) -> u8 {
    match c {
        ArchivedCodeStandard::Auto => 0,
        ArchivedCodeStandard::Gtin14 => 1,
        ArchivedCodeStandard::Gtin13 => 2,
        ArchivedCodeStandard::Gtin12 => 3,
        ArchivedCodeStandard::Gtin8 => 4,
        ArchivedCodeStandard::Isbn13 => 5,
        ArchivedCodeStandard::Isbn10 => 6,
        ArchivedCodeStandard::Upce => 7,
        ArchivedCodeStandard::Mpn => 8,
        ArchivedCodeStandard::Other => 9,
    }
}

pub(super) fn attachment_codes(
    v: &ArchivedAttachmentVersion,
    e: &ArchivedAttachmentEnable,
    t: &ArchivedAttachmentType,
) -> [u8; 3] {
    let v = match v {
        ArchivedAttachmentVersion::Full => 0,
        ArchivedAttachmentVersion::Sample => 1,
        ArchivedAttachmentVersion::Demo => 2,
    };
    let e = match e {
        ArchivedAttachmentEnable::All => 0,
        ArchivedAttachmentEnable::OnlyLogged => 1,
        ArchivedAttachmentEnable::Ordered => 2,
        ArchivedAttachmentEnable::Wholesaler => 3,
        ArchivedAttachmentEnable::WholesalerOrOrdered => 4,
        ArchivedAttachmentEnable::WholesalerAndOrdered => 5,
    };
    let t = match t {
        ArchivedAttachmentType::Image => 0,
        ArchivedAttachmentType::Audio => 1,
        ArchivedAttachmentType::Video => 2,
        ArchivedAttachmentType::Doc => 3,
        ArchivedAttachmentType::Document => 4,
        ArchivedAttachmentType::Other => 5,
    };
    [v, e, t]
}

pub(super) fn bundle_type(t: &ArchivedBundleType) -> u8 {
    match t {
        ArchivedBundleType::Unspecified => 0,
        ArchivedBundleType::Specified => 1,
    }
}

pub(super) fn component_choice(c: &ArchivedComponentChoice) -> u8 {
    match c {
        ArchivedComponentChoice::ClientChoosesSize => 0,
        ArchivedComponentChoice::ClientChoosesVariant => 1,
        ArchivedComponentChoice::ClientChoosesDefinedSize => 2,
        ArchivedComponentChoice::ClientChoosesDefinedSizeAsSeparateItems => 3,
    }
}
