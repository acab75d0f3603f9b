//! Sealing and opening content under per-message data keys.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use zeroize::Zeroizing;

use super::master_key::MasterKey;

/// Why content could not be sealed or opened. Deliberately vague about the
/// cause: a detailed oracle helps an attacker more than an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication failed: wrong key, tampered or truncated ciphertext,
    /// or a ciphertext belonging to another message.
    #[error(
        "stored content failed authentication: it was altered, truncated, or sealed under another key"
    )]
    Tampered,
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// A message's data key, unwrapped. Never stored in this form; its bytes
/// are wiped when it is dropped.
pub struct DataKey {
    key: LessSafeKey,
    raw: Zeroizing<[u8; 32]>,
}

/// A data key wrapped by the master key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the master key that wrapped it.
    pub master_key_id: String,
    /// nonce ‖ AES-256-GCM(master, data key) ‖ tag.
    pub wrapped_key: Vec<u8>,
}

const WRAP_CONTEXT: &[u8] = b"brdo/data-key/v1:";
const CONTENT_CONTEXT: &[u8] = b"brdo/content/v1:";

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut raw[..])
            .map_err(|_| CryptoError::Random)?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: Zeroizing<[u8; 32]>) -> Result<Self, CryptoError> {
        let key = UnboundKey::new(&AES_256_GCM, &raw[..]).map_err(|_| CryptoError::Tampered)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            raw,
        })
    }

    /// Wraps this key under the master key, bound to `owner` (the message
    /// or attachment id).
    pub fn wrap(&self, master: &MasterKey, owner: &str) -> Result<Sealed, CryptoError> {
        Ok(Sealed {
            master_key_id: master.id().to_owned(),
            wrapped_key: seal_with(
                master.aead(),
                &[WRAP_CONTEXT, owner.as_bytes()].concat(),
                &self.raw[..],
            )?,
        })
    }

    /// Unwraps a stored data key.
    pub fn unwrap_key(
        master: &MasterKey,
        owner: &str,
        wrapped: &[u8],
    ) -> Result<Self, CryptoError> {
        let opened = Zeroizing::new(open_with(
            master.aead(),
            &[WRAP_CONTEXT, owner.as_bytes()].concat(),
            wrapped,
        )?);
        let mut raw = Zeroizing::new([0u8; 32]);
        if opened.len() != raw.len() {
            return Err(CryptoError::Tampered);
        }
        raw.copy_from_slice(&opened);
        Self::from_raw(raw)
    }

    /// Seals content bound to `owner` and a `part` name (e.g. `content`,
    /// `attachment:<id>:<chunk>`), so parts cannot be swapped.
    pub fn seal(&self, owner: &str, part: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.key, &aad(owner, part), plaintext)
    }

    /// Opens content sealed by [`DataKey::seal`].
    pub fn open(&self, owner: &str, part: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_with(&self.key, &aad(owner, part), sealed)
    }
}

fn aad(owner: &str, part: &str) -> Vec<u8> {
    [CONTENT_CONTEXT, owner.as_bytes(), b"/", part.as_bytes()].concat()
}

fn seal_with(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CryptoError::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| CryptoError::Random)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

fn open_with(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(CryptoError::Tampered);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Tampered)?;
    let mut buf = rest.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| CryptoError::Tampered)?;
    let n = plain.len();
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_bytes(&[7u8; 32]).expect("key")
    }

    #[test]
    fn round_trip() {
        let m = master();
        let k = DataKey::generate().expect("key");
        let w = k.wrap(&m, "msg-1").expect("wrap");
        let ct = k.seal("msg-1", "content", b"secret words").expect("seal");
        assert!(!ct.windows(6).any(|w| w == b"secret"));
        let k2 = DataKey::unwrap_key(&m, "msg-1", &w.wrapped_key).expect("unwrap");
        assert_eq!(
            k2.open("msg-1", "content", &ct).expect("open"),
            b"secret words"
        );
        assert_eq!(w.master_key_id, m.id());
    }

    #[test]
    fn tampering_is_detected_never_garbage() {
        let m = master();
        let k = DataKey::generate().expect("key");
        let w = k.wrap(&m, "msg-1").expect("wrap");
        let ct = k.seal("msg-1", "content", b"secret words").expect("seal");
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                k.open("msg-1", "content", &bad),
                Err(CryptoError::Tampered),
                "byte {i}"
            );
        }
        assert_eq!(
            k.open("msg-1", "content", &ct[..ct.len() - 1]),
            Err(CryptoError::Tampered)
        );
        assert_eq!(k.open("msg-1", "content", &[]), Err(CryptoError::Tampered));
        // Bound to owner and part.
        assert_eq!(k.open("msg-2", "content", &ct), Err(CryptoError::Tampered));
        assert_eq!(k.open("msg-1", "other", &ct), Err(CryptoError::Tampered));
        // A wrapped key moved to another message does not unwrap.
        assert!(DataKey::unwrap_key(&m, "msg-2", &w.wrapped_key).is_err());
        // Another master key does not unwrap.
        let other = MasterKey::from_bytes(&[8u8; 32]).expect("key");
        assert!(DataKey::unwrap_key(&other, "msg-1", &w.wrapped_key).is_err());
    }
}
