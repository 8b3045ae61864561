//! The store's use of [`crate::fsio`]: every step reports to the fault-injection seam, and a
//! generation's files are staged together. A published file is never opened for writing again
//! (it may be mapped).

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::fsio::{self, AtomicFile, Disk};
use crate::snapshot::format;

use super::fault;
use super::manifest::{MANIFEST, PREVIOUS};

/// Suffix of files being written; anything with it is garbage after a crash.
pub(crate) const TMP_SUFFIX: &str = fsio::TMP_SUFFIX;

/// The durable operations, each step checked by the fault-injection seam first.
const DISK: Disk = Disk::hooked(fault::check);

/// Write `parts` as the file `dir/name`, durably and atomically: readers and a crash see
/// either no file or the complete one. Returns the bytes written. The directory still needs
/// [`sync_dir`] for the rename itself to be durable.
pub(crate) fn write_file(dir: &Path, name: &str, parts: &[&[u8]]) -> io::Result<u64> {
    DISK.write(&dir.join(name), parts)
}

/// A group of files published together. Each is written to a temporary file; on
/// [`Staged::publish`] all are fsynced concurrently, renamed into place, and the directory
/// is fsynced once. Dropped unpublished, it removes its temporary files.
pub(crate) struct Staged<'a> {
    dir: &'a Path,
    names: Vec<String>,
    files: Vec<AtomicFile>,
}

impl<'a> Staged<'a> {
    pub(crate) fn new(dir: &'a Path) -> Self {
        Staged {
            dir,
            names: Vec::new(),
            files: Vec::new(),
        }
    }

    /// Write `parts` to the temporary file of `name`; returns the bytes written.
    pub(crate) fn write(&mut self, name: &str, parts: &[&[u8]]) -> io::Result<u64> {
        let mut file = DISK.create(&self.dir.join(name))?;
        let mut written = 0u64;
        for part in parts {
            file.write_all(part)?;
            written += part.len() as u64;
        }
        self.names.push(name.to_owned());
        self.files.push(file);
        Ok(written)
    }

    /// Names of the staged files.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Make every staged file durable under its final name.
    pub(crate) fn publish(&mut self) -> io::Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        let tmps: Vec<_> = self
            .files
            .iter()
            .map(|f| f.temp_path().to_path_buf())
            .collect();
        DISK.sync_files(&tmps, false)?;
        for file in std::mem::take(&mut self.files) {
            file.persist()?;
        }
        sync_dir(self.dir)
    }
}

/// fsync a directory so that renames and creations in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    DISK.sync_dir(dir)
}

/// Make `dir/to` a second name of the file `dir/from`, atomically replacing `to`: a new
/// name costs no data write and no fsync of its own, only the directory's [`sync_dir`].
pub(crate) fn link_file(dir: &Path, from: &str, to: &str) -> io::Result<()> {
    DISK.link(dir, from, to)
}

/// Remove leftovers: temporary files, and snapshot files that `keep` does not name. Files
/// with other names are not ours and are left alone. Returns how many files were removed.
pub(crate) fn collect_garbage(dir: &Path, keep: &HashSet<&str>) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Temporaries of ours: this module's (`.name.XXXXXX.tmp`) and older versions'
        // (`name.tmp`).
        let ours = fsio::temp_target(name)
            .or_else(|| name.strip_suffix(TMP_SUFFIX))
            .is_some_and(|base| {
                base == MANIFEST || base == PREVIOUS || format::parse_file_name(base).is_some()
            })
            || (format::parse_file_name(name).is_some() && !keep.contains(name));
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
