//! One attempt at one outbox row (SPEC §11): claim it, send it, check the
//! peer's answer, and record the outcome in one transaction with the row's
//! removal — or count the failure and wait. A row past
//! `give_up_after_hours` makes its recipients `undeliverable`.

use serde_json::{Value, json};
use time::OffsetDateTime;

pub use super::link::PeerLink;
use super::outbound::{self, OutboundError};
use super::peer_client::PeerError;
use crate::app::AppState;
use crate::audit::record::{Action, Actor, Outcome, RecordDraft, format_at};
use crate::domain::time::to_ms;
use crate::federation::{Receipt, ReceiptKind, RelayedMessage};
use crate::store::outbox::RECEIVED;
use crate::store::writes::RelayOutcome;
use crate::store::{DeliveryStatus, OutboxKind, OutboxRow, ReceiptRow, StoreError, WriteOp};

/// How one attempt ended.
#[derive(Debug)]
pub enum Attempt {
    /// Sent and recorded (or dropped: erased before it left).
    Done(&'static str),
    /// Another node holds the row.
    Busy,
    /// It failed; the row waits.
    Failed(PeerError),
}

/// How long a claim on `rows` rows sent one after another lasts: each may
/// take three request times (uploads, the document, a receipt) and some
/// slack, so the claim outlives the attempt and no other node (nor an
/// erasure, which drops only unclaimed rows) takes a row while it is on
/// the wire.
pub fn lease_ms(app: &AppState, rows: usize) -> i64 {
    lease_for(app.config.federation.request_timeout_secs, rows)
}

/// [`lease_ms`] for a request timeout of `timeout_secs`. A timeout beyond
/// what milliseconds in an `i64` hold saturates (it used to fall back to
/// 10 s, a claim far shorter than the client's wait).
fn lease_for(timeout_secs: u64, rows: usize) -> i64 {
    timeout_ms(timeout_secs)
        .saturating_mul(3)
        .saturating_add(5000)
        .saturating_mul(i64::try_from(rows.max(1)).unwrap_or(i64::MAX))
}

/// One request's time in milliseconds: the peer client's timeout (at
/// least a second, as the client takes it), saturating.
fn timeout_ms(timeout_secs: u64) -> i64 {
    i64::try_from(timeout_secs.max(1))
        .unwrap_or(i64::MAX)
        .saturating_mul(1000)
}

/// One request's time: the peer client's timeout.
fn request_ms(app: &AppState) -> i64 {
    timeout_ms(app.config.federation.request_timeout_secs)
}

/// The new end of a claim held until `held`, for a request starting at
/// `now` that may take `extra` more than one request time; `None` when
/// the claim still covers it: the request (`request`) and what a lease
/// keeps beyond it (`lease - request`: recording the answer, slack).
/// A claim as fresh as the round's, taken a moment ago for one attempt,
/// covers its request: demanding a whole lease from `now` renewed every
/// row of every batch, one write each (`brdo bench --scenario relay`).
fn renewal(held: i64, now: i64, lease: i64, request: i64, extra: i64) -> Option<i64> {
    let left = lease.saturating_sub(request).saturating_add(extra);
    if held >= now.saturating_add(left) {
        return None;
    }
    let until = now.saturating_add(lease).saturating_add(extra);
    Some(until.max(held.saturating_add(1)))
}

/// Runs one attempt at `row`, which this node has claimed
/// (`Store::claim_outbox`).
pub async fn attempt(app: &AppState, link: &PeerLink, row: &OutboxRow) -> Attempt {
    let now = to_ms(OffsetDateTime::now_utc());
    if row.entry.kind == OutboxKind::Notice {
        match super::notices::must_wait(app, row).await {
            Ok(false) => {}
            Ok(true) => return Attempt::Busy,
            Err(e) => return Attempt::Failed(PeerError::Config(format!("store: {e}"))),
        }
    }
    if row.entry.kind == OutboxKind::Message && past_give_up(app, row, now) {
        return match give_up(app, link, row).await {
            Ok(()) => Attempt::Done("undeliverable"),
            Err(e) => Attempt::Failed(PeerError::Config(format!("store: {e}"))),
        };
    }
    let result = match row.entry.kind {
        OutboxKind::Message => send_message(app, link, row).await,
        OutboxKind::Receipt => send_receipt(app, link, row).await,
        // Never given up: an erasure a peer never confirms stays
        // outstanding (SPEC §11).
        OutboxKind::Notice => super::notices::send_notice(app, link, row).await,
    };
    match result {
        Ok(outcome) => Attempt::Done(outcome),
        Err(e) => failed(app, row, e).await,
    }
}

/// Counts a failed attempt at `row`: it is due again after the backoff.
pub(super) async fn failed(app: &AppState, row: &OutboxRow, e: PeerError) -> Attempt {
    let now = to_ms(OffsetDateTime::now_utc());
    let next = now
        + super::backoff::delay_ms(
            row.attempts + 1,
            app.config.federation.initial_backoff_ms,
            app.config.federation.max_backoff_secs,
        );
    if let Err(se) = app
        .store
        .outbox_failed(&row.entry.id, next, &e.to_string())
        .await
    {
        tracing::warn!(error = %se, "cannot record a failed relay attempt");
    }
    Attempt::Failed(e)
}

/// Whether a message row has waited longer than the relay may try.
pub(super) fn past_give_up(app: &AppState, row: &OutboxRow, now: i64) -> bool {
    let f = &app.config.federation;
    let limit_ms = match f.give_up_after_secs {
        Some(s) => i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000),
        None => i64::try_from(f.give_up_after_hours)
            .unwrap_or(i64::MAX)
            .saturating_mul(3_600_000),
    };
    now.saturating_sub(row.entry.created_ms) > limit_ms
}

/// Sends a message row and records the peer's receipts.
async fn send_message(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
) -> Result<&'static str, PeerError> {
    let store_err = |e: StoreError| PeerError::Config(format!("store: {e}"));
    let mut doc = match outbound::document(app, &row.entry.message_id, link.peer.as_str()).await {
        Ok(Some(doc)) => doc,
        Ok(None) | Err(OutboundError::Erased) => {
            app.store
                .outbox_drop(&row.entry.id)
                .await
                .map_err(store_err)?;
            return Ok("dropped");
        }
        Err(e) => return Err(PeerError::Config(e.to_string())),
    };
    let recipients = doc.recipients.clone();
    let mut claim = row.claim;
    match deliver(app, link, row, &mut claim, &mut doc).await {
        Ok(None) => Ok("claim_lost"),
        Ok(Some(answer)) => conclude(app, link, row, recipients, Ok(answer)).await,
        Err(e) => conclude(app, link, row, recipients, Err(e)).await,
    }
}

/// Records what the peer answered to a message row sent to `recipients`:
/// its receipts, a permanent refusal, or the failure to retry.
pub(super) async fn conclude(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
    recipients: Vec<String>,
    answer: Result<Value, PeerError>,
) -> Result<&'static str, PeerError> {
    let store_err = |e: StoreError| PeerError::Config(format!("store: {e}"));
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            let Some(code) = permanent(&e) else {
                return Err(e);
            };
            refuse(app, link, row, recipients, &code, &e)
                .await
                .map_err(store_err)?;
            return Ok("refused");
        }
    };
    let receipts = check_receipts(link, &row.entry.message_id, &recipients, &answer)?;
    record(app, link, row, receipts).await.map_err(store_err)?;
    Ok("relayed")
}

/// Uploads the document's attachments, then posts it; the peer's answer,
/// or `None` once the row's claim is lost (nothing more is sent: an
/// erasure dropped the row, or another node has it). The claim is renewed
/// before each request for as long as that request may take, so an
/// erasure meanwhile sees the row on the wire and queues its notice.
async fn deliver(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
    claim: &mut Option<i64>,
    doc: &mut RelayedMessage,
) -> Result<Option<Value>, PeerError> {
    for a in &mut doc.attachments {
        let (att, reader) = match outbound::open_attachment(app, &a.id).await {
            Ok(opened) => opened,
            Err(e) => return Err(PeerError::Config(e.to_string())),
        };
        let size = u64::try_from(att.size).unwrap_or(0);
        let span = i64::try_from(link.client.upload_time(size).as_millis()).unwrap_or(i64::MAX);
        if !renew(app, row, claim, span).await? {
            return Ok(None);
        }
        a.upload = upload(link, &att.content_type, size, reader, &a.sha256).await?;
    }
    if !renew(app, row, claim, 0).await? {
        return Ok(None);
    }
    let body = serde_json::to_value(&*doc).map_err(|e| PeerError::Config(e.to_string()))?;
    link.client
        .post("/v1/federation/messages", &body)
        .await
        .map(Some)
}

/// Extends the claim `claim` this node holds on `row` by one request's
/// lease plus `extra_ms`; false if it is no longer held.
pub(super) async fn renew(
    app: &AppState,
    row: &OutboxRow,
    claim: &mut Option<i64>,
    extra_ms: i64,
) -> Result<bool, PeerError> {
    let Some(held) = *claim else {
        return Ok(false);
    };
    let now = to_ms(OffsetDateTime::now_utc());
    // A claim that still covers the request is this node's until it ends:
    // no other node claims it and an erasure drops only unclaimed rows.
    // Renewing it anyway would be a write per row outside the writer,
    // which waits for SQLite's file lock (the starvation the round's one
    // claim removed).
    let Some(until) = renewal(held, now, lease_ms(app, 1), request_ms(app), extra_ms) else {
        return Ok(true);
    };
    let ok = app
        .store
        .renew_claim(&row.entry.id, held, until)
        .await
        .map_err(|e| PeerError::Config(format!("store: {e}")))?;
    if ok {
        *claim = Some(until);
    }
    Ok(ok)
}

/// The refusals of a peer no retry can change (SPEC §11): the document is
/// invalid to it (`400`), too large for it (`413`), or refused for what it
/// states (`403` with one of these codes). Other answers (`5xx`, `429`,
/// `403 peer_suspended`) and failures to reach it are outages: retried.
const PERMANENT_403: &[&str] = &[
    "origin_not_behind_peer",
    "recipient_not_local",
    "binding_invalid",
];

/// The problem code of a permanent refusal, if `e` is one (a code the peer
/// spells oddly is named by its status).
fn permanent(e: &PeerError) -> Option<String> {
    let PeerError::Answered { status, code } = e else {
        return None;
    };
    let tidy = !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    match *status {
        400 | 413 if tidy => Some(code.clone()),
        400 => Some("invalid_message".into()),
        413 => Some("payload_too_large".into()),
        403 if PERMANENT_403.contains(&code.as_str()) => Some(code.clone()),
        _ => None,
    }
}

/// Ends a row the peer refused for good: its recipients behind the peer
/// become `refused` (no receipt: the peer signed none), a `deny` record
/// names the peer's code, and the row goes, in one transaction.
async fn refuse(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
    recipients: Vec<String>,
    code: &str,
    e: &PeerError,
) -> Result<(), StoreError> {
    let id = &row.entry.message_id;
    let mut draft = relay_draft(Action::Deny, Outcome::Denied, id, recipients.clone());
    draft.code = Some(code.to_owned());
    let status = match e {
        PeerError::Answered { status, .. } => Some(*status),
        _ => None,
    };
    let each: Vec<Value> = recipients
        .iter()
        .map(|r| json!({"recipient": r, "codes": [code]}))
        .collect();
    draft.details = json!({"peer": link.peer.as_str(), "receipt_kind": null,
        "peer_status": status, "refused": each})
    .as_object()
    .cloned();
    tracing::warn!(peer = %link.peer, code, "the peer refused a relayed message for good");
    let op = WriteOp::from(RelayOutcome {
        outbox_id: row.entry.id.clone(),
        message_id: id.clone(),
        statuses: recipients
            .into_iter()
            .map(|r| (r, DeliveryStatus::Refused))
            .collect(),
        receipts: Vec::new(),
        more_audit: Vec::new(),
        at_ms: to_ms(OffsetDateTime::now_utc()),
    });
    app.store.write(op, draft).await.map(drop)
}

/// Streams an attachment's bytes (`reader`) to the peer; the id it answered, once
/// it states the digest the binding names (`sha256`). An upload the
/// document then never names (a failed attempt) is the peer's orphan.
async fn upload(
    link: &PeerLink,
    content_type: &str,
    size: u64,
    reader: crate::blobs::BlobReader,
    sha256: &str,
) -> Result<String, PeerError> {
    let answer = link.client.upload(content_type, size, reader).await?;
    let uploaded = answer["id"].as_str().unwrap_or_default();
    if answer["sha256"].as_str() != Some(sha256) || uuid::Uuid::try_parse(uploaded).is_err() {
        return Err(PeerError::BadAnswer(
            "the peer's upload answer does not state the attachment's digest".into(),
        ));
    }
    Ok(uploaded.to_owned())
}

/// The peer's receipts, each verified with its envelope key, from it, for
/// this gateway and message, one per recipient sent (and no other), each
/// `accepted` or `refused`.
fn check_receipts(
    link: &PeerLink,
    message_id: &str,
    recipients: &[String],
    answer: &Value,
) -> Result<Vec<(Receipt, String)>, PeerError> {
    let bad = |why: String| PeerError::BadAnswer(why);
    let listed = answer["receipts"]
        .as_array()
        .ok_or_else(|| bad("no receipts".into()))?;
    let mut out: Vec<(Receipt, String)> = Vec::new();
    for entry in listed {
        let jws = entry["jws"]
            .as_str()
            .ok_or_else(|| bad("a receipt without jws".into()))?;
        // The peer's own words stay out of last_error and the log.
        let r = Receipt::verify(jws, &link.keys).map_err(|e| bad(e.summary()))?;
        r.expect(&link.peer, &link.own, message_id)
            .map_err(|e| bad(e.summary()))?;
        let Some(recipient) = r.recipient.as_ref().map(ToString::to_string) else {
            return Err(bad("a receipt names no recipient".into()));
        };
        if !recipients.contains(&recipient) || out.iter().any(|(o, _)| o.recipient == r.recipient) {
            return Err(bad("a receipt for a recipient not sent".into()));
        }
        if !matches!(r.kind, ReceiptKind::Accepted | ReceiptKind::Refused) {
            return Err(bad(format!(
                "a {} receipt answering a message",
                r.kind.as_str()
            )));
        }
        out.push((r, jws.to_owned()));
    }
    if out.len() != recipients.len() {
        return Err(bad("a recipient without a receipt".into()));
    }
    Ok(out)
}

/// Records the receipts, statuses and audit records, removing the row.
async fn record(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
    receipts: Vec<(Receipt, String)>,
) -> Result<(), StoreError> {
    let now = to_ms(OffsetDateTime::now_utc());
    let id = &row.entry.message_id;
    let (accepted, refused): (Vec<_>, Vec<_>) = receipts
        .iter()
        .partition(|(r, _)| r.kind == ReceiptKind::Accepted);
    let name = |r: &Receipt| {
        r.recipient
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let peer = link.peer.as_str();
    let disclose = (!accepted.is_empty()).then(|| {
        let mut d = relay_draft(
            Action::Disclose,
            Outcome::Allowed,
            id,
            accepted.iter().map(|(r, _)| name(r)).collect(),
        );
        d.details = json!({"peer": peer, "receipt_kind": "accepted",
            "peer_audit_seq": accepted.first().and_then(|(r, _)| r.audit_seq)})
        .as_object()
        .cloned();
        d
    });
    let deny = (!refused.is_empty()).then(|| {
        let mut d = relay_draft(Action::Deny, Outcome::Denied, id, refused.iter().map(|(r, _)| name(r)).collect());
        d.code = refused
            .first()
            .and_then(|(r, _)| r.violations.first())
            .map(|v| v.code.clone());
        let each: Vec<Value> = refused
            .iter()
            .map(|(r, _)| json!({"recipient": name(r), "codes": r.violations.iter().map(|v| v.code.clone()).collect::<Vec<_>>()}))
            .collect();
        d.details = json!({"peer": peer, "receipt_kind": "refused", "refused": each})
            .as_object()
            .cloned();
        d
    });
    let statuses = receipts
        .iter()
        .map(|(r, _)| {
            let s = if r.kind == ReceiptKind::Accepted {
                DeliveryStatus::Relayed
            } else {
                DeliveryStatus::Refused
            };
            (name(r), s)
        })
        .collect();
    let rows = receipts
        .iter()
        .map(|(r, jws)| ReceiptRow {
            message_id: id.clone(),
            recipient: name(r),
            peer: peer.to_owned(),
            direction: RECEIVED,
            kind: r.kind.as_str().to_owned(),
            jws: jws.clone(),
            at_ms: now,
        })
        .collect();
    let (primary, more) = match (disclose, deny) {
        (Some(a), b) => (a, b.into_iter().collect()),
        (None, Some(b)) => (b, Vec::new()),
        (None, None) => return Err(StoreError::NotFound),
    };
    let op = WriteOp::from(RelayOutcome {
        outbox_id: row.entry.id.clone(),
        message_id: id.clone(),
        statuses,
        receipts: rows,
        more_audit: more,
        at_ms: now,
    });
    app.store.write(op, primary).await.map(drop)
}

/// An audit record of the relay acting for the gateway.
fn relay_draft(
    action: Action,
    outcome: Outcome,
    id: &str,
    counterparts: Vec<String>,
) -> RecordDraft {
    RecordDraft {
        at: format_at(OffsetDateTime::now_utc()),
        actor: Actor::system("relay"),
        action,
        message_id: Some(id.to_owned()),
        counterparts,
        outcome,
        code: None,
        justification: None,
        request_id: None,
        node: None,
        details: None,
    }
}

/// Makes the recipients behind the peer `undeliverable` and drops the row.
pub(super) async fn give_up(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
) -> Result<(), StoreError> {
    let id = &row.entry.message_id;
    let recipients: Vec<String> = app
        .store
        .deliveries(id)
        .await?
        .into_iter()
        .filter(|d| d.via.as_deref() == Some(link.peer.as_str()))
        .map(|d| d.recipient)
        .collect();
    let mut draft = relay_draft(Action::Disclose, Outcome::Failed, id, recipients.clone());
    draft.code = Some("undeliverable".into());
    draft.details = json!({"peer": link.peer.as_str(), "attempts": row.attempts})
        .as_object()
        .cloned();
    let op = WriteOp::from(RelayOutcome {
        outbox_id: row.entry.id.clone(),
        message_id: id.clone(),
        statuses: recipients
            .into_iter()
            .map(|r| (r, DeliveryStatus::Undeliverable))
            .collect(),
        receipts: Vec::new(),
        more_audit: Vec::new(),
        at_ms: to_ms(OffsetDateTime::now_utc()),
    });
    app.store.write(op, draft).await.map(drop)
}

/// Sends a receipt row back to the origin; its row goes once the origin
/// recorded it.
async fn send_receipt(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
) -> Result<&'static str, PeerError> {
    let Some(jws) = &row.entry.body else {
        let _ = app.store.outbox_drop(&row.entry.id).await;
        return Ok("dropped");
    };
    link.client
        .post("/v1/federation/receipts", &json!({"receipts": [jws]}))
        .await?;
    app.store
        .outbox_drop(&row.entry.id)
        .await
        .map_err(|e| PeerError::Config(format!("store: {e}")))?;
    Ok("receipt")
}

#[cfg(test)]
mod tests {
    use super::{lease_for, renewal, timeout_ms};

    /// The lease and the request time come from the same timeout the
    /// client waits, however large: a claim never ends before a request
    /// the client still waits for.
    #[test]
    fn a_lease_outlasts_the_clients_wait_for_any_timeout() {
        assert_eq!(timeout_ms(0), 1000);
        assert_eq!(timeout_ms(10), 10_000);
        assert_eq!(lease_for(10, 1), 35_000);
        assert_eq!(lease_for(10, 2), 70_000);
        for secs in [
            0,
            1,
            10,
            86_400,
            u64::from(u32::MAX),
            u64::MAX / 1000,
            u64::MAX,
        ] {
            let (lease, request) = (lease_for(secs, 1), timeout_ms(secs));
            assert!(lease >= request, "{secs}");
            let client_ms = u128::from(secs.max(1)) * 1000;
            assert!(
                i128::from(request) >= client_ms.min(i64::MAX as u128) as i128,
                "{secs}"
            );
        }
    }

    /// A round's claim of one lease covers the request made a moment (or
    /// up to one request time) later; a claim with less left, or a
    /// request that needs longer (an upload), is renewed to a whole lease
    /// from now, never shortened.
    #[test]
    fn a_fresh_claim_covers_its_request() {
        let (lease, request) = (35_000, 10_000);
        let claimed_at = 1_000_000;
        let held = claimed_at + lease;
        for later in [0, 1, 50, 9_999, 10_000] {
            assert_eq!(
                renewal(held, claimed_at + later, lease, request, 0),
                None,
                "{later}"
            );
        }
        let late = claimed_at + 10_001;
        assert_eq!(renewal(held, late, lease, request, 0), Some(late + lease));
        // An upload of 60 s more than a request: a lease beyond it.
        assert_eq!(
            renewal(held, claimed_at + 5, lease, request, 60_000),
            Some(claimed_at + 5 + lease + 60_000)
        );
        // Arithmetic at the edges saturates; a claim is never cut short.
        assert_eq!(renewal(i64::MAX, 0, lease, request, i64::MAX), None);
        assert_eq!(renewal(held, i64::MAX, lease, request, 0), Some(i64::MAX));
    }
}
