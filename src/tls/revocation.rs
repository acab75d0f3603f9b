//! The CRL in force, its signature verified once per list instead of once
//! per handshake.
//!
//! Why: rustls's WebPKI verifier, given a CRL, verifies the CRL's
//! signature again in every handshake (an ECDSA verification per
//! connection, a tenth of a handshake's CPU), although the list changes
//! only when a new one is loaded. Here the list is parsed and its
//! signature verified against each accepted anchor when the TLS material
//! is built (at start and at every reload), and a handshake only looks the
//! certificate's serial up in the verified list, after the chain itself
//! has been verified against its anchor.
//!
//! It refuses exactly what the WebPKI check refused: a certificate listed
//! as revoked; any certificate of the CRL's CA once the list's nextUpdate
//! has passed (fail closed until a refreshed list is loaded); and a leaf
//! that a presented intermediate CA, not the CRL's CA itself, issued (the
//! list does not speak for it: revocation status unknown). A list this
//! check does not cover in full (one with an issuing distribution point,
//! which limits its scope) stays with the WebPKI check per handshake.

use std::collections::HashSet;

use rustls::pki_types::{CertificateRevocationListDer, UnixTime};
use rustls::{CertificateError, Error};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::anchors::Anchors;

/// The issuing distribution point extension (RFC 5280 §5.2.5).
const ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";

/// What the CRL is, once parsed and verified.
#[derive(Debug, Default)]
pub(crate) struct LoadedCrl {
    /// The anchors whose name is the CRL's issuer and whose key signed it:
    /// their certificates are subject to it.
    pub signers: Vec<usize>,
    /// The verified list for the per-handshake lookup; `None` when the
    /// WebPKI check must keep it (see the module's notes).
    pub check: Option<CrlCheck>,
}

/// A verified CRL's revoked serials and nextUpdate.
#[derive(Debug)]
pub(crate) struct CrlCheck {
    /// Revoked serial numbers, as their DER content bytes.
    revoked: HashSet<Vec<u8>>,
    /// After this (unix seconds) the list refuses every certificate of
    /// its CA.
    next_update: u64,
}

/// Parses `crl` and verifies its signature with each anchor named as its
/// issuer. An unreadable list is signed by no anchor: the WebPKI verifier
/// built with it then refuses it at load, as before.
pub(crate) fn load(anchors: &Anchors, crl: &CertificateRevocationListDer<'static>) -> LoadedCrl {
    let Ok((_, parsed)) = CertificateRevocationList::from_der(crl.as_ref()) else {
        return LoadedCrl::default();
    };
    let signers = anchors.named(parsed.issuer().as_raw(), |spki| {
        SubjectPublicKeyInfo::from_der(spki)
            .is_ok_and(|(_, key)| parsed.verify_signature(&key).is_ok())
    });
    let scoped = parsed
        .extensions()
        .iter()
        .any(|e| e.oid.to_id_string() == ISSUING_DISTRIBUTION_POINT);
    let next_update = parsed
        .next_update()
        .and_then(|t| u64::try_from(t.timestamp()).ok());
    let check = match next_update {
        Some(next_update) if !scoped && !signers.is_empty() => Some(CrlCheck {
            revoked: parsed
                .iter_revoked_certificates()
                .map(|r| r.raw_serial().to_vec())
                .collect(),
            next_update,
        }),
        _ => None,
    };
    LoadedCrl { signers, check }
}

impl CrlCheck {
    /// Whether the certificate with DER serial `serial`, whose chain has
    /// already been verified to one of the CRL's signers, may pass:
    /// `direct` says that signer issued it itself (no intermediate CA).
    pub(crate) fn check(&self, direct: bool, serial: &[u8], now: UnixTime) -> Result<(), Error> {
        if now.as_secs() >= self.next_update {
            return Err(CertificateError::ExpiredRevocationList.into());
        }
        if !direct {
            return Err(CertificateError::UnknownRevocationStatus.into());
        }
        if self.revoked.contains(serial) {
            return Err(CertificateError::Revoked.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn list(serials: &[&[u8]], next_update: u64) -> CrlCheck {
        CrlCheck {
            revoked: serials.iter().map(|s| s.to_vec()).collect(),
            next_update,
        }
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    /// A PKI with partners AL-CTD and RS-MOI, RS-MOI revoked; the TLS
    /// material loaded from it.
    fn pki_with_a_revocation(dir: &std::path::Path) -> crate::config::TlsConfig {
        let now = time::OffsetDateTime::now_utc();
        crate::pki::init(dir, &[], now).expect("init");
        for p in ["AL-CTD", "RS-MOI"] {
            crate::pki::issue(dir, &crate::pki::Subject::Partner(p.into()), 800, "x", now)
                .expect("issue");
        }
        crate::pki::revoke(
            dir,
            &serial_hex(dir, "RS-MOI"),
            crate::pki::RevocationReason::KeyCompromise,
            now,
        )
        .expect("revoke");
        crate::config::TlsConfig {
            cert: dir.join("gateway.crt"),
            key: dir.join("gateway.key"),
            client_ca: dir.join("ca.crt").into(),
            crl: dir.join("ca.crl"),
            ..crate::config::TlsConfig::default()
        }
    }

    fn leaf(dir: &std::path::Path, partner: &str) -> rustls::pki_types::CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(dir.join(format!("partner-{partner}.crt"))).expect("cert");
        rustls::pki_types::CertificateDer::from_pem_slice(&pem).expect("pem")
    }

    fn serial_hex(dir: &std::path::Path, partner: &str) -> String {
        crate::tls::PeerCert::from_der(&leaf(dir, partner)).serial
    }

    #[test]
    fn the_verifier_refuses_a_revoked_leaf_and_a_stale_list() {
        use rustls::server::danger::ClientCertVerifier;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pki");
        let cfg = pki_with_a_revocation(&dir);
        let material =
            crate::tls::TlsMaterial::load(&cfg, &crate::tls::PolicyTrust::default()).expect("load");
        let verifier = material.client_verifier().expect("verifier");
        let now = UnixTime::now();
        let (good, revoked) = (leaf(&dir, "AL-CTD"), leaf(&dir, "RS-MOI"));
        verifier
            .verify_client_cert(&good, &[], now)
            .expect("AL-CTD passes");
        assert_eq!(
            verifier.verify_client_cert(&revoked, &[], now).err(),
            Some(CertificateError::Revoked.into())
        );
        // Once the list's nextUpdate has passed, every leaf of its CA is
        // refused, the valid one too (fail closed).
        let stale = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(material.crl_info.next_update).expect("positive") + 1,
        ));
        assert_eq!(
            verifier.verify_client_cert(&good, &[], stale).err(),
            Some(CertificateError::ExpiredRevocationList.into())
        );
    }

    #[test]
    fn a_list_with_a_bad_signature_or_another_issuer_is_refused_at_load() {
        use rustls::pki_types::pem::PemObject;
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = pki_with_a_revocation(&tmp.path().join("pki"));
        let pem = std::fs::read(&cfg.crl).expect("crl");
        let mut der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(&pem)
            .expect("pem")
            .as_ref()
            .to_vec();
        // The signature's last byte.
        let last = der.len() - 1;
        der[last] ^= 0x01;
        std::fs::write(&cfg.crl, &der).expect("write");
        let trust = crate::tls::PolicyTrust::default();
        assert!(crate::tls::TlsMaterial::load(&cfg, &trust).is_err());

        // A list another CA signed, under this CA's file name.
        let other = tmp.path().join("other");
        pki_with_a_revocation(&other);
        std::fs::copy(other.join("ca.crl"), &cfg.crl).expect("copy");
        assert!(crate::tls::TlsMaterial::load(&cfg, &trust).is_err());
    }

    #[test]
    fn a_listed_serial_is_refused_and_others_pass() {
        let crl = list(&[&[0x0b], &[0x00, 0x80]], 1_000);
        assert_eq!(
            crl.check(true, &[0x0b], at(10)),
            Err(CertificateError::Revoked.into())
        );
        assert_eq!(
            crl.check(true, &[0x00, 0x80], at(10)),
            Err(CertificateError::Revoked.into())
        );
        assert_eq!(crl.check(true, &[0x0c], at(10)), Ok(()));
        // The same bytes, not the same number: 0x80 is not 0x0080.
        assert_eq!(crl.check(true, &[0x80], at(10)), Ok(()));
    }

    #[test]
    fn an_expired_list_or_an_intermediate_fails_closed() {
        let crl = list(&[], 1_000);
        assert_eq!(crl.check(true, &[1], at(999)), Ok(()));
        for now in [1_000, 5_000] {
            assert_eq!(
                crl.check(true, &[1], at(now)),
                Err(CertificateError::ExpiredRevocationList.into())
            );
        }
        assert_eq!(
            crl.check(false, &[1], at(10)),
            Err(CertificateError::UnknownRevocationStatus.into())
        );
    }
}
