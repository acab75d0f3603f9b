//! The request gate: who is calling, may they call this, and the one audit
//! record every request leaves.
//!
//! Every request passes [`gate`]. It resolves the caller from the
//! connection's certificate (identity, revocation, suspension), refuses a
//! (method, path) the table in `routes` does not name and a request a
//! browser sent for another site (`cross_site`), checks the route's role
//! from the table and the body's declared media type, adds the browser
//! security headers to every answer, and after the handler ran makes
//! sure exactly one audit record exists for the request: handlers that
//! change state append theirs in the same transaction and mark the context
//! audited; for everything else (reads, refusals, failures) the gate appends
//! it before the response leaves. If that append fails, the response is
//! replaced by `503 audit_unavailable`, so nothing is disclosed unaudited.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tracing::Instrument;

use super::cross_site::{cross_site_refusal, media_type_refusal};
use super::operation::Operation;
use super::problem::{ApiError, ErrorInfo};
use super::request_ctx::{
    AUDIT_SEQ_HEADER, OFFICER_HEADER, REQUEST_ID_HEADER, RequestCtx, text_header,
};
use super::routes::{RouteRefusal, lookup, route_refusal};
use super::security_headers;
use super::upload_rate::MinRate;
use crate::app::AppState;
use crate::app::refusals::{Admission, RefusalKey};
use crate::audit::record::{Action, Actor, Outcome, RecordDraft, Role, format_at};
use crate::tls::{ConnectionInfo, Identity};

/// The middleware around every route.
pub async fn gate(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::now_v7().to_string();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let op = lookup(req.method(), matched);
    let route = route_refusal(req.method(), matched);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        op = op.action.as_str(),
        route = op.route,
        role = tracing::field::Empty,
        caller = tracing::field::Empty,
        status = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let allow = match &route {
        Some(RouteRefusal::MethodNotAllowed { allow }) => HeaderValue::from_str(allow).ok(),
        _ => None,
    };
    let mut response = gate_in_span(app, req, next, request_id, op, route)
        .instrument(span)
        .await;
    // Whichever refusal answered, the path's methods are the table's (the
    // router would otherwise add its own list, which names HEAD).
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    security_headers::add(&mut response);
    response
}

async fn gate_in_span(
    app: Arc<AppState>,
    req: Request,
    next: Next,
    request_id: String,
    op: Operation,
    route: Option<RouteRefusal>,
) -> Response {
    let Some(conn) = req.extensions().get::<ConnectionInfo>().cloned() else {
        // Only reachable if the router is served without the TLS accept loop.
        tracing::error!("request without connection info refused");
        return ApiError::Internal.to_response(Some(&request_id));
    };
    let peer = conn.peer.clone();
    let started = std::time::Instant::now();
    let method = crate::app::refusals::method_name(req.method());
    let path = super::routes::path_template(
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );

    let (officer, officer_problem) = match text_header(req.headers(), OFFICER_HEADER, 128) {
        Ok(o) => (o, None),
        Err(p) => (None, Some(p)),
    };

    // The rate limit comes before every other refusal, keyed by the
    // certificate's identity (or its serial when it has none), so a caller
    // that is refused anyway cannot send faster than one that is served.
    let limited = app
        .rate_limit
        .check(&peer.limit_key(), std::time::Instant::now())
        .err()
        .map(|wait| ApiError::RateLimited {
            retry_after: crate::app::rate_limit::retry_after_secs(wait),
        });

    let identity = match resolve(&app, &peer) {
        Ok(i) => i,
        Err(e) => {
            let e = limited.unwrap_or(e);
            return refuse_unidentified(&app, &peer, e, op, (method, path), &request_id).await;
        }
    };

    app.seen.see(&peer, &identity_uri(&identity));
    let ctx = Arc::new(RequestCtx::new(
        request_id.clone(),
        op,
        identity,
        peer.serial.clone(),
        (officer, officer_problem),
    ));

    let refusal = first_refusal(&app, &ctx, &req, route, limited);

    let response = match refusal {
        Some(e) => {
            let key = RefusalKey::new(
                identity_uri(&ctx.identity),
                ctx.cert_serial.clone(),
                ctx.op.action.as_str(),
                (method, path),
                e.code(),
            );
            let response = e.to_response(Some(&request_id));
            let draft = result_draft(&ctx, &response);
            refuse(
                &app,
                key,
                draft,
                response,
                &request_id,
                shows_seq(&ctx.identity),
            )
            .await
        }
        None => {
            let response = run_handler(&app, &ctx, req, next).await;
            finish(&app, &ctx, response).await
        }
    };
    observe_done(&app, &ctx, &response, started.elapsed());
    response
}

/// The request's metrics, span fields and closing log line.
fn observe_done(
    app: &AppState,
    ctx: &RequestCtx,
    response: &Response,
    elapsed: std::time::Duration,
) {
    let status = response.status().as_u16();
    app.metrics
        .request(op_route(&ctx.op), status, elapsed.as_secs_f64());
    record_result(
        &tracing::Span::current(),
        ctx.identity.role(),
        ctx.identity.id(),
        status,
        outcome_of(response.status(), ctx.op.action).as_str(),
    );
    tracing::info!(
        role = ctx.identity.role(),
        caller = ctx.identity.id(),
        status,
        elapsed_ms = elapsed.as_millis() as u64,
        "request done"
    );
}

/// Refuses a caller whose certificate names no identity the gateway knows
/// (or whose rate limit ran out first): the record names the certificate's
/// serial and subject, since there is no identity to name.
async fn refuse_unidentified(
    app: &AppState,
    peer: &crate::tls::PeerCert,
    e: ApiError,
    op: Operation,
    (method, path): (&'static str, &'static str),
    request_id: &str,
) -> Response {
    let draft = RecordDraft {
        at: format_at(time::OffsetDateTime::now_utc()),
        actor: Actor {
            role: Role::Unidentified,
            id: None,
            officer: None,
            cert_serial: Some(peer.serial.clone()),
        },
        action: Action::Deny,
        message_id: None,
        counterparts: Vec::new(),
        outcome: Outcome::Denied,
        code: Some(e.code().to_owned()),
        justification: None,
        request_id: Some(request_id.to_owned()),
        node: None,
        details: Some(
            json!({"attempted": op.action.as_str(), "subject": cert_subject(&peer.subject)})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
    };
    let key = RefusalKey::new(
        peer.limit_key(),
        peer.serial.clone(),
        op.action.as_str(),
        (method, path),
        e.code(),
    );
    let response = e.to_response(Some(request_id));
    refuse(app, key, draft, response, request_id, false).await
}

/// The first refusal that applies to an identified caller, in the gate's
/// order: rate limit, revoked certificate, suspended partner, route and
/// cross-site, role, media type.
fn first_refusal(
    app: &AppState,
    ctx: &RequestCtx,
    req: &Request,
    route: Option<RouteRefusal>,
    limited: Option<ApiError>,
) -> Option<ApiError> {
    if let Some(e) = limited {
        Some(e)
    } else if app.tls.is_revoked(&ctx.cert_serial) {
        Some(ApiError::CertificateRevoked)
    } else if let Identity::Partner(p) = &ctx.identity
        && app.is_suspended(p)
    {
        Some(ApiError::PartnerSuspended(p.to_string()))
    } else if let Some(e) = request_refusal(req, route) {
        Some(e)
    } else if !ctx.op.allows(&ctx.identity) {
        Some(ApiError::ForbiddenRole {
            role: ctx.identity.role(),
        })
    } else {
        media_type_refusal(ctx.op.accepts, req.headers())
    }
}

/// Runs the handler with the request context attached and the body held to
/// the minimum upload rate; a body cut off for trickling is answered as such
/// however the handler reported the failed read.
async fn run_handler(
    app: &AppState,
    ctx: &Arc<RequestCtx>,
    mut req: Request,
    next: Next,
) -> Response {
    req.extensions_mut().insert(ctx.clone());
    let cut = Arc::new(AtomicBool::new(false));
    let settings = &app.settings;
    let req = req.map(|body| {
        Body::new(MinRate::new(
            body,
            settings.min_upload_bytes_per_second,
            std::time::Duration::from_secs(settings.upload_grace_secs),
            cut.clone(),
        ))
    });
    let response = next.run(req).await;
    if cut.load(Ordering::Relaxed) && !response.status().is_success() {
        return ApiError::UploadTooSlow {
            min_rate: settings.min_upload_bytes_per_second,
            grace_secs: settings.upload_grace_secs,
        }
        .into_response();
    }
    response
}

/// The certificate subject as an audit record holds it: capped, since a
/// certificate from the client CA may still carry a subject of any length.
fn cert_subject(subject: &str) -> String {
    crate::domain::text::cap(subject, super::audit_safe::MAX_SUBJECT_CHARS)
}

/// The gate's refusal of a request whatever its caller's role: a (method,
/// path) the route table does not name (deny by default), or a request a
/// browser sent for another site.
fn request_refusal(req: &Request, route: Option<RouteRefusal>) -> Option<ApiError> {
    match route {
        Some(RouteRefusal::NotFound) => Some(ApiError::RouteNotFound),
        Some(RouteRefusal::MethodNotAllowed { .. }) => Some(ApiError::MethodNotAllowed),
        None => cross_site_refusal(req.headers(), request_authority(req)),
    }
}

/// The host (and port) the request was sent to: the HTTP/2 `:authority`
/// or an absolute-form URI, else the one `Host` header.
fn request_authority(req: &Request) -> Option<&str> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str());
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(h), None) => h.to_str().ok(),
        _ => None,
    }
}

/// Records the request's result on its span in one call: the JSON log
/// layer re-reads and rewrites a span's fields on every `record`, which
/// done field by field cost 4 % of the gateway's request CPU.
fn record_result(span: &tracing::Span, role: &str, caller: &str, status: u16, outcome: &str) {
    let Some(meta) = span.metadata() else {
        return;
    };
    let fields = meta.fields();
    let (Some(f_role), Some(f_caller), Some(f_status), Some(f_outcome)) = (
        fields.field("role"),
        fields.field("caller"),
        fields.field("status"),
        fields.field("outcome"),
    ) else {
        return;
    };
    span.record_all(&fields.value_set(&[
        (&f_role, Some(&role as &dyn tracing::Value)),
        (&f_caller, Some(&caller as &dyn tracing::Value)),
        (&f_status, Some(&status as &dyn tracing::Value)),
        (&f_outcome, Some(&outcome as &dyn tracing::Value)),
    ]));
}

/// The route label for metrics: the path template, never the concrete
/// path (which may carry ids).
fn op_route(op: &Operation) -> &'static str {
    op.route
}

/// The SAN URI of an identity, as certificates carry it.
fn identity_uri(identity: &Identity) -> String {
    identity.uri()
}

/// Maps the certificate's identity to a caller the policy knows, issued
/// by a CA that may vouch for it (SPEC §11: a partner bound to a CA only
/// through that CA, a gateway only through its peer's CA, a peer's CA for
/// nothing else, everything else through a `client_ca`).
fn resolve(app: &AppState, peer: &crate::tls::PeerCert) -> Result<Identity, ApiError> {
    let identity = peer.identity.as_ref().map_err(|e| {
        ApiError::NoIdentity(format!("{}: {e}.", "The client certificate cannot be used"))
    })?;
    let policy = app.policy();
    if let Some(p) = identity.partner() {
        match policy.partner(p) {
            None => {
                return Err(ApiError::NoIdentity(format!(
                    "The client certificate names partner {p}, which the policy does not know."
                )));
            }
            Some(known) if known.via.is_some() => {
                return Err(ApiError::NoIdentity(format!(
                    "The client certificate names partner {p}, which lives behind a peer gateway \
                     and connects through it."
                )));
            }
            Some(_) => {}
        }
    }
    if let Identity::Gateway(g) = identity
        && policy.peer(g).is_none()
    {
        return Err(ApiError::NoIdentity(format!(
            "The client certificate names gateway {g}, which the policy lists as no peer."
        )));
    }
    app.tls
        .binding(peer.anchor.as_ref(), identity)
        .map_err(|rule| {
            ApiError::NoIdentity(format!(
                "The client certificate names {}, but {rule}.",
                identity.uri()
            ))
        })?;
    Ok(identity.clone())
}

/// Ensures the request is audited, then stamps the response.
async fn finish(app: &AppState, ctx: &RequestCtx, mut response: Response) -> Response {
    // Handlers return errors unrendered; render them now with the request id.
    if let Some(err) = response.extensions_mut().remove::<ApiError>() {
        response = err.to_response(Some(&ctx.request_id));
    }
    response = super::params::framework_rejection(response, &ctx.request_id);
    let show = shows_seq(&ctx.identity);
    if let Some(seq) = ctx.audited() {
        return stamp(response, &ctx.request_id, Some(seq).filter(|_| show));
    }
    let draft = result_draft(ctx, &response);
    finish_with(app, draft, response, &ctx.request_id, show).await
}

/// The audit draft of a request the handler did not audit itself, from
/// its response.
pub(super) fn result_draft(ctx: &RequestCtx, response: &Response) -> RecordDraft {
    let info = response.extensions().get::<ErrorInfo>().cloned();
    let status = response.status();
    let outcome = outcome_of(status, ctx.op.action);
    let (action, code) = match (&info, outcome) {
        (Some(i), Outcome::Denied) => {
            ctx.note_detail(
                "attempted",
                Value::String(ctx.op.action.as_str().to_owned()),
            );
            (Action::Deny, Some(i.code))
        }
        (Some(i), _) => (ctx.op.action, Some(i.code)),
        (None, _) if !status.is_success() => (ctx.op.action, Some(status_code_name(status))),
        (None, _) => (ctx.op.action, None),
    };
    if let Some(i) = &info {
        if !i.violations.is_empty() {
            ctx.note_detail(
                "violations",
                serde_json::to_value(&i.violations).unwrap_or(Value::Null),
            );
        }
        if !i.fields.is_empty() {
            ctx.note_detail("fields", json!(i.fields));
        }
    }
    ctx.draft(action, outcome, code)
}

/// Whether the caller may see the gateway-wide audit sequence: DPOs and
/// operators read the log anyway; a partner could count every other
/// partner's traffic from it, so partners never get it.
fn shows_seq(identity: &Identity) -> bool {
    !matches!(identity, Identity::Partner(_))
}

/// Audits a gate refusal through the refusal log: the first of its kind
/// in a window is appended now; identical ones are counted and written as
/// one record when the window closes (see `refusals`).
async fn refuse(
    app: &AppState,
    key: RefusalKey,
    draft: RecordDraft,
    response: Response,
    request_id: &str,
    show_seq: bool,
) -> Response {
    // Counts of windows already closed go first, keeping the chain in
    // the order things happened.
    let due = app.refusals.take_due(std::time::Instant::now());
    if !due.is_empty() {
        crate::app::refusals::write(app, due).await;
    }
    match app.refusals.admit(key, &draft, std::time::Instant::now()) {
        Admission::Record => finish_with(app, draft, response, request_id, show_seq).await,
        Admission::Counted => stamp(response, request_id, None),
    }
}

async fn finish_with(
    app: &AppState,
    draft: RecordDraft,
    response: Response,
    request_id: &str,
    show_seq: bool,
) -> Response {
    match app.store.append_audit(draft).await {
        Ok(rec) => stamp(response, request_id, Some(rec.seq).filter(|_| show_seq)),
        Err(e) => {
            tracing::error!(error = %e, "audit record could not be written; response withheld");
            stamp(
                ApiError::AuditUnavailable.to_response(Some(request_id)),
                request_id,
                None,
            )
        }
    }
}

fn outcome_of(status: StatusCode, action: Action) -> Outcome {
    if status.is_success() || status.is_redirection() {
        Outcome::Allowed
    } else if status == StatusCode::FORBIDDEN
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::NOT_FOUND && action != Action::Request)
    {
        Outcome::Denied
    } else {
        Outcome::Failed
    }
}

fn status_code_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        429 => "rate_limited",
        _ => "http_error",
    }
}

fn stamp(mut response: Response, request_id: &str, seq: Option<u64>) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if let Some(seq) = seq {
        response
            .headers_mut()
            .insert(AUDIT_SEQ_HEADER, HeaderValue::from(seq));
    }
    response
}
