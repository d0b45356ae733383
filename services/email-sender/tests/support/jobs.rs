//! A send job and a message for calling a provider directly, without the fleet.

use pushfleet_domain::{Channel, EmailAddress, Recipient, RenderedMessage, SendJob};

pub fn send_job(delivery_id: i64, email: &str) -> SendJob {
    SendJob {
        delivery_id,
        campaign_id: uuid::Uuid::new_v4(),
        channel: Channel::Email,
        template_id: uuid::Uuid::new_v4(),
        person_id: None,
        recipient: Recipient {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: Some(EmailAddress::parse(email).expect("a valid test address")),
            phone: None,
            teams: None,
            properties: Default::default(),
        },
        attempt: 1,
        maybe_duplicate: false,
        wait_for_availability: false,
        link_key: None,
    }
}

pub fn message() -> RenderedMessage {
    RenderedMessage {
        subject: "Hello Ada".into(),
        text: "Hello Ada, plain.".into(),
        html: Some("<p>Hello <b>Ada</b></p>".into()),
        ..Default::default()
    }
}

/// Defaults (plain SMTP) around a sender config read from the environment; for provider
/// calls that never touch the fleet's servers.
pub fn email_config() -> pushfleet_email_sender::EmailConfig {
    let sender = pushfleet_sender::SenderConfig::from_env(Channel::Email, 0)
        .expect("sender defaults from the environment");
    pushfleet_email_sender::EmailConfig {
        from: "Pushfleet <noreply@pushfleet.test>".into(),
        smtp_pool_size: 1,
        ..pushfleet_email_sender::EmailConfig::defaults(sender)
    }
}
