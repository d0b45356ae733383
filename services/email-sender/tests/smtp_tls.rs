//! SMTP over TLS to Debian's aiosmtpd with a throwaway self-signed certificate: STARTTLS
//! (through a whole campaign), implicit TLS, certificate checking, and AUTH after STARTTLS.

mod support;

use pushfleet_config::Secret;
use pushfleet_email_sender::{EmailConfig, SmtpProvider, SmtpTls};
use pushfleet_sender::{Provider, ProviderError};
use pushfleet_testkit::{Service, TestApp};
use support::aiosmtpd::Aiosmtpd;
use support::fleet::{send_campaign, TIMEOUT};
use support::jobs::{email_config, message, send_job};
use support::tls_cert::TlsCert;

/// TLS to `host` (which the certificate names), trusting `cert` as a private CA.
fn tls_config(base: EmailConfig, server: &Aiosmtpd, mode: SmtpTls, cert: &TlsCert) -> EmailConfig {
    EmailConfig {
        smtp_host: "localhost".into(),
        smtp_port: server.port,
        smtp_tls: mode,
        smtp_tls_ca_file: Some(cert.cert.clone()),
        ..base
    }
}

async fn send_one(cfg: &EmailConfig) -> Result<(), ProviderError> {
    let provider = SmtpProvider::new(cfg).expect("provider");
    provider
        .send(&send_job(1, "ada@example.org"), &message())
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_over_starttls_to_a_relay_that_requires_it() {
    let cert = TlsCert::self_signed().await;
    // aiosmtpd refuses MAIL before STARTTLS ("530 Must issue a STARTTLS command first"), so
    // every message it prints arrived over TLS.
    let server = Aiosmtpd::starttls(&cert).await;
    let app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let cfg = tls_config(app.email_config(), &server, SmtpTls::StartTls, &cert);
    let n = 4;
    let (_, view) = send_campaign(&app, cfg, n).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let mails = server.wait_for_messages(n, TIMEOUT).await;
    assert_eq!(server.message_count(), n);
    for mail in &mails {
        assert!(mail.header("List-Unsubscribe").contains("/u/"));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn plain_text_is_refused_by_a_relay_that_requires_tls() {
    let cert = TlsCert::self_signed().await;
    let server = Aiosmtpd::starttls(&cert).await;
    let cfg = EmailConfig {
        smtp_port: server.port,
        smtp_tls: SmtpTls::None,
        ..email_config()
    };
    // 530 is about our session, not the message: transient, so a fixed configuration
    // still gets the job through.
    match send_one(&cfg).await {
        Err(ProviderError::Transient { reason, .. }) => assert!(reason.contains("530"), "{reason}"),
        other => panic!("expected the relay's 530, got {other:?}"),
    }
    assert_eq!(server.message_count(), 0);
}

#[tokio::test]
async fn implicit_tls() {
    let cert = TlsCert::self_signed().await;
    let server = Aiosmtpd::implicit_tls(&cert).await;
    let cfg = tls_config(email_config(), &server, SmtpTls::Tls, &cert);
    send_one(&cfg).await.expect("sent over implicit TLS");
    let mails = server.wait_for_messages(1, TIMEOUT).await;
    assert_eq!(mails[0].header("Subject"), "Hello Ada");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let cert = TlsCert::self_signed().await;
    let server = Aiosmtpd::starttls(&cert).await;
    let cfg = EmailConfig {
        smtp_tls_ca_file: None,
        ..tls_config(email_config(), &server, SmtpTls::StartTls, &cert)
    };
    let result = send_one(&cfg).await;
    assert!(
        matches!(&result, Err(ProviderError::Transient { reason, .. }) if reason.contains("certificate")),
        "the self-signed certificate is not among the public roots: {result:?}"
    );
    assert_eq!(server.message_count(), 0);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    // Trusted, but issued for another host than the one we connect to.
    let cert = TlsCert::self_signed_for("DNS:relay.pushfleet.test").await;
    let server = Aiosmtpd::starttls(&cert).await;
    let cfg = tls_config(email_config(), &server, SmtpTls::StartTls, &cert);
    let result = send_one(&cfg).await;
    assert!(
        matches!(&result, Err(ProviderError::Transient { reason, .. }) if reason.contains("certificate")),
        "{result:?}"
    );
    assert_eq!(server.message_count(), 0);
}

#[tokio::test]
async fn accept_invalid_certs_is_an_escape_hatch_for_tests() {
    let cert = TlsCert::self_signed().await;
    let server = Aiosmtpd::starttls(&cert).await;
    let cfg = EmailConfig {
        smtp_tls_ca_file: None,
        smtp_tls_accept_invalid_certs: true,
        ..tls_config(email_config(), &server, SmtpTls::StartTls, &cert)
    };
    send_one(&cfg)
        .await
        .expect("sent without checking the certificate");
    server.wait_for_messages(1, TIMEOUT).await;
}

#[tokio::test]
async fn auth_after_starttls() {
    let cert = TlsCert::self_signed().await;
    let server = Aiosmtpd::with_auth(&cert, "pf-user", "pf-pass").await;
    let with_password = |password: &str| EmailConfig {
        smtp_username: Some("pf-user".into()),
        smtp_password: Some(Secret::new(password.into())),
        ..tls_config(email_config(), &server, SmtpTls::StartTls, &cert)
    };

    // Refused credentials fail every message alike until fixed: transient, like HTTP 401.
    match send_one(&with_password("wrong")).await {
        Err(ProviderError::Transient { reason, .. }) => assert!(reason.contains("535"), "{reason}"),
        other => panic!("expected 535 authentication failed, got {other:?}"),
    }
    let anonymous = tls_config(email_config(), &server, SmtpTls::StartTls, &cert);
    match send_one(&anonymous).await {
        Err(ProviderError::Transient { reason, .. }) => assert!(reason.contains("530"), "{reason}"),
        other => panic!("expected 530 authentication required, got {other:?}"),
    }
    assert_eq!(server.message_count(), 0);

    send_one(&with_password("pf-pass"))
        .await
        .expect("sent with the right credentials");
    let mails = server.wait_for_messages(1, TIMEOUT).await;
    assert_eq!(mails[0].header("To"), "\"Ada Lovelace\" <ada@example.org>");
}
