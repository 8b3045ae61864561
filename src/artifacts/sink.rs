//! Where renderers write: bytes are counted, hashed (MD5 for the gateway's `hash`, blake3 for
//! the ETag) and written to the file on a second thread, in chunks.
//!
//! At a base's size hashing costs about as much as rendering (MD5 alone runs near 400 MB/s on
//! one core), so the renderer fills one chunk while the other is hashed and written, instead
//! of doing both in turn.

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
        let (recycle, empty) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let worker = std::thread::Builder::new()
            .name("iofd-hash".into())
            .spawn(move || {
                let mut file = file;
                let mut md5 = Md5::new();
                let mut blake3 = blake3::Hasher::new();
                let mut len = 0u64;
                for mut chunk in chunks {
                    file.write_all(&chunk)?;
                    md5.update(&chunk);
                    blake3.update(&chunk);
                    len += chunk.len() as u64;
                    chunk.clear();
                    // The renderer may have finished and stopped taking buffers back.
                    let _ = recycle.try_send(chunk);
                }
                file.flush()?;
                Ok(Written {
                    file,
                    md5: md5.finalize().into(),
                    blake3: blake3.finalize(),
                    len,
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
