use crate::{Publisher, QueueError, Topology};
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Consumer};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to RabbitMQ with the fleet's topology declared on it.
pub struct Broker {
    connection: Connection,
    topology: Topology,
}

impl Broker {
    /// Connects and declares the topology. Bounded: a handshake with a broker that is still
    /// booting can stall, and a reconnect loop must retry rather than wait forever.
    #[tracing::instrument(skip_all, fields(namespace = topology.namespace()))]
    pub async fn connect(url: &str, topology: Topology) -> Result<Self, QueueError> {
        let connect = async {
            let connection = Connection::connect(url, ConnectionProperties::default()).await?;
            let legacy = topology.declare(&connection).await?;
            Ok::<_, QueueError>((connection, legacy))
        };
        let (connection, legacy) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| QueueError::Timeout(CONNECT_TIMEOUT))??;
        if legacy {
            spawn_legacy_retirement(url.to_owned(), topology.clone());
        }
        Ok(Self {
            connection,
            topology,
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// A publisher on its own confirm-mode channel.
    pub async fn publisher(&self, confirm_window: usize) -> Result<Publisher, QueueError> {
        let ch = self.connection.create_channel().await?;
        Publisher::new(ch, confirm_window).await
    }

    /// A consumer with manual acks and at most `prefetch` unacknowledged messages.
    pub async fn consumer(
        &self,
        queue: &str,
        tag: &str,
        prefetch: u16,
    ) -> Result<Consumer, QueueError> {
        let ch = self.connection.create_channel().await?;
        ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let consumer = ch
            .basic_consume(
                queue.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(consumer)
    }

    /// Closes the connection; bounded like every lapin call made after the connection may
    /// have died.
    pub async fn close(&self) {
        let close = self.connection.close(200, "shutdown".into());
        let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
    }
}

/// Moves the legacy dead-letter queue's messages on a connection of its own, off the start
/// path: a large backlog must not hold up (or time out) a service's start.
fn spawn_legacy_retirement(url: String, topology: Topology) {
    tokio::spawn(async move {
        let connect = Connection::connect(&url, ConnectionProperties::default());
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return tracing::warn!(error = %e, "legacy dead letters: cannot connect; the next start retries")
            }
            Err(_) => {
                return tracing::warn!(
                    "legacy dead letters: connect timed out; the next start retries"
                )
            }
        };
        match crate::legacy_dead_letters::retire_legacy_dead_letters(&conn, &topology).await {
            Ok(moved) => tracing::info!(moved, "legacy dead-letter queue retired"),
            Err(e) => {
                tracing::warn!(error = %e, "legacy dead letters not fully moved; the next start continues")
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.close(200, "done".into())).await;
    });
}
