//! How the SMTP connection is secured: the `SMTP_TLS` setting and the rustls parameters
//! lettre gets from it.

use crate::EmailConfig;
use anyhow::Context;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use std::fmt;
use std::str::FromStr;

/// `SMTP_TLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or network (and the simulator).
    None,
    /// Upgrade with STARTTLS, and refuse to go on when the relay cannot (no downgrade).
    StartTls,
    /// TLS from the first byte (implicit TLS, "SMTPS", port 465).
    Tls,
}

impl SmtpTls {
    /// The customary port of each mode; the plain default is the simulator's.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 12525,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

impl fmt::Display for SmtpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("expected none, starttls or tls")]
pub struct InvalidSmtpTls;

impl FromStr for SmtpTls {
    type Err = InvalidSmtpTls;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            _ => Err(InvalidSmtpTls),
        }
    }
}

/// lettre's TLS mode for this configuration: the public roots (webpki-roots), plus
/// `SMTP_TLS_CA_FILE` when given, checked against `SMTP_HOST`.
pub(crate) fn lettre_tls(cfg: &EmailConfig) -> anyhow::Result<Tls> {
    let mode: fn(TlsParameters) -> Tls = match cfg.smtp_tls {
        SmtpTls::None => return Ok(Tls::None),
        SmtpTls::StartTls => Tls::Required,
        SmtpTls::Tls => Tls::Wrapper,
    };
    let mut params = TlsParameters::builder(cfg.smtp_host.clone());
    if let Some(path) = &cfg.smtp_tls_ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading SMTP_TLS_CA_FILE {}", path.display()))?;
        let cert = Certificate::from_pem(&pem).with_context(|| {
            format!(
                "SMTP_TLS_CA_FILE {} is not a PEM certificate",
                path.display()
            )
        })?;
        params = params.add_root_certificate(cert);
    }
    if cfg.smtp_tls_accept_invalid_certs {
        tracing::warn!(
            "SMTP_TLS_ACCEPT_INVALID_CERTS is set: the relay's certificate is not checked; \
             this is for tests only"
        );
        params = params.dangerous_accept_invalid_certs(true);
    }
    let params = params
        .build_rustls()
        .context("building the SMTP TLS configuration")?;
    Ok(mode(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_modes_and_nothing_else() {
        assert_eq!("none".parse::<SmtpTls>().ok(), Some(SmtpTls::None));
        assert_eq!(
            " STARTTLS ".parse::<SmtpTls>().ok(),
            Some(SmtpTls::StartTls)
        );
        assert_eq!("tls".parse::<SmtpTls>().ok(), Some(SmtpTls::Tls));
        assert!("ssl".parse::<SmtpTls>().is_err());
        for mode in [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Tls] {
            assert_eq!(mode.to_string().parse::<SmtpTls>().ok(), Some(mode));
        }
    }
}
