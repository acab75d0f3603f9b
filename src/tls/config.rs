//! The rustls server configuration, rebuilt atomically on reload.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::NoServerSessionStorage;

use super::anchors::{AnchorId, AnchoredVerifier, Anchors, PolicyTrust};
pub use super::error::TlsError;
use super::error::file_err;
use super::identity::Identity;
use crate::config::{TlsConfig, TlsMinVersion};

/// The certificates, key and CRL read from disk, before they become a
/// rustls config.
#[derive(Debug)]
pub struct TlsMaterial {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    anchors: Arc<Anchors>,
    crl: CertificateRevocationListDer<'static>,
    /// Serials revoked by the CRL (signature checked against the client CA).
    pub revoked: BTreeSet<String>,
    /// The CRL's number and nextUpdate (and again its serials).
    pub crl_info: crate::pki::CrlInfo,
    /// notAfter of the gateway's own certificate, unix seconds.
    pub server_not_after: i64,
    /// Serial of the gateway's own certificate.
    pub server_serial: String,
}

impl TlsMaterial {
    /// Reads every file named in `[tls]`, and the CA files the policy
    /// names (`trust`): the accepted client anchors follow the policy.
    pub fn load(cfg: &TlsConfig, trust: &PolicyTrust) -> Result<Self, TlsError> {
        let read = |what, path: &Path| std::fs::read(path).map_err(|e| file_err(what, path, e));
        let chain_pem = read("server certificate", &cfg.cert)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| file_err("server certificate", &cfg.cert, e))?;
        if chain.is_empty() {
            return Err(file_err(
                "server certificate",
                &cfg.cert,
                "holds no PEM certificate",
            ));
        }
        crate::crypto::check_owner_only(&cfg.key)
            .map_err(|e| file_err("server key", &cfg.key, e))?;
        // Wiped when dropped: the PEM text is the gateway's TLS private key.
        let key_pem = zeroize::Zeroizing::new(read("server key", &cfg.key)?);
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| file_err("server key", &cfg.key, e))?;
        let anchors = Arc::new(Anchors::load(cfg.client_ca.files(), trust)?);
        // The CRL is the first client_ca file's CA's.
        let ca_pem = read("client CA", cfg.client_ca.first())?;
        let crl_bytes = read("CRL", &cfg.crl)?;
        let crl = if crl_bytes.starts_with(b"-----") {
            CertificateRevocationListDer::from_pem_slice(&crl_bytes)
                .map_err(|e| file_err("CRL", &cfg.crl, e))?
        } else {
            CertificateRevocationListDer::from(crl_bytes.clone())
        };
        // The verifier checks the CRL against the CA during handshakes; the
        // per-request revocation set must come from the same signed list.
        let crl_info = crate::pki::verified_crl_info(&crl_bytes, &ca_pem)
            .map_err(|e| file_err("CRL", &cfg.crl, e))?;
        // An expired list is refused here, so neither a start nor a reload
        // puts one in force (the one in force stays on a reload).
        crate::tls::crl::check_fresh(&crl_info, time::OffsetDateTime::now_utc().unix_timestamp())
            .map_err(|refusal| TlsError::CrlRefused {
            path: cfg.crl.clone(),
            refusal,
            offered: Box::new(crl_info.clone()),
        })?;
        let revoked = crl_info.revoked.clone();
        let server = crate::tls::identity::PeerCert::from_der(&chain[0]);
        Ok(Self {
            chain,
            key,
            anchors,
            crl,
            revoked,
            crl_info,
            server_not_after: server.not_after,
            server_serial: server.serial,
        })
    }

    /// The client-certificate verifier (the accepted anchors, each
    /// certificate checked against the one that issued it, and the CRL):
    /// used in every handshake and for the certificate chains of sender
    /// signatures.
    pub(crate) fn client_verifier(&self) -> Result<Arc<AnchoredVerifier>, TlsError> {
        AnchoredVerifier::build(self.anchors.clone(), &self.crl).map(Arc::new)
    }

    /// Builds the rustls server configuration.
    pub(crate) fn server_config(
        &self,
        min_version: TlsMinVersion,
    ) -> Result<rustls::ServerConfig, TlsError> {
        let mut provider = rustls::crypto::ring::default_provider();
        // ECDHE with AEAD only. That is the ring provider's whole list
        // today; the filter keeps it so if a provider update adds others.
        provider.cipher_suites.retain(|s| is_ecdhe_aead(s.suite()));
        let provider = Arc::new(provider);
        let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> =
            self.client_verifier()?;
        let versions: &[&'static rustls::SupportedProtocolVersion] = match min_version {
            TlsMinVersion::Tls13 => &[&rustls::version::TLS13],
            TlsMinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Rustls(format!("server certificate and key: {e}")))?;
        // No resumption: every connection runs the verifier (and the CRL).
        cfg.session_storage = Arc::new(NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// The suites the gateway may negotiate: TLS 1.3's AEAD suites, and for
/// the TLS 1.2 opt-in only ECDHE key exchange (forward secrecy) with
/// AES-GCM or ChaCha20-Poly1305 (no CBC, no static RSA).
pub fn is_ecdhe_aead(suite: rustls::CipherSuite) -> bool {
    use rustls::CipherSuite as S;
    matches!(
        suite,
        S::TLS13_AES_128_GCM_SHA256
            | S::TLS13_AES_256_GCM_SHA384
            | S::TLS13_CHACHA20_POLY1305_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    )
}

/// The live TLS state: swapped whole on reload, read per connection and
/// per request.
pub struct TlsState {
    config: ArcSwap<rustls::ServerConfig>,
    signers: arc_swap::ArcSwapOption<AnchoredVerifier>,
    revoked: ArcSwap<BTreeSet<String>>,
    server: ArcSwap<(String, i64)>,
    crl: ArcSwap<crate::tls::crl::CrlState>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState").finish_non_exhaustive()
    }
}

impl TlsState {
    /// Builds the state from loaded material.
    pub fn new(material: &TlsMaterial, min_version: TlsMinVersion) -> Result<Self, TlsError> {
        Ok(Self {
            config: ArcSwap::from_pointee(material.server_config(min_version)?),
            signers: arc_swap::ArcSwapOption::new(Some(material.client_verifier()?)),
            revoked: ArcSwap::from_pointee(material.revoked.clone()),
            server: ArcSwap::from_pointee((
                material.server_serial.clone(),
                material.server_not_after,
            )),
            crl: ArcSwap::from_pointee((&material.crl_info).into()),
        })
    }

    /// The CRL in force: number, nextUpdate and serials.
    pub fn crl(&self) -> crate::tls::crl::CrlState {
        (**self.crl.load()).clone()
    }

    /// Swaps in a config built from `material` (new handshakes use it; open
    /// connections keep theirs but are re-checked against `revoked`).
    pub(crate) fn install(&self, cfg: rustls::ServerConfig, material: &TlsMaterial) {
        self.config.store(Arc::new(cfg));
        // Built from the same material that just built `cfg`; should it
        // fail anyway, signatures are refused until the next reload.
        self.signers.store(material.client_verifier().ok());
        self.revoked.store(Arc::new(material.revoked.clone()));
        self.crl.store(Arc::new((&material.crl_info).into()));
        self.server.store(Arc::new((
            material.server_serial.clone(),
            material.server_not_after,
        )));
    }

    /// Whether a certificate chain (leaf first) would be accepted as a
    /// client certificate now: same anchors, same CRL, validity now, and
    /// the identity it names one its CA may vouch for. Sender signatures
    /// are held to exactly what a connection is held to.
    pub(crate) fn check_chain(&self, chain: &[CertificateDer<'static>]) -> Result<(), String> {
        use rustls::server::danger::ClientCertVerifier as _;
        let guard = self.signers.load();
        let Some(v) = guard.as_ref() else {
            return Err("the gateway cannot check certificate chains now".into());
        };
        let (leaf, rest) = chain.split_first().ok_or("empty chain")?;
        v.verify_client_cert(leaf, rest, rustls::pki_types::UnixTime::now())
            .map_err(|e| e.to_string())?;
        match crate::tls::identity::PeerCert::from_der(leaf).identity {
            Ok(identity) => v
                .anchors()
                .check(v.anchors().issuer_of(leaf, rest).as_ref(), &identity),
            // The caller refuses a signer that names no partner.
            Err(_) => Ok(()),
        }
    }

    /// The anchor that issued a connection's certificate (computed once
    /// per handshake; `None`, refused later, when no accepted CA did).
    pub(crate) fn anchor_of(
        &self,
        leaf: &CertificateDer<'_>,
        rest: &[CertificateDer<'_>],
    ) -> Option<AnchorId> {
        self.signers
            .load()
            .as_ref()?
            .anchors()
            .issuer_of(leaf, rest)
    }

    /// Whether the CA that issued a connection's certificate may vouch for
    /// the identity it names, under the anchors in force now (a reload
    /// that drops or rebinds a CA applies to open connections at their
    /// next request). The error names the rule.
    pub(crate) fn binding(
        &self,
        anchor: Option<&AnchorId>,
        identity: &Identity,
    ) -> Result<(), String> {
        match self.signers.load().as_ref() {
            Some(v) => v.anchors().check(anchor, identity),
            None => Err("the gateway cannot check which CA issued it now".into()),
        }
    }

    /// The config for the next handshake.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.config.load_full()
    }

    /// Whether a serial is revoked now.
    pub(crate) fn is_revoked(&self, serial: &str) -> bool {
        self.revoked.load().contains(serial)
    }

    /// The serials revoked now.
    pub fn revoked(&self) -> BTreeSet<String> {
        (**self.revoked.load()).clone()
    }

    /// The gateway's own certificate, for the admin API and metrics.
    pub(crate) fn server_cert(&self) -> super::KnownCert {
        let server = self.server.load();
        super::KnownCert {
            identity: "gateway (server)".to_owned(),
            serial: server.0.clone(),
            not_after: time::OffsetDateTime::from_unix_timestamp(server.1)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            source: "server",
            file: None,
            revoked: self.is_revoked(&server.0),
        }
    }
}
