//! Sending one lifecycle notice to a peer (SPEC §11) and recording its
//! receipt: the peer answers `200 {"receipt": JWS}`, `erased` for an
//! erasure and `applied` naming the notice otherwise; the receipt must
//! verify with the peer's envelope key, name the peer, this gateway and
//! the copy the notice named. It is kept with the origin's `erase` or
//! `alter` record in the transaction that removes the row. A notice never
//! gives up: it waits with backoff until the peer confirms it.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::link::PeerLink;
use super::peer_client::PeerError;
use crate::app::AppState;
use crate::audit::record::{Action, Actor, Outcome, RecordDraft, format_at};
use crate::domain::time::to_ms;
use crate::federation::{Notice, Receipt, ReceiptKind};
use crate::store::outbox::RECEIVED;
use crate::store::writes::NoticeOutcome;
use crate::store::{OutboxRow, ReceiptRow, StoreError, WriteOp};

/// Whether a claimed notice row must wait for an older row about the same
/// copy (queued after the list of due rows was read, or held by another
/// node); if so its claim is released.
pub async fn must_wait(app: &AppState, row: &OutboxRow) -> Result<bool, StoreError> {
    if !app.store.outbox_blocked(&row.entry).await? {
        return Ok(false);
    }
    app.store.outbox_release(&row.entry.id).await?;
    Ok(true)
}

/// Sends a notice row and records the peer's receipt.
pub async fn send_notice(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
) -> Result<&'static str, PeerError> {
    let store_err = |e: StoreError| PeerError::Config(format!("store: {e}"));
    let today = OffsetDateTime::now_utc().date();
    let body: Option<Value> = row
        .entry
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok());
    let Some(notice) = body.and_then(|b| Notice::parse(&b, today).ok()) else {
        // Only this gateway writes these rows; one that does not read back
        // is kept for an operator rather than dropped.
        return Err(PeerError::Config("a stored notice does not parse".into()));
    };
    let answer = link
        .client
        .post("/v1/federation/notices", &notice.to_json())
        .await?;
    let (receipt, jws) = check_receipt(link, &notice, &answer)?;
    record(app, link, row, &notice, &receipt, jws)
        .await
        .map_err(store_err)?;
    Ok("notice")
}

/// The peer's receipt for `notice`: verified, from it, for this gateway and
/// the copy named, of the kind the notice asks for.
fn check_receipt(
    link: &PeerLink,
    notice: &Notice,
    answer: &Value,
) -> Result<(Receipt, String), PeerError> {
    let bad = |why: String| PeerError::BadAnswer(why);
    let jws = answer["receipt"]
        .as_str()
        .ok_or_else(|| bad("no receipt".into()))?;
    let r = Receipt::verify(jws, &link.keys).map_err(|e| bad(e.to_string()))?;
    r.expect(&link.peer, &link.own, notice.message_id())
        .map_err(|e| bad(e.to_string()))?;
    let fits = match notice {
        Notice::Erase { .. } => r.kind == ReceiptKind::Erased,
        other => r.kind == ReceiptKind::Applied && r.notice.as_deref() == Some(other.kind()),
    };
    if !fits || r.recipient.is_some() {
        return Err(bad(format!(
            "a {} receipt answering a {} notice",
            r.kind.as_str(),
            notice.kind()
        )));
    }
    Ok((r, jws.to_owned()))
}

/// Keeps the receipt (an erasure also marks the recipients behind the peer
/// `erased`), with the origin's audit record, removing the row.
async fn record(
    app: &AppState,
    link: &PeerLink,
    row: &OutboxRow,
    notice: &Notice,
    receipt: &Receipt,
    jws: String,
) -> Result<(), StoreError> {
    let now = OffsetDateTime::now_utc();
    let id = notice.message_id();
    let erased = matches!(notice, Notice::Erase { .. });
    let counterparts = app
        .store
        .deliveries(id)
        .await?
        .into_iter()
        .filter(|d| d.via.as_deref() == Some(link.peer.as_str()))
        .map(|d| d.recipient)
        .collect();
    let draft = RecordDraft {
        at: format_at(now),
        actor: Actor::system("relay"),
        action: if erased { Action::Erase } else { Action::Alter },
        message_id: Some(id.to_owned()),
        counterparts,
        outcome: Outcome::Allowed,
        code: None,
        justification: None,
        request_id: None,
        node: None,
        details: json!({"peer": link.peer.as_str(), "notice": notice.kind(),
            "receipt_kind": receipt.kind.as_str(), "peer_audit_seq": receipt.audit_seq})
        .as_object()
        .cloned(),
    };
    let op = WriteOp::from(NoticeOutcome {
        outbox_id: row.entry.id.clone(),
        receipt: ReceiptRow {
            message_id: id.to_owned(),
            recipient: String::new(),
            peer: link.peer.to_string(),
            direction: RECEIVED,
            kind: receipt.kind.as_str().to_owned(),
            jws,
            at_ms: to_ms(now),
        },
        erased,
    });
    app.store.write(op, draft).await.map(drop)
}
