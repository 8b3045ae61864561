//! light.xml, incrementally: one rendered fragment per (profile, snapshot shard), re-rendered
//! only when the shard's content (or the dictionaries) changed, and light.xml served as the
//! concatenation header + fragments + footer without copying them into one file.
//!
//! A stock update in a catalog of 100k products changes one shard, so publishing the new
//! light.xml costs one fragment per profile (a few hundred products), not the catalog.
//!
//! - **Bytes.** The pieces concatenated are exactly what `render::light` writes for the same
//!   snapshot (a test checks it).
//! - **ETag.** blake3 over the header, the fragments' blake3 and the footer: strong, and
//!   computed without reading the fragments again.
//! - **MD5** (the gateway `hash`, optional for light in IOF) is computed only while the file is
//!   at most [`MD5_LIMIT`]; larger light files are listed without a hash, as IdoSell does.
//! - **gzip** (`light.xml.gz`): each fragment is also deflated on its own and ended with a
//!   sync flush (byte-aligned, no back-references out of it), so the pieces join into one
//!   valid single-member gzip stream, as pigz does; the CRC-32 is combined from the
//!   fragments'. The first build of a key writes identity only (readiness does not wait for
//!   deflating a whole catalog); [`LightBuilder::deflate_pending`] follows with the rest.
//! - **Files.** Fragments live in `<artifacts>/_light/<profile>/`, written atomically and
//!   fsynced. A replaced fragment's file is deleted when the last light.xml using it is
//!   dropped, so downloads in flight keep their bytes. A fragment's name carries its CRC-32
//!   and blake3, so after a restart the files of the current shards are adopted from their
//!   names without reading them (files named by an older build are read and hashed once);
//!   the rest are removed.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use md5::{Digest, Md5};

use super::deflate::{deflate_sync, gzip_trailer, GZIP_HEADER};
use super::file::{Artifact, ArtifactError};
use crate::catalog::RenderProfile;
use crate::render::{self, DictIndex, OfferMeta};
use crate::snapshot::{ShardView, Snapshot};

/// light.xml files up to this size get an MD5 (the gateway `hash`); above it, hashing the
/// whole file on every update would cost more than the update.
pub const MD5_LIMIT: u64 = 8 << 20;

/// The directory under the artifacts directory that holds fragments.
pub(crate) const LIGHT_DIR: &str = "_light";

/// One piece of a multi-piece artifact.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes in memory (header, footer).
    Bytes(Bytes),
    /// A whole fragment file.
    File(Arc<FragmentFile>),
}

impl Piece {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::File(f) => f.len,
        }
    }

    /// True for an empty piece.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fragment file on disk. Deleted when dropped after being marked obsolete.
#[derive(Debug)]
pub struct FragmentFile {
    pub path: PathBuf,
    pub len: u64,
    /// The file mapped, served without reads or copies; `None` when mapping failed (it is
    /// then read from disk). Mapped when written, or at first use for a fragment adopted at
    /// start-up: mapping thousands of files there would hold the start back (each `mmap`
    /// takes the process's address-space lock).
    mapped: std::sync::OnceLock<Option<Bytes>>,
    obsolete: AtomicBool,
}

impl FragmentFile {
    /// An existing file, kept (not deleted on drop).
    pub fn existing(path: PathBuf) -> std::io::Result<FragmentFile> {
        let len = std::fs::metadata(&path)?.len();
        Ok(FragmentFile::at(path, len))
    }

    /// [`FragmentFile::existing`], read from disk instead of mapped (the fallback path).
    #[cfg(test)]
    pub(crate) fn unmapped(path: PathBuf) -> std::io::Result<FragmentFile> {
        let len = std::fs::metadata(&path)?.len();
        let f = FragmentFile::unmapped_yet(path, len);
        let _ = f.mapped.set(None);
        Ok(f)
    }

    /// The published fragment file of an earlier run at `path`, mapped at first use (see
    /// [`FragmentFile::mapped`]); `None` when it is missing.
    fn adopted(path: PathBuf) -> Option<FragmentFile> {
        let len = std::fs::metadata(&path).ok()?.len();
        Some(FragmentFile::unmapped_yet(path, len))
    }

    fn unmapped_yet(path: PathBuf, len: u64) -> FragmentFile {
        FragmentFile {
            path,
            len,
            mapped: std::sync::OnceLock::new(),
            obsolete: AtomicBool::new(false),
        }
    }

    /// The published (immutable) fragment file at `path`, `len` bytes long, mapped now.
    fn at(path: PathBuf, len: u64) -> FragmentFile {
        let f = FragmentFile::unmapped_yet(path, len);
        f.mapped();
        f
    }

    /// The file's bytes, mapped (on the first call); `None` when it cannot be mapped, and
    /// is then read from disk.
    pub fn mapped(&self) -> Option<&Bytes> {
        self.mapped
            .get_or_init(|| {
                crate::snapshot::map_file(&self.path)
                    .inspect_err(|e| {
                        tracing::warn!(path = %self.path.display(), error = %e, "cannot map a light.xml fragment; it is read from disk")
                    })
                    .ok()
                    .filter(|m| m.len() as u64 == self.len)
            })
            .as_ref()
    }
}

impl Drop for FragmentFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The rendered light products of one shard.
#[derive(Debug)]
struct Fragment {
    content_id: [u8; 32],
    dicts_id: [u8; 32],
    plain: Arc<FragmentFile>,
    blake3: [u8; 32],
    crc: crc32fast::Hasher,
    deflated: Option<Arc<FragmentFile>>,
}

impl Fragment {
    fn retire(&self) {
        self.plain.obsolete.store(true, Ordering::Release);
        if let Some(d) = &self.deflated {
            d.obsolete.store(true, Ordering::Release);
        }
    }
}

/// What was last built for one light key (profiles that differ only in file type share it).
struct ProfileLight {
    generation: u64,
    /// What the light.xml was assembled for, to assemble it again once deflated.
    published: jiff::Timestamp,
    profile: RenderProfile,
    fragments: HashMap<u32, Arc<Fragment>>,
    plain: Arc<Artifact>,
    /// light.xml.gz, served to the profiles with the `xml.gz` file type; `None` until every
    /// fragment has its deflated form ([`LightBuilder::deflate_pending`]).
    gz: Option<Arc<Artifact>>,
}

/// A light.xml assembled again once its fragments were deflated: the one it replaces in the
/// served set, and the new one with its gzip form.
pub(crate) struct Deflated {
    pub key: String,
    pub replaces: Arc<Artifact>,
    pub plain: Arc<Artifact>,
    pub gz: Arc<Artifact>,
}

/// Builds and keeps the light.xml of every profile.
pub struct LightBuilder {
    dir: PathBuf,
    timezone: jiff::tz::TimeZone,
    /// Files at most this large are assembled in memory (served without touching disk).
    memory_limit: u64,
    state: Mutex<HashMap<String, ProfileLight>>,
    /// Makes every fragment file name unique, so a file is never replaced under a reader.
    seq: AtomicU64,
    /// Set once the directories of an earlier run's unused keys are removed.
    swept: AtomicBool,
    /// Fragment files adopted by reading them (named by an older build): a restart of this
    /// build's files reads none.
    read_at_adopt: AtomicU64,
}

impl LightBuilder {
    pub(crate) fn new(artifacts_dir: &Path, timezone: jiff::tz::TimeZone) -> Self {
        LightBuilder {
            dir: artifacts_dir.join(LIGHT_DIR),
            timezone,
            memory_limit: super::MEMORY_LIMIT,
            state: Mutex::new(HashMap::new()),
            swept: AtomicBool::new(false),
            read_at_adopt: AtomicU64::new(0),
            seq: AtomicU64::new(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(0),
            ),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_memory_limit(mut self, limit: u64) -> Self {
        self.memory_limit = limit;
        self
    }

    /// light.xml (and light.xml.gz for gzip profiles) of `profile` for `snapshot`, or the
    /// newer ones already built. Renders only the shards whose content changed. The first
    /// build of a key (a start, a new profile) renders every shard in identity only, so the
    /// server is ready sooner: its deflated forms, and so light.xml's gzip forms, follow in
    /// [`LightBuilder::deflate_pending`]. Later builds deflate the few shards they render.
    pub fn build(
        &self,
        snapshot: &Snapshot,
        profile: &RenderProfile,
    ) -> Result<(Arc<Artifact>, Option<Arc<Artifact>>), ArtifactError> {
        let key = profile.light_key();
        let gz_for = |gz: &Option<Arc<Artifact>>| gz.clone().filter(|_| profile.gzip);
        let mut state = self.state.lock();
        if let Some(built) = state.get(&key) {
            // A profile with the xml.gz file type needs its light.xml.gz now: it is its file.
            if built.generation >= snapshot.generation() && (built.gz.is_some() || !profile.gzip) {
                return Ok((built.plain.clone(), gz_for(&built.gz)));
            }
        }
        let dir = self.dir.join(&key);
        std::fs::create_dir_all(&dir).map_err(|e| ArtifactError::io(&dir, e))?;
        let first_build = !state.contains_key(&key);
        let mut previous = state.remove(&key).map(|p| p.fragments).unwrap_or_default();
        if first_build {
            previous = self.adopt(&dir, snapshot, true);
        }
        let dicts_id = snapshot.dicts_content_id();
        let dicts = DictIndex::new(snapshot.dicts());
        let mut fragments = HashMap::new();
        let mut to_render = Vec::new();
        // By content id from the headers: shards whose fragment is at hand are not touched
        // (on a cold start, a page fault each).
        for (index, content_id) in snapshot.shard_ids() {
            match previous.get(&index) {
                Some(f) if f.content_id == content_id && f.dicts_id == dicts_id => {
                    fragments.insert(index, f.clone());
                }
                _ => to_render.extend(snapshot.shard(index)),
            }
        }
        let deflate = !first_build || profile.gzip;
        let rendered = self.render_shards(&dir, &to_render, profile, &dicts, dicts_id, deflate)?;
        if !rendered.is_empty() {
            // One directory sync for every fragment renamed into place.
            crate::fsio::sync_dir(&dir).map_err(|e| ArtifactError::io(&dir, e))?;
        }
        fragments.extend(rendered);
        if profile.gzip {
            let missing: Vec<Arc<Fragment>> = fragments
                .values()
                .filter(|f| f.deflated.is_none())
                .cloned()
                .collect();
            let deflated = self.deflate(&missing, &|| false)?;
            replace_deflated(&mut fragments, &deflated);
        }
        for (index, old) in &previous {
            // The same plain file with its deflated form added since is the same fragment.
            if fragments
                .get(index)
                .is_none_or(|f| !Arc::ptr_eq(&f.plain, &old.plain))
            {
                old.retire();
            }
        }
        let (plain, gz) = self.assemble(snapshot.published(), profile, &fragments)?;
        state.insert(
            key,
            ProfileLight {
                generation: snapshot.generation(),
                published: snapshot.published(),
                profile: profile.clone(),
                fragments,
                plain: plain.clone(),
                gz: gz.clone(),
            },
        );
        Ok((plain, gz_for(&gz)))
    }

    /// Deflate every fragment still without its deflated form (on the shared pool, off the
    /// state's lock, so light.xml keeps following updates meanwhile), then assemble again
    /// each light.xml whose fragments all have one: the ones to put in the served set.
    /// `stopping` ends the work early (an `Interrupted` error; the next start finishes it).
    /// Blocking.
    pub(crate) fn deflate_pending(
        &self,
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<Deflated>, ArtifactError> {
        let pending: Vec<Arc<Fragment>> = {
            let state = self.state.lock();
            state
                .values()
                .flat_map(|l| l.fragments.values())
                .filter(|f| f.deflated.is_none())
                .cloned()
                .collect()
        };
        let deflated = self.deflate(&pending, stopping)?;
        let mut out = Vec::new();
        let mut state = self.state.lock();
        for (key, light) in state.iter_mut() {
            replace_deflated(&mut light.fragments, &deflated);
            if light.gz.is_some() {
                continue;
            }
            let (plain, gz) = self.assemble(light.published, &light.profile, &light.fragments)?;
            if let Some(gz) = gz {
                out.push(Deflated {
                    key: key.clone(),
                    replaces: std::mem::replace(&mut light.plain, plain.clone()),
                    plain,
                    gz: gz.clone(),
                });
                light.gz = Some(gz);
            }
        }
        // Fragments replaced above stay with the pending list until here, so no file goes.
        drop(pending);
        Ok(out)
    }

    /// Once per run, after the first publish: remove the fragment directories of keys no
    /// profile uses (profiles gone while the server was down, an older key layout). Later,
    /// [`LightBuilder::retain`] deletes fragments as their last reader lets go.
    pub(crate) fn sweep_unused(&self, keep: &[String]) {
        if self.swept.swap(true, Ordering::AcqRel) {
            return;
        }
        let state = self.state.lock();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) && !state.contains_key(&name) {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove unused light fragments");
                }
            }
        }
    }

    /// Forget light keys not in `keep` (their fragments are deleted once unused).
    pub fn retain(&self, keep: &[String]) {
        let mut state = self.state.lock();
        state.retain(|key, light| {
            let kept = keep.contains(key);
            if !kept {
                light.fragments.values().for_each(|f| f.retire());
            }
            kept
        });
    }

    /// The deflated form of each of `pending` written (on the shared pool, durably), as the
    /// same fragments with it, by their plain file's path.
    fn deflate(
        &self,
        pending: &[Arc<Fragment>],
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Result<HashMap<PathBuf, Arc<Fragment>>, ArtifactError> {
        use rayon::prelude::*;
        let deflated: HashMap<PathBuf, Arc<Fragment>> = pending
            .par_iter()
            .with_max_len(1)
            .map(|f| {
                if stopping() {
                    let stopped = std::io::Error::from(std::io::ErrorKind::Interrupted);
                    return Err(ArtifactError::io(&f.plain.path, stopped));
                }
                let plain = &f.plain;
                let bytes = match plain.mapped() {
                    _ if plain.len == 0 => Bytes::new(),
                    Some(b) => b.clone(),
                    None => Bytes::from(
                        std::fs::read(&plain.path)
                            .map_err(|e| ArtifactError::io(&plain.path, e))?,
                    ),
                };
                let name = plain.path.file_name().unwrap_or_default().to_string_lossy();
                let dir = plain.path.parent().unwrap_or(&self.dir);
                let dz = write_deflated(dir, &name, &bytes)?;
                let with = Fragment {
                    content_id: f.content_id,
                    dicts_id: f.dicts_id,
                    plain: f.plain.clone(),
                    blake3: f.blake3,
                    crc: f.crc.clone(),
                    deflated: Some(dz),
                };
                Ok((plain.path.clone(), Arc::new(with)))
            })
            .collect::<Result<_, _>>()?;
        let dirs: std::collections::BTreeSet<&Path> = pending
            .iter()
            .filter_map(|f| f.plain.path.parent())
            .collect();
        for dir in dirs {
            crate::fsio::sync_dir(dir).map_err(|e| ArtifactError::io(dir, e))?;
        }
        Ok(deflated)
    }

    fn render_shards(
        &self,
        dir: &Path,
        shards: &[ShardView<'_>],
        profile: &RenderProfile,
        dicts: &DictIndex,
        dicts_id: [u8; 32],
        deflate: bool,
    ) -> Result<Vec<(u32, Arc<Fragment>)>, ArtifactError> {
        use rayon::prelude::*;
        // On the shared pool; fragments in shard order.
        shards
            .par_iter()
            .map(|s| {
                self.render_shard(dir, s, profile, dicts, dicts_id, deflate)
                    .map(|f| (s.index, Arc::new(f)))
            })
            .collect()
    }

    fn render_shard(
        &self,
        dir: &Path,
        shard: &ShardView<'_>,
        profile: &RenderProfile,
        dicts: &DictIndex,
        dicts_id: [u8; 32],
        deflate: bool,
    ) -> Result<Fragment, ArtifactError> {
        let mut bytes = Vec::with_capacity(shard.products.len() * 512);
        for p in shard.products {
            render::write_light_product(&mut bytes, profile, dicts, p)
                .map_err(|e| ArtifactError::io(dir, e))?;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes);
        let blake3 = *blake3::hash(&bytes).as_bytes();
        let stem = format!(
            "{}.{:08x}.{}",
            fragment_stem(shard.index, &shard.content_id, &dicts_id, seq),
            crc.clone().finalize(),
            hex::encode(blake3)
        );
        let plain = write_durably(dir, &format!("{stem}.xml"), &bytes)?;
        // Every profile gets the deflated form, now or (a first build) after readiness.
        let deflated = match deflate {
            true => Some(write_deflated(dir, &format!("{stem}.xml"), &bytes)?),
            false => None,
        };
        Ok(Fragment {
            content_id: shard.content_id,
            dicts_id,
            plain: Arc::new(plain),
            blake3,
            crc,
            deflated,
        })
    }

    /// After a restart: the fragment files of the current shards, re-hashed; the rest of the
    /// profile's directory is removed.
    fn adopt(&self, dir: &Path, snapshot: &Snapshot, gzip: bool) -> HashMap<u32, Arc<Fragment>> {
        let dicts_id = snapshot.dicts_content_id();
        let wanted: HashMap<String, ([u8; 32], u32)> = snapshot
            .shard_ids()
            .map(|(index, content_id)| {
                (
                    shard_key(index, &content_id, &dicts_id),
                    (content_id, index),
                )
            })
            .collect();
        let mut found = HashMap::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return found;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        // From the names alone, the one file per current shard to adopt.
        type Named = Option<(u32, [u8; 32])>;
        let mut chosen: HashMap<u32, (&PathBuf, [u8; 32], Named)> = HashMap::new();
        for path in &files {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".xml") else {
                continue;
            };
            let Some((key, tail)) = stem.rsplit_once('-') else {
                continue;
            };
            let Some(&(content_id, index)) = wanted.get(key) else {
                continue;
            };
            chosen
                .entry(index)
                .or_insert((path, content_id, named_sums(tail)));
        }
        // Then each file's inode and mapping: thousands of them in a large catalog, so on
        // many threads (the disk's queue, not the cores, bounds this).
        let adopted = crate::store::io_map(
            chosen.into_iter().collect(),
            |(index, (path, content_id, named))| {
                self.adopt_one(dir, path, named, gzip)
                    .map(|(plain, blake3, crc, deflated)| {
                        (
                            index,
                            Arc::new(Fragment {
                                content_id,
                                dicts_id,
                                plain: Arc::new(plain),
                                blake3,
                                crc,
                                deflated,
                            }),
                        )
                    })
            },
        );
        found.extend(adopted.into_iter().flatten());
        let keep: std::collections::HashSet<&Path> = found
            .values()
            .flat_map(|f| {
                std::iter::once(f.plain.path.as_path())
                    .chain(f.deflated.as_ref().map(|d| d.path.as_path()))
            })
            .collect();
        for path in &files {
            if !keep.contains(path.as_path()) {
                let _ = std::fs::remove_file(path);
            }
        }
        found
    }

    /// One fragment file (and its deflated form) of an earlier run, from its name's hashes
    /// or, for an older build's name, read, hashed and renamed.
    #[allow(clippy::type_complexity)]
    fn adopt_one(
        &self,
        dir: &Path,
        path: &Path,
        named: Option<(u32, [u8; 32])>,
        gzip: bool,
    ) -> Option<(
        FragmentFile,
        [u8; 32],
        crc32fast::Hasher,
        Option<Arc<FragmentFile>>,
    )> {
        let mut deflated_path = PathBuf::from(format!("{}.dz", path.display()));
        let (plain, blake3, crc) = match named {
            Some((crc, blake3)) => {
                let plain = FragmentFile::adopted(path.to_path_buf())?;
                let crc = crc32fast::Hasher::new_with_initial_len(crc, plain.len);
                (plain, blake3, crc)
            }
            None => {
                if gzip && !deflated_path.exists() {
                    return None;
                }
                let bytes = std::fs::read(path).ok()?;
                self.read_at_adopt.fetch_add(1, Ordering::Relaxed);
                let mut crc = crc32fast::Hasher::new();
                crc.update(&bytes);
                let blake3 = *blake3::hash(&bytes).as_bytes();
                // Renamed to this build's name (with the file's hashes), so the next restart
                // reads nothing; on failure the old name serves as well.
                let stem = path.file_name()?.to_str()?.strip_suffix(".xml")?;
                let sums = format!(
                    "{stem}.{:08x}.{}",
                    crc.clone().finalize(),
                    hex::encode(blake3)
                );
                let plain_to = dir.join(format!("{sums}.xml"));
                let dz_to = dir.join(format!("{sums}.xml.dz"));
                let moved = (!gzip || crate::fsio::rename(&deflated_path, &dz_to).is_ok())
                    && crate::fsio::rename(path, &plain_to).is_ok();
                let plain = if moved { plain_to } else { path.to_path_buf() };
                if moved && gzip {
                    deflated_path = dz_to;
                }
                (FragmentFile::at(plain, bytes.len() as u64), blake3, crc)
            }
        };
        // A fragment whose deflated form was not written yet (a stop before the deflation
        // finished) is adopted without it: deflate_pending writes it.
        let deflated = match gzip {
            true => FragmentFile::adopted(deflated_path).map(Arc::new),
            false => None,
        };
        Some((plain, blake3, crc, deflated))
    }

    /// The light.xml (and .gz) artifacts of `fragments` in shard order.
    /// light.xml.gz only once every fragment has its deflated form.
    fn assemble(
        &self,
        published: jiff::Timestamp,
        profile: &RenderProfile,
        fragments: &HashMap<u32, Arc<Fragment>>,
    ) -> Result<(Arc<Artifact>, Option<Arc<Artifact>>), ArtifactError> {
        let generated = published.to_zoned(self.timezone.clone()).datetime();
        let expires = generated
            .checked_add(jiff::Span::new().days(1))
            .unwrap_or(generated);
        let meta = OfferMeta { generated, expires };
        let mut header = Vec::new();
        render::write_light_header(&mut header, profile, &meta)
            .map_err(|e| ArtifactError::io(&self.dir, e))?;
        let mut footer = Vec::new();
        render::write_light_footer(&mut footer).map_err(|e| ArtifactError::io(&self.dir, e))?;
        let mut ordered: Vec<(&u32, &Arc<Fragment>)> = fragments.iter().collect();
        ordered.sort_by_key(|(i, _)| **i);
        let ordered: Vec<&Arc<Fragment>> = ordered
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| f.plain.len > 0)
            .collect();
        let modified = SystemTime::from(published);

        let mut etag = blake3::Hasher::new();
        etag.update(&header);
        let mut pieces = vec![Piece::Bytes(Bytes::from(header.clone()))];
        for f in &ordered {
            etag.update(&f.blake3);
            pieces.push(Piece::File(f.plain.clone()));
        }
        etag.update(&footer);
        pieces.push(Piece::Bytes(Bytes::from(footer.clone())));
        let plain = self.artifact(
            "light.xml",
            pieces,
            etag,
            modified,
            generated,
            "application/xml; charset=utf-8",
        )?;

        let Some(deflated) = ordered
            .iter()
            .map(|f| f.deflated.clone())
            .collect::<Option<Vec<_>>>()
        else {
            return Ok((plain, None));
        };
        let gz = {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&header);
            let mut first = GZIP_HEADER.to_vec();
            first.extend(deflate_sync(&header).map_err(|e| ArtifactError::io(&self.dir, e))?);
            let mut etag = blake3::Hasher::new();
            etag.update(b"gzip");
            etag.update(&first);
            let mut pieces = vec![Piece::Bytes(Bytes::from(first))];
            let mut total = header.len() as u64;
            for (f, d) in ordered.iter().zip(deflated) {
                crc.combine(&f.crc);
                total += f.plain.len;
                etag.update(&f.blake3);
                pieces.push(Piece::File(d));
            }
            crc.update(&footer);
            total += footer.len() as u64;
            let mut last = deflate_sync(&footer).map_err(|e| ArtifactError::io(&self.dir, e))?;
            last.extend_from_slice(&gzip_trailer(crc, total));
            etag.update(&last);
            pieces.push(Piece::Bytes(Bytes::from(last)));
            self.artifact(
                "light.xml.gz",
                pieces,
                etag,
                modified,
                generated,
                "application/gzip",
            )?
        };
        let plain = Arc::new(plain.with_gzip(&gz));
        Ok((plain, Some(gz)))
    }

    fn artifact(
        &self,
        name: &str,
        pieces: Vec<Piece>,
        etag: blake3::Hasher,
        modified: SystemTime,
        changed: jiff::civil::DateTime,
        content_type: &'static str,
    ) -> Result<Arc<Artifact>, ArtifactError> {
        let len: u64 = pieces.iter().map(Piece::len).sum();
        // Hashed slice by slice from the mappings: no copy of the whole file for its MD5.
        let md5 = if len <= MD5_LIMIT {
            let mut md5 = Md5::new();
            each_slice(&pieces, |b| md5.update(b))?;
            hex::encode(md5.finalize())
        } else {
            String::new()
        };
        let memory = if len <= self.memory_limit {
            Some(Bytes::from(read_pieces(&pieces)?))
        } else {
            None
        };
        Ok(Arc::new(Artifact {
            name: name.to_string(),
            kind: "light".to_string(),
            path: PathBuf::new(),
            len,
            md5,
            etag: format!("\"{}\"", &etag.finalize().to_hex()[..32]),
            modified,
            changed,
            content_type,
            content_encoding: None,
            memory,
            mapped: None,
            pieces: Some(pieces.into()),
            gzip: None,
        }))
    }
}

/// The deflated form of the fragment `{plain_name}` (its `bytes`), written beside it as
/// `{plain_name}.dz`: light.xml's gzip representation (`Accept-Encoding: gzip`), and
/// light.xml.gz for partners with that file type.
fn write_deflated(
    dir: &Path,
    plain_name: &str,
    bytes: &[u8],
) -> Result<Arc<FragmentFile>, ArtifactError> {
    let d = deflate_sync(bytes).map_err(|e| ArtifactError::io(dir, e))?;
    Ok(Arc::new(write_durably(
        dir,
        &format!("{plain_name}.dz"),
        &d,
    )?))
}

/// Put in `fragments` the deflated version of each fragment `deflated` has (by its plain
/// file; a fragment rendered since is another file and stays).
fn replace_deflated(
    fragments: &mut HashMap<u32, Arc<Fragment>>,
    deflated: &HashMap<PathBuf, Arc<Fragment>>,
) {
    for f in fragments.values_mut() {
        if let Some(d) = deflated.get(&f.plain.path) {
            if Arc::ptr_eq(&d.plain, &f.plain) {
                *f = d.clone();
            }
        }
    }
}

/// `s{index}-{content}-{dicts}`: what a fragment's bytes depend on (with the profile, which
/// is the directory).
fn shard_key(index: u32, content_id: &[u8; 32], dicts_id: &[u8; 32]) -> String {
    format!(
        "s{index}-{}-{}",
        hex::encode(&content_id[..12]),
        hex::encode(&dicts_id[..6])
    )
}

/// The CRC-32 and blake3 a fragment's name carries after its sequence number
/// (`{seq}.{crc}.{blake3}`); `None` for an older build's bare `{seq}`.
fn named_sums(tail: &str) -> Option<(u32, [u8; 32])> {
    let (_, sums) = tail.split_once('.')?;
    let (crc, b3) = sums.split_once('.')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    let mut blake3 = [0u8; 32];
    hex::decode_to_slice(b3, &mut blake3).ok()?;
    Some((crc, blake3))
}

/// For `iofd verify`: the blake3 a light.xml fragment file's name says its bytes have.
pub(crate) fn fragment_blake3(path: &Path) -> Option<[u8; 32]> {
    let in_light = path
        .parent()
        .and_then(Path::parent)
        .is_some_and(|d| d.ends_with(LIGHT_DIR));
    let stem = path.file_name()?.to_str()?.strip_suffix(".xml")?;
    let (_, tail) = stem.rsplit_once('-')?;
    in_light.then(|| named_sums(tail).map(|(_, b3)| b3))?
}

fn fragment_stem(index: u32, content_id: &[u8; 32], dicts_id: &[u8; 32], seq: u64) -> String {
    format!("{}-{seq}", shard_key(index, content_id, dicts_id))
}

/// Temp file, write, fsync, rename. The caller syncs the directory once for all fragments.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<FragmentFile, ArtifactError> {
    let path = dir.join(name);
    crate::fsio::Disk::PLAIN
        .write(&path, &[bytes])
        .map_err(|e| ArtifactError::io(&path, e))?;
    Ok(FragmentFile::at(path, bytes.len() as u64))
}

/// Every byte of `pieces`, concatenated.
pub(crate) fn read_pieces(pieces: &[Piece]) -> Result<Vec<u8>, ArtifactError> {
    let mut out = Vec::with_capacity(pieces.iter().map(Piece::len).sum::<u64>() as usize);
    each_slice(pieces, |b| out.extend_from_slice(b))?;
    Ok(out)
}

/// Hand the bytes of `pieces` to `f` in order: mapped fragments as they are, others read.
fn each_slice(pieces: &[Piece], mut f: impl FnMut(&[u8])) -> Result<(), ArtifactError> {
    let mut buf = Vec::new();
    for p in pieces {
        match p {
            Piece::Bytes(b) => f(b),
            Piece::File(file) => match file.mapped() {
                Some(bytes) => f(bytes),
                None => {
                    buf.clear();
                    File::open(&file.path)
                        .and_then(|mut r| r.read_to_end(&mut buf))
                        .map_err(|e| ArtifactError::io(&file.path, e))?;
                    f(&buf);
                }
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Format;
    use crate::store::{ApplyMode, Store, StoreOptions};
    use rust_decimal::Decimal;

    fn profile(gzip: bool) -> RenderProfile {
        RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip,
            languages: vec!["pol".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: Decimal::from(5),
            wholesale: false,
            only_in_stock: false,
            rules: Default::default(),
        }
    }

    fn whole_render(snapshot: &Snapshot, profile: &RenderProfile) -> Vec<u8> {
        let published = snapshot.published();
        let generated = published.to_zoned(jiff::tz::TimeZone::UTC).datetime();
        let meta = OfferMeta {
            generated,
            expires: generated.checked_add(jiff::Span::new().days(1)).unwrap(),
        };
        let mut out = Vec::new();
        render::light(
            &mut out,
            profile,
            &DictIndex::new(snapshot.dicts()),
            &meta,
            snapshot.products(),
        )
        .unwrap();
        out
    }

    fn demo_store(dir: &Path) -> Store {
        let store = Store::open(
            &dir.join("store"),
            StoreOptions {
                products_per_shard: 20,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let batch = crate::ingest::read_jsonl(
            "demo",
            &include_bytes!("../../fixtures/demo/catalog.jsonl")[..],
        )
        .unwrap();
        let records = batch.records.into_iter().map(|l| l.record).collect();
        store.apply(records, ApplyMode::Upsert).unwrap();
        store
    }

    fn gunzip(a: &Artifact) -> Vec<u8> {
        let packed = read_pieces(a.pieces.as_deref().unwrap()).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// The first build of a plain profile writes no deflated form (the start does not wait for
    /// it); `deflate_pending` writes them and assembles light.xml again with its gzip form,
    /// same identity bytes and ETag. A stop halfway leaves identity as it was, and a restart
    /// adopts the fragments without their deflated forms and renders nothing.
    #[test]
    fn the_first_build_is_identity_only_and_its_gzip_forms_follow() {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store(dir.path());
        let snap = store.snapshot();
        let builder = LightBuilder::new(dir.path(), jiff::tz::TimeZone::UTC).with_memory_limit(0);
        let p = profile(false);
        let (plain, gz) = builder.build(&snap, &p).unwrap();
        assert!(gz.is_none() && plain.gzip.is_none(), "identity only");
        let dz = |dir: &Path| {
            std::fs::read_dir(dir.join(LIGHT_DIR).join(p.light_key()))
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension() == Some("dz".as_ref()))
                .count()
        };
        assert_eq!(dz(dir.path()), 0);

        let stopped = builder.deflate_pending(&|| true).map(|d| d.len());
        assert!(stopped.is_err_and(|e| e.interrupted()));
        // A restart: fragments adopted without their deflated forms, none rendered again.
        let again = LightBuilder::new(dir.path(), jiff::tz::TimeZone::UTC).with_memory_limit(0);
        let (adopted, gz) = again.build(&snap, &p).unwrap();
        assert_eq!(adopted.etag, plain.etag);
        assert!(gz.is_none());
        let paths = |a: &Artifact| -> Vec<PathBuf> {
            let pieces = a.pieces.as_deref().unwrap().iter();
            pieces
                .filter_map(|p| match p {
                    Piece::File(f) => Some(f.path.clone()),
                    Piece::Bytes(_) => None,
                })
                .collect()
        };
        assert_eq!(
            paths(&adopted),
            paths(&plain),
            "the same files, none rendered"
        );

        let deflated = again.deflate_pending(&|| false).unwrap();
        assert_eq!(deflated.len(), 1);
        let d = &deflated[0];
        assert!(Arc::ptr_eq(&d.replaces, &adopted));
        assert_eq!(d.plain.etag, plain.etag, "the same identity bytes");
        let bytes = read_pieces(d.plain.pieces.as_deref().unwrap()).unwrap();
        assert_eq!(bytes, whole_render(&snap, &p));
        assert_eq!(gunzip(&d.gz), bytes);
        assert_eq!(gunzip(d.plain.gzip.as_ref().unwrap()), bytes);
        assert!(dz(dir.path()) > 0);
        // Nothing left to deflate; the next build serves the deflated light.xml.
        assert!(again.deflate_pending(&|| false).unwrap().is_empty());
        let (built, _) = again.build(&snap, &p).unwrap();
        assert!(Arc::ptr_eq(&built, &d.plain));
        // A profile with the xml.gz file type gets light.xml.gz at its first build.
        let fresh = tempfile::tempdir().unwrap();
        let store = demo_store(fresh.path());
        let builder = LightBuilder::new(fresh.path(), jiff::tz::TimeZone::UTC);
        let (_, gz) = builder.build(&store.snapshot(), &profile(true)).unwrap();
        assert_eq!(
            gunzip(&gz.unwrap()),
            whole_render(&store.snapshot(), &profile(true))
        );
    }

    #[test]
    fn fragments_join_into_the_whole_render_and_only_changed_shards_are_rendered() {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store(dir.path());
        let builder = LightBuilder::new(dir.path(), jiff::tz::TimeZone::UTC).with_memory_limit(0);
        for gzip in [false, true] {
            let p = profile(gzip);
            let snap = store.snapshot();
            let (plain, gz) = builder.build(&snap, &p).unwrap();
            assert!(plain.memory.is_none(), "served from pieces");
            let bytes = read_pieces(plain.pieces.as_deref().unwrap()).unwrap();
            assert_eq!(bytes, whole_render(&snap, &p));
            assert_eq!(bytes.len() as u64, plain.len);
            assert_eq!(plain.md5, format!("{:x}", Md5::digest(&bytes)).as_str());
            if gzip {
                let gz = gz.expect("gzip variant");
                let packed = read_pieces(gz.pieces.as_deref().unwrap()).unwrap();
                let mut out = Vec::new();
                // A single-member decoder: the pieces form one gzip member.
                flate2::read::GzDecoder::new(&packed[..])
                    .read_to_end(&mut out)
                    .unwrap();
                assert_eq!(out, bytes);
            }
        }
        // One product changes: one fragment is re-rendered, the others are the same files.
        let p = profile(true);
        let before = builder.build(&store.snapshot(), &p).unwrap().0;
        let update = r#"{"kind":"stock","product":1,"warehouse":1,"quantity":"12345"}"#;
        let u: crate::ingest::Update =
            crate::ingest::JsonlReader::<_, crate::ingest::Update>::of("u", update.as_bytes())
                .next()
                .unwrap()
                .unwrap()
                .record;
        store
            .commit(vec![crate::store::Request {
                ops: vec![crate::store::Op::Update(u)],
                ..Default::default()
            }])
            .unwrap();
        let snap = store.snapshot();
        let (after, gz) = builder.build(&snap, &p).unwrap();
        let files = |a: &Artifact| -> Vec<PathBuf> {
            a.pieces
                .as_deref()
                .unwrap()
                .iter()
                .filter_map(|p| match p {
                    Piece::File(f) => Some(f.path.clone()),
                    Piece::Bytes(_) => None,
                })
                .collect()
        };
        let (old, new) = (files(&before), files(&after));
        assert_eq!(old.len(), new.len());
        assert_eq!(old.iter().zip(&new).filter(|(a, b)| a != b).count(), 1);
        assert_ne!(before.etag, after.etag);
        let bytes = read_pieces(after.pieces.as_deref().unwrap()).unwrap();
        assert_eq!(bytes, whole_render(&snap, &p));
        assert!(String::from_utf8_lossy(&bytes).contains("quantity=\"12345\""));
        let packed = read_pieces(gz.unwrap().pieces.as_deref().unwrap()).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, bytes);
        // The replaced fragment's file goes when the last light.xml using it is dropped.
        let gone: Vec<_> = old.iter().filter(|p| !new.contains(p)).cloned().collect();
        assert!(gone[0].exists());
        drop(before);
        assert!(!gone[0].exists());

        // A restart adopts the files: same bytes, same ETag, nothing rendered.
        let again = LightBuilder::new(dir.path(), jiff::tz::TimeZone::UTC).with_memory_limit(0);
        let (restarted, _) = again.build(&snap, &p).unwrap();
        assert_eq!(restarted.etag, after.etag);
        assert_eq!(files(&restarted), new);
        // From the files' names: none was read.
        assert_eq!(again.read_at_adopt.load(Ordering::Relaxed), 0);
        let bytes = |a: &Artifact| read_pieces(a.pieces.as_deref().unwrap()).unwrap();
        assert_eq!(bytes(&restarted), bytes(&after));
        // An older build's names (no hashes in them): read once and renamed, same bytes.
        for f in &new {
            let name = f.file_name().unwrap().to_str().unwrap();
            let (head, _) = name.split_once('.').unwrap();
            for ext in ["xml", "xml.dz"] {
                let from = PathBuf::from(format!("{}.dz", f.display()));
                let from = if ext == "xml" { f.clone() } else { from };
                std::fs::rename(&from, f.with_file_name(format!("{head}.{ext}"))).unwrap();
            }
        }
        let older = LightBuilder::new(dir.path(), jiff::tz::TimeZone::UTC).with_memory_limit(0);
        let (migrated, _) = older.build(&snap, &p).unwrap();
        assert_eq!(migrated.etag, after.etag);
        assert_eq!(
            older.read_at_adopt.load(Ordering::Relaxed),
            new.len() as u64
        );
        assert_eq!(files(&migrated), new, "renamed to this build's names");
        assert_eq!(bytes(&migrated), bytes(&after));

        // `iofd verify` holds each fragment to the blake3 its name carries.
        let check = super::super::file::verify(dir.path());
        assert!(
            check.problems.is_empty() && check.files >= new.len(),
            "{check:?}"
        );
        let mut altered = std::fs::read(&new[0]).unwrap();
        altered[0] ^= 1;
        std::fs::remove_file(&new[0]).unwrap();
        std::fs::write(&new[0], &altered).unwrap();
        let problems = super::super::file::verify(dir.path()).problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("blake3 its name carries"),
            "{problems:?}"
        );
    }
}
