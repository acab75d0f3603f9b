//! Issuing leaf certificates: client certificates for partners, DPOs and operators,
//! and the gateway's server certificate.

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber, string::Ia5String,
};
use time::OffsetDateTime;

use super::ca::{Ca, ORGANISATION, parse_cert};
use super::files::{self, KEY_MODE, PUBLIC_MODE};
use super::serial::{random_serial, serial_hex};
use super::{
    AUDIT_KEY_FILE, CA_CERT_FILE, CA_CRL_FILE, GATEWAY_CERT_FILE, PkiError, SUPERSEDED_DIR,
    Subject, p12, validity,
};

/// What `issue` wrote, so the CLI can tell the operator where the files are and
/// which serial to quote if the certificate ever has to be revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The certificate's serial in the canonical form used by `revoke` and `list`.
    pub serial_hex: String,
    /// `DIR/<stem>.crt` (PEM).
    pub cert_path: PathBuf,
    /// `DIR/<stem>.key` (PEM PKCS#8, mode 0600).
    pub key_path: PathBuf,
    /// `DIR/<stem>.p12`, the bundle to import into a browser.
    pub p12_path: PathBuf,
    /// The expiry exactly as encoded in the certificate (whole seconds, UTC).
    pub not_after: OffsetDateTime,
}

/// Issues a client certificate for `subject`, valid from five minutes ago for `days` days.
///
/// Why: this is the only way a partner system, DPO or operator gets an identity
/// the gateway accepts; reissuing replaces that subject's files (the previous
/// certificate is kept under `superseded/` so it can still be revoked).
pub fn issue(
    dir: &Path,
    subject: &Subject,
    days: u32,
    p12_password: &str,
    now: OffsetDateTime,
) -> Result<Issued, PkiError> {
    subject.validate()?;
    let (not_before, not_after) = validity::window(now, days)?;
    let _lock = files::DirLock::acquire(dir)?;
    let ca = Ca::load(dir)?;
    let client = build_client(
        &ca,
        &subject.file_stem(),
        subject.name(),
        &[subject.san_uri()],
        not_before,
        not_after,
        p12_password,
    )?;
    write_client(dir, &client)
}

/// Issues a client certificate with arbitrary SAN URIs and validity.
///
/// Why: gateway tests need certificates that `issue` refuses to make — none or
/// several SAN URIs, unknown roles, already expired — signed by the real CA.
/// The common name is the file stem.
pub fn issue_custom(
    dir: &Path,
    file_stem: &str,
    san_uris: &[String],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    p12_password: &str,
) -> Result<Issued, PkiError> {
    check_file_stem(file_stem)?;
    let (not_before, not_after) = validity::check(not_before, not_after)?;
    let _lock = files::DirLock::acquire(dir)?;
    let ca = Ca::load(dir)?;
    let client = build_client(
        &ca,
        file_stem,
        file_stem,
        san_uris,
        not_before,
        not_after,
        p12_password,
    )?;
    write_client(dir, &client)
}

/// A signed leaf and its fresh key, not yet on disk.
pub(crate) struct Leaf {
    pub(crate) cert_der: Vec<u8>,
    pub(crate) cert_pem: String,
    /// Wiped when dropped: the holder's private key.
    pub(crate) key_pem: zeroize::Zeroizing<String>,
    pub(crate) serial_hex: String,
    pub(crate) not_after: OffsetDateTime,
}

/// A client leaf plus its PKCS#12 bundle, not yet on disk.
pub(crate) struct ClientBundle {
    pub(crate) stem: String,
    pub(crate) leaf: Leaf,
    pub(crate) p12: Vec<u8>,
}

/// Builds a clientAuth leaf and its PKCS#12 in memory, so `init` can create
/// everything before writing anything.
pub(crate) fn build_client(
    ca: &Ca,
    stem: &str,
    common_name: &str,
    san_uris: &[String],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    p12_password: &str,
) -> Result<ClientBundle, PkiError> {
    let sans = san_uris
        .iter()
        .map(|uri| {
            Ia5String::try_from(uri.as_str())
                .map(SanType::URI)
                .map_err(|_| PkiError::InvalidSubject {
                    role: "SAN URI",
                    value: uri.clone(),
                    rule: "must contain only ASCII characters",
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf, key) = sign_leaf(
        ca,
        stem,
        common_name,
        sans,
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        not_before,
        not_after,
    )?;
    let p12 = p12::build(
        stem,
        key.serialized_der(),
        &leaf.cert_der,
        ca.cert_der(),
        p12_password,
    )?;
    Ok(ClientBundle {
        stem: stem.to_owned(),
        leaf,
        p12,
    })
}

/// Builds the gateway's serverAuth leaf with one DNS or IP SAN per host.
///
/// With a gateway id (federation, SPEC §11) it also carries the SAN URI
/// `urn:brdo:gateway:ID` and `clientAuth`: the one certificate serves
/// partners and authenticates this gateway to its peers.
pub(crate) fn build_server(
    ca: &Ca,
    hosts: &[String],
    gateway_id: Option<&str>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Leaf, PkiError> {
    let mut sans = hosts
        .iter()
        .map(|h| host_san(h))
        .collect::<Result<Vec<_>, _>>()?;
    let mut usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if let Some(id) = gateway_id {
        let subject = Subject::Gateway(id.to_owned());
        subject.validate()?;
        let uri = subject.san_uri();
        let uri = Ia5String::try_from(uri.as_str()).map_err(|_| PkiError::InvalidSubject {
            role: "gateway ID",
            value: id.to_owned(),
            rule: "must contain only ASCII characters",
        })?;
        sans.push(SanType::URI(uri));
        usages.push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    let common_name = hosts.first().map(String::as_str).unwrap_or("localhost");
    let (leaf, _) = sign_leaf(
        ca,
        "gateway",
        common_name,
        sans,
        usages,
        not_before,
        not_after,
    )?;
    Ok(leaf)
}

/// Generates a P-256 key and signs a leaf (CN, O=Brdo, SANs, one EKU,
/// digitalSignature, CA:FALSE, SKI/AKI, random serial).
fn sign_leaf(
    ca: &Ca,
    stem: &str,
    common_name: &str,
    sans: Vec<SanType>,
    usages: Vec<ExtendedKeyUsagePurpose>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(Leaf, KeyPair), PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| PkiError::crypto(format!("generate the key for {stem}"), e))?;
    let serial = random_serial()?;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANISATION);
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    // ExplicitNoCa also makes rcgen emit a SubjectKeyIdentifier, which NoCa omits.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = not_before;
    params.not_after = not_after;
    params.use_authority_key_identifier_extension = true;

    let cert = params
        .signed_by(&key, ca.issuer())
        .map_err(|e| PkiError::crypto(format!("sign the certificate for {stem}"), e))?;
    let cert_der = cert.der().to_vec();
    let encoded_not_after = parse_cert(&cert_der, stem, "certificate")?
        .validity()
        .not_after
        .to_datetime();
    let leaf = Leaf {
        cert_pem: cert.pem(),
        cert_der,
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        serial_hex: serial_hex(&serial),
        not_after: encoded_not_after,
    };
    Ok((leaf, key))
}

/// Writes `<stem>.key`, `.p12` and `.crt` (in that order, so a certificate is
/// never visible before its key), archiving any certificate it replaces.
pub(crate) fn write_client(dir: &Path, client: &ClientBundle) -> Result<Issued, PkiError> {
    let cert_path = dir.join(format!("{}.crt", client.stem));
    let key_path = dir.join(format!("{}.key", client.stem));
    let p12_path = dir.join(format!("{}.p12", client.stem));
    archive_previous(dir, &client.stem, &cert_path)?;
    files::write_atomic(&key_path, client.leaf.key_pem.as_bytes(), KEY_MODE)?;
    files::write_atomic(&p12_path, &client.p12, KEY_MODE)?;
    files::write_atomic(&cert_path, client.leaf.cert_pem.as_bytes(), PUBLIC_MODE)?;
    Ok(Issued {
        serial_hex: client.leaf.serial_hex.clone(),
        cert_path,
        key_path,
        p12_path,
        not_after: client.leaf.not_after,
    })
}

/// Keeps a replaced certificate as `superseded/<stem>-<serial>.crt`, so that a
/// reissued subject's old certificate can still be found and revoked.
fn archive_previous(dir: &Path, stem: &str, cert_path: &Path) -> Result<(), PkiError> {
    let bytes = match std::fs::read(cert_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(PkiError::io("read", cert_path, e)),
    };
    let origin = cert_path.display().to_string();
    let der = super::pem::der_from_pem_or_der(&bytes, "CERTIFICATE", &origin, "certificate");
    // An unreadable old file cannot be revoked anyway; archive it under a neutral name.
    let serial = der
        .ok()
        .and_then(|d| {
            parse_cert(&d, &origin, "certificate")
                .ok()
                .map(|c| serial_hex(c.raw_serial()))
        })
        .unwrap_or_else(|| "unparsable".to_owned());
    let archive = dir.join(SUPERSEDED_DIR);
    files::ensure_private_dir(&archive)?;
    files::write_atomic(
        &archive.join(format!("{stem}-{serial}.crt")),
        &bytes,
        PUBLIC_MODE,
    )
}

/// Maps a host to an IP SAN if it parses as an address, else to a checked DNS SAN.
fn host_san(host: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    if !is_dns_name(host) {
        return Err(PkiError::InvalidHost {
            host: host.to_owned(),
        });
    }
    Ia5String::try_from(host)
        .map(SanType::DnsName)
        .map_err(|_| PkiError::InvalidHost {
            host: host.to_owned(),
        })
}

/// LDH labels of 1-63 characters, at most 253 in total, no leading/trailing hyphen.
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// File stems become file names in the CA directory, so they must not contain
/// path separators or collide with the CA, gateway and audit files.
fn check_file_stem(stem: &str) -> Result<(), PkiError> {
    let reserved = [
        CA_CERT_FILE,
        GATEWAY_CERT_FILE,
        AUDIT_KEY_FILE,
        CA_CRL_FILE,
        super::ENVELOPE_KEY_FILE,
    ]
    .iter()
    .any(|f| f.split('.').next() == Some(stem));
    let ok = (1..=64).contains(&stem.len())
        && !stem.starts_with('.')
        && stem
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok && !reserved {
        Ok(())
    } else {
        Err(PkiError::InvalidFileStem {
            stem: stem.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use x509_parser::extensions::GeneralName;

    use super::super::{init, p12::tests as p12t};
    use super::*;
    use time::macros::datetime;
    use time::{Duration, UtcOffset};

    const PW: &str = "correct horse";

    fn now() -> OffsetDateTime {
        datetime!(2030-06-01 12:00:30.5 UTC)
    }

    fn pem_to_der(bytes: &[u8]) -> Vec<u8> {
        super::super::pem::der_from_pem_or_der(bytes, "CERTIFICATE", "t", "certificate").unwrap()
    }

    fn uris(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
        cert.subject_alternative_name()
            .unwrap()
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
            .unwrap_or_default()
    }

    #[test]
    fn issues_each_role_with_correct_fields_and_chain() {
        let dir = crate::pki::files::private_tempdir();
        init(dir.path(), &[], now()).unwrap();
        let ca_der = pem_to_der(&std::fs::read(dir.path().join(CA_CERT_FILE)).unwrap());
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();

        for subject in [
            Subject::Partner("AL-CTD".into()),
            Subject::Dpo("EU-ECTC".into()),
            Subject::Operator("j.doe".into()),
        ] {
            let issued = issue(dir.path(), &subject, 90, PW, now()).unwrap();
            assert_eq!(
                issued.cert_path,
                dir.path().join(format!("{}.crt", subject.file_stem()))
            );
            let der = pem_to_der(&std::fs::read(&issued.cert_path).unwrap());
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();

            assert_eq!(uris(&cert), vec![subject.san_uri()]);
            let san_count = cert
                .subject_alternative_name()
                .unwrap()
                .unwrap()
                .value
                .general_names
                .len();
            assert_eq!(san_count, 1, "exactly one SAN");
            let cn = cert.subject().iter_common_name().next().unwrap();
            assert_eq!(cn.as_str().unwrap(), subject.name());
            let o = cert.subject().iter_organization().next().unwrap();
            assert_eq!(o.as_str().unwrap(), "Brdo");

            let eku = cert.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.client_auth && !eku.server_auth && !eku.any);
            let ku = cert.key_usage().unwrap().unwrap().value;
            assert!(ku.digital_signature() && !ku.key_cert_sign());
            assert!(!cert.is_ca());

            let v = cert.validity();
            assert_eq!(
                v.not_before.to_datetime(),
                datetime!(2030-06-01 11:55:30 UTC)
            );
            assert_eq!(
                v.not_after.to_datetime(),
                datetime!(2030-08-30 12:00:30 UTC)
            );
            assert_eq!(issued.not_after, v.not_after.to_datetime());

            assert_eq!(serial_hex(cert.raw_serial()), issued.serial_hex);
            assert_eq!(issued.serial_hex.len(), 32);
            assert_eq!(cert.issuer(), ca.subject());
            cert.verify_signature(Some(ca.public_key())).unwrap();
            // ...and not by some other key (the check can fail).
            assert!(cert.verify_signature(Some(cert.public_key())).is_err());

            // The AKI names the CA's SKI.
            let aki = cert
                .iter_extensions()
                .find_map(|e| match e.parsed_extension() {
                    x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                        a.key_identifier.as_ref().map(|k| k.0.to_vec())
                    }
                    _ => None,
                })
                .unwrap();
            let ski = ca
                .iter_extensions()
                .find_map(|e| match e.parsed_extension() {
                    x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                        Some(k.0.to_vec())
                    }
                    _ => None,
                })
                .unwrap();
            assert_eq!(aki, ski);

            let key_pem = std::fs::read_to_string(&issued.key_path).unwrap();
            let key = KeyPair::from_pem(&key_pem).unwrap();
            assert_eq!(
                rcgen::PublicKeyData::der_bytes(&key),
                cert.public_key().subject_public_key.data.as_ref()
            );
            use std::os::unix::fs::PermissionsExt;
            for p in [&issued.key_path, &issued.p12_path] {
                let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", p.display());
            }
        }
    }

    #[test]
    fn p12_round_trips_and_openssl_reads_it() {
        let dir = crate::pki::files::private_tempdir();
        init(dir.path(), &[], now()).unwrap();
        let subject = Subject::Partner("EU-ECTC".into());
        let issued = issue(dir.path(), &subject, 30, PW, now()).unwrap();
        let p12 = std::fs::read(&issued.p12_path).unwrap();
        let (alias, key, certs) = p12t::open(&p12, PW);
        assert_eq!(alias, "partner-EU-ECTC");
        let key_pem = std::fs::read_to_string(&issued.key_path).unwrap();
        assert_eq!(KeyPair::from_pem(&key_pem).unwrap().serialized_der(), key);
        let leaf = pem_to_der(&std::fs::read(&issued.cert_path).unwrap());
        let ca = pem_to_der(&std::fs::read(dir.path().join(CA_CERT_FILE)).unwrap());
        assert_eq!(certs, vec![leaf, ca]);
        assert!(
            p12_keystore::KeyStore::from_pkcs12(
                &p12,
                "wrong",
                p12_keystore::Pkcs12ImportPolicy::Strict
            )
            .is_err()
        );

        match p12t::openssl_info(&issued.p12_path, PW) {
            None => eprintln!("openssl not on PATH; skipping the OpenSSL check"),
            Some((ok, text)) => {
                assert!(ok, "openssl could not read the bundle:\n{text}");
                assert!(text.contains("PBES2"), "{text}");
                assert!(text.contains("AES-256-CBC"), "{text}");
                assert!(text.contains("hmacWithSHA256"), "{text}");
                assert!(text.contains("MAC: sha256"), "{text}");
                assert!(text.contains("CN=EU-ECTC"), "{text}");
                let (bad, _) = p12t::openssl_info(&issued.p12_path, "wrong").unwrap();
                assert!(!bad, "openssl accepted a wrong password");
            }
        }
        match p12t::nss_import(&issued.p12_path, PW) {
            None => eprintln!("NSS tools not on PATH; skipping the NSS import check"),
            Some(ok) => {
                assert!(ok, "NSS pk12util could not import the bundle");
                assert_eq!(p12t::nss_import(&issued.p12_path, "wrong"), Some(false));
            }
        }
    }

    #[test]
    fn reissue_overwrites_and_archives_the_old_certificate() {
        let dir = crate::pki::files::private_tempdir();
        init(dir.path(), &[], now()).unwrap();
        let s = Subject::Partner("AL-CTD".into());
        let first = issue(dir.path(), &s, 30, PW, now()).unwrap();
        let second = issue(dir.path(), &s, 30, PW, now()).unwrap();
        assert_ne!(first.serial_hex, second.serial_hex);
        assert_eq!(first.cert_path, second.cert_path);
        let der = pem_to_der(&std::fs::read(&second.cert_path).unwrap());
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(serial_hex(cert.raw_serial()), second.serial_hex);
        let archived = dir
            .path()
            .join(SUPERSEDED_DIR)
            .join(format!("partner-AL-CTD-{}.crt", first.serial_hex));
        assert!(archived.is_file());
    }

    #[test]
    fn custom_certificates_allow_odd_sans_and_expired_validity() {
        let dir = crate::pki::files::private_tempdir();
        init(dir.path(), &[], now()).unwrap();
        let none = issue_custom(
            dir.path(),
            "no-san",
            &[],
            now() - Duration::days(10),
            now() - Duration::days(1),
            PW,
        )
        .unwrap();
        let der = pem_to_der(&std::fs::read(&none.cert_path).unwrap());
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.subject_alternative_name().unwrap().is_none());
        assert!(!cert.validity().is_valid_at(now().into()));

        let two = vec![
            "urn:brdo:partner:AL-CTD".to_owned(),
            "urn:brdo:partner:EU-ECTC".to_owned(),
        ];
        let both = issue_custom(
            dir.path(),
            "two-sans",
            &two,
            now(),
            now() + Duration::days(1),
            PW,
        )
        .unwrap();
        let der = pem_to_der(&std::fs::read(&both.cert_path).unwrap());
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(uris(&cert), two);
    }

    #[test]
    fn rejects_bad_inputs_before_writing() {
        let dir = crate::pki::files::private_tempdir();
        init(dir.path(), &[], now()).unwrap();
        let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        let p = Subject::Partner("al-ctd".into());
        assert!(matches!(
            issue(dir.path(), &p, 30, PW, now()),
            Err(PkiError::InvalidSubject { .. })
        ));
        let p = Subject::Partner("AL-CTD".into());
        assert!(matches!(
            issue(dir.path(), &p, 0, PW, now()),
            Err(PkiError::InvalidValidity { .. })
        ));
        assert!(matches!(
            issue(dir.path(), &p, 30, "", now()),
            Err(PkiError::EmptyPassword { .. })
        ));
        let t = now();
        for stem in [
            "ca",
            "gateway",
            "audit-signing",
            "envelope-signing",
            "../x",
            ".hidden",
            "a/b",
            "",
        ] {
            assert!(
                matches!(
                    issue_custom(dir.path(), stem, &[], t, t + Duration::days(1), PW),
                    Err(PkiError::InvalidFileStem { .. })
                ),
                "{stem}"
            );
        }
        let non_ascii = vec!["urn:brdo:partner:Ä".to_owned()];
        assert!(issue_custom(dir.path(), "x", &non_ascii, t, t + Duration::days(1), PW).is_err());
        let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(before.len(), after.len());
        // A directory without a CA is reported, naming ca.crt.
        let empty = crate::pki::files::private_tempdir();
        let err = issue(empty.path(), &p, 30, PW, now()).unwrap_err();
        assert!(err.to_string().contains("ca.crt"), "{err}");
    }

    #[test]
    fn non_utc_now_is_normalised() {
        let dir = crate::pki::files::private_tempdir();
        init(dir.path(), &[], now()).unwrap();
        let local = now().to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
        let s = Subject::Operator("ops".into());
        let issued = issue(dir.path(), &s, 1, PW, local).unwrap();
        assert_eq!(issued.not_after, datetime!(2030-06-02 12:00:30 UTC));
    }

    #[test]
    fn host_names_are_checked() {
        assert!(is_dns_name("localhost"));
        assert!(is_dns_name("gw-1.brdo.example."));
        assert!(!is_dns_name("-bad.example"));
        assert!(!is_dns_name("bad_host"));
        assert!(!is_dns_name(""));
        assert!(!is_dns_name(&"a".repeat(64)));
        assert!(matches!(host_san("::1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(host_san("gw.example"), Ok(SanType::DnsName(_))));
        assert!(host_san("not a host").is_err());
    }
}
