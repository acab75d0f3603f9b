//! The CA's certificate revocation list: creating it, adding revocations, and reading it back.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use time::{Duration, OffsetDateTime, UtcOffset};
use x509_parser::revocation_list::CertificateRevocationList;

use super::ca::{Ca, parse_cert};
use super::files::{self, PUBLIC_MODE};
use super::serial::{parse_serial_input, serial_hex};
use super::{CA_CRL_FILE, PkiError, SUPERSEDED_DIR, list, pem};

/// How long a CRL stays authoritative; relying parties treat an older one as stale.
const CRL_LIFETIME: Duration = Duration::days(365);

/// Why a certificate was revoked (RFC 5280 §5.3.1), recorded in the CRL for auditors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// No reason given (RFC 5280 says to omit the reason code then).
    Unspecified,
    /// The certificate's private key leaked or may have.
    KeyCompromise,
    /// The CA key leaked or may have.
    CaCompromise,
    /// The holder moved to another organisation or role.
    AffiliationChanged,
    /// A new certificate replaces this one.
    Superseded,
    /// The holder no longer needs a certificate.
    CessationOfOperation,
    /// Temporarily suspended.
    CertificateHold,
    /// The holder's rights were withdrawn.
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// All reasons in RFC order, so the CLI can list the accepted spellings.
    pub const ALL: [RevocationReason; 8] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The kebab-case spelling used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key-compromise",
            RevocationReason::CaCompromise => "ca-compromise",
            RevocationReason::AffiliationChanged => "affiliation-changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation-of-operation",
            RevocationReason::CertificateHold => "certificate-hold",
            RevocationReason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    fn to_rcgen(self) -> rcgen::RevocationReason {
        match self {
            RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            RevocationReason::CaCompromise => rcgen::RevocationReason::CaCompromise,
            RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            RevocationReason::CertificateHold => rcgen::RevocationReason::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => rcgen::RevocationReason::PrivilegeWithdrawn,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = PkiError;

    /// Parses the kebab-case CLI spelling (case-insensitive), e.g. `key-compromise`.
    fn from_str(s: &str) -> Result<Self, PkiError> {
        let wanted = s.trim().to_ascii_lowercase();
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.as_str() == wanted)
            .ok_or_else(|| PkiError::InvalidReason {
                value: s.to_owned(),
            })
    }
}

/// Adds the certificate with `serial_hex` to `DIR/ca.crl`, re-signed with a higher CRL number.
///
/// Why: revocation is how a compromised or departed partner is locked out
/// before its certificate expires; the gateway reloads `ca.crl`, which is
/// replaced atomically so it never reads half a file. Only serials of
/// certificates this CA issued in `dir` (including reissued ones kept in
/// `superseded/`) are accepted, to catch typos.
pub fn revoke(
    dir: &Path,
    serial_hex: &str,
    reason: RevocationReason,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let serial = parse_serial_input(serial_hex)?;
    let ca = Ca::load(dir)?;
    let crl_path = dir.join(CA_CRL_FILE);
    let origin = crl_path.display().to_string();
    let der = pem::der_from_pem_or_der(&files::read(&crl_path)?, "X509 CRL", &origin, "CRL")?;
    let crl = parse_crl(&der, &origin)?;
    verify_crl(&crl, &ca, &origin)?;

    let mut entries = Vec::new();
    for entry in crl.iter_revoked_certificates() {
        if super::serial_hex(entry.raw_serial()) == serial {
            return Err(PkiError::AlreadyRevoked {
                serial,
                crl: crl_path,
            });
        }
        entries.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(entry.raw_serial()),
            revocation_time: entry.revocation_date.to_datetime(),
            reason_code: entry.reason_code().and_then(|(_, c)| reason_from_code(c.0)),
            invalidity_date: entry.invalidity_date().map(|(_, d)| d.to_datetime()),
        });
    }
    let number = crl
        .crl_number()
        .ok_or_else(|| PkiError::malformed(&origin, "CRL", "it has no CRL number"))?
        .to_bytes_be();

    let serial_bytes = hex::decode(&serial).map_err(|_| PkiError::InvalidSerial {
        value: serial_hex.to_owned(),
    })?;
    if !issued_here(dir, &ca, &serial)? {
        return Err(PkiError::UnknownSerial {
            serial,
            dir: dir.to_path_buf(),
        });
    }
    let now = now.to_offset(UtcOffset::UTC);
    entries.push(RevokedCertParams {
        serial_number: SerialNumber::from_slice(&serial_bytes),
        revocation_time: now,
        reason_code: Some(reason.to_rcgen()),
        invalidity_date: None,
    });
    let pem = sign(&ca, increment(&number), entries, now)?;
    files::write_atomic(&crl_path, pem.as_bytes(), PUBLIC_MODE)
}

/// The serials (canonical hex) listed in a CRL given as PEM or DER.
///
/// Why: the gateway rejects client certificates whose serial is listed; this
/// does not check who signed the CRL — use [`verified_revoked_serials`] for that.
pub fn revoked_serials(crl_pem_or_der: &[u8]) -> Result<BTreeSet<String>, PkiError> {
    let origin = "the supplied CRL data";
    let der = pem::der_from_pem_or_der(crl_pem_or_der, "X509 CRL", origin, "CRL")?;
    let crl = parse_crl(&der, origin)?;
    Ok(serial_set(&crl))
}

/// Like [`revoked_serials`], but first checks the CRL is signed by `ca_cert_pem_or_der`.
///
/// Why: a gateway must not let a CRL from elsewhere decide who is locked out
/// (or, by omission, who is let back in).
pub fn verified_revoked_serials(
    crl_pem_or_der: &[u8],
    ca_cert_pem_or_der: &[u8],
) -> Result<BTreeSet<String>, PkiError> {
    let origin = "the supplied CRL data";
    let ca_origin = "the supplied CA certificate";
    let ca_der = pem::der_from_pem_or_der(
        ca_cert_pem_or_der,
        "CERTIFICATE",
        ca_origin,
        "CA certificate",
    )?;
    let ca = parse_cert(&ca_der, ca_origin, "CA certificate")?;
    let der = pem::der_from_pem_or_der(crl_pem_or_der, "X509 CRL", origin, "CRL")?;
    let crl = parse_crl(&der, origin)?;
    crl.verify_signature(ca.public_key())
        .map_err(|_| PkiError::BadCrlSignature {
            origin: origin.to_owned(),
            ca: ca_origin.into(),
        })?;
    Ok(serial_set(&crl))
}

/// Reads the serials revoked in a CRL file, for `list`.
pub(crate) fn revoked_serials_in_file(path: &Path) -> Result<BTreeSet<String>, PkiError> {
    let origin = path.display().to_string();
    let der = pem::der_from_pem_or_der(&files::read(path)?, "X509 CRL", &origin, "CRL")?;
    let crl = parse_crl(&der, &origin)?;
    Ok(serial_set(&crl))
}

/// The first CRL written by `init`: empty, number 1.
pub(crate) fn initial_crl_pem(ca: &Ca, now: OffsetDateTime) -> Result<String, PkiError> {
    sign(ca, vec![1], Vec::new(), now.to_offset(UtcOffset::UTC))
}

fn sign(
    ca: &Ca,
    number: Vec<u8>,
    revoked_certs: Vec<RevokedCertParams>,
    now: OffsetDateTime,
) -> Result<String, PkiError> {
    let next_update = now
        .checked_add(CRL_LIFETIME)
        .ok_or_else(|| PkiError::InvalidValidity {
            detail: format!("a CRL issued at {now} would expire after the year 9999"),
        })?;
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(ca.issuer())
        .and_then(|crl| crl.pem())
        .map_err(|e| PkiError::crypto("sign the CRL", e))
}

fn parse_crl<'a>(der: &'a [u8], origin: &str) -> Result<CertificateRevocationList<'a>, PkiError> {
    match x509_parser::parse_x509_crl(der) {
        Ok(([], crl)) => Ok(crl),
        Ok(_) => Err(PkiError::malformed(
            origin,
            "CRL",
            "unexpected data after the CRL",
        )),
        Err(e) => Err(PkiError::malformed(origin, "CRL", e)),
    }
}

fn verify_crl(crl: &CertificateRevocationList<'_>, ca: &Ca, origin: &str) -> Result<(), PkiError> {
    let ca_cert = ca.parsed()?;
    crl.verify_signature(ca_cert.public_key())
        .map_err(|_| PkiError::BadCrlSignature {
            origin: origin.to_owned(),
            ca: ca.cert_path().to_path_buf(),
        })
}

fn serial_set(crl: &CertificateRevocationList<'_>) -> BTreeSet<String> {
    crl.iter_revoked_certificates()
        .map(|e| serial_hex(e.raw_serial()))
        .collect()
}

/// Whether a certificate with this serial, signed by this CA, is in `dir` or `dir/superseded`.
fn issued_here(dir: &Path, ca: &Ca, serial: &str) -> Result<bool, PkiError> {
    let ca_cert = ca.parsed()?;
    let mut candidates = list::cert_files(dir)?;
    let archive = dir.join(SUPERSEDED_DIR);
    if archive.is_dir() {
        candidates.extend(list::cert_files(&archive)?);
    }
    for path in candidates {
        // Unreadable or foreign files cannot be the certificate being revoked;
        // skipping them keeps an unrelated broken file from blocking a revocation.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let origin = path.display().to_string();
        let Ok(der) = pem::der_from_pem_or_der(&bytes, "CERTIFICATE", &origin, "certificate")
        else {
            continue;
        };
        let Ok(cert) = parse_cert(&der, &origin, "certificate") else {
            continue;
        };
        if serial_hex(cert.raw_serial()) == serial
            && cert.verify_signature(Some(ca_cert.public_key())).is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Adds one to a big-endian unsigned integer.
fn increment(number: &[u8]) -> Vec<u8> {
    let mut out = number.to_vec();
    for byte in out.iter_mut().rev() {
        if *byte == 0xff {
            *byte = 0;
        } else {
            *byte += 1;
            return out;
        }
    }
    out.insert(0, 1);
    out
}

/// Keeps the reason of an existing entry, including codes this CLI does not offer.
fn reason_from_code(code: u8) -> Option<rcgen::RevocationReason> {
    use rcgen::RevocationReason as R;
    Some(match code {
        0 => R::Unspecified,
        1 => R::KeyCompromise,
        2 => R::CaCompromise,
        3 => R::AffiliationChanged,
        4 => R::Superseded,
        5 => R::CessationOfOperation,
        6 => R::CertificateHold,
        8 => R::RemoveFromCrl,
        9 => R::PrivilegeWithdrawn,
        10 => R::AaCompromise,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{CA_CERT_FILE, Subject, init, issue};
    use super::*;
    use time::macros::datetime;

    const PW: &str = "pw";

    fn now() -> OffsetDateTime {
        datetime!(2030-06-01 12:00 UTC)
    }

    fn read_crl(dir: &Path) -> Vec<u8> {
        let bytes = std::fs::read(dir.join(CA_CRL_FILE)).unwrap();
        pem::der_from_pem_or_der(&bytes, "X509 CRL", "t", "CRL").unwrap()
    }

    fn ca_der(dir: &Path) -> Vec<u8> {
        let bytes = std::fs::read(dir.join(CA_CERT_FILE)).unwrap();
        pem::der_from_pem_or_der(&bytes, "CERTIFICATE", "t", "cert").unwrap()
    }

    #[test]
    fn reasons_parse_from_kebab_case() {
        for r in RevocationReason::ALL {
            assert_eq!(r.as_str().parse::<RevocationReason>().unwrap(), r);
        }
        assert_eq!(
            "Key-Compromise".parse::<RevocationReason>().unwrap(),
            RevocationReason::KeyCompromise
        );
        assert!("keyCompromise".parse::<RevocationReason>().is_err());
        assert!("remove-from-crl".parse::<RevocationReason>().is_err());
    }

    #[test]
    fn increments_big_endian() {
        assert_eq!(increment(&[1]), vec![2]);
        assert_eq!(increment(&[0x00, 0xff]), vec![0x01, 0x00]);
        assert_eq!(increment(&[0xff, 0xff]), vec![1, 0, 0]);
        assert_eq!(increment(&[]), vec![1]);
    }

    #[test]
    fn revoke_adds_serial_resigns_and_bumps_number() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        init(d, &[], now()).unwrap();
        let ca_der = ca_der(d);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();

        let crl0 = read_crl(d);
        let (_, parsed) = x509_parser::parse_x509_crl(&crl0).unwrap();
        parsed.verify_signature(ca.public_key()).unwrap();
        assert_eq!(parsed.crl_number().unwrap().to_bytes_be(), vec![1]);
        assert_eq!(parsed.iter_revoked_certificates().count(), 0);
        assert_eq!(
            parsed.next_update().unwrap().to_datetime(),
            now() + Duration::days(365)
        );

        let a = issue(d, &Subject::Partner("AL-CTD".into()), 30, PW, now()).unwrap();
        let b = issue(d, &Subject::Partner("EU-ECTC".into()), 30, PW, now()).unwrap();
        let later = now() + Duration::hours(1);
        // Upper case with colons, as openssl prints it, is accepted.
        let typed: String = a
            .serial_hex
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        revoke(d, &typed, RevocationReason::KeyCompromise, later).unwrap();
        revoke(
            d,
            &b.serial_hex,
            RevocationReason::Superseded,
            later + Duration::hours(1),
        )
        .unwrap();

        let crl2 = read_crl(d);
        let (_, parsed) = x509_parser::parse_x509_crl(&crl2).unwrap();
        parsed.verify_signature(ca.public_key()).unwrap();
        assert_eq!(parsed.crl_number().unwrap().to_bytes_be(), vec![3]);
        let entries: Vec<_> = parsed.iter_revoked_certificates().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(serial_hex(entries[0].raw_serial()), a.serial_hex);
        assert_eq!(entries[0].revocation_date.to_datetime(), later);
        assert_eq!(
            entries[0].reason_code().unwrap().1.0,
            1,
            "kept key-compromise"
        );
        assert_eq!(entries[1].reason_code().unwrap().1.0, 4);
        assert_eq!(
            revoked_serials(&std::fs::read(d.join(CA_CRL_FILE)).unwrap()).unwrap(),
            BTreeSet::from([a.serial_hex.clone(), b.serial_hex.clone()])
        );
        assert_eq!(
            verified_revoked_serials(&crl2, &ca_der).unwrap(),
            BTreeSet::from([a.serial_hex.clone(), b.serial_hex.clone()])
        );

        // The CRL file is world-readable (the gateway reads it) and no temp files linger.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join(CA_CRL_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert!(
            std::fs::read_dir(d).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp"))
        );
    }

    #[test]
    fn refuses_unknown_and_repeated_serials() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let report = init(d, &[], now()).unwrap();
        let before = std::fs::read(d.join(CA_CRL_FILE)).unwrap();
        let err = revoke(d, "0123456789abcdef", RevocationReason::Unspecified, now()).unwrap_err();
        assert!(matches!(err, PkiError::UnknownSerial { .. }), "{err}");
        let err = revoke(
            d,
            &report.ca_serial_hex,
            RevocationReason::CaCompromise,
            now(),
        )
        .unwrap_err();
        assert!(
            matches!(err, PkiError::UnknownSerial { .. }),
            "CA itself: {err}"
        );
        assert!(matches!(
            revoke(d, "not-hex", RevocationReason::Unspecified, now()),
            Err(PkiError::InvalidSerial { .. })
        ));
        assert_eq!(std::fs::read(d.join(CA_CRL_FILE)).unwrap(), before);

        let serial = &report.gateway_serial_hex;
        revoke(d, serial, RevocationReason::Unspecified, now()).unwrap();
        let err = revoke(d, serial, RevocationReason::KeyCompromise, now()).unwrap_err();
        assert!(matches!(err, PkiError::AlreadyRevoked { .. }), "{err}");
        assert!(err.to_string().contains(serial.as_str()), "{err}");
    }

    #[test]
    fn superseded_certificates_can_still_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        init(d, &[], now()).unwrap();
        let s = Subject::Partner("AL-CTD".into());
        let old = issue(d, &s, 30, PW, now()).unwrap();
        issue(d, &s, 30, PW, now()).unwrap();
        revoke(d, &old.serial_hex, RevocationReason::Superseded, now()).unwrap();
        assert!(
            revoked_serials(&read_crl(d))
                .unwrap()
                .contains(&old.serial_hex)
        );
    }

    #[test]
    fn refuses_a_crl_signed_by_another_ca() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        init(dir.path(), &[], now()).unwrap();
        init(other.path(), &[], now()).unwrap();
        std::fs::copy(other.path().join(CA_CRL_FILE), dir.path().join(CA_CRL_FILE)).unwrap();
        let a = issue(dir.path(), &Subject::Operator("x".into()), 30, PW, now()).unwrap();
        let err = revoke(
            dir.path(),
            &a.serial_hex,
            RevocationReason::Unspecified,
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, PkiError::BadCrlSignature { .. }), "{err}");
        let err = verified_revoked_serials(&read_crl(dir.path()), &ca_der(dir.path())).unwrap_err();
        assert!(matches!(err, PkiError::BadCrlSignature { .. }), "{err}");
    }

    #[test]
    fn garbage_crl_is_an_error() {
        assert!(revoked_serials(b"garbage").is_err());
        assert!(
            revoked_serials(b"-----BEGIN X509 CRL-----\n!!\n-----END X509 CRL-----\n").is_err()
        );
        let cert_pem = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert!(revoked_serials(cert_pem).is_err());
    }
}
