//! Domain types shared by every pushfleet service.
//!
//! Values that come from outside (API requests, CSV rows, provider answers) are parsed into
//! these newtypes once, at the edge; code behind the edge can then rely on them being valid.

pub mod adaptive_card;
pub mod bot_reply_text;
mod bounded_json;
mod channel;
pub mod criteria;
pub mod csv_records;
mod delivery_state;
mod email_address;
mod input_text;
mod input_time;
mod jobs;
pub mod permission_label;
mod phone_number;
mod provider_status;
mod recipient;
pub mod segment_rows;
mod send_message;
mod send_window;
mod sms_segment_count;
pub mod survey;
pub mod survey_card;
mod teams_activity;
mod template;
pub mod tracked_links;
pub mod tracking_token;
pub mod twilio_signature;
pub mod unsubscribe_token;

pub use bounded_json::BoundedJson;
pub use channel::{Channel, UnknownChannel};
pub use delivery_state::DeliveryState;
pub use email_address::{EmailAddress, InvalidEmail};
pub use input_text::{check_json_text, check_text, Text, TextError};
pub use input_time::{check_date, OutOfRange, Timestamp};
pub use jobs::{BotReplyJob, EvaluateJob, SendJob};
pub use permission_label::PermissionLabel;
pub use phone_number::{InvalidPhoneNumber, PhoneNumber};
pub use provider_status::{ProviderStatus, TwilioStatus, UnknownProviderStatus};
pub use recipient::{Recipient, TeamsConversationRef};
pub use send_message::{SendMessage, DEFAULT_SEND_JOBS_PER_MESSAGE};
pub use send_window::{parse_time_zone, SendWindow, SendWindowError};
pub use sms_segment_count::{sms_encoding, sms_segments, SmsEncoding};
pub use teams_activity::teams_activity;
pub use template::{
    Placeholder, RenderedMessage, TeamsFormat, Template, TemplateError, KNOWN_PLACEHOLDERS,
};
pub use tracked_links::TrackedLinks;
pub use tracking_token::{TrackedEvent, TrackingKey, TrackingToken};
