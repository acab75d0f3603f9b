//! Several message rows to one peer in one request (SPEC §11, *Batches*).
//!
//! A request and a durable commit on each side per message held the relay
//! to about a tenth of a single gateway's submit rate (BENCHMARKS.md,
//! *Relay*). Here the message rows a lane took are opened together, sent
//! as one `{"v": 1, "messages": [...]}` document (as many as fit
//! `server.max_body_bytes` and [`MAX_BATCH`]), and their outcomes recorded
//! together, so the writer commits them in one group. Each document is
//! still judged and answered on its own: what one row's answer means is
//! decided exactly as for a row sent alone (`send::conclude`).
//!
//! A message with attachments is sent alone (its uploads go first). A
//! batch the peer refuses as a whole as invalid, unknown or too large (an
//! older peer, a smaller body limit: [`ENVELOPE_REFUSALS`]) is sent again
//! one document at a time, so a refusal of the envelope is never taken for
//! a refusal of the messages.

use std::ops::Range;

use serde_json::Value;
use time::OffsetDateTime;

use super::outbound::{self, OutboundError};
use super::peer_client::{PeerError, problem_code};
use super::send::{self, Attempt, PeerLink};
use crate::app::AppState;
use crate::domain::time::to_ms;
use crate::federation::{MAX_BATCH, RelayedMessage};
use crate::store::OutboxRow;

/// The most recipients one batch names: a receipt each in the peer's
/// answer, which must fit `MAX_ANSWER_BYTES`. A receipt is a token of the
/// peer's write batch (SPEC §11, *Batch signatures*: statement, root JWS,
/// audit path), up to 2 KiB and more for a refusal naming each point of a
/// long-named agreement; 512 of those outgrew the answer.
const MAX_RECIPIENTS: usize = 256;

/// The statuses with which a peer refuses a batch's envelope rather than
/// its documents: not valid to it, no such route or method (a peer that
/// does not take batches), or too large for its body limit.
const ENVELOPE_REFUSALS: [u16; 5] = [400, 404, 405, 413, 415];

/// Room kept for the batch's own members within `server.max_body_bytes`.
const ENVELOPE_BYTES: usize = 64;

/// One message row ready to go: its document's id and JSON text (made
/// once: its size decides the packing, and batches are put together from
/// it), and its recipients.
struct Ready<'a> {
    row: &'a OutboxRow,
    /// The row's claim as this node last set it (`send::renew`).
    claim: Option<i64>,
    id: String,
    json: Vec<u8>,
    recipients: Vec<String>,
}

/// Attempts the message rows `rows` (all of kind message, claimed by this
/// node); one outcome per row, in order.
pub async fn attempt(app: &AppState, link: &PeerLink, rows: &[&OutboxRow]) -> Vec<Attempt> {
    let now = to_ms(OffsetDateTime::now_utc());
    let mut out: Vec<Option<Attempt>> = Vec::with_capacity(rows.len());
    let mut open: Vec<usize> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if send::past_give_up(app, row, now) {
            out.push(Some(send::attempt(app, link, row).await));
        } else {
            out.push(None);
            open.push(i);
        }
    }
    let ids: Vec<String> = open
        .iter()
        .filter_map(|&i| rows.get(i).map(|r| r.entry.message_id.clone()))
        .collect();
    let docs = match outbound::documents(app, &ids, link.peer.as_str()).await {
        Ok(docs) => docs,
        Err(e) => {
            let e = PeerError::Config(e.to_string());
            for &i in &open {
                if let (Some(slot), Some(row)) = (out.get_mut(i), rows.get(i)) {
                    *slot = Some(send::failed(app, row, e.clone()).await);
                }
            }
            return out
                .into_iter()
                .map(|a| a.unwrap_or(Attempt::Busy))
                .collect();
        }
    };
    let mut ready: Vec<(usize, Ready<'_>)> = Vec::new();
    for (&i, doc) in open.iter().zip(docs) {
        let Some(row) = rows.get(i) else { continue };
        match prepare(app, link, row, doc).await {
            Prepared::Ready(r) => ready.push((i, r)),
            Prepared::Done(a) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(a);
                }
            }
        }
    }
    let limit = app
        .settings
        .max_body_bytes
        .saturating_sub(ENVELOPE_BYTES)
        .max(1);
    let sizes: Vec<(usize, usize)> = ready
        .iter()
        .map(|(_, r)| (r.json.len(), r.recipients.len()))
        .collect();
    let mut ready = ready.into_iter();
    for range in pack(&sizes, limit) {
        let group: Vec<(usize, Ready<'_>)> = ready.by_ref().take(range.len()).collect();
        let group = match held(app, group, &mut out).await {
            Some(group) => group,
            None => continue,
        };
        let rows: Vec<usize> = group.iter().map(|(i, _)| *i).collect();
        let results = send_group(app, link, group).await;
        for (i, a) in rows.into_iter().zip(results) {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(a);
            }
        }
    }
    out.into_iter()
        .map(|a| a.unwrap_or(Attempt::Busy))
        .collect()
}

/// The rows of `group` whose claims still cover the request about to be
/// made, renewed where they would not (`send::renew`): checked just before
/// each group goes, not when the lane's rows were opened, because an
/// earlier group's request and its recording may have used up much of the
/// round's claim. The others end in `out` (claim lost, or the renewal
/// failed); `None` when none is left.
async fn held<'a>(
    app: &AppState,
    group: Vec<(usize, Ready<'a>)>,
    out: &mut [Option<Attempt>],
) -> Option<Vec<(usize, Ready<'a>)>> {
    let mut kept = Vec::with_capacity(group.len());
    for (i, mut r) in group {
        let ended = still_held(app, &mut r).await;
        match (ended, out.get_mut(i)) {
            (None, _) => kept.push((i, r)),
            (Some(a), Some(slot)) => *slot = Some(a),
            (Some(_), None) => {}
        }
    }
    (!kept.is_empty()).then_some(kept)
}

/// Whether `r`'s claim covers a request made now, renewed if it would
/// not: `None` if so, else how the row ends (its claim lost, or the
/// renewal failed).
async fn still_held(app: &AppState, r: &mut Ready<'_>) -> Option<Attempt> {
    match send::renew(app, r.row, &mut r.claim, 0).await {
        Ok(true) => None,
        Ok(false) => Some(Attempt::Done("claim_lost")),
        Err(e) => Some(Attempt::Failed(e)),
    }
}

/// What preparing a row gave.
enum Prepared<'a> {
    /// Its document, to go in a batch.
    Ready(Ready<'a>),
    /// Already ended (dropped, sent alone) or failed.
    Done(Attempt),
}

/// Takes `row`'s opened document into a batch, or ends the row as a
/// single attempt would (erased: dropped; with attachments: sent alone,
/// its uploads first).
async fn prepare<'a>(
    app: &AppState,
    link: &PeerLink,
    row: &'a OutboxRow,
    doc: Result<Option<RelayedMessage>, OutboundError>,
) -> Prepared<'a> {
    let doc = match doc {
        Ok(Some(doc)) => doc,
        Ok(None) | Err(OutboundError::Erased) => {
            return Prepared::Done(match app.store.outbox_drop(&row.entry.id).await {
                Ok(()) => Attempt::Done("dropped"),
                Err(e) => Attempt::Failed(PeerError::Config(format!("store: {e}"))),
            });
        }
        Err(e) => {
            return Prepared::Done(send::failed(app, row, PeerError::Config(e.to_string())).await);
        }
    };
    if !doc.attachments.is_empty() {
        return Prepared::Done(send::attempt(app, link, row).await);
    }
    let json = match serde_json::to_vec(&doc) {
        Ok(v) => v,
        Err(e) => return Prepared::Done(Attempt::Failed(PeerError::Config(e.to_string()))),
    };
    Prepared::Ready(Ready {
        row,
        claim: row.claim,
        id: doc.id,
        json,
        recipients: doc.recipients,
    })
}

/// Groups consecutive documents, given each one's (bytes, recipients),
/// into batches of at most [`MAX_BATCH`] documents whose bytes together stay
/// within `limit` and whose receipts ([`MAX_RECIPIENTS`]) keep the peer's
/// answer well within `MAX_ANSWER_BYTES`. A document over either bound goes
/// in a group of its own, sent alone.
fn pack(sizes: &[(usize, usize)], limit: usize) -> Vec<Range<usize>> {
    let mut groups: Vec<Range<usize>> = Vec::new();
    let (mut bytes, mut recipients) = (0usize, 0usize);
    for (i, &(size, n)) in sizes.iter().enumerate() {
        let size = size.saturating_add(1);
        match groups.last_mut() {
            Some(g)
                if g.len() < MAX_BATCH
                    && bytes.saturating_add(size) <= limit
                    && recipients.saturating_add(n) <= MAX_RECIPIENTS =>
            {
                bytes = bytes.saturating_add(size);
                recipients = recipients.saturating_add(n);
                g.end = i + 1;
            }
            _ => {
                (bytes, recipients) = (size, n);
                groups.push(i..i + 1);
            }
        }
    }
    groups
}

/// Sends one group (alone when it holds one document) and records each
/// row's outcome; the outcomes in the group's order.
async fn send_group(
    app: &AppState,
    link: &PeerLink,
    group: Vec<(usize, Ready<'_>)>,
) -> Vec<Attempt> {
    let group: Vec<Ready<'_>> = group.into_iter().map(|(_, r)| r).collect();
    let answers: Vec<Result<Value, PeerError>> = if group.len() == 1 {
        vec![post_one(link, &group[0]).await]
    } else {
        let sent = link
            .client
            .post_bytes("/v1/federation/messages", envelope(&group))
            .await;
        match sent {
            Ok(answer) => match split(&answer, &group) {
                Ok(each) => each,
                Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
            },
            // The envelope refused (an older peer, too large for it): each
            // document alone, so only a document's own refusal counts. A
            // refusal of the caller (403: suspended, not a known gateway)
            // or of the pace (429) is an outage for every row alike.
            // Each is a request of its own: its claim is checked (renewed)
            // just before it goes and its answer recorded at once, while
            // the claim still covers it — the group's check covered one
            // request, and a slow peer's `MAX_BATCH` of them outlast it.
            Err(PeerError::Answered { status, .. }) if ENVELOPE_REFUSALS.contains(&status) => {
                let mut each = Vec::with_capacity(group.len());
                for mut r in group {
                    each.push(match still_held(app, &mut r).await {
                        Some(ended) => ended,
                        None => conclude(app, link, &r, post_one(link, &r).await).await,
                    });
                }
                return each;
            }
            Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
        }
    };
    let ends = group
        .iter()
        .zip(answers)
        .map(|(r, answer)| conclude(app, link, r, answer));
    futures_util::future::join_all(ends).await
}

/// Posts one document alone, as a single row is sent.
async fn post_one(link: &PeerLink, r: &Ready<'_>) -> Result<Value, PeerError> {
    link.client
        .post_bytes("/v1/federation/messages", r.json.clone())
        .await
}

/// The batch `{"v": 1, "messages": [...]}` of the group's documents, put
/// together from their JSON text.
fn envelope(group: &[Ready<'_>]) -> Vec<u8> {
    let inner: usize = group.iter().map(|r| r.json.len() + 1).sum();
    let mut body = Vec::with_capacity(inner + ENVELOPE_BYTES);
    body.extend_from_slice(br#"{"v":1,"messages":["#);
    for (i, r) in group.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&r.json);
    }
    body.extend_from_slice(b"]}");
    body
}

/// Records one row's answer (or its failure, to retry).
async fn conclude(
    app: &AppState,
    link: &PeerLink,
    r: &Ready<'_>,
    answer: Result<Value, PeerError>,
) -> Attempt {
    match send::conclude(app, link, r.row, r.recipients.clone(), answer).await {
        Ok(outcome) => Attempt::Done(outcome),
        Err(e) => send::failed(app, r.row, e).await,
    }
}

/// Each document's answer from a batch's `{"results": [...]}`: one entry
/// per document, in order, naming its id. A `201` entry answers as a
/// single document's `201` would; any other status as that refusal.
fn split(answer: &Value, group: &[Ready<'_>]) -> Result<Vec<Result<Value, PeerError>>, PeerError> {
    let bad = |why: &str| PeerError::BadAnswer(why.to_owned());
    let results = answer["results"]
        .as_array()
        .ok_or_else(|| bad("a batch answer without results"))?;
    if results.len() != group.len() {
        return Err(bad("a batch answer with another number of results"));
    }
    let mut out = Vec::with_capacity(group.len());
    for (entry, r) in results.iter().zip(group) {
        if entry["id"].as_str() != Some(r.id.as_str()) {
            return Err(bad("a batch answer out of order"));
        }
        let status = entry["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| bad("a batch result without a status"))?;
        out.push(if status == 201 {
            Ok(entry.clone())
        } else {
            Err(PeerError::Answered {
                status,
                code: problem_code(&entry["problem"]),
            })
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A hostile or broken peer's answer to a batch: each entry must be
    /// the document's own, in order, with a status; anything else fails
    /// the whole group (retried), never lands on another row. A `201`
    /// entry's receipts are checked afterwards as a single answer's are.
    #[test]
    fn a_batch_answer_must_match_the_batch() {
        let row = |id: &str| OutboxRow {
            entry: crate::store::OutboxEntry {
                id: format!("row-{id}"),
                peer: "RS-NCB".into(),
                kind: crate::store::OutboxKind::Message,
                message_id: id.into(),
                body: None,
                created_ms: 0,
            },
            attempts: 0,
            claim: Some(0),
        };
        let rows = [row("a"), row("b")];
        let group: Vec<Ready<'_>> = rows
            .iter()
            .map(|r| Ready {
                row: r,
                claim: r.claim,
                id: r.entry.message_id.clone(),
                json: json!({"id": r.entry.message_id}).to_string().into_bytes(),
                recipients: vec!["RS-MOI".into()],
            })
            .collect();
        let ok = |id: &str| json!({"id": id, "status": 201, "receipts": []});
        for bad in [
            json!({}),
            json!({"receipts": []}),
            json!({"results": {"0": ok("a")}}),
            json!({"results": [ok("a")]}),
            json!({"results": [ok("a"), ok("b"), ok("b")]}),
            json!({"results": [ok("b"), ok("a")]}),
            json!({"results": [ok("a"), {"id": null, "status": 201}]}),
            json!({"results": [ok("a"), {"id": "b", "status": "201"}]}),
            json!({"results": [ok("a"), {"id": "b", "status": 70000}]}),
        ] {
            assert!(
                matches!(split(&bad, &group), Err(PeerError::BadAnswer(_))),
                "{bad}"
            );
        }
        let answer = json!({"results": [
            ok("a"),
            {"id": "b", "status": 403, "problem": {"code": "binding_invalid"}},
        ]});
        let each = split(&answer, &group).expect("matches");
        assert_eq!(each[0].as_ref().ok(), Some(&ok("a")));
        assert!(
            matches!(&each[1], Err(PeerError::Answered { status: 403, code }) if code == "binding_invalid"),
            "{:?}",
            each[1]
        );
    }

    /// The batch put together from the documents' text is the JSON the
    /// peer parses: `v` 1 and the documents, in order.
    #[test]
    fn the_envelope_is_the_batch_document() {
        let rows: Vec<OutboxRow> = ["a", "b", "c"]
            .iter()
            .map(|id| OutboxRow {
                entry: crate::store::OutboxEntry {
                    id: format!("row-{id}"),
                    peer: "RS-NCB".into(),
                    kind: crate::store::OutboxKind::Message,
                    message_id: (*id).into(),
                    body: None,
                    created_ms: 0,
                },
                attempts: 0,
                claim: Some(0),
            })
            .collect();
        let docs = [
            json!({"id": "a", "x": "\"],"}),
            json!({"id": "b"}),
            json!({"id": "c", "n": [1, {}]}),
        ];
        let group: Vec<Ready<'_>> = rows
            .iter()
            .zip(&docs)
            .map(|(row, doc)| Ready {
                row,
                claim: row.claim,
                id: row.entry.message_id.clone(),
                json: doc.to_string().into_bytes(),
                recipients: Vec::new(),
            })
            .collect();
        let parsed: Value = serde_json::from_slice(&envelope(&group)).expect("JSON");
        assert_eq!(parsed, json!({"v": 1, "messages": docs}));
        let one: Value = serde_json::from_slice(&envelope(&group[..1])).expect("JSON");
        assert_eq!(one, json!({"v": 1, "messages": [docs[0]]}));
    }

    #[test]
    fn packing_keeps_order_and_limits() {
        let sizes = [(10, 1), (10, 1), (10, 1), (50, 1), (100, 1), (5, 1), (5, 1)];
        // Each document costs its size and a comma.
        assert_eq!(pack(&sizes, 33), vec![0..3, 3..4, 4..5, 5..7]);
        let many = vec![(1, 1); MAX_BATCH * 2 + 1];
        assert_eq!(
            pack(&many, usize::MAX),
            vec![
                0..MAX_BATCH,
                MAX_BATCH..2 * MAX_BATCH,
                2 * MAX_BATCH..2 * MAX_BATCH + 1
            ]
        );
        let wide = [(1, 150), (1, 150), (1, 106), (1, 300), (1, 1)];
        assert_eq!(pack(&wide, usize::MAX), vec![0..1, 1..3, 3..4, 4..5]);
        assert!(pack(&[], 10).is_empty());
    }

    /// A peer's answer to a full batch must stay within what the relay
    /// reads (`MAX_ANSWER_BYTES`), or the batch fails as an outage every
    /// time it is sent (the peer answers a retry with the same stored
    /// receipts). Each receipt is now a token of a batch (SPEC §11, *Batch
    /// signatures*): the statement, the root JWS and its audit path — here
    /// a path of 12 hashes, a write batch of 4096 receipts (every lane's
    /// full batch at once) — and a refusal names each point of the
    /// agreement the message fails (four, with a reference as long as the
    /// shipped `config/policy.toml`'s).
    #[test]
    fn a_full_batchs_answer_fits_what_the_relay_reads() {
        use crate::domain::PartnerId;
        use crate::federation::{Receipt, ReceiptKind, ReceiptViolation};
        let key = crate::crypto::jose::JwsKey::from_pem(
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBGxdt0AIsrUSlwXpBn7Mqn0yZjKZV3uNrlVSuOqBhL5\n-----END PRIVATE KEY-----\n",
        )
        .expect("key");
        let pid = |s: &str| PartnerId::parse(s).expect("id");
        let reference = "\"Agreement on Operational and Strategic Cooperation between Bosnia and Herzegovina and Europol (2016)\"";
        let violations: Vec<ReceiptViolation> = [
            (
                "classification_exceeds_agreement",
                format!("EU_RESTRICTED is above EU_RESTRICTED of {reference}"),
            ),
            (
                "purpose_not_permitted",
                format!("purpose investigation is not permitted by {reference}"),
            ),
            (
                "personal_data_not_permitted",
                format!("{reference} does not permit personal data"),
            ),
            (
                "special_categories_not_permitted",
                format!("{reference} does not permit special categories of personal data"),
            ),
        ]
        .into_iter()
        .map(|(code, detail)| ReceiptViolation {
            code: code.into(),
            detail,
        })
        .collect();
        let receipts: Vec<Receipt> = (0..4096u32)
            .map(|i| Receipt {
                v: 1,
                kind: ReceiptKind::Refused,
                gateway: pid("RS-NCB"),
                to: pid("AL-NCB"),
                message_id: format!("0190f000-0000-7000-8000-{:012x}", i / 8),
                recipient: Some(pid("RS-MOI")),
                at: "2026-11-21T10:00:00.000Z".into(),
                audit_seq: None,
                tree_size: None,
                violations: violations.clone(),
                notice: None,
            })
            .collect();
        let tokens = Receipt::sign_all(&receipts, &key).expect("sign");
        let per_doc = MAX_RECIPIENTS / MAX_BATCH;
        let entries: Vec<Value> = (0..MAX_BATCH)
            .map(|d| {
                let list: Vec<Value> = (0..per_doc)
                    .map(|r| {
                        json!({"recipient": "RS-MOI", "kind": "refused", "jws": tokens[d * per_doc + r]})
                    })
                    .collect();
                json!({"id": format!("0190f000-0000-7000-8000-{d:012x}"), "status": 201, "receipts": list})
            })
            .collect();
        let answer = serde_json::to_vec(&json!({"results": entries})).expect("json");
        assert!(
            answer.len() <= super::super::peer_client::MAX_ANSWER_BYTES,
            "{} bytes for {MAX_RECIPIENTS} receipts ({} each)",
            answer.len(),
            tokens[0].len()
        );
    }
}
