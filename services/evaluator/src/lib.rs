//! The evaluator: turns an evaluate job into delivery rows and send jobs.
//!
//! 1. Expand: in one transaction, write one delivery row per (member, channel) with a unique
//!    key, and move the campaign to `sending`. A repeated job writes nothing new.
//! 2. Publish: in batches, lock unpublished rows, publish their send jobs with pipelined
//!    confirms, mark them published and commit. A crash between publish and commit leaves
//!    the rows unpublished; the redelivered evaluate job publishes them again, flagged as
//!    possible duplicates so the senders check before sending.
//! 3. Ack the evaluate job.
//!
//! It also processes segment CSV uploads (`segment-imports`), in batches, beside the
//! evaluate jobs.

mod config;
mod evaluate;
mod segment_import;

pub use config::EvaluatorConfig;
pub use evaluate::run;
pub use segment_import::{import_upload, ImportOutcome, SegmentImportJob, IMPORT_BATCH};
