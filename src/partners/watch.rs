//! Noticing edits to `partners.toml`.
//!
//! The directory is watched, not the file: editors and `iofd partners` replace the file by
//! renaming a new one over it, which a watch on the old file's inode would never report, and
//! a mounted configuration (a Kubernetes ConfigMap) changes by swapping a symlink that is not
//! the file at all. So any change in the directory counts, events are debounced (a burst of
//! create temp, write, rename is one change), and a change is reported only when the file's
//! content differs from the last content reported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A burst of events has ended when none came for this long.
const QUIET: Duration = Duration::from_millis(50);
/// Never wait longer than this after the first event of a burst, so a file rewritten
/// continuously is still reloaded (well within the 1 s promised to operators).
const MAX_DELAY: Duration = Duration::from_millis(300);

/// The watch cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("{path}: not a file in a directory")]
    NoParent { path: PathBuf },
    #[error("cannot watch {path}: {source}")]
    Notify {
        path: PathBuf,
        source: notify::Error,
    },
}

/// Watches one file through its directory; [`PartnersWatcher::changed`] resolves after each
/// debounced burst of changes that changed the file's content.
pub struct PartnersWatcher {
    // Kept alive for the watch to last; dropping it stops the watch.
    _watcher: RecommendedWatcher,
    events: mpsc::Receiver<()>,
    path: PathBuf,
    /// Hash of the content last reported (`None`: the file could not be read).
    last: Option<blake3::Hash>,
}

impl PartnersWatcher {
    /// Start watching `path` (which need not exist yet; its directory must). Its current
    /// content is the baseline: only later changes are reported.
    pub fn new(path: &Path) -> Result<PartnersWatcher, WatchError> {
        if path.file_name().is_none() {
            return Err(WatchError::NoParent {
                path: path.to_path_buf(),
            });
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Capacity 1 coalesces: one pending signal stands for any number of events.
        let (tx, rx) = mpsc::channel(1);
        let mut watcher =
            notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
                let relevant = match result {
                    Ok(event) => is_change(&event.kind),
                    // Lost events (queue overflow and the like): reload to be safe.
                    Err(e) => {
                        tracing::warn!(error = %e, "partners file watch reported an error");
                        true
                    }
                };
                if relevant {
                    let _ = tx.try_send(());
                }
            })
            .map_err(|source| WatchError::Notify {
                path: dir.clone(),
                source,
            })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Notify {
                path: dir.clone(),
                source,
            })?;
        Ok(PartnersWatcher {
            _watcher: watcher,
            events: rx,
            path: path.to_path_buf(),
            last: fingerprint(path),
        })
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wait for the next change of the file's content, debounced. `None` when the watch has
    /// ended.
    pub async fn changed(&mut self) -> Option<()> {
        loop {
            self.burst().await?;
            let path = self.path.clone();
            let now = tokio::task::spawn_blocking(move || fingerprint(&path))
                .await
                .ok()?;
            if now != self.last {
                self.last = now;
                return Some(());
            }
        }
    }

    /// Wait for a burst of directory events to end.
    async fn burst(&mut self) -> Option<()> {
        self.events.recv().await?;
        let deadline = Instant::now() + MAX_DELAY;
        loop {
            let until = (Instant::now() + QUIET).min(deadline);
            match tokio::time::timeout_at(until, self.events.recv()).await {
                Ok(Some(())) if Instant::now() < deadline => continue,
                Ok(Some(())) | Err(_) => return Some(()),
                Ok(None) => return None,
            }
        }
    }
}

/// The content's hash, following symlinks; `None` when it cannot be read (a reload then
/// reports why).
fn fingerprint(path: &Path) -> Option<blake3::Hash> {
    std::fs::read(path).ok().map(|bytes| blake3::hash(&bytes))
}

/// Events that may change the file's content. Opening and reading it (our own reload does)
/// must not count, or every reload would trigger the next.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn changed_within(w: &mut PartnersWatcher, limit: Duration) -> bool {
        tokio::time::timeout(limit, w.changed()).await.is_ok()
    }

    #[tokio::test]
    async fn replacing_the_file_by_rename_is_noticed_and_bursts_coalesce() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partners.toml");
        std::fs::write(&path, "a").unwrap();
        let mut w = PartnersWatcher::new(&path).unwrap();
        // A burst: temp file, write, rename over, twice.
        for text in ["b", "c"] {
            let tmp = dir.path().join(".partners.toml.tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
        assert!(changed_within(&mut w, Duration::from_secs(1)).await);
        assert!(
            !changed_within(&mut w, Duration::from_millis(200)).await,
            "one burst, one signal"
        );
        // Reading the file is not a change; other files in the directory are not either, and
        // neither is rewriting the same content.
        let _ = std::fs::read(&path).unwrap();
        std::fs::write(dir.path().join("other.toml"), "x").unwrap();
        std::fs::write(&path, "c").unwrap();
        assert!(!changed_within(&mut w, Duration::from_millis(300)).await);
        // Writing new content in place is.
        std::fs::write(&path, "d").unwrap();
        assert!(changed_within(&mut w, Duration::from_secs(1)).await);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_configmap_style_symlink_swap_is_noticed() {
        use std::os::unix::fs::symlink;
        // partners.toml -> ..data/partners.toml, ..data -> v1; an update points ..data at v2.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (v, text) in [("v1", "one"), ("v2", "two")] {
            std::fs::create_dir(d.join(v)).unwrap();
            std::fs::write(d.join(v).join("partners.toml"), text).unwrap();
        }
        symlink("v1", d.join("..data")).unwrap();
        symlink("..data/partners.toml", d.join("partners.toml")).unwrap();
        let mut w = PartnersWatcher::new(&d.join("partners.toml")).unwrap();
        symlink("v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        assert!(changed_within(&mut w, Duration::from_secs(1)).await);
        assert_eq!(
            std::fs::read_to_string(d.join("partners.toml")).unwrap(),
            "two"
        );
    }
}
