//! Response bodies: bytes already in memory, or a byte range of a file (mapped, or read from
//! disk) sent in chunks, so a 300 MB full.xml is never copied into memory. A streamed body can be bound to a partner's
//! [`Grant`]: it stops when the grant is revoked, and cuts the connection.

use std::io::SeekFrom;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};

use super::conn::ConnCut;
use crate::partners::Grant;

/// The body type of every response.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

const CHUNK: usize = 256 * 1024;

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What a download streams under: the partner's grant and the connection to cut when the
/// grant is revoked.
pub struct Revocable {
    pub grant: Arc<Grant>,
    pub cut: Arc<ConnCut>,
}

/// `len` bytes of a file from `start`, sent in chunks as the client takes them.
struct FileBody {
    source: Source,
    remaining: u64,
    guard: Option<BodyGuard>,
}

/// Where a [`FileBody`]'s bytes come from.
enum Source {
    /// A mapped artifact: each chunk is a slice of the mapping, neither copied nor read
    /// through a blocking thread. (A page not in the page cache is faulted in by the worker
    /// thread; artifacts were just written, and the mapping asks for read-ahead.)
    Mapped(Bytes),
    /// An open file, read chunk by chunk.
    File(tokio::fs::File),
}

/// A streaming body's hold on its grant. Dropping it (the body ends or is dropped) ends the
/// task that watches the grant.
struct BodyGuard {
    revocable: Revocable,
    _watch: tokio::sync::oneshot::Receiver<()>,
}

fn short_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "artifact shorter than its length",
    )
}

/// The cheap check between chunks: a revoked grant cuts the connection and ends the body.
/// (The watcher task covers a body that is not polled because the client stopped reading.)
fn revoked(guard: &Option<BodyGuard>) -> Option<std::io::Error> {
    let guard = guard.as_ref()?;
    if !guard.revocable.grant.is_revoked() {
        return None;
    }
    guard.revocable.cut.fire();
    Some(revoked_error())
}

fn revoked_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        "the partner's offer access ended during the download",
    )
}

impl HttpBody for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        if let Some(e) = revoked(&this.guard) {
            return Poll::Ready(Some(Err(e)));
        }
        let want = (this.remaining as usize).min(CHUNK);
        let file = match &mut this.source {
            Source::Mapped(bytes) => {
                let chunk = bytes.split_to(want.min(bytes.len()));
                if chunk.is_empty() {
                    return Poll::Ready(Some(Err(short_error())));
                }
                this.remaining -= chunk.len() as u64;
                if this.remaining == 0 {
                    this.guard = None;
                }
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            Source::File(file) => file,
        };
        let mut chunk = vec![0u8; want];
        let mut read_buf = ReadBuf::new(&mut chunk);
        match Pin::new(file).poll_read(cx, &mut read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read_buf.filled().len();
                if n == 0 {
                    // The file is shorter than promised: end with an error so the client sees a
                    // short body instead of a silently truncated one.
                    return Poll::Ready(Some(Err(short_error())));
                }
                chunk.truncate(n);
                this.remaining -= n as u64;
                if this.remaining == 0 {
                    // Done: stop watching, so a later revocation cannot cut this connection
                    // while it serves its next request.
                    this.guard = None;
                }
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Stream `len` bytes of the file at `path` from `start`; with `revocable`, stop and cut the
/// connection when the grant is revoked.
pub async fn file_range(
    path: &Path,
    start: u64,
    len: u64,
    revocable: Option<Revocable>,
) -> std::io::Result<Body> {
    let mut file = tokio::fs::File::open(path).await?;
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await?;
    }
    Ok(FileBody {
        source: Source::File(file),
        remaining: len,
        guard: revocable.map(watch),
    }
    .boxed_unsync())
}

/// [`file_range`] over a mapped file's bytes (`mapped` is the whole file).
pub fn mapped_range(mapped: &Bytes, start: u64, len: u64, revocable: Option<Revocable>) -> Body {
    let from = (start as usize).min(mapped.len());
    let to = (start.saturating_add(len) as usize).min(mapped.len());
    FileBody {
        source: Source::Mapped(mapped.slice(from..to)),
        remaining: len,
        guard: revocable.map(watch),
    }
    .boxed_unsync()
}

/// Watch `revocable`'s grant while a body streams.
fn watch(revocable: Revocable) -> BodyGuard {
    let (mut done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let grant = revocable.grant.clone();
    let cut = revocable.cut.clone();
    // One small task per streamed download: it wakes a connection stalled on a slow
    // client, which nothing else would poll.
    tokio::spawn(async move {
        tokio::select! {
            // A body that has finished must never cut: the connection may be serving
            // its next request by now.
            biased;
            _ = done_tx.closed() => {}
            _ = grant.revoked() => cut.fire(),
        }
    });
    BodyGuard {
        revocable,
        _watch: done_rx,
    }
}

/// The bytes of a multi-piece artifact from `start`, `len` of them, sent piece by piece as the
/// client takes them; with `revocable`, stopped when the grant is revoked. The pieces (and so
/// their files) are held until the body is dropped.
pub fn pieces_range(
    pieces: std::sync::Arc<[crate::artifacts::Piece]>,
    start: u64,
    len: u64,
    revocable: Option<Revocable>,
) -> Body {
    use crate::artifacts::Piece;
    let guard = revocable.map(watch);
    // Every piece in memory or mapped (the usual case): the body is a list of slices.
    let in_memory = pieces.iter().all(|p| match p {
        Piece::Bytes(_) => true,
        Piece::File(f) => f.mapped().is_some(),
    });
    if in_memory {
        let slices = spans(&pieces, start, len)
            .filter_map(|(piece, from, to)| {
                let bytes = match piece {
                    Piece::Bytes(b) => b,
                    Piece::File(f) => f.mapped().unwrap_or(&EMPTY),
                };
                let to = (to as usize).min(bytes.len());
                ((from as usize) < to).then(|| bytes.slice(from as usize..to))
            })
            .collect();
        return PiecesBody {
            feed: Feed::Slices(slices),
            remaining: len,
            guard,
        }
        .boxed_unsync();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::spawn(async move {
        for (piece, from, to) in spans(&pieces, start, len) {
            match piece {
                Piece::Bytes(b) => {
                    if tx
                        .send(Ok(b.slice(from as usize..to as usize)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Piece::File(f) => {
                    let opened = async {
                        let mut file = tokio::fs::File::open(&f.path).await?;
                        if from > 0 {
                            file.seek(SeekFrom::Start(from)).await?;
                        }
                        Ok::<_, std::io::Error>(file)
                    };
                    let mut file = match opened.await {
                        Ok(file) => file,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let mut left = to - from;
                    while left > 0 {
                        let mut chunk = vec![0u8; (left as usize).min(CHUNK)];
                        match tokio::io::AsyncReadExt::read(&mut file, &mut chunk).await {
                            Ok(0) => {
                                let _ = tx.send(Err(short_error())).await;
                                return;
                            }
                            Ok(n) => {
                                chunk.truncate(n);
                                left -= n as u64;
                                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                    }
                }
            }
        }
    });
    PiecesBody {
        feed: Feed::Channel(rx),
        remaining: len,
        guard,
    }
    .boxed_unsync()
}

/// The pieces that overlap `start..start + len`, each with the part of it that does (offsets
/// within the piece).
fn spans(
    pieces: &[crate::artifacts::Piece],
    start: u64,
    len: u64,
) -> impl Iterator<Item = (&crate::artifacts::Piece, u64, u64)> {
    let end = start + len;
    let mut at = 0u64;
    pieces.iter().filter_map(move |piece| {
        let (p_start, p_end) = (at, at + piece.len());
        at = p_end;
        (p_end > start && p_start < end).then(|| {
            (
                piece,
                start.max(p_start) - p_start,
                end.min(p_end) - p_start,
            )
        })
    })
}

static EMPTY: Bytes = Bytes::new();

/// A multi-piece body with an exact length: slices already in memory (or mapped), or chunks
/// a task reads from disk and sends through a channel.
struct PiecesBody {
    feed: Feed,
    remaining: u64,
    guard: Option<BodyGuard>,
}

enum Feed {
    Slices(std::collections::VecDeque<Bytes>),
    Channel(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>),
}

impl HttpBody for PiecesBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if let Some(e) = revoked(&self.guard) {
            return Poll::Ready(Some(Err(e)));
        }
        let next = match &mut self.feed {
            Feed::Slices(slices) => slices.pop_front().map(Ok),
            Feed::Channel(rx) => match rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            },
        };
        match next {
            Some(Ok(b)) => {
                self.remaining = self.remaining.saturating_sub(b.len() as u64);
                if self.remaining == 0 {
                    // Done: a later revocation must not cut this connection's next request.
                    self.guard = None;
                }
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            // Promised more than there is: an error, so the client sees a short body.
            None => Poll::Ready(Some(Err(short_error()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::{FragmentFile, Piece};

    #[test]
    fn ranges_map_across_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = b"<head>".to_vec();
        // The same pieces mapped (the usual case) and read from disk (the fallback).
        let mut mapped = vec![Piece::Bytes(Bytes::from_static(b"<head>"))];
        let mut read = mapped.clone();
        for i in 0..3u8 {
            let data: Vec<u8> = (0..(CHUNK + 100))
                .map(|j| b'a' + ((j as u8).wrapping_add(i) % 26))
                .collect();
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, &data).unwrap();
            expected.extend_from_slice(&data);
            let file = FragmentFile::existing(path.clone()).unwrap();
            assert!(file.mapped().is_some());
            mapped.push(Piece::File(Arc::new(file)));
            read.push(Piece::File(Arc::new(FragmentFile::unmapped(path).unwrap())));
        }
        expected.extend_from_slice(b"</tail>");
        mapped.push(Piece::Bytes(Bytes::from_static(b"</tail>")));
        read.push(Piece::Bytes(Bytes::from_static(b"</tail>")));
        let mapped: Arc<[Piece]> = mapped.into();
        let pieces: Arc<[Piece]> = read.into();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let total = expected.len() as u64;
        let piece1 = 6 + CHUNK as u64 + 100;
        for (start, len) in [
            (0, total),
            (3, 10),
            (piece1 - 5, 20),
            (5, total - 10),
            (total - 3, 3),
            (piece1, piece1),
        ] {
            for set in [&pieces, &mapped] {
                let set = set.clone();
                let got = rt.block_on(async move {
                    let body = pieces_range(set, start, len, None);
                    body.collect().await.unwrap().to_bytes()
                });
                assert_eq!(
                    &got[..],
                    &expected[start as usize..(start + len) as usize],
                    "range {start}+{len}"
                );
            }
        }
        // A piece read from disk shorter than promised ends the body with an error, not
        // silently. (Published files are never rewritten in place; a mapped one would keep
        // its bytes after a rename over it.)
        drop(mapped);
        std::fs::write(dir.path().join("f1"), b"short").unwrap();
        assert!(rt
            .block_on(async move { pieces_range(pieces, 0, total, None).collect().await })
            .is_err());
    }

    #[tokio::test]
    async fn a_revoked_grant_stops_the_body_between_chunks_and_cuts_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.xml");
        std::fs::write(&path, vec![b'x'; CHUNK * 3]).unwrap();
        let grant = Arc::new(Grant::default());
        let cut = Arc::new(ConnCut::default());
        let revocable = Revocable {
            grant: grant.clone(),
            cut: cut.clone(),
        };
        let mut body = file_range(&path, 0, (CHUNK * 3) as u64, Some(revocable))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap().len(), CHUNK);
        grant.revoke();
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(cut.is_fired());

        // Without revocation the whole range streams, and the watch ends with the body.
        let grant = Arc::new(Grant::default());
        let cut = Arc::new(ConnCut::default());
        let body = file_range(
            &path,
            10,
            (CHUNK * 2) as u64,
            Some(Revocable {
                grant: grant.clone(),
                cut: cut.clone(),
            }),
        )
        .await
        .unwrap();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), CHUNK * 2);
        grant.revoke();
        tokio::task::yield_now().await;
        assert!(!cut.is_fired(), "a finished download is not cut afterwards");
    }

    #[tokio::test]
    async fn a_mapped_range_streams_its_slice_in_chunks_and_stops_on_revocation() {
        let data: Bytes = (0..CHUNK * 3)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        let body = mapped_range(&data, 7, (CHUNK * 2) as u64, None);
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(got, data.slice(7..7 + CHUNK * 2));

        let grant = Arc::new(Grant::default());
        let cut = Arc::new(ConnCut::default());
        let revocable = Revocable {
            grant: grant.clone(),
            cut: cut.clone(),
        };
        let mut body = mapped_range(&data, 0, data.len() as u64, Some(revocable));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap().len(), CHUNK);
        grant.revoke();
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(cut.is_fired());

        // Bytes promised beyond the mapping end the body with an error, not silently.
        let short = mapped_range(&data.slice(..10), 0, 20, None);
        assert!(short.collect().await.is_err());
    }

    #[tokio::test]
    async fn a_revoked_grant_stops_a_body_in_pieces() {
        let pieces: Arc<[Piece]> = (0..3)
            .map(|_| Piece::Bytes(Bytes::from(vec![b'x'; CHUNK])))
            .collect::<Vec<_>>()
            .into();
        let grant = Arc::new(Grant::default());
        let cut = Arc::new(ConnCut::default());
        let revocable = Revocable {
            grant: grant.clone(),
            cut: cut.clone(),
        };
        let mut body = pieces_range(pieces, 0, (CHUNK * 3) as u64, Some(revocable));
        assert_eq!(
            body.frame()
                .await
                .unwrap()
                .unwrap()
                .into_data()
                .unwrap()
                .len(),
            CHUNK
        );
        grant.revoke();
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(cut.is_fired());
    }
}
