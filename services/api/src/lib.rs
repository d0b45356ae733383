//! The admin-facing HTTP API: people, audiences, templates, campaigns and their progress,
//! with an OpenAPI document at `/openapi.json`; and the providers' webhooks (Twilio status
//! callbacks and inbound messages, the bot's messaging endpoint) and the e-mail unsubscribe
//! link.

mod api_error;
mod bot_auth;
mod config;
mod csv_response;
mod extract;
mod http_server;
pub mod idempotency;
pub mod identity;
mod jwks;
mod openapi;
mod people_rows;
mod routes;
mod server;
mod tracking;

pub use api_error::ApiError;
pub use config::{ApiConfig, BotAuthConfig};
pub use openapi::{document as openapi_document, ApiDoc};
pub use server::{create_api_key, migrate, serve, serve_on, RunningApi};
