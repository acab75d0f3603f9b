//! Checking a sender's or forwarder's signature (see [`crate::signature`])
//! and delivering the signatures kept with a message.

use serde_json::{Value, json};

use super::{OpError, Trail};
use crate::app::AppState;
use crate::domain::PartnerId;
use crate::signature::{self, SignatureError};
use crate::store::SignatureRole;
use crate::store::SignatureRow;

/// A `Brdo-Signature` as the request carried it. Whether the header is
/// text is decided only when the signature is checked, after the policy,
/// so a request with several faults is refused for the same one as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No signature.
    Absent,
    /// A compact JWS (visible ASCII).
    Jws(String),
    /// A header that is not visible ASCII.
    NotText,
}

impl From<SignatureError> for OpError {
    fn from(e: SignatureError) -> Self {
        OpError::InvalidSignature(e.to_string())
    }
}

/// What a signature check needs to know about the request.
pub(crate) struct Signing<'a> {
    /// The signature presented.
    pub presented: &'a Presented,
    /// The partner on the connection, who must be the signer.
    pub sender: &'a PartnerId,
    /// `originator` or `forwarder`.
    pub role: SignatureRole,
    /// Attachments whose digests the statement names.
    pub attachment_ids: &'a [String],
}

/// Checks the signature when the request has one: the JWS verifies over
/// the statement `build` makes, its chain is one the gateway would accept
/// as a client certificate now (CA, CRL, validity), and its signer is the
/// partner on the connection. Returns what to store; `None` without one.
/// Any failure is `InvalidSignature` and nothing is stored.
pub(crate) async fn check(
    app: &AppState,
    trail: &dyn Trail,
    s: Signing<'_>,
    build: impl FnOnce(&dyn Fn(&str) -> String) -> Result<Value, SignatureError>,
) -> Result<Option<SignatureRow>, OpError> {
    let jws = match s.presented {
        Presented::Absent => return Ok(None),
        Presented::NotText => {
            return Err(OpError::InvalidSignature(
                "Brdo-Signature must be visible ASCII text.".into(),
            ));
        }
        Presented::Jws(jws) => jws,
    };
    let digests = crate::app::content::attachment_digests(
        &app.store,
        s.attachment_ids.iter().map(String::as_str),
    )
    .await?;
    let statement = build(&|id: &str| digests.get(id).cloned().unwrap_or_default())?;
    let chain = signature::check(jws, &statement)?;
    app.tls
        .check_chain(&chain)
        .map_err(SignatureError::Untrusted)?;
    let signer = signature::partner_of(&chain[0]).unwrap_or_else(|| "no partner".into());
    if signer != s.sender.as_str() {
        return Err(SignatureError::WrongSigner {
            signer,
            sender: s.sender.to_string(),
        }
        .into());
    }
    trail.detail("sender_signature", json!(s.role));
    Ok(Some(SignatureRow {
        partner: signer,
        role: s.role,
        jws: jws.clone(),
        statement: signature::statement_bytes(&statement),
    }))
}

/// The `signatures` of a delivered message.
pub(crate) fn delivered(rows: &[SignatureRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "partner": r.partner,
                    "role": r.role,
                    "jws": r.jws,
                    "statement": serde_json::from_str::<Value>(&r.statement).unwrap_or(Value::Null),
                })
            })
            .collect(),
    )
}
