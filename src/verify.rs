//! `iofd verify`: check every file a start would rely on — the store's current generation
//! and its fallback (manifests, snapshot files' blake3 and archive check), the change
//! history (checkpoint, log frames, hash files) and the rendered files' MD5 sidecars — and
//! say what a start would serve. Read-only, so it may run beside a server.

use std::fmt;
use std::path::Path;

use crate::artifacts::{self, ArtifactsCheck};
use crate::changes::{self, ChangesCheck};
use crate::store::{self, GenerationCheck, StoreCheck};

/// Everything [`verify`] found.
#[derive(Debug)]
pub struct Report {
    pub store: StoreCheck,
    pub changes: ChangesCheck,
    pub artifacts: ArtifactsCheck,
}

impl Report {
    /// True when any file checked is damaged (the fallback included).
    pub fn damaged(&self) -> bool {
        matches!(self.store.current, Some(Err(_)))
            || matches!(self.store.fallback, Some(Err(_)))
            || !self.changes.problems.is_empty()
            || !self.artifacts.problems.is_empty()
    }
}

/// Check the data directory `data` (holding `store/`, `changes/`, `artifacts/`).
pub fn verify(data: &Path) -> Report {
    Report {
        store: store::verify(&data.join("store")),
        changes: changes::verify(&data.join("changes")),
        artifacts: artifacts::verify(&data.join("artifacts")),
    }
}

fn generation(f: &mut fmt::Formatter<'_>, what: &str, g: &GenerationCheck) -> fmt::Result {
    writeln!(
        f,
        "ok       {what}: generation {} ({}): {} products, {} snapshot files verified",
        g.generation,
        g.manifest.display(),
        g.products,
        g.files.len()
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.store.current {
            None => writeln!(
                f,
                "ok       store: never written (a start serves an empty catalog)"
            )?,
            Some(Ok(g)) => generation(f, "store", g)?,
            Some(Err(e)) => writeln!(f, "DAMAGED  store: {e}")?,
        }
        match &self.store.fallback {
            None => writeln!(f, "note     store fallback: none")?,
            Some(Ok(g)) => generation(f, "store fallback", g)?,
            Some(Err(e)) => writeln!(f, "DAMAGED  store fallback: {e}")?,
        }
        let c = &self.changes;
        for p in &c.problems {
            writeln!(f, "DAMAGED  change history: {p}")?;
        }
        for n in &c.notes {
            writeln!(f, "note     change history: {n}")?;
        }
        if c.problems.is_empty() {
            let checkpoint = match c.checkpoint {
                Some((g, offset)) => format!("checkpoint at generation {g} (log offset {offset})"),
                None => "no checkpoint".to_owned(),
            };
            writeln!(
                f,
                "ok       change history: {checkpoint}; {} log segments, {} frames up to offset {}{}; {} hash files verified",
                c.log.segments,
                c.log.frames,
                c.log.end,
                if c.log.torn_tail > 0 {
                    format!(" (a torn last frame of {} bytes, cut off at start)", c.log.torn_tail)
                } else {
                    String::new()
                },
                c.hash_files
            )?;
        }
        let a = &self.artifacts;
        for p in &a.problems {
            writeln!(f, "DAMAGED  rendered file: {p}")?;
        }
        writeln!(
            f,
            "{}rendered files: {} match their MD5 sidecar ({} bytes)",
            if a.problems.is_empty() {
                "ok       "
            } else {
                "         "
            },
            a.files,
            a.bytes
        )?;
        match (&self.store.current, self.store.serves()) {
            (Some(Err(_)), Some(g)) => write!(
                f,
                "a start would FALL BACK to generation {} ({}): updates acknowledged after it would be missing",
                g.generation,
                g.manifest.display()
            ),
            (Some(Err(_)), None) => write!(f, "a start would FAIL: no good generation is left"),
            (_, Some(g)) => write!(f, "a start would serve generation {}", g.generation),
            (_, None) => write!(f, "a start would serve an empty catalog"),
        }
    }
}
