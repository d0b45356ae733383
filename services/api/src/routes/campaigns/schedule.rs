//! When a campaign sends: now, later (at most six days ahead, seed 001), or spread over a
//! window of days and working hours.

use crate::ApiError;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use pushfleet_domain::{SendWindow, SendWindowError, Text};
use serde::Deserialize;
use utoipa::ToSchema;

/// "Send later": at most this far ahead (seed 001: "a delay of up to 6 days").
pub const MAX_SEND_LATER_DAYS: i64 = 6;

/// A broadcast's start: not more than six days ahead. (A start in the past is now.)
pub fn check_send_later(start_at: DateTime<Utc>) -> Result<(), ApiError> {
    if start_at > Utc::now() + Duration::days(MAX_SEND_LATER_DAYS) {
        return Err(ApiError::invalid(
            "start_at",
            format!("a campaign is sent at most {MAX_SEND_LATER_DAYS} days ahead"),
        ));
    }
    Ok(())
}

/// When sends may go out: for `days` days from the start day, within working hours on the
/// given weekdays, in the company's time zone or each recipient's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendWindowInput {
    /// Days the sends spread over, counted from the start day (1 to 31).
    pub days: u32,
    /// Daily working hours in local time; all day when absent.
    pub working_hours: Option<WorkingHours>,
    /// ISO weekdays sends may go out on (1 = Monday ... 7 = Sunday); every day when empty.
    #[serde(default)]
    pub weekdays: Vec<u32>,
    /// The company's IANA time zone, e.g. `Europe/Paris`; UTC when absent.
    pub time_zone: Option<Text>,
    /// Follow each recipient's own time zone (people without one use the company's).
    #[serde(default)]
    pub recipient_time_zone: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// `HH:MM` or `HH:MM:SS`.
    pub from: Text,
    /// `HH:MM` or `HH:MM:SS`, after `from`.
    pub to: Text,
}

fn parse_clock(field: &str, value: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(value, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(value, "%H:%M"))
        .map_err(|_| ApiError::invalid(field, format!("`{value}` is not a time of day (HH:MM)")))
}

impl SendWindowInput {
    pub(super) fn into_window(self, start: DateTime<Utc>) -> Result<SendWindow, ApiError> {
        let hours = match &self.working_hours {
            Some(h) => Some((
                parse_clock("send_window.working_hours.from", &h.from)?,
                parse_clock("send_window.working_hours.to", &h.to)?,
            )),
            None => None,
        };
        let window = SendWindow {
            start,
            days: self.days,
            hours,
            weekdays: self.weekdays,
            time_zone: self
                .time_zone
                .map_or_else(|| "UTC".into(), Text::into_string),
            recipient_time_zone: self.recipient_time_zone,
        };
        window.validate().map_err(|e| {
            let field = match e {
                SendWindowError::UnknownTimeZone(_) => "send_window.time_zone",
                SendWindowError::EmptyHours => "send_window.working_hours",
                SendWindowError::Days => "send_window.days",
                SendWindowError::Weekday(_) => "send_window.weekdays",
            };
            ApiError::invalid(field, e.to_string())
        })?;
        Ok(window)
    }
}
