//! The change log: an append-only, fsynced sequence of frames, one per observed generation,
//! each holding the products that changed and how (changed nodes with their old and new
//! hashes, added, removed), plus the shard contents that entered and left the generation.
//!
//! Offsets are global and only grow; the log is split into segment files named by the
//! offset of their first frame (`{offset:020}.log`) so old history can be dropped whole: a
//! new segment starts at a window cut once the current one passes 16 MiB, and segments
//! wholly before the open window are deleted (the change files carry that history).
//!
//! ```text
//! frame   := payload length (u32 LE) | blake3(payload)[..8] | payload
//! payload := version 1 | generation u64 | seconds i64 | nanos u32 | dictionaries cid [16]
//!            | shard count u32 | shard slots: u32 n, n × (index u32, 0 | 1 cid [16])
//!            | records: u64 n, n × record
//! record  := product u64 | kind u8 (0 changed, 1 added, 2 removed) | node mask u32
//!            | per node in the mask, in node order: old hash [16] unless added, new hash [16]
//!              unless removed
//!            | old membership unless added | new membership unless removed
//! ```
//!
//! A crash can leave a partly written last frame: it fails its length or checksum, is
//! dropped (the file is truncated to the last whole frame) and its generation is diffed
//! again. Damage anywhere else is reported, never skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::hash::{self, Membership, NodeHash, ABSENT, NODES};
use super::hashfiles::Cid;
use crate::catalog::MainNode;
use crate::catalog::ProductId;

const VERSION: u8 = 1;
const HEADER: usize = 12;
/// No frame is larger (a sanity bound that tells a torn length from a real one).
const MAX_FRAME: usize = 1 << 31;

/// How a product changed in one generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Changed,
    Added,
    Removed,
}

/// One main node whose hash changed: [`ABSENT`] on the side the node (or product) is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeDelta {
    pub node: MainNode,
    pub old: NodeHash,
    pub new: NodeHash,
}

/// One product's change in one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub product: ProductId,
    pub kind: Kind,
    /// For `Changed`, the nodes that differ; for `Added` and `Removed`, every node present.
    pub nodes: Vec<NodeDelta>,
    /// Membership before (`None` for `Added`).
    pub old: Option<Membership>,
    /// Membership after (`None` for `Removed`).
    pub new: Option<Membership>,
}

/// Everything logged for one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub generation: u64,
    /// When the generation was published.
    pub time: jiff::Timestamp,
    /// Dictionaries of the generation.
    pub dicts: Cid,
    /// Number of shards of the generation.
    pub shard_count: u32,
    /// Shard slots whose content differs from the previous generation's (every slot when
    /// the shard count changed): the content now there, `None` for an empty shard.
    pub shards: Vec<(u32, Option<Cid>)>,
    pub records: Vec<Record>,
}

/// A frame and where it sits.
#[derive(Clone, Debug)]
pub struct Located {
    pub offset: u64,
    pub frame: Frame,
}

/// Errors of the change log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: damaged change log at offset {offset}", path.display())]
    Damaged { path: PathBuf, offset: u64 },
    #[error("change log: offset {0} is not available")]
    Missing(u64),
}

fn io_err(path: &Path, source: io::Error) -> LogError {
    LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug)]
struct Segment {
    start: u64,
    len: u64,
    path: PathBuf,
}

/// The open log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    segments: Vec<Segment>,
    file: File,
}

fn segment_name(start: u64) -> String {
    format!("{start:020}.log")
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    crate::fsio::sync_dir(dir).map_err(|e| io_err(dir, e))
}

/// Frames in `bytes`, stopping at the first that is incomplete or fails its checksum.
/// Returns them with their positions and the length of the valid prefix.
fn scan(bytes: &[u8]) -> (Vec<(usize, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        if len > MAX_FRAME || bytes.len() - at - HEADER < len {
            break;
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        if blake3::hash(payload).as_bytes()[..8] != bytes[at + 4..at + HEADER] {
            break;
        }
        out.push((at, payload));
        at += HEADER + len;
    }
    (out, at)
}

/// Could `rest`, the bytes after the last good frame, be a write cut short by a crash? Only
/// an incomplete or unverifiable *last* frame (or zero fill) qualifies: a bad frame followed
/// by more data is damage to committed history.
fn is_torn_tail(rest: &[u8]) -> bool {
    if rest.len() < HEADER || rest.iter().all(|b| *b == 0) {
        return true;
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    len > MAX_FRAME || HEADER + len >= rest.len()
}

/// What [`check`] found in a log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCheck {
    pub segments: usize,
    pub frames: usize,
    /// Offset of the first byte still held, and of the end of the last good frame.
    pub start: u64,
    pub end: u64,
    /// Bytes after the last good frame that a crash can leave (cut off on open).
    pub torn_tail: u64,
}

/// Check every frame of the log in `dir` without changing anything (a server may be
/// appending: a partial last frame is reported as a torn tail, not as damage). Returns the
/// frames at offset `from` and later.
pub fn check(dir: &Path, from: u64) -> Result<(LogCheck, Vec<Frame>), LogError> {
    let mut starts = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if let Some(Ok(start)) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .map(str::parse::<u64>)
        {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    let mut tail = Vec::new();
    let mut out = LogCheck {
        segments: starts.len(),
        start: starts.first().copied().unwrap_or(0),
        ..LogCheck::default()
    };
    for (i, &start) in starts.iter().enumerate() {
        let path = dir.join(segment_name(start));
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let (frames, valid) = scan(&bytes);
        for (at, payload) in &frames {
            let offset = start + *at as u64;
            match decode(payload) {
                Some(frame) if offset >= from => tail.push(frame),
                Some(_) => {}
                None => return Err(LogError::Damaged { path, offset }),
            }
        }
        let damaged = |offset: u64| LogError::Damaged {
            path: path.clone(),
            offset,
        };
        let last = i + 1 == starts.len();
        if valid < bytes.len() {
            if !last || !is_torn_tail(&bytes[valid..]) {
                return Err(damaged(start + valid as u64));
            }
            out.torn_tail = (bytes.len() - valid) as u64;
        }
        if i > 0 && out.end != start {
            return Err(damaged(start));
        }
        out.frames += frames.len();
        out.end = start + valid as u64;
    }
    Ok((out, tail))
}

impl Log {
    /// Open the log in `dir` (creating an empty one starting at offset 0). Every frame is
    /// checked; a torn tail of the last segment is cut off (returns its length in bytes).
    pub fn open(dir: &Path) -> Result<(Log, u64), LogError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut starts = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            match name.strip_suffix(".log").map(str::parse::<u64>) {
                Some(Ok(start)) => starts.push(start),
                // Leftovers of an interrupted rotation.
                _ if name.ends_with(".tmp") => {
                    let _ = fs::remove_file(entry.path());
                }
                _ => {}
            }
        }
        starts.sort_unstable();
        if starts.is_empty() {
            return Ok((Log::create(dir, 0)?, 0));
        }
        let mut segments = Vec::with_capacity(starts.len());
        let mut torn = 0;
        for (i, &start) in starts.iter().enumerate() {
            let path = dir.join(segment_name(start));
            let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let (_, valid) = scan(&bytes);
            let last = i + 1 == starts.len();
            if valid < bytes.len() {
                if !last || !is_torn_tail(&bytes[valid..]) {
                    return Err(LogError::Damaged {
                        path,
                        offset: start + valid as u64,
                    });
                }
                torn = (bytes.len() - valid) as u64;
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_err(&path, e))?;
                f.set_len(valid as u64)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| io_err(&path, e))?;
                tracing::warn!(
                    path = %path.display(),
                    dropped_bytes = torn,
                    "change log: dropped a torn last frame"
                );
            }
            if let Some(next) = starts.get(i + 1) {
                if start + valid as u64 != *next {
                    return Err(LogError::Damaged {
                        path,
                        offset: start + valid as u64,
                    });
                }
            }
            segments.push(Segment {
                start,
                len: valid as u64,
                path,
            });
        }
        let last = segments.last().map(|s| s.path.clone()).unwrap_or_default();
        let file = OpenOptions::new()
            .append(true)
            .open(&last)
            .map_err(|e| io_err(&last, e))?;
        Ok((
            Log {
                dir: dir.to_path_buf(),
                segments,
                file,
            },
            torn,
        ))
    }

    /// Start an empty log at `start`, removing any segment files in `dir`.
    pub fn create(dir: &Path, start: u64) -> Result<Log, LogError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))?.flatten() {
            let _ = fs::remove_file(entry.path());
        }
        let path = dir.join(segment_name(start));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        sync_dir(dir)?;
        drop(file);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        Ok(Log {
            dir: dir.to_path_buf(),
            segments: vec![Segment {
                start,
                len: 0,
                path,
            }],
            file,
        })
    }

    /// Offset just past the last frame.
    pub fn end(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.start + s.len)
    }

    /// Offset of the oldest frame still kept.
    pub fn start(&self) -> u64 {
        self.segments.first().map_or(0, |s| s.start)
    }

    /// Append a frame durably (fdatasync). Returns the bytes written.
    pub fn append(&mut self, frame: &Frame) -> Result<u64, LogError> {
        let mut buf = Vec::with_capacity(HEADER + 64 + frame.records.len() * 64);
        buf.extend_from_slice(&[0; HEADER]);
        encode(frame, &mut buf);
        let len = buf.len() - HEADER;
        let len32 = u32::try_from(len)
            .ok()
            .filter(|n| (*n as usize) <= MAX_FRAME)
            .ok_or_else(|| {
                io_err(
                    &self.dir,
                    io::Error::other(format!("a change-log frame of {len} bytes is too large")),
                )
            })?;
        buf[..4].copy_from_slice(&len32.to_le_bytes());
        let sum = blake3::hash(&buf[HEADER..]);
        buf[4..HEADER].copy_from_slice(&sum.as_bytes()[..8]);
        let Some(segment) = self.segments.last_mut() else {
            return Err(LogError::Missing(0));
        };
        let path = &segment.path;
        if let Err(e) = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
        {
            // Whatever part reached the file is a torn tail: cut it so later frames are not
            // appended after garbage.
            let _ = self.file.set_len(segment.len);
            return Err(io_err(path, e));
        }
        segment.len += buf.len() as u64;
        Ok(buf.len() as u64)
    }

    /// Every frame from `offset` (a frame boundary) to the end.
    pub fn read_from(&self, offset: u64) -> Result<Vec<Located>, LogError> {
        if offset < self.start() || offset > self.end() {
            return Err(LogError::Missing(offset));
        }
        let mut out = Vec::new();
        for s in &self.segments {
            if s.start + s.len <= offset {
                continue;
            }
            let bytes = fs::read(&s.path).map_err(|e| io_err(&s.path, e))?;
            let bytes = bytes.get(..s.len as usize).unwrap_or(&bytes);
            let skip = offset.saturating_sub(s.start) as usize;
            let (frames, valid) = scan(&bytes[skip..]);
            if skip + valid != s.len as usize {
                return Err(LogError::Damaged {
                    path: s.path.clone(),
                    offset: s.start + (skip + valid) as u64,
                });
            }
            for (at, payload) in frames {
                let at = s.start + (skip + at) as u64;
                let frame = decode(payload).ok_or_else(|| LogError::Damaged {
                    path: s.path.clone(),
                    offset: at,
                })?;
                out.push(Located { offset: at, frame });
            }
        }
        Ok(out)
    }

    /// Bytes in the current (last) segment.
    pub fn tail_len(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.len)
    }

    /// Start a new segment at the end offset (the old ones can then be dropped whole).
    pub fn rotate(&mut self) -> Result<(), LogError> {
        let start = self.end();
        if self.tail_len() == 0 {
            return Ok(());
        }
        let path = self.dir.join(segment_name(start));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        sync_dir(&self.dir)?;
        drop(file);
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        self.segments.push(Segment {
            start,
            len: 0,
            path,
        });
        Ok(())
    }

    /// Delete whole segments that end at or before `offset` (never the last one).
    pub fn drop_before(&mut self, offset: u64) -> usize {
        let mut dropped = 0;
        while self.segments.len() > 1 && self.segments[0].start + self.segments[0].len <= offset {
            let s = self.segments.remove(0);
            if let Err(e) = fs::remove_file(&s.path) {
                tracing::warn!(path = %s.path.display(), error = %e, "cannot remove an old change-log segment");
            }
            dropped += 1;
        }
        dropped
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn encode(f: &Frame, out: &mut Vec<u8>) {
    out.push(VERSION);
    put_u64(out, f.generation);
    out.extend_from_slice(&f.time.as_second().to_le_bytes());
    put_u32(out, f.time.subsec_nanosecond().max(0) as u32);
    out.extend_from_slice(&f.dicts);
    put_u32(out, f.shard_count);
    put_u32(out, f.shards.len() as u32);
    for (index, cid) in &f.shards {
        put_u32(out, *index);
        match cid {
            Some(cid) => {
                out.push(1);
                out.extend_from_slice(cid);
            }
            None => out.push(0),
        }
    }
    put_u64(out, f.records.len() as u64);
    for r in &f.records {
        put_u64(out, r.product);
        out.push(match r.kind {
            Kind::Changed => 0,
            Kind::Added => 1,
            Kind::Removed => 2,
        });
        let mut nodes = r.nodes.clone();
        nodes.sort_by_key(|d| hash::index(d.node));
        let mask = nodes
            .iter()
            .fold(0u32, |m, d| m | (1 << hash::index(d.node)));
        put_u32(out, mask);
        for d in &nodes {
            if r.kind != Kind::Added {
                out.extend_from_slice(&d.old);
            }
            if r.kind != Kind::Removed {
                out.extend_from_slice(&d.new);
            }
        }
        if let Some(m) = &r.old {
            hash::encode_membership(m, out);
        }
        if let Some(m) = &r.new {
            hash::encode_membership(m, out);
        }
    }
}

fn decode(mut b: &[u8]) -> Option<Frame> {
    use hash::{take, take_u32, take_u64, take_u8};
    if take_u8(&mut b)? != VERSION {
        return None;
    }
    let generation = take_u64(&mut b)?;
    let secs = take_u64(&mut b)? as i64;
    let nanos = take_u32(&mut b)?;
    let time = jiff::Timestamp::new(secs, i32::try_from(nanos).ok()?).ok()?;
    let dicts: Cid = take(&mut b, 16)?.try_into().ok()?;
    let shard_count = take_u32(&mut b)?;
    let n = take_u32(&mut b)?;
    let mut shards = Vec::with_capacity((n as usize).min(b.len() / 5));
    for _ in 0..n {
        let index = take_u32(&mut b)?;
        let cid = match take_u8(&mut b)? {
            0 => None,
            1 => Some(take(&mut b, 16)?.try_into().ok()?),
            _ => return None,
        };
        shards.push((index, cid));
    }
    let n = take_u64(&mut b)?;
    let mut records = Vec::with_capacity((n as usize).min(b.len() / 13));
    for _ in 0..n {
        let product = take_u64(&mut b)?;
        let kind = match take_u8(&mut b)? {
            0 => Kind::Changed,
            1 => Kind::Added,
            2 => Kind::Removed,
            _ => return None,
        };
        let mask = take_u32(&mut b)?;
        if mask >> NODES != 0 {
            return None;
        }
        let mut nodes = Vec::with_capacity(mask.count_ones() as usize);
        for node in MainNode::ALL {
            if mask & (1 << hash::index(node)) == 0 {
                continue;
            }
            let old = if kind == Kind::Added {
                ABSENT
            } else {
                take(&mut b, 16)?.try_into().ok()?
            };
            let new = if kind == Kind::Removed {
                ABSENT
            } else {
                take(&mut b, 16)?.try_into().ok()?
            };
            nodes.push(NodeDelta { node, old, new });
        }
        let old = match kind {
            Kind::Added => None,
            _ => Some(hash::decode_membership(&mut b)?),
        };
        let new = match kind {
            Kind::Removed => None,
            _ => Some(hash::decode_membership(&mut b)?),
        };
        records.push(Record {
            product,
            kind,
            nodes,
            old,
            new,
        });
    }
    b.is_empty().then_some(Frame {
        generation,
        time,
        dicts,
        shard_count,
        shards,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(generation: u64, n: u64) -> Frame {
        Frame {
            generation,
            time: jiff::Timestamp::from_second(1_800_000_000 + generation as i64).unwrap(),
            dicts: [generation as u8; 16],
            shard_count: 4,
            shards: vec![(0, Some([2; 16])), (3, None)],
            records: (0..n)
                .map(|i| Record {
                    product: i + 1,
                    kind: match i % 3 {
                        0 => Kind::Changed,
                        1 => Kind::Added,
                        _ => Kind::Removed,
                    },
                    nodes: vec![NodeDelta {
                        node: MainNode::Sizes,
                        old: if i % 3 == 1 { ABSENT } else { [4; 16] },
                        new: if i % 3 == 2 { ABSENT } else { [5; 16] },
                    }],
                    old: (i % 3 != 1).then(|| Membership {
                        in_stock: true,
                        shops: vec![1, 2],
                        producer: Some(7),
                        category: None,
                        levels: vec![(1, rust_decimal::Decimal::new(25, 1))],
                        facts: true,
                    }),
                    new: (i % 3 != 2).then(Membership::default),
                })
                .collect(),
        }
    }

    #[test]
    fn check_reads_without_repairing_and_tells_a_torn_tail_from_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path()).unwrap();
        log.append(&frame(1, 3)).unwrap();
        let second = log.end();
        log.append(&frame(2, 2)).unwrap();
        let end = log.end();
        drop(log);
        let (c, tail) = check(dir.path(), second).unwrap();
        assert_eq!(
            (c.segments, c.frames, c.start, c.end, c.torn_tail),
            (1, 2, 0, end, 0)
        );
        assert_eq!(tail, vec![frame(2, 2)]);

        // A frame cut short by a crash: reported, left in place (a server may be writing).
        let path = dir.path().join(segment_name(0));
        let good = fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(&good[second as usize..second as usize + 7]);
        fs::write(&path, &torn).unwrap();
        let (c, _) = check(dir.path(), 0).unwrap();
        assert_eq!((c.frames, c.end, c.torn_tail), (2, end, 7));
        assert_eq!(fs::read(&path).unwrap(), torn);

        // A damaged frame followed by a good one is damage to committed history.
        let mut bad = good.clone();
        bad[HEADER + 2] ^= 0x10;
        fs::write(&path, &bad).unwrap();
        let err = check(dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("damaged change log at offset 0"), "{err}");
    }

    #[test]
    fn frames_round_trip_across_reopen_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, torn) = Log::open(dir.path()).unwrap();
        assert_eq!((torn, log.end()), (0, 0));
        log.append(&frame(1, 3)).unwrap();
        let second = log.end();
        log.rotate().unwrap();
        log.append(&frame(2, 5)).unwrap();
        drop(log);
        let (mut log, torn) = Log::open(dir.path()).unwrap();
        assert_eq!(torn, 0);
        let all = log.read_from(0).unwrap();
        assert_eq!(
            all.iter().map(|l| l.frame.clone()).collect::<Vec<_>>(),
            vec![frame(1, 3), frame(2, 5)]
        );
        assert_eq!(all[1].offset, second);
        assert_eq!(log.read_from(second).unwrap().len(), 1);
        assert_eq!(log.drop_before(second), 1);
        assert_eq!(log.start(), second);
        assert!(matches!(log.read_from(0), Err(LogError::Missing(0))));
    }

    #[test]
    fn a_torn_tail_is_dropped_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = Log::open(dir.path()).unwrap();
        log.append(&frame(1, 2)).unwrap();
        let good = log.end();
        log.append(&frame(2, 2)).unwrap();
        drop(log);
        // Tear the last frame: a crash in the middle of its write.
        let path = dir.path().join(segment_name(0));
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
        let (mut log, torn) = Log::open(dir.path()).unwrap();
        assert_eq!(torn, bytes.len() as u64 - 7 - good);
        assert_eq!(log.end(), good);
        log.append(&frame(3, 1)).unwrap();
        let gens: Vec<u64> = log
            .read_from(0)
            .unwrap()
            .iter()
            .map(|l| l.frame.generation)
            .collect();
        assert_eq!(gens, vec![1, 3]);

        // A flipped byte in a committed frame of an older segment is damage, not a tail.
        log.rotate().unwrap();
        log.append(&frame(4, 1)).unwrap();
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        bytes[20] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            Log::open(dir.path()),
            Err(LogError::Damaged { offset: 0, .. })
        ));
    }
}
