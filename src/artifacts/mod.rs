//! Rendered bytes, ready to serve: one set of files per (snapshot generation, render profile).
//!
//! Each file is rendered once into the data directory (temp file, fsync, rename), with its
//! MD5 (for the gateway `hash`), a strong ETag (blake3) and its length computed while writing.
//! Partners with equal profiles share the same files. Reference files are keyed by the content
//! of the dictionaries, so they keep their bytes, hash and `changed` time while the
//! dictionaries do not change; full and light follow the catalog generation. Rendering is
//! deterministic (timestamps come from the snapshot), and files found on disk from an earlier
//! run are reused, so a restart serves the same bytes under the same ETags.

mod change_file;
mod deflate;
mod file;
mod full;
mod gateway;
mod light;
mod sink;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::catalog::{Format, RenderProfile};
use crate::changes::Listing;
use crate::render::{self, DictIndex, OfferMeta, ReferenceKind, ReferenceMeta, Used};
use crate::snapshot::Snapshot;

pub(crate) use change_file::write_change_file;
pub use file::{verify, Artifact, ArtifactError, ArtifactsCheck};
pub use gateway::{path_key, profile_path, signed_url, GatewayCache, GatewayLinks};
pub use light::{FragmentFile, LightBuilder, Piece};

/// full.xml of an IOF profile as the changes stage lists it: a base rebuilt on a schedule,
/// and the change files the gateway lists under it (`<full><changes>`).
#[derive(Debug, Clone)]
pub struct FullFiles {
    /// Served as `full.xml`.
    pub base: Arc<Artifact>,
    /// `full_change….xml` files, newest first.
    pub changes: Vec<Arc<Artifact>>,
}

/// Files at most this large are kept in memory; larger ones are mapped (see [`Artifact::mapped`]).
const MEMORY_LIMIT: u64 = 1 << 20;

/// How long a base or change file stays on disk once no served set lists it: downloads that
/// started from an earlier listing (a gateway read just before) still find it. Other files
/// have their URL's name, not their own, so they go as soon as no served set lists them.
pub const RETIRE_GRACE: Duration = Duration::from_secs(120);

/// Every file of one profile for one generation, by file name (`full.xml`, `categories.xml`).
#[derive(Debug)]
pub struct ProfileArtifacts {
    pub profile: RenderProfile,
    pub files: HashMap<String, Arc<Artifact>>,
}

impl ProfileArtifacts {
    /// A file by its name in URLs (`full.xml`, `light.csv`, ...).
    pub fn get(&self, name: &str) -> Option<&Arc<Artifact>> {
        self.files.get(name)
    }
}

/// The files of every profile in use, for one snapshot generation.
#[derive(Debug, Default)]
pub struct ArtifactSet {
    pub generation: u64,
    /// The snapshot the files were rendered from (gateways render from it too).
    pub snapshot: Option<Arc<Snapshot>>,
    pub by_profile: HashMap<String, Arc<ProfileArtifacts>>,
}

impl ArtifactSet {
    /// The files of a profile, if it has been rendered.
    pub fn profile(&self, profile: &RenderProfile) -> Option<&Arc<ProfileArtifacts>> {
        self.by_profile.get(&profile.key())
    }

    /// The files of a profile by its [`RenderProfile::key`].
    pub fn profile_by_key(&self, key: &str) -> Option<&Arc<ProfileArtifacts>> {
        self.by_profile.get(key)
    }

    /// The files this set serves, with the `.gz` of each plain file (compressed or still to
    /// be: [`Artifacts::compress_pending`] finds the one an earlier run wrote).
    fn paths(&self) -> HashSet<PathBuf> {
        self.by_profile
            .values()
            .flat_map(|p| p.files.values())
            .flat_map(|a| {
                let gz = needs_gzip(a).then(|| gz_path(a));
                std::iter::once(a.path.clone()).chain(gz)
            })
            .collect()
    }

    /// Distinct plain files still without their gzip representation.
    fn pending_gzip(&self) -> BTreeMap<PathBuf, Arc<Artifact>> {
        self.by_profile
            .values()
            .flat_map(|p| p.files.values())
            .filter(|a| needs_gzip(a) && a.gzip.is_none())
            .map(|a| (a.path.clone(), a.clone()))
            .collect()
    }

    /// Number of distinct rendered files (partners with equal settings share them).
    pub fn file_count(&self) -> usize {
        self.by_profile.values().map(|p| p.files.len()).sum()
    }
}

/// The artifact store: renders sets and publishes the current one.
pub struct Artifacts {
    dir: PathBuf,
    timezone: jiff::tz::TimeZone,
    current: ArcSwap<ArtifactSet>,
    /// The generation of the set being served, for requests that wait for a newer one.
    served: tokio::sync::watch::Sender<u64>,
    /// Serializes builds; serving never waits on it.
    build_lock: parking_lot::Mutex<()>,
    /// Serializes swaps of `current` (held only while a set is assembled from the last one).
    swap_lock: parking_lot::Mutex<()>,
    pub gateways: GatewayCache,
    /// light.xml of every profile, kept current shard by shard.
    pub light: LightBuilder,
    /// Since when each file in its grace has been listed by no served set.
    unlisted: parking_lot::Mutex<HashMap<PathBuf, Instant>>,
    /// Set when the server stops: compression still running gives up at its next block.
    stopping: std::sync::atomic::AtomicBool,
}

impl Artifacts {
    pub fn new(dir: &Path, timezone: jiff::tz::TimeZone) -> Result<Artifacts, ArtifactError> {
        std::fs::create_dir_all(dir).map_err(|e| ArtifactError::io(dir, e))?;
        Ok(Artifacts {
            dir: dir.to_path_buf(),
            timezone: timezone.clone(),
            current: ArcSwap::from_pointee(ArtifactSet::default()),
            served: tokio::sync::watch::Sender::new(0),
            build_lock: parking_lot::Mutex::new(()),
            swap_lock: parking_lot::Mutex::new(()),
            gateways: GatewayCache::default(),
            light: LightBuilder::new(dir, timezone.clone()),
            unlisted: parking_lot::Mutex::default(),
            stopping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Stop compressing: a shutdown must not wait for the gzip form of a multi-gigabyte
    /// file. Files not yet compressed are compressed by the next start.
    pub fn stop_compressing(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The set being served.
    pub fn current(&self) -> Arc<ArtifactSet> {
        self.current.load_full()
    }

    /// The generation of the set being served, marked changed at every swap (a window cut
    /// swaps in new files under the same generation).
    pub fn served(&self) -> tokio::sync::watch::Receiver<u64> {
        self.served.subscribe()
    }

    /// Serve `set`. Called with `swap_lock` held.
    fn swap_in(&self, set: &Arc<ArtifactSet>) {
        self.current.store(set.clone());
        self.gateways.clear();
        self.served.send_replace(set.generation);
    }

    /// Render (or find on disk) every file of `profiles` for `snapshot`, publish the set, and
    /// collect the files no served set lists (see [`RETIRE_GRACE`]). Blocking: call it from
    /// a blocking thread. full.xml is rendered from `snapshot` (see [`Artifacts::publish_with`]).
    pub fn publish(
        &self,
        snapshot: &Arc<Snapshot>,
        profiles: &[RenderProfile],
    ) -> Result<Arc<ArtifactSet>, ArtifactError> {
        self.publish_with(snapshot, profiles, &BTreeMap::new())
    }

    /// [`Artifacts::publish`], serving each IOF profile's full.xml and change files as the
    /// changes stage lists them (by full key: a base, not re-rendered per generation) where
    /// it has a listing whose files are intact.
    pub fn publish_with(
        &self,
        snapshot: &Arc<Snapshot>,
        profiles: &[RenderProfile],
        full: &BTreeMap<String, Listing>,
    ) -> Result<Arc<ArtifactSet>, ArtifactError> {
        self.publish_identity(snapshot, profiles, full)?;
        self.compress_pending()
    }

    /// [`Artifacts::publish_with`] without waiting for the `Content-Encoding: gzip` forms of
    /// plain files: those are served as identity (still `Vary: Accept-Encoding`) until
    /// [`Artifacts::compress_pending`] adds them. A `.xml.gz` file a profile with the `xml.gz`
    /// file type lists is that profile's own file, not a second form: it is written here.
    pub fn publish_identity(
        &self,
        snapshot: &Arc<Snapshot>,
        profiles: &[RenderProfile],
        full: &BTreeMap<String, Listing>,
    ) -> Result<Arc<ArtifactSet>, ArtifactError> {
        let _guard = self.build_lock.lock();
        let previous = self.current.load_full();
        let mut set = ArtifactSet {
            generation: snapshot.generation(),
            snapshot: Some(snapshot.clone()),
            by_profile: HashMap::new(),
        };
        let mut shared: HashMap<PathBuf, Arc<Artifact>> = previous
            .by_profile
            .values()
            .flat_map(|p| p.files.values())
            .filter(|a| a.pieces.is_none())
            .map(|a| (a.path.clone(), a.clone()))
            .collect();
        for profile in profiles {
            let key = profile.key();
            if set.by_profile.contains_key(&key) {
                continue;
            }
            let listed = full.get(&profile.full_key());
            let files = self.render_profile(snapshot, profile, listed, &mut shared)?;
            set.by_profile.insert(
                key,
                Arc::new(ProfileArtifacts {
                    profile: profile.clone(),
                    files,
                }),
            );
        }
        let swap = self.swap_lock.lock();
        // light.xml may have moved on (publish_light) while the rest was rendering: keep the
        // newest light of every profile, and the newest snapshot for gateways.
        let latest = self.current.load_full();
        if latest.generation > set.generation {
            for (key, files) in set.by_profile.iter_mut() {
                let Some(now) = latest.by_profile.get(key) else {
                    continue;
                };
                let mut merged = ProfileArtifacts {
                    profile: files.profile.clone(),
                    files: files.files.clone(),
                };
                for name in ["light.xml", "light.xml.gz"] {
                    if let Some(a) = now.files.get(name) {
                        merged.files.insert(name.to_string(), a.clone());
                    }
                }
                *files = Arc::new(merged);
            }
        }
        if latest.generation > set.generation {
            set.generation = latest.generation;
            set.snapshot = latest.snapshot.clone();
        }
        let set = Arc::new(set);
        let keep: HashSet<PathBuf> = set.paths().into_iter().chain(previous.paths()).collect();
        self.swap_in(&set);
        drop(swap);
        let keys: Vec<String> = set
            .by_profile
            .values()
            .map(|p| p.profile.light_key())
            .collect();
        self.light.retain(&keys);
        self.light.sweep_unused(&keys);
        self.collect_garbage(&keep);
        Ok(set)
    }

    /// Compress every plain file of the current set still without its gzip form (on every
    /// core at a lower priority, largest first; a `.gz` an earlier run wrote is taken from
    /// its sidecar) and
    /// publish the set with them attached. Blocking; a failure leaves identity serving.
    pub fn compress_pending(&self) -> Result<Arc<ArtifactSet>, ArtifactError> {
        deflate::in_background(|| self.compress_pending_here())
    }

    fn compress_pending_here(&self) -> Result<Arc<ArtifactSet>, ArtifactError> {
        let _guard = self.build_lock.lock();
        // light.xml first: smaller, and what most partners poll.
        self.attach_light_gzip(self.light.deflate_pending(&|| self.stopping())?);
        let plain: Vec<Arc<Artifact>> = self.current.load().pending_gzip().into_values().collect();
        if plain.is_empty() {
            return Ok(self.current());
        }
        let compressed: HashMap<PathBuf, (Arc<Artifact>, Arc<Artifact>)> = plain
            .iter()
            .zip(file::gzip_all(&plain, &|| self.stopping())?)
            .map(|(a, gz)| (a.path.clone(), (Arc::new(a.with_gzip(&gz)), Arc::new(gz))))
            .collect();
        // light.xml may have moved on meanwhile: attach to the newest set.
        Ok(self.swap_edited(|p, files| {
            for a in p.files.values() {
                if let Some((with_gzip, gz)) = compressed.get(&a.path).filter(|_| a.gzip.is_none())
                {
                    files.insert(a.name.clone(), with_gzip.clone());
                    if p.profile.gzip {
                        files.entry(gz.name.clone()).or_insert_with(|| gz.clone());
                    }
                }
            }
        }))
    }

    /// Swap in the newest set with each profile's files as `edit` leaves a copy of them (it
    /// is given the profile's files as they are), under the swap lock (so nothing published
    /// meanwhile is lost): for additions that do not wait for a new generation (gzip forms).
    fn swap_edited(
        &self,
        edit: impl Fn(&ProfileArtifacts, &mut HashMap<String, Arc<Artifact>>),
    ) -> Arc<ArtifactSet> {
        let _swap = self.swap_lock.lock();
        let latest = self.current.load_full();
        let by_profile = latest
            .by_profile
            .iter()
            .map(|(key, p)| {
                let mut files = p.files.clone();
                edit(p, &mut files);
                let files = ProfileArtifacts {
                    profile: p.profile.clone(),
                    files,
                };
                (key.clone(), Arc::new(files))
            })
            .collect();
        let set = Arc::new(ArtifactSet {
            generation: latest.generation,
            snapshot: latest.snapshot.clone(),
            by_profile,
        });
        self.swap_in(&set);
        set
    }

    /// Put the light.xml files whose fragments were deflated (with their gzip form, and
    /// light.xml.gz for profiles with that file type) in the served set, where it still
    /// serves the light.xml they replace (the light publisher may have moved on: its newer
    /// light.xml has them already, or gets them at its next build).
    fn attach_light_gzip(&self, deflated: Vec<light::Deflated>) {
        if deflated.is_empty() {
            return;
        }
        self.swap_edited(|p, files| {
            let light_key = p.profile.light_key();
            let found = deflated.iter().find(|d| {
                d.key == light_key
                    && files
                        .get("light.xml")
                        .is_some_and(|a| Arc::ptr_eq(a, &d.replaces))
            });
            if let Some(d) = found {
                files.insert(d.plain.name.clone(), d.plain.clone());
                if p.profile.gzip {
                    files.insert(d.gz.name.clone(), d.gz.clone());
                }
            }
        });
    }

    /// Map every light.xml fragment of the served set not mapped yet: those adopted at
    /// start-up are mapped at first use, and this does it off the request path. Blocking.
    pub fn map_fragments(&self) {
        let set = self.current();
        let light = set
            .by_profile
            .values()
            .flat_map(|p| p.files.values())
            .flat_map(|a| std::iter::once(a).chain(a.gzip.as_ref()));
        for piece in light
            .filter_map(|a| a.pieces.as_ref())
            .flat_map(|p| p.iter())
        {
            if let light::Piece::File(f) = piece {
                f.mapped();
            }
        }
    }

    /// Number of plain files of the current set still without their gzip form.
    pub fn gzip_pending(&self) -> usize {
        self.current.load().pending_gzip().len()
    }

    /// Publish only light.xml (and light.xml.gz) of `snapshot` for every profile already in
    /// the current set, keeping its other files: cheap (only changed shards are rendered),
    /// so light.xml follows every acknowledged update within a second whatever the rest
    /// costs. Profiles not yet rendered wait for [`Artifacts::publish`]. Blocking.
    pub fn publish_light(
        &self,
        snapshot: &Arc<Snapshot>,
    ) -> Result<Arc<ArtifactSet>, ArtifactError> {
        let current = self.current.load_full();
        if current.generation >= snapshot.generation() {
            return Ok(current);
        }
        let mut built = HashMap::new();
        for (key, files) in &current.by_profile {
            if files.profile.format == Format::Iof30 {
                built.insert(key.clone(), self.light.build(snapshot, &files.profile)?);
            }
        }
        let _swap = self.swap_lock.lock();
        let latest = self.current.load_full();
        if latest.generation >= snapshot.generation() {
            return Ok(latest);
        }
        let mut by_profile = HashMap::new();
        for (key, files) in &latest.by_profile {
            let mut files = ProfileArtifacts {
                profile: files.profile.clone(),
                files: files.files.clone(),
            };
            if let Some((plain, gz)) = built.remove(key) {
                files.files.insert(plain.name.clone(), plain);
                if let Some(gz) = gz {
                    files.files.insert(gz.name.clone(), gz);
                }
            }
            by_profile.insert(key.clone(), Arc::new(files));
        }
        let set = Arc::new(ArtifactSet {
            generation: snapshot.generation(),
            snapshot: Some(snapshot.clone()),
            by_profile,
        });
        self.swap_in(&set);
        Ok(set)
    }

    /// Every file of `profile`. `shared` holds the files already at hand, by path — the
    /// previous set's and those of the profiles before this one in the set being built, each
    /// plain file with its gzip representation — and takes this profile's: a file several
    /// profiles show (their file keys agree) is rendered and compressed once.
    fn render_profile(
        &self,
        snapshot: &Snapshot,
        profile: &RenderProfile,
        full: Option<&Listing>,
        shared: &mut HashMap<PathBuf, Arc<Artifact>>,
    ) -> Result<HashMap<String, Arc<Artifact>>, ArtifactError> {
        // Each family of files lives under the key of the settings its bytes depend on.
        let full_dir = self.dir.join(profile.full_key());
        let light_dir = self.dir.join(profile.light_key());
        let reference_dir = self.dir.join(profile.reference_key());
        let published = snapshot.published();
        let generated = published.to_zoned(self.timezone.clone()).datetime();
        let modified = SystemTime::from(published);
        let expires = generated
            .checked_add(jiff::Span::new().days(1))
            .unwrap_or(generated);
        let meta = OfferMeta { generated, expires };
        let dicts = DictIndex::new(snapshot.dicts());
        let generation = snapshot.generation();
        let stem = format!("g{generation}");
        // A file at hand (with its gzip representation when it has been compressed).
        let at_hand =
            |shared: &HashMap<PathBuf, Arc<Artifact>>, path: &Path| shared.get(path).cloned();
        let mut files: Vec<Arc<Artifact>> = Vec::new();
        let mut build = |dir: &Path,
                         name: &str,
                         kind: &str,
                         stem: &str,
                         render: &dyn Fn(&mut file::Sink) -> std::io::Result<()>|
         -> Result<(), ArtifactError> {
            if let Some(same) = at_hand(shared, &file::path_of(dir, stem, name)) {
                files.push(same);
                return Ok(());
            }
            std::fs::create_dir_all(dir).map_err(|e| ArtifactError::io(dir, e))?;
            let built = file::build(dir, name, kind, stem, generated, modified, render)?;
            files.push(Arc::new(built));
            Ok(())
        };
        let mut light_files: Vec<Arc<Artifact>> = Vec::new();
        // The base full.xml and change files the changes stage lists (IOF only).
        let given_full: Option<Vec<Arc<Artifact>>> = full
            .filter(|_| profile.format == Format::Iof30)
            .and_then(|l| {
                let files = self.listed_files(l, shared);
                if files.is_none() {
                    tracing::warn!(profile = %l.key, "a listed base or change file is missing; full.xml is rendered from the snapshot");
                }
                files
            })
            .map(|f| std::iter::once(f.base).chain(f.changes).collect());
        match profile.format {
            Format::Iof30 => {
                if given_full.is_none() {
                    build(&full_dir, "full.xml", "full", &stem, &|w| {
                        render::full(w, profile, &dicts, &meta, snapshot.products())
                    })?;
                }
                // light.xml: incremental, shard by shard (see `light`).
                let (plain, gz) = self.light.build(snapshot, profile)?;
                light_files.push(plain);
                light_files.extend(gz);
                // Reference files change only with the dictionaries: key them by content so
                // their hash and `changed` stay put across catalog generations.
                let dict_id = hex::encode(&snapshot.dicts_content_id()[..8]);
                let reference_meta = ReferenceMeta { generated, expires };
                let mut dict_stem = format!("d{dict_id}");
                // Rules that narrow the offer narrow these files to what its products use:
                // keyed by that set too, so they change only when it does.
                let narrowed = match profile.narrows_references() {
                    false => None,
                    true => {
                        let used = Used::of(profile, &dicts, snapshot.products());
                        dict_stem = format!("d{dict_id}u{}", used.key());
                        let owned = used
                            .narrow(snapshot.dicts())
                            .map_err(ArtifactError::Render)?;
                        Some(render::narrowed::archive(&owned).map_err(ArtifactError::Render)?)
                    }
                };
                let reference_dicts = match &narrowed {
                    Some(bytes) => {
                        render::narrowed::access(bytes).map_err(ArtifactError::Render)?
                    }
                    None => snapshot.dicts(),
                };
                for kind in ReferenceKind::ALL {
                    let name = format!("{}.xml", kind.name());
                    build(&reference_dir, &name, kind.name(), &dict_stem, &|w| {
                        render::write_reference(
                            w,
                            kind,
                            reference_dicts,
                            &profile.languages,
                            &reference_meta,
                        )
                        .map_err(std::io::Error::other)
                    })?;
                }
            }
            Format::Csv => {
                build(&full_dir, "full.csv", "full", &stem, &|w| {
                    render::write_full_csv(w, profile, snapshot.dicts(), snapshot.products())
                        .map_err(std::io::Error::other)
                })?;
                build(&light_dir, "light.csv", "light", &stem, &|w| {
                    render::write_light_csv(w, profile, snapshot.dicts(), snapshot.products())
                        .map_err(std::io::Error::other)
                })?;
            }
        }
        // The changes stage's files are compressed here too (once: later publishes find
        // them at hand, or their `.gz` on disk).
        for a in given_full.into_iter().flatten() {
            files.push(at_hand(shared, &a.path).unwrap_or(a));
        }
        // Every file is compressed once: its gzip representation for `Accept-Encoding: gzip`
        // follows in `compress_pending`; a profile with the `xml.gz` file type lists the same
        // bytes as `….xml.gz`, its own files, so those are compressed now.
        if profile.gzip {
            let plain: Vec<Arc<Artifact>> = files
                .iter()
                .map(|a| at_hand(shared, &a.path).unwrap_or_else(|| a.clone()))
                .filter(|a| a.gzip.is_none())
                .collect();
            for (artifact, gz) in plain
                .iter()
                .zip(file::gzip_all(&plain, &|| self.stopping())?)
            {
                let with_gzip = Arc::new(artifact.with_gzip(&gz));
                shared.insert(gz.path.clone(), Arc::new(gz));
                shared.insert(with_gzip.path.clone(), with_gzip);
            }
        }
        let mut out = HashMap::new();
        for a in files {
            let a = at_hand(shared, &a.path).unwrap_or(a);
            shared.insert(a.path.clone(), a.clone());
            if profile.gzip {
                let gz = match shared.get(&gz_path(&a)) {
                    Some(gz) => gz.clone(),
                    // Compressed for a profile without the `xml.gz` file type: the `.gz` is
                    // on disk, read back rather than compressed again.
                    None => Arc::new(file::gzip(&a, &|| self.stopping())?),
                };
                shared.insert(gz.path.clone(), gz.clone());
                out.insert(gz.name.clone(), gz);
            }
            out.insert(a.name.clone(), a);
        }
        for a in light_files {
            out.insert(a.name.clone(), a);
        }
        Ok(out)
    }

    /// The one retention rule: a rendered file may go when no served set lists it (`keep`:
    /// the new set and the one before, which requests may still have resolved) and its
    /// grace has passed — [`RETIRE_GRACE`] for bases and change files, none for the rest.
    /// Unlinking a file a download still has open is safe: the open descriptor keeps the
    /// data until the download ends.
    fn collect_garbage(&self, keep: &HashSet<PathBuf>) {
        let now = Instant::now();
        let mut unlisted = self.unlisted.lock();
        let mut seen = HashSet::new();
        let mut dirs: Vec<(PathBuf, Duration)> = Vec::new();
        for d in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = d.file_name();
            if name == light::LIGHT_DIR {
                continue; // light fragments are collected by the light builder
            }
            if name == full::FULL_DIR {
                let keys = std::fs::read_dir(d.path()).into_iter().flatten().flatten();
                dirs.extend(keys.map(|k| (k.path(), RETIRE_GRACE)));
            } else {
                dirs.push((d.path(), Duration::ZERO));
            }
        }
        for (dir, grace) in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut left = 0usize;
            for entry in entries.flatten() {
                let p = entry.path();
                let data_file = file::data_path_of(&p);
                if keep.contains(&data_file) {
                    left += 1;
                    continue;
                }
                if !grace.is_zero() {
                    seen.insert(p.clone());
                    let since = *unlisted.entry(p.clone()).or_insert(now);
                    if now.duration_since(since) < grace {
                        left += 1;
                        continue;
                    }
                }
                if let Err(e) = std::fs::remove_file(&p) {
                    tracing::warn!(path = %p.display(), error = %e, "cannot remove an old artifact");
                }
            }
            if left == 0 {
                let _ = std::fs::remove_dir(&dir);
            }
        }
        // Files listed again, or gone, leave the grace list.
        unlisted.retain(|p, _| seen.contains(p));
    }
}

/// A plain rendered file, which gets a gzip form (light.xml's pieces have their own).
fn needs_gzip(a: &Artifact) -> bool {
    a.pieces.is_none() && a.content_encoding.is_none() && !a.name.ends_with(".gz")
}

/// Where the gzip form of `a` lives: beside it, as `….gz`.
fn gz_path(a: &Artifact) -> PathBuf {
    PathBuf::from(format!("{}.gz", a.path.display()))
}

/// Bytes of a small artifact, when it is held in memory.
pub fn memory_bytes(artifact: &Artifact) -> Option<&Bytes> {
    artifact.memory.as_ref()
}

pub(crate) fn keep_in_memory(len: u64) -> bool {
    len <= MEMORY_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ApplyMode, Store, StoreOptions};
    use rust_decimal::Decimal;

    /// A store holding the demo catalog, in `dir`.
    fn demo_store(dir: &Path) -> Store {
        let store = Store::open(&dir.join("store"), StoreOptions::default()).unwrap();
        store.apply(demo_records(), ApplyMode::Upsert).unwrap();
        store
    }

    fn demo_records() -> Vec<crate::catalog::Record> {
        let batch = crate::ingest::read_jsonl(
            "demo",
            &include_bytes!("../../fixtures/demo/catalog.jsonl")[..],
        )
        .unwrap();
        batch.records.into_iter().map(|l| l.record).collect()
    }

    /// An IOF profile of shop 1 in Polish and PLN.
    fn polish(gzip: bool) -> RenderProfile {
        RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip,
            languages: vec!["pol".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: Decimal::ZERO,
            wholesale: false,
            only_in_stock: false,
            rules: Default::default(),
        }
    }

    #[test]
    fn a_republish_shares_the_files_it_already_holds_and_renders_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store(dir.path());
        let artifacts =
            Artifacts::new(&dir.path().join("artifacts"), jiff::tz::TimeZone::UTC).unwrap();
        let profile = polish(true);
        let profiles = [profile.clone()];
        let first = artifacts.publish(&store.snapshot(), &profiles).unwrap();
        let first = first.profile(&profile).unwrap().clone();
        // Same snapshot again (a reload, a window cut): every file is the one already held.
        let again = artifacts.publish(&store.snapshot(), &profiles).unwrap();
        let again = again.profile(&profile).unwrap();
        for (name, a) in &first.files {
            assert!(Arc::ptr_eq(a, &again.files[name]), "{name} shared");
        }
        // A catalog change: full.xml is new; reference files (same dictionaries) are shared
        // with their gzip representations and .gz files.
        let mut p = crate::catalog::Product::named(1, "pol", "Nowa nazwa");
        p.normalize().unwrap();
        store
            .apply(
                vec![crate::catalog::Record::Product(Box::new(p))],
                ApplyMode::Upsert,
            )
            .unwrap();
        let next = artifacts.publish(&store.snapshot(), &profiles).unwrap();
        let next = next.profile(&profile).unwrap();
        assert!(!Arc::ptr_eq(
            &first.files["full.xml"],
            &next.files["full.xml"]
        ));
        assert_ne!(first.files["full.xml"].etag, next.files["full.xml"].etag);
        for name in ["categories.xml", "categories.xml.gz", "units.xml"] {
            assert!(
                Arc::ptr_eq(&first.files[name], &next.files[name]),
                "{name} shared"
            );
            assert!(first.files[name].gzip.is_some() || name.ends_with(".gz"));
        }
    }

    #[test]
    fn a_stopped_compression_leaves_identity_serving_and_no_partial_gz() {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store(dir.path());
        let profile = polish(false);
        let artifacts =
            Artifacts::new(&dir.path().join("artifacts"), jiff::tz::TimeZone::UTC).unwrap();
        let identity = artifacts
            .publish_identity(
                &store.snapshot(),
                std::slice::from_ref(&profile),
                &BTreeMap::new(),
            )
            .unwrap();
        artifacts.stop_compressing();
        let err = artifacts.compress_pending().unwrap_err();
        assert!(err.interrupted(), "{err}");
        let current = artifacts.current();
        let full = &current.profile(&profile).unwrap().files["full.xml"];
        assert!(full.gzip.is_none(), "identity keeps serving");
        assert_eq!(
            full.etag,
            identity.profile(&profile).unwrap().files["full.xml"].etag
        );
        let gz = std::fs::read_dir(full.path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".gz"))
            .count();
        assert_eq!(gz, 0, "no .gz file nor a temporary one is left");
    }

    #[test]
    fn identity_is_published_first_and_gzip_forms_follow_without_changing_a_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store(dir.path());
        let plain = polish(false);
        let gz = RenderProfile {
            gzip: true,
            languages: vec!["eng".into()],
            ..plain.clone()
        };
        let profiles = [plain.clone(), gz.clone()];
        let none = BTreeMap::new();
        let artifacts_dir = dir.path().join("artifacts");
        let artifacts = Artifacts::new(&artifacts_dir, jiff::tz::TimeZone::UTC).unwrap();
        let snapshot = store.snapshot();

        let identity = artifacts
            .publish_identity(&snapshot, &profiles, &none)
            .unwrap();
        let files = &identity.profile(&plain).unwrap().files;
        assert!(files["full.xml"].gzip.is_none(), "no gzip form yet");
        assert!(files["categories.xml"].gzip.is_none());
        assert!(
            !files.contains_key("full.xml.gz"),
            "a plain profile lists no .gz"
        );
        // light.xml's fragments are deflated with the other gzip forms (the start waits for
        // none of them).
        assert!(files["light.xml"].gzip.is_none(), "no gzip form yet");
        // An xml.gz profile's .gz files are its own files: there from the start.
        let gz_files = &identity.profile(&gz).unwrap().files;
        for name in ["full.xml.gz", "categories.xml.gz", "light.xml.gz"] {
            assert!(gz_files.contains_key(name), "{name}");
        }
        assert!(artifacts.gzip_pending() > 0);
        assert!(!Path::new(&format!("{}.gz", files["full.xml"].path.display())).exists());

        let compressed = artifacts.compress_pending().unwrap();
        assert_eq!(artifacts.gzip_pending(), 0);
        let after = &compressed.profile(&plain).unwrap().files;
        for (name, a) in files {
            assert_eq!(a.etag, after[name].etag, "{name}: same identity bytes");
        }
        let light = &after["light.xml"];
        let light_gz = light.gzip.as_ref().expect("light.xml's gzip form attached");
        let packed = light::read_pieces(light_gz.pieces.as_deref().unwrap()).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut out)
            .unwrap();
        assert_eq!(
            out,
            light::read_pieces(light.pieces.as_deref().unwrap()).unwrap()
        );
        let full = &after["full.xml"];
        let encoded = full.gzip.as_ref().expect("gzip form attached");
        assert_eq!(encoded.content_encoding, Some("gzip"));
        let mut unzipped = Vec::new();
        // One member (blocks compressed apart join into one stream): single-member decoders
        // read it all.
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&encoded.path).unwrap()),
            &mut unzipped,
        )
        .unwrap();
        assert_eq!(unzipped, std::fs::read(&full.path).unwrap());
        // Nothing left to do: the same set.
        assert!(Arc::ptr_eq(
            &compressed,
            &artifacts.compress_pending().unwrap()
        ));

        // A restart publishes identity again and finds the .gz files where it left them
        // (identity's garbage collection keeps them): same gzip ETags, nothing recompressed.
        drop(artifacts);
        let again = Artifacts::new(&artifacts_dir, jiff::tz::TimeZone::UTC).unwrap();
        let identity = again.publish_identity(&snapshot, &profiles, &none).unwrap();
        assert!(identity.profile(&plain).unwrap().files["full.xml"]
            .gzip
            .is_none());
        assert!(
            Path::new(&encoded.path).exists(),
            "kept for compress_pending"
        );
        let restarted = again.compress_pending().unwrap();
        let restarted = &restarted.profile(&plain).unwrap().files["full.xml"];
        assert_eq!(restarted.gzip.as_ref().unwrap().etag, encoded.etag);
    }
}
