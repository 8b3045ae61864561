//! Windows and bases as values: what is due (the open window's change files with their net
//! entries, bases for new profiles and on schedule), and the listing each full key serves.
//! The stage writes no file: the caller renders what [`Due`] names, durably, then hands it
//! back to [`Changes::commit`], which records it in the checkpoint. A file written but never
//! committed is listed nowhere; the artifacts stage removes it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use jiff::civil::DateTime;
use jiff::Timestamp;

use super::net::{self, Entry};
use super::state::{BaseState, ChangeState, ProfileState};
use super::{
    change_name, checkpoint, from_ms, ms, schedule, Changes, ChangesError, Keeper, SEGMENT_BYTES,
};
use crate::catalog::rules::Parents;
use crate::catalog::{Format, ProductId, RenderProfile};
use crate::snapshot::Snapshot;

/// A base or change file of a listing: what names it and when it was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Unique within the history: the file's stem is `b{seq}` (base) or `c{seq}` (change).
    pub seq: u64,
    /// The name in URLs: `full.xml`, `full_change2026-11-22T10-30-00.xml`.
    pub name: String,
    /// Its `changed` time (local).
    pub time: DateTime,
    /// True for a base.
    pub base: bool,
}

impl ListedFile {
    fn base(seq: u64, time: DateTime) -> ListedFile {
        ListedFile {
            seq,
            name: "full.xml".into(),
            time,
            base: true,
        }
    }

    fn change(seq: u64, time: DateTime) -> ListedFile {
        ListedFile {
            seq,
            name: change_name(time),
            time,
            base: false,
        }
    }

    /// The stem of the file on disk (`b12`, `c13`).
    pub fn stem(&self) -> String {
        format!("{}{}", if self.base { 'b' } else { 'c' }, self.seq)
    }

    /// The gateway node the file is listed under.
    pub fn kind(&self) -> &'static str {
        if self.base {
            "full"
        } else {
            "full_change"
        }
    }
}

/// What a full key serves: its base full.xml and the change files listed under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// [`RenderProfile::full_key`].
    pub key: String,
    pub base: ListedFile,
    /// Newest first.
    pub changes: Vec<ListedFile>,
}

impl Listing {
    fn of(ps: &ProfileState) -> Option<Listing> {
        let base = ListedFile::base(ps.base.seq, ps.base.time.parse().ok()?);
        let changes = ps
            .changes
            .iter()
            .rev()
            .map(|c| Some(ListedFile::change(c.seq, c.time.parse().ok()?)))
            .collect::<Option<Vec<_>>>()?;
        Some(Listing {
            key: ps.key.clone(),
            base,
            changes,
        })
    }
}

/// A change file to write: one full key's net entries over the window being cut.
#[derive(Debug, Clone)]
pub struct ChangeDue {
    pub key: String,
    pub profile: RenderProfile,
    pub file: ListedFile,
    /// By product id.
    pub entries: Vec<(ProductId, Entry)>,
}

/// A base to write: the full.xml of [`Due::snapshot`] for one full key.
#[derive(Debug, Clone)]
pub struct BaseDue {
    pub key: String,
    pub profile: RenderProfile,
    pub file: ListedFile,
}

/// The state a [`Due`] puts in force once committed.
#[derive(Debug)]
struct Plan {
    /// The log offset the cut window ends at (the next window starts there).
    cut: Option<u64>,
    now: Timestamp,
    clock: Option<DateTime>,
    next_seq: u64,
    profiles: BTreeMap<String, ProfileState>,
    /// The listings change (files added, expired or dropped).
    changed: bool,
}

/// What is due now, from [`Changes::due`]: nothing changes until [`Changes::commit`].
#[derive(Debug)]
pub struct Due {
    /// The generation the log has reached: bases and change files show it.
    pub snapshot: Option<Arc<Snapshot>>,
    /// Change files of the window being cut.
    pub changes: Vec<ChangeDue>,
    pub bases: Vec<BaseDue>,
    plan: Plan,
}

impl Due {
    /// When the work was found due (the files' modification time).
    pub fn now(&self) -> Timestamp {
        self.plan.now
    }
}

/// What [`Changes::plan`] looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Work {
    /// The window if its time has come, then bases and retention.
    Maintain,
    /// The window, whatever the timer says; nothing else.
    Cut,
}

impl Changes {
    /// The work due at `now` for `profiles`: cut the window when its time has come, give new
    /// (or changed) IOF profiles a base, rebuild bases on schedule, drop change files past
    /// retention. Render what it names, then [`Changes::commit`] it.
    pub fn due(&self, profiles: &[RenderProfile], now: Timestamp) -> Result<Due, ChangesError> {
        self.plan(profiles, now, Work::Maintain)
    }

    /// The open window cut now, whatever the timer says: the change files of every profile
    /// that has a base and net changes.
    pub fn due_cut(&self, profiles: &[RenderProfile], now: Timestamp) -> Result<Due, ChangesError> {
        self.plan(profiles, now, Work::Cut)
    }

    /// Put `due` in force once its files are durable: the checkpoint records the window cut
    /// and the listings. Returns true when the listings changed (republish the artifacts).
    /// Callers are the single publisher: a `due` is committed before the next is asked for.
    pub fn commit(&self, due: Due) -> Result<bool, ChangesError> {
        let plan = due.plan;
        // A follower's plans are empty: it has nothing to commit.
        let Some(mut inner) = self.lock().filter(|_| plan.cut.is_some() || plan.changed) else {
            return Ok(false);
        };
        let saved = (
            inner.clock,
            inner.window_offset,
            inner.window_started,
            inner.next_seq,
            std::mem::take(&mut inner.profiles),
        );
        inner.clock = plan.clock;
        inner.next_seq = plan.next_seq;
        inner.profiles = plan.profiles;
        if let Some(offset) = plan.cut {
            inner.window_offset = offset;
            inner.window_started = plan.now;
        }
        if let Err(e) = checkpoint(&self.dir, &mut inner) {
            (
                inner.clock,
                inner.window_offset,
                inner.window_started,
                inner.next_seq,
                inner.profiles,
            ) = saved;
            return Err(e);
        }
        if plan.cut.is_some() {
            // Older segments are history the change files now carry.
            if inner.log.tail_len() > SEGMENT_BYTES {
                if let Err(e) = inner.log.rotate() {
                    tracing::warn!(error = %e, "cannot start a new change-log segment");
                }
            }
            let offset = inner.window_offset;
            inner.log.drop_before(offset);
            if !due.changes.is_empty() {
                tracing::info!(files = due.changes.len(), "change window cut");
            }
        }
        Ok(plan.changed)
    }

    /// The base and listed change files of an IOF profile (`None` before it has a base, and
    /// for CSV profiles).
    pub fn listing(&self, profile: &RenderProfile) -> Option<Listing> {
        if profile.format != Format::Iof30 {
            return None;
        }
        let key = profile.full_key();
        match &self.keeper {
            Keeper::Writer(inner) => Listing::of(inner.lock().profiles.get(&key)?),
            Keeper::Follower(followed) => Listing::of(followed.lock().profiles.get(&key)?),
        }
    }

    /// Forget the listing of `key` (its files are missing or damaged): the next
    /// [`Changes::due`] gives it a new base.
    ///
    /// A follower cannot: the writer decides. Its files come with a later manifest (the
    /// writer gives the profile a new base when they are gone for good).
    pub fn forget(&self, key: &str) {
        let Some(mut inner) = self.lock() else {
            tracing::warn!(
                profile = key,
                "a base or change file the writer lists is not here (yet); serving without it"
            );
            return;
        };
        if inner.profiles.remove(key).is_some() {
            tracing::warn!(
                profile = key,
                "a base or change file is missing or damaged; the profile gets a new base"
            );
        }
    }

    pub(super) fn plan(
        &self,
        profiles: &[RenderProfile],
        now: Timestamp,
        work: Work,
    ) -> Result<Due, ChangesError> {
        let Some(inner) = self.lock() else {
            // A follower cuts nothing and builds no base: the writer does.
            return Ok(Due {
                snapshot: None,
                changes: Vec::new(),
                bases: Vec::new(),
                plan: Plan {
                    cut: None,
                    now,
                    clock: None,
                    next_seq: 0,
                    profiles: BTreeMap::new(),
                    changed: false,
                },
            });
        };
        let snapshot = inner.last.clone();
        let mut plan = Plan {
            cut: None,
            now,
            clock: inner.clock,
            next_seq: inner.next_seq,
            profiles: inner.profiles.clone(),
            changed: false,
        };
        let mut changes = Vec::new();
        let mut bases = Vec::new();
        let wanted: BTreeMap<String, &RenderProfile> =
            iof_profiles(profiles).map(|p| (p.full_key(), p)).collect();
        let cut_due = match work {
            Work::Cut => true,
            Work::Maintain => now >= schedule::next_cut(inner.window_started, self.opts.window),
        };
        // Nothing observed yet: the window cannot be rendered, keep it open.
        if let (true, Some(_)) = (cut_due, &snapshot) {
            let frames = inner.log.read_from(inner.window_offset)?;
            plan.cut = Some(inner.log.end());
            let last_change = frames
                .iter()
                .rev()
                .find(|l| !l.frame.records.is_empty())
                .map(|l| l.frame.time);
            if let Some(last_change) = last_change {
                let window_net = net::net_changes(frames.iter().map(|l| &l.frame));
                // Category subtrees resolve against the window's end; a product whose
                // category moved meanwhile is sent whole (`Net::entry`).
                let tree = match &snapshot {
                    Some(s) if wanted.values().any(|p| p.rules.reads_categories()) => {
                        Parents::of(s.dicts())
                    }
                    _ => Parents::default(),
                };
                let mut time = None;
                for key in wanted.keys() {
                    let Some(ps) = plan.profiles.get_mut(key) else {
                        continue;
                    };
                    let from = ps.base.offset;
                    // A base built within the window already shows its earlier part.
                    let local;
                    let nets = if from <= inner.window_offset {
                        &window_net
                    } else {
                        local = net::net_changes(
                            frames.iter().filter(|l| l.offset >= from).map(|l| &l.frame),
                        );
                        &local
                    };
                    let entries: Vec<(ProductId, Entry)> = nets
                        .iter()
                        .filter_map(|(id, n)| n.entry(*id, &ps.profile, &tree).map(|e| (*id, e)))
                        .collect();
                    if entries.is_empty() {
                        continue;
                    }
                    let t = *time.get_or_insert_with(|| {
                        let t = schedule::issue(last_change, &self.opts.timezone, plan.clock);
                        plan.clock = Some(t);
                        t
                    });
                    let seq = plan.next_seq;
                    plan.next_seq += 1;
                    ps.changes.push(ChangeState {
                        seq,
                        time: t.to_string(),
                        created_ms: ms(now),
                    });
                    changes.push(ChangeDue {
                        key: key.clone(),
                        profile: ps.profile.clone(),
                        file: ListedFile::change(seq, t),
                        entries,
                    });
                    plan.changed = true;
                }
            }
        }
        if work == Work::Maintain {
            if let Some(snapshot) = &snapshot {
                self.plan_bases(&mut plan, &wanted, snapshot, inner.log.end(), &mut bases);
            }
        }
        Ok(Due {
            snapshot,
            changes,
            bases,
            plan,
        })
    }

    /// Bases for new profiles and on schedule; listings of profiles no longer in use and
    /// change files past retention dropped.
    fn plan_bases(
        &self,
        plan: &mut Plan,
        wanted: &BTreeMap<String, &RenderProfile>,
        snapshot: &Snapshot,
        log_end: u64,
        bases: &mut Vec<BaseDue>,
    ) {
        let now = plan.now;
        let rebuild_due = schedule::last_rebuild(now, self.opts.rebuild_at, &self.opts.timezone);
        let retention = jiff::SignedDuration::try_from(self.opts.retention).unwrap_or_default();
        let expired_before = now.checked_sub(retention).unwrap_or(Timestamp::MIN);
        let before = plan.profiles.len();
        plan.profiles.retain(|k, _| wanted.contains_key(k));
        plan.changed |= plan.profiles.len() != before;
        for ps in plan.profiles.values_mut() {
            let keep = ps
                .changes
                .iter()
                .position(|c| from_ms(c.created_ms) >= expired_before)
                .unwrap_or(ps.changes.len());
            if keep > 0 {
                ps.changes.drain(..keep);
                plan.changed = true;
            }
        }
        // Bases built together share one time.
        let mut time = None;
        for (key, profile) in wanted {
            let due = match plan.profiles.get(key) {
                None => true,
                Some(ps) => rebuild_due.is_some_and(|t| from_ms(ps.base.built_ms) < t),
            };
            if !due {
                continue;
            }
            let t = *time.get_or_insert_with(|| {
                let t = schedule::issue(now, &self.opts.timezone, plan.clock);
                plan.clock = Some(t);
                t
            });
            let seq = plan.next_seq;
            plan.next_seq += 1;
            let base = BaseState {
                seq,
                time: t.to_string(),
                built_ms: ms(now),
                offset: log_end,
                generation: snapshot.generation(),
            };
            plan.profiles
                .entry(key.clone())
                .and_modify(|ps| {
                    ps.base = base.clone();
                    ps.profile = (*profile).clone();
                })
                .or_insert_with(|| ProfileState {
                    key: key.clone(),
                    profile: (*profile).clone(),
                    base,
                    changes: Vec::new(),
                });
            bases.push(BaseDue {
                key: key.clone(),
                profile: (*profile).clone(),
                file: ListedFile::base(seq, t),
            });
            plan.changed = true;
        }
    }
}

fn iof_profiles(profiles: &[RenderProfile]) -> impl Iterator<Item = &RenderProfile> {
    let mut seen = HashSet::new();
    profiles
        .iter()
        .filter(|p| p.format == Format::Iof30)
        .filter(move |p| seen.insert(p.full_key()))
}

/// The listings of a checkpoint that still hold: the base's offset is in the log and the
/// key is the profile's.
pub(super) fn usable(states: Vec<ProfileState>, log_end: u64) -> BTreeMap<String, ProfileState> {
    let mut out = BTreeMap::new();
    for ps in states {
        if ps.base.offset <= log_end && ps.key == ps.profile.full_key() {
            out.insert(ps.key.clone(), ps);
        } else {
            tracing::warn!(profile = %ps.key, "a listing of the checkpoint does not hold; the profile gets a new base");
        }
    }
    out
}
