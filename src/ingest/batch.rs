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
        reader: impl BufRead + Send,
        rejected: &mut dyn FnMut(Rejection),
    ) -> Result<(), BatchError<T::Error>>
    where
        T::Error: std::error::Error + 'static,
    {
        // Lines are read and parsed on a thread of their own, one lot ahead, while the lot
        // before goes to the target here: a spool's serializing and writing overlaps the
        // parsing instead of following it. (The lock is never contended: it lets this thread
        // parse when no other thread can be had.)
        let lines = std::sync::Mutex::new(JsonlReader::new(source, reader));
        let next = || {
            let mut lines = lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            lines.next_many(PARSED_AT_ONCE)
        };
        std::thread::scope(|scope| {
            let (lots, parsed) = std::sync::mpsc::sync_channel(1);
            let parser = std::thread::Builder::new()
                .name("iofd-parse".into())
                .spawn_scoped(scope, move || loop {
                    let items = next();
                    let end = items.is_empty();
                    // A closed channel: the target failed and stopped taking lots.
                    if lots.send(items).is_err() || end {
                        return;
                    }
                });
            match parser {
                Ok(_) => {
                    for items in parsed {
                        if items.is_empty() {
                            break;
                        }
                        self.add_parsed(source, items, rejected)?;
                    }
                    Ok(())
                }
                Err(_) => loop {
                    let items = next();
                    if items.is_empty() {
                        return Ok(());
                    }
                    self.add_parsed(source, items, rejected)?;
                },
            }
        })
    }

    fn add_parsed(
        &mut self,
        source: &str,
        items: Vec<Result<super::jsonl::ParsedLine, LineError>>,
        rejected: &mut dyn FnMut(Rejection),
    ) -> Result<(), BatchError<T::Error>>
    where
        T::Error: std::error::Error + 'static,
    {
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
        Ok(())
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

    /// Lines are parsed a lot ahead on another thread: records and rejections still arrive in
    /// input order across lots, and a target that fails stops the reading soon after.
    #[test]
    fn lots_arrive_in_order_and_a_failing_target_stops_the_reading() {
        use std::io::{BufReader, Read};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        struct Counted<R>(R, Arc<AtomicUsize>);
        impl<R: Read> Read for Counted<R> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.read(buf)?;
                self.1.fetch_add(n, Ordering::Relaxed);
                Ok(n)
            }
        }
        /// Takes records until `fail_at` of them, then fails.
        struct Lines {
            lines: Vec<u64>,
            fail_at: usize,
        }
        #[derive(Debug, thiserror::Error)]
        #[error("full")]
        struct Full;
        impl Target for Lines {
            type Error = Full;
            fn push(&mut self, line: u64, _: Record) -> Result<(), Full> {
                if self.lines.len() == self.fail_at {
                    return Err(Full);
                }
                self.lines.push(line);
                Ok(())
            }
        }
        let lots = 8;
        let n = lots * PARSED_AT_ONCE as u64;
        // Every 1000th line is not JSON: rejected in its place.
        let input: String = (1..=n)
            .map(|i| match i % 1000 {
                0 => "not json\n".to_string(),
                _ => product(i) + "\n",
            })
            .collect();
        let read = Arc::new(AtomicUsize::new(0));
        let reader = || BufReader::new(Counted(input.as_bytes(), read.clone()));

        let mut b = BatchBuilder::new(Lines {
            lines: Vec::new(),
            fail_at: usize::MAX,
        });
        let mut rejected = Vec::new();
        b.add_jsonl("a.jsonl", reader(), &mut |r| rejected.push(r.line))
            .unwrap();
        let accepted = &b.target().lines;
        let expected: Vec<u64> = (1..=n).filter(|i| i % 1000 != 0).collect();
        assert_eq!(accepted, &expected);
        assert_eq!(
            rejected,
            (1..=n / 1000).map(|k| k * 1000).collect::<Vec<_>>()
        );
        assert_eq!(read.load(Ordering::Relaxed), input.len());

        // Failing within the second lot: the parser is at most a lot or two ahead.
        read.store(0, Ordering::Relaxed);
        let fail_at = PARSED_AT_ONCE + 10;
        let mut b = BatchBuilder::new(Lines {
            lines: Vec::new(),
            fail_at,
        });
        let err = b.add_jsonl("a.jsonl", reader(), &mut |_| {}).unwrap_err();
        assert!(matches!(err, BatchError::Target(Full)), "{err:?}");
        assert_eq!(b.target().lines.len(), fail_at);
        let lot_bytes = input.len() / lots as usize;
        assert!(
            read.load(Ordering::Relaxed) <= 5 * lot_bytes,
            "read {} of {} bytes after the target failed",
            read.load(Ordering::Relaxed),
            input.len()
        );
    }
}
