//! Untrusted certificate, key and CRL bytes (PEM or DER).
//!
//! Everything here runs on data an operator copies around or a peer presents
//! in a handshake, so none of it may panic. Properties beyond that:
//! * `revoked_serials`: every serial is in the one canonical text form
//!   (`serial_hex`: non-empty lowercase hex, even length, no leading `00`
//!   byte unless it is `"00"`);
//! * `cert_san_uris`: returns, never panics;
//! * `PeerCert::from_der`: an unparseable certificate has an empty serial
//!   and the `Unparseable` error; a parseable one has a canonical serial,
//!   and any identity it yields is what `parse_identity` makes of a SAN URI;
//! * rustls-pki-types PEM parsing of certificates, private keys and CRLs
//!   returns, never panics (the gateway loads its TLS material with it);
//! * `parse_identity` on the input as text: an accepted partner URI is
//!   exactly `urn:brdo:partner:<id>` with a valid partner id.

#![no_main]

use brdo::domain::partner::is_partner_id;
use brdo::tls::identity::parse_identity;
use brdo::tls::{Identity, IdentityError, PeerCert};
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

fn assert_canonical_serial(s: &str) {
    assert!(!s.is_empty(), "empty serial");
    assert!(s.len().is_multiple_of(2), "odd-length serial {s:?}");
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "serial {s:?} is not lowercase hex"
    );
    assert!(
        s == "00" || !s.starts_with("00"),
        "serial {s:?} has a leading zero byte"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(serials) = brdo::pki::revoked_serials(data) {
        for s in &serials {
            assert_canonical_serial(s);
        }
    }
    let _ = brdo::pki::cert_san_uris(data);

    let peer = PeerCert::from_der(data);
    match &peer.identity {
        Err(IdentityError::Unparseable) => {
            assert!(peer.serial.is_empty() && peer.subject.is_empty());
        }
        other => {
            assert_canonical_serial(&peer.serial);
            if let Ok(id) = other {
                assert!(matches!(id.role(), "partner" | "dpo" | "operator"));
            }
        }
    }

    for cert in CertificateDer::pem_slice_iter(data) {
        let Ok(cert) = cert else { break };
        // What the gateway would do with a PEM-loaded peer certificate.
        let _ = PeerCert::from_der(cert.as_ref());
        let _ = brdo::pki::cert_san_uris(cert.as_ref());
    }
    for crl in CertificateRevocationListDer::pem_slice_iter(data) {
        let Ok(crl) = crl else { break };
        let _ = brdo::pki::revoked_serials(crl.as_ref());
    }
    let _ = PrivateKeyDer::from_pem_slice(data);

    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(Identity::Partner(id)) = parse_identity(text)
    {
        assert!(is_partner_id(id.as_str()));
        assert_eq!(text, format!("urn:brdo:partner:{id}"));
    }
});
