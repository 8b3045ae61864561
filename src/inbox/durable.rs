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
