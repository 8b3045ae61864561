//! The publishing cycle: the changes stage says what is due (window cuts, bases), the
//! artifacts stage writes it and serves the listings. Neither stage knows the other's
//! insides; this module passes values between them. [`Publisher`] runs the cycle as the
//! server's publishing task.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::artifacts::{ArtifactError, ArtifactSet, Artifacts, FullFiles};
use crate::catalog::RenderProfile;
use crate::changes::{Changes, ChangesError, Due, Listing};
use crate::snapshot::Snapshot;

mod loops;
pub use loops::{Demand, Publisher, Readiness};

/// Why a step of the cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Changes(#[from] ChangesError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
}

/// The two stages one cycle works with.
#[derive(Clone, Copy)]
pub struct Cycle<'a> {
    pub changes: &'a Changes,
    pub artifacts: &'a Artifacts,
}

impl<'a> Cycle<'a> {
    pub fn new(changes: &'a Changes, artifacts: &'a Artifacts) -> Self {
        Cycle { changes, artifacts }
    }

    /// Timer work: cut the window when its time has come, give new (or changed) IOF
    /// profiles a base, rebuild bases on schedule, drop change files past retention. Returns
    /// true when the files to serve changed (republish). Blocking.
    pub fn maintain(
        &self,
        profiles: &[RenderProfile],
        now: Timestamp,
    ) -> Result<bool, PublishError> {
        // A listing whose files are gone (a crash, a damaged disk) gets a new base.
        let held = self.artifacts.held();
        for listing in self.listings(profiles).values() {
            if self.artifacts.listed_files(listing, &held).is_none() {
                self.changes.forget(&listing.key);
            }
        }
        let due = self.changes.due(profiles, now)?;
        self.carry_out(due)
    }

    /// Cut the open window now, whatever the timer says. Returns the number of change files
    /// written. Blocking.
    pub fn cut(&self, profiles: &[RenderProfile], now: Timestamp) -> Result<usize, PublishError> {
        let due = self.changes.due_cut(profiles, now)?;
        let files = due.changes.len();
        self.carry_out(due)?;
        Ok(files)
    }

    /// Write what `due` names, then let the changes stage record it.
    fn carry_out(&self, due: Due) -> Result<bool, PublishError> {
        self.artifacts.write_due(&due)?;
        Ok(self.changes.commit(due)?)
    }

    /// What each full key of `profiles` lists.
    pub fn listings(&self, profiles: &[RenderProfile]) -> BTreeMap<String, Listing> {
        profiles
            .iter()
            .filter_map(|p| self.changes.listing(p))
            .map(|l| (l.key.clone(), l))
            .collect()
    }

    /// The base and listed change files of an IOF profile (`None` before it has a base, and
    /// for CSV profiles).
    pub fn full_files(&self, profile: &RenderProfile) -> Option<FullFiles> {
        self.artifacts.full_files(&self.changes.listing(profile)?)
    }

    /// One cycle for a new generation (or new profiles): observe `snapshot`, carry out the
    /// window cut and bases due, then publish every file `profiles` need, in identity first
    /// (gzip forms follow with [`Artifacts::compress_pending`]). Change tracking failing must
    /// not stop the rest: full.xml then stays the last base. Blocking.
    pub fn republish(
        &self,
        snapshot: &Arc<Snapshot>,
        profiles: &[RenderProfile],
        now: Timestamp,
    ) -> Result<Arc<ArtifactSet>, ArtifactError> {
        if let Err(e) = self
            .changes
            .observe(snapshot)
            .map_err(PublishError::from)
            .and_then(|_| self.maintain(profiles, now))
        {
            tracing::error!(error = %e, "change tracking failed; full.xml stays the last base");
        }
        self.artifacts
            .publish_identity(snapshot, profiles, &self.listings(profiles))
    }

    /// Render what `snapshot` and `profiles` need, serving full.xml as listed, and publish
    /// it. Blocking.
    pub fn publish(
        &self,
        snapshot: &Arc<Snapshot>,
        profiles: &[RenderProfile],
    ) -> Result<Arc<ArtifactSet>, ArtifactError> {
        self.artifacts
            .publish_with(snapshot, profiles, &self.listings(profiles))
    }
}

#[cfg(test)]
mod tests;
