use pushfleet_domain::{Channel, RenderedMessage, SendJob};
use pushfleet_ratelimit::Quota;
use std::future::Future;
use std::time::Duration;

/// What a provider answered when it accepted a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id for the message (Twilio sid, activity id, Message-ID).
    pub provider_message_id: Option<String>,
    /// Teams: the 1:1 conversation created for this send, to store on the person.
    pub new_teams_conversation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth trying again later: a timeout, a 5xx, a 429.
    #[error("transient: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Will fail the same way every time: an invalid number, a removed bot, a 4xx.
    #[error("permanent: {reason}")]
    Permanent { reason: String },
    /// The recipient is not available now (Teams presence): nothing was sent; try later on
    /// the availability schedule.
    #[error("recipient unavailable: {reason}")]
    Unavailable { reason: String },
}

impl ProviderError {
    pub fn transient(reason: impl Into<String>) -> Self {
        ProviderError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        ProviderError::Permanent {
            reason: reason.into(),
        }
    }
}

/// One provider client. Implementations must send `job.idempotency_key()` with every call
/// where the protocol has room for it.
pub trait Provider: Send + Sync + 'static {
    const CHANNEL: Channel;

    fn send(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> impl Future<Output = Result<Receipt, ProviderError>> + Send;

    /// How many slots of the account quota this message uses: what the provider counts
    /// against it (SMS: its segments; Teams: its Connector calls).
    fn cost(&self, _job: &SendJob, _message: &RenderedMessage) -> u32 {
        1
    }

    /// The SMS segments this message is billed as, recorded with a sent delivery; `None`
    /// for channels that are not billed by segment.
    fn segments(&self, _message: &RenderedMessage) -> Option<u32> {
        None
    }

    /// A second, narrower limit for this message's destination (Teams: per conversation),
    /// as a Redis key and its quota.
    fn recipient_limit(&self, _job: &SendJob) -> Option<(String, Quota)> {
        None
    }

    /// How long one `send` may take before the sender abandons it (a transient failure,
    /// one attempt spent). A provider whose `send` may first wait its turn for a
    /// connection (SMTP) allows for that wait, so waiting spends no attempt.
    fn call_timeout(&self) -> Duration {
        DEFAULT_CALL_TIMEOUT
    }
}

/// [`Provider::call_timeout`] unless the provider says otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
