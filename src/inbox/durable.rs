//! With an object store the writer's drop folder marks a file done only once the generation
//! that applied it is durable there (`docs/scale-out.md`): until then the file stays claimed
//! in `.work/` with its marker and is retried at each scan, never moved to `done/` falsely.
//! The gate is a function the server provides, so this stage knows nothing of the store.

use std::sync::Arc;

/// Blocks until `generation` is durable beyond this machine, or says why it is not (yet).
pub type DurableGate = Arc<dyn Fn(u64) -> Result<(), String> + Send + Sync>;

impl super::Inbox {
    /// Hold each applied file in `.work/` until `gate` says its generation is durable.
    pub fn with_durable_gate(mut self, gate: DurableGate) -> super::Inbox {
        self.durable = Some(gate);
        self
    }

    /// Wait for the gate, if there is one: [`super::InboxError::NotDurable`] when it refuses.
    pub(super) fn await_durable(
        &self,
        name: &str,
        generation: u64,
    ) -> Result<(), super::InboxError> {
        match &self.durable {
            Some(gate) => gate(generation).map_err(|reason| super::InboxError::NotDurable {
                name: name.to_string(),
                generation,
                reason,
            }),
            None => Ok(()),
        }
    }
}

impl super::Inbox {
    /// At start-up, with a gate: a claim whose marker says "applied" may have been applied to
    /// a state this start no longer holds (a writer lays the bucket's newest manifest out
    /// before its store opens, and a commit the crash kept from the bucket is not in it). Its
    /// marker is dropped, so the file is applied again: records already there come out
    /// unchanged, and those the restart lost are applied. Returns the claims re-opened.
    pub(super) fn reopen_unconfirmed_claims(&self) -> Result<usize, super::InboxError> {
        if self.durable.is_none() {
            return Ok(0);
        }
        let work = self.dir.join(super::WORK);
        let mut reopened = 0;
        for entry in std::fs::read_dir(&work).map_err(super::io(&work))? {
            let claim = entry.map_err(super::io(&work))?.path();
            let is_claim = claim.is_dir()
                && claim
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let marker = claim.join(super::MARKER);
            if is_claim && marker.exists() && super::claimed_names(&claim)?.len() == 1 {
                super::remove_if_exists(&marker)?;
                crate::fsio::sync_dir(&claim).map_err(super::io(&claim))?;
                tracing::warn!(claim = %claim.display(), "drop folder: a file applied before the restart is applied again: its commit may not have reached the object store");
                reopened += 1;
            }
        }
        Ok(reopened)
    }
}
