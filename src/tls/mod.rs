//! Mutual TLS: the server configuration, peer identity, and the accept loop.
//!
//! `config` builds a rustls `ServerConfig` (ring provider only, TLS 1.3 by
//! default, client certificate required and checked against the client CA
//! and CRL, no session resumption so no handshake skips the verifier).
//! `identity` reads the Brdo identity from a peer certificate's SAN URI.
//! `accept` runs the listener: connection limit, handshake timeout, and one
//! hyper connection per TLS stream with the peer's identity attached.

pub mod accept;
pub mod anchors;
pub mod config;
pub mod connections;
pub mod crl;
pub mod error;
pub mod identity;
pub mod known_cert;
mod revocation;

pub use accept::{ConnectionInfo, ServeOptions, serve};
pub use anchors::{AnchorId, PolicyTrust};
pub use config::{TlsError, TlsMaterial, TlsState, is_ecdhe_aead};
pub use connections::Connections;
pub use identity::{Identity, IdentityError, PeerCert};
pub use known_cert::KnownCert;
