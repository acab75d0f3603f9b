//! The data-protection officers' API (SPEC §5): who saw what, when, why —
//! and proof that the answer comes from the signed log.
//!
//! A partner DPO sees only records where its partner is actor or
//! counterpart; the gateway DPO sees all. Every call is itself audited
//! (`audit_query`, `audit_export`).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::audit::fields::{COLUMN_NAMES, FIELDS, FieldValue, FieldView, Kind};
use crate::audit::record::{Action, AuditRecord, Numbered, Outcome, format_at};
use crate::domain::{FieldError, PartnerId};
use crate::store::{AuditFilter, WriteOp};
use crate::tls::Identity;

/// Largest page of `GET /v1/audit`.
pub(crate) const MAX_PAGE: u32 = 1000;
/// Default page.
pub(crate) const DEFAULT_PAGE: u32 = 100;
/// Largest sequence number or tree size a caller may name: the store keeps
/// them as signed 64-bit integers, so anything larger cannot exist and is
/// refused as input rather than reaching the store (found by schemathesis:
/// `?after=9223372036854775808` answered `503` before).
pub const MAX_SEQ: u64 = i64::MAX as u64;

fn field(name: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: crate::domain::text::echo(name),
        message: message.into(),
    }
}

/// Decoded query parameters, each at most once.
pub(crate) fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, Vec<FieldError>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut errors = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if out.iter().any(|(seen, _)| *seen == k) {
            errors.push(field(&k, "is given more than once"));
        } else {
            out.push((k.into_owned(), v.into_owned()));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Normalises an RFC 3339 time to the records' own format, so the text
/// comparison in SQL is a time comparison.
fn instant(name: &str, v: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        Ok(t) => Some(format_at(t)),
        Err(_) => {
            errors.push(field(
                name,
                "must be an RFC 3339 time such as 2026-11-21T00:00:00Z",
            ));
            None
        }
    }
}

/// The filters of `GET /v1/audit` and `/v1/audit/export`; `extra` names
/// further parameters an endpoint accepts (e.g. `format`).
pub(crate) fn parse_filter(
    pairs: &[(String, String)],
    extra: &[&str],
) -> Result<AuditFilter, Vec<FieldError>> {
    let mut f = AuditFilter {
        limit: DEFAULT_PAGE,
        ..AuditFilter::default()
    };
    let mut errors = Vec::new();
    for (k, v) in pairs {
        let v = v.as_str();
        match k.as_str() {
            "partner" => match PartnerId::parse(v) {
                Some(p) => f.partner = Some(p.to_string()),
                None => errors.push(field(k, "must be a partner id such as AL-CTD")),
            },
            "message" => match uuid::Uuid::try_parse(v) {
                Ok(u) if v.len() == 36 => f.message = Some(u.to_string()),
                _ => errors.push(field(k, "must be a message id (UUID)")),
            },
            // The same rule (and NFC) as the Brdo-Officer header, so the
            // filter finds the officer however the name was typed.
            "officer" => match crate::domain::text::free_text(v, 1, 128, false) {
                Ok(o) => f.officer = Some(o),
                Err(e) => errors.push(field(k, e.to_string())),
            },
            "action" => match Action::parse(v) {
                Some(a) => f.action = Some(a.as_str().to_owned()),
                None => errors.push(field(k, format!("must be one of {}", Action::allowed()))),
            },
            "outcome" => match Outcome::parse(v) {
                Some(o) => f.outcome = Some(o.as_str().to_owned()),
                None => errors.push(field(k, format!("must be one of {}", Outcome::allowed()))),
            },
            "code" => {
                if (1..=64).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    f.code = Some(v.to_owned());
                } else {
                    errors.push(field(k, "must be an error code such as content_integrity"));
                }
            }
            "from" => f.from = instant(k, v, &mut errors),
            "to" => f.to = instant(k, v, &mut errors),
            "after" => match v.parse::<u64>() {
                Ok(n) if n <= MAX_SEQ => f.after = Some(n),
                _ => errors.push(field(k, "must be a cursor returned as `next`")),
            },
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => f.limit = n,
                _ => errors.push(field(
                    k,
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                )),
            },
            "order" => match v {
                "asc" => f.descending = false,
                "desc" => f.descending = true,
                _ => errors.push(field(k, "must be asc or desc")),
            },
            other if extra.contains(&other) => {}
            other => errors.push(field(other, "is not a filter of this endpoint")),
        }
    }
    if errors.is_empty() {
        Ok(f)
    } else {
        Err(errors)
    }
}

/// The partner a DPO's view is limited to (`None` for the gateway DPO).
pub(crate) fn scope_of(ctx: &RequestCtx) -> Result<Option<String>, ApiError> {
    match &ctx.identity {
        Identity::PartnerDpo(p) => Ok(Some(p.to_string())),
        Identity::GatewayDpo => Ok(None),
        other => Err(ApiError::ForbiddenRole { role: other.role() }),
    }
}

/// A record as served: full, or reduced to its place in the chain.
pub fn record_json(rec: &AuditRecord, reduced: bool) -> Value {
    rec.to_served(reduced)
}

fn filter_details(f: &AuditFilter) -> Value {
    json!({
        "partner": f.partner, "message": f.message, "officer": f.officer, "action": f.action,
        "outcome": f.outcome, "code": f.code, "from": f.from, "to": f.to, "after": f.after,
        "order": if f.descending { "desc" } else { "asc" },
    })
}

/// `GET /v1/audit`.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    operation_id = "audit_query",
    summary = "Query audit records (DPO)",
    params(
        crate::api::schema::AuditFilterParams,
        ("after" = Option<u64>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000),
        ("order" = Option<String>, Query, description = "asc (default) or desc")
    ),
    responses(
        (status = 200, description = "A page of records", body = crate::api::schema::AuditPage)
    )
)]
pub async fn query(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = scope_of(&ctx)?;
    let pairs = query_pairs(raw.as_deref()).map_err(ApiError::InvalidRequest)?;
    let filter = parse_filter(&pairs, &[]).map_err(ApiError::InvalidRequest)?;
    ctx.note_detail("filters", filter_details(&filter));
    let rows = app.store.audit_query(&filter, scope.as_deref()).await?;
    let next = (rows.len() as u32 == filter.limit)
        .then(|| rows.last().map(|(r, _)| r.seq.to_string()))
        .flatten();
    let records: Vec<Value> = rows.iter().map(|(r, red)| record_json(r, *red)).collect();
    Ok(Json(json!({"records": records, "next": next})).into_response())
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines.
    Jsonl,
    /// CSV (RFC 4180).
    Csv,
}

/// CSV columns of the export: a row's columns, from the record's one
/// definition.
pub const CSV_COLUMNS: &[&str] = COLUMN_NAMES;

/// One CSV cell: quoted when needed, and defused against spreadsheet
/// formula injection (a cell starting with `= + - @` or a control
/// character gets a leading apostrophe): DPOs open exports in
/// spreadsheets, and justifications are partner-supplied text.
pub(crate) fn csv_cell(s: &str) -> String {
    let defused = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// One record as a CSV line.
pub(crate) fn csv_line(rec: &AuditRecord, reduced: bool) -> String {
    let view = Numbered {
        seq: rec.seq,
        draft: &rec.draft,
    };
    let mut cells: Vec<String> = FIELDS
        .iter()
        .map(|def| {
            if reduced && def.kind != Kind::Seq {
                String::new()
            } else {
                csv_text(view.value(def.field))
            }
        })
        .collect();
    cells.push(if reduced { "true" } else { "false" }.to_owned());
    cells.push(rec.prev_hash.clone());
    cells.push(rec.hash.clone());
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// A field's text in a CSV cell: lists joined with `;`, objects as JSON,
/// nothing for `null`.
fn csv_text(v: FieldValue<'_>) -> String {
    match v {
        FieldValue::Seq(n) => n.to_string(),
        FieldValue::Text(s) | FieldValue::Json(s) => s.to_owned(),
        FieldValue::Null | FieldValue::Absent => String::new(),
        FieldValue::List(l) => l.join(";"),
        FieldValue::Object(m) => Value::Object(m.clone()).to_string(),
    }
}

/// One page of the export in `format`.
fn export_chunk(rows: &[(AuditRecord, bool)], format: Format) -> String {
    let mut chunk = String::with_capacity(rows.len() * 400);
    for (r, red) in rows {
        match format {
            Format::Jsonl => {
                chunk.push_str(&record_json(r, *red).to_string());
                chunk.push('\n');
            }
            Format::Csv => chunk.push_str(&csv_line(r, *red)),
        }
    }
    chunk
}

fn format_of(pairs: &[(String, String)], headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some((_, f)) = pairs.iter().find(|(k, _)| k == "format") {
        return match f.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            _ => Err(ApiError::InvalidRequest(vec![field(
                "format",
                "must be jsonl or csv",
            )])),
        };
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(if accept.contains("text/csv") {
        Format::Csv
    } else {
        Format::Jsonl
    })
}

/// `GET /v1/audit/export`: the same filters, streamed page by page, so
/// memory stays constant for any log size.
#[utoipa::path(
    get,
    path = "/v1/audit/export",
    tag = "audit",
    operation_id = "audit_export",
    summary = "Export audit records as JSON Lines or CSV, streamed (DPO)",
    params(
        crate::api::schema::AuditFilterParams,
        ("format" = Option<String>, Query, description = "jsonl or csv, when Accept names neither")
    ),
    responses(
        (status = 200, description = "The records", content((String = "application/x-ndjson"), (String = "text/csv")))
    )
)]
pub async fn export(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = scope_of(&ctx)?;
    let pairs = query_pairs(raw.as_deref()).map_err(ApiError::InvalidRequest)?;
    let format = format_of(&pairs, &headers)?;
    let mut filter = parse_filter(&pairs, &["format"]).map_err(ApiError::InvalidRequest)?;
    filter.limit = MAX_PAGE;
    ctx.note_detail("filters", filter_details(&filter));
    ctx.note_detail(
        "format",
        json!(if format == Format::Csv {
            "csv"
        } else {
            "jsonl"
        }),
    );
    // Audited before the first byte leaves.
    let (_, rec) = app
        .store
        .write(
            WriteOp::AuditOnly,
            ctx.draft(Action::AuditExport, Outcome::Allowed, None),
        )
        .await?;
    ctx.mark_audited(rec.seq);

    let store = app.store.clone();
    let header_line = (format == Format::Csv).then(|| {
        let mut h = CSV_COLUMNS.join(",");
        h.push_str("\r\n");
        h
    });
    let state = (store, filter, scope, header_line, false);
    let stream = futures_util::stream::unfold(
        state,
        move |(store, mut filter, scope, header, done)| async move {
            if done {
                return None;
            }
            if let Some(h) = header {
                return Some((
                    Ok(bytes::Bytes::from(h)),
                    (store, filter, scope, None, false),
                ));
            }
            match store.audit_query(&filter, scope.as_deref()).await {
                Ok(rows) => {
                    let (last, _) = rows.last()?;
                    filter.after = Some(last.seq);
                    let finished = (rows.len() as u32) < filter.limit;
                    Some((
                        Ok(bytes::Bytes::from(export_chunk(&rows, format))),
                        (store, filter, scope, None, finished),
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export aborted");
                    Some((
                        Err(std::io::Error::other("audit export failed")),
                        (store, filter, scope, None, true),
                    ))
                }
            }
        },
    );
    let mut resp = Body::from_stream(stream).into_response();
    let (ctype, ext) = match format {
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"brdo-audit-{}.{ext}\"",
        rec.seq
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

fn one_number(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, ApiError> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((k, v)) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_SEQ).contains(n))
            .map(Some)
            .ok_or_else(|| {
                ApiError::InvalidRequest(vec![field(
                    k,
                    "must be a positive whole number no larger than 9223372036854775807",
                )])
            }),
    }
}

fn only(pairs: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = pairs
        .iter()
        .filter(|(k, _)| !allowed.contains(&k.as_str()))
        .map(|(k, _)| field(k, "is not a parameter of this endpoint"))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidRequest(errors))
    }
}

/// `GET /v1/audit/checkpoint?tree_size=N`.
#[utoipa::path(
    get,
    path = "/v1/audit/checkpoint",
    tag = "audit",
    operation_id = "audit_checkpoint",
    summary = "The latest (or an earlier) signed checkpoint (DPO)",
    params(
        ("tree_size" = Option<u64>, Query)
    ),
    responses(
        (status = 200, description = "The checkpoint", body = crate::api::schema::Checkpoint)
    )
)]
pub async fn checkpoint(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    scope_of(&ctx)?;
    let pairs = query_pairs(raw.as_deref()).map_err(ApiError::InvalidRequest)?;
    only(&pairs, &["tree_size"])?;
    let size = one_number(&pairs, "tree_size")?;
    ctx.note_detail("checkpoint", json!(size));
    let cp = app
        .store
        .checkpoint(size)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(
        json!({"jws": cp.jws, "tree_size": cp.tree_size, "root_hash": cp.root_hash, "at": cp.at}),
    )
    .into_response())
}

/// `GET /v1/audit/proof/{seq}?tree_size=N`: the inclusion proof of record
/// `seq` (leaf `seq - 1`). Without `tree_size`, the newest checkpoint that
/// covers the record, else the whole log.
#[utoipa::path(
    get,
    path = "/v1/audit/proof/{seq}",
    tag = "audit",
    operation_id = "audit_proof",
    summary = "Inclusion proof of a record (DPO)",
    params(
        ("seq" = u64, Path),
        ("tree_size" = Option<u64>, Query)
    ),
    responses(
        (status = 200, description = "The proof", body = crate::api::schema::InclusionProof)
    )
)]
pub async fn proof(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(seq): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = scope_of(&ctx)?;
    let pairs = query_pairs(raw.as_deref()).map_err(ApiError::InvalidRequest)?;
    only(&pairs, &["tree_size"])?;
    let asked = one_number(&pairs, "tree_size")?;
    let seq: u64 = seq
        .parse()
        .ok()
        .filter(|n| (1..=MAX_SEQ).contains(n))
        .ok_or(ApiError::NotFound)?;
    ctx.note_detail("proof_of", json!(seq));
    let log_size = app.store.audit_size().await?;
    if seq > log_size {
        return Err(ApiError::NotFound);
    }
    if let Some(p) = &scope
        && !app.store.audit_involves(seq, p).await?
    {
        return Err(ApiError::NotFound);
    }
    let tree_size = match asked {
        Some(n) if n < seq || n > log_size => {
            return Err(ApiError::InvalidRequest(vec![field(
                "tree_size",
                format!("must be from {seq} (the record) to {log_size} (the log's size)"),
            )]));
        }
        Some(n) => n,
        None => match app.store.checkpoint(None).await? {
            Some(cp) if cp.tree_size >= seq => cp.tree_size,
            _ => log_size,
        },
    };
    let path = app.store.inclusion_proof(seq - 1, tree_size).await?;
    let root = app.store.range_root(0, tree_size).await?;
    let record_hash = app.store.audit_record(seq).await?.map(|r| r.hash);
    Ok(Json(json!({
        "leaf_index": seq - 1,
        "tree_size": tree_size,
        "root_hash": hex::encode(root),
        "audit_path": path.iter().map(hex::encode).collect::<Vec<_>>(),
        "record_hash": record_hash,
    }))
    .into_response())
}

/// `GET /v1/audit/consistency?from=N&to=M`.
#[utoipa::path(
    get,
    path = "/v1/audit/consistency",
    tag = "audit",
    operation_id = "audit_consistency",
    summary = "Consistency proof between two tree sizes (DPO)",
    params(
        ("from" = u64, Query),
        ("to" = u64, Query)
    ),
    responses(
        (status = 200, description = "The proof", body = crate::api::schema::ConsistencyProof)
    )
)]
pub async fn consistency(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    scope_of(&ctx)?;
    let pairs = query_pairs(raw.as_deref()).map_err(ApiError::InvalidRequest)?;
    only(&pairs, &["from", "to"])?;
    let from = one_number(&pairs, "from")?;
    let to = one_number(&pairs, "to")?;
    let log_size = app.store.audit_size().await?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::InvalidRequest(vec![field(
            "from",
            "from and to are both required",
        )]));
    };
    if from > to || to > log_size {
        return Err(ApiError::InvalidRequest(vec![field(
            "to",
            format!("need 1 ≤ from ≤ to ≤ {log_size} (the log's size)"),
        )]));
    }
    ctx.note_detail("consistency", json!([from, to]));
    let proof = app.store.consistency_proof(from, to).await?;
    Ok(Json(json!({
        "from": from,
        "to": to,
        "from_root": hex::encode(app.store.range_root(0, from).await?),
        "to_root": hex::encode(app.store.range_root(0, to).await?),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_report_every_error() {
        let pairs = query_pairs(Some(
            "partner=RS-MOI&action=consult&from=2026-11-21T10:00:00%2B01:00&limit=5&order=desc&officer=insp.Petrovi%C4%87",
        ))
        .expect("pairs");
        let f = parse_filter(&pairs, &[]).expect("filter");
        assert_eq!(f.partner.as_deref(), Some("RS-MOI"));
        assert_eq!(f.from.as_deref(), Some("2026-11-21T09:00:00.000Z"));
        assert_eq!(f.officer.as_deref(), Some("insp.Petrović"));
        assert!(f.descending);
        let pairs = query_pairs(Some(
            "partner=rs&action=peek&limit=0&colour=red&from=yesterday",
        ))
        .expect("pairs");
        let e = parse_filter(&pairs, &[]).expect_err("bad");
        let names: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["partner", "action", "limit", "colour", "from"]);
        assert!(query_pairs(Some("limit=1&limit=2")).is_err());
    }

    #[test]
    fn the_code_filter_takes_an_error_code_only() {
        let pairs = query_pairs(Some("code=content_integrity")).expect("pairs");
        let f = parse_filter(&pairs, &[]).expect("filter");
        assert_eq!(f.code.as_deref(), Some("content_integrity"));
        for bad in [
            "",
            "Content",
            "a%20b",
            "x%27--",
            "%E2%80%AE",
            &"a".repeat(65),
        ] {
            let pairs = query_pairs(Some(&format!("code={bad}"))).expect("pairs");
            let e = parse_filter(&pairs, &[]).expect_err(bad);
            assert_eq!(e[0].field, "code", "{bad}");
        }
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2,3"), "\"'-2,3\"");
    }
}
