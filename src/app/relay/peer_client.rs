//! The mTLS client this gateway speaks to one peer with (SPEC §11): it
//! presents `gateway.crt`, trusts that peer's `ca` and nothing else, and
//! accepts the server certificate only if it carries
//! `urn:brdo:gateway:<peer id>` (checked during the handshake, so a
//! connection to anything else never carries a byte of a message).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use brdo_tools::client::{Client, ClientError, ClientResponse, Protocol, tls_config};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use futures_util::StreamExt as _;

use crate::blobs::BlobReader;
use crate::config::Config;
use crate::domain::PartnerId;
use crate::policy::file::Peer;
use crate::tls::{Identity, PeerCert};

/// Why a call to a peer failed. The text names the kind of failure only
/// (it goes into peer state and the operators' view): no content, no
/// secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// The peer's files or address are unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// Connecting, the handshake, or the exchange failed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No answer within `request_timeout_secs`.
    #[error("timed out")]
    Timeout,
    /// The peer answered something other than success.
    #[error("answered {status} {code}")]
    Answered {
        /// HTTP status.
        status: u16,
        /// The problem code, if any.
        code: String,
    },
    /// The peer's answer does not hold (a receipt that fails to verify).
    #[error("bad answer: {0}")]
    BadAnswer(String),
}

/// The most of a peer's answer the relay reads: receipts for at most 64
/// recipients (a few hundred bytes each) fit many times over; a larger
/// answer is refused unread (a peer must not make the origin hold an
/// endless body in memory).
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A client bound to one peer.
#[derive(Debug)]
pub struct PeerClient {
    client: Client,
    timeout: Duration,
    /// The same TLS settings, for streamed uploads on connections of their own.
    tls: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    host: String,
}

/// The least rate an attachment upload is allowed beyond the request
/// timeout, in bytes per second: an upload of `size` bytes may take
/// `request_timeout_secs + size / UPLOAD_RATE` seconds.
const UPLOAD_RATE: u64 = 256 * 1024;

/// How long an upload of `size` bytes may take after a request timeout
/// of `timeout`, saturating (an operator's huge timeout must not
/// overflow: `Duration`'s `+` panics).
fn upload_time(timeout: Duration, size: u64) -> Duration {
    timeout.saturating_add(Duration::from_secs(size / UPLOAD_RATE))
}

/// The largest answer read from a peer's upload endpoint.
const UPLOAD_ANSWER_LIMIT: usize = 64 * 1024;

impl PeerClient {
    /// Builds the client for `peer` from this gateway's certificate.
    pub async fn new(config: &Config, peer: &Peer) -> Result<Self, PeerError> {
        let (host, addr) = resolve(&peer.url).await?;
        let mut tls = tls_config(&config.tls.cert, &config.tls.key, &peer.ca, Protocol::Http1)
            .map_err(|e| PeerError::Config(e.to_string()))?;
        let verifier = GatewayVerifier::new(&peer.ca, peer.id.clone())?;
        tls.dangerous().set_certificate_verifier(Arc::new(verifier));
        Ok(Self {
            client: Client::new(tls.clone(), addr, &host, Protocol::Http1)
                .with_response_limit(MAX_ANSWER_BYTES),
            timeout: Duration::from_secs(config.federation.request_timeout_secs.max(1)),
            tls: Arc::new(tls),
            addr,
            host,
        })
    }

    /// The longest an upload of `size` bytes may take.
    pub fn upload_time(&self, size: u64) -> Duration {
        upload_time(self.timeout, size)
    }

    /// Streams an attachment's `size` bytes from `reader` to the peer
    /// (`POST /v1/federation/attachments`, SPEC §11) on a connection of its
    /// own, never holding more than a chunk; the peer's answer
    /// (`{"id", "sha256", "size"}`) as JSON.
    pub async fn upload(
        &self,
        content_type: &str,
        size: u64,
        reader: BlobReader,
    ) -> Result<serde_json::Value, PeerError> {
        let limit = self.upload_time(size);
        let (status, body) = tokio::time::timeout(limit, self.stream(content_type, size, reader))
            .await
            .map_err(|_| PeerError::Timeout)??;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if (200..300).contains(&status) {
            Ok(json)
        } else {
            Err(PeerError::Answered {
                status,
                code: problem_code(&json),
            })
        }
    }

    /// One streamed request; the status and the (bounded) answer.
    async fn stream(
        &self,
        content_type: &str,
        size: u64,
        reader: BlobReader,
    ) -> Result<(u16, bytes::Bytes), PeerError> {
        let fail = |e: String| PeerError::Unreachable(e);
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| fail(format!("connection failed: {e}")))?;
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| PeerError::Config(format!("the url's host: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("connection failed: {e}")))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let chunks = reader.into_stream().map(|c| {
            c.map(http_body::Frame::data)
                .map_err(|e| std::io::Error::other(e.to_string()))
        });
        let req = hyper::Request::post(UPLOAD_PATH)
            .header(hyper::header::HOST, self.host.as_str())
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(hyper::header::CONTENT_LENGTH, size)
            .body(http_body_util::StreamBody::new(chunks))
            .map_err(|e| PeerError::Config(e.to_string()))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
            resp.into_body(),
            UPLOAD_ANSWER_LIMIT,
        ))
        .await
        .map_err(|e| PeerError::BadAnswer(format!("the upload's answer: {e}")))?
        .to_bytes();
        Ok((status, body))
    }

    /// POSTs a JSON document; a `2xx` answer's body as JSON, anything else
    /// an error.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, PeerError> {
        self.post_bytes(path, body.to_string().into_bytes()).await
    }

    /// [`PeerClient::post`] with the document already serialized (a
    /// batch is put together from its documents' bytes).
    pub async fn post_bytes(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, PeerError> {
        let headers = [("content-type", "application/json")];
        let sent = tokio::time::timeout(
            self.timeout,
            self.client
                .request(axum::http::Method::POST, path, &headers, Some(body)),
        )
        .await;
        let resp: ClientResponse = match sent {
            Err(_) => {
                self.client.disconnect().await;
                return Err(PeerError::Timeout);
            }
            Ok(Err(e @ ClientError::TooLarge(_))) => {
                return Err(PeerError::BadAnswer(e.to_string()));
            }
            Ok(Err(e)) => return Err(PeerError::Unreachable(e.to_string())),
            Ok(Ok(r)) => r,
        };
        let json = resp.json();
        if (200..300).contains(&resp.status) {
            Ok(json)
        } else {
            Err(PeerError::Answered {
                status: resp.status,
                code: problem_code(&json),
            })
        }
    }
}

/// Where a peer takes the bytes of a relayed attachment.
const UPLOAD_PATH: &str = "/v1/federation/attachments";

/// The problem code of a peer's refusal (at most 64 characters of it).
pub(super) fn problem_code(json: &serde_json::Value) -> String {
    // A problem code is a word of [a-z_]; anything else the peer put there
    // stays out of last_error, the log and the audit record.
    json["code"]
        .as_str()
        .filter(|c| {
            !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .unwrap_or("(no problem code)")
        .to_owned()
}

/// The host of `https://HOST:PORT` and an address for it.
async fn resolve(url: &str) -> Result<(String, SocketAddr), PeerError> {
    let authority = url
        .strip_prefix("https://")
        .ok_or_else(|| PeerError::Config("the url is not https://".into()))?
        .trim_end_matches('/');
    let host = match authority.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => return Err(PeerError::Config("the url names no port".into())),
    };
    let addr = tokio::net::lookup_host(authority)
        .await
        .map_err(|e| PeerError::Unreachable(format!("resolving the host: {e}")))?
        .next()
        .ok_or_else(|| PeerError::Unreachable("the host resolves to no address".into()))?;
    Ok((host, addr))
}

/// WebPKI verification against the peer's CA alone, plus the peer's
/// gateway identity in the leaf.
#[derive(Debug)]
struct GatewayVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    peer: PartnerId,
}

impl GatewayVerifier {
    fn new(ca: &Path, peer: PartnerId) -> Result<Self, PeerError> {
        let bad = |e: String| PeerError::Config(format!("{}: {e}", ca.display()));
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| bad(e.to_string()))? {
            roots
                .add(c.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad(e.to_string()))?;
        Ok(Self { inner, peer })
    }
}

impl ServerCertVerifier for GatewayVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match PeerCert::from_der(end_entity.as_ref()).identity {
            Ok(Identity::Gateway(g)) if g == self.peer => Ok(verified),
            _ => Err(rustls::Error::General(format!(
                "the server certificate does not name urn:brdo:gateway:{}",
                self.peer
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upload's time grows with its size and never overflows, whatever
    /// timeout the operator set.
    #[test]
    fn upload_time_saturates() {
        let ten = Duration::from_secs(10);
        assert_eq!(upload_time(ten, 0), ten);
        assert_eq!(upload_time(ten, 10 * UPLOAD_RATE), Duration::from_secs(20));
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(upload_time(huge, u64::MAX), Duration::MAX);
        assert!(upload_time(huge, 0) >= huge);
    }
}
