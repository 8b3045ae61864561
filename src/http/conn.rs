//! Cutting a connection from outside its task.
//!
//! A download whose partner loses access must stop within a second even when the client
//! reads slowly: then hyper sits waiting for the socket to drain and polls neither the body
//! nor anything else we control. So every connection's socket is wrapped in [`CutIo`], and a
//! [`ConnCut`] (one per connection, handed to requests through their extensions) can fire:
//! the connection's task is woken, the next socket operation fails, and the socket is closed
//! with a reset, which also discards what the kernel still had queued for the client.

use parking_lot::Mutex;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The trigger that cuts one connection.
#[derive(Debug, Default)]
pub struct ConnCut {
    fired: AtomicBool,
    /// The connection task's waker, from its latest socket operation.
    waker: Mutex<Option<Waker>>,
}

impl ConnCut {
    /// Cut the connection: its next socket operation fails and the socket is reset.
    pub fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let waker = self.waker.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// True once fired.
    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    fn register(&self, cx: &Context<'_>) {
        let mut slot = self.waker.lock();
        match slot.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
    }
}

fn cut_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "connection cut: the partner's access ended",
    )
}

/// A TCP stream that fails once its [`ConnCut`] fires.
pub struct CutIo {
    stream: TcpStream,
    cut: std::sync::Arc<ConnCut>,
}

impl CutIo {
    pub fn new(stream: TcpStream, cut: std::sync::Arc<ConnCut>) -> CutIo {
        CutIo { stream, cut }
    }

    /// Fail if cut; otherwise remember who to wake when it is.
    fn check(&self, cx: &Context<'_>) -> Result<(), std::io::Error> {
        if self.cut.is_fired() {
            return Err(cut_error());
        }
        self.cut.register(cx);
        // Fired between the check and the registration: the waker may have been missed.
        if self.cut.is_fired() {
            return Err(cut_error());
        }
        Ok(())
    }
}

impl super::limits::Abort for CutIo {
    fn reset_on_close(&self) {
        super::limits::Abort::reset_on_close(&self.stream);
    }
}

impl Drop for CutIo {
    fn drop(&mut self) {
        if self.cut.is_fired() {
            // A zero linger makes close() send a reset and drop unsent data, instead of
            // delivering the kernel's queue to a client that should get nothing more.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for CutIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CutIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.check(cx)?;
        #[cfg(target_os = "linux")]
        if let Some(sent) = zero_copy::poll_write(&self.stream, cx, bufs) {
            return sent;
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Large slices of a mapped file go to the socket with sendfile(2): the kernel sends from
/// the page cache, so the bytes are not copied out of the mapping first (nginx's `sendfile
/// on`). hyper hands us its head and the body's slices in one vectored write; the slices
/// before the first sendable one go with `MSG_MORE`, so head and body still share packets.
#[cfg(target_os = "linux")]
mod zero_copy {
    use std::io::IoSlice;
    use std::task::{Context, Poll};

    use rustix::net::SendFlags;
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    /// Slices shorter than this are copied: the lookup and a second system call would cost
    /// more than copying them.
    const MIN_SLICE: usize = 16 * 1024;

    /// `None`: nothing here is worth a sendfile, write as usual.
    pub(super) fn poll_write(
        stream: &TcpStream,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Option<Poll<std::io::Result<usize>>> {
        let (at, (file, offset)) = bufs.iter().enumerate().find_map(|(i, b)| {
            (b.len() >= MIN_SLICE)
                .then(|| crate::snapshot::file_behind(b))
                .flatten()
                .map(|f| (i, f))
        })?;
        let head = &bufs[..at];
        let head_len: usize = head.iter().map(|b| b.len()).sum();
        let count = bufs[at].len();
        Some(loop {
            match stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => break Poll::Pending,
            }
            let sent = stream.try_io(Interest::WRITABLE, || {
                let mut sent = 0;
                if head_len > 0 {
                    let mut no_control = rustix::net::SendAncillaryBuffer::default();
                    sent = rustix::net::sendmsg(stream, head, &mut no_control, SendFlags::MORE)?;
                    if sent < head_len {
                        return Ok(sent);
                    }
                }
                let mut from = offset;
                match rustix::fs::sendfile(stream, &*file, Some(&mut from), count) {
                    Ok(n) => Ok(sent + n),
                    // The head went: report it; the body is asked for again.
                    Err(_) if sent > 0 => Ok(sent),
                    Err(e) => Err(e.into()),
                }
            });
            match sent {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                other => break Poll::Ready(other),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn firing_wakes_a_stalled_writer_and_resets_the_peer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let cut = Arc::new(ConnCut::default());
        let mut io = CutIo::new(server, cut.clone());
        // Write until the socket stalls (the client reads nothing), then cut from outside.
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            loop {
                if let Err(e) = io.write_all(&chunk).await {
                    return e.kind();
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!writer.is_finished(), "the writer is stalled, not done");
        cut.fire();
        let kind = tokio::time::timeout(Duration::from_secs(1), writer)
            .await
            .expect("the stalled writer wakes")
            .unwrap();
        assert_eq!(kind, std::io::ErrorKind::ConnectionAborted);
        // The client sees an error (reset) once it reads what had already arrived.
        let mut buf = vec![0u8; 1 << 20];
        let outcome = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match client.read(&mut buf).await {
                    Ok(0) => return "eof",
                    Ok(_) => continue,
                    Err(_) => return "error",
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(outcome, "error", "a reset, not a clean end of stream");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_mapped_slice_goes_by_sendfile_and_arrives_whole_after_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.xml");
        let data: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mapped = crate::snapshot::map_file(&path).unwrap();
        let body = mapped.slice(12_345..12_345 + (2 << 20));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        let want = [&head[..], &body[..]].concat();
        let reader = tokio::spawn(async move {
            let mut got = vec![0; want.len()];
            client.read_exact(&mut got).await.unwrap();
            assert!(got == want, "head then the slice's bytes, in order");
        });
        // Write as hyper does: the unsent rest of [head, body] until all of it went, each
        // write through the sendfile path.
        let (mut head_left, mut body_left) = (&head[..], &body[..]);
        while !body_left.is_empty() {
            let bufs = [
                std::io::IoSlice::new(head_left),
                std::io::IoSlice::new(body_left),
            ];
            let bufs = if head_left.is_empty() {
                &bufs[1..]
            } else {
                &bufs[..]
            };
            let n = std::future::poll_fn(|cx| {
                zero_copy::poll_write(&server, cx, bufs).expect("the body is sendable")
            })
            .await
            .unwrap();
            let from_head = n.min(head_left.len());
            head_left = &head_left[from_head..];
            body_left = &body_left[n - from_head..];
        }
        reader.await.unwrap();
        // Heap bytes are written as usual.
        let heap = vec![0u8; 1 << 20];
        let bufs = [std::io::IoSlice::new(&heap)];
        let none = std::future::poll_fn(|cx| {
            Poll::Ready(zero_copy::poll_write(&server, cx, &bufs).is_none())
        })
        .await;
        assert!(none);
    }
}
