//! The bridge from a request to an operation: the request context keeps
//! the facts an operation notes for the audit record (the gate writes a
//! refusal's record from them), and names the calling partner and officer.

use serde_json::Value;

use super::problem::ApiError;
use super::request_ctx::{JUSTIFICATION_HEADER, RequestCtx, text_header};
use crate::app::ops::signed::Presented;
use crate::app::ops::{Caller, Trail};
use crate::audit::record::{Action, Outcome, RecordDraft};
use crate::signature::SIGNATURE_HEADER;
use axum::http::HeaderMap;

impl Trail for RequestCtx {
    fn message(&self, id: &str) {
        self.note_message(id);
    }

    fn counterparts(&self, parties: Vec<String>) {
        self.note_counterparts(parties);
    }

    fn justification(&self, text: &str) {
        self.note_justification(text);
    }

    fn detail(&self, key: &str, value: Value) {
        self.note_detail(key, value);
    }

    fn draft(&self, action: Action, outcome: Outcome) -> RecordDraft {
        RequestCtx::draft(self, action, outcome, None)
    }

    fn audited(&self, seq: u64) {
        self.mark_audited(seq);
    }
}

/// The calling partner and its officer (`400 officer_required` without
/// one), for operations that act for an officer.
pub fn caller(ctx: &RequestCtx) -> Result<Caller<'_>, ApiError> {
    let partner = ctx.partner()?.clone();
    let officer = ctx.officer()?.to_owned();
    Ok(Caller {
        partner,
        officer,
        trail: ctx,
    })
}

/// The `Brdo-Signature` header as presented; whether it is text is judged
/// by the operation, after the policy.
pub fn signature(headers: &HeaderMap) -> Presented {
    match headers.get(SIGNATURE_HEADER) {
        None => Presented::Absent,
        Some(v) => match v.to_str() {
            Ok(s) => Presented::Jws(s.to_owned()),
            Err(_) => Presented::NotText,
        },
    }
}

/// The reason for reading content, from `Brdo-Justification`.
pub fn justification(headers: &HeaderMap) -> Result<String, ApiError> {
    match text_header(headers, JUSTIFICATION_HEADER, 1000) {
        Ok(Some(j)) => Ok(j),
        Ok(None) => Err(ApiError::JustificationRequired(
            "Give the reason for reading in the Brdo-Justification header (1 to 1000 characters)."
                .into(),
        )),
        Err(p) => Err(ApiError::JustificationRequired(p)),
    }
}
