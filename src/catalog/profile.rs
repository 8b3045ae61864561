//! Render profiles (everything about a partner's settings that changes the bytes of a file)
//! and the main nodes of a product, the units change detection and change files speak in.
//! Partners with equal profiles share one rendered copy of each file.

// Money, VAT and quantities come from outside: every operation on them is checked.
#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;

use super::rules::{Rules, Subject, Tree, Verdict};
use super::{round_money, ArchivedProduct, Price};

/// Data format of an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// IOF 3.0 XML.
    #[serde(rename = "iof-3.0")]
    Iof30,
    /// `full.csv` / `light.csv`.
    #[serde(rename = "csv")]
    Csv,
}

/// The settings that decide a rendered file's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RenderProfile {
    /// The shop whose offer is rendered.
    pub shop: u32,
    pub format: Format,
    /// Serve files gzip-compressed (`.xml.gz`).
    pub gzip: bool,
    /// Languages whose texts appear; the first is the offer's default (`products@language`).
    pub languages: Vec<String>,
    /// ISO 4217 code of the prices written (`products@currency`).
    pub currency: String,
    /// Amount of `currency` per one unit of the catalog's base currency.
    pub rate: Decimal,
    /// Percent taken off light.xml prices.
    pub discount_percent: Decimal,
    /// Serve wholesale prices instead of retail ones.
    pub wholesale: bool,
    /// Leave out products with no stock (no size with quantity above 0 or -1).
    pub only_in_stock: bool,
    /// The account's assortment, price and stock rules. Left out of the serialized form
    /// when unrestricted, so an unrestricted profile keeps the keys it always had.
    #[serde(default, skip_serializing_if = "Rules::is_unrestricted")]
    pub rules: Rules,
}

impl RenderProfile {
    /// A short stable key naming the whole profile: the set of files one partner fetches
    /// (its gateway, surrogate keys, `language=` alternates). Files themselves are named by
    /// the narrower keys below, so partners that differ only where a file does not look
    /// share that file.
    pub fn key(&self) -> String {
        // serde_json of a struct is field-ordered, so equal profiles give equal keys.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let hash = blake3::hash(&canonical);
        hash.to_hex()[..16].to_string()
    }

    /// The key of full.xml (a base), its change files and full.csv: everything but the
    /// delivery choice (`gzip`: an `.xml.gz` file is the same bytes compressed) and the
    /// discount (written only in light files).
    /// Rules (which shape every full file) join the key only when there are any.
    pub fn full_key(&self) -> String {
        let settings = (
            self.shop,
            self.format,
            &self.languages,
            &self.currency,
            self.rate,
            self.wholesale,
            self.only_in_stock,
        );
        self.with_rules("full", settings)
    }

    /// The key of light.xml and light.csv: the full files' settings plus the discount.
    pub fn light_key(&self) -> String {
        let settings = (
            self.shop,
            self.format,
            &self.languages,
            &self.currency,
            self.rate,
            self.discount_percent,
            self.wholesale,
            self.only_in_stock,
        );
        self.with_rules("light", settings)
    }

    /// A file key of `settings`, with the rules joined only when there are any (so a
    /// partner without rules keeps the keys it had before rules existed).
    fn with_rules(&self, kind: &str, settings: impl serde::Serialize) -> String {
        if self.rules.is_unrestricted() {
            file_key(kind, &settings)
        } else {
            file_key(kind, &(settings, &self.rules))
        }
    }

    /// The key naming the bytes of file `name` (`full.xml`, `light.csv`,
    /// `full_change….xml.gz`, `categories.xml`, ...): full files and change files have
    /// [`RenderProfile::full_key`], light files [`RenderProfile::light_key`], the reference
    /// files [`RenderProfile::reference_key`].
    pub fn key_of_file(&self, name: &str) -> String {
        match FileKeys::kind(name) {
            FileKind::Full => self.full_key(),
            FileKind::Light => self.light_key(),
            FileKind::Reference => self.reference_key(),
        }
    }

    /// The key of the reference files (categories.xml, sizes.xml, ...): they show the
    /// dictionaries in the profile's languages and nothing else of it, unless an assortment
    /// or a warehouse choice narrows them to what the profile's products use (which then
    /// depends on everything that decides membership; price rules never do).
    pub fn reference_key(&self) -> String {
        if !self.narrows_references() {
            return file_key("reference", &(self.format, &self.languages));
        }
        let rules = (&self.rules.assortment, &self.rules.stock);
        file_key(
            "reference",
            &(
                self.format,
                &self.languages,
                self.shop,
                self.only_in_stock,
                rules,
            ),
        )
    }

    /// Whether the reference files list only what this profile's products use.
    pub fn narrows_references(&self) -> bool {
        !self.rules.assortment.is_empty() || !self.rules.stock.is_empty()
    }

    /// Whether the product is part of this profile's offer: offered in the profile's shop
    /// (an empty shop list means every shop) and admitted by the rules (for only-in-stock
    /// profiles, orderable in some shown size). `tree` resolves category subtrees.
    pub fn includes(&self, p: &ArchivedProduct, tree: &impl Tree) -> bool {
        self.verdict(p, tree).is_in()
    }

    /// [`RenderProfile::includes`] with its reason.
    pub fn verdict(&self, p: &ArchivedProduct, tree: &impl Tree) -> Verdict {
        if !(p.shops.is_empty() || p.shops.iter().any(|s| s.to_native() == self.shop)) {
            return Verdict::Out("not offered in the shop");
        }
        if self.rules.assortment.is_empty() && self.rules.stock.is_empty() {
            // The common case, without walking the stock twice.
            return match !self.only_in_stock || p.in_stock() {
                true => Verdict::In("offered in the shop"),
                false => Verdict::Out("only_in_stock and no stock"),
            };
        }
        let levels = p.sizes.iter().flat_map(|s| {
            s.stock
                .iter()
                .map(|l| (l.warehouse.to_native(), super::decimal(&l.quantity)))
        });
        self.rules
            .verdict(self.only_in_stock, subject(p), tree, levels)
    }

    /// [`RenderProfile::includes`] from kept facts (the changes stage remembers them for a
    /// product that has since changed): `in_shop`, the product's subject and its stock
    /// `levels` (warehouse, quantity).
    pub fn admits(
        &self,
        in_shop: bool,
        s: Subject,
        tree: &impl Tree,
        levels: impl Iterator<Item = (u32, Decimal)> + Clone,
    ) -> bool {
        in_shop
            && self
                .rules
                .verdict(self.only_in_stock, s, tree, levels)
                .is_in()
    }

    /// The offer's default language.
    pub fn language(&self) -> &str {
        self.languages.first().map(String::as_str).unwrap_or("pol")
    }

    /// A base-currency price converted to the profile's currency (as written in full.xml);
    /// `None` when it overflows (ingest and configuration bounds keep real data far from it).
    pub fn convert(&self, p: Price) -> Option<Price> {
        Some(Price {
            net: convert_amount(p.net, self.rate)?,
            gross: convert_amount(p.gross, self.rate)?,
        })
    }

    /// A base-currency price converted and discounted (as written in light.xml); `None` when
    /// it overflows.
    pub fn discounted(&self, p: Price) -> Option<Price> {
        let keep = discount_keep(self.discount_percent)?;
        Some(Price {
            net: discount_amount(p.net, self.rate, keep)?,
            gross: discount_amount(p.gross, self.rate, keep)?,
        })
    }
}

// The price formula, amount by amount; `render::pricing` applies the same functions, so full
// and light files and these methods cannot drift apart.

/// A base-currency amount at `rate`, rounded to the cent; `None` when it overflows.
pub fn convert_amount(d: Decimal, rate: Decimal) -> Option<Decimal> {
    d.checked_mul(rate).map(round_money)
}

/// What a discounted price keeps of the converted one: `(100 - discount_percent) / 100`.
pub fn discount_keep(discount_percent: Decimal) -> Option<Decimal> {
    Decimal::ONE_HUNDRED
        .checked_sub(discount_percent)?
        .checked_div(Decimal::ONE_HUNDRED)
}

/// A base-currency amount at `rate`, times `keep` (see [`discount_keep`]), rounded to the
/// cent; `None` when it overflows.
pub fn discount_amount(d: Decimal, rate: Decimal, keep: Decimal) -> Option<Decimal> {
    d.checked_mul(rate)?.checked_mul(keep).map(round_money)
}

/// What rules read of a product besides its stock.
pub fn subject(p: &ArchivedProduct) -> Subject {
    Subject {
        id: p.id.to_native(),
        producer: p.producer.as_ref().map(|x| x.to_native()),
        category: p.category.as_ref().map(|x| x.to_native()),
    }
}

/// The direct children of `<product>` plus its attributes: the units of change detection.
/// Each variant is the element of the same name ([`MainNode::name`]); `Attributes` stands for
/// the product element's own attributes (id, type, VAT, codes, currency, site).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MainNode {
    Attributes,
    Producer,
    Category,
    Unit,
    Series,
    Warranty,
    Card,
    Description,
    Price,
    Srp,
    StrikethroughRetail,
    StrikethroughWholesale,
    Promotion,
    Sizes,
    Images,
    Parameters,
    Attachments,
    Group,
    Bundled,
}

impl MainNode {
    /// Every main node, in declaration order.
    pub const ALL: [MainNode; 19] = [
        MainNode::Attributes,
        MainNode::Producer,
        MainNode::Category,
        MainNode::Unit,
        MainNode::Series,
        MainNode::Warranty,
        MainNode::Card,
        MainNode::Description,
        MainNode::Price,
        MainNode::Srp,
        MainNode::StrikethroughRetail,
        MainNode::StrikethroughWholesale,
        MainNode::Promotion,
        MainNode::Sizes,
        MainNode::Images,
        MainNode::Parameters,
        MainNode::Attachments,
        MainNode::Group,
        MainNode::Bundled,
    ];

    /// The element name (`attributes` for the product's own attributes).
    pub fn name(self) -> &'static str {
        match self {
            MainNode::Attributes => "attributes",
            MainNode::Producer => "producer",
            MainNode::Category => "category",
            MainNode::Unit => "unit",
            MainNode::Series => "series",
            MainNode::Warranty => "warranty",
            MainNode::Card => "card",
            MainNode::Description => "description",
            MainNode::Price => "price",
            MainNode::Srp => "srp",
            MainNode::StrikethroughRetail => "strikethrough_retail_price",
            MainNode::StrikethroughWholesale => "strikethrough_wholesale_price",
            MainNode::Promotion => "promotion",
            MainNode::Sizes => "sizes",
            MainNode::Images => "images",
            MainNode::Parameters => "parameters",
            MainNode::Attachments => "attachments",
            MainNode::Group => "group",
            MainNode::Bundled => "bundled",
        }
    }

    /// A one-bit mask of this node, for node sets.
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// A profile's three file keys, computed once where they are asked for on every request
/// (a partner account keeps them beside each of its profiles).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileKeys {
    pub full: String,
    pub light: String,
    pub reference: String,
}

/// Which of [`FileKeys`] names a file.
#[derive(Clone, Copy)]
enum FileKind {
    Full,
    Light,
    Reference,
}

impl FileKind {
    fn pick(self, keys: &FileKeys) -> &str {
        match self {
            FileKind::Full => &keys.full,
            FileKind::Light => &keys.light,
            FileKind::Reference => &keys.reference,
        }
    }
}

impl FileKeys {
    /// Every file key of `profile`.
    pub fn of_each(profile: &RenderProfile) -> FileKeys {
        FileKeys {
            full: profile.full_key(),
            light: profile.light_key(),
            reference: profile.reference_key(),
        }
    }

    /// The key of file `name` (see [`RenderProfile::key_of_file`]).
    pub fn of_file(&self, name: &str) -> &str {
        FileKeys::kind(name).pick(self)
    }

    fn kind(name: &str) -> FileKind {
        match name.split('.').next().unwrap_or(name) {
            "light" => FileKind::Light,
            k if k == "full" || k.starts_with("full_change") => FileKind::Full,
            _ => FileKind::Reference,
        }
    }
}

/// A short key for the settings `fields` of one family of files; `family` keeps the keys
/// of different families apart.
fn file_key(family: &str, fields: &impl serde::Serialize) -> String {
    let mut hash = blake3::Hasher::new();
    hash.update(family.as_bytes());
    hash.update(b"\0");
    hash.update(&serde_json::to_vec(fields).unwrap_or_default());
    hash.finalize().to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn profile() -> RenderProfile {
        RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip: false,
            languages: vec!["eng".into(), "pol".into()],
            currency: "EUR".into(),
            rate: Decimal::from_str("0.2345").unwrap(),
            discount_percent: Decimal::from_str("10").unwrap(),
            wholesale: false,
            only_in_stock: false,
            rules: Rules::default(),
        }
    }

    #[test]
    fn kept_file_keys_name_each_file_as_the_profile_does() {
        let p = profile();
        let keys = FileKeys::of_each(&p);
        for name in [
            "full.xml",
            "full.xml.gz",
            "full.csv",
            "full_change2026-11-22T10-30-00.xml",
            "light.xml",
            "light.csv",
            "categories.xml",
            "stocks.xml.gz",
        ] {
            assert_eq!(keys.of_file(name), p.key_of_file(name), "{name}");
        }
        assert_eq!(keys.of_file("full.xml"), p.full_key());
        assert_eq!(keys.of_file("light.xml.gz"), p.light_key());
        assert_eq!(keys.of_file("units.xml"), p.reference_key());
    }

    #[test]
    fn conversion_and_discount_round_to_cents() {
        let p = Price {
            net: Decimal::from_str("100.00").unwrap(),
            gross: Decimal::from_str("123.00").unwrap(),
        };
        let c = profile().convert(p.clone()).unwrap();
        assert_eq!(c.net.to_string(), "23.45");
        assert_eq!(c.gross.to_string(), "28.84"); // 28.8435
        let d = profile().discounted(p).unwrap();
        assert_eq!(d.net.to_string(), "21.11"); // 21.105 rounds away from zero
        assert_eq!(d.gross.to_string(), "25.96"); // 25.95915
    }

    #[test]
    fn a_conversion_that_overflows_is_none_not_a_panic() {
        let near_max = Decimal::from_str("79000000000000000000000000000").unwrap();
        let p = Price {
            net: near_max,
            gross: near_max,
        };
        let mut pr = profile();
        pr.rate = Decimal::from_str("4.3").unwrap();
        assert_eq!(pr.convert(p.clone()), None);
        assert_eq!(pr.discounted(p.clone()), None);
        // A rate below 1 shrinks it: fine.
        pr.rate = Decimal::from_str("0.5").unwrap();
        assert!(pr.convert(p).is_some());
    }

    #[test]
    fn equal_profiles_share_a_key() {
        assert_eq!(profile().key(), profile().key());
        let mut other = profile();
        other.only_in_stock = true;
        assert_ne!(profile().key(), other.key());
    }

    #[test]
    fn file_keys_hold_only_the_settings_their_files_show() {
        let base = profile();
        let mut gz = profile();
        gz.gzip = true;
        assert_ne!(base.key(), gz.key());
        assert_eq!(base.full_key(), gz.full_key());
        assert_eq!(base.light_key(), gz.light_key());
        assert_eq!(base.reference_key(), gz.reference_key());
        let mut discounted = profile();
        discounted.discount_percent = Decimal::from_str("20").unwrap();
        assert_eq!(base.full_key(), discounted.full_key());
        assert_ne!(base.light_key(), discounted.light_key());
        let mut other_shop = profile();
        other_shop.shop = 2;
        assert_ne!(base.full_key(), other_shop.full_key());
        assert_eq!(base.reference_key(), other_shop.reference_key());
        let mut other_languages = profile();
        other_languages.languages.reverse();
        assert_ne!(base.reference_key(), other_languages.reference_key());
        // The families never share a key.
        assert_ne!(base.full_key(), base.light_key());
    }
}
