//! The change history of a read replica: another node (the writer) observes generations,
//! cuts windows and writes the log, hash store and checkpoint; a replica receives those files
//! with each manifest it follows and must list exactly the bases and change files the writer
//! lists — same names, same `changed` times, same bytes. So a follower never observes, never
//! cuts and writes nothing: it reads the writer's checkpoint (`STATE`), which names every
//! listing, whenever a new generation arrives. The log and the open window do not matter to
//! it; they are the writer's (and, after a takeover, the next writer's) to replay.

use std::collections::BTreeMap;
use std::path::Path;

use super::state::{ProfileState, State};
use super::ChangesError;

/// What a follower knows of the writer's history: the listings of its last checkpoint.
#[derive(Debug, Default)]
pub(super) struct Followed {
    /// The generation the checkpoint was taken at.
    pub generation: u64,
    /// By [`crate::catalog::RenderProfile::full_key`], as the writer keeps them.
    pub profiles: BTreeMap<String, ProfileState>,
}

impl Followed {
    /// The checkpoint in `dir`, or an empty history when the writer has written none yet.
    /// A checkpoint that cannot be read is an error: the caller keeps what it had.
    pub fn read(dir: &Path) -> Result<Followed, ChangesError> {
        let Some(state) = State::read(dir).map_err(ChangesError::Checkpoint)? else {
            return Ok(Followed::default());
        };
        Ok(Followed {
            generation: state.generation,
            profiles: state
                .profiles
                .into_iter()
                .map(|p| (p.key.clone(), p))
                .collect(),
        })
    }
}
