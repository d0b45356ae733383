//! Seed 001's schedule for a recipient who is not available: try again 10 minutes later,
//! then at the start of the next hour, then the next working day within working hours; that
//! is one round. After three rounds the message is not sent.

use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use pushfleet_domain::SendWindow;
use rand::Rng;

/// Rounds of (10 minutes, next hour, next day) before giving up.
pub const ROUNDS: i32 = 3;
const STEPS_PER_ROUND: i32 = 3;

/// When to try again after one more miss, given the misses recorded before it; `None` when
/// this miss ends the third round.
pub fn next_try(
    misses_before: i32,
    now: DateTime<Utc>,
    window: Option<&SendWindow>,
    tz: Tz,
    rng: &mut impl Rng,
) -> Option<DateTime<Utc>> {
    let miss = misses_before + 1;
    if miss >= ROUNDS * STEPS_PER_ROUND {
        return None;
    }
    Some(match (miss - 1) % STEPS_PER_ROUND {
        0 => now + Duration::minutes(10),
        1 => now.duration_trunc(Duration::hours(1)).unwrap_or(now) + Duration::hours(1),
        _ => window
            .and_then(|w| w.next_day(tz, now, rng))
            .unwrap_or(now + Duration::days(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .expect("time")
    }

    #[test]
    fn ten_minutes_then_next_hour_then_next_day_three_rounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let now = t("2026-11-24T14:27:00Z");
        let tz = chrono_tz::UTC;
        assert_eq!(
            next_try(0, now, None, tz, &mut rng),
            Some(t("2026-11-24T14:37:00Z"))
        );
        assert_eq!(
            next_try(1, now, None, tz, &mut rng),
            Some(t("2026-11-24T15:00:00Z"))
        );
        assert_eq!(
            next_try(2, now, None, tz, &mut rng),
            Some(t("2026-11-25T14:27:00Z"))
        );
        // Second and third rounds repeat the pattern...
        assert_eq!(
            next_try(3, now, None, tz, &mut rng),
            Some(t("2026-11-24T14:37:00Z"))
        );
        assert_eq!(
            next_try(7, now, None, tz, &mut rng),
            Some(t("2026-11-24T15:00:00Z"))
        );
        // ...and the ninth miss ends it.
        assert_eq!(next_try(8, now, None, tz, &mut rng), None);
    }

    #[test]
    fn next_day_respects_the_working_hours() {
        let window = SendWindow {
            start: t("2026-11-20T00:00:00Z"),
            days: 5,
            hours: chrono::NaiveTime::from_hms_opt(9, 0, 0)
                .zip(chrono::NaiveTime::from_hms_opt(17, 0, 0)),
            weekdays: vec![1, 2, 3, 4, 5],
            time_zone: "Europe/Paris".into(),
            recipient_time_zone: false,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        // Friday 14:27 UTC -> Monday within 08:00-16:00 UTC (09:00-17:00 Paris).
        let next = next_try(
            2,
            t("2026-11-20T14:27:00Z"),
            Some(&window),
            chrono_tz::Europe::Paris,
            &mut rng,
        )
        .expect("a try");
        assert!(
            next >= t("2026-11-23T08:00:00Z") && next < t("2026-11-23T16:00:00Z"),
            "{next}"
        );
    }
}
