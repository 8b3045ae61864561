//! Durable file publication, the one place that renames files into place: a temporary file in
//! the destination directory → write → `sync_all` → rename → fsync the directory. Readers and a
//! crash see the old file or the complete new one, never a part. A published file is never
//! opened for writing again (it may be mapped).
//!
//! Every operation reports its steps to a [`Hook`] first; the store's fault injection uses it
//! to fail a chosen step, everyone else uses [`Disk::PLAIN`] (or the free functions).
//! Errors are the operating system's, unchanged: callers add the path to their own error.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Suffix of temporary files; with the leading `.` of their names it marks them as garbage
/// after a crash for every directory scanner.
pub const TMP_SUFFIX: &str = ".tmp";

/// A durability step, as reported to a [`Hook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Creating or writing a temporary file.
    Write,
    /// `sync_all` of a file.
    Fsync,
    /// Renaming (or linking) a file into place.
    Rename,
    /// `sync_all` of a directory.
    DirFsync,
}

/// Called before each step with the file's path (the directory's for [`Step::DirFsync`]); an
/// error stops the operation there.
pub type Hook = fn(Step, &Path) -> io::Result<()>;

fn no_hook(_step: Step, _path: &Path) -> io::Result<()> {
    Ok(())
}

/// The durable operations with one [`Hook`].
#[derive(Clone, Copy)]
pub struct Disk {
    hook: Hook,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk").finish_non_exhaustive()
    }
}

impl Disk {
    /// No hook: what production code uses.
    pub const PLAIN: Disk = Disk { hook: no_hook };

    /// Report every step to `hook`.
    pub const fn hooked(hook: Hook) -> Disk {
        Disk { hook }
    }

    /// A temporary file that [`AtomicFile::commit`] publishes as `dest`.
    pub fn create(&self, dest: &Path) -> io::Result<AtomicFile> {
        let dir = parent(dest);
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        (self.hook)(Step::Write, &dir.join(temp_name_hint(name)))?;
        // The mode `File::create` gives (0666 less the umask), not a temporary file's 0600:
        // published files are read by other processes too. A writer wanting less restricts it.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(TMP_SUFFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            hook: self.hook,
        })
    }

    /// Write `parts` as the file `dest`, atomically and durably, except for the rename itself:
    /// the directory still needs [`Disk::sync_dir`] (one sync can cover several files).
    /// Returns the bytes written.
    pub fn write(&self, dest: &Path, parts: &[&[u8]]) -> io::Result<u64> {
        let mut file = self.create(dest)?;
        let mut written = 0u64;
        for part in parts {
            file.write_all(part)?;
            written += part.len() as u64;
        }
        file.commit()?;
        Ok(written)
    }

    /// fsync a directory so that renames and creations in it survive a power cut.
    pub fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        (self.hook)(Step::DirFsync, dir)?;
        File::open(dir)?.sync_all()
    }

    /// fsync files written earlier, several at once on the shared pool (the device sees a
    /// queue instead of one flush after another). A file that is gone needs no sync when `missing_ok`.
    pub fn sync_files(&self, paths: &[PathBuf], missing_ok: bool) -> io::Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        use rayon::prelude::*;
        let hook = self.hook;
        // fsync acts on the inode: a fresh descriptor flushes what the writer wrote.
        paths.par_iter().with_max_len(1).try_for_each(|p| {
            hook(Step::Fsync, p)?;
            match File::open(p).and_then(|f| f.sync_all()) {
                Err(e) if missing_ok && e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        })
    }

    /// Move `from` to `to` (replacing a file there) and make the move durable: the
    /// destination's directory is synced, then the source's if it is another one.
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        (self.hook)(Step::Rename, from)?;
        fs::rename(from, to)?;
        let (to_dir, from_dir) = (parent(to), parent(from));
        self.sync_dir(to_dir)?;
        if from_dir != to_dir {
            self.sync_dir(from_dir)?;
        }
        Ok(())
    }

    /// Make `dir/to` a second name of the file `dir/from`, atomically replacing `to`: a new
    /// name costs no data write and no fsync of its own, only the directory's
    /// [`Disk::sync_dir`].
    pub fn link(&self, dir: &Path, from: &str, to: &str) -> io::Result<()> {
        let tmp = dir.join(format!(".{to}.link{TMP_SUFFIX}"));
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        (self.hook)(Step::Rename, &tmp)?;
        fs::hard_link(dir.join(from), &tmp)?;
        let result = (self.hook)(Step::Rename, &tmp).and_then(|()| fs::rename(&tmp, dir.join(to)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// A file being written under a temporary name beside its destination; dropped without
/// [`AtomicFile::commit`], it is removed.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
    hook: Hook,
}

impl AtomicFile {
    /// The open temporary file (to set permissions, say).
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// The temporary file's path.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Where [`AtomicFile::commit`] puts the file.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// fsync the contents, then rename into place. The directory still needs
    /// [`Disk::sync_dir`] (or use [`AtomicFile::commit_and_sync_dir`]).
    pub fn commit(self) -> io::Result<()> {
        (self.hook)(Step::Fsync, self.tmp.path())?;
        self.tmp.as_file().sync_all()?;
        self.persist()
    }

    /// [`AtomicFile::commit`], then the directory's fsync: the file is durable on return.
    pub fn commit_and_sync_dir(self) -> io::Result<()> {
        let (hook, dir) = (self.hook, parent(&self.dest).to_path_buf());
        self.commit()?;
        Disk::hooked(hook).sync_dir(&dir)
    }

    /// Rename into place without waiting for the disk: for files that only restate data
    /// held durably elsewhere, synced later in bulk with [`Disk::sync_files`].
    pub fn persist(self) -> io::Result<()> {
        (self.hook)(Step::Rename, self.tmp.path())?;
        self.tmp.persist(&self.dest).map(drop).map_err(|e| e.error)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.as_file_mut().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tmp.as_file_mut().write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.as_file_mut().flush()
    }
}

/// The destination's name for a temporary file this module created (`.{name}.XXXXXX.tmp`),
/// so a directory's owner can recognise crash leftovers of its own files.
pub fn temp_target(file_name: &str) -> Option<&str> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(TMP_SUFFIX)?;
    inner.rsplit_once('.').map(|(name, _random)| name)
}

/// A stand-in temporary name for a hook that is called before the real one exists.
fn temp_name_hint(name: &str) -> String {
    format!(".{name}{TMP_SUFFIX}")
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// [`Disk::create`] without a hook.
pub fn create(dest: &Path) -> io::Result<AtomicFile> {
    Disk::PLAIN.create(dest)
}

/// Write `bytes` as `dest` and fsync its directory: durable and atomic on return.
pub fn write(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    Disk::PLAIN.write(dest, &[bytes])?;
    sync_dir(parent(dest))
}

/// Append `bytes` to the log-like file `dest` (created if absent), in one write; with `sync`
/// the data is on the disk on return. For files whose readers tolerate a torn last line (they
/// check each line): appending renames nothing, so it is no publication.
pub fn append(dest: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dest)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

/// [`Disk::sync_dir`] without a hook.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    Disk::PLAIN.sync_dir(dir)
}

/// [`Disk::rename`] without a hook.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    Disk::PLAIN.rename(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_publishes_the_complete_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.bin");
        assert_eq!(
            Disk::PLAIN.write(&dest, &[b"hello ", b"world"]).unwrap(),
            11
        );
        write(&dir.path().join("b.bin"), b"x").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello world");
        assert_eq!(names(dir.path()), ["a.bin", "b.bin"]);
    }

    #[test]
    fn a_dropped_file_leaves_nothing_and_the_old_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a");
        write(&dest, b"old").unwrap();
        let mut f = create(&dest).unwrap();
        f.write_all(b"new").unwrap();
        let tmp = f
            .temp_path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(temp_target(&tmp), Some("a"));
        drop(f);
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["a"]);
    }

    #[test]
    fn a_failing_hook_stops_at_its_step() {
        fn fail_rename(step: Step, _: &Path) -> io::Result<()> {
            match step {
                Step::Rename => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
                _ => Ok(()),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a");
        let err = Disk::hooked(fail_rename).write(&dest, &[b"x"]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn rename_moves_between_directories_and_link_adds_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        write(&dir.path().join("a"), b"1").unwrap();
        rename(&dir.path().join("a"), &sub.join("b")).unwrap();
        assert_eq!(fs::read(sub.join("b")).unwrap(), b"1");
        Disk::PLAIN.link(&sub, "b", "c").unwrap();
        assert_eq!(fs::read(sub.join("c")).unwrap(), b"1");
        assert_eq!(names(&sub), ["b", "c"]);
        Disk::PLAIN
            .sync_files(&[sub.join("b"), sub.join("gone")], true)
            .unwrap();
        assert!(Disk::PLAIN.sync_files(&[sub.join("gone")], false).is_err());
    }

    #[test]
    fn temp_target_recognises_only_our_temporaries() {
        assert_eq!(temp_target(".MANIFEST.a1B2c3.tmp"), Some("MANIFEST"));
        assert_eq!(temp_target(".s1.snap.x.tmp"), Some("s1.snap"));
        assert_eq!(temp_target("MANIFEST.tmp"), None);
        assert_eq!(temp_target(".x.tmp"), None);
    }
}
