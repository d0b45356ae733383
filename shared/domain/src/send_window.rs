//! When a campaign may send (seed 001): from a start day, for a number of days, within
//! working hours on working days, in the company's time zone or each recipient's own. Sends
//! are spread at random over that window instead of all going out at once.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The allowed sending times of one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendWindow {
    /// First moment a send may go out.
    pub start: DateTime<Utc>,
    /// Number of calendar days, counted from `start`'s local date, that sends spread over.
    pub days: u32,
    /// Daily working hours, local time; `None` = all day.
    pub hours: Option<(NaiveTime, NaiveTime)>,
    /// Working days (ISO, Monday = 1); empty = every day.
    pub weekdays: Vec<u32>,
    /// The company's time zone (IANA name), used unless per-recipient zones are asked for.
    pub time_zone: String,
    /// Use each recipient's own time zone for the hours and days.
    pub recipient_time_zone: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendWindowError {
    #[error("unknown time zone `{0}` (expected an IANA name such as Europe/Paris)")]
    UnknownTimeZone(String),
    #[error("working hours must end after they start")]
    EmptyHours,
    #[error("the window must last between 1 and 31 days")]
    Days,
    #[error("weekday {0} is not between 1 (Monday) and 7 (Sunday)")]
    Weekday(u32),
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(name: &str) -> Result<Tz, SendWindowError> {
    name.parse::<Tz>()
        .map_err(|_| SendWindowError::UnknownTimeZone(name.to_owned()))
}

impl SendWindow {
    pub fn validate(&self) -> Result<(), SendWindowError> {
        parse_time_zone(&self.time_zone)?;
        if !(1..=31).contains(&self.days) {
            return Err(SendWindowError::Days);
        }
        if let Some((from, to)) = self.hours {
            if to <= from {
                return Err(SendWindowError::EmptyHours);
            }
        }
        if let Some(bad) = self.weekdays.iter().find(|d| !(1..=7).contains(*d)) {
            return Err(SendWindowError::Weekday(*bad));
        }
        Ok(())
    }

    /// The zone whose clock the hours follow for one recipient; falls back to the
    /// company's zone when the recipient's is unknown.
    pub fn zone_for(&self, recipient_zone: Option<&str>) -> Tz {
        let company = parse_time_zone(&self.time_zone).unwrap_or(Tz::UTC);
        match (self.recipient_time_zone, recipient_zone) {
            (true, Some(z)) => parse_time_zone(z).unwrap_or(company),
            _ => company,
        }
    }

    fn allows_day(&self, day: Weekday) -> bool {
        self.weekdays.is_empty() || self.weekdays.contains(&day.number_from_monday())
    }

    /// Allowed intervals in UTC for a recipient in `tz`, from `not_before` to the end of
    /// the window, in order.
    pub fn intervals(
        &self,
        tz: Tz,
        not_before: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let first_day = self.start.with_timezone(&tz).date_naive();
        let floor = not_before.max(self.start);
        let mut out = Vec::new();
        for offset in 0..self.days {
            let Some(day) = first_day.checked_add_days(chrono::Days::new(u64::from(offset))) else {
                break;
            };
            if !self.allows_day(day.weekday()) {
                continue;
            }
            let (from, to) = self.hours.unwrap_or((NaiveTime::MIN, NaiveTime::MIN));
            let local_from = day.and_time(from);
            let local_to = if self.hours.is_some() {
                day.and_time(to)
            } else {
                day.and_time(NaiveTime::MIN) + Duration::days(1)
            };
            // DST gaps and folds: take the earliest valid reading, skip a time that does not exist.
            let (Some(a), Some(b)) = (
                tz.from_local_datetime(&local_from).earliest(),
                tz.from_local_datetime(&local_to).earliest(),
            ) else {
                continue;
            };
            let (a, b) = (a.with_timezone(&Utc).max(floor), b.with_timezone(&Utc));
            if a < b {
                out.push((a, b));
            }
        }
        out
    }

    /// A moment chosen uniformly at random in the allowed time still ahead, or `None` when
    /// none is left.
    pub fn pick(&self, tz: Tz, now: DateTime<Utc>, rng: &mut impl Rng) -> Option<DateTime<Utc>> {
        let intervals = self.intervals(tz, now);
        let total: i64 = intervals
            .iter()
            .map(|(a, b)| (*b - *a).num_milliseconds())
            .sum();
        if total <= 0 {
            return None;
        }
        let mut offset = rng.random_range(0..total);
        for (a, b) in intervals {
            let len = (b - a).num_milliseconds();
            if offset < len {
                return Some(a + Duration::milliseconds(offset));
            }
            offset -= len;
        }
        None
    }

    /// A random moment within the working hours of the first allowed day of the window
    /// that is a later local day than `after` (seed 001: "the next day during opening
    /// hours"), or `None` when the window has no such day left: the campaign is over.
    pub fn next_day(
        &self,
        tz: Tz,
        after: DateTime<Utc>,
        rng: &mut impl Rng,
    ) -> Option<DateTime<Utc>> {
        let today = after.with_timezone(&tz).date_naive();
        let interval = self
            .intervals(tz, after)
            .into_iter()
            .find(|(a, _)| a.with_timezone(&tz).date_naive() > today)?;
        let len = (interval.1 - interval.0).num_milliseconds().max(1);
        Some(interval.0 + Duration::milliseconds(rng.random_range(0..len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .expect("valid time")
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
    }

    fn window() -> SendWindow {
        // Friday 2026-11-20, 3 days, 09:00-17:00 Paris, Monday to Friday.
        SendWindow {
            start: t("2026-11-20T07:00:00Z"),
            days: 4,
            hours: Some((hm(9, 0), hm(17, 0))),
            weekdays: vec![1, 2, 3, 4, 5],
            time_zone: "Europe/Paris".into(),
            recipient_time_zone: false,
        }
    }

    #[test]
    fn intervals_skip_the_weekend_and_follow_local_hours() {
        let w = window();
        let tz = w.zone_for(None);
        let got = w.intervals(tz, t("2026-11-20T00:00:00Z"));
        // Friday and Monday only; Paris is UTC+1 in November.
        assert_eq!(
            got,
            vec![
                (t("2026-11-20T08:00:00Z"), t("2026-11-20T16:00:00Z")),
                (t("2026-11-23T08:00:00Z"), t("2026-11-23T16:00:00Z")),
            ]
        );
    }

    #[test]
    fn time_already_past_is_not_offered() {
        let w = window();
        let tz = w.zone_for(None);
        let got = w.intervals(tz, t("2026-11-20T15:00:00Z"));
        assert_eq!(
            got[0],
            (t("2026-11-20T15:00:00Z"), t("2026-11-20T16:00:00Z"))
        );
        assert!(w.intervals(tz, t("2026-11-24T00:00:00Z")).is_empty());
    }

    #[test]
    fn picks_fall_inside_the_window_and_spread_over_it() {
        let w = window();
        let tz = w.zone_for(None);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let now = t("2026-11-20T00:00:00Z");
        let picks: Vec<_> = (0..2000)
            .filter_map(|_| w.pick(tz, now, &mut rng))
            .collect();
        assert_eq!(picks.len(), 2000);
        let intervals = w.intervals(tz, now);
        assert!(picks
            .iter()
            .all(|p| intervals.iter().any(|(a, b)| p >= a && p < b)));
        // Two equal days: each gets about half.
        let friday = picks
            .iter()
            .filter(|p| **p < t("2026-11-21T00:00:00Z"))
            .count();
        assert!((800..1200).contains(&friday), "friday got {friday} of 2000");
    }

    #[test]
    fn recipient_zones_shift_the_hours() {
        let w = SendWindow {
            recipient_time_zone: true,
            ..window()
        };
        let ny = w.zone_for(Some("America/New_York"));
        let got = w.intervals(ny, t("2026-11-20T00:00:00Z"));
        assert_eq!(
            got[0],
            (t("2026-11-20T14:00:00Z"), t("2026-11-20T22:00:00Z"))
        );
        // Unknown zone: the company's.
        assert_eq!(w.zone_for(Some("Mars/Olympus")), chrono_tz::Europe::Paris);
    }

    #[test]
    fn next_day_is_a_later_working_day_within_hours() {
        let w = window();
        let tz = w.zone_for(None);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        // Friday afternoon -> Monday within 09:00-17:00 Paris.
        let next = w
            .next_day(tz, t("2026-11-20T14:00:00Z"), &mut rng)
            .expect("a next day");
        assert!(
            next >= t("2026-11-23T08:00:00Z") && next < t("2026-11-23T16:00:00Z"),
            "{next}"
        );
        // Monday is the window's last day: no next day after it.
        assert_eq!(w.next_day(tz, t("2026-11-23T14:00:00Z"), &mut rng), None);
    }

    #[test]
    fn validation_names_the_problem() {
        let bad_zone = SendWindow {
            time_zone: "Nowhere/City".into(),
            ..window()
        };
        assert_eq!(
            bad_zone.validate(),
            Err(SendWindowError::UnknownTimeZone("Nowhere/City".into()))
        );
        let empty = SendWindow {
            hours: Some((hm(17, 0), hm(9, 0))),
            ..window()
        };
        assert_eq!(empty.validate(), Err(SendWindowError::EmptyHours));
        let days = SendWindow {
            days: 0,
            ..window()
        };
        assert_eq!(days.validate(), Err(SendWindowError::Days));
        let weekday = SendWindow {
            weekdays: vec![8],
            ..window()
        };
        assert_eq!(weekday.validate(), Err(SendWindowError::Weekday(8)));
        assert_eq!(window().validate(), Ok(()));
    }
}
