//! The From and To mailboxes, as both transports need them.

use anyhow::Context;
use lettre::message::Mailbox;
use pushfleet_domain::SendJob;
use pushfleet_sender::ProviderError;

/// `EMAIL_FROM`, checked once at start.
pub(crate) fn sender_mailbox(from: &str) -> anyhow::Result<Mailbox> {
    from.parse()
        .with_context(|| format!("EMAIL_FROM {from:?} is not a mailbox"))
}

/// The recipient's mailbox, named after the person. A missing or invalid address fails the
/// same way on every attempt, hence permanent.
pub(crate) fn recipient_mailbox(job: &SendJob) -> Result<Mailbox, ProviderError> {
    let address = job
        .recipient
        .email
        .as_ref()
        .ok_or_else(|| ProviderError::permanent("recipient has no e-mail address"))?;
    let name = format!("{} {}", job.recipient.first_name, job.recipient.last_name)
        .trim()
        .to_owned();
    Ok(Mailbox::new(
        (!name.is_empty()).then_some(name),
        address
            .as_str()
            .parse()
            .map_err(|e| ProviderError::permanent(format!("invalid recipient address: {e}")))?,
    ))
}
