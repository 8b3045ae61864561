//! Durable file publication: temporary file → write → `sync_all` → rename → fsync the
//! directory. A published file is never opened for writing again (it may be mapped).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::snapshot::format;

use super::fault::{self, Step};
use super::manifest::{MANIFEST, PREVIOUS};

/// Suffix of files being written; anything with it is garbage after a crash.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Write `parts` as the file `dir/name`, durably and atomically: readers and a crash see
/// either no file or the complete one. Returns the bytes written. The directory still needs
/// [`sync_dir`] for the rename itself to be durable.
pub(crate) fn write_file(dir: &Path, name: &str, parts: &[&[u8]]) -> io::Result<u64> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let result = (|| {
        // `create` truncates a stale temporary left by a crash; temporaries are never mapped.
        fault::check(Step::Write, &tmp)?;
        let mut file = File::create(&tmp)?;
        let mut written = 0u64;
        for part in parts {
            file.write_all(part)?;
            written += part.len() as u64;
        }
        fault::check(Step::Fsync, &tmp)?;
        file.sync_all()?;
        drop(file);
        fault::check(Step::Rename, &tmp)?;
        fs::rename(&tmp, dir.join(name))?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A group of files published together. Each is written to a temporary file; on
/// [`Staged::publish`] all are fsynced concurrently (the device sees one deep queue instead
/// of one flush after another), renamed into place, and the directory is fsynced once.
/// Dropped unpublished, it removes its temporary files.
pub(crate) struct Staged<'a> {
    dir: &'a Path,
    names: Vec<String>,
    published: bool,
}

/// How many files are fsynced at once; the threads wait on the device, not on a core.
const SYNC_THREADS: usize = 8;

impl<'a> Staged<'a> {
    pub(crate) fn new(dir: &'a Path) -> Self {
        Staged {
            dir,
            names: Vec::new(),
            published: false,
        }
    }

    fn tmp(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(format!("{name}{TMP_SUFFIX}"))
    }

    /// Write `parts` to the temporary file of `name`; returns the bytes written.
    pub(crate) fn write(&mut self, name: &str, parts: &[&[u8]]) -> io::Result<u64> {
        // `create` truncates a stale temporary left by a crash; temporaries are never mapped.
        let tmp = self.tmp(name);
        fault::check(Step::Write, &tmp)?;
        let mut file = File::create(&tmp)?;
        self.names.push(name.to_owned());
        let mut written = 0u64;
        for part in parts {
            file.write_all(part)?;
            written += part.len() as u64;
        }
        Ok(written)
    }

    /// Names of the staged files.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Make every staged file durable under its final name.
    pub(crate) fn publish(&mut self) -> io::Result<()> {
        if self.names.is_empty() {
            return Ok(());
        }
        let tmps: Vec<_> = self.names.iter().map(|n| self.tmp(n)).collect();
        let chunk = tmps.len().div_ceil(SYNC_THREADS);
        std::thread::scope(|scope| {
            let handles: Vec<_> = tmps
                .chunks(chunk)
                .map(|paths| {
                    // fsync acts on the inode: a fresh descriptor flushes what the writer wrote.
                    scope.spawn(move || {
                        paths.iter().try_for_each(|p| {
                            fault::check(Step::Fsync, p)?;
                            File::open(p)?.sync_all()
                        })
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })?;
        for (tmp, name) in tmps.iter().zip(&self.names) {
            fault::check(Step::Rename, tmp)?;
            fs::rename(tmp, self.dir.join(name))?;
        }
        self.published = true;
        sync_dir(self.dir)
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.published {
            for name in &self.names {
                let _ = fs::remove_file(self.tmp(name));
            }
        }
    }
}

/// fsync a directory so that renames and creations in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fault::check(Step::DirFsync, dir)?;
    File::open(dir)?.sync_all()
}

/// Make `dir/to` a second name of the file `dir/from`, atomically replacing `to`: a new
/// name costs no data write and no fsync of its own, only the directory's [`sync_dir`].
pub(crate) fn link_file(dir: &Path, from: &str, to: &str) -> io::Result<()> {
    let tmp = dir.join(format!("{to}{TMP_SUFFIX}"));
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fault::check(Step::Rename, &tmp)?;
    fs::hard_link(dir.join(from), &tmp)?;
    let result = fault::check(Step::Rename, &tmp).and_then(|()| fs::rename(&tmp, dir.join(to)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Remove leftovers: temporary files, and snapshot files that `keep` does not name. Files
/// with other names are not ours and are left alone. Returns how many files were removed.
pub(crate) fn collect_garbage(dir: &Path, keep: &HashSet<&str>) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name.strip_suffix(TMP_SUFFIX).is_some_and(|base| {
            base == MANIFEST || base == PREVIOUS || format::parse_file_name(base).is_some()
        }) || (format::parse_file_name(name).is_some() && !keep.contains(name));
        if ours && entry.file_type()?.is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_publishes_complete_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let n = write_file(dir.path(), "a.bin", &[b"hello ", b"world"]).unwrap();
        assert_eq!(n, 11);
        assert_eq!(fs::read(dir.path().join("a.bin")).unwrap(), b"hello world");
        assert!(!dir.path().join("a.bin.tmp").exists());
        sync_dir(dir.path()).unwrap();
    }

    #[test]
    fn staged_files_appear_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut staged = Staged::new(dir.path());
            assert_eq!(staged.write("a", &[b"1"]).unwrap(), 1);
            assert_eq!(staged.write("b", &[b"22", b"2"]).unwrap(), 3);
            assert!(!dir.path().join("a").exists());
            // Dropped without publishing: nothing remains.
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut staged = Staged::new(dir.path());
        for i in 0..20 {
            staged.write(&format!("f{i}"), &[b"x"]).unwrap();
        }
        staged.publish().unwrap();
        assert_eq!(staged.names().len(), 20);
        drop(staged);
        let names: HashSet<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            (0..20).map(|i| format!("f{i}")).collect::<HashSet<_>>()
        );
    }

    #[test]
    fn garbage_collection_removes_only_our_unreferenced_files() {
        let dir = tempfile::tempdir().unwrap();
        let keep_name = format::shard_file_name(0, &[1; 32]);
        let drop_name = format::shard_file_name(1, &[2; 32]);
        let names = [
            keep_name.clone(),
            drop_name.clone(),
            format!("{}{TMP_SUFFIX}", format::dicts_file_name(&[3; 32])),
            format!("{MANIFEST}{TMP_SUFFIX}"),
            "notes.txt".to_owned(),
            "other.tmp".to_owned(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), b"x").unwrap();
        }
        let keep = HashSet::from([keep_name.as_str()]);
        assert_eq!(collect_garbage(dir.path(), &keep).unwrap(), 3);
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![keep_name, "notes.txt".to_owned(), "other.tmp".to_owned()];
        expected.sort();
        assert_eq!(left, expected);
        assert!(!dir.path().join(drop_name).exists());
    }
}
