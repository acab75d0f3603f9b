//! One-time creation of a complete development PKI directory.

use std::fmt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::ca::Ca;
use super::files::{self, KEY_MODE, PUBLIC_MODE};
use super::issue::{self, Issued};
use super::{
    AUDIT_KEY_FILE, AUDIT_PUB_FILE, CA_CERT_FILE, CA_CRL_FILE, CA_KEY_FILE, ENVELOPE_KEY_FILE,
    ENVELOPE_PUB_FILE, GATEWAY_CERT_FILE, GATEWAY_KEY_FILE, PkiError, Subject, crl, validity,
};

/// Hosts put in the gateway certificate when none are given, for local development.
pub const DEFAULT_HOSTS: [&str; 2] = ["localhost", "127.0.0.1"];
/// Validity of the gateway's server certificate.
const GATEWAY_DAYS: u32 = 730;
/// Validity of the operator and DPO certificates created by `init`.
const INIT_CLIENT_DAYS: u32 = 365;

/// What `init` created, so the CLI can show the operator every file and serial once.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The PKI directory.
    pub dir: PathBuf,
    /// Every file written, in the order written (`ca.key` last).
    pub written: Vec<PathBuf>,
    /// Serial of the CA certificate.
    pub ca_serial_hex: String,
    /// Serial of `gateway.crt`.
    pub gateway_serial_hex: String,
    /// The `operator-admin` and `dpo-gateway` client certificates.
    pub clients: Vec<InitClient>,
}

/// A client certificate made by `init`, with the generated PKCS#12 password.
///
/// Why a generated password: `init` takes none, and a `.p12` holding a private
/// key must not be protected by a guessable or empty one. The CLI prints it
/// once; it is stored nowhere else.
#[derive(Clone)]
pub struct InitClient {
    /// Who the certificate is for.
    pub subject: Subject,
    /// The files and serial.
    pub issued: Issued,
    /// The password protecting `issued.p12_path`.
    pub p12_password: String,
}

impl fmt::Debug for InitClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitClient")
            .field("subject", &self.subject)
            .field("issued", &self.issued)
            .field("p12_password", &"[redacted]")
            .finish()
    }
}

/// Creates a development PKI in `dir`: CA, empty CRL, gateway server
/// certificate, Ed25519 audit-signing key pair, and `operator-admin` and
/// `dpo-gateway` client certificates.
///
/// Why: a new deployment needs all of these before the gateway can start, and
/// creating them together guarantees they belong to one CA. Refuses to run if
/// `dir/ca.key` exists. Everything is generated in memory first and `ca.key`
/// is written last, so a failed run leaves no usable half-CA and can simply be
/// repeated. Hosts that parse as IP addresses become IP SANs; with no hosts,
/// `localhost` and `127.0.0.1` are used.
pub fn init(dir: &Path, hosts: &[String], now: OffsetDateTime) -> Result<InitReport, PkiError> {
    init_gateway(dir, hosts, None, now)
}

/// The CA's common name: a gateway among gateways names itself, so peers
/// trusting several Brdo CAs can tell them apart.
fn ca_name(gateway_id: Option<&str>) -> String {
    gateway_id.map_or_else(
        || super::ca::CA_COMMON_NAME.to_owned(),
        |id| format!("Brdo CA {id}"),
    )
}

/// [`init`] for a gateway among gateways: `gateway.crt` also names
/// `urn:brdo:gateway:<gateway_id>` and may authenticate as a client, so the
/// same certificate serves partners and speaks to peers (SPEC §11).
pub fn init_gateway(
    dir: &Path,
    hosts: &[String],
    gateway_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<InitReport, PkiError> {
    let ca_key_path = dir.join(CA_KEY_FILE);
    match std::fs::symlink_metadata(&ca_key_path) {
        Ok(_) => return Err(PkiError::AlreadyInitialised { path: ca_key_path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(PkiError::io("check for", ca_key_path, e)),
    }
    let hosts: Vec<String> = if hosts.is_empty() {
        DEFAULT_HOSTS.iter().map(|h| (*h).to_owned()).collect()
    } else {
        hosts.to_vec()
    };

    // Build everything before touching the disk.
    let new_ca = Ca::create_named(dir, now, &ca_name(gateway_id))?;
    let ca = &new_ca.ca;
    let crl_pem = crl::initial_crl_pem(ca, now)?;
    let (nb, na) = validity::window(now, GATEWAY_DAYS)?;
    let gateway = issue::build_server(ca, &hosts, gateway_id, nb, na)?;
    let audit = Ed25519Pem::generate()?;
    let envelope = Ed25519Pem::generate()?;
    let (nb, na) = validity::window(now, INIT_CLIENT_DAYS)?;
    let mut clients = Vec::new();
    for subject in [
        Subject::Operator("admin".to_owned()),
        Subject::Dpo("gateway".to_owned()),
    ] {
        let password = random_password()?;
        let bundle = issue::build_client(
            ca,
            &subject.file_stem(),
            subject.name(),
            &[subject.san_uri()],
            nb,
            na,
            &password,
        )?;
        clients.push((subject, bundle, password));
    }

    files::ensure_private_dir(dir)?;
    let _lock = files::DirLock::acquire(dir)?;
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: &[u8], mode: u32| -> Result<(), PkiError> {
        let path = dir.join(name);
        files::write_atomic(&path, bytes, mode)?;
        written.push(path);
        Ok(())
    };
    put(CA_CERT_FILE, new_ca.cert_pem.as_bytes(), PUBLIC_MODE)?;
    put(CA_CRL_FILE, crl_pem.as_bytes(), PUBLIC_MODE)?;
    put(GATEWAY_CERT_FILE, gateway.cert_pem.as_bytes(), PUBLIC_MODE)?;
    put(GATEWAY_KEY_FILE, gateway.key_pem.as_bytes(), KEY_MODE)?;
    put(AUDIT_KEY_FILE, audit.private_pem.as_bytes(), KEY_MODE)?;
    put(AUDIT_PUB_FILE, audit.public_pem.as_bytes(), PUBLIC_MODE)?;
    put(ENVELOPE_KEY_FILE, envelope.private_pem.as_bytes(), KEY_MODE)?;
    put(
        ENVELOPE_PUB_FILE,
        envelope.public_pem.as_bytes(),
        PUBLIC_MODE,
    )?;

    let mut reports = Vec::new();
    for (subject, bundle, p12_password) in clients {
        let issued = issue::write_client(dir, &bundle)?;
        written.extend([
            issued.key_path.clone(),
            issued.p12_path.clone(),
            issued.cert_path.clone(),
        ]);
        reports.push(InitClient {
            subject,
            issued,
            p12_password,
        });
    }

    files::write_atomic_new(&ca_key_path, new_ca.key_pem.as_bytes(), KEY_MODE)?;
    written.push(ca_key_path);

    Ok(InitReport {
        dir: dir.to_path_buf(),
        written,
        ca_serial_hex: new_ca.serial_hex.clone(),
        gateway_serial_hex: gateway.serial_hex.clone(),
        clients: reports,
    })
}

/// Creates the envelope (label-binding) key pair in `dir` if it is not
/// there; returns whether it did.
///
/// Why: PKI directories made before label binding existed have no
/// envelope key, and the gateway does not start without one. An existing
/// key is never replaced: recipients verify old bindings with its public
/// half.
pub fn ensure_envelope_key(dir: &Path) -> Result<bool, PkiError> {
    let _lock = files::DirLock::acquire(dir)?;
    let key = dir.join(ENVELOPE_KEY_FILE);
    if key.exists() {
        return Ok(false);
    }
    let pair = Ed25519Pem::generate()?;
    files::write_atomic(
        &dir.join(ENVELOPE_PUB_FILE),
        pair.public_pem.as_bytes(),
        PUBLIC_MODE,
    )?;
    files::write_atomic_new(&key, pair.private_pem.as_bytes(), KEY_MODE)?;
    Ok(true)
}

/// Issues a new gateway server certificate and key from the CA in `dir`
/// (for `hosts`, default `localhost` and `127.0.0.1`), replacing
/// `gateway.crt` and `gateway.key`.
///
/// Why: the gateway's certificate must be rotated before it expires without
/// an outage; the running gateway picks the new files up (file watcher or
/// `POST /v1/admin/reload`) for new connections while open ones finish.
/// The key is written before the certificate, each atomically, so a reader
/// sees either the old pair or, briefly, a new key with the old certificate
/// — which the gateway refuses as a mismatch and retries.
pub fn renew_gateway(
    dir: &Path,
    hosts: &[String],
    days: u32,
    now: OffsetDateTime,
) -> Result<Issued, PkiError> {
    let hosts: Vec<String> = if hosts.is_empty() {
        DEFAULT_HOSTS.iter().map(|h| (*h).to_owned()).collect()
    } else {
        hosts.to_vec()
    };
    let _lock = files::DirLock::acquire(dir)?;
    let ca = Ca::load(dir)?;
    let (nb, na) = validity::window(now, days)?;
    // A renewed certificate keeps the gateway id the old one carried.
    let gateway_id = current_gateway_id(&dir.join(GATEWAY_CERT_FILE));
    let leaf = issue::build_server(&ca, &hosts, gateway_id.as_deref(), nb, na)?;
    let key_path = dir.join(GATEWAY_KEY_FILE);
    let cert_path = dir.join(GATEWAY_CERT_FILE);
    files::write_atomic(&key_path, leaf.key_pem.as_bytes(), KEY_MODE)?;
    files::write_atomic(&cert_path, leaf.cert_pem.as_bytes(), PUBLIC_MODE)?;
    Ok(Issued {
        serial_hex: leaf.serial_hex,
        cert_path: cert_path.clone(),
        key_path,
        p12_path: cert_path,
        not_after: leaf.not_after,
    })
}

/// The gateway id (`urn:brdo:gateway:ID`) of a gateway certificate file,
/// if it carries one.
pub fn current_gateway_id(cert: &Path) -> Option<String> {
    let pem = std::fs::read(cert).ok()?;
    use rustls::pki_types::pem::PemObject as _;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => {
            u.strip_prefix("urn:brdo:gateway:").map(str::to_owned)
        }
        _ => None,
    })
}

/// An Ed25519 key pair as PEM (the audit-signing and envelope keys).
///
/// Why not rcgen's or ring's encoding: both write PKCS#8 v2 (with the public
/// key), which OpenSSL 3.0 — and so josekit, which signs the checkpoints —
/// cannot read. RFC 8410's v1 form (the 32-byte seed only) is read by
/// OpenSSL and by ring alike.
struct Ed25519Pem {
    private_pem: String,
    public_pem: String,
}

/// DER prefix of an RFC 8410 PKCS#8 v1 Ed25519 private key; the seed follows.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the public key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl Ed25519Pem {
    fn generate() -> Result<Self, PkiError> {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|e| PkiError::crypto("generate the audit-signing key", e))?;
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| PkiError::crypto("derive the audit-signing public key", e))?;
        let public = ring::signature::KeyPair::public_key(&pair);
        let private_der = [&ED25519_PKCS8_V1_PREFIX[..], &seed].concat();
        let public_der = [&ED25519_SPKI_PREFIX[..], public.as_ref()].concat();
        seed.fill(0);
        Ok(Self {
            private_pem: pem_encode("PRIVATE KEY", &private_der),
            public_pem: pem_encode("PUBLIC KEY", &public_der),
        })
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// 24 characters from a 32-symbol alphabet without look-alikes: 120 bits.
pub fn random_password() -> Result<String, PkiError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|e| PkiError::crypto("generate a PKCS#12 password", e))?;
    Ok(bytes
        .iter()
        .filter_map(|b| ALPHABET.get(usize::from(b % 32)).copied().map(char::from))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
    use rustls::pki_types::pem::PemObject as _;
    use time::macros::datetime;
    use x509_parser::extensions::GeneralName;

    use super::super::p12::tests as p12t;
    use super::super::pem::der_from_pem_or_der;
    use super::*;

    fn now() -> OffsetDateTime {
        datetime!(2030-06-01 12:00 UTC)
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn cert(dir: &Path, name: &str) -> Vec<u8> {
        der_from_pem_or_der(
            &std::fs::read(dir.join(name)).unwrap(),
            "CERTIFICATE",
            name,
            "certificate",
        )
        .unwrap()
    }

    #[test]
    fn writes_every_file_with_the_right_mode() {
        let tmp = crate::pki::files::private_tempdir();
        let dir = tmp.path().join("pki");
        let report = init(&dir, &[], now()).unwrap();
        assert_eq!(mode(&dir), 0o700);

        let expected = [
            ("ca.crt", 0o644),
            ("ca.key", 0o600),
            ("ca.crl", 0o644),
            ("gateway.crt", 0o644),
            ("gateway.key", 0o600),
            ("audit-signing.key", 0o600),
            ("audit-signing.pub", 0o644),
            ("envelope-signing.key", 0o600),
            ("envelope-signing.pub", 0o644),
            ("operator-admin.crt", 0o644),
            ("operator-admin.key", 0o600),
            ("operator-admin.p12", 0o600),
            ("dpo-gateway.crt", 0o644),
            ("dpo-gateway.key", 0o600),
            ("dpo-gateway.p12", 0o600),
        ];
        for (name, m) in expected {
            let p = dir.join(name);
            assert!(p.is_file(), "{name} missing");
            assert_eq!(mode(&p), m, "{name}");
            assert!(report.written.contains(&p), "{name} not reported");
        }
        assert_eq!(report.written.len(), expected.len());
        assert_eq!(report.written.last(), Some(&dir.join("ca.key")));
        let on_disk = std::fs::read_dir(&dir).unwrap().count();
        assert!(dir.join(crate::pki::LOCK_FILE).is_file());
        assert_eq!(
            on_disk,
            expected.len() + 1,
            "no stray files besides the lock"
        );

        let key_pem = std::fs::read_to_string(dir.join("ca.key")).unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let ca_der = cert(&dir, "ca.crt");
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(
            super::super::serial_hex(ca.raw_serial()),
            report.ca_serial_hex
        );

        // Client certificates: right SAN, chain to the CA, p12 opens with the reported password.
        assert_eq!(report.clients.len(), 2);
        for c in &report.clients {
            let der = cert(&dir, &format!("{}.crt", c.subject.file_stem()));
            let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
            leaf.verify_signature(Some(ca.public_key())).unwrap();
            assert_eq!(
                super::super::serial_hex(leaf.raw_serial()),
                c.issued.serial_hex
            );
            let p12 = std::fs::read(&c.issued.p12_path).unwrap();
            let (alias, _, certs) = p12t::open(&p12, &c.p12_password);
            assert_eq!(alias, c.subject.file_stem());
            assert_eq!(certs[0], der);
            assert_eq!(c.p12_password.len(), 24);
            assert!(!format!("{c:?}").contains(&c.p12_password));
        }
        assert_ne!(
            report.clients[0].p12_password,
            report.clients[1].p12_password
        );
        assert_eq!(
            report.clients[0].subject.san_uri(),
            "urn:brdo:operator:admin"
        );
        assert_eq!(report.clients[1].subject.san_uri(), "urn:brdo:dpo:gateway");
    }

    #[test]
    fn gateway_certificate_has_server_auth_and_host_sans() {
        let tmp = crate::pki::files::private_tempdir();
        let hosts = vec![
            "gw.brdo.example".to_owned(),
            "10.0.0.7".to_owned(),
            "::1".to_owned(),
        ];
        let report = init(tmp.path(), &hosts, now()).unwrap();
        let ca_der = cert(tmp.path(), "ca.crt");
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let der = cert(tmp.path(), "gateway.crt");
        let (_, gw) = x509_parser::parse_x509_certificate(&der).unwrap();
        gw.verify_signature(Some(ca.public_key())).unwrap();
        assert_eq!(
            super::super::serial_hex(gw.raw_serial()),
            report.gateway_serial_hex
        );
        let eku = gw.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let names = &gw
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert_eq!(names.len(), 3);
        assert!(matches!(names[0], GeneralName::DNSName("gw.brdo.example")));
        assert!(matches!(names[1], GeneralName::IPAddress(&[10, 0, 0, 7])));
        assert!(matches!(names[2], GeneralName::IPAddress(ip) if ip.len() == 16));
        let days = (gw.validity().not_after.to_datetime() - now()).whole_days();
        assert_eq!(days, 730);

        let key = rcgen::KeyPair::from_pem(
            &std::fs::read_to_string(tmp.path().join("gateway.key")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            rcgen::PublicKeyData::der_bytes(&key),
            gw.public_key().subject_public_key.data.as_ref()
        );
    }

    #[test]
    fn a_gateway_id_makes_a_client_and_server_certificate_that_renewal_keeps() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let report = init_gateway(&dir, &[], Some("AL-NCB"), now()).unwrap();
        let der = cert(&report.dir, GATEWAY_CERT_FILE);
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let gw = dir.join(GATEWAY_CERT_FILE);
        assert_eq!(current_gateway_id(&gw).as_deref(), Some("AL-NCB"));
        renew_gateway(&dir, &[], 30, now()).unwrap();
        assert_eq!(current_gateway_id(&gw).as_deref(), Some("AL-NCB"));

        let plain = tmp.path().join("plain");
        init(&plain, &[], now()).unwrap();
        let der = cert(&plain, GATEWAY_CERT_FILE);
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        assert_eq!(current_gateway_id(&plain.join(GATEWAY_CERT_FILE)), None);

        let bad = tmp.path().join("bad");
        assert!(init_gateway(&bad, &[], Some("al-ncb"), now()).is_err());
        assert!(!bad.join(CA_KEY_FILE).exists());
    }

    #[test]
    fn default_hosts_are_localhost_and_loopback() {
        let tmp = crate::pki::files::private_tempdir();
        init(tmp.path(), &[], now()).unwrap();
        let der = cert(tmp.path(), "gateway.crt");
        let (_, gw) = x509_parser::parse_x509_certificate(&der).unwrap();
        let names = &gw
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert_eq!(names.len(), 2);
        assert!(matches!(names[0], GeneralName::DNSName("localhost")));
        assert!(matches!(names[1], GeneralName::IPAddress(&[127, 0, 0, 1])));
    }

    #[test]
    fn audit_key_pair_signs_and_verifies() {
        let tmp = crate::pki::files::private_tempdir();
        init(tmp.path(), &[], now()).unwrap();
        let key = der_from_pem_or_der(
            &std::fs::read(tmp.path().join("audit-signing.key")).unwrap(),
            "PRIVATE KEY",
            "k",
            "key",
        )
        .unwrap();
        let spki = der_from_pem_or_der(
            &std::fs::read(tmp.path().join("audit-signing.pub")).unwrap(),
            "PUBLIC KEY",
            "p",
            "public key",
        )
        .unwrap();
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key).unwrap();
        if std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_ok()
        {
            let out = std::process::Command::new("openssl")
                .args(["pkey", "-noout", "-in"])
                .arg(tmp.path().join("audit-signing.key"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "OpenSSL (and josekit) must read the key"
            );
        }
        // SPKI for Ed25519 is a 12-byte header followed by the 32-byte key.
        assert_eq!(spki.len(), 44);
        assert_eq!(&spki[12..], pair.public_key().as_ref());
        let sig = pair.sign(b"audit record");
        let public = UnparsedPublicKey::new(&ED25519, &spki[12..]);
        public.verify(b"audit record", sig.as_ref()).unwrap();
        assert!(public.verify(b"tampered", sig.as_ref()).is_err());
    }

    #[test]
    fn every_key_is_ecdsa_p256_or_ed25519() {
        let tmp = crate::pki::files::private_tempdir();
        let dir = tmp.path().join("pki");
        init(&dir, &[], now()).unwrap();
        crate::pki::issue(
            &dir,
            &crate::pki::Subject::Partner("AL-CTD".into()),
            30,
            "pw",
            now(),
        )
        .unwrap();
        for name in [
            "ca",
            "gateway",
            "operator-admin",
            "dpo-gateway",
            "partner-AL-CTD",
        ] {
            let der = cert(&dir, &format!("{name}.crt"));
            let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
            let alg = &c.public_key().algorithm;
            assert_eq!(
                alg.algorithm.to_id_string(),
                "1.2.840.10045.2.1",
                "{name}: EC key"
            );
            let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
            assert_eq!(
                curve.map(|o| o.to_id_string()).as_deref(),
                Some("1.2.840.10045.3.1.7"),
                "{name}: P-256"
            );
        }
        let spki = std::fs::read(dir.join("audit-signing.pub")).unwrap();
        let der = rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(&spki).unwrap();
        // SEQUENCE { SEQUENCE { OID 1.3.101.112 (Ed25519) } BIT STRING (32 bytes) }
        assert_eq!(der.as_ref().len(), 44);
        assert_eq!(&der.as_ref()[4..9], &[0x06, 0x03, 0x2b, 0x65, 0x70]);
    }

    #[test]
    fn refuses_second_init_and_leaves_files_alone() {
        let tmp = crate::pki::files::private_tempdir();
        init(tmp.path(), &[], now()).unwrap();
        let ca_before = std::fs::read(tmp.path().join("ca.crt")).unwrap();
        let err = init(tmp.path(), &[], now()).unwrap_err();
        assert!(matches!(err, PkiError::AlreadyInitialised { .. }), "{err}");
        assert!(err.to_string().contains("ca.key"), "{err}");
        assert_eq!(std::fs::read(tmp.path().join("ca.crt")).unwrap(), ca_before);
    }

    #[test]
    fn bad_host_writes_nothing() {
        let tmp = crate::pki::files::private_tempdir();
        let dir = tmp.path().join("pki");
        let err = init(&dir, &["bad host".to_owned()], now()).unwrap_err();
        assert!(matches!(err, PkiError::InvalidHost { .. }), "{err}");
        assert!(!dir.exists());
    }
}
