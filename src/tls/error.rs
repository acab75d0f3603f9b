//! Why TLS material cannot be used, naming the file: one error for the
//! server configuration and the trust anchors, so a start or a reload
//! reports either the same way.

use std::path::{Path, PathBuf};

/// Why TLS material cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("{what} {path}: {message}")]
    File {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// rustls refused the combination.
    #[error("TLS configuration: {0}")]
    Rustls(String),
    /// The CRL is signed by the CA but must not be put in force.
    #[error("CRL {path}: {refusal}")]
    CrlRefused {
        /// The CRL file.
        path: PathBuf,
        /// Why not.
        refusal: crate::tls::crl::CrlRefusal,
        /// What the refused list says, for the audit record.
        offered: Box<crate::pki::CrlInfo>,
    },
}

/// A [`TlsError::File`] for `path`, which should hold `what`.
pub(super) fn file_err(what: &'static str, path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        what,
        path: path.to_owned(),
        message: message.to_string(),
    }
}
