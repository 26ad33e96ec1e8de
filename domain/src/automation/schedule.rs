//! Cron expressions read in a time zone (croner and chrono-tz: pure
//! computation, no IO), and publish slots ("09:00 and 15:00 in the site's
//! time zone").

use super::AutomationError;
use chrono::{DateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A time zone by its IANA name (422 UNKNOWN_TIMEZONE).
pub fn zone(name: &str) -> Result<Tz, AutomationError> {
    name.parse::<Tz>().map_err(|_| {
        AutomationError::Invalid(
            "UNKNOWN_TIMEZONE",
            format!(
                "{name:?} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)"
            ),
        )
    })
}

/// A 5-field cron expression (minute hour day-of-month month day-of-week)
/// in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

/// How far ahead a schedule must fire at least once (else it "never fires").
const HORIZON_DAYS: i64 = 5 * 366;

impl Schedule {
    /// 422 INVALID_CRON for what does not parse as 5 fields;
    /// CRON_NEVER_FIRES for what parses but has no instant in five years
    /// (e.g. `0 0 30 2 *`).
    pub fn new(expr: &str, tz: Tz) -> Result<Schedule, AutomationError> {
        let fields = expr.split_whitespace().count();
        let parsed = (fields == 5)
            .then(|| {
                CronParser::builder()
                    .seconds(Seconds::Disallowed)
                    .year(Year::Disallowed)
                    .build()
                    .parse(expr)
                    .ok()
            })
            .flatten()
            .ok_or_else(|| {
                AutomationError::Invalid(
                    "INVALID_CRON",
                    format!(
                        "{expr:?} is not a 5-field cron expression (minute hour day-of-month month day-of-week, e.g. \"0 9 * * 1-5\")"
                    ),
                )
            })?;
        let s = Schedule { cron: parsed, tz };
        let from = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        match s.next_after(from) {
            Some(t) if t - from <= chrono::Duration::days(HORIZON_DAYS) => Ok(s),
            _ => Err(AutomationError::Invalid(
                "CRON_NEVER_FIRES",
                format!("{expr:?} never fires (no matching instant within five years)"),
            )),
        }
    }

    /// The first instant strictly after `t` (whole seconds: stored
    /// timestamps keep microseconds at most, and a slot is compared exactly).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = t.with_nanosecond(0).unwrap_or(t);
        let local = t.with_timezone(&self.tz);
        let horizon = t + chrono::Duration::days(HORIZON_DAYS);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
            .filter(|d| *d <= horizon)
    }

    /// The instants in `(after, until]`, at most `limit`, oldest first.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = vec![];
        let mut t = after;
        while out.len() < limit {
            match self.next_after(t) {
                Some(n) if n <= until => {
                    out.push(n);
                    t = n;
                }
                _ => break,
            }
        }
        out
    }
}

/// `"09:30"` → 09:30.
pub fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// The first `n` publish slots strictly after `after`: the times of day in
/// `times` (e.g. 09:00 and 15:00) in time zone `tz`, day after day; a slot
/// a DST gap skips is skipped.
pub fn publish_slots(
    after: DateTime<Utc>,
    tz: Tz,
    times: &[NaiveTime],
    n: usize,
) -> Vec<DateTime<Utc>> {
    let mut times = times.to_vec();
    times.sort();
    times.dedup();
    let mut out = vec![];
    if times.is_empty() {
        return out;
    }
    let mut day = after.with_timezone(&tz).date_naive();
    // Bounded: a year of days is more than any batch needs.
    for _ in 0..400 {
        for t in &times {
            if out.len() >= n {
                return out;
            }
            if let Some(local) = tz.from_local_datetime(&day.and_time(*t)).earliest() {
                let utc = local.with_timezone(&Utc);
                if utc > after {
                    out.push(utc);
                }
            }
        }
        day = day.succ_opt().unwrap_or(day);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn slots_are_whole_seconds() {
        let s = Schedule::new("* * * * *", Tz::UTC).unwrap();
        let t: DateTime<Utc> = "2026-12-07T07:00:12.123456789Z".parse().unwrap();
        assert_eq!(s.next_after(t), Some(at("2026-12-07T07:01:00Z")));
    }

    #[test]
    fn cron_in_a_time_zone() {
        let s = Schedule::new("0 9 * * *", zone("Europe/Berlin").unwrap()).unwrap();
        // 09:00 in Berlin is 08:00 UTC in winter.
        assert_eq!(
            s.next_after(at("2026-12-07T07:00:00Z")),
            Some(at("2026-12-07T08:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-12-07T08:00:00Z")),
            Some(at("2026-12-08T08:00:00Z")),
            "strictly after"
        );
        let slots = s.between(at("2026-12-01T00:00:00Z"), at("2026-12-04T12:00:00Z"), 10);
        assert_eq!(slots.len(), 4);
        assert!(Schedule::new("0 9 * *", Tz::UTC).is_err());
        assert!(Schedule::new("0 0 0 9 * *", Tz::UTC).is_err(), "no seconds");
        assert!(Schedule::new("0 0 31 4 *", Tz::UTC).is_err(), "April 31st");
    }

    #[test]
    fn publish_slots_in_the_sites_time_zone() {
        let tz = zone("America/New_York").unwrap();
        let times = [parse_hhmm("15:00").unwrap(), parse_hhmm("09:00").unwrap()];
        // 2026-12-07 10:00 in New York (15:00 UTC): next are 15:00 today, 09:00 and 15:00 tomorrow.
        let s = publish_slots(at("2026-12-07T15:00:00Z"), tz, &times, 3);
        assert_eq!(
            s,
            vec![
                at("2026-12-07T20:00:00Z"),
                at("2026-12-08T14:00:00Z"),
                at("2026-12-08T20:00:00Z")
            ]
        );
        assert_eq!(parse_hhmm("9:00"), None);
        assert_eq!(parse_hhmm("24:00"), None);
    }
}
