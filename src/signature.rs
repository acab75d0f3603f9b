//! Sender signatures: non-repudiation of origin, optional per message.
//!
//! The gateway's label binding proves what the gateway delivered; it does
//! not prove what the partner sent. A partner that wants to be able to
//! prove (or be held to) what it sent signs a *statement* of it with its
//! own certificate's key and sends the signature in `Brdo-Signature`: a
//! compact JWS with a detached payload (`header..signature`, RFC 7515
//! appendix F), `typ` `brdo-origin+jws`, its certificate chain in `x5c`.
//! The statement is the RFC 8785 canonical JSON of [`submission_statement`]
//! (or [`forward_statement`]); the gateway recomputes it from the request,
//! so a signature over anything else fails. The gateway keeps the JWS and
//! the statement and delivers both, so a recipient can check them with
//! only the CA certificate ([`verify_entry`]).

use base64::Engine as _;
use josekit::jws::{self, ES256, EdDSA, JwsHeader, JwsVerifier};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};

use crate::audit::jcs;
use crate::binding::{self, content_digests, sha256_hex, text_field};

/// The JWS `typ` of sender signatures.
pub(crate) const ORIGIN_TYPE: &str = "brdo-origin+jws";
/// The request header carrying a sender signature.
pub(crate) const SIGNATURE_HEADER: &str = "brdo-signature";
/// Most certificates accepted in `x5c`.
const MAX_CHAIN: usize = 5;
/// Longest header value accepted.
const MAX_HEADER: usize = 16 * 1024;

/// Why a signature is refused (each reason is shown to the partner in
/// `400 invalid_signature`; none carries message content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not a detached compact JWS of the expected shape.
    #[error("Brdo-Signature is not a detached compact JWS (header..signature): {0}")]
    Malformed(String),
    /// The header's algorithm, type or chain is not acceptable.
    #[error("Brdo-Signature header: {0}")]
    Header(String),
    /// The signature does not verify over the statement of this message.
    #[error(
        "Brdo-Signature does not verify over this message's statement (sign the RFC 8785 form of the statement the gateway documents, with the key of the first x5c certificate)"
    )]
    BadSignature,
    /// The certificate chain is not trusted (unknown CA, expired, revoked).
    #[error("the x5c certificate chain is not trusted: {0}")]
    Untrusted(String),
    /// The signer is not the partner that sent the request.
    #[error("the signature is by {signer}, the request comes from {sender}")]
    WrongSigner {
        /// Identity in the signing certificate.
        signer: String,
        /// The mTLS partner.
        sender: String,
    },
    /// The statement cannot be built from the message.
    #[error("the message lacks a field the statement needs: {0}")]
    Statement(String),
}

fn text<'a>(v: &'a Value, field: &str) -> Result<&'a str, SignatureError> {
    text_field(v, field).map_err(SignatureError::Statement)
}

fn sorted_ids(v: &Value, field: &str) -> Result<Vec<String>, SignatureError> {
    binding::sorted_ids(v, field).map_err(SignatureError::Statement)
}

fn digests(v: &Value, digest_of: &dyn Fn(&str) -> String) -> Result<Value, SignatureError> {
    content_digests(v, false, digest_of).map_err(SignatureError::Statement)
}

/// The statement a sender signs for `POST /v1/messages`: built from the
/// request body as sent (`label` and `evaluation` exactly as the sender
/// wrote them), with each attachment's SHA-256 (`digest_of`, as returned
/// by the upload).
pub fn submission_statement(
    sender: &str,
    request: &Value,
    digest_of: &dyn Fn(&str) -> String,
) -> Result<Value, SignatureError> {
    Ok(json!({
        "v": 1,
        "kind": "submit",
        "sender": sender,
        "recipients": sorted_ids(request, "recipients")?,
        "label": request.get("label").cloned().unwrap_or(Value::Null),
        "evaluation": request.get("evaluation").cloned().unwrap_or(Value::Null),
        "purpose": request.get("purpose").cloned().unwrap_or(Value::Null),
        "digests": digests(request, digest_of)?,
    }))
}

/// The statement a forwarder signs for `POST /v1/messages/{id}/forward`:
/// the original as the forwarder received it (`original`, the document of
/// `GET /v1/messages/{id}`) and the new recipients.
pub fn forward_statement(
    forwarder: &str,
    original: &Value,
    recipients: &[String],
    digest_of: &dyn Fn(&str) -> String,
) -> Result<Value, SignatureError> {
    let mut recipients = recipients.to_vec();
    recipients.sort();
    Ok(json!({
        "v": 1,
        "kind": "forward",
        "sender": forwarder,
        "forward_of": text(original, "id")?,
        "recipients": recipients,
        "label": original.get("label").cloned().unwrap_or(Value::Null),
        "evaluation": original.get("evaluation").cloned().unwrap_or(Value::Null),
        "purpose": original.get("purpose").cloned().unwrap_or(Value::Null),
        "digests": digests(original, digest_of)?,
    }))
}

/// The bytes signed: the statement's RFC 8785 form.
pub(crate) fn statement_bytes(statement: &Value) -> String {
    jcs::canonicalize(statement)
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Makes a `Brdo-Signature` value: what a partner system (or `brdo
/// client`) does with its certificate's key (PKCS#8 PEM, P-256 or
/// Ed25519) and chain (PEM, leaf first).
pub fn sign(key_pem: &[u8], chain_pem: &[u8], statement: &Value) -> Result<String, SignatureError> {
    let chain: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(chain_pem)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| SignatureError::Header(format!("certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(SignatureError::Header("no certificate in the chain".into()));
    }
    let mut header = JwsHeader::new();
    header.set_token_type(ORIGIN_TYPE);
    header.set_x509_certificate_chain(&chain);
    let payload = statement_bytes(statement);
    let compact = if let Ok(s) = ES256.signer_from_pem(key_pem) {
        jws::serialize_compact(payload.as_bytes(), &header, &s)
    } else if let Ok(s) = EdDSA.signer_from_pem(key_pem) {
        jws::serialize_compact(payload.as_bytes(), &header, &s)
    } else {
        return Err(SignatureError::Header(
            "the key is not a PKCS#8 P-256 or Ed25519 private key".into(),
        ));
    }
    .map_err(|e| SignatureError::Header(e.to_string()))?;
    let mut parts = compact.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(_), Some(s)) => Ok(format!("{h}..{s}")),
        _ => Err(SignatureError::Malformed("signing produced no JWS".into())),
    }
}

/// Checks a detached JWS over `statement`; returns the `x5c` chain (leaf
/// first) for the caller to check trust and identity. Only ES256 and EdDSA
/// are accepted, with the key of the leaf certificate.
pub fn check(
    jws_value: &str,
    statement: &Value,
) -> Result<Vec<CertificateDer<'static>>, SignatureError> {
    if jws_value.len() > MAX_HEADER {
        return Err(SignatureError::Malformed(format!(
            "longer than {MAX_HEADER} bytes"
        )));
    }
    let parts: Vec<&str> = jws_value.trim().split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err(SignatureError::Malformed("not three parts".into()));
    };
    if !p.is_empty() {
        return Err(SignatureError::Malformed(
            "the payload part must be empty (detached)".into(),
        ));
    }
    let header_bytes = B64
        .decode(h)
        .map_err(|_| SignatureError::Malformed("the header is not base64url".into()))?;
    let header: Value = serde_json::from_slice(&header_bytes)
        .map_err(|_| SignatureError::Malformed("the header is not JSON".into()))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if header["typ"] != ORIGIN_TYPE {
        return Err(SignatureError::Header(format!("typ must be {ORIGIN_TYPE}")));
    }
    if header.get("crit").is_some() {
        return Err(SignatureError::Header("crit is not supported".into()));
    }
    let x5c = header["x5c"]
        .as_array()
        .filter(|a| !a.is_empty() && a.len() <= MAX_CHAIN)
        .ok_or_else(|| {
            SignatureError::Header(format!("x5c must hold 1 to {MAX_CHAIN} certificates"))
        })?;
    let std_b64 = base64::engine::general_purpose::STANDARD;
    let chain: Vec<CertificateDer<'static>> = x5c
        .iter()
        .map(|c| {
            c.as_str()
                .and_then(|c| std_b64.decode(c).ok())
                .map(CertificateDer::from)
        })
        .collect::<Option<_>>()
        .ok_or_else(|| SignatureError::Header("x5c entries must be base64 DER".into()))?;
    let spki = leaf_spki(&chain[0])?;
    let verifier: Box<dyn JwsVerifier> = match alg {
        "ES256" => Box::new(
            ES256
                .verifier_from_der(&spki)
                .map_err(|_| SignatureError::Header("the x5c key is not a P-256 key".into()))?,
        ),
        "EdDSA" => Box::new(
            EdDSA
                .verifier_from_der(&spki)
                .map_err(|_| SignatureError::Header("the x5c key is not an Ed25519 key".into()))?,
        ),
        other => {
            return Err(SignatureError::Header(format!(
                "alg {:?} is not allowed (ES256 or EdDSA)",
                other.chars().take(20).collect::<String>()
            )));
        }
    };
    let full = format!("{h}.{}.{s}", B64.encode(statement_bytes(statement)));
    jws::deserialize_compact(&full, &*verifier).map_err(|_| SignatureError::BadSignature)?;
    Ok(chain)
}

fn leaf_spki(der: &CertificateDer<'_>) -> Result<Vec<u8>, SignatureError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|_| SignatureError::Header("the first x5c entry is not a certificate".into()))?;
    Ok(cert.public_key().raw.to_vec())
}

/// The partner a certificate names (`urn:brdo:partner:<ID>`), if any.
pub(crate) fn partner_of(der: &CertificateDer<'_>) -> Option<String> {
    match crate::tls::identity::PeerCert::from_der(der).identity {
        Ok(crate::tls::identity::Identity::Partner(p)) => Some(p.to_string()),
        _ => None,
    }
}

/// A recipient's offline check of one delivered signature entry
/// (`{"partner", "role", "jws", "statement"}`) against the message as
/// received (`doc`) and the CA it trusts: the JWS verifies over the
/// statement, the chain leads to `ca_pem`, the signer is the named
/// partner, and the statement's subject and body digests are the
/// message's. Returns the signer.
pub fn verify_entry(entry: &Value, doc: &Value, ca_pem: &[u8]) -> Result<String, SignatureError> {
    let jws_value = entry["jws"]
        .as_str()
        .ok_or_else(|| SignatureError::Malformed("the entry has no `jws`".into()))?;
    let statement = &entry["statement"];
    let chain = check(jws_value, statement)?;
    trust(&chain, ca_pem)?;
    let signer = partner_of(&chain[0]).unwrap_or_else(|| "(not a partner)".into());
    if entry["partner"].as_str() != Some(signer.as_str())
        || statement["sender"].as_str() != Some(signer.as_str())
    {
        return Err(SignatureError::WrongSigner {
            signer,
            sender: entry["partner"].as_str().unwrap_or_default().to_owned(),
        });
    }
    for field in ["subject", "body"] {
        let actual = doc[field].as_str().map(|t| sha256_hex(t.as_bytes()));
        if statement["digests"][field].as_str() != actual.as_deref() {
            return Err(SignatureError::Statement(format!(
                "the signed {field} digest is not this message's {field}"
            )));
        }
    }
    Ok(signer)
}

/// Checks a chain against a CA (PEM) as the gateway checks client
/// certificates, without revocation (a recipient may not hold the CRL).
pub(crate) fn trust(
    chain: &[CertificateDer<'static>],
    ca_pem: &[u8],
) -> Result<(), SignatureError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem) {
        let ca = ca.map_err(|e| SignatureError::Untrusted(format!("CA file: {e}")))?;
        roots
            .add(ca)
            .map_err(|e| SignatureError::Untrusted(format!("CA file: {e}")))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider,
    )
    .build()
    .map_err(|e| SignatureError::Untrusted(e.to_string()))?;
    let (leaf, rest) = chain
        .split_first()
        .ok_or_else(|| SignatureError::Untrusted("empty chain".into()))?;
    verifier
        .verify_client_cert(leaf, rest, rustls::pki_types::UnixTime::now())
        .map(|_| ())
        .map_err(|e| SignatureError::Untrusted(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Partner {
        _dir: tempfile::TempDir,
        pki: std::path::PathBuf,
    }

    fn pki() -> Partner {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        let now = time::OffsetDateTime::now_utc();
        crate::pki::init(&pki, &[], now).expect("init");
        crate::pki::issue(
            &pki,
            &crate::pki::Subject::Partner("AL-CTD".into()),
            30,
            "pw",
            now,
        )
        .expect("issue");
        Partner { _dir: dir, pki }
    }

    fn request() -> Value {
        json!({
            "recipients": ["RS-MOI", "EU-ECTC"],
            "subject": "Border alert",
            "body": "Vehicle crossing.",
            "label": {"classification": "EU_RESTRICTED", "handling_codes": ["H2"]},
            "evaluation": {"source": "B", "information": "2"},
            "purpose": "counter_terrorism",
            "attachments": [],
        })
    }

    fn signed(p: &Partner, st: &Value) -> String {
        let key = std::fs::read(p.pki.join("partner-AL-CTD.key")).expect("key");
        let crt = std::fs::read(p.pki.join("partner-AL-CTD.crt")).expect("crt");
        sign(&key, &crt, st).expect("sign")
    }

    #[test]
    fn a_signature_verifies_over_its_statement_only() {
        let p = pki();
        let none = |_: &str| String::new();
        let st = submission_statement("AL-CTD", &request(), &none).expect("statement");
        let sig = signed(&p, &st);
        assert!(sig.contains(".."), "detached");
        let chain = check(&sig, &st).expect("verifies");
        assert_eq!(partner_of(&chain[0]).as_deref(), Some("AL-CTD"));
        let ca = std::fs::read(p.pki.join("ca.crt")).expect("ca");
        trust(&chain, &ca).expect("trusted");
        // Any change to what was sent breaks it.
        for change in ["recipients", "label", "body"] {
            let mut r = request();
            r[change] = match change {
                "recipients" => json!(["RS-MOI"]),
                "label" => json!({"classification": "UNCLASSIFIED"}),
                _ => json!("Another body."),
            };
            let other = submission_statement("AL-CTD", &r, &none).expect("statement");
            assert_eq!(
                check(&sig, &other),
                Err(SignatureError::BadSignature),
                "{change}"
            );
        }
        // Another CA does not trust it.
        let q = pki();
        let other_ca = std::fs::read(q.pki.join("ca.crt")).expect("ca");
        assert!(matches!(
            trust(&chain, &other_ca),
            Err(SignatureError::Untrusted(_))
        ));
    }

    #[test]
    fn malformed_and_confused_signatures_are_refused() {
        let p = pki();
        let none = |_: &str| String::new();
        let st = submission_statement("AL-CTD", &request(), &none).expect("statement");
        let sig = signed(&p, &st);
        let (h, s) = sig.split_once("..").expect("detached");
        assert!(matches!(
            check("abc", &st),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            check(&format!("{h}.e30.{s}"), &st),
            Err(SignatureError::Malformed(_))
        ));
        let hdr = |v: Value| B64.encode(v.to_string());
        for bad in [
            json!({"alg": "none", "typ": ORIGIN_TYPE, "x5c": ["AA=="]}),
            json!({"alg": "HS256", "typ": ORIGIN_TYPE, "x5c": ["AA=="]}),
            json!({"alg": "ES256", "typ": "JWT", "x5c": ["AA=="]}),
            json!({"alg": "ES256", "typ": ORIGIN_TYPE}),
            json!({"alg": "ES256", "typ": ORIGIN_TYPE, "x5c": ["not base64!"]}),
        ] {
            assert!(
                matches!(
                    check(&format!("{}..{s}", hdr(bad.clone())), &st),
                    Err(SignatureError::Header(_))
                ),
                "{bad}"
            );
        }
        assert!(check(&"a".repeat(MAX_HEADER + 1), &st).is_err());
    }
}
