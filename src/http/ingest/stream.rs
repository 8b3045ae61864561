//! A body cut into whole lines as it arrives and parsed a batch at a time on a blocking
//! thread, so the parser never waits for the network.

use super::*;

/// Bytes of a body that have arrived, for [`ArrayLines`] to read without blocking: with
/// nothing there yet it says `WouldBlock`, and it resumes where it stopped.
#[derive(Debug, Default)]
pub(super) struct Arrived {
    chunks: VecDeque<Bytes>,
    ended: bool,
}

pub(super) struct ArrivedReader {
    arrived: Arc<Mutex<Arrived>>,
    current: Bytes,
}

impl Read for ArrivedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ArrivedReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // An empty chunk is no data, not the end of the body.
        while self.current.is_empty() {
            let mut arrived = self.arrived.lock();
            match arrived.chunks.pop_front() {
                Some(chunk) => self.current = chunk,
                None if arrived.ended => break,
                None => return Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, n: usize) {
        let _ = self.current.split_to(n.min(self.current.len()));
    }
}

/// Whole lines of the body cut as it arrives (a JSON array first turned into one element
/// per line), so the parser gets only complete lines and never waits for the network. A
/// line over [`ingest::MAX_LINE_BYTES`] is dropped as it streams past and rejected; an
/// empty line keeps its place so later lines keep their numbers.
pub(super) struct LineFeed {
    array: Option<(ArrayLines<ArrivedReader>, Arc<Mutex<Arrived>>)>,
    /// Whole lines not yet handed out, then the start of the unfinished one.
    buf: Vec<u8>,
    /// Where the unfinished line starts in `buf`.
    line_start: usize,
    /// Whole lines in `buf[..line_start]`.
    lines: u64,
    /// Lines handed out before them.
    before: u64,
    /// Length of the unfinished line once it is over the limit (its bytes are dropped).
    too_long: Option<u64>,
    rejected: Vec<Rejection>,
}

/// Whole lines for the parser: the body's lines `before + 1 ..`, and the ones already
/// rejected for their length.
pub(super) struct Batch {
    bytes: Vec<u8>,
    before: u64,
    rejected: Vec<Rejection>,
}

impl LineFeed {
    pub(super) fn new(array: bool) -> LineFeed {
        let array = array.then(|| {
            let arrived = Arc::new(Mutex::new(Arrived::default()));
            let reader = ArrivedReader {
                arrived: arrived.clone(),
                current: Bytes::new(),
            };
            (ArrayLines::new(reader), arrived)
        });
        LineFeed {
            array,
            buf: Vec::new(),
            line_start: 0,
            lines: 0,
            before: 0,
            too_long: None,
            rejected: Vec::new(),
        }
    }

    /// Take a piece of the body; `Err` when a JSON array is malformed.
    pub(super) fn push(&mut self, data: Bytes) -> io::Result<()> {
        let Some((_, arrived)) = &self.array else {
            self.add(&data);
            return Ok(());
        };
        arrived.lock().chunks.push_back(data);
        self.drain_array()
    }

    /// The body ended: the last line is whole, a JSON array must be closed.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        if let Some((_, arrived)) = &self.array {
            arrived.lock().ended = true;
            self.drain_array()?;
        }
        if self.line_start < self.buf.len() || self.too_long.is_some() {
            self.end_line();
        }
        Ok(())
    }

    fn drain_array(&mut self) -> io::Result<()> {
        let mut out = [0u8; 16 << 10];
        loop {
            let Some((lines, _)) = &mut self.array else {
                return Ok(());
            };
            match lines.read(&mut out) {
                Ok(0) => return Ok(()),
                Ok(n) => self.add(&out[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn add(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let piece = &bytes[..newline.unwrap_or(bytes.len())];
            let open = (self.buf.len() - self.line_start) as u64;
            match &mut self.too_long {
                Some(n) => *n += piece.len() as u64,
                None if open as usize + piece.len() > ingest::MAX_LINE_BYTES => {
                    self.too_long = Some(open + piece.len() as u64);
                    self.buf.truncate(self.line_start);
                }
                None => self.buf.extend_from_slice(piece),
            }
            let Some(at) = newline else {
                return;
            };
            self.end_line();
            bytes = &bytes[at + 1..];
        }
    }

    fn end_line(&mut self) {
        if let Some(n) = self.too_long.take() {
            self.rejected.push(Rejection {
                source: "http".into(),
                line: self.before + self.lines + 1,
                field: None,
                reason: format!(
                    "the line is {n} bytes long; the limit is {} bytes",
                    ingest::MAX_LINE_BYTES
                ),
            });
        }
        self.buf.push(b'\n');
        self.lines += 1;
        self.line_start = self.buf.len();
    }

    /// Bytes of whole lines waiting.
    fn ready(&self) -> usize {
        self.line_start
    }

    /// Lines cut so far.
    fn line(&self) -> u64 {
        self.before + self.lines
    }

    pub(super) fn take(&mut self) -> Batch {
        let rest = self.buf.split_off(self.line_start);
        let batch = Batch {
            bytes: std::mem::replace(&mut self.buf, rest),
            before: self.before,
            rejected: std::mem::take(&mut self.rejected),
        };
        self.before += self.lines;
        self.lines = 0;
        self.line_start = 0;
        batch
    }
}

/// Takes the accepted lines of a body, one at a time.
pub(super) trait Sink<T> {
    /// The raw lines of the next batch, before its records are taken.
    fn batch(&mut self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// Keep `record` (line `line`), reject it, or fail (`Err`: the request cannot go on).
    fn take(&mut self, line: u64, record: T) -> Result<Option<Rejection>, String>;
}

/// Parse one batch of whole lines into `sink`.
pub(super) fn parse_batch<T: ingest::LineRecord, S: Sink<T>>(
    batch: Batch,
    sink: &mut S,
    rejected: &mut Rejections,
) -> Result<(), String> {
    for r in batch.rejected {
        rejected.push(r);
    }
    sink.batch(&batch.bytes)?;
    for item in JsonlReader::<_, T>::of("http", batch.bytes.as_slice()) {
        match item {
            Ok(parsed) => {
                if let Some(r) = sink.take(batch.before + parsed.line, parsed.record)? {
                    rejected.push(r);
                }
            }
            Err(LineError::Rejected(mut r)) => {
                r.line += batch.before;
                rejected.push(r);
            }
            // Reading from memory does not fail; should it, the request fails whole.
            Err(LineError::Fatal(e)) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Read a body frame by frame, each within `timeout` of the last: `None` at the end.
pub(super) async fn next_frame(
    body: &mut Incoming,
    timeout: Duration,
    total: u64,
) -> Result<Option<Bytes>, HttpError> {
    loop {
        let frame = tokio::time::timeout(timeout, body.frame())
            .await
            .map_err(|_| {
                HttpError::RequestTimeout(format!(
                    "no body data for {} s after {total} bytes (ingest_body_timeout); nothing was applied",
                    timeout.as_secs()
                ))
            })?;
        match frame {
            None => return Ok(None),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
            Some(Err(e)) => {
                return Err(HttpError::BadRequest(format!(
                    "the upload ended early: after {total} bytes: {e}; nothing was applied"
                )))
            }
        }
    }
}

/// Cut the body into lines as it arrives and parse them a batch at a time on a blocking
/// thread, handing every accepted line to `sink` (which may reject it, or fail: a failure
/// is a 503). Returns the sink and the rejections.
pub(super) async fn parse_body<T, S>(
    state: &Arc<State>,
    req: Request<Incoming>,
    sink: S,
) -> Result<(S, Rejections), HttpError>
where
    T: ingest::LineRecord + Send + 'static,
    S: Sink<T> + Send + 'static,
{
    let limit = state.ingest_body_limit;
    let timeout = state.ingest_body_timeout;
    let array = is_array(req.headers())?;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(HttpError::PayloadTooLarge(format!(
                "the body is {len} bytes; the limit is {limit} bytes (ingest_body_limit)"
            )));
        }
    }
    let mut body = req.into_body();
    let mut feed = LineFeed::new(array);
    let mut parser = Parser::Idle((sink, Rejections::default()));
    let mut total = 0u64;
    let unreadable = |feed: &LineFeed, e: io::Error| {
        HttpError::BadRequest(format!(
            "{e} (after line {}); nothing was applied",
            feed.line()
        ))
    };
    loop {
        let Some(data) = next_frame(&mut body, timeout, total).await? else {
            break;
        };
        total += data.len() as u64;
        if total > limit {
            return Err(HttpError::PayloadTooLarge(format!(
                "the body is larger than the limit of {limit} bytes (ingest_body_limit); nothing was applied"
            )));
        }
        feed.push(data).map_err(|e| unreadable(&feed, e))?;
        if feed.ready() >= PARSE_BATCH_BYTES {
            // One batch is parsed while the next arrives.
            let state = parser.idle().await?;
            parser = Parser::start(state, feed.take());
        }
    }
    feed.finish().map_err(|e| unreadable(&feed, e))?;
    let state = parser.idle().await?;
    parse_on_the_side(state, feed.take()).await
}

/// The parser of a body: idle with its sink, or parsing a batch on a blocking thread.
pub(super) enum Parser<S> {
    Idle((S, Rejections)),
    Busy(tokio::task::JoinHandle<Result<(S, Rejections), String>>),
}

impl<S: Send + 'static> Parser<S> {
    fn start<T>((mut sink, mut rejected): (S, Rejections), batch: Batch) -> Parser<S>
    where
        T: ingest::LineRecord + Send + 'static,
        S: Sink<T>,
    {
        Parser::Busy(tokio::task::spawn_blocking(move || {
            parse_batch(batch, &mut sink, &mut rejected).map(|()| (sink, rejected))
        }))
    }

    /// Wait for the batch being parsed, if any.
    async fn idle(self) -> Result<(S, Rejections), HttpError> {
        match self {
            Parser::Idle(state) => Ok(state),
            Parser::Busy(task) => task
                .await
                .map_err(|e| HttpError::internal("parser task", e))?
                .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied"))),
        }
    }
}

/// [`parse_batch`] on a blocking thread (parsing is CPU work, sinks write spool files).
pub(super) async fn parse_on_the_side<T, S>(
    (mut sink, mut rejected): (S, Rejections),
    batch: Batch,
) -> Result<(S, Rejections), HttpError>
where
    T: ingest::LineRecord + Send + 'static,
    S: Sink<T> + Send + 'static,
{
    if batch.bytes.is_empty() && batch.rejected.is_empty() {
        return Ok((sink, rejected));
    }
    tokio::task::spawn_blocking(move || {
        parse_batch(batch, &mut sink, &mut rejected).map(|()| (sink, rejected))
    })
    .await
    .map_err(|e| HttpError::internal("parser task", e))?
    .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))
}
