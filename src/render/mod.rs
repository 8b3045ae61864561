//! IOF 3.0 and CSV writers. They write to any `impl Write` and know nothing of sockets or
//! files; the artifacts stage decides where the bytes go.

mod error;
mod profile;
mod reference;

pub use error::RenderError;
pub use profile::{Format, RenderProfile};
pub use reference::{write_reference, ReferenceKind, ReferenceMeta};
