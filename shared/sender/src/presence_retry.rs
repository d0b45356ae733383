//! Seed 001's schedule for a recipient who is not available. The seed:
//!
//! > The programmed message is sent randomly and not at the same time to all recipients.
//! > When a campaign lasts several days, here is the sending process in case of absence of
//! > the recipient: At a pre-calculated time / 10 minutes later / At the exact time after
//! > the time of the first message (for example at 2:27 p.m. then at 3:00 p.m.) / The next
//! > day during opening hours. This process is repeated 3 times, after this, the message
//! > will then be unprogrammed.
//!
//! Read as: a round is three tries on one day, at the pre-calculated (random) time, 10
//! minutes later, and at the next full hour. "The next day during opening hours" is how the
//! next round starts: a new pre-calculated time within the next working day's hours. Three
//! rounds in all, so at most nine tries over three working days; the ninth miss unprograms
//! the message. The next-day rounds belong to the campaign ("when a campaign lasts several
//! days"): when its window has no working day left, the message is unprogrammed then.

use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use pushfleet_domain::SendWindow;
use rand::Rng;

/// Rounds of tries before the message is unprogrammed.
pub const ROUNDS: i32 = 3;
/// Tries per round: the pre-calculated time, 10 minutes later, the next full hour.
pub const TRIES_PER_ROUND: i32 = 3;

/// What follows one more miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextTry {
    At(DateTime<Utc>),
    /// The third round's last try missed.
    RoundsExhausted,
    /// A next round is due but the campaign's window has no working day left.
    CampaignOver,
}

/// When to try again after one more miss, given the misses recorded before it.
pub fn next_try(
    misses_before: i32,
    now: DateTime<Utc>,
    window: Option<&SendWindow>,
    tz: Tz,
    rng: &mut impl Rng,
) -> NextTry {
    let miss = misses_before + 1;
    if miss >= ROUNDS * TRIES_PER_ROUND {
        return NextTry::RoundsExhausted;
    }
    match (miss - 1) % TRIES_PER_ROUND {
        // Missed the round's pre-calculated try.
        0 => NextTry::At(now + Duration::minutes(10)),
        // Missed the try 10 minutes later: "at the exact time after", the next full hour.
        1 => {
            NextTry::At(now.duration_trunc(Duration::hours(1)).unwrap_or(now) + Duration::hours(1))
        }
        // Missed the round's last try: the next round, the next day within opening hours.
        _ => match window {
            Some(w) => w
                .next_day(tz, now, rng)
                .map_or(NextTry::CampaignOver, NextTry::At),
            // No window, no opening hours nor end: the same time the next day.
            None => NextTry::At(now + Duration::days(1)),
        },
    }
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
    fn three_tries_a_day_for_three_days_then_unprogrammed() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let now = t("2026-11-24T14:27:00Z");
        let tz = chrono_tz::UTC;
        let at = |s: &str| NextTry::At(t(s));
        let mut got = Vec::new();
        for misses in 0..9 {
            got.push(next_try(misses, now, None, tz, &mut rng));
        }
        assert_eq!(
            got,
            vec![
                // Round 1: the pre-calculated 14:27 missed, then 14:37, then 15:00.
                at("2026-11-24T14:37:00Z"),
                at("2026-11-24T15:00:00Z"),
                // Round 2 starts the next day...
                at("2026-11-25T14:27:00Z"),
                at("2026-11-24T14:37:00Z"),
                at("2026-11-24T15:00:00Z"),
                // ...round 3 the day after...
                at("2026-11-25T14:27:00Z"),
                at("2026-11-24T14:37:00Z"),
                at("2026-11-24T15:00:00Z"),
                // ...and its third miss, the ninth try, ends it.
                NextTry::RoundsExhausted,
            ]
        );
    }

    fn window(days: u32) -> SendWindow {
        SendWindow {
            start: t("2026-11-20T00:00:00Z"),
            days,
            hours: chrono::NaiveTime::from_hms_opt(9, 0, 0)
                .zip(chrono::NaiveTime::from_hms_opt(17, 0, 0)),
            weekdays: vec![1, 2, 3, 4, 5],
            time_zone: "Europe/Paris".into(),
            recipient_time_zone: false,
        }
    }

    #[test]
    fn the_next_round_is_the_next_working_day_within_the_opening_hours() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        // Friday 14:27 UTC -> Monday within 08:00-16:00 UTC (09:00-17:00 Paris).
        let next = next_try(
            2,
            t("2026-11-20T14:27:00Z"),
            Some(&window(5)),
            chrono_tz::Europe::Paris,
            &mut rng,
        );
        let NextTry::At(next) = next else {
            panic!("a try, got {next:?}")
        };
        assert!(
            next >= t("2026-11-23T08:00:00Z") && next < t("2026-11-23T16:00:00Z"),
            "{next}"
        );
    }

    #[test]
    fn no_round_after_the_campaign_ends() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        // A one-day campaign on Friday: no next day within it.
        let window = window(1);
        let friday = t("2026-11-20T14:27:00Z");
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            next_try(2, friday, Some(&window), paris, &mut rng),
            NextTry::CampaignOver
        );
        // The tries within a round still happen.
        assert_eq!(
            next_try(0, friday, Some(&window), paris, &mut rng),
            NextTry::At(t("2026-11-20T14:37:00Z"))
        );
    }
}
