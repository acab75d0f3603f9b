//! A certificate as the operators' views list it (admin API, metrics, the
//! expiry warning). It lives with TLS because the gateway's own server
//! certificate is one, read from the live TLS state.

use serde::Serialize;
use time::OffsetDateTime;

use crate::pki::EXPIRY_WARNING_DAYS;

/// A certificate the gateway knows: its own, one issued in the PKI
/// directory, or one a client presented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownCert {
    /// The SAN identity (or `gateway (server)`).
    pub identity: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// `server`, `issued` or `seen`.
    pub source: &'static str,
    /// The file, for issued certificates.
    pub file: Option<String>,
    /// On the CRL in force.
    pub revoked: bool,
}

impl KnownCert {
    /// Days until expiry (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> f64 {
        (self.not_after - now).as_seconds_f64() / 86_400.0
    }

    /// `valid`, `expiring`, `expired` or `revoked`.
    pub fn status(&self, now: OffsetDateTime) -> &'static str {
        let days = self.days_left(now);
        if self.revoked {
            "revoked"
        } else if days <= 0.0 {
            "expired"
        } else if days <= EXPIRY_WARNING_DAYS as f64 {
            "expiring"
        } else {
            "valid"
        }
    }
}
