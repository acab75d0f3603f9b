//! Signed receipts: a gateway's proof to a peer of what it did with a
//! relayed message (SPEC §11).
//!
//! Each receipt is a compact JWS (`typ` `brdo-receipt+jws`) by the acting
//! gateway's envelope key over the RFC 8785 form of [`Receipt`]. The
//! origin keeps it beside the recipient's status, so either side's DPO can
//! show the other what was accepted, refused, delivered, acknowledged or
//! erased without sharing logs; `brdo verify-receipt` checks one offline.

use serde::{Deserialize, Serialize};

use crate::crypto::jose::{JoseError, JwsKey, JwsKeys};
use crate::domain::PartnerId;
use crate::domain::string_enum;

/// The JWS `typ` of a receipt, so a binding or checkpoint signed by the same
/// key can never pass as one.
pub const RECEIPT_TYP: &str = "brdo-receipt+jws";

string_enum! {
    /// The step a receipt proves.
    pub enum ReceiptKind {
        /// The peer stored the message for the recipient (its policy
        /// allowed it); carries the peer's audit sequence and tree size.
        Accepted = "accepted",
        /// The peer's policy refused the message for the recipient;
        /// carries the violation codes.
        Refused = "refused",
        /// The recipient read the message for the first time.
        Delivered = "delivered",
        /// The recipient acknowledged it.
        Acknowledged = "acknowledged",
        /// The peer erased its copy of the family.
        Erased = "erased",
        /// The peer applied a lifecycle notice other than erasure (hold,
        /// hold lifted, label raise, permission).
        Applied = "applied",
    }
}

/// One violation a refusing gateway names (code as in SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptViolation {
    /// The rule's code, e.g. `recipient_not_cleared`.
    pub code: String,
    /// Why, in words.
    pub detail: String,
}

/// What a receipt states. Field order is irrelevant: the signed payload is
/// its canonical (RFC 8785) form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Format version, 1.
    pub v: u32,
    /// The step proved.
    pub kind: ReceiptKind,
    /// The gateway that acted and signed.
    pub gateway: PartnerId,
    /// The gateway the receipt is for (the message's origin).
    pub to: PartnerId,
    /// The message (the id is the same on both gateways).
    pub message_id: String,
    /// The recipient the step concerns; `None` for family-wide steps
    /// (erasure and other lifecycle notices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<PartnerId>,
    /// When the acting gateway took the step (RFC 3339, UTC).
    pub at: String,
    /// The acting gateway's audit sequence number of the step's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_seq: Option<u64>,
    /// The size of its Merkle tree once that record was in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    /// For `refused`: every violation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<ReceiptViolation>,
    /// For `applied`: which notice (`hold`, `lift_hold`, `label`, `grant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// Why a receipt does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The signature, key id, algorithm or `typ` is wrong.
    #[error("receipt signature: {0}")]
    Signature(#[from] JoseError),
    /// The payload is not a receipt.
    #[error("receipt payload: {0}")]
    Payload(String),
    /// The receipt holds but says something other than what was expected.
    #[error("receipt {field} is {found:?}, expected {expected:?}")]
    Mismatch {
        /// The member that differs.
        field: &'static str,
        /// What it says.
        found: String,
        /// What the caller expected.
        expected: String,
    },
}

impl ReceiptError {
    /// What is wrong, in this gateway's words only: the `Display` form
    /// quotes what the receipt says (any text its signer chose), which
    /// must not reach operators' views or logs.
    pub fn summary(&self) -> String {
        match self {
            Self::Signature(_) => "a receipt's signature does not verify".into(),
            Self::Payload(_) => "a receipt's payload is not a receipt".into(),
            Self::Mismatch { field, .. } => format!("a receipt's {field} is not the one expected"),
        }
    }
}

impl Receipt {
    /// Signs the receipt with the acting gateway's envelope key.
    pub fn sign(&self, key: &JwsKey) -> Result<String, ReceiptError> {
        let value = serde_json::to_value(self).map_err(|e| ReceiptError::Payload(e.to_string()))?;
        let payload = crate::audit::jcs::canonicalize(&value);
        Ok(key.sign(payload.as_bytes(), RECEIPT_TYP)?)
    }

    /// Signs receipts made together (one group commit's) with one
    /// signature over their Merkle root ([`super::batch_sig`]); one token
    /// each, in order.
    pub fn sign_all(receipts: &[Receipt], key: &JwsKey) -> Result<Vec<String>, ReceiptError> {
        let payloads = receipts
            .iter()
            .map(|r| {
                serde_json::to_value(r)
                    .map(|v| crate::audit::jcs::canonicalize(&v).into_bytes())
                    .map_err(|e| ReceiptError::Payload(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::batch_sig::sign(key, &payloads, RECEIPT_TYP)?)
    }

    /// Verifies a receipt (a compact JWS, or a token of a batch) with the
    /// acting gateway's public key and
    /// returns what it states. Only the signature, type and shape are
    /// checked; [`Receipt::expect`] checks it is the receipt wanted.
    pub fn verify(compact: &str, keys: &JwsKeys) -> Result<Receipt, ReceiptError> {
        let payload = super::batch_sig::verify(keys, compact, RECEIPT_TYP)?;
        let receipt: Receipt =
            serde_json::from_slice(&payload).map_err(|e| ReceiptError::Payload(e.to_string()))?;
        if receipt.v != 1 {
            return Err(ReceiptError::Payload(format!(
                "version {} is not 1",
                receipt.v
            )));
        }
        Ok(receipt)
    }

    /// Checks that a verified receipt is about `message_id`, from `gateway`
    /// and for `to`: a receipt signed by the right key for another message
    /// or another origin (a replay) is refused.
    pub fn expect(
        &self,
        gateway: &PartnerId,
        to: &PartnerId,
        message_id: &str,
    ) -> Result<(), ReceiptError> {
        let check = |field, found: &str, expected: &str| {
            if found == expected {
                Ok(())
            } else {
                Err(ReceiptError::Mismatch {
                    field,
                    found: found.to_owned(),
                    expected: expected.to_owned(),
                })
            }
        };
        check("gateway", self.gateway.as_str(), gateway.as_str())?;
        check("to", self.to.as_str(), to.as_str())?;
        check("message_id", &self.message_id, message_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBGxdt0AIsrUSlwXpBn7Mqn0yZjKZV3uNrlVSuOqBhL5\n-----END PRIVATE KEY-----\n";

    fn id(s: &str) -> PartnerId {
        PartnerId::parse(s).expect("id")
    }

    fn sample() -> Receipt {
        Receipt {
            v: 1,
            kind: ReceiptKind::Refused,
            gateway: id("RS-NCB"),
            to: id("AL-NCB"),
            message_id: "0190f000-0000-7000-8000-000000000001".into(),
            recipient: Some(id("RS-MOI")),
            at: "2026-12-07T10:00:00.000Z".into(),
            audit_seq: Some(7),
            tree_size: Some(8),
            violations: vec![ReceiptViolation {
                code: "recipient_not_cleared".into(),
                detail: "RS-MOI is cleared to EU_RESTRICTED".into(),
            }],
            notice: None,
        }
    }

    #[test]
    fn signed_receipts_verify_and_say_what_was_signed() {
        let key = JwsKey::from_pem(ED_KEY.as_bytes()).expect("key");
        let jws = sample().sign(&key).expect("sign");
        let back = Receipt::verify(&jws, &key.verifier().expect("verifier")).expect("verify");
        assert_eq!(back, sample());
        back.expect(&id("RS-NCB"), &id("AL-NCB"), &sample().message_id)
            .expect("expected");
    }

    #[test]
    fn a_receipt_for_another_message_or_origin_is_refused() {
        let r = sample();
        assert!(matches!(
            r.expect(&id("RS-NCB"), &id("AL-NCB"), "other"),
            Err(ReceiptError::Mismatch {
                field: "message_id",
                ..
            })
        ));
        assert!(matches!(
            r.expect(&id("RS-NCB"), &id("EU-HUB"), &r.message_id),
            Err(ReceiptError::Mismatch { field: "to", .. })
        ));
        assert!(matches!(
            r.expect(&id("XK-NCB"), &id("AL-NCB"), &r.message_id),
            Err(ReceiptError::Mismatch {
                field: "gateway",
                ..
            })
        ));
    }

    #[test]
    fn tampered_or_foreign_receipts_fail() {
        let key = JwsKey::from_pem(ED_KEY.as_bytes()).expect("key");
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("p256");
        let other = JwsKey::from_pem(pair.serialize_pem().as_bytes()).expect("other");
        let jws = sample().sign(&key).expect("sign");
        assert!(Receipt::verify(&jws, &other.verifier().expect("v")).is_err());
        let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"v":1,"kind":"accepted"}"#,
        );
        assert!(Receipt::verify(&parts.join("."), &key.verifier().expect("v")).is_err());
        // A binding signed by the same key is not a receipt.
        let binding = key.sign(b"{}", "brdo-binding+jws").expect("sign");
        assert!(Receipt::verify(&binding, &key.verifier().expect("v")).is_err());
    }
}
