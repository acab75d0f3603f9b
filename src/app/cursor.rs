//! Inbox cursors that reveal nothing about other partners' traffic.
//!
//! The inbox position is the gateway-wide delivery sequence; handed out as
//! a number it would let any partner count every delivery the gateway
//! makes, to anyone, over time. A partner gets the position sealed instead:
//! AES-256-GCM under a key derived from a gateway secret, with a fresh
//! nonce and the recipient as associated data, so the cursor is opaque,
//! cannot be edited or moved to another partner's inbox (either is
//! `400` naming `after`), and two cursors cannot be compared for distance.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

/// The cursor clients may send to start from the beginning (it names no
/// position, so it needs no sealing).
pub(crate) const START: &str = "0";

/// Longest text that can be a cursor; longer is refused unread.
pub const MAX_LEN: usize = 64;

const SALT: &[u8] = b"brdo-inbox-cursor-v1";
const POSITION_LEN: usize = 8;

/// Why a cursor cannot be made or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CursorError {
    /// Not a cursor this gateway issued to this recipient (edited, from
    /// another partner, or from before the secret changed).
    #[error("not a cursor issued for this inbox")]
    Invalid,
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The key could not be derived.
    #[error("the inbox cursor key could not be derived")]
    Key,
}

/// The key cursors are sealed with.
pub struct CursorKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorKey").finish_non_exhaustive()
    }
}

impl CursorKey {
    /// Derives the cursor key from `secret` (HKDF-SHA256 with a salt of
    /// its own, so the key is unrelated to any other use of the secret).
    /// Every node of a gateway derives the same key from the same secret,
    /// so a cursor from one node works on another and after a restart.
    pub fn derive(secret: &[u8]) -> Result<Self, CursorError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(secret);
        let info: &[&[u8]] = &[b"aes-256-gcm"];
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        prk.expand(info, &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut bytes[..]))
            .map_err(|_| CursorError::Key)?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes[..]).map_err(|_| CursorError::Key)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `position` for `recipient`.
    pub fn seal(&self, recipient: &str, position: u64) -> Result<String, CursorError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CursorError::Random)?;
        let mut buf = position.to_be_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(recipient.as_bytes()),
                &mut buf,
            )
            .map_err(|_| CursorError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The position `cursor` names in `recipient`'s inbox (`0` for
    /// [`START`]).
    pub fn open(&self, recipient: &str, cursor: &str) -> Result<u64, CursorError> {
        if cursor == START {
            return Ok(0);
        }
        if cursor.len() > MAX_LEN {
            return Err(CursorError::Invalid);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| CursorError::Invalid)?;
        let tag_len = AES_256_GCM.tag_len();
        if raw.len() != NONCE_LEN + POSITION_LEN + tag_len {
            return Err(CursorError::Invalid);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CursorError::Invalid)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(recipient.as_bytes()), &mut sealed)
            .map_err(|_| CursorError::Invalid)?;
        let bytes: [u8; POSITION_LEN] = plain.try_into().map_err(|_| CursorError::Invalid)?;
        Ok(u64::from_be_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_recipient_and_key() {
        let k = CursorKey::derive(b"secret one").expect("key");
        let c = k.seal("RS-MOI", 17).expect("seal");
        assert_eq!(k.open("RS-MOI", &c), Ok(17));
        assert!(c.len() <= MAX_LEN);
        assert!(!c.contains("17"));
        // Fresh nonce: the same position seals differently.
        assert_ne!(k.seal("RS-MOI", 17).expect("seal"), c);
        // Another partner's inbox, another key: refused.
        assert_eq!(k.open("AL-CTD", &c), Err(CursorError::Invalid));
        let other = CursorKey::derive(b"secret two").expect("key");
        assert_eq!(other.open("RS-MOI", &c), Err(CursorError::Invalid));
        // The same secret gives the same key (restart, another node).
        assert_eq!(
            CursorKey::derive(b"secret one")
                .expect("key")
                .open("RS-MOI", &c),
            Ok(17)
        );
        assert_eq!(k.open("RS-MOI", START), Ok(0));
    }

    #[test]
    fn every_edit_is_refused() {
        let k = CursorKey::derive(b"s").expect("key");
        let c = k.seal("RS-MOI", 5).expect("seal");
        let bytes = c.as_bytes();
        for i in 0..bytes.len() {
            let mut edited = bytes.to_vec();
            edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(edited).expect("ascii");
            assert_eq!(k.open("RS-MOI", &edited), Err(CursorError::Invalid), "{i}");
        }
        for bad in [
            "",
            "1",
            "17",
            "-1",
            &c[..c.len() - 1],
            &format!("{c}A"),
            "%%%",
        ] {
            assert_eq!(k.open("RS-MOI", bad), Err(CursorError::Invalid), "{bad}");
        }
        assert_eq!(
            k.open("RS-MOI", &"A".repeat(10_000)),
            Err(CursorError::Invalid)
        );
    }
}
