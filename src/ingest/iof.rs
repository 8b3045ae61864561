//! IOF 3.0 offers read back into catalog records (placeholder, filled in next).

use std::path::Path;

use crate::catalog::Record;

/// An IOF offer mapped to records, with notes on what could not be mapped.
#[derive(Debug, Default)]
pub struct Offer {
    pub records: Vec<Record>,
    pub notes: Vec<String>,
}

/// Why an offer cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IofError {
    #[error("{0}")]
    Unsupported(String),
}

/// Read an offer from a full.xml, a gateway file or a directory.
pub fn read_offer(path: &Path) -> Result<Offer, IofError> {
    Err(IofError::Unsupported(format!(
        "{}: not yet",
        path.display()
    )))
}
