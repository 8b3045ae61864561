//! IOF 3.0 and CSV writers. They write to any `impl Write` and know nothing of sockets or
//! files; the artifacts stage decides where the bytes go.

mod profile;

pub use profile::{Format, RenderProfile};
