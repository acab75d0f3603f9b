//! RabbitMQ as a team without Brdo would set it up for an exchange that
//! must not lose a message: a durable quorum queue (Raft-replicated, its
//! log fsynced before a confirm), persistent messages (delivery mode 2)
//! and publisher confirms. Each publisher has its own connection and
//! channel and waits for its message's confirm before publishing again.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};

use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

use crate::load::Publish;
use crate::reach::SetupError;

const BROKER: &str = "rabbitmq";

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

fn broker_error(what: &'static str) -> impl FnOnce(lapin::Error) -> SetupError {
    move |e| SetupError::Broker {
        broker: BROKER,
        what,
        why: e.to_string(),
    }
}

/// The queue this run publishes to, and the connection that made it (and
/// deletes it at the end).
pub struct Rabbit {
    admin: Connection,
    channel: Channel,
    queue: String,
}

/// One publisher: a connection and a channel in confirm mode.
pub struct RabbitPublisher {
    connection: Connection,
    channel: Channel,
    queue: String,
}

async fn connect(url: &str) -> Result<Connection, SetupError> {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(broker_error("connecting"))
}

impl Rabbit {
    /// Declares a fresh durable quorum queue for this run.
    pub async fn setup(url: &str) -> Result<Self, SetupError> {
        let admin = connect(url).await?;
        let channel = admin
            .create_channel()
            .await
            .map_err(broker_error("opening a channel"))?;
        let queue = format!("peer-bench-{}", std::process::id());
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue.as_str().into(), durable, arguments)
            .await
            .map_err(broker_error("declaring the quorum queue"))?;
        Ok(Self {
            admin,
            channel,
            queue,
        })
    }

    /// A publisher with a connection of its own.
    pub async fn publisher(&self, url: &str) -> Result<RabbitPublisher, SetupError> {
        let connection = connect(url).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(broker_error("opening a channel"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker_error("turning on publisher confirms"))?;
        Ok(RabbitPublisher {
            connection,
            channel,
            queue: self.queue.clone(),
        })
    }

    /// Deletes the queue and its messages.
    pub async fn teardown(self) -> Result<(), SetupError> {
        self.channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .map_err(broker_error("deleting the queue"))?;
        let _ = self.admin.close(200, "done".into()).await;
        Ok(())
    }
}

impl RabbitPublisher {
    /// Closes the publisher's connection.
    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}

impl Publish for RabbitPublisher {
    async fn publish(&mut self, body: &[u8]) -> Result<(), String> {
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(PERSISTENT),
            )
            .await
            .map_err(|_| "publish".to_owned())?
            .await
            .map_err(|_| "confirm".to_owned())?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            // Returned as unroutable: the queue is gone.
            Confirmation::Ack(Some(_)) => Err("returned".into()),
            Confirmation::Nack(_) => Err("nack".into()),
            Confirmation::NotRequested => Err("not_confirmed".into()),
        }
    }
}
