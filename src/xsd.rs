//! Validation of generated files against the official IOF 3.0 schemas.
//!
//! The schemas are embedded in the binary (byte-identical copies of `fixtures/iof/xsd/`) and
//! checked with libxml2's `xmllint`, offline, through an XML catalog that maps the schemas'
//! remote imports onto the local copies. Used by the test suite and by `iofd validate`.
//! A missing `xmllint` is an error, never a silent pass.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every schema file, embedded: (file name, contents).
const FILES: &[(&str, &[u8])] = &[
    (
        "catalog.xml",
        include_bytes!("../fixtures/iof/xsd/catalog.xml"),
    ),
    (
        "categories.xsd",
        include_bytes!("../fixtures/iof/xsd/categories.xsd"),
    ),
    ("full.xsd", include_bytes!("../fixtures/iof/xsd/full.xsd")),
    (
        "full_change.xsd",
        include_bytes!("../fixtures/iof/xsd/full_change.xsd"),
    ),
    (
        "gateway.xsd",
        include_bytes!("../fixtures/iof/xsd/gateway.xsd"),
    ),
    (
        "iaiext-permissive-stub.xsd",
        include_bytes!("../fixtures/iof/xsd/iaiext-permissive-stub.xsd"),
    ),
    ("light.xsd", include_bytes!("../fixtures/iof/xsd/light.xsd")),
    (
        "parameters.xsd",
        include_bytes!("../fixtures/iof/xsd/parameters.xsd"),
    ),
    (
        "preset.xsd",
        include_bytes!("../fixtures/iof/xsd/preset.xsd"),
    ),
    (
        "producers.xsd",
        include_bytes!("../fixtures/iof/xsd/producers.xsd"),
    ),
    (
        "series.xsd",
        include_bytes!("../fixtures/iof/xsd/series.xsd"),
    ),
    ("sizes.xsd", include_bytes!("../fixtures/iof/xsd/sizes.xsd")),
    (
        "stocks.xsd",
        include_bytes!("../fixtures/iof/xsd/stocks.xsd"),
    ),
    ("units.xsd", include_bytes!("../fixtures/iof/xsd/units.xsd")),
    (
        "warranties.xsd",
        include_bytes!("../fixtures/iof/xsd/warranties.xsd"),
    ),
    ("xml.xsd", include_bytes!("../fixtures/iof/xsd/xml.xsd")),
];

/// One official schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    Gateway,
    Full,
    FullChange,
    Light,
    Categories,
    Sizes,
    Producers,
    Units,
    Parameters,
    Series,
    Stocks,
    Warranties,
    Preset,
}

impl Schema {
    /// The schema's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Schema::Gateway => "gateway.xsd",
            Schema::Full => "full.xsd",
            Schema::FullChange => "full_change.xsd",
            Schema::Light => "light.xsd",
            Schema::Categories => "categories.xsd",
            Schema::Sizes => "sizes.xsd",
            Schema::Producers => "producers.xsd",
            Schema::Units => "units.xsd",
            Schema::Parameters => "parameters.xsd",
            Schema::Series => "series.xsd",
            Schema::Stocks => "stocks.xsd",
            Schema::Warranties => "warranties.xsd",
            Schema::Preset => "preset.xsd",
        }
    }

    /// The schema for a file kind named as in the gateway (`full`, `light`, `categories`, ...);
    /// change files (`full_change…`) use `full_change.xsd`.
    pub fn for_kind(kind: &str) -> Option<Schema> {
        Some(match kind {
            "gateway" => Schema::Gateway,
            "full" => Schema::Full,
            "light" => Schema::Light,
            "categories" => Schema::Categories,
            "sizes" => Schema::Sizes,
            "producers" => Schema::Producers,
            "units" => Schema::Units,
            "parameters" => Schema::Parameters,
            "series" => Schema::Series,
            "stocks" => Schema::Stocks,
            "warranties" => Schema::Warranties,
            "preset" => Schema::Preset,
            k if k.starts_with("full_change") => Schema::FullChange,
            _ => return None,
        })
    }
}

/// Why a document did not validate.
#[derive(Debug, thiserror::Error)]
pub enum XsdError {
    #[error(
        "xmllint is not installed (Debian package libxml2-utils): schema validation cannot run"
    )]
    ValidatorMissing,
    #[error("cannot prepare the schema directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("does not validate against {schema}:\n{messages}")]
    Invalid {
        schema: &'static str,
        messages: String,
    },
}

/// The embedded schemas written out once per process into a private temporary directory.
fn schema_dir() -> Result<&'static Path, XsdError> {
    static DIR: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("iofd-xsd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for (name, bytes) in FILES {
            std::fs::write(dir.join(name), bytes).map_err(|e| e.to_string())?;
        }
        Ok(dir)
    });
    match dir {
        Ok(p) => Ok(p.as_path()),
        Err(e) => Err(XsdError::Io(std::io::Error::other(e.clone()))),
    }
}

/// Validate `xml` against `schema` with `xmllint --nonet`, offline.
pub fn validate(schema: Schema, xml: &[u8]) -> Result<(), XsdError> {
    let dir = schema_dir()?;
    let mut child = match Command::new("xmllint")
        .env("XML_CATALOG_FILES", dir.join("catalog.xml"))
        .arg("--nonet")
        .arg("--noout")
        .arg("--schema")
        .arg(dir.join(schema.file_name()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(XsdError::ValidatorMissing)
        }
        Err(e) => return Err(XsdError::Io(e)),
    };
    // Feed stdin from a thread so a large document cannot deadlock against stderr.
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let input = xml.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    // A write error here only means xmllint stopped reading early; its verdict below says why.
    let _ = writer.join();
    if out.status.success() {
        return Ok(());
    }
    let mut messages = String::from_utf8_lossy(&out.stderr).into_owned();
    if messages.len() > 8000 {
        let mut cut = 8000;
        while !messages.is_char_boundary(cut) {
            cut -= 1;
        }
        messages.truncate(cut);
        messages.push_str("\n…");
    }
    Err(XsdError::Invalid {
        schema: schema.file_name(),
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/iof/examples");

    fn example(name: &str) -> Vec<u8> {
        std::fs::read(format!("{EXAMPLES}/{name}")).expect("vendored example")
    }

    #[test]
    fn official_examples_validate() {
        for (file, schema) in [
            ("gateway.xml", Schema::Gateway),
            ("full.xml", Schema::Full),
            ("light.xml", Schema::Light),
            ("categories.xml", Schema::Categories),
            ("producers.xml", Schema::Producers),
            ("units.xml", Schema::Units),
            ("parameters.xml", Schema::Parameters),
            ("series.xml", Schema::Series),
            ("stocks.xml", Schema::Stocks),
            ("warranties.xml", Schema::Warranties),
        ] {
            if let Err(e) = validate(schema, &example(file)) {
                panic!("{file}: {e}");
            }
        }
    }

    #[test]
    fn a_broken_document_is_rejected_with_the_reason() {
        // The official change file lacks offer@extensions, which full_change.xsd requires.
        let err = validate(
            Schema::FullChange,
            &example("full_change2022-02-16T10-33-11.xml"),
        )
        .unwrap_err();
        assert!(matches!(err, XsdError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("extensions"), "{err}");
        let err = validate(Schema::Light, b"<offer/>").unwrap_err();
        assert!(matches!(err, XsdError::Invalid { .. }), "{err}");
    }
}
