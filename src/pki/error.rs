//! The one error type of the `pki` module.

use std::path::PathBuf;

/// Everything that can go wrong while managing the development PKI.
///
/// Each message is a single sentence naming the file or value involved, so the
/// CLI can show it to an operator without any further context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file or directory operation failed; the path tells the operator where to look.
    #[error("could not {action} {}: {error}", path.display())]
    Io {
        /// What was being attempted, e.g. "read" or "create directory".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's explanation.
        error: std::io::Error,
    },

    /// `init` never overwrites an existing CA, because re-keying silently would
    /// invalidate every certificate already handed to partners.
    #[error("{} already exists; refusing to overwrite an existing CA", path.display())]
    AlreadyInitialised {
        /// The existing CA key.
        path: PathBuf,
    },

    /// An identity does not follow the naming rules, so it would not map to a
    /// stable SAN URI and file name.
    #[error("invalid {role} \"{value}\": {rule}")]
    InvalidSubject {
        /// "partner ID", "DPO ID" or "operator name".
        role: &'static str,
        /// The rejected value.
        value: String,
        /// The rule it broke.
        rule: &'static str,
    },

    /// A gateway host name cannot be put into a server certificate.
    #[error("host \"{host}\" is neither an IP address nor a valid DNS name")]
    InvalidHost {
        /// The rejected host.
        host: String,
    },

    /// A file stem would escape the PKI directory or clobber the CA, gateway or audit files.
    #[error(
        "file stem \"{stem}\" is not allowed: use 1-64 characters from A-Z a-z 0-9 . _ - \
         not starting with '.', and none of the reserved names ca, gateway, audit-signing"
    )]
    InvalidFileStem {
        /// The rejected stem.
        stem: String,
    },

    /// A validity period that is empty, inverted or outside what X.509 can encode.
    #[error("invalid validity period: {detail}")]
    InvalidValidity {
        /// Which bound is wrong and why.
        detail: String,
    },

    /// PKCS#12 files carry the private key, so they must never be protected by an empty password.
    #[error("the PKCS#12 password for {stem}.p12 must not be empty")]
    EmptyPassword {
        /// The file stem of the bundle.
        stem: String,
    },

    /// A serial number given on the command line is not hexadecimal.
    #[error("\"{value}\" is not a hexadecimal certificate serial number")]
    InvalidSerial {
        /// The rejected input.
        value: String,
    },

    /// A revocation reason given on the command line is not one of RFC 5280's.
    #[error(
        "unknown revocation reason \"{value}\"; expected one of unspecified, key-compromise, \
         ca-compromise, affiliation-changed, superseded, cessation-of-operation, \
         certificate-hold, privilege-withdrawn"
    )]
    InvalidReason {
        /// The rejected input.
        value: String,
    },

    /// A file (or supplied bytes) could not be decoded as the structure it must hold.
    #[error("{origin} is not a valid {what}: {detail}")]
    Malformed {
        /// The file path, or a description of supplied bytes.
        origin: String,
        /// What it should have been, e.g. "certificate" or "CRL".
        what: &'static str,
        /// The decoder's explanation.
        detail: String,
    },

    /// `ca.key` and `ca.crt` disagree, so anything signed would not chain to the published CA.
    #[error("{} does not hold the private key of the CA certificate {}", key.display(), cert.display())]
    CaKeyMismatch {
        /// The CA key file.
        key: PathBuf,
        /// The CA certificate file.
        cert: PathBuf,
    },

    /// A CRL that the CA did not sign must not be extended, or forged entries would be re-signed.
    #[error("{origin} is not signed by the CA certificate {}", ca.display())]
    BadCrlSignature {
        /// The CRL file or supplied bytes.
        origin: String,
        /// The CA certificate it was checked against.
        ca: PathBuf,
    },

    /// Only certificates this CA's files know may be revoked without
    /// `--force`, to catch typos in serials.
    #[error(
        "serial {serial} does not match any certificate issued in {}; if this CA issued it and \
         its file is gone, revoke it with --force (recorded in pki.log)", dir.display()
    )]
    UnknownSerial {
        /// The serial, normalised to lowercase hex.
        serial: String,
        /// The PKI directory searched.
        dir: PathBuf,
    },

    /// Revoking twice would hide the original revocation time and reason.
    #[error("serial {serial} is already revoked in {}", crl.display())]
    AlreadyRevoked {
        /// The serial, normalised to lowercase hex.
        serial: String,
        /// The CRL that already lists it.
        crl: PathBuf,
    },

    /// The CA key or PKI directory can be read or replaced by another
    /// account; refused rather than changed, the operator decides.
    #[error("{what} {}: {detail}; refusing to use it", path.display())]
    UnsafePermissions {
        /// "PKI directory" or "CA key".
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Owner or mode, and how to fix it.
        detail: String,
    },

    /// A CRL in the directory cannot be extended or refreshed safely.
    #[error("{origin}: {detail}")]
    CrlUnusable {
        /// The CRL file.
        origin: String,
        /// What is wrong with it.
        detail: String,
    },

    /// A key generation, signing or encoding step failed inside a crypto library.
    #[error("could not {action}: {detail}")]
    Crypto {
        /// What was being attempted, e.g. "sign the certificate for partner-AL-CTD".
        action: String,
        /// The library's explanation.
        detail: String,
    },
}

impl PkiError {
    /// Wraps an I/O error with the path and action, which `std::io::Error` lacks.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        error: std::io::Error,
    ) -> Self {
        PkiError::Io {
            action,
            path: path.into(),
            error,
        }
    }

    /// Wraps a crypto-library error with what was being attempted.
    pub(crate) fn crypto(action: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        PkiError::Crypto {
            action: action.into(),
            detail: detail.to_string(),
        }
    }

    /// Describes undecodable content together with where it came from.
    pub(crate) fn malformed(
        origin: impl Into<String>,
        what: &'static str,
        detail: impl std::fmt::Display,
    ) -> Self {
        PkiError::Malformed {
            origin: origin.into(),
            what,
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_or_value() {
        let e = PkiError::io(
            "read",
            "/tmp/x/ca.key",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(e.to_string().starts_with("could not read /tmp/x/ca.key: "));
        let e = PkiError::InvalidSerial { value: "zz".into() };
        assert_eq!(
            e.to_string(),
            "\"zz\" is not a hexadecimal certificate serial number"
        );
        let e = PkiError::malformed("/d/ca.crl", "CRL", "bad tag");
        assert_eq!(e.to_string(), "/d/ca.crl is not a valid CRL: bad tag");
    }
}
