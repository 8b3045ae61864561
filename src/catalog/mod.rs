//! The domain: products with every IOF 3.0 main node, the reference dictionaries, shops,
//! and the records the ERP sends.
//!
//! One set of types serves three purposes: the ERP's JSON Lines input (serde), the
//! snapshot's zero-copy archive (rkyv: `ArchivedProduct` and friends are what the renderers
//! read), and tests. Money and quantities are [`Decimal`], never floating point.
//!
//! Products refer to dictionary entries (producer, category, unit, series, warranty, size
//! group, parameters, warehouses) by id; names are resolved from the dictionaries when a
//! file is rendered, so a renamed producer is one record, not a million.

mod money;
mod profile;
pub mod rules;
pub mod sample;
mod validate;
pub use profile::{
    convert_amount, discount_amount, discount_keep, subject, FileKeys, Format, MainNode,
    RenderProfile,
};
pub use rules::Rules;
pub use validate::round_money;

use std::collections::BTreeMap;

pub use money::{DecimalDef, DecimalSchema};
pub use rust_decimal::Decimal;
pub use validate::{
    check_quantity, check_vat, FieldError, MAX_EXCHANGE_RATE, MAX_PRICE, MAX_QUANTITY,
};

/// Product ids are positive integers: light.xsd requires `product@id` to be an integer.
pub type ProductId = u64;

/// A three-letter lowercase language code as IOF uses (`pol`, `eng`, `ger`, ...).
pub type Lang = String;

/// Texts keyed by language code. Serialized as a JSON object `{"pol": "...", "eng": "..."}`.
pub type Texts = BTreeMap<Lang, String>;

macro_rules! model {
    ($($item:item)*) => {
        $(
            #[derive(
                Clone, Debug, PartialEq,
                serde::Serialize, serde::Deserialize,
                rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
                schemars::JsonSchema,
            )]
            #[serde(deny_unknown_fields)]
            $item
        )*
    };
}

macro_rules! model_enum {
    ($($item:item)*) => {
        $(
            #[derive(
                Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
                serde::Serialize, serde::Deserialize,
                rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
                schemars::JsonSchema,
            )]
            #[serde(rename_all = "snake_case")]
            $item
        )*
    };
}

model_enum! {
    /// `product@type`.
    pub enum ProductType {
        #[default]
        Regular,
        Bundle,
        Collection,
        Packaging,
        Virtual,
        Service,
    }

    /// `product@producer_code_standard`: what kind of code `size@code_producer` holds.
    pub enum CodeStandard {
        #[default]
        #[serde(rename = "AUTO")]
        Auto,
        #[serde(rename = "GTIN14")]
        Gtin14,
        #[serde(rename = "GTIN13")]
        Gtin13,
        #[serde(rename = "GTIN12")]
        Gtin12,
        #[serde(rename = "GTIN8")]
        Gtin8,
        #[serde(rename = "ISBN13")]
        Isbn13,
        #[serde(rename = "ISBN10")]
        Isbn10,
        #[serde(rename = "UPCE")]
        Upce,
        #[serde(rename = "MPN")]
        Mpn,
        #[serde(rename = "OTHER")]
        Other,
    }

    /// `bundled@type`.
    pub enum BundleType {
        #[default]
        Unspecified,
        Specified,
    }

    /// `bundled/product@type`.
    pub enum ComponentChoice {
        #[default]
        ClientChoosesSize,
        ClientChoosesVariant,
        ClientChoosesDefinedSize,
        ClientChoosesDefinedSizeAsSeparateItems,
    }

    /// `warranty@type`.
    pub enum WarrantyType {
        #[default]
        Producer,
        Seller,
        None,
    }

    /// `file@version` of an attachment.
    pub enum AttachmentVersion {
        #[default]
        Full,
        Sample,
        Demo,
    }

    /// `file@enable`: who may download an attachment.
    pub enum AttachmentEnable {
        #[default]
        All,
        OnlyLogged,
        Ordered,
        Wholesaler,
        WholesalerOrOrdered,
        WholesalerAndOrdered,
    }

    /// `file@attachment_file_type`.
    pub enum AttachmentType {
        Image,
        Audio,
        Video,
        Doc,
        Document,
        #[default]
        Other,
    }

    /// Whether a parameter-dictionary entry is a section heading or a parameter.
    pub enum ParameterKind {
        Section,
        #[default]
        Parameter,
    }
}

model! {
    /// A net/gross price pair in the catalog's base currency. The ERP may send either; ingest
    /// derives the other from the product's VAT rate, rounded half away from zero to 2 places.
    pub struct Price {
        #[rkyv(with = DecimalDef)]
        #[schemars(with = "DecimalSchema")]
        pub net: Decimal,
        #[rkyv(with = DecimalDef)]
        #[schemars(with = "DecimalSchema")]
        pub gross: Decimal,
    }

    /// The price nodes a product or a size can carry. Absent means "not set" (IOF: node omitted;
    /// for a size, inherit the product's).
    #[derive(Default)]
    pub struct Prices {
        /// Retail price (`<price>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub retail: Option<Price>,
        /// Wholesale price; served instead of retail to wholesale partners.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub wholesale: Option<Price>,
        /// Suggested retail price (`<srp>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub srp: Option<Price>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub strikethrough_retail: Option<Price>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub strikethrough_wholesale: Option<Price>,
    }

    /// Stock of one size in one warehouse. `quantity` -1 means unlimited or untracked.
    pub struct StockLevel {
        pub warehouse: u32,
        #[rkyv(with = DecimalDef)]
        #[schemars(with = "DecimalSchema")]
        pub quantity: Decimal,
        /// Physical stock when it differs from what can be ordered (`stock_quantity`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[rkyv(with = rkyv::with::Map<DecimalDef>)]
        #[schemars(with = "Option<DecimalSchema>")]
        pub physical: Option<Decimal>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub location: Option<String>,
    }

    /// One size of a product. One-size products carry a single size with id `uniw`.
    pub struct Size {
        /// Size id within the product's size group (`1`, `C`, `uniw`, ...).
        pub id: String,
        /// The unique code of the product in this size (`33-1`); an XML NMTOKEN.
        pub code: String,
        /// Producer code: EAN/GTIN/ISBN/MPN, as `producer_code_standard` says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code_producer: Option<String>,
        /// The ERP's own code for this size.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code_external: Option<String>,
        /// Weight with packaging, grams.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub weight: Option<u32>,
        /// Weight without packaging, grams.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub weight_net: Option<u32>,
        /// Per-size prices; unset ones inherit the product's.
        #[serde(default)]
        pub prices: Prices,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub stock: Vec<StockLevel>,
    }

    /// Product texts, each keyed by language.
    #[derive(Default)]
    pub struct Description {
        pub name: Texts,
        #[serde(default, skip_serializing_if = "Texts::is_empty")]
        pub short_desc: Texts,
        /// HTML allowed; written in CDATA.
        #[serde(default, skip_serializing_if = "Texts::is_empty")]
        pub long_desc: Texts,
        /// The product's name within its variant group.
        #[serde(default, skip_serializing_if = "Texts::is_empty")]
        pub version: Texts,
    }

    /// An image or icon reference.
    pub struct Image {
        pub url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub md5: Option<String>,
        /// When the image last changed, `YYYY-MM-DD hh:mm:ss` local time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub changed: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub height: Option<u32>,
    }

    /// The `<icons>` node.
    #[derive(Default)]
    pub struct Icons {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub icon: Option<Image>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auction_icon: Option<Image>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub group_icon: Option<Image>,
    }

    /// A product's use of a parameter-dictionary entry: a section heading (no values) or a
    /// parameter with the ids of its values, in display order.
    pub struct ProductParameter {
        pub id: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub values: Vec<u64>,
    }

    /// A downloadable attachment (`<attachments><file>`).
    pub struct Attachment {
        pub url: String,
        pub name: Texts,
        #[serde(default)]
        pub version: AttachmentVersion,
        #[serde(default)]
        pub enable: AttachmentEnable,
        #[serde(default)]
        pub file_type: AttachmentType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub extension: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub download_log: Option<bool>,
        /// Virtual products: how many downloads are allowed after payment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit_downloads: Option<u32>,
        /// Virtual products: for how many days after payment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit_days: Option<u32>,
    }

    /// Membership of a variant group (`<group>`).
    pub struct Group {
        pub id: u64,
        pub first_product_id: ProductId,
        /// Opaque id of the grouping parameter combination.
        pub by_parameter_id: String,
        /// The grouping parameters' joint name, e.g. "Kolor \ Model".
        pub by_parameter_name: Texts,
        /// Opaque id of this product's value combination.
        pub value_id: String,
        /// This product's value combination, e.g. "niebieski \ GHK 1999".
        pub value_name: Texts,
    }

    /// A component of a bundle or collection (`<bundled><product>`).
    pub struct BundledComponent {
        pub id: ProductId,
        #[rkyv(with = DecimalDef)]
        #[schemars(with = "DecimalSchema")]
        pub quantity: Decimal,
        #[serde(default)]
        pub choice: ComponentChoice,
        /// Restricts the component to these size ids of the component product.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub sizes: Vec<String>,
    }

    /// Components of a bundle or collection.
    pub struct Bundled {
        #[serde(default)]
        pub kind: BundleType,
        pub components: Vec<BundledComponent>,
    }

    /// A promotion (`<promotion>`).
    pub struct Promotion {
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub start_date: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ending_date: Option<String>,
        pub price: Price,
    }

    /// A product with every IOF 3.0 main node.
    pub struct Product {
        pub id: ProductId,
        #[serde(default, rename = "type")]
        pub kind: ProductType,
        /// VAT rate in percent, e.g. 23 (one rate for the whole product).
        #[rkyv(with = DecimalDef)]
        #[schemars(with = "DecimalSchema")]
        pub vat: Decimal,
        /// The supplier's code for the product, shown as `code_on_card`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<String>,
        #[serde(default)]
        pub producer_code_standard: CodeStandard,
        /// Shop ids this product is offered in; empty means every shop.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub shops: Vec<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub producer: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub category: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub unit: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub series: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub warranty: Option<u64>,
        /// Size group id from the sizes dictionary; `None` is the "one size" group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub size_group: Option<u64>,
        /// URL of the product page in the supplier's shop (`<card url>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub card_url: Option<String>,
        pub description: Description,
        #[serde(default)]
        pub prices: Prices,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub promotion: Option<Promotion>,
        /// At least one after ingest; a product sent without sizes gets the single `uniw` size.
        #[serde(default)]
        pub sizes: Vec<Size>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub images: Vec<Image>,
        #[serde(default)]
        pub icons: Icons,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub parameters: Vec<ProductParameter>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub attachments: Vec<Attachment>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub group: Option<Group>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bundled: Option<Bundled>,
        /// Input convenience for one-size products sent without `sizes`: stock summed or per
        /// warehouse. Ingest moves it into the single size; always empty in the store.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub stock: Vec<StockLevel>,
    }

    /// A node of the category tree (`categories.xml`). The path shown in full.xml
    /// (`A/B/C`) is built from the parents.
    pub struct Category {
        pub id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parent: Option<u64>,
        pub name: Texts,
    }

    /// A producer (brand); producers have no translations in IOF.
    pub struct Producer {
        pub id: u64,
        pub name: String,
    }

    /// A unit of measure.
    pub struct Unit {
        pub id: u64,
        pub name: Texts,
        /// Decimal places allowed in quantities: 0 for pieces, 3 for litres.
        #[serde(default)]
        pub precision: u8,
    }

    /// A product series.
    pub struct Series {
        pub id: u64,
        pub name: Texts,
    }

    /// A warranty.
    pub struct Warranty {
        pub id: u64,
        /// `"type"` in JSON: `"kind"` is the record tag.
        #[serde(default, rename = "type")]
        pub kind: WarrantyType,
        /// Length in months.
        pub period_months: u32,
        pub name: Texts,
        /// HTML allowed.
        #[serde(default, skip_serializing_if = "Texts::is_empty")]
        pub description: Texts,
    }

    /// A warehouse (`stocks.xml`); id 0 is conventionally the supplier's external warehouse.
    pub struct Warehouse {
        pub id: u32,
        pub name: Texts,
    }

    /// One size of a size group.
    pub struct SizeDef {
        pub id: String,
        pub name: Texts,
    }

    /// A size group (`sizes.xml`).
    pub struct SizeGroup {
        pub id: u64,
        pub name: String,
        pub sizes: Vec<SizeDef>,
    }

    /// One value of a parameter.
    pub struct ParameterValue {
        pub id: u64,
        pub name: Texts,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub context: Option<String>,
    }

    /// A parameter-dictionary entry: a section heading or a parameter with its values.
    pub struct Parameter {
        pub id: u64,
        /// `"type"` in JSON: `"kind"` is the record tag.
        #[serde(default, rename = "type")]
        pub kind: ParameterKind,
        pub name: Texts,
        #[serde(default, skip_serializing_if = "Texts::is_empty")]
        pub description: Texts,
        #[serde(default)]
        pub priority: u32,
        /// IOF `context_id`, e.g. `CONTEXT_COLOR`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub context: Option<String>,
        #[serde(default)]
        pub distinction: bool,
        #[serde(default)]
        pub group_distinction: bool,
        #[serde(default)]
        pub hide: bool,
        #[serde(default)]
        pub auction_template_hide: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub values: Vec<ParameterValue>,
    }

    /// The postal address in the gateway's `<meta>`.
    #[derive(Default)]
    pub struct Address {
        #[serde(default)]
        pub street: String,
        #[serde(default)]
        pub zipcode: String,
        #[serde(default)]
        pub city: String,
        #[serde(default)]
        pub country: String,
        #[serde(default)]
        pub province: String,
    }

    /// A shop whose offer iofd publishes, with the supplier metadata for the gateway.
    pub struct Shop {
        pub id: u32,
        /// `meta/long_name`; the XSD allows only `[a-zA-Z0-9_ -]`.
        pub long_name: String,
        /// `meta/short_name`; letters, digits, `_`, `-`.
        pub short_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub logo_url: Option<String>,
        #[serde(default)]
        pub email: String,
        #[serde(default)]
        pub tel: String,
        #[serde(default)]
        pub fax: String,
        #[serde(default)]
        pub www: String,
        #[serde(default)]
        pub address: Address,
    }

    /// Every reference dictionary, each sorted by id.
    #[derive(Default)]
    pub struct Dictionaries {
        #[serde(default)]
        pub shops: Vec<Shop>,
        #[serde(default)]
        pub categories: Vec<Category>,
        #[serde(default)]
        pub producers: Vec<Producer>,
        #[serde(default)]
        pub units: Vec<Unit>,
        #[serde(default)]
        pub series: Vec<Series>,
        #[serde(default)]
        pub warranties: Vec<Warranty>,
        #[serde(default)]
        pub warehouses: Vec<Warehouse>,
        #[serde(default)]
        pub size_groups: Vec<SizeGroup>,
        #[serde(default)]
        pub parameters: Vec<Parameter>,
    }
}

/// One line of the ERP's JSON Lines input: `{"kind": "product", ...}`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// Insert or replace a whole product.
    Product(Box<Product>),
    /// Remove a product.
    DeleteProduct {
        id: ProductId,
    },
    Shop(Shop),
    Category(Category),
    Producer(Producer),
    Unit(Unit),
    Series(Series),
    Warranty(Warranty),
    Warehouse(Warehouse),
    SizeGroup(SizeGroup),
    Parameter(Parameter),
}

impl Record {
    /// What the record is about, for error messages and reports: `product 17`, `producer 3`.
    pub fn subject(&self) -> String {
        match self {
            Record::Product(p) => format!("product {}", p.id),
            Record::DeleteProduct { id } => format!("product {id}"),
            Record::Shop(s) => format!("shop {}", s.id),
            Record::Category(c) => format!("category {}", c.id),
            Record::Producer(p) => format!("producer {}", p.id),
            Record::Unit(u) => format!("unit {}", u.id),
            Record::Series(s) => format!("series {}", s.id),
            Record::Warranty(w) => format!("warranty {}", w.id),
            Record::Warehouse(w) => format!("warehouse {}", w.id),
            Record::SizeGroup(g) => format!("size group {}", g.id),
            Record::Parameter(p) => format!("parameter {}", p.id),
        }
    }
}

impl Dictionaries {
    /// Insert or replace one dictionary record, keeping every list sorted by id.
    /// Returns `false` for records that are not dictionary entries.
    pub fn upsert(&mut self, record: &Record) -> bool {
        fn put<T: Clone>(list: &mut Vec<T>, item: &T, key: impl Fn(&T) -> u64) {
            match list.binary_search_by_key(&key(item), &key) {
                Ok(i) => list[i] = item.clone(),
                Err(i) => list.insert(i, item.clone()),
            }
        }
        match record {
            Record::Shop(x) => put(&mut self.shops, x, |s| u64::from(s.id)),
            Record::Category(x) => put(&mut self.categories, x, |c| c.id),
            Record::Producer(x) => put(&mut self.producers, x, |p| p.id),
            Record::Unit(x) => put(&mut self.units, x, |u| u.id),
            Record::Series(x) => put(&mut self.series, x, |s| s.id),
            Record::Warranty(x) => put(&mut self.warranties, x, |w| w.id),
            Record::Warehouse(x) => put(&mut self.warehouses, x, |w| u64::from(w.id)),
            Record::SizeGroup(x) => put(&mut self.size_groups, x, |g| g.id),
            Record::Parameter(x) => put(&mut self.parameters, x, |p| p.id),
            Record::Product(_) | Record::DeleteProduct { .. } => return false,
        }
        true
    }

    /// Every entry as a record, dictionary by dictionary (shops first, parameters last):
    /// what [`Dictionaries::upsert`] takes back.
    pub fn into_records(self) -> Vec<Record> {
        let Dictionaries {
            shops,
            categories,
            producers,
            units,
            series,
            warranties,
            warehouses,
            size_groups,
            parameters,
        } = self;
        let mut out = Vec::new();
        out.extend(shops.into_iter().map(Record::Shop));
        out.extend(categories.into_iter().map(Record::Category));
        out.extend(producers.into_iter().map(Record::Producer));
        out.extend(units.into_iter().map(Record::Unit));
        out.extend(series.into_iter().map(Record::Series));
        out.extend(warranties.into_iter().map(Record::Warranty));
        out.extend(warehouses.into_iter().map(Record::Warehouse));
        out.extend(size_groups.into_iter().map(Record::SizeGroup));
        out.extend(parameters.into_iter().map(Record::Parameter));
        out
    }
}

impl ArchivedProductType {
    /// The IOF `product@type` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            ArchivedProductType::Regular => "regular",
            ArchivedProductType::Bundle => "bundle",
            ArchivedProductType::Collection => "collection",
            ArchivedProductType::Packaging => "packaging",
            ArchivedProductType::Virtual => "virtual",
            ArchivedProductType::Service => "service",
        }
    }
}

impl ArchivedCodeStandard {
    /// The IOF `product@producer_code_standard` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            ArchivedCodeStandard::Auto => "AUTO",
            ArchivedCodeStandard::Gtin14 => "GTIN14",
            ArchivedCodeStandard::Gtin13 => "GTIN13",
            ArchivedCodeStandard::Gtin12 => "GTIN12",
            ArchivedCodeStandard::Gtin8 => "GTIN8",
            ArchivedCodeStandard::Isbn13 => "ISBN13",
            ArchivedCodeStandard::Isbn10 => "ISBN10",
            ArchivedCodeStandard::Upce => "UPCE",
            ArchivedCodeStandard::Mpn => "MPN",
            ArchivedCodeStandard::Other => "OTHER",
        }
    }
}

impl Product {
    /// A product with an id and nothing else: regular, 23% VAT, no nodes. The base that
    /// importers and tools fill in (`Product { vat, ..Product::empty(id) }`).
    pub fn empty(id: ProductId) -> Product {
        Product {
            id,
            kind: ProductType::default(),
            vat: Decimal::from(23),
            code: None,
            producer_code_standard: CodeStandard::default(),
            shops: Vec::new(),
            producer: None,
            category: None,
            unit: None,
            series: None,
            warranty: None,
            size_group: None,
            card_url: None,
            description: Description::default(),
            prices: Prices::default(),
            promotion: None,
            sizes: Vec::new(),
            images: Vec::new(),
            icons: Icons::default(),
            parameters: Vec::new(),
            attachments: Vec::new(),
            group: None,
            bundled: None,
            stock: Vec::new(),
        }
    }

    /// A product with an id and a name in one language and nothing else (tests and tools);
    /// `normalize()` gives it its single one-size size.
    pub fn named(id: ProductId, lang: &str, name: &str) -> Product {
        Product {
            description: Description {
                name: Texts::from([(lang.to_owned(), name.to_owned())]),
                ..Default::default()
            },
            ..Product::empty(id)
        }
    }

    /// True when any size can be ordered: a quantity above zero or -1 (unlimited).
    pub fn in_stock(&self) -> bool {
        self.sizes
            .iter()
            .flat_map(|s| &s.stock)
            .any(|s| s.quantity > Decimal::ZERO || s.quantity == Decimal::NEGATIVE_ONE)
    }
}

impl ArchivedProduct {
    /// True when any size can be ordered: a quantity above zero or -1 (unlimited).
    pub fn in_stock(&self) -> bool {
        self.sizes.iter().flat_map(|s| s.stock.iter()).any(|s| {
            let q = money::archived(&s.quantity);
            q > Decimal::ZERO || q == Decimal::NEGATIVE_ONE
        })
    }
}

pub use money::archived as decimal;
