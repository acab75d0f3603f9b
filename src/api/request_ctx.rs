//! The per-request context the gate hands every handler: who calls, the
//! operation, the officer, and the facts gathered for the request's audit
//! record. Apart from the gate itself so that handlers (which the route
//! table names) do not import the gate (which reads the route table).

use std::sync::Mutex;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::operation::Operation;
use super::problem::ApiError;
use crate::audit::record::{Action, Actor, Outcome, RecordDraft, Role, format_at};
use crate::domain::PartnerId;
use crate::tls::Identity;

/// Header naming the acting officer.
pub(crate) const OFFICER_HEADER: &str = "brdo-officer";
/// Header giving the reason content is read.
pub(crate) const JUSTIFICATION_HEADER: &str = "brdo-justification";
/// Response header carrying the request id.
pub(crate) const REQUEST_ID_HEADER: &str = "brdo-request-id";
/// Response header carrying the seq of the request's audit record.
pub(crate) const AUDIT_SEQ_HEADER: &str = "brdo-audit-seq";

/// Reads a UTF-8 header value of 1..=`max` characters through the one
/// rule for free text ([`crate::domain::text::free_text`]: no invisible,
/// control, bidi, private-use or unassigned code points), trimmed and in
/// NFC. Raw UTF-8 is accepted so officers' names keep their letters
/// (`insp.Petrović`). The error names the header, never its value.
pub(crate) fn text_header(
    headers: &HeaderMap,
    name: &str,
    max: usize,
) -> Result<Option<String>, String> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!("Send the {name} header once."));
    }
    let s = std::str::from_utf8(v.as_bytes())
        .map_err(|_| format!("The {name} header must be UTF-8 text."))?;
    match crate::domain::text::free_text(s.trim(), 1, max, false) {
        Ok(t) => Ok(Some(t)),
        Err(crate::domain::text::TextError::Empty) => Err(format!(
            "The {name} header must be 1 to {max} characters, not 0."
        )),
        Err(e) => Err(format!("The {name} header {e}.")),
    }
}

/// Facts gathered during a request for its audit record.
#[derive(Debug, Default)]
struct Notes {
    message_id: Option<String>,
    counterparts: Vec<String>,
    justification: Option<String>,
    details: Map<String, Value>,
    audited_seq: Option<u64>,
}

/// The per-request context handlers receive.
#[derive(Debug)]
pub struct RequestCtx {
    /// Unique id of the request (UUIDv7), in logs, problems and audit.
    pub request_id: String,
    /// The operation the route performs.
    pub op: Operation,
    /// The resolved identity (always present past the gate).
    pub identity: Identity,
    /// Serial of the client certificate.
    pub cert_serial: String,
    /// The officer named in `Brdo-Officer`, if valid.
    officer: Option<String>,
    /// Why the officer header is unusable, if it is.
    officer_problem: Option<String>,
    notes: Mutex<Notes>,
}

impl RequestCtx {
    /// The context of an identified caller; `officer` is the officer header
    /// as read, or why it was unusable (refused only where one is needed).
    pub(super) fn new(
        request_id: String,
        op: Operation,
        identity: Identity,
        cert_serial: String,
        officer: (Option<String>, Option<String>),
    ) -> Self {
        Self {
            request_id,
            op,
            identity,
            cert_serial,
            officer: officer.0,
            officer_problem: officer.1,
            notes: Mutex::new(Notes::default()),
        }
    }

    /// The calling partner (routes for the partner role only reach
    /// handlers with a partner identity).
    pub fn partner(&self) -> Result<&PartnerId, ApiError> {
        match &self.identity {
            Identity::Partner(p) => Ok(p),
            _ => Err(ApiError::ForbiddenRole {
                role: self.identity.role(),
            }),
        }
    }

    /// The officer, or `400 officer_required`.
    pub fn officer(&self) -> Result<&str, ApiError> {
        match (&self.officer, &self.officer_problem) {
            (Some(o), _) => Ok(o),
            (None, Some(p)) => Err(ApiError::OfficerRequired(p.clone())),
            (None, None) => Err(ApiError::OfficerRequired(
                "Name the acting officer in the Brdo-Officer header (1 to 128 printable characters).".into(),
            )),
        }
    }

    /// Records the message concerned.
    pub(crate) fn note_message(&self, id: &str) {
        self.with_notes(|n| n.message_id = Some(id.to_owned()));
    }

    /// Records the other partners concerned.
    pub(crate) fn note_counterparts<I: IntoIterator<Item = S>, S: ToString>(&self, parties: I) {
        let list: Vec<String> = parties.into_iter().map(|p| p.to_string()).collect();
        self.with_notes(|n| n.counterparts = list);
    }

    /// Records the justification given (validated text, capped again here
    /// so no caller can make the permanent record unbounded).
    pub(crate) fn note_justification(&self, text: &str) {
        let text = crate::domain::text::cap(text, super::audit_safe::MAX_DETAIL_CHARS);
        self.with_notes(|n| n.justification = Some(text));
    }

    /// Records a structured fact for the audit record (never content);
    /// every string in it is capped ([`super::audit_safe::bounded`]).
    pub(crate) fn note_detail(&self, key: &str, value: Value) {
        let value = super::audit_safe::bounded(value);
        self.with_notes(|n| {
            n.details.insert(key.to_owned(), value);
        });
    }

    fn with_notes<R>(&self, f: impl FnOnce(&mut Notes) -> R) -> R {
        match self.notes.lock() {
            Ok(mut n) => f(&mut n),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The audit draft of this request for `action` and `outcome`, from the
    /// facts noted so far.
    pub fn draft(&self, action: Action, outcome: Outcome, code: Option<&str>) -> RecordDraft {
        self.with_notes(|n| RecordDraft {
            at: format_at(time::OffsetDateTime::now_utc()),
            actor: Actor {
                role: Role::from(&self.identity),
                id: Some(self.identity.id().to_owned()),
                officer: self.officer.clone(),
                cert_serial: Some(crate::domain::text::cap(&self.cert_serial, 128)),
            },
            action,
            message_id: n.message_id.clone(),
            counterparts: n.counterparts.clone(),
            outcome,
            code: code.map(str::to_owned),
            justification: n.justification.clone(),
            request_id: Some(self.request_id.clone()),
            node: None,
            details: (!n.details.is_empty()).then(|| n.details.clone()),
        })
    }

    /// The handler appended this request's record itself.
    pub(crate) fn mark_audited(&self, seq: u64) {
        self.with_notes(|n| n.audited_seq = Some(seq));
    }

    /// A context for one part of this request (a document of a relay
    /// batch): the same request id, operation and caller, its own facts,
    /// so each part gets its own audit record.
    pub(super) fn part(&self) -> Self {
        Self::new(
            self.request_id.clone(),
            self.op,
            self.identity.clone(),
            self.cert_serial.clone(),
            (self.officer.clone(), self.officer_problem.clone()),
        )
    }

    pub(super) fn audited(&self) -> Option<u64> {
        self.with_notes(|n| n.audited_seq)
    }
}
