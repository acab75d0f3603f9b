//! Brdo's development PKI: the CA that issues every certificate the gateway trusts.
//!
//! Partner systems, data-protection officers and operators authenticate to the
//! gateway with client certificates whose single SAN URI
//! (`urn:brdo:partner:<ID>`, `urn:brdo:dpo:<ID>`, `urn:brdo:operator:<NAME>`)
//! is their identity. This module creates the CA directory ([`init`]), issues
//! client certificates as PEM and PKCS#12 ([`issue`]), revokes them through
//! `ca.crl` ([`revoke`]) and lists them ([`list`]). It never prints; the CLI
//! wrapper does. All files are written atomically with owner-only keys
//! ([`write_atomic`]).
//!
//! Layout of the directory:
//!
//! | file | content |
//! | --- | --- |
//! | `ca.crt`, `ca.key` | self-signed ECDSA P-256 CA |
//! | `ca.crl` | CRL signed by the CA |
//! | `gateway.crt`, `gateway.key` | the gateway's TLS server certificate |
//! | `audit-signing.key`, `audit-signing.pub` | Ed25519 key pair for the audit log |
//! | `envelope-signing.key`, `envelope-signing.pub` | Ed25519 key pair for label bindings |
//! | `<role>-<id>.crt/.key/.p12` | client certificates |
//! | `superseded/<stem>-<serial>.crt` | certificates replaced by a reissue, kept so they can be revoked |
//! | `pki.log` | one JSON line per revocation and CRL refresh (forced revocations marked) |
//! | `.lock` | locked (`flock`) by every command that writes the directory |

mod ca;
mod crl;
mod error;
mod files;
mod init;
mod issue;
mod list;
mod p12;
mod pem;
mod serial;
mod subject;
mod validity;

pub use crl::{
    CrlInfo, Refreshed, RevocationReason, Revoked, refresh_crl, revoke, revoke_serial,
    revoked_serials, verified_crl_info, verified_revoked_serials,
};
pub use error::PkiError;
pub use files::{DirLock, KEY_MODE, LOCK_FILE, LOG_FILE, PUBLIC_MODE, write_atomic};
pub use init::{
    DEFAULT_HOSTS, InitClient, InitReport, current_gateway_id, ensure_envelope_key, init,
    init_gateway, random_password, renew_gateway,
};
pub use issue::{Issued, issue, issue_custom};
pub use list::{CertInfo, CertStatus, EXPIRY_WARNING_DAYS, cert_san_uris, list, read_cert_info};
pub use serial::serial_hex;
pub use subject::Subject;

/// The CA certificate; the gateway's trust anchor for client certificates.
pub(crate) const CA_CERT_FILE: &str = "ca.crt";
/// The CA private key; its presence marks a directory as initialised.
pub const CA_KEY_FILE: &str = "ca.key";
/// The CA's CRL, which the gateway watches and reloads.
pub const CA_CRL_FILE: &str = "ca.crl";
/// The gateway's TLS server certificate.
pub(crate) const GATEWAY_CERT_FILE: &str = "gateway.crt";
/// The gateway's TLS server key.
pub(crate) const GATEWAY_KEY_FILE: &str = "gateway.key";
/// The Ed25519 key the gateway signs audit records with.
///
/// PEM "PRIVATE KEY" in PKCS#8 v2 form (with the public key), as produced by
/// `ring`: load it with `ring::signature::Ed25519KeyPair::from_pkcs8`.
/// OpenSSL 3.0 cannot parse this form; verifiers only need [`AUDIT_PUB_FILE`].
pub(crate) const AUDIT_KEY_FILE: &str = "audit-signing.key";
/// The public half, for verifying the audit log elsewhere.
pub(crate) const AUDIT_PUB_FILE: &str = "audit-signing.pub";
/// The Ed25519 key the gateway signs label bindings with (`binding` on
/// every delivered message).
pub const ENVELOPE_KEY_FILE: &str = "envelope-signing.key";
/// Its public half, published beside [`AUDIT_PUB_FILE`] for recipients.
pub const ENVELOPE_PUB_FILE: &str = "envelope-signing.pub";
/// Subdirectory where reissued subjects' old certificates are kept for revocation.
pub(crate) const SUPERSEDED_DIR: &str = "superseded";
