//! A small mTLS HTTP client presenting a Brdo certificate.
//!
//! The demo's scripted exchange, the integration tests and the benchmark
//! all talk to the gateway the way a partner system would: rustls with the
//! ring provider, a client certificate from a PKI directory, HTTP/1.1
//! keep-alive or HTTP/2. One `Client` holds at most one connection and
//! reconnects when the server closes it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A certificate or key file.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Connecting or the TLS handshake failed.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The HTTP exchange failed (includes a TLS alert sent after the
    /// handshake, which is how TLS 1.3 servers reject client certificates).
    #[error("request failed: {0}")]
    Http(String),
    /// The answer's body is larger than the client's limit
    /// ([`Client::with_response_limit`]); the connection is dropped
    /// without reading the rest.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// The HTTP version to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 (negotiated with ALPN).
    Http2,
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl ClientResponse {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// At most `limit` bytes of a response's body: a declared length over it
/// is refused before reading, an undeclared one as soon as it passes it.
async fn read_limited(
    resp: hyper::Response<hyper::body::Incoming>,
    limit: usize,
) -> Result<Bytes, ClientError> {
    let declared = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ClientError::TooLarge(limit));
    }
    http_body_util::Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ClientError::TooLarge(limit)
            } else {
                ClientError::Http(e.to_string())
            }
        })
}

/// An mTLS client bound to one gateway address.
pub struct Client {
    tls: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    protocol: Protocol,
    conn: Mutex<Option<Sender>>,
    max_response: Option<usize>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn file_err(path: &Path, message: impl ToString) -> ClientError {
    ClientError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Builds a rustls client config presenting `cert`/`key` and trusting `ca`.
pub fn tls_config(
    cert: &Path,
    key: &Path,
    ca: &Path,
    protocol: Protocol,
) -> Result<rustls::ClientConfig, ClientError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| file_err(ca, e))? {
        roots
            .add(c.map_err(|e| file_err(ca, e))?)
            .map_err(|e| file_err(ca, e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientError::Connect(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key_der)
        .map_err(|e| file_err(key, e))?;
    cfg.alpn_protocols = match protocol {
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
        Protocol::Http2 => vec![b"h2".to_vec()],
    };
    Ok(cfg)
}

impl Client {
    /// A client presenting `DIR/<stem>.crt` and `.key`, trusting `DIR/ca.crt`.
    pub fn from_pki(dir: &Path, stem: &str, addr: SocketAddr) -> Result<Self, ClientError> {
        let cfg = tls_config(
            &dir.join(format!("{stem}.crt")),
            &dir.join(format!("{stem}.key")),
            &dir.join("ca.crt"),
            Protocol::Http1,
        )?;
        Ok(Self::new(cfg, addr, "localhost", Protocol::Http1))
    }

    /// A client from a ready rustls config.
    pub fn new(
        tls: rustls::ClientConfig,
        addr: SocketAddr,
        server_name: &str,
        protocol: Protocol,
    ) -> Self {
        let server_name = ServerName::try_from(server_name.to_owned())
            .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
        Self {
            tls: Arc::new(tls),
            addr,
            server_name,
            protocol,
            conn: Mutex::new(None),
            max_response: None,
        }
    }

    /// The same identity speaking another HTTP version.
    pub fn with_protocol(&self, protocol: Protocol) -> Self {
        let mut cfg = (*self.tls).clone();
        cfg.alpn_protocols = match protocol {
            Protocol::Http1 => vec![b"http/1.1".to_vec()],
            Protocol::Http2 => vec![b"h2".to_vec()],
        };
        Self {
            tls: Arc::new(cfg),
            addr: self.addr,
            server_name: self.server_name.clone(),
            protocol,
            conn: Mutex::new(None),
            max_response: self.max_response,
        }
    }

    /// The same client reading at most `bytes` of an answer's body: a
    /// caller that talks to a server it does not control (the gateway's
    /// relay to a peer) must not hold an endless answer in memory.
    #[must_use]
    pub fn with_response_limit(mut self, bytes: usize) -> Self {
        self.max_response = Some(bytes);
        self
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(self.tls.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let io = TokioIo::new(tls);
        Ok(match self.protocol {
            Protocol::Http1 => {
                let (send, conn) = http1::handshake(io)
                    .await
                    .map_err(|e| ClientError::Http(e.to_string()))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Sender::H1(send)
            }
            Protocol::Http2 => {
                let (send, conn) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| ClientError::Http(e.to_string()))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Sender::H2(send)
            }
        })
    }

    /// Drops the current connection; the next request opens a new one.
    pub async fn disconnect(&self) {
        *self.conn.lock().await = None;
    }

    /// Sends a request on the kept connection (opening one if needed).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<ClientResponse, ClientError> {
        let mut builder = Request::builder().method(method).uri(path);
        if self.protocol == Protocol::Http1 {
            builder = builder.header("host", "localhost");
        }
        let mut req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| ClientError::Http(e.to_string()))?;
            let value = HeaderValue::from_bytes(v.as_bytes())
                .map_err(|e| ClientError::Http(e.to_string()))?;
            req.headers_mut().append(name, value);
        }
        let mut guard = self.conn.lock().await;
        let reusable = match guard.as_mut() {
            Some(Sender::H1(s)) => s.ready().await.is_ok(),
            Some(Sender::H2(s)) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *guard = Some(self.connect().await?);
        }
        let sent = match guard.as_mut() {
            Some(Sender::H1(s)) => s.send_request(req).await,
            Some(Sender::H2(s)) => s.send_request(req).await,
            None => return Err(ClientError::Connect("no connection".into())),
        };
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                *guard = None;
                return Err(ClientError::Http(e.to_string()));
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match self.max_response {
            None => {
                drop(guard);
                resp.into_body()
                    .collect()
                    .await
                    .map_err(|e| ClientError::Http(e.to_string()))?
                    .to_bytes()
            }
            Some(limit) => match read_limited(resp, limit).await {
                Ok(b) => b,
                Err(e) => {
                    // The connection stayed locked while the body was
                    // read; a refused answer drops it, the rest unread.
                    *guard = None;
                    return Err(e);
                }
            },
        };
        Ok(ClientResponse {
            status,
            headers,
            body,
        })
    }

    /// `GET path` with headers.
    pub async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<ClientResponse, ClientError> {
        self.request(Method::GET, path, headers, None).await
    }

    /// `POST path` with a JSON body and headers.
    pub async fn post_json(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<ClientResponse, ClientError> {
        let mut h: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.request(Method::POST, path, &h, Some(body.to_string().into_bytes()))
            .await
    }
}
