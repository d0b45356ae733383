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
            let ch = connection.create_channel().await?;
            topology.declare(&ch).await?;
            let _ = ch.close(200, "topology declared".into()).await;
            Ok::<_, QueueError>(connection)
        };
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| QueueError::Timeout(CONNECT_TIMEOUT))??;
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
