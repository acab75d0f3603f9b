//! Checking a request's `Brdo-Signature` (see [`crate::signature`]) and
//! delivering the signatures kept with a message.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::context::RequestCtx;
use super::problem::ApiError;
use crate::app::AppState;
use crate::domain::PartnerId;
use crate::signature::{self, SIGNATURE_HEADER, SignatureError};
use crate::store::{SignatureRole, SignatureRow};

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        ApiError::InvalidSignature(e.to_string())
    }
}

/// Checks `Brdo-Signature` when the request has one: the JWS verifies over
/// the statement `build` makes, its chain is one the gateway would accept
/// as a client certificate now (CA, CRL, validity), and its signer is the
/// partner on the connection. Returns what to store; `None` without the
/// header. Any failure is `400 invalid_signature` and nothing is stored.
pub(crate) async fn check(
    app: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    sender: &PartnerId,
    role: SignatureRole,
    attachment_ids: &[String],
    build: impl FnOnce(&dyn Fn(&str) -> String) -> Result<Value, SignatureError>,
) -> Result<Option<SignatureRow>, ApiError> {
    let Some(raw) = headers.get(SIGNATURE_HEADER) else {
        return Ok(None);
    };
    let jws = raw.to_str().map_err(|_| {
        ApiError::InvalidSignature("Brdo-Signature must be visible ASCII text.".into())
    })?;
    let digests =
        super::content::attachment_digests(&app.store, attachment_ids.iter().map(String::as_str))
            .await?;
    let statement = build(&|id: &str| digests.get(id).cloned().unwrap_or_default())?;
    let chain = signature::check(jws, &statement)?;
    app.tls
        .check_chain(&chain)
        .map_err(SignatureError::Untrusted)?;
    let signer = signature::partner_of(&chain[0]).unwrap_or_else(|| "no partner".into());
    if signer != sender.as_str() {
        return Err(SignatureError::WrongSigner {
            signer,
            sender: sender.to_string(),
        }
        .into());
    }
    ctx.note_detail("sender_signature", json!(role));
    Ok(Some(SignatureRow {
        partner: signer,
        role,
        jws: jws.to_owned(),
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
