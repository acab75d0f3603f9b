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
use super::{CA_CRL_FILE, PkiError, SUPERSEDED_DIR, pem};

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

/// What a revocation wrote, for the CLI to print and the log to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The serial, canonical lowercase hex.
    pub serial: String,
    /// The CRL number of the list that now carries it.
    pub crl_number: u128,
    /// Whether the serial was unknown to the directory and `force` let it through.
    pub forced: bool,
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
    revoke_serial(dir, serial_hex, reason, false, now).map(|_| ())
}

/// [`revoke`], and with `force` also a serial no file in `dir` matches.
///
/// Why `force`: the gateway accepts every certificate the CA signed, also
/// one whose file was deleted or never kept; the operator must be able to
/// lock it out. Because a typo would then go unnoticed, a forced
/// revocation is written to `pki.log` and reported back as forced. The
/// whole read-modify-write runs under the directory lock, so concurrent
/// revocations each get their own, higher CRL number and none is lost.
pub fn revoke_serial(
    dir: &Path,
    serial_hex: &str,
    reason: RevocationReason,
    force: bool,
    now: OffsetDateTime,
) -> Result<Revoked, PkiError> {
    let serial = parse_serial_input(serial_hex)?;
    let _lock = files::DirLock::acquire(dir)?;
    let CurrentCrl {
        ca,
        path: crl_path,
        origin,
        mut entries,
        number,
    } = CurrentCrl::load(dir)?;
    if entries
        .iter()
        .any(|e| serial_hex_of(&e.serial_number) == serial)
    {
        return Err(PkiError::AlreadyRevoked {
            serial,
            crl: crl_path,
        });
    }

    let serial_bytes = hex::decode(&serial).map_err(|_| PkiError::InvalidSerial {
        value: serial_hex.to_owned(),
    })?;
    let known = issued_here(dir, &ca, &serial)?;
    if !known && !force {
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
    let next = next_number(number, &origin)?;
    let pem = sign(&ca, number_bytes(next), entries, now)?;
    files::write_atomic(&crl_path, pem.as_bytes(), PUBLIC_MODE)?;
    let mut fields = serde_json::Map::new();
    fields.insert("serial".into(), serial.clone().into());
    fields.insert("reason".into(), reason.as_str().into());
    fields.insert("crl_number".into(), next.to_string().into());
    fields.insert("forced".into(), (!known).into());
    files::append_log(dir, now, "revoke", fields)?;
    Ok(Revoked {
        serial,
        crl_number: next,
        forced: !known,
    })
}

/// The CRL in force in a PKI directory, verified against its CA: what
/// `revoke` and `crl refresh` both start from (under the directory lock,
/// which the caller holds).
struct CurrentCrl {
    ca: Ca,
    path: std::path::PathBuf,
    origin: String,
    entries: Vec<RevokedCertParams>,
    number: u128,
}

impl CurrentCrl {
    fn load(dir: &Path) -> Result<Self, PkiError> {
        let ca = Ca::load(dir)?;
        let path = dir.join(CA_CRL_FILE);
        let origin = path.display().to_string();
        let der = pem::der_from_pem_or_der(&files::read(&path)?, "X509 CRL", &origin, "CRL")?;
        let crl = parse_crl(&der, &origin)?;
        verify_crl(&crl, &ca, &origin)?;
        let entries = existing_entries(&crl);
        let number = crl_number_of(&crl, &origin)?;
        Ok(Self {
            ca,
            path,
            origin,
            entries,
            number,
        })
    }
}

/// What `crl refresh` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// The new CRL number.
    pub crl_number: u128,
    /// How many serials it lists (the same as before).
    pub revoked: usize,
    /// Until when relying parties accept it.
    pub next_update: OffsetDateTime,
}

/// Re-signs `DIR/ca.crl` with the same entries, a higher number and a new
/// nextUpdate.
///
/// Why: the gateway refuses a CRL whose nextUpdate has passed (it could be
/// an old list replayed), so a CRL must be re-signed before then even when
/// nobody was revoked. Runs under the directory lock like `revoke`.
pub fn refresh_crl(dir: &Path, now: OffsetDateTime) -> Result<Refreshed, PkiError> {
    let _lock = files::DirLock::acquire(dir)?;
    let CurrentCrl {
        ca,
        path: crl_path,
        origin,
        entries,
        number,
    } = CurrentCrl::load(dir)?;
    let revoked = entries.len();
    let next = next_number(number, &origin)?;
    let now = now.to_offset(UtcOffset::UTC);
    let pem = sign(&ca, number_bytes(next), entries, now)?;
    files::write_atomic(&crl_path, pem.as_bytes(), PUBLIC_MODE)?;
    let next_update = now + CRL_LIFETIME;
    let mut fields = serde_json::Map::new();
    fields.insert("crl_number".into(), next.to_string().into());
    fields.insert("revoked".into(), revoked.into());
    files::append_log(dir, now, "crl_refresh", fields)?;
    Ok(Refreshed {
        crl_number: next,
        revoked,
        next_update,
    })
}

/// A CRL's facts the gateway decides on: who is revoked, which list it is
/// (its number) and until when it may be relied on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// Serials revoked, canonical hex.
    pub revoked: BTreeSet<String>,
    /// The CRL number (RFC 5280 §5.2.3); higher is newer.
    pub number: u128,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
}

/// Like [`verified_revoked_serials`], and also the CRL's number and
/// validity window, which must both be present.
///
/// Why required: a CRL without a number cannot be ordered against the one
/// in force (an older list could be put back to un-revoke someone), and
/// one without nextUpdate never goes stale; either is refused.
pub fn verified_crl_info(
    crl_pem_or_der: &[u8],
    ca_cert_pem_or_der: &[u8],
) -> Result<CrlInfo, PkiError> {
    let origin = "the supplied CRL data";
    let revoked = verified_revoked_serials(crl_pem_or_der, ca_cert_pem_or_der)?;
    let der = pem::der_from_pem_or_der(crl_pem_or_der, "X509 CRL", origin, "CRL")?;
    let crl = parse_crl(&der, origin)?;
    let number = crl_number_of(&crl, origin)?;
    let next_update = crl
        .next_update()
        .ok_or_else(|| PkiError::malformed(origin, "CRL", "it has no nextUpdate"))?
        .timestamp();
    Ok(CrlInfo {
        revoked,
        number,
        this_update: crl.last_update().timestamp(),
        next_update,
    })
}

/// The entries of a CRL, ready to be signed again unchanged.
fn existing_entries(crl: &CertificateRevocationList<'_>) -> Vec<RevokedCertParams> {
    crl.iter_revoked_certificates()
        .map(|entry| RevokedCertParams {
            serial_number: SerialNumber::from_slice(entry.raw_serial()),
            revocation_time: entry.revocation_date.to_datetime(),
            reason_code: entry.reason_code().and_then(|(_, c)| reason_from_code(c.0)),
            invalidity_date: entry.invalidity_date().map(|(_, d)| d.to_datetime()),
        })
        .collect()
}

fn serial_hex_of(serial: &SerialNumber) -> String {
    super::serial_hex(serial.as_ref())
}

/// The CRL number as an integer; numbers beyond 128 bits are refused (this
/// CA counts up from 1, so such a list did not come from it).
fn crl_number_of(crl: &CertificateRevocationList<'_>, origin: &str) -> Result<u128, PkiError> {
    let bytes = crl
        .crl_number()
        .ok_or_else(|| PkiError::malformed(origin, "CRL", "it has no CRL number"))?
        .to_bytes_be();
    let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if significant.len() > 16 {
        return Err(PkiError::malformed(
            origin,
            "CRL",
            "its CRL number is larger than 128 bits",
        ));
    }
    Ok(significant
        .iter()
        .fold(0u128, |n, b| (n << 8) | u128::from(*b)))
}

fn next_number(number: u128, origin: &str) -> Result<u128, PkiError> {
    number.checked_add(1).ok_or_else(|| PkiError::CrlUnusable {
        origin: origin.to_owned(),
        detail: "its CRL number cannot be increased".to_owned(),
    })
}

/// Minimal big-endian bytes of a CRL number (at least one byte).
fn number_bytes(number: u128) -> Vec<u8> {
    let bytes: Vec<u8> = number
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    if bytes.is_empty() { vec![0] } else { bytes }
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
    let mut candidates = files::cert_files(dir)?;
    let archive = dir.join(SUPERSEDED_DIR);
    if archive.is_dir() {
        candidates.extend(files::cert_files(&archive)?);
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
    fn crl_numbers_are_minimal_big_endian() {
        assert_eq!(number_bytes(1), vec![1]);
        assert_eq!(number_bytes(256), vec![1, 0]);
        assert_eq!(number_bytes(0), vec![0]);
        assert_eq!(next_number(255, "x").unwrap(), 256);
        assert!(next_number(u128::MAX, "x").is_err());
    }

    #[test]
    fn forced_revocation_of_an_unknown_serial_is_listed_and_logged() {
        let dir = crate::pki::files::private_tempdir();
        let d = dir.path();
        init(d, &[], now()).unwrap();
        let err =
            revoke_serial(d, "0a0b0c", RevocationReason::KeyCompromise, false, now()).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        let done =
            revoke_serial(d, "0A:0B:0C", RevocationReason::KeyCompromise, true, now()).unwrap();
        assert_eq!(done.serial, "0a0b0c");
        assert!(done.forced);
        assert_eq!(done.crl_number, 2);
        assert!(revoked_serials(&read_crl(d)).unwrap().contains("0a0b0c"));
        let log = std::fs::read_to_string(d.join(files::LOG_FILE)).unwrap();
        let line: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(line["event"], "revoke");
        assert_eq!(line["serial"], "0a0b0c");
        assert_eq!(line["forced"], true);
        assert_eq!(line["reason"], "key-compromise");
        // A known serial is not forced even with the flag.
        let a = issue(d, &Subject::Partner("AL-CTD".into()), 30, PW, now()).unwrap();
        let done =
            revoke_serial(d, &a.serial_hex, RevocationReason::Unspecified, true, now()).unwrap();
        assert!(!done.forced);
        assert_eq!(done.crl_number, 3);
    }

    #[test]
    fn refresh_keeps_the_entries_and_raises_number_and_next_update() {
        let dir = crate::pki::files::private_tempdir();
        let d = dir.path();
        init(d, &[], now()).unwrap();
        let a = issue(d, &Subject::Partner("AL-CTD".into()), 30, PW, now()).unwrap();
        revoke(d, &a.serial_hex, RevocationReason::KeyCompromise, now()).unwrap();
        let before = verified_crl_info(&read_crl(d), &ca_der(d)).unwrap();
        let later = now() + Duration::days(300);
        let done = refresh_crl(d, later).unwrap();
        let after = verified_crl_info(&read_crl(d), &ca_der(d)).unwrap();
        assert_eq!(after.revoked, before.revoked);
        assert_eq!(after.number, before.number + 1);
        assert_eq!(done.crl_number, after.number);
        assert_eq!(done.revoked, 1);
        assert_eq!(after.this_update, later.unix_timestamp());
        assert_eq!(
            after.next_update,
            (later + Duration::days(365)).unix_timestamp()
        );
        assert_eq!(done.next_update.unix_timestamp(), after.next_update);
        let log = std::fs::read_to_string(d.join(files::LOG_FILE)).unwrap();
        assert!(log.lines().last().unwrap().contains("\"crl_refresh\""));
    }

    #[test]
    fn revoke_adds_serial_resigns_and_bumps_number() {
        let dir = crate::pki::files::private_tempdir();
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
        let dir = crate::pki::files::private_tempdir();
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
        let dir = crate::pki::files::private_tempdir();
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
        let dir = crate::pki::files::private_tempdir();
        let other = crate::pki::files::private_tempdir();
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
