//! A message a peer gateway relays (`POST /v1/federation/messages`, SPEC
//! §11). This gateway is sovereign: it parses the document strictly,
//! checks that the sender lives behind the calling peer, that every
//! recipient is its own partner and that the origin's label binding
//! holds, runs its own policy for each recipient, and stores the message
//! under its own keys for those it accepts — answering one signed receipt
//! per recipient. The same id again answers the first receipts.

use std::collections::HashSet;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{OpError, Trail};
use crate::app::AppState;
use crate::app::content::{self, Content};
use crate::audit::record::{Action, Outcome, RecordDraft, format_at};
use crate::crypto::jose::JwsKeys;
use crate::domain::label::format_date;
use crate::domain::time::to_ms;
use crate::domain::{FieldError, NewMessage, PartnerId};
use crate::federation::{ReceiptViolation, RelayedMessage};
use crate::policy::{Decision, Policy, Transfer, compute_retention, decide};
use crate::store::json_columns::{evaluation_text, label_text, personal_data_text};
use crate::store::outbox::ISSUED;
use crate::store::writes::{Receive, Submit};
use crate::store::{
    MessageRow, NewDelivery, ReceiptRow, SignatureRole, SignatureRow, StoreError, WriteOp,
    WriteOutput,
};

/// What every document of one request from a peer shares, looked up once
/// for the request (one document, or a batch of them).
pub struct Arrival {
    /// The peer's envelope key, which verifies its label bindings.
    keys: JwsKeys,
    /// Which of the request's ids this gateway already knows (only those
    /// need the replay lookup).
    known: HashSet<String>,
}

/// Looks up what the documents `ids` from `peer` share; refused at once
/// when the operator suspended the peer.
pub async fn arrival(app: &AppState, peer: &PartnerId, ids: &[String]) -> Result<Arrival, OpError> {
    if app.store.peer_suspended(peer.as_str()).await? {
        return Err(OpError::PeerSuspended(peer.to_string()));
    }
    let policy = app.policy();
    let conf = policy.peer(peer).ok_or(OpError::Internal)?;
    let keys = JwsKeys::from_public_pem_file(&conf.envelope_key).map_err(|e| {
        tracing::error!(error = %e, peer = %peer, "the peer's envelope key is unusable");
        OpError::Internal
    })?;
    let known = app.store.known_messages(ids).await?;
    Ok(Arrival { keys, known })
}

/// The ids a request's documents state (a document without one is refused
/// on its own when it is judged).
pub fn stated_ids<'a>(docs: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    docs.into_iter()
        .filter_map(|d| d.get("id").and_then(Value::as_str))
        .filter_map(|id| checked_id(id).ok())
        .collect()
}

/// Receives a relayed document from `peer`; the answer's JSON.
pub async fn receive(
    app: &AppState,
    peer: &PartnerId,
    trail: &dyn Trail,
    doc: &Value,
) -> Result<Value, OpError> {
    let arrival = arrival(app, peer, &stated_ids([doc])).await?;
    receive_in(app, peer, trail, doc, &arrival).await
}

/// Receives one relayed document of a request whose shared facts are
/// `arrival`; the answer's JSON.
pub async fn receive_in(
    app: &AppState,
    peer: &PartnerId,
    trail: &dyn Trail,
    doc: &Value,
    arrival: &Arrival,
) -> Result<Value, OpError> {
    let own = app.config.federation.id.clone().ok_or(OpError::Internal)?;
    let relayed = RelayedMessage::parse(doc).map_err(OpError::Invalid)?;
    let id = checked_id(&relayed.id)?;
    trail.message(&id);
    // An id unknown when the request arrived is new: if another request
    // stores it meanwhile, the commit finds it and answers as a replay.
    if arrival.known.contains(&id)
        && let Some(answer) = replay(app, peer, &id).await?
    {
        // The gate audits this request too: marked, so a DPO does not
        // count the message collected twice.
        trail.detail("replayed", json!(true));
        app.metrics.relay_received(peer.as_str(), "replayed");
        return Ok(answer);
    }
    let now = OffsetDateTime::now_utc();
    let msg = NewMessage::parse(&relayed.submission_view(), now.date())
        .map_err(|e| OpError::Invalid(e.into_vec()))?;
    let policy = app.policy();
    trail.counterparts(msg.recipients.iter().map(ToString::to_string).collect());
    let (sender, originator) = check_origin(&policy, peer, &relayed)?;
    if app.is_suspended(&sender) {
        // Cut off on every call (SPEC §1), whichever gateway it calls
        // through; the origin retries until it is resumed or gives up.
        return Err(OpError::PartnerSuspended(sender.to_string()));
    }
    check_local(&policy, &msg)?;
    let officer = check_rest(&relayed)?;
    let family = family(&relayed, &id)?;
    check_family(app, &originator, &family).await?;
    let signatures = signatures(&relayed)?;
    let (uploads, digests) = uploads(app, peer, &relayed).await?;
    check_binding(&arrival.keys, &relayed, &digests)?;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for r in &msg.recipients {
        match decide(
            &policy,
            app.settings.accreditation,
            &app.suspended(),
            &Transfer {
                sender: &sender,
                recipients: &std::iter::once(r.clone()).collect(),
                label: &msg.label,
                purpose: msg.purpose,
                personal_data: &msg.personal_data,
                onward: None,
            },
        ) {
            Decision::Deny(v) => refused.push((
                r.clone(),
                v.iter()
                    .map(|v| ReceiptViolation {
                        code: v.code.as_str().to_owned(),
                        detail: v.detail.clone(),
                    })
                    .collect::<Vec<_>>(),
            )),
            _ => accepted.push(r.clone()),
        }
    }
    let parts = Parts {
        own,
        peer,
        relayed: &relayed,
        msg: &msg,
        originator,
        officer,
        uploads,
        family,
        signatures,
        now,
    };
    commit(app, trail, parts, accepted, refused).await
}

/// The relayed document's id, which must be spelled as gateways spell
/// ids (a UUID, hyphenated, lower case): the id is the key on both sides,
/// and the store compares it byte for byte, so another spelling of a
/// known id would be a second message (and its replay lookup would miss
/// it), stored under an id its audit record does not name.
fn checked_id(id: &str) -> Result<String, OpError> {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.to_string() == id => Ok(id.to_owned()),
        _ => Err(OpError::Invalid(vec![FieldError {
            field: "id".into(),
            message: "must be a UUID, hyphenated, in lower case".into(),
        }])),
    }
}

/// The receipts issued the first time this id came from `peer`; an id
/// this gateway holds otherwise is refused.
async fn replay(app: &AppState, peer: &PartnerId, id: &str) -> Result<Option<Value>, OpError> {
    let issued = app.store.receipts_of(id, ISSUED).await?;
    if !issued.is_empty() {
        if issued.iter().all(|r| r.peer == peer.as_str()) {
            return Ok(Some(answer(&issued)));
        }
    } else if app.store.message(id).await?.is_none() {
        return Ok(None);
    }
    Err(OpError::Invalid(vec![FieldError {
        field: "id".into(),
        message: "names a message this gateway already holds from elsewhere".into(),
    }]))
}

/// `{"receipts": [{"recipient", "kind", "jws"}]}`.
fn answer(receipts: &[ReceiptRow]) -> Value {
    let list: Vec<Value> = receipts
        .iter()
        .map(|r| json!({"recipient": r.recipient, "kind": r.kind, "jws": r.jws}))
        .collect();
    json!({ "receipts": list })
}

/// The sender must live behind the calling peer, and so must the
/// originator: a peer fronts its own partners only, and a forward whose
/// originator lives anywhere else is one its gateway refuses before
/// relaying (SPEC §11). Returns both.
fn check_origin(
    policy: &Policy,
    peer: &PartnerId,
    relayed: &RelayedMessage,
) -> Result<(PartnerId, PartnerId), OpError> {
    let refuse = |who: &str| {
        OpError::OriginNotBehindPeer(format!(
            "The {who} of the message does not live behind gateway {peer}."
        ))
    };
    let sender = PartnerId::parse(&relayed.sender).ok_or_else(|| refuse("sender"))?;
    let behind = policy
        .partner(&sender)
        .and_then(|p| p.via.as_ref())
        .is_some_and(|v| v == peer);
    if !behind {
        return Err(refuse("sender"));
    }
    let originator = PartnerId::parse(&relayed.originator)
        .filter(|o| {
            policy
                .partner(o)
                .and_then(|p| p.via.as_ref())
                .is_some_and(|v| v == peer)
        })
        .ok_or_else(|| refuse("originator"))?;
    Ok((sender, originator))
}

/// Every recipient must be this gateway's own partner.
fn check_local(policy: &Policy, msg: &NewMessage) -> Result<(), OpError> {
    let remote: Vec<String> = msg
        .recipients
        .iter()
        .filter(|r| policy.partner(r).is_none_or(|p| p.via.is_some()))
        .map(ToString::to_string)
        .collect();
    if remote.is_empty() {
        Ok(())
    } else {
        Err(OpError::RecipientNotLocal(remote))
    }
}

/// Who owns the bytes `peer` uploads for a relayed attachment (SPEC §11):
/// its gateway URI, which no partner id can spell, so no partner can name
/// such an upload in a submission.
pub fn peer_owner(peer: &PartnerId) -> String {
    format!("urn:brdo:gateway:{peer}")
}

/// The uploads the document's attachments name (in its order) and the
/// digests of what was uploaded under their origin ids. Each must be an
/// upload the calling peer made here, still held, of the stated media type
/// and SHA-256 (a different digest is content other than the one the
/// document describes: `binding_invalid`).
async fn uploads(
    app: &AppState,
    peer: &PartnerId,
    relayed: &RelayedMessage,
) -> Result<(Vec<String>, Vec<(String, String)>), OpError> {
    let owner = peer_owner(peer);
    let mut ids = Vec::with_capacity(relayed.attachments.len());
    let mut digests = Vec::with_capacity(relayed.attachments.len());
    let mut errors = Vec::new();
    for (i, a) in relayed.attachments.iter().enumerate() {
        let row = match checked_id(&a.upload) {
            Ok(u) => app.store.attachment(&u).await?,
            Err(_) => None,
        };
        let Some(row) = row.filter(|r| r.owner == owner && r.erased_at_ms.is_none()) else {
            errors.push(FieldError {
                field: format!("attachments[{i}].upload"),
                message: "names no upload the calling gateway made here".into(),
            });
            continue;
        };
        if row.content_type != a.content_type {
            errors.push(FieldError {
                field: format!("attachments[{i}].content_type"),
                message: "differs from the upload's".into(),
            });
        }
        if row.sha256 != a.sha256 {
            return Err(OpError::BindingInvalid(format!(
                "attachments[{i}] ({}): the uploaded content differs from the document's (SHA-256)",
                a.id
            )));
        }
        ids.push(row.id);
        digests.push((a.id.clone(), row.sha256));
    }
    if errors.is_empty() {
        Ok((ids, digests))
    } else {
        Err(OpError::Invalid(errors))
    }
}

/// The origin's label binding must verify with the calling peer's
/// envelope key and match the document, the uploaded attachments' digests
/// included.
fn check_binding(
    keys: &JwsKeys,
    relayed: &RelayedMessage,
    digests: &[(String, String)],
) -> Result<(), OpError> {
    crate::binding::verify_digests(
        &relayed.binding_view(),
        Some(&relayed.binding),
        keys,
        digests,
    )
    .map(drop)
    .map_err(|e| OpError::BindingInvalid(e.to_string()))
}

/// What the partner-facing checks do not cover: the officer (the free-text
/// rule of `Brdo-Officer`, SPEC §1; returned in NFC, as stored) and the
/// dates.
fn check_rest(relayed: &RelayedMessage) -> Result<String, OpError> {
    let mut errors = Vec::new();
    let officer = crate::domain::text::free_text(&relayed.officer, 1, 128, false);
    if officer.is_err() {
        errors.push((
            "officer",
            "must be 1 to 128 characters of visible text (the Brdo-Officer rule)",
        ));
    }
    for (field, value) in [
        ("accepted_at", &relayed.accepted_at),
        ("retain_until", &relayed.retain_until),
    ] {
        if OffsetDateTime::parse(value, &Rfc3339).is_err() {
            errors.push((field, "must be an RFC 3339 time"));
        }
    }
    match officer {
        Ok(officer) if errors.is_empty() => return Ok(officer),
        _ => {}
    }
    Err(OpError::Invalid(
        errors
            .into_iter()
            .map(|(f, m)| FieldError {
                field: f.into(),
                message: m.into(),
            })
            .collect(),
    ))
}

/// A forward's `forwarded_from` and the family's original id, spelled as
/// this gateway spells ids: an original (no `forwarded_from`) is its own
/// family; a forward belongs to another message's.
fn family(relayed: &RelayedMessage, id: &str) -> Result<(Option<String>, String), OpError> {
    let invalid = |field: &str, message: &str| {
        OpError::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    };
    let family = checked_id(&relayed.family)
        .map_err(|_| invalid("family", "must be a UUID, hyphenated, in lower case"))?;
    match &relayed.forwarded_from {
        None if family == id => Ok((None, family)),
        None => Err(invalid(
            "family",
            "must be the message's own id for an original",
        )),
        Some(f) => {
            let from = checked_id(f).map_err(|_| {
                invalid(
                    "forwarded_from",
                    "must be a UUID, hyphenated, in lower case",
                )
            })?;
            if family == id || from == id {
                return Err(invalid(
                    "family",
                    "a forward belongs to another message's family",
                ));
            }
            Ok((Some(from), family))
        }
    }
}

/// A forward into a family this gateway holds must keep that family's
/// originator, and the message it names as forwarded must belong to it:
/// otherwise a peer could attach its own copy to a family another
/// originator decides about (SPEC §11).
async fn check_family(
    app: &AppState,
    originator: &PartnerId,
    (from, root): &(Option<String>, String),
) -> Result<(), OpError> {
    let Some(from) = from else { return Ok(()) };
    let refuse = || {
        OpError::OriginNotBehindPeer(
            "The family the forward names belongs to another originator.".into(),
        )
    };
    for id in [root, from] {
        if let Some(row) = app.store.message(id).await?
            && (row.originator != originator.as_str() || row.root_id != *root)
        {
            return Err(refuse());
        }
    }
    Ok(())
}

/// The sender signatures the origin delivered, kept as they are for the
/// recipients to verify with the origin's CA (`signature::verify_entry`).
/// Each must be well formed, verify over its statement with its own
/// certificate, name its signer, and state this message's subject and body:
/// a peer cannot forge one, and a broken one is refused rather than passed
/// on (`400 invalid_signature`).
fn signatures(relayed: &RelayedMessage) -> Result<Vec<SignatureRow>, OpError> {
    let bad = |i: usize, why: &str| OpError::InvalidSignature(format!("signatures[{i}]: {why}"));
    let mut rows = Vec::with_capacity(relayed.signatures.len());
    for (i, entry) in relayed.signatures.iter().enumerate() {
        let Some(obj) = entry.as_object() else {
            return Err(bad(i, "must be an object"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["partner", "role", "jws", "statement"].contains(&k.as_str()))
        {
            return Err(bad(i, &format!("{k} is not a member of a signature entry")));
        }
        let role = entry["role"]
            .as_str()
            .and_then(SignatureRole::parse)
            .ok_or_else(|| bad(i, "role must be originator or forwarder"))?;
        let partner = entry["partner"]
            .as_str()
            .and_then(PartnerId::parse)
            .ok_or_else(|| bad(i, "partner must be a partner id"))?;
        let jws = entry["jws"]
            .as_str()
            .ok_or_else(|| bad(i, "jws must be a compact JWS"))?;
        let statement = &entry["statement"];
        let chain = crate::signature::check(jws, statement).map_err(|e| bad(i, &e.to_string()))?;
        let signer = chain.first().and_then(crate::signature::partner_of);
        if signer.as_deref() != Some(partner.as_str())
            || statement["sender"].as_str() != Some(partner.as_str())
        {
            return Err(bad(i, "the signer is not the partner named"));
        }
        for (field, text) in [("subject", &relayed.subject), ("body", &relayed.body)] {
            if statement["digests"][field].as_str()
                != Some(crate::binding::sha256_hex(text.as_bytes()).as_str())
            {
                return Err(bad(i, &format!("the signed {field} is not this message's")));
            }
        }
        rows.push(SignatureRow {
            partner: partner.to_string(),
            role,
            jws: jws.to_owned(),
            statement: crate::signature::statement_bytes(statement),
        });
    }
    Ok(rows)
}

/// What `commit` stores from.
struct Parts<'a> {
    own: PartnerId,
    peer: &'a PartnerId,
    relayed: &'a RelayedMessage,
    msg: &'a NewMessage,
    originator: PartnerId,
    /// The officer in NFC.
    officer: String,
    /// This gateway's ids of the attachments' uploaded bytes.
    uploads: Vec<String>,
    /// The forwarded message's id (a forward) and the family's original.
    family: (Option<String>, String),
    /// The sender signatures, as delivered at the origin.
    signatures: Vec<SignatureRow>,
    now: OffsetDateTime,
}

/// Seals and stores the message for the accepted recipients, audits, signs
/// the receipts and wakes the inboxes.
async fn commit(
    app: &AppState,
    trail: &dyn Trail,
    p: Parts<'_>,
    accepted: Vec<PartnerId>,
    refused: Vec<(PartnerId, Vec<ReceiptViolation>)>,
) -> Result<Value, OpError> {
    let id = p.relayed.id.clone();
    let deny = (!refused.is_empty()).then(|| deny_draft(trail, p.peer, &refused));
    let (primary, deny_audit, submit) = if accepted.is_empty() {
        let primary = deny.ok_or(OpError::Internal)?;
        (primary, None, None)
    } else {
        let mut collect = trail.draft(Action::Collect, Outcome::Allowed);
        collect.counterparts = accepted.iter().map(ToString::to_string).collect();
        set_detail(&mut collect, "peer", json!(p.peer.as_str()));
        (collect, deny, Some(stored(app, &p, &accepted)?))
    };
    let op = WriteOp::from(Receive {
        peer: p.peer.clone(),
        own_id: p.own.clone(),
        message_id: id.clone(),
        accepted: submit,
        refused,
        deny_audit,
        signer: app.envelope_key.clone(),
        at: (format_at(p.now), to_ms(p.now)),
    });
    match app.store.write(op, primary).await {
        Ok((WriteOutput::Receipts(receipts), rec)) => {
            trail.audited(rec.seq);
            let outcome = if accepted.is_empty() {
                "refused"
            } else {
                "accepted"
            };
            app.metrics.relay_received(p.peer.as_str(), outcome);
            for r in &accepted {
                app.inbox.notify(r);
            }
            Ok(answer(&receipts))
        }
        Ok(_) => Err(OpError::Internal),
        Err(StoreError::IdempotencyRace) => {
            trail.detail("replayed", json!(true));
            replay(app, p.peer, &id).await?.ok_or(OpError::Internal)
        }
        Err(e) => Err(e.into()),
    }
}

/// The `deny` record of the refused recipients.
fn deny_draft(
    trail: &dyn Trail,
    peer: &PartnerId,
    refused: &[(PartnerId, Vec<ReceiptViolation>)],
) -> RecordDraft {
    let mut d = trail.draft(Action::Deny, Outcome::Denied);
    d.counterparts = refused.iter().map(|(r, _)| r.to_string()).collect();
    d.code = refused
        .first()
        .and_then(|(_, v)| v.first())
        .map(|v| v.code.clone());
    set_detail(&mut d, "peer", json!(peer.as_str()));
    let codes: Vec<Value> = refused
        .iter()
        .map(|(r, v)| json!({"recipient": r.as_str(), "codes": v.iter().map(|x| x.code.as_str()).collect::<Vec<_>>()}))
        .collect();
    set_detail(&mut d, "refused", Value::Array(codes));
    d
}

fn set_detail(d: &mut RecordDraft, key: &str, value: Value) {
    d.details
        .get_or_insert_with(Default::default)
        .insert(key.to_owned(), value);
}

/// The sealed message and its deliveries to the accepted recipients.
fn stored(app: &AppState, p: &Parts<'_>, accepted: &[PartnerId]) -> Result<Submit, OpError> {
    let msg = p.msg;
    let id = &p.relayed.id;
    let (sealed, wrapped) = content::seal(&app.master_key, id, &Content::of(msg))?;
    let retention = compute_retention(
        &app.policy().retention,
        p.now,
        None,
        &msg.personal_data.subjects,
        msg.label.review_on,
    );
    let origin_until =
        OffsetDateTime::parse(&p.relayed.retain_until, &Rfc3339).map_err(|_| OpError::Internal)?;
    let accepted_ms = OffsetDateTime::parse(&p.relayed.accepted_at, &Rfc3339)
        .map(to_ms)
        .map_err(|_| OpError::Internal)?;
    let retain_until = retention.retain_until.min(origin_until);
    let review_on = retention.review_on.min(retain_until.date());
    let row = MessageRow {
        id: id.clone(),
        sender: p.relayed.sender.clone(),
        originator: p.originator.to_string(),
        forwarded_from: p.family.0.clone(),
        officer: p.officer.clone(),
        classification: msg.label.classification.rank(),
        label: label_text(&msg.label),
        evaluation: evaluation_text(&msg.evaluation),
        purpose: msg.purpose.as_str().to_owned(),
        personal_data: personal_data_text(&msg.personal_data),
        case_ref: msg.case_ref.clone(),
        in_reply_to: None,
        content_type: msg.content_type.clone(),
        retention_days: None,
        attachments: serde_json::to_string(&p.uploads).map_err(|_| OpError::Internal)?,
        accepted_at: p.relayed.accepted_at.clone(),
        accepted_ms,
        retain_until_ms: to_ms(retain_until),
        review_on: format_date(review_on),
        retention_basis:
            json!({"kind": "relayed", "peer": p.peer.as_str(), "own": retention.basis}).to_string(),
        held: false,
        erased_at_ms: None,
        content: Some(sealed),
        collect_seq: 0,
        root_id: p.family.1.clone(),
        hold_reason: None,
    };
    Ok(Submit {
        message: Box::new(row),
        deliveries: accepted
            .iter()
            .map(|r| NewDelivery {
                recipient: r.to_string(),
                via: None,
            })
            .collect(),
        data_key: wrapped,
        attachments: p.uploads.clone(),
        idempotency: None,
        signatures: p.signatures.clone(),
        outbox: Vec::new(),
    })
}

/// Stores the bytes of an attachment `peer` is about to relay (`POST
/// /v1/federation/attachments`, SPEC §11): streamed and sealed as a
/// partner's upload, under the same limit, owned by the peer's gateway URI
/// so that only a relayed document from that peer may name it. An upload
/// no document names is removed by the orphan sweep.
pub async fn upload<B>(
    app: &AppState,
    peer: &PartnerId,
    trail: &dyn Trail,
    content_type: String,
    body: B,
) -> Result<super::attachments::Uploaded, OpError>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if app.store.peer_suspended(peer.as_str()).await? {
        return Err(OpError::PeerSuspended(peer.to_string()));
    }
    super::attachments::store_upload(app, trail, peer_owner(peer), content_type, body).await
}
