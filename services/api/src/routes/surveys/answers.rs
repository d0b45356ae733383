//! A survey's answers as they come back through the bot's messaging endpoint: the card's
//! submit (`value.action == "survey_answer"`, or an invoke's `value.action.data`) carries
//! the survey and campaign ids and every input's value under its question's id. They are
//! checked against the questions whole: a refused submit stores nothing, and the bot says
//! why. One answer per person per campaign; a second submit replaces the first.

use crate::routes::teams_messages::{reply_job, Activity, Handled};
use crate::routes::AppState;
use crate::ApiError;
use pushfleet_domain::bot_reply_text::{
    survey_refused_reply, SURVEY_NOT_SENT_REPLY, SURVEY_SAVED_REPLY, UNKNOWN_USER_REPLY,
};
use pushfleet_domain::survey::check_answers;
use pushfleet_queue::Topology;
use pushfleet_store::OwedReply;
use serde_json::{Map, Value};
use uuid::Uuid;

fn id_in(data: &Map<String, Value>, key: &'static str) -> Result<Uuid, ApiError> {
    data.get(key)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::invalid(format!("value.{key}"), "must be an id"))
}

/// Handles a survey submit from `person` (resolved from the activity's sender).
#[tracing::instrument(skip_all, fields(campaign_id))]
pub(crate) async fn survey_answer(
    state: &AppState,
    activity: &Activity,
    data: &Map<String, Value>,
    person: Option<Uuid>,
    invoke: bool,
) -> Result<Handled, ApiError> {
    let campaign_id = id_in(data, "campaign_id")?;
    let survey_id = id_in(data, "survey_id")?;
    tracing::Span::current().record("campaign_id", tracing::field::display(campaign_id));
    let Some(person) = person else {
        return refuse(
            state,
            activity,
            invoke,
            "unknown_user",
            UNKNOWN_USER_REPLY.into(),
        )
        .await;
    };
    let context = state
        .store
        .survey_answer_context(campaign_id, person)
        .await?;
    if context.survey_id != survey_id {
        return Err(ApiError::invalid(
            "value.survey_id",
            "is not the survey this campaign sent",
        ));
    }
    if !context.recipient {
        return refuse(
            state,
            activity,
            invoke,
            "not_sent",
            SURVEY_NOT_SENT_REPLY.into(),
        )
        .await;
    }
    let answers = match check_answers(&context.questions, data) {
        Ok(answers) => answers,
        Err(problem) => {
            tracing::info!(%problem, "survey answer refused");
            let text = survey_refused_reply(&problem);
            return refuse(state, activity, invoke, "answer_refused", text).await;
        }
    };
    let job = (!invoke)
        .then(|| reply_job(activity, SURVEY_SAVED_REPLY))
        .flatten();
    let owed = job.as_ref().map(|job| OwedReply {
        job,
        routing_key: Topology::BOT_REPLY_KEY,
    });
    let (reply_queued, replaced) = state
        .store
        .record_survey_answer(campaign_id, survey_id, person, &answers, owed)
        .await?;
    metrics::counter!("pushfleet_survey_answers_total", "replaced" => replaced.to_string())
        .increment(1);
    Ok(Handled {
        result: if replaced {
            "answer_updated"
        } else {
            "answer_saved"
        },
        reply: Some(SURVEY_SAVED_REPLY.to_owned()),
        reply_queued,
    })
}

/// Answers without storing anything: an invoke in its response, a message with a posted
/// reply.
async fn refuse(
    state: &AppState,
    activity: &Activity,
    invoke: bool,
    result: &'static str,
    text: String,
) -> Result<Handled, ApiError> {
    let mut reply_queued = false;
    if !invoke {
        if let Some(job) = reply_job(activity, &text) {
            reply_queued = state
                .store
                .queue_bot_reply(OwedReply {
                    job: &job,
                    routing_key: Topology::BOT_REPLY_KEY,
                })
                .await?;
        }
    }
    Ok(Handled {
        result,
        reply: Some(text),
        reply_queued,
    })
}
