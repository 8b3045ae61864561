//! IOF 3.0 and CSV writers. They write to any `impl Write` and know nothing of sockets or
//! files; the artifacts stage decides where the bytes go.

mod csv;
mod dicts;
mod error;
mod gateway;
mod offer;
mod pricing;
mod reference;
mod used;
pub(crate) mod xml;

pub use self::csv::{write_full_csv, write_light_csv, FULL_COLUMNS, LIGHT_COLUMNS};
pub use dicts::DictIndex;
pub use error::RenderError;
pub use gateway::{write_gateway, Gateway, GatewayError, GatewayFile};
pub use offer::{
    full, light, write_change_product, write_full_footer, write_full_header, write_full_product,
    write_light_footer, write_light_header, write_light_product, write_main_node,
    write_removed_product, OfferMeta,
};
pub use reference::{write_reference, ReferenceKind, ReferenceMeta};
pub use used::Used;
/// Archive and read back narrowed dictionaries ([`Used::narrow`]).
pub mod narrowed {
    pub use super::used::{access, archive};
}
pub use xml::format_datetime;
