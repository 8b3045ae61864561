//! `iofd verify`'s look at the change history: read-only, safe beside a running server.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::diff::apply_slots;
use super::hashfiles::{self, Cid, HashFiles};
use super::log;
use super::state::{self, State};

/// What [`verify`] found in a change-history directory.
#[derive(Debug, Default)]
pub struct ChangesCheck {
    /// The checkpoint's generation and log offset, when there is a checkpoint.
    pub checkpoint: Option<(u64, u64)>,
    pub log: log::LogCheck,
    /// Hash files of the generation the log reached, read and checksummed.
    pub hash_files: usize,
    /// Damage found, each naming its file.
    pub problems: Vec<String>,
    /// Findings a start repairs by itself (hash files not yet durable, recomputed).
    pub notes: Vec<String>,
}

/// Check the change history in `dir` — the checkpoint, every log frame, the hash files of
/// the generation the log reached — without changing anything. (A server starts a history
/// it cannot trust afresh; this tells the operator before that happens.)
pub fn verify(dir: &Path) -> ChangesCheck {
    let mut out = ChangesCheck::default();
    let state_path = dir.join(state::STATE);
    let state = match State::read(dir) {
        Ok(Some(s)) => s,
        Ok(None) => {
            if let Err(e) = log::check(&dir.join("log"), u64::MAX).map(|(l, _)| out.log = l) {
                out.problems.push(e.to_string());
            }
            return out;
        }
        Err(e) => {
            out.problems.push(e);
            return out;
        }
    };
    out.checkpoint = Some((state.generation, state.log_offset));
    let tail = match log::check(&dir.join("log"), state.log_offset) {
        Ok((l, tail)) => {
            out.log = l;
            tail
        }
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    if state.log_offset < out.log.start || state.log_offset > out.log.end {
        out.problems.push(format!(
            "{}: the checkpoint is at log offset {} but the log holds {}..{}",
            state_path.display(),
            state.log_offset,
            out.log.start,
            out.log.end
        ));
        return out;
    }
    let parse = |id: &str| {
        hashfiles::unhex(id)
            .ok_or_else(|| format!("{}: bad content id {id:?}", state_path.display()))
    };
    let (mut shards, dicts) = match state
        .shards
        .iter()
        .map(|(i, id)| parse(id).map(|c| (*i, c)))
        .collect::<Result<BTreeMap<u32, Cid>, _>>()
        .and_then(|s| Ok((s, parse(&state.dicts)?)))
    {
        Ok(v) => v,
        Err(e) => {
            out.problems.push(e);
            return out;
        }
    };
    // The checkpoint's files were made durable before it named them; files named only by
    // later frames may be lost to a crash and are recomputed from the store at start.
    let durable: HashSet<Cid> = shards.values().copied().chain([dicts]).collect();
    let (mut count, mut dicts) = (state.shard_count, dicts);
    for f in &tail {
        apply_slots(&mut shards, &mut count, f);
        dicts = f.dicts;
    }
    let hashes_dir = dir.join("hashes");
    let hashes = match hashes_dir.is_dir().then(|| HashFiles::open(&hashes_dir)) {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            out.problems.push(e.to_string());
            return out;
        }
        None => {
            out.problems
                .push(format!("{}: missing", hashes_dir.display()));
            return out;
        }
    };
    let results = shards
        .values()
        .map(|cid| (cid, hashes.shard(cid).map(drop)))
        .chain([(&dicts, hashes.dicts(&dicts).map(drop))]);
    for (cid, result) in results {
        match result {
            Ok(()) => out.hash_files += 1,
            Err(e) if durable.contains(cid) => out.problems.push(e.to_string()),
            Err(e) => out.notes.push(format!("{e} (recomputed at start)")),
        }
    }
    out
}
