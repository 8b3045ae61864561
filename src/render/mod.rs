//! IOF 3.0 and CSV writers. They write to any `impl Write` and know nothing of sockets or
//! files; the artifacts stage decides where the bytes go.

mod csv;
mod error;
mod profile;
mod reference;

pub use self::csv::{write_full_csv, write_light_csv, FULL_COLUMNS, LIGHT_COLUMNS};
pub use error::RenderError;
pub use profile::{Format, RenderProfile};
pub use reference::{write_reference, ReferenceKind, ReferenceMeta};
