//! NATS JetStream as a team without Brdo would set it up: a stream with
//! file storage and one replica (a single server), each publisher on its
//! own connection waiting for the stream's PubAck before publishing again.
//!
//! The PubAck says the server has written the message to its file, not
//! that the file is synced: by default JetStream fsyncs every 2 minutes
//! (`sync_interval`, configurable on the server from nats-server 2.10 on,
//! `always` to sync before every acknowledgement). A client cannot ask for
//! it per stream.

use async_nats::jetstream::{self, stream};

use crate::load::Publish;
use crate::reach::SetupError;

const BROKER: &str = "nats";

fn broker_error<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> SetupError {
    move |e| SetupError::Broker {
        broker: BROKER,
        what,
        why: e.to_string(),
    }
}

/// The stream this run publishes to.
pub struct Nats {
    context: jetstream::Context,
    stream: String,
    subject: String,
}

/// One publisher: a connection of its own and the stream's subject.
pub struct NatsPublisher {
    context: jetstream::Context,
    subject: String,
}

async fn connect(url: &str) -> Result<jetstream::Context, SetupError> {
    let client = async_nats::connect(url)
        .await
        .map_err(broker_error("connecting"))?;
    Ok(jetstream::new(client))
}

impl Nats {
    /// Creates a fresh stream with file storage for this run.
    pub async fn setup(url: &str) -> Result<Self, SetupError> {
        let context = connect(url).await?;
        let stream = format!("PEER_BENCH_{}", std::process::id());
        let subject = format!("peer-bench.{}", std::process::id());
        context
            .create_stream(stream::Config {
                name: stream.clone(),
                subjects: vec![subject.clone()],
                storage: stream::StorageType::File,
                num_replicas: 1,
                ..stream::Config::default()
            })
            .await
            .map_err(broker_error("creating the stream (is JetStream on?)"))?;
        Ok(Self {
            context,
            stream,
            subject,
        })
    }

    /// A publisher with a connection of its own.
    pub async fn publisher(&self, url: &str) -> Result<NatsPublisher, SetupError> {
        Ok(NatsPublisher {
            context: connect(url).await?,
            subject: self.subject.clone(),
        })
    }

    /// Deletes the stream and its messages.
    pub async fn teardown(self) -> Result<(), SetupError> {
        self.context
            .delete_stream(&self.stream)
            .await
            .map_err(broker_error("deleting the stream"))?;
        Ok(())
    }
}

impl Publish for NatsPublisher {
    async fn publish(&mut self, body: &[u8]) -> Result<(), String> {
        let ack = self
            .context
            .publish(self.subject.clone(), bytes::Bytes::copy_from_slice(body))
            .await
            .map_err(|_| "publish".to_owned())?;
        ack.await.map_err(|_| "puback".to_owned())?;
        Ok(())
    }
}
