//! The shapes of request and response bodies, as OpenAPI schemas.
//!
//! Why a module of its own: the request documents are parsed by hand (see
//! `domain`), so that every field error can be reported at once; these
//! types describe the same documents for the OpenAPI description
//! (`openapi`) that integrators and the API fuzzer work from. Enumerations
//! are not repeated here: the domain's own enums carry their schemas (the
//! `string_enum!` macro), so a new wire value appears in the document by
//! itself. Response shapes that handlers build as typed values (the inbox
//! page) are these very types, so they cannot drift; the rest are checked
//! against live answers by the schemathesis run (`.ci/api-fuzz`).
//!
//! Adding a field to a response is one line here (plus the handler that
//! fills it).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::label::{Classification, HandlingCode};
use crate::domain::message::{DataSubject, Purpose, SpecialCategory};
use crate::domain::{PartnerId, evaluation::Scheme};
use crate::policy::decide::ViolationCode;

/// A security label as submitted (SPEC §2).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// How sensitive the content is.
    pub classification: Classification,
    /// Europol handling codes; `H0` always applies, listed or not.
    #[serde(default)]
    pub handling_codes: Vec<HandlingCode>,
    /// The H3 restriction; required with `H3`, forbidden without.
    #[schema(min_length = 1, max_length = 1000)]
    pub h3_text: Option<String>,
    /// The only partners who may ever hold the information.
    #[schema(min_items = 1, max_items = 64)]
    pub releasable_to: Option<Vec<PartnerId>>,
    /// Date by which the need to keep the information is reviewed; not in
    /// the past.
    #[schema(value_type = Option<String>, format = Date)]
    pub review_on: Option<String>,
}

/// A label as the gateway stores and delivers it: `handling_codes` always
/// lists `H0`, absent optional members are left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredLabel {
    /// How sensitive the content is.
    pub classification: Classification,
    /// Handling codes, `H0` included.
    pub handling_codes: Vec<HandlingCode>,
    /// The H3 restriction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h3_text: Option<String>,
    /// The only partners who may ever hold the information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub releasable_to: Option<Vec<PartnerId>>,
    /// Review date.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub review_on: Option<String>,
}

/// Evaluation of source and information (SPEC §2). `EU-4x4`: source
/// `A`, `B`, `C`, `X`, information `1`–`4`; `NATO-6x6`: `A`–`F`, `1`–`6`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// The scheme the codes belong to.
    pub scheme: Scheme,
    /// Source reliability.
    #[schema(pattern = "^[A-FX]$")]
    pub source: String,
    /// Information credibility.
    #[schema(pattern = "^[1-6]$")]
    pub information: String,
}

/// What the message says about the personal data it carries.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalData {
    /// Categories of persons concerned; empty means no personal data.
    pub subjects: Vec<DataSubject>,
    /// Special categories (LED Art. 10) present.
    #[serde(default)]
    pub special_categories: Vec<SpecialCategory>,
    /// Why processing them is strictly necessary; required when any
    /// special category is listed.
    #[schema(min_length = 1, max_length = 1000)]
    pub special_categories_basis: Option<String>,
    /// Whether data of minors is included (default false).
    #[serde(default)]
    pub minors: bool,
}

/// Personal-data facts as delivered.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredPersonalData {
    /// Categories of persons concerned.
    pub subjects: Vec<DataSubject>,
    /// Special categories present.
    pub special_categories: Vec<SpecialCategory>,
    /// Why processing them is strictly necessary.
    pub special_categories_basis: Option<String>,
    /// Whether data of minors is included.
    pub minors: bool,
}

/// `POST /v1/messages`: a message to submit (SPEC §3). Unknown members are
/// refused with `400 invalid_message`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSubmission {
    /// Distinct recipients, never the sender.
    #[schema(min_items = 1, max_items = 64)]
    pub recipients: Vec<PartnerId>,
    /// Subject line (encrypted at rest).
    #[schema(min_length = 1, max_length = 500)]
    pub subject: String,
    /// Body (encrypted at rest); not empty, no NUL.
    #[schema(min_length = 1)]
    pub body: String,
    /// MIME type of the body (default `text/plain`).
    #[schema(max_length = 127, default = "text/plain")]
    pub content_type: Option<String>,
    /// Security label.
    pub label: Label,
    /// Evaluation of source and information.
    pub evaluation: Evaluation,
    /// Purpose of processing (LED Art. 1).
    pub purpose: Purpose,
    /// Personal data carried.
    pub personal_data: PersonalData,
    /// The sender's case reference.
    #[schema(min_length = 1, max_length = 64)]
    pub case_ref: Option<String>,
    /// A message the sender holds that this one answers.
    #[schema(value_type = Option<String>, format = "uuid")]
    pub in_reply_to: Option<String>,
    /// Attachment ids uploaded beforehand by the sender.
    #[serde(default)]
    #[schema(value_type = Vec<String>, max_items = 32)]
    pub attachments: Vec<String>,
    /// Retention asked for, in days (the policy may shorten it).
    #[schema(minimum = 1, maximum = 36500)]
    pub retention_days: Option<u32>,
}

/// A recipient and where its delivery stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientQueued {
    /// The recipient.
    pub partner: PartnerId,
    /// `queued` right after acceptance.
    pub status: DeliveryState,
}

/// Where a delivery stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Accepted, not read yet.
    Queued,
    /// Read by the recipient.
    Delivered,
    /// Acknowledged by the recipient.
    Acknowledged,
    /// Erased at retention.
    Erased,
}

/// `201`: the message was accepted for every recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageAccepted {
    /// The message id (UUIDv7).
    #[schema(format = "uuid")]
    pub id: String,
    /// When it was accepted (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub accepted_at: String,
    /// When it will be erased unless a review keeps it.
    #[schema(format = DateTime)]
    pub retain_until: String,
    /// When it must be reviewed.
    #[schema(format = Date)]
    pub review_on: String,
    /// Every recipient, `queued`.
    pub recipients: Vec<RecipientQueued>,
}

/// `201`: the forward was accepted, as a new message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForwardAccepted {
    /// The new message's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The message forwarded.
    #[schema(format = "uuid")]
    pub forwarded_from: String,
    /// The partner the information came from originally.
    pub originator: PartnerId,
    /// When it was accepted.
    #[schema(format = DateTime)]
    pub accepted_at: String,
    /// When it will be erased (never later than the original).
    #[schema(format = DateTime)]
    pub retain_until: String,
    /// When it must be reviewed.
    #[schema(format = Date)]
    pub review_on: String,
    /// The new recipients, `queued`.
    pub recipients: Vec<RecipientQueued>,
}

/// `GET /v1/messages/{id}`: the whole message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// The message id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The sender (for a forward, the forwarder).
    pub from: PartnerId,
    /// Every recipient.
    pub recipients: Vec<PartnerId>,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
    /// MIME type of the body.
    pub content_type: String,
    /// Security label.
    pub label: StoredLabel,
    /// The bilingual display marking of the classification.
    pub marking: String,
    /// Evaluation of source and information.
    pub evaluation: Evaluation,
    /// Purpose of processing.
    pub purpose: Purpose,
    /// Personal data carried.
    pub personal_data: StoredPersonalData,
    /// The sender's case reference.
    pub case_ref: Option<String>,
    /// The message this one answers.
    #[schema(format = "uuid")]
    pub in_reply_to: Option<String>,
    /// Attachment ids.
    #[schema(value_type = Vec<String>)]
    pub attachments: Vec<String>,
    /// Retention the sender asked for.
    pub retention_days: Option<u32>,
    /// When it was accepted.
    #[schema(format = DateTime)]
    pub accepted_at: String,
    /// When it will be erased.
    #[schema(format = DateTime)]
    pub retain_until: String,
    /// When it must be reviewed.
    #[schema(format = Date)]
    pub review_on: String,
    /// For a forward: the partner the information came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub originator: Option<PartnerId>,
    /// For a forward: the message forwarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uuid")]
    pub forwarded_from: Option<String>,
    /// The label binding: a compact JWS (typ `brdo-binding+jws`) by the
    /// gateway's envelope key over the id, parties, label, evaluation,
    /// purpose, accepted_at and content digests; `brdo verify-binding`
    /// checks it offline.
    pub binding: String,
    /// Sender signatures kept with the message, originator's first.
    pub signatures: Vec<SenderSignature>,
}

/// A sender signature as delivered (SPEC §3).
#[derive(Debug, Serialize, ToSchema)]
pub struct SenderSignature {
    /// The signing partner.
    pub partner: PartnerId,
    /// `originator` or `forwarder`.
    pub role: String,
    /// The detached compact JWS as the partner sent it.
    pub jws: String,
    /// The statement it signs (its RFC 8785 form is the JWS payload).
    #[schema(value_type = Object)]
    pub statement: serde_json::Value,
}

/// One inbox entry: the header of a delivered message.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxEntry {
    /// The message id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The sender.
    pub from: String,
    /// Subject line; `null` once the content is erased, or when it cannot
    /// be opened (then `error` is set).
    pub subject: Option<String>,
    /// Security label.
    #[schema(value_type = StoredLabel)]
    pub label: serde_json::Value,
    /// Display marking.
    pub marking: Option<&'static str>,
    /// Purpose of processing.
    #[schema(value_type = Purpose)]
    pub purpose: String,
    /// The sender's case reference.
    pub case_ref: Option<String>,
    /// When it was accepted.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The caller's delivery status.
    #[schema(value_type = DeliveryState)]
    pub status: String,
    /// Present only when the stored content failed to open
    /// (`content_integrity`): the entry is listed without its subject
    /// instead of failing the page, and the failure is audited for the DPO.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<&'static str>,
}

/// `GET /v1/inbox`: a page of headers, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// The entries.
    pub messages: Vec<InboxEntry>,
    /// Opaque cursor for the next call's `after` (unchanged when the page
    /// is empty); it reveals nothing of other partners' traffic.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub next: String,
}

/// A recipient's delivery status.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientStatus {
    /// The recipient.
    pub partner: PartnerId,
    /// Where its delivery stands.
    pub status: DeliveryState,
    /// When it last changed.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// `GET /v1/messages/{id}/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageStatus {
    /// The message id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Every recipient's status.
    pub recipients: Vec<RecipientStatus>,
}

/// `POST /v1/messages/{id}/ack`: the caller's delivery, acknowledged.
#[derive(Debug, Serialize, ToSchema)]
pub struct Acknowledged {
    /// The message id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The caller.
    pub partner: PartnerId,
    /// `acknowledged`.
    pub status: DeliveryState,
    /// When.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// `POST /v1/messages/{id}/forward`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardRequest {
    /// The new recipients.
    #[schema(min_items = 1, max_items = 64)]
    pub recipients: Vec<PartnerId>,
    /// Why the information is passed on.
    #[schema(min_length = 1, max_length = 1000)]
    pub justification: String,
}

/// What a permission allows.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PermissionScope {
    /// Onward transmission (H2).
    Forward,
    /// Use in judicial proceedings (H1).
    JudicialUse,
}

/// `POST /v1/messages/{id}/permissions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionRequest {
    /// The partner granted the permission.
    pub partner: PartnerId,
    /// What it may do.
    pub scope: PermissionScope,
}

/// A permission granted.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionGranted {
    /// The original message's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The partner.
    pub partner: PartnerId,
    /// The scope.
    pub scope: PermissionScope,
    /// When.
    #[schema(format = DateTime)]
    pub granted_at: String,
}

/// `POST /v1/messages/{id}/judicial-use`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JudicialUseRequest {
    /// The proceedings' reference.
    #[schema(min_length = 1, max_length = 200)]
    pub reference: Option<String>,
}

/// Judicial use recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct JudicialUseRecorded {
    /// The message id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The recipient using it.
    pub partner: PartnerId,
    /// When.
    #[schema(format = DateTime)]
    pub recorded_at: String,
    /// The proceedings' reference.
    pub reference: Option<String>,
}

/// `POST /v1/messages/{id}/label`: the raised label.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelRaise {
    /// The new label; every aspect at least as strict as the old one.
    pub label: Label,
}

/// The label after a raise.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelRaised {
    /// The original message's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The label now in force.
    pub label: StoredLabel,
    /// Its display marking.
    pub marking: String,
}

/// `POST /v1/messages/{id}/hold`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Why the information must not be erased.
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// A legal hold's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldState {
    /// The original message's id.
    #[schema(format = "uuid")]
    pub id: String,
    /// Whether a hold is in force.
    pub held: bool,
    /// Its reason, while held.
    pub reason: Option<String>,
}

/// A review decision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// Keep, optionally for longer.
    Keep,
    /// Erase now.
    Erase,
}

/// `POST /v1/messages/{id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Keep or erase.
    pub decision: ReviewDecision,
    /// Why.
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
    /// With `keep`: days to add to the retention.
    #[schema(minimum = 1)]
    pub extend_days: Option<u32>,
}

/// The outcome of a review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewOutcome {
    /// The message id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The decision taken.
    pub decision: ReviewDecision,
    /// With `keep`: the new erasure time.
    #[schema(format = DateTime)]
    pub retain_until: Option<String>,
    /// With `keep`: the next review date.
    #[schema(format = Date)]
    pub review_on: Option<String>,
    /// With `erase`: the ids erased (the message and its forwards).
    pub erased: Option<Vec<String>>,
}

/// `POST /v1/attachments`: the stored upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentStored {
    /// The attachment id, for a message's `attachments`.
    #[schema(format = "uuid")]
    pub id: String,
    /// SHA-256 of the content, hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// A message the caller originated that is due for review or erasure.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionDueEntry {
    /// The message id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The case reference.
    pub case_ref: Option<String>,
    /// The label.
    pub label: StoredLabel,
    /// When it was accepted.
    #[schema(format = DateTime)]
    pub accepted_at: String,
    /// Review date.
    #[schema(format = Date)]
    pub review_on: String,
    /// Erasure time.
    #[schema(format = DateTime)]
    pub retain_until: String,
    /// Under a legal hold.
    pub held: bool,
    /// For a forward: the message forwarded.
    pub forwarded_from: Option<String>,
}

/// `GET /v1/retention/due`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionDue {
    /// The horizon asked for, in days.
    pub within_days: u64,
    /// The messages.
    pub messages: Vec<RetentionDueEntry>,
}

/// An audit record (SPEC §5), or after audit retention only its place in
/// the chain (`seq`, `prev_hash`, `hash`, `reduced: true`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecord {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When (absent when reduced).
    #[schema(format = DateTime)]
    pub at: Option<String>,
    /// Who acted.
    #[schema(value_type = Option<Object>)]
    pub actor: Option<serde_json::Value>,
    /// What was done.
    pub action: Option<String>,
    /// The message concerned.
    pub message_id: Option<String>,
    /// Other partners concerned.
    pub counterparts: Option<Vec<String>>,
    /// `allowed`, `denied` or `failed`.
    pub outcome: Option<String>,
    /// The refusal or failure code.
    pub code: Option<String>,
    /// The justification given.
    pub justification: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// The previous record's hash, hex.
    pub prev_hash: String,
    /// This record's hash, hex.
    pub hash: String,
    /// Whether only the chain position remains.
    pub reduced: Option<bool>,
}

/// `GET /v1/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The records.
    pub records: Vec<AuditRecord>,
    /// Cursor for `after`, when more may follow.
    pub next: Option<String>,
}

/// `GET /v1/audit/checkpoint`: a signed tree head.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checkpoint {
    /// Compact JWS over `{tree_size, root_hash, at}`.
    pub jws: String,
    /// Records covered.
    pub tree_size: u64,
    /// RFC 9162 root, hex.
    pub root_hash: String,
    /// When it was signed.
    #[schema(format = DateTime)]
    pub at: String,
}

/// `GET /v1/audit/proof/{seq}`: RFC 9162 §2.1.3 inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    /// Zero-based leaf index (`seq - 1`).
    pub leaf_index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// That tree's root, hex.
    pub root_hash: String,
    /// Sibling hashes, hex.
    pub audit_path: Vec<String>,
    /// The record's hash, hex.
    pub record_hash: String,
}

/// `GET /v1/audit/consistency`: RFC 9162 §2.1.4 consistency proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    /// The smaller tree size.
    pub from: u64,
    /// The larger tree size.
    pub to: u64,
    /// Root of the smaller tree, hex.
    pub from_root: String,
    /// Root of the larger tree, hex.
    pub to_root: String,
    /// The proof hashes, hex.
    pub proof: Vec<String>,
}

/// A certificate the gateway knows.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateInfo {
    /// The SAN URI identity.
    pub identity: String,
    /// Serial, hex.
    pub serial: String,
    /// Expiry.
    #[schema(format = DateTime)]
    pub not_after: String,
    /// Days until expiry, fractional (negative once expired).
    pub days_left: f64,
    /// `valid`, `expiring`, `expired` or `revoked`.
    pub status: String,
    /// Where the gateway learnt of it.
    pub source: String,
    /// The file, for certificates found in the PKI directory.
    pub file: Option<String>,
}

/// A partner as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerInfo {
    /// The partner id.
    pub id: PartnerId,
    /// Its name.
    pub name: String,
    /// Its country code.
    pub country: String,
    /// Highest classification it may send or receive.
    pub clearance: Classification,
    /// Outside the EU.
    pub third_country: bool,
    /// `active` or `suspended`.
    pub status: String,
    /// When the status last changed.
    pub status_since: Option<String>,
    /// Its certificates.
    pub certificates: Vec<CertificateInfo>,
}

/// `GET /v1/admin/partners`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerList {
    /// Every partner in the policy.
    pub partners: Vec<PartnerInfo>,
}

/// `GET /v1/admin/certificates`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateList {
    /// Every certificate the gateway knows.
    pub certificates: Vec<CertificateInfo>,
}

/// A suspension or resumption.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerStateChange {
    /// The partner.
    pub partner: PartnerId,
    /// `active` or `suspended`.
    pub status: String,
    /// When.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Open connections closed.
    pub connections_closed: u64,
}

/// One refused point of the policy (SPEC §4).
#[derive(Debug, Serialize, ToSchema)]
pub struct Violation {
    /// The recipient concerned; `null` when it applies to all.
    pub recipient: Option<PartnerId>,
    /// The rule broken.
    pub code: ViolationCode,
    /// A sentence naming partners, levels and agreements.
    pub detail: String,
}

/// One wrong field or parameter.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path (`label.classification`, `attachments[0]`) or the
    /// parameter's or header's name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The filters `/v1/audit` and `/v1/audit/export` share (SPEC §5), declared
/// once so the two operations cannot document them differently. Parsed by
/// hand in `api::audit` like the request bodies, so that every bad filter
/// is named in one 400.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilterParams {
    /// Records involving this partner (as actor or counterpart).
    pub partner: Option<String>,
    /// Records concerning this message id.
    pub message: Option<String>,
    /// Records made by this officer (compared in NFC).
    pub officer: Option<String>,
    /// Records of this action.
    pub action: Option<String>,
    /// Records with this outcome.
    pub outcome: Option<String>,
    /// Records with this code (a refusal or failure code such as
    /// `content_integrity`).
    pub code: Option<String>,
    /// Records made at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Records made before this instant (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
}

/// The DPO page's query: the audit filters and the page's own parameters
/// as its HTML form sends them, where an empty field means "not set" (a
/// browser submits every field of a form, filled or not). Declared apart
/// from [`AuditFilterParams`] so the API's filters stay strict.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DpoPageParams {
    /// Records involving this partner (as actor or counterpart).
    pub partner: Option<String>,
    /// Records concerning this message id.
    pub message: Option<String>,
    /// Records made by this officer (compared in NFC).
    pub officer: Option<String>,
    /// Records of this action.
    pub action: Option<String>,
    /// Records with this outcome.
    pub outcome: Option<String>,
    /// Records with this code.
    pub code: Option<String>,
    /// Records made at or after this instant (RFC 3339), or empty.
    #[param(schema_with = date_time_or_empty)]
    pub from: Option<String>,
    /// Records made before this instant (RFC 3339), or empty.
    #[param(schema_with = date_time_or_empty)]
    pub to: Option<String>,
    /// Records after this seq, or empty.
    #[param(schema_with = seq_or_empty)]
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 50), or empty.
    #[param(schema_with = limit_or_empty)]
    pub limit: Option<String>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
}

/// `schema`, or the empty string a form sends for a field left blank.
fn or_empty(schema: utoipa::openapi::Object) -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
    AnyOfBuilder::new()
        .item(schema)
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0)),
        )
        .build()
        .into()
}

fn date_time_or_empty() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .build(),
    )
}

fn seq_or_empty() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .build(),
    )
}

fn limit_or_empty() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(1000))
            .build(),
    )
}

/// The acting officer's header, which every operation that acts on content
/// requires (SPEC §1), declared once so each operation documents it alike.
/// Read by `api::context` from the request itself.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct OfficerHeader {
    /// The acting officer, 1 to 128 characters (stored in NFC; invisible,
    /// bidi-control, control, private-use and unassigned code points are
    /// refused)
    #[param(rename = "Brdo-Officer")]
    pub officer: String,
}
