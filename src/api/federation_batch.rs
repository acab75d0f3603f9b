//! A batch of relayed documents in one request (`POST
//! /v1/federation/messages` with `{"v": 1, "messages": [...]}`, SPEC §11).
//!
//! One request per document cost the relay a round trip and a durable
//! commit on each side per message (BENCHMARKS.md, *Relay*). A batch is
//! judged document by document, exactly as if each had come alone: each
//! runs `ops::relayed::receive` with its own context, so each gets its own
//! `collect`/`deny` record and receipts, and a refusal of one is not a
//! refusal of the others. The documents run concurrently, so their writes
//! share the writer's group commits.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::context::result_draft;
use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::app::ops;
use crate::domain::{FieldError, PartnerId};
use crate::federation::MAX_BATCH;

/// Whether `doc` is a batch rather than one relayed document.
pub fn is_batch(doc: &Value) -> bool {
    doc.get("messages").is_some()
}

/// Judges every document of the batch `doc` from `peer`; the answer's
/// JSON: `{"results": [...]}`, one entry per document in order, each
/// `{"id", "status": 201, "receipts"}` or `{"id", "status", "problem"}`.
/// Fails as a whole only when a document's audit record cannot be written
/// (fail closed: the origin retries, and the documents already stored
/// answer their first receipts again).
pub async fn receive(
    app: &Arc<AppState>,
    peer: &PartnerId,
    ctx: &RequestCtx,
    doc: &Value,
) -> Result<Value, ApiError> {
    let docs = documents(doc)?;
    let arrival = ops::relayed::arrival(app, peer, &ops::relayed::stated_ids(docs)).await?;
    let parts = docs.iter().map(|d| one(app, peer, ctx, d, &arrival));
    let results = futures_util::future::join_all(parts).await;
    let mut answers = Vec::with_capacity(results.len());
    let mut last = 0;
    for r in results {
        let (answer, seq) = r?;
        last = last.max(seq);
        answers.push(answer);
    }
    // Each document has its record; the request is recorded through them.
    ctx.mark_audited(last);
    Ok(json!({ "results": answers }))
}

/// `{"v": 1, "messages": [1..=MAX_BATCH objects]}`, strictly.
fn documents(doc: &Value) -> Result<&[Value], ApiError> {
    let invalid = |field: &str, message: String| {
        ApiError::InvalidMessage(vec![FieldError {
            field: field.into(),
            message,
        }])
    };
    let obj = doc
        .as_object()
        .ok_or_else(|| invalid("(body)", "must be a JSON object".into()))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["v", "messages"].contains(&k.as_str()))
    {
        return Err(invalid(k, "is not a member of a relay batch".into()));
    }
    if obj.get("v") != Some(&json!(1)) {
        return Err(invalid("v", "must be 1".into()));
    }
    let list = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "must be an array of relayed documents".into()))?;
    if list.is_empty() || list.len() > MAX_BATCH {
        return Err(invalid(
            "messages",
            format!("must hold 1 to {MAX_BATCH} documents, not {}", list.len()),
        ));
    }
    Ok(list)
}

/// One document of a batch, judged as if it had come alone: its answer
/// entry and the sequence number of its audit record.
async fn one(
    app: &AppState,
    peer: &PartnerId,
    ctx: &RequestCtx,
    doc: &Value,
    arrival: &ops::relayed::Arrival,
) -> Result<(Value, u64), ApiError> {
    let part = ctx.part();
    let id = doc.get("id").filter(|v| v.is_string()).cloned();
    let (response, entry) = match ops::relayed::receive_in(app, peer, &part, doc, arrival).await {
        Ok(answer) => {
            let entry = json!({"id": id, "status": 201, "receipts": answer["receipts"]});
            ((StatusCode::CREATED, ()).into_response(), entry)
        }
        Err(e) => {
            let response = ApiError::from(e).to_response(Some(&part.request_id));
            let status = response.status().as_u16();
            let (response, problem) = problem_of(response).await;
            let entry = json!({"id": id, "status": status, "problem": problem});
            (response, entry)
        }
    };
    if let Some(seq) = part.audited() {
        return Ok((entry, seq));
    }
    // What the gate records for a request its operation did not audit
    // (a refusal, a replay), for this document alone.
    let draft = result_draft(&part, &response);
    match app.store.append_audit(draft).await {
        Ok(rec) => Ok((entry, rec.seq)),
        Err(e) => {
            tracing::error!(error = %e, "audit record could not be written; batch withheld");
            Err(ApiError::AuditUnavailable)
        }
    }
}

/// The problem document of a rendered error, and the response without its
/// body (its extensions still name the code for the audit record).
async fn problem_of(response: Response) -> (Response, Value) {
    let (head, body) = response.into_parts();
    let problem = axum::body::to_bytes(body, 1 << 20)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (
        Response::from_parts(head, axum::body::Body::empty()),
        problem,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> String {
        match e {
            ApiError::InvalidMessage(v) => v[0].field.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_is_strict() {
        let one = json!({"id": "x"});
        assert!(is_batch(&json!({"v": 1, "messages": [one]})));
        assert!(!is_batch(&one));
        assert_eq!(
            documents(&json!({"v": 1, "messages": [one]}))
                .map(<[_]>::len)
                .ok(),
            Some(1)
        );
        let cases = [
            (json!([]), "(body)"),
            (json!({"v": 1, "messages": [], }), "messages"),
            (json!({"v": 1, "messages": "x"}), "messages"),
            (json!({"v": 2, "messages": [one]}), "v"),
            (json!({"messages": [one]}), "v"),
            (json!({"v": 1, "messages": [one], "extra": 1}), "extra"),
            (
                json!({"v": 1, "messages": vec![one.clone(); MAX_BATCH + 1]}),
                "messages",
            ),
        ];
        for (doc, want) in cases {
            let got = documents(&doc).map(drop).map_err(field);
            assert_eq!(got, Err(want.to_owned()), "{doc}");
        }
        assert!(documents(&json!({"v": 1, "messages": vec![one; MAX_BATCH]})).is_ok());
    }
}
