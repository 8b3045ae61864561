//! gzip on every core: deflate blocks compressed independently, each ended with a sync flush
//! (byte-aligned, no final block, no reference to anything before it), join into one valid
//! single-member gzip stream whose CRC-32 is combined from the blocks', as pigz does.
//!
//! light.xml's fragments are such blocks (`light`), and so are the fixed-size blocks of a big
//! file's `.gz` form ([`gzip_file`]): a 4 GB full.xml compressed at 66 MB/s on one core took a
//! minute; on N cores it takes 1/N of that.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use rayon::prelude::*;

/// The compression level of every gzip form: measured on an 83 MB full.xml, level 6 gives
/// 8.1x at 66 MB/s; level 9 gains 2% for a third of the speed, level 4 loses 7% for 40% more
/// speed.
pub(crate) const GZIP_LEVEL: u32 = 6;

/// A gzip member header: deflate, no name, no time, unknown OS.
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Bytes compressed as one block. Blocks do not share a window, which costs the first 32 KiB
/// of each a little ratio: at 2 MiB, under 0.2%.
const BLOCK: usize = 2 << 20;

/// The nice value of [`in_background`]'s threads: requests (tokio's workers) and renders
/// (rayon's global pool) at the default 0 outweigh them about ten to one on a busy core, and
/// an idle core is theirs alone. Not the lowest (19): on a machine kept busy by something
/// else, gzip forms still arrive.
const BACKGROUND_NICE: i32 = 10;

/// Run `work` (compression: its parallel parts too) on a pool of its own, one thread per
/// core at a lower CPU priority. Gzip forms follow readiness in the background: they must not
/// take cores from requests, and must not queue a light.xml render behind their blocks. If
/// the pool cannot be built, `work` runs where it is called.
pub(crate) fn in_background<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("iofd-gzip-{i}"))
            .start_handler(|_| {
                // Linux keeps the nice value per thread: this lowers this thread alone.
                if let Err(e) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
                    tracing::debug!(error = %e, "cannot lower a compression thread's priority");
                }
            })
            .build()
            .inspect_err(|e| tracing::warn!(error = %e, "no background compression pool; compressing on the shared one"))
            .ok()
    });
    match pool {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

/// Raw deflate of `data` ending with a sync flush, so such blocks can be joined.
pub(crate) fn deflate_sync(data: &[u8]) -> io::Result<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::new(GZIP_LEVEL), false);
    let mut out = Vec::with_capacity(data.len() / 3 + 1024);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 << 10));
        }
        let before = c.total_in();
        c.compress_vec(input, &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        input = &input[(c.total_in() - before) as usize..];
        // zlib: the flush is complete when it returns with output space left.
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

/// The end of a stream of joined blocks: an empty final block (fixed Huffman, end of block)
/// and the gzip trailer for `len` bytes with `crc`.
pub(crate) fn gzip_trailer(crc: crc32fast::Hasher, len: u64) -> [u8; 10] {
    let mut t = [0u8; 10];
    t[..2].copy_from_slice(&[0x03, 0x00]);
    t[2..6].copy_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952).
    t[6..].copy_from_slice(&(len as u32).to_le_bytes());
    t
}

/// Write the gzip form of the file at `source` to `out`, its blocks compressed on the shared
/// pool's cores a few at a time (memory stays a few blocks per core). `stopping` is asked
/// between batches: a server shutting down does not wait for a multi-gigabyte file.
pub(crate) fn gzip_file(
    source: &Path,
    out: &mut impl Write,
    stopping: &(dyn Fn() -> bool + Sync),
) -> io::Result<()> {
    let mut file = File::open(source)?;
    let batch = BLOCK * 2 * rayon::current_num_threads().max(1);
    let mut buf = vec![0u8; batch];
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    out.write_all(&GZIP_HEADER)?;
    loop {
        if stopping() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "compression stopped: the server is shutting down",
            ));
        }
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        let blocks: Vec<io::Result<(Vec<u8>, crc32fast::Hasher)>> = buf[..n]
            .par_chunks(BLOCK)
            .map(|block| {
                let mut h = crc32fast::Hasher::new();
                h.update(block);
                Ok((deflate_sync(block)?, h))
            })
            .collect();
        for block in blocks {
            let (deflated, h) = block?;
            crc.combine(&h);
            out.write_all(&deflated)?;
        }
        len += n as u64;
    }
    out.write_all(&gzip_trailer(crc, len))
}

/// Read until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_work_runs_on_its_own_lower_priority_threads() {
        let here = rustix::process::getpriority_process(None).unwrap();
        let (name, nice, parts) = in_background(|| {
            let parts: Vec<i32> = (0..4)
                .into_par_iter()
                .map(|_| rustix::process::getpriority_process(None).unwrap())
                .collect();
            let name = std::thread::current().name().map(str::to_string);
            (
                name,
                rustix::process::getpriority_process(None).unwrap(),
                parts,
            )
        });
        assert!(name.unwrap_or_default().starts_with("iofd-gzip-"));
        // Raised to at least BACKGROUND_NICE (a test run already niced higher stays so).
        let want = BACKGROUND_NICE.max(here);
        assert_eq!(nice, want);
        assert!(parts.iter().all(|&n| n == want), "{parts:?}");
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            here,
            "the caller's priority is unchanged"
        );
    }

    fn gunzip_one_member(gz: &[u8]) -> Vec<u8> {
        // `GzDecoder` reads a single member: the blocks must form one.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_file_of_many_blocks_is_one_gzip_member_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.xml");
        // Not a multiple of the block size, and more than one batch.
        let batch = BLOCK * 2 * rayon::current_num_threads().max(1);
        let data: Vec<u8> = (0..batch + BLOCK / 2 + 17)
            .map(|i| b"<offer><product id=\"12\"/>"[i % 25] ^ ((i / 1000) as u8 & 1))
            .collect();
        std::fs::write(&path, &data).unwrap();
        let mut gz = Vec::new();
        gzip_file(&path, &mut gz, &|| false).unwrap();
        assert_eq!(gunzip_one_member(&gz), data);
        // gzip(1)'s view: the trailer's CRC and length hold.
        let mut child = std::process::Command::new("gzip")
            .args(["-t", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&gz).unwrap();
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn an_empty_file_gives_the_gzip_of_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        let mut gz = Vec::new();
        gzip_file(&path, &mut gz, &|| false).unwrap();
        assert!(gunzip_one_member(&gz).is_empty());
    }

    #[test]
    fn a_stop_asked_for_ends_compression_with_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.xml");
        std::fs::write(&path, b"<offer/>").unwrap();
        let err = gzip_file(&path, &mut Vec::new(), &|| true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    }
}
