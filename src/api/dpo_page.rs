//! `GET /dpo`: the audit log for data-protection officers, in a browser.
//!
//! Server-rendered HTML with no script at all: a filter form, a paged table,
//! a record's detail with its inclusion proof checked, the state of the
//! latest signed checkpoint, and export links. Every value is escaped
//! (justifications and officer names are partner-supplied text), and the
//! page forbids scripts, frames and foreign resources by CSP.

use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::audit::{parse_filter, query_pairs, record_json, scope_of};
use super::problem::ApiError;
use super::request_ctx::RequestCtx;
use crate::app::AppState;
use crate::audit::merkle;
use crate::audit::record::{Action, AuditRecord, Outcome};
use crate::tls::Identity;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f24}\
h1{font-size:1.4rem;margin:0 0 .5rem}\
table{border-collapse:collapse;width:100%;font-size:.85rem}\
th,td{border-bottom:1px solid #d0d7de;padding:.3rem .4rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}\
form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:1rem 0}\
label{display:flex;flex-direction:column;font-size:.8rem}\
.ok{color:#116329}.bad{color:#a40e26;font-weight:bold}\
.panel{border:1px solid #d0d7de;padding:.6rem;border-radius:6px;margin:.5rem 0}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:bold}\
pre{background:#f6f8fa;padding:.5rem;overflow:auto}";

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    let digest = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
});

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    );
    let mut resp = html.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'sha256-{}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        *STYLE_HASH
    )) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn who(ctx: &RequestCtx) -> String {
    match &ctx.identity {
        Identity::PartnerDpo(p) => {
            format!("data-protection officer of {p} (records involving {p})")
        }
        Identity::GatewayDpo => "the gateway's data-protection officer (all records)".to_owned(),
        other => other.role().to_owned(),
    }
}

/// The verification panel: the newest checkpoint, its signature checked
/// with the published key, and its root recomputed from stored records.
async fn verification(app: &AppState) -> Result<String, ApiError> {
    let size = app.store.audit_size().await?;
    let Some(cp) = app.store.checkpoint(None).await? else {
        return Ok(format!(
            "<div class=\"panel\" id=\"verification\">No signed checkpoint yet. Records in the log: {size}.</div>"
        ));
    };
    let signature = app.checkpoint_verifier.verify(&cp.jws);
    let sig_ok = signature
        .as_ref()
        .is_ok_and(|c| c.tree_size == cp.tree_size && c.root_hash == cp.root_hash);
    let root_ok = app
        .store
        .range_root(0, cp.tree_size)
        .await
        .is_ok_and(|r| hex::encode(r) == cp.root_hash);
    let mark = |ok: bool, good: &str, bad: &str| {
        if ok {
            format!("<span class=\"ok\">{good}</span>")
        } else {
            format!("<span class=\"bad\">{bad}</span>")
        }
    };
    Ok(format!(
        "<div class=\"panel\" id=\"verification\"><strong>Latest signed checkpoint</strong>: tree size {}, signed {}. \
         Signature: {}. Root: {}. Records in the log: {size}.<br><small>Root hash {}. Verify offline with \
         <code>brdo audit verify --export FILE --checkpoint JWS --pubkey audit-signing.pub</code>.</small></div>",
        cp.tree_size,
        esc(&cp.at),
        mark(sig_ok, "valid", "INVALID"),
        mark(
            root_ok,
            "matches the stored records",
            "DOES NOT MATCH the stored records"
        ),
        esc(&cp.root_hash),
    ))
}

fn options(name: &str, values: &[&str], selected: Option<&str>) -> String {
    let mut s = format!("<select name=\"{name}\"><option value=\"\">any</option>");
    for v in values {
        let sel = if Some(*v) == selected {
            " selected"
        } else {
            ""
        };
        let _ = write!(s, "<option{sel}>{}</option>", esc(v));
    }
    s.push_str("</select>");
    s
}

fn field(label: &str, name: &str, value: Option<&str>, placeholder: &str) -> String {
    format!(
        "<label>{label}<input name=\"{name}\" value=\"{}\" placeholder=\"{}\"></label>",
        esc(value.unwrap_or_default()),
        esc(placeholder)
    )
}

fn encode_query(pairs: &[(String, String)], skip: &[&str]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !skip.contains(&k.as_str()) && !v.is_empty() {
            ser.append_pair(k, v);
        }
    }
    ser.finish()
}

fn row(rec: &AuditRecord, reduced: bool) -> String {
    if reduced {
        return format!(
            "<tr><td><a href=\"/dpo/records/{0}\">{0}</a></td><td colspan=\"9\"><em>reduced to its hash after audit retention</em></td></tr>",
            rec.seq
        );
    }
    let d = &rec.draft;
    let actor = match &d.actor.id {
        Some(id) => format!("{} {}", d.actor.role, id),
        None => d.actor.role.to_string(),
    };
    format!(
        "<tr><td><a href=\"/dpo/records/{seq}\">{seq}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&d.at),
        esc(&actor),
        esc(d.actor.officer.as_deref().unwrap_or("")),
        esc(d.action.as_str()),
        esc(d.outcome.as_str()),
        esc(d.code.as_deref().unwrap_or("")),
        esc(d.message_id.as_deref().unwrap_or("")),
        esc(&d.counterparts.join(", ")),
        esc(d.justification.as_deref().unwrap_or("")),
        seq = rec.seq,
    )
}

/// `GET /dpo`.
#[utoipa::path(
    get,
    path = "/dpo",
    tag = "audit",
    operation_id = "dpo_page",
    summary = "The DPO web page (HTML)",
    params(
        crate::api::schema::DpoPageParams
    ),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html")
    )
)]
pub async fn index(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = scope_of(&ctx)?;
    let pairs: Vec<(String, String)> = query_pairs(raw.as_deref())
        .map_err(ApiError::InvalidRequest)?
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let mut filter = parse_filter(&pairs, &[]).map_err(ApiError::InvalidRequest)?;
    if !pairs.iter().any(|(k, _)| k == "limit") {
        filter.limit = 50;
    }
    let rows = app.store.audit_query(&filter, scope.as_deref()).await?;
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());

    let mut body = String::with_capacity(16 * 1024);
    let _ = write!(
        body,
        "<h1>Brdo audit log</h1><p>Signed in as {}.</p>",
        esc(&who(&ctx))
    );
    body.push_str(&verification(&app).await?);
    body.push_str("<form method=\"get\" action=\"/dpo\" id=\"filters\">");
    body.push_str(&field("Partner", "partner", get("partner"), "RS-MOI"));
    body.push_str(&field("Message", "message", get("message"), "message id"));
    body.push_str(&field("Officer", "officer", get("officer"), "insp.hoxha"));
    let actions: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    let _ = write!(
        body,
        "<label>Action{}</label>",
        options("action", &actions, get("action"))
    );
    let _ = write!(
        body,
        "<label>Outcome{}</label>",
        options("outcome", &outcomes, get("outcome"))
    );
    body.push_str(&field("From", "from", get("from"), "2026-11-21T00:00:00Z"));
    body.push_str(&field("To", "to", get("to"), "2026-11-22T00:00:00Z"));
    let _ = write!(
        body,
        "<label>Order{}</label><button type=\"submit\">Apply</button> <a href=\"/dpo\">Clear</a></form>",
        options("order", &["asc", "desc"], get("order"))
    );
    let filters_q = encode_query(&pairs, &["after", "limit"]);
    let sep = if filters_q.is_empty() { "" } else { "&" };
    let _ = write!(
        body,
        "<p>Export these records: <a id=\"export-jsonl\" href=\"/v1/audit/export?{q}{sep}format=jsonl\">JSON Lines</a> · \
         <a id=\"export-csv\" href=\"/v1/audit/export?{q}{sep}format=csv\">CSV</a></p>",
        q = esc(&filters_q)
    );
    let _ = write!(
        body,
        "<table id=\"records\"><thead><tr><th>seq</th><th>time</th><th>actor</th><th>officer</th><th>action</th>\
         <th>outcome</th><th>code</th><th>message</th><th>counterparts</th><th>justification</th></tr></thead><tbody>"
    );
    if rows.is_empty() {
        body.push_str("<tr><td colspan=\"10\" id=\"empty\">No records match.</td></tr>");
    }
    for (rec, reduced) in &rows {
        body.push_str(&row(rec, *reduced));
    }
    body.push_str("</tbody></table>");
    if rows.len() as u32 == filter.limit
        && let Some((last, _)) = rows.last()
    {
        let q = encode_query(&pairs, &["after"]);
        let _ = write!(
            body,
            "<p><a id=\"next\" href=\"/dpo?{}{}after={}\">Next page</a></p>",
            esc(&q),
            if q.is_empty() { "" } else { "&amp;" },
            last.seq
        );
    }
    Ok(page("Brdo audit log", &body))
}

/// `GET /dpo/records/{seq}`: one record, with its inclusion proof in the
/// newest checkpoint checked.
#[utoipa::path(
    get,
    path = "/dpo/records/{seq}",
    tag = "audit",
    operation_id = "dpo_record_page",
    summary = "One audit record on the DPO web page (HTML)",
    params(
        ("seq" = u64, Path)
    ),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html")
    )
)]
pub async fn record(
    State(app): State<Arc<AppState>>,
    Extension(ctx): Extension<Arc<RequestCtx>>,
    Path(seq): Path<String>,
) -> Result<Response, ApiError> {
    let scope = scope_of(&ctx)?;
    let seq: u64 = seq
        .parse()
        .ok()
        .filter(|n| (1..=super::audit::MAX_SEQ).contains(n))
        .ok_or(ApiError::NotFound)?;
    ctx.note_detail("record", serde_json::json!(seq));
    if let Some(p) = &scope
        && !app.store.audit_involves(seq, p).await?
    {
        return Err(ApiError::NotFound);
    }
    let page_rec = app.store.audit_page(seq - 1, 1).await?;
    let Some((rec, reduced)) = page_rec.into_iter().next().filter(|(r, _)| r.seq == seq) else {
        return Err(ApiError::NotFound);
    };
    let mut body = format!(
        "<h1>Audit record {seq}</h1><p><a href=\"/dpo\">Back to the log</a></p><dl id=\"record\">"
    );
    let json = record_json(&rec, reduced);
    if let Some(obj) = json.as_object() {
        for (k, v) in obj {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            let _ = write!(body, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&text));
        }
    }
    body.push_str("</dl>");
    let proof_panel = match app.store.checkpoint(None).await? {
        Some(cp) if cp.tree_size >= seq => {
            let leaf = rec.hash_bytes().map(|h| merkle::leaf_hash(&h));
            let path = app.store.inclusion_proof(seq - 1, cp.tree_size).await;
            let root: Option<merkle::Hash> = hex::decode(&cp.root_hash)
                .ok()
                .and_then(|b| b.try_into().ok());
            let ok = match (leaf, path, root) {
                (Ok(l), Ok(p), Some(r)) => {
                    merkle::verify_inclusion(&l, seq - 1, cp.tree_size, &p, &r).is_ok()
                }
                _ => false,
            };
            format!(
                "<div class=\"panel\" id=\"inclusion\">Included in the checkpoint of tree size {} (signed {}): {}</div>",
                cp.tree_size,
                esc(&cp.at),
                if ok {
                    "<span class=\"ok\">the inclusion proof verifies</span>"
                } else {
                    "<span class=\"bad\">the inclusion proof FAILS</span>"
                }
            )
        }
        _ => "<div class=\"panel\" id=\"inclusion\">Not yet covered by a signed checkpoint.</div>"
            .to_owned(),
    };
    body.push_str(&proof_panel);
    Ok(page(&format!("Audit record {seq}"), &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
