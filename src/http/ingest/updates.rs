//! `POST /v1/updates`: stock and price updates, committed once the body is whole.

use super::*;

/// Where the updates of a body go while it arrives: the lines themselves, in memory while
/// they are few, then in a spool file (unlinked at once, so nothing is left behind), to be
/// committed once the body is complete; so a stalled or broken upload applies nothing.
pub(super) struct UpdateSink {
    dir: std::path::PathBuf,
    /// The raw lines, while in memory.
    held: Vec<u8>,
    /// The parsed updates with their lines, while in memory.
    parsed: Vec<(u64, Update)>,
    spool: Option<io::BufWriter<std::fs::File>>,
}

/// The updates of a complete body.
pub(super) enum Received {
    Memory(Vec<(u64, Update)>),
    /// Every line of the body in order (overlong ones empty), read back group by group.
    Spooled(JsonlReader<io::BufReader<std::fs::File>, Update>),
}

impl UpdateSink {
    fn new(dir: std::path::PathBuf) -> UpdateSink {
        UpdateSink {
            dir,
            held: Vec::new(),
            parsed: Vec::new(),
            spool: None,
        }
    }

    /// Move what is held into a new spool file.
    fn spill(&mut self) -> Result<&mut io::BufWriter<std::fs::File>, String> {
        if self.spool.is_none() {
            static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let path = self.dir.join(format!(
                "updates-{}-{}.tmp",
                std::process::id(),
                SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let fail =
                |e: io::Error| format!("cannot spool the updates in {}: {e}", path.display());
            std::fs::create_dir_all(&self.dir).map_err(fail)?;
            let file = std::fs::File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(fail)?;
            // Unlinked at once: the open file is all that holds the bytes, crash or not.
            std::fs::remove_file(&path).map_err(fail)?;
            let mut writer = io::BufWriter::with_capacity(64 << 10, file);
            writer.write_all(&self.held).map_err(fail)?;
            self.held = Vec::new();
            self.parsed = Vec::new();
            self.spool = Some(writer);
        }
        Ok(self
            .spool
            .as_mut()
            .unwrap_or_else(|| unreachable!("just set")))
    }

    fn finish(self) -> Result<Received, String> {
        let Some(writer) = self.spool else {
            return Ok(Received::Memory(self.parsed));
        };
        let fail = |e: io::Error| format!("cannot read the spooled updates back: {e}");
        let mut file = writer.into_inner().map_err(|e| fail(e.into_error()))?;
        file.rewind().map_err(fail)?;
        Ok(Received::Spooled(JsonlReader::of(
            "http",
            io::BufReader::with_capacity(64 << 10, file),
        )))
    }
}

impl Sink<Update> for UpdateSink {
    fn batch(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.spool.is_none() && self.held.len() + bytes.len() <= PARSE_BATCH_BYTES {
            self.held.extend_from_slice(bytes);
            return Ok(());
        }
        self.spill()?
            .write_all(bytes)
            .map_err(|e| format!("cannot spool the updates: {e}"))
    }

    fn take(&mut self, line: u64, update: Update) -> Result<Option<Rejection>, String> {
        if self.spool.is_none() {
            if self.parsed.len() < GROUP_COMMIT_MAX_RECORDS {
                self.parsed.push((line, update));
            } else {
                // Too many to hold: from here on they are read back from the spool.
                self.spill()?;
            }
        }
        Ok(None)
    }
}

impl Received {
    /// The next group of at most `max` valid updates (rejected lines were reported while
    /// the body arrived); empty at the end.
    fn next_group(&mut self, max: usize) -> Result<Vec<(u64, Update)>, String> {
        match self {
            Received::Memory(all) => Ok(std::mem::take(all)),
            Received::Spooled(lines) => {
                let mut group = Vec::new();
                for item in lines.by_ref() {
                    match item {
                        Ok(parsed) => group.push((parsed.line, parsed.record)),
                        Err(LineError::Rejected(_)) => {}
                        Err(LineError::Fatal(e)) => return Err(e.to_string()),
                    }
                    if group.len() >= max {
                        break;
                    }
                }
                Ok(group)
            }
        }
    }
}

/// Updates of one body, committed once it has arrived whole:
///
/// - with rejected lines and no `partial`, the rest is still checked against the catalog
///   (unknown products and sizes) group by group so the answer lists every problem, but
///   nothing is applied;
/// - with `partial=true`, in groups of [`GROUP_COMMIT_MAX_RECORDS`] lines, each its own
///   durable generation, so a body of any size holds one group in memory;
/// - otherwise (atomic), as one request: one generation, all or nothing.
pub(super) async fn updates(
    state: &Arc<State>,
    req: Request<Incoming>,
    query: Query,
) -> Result<Response<Body>, HttpError> {
    let sink = UpdateSink::new(state.spool_dir.clone());
    let (sink, mut rejected) = parse_body::<Update, _>(state, req, sink).await?;
    let check_only = !rejected.is_empty() && !query.partial;
    let group = if check_only || query.partial {
        GROUP_COMMIT_MAX_RECORDS
    } else {
        usize::MAX
    };
    let mut received = tokio::task::spawn_blocking(move || sink.finish())
        .await
        .map_err(|e| HttpError::internal("spool task", e))?
        .map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))?;
    let mut total = Report {
        generation: state.store.snapshot().generation(),
        ..Report::default()
    };
    let mut committed_to = None;
    loop {
        let (back, ops) = tokio::task::spawn_blocking(move || {
            let ops = received.next_group(group);
            (received, ops)
        })
        .await
        .map_err(|e| HttpError::internal("spool task", e))?;
        received = back;
        let ops = ops.map_err(|e| HttpError::Unavailable(format!("{e}; nothing was applied")))?;
        let Some(&(first, _)) = ops.first() else {
            break;
        };
        let (lines, ops): (Vec<u64>, Vec<Op>) = ops
            .into_iter()
            .map(|(line, u)| (line, Op::Update(u)))
            .unzip();
        let outcome = state
            .committer
            .submit(store::Request {
                ops,
                partial: query.partial,
                check_only,
            })
            .await
            .map_err(|e| match committed_to {
                None => HttpError::Unavailable(format!("{e}; nothing was applied")),
                Some(last) => HttpError::Unavailable(format!(
                    "{e}; lines up to {last} were applied (partial=true), lines from {first} on were not"
                )),
            })?;
        total.generation = outcome.generation;
        total.applied += outcome.applied;
        total.unchanged += outcome.unchanged;
        total.removed += outcome.removed;
        add_rejections(&mut rejected, outcome, &lines);
        if query.partial {
            committed_to = lines.last().copied();
        }
    }
    if check_only {
        return Ok(refused(state, rejected));
    }
    super::await_durable(state, total.generation).await?;
    (total.rejected, total.rejected_unlisted) = rejected.into_parts();
    Ok(report(state, total))
}
