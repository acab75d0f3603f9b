//! Compact JWS — signed checkpoints, label bindings and receipts. Keys are
//! read here (josekit for the files ring cannot read); signing and checking
//! are `jws_core`'s, on ring.
//!
//! A checkpoint is the log's signed tree head: `{"tree_size", "root_hash",
//! "at"}`. A data-protection officer or supervisory authority who keeps
//! checkpoints can later prove, with only the public key, that the log they
//! are shown is the one the gateway committed to. Only EdDSA (Ed25519) and
//! ES256 are accepted — the verifier selects by `kid` and refuses any other
//! `alg` (no `none`, no RSA1_5, no HMAC confusion).

use std::path::Path;

use josekit::jwk::KeyPair as _;
use josekit::jws::{self, ES256, EdDSA, JwsHeader, JwsSigner};

use super::jws_core::{self, Signer, Verifier};
use serde::{Deserialize, Serialize};

/// The signed statement about the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Number of records covered.
    pub tree_size: u64,
    /// RFC 9162 root over their hashes, lower-case hex.
    pub root_hash: String,
    /// When it was signed (RFC 3339, milliseconds, `Z`).
    pub at: String,
}

/// Why a key or a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The key file could not be read or is not an Ed25519/P-256 key.
    #[error("{path}: {message}")]
    Key {
        /// The file (or `"key"`).
        path: String,
        /// Why.
        message: String,
    },
    /// The JWS is malformed, signed by another key, with another
    /// algorithm, or its signature does not verify.
    #[error("the signature does not verify: {0}")]
    Signature(String),
    /// The payload is not a checkpoint.
    #[error("the signed payload is not valid: {0}")]
    Payload(String),
}

/// The JWS `typ` of checkpoints.
pub(crate) const CHECKPOINT_TYPE: &str = "brdo-checkpoint+jws";

/// A short id of a public key: hex of the first 8 bytes of SHA-256 over its
/// SubjectPublicKeyInfo DER.
pub fn key_id(spki_der: &[u8]) -> String {
    hex::encode(&ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref()[..8])
}

/// A private signing key (Ed25519 or P-256) that makes compact JWS.
///
/// One type for every key the gateway signs with — the audit key for
/// checkpoints, the envelope key for label bindings — so algorithm
/// selection and key ids are decided in one place.
pub struct JwsKey {
    signer: Engine,
    kid: String,
    public_pem: Vec<u8>,
}

/// What makes the signatures: ring (`jws_core`), or josekit for a key file
/// ring cannot read (a P-256 key without its public half).
enum Engine {
    Ring(Box<Signer>),
    Jose(Box<dyn JwsSigner>),
}

impl std::fmt::Debug for JwsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwsKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn key_err(path: &str, message: impl ToString) -> JoseError {
    JoseError::Key {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

impl JwsKey {
    /// Loads a PKCS#8 PEM private key (Ed25519 or P-256); the file must be
    /// readable by its owner only.
    pub fn from_pem_file(path: &Path) -> Result<Self, JoseError> {
        let name = path.display().to_string();
        super::check_owner_only(path).map_err(|e| key_err(&name, e))?;
        // The private key's text is wiped once parsed.
        let pem = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| key_err(&name, e))?);
        Self::from_pem(&pem).map_err(|e| match e {
            JoseError::Key { message, .. } => key_err(&name, message),
            other => other,
        })
    }

    /// Loads a PKCS#8 PEM private key (Ed25519 or P-256).
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, JoseError> {
        let ring = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem)
            .ok()
            .and_then(|der| Signer::from_pkcs8(der.secret_pkcs8_der()));
        if let Some(signer) = ring {
            let spki = signer.spki_der();
            return Ok(Self {
                kid: key_id(&spki),
                public_pem: spki_pem(&spki),
                signer: Engine::Ring(Box::new(signer)),
            });
        }
        if let Ok(pair) = EdDSA.key_pair_from_pem(pem) {
            let signer = EdDSA.signer_from_pem(pem).map_err(|e| key_err("key", e))?;
            return Ok(Self {
                kid: key_id(&pair.to_der_public_key()),
                public_pem: pair.to_pem_public_key(),
                signer: Engine::Jose(Box::new(signer)),
            });
        }
        if let Ok(pair) = ES256.key_pair_from_pem(pem) {
            let signer = ES256.signer_from_pem(pem).map_err(|e| key_err("key", e))?;
            return Ok(Self {
                kid: key_id(&pair.to_der_public_key()),
                public_pem: pair.to_pem_public_key(),
                signer: Engine::Jose(Box::new(signer)),
            });
        }
        Err(key_err(
            "key",
            "is not a PKCS#8 PEM Ed25519 or P-256 private key",
        ))
    }

    /// A verifier for this key's own signatures.
    pub fn verifier(&self) -> Result<JwsKeys, JoseError> {
        JwsKeys::from_public_pem(&self.public_pem)
    }

    /// Signs `payload` as a compact JWS whose header names `typ`.
    pub fn sign(&self, payload: &[u8], typ: &str) -> Result<String, JoseError> {
        match &self.signer {
            Engine::Ring(signer) => {
                let header = serde_json::json!({
                    "alg": signer.alg().name(),
                    "kid": self.kid,
                    "typ": typ,
                });
                signer
                    .sign_compact(header.to_string().as_bytes(), payload)
                    .map_err(JoseError::Signature)
            }
            Engine::Jose(signer) => {
                let mut header = JwsHeader::new();
                header.set_token_type(typ);
                header.set_key_id(self.kid.clone());
                jws::serialize_compact(payload, &header, &**signer)
                    .map_err(|e| JoseError::Signature(e.to_string()))
            }
        }
    }
}

/// SubjectPublicKeyInfo DER as PEM.
fn spki_pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem.into_bytes()
}

/// Published public keys that verify compact JWS of one `typ`.
#[derive(Clone)]
pub struct JwsKeys {
    keys: Vec<(String, Verifier)>,
    /// JWS these keys verified through [`JwsKeys::verify_memo`]: the
    /// SHA-256 of type and compact form, with the payload. One signature
    /// over a batch's root is met once per document of the batch
    /// (`federation::batch_sig`); it is checked once. Shared by clones.
    memo: Memo,
}

/// What [`JwsKeys::verify_memo`] remembers: digest and payload.
type Memo = std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<([u8; 32], Vec<u8>)>>>;

/// How many verified JWS [`JwsKeys::verify_memo`] remembers: a few
/// batches' roots.
const MEMO: usize = 64;

impl std::fmt::Debug for JwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("JwsKeys").field("kids", &kids).finish()
    }
}

impl JwsKeys {
    /// Loads one SPKI PEM public key (`audit-signing.pub`,
    /// `envelope-signing.pub`).
    pub fn from_public_pem_file(path: &Path) -> Result<Self, JoseError> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| key_err(&name, e))?;
        Self::from_public_pem(&pem).map_err(|e| match e {
            JoseError::Key { message, .. } => key_err(&name, message),
            other => other,
        })
    }

    /// Loads one SPKI PEM public key.
    pub(crate) fn from_public_pem(pem: &[u8]) -> Result<Self, JoseError> {
        let der = rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|_| key_err("key", "is not a PEM public key"))?;
        let verifier = Verifier::from_spki(der.as_ref())
            .ok_or_else(|| key_err("key", "is not an Ed25519 or P-256 public key"))?;
        Ok(Self {
            keys: vec![(key_id(der.as_ref()), verifier)],
            memo: std::sync::Arc::default(),
        })
    }

    /// [`JwsKeys::verify`], remembering what verified: the same compact
    /// JWS of the same `typ`, met again, gives its payload without a
    /// second signature check. Only a JWS that verified is remembered, by
    /// the SHA-256 of its whole text, so nothing else can hit the memo.
    pub fn verify_memo(&self, compact: &str, typ: &str) -> Result<Vec<u8>, JoseError> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(typ.as_bytes());
        ctx.update(&[0]);
        ctx.update(compact.trim().as_bytes());
        let mut seen = [0u8; 32];
        seen.copy_from_slice(ctx.finish().as_ref());
        if let Ok(memo) = self.memo.lock()
            && let Some((_, payload)) = memo.iter().find(|(d, _)| *d == seen)
        {
            return Ok(payload.clone());
        }
        let payload = self.verify(compact, typ)?;
        if let Ok(mut memo) = self.memo.lock() {
            if memo.len() >= MEMO {
                memo.pop_front();
            }
            memo.push_back((seen, payload.clone()));
        }
        Ok(payload)
    }

    /// Verifies a compact JWS of type `typ` and returns its payload. Only
    /// EdDSA and ES256 by a known `kid`, with the `alg` of that key, are
    /// accepted.
    pub fn verify(&self, compact: &str, typ: &str) -> Result<Vec<u8>, JoseError> {
        let bad = |m: &str| JoseError::Signature(m.to_owned());
        let parts = jws_core::parse(compact.trim()).map_err(JoseError::Signature)?;
        let alg = parts
            .header
            .get("alg")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if alg != "EdDSA" && alg != "ES256" {
            return Err(JoseError::Signature(format!("alg {alg:?} is not allowed")));
        }
        let Some((_, key)) = parts
            .header
            .get("kid")
            .and_then(serde_json::Value::as_str)
            .and_then(|kid| self.keys.iter().find(|(k, _)| k == kid))
        else {
            return Err(bad("signed by an unknown key (kid)"));
        };
        if key.alg().name() != alg {
            return Err(bad("alg does not match the key"));
        }
        if !key.check(parts.input.as_bytes(), &parts.signature) {
            return Err(bad("the signature is invalid"));
        }
        if parts.header.get("typ").and_then(serde_json::Value::as_str) != Some(typ) {
            return Err(JoseError::Signature(format!(
                "the JWS is not of type {typ} (typ)"
            )));
        }
        Ok(parts.payload)
    }
}

/// Signs checkpoints with the audit signing key.
#[derive(Debug)]
pub struct CheckpointSigner(JwsKey);

impl CheckpointSigner {
    /// Loads the audit signing key (PKCS#8 PEM, Ed25519 or P-256).
    pub fn from_pem_file(path: &Path) -> Result<Self, JoseError> {
        JwsKey::from_pem_file(path).map(Self)
    }

    /// Loads a PKCS#8 PEM private key (Ed25519 or P-256).
    #[cfg(test)]
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, JoseError> {
        JwsKey::from_pem(pem).map(Self)
    }

    /// A verifier for this key's own signatures.
    pub fn verifier(&self) -> Result<CheckpointVerifier, JoseError> {
        self.0.verifier().map(CheckpointVerifier)
    }

    /// Signs a checkpoint as a compact JWS.
    pub fn sign(&self, cp: &Checkpoint) -> Result<String, JoseError> {
        let payload = serde_json::to_vec(cp).map_err(|e| JoseError::Payload(e.to_string()))?;
        self.0.sign(&payload, CHECKPOINT_TYPE)
    }
}

/// Verifies checkpoints with published public keys.
#[derive(Debug)]
pub struct CheckpointVerifier(JwsKeys);

impl CheckpointVerifier {
    /// Loads one SPKI PEM public key (`audit-signing.pub`).
    pub fn from_public_pem_file(path: &Path) -> Result<Self, JoseError> {
        JwsKeys::from_public_pem_file(path).map(Self)
    }

    /// Loads one SPKI PEM public key.
    #[cfg(test)]
    pub(crate) fn from_public_pem(pem: &[u8]) -> Result<Self, JoseError> {
        JwsKeys::from_public_pem(pem).map(Self)
    }

    /// Verifies a compact JWS and returns its checkpoint.
    pub fn verify(&self, compact: &str) -> Result<Checkpoint, JoseError> {
        let payload = self.0.verify(compact, CHECKPOINT_TYPE)?;
        serde_json::from_slice(&payload).map_err(|e| JoseError::Payload(e.to_string()))
    }
}

use rustls::pki_types::pem::PemObject as _;

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        crate::pki::init(&pki, &[], time::OffsetDateTime::now_utc()).expect("init");
        (dir, pki)
    }

    fn cp() -> Checkpoint {
        Checkpoint {
            tree_size: 42,
            root_hash: "ab".repeat(32),
            at: "2026-11-21T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn sign_and_verify_with_the_published_key() {
        let (_d, pki) = keys();
        let signer =
            CheckpointSigner::from_pem_file(&pki.join("audit-signing.key")).expect("signer");
        let verifier = CheckpointVerifier::from_public_pem_file(&pki.join("audit-signing.pub"))
            .expect("verifier");
        let jws = signer.sign(&cp()).expect("sign");
        assert_eq!(jws.split('.').count(), 3);
        assert_eq!(verifier.verify(&jws).expect("verify"), cp());
        let own = signer.verifier().expect("own");
        assert_eq!(own.verify(&jws).expect("verify"), cp());
    }

    #[test]
    fn tampered_foreign_and_unsigned_checkpoints_fail() {
        let (_d, pki) = keys();
        let (_d2, other) = keys();
        let signer =
            CheckpointSigner::from_pem_file(&pki.join("audit-signing.key")).expect("signer");
        let verifier = CheckpointVerifier::from_public_pem_file(&pki.join("audit-signing.pub"))
            .expect("verifier");
        let jws = signer.sign(&cp()).expect("sign");
        let parts: Vec<&str> = jws.split('.').collect();
        // Another payload under the same signature.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let forged = b64.encode(br#"{"tree_size":43,"root_hash":"00","at":"x"}"#);
        assert!(
            verifier
                .verify(&format!("{}.{forged}.{}", parts[0], parts[2]))
                .is_err()
        );
        // Signed by another gateway's key.
        let foreign =
            CheckpointSigner::from_pem_file(&other.join("audit-signing.key")).expect("signer");
        assert!(
            verifier
                .verify(&foreign.sign(&cp()).expect("sign"))
                .is_err()
        );
        // alg none.
        let none = b64.encode(br#"{"alg":"none","typ":"brdo-checkpoint+jws"}"#);
        assert!(verifier.verify(&format!("{none}.{}.", parts[1])).is_err());
        // HS256 with the public key as secret (algorithm confusion).
        let hs = b64.encode(br#"{"alg":"HS256","typ":"brdo-checkpoint+jws"}"#);
        assert!(
            verifier
                .verify(&format!("{hs}.{}.{}", parts[1], parts[2]))
                .is_err()
        );
        assert!(verifier.verify("not a jws").is_err());
    }

    /// What a peer could try on a receipt or binding: a genuine
    /// signature relabelled with another `alg` (the key decides the
    /// algorithm, and the header must agree), another `kid`, another
    /// `typ`, padding, trailing data, whitespace inside.
    #[test]
    fn a_relabelled_or_reshaped_jws_is_refused() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (_d, pki) = keys();
        let key = JwsKey::from_pem_file(&pki.join("envelope-signing.key")).expect("key");
        let keys = JwsKeys::from_public_pem_file(&pki.join("envelope-signing.pub")).expect("keys");
        let Engine::Ring(signer) = &key.signer else {
            panic!("the envelope key signs on ring");
        };
        let typ = "brdo-receipt+jws";
        let signed = |header: serde_json::Value| {
            signer
                .sign_compact(header.to_string().as_bytes(), b"{}")
                .expect("sign")
        };
        let alg = signer.alg().name();
        let good = signed(serde_json::json!({"alg": alg, "kid": key.kid, "typ": typ}));
        assert_eq!(keys.verify(&good, typ).expect("verifies"), b"{}");
        let other_alg = if alg == "EdDSA" { "ES256" } else { "EdDSA" };
        for header in [
            serde_json::json!({"alg": other_alg, "kid": key.kid, "typ": typ}),
            serde_json::json!({"alg": "none", "kid": key.kid, "typ": typ}),
            serde_json::json!({"alg": "HS256", "kid": key.kid, "typ": typ}),
            serde_json::json!({"alg": alg, "kid": "another", "typ": typ}),
            serde_json::json!({"alg": alg, "typ": typ}),
            serde_json::json!({"alg": alg, "kid": key.kid, "typ": "brdo-binding+jws"}),
            serde_json::json!({"alg": alg, "kid": key.kid}),
            serde_json::json!({"alg": alg, "kid": key.kid, "typ": typ, "crit": ["exp"]}),
            serde_json::json!({"alg": alg, "kid": key.kid, "typ": typ, "b64": false}),
        ] {
            assert!(
                keys.verify(&signed(header.clone()), typ).is_err(),
                "{header}"
            );
        }
        let (h, rest) = good.split_once('.').expect("parts");
        let (p, sig) = rest.split_once('.').expect("parts");
        for bad in [
            format!("{good}="),
            format!("{good}.{p}"),
            format!("{h}.{p}.{sig}AA"),
            format!("{h}.{p} .{sig}"),
            format!("{h}.{}.{sig}", b64.encode(b"{} ")),
            format!("{h}=.{p}.{sig}"),
        ] {
            assert!(keys.verify(&bad, typ).is_err(), "{bad}");
        }
    }

    #[test]
    fn p256_keys_work_too() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("p256");
        let signer = CheckpointSigner::from_pem(pair.serialize_pem().as_bytes()).expect("signer");
        let verifier = CheckpointVerifier::from_public_pem(pair.public_key_pem().as_bytes())
            .expect("verifier");
        assert_eq!(
            verifier
                .verify(&signer.sign(&cp()).expect("sign"))
                .expect("verify"),
            cp()
        );
    }

    /// The memo serves only what verified, and only for the same text,
    /// `typ` and keys: a refused JWS is checked (and refused) again, a
    /// remembered one is not served for another `typ`, nor to another
    /// gateway's keys.
    #[test]
    fn verify_memo_serves_only_what_verified_for_its_typ_and_keys() {
        let (_d, pki) = keys();
        let (_d2, other) = keys();
        let key = JwsKey::from_pem_file(&pki.join("envelope-signing.key")).expect("key");
        let mine = key.verifier().expect("verifier");
        let theirs =
            JwsKeys::from_public_pem_file(&other.join("envelope-signing.pub")).expect("pub");
        let jws = key.sign(b"{\"n\":1}", "brdo-batch+jws").expect("sign");
        let parts: Vec<&str> = jws.split('.').collect();
        let bad = format!("{}.{}.{}", parts[0], "eyJuIjoyfQ", parts[2]);
        for _ in 0..2 {
            assert!(mine.verify_memo(&bad, "brdo-batch+jws").is_err());
        }
        let clone = mine.clone();
        assert_eq!(
            mine.verify_memo(&jws, "brdo-batch+jws").expect("verifies"),
            b"{\"n\":1}"
        );
        assert!(clone.verify_memo(&jws, "brdo-receipt+jws").is_err());
        assert!(mine.verify_memo(&jws, "brdo-binding+jws").is_err());
        assert!(theirs.verify_memo(&jws, "brdo-batch+jws").is_err());
        assert!(mine.verify_memo(&bad, "brdo-batch+jws").is_err());
        assert!(
            clone
                .verify_memo(&format!(" {jws}\n"), "brdo-batch+jws")
                .is_ok()
        );
    }
}
