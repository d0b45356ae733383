#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("AMQP error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused message {index} of the batch (nack)")]
    Nacked { index: usize },
    #[error("message {index} of the batch was returned as unroutable")]
    Unroutable { index: usize },
    #[error("no answer from the broker within {0:?}")]
    Timeout(std::time::Duration),
}
