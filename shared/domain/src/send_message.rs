//! What a send queue carries: one [`SendJob`] as a JSON object, or several of one channel as a
//! JSON array. One broker message per delivery was the fleet's main per-delivery cost, so the
//! evaluator and the scheduler publish up to `SEND_JOBS_PER_MESSAGE` jobs per message; single
//! jobs remain for retries, hand-backs and messages published by earlier releases.

use crate::SendJob;
use std::borrow::Borrow;

/// How many send jobs the evaluator and the scheduler put in one message unless
/// `SEND_JOBS_PER_MESSAGE` says otherwise.
pub const DEFAULT_SEND_JOBS_PER_MESSAGE: usize = 50;

/// A decoded send-queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendMessage {
    One(Box<SendJob>),
    Batch(Vec<SendJob>),
}

impl SendMessage {
    /// Decodes either shape. The first byte decides, so a batch is parsed once, not tried as
    /// a job first.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => serde_json::from_slice(bytes).map(SendMessage::Batch),
            _ => serde_json::from_slice(bytes).map(SendMessage::One),
        }
    }

    /// The payload for `jobs`: the job itself when there is one (what every release
    /// understands), else the array.
    pub fn encode<J: Borrow<SendJob>>(jobs: &[J]) -> Result<Vec<u8>, serde_json::Error> {
        match jobs {
            [job] => serde_json::to_vec(job.borrow()),
            jobs => serde_json::to_vec(&jobs.iter().map(Borrow::borrow).collect::<Vec<&SendJob>>()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64) -> SendJob {
        // Built from JSON so that fields added to `SendJob` later need no change here.
        serde_json::from_value(serde_json::json!({
            "delivery_id": id,
            "campaign_id": "6f1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
            "channel": "sms",
            "template_id": "7a1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
            "recipient": {"first_name": "Ada", "last_name": "Lovelace", "phone": "+15550000001"},
            "attempt": 1,
        }))
        .expect("a send job")
    }

    #[test]
    fn one_job_travels_as_itself_and_several_as_an_array() {
        let one = SendMessage::encode(&[job(1)]).expect("encode");
        assert_eq!(one.first(), Some(&b'{'));
        assert_eq!(
            SendMessage::from_json(&one).ok(),
            Some(SendMessage::One(Box::new(job(1))))
        );

        let jobs = vec![job(1), job(2), job(3)];
        let batch = SendMessage::encode(&jobs).expect("encode");
        assert_eq!(batch.first(), Some(&b'['));
        assert_eq!(
            SendMessage::from_json(&batch).ok(),
            Some(SendMessage::Batch(jobs))
        );
        let padded = [b" \n".as_slice(), &batch].concat();
        assert!(matches!(
            SendMessage::from_json(&padded),
            Ok(SendMessage::Batch(_))
        ));
    }

    #[test]
    fn a_batch_with_one_bad_job_is_malformed_as_a_whole() {
        let mut value = serde_json::to_value(vec![job(1), job(2)]).expect("json");
        value[1]["delivery_id"] = serde_json::json!("two");
        let bytes = serde_json::to_vec(&value).expect("bytes");
        assert!(SendMessage::from_json(&bytes).is_err());
        assert!(SendMessage::from_json(b"not json").is_err());
        assert!(SendMessage::from_json(b"").is_err());
    }
}
