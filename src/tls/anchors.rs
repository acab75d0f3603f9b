//! Which CA issued a client certificate, and what that CA may vouch for
//! (SPEC §11 "Identities and trust").
//!
//! Why: with one CA, "chains to the client CA" answered every question.
//! With several authorities' CAs accepted side by side (`[tls] client_ca`
//! as a list, each peer's `ca`, a partner's `ca`), a certificate that
//! chains to *some* accepted CA may still name an identity that CA has no
//! business vouching for: one authority's CA could mint another
//! authority's partner id, or a peer gateway's CA an operator. So the
//! gateway determines the issuing anchor itself (issuer name equal to the
//! CA's subject *and* the signature verifying with the CA's key, so two
//! CAs with the same name are told apart), verifies the chain against that
//! anchor alone, and checks the binding on every request.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::error::{TlsError, file_err};
use super::identity::Identity;
use crate::domain::PartnerId;

/// Most CA certificates between a leaf and its anchor the gateway follows
/// (its own PKI issues leaves directly under the CA).
const MAX_INTERMEDIATES: usize = 4;

/// The CA files the policy names: each peer's `ca` and each bound
/// partner's `ca` (paths already resolved against the policy's folder).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyTrust {
    /// Peer gateways and the one CA file that may vouch for each.
    pub peers: Vec<(PartnerId, PathBuf)>,
    /// Partners bound to a CA file (`[[partner]] ca`).
    pub partners: Vec<(PartnerId, PathBuf)>,
}

impl PolicyTrust {
    /// The CA files `policy` names; the TLS roots follow the policy.
    pub fn of(policy: &crate::policy::Policy) -> Self {
        Self {
            peers: policy
                .peers
                .values()
                .map(|p| (p.id.clone(), p.ca.clone()))
                .collect(),
            partners: policy
                .partners
                .values()
                .filter_map(|p| p.ca.clone().map(|ca| (p.id.clone(), ca)))
                .collect(),
        }
    }

    /// Every file named, for the TLS file watch.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.peers
            .iter()
            .chain(&self.partners)
            .map(|(_, p)| p.as_path())
    }
}

/// Names one trust anchor: SHA-256 over its subject and public key (two
/// files holding the same CA are one anchor; a renewed CA with a new key is
/// another).
pub type AnchorId = [u8; 32];

/// What one anchor may vouch for.
#[derive(Debug, Clone, Default)]
struct Vouches {
    /// It is a `[tls] client_ca`: unbound identities may chain to it.
    client_ca: bool,
    /// Peer gateways whose `ca` it is: it vouches for their gateway ids
    /// and for nothing else.
    peers: BTreeSet<PartnerId>,
    /// Partners bound to it (`[[partner]] ca`), with their DPOs.
    partners: BTreeSet<PartnerId>,
}

/// One accepted CA certificate.
#[derive(Debug)]
struct Anchor {
    id: AnchorId,
    cert: CertificateDer<'static>,
    subject: Vec<u8>,
    spki: Vec<u8>,
    vouches: Vouches,
}

/// Every accepted CA and what it vouches for, built from `[tls] client_ca`
/// and the policy; swapped whole with the TLS material.
#[derive(Debug, Default)]
pub struct Anchors {
    list: Vec<Anchor>,
    /// Partners the policy binds to a CA (whatever CA that is).
    bound: BTreeSet<PartnerId>,
}

/// Where a CA certificate came from, for loading it.
#[derive(Clone, Copy)]
enum Source<'a> {
    ClientCa,
    Peer(&'a PartnerId),
    Partner(&'a PartnerId),
}

impl Anchors {
    /// Reads the `client_ca` files and the CA files the policy names; a
    /// missing or empty file is an error naming it (a start fails, a
    /// reload is refused and the anchors in force stay).
    pub fn load(client_ca: &[PathBuf], trust: &PolicyTrust) -> Result<Self, TlsError> {
        let mut anchors = Self::default();
        for path in client_ca {
            anchors.add_file("client CA", path, Source::ClientCa)?;
        }
        for (id, path) in &trust.peers {
            anchors.add_file("peer CA", path, Source::Peer(id))?;
        }
        for (id, path) in &trust.partners {
            anchors.add_file("partner CA", path, Source::Partner(id))?;
            anchors.bound.insert(id.clone());
        }
        Ok(anchors)
    }

    fn add_file(
        &mut self,
        what: &'static str,
        path: &Path,
        source: Source<'_>,
    ) -> Result<(), TlsError> {
        let pem = std::fs::read(path).map_err(|e| file_err(what, path, e))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| file_err(what, path, e))?;
        if certs.is_empty() {
            return Err(file_err(what, path, "holds no PEM certificate"));
        }
        for cert in certs {
            self.add(cert, source)
                .map_err(|m| file_err(what, path, m))?;
        }
        Ok(())
    }

    fn add(
        &mut self,
        cert: CertificateDer<'static>,
        source: Source<'_>,
    ) -> Result<(), &'static str> {
        let (subject, spki) = {
            let (_, parsed) = X509Certificate::from_der(&cert)
                .map_err(|_| "holds a certificate that cannot be parsed")?;
            (
                parsed.subject().as_raw().to_vec(),
                parsed.public_key().raw.to_vec(),
            )
        };
        let id = anchor_id(&subject, &spki);
        let at = match self.list.iter().position(|a| a.id == id) {
            Some(i) => i,
            None => {
                self.list.push(Anchor {
                    id,
                    cert,
                    subject,
                    spki,
                    vouches: Vouches::default(),
                });
                self.list.len() - 1
            }
        };
        let v = &mut self.list[at].vouches;
        match source {
            Source::ClientCa => v.client_ca = true,
            Source::Peer(p) => {
                v.peers.insert(p.clone());
            }
            Source::Partner(p) => {
                v.partners.insert(p.clone());
            }
        }
        Ok(())
    }

    /// The positions of the anchors whose subject is `name` and whose
    /// public key (DER SubjectPublicKeyInfo) `key_ok` accepts.
    pub(super) fn named(&self, name: &[u8], key_ok: impl Fn(&[u8]) -> bool) -> Vec<usize> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, a)| a.subject == name && key_ok(&a.spki))
            .map(|(i, _)| i)
            .collect()
    }

    /// The anchor that issued `leaf`, following the presented
    /// `intermediates` at most [`MAX_INTERMEDIATES`] steps: the first whose
    /// subject is the issuer's name and whose key verifies the signature.
    /// `None` when no accepted CA did (the caller refuses).
    pub fn issuer_of(&self, leaf: &[u8], intermediates: &[CertificateDer<'_>]) -> Option<AnchorId> {
        self.locate(leaf, intermediates)
            .map(|l| self.list[l.anchor].id)
    }

    fn locate(&self, leaf: &[u8], intermediates: &[CertificateDer<'_>]) -> Option<Located> {
        let (_, leaf) = X509Certificate::from_der(leaf).ok()?;
        let inter: Vec<X509Certificate<'_>> = intermediates
            .iter()
            .take(MAX_INTERMEDIATES * 2)
            .filter_map(|c| X509Certificate::from_der(c).ok().map(|(_, c)| c))
            .collect();
        let mut cur = &leaf;
        for depth in 0..=MAX_INTERMEDIATES {
            let issuer = cur.issuer().as_raw();
            if let Some(i) = self
                .list
                .iter()
                .position(|a| a.subject == issuer && signed_by(cur, &a.spki))
            {
                return Some(Located {
                    anchor: i,
                    direct: depth == 0,
                    serial: leaf.raw_serial().to_vec(),
                });
            }
            cur = inter
                .iter()
                .find(|c| c.subject().as_raw() == issuer && signed_by(cur, c.public_key().raw))?;
        }
        None
    }

    /// Whether the anchor `anchor` may vouch for `identity` (SPEC §11):
    /// a gateway id only through its own peer's `ca`; a peer's CA for
    /// nothing else; a bound partner (and its DPO) only through its own
    /// `ca`; everything else through a `client_ca`. The error names the
    /// rule, never the CA's contents.
    pub fn check(&self, anchor: Option<&AnchorId>, identity: &Identity) -> Result<(), String> {
        let Some(a) = anchor.and_then(|id| self.list.iter().find(|a| &a.id == id)) else {
            return Err("the CA that issued it is not one the gateway accepts now".into());
        };
        let v = &a.vouches;
        if let Identity::Gateway(g) = identity {
            return if v.peers.contains(g) {
                Ok(())
            } else {
                Err(format!(
                    "gateway {g} must be vouched for by its [[peer]] ca and no other CA"
                ))
            };
        }
        if !v.peers.is_empty() {
            return Err(
                "it is issued by a peer gateway's CA, which vouches for nothing but that \
                 peer's gateway id"
                    .into(),
            );
        }
        if let Some(p) = identity.partner()
            && self.bound.contains(p)
        {
            return if v.partners.contains(p) {
                Ok(())
            } else {
                Err(format!(
                    "partner {p} is bound to its [[partner]] ca and this certificate is issued \
                     by another CA"
                ))
            };
        }
        if v.client_ca {
            Ok(())
        } else {
            Err(
                "an identity bound to no CA must be issued by a [tls] client_ca, and this \
                 CA vouches only for the identities bound to it"
                    .into(),
            )
        }
    }
}

/// Where a client certificate chains to.
struct Located {
    /// The issuing anchor's position.
    anchor: usize,
    /// The anchor issued the leaf itself (no intermediate CA).
    direct: bool,
    /// The leaf's serial number, DER content bytes.
    serial: Vec<u8>,
}

/// SHA-256 over the length-prefixed subject and public key.
fn anchor_id(subject: &[u8], spki: &[u8]) -> AnchorId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(subject.len() as u64).to_be_bytes());
    ctx.update(subject);
    ctx.update(spki);
    let mut id = [0u8; 32];
    id.copy_from_slice(ctx.finish().as_ref());
    id
}

/// Whether `cert`'s signature verifies with the public key `spki` (DER).
fn signed_by(cert: &X509Certificate<'_>, spki: &[u8]) -> bool {
    SubjectPublicKeyInfo::from_der(spki)
        .is_ok_and(|(_, key)| cert.verify_signature(Some(&key)).is_ok())
}

/// The client-certificate verifier: determines the issuing anchor, then
/// verifies the chain against that anchor alone (with the CRL when the
/// anchor is the CRL's issuer). Two CAs with the same name (every `brdo
/// pki init` CA is "Brdo CA") are told apart by their keys, so the CRL of
/// one is never applied to (and never refuses) the other's certificates.
#[derive(Debug)]
pub(crate) struct AnchoredVerifier {
    anchors: Arc<Anchors>,
    by_anchor: Vec<Arc<dyn ClientCertVerifier>>,
    /// All anchors in one store, without CRLs: the CA names hinted to
    /// clients and the handshake-signature checks.
    all: Arc<dyn ClientCertVerifier>,
    /// The anchors the CRL applies to.
    crl_signers: Vec<usize>,
    /// The CRL, verified once, looked up after their chains are verified
    /// (`None`: their verifiers check it per handshake themselves).
    crl: Option<super::revocation::CrlCheck>,
}

impl AnchoredVerifier {
    /// One verifier per anchor; the CRL goes to the anchors that signed it.
    pub(crate) fn build(
        anchors: Arc<Anchors>,
        crl: &CertificateRevocationListDer<'static>,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = super::revocation::load(&anchors, crl);
        let mut all = RootCertStore::empty();
        let mut by_anchor = Vec::with_capacity(anchors.list.len());
        let built = |b: rustls::server::ClientCertVerifierBuilder| {
            b.build()
                .map_err(|e| TlsError::Rustls(format!("client verifier: {e}")))
        };
        for (i, a) in anchors.list.iter().enumerate() {
            let mut one = RootCertStore::empty();
            one.add(a.cert.clone())
                .map_err(|e| TlsError::Rustls(format!("client CA: {e}")))?;
            all.add(a.cert.clone())
                .map_err(|e| TlsError::Rustls(format!("client CA: {e}")))?;
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(one), provider.clone());
            if !loaded.signers.contains(&i) {
                // The other CAs' certificates have no CRL here.
                by_anchor.push(built(builder)?);
                continue;
            }
            // Built even when unused, so that a list WebPKI cannot take is
            // refused at load as before. A CRL that goes stale while in
            // force refuses every certificate of its CA (fail closed)
            // until a refreshed one is loaded.
            let with_crl = built(
                builder
                    .clone()
                    .with_crls([crl.clone()])
                    .enforce_revocation_expiration(),
            )?;
            by_anchor.push(if loaded.check.is_some() {
                // The chain only; the verified list is looked up after it.
                built(builder)?
            } else {
                with_crl
            });
        }
        let all = WebPkiClientVerifier::builder_with_provider(Arc::new(all), provider)
            .build()
            .map_err(|e| TlsError::Rustls(format!("client verifier: {e}")))?;
        Ok(Self {
            anchors,
            by_anchor,
            all,
            crl_signers: loaded.signers,
            crl: loaded.check,
        })
    }

    /// The anchors this verifier trusts.
    pub(crate) fn anchors(&self) -> &Anchors {
        &self.anchors
    }
}

impl ClientCertVerifier for AnchoredVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.all.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let unknown = || rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let located = self
            .anchors
            .locate(end_entity, intermediates)
            .ok_or_else(unknown)?;
        let verifier = self.by_anchor.get(located.anchor).ok_or_else(unknown)?;
        let verified = verifier.verify_client_cert(end_entity, intermediates, now)?;
        if let Some(crl) = &self.crl
            && self.crl_signers.contains(&located.anchor)
        {
            crl.check(located.direct, &located.serial, now)?;
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.all.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.all.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.all.supported_verify_schemes()
    }
}
