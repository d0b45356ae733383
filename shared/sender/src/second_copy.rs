//! Deciding whether a send job that may be a second copy still has work to do. Copies come
//! from crashes (a message redelivered, a batch re-published by the evaluator or the
//! scheduler), hand-backs and retries; each one reads what is recorded before sending.

use pushfleet_domain::{DeliveryState, SendJob};
use pushfleet_store::DeliveryProgress;

/// Whether a job may be a second copy of one already processed: re-published after a crash
/// (by the evaluator or the scheduler), handed back, or a retry.
pub(crate) fn may_be_a_copy(job: &SendJob) -> bool {
    job.maybe_duplicate || job.attempt > 1
}

/// Whether a job that may be a second copy has nothing left to do: its delivery is final, or
/// this attempt's failure is already recorded (`retrying` with at least this many provider
/// calls: the next attempt belongs to a retry copy in a delay queue, or to the scheduler).
/// A delivery row that is gone has nothing left to do either.
pub(crate) fn already_done(job: &SendJob, recorded: Option<&DeliveryProgress>) -> bool {
    match recorded {
        Some(r) => {
            r.state.is_final() || (r.state == DeliveryState::Retrying && r.attempts >= job.attempt)
        }
        None => {
            tracing::warn!(
                delivery_id = job.delivery_id,
                "delivery row not found; dropping the job"
            );
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(attempt: u32, maybe_duplicate: bool) -> SendJob {
        serde_json::from_value(serde_json::json!({
            "delivery_id": 7,
            "campaign_id": "6f1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
            "channel": "email",
            "template_id": "7a1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
            "recipient": {"first_name": "A", "last_name": "B"},
            "attempt": attempt,
            "maybe_duplicate": maybe_duplicate,
        }))
        .expect("a send job")
    }

    fn at(state: DeliveryState, attempts: u32) -> Option<DeliveryProgress> {
        Some(DeliveryProgress { state, attempts })
    }

    #[test]
    fn only_possible_copies_are_checked() {
        assert!(!may_be_a_copy(&job(1, false)));
        assert!(may_be_a_copy(&job(1, true)));
        assert!(may_be_a_copy(&job(2, false)));
    }

    #[test]
    fn final_states_and_recorded_failures_of_this_attempt_are_done() {
        let first = job(1, true);
        assert!(!already_done(
            &first,
            at(DeliveryState::Pending, 0).as_ref()
        ));
        for state in [
            DeliveryState::Sent,
            DeliveryState::Failed,
            DeliveryState::Dead,
            DeliveryState::Skipped,
        ] {
            assert!(already_done(&first, at(state, 1).as_ref()), "{state:?}");
        }
        // Attempt 1 failed and its retry (attempt 2) is queued: a second copy of attempt 1
        // must not call the provider again...
        assert!(already_done(
            &first,
            at(DeliveryState::Retrying, 1).as_ref()
        ));
        // ...but the retry itself goes ahead.
        assert!(!already_done(
            &job(2, false),
            at(DeliveryState::Retrying, 1).as_ref()
        ));
        // A presence miss is no provider call: the next try (same attempt) goes ahead.
        assert!(!already_done(
            &first,
            at(DeliveryState::Retrying, 0).as_ref()
        ));
        // A delivery that is gone has nothing to send.
        assert!(already_done(&first, None));
    }
}
