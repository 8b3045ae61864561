//! The one batch builder of every ingest path (HTTP bodies, drop-folder files, `iofd import`):
//! records go to a [`Target`] in order, under one duplicate rule. Within a batch a product id
//! may appear once: a later product record with an id seen earlier is rejected (the first
//! stays), naming where the first was — `on line N` in the same input, `on FILE:N` in another,
//! `in FILE` for an input without lines (an IOF offer). Deletions and dictionary records are
//! not products and never count as duplicates.

use std::collections::HashMap;
use std::io::BufRead;

use crate::catalog::{ProductId, Record};

use super::{IngestError, JsonlReader, LineError, Rejection};

/// Lines parsed together (on every core) before they are added in order: a few MB of input.
const PARSED_AT_ONCE: usize = 2048;

/// Where a batch's accepted records go, in order (memory, a spool on disk, ...).
pub trait Target {
    /// The target's own failure (a spool that cannot be written, say).
    type Error;
    /// Take an accepted record, read at `line` of its input (0: the input has no lines).
    fn push(&mut self, line: u64, record: Record) -> Result<(), Self::Error>;
}

impl Target for Vec<Record> {
    type Error = std::convert::Infallible;
    fn push(&mut self, _line: u64, record: Record) -> Result<(), Self::Error> {
        self.push(record);
        Ok(())
    }
}

/// Reading an input into a batch stopped.
#[derive(Debug, thiserror::Error)]
pub enum BatchError<E: std::error::Error + 'static> {
    /// The input could not be read.
    #[error(transparent)]
    Read(#[from] IngestError),
    /// The target refused a record.
    #[error(transparent)]
    Target(E),
}

/// Records of one or more inputs, checked for duplicates and handed to a [`Target`].
#[derive(Debug)]
pub struct BatchBuilder<T> {
    target: T,
    /// Where each product id was first seen: index into `sources`, and line.
    seen: HashMap<ProductId, (u32, u64)>,
    /// The inputs' names, each once (a batch may hold millions of products).
    sources: Vec<String>,
    count: usize,
}

impl<T: Target> BatchBuilder<T> {
    pub fn new(target: T) -> Self {
        BatchBuilder {
            target,
            seen: HashMap::new(),
            sources: Vec::new(),
            count: 0,
        }
    }

    /// The index of `source` in `sources`. Inputs are added one after another, so only the
    /// last name is compared (an input seen again later is simply listed twice).
    fn source_index(&mut self, source: &str) -> u32 {
        if self.sources.last().map(String::as_str) != Some(source) {
            self.sources.push(source.to_owned());
        }
        u32::try_from(self.sources.len() - 1).unwrap_or(u32::MAX)
    }

    /// Add `record`, read at `source:line`: `Ok(Some(_))` when it is a duplicate (not added).
    pub fn add(
        &mut self,
        source: &str,
        line: u64,
        record: Record,
    ) -> Result<Option<Rejection>, T::Error> {
        if let Record::Product(p) = &record {
            let index = self.source_index(source);
            if let Some(&(first_index, first)) = self.seen.get(&p.id) {
                let first_source = self
                    .sources
                    .get(first_index as usize)
                    .map_or("", String::as_str);
                let at = match (first_source == source, first) {
                    (_, 0) => format!("in {first_source}"),
                    (true, first) => format!("on line {first}"),
                    (false, first) => format!("on {first_source}:{first}"),
                };
                return Ok(Some(Rejection {
                    source: source.to_owned(),
                    line,
                    field: Some("id".into()),
                    reason: format!("duplicate of product {} {at}", p.id),
                }));
            }
            self.seen.insert(p.id, (index, line));
        }
        self.target.push(line, record)?;
        self.count += 1;
        Ok(None)
    }

    /// Add every line of a JSON Lines input; each rejected line (bad, or a duplicate) goes to
    /// `rejected` and reading goes on. Memory: about 24 bytes per product (id, input, line), plus the target's.
    pub fn add_jsonl(
        &mut self,
        source: &str,
        reader: impl BufRead,
        rejected: &mut dyn FnMut(Rejection),
    ) -> Result<(), BatchError<T::Error>>
    where
        T::Error: std::error::Error + 'static,
    {
        let mut lines = JsonlReader::new(source, reader);
        loop {
            let items = lines.next_many(PARSED_AT_ONCE);
            if items.is_empty() {
                return Ok(());
            }
            for item in items {
                match item {
                    Ok(parsed) => {
                        if let Some(r) = self
                            .add(source, parsed.line, parsed.record)
                            .map_err(BatchError::Target)?
                        {
                            rejected(r);
                        }
                    }
                    Err(LineError::Rejected(r)) => rejected(r),
                    Err(LineError::Fatal(e)) => return Err(BatchError::Read(e)),
                }
            }
        }
    }

    /// Records accepted so far.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn target(&self) -> &T {
        &self.target
    }

    pub fn target_mut(&mut self) -> &mut T {
        &mut self.target
    }

    pub fn into_target(self) -> T {
        self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: u64) -> String {
        format!(r#"{{"kind":"product","id":{id},"vat":23,"description":{{"name":{{"pol":"x"}}}}}}"#)
    }

    #[test]
    fn a_duplicate_names_its_first_occurrence_in_any_input() {
        let mut b = BatchBuilder::new(Vec::new());
        let mut rejected = Vec::new();
        let one = format!("{}\n{}\n{}\n", product(1), product(2), product(1));
        b.add_jsonl("a.jsonl", one.as_bytes(), &mut |r| rejected.push(r))
            .unwrap();
        b.add_jsonl("b.jsonl", product(2).as_bytes(), &mut |r| rejected.push(r))
            .unwrap();
        let shown: Vec<String> = rejected.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "a.jsonl:3: id: duplicate of product 1 on line 1",
                "b.jsonl:1: id: duplicate of product 2 on a.jsonl:2",
            ],
            "{rejected:?}"
        );
        assert_eq!(b.count(), 2);
        let records = b.into_target();
        assert_eq!(records.len(), 2);
        let mut b = BatchBuilder::new(Vec::new());
        assert!(b.add("offer", 0, records[0].clone()).unwrap().is_none());
        let again = b.add("offer", 0, records[0].clone()).unwrap().unwrap();
        assert_eq!(again.reason, "duplicate of product 1 in offer");
        // A deletion is not a product record: never a duplicate.
        assert!(b
            .add("offer", 0, Record::DeleteProduct { id: 1 })
            .unwrap()
            .is_none());
    }
}
