//! Why rendering a file failed.

/// An error while rendering a file. Rendering reads only the snapshot, which was validated
/// when it was built, so what remains is the output failing (the sink, or a writer library)
/// or a number that cannot be written right.
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
    /// A value does not fit a decimal once converted (a price times the exchange rate, a
    /// stock total). Ingest bounds prices and rates so stored data never gets here; a file
    /// with a wrong number in it is not written.
    #[error("product {product}, size {size}: {column} overflows the decimal range")]
    Overflow {
        product: u64,
        size: String,
        column: &'static str,
    },
    /// The dictionaries could not be read or written back for a partner's narrowed
    /// reference files.
    #[error("narrowing the dictionaries: {0}")]
    Dictionaries(#[source] Box<rkyv::rancor::Error>),
}
