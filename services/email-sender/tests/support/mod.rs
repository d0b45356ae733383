//! Helpers for the e-mail sender's tests: a real SMTP server (Debian's aiosmtpd) as a child
//! process, throwaway certificates, and a parser for what the server printed.

// Each test file uses its own share of these helpers.
#![allow(dead_code)]

pub mod aiosmtpd;
pub mod fleet;
pub mod jobs;
pub mod mail;
pub mod tls_cert;
