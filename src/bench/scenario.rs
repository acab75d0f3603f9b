//! The operations a benchmark worker repeats.
//!
//! Every operation goes through [`brdo_tools::client::Client`], the same mTLS
//! client the demo and the tests use, presenting a partner certificate
//! from the PKI directory. Against the baseline echo server (which answers
//! 202 to anything) the same requests are sent, but answers are not
//! parsed: ids are a fixed placeholder.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::Method;
use serde_json::json;

use super::options::{Parties, Scenario};
use brdo_tools::client::{Client, ClientError, ClientResponse, Protocol, tls_config};

/// The officer every benchmark request names.
const OFFICER: (&str, &str) = ("brdo-officer", "bench.officer");
/// The justification for reads.
const JUSTIFICATION: (&str, &str) = ("brdo-justification", "brdo bench: load test");
/// The id used against the echo server, which never issues one.
const ECHO_ID: &str = "00000000-0000-7000-8000-000000000000";
/// Inbox entries taken per long-poll in `receive`.
const INBOX_BATCH: u32 = 64;

/// Where and as whom the workers connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server's mTLS address.
    pub addr: SocketAddr,
    /// PKI directory with `ca.crt` and `partner-<ID>.crt`/`.key`.
    pub pki: PathBuf,
    /// Sender and recipients.
    pub parties: Parties,
    /// The server is the echo baseline: do not parse answers.
    pub echo: bool,
    /// For the relay scenario: where submitters note when each message
    /// was submitted.
    pub sent: Option<Arc<SentLog>>,
}

/// When each message was submitted, by id (the relay scenario's start
/// times).
#[derive(Debug, Default)]
pub struct SentLog(pub std::sync::Mutex<Vec<(String, tokio::time::Instant)>>);

/// Why an operation failed, as a report key: `"<status> <problem code>"`
/// for an HTTP answer, `"connect"` or `"transport"` otherwise.
pub type Failure = String;

impl Endpoint {
    fn client(&self, partner: &str, fresh_handshakes: bool) -> Result<Client, ClientError> {
        let dir = &self.pki;
        let stem = format!("partner-{partner}");
        let mut cfg = tls_config(
            &dir.join(format!("{stem}.crt")),
            &dir.join(format!("{stem}.key")),
            &dir.join("ca.crt"),
            Protocol::Http1,
        )?;
        if fresh_handshakes {
            // The gateway refuses resumption anyway; disabling it here too
            // keeps the client from even offering it.
            cfg.resumption = rustls::client::Resumption::disabled();
        }
        Ok(Client::new(cfg, self.addr, "localhost", Protocol::Http1))
    }

    fn receiver(&self) -> &str {
        self.parties
            .recipients
            .first()
            .map_or("RS-MOI", String::as_str)
    }

    /// A submittable message of `body_bytes` to the recipients, as bytes.
    pub fn message(&self, body_bytes: usize) -> Vec<u8> {
        let body: String = "Benchmark report text. "
            .chars()
            .cycle()
            .take(body_bytes)
            .collect();
        json!({
            "recipients": self.parties.recipients,
            "subject": "brdo bench",
            "body": body,
            "content_type": "text/plain",
            "label": {"classification": "EU_RESTRICTED", "handling_codes": ["H0"]},
            "evaluation": {"scheme": "EU-4x4", "source": "B", "information": "2"},
            "purpose": "investigation",
            "personal_data": {"subjects": ["suspect"], "special_categories": [], "minors": false},
            "case_ref": "BENCH-1",
            "retention_days": 30
        })
        .to_string()
        .into_bytes()
    }
}

/// The shared inbox of `receive`: one long-poll fetches a batch, the
/// workers take ids from it, so no two read the same message.
#[derive(Debug, Default)]
pub struct InboxQueue {
    state: tokio::sync::Mutex<(Option<String>, VecDeque<String>)>,
}

/// One worker's state.
pub enum Worker {
    /// Submit on a kept connection.
    Submit {
        /// The sender's client.
        client: Client,
        /// The request body.
        body: Vec<u8>,
    },
    /// Submit and note each message's id and start time.
    Tracked {
        /// The sender's client.
        client: Client,
        /// The request body.
        body: Vec<u8>,
        /// The log.
        sent: Arc<SentLog>,
    },
    /// Take a message from the shared inbox, read it, ack it.
    Receive {
        /// The receiver's client.
        client: Client,
        /// The shared inbox batch.
        inbox: Arc<InboxQueue>,
        /// Whether answers are parsed.
        echo: bool,
    },
    /// A new connection per request.
    Handshake {
        /// The sender's client, resumption disabled.
        client: Client,
    },
    /// The blend of [`Scenario::Mixed`].
    Mixed(Box<Mixed>),
}

/// State of a mixed worker.
pub struct Mixed {
    sender: Client,
    receiver: Client,
    body: Vec<u8>,
    to_read: VecDeque<String>,
    to_ack: VecDeque<String>,
    last: Option<String>,
    step: usize,
    echo: bool,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Worker")
    }
}

/// Builds the workers of a scenario (and nothing connects yet).
pub fn workers(
    scenario: Scenario,
    concurrency: usize,
    body_bytes: usize,
    ep: &Endpoint,
) -> Result<Vec<Worker>, ClientError> {
    let inbox = Arc::new(InboxQueue::default());
    let sender = ep.parties.sender.as_str();
    (0..concurrency)
        .map(|_| {
            Ok(match scenario {
                Scenario::Submit => Worker::Submit {
                    client: ep.client(sender, false)?,
                    body: ep.message(body_bytes),
                },
                Scenario::Relay => match &ep.sent {
                    Some(sent) => Worker::Tracked {
                        client: ep.client(sender, false)?,
                        body: ep.message(body_bytes),
                        sent: sent.clone(),
                    },
                    None => Worker::Submit {
                        client: ep.client(sender, false)?,
                        body: ep.message(body_bytes),
                    },
                },
                Scenario::Receive => Worker::Receive {
                    client: ep.client(ep.receiver(), false)?,
                    inbox: inbox.clone(),
                    echo: ep.echo,
                },
                Scenario::Handshake => Worker::Handshake {
                    client: ep.client(sender, true)?,
                },
                Scenario::Mixed => Worker::Mixed(Box::new(Mixed {
                    sender: ep.client(sender, false)?,
                    receiver: ep.client(ep.receiver(), false)?,
                    body: ep.message(body_bytes),
                    to_read: VecDeque::new(),
                    to_ack: VecDeque::new(),
                    last: None,
                    step: 0,
                    echo: ep.echo,
                })),
            })
        })
        .collect()
}

/// The feeders that keep `receive` supplied: as many submitting workers as
/// receiving ones, not measured.
pub fn feeders(
    scenario: Scenario,
    concurrency: usize,
    body_bytes: usize,
    ep: &Endpoint,
) -> Result<Vec<Worker>, ClientError> {
    match scenario {
        Scenario::Receive => workers(Scenario::Submit, concurrency, body_bytes, ep),
        _ => Ok(Vec::new()),
    }
}

/// Turns a response into success or a report key.
fn check(resp: Result<ClientResponse, ClientError>) -> Result<ClientResponse, Failure> {
    match resp {
        Err(ClientError::Connect(_)) | Err(ClientError::File { .. }) => Err("connect".into()),
        Err(_) => Err("transport".into()),
        Ok(r) if (200..300).contains(&r.status) => Ok(r),
        Ok(r) => {
            let code = r.json()["code"].as_str().unwrap_or("-").to_owned();
            Err(format!("{} {code}", r.status))
        }
    }
}

fn id_of(resp: &ClientResponse, echo: bool) -> Result<String, Failure> {
    if echo {
        return Ok(ECHO_ID.to_owned());
    }
    resp.json()["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "answer without id".to_owned())
}

async fn submit(client: &Client, body: &[u8]) -> Result<ClientResponse, Failure> {
    check(
        client
            .request(
                Method::POST,
                "/v1/messages",
                &[OFFICER, ("content-type", "application/json")],
                Some(body.to_vec()),
            )
            .await,
    )
}

async fn read(client: &Client, id: &str) -> Result<(), Failure> {
    check(
        client
            .get(&format!("/v1/messages/{id}"), &[OFFICER, JUSTIFICATION])
            .await,
    )
    .map(drop)
}

async fn ack(client: &Client, id: &str) -> Result<(), Failure> {
    check(
        client
            .request(
                Method::POST,
                &format!("/v1/messages/{id}/ack"),
                &[OFFICER, ("content-type", "application/json")],
                None,
            )
            .await,
    )
    .map(drop)
}

impl InboxQueue {
    /// The next message id, long-polling for a batch when none is queued.
    async fn next(&self, client: &Client, echo: bool) -> Result<String, Failure> {
        let mut guard = self.state.lock().await;
        if let Some(id) = guard.1.pop_front() {
            return Ok(id);
        }
        let path = match &guard.0 {
            Some(c) => format!("/v1/inbox?limit={INBOX_BATCH}&wait=5&after={c}"),
            None => format!("/v1/inbox?limit={INBOX_BATCH}&wait=5"),
        };
        let resp = check(client.get(&path, &[OFFICER]).await)?;
        if echo {
            return Ok(ECHO_ID.to_owned());
        }
        let v = resp.json();
        if let Some(next) = v["next"].as_str() {
            guard.0 = Some(next.to_owned());
        }
        let ids = v["messages"].as_array().into_iter().flatten();
        guard
            .1
            .extend(ids.filter_map(|m| m["id"].as_str().map(str::to_owned)));
        guard.1.pop_front().ok_or_else(|| "inbox empty".to_owned())
    }
}

impl Worker {
    /// Runs one operation.
    pub async fn op(&mut self) -> Result<(), Failure> {
        match self {
            Self::Submit { client, body } => submit(client, body).await.map(drop),
            Self::Tracked { client, body, sent } => {
                let started = tokio::time::Instant::now();
                let resp = submit(client, body).await?;
                let id = id_of(&resp, false)?;
                if let Ok(mut log) = sent.0.lock() {
                    log.push((id, started));
                }
                Ok(())
            }
            Self::Receive {
                client,
                inbox,
                echo,
            } => {
                let id = inbox.next(client, *echo).await?;
                read(client, &id).await?;
                ack(client, &id).await
            }
            Self::Handshake { client } => {
                client.disconnect().await;
                check(client.get("/v1/inbox?limit=1", &[OFFICER]).await).map(drop)
            }
            Self::Mixed(m) => m.op().await,
        }
    }
}

impl Mixed {
    async fn op(&mut self) -> Result<(), Failure> {
        let step = self.step % 10;
        self.step += 1;
        match step {
            4 | 5 if !self.to_read.is_empty() => {
                let id = self.to_read.pop_front().unwrap_or_default();
                read(&self.receiver, &id).await?;
                self.to_ack.push_back(id);
                Ok(())
            }
            6 | 7 if !self.to_ack.is_empty() => {
                let id = self.to_ack.pop_front().unwrap_or_default();
                ack(&self.receiver, &id).await
            }
            8 if self.last.is_some() => {
                let id = self.last.clone().unwrap_or_default();
                check(
                    self.sender
                        .get(&format!("/v1/messages/{id}/status"), &[OFFICER])
                        .await,
                )
                .map(drop)
            }
            9 => check(self.receiver.get("/v1/inbox?limit=20", &[OFFICER]).await).map(drop),
            // Steps 0–3, and any step whose message is missing because an
            // earlier submit failed.
            _ => {
                let resp = submit(&self.sender, &self.body).await?;
                let id = id_of(&resp, self.echo)?;
                self.last = Some(id.clone());
                self.to_read.push_back(id);
                Ok(())
            }
        }
    }
}
