//! Retiring the unbounded dead-letter queue of earlier releases (`{ns}.dead-letters`): once
//! `Topology::declare` has unbound it from `{ns}.dlx`, its messages are moved into the
//! bounded `{ns}.dead-letters.v2` and it is deleted when empty. Runs in the background of
//! whichever services start while it exists; several at once share the work (each message
//! is taken by one, and acked only after the broker confirmed its copy, so a crash leaves a
//! message in both queues, never in neither).

use crate::{QueueError, Topology};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions,
};
use lapin::Connection;
use std::time::Duration;

/// Messages moved per confirm round.
const BATCH: usize = 500;
/// Every broker call here is bounded: the connection may die under it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Moves every message of the legacy queue to the current one, then deletes the legacy
/// queue if it is empty. Returns how many messages were moved.
#[tracing::instrument(skip_all, fields(namespace = topology.namespace()))]
pub async fn retire_legacy_dead_letters(
    conn: &Connection,
    topology: &Topology,
) -> Result<u64, QueueError> {
    let legacy = topology.legacy_dead_letter_queue();
    let target = topology.dead_letter_queue();
    let ch = bounded(conn.create_channel()).await?;
    bounded(ch.confirm_select(ConfirmSelectOptions::default())).await?;
    let mut moved = 0u64;
    loop {
        let mut last_tag = None;
        let mut confirms = Vec::with_capacity(BATCH);
        while confirms.len() < BATCH {
            let Some(got) =
                bounded(ch.basic_get(legacy.clone().into(), BasicGetOptions::default())).await?
            else {
                break;
            };
            let delivery = got.delivery;
            let confirm = bounded(ch.basic_publish(
                "".into(),
                target.clone().into(),
                BasicPublishOptions::default(),
                &delivery.data,
                delivery.properties.clone(),
            ))
            .await?;
            confirms.push(confirm);
            last_tag = Some(delivery.delivery_tag);
        }
        let Some(tag) = last_tag else { break };
        let n = confirms.len() as u64;
        for confirm in confirms {
            if !bounded(confirm).await?.is_ack() {
                return Err(QueueError::Nacked { index: 0 });
            }
        }
        bounded(ch.basic_ack(tag, BasicAckOptions { multiple: true })).await?;
        moved += n;
    }
    let options = QueueDeleteOptions {
        if_empty: true,
        ..Default::default()
    };
    bounded(ch.queue_delete(legacy.clone().into(), options)).await?;
    let _ = bounded(ch.close(200, "retired".into())).await;
    tracing::info!(%legacy, %target, "legacy dead-letter queue moved and deleted");
    Ok(moved)
}

async fn bounded<T>(
    call: impl std::future::Future<Output = lapin::Result<T>>,
) -> Result<T, QueueError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| QueueError::Timeout(CALL_TIMEOUT))?
        .map_err(QueueError::from)
}
