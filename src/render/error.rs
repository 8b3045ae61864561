//! Why rendering a file failed.

/// An error while rendering a file. Rendering reads only the snapshot, which was validated
/// when it was built, so what remains is the output failing: the sink, or a writer library.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The destination refused the bytes (disk full, closed pipe, ...).
    #[error("cannot write the rendered file: {0}")]
    Io(#[from] std::io::Error),
    /// The XML writer failed for a reason other than I/O.
    #[error("XML writer: {0}")]
    Xml(#[from] quick_xml::Error),
    /// The CSV writer failed (its I/O failures included: `csv::Error::is_io_error`).
    #[error("CSV writer: {0}")]
    Csv(#[from] csv::Error),
}
