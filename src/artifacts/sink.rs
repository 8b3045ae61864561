//! Where renderers write: bytes are counted, hashed (MD5 for the gateway's `hash`, blake3 for
//! the ETag) and written to the file on two more threads, in chunks.
//!
//! At a base's size hashing costs more than rendering (MD5 runs near 700 MB/s on one core
//! and cannot be split; full.xml renders at over 1 GB/s), so the renderer fills a chunk while
//! earlier ones are hashed with MD5 on one thread and with blake3 and written on another,
//! instead of doing all of it in turn: a base is then made at MD5's own rate. A large file
//! is written in aligned blocks with `O_DIRECT` where the file system takes it
//! ([`BlockWriter`]): copying gigabytes into the page cache cost that thread about as much
//! CPU as their MD5.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use md5::{Digest, Md5};

use crate::fsio::AtomicFile;

/// Bytes handed to the hashing thread at a time.
const CHUNK: usize = 256 * 1024;

/// Chunks in flight between the renderer and the hashing thread (bounds memory to a few MB).
const IN_FLIGHT: usize = 4;

/// What the hashing thread made of the bytes: the file, ready to commit, and their digests.
pub(crate) struct Written {
    pub file: AtomicFile,
    pub md5: [u8; 16],
    pub blake3: blake3::Hash,
    pub len: u64,
}

/// A renderer's output file. [`Sink::finish`] returns what was written; dropping a sink
/// without finishing drops the temporary file, and with it its bytes.
pub(crate) struct Sink {
    buf: Vec<u8>,
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<io::Result<Written>>>,
}

impl Sink {
    pub(crate) fn new(file: AtomicFile) -> Sink {
        let (full, chunks) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (hashed, to_write) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (recycle, empty) = mpsc::sync_channel::<Vec<u8>>(2 * IN_FLIGHT + 1);
        // Two threads in a row: MD5, the slowest step (one core's worth at a base's rate),
        // has one to itself; blake3 and the write follow on the other.
        let writer = std::thread::Builder::new()
            .name("iofd-write".into())
            .spawn(move || {
                let mut file = BlockWriter::new(file);
                let mut blake3 = blake3::Hasher::new();
                let mut len = 0u64;
                for mut chunk in to_write {
                    file.write(&chunk)?;
                    blake3.update(&chunk);
                    len += chunk.len() as u64;
                    chunk.clear();
                    // The renderer may have finished and stopped taking buffers back.
                    let _ = recycle.try_send(chunk);
                }
                Ok::<_, io::Error>((file.finish()?, blake3.finalize(), len))
            });
        let worker = writer.and_then(|writer| {
            std::thread::Builder::new()
                .name("iofd-md5".into())
                .spawn(move || {
                    let mut md5 = Md5::new();
                    for chunk in chunks {
                        md5.update(&chunk);
                        // A closed channel: the write failed; its error is joined below.
                        if hashed.send(chunk).is_err() {
                            break;
                        }
                    }
                    drop(hashed);
                    let (file, blake3, len) = writer.join().unwrap_or_else(|_| {
                        Err(io::Error::other(
                            "the thread writing a rendered file panicked",
                        ))
                    })?;
                    Ok(Written {
                        file,
                        md5: md5.finalize().into(),
                        blake3,
                        len,
                    })
                })
        });
        let (full, worker) = match worker {
            Ok(w) => (Some(full), Some(w)),
            // No thread to be had: `write` reports it, and the file is rendered again later.
            Err(_) => (None, None),
        };
        Sink {
            buf: Vec::with_capacity(CHUNK),
            full,
            empty,
            worker,
        }
    }

    /// Hand the buffered bytes over, taking an emptied buffer back when one is free.
    fn send(&mut self) -> io::Result<()> {
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.buf, next);
        let sent = self.full.as_ref().map(|tx| tx.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped on an error (or never started): its error says which.
            _ => Err(self.join().err().unwrap_or_else(|| {
                io::Error::other("the thread writing a rendered file stopped early")
            })),
        }
    }

    /// Close the channel and wait for the hashing thread: what it wrote, or its error.
    fn join(&mut self) -> io::Result<Written> {
        self.full = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(done)) => done,
            Some(Err(_)) => Err(io::Error::other(
                "the thread writing a rendered file panicked",
            )),
            None => Err(io::Error::other("no thread to write a rendered file")),
        }
    }

    /// Write what is buffered and wait for the hashing thread.
    pub(crate) fn finish(mut self) -> io::Result<Written> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl Drop for Sink {
    /// An unfinished sink waits for its thread, which drops the temporary file.
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// Bytes of one direct write, and the alignment of its buffer and file offset (the largest
/// logical block size in use).
const BLOCK: usize = 4 << 20;
const ALIGN: usize = 4096;

/// Writes a file in [`BLOCK`]s with `O_DIRECT`, so the bytes go from this buffer to the device
/// without a copy into the page cache (the file is read back from disk when served, at the
/// device's speed). The tail, a file smaller than a block, and a file system that refuses
/// direct I/O (tmpfs) go through the page cache as before.
struct BlockWriter {
    file: AtomicFile,
    buf: Vec<u8>,
    /// Where the aligned block starts in `buf`.
    start: usize,
    filled: usize,
    /// `Some(true)` while writing directly, `Some(false)` once refused; `None` before the
    /// first block.
    direct: Option<bool>,
}

impl BlockWriter {
    fn new(file: AtomicFile) -> BlockWriter {
        BlockWriter {
            file,
            buf: Vec::new(),
            start: 0,
            filled: 0,
            direct: None,
        }
    }

    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.direct == Some(false) {
            return self.file.write_all(data);
        }
        if self.buf.is_empty() {
            self.buf = vec![0; BLOCK + ALIGN];
            self.start = self.buf.as_ptr().align_offset(ALIGN);
        }
        while !data.is_empty() {
            let n = (BLOCK - self.filled).min(data.len());
            let at = self.start + self.filled;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == BLOCK {
                self.write_block()?;
            }
        }
        Ok(())
    }

    /// Write the full block: directly when the file system allows, else buffered (for good).
    fn write_block(&mut self) -> io::Result<()> {
        if self.direct.is_none() {
            self.direct = Some(set_direct(self.file.file(), true).is_ok());
        }
        let (start, end) = (self.start, self.start + self.filled);
        let mut at = start;
        while at < end && self.direct == Some(true) {
            match (&mut self.file.file()).write(&self.buf[at..end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    at += n;
                    // A short write leaves the offset aligned only by chance: buffered on.
                    if at < end && (at - start) % ALIGN != 0 {
                        self.stop_direct()?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The file system takes O_DIRECT but not these writes (a larger block size).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.stop_direct()?,
                Err(e) => return Err(e),
            }
        }
        let rest = &self.buf[at..end];
        self.file.write_all(rest)?;
        self.filled = 0;
        Ok(())
    }

    fn stop_direct(&mut self) -> io::Result<()> {
        self.direct = Some(false);
        set_direct(self.file.file(), false)
    }

    /// Write the tail (through the page cache) and hand the file back, ready to commit.
    fn finish(mut self) -> io::Result<AtomicFile> {
        if self.direct == Some(true) {
            self.stop_direct()?;
        }
        let tail = &self.buf[self.start..self.start + self.filled];
        self.file.write_all(tail)?;
        self.file.flush()?;
        Ok(self.file)
    }
}

fn set_direct(file: &std::fs::File, on: bool) -> io::Result<()> {
    use rustix::fs::OFlags;
    let flags = rustix::fs::fcntl_getfl(file)?;
    let flags = match on {
        true => flags | OFlags::DIRECT,
        false => flags - OFlags::DIRECT,
    };
    Ok(rustix::fs::fcntl_setfl(file, flags)?)
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = buf.len().min(room);
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Buffered bytes go at [`Sink::finish`]; a renderer's flush is not a durability point.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_written_in_any_pieces_arrive_whole_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.xml");
        let mut sink = Sink::new(crate::fsio::create(&path).unwrap());
        let data: Vec<u8> = (0..(3 * CHUNK + 12345)).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(7919) {
            sink.write_all(piece).unwrap();
        }
        let w = sink.finish().unwrap();
        assert_eq!(w.len, data.len() as u64);
        assert_eq!(w.md5, <[u8; 16]>::from(Md5::digest(&data)));
        assert_eq!(w.blake3, blake3::hash(&data));
        w.file.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    /// A file of several blocks and a tail, written directly where the file system allows it:
    /// the same bytes and digests; so is a file written after direct I/O was refused.
    #[test]
    fn a_file_of_several_blocks_arrives_whole() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(2 * BLOCK + 3 * CHUNK + 777))
            .map(|i| (i % 253) as u8)
            .collect();
        let path = dir.path().join("f.xml");
        let mut sink = Sink::new(crate::fsio::create(&path).unwrap());
        for piece in data.chunks(100_003) {
            sink.write_all(piece).unwrap();
        }
        let w = sink.finish().unwrap();
        assert_eq!(w.len, data.len() as u64);
        assert_eq!(w.md5, <[u8; 16]>::from(Md5::digest(&data)));
        w.file.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        for refused in [false, true] {
            let mut writer = BlockWriter::new(crate::fsio::create(&path).unwrap());
            if refused {
                writer.direct = Some(false);
            }
            writer.write(&data).unwrap();
            writer.finish().unwrap().commit().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data);
        }
    }

    #[test]
    fn a_sink_dropped_unfinished_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.xml");
        let mut sink = Sink::new(crate::fsio::create(&path).unwrap());
        sink.write_all(&vec![b'x'; 2 * CHUNK]).unwrap();
        drop(sink);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
