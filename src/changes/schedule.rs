//! Time arithmetic of windows, base rebuilds and file names: pure functions.

use std::time::Duration;

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// When the window that started at `started` is cut: the next multiple of `window` since the
/// Unix epoch (30-minute windows end at :00 and :30 in whole- and half-hour zones).
pub fn next_cut(started: Timestamp, window: Duration) -> Timestamp {
    let w = i128::try_from(window.as_nanos())
        .unwrap_or(i128::MAX)
        .max(1);
    let t = started.as_nanosecond();
    let next = (t.div_euclid(w) + 1).saturating_mul(w);
    Timestamp::from_nanosecond(next).unwrap_or(Timestamp::MAX)
}

fn at(date: jiff::civil::Date, time: Time, tz: &TimeZone) -> Option<Timestamp> {
    // A time that falls into a DST gap is taken forward, as clocks do.
    date.to_datetime(time)
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// The latest scheduled rebuild instant at or before `now`.
pub fn last_rebuild(now: Timestamp, time: Time, tz: &TimeZone) -> Option<Timestamp> {
    let today = now.to_zoned(tz.clone()).date();
    match at(today, time, tz) {
        Some(t) if t <= now => Some(t),
        _ => at(today.checked_sub(1.day()).ok()?, time, tz),
    }
}

/// The first scheduled rebuild instant after `now`.
pub fn next_rebuild(now: Timestamp, time: Time, tz: &TimeZone) -> Option<Timestamp> {
    let today = now.to_zoned(tz.clone()).date();
    match at(today, time, tz) {
        Some(t) if t > now => Some(t),
        _ => at(today.checked_add(1.day()).ok()?, time, tz),
    }
}

/// Issue a file time: `t` in the zone, to the second, but always after `previous` so names
/// are unique and `changed` times strictly increase (even across a DST fall-back).
pub fn issue(t: Timestamp, tz: &TimeZone, previous: Option<DateTime>) -> DateTime {
    let local = t.to_zoned(tz.clone()).datetime();
    let local = local.with().subsec_nanosecond(0).build().unwrap_or(local);
    match previous {
        Some(p) if local <= p => p.checked_add(1.second()).unwrap_or(p),
        _ => local,
    }
}

/// `YYYY-MM-DDThh-mm-ss`, the time in a change file's name.
pub fn name_stamp(t: DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}",
        t.year().clamp(0, 9999),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn windows_end_on_multiples_of_their_length() {
        let w = Duration::from_secs(1800);
        assert_eq!(
            next_cut(ts("2026-11-22T10:07:13Z"), w),
            ts("2026-11-22T10:30:00Z")
        );
        assert_eq!(
            next_cut(ts("2026-11-22T10:30:00Z"), w),
            ts("2026-11-22T11:00:00Z")
        );
        assert_eq!(
            next_cut(ts("2026-11-22T10:30:01.5Z"), Duration::from_secs(2)),
            ts("2026-11-22T10:30:02Z")
        );
    }

    #[test]
    fn rebuilds_follow_the_local_clock() {
        let tz = TimeZone::get("Europe/Warsaw").unwrap();
        let three = Time::constant(3, 0, 0, 0);
        // 02:30 UTC on 22 Nov is 03:30 in Warsaw (CET).
        let now = ts("2026-11-22T02:30:00Z");
        assert_eq!(
            last_rebuild(now, three, &tz),
            Some(ts("2026-11-22T02:00:00Z"))
        );
        assert_eq!(
            next_rebuild(now, three, &tz),
            Some(ts("2026-11-23T02:00:00Z"))
        );
        let before = ts("2026-11-22T01:59:59Z");
        assert_eq!(
            last_rebuild(before, three, &tz),
            Some(ts("2026-11-21T02:00:00Z"))
        );
        assert_eq!(
            next_rebuild(before, three, &tz),
            Some(ts("2026-11-22T02:00:00Z"))
        );
    }

    #[test]
    fn issued_times_strictly_increase_and_name_files() {
        let tz = TimeZone::get("Europe/Warsaw").unwrap();
        let a = issue(ts("2026-11-22T09:30:00.7Z"), &tz, None);
        assert_eq!(name_stamp(a), "2026-11-22T10-30-00");
        let b = issue(ts("2026-11-22T09:30:00.9Z"), &tz, Some(a));
        assert_eq!(name_stamp(b), "2026-11-22T10-30-01");
        // The hour repeated at the end of summer time does not go back.
        let summer = issue(ts("2026-10-25T00:59:59Z"), &tz, None); // 02:59:59 CEST
        let winter = issue(ts("2026-10-25T01:00:00Z"), &tz, Some(summer)); // 02:00:00 CET
        assert!(winter > summer);
    }
}
