//! One owner per store directory: an exclusive `flock(2)` on `LOCK`, held for as long as the
//! [`super::Store`] lives.
//!
//! Two processes writing one directory would collect each other's spool and staged files and
//! replace each other's manifest from a stale view, losing acknowledged writes, so a second
//! open fails at once instead of waiting. `flock` (not `fcntl`) because its lock belongs to
//! the open file: a second open in the same process is refused too, and the kernel drops
//! the lock when the process dies, however it dies. The holder writes its pid into the file,
//! only so that the refusal can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use super::StoreError;

/// Name of the lock file inside the store directory.
pub const LOCK: &str = "LOCK";

/// Retries before a held lock is refused (see [`DirLock::acquire`]): half a second in all,
/// long enough for a loaded machine to finish a fork and exec.
const RETRIES: u32 = 50;
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The held lock; released when dropped (the file stays, its content is only a hint).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Take the lock of `dir`, or fail at once with [`StoreError::Locked`] naming the holder.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(LOCK);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut tries = 0;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    // A child that any process holding the lock is spawning shares its open
                    // files until it execs, so a lock its owner has just dropped can stay
                    // held for an instant after. The pid in the file cannot tell that apart
                    // (it may be a stale hint), so every refusal waits a moment first.
                    if tries < RETRIES {
                        tries += 1;
                        std::thread::sleep(RETRY_PAUSE);
                        continue;
                    }
                    let pid = holder(&mut file);
                    return Err(StoreError::Locked { pid, path });
                }
                Err(e) => return Err(io(e.into())),
            }
        }
        // Ours now: replace whatever an earlier holder left. Not fsynced: after a crash the
        // lock is gone anyway and a stale pid is only a hint.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DirLock { _file: file })
    }
}

/// The pid the holder wrote, if it has written it yet.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // Refused after the short grace a spawning child gets, not after a long wait.
        let started = std::time::Instant::now();
        match DirLock::acquire(dir.path()) {
            Err(StoreError::Locked { pid, path }) => {
                assert_eq!(pid, Some(std::process::id()));
                assert_eq!(path, dir.path().join(LOCK));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        drop(first);
        // A stale pid from an earlier holder is replaced, not appended to.
        std::fs::write(dir.path().join(LOCK), "4000000000\n").unwrap();
        let _again = DirLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
    }
}
