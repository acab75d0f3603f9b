//! Every error the API can answer, mapped to RFC 9457 problem documents in
//! this one place.
//!
//! The mapping carries a machine code (stable, documented in the README),
//! a title, and a detail sentence that names the field or rule. Internal
//! causes (database messages, paths) are logged, never returned: they can
//! reveal more than the caller may know.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::FieldError;
use crate::policy::Violation;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Why a request is refused or failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The certificate names no usable identity.
    #[error("{0}")]
    NoIdentity(String),
    /// The caller's role may not use this endpoint.
    #[error("the {role} role may not call this endpoint")]
    ForbiddenRole {
        /// The caller's role.
        role: &'static str,
    },
    /// The caller's partner is suspended.
    #[error("partner {0} is suspended")]
    PartnerSuspended(String),
    /// The caller's certificate was revoked after the connection opened.
    #[error("the client certificate has been revoked")]
    CertificateRevoked,
    /// `Brdo-Officer` is missing or malformed.
    #[error("{0}")]
    OfficerRequired(String),
    /// `Brdo-Justification` is missing or malformed.
    #[error("{0}")]
    JustificationRequired(String),
    /// The message document is not valid; every field error is listed.
    #[error("the message is not valid")]
    InvalidMessage(Vec<FieldError>),
    /// A query parameter or header other than the identity headers is not
    /// valid.
    #[error("the request is not valid")]
    InvalidRequest(Vec<FieldError>),
    /// `Brdo-Signature` was sent and does not hold (see
    /// [`crate::signature`]); the text says why, never what the message holds.
    #[error("{0}")]
    InvalidSignature(String),
    /// The body is larger than allowed.
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: u64,
    },
    /// A state-changing call whose body is not declared JSON (an empty
    /// body included).
    #[error(
        "a state-changing call must declare Content-Type: application/json, even with an empty body"
    )]
    UnsupportedMediaType,
    /// An upload declared with a media type a web form can send (or none):
    /// a page on another site could make a browser send it.
    #[error(
        "an upload must declare its media type (such as application/octet-stream or application/pdf); none, form types and text/plain are refused"
    )]
    UploadMediaType,
    /// A browser says the request comes from another site; the text names
    /// the header that said so.
    #[error("{0}")]
    CrossSiteRequest(String),
    /// The policy refuses the transfer; all violations are listed.
    #[error("the policy does not allow this message")]
    PolicyDenied(Vec<Violation>),
    /// Nothing the caller may see is there.
    #[error("no such message")]
    NotFound,
    /// No such route.
    #[error("no such endpoint")]
    RouteNotFound,
    /// The route exists, not with this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// Only the message's originator may do this.
    #[error("only the originator of the information may do this")]
    NotOriginator,
    /// The message is under a legal hold.
    #[error("the message is under a legal hold and cannot be erased")]
    LegalHold,
    /// A label change that is not a raise.
    #[error("a label can only be raised, never lowered")]
    LabelNotRaised(Vec<FieldError>),
    /// A reload whose files are not usable; the old configuration serves on.
    #[error("the new configuration was refused; the previous one stays in force")]
    ReloadRefused(Vec<FieldError>),
    /// An upload that ended before its body was complete.
    #[error("the upload ended before its body was complete; nothing was stored")]
    UploadIncomplete,
    /// The idempotency key was used with another body.
    #[error("the Idempotency-Key was already used with a different request body")]
    IdempotencyConflict,
    /// The message's content was erased under its retention rules.
    #[error("the message was erased when its retention ended")]
    Erased,
    /// The family's label, hold, members or permissions changed between
    /// the request's decision and its commit; nothing was done.
    #[error("the message's family changed while the request was decided; retry")]
    FamilyChanged,
    /// The caller sent more requests than its rate limit allows.
    #[error("too many requests from this identity; retry after {retry_after} s")]
    RateLimited {
        /// Seconds until a request will be accepted again (`Retry-After`).
        retry_after: u64,
    },
    /// The request body arrived slower than the minimum upload rate.
    #[error(
        "the request body arrived slower than {min_rate} bytes per second after a grace of {grace_secs} s; the request was cut off"
    )]
    UploadTooSlow {
        /// The minimum rate, bytes per second.
        min_rate: u64,
        /// The grace period, seconds.
        grace_secs: u64,
    },
    /// The audit record could not be written; nothing was done.
    #[error("the audit log cannot be written; the request was not carried out")]
    AuditUnavailable,
    /// Stored content failed its integrity check.
    #[error("the stored content failed its integrity check")]
    ContentIntegrity,
    /// A relayed message's sender does not live behind the calling peer.
    #[error("{0}")]
    OriginNotBehindPeer(String),
    /// A relayed message names recipients this gateway does not serve.
    #[error("recipients not served by this gateway: {}", .0.join(", "))]
    RecipientNotLocal(Vec<String>),
    /// A relayed message's label binding does not hold.
    #[error("{0}")]
    BindingInvalid(String),
    /// The calling peer gateway is suspended here.
    #[error("peer gateway {0} is suspended")]
    PeerSuspended(String),
    /// A receipt from a peer does not hold.
    #[error("{0}")]
    ReceiptInvalid(String),
    /// Anything else; details are in the logs under the request id.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoIdentity(_)
            | Self::ForbiddenRole { .. }
            | Self::PartnerSuspended(_)
            | Self::CertificateRevoked
            | Self::CrossSiteRequest(_)
            | Self::PolicyDenied(_)
            | Self::OriginNotBehindPeer(_)
            | Self::RecipientNotLocal(_)
            | Self::BindingInvalid(_)
            | Self::PeerSuspended(_)
            | Self::NotOriginator => StatusCode::FORBIDDEN,
            Self::OfficerRequired(_)
            | Self::JustificationRequired(_)
            | Self::InvalidMessage(_)
            | Self::InvalidRequest(_)
            | Self::LabelNotRaised(_)
            | Self::ReloadRefused(_)
            | Self::InvalidSignature(_)
            | Self::ReceiptInvalid(_)
            | Self::UploadIncomplete => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType | Self::UploadMediaType => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::NotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::IdempotencyConflict | Self::LegalHold | Self::FamilyChanged => {
                StatusCode::CONFLICT
            }
            Self::Erased => StatusCode::GONE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UploadTooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ContentIntegrity | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code (the last part of `type`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoIdentity(_) => "no_identity",
            Self::ForbiddenRole { .. } => "forbidden_role",
            Self::PartnerSuspended(_) => "partner_suspended",
            Self::CertificateRevoked => "certificate_revoked",
            Self::OfficerRequired(_) => "officer_required",
            Self::JustificationRequired(_) => "justification_required",
            Self::InvalidMessage(_) => "invalid_message",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType | Self::UploadMediaType => "unsupported_media_type",
            Self::CrossSiteRequest(_) => "cross_site_request",
            Self::PolicyDenied(v) => v.first().map_or("policy_denied", |v| v.code.as_str()),
            Self::NotFound | Self::RouteNotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::NotOriginator => "not_originator",
            Self::LegalHold => "legal_hold",
            Self::LabelNotRaised(_) => "label_not_raised",
            Self::UploadIncomplete => "upload_incomplete",
            Self::ReloadRefused(_) => "reload_refused",
            Self::Erased => "erased",
            Self::FamilyChanged => "family_changed",
            Self::RateLimited { .. } => "rate_limited",
            Self::UploadTooSlow { .. } => "upload_too_slow",
            Self::AuditUnavailable => "audit_unavailable",
            Self::ContentIntegrity => "content_integrity",
            Self::OriginNotBehindPeer(_) => "origin_not_behind_peer",
            Self::RecipientNotLocal(_) => "recipient_not_local",
            Self::BindingInvalid(_) => "binding_invalid",
            Self::PeerSuspended(_) => "peer_suspended",
            Self::ReceiptInvalid(_) => "receipt_invalid",
            Self::Internal => "internal_error",
        }
    }

    /// Every code [`ApiError::code`] can answer besides the policy's
    /// violation codes (a policy refusal carries its first violation's
    /// code). The OpenAPI description enumerates these, so a client can
    /// switch over `code` exhaustively; the unit test
    /// `every_code_is_listed` fails when a variant's code is missing.
    pub(crate) const CODES: &'static [&'static str] = &[
        "no_identity",
        "forbidden_role",
        "partner_suspended",
        "certificate_revoked",
        "officer_required",
        "justification_required",
        "invalid_message",
        "invalid_request",
        "invalid_signature",
        "payload_too_large",
        "unsupported_media_type",
        "policy_denied",
        "not_found",
        "method_not_allowed",
        "idempotency_conflict",
        "not_originator",
        "legal_hold",
        "label_not_raised",
        "upload_incomplete",
        "reload_refused",
        "erased",
        "audit_unavailable",
        "content_integrity",
        "internal_error",
        "rate_limited",
        "upload_too_slow",
        "family_changed",
        "cross_site_request",
        "origin_not_behind_peer",
        "recipient_not_local",
        "binding_invalid",
        "peer_suspended",
        "receipt_invalid",
    ];

    fn title(&self) -> &'static str {
        match self {
            Self::NoIdentity(_) => "The client certificate names no Brdo identity",
            Self::ForbiddenRole { .. } => "This endpoint belongs to another role",
            Self::PartnerSuspended(_) => "The partner is suspended",
            Self::CertificateRevoked => "The client certificate is revoked",
            Self::OfficerRequired(_) => "The acting officer must be named",
            Self::JustificationRequired(_) => "A justification is required to read content",
            Self::InvalidMessage(_) => "The message is not valid",
            Self::InvalidRequest(_) => "The request is not valid",
            Self::InvalidSignature(_) => "The sender signature does not hold",
            Self::PayloadTooLarge { .. } => "The request body is too large",
            Self::UnsupportedMediaType => "The request body must be declared JSON",
            Self::UploadMediaType => "The upload must declare a non-form media type",
            Self::CrossSiteRequest(_) => "Requests from other sites are refused",
            Self::PolicyDenied(_) => "The policy does not allow this transfer",
            Self::NotFound => "Not found",
            Self::RouteNotFound => "No such endpoint",
            Self::MethodNotAllowed => "Method not allowed",
            Self::IdempotencyConflict => "Idempotency key reused with another body",
            Self::NotOriginator => "Only the originator may do this",
            Self::LegalHold => "The message is under a legal hold",
            Self::LabelNotRaised(_) => "A label can only be raised",
            Self::UploadIncomplete => "The upload was incomplete",
            Self::ReloadRefused(_) => "The new configuration was refused",
            Self::Erased => "The message was erased",
            Self::FamilyChanged => "The message's family changed; retry",
            Self::RateLimited { .. } => "Too many requests",
            Self::UploadTooSlow { .. } => "The request body arrived too slowly",
            Self::AuditUnavailable => "The audit log is unavailable",
            Self::ContentIntegrity => "Stored content failed its integrity check",
            Self::OriginNotBehindPeer(_) => "The sender does not live behind the calling gateway",
            Self::RecipientNotLocal(_) => "A recipient is not served by this gateway",
            Self::BindingInvalid(_) => "The label binding does not hold",
            Self::PeerSuspended(_) => "The peer gateway is suspended",
            Self::ReceiptInvalid(_) => "The receipt does not hold",
            Self::Internal => "Internal error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::NoIdentity(d)
            | Self::OfficerRequired(d)
            | Self::JustificationRequired(d)
            | Self::InvalidSignature(d)
            | Self::OriginNotBehindPeer(d)
            | Self::BindingInvalid(d)
            | Self::ReceiptInvalid(d)
            | Self::CrossSiteRequest(d) => d.clone(),
            Self::PolicyDenied(v) => format!(
                "{} violation{} of the data-protection policy; see violations",
                v.len(),
                if v.len() == 1 { "" } else { "s" }
            ),
            Self::InvalidMessage(e) | Self::InvalidRequest(e) | Self::LabelNotRaised(e) | Self::ReloadRefused(e) => format!(
                "{} field error{}; see errors",
                e.len(),
                if e.len() == 1 { "" } else { "s" }
            ),
            Self::NotFound => "No message with this id is visible to the caller.".to_owned(),
            Self::ContentIntegrity => {
                "The content could not be decrypted intact; nothing was returned. Operators have been alerted."
                    .to_owned()
            }
            Self::Internal => "The request failed; operators can find the cause under its request_id.".to_owned(),
            other => {
                let mut s = other.to_string();
                if let Some(first) = s.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                s.push('.');
                s
            }
        }
    }

    /// Field errors, for the audit record.
    pub(crate) fn field_errors(&self) -> &[FieldError] {
        match self {
            Self::InvalidMessage(e)
            | Self::InvalidRequest(e)
            | Self::LabelNotRaised(e)
            | Self::ReloadRefused(e) => e,
            _ => &[],
        }
    }
}

/// What the audit middleware needs to know about an error response, put in
/// the response's extensions by [`ApiError::into_response`].
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    /// The code.
    pub code: &'static str,
    /// Policy violations, when denied by policy.
    pub violations: Vec<Violation>,
    /// Field names that were wrong, as the audit record may hold them
    /// (names the API defines only: values may be content, and unknown
    /// keys are the client's choice; see `audit_safe`).
    pub fields: Vec<String>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    violations: &'a [Violation],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

/// Most field errors one problem document lists: a body of a million
/// unknown keys must not make a response of a million errors.
pub(crate) const MAX_PROBLEM_ERRORS: usize = 100;

fn problem_errors(errors: &[FieldError]) -> &[FieldError] {
    &errors[..errors.len().min(MAX_PROBLEM_ERRORS)]
}

/// The request id of the request being answered, so problem documents can
/// name it; set by the request middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl ApiError {
    /// Builds the response, naming `request_id` when known.
    pub(crate) fn to_response(&self, request_id: Option<&str>) -> Response {
        let status = self.status();
        let code = self.code();
        let violations: &[Violation] = match self {
            Self::PolicyDenied(v) => v,
            _ => &[],
        };
        let problem = ProblemBody {
            kind: format!("urn:brdo:error:{code}"),
            title: self.title(),
            status: status.as_u16(),
            detail: self.detail(),
            code,
            request_id: request_id.map(str::to_owned),
            violations,
            errors: problem_errors(self.field_errors()),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::RateLimited { retry_after } = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if matches!(self, Self::CertificateRevoked | Self::PartnerSuspended(_)) {
            // Tell HTTP/1.1 clients this connection is finished.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp.extensions_mut().insert(ErrorInfo {
            code,
            violations: violations.to_vec(),
            fields: super::audit_safe::field_names(self.field_errors()),
        });
        resp
    }
}

impl IntoResponse for ApiError {
    /// Defers rendering to the request gate, which knows the request id:
    /// the response carries the error as an extension and no body yet.
    fn into_response(self) -> Response {
        let mut resp = self.status().into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if matches!(
            e,
            crate::store::StoreError::Unavailable(_) | crate::store::StoreError::Corrupt(_)
        ) {
            tracing::error!(error = %e, "store failure");
        }
        match e {
            crate::store::StoreError::NotFound => ApiError::NotFound,
            crate::store::StoreError::Held => ApiError::LegalHold,
            crate::store::StoreError::AlreadyErased => ApiError::Erased,
            crate::store::StoreError::FamilyChanged => ApiError::FamilyChanged,
            _ => ApiError::AuditUnavailable,
        }
    }
}

impl From<crate::app::ops::OpError> for ApiError {
    fn from(e: crate::app::ops::OpError) -> Self {
        use crate::app::ops::OpError;
        match e {
            OpError::NotFound => ApiError::NotFound,
            OpError::Erased => ApiError::Erased,
            OpError::NotOriginator => ApiError::NotOriginator,
            OpError::PolicyRefused(v) => ApiError::PolicyDenied(v),
            OpError::Invalid(errors) => ApiError::InvalidMessage(errors),
            OpError::LabelNotRaised(errors) => ApiError::LabelNotRaised(errors),
            OpError::InvalidSignature(why) => ApiError::InvalidSignature(why),
            OpError::IdempotencyConflict => ApiError::IdempotencyConflict,
            OpError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
            OpError::UploadIncomplete => ApiError::UploadIncomplete,
            OpError::ContentIntegrity => ApiError::ContentIntegrity,
            OpError::Store(s) => s.into(),
            OpError::AuditUnavailable => ApiError::AuditUnavailable,
            OpError::OriginNotBehindPeer(d) => ApiError::OriginNotBehindPeer(d),
            OpError::RecipientNotLocal(r) => ApiError::RecipientNotLocal(r),
            OpError::BindingInvalid(d) => ApiError::BindingInvalid(d),
            OpError::PeerSuspended(p) => ApiError::PeerSuspended(p),
            OpError::PartnerSuspended(p) => ApiError::PartnerSuspended(p),
            OpError::ReceiptInvalid(d) => ApiError::ReceiptInvalid(d),
            OpError::Internal => ApiError::Internal,
        }
    }
}

impl From<crate::app::content::ContentError> for ApiError {
    fn from(e: crate::app::content::ContentError) -> Self {
        crate::app::ops::OpError::from(e).into()
    }
}

/// The problem document every error answers with (RFC 9457, SPEC §8).
/// A marker type: its schema is built from [`ApiError::CODES`] and
/// [`ViolationCode::ALL`], so a new code is documented by existing.
#[derive(Debug, Clone, Copy)]
pub struct Problem;

impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        let codes: Vec<&str> = ApiError::CODES
            .iter()
            .copied()
            .chain(crate::policy::ViolationCode::ALL.iter().map(|c| c.as_str()))
            .collect();
        ObjectBuilder::new()
            .description(Some(
                "An error. `code` is stable and machine-readable (a policy refusal carries its \
                 first violation's code and lists them all in `violations`); `errors` names \
                 every wrong field.",
            ))
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^urn:brdo:error:[a-z0-9_]+$")),
            )
            .required("type")
            .property("title", ObjectBuilder::new().schema_type(Type::String))
            .required("title")
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400))
                    .maximum(Some(599)),
            )
            .required("status")
            .property("detail", ObjectBuilder::new().schema_type(Type::String))
            .required("detail")
            .property(
                "code",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(codes)),
            )
            .required("code")
            .property(
                "request_id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The request's id, also in the audit record")),
            )
            .property(
                "violations",
                ArrayBuilder::new().items(Ref::from_schema_name(super::schema::Violation::name())),
            )
            .property(
                "errors",
                ArrayBuilder::new().items(Ref::from_schema_name(super::schema::FieldError::name())),
            )
            .into()
    }
}

impl ToSchema for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_errors_keep_their_answers() {
        use crate::app::ops::OpError;
        use crate::store::StoreError;
        let cases: Vec<(OpError, &str, u16)> = vec![
            (OpError::NotFound, "not_found", 404),
            (OpError::Erased, "erased", 410),
            (OpError::NotOriginator, "not_originator", 403),
            (OpError::PolicyRefused(Vec::new()), "policy_denied", 403),
            (OpError::Invalid(Vec::new()), "invalid_message", 400),
            (OpError::LabelNotRaised(Vec::new()), "label_not_raised", 400),
            (
                OpError::InvalidSignature("x".into()),
                "invalid_signature",
                400,
            ),
            (OpError::IdempotencyConflict, "idempotency_conflict", 409),
            (OpError::TooLarge { limit: 1 }, "payload_too_large", 413),
            (OpError::UploadIncomplete, "upload_incomplete", 400),
            (OpError::ContentIntegrity, "content_integrity", 500),
            (OpError::AuditUnavailable, "audit_unavailable", 503),
            (OpError::Store(StoreError::Held), "legal_hold", 409),
            (
                OpError::Store(StoreError::FamilyChanged),
                "family_changed",
                409,
            ),
            (OpError::Internal, "internal_error", 500),
        ];
        for (op, code, status) in cases {
            let what = format!("{op:?}");
            let api = ApiError::from(op);
            assert_eq!(api.code(), code, "{what}");
            assert_eq!(api.status().as_u16(), status, "{what}");
        }
    }

    #[tokio::test]
    async fn problem_document_shape() {
        let e = ApiError::InvalidMessage(vec![FieldError {
            field: "label.classification".into(),
            message: "must be one of …".into(),
        }]);
        let resp = e.to_response(Some("req-1"));
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["type"], "urn:brdo:error:invalid_message");
        assert_eq!(v["code"], "invalid_message");
        assert_eq!(v["status"], 400);
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["errors"][0]["field"], "label.classification");
        assert!(v.get("violations").is_none());
    }

    /// One value of every variant; the match has no wildcard, so a new
    /// variant does not compile until it is added here.
    fn one_of_each() -> Vec<ApiError> {
        let all = vec![
            ApiError::NoIdentity(String::new()),
            ApiError::ForbiddenRole { role: "dpo" },
            ApiError::PartnerSuspended(String::new()),
            ApiError::CertificateRevoked,
            ApiError::OfficerRequired(String::new()),
            ApiError::JustificationRequired(String::new()),
            ApiError::InvalidMessage(Vec::new()),
            ApiError::InvalidRequest(Vec::new()),
            ApiError::InvalidSignature(String::new()),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType,
            ApiError::UploadMediaType,
            ApiError::CrossSiteRequest(String::new()),
            ApiError::PolicyDenied(Vec::new()),
            ApiError::NotFound,
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed,
            ApiError::NotOriginator,
            ApiError::LegalHold,
            ApiError::LabelNotRaised(Vec::new()),
            ApiError::ReloadRefused(Vec::new()),
            ApiError::UploadIncomplete,
            ApiError::IdempotencyConflict,
            ApiError::Erased,
            ApiError::FamilyChanged,
            ApiError::AuditUnavailable,
            ApiError::ContentIntegrity,
            ApiError::Internal,
            ApiError::RateLimited { retry_after: 1 },
            ApiError::UploadTooSlow {
                min_rate: 1,
                grace_secs: 1,
            },
            ApiError::OriginNotBehindPeer(String::new()),
            ApiError::RecipientNotLocal(Vec::new()),
            ApiError::BindingInvalid(String::new()),
            ApiError::PeerSuspended(String::new()),
            ApiError::ReceiptInvalid(String::new()),
        ];
        for e in &all {
            match e {
                ApiError::NoIdentity(_)
                | ApiError::ForbiddenRole { .. }
                | ApiError::PartnerSuspended(_)
                | ApiError::CertificateRevoked
                | ApiError::OfficerRequired(_)
                | ApiError::JustificationRequired(_)
                | ApiError::InvalidMessage(_)
                | ApiError::InvalidRequest(_)
                | ApiError::InvalidSignature(_)
                | ApiError::PayloadTooLarge { .. }
                | ApiError::UnsupportedMediaType
                | ApiError::UploadMediaType
                | ApiError::CrossSiteRequest(_)
                | ApiError::PolicyDenied(_)
                | ApiError::NotFound
                | ApiError::RouteNotFound
                | ApiError::MethodNotAllowed
                | ApiError::NotOriginator
                | ApiError::LegalHold
                | ApiError::LabelNotRaised(_)
                | ApiError::ReloadRefused(_)
                | ApiError::UploadIncomplete
                | ApiError::IdempotencyConflict
                | ApiError::Erased
                | ApiError::FamilyChanged
                | ApiError::AuditUnavailable
                | ApiError::ContentIntegrity
                | ApiError::RateLimited { .. }
                | ApiError::UploadTooSlow { .. }
                | ApiError::OriginNotBehindPeer(_)
                | ApiError::RecipientNotLocal(_)
                | ApiError::BindingInvalid(_)
                | ApiError::PeerSuspended(_)
                | ApiError::ReceiptInvalid(_)
                | ApiError::Internal => {}
            }
        }
        all
    }

    #[test]
    fn every_code_is_listed() {
        for e in one_of_each() {
            assert!(
                ApiError::CODES.contains(&e.code()),
                "{} is missing from ApiError::CODES",
                e.code()
            );
        }
        let mut codes = ApiError::CODES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ApiError::CODES.len(), "a code is listed twice");
    }

    #[test]
    fn rate_limited_is_429_with_retry_after() {
        let resp = ApiError::RateLimited { retry_after: 3 }.to_response(None);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            resp.headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("3")
        );
        assert_eq!(
            ApiError::RateLimited { retry_after: 3 }.code(),
            "rate_limited"
        );
    }

    #[test]
    fn details_are_sentences() {
        assert_eq!(
            ApiError::IdempotencyConflict.detail(),
            "The Idempotency-Key was already used with a different request body."
        );
    }
}
