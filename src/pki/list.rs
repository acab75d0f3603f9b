//! An inventory of the certificates in the PKI directory and their state.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use super::ca::parse_cert;
use super::serial::serial_hex;
use super::{CA_CRL_FILE, GATEWAY_CERT_FILE, PkiError, crl, files, pem};

/// Certificates with fewer days left than this are flagged, so they are reissued in time.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Whether a certificate would be accepted by the gateway now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Within its validity period and not revoked.
    Valid,
    /// Valid, but fewer than 30 days remain: time to reissue.
    ExpiringSoon {
        /// Whole days remaining (0 on the last day).
        days_left: u32,
    },
    /// Past its `not_after`.
    Expired,
    /// Listed in `ca.crl`; takes precedence over expiry because it is the stronger statement.
    Revoked,
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertStatus::Valid => f.write_str("valid"),
            CertStatus::ExpiringSoon { days_left } => write!(f, "expiring ({days_left} days left)"),
            CertStatus::Expired => f.write_str("expired"),
            CertStatus::Revoked => f.write_str("revoked"),
        }
    }
}

/// One row of `brdo pki list`, so an operator sees who holds which certificate and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The file name, e.g. `partner-AL-CTD.crt`.
    pub file: String,
    /// The SAN URI; `(none)`, several joined by `, `, or `gateway (server)` for the server certificate.
    pub identity: String,
    /// The serial in the form `revoke` accepts.
    pub serial_hex: String,
    /// Expiry as encoded in the certificate.
    pub not_after: OffsetDateTime,
    /// State at the `now` passed in.
    pub status: CertStatus,
}

/// Lists every `*.crt` in `dir` except `ca.crt`, sorted by file name, with its status at `now`.
///
/// Why: operators need to see which partner certificates exist, which expire
/// soon and which are revoked, without reaching for openssl.
pub fn list(dir: &Path, now: OffsetDateTime) -> Result<Vec<CertInfo>, PkiError> {
    let revoked = crl::revoked_serials_in_file(&dir.join(CA_CRL_FILE))?;
    files::cert_files(dir)?
        .into_iter()
        .map(|path| {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = files::read(&path)?;
            read_cert_info_from(&file, &bytes, &path.display().to_string(), &revoked, now)
        })
        .collect()
}

/// Describes one certificate (PEM or DER) given the set of revoked serials.
///
/// Why public: the gateway's admin views show the same information for a
/// presented client certificate without going through the directory.
pub fn read_cert_info(
    file: &str,
    cert_pem_or_der: &[u8],
    revoked: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<CertInfo, PkiError> {
    read_cert_info_from(file, cert_pem_or_der, file, revoked, now)
}

/// The SAN URIs of a certificate (PEM or DER), in order.
///
/// Why: the gateway identifies a peer by these, and must refuse a certificate
/// with none or several; parsing them in one place keeps that rule consistent.
pub fn cert_san_uris(cert_pem_or_der: &[u8]) -> Result<Vec<String>, PkiError> {
    let origin = "the supplied certificate";
    let der = pem::der_from_pem_or_der(cert_pem_or_der, "CERTIFICATE", origin, "certificate")?;
    let cert = parse_cert(&der, origin, "certificate")?;
    san_uris(&cert, origin)
}

fn read_cert_info_from(
    file: &str,
    bytes: &[u8],
    origin: &str,
    revoked: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<CertInfo, PkiError> {
    let der = pem::der_from_pem_or_der(bytes, "CERTIFICATE", origin, "certificate")?;
    let cert = parse_cert(&der, origin, "certificate")?;
    let identity = if file == GATEWAY_CERT_FILE {
        "gateway (server)".to_owned()
    } else {
        let uris = san_uris(&cert, origin)?;
        if uris.is_empty() {
            "(none)".to_owned()
        } else {
            uris.join(", ")
        }
    };
    let serial_hex = serial_hex(cert.raw_serial());
    let not_after = cert.validity().not_after.to_datetime();
    Ok(CertInfo {
        file: file.to_owned(),
        identity,
        status: status(&serial_hex, not_after, revoked, now),
        serial_hex,
        not_after,
    })
}

fn status(
    serial_hex: &str,
    not_after: OffsetDateTime,
    revoked: &BTreeSet<String>,
    now: OffsetDateTime,
) -> CertStatus {
    if revoked.contains(serial_hex) {
        return CertStatus::Revoked;
    }
    let left = not_after - now;
    if left <= Duration::ZERO {
        CertStatus::Expired
    } else if left < Duration::days(EXPIRY_WARNING_DAYS) {
        CertStatus::ExpiringSoon {
            days_left: u32::try_from(left.whole_days()).unwrap_or(0),
        }
    } else {
        CertStatus::Valid
    }
}

fn san_uris(
    cert: &x509_parser::certificate::X509Certificate<'_>,
    origin: &str,
) -> Result<Vec<String>, PkiError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::malformed(origin, "certificate", e))?;
    Ok(san
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::URI(u) => Some((*u).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::super::{RevocationReason, Subject, init, issue, issue_custom, revoke};
    use super::*;
    use time::macros::datetime;

    const PW: &str = "pw-for-tests";

    #[test]
    fn shows_valid_expiring_expired_and_revoked() {
        let now = datetime!(2030-06-01 12:00 UTC);
        let dir = crate::pki::files::private_tempdir();
        let d = dir.path();
        let report = init(d, &[], now).unwrap();
        let good = issue(d, &Subject::Partner("AL-CTD".into()), 365, PW, now).unwrap();
        let gone = issue(d, &Subject::Partner("EU-ECTC".into()), 365, PW, now).unwrap();
        let soon = issue_custom(
            d,
            "soon",
            &["urn:brdo:partner:SOON".to_owned()],
            now - Duration::days(300),
            now + Duration::days(10) + Duration::hours(3),
            PW,
        )
        .unwrap();
        let old = issue_custom(
            d,
            "old",
            &[],
            now - Duration::days(300),
            now - Duration::seconds(1),
            PW,
        )
        .unwrap();
        revoke(d, &gone.serial_hex, RevocationReason::KeyCompromise, now).unwrap();

        let rows = list(d, now).unwrap();
        let files: Vec<_> = rows.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "dpo-gateway.crt",
                "gateway.crt",
                "old.crt",
                "operator-admin.crt",
                "partner-AL-CTD.crt",
                "partner-EU-ECTC.crt",
                "soon.crt",
            ]
        );
        let row = |f: &str| rows.iter().find(|r| r.file == f).unwrap().clone();

        let al = row("partner-AL-CTD.crt");
        assert_eq!(al.status, CertStatus::Valid);
        assert_eq!(al.identity, "urn:brdo:partner:AL-CTD");
        assert_eq!(al.serial_hex, good.serial_hex);
        assert_eq!(al.not_after, good.not_after);

        assert_eq!(row("partner-EU-ECTC.crt").status, CertStatus::Revoked);
        assert_eq!(
            row("soon.crt").status,
            CertStatus::ExpiringSoon { days_left: 10 }
        );
        assert_eq!(row("soon.crt").serial_hex, soon.serial_hex);
        let o = row("old.crt");
        assert_eq!(o.status, CertStatus::Expired);
        assert_eq!(o.identity, "(none)");
        assert_eq!(o.serial_hex, old.serial_hex);
        let g = row("gateway.crt");
        assert_eq!(g.identity, "gateway (server)");
        assert_eq!(g.serial_hex, report.gateway_serial_hex);
        assert_eq!(row("dpo-gateway.crt").identity, "urn:brdo:dpo:gateway");
        assert_eq!(
            row("operator-admin.crt").identity,
            "urn:brdo:operator:admin"
        );
        // Statuses move with time.
        let later = list(d, now + Duration::days(360)).unwrap();
        let al_later = later
            .iter()
            .find(|r| r.file == "partner-AL-CTD.crt")
            .unwrap();
        assert!(matches!(al_later.status, CertStatus::ExpiringSoon { .. }));
    }

    #[test]
    fn several_sans_are_joined() {
        let now = datetime!(2030-06-01 12:00 UTC);
        let dir = crate::pki::files::private_tempdir();
        init(dir.path(), &[], now).unwrap();
        let uris = vec!["urn:a".to_owned(), "urn:b".to_owned()];
        let issued = issue_custom(
            dir.path(),
            "multi",
            &uris,
            now,
            now + Duration::days(100),
            PW,
        )
        .unwrap();
        let bytes = std::fs::read(&issued.cert_path).unwrap();
        let info = read_cert_info("multi.crt", &bytes, &BTreeSet::new(), now).unwrap();
        assert_eq!(info.identity, "urn:a, urn:b");
        assert_eq!(info.status, CertStatus::Valid);
        assert_eq!(cert_san_uris(&bytes).unwrap(), uris);
    }

    #[test]
    fn status_boundaries() {
        let now = datetime!(2030-06-01 12:00 UTC);
        let none = BTreeSet::new();
        assert_eq!(status("a", now, &none, now), CertStatus::Expired);
        assert_eq!(
            status("a", now + Duration::days(30), &none, now),
            CertStatus::Valid
        );
        assert_eq!(
            status(
                "a",
                now + Duration::days(30) - Duration::seconds(1),
                &none,
                now
            ),
            CertStatus::ExpiringSoon { days_left: 29 }
        );
        let revoked = BTreeSet::from(["a".to_owned()]);
        assert_eq!(
            status("a", now - Duration::days(1), &revoked, now),
            CertStatus::Revoked
        );
        assert_eq!(
            CertStatus::ExpiringSoon { days_left: 3 }.to_string(),
            "expiring (3 days left)"
        );
    }

    #[test]
    fn corrupt_certificate_is_named() {
        let now = datetime!(2030-06-01 12:00 UTC);
        let dir = crate::pki::files::private_tempdir();
        init(dir.path(), &[], now).unwrap();
        std::fs::write(dir.path().join("broken.crt"), b"garbage").unwrap();
        let err = list(dir.path(), now).unwrap_err();
        assert!(err.to_string().contains("broken.crt"), "{err}");
    }
}
