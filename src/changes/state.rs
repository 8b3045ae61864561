//! The checkpoint (`STATE`): where the log stood at the last cut or base rebuild, which
//! windows and bases exist, and the shard contents of the generation the log had reached.
//! Frames after `log_offset` are replayed on open, so the checkpoint is written only when
//! windows are cut or bases change, not on every generation.

use std::fs;
use std::path::Path;

use crate::catalog::RenderProfile;

pub const STATE: &str = "STATE";
pub const VERSION: u32 = 1;

/// A base full.xml.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaseState {
    /// File stem number (`b{seq}-full.xml`).
    pub seq: u64,
    /// Its `changed` time (local, `YYYY-MM-DDThh:mm:ss`).
    pub time: String,
    /// When it was built (Unix milliseconds), for the rebuild schedule.
    pub built_ms: i64,
    /// Log offset of the state it shows: its change files start there.
    pub offset: u64,
    pub generation: u64,
}

/// A change file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChangeState {
    /// File stem number (`c{seq}-full_change….xml`).
    pub seq: u64,
    /// The time in its name and its `changed` (local, `YYYY-MM-DDThh:mm:ss`).
    pub time: String,
    /// When it was cut (Unix milliseconds), for retention.
    pub created_ms: i64,
}

/// The base and change files of one full key (IOF render profiles).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileState {
    /// [`RenderProfile::full_key`] of `profile`.
    pub key: String,
    /// The first profile with that key (the others render the same bytes).
    pub profile: RenderProfile,
    pub base: BaseState,
    /// Oldest first.
    pub changes: Vec<ChangeState>,
}

/// The checkpoint.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub version: u32,
    /// The last issued file time (local), so times keep increasing across restarts.
    pub clock: Option<String>,
    /// Log end when this was written; frames after it are replayed.
    pub log_offset: u64,
    /// Generation, dictionaries and shards (index, content in hex) the log had reached at
    /// `log_offset`.
    pub generation: u64,
    pub dicts: String,
    pub shard_count: u32,
    pub shards: Vec<(u32, String)>,
    /// The open window: its first frame and when it started (Unix milliseconds).
    pub window_offset: u64,
    pub window_started_ms: i64,
    pub next_seq: u64,
    pub profiles: Vec<ProfileState>,
}

impl State {
    /// Read the checkpoint; `Ok(None)` when there is none yet.
    pub fn read(dir: &Path) -> Result<Option<State>, String> {
        let path = dir.join(STATE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let state: State =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if state.version != VERSION {
            return Err(format!(
                "{}: version {} (expected {VERSION})",
                path.display(),
                state.version
            ));
        }
        Ok(Some(state))
    }

    /// Replace the checkpoint durably. Returns the bytes written.
    pub fn write(&self, dir: &Path) -> std::io::Result<u64> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::fsio::write(&dir.join(STATE), &bytes)?;
        Ok(bytes.len() as u64)
    }
}
