//! The development CA: creating it once, and loading it safely for every later signature.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use super::serial::{random_serial, serial_hex};
use super::{CA_CERT_FILE, CA_KEY_FILE, PkiError, files, pem, validity};

/// The CA's common name; "Development" warns anyone inspecting it that this is not a production PKI.
pub(crate) const CA_COMMON_NAME: &str = "Brdo Development CA";
/// Organisation in every subject, so certificates are recognisable in browser pickers.
pub(crate) const ORGANISATION: &str = "Brdo";
/// Ten years: the CA outlives every certificate it signs.
const CA_DAYS: u32 = 3650;

/// A CA certificate together with its verified-matching signing key.
pub(crate) struct Ca {
    cert_der: Vec<u8>,
    cert_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

/// A freshly created CA and the PEM texts still to be written by `init`.
pub(crate) struct NewCa {
    pub(crate) ca: Ca,
    pub(crate) cert_pem: String,
    /// Wiped when dropped: the CA's private key.
    pub(crate) key_pem: zeroize::Zeroizing<String>,
    pub(crate) serial_hex: String,
}

impl Ca {
    /// Creates a self-signed ECDSA P-256 CA (pathlen 0, keyCertSign + cRLSign) valid for ten years.
    #[cfg(test)]
    pub(crate) fn create(dir: &Path, now: OffsetDateTime) -> Result<NewCa, PkiError> {
        Self::create_named(dir, now, CA_COMMON_NAME)
    }

    /// [`Ca::create`] with its own common name. Gateways among gateways
    /// trust each other's CAs side by side (SPEC §11): CAs with one name
    /// would be taken for one another when chains are built and CRLs
    /// matched (a peer's certificate checked against this CA's CRL fails
    /// its signature), so a gateway's CA names its gateway.
    pub(crate) fn create_named(
        dir: &Path,
        now: OffsetDateTime,
        common_name: &str,
    ) -> Result<NewCa, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::crypto("generate the CA key", e))?;
        let serial = random_serial()?;
        let (not_before, not_after) = validity::window(now, CA_DAYS)?;

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, ORGANISATION);
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = not_before;
        params.not_after = not_after;

        let cert = params
            .self_signed(&key)
            .map_err(|e| PkiError::crypto("self-sign the CA certificate", e))?;
        let cert_pem = cert.pem();
        let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
        let ca = Ca::from_parts(
            cert.der().to_vec(),
            key,
            dir.join(CA_CERT_FILE),
            &dir.join(CA_KEY_FILE),
        )?;
        Ok(NewCa {
            ca,
            cert_pem,
            key_pem,
            serial_hex: serial_hex(&serial),
        })
    }

    /// Loads `ca.crt` and `ca.key` from `dir`, refusing a key that does not
    /// belong to the certificate, and a key or directory other users can
    /// reach.
    pub(crate) fn load(dir: &Path) -> Result<Ca, PkiError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_der = pem::der_from_pem_or_der(
            &files::read(&cert_path)?,
            "CERTIFICATE",
            &cert_path.display().to_string(),
            "CA certificate",
        )?;
        // Report a broken certificate before looking at the key.
        parse_cert(
            &cert_der,
            &cert_path.display().to_string(),
            "CA certificate",
        )?;
        // Only the operator's account may read the CA key or replace files
        // beside it; refuse (never repair) anything else.
        files::check_private(dir, "PKI directory")?;
        files::check_private(&key_path, "CA key")?;
        let key_bytes = zeroize::Zeroizing::new(files::read(&key_path)?);
        let key_text = std::str::from_utf8(&key_bytes).map_err(|_| {
            PkiError::malformed(
                key_path.display().to_string(),
                "PEM private key",
                "it is not text",
            )
        })?;
        let key = KeyPair::from_pem(key_text).map_err(|e| {
            PkiError::malformed(key_path.display().to_string(), "PKCS#8 private key", e)
        })?;
        Ca::from_parts(cert_der, key, cert_path, &key_path)
    }

    /// Checks the certificate is a CA, that rcgen can reuse its name, and that the key matches.
    fn from_parts(
        cert_der: Vec<u8>,
        key: KeyPair,
        cert_path: PathBuf,
        key_path: &Path,
    ) -> Result<Ca, PkiError> {
        let origin = cert_path.display().to_string();
        let bad = |detail: &str| PkiError::malformed(&origin, "CA certificate", detail);
        {
            let cert = parse_cert(&cert_der, &origin, "CA certificate")?;
            if !cert.is_ca() {
                return Err(bad("basicConstraints does not mark it as a CA"));
            }
            // rcgen copies the subject into every issued certificate and panics on an
            // empty RDN / errors on a multi-valued one, so check before handing it over.
            if cert.subject().iter().any(|rdn| rdn.iter().count() != 1) {
                return Err(bad(
                    "its subject has an empty or multi-valued name component",
                ));
            }
            if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
                return Err(PkiError::CaKeyMismatch {
                    key: key_path.to_path_buf(),
                    cert: cert_path.clone(),
                });
            }
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key)
            .map_err(|e| PkiError::malformed(&origin, "CA certificate", e))?;
        Ok(Ca {
            cert_der,
            cert_path,
            issuer,
        })
    }

    /// The signer handed to rcgen for certificates and CRLs.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// The CA certificate, for PKCS#12 chains and signature checks.
    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Where the CA certificate lives, for error messages.
    pub(crate) fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The parsed CA certificate, e.g. to verify signatures with its public key.
    pub(crate) fn parsed(&self) -> Result<X509Certificate<'_>, PkiError> {
        parse_cert(
            &self.cert_der,
            &self.cert_path.display().to_string(),
            "CA certificate",
        )
    }
}

/// Parses one DER certificate, requiring nothing to trail it.
pub(crate) fn parse_cert<'a>(
    der: &'a [u8],
    origin: &str,
    what: &'static str,
) -> Result<X509Certificate<'a>, PkiError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(PkiError::malformed(
            origin,
            what,
            "unexpected data after the certificate",
        )),
        Err(e) => Err(PkiError::malformed(origin, what, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn created_ca_has_the_required_shape() {
        let dir = crate::pki::files::private_tempdir();
        let now = datetime!(2030-06-01 12:00 UTC);
        let new = Ca::create(dir.path(), now).unwrap();
        let cert = new.ca.parsed().unwrap();
        assert_eq!(cert.subject().to_string(), "O=Brdo, CN=Brdo Development CA");
        assert_eq!(cert.issuer(), cert.subject());
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(0));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
        let days = (cert.validity().not_after.to_datetime() - now).whole_days();
        assert_eq!(days, 3650);
        assert_eq!(serial_hex(cert.raw_serial()), new.serial_hex);
        cert.verify_signature(None).unwrap();
        assert!(new.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn load_rejects_a_foreign_key() {
        let dir = crate::pki::files::private_tempdir();
        let now = datetime!(2030-06-01 12:00 UTC);
        let a = Ca::create(dir.path(), now).unwrap();
        let b = Ca::create(dir.path(), now).unwrap();
        std::fs::write(dir.path().join(CA_CERT_FILE), &a.cert_pem).unwrap();
        files::write_atomic(&dir.path().join(CA_KEY_FILE), b.key_pem.as_bytes(), 0o600).unwrap();
        let err = Ca::load(dir.path()).err().unwrap();
        assert!(matches!(err, PkiError::CaKeyMismatch { .. }), "{err}");
        files::write_atomic(&dir.path().join(CA_KEY_FILE), a.key_pem.as_bytes(), 0o600).unwrap();
        Ca::load(dir.path()).unwrap();
    }

    #[test]
    fn load_refuses_a_readable_key_or_open_directory_and_changes_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::pki::files::private_tempdir();
        let now = datetime!(2030-06-01 12:00 UTC);
        let a = Ca::create(dir.path(), now).unwrap();
        let key = dir.path().join(CA_KEY_FILE);
        std::fs::write(dir.path().join(CA_CERT_FILE), &a.cert_pem).unwrap();
        files::write_atomic(&key, a.key_pem.as_bytes(), 0o644).unwrap();
        let err = Ca::load(dir.path()).err().unwrap();
        assert!(matches!(err, PkiError::UnsafePermissions { .. }), "{err}");
        assert!(err.to_string().contains("ca.key"), "{err}");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "left as it was");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = Ca::load(dir.path()).err().unwrap();
        assert!(err.to_string().contains("PKI directory"), "{err}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Ca::load(dir.path()).unwrap();
    }

    #[test]
    fn load_reports_garbage_with_the_file_name() {
        let dir = crate::pki::files::private_tempdir();
        std::fs::write(dir.path().join(CA_CERT_FILE), b"not a cert").unwrap();
        std::fs::write(dir.path().join(CA_KEY_FILE), b"not a key").unwrap();
        let err = Ca::load(dir.path()).err().unwrap();
        assert!(err.to_string().contains("ca.crt"), "{err}");
        let err = Ca::load(&dir.path().join("missing")).err().unwrap();
        assert!(err.to_string().contains("ca.crt"), "{err}");
    }
}
