//! The plain-HTTP operations endpoint on `metrics_listen`: `/metrics`
//! (Prometheus text), `/healthz` (the process is up) and `/readyz` (the
//! store and the audit log can be written). Meant for loopback or an
//! internal network: it exposes counts, never content or identities beyond
//! certificate subjects' SAN identities in the expiry gauge.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use crate::app::AppState;
use crate::metrics::Gauges;

/// The router of the operations endpoint.
pub fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(app)
}

async fn gauges(app: &AppState) -> Gauges {
    let now = OffsetDateTime::now_utc();
    let audit_records = app.store.audit_size().await.unwrap_or(0);
    let checkpoint = app.store.checkpoint(None).await.ok().flatten();
    let checkpoint_age_secs = checkpoint.as_ref().and_then(|c| {
        OffsetDateTime::parse(&c.at, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| (now - t).as_seconds_f64())
    });
    Gauges {
        audit_records,
        checkpoint_age_secs,
        checkpoint_tree_size: checkpoint.map_or(0, |c| c.tree_size),
        connections: app.connections.count(),
        certificates: crate::app::operator::known_certificates(app)
            .into_iter()
            .map(|c| {
                let days = c.days_left(now);
                (c.identity, c.serial, days)
            })
            .collect(),
        suspended_partners: app.suspended().len(),
        relay_queues: relay_queues(app, now).await,
    }
}

/// Each peer's outbox depth and oldest row's age (peers the policy lists,
/// empty queues included).
pub(crate) async fn relay_queues(app: &AppState, now: OffsetDateTime) -> Vec<(String, i64, f64)> {
    let stats = app.store.outbox_stats().await.unwrap_or_default();
    let now_ms = crate::domain::time::to_ms(now);
    app.policy()
        .peers
        .keys()
        .map(|p| {
            let s = stats.iter().find(|s| s.peer == p.as_str());
            let depth = s.map_or(0, |s| s.depth);
            let age = s
                .and_then(|s| s.oldest_ms)
                .map_or(0.0, |o| (now_ms.saturating_sub(o)) as f64 / 1000.0);
            (p.to_string(), depth, age)
        })
        .collect()
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let text = app.metrics.render(&gauges(&app).await);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// How long readiness may take before the answer is "no": a load balancer
/// polling `/readyz` must not hang on a locked database, and a store that
/// cannot take a write lock within this bound would stall requests too.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(2);

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let checked = tokio::time::timeout(READY_TIMEOUT, app.store.check_writable()).await;
    match checked
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the store or the audit log cannot be written\n",
            )
                .into_response()
        }
    }
}
