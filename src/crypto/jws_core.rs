//! The compact JWS operations themselves, on ring: signing and checking
//! EdDSA (Ed25519) and ES256 (P-256, `r || s`) signatures.
//!
//! josekit stays the parser of key files (`jose`), but its signatures go
//! through OpenSSL 3, which spent about 2.2 million instructions on each
//! check and 0.9 million on each signature (callgrind over `brdo bench
//! --scenario relay`: a relayed message is two signatures and two checks,
//! and these were most of its cost). ring does the same work in a fraction
//! of that, as rustls already does for every handshake.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte uncompressed
/// point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The two algorithms the gateway signs and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// Ed25519.
    EdDsa,
    /// ECDSA P-256 with SHA-256, fixed-size signature.
    Es256,
}

impl Alg {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }
}

/// A private key that signs.
pub enum Signer {
    /// Ed25519.
    Ed(Ed25519KeyPair),
    /// P-256.
    Es(EcdsaKeyPair, SystemRandom),
}

impl Signer {
    /// From PKCS#8 DER (Ed25519 v1 or v2, or P-256); `None` if ring cannot
    /// read it.
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Some(Self::Ed(k));
        }
        let rng = SystemRandom::new();
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .ok()
            .map(|k| Self::Es(k, rng))
    }

    /// Its algorithm.
    pub fn alg(&self) -> Alg {
        match self {
            Self::Ed(_) => Alg::EdDsa,
            Self::Es(..) => Alg::Es256,
        }
    }

    /// Its public key as SubjectPublicKeyInfo DER (what key ids hash).
    pub fn spki_der(&self) -> Vec<u8> {
        let (prefix, key): (&[u8], &[u8]) = match self {
            Self::Ed(k) => (&ED25519_SPKI_PREFIX, k.public_key().as_ref()),
            Self::Es(k, _) => (&P256_SPKI_PREFIX, k.public_key().as_ref()),
        };
        [prefix, key].concat()
    }

    /// A compact JWS over `payload` with the protected header `header`
    /// (a JSON object naming this key's `alg`).
    pub fn sign_compact(&self, header: &[u8], payload: &[u8]) -> Result<String, String> {
        let mut out = B64.encode(header);
        out.push('.');
        B64.encode_string(payload, &mut out);
        let sig = match self {
            Self::Ed(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
            Self::Es(k, rng) => k
                .sign(rng, out.as_bytes())
                .map_err(|_| "ECDSA signing failed".to_owned())?
                .as_ref()
                .to_vec(),
        };
        out.push('.');
        B64.encode_string(sig, &mut out);
        Ok(out)
    }
}

/// A public key that checks signatures.
#[derive(Debug, Clone)]
pub struct Verifier {
    alg: Alg,
    raw: Vec<u8>,
}

impl Verifier {
    /// From SubjectPublicKeyInfo DER of an Ed25519 or P-256 key.
    pub fn from_spki(der: &[u8]) -> Option<Self> {
        if let Some(raw) = der.strip_prefix(&ED25519_SPKI_PREFIX[..])
            && raw.len() == 32
        {
            return Some(Self {
                alg: Alg::EdDsa,
                raw: raw.to_vec(),
            });
        }
        if let Some(raw) = der.strip_prefix(&P256_SPKI_PREFIX[..])
            && raw.len() == 65
        {
            return Some(Self {
                alg: Alg::Es256,
                raw: raw.to_vec(),
            });
        }
        None
    }

    /// Its algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Whether `sig` signs `input` under this key.
    pub fn check(&self, input: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            Alg::EdDsa => &signature::ED25519,
            Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(alg, &self.raw)
            .verify(input, sig)
            .is_ok()
    }
}

/// A compact JWS taken apart: its protected header (as JSON), the signing
/// input, the payload and the signature, each decoded; `Err` names what is
/// malformed.
pub struct Parts {
    /// The protected header.
    pub header: serde_json::Map<String, serde_json::Value>,
    /// `BASE64URL(header) "." BASE64URL(payload)`: what was signed.
    pub input: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWS strictly (three parts, unpadded
/// base64url, a JSON object header with no `crit` or `b64`).
pub fn parse(compact: &str) -> Result<Parts, String> {
    let mut it = compact.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err("not a compact JWS".into());
    };
    let header_bytes = B64.decode(h).map_err(|_| "the header is not base64url")?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| "the header is not a JSON object")?;
    // Extensions this verifier does not implement are refused, not ignored.
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err("the header names an extension (crit, b64)".into());
    }
    let payload = B64.decode(p).map_err(|_| "the payload is not base64url")?;
    let signature = B64
        .decode(s)
        .map_err(|_| "the signature is not base64url")?;
    Ok(Parts {
        header,
        input: format!("{h}.{p}"),
        payload,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::{self, ES256, EdDSA, JwsHeader};
    use rustls::pki_types::pem::PemObject as _;

    fn pkcs8(pem: &str) -> Vec<u8> {
        rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .expect("pkcs8")
            .secret_pkcs8_der()
            .to_vec()
    }

    fn spki(pem: &str) -> Vec<u8> {
        rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
            .expect("spki")
            .to_vec()
    }

    /// ring's signatures check with josekit (OpenSSL) and josekit's with
    /// ring, for both algorithms: the change of engine changes no byte of
    /// what a peer or a DPO's tool accepts.
    #[test]
    fn ring_and_josekit_agree_both_ways() {
        // The Ed25519 key as `brdo pki` writes it (PKCS#8 v1, which
        // OpenSSL reads); a P-256 key as rcgen writes it.
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        crate::pki::init(&pki, &[], time::OffsetDateTime::now_utc()).expect("init");
        let read = |f: &str| std::fs::read_to_string(pki.join(f)).expect("read");
        let es = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("es");
        for (priv_pem, pub_pem, alg) in [
            (
                read("envelope-signing.key"),
                read("envelope-signing.pub"),
                Alg::EdDsa,
            ),
            (es.serialize_pem(), es.public_key_pem(), Alg::Es256),
        ] {
            let signer = Signer::from_pkcs8(&pkcs8(&priv_pem)).expect("signer");
            assert_eq!(signer.alg(), alg);
            assert_eq!(signer.spki_der(), spki(&pub_pem));
            let verifier = Verifier::from_spki(&spki(&pub_pem)).expect("verifier");
            let header = format!(r#"{{"alg":"{}","typ":"t"}}"#, alg.name());
            let ours = signer
                .sign_compact(header.as_bytes(), b"payload")
                .expect("sign");
            let (payload, _) = match alg {
                Alg::EdDsa => jws::deserialize_compact(
                    &ours,
                    &EdDSA.verifier_from_pem(pub_pem.as_bytes()).expect("v"),
                ),
                Alg::Es256 => jws::deserialize_compact(
                    &ours,
                    &ES256.verifier_from_pem(pub_pem.as_bytes()).expect("v"),
                ),
            }
            .expect("josekit accepts ring's signature");
            assert_eq!(payload, b"payload");
            let mut h = JwsHeader::new();
            h.set_token_type("t");
            let theirs = match alg {
                Alg::EdDsa => jws::serialize_compact(
                    b"other",
                    &h,
                    &EdDSA.signer_from_pem(priv_pem.as_bytes()).expect("s"),
                ),
                Alg::Es256 => jws::serialize_compact(
                    b"other",
                    &h,
                    &ES256.signer_from_pem(priv_pem.as_bytes()).expect("s"),
                ),
            }
            .expect("josekit signs");
            let parts = parse(&theirs).expect("parse");
            assert!(verifier.check(parts.input.as_bytes(), &parts.signature));
            assert_eq!(parts.payload, b"other");
            // One byte of the payload changed: the signature fails.
            let mut input = parts.input.into_bytes();
            if let Some(last) = input.last_mut() {
                *last = if *last == b'A' { b'B' } else { b'A' };
            }
            assert!(!verifier.check(&input, &parts.signature));
        }
    }

    #[test]
    fn parsing_is_strict() {
        let h = B64.encode(br#"{"alg":"EdDSA"}"#);
        let p = B64.encode(b"x");
        assert!(parse(&format!("{h}.{p}.AA")).is_ok());
        for bad in [
            String::new(),
            format!("{h}.{p}"),
            format!("{h}.{p}.AA.AA"),
            format!("{h}=.{p}.AA"),
            format!("{}.{p}.AA", B64.encode(b"[1]")),
            format!("{}.{p}.AA", B64.encode(br#"{"alg":"EdDSA","crit":["x"]}"#)),
            format!("{}.{p}.AA", B64.encode(br#"{"alg":"EdDSA","b64":false}"#)),
            format!("{h}.{p}.A*"),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
        assert!(Verifier::from_spki(&[0x30, 0x00]).is_none());
    }
}
