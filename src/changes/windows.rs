//! Windows and bases as files: cutting the open window into change files, building bases
//! for new profiles and on schedule, retiring what is no longer listed, and finding the
//! files again after a restart. (The one part of the stage that renders.)

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use jiff::civil::DateTime;
use jiff::Timestamp;

use super::files;
use super::net::{self, Entry};
use super::state::{BaseState, ChangeState, ProfileState};
use super::{
    change_name, checkpoint, from_ms, io_err, ms, schedule, stem_of, Changes, ChangesError, Inner,
    RETIRE_GRACE, SEGMENT_BYTES,
};
use crate::artifacts::{self, Artifact};
use crate::catalog::{Format, ProductId, RenderProfile};
use crate::render::{self, DictIndex, OfferMeta};

/// A base or change file: its persisted description and the servable artifact.
#[derive(Debug, Clone)]
pub(super) struct Profile {
    pub(super) state: ProfileState,
    pub(super) base: Arc<Artifact>,
    /// Aligned with `state.changes` (oldest first).
    pub(super) changes: Vec<Arc<Artifact>>,
}

/// What a cut or base rebuild may undo if it cannot be made durable.
pub(super) struct SavePoint {
    clock: Option<DateTime>,
    window_offset: u64,
    window_started: Timestamp,
    next_seq: u64,
    profiles: BTreeMap<String, Profile>,
    retired: usize,
}

impl Changes {
    pub(super) fn purge_retired(&self, inner: &mut Inner, now: Timestamp) {
        let grace = jiff::SignedDuration::try_from(RETIRE_GRACE).unwrap_or_default();
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.retired)
            .into_iter()
            .partition(|(when, _, _)| when.checked_add(grace).is_ok_and(|t| t <= now));
        inner.retired = keep;
        for (_, dir, stem) in due {
            remove_stem(&dir, &stem);
        }
    }

    pub(super) fn save_point(inner: &Inner) -> SavePoint {
        SavePoint {
            clock: inner.clock,
            window_offset: inner.window_offset,
            window_started: inner.window_started,
            next_seq: inner.next_seq,
            profiles: inner.profiles.clone(),
            retired: inner.retired.len(),
        }
    }

    /// Make the new state durable, or put the old one back and delete `written`.
    pub(super) fn commit(
        &self,
        inner: &mut Inner,
        saved: SavePoint,
        written: &[(PathBuf, String)],
    ) -> Result<(), ChangesError> {
        match checkpoint(&self.dir, inner) {
            Ok(()) => Ok(()),
            Err(e) => {
                inner.clock = saved.clock;
                inner.window_offset = saved.window_offset;
                inner.window_started = saved.window_started;
                inner.next_seq = saved.next_seq;
                inner.profiles = saved.profiles;
                inner.retired.truncate(saved.retired);
                for (dir, stem) in written {
                    remove_stem(dir, stem);
                }
                Err(e)
            }
        }
    }

    pub(super) fn cut_locked(
        &self,
        inner: &mut Inner,
        profiles: &[RenderProfile],
        now: Timestamp,
    ) -> Result<usize, ChangesError> {
        if inner.last.is_none() {
            // Nothing observed yet: the window cannot be rendered, keep it open.
            return Ok(0);
        }
        let saved = Self::save_point(inner);
        let mut written = Vec::new();
        let result = self.cut_files(inner, profiles, now, &mut written);
        let count = match result {
            Ok(n) => n,
            Err(e) => {
                for (dir, stem) in &written {
                    remove_stem(dir, stem);
                }
                inner.clock = saved.clock;
                inner.next_seq = saved.next_seq;
                inner.profiles = saved.profiles;
                return Err(e);
            }
        };
        inner.window_offset = inner.log.end();
        inner.window_started = now;
        self.commit(inner, saved, &written)?;
        // Older segments are history the change files now carry.
        if inner.log.tail_len() > SEGMENT_BYTES {
            if let Err(e) = inner.log.rotate() {
                tracing::warn!(error = %e, "cannot start a new change-log segment");
            }
        }
        inner.log.drop_before(inner.window_offset);
        if count > 0 {
            tracing::info!(files = count, "change window cut");
        }
        Ok(count)
    }

    /// Write the open window's change files; records what it wrote in `written`.
    pub(super) fn cut_files(
        &self,
        inner: &mut Inner,
        profiles: &[RenderProfile],
        now: Timestamp,
        written: &mut Vec<(PathBuf, String)>,
    ) -> Result<usize, ChangesError> {
        let frames = inner.log.read_from(inner.window_offset)?;
        let Some(last_change) = frames
            .iter()
            .rev()
            .find(|l| !l.frame.records.is_empty())
            .map(|l| l.frame.time)
        else {
            return Ok(0);
        };
        let Some(snapshot) = inner.last.clone() else {
            return Ok(0);
        };
        let dicts = DictIndex::new(snapshot.dicts());
        let window_net = net::net_changes(frames.iter().map(|l| &l.frame));
        let mut time = None;
        let mut count = 0;
        let keys: Vec<String> = iof_profiles(profiles).map(|p| p.full_key()).collect();
        for key in keys {
            let Some(profile_files) = inner.profiles.get(&key) else {
                continue;
            };
            let profile = profile_files.state.profile.clone();
            let from = profile_files.state.base.offset;
            // A base built within the window already shows its earlier part.
            let local;
            let nets = if from <= inner.window_offset {
                &window_net
            } else {
                local =
                    net::net_changes(frames.iter().filter(|l| l.offset >= from).map(|l| &l.frame));
                &local
            };
            let entries: Vec<(ProductId, Entry)> = nets
                .iter()
                .filter_map(|(id, n)| n.entry(&profile).map(|e| (*id, e)))
                .collect();
            if entries.is_empty() {
                continue;
            }
            let t = *time.get_or_insert_with(|| {
                let t = schedule::issue(last_change, &self.opts.timezone, inner.clock);
                inner.clock = Some(t);
                t
            });
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let dir = self.files_dir().join(&key);
            std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
            let stem = format!("c{seq}");
            written.push((dir.clone(), stem.clone()));
            let meta = offer_meta(t);
            let artifact = artifacts::build_file(
                &dir,
                &change_name(t),
                "full_change",
                &stem,
                t,
                SystemTime::from(now),
                |w: &mut artifacts::Sink| {
                    files::write_change_file(w, &profile, &dicts, &snapshot, &entries, &meta)
                },
            )?;
            let p = inner
                .profiles
                .get_mut(&key)
                .ok_or_else(|| ChangesError::Options("profile vanished".into()))?;
            p.state.changes.push(ChangeState {
                seq,
                time: t.to_string(),
                created_ms: ms(now),
            });
            p.changes.push(Arc::new(artifact));
            count += 1;
        }
        Ok(count)
    }

    /// Bases for new profiles and on schedule; profiles no longer in use and change files
    /// past retention retired.
    pub(super) fn bases_locked(
        &self,
        inner: &mut Inner,
        profiles: &[RenderProfile],
        now: Timestamp,
    ) -> Result<bool, ChangesError> {
        let wanted: BTreeMap<String, &RenderProfile> =
            iof_profiles(profiles).map(|p| (p.full_key(), p)).collect();
        let rebuild_due = schedule::last_rebuild(now, self.opts.rebuild_at, &self.opts.timezone);
        let retention = jiff::SignedDuration::try_from(self.opts.retention).unwrap_or_default();
        let expired_before = now.checked_sub(retention).unwrap_or(Timestamp::MIN);
        let saved = Self::save_point(inner);
        let mut changed = false;
        let files_dir = self.files_dir();

        let gone: Vec<String> = inner
            .profiles
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(p) = inner.profiles.remove(&key) {
                retire_profile(&mut inner.retired, now, &files_dir.join(&key), &p.state);
                changed = true;
            }
        }
        for p in inner.profiles.values_mut() {
            let keep = p
                .state
                .changes
                .iter()
                .position(|c| from_ms(c.created_ms) >= expired_before)
                .unwrap_or(p.state.changes.len());
            if keep > 0 {
                let dir = files_dir.join(&p.state.key);
                for c in p.state.changes.drain(..keep) {
                    inner
                        .retired
                        .push((now, dir.clone(), format!("c{}", c.seq)));
                }
                p.changes.drain(..keep);
                changed = true;
            }
        }

        let mut written = Vec::new();
        // Bases built together share one time (and profiles that differ only in how files
        // are delivered, xml or xml.gz, or in light-only settings share one base).
        let mut time = None;
        for (key, profile) in &wanted {
            let due = match inner.profiles.get(key) {
                None => true,
                Some(p) => rebuild_due.is_some_and(|t| from_ms(p.state.base.built_ms) < t),
            };
            if !due {
                continue;
            }
            match self.build_base(inner, key, profile, now, &mut time, &mut written) {
                Ok(()) => changed = true,
                Err(e) => {
                    for (dir, stem) in &written {
                        remove_stem(dir, stem);
                    }
                    let retired = saved.retired;
                    inner.clock = saved.clock;
                    inner.next_seq = saved.next_seq;
                    inner.profiles = saved.profiles;
                    inner.retired.truncate(retired);
                    return Err(e);
                }
            }
        }
        if changed {
            self.commit(inner, saved, &written)?;
        }
        Ok(changed)
    }

    pub(super) fn build_base(
        &self,
        inner: &mut Inner,
        key: &str,
        profile: &RenderProfile,
        now: Timestamp,
        time: &mut Option<DateTime>,
        written: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), ChangesError> {
        let Some(snapshot) = inner.last.clone() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let t = *time.get_or_insert_with(|| {
            let t = schedule::issue(now, &self.opts.timezone, inner.clock);
            inner.clock = Some(t);
            t
        });
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let dir = self.files_dir().join(key);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let stem = format!("b{seq}");
        written.push((dir.clone(), stem.clone()));
        let dicts = DictIndex::new(snapshot.dicts());
        let meta = offer_meta(t);
        let artifact = artifacts::build_file(
            &dir,
            "full.xml",
            "full",
            &stem,
            t,
            SystemTime::from(now),
            |w: &mut artifacts::Sink| render::full(w, profile, &dicts, &meta, snapshot.products()),
        )?;
        let base = BaseState {
            seq,
            time: t.to_string(),
            built_ms: ms(now),
            offset: inner.log.end(),
            generation: snapshot.generation(),
        };
        match inner.profiles.get_mut(key) {
            Some(p) => {
                inner
                    .retired
                    .push((now, dir, format!("b{}", p.state.base.seq)));
                p.state.base = base;
                p.state.profile = profile.clone();
                p.base = Arc::new(artifact);
            }
            None => {
                inner.profiles.insert(
                    key.to_string(),
                    Profile {
                        state: ProfileState {
                            key: key.to_string(),
                            profile: profile.clone(),
                            base,
                            changes: Vec::new(),
                        },
                        base: Arc::new(artifact),
                        changes: Vec::new(),
                    },
                );
            }
        }
        tracing::info!(
            profile = key,
            generation = snapshot.generation(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "base full.xml built"
        );
        Ok(())
    }
}

pub(super) fn iof_profiles(profiles: &[RenderProfile]) -> impl Iterator<Item = &RenderProfile> {
    let mut seen = HashSet::new();
    profiles
        .iter()
        .filter(|p| p.format == Format::Iof30)
        .filter(move |p| seen.insert(p.full_key()))
}

pub(super) fn offer_meta(t: DateTime) -> OfferMeta {
    OfferMeta {
        generated: t,
        expires: t.checked_add(jiff::Span::new().days(1)).unwrap_or(t),
    }
}

pub(super) fn retire_profile(
    retired: &mut Vec<(Timestamp, PathBuf, String)>,
    now: Timestamp,
    dir: &Path,
    state: &ProfileState,
) {
    retired.push((now, dir.to_path_buf(), format!("b{}", state.base.seq)));
    for c in &state.changes {
        retired.push((now, dir.to_path_buf(), format!("c{}", c.seq)));
    }
}

/// Delete every file of `stem` in `dir` (the data file, its sidecar, its gzip variant), and
/// the directory once empty.
pub(super) fn remove_stem(dir: &Path, stem: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| stem_of(n) == stem) {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an old change file");
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Remove files of the files directory that no profile state names (left by a crash).
pub(super) fn collect_files(files_dir: &Path, profiles: &BTreeMap<String, Profile>) {
    let Ok(dirs) = std::fs::read_dir(files_dir) else {
        return;
    };
    for d in dirs.flatten() {
        let key = d.file_name().to_string_lossy().into_owned();
        let Some(p) = profiles.get(&key) else {
            let _ = std::fs::remove_dir_all(d.path());
            continue;
        };
        let stems: HashSet<String> = std::iter::once(format!("b{}", p.state.base.seq))
            .chain(p.state.changes.iter().map(|c| format!("c{}", c.seq)))
            .collect();
        let Ok(entries) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_str().is_some_and(|n| stems.contains(stem_of(n))) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The artifacts of a persisted profile, if every file is intact and its base is reachable.
pub(super) fn load_profile(files_dir: &Path, ps: &ProfileState, log_end: u64) -> Option<Profile> {
    if ps.base.offset > log_end || ps.key != ps.profile.full_key() {
        return None;
    }
    let dir = files_dir.join(&ps.key);
    let base = artifacts::load_file(
        &dir.join(format!("b{}-full.xml", ps.base.seq)),
        "full.xml",
        "full",
    )?;
    let mut changes = Vec::with_capacity(ps.changes.len());
    for c in &ps.changes {
        let t: DateTime = c.time.parse().ok()?;
        let name = change_name(t);
        let a = artifacts::load_file(
            &dir.join(format!("c{}-{name}", c.seq)),
            &name,
            "full_change",
        )?;
        changes.push(Arc::new(a));
    }
    Some(Profile {
        state: ps.clone(),
        base: Arc::new(base),
        changes,
    })
}
