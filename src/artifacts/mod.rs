//! Rendered bytes, ready to serve: one set of files per (snapshot generation, render profile).
//!
//! Each file is rendered once into the data directory (temp file, fsync, rename), with its
//! MD5 (for the gateway `hash`), a strong ETag (blake3) and its length computed while writing.
//! Partners with equal profiles share the same files. Reference files are keyed by the content
//! of the dictionaries, so they keep their bytes, hash and `changed` time while the
//! dictionaries do not change; full and light follow the catalog generation. Rendering is
//! deterministic (timestamps come from the snapshot), and files found on disk from an earlier
//! run are reused, so a restart serves the same bytes under the same ETags.

mod file;
mod gateway;
mod light;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::render::{
    self, DictIndex, Format, OfferMeta, ReferenceKind, ReferenceMeta, RenderProfile,
};
use crate::snapshot::Snapshot;

pub(crate) use file::{build as build_file, load as load_file, Sink};
pub use file::{verify, Artifact, ArtifactError, ArtifactsCheck};
pub use gateway::{GatewayCache, GatewayLinks};
pub use light::{FragmentFile, LightBuilder, Piece};

/// full.xml as the changes stage keeps it for an IOF profile: a base rebuilt on a schedule,
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

    fn paths(&self) -> HashSet<PathBuf> {
        self.by_profile
            .values()
            .flat_map(|p| p.files.values())
            .flat_map(|a| std::iter::once(&a.path).chain(a.gzip.iter().map(|g| &g.path)))
            .cloned()
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
    /// Serializes builds; serving never waits on it.
    build_lock: std::sync::Mutex<()>,
    /// Serializes swaps of `current` (held only while a set is assembled from the last one).
    swap_lock: std::sync::Mutex<()>,
    pub gateways: GatewayCache,
    /// light.xml of every profile, kept current shard by shard.
    pub light: LightBuilder,
}

impl Artifacts {
    pub fn new(dir: &Path, timezone: jiff::tz::TimeZone) -> Result<Artifacts, ArtifactError> {
        std::fs::create_dir_all(dir).map_err(|e| ArtifactError::io(dir, e))?;
        Ok(Artifacts {
            dir: dir.to_path_buf(),
            timezone: timezone.clone(),
            current: ArcSwap::from_pointee(ArtifactSet::default()),
            build_lock: std::sync::Mutex::new(()),
            swap_lock: std::sync::Mutex::new(()),
            gateways: GatewayCache::default(),
            light: LightBuilder::new(dir, timezone.clone()),
        })
    }

    /// The set being served.
    pub fn current(&self) -> Arc<ArtifactSet> {
        self.current.load_full()
    }

    /// Render (or find on disk) every file of `profiles` for `snapshot`, publish the set, and
    /// delete files that neither the new nor the previous set uses. Blocking: call it from a
    /// blocking thread. full.xml is rendered from `snapshot` (see [`Artifacts::publish_with`]).
    pub fn publish(
        &self,
        snapshot: &Arc<Snapshot>,
        profiles: &[RenderProfile],
    ) -> Result<Arc<ArtifactSet>, ArtifactError> {
        self.publish_with(snapshot, profiles, &|_| None)
    }

    /// [`Artifacts::publish`], taking each IOF profile's full.xml and change files from
    /// `full` (the changes stage's base, not re-rendered per generation) where it has them.
    /// `full` is consulted under the build lock, so the last publish lists the latest files.
    pub fn publish_with(
        &self,
        snapshot: &Arc<Snapshot>,
        profiles: &[RenderProfile],
        full: &dyn Fn(&RenderProfile) -> Option<FullFiles>,
    ) -> Result<Arc<ArtifactSet>, ArtifactError> {
        let _guard = self.build_lock.lock().unwrap_or_else(|p| p.into_inner());
        let previous = self.current.load_full();
        let mut set = ArtifactSet {
            generation: snapshot.generation(),
            snapshot: Some(snapshot.clone()),
            by_profile: HashMap::new(),
        };
        for profile in profiles {
            let key = profile.key();
            if set.by_profile.contains_key(&key) {
                continue;
            }
            let before = previous.by_profile.get(&key).map(|p| p.as_ref());
            let files = self.render_profile(snapshot, profile, full(profile), before)?;
            set.by_profile.insert(
                key,
                Arc::new(ProfileArtifacts {
                    profile: profile.clone(),
                    files,
                }),
            );
        }
        let swap = self.swap_lock.lock().unwrap_or_else(|p| p.into_inner());
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
        self.current.store(set.clone());
        self.gateways.clear();
        drop(swap);
        let keys: Vec<String> = set.by_profile.keys().cloned().collect();
        self.light.retain(&keys);
        self.collect_garbage(&keep);
        Ok(set)
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
        let _swap = self.swap_lock.lock().unwrap_or_else(|p| p.into_inner());
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
        self.current.store(set.clone());
        self.gateways.clear();
        Ok(set)
    }

    fn render_profile(
        &self,
        snapshot: &Snapshot,
        profile: &RenderProfile,
        full: Option<FullFiles>,
        before: Option<&ProfileArtifacts>,
    ) -> Result<HashMap<String, Arc<Artifact>>, ArtifactError> {
        let dir = self.dir.join(profile.key());
        // What the set being served already holds for the same data file (reference files
        // while the dictionaries stay, the base and change files, with their gzip
        // representations): shared as it is, neither read nor compressed again.
        let held = |name: &str, path: &Path| {
            before
                .and_then(|b| b.files.get(name))
                .filter(|a| a.path == path)
                .cloned()
        };
        std::fs::create_dir_all(&dir).map_err(|e| ArtifactError::io(&dir, e))?;
        let published = snapshot.published();
        let generated = published.to_zoned(self.timezone.clone()).datetime();
        let modified = SystemTime::from(published);
        let expires = generated
            .checked_add(jiff::Span::new().days(1))
            .unwrap_or(generated);
        let meta = OfferMeta { generated, expires };
        let dicts = DictIndex::new(snapshot.dicts());
        let generation = snapshot.generation();
        let mut files = HashMap::new();
        let mut light_files: Vec<Arc<Artifact>> = Vec::new();
        // The base full.xml and change files are kept by the changes stage (IOF only).
        let given_full: Option<Vec<Arc<Artifact>>> = full
            .filter(|_| profile.format == Format::Iof30)
            .map(|f| std::iter::once(f.base).chain(f.changes).collect());
        let mut add = |artifact: Arc<Artifact>| {
            files.insert(artifact.name.clone(), artifact);
        };
        match profile.format {
            Format::Iof30 => {
                let stem = format!("g{generation}");
                if given_full.is_none() {
                    add(Arc::new(file::build(
                        &dir,
                        "full.xml",
                        "full",
                        &stem,
                        generated,
                        modified,
                        |w: &mut file::Sink| {
                            render::full(w, profile, &dicts, &meta, snapshot.products())
                        },
                    )?));
                }
                // light.xml: incremental, shard by shard (see `light`).
                let (plain, gz) = self.light.build(snapshot, profile)?;
                light_files.push(plain);
                light_files.extend(gz);
                // Reference files change only with the dictionaries: key them by content so
                // their hash and `changed` stay put across catalog generations.
                let dict_id = hex::encode(&snapshot.dicts_content_id()[..8]);
                for kind in ReferenceKind::ALL {
                    let name = format!("{}.xml", kind.name());
                    let reference_meta = ReferenceMeta { generated, expires };
                    let stem = format!("d{dict_id}");
                    if let Some(same) = held(&name, &file::path_of(&dir, &stem, &name)) {
                        add(same);
                        continue;
                    }
                    add(Arc::new(file::build(
                        &dir,
                        &name,
                        kind.name(),
                        &stem,
                        generated,
                        modified,
                        |w: &mut file::Sink| {
                            render::write_reference(
                                w,
                                kind,
                                snapshot.dicts(),
                                &profile.languages,
                                &reference_meta,
                            )
                            .map_err(std::io::Error::other)
                        },
                    )?));
                }
            }
            Format::Csv => {
                let stem = format!("g{generation}");
                add(Arc::new(file::build(
                    &dir,
                    "full.csv",
                    "full",
                    &stem,
                    generated,
                    modified,
                    |w: &mut file::Sink| {
                        render::write_full_csv(w, profile, snapshot.dicts(), snapshot.products())
                            .map_err(std::io::Error::other)
                    },
                )?));
                add(Arc::new(file::build(
                    &dir,
                    "light.csv",
                    "light",
                    &stem,
                    generated,
                    modified,
                    |w: &mut file::Sink| {
                        render::write_light_csv(w, profile, snapshot.dicts(), snapshot.products())
                            .map_err(std::io::Error::other)
                    },
                )?));
            }
        }
        // The changes stage's files are compressed too (once: the `.gz` beside each is found
        // on disk by later publishes).
        for a in given_full.into_iter().flatten() {
            files.insert(a.name.clone(), a);
        }
        // Every file is compressed once: its gzip representation for `Accept-Encoding: gzip`,
        // and, for partners with the `xml.gz` file type, the same bytes as `….xml.gz`.
        let mut plain: Vec<Arc<Artifact>> = Vec::new();
        for artifact in files.values().cloned().collect::<Vec<_>>() {
            let same = held(&artifact.name, &artifact.path).filter(|a| a.gzip.is_some());
            let gz_file = format!("{}.gz", artifact.name);
            match (same, before.and_then(|b| b.files.get(&gz_file))) {
                (Some(same), _) if !profile.gzip => {
                    files.insert(same.name.clone(), same);
                }
                (Some(same), Some(gz)) => {
                    files.insert(same.name.clone(), same);
                    files.insert(gz_file, gz.clone());
                }
                _ => plain.push(artifact),
            }
        }
        for (artifact, gz) in plain.iter().zip(file::gzip_all(&plain)?) {
            files.insert(artifact.name.clone(), Arc::new(artifact.with_gzip(&gz)));
            if profile.gzip {
                files.insert(gz.name.clone(), Arc::new(gz));
            }
        }
        for a in light_files {
            files.insert(a.name.clone(), a);
        }
        Ok(files)
    }

    /// Delete rendered files that are not in `keep`. Unlinking a file a download still has
    /// open is safe: the open descriptor keeps the data until the download ends.
    fn collect_garbage(&self, keep: &HashSet<PathBuf>) {
        let Ok(profiles) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for profile_dir in profiles.flatten() {
            if profile_dir.file_name() == light::LIGHT_DIR {
                continue; // light fragments are collected by the light builder
            }
            let path = profile_dir.path();
            let Ok(entries) = std::fs::read_dir(&path) else {
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
                if let Err(e) = std::fs::remove_file(&p) {
                    tracing::warn!(path = %p.display(), error = %e, "cannot remove an old artifact");
                }
            }
            if left == 0 {
                let _ = std::fs::remove_dir(&path);
            }
        }
    }
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

    #[test]
    fn a_republish_shares_the_files_it_already_holds_and_renders_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
        let batch = crate::ingest::read_jsonl("demo", crate::app::DEMO_CATALOG.as_bytes()).unwrap();
        let records: Vec<_> = batch.records.into_iter().map(|l| l.record).collect();
        store.apply(records.clone(), ApplyMode::Upsert).unwrap();
        let artifacts =
            Artifacts::new(&dir.path().join("artifacts"), jiff::tz::TimeZone::UTC).unwrap();
        let profile = RenderProfile {
            shop: 1,
            format: Format::Iof30,
            gzip: true,
            languages: vec!["pol".into()],
            currency: "PLN".into(),
            rate: Decimal::ONE,
            discount_percent: Decimal::ZERO,
            wholesale: false,
            only_in_stock: false,
        };
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
}
