//! Receipts a peer sends later (`POST /v1/federation/receipts`, SPEC
//! §11): each must verify with that peer's envelope key, name it as the
//! acting gateway and this gateway as `to`, and concern a recipient
//! behind it of a message this gateway relayed to it; otherwise the whole
//! request is refused `receipt_invalid` (audited) and nothing is stored.
//! Accepted ones are kept and move the status forward, never backward.

use serde_json::json;
use time::OffsetDateTime;

use super::{OpError, Trail};
use crate::app::AppState;
use crate::audit::record::{Action, Outcome};
use crate::crypto::jose::JwsKeys;
use crate::domain::PartnerId;
use crate::domain::time::to_ms;
use crate::federation::{Receipt, ReceiptKind};
use crate::store::outbox::RECEIVED;
use crate::store::writes::RecordReceipts;
use crate::store::{DeliveryStatus, ReceiptRow, WriteOp};

/// Most receipts one request may carry.
pub const MAX_RECEIPTS: usize = 1000;

/// Records `receipts` from `peer`; returns how many were recorded.
pub async fn record(
    app: &AppState,
    peer: &PartnerId,
    trail: &dyn Trail,
    receipts: &[String],
) -> Result<usize, OpError> {
    let own = app.config.federation.id.clone().ok_or(OpError::Internal)?;
    if app.store.peer_suspended(peer.as_str()).await? {
        return Err(OpError::PeerSuspended(peer.to_string()));
    }
    if receipts.len() > MAX_RECEIPTS {
        return Err(OpError::ReceiptInvalid(format!(
            "at most {MAX_RECEIPTS} receipts per request"
        )));
    }
    let conf = app.policy().peer(peer).cloned().ok_or(OpError::Internal)?;
    let keys = JwsKeys::from_public_pem_file(&conf.envelope_key).map_err(|e| {
        tracing::error!(error = %e, peer = %peer, "the peer's envelope key is unusable");
        OpError::Internal
    })?;
    let now = to_ms(OffsetDateTime::now_utc());
    let mut rows = Vec::new();
    let mut statuses = Vec::new();
    for (i, jws) in receipts.iter().enumerate() {
        let (r, recipients, status) = check(app, peer, &own, &keys, jws)
            .await
            .map_err(|why| OpError::ReceiptInvalid(format!("receipts[{i}]: {why}")))?;
        trail.message(&r.message_id);
        for recipient in recipients {
            statuses.push((r.message_id.clone(), recipient, status));
        }
        rows.push(ReceiptRow {
            recipient: r
                .recipient
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            message_id: r.message_id,
            peer: peer.to_string(),
            direction: RECEIVED,
            kind: r.kind.as_str().to_owned(),
            jws: jws.clone(),
            at_ms: now,
        });
    }
    trail.detail("peer", json!(peer.as_str()));
    trail.detail("receipts", json!(rows.len()));
    let n = rows.len();
    let op = WriteOp::from(RecordReceipts {
        receipts: rows,
        statuses,
        at_ms: now,
    });
    let (_, rec) = app
        .store
        .write(op, trail.draft(Action::Acknowledge, Outcome::Allowed))
        .await?;
    trail.audited(rec.seq);
    app.metrics.relay_received(peer.as_str(), "receipts");
    Ok(n)
}

/// One receipt's checks; the recipients whose status it proves, and the
/// status. An `erased` receipt (the holder's own retention) is family-wide:
/// it names no recipient and covers every one behind that peer.
async fn check(
    app: &AppState,
    peer: &PartnerId,
    own: &PartnerId,
    keys: &JwsKeys,
    jws: &str,
) -> Result<(Receipt, Vec<String>, DeliveryStatus), String> {
    let r = Receipt::verify(jws, keys).map_err(|e| e.to_string())?;
    r.expect(peer, own, &r.message_id)
        .map_err(|e| e.to_string())?;
    let status = match r.kind {
        ReceiptKind::Delivered => DeliveryStatus::Delivered,
        ReceiptKind::Acknowledged => DeliveryStatus::Acknowledged,
        ReceiptKind::Erased => DeliveryStatus::Erased,
        other => return Err(format!("a {} receipt is not accepted here", other.as_str())),
    };
    let named = r.recipient.as_ref().map(ToString::to_string);
    if named.is_none() != (status == DeliveryStatus::Erased) {
        return Err(if named.is_none() {
            "the receipt names no recipient".to_owned()
        } else {
            "an erased receipt names a recipient".to_owned()
        });
    }
    let recipients: Vec<String> = app
        .store
        .deliveries(&r.message_id)
        .await
        .map_err(|_| "the store cannot be read".to_owned())?
        .into_iter()
        .filter(|d| d.via.as_deref() == Some(peer.as_str()))
        // An erasure proves a copy the peer held: one it accepted. A
        // copy still queued (or refused, or given up on) it never had.
        .filter(|d| status != DeliveryStatus::Erased || held_by_peer(d.status))
        .map(|d| d.recipient)
        .filter(|d| named.as_ref().is_none_or(|n| n == d))
        .collect();
    if recipients.is_empty() {
        return Err("names no message this gateway relayed to that recipient".into());
    }
    Ok((r, recipients, status))
}

/// Whether a delivery with this status reached the peer, which accepted it.
fn held_by_peer(status: DeliveryStatus) -> bool {
    matches!(
        status,
        DeliveryStatus::Relayed
            | DeliveryStatus::Delivered
            | DeliveryStatus::Acknowledged
            | DeliveryStatus::Erased
    )
}
